//! Live sessions from another shell: `up --headless`, `nudge`, `capture`, `kill`, `restart`,
//! `handoff`, `replay`. What needs a live session goes to the running engine through the
//! store's control table; the CLI itself never touches a PTY.

use super::agent::ENGINE_FRESH;
use super::output::line;
use super::Ctx;
use crate::beads::control_kind;
use crate::engine;
use crate::{Error, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// How long a request may wait for the engine's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Run the engine without the cockpit (until Ctrl-C or SIGTERM).
    #[arg(long)]
    pub headless: bool,
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    pub agent: String,
    /// Include the scrollback above the screen.
    #[arg(long)]
    pub scrollback: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    pub agent: String,
    /// A session id (see logs/AGENT/); the newest by default.
    pub session: Option<String>,
    /// Playback speed factor (0 = as fast as possible).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Idle gaps longer than this many seconds are cut short.
    #[arg(long, default_value_t = 2.0)]
    pub max_idle: f64,
}

/// Files a request for the running engine and waits for its answer.
fn ask(ctx: &Ctx, kind: &str, agent: &str, payload: &str) -> Result<String> {
    crate::beads::check_agent_name(agent)?;
    if ctx.store.engine_alive(ENGINE_FRESH)?.is_none() {
        return Err(Error::Conflict(
            "no engine is running for this town (start one: gastown-tui up --headless)".into(),
        ));
    }
    ctx.store.agent(agent)?;
    let id = ctx
        .store
        .control_request(kind, agent, payload, &ctx.actor)?;
    let r = ctx.store.control_wait(id, ANSWER_TIMEOUT)?;
    if r.ok == Some(true) {
        Ok(r.result)
    } else {
        Err(Error::Conflict(format!("{kind} {agent}: {}", r.result)))
    }
}

pub fn up(ctx: &Ctx, a: UpArgs) -> Result<()> {
    if !a.headless {
        return crate::ui::run(ctx.town.clone());
    }
    eprintln!(
        "engine running for town '{}' at {} (Ctrl-C to stop)",
        ctx.town.config.name,
        ctx.town.root.display()
    );
    engine::run_headless(ctx.town.clone())
}

pub fn nudge(ctx: &Ctx, agent: &str, text: &str) -> Result<()> {
    let clean = engine::nudge::checked(text)?;
    ask(ctx, control_kind::NUDGE, agent, &clean)?;
    line(&format!("Nudged {agent}"))
}

pub fn capture(ctx: &Ctx, a: CaptureArgs) -> Result<()> {
    crate::beads::check_agent_name(&a.agent)?;
    let text = if ctx.store.engine_alive(ENGINE_FRESH)?.is_some() {
        let payload = if a.scrollback { "scrollback" } else { "" };
        ask(ctx, control_kind::CAPTURE, &a.agent, payload)?
    } else {
        ctx.store.agent(&a.agent)?;
        engine::capture_recording(&ctx.town, &a.agent, a.scrollback)?
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') && !text.is_empty() {
        let _ = out.write_all(b"\n");
    }
    Ok(())
}

pub fn simple(ctx: &Ctx, kind: &str, agent: Option<String>) -> Result<()> {
    let agent = agent.unwrap_or_else(|| ctx.actor.clone());
    let said = ask(ctx, kind, &agent, "")?;
    line(&format!("{agent}: {said}"))
}

pub fn replay(ctx: &Ctx, a: ReplayArgs) -> Result<()> {
    crate::beads::check_agent_name(&a.agent)?;
    let path: PathBuf = match &a.session {
        Some(s) => ctx.town.logs_dir().join(&a.agent).join(format!("{s}.cast")),
        None => engine::latest_recording(&ctx.town, &a.agent)
            .ok_or_else(|| Error::bad(format!("{} has no recordings", a.agent)))?,
    };
    if !path.is_file() {
        return Err(Error::bad(format!("no recording at {}", path.display())));
    }
    let ok = |v: f64| v >= 0.0 && v.is_finite();
    if !ok(a.speed) || !ok(a.max_idle) {
        return Err(Error::bad(
            "--speed and --max-idle take numbers of 0 or more",
        ));
    }
    let cast = crate::agent::read_cast(&path)?;
    let mut out = std::io::stdout().lock();
    let mut last = 0.0f64;
    for e in &cast.events {
        if e.kind != crate::agent::EventKind::Output {
            continue;
        }
        if a.speed > 0.0 {
            let gap = (e.time - last).clamp(0.0, a.max_idle) / a.speed;
            if gap > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(gap));
            }
        }
        last = e.time;
        if out
            .write_all(e.data.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            break;
        }
    }
    Ok(())
}
