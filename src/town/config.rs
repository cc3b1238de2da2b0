//! `town.toml`: the types, their defaults, and parsing with errors that name file, line and key.
//!
//! Parsing runs in three passes over one source text, each reporting the first problem in
//! file order:
//! 1. syntax (`toml_edit`, which keeps spans for the later passes),
//! 2. shape: unknown keys, wrong value types, tables where tables belong (our own walk, so
//!    the message can name the dotted key and list what is expected),
//! 3. serde into [`TownConfig`] (durations, prompt modes), then semantic checks (names,
//!    regexes, ranges, references), located through [`Locator`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml_edit::{Item, TableLike};

use super::diag::{dotted, first_line, line_col, syntax_error, Locator};
use crate::agent::runtime::{self, PromptMode, RuntimeConfig};
use crate::{Error, Result};

/// Directory names the town itself uses at its top level; a rig may not take them.
pub const RESERVED_RIG_NAMES: &[&str] = &["logs", "formulas", "themes"];

/// The whole of `town.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TownConfig {
    /// Display name of the town (default: the town directory's name).
    pub name: String,
    /// Prefix of bead ids (`gt-abc12`).
    pub prefix: String,
    /// Runtime for new agents: a built-in name or a key of `runtimes`.
    pub default_runtime: String,
    pub theme: String,
    /// Most polecats running at once (>= 1).
    pub max_polecats: u32,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rigs: BTreeMap<String, RigConfig>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub runtimes: BTreeMap<String, RuntimeConfig>,
    pub patrol: PatrolConfig,
    pub store: StoreConfig,
    pub terminal: TerminalConfig,
    /// `[prices."MODEL"]`: USD per million tokens, over the shipped defaults
    /// ([`crate::town::costs`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub prices: BTreeMap<String, Price>,
    pub budget: BudgetConfig,
    pub notify: NotifyConfig,
}

impl TownConfig {
    /// The defaults for a town called `name`.
    pub fn new(name: impl Into<String>) -> TownConfig {
        TownConfig {
            name: name.into(),
            ..TownConfig::default()
        }
    }

    /// Parses and validates `src`, the text of `file` (used in messages and for the default
    /// name: the basename of the file's directory).
    pub fn parse(src: &str, file: &Path) -> Result<TownConfig> {
        let doc = toml_edit::Document::parse(src)
            .map_err(|e| syntax_error(file, src, e.span(), e.message()))?;
        let loc = Locator {
            file,
            src,
            root: doc.as_table(),
        };
        check_shape(&loc)?;
        let mut config: TownConfig = toml::from_str(src).map_err(|e| {
            let pos = e.span().map_or(0, |s| s.start);
            let path = loc.path_at(pos);
            let line = line_col(src, pos).0;
            let msg = first_line(e.message());
            let file = file.display();
            if path.is_empty() {
                Error::BadInput(format!("{file}:{line}: {msg}"))
            } else {
                Error::BadInput(format!("{file}:{line}: {}: {msg}", dotted(&path)))
            }
        })?;
        if !doc.as_table().contains_key("name") {
            config.name = default_name_for(file);
        }
        config.check(&loc)?;
        Ok(config)
    }

    /// Checks a config built in code (not parsed), e.g. before writing it. Messages name
    /// the key but no line.
    pub fn validate(&self, file: &Path) -> Result<()> {
        let empty = toml_edit::Table::new();
        let loc = Locator {
            file,
            src: "",
            root: &empty,
        };
        self.check(&loc)
    }

    /// Whether `name` is a runtime this town can start (built in or configured).
    pub fn has_runtime(&self, name: &str) -> bool {
        runtime::builtin(name).is_some() || self.runtimes.contains_key(name)
    }

