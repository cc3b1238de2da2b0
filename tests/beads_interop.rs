//! Beads interop on data shaped like a real Gas Town `bd` export
//! (`tests/fixtures/beads/gastown-export.jsonl`): wisps (`"ephemeral": true`: patrol and
//! plugin-run chores, a molecule wisp and its step, an event), pinned beads (the field on an
//! open task, the old `pinned` status, a pinned role), tombstones, agent, role, rig, molecule,
//! convoy, merge-request, gate, message and custom types, hooked and in-progress beads, an epic
//! held back by its blocker, dependencies on open and closed wisps, unknown fields everywhere.
//!
//! Through the binary, as a user does it: `bead import`, `bead ready`, `bead export`, and the
//! town's own `.beads/issues.jsonl`.

mod common;

use chrono::DateTime;
use common::TestTown;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/beads/gastown-export.jsonl")
}

fn records(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn ns(t: &str) -> i64 {
    DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .timestamp_nanos_opt()
        .unwrap()
}

fn flag(r: &Value, k: &str) -> bool {
    r.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn field<'a>(r: &'a Value, k: &str, default: &'a str) -> &'a str {
    r.get(k).and_then(Value::as_str).unwrap_or(default)
}

/// `bd ready`'s rule (the README's "Ready"), computed from the records themselves: open, not a wisp, not
/// pinned, a work type, not deferred past now, and not blocked: no `blocks` dependency on a bead
/// that is open, in_progress, blocked, deferred or hooked, and no `parent-child` dependency on
/// a blocked parent. Most urgent first, then oldest, then by id.
fn bd_ready(recs: &[Value]) -> Vec<String> {
    let by_id: HashMap<&str, &Value> = recs
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    fn blocked(id: &str, by_id: &HashMap<&str, &Value>) -> bool {
        let Some(r) = by_id.get(id) else {
            return false;
        };
        let deps = r["dependencies"].as_array().cloned().unwrap_or_default();
        deps.iter().any(|d| {
            let on = d["depends_on_id"].as_str().unwrap();
            match field(d, "type", "blocks") {
                "blocks" => by_id.get(on).is_some_and(|b| {
                    matches!(
                        field(b, "status", "open"),
                        "open" | "in_progress" | "blocked" | "deferred" | "hooked"
                    )
                }),
                "parent-child" => blocked(on, by_id),
                _ => false,
            }
        })
    }
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let mut ready: Vec<(i64, i64, String)> = recs
        .iter()
        .filter(|r| {
            field(r, "status", "open") == "open"
                && !flag(r, "ephemeral")
                && !flag(r, "pinned")
                && ["task", "bug", "feature", "epic", "chore"].contains(&field(
                    r,
                    "issue_type",
                    "task",
                ))
                && r.get("defer_until")
                    .and_then(Value::as_str)
                    .is_none_or(|d| ns(d) <= now)
                && !blocked(r["id"].as_str().unwrap(), &by_id)
        })
        .map(|r| {
            (
                r["priority"].as_i64().unwrap_or(2),
                ns(r["created_at"].as_str().unwrap()),
                r["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    ready.sort();
    ready.into_iter().map(|(_, _, id)| id).collect()
}

fn imported_town() -> (TestTown, Vec<Value>) {
    let t = TestTown::new();
    let text = std::fs::read_to_string(fixture()).unwrap();
    let recs = records(&text);
    let report = t.json(&["bead", "import", fixture().to_str().unwrap()]);
    assert_eq!(report["created"], recs.len(), "{report}");
    (t, recs)
}

#[test]
fn ready_is_bd_ready_wisps_and_pinned_beads_left_out() {
    let (t, recs) = imported_town();
    let want = bd_ready(&recs);
    let got = TestTown::ids(&t.json(&["bead", "ready", "--limit", "0"]));
    assert_eq!(got, want, "bead ready follows bd's rule on the export");
    // The sample has each case in it: ready work, and look-alikes that must stay out.
    for id in ["gt-z6e9p", "gt-a1c4m", "gt-m3r6a.1", "gt-p6u9d", "gt-q7v0e"] {
        assert!(got.contains(&id.to_string()), "{id} is ready: {got:?}");
    }
    for (id, why) in [
        ("gt-wisp-0wzfx", "an open wisp (plugin run)"),
        ("gt-wisp-6f0qj.1", "a molecule wisp's step"),
        ("gt-3hx0d", "an open task that is pinned"),
        ("gt-9fzq1", "the old pinned status"),
        ("gt-o5t8c", "waits on an open wisp"),
        (
            "gt-n4s7b.1",
            "the child of an epic held back by its blocker",
        ),
        ("gt-k1p4y", "waits on a hooked bead"),
        ("gt-e5g8r", "deferred into the future"),
        ("gt-u1z4i", "a tombstone"),
        ("gt-gastown-polecat-nux", "an agent"),
        ("gt-w3b6k", "a molecule template"),
    ] {
        assert!(!got.contains(&id.to_string()), "{id} ({why}) is not ready");
    }
    // The default (limit 50) and a short limit read the same index range.
    let top2 = TestTown::ids(&t.json(&["bead", "ready", "--limit", "2"]));
    assert_eq!(top2, want[..2].to_vec());
    // A wisp made here is never ready either, nor exported.
    let wisp = t.create("Patrol chore made here", &["--ephemeral"]);
    let got = TestTown::ids(&t.json(&["bead", "ready", "--limit", "0"]));
    assert!(!got.contains(&wisp), "{got:?}");
}

#[test]
fn import_then_export_reproduces_every_record_wisps_included() {
    let (t, recs) = imported_town();
    let wisp_here = t.create("Wisp made here", &["--ephemeral"]);
    let kept_here = t.create("Work made here", &[]);
    let out = t.dir.path().join("out.jsonl");
    t.gt()
        .args(["bead", "export", out.to_str().unwrap()])
        .assert()
        .success();
    let exported = records(&std::fs::read_to_string(&out).unwrap());
    let by_id: BTreeMap<String, &Value> = exported
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(
        exported.len(),
        recs.len() + 1,
        "every input record and the new work bead"
    );
    assert!(by_id.contains_key(&kept_here));
    assert!(
        !by_id.contains_key(&wisp_here),
        "a wisp made here stays out of the export"
    );
    let wisps_in = recs.iter().filter(|r| flag(r, "ephemeral")).count();
    assert!(wisps_in >= 5, "the sample has wisps");
    for r in &recs {
        let id = r["id"].as_str().unwrap();
        let Some(got) = by_id.get(id) else {
            panic!("{id} was not exported");
        };
        for (k, v) in r.as_object().unwrap() {
            assert_eq!(got.get(k), Some(v), "{id}: field {k}");
        }
        assert_eq!(*got, r, "{id}: the record comes back as it went in");
    }
    // Sorted by id, as bd writes it.
    let ids: Vec<&str> = exported.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);

    // The town's own .beads/issues.jsonl (the store's flush) keeps the imported wisps too, so
    // the next commit of the town does not rewrite history without them.
    let own = t.root().join(".beads/issues.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&own).unwrap_or_default();
        if text.contains(&kept_here) {
            let flushed = records(&text);
            assert_eq!(flushed.len(), recs.len() + 1);
            assert!(flushed.iter().any(|r| r["id"] == "gt-wisp-0wzfx"));
            assert!(!text.contains(&wisp_here));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store never flushed {}",
            own.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // And the export imports again into a fresh town as the same records.
    let t2 = TestTown::new();
    t2.json(&["bead", "import", out.to_str().unwrap()]);
    let again = t2.dir.path().join("again.jsonl");
    t2.gt()
        .args(["bead", "export", again.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        std::fs::read_to_string(&out).unwrap()
    );
}

#[test]
fn a_wrong_flag_is_named_with_its_line() {
    let t = TestTown::new();
    let file = t.dir.path().join("issues.jsonl");
    std::fs::write(
        &file,
        "{\"id\":\"gt-a\",\"title\":\"a\"}\n{\"id\":\"gt-b\",\"title\":\"b\",\"ephemeral\":\"yes\"}\n",
    )
    .unwrap();
    let err = t.fails(&["bead", "import", file.to_str().unwrap()], 2);
    assert!(
        err.contains("issues.jsonl:2: ephemeral: expected true or false"),
        "{err}"
    );
    t.fails(&["bead", "show", "gt-a"], 2);
}
