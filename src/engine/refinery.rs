//! The Refinery: each rig's merge queue, one merge at a time per rig, oldest request first.
//!
//! A job runs on its own thread (git and the tests take time; the engine loop must not wait):
//! make, in memory, the commit the branch lands as (the rig's `merge_style`: one squashed
//! commit named after the bead by default, a merge commit, or the branch's commits rebased),
//! record it on the request, check it out in the rig's scratch worktree (`<rig>/refinery`), run
//! the rig's setup and test commands with the rig's timeout (the whole process group is killed
//! when it runs out), and only if they pass move the target branch to exactly that commit, from
//! exactly the commit it was made on. Nothing merges unless its tests ran and passed: a rig
//! without `test_command` merges nothing unless town.toml says `merge_without_tests = true`.
//!
//! The commit is in the store before the target moves, so a merge cut off by a crash is known
//! for what it was: merged when that commit is on the target, else tried again. Whether a
//! polecat's branch is merged is read from these records (the branch commit a merge came from
//! and the commit it produced), since a squashed branch is never an ancestor of the target.
//!
//! The engine applies the verdict to the store: merged (the bead closes, its convoy moves on),
//! red (rejected with the test log's tail; the bead goes back to its polecat with a FIX_NEEDED
//! mail), conflict (rejected with the files; a "resolve merge conflict" bead takes the original's
//! place in its convoys), or back in the queue when the target moved during the tests.

use super::Engine;
use crate::beads::Store;
use crate::beads::{dep, kind, mr_state, MergeRequest, NewBead};
use crate::town::merge::{self, Landing, Message};
use crate::town::{worktree, MergeStyle, RigConfig, Town};
use crate::{Error, Result};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How much of a test log is kept (the store keeps its own tail of this).
const LOG_KEEP: usize = 64 * 1024;

/// What a merge job found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    Merged {
        /// The commit the target moved to (or already held).
        commit: String,
        /// The branch commit it was made from.
        source: String,
        style: MergeStyle,
        log: String,
    },
    Red {
        reason: String,
        log: String,
    },
    Conflict {
        files: Vec<String>,
    },
    /// The target moved while the tests ran: try again on the new target.
    Requeue {
        reason: String,
    },
    Refused {
        reason: String,
    },
}

/// A merge job in flight for one rig.
pub(crate) struct Job {
    pub mr: i64,
    pub rx: mpsc::Receiver<Verdict>,
}

impl Engine {
    /// Collects finished jobs and starts the next request of every idle rig.
    pub(crate) fn refinery(&mut self) -> Result<bool> {
        let mut changed = false;
        let rigs: Vec<String> = self.jobs.keys().cloned().collect();
        for rig in rigs {
            let verdict = match self.jobs.get(&rig).map(|j| j.rx.try_recv()) {
                Some(Ok(v)) => v,
                Some(Err(mpsc::TryRecvError::Empty)) | None => continue,
                Some(Err(mpsc::TryRecvError::Disconnected)) => Verdict::Refused {
                    reason: "the merge job died".into(),
                },
            };
            if let Some(job) = self.jobs.remove(&rig) {
                self.apply(job.mr, verdict)?;
                changed = true;
            }
        }
        let queue = self.store.merge_requests(None)?;
        for (rig, cfg) in self.town.config.rigs.clone() {
            if self.jobs.contains_key(&rig) {
                continue;
            }
            let Some(next) = queue
                .iter()
                .find(|m| m.rig == rig && m.state == mr_state::QUEUED)
            else {
                continue;
            };
            let mr = self
                .store
                .mr_set_state(next.id, mr_state::TESTING, "", "", "refinery")?;
            let (tx, rx) = mpsc::channel();
            let town = self.town.clone();
            let job_mr = mr.clone();
            let msg = self.message(&mr);
            std::thread::Builder::new()
                .name(format!("refinery-{rig}"))
                .spawn(move || {
                    let verdict =
                        run_job(&town, &cfg, &job_mr, &msg).unwrap_or_else(|e| Verdict::Refused {
                            reason: format!("refinery error: {e}"),
                        });
                    let _ = tx.send(verdict);
                })
                .map_err(|e| Error::io("start", "a merge job", e))?;
            self.jobs.insert(rig, Job { mr: mr.id, rx });
            changed = true;
        }
        Ok(changed)
    }

