//! gastown-tui: a terminal cockpit that runs and coordinates many coding agents.
//!
//! The library holds everything; the binary (`src/main.rs`) only parses the command line and
//! calls in here. `ARCHITECTURE.md` in the steering repository gives the design; this is the
//! map of the code:
//!
//! - [`beads`]: the Beads store (SQLite): beads, dependencies, ready work, convoys, mail,
//!   agents (with their state, its reason and their runtime conversation), merge requests,
//!   events, the control table other processes use to reach the engine, JSONL interop.
//! - [`town`]: the town on disk (discovery, `town.toml`, rigs, worktrees, sling).
//! - [`agent`]: one agent in its PTY ([`agent::session`], [`agent::screen`],
//!   [`agent::record`]); runtime presets ([`agent::runtime`]); what the town knows of the
//!   real programs, their first-run dialogs, fatal start errors, resume and verified versions
//!   ([`agent::program`]); the built-in `sim` agent ([`agent::sim`]).
//! - [`engine`]: the only owner of live sessions: reconcile, first contact (answer what the
//!   town owns, make the rest waiting), the Witness and GUPP, the Deacon, the Refinery, nudges.
//! - [`formula`]: formulas and molecules.
//! - [`ui`]: the cockpit (ratatui) over the engine.
//! - [`cli`]: one file per command group.

pub mod agent;
pub mod beads;
pub mod cli;
pub mod clock;
pub mod engine;
pub mod error;
pub mod formula;
pub mod server;
pub mod town;
pub mod ui;

pub use error::{Error, Result};
