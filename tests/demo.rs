//! The demo's story, headless: `demo --no-cockpit` builds the town, `up --headless` runs it,
//! and the outcome is checked the way a user would: every bead of the convoy is merged or
//! accounted for (the stalled one escalated to the overseer), the failing change was fixed on its
//! second try, the conflict came back as a new bead that merged, the crash was restarted, and
//! every commit on the rig's main branch passes its tests.

mod common;

use common::{wait_for, TestTown, Up};
use serde_json::Value;

fn json(t: &TestTown, dir: &std::path::Path, args: &[&str]) -> Value {
    let out = t
        .cmd()
        .arg("--town")
        .arg(dir)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_demo_story_runs_to_its_end() {
    let t = TestTown::new();
    let dir = t.dir.path().join("demo");
    t.cmd()
        .args(["demo", "--no-cockpit", "--dir", dir.to_str().unwrap()])
        .assert()
        .success();
    // The same story, faster: the demo's own patrol intervals are for people watching.
    let cfg = dir.join("town.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let start = text.find("\n[patrol]").unwrap() + 1;
    let end = text[start + 1..]
        .find("\n[")
        .map(|i| start + 1 + i)
        .unwrap_or(text.len());
    let faster =
        "[patrol]\ngupp_idle_after = \"1s\"\nwitness_every = \"200ms\"\nstall_after = \"4s\"\n\
                  deacon_every = \"300ms\"\nreap_after = \"10m\"\n";
    std::fs::write(
        &cfg,
        format!("{}{}{}", &text[..start], faster, &text[end..]),
    )
    .unwrap();

    // `Up` wants a TestTown rooted at the town: point one at the demo directory.
    let demo = DemoTown {
        t: &t,
        dir: dir.clone(),
    };
    let _up = demo.up();
    let convoy_id = json(&t, &dir, &["convoy", "list"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(&t, "the convoy to be done but for the stalled bead", || {
        let c = json(&t, &dir, &["convoy", "show", &convoy_id]);
        c["total"].as_u64().unwrap() >= 7
            && c["closed"].as_u64().unwrap() + 1 == c["total"].as_u64().unwrap()
    });
    wait_for(&t, "the stall escalation", || {
        json(&t, &dir, &["mail", "inbox"])
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["subject"].as_str().unwrap_or("").ends_with("is stalled"))
    });

    let mrs = json(&t, &dir, &["mq"]);
    let mrs = mrs.as_array().unwrap();
    let by_title = |title: &str| -> String {
        json(&t, &dir, &["bead", "list", "--limit", "0"])
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["title"] == title)
            .map(|b| b["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    // The failing change: rejected, then merged.
    let refactor = by_title("Refactor the storage layer");
    let states: Vec<&str> = mrs
        .iter()
        .filter(|m| m["bead_id"] == refactor.as_str())
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        vec!["rejected", "merged"],
        "fixed on its second try"
    );
    // The conflict: one of the two list.sh changes came back as a new bead, which merged.
    assert_eq!(mrs.iter().filter(|m| m["state"] == "conflict").count(), 1);
    let resolved = json(&t, &dir, &["bead", "list", "--limit", "0"])
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["title"]
                .as_str()
                .unwrap()
                .starts_with("Resolve merge conflict:")
        })
        .cloned()
        .expect("a resolve bead");
    assert_eq!(resolved["status"], "closed");
    // The crash was restarted.
    let agents = json(&t, &dir, &["agents"]);
    assert!(agents
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["restarts"].as_i64() >= Some(1)));
    // The stalled bead is the one left, and the overseer knows.
    let stall = by_title("Speed up the test suite");
    let problems = json(&t, &dir, &["feed", "--problems"]);
    assert!(problems
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["hooked_bead"] == stall.as_str()));

    // main's history is green, every commit of it (each bead squashed into one commit), and
    // each merge names the commit it produced, which is on main.
    let repo_dir = dir.join("demo/repo");
    let commits = common::history(&repo_dir, "main", None, false);
    for c in &commits {
        assert!(
            common::tests_pass_at(&repo_dir, *c),
            "{c} is on main, so its tests pass"
        );
    }
    let merged: Vec<&Value> = mrs.iter().filter(|m| m["state"] == "merged").collect();
    assert!(merged.len() >= 5, "{merged:?}");
    for m in merged {
        assert_eq!(m["style"], "squash", "{m}");
        let commit = m["merge_commit"]
            .as_str()
            .expect("a merge names its commit");
        assert!(
            commits.iter().any(|c| c.to_string() == commit),
            "{commit} is on main"
        );
    }
}

/// The demo town, for `Up` (which wants a `TestTown`-like root).
struct DemoTown<'a> {
    t: &'a TestTown,
    dir: std::path::PathBuf,
}

impl DemoTown<'_> {
    fn up(&self) -> Up {
        Up::start_at(self.t, &self.dir)
    }
}
