//! The command line as a user drives it: the real binary on temp towns.

mod common;

use common::{snapshot, TestTown};
use predicates::str::contains;
use serde_json::Value;
use std::time::{Duration, Instant};

#[test]
fn init_is_idempotent_and_refuses_a_foreign_directory() {
    let t = TestTown::new();
    let root = t.root();
    assert!(root.join("town.toml").is_file());
    assert!(root.join(".beads/beads.db").is_file());
    assert!(root.join(".git").is_dir());
    t.cmd()
        .arg("init")
        .arg(&root)
        .assert()
        .success()
        .stdout(contains("already set up"));

    let foreign = t.dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let before = snapshot(&foreign);
    t.cmd()
        .arg("init")
        .arg(&foreign)
        .assert()
        .code(2)
        .stderr(contains("not empty"));
    assert_eq!(snapshot(&foreign), before, "a refused init writes nothing");
}

#[test]
fn the_town_is_found_from_env_and_from_a_subdirectory() {
    let t = TestTown::new();
    let id = t.create("Findable", &[]);
    t.cmd()
        .env("GT_TOWN", t.root())
        .args(["bead", "show", &id])
        .assert()
        .success()
        .stdout(contains("Findable"));
    let sub = t.root().join("formulas");
    t.cmd()
        .current_dir(&sub)
        .args(["bead", "show", &id])
        .assert()
        .success();
    // No town anywhere: a clear message and exit 2.
    let elsewhere = tempfile::tempdir().unwrap();
    t.cmd()
        .current_dir(elsewhere.path())
        .env("HOME", elsewhere.path())
        .args(["bead", "list"])
        .assert()
        .code(2)
        .stderr(contains("no town found"))
        .stderr(contains("gastown-tui init"));
}

#[test]
fn a_broken_town_toml_names_file_line_and_key() {
    let t = TestTown::new();
    let cfg = t.root().join("town.toml");
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{good}\n[patrol]\nstall_after = \"5x\"\n")).unwrap();
    let line = good.lines().count() + 3;
    let err = t.fails(&["bead", "list"], 2);
    assert!(
        err.contains(&format!("town.toml:{line}: patrol.stall_after")),
        "{err}"
    );
    std::fs::write(&cfg, format!("max_polecat = 3\n{good}")).unwrap();
    let err = t.fails(&["bead", "ready"], 2);
    assert!(
        err.contains("town.toml:1: unknown key 'max_polecat'"),
        "{err}"
    );
    // The mistakes people make by hand, each named with the file, the line(s) and the key.
    let n = good.lines().count();
    let path = cfg.display().to_string();
    for (text, want) in [
        (
            format!("max_polecats = 3\n# more\nmax_polecats = 4\n{good}"),
            format!(
                "{path}:3: max_polecats: duplicate key, set twice (first on line 1); keep one"
            ),
        ),
        (
            format!("{good}[budget]\ndaily_usd = 5\n[patrol]\n[budget]\n"),
            format!(
                "{path}:{}: budget: the table [budget] is defined twice (first on line {}); merge the two",
                n + 4,
                n + 1
            ),
        ),
        (
            format!("{good}[budget]\ndaily_usd = \"ten\"\n"),
            format!(
                "{path}:{}: budget.daily_usd: expected a number, found a string",
                n + 2
            ),
        ),
        (
            format!("{good}[notify]\ncommand = [\"notify-send\", \"gastown]\n"),
            format!("{path}:{}:27: notify.command: unterminated string", n + 2),
        ),
    ] {
        std::fs::write(&cfg, &text).unwrap();
        let before = common::snapshot(&t.root());
        let err = t.fails(&["bead", "ready"], 2);
        assert!(err.contains(&want), "{text:?}: {err}");
        assert_eq!(common::snapshot(&t.root()), before, "nothing written");
    }
}

