//! `completions SHELL` and `doctor`.

use super::output::line;
use super::Cli;
use crate::agent::runtime;
use crate::beads::Store;
use crate::town::Town;
use crate::{clock, Error, Result};
use clap::CommandFactory;
use std::path::Path;

/// Prints the shell completion script for `shell` (bash, zsh, fish, elvish, powershell).
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = Cli::command();
    // Into memory first: the generator panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "gastown-tui", &mut script);
    line(String::from_utf8_lossy(&script).trim_end())
}

/// One check's outcome.
enum Check {
    Ok(String),
    Warn(String),
    Fail(String),
}

fn report(name: &str, c: &Check) -> Result<()> {
    match c {
        Check::Ok(m) => line(&format!("  ok    {name}: {m}")),
        Check::Warn(m) => line(&format!("  warn  {name}: {m}")),
        Check::Fail(m) => line(&format!("  FAIL  {name}: {m}")),
    }
}

/// A runtime whose program is installed: its version, whether the presets were verified with
/// it, and what stops it at start (Claude's bypass flag as root).
fn real_program(rt: &crate::town::RuntimeConfig, path: &str) -> Check {
    let Some(known) = crate::agent::program::of_command(&rt.command) else {
        return Check::Ok(path.to_string());
    };
    let Some(out) = crate::agent::program::probe_version(Path::new(path)) else {
        return Check::Warn(format!("{path}: `--version` printed nothing"));
    };
    let version = crate::agent::program::version_of(&out).unwrap_or(out.clone());
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let sandbox = rt.env.get("IS_SANDBOX").map(String::as_str) == Some("1")
        || std::env::var("IS_SANDBOX").as_deref() == Ok("1");
    if known.name == "claude" && root && known.bypass_requested(&rt.command) && !sandbox {
        return Check::Fail(format!(
            "{path} {version}: as root Claude Code refuses --dangerously-skip-permissions; \
             set IS_SANDBOX=1 for it (town.toml: [runtimes.claude.env] IS_SANDBOX = \"1\") \
             on a sandboxed machine"
        ));
    }
    if known.is_verified(&out) {
        Check::Ok(format!("{path} {version} (verified)"))
    } else {
        Check::Warn(format!(
            "{path} {version}: not a version the presets were verified with ({}); \
             `npm install -g {}@{}` installs one",
            known.verified.join(", "),
            known.package,
            known.verified.last().copied().unwrap_or("latest")
        ))
    }
}

fn on_path(program: &str, cwd: &Path) -> Option<String> {
    crate::agent::sys::resolve_program(program, cwd, std::env::var_os("PATH").as_deref())
        .ok()
        .map(|p| p.display().to_string())
}

/// `doctor`: checks git, the runtimes on PATH, the store and the rigs; exit 1 when something
/// is broken (warnings do not fail).
pub fn doctor(cli_town: Option<&Path>) -> Result<()> {
    let mut failed = 0;
    let mut check = |name: &str, c: Check| -> Result<()> {
        if matches!(c, Check::Fail(_)) {
            failed += 1;
        }
        report(name, &c)
    };
    line(&format!("gastown-tui {}", env!("CARGO_PKG_VERSION")))?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    check(
        "git",
        match on_path("git", &cwd) {
            Some(p) => Check::Ok(format!(
                "{p} (the program itself uses libgit2; git is for you and your agents)"
            )),
            None => Check::Warn("no git on PATH: agents that run git will fail".into()),
        },
    )?;
    let town = match Town::discover(cli_town) {
        Ok(t) => {
            check(
                "town",
                Check::Ok(format!("'{}' at {}", t.config.name, t.root.display())),
            )?;
            Some(t)
        }
        Err(e) => {
            check("town", Check::Fail(e.to_string()))?;
            None
        }
    };
    if let Some(town) = &town {
        match Store::open(&town.db_path(), &town.config.prefix, clock::system()) {
            Ok(store) => {
                let beads = store.count()?;
                let agents = store.agents()?.len();
                check(
                    "store",
                    Check::Ok(format!(
                        "{} ({beads} beads, {agents} agents, schema v{})",
                        town.db_path().display(),
                        crate::beads::SCHEMA_VERSION
                    )),
                )?;
                match store.engine_alive()? {
                    Some(pid) => check("engine", Check::Ok(format!("running (pid {pid})")))?,
                    None => check(
                        "engine",
                        Check::Warn(
                            "not running (gastown-tui, or gastown-tui up --headless)".into(),
                        ),
                    )?,
                }
            }
            Err(e) => check("store", Check::Fail(e.to_string()))?,
        }
        for name in town.config.runtime_names() {
            let rt = town.config.runtime(&name)?;
            let Some(program) = rt.command.first() else {
                continue;
            };
            let is_default = name == town.config.default_runtime;
            let label = format!(
                "runtime {name}{}",
                if is_default { " (default)" } else { "" }
            );
            let c = if program == runtime::SIM_PROGRAM {
                Check::Ok("built in".into())
            } else {
                match on_path(program, &town.root) {
                    Some(p) => real_program(&rt, &p),
                    None if is_default => Check::Fail(format!(
                        "'{program}' not on PATH, and it is the default runtime"
                    )),
                    None => Check::Warn(format!("'{program}' not on PATH")),
                }
            };
            check(&label, c)?;
        }
        if town.config.rigs.is_empty() {
            check(
                "rigs",
                Check::Warn("none yet (gastown-tui rig add NAME URL)".into()),
            )?;
        }
        for (name, rig) in &town.config.rigs {
            let repo = town.rig_repo(name);
            let c = match git2::Repository::open(&repo) {
                Err(_) => Check::Fail(format!("no clone at {}", repo.display())),
                Ok(r) => match r.find_branch(&rig.branch, git2::BranchType::Local) {
                    Err(_) => Check::Fail(format!(
                        "branch '{}' missing in {}",
                        rig.branch,
                        repo.display()
                    )),
                    Ok(_) if rig.test_command.is_none() && !rig.merge_without_tests => Check::Warn(
                        "no test_command: the Refinery merges nothing for this rig".into(),
                    ),
                    Ok(_) => Check::Ok(format!(
                        "{} on {}, tests: {}",
                        repo.display(),
                        rig.branch,
                        rig.test_command
                            .as_deref()
                            .unwrap_or("(none, merge_without_tests)")
                    )),
                },
            };
            check(&format!("rig {name}"), c)?;
        }
    }
    if failed > 0 {
        return Err(Error::Conflict(format!("{failed} check(s) failed")));
    }
    line("All checks passed.")
}
