//! The kit the integration tests, the benchmarks and the library's unit tests share: a source
//! repository for a rig, and `gastown-tui` run with a clean environment.
//!
//! One file, included by each: `tests/common/mod.rs` as its `kit` module, `benches/common` and
//! `src/lib.rs` (for unit tests) by `#[path]`. So it uses only std, git2 and serde_json, and is
//! told where the binary is.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A repository at `dir` (created if missing) with one commit on `main` holding an executable
/// `test.sh` that passes unless a file `BROKEN` exists: the rig every sim town works on.
pub fn source_repo(dir: &Path) -> git2::Repository {
    std::fs::create_dir_all(dir).expect("create the source repository's directory");
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
    {
        let mut index = repo.index().expect("index");
        index.add_path(Path::new("test.sh")).expect("add test.sh");
        index.write().expect("write the index");
        let tree = repo
            .find_tree(index.write_tree().expect("write the tree"))
            .expect("the tree");
        let sig = git2::Signature::now("t", "t@example.com").expect("a signature");
        repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
            .expect("commit");
    }
    repo
}

/// The binary at `bin` with a clean environment: no town, agent, actor or log filter leaking
/// in from the caller, and `home` as HOME.
pub fn command(bin: impl AsRef<std::ffi::OsStr>, home: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env_remove("GT_TOWN")
        .env_remove("GT_AGENT")
        .env_remove("BD_ACTOR")
        .env_remove("GT_LOG")
        .env("HOME", home);
    c
}

/// Running a command the caller needs to have worked.
pub trait MustRun {
    /// Runs it (stdin closed) and returns what it did, whatever that was.
    fn out(&mut self) -> Output;
    /// Runs it; it must succeed.
    fn ok(&mut self, what: &str) -> Output;
}

impl MustRun for Command {
    fn out(&mut self) -> Output {
        self.stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {:?}: {e}", self.get_program()))
    }

    fn ok(&mut self, what: &str) -> Output {
        let out = self.out();
        assert!(
            out.status.success(),
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// A string field of a command's `--json` output.
pub fn json_field(stdout: &[u8], key: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(stdout).expect("JSON output");
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no '{key}' in {v}"))
        .to_string()
}
