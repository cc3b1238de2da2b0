//! Rigs, crew, sling and the agent-side commands through the real binary.

mod common;

use common::{snapshot, town_with_rig};
use predicates::str::contains;

fn commit_all(repo: &git2::Repository, msg: &str) {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    let parents: Vec<git2::Commit> = repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .into_iter()
        .collect();
    let parents: Vec<&git2::Commit> = parents.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)
        .unwrap();
}

#[test]
fn rig_add_clones_and_records_the_rig_keeping_comments() {
    let t = town_with_rig();
    assert!(t.root().join("demo/repo/test.sh").is_file());
    let cfg = std::fs::read_to_string(t.root().join("town.toml")).unwrap();
    assert!(cfg.contains("[rigs.demo]"));
    assert!(cfg.contains("test_command = \"./test.sh\""));
    assert!(cfg.contains("# The most polecats"), "comments kept");
    let rigs = t.json(&["rig", "list"]);
    assert_eq!(rigs[0]["name"], "demo");
    assert_eq!(rigs[0]["cloned"], true);

    // Everything but the SQLite files (whose shared-memory index readers may touch).
    let files = || -> Vec<_> {
        snapshot(t.root().as_path())
            .into_iter()
            .filter(|(p, _)| !p.to_string_lossy().contains("beads.db"))
            .collect()
    };
    let before = files();
    let src = t.dir.path().join("src");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "rig".into(),
                "add".into(),
                "demo".into(),
                src.display().to_string(),
            ],
            "already exists",
        ),
        (
            vec![
                "rig".into(),
                "add".into(),
                "other".into(),
                "/no/such/repo".into(),
            ],
            "no such directory",
        ),
        (
            vec![
                "rig".into(),
                "add".into(),
                "other".into(),
                src.display().to_string(),
                "--branch".into(),
                "dev".into(),
            ],
            "branch 'dev' not found",
        ),
        (
            vec![
                "rig".into(),
                "add".into(),
                "Bad Name".into(),
                src.display().to_string(),
            ],
            "rig name 'Bad Name'",
        ),
        (
            vec![
                "rig".into(),
                "add".into(),
                "logs".into(),
                src.display().to_string(),
            ],
            "rig name 'logs'",
        ),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = t.fails(&args, 2);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(files(), before, "failed rig adds leave nothing behind");
}

#[test]
fn sling_prime_and_done_walk_a_bead_to_the_merge_queue() {
    let t = town_with_rig();
    let bead = t.create(
        "Add a --version flag",
        &["-d", "Print the version.", "--acceptance", "prints 1.0"],
    );
    t.gt()
        .args(["sling", &bead, "demo", "--runtime", "sim"])
        .assert()
        .success()
        .stdout(contains(format!(
            "Slung {bead} to rig demo: furiosa (a new polecat)"
        )))
        .stdout(contains("No engine is running"));
    let wt = t.root().join("demo/polecats/furiosa");
    let repo = git2::Repository::open(&wt).unwrap();
    assert_eq!(
        repo.head().unwrap().shorthand().unwrap(),
        format!("polecat/furiosa/{bead}")
    );
    let agents = t.json(&["agents"]);
    assert_eq!(agents[0]["name"], "furiosa");
    assert_eq!(agents[0]["hooked_bead"], bead.as_str());
    assert_eq!(agents[0]["runtime"], "sim");
    assert_eq!(t.json(&["bead", "show", &bead])["status"], "hooked");

    // The agent's side, as GT_AGENT.
    t.gt()
        .env("GT_AGENT", "furiosa")
        .arg("prime")
        .assert()
        .success()
        .stdout(contains("You are furiosa, the polecat of rig demo"))
        .stdout(contains(format!(
            "On your hook: {bead} \"Add a --version flag\""
        )))
        .stdout(contains("prints 1.0"));
    t.gt()
        .env("GT_AGENT", "furiosa")
        .args(["agent-event", "working"])
        .assert()
        .success();
    assert_eq!(t.json(&["agents"])[0]["state"], "working");

    std::fs::write(wt.join("VERSION"), "1.0\n").unwrap();
    let err = t.fails(&["done", "--as", "furiosa"], 1);
    assert!(err.contains("uncommitted changes (VERSION)"), "{err}");
    assert_eq!(
        t.json(&["bead", "show", &bead])["status"],
        "hooked",
        "refused: nothing changed"
    );
    commit_all(&repo, "version flag");
    t.gt()
        .args(["done", "--as", "furiosa"])
        .assert()
        .success()
        .stdout(contains(format!("Submitted polecat/furiosa/{bead}")));
    let agents = t.json(&["agents"]);
    assert!(agents[0]["hooked_bead"].is_null());
    assert_eq!(t.json(&["bead", "show", &bead])["status"], "in_progress");
    t.gt()
        .args(["feed"])
        .assert()
        .success()
        .stdout(contains(format!(
            "furiosa submitted polecat/furiosa/{bead}"
        )));

    // Bad input on this path.
    assert!(t
        .fails(&["sling", &bead, "nope"], 2)
        .contains("no rig 'nope'"));
    let other = t.create("Other", &[]);
    assert!(t
        .fails(&["sling", &other, "demo", "--runtime", "emacs"], 2)
        .contains("unknown runtime 'emacs'"));
    assert!(t
        .fails(&["prime", "--as", "stranger"], 2)
        .contains("not an agent of this town"));
    assert!(t
        .fails(&["agent-event", "dancing", "--as", "furiosa"], 2)
        .contains("unknown agent event"));
    assert!(t
        .fails(&["done", "--as", "furiosa", "--status", "meh"], 2)
        .contains("--status: 'meh'"));
}

#[test]
fn crew_members_get_their_own_worktree() {
    let t = town_with_rig();
    t.gt()
        .args(["crew", "add", "max", "--rig", "demo"])
        .assert()
        .success();
    let wt = t.root().join("demo/crew/max");
    assert!(wt.join("test.sh").is_file());
    let agents = t.json(&["agents"]);
    assert_eq!(
        (agents[0]["name"].as_str(), agents[0]["role"].as_str()),
        (Some("max"), Some("crew"))
    );
    assert!(t
        .fails(&["crew", "add", "joe", "--rig", "nope"], 2)
        .contains("no rig 'nope'"));
}
