//! Agents: `sling`, `agents`, and the agent-side commands `prime`, `done`, `agent-event`.

use super::output::{json, line, short_time, table};
use super::Ctx;
use crate::beads::{DoneStatus, Store};
use crate::town::worktree;
use crate::{Error, Result};
use clap::Args;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct SlingArgs {
    pub bead: String,
    pub rig: String,
    /// The runtime to run the polecat with (default: the town's default_runtime).
    #[arg(long)]
    pub runtime: Option<String>,
}

#[derive(Debug, Args)]
pub struct DoneArgs {
    /// completed (submit to the merge queue), deferred, or failed (back to the ready queue).
    #[arg(long, default_value = "completed")]
    pub status: String,
}

#[derive(Debug, Args)]
pub struct AgentEventArgs {
    /// working, idle, waiting, stop, or notification (a Claude Code Notification hook: its JSON
    /// on stdin tells a permission question, which is waiting, from the idle reminder).
    pub kind: String,
}

pub fn sling(ctx: &Ctx, a: SlingArgs) -> Result<()> {
    let (slung, dir) = crate::town::sling::sling(
        &ctx.town,
        &ctx.store,
        &a.bead,
        &a.rig,
        a.runtime.as_deref(),
        &ctx.actor,
    )?;
    if ctx.out.json {
        return json(&slung);
    }
    line(&format!(
        "Slung {} to rig {}: {} ({})",
        slung.bead,
        slung.rig,
        slung.agent,
        if slung.new_agent {
            "a new polecat"
        } else {
            "a free polecat"
        }
    ))?;
    line(&format!("  worktree {}", dir.display()))?;
    if ctx.store.engine_alive()?.is_none() {
        line(&format!(
            "No engine is running for this town: {} starts when one does (gastown-tui up --headless).",
            slung.agent
        ))?;
    }
    Ok(())
}

