//! One agent session: a program in its own pseudo-terminal (portable-pty), read on a dedicated
//! thread into a terminal screen (alacritty_terminal, behind [`screen`]) and recorded as
//! asciicast v2.
//!
//! - [`session`]: spawning, input, resize, exit, kill ([`Session`], [`SessionSpec`]).
//! - [`screen`]: the emulator boundary ([`Screen`]): panic-safe parsing, answers to terminal
//!   queries, DEC line drawing, synchronized output, text capture like `tmux capture-pane`.
//! - [`runtime`]: the runtime presets (claude, codex, ..., sim) merged with town.toml.
//! - [`program`]: what the town knows of the real programs (Claude Code, Codex, Gemini CLI):
//!   their first-run dialogs and which the town answers, fatal start errors, resume, versions.
//! - [`history`]: an agent's whole history read back from its recording, past clears, with
//!   checkpoints so an old stretch is not replayed from the start.
//! - [`record`]: the recorder and reader of asciicast v2 files.
//! - [`usage`]: where each runtime records what its model calls cost, read incrementally.

pub mod history;
pub mod program;
pub mod record;
pub mod runtime;
pub mod screen;
pub mod session;
pub mod sim;
pub mod sys;
pub mod usage;

pub use record::{read_cast, Cast, CastEvent, CastHeader, EventKind, Recorder, RecorderThread};
pub use screen::{Cell, Color, MouseEncoding, MouseMode, QueryColors, Rgb, Screen};
pub use session::{Exit, Session, SessionSpec, DEFAULT_SCROLLBACK};

#[cfg(test)]
mod tests;