    /// The built-in runtime names, then the ones town.toml defines.
    pub fn runtime_names(&self) -> Vec<String> {
        let mut names: Vec<String> = runtime::builtin_names().map(str::to_string).collect();
        for name in self.runtimes.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// The runtime `name` as this town runs it: the preset, with `[runtimes.NAME]` over it.
    pub fn runtime(&self, name: &str) -> Result<RuntimeConfig> {
        runtime::resolve(&self.runtimes, name)
    }

    /// The semantic checks; reports the problem that comes first in the file.
    fn check(&self, loc: &Locator<'_>) -> Result<()> {
        let mut p = Problems::default();
        self.check_town(&mut p);
        self.check_rigs(loc, &mut p);
        self.check_runtimes(loc, &mut p);
        self.check_sections(&mut p);
        p.first(loc)
    }

    /// The top-level keys: names, the default runtime, the theme, the polecat limit.
    fn check_town(&self, p: &mut Problems) {
        if let Err(m) = validate_town_name(&self.name) {
            p.add(&["name"], m);
        }
        if let Err(m) = validate_prefix(&self.prefix) {
            p.add(&["prefix"], m);
        }
        if !self.has_runtime(&self.default_runtime) {
            let known = self.runtime_names();
            p.add(
                &["default_runtime"],
                format!(
                    "unknown runtime \"{}\" (expected one of: {}, or add a [runtimes.{}] table)",
                    self.default_runtime,
                    known.join(", "),
                    if validate_runtime_name(&self.default_runtime).is_ok() {
                        self.default_runtime.as_str()
                    } else {
                        "NAME"
                    }
                ),
            );
        }
        if let Err(m) = validate_theme(&self.theme) {
            p.add(&["theme"], m);
        }
        if self.max_polecats == 0 {
            p.add(&["max_polecats"], "must be at least 1".into());
        }
    }

    /// Each `[rigs.NAME]`: its name, url, branch, commands, timeout, push remote.
    fn check_rigs(&self, loc: &Locator<'_>, p: &mut Problems) {
        for (name, rig) in &self.rigs {
            let base = ["rigs", name.as_str()];
            if let Err(m) = validate_rig_name(name) {
                p.add(&base, m);
            }
            let at = |key: &'static str| [base[0], base[1], key];
            if !loc.root_has(&at("url")) && rig.url.is_empty() {
                p.add(
                    &base,
                    "missing required key 'url' (the rig's git URL or path)".into(),
                );
            } else if rig.url.trim().is_empty() {
                p.add(&at("url"), "must not be empty".into());
            } else if has_control(&rig.url) {
                p.add(&at("url"), "must not contain control characters".into());
            }
            if let Err(m) = validate_branch(&rig.branch) {
                p.add(&at("branch"), m);
            }
            for (key, cmd) in [
                ("test_command", &rig.test_command),
                ("setup_command", &rig.setup_command),
            ] {
                if cmd.as_deref().is_some_and(|c| c.trim().is_empty()) {
                    p.add(
                        &at(key),
                        "must not be empty (remove the key instead)".into(),
                    );
                }
            }
            if rig.test_timeout.is_zero() {
                p.add(&at("test_timeout"), "must be greater than 0".into());
            }
            if let Some(remote) = &rig.push_remote {
                if remote.trim().is_empty() || remote.chars().any(char::is_whitespace) {
                    p.add(
                        &at("push_remote"),
                        format!("invalid remote name \"{remote}\""),
                    );
                }
            }
        }
    }

    /// Each `[runtimes.NAME]`: its name, command, prompt mode, patterns and environment.
    fn check_runtimes(&self, loc: &Locator<'_>, p: &mut Problems) {
        for (name, rt) in &self.runtimes {
            let base = ["runtimes", name.as_str()];
            if let Err(m) = validate_runtime_name(name) {
                p.add(&base, m);
            }
            let at = |key: &'static str| [base[0], base[1], key];
            let preset = runtime::builtin(name).is_some();
            match rt.command.first() {
                // Over a preset, a table may set only what it changes (env, patterns).
                None if preset && !loc.root_has(&at("command")) => {}
                None if !loc.root_has(&at("command")) => p.add(
                    &base,
                    "missing required key 'command' (e.g. command = [\"claude\"])".into(),
                ),
                None => p.add(&at("command"), "must not be empty".into()),
                Some(program) if program.trim().is_empty() => p.add(
                    &at("command"),
                    "the first element (the program) must not be empty".into(),
                ),
                Some(_) => {}
            }
            if let Some(PromptMode::Flag(flag)) = &rt.prompt {
                if flag.trim().is_empty() {
                    p.add(
                        &at("prompt"),
                        "flag name is empty (write e.g. \"flag:--prompt\")".into(),
                    );
                }
            }
            for (key, pattern) in [
                ("ready", &rt.ready),
                ("busy", &rt.busy),
                ("waiting", &rt.waiting),
            ] {
                if let Some(pattern) = pattern {
                    if let Err(e) = regex::Regex::new(pattern) {
                        p.add(&at(key), format!("invalid regex: {}", regex_error_line(&e)));
                    }
                }
            }
            for (var, value) in &rt.env {
                let path = [base[0], base[1], "env", var.as_str()];
                if var.is_empty() || var.contains('=') || var.contains('\0') {
                    p.add(
                        &path,
                        "invalid environment variable name (must be non-empty, without '=')".into(),
                    );
                } else if value.contains('\0') {
                    p.add(&path, "value must not contain NUL characters".into());
                }
            }
        }
    }

    /// `[patrol]`, `[terminal]`, `[prices]` and `[notify]`.
    fn check_sections(&self, p: &mut Problems) {
        let patrol = &self.patrol;
        for (key, d) in [
            ("witness_every", patrol.witness_every),
            ("deacon_every", patrol.deacon_every),
        ] {
            if d.is_zero() {
                p.add(&["patrol", key], "must be greater than 0".into());
            }
        }

        if self.terminal.scrollback_lines > MAX_SCROLLBACK_LINES {
            p.add(
                &["terminal", "scrollback_lines"],
                format!("must be at most {MAX_SCROLLBACK_LINES}"),
            );
        }

        for model in self.prices.keys() {
            if model.trim().is_empty() || has_control(model) {
                p.add(&["prices", model.as_str()], "invalid model name".into());
            }
        }
        let n = &self.notify;
        if n.command.first().is_some_and(|p| p.trim().is_empty()) {
            p.add(
                &["notify", "command"],
                "the first element (the program) must not be empty".into(),
            );
        }
        if let Some(e) = n
            .events
            .iter()
            .find(|e| !NOTIFY_EVENTS.contains(&e.as_str()))
        {
            p.add(
                &["notify", "events"],
                format!(
                    "unknown event \"{e}\" (expected some of: {})",
                    NOTIFY_EVENTS.join(", ")
                ),
            );
        }
        if n.timeout.is_zero() {
            p.add(&["notify", "timeout"], "must be greater than 0".into());
        }
    }
}

/// The semantic problems found, each at its dotted key; the one first in the file is told.
#[derive(Default)]
struct Problems(Vec<(Vec<String>, String)>);

impl Problems {
    fn add(&mut self, path: &[&str], msg: String) {
        self.0
            .push((path.iter().map(|s| s.to_string()).collect(), msg));
    }

