//! Colours and attributes of the cockpit, from `themes/*.toml`.
//!
//! Three themes are built into the binary (`default`, `light`, `mono`, embedded with
//! `include_str!`); a town may add its own as `<town>/themes/<name>.toml`. A theme file has the
//! sections `[ui]`, `[agent]`, `[merge]`, `[progress]`, `[diff]` and `[terminal]`; every key
//! is optional and a missing one keeps the value of the theme named by `extends` (the
//! `default` theme when not given). A style is an inline table:
//!
//! ```toml
//! [agent]
//! working = { fg = "green", bold = true }
//! waiting = { fg = "#ffcc00", bg = 236, reversed = true }
//! ```
//!
//! Colours are names (`red`, `dark_gray`, `light_blue`, ..., `default`), `"#rrggbb"`, or an
//! index 0-255. Attributes: `bold`, `dim`, `italic`, `underline`, `reversed`. Unknown keys are
//! errors that name the file, the line and the key.
//!
//! `NO_COLOR` (a non-empty environment variable) selects [`Theme::no_color`]: the mono theme
//! with every colour removed, attributes only.

use crate::agent::{QueryColors, Rgb};
use crate::{Error, Result};
use ratatui::style::{Color, Modifier, Style};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::path::Path;

/// The built-in themes, by name, with their TOML source.
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("mono", include_str!("../../themes/mono.toml")),
];

/// Every style the cockpit draws with.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    /// False for `NO_COLOR`: the agents' terminals are drawn without their colours too.
    pub colors: bool,
    /// Panel borders, and the border of the focused panel.
    pub border: Style,
    pub border_focused: Style,
    /// Panel and dialog titles.
    pub title: Style,
    /// Ordinary text.
    pub text: Style,
    /// Secondary text: times, roles, hints, empty states.
    pub dim: Style,
    /// Highlights: the command being typed, the selected completion's marker, counts.
    pub accent: Style,
    /// The selected row of a list.
    pub selected: Style,
    /// The status bar's background and text.
    pub status: Style,
    /// Key names in the status bar and the help.
    pub key: Style,
    /// The "N need you" badge.
    pub attention: Style,
    /// The transient notice in the status bar.
    pub notice: Style,
    /// Text being typed (filters, nudges, the command line).
    pub input: Style,
    pub working: Style,
    pub idle: Style,
    pub waiting: Style,
    pub stalled: Style,
    pub dead: Style,
    pub zombie: Style,
    pub stopped: Style,
    pub mq_queued: Style,
    pub mq_testing: Style,
    pub mq_merged: Style,
    pub mq_rejected: Style,
    pub mq_conflict: Style,
    pub progress_filled: Style,
    pub progress_empty: Style,
    pub diff_added: Style,
    pub diff_removed: Style,
    pub diff_hunk: Style,
    pub diff_header: Style,
    /// What agents are told the terminal's colours are (`OSC 10;?` / `OSC 11;?`).
    pub terminal_foreground: Rgb,
    pub terminal_background: Rgb,
}

impl Theme {
    /// A theme with every style plain (the starting point the built-in files fill in).
    fn blank(name: &str) -> Theme {
        let s = Style::new();
        let q = QueryColors::default();
        Theme {
            name: name.to_string(),
            colors: true,
            border: s,
            border_focused: s,
            title: s,
            text: s,
            dim: s,
            accent: s,
            selected: s,
            status: s,
            key: s,
            attention: s,
            notice: s,
            input: s,
            working: s,
            idle: s,
            waiting: s,
            stalled: s,
            dead: s,
            zombie: s,
            stopped: s,
            mq_queued: s,
            mq_testing: s,
            mq_merged: s,
            mq_rejected: s,
            mq_conflict: s,
            progress_filled: s,
            progress_empty: s,
            diff_added: s,
            diff_removed: s,
            diff_hunk: s,
            diff_header: s,
            terminal_foreground: q.foreground,
            terminal_background: q.background,
        }
    }

    /// A built-in theme: `default`, `light` or `mono`.
    pub fn builtin(name: &str) -> Option<Theme> {
        let (_, src) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        let file = parse_file(src, Path::new(&format!("themes/{name}.toml"))).ok()?;
        // Built-in files extend nothing: they start from blank.
        let mut t = Theme::blank(name);
        file.apply(&mut t);
        Some(t)
    }

