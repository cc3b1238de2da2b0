//! Beads themselves: create, read, list, update, close, claim, comment.

use super::deps::refresh_blocked;
use super::events::{ev, NewEvent};
use super::ids;
use super::model::{dep, kind, status};
use super::rows::{
    bead_from_row, check_id, check_label, check_priority, check_status, check_title, check_type,
    dep_from_row, load_full, load_labels, must_load, BEAD_COLS,
};
use super::{
    check_actor, parse_instant, Bead, BeadUpdate, Comment, Dependency, ListFilter, NewBead, Store,
    Tx,
};
use crate::{Error, Result};
use rusqlite::{params, OptionalExtension};
use serde_json::{Map, Value};

impl Tx<'_> {
    fn exists(&self, id: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM beads WHERE id = ?1")?
            .exists([id])?)
    }

    /// Chooses a fresh top-level id: adaptive length from the prefix's count, nonce retry on
    /// collision (and a longer id after repeated collisions).
    fn fresh_id(&self, prefix: &str, nb: &NewBead, actor: &str) -> Result<String> {
        let count: i64 = self
            .conn
            .prepare_cached("SELECT n FROM prefix_counts WHERE prefix = ?1")?
            .query_row([prefix], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let mut len = ids::adaptive_len(count as u64 + 1);
        for nonce in 0..1000u32 {
            if nonce > 0 && nonce % 10 == 0 && len < ids::MAX_LEN {
                len += 1;
            }
            let id = ids::hash_id(
                prefix,
                &nb.title,
                &nb.description,
                actor,
                self.now_ns,
                nonce,
                len,
            );
            if !self.exists(&id)? {
                self.conn
                    .prepare_cached(
                        "INSERT INTO prefix_counts(prefix, n) VALUES (?1, 1)
                         ON CONFLICT(prefix) DO UPDATE SET n = n + 1",
                    )?
                    .execute([prefix])?;
                return Ok(id);
            }
        }
        Err(Error::Conflict(format!(
            "could not find a free id for prefix '{prefix}' after 1000 attempts"
        )))
    }

    /// Chooses `<parent>.<n>` with n from the parent's counter.
    fn child_id(&self, parent: &str) -> Result<String> {
        if !self.exists(parent)? {
            return Err(Error::NotFound {
                kind: "parent bead",
                id: parent.to_string(),
            });
        }
        if ids::depth(parent) >= ids::MAX_DEPTH {
            return Err(Error::bad(format!(
                "{parent} is already {} levels deep; children nest at most {} levels",
                ids::depth(parent),
                ids::MAX_DEPTH
            )));
        }
        loop {
            let n: i64 = self
                .conn
                .prepare_cached(
                    "UPDATE beads SET child_counter = child_counter + 1 WHERE id = ?1
                     RETURNING child_counter",
                )?
                .query_row([parent], |r| r.get(0))?;
            let id = format!("{parent}.{n}");
            if !self.exists(&id)? {
                return Ok(id);
            }
        }
    }

    pub(crate) fn create_bead(&self, prefix: &str, nb: &NewBead, actor: &str) -> Result<String> {
        let actor = check_actor(actor)?;
        check_title(&nb.title)?;
        let issue_type = nb.issue_type.as_deref().unwrap_or(kind::TASK);
        check_type(issue_type)?;
        let priority = nb.priority.unwrap_or(super::priority::DEFAULT);
        check_priority(priority)?;
        for l in &nb.labels {
            check_label(l)?;
        }
        let defer_ns = match &nb.defer_until {
            Some(d) => Some(parse_instant(d, "defer until")?),
            None => None,
        };
        let metadata = match &nb.metadata {
            Some(v) => Some(serde_json::to_string(v)?),
            None => None,
        };
        let id = match &nb.parent {
            Some(parent) => {
                check_id(parent)?;
                self.child_id(parent)?
            }
            None => self.fresh_id(prefix, nb, actor)?,
        };
        self.conn
            .prepare_cached(
                "INSERT INTO beads(id, title, description, design, acceptance_criteria, notes,
                    status, priority, issue_type, assignee, created_at, created_ns, created_by,
                    updated_at, defer_until, defer_ns, ephemeral, metadata)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?8, ?9, ?10, ?11, ?12, ?10, ?13,
                    ?14, ?15, ?16)",
            )?
            .execute(params![
                id,
                nb.title,
                nb.description,
                nb.design,
                nb.acceptance_criteria,
                nb.notes,
                priority,
                issue_type,
                nb.assignee,
                self.now,
                self.now_ns,
                actor,
                nb.defer_until,
                defer_ns,
                nb.ephemeral as i64,
                metadata,
            ])?;
        for l in &nb.labels {
            self.conn
                .prepare_cached("INSERT OR IGNORE INTO labels(issue_id, label) VALUES (?1, ?2)")?
                .execute([&id, l])?;
        }
        self.event(NewEvent {
            subject: &id,
            kind: ev::CREATED,
            actor,
            new: Some(issue_type),
            detail: Some(&nb.title),
            ..Default::default()
        })?;
        if let Some(parent) = &nb.parent {
            self.add_dep(&id, parent, dep::PARENT_CHILD, actor)?;
        }
        Ok(id)
    }

    /// Moves a bead to a new status with everything that follows from it: closed_at and the
    /// close reason, the event, readiness of its dependents, and the convoys tracking it.
    pub(crate) fn set_status(
        &self,
        id: &str,
        old: &str,
        new: &str,
        reason: &str,
        actor: &str,
    ) -> Result<()> {
        if old == new {
            return Ok(());
        }
        if new == status::CLOSED {
            self.conn
                .prepare_cached(
                    "UPDATE beads SET status = ?2, closed_at = ?3, close_reason = ?4,
                        updated_at = ?3 WHERE id = ?1",
                )?
                .execute(params![id, new, self.now, reason])?;
            self.event(NewEvent {
                subject: id,
                kind: ev::CLOSED,
                actor,
                old: Some(old),
                new: Some(new),
                detail: (!reason.is_empty()).then_some(reason),
            })?;
        } else {
            self.conn
                .prepare_cached(
                    "UPDATE beads SET status = ?2, closed_at = NULL, close_reason = '',
                        updated_at = ?3 WHERE id = ?1",
                )?
                .execute(params![id, new, self.now])?;
            let kind = if old == status::CLOSED {
                ev::REOPENED
            } else {
                ev::STATUS_CHANGED
            };
            self.event(NewEvent {
                subject: id,
                kind,
                actor,
                old: Some(old),
                new: Some(new),
                detail: (!reason.is_empty()).then_some(reason),
            })?;
        }
        if status::is_active(old) != status::is_active(new) {
            let dependents = self.dependents_of(id, Some(dep::BLOCKS))?;
            refresh_blocked(self.conn, dependents)?;
        }
        if new == status::CLOSED || old == status::CLOSED {
            self.convoys_follow(id, actor)?;
        }
        Ok(())
    }

    pub(crate) fn update_bead(&self, id: &str, upd: &BeadUpdate, actor: &str) -> Result<()> {
        let actor = check_actor(actor)?;
        let old = must_load(self.conn, id)?;
        let mut changed: Vec<&str> = Vec::new();
        let text_fields: [(&str, &Option<String>, &String); 5] = [
            ("title", &upd.title, &old.title),
            ("description", &upd.description, &old.description),
            ("design", &upd.design, &old.design),
            (
                "acceptance_criteria",
                &upd.acceptance_criteria,
                &old.acceptance_criteria,
            ),
            ("notes", &upd.notes, &old.notes),
        ];
        if let Some(t) = &upd.title {
            check_title(t)?;
        }
        if let Some(p) = upd.priority {
            check_priority(p)?;
        }
        if let Some(t) = &upd.issue_type {
            check_type(t)?;
        }
        if let Some(s) = &upd.status {
            check_status(s)?;
        }
        for l in upd.add_labels.iter().chain(&upd.remove_labels) {
            check_label(l)?;
        }
        for (col, new, oldv) in text_fields {
            if let Some(v) = new {
                if v != oldv {
                    self.conn.execute(
                        &format!("UPDATE beads SET {col} = ?2 WHERE id = ?1"),
                        [id, v],
                    )?;
                    changed.push(col);
                }
            }
        }
        if let Some(p) = upd.priority {
            if p != old.priority {
                self.conn.execute(
                    "UPDATE beads SET priority = ?2 WHERE id = ?1",
                    params![id, p],
                )?;
                changed.push("priority");
            }
        }
        if let Some(t) = &upd.issue_type {
            if *t != old.issue_type {
                self.conn
                    .execute("UPDATE beads SET issue_type = ?2 WHERE id = ?1", [id, t])?;
                changed.push("issue_type");
            }
        }
        if let Some(d) = &upd.defer_until {
            if *d != old.defer_until {
                let ns = match d {
                    Some(s) => Some(parse_instant(s, "defer until")?),
                    None => None,
                };
                self.conn.execute(
                    "UPDATE beads SET defer_until = ?2, defer_ns = ?3 WHERE id = ?1",
                    params![id, d, ns],
                )?;
                changed.push("defer_until");
            }
        }
        if let Some(m) = &upd.metadata {
            let mut obj = match &old.metadata {
                Some(Value::Object(o)) => o.clone(),
                _ => Map::new(),
            };
            for (k, v) in m {
                if v.is_null() {
                    obj.remove(k);
                } else {
                    obj.insert(k.clone(), v.clone());
                }
            }
            let new_meta = Value::Object(obj);
            if Some(&new_meta) != old.metadata.as_ref() {
                self.conn.execute(
                    "UPDATE beads SET metadata = ?2 WHERE id = ?1",
                    params![id, serde_json::to_string(&new_meta)?],
                )?;
                changed.push("metadata");
            }
        }
        for l in &upd.add_labels {
            if !old.labels.contains(l) {
                self.conn.execute(
                    "INSERT OR IGNORE INTO labels(issue_id, label) VALUES (?1, ?2)",
                    [id, l],
                )?;
                self.simple_event(id, ev::LABELED, actor, Some(l))?;
            }
        }
        for l in &upd.remove_labels {
            if old.labels.contains(l) {
                self.conn.execute(
                    "DELETE FROM labels WHERE issue_id = ?1 AND label = ?2",
                    [id, l],
                )?;
                self.simple_event(id, ev::UNLABELED, actor, Some(l))?;
            }
        }
        if !changed.is_empty() {
            let detail = changed.join(",");
            self.simple_event(id, ev::UPDATED, actor, Some(&detail))?;
        }
        if let Some(a) = &upd.assignee {
            if *a != old.assignee {
                self.conn
                    .execute("UPDATE beads SET assignee = ?2 WHERE id = ?1", [id, a])?;
                self.event(NewEvent {
                    subject: id,
                    kind: ev::ASSIGNED,
                    actor,
                    old: Some(&old.assignee),
                    new: Some(a),
                    detail: None,
                })?;
            }
        }
        if let Some(s) = &upd.status {
            self.set_status(id, &old.status, s, "", actor)?;
        }
        self.touch(id)?;
        Ok(())
    }

    pub(crate) fn touch(&self, id: &str) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE beads SET updated_at = ?2 WHERE id = ?1")?
            .execute([id, &self.now])?;
        Ok(())
    }

    /// The compare-and-swap at the heart of work distribution: inside the immediate
    /// transaction, read who holds the bead and take it only if nobody (else) does.
    pub(crate) fn claim_bead(&self, id: &str, actor: &str) -> Result<()> {
        let actor = check_actor(actor)?;
        let b = must_load(self.conn, id)?;
        if !b.assignee.is_empty() && b.assignee != actor {
            return Err(Error::AlreadyClaimed {
                id: id.to_string(),
                by: b.assignee,
            });
        }
        if b.assignee == actor && b.status == status::IN_PROGRESS {
            return Ok(());
        }
        if b.status != status::OPEN && b.status != status::HOOKED {
            return Err(Error::Conflict(format!(
                "{id} is {}; only open or hooked beads can be claimed",
                b.status
            )));
        }
        self.conn
            .prepare_cached("UPDATE beads SET assignee = ?2 WHERE id = ?1")?
            .execute([id, actor])?;
        self.event(NewEvent {
            subject: id,
            kind: ev::CLAIMED,
            actor,
            old: Some(&b.status),
            new: Some(actor),
            detail: None,
        })?;
        self.set_status(id, &b.status, status::IN_PROGRESS, "", actor)
    }
}

