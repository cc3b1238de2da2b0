//! The engine as a server: one background process per town owns the engine (every PTY,
//! emulator, recording, patrol and the store connection) and serves its clients over a Unix
//! socket ([`socket`]) in the [`protocol`]: cockpits and `attach` (the [`crate::ui`]), and the
//! CLI's `status` and `down` ([`client`]).
//!
//! Each client gets its own task: the snapshot whenever it changes, the engine's events, the
//! answers to its commands, and the screen of the agent it shows (changed rows only, at most
//! one update per frame interval, held while the program is inside a synchronized update). A
//! client that is slow, killed or hung up holds up nobody but itself, and leaving takes
//! nothing with it.
//!
//! Sizes: each client says its pane size and its full-screen size. Every agent's PTY gets the
//! pane size of the client used most recently, except an agent a client shows full screen,
//! which gets that client's full-screen size (the most recent such client's).

pub mod client;
pub mod protocol;
pub mod socket;

use crate::agent::history::History;
use crate::agent::screen::QueryColors;
use crate::agent::Session;
use crate::engine::{Command, Engine, Event, Refusal, Request, Sessions, Snapshot};
use crate::town::Town;
use crate::{Error, Result};
use protocol::{
    read_frame, read_msg, write_frame, write_msg, AgentCounts, EngineStatus, FromEngine, Grid,
    Hello, ToEngine, Welcome, PROTOCOL,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// At most one screen update per client this often (about 60 a second).
pub const FRAME: Duration = Duration::from_millis(16);
/// A screen inside a synchronized update is held back for at most this long.
const SYNC_WAIT: Duration = Duration::from_millis(100);
/// While a screen is held back, look again this often.
const SYNC_POLL: Duration = Duration::from_millis(4);
/// A client must say hello within this long.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// A view scrolled back past the history a screen keeps in memory is replayed from the
/// recording at most this often while the agent prints.
const HISTORY_EVERY: Duration = Duration::from_millis(250);

/// Runs the town's engine as a server until it is stopped (`down`, a cockpit's `:stop`,
/// SIGTERM, SIGINT or SIGHUP); then every agent is stopped (their hooks stay). Fails with
/// `Error::EngineRunning` when the town has an engine already.
pub fn serve(town: Town) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("start", "the tokio runtime", e))?;
    // The lock first: with it held, whatever socket is at our path is a dead engine's.
    let engine = Engine::new(town.clone())?;
    engine.publish()?;
    let path = socket::listen_path(&town)?;
    let _ = std::fs::remove_file(&path);
    let listener = bind(&path)?;
    socket::record(&town, &path)?;
    tracing::info!(socket = %path.display(), pid = std::process::id(), "engine serving");
    let result = rt.block_on(async {
        let listener =
            UnixListener::from_std(listener).map_err(|e| Error::io("listen on", &path, e))?;
        run(engine, listener, &town, path.clone()).await
    });
    socket::unrecord(&town, &path);
    let _ = std::fs::remove_file(&path);
    result
}

fn bind(path: &std::path::Path) -> Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let l = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| Error::io("listen on", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("set the mode of", path, e))?;
    l.set_nonblocking(true)
        .map_err(|e| Error::io("listen on", path, e))?;
    Ok(l)
}

/// What every client task shares.
struct Shared {
    town: String,
    socket: PathBuf,
    started: Instant,
    /// Never full: a client's task never waits for the engine's loop.
    requests: mpsc::UnboundedSender<Request>,
    snapshots: watch::Receiver<Snapshot>,
    events: broadcast::Sender<Event>,
    sessions: Sessions,
    stop: watch::Sender<bool>,
    /// Set (with who asked) when the engine is stopping.
    stopping: watch::Sender<Option<String>>,
    clients: Mutex<Clients>,
}

#[derive(Default)]
struct Clients {
    next: u64,
    /// Bumped by every client action: the most recent client has the highest `active`.
    seq: u64,
    map: HashMap<u64, View>,
    /// The sizes last given to the engine.
    sent: Option<Sizes>,
    /// The colours last given to the sessions.
    sent_colors: Option<QueryColors>,
}