    /// The built-in default theme (never fails: the file is part of the binary and tested).
    pub fn default_theme() -> Theme {
        Theme::builtin("default").unwrap_or_else(|| Theme::blank("default"))
    }

    /// The theme `name`: `<town_themes_dir>/<name>.toml` when that file exists, else a
    /// built-in one. A user theme extends the theme its `extends` key names (default:
    /// `default`). A bad file is `Error::BadInput` naming the file, the line and the key.
    pub fn load(name: &str, town_themes_dir: Option<&Path>) -> Result<Theme> {
        if name.is_empty()
            || name.contains(['/', '\\'])
            || name.starts_with('.')
            || name.chars().any(char::is_control)
        {
            return Err(Error::bad(format!("bad theme name '{name}'")));
        }
        if let Some(dir) = town_themes_dir {
            let path = dir.join(format!("{name}.toml"));
            if path.is_file() {
                let src =
                    std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
                let file = parse_file(&src, &path)?;
                let base = file.extends.clone().unwrap_or_else(|| "default".into());
                let unknown = || {
                    Error::bad(format!(
                        "{}: extends: unknown theme '{base}' (built in: {})",
                        path.display(),
                        builtin_names()
                    ))
                };
                // A built-in (also one of the same name, which the file refines), or another
                // user theme one level deep (no chains of user files).
                let mut t = match Theme::builtin(&base) {
                    Some(t) => t,
                    None if base != name && !base.contains(['/', '\\', '.']) => {
                        let p = dir.join(format!("{base}.toml"));
                        if !p.is_file() {
                            return Err(unknown());
                        }
                        let src =
                            std::fs::read_to_string(&p).map_err(|e| Error::io("read", &p, e))?;
                        let mut t = Theme::default_theme();
                        parse_file(&src, &p)?.apply(&mut t);
                        t
                    }
                    None => return Err(unknown()),
                };
                t.name = name.to_string();
                file.apply(&mut t);
                return Ok(t);
            }
        }
        Theme::builtin(name).ok_or_else(|| {
            let where_ = match town_themes_dir {
                Some(d) => format!(", or a file {}/{name}.toml", d.display()),
                None => String::new(),
            };
            Error::bad(format!(
                "unknown theme '{name}' (built in: {}{where_})",
                builtin_names()
            ))
        })
    }

    /// Like [`Theme::load`], but a non-empty `NO_COLOR` environment variable selects
    /// [`Theme::no_color`].
    pub fn from_env(name: &str, town_themes_dir: Option<&Path>) -> Result<Theme> {
        match std::env::var_os("NO_COLOR") {
            Some(v) if !v.is_empty() => Ok(Theme::no_color()),
            _ => Theme::load(name, town_themes_dir),
        }
    }

    /// The mono theme with no colours at all (for `NO_COLOR`): attributes only, and agents'
    /// terminals drawn without colour.
    pub fn no_color() -> Theme {
        let mut t = Theme::builtin("mono").unwrap_or_else(|| Theme::blank("mono"));
        t.name = "no-color".into();
        t.colors = false;
        for s in t.styles_mut() {
            *s = strip(*s);
        }
        t
    }

    /// The style of an agent state (`working`, `idle`, ...); unknown states are dim.
    pub fn agent_state(&self, state: &str) -> Style {
        match state {
            "working" => self.working,
            "idle" => self.idle,
            "waiting" => self.waiting,
            "stalled" => self.stalled,
            "dead" => self.dead,
            "zombie" => self.zombie,
            "stopped" => self.stopped,
            "frozen" => self.accent,
            _ => self.dim,
        }
    }

    /// The style of a merge-request state; unknown states are dim.
    pub fn mr_state(&self, state: &str) -> Style {
        match state {
            "queued" => self.mq_queued,
            "testing" => self.mq_testing,
            "merged" => self.mq_merged,
            "rejected" => self.mq_rejected,
            "conflict" => self.mq_conflict,
            _ => self.dim,
        }
    }

    /// The colours to report to programs asking for the terminal's colours.
    pub fn query_colors(&self) -> QueryColors {
        QueryColors {
            foreground: self.terminal_foreground,
            background: self.terminal_background,
        }
    }