/// What `close` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    Now,
    Already,
}

impl Store {
    /// Creates a bead; returns it as stored.
    pub fn create(&self, nb: &NewBead, actor: &str) -> Result<Bead> {
        let id = self.write(|tx| tx.create_bead(&self.prefix, nb, actor))?;
        self.get(&id)
    }

    /// The whole record: labels, dependencies and comments.
    pub fn get(&self, id: &str) -> Result<Bead> {
        check_id(id)?;
        self.read(|c| load_full(c, id))
    }

    /// Beads matching the filter, most urgent first, then oldest first.
    pub fn list(&self, f: &ListFilter) -> Result<Vec<Bead>> {
        if let Some(s) = &f.status {
            check_status(s)?;
        }
        if let Some(t) = &f.issue_type {
            check_type(t)?;
        }
        let mut sql = format!("SELECT {BEAD_COLS} FROM beads WHERE 1=1");
        let mut args: Vec<String> = Vec::new();
        if let Some(s) = &f.status {
            args.push(s.clone());
            sql.push_str(&format!(" AND status = ?{}", args.len()));
        }
        match &f.issue_type {
            Some(t) => {
                args.push(t.clone());
                sql.push_str(&format!(" AND issue_type = ?{}", args.len()));
            }
            None => sql.push_str(" AND issue_type <> 'message'"),
        }
        if let Some(a) = &f.assignee {
            args.push(a.clone());
            sql.push_str(&format!(" AND assignee = ?{}", args.len()));
        }
        if let Some(l) = &f.label {
            args.push(l.clone());
            sql.push_str(&format!(
                " AND id IN (SELECT issue_id FROM labels WHERE label = ?{})",
                args.len()
            ));
        }
        if !f.include_ephemeral {
            sql.push_str(" AND ephemeral = 0");
        }
        sql.push_str(" ORDER BY priority, created_ns, id");
        if let Some(n) = f.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        self.read(|c| {
            let mut stmt = c.prepare(&sql)?;
            let mut beads = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), bead_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for b in &mut beads {
                b.labels = load_labels(c, &b.id)?;
            }
            Ok(beads)
        })
    }

    /// Applies a partial update; returns the bead as stored.
    pub fn update(&self, id: &str, upd: &BeadUpdate, actor: &str) -> Result<Bead> {
        check_id(id)?;
        if upd.is_empty() {
            return Err(Error::bad(
                "nothing to update (give at least one of --status, --priority, --title, ...)",
            ));
        }
        self.write(|tx| tx.update_bead(id, upd, actor))?;
        self.get(id)
    }

    /// Closes a bead with an optional reason. Closing a closed bead changes nothing.
    pub fn close(&self, id: &str, reason: &str, actor: &str) -> Result<Closed> {
        check_id(id)?;
        self.write(|tx| {
            let actor = check_actor(actor)?;
            let b = must_load(tx.conn, id)?;
            if b.status == status::CLOSED {
                return Ok(Closed::Already);
            }
            tx.set_status(id, &b.status, status::CLOSED, reason, actor)?;
            Ok(Closed::Now)
        })
    }

    /// Claims a bead for `actor`: atomically, across processes. Fails with
    /// `Error::AlreadyClaimed` when somebody else holds it.
    pub fn claim(&self, id: &str, actor: &str) -> Result<Bead> {
        check_id(id)?;
        self.write(|tx| tx.claim_bead(id, actor))?;
        self.get(id)
    }

    /// Adds a comment to a bead.
    pub fn comment(&self, id: &str, text: &str, actor: &str) -> Result<Comment> {
        check_id(id)?;
        if text.trim().is_empty() {
            return Err(Error::bad("the comment is empty"));
        }
        self.write(|tx| {
            let actor = check_actor(actor)?;
            must_load(tx.conn, id)?;
            let next: i64 = tx.conn.query_row(
                "SELECT IFNULL(MAX(comment_id), 0) + 1 FROM comments",
                [],
                |r| r.get(0),
            )?;
            tx.conn.execute(
                "INSERT INTO comments(comment_id, issue_id, author, text, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![next, id, actor, text, tx.now],
            )?;
            tx.simple_event(id, ev::COMMENTED, actor, Some(text))?;
            tx.touch(id)?;
            Ok(Comment {
                id: next,
                issue_id: id.to_string(),
                author: actor.to_string(),
                text: text.to_string(),
                created_at: tx.now.clone(),
                extra: Map::new(),
            })
        })
    }

    /// The dependencies pointing at `id` (the beads that wait for it or link to it).
    pub fn dependents(&self, id: &str) -> Result<Vec<Dependency>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT issue_id, depends_on_id, type, created_at, created_by, extra
                 FROM deps WHERE depends_on_id = ?1 ORDER BY issue_id",
            )?;
            let v = stmt
                .query_map([id], dep_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(v)
        })
    }

    /// How many beads the store holds (all types, wisps included).
    pub fn count(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM beads", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{store, task};
    use super::*;
    use crate::clock::TestClock;
    use chrono::TimeZone;

    #[test]
    fn create_assigns_a_short_hash_id_and_records_an_event() {
        let s = store();
        let b = s.create(&task("Fix SQL injection"), "overseer").unwrap();
        assert!(b.id.starts_with("gt-"));
        assert_eq!(b.id.len(), 6, "{}", b.id);
        assert_eq!(b.status, "open");
        assert_eq!(b.priority, 2);
        assert_eq!(b.issue_type, "task");
        assert_eq!(b.created_by, "overseer");
        let evs = s.events_for(&b.id).unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].kind, "created");
        assert_eq!(evs[0].actor, "overseer");
    }

    #[test]
    fn same_inputs_at_the_same_instant_collide_and_retry_with_a_new_nonce() {
        let start = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        // A clock that never moves: identical title, description, creator and time.
        let s = Store::open_in_memory("gt", TestClock::new(start, 0)).unwrap();
        let a = s.create(&task("Same"), "nux").unwrap();
        let b = s.create(&task("Same"), "nux").unwrap();
        assert_ne!(a.id, b.id);
        let ns = start.timestamp_nanos_opt().unwrap();
        assert_eq!(a.id, ids::hash_id("gt", "Same", "", "nux", ns, 0, 3));
        assert_eq!(b.id, ids::hash_id("gt", "Same", "", "nux", ns, 1, 3));
    }

    #[test]
    fn id_length_grows_as_the_prefix_fills() {
        let s = store();
        let mut lens = Vec::new();
        for i in 0..200 {
            let b = s.create(&task(&format!("bead {i}")), "a").unwrap();
            lens.push(b.id.len() - 3);
        }
        assert_eq!(lens[0], 3);
        assert_eq!(lens[163], 3);
        assert_eq!(lens[164], 4, "the 165th bead needs 4 characters");
        assert_eq!(lens[199], 4);
    }

    #[test]
    fn children_number_up_from_their_parent_and_nest_three_deep() {
        let s = store();
        let epic = s
            .create(
                &NewBead {
                    title: "Epic".into(),
                    issue_type: Some("epic".into()),
                    ..Default::default()
                },
                "a",
            )
            .unwrap();
        let child = |parent: &str| NewBead {
            title: "child".into(),
            parent: Some(parent.to_string()),
            ..Default::default()
        };
        let c1 = s.create(&child(&epic.id), "a").unwrap();
        let c2 = s.create(&child(&epic.id), "a").unwrap();
        assert_eq!(c1.id, format!("{}.1", epic.id));
        assert_eq!(c2.id, format!("{}.2", epic.id));
        assert_eq!(c1.dependencies.len(), 1);
        assert_eq!(c1.dependencies[0].dep_type, "parent-child");
        assert_eq!(c1.dependencies[0].depends_on_id, epic.id);
        let g = s.create(&child(&c1.id), "a").unwrap();
        let gg = s.create(&child(&g.id), "a").unwrap();
        assert_eq!(gg.id, format!("{}.1.1.1", epic.id));
        let err = s.create(&child(&gg.id), "a").unwrap_err();
        assert!(matches!(err, Error::BadInput(_)), "{err}");
        assert!(err.to_string().contains("3 levels"), "{err}");
        let missing = s.create(&child("gt-zzz"), "a").unwrap_err();
        assert!(matches!(missing, Error::NotFound { .. }));
    }

    #[test]
    fn bad_fields_are_refused_naming_the_field() {
        let s = store();
        let mut nb = task("x");
        nb.priority = Some(7);
        assert!(s
            .create(&nb, "a")
            .unwrap_err()
            .to_string()
            .contains("priority 7"));
        let mut nb = task("x");
        nb.issue_type = Some("story".into());
        assert!(s
            .create(&nb, "a")
            .unwrap_err()
            .to_string()
            .contains("unknown type 'story'"));
        assert!(s
            .create(&task("  "), "a")
            .unwrap_err()
            .to_string()
            .contains("title is empty"));
        assert!(s.create(&task(&"x".repeat(501)), "a").is_err());
        let mut nb = task("x");
        nb.defer_until = Some("tomorrow".into());
        assert!(s
            .create(&nb, "a")
            .unwrap_err()
            .to_string()
            .contains("defer until"));
        assert_eq!(s.count().unwrap(), 0, "nothing half-written");
        let b = s.create(&task("ok"), "a").unwrap();
        let upd = BeadUpdate {
            status: Some("done".into()),
            ..Default::default()
        };
        assert!(s
            .update(&b.id, &upd, "a")
            .unwrap_err()
            .to_string()
            .contains("unknown status 'done'"));
        assert!(matches!(
            s.get("gt-nope").unwrap_err(),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            s.get("not an id").unwrap_err(),
            Error::BadInput(_)
        ));
    }

    #[test]
    fn updates_close_and_reopen_write_events() {
        let s = store();
        let b = s.create(&task("t"), "a").unwrap();
        let upd = BeadUpdate {
            priority: Some(0),
            title: Some("t2".into()),
            add_labels: vec!["backend".into()],
            assignee: Some("nux".into()),
            ..Default::default()
        };
        let b = s.update(&b.id, &upd, "overseer").unwrap();
        assert_eq!(b.priority, 0);
        assert_eq!(b.title, "t2");
        assert_eq!(b.labels, vec!["backend".to_string()]);
        assert_eq!(b.assignee, "nux");
        assert_eq!(s.close(&b.id, "done", "nux").unwrap(), Closed::Now);
        assert_eq!(s.close(&b.id, "again", "nux").unwrap(), Closed::Already);
        let closed = s.get(&b.id).unwrap();
        assert_eq!(closed.status, "closed");
        assert_eq!(closed.close_reason, "done");
        assert!(closed.closed_at.is_some());
        let reopen = BeadUpdate {
            status: Some("open".into()),
            ..Default::default()
        };
        let b = s.update(&b.id, &reopen, "overseer").unwrap();
        assert_eq!(b.closed_at, None);
        assert_eq!(b.close_reason, "");
        let kinds: Vec<String> = s
            .events_for(&b.id)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            vec!["created", "labeled", "updated", "assigned", "closed", "reopened"]
        );
    }

    #[test]
    fn claim_is_exclusive_and_idempotent_for_the_holder() {
        let s = store();
        let b = s.create(&task("t"), "a").unwrap();
        let c = s.claim(&b.id, "nux").unwrap();
        assert_eq!(c.assignee, "nux");
        assert_eq!(c.status, "in_progress");
        s.claim(&b.id, "nux").unwrap();
        let err = s.claim(&b.id, "slit").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{} is already claimed by nux", b.id)
        );
        assert_eq!(err.exit_code(), 1);
        let claims = s
            .events_for(&b.id)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "claimed")
            .count();
        assert_eq!(claims, 1);
        s.close(&b.id, "", "nux").unwrap();
        let err = s.claim(&b.id, "nux").unwrap_err();
        assert!(err.to_string().contains("is closed"), "{err}");
    }

    #[test]
    fn comments_are_numbered_and_listed() {
        let s = store();
        let b = s.create(&task("t"), "a").unwrap();
        s.comment(&b.id, "first", "nux").unwrap();
        let c = s.comment(&b.id, "second", "slit").unwrap();
        assert_eq!(c.id, 2);
        let b = s.get(&b.id).unwrap();
        assert_eq!(b.comments.len(), 2);
        assert_eq!(b.comments[1].author, "slit");
        assert!(s.comment(&b.id, " ", "x").is_err());
    }
}
