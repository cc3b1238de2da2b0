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
    /// Only build the town and print how to open it (also when not on a terminal).
    #[arg(long)]
    pub no_cockpit: bool,
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
        "Print the version and exit.\nsim: edit src/todo.sh\nsim: sleep 4",
    ),
    (
        "Fix off-by-one in list numbering",
        "bug",
        0,
        "Items are numbered from 0.\nsim: ignore-nudges 1\nsim: sleep 2\nsim: conflict src/list.sh",
    ),
    (
        "Speed up the test suite",
        "chore",
        2,
        "The tests take too long.\nsim: sleep 3\nsim: stall",
    ),
    (
        "Parse ISO dates in due dates",
        "feature",
        2,
        "Accept 2026-01-31.\nsim: sleep 2\nsim: crash\nsim: edit src/dates.sh",
    ),
    (
        "Refactor the storage layer",
        "task",
        2,
        "Split load and save.\nsim: sleep 3\nsim: edit src/store.sh\nsim: break-tests",
    ),
    (
        "Rename the list command to ls",
        "task",
        3,
        "Shorter is better.\nsim: sleep 2\nsim: conflict src/list.sh",
    ),
];

/// The demo rig's project: a tiny todo app in shell with a real test suite.
const DEMO_PROJECT: &[(&str, &str)] = &[
    (
        "README.md",
        "# todo\n\nA tiny todo list in POSIX sh, the demo rig of gastown-tui.\n",
    ),
    (
        "src/todo.sh",
        "#!/bin/sh\n# todo: add, list and finish items kept in ./todo.txt\nset -eu\n. \"$(dirname \"$0\")/list.sh\"\ncase \"${1:-list}\" in\n  add) shift; echo \"$*\" >> todo.txt ;;\n  list) list_items ;;\n  *) echo \"usage: todo.sh add TEXT | list\" >&2; exit 2 ;;\nesac\n",
    ),
    (
        "src/list.sh",
        "# list: print the items, numbered from 1.\nlist_items() { n=0; while IFS= read -r line; do n=$((n + 1)); echo \"$n. $line\"; done < todo.txt; }\n",
    ),
    ("src/dates.sh", "# Due dates: DD/MM/YYYY for now.\n"),
    (
        "test.sh",
        "#!/bin/sh\n# The rig's test command: the Refinery merges only when this passes.\nset -eu\nif [ -e BROKEN ]; then echo 'FAIL: the storage refactor broke loading' >&2; exit 1; fi\nt=$(mktemp -d); cp -r src \"$t/\"; cd \"$t\"\nsh src/todo.sh add milk >/dev/null\nsh src/todo.sh list | grep -q '1. milk' || { echo 'FAIL: list' >&2; exit 1; }\necho 'ok: 2 checks passed'\n",
    ),
];

/// Writes the demo project as a git repository at `dir` (one commit on `main`).
fn write_demo_project(dir: &Path) -> Result<()> {
    for (name, text) in DEMO_PROJECT {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| Error::io("write", &path, e))?;
        #[cfg(unix)]
        if name.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        }
    }
    let repo =
        git2::Repository::init_opts(dir, git2::RepositoryInitOptions::new().initial_head("main"))?;
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::now("gastown-tui demo", "demo@gastown.local")?;
    repo.commit(Some("HEAD"), &sig, &sig, "The todo app", &tree, &[])?;
    Ok(())
}

/// How many of the convoy's beads the demo slings at start.
const DEMO_SLUNG: usize = 4;

/// Builds the demo town at `dir`: the sample rig, the mayor, the convoy and the epic, and the
/// first beads slung to polecats (they start when the engine does).
pub fn build_demo(dir: &Path) -> Result<Town> {
    let opts = InitOptions {
        name: Some("demo".into()),
        prefix: Some("gt".into()),
    };
    let (mut town, _) = create_town(dir, &opts)?;
    let store = Store::open(&town.db_path(), &town.config.prefix, clock::system())?;
    if store.count()? > 0 {
        return Err(Error::bad(format!(
            "{} already holds beads; give the demo a new --dir",
            town.root.display()
        )));
    }
    let source = town.root.join(".demo").join("todo-app");
    write_demo_project(&source)?;
    let ignore = town.root.join(".gitignore");
    let mut text = std::fs::read_to_string(&ignore).unwrap_or_default();
    text.push_str("# The demo rig's source project.\n/.demo/\n");
    std::fs::write(&ignore, text).map_err(|e| Error::io("write", &ignore, e))?;
    let mut rig = crate::town::RigConfig::new(source.display().to_string());
    rig.test_command = Some("./test.sh".into());
    crate::town::worktree::clone_rig(&rig.url, &rig.branch, &town.rig_repo("demo"))?;
    town.add_rig("demo", &rig)?;
    town.set_default_runtime("sim")?;
    // The demo tells its story in a couple of minutes: patrols on a short leash.
    town.edit_config(|doc| {
        let mut patrol = toml_edit::Table::new();
        for (k, v) in [
            ("gupp_idle_after", "5s"),
            ("witness_every", "1s"),
            ("stall_after", "20s"),
            ("deacon_every", "2s"),
            ("reap_after", "2m"),
        ] {
            patrol.insert(k, toml_edit::value(v));
        }
        doc.insert("patrol", toml_edit::Item::Table(patrol));
        Ok(())
    })?;

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
    // The numbering fix and the rename both rewrite src/list.sh, in parallel: one of them
    // will conflict at merge time and come back as a new bead.
    let convoy = store.convoy_create("Todo app v1", &ids, Some("demo"), mayor)?;
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
            "I split v1 into {} beads ({}); the Deacon dispatches them to rig demo. Watch {} \
             and {}: both touch src/list.sh.",
            ids.len(),
            convoy.id,
            ids[1],
            ids[5]
        ),
    )?;
    for id in ids.iter().take(DEMO_SLUNG) {
        crate::town::sling::sling(&town, &store, id, "demo", Some("sim"), mayor)?;
    }
    store.flush_jsonl(&town.jsonl_path())?;
    Ok(town)
}

pub fn demo(a: DemoArgs) -> Result<()> {
    let dir = match a.dir {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("gastown-demo-")
            .tempdir()
            .map_err(|e| Error::io("create a temp dir in", std::env::temp_dir(), e))?
            .keep(),
    };
    let town = build_demo(&dir)?;
    let root = town.root.display().to_string();
    use std::io::IsTerminal;
    if !a.no_cockpit && std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        let outcome = crate::ui::run(town.clone(), crate::ui::Kind::Demo)?;
        super::session::say_outcome(&town, &outcome)?;
        return line(&format!("The demo town is at {root}."));
    }
    let store = Store::open(&town.db_path(), &town.config.prefix, clock::system())?;
    line(&format!("Demo town created at {root}"))?;
    line("")?;
    line("Ready work:")?;
    for l in bead_rows(&store.ready(None)?) {
        line(&format!("  {l}"))?;
    }
    for c in store.convoys()? {
        line("")?;
        line(&format!(
            "Convoy {} '{}': {}/{} closed",
            c.id, c.name, c.closed, c.total
        ))?;
    }
    line("")?;
    line(&format!(
        "{} beads are on polecats' hooks; they start with the engine:",
        DEMO_SLUNG
    ))?;
    line(&format!(
        "  gastown-tui --town {root}                # the cockpit"
    ))?;
    line(&format!(
        "  gastown-tui --town {root} up --headless  # or the engine alone"
    ))?;
    Ok(())
}
