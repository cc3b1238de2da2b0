//! Unit tests: the shipped formulas, parse errors with their exact lines, pouring into a
//! store and the readiness order that follows, the catalog's override rule.

use super::*;
use crate::beads::testutil::store;
use crate::beads::{status, Store};
use crate::Error;
use std::path::Path;

fn parse(name: &str, src: &str) -> crate::Result<Formula> {
    Formula::parse(
        src,
        Path::new(&format!("/t/formulas/{name}{FILE_SUFFIX}")),
        Source::Town,
    )
}

/// The error message of a formula that must not parse (and must be bad input).
fn err(name: &str, src: &str) -> String {
    match parse(name, src) {
        Ok(f) => panic!("{name} parsed but should not have: {f:?}"),
        Err(Error::BadInput(m)) => m,
        Err(e) => panic!("{name}: expected BadInput, got {e:?}"),
    }
}

const GOOD: &str = r#"formula = "ship"
description = "Ship {{what}}"
version = 2

[vars.what]
description = "What to ship"
required = true

[vars.when]
default = "today"

[[steps]]
id = "build"
title = "Build {{what}}"

[[steps]]
id = "test"
title = "Test {{what}} {{when}}"
description = "Run every test."
needs = ["build"]
acceptance = "green"

[[steps]]
id = "ship"
title = "Ship it"
needs = ["test", "build"]
"#;

#[test]
fn a_good_formula_parses_with_vars_and_steps_in_file_order() {
    let f = parse("ship", GOOD).unwrap();
    assert_eq!(f.name, "ship");
    assert_eq!(f.version, 2);
    assert_eq!(f.kind, FormulaType::Workflow, "type defaults to workflow");
    let vars: Vec<&str> = f.vars.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(vars, ["what", "when"], "file order, not alphabetical");
    assert!(f.vars[0].required);
    assert_eq!(f.vars[1].default.as_deref(), Some("today"));
    assert!(!f.vars[1].required);
    let ids: Vec<&str> = f.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["build", "test", "ship"]);
    assert_eq!(f.steps[2].needs, ["test", "build"]);
    assert_eq!(f.steps[1].acceptance, "green");
    assert_eq!(f.steps[0].description, "");
}

#[test]
fn every_shipped_formula_parses_and_every_file_is_shipped() {
    let catalog = Catalog::shipped();
    for (entry, parsed) in catalog.parse_all() {
        let f = parsed.unwrap_or_else(|e| panic!("shipped {}: {e}", entry.name));
        assert_eq!(f.source, Source::Shipped);
        assert!(!f.description.trim().is_empty(), "{}", f.name);
        assert!(!f.steps.is_empty(), "{}", f.name);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("formulas");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(FILE_SUFFIX).map(str::to_string)
        })
        .collect();
    on_disk.sort();
    let shipped: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        on_disk, shipped,
        "every formulas/*.formula.toml is embedded"
    );
    for name in ["polecat-work", "release", "code-review", "example"] {
        assert!(shipped.contains(&name), "{name} is shipped");
    }
}

#[test]
fn the_shipped_formulas_have_the_promised_shape() {
    let c = Catalog::shipped();
    let pw = c.get("polecat-work").unwrap();
    assert!(pw.var("bead").is_some_and(|v| v.required));
    let ids: Vec<&str> = pw.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        ["understand", "implement", "test", "self-review", "submit"]
    );
    assert!(pw.steps[4].description.contains("gastown-tui done"));

    let rel = c.get("release").unwrap();
    assert!(rel.var("version").is_some_and(|v| v.required));
    assert_eq!(
        rel.var("branch").and_then(|v| v.default.as_deref()),
        Some("main")
    );
    // A fork (two steps need freeze) and a join (test needs both).
    let needing_freeze = rel.steps.iter().filter(|s| s.needs == ["freeze"]).count();
    assert_eq!(needing_freeze, 2);
    assert_eq!(rel.step("test").unwrap().needs, ["changelog", "bump"]);

    let cr = c.get("code-review").unwrap();
    assert!(cr.var("target").is_some_and(|v| v.required));
    assert_eq!(cr.kind, FormulaType::Convoy);
    let ex = c.get("example").unwrap();
    assert_eq!(ex.vars.len(), 1);
    assert!(!ex.vars[0].required && ex.vars[0].default.is_some());
    assert!((2..=3).contains(&ex.steps.len()));
}

