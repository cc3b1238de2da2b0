//! First contact through the engine, deterministic: stand-in programs named `claude` and
//! `codex` (shell scripts first on the engine's PATH) put the real programs' captured dialogs
//! on their screens, log every line typed into them, and behave as the real ones do when
//! answered. What the real programs do is tested in tests/real_*.rs; here the engine's side of
//! it is pinned down: the town answers what it owns and nothing else, a dialog that needs the
//! human makes the agent waiting with its reason and nothing is typed into it (no prompt, no
//! GUPP nudge, no `nudge`), and a known start error is dead with its fix, never restarted.

mod common;

use common::{agent, town_with_rig, wait_for, TestTown, Up};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/screens");

/// A stand-in for `program`: prints `screen` (a fixture file), logs each line typed to
/// `$FAKE_LOG`, and after the first line (the answer) prints `then` and keeps logging.
fn fake(bin: &Path, program: &str, screen: &Path, then: &str, exit_after_screen: Option<i32>) {
    let body = match exit_after_screen {
        Some(code) => format!("cat '{}'\nexit {code}\n", screen.display()),
        None => format!(
            "cat '{screen}'\nIFS= read -r answer\nprintf 'answer:%s\\n' \"$answer\" >> \"$FAKE_LOG\"\n\
             printf '\\033[2J\\033[H{then}\\n'\nwhile IFS= read -r line; do printf 'typed:%s\\n' \"$line\" >> \"$FAKE_LOG\"; done\n",
            screen = screen.display()
        ),
    };
    let script = format!("#!/bin/sh\necho \"start $*\" >> \"$FAKE_LOG.starts\"\n{body}");
    let path = bin.join(program);
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Scene {
    t: TestTown,
    log: PathBuf,
    path: String,
    _up: Up,
}

fn scene(program: &str, fixture: &str, then: &str, exit: Option<i32>) -> Scene {
    let t = town_with_rig();
    let cfg = t.root().join("town.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[patrol]\ngupp_idle_after = \"1s\"\nwitness_every = \"200ms\"\n");
    std::fs::write(&cfg, text).unwrap();
    let bin = t.dir.path().join("fake-bin");
    std::fs::create_dir(&bin).unwrap();
    fake(
        &bin,
        program,
        &Path::new(FIXTURES).join(fixture),
        then,
        exit,
    );
    let log = t.dir.path().join("typed.log");
    std::fs::write(&log, "").unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let up = Up::start_with(
        &t,
        &[
            ("PATH".into(), path.clone()),
            ("FAKE_LOG".into(), log.display().to_string()),
        ],
    );
    Scene {
        t,
        log,
        path,
        _up: up,
    }
}

impl Scene {
    fn sling(&self, runtime: &str) {
        let bead = self.t.create("Do the thing", &[]);
        self.t
            .gt()
            .env("PATH", &self.path)
            .args(["sling", &bead, "demo", "--runtime", runtime])
            .assert()
            .success();
    }

    fn typed(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn starts(&self) -> usize {
        std::fs::read_to_string(format!("{}.starts", self.log.display()))
            .unwrap_or_default()
            .lines()
            .count()
    }

    fn feed(&self) -> Vec<Value> {
        self.t
            .json(&["feed", "--limit", "1000"])
            .as_array()
            .unwrap()
            .clone()
    }
}

#[test]
fn claude_s_trust_question_for_a_town_worktree_is_answered_then_work_goes_on() {
    let s = scene(
        "claude",
        "claude/2.1.197/trust.txt",
        "\\342\\235\\257 ",
        None,
    );
    s.sling("claude");
    wait_for(&s.t, "the trust answer", || s.typed().contains("answer:"));
    assert!(
        s.feed().iter().any(|e| e["kind"] == "answered"
            && e["detail"]
                .as_str()
                .unwrap_or("")
                .contains("claude's folder-trust question")),
        "{:?}",
        s.feed()
    );
    // Answered with Enter (the default, "Yes, I trust this folder"), nothing more.
    assert!(s.typed().starts_with("answer:\n"), "{}", s.typed());
    assert_ne!(agent(&s.t, "furiosa")["state"], "waiting");
}

#[test]
fn a_sign_in_menu_makes_the_agent_waiting_and_nothing_is_typed_into_it() {
    let s = scene("codex", "codex/0.171.0/signin.txt", "", None);
    s.sling("codex");
    wait_for(&s.t, "waiting with the reason", || {
        let a = agent(&s.t, "furiosa");
        a["state"] == "waiting"
            && a["state_reason"]
                .as_str()
                .unwrap_or("")
                .contains("needs sign-in")
    });
    // The reason is in feed --problems too.
    let problems = s.t.json(&["feed", "--problems"]);
    assert!(
        problems
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "furiosa"
                && p["reason"].as_str().unwrap_or("").contains("needs sign-in")),
        "{problems:?}"
    );
    // A nudge is refused, GUPP types nothing, and the dialog got no key: wait past GUPP's 1 s.
    let err = s.t.fails(&["nudge", "furiosa", "go on"], 1);
    assert!(err.contains("showing a dialog"), "{err}");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(s.typed(), "", "nothing may be typed into a sign-in menu");
    assert_eq!(agent(&s.t, "furiosa")["state"], "waiting");
}

#[test]
fn claude_refusing_bypass_as_root_is_dead_with_the_fix_and_not_restarted() {
    let s = scene("claude", "claude/2.1.197/root-refusal.txt", "", Some(1));
    s.sling("claude");
    wait_for(&s.t, "dead with the reason", || {
        let a = agent(&s.t, "furiosa");
        a["state"] == "dead"
            && a["state_reason"]
                .as_str()
                .unwrap_or("")
                .contains("IS_SANDBOX=1")
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        s.starts(),
        1,
        "a start error no restart can fix is not restarted"
    );
    assert_eq!(agent(&s.t, "furiosa")["restarts"], 0);
    let mail = s.t.json(&["mail", "inbox"]);
    assert!(
        mail.as_array()
            .unwrap()
            .iter()
            .any(|m| m["subject"].as_str().unwrap_or("").contains("cannot start")),
        "{mail:?}"
    );
}
