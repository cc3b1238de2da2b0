//! The engine and live sessions from a shell: the cockpit and `attach` (clients of the
//! engine), `up`, `down`, `status`, `nudge`, `capture`, `kill`, `restart`, `handoff`,
//! `replay`. Everything that asks the engine (status, stop, what acts on a live session) goes
//! over its socket as the same `engine::Command`s a cockpit sends. The CLI never touches a
//! PTY.

use super::output::line;
use super::Ctx;
use crate::engine;
use crate::server::client;
use crate::{Error, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// How long a request may wait for the engine's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Run the engine in the foreground, in this terminal (until Ctrl-C, SIGTERM or
    /// `gastown-tui down`); without it the engine starts in the background.
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

/// Asks the running engine (over its socket) to carry out `cmd` on a live session and waits
/// for its answer: `None` when no engine runs.
fn ask_engine(ctx: &Ctx, cmd: engine::Command) -> Result<Option<Option<String>>> {
    let agent = cmd.subject().to_string();
    crate::beads::check_agent_name(&agent)?;
    let verb = cmd.verb();
    match client::block_on(client::ask(&ctx.town, cmd, ANSWER_TIMEOUT))? {
        None => Ok(None),
        Some(Ok(text)) => Ok(Some(text)),
        Some(Err(why)) => {
            // An agent the town does not know is said as such.
            ctx.store.agent(&agent)?;
            Err(match Error::from(why) {
                // Said as the engine said it, with what was asked.
                Error::Conflict(m) => Error::Conflict(format!("{verb} {agent}: {m}")),
                typed => typed,
            })
        }
    }
}

/// [`ask_engine`], when there must be an engine.
fn ask(ctx: &Ctx, cmd: engine::Command) -> Result<Option<String>> {
    ask_engine(ctx, cmd)?.ok_or(Error::EngineNotRunning)
}

pub fn up(ctx: &Ctx, a: UpArgs) -> Result<()> {
    let town = &ctx.town;
    if a.headless {
        eprintln!(
            "engine running for town '{}' at {} (Ctrl-C or `gastown-tui down` stops it)",
            town.config.name,
            town.root.display()
        );
        return crate::server::serve(town.clone());
    }
    let (c, started) = client::block_on(client::connect_or_start(town, "cli"))?;
    let pid = c.welcome.pid;
    if started {
        line(&format!(
            "Started the engine of town '{}' (pid {pid}, socket {}); its output goes to {}.",
            town.config.name,
            c.socket.display(),
            client::engine_log(town).display()
        ))?;
    } else {
        line(&format!(
            "The engine of town '{}' is already running (pid {pid}).",
            town.config.name
        ))?;
    }
    line("  gastown-tui        opens the cockpit on it (q detaches; the agents keep running)")?;
    line("  gastown-tui down   stops it and its agents (their hooks stay)")
}

pub fn down(ctx: &Ctx) -> Result<()> {
    let town = &ctx.town;
    match client::block_on(client::stop(town))? {
        client::Stopped::Engine { pid, agents } => line(&format!(
            "Stopped the engine of town '{}' (pid {pid}){}; their hooks stay, and the next \
             `gastown-tui` or `gastown-tui up` starts them again.",
            town.config.name,
            match agents {
                0 => " and its agents".to_string(),
                1 => " and its 1 running agent".to_string(),
                n => format!(" and its {n} running agents"),
            }
        )),
        client::Stopped::NoEngine => line(&format!(
            "No engine is running for town '{}'.",
            town.config.name
        )),
    }
}

pub fn status(ctx: &Ctx) -> Result<()> {
    use crate::server::protocol::AgentCounts;
    let engine = client::block_on(client::status(&ctx.town))?;
    // With no engine the store still knows the agents; none has a live session.
    let agents = match &engine {
        Some(s) => s.agents.clone(),
        None => {
            let agents = ctx.store.agents()?;
            AgentCounts::count(agents.iter().map(|a| (a.state.as_str(), false)))
        }
    };
    if ctx.out.json {
        let engine_json = engine.as_ref().map(|s| {
            serde_json::json!({
                "pid": s.pid,
                "socket": s.socket,
                "uptime_s": s.uptime_s,
                "clients": s.clients,
                "version": s.version,
                "protocol": s.protocol,
            })
        });
        let v = serde_json::json!({
            "town": ctx.town.config.name,
            "engine": engine_json,
            "agents": agents,
        });
        return line(&serde_json::to_string_pretty(&v)?);
    }
    match &engine {
        Some(s) => line(&format!(
            "engine: running, pid {}, up {}, {} client{} attached, socket {}",
            s.pid,
            humantime::format_duration(Duration::from_secs(s.uptime_s)),
            s.clients,
            if s.clients == 1 { "" } else { "s" },
            s.socket
        ))?,
        None => line("engine: not running (gastown-tui up starts it)")?,
    }
    let states: Vec<String> = agents
        .by_state
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    line(&format!(
        "agents: {} ({} running{}{})",
        agents.total,
        agents.running,
        if states.is_empty() { "" } else { "; " },
        states.join(", ")
    ))
}

/// What the cockpit prints once the terminal is back.
pub fn say_outcome(town: &crate::town::Town, o: &crate::ui::Outcome) -> Result<()> {
    use crate::ui::Outcome;
    let name = &town.config.name;
    let root = town.root.display();
    match o {
        Outcome::Detached {
            running,
            pid: Some(pid),
        } => {
            line(&format!(
                "Detached from town '{name}': {} keep{} running in its engine (pid {pid}).",
                match running {
                    1 => "1 agent".to_string(),
                    n => format!("{n} agents"),
                },
                if *running == 1 { "s" } else { "" }
            ))?;
            line(&format!("  gastown-tui --town {root}        attaches again"))?;
            line(&format!(
                "  gastown-tui --town {root} down   stops them (their hooks stay)"
            ))
        }
        Outcome::Detached { pid: None, .. } => line(&format!(
            "Left the cockpit; no engine is running for town '{name}' (gastown-tui --town {root} up starts it)."
        )),
        Outcome::Stopped { pid } => line(&format!(
            "Stopped the engine of town '{name}' (pid {pid}) and its agents; their hooks stay \
             (gastown-tui --town {root} starts them again)."
        )),
        Outcome::StoppedElsewhere { reason } => line(&format!(
            "The engine of town '{name}' stopped ({reason}); its agents' hooks stay."
        )),
    }
}

pub fn cockpit(ctx: &Ctx, kind: crate::ui::Kind) -> Result<()> {
    let outcome = crate::ui::run(ctx.town.clone(), kind)?;
    say_outcome(&ctx.town, &outcome)
}

pub fn nudge(ctx: &Ctx, agent: &str, text: &str) -> Result<()> {
    let text = engine::nudge::checked(text)?;
    let agent = agent.to_string();
    ask(
        ctx,
        engine::Command::Nudge {
            agent: agent.clone(),
            text,
        },
    )?;
    line(&format!("Nudged {agent}"))
}

pub fn capture(ctx: &Ctx, a: CaptureArgs) -> Result<()> {
    crate::beads::check_agent_name(&a.agent)?;
    ctx.store.agent(&a.agent)?;
    let cmd = engine::Command::Capture {
        agent: a.agent.clone(),
        scrollback: a.scrollback,
    };
    // With no engine, the newest recording shows what the agent last showed.
    let text = match ask_engine(ctx, cmd)? {
        None => engine::capture_recording(&ctx.town, &a.agent, a.scrollback)?,
        Some(text) => text.unwrap_or_default(),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') && !text.is_empty() {
        let _ = out.write_all(b"\n");
    }
    Ok(())
}

/// `kill`, `restart` or `handoff` (`make` builds the command for the agent); the agent is
/// the caller itself when none is named.
pub fn simple(ctx: &Ctx, make: fn(String) -> engine::Command, agent: Option<String>) -> Result<()> {
    let agent = agent.unwrap_or_else(|| ctx.actor.clone());
    let said = ask(ctx, make(agent.clone()))?.unwrap_or_else(|| "done".into());
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