#[test]
fn bad_toml_syntax_names_file_line_and_column() {
    let src = "formula = \"x\"\nversion = 1\ndescription = \"unterminated\n";
    let m = err("x", src);
    assert!(m.starts_with("/t/formulas/x.formula.toml:3:"), "{m}");
}

#[test]
fn an_unknown_key_is_named_with_its_step_index_and_line() {
    let src = GOOD.replace("needs = [\"test\", \"build\"]", "nedds = [\"test\"]");
    let m = err("ship", &src);
    assert!(
        m.starts_with("/t/formulas/ship.formula.toml:26: steps[2].nedds: unknown key"),
        "{m}"
    );
    assert!(m.contains("'needs'"), "lists the keys it expects: {m}");
    let m = err("ship", &format!("colour = \"red\"\n{GOOD}"));
    assert!(
        m.starts_with("/t/formulas/ship.formula.toml:1: colour: unknown key"),
        "{m}"
    );
    let src = GOOD.replace("default = \"today\"", "default = \"today\"\nhelp = \"x\"");
    let m = err("ship", &src);
    assert!(
        m.contains("ship.formula.toml:11: vars.when.help: unknown key"),
        "{m}"
    );
}

#[test]
fn needs_naming_no_step_points_at_the_entry() {
    let src = GOOD.replace(
        "needs = [\"test\", \"build\"]",
        "needs = [\"test\", \"biuld\"]",
    );
    let m = err("ship", &src);
    assert_eq!(
        m,
        "/t/formulas/ship.formula.toml:26: steps[2].needs: step 'ship' needs 'biuld', which \
         is no step of this formula (steps: build, test, ship)"
    );
    // The entry's own line when the array spans several.
    let src = GOOD.replace(
        "needs = [\"test\", \"build\"]",
        "needs = [\n  \"test\",\n  \"nope\",\n]",
    );
    let m = err("ship", &src);
    assert!(
        m.starts_with("/t/formulas/ship.formula.toml:28: steps[2].needs:"),
        "{m}"
    );
}

#[test]
fn a_cycle_names_every_step_on_it() {
    let src = GOOD.replace(
        "id = \"build\"\ntitle = \"Build {{what}}\"",
        "id = \"build\"\ntitle = \"Build {{what}}\"\nneeds = [\"ship\"]",
    );
    let m = err("ship", &src);
    assert_eq!(
        m,
        "/t/formulas/ship.formula.toml:15: steps[0].needs: the steps' needs form a cycle: \
         build -> ship -> test -> build (each needs the next, so none could ever start)"
    );
    let src = GOOD.replace("needs = [\"build\"]", "needs = [\"test\"]");
    let m = err("ship", &src);
    assert!(
        m.contains(":20: steps[1].needs: step 'test' needs itself"),
        "{m}"
    );
}

#[test]
fn duplicate_step_ids_point_at_the_second() {
    let src = GOOD.replace("id = \"ship\"", "id = \"build\"");
    let m = err("ship", &src);
    assert!(
        m.starts_with(
            "/t/formulas/ship.formula.toml:24: steps[2].id: duplicate step id 'build' \
             (first used by steps[0], line 13)"
        ),
        "{m}"
    );
}

