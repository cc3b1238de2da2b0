//! The cockpit's state and how keys change it. Pure: no terminal, no engine, no store. A key
//! becomes zero or more `Action`s for the event loop (engine commands, quitting), so every key
//! binding is testable on its own.

use super::layout::{self, Areas};
use crate::engine::{AgentView, Command, Snapshot};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

/// The panels that take focus with `tab`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Agents,
    Convoys,
    MergeQueue,
    Witness,
    Feed,
}

impl Focus {
    pub const ORDER: [Focus; 5] = [
        Focus::Agents,
        Focus::Convoys,
        Focus::MergeQueue,
        Focus::Witness,
        Focus::Feed,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Focus::Agents => "Agents",
            Focus::Convoys => "Convoys",
            Focus::MergeQueue => "Merge queue",
            Focus::Witness => "Witness",
            Focus::Feed => "Feed",
        }
    }
}

/// The steps of the sling dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlingStep {
    /// Fuzzy-filter the ready beads and pick one.
    Bead,
    /// Pick the rig.
    Rig,
    /// Pick the runtime (the first entry is the town's default).
    Runtime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlingDialog {
    pub step: SlingStep,
    /// The fuzzy filter typed in the bead step.
    pub filter: String,
    /// Index into the current step's (filtered) list.
    pub selected: usize,
    pub bead: Option<String>,
    pub rig: Option<String>,
}

/// A dialog over the cockpit; it takes every key until closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    Sling(SlingDialog),
    Nudge {
        agent: String,
        input: String,
    },
    /// The `:` command line; `selected` picks among completions with tab.
    Command {
        input: String,
        selected: Option<usize>,
    },
    /// The keys of the panel that was focused.
    Help {
        focus: Focus,
    },
    /// `:stop`: stop the engine and its agents?
    ConfirmStop {
        running: usize,
    },
    /// `F`: freeze every agent?
    ConfirmFreeze {
        agents: usize,
    },
    /// Leaving the demo: leave its town running, or stop it?
    LeaveDemo {
        running: usize,
    },
    /// An agent's diff against its base branch; `scroll` is the first line shown.
    Diff {
        agent: String,
        text: String,
        scroll: usize,
    },
    /// An error or a notice that needs acknowledging.
    Message {
        title: String,
        text: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Editing the agents filter (`/`).
    Filter,
    /// The selected agent's terminal full screen; keys go to the agent.
    DrillDown,
    Dialog(Dialog),
}

/// What the event loop must do for a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Engine(Command),
    /// Close the cockpit; the agents keep running in the engine.
    Detach,
    /// Stop the engine and its agents (their hooks stay), then close.
    StopEngine,
    /// Start the town's engine again (it is gone).
    StartEngine,
}

/// The key that leaves the drill-down view (and copy mode), by default `ctrl-]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscapeKey {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl Default for EscapeKey {
    fn default() -> Self {
        EscapeKey {
            code: KeyCode::Char(']'),
            modifiers: KeyModifiers::CONTROL,
        }
    }
}

impl EscapeKey {
    pub fn matches(&self, k: &KeyEvent) -> bool {
        // Terminals send ctrl-] as 0x1d, which crossterm reports as ctrl-5 or ctrl-].
        k.modifiers.contains(self.modifiers)
            && (k.code == self.code
                || (self.code == KeyCode::Char(']') && k.code == KeyCode::Char('5')))
    }

    pub fn label(&self) -> String {
        let key = match self.code {
            KeyCode::Char(c) => c.to_string(),
            other => format!("{other:?}").to_lowercase(),
        };
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            format!("ctrl-{key}")
        } else {
            key
        }
    }
}

/// Everything the cockpit shows, and the cursor state of each panel.
#[derive(Debug, Clone)]
pub struct App {
    pub snapshot: Snapshot,
    pub focus: Focus,
    pub mode: Mode,
    /// Index into `visible_agents()`.
    pub selected: usize,
    /// The agents filter (`/`): case-insensitive substring of name, rig, role or bead.
    pub filter: String,
    /// First line shown in the convoys, merge-queue and feed panels.
    pub convoy_scroll: usize,
    pub mq_scroll: usize,
    /// Lines up from the newest event (0: follow the newest).
    pub feed_scroll: usize,
    /// Lines scrolled back in the terminal view (0: live).
    pub term_scroll: usize,
    /// A transient line for the status bar (errors, confirmations).
    pub notice: Option<String>,
    pub escape: EscapeKey,
    /// `attach AGENT`: only this agent, full screen; the escape key detaches.
    pub only: Option<String>,
    /// The demo's cockpit: leaving asks whether to stop the demo town.
    pub demo: bool,
    /// Set while the engine does not answer: why (the cockpit keeps trying to reconnect).
    pub engine_gone: Option<String>,
}

/// The `:` commands, for completion and help.
pub const COMMANDS: &[(&str, &str)] = &[
    ("sling", "sling BEAD RIG [RUNTIME]"),
    ("nudge", "nudge AGENT TEXT..."),
    ("kill", "kill AGENT"),
    ("restart", "restart AGENT"),
    ("handoff", "handoff AGENT"),
    ("convoy", "convoy: focus the convoys panel"),
    ("mail", "mail: show unread mail count"),
    ("theme", "theme NAME (default, light, mono)"),
    (
        "freeze",
        "freeze [AGENT]: stop it in place (no name: every agent, asks)",
    ),
    ("thaw", "thaw [AGENT]: resume it (no name: every agent)"),
    ("stop", "stop: stop the engine (asks)"),
    ("quit", "quit: detach (agents run on)"),
];

