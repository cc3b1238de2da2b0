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
//! - [`server`]: the engine as a background server per town: the Unix socket (a private
//!   directory, the peer's uid checked), the versioned protocol (a JSON hello, then postcard
//!   frames: commands in; snapshots, events and the shown agent's changed screen rows out),
//!   starting it detached, status and stop.
//! - [`formula`]: formulas and molecules.
//! - [`ui`]: the cockpit (ratatui), a client of the engine over the server's protocol.
//!
//! Imports go one way: `ui` -> `server` -> `engine` -> `agent`/`town`/`beads`.
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