    /// Records a verdict: the request's state and everything that follows from it.
    fn apply(&mut self, id: i64, verdict: Verdict) -> Result<()> {
        let mr = self.store.mr(id)?;
        match verdict {
            Verdict::Merged {
                commit,
                source,
                style,
                log,
            } => {
                let short: String = commit.chars().take(10).collect();
                self.store
                    .mr_record_commit(id, style.as_str(), &source, &commit)?;
                self.store.mr_set_state(
                    id,
                    mr_state::MERGED,
                    &format!("merged as {short}"),
                    &log,
                    "refinery",
                )?;
                if let Some(bead) = &mr.bead_id {
                    self.store
                        .close(bead, &format!("merged mr-{id} as {short}"), "refinery")?;
                }
            }
            Verdict::Red { reason, log } => {
                self.store
                    .mr_set_state(id, mr_state::REJECTED, &reason, &log, "refinery")?;
                self.send_back(&mr, &reason, &log)?;
            }
            Verdict::Conflict { files } => {
                let reason = format!("conflicts in {}", files.join(", "));
                self.store
                    .mr_set_state(id, mr_state::CONFLICT, &reason, "", "refinery")?;
                self.resolve_bead(&mr, &files)?;
            }
            Verdict::Requeue { reason } => {
                self.store
                    .mr_set_state(id, mr_state::QUEUED, &reason, "", "refinery")?;
            }
            Verdict::Refused { reason } => {
                self.store
                    .mr_set_state(id, mr_state::REJECTED, &reason, "", "refinery")?;
            }
        }
        Ok(())
    }

    /// The words of the commit a request lands as: the bead's id and title, then the branch
    /// and the request.
    fn message(&self, mr: &MergeRequest) -> Message {
        let title = mr
            .bead_id
            .as_deref()
            .and_then(|b| self.store.get(b).ok())
            .map(|b| b.title);
        let subject = match (&mr.bead_id, title) {
            (Some(id), Some(title)) => format!("{id}: {title}"),
            (Some(id), None) => id.clone(),
            (None, _) => format!("Merge {}", mr.branch),
        };
        Message {
            subject,
            body: format!(
                "Branch {} by {}, merge request mr-{}.",
                mr.branch, mr.submitter, mr.id
            ),
        }
    }

    /// Red tests: the bead goes back on its polecat's hook with a FIX_NEEDED mail.
    fn send_back(&mut self, mr: &MergeRequest, reason: &str, log: &str) -> Result<()> {
        let Some(bead) = &mr.bead_id else {
            return Ok(());
        };
        let title = self.store.get(bead).map(|b| b.title).unwrap_or_default();
        let tail = crate::beads::mq_tail(log, 2000);
        let from = format!("{}/refinery", mr.rig);
        let to = if mr.rig.is_empty() {
            mr.submitter.clone()
        } else {
            format!("{}/{}", mr.rig, mr.submitter)
        };
        match self.store.hook(&mr.submitter, bead, "refinery") {
            Ok(()) => {
                self.store.mail_send(
                    &from,
                    &to,
                    &format!("FIX_NEEDED: {bead} {title}"),
                    &format!(
                        "mr-{} was rejected: {reason}. Fix it on {} and run gastown-tui done again.\n\n{tail}",
                        mr.id, mr.branch
                    ),
                )?;
            }
            Err(e) => {
                // The polecat cannot take it back: the overseer decides.
                self.store.mail_send(
                    &from,
                    "overseer",
                    &format!("mr-{} rejected; {bead} needs an owner", mr.id),
                    &format!(
                        "{reason}. It could not go back to {}: {e}\n\n{tail}",
                        mr.submitter
                    ),
                )?;
            }
        }
        Ok(())
    }

    /// A conflict: a new bead to redo the work on top of the target takes the original's
    /// place in its convoys; the original closes as superseded (its branch is kept).
    fn resolve_bead(&mut self, mr: &MergeRequest, files: &[String]) -> Result<()> {
        let Some(bead) = &mr.bead_id else {
            return Ok(());
        };
        let orig = self.store.get(bead)?;
        let target = self
            .town
            .config
            .rigs
            .get(&mr.rig)
            .map(|r| r.branch.clone())
            .unwrap_or_else(|| "main".into());
        let new = self.store.create(
            &NewBead {
                title: format!("Resolve merge conflict: {}", orig.title),
                description: format!(
                    "{}\n\nThe Refinery could not merge {} (mr-{}): conflicts in {}. Redo this \
                     work on top of the current {target}.",
                    orig.description,
                    mr.branch,
                    mr.id,
                    files.join(", ")
                ),
                acceptance_criteria: orig.acceptance_criteria.clone(),
                issue_type: Some(if kind::WORK.contains(&orig.issue_type.as_str()) {
                    orig.issue_type.clone()
                } else {
                    kind::TASK.to_string()
                }),
                priority: Some(orig.priority.min(1)),
                labels: vec!["merge-conflict".into()],
                ..Default::default()
            },
            "refinery",
        )?;
        self.store
            .add_dep(&new.id, bead, dep::SUPERSEDES, "refinery")?;
        for d in self.store.dependents(bead)? {
            if d.dep_type == dep::TRACKS {
                self.store
                    .convoy_add(&d.issue_id, std::slice::from_ref(&new.id), "refinery")?;
            }
        }
        self.store.close(
            bead,
            &format!(
                "superseded by {} after a merge conflict (mr-{})",
                new.id, mr.id
            ),
            "refinery",
        )?;
        Ok(())
    }
}

