//! Merge-request rows: the Refinery's queue, one per rig, processed oldest first.

use super::events::{ev, NewEvent};
use super::model::mr_state;
use super::{check_actor, MergeRequest, Store, Tx};
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// A merge that landed: the branch, the branch commit it was made from, and the commit it
/// produced on the target (the same commit for a fast-forward).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub branch: String,
    pub source_tip: String,
    pub commit: String,
}

/// At most this much of a test log is kept on a request.
pub const LOG_TAIL_BYTES: usize = 8 * 1024;

const MR_COLS: &str = "id, rig, branch, bead_id, submitter, state, attempts, reason, \
     test_log_tail, created_at, updated_at, style, source_tip, merge_commit";

fn mr_from_row(r: &Row) -> rusqlite::Result<MergeRequest> {
    Ok(MergeRequest {
        id: r.get(0)?,
        rig: r.get(1)?,
        branch: r.get(2)?,
        bead_id: r.get(3)?,
        submitter: r.get(4)?,
        state: r.get(5)?,
        attempts: r.get(6)?,
        reason: r.get(7)?,
        test_log_tail: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        style: r.get(11)?,
        source_tip: r.get(12)?,
        merge_commit: r.get(13)?,
    })
}

fn load_mr(conn: &Connection, id: i64) -> Result<MergeRequest> {
    conn.prepare_cached(&format!(
        "SELECT {MR_COLS} FROM merge_requests WHERE id = ?1"
    ))?
    .query_row([id], mr_from_row)
    .optional()?
    .ok_or_else(|| Error::NotFound {
        kind: "merge request",
        id: id.to_string(),
    })
}

/// The last `max` bytes of `log`, cut at a character boundary.
pub fn tail(log: &str, max: usize) -> &str {
    if log.len() <= max {
        return log;
    }
    let mut start = log.len() - max;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}

impl Tx<'_> {
    pub(crate) fn submit_mr(
        &self,
        rig: &str,
        branch: &str,
        bead: Option<&str>,
        submitter: &str,
    ) -> Result<i64> {
        let submitter = check_actor(submitter)?;
        let id: i64 = self.conn.query_row(
            "INSERT INTO merge_requests(rig, branch, bead_id, submitter, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id",
            params![rig, branch, bead, submitter, self.now],
            |r| r.get(0),
        )?;
        let subject = format!("mr-{id}");
        self.event(NewEvent {
            subject: &subject,
            kind: ev::SUBMITTED,
            actor: submitter,
            new: Some(branch),
            detail: bead,
            ..Default::default()
        })?;
        Ok(id)
    }
}

impl Store {
    /// Queues `branch` of `rig` for merging.
    pub fn mr_submit(
        &self,
        rig: &str,
        branch: &str,
        bead: Option<&str>,
        submitter: &str,
    ) -> Result<MergeRequest> {
        if rig.trim().is_empty() || branch.trim().is_empty() {
            return Err(Error::bad("a merge request needs a rig and a branch"));
        }
        let id = self.write(|tx| tx.submit_mr(rig, branch, bead, submitter))?;
        self.mr(id)
    }

    /// Requests left `testing` by an engine that died go back to the queue.
    pub fn mr_requeue_testing(&self, actor: &str) -> Result<usize> {
        let stale: Vec<i64> = self
            .merge_requests(None)?
            .into_iter()
            .filter(|m| m.state == mr_state::TESTING)
            .map(|m| m.id)
            .collect();
        for id in &stale {
            self.mr_set_state(
                *id,
                mr_state::QUEUED,
                "the engine stopped during the tests",
                "",
                actor,
            )?;
        }
        Ok(stale.len())
    }

