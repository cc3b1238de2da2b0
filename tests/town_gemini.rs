//! The real Gemini CLI (0.61.0) as a town's polecats, through the engine, against a scripted
//! Gemini API server: the whole loop with no key pressed, a town that was never signed in,
//! and a conversation resumed after the engine was killed.
//!
//! Each town's HOME is a user's day with Gemini CLI after signing in once with an API key
//! (`~/.gemini/settings.json` selects "gemini-api-key"; nothing else is answered: no folder is
//! trusted, the engine passes `--skip-trust` for its own worktrees). The runtime is pointed at
//! the server by its environment in town.toml, as a user would do for a proxy. The preset
//! runs `gemini --yolo --session-id UUID --skip-trust --prompt-interactive PROMPT` (or
//! `--resume UUID` when it continues the bead's conversation). Gemini relaunches itself as a
//! child node process; whatever still runs from a test's HOME when it ends is killed.

mod common;
#[path = "models/gemini.rs"]
mod gemini;
#[allow(unused_imports)]
mod models;

use common::real::{
    assert_costs_match, check_whole_loop, debug_copy, feed, jsonl_under, polecat_dir, sling_to,
    SeenTurn,
};
use common::{agent, capture, merged, path_with, real_town, wait_long, TestTown, Up};
use models::{kill_procs_of, polecat, procs_of, Logged, Polecat, Reaper, Server};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the polite polecat answers to its first prompt.
const POLITE: &str = "I will wait until I am told again.";

/// town.toml for Gemini CLI against `server`: a dummy key (it comes as `x-goog-api-key`) and
/// the base URL; nothing else may pick another way to the model.
fn gemini_env(server: &Server) -> String {
    format!(
        "[runtimes.gemini.env]\n\
         GEMINI_API_KEY = \"dummy\"\n\
         GOOGLE_GEMINI_BASE_URL = \"{}\"\n\
         GOOGLE_API_KEY = \"\"\n\
         GOOGLE_GENAI_USE_VERTEXAI = \"\"\n\
         GOOGLE_GENAI_USE_GCA = \"\"\n\
         GOOGLE_CLOUD_PROJECT = \"\"\n",
        server.url()
    )
}

/// What signing in once with the API key writes, plus no update checks and no usage
/// statistics (there is no network but the scripted server).
const SIGNED_IN: &str = r#"{
  "security": { "auth": { "selectedType": "gemini-api-key" } },
  "general": { "enableAutoUpdate": false, "enableAutoUpdateNotification": false },
  "privacy": { "usageStatisticsEnabled": false }
}
"#;

/// A town whose default runtime is `gemini`; its HOME signed in once when `signed_in`.
fn gemini_town(server: &Server, signed_in: bool) -> TestTown {
    let t = real_town("gemini", &gemini_env(server));
    if signed_in {
        let dir = t.dir.path().join(".gemini");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("settings.json"), SIGNED_IN).unwrap();
    }
    t
}

fn up(t: &TestTown, cli: &Path) -> Up {
    Up::start_with(t, &[path_with(cli)])
}

/// The turn requests that came from the polecat working in `worktree` (Gemini names its
/// workspace in the `<session_context>` it sends first).
fn turns_of(server: &Server, worktree: &Path) -> Vec<Logged> {
    server
        .turns()
        .into_iter()
        .filter(|l| gemini::workspace_of(&l.body).as_deref() == Some(worktree))
        .collect()
}

/// The user texts of a request (prompts and nudges, not tool results), oldest first.
fn user_texts(l: &Logged) -> Vec<String> {
    gemini::turn_of(&l.body).user_texts
}

fn primes(l: &Logged) -> usize {
    user_texts(l)
        .iter()
        .filter(|x| x.contains("gastown-tui prime"))
        .count()
}

fn debug_dump(t: &TestTown, server: &Server) {
    if std::env::var_os("GT_TEST_DEBUG").is_none() {
        return;
    }
    let out = t.gt().args(["feed", "--limit", "300"]).output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    for l in server.turns() {
        eprintln!(
            "TURN {:?} {:?} -> {:?}",
            gemini::workspace_of(&l.body),
            gemini::turn_of(&l.body),
            l.action
        );
    }
}

