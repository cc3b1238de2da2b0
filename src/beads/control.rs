//! The control table: how other processes (the CLI, agents) ask the running engine to act on
//! live sessions (nudge, kill, restart, handoff, capture). A request is a row; the engine takes
//! pending rows, acts, and writes the outcome back; the requester waits for it. The engine's
//! heartbeat lives beside it, so a requester can tell at once that no engine is running.

use super::{check_actor, meta_get, meta_set, Store};
use crate::{Error, Result};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;
use std::time::{Duration, Instant};

/// What can be asked of the engine.
pub mod control_kind {
    pub const NUDGE: &str = "nudge";
    pub const KILL: &str = "kill";
    pub const RESTART: &str = "restart";
    pub const HANDOFF: &str = "handoff";
    pub const CAPTURE: &str = "capture";
    pub const ALL: &[&str] = &[NUDGE, KILL, RESTART, HANDOFF, CAPTURE];
}

/// One request and, once done, its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControlRequest {
    pub id: i64,
    pub kind: String,
    pub agent: String,
    pub payload: String,
    pub requested_by: String,
    pub created_at: String,
    pub taken_at: Option<String>,
    pub done_at: Option<String>,
    pub ok: Option<bool>,
    pub result: String,
}

const COLS: &str =
    "id, kind, agent, payload, requested_by, created_at, taken_at, done_at, ok, result";

fn from_row(r: &Row) -> rusqlite::Result<ControlRequest> {
    Ok(ControlRequest {
        id: r.get(0)?,
        kind: r.get(1)?,
        agent: r.get(2)?,
        payload: r.get(3)?,
        requested_by: r.get(4)?,
        created_at: r.get(5)?,
        taken_at: r.get(6)?,
        done_at: r.get(7)?,
        ok: r.get::<_, Option<i64>>(8)?.map(|v| v != 0),
        result: r.get(9)?,
    })
}

impl Store {
    /// Records that an engine is alive now (with its pid).
    pub fn engine_heartbeat(&self, pid: u32) -> Result<()> {
        self.write_bookkeeping(|tx| {
            meta_set(tx.conn, "engine_heartbeat_ns", &tx.now_ns.to_string())?;
            meta_set(tx.conn, "engine_pid", &pid.to_string())
        })
    }

    /// Records that the patrols (the Deacon) ran now.
    pub fn patrol_heartbeat(&self) -> Result<()> {
        self.write_bookkeeping(|tx| {
            meta_set(tx.conn, "patrol_heartbeat_ns", &tx.now_ns.to_string())
        })
    }

    /// How long ago the patrols last ran, if they ever did.
    pub fn patrol_age(&self) -> Result<Option<Duration>> {
        let beat =
            meta_get(self.conn(), "patrol_heartbeat_ns")?.and_then(|v| v.parse::<i64>().ok());
        Ok(beat.map(|t| Duration::from_nanos(self.now_ns().saturating_sub(t).max(0) as u64)))
    }

    /// Clears the heartbeat (a clean engine shutdown).
    pub fn engine_stopped(&self) -> Result<()> {
        self.write_bookkeeping(|tx| {
            tx.conn.execute(
                "DELETE FROM meta WHERE key IN ('engine_heartbeat_ns', 'engine_pid')",
                [],
            )?;
            Ok(())
        })
    }

    /// The pid of the engine whose heartbeat is younger than `fresh`, if any.
    pub fn engine_alive(&self, fresh: Duration) -> Result<Option<u32>> {
        let c = self.conn();
        let beat = meta_get(c, "engine_heartbeat_ns")?.and_then(|v| v.parse::<i64>().ok());
        let pid = meta_get(c, "engine_pid")?.and_then(|v| v.parse::<u32>().ok());
        Ok(match (beat, pid) {
            (Some(t), Some(pid)) if self.now_ns().saturating_sub(t) < fresh.as_nanos() as i64 => {
                Some(pid)
            }
            _ => None,
        })
    }

