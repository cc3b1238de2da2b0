//! Attention: telling the overseer when something needs them. The store's event trail is the
//! source (every state change is an event there, whichever process made it: the Witness, an
//! agent's own hook through `agent-event`, the Refinery), read from where the engine last
//! stopped. An agent becoming waiting, stalled or dead, a rejected merge, an escalation or a
//! budget reached runs `[notify] command` on a thread of its own (with a timeout, its failure
//! logged, never holding up a patrol) and goes to every attached cockpit, which rings. The
//! same kind for the same subject within `DEBOUNCE` is one notification.

use super::{Engine, Event};
use crate::beads::{agent_state, ev};
use crate::town::NotifyConfig;
use crate::Result;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often the event trail is read.
pub const NOTIFY_EVERY: Duration = Duration::from_millis(500);
/// The same kind for the same subject again within this long is not news.
const DEBOUNCE: Duration = Duration::from_secs(60);

/// Where the engine is in the event trail, and what it told lately.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    /// The last event id looked at (None until the first look, which starts at the end).
    after: Option<i64>,
    told: HashMap<(&'static str, String), Instant>,
}

/// What one notification says.
#[derive(Debug, Clone, PartialEq)]
struct Notice {
    kind: &'static str,
    agent: String,
    rig: String,
    bead: String,
    text: String,
}

/// The notify kind of an event, if it is one.
fn kind_of(e: &crate::beads::Event) -> Option<&'static str> {
    match e.kind.as_str() {
        ev::AGENT_STATE => match e.new_value.as_deref() {
            Some(agent_state::WAITING) => Some("waiting"),
            Some(agent_state::STALLED) => Some("stalled"),
            Some(agent_state::DEAD) => Some("dead"),
            _ => None,
        },
        ev::REJECTED => Some("rejected"),
        ev::ESCALATED => Some("escalated"),
        ev::BUDGET => Some("budget"),
        _ => None,
    }
}

impl Engine {
    /// Reads the events since the last look and notifies the ones `[notify]` asks for.
    pub(crate) fn notify(&mut self) -> Result<()> {
        let Some(after) = self.notifier.after else {
            let last = self.store.recent_events(1)?.last().map_or(0, |e| e.id);
            self.notifier.after = Some(last);
            return Ok(());
        };
        let events = self.store.events_after(after, 500)?;
        let Some(last) = events.last() else {
            return Ok(());
        };
        self.notifier.after = Some(last.id);
        let config = self.town.config.notify.clone();
        let now = Instant::now();
        self.notifier
            .told
            .retain(|_, at| now.duration_since(*at) < DEBOUNCE);
        for e in events {
            let Some(kind) = kind_of(&e) else { continue };
            if !config.events.iter().any(|k| k == kind) {
                continue;
            }
            let key = (kind, e.subject.clone());
            if self.notifier.told.contains_key(&key) {
                continue;
            }
            self.notifier.told.insert(key, now);
            let notice = self.notice(kind, &e);
            tracing::info!(kind, subject = %e.subject, "notify: {}", notice.text);
            let _ = self.events.send(Event::Attention {
                kind: kind.to_string(),
                agent: notice.agent.clone(),
                text: notice.text.clone(),
                bell: config.bell,
            });
            if !config.command.is_empty() {
                run_command(&config, notice);
            }
        }
        Ok(())
    }

    /// Who and what an event is about: its agent, rig and bead where the store knows them.
    fn notice(&self, kind: &'static str, e: &crate::beads::Event) -> Notice {
        let mut n = Notice {
            kind,
            agent: String::new(),
            rig: String::new(),
            bead: String::new(),
            text: e.summary(),
        };
        if let Ok(a) = self.store.agent(&e.subject) {
            n.agent = a.name;
            n.rig = a.rig;
            n.bead = a.hooked_bead.unwrap_or_default();
        } else if let Some(mr) = e
            .subject
            .strip_prefix("mr-")
            .and_then(|id| id.parse::<i64>().ok())
            .and_then(|id| self.store.mr(id).ok())
        {
            n.agent = mr.submitter;
            n.rig = mr.rig;
            n.bead = mr.bead_id.unwrap_or_default();
        } else if self.store.get(&e.subject).is_ok() {
            n.bead = e.subject.clone();
        }
        n
    }
}

/// Runs the notify command for `n` on a thread of its own: its environment says what
/// happened; it is killed after the timeout; a failure is logged.
fn run_command(config: &NotifyConfig, n: Notice) {
    let argv = config.command.clone();
    let timeout = config.timeout;
    let spawned = std::thread::Builder::new()
        .name("notify".into())
        .spawn(move || {
            let said = match run(&argv, &n, timeout) {
                Ran::Ok => return,
                Ran::NotStarted(e) => format!("could not start: {e}"),
                Ran::Failed(status) => format!("failed: {status}"),
                Ran::TimedOut => format!(
                    "ran past its {} timeout and was killed",
                    humantime::format_duration(timeout)
                ),
            };
            tracing::warn!("[notify] command {:?} {said}", argv[0]);
        });
    if let Err(e) = spawned {
        tracing::warn!("[notify]: cannot start a thread: {e}");
    }
}

/// How a notify command ended.
#[derive(Debug)]
enum Ran {
    Ok,
    NotStarted(std::io::Error),
    Failed(std::process::ExitStatus),
    TimedOut,
}

/// Runs `argv` with `n` in its environment and waits for it, at most `timeout`.
fn run(argv: &[String], n: &Notice, timeout: Duration) -> Ran {
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env("GT_NOTIFY_KIND", n.kind)
        .env("GT_NOTIFY_AGENT", &n.agent)
        .env("GT_NOTIFY_RIG", &n.rig)
        .env("GT_NOTIFY_BEAD", &n.bead)
        .env("GT_NOTIFY_TEXT", &n.text)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Ran::NotStarted(e),
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ran::Ok,
            Ok(Some(status)) => return Ran::Failed(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Ran::TimedOut;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Ran::NotStarted(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            kind: "stalled",
            agent: "nux".into(),
            rig: "demo".into(),
            bead: "gt-a1".into(),
            text: "nux is stalled".into(),
        }
    }

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_command_that_outlives_its_timeout_is_killed_and_failures_are_told_apart() {
        let long = Duration::from_secs(30);
        let check = argv(&[
            "sh",
            "-c",
            "test \"$GT_NOTIFY_KIND/$GT_NOTIFY_AGENT\" = stalled/nux",
        ]);
        assert!(matches!(run(&check, &notice(), long), Ran::Ok));
        assert!(matches!(
            run(&argv(&["sh", "-c", "exit 3"]), &notice(), long),
            Ran::Failed(s) if s.code() == Some(3)
        ));
        assert!(matches!(
            run(&argv(&["/no/such/notifier"]), &notice(), long),
            Ran::NotStarted(_)
        ));
        // TimedOut comes back only after the kill and the reap (`wait` returned).
        let hung = run(
            &argv(&["sleep", "30"]),
            &notice(),
            Duration::from_millis(200),
        );
        assert!(matches!(hung, Ran::TimedOut), "{hung:?}");
    }
}
