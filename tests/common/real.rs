//! Helpers for the tests that run real agent CLIs as a town's polecats (tests/town_*.rs).

use super::{path_with, TestTown};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Slings a new bead to the rig `demo` from a shell where `cli` is on PATH (`sling` checks
/// the runtime's program is there); returns the bead and the polecat that holds it.
pub fn sling_to(t: &TestTown, cli: &Path, title: &str) -> (String, String) {
    let bead = t.create(title, &[]);
    let (k, v) = path_with(cli);
    t.gt()
        .env(k, v)
        .args(["sling", &bead, "demo"])
        .assert()
        .success();
    let who = t
        .json(&["agents"])
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["hooked_bead"] == bead.as_str())
        .map(|a| a["name"].as_str().unwrap().to_string())
        .expect("a polecat holds the bead");
    (bead, who)
}

/// The town's whole feed.
pub fn feed(t: &TestTown) -> Vec<Value> {
    t.json(&["feed", "--limit", "5000"])
        .as_array()
        .unwrap()
        .clone()
}

/// A polecat's worktree in the rig `demo`.
pub fn polecat_dir(t: &TestTown, name: &str) -> PathBuf {
    t.root().join("demo").join("polecats").join(name)
}

/// Under GT_TEST_DEBUG, copies the test's temp dir to `/tmp/dbg-<tag>` every 2 s (the temp
/// dir is gone once the test fails).
pub fn debug_copy(t: &TestTown, tag: &str) {
    if std::env::var_os("GT_TEST_DEBUG").is_none() {
        return;
    }
    let root = t.dir.path().to_path_buf();
    let dest = format!("/tmp/dbg-{tag}");
    std::thread::spawn(move || loop {
        let _ = std::process::Command::new("cp")
            .args(["-rT", &root.display().to_string(), &dest])
            .stderr(std::process::Stdio::null())
            .status();
        std::thread::sleep(Duration::from_secs(2));
    });
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

/// One request of a polecat's conversation, as the scripted server read it.
pub struct SeenTurn {
    pub user_texts: Vec<String>,
    pub results: Vec<String>,
}

/// What every whole-loop test checks once its polecats' beads are merged: each polecat sent
/// turns; its last one holds the first prompt and a GUPP nudge as submitted user turns (and
/// the feed has the nudge); a turn saw the FIX_NEEDED mail of its red change in prime's
/// output; no agent ever waited for the human; the target holds every polecat's file
/// (`<bead>.txt`) and no BROKEN.
pub fn check_whole_loop(
    t: &TestTown,
    polecats: &[(String, String)],
    turns_of: impl Fn(&str) -> Vec<SeenTurn>,
) {
    let events = feed(t);
    for (bead, who) in polecats {
        let turns = turns_of(who);
        let last = turns.last().unwrap_or_else(|| panic!("{who} sent no turn"));
        let primes = last
            .user_texts
            .iter()
            .filter(|x| x.contains("gastown-tui prime"))
            .count();
        assert!(
            primes >= 2,
            "{who}: the first prompt and a nudge as user turns: {:?}",
            last.user_texts
        );
        assert!(
            events.iter().any(|e| e["kind"] == "nudged"
                && e["subject"] == who.as_str()
                && e["actor"] == "gupp"),
            "{who}: no GUPP nudge in the feed"
        );
        assert!(
            turns.iter().any(|s| s
                .results
                .first()
                .is_some_and(|r| r.contains(&format!("FIX_NEEDED: {bead}")))),
            "{who}: no turn saw the FIX_NEEDED mail"
        );
    }
    assert!(
        !events
            .iter()
            .any(|e| e["kind"] == "agent_state" && e["new_value"] == "waiting"),
        "an agent waited for the human: {events:#?}"
    );
    let repo = git2::Repository::open(t.root().join("demo/repo")).unwrap();
    let tree = repo
        .find_branch("main", git2::BranchType::Local)
        .unwrap()
        .get()
        .peel_to_tree()
        .unwrap();
    for (bead, _) in polecats {
        assert!(
            tree.get_name(&format!("{bead}.txt")).is_some(),
            "{bead}.txt"
        );
    }
    assert!(tree.get_name("BROKEN").is_none());
}
