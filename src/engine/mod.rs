//! The engine: the only owner of live agent sessions.
//!
//! `Command`s come in (from cockpits and CLI processes alike, through the server's channel);
//! `Event`s and a `Snapshot` go out. Every `tick` it records a heartbeat, notices sessions that
//! ended, delivers pending prompts and Enters, and reconciles the store with what runs: an
//! agent with work on its hook and no session gets one. All durable state is in the store
//! first; a session is cattle.
//!
//! A tick looks only at the sessions that asked for it (`attention`): those that printed or
//! ended since the last tick and those with a look due now (an Enter to send, a key of a
//! dialog's answer, a dialog to look at again). A hundred idle agents cost a tick nothing; the
//! patrols walk every agent at their own pace: the Witness and the Deacon, the meter (what each
//! session's runtime recorded it spent, every 2 s, then the budgets: [`meter`]), and the
//! notifier (the store's new events, every 500 ms: [`notify`]). Freeze and thaw follow the
//! store's flag at each reconcile.
//!
//! The loop runs on a tokio runtime (`run`); store and PTY calls are short and run through
//! `block_in_place`. The server ([`crate::server`]) runs it and carries its snapshots, events
//! and screens to the cockpits.

mod attention;
mod contact;
mod deacon;
mod freeze;
pub mod meter;
pub mod notify;
pub mod nudge;
mod refinery;
mod witness;

pub use meter::Costs;

use crate::agent::runtime;
use crate::agent::screen::QueryColors;
use crate::agent::{Session, SessionSpec};
use crate::beads::{agent_state, Agent, Convoy, MergeRequest, Store};
use crate::clock;
use crate::town::worktree::RigLock;
use crate::town::{PromptMode, Town};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};

/// How often the engine looks at the store and its sessions.
pub const TICK: Duration = Duration::from_millis(100);
/// How often the heartbeat is written.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Reconcile at least this often even when the store did not change.
const RECONCILE_EVERY: Duration = Duration::from_secs(2);
/// How often the Refinery looks at its queues and jobs.
const REFINERY_EVERY: Duration = Duration::from_millis(250);
/// How long a stopping engine waits for its agents (all told at once) before it goes on.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The terminal size agents start at when no pane has told the engine its size.
pub const DEFAULT_PANE: (u16, u16) = (40, 120);

/// What a cockpit asks of the engine (through the server, see [`crate::server`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Type `text` into the agent's prompt and submit it.
    Nudge { agent: String, text: String },
    /// Raw input for the agent's terminal (keys typed in the drill-down view).
    Input { agent: String, bytes: Vec<u8> },
    /// Stop the agent's session; it stays stopped until restarted.
    Kill { agent: String },
    /// Stop and start the agent's session (counted as a restart).
    Restart { agent: String },
    /// End the session cleanly and start a fresh one on the same hook.
    Handoff { agent: String },
    /// Sling a bead to a rig (the same library path as `gastown-tui sling`).
    Sling {
        bead: String,
        rig: String,
        runtime: Option<String>,
    },
    /// The agent's worktree diff against its rig's branch (the answer's text).
    Diff { agent: String },
    /// The agent's screen as text (the answer's), with its history when `scrollback`; from
    /// its newest recording when it has no session.
    Capture { agent: String, scrollback: bool },
    /// Freeze (stop its processes in place) or thaw one agent, or every agent when None.
    Freeze { agent: Option<String>, frozen: bool },
}

impl Command {
    /// The command's name, as the CLI spells it.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Nudge { .. } => "nudge",
            Command::Input { .. } => "input",
            Command::Kill { .. } => "kill",
            Command::Restart { .. } => "restart",
            Command::Handoff { .. } => "handoff",
            Command::Sling { .. } => "sling",
            Command::Diff { .. } => "diff",
            Command::Capture { .. } => "capture",
            Command::Freeze { frozen: true, .. } => "freeze",
            Command::Freeze { frozen: false, .. } => "thaw",
        }
    }

    /// What the command is about (an agent, or the bead being slung), for error reports.
    pub fn subject(&self) -> &str {
        match self {
            Command::Nudge { agent, .. }
            | Command::Input { agent, .. }
            | Command::Kill { agent }
            | Command::Restart { agent }
            | Command::Handoff { agent }
            | Command::Diff { agent }
            | Command::Capture { agent, .. } => agent,
            Command::Sling { bead, .. } => bead,
            Command::Freeze { agent, .. } => agent.as_deref().unwrap_or("every agent"),
        }
    }
}

/// Why the engine refused or failed a command, as it goes back to whoever asked (over the
/// socket too): the cases a caller branches on keep their shape; the rest is the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    NoSession {
        agent: String,
    },
    SessionGone {
        program: String,
        how: String,
    },
    InputQueueFull {
        program: String,
    },
    AlreadyClaimed {
        id: String,
        by: String,
    },
    /// Bad input (an unknown agent, a bead that does not exist, ...): exit code 2.
    BadInput(String),
    Other(String),
}

impl From<&Error> for Refusal {
    fn from(e: &Error) -> Refusal {
        match e {
            Error::NoSession { agent } => Refusal::NoSession {
                agent: agent.clone(),
            },
            Error::SessionGone { program, how } => Refusal::SessionGone {
                program: program.clone(),
                how: how.clone(),
            },
            Error::InputQueueFull { program } => Refusal::InputQueueFull {
                program: program.clone(),
            },
            Error::AlreadyClaimed { id, by } => Refusal::AlreadyClaimed {
                id: id.clone(),
                by: by.clone(),
            },
            e if e.exit_code() == 2 => Refusal::BadInput(e.to_string()),
            e => Refusal::Other(e.to_string()),
        }
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        match r {
            Refusal::NoSession { agent } => Error::NoSession { agent },
            Refusal::SessionGone { program, how } => Error::SessionGone { program, how },
            Refusal::InputQueueFull { program } => Error::InputQueueFull { program },
            Refusal::AlreadyClaimed { id, by } => Error::AlreadyClaimed { id, by },
            Refusal::BadInput(m) => Error::BadInput(m),
            Refusal::Other(m) => Error::Conflict(m),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", Error::from(self.clone()))
    }
}

/// Where the answer to one command goes.
pub type Reply = tokio::sync::oneshot::Sender<std::result::Result<Option<String>, Refusal>>;

/// What the engine's loop takes: a cockpit's command with where its answer goes, or the
/// terminal sizes the server worked out from its clients.
#[derive(Debug)]
pub enum Request {
    /// The answer is `Ok(Some(text))` for a diff, `Ok(None)` for everything else.
    Command { cmd: Command, reply: Option<Reply> },
    /// Every session gets `pane` (rows, cols), except the agents named in `agents`, which get
    /// their own (a cockpit shows them full screen).
    Sizes {
        pane: (u16, u16),
        agents: BTreeMap<String, (u16, u16)>,
    },
    /// The colours sessions report to programs that ask (the cockpit's theme).
    Colors(QueryColors),
}

/// What happened, for the cockpits' notices and for tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Started {
        agent: String,
        session: String,
        pid: Option<u32>,
    },
    Exited {
        agent: String,
        how: String,
    },
    Nudged {
        agent: String,
    },
    Failed {
        agent: String,
        message: String,
    },
    Slung {
        bead: String,
        agent: String,
    },
    /// Something needs the overseer (`[notify]`): cockpits ring when `bell`.
    Attention {
        kind: String,
        agent: String,
        text: String,
        bell: bool,
    },
}

