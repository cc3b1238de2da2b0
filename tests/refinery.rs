//! The Refinery on real git repositories through the running engine: green merges, red is
//! rejected and sent back, conflicts become new beads, untested rigs merge nothing, hanging
//! tests are killed, one merge at a time per rig; the invariant over a whole run: every
//! position the target branch took passed the tests; per merge style, the history a user walks
//! (every commit for squash, the first-parent line for merge) is green, and worktrees follow
//! the merges; a crash in the middle of a squash merge is recovered as merged or as queued.

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
    common::tests_pass_at(&t.root().join("demo/repo"), commit)
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
            *p == prev || repo.graph_descendant_of(*p, prev).unwrap(),
            "main only moves forward: {positions:?}"
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

/// Sets the rig's `merge_style` in town.toml.
fn set_style(t: &TestTown, style: &str) {
    let cfg = t.root().join("town.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    // The rig's table is the last one `rig add` wrote (the template above only mentions keys).
    let at = text.rfind("[rigs.demo]").unwrap();
    let (head, rig) = text.split_at(at);
    let rig = rig.replacen("\n", &format!("\nmerge_style = \"{style}\"\n"), 1);
    std::fs::write(&cfg, format!("{head}{rig}")).unwrap();
}

/// A whole run in `style`: a green change, a work-in-progress change of several commits, a
/// change whose first try breaks the tests and whose second fixes them, and two changes that
/// conflict (the loser redone as a resolve bead). Returns the town, main before the run and
/// the merge requests at the end.
fn whole_run(style: &str) -> (TestTown, git2::Oid, Vec<Value>) {
    let t = town_with_rig();
    set_style(&t, style);
    fast(&t, "");
    // Idle polecats are reaped at once, so the Deacon cleans their worktrees during the run.
    let cfg = t.root().join("town.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("reap_after = \"10m\"", "reap_after = \"1s\""),
    )
    .unwrap();
    let start = main_tip(&t);
    let green = t.create("Green", &["-d", "sim: edit green.txt"]);
    let wip = t.create(
        "Work in progress",
        &[
            "-d",
            "sim: edit wip.txt\nsim: edit wip.txt\nsim: edit more.txt",
        ],
    );
    let red = t.create(
        "Red then fixed",
        &["-d", "sim: edit red.txt\nsim: break-tests"],
    );
    let c1 = t.create("Clash one", &["-d", "sim: conflict shared.txt"]);
    let c2 = t.create("Clash two", &["-d", "sim: conflict shared.txt"]);
    let convoy = t.json(&["convoy", "create", "Batch", &green, &wip, &red, &c1, &c2]);
    let convoy = convoy["id"].as_str().unwrap().to_string();
    let _up = Up::start(&t);
    for b in [&green, &wip, &red, &c1, &c2] {
        t.gt().args(["sling", b, "demo"]).assert().success();
    }
    wait_for(&t, "the conflict", || {
        mrs(&t).iter().any(|m| m["state"] == "conflict")
    });
    let all = mrs(&t);
    let loser = all.iter().find(|m| m["state"] == "conflict").unwrap();
    let loser = loser["bead_id"].as_str().unwrap().to_string();
    let resolve = t.json(&["bead", "show", &loser])["dependents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "supersedes")
        .map(|d| d["issue_id"].as_str().unwrap().to_string())
        .expect("a resolve bead");
    t.gt().args(["sling", &resolve, "demo"]).assert().success();
    wait_for(&t, "the convoy to close", || {
        t.json(&["convoy", "show", &convoy])["status"] == "closed"
    });
    let all = mrs(&t);
    assert_eq!(
        mr_for(&all, &red)
            .iter()
            .map(|m| m["state"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["rejected", "merged"],
        "red, then fixed"
    );
    for m in all.iter().filter(|m| m["state"] == "merged") {
        assert_eq!(m["style"], style, "{m}");
        let commit = m["merge_commit"]
            .as_str()
            .expect("a merge names its commit");
        let commit = git2::Oid::from_str(commit).unwrap();
        let repo = git2::Repository::open(t.root().join("demo/repo")).unwrap();
        assert!(
            commit == main_tip(&t) || repo.graph_descendant_of(main_tip(&t), commit).unwrap(),
            "mr-{} produced {commit}, which is on main",
            m["id"]
        );
        assert!(
            tests_pass_at(&t, commit),
            "{commit} merged, so its tests pass"
        );
    }
    assert_worktrees_follow_merges(&t, &all);
    (t, start, all)
}

/// The Deacon removes the worktrees of polecats whose branch merged, and keeps the one whose
/// branch holds the change that conflicted (commits merged nowhere).
fn assert_worktrees_follow_merges(t: &TestTown, all: &[Value]) {
    let loser = all.iter().find(|m| m["state"] == "conflict").unwrap()["submitter"]
        .as_str()
        .unwrap()
        .to_string();
    let winners: Vec<String> = all
        .iter()
        .filter(|m| m["state"] == "merged" && m["submitter"] != loser.as_str())
        .map(|m| m["submitter"].as_str().unwrap().to_string())
        .collect();
    let wt = |name: &str| t.root().join("demo/polecats").join(name);
    wait_for(t, "the merged polecats' worktrees to be removed", || {
        winners.iter().all(|w| !wt(w).exists())
    });
    assert!(
        wt(&loser).exists(),
        "{loser}'s worktree holds the conflicting change, merged nowhere: it is kept"
    );
    let kept = t.json(&["feed"]);
    assert!(
        kept.as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "worktree_kept" && e["subject"] == loser.as_str()),
        "the kept worktree is in the feed"
    );
}

#[test]
fn squash_lands_each_bead_as_one_green_commit() {
    let (t, start, all) = whole_run("squash");
    let repo_dir = t.root().join("demo/repo");
    let commits = common::history(&repo_dir, "main", Some(start), false);
    let merged: Vec<&Value> = all.iter().filter(|m| m["state"] == "merged").collect();
    assert_eq!(
        commits.len(),
        merged.len(),
        "one commit per merged bead: {commits:?} {merged:#?}"
    );
    let repo = git2::Repository::open(&repo_dir).unwrap();
    for c in &commits {
        assert!(tests_pass_at(&t, *c), "every commit on main passes: {c}");
        let commit = repo.find_commit(*c).unwrap();
        assert_eq!(commit.parent_count(), 1);
        let m = merged
            .iter()
            .find(|m| m["merge_commit"] == c.to_string().as_str())
            .expect("each commit is a merge's");
        let bead = m["bead_id"].as_str().unwrap();
        let title = t.json(&["bead", "show", bead])["title"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            commit.summary().unwrap(),
            Some(format!("{bead}: {title}").as_str())
        );
        assert_eq!(
            commit.author().name().ok(),
            m["submitter"].as_str(),
            "by the polecat"
        );
        let body = commit.message().unwrap();
        assert!(
            body.contains(&format!("merge request mr-{}", m["id"])),
            "{body}"
        );
    }
    assert!(
        !commits.iter().any(|c| repo
            .find_commit(*c)
            .unwrap()
            .summary()
            .unwrap()
            .unwrap()
            .contains("break the tests")),
        "the red commit is squashed away"
    );
}

#[test]
fn merge_lands_each_bead_as_one_green_merge_commit() {
    let (t, start, all) = whole_run("merge");
    let repo_dir = t.root().join("demo/repo");
    let line = common::history(&repo_dir, "main", Some(start), true);
    let merged = all.iter().filter(|m| m["state"] == "merged").count();
    assert_eq!(
        line.len(),
        merged,
        "one first-parent commit per merged bead"
    );
    let repo = git2::Repository::open(&repo_dir).unwrap();
    for c in &line {
        assert!(
            tests_pass_at(&t, *c),
            "every first-parent commit passes: {c}"
        );
        assert_eq!(repo.find_commit(*c).unwrap().parent_count(), 2, "--no-ff");
    }
    // The branches' own commits stay reachable, the red one among them.
    let everything = common::history(&repo_dir, "main", Some(start), false);
    assert!(everything.iter().any(|c| repo
        .find_commit(*c)
        .unwrap()
        .summary()
        .unwrap()
        .unwrap()
        .contains("break the tests")));
}

#[test]
fn rebase_keeps_the_branches_commits_and_tests_only_each_tip() {
    let (t, start, all) = whole_run("rebase");
    let repo_dir = t.root().join("demo/repo");
    let commits = common::history(&repo_dir, "main", Some(start), false);
    let merged = all.iter().filter(|m| m["state"] == "merged").count();
    assert!(
        commits.len() > merged,
        "the branches' own commits land one by one"
    );
    // As documented: only each merge's tip was tested, so a red work-in-progress commit can
    // stand on main (here the first try of the red-then-fixed change).
    let repo = git2::Repository::open(&repo_dir).unwrap();
    let red = commits
        .iter()
        .find(|c| {
            repo.find_commit(**c)
                .unwrap()
                .summary()
                .unwrap()
                .unwrap()
                .contains("break the tests")
        })
        .expect("the red commit is on main");
    assert!(!tests_pass_at(&t, *red));
}

/// Starts the engine with the Refinery's crash hook at `point`, slings a change of several
/// commits, and waits for the engine to die there.
fn crash_during_a_squash(point: &str) -> (TestTown, git2::Oid, String) {
    let t = town_with_rig();
    fast(&t, "");
    let start = main_tip(&t);
    let bead = t.create("Crashy", &["-d", "sim: edit c.txt\nsim: edit d.txt"]);
    let mut up = Up::start_with(&t, &[("GT_TEST_REFINERY_CRASH".into(), point.into())]);
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    wait_for(&t, "the engine to die in the merge", || {
        up.0.try_wait().unwrap().is_some()
    });
    let m = mr_for(&mrs(&t), &bead)[0].clone();
    assert_eq!(m["state"], "testing", "cut off in the middle: {m}");
    let recorded = m["merge_commit"]
        .as_str()
        .expect("the commit is recorded before main moves")
        .to_string();
    (t, start, recorded)
}

/// What a recovered merge must look like: merged once, never also queued, main one commit
/// further and green, the bead closed.
fn assert_merged_once(t: &TestTown, start: git2::Oid) -> Value {
    wait_for(t, "the recovered merge", || {
        mrs(t).iter().any(|m| m["state"] == "merged")
    });
    std::thread::sleep(Duration::from_secs(1));
    let all = mrs(t);
    assert_eq!(all.len(), 1, "{all:?}");
    let m = all[0].clone();
    assert_eq!(m["state"], "merged", "{m}");
    let commits = common::history(&t.root().join("demo/repo"), "main", Some(start), false);
    assert_eq!(commits.len(), 1, "one squash commit, not two");
    assert_eq!(m["merge_commit"], commits[0].to_string().as_str());
    assert!(tests_pass_at(t, commits[0]));
    let bead = m["bead_id"].as_str().unwrap();
    assert_eq!(t.json(&["bead", "show", bead])["status"], "closed");
    m
}

#[test]
fn a_crash_after_main_moved_is_recovered_as_merged() {
    let (t, start, recorded) = crash_during_a_squash("after-advance");
    assert_eq!(
        main_tip(&t).to_string(),
        recorded,
        "main moved before the crash"
    );
    let _up = Up::start(&t);
    let m = assert_merged_once(&t, start);
    assert_eq!(
        m["merge_commit"],
        recorded.as_str(),
        "the commit main moved to"
    );
    assert!(
        m["test_log_tail"]
            .as_str()
            .unwrap()
            .contains("merged before a restart"),
        "recognised from its record, not tested again: {m}"
    );
}

#[test]
fn a_crash_before_main_moved_is_queued_and_merged_once() {
    let (t, start, _recorded) = crash_during_a_squash("before-advance");
    assert_eq!(main_tip(&t), start, "main had not moved");
    let _up = Up::start(&t);
    let m = assert_merged_once(&t, start);
    assert!(
        m["test_log_tail"].as_str().unwrap().contains("$ ./test.sh"),
        "tested again after the restart: {m}"
    );
}
