//! Rows to beads and back, and the checks every write of a bead applies: shared by the
//! store's files (beads, dependencies, ready work, JSONL, mail) so none of them reaches into
//! another for its helpers.

use super::ids;
use super::model::{kind, priority, status};
use super::{Bead, Comment, Dependency};
use crate::{Error, Result};
use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

pub(crate) const BEAD_COLS: &str = "id, title, description, design, acceptance_criteria, notes, \
     status, priority, issue_type, assignee, created_at, created_by, updated_at, closed_at, \
     close_reason, defer_until, ephemeral, metadata, extra, blocked, pinned";

/// Longest title accepted (Beads' own limit).
const MAX_TITLE: usize = 500;

pub(crate) fn bead_from_row(r: &Row) -> rusqlite::Result<Bead> {
    let metadata: Option<String> = r.get(17)?;
    let extra: Option<String> = r.get(18)?;
    Ok(Bead {
        id: r.get(0)?,
        title: r.get(1)?,
        description: r.get(2)?,
        design: r.get(3)?,
        acceptance_criteria: r.get(4)?,
        notes: r.get(5)?,
        status: r.get(6)?,
        priority: r.get(7)?,
        issue_type: r.get(8)?,
        assignee: r.get(9)?,
        created_at: r.get(10)?,
        created_by: r.get(11)?,
        updated_at: r.get(12)?,
        closed_at: r.get(13)?,
        close_reason: r.get(14)?,
        defer_until: r.get(15)?,
        ephemeral: r.get::<_, i64>(16)? != 0,
        metadata: metadata.and_then(|m| serde_json::from_str(&m).ok()),
        extra: extra
            .and_then(|m| serde_json::from_str::<Map<String, Value>>(&m).ok())
            .unwrap_or_default(),
        labels: Vec::new(),
        dependencies: Vec::new(),
        comments: Vec::new(),
        blocked: r.get::<_, i64>(19)? != 0,
        pinned: r.get::<_, i64>(20)? != 0,
    })
}

fn extra_from(s: Option<String>) -> Map<String, Value> {
    s.and_then(|m| serde_json::from_str::<Map<String, Value>>(&m).ok())
        .unwrap_or_default()
}

/// A bead with its labels (no dependencies or comments), if it exists.
pub(crate) fn load_bead(conn: &Connection, id: &str) -> Result<Option<Bead>> {
    let bead = conn
        .prepare_cached(&format!("SELECT {BEAD_COLS} FROM beads WHERE id = ?1"))?
        .query_row([id], bead_from_row)
        .optional()?;
    match bead {
        Some(mut b) => {
            b.labels = load_labels(conn, id)?;
            Ok(Some(b))
        }
        None => Ok(None),
    }
}

pub(crate) fn must_load(conn: &Connection, id: &str) -> Result<Bead> {
    load_bead(conn, id)?.ok_or_else(|| Error::NotFound {
        kind: "bead",
        id: id.to_string(),
    })
}

pub(crate) fn load_labels(conn: &Connection, id: &str) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT label FROM labels WHERE issue_id = ?1 ORDER BY label")?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}

pub(crate) fn dep_from_row(r: &Row) -> rusqlite::Result<Dependency> {
    Ok(Dependency {
        issue_id: r.get(0)?,
        depends_on_id: r.get(1)?,
        dep_type: r.get(2)?,
        created_at: r.get(3)?,
        created_by: r.get(4)?,
        extra: extra_from(r.get(5)?),
    })
}

pub(crate) fn comment_from_row(r: &Row) -> rusqlite::Result<Comment> {
    Ok(Comment {
        id: r.get(0)?,
        issue_id: r.get(1)?,
        author: r.get(2)?,
        text: r.get(3)?,
        created_at: r.get(4)?,
        extra: extra_from(r.get(5)?),
    })
}

pub(crate) fn load_full(conn: &Connection, id: &str) -> Result<Bead> {
    let mut b = must_load(conn, id)?;
    let mut stmt = conn.prepare_cached(
        "SELECT issue_id, depends_on_id, type, created_at, created_by, extra
         FROM deps WHERE issue_id = ?1 ORDER BY seq, depends_on_id",
    )?;
    b.dependencies = stmt
        .query_map([id], dep_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT comment_id, issue_id, author, text, created_at, extra
         FROM comments WHERE issue_id = ?1 ORDER BY comment_id",
    )?;
    b.comments = stmt
        .query_map([id], comment_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(b)
}

pub(crate) fn check_status(s: &str) -> Result<()> {
    if status::ALL.contains(&s) {
        Ok(())
    } else {
        Err(Error::bad(format!(
            "unknown status '{s}' (expected one of: {})",
            status::ALL.join(", ")
        )))
    }
}

pub(crate) fn check_type(t: &str) -> Result<()> {
    if kind::ALL.contains(&t) {
        Ok(())
    } else {
        Err(Error::bad(format!(
            "unknown type '{t}' (expected one of: {})",
            kind::ALL.join(", ")
        )))
    }
}

pub(crate) fn check_priority(p: i64) -> Result<()> {
    if priority::valid(p) {
        Ok(())
    } else {
        Err(Error::bad(format!(
            "priority {p} is out of range ({})",
            priority::RANGE
        )))
    }
}

pub(crate) fn check_title(t: &str) -> Result<()> {
    if t.trim().is_empty() {
        return Err(Error::bad("the title is empty"));
    }
    if t.chars().count() > MAX_TITLE {
        return Err(Error::bad(format!(
            "the title is {} characters long; at most {MAX_TITLE} are allowed",
            t.chars().count()
        )));
    }
    Ok(())
}

pub(crate) fn check_label(l: &str) -> Result<()> {
    if l.trim().is_empty() || l.chars().any(|c| c.is_control() || c == ',') {
        return Err(Error::bad(format!(
            "label {l:?} is not valid (no empty labels, commas or control characters)"
        )));
    }
    Ok(())
}

pub(crate) fn check_id(id: &str) -> Result<()> {
    if ids::is_valid(id) {
        Ok(())
    } else {
        Err(Error::bad(format!(
            "'{id}' is not a bead id (expected <prefix>-<hash>, e.g. gt-a3f or gt-a3f.1)"
        )))
    }
}
