//! Scripted model servers for the real-runtime tests: the shared core.
//!
//! Each API (Anthropic Messages, OpenAI Responses, Gemini generateContent) has its own module
//! beside this one that speaks that wire format; what they share is here: the script that
//! decides the model's next move from the conversation so far, the log of every request, and
//! the HTTP loop on 127.0.0.1 with a free port.
//!
//! A script sees a [`Turn`]: the newest user text in the request (the prompt or a nudge) and
//! the results of the tool calls made since it, in order, and answers with one [`Action`]:
//! run a shell command, write a file, or say something and end the turn. So the results of
//! earlier calls decide the next step, as with a real model.

#![allow(dead_code)]

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the model does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run a shell command with the CLI's shell tool.
    Shell(String),
    /// Write a whole file (relative to the working directory) with the CLI's edit tool.
    Write { path: String, content: String },
    /// Answer with text and end the turn.
    Say(String),
}

/// The conversation as the script sees it.
#[derive(Debug, Clone, Default)]
pub struct Turn {
    /// The newest user text of the request that is not a tool result.
    pub prompt: String,
    /// Every user text in the request, oldest first (earlier turns included).
    pub user_texts: Vec<String>,
    /// Outputs of the tool calls made since `prompt`, oldest first.
    pub results: Vec<String>,
}

/// The model's policy: the next action for a turn.
pub type Script = Arc<dyn Fn(&Turn) -> Action + Send + Sync>;

/// A script from rules: the first rule whose needle is in the turn's prompt gives the plan,
/// and the plan's step after the last one done (counted by tool results) is the next action;
/// past its end, or with no rule matching, the model says `done_text`.
pub fn plan(rules: Vec<(&str, Vec<Action>)>, done_text: &str) -> Script {
    let rules: Vec<(String, Vec<Action>)> =
        rules.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let done = done_text.to_string();
    Arc::new(move |turn: &Turn| {
        for (needle, steps) in &rules {
            if turn.prompt.contains(needle.as_str()) {
                return steps
                    .get(turn.results.len())
                    .cloned()
                    .unwrap_or_else(|| Action::Say(done.clone()));
            }
        }
        Action::Say(done.clone())
    })
}

/// The text of a message field as the APIs write it: a string, or a list of parts whose
/// `text`s are joined; anything else as JSON; nothing as "".
pub fn text_of(field: Option<&Value>) -> String {
    match field {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    /// The URL path and query.
    pub url: String,
    /// The body as JSON (Null when it was not JSON).
    pub body: Value,
    /// True when the server took it for a side request (title, summary, token count, ...)
    /// rather than a turn of the agent's conversation.
    pub side: bool,
    /// The action the script chose, for turns.
    pub action: Option<Action>,
}

/// The log of a server, shared with its thread.
pub type Log = Arc<Mutex<Vec<Logged>>>;

/// A request handed to an API module.
pub struct Incoming<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub body: &'a Value,
}

/// A response an API module wants sent.
pub struct Outgoing {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Whether it was a side request (for the log).
    pub side: bool,
    pub action: Option<Action>,
}

impl Outgoing {
    pub fn json(v: &Value) -> Outgoing {
        Outgoing {
            status: 200,
            content_type: "application/json",
            body: v.to_string(),
            side: true,
            action: None,
        }
    }

    /// Server-sent events: `(event name, data)` pairs; a name of "" writes no `event:` line.
    pub fn sse(events: &[(&str, Value)], action: Option<Action>) -> Outgoing {
        let mut body = String::new();
        for (name, data) in events {
            if !name.is_empty() {
                body.push_str(&format!("event: {name}\n"));
            }
            body.push_str(&format!("data: {data}\n\n"));
        }
        Outgoing {
            status: 200,
            content_type: "text/event-stream",
            body,
            side: false,
            action,
        }
    }

    pub fn status(status: u16, v: &Value) -> Outgoing {
        Outgoing {
            status,
            content_type: "application/json",
            body: v.to_string(),
            side: true,
            action: None,
        }
    }
}

/// A running server; it stops with the test process.
pub struct Server {
    pub port: u16,
    pub log: Log,
}

