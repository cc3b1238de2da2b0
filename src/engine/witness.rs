//! The Witness and GUPP: deterministic patrols over the live sessions (no LLM, no tokens).
//!
//! Every `witness_every` the Witness classifies each live agent from what the engine sees:
//! process state, output activity, the runtime's patterns on the last lines of the screen, and
//! the agent's own reports (`agent-event`, e.g. from Claude Code hooks), which win while fresh.
//! A new state must hold for `DEBOUNCE` before it is recorded, so states do not flicker. Then it
//! acts, and every decision is an event with its reason:
//! - idle at its prompt with work on its hook: GUPP nudges it to start, with backoff, and
//!   escalates to the overseer after `GUPP_NUDGES` nudges;
//! - stalled (working, silent for `stall_after`): nudged once, then escalated;
//! - waiting for input or permission: surfaced to the overseer once per episode;
//! - a nudge's Enter is verified: no reaction within `ENTER_CHECK`, the Enter is sent again.
//!
//! Dead agents are handled where exits are noticed (`Engine::reap`): restarted in the same
//! worktree up to `max_restarts`, then escalated.

use super::{nudge, Engine};
use crate::agent::Session;
use crate::beads::{agent_state, ev};
use crate::Result;
use regex::Regex;
use std::time::{Duration, Instant};

/// A classification must hold this long before it is recorded.
pub const DEBOUNCE: Duration = Duration::from_millis(1500);
/// Output within this window means the agent is working.
const ACTIVE_WINDOW: Duration = Duration::from_millis(1500);
/// GUPP nudges before escalating.
pub const GUPP_NUDGES: u32 = 3;
/// A submitted prompt must produce output within this long, or the Enter is sent again.
pub const ENTER_CHECK: Duration = Duration::from_secs(2);
/// Enter re-sends before giving up on a nudge.
const ENTER_RESENDS: u32 = 2;
/// Work lasting this long (at most) ends a GUPP or stall episode.
const SUSTAINED_MAX: Duration = Duration::from_secs(60);
/// How many of the screen's last non-empty lines the patterns look at.
const TAIL_LINES: usize = 8;

/// What the nudge for a stalled agent says.
pub const STALL_PROMPT: &str =
    "You have been silent for a while. If you are stuck, say what blocks you; otherwise carry on with your hook.";

/// The Witness's memory of one live session.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// The state last recorded for this session.
    pub state: String,
    candidate: Option<(String, Instant)>,
    /// Since when the agent has been idle (at its prompt).
    idle_since: Option<Instant>,
    gupp_nudges: u32,
    gupp_escalated: bool,
    stall_nudged_at: Option<Instant>,
    stall_escalated: bool,
    waiting_reported: bool,
    /// Since when the agent has been working without a break.
    working_since: Option<Instant>,
    /// The last submitted prompt: when, the output count then, and re-sends so far.
    enter_check: Option<(Instant, u64, u32)>,
}

impl Watch {
    pub fn started() -> Watch {
        Watch {
            state: agent_state::WORKING.to_string(),
            ..Watch::default()
        }
    }

    /// How long the agent has been idle at its prompt, if it is.
    pub fn idle_for(&self) -> Option<Duration> {
        (self.state == agent_state::IDLE)
            .then(|| self.idle_since.map(|t| t.elapsed()))
            .flatten()
    }

    /// Records `state` now, without the debounce (first contact knows a dialog when it sees
    /// one).
    pub fn force(&mut self, state: &str) {
        self.candidate = None;
        if self.state != state {
            self.state = state.to_string();
            self.idle_since = None;
            self.working_since = None;
            self.waiting_reported = false;
        }
    }

    /// A prompt was just submitted: expect a reaction.
    pub fn submitted(&mut self, bytes_now: u64) {
        self.enter_check = Some((Instant::now(), bytes_now, 0));
    }
}

/// The runtime's patterns for one session.
#[derive(Debug, Default, Clone)]
pub(crate) struct Patterns {
    pub ready: Option<Regex>,
    pub busy: Option<Regex>,
    pub waiting: Option<Regex>,
}

impl Patterns {
    pub fn compile(ready: Option<&str>, busy: Option<&str>, waiting: Option<&str>) -> Patterns {
        let re = |p: Option<&str>| p.and_then(|p| Regex::new(&format!("(?m){p}")).ok());
        Patterns {
            ready: re(ready),
            busy: re(busy),
            waiting: re(waiting),
        }
    }
}