    fn styles_mut(&mut self) -> Vec<&mut Style> {
        vec![
            &mut self.border,
            &mut self.border_focused,
            &mut self.title,
            &mut self.text,
            &mut self.dim,
            &mut self.accent,
            &mut self.selected,
            &mut self.status,
            &mut self.key,
            &mut self.attention,
            &mut self.notice,
            &mut self.input,
            &mut self.working,
            &mut self.idle,
            &mut self.waiting,
            &mut self.stalled,
            &mut self.dead,
            &mut self.zombie,
            &mut self.stopped,
            &mut self.mq_queued,
            &mut self.mq_testing,
            &mut self.mq_merged,
            &mut self.mq_rejected,
            &mut self.mq_conflict,
            &mut self.progress_filled,
            &mut self.progress_empty,
            &mut self.diff_added,
            &mut self.diff_removed,
            &mut self.diff_hunk,
            &mut self.diff_header,
        ]
    }
}

impl Default for Theme {
    fn default() -> Self {
        Theme::default_theme()
    }
}

/// The free-function form of [`Theme::from_env`].
pub fn from_env(name: &str, town_themes_dir: Option<&Path>) -> Result<Theme> {
    Theme::from_env(name, town_themes_dir)
}

fn builtin_names() -> String {
    BUILTIN
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A style without its colours (attributes kept).
fn strip(s: Style) -> Style {
    Style {
        fg: None,
        bg: None,
        ..s
    }
}

// ---------------------------------------------------------------------------------------------
// The file format.

/// A colour as written in a theme file.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ColorSpec(Color);

impl<'de> Deserialize<'de> for ColorSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ColorSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a colour: a name such as \"red\", \"#rrggbb\", or an index 0-255")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<ColorSpec, E> {
                u8::try_from(v)
                    .map(|i| ColorSpec(Color::Indexed(i)))
                    .map_err(|_| E::custom(format!("colour index {v} is not in 0-255")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<ColorSpec, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<ColorSpec, E> {
                parse_color(v).map(ColorSpec).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a colour name, `#rrggbb`, or a decimal index.
pub fn parse_color(s: &str) -> std::result::Result<Color, String> {
    if let Some(hex) = s.strip_prefix('#') {
        return parse_hex(hex)
            .map(|Rgb(r, g, b)| Color::Rgb(r, g, b))
            .ok_or_else(|| format!("bad colour '{s}': expected #rrggbb"));
    }
    if let Ok(i) = s.parse::<u8>() {
        return Ok(Color::Indexed(i));
    }
    let key: String = s
        .chars()
        .filter(|c| *c != '_' && *c != '-' && *c != ' ')
        .flat_map(char::to_lowercase)
        .collect();
    let c = match key.as_str() {
        "default" | "reset" | "none" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "darkgray" | "darkgrey" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        _ => {
            return Err(format!(
                "unknown colour '{s}' (a name such as red, dark_gray, light_blue; \
                 #rrggbb; or 0-255)"
            ))
        }
    };
    Ok(c)
}

fn parse_hex(hex: &str) -> Option<Rgb> {
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
    Some(Rgb(byte(0)?, byte(2)?, byte(4)?))
}

/// An `"#rrggbb"` value (the `[terminal]` colours must be exact).
#[derive(Debug, Clone, Copy, PartialEq)]
struct HexColor(Rgb);

impl<'de> Deserialize<'de> for HexColor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.strip_prefix('#')
            .and_then(parse_hex)
            .map(HexColor)
            .ok_or_else(|| de::Error::custom(format!("bad colour '{s}': expected #rrggbb")))
    }
}

/// A style as written in a theme file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleSpec {
    fg: Option<ColorSpec>,
    bg: Option<ColorSpec>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    dim: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underline: bool,
    #[serde(default)]
    reversed: bool,
}

impl StyleSpec {
    fn to_style(&self) -> Style {
        let mut s = Style::new();
        if let Some(ColorSpec(c)) = self.fg {
            s = s.fg(c);
        }
        if let Some(ColorSpec(c)) = self.bg {
            s = s.bg(c);
        }
        for (on, m) in [
            (self.bold, Modifier::BOLD),
            (self.dim, Modifier::DIM),
            (self.italic, Modifier::ITALIC),
            (self.underline, Modifier::UNDERLINED),
            (self.reversed, Modifier::REVERSED),
        ] {
            if on {
                s = s.add_modifier(m);
            }
        }
        s
    }
}

/// A section of style keys: the struct serde reads, and how it fills a `Theme`.
macro_rules! section {
    ($ty:ident { $($key:ident => $field:ident),* $(,)? }) => {
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $ty {
            $($key: Option<StyleSpec>,)*
        }

        impl $ty {
            fn apply(&self, t: &mut Theme) {
                $(if let Some(s) = &self.$key {
                    t.$field = s.to_style();
                })*
            }

            #[cfg(test)]
            fn missing(&self, section: &str) -> Vec<String> {
                let mut v = Vec::new();
                $(if self.$key.is_none() {
                    v.push(format!("{section}.{}", stringify!($key)));
                })*
                v
            }
        }
    };
}

section!(UiSection {
    border => border,
    border_focused => border_focused,
    title => title,
    text => text,
    dim => dim,
    accent => accent,
    selected => selected,
    status => status,
    key => key,
    attention => attention,
    notice => notice,
    input => input,
});

section!(AgentSection {
    working => working,
    idle => idle,
    waiting => waiting,
    stalled => stalled,
    dead => dead,
    zombie => zombie,
    stopped => stopped,
});

section!(MergeSection {
    queued => mq_queued,
    testing => mq_testing,
    merged => mq_merged,
    rejected => mq_rejected,
    conflict => mq_conflict,
});

section!(ProgressSection {
    filled => progress_filled,
    empty => progress_empty,
});

section!(DiffSection {
    added => diff_added,
    removed => diff_removed,
    hunk => diff_hunk,
    header => diff_header,
});

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TerminalSection {
    foreground: Option<HexColor>,
    background: Option<HexColor>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    /// The theme this one starts from (default: `default`).
    extends: Option<String>,
    #[serde(default)]
    ui: UiSection,
    #[serde(default)]
    agent: AgentSection,
    #[serde(default)]
    merge: MergeSection,
    #[serde(default)]
    progress: ProgressSection,
    #[serde(default)]
    diff: DiffSection,
    #[serde(default)]
    terminal: TerminalSection,
}

impl ThemeFile {
    fn apply(&self, t: &mut Theme) {
        self.ui.apply(t);
        self.agent.apply(t);
        self.merge.apply(t);
        self.progress.apply(t);
        self.diff.apply(t);
        if let Some(HexColor(c)) = self.terminal.foreground {
            t.terminal_foreground = c;
        }
        if let Some(HexColor(c)) = self.terminal.background {
            t.terminal_background = c;
        }
    }

