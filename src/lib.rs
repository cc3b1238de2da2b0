//! gastown-tui: a terminal cockpit that runs and coordinates many coding agents.
//!
//! The library holds everything; the binary (`src/main.rs`) only parses the command line and
//! calls in here. See `ARCHITECTURE.md` in the steering repository for the module map.

pub mod agent;
pub mod beads;
pub mod cli;
pub mod clock;
pub mod engine;
pub mod error;
pub mod formula;
pub mod town;
pub mod ui;

pub use error::{Error, Result};