/// One agent as the cockpit shows it: its identity row and its live session, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    /// The agent as the store has it (its session and pid are the live session's while one
    /// runs).
    pub agent: Agent,
    /// Whether this engine runs a session for it now.
    pub running: bool,
    /// The title of the bead on its hook.
    pub bead_title: Option<String>,
}

/// A ready bead, as the sling dialog lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeadBrief {
    pub id: String,
    pub title: String,
    pub priority: i64,
    pub issue_type: String,
}

/// The state the cockpit renders (plain data, rebuilt when the store changes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub town: String,
    pub agents: Vec<AgentView>,
    pub convoys: Vec<Convoy>,
    /// Open requests first (queue order), then the most recent finished ones.
    pub merge_requests: Vec<MergeRequest>,
    /// The newest events, oldest first.
    pub feed: Vec<crate::beads::Event>,
    /// Ready work, most urgent first (at most 200).
    pub ready: Vec<BeadBrief>,
    pub rigs: Vec<String>,
    pub runtimes: Vec<String>,
    /// Runtimes whose program is not on the engine's PATH (they cannot start).
    pub runtimes_missing: Vec<String>,
    pub default_runtime: String,
    /// Unread mail for the overseer.
    pub inbox_unread: usize,
    /// When the patrols (the Deacon) last ran, as unix nanoseconds.
    pub patrol_heartbeat_ns: Option<i64>,
    /// What the agents spent (today's, per agent and in all; per convoy) and the budget.
    pub costs: Costs,
}

/// How many feed events a snapshot carries.
const FEED_LEN: usize = 200;
/// How many finished merge requests a snapshot carries.
const MQ_HISTORY: usize = 20;

/// How a live session is being ended, when the engine ended it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stopping {
    Kill,
    Restart,
    Handoff,
}

struct Live {
    session: Arc<Session>,
    /// The session's mark (`GT_SESSION`): what it leaves behind is found by it.
    mark: String,
    /// The real program the session runs, when the town knows it (first contact, resume).
    program: Option<&'static crate::agent::program::Program>,
    /// Whether the runtime's command asked the program to skip its permission questions.
    bypass: bool,
    /// The directory the session runs in: the agent's own, made by the town.
    cwd: PathBuf,
    /// First contact: the dialog on screen, what the last look saw, keys still to type.
    contact: contact::Contact,
    /// Where to look for the conversation the program names itself (Codex's home), and since
    /// when; None once found or when the engine names it.
    discover: Option<(PathBuf, std::time::SystemTime)>,
    /// The bead on the agent's hook when the session started (its `GT_BEAD`).
    bead: Option<String>,
    /// Typed once the runtime's ready pattern shows (prompt mode type-after-ready).
    pending_prompt: Option<String>,
    patterns: witness::Patterns,
    watch: witness::Watch,
    /// An Enter to send at this instant, finishing a nudge (and answering who asked, if anyone
    /// waits).
    pending_enter: Option<(Instant, Option<Reply>)>,
    stopping: Option<Stopping>,
    /// The runtime's records of what it spent, and who spends it.
    meter: meter::Sources,
    /// Its processes are stopped (the agent's `frozen` flag, applied).
    frozen: bool,
}

/// Live sessions, read by the server to send screens (the engine alone adds and removes).
pub type Sessions = Arc<RwLock<HashMap<String, Arc<Session>>>>;

/// The engine's live sessions: what it keeps for each one, and the map of their sessions it
/// shares with the server, kept in step here and only here (reads go through `Deref`).
struct LiveSet {
    by_name: HashMap<String, Live>,
    shared: Sessions,
}