    /// The keys this file leaves unset (built-in files must set them all).
    #[cfg(test)]
    fn missing(&self) -> Vec<String> {
        let mut v = self.ui.missing("ui");
        v.extend(self.agent.missing("agent"));
        v.extend(self.merge.missing("merge"));
        v.extend(self.progress.missing("progress"));
        v.extend(self.diff.missing("diff"));
        if self.terminal.foreground.is_none() {
            v.push("terminal.foreground".into());
        }
        if self.terminal.background.is_none() {
            v.push("terminal.background".into());
        }
        v
    }
}

/// Parses a theme file; errors name `file`, the line and the key.
fn parse_file(src: &str, file: &Path) -> Result<ThemeFile> {
    toml_edit::Document::parse(src)
        .map_err(|e| crate::town::diag::syntax_error(file, src, e.span(), e.message()))?;
    toml::from_str::<ThemeFile>(src).map_err(|e| {
        let msg = e.message().lines().next().unwrap_or("").trim().to_string();
        match e.span() {
            Some(span) => {
                let line = line_of(src, span.start);
                let key = key_at(src, span.start);
                if key.is_empty() {
                    Error::bad(format!("{}:{line}: {msg}", file.display()))
                } else {
                    Error::bad(format!("{}:{line}: {key}: {msg}", file.display()))
                }
            }
            None => Error::bad(format!("{}: {msg}", file.display())),
        }
    })
}

/// The 1-based line of byte offset `pos`.
fn line_of(src: &str, pos: usize) -> usize {
    let pos = pos.min(src.len());
    src.as_bytes()[..pos]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The dotted key at byte offset `pos`: the enclosing `[section]`, the key of the line, and
/// the inner key of an inline table (`agent.working.fg`). Theme files are flat enough for
/// this to be exact: sections, then `key = value` or `key = { k = v, ... }` lines.
fn key_at(src: &str, pos: usize) -> String {
    let pos = pos.min(src.len());
    let line_start = src[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[pos..].find('\n').map_or(src.len(), |i| pos + i);
    let line = &src[line_start..line_end];
    let col = pos - line_start;

    let mut path: Vec<String> = Vec::new();
    // The section: the last `[name]` line at or above this one.
    for l in src[..line_end].lines().rev() {
        let t = l.trim();
        if let Some(inner) = t.strip_prefix('[').and_then(|t| t.split(']').next()) {
            path.push(inner.trim().to_string());
            break;
        }
    }
    if line.trim_start().starts_with('[') {
        return path.join(".");
    }
    // Keys on this line: identifiers followed by `=`, in order, up to the error.
    let mut keys: Vec<&str> = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            in_string = !in_string;
            i += 1;
            continue;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'-')
            {
                i += 1;
            }
            let rest = line[i..].trim_start();
            if rest.starts_with('=') && start <= col {
                keys.push(&line[start..i]);
            }
            continue;
        }
        if c == b'#' && !in_string {
            break;
        }
        i += 1;
    }
    if let Some(first) = keys.first() {
        path.push(first.to_string());
    }
    if keys.len() > 1 {
        if let Some(last) = keys.last() {
            path.push(last.to_string());
        }
    }
    path.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_styles(t: &Theme) -> Vec<Style> {
        let mut t = t.clone();
        t.styles_mut().into_iter().map(|s| *s).collect()
    }

