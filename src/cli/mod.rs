//! The command line: clap definitions and dispatch. Each command group has its own file and
//! stays thin: parse, call the library, print (human or `--json`).

mod agent;
mod bead;
mod config;
mod convoy;
mod costs;
mod doctor;
mod feed;
mod flush;
mod formula;
mod init;
mod mail;
mod mq;
mod output;
mod rig;
pub(crate) mod session;
mod sim;

use crate::beads::Store;
use crate::town::Town;
use crate::{clock, Error, Result};
use clap::{Parser, Subcommand};
use output::Out;
use std::path::PathBuf;

/// gastown-tui: run and coordinate many coding agents from one terminal cockpit.
#[derive(Debug, Parser)]
#[command(name = "gastown-tui", version, about, max_term_width = 100)]
pub struct Cli {
    /// The town directory (else $GT_TOWN, else the nearest parent with a town.toml, else ~/gt).
    #[arg(long, global = true, value_name = "DIR")]
    pub town: Option<PathBuf>,

    /// Act as this agent or person (else $GT_AGENT, else $BD_ACTOR, else "overseer").
    #[arg(long = "as", global = true, value_name = "NAME")]
    pub actor: Option<String>,

    /// Print the result as JSON (commands that show or change something).
    #[arg(long, global = true)]
    pub json: bool,

    /// Without a command: the cockpit on the town.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a town (idempotent; refuses a non-empty directory that is not a town).
    Init(init::InitArgs),
    /// A throwaway demo town with a sample rig and simulated agents, in the cockpit.
    Demo(init::DemoArgs),
    /// Beads: the units of work (create, show, list, ready, update, claim, close, deps, import, export).
    #[command(subcommand)]
    Bead(Box<bead::BeadCmd>),
    /// Convoys: bundles of beads tracked as one delivery.
    #[command(subcommand)]
    Convoy(convoy::ConvoyCmd),
    /// Mail between agents and the overseer.
    #[command(subcommand)]
    Mail(mail::MailCmd),
    /// The town's event feed.
    Feed(feed::FeedArgs),
    /// Formulas: workflows poured into molecules.
    #[command(subcommand)]
    Formula(formula::FormulaCmd),
    /// Rigs: the git repositories the town works on.
    #[command(subcommand)]
    Rig(rig::RigCmd),
    /// Crew: long-lived agents with their own worktree in a rig.
    #[command(subcommand)]
    Crew(rig::CrewCmd),
    /// Put a bead on a polecat's hook in a rig (the engine starts the polecat).
    Sling(agent::SlingArgs),
    /// The town's agents and their state.
    Agents,
    /// (agent side) Your role, your hook and your unread mail.
    Prime,
    /// (agent side) Submit your work to the merge queue and clear your hook.
    Done(agent::DoneArgs),
    /// (agent side) Report your state: working, idle, waiting, stop.
    AgentEvent(agent::AgentEventArgs),
    /// Start the town's engine in the background (agents, patrols, the merge queue).
    Up(session::UpArgs),
    /// Stop the town's engine and its agents (their hooks stay).
    Down,
    /// How the town's engine is: pid, socket, uptime, attached clients; agent counts.
    Status,
    /// One agent's terminal, full screen, like `tmux attach` (the escape key detaches).
    Attach { agent: String },
    /// Type a message into an agent's prompt and submit it (needs a running engine).
    Nudge { agent: String, message: String },
    /// An agent's screen as text, like `tmux capture-pane -p`.
    Capture(session::CaptureArgs),
    /// Stop an agent's session (it stays stopped until restarted).
    Kill { agent: String },
    /// Restart an agent's session on the same hook.
    Restart { agent: String },
    /// End a session cleanly; a fresh one starts on the same hook (default: yourself).
    Handoff { agent: Option<String> },
    /// Play an agent's recorded session in this terminal.
    Replay(session::ReplayArgs),
    /// What the agents spent: tokens and USD from their runtimes' own records.
    Costs(costs::CostsArgs),
    /// Stop agents in place (SIGSTOP to their processes) until thawed: an emergency stop.
    Freeze(costs::FreezeArgs),
    /// Resume frozen agents (SIGCONT).
    Thaw(costs::FreezeArgs),
    /// The merge queues (the Refinery's): list, retry, reject.
    Mq(mq::MqArgs),
    /// Show or edit town.toml.
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Check git, the runtimes on PATH, the store, the engine and the rigs.
    Doctor,
    /// Run the simulated agent (the `sim` runtime).
    SimAgent,
    /// Internal (tests): connect to an engine's socket and say what it answered.
    #[command(name = "__probe", hide = true)]
    Probe { socket: PathBuf },
    /// Internal: the debounced writer of .beads/issues.jsonl (started automatically).
    #[command(name = "__flush", hide = true)]
    Flush(flush::FlushArgs),
}

