//! The Refinery on real git repositories through the running engine: green merges by
//! fast-forward, red is rejected and sent back, conflicts become new beads, untested rigs
//! merge nothing, hanging tests are killed, one merge at a time per rig; and the invariant
//! over a whole run: every position the target branch took passed the tests.

mod common;

use common::{town_with_rig, use_sim, wait_for, TestTown, Up};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn fast(t: &TestTown, extra: &str) {
    use_sim(
        t,
        &format!(
            "\n[patrol]\ngupp_idle_after = \"1s\"\nwitness_every = \"200ms\"\nstall_after = \"20s\"\n\
             deacon_every = \"300ms\"\nreap_after = \"10m\"\n{extra}"
        ),
    );
}

fn mrs(t: &TestTown) -> Vec<Value> {
    t.json(&["mq"]).as_array().unwrap().clone()
}

fn mr_for<'a>(all: &'a [Value], bead: &str) -> Vec<&'a Value> {
    all.iter().filter(|m| m["bead_id"] == bead).collect()
}

fn main_tip(t: &TestTown) -> git2::Oid {
    let repo = git2::Repository::open(t.root().join("demo/repo")).unwrap();
    let b = repo.find_branch("main", git2::BranchType::Local).unwrap();
    b.get().target().unwrap()
}

/// Runs the rig's test.sh at `commit` in a fresh checkout.
fn tests_pass_at(t: &TestTown, commit: git2::Oid) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::open(t.root().join("demo/repo")).unwrap();
    let tree = repo.find_commit(commit).unwrap().tree().unwrap();
    let mut opts = git2::build::CheckoutBuilder::new();
    opts.target_dir(dir.path()).force();
    repo.checkout_tree(tree.as_object(), Some(&mut opts))
        .unwrap();
    std::process::Command::new("sh")
        .arg("test.sh")
        .current_dir(dir.path())
        .status()
        .unwrap()
        .success()
}

