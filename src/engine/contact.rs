//! First contact with real programs, in the engine: each session of a known program whose
//! screen changed is looked at (at most every `LOOK_EVERY`; a later look is put on the
//! engine's timers), and one whose dialog may need another look with no change on screen (an
//! unknown menu settling, an answer that may need repeating, a conversation file to find) is
//! looked at again `RELOOK` later. A dialog the town
//! owns is answered by typing its keys (one key at a time, `KEY_GAP` apart, the way a person
//! would); a dialog that needs the human makes the agent waiting at once, with its reason, and
//! a menu the town does not know does so once a second look (`UNKNOWN_SETTLE` later) still
//! shows it, so a frame caught mid-redraw is not taken for a question. A screen inside a
//! synchronized update (half drawn) is looked at only once the update has been open for
//! `SYNC_PATIENCE`. Nothing else is typed while a dialog shows: not the first prompt, not a
//! nudge.
//!
//! Keys into the PTY, not settings files, answer the dialogs: Claude Code rewrites
//! `~/.claude.json` itself while it runs, so a second writer would race it; a key press is what
//! the program expects and touches no file the program owns.
//!
//! Also here: the runtime's conversation (resume) and the start errors no restart can fix.

use super::{Engine, Live};
use crate::agent::program::{Answer, Program, Resume, Seen};
use crate::beads::{agent_state, ev, Agent, Store};
use crate::Result;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A changed screen is looked at no more often than this.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// An unchanged screen is looked at again after this long, while a dialog may need it.
const RELOOK: Duration = Duration::from_secs(1);
/// Between the keys of one answer.
const KEY_GAP: Duration = Duration::from_millis(150);
/// An answered dialog that still shows after this long is answered again ...
const ANSWER_AGAIN: Duration = Duration::from_secs(3);
/// ... at most this many times; then it is the human's.
const MAX_ANSWERS: u32 = 3;
/// A menu the town does not know must still show this long after it was first seen.
const UNKNOWN_SETTLE: Duration = Duration::from_millis(500);
/// A screen inside a synchronized update is looked at anyway once the update has been open
/// this long (a program that never closes one must not hide its dialogs forever).
const SYNC_PATIENCE: Duration = Duration::from_millis(300);