/// A test hook: `GT_TEST_REFINERY_CRASH=before-advance|after-advance` ends the engine at
/// once (as kill -9 would) at that moment of a merge, so tests can show what a crash there
/// leaves.
fn crash_point(at: &str) {
    if std::env::var("GT_TEST_REFINERY_CRASH").is_ok_and(|v| v == at) {
        tracing::error!("GT_TEST_REFINERY_CRASH: ending the engine {at}");
        std::process::abort();
    }
}

/// The whole merge of one request, off the engine thread.
fn run_job(town: &Town, rig: &RigConfig, mr: &MergeRequest, msg: &Message) -> Result<Verdict> {
    let repo_dir = town.rig_repo(&mr.rig);
    let repo = git2::Repository::open(&repo_dir)?;
    let base = merge::branch_tip(&repo, &rig.branch)?;
    let style = rig.merge_style;
    // What already landed is recorded as such, whatever the rig's config says now.
    if let Some(v) = landed_before(&repo, mr, base, style)? {
        return Ok(v);
    }
    if rig.test_command.is_none() && !rig.merge_without_tests {
        return Ok(Verdict::Refused {
            reason: format!(
                "rig '{}' has no test_command: the Refinery merges nothing untested (set \
                 test_command, or merge_without_tests = true, in town.toml)",
                mr.rig
            ),
        });
    }
    // The branch's tip, read once: what is merged is exactly what is recorded as its source.
    let tip = merge::branch_tip(&repo, &mr.branch)?;
    let made = match style {
        MergeStyle::Squash => merge::squash_onto(&repo, tip, base, msg)?,
        MergeStyle::Merge => merge::merge_onto(&repo, tip, base, msg)?,
        MergeStyle::Rebase => merge::rebase_onto(&repo, tip, base)?,
    };
    let commit = match made {
        Landing::Conflict(files) => return Ok(Verdict::Conflict { files }),
        Landing::Clean(c) if c == base => {
            return Ok(Verdict::Merged {
                commit: base.to_string(),
                source: tip.to_string(),
                style,
                log: format!("nothing to merge: {} already holds this change", rig.branch),
            })
        }
        Landing::Clean(c) => c,
    };
    // Written before the target can move: after a crash, this commit on the target is what
    // says the request merged.
    Store::open(&town.db_path(), &town.config.prefix, crate::clock::system())?.mr_record_commit(
        mr.id,
        style.as_str(),
        &tip.to_string(),
        &commit.to_string(),
    )?;
    let scratch = town.rig_dir(&mr.rig).join("refinery");
    merge::prepare_scratch(&repo_dir, &scratch, &rig.branch, commit)?;
    let mut log = String::new();
    if let Some(red) = run_gate(rig, &scratch, &mut log)? {
        return Ok(red);
    }
    crash_point("before-advance");
    let reflog = format!("refinery: {} mr-{} ({})", style, mr.id, mr.branch);
    if !merge::advance_branch(&repo, &rig.branch, base, commit, &reflog)? {
        return Ok(Verdict::Requeue {
            reason: format!(
                "{} moved during the tests; testing again on top of it",
                rig.branch
            ),
        });
    }
    crash_point("after-advance");
    let _ = merge::sync_checkout(&repo_dir, &rig.branch);
    if let Some(remote) = &rig.push_remote {
        if let Err(e) = merge::push(&repo, remote, &rig.branch) {
            log.push_str(&format!("\npush to {remote} failed: {e}\n"));
        }
    }
    Ok(Verdict::Merged {
        commit: commit.to_string(),
        source: tip.to_string(),
        style,
        log,
    })
}

