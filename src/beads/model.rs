//! The plain data the store hands out: beads, dependencies, comments, events, agents, merge
//! requests. Statuses and types are strings so values written by other Beads versions survive
//! a round trip; the constants below are the ones this program writes and understands.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod status {
    pub const OPEN: &str = "open";
    pub const IN_PROGRESS: &str = "in_progress";
    pub const BLOCKED: &str = "blocked";
    pub const DEFERRED: &str = "deferred";
    pub const HOOKED: &str = "hooked";
    pub const CLOSED: &str = "closed";
    /// The statuses a user may set.
    pub const ALL: &[&str] = &[OPEN, IN_PROGRESS, BLOCKED, DEFERRED, HOOKED, CLOSED];
    /// A blocker in one of these statuses still holds its dependents back.
    pub const ACTIVE: &[&str] = &[OPEN, IN_PROGRESS, BLOCKED, DEFERRED, HOOKED];

    pub fn is_active(s: &str) -> bool {
        ACTIVE.contains(&s)
    }
}

/// Priorities: 0 (critical) to 4 (backlog), 2 when not given. The one definition every check
/// (the CLI's flags, a write, an imported record) uses.
pub mod priority {
    pub const DEFAULT: i64 = 2;
    /// What the range means, for messages.
    pub const RANGE: &str = "0 = critical ... 4 = backlog";

    /// Whether `p` is a priority.
    pub fn valid(p: i64) -> bool {
        (0..=4).contains(&p)
    }

    /// `0`..`4`, or `P0`..`P4` as `bd` writes them.
    pub fn parse(s: &str) -> Option<i64> {
        let digits = s.strip_prefix(['P', 'p']).unwrap_or(s);
        digits.parse::<i64>().ok().filter(|p| valid(*p))
    }
}

pub mod kind {
    pub const TASK: &str = "task";
    pub const BUG: &str = "bug";
    pub const FEATURE: &str = "feature";
    pub const EPIC: &str = "epic";
    pub const CHORE: &str = "chore";
    pub const MESSAGE: &str = "message";
    pub const MERGE_REQUEST: &str = "merge-request";
    pub const MOLECULE: &str = "molecule";
    pub const CONVOY: &str = "convoy";
    pub const AGENT: &str = "agent";
    /// The types a user may give.
    pub const ALL: &[&str] = &[
        TASK,
        BUG,
        FEATURE,
        EPIC,
        CHORE,
        MESSAGE,
        MERGE_REQUEST,
        MOLECULE,
        CONVOY,
        AGENT,
    ];
    /// Only these can be ready work; every other type (known or foreign) never is.
    pub const WORK: &[&str] = &[TASK, BUG, FEATURE, EPIC, CHORE];
}

pub mod dep {
    pub const BLOCKS: &str = "blocks";
    pub const PARENT_CHILD: &str = "parent-child";
    pub const RELATED: &str = "related";
    pub const DISCOVERED_FROM: &str = "discovered-from";
    pub const TRACKS: &str = "tracks";
    pub const DUPLICATES: &str = "duplicates";
    pub const SUPERSEDES: &str = "supersedes";
    pub const REPLIES_TO: &str = "replies-to";
    /// The types a user may give.
    pub const ALL: &[&str] = &[
        BLOCKS,
        PARENT_CHILD,
        RELATED,
        DISCOVERED_FROM,
        TRACKS,
        DUPLICATES,
        SUPERSEDES,
        REPLIES_TO,
    ];

    /// Types that hold the dependent back from being ready.
    pub fn is_blocking(t: &str) -> bool {
        t == BLOCKS || t == PARENT_CHILD
    }
}

/// One bead (issue). `labels` are always loaded; `dependencies` and `comments` only where the
/// caller asked for the full record (show, export).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bead {
    pub id: String,
    pub title: String,
    pub description: String,
    pub design: String,
    pub acceptance_criteria: String,
    pub notes: String,
    pub status: String,
    pub priority: i64,
    pub issue_type: String,
    pub assignee: String,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
    pub close_reason: String,
    pub defer_until: Option<String>,
    /// A wisp: never ready; exported only when it came in from a JSONL file.
    pub ephemeral: bool,
    /// A context marker (bd's `pinned`), not work: never ready.
    pub pinned: bool,
    pub metadata: Option<Value>,
    /// Fields from an imported record that this program does not know; written back on export.
    pub extra: Map<String, Value>,
    pub labels: Vec<String>,
    pub dependencies: Vec<Dependency>,
    pub comments: Vec<Comment>,
    /// Derived: a blocking dependency currently holds this bead back.
    pub blocked: bool,
}

impl Bead {
    /// Whether this bead, as loaded, is ready work at `now_ns`: the rule of [`Store::ready`]
    /// (open, not blocked, not a wisp, not pinned, a work type, not deferred past now) for
    /// code that already holds the bead, such as a convoy's or a molecule's members.
    ///
    /// [`Store::ready`]: super::Store::ready
    pub fn is_ready(&self, now_ns: i64) -> bool {
        let deferred = self
            .defer_until
            .as_deref()
            .and_then(|d| super::parse_instant(d, "defer_until").ok())
            .is_some_and(|t| t > now_ns);
        self.status == status::OPEN
            && !self.blocked
            && !self.ephemeral
            && !self.pinned
            && kind::WORK.contains(&self.issue_type.as_str())
            && !deferred
    }

