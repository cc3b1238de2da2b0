//! The cockpit's event loop: owns the terminal, runs the engine on the same tokio runtime,
//! and redraws only when something visible changed, at most once per frame interval.

use super::app::{Action, App, Areas, Dialog, Mode};
use super::theme::Theme;
use super::view;
use crate::engine::{Command, Engine, Event as EngineEvent, Sessions};
use crate::town::Town;
use crate::{Error, Result};
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    KeyEventKind,
};
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};

/// At most this many frames a second.
const FRAME: Duration = Duration::from_millis(16);
/// The panels show times in state; redraw at least this often.
const CLOCK_TICK: Duration = Duration::from_secs(1);
/// A child inside a synchronized update is not drawn for at most this long.
const SYNC_WAIT: Duration = Duration::from_millis(100);

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

/// Opens the cockpit on `town` and runs until the user quits.
pub fn run(town: Town) -> Result<()> {
    let theme = Theme::from_env(&town.config.theme, Some(&town.root.join("themes")))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("start", "the tokio runtime", e))?;
    rt.block_on(cockpit(town, theme))
}

async fn cockpit(town: Town, mut theme: Theme) -> Result<()> {
    let themes_dir = town.root.join("themes");
    // Output from any agent wakes the loop once; further output before the loop has looked
    // costs the reader threads one atomic swap, not a wake-up each.
    let output = Arc::new(Notify::new());
    let output_pending = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (on_output, pending) = (output.clone(), output_pending.clone());
    let engine = Engine::new(
        town,
        Arc::new(move || {
            if !pending.swap(true, std::sync::atomic::Ordering::AcqRel) {
                on_output.notify_one();
            }
        }),
    )?;
    let sessions: Sessions = engine.sessions();
    let mut snapshots = engine.snapshots();
    let mut events = engine.subscribe();
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(256);
    let (stop_tx, stop_rx) = watch::channel(false);
    let engine_task = tokio::spawn(engine.run(cmd_rx, stop_rx));

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

    let mut app = App::new(snapshots.borrow().clone());
    let mut areas = Areas::default();
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    let mut drawn_bytes: u64 = u64::MAX;
    let mut sync_since: Option<Instant> = None;
    // The pane size agents were last given, and which agent holds the drill-down size.
    let mut pane: Option<(u16, u16)> = None;
    let mut drilled: Option<String> = None;

    loop {
        // Keep the PTYs the size of the pane that shows them.
        let size = terminal
            .size()
            .map_err(|e| Error::io("read", "the terminal size", e))?;
        let full = ratatui::layout::Rect::new(0, 0, size.width, size.height);
        let want = view::terminal_size(full, false);
        if pane != Some(want) {
            pane = Some(want);
            let _ = cmd_tx
                .send(Command::Resize {
                    agent: None,
                    rows: want.0,
                    cols: want.1,
                })
                .await;
        }
        let drill = match app.mode {
            Mode::DrillDown => app.selected_agent().map(|a| a.agent.name.clone()),
            _ => None,
        };
        if drill != drilled {
            if let Some(old) = drilled.take() {
                let _ = cmd_tx
                    .send(Command::Resize {
                        agent: Some(old),
                        rows: want.0,
                        cols: want.1,
                    })
                    .await;
            }
            if let Some(new) = &drill {
                let (rows, cols) = view::terminal_size(full, true);
                let _ = cmd_tx
                    .send(Command::Resize {
                        agent: Some(new.clone()),
                        rows,
                        cols,
                    })
                    .await;
            }
            drilled = drill;
            dirty = true;
        }

        if dirty {
            let wait = FRAME.saturating_sub(last_draw.elapsed());
            if wait.is_zero() {
                let map = sessions.read().map(|m| m.clone()).unwrap_or_default();
                let visible = app
                    .selected_agent()
                    .and_then(|a| map.get(&a.agent.name).cloned());
                // Hold a frame while the visible program is mid-update (bounded).
                let mid_update = visible
                    .as_ref()
                    .is_some_and(|s| s.with_screen(|sc| sc.synchronized_update()));
                let hold = mid_update && sync_since.is_some_and(|t| t.elapsed() < SYNC_WAIT);
                if mid_update && sync_since.is_none() {
                    sync_since = Some(Instant::now());
                }
                if !hold {
                    sync_since = None;
                    // Scrollback: the visible screen shows history only in the drill-down view.
                    if let Some(s) = &visible {
                        let want = if app.mode == Mode::DrillDown {
                            app.term_scroll
                        } else {
                            0
                        };
                        app.term_scroll = s.set_view_offset(want).min(app.term_scroll);
                    }
                    drawn_bytes = visible.as_ref().map(|s| s.bytes_read()).unwrap_or(0);
                    let _ = crossterm::queue!(std::io::stdout(), BeginSynchronizedUpdate);
                    terminal
                        .draw(|f| areas = view::draw(f, &app, &map, &theme))
                        .map_err(|e| Error::io("draw", "the terminal", e))?;
                    let _ = crossterm::execute!(std::io::stdout(), EndSynchronizedUpdate);
                    let _ = std::io::stdout().flush();
                    last_draw = Instant::now();
                    dirty = false;
                }
            }
        }
        // Asleep until something happens; once a second the clocks in the panels move on.
        let timer = if dirty {
            FRAME
                .saturating_sub(last_draw.elapsed())
                .max(Duration::from_millis(1))
        } else {
            CLOCK_TICK
                .saturating_sub(last_draw.elapsed())
                .max(Duration::from_millis(1))
        };

        tokio::select! {
            Some(ev) = input_rx.recv() => {
                let mut actions = Vec::new();
                match ev {
                    Event::Key(k) if k.kind != KeyEventKind::Release => {
                        actions = app.on_key(k);
                        // Arrow keys in application-cursor mode (vim, less) are ESC O x.
                        for a in &mut actions {
                            if let Action::Engine(Command::Input { agent, bytes }) = a {
                                let app_cursor = sessions
                                    .read()
                                    .ok()
                                    .and_then(|m| m.get(agent.as_str()).cloned())
                                    .is_some_and(|s| s.with_screen(|sc| sc.application_cursor()));
                                if app_cursor && bytes.len() == 3 && bytes[0] == 0x1b && bytes[1] == b'[' {
                                    bytes[1] = b'O';
                                }
                            }
                        }
                    }
                    Event::Mouse(m) => actions = app.on_mouse(m, &areas),
                    Event::Paste(text) => {
                        if let (Mode::DrillDown, Some(a)) = (&app.mode, app.selected_agent()) {
                            let agent = a.agent.name.clone();
                            let bracketed = sessions
                                .read()
                                .ok()
                                .and_then(|m| m.get(&agent).cloned())
                                .is_some_and(|s| s.with_screen(|sc| sc.bracketed_paste()));
                            let mut bytes = Vec::new();
                            if bracketed { bytes.extend_from_slice(b"\x1b[200~"); }
                            bytes.extend_from_slice(text.as_bytes());
                            if bracketed { bytes.extend_from_slice(b"\x1b[201~"); }
                            actions.push(Action::Engine(Command::Input { agent, bytes }));
                        } else if let Mode::Dialog(Dialog::Nudge { input, .. }) = &mut app.mode {
                            input.push_str(&crate::engine::nudge::sanitize(&text));
                        }
                    }
                    _ => {}
                }
                dirty = true;
                for action in actions {
                    match action {
                        Action::Quit => {
                            let _ = stop_tx.send(true);
                            let _ = engine_task.await;
                            return Ok(());
                        }
                        Action::Engine(cmd) => {
                            let _ = cmd_tx.send(cmd).await;
                        }
                    }
                }
                if let Some(name) = app.notice.as_deref().and_then(|n| n.strip_prefix("theme:")) {
                    let name = name.to_string();
                    match Theme::load(&name, Some(&themes_dir)) {
                        Ok(t) => {
                            theme = t;
                            app.notice = Some(format!("theme {name}"));
                        }
                        Err(e) => app.notice = Some(e.to_string()),
                    }
                }
            }
            changed = snapshots.changed() => {
                if changed.is_err() {
                    return Err(Error::Conflict("the engine stopped".into()));
                }
                app.set_snapshot(snapshots.borrow_and_update().clone());
                dirty = true;
            }
            _ = output.notified() => {
                output_pending.store(false, std::sync::atomic::Ordering::Release);
                // Output from some agent: redraw only if the visible one changed.
                let bytes = app
                    .selected_agent()
                    .and_then(|a| sessions.read().ok().and_then(|m| m.get(&a.agent.name).cloned()))
                    .map(|s| s.bytes_read())
                    .unwrap_or(0);
                if bytes != drawn_bytes {
                    dirty = true;
                }
            }
            ev = events.recv() => {
                match ev {
                    Ok(EngineEvent::Diff { agent, text }) => {
                        app.mode = Mode::Dialog(Dialog::Diff { agent, text, scroll: 0 });
                    }
                    Ok(EngineEvent::Failed { agent, message }) => {
                        app.notice = Some(if agent.is_empty() { message } else { format!("{agent}: {message}") });
                    }
                    Ok(EngineEvent::Slung { bead, agent }) => {
                        app.notice = Some(format!("{bead} slung to {agent}"));
                    }
                    _ => {}
                }
                dirty = true;
            }
            _ = tokio::time::sleep(timer) => {
                if last_draw.elapsed() >= CLOCK_TICK {
                    dirty = true;
                }
            }
        }
    }
}
