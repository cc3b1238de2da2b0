//! The engine's heartbeat in the store: who runs the town's engine and whether it still
//! ticks (the patrols' own heartbeat too), readable by any process without asking the engine.
//! What other processes ask of the engine goes over its socket (`crate::server`).

use super::{meta_get, meta_set, Store};
use crate::Result;
use std::time::Duration;

/// An engine whose heartbeat (written every second while it runs) is younger than this is
/// running: the one meaning of "the engine is alive" for every command.
pub const ENGINE_FRESH: Duration = Duration::from_secs(5);

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

    /// The pid of the running engine (its heartbeat younger than [`ENGINE_FRESH`]), if any.
    pub fn engine_alive(&self) -> Result<Option<u32>> {
        let fresh = ENGINE_FRESH;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use chrono::TimeZone;

    #[test]
    fn the_heartbeat_says_which_engine_is_alive() {
        let start = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = TestClock::new(start, 0);
        let s = Store::open_in_memory("gt", clock.clone()).unwrap();
        assert_eq!(s.engine_alive().unwrap(), None);
        s.engine_heartbeat(42).unwrap();
        assert_eq!(s.engine_alive().unwrap(), Some(42));
        // A heartbeat that stopped coming: the engine is gone.
        clock.set(start + ENGINE_FRESH + Duration::from_millis(1));
        assert_eq!(s.engine_alive().unwrap(), None);
        s.engine_heartbeat(43).unwrap();
        assert_eq!(s.engine_alive().unwrap(), Some(43));
        s.engine_stopped().unwrap();
        assert_eq!(s.engine_alive().unwrap(), None);
    }
}
