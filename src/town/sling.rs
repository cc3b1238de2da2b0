//! Slinging work: the one library path that a sling from the keyboard and a sling from
//! another shell both take. The store hooks the bead to a polecat; git gives the polecat its
//! worktree on `polecat/<name>/<bead>`; the engine notices the hooked polecat and starts it.

use super::{worktree, Town};
use crate::beads::{Slung, Store};
use crate::{Error, Result};
use std::path::PathBuf;

/// Metadata keys on a molecule being walked: the rig (and runtime) its steps go to.
pub const MOLECULE_RIG: &str = "molecule_rig";
pub const MOLECULE_RUNTIME: &str = "molecule_runtime";

/// The steps of an epic (its parent-child children), in step order.
pub fn molecule_steps(store: &Store, epic: &str) -> Result<Vec<crate::beads::Bead>> {
    let mut steps = Vec::new();
    for d in store.dependents(epic)? {
        if d.dep_type == crate::beads::dep::PARENT_CHILD {
            steps.push(store.get(&d.issue_id)?);
        }
    }
    // `<epic>.<n>`: numeric order, not text order (.10 after .9).
    steps.sort_by_key(|b| {
        crate::beads::ids::parent_of(&b.id)
            .map(|(_, n)| n)
            .unwrap_or(0)
    });
    Ok(steps)
}

/// For an epic with steps, the first step that is ready (Err when none is); None when `bead`
/// is not an epic with steps.
pub fn molecule_next_step(store: &Store, bead: &str) -> Result<Option<String>> {
    let b = store.get(bead)?;
    if b.issue_type != crate::beads::kind::EPIC {
        return Ok(None);
    }
    let steps = molecule_steps(store, bead)?;
    if steps.is_empty() {
        return Ok(None);
    }
    let now = store.now_ns();
    let ready = steps
        .iter()
        .find(|s| s.is_ready(now) && s.assignee.is_empty());
    match ready {
        Some(s) => Ok(Some(s.id.clone())),
        None => Err(Error::Conflict(format!(
            "no step of {bead} is ready (its steps are in progress, blocked or done)"
        ))),
    }
}

/// The branch a polecat works on for a bead.
pub fn polecat_branch(agent: &str, bead: &str) -> String {
    format!("polecat/{agent}/{bead}")
}

/// Hooks `bead` to a polecat of `rig` and prepares its worktree. If the worktree cannot be
/// made, the hook is undone and the bead is back in the ready queue.
pub fn sling(
    town: &Town,
    store: &Store,
    bead: &str,
    rig: &str,
    runtime: Option<&str>,
    actor: &str,
) -> Result<(Slung, PathBuf)> {
    let cfg = town.rig(rig)?;
    super::costs::check_daily_budget(town, store)?;
    if let Some(r) = runtime {
        if !town.config.has_runtime(r) {
            return Err(Error::bad(format!(
                "--runtime: unknown runtime '{r}' (expected one of: {})",
                town.config.runtime_names().join(", ")
            )));
        }
    }
    // A runtime whose program is missing is refused here, not discovered as a dead pane.
    let rt_name = runtime.unwrap_or(&town.config.default_runtime);
    let rt = town.config.runtime(rt_name)?;
    if let Some(program) = rt.command.first() {
        if program != crate::agent::runtime::SIM_PROGRAM {
            crate::agent::sys::resolve_program(
                program,
                &town.root,
                std::env::var_os("PATH").as_deref(),
            )
            .map_err(|e| Error::bad(format!("runtime '{rt_name}': {e}")))?;
        }
    }
    let repo = town.rig_repo(rig);
    if !repo.join(".git").exists() {
        return Err(Error::bad(format!(
            "rig '{rig}' has no clone at {} (gastown-tui rig add {rig} URL)",
            repo.display()
        )));
    }
    // A molecule (an epic with steps) is walked: its first ready step is slung now, and the
    // Deacon slings the next one each time a step is done.
    let bead = match molecule_next_step(store, bead)? {
        Some(step) => {
            let mut meta = serde_json::Map::new();
            meta.insert(MOLECULE_RIG.into(), rig.into());
            if let Some(r) = runtime {
                meta.insert(MOLECULE_RUNTIME.into(), r.into());
            }
            let upd = crate::beads::BeadUpdate {
                metadata: Some(meta),
                ..Default::default()
            };
            store.update(bead, &upd, actor)?;
            step
        }
        None => bead.to_string(),
    };
    let bead = bead.as_str();
    // From the hook to the finished checkout, the engine keeps its hands off this rig's
    // polecats (it starts none in a worktree being checked out).
    let _lock = worktree::RigLock::wait(&town.rig_dir(rig))?;
    // Free polecats whose worktree still holds unmerged work (a conflicted change, kept so no
    // commit is lost) cannot take new work: pass over them instead of hooking and unhooking.
    let landed = store.mr_landed(rig)?;
    let mut exclude = Vec::new();
    for name in store.free_polecats(rig)? {
        let dir = town.agent_dir("polecat", rig, &name);
        if dir.exists() && !worktree::reusable(&repo, &dir, &cfg.branch, &landed) {
            exclude.push(name);
        } else {
            break;
        }
    }
    let slung = store.sling(bead, rig, runtime.unwrap_or(""), actor, &exclude)?;
    let dir = town.agent_dir("polecat", rig, &slung.agent);
    let made = worktree::add_worktree(
        &repo,
        &dir,
        &format!("polecat-{}", slung.agent),
        &polecat_branch(&slung.agent, bead),
        &cfg.branch,
        &landed,
    );
    if let Err(e) = made {
        store.unhook(&slung.agent, true, actor)?;
        return Err(e);
    }
    Ok((slung, dir))
}
