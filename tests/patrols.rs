//! The patrols with the `sim` runtime and short intervals: GUPP nudges a polite agent, the
//! Witness restarts a crash and escalates a stall, `max_restarts` is honoured, the Deacon
//! reaps idle polecats and keeps unmerged worktrees, auto-dispatches convoys; and the town
//! survives kill -9 of its engine.

mod common;

use common::{agent, sim_town_with, submitted, wait_for, TestTown, Up, BIN};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A town whose patrols run in seconds, not minutes.
fn fast_town() -> TestTown {
    sim_town_with(
        "\n[patrol]\ngupp_idle_after = \"1s\"\nwitness_every = \"200ms\"\nstall_after = \"3s\"\n\
         deacon_every = \"300ms\"\nreap_after = \"2s\"\nmax_restarts = 2\n",
    )
}

fn feed(t: &TestTown) -> Vec<Value> {
    t.json(&["feed", "--limit", "5000"])
        .as_array()
        .unwrap()
        .clone()
}

fn has_event(t: &TestTown, subject: &str, kind: &str, detail_part: &str) -> bool {
    feed(t).iter().any(|e| {
        e["subject"] == subject
            && e["kind"] == kind
            && e["detail"].as_str().unwrap_or("").contains(detail_part)
    })
}

fn inbox(t: &TestTown) -> Vec<Value> {
    t.json(&["mail", "inbox"]).as_array().unwrap().clone()
}

#[test]
fn gupp_nudges_a_polite_agent_until_it_starts() {
    let t = fast_town();
    let bead = t.create(
        "Polite",
        &["-d", "sim: ignore-nudges 1\nsim: edit polite.txt"],
    );
    let _up = Up::start(&t);
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    wait_for(&t, "the work after a GUPP nudge", || submitted(&t, &bead));
    assert!(
        has_event(
            &t,
            "furiosa",
            "nudged",
            "idle with work on its hook (nudge 1 of 3)"
        ),
        "{:?}",
        feed(&t)
    );
}

#[test]
fn a_crash_is_restarted_and_the_bead_still_completes() {
    let t = fast_town();
    let bead = t.create("Crashy", &["-d", "sim: crash\nsim: edit c.txt"]);
    let _up = Up::start(&t);
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    wait_for(&t, "the work after the restart", || submitted(&t, &bead));
    assert_eq!(agent(&t, "furiosa")["restarts"], 1);
    assert!(has_event(
        &t,
        "furiosa",
        "restarted",
        "exited with code 17; restart 1 of 2"
    ));
}

#[test]
fn max_restarts_is_honoured_then_the_overseer_is_told() {
    let t = fast_town();
    let cfg = t.root().join("town.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[runtimes.crashy]\ncommand = [\"sh\", \"-c\", \"echo booting; exit 3\"]\n");
    std::fs::write(&cfg, text).unwrap();
    let bead = t.create("Doomed", &[]);
    let _up = Up::start(&t);
    t.gt()
        .args(["sling", &bead, "demo", "--runtime", "crashy"])
        .assert()
        .success();
    wait_for(&t, "the escalation", || {
        inbox(&t)
            .iter()
            .any(|m| m["subject"] == "furiosa keeps dying")
    });
    let a = agent(&t, "furiosa");
    assert_eq!(a["state"], "dead");
    assert_eq!(a["restarts"], 2, "two restarts, no third");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(agent(&t, "furiosa")["restarts"], 2, "and it stays dead");
    let out = t.gt().args(["feed", "--problems"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("furiosa") && text.contains("dead"), "{text}");
}

#[test]
fn a_stall_is_nudged_then_escalated_to_the_overseer() {
    let t = fast_town();
    let bead = t.create("Stuck", &["-d", "sim: stall"]);
    let _up = Up::start(&t);
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    wait_for(&t, "the stall escalation", || {
        inbox(&t)
            .iter()
            .any(|m| m["subject"] == "furiosa is stalled")
    });
    assert!(has_event(
        &t,
        "furiosa",
        "nudged",
        "stalled: no output for 3s"
    ));
    let problems = t.json(&["feed", "--problems"]);
    assert_eq!(problems[0]["name"], "furiosa");
    assert_eq!(problems[0]["state"], "stalled");
}

#[test]
fn idle_polecats_are_reaped_and_unmerged_worktrees_kept() {
    let t = fast_town();
    // A rig without tests merges nothing, so the polecat's branch stays unmerged.
    let cfg = t.root().join("town.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("test_command = \"./test.sh\"\n", "")).unwrap();
    let bead = t.create("Quick", &["-d", "sim: edit q.txt"]);
    let _up = Up::start(&t);
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    wait_for(&t, "the submission", || submitted(&t, &bead));
    // Done, idle at its prompt with an empty hook: reaped after reap_after.
    wait_for(&t, "the reaping", || {
        has_event(&t, "furiosa", "reaped", "empty hook")
    });
    wait_for(&t, "the stopped state", || {
        agent(&t, "furiosa")["state"] == "stopped"
    });
    // Its branch is not merged: the worktree and its commit stay.
    wait_for(&t, "the kept worktree", || {
        has_event(&t, "furiosa", "worktree_kept", "not merged")
    });
    let wt = t.root().join("demo/polecats/furiosa");
    assert!(wt.join("q.txt").is_file());

    // A polecat whose branch holds nothing beyond main loses its worktree.
    let repo = git2::Repository::open(t.root().join("demo/repo")).unwrap();
    let main = repo.find_branch("main", git2::BranchType::Local).unwrap();
    let tip = main.get().peel_to_commit().unwrap();
    let branch = format!("polecat/furiosa/{bead}");
    // Merge it the way the Refinery will: fast-forward main to the polecat's branch.
    let theirs = repo
        .find_branch(&branch, git2::BranchType::Local)
        .unwrap()
        .get()
        .peel_to_commit()
        .unwrap();
    assert!(repo.graph_descendant_of(theirs.id(), tip.id()).unwrap());
    repo.reference("refs/heads/main", theirs.id(), true, "test: fast-forward")
        .unwrap();
    wait_for(&t, "the worktree removal", || {
        has_event(&t, "furiosa", "worktree_removed", "merged")
    });
    assert!(!wt.exists());
}

