//! Formulas from the command line: list, show and pour through the real binary, the exit
//! codes (0 ok, 2 bad input) and the `--json` shapes.

mod common;

use common::{town_with_rig, TestTown};
use predicates::str::contains;
use serde_json::Value;

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

fn write_formula(t: &TestTown, name: &str, text: &str) -> std::path::PathBuf {
    let path = t
        .root()
        .join("formulas")
        .join(format!("{name}.formula.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

const HOTFIX: &str = r#"formula = "hotfix"
description = "Hotfix {{issue}} on {{rig}}"
version = 3
type = "convoy"

[vars.issue]
required = true

[vars.rig]
default = "demo"

[[steps]]
id = "patch"
title = "Patch {{issue}}"

[[steps]]
id = "verify"
title = "Verify {{issue}}"
needs = ["patch"]
"#;

#[test]
fn list_shows_shipped_and_town_formulas() {
    let t = TestTown::new();
    write_formula(&t, "hotfix", HOTFIX);
    write_formula(
        &t,
        "example",
        &HOTFIX
            .replace("\"hotfix\"", "\"example\"")
            .replace("version = 3", "version = 7"),
    );
    let list = t.json(&["formula", "list"]);
    assert_eq!(
        names(&list),
        [
            "code-review",
            "example",
            "hotfix",
            "polecat-work",
            "release"
        ]
    );
    let by_name = |n: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == n)
            .cloned()
            .unwrap()
    };
    let hotfix = by_name("hotfix");
    assert_eq!(hotfix["source"], "town");
    assert_eq!(hotfix["version"], 3);
    assert_eq!(hotfix["type"], "convoy");
    assert_eq!(hotfix["overrides_shipped"], false);
    let example = by_name("example");
    assert_eq!(
        example["source"], "town",
        "the town's example overrides the shipped one"
    );
    assert_eq!(example["version"], 7);
    assert_eq!(example["overrides_shipped"], true);
    let release = by_name("release");
    assert_eq!(release["source"], "shipped");
    assert_eq!(release["type"], "workflow");
    assert!(release["description"]
        .as_str()
        .unwrap()
        .starts_with("Release {{version}}"));

    t.gt()
        .args(["formula", "list"])
        .assert()
        .success()
        .stdout(contains("NAME"))
        .stdout(contains("polecat-work"))
        .stdout(contains("town (overrides shipped)"));
}

#[test]
fn show_prints_variables_and_steps() {
    let t = TestTown::new();
    let f = t.json(&["formula", "show", "release"]);
    assert_eq!(f["name"], "release");
    assert_eq!(f["version"], 1);
    assert_eq!(f["type"], "workflow");
    assert_eq!(f["source"], "shipped");
    assert_eq!(f["vars"][0]["name"], "version");
    assert_eq!(f["vars"][0]["required"], true);
    assert_eq!(f["vars"][1]["name"], "branch");
    assert_eq!(f["vars"][1]["default"], "main");
    assert_eq!(f["steps"][3]["id"], "test");
    assert_eq!(
        f["steps"][3]["needs"],
        serde_json::json!(["changelog", "bump"])
    );
    t.gt()
        .args(["formula", "show", "release"])
        .assert()
        .success()
        .stdout(contains("default \"main\""))
        .stdout(contains("required"))
        .stdout(contains("needs changelog, bump"));
    let err = t.fails(&["formula", "show", "nope"], 2);
    assert!(err.contains("no formula 'nope'"), "{err}");
    assert!(err.contains("release"), "lists what exists: {err}");
}

#[test]
fn pour_makes_a_molecule_whose_steps_are_ready_in_order() {
    let t = TestTown::new();
    let m = t.json(&["formula", "pour", "example"]);
    let id = m["id"].as_str().unwrap().to_string();
    assert_eq!(m["epic"]["id"], id.as_str());
    assert_eq!(m["epic"]["issue_type"], "epic");
    assert_eq!(m["formula"], "example");
    assert_eq!(m["vars"]["topic"], "the README", "the default applies");
    assert_eq!(m["epic"]["metadata"]["formula"], "example");
    assert_eq!(m["epic"]["metadata"]["version"], 1);
    assert!(m["convoy"].is_null());
    let steps = m["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    let step_ids: Vec<String> = steps
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        step_ids,
        [format!("{id}.1"), format!("{id}.2"), format!("{id}.3")]
    );
    assert_eq!(steps[0]["step"], "draft");
    assert_eq!(steps[0]["title"], "Draft a note about the README");
    assert_eq!(steps[0]["labels"], serde_json::json!(["step:draft"]));
    assert_eq!(steps[1]["blocked"], true);

    let ready = TestTown::ids(&t.json(&["bead", "ready"]));
    assert!(ready.contains(&step_ids[0]), "{ready:?}");
    assert!(!ready.contains(&step_ids[1]) && !ready.contains(&step_ids[2]));
    t.gt()
        .args(["bead", "close", &step_ids[0]])
        .assert()
        .success();
    let ready = TestTown::ids(&t.json(&["bead", "ready"]));
    assert!(ready.contains(&step_ids[1]), "{ready:?}");
    assert!(!ready.contains(&step_ids[2]), "{ready:?}");

    // Human output: the molecule and each step with its title.
    let out = t
        .gt()
        .args(["formula", "pour", "example", "--var", "topic=the CLI"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.starts_with("Poured example v1 as molecule "), "{text}");
    assert!(
        text.contains(".1  draft    Draft a note about the CLI"),
        "{text}"
    );
    assert!(text.contains("(needs review)"), "{text}");
}

#[test]
fn bad_variables_and_rigs_exit_2_and_write_nothing() {
    let t = TestTown::new();
    let before = t.json(&["bead", "list"]);
    let err = t.fails(&["formula", "pour", "release"], 2);
    assert!(
        err.contains("formula 'release' needs the required variable version"),
        "{err}"
    );
    let err = t.fails(&["formula", "pour", "release", "--var", "version"], 2);
    assert!(err.contains("'version' is not K=V"), "{err}");
    let err = t.fails(
        &[
            "formula",
            "pour",
            "release",
            "--var",
            "version=1",
            "--var",
            "colour=red",
        ],
        2,
    );
    assert!(err.contains("has no variable 'colour'"), "{err}");
    let err = t.fails(
        &[
            "formula",
            "pour",
            "release",
            "--var",
            "version=1",
            "--rig",
            "nowhere",
        ],
        2,
    );
    assert!(err.contains("no rig 'nowhere'"), "{err}");
    assert_eq!(t.json(&["bead", "list"]), before, "nothing was poured");
}

#[test]
fn a_convoy_formula_pours_a_convoy_auto_dispatching_to_the_rig() {
    let t = town_with_rig();
    write_formula(&t, "hotfix", HOTFIX);
    let m = t.json(&[
        "formula",
        "pour",
        "hotfix",
        "--var",
        "issue=gt-1",
        "--rig",
        "demo",
    ]);
    let convoy = &m["convoy"];
    assert_eq!(convoy["auto_dispatch"], "demo");
    assert_eq!(convoy["total"], 2);
    assert_eq!(m["epic"]["metadata"]["rig"], "demo");
    assert_eq!(m["epic"]["title"], "hotfix: Hotfix gt-1 on demo");
    let convoys = t.json(&["convoy", "list"]);
    assert_eq!(TestTown::ids(&convoys), [convoy["id"].as_str().unwrap()]);
    let tracked = convoys[0]["tracked"].as_array().unwrap().len();
    assert_eq!(tracked, 2);
}

#[test]
fn a_malformed_town_formula_names_file_line_and_key() {
    let t = TestTown::new();
    let path = write_formula(
        &t,
        "hotfix",
        &HOTFIX.replace("needs = [\"patch\"]", "nedds = [\"patch\"]"),
    );
    let err = t.fails(&["formula", "show", "hotfix"], 2);
    assert!(
        err.contains(&format!(
            "{}:19: steps[1].nedds: unknown key",
            path.display()
        )),
        "{err}"
    );
    let err = t.fails(&["formula", "pour", "hotfix", "--var", "issue=x"], 2);
    assert!(err.contains(":19: steps[1].nedds"), "{err}");
    // The listing still shows the good formulas, then fails naming the broken one.
    let out = t.gt().args(["formula", "list", "--json"]).assert().code(2);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let list: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        names(&list),
        ["code-review", "example", "polecat-work", "release"]
    );
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("hotfix.formula.toml:19: steps[1].nedds"),
        "{stderr}"
    );
    assert_eq!(
        t.json(&["bead", "list"]),
        serde_json::json!([]),
        "nothing poured"
    );
    // Other formulas still pour.
    t.gt()
        .args(["formula", "pour", "example"])
        .assert()
        .success();
}
