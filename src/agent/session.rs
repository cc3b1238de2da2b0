//! One program running in its own pseudo-terminal, its output parsed into a [`Screen`] and
//! recorded.
//!
//! Threads (plain `std::thread`, no async runtime):
//! - the *reader* blocks on `read` from the PTY (64 KiB at a time) and queues each chunk for
//!   the parser (at most 4 waiting), so reading overlaps with parsing. A read error after the
//!   child exits (EIO on Linux) is the end of output;
//! - the *parser* feeds each chunk to the screen under a short lock, hands it to the recorder
//!   (its own thread, [`RecorderThread`]; when that falls behind by its bounded queue, the
//!   parser waits), queues any query replies and calls `notify`;
//! - the *control* thread owns the PTY writer: it writes typed input and query replies in
//!   order (so [`Session::write`] never blocks on a program that does not read its input),
//!   and polls for the child's exit once the parser reaches the end of output (a program whose
//!   children keep its terminal open is found by one process-wide watcher every 2 s);
//! - [`Session::kill`] sends SIGHUP and, if the program is still alive after a grace period,
//!   a short-lived thread escalates to SIGKILL.
//!
//! Dropping a [`Session`] kills its program if it is still running.

use crate::agent::record::{CastHeader, Recorder, RecorderThread};
use crate::agent::screen::{clamp_size, QueryColors, Screen};
use crate::agent::sys::{background_priority, descendants, resolve_program};
use crate::{Error, Result};
use portable_pty::{Child, CommandBuilder, MasterPty, PtySize};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Lines of history a screen keeps in memory by default (`[terminal] scrollback_lines`), as
/// text (about a byte a character); older history is read back from the recording
/// ([`crate::agent::history`]).
pub const DEFAULT_SCROLLBACK: usize = 1_000;

/// Bytes read from the PTY at a time.
const READ_BUFFER: usize = 64 * 1024;
/// Chunks read and not parsed yet (each at most [`READ_BUFFER`]).
const PARSE_QUEUE: usize = 4;
/// Messages (writes, replies) that may wait for the control thread.
pub(crate) const INPUT_QUEUE: usize = 1024;
/// Exit polling: first and longest interval.
const POLL_MIN: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_secs(2);
/// After the child exits, how long to wait for the reader to drain the last output before
/// reporting the exit anyway (a grandchild may keep the terminal open). Generous: readers take
/// turns parsing, so on a busy machine the last output can take a while to be read and recorded.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// Between SIGHUP and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(1);

/// The variables of `inherited` (names) a session's program does not get: those that describe
/// another terminal (`TMUX`, `TMUX_PANE`, `COLUMNS`, `LINES`), and the markers of a CI job
/// (`CI`, `CI_*`, `CONTINUOUS_INTEGRATION`, `GITHUB_ACTIONS`, `BUILD_NUMBER`, `RUN_ID`). A
/// session is an interactive terminal, whatever started the engine: with `CI=true` Gemini CLI
/// runs headless (and exits at once when no sign-in is selected), and Ink, which draws Claude
/// Code and Gemini CLI, draws only its last frame.
pub fn not_inherited(inherited: impl Iterator<Item = OsString>) -> Vec<OsString> {
    const TERMINAL: [&str; 4] = ["TMUX", "TMUX_PANE", "COLUMNS", "LINES"];
    const CI: [&str; 5] = [
        "CI",
        "CONTINUOUS_INTEGRATION",
        "GITHUB_ACTIONS",
        "BUILD_NUMBER",
        "RUN_ID",
    ];
    let mut out: Vec<OsString> = TERMINAL.iter().map(OsString::from).collect();
    out.extend(inherited.filter(|k| {
        k.to_str()
            .is_some_and(|k| CI.contains(&k) || k.starts_with("CI_"))
    }));
    out
}