    #[test]
    fn builtin_themes_parse_and_set_every_key() {
        for (name, src) in BUILTIN {
            let file = parse_file(src, Path::new(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(file.missing(), Vec::<String>::new(), "theme {name}");
            assert!(file.extends.is_none(), "{name} must not extend");
            let t = Theme::builtin(name).expect("builtin");
            assert_eq!(t.name, *name);
            assert!(t.colors);
        }
        assert!(Theme::builtin("nope").is_none());
    }

    #[test]
    fn default_theme_has_colours_and_states_differ() {
        let t = Theme::default_theme();
        assert!(t.working.fg.is_some());
        assert_ne!(t.working, t.dead);
        assert_ne!(t.waiting, t.idle);
        assert_ne!(t.border, t.border_focused);
        assert_eq!(t.agent_state("stalled"), t.stalled);
        assert_eq!(t.mr_state("conflict"), t.mq_conflict);
        assert_eq!(t.agent_state("???"), t.dim);
    }

    #[test]
    fn no_color_has_no_colours() {
        let t = Theme::no_color();
        assert!(!t.colors);
        for s in all_styles(&t) {
            assert_eq!(s.fg, None);
            assert_eq!(s.bg, None);
        }
        // Attributes still tell things apart.
        assert!(t.selected.add_modifier.contains(Modifier::REVERSED));
        assert_ne!(t.border, t.border_focused);
    }

    #[test]
    fn no_color_env_selects_the_colourless_theme() {
        // Only this test touches NO_COLOR; `load` never reads it.
        std::env::set_var("NO_COLOR", "1");
        let t = from_env("default", None);
        std::env::set_var("NO_COLOR", "");
        let empty = Theme::from_env("light", None);
        std::env::remove_var("NO_COLOR");
        assert_eq!(t.expect("theme").name, "no-color");
        assert_eq!(empty.expect("theme").name, "light");
    }

    #[test]
    fn colours_by_name_hex_and_index() {
        assert_eq!(parse_color("red"), Ok(Color::Red));
        assert_eq!(parse_color("dark_gray"), Ok(Color::DarkGray));
        assert_eq!(parse_color("Light-Blue"), Ok(Color::LightBlue));
        assert_eq!(parse_color("#0a0B0c"), Ok(Color::Rgb(10, 11, 12)));
        assert_eq!(parse_color("42"), Ok(Color::Indexed(42)));
        assert_eq!(parse_color("default"), Ok(Color::Reset));
        assert!(parse_color("#12345").is_err());
        assert!(parse_color("#gggggg").is_err());
        assert!(parse_color("blurple").is_err());
    }

    #[test]
    fn user_theme_extends_and_overrides() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("mine.toml"),
            "extends = \"light\"\n[agent]\nworking = { fg = 202, bold = true }\n\
             [terminal]\nbackground = \"#101010\"\n",
        )
        .expect("write");
        let t = Theme::load("mine", Some(dir.path())).expect("load");
        assert_eq!(t.name, "mine");
        assert_eq!(
            t.working,
            Style::new()
                .fg(Color::Indexed(202))
                .add_modifier(Modifier::BOLD)
        );
        let light = Theme::builtin("light").expect("light");
        assert_eq!(t.idle, light.idle);
        assert_eq!(t.terminal_background, Rgb(16, 16, 16));
        assert_eq!(t.query_colors().background, Rgb(16, 16, 16));
        // A built-in name is found without a directory, and a missing one is an error.
        assert_eq!(
            Theme::load("mono", Some(dir.path())).expect("mono").name,
            "mono"
        );
        let e = Theme::load("nosuch", Some(dir.path())).expect_err("unknown");
        assert!(e.to_string().contains("unknown theme 'nosuch'"), "{e}");
        assert!(Theme::load("../etc/passwd", None).is_err());
    }

