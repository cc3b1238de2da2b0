//! The audit trail: every change appends an event inside the same transaction.

use super::{Event, Store, Tx};
use crate::Result;
use rusqlite::{params, Connection, Row};

/// Event kinds this program writes.
pub mod ev {
    pub const CREATED: &str = "created";
    pub const UPDATED: &str = "updated";
    pub const STATUS_CHANGED: &str = "status_changed";
    pub const CLAIMED: &str = "claimed";
    pub const ASSIGNED: &str = "assigned";
    pub const CLOSED: &str = "closed";
    pub const REOPENED: &str = "reopened";
    pub const LABELED: &str = "labeled";
    pub const UNLABELED: &str = "unlabeled";
    pub const DEP_ADDED: &str = "dep_added";
    pub const DEP_REMOVED: &str = "dep_removed";
    pub const COMMENTED: &str = "commented";
    pub const IMPORTED: &str = "imported";
    pub const READ: &str = "read";
    pub const AGENT_REGISTERED: &str = "agent_registered";
    pub const AGENT_STATE: &str = "agent_state";
    pub const HOOKED: &str = "hooked";
    pub const UNHOOKED: &str = "unhooked";
    pub const RESTARTED: &str = "restarted";
    pub const SUBMITTED: &str = "submitted";
    pub const MERGED: &str = "merged";
    pub const REJECTED: &str = "rejected";
    pub const MR_STATE: &str = "mr_state";
    /// The patrols' decisions.
    pub const NUDGED: &str = "nudged";
    pub const ESCALATED: &str = "escalated";
    /// The town answered a dialog it owns on an agent's screen (folder trust, bypass).
    pub const ANSWERED: &str = "answered";
    pub const REAPED: &str = "reaped";
    pub const WORKTREE_REMOVED: &str = "worktree_removed";
    pub const WORKTREE_KEPT: &str = "worktree_kept";
    pub const ZOMBIE: &str = "zombie";
    pub const DISPATCHED: &str = "dispatched";
    pub const FROZEN: &str = "frozen";
    pub const THAWED: &str = "thawed";
    /// A budget was reached (the detail says which and what was spent).
    pub const BUDGET: &str = "budget";
}

impl Store {
    /// Records a decision that changes no other row (a patrol's nudge, an escalation, ...).
    pub fn record_event(&self, subject: &str, kind: &str, actor: &str, detail: &str) -> Result<()> {
        self.write(|tx| {
            tx.simple_event(subject, kind, actor, (!detail.is_empty()).then_some(detail))
        })
    }
}

/// What one event says, before it is written.
#[derive(Debug, Default, Clone)]
pub(crate) struct NewEvent<'a> {
    pub subject: &'a str,
    pub kind: &'a str,
    pub actor: &'a str,
    pub old: Option<&'a str>,
    pub new: Option<&'a str>,
    pub detail: Option<&'a str>,
}

impl Tx<'_> {
    pub(crate) fn event(&self, e: NewEvent) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO events(subject, kind, actor, old_value, new_value, detail, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                e.subject, e.kind, e.actor, e.old, e.new, e.detail, self.now
            ])?;
        Ok(())
    }

    /// Shorthand for an event with only a subject, a kind and an actor (and maybe a detail).
    pub(crate) fn simple_event(
        &self,
        subject: &str,
        kind: &str,
        actor: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        self.event(NewEvent {
            subject,
            kind,
            actor,
            detail,
            ..Default::default()
        })
    }
}

fn event_from_row(r: &Row) -> rusqlite::Result<Event> {
    Ok(Event {
        id: r.get(0)?,
        subject: r.get(1)?,
        kind: r.get(2)?,
        actor: r.get(3)?,
        old_value: r.get(4)?,
        new_value: r.get(5)?,
        detail: r.get(6)?,
        created_at: r.get(7)?,
    })
}

const EVENT_COLS: &str = "id, subject, kind, actor, old_value, new_value, detail, created_at";

