//! Printing: `--json` and the human tables.

use crate::beads::{bead_to_json, Bead};
use crate::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::io::Write;

/// Prints `v` as indented JSON on stdout.
pub fn json<T: Serialize + ?Sized>(v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v)?;
    line(&text)
}

/// How a command prints: for a person, or as JSON (`--json`, which every command takes).
#[derive(Debug, Clone, Copy, Default)]
pub struct Out {
    pub json: bool,
}

impl Out {
    /// One result: `value` as JSON, else what `human` prints.
    pub fn one<T: Serialize + ?Sized>(
        self,
        value: &T,
        human: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        if self.json {
            json(value)
        } else {
            human()
        }
    }

    /// A listing: `value` (an array) as JSON; else `empty` when there is nothing to list, else
    /// the lines `rows` makes (a [`table`], usually).
    pub fn list<T: Serialize + ?Sized>(
        self,
        value: &T,
        is_empty: bool,
        empty: &str,
        rows: impl FnOnce() -> Vec<String>,
    ) -> Result<()> {
        if self.json {
            json(value)
        } else if is_empty {
            line(empty)
        } else {
            lines(&rows())
        }
    }
}

/// Prints each of `lines` on stdout.
pub fn lines(lines: &[String]) -> Result<()> {
    for l in lines {
        line(l)?;
    }
    Ok(())
}

/// Prints one line on stdout; a closed pipe (`| head`) ends quietly instead of panicking.
pub fn line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Error::io("write", "stdout", e)),
    }
}

/// A bead as JSON: the Beads record plus the derived `blocked` flag.
pub fn bead_value(b: &Bead) -> Value {
    let mut m = bead_to_json(b);
    m.insert("blocked".into(), b.blocked.into());
    Value::Object(m)
}

pub fn beads_value(beads: &[Bead]) -> Value {
    Value::Array(beads.iter().map(bead_value).collect())
}

/// A bead's long texts (description, design, acceptance criteria, notes), each under its
/// heading, indented by `indent`; empty ones are left out.
pub fn bead_texts(b: &Bead, indent: &str) -> Result<()> {
    for (label, text) in [
        ("Description", &b.description),
        ("Design", &b.design),
        ("Acceptance criteria", &b.acceptance_criteria),
        ("Notes", &b.notes),
    ] {
        if !text.is_empty() {
            line("")?;
            line(&format!("{label}:"))?;
            for l in text.lines() {
                line(&format!("{indent}{l}"))?;
            }
        }
    }
    Ok(())
}

/// `2026-01-31T09:05:00.123Z` -> `2026-01-31 09:05`.
pub fn short_time(t: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(d) => d
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        Err(_) => t.to_string(),
    }
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    rows.iter()
        .map(|r| {
            let mut s = String::new();
            for (i, c) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
                }
            }
            s.trim_end().to_string()
        })
        .collect()
}

/// The bead listing used by `list` and `ready`.
pub fn bead_rows(beads: &[Bead]) -> Vec<String> {
    let mut rows = vec![vec![
        "ID".to_string(),
        "PRI".into(),
        "TYPE".into(),
        "STATUS".into(),
        "ASSIGNEE".into(),
        "TITLE".into(),
    ]];
    for b in beads {
        let status = if b.blocked && b.status == "open" {
            "blocked*".to_string()
        } else {
            b.status.clone()
        };
        let mut title = b.title.clone();
        if !b.labels.is_empty() {
            title.push_str(&format!("  [{}]", b.labels.join(", ")));
        }
        rows.push(vec![
            b.id.clone(),
            format!("P{}", b.priority),
            b.issue_type.clone(),
            status,
            if b.assignee.is_empty() {
                "-".into()
            } else {
                b.assignee.clone()
            },
            title,
        ]);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_the_widest_cell() {
        let rows = vec![
            vec!["ID".to_string(), "TITLE".to_string()],
            vec!["gt-abcdef".to_string(), "x".to_string()],
        ];
        assert_eq!(table(&rows), vec!["ID         TITLE", "gt-abcdef  x"]);
    }
}
