//! `rig add|list` and `crew add`.

use super::output::{line, table};
use super::Ctx;
use crate::town::{validate_rig_name, worktree, RigConfig};
use crate::{Error, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum RigCmd {
    /// Clone a git repository (URL or local path) into the town as a rig.
    Add {
        name: String,
        url: String,
        /// The target branch merges land on.
        #[arg(long, default_value = "main")]
        branch: String,
        /// The command the Refinery runs before merging (in the rig's checkout).
        #[arg(long)]
        test_command: Option<String>,
    },
    /// The town's rigs.
    List,
}

#[derive(Debug, Subcommand)]
pub enum CrewCmd {
    /// Add a crew member with its own worktree in a rig.
    Add {
        name: String,
        #[arg(long)]
        rig: String,
    },
}

#[derive(serde::Serialize)]
struct RigInfo<'a> {
    name: &'a str,
    url: &'a str,
    branch: &'a str,
    test_command: Option<&'a str>,
    cloned: bool,
    path: String,
}

pub fn run(ctx: &mut Ctx, cmd: RigCmd) -> Result<()> {
    match cmd {
        RigCmd::Add {
            name,
            url,
            branch,
            test_command,
        } => {
            validate_rig_name(&name).map_err(|m| Error::bad(format!("rig name '{name}': {m}")))?;
            if ctx.town.config.rigs.contains_key(&name) {
                return Err(Error::bad(format!(
                    "rig '{name}' already exists in {}",
                    ctx.town.config_path().display()
                )));
            }
            let dir = ctx.town.rig_dir(&name);
            if dir.exists() {
                return Err(Error::bad(format!(
                    "{} already exists; choose another rig name",
                    dir.display()
                )));
            }
            let mut rig = RigConfig::new(url.clone());
            rig.branch = branch.clone();
            rig.test_command = test_command;
            worktree::clone_rig(&url, &branch, &ctx.town.rig_repo(&name))?;
            if let Err(e) = ctx.town.add_rig(&name, &rig) {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
            line(&format!(
                "Added rig '{name}' from {url} (branch {branch}) at {}",
                ctx.town.rig_repo(&name).display()
            ))?;
            if rig.test_command.is_none() {
                line("Note: no --test-command, so the Refinery will not merge anything for this rig until one is set in town.toml.")?;
            }
            Ok(())
        }
        RigCmd::List => {
            let infos: Vec<RigInfo> = ctx
                .town
                .config
                .rigs
                .iter()
                .map(|(name, r)| RigInfo {
                    name,
                    url: &r.url,
                    branch: &r.branch,
                    test_command: r.test_command.as_deref(),
                    cloned: ctx.town.rig_repo(name).join(".git").exists(),
                    path: ctx.town.rig_repo(name).display().to_string(),
                })
                .collect();
            ctx.out.list(
                &infos,
                infos.is_empty(),
                "No rigs (add one with: gastown-tui rig add NAME URL).",
                || {
                    let mut rows = vec![vec![
                        "NAME".to_string(),
                        "BRANCH".into(),
                        "TESTS".into(),
                        "URL".into(),
                    ]];
                    for i in &infos {
                        rows.push(vec![
                            i.name.to_string(),
                            i.branch.to_string(),
                            i.test_command.unwrap_or("(none: no merges)").to_string(),
                            if i.cloned {
                                i.url.to_string()
                            } else {
                                format!("{} (not cloned)", i.url)
                            },
                        ]);
                    }
                    table(&rows)
                },
            )
        }
    }
}

pub fn crew(ctx: &Ctx, cmd: CrewCmd) -> Result<()> {
    let CrewCmd::Add { name, rig } = cmd;
    let cfg = ctx.town.rig(&rig)?;
    crate::beads::check_agent_name(&name)?;
    let repo = ctx.town.rig_repo(&rig);
    if !repo.exists() {
        return Err(Error::bad(format!(
            "rig '{rig}' is not cloned at {}",
            repo.display()
        )));
    }
    let dir = ctx.town.agent_dir("crew", &rig, &name);
    ctx.store
        .agent_register(&name, "crew", &rig, "", &ctx.actor)?;
    worktree::add_worktree(
        &repo,
        &dir,
        &format!("crew-{name}"),
        &format!("crew/{name}"),
        &cfg.branch,
        &ctx.store.mr_landed(&rig)?,
    )?;
    line(&format!(
        "Added crew member {name} in rig {rig}: worktree {} on branch crew/{name}",
        dir.display()
    ))
}
