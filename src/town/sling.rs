//! Slinging work: the one library path that a sling from the keyboard and a sling from
//! another shell both take. The store hooks the bead to a polecat; git gives the polecat its
//! worktree on `polecat/<name>/<bead>`; the engine notices the hooked polecat and starts it.

use super::{worktree, Town};
use crate::beads::{Slung, Store};
use crate::{Error, Result};
use std::path::PathBuf;

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
    if let Some(r) = runtime {
        if !town.config.has_runtime(r) {
            return Err(Error::bad(format!(
                "--runtime: unknown runtime '{r}' (expected one of: {})",
                town.runtime_names().join(", ")
            )));
        }
    }
    // A runtime whose program is missing is refused here, not discovered as a dead pane.
    let rt_name = runtime.unwrap_or(&town.config.default_runtime);
    let rt = crate::agent::runtime::resolve(&town.config, rt_name)?;
    if let Some(program) = rt.command.first() {
        if program != crate::agent::runtime::SIM_PROGRAM {
            crate::agent::session::resolve_program(
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
    let slung = store.sling(bead, rig, runtime.unwrap_or(""), actor)?;
    let dir = town.agent_dir("polecat", rig, &slung.agent);
    let made = worktree::add_worktree(
        &repo,
        &dir,
        &format!("polecat-{}", slung.agent),
        &polecat_branch(&slung.agent, bead),
        &cfg.branch,
    );
    if let Err(e) = made {
        store.unhook(&slung.agent, true, actor)?;
        return Err(e);
    }
    Ok((slung, dir))
}
