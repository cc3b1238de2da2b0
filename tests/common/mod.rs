//! Helpers shared by the integration tests: temp towns and the real binary.

#![allow(dead_code)]

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const BIN: &str = env!("CARGO_BIN_EXE_gastown-tui");

/// A fresh town in a temp dir, with a short JSONL flush debounce.
pub struct TestTown {
    pub dir: tempfile::TempDir,
}

impl TestTown {
    pub fn new() -> TestTown {
        let dir = tempfile::tempdir().unwrap();
        let t = TestTown { dir };
        t.cmd().arg("init").arg(t.root()).assert().success();
        let cfg = t.root().join("town.toml");
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text.push_str("\n[store]\nflush_debounce = \"100ms\"\n");
        std::fs::write(&cfg, text).unwrap();
        t
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("town")
    }

    /// The binary with a clean environment: no town or actor leaking in from the caller.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env_remove("GT_TOWN")
            .env_remove("GT_AGENT")
            .env_remove("BD_ACTOR")
            .env("HOME", self.dir.path());
        c
    }

    /// The binary pointed at this town.
    pub fn gt(&self) -> Command {
        let mut c = self.cmd();
        c.arg("--town").arg(self.root());
        c
    }

    /// Runs a command that must succeed and returns its stdout parsed as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.gt().args(args).arg("--json").assert().success();
        let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}\n{text}"))
    }

    /// Creates a bead and returns its id.
    pub fn create(&self, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["bead", "create", title];
        args.extend_from_slice(extra);
        self.json(&args)["id"].as_str().unwrap().to_string()
    }

    /// Runs a command that must fail with `code`; returns its stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.gt().args(args).assert().code(code);
        String::from_utf8(out.get_output().stderr.clone()).unwrap()
    }

    pub fn ids(v: &Value) -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The state of every file under `dir` (path and contents), to show a failed command changed
/// nothing on disk.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}
