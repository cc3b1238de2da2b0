//! The Deacon: the town's reconciler, on every `deacon_every`. It records a heartbeat (so the
//! cockpit can show the patrols are alive), flushes the JSONL export when the store changed,
//! dispatches the ready beads of auto-dispatch convoys while fewer than `max_polecats` polecats
//! have work, reaps polecats idle with an empty hook for `reap_after`, and removes a polecat's
//! worktree only when its branch is merged (a branch with unmerged commits is never deleted).
//! Sessions left running by an engine that died are found once, at start, and stopped.

use super::{Engine, Stopping};
use crate::agent::sys;
use crate::beads::{ev, kind, role, status, Store};
use crate::town::worktree::{self, Removal};
use crate::{Error, Result};

impl Engine {
    pub(crate) fn deacon(&mut self) -> Result<()> {
        self.store.patrol_heartbeat()?;
        self.flush_in_background();
        self.auto_dispatch()?;
        self.walk_molecules()?;
        self.reap_idle()?;
        self.clean_worktrees()?;
        Ok(())
    }

    /// Keeps `.beads/issues.jsonl` current: takes the town's flusher slot when there is work
    /// and no flusher is on duty, and runs the flusher on a thread of its own (an export of a
    /// big store takes a while and must not hold up the sessions).
    fn flush_in_background(&mut self) {
        if self.flushing.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        match crate::town::flush::claim(&self.town, &self.store) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!("the JSONL flusher's slot: {e}");
                return;
            }
        }
        let db = self.town.db_path();
        let prefix = self.town.config.prefix.clone();
        let path = self.town.jsonl_path();
        let wait = self.town.config.store.flush_debounce;
        self.flushing = std::thread::Builder::new()
            .name("jsonl-flush".into())
            .spawn(move || {
                let r = Store::open(&db, &prefix, crate::clock::system())
                    .and_then(|s| crate::town::flush::run(&s, &path, wait));
                if let Err(e) = r {
                    tracing::warn!("flushing {}: {e}", path.display());
                }
            })
            .ok();
    }

    fn auto_dispatch(&mut self) -> Result<()> {
        let busy = |store: &Store| -> Result<usize> {
            Ok(store
                .agents()?
                .iter()
                .filter(|a| a.role == role::POLECAT && a.hooked_bead.is_some())
                .count())
        };
        let max = self.town.config.max_polecats as usize;
        let mut working = busy(&self.store)?;
        if working >= max {
            return Ok(());
        }
        for convoy in self.store.convoys()? {
            let Some(rig) = convoy.auto_dispatch.clone() else {
                continue;
            };
            if convoy.status == status::CLOSED || !self.town.config.rigs.contains_key(&rig) {
                continue;
            }
            let now = self.store.now_ns();
            let mut ready = Vec::new();
            for id in &convoy.tracked {
                let Ok(b) = self.store.get(id) else { continue };
                if b.is_ready(now) && b.assignee.is_empty() {
                    ready.push(b);
                }
            }
            ready.sort_by(|a, b| (a.priority, &a.created_at).cmp(&(b.priority, &b.created_at)));
            for b in ready {
                if working >= max {
                    return Ok(());
                }
                match crate::town::sling::sling(
                    &self.town,
                    &self.store,
                    &b.id,
                    &rig,
                    None,
                    "deacon",
                ) {
                    Ok((slung, _)) => {
                        working += 1;
                        self.store.record_event(
                            &b.id,
                            ev::DISPATCHED,
                            "deacon",
                            &format!("convoy {} to {} in rig {rig}", convoy.id, slung.agent),
                        )?;
                    }
                    // The day's budget is spent: nothing new starts this round.
                    Err(Error::BudgetSpent(_)) => return Ok(()),
                    Err(e) => tracing::warn!("auto-dispatch of {} failed: {e}", b.id),
                }
            }
        }
        Ok(())
    }

    /// Molecules being walked: when no step is in hand, the next ready step goes to the rig;
    /// when every step is closed, the molecule closes.
    fn walk_molecules(&mut self) -> Result<()> {
        use crate::town::sling::{molecule_steps, MOLECULE_RIG, MOLECULE_RUNTIME};
        let epics = self.store.list(&crate::beads::ListFilter {
            status: Some(status::OPEN.into()),
            issue_type: Some(kind::EPIC.into()),
            ..Default::default()
        })?;
        for epic in epics {
            let Some(rig) = epic.meta_str(MOLECULE_RIG).map(str::to_string) else {
                continue;
            };
            let runtime = epic.meta_str(MOLECULE_RUNTIME).map(str::to_string);
            let steps = molecule_steps(&self.store, &epic.id)?;
            if steps.iter().all(|s| s.status == status::CLOSED) {
                self.store.close(&epic.id, "every step is done", "deacon")?;
                continue;
            }
            let in_hand = steps
                .iter()
                .any(|s| s.status != status::CLOSED && !s.assignee.is_empty());
            if in_hand {
                continue;
            }
            let now = self.store.now_ns();
            let next = steps.iter().find(|s| s.is_ready(now));
            if let Some(step) = next {
                match crate::town::sling::sling(
                    &self.town,
                    &self.store,
                    &step.id,
                    &rig,
                    runtime.as_deref(),
                    "deacon",
                ) {
                    Ok((slung, _)) => self.store.record_event(
                        &step.id,
                        ev::DISPATCHED,
                        "deacon",
                        &format!("next step of molecule {} to {}", epic.id, slung.agent),
                    )?,
                    Err(Error::BudgetSpent(_)) => return Ok(()),
                    Err(e) => tracing::warn!("walking molecule {}: {e}", epic.id),
                }
            }
        }
        Ok(())
    }

    fn reap_idle(&mut self) -> Result<()> {
        let reap_after = self.town.config.patrol.reap_after;
        let agents = self.store.agents()?;
        let idle: Vec<String> = self
            .live
            .iter()
            .filter(|(name, l)| {
                l.stopping.is_none()
                    && l.watch.idle_for().is_some_and(|d| d >= reap_after)
                    && agents.iter().any(|a| {
                        &a.name == *name && a.role == role::POLECAT && a.hooked_bead.is_none()
                    })
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in idle {
            self.store.record_event(
                &name,
                ev::REAPED,
                "deacon",
                &format!("idle with an empty hook for {}s", reap_after.as_secs()),
            )?;
            self.stop(&name, Stopping::Kill)?;
        }
        Ok(())
    }

    fn clean_worktrees(&mut self) -> Result<()> {
        // A branch still in the merge queue (or being merged) is not touched.
        let pending: std::collections::HashSet<String> = self
            .store
            .merge_requests(None)?
            .into_iter()
            .filter(|m| m.state == "queued" || m.state == "testing")
            .map(|m| m.submitter)
            .collect();
        for a in self.store.agents()? {
            if a.role != role::POLECAT
                || a.hooked_bead.is_some()
                || self.live.contains_key(&a.name)
                || pending.contains(&a.name)
            {
                continue;
            }
            let dir = self.town.agent_dir(&a.role, &a.rig, &a.name);
            if !dir.exists() {
                continue;
            }
            let Some(rig) = self.town.config.rigs.get(&a.rig) else {
                continue;
            };
            let repo = self.town.rig_repo(&a.rig);
            let landed = self.store.mr_landed(&a.rig)?;
            match worktree::remove_if_merged(
                &repo,
                &dir,
                &format!("polecat-{}", a.name),
                &rig.branch,
                &landed,
            ) {
                Ok(Removal::Removed) => {
                    self.kept_reported.remove(&a.name);
                    self.store.record_event(
                        &a.name,
                        ev::WORKTREE_REMOVED,
                        "deacon",
                        "its branch is merged",
                    )?;
                }
                Ok(Removal::Kept(why)) => {
                    if self.kept_reported.insert(a.name.clone()) {
                        self.store
                            .record_event(&a.name, ev::WORKTREE_KEPT, "deacon", &why)?;
                    }
                }
                Err(e) => tracing::warn!("cleaning {}'s worktree: {e}", a.name),
            }
        }
        Ok(())
    }

    /// Stops sessions that an earlier engine left running (it died without stopping them):
    /// a second session must never work in the same worktree.
    pub(crate) fn kill_orphans(&mut self) -> Result<()> {
        let mut orphans = Vec::new();
        for a in self.store.agents()? {
            let Some(pid) = a.pid else { continue };
            if self.live.contains_key(&a.name) {
                continue;
            }
            let dir = self.town.agent_dir(&a.role, &a.rig, &a.name);
            if orphan_alive(pid, &dir) {
                orphans.push((a.name.clone(), pid));
            }
            self.store.agent_set_session(&a.name, None, None)?;
        }
        // All at once: one grace for every orphan, not one each; with them, whatever any
        // earlier session of this town left running (a daemon, a background job): every
        // process marked as a session of this town but none of the live ones.
        let live: std::collections::HashSet<&str> =
            self.live.values().map(|l| l.mark.as_str()).collect();
        let left = sys::marked(&self.town.root, |m| !live.contains(m));
        sys::terminate(
            orphans
                .iter()
                .filter_map(|(_, pid)| i32::try_from(*pid).ok())
                .chain(left.iter().copied()),
            std::time::Duration::from_secs(1),
        );
        if !left.is_empty() {
            tracing::info!(
                "stopped {} process(es) earlier sessions left behind",
                left.len()
            );
        }
        for (name, pid) in orphans {
            self.store.record_event(
                &name,
                ev::ZOMBIE,
                "witness",
                &format!("pid {pid} from an earlier engine was still running; stopped it"),
            )?;
        }
        Ok(())
    }
}

/// Whether `pid` is still running in `dir` (so it is the agent, not a reused pid).
fn orphan_alive(pid: i64, dir: &std::path::Path) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 1 || pid as u32 == std::process::id() {
        return false;
    }
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"));
    match (cwd, std::fs::canonicalize(dir)) {
        (Ok(c), Ok(d)) => c == d,
        _ => false,
    }
}