    /// Files a request for the engine; returns its id.
    pub fn control_request(
        &self,
        kind: &str,
        agent: &str,
        payload: &str,
        actor: &str,
    ) -> Result<i64> {
        if !control_kind::ALL.contains(&kind) {
            return Err(Error::bad(format!("unknown control request '{kind}'")));
        }
        self.write_bookkeeping(|tx| {
            let actor = check_actor(actor)?;
            Ok(tx.conn.query_row(
                "INSERT INTO control(kind, agent, payload, requested_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                params![kind, agent, payload, actor, tx.now],
                |r| r.get(0),
            )?)
        })
    }

    /// Takes every pending request (oldest first), marking them taken.
    pub fn control_take(&self) -> Result<Vec<ControlRequest>> {
        // A cheap read first: the engine polls this.
        let pending: bool = self
            .conn()
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM control WHERE taken_at IS NULL)")?
            .query_row([], |r| r.get(0))?;
        if !pending {
            return Ok(Vec::new());
        }
        self.write_bookkeeping(|tx| {
            let rows = tx
                .conn
                .prepare_cached(&format!(
                    "UPDATE control SET taken_at = ?1 WHERE taken_at IS NULL RETURNING {COLS}"
                ))?
                .query_map([&tx.now], from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut rows = rows;
            rows.sort_by_key(|r| r.id);
            Ok(rows)
        })
    }

    /// Records the outcome of a request.
    pub fn control_finish(&self, id: i64, ok: bool, result: &str) -> Result<()> {
        self.write_bookkeeping(|tx| {
            tx.conn.execute(
                "UPDATE control SET done_at = ?2, ok = ?3, result = ?4 WHERE id = ?1",
                params![id, tx.now, ok as i64, result],
            )?;
            Ok(())
        })
    }

    pub fn control_get(&self, id: i64) -> Result<ControlRequest> {
        self.conn()
            .prepare_cached(&format!("SELECT {COLS} FROM control WHERE id = ?1"))?
            .query_row([id], from_row)
            .optional()?
            .ok_or_else(|| Error::NotFound {
                kind: "control request",
                id: id.to_string(),
            })
    }

    /// Waits until request `id` is done (polling the store cheaply), up to `timeout`.
    pub fn control_wait(&self, id: i64, timeout: Duration) -> Result<ControlRequest> {
        let deadline = Instant::now() + timeout;
        let mut version = -1;
        loop {
            let v = self.data_version()?;
            if v != version {
                version = v;
                let r = self.control_get(id)?;
                if r.done_at.is_some() {
                    return Ok(r);
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Conflict(format!(
                    "the engine did not answer request {id} within {}s",
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::store;
    use super::*;

    #[test]
    fn requests_are_taken_once_and_answered() {
        let s = store();
        assert_eq!(s.engine_alive(Duration::from_secs(3)).unwrap(), None);
        s.engine_heartbeat(42).unwrap();
        assert_eq!(s.engine_alive(Duration::from_secs(3)).unwrap(), Some(42));
        let a = s
            .control_request("nudge", "nux", "hello", "overseer")
            .unwrap();
        let b = s.control_request("kill", "slit", "", "overseer").unwrap();
        assert!(s.control_request("explode", "nux", "", "o").is_err());
        let taken = s.control_take().unwrap();
        assert_eq!(taken.iter().map(|r| r.id).collect::<Vec<_>>(), vec![a, b]);
        assert_eq!(taken[0].payload, "hello");
        assert!(s.control_take().unwrap().is_empty(), "taken once");
        s.control_finish(a, true, "delivered").unwrap();
        let done = s.control_wait(a, Duration::from_secs(1)).unwrap();
        assert_eq!((done.ok, done.result.as_str()), (Some(true), "delivered"));
        assert!(s.control_wait(b, Duration::from_millis(50)).is_err());
        s.engine_stopped().unwrap();
        assert_eq!(s.engine_alive(Duration::from_secs(3)).unwrap(), None);
    }
}
