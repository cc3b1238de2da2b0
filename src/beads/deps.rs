//! Dependencies between beads, cycle refusal, and the derived `blocked` flag that keeps the
//! ready query cheap.
//!
//! A bead is blocked while it has a `blocks` dependency on a bead whose status is active (open,
//! in_progress, blocked, deferred, hooked), or a `parent-child` dependency on a parent that is
//! itself blocked. The flag is stored on the bead and maintained on every write that can change
//! it, touching only the beads downstream of the change: never a rebuild of the whole store.

use super::events::{ev, NewEvent};
use super::model::dep;
use super::rows::{check_id, must_load};
use super::{check_actor, Store, Tx};
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

impl Tx<'_> {
    /// The beads that depend on `id` (with a dependency of `dep_type`, or any).
    pub(crate) fn dependents_of(&self, id: &str, dep_type: Option<&str>) -> Result<Vec<String>> {
        dependents_of(self.conn, id, dep_type)
    }

    /// Adds `issue` -> `depends_on` of `dep_type`. Refuses self-dependencies and cycles among
    /// blocking types; re-adding the same edge is a no-op, re-adding with another type changes
    /// the type.
    pub(crate) fn add_dep(
        &self,
        issue: &str,
        depends_on: &str,
        dep_type: &str,
        actor: &str,
    ) -> Result<bool> {
        let actor = check_actor(actor)?;
        if !dep::ALL.contains(&dep_type) {
            return Err(Error::bad(format!(
                "unknown dependency type '{dep_type}' (expected one of: {})",
                dep::ALL.join(", ")
            )));
        }
        if issue == depends_on {
            return Err(Error::bad(format!("{issue} cannot depend on itself")));
        }
        must_load(self.conn, issue)?;
        must_load(self.conn, depends_on)?;
        let existing: Option<String> = self
            .conn
            .prepare_cached("SELECT type FROM deps WHERE issue_id = ?1 AND depends_on_id = ?2")?
            .query_row([issue, depends_on], |r| r.get(0))
            .optional()?;
        if existing.as_deref() == Some(dep_type) {
            return Ok(false);
        }
        if dep::is_blocking(dep_type) && reaches(self.conn, depends_on, issue)? {
            return Err(Error::bad(format!(
                "refused: {issue} -> {depends_on} ({dep_type}) would make a cycle: \
                 {depends_on} already waits for {issue}"
            )));
        }
        self.conn
            .prepare_cached(
                "INSERT INTO deps(issue_id, depends_on_id, type, created_at, created_by, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5,
                    (SELECT IFNULL(MAX(seq) + 1, 0) FROM deps WHERE issue_id = ?1))
                 ON CONFLICT(issue_id, depends_on_id) DO UPDATE SET type = excluded.type",
            )?
            .execute(params![issue, depends_on, dep_type, self.now, actor])?;
        self.event(NewEvent {
            subject: issue,
            kind: ev::DEP_ADDED,
            actor,
            old: existing.as_deref(),
            new: Some(depends_on),
            detail: Some(dep_type),
        })?;
        refresh_blocked(self.conn, vec![issue.to_string()])?;
        self.touch(issue)?;
        Ok(true)
    }

    pub(crate) fn remove_dep(&self, issue: &str, depends_on: &str, actor: &str) -> Result<()> {
        let actor = check_actor(actor)?;
        let existing: Option<String> = self
            .conn
            .prepare_cached("SELECT type FROM deps WHERE issue_id = ?1 AND depends_on_id = ?2")?
            .query_row([issue, depends_on], |r| r.get(0))
            .optional()?;
        let Some(t) = existing else {
            return Err(Error::NotFound {
                kind: "dependency",
                id: format!("{issue} -> {depends_on}"),
            });
        };
        self.conn.execute(
            "DELETE FROM deps WHERE issue_id = ?1 AND depends_on_id = ?2",
            [issue, depends_on],
        )?;
        self.event(NewEvent {
            subject: issue,
            kind: ev::DEP_REMOVED,
            actor,
            old: Some(depends_on),
            new: None,
            detail: Some(&t),
        })?;
        refresh_blocked(self.conn, vec![issue.to_string()])?;
        self.touch(issue)?;
        Ok(())
    }
}

pub(crate) fn dependents_of(
    conn: &Connection,
    id: &str,
    dep_type: Option<&str>,
) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT issue_id FROM deps WHERE depends_on_id = ?1 AND (?2 IS NULL OR type = ?2)",
    )?;
    let rows = stmt.query_map(params![id, dep_type], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}

