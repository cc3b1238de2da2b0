//! The real Claude Code (2.1.197) as a town's polecats, through the engine, against a scripted
//! Anthropic Messages server: first contact, the whole loop, the hooks, resume and handoff.
//!
//! Each town's HOME is a user's first day with Claude Code after signing in once
//! (`~/.claude.json` says the onboarding is done): no folder is trusted and the bypass warning
//! was never accepted, so the engine must answer both for every worktree. The runtime is
//! pointed at the server by its environment in town.toml, as a user would do for a proxy.

#[path = "models/anthropic.rs"]
mod anthropic;
mod common;
#[allow(unused_imports)]
mod models;

use common::real::{
    assert_costs_match, check_whole_loop, debug_copy, feed, jsonl_under, polecat_dir, sling_to,
    SeenTurn,
};
use common::{agent, merged, path_with, real_town, wait_long, TestTown, Up};
use models::{polecat, Action, Logged, Polecat, Server, Turn};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// town.toml for Claude Code against `server`: the variables that point it there, keep it off
/// the network otherwise, and let it take the bypass flag as root.
fn claude_env(server: &Server) -> String {
    format!(
        "[runtimes.claude.env]\n\
         ANTHROPIC_BASE_URL = \"{}\"\n\
         ANTHROPIC_AUTH_TOKEN = \"scripted\"\n\
         CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = \"1\"\n\
         DISABLE_AUTOUPDATER = \"1\"\n\
         CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL = \"1\"\n\
         IS_SANDBOX = \"1\"\n",
        server.url()
    )
}

/// A town whose default runtime is `claude`, its HOME signed in once and nothing else.
fn claude_town(server: &Server) -> TestTown {
    let t = real_town("claude", &claude_env(server));
    std::fs::write(
        t.dir.path().join(".claude.json"),
        r#"{"hasCompletedOnboarding": true}"#,
    )
    .unwrap();
    t
}

/// The shipped price of the model the scripted server names (claude-opus-4-8).
const OPUS: common::real::Price = [15.0, 75.0, 1.5, 18.75];

/// What `who`'s Claude transcripts under `home` hold: per answer (message id, its last line),
/// input, output, cache read, cache write.
fn transcript_tokens(home: &Path, t: &TestTown, who: &str) -> [i64; 4] {
    let project = polecat_dir(t, who)
        .display()
        .to_string()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let mut answers: std::collections::BTreeMap<String, [i64; 4]> = Default::default();
    let files = jsonl_under(&home.join(".claude/projects"), &|p| {
        p.parent()
            .and_then(|d| d.file_name())
            .is_some_and(|d| d.to_string_lossy() == project)
    });
    for (_, lines) in files {
        for v in lines {
            let u = &v["message"]["usage"];
            if v["type"] != "assistant" || !u.is_object() {
                continue;
            }
            let n = |k: &str| u[k].as_i64().unwrap_or(0);
            answers.insert(
                v["message"]["id"].as_str().unwrap().to_string(),
                [
                    n("input_tokens"),
                    n("output_tokens"),
                    n("cache_read_input_tokens"),
                    n("cache_creation_input_tokens"),
                ],
            );
        }
    }
    answers.values().fold([0; 4], |mut s, a| {
        for i in 0..4 {
            s[i] += a[i];
        }
        s
    })
}

fn up(t: &TestTown, cli: &Path) -> Up {
    Up::start_with(t, &[path_with(cli)])
}

/// The turn requests that came from the polecat working in `worktree`.
fn turns_of(server: &Server, worktree: &Path) -> Vec<Logged> {
    server
        .turns()
        .into_iter()
        .filter(|l| anthropic::cwd_of(&l.body).as_deref() == Some(worktree))
        .collect()
}

/// The user texts of a request (prompts and nudges, not tool results), oldest first.
fn user_texts(l: &Logged) -> Vec<String> {
    anthropic::turn_of(&l.body).user_texts
}

#[test]
fn two_claude_polecats_go_from_sling_to_merged_with_no_key_pressed() {
    let Some(cli) = models::cli("claude") else {
        return;
    };
    // Each polecat first answers with words only (GUPP must nudge it), and its first change
    // breaks the tests (the Refinery must send it back with FIX_NEEDED).
    let server = anthropic::start(polecat(Polecat {
        file: "{bead}.txt".into(),
        break_tests: true,
        polite: true,
        ..Polecat::default()
    }));
    let t = claude_town(&server);
    let _up = up(&t, &cli);
    debug_copy(&t, "claude");
    let (a, who_a) = sling_to(&t, &cli, "Add the first file");
    let (b, who_b) = sling_to(&t, &cli, "Add the second file");
    wait_long(&t, "both beads merged", 240, || {
        merged(&t, &a) && merged(&t, &b)
    });
    let polecats = [(a, who_a), (b, who_b)];
    check_whole_loop(&t, &polecats, |who| {
        turns_of(&server, &polecat_dir(&t, who))
            .iter()
            .map(|l| {
                let turn = anthropic::turn_of(&l.body);
                SeenTurn {
                    user_texts: turn.user_texts,
                    results: turn.results,
                }
            })
            .collect()
    });
    // What each polecat spent is what its transcripts hold, priced at the shipped price.
    for (_, who) in &polecats {
        assert_costs_match(&t, who, OPUS, || transcript_tokens(t.dir.path(), &t, who));
    }
    let events = feed(&t);
    for (_, who) in &polecats {
        // The engine answered the trust question and the bypass warning; nobody else typed.
        for dialog in ["folder-trust question", "bypass-permissions warning"] {
            assert!(
                events.iter().any(|e| e["kind"] == "answered"
                    && e["subject"] == who.as_str()
                    && e["detail"].as_str().unwrap_or("").contains(dialog)),
                "{who}: no answer to the {dialog}: {events:#?}"
            );
        }
        // Claude's hooks reported the turns: working, then idle, through agent-event.
        let reported: Vec<&str> = events
            .iter()
            .filter(|e| {
                e["kind"] == "agent_state"
                    && e["subject"] == who.as_str()
                    && e["detail"] == "reported by the agent"
            })
            .filter_map(|e| e["new_value"].as_str())
            .collect();
        let working = reported.iter().position(|s| *s == "working");
        assert!(
            working.is_some_and(|i| reported[i..].contains(&"idle")),
            "{who}: the hooks did not report working then idle: {reported:?}"
        );
    }
}

