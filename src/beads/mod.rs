//! The Beads store: SQLite in WAL mode, the single source of truth for beads, dependencies,
//! convoys, mail, agents, merge requests and the audit trail.
//!
//! Synchronous rusqlite only; async callers go through `spawn_blocking` or a store thread.
//! Every write runs in a `BEGIN IMMEDIATE` transaction, so many processes can write at once
//! (each waits its turn under the busy timeout) and a read-check-write inside one write is
//! atomic: that is what makes `claim` a compare-and-swap across processes.

mod agents;
mod convoy;
mod deps;
mod events;
mod heartbeat;
pub mod ids;
mod issues;
pub mod jsonl;
mod mail;
pub mod model;
mod molecule;
mod mq;
mod ready;
mod rows;
mod schema;
mod usage;

pub use agents::{agent_state, check_agent_name, name_pool, role, DoneOutcome, DoneStatus, Slung};
pub use convoy::AUTO_DISPATCH;
pub use events::ev;
pub use issues::Closed;
pub use jsonl::{bead_to_json, ImportReport};
pub use mail::check_address;
pub use model::*;
pub use molecule::{MoleculePlan, Poured};
pub use mq::{tail as mq_tail, Landed};
pub use ready::DEFAULT_LIMIT;
pub use schema::SCHEMA_VERSION;
pub use usage::{GroupBy, Spender, Tokens, UsageRecord, UsageRow};

use crate::clock::Clock;
use crate::{Error, Result};
use chrono::SecondsFormat;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a writer waits for another process's write transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// An open store. Cheap to open; one per thread or process.
pub struct Store {
    conn: Connection,
    clock: Arc<dyn Clock>,
    prefix: String,
    path: Option<PathBuf>,
}

/// The context of one write transaction: the connection inside `BEGIN IMMEDIATE`, and the
/// transaction's timestamp (every row a write touches gets the same one).
pub(crate) struct Tx<'a> {
    pub conn: &'a Connection,
    pub now: String,
    pub now_ns: i64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed, readable by the owner only) the store at `path`, applies any
    /// pending migrations, and uses `prefix` for new ids.
    pub fn open(path: &Path, prefix: &str, clock: Arc<dyn Clock>) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                return Err(Error::bad(format!(
                    "no store directory {} (is this a town? run `gastown-tui init`)",
                    dir.display()
                )));
            }
        }
        create_private(path)?;
        let conn = Connection::open(path)?;
        Self::setup(conn, prefix, clock, Some(path.to_path_buf()))
    }

    /// A private in-memory store, for tests and benchmarks.
    pub fn open_in_memory(prefix: &str, clock: Arc<dyn Clock>) -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        Self::setup(conn, prefix, clock, None)
    }

    fn setup(
        conn: Connection,
        prefix: &str,
        clock: Arc<dyn Clock>,
        path: Option<PathBuf>,
    ) -> Result<Store> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers never block the writer; NORMAL sync is durable across a crash of the
        // process (kill -9), which is the failure this program must survive.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if path.is_some() && !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Conflict(format!(
                "the store could not switch to WAL mode (got {mode})"
            )));
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;")?;
        schema::migrate(&conn)?;
        Ok(Store {
            conn,
            clock,
            prefix: prefix.to_string(),
            path,
        })
    }

    /// The prefix new ids get.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where the database file is (None for an in-memory store).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The raw connection, for read-only queries in this module's siblings and in tests.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// SQLite's `data_version`: changes whenever another connection commits a change. Cheap;
    /// the engine polls it to notice writes from other processes.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    fn stamp(&self) -> (String, i64) {
        let now = self.clock.now();
        (
            now.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            now.timestamp_nanos_opt().unwrap_or(0),
        )
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE` transaction and commits; rolls back on error.
    /// Every write bumps the export version so the JSONL flusher knows there is work.
    fn write<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        self.write_inner(true, f)
    }

    /// A write that changes only bookkeeping (the flusher's own rows): the export version is
    /// left alone, or flushing would make the store dirty again.
    fn write_bookkeeping<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        self.write_inner(false, f)
    }

    fn write_inner<T>(&self, bump: bool, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let (now, now_ns) = self.stamp();
        let ctx = Tx {
            conn: &tx,
            now,
            now_ns,
        };
        let out = f(&ctx)?;
        if bump {
            bump_export_version(&tx)?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` in one read transaction, so it sees a single consistent snapshot.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// The current time as the store writes it (RFC 3339, UTC).
    pub fn now_string(&self) -> String {
        self.stamp().0
    }

    /// The current time in unix nanoseconds, from the store's clock.
    pub fn now_ns(&self) -> i64 {
        self.stamp().1
    }

    /// A value from the `meta` table.
    pub fn meta_get(&self, key: &str) -> Result<Option<String>> {
        meta_get(&self.conn, key)
    }
}

pub(crate) fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

pub(crate) fn meta_i64(conn: &Connection, key: &str) -> Result<i64> {
    Ok(meta_get(conn, key)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

fn bump_export_version(conn: &Connection) -> Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('export_version', '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        [],
    )?;
    Ok(())
}

/// Creates `path` with mode 0600 if it does not exist, so the database (and the WAL and SHM
/// files SQLite derives from it) are readable by the owner only.
fn create_private(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .map(|_| ())
        .map_err(|e| Error::io("create", path, e))
}

/// Normalises a user-given actor or agent name: trimmed, non-empty.
pub fn check_actor(actor: &str) -> Result<&str> {
    let a = actor.trim();
    if a.is_empty() {
        return Err(Error::bad("the actor name is empty (use --as NAME)"));
    }
    if a.chars().any(|c| c.is_control()) {
        return Err(Error::bad(format!(
            "the actor name {actor:?} contains control characters"
        )));
    }
    Ok(a)
}

/// Parses an RFC 3339 instant into unix nanoseconds, naming `what` on failure.
pub fn parse_instant(s: &str, what: &str) -> Result<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| {
            Error::bad(format!(
                "{what}: {s:?} is not an RFC 3339 time (e.g. 2026-01-31T09:00:00Z)"
            ))
        })
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::clock::TestClock;
    use chrono::TimeZone;

    /// An in-memory store whose clock starts at 2026-01-01 and ticks 1 ms per reading.
    pub fn store() -> Store {
        let start = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Store::open_in_memory("gt", TestClock::new(start, 1_000_000)).unwrap()
    }

    pub fn task(title: &str) -> NewBead {
        NewBead {
            title: title.to_string(),
            ..Default::default()
        }
    }
}