/// The last `n` non-empty lines of a captured screen.
fn tail(screen: &str, n: usize) -> String {
    let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What a screen alone says, without timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    /// One of the program's dialogs, or a menu (a question).
    Dialog,
    /// The runtime's waiting pattern (a permission question).
    Waiting,
    Ready,
    Busy,
    /// None of the above.
    Unclear,
}

/// Reads a captured screen. Real programs draw their input box above a footer, and keep a
/// busy line ("esc to interrupt") on screen while they work: the ready pattern is tried on
/// the last line first (the sim, a shell), then the busy pattern on the last lines, then the
/// ready pattern on them. A dialog of the program's is never taken for its prompt.
pub(crate) fn look(
    full: &str,
    patterns: &Patterns,
    program: Option<&'static crate::agent::program::Program>,
) -> Look {
    if program.and_then(|p| p.dialog(full)).is_some() {
        return Look::Dialog;
    }
    let screen = tail(full, TAIL_LINES);
    let last = screen.lines().last().unwrap_or("");
    let matches = |re: &Option<Regex>, text: &str| re.as_ref().is_some_and(|r| r.is_match(text));
    if matches(&patterns.waiting, &screen) {
        Look::Waiting
    } else if matches(&patterns.ready, last) {
        Look::Ready
    } else if matches(&patterns.busy, &screen) {
        Look::Busy
    } else if matches(&patterns.ready, &screen) {
        Look::Ready
    } else {
        Look::Unclear
    }
}

/// What an agent looks like right now, before debouncing: a dialog is waiting; then the
/// agent's own fresh report; then the screen, with output in the last moments counting as
/// work and a silent busy screen going stale into stalled.
pub(crate) fn classify(
    session: &Session,
    patterns: &Patterns,
    program: Option<&'static crate::agent::program::Program>,
    reported: Option<(&str, Duration)>,
    stall_after: Duration,
) -> String {
    let silent = session.last_output().elapsed();
    let looks = look(&session.capture(false), patterns, program);
    if looks == Look::Dialog {
        return agent_state::WAITING.to_string();
    }
    // The agent's own word wins while it is fresh (a working report goes stale into stalled).
    if let Some((state, age)) = reported {
        if age < stall_after {
            return match state {
                agent_state::WORKING if silent >= stall_after => agent_state::STALLED,
                s => s,
            }
            .to_string();
        }
    }
    let state = match looks {
        Look::Dialog | Look::Waiting => agent_state::WAITING,
        _ if silent < ACTIVE_WINDOW => agent_state::WORKING,
        Look::Ready => agent_state::IDLE,
        // Busy-looking or unclear but this long without a byte is a stall; until then an
        // unclear screen gets the benefit of the doubt.
        Look::Busy | Look::Unclear if silent >= stall_after => agent_state::STALLED,
        Look::Busy | Look::Unclear => agent_state::WORKING,
    };
    state.to_string()
}

