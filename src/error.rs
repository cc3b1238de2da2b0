//! The crate's error type. Callers branch on its variants; the binary maps it to an exit code.

use std::path::PathBuf;

/// Every failure the library reports. `exit_code` maps it onto the CLI's contract:
/// 2 for bad usage or bad input (something the user can fix by changing what they typed or
/// wrote), 1 for everything else.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that is wrong: a bad flag value, a malformed file, an unknown id. The message
    /// names where the problem is (file and line, key, or id).
    #[error("{0}")]
    BadInput(String),

    /// A referenced object does not exist.
    #[error("{kind} '{id}' not found")]
    NotFound { kind: &'static str, id: String },

    /// A claim lost the race (or came late): somebody else holds the bead.
    #[error("{id} is already claimed by {by}")]
    AlreadyClaimed { id: String, by: String },

    /// The request is well-formed but the current state refuses it.
    #[error("{0}")]
    Conflict(String),

    /// The command needs the town's engine and none is running.
    #[error("no engine is running for this town (start one: gastown-tui up)")]
    EngineNotRunning,

    /// The engine went away, or answered wrongly or not at all: what happened.
    #[error("{0}")]
    EngineLost(String),

    /// The agent has no live session (stopped, or between two sessions).
    #[error("{agent} has no running session")]
    NoSession { agent: String },

    /// The agent's program takes no more input: it exited, or its terminal closed.
    #[error("'{program}' has {how}: nothing reads its input")]
    SessionGone { program: String, how: String },

    /// The agent's program stopped reading its input, and the queue before it is full.
    #[error("'{program}' is not reading its input (input queue full)")]
    InputQueueFull { program: String },

    /// Another engine holds the town's engine lock (one engine per town).
    #[error("an engine (pid {}) is already running for this town: use that one, or stop it first", pid.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into()))]
    EngineRunning { pid: Option<u32> },

    /// A command runs in one agent's worktree while its environment names another agent (or
    /// another bead): whatever it would do, it would do for the wrong agent. The message names
    /// the worktree, its agent and what the environment says.
    #[error("{0}")]
    WrongAgent(String),

    /// A budget of `[budget]` is spent: the message names it, what was spent and how to
    /// raise it.
    #[error("{0}")]
    BudgetSpent(String),

    /// A file-system operation failed; `path` says on what.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("git: {0}")]
    Git(#[from] git2::Error),

    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// The process exit code for this error: 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::BadInput(_) | Error::NotFound { .. } => 2,
            _ => 1,
        }
    }

    /// Shorthand for a bad-input error.
    pub fn bad(msg: impl Into<String>) -> Self {
        Error::BadInput(msg.into())
    }

    /// Wraps an I/O error with what was being done and on which path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
