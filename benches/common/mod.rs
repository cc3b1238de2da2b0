//! Helpers the benchmarks share (each bench is its own crate; this module is included by
//! each with `mod common;`).

#![allow(dead_code)]

#[path = "../../tests/common/kit.rs"]
pub mod kit;
#[path = "../../tests/common/pty.rs"]
pub mod pty;

pub use kit::{json_field, source_repo, MustRun as Run};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The release binary the benches drive.
pub const BIN: &str = env!("CARGO_BIN_EXE_gastown-tui");

pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "cpus: {cpus}, loadavg: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Nearest-rank percentile of sorted values.
pub fn pct(sorted: &[f64], p: usize) -> f64 {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------------
// A town run by the release binary.

/// The binary with a clean environment, optionally pointed at the town.
pub struct Gt {
    pub home: PathBuf,
    pub town: PathBuf,
}

impl Gt {
    /// A town at `dir/town` with rig `demo` (from `dir/src`) and `sim` as default runtime.
    pub fn setup(dir: &Path) -> Gt {
        std::fs::create_dir_all(dir).expect("bench dir");
        let gt = Gt {
            home: dir.to_path_buf(),
            town: dir.join("town"),
        };
        gt.cmd(false).arg("init").arg(&gt.town).ok("init");
        let src = dir.join("src");
        source_repo(&src);
        gt.cmd(true)
            .args(["rig", "add", "demo"])
            .arg(&src)
            .args(["--test-command", "./test.sh"])
            .ok("rig add");
        gt.cmd(true)
            .args(["config", "default-runtime", "sim"])
            .ok("config default-runtime");
        gt
    }

    pub fn cmd(&self, with_town: bool) -> Command {
        let mut c = kit::command(BIN, &self.home);
        if with_town {
            c.arg("--town").arg(&self.town);
        }
        c
    }

    /// The pid of the town's engine, if one runs (`gastown-tui status --json`).
    pub fn engine(&self) -> Option<u32> {
        let out = self.cmd(true).args(["status", "--json"]).ok("status");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
        v["engine"]["pid"].as_u64().map(|p| p as u32)
    }

    /// The pid of the engine that a cockpit just started.
    pub fn engine_pid(&self) -> u32 {
        self.engine()
            .expect("an engine runs once a cockpit is open")
    }

    /// `n` beads with `description`, each slung to `demo` (a new polecat each); their agents.
    pub fn sling_many(&self, n: usize, description: &str) -> Vec<String> {
        self.sling_with(n, description, "sim")
    }

    /// The same with the agents on `runtime`.
    pub fn sling_with(&self, n: usize, description: &str, runtime: &str) -> Vec<String> {
        (1..=n)
            .map(|i| {
                let out = self
                    .cmd(true)
                    .args(["bead", "create", &format!("Bench agent {i}")])
                    .args(["-d", description, "--json"])
                    .ok("bead create");
                let bead = json_field(&out.stdout, "id");
                let out = self
                    .cmd(true)
                    .args(["sling", &bead, "demo", "--runtime", runtime, "--json"])
                    .ok("sling");
                json_field(&out.stdout, "agent")
            })
            .collect()
    }

    /// Sets runtime `name` to run `sh -c SCRIPT`.
    pub fn shell_runtime(&self, name: &str, script: &str) {
        self.cmd(true)
            .args(["config", "runtime", "set", name, "--", "sh", "-c", script])
            .ok("config runtime set");
    }

    /// An agent's worktree (its runtime's working directory).
    pub fn worktree(&self, agent: &str) -> PathBuf {
        self.town.join("demo/polecats").join(agent)
    }
}