/// What to run and how.
#[derive(Clone, Debug)]
pub struct SessionSpec {
    /// A program name looked up on `PATH` (the `PATH` in `env` if given there, else this
    /// process's), or a path (relative paths are relative to `cwd`).
    pub program: String,
    pub args: Vec<String>,
    /// The working directory; it must exist.
    pub cwd: PathBuf,
    /// Added to the inherited environment (and overriding it). `TERM=xterm-256color` is set
    /// unless given here; `TMUX`, `TMUX_PANE`, `COLUMNS`, `LINES` and the markers of a CI
    /// job ([`not_inherited`]) are not inherited.
    pub env: Vec<(String, String)>,
    /// The terminal's size, which should be the size of the pane that shows it (clamped to
    /// 2..=1000 each).
    pub rows: u16,
    pub cols: u16,
    /// Lines of history kept above the screen.
    pub scrollback: usize,
    /// Where to write an asciicast v2 recording (created 0600, parent directories 0700).
    pub recording: Option<PathBuf>,
    /// The title written into the recording's header.
    pub title: String,
    /// Colours reported to programs that ask (`OSC 10;?`, `OSC 11;?`).
    pub query_colors: QueryColors,
}

impl SessionSpec {
    /// A spec with defaults: no arguments, 24x80, [`DEFAULT_SCROLLBACK`], no recording, the
    /// program as title.
    pub fn new(program: impl Into<String>, cwd: impl Into<PathBuf>) -> SessionSpec {
        let program = program.into();
        SessionSpec {
            title: program.clone(),
            program,
            args: Vec::new(),
            cwd: cwd.into(),
            env: Vec::new(),
            rows: 24,
            cols: 80,
            scrollback: DEFAULT_SCROLLBACK,
            recording: None,
            query_colors: QueryColors::default(),
        }
    }
}

/// How a program ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    /// The exit code, when it exited by itself.
    pub code: Option<i32>,
    /// The signal's name, when a signal ended it.
    pub signal: Option<String>,
    pub success: bool,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.signal, self.code) {
            (Some(sig), _) => write!(f, "killed by signal {sig}"),
            (None, Some(code)) => write!(f, "exited with code {code}"),
            (None, None) => write!(f, "exited"),
        }
    }
}

impl From<portable_pty::ExitStatus> for Exit {
    fn from(s: portable_pty::ExitStatus) -> Self {
        let signal = s.signal().map(str::to_string);
        Exit {
            code: if signal.is_some() {
                None
            } else {
                Some(i32::try_from(s.exit_code()).unwrap_or(i32::MAX))
            },
            success: s.success(),
            signal,
        }
    }
}

enum Msg {
    /// Bytes for the PTY (typed input or query replies).
    Input(Vec<u8>),
    /// The reader reached the end of output: look for the exit now.
    Poke,
}

#[derive(Default)]
struct Status {
    exit: Option<Exit>,
    reader_done: bool,
    write_error: Option<(std::io::ErrorKind, String)>,
}

struct Shared {
    program: String,
    tty: PathBuf,
    screen: Mutex<Screen>,
    recorder: Mutex<Option<RecorderThread>>,
    child: Mutex<Box<dyn Child + Send + Sync>>,
    status: Mutex<Status>,
    status_changed: Condvar,
    bytes_read: AtomicU64,
    /// Nanoseconds after `epoch` of the last output.
    last_output: AtomicU64,
    epoch: Instant,
    kill_requested: AtomicBool,
    /// The program's process group (it leads its own session in its PTY): signals go to the
    /// whole group, so what it started in its terminal ends with it (Gemini CLI relaunches
    /// itself as a child that outlives its parent's hangup).
    group: Option<i32>,
    notify: Arc<dyn Fn() + Send + Sync>,
    /// Moves whenever the screen changed or the program ended: what a view of this session
    /// waits on ([`Session::changes`]), so output of agents nobody shows wakes nobody.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// Tells `notify` and whoever watches [`Session::changes`].
    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        (self.notify)();
    }
}

/// A running (or finished) program in its own PTY. `Send + Sync`; share it with an `Arc`.
pub struct Session {
    shared: Arc<Shared>,
    master: Mutex<Box<dyn MasterPty + Send>>,
    input: SyncSender<Msg>,
    pid: Option<u32>,
    recording: Option<PathBuf>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("program", &self.shared.program)
            .field("pid", &self.pid)
            .field("recording", &self.recording)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts `spec.program` in a new PTY of the spec's size. `notify` is called (from the
    /// session's threads) whenever the screen changed or the program ended; keep it cheap
    /// (set a flag, send on a channel).
    ///
    /// Fails with [`Error::BadInput`] when the program cannot be found or is not executable,
    /// or the working directory does not exist: nothing is started then.
    pub fn spawn(spec: SessionSpec, notify: Arc<dyn Fn() + Send + Sync>) -> Result<Session> {
        let (rows, cols) = clamp_size(spec.rows, spec.cols);
        let (resolved, term) = locate(&spec)?;
        let recorder = start_recorder(&spec, rows, cols, &term)?;
        let (child, master) = start_child(&spec, &resolved, &term, rows, cols)?;
        let pid = child.process_id();
        let tty = master
            .tty_name()
            .unwrap_or_else(|| PathBuf::from("/dev/pts"));
        let (child, reader, writer) = pty_io(master.as_ref(), child)?;
        let shared = new_shared(&spec, rows, cols, tty, recorder, child, notify);
        let (tx, rx) = mpsc::sync_channel(INPUT_QUEUE);
        let name = pid.map_or_else(|| spec.program.clone(), |p| p.to_string());
        start_threads(&shared, &name, reader, writer, &tx, rx)?;

        watch_exit(&shared);
        Ok(Session {
            shared,
            master: Mutex::new(master),
            input: tx,
            pid,
            recording: spec.recording,
        })
    }

