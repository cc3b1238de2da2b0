//! The cockpit's event loop: a client of the town's engine. It owns the terminal and the
//! connection; it sends the engine its sizes, the agent it shows and the user's commands, and
//! redraws from the snapshots and screen updates the engine sends, only when something
//! visible changed and at most once per frame interval. When the engine goes away it says so
//! and reconnects as soon as one answers again.

use super::app::{Action, App, Dialog, Mode};
use super::layout::Areas;
use super::term::Pane;
use super::theme::Theme;
use super::view;
use crate::agent::screen::QueryColors;
use crate::engine::{Command, Event as EngineEvent};
use crate::server::client::{self, Connection};
use crate::server::protocol::{FromEngine, ToEngine};
use crate::town::Town;
use crate::{Error, Result};
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    KeyEventKind,
};
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// At most this many frames a second.
const FRAME: Duration = Duration::from_millis(16);
/// Screens of the shown agent that come this soon after a key are drawn at once (they answer
/// it: an echo, a redraw); later ones wait for the frame interval.
const ANSWER_WINDOW: Duration = Duration::from_millis(100);
/// The panels show times in state; redraw at least this often.
const CLOCK_TICK: Duration = Duration::from_secs(1);
/// While the engine is gone, look for it this often.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);
/// After showing another agent, how long a frame waits for that agent's screen so that its
/// header and its terminal appear together (the engine holds a screen inside a synchronized
/// update for up to 100 ms; a local round trip is about a millisecond).
const SCREEN_WAIT: Duration = Duration::from_millis(120);
/// How long the first snapshot may take.
const FIRST_SNAPSHOT: Duration = Duration::from_secs(15);

/// Which cockpit to open.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// The whole cockpit.
    Cockpit,
    /// The demo's cockpit: leaving asks whether to stop the demo town.
    Demo,
    /// One agent's terminal, full screen (`gastown-tui attach AGENT`).
    Attach(String),
}

/// How the cockpit ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Detached: the engine (pid, when one was connected) keeps `running` agents going.
    Detached { running: usize, pid: Option<u32> },
    /// The user stopped the engine (pid) and its agents.
    Stopped { pid: u32 },
    /// Someone else stopped the engine (why).
    StoppedElsewhere { reason: String },
}

/// Restores the terminal however the loop ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = crossterm::execute!(
            std::io::stdout(),
            DisableBracketedPaste,
            DisableMouseCapture
        );
        ratatui::restore();
    }
}

/// Opens the cockpit on `town`, starting its engine first when none answers, and runs until
/// the user detaches or the engine stops.
pub fn run(town: Town, kind: Kind) -> Result<Outcome> {
    let theme = Theme::from_env(&town.config.theme, Some(&town.root.join("themes")))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::io("start", "the tokio runtime", e))?;
    rt.block_on(cockpit(town, theme, kind))
}