impl Engine {
    /// One Witness round over every live session.
    pub(crate) fn witness(&mut self) -> Result<()> {
        let names: Vec<String> = self.live.keys().cloned().collect();
        let agents = self.store.agents()?;
        for name in names {
            let Some(agent) = agents.iter().find(|a| a.name == name) else {
                continue;
            };
            let reported = match (&agent.reported_state, &agent.reported_at) {
                (Some(s), Some(at)) => {
                    let at = crate::beads::parse_instant(at, "reported_at").unwrap_or(0);
                    let age = self.store.now_ns().saturating_sub(at).max(0) as u64;
                    Some((s.clone(), Duration::from_nanos(age)))
                }
                _ => None,
            };
            let hooked = agent.hooked_bead.is_some();
            let stall_after = self.town.config.patrol.stall_after;
            let Some(live) = self.live.get_mut(&name) else {
                continue;
            };
            // A frozen agent is neither stalled nor idle: the overseer stopped it.
            if live.stopping.is_some() || live.frozen {
                continue;
            }
            // The Enter of the last submitted prompt: did the agent react?
            let mut resend = false;
            if let Some((at, bytes, resends)) = live.watch.enter_check {
                if live.session.bytes_read() > bytes {
                    live.watch.enter_check = None;
                } else if at.elapsed() >= ENTER_CHECK {
                    if resends < ENTER_RESENDS {
                        resend = true;
                        live.watch.enter_check =
                            Some((Instant::now(), live.session.bytes_read(), resends + 1));
                    } else {
                        live.watch.enter_check = None;
                    }
                }
            }
            if resend {
                live.session.write(b"\r")?;
                self.store.record_event(
                    &name,
                    ev::NUDGED,
                    "witness",
                    "no reaction to the prompt: Enter sent again",
                )?;
            }
            let Some(live) = self.live.get_mut(&name) else {
                continue;
            };
            // A dialog that needs the human outranks everything, the agent's own reports too.
            let dialog = live.contact.waiting.clone();
            let raw = match &dialog {
                Some(_) => agent_state::WAITING.to_string(),
                None => classify(
                    &live.session,
                    &live.patterns,
                    live.program,
                    reported.as_ref().map(|(s, a)| (s.as_str(), *a)),
                    stall_after,
                ),
            };
            let w = &mut live.watch;
            let committed = if raw == w.state {
                w.candidate = None;
                None
            } else {
                match &w.candidate {
                    Some((c, since)) if *c == raw && since.elapsed() >= DEBOUNCE => {
                        w.candidate = None;
                        w.state = raw.clone();
                        Some(raw.clone())
                    }
                    Some((c, _)) if *c == raw => None,
                    _ => {
                        w.candidate = Some((raw.clone(), Instant::now()));
                        None
                    }
                }
            };
            if let Some(state) = &committed {
                if state == agent_state::IDLE {
                    w.idle_since = Some(Instant::now());
                } else {
                    w.idle_since = None;
                }
                w.working_since = (state == agent_state::WORKING).then(Instant::now);
                if state != agent_state::WAITING {
                    w.waiting_reported = false;
                }
                let reason = match state.as_str() {
                    agent_state::IDLE => "at its prompt, no output",
                    agent_state::WORKING => "producing output",
                    agent_state::WAITING => dialog
                        .as_deref()
                        .unwrap_or("asking for input or permission"),
                    agent_state::STALLED => "working but silent too long",
                    _ => "",
                };
                self.store
                    .agent_set_state(&name, state, reason, "witness")?;
            }
            self.act(&name, hooked)?;
        }
        Ok(())
    }

