//! The town on disk: finding it, its paths, `town.toml`, and creating a new one.
//!
//! A town is found like git finds `.git`: `--town DIR`, else `$GT_TOWN`, else the first
//! directory holding `town.toml` walking up from the current directory, else `~/gt`.

mod config;
pub mod costs;
pub(crate) mod diag;
pub mod flush;
mod init;
pub mod merge;
pub mod sling;
pub mod worktree;

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use crate::agent::runtime::{PromptMode, RuntimeConfig};
pub use config::{
    parse_duration, sanitize_name, validate_prefix, validate_rig_name, validate_runtime_name,
    validate_town_name, BudgetConfig, MergeStyle, NotifyConfig, PatrolConfig, Price, RigConfig,
    StoreConfig, TownConfig, NOTIFY_EVENTS, RESERVED_RIG_NAMES,
};
pub use init::{init, template, InitOptions, InitOutcome, GITIGNORE};

use crate::{Error, Result};

/// The config file's name inside the town directory.
pub const CONFIG_FILE: &str = "town.toml";
/// Environment variable naming the town directory.
pub const TOWN_ENV: &str = "GT_TOWN";

/// A loaded town: where it is and its validated config.
#[derive(Debug, Clone, PartialEq)]
pub struct Town {
    /// Absolute path of the town directory.
    pub root: PathBuf,
    pub config: TownConfig,
}

/// Where the chosen town directory came from (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Explicit,
    Env,
    WalkUp,
    Home,
}

/// Pure discovery: the town directory chosen from an explicit `--town` dir, `$GT_TOWN`, a
/// walk up from `cwd` to the first directory holding `town.toml`, or `home/gt`, in that
/// order. Relative explicit/env paths are taken relative to `cwd`; an empty `$GT_TOWN` counts
/// as unset. `None` only when nothing matched and there is no home directory.
pub fn locate(
    explicit: Option<&Path>,
    env_town: Option<&OsStr>,
    cwd: &Path,
    home: Option<&Path>,
) -> Option<PathBuf> {
    locate_with_source(explicit, env_town, cwd, home).map(|(dir, _)| dir)
}

fn locate_with_source(
    explicit: Option<&Path>,
    env_town: Option<&OsStr>,
    cwd: &Path,
    home: Option<&Path>,
) -> Option<(PathBuf, Source)> {
    if let Some(dir) = explicit.filter(|d| !d.as_os_str().is_empty()) {
        return Some((cwd.join(dir), Source::Explicit));
    }
    if let Some(dir) = env_town.filter(|d| !d.is_empty()) {
        return Some((cwd.join(dir), Source::Env));
    }
    if let Some(dir) = cwd.ancestors().find(|d| d.join(CONFIG_FILE).is_file()) {
        return Some((dir.to_path_buf(), Source::WalkUp));
    }
    home.filter(|h| !h.as_os_str().is_empty())
        .map(|h| (h.join("gt"), Source::Home))
}

impl Town {
    /// Finds and loads the town: `explicit` (`--town`), else `$GT_TOWN`, else walking up
    /// from the current directory to the first `town.toml`, else `$HOME/gt`.
    pub fn discover(explicit: Option<&Path>) -> Result<Town> {
        let cwd =
            std::env::current_dir().map_err(|e| Error::io("read the current directory", ".", e))?;
        let env_town = std::env::var_os(TOWN_ENV);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let Some((dir, source)) =
            locate_with_source(explicit, env_town.as_deref(), &cwd, home.as_deref())
        else {
            return Err(Error::bad(format!(
                "no town found: no {CONFIG_FILE} in {} or any parent directory and $HOME is not set \
                 (create one with: gastown-tui init DIR, then pass --town DIR or set {TOWN_ENV})",
                cwd.display()
            )));
        };
        if !dir.join(CONFIG_FILE).exists() {
            let how = init_hint(&dir);
            let msg = match source {
                Source::Explicit => {
                    format!("--town {}: no {CONFIG_FILE} there ({how})", dir.display())
                }
                Source::Env => format!(
                    "${TOWN_ENV}={}: no {CONFIG_FILE} there ({how})",
                    dir.display()
                ),
                Source::WalkUp | Source::Home => format!(
                    "no town found: no {CONFIG_FILE} in {} or any parent directory, and none in {} \
                     ({how}, or pass --town DIR or set {TOWN_ENV})",
                    cwd.display(),
                    dir.display()
                ),
            };
            return Err(Error::bad(msg));
        }
        Town::load(&dir)
    }