type Sizes = ((u16, u16), BTreeMap<String, (u16, u16)>);

/// What one attached client shows, and at what size.
#[derive(Debug, Clone, Default)]
struct View {
    pane: Option<(u16, u16)>,
    full: (u16, u16),
    show: Option<String>,
    full_screen: bool,
    /// The client theme's colours, once it said them.
    colors: Option<QueryColors>,
    active: u64,
}

/// The colours agents are told: those of the most recently used client that said its own.
fn colors_of(views: &HashMap<u64, View>) -> Option<QueryColors> {
    views
        .values()
        .filter(|v| v.colors.is_some())
        .max_by_key(|v| v.active)
        .and_then(|v| v.colors)
}

/// The sizes the engine should give its sessions, from what the clients show.
fn sizes_of(views: &HashMap<u64, View>) -> Option<Sizes> {
    let latest = views
        .values()
        .filter(|v| v.pane.is_some())
        .max_by_key(|v| v.active)?;
    let pane = latest.pane?;
    let mut own: BTreeMap<String, ((u16, u16), u64)> = BTreeMap::new();
    for v in views.values() {
        if let (true, Some(agent)) = (v.full_screen, &v.show) {
            let e = own.entry(agent.clone()).or_insert((v.full, v.active));
            if v.active >= e.1 {
                *e = (v.full, v.active);
            }
        }
    }
    Some((pane, own.into_iter().map(|(k, (s, _))| (k, s)).collect()))
}

impl Shared {
    fn clients(&self) -> std::sync::MutexGuard<'_, Clients> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes client `id`'s view (`None`: it left) and gives the sessions and the engine new
    /// sizes and colours if they changed.
    fn update(&self, id: u64, change: impl FnOnce(&mut View), active: bool) {
        let (sizes, colors) = {
            let mut c = self.clients();
            c.seq += 1;
            let seq = c.seq;
            if let Some(v) = c.map.get_mut(&id) {
                change(v);
                if active {
                    v.active = seq;
                }
            }
            let sizes = sizes_of(&c.map);
            let sizes = if sizes.is_none() || sizes == c.sent {
                None
            } else {
                c.sent = sizes.clone();
                sizes
            };
            let colors = colors_of(&c.map).filter(|k| c.sent_colors != Some(*k));
            if colors.is_some() {
                c.sent_colors = colors;
            }
            (sizes, colors)
        };
        if let Some(colors) = colors {
            crate::engine::color_sessions(&self.sessions, colors);
            let _ = self.requests.send(Request::Colors(colors));
        }
        if let Some((pane, agents)) = sizes {
            // The live sessions now, whatever the engine's loop is doing; the engine keeps the
            // sizes for the sessions it starts later.
            crate::engine::resize_sessions(&self.sessions, pane, &agents);
            let _ = self.requests.send(Request::Sizes { pane, agents });
        }
    }

    fn stop_all(&self, reason: String) {
        tracing::info!("engine stopping: {reason}");
        self.stopping.send_replace(Some(reason));
        self.stop.send_replace(true);
    }