    /// GUPP, stall and waiting handling for one agent, from its recorded state.
    fn act(&mut self, name: &str, hooked: bool) -> Result<()> {
        let gupp_after = self.town.config.patrol.gupp_idle_after;
        let stall_after = self.town.config.patrol.stall_after;
        let Some(live) = self.live.get(name) else {
            return Ok(());
        };
        // A typed nudge echoes, which looks like a moment of work: only work that lasts ends a
        // GUPP or stall episode, so a stuck agent is still escalated.
        let sustained = live
            .watch
            .working_since
            .is_some_and(|t| t.elapsed() >= gupp_after.max(stall_after).min(SUSTAINED_MAX));
        if sustained || live.watch.state == agent_state::WAITING {
            if let Some(l) = self.live.get_mut(name) {
                l.watch.gupp_nudges = 0;
                l.watch.gupp_escalated = false;
                l.watch.stall_nudged_at = None;
                l.watch.stall_escalated = false;
            }
        }
        let Some(live) = self.live.get(name) else {
            return Ok(());
        };
        let w = &live.watch;
        // The screen's last line goes into escalations only: read it when one is made.
        let session = live.session.clone();
        let last_line = move || tail(&session.capture(false), 1);
        match w.state.as_str() {
            // The day's budget is spent: GUPP starts no more work.
            agent_state::IDLE if self.costs.over_daily => {}
            agent_state::IDLE if hooked && live.pending_prompt.is_none() => {
                let Some(since) = w.idle_since else {
                    return Ok(());
                };
                // Backoff: idle_after, then 2x, 4x ... since the agent went idle.
                let due = gupp_after * 2u32.saturating_pow(w.gupp_nudges);
                if w.gupp_nudges < GUPP_NUDGES && since.elapsed() >= due {
                    let n = w.gupp_nudges + 1;
                    self.type_nudge(name, &nudge::prime_prompt(&self.exe), &mut None)?;
                    if let Some(l) = self.live.get_mut(name) {
                        l.watch.gupp_nudges = n;
                        l.watch.idle_since = Some(Instant::now());
                    }
                    self.store.record_event(
                        name,
                        ev::NUDGED,
                        "gupp",
                        &format!("idle with work on its hook (nudge {n} of {GUPP_NUDGES})"),
                    )?;
                } else if w.gupp_nudges >= GUPP_NUDGES
                    && !w.gupp_escalated
                    && since.elapsed() >= gupp_after
                {
                    if let Some(l) = self.live.get_mut(name) {
                        l.watch.gupp_escalated = true;
                    }
                    self.escalate(
                        name,
                        &format!("{name} is idle with work on its hook"),
                        &format!(
                            "{name} did not start after {GUPP_NUDGES} nudges. Its screen ends with:\n{}\nLook at it in the cockpit (enter) or run: gastown-tui capture {name}",
                            last_line()
                        ),
                    )?;
                }
            }
            agent_state::STALLED => match w.stall_nudged_at {
                None => {
                    self.type_nudge(name, STALL_PROMPT, &mut None)?;
                    if let Some(l) = self.live.get_mut(name) {
                        l.watch.stall_nudged_at = Some(Instant::now());
                    }
                    self.store.record_event(
                        name,
                        ev::NUDGED,
                        "witness",
                        &format!("stalled: no output for {}s", stall_after.as_secs()),
                    )?;
                }
                Some(at) if !w.stall_escalated && at.elapsed() >= stall_after => {
                    if let Some(l) = self.live.get_mut(name) {
                        l.watch.stall_escalated = true;
                    }
                    self.escalate(
                        name,
                        &format!("{name} is stalled"),
                        &format!(
                            "{name} has produced no output for {}s, even after a nudge. Its screen ends with:\n{}",
                            stall_after.as_secs(),
                            last_line()
                        ),
                    )?;
                }
                _ => {}
            },
            agent_state::WAITING if !w.waiting_reported => {
                let why = live
                    .contact
                    .waiting
                    .clone()
                    .unwrap_or_else(|| "asks for input or permission".into());
                if let Some(l) = self.live.get_mut(name) {
                    l.watch.waiting_reported = true;
                }
                self.escalate(
                    name,
                    &format!("{name} is waiting for you: {why}"),
                    &format!(
                        "{name} {why}. Its screen ends with:\n{}\nAnswer it in the cockpit (enter to drill down).",
                        last_line()
                    ),
                )?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Tells the overseer: an event and a mail from the agent's rig's witness.
    pub(crate) fn escalate(&mut self, agent: &str, subject: &str, body: &str) -> Result<()> {
        let rig = self.store.agent(agent).map(|a| a.rig).unwrap_or_default();
        let from = if rig.is_empty() {
            "witness".to_string()
        } else {
            format!("{rig}/witness")
        };
        self.store.mail_send(&from, "overseer", subject, body)?;
        self.store
            .record_event(agent, ev::ESCALATED, "witness", subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every captured screen of the real programs (tests/fixtures/screens) must read as,
    /// through the runtime presets and the programs' dialogs: each first-run screen is a
    /// dialog (and the right one), a permission question is waiting, and no dialog is ever
    /// taken for a ready prompt. A new fixture must be added here.
    #[test]
    fn real_programs_screens_read_as_what_they_are() {
        use crate::agent::program::{self, Seen};
        let expect: &[(&str, &str)] = &[
            ("claude/2.1.197/ready.txt", "ready"),
            ("claude/2.1.197/ready-bypass.txt", "ready"),
            ("claude/2.1.197/busy-stream.txt", "busy"),
            ("claude/2.1.197/busy-tool.txt", "busy"),
            ("claude/2.1.197/permission.txt", "waiting"),
            ("claude/2.1.197/permission-write.txt", "waiting"),
            ("claude/2.1.197/trust.txt", "claude.trust"),
            ("claude/2.1.197/bypass.txt", "claude.bypass"),
            ("claude/2.1.197/api-key.txt", "claude.api-key"),
            ("claude/2.1.197/login.txt", "claude.login"),
            ("claude/2.1.197/login-onboarding.txt", "claude.login"),
            ("claude/2.1.197/not-logged-in.txt", "claude.not-logged-in"),
            ("claude/2.1.197/preflight-offline.txt", "claude.offline"),
            ("claude/2.1.197/theme.txt", "claude.theme"),
            ("claude/2.1.197/security-notes.txt", "claude.security-notes"),
            ("claude/2.1.197/root-refusal.txt", "fatal:claude.root"),
            // A later Claude Code than the verified one: its trust question when the folder
            // has hooks (the town's), options unnumbered and "No, exit" first.
            ("claude/2.1.332/trust-hooks.txt", "claude.trust"),
            ("claude/2.1.332/bypass.txt", "claude.bypass"),
            ("codex/0.171.0/ready.txt", "ready"),
            ("codex/0.171.0/welcome-idle.txt", "ready"),
            ("codex/0.171.0/busy-command.txt", "busy"),
            ("codex/0.171.0/busy-stream.txt", "busy"),
            ("codex/0.171.0/permission.txt", "waiting"),
            ("codex/0.171.0/trust.txt", "codex.trust"),
            ("codex/0.171.0/signin.txt", "codex.sign-in"),
            ("codex/0.171.0/signin-other.txt", "codex.sign-in"),
            ("codex/0.171.0/model-upgrade.txt", "codex.model-upgrade"),
            ("codex/0.171.0/missing-env-key.txt", "codex.env-key"),
            ("gemini/0.61.0/ready.txt", "ready"),
            ("gemini/0.61.0/ready-yolo.txt", "ready"),
            // In a git repository (every town worktree) the footer has a branch column.
            ("gemini/0.61.0/ready-git-branch.txt", "ready"),
            ("gemini/0.61.0/ready-typed.txt", "ready"),
            ("gemini/0.61.0/ready-after-turn.txt", "ready"),
            // The trust question stays drawn above the prompt after Gemini restarts itself.
            ("gemini/0.61.0/ready-after-trust-restart.txt", "ready"),
            // An API error is printed and the prompt is back (not a dialog; see the README).
            ("gemini/0.61.0/api-error.txt", "ready"),
            ("gemini/0.61.0/busy-stream.txt", "busy"),
            ("gemini/0.61.0/busy-tool.txt", "busy"),
            ("gemini/0.61.0/permission.txt", "waiting"),
            ("gemini/0.61.0/permission-edit.txt", "waiting"),
            ("gemini/0.61.0/trust.txt", "gemini.trust"),
            ("gemini/0.61.0/auth.txt", "gemini.auth"),
            ("gemini/0.61.0/auth-key-detected.txt", "gemini.auth"),
            ("gemini/0.61.0/api-key-entry.txt", "gemini.api-key"),
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens");
        let mut files = Vec::new();
        for prog in std::fs::read_dir(&root).unwrap().flatten() {
            for ver in std::fs::read_dir(prog.path()).unwrap().flatten() {
                for f in std::fs::read_dir(ver.path()).unwrap().flatten() {
                    let rel = f.path().strip_prefix(&root).unwrap().display().to_string();
                    files.push(rel);
                }
            }
        }
        files.sort();
        let mut listed: Vec<String> = expect.iter().map(|(f, _)| f.to_string()).collect();
        listed.sort();
        assert_eq!(
            files, listed,
            "every fixture has an expectation, and only those"
        );
        for (file, want) in expect {
            let screen = std::fs::read_to_string(root.join(file)).unwrap();
            let name = file.split('/').next().unwrap();
            let prog = program::named(name).unwrap();
            let rt = crate::agent::runtime::builtin(name).unwrap();
            let patterns = Patterns::compile(
                rt.ready.as_deref(),
                rt.busy.as_deref(),
                rt.waiting.as_deref(),
            );
            let got = if let Some(f) = prog.fatal(&screen) {
                format!("fatal:{}", f.id)
            } else {
                match prog.dialog(&screen) {
                    Some(Seen::Known(d)) => d.id.to_string(),
                    // The engine calls a menu its waiting pattern knows a permission question.
                    seen @ Some(Seen::Unknown)
                        if super::super::contact::is_permission_menu(
                            seen.as_ref(),
                            &patterns,
                            &screen,
                        ) =>
                    {
                        "waiting".into()
                    }
                    Some(Seen::Unknown) => "unknown menu".into(),
                    None => match look(&screen, &patterns, Some(prog)) {
                        Look::Ready => "ready",
                        Look::Busy => "busy",
                        Look::Waiting => "waiting",
                        Look::Dialog => "dialog",
                        Look::Unclear => "unclear",
                    }
                    .into(),
                }
            };
            assert_eq!(&got, want, "{file} reads as {got}, not {want}");
            // Whatever the screen is, a dialog or a permission question never reads as ready.
            if !matches!(*want, "ready" | "busy") {
                assert_ne!(look(&screen, &patterns, Some(prog)), Look::Ready, "{file}");
            }
        }
    }

    #[test]
    fn tails_skip_blank_lines() {
        assert_eq!(tail("a\n\nb\n\n\nsim>\n\n", 2), "b\nsim>");
        assert_eq!(tail("", 3), "");
    }
}