#[test]
fn missing_required_keys_are_named_at_their_table() {
    // A step without a title: the step's [[steps]] header.
    let src = GOOD.replace("title = \"Ship it\"\n", "");
    let m = err("ship", &src);
    assert_eq!(
        m,
        "/t/formulas/ship.formula.toml:23: steps[2].title: required key is missing"
    );
    // A top-level key: line 1.
    let src = GOOD.replace("version = 2\n", "");
    let m = err("ship", &src);
    assert_eq!(
        m,
        "/t/formulas/ship.formula.toml:1: version: required key is missing"
    );
    let m = err(
        "ship",
        "formula = \"ship\"\ndescription = \"d\"\nversion = 1\n",
    );
    assert!(m.contains(":1: steps: required key is missing"), "{m}");
    let m = err(
        "ship",
        "formula = \"ship\"\ndescription = \"d\"\nversion = 1\nsteps = []\n",
    );
    assert!(
        m.contains(":4: steps: a formula needs at least one step"),
        "{m}"
    );
}

#[test]
fn a_type_other_than_workflow_or_convoy_is_refused() {
    let src = GOOD.replace("version = 2\n", "version = 2\ntype = \"pipeline\"\n");
    let m = err("ship", &src);
    assert!(
        m.starts_with("/t/formulas/ship.formula.toml:4: type: unknown variant 'pipeline'"),
        "{m}"
    );
    assert!(m.contains("'workflow' or 'convoy'"), "{m}");
    let src = GOOD.replace("version = 2\n", "version = 2\ntype = \"convoy\"\n");
    assert_eq!(parse("ship", &src).unwrap().kind, FormulaType::Convoy);
}

#[test]
fn the_name_must_match_the_file_and_the_version_be_positive() {
    let m = err("shipit", GOOD);
    assert_eq!(
        m,
        "/t/formulas/shipit.formula.toml:1: formula: 'ship' does not match the file name \
         'shipit.formula.toml' (the formula must be named like its file)"
    );
    let m = err("ship", &GOOD.replace("version = 2", "version = 0"));
    assert!(m.contains(":3: version: 0 is not a version"), "{m}");
    let m = err("ship", &GOOD.replace("version = 2", "version = \"2\""));
    assert!(m.contains(":3: version: invalid type"), "{m}");
}

#[test]
fn unknown_placeholders_name_the_step_and_key() {
    let src = GOOD.replace(
        "description = \"Run every test.\"",
        "description = \"\"\"\nRun every test\nwith {{flags}}.\"\"\"",
    );
    let m = err("ship", &src);
    assert_eq!(
        m,
        "/t/formulas/ship.formula.toml:21: steps[1].description: step 'test': unknown \
         variable {{flags}} (declared: what, when)"
    );
    let m = err("ship", &GOOD.replace("Ship {{what}}", "Ship {{ wat }}"));
    assert!(
        m.contains(":2: description: the description: unknown variable {{ wat }}"),
        "{m}"
    );
    let m = err(
        "ship",
        &GOOD.replace("acceptance = \"green\"", "acceptance = \"{{a b}}\""),
    );
    assert!(
        m.contains(":21: steps[1].acceptance: step 'test': {{a b}} is not a placeholder"),
        "{m}"
    );
}

#[test]
fn a_required_var_with_a_default_and_bad_ids_are_refused() {
    let src = GOOD.replace("required = true", "required = true\ndefault = \"x\"");
    let m = err("ship", &src);
    assert!(
        m.contains(":5: vars.what: a required variable cannot have a default"),
        "{m}"
    );
    let m = err("ship", &GOOD.replace("id = \"build\"", "id = \"Build It\""));
    assert!(
        m.contains(":13: steps[0].id: 'Build It' is not a step id"),
        "{m}"
    );
}

#[test]
fn the_first_problem_in_the_file_is_reported() {
    let src = GOOD
        .replace("id = \"ship\"", "id = \"build\"")
        .replace("version = 2", "version = -1");
    let m = err("ship", &src);
    assert!(m.contains(":3: version:"), "{m}");
}

fn ship() -> Formula {
    parse("ship", GOOD).unwrap()
}