impl App {
    pub fn new(snapshot: Snapshot) -> App {
        App {
            snapshot,
            focus: Focus::Agents,
            mode: Mode::Normal,
            selected: 0,
            filter: String::new(),
            convoy_scroll: 0,
            mq_scroll: 0,
            feed_scroll: 0,
            term_scroll: 0,
            notice: None,
            escape: EscapeKey::default(),
            only: None,
            demo: false,
            engine_gone: None,
        }
    }

    /// The app of `attach AGENT`: that agent's terminal, full screen.
    pub fn attached(snapshot: Snapshot, agent: &str) -> App {
        let mut app = App::new(snapshot);
        app.only = Some(agent.to_string());
        app.mode = Mode::DrillDown;
        app
    }

    /// The agents the list shows, after the filter.
    pub fn visible_agents(&self) -> Vec<&AgentView> {
        let f = self.filter.to_lowercase();
        self.snapshot
            .agents
            .iter()
            .filter(|a| self.only.as_ref().is_none_or(|only| a.agent.name == *only))
            .filter(|a| {
                f.is_empty()
                    || a.agent.name.to_lowercase().contains(&f)
                    || a.agent.rig.to_lowercase().contains(&f)
                    || a.agent.role.to_lowercase().contains(&f)
                    || a.agent
                        .hooked_bead
                        .as_deref()
                        .is_some_and(|b| b.to_lowercase().contains(&f))
            })
            .collect()
    }

    /// The selected agent, if the list is not empty.
    pub fn selected_agent(&self) -> Option<&AgentView> {
        let v = self.visible_agents();
        v.get(self.selected.min(v.len().saturating_sub(1))).copied()
    }

    /// Agents that need a human: waiting for input or permission, stalled, or dead.
    pub fn attention(&self) -> usize {
        self.snapshot
            .agents
            .iter()
            .filter(|a| {
                matches!(
                    a.agent.state.as_str(),
                    "waiting" | "stalled" | "dead" | "zombie"
                )
            })
            .count()
    }

    pub fn running(&self) -> usize {
        self.snapshot.agents.iter().filter(|a| a.running).count()
    }

    /// Takes a new snapshot, keeping the selection on the same agent when it is still there.
    pub fn set_snapshot(&mut self, snapshot: Snapshot) {
        let keep = self.selected_agent().map(|a| a.agent.name.clone());
        self.snapshot = snapshot;
        if let Some(name) = keep {
            if let Some(i) = self
                .visible_agents()
                .iter()
                .position(|a| a.agent.name == name)
            {
                self.selected = i;
            }
        }
        let n = self.visible_agents().len();
        if self.selected >= n {
            self.selected = n.saturating_sub(1);
        }
    }

    /// Ready beads matching the sling filter (fuzzy: the filter's characters in order).
    pub fn sling_beads(&self, filter: &str) -> Vec<&crate::engine::BeadBrief> {
        self.snapshot
            .ready
            .iter()
            .filter(|b| fuzzy(filter, &format!("{} {}", b.id, b.title)))
            .collect()
    }

    /// Runtimes in the order the sling dialog offers them: the default first.
    pub fn sling_runtimes(&self) -> Vec<String> {
        let mut v = vec![self.snapshot.default_runtime.clone()];
        for r in &self.snapshot.runtimes {
            if *r != self.snapshot.default_runtime {
                v.push(r.clone());
            }
        }
        v
    }

    /// Where the sling dialog's runtime cursor starts: the first runtime that is installed.
    pub fn first_installed_runtime(&self) -> usize {
        self.sling_runtimes()
            .iter()
            .position(|r| !self.snapshot.runtimes_missing.contains(r))
            .unwrap_or(0)
    }

    /// Completions for the command line's current word.
    pub fn completions(&self, input: &str) -> Vec<String> {
        let words: Vec<&str> = input.split(' ').collect();
        let last = words.last().copied().unwrap_or("");
        let candidates: Vec<String> = match words.len() {
            0 | 1 => COMMANDS.iter().map(|(c, _)| c.to_string()).collect(),
            2 => match words[0] {
                "sling" => self.snapshot.ready.iter().map(|b| b.id.clone()).collect(),
                "nudge" | "kill" | "restart" | "handoff" => self
                    .snapshot
                    .agents
                    .iter()
                    .map(|a| a.agent.name.clone())
                    .collect(),
                "theme" => ["default", "light", "mono"].map(String::from).to_vec(),
                _ => Vec::new(),
            },
            3 if words[0] == "sling" => self.snapshot.rigs.clone(),
            // Installed runtimes first: one whose program is missing cannot start.
            4 if words[0] == "sling" => {
                let (mut ok, missing): (Vec<String>, Vec<String>) = self
                    .snapshot
                    .runtimes
                    .iter()
                    .cloned()
                    .partition(|r| !self.snapshot.runtimes_missing.contains(r));
                ok.extend(missing);
                ok
            }
            _ => Vec::new(),
        };
        candidates
            .into_iter()
            .filter(|c| c.starts_with(last))
            .collect()
    }

    fn move_selection(&mut self, delta: isize) {
        let agents = self.visible_agents().len();
        let (pos, len) = match self.focus {
            Focus::Agents => (&mut self.selected, agents),
            Focus::Convoys => (&mut self.convoy_scroll, self.snapshot.convoys.len()),
            Focus::MergeQueue => (&mut self.mq_scroll, self.snapshot.merge_requests.len()),
            Focus::Feed => (&mut self.feed_scroll, self.snapshot.feed.len()),
            Focus::Witness => return,
        };
        // The feed scrolls up from the newest: k (up) goes back in time.
        let delta = if self.focus == Focus::Feed {
            -delta
        } else {
            delta
        };
        let max = len.saturating_sub(1) as isize;
        *pos = (*pos as isize + delta).clamp(0, max.max(0)) as usize;
    }

