//! The debounced writer of `.beads/issues.jsonl`.
//!
//! A write command never exports the whole store itself (that would make every create cost
//! time proportional to the store's size). Instead, after a command that changed something,
//! the first process to find no flusher on duty takes the flusher slot in the store and starts
//! a detached `gastown-tui __flush`. That process waits the debounce (`[store] flush_debounce`),
//! exports, and keeps going while changes keep arriving, then frees the slot and exits. A
//! crashed flusher's slot goes stale and the next write starts a new one.

use super::Ctx;
use crate::beads::Store;
use crate::town::Town;
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

/// A slot older than this belongs to a flusher that died.
fn stale_after(debounce: Duration) -> Duration {
    debounce * 4 + Duration::from_secs(30)
}

/// Starts a flusher if the command left unflushed changes and none is on duty.
pub fn schedule(ctx: &Ctx) -> Result<()> {
    let debounce = ctx.town.config.store.flush_debounce;
    if !ctx.store.claim_flush_slot(stale_after(debounce))? {
        return Ok(());
    }
    let exe =
        std::env::current_exe().map_err(|e| Error::io("find", "the gastown-tui binary", e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--town")
        .arg(&ctx.town.root)
        .arg("__flush")
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

fn flush_loop(town: &Town, store: &Store, wait: Duration) -> Result<()> {
    let path = town.jsonl_path();
    loop {
        std::thread::sleep(wait);
        store.flush_jsonl(&path)?;
        if !store.release_flush_slot()? {
            return Ok(());
        }
    }
}

pub fn run(cli_town: Option<&Path>, a: FlushArgs) -> Result<()> {
    let town = Town::discover(cli_town)?;
    let store = Store::open(&town.db_path(), &town.config.prefix, clock::system())?;
    let wait = if a.now {
        Duration::ZERO
    } else {
        town.config.store.flush_debounce
    };
    let result = flush_loop(&town, &store, wait);
    if result.is_err() {
        // Free the slot so the next write starts a fresh flusher instead of waiting for it
        // to go stale.
        let _ = store.release_flush_slot();
    }
    result
}
