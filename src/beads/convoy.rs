//! Convoys: a bead of type `convoy` that `tracks` other beads. Progress is closed/total; the
//! convoy closes itself when the last tracked bead closes (and reopens if one reopens).

use super::model::{dep, kind, status};
use super::rows::{check_id, must_load};
use super::{Convoy, NewBead, Store, Tx};
use crate::{Error, Result};
use rusqlite::Connection;
use serde_json::json;

/// The metadata key holding the rig a convoy auto-dispatches to.
pub const AUTO_DISPATCH: &str = "auto_dispatch";

fn load_convoy(conn: &Connection, id: &str) -> Result<Convoy> {
    let b = must_load(conn, id)?;
    if b.issue_type != kind::CONVOY {
        return Err(Error::bad(format!(
            "{id} is a {}, not a convoy",
            b.issue_type
        )));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT d.depends_on_id, IFNULL(b.status, '') FROM deps d
         LEFT JOIN beads b ON b.id = d.depends_on_id
         WHERE d.issue_id = ?1 AND d.type = 'tracks' ORDER BY d.depends_on_id",
    )?;
    let tracked = stmt
        .query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Convoy {
        id: b.id.clone(),
        name: b.title.clone(),
        status: b.status.clone(),
        closed: tracked.iter().filter(|(_, s)| s == status::CLOSED).count(),
        total: tracked.len(),
        auto_dispatch: b.meta_str(AUTO_DISPATCH).map(str::to_string),
        tracked: tracked.into_iter().map(|(id, _)| id).collect(),
    })
}

impl Tx<'_> {
    /// Re-evaluates one convoy: closes it when every tracked bead is closed, reopens it when
    /// a tracked bead is open again.
    fn convoy_check(&self, convoy: &str, actor: &str) -> Result<()> {
        let c = load_convoy(self.conn, convoy)?;
        if c.total > 0 && c.closed == c.total && c.status != status::CLOSED {
            self.set_status(
                convoy,
                &c.status,
                status::CLOSED,
                "all tracked beads closed",
                actor,
            )?;
        } else if c.closed < c.total && c.status == status::CLOSED {
            self.set_status(
                convoy,
                &c.status,
                status::OPEN,
                "a tracked bead is open again",
                actor,
            )?;
        }
        Ok(())
    }

    /// Called when `id` closes or reopens: every convoy tracking it re-evaluates.
    pub(crate) fn convoys_follow(&self, id: &str, actor: &str) -> Result<()> {
        let convoys = self.dependents_of(id, Some(dep::TRACKS))?;
        for c in convoys {
            self.convoy_check(&c, actor)?;
        }
        Ok(())
    }
}

impl Store {
    /// Creates a convoy named `name` tracking `beads`, optionally auto-dispatching to a rig.
    pub fn convoy_create(
        &self,
        name: &str,
        beads: &[String],
        auto_dispatch: Option<&str>,
        actor: &str,
    ) -> Result<Convoy> {
        for b in beads {
            check_id(b)?;
        }
        let id = self.write(|tx| {
            let nb = NewBead {
                title: name.to_string(),
                issue_type: Some(kind::CONVOY.to_string()),
                metadata: auto_dispatch.map(|rig| json!({ AUTO_DISPATCH: rig })),
                ..Default::default()
            };
            let id = tx.create_bead(&self.prefix, &nb, actor)?;
            for b in beads {
                tx.add_dep(&id, b, dep::TRACKS, actor)?;
            }
            tx.convoy_check(&id, actor)?;
            Ok(id)
        })?;
        self.convoy(&id)
    }

    /// Adds beads to a convoy.
    pub fn convoy_add(&self, convoy: &str, beads: &[String], actor: &str) -> Result<Convoy> {
        check_id(convoy)?;
        for b in beads {
            check_id(b)?;
        }
        self.write(|tx| {
            load_convoy(tx.conn, convoy)?;
            for b in beads {
                tx.add_dep(convoy, b, dep::TRACKS, actor)?;
            }
            tx.convoy_check(convoy, actor)
        })?;
        self.convoy(convoy)
    }

    /// One convoy with its progress.
    pub fn convoy(&self, id: &str) -> Result<Convoy> {
        check_id(id)?;
        self.read(|c| load_convoy(c, id))
    }

    /// Every convoy, open ones first, then by age.
    pub fn convoys(&self) -> Result<Vec<Convoy>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id FROM beads WHERE issue_type = 'convoy'
                 ORDER BY status = 'closed', created_ns, id",
            )?;
            let ids = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            ids.iter().map(|id| load_convoy(c, id)).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{store, task};
    use super::super::BeadUpdate;

    #[test]
    fn progress_and_auto_close_and_reopen() {
        let s = store();
        let a = s.create(&task("a"), "x").unwrap().id;
        let b = s.create(&task("b"), "x").unwrap().id;
        let c = s
            .convoy_create("Auth", &[a.clone(), b.clone()], Some("demo"), "mayor")
            .unwrap();
        assert_eq!((c.closed, c.total), (0, 2));
        assert_eq!(c.auto_dispatch.as_deref(), Some("demo"));
        assert_eq!(c.status, "open");
        s.close(&a, "", "nux").unwrap();
        assert_eq!(s.convoy(&c.id).unwrap().closed, 1);
        s.close(&b, "", "nux").unwrap();
        let done = s.convoy(&c.id).unwrap();
        assert_eq!(
            (done.closed, done.total, done.status.as_str()),
            (2, 2, "closed")
        );
        let ev = s.events_for(&c.id).unwrap();
        let last = ev.last().unwrap();
        assert_eq!(last.kind, "closed");
        assert_eq!(last.detail.as_deref(), Some("all tracked beads closed"));
        // Reopening a tracked bead reopens the convoy; adding an open bead keeps it open.
        let reopen = BeadUpdate {
            status: Some("open".into()),
            ..Default::default()
        };
        s.update(&b, &reopen, "x").unwrap();
        assert_eq!(s.convoy(&c.id).unwrap().status, "open");
        let d = s.create(&task("d"), "x").unwrap().id;
        let grown = s.convoy_add(&c.id, &[d], "x").unwrap();
        assert_eq!((grown.closed, grown.total), (1, 3));
        assert_eq!(s.convoys().unwrap().len(), 1);
        // Convoys never show up as ready work.
        assert!(s.ready(None).unwrap().iter().all(|r| r.id != c.id));
        assert!(s
            .convoy(&a)
            .unwrap_err()
            .to_string()
            .contains("not a convoy"));
        assert!(s.convoy_add(&c.id, &["gt-missing".into()], "x").is_err());
        assert_eq!(
            s.convoy(&c.id).unwrap().total,
            3,
            "a failed add changes nothing"
        );
    }

    #[test]
    fn an_empty_convoy_stays_open() {
        let s = store();
        let c = s.convoy_create("Empty", &[], None, "x").unwrap();
        assert_eq!((c.closed, c.total, c.status.as_str()), (0, 0, "open"));
    }
}
