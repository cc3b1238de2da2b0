//! Helpers shared by the integration tests: temp towns and the real binary.

#![allow(dead_code)]

pub mod kit;
pub mod pty;
pub mod real;

pub use kit::source_repo;

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_gastown-tui");

/// A fresh town in a temp dir, with a short JSONL flush debounce.
pub struct TestTown {
    pub dir: tempfile::TempDir,
}

impl TestTown {
    pub fn new() -> TestTown {
        let dir = tempfile::tempdir().unwrap();
        let t = TestTown { dir };
        t.cmd().arg("init").arg(t.root()).assert().success();
        let cfg = t.root().join("town.toml");
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text.push_str("\n[store]\nflush_debounce = \"100ms\"\n");
        std::fs::write(&cfg, text).unwrap();
        t
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("town")
    }

    /// The pid of the town's engine, if one is alive (it holds `.beads/engine.lock`).
    pub fn engine_pid(&self) -> Option<i32> {
        gastown_tui::server::client::lock_holder_in(&self.root().join(".beads")).map(|p| p as i32)
    }

    /// The binary with a clean environment: no town or actor leaking in from the caller.
    pub fn cmd(&self) -> Command {
        Command::from_std(kit::command(BIN, self.dir.path()))
    }

    /// The binary pointed at this town.
    pub fn gt(&self) -> Command {
        let mut c = self.cmd();
        c.arg("--town").arg(self.root());
        c
    }

    /// Runs a command that must succeed and returns its stdout parsed as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.gt().args(args).arg("--json").assert().success();
        let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}\n{text}"))
    }

    /// Creates a bead and returns its id.
    pub fn create(&self, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["bead", "create", title];
        args.extend_from_slice(extra);
        self.json(&args)["id"].as_str().unwrap().to_string()
    }

    /// Runs a command that must fail with `code`; returns its stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.gt().args(args).assert().code(code);
        String::from_utf8(out.get_output().stderr.clone()).unwrap()
    }

    pub fn ids(v: &Value) -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The state of every file under `dir` (path and contents), to show a failed command changed
/// nothing on disk.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