/// The gemini processes of `home` (node running the CLI, the launcher and its relaunched child).
fn gemini_procs(home: &Path) -> Vec<(i32, Vec<String>)> {
    procs_of(home)
        .into_iter()
        .filter(|(_, argv)| argv.iter().any(|a| a.contains("gemini")))
        .collect()
}

/// Waits up to `secs` for `ok` on the processes of `home`; returns what matched.
fn wait_proc(home: &Path, what: &str, secs: u64, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let procs = gemini_procs(home);
        if let Some((_, argv)) = procs.iter().find(|(_, a)| ok(a)) {
            return argv.clone();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the gemini processes: {procs:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The argument after `flag` in `argv`.
fn arg_after<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter()
        .position(|a| a == flag)
        .and_then(|i| argv.get(i + 1))
        .map(String::as_str)
}

/// Gemini's chat files under `home`: `~/.gemini/tmp/<project>/chats/session-*.jsonl`.
fn chat_files(home: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for project in std::fs::read_dir(home.join(".gemini/tmp"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for f in std::fs::read_dir(project.path().join("chats"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = f.path();
            if p.extension().is_some_and(|x| x == "jsonl") {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

/// The shipped price of gemini-3.8-flash (USD per million input, output, cache read, cache
/// write).
const FLASH: common::real::Price = [0.3, 2.5, 0.03, 0.0];

/// What `who`'s Gemini chat files hold: each model message once (by id, its last line), its
/// input without the cached part, its thoughts as output.
fn chat_tokens(t: &TestTown, who: &str) -> [i64; 4] {
    let mut messages: std::collections::BTreeMap<String, [i64; 4]> = Default::default();
    let chats = t.dir.path().join(".gemini/tmp").join(who);
    for (_, lines) in jsonl_under(&chats, &|_| true) {
        for v in lines {
            let k = &v["tokens"];
            let Some(id) = v["id"].as_str().filter(|_| k.is_object()) else {
                continue;
            };
            let n = |f: &str| k[f].as_i64().unwrap_or(0);
            messages.insert(
                id.to_string(),
                [
                    n("input") - n("cached") + n("tool"),
                    n("output") + n("thoughts"),
                    n("cached"),
                    0,
                ],
            );
        }
    }
    messages.values().fold([0; 4], |mut s, a| {
        for i in 0..4 {
            s[i] += a[i];
        }
        s
    })
}

fn agent_state(t: &TestTown, who: &str) -> (String, String) {
    let a = agent(t, who);
    (
        a["state"].as_str().unwrap_or("").to_string(),
        a["state_reason"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn two_gemini_polecats_go_from_sling_to_merged_with_no_key_pressed() {
    let Some(cli) = models::cli("gemini") else {
        return;
    };
    let started = Instant::now();
    // Each polecat first answers with words only (GUPP must nudge it), and its first change
    // breaks the tests (the Refinery must send it back with FIX_NEEDED).
    let server = gemini::start(polecat(Polecat {
        file: "{bead}.txt".into(),
        break_tests: true,
        polite: true,
        ..Polecat::default()
    }));
    let t = gemini_town(&server, true);
    let home = t.dir.path().to_path_buf();
    let _reaper = Reaper(home.clone());
    let up = up(&t, &cli);
    debug_copy(&t, "town-gemini-loop");
    let (a, who_a) = sling_to(&t, &cli, "Add the first file");
    let (b, who_b) = sling_to(&t, &cli, "Add the second file");

    // The argv the engine gives Gemini (the launcher; its relaunched child has the same).
    let argv = wait_proc(&home, "a gemini process", 30, |a| {
        a.iter().any(|x| x == "--prompt-interactive")
    });
    eprintln!("gemini argv: {argv:?}");
    for flag in [
        "--yolo",
        "--session-id",
        "--skip-trust",
        "--prompt-interactive",
    ] {
        assert!(argv.iter().any(|x| x == flag), "{flag} in {argv:?}");
    }
    assert!(
        arg_after(&argv, "--session-id").is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()),
        "{argv:?}"
    );
    assert!(
        arg_after(&argv, "--prompt-interactive").is_some_and(|p| p.contains("gastown-tui prime")),
        "{argv:?}"
    );

    wait_long(&t, "both beads merged", 110, || {
        merged(&t, &a) && merged(&t, &b)
    });
    eprintln!("both merged after {:?}", started.elapsed());

    debug_dump(&t, &server);
    for who in [&who_a, &who_b] {
        assert_costs_match(&t, who, FLASH, || chat_tokens(&t, who));
    }
    check_whole_loop(&t, &[(a, who_a), (b, who_b)], |who| {
        turns_of(&server, &polecat_dir(&t, who))
            .iter()
            .map(|l| {
                let turn = gemini::turn_of(&l.body);
                SeenTurn {
                    user_texts: turn.user_texts,
                    results: turn.results,
                }
            })
            .collect()
    });

    // Stopping the engine ends its agents' whole process groups: Gemini's relaunched child too.
    assert!(
        !gemini_procs(&home).is_empty(),
        "gemini still runs before the stop"
    );
    let status = up.stop();
    assert!(status.success(), "the engine stopped with {status}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !procs_of(&home).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        procs_of(&home).is_empty(),
        "left after the engine stopped: {:?}",
        procs_of(&home)
    );
    eprintln!("done after {:?}", started.elapsed());
}

#[test]
fn gemini_not_signed_in_is_waiting_and_nothing_is_typed() {
    let Some(cli) = models::cli("gemini") else {
        return;
    };
    let server = gemini::start(polecat(Polecat {
        file: "{bead}.txt".into(),
        ..Polecat::default()
    }));
    // No settings.json: Gemini asks how to authenticate (GEMINI_API_KEY only preselects).
    let t = gemini_town(&server, false);
    let home = t.dir.path().to_path_buf();
    let _reaper = Reaper(home.clone());
    let _up = up(&t, &cli);
    debug_copy(&t, "town-gemini-signin");
    let (_bead, who) = sling_to(&t, &cli, "Add a file");

    let started = Instant::now();
    wait_long(&t, "the agent waiting for sign-in", 60, || {
        let (state, reason) = agent_state(&t, &who);
        state == "waiting" && reason.contains("needs sign-in")
    });
    eprintln!(
        "waiting after {:?}: {:?}",
        started.elapsed(),
        agent_state(&t, &who)
    );
    let screen = capture(&t, &who);
    assert!(
        screen.contains("How would you like to authenticate for this project?"),
        "{screen}"
    );

    // A nudge is refused: nothing is typed into the dialog.
    let err = t.fails(&["nudge", &who, "hello"], 1);
    assert!(err.contains("showing a dialog"), "{err}");
    std::thread::sleep(Duration::from_secs(5));
    let (state, reason) = agent_state(&t, &who);
    assert_eq!(state, "waiting", "{reason}");
    assert!(reason.contains("needs sign-in"), "{reason}");
    let screen = capture(&t, &who);
    assert!(
        screen.contains("How would you like to authenticate for this project?"),
        "{screen}"
    );
    assert!(!screen.contains("hello"), "{screen}");
    // No turn reached the model, and the town answered nothing.
    assert!(server.turns().is_empty(), "{:?}", server.turns().len());
    assert!(
        !feed(&t)
            .iter()
            .any(|e| e["kind"] == "answered" && e["subject"] == who.as_str()),
        "the town answered a dialog"
    );
    assert!(
        !home.join(".gemini/settings.json").exists()
            || !std::fs::read_to_string(home.join(".gemini/settings.json"))
                .unwrap_or_default()
                .contains("selectedType"),
        "a sign-in was chosen"
    );
}

#[test]
fn a_gemini_polecat_resumes_its_conversation_after_the_engine_is_killed() {
    let Some(cli) = models::cli("gemini") else {
        return;
    };
    let started = Instant::now();
    let server = gemini::start(polecat(Polecat {
        file: "{bead}.txt".into(),
        break_tests: false,
        polite: true,
        ..Polecat::default()
    }));
    let t = gemini_town(&server, true);
    // GUPP waits longer here, so the polite answer is the whole conversation when the
    // engine is killed (the restart's own prompt, not a nudge, gets the work going).
    let cfg = t.root().join("town.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("gupp_idle_after = \"3s\""), "{text}");
    std::fs::write(
        &cfg,
        text.replace("gupp_idle_after = \"3s\"", "gupp_idle_after = \"30s\""),
    )
    .unwrap();
    let home = t.dir.path().to_path_buf();
    let _reaper = Reaper(home.clone());
    let mut first = up(&t, &cli);
    debug_copy(&t, "town-gemini-resume");
    let (bead, who) = sling_to(&t, &cli, "Add a file");
    let wt = polecat_dir(&t, &who);

    // The polite answer is in the server's log and in Gemini's chat file.
    server.wait_for("the polite answer", 60, |log| {
        log.iter().any(|l| {
            l.action == Some(models::Action::Say(POLITE.into()))
                && gemini::workspace_of(&l.body).as_deref() == Some(wt.as_path())
        })
    });
    wait_long(&t, "the polite answer in Gemini's chat file", 20, || {
        chat_files(&home).iter().any(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .contains(POLITE)
        })
    });
    let conversation = agent(&t, &who)["conversation"]
        .as_str()
        .expect("the agent's conversation id")
        .to_string();
    let argv = wait_proc(&home, "the first gemini", 10, |a| {
        a.iter().any(|x| x == "--session-id")
    });
    assert_eq!(
        arg_after(&argv, "--session-id"),
        Some(conversation.as_str()),
        "{argv:?}"
    );
    assert_eq!(
        turns_of(&server, &wt).len(),
        1,
        "only the polite turn before the kill"
    );
    eprintln!("polite answer saved after {:?}", started.elapsed());

    // The engine dies at once; Gemini (launcher and relaunched child) outlives its hangup.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    kill_procs_of(&home);
    assert!(procs_of(&home).is_empty(), "{:?}", procs_of(&home));
    let before = server.turns().len();

    let _second = up(&t, &cli);
    let argv = wait_proc(&home, "gemini restarted with --resume", 30, |a| {
        a.iter().any(|x| x == "--resume")
    });
    eprintln!("restarted gemini argv: {argv:?}");
    assert_eq!(
        arg_after(&argv, "--resume"),
        Some(conversation.as_str()),
        "{argv:?}"
    );
    assert!(!argv.iter().any(|x| x == "--session-id"), "{argv:?}");

    server.wait_for("a turn after the restart", 60, |log| {
        log.iter()
            .filter(|l| !l.side)
            .skip(before)
            .any(|l| gemini::workspace_of(&l.body).as_deref() == Some(wt.as_path()))
    });
    let after: Vec<Logged> = server
        .turns()
        .into_iter()
        .skip(before)
        .filter(|l| gemini::workspace_of(&l.body).as_deref() == Some(wt.as_path()))
        .collect();
    let next = &after[0];
    let history = next.body["contents"].to_string();
    assert!(
        history.contains(POLITE),
        "the earlier answer is in the history: {history}"
    );
    assert!(
        primes(next) >= 2,
        "the first prompt and the restart's: {:?}",
        user_texts(next)
    );
    wait_long(&t, "the bead merged", 90, || merged(&t, &bead));
    debug_dump(&t, &server);
    let repo = git2::Repository::open(t.root().join("demo/repo")).unwrap();
    let tree = repo
        .find_branch("main", git2::BranchType::Local)
        .unwrap()
        .get()
        .peel_to_tree()
        .unwrap();
    assert!(
        tree.get_name(&format!("{bead}.txt")).is_some(),
        "{bead}.txt"
    );
    eprintln!("merged after {:?}", started.elapsed());
}
