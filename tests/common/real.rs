//! Helpers for the tests that run real agent CLIs as a town's polecats (tests/town_*.rs);
//! their processes are found and ended by `models::procs_of` and `models::Reaper`.

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

/// USD per million tokens: input, output, cache read, cache write.
pub type Price = [f64; 4];

/// Waits until `costs --by agent --json` gives `who` exactly the tokens `from_files` computes
/// from the runtime's own records (computed again at each look: the meter reads every 2 s and
/// once more when a session ends), then checks its USD at `price`.
pub fn assert_costs_match(
    t: &TestTown,
    who: &str,
    price: Price,
    from_files: impl Fn() -> [i64; 4],
) {
    let got = |t: &TestTown| -> Option<[i64; 4]> {
        let rows = t.json(&["costs", "--by", "agent"]);
        let r = rows.as_array()?.iter().find(|r| r["agent"] == who)?.clone();
        Some([
            r["input_tokens"].as_i64()?,
            r["output_tokens"].as_i64()?,
            r["cache_read_tokens"].as_i64()?,
            r["cache_write_tokens"].as_i64()?,
        ])
    };
    super::wait_long(t, &format!("{who}'s costs equal its records"), 60, || {
        let want = from_files();
        want.iter().sum::<i64>() > 0 && got(t) == Some(want)
    });
    let want = from_files();
    let rows = t.json(&["costs", "--by", "agent"]);
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["agent"] == who)
        .unwrap();
    assert_eq!(row["tokens"], want.iter().sum::<i64>());
    let usd: f64 = want
        .iter()
        .zip(price)
        .map(|(n, p)| *n as f64 * p)
        .sum::<f64>()
        / 1e6;
    let said = row["usd"].as_f64().expect("a shipped price");
    assert!((said - usd).abs() < 1e-9, "{who}: {said} USD, want {usd}");
}

/// Every JSON line of the `.jsonl` files under `dir` (recursively) that `keep` accepts.
pub fn jsonl_under(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<(PathBuf, Vec<Value>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") && keep(&p) {
                let lines = std::fs::read_to_string(&p)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect();
                out.push((p, lines));
            }
        }
    }
    out
}
