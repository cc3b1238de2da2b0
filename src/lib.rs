//! gastown-tui: a terminal cockpit that runs and coordinates many coding agents.
//!
//! The library holds everything; the binary (`src/main.rs`) only parses the command line and
//! calls in here. The map of the code:
//!
//! - [`beads`]: the Beads store (SQLite): beads, dependencies, ready work, convoys, mail,
//!   agents (with their state, its reason, their runtime conversation and the freeze flag),
//!   merge requests, events, what the agents spent (one row per model answer), the engine's
//!   heartbeat, JSONL interop (wisps and pinned beads kept as they came, what was imported
//!   marked so it goes out again), molecules poured in one write.
//! - [`town`]: the town on disk (discovery, `town.toml`, rigs, worktrees, sling), and what
//!   tokens cost ([`town::costs`]: prices, the daily budget's check).
//! - [`agent`]: one agent in its PTY ([`agent::session`], [`agent::screen`],
//!   [`agent::record`]); its whole history read back from the recording past the clears
//!   programs send ([`agent::history`]); runtime presets and the `[runtimes.NAME]` types
//!   ([`agent::runtime`]); the program, process tree, what a session left running (found by
//!   its `GT_SESSION` mark) and priority ([`agent::sys`]); what the town knows of the
//!   real programs, their first-run dialogs, fatal start errors, resume and verified versions
//!   ([`agent::program`]); where each runtime records its usage, read incrementally
//!   ([`agent::usage`]); the built-in `sim` agent ([`agent::sim`]).
//! - [`engine`]: the only owner of live sessions: reconcile, first contact (answer what the
//!   town owns, make the rest waiting), the Witness and GUPP, the Deacon, the Refinery (a
//!   bead's branch lands as one tested commit by default, recorded before the target moves, and
//!   merged branches are told from those records), nudges,
//!   the meter and the budgets ([`engine::meter`]), freeze/thaw, notifications
//!   ([`engine::notify`], from the store's event trail).
//! - [`server`]: the engine as a background server per town: the Unix socket (a private
//!   directory, the peer's uid checked), the versioned protocol (a JSON hello, then postcard
//!   frames: commands in; snapshots, events and the shown agent's changed screen rows out),
//!   starting it detached, status and stop.
//! - [`formula`]: formulas and molecules.
//! - [`ui`]: the cockpit (ratatui), a client of the engine over the server's protocol: input
//!   ([`ui::app`]) and drawing ([`ui::view`], [`ui::panels`], [`ui::dialogs`]) share only the
//!   layout ([`ui::layout`]) and the text helpers ([`ui::text`]).
//!
//! - [`cli`]: one file per command group.
//!
//! Imports go one way: `ui` -> `server` -> `engine` -> `town` -> `agent` -> `beads`
//! (`formula` and `cli` above what they use), and no two files import each other, directly or
//! round a circle.
//!
//! # How data flows
//!
//! ```text
//!  agent process ──PTY──> reader ──> parser ──> screen (alacritty) ──> recorder ──> .cast
//!        ^          (threads per agent, in the engine process; bounded queues between)
//!        │ keys, resizes                       │ cells of changed rows
//!  ┌─────┴──────────── engine process (`gastown-tui up`) ─────┴──────────────┐
//!  │ server: one task per client ── sessions map (keys, sizes, screens)      │
//!  │    │ commands (sling, nudge, kill, diff...)        ^ snapshot, events   │
//!  │    v                                               │                    │
//!  │ engine loop: tick every 100 ms (woken sessions, reconcile, patrols...) ─┘
//!  │    │ reads and writes                                                   │
//!  │    v                                                                    │
//!  │ Beads store (SQLite, WAL) <── CLI processes (bead, sling, done, ...)    │
//!  └─────────────────────────────────────────────────────────────────────────┘
//!        ^ Unix socket (private dir, uid checked, versioned protocol)
//!  cockpits / `attach` (clients: any number, each with its own size and view)
//! ```
//!
//! - **Output**: each agent's reader thread reads its PTY while its parser thread feeds the
//!   previous chunk into that agent's screen (taking a process-wide parse turn, never while
//!   waiting for a screen lock) and hands it to the recorder thread. The queues are bounded: a
//!   slow disk makes the parser wait, then the reader, then the program, never memory grow.
//!   The screen keeps its newest history as text; a view scrolled back further is replayed
//!   from the recording ([`agent::history`]). Nothing else copies output: a client gets only
//!   the agent it shows, as the rows that changed since its last update, at most one update
//!   per 16 ms.
//! - **What an agent costs**: an agent nobody shows costs its parsing and recording, and
//!   nothing per tick or per frame. After each chunk its session queues its name for the
//!   engine's next tick (once, an atomic swap when queued already) and moves its own change
//!   counter, which only the client tasks showing it wait on. A tick looks only at the
//!   sessions that printed, ended or have a look due ([`engine`]). The server reads only the
//!   rows whose damage stamp moved since its last look ([`agent::Screen::row_stamps`]), and
//!   the cockpit converts only the rows an update changed ([`ui::term::Pane`]); the terminal
//!   gets only the cells that changed (ratatui's diff).
//! - **Input**: keys typed in a drill-down and terminal sizes go from the client's task
//!   straight to the session (its PTY writer, its resize), never through the engine's loop, so
//!   git or a busy store cannot hold them up.
//! - **Commands**: everything else a cockpit asks (`Command`) goes to the engine's loop, which
//!   owns the store connection and the sessions' lifecycle; long git work (diffs, the
//!   Refinery's merges and tests) runs as jobs that report back. CLI processes write the store
//!   directly (beads, sling, `done`) or send the same `Command`s over the socket (nudge, kill,
//!   restart, handoff, capture), answered as soon as the loop gets to them.
//! - **Identity**: a CLI command run inside an agent's worktree acts for that agent, and one
//!   whose environment names another agent or bead is refused (`cli`); the engine names its own
//!   binary by its absolute path in prompts, and everything a session started ends with it.
//! - **State**: the store is the truth. The engine publishes a `Snapshot` (agents, convoys,
//!   merge queue, feed) after each change; every client gets it. An engine that dies loses
//!   nothing the store holds; the next one restarts every hooked agent.

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

/// The test kit the integration tests and benchmarks use too (one file, see its docs).
#[cfg(test)]
#[path = "../tests/common/kit.rs"]
pub(crate) mod test_kit;
