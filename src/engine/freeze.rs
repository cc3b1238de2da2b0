//! Freeze and thaw, the overseer's emergency stop: the store's `frozen` flag is the truth
//! (set by `gastown-tui freeze`, the cockpit or a budget, from any process), and the engine
//! brings the live sessions in line with it: SIGSTOP to a frozen agent's processes, SIGCONT
//! when thawed. A frozen agent is left alone by every patrol (never stalled, dead, nudged or
//! reaped); an engine that starts finds the flag and starts the agent frozen.

use super::{witness::Watch, Engine};
use crate::beads::agent_state;
use crate::Result;

/// Why a frozen agent is in its state.
pub const FROZEN_REASON: &str = "frozen: its processes are stopped until thawed";

impl Engine {
    /// Stops or resumes each live session whose agent's flag changed. True when one did.
    pub(crate) fn apply_frozen(&mut self) -> Result<bool> {
        let mut changed = false;
        for a in self.store.agents()? {
            let Some(live) = self.live.get_mut(&a.name) else {
                continue;
            };
            if live.frozen == a.frozen || live.stopping.is_some() {
                continue;
            }
            if let Err(e) = live.session.freeze(a.frozen) {
                tracing::warn!(agent = %a.name, "cannot freeze or thaw: {e}");
                continue;
            }
            live.frozen = a.frozen;
            changed = true;
            if a.frozen {
                live.watch.force(agent_state::FROZEN);
                self.store.agent_set_state(
                    &a.name,
                    agent_state::FROZEN,
                    FROZEN_REASON,
                    "engine",
                )?;
            } else {
                // Patrols start over: the time it was stopped is neither silence nor idling.
                live.watch = Watch::started();
                self.store
                    .agent_set_state(&a.name, agent_state::WORKING, "thawed", "engine")?;
            }
        }
        Ok(changed)
    }
}