/// What the held polecat says until it is let go.
const WAIT: &str = "I will wait until I am told again.";

/// Whether Claude's transcript of `conversation` under `home` holds `text` (Claude writes it
/// a moment after the answer shows; a kill before that loses the turn).
fn transcript_has(home: &Path, conversation: &str, text: &str) -> bool {
    let Ok(projects) = std::fs::read_dir(home.join(".claude/projects")) else {
        return false;
    };
    projects.flatten().any(|p| {
        std::fs::read_to_string(p.path().join(format!("{conversation}.jsonl")))
            .is_ok_and(|t| t.contains(text))
    })
}

/// The turn requests after the first `mark`.
fn turns_after(server: &Server, mark: usize) -> Vec<Logged> {
    server.turns().into_iter().skip(mark).collect()
}

fn conversation(t: &TestTown, who: &str) -> Option<String> {
    agent(t, who)["conversation"].as_str().map(str::to_string)
}

#[test]
fn a_claude_polecat_resumes_after_a_kill_9_and_a_restart_and_starts_fresh_after_handoff() {
    let Some(cli) = models::cli("claude") else {
        return;
    };
    // The polecat only says WAIT until the test lets it go, then does its work.
    let released = Arc::new(AtomicBool::new(false));
    let work = polecat(Polecat {
        file: "{bead}.txt".into(),
        ..Polecat::default()
    });
    let go = released.clone();
    let server = anthropic::start(Arc::new(move |turn: &Turn| {
        if go.load(Ordering::SeqCst) || !turn.results.is_empty() {
            work(turn)
        } else {
            Action::Say(WAIT.into())
        }
    }));
    let t = claude_town(&server);
    let home = t.dir.path().to_path_buf();
    let mut engine = up(&t, &cli);
    let (bead, who) = sling_to(&t, &cli, "Add a file");
    let first = wait_conversation(&t, &server, &who, &home);

    // The engine dies with kill -9; its successor resumes the same conversation.
    engine.0.kill().unwrap();
    engine.0.wait().unwrap();
    let mark = server.turns().len();
    let _engine = up(&t, &cli);
    wait_long(&t, "a turn after the engine's restart", 120, || {
        turns_after(&server, mark)
            .iter()
            .any(|l| anthropic::cwd_of(&l.body) == Some(polecat_dir(&t, &who)))
    });
    let after = turns_after(&server, mark);
    assert!(
        after[0].body.to_string().contains(WAIT),
        "the resumed conversation's request holds the earlier answer: {}",
        after[0].body
    );
    assert_eq!(conversation(&t, &who).as_deref(), Some(first.as_str()));

    // `restart` continues it too.
    wait_long(&t, "the transcript of the resumed turn", 60, || {
        transcript_has(&home, &first, WAIT)
    });
    let mark = server.turns().len();
    t.gt().args(["restart", &who]).assert().success();
    wait_long(&t, "a turn after restart", 120, || {
        !turns_after(&server, mark).is_empty()
    });
    let after = turns_after(&server, mark);
    assert!(
        after[0].body.to_string().contains(WAIT),
        "{}",
        after[0].body
    );

    // A handoff starts a fresh conversation: nothing of the earlier ones in its request.
    let mark = server.turns().len();
    t.gt().args(["handoff", &who]).assert().success();
    wait_long(&t, "a turn after the handoff", 120, || {
        !turns_after(&server, mark).is_empty()
    });
    let after = turns_after(&server, mark);
    assert!(
        !after[0].body.to_string().contains(WAIT),
        "a handoff's first request carries no earlier turn: {}",
        after[0].body
    );
    assert_eq!(
        user_texts(&after[0]).len(),
        1,
        "{:?}",
        user_texts(&after[0])
    );
    let fresh = conversation(&t, &who).expect("a conversation after the handoff");
    assert_ne!(fresh, first);

    // Let it work: the bead still ends merged.
    released.store(true, Ordering::SeqCst);
    wait_long(&t, "the bead merged", 180, || merged(&t, &bead));
    // Across the kill -9, the resumes and the handoff, every answer counted once.
    assert_costs_match(&t, &who, OPUS, || transcript_tokens(&home, &t, &who));
}

/// Waits for the polecat's first answer to be in the server's log and in Claude's transcript,
/// and returns the conversation id the engine gave it.
fn wait_conversation(t: &TestTown, server: &Server, who: &str, home: &Path) -> String {
    wait_long(t, "the first answer", 120, || {
        server
            .turns()
            .iter()
            .any(|l| l.action == Some(Action::Say(WAIT.into())))
    });
    let id = conversation(t, who).expect("the engine names Claude's conversation");
    wait_long(t, "the transcript of the first answer", 60, || {
        transcript_has(home, &id, WAIT)
    });
    id
}
