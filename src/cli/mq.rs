//! `mq`: the merge queues; `mq retry ID`, `mq reject ID`.

use super::output::{line, short_time, table};
use super::Ctx;
use crate::beads::mr_state;
use crate::{Error, Result};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct MqArgs {
    #[command(subcommand)]
    pub cmd: Option<MqCmd>,
    /// Only this rig's queue.
    #[arg(long)]
    pub rig: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum MqCmd {
    /// Put a rejected (or conflicting) request back in the queue.
    Retry { id: String },
    /// Reject a queued request.
    Reject {
        id: String,
        #[arg(long, default_value = "rejected by the overseer")]
        reason: String,
    },
}

/// Accepts `12` or `mr-12`.
fn parse_id(s: &str) -> Result<i64> {
    s.strip_prefix("mr-").unwrap_or(s).parse().map_err(|_| {
        Error::bad(format!(
            "'{s}' is not a merge request id (e.g. 12 or mr-12)"
        ))
    })
}

pub fn run(ctx: &Ctx, a: MqArgs) -> Result<()> {
    let s = &ctx.store;
    match a.cmd {
        Some(MqCmd::Retry { id }) => {
            let id = parse_id(&id)?;
            let mr = s.mr(id)?;
            if mr.state != mr_state::REJECTED && mr.state != mr_state::CONFLICT {
                return Err(Error::Conflict(format!(
                    "mr-{id} is {}; only rejected or conflicting requests can be retried",
                    mr.state
                )));
            }
            s.mr_set_state(id, mr_state::QUEUED, "retry requested", "", &ctx.actor)?;
            line(&format!("mr-{id} is queued again"))
        }
        Some(MqCmd::Reject { id, reason }) => {
            let id = parse_id(&id)?;
            let mr = s.mr(id)?;
            if mr.state != mr_state::QUEUED {
                return Err(Error::Conflict(format!(
                    "mr-{id} is {}; only queued requests can be rejected",
                    mr.state
                )));
            }
            s.mr_set_state(id, mr_state::REJECTED, &reason, "", &ctx.actor)?;
            line(&format!("mr-{id} rejected: {reason}"))
        }
        None => {
            if let Some(r) = &a.rig {
                ctx.town.rig(r)?;
            }
            let all = s.merge_requests(a.rig.as_deref())?;
            ctx.out
                .list(&all, all.is_empty(), "The merge queue is empty.", || {
                    let mut rows = vec![vec![
                        "ID".to_string(),
                        "RIG".into(),
                        "STATE".into(),
                        "BEAD".into(),
                        "BY".into(),
                        "UPDATED".into(),
                        "COMMIT".into(),
                        "BRANCH / REASON".into(),
                    ]];
                    for m in &all {
                        rows.push(vec![
                            format!("mr-{}", m.id),
                            m.rig.clone(),
                            m.state.clone(),
                            m.bead_id.clone().unwrap_or_else(|| "-".into()),
                            m.submitter.clone(),
                            short_time(&m.updated_at),
                            match (m.state.as_str(), &m.merge_commit) {
                                (mr_state::MERGED, Some(c)) => c.chars().take(7).collect(),
                                _ => "-".into(),
                            },
                            if m.reason.is_empty() {
                                m.branch.clone()
                            } else {
                                format!("{} · {}", m.branch, m.reason)
                            },
                        ]);
                    }
                    table(&rows)
                })
        }
    }
}