/// What every command that works on a town gets.
pub struct Ctx {
    pub town: Town,
    pub store: Store,
    pub actor: String,
    /// `--json` or not.
    pub out: Out,
}

impl Ctx {
    fn open(cli_town: Option<&std::path::Path>, actor: Option<&str>, out: Out) -> Result<Ctx> {
        let town = Town::discover(cli_town)?;
        init_logging(&town.logs_dir());
        let store = Store::open(&town.db_path(), &town.config.prefix, clock::system())?;
        // A current directory that is gone (a removed worktree) is in nobody's worktree.
        let cwd = std::env::current_dir().unwrap_or_default();
        let actor = identity(&town, &store, actor, &cwd, &|k| std::env::var(k).ok())?;
        Ok(Ctx {
            town,
            store,
            actor,
            out,
        })
    }
}

/// `--as`, else `$GT_AGENT`, else `$BD_ACTOR`, else `overseer`.
pub fn resolve_actor(flag: Option<&str>) -> String {
    actor_from(flag, &|k| std::env::var(k).ok())
}

fn actor_from(flag: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> String {
    flag.map(str::to_string)
        .or_else(|| set(env, "GT_AGENT"))
        .or_else(|| set(env, "BD_ACTOR"))
        .unwrap_or_else(|| "overseer".to_string())
}

/// Variable `k` of `env`, when it is set to something.
fn set(env: &dyn Fn(&str) -> Option<String>, k: &str) -> Option<String> {
    env(k).filter(|v| !v.trim().is_empty())
}

/// Who a command acts for. `--as` says so outright. Run inside an agent's worktree
/// (`<rig>/polecats/<name>`, `<rig>/crew/<name>`: found from `cwd` the way git finds its
/// repository), it acts for that agent, and is refused when `$GT_AGENT` or `$BD_ACTOR` name
/// another agent of the town, or `$GT_BEAD` another bead than the one on its hook: an
/// environment that leaked from one agent into another's commands (a runtime's shared daemon)
/// must not make one agent submit, release or read for another. A person's own `$BD_ACTOR`
/// (no agent of the town) does not count against the place. Elsewhere, the environment
/// decides.
fn identity(
    town: &Town,
    store: &Store,
    flag: Option<&str>,
    cwd: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    if flag.is_some() {
        return Ok(actor_from(flag, env));
    }
    let Some((role, rig, name)) = town.worktree_owner(cwd) else {
        return Ok(actor_from(None, env));
    };
    let Ok(agent) = store.agent(&name) else {
        return Ok(actor_from(None, env));
    };
    if agent.role != role || agent.rig != rig {
        return Ok(actor_from(None, env));
    }
    let place = town.agent_dir(role, &rig, &name);
    let refuse = |what: String| {
        Error::WrongAgent(format!(
            "{} is {name}'s worktree, but {what}: refusing to act for the wrong agent (another \
             agent's environment reached this command; run it from that agent's own worktree, \
             or say who acts with --as NAME)",
            place.display()
        ))
    };
    for var in ["GT_AGENT", "BD_ACTOR"] {
        if let Some(other) = set(env, var).filter(|v| *v != name && store.agent(v).is_ok()) {
            return Err(refuse(format!("${var} says {other}")));
        }
    }
    if let (Some(bead), Some(hooked)) = (set(env, "GT_BEAD"), agent.hooked_bead.as_deref()) {
        if bead != hooked {
            return Err(refuse(format!(
                "$GT_BEAD says {bead} and {name}'s hook holds {hooked}"
            )));
        }
    }
    Ok(name)
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let town = cli.town.as_deref();
    let actor = cli.actor.as_deref();
    let out = Out { json: cli.json };
    let Some(command) = cli.command else {
        return with_store(town, actor, out, |ctx| {
            session::cockpit(ctx, crate::ui::Kind::Cockpit)
        });
    };
    match command {
        Command::Init(a) => init::init(a, town),
        Command::Demo(a) => init::demo(a),
        Command::Flush(a) => flush::run(town, a),
        Command::Probe { socket } => {
            let said = crate::server::client::block_on(async {
                Ok(crate::server::client::probe(socket).await)
            })?;
            println!("{said}");
            Ok(())
        }
        Command::Bead(c) => with_store(town, actor, out, |ctx| bead::run(ctx, *c)),
        Command::Convoy(c) => with_store(town, actor, out, |ctx| convoy::run(ctx, c)),
        Command::Mail(c) => with_store(town, actor, out, |ctx| mail::run(ctx, c)),
        Command::Feed(a) => with_store(town, actor, out, |ctx| feed::run(ctx, a)),
        Command::Formula(c) => with_store(town, actor, out, |ctx| formula::run(ctx, c)),
        Command::Rig(c) => with_store(town, actor, out, |ctx| rig::run(ctx, c)),
        Command::Crew(c) => with_store(town, actor, out, |ctx| rig::crew(ctx, c)),
        Command::Sling(a) => with_store(town, actor, out, |ctx| agent::sling(ctx, a)),
        Command::Agents => with_store(town, actor, out, |ctx| agent::agents(ctx)),
        Command::Prime => with_store(town, actor, out, |ctx| agent::prime(ctx)),
        Command::Done(a) => with_store(town, actor, out, |ctx| agent::done(ctx, a)),
        Command::AgentEvent(a) => with_store(town, actor, out, |ctx| agent::agent_event(ctx, a)),
        Command::Up(a) => with_store(town, actor, out, |ctx| session::up(ctx, a)),
        Command::Down => with_store(town, actor, out, |ctx| session::down(ctx)),
        Command::Status => with_store(town, actor, out, |ctx| session::status(ctx)),
        Command::Attach { agent } => with_store(town, actor, out, |ctx| {
            crate::beads::check_agent_name(&agent)?;
            session::cockpit(ctx, crate::ui::Kind::Attach(agent))
        }),
        Command::Nudge { agent, message } => with_store(town, actor, out, |ctx| {
            session::nudge(ctx, &agent, &message)
        }),
        Command::Capture(a) => with_store(town, actor, out, |ctx| session::capture(ctx, a)),
        Command::Kill { agent } => with_store(town, actor, out, |ctx| {
            session::simple(
                ctx,
                |agent| crate::engine::Command::Kill { agent },
                Some(agent),
            )
        }),
        Command::Restart { agent } => with_store(town, actor, out, |ctx| {
            session::simple(
                ctx,
                |agent| crate::engine::Command::Restart { agent },
                Some(agent),
            )
        }),
        Command::Handoff { agent } => with_store(town, actor, out, |ctx| {
            session::simple(
                ctx,
                |agent| crate::engine::Command::Handoff { agent },
                agent,
            )
        }),
        Command::Replay(a) => with_store(town, actor, out, |ctx| session::replay(ctx, a)),
        Command::Mq(a) => with_store(town, actor, out, |ctx| mq::run(ctx, a)),
        Command::Costs(a) => with_store(town, actor, out, |ctx| costs::costs(ctx, a)),
        Command::Freeze(a) => with_store(town, actor, out, |ctx| costs::freeze(ctx, a, true)),
        Command::Thaw(a) => with_store(town, actor, out, |ctx| costs::freeze(ctx, a, false)),
        Command::Config(c) => with_store(town, actor, out, |ctx| config::run(ctx, c)),
        Command::Completions { shell } => doctor::completions(shell),
        Command::Doctor => doctor::doctor(town),
        Command::SimAgent => sim::run(town, actor),
    }
}

/// Opens the town and its store, runs `f`, then makes sure a debounced JSONL flush is on its
/// way if the command changed anything.
fn with_store(
    town: Option<&std::path::Path>,
    actor: Option<&str>,
    out: Out,
    f: impl FnOnce(&mut Ctx) -> Result<()>,
) -> Result<()> {
    let mut ctx = Ctx::open(town, actor, out)?;
    let result = f(&mut ctx);
    if let Err(e) = flush::schedule(&ctx) {
        tracing::warn!("could not schedule the JSONL flush: {e}");
    }
    result
}

/// Parses a priority given as `0`..`4` or `P0`..`P4`.
pub(crate) fn parse_priority(s: &str) -> Result<i64> {
    crate::beads::priority::parse(s).ok_or_else(|| {
        Error::bad(format!(
            "--priority: '{s}' is not a priority ({}, or P0..P4)",
            crate::beads::priority::RANGE
        ))
    })
}

/// Sends this process's `tracing` output to `<town>/logs/gastown-tui.log` (owner-only), never
/// to the terminal. `GT_LOG` sets the filter (default `info`). Failing to open the log is not
/// fatal: the command still runs, unlogged.
fn init_logging(logs_dir: &std::path::Path) {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let path = logs_dir.join("gastown-tui.log");
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let Ok(file) = opts.open(&path) else { return };
        let filter = tracing_subscriber::EnvFilter::try_from_env("GT_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    });
}