    /// The problem that comes first in the file (those on keys the file does not hold last).
    fn first(self, loc: &Locator<'_>) -> Result<()> {
        let located = self.0.into_iter().map(|(path, msg)| {
            let line = loc.line_of(&path).unwrap_or(usize::MAX);
            (line, path, msg)
        });
        match located.min_by_key(|(line, _, _)| *line) {
            Some((_, path, msg)) => Err(loc.error(&path, &msg)),
            None => Ok(()),
        }
    }
}

impl Default for TownConfig {
    /// The defaults, for a town named "gt" (the name of the default town directory `~/gt`).
    fn default() -> Self {
        TownConfig {
            name: "gt".into(),
            prefix: "gt".into(),
            default_runtime: "claude".into(),
            theme: "default".into(),
            max_polecats: 8,
            rigs: BTreeMap::new(),
            runtimes: BTreeMap::new(),
            patrol: PatrolConfig::default(),
            store: StoreConfig::default(),
            terminal: TerminalConfig::default(),
            prices: BTreeMap::new(),
            budget: BudgetConfig::default(),
            notify: NotifyConfig::default(),
        }
    }
}

/// `[rigs.NAME]`: a git repository the town works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RigConfig {
    /// Git URL or local path (required).
    pub url: String,
    /// The target branch merges land on.
    pub branch: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_command: Option<String>,
    #[serde(with = "duration_str")]
    pub test_timeout: Duration,
    pub merge_without_tests: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_remote: Option<String>,
    /// How a bead's branch lands on the target: one squashed commit (the default), one merge
    /// commit, or its own commits rebased.
    pub merge_style: MergeStyle,
}

