//! The store's schema, applied as numbered migrations tracked in `PRAGMA user_version`.

use crate::{Error, Result};
use rusqlite::Connection;

/// Each entry moves the schema from version `index` to `index + 1`. Append only: a released
/// migration is never edited.
const MIGRATIONS: &[&str] = &[
    // 1: the whole first schema.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE beads (
        id                  TEXT PRIMARY KEY,
        title               TEXT NOT NULL,
        description         TEXT NOT NULL DEFAULT '',
        design              TEXT NOT NULL DEFAULT '',
        acceptance_criteria TEXT NOT NULL DEFAULT '',
        notes               TEXT NOT NULL DEFAULT '',
        status              TEXT NOT NULL DEFAULT 'open',
        priority            INTEGER NOT NULL DEFAULT 2,
        issue_type          TEXT NOT NULL DEFAULT 'task',
        assignee            TEXT NOT NULL DEFAULT '',
        created_at          TEXT NOT NULL,
        created_ns          INTEGER NOT NULL,
        created_by          TEXT NOT NULL DEFAULT '',
        updated_at          TEXT NOT NULL,
        closed_at           TEXT,
        close_reason        TEXT NOT NULL DEFAULT '',
        defer_until         TEXT,
        defer_ns            INTEGER,
        ephemeral           INTEGER NOT NULL DEFAULT 0,
        metadata            TEXT,
        extra               TEXT,
        -- derived: 1 while a blocking dependency holds this bead back (maintained on write)
        blocked             INTEGER NOT NULL DEFAULT 0,
        child_counter       INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX beads_ready ON beads(priority, created_ns, id) WHERE status = 'open' AND blocked = 0;
    CREATE INDEX beads_status ON beads(status, issue_type);
    CREATE INDEX beads_inbox ON beads(issue_type, assignee, status);

    CREATE TABLE prefix_counts (
        prefix TEXT PRIMARY KEY,
        n      INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE labels (
        issue_id TEXT NOT NULL,
        label    TEXT NOT NULL,
        PRIMARY KEY (issue_id, label)
    ) WITHOUT ROWID;
    CREATE INDEX labels_label ON labels(label);

    CREATE TABLE deps (
        issue_id      TEXT NOT NULL,
        depends_on_id TEXT NOT NULL,
        type          TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        created_by    TEXT NOT NULL DEFAULT '',
        extra         TEXT,
        PRIMARY KEY (issue_id, depends_on_id)
    ) WITHOUT ROWID;
    CREATE INDEX deps_reverse ON deps(depends_on_id, type);

    CREATE TABLE comments (
        rowid_      INTEGER PRIMARY KEY,
        comment_id  INTEGER NOT NULL,
        issue_id    TEXT NOT NULL,
        author      TEXT NOT NULL,
        text        TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        extra       TEXT
    );
    CREATE INDEX comments_issue ON comments(issue_id, comment_id);
    CREATE INDEX comments_id ON comments(comment_id);

    CREATE TABLE events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        subject     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        actor       TEXT NOT NULL,
        old_value   TEXT,
        new_value   TEXT,
        detail      TEXT,
        created_at  TEXT NOT NULL
    );
    CREATE INDEX events_subject ON events(subject, id);

    CREATE TABLE agents (
        name          TEXT PRIMARY KEY,
        role          TEXT NOT NULL,
        rig           TEXT NOT NULL DEFAULT '',
        runtime       TEXT NOT NULL DEFAULT '',
        state         TEXT NOT NULL DEFAULT 'idle',
        hooked_bead   TEXT,
        session       TEXT,
        pid           INTEGER,
        last_activity TEXT,
        restarts      INTEGER NOT NULL DEFAULT 0,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE merge_requests (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        rig           TEXT NOT NULL,
        branch        TEXT NOT NULL,
        bead_id       TEXT,
        submitter     TEXT NOT NULL,
        state         TEXT NOT NULL DEFAULT 'queued',
        attempts      INTEGER NOT NULL DEFAULT 0,
        reason        TEXT NOT NULL DEFAULT '',
        test_log_tail TEXT NOT NULL DEFAULT '',
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    CREATE INDEX merge_requests_queue ON merge_requests(rig, state, id);
    "#,
    // 2: requests from other processes to the running engine (dropped in 5), and the engine's
    // heartbeat.
    r#"
    CREATE TABLE control (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        kind         TEXT NOT NULL,
        agent        TEXT NOT NULL,
        payload      TEXT NOT NULL DEFAULT '',
        requested_by TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        taken_at     TEXT,
        done_at      TEXT,
        ok           INTEGER,
        result       TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX control_pending ON control(id) WHERE taken_at IS NULL;
    "#,
    // 3: what agents report about themselves (agent-event), kept apart from the Witness's
    // verdict so both are visible.
    r#"
    ALTER TABLE agents ADD COLUMN reported_state TEXT;
    ALTER TABLE agents ADD COLUMN reported_at TEXT;
    "#,
    // 4: why the agent is in its state (shown beside it), and the runtime's own conversation
    // id (Claude's --session-id, Codex's session) with the bead it belongs to, so a restart
    // resumes the conversation.
    r#"
    ALTER TABLE agents ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';
    ALTER TABLE agents ADD COLUMN conversation TEXT;
    ALTER TABLE agents ADD COLUMN conversation_bead TEXT;
    "#,
    // 5: other processes ask the engine over its socket now: the control table of step 2 goes
    // (a request left in it was for an engine that is gone).
    r#"
    DROP TABLE control;
    "#,
    // 6: what the agents spent, read from each runtime's own records (one row per model
    // answer, keyed so a record read twice counts once), how far each record file has been
    // read, and the overseer's emergency stop per agent.
    r#"
    CREATE TABLE usage (
        key          TEXT PRIMARY KEY,
        agent        TEXT NOT NULL,
        rig          TEXT NOT NULL DEFAULT '',
        bead         TEXT,
        session      TEXT,
        conversation TEXT,
        runtime      TEXT NOT NULL DEFAULT '',
        model        TEXT NOT NULL,
        input        INTEGER NOT NULL DEFAULT 0,
        output       INTEGER NOT NULL DEFAULT 0,
        cache_read   INTEGER NOT NULL DEFAULT 0,
        cache_write  INTEGER NOT NULL DEFAULT 0,
        at_ns        INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX usage_at ON usage(at_ns);
    CREATE INDEX usage_bead ON usage(bead) WHERE bead IS NOT NULL;

    CREATE TABLE usage_sources (
        path   TEXT PRIMARY KEY,
        offset INTEGER NOT NULL DEFAULT 0,
        state  TEXT NOT NULL DEFAULT ''
    ) WITHOUT ROWID;

    ALTER TABLE agents ADD COLUMN frozen INTEGER NOT NULL DEFAULT 0;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to `SCHEMA_VERSION`, each step in its own immediate transaction, so
/// two processes opening a fresh store at once do not both apply a step.
pub fn migrate(conn: &Connection) -> Result<()> {
    // The common case, an up-to-date store, takes no write lock.
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    loop {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let step = (|| -> Result<bool> {
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version > SCHEMA_VERSION {
                return Err(Error::Conflict(format!(
                    "the store has schema version {version}, newer than this build understands \
                     ({SCHEMA_VERSION}); upgrade gastown-tui"
                )));
            }
            if version == SCHEMA_VERSION {
                return Ok(false);
            }
            conn.execute_batch(MIGRATIONS[version as usize])?;
            conn.pragma_update(None, "user_version", version + 1)?;
            Ok(true)
        })();
        match step {
            Ok(more) => {
                conn.execute_batch("COMMIT")?;
                if !more {
                    return Ok(());
                }
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beads::Store;
    use crate::clock;

    #[test]
    fn a_new_store_is_at_the_current_version_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("beads.db");
        let s = Store::open(&path, "gt", clock::system()).unwrap();
        let v: i64 = s
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = s
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        s.conn()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(s);
        let err = Store::open(&path, "gt", clock::system()).unwrap_err();
        assert!(err.to_string().contains("newer than this build"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "the store is readable by its owner only");
        }
    }
}
