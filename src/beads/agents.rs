//! Agent identities. An agent (the mayor, a crew member, a polecat) keeps its row for life:
//! sessions, pids and states come and go, the name and the hook stay. Hooking puts a bead on an
//! agent's hook; both sides change in one transaction, so a bead is never on two hooks.

use super::events::{ev, NewEvent};
use super::model::status;
use super::rows::{check_id, must_load};
use super::{check_actor, Agent, Store, Tx};
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};

pub mod role {
    pub const MAYOR: &str = "mayor";
    pub const CREW: &str = "crew";
    pub const POLECAT: &str = "polecat";
    pub const ALL: &[&str] = &[MAYOR, CREW, POLECAT];
}

pub mod agent_state {
    pub const IDLE: &str = "idle";
    pub const WORKING: &str = "working";
    pub const WAITING: &str = "waiting";
    pub const STALLED: &str = "stalled";
    pub const DEAD: &str = "dead";
    pub const ZOMBIE: &str = "zombie";
    pub const STOPPED: &str = "stopped";
    /// Stopped in place by the overseer (`freeze`) or a budget: never stalled or dead.
    pub const FROZEN: &str = "frozen";
    pub const ALL: &[&str] = &[
        IDLE, WORKING, WAITING, STALLED, DEAD, ZOMBIE, STOPPED, FROZEN,
    ];
}

/// The polecat name pool (`assets/names.txt`): persistent names handed out in order.
pub fn name_pool() -> impl Iterator<Item = &'static str> {
    include_str!("../../assets/names.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

const AGENT_COLS: &str = "name, role, rig, runtime, state, hooked_bead, session, pid, \
     last_activity, restarts, created_at, updated_at, reported_state, reported_at, state_reason, \
     conversation, conversation_bead, frozen";

fn agent_from_row(r: &Row) -> rusqlite::Result<Agent> {
    Ok(Agent {
        name: r.get(0)?,
        role: r.get(1)?,
        rig: r.get(2)?,
        runtime: r.get(3)?,
        state: r.get(4)?,
        hooked_bead: r.get(5)?,
        session: r.get(6)?,
        pid: r.get(7)?,
        last_activity: r.get(8)?,
        restarts: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        reported_state: r.get(12)?,
        reported_at: r.get(13)?,
        state_reason: r.get(14)?,
        conversation: r.get(15)?,
        conversation_bead: r.get(16)?,
        frozen: r.get(17)?,
    })
}

fn load_agent(conn: &Connection, name: &str) -> Result<Option<Agent>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {AGENT_COLS} FROM agents WHERE name = ?1"))?
        .query_row([name], agent_from_row)
        .optional()?)
}

fn must_agent(conn: &Connection, name: &str) -> Result<Agent> {
    load_agent(conn, name)?.ok_or_else(|| Error::NotFound {
        kind: "agent",
        id: name.to_string(),
    })
}

/// Agent names: what a polecat, crew member or the mayor is called.
pub fn check_agent_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::bad(format!(
            "'{name}' is not a valid agent name (lowercase letters, digits, - and _; at most 40)"
        )))
    }
}

impl Tx<'_> {
    pub(crate) fn hook_bead(&self, agent: &str, bead: &str, actor: &str) -> Result<()> {
        let tx = self;
        let actor = check_actor(actor)?;
        let a = must_agent(tx.conn, agent)?;
        let b = must_load(tx.conn, bead)?;
        match a.hooked_bead.as_deref() {
            Some(h) if h == bead => return Ok(()),
            Some(h) => {
                return Err(Error::Conflict(format!(
                    "{agent} already has {h} on its hook"
                )))
            }
            None => {}
        }
        if !b.assignee.is_empty() && b.assignee != agent {
            return Err(Error::AlreadyClaimed {
                id: bead.to_string(),
                by: b.assignee,
            });
        }
        if b.status == status::CLOSED {
            return Err(Error::Conflict(format!("{bead} is closed")));
        }
        tx.conn.execute(
            "UPDATE beads SET assignee = ?2, updated_at = ?3 WHERE id = ?1",
            params![bead, agent, tx.now],
        )?;
        tx.set_status(bead, &b.status, status::HOOKED, "", actor)?;
        tx.set_agent_hook(agent, Some(bead))?;
        // New work: restarts count from zero, and a stopped or dead agent runs again.
        tx.conn.execute(
            "UPDATE agents SET restarts = 0,
                state = CASE WHEN state IN ('stopped', 'dead', 'zombie') THEN 'idle' ELSE state END
             WHERE name = ?1",
            [agent],
        )?;
        tx.event(NewEvent {
            subject: bead,
            kind: ev::HOOKED,
            actor,
            new: Some(agent),
            ..Default::default()
        })
    }

    fn set_agent_hook(&self, name: &str, bead: Option<&str>) -> Result<()> {
        self.conn.execute(
            "UPDATE agents SET hooked_bead = ?2, updated_at = ?3 WHERE name = ?1",
            params![name, bead, self.now],
        )?;
        Ok(())
    }
}