/// How the Refinery lands a bead's branch on its rig's target branch. Whatever the style,
/// the tests run on exactly the commit the target then moves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum MergeStyle {
    /// The branch becomes one commit on the target, named after the bead: every commit on the
    /// target passed the tests.
    #[default]
    Squash,
    /// One merge commit per bead (`--no-ff`): the first-parent history is one tested commit
    /// per bead, and the branch's own commits stay reachable through the second parent.
    Merge,
    /// The branch's own commits replayed onto the target: only the last of them was tested,
    /// so work-in-progress commits (and red ones) land on the target as they are.
    Rebase,
}

impl MergeStyle {
    pub const NAMES: &'static [&'static str] = &["squash", "merge", "rebase"];

    pub fn as_str(self) -> &'static str {
        match self {
            MergeStyle::Squash => "squash",
            MergeStyle::Merge => "merge",
            MergeStyle::Rebase => "rebase",
        }
    }
}

impl std::fmt::Display for MergeStyle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for MergeStyle {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        match s.as_str() {
            "squash" => Ok(MergeStyle::Squash),
            "merge" => Ok(MergeStyle::Merge),
            "rebase" => Ok(MergeStyle::Rebase),
            _ => Err(format!(
                "unknown merge style {s:?} (expected one of: {})",
                MergeStyle::NAMES.join(", ")
            )),
        }
    }
}

impl From<MergeStyle> for String {
    fn from(m: MergeStyle) -> String {
        m.as_str().to_string()
    }
}

impl RigConfig {
    /// A rig on `url` with every other key at its default.
    pub fn new(url: impl Into<String>) -> RigConfig {
        RigConfig {
            url: url.into(),
            ..RigConfig::default()
        }
    }
}

impl Default for RigConfig {
    fn default() -> Self {
        RigConfig {
            url: String::new(),
            branch: "main".into(),
            test_command: None,
            setup_command: None,
            test_timeout: Duration::from_secs(600),
            merge_without_tests: false,
            push_remote: None,
            merge_style: MergeStyle::default(),
        }
    }
}

/// `[patrol]`: the engine's loops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PatrolConfig {
    /// GUPP nudges an agent with hooked work idle at its prompt this long.
    #[serde(with = "duration_str")]
    pub gupp_idle_after: Duration,
    #[serde(with = "duration_str")]
    pub witness_every: Duration,
    /// No output this long while working: stalled.
    #[serde(with = "duration_str")]
    pub stall_after: Duration,
    #[serde(with = "duration_str")]
    pub deacon_every: Duration,
    /// Idle polecats are reaped after this long.
    #[serde(with = "duration_str")]
    pub reap_after: Duration,
    /// Restarts of a dead agent with hooked work before escalating.
    pub max_restarts: u32,
}

impl Default for PatrolConfig {
    fn default() -> Self {
        PatrolConfig {
            gupp_idle_after: Duration::from_secs(30),
            witness_every: Duration::from_secs(5),
            stall_after: Duration::from_secs(5 * 60),
            deacon_every: Duration::from_secs(10),
            reap_after: Duration::from_secs(15 * 60),
            max_restarts: 3,
        }
    }
}

/// `[store]`: the Beads store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Delay between a change and the rewrite of `.beads/issues.jsonl`.
    #[serde(with = "duration_str")]
    pub flush_debounce: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            flush_debounce: Duration::from_secs(2),
        }
    }
}

/// `[terminal]`: the agents' terminals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TerminalConfig {
    /// Lines of history each agent's terminal keeps in memory (0 to 100,000). Older history
    /// is read back from the agent's recording when scrolled to, so this trades memory for
    /// how far back a scroll is instant.
    pub scrollback_lines: u32,
}

/// `[prices."MODEL"]`: what a model's tokens cost, in USD per million tokens of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

/// `[budget]`: spending limits, counted from the agents' own records (unset: no limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// The town's limit per UTC day: once spent, slings are refused and GUPP stops nudging.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<f64>,
    /// One bead's limit: the agent working it is frozen and the overseer told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_bead_usd: Option<f64>,
}

/// The events `[notify] events` may name.
pub const NOTIFY_EVENTS: &[&str] = &[
    "waiting",
    "stalled",
    "dead",
    "rejected",
    "escalated",
    "budget",
];