/// The live connection: where commands go, where the engine's messages come from. Both
/// directions have a task of their own, so the cockpit's loop never waits on the socket (an
/// engine slow to read cannot freeze the keys, nor can the two sides block each other).
struct Link {
    tx: mpsc::UnboundedSender<ToEngine>,
    rx: mpsc::Receiver<FromEngine>,
    pid: u32,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl Link {
    fn start(c: Connection) -> Link {
        let Connection {
            mut rd,
            mut wr,
            welcome,
            ..
        } = c;
        let (tx, rx) = mpsc::channel(256);
        let reader = tokio::spawn(async move {
            while let Ok(Some(m)) =
                crate::server::protocol::read_msg::<_, FromEngine>(&mut rd).await
            {
                if tx.send(m).await.is_err() {
                    return;
                }
            }
        });
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ToEngine>();
        let writer = tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if crate::server::protocol::write_msg(&mut wr, &m)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Link {
            tx: out_tx,
            rx,
            pid: welcome.pid,
            reader,
            writer,
        }
    }

    /// Queues `m` for the engine; false once the connection is broken.
    fn send(&self, m: ToEngine) -> bool {
        self.tx.send(m).is_ok()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// The agent the engine was last asked to show.
fn shown(sent: &Option<(Option<String>, bool, usize)>) -> Option<&String> {
    sent.as_ref().and_then(|(agent, _, _)| agent.as_ref())
}

fn client_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Attach(_) => "attach",
        _ => "cockpit",
    }
}

/// What the engine was last told: the sizes it draws for, its theme's colours, and the agent
/// shown (with drill-down and scroll offset).
#[derive(Default)]
struct Sent {
    size: Option<((u16, u16), (u16, u16))>,
    show: Option<(Option<String>, bool, usize)>,
    colors: Option<QueryColors>,
}

/// The cockpit's loop state: the app, the link to the engine, the screens it sent, and when to
/// draw.
struct Loop {
    town: Town,
    kind: Kind,
    themes_dir: std::path::PathBuf,
    theme: Theme,
    app: App,
    link: Option<Link>,
    grids: HashMap<String, Pane>,
    areas: Areas,
    dirty: bool,
    /// Drawn at once, not at the next frame interval: what a key did, and the screens that
    /// answer it (the newly shown agent's, an echo).
    urgent: bool,
    typed_at: Option<Instant>,
    last_draw: Instant,
    sent: Sent,
    /// Until when frames wait for the newly shown agent's first screen.
    screen_due: Option<Instant>,
    /// Commands waiting for their answer: what to do with it.
    pending: HashMap<u64, Command>,
    next_id: u64,
    last_pid: Option<u32>,
    started_tx: mpsc::Sender<Result<()>>,
}

type Terminal = ratatui::DefaultTerminal;

async fn cockpit(town: Town, theme: Theme, kind: Kind) -> Result<Outcome> {
    let (conn, _) = client::connect_or_start(&town, client_name(&kind)).await?;
    let mut link = Link::start(conn);
    let snapshot = loop {
        match tokio::time::timeout(FIRST_SNAPSHOT, link.rx.recv()).await {
            Ok(Some(FromEngine::Snapshot(s))) => break *s,
            Ok(Some(_)) => continue,
            Ok(None) => return Err(Error::EngineLost("the engine closed the connection".into())),
            Err(_) => return Err(Error::EngineLost("the engine sent no snapshot".into())),
        }
    };
    let mut app = match &kind {
        Kind::Attach(agent) => {
            if !snapshot.agents.iter().any(|a| a.agent.name == *agent) {
                return Err(Error::NotFound {
                    kind: "agent",
                    id: agent.clone(),
                });
            }
            App::attached(snapshot, agent)
        }
        _ => App::new(snapshot),
    };
    app.demo = kind == Kind::Demo;

    // Keys, mouse and resizes come from a plain thread blocking on the terminal.
    let (input_tx, mut input_rx) = mpsc::unbounded_channel::<Event>();
    std::thread::Builder::new()
        .name("cockpit-input".into())
        .spawn(move || loop {
            match crossterm::event::read() {
                Ok(ev) => {
                    if input_tx.send(ev).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        })
        .map_err(|e| Error::io("start", "the input thread", e))?;

    let mut terminal = ratatui::try_init().map_err(|e| Error::io("open", "the terminal", e))?;
    let _guard = TerminalGuard;
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture, EnableBracketedPaste);

    let (started_tx, mut started_rx) = mpsc::channel::<Result<()>>(1);
    let mut l = Loop {
        themes_dir: town.root.join("themes"),
        town,
        kind,
        theme,
        app,
        last_pid: Some(link.pid),
        link: Some(link),
        grids: HashMap::new(),
        areas: Areas::default(),
        dirty: true,
        urgent: false,
        typed_at: None,
        last_draw: Instant::now() - FRAME,
        sent: Sent::default(),
        screen_due: None,
        pending: HashMap::new(),
        next_id: 0,
        started_tx,
    };
    loop {
        let size = terminal
            .size()
            .map_err(|e| Error::io("read", "the terminal size", e))?;
        l.tell_engine(ratatui::layout::Rect::new(0, 0, size.width, size.height));
        l.draw_if_due(&mut terminal)?;
        let timer = l.timer();
        let from_engine = async {
            match l.link.as_mut() {
                Some(link) => link.rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            Some(ev) = input_rx.recv() => l.on_input(ev, &mut terminal).await,
            msg = from_engine => l.on_engine(msg),
            Some(r) = started_rx.recv() => {
                l.dirty = true;
                if let Err(e) = r {
                    l.app.notice = Some(e.to_string());
                }
                None
            }
            _ = tokio::time::sleep(timer) => {
                l.on_timer().await;
                None
            }
        };
        if let Some(outcome) = outcome {
            return Ok(outcome);
        }
    }
}

impl Loop {
    /// Tells the engine what changed since it was last told: the sizes for `full`, the
    /// theme's colours, the agent shown.
    fn tell_engine(&mut self, full: ratatui::layout::Rect) {
        let Some(l) = self.link.as_mut() else {
            self.screen_due = None;
            return;
        };
        let want = (
            view::terminal_size(full, false),
            view::terminal_size(full, true),
        );
        let mut ok = true;
        if self.sent.size != Some(want) {
            self.sent.size = Some(want);
            ok &= l.send(ToEngine::Size {
                pane: want.0,
                full: want.1,
            });
        }
        let colors = self.theme.query_colors();
        if self.sent.colors != Some(colors) {
            self.sent.colors = Some(colors);
            ok &= l.send(ToEngine::Colors(colors));
        }
        let drill = self.app.mode == Mode::DrillDown;
        let show = (
            self.app.selected_agent().map(|a| a.agent.name.clone()),
            drill,
            if drill { self.app.term_scroll } else { 0 },
        );
        if self.sent.show.as_ref() != Some(&show) {
            self.grids
                .retain(|k, _| show.0.as_deref() == Some(k.as_str()));
            self.screen_due = show
                .0
                .as_ref()
                .filter(|a| !self.grids.contains_key(*a))
                .map(|_| Instant::now() + SCREEN_WAIT);
            self.sent.show = Some(show.clone());
            ok &= l.send(ToEngine::Show {
                agent: show.0,
                full: show.1,
                offset: show.2,
            });
            self.dirty = true;
        }
        if !ok {
            self.link_broke();
        }
        if self.link.is_none() || self.screen_due.is_some_and(|t| Instant::now() >= t) {
            self.screen_due = None;
        }
    }

    fn link_broke(&mut self) {
        self.link = None;
        self.app.engine_gone = Some("the engine's connection broke".into());
        self.dirty = true;
    }

    /// Draws when something visible changed, at most once per frame interval (at once when
    /// urgent), and not while the newly shown agent's screen is still on its way.
    fn draw_if_due(&mut self, terminal: &mut Terminal) -> Result<()> {
        if !(self.dirty
            && (self.urgent || self.last_draw.elapsed() >= FRAME)
            && self.screen_due.is_none())
        {
            return Ok(());
        }
        let _ = crossterm::queue!(std::io::stdout(), BeginSynchronizedUpdate);
        self.draw(terminal)?;
        let _ = crossterm::execute!(std::io::stdout(), EndSynchronizedUpdate);
        let _ = std::io::stdout().flush();
        self.last_draw = Instant::now();
        self.dirty = false;
        self.urgent = false;
        Ok(())
    }

    fn draw(&mut self, terminal: &mut Terminal) -> Result<()> {
        let (app, grids, theme, areas) = (&self.app, &self.grids, &self.theme, &mut self.areas);
        terminal
            .draw(|f| *areas = view::draw(f, app, grids, theme))
            .map_err(|e| Error::io("draw", "the terminal", e))?;
        Ok(())
    }

    /// How long the loop may sleep: until the awaited screen is due, the next frame, the next
    /// look for a gone engine, or (once a second) the clocks in the panels moving on.
    fn timer(&self) -> Duration {
        if let Some(due) = self.screen_due {
            due.saturating_duration_since(Instant::now())
        } else if self.dirty {
            FRAME.saturating_sub(self.last_draw.elapsed())
        } else if self.link.is_none() {
            RECONNECT_EVERY
        } else {
            CLOCK_TICK.saturating_sub(self.last_draw.elapsed())
        }
        .max(Duration::from_millis(1))
    }

    /// A key, a click, a paste or a resize: the app decides what it means; its actions are
    /// carried out here.
    async fn on_input(&mut self, ev: Event, terminal: &mut Terminal) -> Option<Outcome> {
        self.dirty = true;
        self.urgent = true;
        self.typed_at = Some(Instant::now());
        let actions = on_input(&mut self.app, ev, &self.areas, &self.grids);
        for action in actions {
            if let Some(outcome) = self.act(action, terminal).await {
                return Some(outcome);
            }
        }
        if let Some(name) = self
            .app
            .notice
            .as_deref()
            .and_then(|n| n.strip_prefix("theme:"))
        {
            let name = name.to_string();
            match Theme::load(&name, Some(&self.themes_dir)) {
                Ok(t) => {
                    self.theme = t;
                    self.app.notice = Some(format!("theme {name}"));
                }
                Err(e) => self.app.notice = Some(e.to_string()),
            }
        }
        None
    }

    async fn act(&mut self, action: Action, terminal: &mut Terminal) -> Option<Outcome> {
        match action {
            Action::Detach => Some(Outcome::Detached {
                running: self.app.running(),
                pid: self.link.as_ref().map(|l| l.pid),
            }),
            Action::StopEngine => {
                let Some(mut l) = self.link.take() else {
                    self.app.notice = Some("the engine is not running".into());
                    return None;
                };
                let pid = l.pid;
                self.app.notice = Some("stopping the engine and its agents…".into());
                self.app.mode = Mode::Normal;
                let _ = self.draw(terminal);
                if l.send(ToEngine::Stop) {
                    // Until it closes the connection (its agents have stopped).
                    while l.rx.recv().await.is_some() {}
                }
                drop(l);
                wait_gone(&self.town, pid).await;
                Some(Outcome::Stopped { pid })
            }
            Action::StartEngine => {
                let (town, tx) = (self.town.clone(), self.started_tx.clone());
                tokio::spawn(async move {
                    let r = client::start(&town, "cli").await.map(|_| ());
                    let _ = tx.send(r).await;
                });
                None
            }
            Action::Engine(cmd) => {
                match self.link.as_mut() {
                    Some(l) => {
                        self.next_id += 1;
                        self.pending.insert(self.next_id, cmd.clone());
                        if !l.send(ToEngine::Command {
                            id: self.next_id,
                            cmd,
                        }) {
                            self.link_broke();
                        }
                    }
                    None => {
                        self.app.notice =
                            Some("the engine is gone: nothing was sent (r starts it)".into())
                    }
                }
                None
            }
        }
    }

    /// A message from the engine (`None`: the connection closed).
    fn on_engine(&mut self, msg: Option<FromEngine>) -> Option<Outcome> {
        self.dirty = true;
        let app = &mut self.app;
        match msg {
            None => {
                self.link = None;
                self.grids.clear();
                app.engine_gone = Some(match self.last_pid {
                    Some(pid) => format!("the engine (pid {pid}) is gone"),
                    None => "the engine is gone".into(),
                });
            }
            Some(FromEngine::Snapshot(s)) => app.set_snapshot(*s),
            Some(FromEngine::Screen(u)) => {
                let agent = u.agent.clone();
                if shown(&self.sent.show) == Some(&agent) {
                    self.urgent |= self.screen_due.is_some()
                        || self.typed_at.is_some_and(|t| t.elapsed() < ANSWER_WINDOW);
                    self.screen_due = None;
                }
                let g = self.grids.entry(agent).or_default();
                g.apply(u);
                app.term_scroll = app.term_scroll.min(g.grid().state.history);
            }
            Some(FromEngine::NoScreen { agent }) => {
                if shown(&self.sent.show) == Some(&agent) {
                    self.urgent |= self.screen_due.is_some();
                    self.screen_due = None;
                }
                self.grids.remove(&agent);
            }
            Some(FromEngine::Answer { id, result }) => match (self.pending.remove(&id), result) {
                (Some(Command::Diff { agent }), Ok(Some(text))) => {
                    app.mode = Mode::Dialog(Dialog::Diff {
                        agent,
                        text,
                        scroll: 0,
                    });
                }
                (Some(Command::Sling { .. }), Ok(Some(said))) => app.notice = Some(said),
                (Some(cmd), Err(refused)) => {
                    app.notice = Some(format!("{}: {refused}", cmd.subject()));
                }
                _ => {}
            },
            Some(FromEngine::Event(EngineEvent::Failed { agent, message })) => {
                app.notice = Some(if agent.is_empty() {
                    message
                } else {
                    format!("{agent}: {message}")
                });
            }
            Some(FromEngine::Event(EngineEvent::Attention { text, bell, .. })) => {
                if bell {
                    ring(&text);
                }
                app.notice = Some(text);
            }
            Some(FromEngine::Event(_)) | Some(FromEngine::Status(_)) => {}
            Some(FromEngine::Stopping { reason }) => {
                return Some(Outcome::StoppedElsewhere { reason });
            }
        }
        None
    }

    /// Nothing happened for a while: look for a gone engine again; let the clocks move on.
    async fn on_timer(&mut self) {
        if self.link.is_none() {
            match client::connect(&self.town, client_name(&self.kind)).await {
                Ok(Some(c)) => {
                    let l = Link::start(c);
                    self.app.notice = Some(format!("reconnected to the engine (pid {})", l.pid));
                    self.last_pid = Some(l.pid);
                    self.link = Some(l);
                    self.app.engine_gone = None;
                    self.sent = Sent::default();
                    self.pending.clear();
                    self.dirty = true;
                }
                Ok(None) => {}
                Err(e) => {
                    self.app.engine_gone = Some(e.to_string());
                    self.dirty = true;
                }
            }
        }
        if self.last_draw.elapsed() >= CLOCK_TICK {
            self.dirty = true;
        }
    }
}

/// Rings the user's terminal and asks it for a desktop notification (OSC 9, as iTerm2,
/// WezTerm, kitty and Windows Terminal take it; OSC 777, as VTE terminals and foot do), between
/// frames. Terminals that know neither ignore them.
fn ring(text: &str) {
    let mut out = std::io::stdout();
    let _ = out.write_all(ring_bytes(text).as_bytes());
    let _ = out.flush();
}

/// The bell and the two notifications for `text` (control characters and the OSC 777
/// separator taken out, at most 200 characters).
fn ring_bytes(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() || c == ';' { ' ' } else { c })
        .take(200)
        .collect();
    format!("\x07\x1b]9;gastown-tui: {clean}\x1b\\\x1b]777;notify;gastown-tui;{clean}\x1b\\")
}

/// Turns one terminal event into the app's actions (keys encoded the way the shown program
/// wants them).
fn on_input(app: &mut App, ev: Event, areas: &Areas, grids: &HashMap<String, Pane>) -> Vec<Action> {
    let shown = |app: &App| {
        app.selected_agent()
            .and_then(|a| grids.get(&a.agent.name))
            .map(|g| g.grid().state.clone())
    };
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => {
            let mut actions = app.on_key(k);
            // Arrow keys in application-cursor mode (vim, less) are ESC O x.
            let app_cursor = shown(app).is_some_and(|s| s.application_cursor);
            for a in &mut actions {
                if let Action::Engine(Command::Input { bytes, .. }) = a {
                    if app_cursor && bytes.len() == 3 && bytes[0] == 0x1b && bytes[1] == b'[' {
                        bytes[1] = b'O';
                    }
                }
            }
            actions
        }
        Event::Mouse(m) => app.on_mouse(m, areas),
        Event::Paste(text) => {
            if let (Mode::DrillDown, Some(a)) = (&app.mode, app.selected_agent()) {
                let agent = a.agent.name.clone();
                let bracketed = shown(app).is_some_and(|s| s.bracketed_paste);
                let mut bytes = Vec::new();
                if bracketed {
                    bytes.extend_from_slice(b"\x1b[200~");
                }
                bytes.extend_from_slice(text.as_bytes());
                if bracketed {
                    bytes.extend_from_slice(b"\x1b[201~");
                }
                return vec![Action::Engine(Command::Input { agent, bytes })];
            } else if let Mode::Dialog(Dialog::Nudge { input, .. }) = &mut app.mode {
                input.push_str(&crate::engine::nudge::sanitize(&text));
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// Waits (a while) for the engine `pid` to have exited.
async fn wait_gone(town: &Town, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while client::lock_holder(town) == Some(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::ring_bytes;

    #[test]
    fn a_ring_is_a_bell_and_two_desktop_notifications_with_the_text_made_safe() {
        let b = ring_bytes("nux is stalled;\x1b]0;evil\x07 now");
        assert!(b.starts_with('\x07'), "{b:?}");
        assert!(
            b.contains("\x1b]9;gastown-tui: nux is stalled  ]0 evil  now\x1b\\"),
            "{b:?}"
        );
        assert!(
            b.contains("\x1b]777;notify;gastown-tui;nux is stalled  ]0 evil  now\x1b\\"),
            "{b:?}"
        );
        // Only the two OSC introducers and their two terminators: nothing the text smuggled in.
        assert_eq!(b.matches('\x1b').count(), 4, "{b:?}");
        assert_eq!(b.matches('\x07').count(), 1);
        assert!(ring_bytes(&"x".repeat(500)).len() < 2 * 200 + 60);
    }
}