impl Store {
    /// Creates the agent's identity row, or returns the existing one (updating its runtime
    /// when a new one is given).
    pub fn agent_register(
        &self,
        name: &str,
        role: &str,
        rig: &str,
        runtime: &str,
        actor: &str,
    ) -> Result<Agent> {
        check_agent_name(name)?;
        if !role::ALL.contains(&role) {
            return Err(Error::bad(format!(
                "unknown role '{role}' (expected one of: {})",
                role::ALL.join(", ")
            )));
        }
        self.write(|tx| {
            let actor = check_actor(actor)?;
            match load_agent(tx.conn, name)? {
                Some(existing) => {
                    if existing.role != role || existing.rig != rig {
                        return Err(Error::Conflict(format!(
                            "agent {name} already exists as {} in rig '{}'",
                            existing.role, existing.rig
                        )));
                    }
                    if !runtime.is_empty() && existing.runtime != runtime {
                        tx.conn.execute(
                            "UPDATE agents SET runtime = ?2, updated_at = ?3 WHERE name = ?1",
                            params![name, runtime, tx.now],
                        )?;
                    }
                }
                None => {
                    tx.conn.execute(
                        "INSERT INTO agents(name, role, rig, runtime, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                        params![name, role, rig, runtime, tx.now],
                    )?;
                    tx.event(NewEvent {
                        subject: name,
                        kind: ev::AGENT_REGISTERED,
                        actor,
                        new: Some(role),
                        detail: (!rig.is_empty()).then_some(rig),
                        ..Default::default()
                    })?;
                }
            }
            Ok(())
        })?;
        self.agent(name)
    }

    pub fn agent(&self, name: &str) -> Result<Agent> {
        must_agent(self.conn(), name)
    }

