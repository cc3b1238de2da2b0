//! The client side: find the town's engine and connect to it, start one detached from the
//! terminal, ask how it is, stop it.

use super::protocol::{
    read_frame, read_msg, write_frame, write_msg, EngineStatus, FromEngine, Hello, ToEngine,
    Welcome, PROTOCOL,
};
use super::socket;
use crate::engine::Refusal;
use crate::town::Town;
use crate::{Error, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// How long a started engine may take to answer.
const START_PATIENCE: Duration = Duration::from_secs(20);
/// How long the engine may take to welcome a client.
const WELCOME_PATIENCE: Duration = Duration::from_secs(10);
/// How long a stopping engine may take to end its agents and exit.
const STOP_PATIENCE: Duration = Duration::from_secs(60);

/// A connection to a town's engine, after the hello.
pub struct Connection {
    pub rd: OwnedReadHalf,
    pub wr: OwnedWriteHalf,
    pub welcome: Welcome,
    pub socket: PathBuf,
}

impl Connection {
    pub async fn send(&mut self, msg: &ToEngine) -> Result<()> {
        write_msg(&mut self.wr, msg)
            .await
            .map_err(|e| Error::io("write to", &self.socket, e))
    }

    /// The next message; `None` when the engine closed the connection.
    pub async fn recv(&mut self) -> Result<Option<FromEngine>> {
        read_msg(&mut self.rd)
            .await
            .map_err(|e| Error::EngineLost(format!("the engine's connection broke: {e}")))
    }
}

/// Connects to the town's engine as a `client` (`cockpit`, `attach`, `cli`); `None` when no
/// engine answers. An engine of another protocol, or one that refuses this user, is an error
/// that says so.
pub async fn connect(town: &Town, client: &str) -> Result<Option<Connection>> {
    let Some(path) = socket::recorded(town) else {
        return Ok(None);
    };
    connect_at(path, client).await
}

/// `__probe SOCKET` (for tests): connects to a socket as a `cli` client and says what the
/// engine answered, or why it could not.
pub async fn probe(path: PathBuf) -> String {
    match connect_at(path, "cli").await {
        Ok(Some(c)) => format!("welcome from pid {}", c.welcome.pid),
        Ok(None) => "no engine answers".to_string(),
        Err(e) => e.to_string(),
    }
}

async fn connect_at(path: PathBuf, client: &str) -> Result<Option<Connection>> {
    let mut stream = match UnixStream::connect(&path).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(Error::io("connect to the engine at", &path, e)),
    };
    let hello = Hello {
        protocol: PROTOCOL,
        version: env!("CARGO_PKG_VERSION").to_string(),
        client: client.to_string(),
    };
    let exchange = async {
        // An engine that refuses us answers without reading our hello, and may have closed
        // already: its answer is still there to read.
        let _ = write_frame(&mut stream, &serde_json::to_vec(&hello)?).await;
        read_frame(&mut stream)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
    };
    let frame = match tokio::time::timeout(WELCOME_PATIENCE, exchange).await {
        Ok(Ok(Some(f))) => f,
        // It closed on us: an engine on its way out.
        Ok(Ok(None)) => return Ok(None),
        Ok(Err(e)) => return Err(Error::io("greet the engine at", &path, e)),
        Err(_) => {
            return Err(Error::EngineLost(format!(
                "the engine at {} does not answer (within {} s)",
                path.display(),
                WELCOME_PATIENCE.as_secs()
            )))
        }
    };
    let welcome: Welcome = serde_json::from_slice(&frame).map_err(|e| {
        Error::EngineLost(format!(
            "the engine at {} answered something that is not a welcome ({e}): is it another \
             gastown-tui?",
            path.display()
        ))
    })?;
    if let Some(why) = &welcome.error {
        return Err(Error::Conflict(format!(
            "the engine (pid {}): {why}",
            welcome.pid
        )));
    }
    if welcome.protocol != PROTOCOL {
        return Err(Error::Conflict(format!(
            "the engine (pid {}, gastown-tui {}) speaks protocol {} and this gastown-tui ({}) \
             speaks protocol {PROTOCOL}: stop it with the gastown-tui that started it \
             (`gastown-tui down`; the agents' hooks stay)",
            welcome.pid,
            welcome.version,
            welcome.protocol,
            env!("CARGO_PKG_VERSION")
        )));
    }
    let (rd, wr) = stream.into_split();
    Ok(Some(Connection {
        rd,
        wr,
        welcome,
        socket: path,
    }))
}

/// Connects, starting the engine first when none answers (like `tmux new -A`); says whether
/// it was started.
pub async fn connect_or_start(town: &Town, client: &str) -> Result<(Connection, bool)> {
    if let Some(c) = connect(town, client).await? {
        return Ok((c, false));
    }
    Ok((start(town, client).await?, true))
}

/// The engine's log, where a detached engine's output goes.
pub fn engine_log(town: &Town) -> PathBuf {
    town.logs_dir().join("engine.log")
}