/// An engine a cockpit started in the background outlives the test otherwise.
impl Drop for TestTown {
    fn drop(&mut self) {
        if let Some(pid) = self.engine_pid() {
            // SAFETY: signals to a process id; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.engine_pid() == Some(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if self.engine_pid() == Some(pid) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// The cockpit: the real binary in a real PTY (our own `agent::Session`, see [`pty`]), keys
/// typed, the screen read back as text.
pub struct Cockpit(pub pty::Pty);

impl std::ops::Deref for Cockpit {
    type Target = pty::Pty;
    fn deref(&self) -> &pty::Pty {
        &self.0
    }
}

impl Cockpit {
    /// `gastown-tui --town ROOT [args]` in a rows x cols terminal; waits for the cockpit
    /// (unless `args` ask for something else: then for any screen).
    pub fn open(t: &TestTown, rows: u16, cols: u16) -> Cockpit {
        let c = Cockpit::spawn(t, rows, cols, &[]);
        c.wait("the cockpit", |s| {
            s.contains("Agents") && s.contains("? help")
        });
        c
    }

    pub fn spawn(t: &TestTown, rows: u16, cols: u16, args: &[&str]) -> Cockpit {
        Cockpit(pty::Pty::spawn(
            BIN,
            t.dir.path(),
            &t.root(),
            (rows, cols),
            None,
            args,
        ))
    }

    /// Shows `each` every complete frame (no synchronized update open) the cockpit draws
    /// within `d`, read as soon as its output is parsed, until `each` says it has seen enough
    /// (true); whether it did.
    pub fn frames(&self, d: Duration, mut each: impl FnMut(&str) -> bool) -> bool {
        let deadline = Instant::now() + d;
        let mut seen = self.parsed.now();
        while Instant::now() < deadline {
            let (count, _) = self.parsed.wait_past(seen, Duration::from_millis(10));
            if count == seen {
                continue;
            }
            seen = count;
            if let (text, true) = self.frame() {
                if each(&text) {
                    return true;
                }
            }
        }
        false
    }

    pub fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        self.0.wait(what, Duration::from_secs(30), ok)
    }

    pub fn keys(&self, bytes: &str) {
        self.s.write(bytes.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(60));
    }

    /// Waits for the cockpit to exit; returns what it printed last (the screen).
    pub fn exited(&self) -> String {
        let exit = self
            .s
            .wait_timeout(Duration::from_secs(30))
            .expect("the cockpit did not exit");
        assert!(exit.success, "{exit}: {}", self.screen());
        self.screen()
    }
}

/// The engine as a child process; stopped with SIGTERM when dropped.
pub struct Up(pub Child);

impl Up {
    pub fn start(t: &TestTown) -> Up {
        Up::start_at(t, &t.root())
    }

    /// The engine of the town at `root` (not necessarily `t`'s own).
    pub fn start_at(t: &TestTown, root: &Path) -> Up {
        Up::start_full(t, root, &[])
    }

    /// The engine of `t` with extra environment for it and its agents (its HOME is the test
    /// town's temp dir: a user's first day, unless the test put something there).
    pub fn start_with(t: &TestTown, env: &[(String, String)]) -> Up {
        Up::start_full(t, &t.root(), env)
    }

    fn start_full(t: &TestTown, root: &Path, env: &[(String, String)]) -> Up {
        let child = kit::command(BIN, t.dir.path())
            .arg("--town")
            .arg(root)
            .args(["up", "--headless"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let up = Up(child);
        // Ready when its heartbeat lets a request through.
        wait_for(t, "the engine's heartbeat", || {
            let out = t
                .cmd()
                .arg("--town")
                .arg(root)
                .args(["nudge", "nobody", "x"])
                .output()
                .unwrap();
            !String::from_utf8_lossy(&out.stderr).contains("no engine is running")
        });
        up
    }

    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the engine did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The live processes (not zombies) whose environment holds every one of `vars` (`NAME=value`)
/// and, when given, whose command line is `argv`.
pub fn processes_with(vars: &[String], argv: Option<&[&str]>) -> Vec<i32> {
    let argv = argv.map(|a| {
        a.iter()
            .flat_map(|s| [s.as_bytes(), b"\0"].concat())
            .collect::<Vec<u8>>()
    });
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let read = |f: &str| std::fs::read(format!("/proc/{pid}/{f}")).unwrap_or_default();
            let stat = String::from_utf8_lossy(&read("stat")).into_owned();
            let live = stat
                .rsplit_once(") ")
                .is_some_and(|(_, r)| !r.starts_with('Z') && !r.starts_with('X'));
            let environ = read("environ");
            live && argv.as_ref().is_none_or(|a| read("cmdline") == *a)
                && vars
                    .iter()
                    .all(|v| environ.split(|b| *b == 0).any(|kv| kv == v.as_bytes()))
        })
        .collect()
}

/// Runs the rig's `test.sh` at `commit` of the repository at `repo`, in a fresh checkout.
pub fn tests_pass_at(repo: &Path, commit: git2::Oid) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::open(repo).unwrap();
    let tree = repo.find_commit(commit).unwrap().tree().unwrap();
    let mut opts = git2::build::CheckoutBuilder::new();
    opts.target_dir(dir.path()).force();
    repo.checkout_tree(tree.as_object(), Some(&mut opts))
        .unwrap();
    std::process::Command::new("sh")
        .arg("test.sh")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// The commits on local `branch` of the repository at `repo` that `since` does not hold
/// (all of them without it), newest first; only the first-parent line when `first_parent`.
pub fn history(
    repo: &Path,
    branch: &str,
    since: Option<git2::Oid>,
    first_parent: bool,
) -> Vec<git2::Oid> {
    let repo = git2::Repository::open(repo).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push_ref(&format!("refs/heads/{branch}")).unwrap();
    if let Some(since) = since {
        walk.hide(since).unwrap();
    }
    if first_parent {
        walk.simplify_first_parent().unwrap();
    }
    walk.map(|c| c.unwrap()).collect()
}

pub fn wait_for(_t: &TestTown, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `gastown-tui status --json` of the town (it must succeed).
pub fn status(t: &TestTown) -> Value {
    let out = t.gt().args(["status", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// [`town_with_rig`] with the sim as the default runtime.
pub fn sim_town() -> TestTown {
    sim_town_with("")
}

/// [`sim_town`] with `toml` appended to its town.toml (patrols on a short clock, budgets...).
pub fn sim_town_with(toml: &str) -> TestTown {
    let t = town_with_rig();
    use_sim(&t, toml);
    t
}

/// Appends `toml` to `t`'s town.toml and makes the sim its default runtime.
pub fn use_sim(t: &TestTown, toml: &str) {
    let cfg = t.root().join("town.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(toml);
    std::fs::write(&cfg, text).unwrap();
    t.gt()
        .args(["config", "default-runtime", "sim"])
        .assert()
        .success();
}

pub fn town_with_rig() -> TestTown {
    let t = TestTown::new();
    let src = t.dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    source_repo(&src);
    t.gt()
        .args([
            "rig",
            "add",
            "demo",
            src.to_str().unwrap(),
            "--test-command",
            "./test.sh",
        ])
        .assert()
        .success();
    t
}

pub fn agent(t: &TestTown, name: &str) -> Value {
    t.json(&["agents"])
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

pub fn capture(t: &TestTown, name: &str) -> String {
    let out = t.gt().args(["capture", name]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn submitted(t: &TestTown, bead: &str) -> bool {
    t.json(&["feed", "--limit", "1000"])
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "submitted" && e["detail"] == bead)
}

/// A town with the sample rig for a real runtime: `runtime` is the default, patrols are quick
/// (GUPP after 3 s, the Witness every 300 ms) but nothing is called stalled or reaped while
/// a real program thinks, and `extra` is appended to town.toml.
pub fn real_town(runtime: &str, extra: &str) -> TestTown {
    let t = town_with_rig();
    let cfg = t.root().join("town.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[patrol]\ngupp_idle_after = \"3s\"\nwitness_every = \"300ms\"\nstall_after = \"10m\"\n\
         deacon_every = \"500ms\"\nreap_after = \"30m\"\n{extra}\n"
    ));
    std::fs::write(&cfg, text).unwrap();
    t.gt()
        .args(["config", "default-runtime", runtime])
        .assert()
        .success();
    // A real user's first day: a git identity and nothing else.
    std::fs::write(
        t.dir.path().join(".gitconfig"),
        "[user]\n\tname = Test User\n\temail = test@example.com\n",
    )
    .unwrap();
    t
}

/// The environment for an engine whose agents run `cli`: its directory first on PATH.
pub fn path_with(cli: &Path) -> (String, String) {
    let dir = cli.parent().unwrap().display().to_string();
    (
        "PATH".into(),
        format!("{dir}:{}", std::env::var("PATH").unwrap_or_default()),
    )
}

/// Waits up to `secs` for `ok`, printing `what` and the town's feed on a timeout.
pub fn wait_long(t: &TestTown, what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        if Instant::now() >= deadline {
            let feed = t.gt().args(["feed", "--limit", "60"]).output().unwrap();
            let mut screens = String::new();
            if let Some(agents) = t.json(&["agents"]).as_array() {
                for a in agents.iter().filter_map(|a| a["name"].as_str()) {
                    screens.push_str(&format!("--- {a}:\n{}\n", capture(t, a)));
                }
            }
            panic!(
                "timed out after {secs}s waiting for {what}; the feed:\n{}\nthe agents' \
                 screens:\n{screens}",
                String::from_utf8_lossy(&feed.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether `bead` has a merged merge request.
pub fn merged(t: &TestTown, bead: &str) -> bool {
    t.json(&["mq"])
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["bead_id"] == bead && m["state"] == "merged")
}