    /// Reads and validates `root/town.toml`.
    pub fn load(root: &Path) -> Result<Town> {
        let root = absolute(root)?;
        let path = root.join(CONFIG_FILE);
        if !root.is_dir() {
            let what = if root.exists() {
                "is not a directory"
            } else {
                "does not exist"
            };
            return Err(Error::bad(format!(
                "no town at {}: the directory {what} ({})",
                root.display(),
                init_hint(&root)
            )));
        }
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::bad(format!(
                    "no town at {}: {} not found ({})",
                    root.display(),
                    path.display(),
                    init_hint(&root)
                )));
            }
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let src = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            Error::bad(format!("{}:{line}: not valid UTF-8 text", path.display()))
        })?;
        let config = TownConfig::parse(&src, &path)?;
        Ok(Town { root, config })
    }

    /// `root/town.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// `root/.beads`.
    pub fn beads_dir(&self) -> PathBuf {
        self.root.join(".beads")
    }

    /// `root/.beads/beads.db`: the SQLite store.
    pub fn db_path(&self) -> PathBuf {
        self.beads_dir().join("beads.db")
    }

    /// `root/.beads/issues.jsonl`: the Beads-format export.
    pub fn jsonl_path(&self) -> PathBuf {
        self.beads_dir().join("issues.jsonl")
    }

    /// `root/logs`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// `root/formulas`.
    pub fn formulas_dir(&self) -> PathBuf {
        self.root.join("formulas")
    }

    /// `root/<rig>`: the rig's directory (holding `repo/`, `polecats/`, `crew/`, `refinery/`).
    pub fn rig_dir(&self, rig: &str) -> PathBuf {
        self.root.join(rig)
    }

    /// `root/<rig>/repo`: the rig's canonical clone.
    pub fn rig_repo(&self, rig: &str) -> PathBuf {
        self.rig_dir(rig).join("repo")
    }

    /// Where an agent works: the town root for the mayor, `<rig>/polecats/<name>` for a
    /// polecat, `<rig>/crew/<name>` for a crew member.
    pub fn agent_dir(&self, role: &str, rig: &str, name: &str) -> PathBuf {
        match role {
            "polecat" => self.rig_dir(rig).join("polecats").join(name),
            "crew" => self.rig_dir(rig).join("crew").join(name),
            _ => self.root.clone(),
        }
    }

    /// Whose worktree `dir` is in: `(role, rig, name)` of the polecat or crew member whose
    /// directory (`<rig>/polecats/<name>`, `<rig>/crew/<name>`) holds it, found the way git
    /// finds its repository. None elsewhere, the town root included (the mayor's place is also
    /// the overseer's).
    pub fn worktree_owner(&self, dir: &Path) -> Option<(&'static str, String, String)> {
        let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let rel = canon(dir)
            .strip_prefix(canon(&self.root))
            .ok()?
            .to_path_buf();
        let mut parts = rel.components().map(|c| c.as_os_str().to_str());
        let (Some(Some(rig)), Some(Some(kind)), Some(Some(name))) =
            (parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let role = match kind {
            "polecats" => "polecat",
            "crew" => "crew",
            _ => return None,
        };
        self.config
            .rigs
            .contains_key(rig)
            .then(|| (role, rig.to_string(), name.to_string()))
    }

    /// The rig's config, or a bad-input error naming town.toml.
    pub fn rig(&self, name: &str) -> Result<&RigConfig> {
        self.config.rigs.get(name).ok_or_else(|| {
            Error::bad(format!(
                "no rig '{name}' in {} (add one with: gastown-tui rig add {name} URL)",
                self.config_path().display()
            ))
        })
    }

    /// Edits `town.toml` in place, keeping its comments and layout: reads it, applies `edit`,
    /// validates the result and only then replaces the file (atomically). On any error the
    /// file is unchanged. `self.config` is updated on success.
    pub fn edit_config(
        &mut self,
        edit: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<()>,
    ) -> Result<()> {
        let path = self.config_path();
        let src = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        // Reports a broken file with its line numbers before we touch anything.
        TownConfig::parse(&src, &path)?;
        let mut doc: toml_edit::DocumentMut = src
            .parse()
            .map_err(|e| Error::bad(format!("{}: {e}", path.display())))?;
        edit(&mut doc)?;
        let new_src = doc.to_string();
        let config = TownConfig::parse(&new_src, &path)?;
        write_atomic(&path, &new_src)?;
        self.config = config;
        Ok(())
    }

    /// Adds `[rigs.NAME]` to `town.toml`. A rig of that name already there is a `Conflict`.
    pub fn add_rig(&mut self, name: &str, rig: &RigConfig) -> Result<()> {
        validate_rig_name(name).map_err(Error::BadInput)?;
        if self.config.rigs.contains_key(name) {
            return Err(Error::Conflict(format!(
                "rig '{name}' already exists in {}",
                self.config_path().display()
            )));
        }
        let defaults = RigConfig::default();
        let mut table = toml_edit::Table::new();
        table.insert("url", toml_edit::value(rig.url.as_str()));
        table.insert("branch", toml_edit::value(rig.branch.as_str()));
        if let Some(cmd) = &rig.test_command {
            table.insert("test_command", toml_edit::value(cmd.as_str()));
        }
        if let Some(cmd) = &rig.setup_command {
            table.insert("setup_command", toml_edit::value(cmd.as_str()));
        }
        if rig.test_timeout != defaults.test_timeout {
            let text = humantime::format_duration(rig.test_timeout).to_string();
            table.insert("test_timeout", toml_edit::value(text));
        }
        if rig.merge_without_tests {
            table.insert("merge_without_tests", toml_edit::value(true));
        }
        if let Some(remote) = &rig.push_remote {
            table.insert("push_remote", toml_edit::value(remote.as_str()));
        }
        self.edit_config(|doc| {
            if !matches!(doc.get("rigs"), Some(toml_edit::Item::Value(_))) {
                append_after_trailing(doc, &mut table);
            }
            let rigs = doc.entry("rigs").or_insert_with(|| {
                let mut t = toml_edit::Table::new();
                t.set_implicit(true);
                toml_edit::Item::Table(t)
            });
            match rigs {
                toml_edit::Item::Table(t) => {
                    t.insert(name, toml_edit::Item::Table(table));
                }
                toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => {
                    t.insert(
                        name,
                        toml_edit::Value::InlineTable(table.into_inline_table()),
                    );
                }
                _ => return Err(Error::bad("town.toml: 'rigs' is not a table")),
            }
            Ok(())
        })
    }

    /// Sets `default_runtime` (must be built in or configured).
    pub fn set_default_runtime(&mut self, name: &str) -> Result<()> {
        if !self.config.has_runtime(name) {
            return Err(Error::bad(format!(
                "unknown runtime \"{name}\" (expected one of: {})",
                self.config.runtime_names().join(", ")
            )));
        }
        self.edit_config(|doc| {
            doc.insert("default_runtime", toml_edit::value(name));
            Ok(())
        })
    }

    /// Sets `command` of `[runtimes.NAME]`, creating the table if needed; other keys of an
    /// existing table are kept.
    pub fn set_runtime_command(&mut self, name: &str, command: &[String]) -> Result<()> {
        validate_runtime_name(name).map_err(Error::BadInput)?;
        if command.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(Error::bad(format!(
                "runtime '{name}': the command must start with a program"
            )));
        }
        let array: toml_edit::Array = command.iter().map(String::as_str).collect();
        self.edit_config(|doc| {
            let exists = doc
                .get("runtimes")
                .and_then(|r| r.as_table_like())
                .is_some_and(|r| r.contains_key(name));
            let mut new_table = toml_edit::Table::new();
            new_table.insert("command", toml_edit::value(array.clone()));
            let standard = !matches!(doc.get("runtimes"), Some(toml_edit::Item::Value(_)));
            if !exists && standard {
                append_after_trailing(doc, &mut new_table);
            }
            let runtimes = doc.entry("runtimes").or_insert_with(|| {
                let mut t = toml_edit::Table::new();
                t.set_implicit(true);
                toml_edit::Item::Table(t)
            });
            let not_table = || Error::bad(format!("town.toml: 'runtimes.{name}' is not a table"));
            match runtimes {
                toml_edit::Item::Table(t) => match t.get_mut(name) {
                    Some(item) => {
                        let rt = item.as_table_like_mut().ok_or_else(not_table)?;
                        rt.insert("command", toml_edit::value(array));
                    }
                    None => {
                        t.insert(name, toml_edit::Item::Table(new_table));
                    }
                },
                toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => match t.get_mut(name) {
                    Some(toml_edit::Value::InlineTable(rt)) => {
                        rt.insert("command", toml_edit::Value::Array(array));
                    }
                    Some(_) => return Err(not_table()),
                    None => {
                        let mut rt = toml_edit::InlineTable::new();
                        rt.insert("command", toml_edit::Value::Array(array));
                        t.insert(name, toml_edit::Value::InlineTable(rt));
                    }
                },
                _ => return Err(Error::bad("town.toml: 'runtimes' is not a table")),
            }
            Ok(())
        })
    }
}

