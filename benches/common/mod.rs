//! Helpers the benchmarks share (each bench is its own crate; this module is included by
//! each with `mod common;`).

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

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

pub fn source_repo(dir: &Path) {
    std::fs::create_dir_all(dir).expect("source dir");
    let mut opts = git2::RepositoryInitOptions::new();
    opts.initial_head("main");
    let repo = git2::Repository::init_opts(dir, &opts).expect("git init");
    let script = dir.join("test.sh");
    std::fs::write(&script, "#!/bin/sh\ntest ! -e BROKEN\n").expect("write test.sh");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("chmod test.sh");
    }
    let mut index = repo.index().expect("index");
    index.add_path(Path::new("test.sh")).expect("add test.sh");
    index.write().expect("write index");
    let tree = repo
        .find_tree(index.write_tree().expect("write tree"))
        .expect("tree");
    let sig = git2::Signature::now("bench", "bench@example.com").expect("signature");
    repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
        .expect("commit");
}

pub fn json_field(stdout: &[u8], key: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(stdout).expect("JSON output");
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no '{key}' in {v}"))
        .to_string()
}

/// Nearest-rank percentile of sorted values.
pub fn pct(sorted: &[f64], p: usize) -> f64 {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
