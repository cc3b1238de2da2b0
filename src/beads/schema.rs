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
    // 7: Beads interop on real data. `pinned` (bd's context markers) is a column, so ready work
    // can leave pinned beads out as it leaves out wisps, both inside the partial index that
    // serves it. `imported` marks beads that came in from a JSONL file: they go out again on
    // export even when they are wisps, while wisps made here stay out. Beads imported before
    // this step are known by their `imported` event, and a `"pinned": true` kept among their
    // unknown fields moves to the column. `deps.seq` keeps a bead's dependencies in the order
    // its record listed them (new ones after), so an export reproduces the record.
    r#"
    ALTER TABLE beads ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE beads ADD COLUMN imported INTEGER NOT NULL DEFAULT 0;
    UPDATE beads SET imported = 1
     WHERE id IN (SELECT subject FROM events WHERE kind = 'imported');
    UPDATE beads SET pinned = 1, extra = NULLIF(json_remove(extra, '$.pinned'), '{}')
     WHERE json_valid(extra) AND json_type(extra, '$.pinned') = 'true';
    DROP INDEX beads_ready;
    CREATE INDEX beads_ready ON beads(priority, created_ns, id)
     WHERE status = 'open' AND blocked = 0 AND ephemeral = 0 AND pinned = 0;
    ALTER TABLE deps ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    "#,
    // 8: what a merge produced. `merge_commit` is the commit the target moves to (written
    // before it moves, so a merge cut off by a crash is recognised as landed or not from it),
    // `source_tip` the branch commit it was made from and `style` how (squash, merge, rebase):
    // whether a polecat's branch is merged is decided from these, not from ancestry alone.
    r#"
    ALTER TABLE merge_requests ADD COLUMN style TEXT NOT NULL DEFAULT '';
    ALTER TABLE merge_requests ADD COLUMN source_tip TEXT;
    ALTER TABLE merge_requests ADD COLUMN merge_commit TEXT;
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
    fn step_7_keeps_imported_wisps_exported_and_moves_pinned_to_its_column() {
        // A store as version 6 left it: an imported wisp (known by its `imported` event), a
        // wisp made here, and an imported bead whose `"pinned": true` sat among its extras.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("beads.db");
        {
            let conn = Connection::open(&path).unwrap();
            for m in &MIGRATIONS[..6] {
                conn.execute_batch(m).unwrap();
            }
            conn.pragma_update(None, "user_version", 6).unwrap();
            conn.execute_batch(
                r#"INSERT INTO beads(id, title, status, issue_type, created_at, created_ns,
                       updated_at, ephemeral, extra)
                   VALUES ('gt-wisp-a1', 'imported wisp', 'open', 'task', 't', 1, 't', 1, NULL),
                          ('gt-w2', 'wisp made here', 'open', 'task', 't', 2, 't', 1, NULL),
                          ('gt-p3', 'pinned', 'open', 'task', 't', 3, 't', 0,
                           '{"pinned":true,"owner":"me"}'),
                          ('gt-p4', 'only pinned', 'open', 'task', 't', 4, 't', 0,
                           '{"pinned":true}'),
                          ('gt-o5', 'plain', 'open', 'task', 't', 5, 't', 0, '{"pinned":false}');
                   INSERT INTO events(subject, kind, actor, created_at)
                   VALUES ('gt-wisp-a1', 'imported', 'x', 't'), ('gt-p3', 'imported', 'x', 't'),
                          ('gt-p4', 'imported', 'x', 't'), ('gt-o5', 'imported', 'x', 't');"#,
            )
            .unwrap();
        }
        let s = Store::open(&path, "gt", clock::system()).unwrap();
        let p3 = s.get("gt-p3").unwrap();
        assert!(p3.pinned);
        assert_eq!(p3.extra.get("pinned"), None);
        assert_eq!(p3.extra["owner"], "me");
        assert!(s.get("gt-p4").unwrap().extra.is_empty());
        let o5 = s.get("gt-o5").unwrap();
        assert!(!o5.pinned && o5.extra["pinned"] == false);
        let ready: Vec<String> = s.ready(None).unwrap().into_iter().map(|b| b.id).collect();
        assert_eq!(ready, vec!["gt-o5".to_string()]);
        let mut out = Vec::new();
        s.export_jsonl(&mut out).unwrap();
        let ids: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect();
        assert_eq!(
            ids,
            ["\"gt-o5\"", "\"gt-p3\"", "\"gt-p4\"", "\"gt-wisp-a1\""]
        );
    }

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