/// `[notify]`: telling the overseer when something needs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Run for each event (argv, no shell unless it is one), with `GT_NOTIFY_*` set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Which events notify (default: all of [`NOTIFY_EVENTS`]).
    pub events: Vec<String>,
    /// Attached cockpits ring the terminal bell and send a desktop notification (OSC 9 and
    /// OSC 777).
    pub bell: bool,
    /// How long the command may run before it is killed.
    #[serde(with = "duration_str")]
    pub timeout: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            command: Vec::new(),
            events: NOTIFY_EVENTS.iter().map(|s| s.to_string()).collect(),
            bell: true,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Most `[terminal] scrollback_lines` accepted.
pub const MAX_SCROLLBACK_LINES: u32 = 100_000;

impl Default for TerminalConfig {
    fn default() -> Self {
        TerminalConfig {
            scrollback_lines: crate::agent::DEFAULT_SCROLLBACK as u32,
        }
    }
}

/// Durations as humantime strings: "30s", "5m", "1h 30m", "500ms".
mod duration_str {
    use serde::{de, Deserializer, Serializer};
    use std::fmt;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_str(Visitor)
    }

    struct Visitor;

    impl de::Visitor<'_> for Visitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration string (examples: 30s, 5m, 1h)")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            super::parse_duration(v).map_err(E::custom)
        }
    }
}

/// Parses a config duration; the error is the message users see.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|_| format!("invalid duration {s:?} (examples: 30s, 5m, 1h)"))
}

const NAME_RULE: &str =
    "use 1-40 characters: lowercase letters, digits, '-' or '_', starting with a letter or digit";

fn is_simple_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=40).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Rig names: `^[a-z0-9][a-z0-9_-]{0,39}$`, and not a directory the town uses itself.
pub fn validate_rig_name(name: &str) -> std::result::Result<(), String> {
    if !is_simple_name(name) {
        return Err(format!("invalid rig name {name:?} ({NAME_RULE})"));
    }
    if RESERVED_RIG_NAMES.contains(&name) {
        return Err(format!(
            "rig name {name:?} is reserved (the town uses <town>/{name}/ itself)"
        ));
    }
    Ok(())
}

/// Runtime names follow the rig name pattern.
pub fn validate_runtime_name(name: &str) -> std::result::Result<(), String> {
    if is_simple_name(name) {
        Ok(())
    } else {
        Err(format!("invalid runtime name {name:?} ({NAME_RULE})"))
    }
}

/// Bead id prefix: lowercase ASCII letters, digits and '-', 1-16 characters, starting with a
/// letter, not ending with '-'.
pub fn validate_prefix(prefix: &str) -> std::result::Result<(), String> {
    let b = prefix.as_bytes();
    let ok = (1..=16).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'-'
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid prefix {prefix:?} (use 1-16 lowercase letters, digits or '-', starting with a letter and not ending with '-')"
        ))
    }
}

/// The town's display name: non-blank, at most 64 characters, no control characters.
pub fn validate_town_name(name: &str) -> std::result::Result<(), String> {
    if name.trim().is_empty() {
        Err("must not be empty".into())
    } else if name.chars().count() > 64 {
        Err("must be at most 64 characters".into())
    } else if has_control(name) {
        Err("must not contain control characters".into())
    } else {
        Ok(())
    }
}

fn validate_theme(theme: &str) -> std::result::Result<(), String> {
    if theme.trim().is_empty() {
        Err("must not be empty".into())
    } else if theme.starts_with('.') || theme.contains(['/', '\\']) || has_control(theme) {
        Err(format!(
            "invalid theme name {theme:?} (a name like \"default\", not a path)"
        ))
    } else {
        Ok(())
    }
}