/// Makes `table`, about to be added to `doc`, come after everything in the file, including
/// the comments at its end (which toml_edit would otherwise leave below the new table, so
/// that an example the user later uncomments would land inside it).
fn append_after_trailing(doc: &mut toml_edit::DocumentMut, table: &mut toml_edit::Table) {
    let trailing = doc.trailing().as_str().unwrap_or("").to_string();
    if !trailing.trim().is_empty() {
        let sep = if trailing.ends_with("\n\n") { "" } else { "\n" };
        table.decor_mut().set_prefix(format!("{trailing}{sep}"));
        doc.set_trailing("");
    }
    let last = max_position(doc.as_table());
    table.set_position(Some(last.saturating_add(1)));
}

fn max_position(table: &toml_edit::Table) -> isize {
    let mut max = table.position().unwrap_or(0);
    for (_, item) in table.iter() {
        if let toml_edit::Item::Table(t) = item {
            max = max.max(max_position(t));
        } else if let toml_edit::Item::ArrayOfTables(a) = item {
            for t in a.iter() {
                max = max.max(max_position(t));
            }
        }
    }
    max
}

/// "create one with: gastown-tui init DIR", quoting DIR for a shell when needed.
fn init_hint(dir: &Path) -> String {
    let text = dir.display().to_string();
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+~,:@".contains(c));
    if plain {
        format!("create one with: gastown-tui init {text}")
    } else {
        format!(
            "create one with: gastown-tui init '{}'",
            text.replace('\'', "'\\''")
        )
    }
}

/// `path` made absolute against the current directory (symlinks are not resolved).
pub(crate) fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io("resolve", path, e))
}

/// Replaces `path` with `contents` through a temporary file in the same directory, keeping
/// the old file's permissions.
fn write_atomic(path: &Path, contents: &str) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    tmp.write_all(contents.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io("write", tmp.path().to_path_buf(), e))?;
    if let Ok(meta) = fs::metadata(path) {
        fs::set_permissions(tmp.path(), meta.permissions())
            .map_err(|e| Error::io("set permissions of", tmp.path().to_path_buf(), e))?;
    }
    tmp.persist(path)
        .map_err(|e| Error::io("replace", path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests;