fn vars(kv: &[(&str, &str)]) -> Vec<(String, String)> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ready_ids(s: &Store) -> Vec<String> {
    s.ready(None).unwrap().into_iter().map(|b| b.id).collect()
}

#[test]
fn pour_creates_the_epic_children_labels_metadata_and_deps() {
    let s = store();
    let m = pour(
        &s,
        &ship(),
        &vars(&[("what", "v1.2")]),
        Some("demo"),
        "mayor",
    )
    .unwrap();
    let e = &m.epic;
    assert_eq!(e.issue_type, "epic");
    assert_eq!(e.title, "ship: Ship v1.2");
    assert_eq!(e.description, "Ship v1.2");
    assert_eq!(e.created_by, "mayor");
    assert_eq!(e.labels, ["formula:ship"]);
    assert_eq!(
        e.metadata,
        Some(serde_json::json!({
            "formula": "ship",
            "version": 2,
            "vars": {"what": "v1.2", "when": "today"},
            "rig": "demo",
        }))
    );
    let ids: Vec<&str> = m.steps.iter().map(|p| p.bead.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            format!("{}.1", e.id),
            format!("{}.2", e.id),
            format!("{}.3", e.id)
        ]
    );
    let titles: Vec<&str> = m.steps.iter().map(|p| p.bead.title.as_str()).collect();
    assert_eq!(titles, ["Build v1.2", "Test v1.2 today", "Ship it"]);
    let test = &m.steps[1].bead;
    assert_eq!(test.labels, ["step:test"]);
    assert_eq!(test.description, "Run every test.");
    assert_eq!(test.acceptance_criteria, "green");
    assert_eq!(test.issue_type, "task");
    assert_eq!(test.meta_str("step"), Some("test"));
    let mut deps: Vec<(String, String)> = test
        .dependencies
        .iter()
        .map(|d| (d.depends_on_id.clone(), d.dep_type.clone()))
        .collect();
    deps.sort();
    assert_eq!(
        deps,
        [
            (e.id.clone(), "parent-child".to_string()),
            (m.steps[0].bead.id.clone(), "blocks".to_string()),
        ]
    );
    let ship_deps: Vec<&str> = m.steps[2]
        .bead
        .dependencies
        .iter()
        .filter(|d| d.dep_type == "blocks")
        .map(|d| d.depends_on_id.as_str())
        .collect();
    assert_eq!(ship_deps.len(), 2);
    assert!(m.convoy.is_none(), "a workflow formula makes no convoy");
    let poured: Vec<String> = s
        .events_for(&e.id)
        .unwrap()
        .into_iter()
        .filter(|ev| ev.kind == POURED)
        .filter_map(|ev| ev.detail)
        .collect();
    assert_eq!(poured, ["ship v2 (3 steps)"]);
}

#[test]
fn ready_work_follows_the_formula() {
    let s = store();
    let m = pour(&s, &ship(), &vars(&[("what", "x")]), None, "a").unwrap();
    let [build, test, ship] = [0, 1, 2].map(|i| m.steps[i].bead.id.clone());
    // The epic does not hold its children back: the first step is ready at once.
    let r = ready_ids(&s);
    assert!(r.contains(&build), "{r:?}");
    assert!(!r.contains(&test) && !r.contains(&ship), "{r:?}");
    s.close(&build, "built", "a").unwrap();
    let r = ready_ids(&s);
    assert!(r.contains(&test), "{r:?}");
    assert!(!r.contains(&ship), "ship still needs test: {r:?}");
    s.close(&test, "", "a").unwrap();
    assert!(ready_ids(&s).contains(&ship));
}