impl Server {
    /// Serves `handle` on 127.0.0.1 with a free port, one thread per connection.
    pub fn start(handle: impl Fn(&Incoming) -> Outgoing + Send + Sync + 'static) -> Server {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let log: Log = Arc::new(Mutex::new(Vec::new()));
        let handle = Arc::new(handle);
        let server = Arc::new(server);
        let thread_log = log.clone();
        std::thread::spawn(move || {
            for mut req in server.incoming_requests() {
                let handle = handle.clone();
                let log = thread_log.clone();
                std::thread::spawn(move || {
                    let mut raw = String::new();
                    let _ = req.as_reader().read_to_string(&mut raw);
                    let body: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
                    let method = req.method().to_string();
                    let url = req.url().to_string();
                    let out = handle(&Incoming {
                        method: &method,
                        url: &url,
                        body: &body,
                    });
                    log.lock().unwrap().push(Logged {
                        method,
                        url,
                        body,
                        side: out.side,
                        action: out.action.clone(),
                    });
                    let header = tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        out.content_type.as_bytes(),
                    )
                    .expect("a valid header");
                    let resp = tiny_http::Response::from_string(out.body)
                        .with_status_code(out.status)
                        .with_header(header);
                    let _ = req.respond(resp);
                });
            }
        });
        Server { port, log }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    /// The requests that were turns of the agent's conversation (not side requests).
    pub fn turns(&self) -> Vec<Logged> {
        self.requests().into_iter().filter(|l| !l.side).collect()
    }