fn query_events(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(p, event_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

impl Store {
    /// The newest `limit` events, oldest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<Event>> {
        let mut v = query_events(
            self.conn(),
            &format!("SELECT {EVENT_COLS} FROM events ORDER BY id DESC LIMIT ?1"),
            [limit as i64],
        )?;
        v.reverse();
        Ok(v)
    }

    /// Events with an id greater than `after`, oldest first (for `feed --follow`).
    pub fn events_after(&self, after: i64, limit: usize) -> Result<Vec<Event>> {
        query_events(
            self.conn(),
            &format!("SELECT {EVENT_COLS} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"),
            [after, limit as i64],
        )
    }

    /// Every event about one subject (a bead id, an agent name, `mr-<n>`), oldest first.
    pub fn events_for(&self, subject: &str) -> Result<Vec<Event>> {
        query_events(
            self.conn(),
            &format!("SELECT {EVENT_COLS} FROM events WHERE subject = ?1 ORDER BY id"),
            [subject],
        )
    }
}

impl Event {
    /// One human sentence for the feed: "nux claimed gt-a3f", "refinery rejected mr-3: ...".
    pub fn summary(&self) -> String {
        let (a, s) = (&self.actor, &self.subject);
        let old = self.old_value.as_deref().unwrap_or("");
        let new = self.new_value.as_deref().unwrap_or("");
        let detail = self.detail.as_deref().unwrap_or("");
        let with_detail = |base: String| {
            if detail.is_empty() {
                base
            } else {
                format!("{base}: {detail}")
            }
        };
        match self.kind.as_str() {
            ev::CREATED if new == "message" => format!("{a} sent mail {s} \"{detail}\""),
            ev::CREATED => format!("{a} created {new} {s} \"{detail}\""),
            ev::UPDATED => format!("{a} updated {s} ({detail})"),
            ev::STATUS_CHANGED => with_detail(format!("{a} moved {s} from {old} to {new}")),
            ev::CLAIMED => format!("{a} claimed {s}"),
            ev::ASSIGNED if new.is_empty() => format!("{a} unassigned {s}"),
            ev::ASSIGNED => format!("{a} assigned {s} to {new}"),
            ev::CLOSED => with_detail(format!("{a} closed {s}")),
            ev::REOPENED => with_detail(format!("{a} reopened {s}")),
            ev::LABELED => format!("{a} labeled {s} {detail}"),
            ev::UNLABELED => format!("{a} removed label {detail} from {s}"),
            ev::DEP_ADDED => format!("{a} linked {s} -> {new} ({detail})"),
            ev::DEP_REMOVED => format!("{a} unlinked {s} -> {old} ({detail})"),
            ev::COMMENTED => format!("{a} commented on {s}: {detail}"),
            ev::IMPORTED => format!("{a} imported {s} from {detail}"),
            ev::READ => format!("{a} read mail {s}"),
            ev::AGENT_REGISTERED => format!("{a} registered {new} {s}"),
            ev::AGENT_STATE => with_detail(format!("{s} is {new} (was {old})")),
            ev::HOOKED => format!("{a} hooked {s} to {new}"),
            ev::UNHOOKED => format!("{a} took {s} off {old}'s hook"),
            ev::RESTARTED => with_detail(format!("{a} restarted {s}")),
            ev::SUBMITTED => format!("{a} submitted {new} as {s}"),
            ev::MERGED => format!("{a} merged {s}"),
            ev::REJECTED => with_detail(format!("{a} rejected {s} ({new})")),
            ev::MR_STATE => format!("{s} is {new}"),
            ev::NUDGED => with_detail(format!("{a} nudged {s}")),
            ev::ESCALATED => with_detail(format!("{a} escalated {s} to the overseer")),
            ev::ANSWERED => with_detail(format!("{a} answered {s}'s dialog")),
            ev::REAPED => with_detail(format!("{a} reaped {s}")),
            ev::WORKTREE_REMOVED => with_detail(format!("{a} removed {s}'s worktree")),
            ev::WORKTREE_KEPT => with_detail(format!("{a} kept {s}'s worktree")),
            ev::ZOMBIE => with_detail(format!("{a} found {s} a zombie")),
            ev::DISPATCHED => with_detail(format!("{a} dispatched {s}")),
            ev::FROZEN => with_detail(format!("{a} froze {s}")),
            ev::THAWED => with_detail(format!("{a} thawed {s}")),
            ev::BUDGET => with_detail(format!("budget reached for {s}")),
            other => with_detail(format!("{a} {other} {s}")),
        }
    }
}