/// The engine's first-contact memory of one session.
#[derive(Debug, Default)]
pub(crate) struct Contact {
    seen_bytes: u64,
    seen_at: Option<Instant>,
    /// Why the agent waits, while a dialog that needs the human is on screen.
    pub waiting: Option<String>,
    /// The last dialog answered: its id, when, and how often.
    answered: Option<(&'static str, Instant, u32)>,
    /// Keys still to type, each at its instant.
    keys: VecDeque<(Instant, &'static str)>,
    /// Since when an unknown menu has shown on every look.
    unknown_at: Option<Instant>,
    /// Since when the screen has been inside a synchronized update, while a look waits.
    sync_since: Option<Instant>,
}

impl Contact {
    /// Whether nothing is being typed into the terminal by first contact right now.
    pub fn quiet_for_prompt(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether an unchanged screen needs another look: an unknown menu may have settled, an
    /// answered dialog may need its answer again.
    fn relook(&self) -> bool {
        self.unknown_at.is_some() || self.answered.is_some()
    }
}

/// The dialog on `screen` for a session of `program` (none for programs the town does not
/// know: the sim, a shell).
pub(crate) fn dialog_on(program: Option<&'static Program>, screen: &str) -> Option<Seen> {
    program.and_then(|p| p.dialog(screen))
}

/// A dialog in a few words, for refusals and the feed.
pub(crate) fn describe(seen: &Seen) -> String {
    match seen {
        Seen::Known(d) => match &d.answer {
            Answer::Human(reason) => (*reason).to_string(),
            Answer::Trust(_) => "a folder-trust question".into(),
            Answer::Bypass(_) => "a bypass-permissions warning".into(),
        },
        Seen::Unknown => UNKNOWN.into(),
    }
}

/// Whether what the screen shows is the runtime's permission question: a menu the town does
/// not know as a dialog, which the runtime's waiting pattern knows.
pub(crate) fn is_permission_menu(
    seen: Option<&Seen>,
    patterns: &super::witness::Patterns,
    screen: &str,
) -> bool {
    seen == Some(&Seen::Unknown)
        && patterns
            .waiting
            .as_ref()
            .is_some_and(|r| r.is_match(screen))
}

const UNKNOWN: &str = "asks a question the town does not know: drill down and answer it";
const ASKS_PERMISSION: &str = "asks permission: drill down and answer it";

/// The arguments that start or continue the runtime's own conversation for `a`.
pub(crate) fn conversation_args(
    store: &Store,
    a: &Agent,
    resume: Resume,
    continuing: bool,
    mut args: Vec<String>,
) -> Result<Vec<String>> {
    let bead = a.hooked_bead.as_deref();
    match resume {
        Resume::Named { start, resume } => {
            let id = match (&a.conversation, continuing) {
                (Some(id), true) => {
                    args.extend([resume.to_string(), id.clone()]);
                    id.clone()
                }
                _ => {
                    let id = uuid::Uuid::new_v4().to_string();
                    args.extend([start.to_string(), id.clone()]);
                    id
                }
            };
            store.agent_set_conversation(&a.name, Some(&id), bead)?;
        }
        Resume::Discovered { subcommand } => match (&a.conversation, continuing) {
            (Some(id), true) => {
                let mut with = vec![subcommand.to_string(), id.clone()];
                with.append(&mut args);
                args = with;
            }
            // The program names it; the engine finds it once the session has started.
            _ => store.agent_set_conversation(&a.name, None, None)?,
        },
        Resume::Latest(resume_args) => {
            if continuing {
                args.extend(resume_args.iter().map(|s| s.to_string()));
            }
            store.agent_set_conversation(&a.name, Some("latest"), bead)?;
        }
    }
    Ok(args)
}

impl Engine {
    /// Looks at the screens of known programs, answers the dialogs the town owns and marks
    /// the rest waiting. True when an agent's state changed.
    pub(crate) fn first_contact(
        &mut self,
        looks: &std::collections::BTreeSet<String>,
    ) -> Result<bool> {
        let now = Instant::now();
        let mut changed = false;
        for name in looks {
            let name = name.clone();
            let Some(live) = self.live.get_mut(&name) else {
                continue;
            };
            let Some(program) = live.program else {
                continue;
            };
            if live.stopping.is_some() {
                continue;
            }
            if let Some((home, since)) = &live.discover {
                if live.contact.seen_at.is_none_or(|t| now - t >= RELOOK) {
                    if let Some(id) = crate::agent::program::codex_session(home, &live.cwd, *since)
                    {
                        live.discover = None;
                        let bead = live.bead.clone();
                        self.store
                            .agent_set_conversation(&name, Some(&id), bead.as_deref())?;
                    }
                }
            }
            if self.live.get(&name).is_some_and(|l| l.discover.is_some()) {
                self.look_at(now + RELOOK, &name);
            }
            let Some(live) = self.live.get_mut(&name) else {
                continue;
            };
            // Keys of an answer go out one at a time.
            while let Some((due, key)) = live.contact.keys.front().copied() {
                if now < due {
                    break;
                }
                live.contact.keys.pop_front();
                live.session.write(key.as_bytes())?;
            }
            if let Some((due, _)) = live.contact.keys.front().copied() {
                self.look_at(due, &name);
                continue;
            }
            let bytes = live.session.bytes_read();
            let c = &mut live.contact;
            let next = match c.seen_at {
                None => None,
                Some(at) if bytes != c.seen_bytes => Some(at + LOOK_EVERY),
                Some(at) if c.relook() => Some(at + RELOOK),
                // Nothing new, nothing pending: the next output wakes it.
                Some(_) => continue,
            };
            if let Some(at) = next.filter(|at| now < *at) {
                self.look_at(at, &name);
                continue;
            }
            // A frame half drawn is no answer to anything: look again when it is finished (its
            // output wakes the session) or when patience runs out.
            if live.session.with_screen(|s| s.synchronized_update()) {
                let since = *c.sync_since.get_or_insert(now);
                if now - since < SYNC_PATIENCE {
                    self.look_at(since + SYNC_PATIENCE, &name);
                    continue;
                }
            }
            c.sync_since = None;
            c.seen_bytes = bytes;
            c.seen_at = Some(now);
            let screen = live.session.capture(false);
            let seen = program.dialog(&screen);
            if is_permission_menu(seen.as_ref(), &live.patterns, &screen) {
                changed |= self.wait_for_human(&name, ASKS_PERMISSION)?;
                continue;
            }
            changed |= self.contact(&name, program, seen, &screen, now)?;
            if let Some(live) = self.live.get(&name) {
                if let Some((due, _)) = live.contact.keys.front().copied() {
                    self.look_at(due, &name);
                } else if live.contact.relook() {
                    self.look_at(now + RELOOK, &name);
                }
            }
        }
        Ok(changed)
    }

    /// Acts on what one session's screen shows.
    fn contact(
        &mut self,
        name: &str,
        program: &'static Program,
        seen: Option<Seen>,
        screen: &str,
        now: Instant,
    ) -> Result<bool> {
        let in_town = self
            .live
            .get(name)
            .is_some_and(|l| l.cwd.starts_with(&self.town.root));
        let bypass = self.live.get(name).is_some_and(|l| l.bypass);
        if !matches!(seen, Some(Seen::Unknown)) {
            if let Some(l) = self.live.get_mut(name) {
                l.contact.unknown_at = None;
            }
        }
        let (id, label, why) = match seen {
            None => {
                // The dialog is gone (the human answered it): the Witness takes over again.
                if let Some(l) = self.live.get_mut(name) {
                    l.contact.waiting = None;
                    l.contact.answered = None;
                }
                return Ok(false);
            }
            Some(Seen::Unknown) => {
                let Some(live) = self.live.get_mut(name) else {
                    return Ok(false);
                };
                let since = *live.contact.unknown_at.get_or_insert(now);
                if now - since < UNKNOWN_SETTLE {
                    return Ok(false);
                }
                return self.wait_for_human(name, UNKNOWN);
            }
            Some(Seen::Known(d)) => match &d.answer {
                Answer::Human(reason) => return self.wait_for_human(name, reason),
                Answer::Trust(label) if in_town => (
                    d.id,
                    *label,
                    format!(
                        "{}'s folder-trust question: {} is a worktree the town made",
                        program.name,
                        self.live.get(name).map(|l| l.cwd.display().to_string()).unwrap_or_default()
                    ),
                ),
                Answer::Trust(_) => {
                    return self.wait_for_human(
                        name,
                        "asks to trust a folder the town did not make: answer it yourself",
                    )
                }
                Answer::Bypass(label) if bypass => (
                    d.id,
                    *label,
                    format!(
                        "{}'s bypass-permissions warning: the runtime's command asks for bypass",
                        program.name
                    ),
                ),
                Answer::Bypass(_) => {
                    return self.wait_for_human(
                        name,
                        "shows a bypass-permissions warning its runtime did not ask for: answer it yourself",
                    )
                }
            },
        };
        let Some(keys) = crate::agent::program::keys_to_choose(screen, label) else {
            return self.wait_for_human(
                name,
                &format!(
                    "shows {} without a \"{label}\" option the town can choose: answer it yourself",
                    describe(seen.as_ref().expect("a dialog was seen"))
                ),
            );
        };
        let Some(live) = self.live.get_mut(name) else {
            return Ok(false);
        };
        let tries = match live.contact.answered {
            Some((last, at, _)) if last == id && now - at < ANSWER_AGAIN => return Ok(false),
            Some((last, _, n)) if last == id => n,
            _ => 0,
        };
        if tries >= MAX_ANSWERS {
            return self.wait_for_human(
                name,
                "shows a dialog the town answered three times without effect: answer it yourself",
            );
        }
        live.contact.answered = Some((id, now, tries + 1));
        for (i, key) in keys.into_iter().enumerate() {
            live.contact
                .keys
                .push_back((now + KEY_GAP * (i as u32 + 1), key));
        }
        self.store
            .record_event(name, ev::ANSWERED, "engine", &why)?;
        Ok(true)
    }

    /// The agent waits for the human, for `reason`: recorded at once (no debounce: a dialog
    /// does not flicker), and the Witness surfaces it.
    fn wait_for_human(&mut self, name: &str, reason: &str) -> Result<bool> {
        let Some(live) = self.live.get_mut(name) else {
            return Ok(false);
        };
        if live.contact.waiting.as_deref() == Some(reason) {
            return Ok(false);
        }
        live.contact.waiting = Some(reason.to_string());
        live.watch.force(agent_state::WAITING);
        self.store
            .agent_set_state(name, agent_state::WAITING, reason, "witness")?;
        Ok(true)
    }

    /// A session that ended on a start error no restart can fix: the agent is dead with the
    /// reason and the fix, and is not restarted until something changes. True when it was.
    pub(super) fn fatal_start(&mut self, name: &str, live: &Live, how: &str) -> Result<bool> {
        let Some(program) = live.program else {
            return Ok(false);
        };
        let output = live.session.capture(true);
        let Some(f) = program.fatal(&output) else {
            return Ok(false);
        };
        let reason = format!("{} ({how}). Fix: {}", f.reason, f.fix);
        self.store
            .agent_set_state(name, agent_state::DEAD, &reason, "witness")?;
        self.escalate(
            name,
            &format!("{name} cannot start: {}", f.reason),
            &format!(
                "{name} ({}) stopped at start: {}.\nFix: {}\nIt is not restarted until you do: gastown-tui restart {name}",
                program.name, f.reason, f.fix
            ),
        )?;
        Ok(true)
    }
}
