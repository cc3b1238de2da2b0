//! The simulated agent (`gastown-tui sim-agent`) driven as the engine drives it: the real
//! binary in a polecat's worktree, its environment set, a nudge typed on its standard input.

mod common;

use common::{town_with_rig, TestTown, BIN};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NUDGE: &str = "Run gastown-tui prime and begin work on your hook.";
const DEADLINE: Duration = Duration::from_secs(20);

/// Creates a bead with `description` and slings it to `demo` with the `sim` runtime; returns
/// the bead and the polecat's worktree.
fn slung(t: &TestTown, description: &str) -> (String, PathBuf) {
    let bead = t.create("Simulated work", &["-d", description]);
    let slung = t.json(&["sling", &bead, "demo", "--runtime", "sim"]);
    assert_eq!(slung["agent"], "furiosa", "{slung}");
    let wt = t.root().join("demo/polecats/furiosa");
    assert!(wt.is_dir());
    (bead, wt)
}

/// A running `sim-agent` with its output collected on a thread.
struct SimAgent {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl SimAgent {
    fn start(t: &TestTown, wt: &Path, bead: &str) -> SimAgent {
        let mut child = Command::new(BIN)
            .arg("sim-agent")
            .current_dir(wt)
            .env("HOME", t.dir.path())
            .env("GT_TOWN", t.root())
            .env("GT_AGENT", "furiosa")
            .env("GT_RIG", "demo")
            .env("GT_ROLE", "polecat")
            .env("GT_BEAD", bead)
            .env("BD_ACTOR", "demo/furiosa")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        SimAgent {
            child,
            stdin,
            out,
            reader: Some(reader),
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Waits until the output contains `needle` `times` times.
    fn wait_for(&self, needle: &str, times: usize) {
        wait_until(&format!("{times} x {needle:?} in the output"), || {
            self.output().matches(needle).count() >= times
        });
    }

    /// Waits for the process to end by itself (its stdin still open).
    fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.join();
                return status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "sim-agent did not exit; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes its input (end of file) and waits for it to exit.
    fn finish(&mut self) -> (ExitStatus, String) {
        self.stdin = None;
        let status = self.wait_exit();
        (status, self.output())
    }

    fn join(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for SimAgent {
    fn drop(&mut self) {
        // A failed test must not leave the agent behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether furiosa's bead was submitted: a `submitted` event for it in the feed and an empty
/// hook.
fn submitted(t: &TestTown, bead: &str) -> bool {
    let feed = t.json(&["feed", "--limit", "1000"]);
    let in_feed = feed
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "submitted" && e["detail"] == bead);
    in_feed && hooked(t).is_none()
}

fn hooked(t: &TestTown) -> Option<String> {
    let agents = t.json(&["agents"]);
    agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "furiosa")
        .and_then(|a| a["hooked_bead"].as_str().map(str::to_string))
}

/// The files the tip commit of `polecat/furiosa/BEAD` changed, and its author.
fn tip_of_branch(wt: &Path, bead: &str) -> (Vec<String>, String) {
    let repo = git2::Repository::open(wt).unwrap();
    let branch = repo
        .find_branch(&format!("polecat/furiosa/{bead}"), git2::BranchType::Local)
        .unwrap();
    let commit = branch.get().peel_to_commit().unwrap();
    let parent = commit.parent(0).unwrap();
    let diff = repo
        .diff_tree_to_tree(
            Some(&parent.tree().unwrap()),
            Some(&commit.tree().unwrap()),
            None,
        )
        .unwrap();
    let files = diff
        .deltas()
        .map(|d| d.new_file().path().unwrap().display().to_string())
        .collect();
    let author = commit.author().to_string();
    (files, author)
}

fn is_clean(wt: &Path) -> bool {
    let repo = git2::Repository::open(wt).unwrap();
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true);
    let statuses = repo.statuses(Some(&mut opts)).unwrap();
    statuses.iter().all(|s| s.status().is_empty())
}

#[test]
fn a_nudge_makes_it_edit_commit_test_and_submit() {
    let t = town_with_rig();
    let (bead, wt) = slung(&t, "Change a.\n\nsim: edit src/a.txt\nsim: sleep 0.2\n");
    let mut agent = SimAgent::start(&t, &wt, &bead);
    agent.wait_for("sim> ", 1);
    agent.send(NUDGE);
    wait_until("the merge request", || submitted(&t, &bead));
    agent.wait_for("sim> ", 2);
    agent.send("thanks");
    agent.wait_for("you said: thanks", 1);
    let (status, out) = agent.finish();

    assert!(status.success(), "{status}\n{out}");
    assert!(out.contains("simulated agent"), "{out}");
    assert!(out.contains("Bash\x1b[0m(gastown-tui prime)"), "{out}");
    assert!(out.contains("PASS"), "{out}");
    assert!(
        out.contains(&format!("Done: {bead} submitted for merge")),
        "{out}"
    );
    let (files, author) = tip_of_branch(&wt, &bead);
    assert_eq!(files, vec!["src/a.txt"]);
    assert_eq!(author, "furiosa <furiosa@gastown.local>");
    assert_eq!(
        std::fs::read_to_string(wt.join("src/a.txt")).unwrap(),
        format!("change by furiosa for {bead}\n")
    );
    assert!(is_clean(&wt));
}

#[test]
fn ignore_nudges_waits_for_the_second_nudge() {
    let t = town_with_rig();
    let (bead, wt) = slung(&t, "sim: ignore-nudges 1\nsim: edit src/b.txt");
    let mut agent = SimAgent::start(&t, &wt, &bead);
    agent.wait_for("sim> ", 1);
    agent.send(NUDGE);
    agent.wait_for("I'll wait for more instructions.", 1);
    agent.wait_for("sim> ", 2);
    assert_eq!(
        hooked(&t).as_deref(),
        Some(bead.as_str()),
        "still on the hook"
    );
    assert!(!wt.join("src/b.txt").exists());

    agent.send(NUDGE);
    wait_until("the merge request", || submitted(&t, &bead));
    let (status, out) = agent.finish();
    assert!(status.success(), "{status}\n{out}");
    assert_eq!(out.matches("I'll wait for more instructions.").count(), 1);
    assert_eq!(tip_of_branch(&wt, &bead).0, vec!["src/b.txt"]);
    assert!(is_clean(&wt));
}

#[test]
fn crash_exits_non_zero_once_and_a_restart_finishes() {
    let t = town_with_rig();
    let (bead, wt) = slung(&t, "sim: edit src/c.txt\nsim: crash\nsim: edit src/d.txt");
    let mut first = SimAgent::start(&t, &wt, &bead);
    first.wait_for("sim> ", 1);
    first.send(NUDGE);
    let status = first.wait_exit();
    let out = first.output();
    assert_eq!(status.code(), Some(17), "{out}");
    assert!(out.contains("simulated crash"), "{out}");
    assert_eq!(hooked(&t).as_deref(), Some(bead.as_str()), "not submitted");
    assert!(!wt.join("src/d.txt").exists());
    assert!(is_clean(&wt), "the crash marker is not in the worktree");

    let mut second = SimAgent::start(&t, &wt, &bead);
    second.wait_for("sim> ", 1);
    second.send(NUDGE);
    wait_until("the merge request", || submitted(&t, &bead));
    let (status, out) = second.finish();
    assert!(status.success(), "{status}\n{out}");
    assert!(!out.contains("simulated crash"), "{out}");
    assert_eq!(tip_of_branch(&wt, &bead).0, vec!["src/d.txt"]);
    assert!(is_clean(&wt));
}

#[test]
fn break_tests_commits_broken_and_still_submits() {
    let t = town_with_rig();
    let (bead, wt) = slung(&t, "sim: break-tests");
    let mut agent = SimAgent::start(&t, &wt, &bead);
    agent.wait_for("sim> ", 1);
    agent.send(NUDGE);
    wait_until("the merge request", || submitted(&t, &bead));
    let (status, out) = agent.finish();
    assert!(status.success(), "{status}\n{out}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("tests failed"), "{out}");
    assert_eq!(tip_of_branch(&wt, &bead).0, vec!["BROKEN"]);
    assert!(is_clean(&wt));
}