#[test]
fn green_merges_red_is_sent_back_and_fixed_conflicts_become_beads() {
    let t = town_with_rig();
    fast(&t, "");
    let start = main_tip(&t);
    let green = t.create("Green", &["-d", "sim: edit green.txt"]);
    let red = t.create("Red", &["-d", "sim: break-tests"]);
    let c1 = t.create("Clash one", &["-d", "sim: conflict shared.txt"]);
    let c2 = t.create("Clash two", &["-d", "sim: conflict shared.txt"]);
    let convoy = t.json(&["convoy", "create", "Batch", &green, &red, &c1, &c2]);
    let convoy = convoy["id"].as_str().unwrap().to_string();
    let _up = Up::start(&t);
    for b in [&green, &red, &c1, &c2] {
        t.gt().args(["sling", b, "demo"]).assert().success();
    }

    // Green: merged by fast-forward, the bead closed.
    wait_for(&t, "the green merge", || {
        mr_for(&mrs(&t), &green)
            .iter()
            .any(|m| m["state"] == "merged")
    });
    assert_eq!(t.json(&["bead", "show", &green])["status"], "closed");

    // Red: rejected with the log's tail, sent back with FIX_NEEDED, fixed, merged on try two.
    wait_for(&t, "the red rejection", || {
        mr_for(&mrs(&t), &red)
            .iter()
            .any(|m| m["state"] == "rejected")
    });
    let all = mrs(&t);
    let rejected = mr_for(&all, &red)
        .into_iter()
        .find(|m| m["state"] == "rejected")
        .unwrap()
        .clone();
    assert!(rejected["test_log_tail"]
        .as_str()
        .unwrap()
        .contains("$ ./test.sh"));
    assert!(rejected["reason"]
        .as_str()
        .unwrap()
        .contains("tests failed"));
    wait_for(&t, "the fixed red merge", || {
        mr_for(&mrs(&t), &red)
            .iter()
            .any(|m| m["state"] == "merged")
    });
    assert_eq!(t.json(&["bead", "show", &red])["status"], "closed");

    // The clash: one merges, the other conflicts and a resolve bead takes its place.
    wait_for(&t, "the conflict", || {
        mrs(&t).iter().any(|m| m["state"] == "conflict")
    });
    let all = mrs(&t);
    let conflict = all.iter().find(|m| m["state"] == "conflict").unwrap();
    assert!(conflict["reason"].as_str().unwrap().contains("shared.txt"));
    let loser = conflict["bead_id"].as_str().unwrap().to_string();
    assert!(loser == c1 || loser == c2);
    let shown = t.json(&["bead", "show", &loser]);
    assert_eq!(shown["status"], "closed");
    assert!(shown["close_reason"]
        .as_str()
        .unwrap()
        .contains("superseded by"));
    let resolve = shown["dependents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "supersedes")
        .map(|d| d["issue_id"].as_str().unwrap().to_string())
        .expect("a resolve bead supersedes the loser");
    let r = t.json(&["bead", "show", &resolve]);
    assert!(r["title"]
        .as_str()
        .unwrap()
        .starts_with("Resolve merge conflict:"));
    let c = t.json(&["convoy", "show", &convoy]);
    assert!(
        c["tracked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == resolve.as_str()),
        "the resolve bead is in the convoy"
    );
    // Sling it: redone on top of the new main, it merges and the convoy closes.
    t.gt().args(["sling", &resolve, "demo"]).assert().success();
    wait_for(&t, "the convoy to close", || {
        t.json(&["convoy", "show", &convoy])["status"] == "closed"
    });

    // The invariant: every position main took was a merged tip whose tests passed, each on
    // top of the one before.
    let mut positions: Vec<git2::Oid> = mrs(&t)
        .iter()
        .filter(|m| m["state"] == "merged")
        .map(|m| {
            let short = m["reason"]
                .as_str()
                .unwrap()
                .trim_start_matches("merged as ");
            let repo = git2::Repository::open(t.root().join("demo/repo")).unwrap();
            let id = repo.revparse_single(short).unwrap().id();
            id
        })
        .collect();
    positions.sort_by_key(|oid| {
        let repo = git2::Repository::open(t.root().join("demo/repo")).unwrap();
        repo.graph_ahead_behind(*oid, start)
            .map(|(ahead, _)| ahead)
            .unwrap_or(0)
    });
    assert_eq!(positions.last().copied(), Some(main_tip(&t)));
    let repo = git2::Repository::open(t.root().join("demo/repo")).unwrap();
    let mut prev = start;
    for p in &positions {
        assert!(
            repo.graph_descendant_of(*p, prev).unwrap(),
            "main only moves forward"
        );
        assert!(tests_pass_at(&t, *p), "{p} was merged, so its tests pass");
        prev = *p;
    }
    assert!(!Path::new(&t.root().join("demo/repo/BROKEN")).exists());
}

#[test]
fn an_untested_rig_merges_nothing_and_a_hanging_test_is_killed() {
    let t = TestTown::new();
    let src = t.dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    common::source_repo(&src);
    // No --test-command: the gate stays shut.
    t.gt()
        .args(["rig", "add", "demo", src.to_str().unwrap()])
        .assert()
        .success();
    fast(&t, "");
    let start = main_tip(&t);
    let bead = t.create("Untested", &["-d", "sim: edit u.txt"]);
    let _up = Up::start(&t);
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    wait_for(&t, "the refusal", || {
        mr_for(&mrs(&t), &bead)
            .iter()
            .any(|m| m["state"] == "rejected")
    });
    let m = mr_for(&mrs(&t), &bead)[0].clone();
    assert!(
        m["reason"].as_str().unwrap().contains("no test_command"),
        "{m}"
    );
    assert_eq!(main_tip(&t), start, "nothing merged");
    drop(_up);

    // A test command that hangs: killed at the rig's timeout, rejected, main unchanged.
    let t2 = TestTown::new();
    let src2 = t2.dir.path().join("src");
    std::fs::create_dir(&src2).unwrap();
    common::source_repo(&src2);
    t2.gt()
        .args([
            "rig",
            "add",
            "demo",
            src2.to_str().unwrap(),
            "--test-command",
            "sleep 60",
        ])
        .assert()
        .success();
    let cfg = t2.root().join("town.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "test_command = \"sleep 60\"",
            "test_command = \"sleep 60\"\ntest_timeout = \"1s\"",
        ),
    )
    .unwrap();
    fast(&t2, "");
    let start = main_tip(&t2);
    let bead = t2.create("Slow", &["-d", "sim: edit s.txt"]);
    let _up2 = Up::start(&t2);
    t2.gt().args(["sling", &bead, "demo"]).assert().success();
    wait_for(&t2, "the timeout rejection", || {
        mr_for(&mrs(&t2), &bead)
            .iter()
            .any(|m| m["state"] == "rejected")
    });
    let m = mr_for(&mrs(&t2), &bead)[0].clone();
    assert!(
        m["reason"].as_str().unwrap().contains("timed out after 1s"),
        "{m}"
    );
    assert_eq!(main_tip(&t2), start);
}

#[test]
fn two_requests_for_one_rig_never_test_at_once() {
    let t = town_with_rig();
    // Tests that take a moment, so an overlap would be seen.
    let cfg = t.root().join("town.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "test_command = \"./test.sh\"",
            "test_command = \"sleep 1; ./test.sh\"",
        ),
    )
    .unwrap();
    fast(&t, "");
    let a = t.create("A", &["-d", "sim: edit a.txt"]);
    let b = t.create("B", &["-d", "sim: edit b.txt"]);
    let _up = Up::start(&t);
    t.gt().args(["sling", &a, "demo"]).assert().success();
    t.gt().args(["sling", &b, "demo"]).assert().success();
    let mut max_testing = 0;
    wait_for(&t, "both merged", || {
        let all = mrs(&t);
        let testing = all.iter().filter(|m| m["state"] == "testing").count();
        max_testing = max_testing.max(testing);
        all.iter().filter(|m| m["state"] == "merged").count() == 2
    });
    assert_eq!(max_testing, 1, "one merge at a time per rig");
    // The second was rebased onto the first: both files are on main.
    let repo = git2::Repository::open(t.root().join("demo/repo")).unwrap();
    let tree = repo.find_commit(main_tip(&t)).unwrap().tree().unwrap();
    assert!(tree.get_name("a.txt").is_some() && tree.get_name("b.txt").is_some());
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn mq_retry_and_reject_from_the_cli() {
    let t = town_with_rig();
    let out = t.fails(&["mq", "retry", "mr-99"], 2);
    assert!(out.contains("merge request '99' not found"), "{out}");
    assert!(t
        .fails(&["mq", "reject", "twelve"], 2)
        .contains("not a merge request id"));
    let listed = t.gt().args(["mq"]).output().unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("The merge queue is empty."));
}

#[test]
fn a_slung_molecule_is_walked_step_by_step_until_it_closes() {
    let t = town_with_rig();
    fast(&t, "");
    let poured = t.json(&["formula", "pour", "example", "--var", "topic=the cockpit"]);
    let epic = poured["id"].as_str().unwrap().to_string();
    let steps: Vec<String> = poured["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(steps.len(), 3);
    let _up = Up::start(&t);
    // Slinging the molecule hooks its first ready step.
    t.gt().args(["sling", &epic, "demo"]).assert().success();
    assert_eq!(t.json(&["bead", "show", &steps[0]])["status"], "hooked");
    assert_eq!(t.json(&["bead", "show", &steps[1]])["status"], "open");
    wait_for(&t, "the molecule to close", || {
        t.json(&["bead", "show", &epic])["status"] == "closed"
    });
    // Each step merged in formula order.
    let all = mrs(&t);
    let order: Vec<&str> = all
        .iter()
        .filter(|m| m["state"] == "merged")
        .map(|m| m["bead_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, steps.iter().map(String::as_str).collect::<Vec<_>>());
}