/// Starts the town's engine detached from this terminal (its own session, stdin from
/// /dev/null, output to `logs/engine.log`) and connects once it answers. When it ends first
/// (a bad town.toml, say), the error carries the end of its log.
pub async fn start(town: &Town, client: &str) -> Result<Connection> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::process::CommandExt;
    let exe =
        std::env::current_exe().map_err(|e| Error::io("find", "the gastown-tui binary", e))?;
    let log_path = engine_log(town);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| Error::io("open", &log_path, e))?;
    let start_len = log.metadata().map(|m| m.len()).unwrap_or(0);
    let err = log
        .try_clone()
        .map_err(|e| Error::io("open", &log_path, e))?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("--town")
        .arg(&town.root)
        .args(["up", "--headless"])
        .current_dir(&town.root)
        // The engine belongs to the town, not to an agent whose terminal may have started it.
        .env_remove(crate::agent::sys::SESSION_MARK)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe; the child leaves our session and terminal, so
    // neither a hangup nor ctrl-c here reaches it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| Error::io("start", &exe, e))?;
    let deadline = Instant::now() + START_PATIENCE;
    // An engine answers within tens of milliseconds: look often at first, then less.
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(c) = connect(town, client).await? {
            // Reaped by a thread of its own when it ends, so it never lingers as a zombie.
            std::thread::spawn(move || child.wait());
            return Ok(c);
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Lost a race with another engine starting? Then that one answers soon.
            if let Some(c) = wait_for_engine(town, client, Duration::from_secs(2)).await? {
                return Ok(c);
            }
            let tail = log_tail(&log_path, start_len);
            return Err(Error::Conflict(format!(
                "the engine did not start ({status}); {}:\n{tail}",
                log_path.display()
            )));
        }
        if Instant::now() > deadline {
            return Err(Error::Conflict(format!(
                "the engine (pid {}) did not answer within {} s; see {}",
                child.id(),
                START_PATIENCE.as_secs(),
                log_path.display()
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(Duration::from_millis(20));
    }
}

async fn wait_for_engine(town: &Town, client: &str, d: Duration) -> Result<Option<Connection>> {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        if let Some(c) = connect(town, client).await? {
            return Ok(Some(c));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(None)
}

/// What the log got since `from` (its last 20 lines).
fn log_tail(path: &std::path::Path, from: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or(&[])).to_string();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Runs `f` on a small runtime of its own (for the CLI's one-shot requests).
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start", "the tokio runtime", e))?
        .block_on(f)
}

/// How the town's engine is; `None` when none answers.
pub async fn status(town: &Town) -> Result<Option<EngineStatus>> {
    let Some(mut c) = connect(town, "cli").await? else {
        return Ok(None);
    };
    c.send(&ToEngine::Status).await?;
    loop {
        match c.recv().await? {
            Some(FromEngine::Status(s)) => return Ok(Some(s)),
            Some(_) => continue,
            None => return Ok(None),
        }
    }
}

/// Asks the town's engine to carry out `cmd` and waits (up to `patience`) for its answer:
/// `Ok(None)` when no engine answers, else the engine's answer (its text, or why it failed).
pub async fn ask(
    town: &Town,
    cmd: crate::engine::Command,
    patience: Duration,
) -> Result<Option<std::result::Result<Option<String>, Refusal>>> {
    let Some(mut c) = connect(town, "cli").await? else {
        return Ok(None);
    };
    c.send(&ToEngine::Command { id: 1, cmd }).await?;
    let answer = tokio::time::timeout(patience, async {
        loop {
            match c.recv().await? {
                Some(FromEngine::Answer { id: 1, result }) => return Ok(Some(result)),
                Some(FromEngine::Stopping { reason }) => {
                    return Err(Error::EngineLost(format!(
                        "the engine is stopping ({reason})"
                    )))
                }
                Some(_) => continue,
                None => return Err(Error::EngineLost("the engine closed the connection".into())),
            }
        }
    })
    .await;
    answer.unwrap_or_else(|_| {
        Err(Error::EngineLost(format!(
            "the engine (pid {}) gave no answer within {} s",
            c.welcome.pid,
            patience.as_secs()
        )))
    })
}

/// The pid holding the town's engine lock, if that process is alive.
pub fn lock_holder(town: &Town) -> Option<u32> {
    lock_holder_in(&town.beads_dir())
}

/// [`lock_holder`] for the town whose `.beads` directory is `beads_dir`.
pub fn lock_holder_in(beads_dir: &std::path::Path) -> Option<u32> {
    let text = std::fs::read_to_string(beads_dir.join("engine.lock")).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    // A recycled pid is some other program.
    String::from_utf8_lossy(&cmdline)
        .contains("gastown-tui")
        .then_some(pid)
}

/// How `down` went.
#[derive(Debug, Clone, PartialEq)]
pub enum Stopped {
    /// The engine (pid) stopped, with this many agents running before.
    Engine { pid: u32, agents: usize },
    /// No engine was running.
    NoEngine,
}

/// Stops the town's engine and its agents (their hooks stay) and waits until it has exited.
/// An engine that cannot be asked (another protocol) gets SIGTERM, which stops it the same.
pub async fn stop(town: &Town) -> Result<Stopped> {
    let asked = match connect(town, "cli").await {
        Ok(Some(mut c)) => {
            let pid = c.welcome.pid;
            c.send(&ToEngine::Status).await?;
            let mut agents = 0;
            c.send(&ToEngine::Stop).await?;
            // Read until it closes: the status, then its goodbye.
            while let Ok(Some(m)) = c.recv().await {
                if let FromEngine::Status(s) = m {
                    agents = s.agents.running;
                }
            }
            Some((pid, agents))
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!("cannot ask the engine to stop: {e}");
            None
        }
    };
    let (pid, agents) = match asked {
        Some(x) => x,
        None => match lock_holder(town) {
            Some(pid) => {
                // SAFETY: a signal to a process id; no memory is involved.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
                (pid, 0)
            }
            None => return Ok(Stopped::NoEngine),
        },
    };
    let deadline = Instant::now() + STOP_PATIENCE;
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && lock_holder(town) == Some(pid) {
        if Instant::now() > deadline {
            return Err(Error::Conflict(format!(
                "the engine (pid {pid}) did not stop within {} s",
                STOP_PATIENCE.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(Stopped::Engine { pid, agents })
}
