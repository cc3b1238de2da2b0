//! `gastown-tui __flush`: the detached writer of `.beads/issues.jsonl` that a CLI write
//! starts (the flusher itself, and how it shares the work with the engine, is
//! [`crate::town::flush`]).

use super::Ctx;
use crate::beads::Store;
use crate::town::{flush, Town};
use crate::{clock, Error, Result};
use clap::Args;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct FlushArgs {
    /// Flush right away instead of waiting for the debounce.
    #[arg(long)]
    pub now: bool,
}

/// Starts a flusher if the command left unflushed changes and none is on duty.
pub fn schedule(ctx: &Ctx) -> Result<()> {
    if !flush::claim(&ctx.town, &ctx.store)? {
        return Ok(());
    }
    let exe =
        std::env::current_exe().map_err(|e| Error::io("find", "the gastown-tui binary", e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--town")
        .arg(&ctx.town.root)
        .arg("__flush")
        // The town's flusher, not part of the agent session whose command may have started
        // it (a session's leftovers are stopped when it ends).
        .env_remove(crate::agent::sys::SESSION_MARK)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(unix)]
    {
        // Its own process group: a Ctrl-C meant for the command does not kill the flusher.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    cmd.spawn()
        .map_err(|e| Error::io("start", "the JSONL flusher", e))?;
    Ok(())
}

pub fn run(cli_town: Option<&Path>, a: FlushArgs) -> Result<()> {
    let town = Town::discover(cli_town)?;
    let store = Store::open(&town.db_path(), &town.config.prefix, clock::system())?;
    let wait = if a.now {
        Duration::ZERO
    } else {
        town.config.store.flush_debounce
    };
    flush::run(&store, &town.jsonl_path(), wait)
}