/// Whether `from` reaches `to` by following blocking dependencies.
fn reaches(conn: &Connection, from: &str, to: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "WITH RECURSIVE reach(id) AS (
                SELECT ?1
                UNION
                SELECT d.depends_on_id FROM deps d JOIN reach r ON d.issue_id = r.id
                WHERE d.type IN ('blocks', 'parent-child')
             )
             SELECT EXISTS(SELECT 1 FROM reach WHERE id = ?2)",
        )?
        .query_row([from, to], |r| r.get(0))?)
}

/// Recomputes the blocked flag of `seeds` and, where it changed, of their children (and
/// theirs), following parent-child edges downward.
pub(crate) fn refresh_blocked(conn: &Connection, seeds: Vec<String>) -> Result<()> {
    // Blocking edges form a DAG (cycles are refused), so this terminates; a bead reached twice
    // is simply recomputed against the newer state of its parents.
    let mut queue = seeds;
    while let Some(id) = queue.pop() {
        let row: Option<(i64, i64)> = conn
            .prepare_cached(
                "SELECT blocked,
                    (EXISTS(SELECT 1 FROM deps d JOIN beads b ON b.id = d.depends_on_id
                            WHERE d.issue_id = ?1 AND d.type = 'blocks'
                              AND b.status IN ('open','in_progress','blocked','deferred','hooked'))
                     OR EXISTS(SELECT 1 FROM deps d JOIN beads b ON b.id = d.depends_on_id
                            WHERE d.issue_id = ?1 AND d.type = 'parent-child' AND b.blocked = 1))
                 FROM beads WHERE id = ?1",
            )?
            .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((old, new)) = row else { continue };
        if old != new {
            conn.prepare_cached("UPDATE beads SET blocked = ?2 WHERE id = ?1")?
                .execute(params![id, new])?;
            queue.extend(dependents_of(conn, &id, Some(dep::PARENT_CHILD))?);
        }
    }
    Ok(())
}

/// Recomputes every blocked flag from scratch (after a bulk import): direct blockers first,
/// then parent-child inheritance until nothing changes.
pub(crate) fn recompute_all_blocked(conn: &Connection) -> Result<()> {
    conn.execute(
        "UPDATE beads SET blocked = EXISTS(
            SELECT 1 FROM deps d JOIN beads b ON b.id = d.depends_on_id
            WHERE d.issue_id = beads.id AND d.type = 'blocks'
              AND b.status IN ('open','in_progress','blocked','deferred','hooked'))",
        [],
    )?;
    loop {
        let changed = conn.execute(
            "UPDATE beads SET blocked = 1 WHERE blocked = 0 AND EXISTS(
                SELECT 1 FROM deps d JOIN beads b ON b.id = d.depends_on_id
                WHERE d.issue_id = beads.id AND d.type = 'parent-child' AND b.blocked = 1)",
            [],
        )?;
        if changed == 0 {
            return Ok(());
        }
    }
}

/// Finds a cycle among blocking dependencies anywhere in the store, returning one bead on it.
pub(crate) fn find_cycle(conn: &Connection) -> Result<Option<String>> {
    use std::collections::HashMap;
    let mut graph: HashMap<String, Vec<String>> = HashMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT issue_id, depends_on_id FROM deps WHERE type IN ('blocks', 'parent-child')",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (a, b) = row?;
            graph.entry(a).or_default().push(b);
        }
    }
    // Iterative three-colour DFS.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    let mut mark: HashMap<&str, Mark> = HashMap::new();
    let mut starts: Vec<&String> = graph.keys().collect();
    starts.sort();
    for start in starts {
        if mark.contains_key(start.as_str()) {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        mark.insert(start.as_str(), Mark::Active);
        while let Some((node, i)) = stack.pop() {
            let next = graph.get(node).and_then(|v| v.get(i));
            match next {
                Some(n) => {
                    stack.push((node, i + 1));
                    match mark.get(n.as_str()) {
                        Some(Mark::Active) => return Ok(Some(n.clone())),
                        Some(Mark::Done) => {}
                        None => {
                            mark.insert(n.as_str(), Mark::Active);
                            stack.push((n.as_str(), 0));
                        }
                    }
                }
                None => {
                    mark.insert(node, Mark::Done);
                }
            }
        }
    }
    Ok(None)
}