#[test]
fn a_fork_and_join_readies_in_parallel_then_joins() {
    let s = store();
    let rel = Catalog::shipped().get("release").unwrap();
    let m = pour(&s, &rel, &vars(&[("version", "2.0.0")]), None, "a").unwrap();
    let id = |step: &str| {
        m.steps
            .iter()
            .find(|p| p.step == step)
            .map(|p| p.bead.id.clone())
            .unwrap()
    };
    assert_eq!(
        m.steps[0].bead.title, "Freeze main for 2.0.0",
        "default branch"
    );
    assert_eq!(m.steps[4].bead.title, "Tag v2.0.0");
    s.close(&id("freeze"), "", "a").unwrap();
    let r = ready_ids(&s);
    assert!(
        r.contains(&id("changelog")) && r.contains(&id("bump")),
        "{r:?}"
    );
    assert!(!r.contains(&id("test")));
    s.close(&id("changelog"), "", "a").unwrap();
    assert!(
        !ready_ids(&s).contains(&id("test")),
        "the join waits for bump too"
    );
    s.close(&id("bump"), "", "a").unwrap();
    assert!(ready_ids(&s).contains(&id("test")));
}

#[test]
fn variables_required_unknown_default_and_repeated() {
    let f = ship();
    let s = store();
    let e = pour(&s, &f, &[], None, "a").unwrap_err();
    assert!(matches!(e, Error::BadInput(_)));
    assert_eq!(
        e.to_string(),
        "formula 'ship' needs the required variable what: give --var what=VALUE (What to ship)"
    );
    let e = pour(&s, &f, &vars(&[("what", "  ")]), None, "a").unwrap_err();
    assert!(e.to_string().contains("required variable what"), "{e}");
    let e = pour(
        &s,
        &f,
        &vars(&[("what", "x"), ("colour", "red")]),
        None,
        "a",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "--var colour: formula 'ship' has no variable 'colour' (its variables: what, when)"
    );
    let e = pour(&s, &f, &vars(&[("what", "x"), ("what", "y")]), None, "a").unwrap_err();
    assert!(e.to_string().contains("more than once"), "{e}");
    assert_eq!(s.count().unwrap(), 0, "refused pours write nothing");

    let resolved = f.resolve_vars(&vars(&[("what", "x")])).unwrap();
    assert_eq!(resolved.get("when").map(String::as_str), Some("today"));
    let resolved = f
        .resolve_vars(&vars(&[("what", "x"), ("when", "now")]))
        .unwrap();
    assert_eq!(resolved.get("when").map(String::as_str), Some("now"));
}

#[test]
fn parse_var_splits_on_the_first_equals_sign() {
    assert_eq!(
        parse_var("k=a=b").unwrap(),
        ("k".to_string(), "a=b".to_string())
    );
    assert_eq!(parse_var("k=").unwrap(), ("k".to_string(), String::new()));
    assert!(parse_var("version")
        .unwrap_err()
        .contains("'version' is not K=V"));
    assert!(parse_var("=1").is_err());
}

#[test]
fn a_failing_pour_leaves_nothing_behind() {
    let s = store();
    let long = "x".repeat(600);
    let e = pour(&s, &ship(), &vars(&[("what", &long)]), None, "a").unwrap_err();
    assert!(e.to_string().contains("step 'build'"), "{e}");
    assert!(e.to_string().contains("at most 500"), "{e}");
    assert_eq!(s.count().unwrap(), 0);
    // A failure inside the write, after the epic and its steps were created, rolls the
    // whole molecule back. (A parsed formula cannot get there; one built in code can.)
    let mut f = ship();
    f.steps[2].needs.push("gone".to_string());
    let e = pour(&s, &f, &vars(&[("what", "x")]), None, "a").unwrap_err();
    assert!(e.to_string().contains("'gone'"), "{e}");
    assert_eq!(s.count().unwrap(), 0);
}

