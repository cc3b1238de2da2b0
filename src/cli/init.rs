//! `init` and `demo`.

use super::output::{bead_rows, line};
use crate::beads::{NewBead, Store};
use crate::town::{self, InitOptions, Town, TOWN_ENV};
use crate::{clock, Error, Result};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to create the town (default: --town, else $GT_TOWN, else ~/gt).
    pub dir: Option<PathBuf>,
    /// The town's name (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// The prefix of bead ids (default: gt).
    #[arg(long)]
    pub prefix: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Create the demo town here instead of in a new temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

fn default_town_dir(cli_town: Option<&Path>) -> Result<PathBuf> {
    if let Some(t) = cli_town {
        return Ok(t.to_path_buf());
    }
    if let Some(t) = std::env::var_os(TOWN_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(t));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join("gt")),
        None => Err(Error::bad(
            "no directory given and $HOME is not set: run gastown-tui init DIR",
        )),
    }
}

/// Creates the town's files and its store; returns the loaded town.
fn create_town(dir: &Path, opts: &InitOptions) -> Result<(Town, bool)> {
    let outcome = town::init(dir, opts)?;
    let town = Town::load(&outcome.root)?;
    Store::open(&town.db_path(), &town.config.prefix, clock::system())?;
    Ok((town, outcome.created))
}

pub fn init(a: InitArgs, cli_town: Option<&Path>) -> Result<()> {
    let dir = match a.dir {
        Some(d) => d,
        None => default_town_dir(cli_town)?,
    };
    let opts = InitOptions {
        name: a.name,
        prefix: a.prefix,
    };
    let (town, created) = create_town(&dir, &opts)?;
    if created {
        line(&format!(
            "Created town '{}' at {} (bead ids: {}-...)",
            town.config.name,
            town.root.display(),
            town.config.prefix
        ))?;
        line(&format!(
            "Next: cd {} && gastown-tui bead create \"First task\"",
            town.root.display()
        ))?;
    } else {
        line(&format!(
            "Town '{}' at {} is already set up (nothing changed but missing pieces)",
            town.config.name,
            town.root.display()
        ))?;
    }
    Ok(())
}

/// The sample work of the demo town: a convoy whose beads script the `sim` agent through the
/// situations the town must handle (work, a polite agent, a stall, a crash, a failing change, a
/// conflict), an epic with children, and a note from the mayor.
const DEMO_BEADS: &[(&str, &str, i64, &str)] = &[
    (
        "Add a --version flag",
        "feature",
        1,
        "Print the version and exit.\nsim: edit src/todo.sh\nsim: sleep 2",
    ),
    (
        "Fix off-by-one in list numbering",
        "bug",
        0,
        "Items are numbered from 0.\nsim: ignore-nudges 1\nsim: edit src/list.sh",
    ),
    (
        "Speed up the test suite",
        "chore",
        2,
        "The tests take too long.\nsim: stall",
    ),
    (
        "Parse ISO dates in due dates",
        "feature",
        2,
        "Accept 2026-01-31.\nsim: crash\nsim: edit src/dates.sh",
    ),
    (
        "Refactor the storage layer",
        "task",
        2,
        "Split load and save.\nsim: break-tests",
    ),
    (
        "Rename the list command to ls",
        "task",
        3,
        "Shorter is better.\nsim: conflict src/list.sh",
    ),
];

pub fn demo(a: DemoArgs) -> Result<()> {
    let dir = match a.dir {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("gastown-demo-")
            .tempdir()
            .map_err(|e| Error::io("create a temp dir in", std::env::temp_dir(), e))?
            .keep(),
    };
    let opts = InitOptions {
        name: Some("demo".into()),
        prefix: Some("gt".into()),
    };
    let (town, _) = create_town(&dir, &opts)?;
    let store = Store::open(&town.db_path(), &town.config.prefix, clock::system())?;
    if store.count()? > 0 {
        return Err(Error::bad(format!(
            "{} already holds beads; give the demo a new --dir",
            town.root.display()
        )));
    }
    let mayor = "mayor";
    store.agent_register(mayor, "mayor", "", "sim", "overseer")?;
    let mut ids = Vec::new();
    for (title, kind, priority, description) in DEMO_BEADS {
        let b = store.create(
            &NewBead {
                title: title.to_string(),
                description: description.to_string(),
                issue_type: Some(kind.to_string()),
                priority: Some(*priority),
                labels: vec!["v1".into()],
                ..Default::default()
            },
            mayor,
        )?;
        ids.push(b.id);
    }
    // The rename waits for the numbering fix: they touch the same file.
    store.add_dep(&ids[5], &ids[1], "blocks", mayor)?;
    let convoy = store.convoy_create("Todo app v1", &ids, None, mayor)?;
    let epic = store.create(
        &NewBead {
            title: "Release 1.0".into(),
            issue_type: Some("epic".into()),
            priority: Some(1),
            ..Default::default()
        },
        mayor,
    )?;
    let changelog = store.create(
        &NewBead {
            title: "Write the changelog".into(),
            parent: Some(epic.id.clone()),
            ..Default::default()
        },
        mayor,
    )?;
    let tag = store.create(
        &NewBead {
            title: "Tag the release".into(),
            parent: Some(epic.id.clone()),
            ..Default::default()
        },
        mayor,
    )?;
    store.add_dep(&tag.id, &changelog.id, "blocks", mayor)?;
    store.mail_send(
        mayor,
        "overseer",
        "Convoy 'Todo app v1' is planned",
        &format!(
            "I split v1 into {} beads ({}). {} waits for {}.",
            ids.len(),
            convoy.id,
            ids[5],
            ids[1]
        ),
    )?;
    store.flush_jsonl(&town.jsonl_path())?;

    let root = town.root.display().to_string();
    line(&format!("Demo town created at {root}"))?;
    line("")?;
    line("Ready work (what an agent would pick up next):")?;
    for l in bead_rows(&store.ready(None)?) {
        line(&format!("  {l}"))?;
    }
    let c = store.convoy(&convoy.id)?;
    line("")?;
    line(&format!(
        "Convoy {} '{}': {}/{} closed",
        c.id, c.name, c.closed, c.total
    ))?;
    line("")?;
    line("Try it:")?;
    line(&format!("  export {TOWN_ENV}={root}"))?;
    line("  gastown-tui bead ready")?;
    line(&format!("  gastown-tui bead claim {} --as nux", ids[1]))?;
    line(&format!(
        "  gastown-tui bead close {} --reason fixed --as nux",
        ids[1]
    ))?;
    line("  gastown-tui bead ready        # the rename is unblocked now")?;
    line("  gastown-tui mail inbox")?;
    line("  gastown-tui feed")?;
    Ok(())
}