impl Store {
    /// `issue` waits for (or links to) `depends_on`. Returns false when the edge was there.
    pub fn add_dep(
        &self,
        issue: &str,
        depends_on: &str,
        dep_type: &str,
        actor: &str,
    ) -> Result<bool> {
        check_id(issue)?;
        check_id(depends_on)?;
        self.write(|tx| tx.add_dep(issue, depends_on, dep_type, actor))
    }

    /// Removes the dependency `issue` -> `depends_on`.
    pub fn remove_dep(&self, issue: &str, depends_on: &str, actor: &str) -> Result<()> {
        check_id(issue)?;
        check_id(depends_on)?;
        self.write(|tx| tx.remove_dep(issue, depends_on, actor))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{store, task};
    use super::super::{BeadUpdate, NewBead};
    use super::*;

    #[test]
    fn cycles_among_blocking_types_are_refused() {
        let s = store();
        let a = s.create(&task("a"), "x").unwrap().id;
        let b = s.create(&task("b"), "x").unwrap().id;
        let c = s.create(&task("c"), "x").unwrap().id;
        assert!(s.add_dep(&a, &b, "blocks", "x").unwrap());
        assert!(s.add_dep(&b, &c, "blocks", "x").unwrap());
        let err = s.add_dep(&c, &a, "blocks", "x").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("cycle"), "{err}");
        let err = s.add_dep(&c, &a, "parent-child", "x").unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
        // A non-blocking link back is fine.
        assert!(s.add_dep(&c, &a, "related", "x").unwrap());
        assert!(s.add_dep(&a, &a, "blocks", "x").is_err());
        // Re-adding the same edge is a no-op.
        assert!(!s.add_dep(&a, &b, "blocks", "x").unwrap());
        assert!(s.add_dep(&a, "gt-nope", "blocks", "x").is_err());
        assert!(s
            .add_dep(&a, &c, "waits", "x")
            .unwrap_err()
            .to_string()
            .contains("unknown dependency type"));
        assert_eq!(find_cycle(s.conn()).unwrap(), None);
    }

    #[test]
    fn blocked_flag_follows_blockers_and_parents() {
        let s = store();
        let blocker = s.create(&task("blocker"), "x").unwrap().id;
        let epic = s.create(&task("epic"), "x").unwrap().id;
        let child = s
            .create(
                &NewBead {
                    title: "child".into(),
                    parent: Some(epic.clone()),
                    ..Default::default()
                },
                "x",
            )
            .unwrap()
            .id;
        let grandchild = s
            .create(
                &NewBead {
                    title: "gc".into(),
                    parent: Some(child.clone()),
                    ..Default::default()
                },
                "x",
            )
            .unwrap()
            .id;
        let blocked = |id: &str| s.get(id).unwrap().blocked;
        assert!(!blocked(&grandchild));
        s.add_dep(&epic, &blocker, "blocks", "x").unwrap();
        assert!(blocked(&epic) && blocked(&child) && blocked(&grandchild));
        // A blocker moving between active statuses keeps blocking.
        let to = |st: &str| BeadUpdate {
            status: Some(st.into()),
            ..Default::default()
        };
        s.update(&blocker, &to("in_progress"), "x").unwrap();
        assert!(blocked(&grandchild));
        s.close(&blocker, "", "x").unwrap();
        assert!(!blocked(&epic) && !blocked(&child) && !blocked(&grandchild));
        s.update(&blocker, &to("open"), "x").unwrap();
        assert!(blocked(&grandchild), "reopening the blocker blocks again");
        s.remove_dep(&epic, &blocker, "x").unwrap();
        assert!(!blocked(&grandchild));
        assert!(matches!(
            s.remove_dep(&epic, &blocker, "x").unwrap_err(),
            Error::NotFound { .. }
        ));
        // The full recomputation agrees with the incremental one.
        s.add_dep(&child, &blocker, "blocks", "x").unwrap();
        let before: Vec<bool> = [&epic, &child, &grandchild]
            .iter()
            .map(|i| blocked(i))
            .collect();
        recompute_all_blocked(s.conn()).unwrap();
        let after: Vec<bool> = [&epic, &child, &grandchild]
            .iter()
            .map(|i| blocked(i))
            .collect();
        assert_eq!(before, vec![false, true, true]);
        assert_eq!(before, after);
    }
}