#[test]
fn bead_lifecycle_through_the_cli() {
    let t = TestTown::new();
    let bug = t.create(
        "Fix SQL injection",
        &["-p", "P0", "-t", "bug", "-l", "security", "-d", "in login"],
    );
    let docs = t.create("Write docs", &[]);
    let later = t.create("Later", &["--defer-until", "30days"]);
    assert!(bug.starts_with("gt-") && bug.len() == 6, "{bug}");

    let shown = t.json(&["bead", "show", &bug]);
    assert_eq!(shown["title"], "Fix SQL injection");
    assert_eq!(shown["priority"], 0);
    assert_eq!(shown["issue_type"], "bug");
    assert_eq!(shown["labels"], serde_json::json!(["security"]));
    assert_eq!(shown["created_by"], "overseer");

    assert_eq!(
        TestTown::ids(&t.json(&["bead", "ready"])),
        vec![bug.clone(), docs.clone()],
        "deferred beads are not ready"
    );
    t.gt()
        .args(["bead", "dep", "add", &docs, &bug])
        .assert()
        .success();
    assert_eq!(
        TestTown::ids(&t.json(&["bead", "ready"])),
        vec![bug.clone()]
    );
    let err = t.fails(&["bead", "dep", "add", &bug, &docs], 2);
    assert!(err.contains("cycle"), "{err}");

    let claimed = t.json(&["bead", "claim", &bug, "--as", "nux"]);
    assert_eq!(claimed["assignee"], "nux");
    assert_eq!(claimed["status"], "in_progress");
    let err = t.fails(&["bead", "claim", &bug, "--as", "slit"], 1);
    assert!(
        err.contains(&format!("{bug} is already claimed by nux")),
        "{err}"
    );

    t.gt()
        .env("GT_AGENT", "nux")
        .args(["bead", "close", &bug, "--reason", "fixed"])
        .assert()
        .success()
        .stdout(contains(format!("Closed {bug}")));
    assert_eq!(
        TestTown::ids(&t.json(&["bead", "ready"])),
        vec![docs.clone()]
    );
    let closed = t.json(&["bead", "show", &bug]);
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["close_reason"], "fixed");

    let updated = t.json(&[
        "bead",
        "update",
        &docs,
        "--priority",
        "1",
        "--add-label",
        "docs",
        "--assignee",
        "slit",
    ]);
    assert_eq!(updated["priority"], 1);
    assert_eq!(updated["assignee"], "slit");
    t.gt()
        .args(["bead", "update", &later, "--defer-until", "none"])
        .assert()
        .success();
    let ready = TestTown::ids(&t.json(&["bead", "ready"]));
    assert_eq!(ready, vec![docs.clone(), later.clone()]);
    assert_eq!(
        TestTown::ids(&t.json(&["bead", "ready", "--limit", "1"])).len(),
        1
    );

    let child = t.create("Child", &["--parent", &docs]);
    assert_eq!(child, format!("{docs}.1"));
    t.gt()
        .args(["bead", "dep", "rm", &docs, &bug])
        .assert()
        .success();
    t.gt()
        .args(["bead", "comment", &docs, "looks good"])
        .assert()
        .success();
    let shown = t.json(&["bead", "show", &docs]);
    assert_eq!(shown["comments"][0]["text"], "looks good");
    assert_eq!(shown["dependents"][0]["issue_id"], child);

    let list = t.json(&["bead", "list", "--status", "closed"]);
    assert_eq!(TestTown::ids(&list), vec![bug.clone()]);
    t.gt()
        .args(["bead", "list"])
        .assert()
        .success()
        .stdout(contains("Write docs"))
        .stdout(contains("ID"));

    // Every change left an event, with the actor who made it.
    let feed = t.json(&["feed", "--limit", "100"]);
    let of = |subject: &str| -> Vec<(String, String)> {
        feed.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["subject"] == subject)
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_string(),
                    e["actor"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let kinds: Vec<(String, String)> = of(&bug);
    let want: Vec<(String, String)> = [
        ("created", "overseer"),
        ("claimed", "nux"),
        ("status_changed", "nux"),
        ("closed", "nux"),
    ]
    .iter()
    .map(|(k, a)| (k.to_string(), a.to_string()))
    .collect();
    assert_eq!(kinds, want);
    t.gt()
        .args(["feed"])
        .assert()
        .success()
        .stdout(contains(format!("nux claimed {bug}")));
}