    /// Every agent, by role (mayor, crew, polecats) then name.
    pub fn agents(&self) -> Result<Vec<Agent>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {AGENT_COLS} FROM agents
             ORDER BY CASE role WHEN 'mayor' THEN 0 WHEN 'crew' THEN 1 ELSE 2 END, rig, name"
        ))?;
        let v = stmt
            .query_map([], agent_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    }

    /// Records a state change (with an event when the state actually changed).
    pub fn agent_set_state(
        &self,
        name: &str,
        state: &str,
        reason: &str,
        actor: &str,
    ) -> Result<()> {
        if !agent_state::ALL.contains(&state) {
            return Err(Error::bad(format!(
                "unknown agent state '{state}' (expected one of: {})",
                agent_state::ALL.join(", ")
            )));
        }
        self.write(|tx| {
            let actor = check_actor(actor)?;
            let a = must_agent(tx.conn, name)?;
            // A new reason for the same waiting or dead state is news too (a sign-in after a
            // permission question); otherwise only a change of state is.
            let news = a.state != state
                || (a.state_reason != reason
                    && matches!(state, agent_state::WAITING | agent_state::DEAD));
            if news {
                tx.conn.execute(
                    "UPDATE agents SET state = ?2, state_reason = ?4, updated_at = ?3
                     WHERE name = ?1",
                    params![name, state, tx.now, reason],
                )?;
                tx.event(NewEvent {
                    subject: name,
                    kind: ev::AGENT_STATE,
                    actor,
                    old: Some(&a.state),
                    new: Some(state),
                    detail: (!reason.is_empty()).then_some(reason),
                })?;
            }
            Ok(())
        })
    }

    /// Records the agent's current session and process (None when it has none).
    pub fn agent_set_session(
        &self,
        name: &str,
        session: Option<&str>,
        pid: Option<i64>,
    ) -> Result<()> {
        self.write(|tx| {
            must_agent(tx.conn, name)?;
            tx.conn.execute(
                "UPDATE agents SET session = ?2, pid = ?3, last_activity = ?4, updated_at = ?4
                 WHERE name = ?1",
                params![name, session, pid, tx.now],
            )?;
            Ok(())
        })
    }

    /// Records the runtime's conversation id for the agent's current bead (None forgets it,
    /// so the next session starts a fresh conversation).
    pub fn agent_set_conversation(
        &self,
        name: &str,
        conversation: Option<&str>,
        bead: Option<&str>,
    ) -> Result<()> {
        self.write_bookkeeping(|tx| {
            must_agent(tx.conn, name)?;
            tx.conn.execute(
                "UPDATE agents SET conversation = ?2, conversation_bead = ?3 WHERE name = ?1",
                params![name, conversation, bead],
            )?;
            Ok(())
        })
    }

    /// Freezes or thaws `name` (the overseer's emergency stop; the engine stops or resumes
    /// its processes), with an event when it changed. True when it changed.
    pub fn agent_set_frozen(
        &self,
        name: &str,
        frozen: bool,
        reason: &str,
        actor: &str,
    ) -> Result<bool> {
        self.write(|tx| {
            let actor = check_actor(actor)?;
            let a = must_agent(tx.conn, name)?;
            if a.frozen == frozen {
                return Ok(false);
            }
            tx.conn.execute(
                "UPDATE agents SET frozen = ?2, updated_at = ?3 WHERE name = ?1",
                params![name, frozen, tx.now],
            )?;
            tx.simple_event(
                name,
                if frozen { ev::FROZEN } else { ev::THAWED },
                actor,
                (!reason.is_empty()).then_some(reason),
            )?;
            Ok(true)
        })
    }

    /// Counts a restart of the agent's session; returns the new count.
    pub fn agent_restarted(&self, name: &str, reason: &str, actor: &str) -> Result<i64> {
        self.write(|tx| {
            let actor = check_actor(actor)?;
            must_agent(tx.conn, name)?;
            let n: i64 = tx.conn.query_row(
                "UPDATE agents SET restarts = restarts + 1, updated_at = ?2 WHERE name = ?1
                 RETURNING restarts",
                params![name, tx.now],
                |r| r.get(0),
            )?;
            tx.simple_event(
                name,
                ev::RESTARTED,
                actor,
                (!reason.is_empty()).then_some(reason),
            )?;
            Ok(n)
        })
    }

    /// Puts `bead` on `agent`'s hook: the bead becomes `hooked` and assigned to the agent, in
    /// one transaction. Refuses a bead held by someone else and an agent already hooked to
    /// another bead.
    pub fn hook(&self, agent: &str, bead: &str, actor: &str) -> Result<()> {
        check_id(bead)?;
        self.write(|tx| tx.hook_bead(agent, bead, actor))
    }

    /// Takes whatever is on `agent`'s hook off it; the bead keeps its status and assignee
    /// unless `release` is set, which gives it back to the ready queue (open, unassigned).
    pub fn unhook(&self, agent: &str, release: bool, actor: &str) -> Result<Option<String>> {
        self.write(|tx| {
            let actor = check_actor(actor)?;
            let a = must_agent(tx.conn, agent)?;
            let Some(bead) = a.hooked_bead else {
                return Ok(None);
            };
            tx.set_agent_hook(agent, None)?;
            if let Some(b) = super::rows::load_bead(tx.conn, &bead)? {
                if release && b.status != status::CLOSED {
                    tx.conn.execute(
                        "UPDATE beads SET assignee = '', updated_at = ?2 WHERE id = ?1",
                        params![bead, tx.now],
                    )?;
                    tx.set_status(&bead, &b.status, status::OPEN, "released from hook", actor)?;
                }
            }
            tx.event(NewEvent {
                subject: &bead,
                kind: ev::UNHOOKED,
                actor,
                old: Some(agent),
                ..Default::default()
            })?;
            Ok(Some(bead))
        })
    }
}

/// What `sling` did: which polecat got the bead.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Slung {
    pub bead: String,
    pub agent: String,
    pub rig: String,
    /// True when the polecat was created for this sling (a new name from the pool).
    pub new_agent: bool,
}

/// How an agent's work ended, as `done --status` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoneStatus {
    /// The branch goes to the merge queue; the bead closes when it merges.
    Completed,
    /// The bead is set aside (status deferred) and released.
    Deferred,
    /// The bead goes back to the ready queue (open, unassigned).
    Failed,
}

impl std::str::FromStr for DoneStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "completed" => Ok(DoneStatus::Completed),
            "deferred" => Ok(DoneStatus::Deferred),
            "failed" => Ok(DoneStatus::Failed),
            _ => Err(Error::bad(format!(
                "--status: '{s}' is not one of completed, deferred, failed"
            ))),
        }
    }
}