    /// Waits until `ok` holds for the log, or panics after `secs` with the log's URLs.
    pub fn wait_for(&self, what: &str, secs: u64, ok: impl Fn(&[Logged]) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let log = self.requests();
            if ok(&log) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; the server saw: {:?}",
                log.iter()
                    .map(|l| format!("{} {}", l.method, l.url))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Where a real agent CLI is: `$GT_AGENTS_BIN/<name>` (the directory `.ci/run` installs the
/// pinned CLIs into, `node_modules/.bin`), else `name` on PATH. `None` when absent, after
/// saying so on stderr; with `GT_REQUIRE_REAL_AGENTS=1` (as CI sets it) absence is a failure.
pub fn cli(name: &str) -> Option<std::path::PathBuf> {
    let from_env = std::env::var_os("GT_AGENTS_BIN")
        .map(|d| std::path::PathBuf::from(d).join(name))
        .filter(|p| p.is_file());
    let found = from_env.or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        let msg = format!(
            "the real `{name}` CLI is not installed (not in $GT_AGENTS_BIN nor on PATH); \
             install the pinned CLIs with `npm ci --prefix DIR` from tests/real-agents and set \
             GT_AGENTS_BIN=DIR/node_modules/.bin"
        );
        if std::env::var("GT_REQUIRE_REAL_AGENTS").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
    }
    found
}

/// How a scripted polecat behaves (see [`polecat`]).
#[derive(Debug, Clone, Default)]
pub struct Polecat {
    /// The file its work writes (relative to its worktree) and commits; `{bead}` in it
    /// becomes the id of the bead on its hook (read from prime's output), so polecats on one
    /// server write different files.
    pub file: String,
    /// Its first change also creates `BROKEN`, which fails the sample rig's `test.sh`.
    pub break_tests: bool,
    /// It answers the first prime prompt with words only, so GUPP must nudge it.
    pub polite: bool,
    /// Its first command prints who its shell says it is (`env: GT_AGENT=.. GT_BEAD=..`)
    /// before `gastown-tui prime`.
    pub show_env: bool,
}

/// The line a polecat with `show_env` prints first in its shell.
pub fn env_line(agent: &str, bead: &str) -> String {
    format!("env: GT_AGENT={agent} GT_BEAD={bead} BD_ACTOR={agent}")
}

/// The model of a Gas Town polecat: on a prime prompt it runs `gastown-tui prime`, then
/// (reading prime's output) makes its change or, when prime shows a FIX_NEEDED mail, fixes
/// the rejected one; commits, runs the tests, runs `gastown-tui done`, and says it is done.
pub fn polecat(p: Polecat) -> Script {
    Arc::new(move |turn: &Turn| {
        let primes = turn
            .user_texts
            .iter()
            .filter(|t| t.contains("gastown-tui prime"))
            .count();
        if !turn.prompt.contains("gastown-tui prime") {
            return Action::Say("Noted.".into());
        }
        if p.polite && primes <= 1 {
            return Action::Say("I will wait until I am told again.".into());
        }
        let fixing = turn
            .results
            .first()
            // A mail's subject (prime's own text mentions FIX_NEEDED mails too).
            .is_some_and(|r| r.contains("FIX_NEEDED: "));
        let bead = turn
            .results
            .first()
            .and_then(|r| r.split("## On your hook: ").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("work");
        let mut p = p.clone();
        p.file = p.file.replace("{bead}", bead);
        match turn.results.len() {
            0 if p.show_env => Action::Shell(
                "echo \"env: GT_AGENT=$GT_AGENT GT_BEAD=$GT_BEAD BD_ACTOR=$BD_ACTOR\"; \
                 gastown-tui prime"
                    .into(),
            ),
            0 => Action::Shell("gastown-tui prime".into()),
            1 if fixing => Action::Shell(
                "git rm -q BROKEN && git commit -qm 'Remove BROKEN: the tests pass again'".into(),
            ),
            1 => Action::Write {
                path: p.file.clone(),
                content: format!("written by a scripted model for {}\n", p.file),
            },
            2 if fixing => Action::Shell("./test.sh && echo TESTS-GREEN || echo TESTS-RED".into()),
            2 => {
                let broken = if p.break_tests {
                    " && touch BROKEN && git add BROKEN"
                } else {
                    ""
                };
                Action::Shell(format!(
                    "git add '{}'{broken} && git commit -qm 'Add {}' && echo COMMITTED",
                    p.file, p.file
                ))
            }
            3 if fixing => Action::Shell("gastown-tui done".into()),
            3 => Action::Shell("./test.sh && echo TESTS-GREEN || echo TESTS-RED".into()),
            4 if !fixing => Action::Shell("gastown-tui done".into()),
            _ => Action::Say("Done: the work is submitted.".into()),
        }
    })
}

/// The live processes (pid, argv), other than this one, whose command line or environment
/// names `dir`: the engine, its agents and whatever they started.
pub fn procs_of(dir: &Path) -> Vec<(i32, Vec<String>)> {
    let me = std::process::id() as i32;
    let mark = dir.display().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || !alive(pid) {
            continue;
        }
        let read = |f: &str| std::fs::read(e.path().join(f)).unwrap_or_default();
        let cmdline = read("cmdline");
        let names = |bytes: &[u8]| String::from_utf8_lossy(bytes).contains(&mark);
        if !names(&cmdline) && !names(&read("environ")) {
            continue;
        }
        let argv = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        found.push((pid, argv));
    }
    found
}

/// Whether `pid` runs (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        })
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// Kills every process of `dir` (TERM, then KILL).
pub fn kill_procs_of(dir: &Path) {
    for sig in [libc::SIGTERM, libc::SIGKILL] {
        let procs = procs_of(dir);
        if procs.is_empty() {
            return;
        }
        for (pid, _) in procs {
            // SAFETY: kill(2) with a pid read from /proc; a gone pid gives ESRCH.
            unsafe {
                libc::kill(pid, sig);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Kills what still runs from a test's temp dir when the test ends, passed or not (a CLI's
/// daemon or relaunched child). Declare it before the engine so it drops after it.
pub struct Reaper(pub PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        kill_procs_of(&self.0);
    }
}

/// Waits until `s`'s screen satisfies `ok`, or panics with the screen after `secs` (or at
/// once when the program ends first).
pub fn wait_screen(
    s: &gastown_tui::agent::Session,
    what: &str,
    secs: u64,
    ok: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let screen = s.capture(false);
        if ok(&screen) {
            return screen;
        }
        if let Some(exit) = s.exit_status() {
            panic!("the program ended ({exit:?}) while waiting for {what}; its screen:\n{screen}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; the screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