fn validate_branch(branch: &str) -> std::result::Result<(), String> {
    if !branch.is_empty() && git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
        Ok(())
    } else {
        Err(format!("invalid branch name {branch:?}"))
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// The one line of a regex error that says what is wrong.
fn regex_error_line(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error:").map(str::trim))
        .map(str::to_string)
        .unwrap_or_else(|| first_line(&text).to_string())
}

/// Turns any string into a tidy town name: lowercase ASCII letters, digits, '-' and '_';
/// every other run of characters becomes one '-'. Empty results become "town".
pub fn sanitize_name(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed: String = out
        .trim_matches(|c| c == '-' || c == '_')
        .chars()
        .take(40)
        .collect();
    let trimmed = trimmed.trim_end_matches(['-', '_']);
    if trimmed.is_empty() {
        "town".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The name a town gets when town.toml has none: its directory's sanitized basename.
fn default_name_for(file: &Path) -> String {
    let dir = file.parent().and_then(Path::file_name);
    sanitize_name(&dir.map(|n| n.to_string_lossy()).unwrap_or_default())
}

// ---------------------------------------------------------------------------------------
// Shape: which keys exist and what kind of value each holds.

#[derive(Clone, Copy)]
enum Shape {
    Str,
    U32,
    Bool,
    /// A number, whole or not (prices, budgets).
    Number,
    StrList,
    Table(&'static [(&'static str, Shape)]),
    /// A table whose keys are names chosen by the user, each value of the given shape.
    Map(&'static Shape),
}

const TOP: &[(&str, Shape)] = &[
    ("name", Shape::Str),
    ("prefix", Shape::Str),
    ("default_runtime", Shape::Str),
    ("theme", Shape::Str),
    ("max_polecats", Shape::U32),
    ("rigs", Shape::Map(&Shape::Table(RIG))),
    ("runtimes", Shape::Map(&Shape::Table(RUNTIME))),
    ("patrol", Shape::Table(PATROL)),
    ("store", Shape::Table(STORE)),
    ("terminal", Shape::Table(TERMINAL)),
    ("prices", Shape::Map(&Shape::Table(PRICE))),
    ("budget", Shape::Table(BUDGET)),
    ("notify", Shape::Table(NOTIFY)),
];

const PRICE: &[(&str, Shape)] = &[
    ("input", Shape::Number),
    ("output", Shape::Number),
    ("cache_read", Shape::Number),
    ("cache_write", Shape::Number),
];

const BUDGET: &[(&str, Shape)] = &[
    ("daily_usd", Shape::Number),
    ("per_bead_usd", Shape::Number),
];

const NOTIFY: &[(&str, Shape)] = &[
    ("command", Shape::StrList),
    ("events", Shape::StrList),
    ("bell", Shape::Bool),
    ("timeout", Shape::Str),
];

const RIG: &[(&str, Shape)] = &[
    ("url", Shape::Str),
    ("branch", Shape::Str),
    ("test_command", Shape::Str),
    ("setup_command", Shape::Str),
    ("test_timeout", Shape::Str),
    ("merge_without_tests", Shape::Bool),
    ("push_remote", Shape::Str),
    ("merge_style", Shape::Str),
];

const RUNTIME: &[(&str, Shape)] = &[
    ("command", Shape::StrList),
    ("prompt", Shape::Str),
    ("ready", Shape::Str),
    ("busy", Shape::Str),
    ("waiting", Shape::Str),
    ("env", Shape::Map(&Shape::Str)),
];

const PATROL: &[(&str, Shape)] = &[
    ("gupp_idle_after", Shape::Str),
    ("witness_every", Shape::Str),
    ("stall_after", Shape::Str),
    ("deacon_every", Shape::Str),
    ("reap_after", Shape::Str),
    ("max_restarts", Shape::U32),
];

const STORE: &[(&str, Shape)] = &[("flush_debounce", Shape::Str)];

const TERMINAL: &[(&str, Shape)] = &[("scrollback_lines", Shape::U32)];

impl Locator<'_> {
    /// Whether the parsed file holds this dotted key.
    fn root_has(&self, path: &[&str]) -> bool {
        let mut table: Option<&dyn TableLike> = Some(self.root);
        let mut item = None;
        for seg in path {
            item = table.and_then(|t| t.get(seg));
            table = item.and_then(Item::as_table_like);
        }
        item.is_some()
    }
}

/// Reports the first (in file order) key that is unknown or holds the wrong kind of value.
fn check_shape(loc: &Locator<'_>) -> Result<()> {
    let mut problems = Vec::new();
    let mut path = Vec::new();
    walk_table(loc.root, TOP, &mut path, &mut problems);
    let first = problems.into_iter().min_by_key(|p: &Problem| p.pos);
    match first {
        None => Ok(()),
        Some(p) => {
            let line = line_col(loc.src, p.pos).0;
            let file = loc.file.display();
            Err(Error::BadInput(if p.unknown {
                format!("{file}:{line}: {}", p.msg)
            } else {
                format!("{file}:{line}: {}: {}", dotted(&p.path), p.msg)
            }))
        }
    }
}

struct Problem {
    pos: usize,
    path: Vec<String>,
    msg: String,
    /// Unknown-key messages carry the key themselves.
    unknown: bool,
}

fn walk_table(
    table: &dyn TableLike,
    fields: &'static [(&'static str, Shape)],
    path: &mut Vec<String>,
    out: &mut Vec<Problem>,
) {
    for (name, item) in table.iter() {
        let pos = key_pos(table, name, item);
        path.push(name.to_string());
        match fields.iter().find(|(f, _)| *f == name) {
            Some((_, shape)) => walk_item(item, *shape, pos, path, out),
            None => {
                let expected: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
                let hint = closest(name, &expected)
                    .map(|k| format!("did you mean '{k}'? "))
                    .unwrap_or_default();
                out.push(Problem {
                    pos,
                    path: path.clone(),
                    msg: format!(
                        "unknown key '{}' ({hint}expected one of: {})",
                        dotted(path),
                        expected.join(", ")
                    ),
                    unknown: true,
                });
            }
        }
        path.pop();
    }
}

