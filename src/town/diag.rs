//! Where a problem in `town.toml` is: byte spans to lines, dotted keys to lines, spans to
//! dotted keys. Every config error goes through [`Locator::error`] so they all read
//! `<file>:<line>: <dotted key>: <what is wrong>`.

use std::ops::Range;
use std::path::Path;

use toml_edit::{Item, TableLike, Value};

use crate::Error;

/// 1-based line and column (in characters) of byte offset `pos` in `src`.
pub(crate) fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = floor_boundary(src, pos);
    let before = &src[..pos];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// The first line of a (possibly multi-line) message, trimmed.
pub(crate) fn first_line(msg: &str) -> &str {
    msg.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// A key as written in a dotted path: bare when it can be, quoted otherwise.
fn render_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        let mut out = String::from("\"");
        for c in key.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

/// `a.b."c d"`.
pub(crate) fn dotted<S: AsRef<str>>(path: &[S]) -> String {
    path.iter()
        .map(|k| render_key(k.as_ref()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Turns positions and dotted keys of one parsed file into located error messages.
pub(crate) struct Locator<'a> {
    pub file: &'a Path,
    pub src: &'a str,
    pub root: &'a dyn TableLike,
}

impl<'a> Locator<'a> {
    /// The line of a dotted key: the key itself when present, else the closest table that
    /// is (so "missing key" problems point at their table's header).
    pub fn line_of<S: AsRef<str>>(&self, path: &[S]) -> Option<usize> {
        let mut table: Option<&dyn TableLike> = Some(self.root);
        let mut best: Option<Range<usize>> = None;
        for seg in path {
            let Some(t) = table else { break };
            let Some((key, item)) = t.get_key_value(seg.as_ref()) else {
                break;
            };
            if let Some(span) = key.span().or_else(|| item.span()) {
                best = Some(span);
            }
            table = item.as_table_like();
        }
        best.map(|s| line_col(self.src, s.start).0)
    }

    /// `file:line: key: msg` (or `file: key: msg` when the key is nowhere in the file).
    pub fn message<S: AsRef<str>>(&self, path: &[S], msg: &str) -> String {
        let file = self.file.display();
        let key = dotted(path);
        let sep = if key.is_empty() { "" } else { ": " };
        match self.line_of(path) {
            Some(line) => format!("{file}:{line}: {key}{sep}{msg}"),
            None => format!("{file}: {key}{sep}{msg}"),
        }
    }

    pub fn error<S: AsRef<str>>(&self, path: &[S], msg: &str) -> Error {
        Error::BadInput(self.message(path, msg))
    }

    /// The dotted key whose key or value covers byte offset `pos`, if any.
    pub fn path_at(&self, pos: usize) -> Vec<String> {
        let mut path = Vec::new();
        find_in_table(self.root, pos, &mut path);
        path
    }
}

/// A TOML syntax error (from `toml_edit` or `toml`), located and worded for a person:
/// `file:line:col: key: what is wrong`. The key is the statement's dotted key (its table
/// included) when the line holds one. A duplicate key or table names the line it was first
/// given on, which the TOML libraries know but do not report. Unterminated strings say so.
pub(crate) fn syntax_error(
    file: &Path,
    src: &str,
    span: Option<Range<usize>>,
    message: &str,
) -> Error {
    let file = file.display();
    let msg = first_line(message);
    let mut pos = span.as_ref().map_or(0, |s| s.start).min(src.len());
    let unterminated_multiline = [
        ("invalid multi-line basic string", "\"\"\""),
        ("invalid multi-line literal string", "'''"),
    ]
    .into_iter()
    .find(|(m, _)| msg.starts_with(m))
    .map(|(_, quotes)| quotes);
    if let Some(quotes) = unterminated_multiline {
        // Reported at the end of the file; the string (and its key) start at the last opening
        // quotes before it.
        if let Some(open) = src[..floor_boundary(src, pos)].rfind(quotes) {
            pos = open;
        }
    }
    let place = TableAt::new(src, pos);
    // A string left open on its line: at its opening quote (the parser often trips later,
    // over the array or table the string swallowed).
    let unclosed = match unterminated_multiline {
        None => scan(place.text).unclosed,
        Some(_) => None,
    };
    if let Some((at, _)) = unclosed {
        pos = place.start + at;
    }
    let (line, col) = line_col(src, pos);
    if msg == "duplicate key" {
        if let Some(text) = place.duplicate(src, span.clone()) {
            return Error::BadInput(format!("{file}:{line}: {text}"));
        }
    }
    let reworded = if let Some(quotes) = unterminated_multiline {
        format!("unterminated multi-line string: no closing {quotes} before the end of the file")
    } else if let Some((_, q)) = unclosed {
        format!(
            "unterminated string: the closing {q} is missing (a {q}...{q} string ends on its line)"
        )
    } else if place.no_value {
        "missing value after =".into()
    } else {
        msg.to_string()
    };
    match place.statement_key() {
        Some(key) => Error::BadInput(format!("{file}:{line}:{col}: {key}: {reworded}")),
        None => Error::BadInput(format!("{file}:{line}:{col}: {reworded}")),
    }
}

fn floor_boundary(src: &str, mut pos: usize) -> usize {
    pos = pos.min(src.len());
    while !src.is_char_boundary(pos) {
        pos -= 1;
    }
    pos
}

/// What is known about the statement on the line of a syntax error: the document before that
/// line (parsed on its own; `None` when it does not parse), the table that line is in, and the
/// line's own key or header.
struct TableAt<'a> {
    /// The line, trimmed, and where it starts in the source.
    text: &'a str,
    start: usize,
    before: Option<toml_edit::Document<String>>,
    table: Vec<String>,
    /// The line's dotted key (relative to `table`) or header path (absolute).
    own: Option<Vec<String>>,
    header: bool,
    /// A `key =` line with nothing after the `=`.
    no_value: bool,
}

impl<'a> TableAt<'a> {
    fn new(src: &'a str, pos: usize) -> TableAt<'a> {
        let pos = floor_boundary(src, pos);
        let line_start = src[..pos].rfind('\n').map_or(0, |i| i + 1);
        let end = src[pos..].find('\n').map_or(src.len(), |i| pos + i);
        let line = &src[line_start..end];
        let text = line.trim();
        let start = line_start + (line.len() - line.trim_start().len());
        let before = toml_edit::Document::parse(src[..start].to_string()).ok();
        let table = before
            .as_ref()
            .map(|d| current_table(d.as_table()))
            .unwrap_or_default();
        let header = text.starts_with('[');
        let key = (!header)
            .then(|| scan(text).eq)
            .flatten()
            .map(|eq| text[..eq].trim())
            .filter(|k| !k.is_empty());
        let own = match key {
            _ if header => key_path_of(text),
            Some(k) => key_path_of(&format!("{k} = 0")),
            None => None,
        };
        let no_value = key.is_some_and(|k| {
            let rest = text[k.len()..].trim_start().trim_start_matches('=').trim();
            rest.is_empty() || rest.starts_with('#')
        });
        TableAt {
            text,
            start,
            before,
            table,
            own,
            header,
            no_value,
        }
    }

    /// The line's key with its table: `patrol.idle`, or `rigs.app` for a `[rigs.app]` header.
    fn statement_key(&self) -> Option<String> {
        let own = self.own.as_ref()?;
        Some(if self.header {
            dotted(own)
        } else {
            dotted(&[self.table.clone(), own.clone()].concat())
        })
    }

    /// The words for a duplicate key (after `file:line: `), when the line's statement is it.
    fn duplicate(&self, src: &str, span: Option<Range<usize>>) -> Option<String> {
        let own = self.own.as_ref()?;
        let raw = src.get(span?)?;
        let dup = key_path_of(&format!("{raw} = 0"))?.pop()?;
        let key = self.statement_key()?;
        if own.last() != Some(&dup) {
            // Inside the value, an inline table's key.
            return Some(format!(
                "{key}: the key {} is given twice in this value",
                dotted(&[dup])
            ));
        }
        let path = if self.header {
            own.clone()
        } else {
            [self.table.clone(), own.clone()].concat()
        };
        let first = self
            .before
            .as_ref()
            .and_then(|d| first_line_of(d.as_table(), d.raw(), &path));
        Some(match (self.header, first) {
            (true, Some(l)) => format!(
                "{key}: the table [{key}] is defined twice (first on line {l}); merge the two"
            ),
            (true, None) => format!("{key}: the table [{key}] is defined twice"),
            (false, Some(l)) => {
                format!("{key}: duplicate key, set twice (first on line {l}); keep one")
            }
            (false, None) => format!("{key}: duplicate key, set twice; keep one"),
        })
    }
}

/// Where a line's first `=` outside quotes is, and the quote a line leaves open (its offset
/// and character), comments and lines with multi-line strings aside.
struct Scan {
    eq: Option<usize>,
    unclosed: Option<(usize, char)>,
}

fn scan(line: &str) -> Scan {
    let mut out = Scan {
        eq: None,
        unclosed: None,
    };
    let mut quote: Option<(usize, char)> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some((_, '"')) if escaped => escaped = false,
            Some((_, '"')) if c == '\\' => escaped = true,
            Some((_, q)) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some((i, c)),
            None if c == '=' && out.eq.is_none() => out.eq = Some(i),
            None if c == '#' => return out,
            None => {}
        }
    }
    if !line.contains("\"\"\"") && !line.contains("'''") {
        out.unclosed = quote;
    }
    out
}

/// The dotted key of the one statement in `text` (`a.b = 0`, `[a.b]`, `[[a]]`).
fn key_path_of(text: &str) -> Option<Vec<String>> {
    let doc = toml_edit::Document::parse(text.to_string()).ok()?;
    let mut table: &dyn TableLike = doc.as_table();
    let mut path = Vec::new();
    loop {
        let mut entries = table.iter();
        let (Some((k, item)), None) = (entries.next(), entries.next()) else {
            break;
        };
        path.push(k.to_string());
        match item.as_table_like() {
            Some(t) if !t.is_empty() && !item.is_inline_table() => table = t,
            _ => break,
        }
    }
    (!path.is_empty()).then_some(path)
}

/// The path of the last `[table]` or `[[array]]` header in `root` (empty: the root table).
fn current_table(root: &toml_edit::Table) -> Vec<String> {
    fn walk(t: &toml_edit::Table, path: &mut Vec<String>, best: &mut (isize, Vec<String>)) {
        for (k, item) in t.iter() {
            path.push(k.to_string());
            let tables: Vec<&toml_edit::Table> = match item {
                Item::Table(t) => vec![t],
                Item::ArrayOfTables(a) => a.iter().collect(),
                _ => Vec::new(),
            };
            for t in tables {
                if !t.is_implicit() && !t.is_dotted() {
                    if let Some(p) = t.position() {
                        if p >= best.0 {
                            *best = (p, path.clone());
                        }
                    }
                }
                walk(t, path, best);
            }
            path.pop();
        }
    }
    let mut best = (isize::MIN, Vec::new());
    walk(root, &mut Vec::new(), &mut best);
    best.1
}

/// The line where `path` (a dotted key or a table) is first given in `root`, parsed from
/// `src`; an array of tables stands for its last element, as it does while parsing.
fn first_line_of(root: &dyn TableLike, src: &str, path: &[String]) -> Option<usize> {
    let mut table = root;
    let mut span = None;
    for (i, seg) in path.iter().enumerate() {
        let (key, item) = table.get_key_value(seg)?;
        span = key.span().or_else(|| item.span()).or(span);
        if i + 1 < path.len() {
            table = match item {
                Item::ArrayOfTables(a) => a.iter().last()? as &dyn TableLike,
                other => other.as_table_like()?,
            };
        }
    }
    span.map(|s| line_col(src, s.start).0)
}

fn covers(span: Option<Range<usize>>, pos: usize) -> bool {
    match span {
        Some(s) if s.start == s.end => s.start == pos,
        Some(s) => s.start <= pos && pos < s.end,
        None => false,
    }
}

fn find_in_table(table: &dyn TableLike, pos: usize, path: &mut Vec<String>) -> bool {
    for (name, item) in table.iter() {
        path.push(name.to_string());
        if table.key(name).is_some_and(|k| covers(k.span(), pos)) {
            return true;
        }
        if find_in_item(item, pos, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn find_in_item(item: &Item, pos: usize, path: &mut Vec<String>) -> bool {
    match item {
        Item::None => false,
        Item::Value(v) => find_in_value(v, pos, path),
        Item::Table(t) => covers(t.span(), pos) || find_in_table(t, pos, path),
        Item::ArrayOfTables(a) => {
            a.iter().any(|t| find_in_table(t, pos, path)) || covers(a.span(), pos)
        }
    }
}

fn find_in_value(value: &Value, pos: usize, path: &mut Vec<String>) -> bool {
    if let Value::InlineTable(t) = value {
        if find_in_table(t, pos, path) {
            return true;
        }
    }
    covers(value.span(), pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters() {
        let src = "a = 1\nb = \"é\"x\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // byte 11 is after the two-byte é: column counts characters
        assert_eq!(line_col(src, 11), (2, 6));
        // out of range and mid-character offsets do not panic
        assert_eq!(line_col(src, 10), (2, 5));
        assert_eq!(line_col(src, 999).0, 3);
    }

    #[test]
    fn dotted_quotes_keys_that_are_not_bare() {
        assert_eq!(dotted(&["rigs", "my.rig", "url"]), "rigs.\"my.rig\".url");
        assert_eq!(dotted(&["patrol", "stall_after"]), "patrol.stall_after");
    }
}