    /// A string value from the bead's metadata object, if it has one.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(key)?.as_str()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dependency {
    pub issue_id: String,
    pub depends_on_id: String,
    #[serde(rename = "type")]
    pub dep_type: String,
    pub created_at: String,
    pub created_by: String,
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comment {
    pub id: i64,
    pub issue_id: String,
    pub author: String,
    pub text: String,
    pub created_at: String,
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

/// What `create` takes. Only `title` is required.
#[derive(Debug, Clone, Default)]
pub struct NewBead {
    pub title: String,
    pub description: String,
    pub design: String,
    pub acceptance_criteria: String,
    pub notes: String,
    /// Defaults to `task`.
    pub issue_type: Option<String>,
    /// Defaults to 2.
    pub priority: Option<i64>,
    pub assignee: String,
    pub labels: Vec<String>,
    /// Creates `<parent>.<n>` with a parent-child dependency.
    pub parent: Option<String>,
    /// RFC 3339 instant before which the bead is not ready.
    pub defer_until: Option<String>,
    /// A wisp: stored, never exported.
    pub ephemeral: bool,
    pub metadata: Option<Value>,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct BeadUpdate {
    pub title: Option<String>,
    pub description: Option<String>,
    pub design: Option<String>,
    pub acceptance_criteria: Option<String>,
    pub notes: Option<String>,
    pub status: Option<String>,
    pub priority: Option<i64>,
    pub issue_type: Option<String>,
    pub assignee: Option<String>,
    /// `Some(None)` clears the deferral.
    pub defer_until: Option<Option<String>>,
    pub add_labels: Vec<String>,
    pub remove_labels: Vec<String>,
    /// Keys merged into the metadata object (a JSON null value removes the key).
    pub metadata: Option<Map<String, Value>>,
}

impl BeadUpdate {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.design.is_none()
            && self.acceptance_criteria.is_none()
            && self.notes.is_none()
            && self.status.is_none()
            && self.priority.is_none()
            && self.issue_type.is_none()
            && self.assignee.is_none()
            && self.defer_until.is_none()
            && self.add_labels.is_empty()
            && self.remove_labels.is_empty()
            && self.metadata.is_none()
    }
}

/// Filters for `list`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<String>,
    pub issue_type: Option<String>,
    pub assignee: Option<String>,
    pub label: Option<String>,
    /// Include wisps (ephemeral beads). Messages are listed only when asked for by type.
    pub include_ephemeral: bool,
    pub limit: Option<usize>,
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    /// What the event is about: a bead id, an agent name, or `mr-<n>`.
    pub subject: String,
    pub kind: String,
    pub actor: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub detail: Option<String>,
    pub created_at: String,
}

/// A persistent agent identity. Sessions come and go; this row stays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub name: String,
    pub role: String,
    pub rig: String,
    pub runtime: String,
    pub state: String,
    pub hooked_bead: Option<String>,
    pub session: Option<String>,
    pub pid: Option<i64>,
    pub last_activity: Option<String>,
    /// Restarts since the current bead was hooked.
    pub restarts: i64,
    pub created_at: String,
    pub updated_at: String,
    /// The last state the agent reported itself (`agent-event`), and when.
    pub reported_state: Option<String>,
    pub reported_at: Option<String>,
    /// Why the agent is in its state ("needs sign-in", the reason it died, ...).
    pub state_reason: String,
    /// The runtime's own conversation id, and the bead it was started for: a restart on the
    /// same bead resumes it.
    pub conversation: Option<String>,
    pub conversation_bead: Option<String>,
    /// Frozen by the overseer or a budget: its processes are stopped in place (SIGSTOP) until
    /// thawed, across engine restarts.
    #[serde(default)]
    pub frozen: bool,
}

/// A merge request in a rig's queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeRequest {
    pub id: i64,
    pub rig: String,
    pub branch: String,
    pub bead_id: Option<String>,
    pub submitter: String,
    pub state: String,
    pub attempts: i64,
    pub reason: String,
    pub test_log_tail: String,
    pub created_at: String,
    pub updated_at: String,
    /// How it was merged (`squash`, `merge`, `rebase`); empty until a merge is tried.
    #[serde(default)]
    pub style: String,
    /// The branch commit the merge was made from.
    #[serde(default)]
    pub source_tip: Option<String>,
    /// The commit the merge produced: the one under test while `testing`, the one the target
    /// moved to once `merged`.
    #[serde(default)]
    pub merge_commit: Option<String>,
}

pub mod mr_state {
    pub const QUEUED: &str = "queued";
    pub const TESTING: &str = "testing";
    pub const MERGED: &str = "merged";
    pub const REJECTED: &str = "rejected";
    pub const CONFLICT: &str = "conflict";
    pub const ALL: &[&str] = &[QUEUED, TESTING, MERGED, REJECTED, CONFLICT];
}

/// A convoy with its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Convoy {
    pub id: String,
    pub name: String,
    pub status: String,
    pub closed: usize,
    pub total: usize,
    pub auto_dispatch: Option<String>,
    pub tracked: Vec<String>,
}

/// A mail message (stored as a bead of type `message`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mail {
    pub id: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub read: bool,
    pub created_at: String,
}