fn key_pos(table: &dyn TableLike, name: &str, item: &Item) -> usize {
    table
        .key(name)
        .and_then(|k| k.span())
        .or_else(|| item.span())
        .map_or(0, |s| s.start)
}

fn walk_item(
    item: &Item,
    shape: Shape,
    pos: usize,
    path: &mut Vec<String>,
    out: &mut Vec<Problem>,
) {
    let mut bad = |msg: String| {
        out.push(Problem {
            pos,
            path: path.clone(),
            msg,
            unknown: false,
        })
    };
    match shape {
        Shape::Table(_) | Shape::Map(_) if item.as_table_like().is_none() => {
            bad(format!(
                "expected a table, found {}",
                article(item.type_name())
            ));
        }
        Shape::Table(fields) => {
            if let Some(t) = item.as_table_like() {
                walk_table(t, fields, path, out);
            }
        }
        Shape::Map(inner) => {
            if let Some(t) = item.as_table_like() {
                for (name, child) in t.iter() {
                    let pos = key_pos(t, name, child);
                    path.push(name.to_string());
                    walk_item(child, *inner, pos, path, out);
                    path.pop();
                }
            }
        }
        Shape::Str => {
            if !item.is_str() {
                bad(format!(
                    "expected a string, found {}",
                    article(item.type_name())
                ));
            }
        }
        Shape::Bool => {
            if !item.is_bool() {
                bad(format!(
                    "expected true or false, found {}",
                    article(item.type_name())
                ));
            }
        }
        Shape::Number => {
            let n = item
                .as_float()
                .or_else(|| item.as_integer().map(|i| i as f64));
            match n {
                Some(n) if n.is_finite() && n >= 0.0 => {}
                Some(n) => bad(format!("must be a number of at least 0, found {n}")),
                None => bad(format!(
                    "expected a number, found {}",
                    article(item.type_name())
                )),
            }
        }
        Shape::U32 => match item.as_integer() {
            Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => {}
            Some(n) => bad(format!(
                "must be a whole number from 0 to {}, found {n}",
                u32::MAX
            )),
            None => bad(format!(
                "expected a whole number, found {}",
                article(item.type_name())
            )),
        },
        Shape::StrList => match item.as_array() {
            None => bad(format!(
                "expected an array of strings (e.g. [\"claude\", \"--flag\"]), found {}",
                article(item.type_name())
            )),
            Some(arr) => {
                if let Some((i, v)) = arr.iter().enumerate().find(|(_, v)| !v.is_str()) {
                    bad(format!(
                        "expected an array of strings, element {} is {}",
                        i + 1,
                        article(v.type_name())
                    ));
                }
            }
        },
    }
}

fn article(type_name: &str) -> String {
    let vowel = type_name
        .chars()
        .next()
        .is_some_and(|c| "aeiou".contains(c));
    format!("{} {type_name}", if vowel { "an" } else { "a" })
}

/// The expected key closest to a misspelt one, if it is close enough to be a likely typo.
fn closest<'a>(name: &str, expected: &[&'a str]) -> Option<&'a str> {
    expected
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 5) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
