//! Ready work: the hottest query in the system.
//!
//! Open, not blocked (the derived flag, see `deps`), not deferred into the future, not a wisp
//! (ephemeral), not pinned (bd's context markers), and of a work type (task, bug, feature, epic,
//! chore; never message, merge-request, molecule, agent, convoy, or a foreign type): `bd
//! ready`'s rule. Most urgent first, then oldest. The partial index `beads_ready(priority,
//! created_ns, id) WHERE status='open' AND blocked=0 AND ephemeral=0 AND pinned=0` serves it in
//! index order, so a limited query reads only about `limit` rows whatever the store's size.

use super::rows::{bead_from_row, load_labels, BEAD_COLS};
use super::{Bead, Store};
use crate::Result;

/// The default number of beads `ready` returns.
pub const DEFAULT_LIMIT: usize = 50;

impl Store {
    /// Ready beads, at most `limit` (None: all).
    pub fn ready(&self, limit: Option<usize>) -> Result<Vec<Bead>> {
        let now_ns = self.now_ns();
        let limit = limit.map(|n| n as i64).unwrap_or(-1);
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {BEAD_COLS} FROM beads INDEXED BY beads_ready
                 WHERE status = 'open' AND blocked = 0 AND ephemeral = 0 AND pinned = 0
                   AND issue_type IN ('task', 'bug', 'feature', 'epic', 'chore')
                   AND (defer_ns IS NULL OR defer_ns <= ?1)
                 ORDER BY priority, created_ns, id
                 LIMIT ?2"
            ))?;
            let mut beads = stmt
                .query_map(rusqlite::params![now_ns, limit], bead_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for b in &mut beads {
                b.labels = load_labels(c, &b.id)?;
            }
            Ok(beads)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{store, task};
    use super::super::{BeadUpdate, NewBead};
    use crate::clock::TestClock;
    use chrono::TimeZone;

    fn ids(v: Vec<super::Bead>) -> Vec<String> {
        v.into_iter().map(|b| b.id).collect()
    }

    #[test]
    fn sorted_by_priority_then_age() {
        let s = store();
        let low = s
            .create(
                &NewBead {
                    priority: Some(3),
                    ..task("low")
                },
                "x",
            )
            .unwrap()
            .id;
        let old = s.create(&task("old"), "x").unwrap().id;
        let new = s.create(&task("new"), "x").unwrap().id;
        let crit = s
            .create(
                &NewBead {
                    priority: Some(0),
                    ..task("crit")
                },
                "x",
            )
            .unwrap()
            .id;
        assert_eq!(
            ids(s.ready(None).unwrap()),
            vec![crit.clone(), old, new, low]
        );
        assert_eq!(ids(s.ready(Some(1)).unwrap()), vec![crit]);
    }

    #[test]
    fn blockers_hold_back_until_closed() {
        let s = store();
        let a = s.create(&task("a"), "x").unwrap().id;
        let b = s.create(&task("b"), "x").unwrap().id;
        s.add_dep(&b, &a, "blocks", "x").unwrap();
        assert_eq!(ids(s.ready(None).unwrap()), vec![a.clone()]);
        // Related links do not block.
        let c = s.create(&task("c"), "x").unwrap().id;
        s.add_dep(&c, &a, "related", "x").unwrap();
        assert_eq!(ids(s.ready(None).unwrap()), vec![a.clone(), c.clone()]);
        s.claim(&a, "nux").unwrap();
        assert_eq!(
            ids(s.ready(None).unwrap()),
            vec![c.clone()],
            "in_progress blocks, and is not ready"
        );
        s.close(&a, "done", "nux").unwrap();
        assert_eq!(ids(s.ready(None).unwrap()), vec![b, c]);
    }

    #[test]
    fn children_of_a_blocked_parent_are_blocked() {
        let s = store();
        let gate = s.create(&task("gate"), "x").unwrap().id;
        let epic = s
            .create(
                &NewBead {
                    issue_type: Some("epic".into()),
                    ..task("epic")
                },
                "x",
            )
            .unwrap()
            .id;
        let child = s
            .create(
                &NewBead {
                    parent: Some(epic.clone()),
                    ..task("child")
                },
                "x",
            )
            .unwrap()
            .id;
        assert_eq!(
            ids(s.ready(None).unwrap()),
            vec![gate.clone(), epic.clone(), child.clone()]
        );
        s.add_dep(&epic, &gate, "blocks", "x").unwrap();
        assert_eq!(ids(s.ready(None).unwrap()), vec![gate.clone()]);
        s.close(&gate, "", "x").unwrap();
        assert_eq!(ids(s.ready(None).unwrap()), vec![epic, child]);
    }

    #[test]
    fn deferred_beads_wait_for_their_time() {
        let start = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = TestClock::new(start, 0);
        let s = super::Store::open_in_memory("gt", clock.clone()).unwrap();
        let later = s
            .create(
                &NewBead {
                    defer_until: Some("2026-01-02T00:00:00Z".into()),
                    ..task("later")
                },
                "x",
            )
            .unwrap()
            .id;
        let now = s.create(&task("now"), "x").unwrap().id;
        assert_eq!(ids(s.ready(None).unwrap()), vec![now.clone()]);
        clock.set(chrono::Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 1).unwrap());
        assert_eq!(
            ids(s.ready(None).unwrap()),
            vec![later.clone(), now.clone()]
        );
        // Status `deferred` is never ready, and clearing a deferral works.
        let upd = BeadUpdate {
            status: Some("deferred".into()),
            ..Default::default()
        };
        s.update(&now, &upd, "x").unwrap();
        assert_eq!(ids(s.ready(None).unwrap()), vec![later]);
    }

    #[test]
    fn only_work_types_are_ready() {
        let s = store();
        let mut expected = Vec::new();
        for t in ["task", "bug", "feature", "epic", "chore"] {
            expected.push(
                s.create(
                    &NewBead {
                        issue_type: Some(t.into()),
                        ..task(t)
                    },
                    "x",
                )
                .unwrap()
                .id,
            );
        }
        for t in ["message", "merge-request", "molecule", "agent", "convoy"] {
            s.create(
                &NewBead {
                    issue_type: Some(t.into()),
                    ..task(t)
                },
                "x",
            )
            .unwrap();
        }
        assert_eq!(ids(s.ready(None).unwrap()), expected);
        // Foreign statuses and types (from other Beads versions) are never ready.
        s.conn()
            .execute(
                "INSERT INTO beads(id, title, status, issue_type, created_at, created_ns, updated_at)
                 VALUES ('gt-t1', 't', 'tombstone', 'task', 'x', 0, 'x'),
                        ('gt-t2', 't', 'open', 'role', 'x', 0, 'x'),
                        ('gt-t3', 't', 'pinned', 'task', 'x', 0, 'x')",
                [],
            )
            .unwrap();
        assert_eq!(ids(s.ready(None).unwrap()), expected);
    }

    #[test]
    fn wisps_and_pinned_beads_are_never_ready() {
        let s = store();
        let work = s.create(&task("work"), "x").unwrap().id;
        let wisp = s
            .create(
                &NewBead {
                    ephemeral: true,
                    ..task("patrol chore")
                },
                "x",
            )
            .unwrap();
        assert!(wisp.ephemeral);
        s.import_jsonl(
            &br#"{"id":"gt-pin","title":"Context","status":"open","priority":0,"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","pinned":true}
{"id":"gt-unpin","title":"Not pinned","status":"open","priority":0,"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","pinned":false}
"#[..],
            "f.jsonl",
            "x",
        )
        .unwrap();
        assert!(s.get("gt-pin").unwrap().pinned);
        assert!(!s.get("gt-unpin").unwrap().pinned);
        assert_eq!(
            ids(s.ready(None).unwrap()),
            vec!["gt-unpin".to_string(), work.clone()]
        );
        // A limited query (the index's range) leaves them out too.
        assert_eq!(ids(s.ready(Some(1)).unwrap()), vec!["gt-unpin".to_string()]);
        // Work that waits on a wisp waits like any other.
        let after = s.create(&task("after the chore"), "x").unwrap().id;
        s.add_dep(&after, &wisp.id, "blocks", "x").unwrap();
        assert!(!ids(s.ready(None).unwrap()).contains(&after));
        s.close(&wisp.id, "done", "x").unwrap();
        assert!(ids(s.ready(None).unwrap()).contains(&after));
    }
}