impl LiveSet {
    fn new() -> LiveSet {
        LiveSet {
            by_name: HashMap::new(),
            shared: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    fn insert(&mut self, name: String, live: Live) {
        if let Ok(mut map) = self.shared.write() {
            map.insert(name.clone(), live.session.clone());
        }
        self.by_name.insert(name, live);
    }

    fn remove(&mut self, name: &str) -> Option<Live> {
        if let Ok(mut map) = self.shared.write() {
            map.remove(name);
        }
        self.by_name.remove(name)
    }

    /// Every live session, taken out.
    fn drain(&mut self) -> Vec<(String, Live)> {
        if let Ok(mut map) = self.shared.write() {
            map.clear();
        }
        self.by_name.drain().collect()
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut Live> {
        self.by_name.get_mut(name)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Live)> {
        self.by_name.iter_mut()
    }
}

impl std::ops::Deref for LiveSet {
    type Target = HashMap<String, Live>;
    fn deref(&self) -> &Self::Target {
        &self.by_name
    }
}

/// The town's engine lock: an exclusive `flock` on `<town>/.beads/engine.lock`, held for the
/// engine's life (the kernel drops it when the process dies, kill -9 included). The file holds
/// the holder's pid, so a second engine can say who is running.
#[derive(Debug)]
pub struct EngineLock {
    _file: std::fs::File,
}

impl EngineLock {
    /// Takes the lock, or fails with `Error::EngineRunning` naming the holder.
    pub fn take(town: &Town) -> Result<EngineLock> {
        use std::io::{Read, Seek, Write};
        let path = town.beads_dir().join("engine.lock");
        let mut file = match crate::agent::sys::flock(&path, false)? {
            crate::agent::sys::Flock::Had(file) => file,
            crate::agent::sys::Flock::Busy(mut file) => {
                // The holder writes its pid right after taking the lock: until then the file
                // may hold an earlier engine's (gone) pid or nothing. Give it a moment.
                let mut pid = None;
                for _ in 0..50 {
                    let mut text = String::new();
                    let _ = file.rewind();
                    let _ = file.read_to_string(&mut text);
                    pid = text.trim().parse::<u32>().ok();
                    if pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists()) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                return Err(Error::EngineRunning { pid });
            }
        };
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(|e| Error::io("write", &path, e))?;
        Ok(EngineLock { _file: file })
    }
}

pub struct Engine {
    /// Held for the engine's life: one engine per town.
    _lock: EngineLock,
    town: Town,
    store: Store,
    exe: PathBuf,
    live: LiveSet,
    pane: (u16, u16),
    /// Agents shown full screen by a cockpit, at that cockpit's size.
    own_size: BTreeMap<String, (u16, u16)>,
    /// What sessions report when a program asks for the terminal's colours (the theme of the
    /// cockpit used most recently; dark until one says).
    colors: QueryColors,
    last_version: i64,
    last_reconcile: Option<Instant>,
    last_beat: Option<Instant>,
    events: broadcast::Sender<Event>,
    snapshot: watch::Sender<Snapshot>,
    /// Which sessions the next tick looks at.
    attention: attention::Attention,
    last_witness: Option<Instant>,
    last_deacon: Option<Instant>,
    /// Sessions of an earlier engine are looked for once, at the first tick.
    orphans_checked: bool,
    /// The JSONL export running on its own thread, if one is.
    flushing: Option<std::thread::JoinHandle<()>>,
    /// Polecats whose kept worktree was already reported (once is enough).
    kept_reported: std::collections::HashSet<String>,
    /// The merge job running for each rig (one at a time per rig).
    jobs: HashMap<String, refinery::Job>,
    last_refinery: Option<Instant>,
    last_meter: Option<Instant>,
    /// The spending the snapshot shows, for the UTC day starting at `costs_day`.
    costs: Costs,
    costs_day: i64,
    /// Records came in outside a meter round (a session's last read): recompute.
    costs_stale: bool,
    /// The daily budget reached was reported for this (day, limit).
    daily_reported: Option<(i64, u64)>,
    bead_reported: meter::Reported,
    notifier: notify::Notifier,
    last_notify: Option<Instant>,
    /// town.toml as last loaded (its modification time), to pick up edits.
    config_mtime: Option<std::time::SystemTime>,
    /// The last failed round's message and when it was told (see `tick_failed`).
    last_tick_error: Option<(String, Instant)>,
}

/// When `town`'s town.toml was last changed.
fn config_mtime(town: &Town) -> Option<std::time::SystemTime> {
    std::fs::metadata(town.root.join(crate::town::CONFIG_FILE))
        .and_then(|m| m.modified())
        .ok()
}

/// The session id of a new session: its start time.
fn session_id() -> String {
    chrono::Utc::now().format("%Y%m%d-%H%M%S%.3f").to_string()
}

impl Engine {
    /// An engine for `town`. Fails with `Error::EngineRunning` when another engine runs for
    /// the town.
    pub fn new(town: Town) -> Result<Engine> {
        let lock = EngineLock::take(&town)?;
        let store = Store::open(&town.db_path(), &town.config.prefix, clock::system())?;
        let exe =
            std::env::current_exe().map_err(|e| Error::io("find", "the gastown-tui binary", e))?;
        let config_mtime = config_mtime(&town);
        let (events, _) = broadcast::channel(1024);
        let (snapshot, _) = watch::channel(Snapshot::default());
        Ok(Engine {
            _lock: lock,
            town,
            store,
            exe,
            live: LiveSet::new(),
            pane: DEFAULT_PANE,
            own_size: BTreeMap::new(),
            colors: QueryColors::default(),
            last_version: -1,
            last_reconcile: None,
            last_beat: None,
            events,
            snapshot,
            attention: attention::Attention::default(),
            last_witness: None,
            last_deacon: None,
            orphans_checked: false,
            flushing: None,
            kept_reported: Default::default(),
            jobs: HashMap::new(),
            last_refinery: None,
            last_meter: None,
            costs: Costs::default(),
            costs_day: 0,
            costs_stale: true,
            daily_reported: None,
            bead_reported: Default::default(),
            notifier: Default::default(),
            last_notify: None,
            config_mtime,
            last_tick_error: None,
        })
    }

    pub fn sessions(&self) -> Sessions {
        self.live.shared.clone()
    }

    /// The sender of the engine's events (whoever holds it can subscribe later).
    pub fn events(&self) -> broadcast::Sender<Event> {
        self.events.clone()
    }

    pub fn snapshots(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.subscribe()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn emit(&self, e: Event) {
        tracing::info!(?e, "engine event");
        let _ = self.events.send(e);
    }

    /// One round of work. Cheap when nothing changed: a heartbeat at most once a second, a
    /// `data_version` read, and a look only at the sessions that printed, ended or have a look
    /// due.
    pub fn tick(&mut self) -> Result<()> {
        let now = Instant::now();
        if self.last_beat.is_none_or(|t| now - t >= HEARTBEAT) {
            self.store.engine_heartbeat(std::process::id())?;
            self.last_beat = Some(now);
        }
        // Sessions an earlier engine left behind are stopped before anything is started.
        if !self.orphans_checked {
            self.orphans_checked = true;
            self.kill_orphans()?;
            self.store.mr_requeue_testing("refinery")?;
        }
        let mut looks = self.attention.due(now);
        looks.retain(|n| self.live.contains_key(n));
        let ended = self.reap(&looks)?;
        let contacted = self.first_contact(&looks)?;
        self.deliver_pending(&looks)?;
        // `data_version` moves only for other processes' commits; the engine's own writes
        // (launches, exits) publish by themselves.
        let version = self.store.data_version()?;
        let store_changed = version != self.last_version;
        let mut launched = false;
        if store_changed
            || self
                .last_reconcile
                .is_none_or(|t| now - t >= RECONCILE_EVERY)
        {
            self.last_version = version;
            self.last_reconcile = Some(now);
            launched = self.reconcile()?;
        }

        let mut patrolled = false;
        if self
            .last_witness
            .is_none_or(|t| now - t >= self.town.config.patrol.witness_every)
        {
            self.last_witness = Some(now);
            self.witness()?;
            patrolled = true;
        }
        if self
            .last_deacon
            .is_none_or(|t| now - t >= self.town.config.patrol.deacon_every)
        {
            self.last_deacon = Some(now);
            self.deacon()?;
            patrolled = true;
        }
        if self.last_refinery.is_none_or(|t| now - t >= REFINERY_EVERY) {
            self.last_refinery = Some(now);
            patrolled |= self.refinery()?;
        }
        if self
            .last_meter
            .is_none_or(|t| now - t >= meter::METER_EVERY)
        {
            self.last_meter = Some(now);
            self.reload_config();
            patrolled |= self.meter()?;
        }
        if self
            .last_notify
            .is_none_or(|t| now - t >= notify::NOTIFY_EVERY)
        {
            self.last_notify = Some(now);
            self.notify()?;
        }
        if store_changed || launched || ended || patrolled || contacted {
            self.publish()?;
        }
        Ok(())
    }

    /// Picks up an edited town.toml (a raised budget, new prices, `[notify]`, the patrols'
    /// pace); one that does not load is logged and the last good one stays.
    fn reload_config(&mut self) {
        let mtime = config_mtime(&self.town);
        if mtime.is_none() || mtime == self.config_mtime {
            return;
        }
        self.config_mtime = mtime;
        let path = self.town.root.join(crate::town::CONFIG_FILE);
        let loaded = std::fs::read_to_string(&path)
            .map_err(|e| Error::io("read", &path, e))
            .and_then(|src| crate::town::TownConfig::parse(&src, &path));
        match loaded {
            Ok(c) if c != self.town.config => {
                tracing::info!("{} changed: reloaded", path.display());
                self.town.config = c;
                self.costs_stale = true;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                "town.toml changed but does not load; keeping the last good one: {e}"
            ),
        }
    }

    /// Has the tick at or after `at` look at `agent`'s session.
    fn look_at(&mut self, at: Instant, agent: &str) {
        self.attention.at(at, agent);
    }

    /// Rebuilds the snapshot from the store and the live sessions; subscribers wake only when
    /// it differs from the last one.
    pub fn publish(&self) -> Result<()> {
        let new = self.build_snapshot()?;
        self.snapshot.send_if_modified(|s| {
            let differs = *s != new;
            if differs {
                *s = new;
            }
            differs
        });
        Ok(())
    }

    fn build_snapshot(&self) -> Result<Snapshot> {
        let mut agents = Vec::new();
        for a in self.store.agents()? {
            let live = self.live.get(&a.name);
            let bead_title = match &a.hooked_bead {
                Some(id) => self.store.get(id).ok().map(|b| b.title),
                None => None,
            };
            agents.push(AgentView {
                running: live.is_some(),
                bead_title,
                agent: a,
            });
        }
        let all_mr = self.store.merge_requests(None)?;
        let (open, done): (Vec<_>, Vec<_>) = all_mr
            .into_iter()
            .partition(|m| m.state == "queued" || m.state == "testing");
        let mut merge_requests = open;
        merge_requests.extend(done.into_iter().rev().take(MQ_HISTORY));
        let ready = self
            .store
            .ready(Some(200))?
            .into_iter()
            .map(|b| BeadBrief {
                id: b.id,
                title: b.title,
                priority: b.priority,
                issue_type: b.issue_type,
            })
            .collect();
        let runtimes = self.town.config.runtime_names();
        let runtimes_missing = runtimes
            .iter()
            .filter(|r| !self.runtime_installed(r))
            .cloned()
            .collect();
        Ok(Snapshot {
            town: self.town.config.name.clone(),
            runtimes_missing,
            agents,
            convoys: self.store.convoys()?,
            merge_requests,
            feed: self.store.recent_events(FEED_LEN)?,
            ready,
            rigs: self.town.config.rigs.keys().cloned().collect(),
            runtimes,
            default_runtime: self.town.config.default_runtime.clone(),
            inbox_unread: self.store.inbox("overseer", false)?.len(),
            patrol_heartbeat_ns: self
                .store
                .patrol_age()?
                .map(|age| self.store.now_ns() - age.as_nanos() as i64),
            costs: self.costs.clone(),
        })
    }

    /// Whether runtime `name`'s program can be found (the built-in sim always can).
    fn runtime_installed(&self, name: &str) -> bool {
        let Ok(rt) = self.town.config.runtime(name) else {
            return false;
        };
        match rt.command.first() {
            Some(p) if p == runtime::SIM_PROGRAM => true,
            Some(p) => {
                let path = rt
                    .env
                    .get("PATH")
                    .map(std::ffi::OsString::from)
                    .or_else(|| std::env::var_os("PATH"));
                crate::agent::sys::resolve_program(p, &self.town.root, path.as_deref()).is_ok()
            }
            None => false,
        }
    }

    /// Agents with work on their hook, and the mayor and crew, get a session when they have
    /// none (unless stopped by the overseer or dead: restarting those is the Witness's call).
    fn reconcile(&mut self) -> Result<bool> {
        let mut launched = false;
        for a in self.store.agents()? {
            // A polecat's session belongs to one bead: new work gets a fresh session (with
            // the new GT_BEAD), the way a handoff does.
            if let (Some(live), Some(hook)) = (self.live.get(&a.name), &a.hooked_bead) {
                if live.bead.as_ref() != Some(hook)
                    && live.stopping.is_none()
                    && a.role == crate::beads::role::POLECAT
                {
                    self.stop(&a.name, Stopping::Handoff)?;
                    continue;
                }
            }
            // Polecats run while they have work; the mayor and crew are long-lived.
            let wants = (a.hooked_bead.is_some() || a.role != crate::beads::role::POLECAT)
                && !self.live.contains_key(&a.name)
                && a.state != agent_state::DEAD
                && a.state != agent_state::STOPPED;
            if !wants {
                continue;
            }
            // Never while a sling of the rig is hooking or checking out: it holds the rig's
            // worktree lock from the hook to the finished checkout (taken here without waiting,
            // held through the launch). A sling that died in between let go of the lock; the
            // launch makes the worktree it did not.
            let _lock = match a.role == crate::beads::role::POLECAT {
                true => match RigLock::try_take(&self.town.rig_dir(&a.rig)) {
                    Ok(Some(lock)) => Some(lock),
                    Ok(None) => continue,
                    // No lock to be had (a rig directory gone): the launch says what is wrong.
                    Err(e) => {
                        tracing::warn!(agent = %a.name, "the rig's worktree lock: {e}");
                        None
                    }
                },
                false => None,
            };
            self.launch_or_record(&a);
            launched = true;
        }
        launched |= self.apply_frozen()?;
        Ok(launched)
    }

    fn launch_or_record(&mut self, a: &Agent) {
        if let Err(e) = self.launch(a) {
            let message = e.to_string();
            tracing::warn!(agent = %a.name, "cannot start: {message}");
            let _ = self
                .store
                .agent_set_state(&a.name, agent_state::DEAD, &message, "engine");
            self.emit(Event::Failed {
                agent: a.name.clone(),
                message,
            });
        }
    }

    /// Starts the agent's session in its worktree with its runtime.
    pub fn launch(&mut self, a: &Agent) -> Result<()> {
        let rt_name = if a.runtime.is_empty() {
            self.town.config.default_runtime.clone()
        } else {
            a.runtime.clone()
        };
        let rt = self.town.config.runtime(&rt_name)?;
        let dir = self.town.agent_dir(&a.role, &a.rig, &a.name);
        self.ensure_worktree(a, &dir)?;
        let known = crate::agent::program::of_command(&rt.command);
        let (program, args, pending_prompt) = self.command_line(a, &rt_name, &rt, known, &dir)?;
        if rt_name == "claude" {
            runtime::install_claude_hooks(&dir, &self.exe)?;
        }
        let id = session_id();
        let mark = format!("{}/{id}", a.name);
        let mut spec = SessionSpec::new(program, dir);
        spec.args = args;
        let (spec, usage_file) = self.session_spec(a, (&rt_name, &rt), &id, &mark, spec);
        let conversation = self.store.agent(&a.name)?.conversation;
        let meter = meter::Sources::new(
            known.map(|p| p.name),
            &spec.env,
            usage_file,
            crate::beads::Spender {
                agent: a.name.clone(),
                rig: a.rig.clone(),
                bead: a.hooked_bead.clone(),
                session: Some(id.clone()),
                conversation,
                runtime: rt_name.clone(),
            },
        );
        let cwd = spec.cwd.clone();
        // Codex names its conversation itself: find it once the session has written it.
        let discover = match known.and_then(|p| p.resume) {
            Some(crate::agent::program::Resume::Discovered { .. }) => Some((
                crate::agent::usage::Homes::of_env(&spec.env).codex,
                std::time::SystemTime::now() - Duration::from_secs(2),
            )),
            _ => None,
        };
        // Looked at on the next tick, and whenever it prints or ends.
        let notify = self.attention.notify_for(&a.name);
        let session = Arc::new(Session::spawn(spec, notify)?);
        let pid = session.pid();
        self.store
            .agent_set_session(&a.name, Some(&id), pid.map(i64::from))?;
        self.store.agent_set_state(
            &a.name,
            agent_state::WORKING,
            &format!("session {id} started ({rt_name})"),
            "engine",
        )?;
        let patterns = witness::Patterns::compile(
            rt.ready.as_deref(),
            rt.busy.as_deref(),
            rt.waiting.as_deref(),
        );
        self.live.insert(
            a.name.clone(),
            Live {
                session,
                mark,
                program: known,
                bypass: known.is_some_and(|p| p.bypass_requested(&rt.command)),
                cwd,
                contact: contact::Contact::default(),
                discover,
                bead: a.hooked_bead.clone(),
                pending_prompt,
                patterns,
                watch: witness::Watch::started(),
                pending_enter: None,
                stopping: None,
                meter,
                frozen: false,
            },
        );
        self.emit(Event::Started {
            agent: a.name.clone(),
            session: id,
            pid,
        });
        Ok(())
    }

    /// A polecat works on `polecat/<name>/<bead>`: makes sure that is what its worktree holds
    /// (after a crash between hooking and preparing the worktree it may not be), without ever
    /// leaving unmerged work behind (moving on needs a clean, merged worktree). Every agent's
    /// directory must exist.
    fn ensure_worktree(&self, a: &Agent, dir: &Path) -> Result<()> {
        if let (crate::beads::role::POLECAT, Some(bead), Some(rig)) = (
            a.role.as_str(),
            &a.hooked_bead,
            self.town.config.rigs.get(&a.rig),
        ) {
            let want = crate::town::sling::polecat_branch(&a.name, bead);
            if crate::town::worktree::current_branch(dir).ok().as_deref() != Some(want.as_str()) {
                crate::town::worktree::add_worktree(
                    &self.town.rig_repo(&a.rig),
                    dir,
                    &format!("polecat-{}", a.name),
                    &want,
                    &rig.branch,
                    &self.store.mr_landed(&a.rig)?,
                )?;
            }
        }
        if !dir.is_dir() {
            return Err(Error::Conflict(format!(
                "{}'s worktree {} is missing",
                a.name,
                dir.display()
            )));
        }
        Ok(())
    }

    /// The program and arguments a session of `a` runs, and the prompt to type once it is
    /// ready (for a runtime that takes it so): the runtime's command, what keeps a known
    /// program apart from the others, its conversation (resumed or new), the trust of the
    /// town's own worktree, and the first prompt.
    fn command_line(
        &self,
        a: &Agent,
        rt_name: &str,
        rt: &crate::agent::runtime::RuntimeConfig,
        known: Option<&'static crate::agent::program::Program>,
        dir: &Path,
    ) -> Result<(String, Vec<String>, Option<String>)> {
        let (program, mut args) = match rt.command.split_first() {
            Some((p, rest)) => (p.clone(), rest.to_vec()),
            None => return Err(Error::bad(format!("runtime '{rt_name}' has no command"))),
        };
        let program = if program == runtime::SIM_PROGRAM {
            self.exe.display().to_string()
        } else {
            program
        };
        for arg in known.map_or(&[][..], |p| p.isolation_args) {
            if !args.iter().any(|a| a == arg) {
                args.push(arg.to_string());
            }
        }
        // The runtime's own conversation: resumed when this session continues the bead the
        // conversation was started for (a crash, `restart`, an engine restart), fresh
        // otherwise (a new bead; `handoff` forgets it first).
        if let Some(resume) = known.and_then(|p| p.resume) {
            let continuing = a.conversation.is_some() && a.conversation_bead == a.hooked_bead;
            args = contact::conversation_args(&self.store, a, resume, continuing, args)?;
        }
        // The town's own worktree, trusted for this launch where the program has a flag for it.
        if let Some(trust) = known.and_then(|p| p.trust_args) {
            if dir.starts_with(&self.town.root) {
                args.extend(trust(dir));
            }
        }
        let mut pending_prompt = None;
        match &rt.prompt.clone().unwrap_or_default() {
            PromptMode::Argument => args.push(nudge::prime_prompt(&self.exe)),
            PromptMode::Flag(flag) => {
                args.push(flag.clone());
                args.push(nudge::prime_prompt(&self.exe));
            }
            PromptMode::TypeAfterReady => pending_prompt = Some(nudge::prime_prompt(&self.exe)),
        }
        Ok((program, args, pending_prompt))
    }

    /// The rest of what session `id` of `a` (its program and arguments in `spec`) is started
    /// with: size, colours, recording, title, the agent's environment with its usage file and
    /// its mark; and the usage file.
    fn session_spec(
        &self,
        a: &Agent,
        (rt_name, rt): (&str, &crate::agent::runtime::RuntimeConfig),
        id: &str,
        mark: &str,
        mut spec: SessionSpec,
    ) -> (SessionSpec, PathBuf) {
        let logs = self.town.logs_dir().join(&a.name);
        (spec.rows, spec.cols) = self.size_of(&a.name);
        spec.query_colors = self.colors;
        spec.scrollback = self.town.config.terminal.scrollback_lines as usize;
        spec.recording = Some(logs.join(format!("{id}.cast")));
        spec.title = format!("{} · {} · {}", a.name, a.role, rt_name);
        spec.env = self.agent_env(a, &rt.env, &spec.cwd);
        let usage_file = logs.join(format!("{id}.usage.jsonl"));
        spec.env.push((
            crate::agent::usage::USAGE_FILE_ENV.to_string(),
            usage_file.display().to_string(),
        ));
        spec.env.push((
            crate::agent::sys::SESSION_MARK.to_string(),
            mark.to_string(),
        ));
        (spec, usage_file)
    }

    /// The environment every agent gets (`GT_*`, `BD_ACTOR`, a `PATH` that finds us).
    fn agent_env(
        &self,
        a: &Agent,
        extra: &std::collections::BTreeMap<String, String>,
        worktree: &std::path::Path,
    ) -> Vec<(String, String)> {
        let mut env = vec![
            ("GT_TOWN".to_string(), self.town.root.display().to_string()),
            ("GT_RIG".to_string(), a.rig.clone()),
            ("GT_ROLE".to_string(), a.role.clone()),
            ("GT_AGENT".to_string(), a.name.clone()),
            (
                "GT_BEAD".to_string(),
                a.hooked_bead.clone().unwrap_or_default(),
            ),
            ("BD_ACTOR".to_string(), a.name.clone()),
        ];
        if let Some(bin_dir) = self.exe.parent() {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![bin_dir.to_path_buf()];
            dirs.extend(std::env::split_paths(&path));
            if let Ok(joined) = std::env::join_paths(dirs) {
                env.push(("PATH".to_string(), joined.to_string_lossy().into_owned()));
            }
        }
        // Some runtimes run their commands with the user's git config hidden (Gemini CLI 0.61
        // sets GIT_CONFIG_GLOBAL=/dev/null): the identity the worktree resolves goes in the
        // environment, unless the engine's environment or the runtime's table sets it.
        if let Some((name, email)) = crate::town::worktree::identity(worktree) {
            for (var, value) in [
                ("GIT_AUTHOR_NAME", &name),
                ("GIT_COMMITTER_NAME", &name),
                ("GIT_AUTHOR_EMAIL", &email),
                ("GIT_COMMITTER_EMAIL", &email),
            ] {
                if std::env::var_os(var).is_none() && !extra.contains_key(var) {
                    env.push((var.to_string(), value.clone()));
                }
            }
        }
        env.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    /// Notices which of `looks` ended and records why they ended.
    fn reap(&mut self, looks: &BTreeSet<String>) -> Result<bool> {
        let ended: Vec<String> = looks
            .iter()
            .filter(|n| {
                self.live
                    .get(*n)
                    .is_some_and(|l| l.session.exit_status().is_some())
            })
            .cloned()
            .collect();
        for name in &ended {
            let Some(mut live) = self.live.remove(name) else {
                continue;
            };
            // Whatever the session started and left running (a background job, a runtime's
            // daemon) ends with it, off the loop: ending takes up to a second's grace.
            let (root, mark) = (self.town.root.clone(), live.mark.clone());
            let _ = std::thread::Builder::new()
                .name("leftovers".into())
                .spawn(move || end_leftovers(&root, |m| m == mark));
            let how = live
                .session
                .exit_status()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "ended".into());
            if let Some((_, Some(reply))) = live.pending_enter.take() {
                let _ = reply.send(Err(Refusal::Other(format!(
                    "the session {how} before the Enter"
                ))));
            }
            if let Err(e) = self.meter_one(&mut live) {
                tracing::warn!(agent = %name, "reading what the session spent: {e}");
            }
            self.store.agent_set_session(name, None, None)?;
            let agent = self.store.agent(name)?;
            match live.stopping {
                Some(Stopping::Restart) => {
                    self.store
                        .agent_restarted(name, "restart requested", "engine")?;
                    self.launch_or_record(&agent);
                }
                Some(Stopping::Handoff) => {
                    // A handoff starts a fresh conversation on purpose.
                    self.store.agent_set_conversation(name, None, None)?;
                    let agent = self.store.agent(name)?;
                    self.launch_or_record(&agent);
                }
                Some(Stopping::Kill) => {
                    self.store
                        .agent_set_state(name, agent_state::STOPPED, "killed", "engine")?;
                }
                None if self.fatal_start(name, &live, &how)? => {}
                None if agent.hooked_bead.is_some() => {
                    self.store
                        .agent_set_state(name, agent_state::DEAD, &how, "witness")?;
                    // Dead with work on its hook: restart in the same worktree, up to
                    // max_restarts for this bead, then tell the overseer.
                    if agent.restarts < i64::from(self.town.config.patrol.max_restarts) {
                        let n = self.store.agent_restarted(
                            name,
                            &format!(
                                "{how}; restart {} of {}",
                                agent.restarts + 1,
                                self.town.config.patrol.max_restarts
                            ),
                            "witness",
                        )?;
                        let mut agent = self.store.agent(name)?;
                        agent.restarts = n;
                        self.launch_or_record(&agent);
                    } else {
                        self.escalate(
                            name,
                            &format!("{name} keeps dying"),
                            &format!(
                                "{name} {how} after {} restarts with {} on its hook; it stays dead until you restart it (gastown-tui restart {name}).",
                                agent.restarts,
                                agent.hooked_bead.as_deref().unwrap_or("?")
                            ),
                        )?;
                    }
                }
                None => {
                    self.store
                        .agent_set_state(name, agent_state::STOPPED, &how, "engine")?;
                }
            }
            self.emit(Event::Exited {
                agent: name.clone(),
                how,
            });
        }
        Ok(!ended.is_empty())
    }

    /// Of `looks`: types prompts whose agents became ready, and sends the Enters that are due.
    fn deliver_pending(&mut self, looks: &BTreeSet<String>) -> Result<()> {
        let now = Instant::now();
        let mut finished = Vec::new();
        let mut ready_now = Vec::new();
        for name in looks {
            let Some(live) = self.live.get_mut(name) else {
                continue;
            };
            if live
                .pending_enter
                .as_ref()
                .is_some_and(|(due, _)| now >= *due)
            {
                let reply = live.pending_enter.take().and_then(|(_, r)| r);
                let sent = live.session.write(b"\r");
                live.watch.submitted(live.session.bytes_read());
                finished.push((name.clone(), reply, sent.err().map(|e| e.to_string())));
            }
            if live.pending_prompt.is_some()
                && live.pending_enter.is_none()
                && live.contact.quiet_for_prompt()
            {
                let screen = live.session.capture(false);
                // A dialog is never a ready prompt (its cursor looks like one).
                let dialog = contact::dialog_on(live.program, &screen).is_some();
                let is_ready = !dialog
                    && match &live.patterns.ready {
                        Some(re) => re.is_match(&screen),
                        None => live.session.bytes_read() > 0,
                    };
                if is_ready {
                    ready_now.push(name.clone());
                }
            }
        }
        for (name, reply, err) in finished {
            if let Some(reply) = reply {
                let _ = reply.send(err.clone().map_or(Ok(None), |e| Err(Refusal::Other(e))));
            }
            if err.is_none() {
                self.emit(Event::Nudged { agent: name });
            }
        }
        for name in ready_now {
            if let Some(text) = self
                .live
                .get_mut(&name)
                .and_then(|l| l.pending_prompt.take())
            {
                self.type_nudge(&name, &text, &mut None)?;
            }
        }
        Ok(())
    }

    /// Types `text` now and schedules its Enter; once typed, `reply` is taken and answered when
    /// the Enter went out (on an error it stays, for the caller to answer).
    fn type_nudge(&mut self, agent: &str, text: &str, reply: &mut Option<Reply>) -> Result<()> {
        let clean = nudge::checked(text)?;
        let live = self.live.get_mut(agent).ok_or_else(|| Error::NoSession {
            agent: agent.to_string(),
        })?;
        if live.frozen {
            return Err(Error::Conflict(format!(
                "{agent} is frozen; nothing was typed (thaw it first: gastown-tui thaw {agent})"
            )));
        }
        // Nothing is typed into a dialog: the human answers it (or the town, if it owns it).
        if let Some(seen) = contact::dialog_on(live.program, &live.session.capture(false)) {
            return Err(Error::Conflict(format!(
                "{agent} is showing a dialog ({}); nothing was typed: answer it in the cockpit (enter to drill down)",
                contact::describe(&seen)
            )));
        }
        // A nudge still waiting for its Enter is submitted first, so two nudges never run
        // together into one line.
        if let Some((_, earlier)) = live.pending_enter.take() {
            live.session.write(b"\r")?;
            if let Some(r) = earlier {
                let _ = r.send(Ok(None));
            }
        }
        live.session.write(clean.as_bytes())?;
        let due = Instant::now() + nudge::ENTER_DELAY;
        live.pending_enter = Some((due, reply.take()));
        self.look_at(due, agent);
        Ok(())
    }

    /// The terminal size `agent`'s session should have.
    fn size_of(&self, agent: &str) -> (u16, u16) {
        size_for(self.pane, &self.own_size, agent)
    }

    /// Takes the sizes the cockpits want (for sessions started from now on) and resizes every
    /// live session to its own (the server has done so already; resizing to the same size is
    /// free).
    pub fn set_sizes(&mut self, pane: (u16, u16), agents: BTreeMap<String, (u16, u16)>) {
        self.pane = pane;
        self.own_size = agents;
        resize_sessions(&self.live.shared, self.pane, &self.own_size);
    }

    /// Carries out one command and answers `reply` (a failure nobody waits for becomes an
    /// `Event::Failed`). A nudge is answered once its Enter went out; a diff runs as a job off
    /// the loop and answers by itself; everything else is answered at once.
    fn handle(&mut self, cmd: Command, mut reply: Option<Reply>) {
        let subject = cmd.subject().to_string();
        let r = match cmd {
            Command::Nudge { agent, text } => match self.type_nudge(&agent, &text, &mut reply) {
                // Its reply went with the Enter.
                Ok(()) => return,
                Err(e) => Err(e),
            },
            Command::Diff { agent } => {
                let job = self.diff_job(&agent);
                return self.answer_from_job(agent, reply, job);
            }
            Command::Capture { agent, scrollback } => {
                let job = self.capture_job(&agent, scrollback);
                return self.answer_from_job(agent, reply, job);
            }
            Command::Input { agent, bytes } => input(&self.live.shared, &agent, &bytes),
            Command::Kill { agent } => self
                .stop(&agent, Stopping::Kill)
                .map(|_| Some("killed".into())),
            Command::Restart { agent } => self.restart(&agent).map(|_| Some("restarted".into())),
            Command::Handoff { agent } => self
                .stop(&agent, Stopping::Handoff)
                .map(|_| Some("handing off".into())),
            Command::Sling { bead, rig, runtime } => {
                let job = self.sling_job(bead.clone(), rig, runtime);
                return self.answer_from_job(bead, reply, Ok(job));
            }
            Command::Freeze { agent, frozen } => self.freeze(agent.as_deref(), frozen).map(Some),
        };
        answer(&self.events, &subject, reply, r);
    }

    /// The agent's screen as text, to run away from the engine's loop: with `scrollback`, its
    /// whole history is read back from the recording (see [`crate::agent::history`]). From its
    /// newest recording when it has no session.
    fn capture_job(
        &self,
        agent: &str,
        scrollback: bool,
    ) -> Result<impl FnOnce() -> Result<String> + Send + 'static> {
        let live = match self.live.get(agent) {
            Some(l) => Some(Arc::clone(&l.session)),
            None => {
                self.store.agent(agent)?;
                None
            }
        };
        let (town, agent) = (self.town.clone(), agent.to_string());
        Ok(move || match live {
            Some(s) => match s.recording_path() {
                Some(path) if scrollback => {
                    // Everything read so far is in the file first (the queue is short).
                    s.sync_recording(Duration::from_secs(2));
                    crate::agent::history::capture(path, Some(s.size()), true)
                }
                _ => Ok(s.capture(scrollback)),
            },
            None => capture_recording(&town, &agent, scrollback),
        })
    }

    /// A cockpit's sling, to run away from the engine's loop (it makes the polecat's worktree:
    /// a checkout of the rig). It writes the store through a connection of its own, so the
    /// loop's next tick sees the hooked bead and starts the polecat.
    fn sling_job(
        &self,
        bead: String,
        rig: String,
        runtime: Option<String>,
    ) -> impl FnOnce() -> Result<String> + Send + 'static {
        let (town, events) = (self.town.clone(), self.events.clone());
        move || {
            let store = Store::open(&town.db_path(), &town.config.prefix, clock::system())?;
            let (slung, _) = crate::town::sling::sling(
                &town,
                &store,
                &bead,
                &rig,
                runtime.as_deref(),
                "overseer",
            )?;
            let said = format!("{} slung to {}", slung.bead, slung.agent);
            tracing::info!("{said}");
            let _ = events.send(Event::Slung {
                bead: slung.bead,
                agent: slung.agent,
            });
            Ok(said)
        }
    }

    /// Runs `job` away from the engine's loop and answers with what it gives (or answers at
    /// once when it could not be made).
    fn answer_from_job(
        &self,
        agent: String,
        reply: Option<Reply>,
        job: Result<impl FnOnce() -> Result<String> + Send + 'static>,
    ) {
        let events = self.events.clone();
        match job {
            Ok(job) => {
                tokio::task::spawn_blocking(move || {
                    answer(&events, &agent, reply, job().map(Some));
                });
            }
            Err(e) => answer(&events, &agent, reply, Err(e)),
        }
    }

    /// The git work of a diff, to run away from the engine's loop (it reads the whole
    /// worktree): the store is asked only which worktree and which base.
    fn diff_job(&self, agent: &str) -> Result<impl FnOnce() -> Result<String> + Send + 'static> {
        let a = self.store.agent(agent)?;
        let dir = self.town.agent_dir(&a.role, &a.rig, &a.name);
        let base = match self.town.config.rigs.get(&a.rig) {
            Some(r) => r.branch.clone(),
            None => return Err(Error::bad(format!("{agent} has no rig to diff against"))),
        };
        Ok(move || crate::town::worktree::diff_against(&dir, &base, 512 * 1024))
    }

    /// The cockpit's freeze or thaw of `agent` (every agent when None), applied at once.
    fn freeze(&mut self, agent: Option<&str>, frozen: bool) -> Result<String> {
        let names: Vec<String> = match agent {
            Some(a) => vec![self.store.agent(a)?.name],
            None => self.store.agents()?.into_iter().map(|a| a.name).collect(),
        };
        let verb = if frozen { "froze" } else { "thawed" };
        let reason = format!(
            "{} from the cockpit",
            if frozen { "freeze" } else { "thaw" }
        );
        let mut changed = 0;
        for n in &names {
            if self
                .store
                .agent_set_frozen(n, frozen, &reason, "overseer")?
            {
                changed += 1;
            }
        }
        self.apply_frozen()?;
        self.publish()?;
        Ok(match (agent, changed) {
            (Some(a), 0) => format!(
                "{a} was already {}",
                if frozen { "frozen" } else { "thawed" }
            ),
            (Some(a), _) => format!("{verb} {a}"),
            (None, n) => format!("{verb} {n} agent{}", if n == 1 { "" } else { "s" }),
        })
    }

    fn stop(&mut self, agent: &str, how: Stopping) -> Result<()> {
        let live = self.live.get_mut(agent).ok_or_else(|| Error::NoSession {
            agent: agent.to_string(),
        })?;
        live.stopping = Some(how);
        live.session.kill()
    }

    fn restart(&mut self, agent: &str) -> Result<()> {
        if self.live.contains_key(agent) {
            return self.stop(agent, Stopping::Restart);
        }
        let a = self.store.agent(agent)?;
        self.store
            .agent_restarted(agent, "restart requested", "engine")?;
        self.launch(&a)
    }

    /// A round that failed is logged and told to the clients (as a failure with no agent),
    /// the same failure once a minute at most: a store that stays locked or a disk that stays
    /// full must not flood the cockpits.
    fn tick_failed(&mut self, e: &Error) {
        let message = format!("the engine's round failed: {e}");
        tracing::warn!("{message}");
        let repeat = self
            .last_tick_error
            .as_ref()
            .is_some_and(|(m, at)| *m == message && at.elapsed() < Duration::from_secs(60));
        if !repeat {
            self.emit(Event::Failed {
                agent: String::new(),
                message: message.clone(),
            });
            self.last_tick_error = Some((message, Instant::now()));
        }
    }

    /// Ends every session (their hooks stay: the next engine picks them up).
    pub fn shutdown(&mut self) -> Result<()> {
        // Every session is told at once, then all are waited for together.
        let live = self.live.drain();
        for (_, l) in &live {
            let _ = l.session.kill();
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        for (_, l) in &live {
            l.session
                .wait_timeout(deadline.saturating_duration_since(Instant::now()));
        }
        // What the sessions left running (a daemon, a background job) goes with them, all
        // found in one look.
        let marks: BTreeSet<&str> = live.iter().map(|(_, l)| l.mark.as_str()).collect();
        end_leftovers(&self.town.root, |m| marks.contains(m));
        for (name, _) in live {
            let _ = self.store.agent_set_session(&name, None, None);
            // Idle, not stopped: the next engine starts it again if it has work on its hook.
            let _ =
                self.store
                    .agent_set_state(&name, agent_state::IDLE, "engine stopped", "engine");
        }
        self.store.engine_stopped()
    }

    /// Runs the engine until `shutdown` turns true, taking requests from `requests`; then
    /// ends every session.
    pub async fn run(
        mut self,
        mut requests: mpsc::UnboundedReceiver<Request>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(req) = requests.recv() => match req {
                    Request::Command { cmd, reply } => {
                        tokio::task::block_in_place(|| self.handle(cmd, reply));
                    }
                    Request::Sizes { pane, agents } => {
                        tokio::task::block_in_place(|| self.set_sizes(pane, agents));
                    }
                    Request::Colors(colors) => {
                        self.colors = colors;
                        color_sessions(&self.live.shared, colors);
                    }
                },
                _ = tick.tick() => {
                    if let Err(e) = tokio::task::block_in_place(|| self.tick()) {
                        self.tick_failed(&e);
                    }
                }
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
        tokio::task::block_in_place(|| self.shutdown())
    }
}

/// Ends what the sessions of the town at `root` whose marks pass `which` left running (a
/// daemon, a background job), all found in one look, and says so in the log.
fn end_leftovers(root: &Path, which: impl Fn(&str) -> bool) {
    let left = crate::agent::sys::marked(root, which);
    if !left.is_empty() {
        tracing::info!("stopping {} process(es) ended sessions left", left.len());
        crate::agent::sys::terminate(left, Duration::from_secs(1));
    }
}

/// Where a command's answer goes: to the client that asked, or (nobody waiting) into the
/// events as a failure when it failed.
fn answer(
    events: &broadcast::Sender<Event>,
    subject: &str,
    reply: Option<Reply>,
    r: Result<Option<String>>,
) {
    if let Err(e) = &r {
        tracing::warn!("command failed: {e}");
    }
    match reply {
        Some(reply) => {
            let _ = reply.send(r.map_err(|e| Refusal::from(&e)));
        }
        None => {
            if let Err(e) = r {
                let _ = events.send(Event::Failed {
                    agent: subject.to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
}

/// The size of `agent`'s terminal: its own when a cockpit shows it full screen, else the pane's.
pub fn size_for(
    pane: (u16, u16),
    agents: &BTreeMap<String, (u16, u16)>,
    agent: &str,
) -> (u16, u16) {
    agents.get(agent).copied().unwrap_or(pane)
}

/// Tells every live session to report `colors` to programs that ask.
pub fn color_sessions(sessions: &Sessions, colors: QueryColors) {
    for (_, s) in live_sessions(sessions) {
        s.set_query_colors(colors);
    }
}

/// The live sessions now, by agent, with the map's lock already let go (a screen's lock is
/// never waited for while the map is held).
fn live_sessions(sessions: &Sessions) -> Vec<(String, Arc<Session>)> {
    sessions
        .read()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Keys for `agent`'s terminal, straight to its PTY: what the server does with a client's
/// typing, never waiting for the engine's loop.
pub fn input(sessions: &Sessions, agent: &str, bytes: &[u8]) -> Result<Option<String>> {
    let session = sessions.read().ok().and_then(|m| m.get(agent).cloned());
    match session {
        Some(s) => s.write(bytes).map(|()| None),
        None => Err(Error::NoSession {
            agent: agent.to_string(),
        }),
    }
}

/// Resizes every live session to [`size_for`] its agent.
pub fn resize_sessions(
    sessions: &Sessions,
    pane: (u16, u16),
    agents: &BTreeMap<String, (u16, u16)>,
) {
    for (name, session) in live_sessions(sessions) {
        let (rows, cols) = size_for(pane, agents, &name);
        if let Err(e) = session.resize(rows, cols) {
            tracing::warn!(agent = %name, "cannot resize: {e}");
        }
    }
}

/// The newest recording of `agent`, if there is one.
pub fn latest_recording(town: &Town, agent: &str) -> Option<PathBuf> {
    let dir = town.logs_dir().join(agent);
    let mut casts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cast"))
        .collect();
    casts.sort();
    casts.pop()
}

/// The last screen of `agent`'s newest recording as text, with the whole history before it
/// when `scrollback`.
pub fn capture_recording(town: &Town, agent: &str, scrollback: bool) -> Result<String> {
    let path = latest_recording(town, agent)
        .ok_or_else(|| Error::bad(format!("{agent} has no running session and no recording")))?;
    crate::agent::history::capture(&path, None, scrollback)
}