    fn status(&self) -> EngineStatus {
        EngineStatus {
            pid: std::process::id(),
            socket: self.socket.display().to_string(),
            uptime_s: self.started.elapsed().as_secs(),
            clients: self.clients().map.len(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            protocol: PROTOCOL,
            town: self.town.clone(),
            agents: AgentCounts::of(&self.snapshots.borrow()),
        }
    }
}

async fn run(engine: Engine, listener: UnixListener, town: &Town, socket: PathBuf) -> Result<()> {
    let (req_tx, req_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (stopping, _) = watch::channel(None);
    let shared = Arc::new(Shared {
        town: town.config.name.clone(),
        socket,
        started: Instant::now(),
        requests: req_tx,
        snapshots: engine.snapshots(),
        events: engine.events(),
        sessions: engine.sessions(),
        stop: stop_tx,
        stopping,
        clients: Mutex::new(Clients::default()),
    });
    let mut engine_task = tokio::spawn(engine.run(req_rx, stop_rx.clone()));
    // The engine's loop ending on its own (a failure, a panic) stops the server too, and the
    // clients are told why.
    let mut ended: Option<Result<()>> = None;
    use tokio::signal::unix::{signal, SignalKind};
    let sig =
        |k: SignalKind| signal(k).map_err(|e| Error::io("handle signals in", "the engine", e));
    let (mut term, mut int, mut hup) = (
        sig(SignalKind::terminate())?,
        sig(SignalKind::interrupt())?,
        sig(SignalKind::hangup())?,
    );
    let mut stop_rx = stop_rx;
    loop {
        tokio::select! {
            r = &mut engine_task => {
                let r = r.unwrap_or_else(|e| {
                    Err(Error::EngineLost(format!("the engine's loop panicked: {e}")))
                });
                let cause = match &r {
                    Ok(()) => "its loop ended".to_string(),
                    Err(e) => format!("its loop failed: {e}"),
                };
                shared.stop_all(cause);
                // Time for the client tasks to pass the reason on before the process ends.
                tokio::time::sleep(Duration::from_millis(300)).await;
                ended = Some(r);
                break;
            }
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    tokio::spawn(client_task(shared.clone(), stream));
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stop_rx.changed() => break,
            _ = term.recv() => shared.stop_all("SIGTERM".into()),
            _ = int.recv() => shared.stop_all("SIGINT".into()),
            _ = hup.recv() => shared.stop_all("SIGHUP (its terminal closed)".into()),
        }
        if *stop_rx.borrow() {
            break;
        }
    }
    drop(listener);
    match ended {
        Some(r) => r,
        None => engine_task.await.unwrap_or_else(|e| {
            Err(Error::EngineLost(format!(
                "the engine's loop panicked: {e}"
            )))
        }),
    }
}

/// Reads the client's hello; answers with the welcome (or the refusal).
async fn handshake(shared: &Shared, stream: &mut UnixStream) -> std::result::Result<Hello, String> {
    let welcome = |error: Option<String>| Welcome {
        protocol: PROTOCOL,
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        town: shared.town.clone(),
        error,
    };
    let refuse = |why: String| (why.clone(), serde_json::to_vec(&welcome(Some(why))));
    let owner = socket::own_uid();
    let (why, bytes) = match stream.peer_cred() {
        Ok(c) if socket::peer_allowed(c.uid(), owner) => {
            match tokio::time::timeout(HELLO_TIMEOUT, read_frame(stream)).await {
                Ok(Ok(Some(frame))) => match serde_json::from_slice::<Hello>(&frame) {
                    Ok(h) if h.protocol == PROTOCOL => {
                        let bytes = serde_json::to_vec(&welcome(None)).unwrap_or_default();
                        write_frame(stream, &bytes)
                            .await
                            .map_err(|e| e.to_string())?;
                        return Ok(h);
                    }
                    Ok(h) => refuse(format!(
                        "this engine (gastown-tui {}) speaks protocol {PROTOCOL} and the client \
                         (gastown-tui {}) speaks protocol {}: use one gastown-tui for both (stop \
                         this engine with the gastown-tui that started it: `gastown-tui down`; \
                         the agents' hooks stay)",
                        env!("CARGO_PKG_VERSION"),
                        h.version,
                        h.protocol
                    )),
                    Err(e) => refuse(format!("not a gastown-tui hello: {e}")),
                },
                Ok(Ok(None)) => return Err("left before its hello".into()),
                Ok(Err(e)) => refuse(format!("a bad hello: {e}")),
                Err(_) => refuse("no hello within 5 s".into()),
            }
        }
        Ok(c) => refuse(format!(
            "refused: uid {} may not use the engine of uid {owner}",
            c.uid()
        )),
        Err(e) => refuse(format!("refused: the peer's credentials are unknown ({e})")),
    };
    if let Ok(bytes) = bytes {
        let _ = write_frame(stream, &bytes).await;
    }
    Err(why)
}

/// The agent a client shows, and what it was last sent of it.
struct Shown {
    agent: String,
    offset: usize,
    last: Option<Grid>,
    /// The session last sent (its address), and how many bytes it had read then.
    session: Option<usize>,
    /// That session's changes: what wakes the client's task (output of other agents does
    /// not).
    changes: Option<watch::Receiver<u64>>,
    /// The session's row stamps when `last` was read from it.
    stamps: Vec<u64>,
    bytes: u64,
    sent_at: Option<Instant>,
    sync_since: Option<Instant>,
    none_sent: bool,
    /// The agent's history read back from its recording, while the view is scrolled back past
    /// what its screen keeps (away in a job while one runs: `history_busy`); when the last
    /// view of it was made.
    history: Option<History>,
    history_busy: bool,
    history_at: Option<Instant>,
    /// Reading the recording failed: the screen's own history is shown.
    history_failed: bool,
}

enum Step {
    Send(FromEngine),
    Wait(Instant),
    /// A view of the history to make away from the client's task.
    History(Box<HistoryJob>),
    Nothing,
}

/// Making a view of an agent's history from its recording (blocking: it reads the file). The
/// history goes with the job and comes back with its result.
struct HistoryJob {
    agent: String,
    offset: usize,
    session: Arc<Session>,
    history: History,
}

/// What a [`HistoryJob`] gives back.
struct HistoryDone {
    agent: String,
    offset: usize,
    history: History,
    grid: Result<Grid>,
}

impl HistoryJob {
    fn run(mut self) -> HistoryDone {
        let h = &mut self.history;
        let grid = (|| {
            // What was read is in the file (the recorder's queue is short).
            self.session.sync_recording(Duration::from_millis(200));
            h.update()?;
            let (screen, offset) = h.view(self.offset)?;
            let mut grid = Grid::of(&screen);
            let (application_cursor, bracketed_paste) = self
                .session
                .with_screen(|s| (s.application_cursor(), s.bracketed_paste()));
            grid.state.view_offset = offset;
            // The real length: the live screen only knows an upper bound (lines it saw,
            // reprints counted each time).
            grid.state.history = h.len();
            grid.state.application_cursor = application_cursor;
            grid.state.bracketed_paste = bracketed_paste;
            Ok(grid)
        })();
        HistoryDone {
            agent: self.agent,
            offset: self.offset,
            history: self.history,
            grid,
        }
    }
}

fn saturating(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Shown {
    fn new(agent: String, offset: usize) -> Shown {
        Shown {
            agent,
            offset,
            last: None,
            session: None,
            changes: None,
            stamps: Vec::new(),
            bytes: u64::MAX,
            sent_at: None,
            sync_since: None,
            none_sent: false,
            history: None,
            history_busy: false,
            history_at: None,
            history_failed: false,
        }
    }

    fn step(&mut self, sessions: &Sessions) -> Step {
        let session = sessions
            .read()
            .ok()
            .and_then(|m| m.get(&self.agent).cloned());
        let Some(s) = session else {
            self.last = None;
            self.session = None;
            self.changes = None;
            if self.none_sent {
                return Step::Nothing;
            }
            self.none_sent = true;
            return Step::Send(FromEngine::NoScreen {
                agent: self.agent.clone(),
            });
        };
        self.none_sent = false;
        let ptr = Arc::as_ptr(&s) as usize;
        if self.session != Some(ptr) {
            self.session = Some(ptr);
            self.changes = Some(s.changes());
            self.last = None;
            self.bytes = u64::MAX;
        }
        // Seen before the screen is read: whatever changes after wakes the task again.
        if let Some(c) = self.changes.as_mut() {
            c.mark_unchanged();
        }
        let bytes = s.bytes_read();
        let resized = self.last.as_ref().map(|g| g.state.size) != Some(s.size());
        if bytes == self.bytes && !resized {
            return Step::Nothing;
        }
        let now = Instant::now();
        if let Some(t) = self.sent_at {
            if now < t + FRAME {
                return Step::Wait(t + FRAME);
            }
        }
        if s.with_screen(|sc| sc.synchronized_update()) {
            let since = *self.sync_since.get_or_insert(now);
            if now < since + SYNC_WAIT {
                return Step::Wait((now + SYNC_POLL).min(since + SYNC_WAIT));
            }
        } else {
            self.sync_since = None;
        }
        if let Some(step) = self.history_job(&s, now, bytes) {
            return step;
        }
        // Only the rows that changed since the last look are read (all of them after a view
        // of the history, or when the size changed).
        let before = self.last.as_ref().map(|g| g.state.clone());
        let mut grid = self.last.take().unwrap_or_default();
        let seen = std::mem::take(&mut self.stamps);
        let changed = s.with_view(self.offset, |screen, stamps| {
            let live = screen.view_offset() == 0 && grid.state.view_offset == 0;
            let same = live && seen.len() == stamps.len();
            let rows = grid.refresh(screen, &|r| !same || seen[r] != stamps[r]);
            self.stamps = stamps.to_vec();
            rows
        });
        if s.recording_path().is_some() && !self.history_failed {
            grid.state.history = grid.state.history.max(saturating(s.history_seen()));
        }
        self.bytes = bytes;
        self.sent_at = Some(now);
        let update = grid.update_of(before.as_ref(), &changed, &self.agent);
        self.last = Some(grid);
        match update {
            Some(u) => Step::Send(FromEngine::Screen(u)),
            None => Step::Nothing,
        }
    }
}

impl Shown {
    /// When the view is scrolled back past what the screen keeps and the session records: the
    /// job that makes the view from the recording of the session at `bytes` read (or a wait,
    /// or nothing while one runs).
    fn history_job(&mut self, s: &Arc<Session>, now: Instant, bytes: u64) -> Option<Step> {
        let path = s.recording_path()?;
        if self.offset == 0
            || self.history_failed
            || self.offset <= s.with_screen(|sc| sc.scrollback_len())
        {
            self.history = None;
            return None;
        }
        if self.history_busy {
            return Some(Step::Nothing);
        }
        if let Some(t) = self.history_at {
            if now < t + HISTORY_EVERY {
                return Some(Step::Wait(t + HISTORY_EVERY));
            }
        }
        let size = s.size();
        let history = self
            .history
            .take()
            .filter(|h| h.size() == size && h.path() == path)
            .unwrap_or_else(|| History::new(path, size));
        self.history_busy = true;
        self.bytes = bytes;
        Some(Step::History(Box::new(HistoryJob {
            agent: self.agent.clone(),
            offset: self.offset,
            session: Arc::clone(s),
            history,
        })))
    }

    /// A view of the history came back: what to send.
    fn history_done(&mut self, done: HistoryDone) -> Option<FromEngine> {
        let HistoryDone {
            offset,
            history,
            grid,
            ..
        } = done;
        self.history_busy = false;
        self.history_at = Some(Instant::now());
        if self.offset > 0 {
            self.history = Some(history);
        }
        let grid = match grid {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(agent = %self.agent, "reading the history from the recording failed: {e}");
                self.history_failed = true;
                self.bytes = u64::MAX;
                return None;
            }
        };
        if offset != self.offset {
            self.bytes = u64::MAX;
            return None;
        }
        self.sent_at = Some(Instant::now());
        let update = grid.update_since(self.last.as_ref(), &self.agent);
        self.last = Some(grid);
        // The next live view reads every row.
        self.stamps.clear();
        update.map(FromEngine::Screen)
    }
}

/// Waits until the shown agent's screen changes (forever when nothing is shown, or its
/// session is gone: a snapshot tells when one starts).
async fn screen_changed(shown: &mut Option<Shown>) {
    match shown.as_mut().and_then(|s| s.changes.as_mut()) {
        Some(c) => {
            if c.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

async fn client_task(shared: Arc<Shared>, mut stream: UnixStream) {
    let hello = match handshake(&shared, &mut stream).await {
        Ok(h) => h,
        Err(why) => {
            tracing::warn!("a client was turned away: {why}");
            return;
        }
    };
    let attached = hello.client != "cli";
    let id = {
        let mut c = shared.clients();
        c.next += 1;
        let id = c.next;
        if attached {
            c.map.insert(id, View::default());
        }
        id
    };
    tracing::info!(client = id, kind = %hello.client, "client attached");
    let (mut rd, mut wr) = stream.into_split();
    let (in_tx, mut in_rx) = mpsc::channel::<ToEngine>(64);
    let reader = tokio::spawn(async move {
        loop {
            match read_msg::<_, ToEngine>(&mut rd).await {
                Ok(Some(m)) => {
                    if in_tx.send(m).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(client = id, "dropping a client: {e}");
                    return;
                }
            }
        }
    });
    let why = serve_client(&shared, id, attached, &mut wr, &mut in_rx).await;
    reader.abort();
    tracing::info!(client = id, "client left: {why}");
    if attached {
        shared.clients().map.remove(&id);
        shared.update(id, |_| {}, false);
    }
}

/// What handling one input asks of a client's loop: a message to send, a look at the shown
/// agent's screen, or the end (and why).
#[derive(Default)]
struct Then {
    send: Option<FromEngine>,
    look: bool,
    end: Option<String>,
}

impl Then {
    fn send(m: FromEngine) -> Then {
        Then {
            send: Some(m),
            ..Then::default()
        }
    }

    fn look() -> Then {
        Then {
            look: true,
            ..Then::default()
        }
    }

    fn end(why: impl Into<String>) -> Then {
        Then {
            end: Some(why.into()),
            ..Then::default()
        }
    }
}

/// One client's side of the server: what it shows, when to look at that again, and where the
/// answers of its commands and its history views come back.
struct Client<'a> {
    shared: &'a Shared,
    id: u64,
    /// A cockpit (snapshots, events, screens), not a one-shot CLI request.
    attached: bool,
    shown: Option<Shown>,
    /// When the shown screen is to be looked at again (a frame interval not yet over).
    deadline: Option<Instant>,
    answers: mpsc::Sender<FromEngine>,
    histories: mpsc::Sender<HistoryDone>,
}

impl Client<'_> {
    /// A message from the client.
    fn message(&mut self, m: ToEngine) -> Then {
        let (shared, id) = (self.shared, self.id);
        match m {
            ToEngine::Size { pane, full } => {
                shared.update(
                    id,
                    |v| {
                        v.pane = Some(pane);
                        v.full = full;
                    },
                    true,
                );
                Then::look()
            }
            ToEngine::Show {
                agent,
                full,
                offset,
            } => self.show(agent, full, offset),
            ToEngine::Colors(colors) => {
                shared.update(id, move |v| v.colors = Some(colors), true);
                Then::default()
            }
            ToEngine::Command { id: cmd_id, cmd } => self.command(cmd_id, cmd),
            ToEngine::Status => Then::send(FromEngine::Status(shared.status())),
            ToEngine::Stop => {
                let who = if self.attached {
                    "a cockpit's :stop"
                } else {
                    "gastown-tui down"
                };
                shared.stop_all(format!("stopped by {who}"));
                Then::default()
            }
        }
    }

    /// The client shows `agent` (or nothing), full screen or not, scrolled back `offset` lines.
    fn show(&mut self, agent: Option<String>, full: bool, offset: usize) -> Then {
        let a = agent.clone();
        self.shared.update(
            self.id,
            move |v| {
                v.show = a;
                v.full_screen = full;
            },
            true,
        );
        self.shown = match (self.shown.take(), agent) {
            (Some(mut s), Some(agent)) if s.agent == agent => {
                if s.offset != offset {
                    s.offset = offset;
                    s.bytes = u64::MAX;
                }
                Some(s)
            }
            (_, Some(agent)) => Some(Shown::new(agent, offset)),
            (_, None) => None,
        };
        self.deadline = None;
        Then::look()
    }

    /// A command: keys go straight to the agent's terminal and are answered at once; the rest
    /// goes to the engine's loop, and its answer comes back through `answers`.
    fn command(&mut self, cmd_id: u64, cmd: Command) -> Then {
        if self.attached {
            self.shared.update(self.id, |_| {}, true);
        }
        if let Command::Input { agent, bytes } = &cmd {
            let result = crate::engine::input(&self.shared.sessions, agent, bytes)
                .map_err(|e| Refusal::from(&e));
            return Then::send(FromEngine::Answer { id: cmd_id, result });
        }
        let (tx, rx) = oneshot::channel();
        let req = Request::Command {
            cmd,
            reply: Some(tx),
        };
        if self.shared.requests.send(req).is_err() {
            return Then::end("the engine stopped");
        }
        let answers = self.answers.clone();
        tokio::spawn(async move {
            let result = rx
                .await
                .unwrap_or_else(|_| Err(Refusal::Other("the engine stopped".into())));
            let _ = answers
                .send(FromEngine::Answer { id: cmd_id, result })
                .await;
        });
        Then::default()
    }

    /// A view of the history came back from its job.
    fn history_done(&mut self, done: HistoryDone) -> Then {
        let Some(s) = self.shown.as_mut().filter(|s| s.agent == done.agent) else {
            return Then::default();
        };
        self.deadline = None;
        Then {
            send: s.history_done(done),
            look: true,
            end: None,
        }
    }

    /// The engine published a new snapshot (`Err`: it stopped).
    fn snapshot(
        &mut self,
        changed: std::result::Result<(), watch::error::RecvError>,
        snapshots: &mut watch::Receiver<Snapshot>,
    ) -> Then {
        if changed.is_err() {
            return Then::end("the engine stopped");
        }
        let snap = snapshots.borrow_and_update().clone();
        Then {
            send: Some(FromEngine::Snapshot(Box::new(snap))),
            // The shown agent's session may have started or ended.
            look: self.shown.is_some() && self.deadline.is_none(),
            end: None,
        }
    }

    /// Looks at the shown agent's screen: what to send now, or when to look again, or a view
    /// of its history to make away from the task.
    fn look(&mut self) -> Option<FromEngine> {
        let s = self.shown.as_mut()?;
        self.deadline = None;
        match s.step(&self.shared.sessions) {
            Step::Send(m) => return Some(m),
            Step::Wait(t) => self.deadline = Some(t),
            Step::History(job) => {
                let tx = self.histories.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = tx.blocking_send(job.run());
                });
            }
            Step::Nothing => {}
        }
        None
    }
}

/// An engine event for an attached client (`Closed`: the engine stopped; a client that fell
/// behind misses the events it lagged on, the next snapshot holds their outcome).
fn event_then(e: std::result::Result<Event, broadcast::error::RecvError>) -> Then {
    match e {
        Ok(e) => Then::send(FromEngine::Event(e)),
        Err(broadcast::error::RecvError::Lagged(_)) => Then::default(),
        Err(broadcast::error::RecvError::Closed) => Then::end("the engine stopped"),
    }
}

/// Serves one client until it leaves or the engine stops; returns why it ended.
async fn serve_client(
    shared: &Shared,
    id: u64,
    attached: bool,
    wr: &mut tokio::net::unix::OwnedWriteHalf,
    in_rx: &mut mpsc::Receiver<ToEngine>,
) -> String {
    let mut snapshots = shared.snapshots.clone();
    let mut events = shared.events.subscribe();
    let mut stopping = shared.stopping.subscribe();
    let (answer_tx, mut answers) = mpsc::channel::<FromEngine>(256);
    let (history_tx, mut histories) = mpsc::channel::<HistoryDone>(4);
    let mut c = Client {
        shared,
        id,
        attached,
        shown: None,
        deadline: None,
        answers: answer_tx,
        histories: history_tx,
    };
    if attached {
        let snap = snapshots.borrow_and_update().clone();
        if write_msg(wr, &FromEngine::Snapshot(Box::new(snap)))
            .await
            .is_err()
        {
            return "gone before its first snapshot".into();
        }
    }
    loop {
        let wake = c.deadline.map(tokio::time::Instant::from_std);
        let then = tokio::select! {
            m = in_rx.recv() => match m {
                Some(m) => c.message(m),
                None => Then::end("it hung up"),
            },
            Some(a) = answers.recv() => Then::send(a),
            Some(done) = histories.recv() => c.history_done(done),
            r = snapshots.changed(), if attached => c.snapshot(r, &mut snapshots),
            e = events.recv(), if attached => event_then(e),
            _ = screen_changed(&mut c.shown), if c.deadline.is_none() => Then::look(),
            _ = tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)), if wake.is_some() => {
                c.deadline = None;
                Then::look()
            }
            r = stopping.changed() => {
                let reason = match r {
                    Ok(()) => stopping.borrow().clone().unwrap_or_default(),
                    Err(_) => "the engine stopped".into(),
                };
                let _ = write_msg(wr, &FromEngine::Stopping { reason: reason.clone() }).await;
                return format!("the engine is stopping ({reason})");
            }
        };
        if let Some(why) = then.end {
            return why;
        }
        let looked = if then.look { c.look() } else { None };
        for m in then.send.into_iter().chain(looked) {
            if write_msg(wr, &m).await.is_err() {
                return "its connection broke".into();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(pane: (u16, u16), full: (u16, u16), show: Option<&str>, fs: bool, active: u64) -> View {
        View {
            pane: Some(pane),
            full,
            show: show.map(str::to_string),
            full_screen: fs,
            colors: None,
            active,
        }
    }

    #[test]
    fn agents_are_told_the_colours_of_the_latest_client_that_said_them() {
        use crate::agent::screen::{QueryColors, Rgb};
        let light = QueryColors {
            foreground: Rgb(0, 0, 0),
            background: Rgb(255, 255, 255),
        };
        let mut v = HashMap::new();
        v.insert(1, view((40, 120), (44, 160), None, false, 1));
        assert_eq!(colors_of(&v), None, "nobody said: the sessions keep theirs");
        v.get_mut(&1).unwrap().colors = Some(light);
        v.insert(2, view((20, 60), (23, 80), None, false, 2));
        assert_eq!(colors_of(&v), Some(light), "client 2 said none");
        v.get_mut(&2).unwrap().colors = Some(QueryColors::default());
        assert_eq!(
            colors_of(&v),
            Some(QueryColors::default()),
            "client 2 is the latest"
        );
        v.remove(&2);
        assert_eq!(colors_of(&v), Some(light), "client 2 left");
    }

    #[test]
    fn the_latest_client_sizes_the_panes_and_full_screen_agents_get_their_own() {
        let mut v = HashMap::new();
        assert_eq!(sizes_of(&v), None, "no client: nothing changes");
        v.insert(1, view((40, 120), (44, 160), Some("nux"), false, 1));
        v.insert(2, view((20, 60), (23, 80), Some("nux"), true, 2));
        let (pane, own) = sizes_of(&v).unwrap();
        assert_eq!(pane, (20, 60), "client 2 was used last");
        assert_eq!(
            own.get("nux"),
            Some(&(23, 80)),
            "client 2 shows nux full screen"
        );
        // Client 1 types: its pane size wins; nux stays client 2's full-screen size.
        v.get_mut(&1).unwrap().active = 3;
        let (pane, own) = sizes_of(&v).unwrap();
        assert_eq!(pane, (40, 120));
        assert_eq!(own.get("nux"), Some(&(23, 80)));
        // Both full screen on nux: the most recent one's size.
        v.get_mut(&1).unwrap().full_screen = true;
        assert_eq!(sizes_of(&v).unwrap().1.get("nux"), Some(&(44, 160)));
        // A client that has not said its size does not count.
        v.insert(
            3,
            View {
                active: 9,
                ..View::default()
            },
        );
        assert_eq!(sizes_of(&v).unwrap().0, (40, 120));
    }
}