    /// Sends bytes to the program's terminal unchanged (keys, paste, mouse reports). Never
    /// blocks: the bytes are queued for the session's writer thread.
    ///
    /// Fails with [`Error::SessionGone`] when the program has exited (or its terminal
    /// closed), [`Error::InputQueueFull`] when it has not read its input for so long that the
    /// queue is full, and with [`Error::Io`] when an earlier write failed.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        {
            let status = lock(&self.shared.status);
            if let Some(exit) = &status.exit {
                return Err(Error::SessionGone {
                    program: self.shared.program.clone(),
                    how: exit.to_string(),
                });
            }
            if let Some((kind, msg)) = &status.write_error {
                return Err(Error::io(
                    "write to",
                    &self.shared.tty,
                    std::io::Error::new(*kind, msg.clone()),
                ));
            }
        }
        if bytes.is_empty() {
            return Ok(());
        }
        match self.input.try_send(Msg::Input(bytes.to_vec())) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Error::InputQueueFull {
                program: self.shared.program.clone(),
            }),
            Err(TrySendError::Disconnected(_)) => Err(Error::SessionGone {
                program: self.shared.program.clone(),
                how: "a closed terminal".into(),
            }),
        }
    }

    /// The colours reported from now on to the program's `OSC 10;?` / `OSC 11;?` queries.
    pub fn set_query_colors(&self, colors: QueryColors) {
        lock(&self.shared.screen).set_query_colors(colors);
    }

    /// Resizes the terminal (clamped to 2..=1000 each): the screen, the PTY (the program gets
    /// SIGWINCH) and the recording (a resize event).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        let (rows, cols) = clamp_size(rows, cols);
        let mut screen = lock(&self.shared.screen);
        if screen.size() == (rows, cols) {
            return Ok(());
        }
        screen.resize(rows, cols);
        // The screen lock is held until the PTY is resized, so output the program draws for
        // the new size is parsed at the new size; the recorder is taken before the screen is
        // released (the reader's order), so the cast keeps events in screen order.
        let recorder = lock(&self.shared.recorder);
        if let Some(rec) = recorder.as_ref() {
            rec.resize(rows, cols);
        }
        let result = lock(&self.master).resize(PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        });
        drop(recorder);
        drop(screen);
        self.shared.changed();
        result.map_err(|e| {
            Error::io(
                "resize",
                &self.shared.tty,
                std::io::Error::other(format!("{e:#}")),
            )
        })
    }

    /// The terminal's size as `(rows, cols)`.
    pub fn size(&self) -> (u16, u16) {
        lock(&self.shared.screen).size()
    }

    /// The screen as text, like `tmux capture-pane -p` (with `scrollback`: `-S -`, the history
    /// this screen keeps in memory; see [`crate::agent::history`] for the whole of it).
    pub fn capture(&self, scrollback: bool) -> String {
        lock(&self.shared.screen).capture(scrollback)
    }

    /// Lines that have scrolled off the top of the screen since the session started (kept in
    /// memory or not; the recording has them all).
    pub fn history_seen(&self) -> u64 {
        lock(&self.shared.screen).history_seen()
    }

    /// Waits until the recording holds all output read so far, for at most `patience`;
    /// whether it does (true with no recording, or once the session has ended).
    pub fn sync_recording(&self, patience: Duration) -> bool {
        let link = lock(&self.shared.recorder)
            .as_ref()
            .map(RecorderThread::link);
        link.is_none_or(|l| l.sync(patience))
    }

    /// Runs `f` on the screen (cells, cursor, modes) under the screen's lock; keep it short,
    /// the reader waits meanwhile.
    pub fn with_screen<R>(&self, f: impl FnOnce(&Screen) -> R) -> R {
        f(&lock(&self.shared.screen))
    }

    /// Runs `f` on the screen with its view scrolled `rows` lines up into the history (0 =
    /// live, clamped to the history kept), and the live screen's row stamps
    /// ([`Screen::row_stamps`]: which rows changed since a reader last looked), under the
    /// screen's lock; the view is live again afterwards, so every reader sees its own offset.
    pub fn with_view<R>(&self, rows: usize, f: impl FnOnce(&Screen, &[u64]) -> R) -> R {
        let mut screen = lock(&self.shared.screen);
        let stamps = screen.row_stamps().to_vec();
        if rows == 0 {
            return f(&screen, &stamps);
        }
        screen.set_view_offset(rows);
        let r = f(&screen, &stamps);
        screen.set_view_offset(0);
        r
    }

    /// The window title the program set (OSC 0 / 2).
    pub fn title(&self) -> String {
        lock(&self.shared.screen).title().to_string()
    }

    /// How the program ended; `None` while it runs. Once set, the output it printed before
    /// exiting has been parsed (unless something else kept its terminal open).
    pub fn exit_status(&self) -> Option<Exit> {
        lock(&self.shared.status).exit.clone()
    }

    /// Waits up to `d` for the program to end.
    pub fn wait_timeout(&self, d: Duration) -> Option<Exit> {
        let deadline = Instant::now() + d;
        let mut status = lock(&self.shared.status);
        loop {
            if let Some(exit) = &status.exit {
                return Some(exit.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            status = self
                .shared
                .status_changed
                .wait_timeout(status, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The program's process id.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Ends the program: SIGHUP now (as when a terminal closes), SIGKILL if it is still alive
    /// a second later. Returns at once; [`Session::wait_timeout`] waits for the end. The
    /// reader ends when the terminal's last user has gone.
    pub fn kill(&self) -> Result<()> {
        self.shared.kill()
    }

    /// Stops (`true`, SIGSTOP) or resumes (SIGCONT) the program in place: its process group
    /// and every process descended from it that left the group. A resumed program counts as
    /// having printed just now, so the time it was stopped is not taken for silence.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        let mut child = lock(&self.shared.child);
        match child.try_wait() {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => {}
            Err(e) => return Err(Error::io("wait for", &self.shared.tty, e)),
        }
        let pids = self.pid.map(|p| descendants(p as i32)).unwrap_or_default();
        self.shared.signal_group(signal);
        for pid in pids {
            // SAFETY: kill(2) with a positive pid and a valid signal; no memory is shared.
            unsafe {
                libc::kill(pid, signal);
            }
        }
        drop(child);
        if !frozen {
            let now = self.shared.epoch.elapsed().as_nanos() as u64;
            self.shared.last_output.store(now, Ordering::Relaxed);
        }
        Ok(())
    }

    /// When the program last printed something (the spawn time before it has).
    pub fn last_output(&self) -> Instant {
        self.shared.epoch + Duration::from_nanos(self.shared.last_output.load(Ordering::Relaxed))
    }

    /// Bytes read from the program so far.
    pub fn bytes_read(&self) -> u64 {
        self.shared.bytes_read.load(Ordering::Relaxed)
    }

    /// A receiver that sees a change whenever the screen changed (output, a resize) or the
    /// program ended; the value itself means nothing.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// The recording's path, if recording.
    pub fn recording_path(&self) -> Option<&Path> {
        self.recording.as_deref()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if lock(&self.shared.status).exit.is_none() {
            if let Err(e) = self.shared.kill() {
                tracing::warn!("could not kill '{}': {e}", self.shared.program);
            }
        }
    }
}

impl Shared {
    fn kill(self: &Arc<Self>) -> Result<()> {
        {
            let mut child = lock(&self.child);
            // Only signal a child that has not been reaped (its pid cannot have been reused).
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {}
                Err(e) => return Err(Error::io("wait for", &self.tty, e)),
            }
            child
                .clone_killer()
                .kill()
                .map_err(|e| Error::io("signal the program in", &self.tty, e))?;
            self.signal_group(libc::SIGHUP);
            // A frozen program takes its hangup only once it runs again.
            self.signal_group(libc::SIGCONT);
        }
        if self.kill_requested.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let shared = Arc::clone(self);
        std::thread::Builder::new()
            .name("pty-kill".to_string())
            .spawn(move || {
                let deadline = Instant::now() + KILL_GRACE;
                let mut status = lock(&shared.status);
                while status.exit.is_none() {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    status = shared
                        .status_changed
                        .wait_timeout(status, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                if status.exit.is_some() {
                    return;
                }
                drop(status);
                let mut child = lock(&shared.child);
                if let Ok(None) = child.try_wait() {
                    // SIGHUP again, a short grace, then SIGKILL.
                    shared.signal_group(libc::SIGKILL);
                    if let Err(e) = child.kill() {
                        tracing::warn!("could not kill '{}': {e}", shared.program);
                    }
                }
            })
            .map_err(|e| Error::io("start a thread for", &self.tty, e))?;
        Ok(())
    }

    /// Signals the program's process group, while its leader is unreaped (so the group id
    /// cannot belong to anyone else yet).
    fn signal_group(&self, signal: i32) {
        if let Some(group) = self.group {
            // SAFETY: kill(2) with a negative pid signals a process group; no memory is shared.
            unsafe {
                libc::kill(-group, signal);
            }
        }
    }

    fn publish_exit(&self, exit: Exit) {
        let mut status = lock(&self.status);
        if status.exit.is_some() {
            return;
        }
        let deadline = Instant::now() + DRAIN_GRACE;
        while !status.reader_done {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            status = self
                .status_changed
                .wait_timeout(status, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        status.exit = Some(exit);
        self.status_changed.notify_all();
        drop(status);
        self.changed();
    }
}

/// Reads the PTY and hands each chunk to the parser, so reading the next chunk overlaps with
/// parsing this one (the kernel's terminal layer and the emulator each take about half the
/// time of a busy agent's output). Ends at the end of output.
fn read_loop(shared: &Shared, mut reader: Box<dyn Read + Send>, chunks: &SyncSender<Vec<u8>>) {
    background_priority();
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIO: the slave side is closed (portable-pty maps it to Ok(0) already).
            Err(e) if e.raw_os_error() == Some(5) => break,
            Err(e) => {
                tracing::warn!("reading the terminal of '{}' failed: {e}", shared.program);
                break;
            }
        };
        if chunks.send(buf[..n].to_vec()).is_err() {
            break;
        }
    }
}

/// Parses what the reader read into the screen, records it and calls `notify`; at the end of
/// output, finishes the recording and says the output is done.
fn parse_loop(shared: &Shared, chunks: &Receiver<Vec<u8>>, tx: &SyncSender<Msg>) {
    background_priority();
    let room = lock(&shared.recorder).as_ref().map(RecorderThread::link);
    for chunk in chunks {
        // One reader parses at a time, process-wide: the others sleep instead of being
        // preempted while holding their screen's lock (which is what a view waits on).
        let (gate, mut screen) = ParseGate::with_screen(&shared.screen);
        screen.process(&chunk);
        let replies = screen.take_replies();
        // Take the recorder before letting go of the screen so events are recorded in the
        // order the screen saw them (see `Session::resize`).
        let recorder = lock(&shared.recorder);
        drop(screen);
        drop(gate);
        let n = chunk.len();
        if let Some(rec) = recorder.as_ref() {
            rec.output(chunk);
        }
        drop(recorder);
        shared.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        let since = u64::try_from(shared.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        shared.last_output.store(since, Ordering::Relaxed);
        if !replies.is_empty() {
            if let Err(TrySendError::Full(_)) = tx.try_send(Msg::Input(replies)) {
                tracing::warn!(
                    "'{}' does not read its input; dropped a terminal query reply",
                    shared.program
                );
            }
        }
        shared.changed();
        // A recorder behind by more than its queue holds: let it catch up before parsing more
        // (the reader, then the program, wait meanwhile).
        if let Some(room) = &room {
            room.wait_room();
        }
    }
    // Everything read is on disk before the session reports its end.
    let recorder = lock(&shared.recorder).take();
    if let Some(rec) = recorder {
        rec.finish();
    }
    lock(&shared.status).reader_done = true;
    shared.status_changed.notify_all();
    let _ = tx.try_send(Msg::Poke);
    shared.changed();
}

fn control_loop(shared: &Shared, rx: &Receiver<Msg>, mut writer: Box<dyn Write + Send>) {
    let mut interval = POLL_MIN;
    let mut exited = false;
    // Until the reader reaches the end of output, nothing polls here: a program's exit closes
    // its terminal, and the exit watcher covers one whose children keep it open.
    let mut polling = false;
    loop {
        let msg = if exited || !polling {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(interval)
        };
        match msg {
            Ok(Msg::Input(bytes)) => {
                if let Err(e) = writer.write_all(&bytes).and_then(|()| writer.flush()) {
                    let mut status = lock(&shared.status);
                    if status.write_error.is_none() && status.exit.is_none() {
                        tracing::warn!("writing to '{}' failed: {e}", shared.program);
                        status.write_error = Some((e.kind(), e.to_string()));
                    }
                }
            }
            Ok(Msg::Poke) => {
                polling = true;
                interval = POLL_MIN;
            }
            Err(RecvTimeoutError::Timeout) => interval = (interval * 2).min(POLL_MAX),
            Err(RecvTimeoutError::Disconnected) => {
                // The session is gone (and has signalled the program): reap it. Polling, so
                // the kill escalation can take the child's lock meanwhile.
                while !exited {
                    let polled = lock(&shared.child).try_wait();
                    match exit_of(polled, &shared.program) {
                        None => {
                            std::thread::sleep(interval);
                            interval = (interval * 2).min(POLL_MAX);
                        }
                        Some(exit) => {
                            exited = true;
                            shared.publish_exit(exit);
                        }
                    }
                }
                return;
            }
        }
        if !exited && polling {
            let polled = lock(&shared.child).try_wait();
            if let Some(exit) = exit_of(polled, &shared.program) {
                exited = true;
                shared.publish_exit(exit);
            }
        }
    }
}

/// Sessions whose program's exit the watcher looks for.
static WATCHED: Mutex<Vec<std::sync::Weak<Shared>>> = Mutex::new(Vec::new());
static WATCHER: std::sync::Once = std::sync::Once::new();

/// Has the exit watcher look for the exit of `shared`'s program while its terminal stays open
/// (a child of the program holding it): one thread for every session of the process, a look
/// every [`POLL_MAX`], instead of a timer per session.
fn watch_exit(shared: &Arc<Shared>) {
    lock(&WATCHED).push(Arc::downgrade(shared));
    WATCHER.call_once(|| {
        let started = std::thread::Builder::new()
            .name("pty-exit-watch".into())
            .spawn(|| loop {
                std::thread::sleep(POLL_MAX);
                let live: Vec<Arc<Shared>> = {
                    let mut watched = lock(&WATCHED);
                    watched.retain(|w| w.strong_count() > 0);
                    watched
                        .iter()
                        .filter_map(std::sync::Weak::upgrade)
                        .collect()
                };
                for shared in live {
                    let open = {
                        let st = lock(&shared.status);
                        st.exit.is_none() && !st.reader_done
                    };
                    if !open {
                        continue;
                    }
                    // A child lock held elsewhere (a kill, the control thread) is someone
                    // already looking.
                    let polled = match shared.child.try_lock() {
                        Ok(mut child) => child.try_wait(),
                        Err(_) => continue,
                    };
                    let Some(exit) = exit_of(polled, &shared.program) else {
                        continue;
                    };
                    // Publishing waits a moment for the last output: not on this thread.
                    let _ = std::thread::Builder::new()
                        .name("pty-exit".into())
                        .spawn(move || shared.publish_exit(exit));
                }
            });
        if let Err(e) = started {
            tracing::warn!("could not start the exit watcher: {e}");
        }
    });
}

/// What a `try_wait` says: the exit, if the program has ended (an error to wait counts as an
/// ending, logged).
fn exit_of(
    polled: std::io::Result<Option<portable_pty::ExitStatus>>,
    program: &str,
) -> Option<Exit> {
    match polled {
        Ok(None) => None,
        Ok(Some(s)) => Some(s.into()),
        Err(e) => {
            tracing::warn!("could not get the exit status of '{program}': {e}");
            Some(Exit {
                code: None,
                signal: None,
                success: false,
            })
        }
    }
}

/// A started program as `portable_pty` hands it over.
type ChildBox = Box<dyn Child + Send + Sync>;
/// The PTY's output side, read by the reader thread.
type PtyReader = Box<dyn Read + Send>;
/// The PTY's input side, written by the control thread.
type PtyWriter = Box<dyn Write + Send>;

/// Checks the working directory and finds the program; returns its resolved path and the
/// `TERM` to give it.
fn locate(spec: &SessionSpec) -> Result<(PathBuf, String)> {
    let cwd_ok = std::fs::metadata(&spec.cwd)
        .map(|m| m.is_dir())
        .unwrap_or(false);
    if !cwd_ok {
        return Err(Error::bad(format!(
            "working directory '{}' for runtime command '{}' does not exist",
            spec.cwd.display(),
            spec.program
        )));
    }
    let path_var = spec
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsString::from(v))
        .or_else(|| std::env::var_os("PATH"));
    let resolved = resolve_program(&spec.program, &spec.cwd, path_var.as_deref())?;
    let term = spec
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "TERM")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "xterm-256color".to_string());
    Ok((resolved, term))
}

/// Creates the spec's recording, if it asks for one, and starts its recorder thread.
fn start_recorder(
    spec: &SessionSpec,
    rows: u16,
    cols: u16,
    term: &str,
) -> Result<Option<RecorderThread>> {
    let Some(path) = &spec.recording else {
        return Ok(None);
    };
    let header = CastHeader {
        version: 2,
        width: u32::from(cols),
        height: u32::from(rows),
        timestamp: Some(chrono::Utc::now().timestamp()),
        title: Some(spec.title.clone()),
        env: [("TERM".to_string(), term.to_string())]
            .into_iter()
            .collect(),
    };
    Ok(Some(RecorderThread::start(Recorder::create(
        path, &header,
    )?)?))
}

/// An error of the pseudo-terminal itself, while doing `action`.
fn pty_error(action: &'static str, e: &dyn std::fmt::Display) -> Error {
    Error::io(action, "/dev/ptmx", std::io::Error::other(format!("{e:#}")))
}

/// The command that runs the spec's program: its arguments, working directory and
/// environment.
fn build_command(spec: &SessionSpec, resolved: &Path, term: &str) -> CommandBuilder {
    // A bare name is passed as given (so argv[0] stays the name); a path, resolved.
    let mut cmd = if spec.program.contains('/') {
        CommandBuilder::new(resolved)
    } else {
        CommandBuilder::new(&spec.program)
    };
    cmd.args(&spec.args);
    cmd.cwd(&spec.cwd);
    for var in not_inherited(std::env::vars_os().map(|(k, _)| k)) {
        cmd.env_remove(var);
    }
    cmd.env("TERM", term);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    cmd
}

/// Opens a PTY of `rows` x `cols` and starts the spec's program on its slave side; returns
/// the program and the master side.
fn start_child(
    spec: &SessionSpec,
    resolved: &Path,
    term: &str,
    rows: u16,
    cols: u16,
) -> Result<(ChildBox, Box<dyn MasterPty + Send>)> {
    let pair = portable_pty::native_pty_system()
        .openpty(PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| pty_error("open a pseudo-terminal", &e))?;
    let child = pair
        .slave
        .spawn_command(build_command(spec, resolved, term))
        .map_err(|e| Error::io("start", resolved, std::io::Error::other(format!("{e:#}"))))?;
    // Only the child may hold the slave side, or the reader never sees the end.
    drop(pair.slave);
    Ok((child, pair.master))
}

/// The PTY's reader and writer, with `child` handed back; kills `child` when either cannot
/// be had.
fn pty_io(master: &dyn MasterPty, child: ChildBox) -> Result<(ChildBox, PtyReader, PtyWriter)> {
    let reader = match master.try_clone_reader() {
        Ok(r) => r,
        Err(e) => {
            kill_now(child);
            return Err(pty_error("read from the pseudo-terminal", &e));
        }
    };
    let writer = match master.take_writer() {
        Ok(w) => w,
        Err(e) => {
            kill_now(child);
            return Err(pty_error("write to the pseudo-terminal", &e));
        }
    };
    Ok((child, reader, writer))
}

/// The state the session's threads share: an empty screen of the spec's size and the
/// program's recorder and process.
fn new_shared(
    spec: &SessionSpec,
    rows: u16,
    cols: u16,
    tty: PathBuf,
    recorder: Option<RecorderThread>,
    child: ChildBox,
    notify: Arc<dyn Fn() + Send + Sync>,
) -> Arc<Shared> {
    let mut screen = Screen::new(rows, cols, spec.scrollback);
    screen.set_query_colors(spec.query_colors);
    screen.set_scroll_on_clear(true);
    let pid = child.process_id();
    Arc::new(Shared {
        program: spec.program.clone(),
        tty,
        screen: Mutex::new(screen),
        recorder: Mutex::new(recorder),
        child: Mutex::new(child),
        status: Mutex::new(Status::default()),
        status_changed: Condvar::new(),
        bytes_read: AtomicU64::new(0),
        last_output: AtomicU64::new(0),
        epoch: Instant::now(),
        kill_requested: AtomicBool::new(false),
        group: pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1),
        notify,
        changes: tokio::sync::watch::Sender::new(0),
    })
}

/// Starts the reader, parser and control threads (named after `name`); kills the program
/// when one cannot be started.
fn start_threads(
    shared: &Arc<Shared>,
    name: &str,
    reader: PtyReader,
    writer: PtyWriter,
    tx: &SyncSender<Msg>,
    rx: Receiver<Msg>,
) -> Result<()> {
    let (chunk_tx, chunk_rx) = mpsc::sync_channel(PARSE_QUEUE);
    let started = {
        let shared = Arc::clone(shared);
        std::thread::Builder::new()
            .name(format!("pty-read-{name}"))
            .spawn(move || read_loop(&shared, reader, &chunk_tx))
    }
    .and_then(|_| {
        let shared = Arc::clone(shared);
        let tx = tx.clone();
        std::thread::Builder::new()
            .name(format!("pty-parse-{name}"))
            .spawn(move || parse_loop(&shared, &chunk_rx, &tx))
    })
    .and_then(|_| {
        let shared = Arc::clone(shared);
        std::thread::Builder::new()
            .name(format!("pty-ctl-{name}"))
            .spawn(move || control_loop(&shared, &rx, writer))
    });
    if let Err(e) = started {
        let _ = lock(&shared.child).kill();
        return Err(Error::io("start a thread for", &shared.tty, e));
    }
    Ok(())
}

/// Ends a child that was started but cannot be used.
fn kill_now(mut child: Box<dyn Child + Send + Sync>) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The process-wide turn to parse agents' output. With many agents streaming on few cores,
/// readers that all parse at once get preempted while holding their screen's lock, and whoever
/// needs that screen (the cockpit drawing it) waits for the scheduler. Taking turns keeps every
/// lock hold short; a single agent's ingest is unaffected.
struct ParseGate;

static PARSING: Mutex<bool> = Mutex::new(false);
static PARSE_TURN: Condvar = Condvar::new();

impl ParseGate {
    /// The turn and `screen`'s lock. The turn is never held while waiting for the lock:
    /// whoever reads that screen (a view being sent) then stalls only this agent's ingest,
    /// never every agent's.
    fn with_screen(screen: &Mutex<Screen>) -> (ParseGate, MutexGuard<'_, Screen>) {
        loop {
            let gate = ParseGate::enter();
            match screen.try_lock() {
                Ok(guard) => return (gate, guard),
                Err(std::sync::TryLockError::Poisoned(p)) => return (gate, p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {
                    drop(gate);
                    drop(lock(screen));
                }
            }
        }
    }

    fn enter() -> ParseGate {
        let mut busy = lock(&PARSING);
        while *busy {
            busy = PARSE_TURN
                .wait(busy)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *busy = true;
        ParseGate
    }
}

impl Drop for ParseGate {
    fn drop(&mut self) {
        *lock(&PARSING) = false;
        PARSE_TURN.notify_one();
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::not_inherited;
    use std::ffi::OsString;

    #[test]
    fn a_ci_job_and_another_terminal_are_not_inherited() {
        let names = [
            "CI",
            "CI_JOB_ID",
            "GITHUB_ACTIONS",
            "HOME",
            "PATH",
            "CIRCLE",
            "TERM",
        ];
        let dropped = not_inherited(names.iter().map(OsString::from));
        for gone in [
            "CI",
            "CI_JOB_ID",
            "GITHUB_ACTIONS",
            "TMUX",
            "TMUX_PANE",
            "COLUMNS",
            "LINES",
        ] {
            assert!(
                dropped.contains(&OsString::from(gone)),
                "{gone}: {dropped:?}"
            );
        }
        for kept in ["HOME", "PATH", "CIRCLE", "TERM"] {
            assert!(
                !dropped.contains(&OsString::from(kept)),
                "{kept}: {dropped:?}"
            );
        }
    }
}
