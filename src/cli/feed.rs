//! `feed [--follow]`: the audit trail as a readable stream.

use super::output::{json, line};
use super::Ctx;
use crate::beads::Event;
use crate::Result;
use clap::Args;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct FeedArgs {
    /// Keep printing new events as they happen (until interrupted).
    #[arg(long, short)]
    pub follow: bool,
    /// How many recent events to show first.
    #[arg(long, default_value_t = 30)]
    pub limit: usize,
    /// Only the agents that need a human now (waiting, stalled, dead, zombie), with why.
    #[arg(long)]
    pub problems: bool,
}

/// An agent that needs a human, and the latest word on why.
#[derive(serde::Serialize)]
struct Problem {
    name: String,
    state: String,
    rig: String,
    hooked_bead: Option<String>,
    since: String,
    reason: String,
}

fn problems(ctx: &Ctx) -> Result<()> {
    let mut out = Vec::new();
    for a in ctx.store.agents()? {
        if !matches!(a.state.as_str(), "waiting" | "stalled" | "dead" | "zombie") {
            continue;
        }
        let events = ctx.store.events_for(&a.name)?;
        let why = events
            .iter()
            .rev()
            .find(|e| e.kind == "escalated" || e.new_value.as_deref() == Some(a.state.as_str()));
        out.push(Problem {
            name: a.name.clone(),
            state: a.state.clone(),
            rig: a.rig.clone(),
            hooked_bead: a.hooked_bead.clone(),
            since: why
                .map(|e| e.created_at.clone())
                .unwrap_or_else(|| a.updated_at.clone()),
            reason: why.and_then(|e| e.detail.clone()).unwrap_or_default(),
        });
    }
    ctx.out
        .list(&out, out.is_empty(), "No agent needs you.", || {
            out.iter()
                .map(|p| {
                    format!(
                        "{:<10} {:<8} {:<8} {:<10} {}",
                        p.name,
                        p.state,
                        if p.rig.is_empty() { "-" } else { &p.rig },
                        p.hooked_bead.as_deref().unwrap_or("-"),
                        p.reason
                    )
                })
                .collect()
        })
}

/// How often `--follow` looks for new events.
const POLL: Duration = Duration::from_millis(200);

fn print(e: &Event, as_json: bool) -> Result<()> {
    if as_json {
        return line(&serde_json::to_string(e)?);
    }
    let when = chrono::DateTime::parse_from_rfc3339(&e.created_at)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| e.created_at.clone());
    line(&format!("{when}  {}", e.summary()))
}

pub fn run(ctx: &Ctx, a: FeedArgs) -> Result<()> {
    if a.problems {
        return problems(ctx);
    }
    let s = &ctx.store;
    let recent = s.recent_events(a.limit)?;
    if ctx.out.json && !a.follow {
        return json(&recent);
    }
    let mut last = recent.last().map(|e| e.id).unwrap_or(0);
    for e in &recent {
        print(e, ctx.out.json)?;
    }
    if !a.follow {
        return Ok(());
    }
    if last == 0 {
        last = s.recent_events(1)?.last().map(|e| e.id).unwrap_or(0);
    }
    let mut version = s.data_version()?;
    loop {
        std::thread::sleep(POLL);
        let v = s.data_version()?;
        if v == version {
            continue;
        }
        version = v;
        for e in s.events_after(last, 1000)? {
            last = e.id;
            print(&e, ctx.out.json)?;
        }
    }
}