#[test]
fn convoys_with_auto_dispatch_are_slung_under_max_polecats() {
    let t = fast_town();
    let cfg = t.root().join("town.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("max_polecats = 2\n{text}")).unwrap();
    let ids: Vec<String> = (0..3)
        .map(|i| t.create(&format!("Part {i}"), &["-d", "sim: stall"]))
        .collect();
    let mut args = vec!["convoy", "create", "Parts"];
    args.extend(ids.iter().map(String::as_str));
    args.extend(["--auto-dispatch", "demo"]);
    t.gt().args(&args).assert().success();
    let _up = Up::start(&t);
    wait_for(&t, "two dispatches", || {
        feed(&t)
            .iter()
            .filter(|e| e["kind"] == "dispatched")
            .count()
            == 2
    });
    std::thread::sleep(Duration::from_secs(1));
    let hooked = t
        .json(&["agents"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["hooked_bead"].is_string())
        .count();
    assert_eq!(hooked, 2, "never more than max_polecats");
}

/// Kill -9 the engine at moments spread over the work, restart it, and check the invariants:
/// every hooked bead gets an agent again, nothing is claimed twice, nothing acknowledged is
/// lost, every bead is submitted exactly once, and the recordings stay readable.
#[test]
fn kill_9_of_the_engine_loses_nothing() {
    let t = fast_town();
    let beads: Vec<String> = (0..4)
        .map(|i| {
            t.create(
                &format!("Job {i}"),
                &[
                    "-d",
                    &format!("sim: sleep 1\nsim: edit job{i}.txt\nsim: sleep 1"),
                ],
            )
        })
        .collect();
    for b in &beads {
        t.gt().args(["sling", b, "demo"]).assert().success();
    }
    let rows_before = t
        .json(&["bead", "list", "--limit", "0"])
        .as_array()
        .unwrap()
        .len();
    // Deterministic "random" moments: 0.7 s, 1.9 s, 1.1 s, 2.6 s into each engine's life.
    for delay_ms in [700u64, 1900, 1100, 2600] {
        let up = Up::start(&t);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = Command::new("kill")
            .args(["-9", &up.0.id().to_string()])
            .stdout(Stdio::null())
            .status();
        drop(up);
        // No bead is ever held by two agents.
        let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for a in t.json(&["agents"]).as_array().unwrap() {
            if let Some(b) = a["hooked_bead"].as_str() {
                holders
                    .entry(b.to_string())
                    .or_default()
                    .push(a["name"].as_str().unwrap().to_string());
            }
        }
        assert!(holders.values().all(|v| v.len() == 1), "{holders:?}");
    }
    // The last engine finishes the work.
    let _up = Up::start(&t);
    for b in &beads {
        wait_for(&t, "every bead submitted after the crashes", || {
            submitted(&t, b)
        });
    }
    let feed = feed(&t);
    for b in &beads {
        let n = feed
            .iter()
            .filter(|e| e["kind"] == "submitted" && e["detail"] == b.as_str())
            .count();
        assert_eq!(n, 1, "{b} submitted exactly once");
        // Waiting in the merge queue, or already merged by the Refinery.
        let shown = t.json(&["bead", "show", b]);
        let merged = shown["status"] == "closed"
            && shown["close_reason"]
                .as_str()
                .unwrap_or("")
                .starts_with("merged");
        assert!(shown["status"] == "in_progress" || merged, "{b}: {shown}");
    }
    assert_eq!(
        t.json(&["bead", "list", "--limit", "0"])
            .as_array()
            .unwrap()
            .len(),
        rows_before,
        "no bead lost or duplicated"
    );
    // Every recording (several sessions per agent after the crashes) replays.
    let logs = t.root().join("logs");
    let mut casts = 0;
    for agent in std::fs::read_dir(&logs).unwrap().flatten() {
        if !agent.path().is_dir() {
            continue;
        }
        for cast in std::fs::read_dir(agent.path()).unwrap().flatten() {
            // Beside the recordings: each session's usage file.
            if cast.path().extension().is_none_or(|x| x != "cast") {
                continue;
            }
            casts += 1;
            gastown_tui::agent::read_cast(&cast.path())
                .unwrap_or_else(|e| panic!("{}: {e}", cast.path().display()));
        }
    }
    assert!(
        casts >= beads.len() * 2,
        "sessions before and after the crashes: {casts}"
    );
    let _ = BIN;
}