#[test]
fn a_convoy_formula_tracks_its_steps_and_auto_dispatches_to_the_rig() {
    let src = GOOD.replace("version = 2\n", "version = 2\ntype = \"convoy\"\n");
    let f = parse("ship", &src).unwrap();
    let s = store();
    let m = pour(&s, &f, &vars(&[("what", "x")]), Some("demo"), "a").unwrap();
    let c = m.convoy.clone().unwrap();
    assert_eq!(c.auto_dispatch.as_deref(), Some("demo"));
    assert_eq!(c.total, 3);
    assert_eq!(c.closed, 0);
    let mut steps: Vec<String> = m.steps.iter().map(|p| p.bead.id.clone()).collect();
    steps.sort();
    assert_eq!(c.tracked, steps);
    assert_eq!(c.name, m.epic.title);
    assert_eq!(s.convoys().unwrap().len(), 1);
    for id in &steps {
        s.close(id, "", "a").unwrap();
    }
    assert_eq!(s.convoy(&c.id).unwrap().status, status::CLOSED);

    let m = pour(&s, &f, &vars(&[("what", "y")]), None, "a").unwrap();
    assert_eq!(
        m.convoy.unwrap().auto_dispatch,
        None,
        "no rig, no auto-dispatch"
    );
}

#[test]
fn substitution_reaches_descriptions_and_is_single_pass() {
    let s = store();
    let m = pour(&s, &ship(), &vars(&[("what", "{{when}}")]), None, "a").unwrap();
    assert_eq!(
        m.steps[0].bead.title, "Build {{when}}",
        "values are not re-expanded"
    );
    let ex = Catalog::shipped().get("example").unwrap();
    let m = pour(&s, &ex, &vars(&[("topic", "the CLI")]), None, "a").unwrap();
    assert!(m.epic.description.contains("about the CLI"));
    assert!(m.steps[0].bead.acceptance_criteria.contains("the CLI"));
    assert!(!m.epic.description.contains("{{"));
}

#[test]
fn a_town_formula_overrides_a_shipped_one_and_broken_ones_stay_separate() {
    let dir = tempfile::tempdir().unwrap();
    let own = GOOD.replace("\"ship\"", "\"example\"");
    std::fs::write(dir.path().join("example.formula.toml"), &own).unwrap();
    std::fs::write(dir.path().join("ship.formula.toml"), GOOD).unwrap();
    std::fs::write(
        dir.path().join("broken.formula.toml"),
        "formula = \"broken\"\nversion = 1\ndescription = \"d\"\n\n[[steps]]\nid = \"a\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.toml"), "not a formula").unwrap();
    let c = Catalog::load(dir.path()).unwrap();
    assert_eq!(
        c.names(),
        [
            "broken",
            "code-review",
            "example",
            "polecat-work",
            "release",
            "ship"
        ]
    );
    let ex = c.get("example").unwrap();
    assert_eq!(ex.source, Source::Town);
    assert_eq!(ex.version, 2, "the town's version, not the shipped one");
    assert!(c.entry("example").unwrap().overrides_shipped);
    assert!(!c.entry("ship").unwrap().overrides_shipped);
    let e = c.get("broken").unwrap_err().to_string();
    assert!(
        e.ends_with("broken.formula.toml:5: steps[0].title: required key is missing"),
        "{e}"
    );
    assert!(
        c.get("release").is_ok(),
        "one broken file does not spoil the rest"
    );
    let e = c.get("nope").unwrap_err();
    assert!(matches!(e, Error::BadInput(_)));
    assert!(e.to_string().contains("no formula 'nope'"), "{e}");
    // No formulas directory: just the shipped ones.
    let c = Catalog::load(&dir.path().join("missing")).unwrap();
    assert_eq!(c.names().len(), SHIPPED.len());
}

#[test]
fn a_non_utf8_town_formula_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.formula.toml"),
        b"formula = \"bad\"\ndescription = \"\xff\"\n",
    )
    .unwrap();
    let e = Catalog::load(dir.path()).unwrap().get("bad").unwrap_err();
    assert!(
        e.to_string()
            .ends_with("bad.formula.toml:2: not valid UTF-8 text"),
        "{e}"
    );
}
