//! `gastown-tui init [DIR]`: create a town (idempotently).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::config::{sanitize_name, validate_prefix, validate_town_name, TownConfig};
use super::{absolute, Town, CONFIG_FILE};
use crate::{Error, Result};

/// What `init` may be told; `None` takes the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitOptions {
    /// Town name (default: the directory's sanitized basename).
    pub name: Option<String>,
    /// Bead id prefix (default "gt").
    pub prefix: Option<String>,
}

/// What `init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOutcome {
    /// Absolute path of the town.
    pub root: PathBuf,
    /// `false` when a town.toml was already there (nothing but missing pieces was created).
    pub created: bool,
}

/// The town's `.gitignore`: the SQLite files, logs and rig checkouts stay out of git; the
/// JSONL export (`.beads/issues.jsonl`) and town.toml are tracked.
pub const GITIGNORE: &str = "\
# Written by `gastown-tui init`.
# The SQLite store is local state; .beads/issues.jsonl (its export) is tracked.
/.beads/beads.db*
# Session recordings and the program's log.
/logs/
# Rig checkouts and worktrees: each is its own git repository.
/*/repo/
/*/polecats/
/*/crew/
/*/refinery/
";

/// Directories every town has, created with mode 0700.
const TOWN_DIRS: &[&str] = &[".beads", "logs", "formulas"];

/// The commented `town.toml` that `init` writes. Only `name` and `prefix` are set; every
/// other key is shown commented out at its default.
pub fn template(name: &str, prefix: &str) -> String {
    format!(
        r#"# town.toml: the configuration of this Gas Town (gastown-tui).
# Keys that are commented out show their default. Durations are strings such as
# "500ms", "30s", "5m" or "1h 30m".

name = {name}
# Bead ids look like <prefix>-a1b2c: 1-16 lowercase letters, digits or '-'.
prefix = {prefix}

# The agent CLI new agents run: claude, codex, gemini, cursor, auggie, amp,
# opencode, shell, sim, or a runtime you define under [runtimes.NAME] below.
# default_runtime = "claude"
# theme = "default"
# The most polecats (worker agents) running at once.
# max_polecats = 8

# Rigs are the git repositories the town works on. Add one with
#   gastown-tui rig add NAME GIT_URL_OR_PATH [--branch main] [--test-command CMD]
# or write it here:
# [rigs.myproject]
# url = "https://github.com/you/myproject.git"
# branch = "main"
# test_command = "./test.sh"      # the Refinery merges only after this passes
# setup_command = "npm ci"        # runs in each new worktree
# test_timeout = "10m"
# merge_without_tests = false
# merge_style = "squash"          # squash: one tested commit per bead | merge: one merge
#                                 # commit per bead | rebase: the branch's own commits
# push_remote = "origin"

# Define a runtime, or change a built-in one:
# [runtimes.claude]
# command = ["claude", "--dangerously-skip-permissions"]
# prompt = "argument"             # argument | flag:<name> | type-after-ready
# ready = '❯ '                    # regexes matched against the agent's screen
# busy = 'esc to interrupt'
# waiting = 'Do you want to'
# env = {{ EXAMPLE_VAR = "1" }}         # extra environment for the agent

# [patrol]
# gupp_idle_after = "30s"         # nudge an agent idle with work on its hook
# witness_every = "5s"
# stall_after = "5m"              # working but silent this long: stalled
# deacon_every = "10s"
# reap_after = "15m"              # idle polecats are reaped after this
# max_restarts = 3                # restarts of a dead agent before escalating

# [store]
# flush_debounce = "2s"           # delay before .beads/issues.jsonl is rewritten

# [terminal]
# scrollback_lines = 1000         # history each agent's terminal keeps in memory; older
#                                 # history is read back from its recording

# [budget]                        # no limits unless set (spending is read from the agents' records), e.g.:
#   daily_usd = 50.0              # per UTC day: over it, slings are refused and GUPP stops nudging
#   per_bead_usd = 5.0            # over it, the bead's agent is frozen and you are told

# Prices in USD per million tokens, over the shipped defaults (gastown-tui costs uses them), e.g.:
#   [prices."claude-opus-4-8"]
#   input = 15.0
#   output = 75.0
#   cache_read = 1.5
#   cache_write = 18.75

# [notify]
#   command = ["notify-send", "gastown"]  # none by default; run with GT_NOTIFY_KIND, _AGENT, _RIG, _BEAD, _TEXT
# events = ["waiting", "stalled", "dead", "rejected", "escalated", "budget"]
# bell = true                     # attached cockpits ring and send OSC 9 / OSC 777
# timeout = "10s"
"#,
        name = toml_string(name),
        prefix = toml_string(prefix),
    )
}

