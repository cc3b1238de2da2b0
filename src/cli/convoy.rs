//! `convoy create|list|show|add`.

use super::output::{line, table};
use super::Ctx;
use crate::beads::Convoy;
use crate::{Error, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ConvoyCmd {
    /// Create a convoy tracking the given beads.
    Create {
        name: String,
        beads: Vec<String>,
        /// Sling its ready beads to this rig automatically (the Deacon does it).
        #[arg(long, value_name = "RIG")]
        auto_dispatch: Option<String>,
    },
    /// Every convoy with its progress.
    List,
    /// One convoy and the beads it tracks.
    Show { id: String },
    /// Add beads to a convoy.
    Add {
        id: String,
        #[arg(required = true)]
        beads: Vec<String>,
    },
}

/// `███░░` for closed/total.
pub fn progress_bar(closed: usize, total: usize, width: usize) -> String {
    let filled = (closed * width).checked_div(total).unwrap_or(0).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

fn show(ctx: &Ctx, c: &Convoy) -> Result<()> {
    line(&format!(
        "{}  {}  {}/{} {}  {}",
        c.id,
        c.name,
        c.closed,
        c.total,
        progress_bar(c.closed, c.total, 10),
        c.status
    ))?;
    if let Some(rig) = &c.auto_dispatch {
        line(&format!("  auto-dispatch to rig {rig}"))?;
    }
    for id in &c.tracked {
        match ctx.store.get(id) {
            Ok(b) => line(&format!("  {:<12} {:<12} {}", b.id, b.status, b.title))?,
            Err(_) => line(&format!("  {id:<12} (missing)"))?,
        }
    }
    Ok(())
}

pub fn run(ctx: &Ctx, cmd: ConvoyCmd) -> Result<()> {
    let s = &ctx.store;
    match cmd {
        ConvoyCmd::Create {
            name,
            beads,
            auto_dispatch,
        } => {
            if let Some(rig) = &auto_dispatch {
                if !ctx.town.config.rigs.contains_key(rig) {
                    return Err(Error::bad(format!(
                        "--auto-dispatch: no rig '{rig}' in {} (add it with gastown-tui rig add)",
                        ctx.town.config_path().display()
                    )));
                }
            }
            let c = s.convoy_create(&name, &beads, auto_dispatch.as_deref(), &ctx.actor)?;
            ctx.out.one(&c, || {
                line(&format!(
                    "Created convoy {} '{}' tracking {} beads",
                    c.id, c.name, c.total
                ))
            })
        }
        ConvoyCmd::List => {
            let all = s.convoys()?;
            ctx.out.list(&all, all.is_empty(), "No convoys.", || {
                let mut rows = vec![vec![
                    "ID".to_string(),
                    "NAME".into(),
                    "PROGRESS".into(),
                    "STATUS".into(),
                ]];
                for c in &all {
                    rows.push(vec![
                        c.id.clone(),
                        c.name.clone(),
                        format!(
                            "{}/{} {}",
                            c.closed,
                            c.total,
                            progress_bar(c.closed, c.total, 10)
                        ),
                        c.status.clone(),
                    ]);
                }
                table(&rows)
            })
        }
        ConvoyCmd::Show { id } => {
            let c = s.convoy(&id)?;
            ctx.out.one(&c, || show(ctx, &c))
        }
        ConvoyCmd::Add { id, beads } => {
            let c = s.convoy_add(&id, &beads, &ctx.actor)?;
            ctx.out.one(&c, || show(ctx, &c))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_bars() {
        assert_eq!(super::progress_bar(3, 5, 5), "███░░");
        assert_eq!(super::progress_bar(0, 0, 3), "░░░");
        assert_eq!(super::progress_bar(2, 2, 4), "████");
    }
}