#[test]
fn every_bad_input_gets_a_message_and_exit_2_and_changes_nothing() {
    let t = TestTown::new();
    let id = t.create("Only bead", &[]);
    let cases: &[(&[&str], &str)] = &[
        (&["bead", "show", "gt-zzzz"], "bead 'gt-zzzz' not found"),
        (&["bead", "show", "not-an id"], "is not a bead id"),
        (&["bead", "create", "x", "-p", "7"], "--priority: '7'"),
        (
            &["bead", "create", "x", "-t", "story"],
            "unknown type 'story'",
        ),
        (&["bead", "create", " "], "the title is empty"),
        (
            &["bead", "create", "x", "--defer-until", "soon"],
            "--defer-until: 'soon'",
        ),
        (
            &["bead", "create", "x", "--parent", "gt-nope"],
            "parent bead 'gt-nope' not found",
        ),
        (
            &["bead", "list", "--status", "done"],
            "unknown status 'done'",
        ),
        (&["bead", "update", &id], "nothing to update"),
        (
            &["bead", "update", &id, "--status", "finished"],
            "unknown status 'finished'",
        ),
        (&["bead", "dep", "add", &id, &id], "cannot depend on itself"),
        (
            &["bead", "dep", "add", &id, "gt-nope"],
            "'gt-nope' not found",
        ),
        (
            &["bead", "dep", "add", &id, "gt-a", "--type", "likes"],
            "unknown dependency type 'likes'",
        ),
        (&["bead", "dep", "rm", &id, "gt-nope"], "not found"),
        (
            &["bead", "import", "/no/such/file.jsonl"],
            "open /no/such/file.jsonl",
        ),
        (&["mail", "send", "a/b/c", "hi"], "is not a mail address"),
        (&["mail", "read", &id], "not a message"),
        (
            &["convoy", "create", "C", "--auto-dispatch", "norig"],
            "no rig 'norig'",
        ),
        (&["convoy", "show", &id], "not a convoy"),
        (&["bead", "frobnicate"], "unrecognized subcommand"),
        (
            &["bead", "ready", "--limit", "many"],
            "invalid value 'many'",
        ),
    ];
    let count_before = t.json(&["bead", "list"]).as_array().unwrap().len();
    for (args, want) in cases {
        let code = if want.starts_with("open ") { 1 } else { 2 };
        let err = t.fails(args, code);
        assert!(
            err.contains(want),
            "{args:?}: {err:?} should contain {want:?}"
        );
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
    assert_eq!(
        t.json(&["bead", "list"]).as_array().unwrap().len(),
        count_before,
        "no bad command created anything"
    );
    let shown = t.json(&["bead", "show", &id]);
    assert_eq!(shown["status"], "open");
    assert!(shown.get("dependencies").is_none());
}

const SAMPLE: &str = r#"{"id":"bd-a1b","title":"Parent epic","status":"open","priority":1,"issue_type":"epic","created_at":"2025-10-30T12:00:00-07:00","updated_at":"2025-10-30T12:00:00-07:00","labels":["auth"],"compaction_level":0}
{"id":"bd-a1b.1","title":"Child","status":"open","priority":2,"issue_type":"task","created_at":"2025-10-30T12:01:00Z","updated_at":"2025-10-30T12:05:00Z","dependencies":[{"issue_id":"bd-a1b.1","depends_on_id":"bd-a1b","type":"parent-child","created_at":"2025-10-30T12:01:00Z"}]}
{"id":"bd-c2d","title":"Closed","status":"closed","priority":0,"issue_type":"bug","created_at":"2025-10-29T08:00:00Z","updated_at":"2025-10-29T09:00:00Z","closed_at":"2025-10-29T09:00:00Z","close_reason":"fixed"}
"#;

#[test]
fn import_export_round_trip_and_all_or_nothing() {
    let t = TestTown::new();
    let file = t.dir.path().join("issues.jsonl");
    std::fs::write(&file, SAMPLE).unwrap();
    let report = t.json(&["bead", "import", file.to_str().unwrap()]);
    assert_eq!(report["created"], 3);
    let out = t.gt().args(["bead", "export"]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let got: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut want: Vec<Value> = SAMPLE
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    want.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    assert_eq!(
        got, want,
        "import then export gives the same records, sorted by id"
    );
    assert_eq!(
        TestTown::ids(&t.json(&["bead", "ready"])),
        vec!["bd-a1b".to_string(), "bd-a1b.1".to_string()]
    );

    // To a file: the same bytes, written atomically.
    let dest = t.dir.path().join("out.jsonl");
    t.gt()
        .args(["bead", "export", dest.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), text);

    // A bad line anywhere: its number is named and nothing is imported.
    let bad = format!(
        "{}{}\n{}",
        r#"{"id":"bd-new1","title":"fine"}"#,
        "",
        r#"{"id":"bd-new2","title":"broken","priority":"urgent"}"#
    );
    std::fs::write(&file, bad).unwrap();
    let err = t.fails(&["bead", "import", file.to_str().unwrap()], 2);
    assert!(
        err.contains("issues.jsonl:2: priority: expected an integer"),
        "{err}"
    );
    t.fails(&["bead", "show", "bd-new1"], 2);
}

#[test]
fn the_store_flushes_issues_jsonl_by_itself() {
    let t = TestTown::new();
    let id = t.create("Flush me", &[]);
    let path = t.root().join(".beads/issues.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains(&id) {
            break;
        }
        assert!(Instant::now() < deadline, "issues.jsonl never got {id}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A later change reaches the file too.
    t.gt()
        .args(["bead", "close", &id, "--reason", "flushed"])
        .assert()
        .success();
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("\"close_reason\":\"flushed\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the close never reached issues.jsonl"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn convoys_track_progress_and_close_themselves() {
    let t = TestTown::new();
    let a = t.create("a", &[]);
    let b = t.create("b", &[]);
    let c = t.json(&["convoy", "create", "Auth", &a]);
    let cid = c["id"].as_str().unwrap().to_string();
    assert_eq!(
        (c["closed"].as_u64(), c["total"].as_u64()),
        (Some(0), Some(1))
    );
    let c = t.json(&["convoy", "add", &cid, &b]);
    assert_eq!(c["total"], 2);
    t.gt().args(["bead", "close", &a]).assert().success();
    t.gt()
        .args(["convoy", "list"])
        .assert()
        .success()
        .stdout(contains("1/2"));
    t.gt().args(["bead", "close", &b]).assert().success();
    let c = t.json(&["convoy", "show", &cid]);
    assert_eq!(c["status"], "closed");
    assert_eq!(t.json(&["convoy", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn mail_goes_from_agent_to_overseer() {
    let t = TestTown::new();
    let m = t.json(&[
        "mail",
        "send",
        "overseer",
        "Stuck on tests",
        "they hang",
        "--as",
        "demo/nux",
    ]);
    let id = m["id"].as_str().unwrap().to_string();
    let inbox = t.json(&["mail", "inbox"]);
    assert_eq!(inbox[0]["from"], "demo/nux");
    assert_eq!(inbox[0]["read"], false);
    t.gt()
        .args(["mail", "read", &id])
        .assert()
        .success()
        .stdout(contains("they hang"));
    assert_eq!(t.json(&["mail", "inbox"]).as_array().unwrap().len(), 0);
    assert_eq!(
        t.json(&["mail", "inbox", "--all"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The agent's own inbox is chosen by its identity.
    t.gt()
        .env("GT_AGENT", "demo/nux")
        .args(["mail", "inbox"])
        .assert()
        .success()
        .stdout(contains("No unread mail for demo/nux"));
}

#[test]
fn demo_seeds_a_town_with_ready_work_and_a_convoy() {
    let t = TestTown::new();
    let dir = t.dir.path().join("demo");
    t.cmd()
        .args(["demo", "--dir", dir.to_str().unwrap()])
        .assert()
        .success()
        .stdout(contains("Demo town created"))
        .stdout(contains("Todo app v1"));
    let mut c = t.cmd();
    c.args(["--town", dir.to_str().unwrap(), "bead", "ready", "--json"]);
    let out = c.assert().success();
    let ready: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let titles: Vec<&str> = ready
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["title"].as_str().unwrap())
        .collect();
    // The first four beads of the convoy are on polecats' hooks, so the epic leads the queue.
    assert_eq!(titles[0], "Release 1.0", "P1 first");
    assert!(
        !titles.contains(&"Fix off-by-one in list numbering"),
        "slung"
    );
    let agents = t
        .cmd()
        .args(["--town", dir.to_str().unwrap(), "agents", "--json"])
        .assert()
        .success();
    let agents: Value = serde_json::from_slice(&agents.get_output().stdout).unwrap();
    let names: Vec<&str> = agents
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["mayor", "furiosa", "nux", "rictus", "slit"]);
    assert!(
        dir.join("demo/polecats/nux/test.sh").is_file(),
        "worktrees made"
    );
    assert!(
        std::process::Command::new("sh")
            .arg("test.sh")
            .current_dir(dir.join("demo/repo"))
            .status()
            .unwrap()
            .success(),
        "the sample rig's tests pass"
    );
    assert!(
        titles.contains(&"Rename the list command to ls"),
        "ready (the Deacon dispatches it once the engine runs)"
    );
    assert!(
        !titles.contains(&"Tag the release"),
        "blocked by the changelog"
    );
    // Running it again on the same directory is refused rather than doubling the work.
    t.cmd()
        .args(["demo", "--dir", dir.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains("already holds beads"));
}

#[test]
fn doctor_and_completions() {
    let t = TestTown::new();
    // A fresh town defaults to claude, which this machine does not have.
    let out = t
        .gt()
        .arg("doctor")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL  runtime claude (default)"));
    t.gt()
        .args(["config", "default-runtime", "sim"])
        .assert()
        .success();
    // Only git and sh on PATH: whatever agents this machine has installed (a claude that
    // refuses root, say) is not part of this check.
    let bin = t.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["git", "sh"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} is on PATH"));
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    t.gt()
        .arg("doctor")
        .env("PATH", &bin)
        .assert()
        .success()
        .stdout(contains("ok    store"))
        .stdout(contains("runtime sim"))
        .stdout(contains("warn  rigs: none yet"));
    // A default runtime that is not installed is a failure, with exit 1.
    t.gt()
        .args(["config", "default-runtime", "codex"])
        .assert()
        .success();
    let out = t
        .gt()
        .arg("doctor")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL  runtime codex (default)"));
    t.cmd()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(contains("_gastown__tui()"));
    t.cmd().args(["completions", "tcsh"]).assert().code(2);
}