/// What `done` did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DoneOutcome {
    pub bead: String,
    pub merge_request: Option<i64>,
}

/// A polecat name for a new agent: the first pool name not taken, else `<pool name>-<n>`.
fn fresh_polecat_name(conn: &Connection) -> Result<String> {
    let taken = |n: &str| -> Result<bool> {
        Ok(conn
            .prepare_cached("SELECT 1 FROM agents WHERE name = ?1")?
            .exists([n])?)
    };
    for round in 1.. {
        for base in name_pool() {
            let name = if round == 1 {
                base.to_string()
            } else {
                format!("{base}-{round}")
            };
            if !taken(&name)? {
                return Ok(name);
            }
        }
    }
    unreachable!("the loop over rounds never ends without a free name")
}

/// Polecats of `rig` with an empty hook and nothing waiting in the merge queue, oldest first.
fn free_polecats(conn: &Connection, rig: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name FROM agents a WHERE role = 'polecat' AND rig = ?1
           AND hooked_bead IS NULL
           AND NOT EXISTS(SELECT 1 FROM merge_requests m WHERE m.submitter = a.name
                          AND m.state IN ('queued', 'testing'))
         ORDER BY created_at, name",
    )?;
    let v = stmt
        .query_map([rig], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(v)
}

impl Store {
    /// The polecats `sling` could give work to in `rig`, in the order it would try them.
    pub fn free_polecats(&self, rig: &str) -> Result<Vec<String>> {
        free_polecats(self.conn(), rig)
    }

    /// Slings `bead` to `rig`: a free polecat of the rig (no hook, nothing waiting in the merge
    /// queue, not in `exclude`) takes it, or a new polecat is named from the pool. The bead is hooked to it in
    /// the same transaction; the engine then starts the polecat's session.
    pub fn sling(
        &self,
        bead: &str,
        rig: &str,
        runtime: &str,
        actor: &str,
        exclude: &[String],
    ) -> Result<Slung> {
        check_id(bead)?;
        self.write(|tx| {
            let actor = check_actor(actor)?;
            let b = must_load(tx.conn, bead)?;
            if !super::model::kind::WORK.contains(&b.issue_type.as_str()) {
                return Err(Error::bad(format!(
                    "{bead} is a {}; only work (task, bug, feature, epic, chore) can be slung",
                    b.issue_type
                )));
            }
            if b.status == status::HOOKED {
                return Err(Error::Conflict(format!(
                    "{bead} is already on {}'s hook",
                    b.assignee
                )));
            }
            if !b.assignee.is_empty() {
                return Err(Error::AlreadyClaimed {
                    id: bead.to_string(),
                    by: b.assignee,
                });
            }
            if b.status != status::OPEN {
                return Err(Error::Conflict(format!(
                    "{bead} is {}; only open beads can be slung",
                    b.status
                )));
            }
            if b.blocked {
                return Err(Error::Conflict(format!(
                    "{bead} is blocked by an open dependency (see: gastown-tui bead show {bead})"
                )));
            }
            let free = free_polecats(tx.conn, rig)?
                .into_iter()
                .find(|n| !exclude.iter().any(|e| e == n));
            let new_agent = free.is_none();
            let name = match free {
                Some(n) => n,
                None => {
                    let n = fresh_polecat_name(tx.conn)?;
                    tx.conn.execute(
                        "INSERT INTO agents(name, role, rig, runtime, created_at, updated_at)
                         VALUES (?1, 'polecat', ?2, ?3, ?4, ?4)",
                        params![n, rig, runtime, tx.now],
                    )?;
                    tx.event(NewEvent {
                        subject: &n,
                        kind: ev::AGENT_REGISTERED,
                        actor,
                        new: Some(role::POLECAT),
                        detail: Some(rig),
                        ..Default::default()
                    })?;
                    n
                }
            };
            if !runtime.is_empty() {
                tx.conn.execute(
                    "UPDATE agents SET runtime = ?2 WHERE name = ?1",
                    params![name, runtime],
                )?;
            }
            tx.hook_bead(&name, bead, actor)?;
            Ok(Slung {
                bead: bead.to_string(),
                agent: name,
                rig: rig.to_string(),
                new_agent,
            })
        })
    }