/// A request that is on the target already: the commit it recorded got there (an engine that
/// died between moving the target and saying so), or its branch is part of the target.
fn landed_before(
    repo: &git2::Repository,
    mr: &MergeRequest,
    base: git2::Oid,
    style: MergeStyle,
) -> Result<Option<Verdict>> {
    let on_target = |c: git2::Oid| worktree::on_target(repo, base, c);
    let recorded = mr
        .merge_commit
        .as_deref()
        .and_then(|c| worktree::commit_named(repo, c));
    if let Some(c) = recorded {
        if on_target(c)? {
            return Ok(Some(Verdict::Merged {
                commit: c.to_string(),
                source: mr.source_tip.clone().unwrap_or_default(),
                style: MergeStyle::try_from(mr.style.clone()).unwrap_or(style),
                log: "already on the target branch (merged before a restart)".into(),
            }));
        }
    }
    if let Ok(tip) = merge::branch_tip(repo, &mr.branch) {
        if on_target(tip)? {
            return Ok(Some(Verdict::Merged {
                commit: tip.to_string(),
                source: tip.to_string(),
                style,
                log: "already on the target branch".into(),
            }));
        }
    }
    Ok(None)
}

/// Runs the rig's setup and test commands in `dir`, appending to `log`; the verdict when
/// one of them failed or ran out of time.
fn run_gate(rig: &RigConfig, dir: &Path, log: &mut String) -> Result<Option<Verdict>> {
    for (what, cmd) in [("setup", &rig.setup_command), ("tests", &rig.test_command)] {
        let Some(cmd) = cmd else { continue };
        log.push_str(&format!("$ {cmd}\n"));
        let run = run_with_timeout(cmd, dir, rig.test_timeout)?;
        log.push_str(&run.output);
        let reason = if run.timed_out {
            format!(
                "{what} timed out after {}",
                humantime::format_duration(rig.test_timeout)
            )
        } else if !run.success {
            format!("{what} failed ({})", run.status)
        } else {
            continue;
        };
        return Ok(Some(Verdict::Red {
            reason,
            log: std::mem::take(log),
        }));
    }
    Ok(None)
}

struct Run {
    success: bool,
    status: String,
    timed_out: bool,
    output: String,
}

/// Runs `sh -c cmd` in `dir` in its own process group; on timeout the whole group is killed.
fn run_with_timeout(cmd: &str, dir: &Path, timeout: Duration) -> Result<Run> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io("run", dir, e))?;
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut readers = Vec::new();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut stream = stream;
            let mut buf = [0u8; 8192];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let start = Instant::now();
    let mut out: Vec<u8> = Vec::new();
    let keep = |bytes: Vec<u8>, out: &mut Vec<u8>| {
        out.extend_from_slice(&bytes);
        if out.len() > LOG_KEEP * 2 {
            out.drain(..out.len() - LOG_KEEP);
        }
    };
    let mut timed_out = false;
    let status = loop {
        while let Ok(bytes) = rx.try_recv() {
            keep(bytes, &mut out);
        }
        if let Some(s) = child
            .try_wait()
            .map_err(|e| Error::io("wait for", dir, e))?
        {
            break s;
        }
        if start.elapsed() >= timeout {
            timed_out = true;
            // SAFETY: kill(2) on the child's own process group (negative pid).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            break child.wait().map_err(|e| Error::io("wait for", dir, e))?;
        }
        if let Ok(bytes) = rx.recv_timeout(Duration::from_millis(20)) {
            keep(bytes, &mut out);
        }
    };
    if timed_out {
        // Grandchildren may hold the pipes: do not wait for them.
        drop(readers);
    } else {
        for r in readers {
            let _ = r.join();
        }
    }
    while let Ok(bytes) = rx.try_recv() {
        keep(bytes, &mut out);
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    Ok(Run {
        success: status.success() && !timed_out,
        status: match status.code() {
            Some(c) => format!("exit code {c}"),
            None => "killed".into(),
        },
        timed_out,
        output: text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_run_with_a_timeout_that_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let ok =
            run_with_timeout("echo hi; echo err >&2", dir.path(), Duration::from_secs(10)).unwrap();
        assert!(ok.success && !ok.timed_out);
        assert!(ok.output.contains("hi") && ok.output.contains("err"));
        let red =
            run_with_timeout("echo FAIL; exit 4", dir.path(), Duration::from_secs(10)).unwrap();
        assert!(!red.success);
        assert_eq!(red.status, "exit code 4");
        let hang = run_with_timeout(
            "sleep 30 & sleep 30",
            dir.path(),
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(hang.timed_out && !hang.success);
    }
}
