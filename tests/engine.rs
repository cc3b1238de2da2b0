//! The engine end to end: `up --headless` as a real process, polecats slung from another
//! shell, the `sim` agent doing real git work in a real PTY, and everything observed through
//! the CLI a user would use.

mod common;

use common::{agent, capture, submitted, town_with_rig, wait_for, TestTown, Up, BIN};
use predicates::str::contains;
use std::process::{Command, Stdio};

#[test]
fn a_slung_polecat_starts_is_nudged_works_and_submits() {
    let t = town_with_rig();
    let bead = t.create(
        "Add a version file",
        &["-d", "Write it.\nsim: edit src/version.txt\nsim: sleep 0.3"],
    );
    let up = Up::start(&t);
    t.gt()
        .args(["sling", &bead, "demo", "--runtime", "sim"])
        .assert()
        .success()
        .stdout(contains("furiosa"));
    wait_for(&t, "the merge request", || submitted(&t, &bead));

    // The work is real: a commit on the polecat's branch in its worktree.
    let wt = t.root().join("demo/polecats/furiosa");
    let repo = git2::Repository::open(&wt).unwrap();
    let head = repo.head().unwrap();
    assert_eq!(head.shorthand().unwrap(), format!("polecat/furiosa/{bead}"));
    assert!(wt.join("src/version.txt").is_file());
    assert!(head
        .peel_to_commit()
        .unwrap()
        .message()
        .unwrap()
        .contains(&bead));

    // The engine typed the prime prompt after the ready prompt showed, naming its own binary by
    // its absolute path (a shell with another PATH finds it too), and the screen says so.
    wait_for(&t, "the done line on screen", || {
        capture(&t, "furiosa").contains("✔ Done")
    });
    let screen = capture(&t, "furiosa");
    assert!(
        screen.contains(&format!(
            "sim> Run {BIN} prime and begin work on your hook."
        )),
        "{screen}"
    );

    // A nudge from another shell arrives, sanitised.
    t.gt()
        .args(["nudge", "furiosa", "hello\x1b[2J from\nthe overseer"])
        .assert()
        .success();
    wait_for(&t, "the nudge echo", || {
        capture(&t, "furiosa").contains("you said: hello from the overseer")
    });

    // Two nudges at once are two submitted lines, and both callers hear back.
    let nudge = |text: &str| {
        Command::new(BIN)
            .args([
                "--town",
                t.root().to_str().unwrap(),
                "nudge",
                "furiosa",
                text,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (nudge("alpha-one"), nudge("beta-two"));
    for p in [a, b] {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_for(&t, "both nudges", || {
        let s = capture(&t, "furiosa");
        s.contains("you said: alpha-one") && s.contains("you said: beta-two")
    });

    // The audit trail tells the story.
    let kinds: Vec<String> = t
        .json(&["feed", "--limit", "1000"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().unwrap(),
                e["subject"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        format!("hooked {bead}"),
        "agent_state furiosa".to_string(),
        format!("unhooked {bead}"),
    ] {
        assert!(kinds.contains(&want), "{want} missing from {kinds:?}");
    }
    assert_eq!(agent(&t, "furiosa")["state"], "working");
    assert!(agent(&t, "furiosa")["pid"].is_number());

    // kill stops it for good; the engine stops cleanly on SIGTERM.
    t.gt().args(["kill", "furiosa"]).assert().success();
    wait_for(&t, "the stopped state", || {
        agent(&t, "furiosa")["state"] == "stopped"
    });
    // A stopped agent has no session: the engine says so, as such (exit 1), and an agent the
    // town does not know is bad input (exit 2).
    let err = t.fails(&["nudge", "furiosa", "hi"], 1);
    assert!(
        err.contains("error: furiosa has no running session"),
        "{err}"
    );
    let err = t.fails(&["nudge", "nosuch", "hi"], 2);
    assert!(err.contains("nosuch"), "{err}");
    assert!(up.stop().success());
    let err = t.fails(&["nudge", "furiosa", "hi"], 1);
    assert!(err.contains("no engine is running"), "{err}");

    // The recording replays the session, and capture without an engine reads it.
    // (Beside it, the session's usage file, in the town's usage format.)
    let casts: Vec<_> = std::fs::read_dir(t.root().join("logs/furiosa"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cast"))
        .collect();
    assert_eq!(casts.len(), 1);
    let replay = t
        .gt()
        .args(["replay", "furiosa", "--speed", "0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&replay.stdout).contains("Done: "));
    assert!(capture(&t, "furiosa").contains("you said: hello from the overseer"));
}

#[test]
fn a_crash_is_detected_and_a_restart_finishes_the_work() {
    let t = town_with_rig();
    // No automatic restarts here: the Witness's own restarts are tested in tests/patrols.rs.
    let cfg = t.root().join("town.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[patrol]\nmax_restarts = 0\n");
    std::fs::write(&cfg, text).unwrap();
    let bead = t.create("Crashy", &["-d", "sim: crash\nsim: edit crash.txt"]);
    let _up = Up::start(&t);
    t.gt()
        .args(["sling", &bead, "demo", "--runtime", "sim"])
        .assert()
        .success();
    wait_for(&t, "the dead state", || {
        agent(&t, "furiosa")["state"] == "dead"
    });
    let feed = t.json(&["feed", "--limit", "1000"]);
    assert!(
        feed.as_array()
            .unwrap()
            .iter()
            .any(|e| e["subject"] == "furiosa"
                && e["new_value"] == "dead"
                && e["detail"]
                    .as_str()
                    .unwrap_or("")
                    .contains("exited with code 17")),
        "{feed}"
    );
    assert!(!submitted(&t, &bead));
    t.gt().args(["restart", "furiosa"]).assert().success();
    wait_for(&t, "the merge request after the restart", || {
        submitted(&t, &bead)
    });
    assert_eq!(agent(&t, "furiosa")["restarts"], 1);
}

#[test]
fn a_flood_does_not_block_the_engine() {
    let t = town_with_rig();
    let bead = t.create("Flood", &["-d", "sim: flood 30\nsim: edit f.txt"]);
    let _up = Up::start(&t);
    t.gt()
        .args(["sling", &bead, "demo", "--runtime", "sim"])
        .assert()
        .success();
    // While 30 MB stream through the PTY, requests keep being answered.
    wait_for(&t, "the flood to start", || {
        capture(&t, "furiosa").contains("sim>")
    });
    for _ in 0..5 {
        t.gt().args(["capture", "furiosa"]).assert().success();
        t.gt().args(["agents"]).assert().success();
    }
    wait_for(&t, "the merge request after the flood", || {
        submitted(&t, &bead)
    });
}

#[test]
fn a_missing_runtime_binary_is_a_clear_error_not_a_dead_pane() {
    let t = town_with_rig();
    let cfg = t.root().join("town.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[runtimes.ghost]\ncommand = [\"no-such-agent-binary-xyz\"]\n");
    std::fs::write(&cfg, text).unwrap();
    let bead = t.create("Never runs", &[]);
    let err = t.fails(&["sling", &bead, "demo", "--runtime", "ghost"], 2);
    assert!(
        err.contains(
            "runtime 'ghost': runtime command 'no-such-agent-binary-xyz' not found on PATH"
        ),
        "{err}"
    );
    assert_eq!(
        t.json(&["bead", "show", &bead])["status"],
        "open",
        "nothing hooked"
    );
    assert!(t.json(&["agents"]).as_array().unwrap().is_empty());
}

#[test]
fn handoff_starts_a_fresh_session_on_the_same_hook() {
    let t = town_with_rig();
    let bead = t.create("Long job", &["-d", "sim: stall"]);
    let _up = Up::start(&t);
    t.gt()
        .args(["sling", &bead, "demo", "--runtime", "sim"])
        .assert()
        .success();
    wait_for(&t, "the first session", || {
        agent(&t, "furiosa")["session"].is_string()
    });
    let first = agent(&t, "furiosa")["session"].clone();
    // The agent hands off itself (GT_AGENT), as `gastown-tui handoff` inside its session does.
    t.gt()
        .env("GT_AGENT", "furiosa")
        .arg("handoff")
        .assert()
        .success();
    wait_for(&t, "a second session", || {
        let s = agent(&t, "furiosa")["session"].clone();
        s.is_string() && s != first
    });
    let a = agent(&t, "furiosa");
    assert_eq!(a["hooked_bead"], bead.as_str());
    assert_eq!(a["state"], "working");
    let casts = std::fs::read_dir(t.root().join("logs/furiosa"))
        .unwrap()
        .count();
    assert_eq!(casts, 2, "one recording per session");
}

#[test]
fn config_commands_edit_town_toml_and_keep_comments() {
    let t = TestTown::new();
    t.gt()
        .args([
            "config", "runtime", "set", "claude", "--", "claude", "--model", "opus",
        ])
        .assert()
        .success();
    t.gt()
        .args(["config", "default-runtime", "sim"])
        .assert()
        .success();
    let text = std::fs::read_to_string(t.root().join("town.toml")).unwrap();
    assert!(text.contains("default_runtime = \"sim\""), "{text}");
    assert!(
        text.contains("command = [\"claude\", \"--model\", \"opus\"]"),
        "{text}"
    );
    assert!(text.contains("# The most polecats"), "comments kept");
    t.gt()
        .args(["config", "show"])
        .assert()
        .success()
        .stdout(contains("default_runtime = \"sim\""))
        .stdout(contains("claude    claude --model opus"))
        .stdout(contains(
            "sim       gastown-tui sim-agent  (prompt: type-after-ready)",
        ));
    let err = t.fails(&["config", "default-runtime", "emacs"], 2);
    assert!(err.contains("unknown runtime \"emacs\""), "{err}");
}

/// One engine per town: a second `up --headless` is refused with the holder's pid (a cockpit
/// attaches to the running one instead, see tests/detach.rs); two racing engines leave one; a
/// holder killed with -9 frees the town for the next.
#[test]
fn one_engine_per_town() {
    let t = town_with_rig();
    let mut up = Up::start(&t);
    let pid = up.0.id();
    let refused = |args: &[&str]| {
        let out = t.gt().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?} must be refused: {err}");
        assert!(
            err.contains(&format!("an engine (pid {pid}) is already running")),
            "{args:?}: {err}"
        );
    };
    refused(&["up", "--headless"]);
    assert!(
        up.0.try_wait().unwrap().is_none(),
        "the running engine is untouched"
    );

    // kill -9 of the holder releases the lock: the next engine starts.
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    drop(up);
    let racers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(BIN)
                .arg("--town")
                .arg(t.root())
                .args(["up", "--headless"])
                .env("HOME", t.dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Exactly one of two engines started at once survives; the other says who holds the town.
    let mut racers = racers;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while racers.iter_mut().all(|c| c.try_wait().unwrap().is_none()) {
        assert!(
            std::time::Instant::now() < deadline,
            "neither engine was refused"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The winner keeps running.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let mut alive = Vec::new();
    let mut refusals = Vec::new();
    for mut c in racers {
        match c.try_wait().unwrap() {
            None => alive.push(c),
            Some(status) => {
                let mut err = String::new();
                use std::io::Read;
                c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                refusals.push((status, err));
            }
        }
    }
    assert_eq!(alive.len(), 1, "one engine runs: {refusals:?}");
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let winner = alive[0].id();
    assert!(!refusals[0].0.success());
    assert!(
        refusals[0]
            .1
            .contains(&format!("an engine (pid {winner}) is already running")),
        "{refusals:?}"
    );
    for mut c in alive {
        let _ = c.kill();
        let _ = c.wait();
    }
}