    /// An agent finished with its hook. Completed work on `branch` goes to its rig's merge
    /// queue (the bead stays in progress until it merges); deferred and failed work is
    /// released. The hook is empty afterwards.
    pub fn done(
        &self,
        agent: &str,
        how: DoneStatus,
        branch: &str,
        actor: &str,
    ) -> Result<DoneOutcome> {
        self.write(|tx| {
            let actor = check_actor(actor)?;
            let a = must_agent(tx.conn, agent)?;
            let Some(bead) = a.hooked_bead.clone() else {
                return Err(Error::Conflict(format!("{agent} has nothing on its hook")));
            };
            let b = must_load(tx.conn, &bead)?;
            let mut merge_request = None;
            match how {
                DoneStatus::Completed => {
                    if branch.trim().is_empty() {
                        return Err(Error::bad("done: no branch to submit"));
                    }
                    merge_request = Some(tx.submit_mr(&a.rig, branch, Some(&bead), agent)?);
                    tx.set_status(
                        &bead,
                        &b.status,
                        status::IN_PROGRESS,
                        "submitted for merge",
                        actor,
                    )?;
                }
                DoneStatus::Deferred | DoneStatus::Failed => {
                    tx.conn.execute(
                        "UPDATE beads SET assignee = '', updated_at = ?2 WHERE id = ?1",
                        params![bead, tx.now],
                    )?;
                    let (to, why) = if how == DoneStatus::Deferred {
                        (status::DEFERRED, "deferred by its agent")
                    } else {
                        (status::OPEN, "its agent gave up; back in the ready queue")
                    };
                    tx.set_status(&bead, &b.status, to, why, actor)?;
                }
            }
            tx.set_agent_hook(agent, None)?;
            tx.event(NewEvent {
                subject: &bead,
                kind: ev::UNHOOKED,
                actor,
                old: Some(agent),
                ..Default::default()
            })?;
            Ok(DoneOutcome {
                bead,
                merge_request,
            })
        })
    }