    fn cycle_focus(&mut self, back: bool) {
        let i = Focus::ORDER
            .iter()
            .position(|f| *f == self.focus)
            .unwrap_or(0);
        let n = Focus::ORDER.len();
        self.focus = Focus::ORDER[if back { (i + n - 1) % n } else { (i + 1) % n }];
    }

    /// Handles one key; returns what the event loop must do.
    pub fn on_key(&mut self, k: KeyEvent) -> Vec<Action> {
        match self.mode.clone() {
            Mode::DrillDown => self.key_drill_down(k),
            Mode::Filter => {
                self.key_filter(k);
                Vec::new()
            }
            Mode::Dialog(d) => self.key_dialog(d, k),
            Mode::Normal => self.key_normal(k),
        }
    }

    fn key_normal(&mut self, k: KeyEvent) -> Vec<Action> {
        self.notice = None;
        let agent = self.selected_agent().map(|a| a.agent.name.clone());
        match k.code {
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                return self.leave();
            }
            KeyCode::Char('q') => return self.leave(),
            KeyCode::Char('r') if self.engine_gone.is_some() => {
                self.notice = Some("starting the engine…".into());
                return vec![Action::StartEngine];
            }
            KeyCode::Char('j') | KeyCode::Down => self.move_selection(1),
            KeyCode::Char('k') | KeyCode::Up => self.move_selection(-1),
            KeyCode::Char('g') | KeyCode::Home => self.move_selection(-100_000),
            KeyCode::Char('G') | KeyCode::End => self.move_selection(100_000),
            KeyCode::Tab => self.cycle_focus(false),
            KeyCode::BackTab => self.cycle_focus(true),
            KeyCode::Enter => match &agent {
                Some(_) if self.selected_agent().is_some_and(|a| a.running) => {
                    self.term_scroll = 0;
                    self.mode = Mode::DrillDown;
                }
                Some(name) => self.notice = Some(format!("{name} has no running session")),
                None => self.notice = Some("no agent selected".into()),
            },
            KeyCode::Char('s') => {
                self.mode = Mode::Dialog(Dialog::Sling(SlingDialog {
                    step: SlingStep::Bead,
                    filter: String::new(),
                    selected: 0,
                    bead: None,
                    rig: None,
                }))
            }
            KeyCode::Char('n') => match agent {
                Some(agent) => {
                    self.mode = Mode::Dialog(Dialog::Nudge {
                        agent,
                        input: String::new(),
                    })
                }
                None => self.notice = Some("no agent selected to nudge".into()),
            },
            KeyCode::Char('d') => match agent {
                Some(agent) => return vec![Action::Engine(Command::Diff { agent })],
                None => self.notice = Some("no agent selected".into()),
            },
            KeyCode::Char(':') => {
                self.mode = Mode::Dialog(Dialog::Command {
                    input: String::new(),
                    selected: None,
                })
            }
            KeyCode::Char('/') => self.mode = Mode::Filter,
            KeyCode::Char('?') => self.mode = Mode::Dialog(Dialog::Help { focus: self.focus }),
            KeyCode::Char('F') => return self.ask_freeze(),
            KeyCode::Esc => self.filter.clear(),
            _ => {}
        }
        Vec::new()
    }

    /// `q`: detach at once (nothing stops); the demo asks whether to stop its town.
    fn leave(&mut self) -> Vec<Action> {
        if self.demo && self.engine_gone.is_none() {
            self.mode = Mode::Dialog(Dialog::LeaveDemo {
                running: self.running(),
            });
            return Vec::new();
        }
        vec![Action::Detach]
    }

    /// `:stop`: asks first.
    fn ask_freeze(&mut self) -> Vec<Action> {
        if self.engine_gone.is_some() {
            self.notice = Some(
                "the engine is not running (gastown-tui freeze --all works without it)".into(),
            );
            return Vec::new();
        }
        self.mode = Mode::Dialog(Dialog::ConfirmFreeze {
            agents: self.snapshot.agents.len(),
        });
        Vec::new()
    }

    fn ask_stop(&mut self) -> Vec<Action> {
        if self.engine_gone.is_some() {
            self.notice = Some("the engine is not running".into());
            return Vec::new();
        }
        self.mode = Mode::Dialog(Dialog::ConfirmStop {
            running: self.running(),
        });
        Vec::new()
    }

    fn key_filter(&mut self, k: KeyEvent) {
        match k.code {
            KeyCode::Enter => self.mode = Mode::Normal,
            KeyCode::Esc => {
                self.filter.clear();
                self.mode = Mode::Normal;
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
                self.filter.push(c);
                self.selected = 0;
            }
            _ => {}
        }
    }

    fn key_drill_down(&mut self, k: KeyEvent) -> Vec<Action> {
        if self.escape.matches(&k) && self.only.is_some() {
            return vec![Action::Detach];
        }
        if self.escape.matches(&k) {
            self.mode = Mode::Normal;
            self.term_scroll = 0;
            return Vec::new();
        }
        let Some(agent) = self.selected_agent().map(|a| a.agent.name.clone()) else {
            self.mode = Mode::Normal;
            return Vec::new();
        };
        // Scrolled back: shift-PageUp/PageDown move, shift-Home goes to the session's first
        // line, shift-End back to live; any other key returns to live first.
        match (k.code, k.modifiers.contains(KeyModifiers::SHIFT)) {
            (KeyCode::PageUp, true) => {
                self.term_scroll = self.term_scroll.saturating_add(10);
                return Vec::new();
            }
            (KeyCode::PageDown, true) => {
                self.term_scroll = self.term_scroll.saturating_sub(10);
                return Vec::new();
            }
            // The engine clamps it to the history's length, and says so.
            (KeyCode::Home, true) => {
                self.term_scroll = usize::MAX;
                return Vec::new();
            }
            (KeyCode::End, true) => {
                self.term_scroll = 0;
                return Vec::new();
            }
            _ => {}
        }
        self.term_scroll = 0;
        let bytes = key_bytes(&k);
        if bytes.is_empty() {
            return Vec::new();
        }
        vec![Action::Engine(Command::Input { agent, bytes })]
    }

    fn key_dialog(&mut self, d: Dialog, k: KeyEvent) -> Vec<Action> {
        match d {
            Dialog::Help { .. } | Dialog::Message { .. } => {
                if matches!(
                    k.code,
                    KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') | KeyCode::Char('?')
                ) {
                    self.mode = Mode::Normal;
                }
                Vec::new()
            }
            Dialog::ConfirmFreeze { .. } => {
                self.mode = Mode::Normal;
                match k.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') => {
                        vec![Action::Engine(Command::Freeze {
                            agent: None,
                            frozen: true,
                        })]
                    }
                    _ => Vec::new(),
                }
            }
            Dialog::ConfirmStop { .. } => match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => vec![Action::StopEngine],
                _ => {
                    self.mode = Mode::Normal;
                    Vec::new()
                }
            },
            Dialog::LeaveDemo { .. } => match k.code {
                KeyCode::Char('l') | KeyCode::Char('L') | KeyCode::Enter => vec![Action::Detach],
                KeyCode::Char('s') | KeyCode::Char('S') => vec![Action::StopEngine],
                _ => {
                    self.mode = Mode::Normal;
                    Vec::new()
                }
            },
            Dialog::Diff {
                agent,
                text,
                scroll,
            } => self.key_diff(agent, text, scroll, k),
            Dialog::Nudge { agent, input } => self.key_nudge(agent, input, k),
            Dialog::Command { input, selected } => self.key_command_line(input, selected, k),
            Dialog::Sling(s) => self.key_sling(s, k),
        }
    }

    /// The diff viewer: scrolling, and leaving.
    fn key_diff(&mut self, agent: String, text: String, scroll: usize, k: KeyEvent) -> Vec<Action> {
        let lines = text.lines().count();
        let scroll = match k.code {
            KeyCode::Char('j') | KeyCode::Down => scroll + 1,
            KeyCode::Char('k') | KeyCode::Up => scroll.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => scroll + 20,
            KeyCode::PageUp => scroll.saturating_sub(20),
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter => {
                self.mode = Mode::Normal;
                return Vec::new();
            }
            _ => scroll,
        };
        self.mode = Mode::Dialog(Dialog::Diff {
            agent,
            text,
            scroll: scroll.min(lines.saturating_sub(1)),
        });
        Vec::new()
    }

    /// The nudge box: typing, and Enter to send it.
    fn key_nudge(&mut self, agent: String, mut input: String, k: KeyEvent) -> Vec<Action> {
        match k.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                return Vec::new();
            }
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                let text = input.trim().to_string();
                if text.is_empty() {
                    return Vec::new();
                }
                self.notice = Some(format!("nudged {agent}"));
                return vec![Action::Engine(Command::Nudge { agent, text })];
            }
            _ => {
                edit_text(&mut input, k);
            }
        }
        self.mode = Mode::Dialog(Dialog::Nudge { agent, input });
        Vec::new()
    }

    /// The `:` command line: typing, Tab to complete (again for the next completion), Enter
    /// to run it.
    fn key_command_line(
        &mut self,
        mut input: String,
        mut selected: Option<usize>,
        k: KeyEvent,
    ) -> Vec<Action> {
        match k.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                return Vec::new();
            }
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                return self.run_command(input.trim());
            }
            KeyCode::Tab => {
                let c = self.completions(&input);
                if !c.is_empty() {
                    let i = selected.map(|i| (i + 1) % c.len()).unwrap_or(0);
                    let mut words: Vec<&str> = input.split(' ').collect();
                    words.pop();
                    words.push(&c[i]);
                    let completed = words.join(" ");
                    // A unique completion moves on to the next word.
                    input = if c.len() == 1 {
                        format!("{completed} ")
                    } else {
                        completed
                    };
                    selected = if c.len() == 1 { None } else { Some(i) };
                }
            }
            _ => {
                if edit_text(&mut input, k) {
                    selected = None;
                }
            }
        }
        self.mode = Mode::Dialog(Dialog::Command { input, selected });
        Vec::new()
    }

    /// The sling dialog: pick a ready bead (typing filters), then a rig, then a runtime.
    fn key_sling(&mut self, mut s: SlingDialog, k: KeyEvent) -> Vec<Action> {
        if k.code == KeyCode::Esc {
            self.mode = Mode::Normal;
            return Vec::new();
        }
        let len = match s.step {
            SlingStep::Bead => self.sling_beads(&s.filter).len(),
            SlingStep::Rig => self.snapshot.rigs.len(),
            SlingStep::Runtime => self.sling_runtimes().len(),
        };
        let typing = s.step == SlingStep::Bead;
        match k.code {
            KeyCode::Down => s.selected = (s.selected + 1).min(len.saturating_sub(1)),
            KeyCode::Up => s.selected = s.selected.saturating_sub(1),
            KeyCode::Char('j') if !typing => {
                s.selected = (s.selected + 1).min(len.saturating_sub(1))
            }
            KeyCode::Char('k') if !typing => s.selected = s.selected.saturating_sub(1),
            KeyCode::Enter => return self.sling_next(s),
            _ if typing && edit_text(&mut s.filter, k) => s.selected = 0,
            _ => {}
        }
        self.mode = Mode::Dialog(Dialog::Sling(s));
        Vec::new()
    }

    /// Enter in the sling dialog: on to the next step, or the sling itself after the last.
    fn sling_next(&mut self, mut s: SlingDialog) -> Vec<Action> {
        match s.step {
            SlingStep::Bead => {
                let Some(b) = self
                    .sling_beads(&s.filter)
                    .get(s.selected)
                    .map(|b| b.id.clone())
                else {
                    self.mode = Mode::Dialog(Dialog::Sling(s));
                    return Vec::new();
                };
                s.bead = Some(b);
                s.selected = 0;
                s.step = SlingStep::Rig;
                if self.snapshot.rigs.is_empty() {
                    self.mode = Mode::Dialog(Dialog::Message {
                        title: "No rigs".into(),
                        text: "Add a rig first: gastown-tui rig add NAME URL".into(),
                    });
                    return Vec::new();
                }
            }
            SlingStep::Rig => {
                s.rig = self.snapshot.rigs.get(s.selected).cloned();
                s.selected = self.first_installed_runtime();
                s.step = SlingStep::Runtime;
            }
            SlingStep::Runtime => {
                let runtime = self.sling_runtimes().get(s.selected).cloned();
                self.mode = Mode::Normal;
                if let (Some(bead), Some(rig)) = (s.bead, s.rig) {
                    self.notice = Some(format!("slinging {bead} to {rig}"));
                    return vec![Action::Engine(Command::Sling { bead, rig, runtime })];
                }
                return Vec::new();
            }
        }
        self.mode = Mode::Dialog(Dialog::Sling(s));
        Vec::new()
    }

    /// Runs a `:` command line.
    pub fn run_command(&mut self, line: &str) -> Vec<Action> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let need = |n: usize, usage: &str, app: &mut App| -> bool {
            if words.len() < n {
                app.notice = Some(format!("usage: :{usage}"));
                false
            } else {
                true
            }
        };
        match words.first().copied() {
            None => Vec::new(),
            Some("sling") => {
                if !need(3, "sling BEAD RIG [RUNTIME]", self) {
                    return Vec::new();
                }
                vec![Action::Engine(Command::Sling {
                    bead: words[1].into(),
                    rig: words[2].into(),
                    runtime: words.get(3).map(|s| s.to_string()),
                })]
            }
            Some("nudge") => {
                if !need(3, "nudge AGENT TEXT...", self) {
                    return Vec::new();
                }
                vec![Action::Engine(Command::Nudge {
                    agent: words[1].into(),
                    text: words[2..].join(" "),
                })]
            }
            Some(cmd @ ("kill" | "restart" | "handoff")) => {
                if !need(2, &format!("{cmd} AGENT"), self) {
                    return Vec::new();
                }
                let agent = words[1].to_string();
                vec![Action::Engine(match cmd {
                    "kill" => Command::Kill { agent },
                    "restart" => Command::Restart { agent },
                    _ => Command::Handoff { agent },
                })]
            }
            Some("convoy") | Some("convoys") => {
                self.focus = Focus::Convoys;
                Vec::new()
            }
            Some("mail") => {
                self.notice = Some(format!(
                    "{} unread message(s) for the overseer (gastown-tui mail inbox)",
                    self.snapshot.inbox_unread
                ));
                Vec::new()
            }
            Some("theme") => {
                // The event loop applies themes; the app only validates the name.
                match words.get(1) {
                    Some(name) => self.notice = Some(format!("theme:{name}")),
                    None => self.notice = Some("usage: :theme NAME".into()),
                }
                Vec::new()
            }
            Some("freeze") => match words.get(1) {
                Some(name) => vec![Action::Engine(Command::Freeze {
                    agent: Some(name.to_string()),
                    frozen: true,
                })],
                None => self.ask_freeze(),
            },
            Some("thaw") => vec![Action::Engine(Command::Freeze {
                agent: words.get(1).map(|s| s.to_string()),
                frozen: false,
            })],
            Some("q") | Some("quit") | Some("detach") => self.leave(),
            Some("stop") => self.ask_stop(),
            Some(other) => {
                self.notice = Some(format!("unknown command :{other} (tab completes)"));
                Vec::new()
            }
        }
    }

    /// Handles a mouse event over the layout the view last drew (`areas`).
    pub fn on_mouse(&mut self, m: MouseEvent, areas: &Areas) -> Vec<Action> {
        if let Mode::DrillDown = self.mode {
            // Wheel scrolls back through the terminal's history.
            match m.kind {
                MouseEventKind::ScrollUp => self.term_scroll = self.term_scroll.saturating_add(3),
                MouseEventKind::ScrollDown => self.term_scroll = self.term_scroll.saturating_sub(3),
                _ => {}
            }
            return Vec::new();
        }
        if !matches!(self.mode, Mode::Normal) {
            return Vec::new();
        }
        let hit = |r: &Option<ratatui::layout::Rect>| {
            r.is_some_and(|r| {
                m.column >= r.x
                    && m.column < r.x + r.width
                    && m.row >= r.y
                    && m.row < r.y + r.height
            })
        };
        let panel = [
            (Focus::Agents, &areas.agents),
            (Focus::Convoys, &areas.convoys),
            (Focus::MergeQueue, &areas.merge_queue),
            (Focus::Witness, &areas.witness),
            (Focus::Feed, &areas.feed),
        ]
        .into_iter()
        .find(|(_, r)| hit(r))
        .map(|(f, _)| f);
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some(f) = panel {
                    self.focus = f;
                    if f == Focus::Agents {
                        if let Some(i) = layout::agent_at(
                            areas,
                            self.selected,
                            self.visible_agents().len(),
                            m.column,
                            m.row,
                        ) {
                            self.selected = i;
                        }
                    }
                }
            }
            MouseEventKind::ScrollDown => {
                if let Some(f) = panel {
                    self.focus = f;
                    self.move_selection(1);
                }
            }
            MouseEventKind::ScrollUp => {
                if let Some(f) = panel {
                    self.focus = f;
                    self.move_selection(-1);
                }
            }
            _ => {}
        }
        Vec::new()
    }
}