    fn bad(src: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("bad.toml"), src).expect("write");
        let e = Theme::load("bad", Some(dir.path())).expect_err("must fail");
        assert!(matches!(e, Error::BadInput(_)), "{e:?}");
        let e = e
            .to_string()
            .replace(&dir.path().display().to_string(), "DIR");
        e
    }

    #[test]
    fn bad_user_theme_names_file_line_and_key() {
        let e = bad("[ui]\nborder = { fg = \"red\" }\n\n[agent]\nworking = { fg = \"blurple\" }\n");
        assert!(e.starts_with("DIR/bad.toml:5: agent.working.fg: "), "{e}");
        assert!(e.contains("unknown colour 'blurple'"), "{e}");

        let e = bad("[agent]\nidle = { fg = \"red\" }\nsleepy = { fg = \"red\" }\n");
        assert!(e.starts_with("DIR/bad.toml:3: agent.sleepy: "), "{e}");
        assert!(e.contains("unknown field `sleepy`"), "{e}");

        let e = bad("[merge]\nqueued = { fg = \"red\", blink = true }\n");
        assert!(e.starts_with("DIR/bad.toml:2: merge.queued.blink: "), "{e}");

        let e = bad("[progress]\nfilled = { bg = 300 }\n");
        assert!(e.starts_with("DIR/bad.toml:2: progress.filled.bg: "), "{e}");
        assert!(e.contains("0-255"), "{e}");

        let e = bad("[colours]\nred = 1\n");
        assert!(e.starts_with("DIR/bad.toml:1: colours: "), "{e}");

        let e = bad("[terminal]\nforeground = \"white\"\n");
        assert!(
            e.starts_with("DIR/bad.toml:2: terminal.foreground: "),
            "{e}"
        );

        let e = bad("[ui\nborder = 1\n");
        assert!(e.starts_with("DIR/bad.toml:1:4: unclosed table"), "{e}");

        let e = bad("[ui]\ntitle = { fg = \"red\" }\n\n[ui]\n");
        assert_eq!(
            e,
            "DIR/bad.toml:4: ui: the table [ui] is defined twice (first on line 1); merge the two"
        );

        let e = bad("extends = \"nosuch\"\n");
        assert!(e.contains("unknown theme 'nosuch'"), "{e}");
    }

    #[test]
    fn user_theme_may_extend_another_user_theme() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("base.toml"),
            "[ui]\ntitle = { fg = \"#010203\" }\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("top.toml"),
            "extends = \"base\"\n[ui]\ndim = { italic = true }\n",
        )
        .expect("write");
        let t = Theme::load("top", Some(dir.path())).expect("load");
        assert_eq!(t.title.fg, Some(Color::Rgb(1, 2, 3)));
        assert!(t.dim.add_modifier.contains(Modifier::ITALIC));
        // A broken base is reported as itself.
        std::fs::write(dir.path().join("base.toml"), "[ui]\ntitle = 7\n").expect("write");
        let e = Theme::load("top", Some(dir.path())).expect_err("bad base");
        assert!(e.to_string().contains("base.toml:2: ui.title"), "{e}");
    }

    #[test]
    fn key_at_finds_nested_keys() {
        let src = "[a]\nx = { fg = \"q\" }\n";
        let pos = src.find("\"q\"").expect("pos");
        assert_eq!(key_at(src, pos), "a.x.fg");
        assert_eq!(key_at(src, src.find('x').expect("x")), "a.x");
        assert_eq!(line_of(src, pos), 2);
    }
}