    /// A state report from the agent itself (`agent-event`, e.g. from Claude Code hooks):
    /// recorded as the agent's state and its last activity.
    pub fn agent_report(&self, agent: &str, state: &str) -> Result<()> {
        self.agent_set_state(agent, state, "reported by the agent", agent)?;
        self.write(|tx| {
            tx.conn.execute(
                "UPDATE agents SET last_activity = ?2, reported_state = ?3, reported_at = ?2
                 WHERE name = ?1",
                params![agent, tx.now, state],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{store, task};
    use super::*;

    #[test]
    fn sling_names_polecats_and_done_hands_work_on() {
        let s = store();
        let a = s.create(&task("a"), "x").unwrap().id;
        let b = s.create(&task("b"), "x").unwrap().id;
        let c = s.create(&task("c"), "x").unwrap().id;
        let slung = s.sling(&a, "demo", "sim", "overseer", &[]).unwrap();
        assert_eq!((slung.agent.as_str(), slung.new_agent), ("furiosa", true));
        let bead = s.get(&a).unwrap();
        assert_eq!(
            (bead.status.as_str(), bead.assignee.as_str()),
            ("hooked", "furiosa")
        );
        assert!(s
            .sling(&a, "demo", "sim", "overseer", &[])
            .unwrap_err()
            .to_string()
            .contains("already on furiosa's hook"));
        assert_eq!(
            s.sling(&b, "demo", "sim", "overseer", &[]).unwrap().agent,
            "nux"
        );
        // furiosa submits; while its request waits it is not free.
        let out = s
            .done(
                "furiosa",
                DoneStatus::Completed,
                "polecat/furiosa/x",
                "furiosa",
            )
            .unwrap();
        let mr = s.mr(out.merge_request.unwrap()).unwrap();
        assert_eq!(
            (mr.rig.as_str(), mr.bead_id.as_deref()),
            ("demo", Some(a.as_str()))
        );
        assert_eq!(s.get(&a).unwrap().status, "in_progress");
        assert_eq!(s.agent("furiosa").unwrap().hooked_bead, None);
        assert!(s
            .done("furiosa", DoneStatus::Completed, "b", "furiosa")
            .unwrap_err()
            .to_string()
            .contains("nothing on its hook"));
        let third = s.sling(&c, "demo", "", "overseer", &[]).unwrap();
        assert_eq!(third.agent, "slit");
        // nux gives up: its bead is ready again, and nux is free for the next sling.
        s.done("nux", DoneStatus::Failed, "", "nux").unwrap();
        let bead = s.get(&b).unwrap();
        assert_eq!((bead.status.as_str(), bead.assignee.as_str()), ("open", ""));
        assert!(s.ready(None).unwrap().iter().any(|r| r.id == b));
        let again = s.sling(&b, "demo", "", "overseer", &[]).unwrap();
        assert_eq!((again.agent.as_str(), again.new_agent), ("nux", false));
        // Once furiosa's request merged, furiosa is free again.
        s.mr_set_state(mr.id, "merged", "", "", "refinery").unwrap();
        let d = s.create(&task("d"), "x").unwrap().id;
        assert_eq!(
            s.sling(&d, "demo", "", "overseer", &[]).unwrap().agent,
            "furiosa"
        );
        // Polecats of another rig are separate.
        let e = s.create(&task("e"), "x").unwrap().id;
        assert_eq!(
            s.sling(&e, "other", "", "overseer", &[]).unwrap().agent,
            "rictus"
        );
        // Not work, blocked, or missing: refused.
        let m = s.mail_send("x", "mayor", "hi", "").unwrap().id;
        assert!(s
            .sling(&m, "demo", "", "o", &[])
            .unwrap_err()
            .to_string()
            .contains("only work"));
        let f = s.create(&task("f"), "x").unwrap().id;
        let g = s.create(&task("g"), "x").unwrap().id;
        s.add_dep(&f, &g, "blocks", "x").unwrap();
        assert!(s
            .sling(&f, "demo", "", "o", &[])
            .unwrap_err()
            .to_string()
            .contains("blocked"));
        assert!(matches!(
            s.sling("gt-none", "demo", "", "o", &[]).unwrap_err(),
            Error::NotFound { .. }
        ));
        s.agent_report("furiosa", "working").unwrap();
        assert_eq!(s.agent("furiosa").unwrap().state, "working");
        assert!(s.agent_report("furiosa", "dancing").is_err());
    }

    #[test]
    fn the_name_pool_has_fifty_valid_unique_names() {
        let names: Vec<&str> = name_pool().collect();
        assert_eq!(names.len(), 50);
        assert_eq!(names[..3], ["furiosa", "nux", "slit"]);
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        for n in names {
            check_agent_name(n).unwrap();
        }
    }

    #[test]
    fn identities_persist_and_hooks_are_exclusive() {
        let s = store();
        let nux = s
            .agent_register("nux", "polecat", "demo", "sim", "deacon")
            .unwrap();
        assert_eq!(nux.state, "idle");
        s.agent_register("slit", "polecat", "demo", "sim", "deacon")
            .unwrap();
        // Registering again keeps the row.
        s.agent_register("nux", "polecat", "demo", "claude", "deacon")
            .unwrap();
        assert_eq!(s.agent("nux").unwrap().runtime, "claude");
        assert!(s.agent_register("nux", "crew", "demo", "", "x").is_err());
        assert!(s
            .agent_register("Bad Name", "polecat", "demo", "", "x")
            .is_err());

        let b = s.create(&task("work"), "x").unwrap().id;
        s.hook("nux", &b, "overseer").unwrap();
        let bead = s.get(&b).unwrap();
        assert_eq!(
            (bead.status.as_str(), bead.assignee.as_str()),
            ("hooked", "nux")
        );
        assert_eq!(
            s.agent("nux").unwrap().hooked_bead.as_deref(),
            Some(b.as_str())
        );
        let err = s.hook("slit", &b, "overseer").unwrap_err();
        assert!(matches!(err, Error::AlreadyClaimed { .. }), "{err}");
        // The hooked agent can claim its own bead.
        s.claim(&b, "nux").unwrap();

        s.agent_set_state("nux", "working", "output", "witness")
            .unwrap();
        s.agent_set_state("nux", "working", "output", "witness")
            .unwrap();
        assert!(s.agent_set_state("nux", "sleepy", "", "witness").is_err());
        assert_eq!(s.agent_restarted("nux", "crashed", "witness").unwrap(), 1);
        s.agent_set_session("nux", Some("s1"), Some(42)).unwrap();
        assert_eq!(s.agent("nux").unwrap().pid, Some(42));

        assert_eq!(s.unhook("nux", true, "witness").unwrap(), Some(b.clone()));
        let bead = s.get(&b).unwrap();
        assert_eq!((bead.status.as_str(), bead.assignee.as_str()), ("open", ""));
        assert_eq!(s.unhook("nux", true, "witness").unwrap(), None);
        let kinds: Vec<_> = s
            .events_for("nux")
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, vec!["agent_registered", "agent_state", "restarted"]);
        assert_eq!(s.agents().unwrap().len(), 2);
    }
}