/// Typing into a one-line text field: Backspace and printable characters (not Ctrl-ed ones).
/// Whether the text changed.
fn edit_text(text: &mut String, k: KeyEvent) -> bool {
    match k.code {
        KeyCode::Backspace => text.pop().is_some(),
        KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
            text.push(c);
            true
        }
        _ => false,
    }
}

/// Whether `needle`'s characters appear in `hay` in order (case-insensitive).
pub fn fuzzy(needle: &str, hay: &str) -> bool {
    let hay = hay.to_lowercase();
    let mut it = hay.chars();
    needle
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .all(|c| it.any(|h| h == c))
}

/// The bytes a key sends to a program in a terminal (xterm conventions).
pub fn key_bytes(k: &KeyEvent) -> Vec<u8> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    let alt = k.modifiers.contains(KeyModifiers::ALT);
    let mut out = Vec::new();
    if alt {
        out.push(0x1b);
    }
    match k.code {
        KeyCode::Char(c) if ctrl => {
            let b = c.to_ascii_lowercase() as u32;
            match c {
                'a'..='z' | 'A'..='Z' => out.push((b - 'a' as u32 + 1) as u8),
                ' ' | '@' | '2' => out.push(0),
                '[' | '3' => out.push(0x1b),
                '\\' | '4' => out.push(0x1c),
                ']' | '5' => out.push(0x1d),
                '^' | '6' => out.push(0x1e),
                '_' | '7' | '/' => out.push(0x1f),
                _ => {}
            }
        }
        KeyCode::Char(c) => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        KeyCode::Enter => out.push(b'\r'),
        KeyCode::Tab => out.push(b'\t'),
        KeyCode::BackTab => out.extend_from_slice(b"\x1b[Z"),
        KeyCode::Backspace => out.push(0x7f),
        KeyCode::Esc => out.push(0x1b),
        KeyCode::Up => out.extend_from_slice(b"\x1b[A"),
        KeyCode::Down => out.extend_from_slice(b"\x1b[B"),
        KeyCode::Right => out.extend_from_slice(b"\x1b[C"),
        KeyCode::Left => out.extend_from_slice(b"\x1b[D"),
        KeyCode::Home => out.extend_from_slice(b"\x1b[H"),
        KeyCode::End => out.extend_from_slice(b"\x1b[F"),
        KeyCode::PageUp => out.extend_from_slice(b"\x1b[5~"),
        KeyCode::PageDown => out.extend_from_slice(b"\x1b[6~"),
        KeyCode::Insert => out.extend_from_slice(b"\x1b[2~"),
        KeyCode::Delete => out.extend_from_slice(b"\x1b[3~"),
        KeyCode::F(n) => {
            let seq: &[u8] = match n {
                1 => b"\x1bOP",
                2 => b"\x1bOQ",
                3 => b"\x1bOR",
                4 => b"\x1bOS",
                5 => b"\x1b[15~",
                6 => b"\x1b[17~",
                7 => b"\x1b[18~",
                8 => b"\x1b[19~",
                9 => b"\x1b[20~",
                10 => b"\x1b[21~",
                11 => b"\x1b[23~",
                12 => b"\x1b[24~",
                _ => b"",
            };
            out.extend_from_slice(seq);
        }
        _ => {}
    }
    if alt && out.len() == 1 {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beads::Agent;
    use crate::engine::BeadBrief;

    fn agent(name: &str, role: &str, state: &str, running: bool) -> AgentView {
        AgentView {
            agent: Agent {
                name: name.into(),
                role: role.into(),
                rig: "demo".into(),
                runtime: "sim".into(),
                state: state.into(),
                hooked_bead: None,
                session: None,
                pid: None,
                last_activity: None,
                restarts: 0,
                created_at: String::new(),
                updated_at: String::new(),
                reported_state: None,
                reported_at: None,
                state_reason: String::new(),
                conversation: None,
                conversation_bead: None,
                frozen: false,
            },
            running,
            bead_title: None,
        }
    }

    fn app() -> App {
        App::new(Snapshot {
            town: "demo".into(),
            agents: vec![
                agent("mayor", "mayor", "idle", true),
                agent("nux", "polecat", "working", true),
                agent("slit", "polecat", "waiting", true),
                agent("rictus", "polecat", "dead", false),
            ],
            ready: vec![
                BeadBrief {
                    id: "gt-a1".into(),
                    title: "Fix SQL injection".into(),
                    priority: 0,
                    issue_type: "bug".into(),
                },
                BeadBrief {
                    id: "gt-b2".into(),
                    title: "Write docs".into(),
                    priority: 2,
                    issue_type: "task".into(),
                },
            ],
            rigs: vec!["demo".into(), "web".into()],
            runtimes: vec!["claude".into(), "sim".into()],
            default_runtime: "sim".into(),
            ..Default::default()
        })
    }

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn code(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn typed(app: &mut App, text: &str) -> Vec<Action> {
        text.chars().flat_map(|c| app.on_key(key(c))).collect()
    }

    #[test]
    fn moving_focus_and_attention() {
        let mut a = app();
        assert_eq!(a.attention(), 2, "waiting and dead need a human");
        a.on_key(key('j'));
        assert_eq!(a.selected_agent().unwrap().agent.name, "nux");
        a.on_key(code(KeyCode::Down));
        a.on_key(code(KeyCode::Down));
        a.on_key(code(KeyCode::Down));
        assert_eq!(
            a.selected_agent().unwrap().agent.name,
            "rictus",
            "stops at the end"
        );
        a.on_key(key('g'));
        assert_eq!(a.selected, 0);
        a.on_key(code(KeyCode::Tab));
        assert_eq!(a.focus, Focus::Convoys);
        a.on_key(code(KeyCode::BackTab));
        assert_eq!(a.focus, Focus::Agents);
        // The selection follows its agent across snapshots.
        a.on_key(key('j'));
        let mut snap = a.snapshot.clone();
        snap.agents.insert(0, agent("ace", "polecat", "idle", true));
        a.set_snapshot(snap);
        assert_eq!(a.selected_agent().unwrap().agent.name, "nux");
    }

    #[test]
    fn drill_down_forwards_keys_and_the_escape_key_returns() {
        let mut a = app();
        a.on_key(key('j'));
        a.on_key(code(KeyCode::Enter));
        assert_eq!(a.mode, Mode::DrillDown);
        let acts = a.on_key(key('x'));
        assert_eq!(
            acts,
            vec![Action::Engine(Command::Input {
                agent: "nux".into(),
                bytes: b"x".to_vec()
            })]
        );
        let acts = a.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(
            acts,
            vec![Action::Engine(Command::Input {
                agent: "nux".into(),
                bytes: vec![3]
            })],
            "ctrl-c goes to the agent, it does not quit"
        );
        assert!(a.on_key(code(KeyCode::Up)).iter().any(|x| matches!(x,
            Action::Engine(Command::Input { bytes, .. }) if bytes == b"\x1b[A")));
        a.on_key(KeyEvent::new(KeyCode::PageUp, KeyModifiers::SHIFT));
        assert_eq!(a.term_scroll, 10);
        assert!(a
            .on_key(KeyEvent::new(KeyCode::Char(']'), KeyModifiers::CONTROL))
            .is_empty());
        assert_eq!(a.mode, Mode::Normal);
        // A dead agent cannot be drilled into.
        a.on_key(key('G'));
        a.on_key(code(KeyCode::Enter));
        assert_eq!(a.mode, Mode::Normal);
        assert!(a.notice.as_deref().unwrap().contains("no running session"));
    }

    #[test]
    fn sling_dialog_filters_then_picks_rig_and_runtime() {
        let mut a = app();
        a.on_key(key('s'));
        typed(&mut a, "docs");
        let Mode::Dialog(Dialog::Sling(s)) = &a.mode else {
            panic!("{:?}", a.mode)
        };
        assert_eq!(a.sling_beads(&s.filter).len(), 1);
        a.on_key(code(KeyCode::Enter));
        a.on_key(code(KeyCode::Down));
        a.on_key(code(KeyCode::Enter));
        let acts = a.on_key(code(KeyCode::Enter));
        assert_eq!(
            acts,
            vec![Action::Engine(Command::Sling {
                bead: "gt-b2".into(),
                rig: "web".into(),
                runtime: Some("sim".into()),
            })]
        );
        assert_eq!(a.mode, Mode::Normal);
        assert!(fuzzy("sqlinj", "gt-a1 Fix SQL injection"));
        assert!(!fuzzy("zz", "gt-a1 Fix SQL injection"));
    }

    #[test]
    fn the_sling_dialog_starts_on_an_installed_runtime() {
        let mut a = app();
        let mut snap = a.snapshot.clone();
        snap.default_runtime = "claude".into();
        snap.runtimes = vec!["claude".into(), "codex".into(), "sim".into()];
        snap.runtimes_missing = vec!["claude".into(), "codex".into()];
        a.set_snapshot(snap);
        assert_eq!(a.sling_runtimes(), vec!["claude", "codex", "sim"]);
        a.on_key(key('s'));
        a.on_key(code(KeyCode::Enter));
        a.on_key(code(KeyCode::Enter));
        // The default (claude) is not installed: the cursor starts on sim, the first that is.
        let acts = a.on_key(code(KeyCode::Enter));
        assert_eq!(
            acts,
            vec![Action::Engine(Command::Sling {
                bead: "gt-a1".into(),
                rig: "demo".into(),
                runtime: Some("sim".into()),
            })]
        );
        assert_eq!(
            a.completions("sling gt-a1 demo "),
            vec!["sim", "claude", "codex"],
            "completion offers installed runtimes first"
        );
    }

    #[test]
    fn nudge_dialog_and_command_line() {
        let mut a = app();
        a.on_key(key('j'));
        a.on_key(key('n'));
        typed(&mut a, "keep going");
        let acts = a.on_key(code(KeyCode::Enter));
        assert_eq!(
            acts,
            vec![Action::Engine(Command::Nudge {
                agent: "nux".into(),
                text: "keep going".into()
            })]
        );
        a.on_key(key(':'));
        typed(&mut a, "ki");
        a.on_key(code(KeyCode::Tab));
        let Mode::Dialog(Dialog::Command { input, .. }) = &a.mode else {
            panic!()
        };
        assert_eq!(input, "kill ");
        typed(&mut a, "sl");
        a.on_key(code(KeyCode::Tab));
        let acts = a.on_key(code(KeyCode::Enter));
        assert_eq!(
            acts,
            vec![Action::Engine(Command::Kill {
                agent: "slit".into()
            })]
        );
        assert_eq!(a.completions("sling gt-"), vec!["gt-a1", "gt-b2"]);
        assert_eq!(a.completions("sling gt-a1 w"), vec!["web"]);
        assert!(a.run_command("sling gt-a1").is_empty());
        assert!(a.notice.as_deref().unwrap().starts_with("usage: :sling"));
        a.run_command("bogus");
        assert!(a
            .notice
            .as_deref()
            .unwrap()
            .contains("unknown command :bogus"));
    }

    #[test]
    fn f_freezes_every_agent_after_asking_and_freeze_and_thaw_act_on_one_or_all() {
        let mut a = app();
        let all = |frozen| {
            vec![Action::Engine(Command::Freeze {
                agent: None,
                frozen,
            })]
        };
        assert!(a
            .on_key(KeyEvent::new(KeyCode::Char('F'), KeyModifiers::SHIFT))
            .is_empty());
        assert_eq!(a.mode, Mode::Dialog(Dialog::ConfirmFreeze { agents: 4 }));
        assert!(
            a.on_key(key('n')).is_empty(),
            "anything but y keeps them running"
        );
        assert_eq!(a.mode, Mode::Normal);
        a.on_key(key('F'));
        assert_eq!(a.on_key(key('y')), all(true));
        assert_eq!(a.mode, Mode::Normal);
        // :freeze without a name asks too; with one it acts on that agent.
        assert!(a.run_command("freeze").is_empty());
        assert_eq!(a.mode, Mode::Dialog(Dialog::ConfirmFreeze { agents: 4 }));
        a.mode = Mode::Normal;
        assert_eq!(
            a.run_command("freeze nux"),
            vec![Action::Engine(Command::Freeze {
                agent: Some("nux".into()),
                frozen: true
            })]
        );
        assert_eq!(
            a.run_command("thaw"),
            all(false),
            ":thaw resumes every agent"
        );
        assert_eq!(
            a.run_command("thaw nux"),
            vec![Action::Engine(Command::Freeze {
                agent: Some("nux".into()),
                frozen: false
            })]
        );
    }

    #[test]
    fn q_detaches_at_once_and_stop_asks_first() {
        let mut a = app();
        // q: nothing stops, so nothing to ask.
        assert_eq!(a.on_key(key('q')), vec![Action::Detach]);
        assert_eq!(a.mode, Mode::Normal);
        assert_eq!(a.run_command("quit"), vec![Action::Detach]);
        // :stop asks; anything but y keeps the engine.
        assert!(a.run_command("stop").is_empty());
        assert_eq!(a.mode, Mode::Dialog(Dialog::ConfirmStop { running: 3 }));
        assert!(a.on_key(key('n')).is_empty());
        assert_eq!(a.mode, Mode::Normal);
        a.run_command("stop");
        assert!(
            a.on_key(KeyEvent::from(KeyCode::Enter)).is_empty(),
            "enter is not yes"
        );
        a.run_command("stop");
        assert_eq!(a.on_key(key('y')), vec![Action::StopEngine]);
        // With the engine gone there is nothing to stop, and r starts one.
        let mut gone = app();
        gone.engine_gone = Some("the engine exited".into());
        assert!(gone.run_command("stop").is_empty());
        assert_eq!(gone.mode, Mode::Normal);
        assert_eq!(gone.on_key(key('r')), vec![Action::StartEngine]);
        assert!(
            a.on_key(key('r')).is_empty(),
            "r means nothing while connected"
        );
    }

    #[test]
    fn leaving_the_demo_asks_whether_to_stop_its_town() {
        let mut a = app();
        a.demo = true;
        assert!(a.on_key(key('q')).is_empty());
        assert_eq!(a.mode, Mode::Dialog(Dialog::LeaveDemo { running: 3 }));
        assert!(a.on_key(KeyEvent::from(KeyCode::Esc)).is_empty());
        assert_eq!(a.mode, Mode::Normal);
        a.on_key(key('q'));
        assert_eq!(a.on_key(key('l')), vec![Action::Detach]);
        a.mode = Mode::Normal;
        a.on_key(key('q'));
        assert_eq!(a.on_key(key('s')), vec![Action::StopEngine]);
    }

    #[test]
    fn attach_shows_one_agent_and_the_escape_key_detaches() {
        let snapshot = app().snapshot;
        let name = snapshot.agents[1].agent.name.clone();
        let mut a = App::attached(snapshot, &name);
        assert_eq!(a.mode, Mode::DrillDown);
        assert_eq!(a.visible_agents().len(), 1);
        assert_eq!(a.selected_agent().unwrap().agent.name, name);
        // Keys go to the agent...
        assert_eq!(
            a.on_key(key('x')),
            vec![Action::Engine(Command::Input {
                agent: name.clone(),
                bytes: b"x".to_vec()
            })]
        );
        // ... and ctrl-] detaches instead of going back to the panels.
        let esc = KeyEvent::new(KeyCode::Char(']'), KeyModifiers::CONTROL);
        assert_eq!(a.on_key(esc), vec![Action::Detach]);
    }

    #[test]
    fn filter_help_and_diff() {
        let mut a = app();
        a.on_key(key('/'));
        typed(&mut a, "sl");
        a.on_key(code(KeyCode::Enter));
        assert_eq!(a.visible_agents().len(), 1);
        assert_eq!(a.selected_agent().unwrap().agent.name, "slit");
        a.on_key(code(KeyCode::Esc));
        assert_eq!(a.visible_agents().len(), 4);
        a.on_key(key('?'));
        assert_eq!(
            a.mode,
            Mode::Dialog(Dialog::Help {
                focus: Focus::Agents
            })
        );
        a.on_key(code(KeyCode::Esc));
        assert_eq!(
            a.on_key(key('d')),
            vec![Action::Engine(Command::Diff {
                agent: "mayor".into()
            })]
        );
    }

    #[test]
    fn keys_become_terminal_bytes() {
        let k = |c, m| key_bytes(&KeyEvent::new(c, m));
        assert_eq!(k(KeyCode::Char('a'), KeyModifiers::CONTROL), vec![1]);
        assert_eq!(k(KeyCode::Char('x'), KeyModifiers::ALT), b"\x1bx".to_vec());
        assert_eq!(k(KeyCode::Enter, KeyModifiers::NONE), b"\r".to_vec());
        assert_eq!(k(KeyCode::F(5), KeyModifiers::NONE), b"\x1b[15~".to_vec());
        assert_eq!(
            k(KeyCode::Char('é'), KeyModifiers::NONE),
            "é".as_bytes().to_vec()
        );
        assert_eq!(k(KeyCode::Backspace, KeyModifiers::NONE), vec![0x7f]);
    }
}
