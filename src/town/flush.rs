//! Keeping `.beads/issues.jsonl` current, debounced, off every write's path.
//!
//! A write never exports the whole store itself (that would make every create cost time
//! proportional to the store's size). One flusher per town works at a time, whichever process
//! runs it: the engine's Deacon on a thread, or a detached `gastown-tui __flush` that a CLI
//! write starts when no engine is there to do it. They take turns through a slot in the store
//! ([`claim`]): the holder waits the debounce (`[store] flush_debounce`), exports, and keeps
//! going while changes keep arriving, then frees the slot. A crashed flusher's slot goes stale
//! and the next claim takes it over.

use super::Town;
use crate::beads::Store;
use crate::Result;
use std::path::Path;
use std::time::Duration;

/// A slot older than this belongs to a flusher that died.
fn stale_after(debounce: Duration) -> Duration {
    debounce * 4 + Duration::from_secs(30)
}

/// Takes the flusher slot if the store has unflushed changes and no flusher is on duty. True
/// means: the caller must run [`run`] (here or in a process it starts).
pub fn claim(town: &Town, store: &Store) -> Result<bool> {
    store.claim_flush_slot(stale_after(town.config.store.flush_debounce))
}

/// The flusher, once its slot is claimed: waits `wait`, writes `path`, and again while changes
/// keep arriving; then frees the slot (also when a flush fails, so the next write starts a
/// fresh flusher instead of waiting for the slot to go stale).
pub fn run(store: &Store, path: &Path, wait: Duration) -> Result<()> {
    let result = (|| loop {
        std::thread::sleep(wait);
        store.flush_jsonl(path)?;
        if !store.release_flush_slot()? {
            return Ok(());
        }
    })();
    if result.is_err() {
        let _ = store.release_flush_slot();
    }
    result
}
