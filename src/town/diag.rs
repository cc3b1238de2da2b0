//! Where a problem in `town.toml` is: byte spans to lines, dotted keys to lines, spans to
//! dotted keys. Every config error goes through [`Locator::error`] so they all read
//! `<file>:<line>: <dotted key>: <what is wrong>`.

use std::ops::Range;
use std::path::Path;

use toml_edit::{Item, TableLike, Value};

use crate::Error;

/// 1-based line and column (in characters) of byte offset `pos` in `src`.
pub(crate) fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(src.len());
    while !src.is_char_boundary(pos) {
        pos -= 1;
    }
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