pub fn agents(ctx: &Ctx) -> Result<()> {
    let all = ctx.store.agents()?;
    ctx.out.list(
        &all,
        all.is_empty(),
        "No agents yet (sling a bead to a rig: gastown-tui sling BEAD RIG).",
        || {
            let mut rows = vec![vec![
                "NAME".to_string(),
                "ROLE".into(),
                "RIG".into(),
                "STATE".into(),
                "HOOK".into(),
                "RESTARTS".into(),
                "LAST ACTIVITY".into(),
            ]];
            for a in &all {
                rows.push(vec![
                    a.name.clone(),
                    a.role.clone(),
                    if a.rig.is_empty() {
                        "-".into()
                    } else {
                        a.rig.clone()
                    },
                    if a.frozen {
                        crate::beads::agent_state::FROZEN.to_string()
                    } else {
                        a.state.clone()
                    },
                    a.hooked_bead.clone().unwrap_or_else(|| "-".into()),
                    a.restarts.to_string(),
                    a.last_activity
                        .as_deref()
                        .map(short_time)
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            table(&rows)
        },
    )
}

fn role_prompt(role: &str) -> &'static str {
    match role {
        "mayor" => include_str!("../../assets/prompts/mayor.md"),
        "crew" => include_str!("../../assets/prompts/crew.md"),
        _ => include_str!("../../assets/prompts/polecat.md"),
    }
}

fn whoami(store: &Store, actor: &str) -> Result<crate::beads::Agent> {
    store.agent(actor).map_err(|e| match e {
        Error::NotFound { .. } => Error::bad(format!(
            "'{actor}' is not an agent of this town (agents get GT_AGENT from the engine; use --as NAME)"
        )),
        e => e,
    })
}

/// `prime`: who you are, what is on your hook, your unread mail.
pub fn prime(ctx: &Ctx) -> Result<()> {
    let me = whoami(&ctx.store, &ctx.actor)?;
    let place = if me.rig.is_empty() {
        format!("town {}", ctx.town.config.name)
    } else {
        format!("rig {} of town {}", me.rig, ctx.town.config.name)
    };
    line(&format!(
        "# You are {}, the {} of {place}.",
        me.name, me.role
    ))?;
    line("")?;
    // Commands by the absolute path of this binary: the shell an agent's runtime runs them in
    // may have a PATH of its own (a login shell's, a daemon's), where `gastown-tui` is not found.
    let exe = std::env::current_exe()
        .map(|p| crate::engine::nudge::shell_word(&p))
        .unwrap_or_else(|_| "gastown-tui".into());
    line(
        &role_prompt(&me.role)
            .trim_end()
            .replace("`gastown-tui ", &format!("`{exe} ")),
    )?;
    line(&format!(
        "Run this town's commands as `{exe} ...`: that path works from any shell."
    ))?;
    line("")?;
    match &me.hooked_bead {
        Some(id) => {
            let b = ctx.store.get(id)?;
            line(&format!("## On your hook: {} \"{}\"", b.id, b.title))?;
            line(&format!(
                "P{} {} · status {}",
                b.priority, b.issue_type, b.status
            ))?;
            super::output::bead_texts(&b, "")?;
            for c in &b.comments {
                line(&format!("Comment from {}: {}", c.author, c.text))?;
            }
        }
        None => line("## Your hook is empty.")?,
    }
    let mut inboxes = ctx.store.inbox(&me.name, false)?;
    if !me.rig.is_empty() {
        inboxes.extend(ctx.store.inbox(&format!("{}/{}", me.rig, me.name), false)?);
    }
    line("")?;
    if inboxes.is_empty() {
        line("## No unread mail.")?;
    } else {
        line(&format!("## Unread mail ({})", inboxes.len()))?;
        for m in &inboxes {
            line(&format!("- {} from {}: {}", m.id, m.from, m.subject))?;
            if !m.body.is_empty() {
                line(&format!("  {}", m.body.replace('\n', "\n  ")))?;
            }
        }
        line(&format!("(read one with: {exe} mail read ID)"))?;
    }
    Ok(())
}

/// `done`: refuses a dirty worktree, submits the branch, clears the hook.
pub fn done(ctx: &Ctx, a: DoneArgs) -> Result<()> {
    let how: DoneStatus = a.status.parse()?;
    let me = whoami(&ctx.store, &ctx.actor)?;
    let Some(bead) = me.hooked_bead.clone() else {
        return Err(Error::Conflict(format!(
            "{} has nothing on its hook",
            me.name
        )));
    };
    let mut branch = String::new();
    if how == DoneStatus::Completed {
        let dir = ctx.town.agent_dir(&me.role, &me.rig, &me.name);
        if !dir.exists() {
            return Err(Error::Conflict(format!(
                "no worktree at {} to submit",
                dir.display()
            )));
        }
        let dirty = worktree::dirty_files(&dir)?;
        if !dirty.is_empty() {
            let shown: Vec<&str> = dirty.iter().take(10).map(String::as_str).collect();
            return Err(Error::Conflict(format!(
                "{} has uncommitted changes ({}{}): commit or discard them, then run done again",
                dir.display(),
                shown.join(", "),
                if dirty.len() > 10 { ", ..." } else { "" }
            )));
        }
        branch = worktree::current_branch(&dir)?;
    }
    let out = ctx.store.done(&me.name, how, &branch, &ctx.actor)?;
    match out.merge_request {
        Some(mr) => line(&format!(
            "Submitted {branch} for {bead} to the merge queue as mr-{mr}; your hook is empty."
        )),
        None => line(&format!(
            "Released {bead} ({}); your hook is empty.",
            a.status
        )),
    }
}

/// `agent-event KIND`: a state report from the agent's own hooks.
pub fn agent_event(ctx: &Ctx, a: AgentEventArgs) -> Result<()> {
    let state = match a.kind.as_str() {
        "working" => "working",
        "idle" | "stop" => "idle",
        "waiting" => "waiting",
        "notification" => notification_state(&hook_input()),
        other => {
            return Err(Error::bad(format!(
            "unknown agent event '{other}' (expected working, idle, waiting, stop or notification)"
        )))
        }
    };
    let me = whoami(&ctx.store, &ctx.actor)?;
    ctx.store.agent_report(&me.name, state)
}

/// What a hook wrote on stdin (a JSON object), read for at most a second and 64 KiB; empty
/// when stdin is a terminal or nothing came.
fn hook_input() -> String {
    use std::io::{IsTerminal, Read};
    if std::io::stdin().is_terminal() {
        return String::new();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::stdin().take(64 * 1024).read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx.recv_timeout(Duration::from_secs(1))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Claude Code's Notification hook fires for a permission question and also for its "waiting
/// for your input" reminder after a minute at the prompt: only the first is waiting.
fn notification_state(input: &str) -> &'static str {
    let v: serde_json::Value = serde_json::from_str(input).unwrap_or_default();
    let kind = v["notification_type"].as_str().unwrap_or("");
    let message = v["message"].as_str().unwrap_or("").to_lowercase();
    if kind == "idle_prompt" || message.contains("waiting for your input") {
        "idle"
    } else {
        "waiting"
    }
}

#[cfg(test)]
mod tests {
    use super::notification_state;

    #[test]
    fn claude_s_idle_reminder_is_not_a_question() {
        assert_eq!(
            notification_state(
                r#"{"hook_event_name":"Notification","message":"Claude is waiting for your input"}"#
            ),
            "idle"
        );
        assert_eq!(
            notification_state(r#"{"notification_type":"idle_prompt","message":"x"}"#),
            "idle"
        );
        assert_eq!(
            notification_state(r#"{"message":"Claude needs your permission to use Bash"}"#),
            "waiting"
        );
        assert_eq!(
            notification_state(""),
            "waiting",
            "no input: the hook's own word"
        );
    }
}
