//! Sixteen OS processes claim from one ready queue through the real CLI, the way agents do:
//! read `bead ready`, try `bead claim` on what they saw, repeat until nothing is ready. Every
//! bead must end up claimed exactly once.

mod common;

use common::{TestTown, BIN};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

const WORKERS: usize = 16;
const BEADS: usize = 120;

/// One worker: loops over the ready queue and prints each id it won.
const WORKER: &str = r#"
while :; do
  ids=$("$GT" bead ready --limit 6 | awk 'NR > 1 { print $1 }')
  [ -z "$ids" ] && exit 0
  for id in $ids; do
    if "$GT" bead claim "$id" --as "$WORKER" >/dev/null 2>err.$WORKER; then
      echo "$id"
    elif ! grep -q "already claimed by\|only open or hooked" err.$WORKER; then
      cat err.$WORKER >&2
      exit 3
    fi
  done
done
"#;

#[test]
fn sixteen_processes_claim_each_bead_exactly_once() {
    let t = TestTown::new();
    let file = t.dir.path().join("work.jsonl");
    let lines: Vec<String> = (0..BEADS)
        .map(|i| {
            format!(
                r#"{{"id":"gt-w{i:03}","title":"work {i}","priority":{},"created_at":"2026-01-01T00:00:{:02}Z"}}"#,
                i % 3,
                i % 60
            )
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    t.gt()
        .args(["bead", "import", file.to_str().unwrap()])
        .assert()
        .success();

    let children: Vec<_> = (0..WORKERS)
        .map(|w| {
            Command::new("sh")
                .arg("-c")
                .arg(WORKER)
                .current_dir(t.dir.path())
                .env("GT", BIN)
                .env("GT_TOWN", t.root())
                .env("WORKER", format!("w{w}"))
                .env_remove("GT_AGENT")
                .env_remove("BD_ACTOR")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();

    let mut winner: BTreeMap<String, String> = BTreeMap::new();
    for (w, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "worker {w} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for id in String::from_utf8(out.stdout).unwrap().lines() {
            if let Some(previous) = winner.insert(id.to_string(), format!("w{w}")) {
                panic!("{id} was claimed by both {previous} and w{w}");
            }
        }
    }

    let all: BTreeSet<String> = (0..BEADS).map(|i| format!("gt-w{i:03}")).collect();
    let won: BTreeSet<String> = winner.keys().cloned().collect();
    assert_eq!(won, all, "every bead claimed");

    // The store agrees with what the workers saw, and holds exactly one claim event per bead.
    let beads = t.json(&["bead", "list", "--limit", "0"]);
    for b in beads.as_array().unwrap() {
        let id = b["id"].as_str().unwrap();
        assert_eq!(b["status"], "in_progress", "{id}");
        assert_eq!(b["assignee"].as_str(), Some(winner[id].as_str()), "{id}");
    }
    let feed = t.json(&["feed", "--limit", "100000"]);
    let claims: Vec<&str> = feed
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "claimed")
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(claims.len(), BEADS, "one claim event per bead");
    assert_eq!(claims.iter().collect::<BTreeSet<_>>().len(), BEADS);
    assert!(t.json(&["bead", "ready"]).as_array().unwrap().is_empty());
}