/// A TOML basic string holding `s` (control characters escaped).
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Creates a town at `dir` (idempotent).
///
/// A directory without town.toml must be empty or absent, else `BadInput` naming it (and
/// nothing is changed). Creates `dir`, `town.toml` (mode 0600) from [`template`],
/// `.beads/`, `logs/` and `formulas/` (mode 0700), [`GITIGNORE`], and a git repository
/// (initial branch `main`) unless `dir/.git` exists. With a town.toml already there: loads
/// and validates it (its errors are returned), creates whichever of the directories,
/// `.gitignore` and git repository are missing, and returns `created: false`; town.toml is
/// never rewritten. The SQLite store is not created here.
pub fn init(dir: &Path, opts: &InitOptions) -> Result<InitOutcome> {
    let root = absolute(dir)?;
    let config_path = root.join(CONFIG_FILE);

    if fs::symlink_metadata(&config_path).is_ok() {
        Town::load(&root)?;
        ensure_layout(&root)?;
        return Ok(InitOutcome {
            root,
            created: false,
        });
    }

    // Validate everything the user gave before touching the disk.
    if let Some(name) = &opts.name {
        validate_town_name(name).map_err(|m| Error::bad(format!("town name {name:?}: {m}")))?;
    }
    let prefix = opts.prefix.as_deref().unwrap_or("gt");
    validate_prefix(prefix).map_err(Error::BadInput)?;

    match fs::metadata(&root) {
        Ok(meta) if !meta.is_dir() => {
            return Err(Error::bad(format!(
                "cannot create a town at {}: it exists and is not a directory",
                root.display()
            )));
        }
        Ok(_) => {
            let mut entries =
                fs::read_dir(&root).map_err(|e| Error::io("read directory", &root, e))?;
            if entries.next().is_some() {
                return Err(Error::bad(format!(
                    "refusing to create a town in {}: the directory is not empty and has no \
                     {CONFIG_FILE} (use an empty or new directory)",
                    root.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(&root).map_err(|e| Error::io("create directory", &root, e))?;
        }
        Err(e) => return Err(Error::io("read", &root, e)),
    }

    let name = match &opts.name {
        Some(name) => name.clone(),
        None => {
            let real = fs::canonicalize(&root).unwrap_or_else(|_| root.clone());
            let base = real.file_name().map(|n| n.to_string_lossy().into_owned());
            sanitize_name(&base.unwrap_or_default())
        }
    };
    let text = template(&name, prefix);
    // The template must always produce a valid config; check before writing it.
    TownConfig::parse(&text, &config_path)?;
    write_new_file(&config_path, &text, 0o600)?;
    ensure_layout(&root)?;
    Ok(InitOutcome {
        root,
        created: true,
    })
}

/// Creates whatever part of the layout is missing; never changes what exists.
fn ensure_layout(root: &Path) -> Result<()> {
    for sub in TOWN_DIRS {
        let path = root.join(sub);
        match fs::symlink_metadata(&path) {
            Ok(_) if path.is_dir() => {}
            Ok(_) => {
                return Err(Error::bad(format!(
                    "{} exists and is not a directory (the town needs it as one)",
                    path.display()
                )));
            }
            Err(_) => create_private_dir(&path)?,
        }
    }
    let gitignore = root.join(".gitignore");
    if fs::symlink_metadata(&gitignore).is_err() {
        write_new_file(&gitignore, GITIGNORE, 0o644)?;
    }
    if fs::symlink_metadata(root.join(".git")).is_err() {
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        git2::Repository::init_opts(root, &opts)?;
    }
    Ok(())
}

fn create_private_dir(path: &Path) -> Result<()> {
    match fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => return Ok(()),
        Err(e) => return Err(Error::io("create directory", path, e)),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("set permissions of", path, e))?;
    }
    Ok(())
}

/// Writes a file that must not exist yet (never clobbers one made meanwhile).
fn write_new_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write", path, e))
}