    /// Records what a merge of request `id` is making, before the target moves to it: the
    /// style, the branch commit it starts from and the commit the target will move to. After a
    /// crash, the request is merged exactly when that commit is on the target.
    pub fn mr_record_commit(
        &self,
        id: i64,
        style: &str,
        source_tip: &str,
        commit: &str,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx.conn.execute(
                "UPDATE merge_requests SET style = ?2, source_tip = ?3, merge_commit = ?4,
                    updated_at = ?5 WHERE id = ?1",
                params![id, style, source_tip, commit, tx.now],
            )?;
            if n == 0 {
                return Err(Error::NotFound {
                    kind: "merge request",
                    id: id.to_string(),
                });
            }
            Ok(())
        })
    }

    /// What landed on `rig`'s target: the merged requests that recorded the branch commit they
    /// came from and the commit they produced.
    pub fn mr_landed(&self, rig: &str) -> Result<Vec<Landed>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT branch, source_tip, merge_commit FROM merge_requests
              WHERE rig = ?1 AND state = ?2 AND source_tip IS NOT NULL
                AND merge_commit IS NOT NULL
              ORDER BY id",
        )?;
        let v = stmt
            .query_map(params![rig, mr_state::MERGED], |r| {
                Ok(Landed {
                    branch: r.get(0)?,
                    source_tip: r.get(1)?,
                    commit: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    }

    pub fn mr(&self, id: i64) -> Result<MergeRequest> {
        load_mr(self.conn(), id)
    }

    /// Requests of one rig (or all), in queue order.
    pub fn merge_requests(&self, rig: Option<&str>) -> Result<Vec<MergeRequest>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {MR_COLS} FROM merge_requests WHERE (?1 IS NULL OR rig = ?1) ORDER BY id"
        ))?;
        let v = stmt
            .query_map([rig], mr_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    }

    /// Moves a request to a new state, keeping the tail of the test log and the reason.
    /// Entering `testing` counts an attempt.
    pub fn mr_set_state(
        &self,
        id: i64,
        state: &str,
        reason: &str,
        log: &str,
        actor: &str,
    ) -> Result<MergeRequest> {
        if !mr_state::ALL.contains(&state) {
            return Err(Error::bad(format!(
                "unknown merge-request state '{state}' (expected one of: {})",
                mr_state::ALL.join(", ")
            )));
        }
        self.write(|tx| {
            let actor = check_actor(actor)?;
            let old = load_mr(tx.conn, id)?;
            let attempts = old.attempts + i64::from(state == mr_state::TESTING);
            // A rejected request produced nothing: the commit it was testing is forgotten.
            // (Back in the queue it is kept: a crash may have moved the target to it.)
            let rejected = state == mr_state::REJECTED || state == mr_state::CONFLICT;
            tx.conn.execute(
                "UPDATE merge_requests SET state = ?2, reason = ?3, test_log_tail = ?4,
                    attempts = ?5, updated_at = ?6,
                    merge_commit = CASE WHEN ?7 THEN NULL ELSE merge_commit END
                  WHERE id = ?1",
                params![
                    id,
                    state,
                    reason,
                    tail(log, LOG_TAIL_BYTES),
                    attempts,
                    tx.now,
                    rejected
                ],
            )?;
            let kind = match state {
                mr_state::MERGED => ev::MERGED,
                mr_state::REJECTED | mr_state::CONFLICT => ev::REJECTED,
                _ => ev::MR_STATE,
            };
            let subject = format!("mr-{id}");
            tx.event(NewEvent {
                subject: &subject,
                kind,
                actor,
                old: Some(&old.state),
                new: Some(state),
                detail: (!reason.is_empty()).then_some(reason),
            })
        })?;
        self.mr(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::store;
    use super::*;

    #[test]
    fn queue_and_states() {
        let s = store();
        let a = s
            .mr_submit("demo", "polecat/nux/gt-abc", Some("gt-abc"), "nux")
            .unwrap();
        let b = s
            .mr_submit("demo", "polecat/slit/gt-def", None, "slit")
            .unwrap();
        s.mr_submit("other", "x", None, "toast").unwrap();
        assert_eq!(a.state, "queued");
        let q: Vec<i64> = s
            .merge_requests(Some("demo"))
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(q, vec![a.id, b.id]);
        assert_eq!(s.merge_requests(None).unwrap().len(), 3);
        let t = s.mr_set_state(a.id, "testing", "", "", "refinery").unwrap();
        assert_eq!(t.attempts, 1);
        let long = "x".repeat(LOG_TAIL_BYTES + 100) + "FAILED";
        let r = s
            .mr_set_state(a.id, "rejected", "tests failed", &long, "refinery")
            .unwrap();
        assert_eq!(r.test_log_tail.len(), LOG_TAIL_BYTES);
        assert!(r.test_log_tail.ends_with("FAILED"));
        assert!(s.mr_set_state(a.id, "exploded", "", "", "x").is_err());
        assert!(matches!(s.mr(999).unwrap_err(), Error::NotFound { .. }));
        let kinds: Vec<_> = s
            .events_for(&format!("mr-{}", a.id))
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, vec!["submitted", "mr_state", "rejected"]);
        assert_eq!(tail("héllo", 4), "llo");
    }
}
