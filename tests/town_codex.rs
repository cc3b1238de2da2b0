//! The real Codex CLI (0.171.0) as a town's polecats, through the engine, against a scripted
//! OpenAI Responses server: the whole loop, a first day with no sign-in, and resume after the
//! engine is killed.
//!
//! Each town's HOME is the test's temp dir, so Codex's home is `HOME/.codex`. Its
//! `config.toml` names the scripted server as the model provider (its key from an environment
//! variable the runtime gets in town.toml, as a user would set it) and pre-answers the model
//! upgrade notice; no folder is trusted, so the engine must answer "Trust this folder?" (Codex
//! saves the answer for the rig's main repository, so later worktrees of that rig are not
//! asked again).
//!
//! Codex's shell tool runs a login shell by default, whose `/etc/profile` (Debian) resets the
//! PATH the engine gives the agent; the preset runs it with `-c allow_login_shell=false`, and
//! [`path_kept`] fails a test at once should `gastown-tui` go missing from the model's
//! commands again.

mod common;
#[allow(unused_imports)]
mod models;
#[path = "models/openai.rs"]
mod openai;

use common::real::{
    assert_costs_match, check_whole_loop, debug_copy, feed, jsonl_under, polecat_dir, sling_to,
    SeenTurn,
};
use common::{agent, capture, merged, path_with, real_town, wait_long, TestTown, Up};
use models::{alive, kill_procs_of, polecat, procs_of, Action, Logged, Polecat, Server};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The key variable the scripted provider reads; town.toml gives it to the runtime.
const KEY_VAR: &str = "GT_SCRIPTED_OPENAI_KEY";
/// A model in Codex's catalog that gets the `apply_patch` tool (see tests/real_codex.rs).
const MODEL: &str = "gpt-5.5";
/// What a polite polecat first says.
const POLITE: &str = "I will wait until I am told again.";

/// The shipped price of gpt-5.5 (USD per million input, output, cache read, cache write).
const GPT_5_5: common::real::Price = [1.25, 10.0, 0.125, 0.0];

/// What `who`'s Codex rollouts (those whose `session_meta` names its worktree) hold: each
/// model response's `token_usage_record` once, its input without the cached part.
fn rollout_tokens(t: &TestTown, who: &str) -> [i64; 4] {
    let wt = polecat_dir(t, who);
    let mut responses: std::collections::BTreeMap<String, [i64; 4]> = Default::default();
    for (_, lines) in jsonl_under(&t.dir.path().join(".codex/sessions"), &|_| true) {
        let cwd = lines
            .first()
            .and_then(|m| m["payload"]["cwd"].as_str())
            .map(PathBuf::from);
        if cwd.as_deref() != Some(wt.as_path()) {
            continue;
        }
        for v in lines {
            let (p, u) = (&v["payload"], &v["payload"]["usage"]);
            if v["type"] != "token_usage_record" || !u.is_object() {
                continue;
            }
            let n = |k: &str| u[k].as_i64().unwrap_or(0);
            let key = format!("{}:{}:{}", p["thread_id"], p["turn_id"], p["response_id"]);
            let (cached, written) = (n("cached_input_tokens"), n("cache_write_input_tokens"));
            responses.insert(
                key,
                [
                    n("input_tokens") - cached - written,
                    n("output_tokens"),
                    cached,
                    written,
                ],
            );
        }
    }
    responses.values().fold([0; 4], |mut s, a| {
        for i in 0..4 {
            s[i] += a[i];
        }
        s
    })
}

/// town.toml for Codex: the provider's key, as a user would give it to the runtime.
fn codex_env() -> String {
    format!("[runtimes.codex.env]\n{KEY_VAR} = \"x\"\n")
}

/// `$CODEX_HOME/config.toml` pointing Codex at `server`; no project is trusted.
fn codex_config(server: &Server) -> String {
    format!(
        r#"model = "{MODEL}"
model_provider = "scripted"
check_for_update_on_startup = false

[model_providers.scripted]
name = "Scripted"
base_url = "{url}/v1"
wire_api = "responses"
env_key = "{KEY_VAR}"

[notice.model_migrations]
"{MODEL}" = "gpt-6-sol"

[analytics]
enabled = false
"#,
        url = server.url(),
    )
}

/// A town whose default runtime is `codex`, its HOME with Codex pointed at `server` (or,
/// with `None`, nothing at all: a real first day). Leftover processes of that HOME are
/// killed when the returned guard drops.
fn codex_town(server: Option<&Server>, extra: &str) -> (TestTown, Reaper) {
    let t = real_town("codex", &format!("{}{extra}", codex_env()));
    if let Some(server) = server {
        let home = t.dir.path().join(".codex");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("config.toml"), codex_config(server)).unwrap();
    }
    let reaper = Reaper(t.dir.path().to_path_buf());
    (t, reaper)
}

/// Kills, on drop, whatever still runs with the town's temp dir in its command line or
/// environment (Codex's processes outlive a killed engine's PTY only by accident, and the
/// first-day run may start Codex's background app-server).
struct Reaper(PathBuf);

impl Reaper {
    fn pids(&self) -> Vec<i32> {
        leftovers(&self.0)
    }

    fn kill(&self) {
        kill_procs_of(&self.0);
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Processes (not this one) whose command line or environment names `dir`.
fn leftovers(dir: &Path) -> Vec<i32> {
    procs_of(dir).into_iter().map(|(pid, _)| pid).collect()
}

/// Codex's processes of this town: its command line names codex.
fn codex_pids(dir: &Path) -> Vec<i32> {
    leftovers(dir)
        .into_iter()
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmd).contains("codex") && alive(*pid)
        })
        .collect()
}

/// Fails at once when a command the model ran in Codex's shell found no `gastown-tui`.
///
/// Codex 0.171 runs its shell tool as a login shell (`bash -lc`, `allow_login_shell` defaults
/// to true) and snapshots a login shell's environment; on Debian `/etc/profile` resets PATH,
/// so the engine's bin dir, which the engine puts first on the agent's PATH, is gone from the
/// model's commands (`gastown-tui prime` exits 127) unless Codex runs with
/// `allow_login_shell=false`.
fn path_kept(server: &Server) {
    let lost = server.turns().into_iter().find_map(|l| {
        openai::turn_of(&l.body)
            .results
            .into_iter()
            .find(|r| r.contains("gastown-tui: command not found"))
    });
    if let Some(result) = lost {
        panic!(
            "Codex's shell lost the PATH the engine gave the agent (its login shell's \
             /etc/profile reset it): a tool result says:\n{result}\n\
             (the engine must launch codex with `-c allow_login_shell=false`)"
        );
    }
}

fn up(t: &TestTown, cli: &Path) -> Up {
    Up::start_with(t, &[path_with(cli)])
}

/// The working directory Codex reports in a request: the `<cwd>` of its
/// `<environment_context>` user message.
fn cwd_of(body: &Value) -> Option<PathBuf> {
    let items = body.get("input")?.as_array()?;
    items.iter().find_map(|item| {
        let parts = item.get("content")?.as_array()?;
        parts.iter().find_map(|p| {
            let text = p.get("text")?.as_str()?;
            let rest = text
                .trim_start()
                .strip_prefix("<environment_context>")?
                .split_once("<cwd>")?
                .1;
            Some(PathBuf::from(rest.split_once("</cwd>")?.0))
        })
    })
}

/// The turn requests that came from the polecat working in `worktree`.
fn turns_of(server: &Server, worktree: &Path) -> Vec<Logged> {
    server
        .turns()
        .into_iter()
        .filter(|l| cwd_of(&l.body).as_deref() == Some(worktree))
        .collect()
}

/// The assistant texts of a request's conversation, oldest first.
fn assistant_texts(body: &Value) -> Vec<String> {
    body.get("input")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|i| i.get("role").and_then(Value::as_str) == Some("assistant"))
        .filter_map(|i| i.get("content").and_then(Value::as_array))
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<String>()
        })
        .collect()
}

fn dump(t: &TestTown, server: &Server) {
    if std::env::var_os("GT_TEST_DEBUG").is_some() {
        let out = t.gt().args(["feed", "--limit", "300"]).output().unwrap();
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        for l in server.turns() {
            eprintln!(
                "TURN {:?} {:?} -> {:?}",
                cwd_of(&l.body),
                openai::turn_of(&l.body),
                l.action
            );
        }
    }
}

#[test]
fn two_codex_polecats_go_from_sling_to_merged_with_no_key_pressed() {
    let Some(cli) = models::cli("codex") else {
        return;
    };
    let started = Instant::now();
    // Each polecat first answers with words only (GUPP must nudge it), and its first change
    // breaks the tests (the Refinery must send it back with FIX_NEEDED).
    let server = openai::start(polecat(Polecat {
        file: "{bead}.txt".into(),
        break_tests: true,
        polite: true,
        show_env: true,
    }));
    // The runtime's command as a user may write it, without the preset's `-c` flags (a `-c`
    // happens to keep Codex 0.171 off its daemon too, undocumented): the engine adds
    // `--no-daemon` to any codex command. The login shell stays off in config.toml.
    let (t, reaper) = codex_town(
        Some(&server),
        "[runtimes.codex]\ncommand = [\"codex\", \"--dangerously-bypass-approvals-and-sandbox\"]\n",
    );
    let config = t.dir.path().join(".codex/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("allow_login_shell = false\n{text}")).unwrap();
    // Codex's shared daemon for this CODEX_HOME, already running with somebody else's
    // environment (as when another agent's Codex started it): the polecats' commands must not
    // run in it.
    let intruder = intruder_daemon(&t, &cli);
    let up = up(&t, &cli);
    debug_copy(&t, "loop");
    let (a, who_a) = sling_to(&t, &cli, "Add the first file");
    let (b, who_b) = sling_to(&t, &cli, "Add the second file");
    wait_long(&t, "both beads merged", 100, || {
        path_kept(&server);
        merged(&t, &a) && merged(&t, &b)
    });
    eprintln!("both merged after {:?}", started.elapsed());
    // Each ran its commands with its own identity, none with the daemon's.
    for (bead, who) in [(&a, &who_a), (&b, &who_b)] {
        let results: Vec<String> = turns_of(&server, &polecat_dir(&t, who))
            .iter()
            .flat_map(|l| openai::turn_of(&l.body).results)
            .collect();
        assert!(
            results
                .iter()
                .any(|r| r.contains(&models::env_line(who, bead))),
            "{who}'s commands ran with another environment: {results:#?}"
        );
        assert!(
            !results.iter().any(|r| r.contains("intruder")),
            "{results:#?}"
        );
    }
    assert!(
        intruder.iter().all(|pid| alive(*pid)),
        "the daemon was somebody else's: left alone"
    );

    let events = feed(&t);
    dump(&t, &server);
    assert!(
        server.requests().iter().any(|l| !l.side),
        "no turn reached the scripted server"
    );
    // The engine answered Codex's folder-trust question. Codex saves the answer for the
    // worktree's main repository (`<town>/demo/repo`), so a polecat whose Codex starts after
    // another's answer was saved is trusted without a question; nobody else typed.
    let answered = |who: &str| {
        events.iter().any(|e| {
            e["kind"] == "answered"
                && e["subject"] == who
                && e["detail"]
                    .as_str()
                    .unwrap_or("")
                    .contains("folder-trust question")
        })
    };
    let config = std::fs::read_to_string(t.dir.path().join(".codex/config.toml")).unwrap();
    let repo_trusted = config.contains(&format!(
        "[projects.\"{}\"]\ntrust_level = \"trusted\"",
        t.root().join("demo/repo").display()
    ));
    assert!(repo_trusted, "Codex did not save the trust: {config}");
    assert!(
        answered(&who_a) || answered(&who_b),
        "no answer to the folder-trust question: {events:#?}"
    );
    for who in [&who_a, &who_b] {
        if !answered(who) {
            eprintln!("{who} was not asked: the rig's repo was trusted when its Codex started");
        }
    }
    for who in [&who_a, &who_b] {
        assert_costs_match(&t, who, GPT_5_5, || rollout_tokens(&t, who));
    }
    check_whole_loop(&t, &[(a, who_a.clone()), (b, who_b.clone())], |who| {
        turns_of(&server, &polecat_dir(&t, who))
            .iter()
            .map(|l| {
                let turn = openai::turn_of(&l.body);
                SeenTurn {
                    user_texts: turn.user_texts,
                    results: turn.results,
                }
            })
            .collect()
    });
    // Done and reaped (idle with an empty hook past reap_after, which the engine reads again
    // when town.toml changes): nothing either polecat's sessions started is left running.
    let cfg = t.root().join("town.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("reap_after = \"30m\"", "reap_after = \"1s\""),
    )
    .unwrap();
    wait_long(&t, "both polecats reaped", 60, || {
        [&who_a, &who_b].iter().all(|w| {
            feed(&t)
                .iter()
                .any(|e| e["kind"] == "reaped" && e["subject"] == w.as_str())
                && common::agent(&t, w)["session"].is_null()
        })
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let left = loop {
        let left: Vec<(i32, String)> = [&who_a, &who_b]
            .iter()
            .flat_map(|w| processes_of_agent(&t, w))
            .map(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                (pid, String::from_utf8_lossy(&cmd).replace('\0', " "))
            })
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        left.is_empty(),
        "the reaped polecats left these running: {left:?}"
    );
    up.stop();
    drop(reaper);
    eprintln!("done after {:?}", started.elapsed());
}

/// Starts Codex's app-server daemon for the town's CODEX_HOME with an intruder's environment;
/// its pids.
fn intruder_daemon(t: &TestTown, cli: &Path) -> Vec<i32> {
    let home = t.dir.path().join(".codex");
    let out = std::process::Command::new(cli)
        .args(["app-server", "daemon", "start"])
        .env("HOME", t.dir.path())
        .env("CODEX_HOME", &home)
        .env("GT_AGENT", "intruder")
        .env("BD_ACTOR", "intruder")
        .env("GT_BEAD", "gt-intruder")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "codex app-server daemon start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pids: Vec<i32> = procs_of(&home)
        .into_iter()
        .filter(|(_, argv)| argv.iter().any(|a| a == "app-server"))
        .map(|(pid, _)| pid)
        .collect();
    assert!(!pids.is_empty(), "no daemon runs after `daemon start`");
    pids
}

/// The live processes whose environment names `agent` of `t`'s town as its GT_AGENT: whatever
/// its sessions started.
fn processes_of_agent(t: &TestTown, agent: &str) -> Vec<i32> {
    common::processes_with(
        &[
            format!("GT_AGENT={agent}"),
            format!("GT_TOWN={}", t.root().display()),
        ],
        None,
    )
}

#[test]
fn codex_with_no_credentials_is_waiting_for_sign_in_and_nothing_is_typed() {
    let Some(cli) = models::cli("codex") else {
        return;
    };
    let started = Instant::now();
    // No config.toml: Codex has no provider, no key and no login.
    let (t, reaper) = codex_town(None, "");
    let up = up(&t, &cli);
    debug_copy(&t, "signin");
    let (_bead, who) = sling_to(&t, &cli, "Add a file");
    let signing_in = |a: &Value| {
        a["state"] == "waiting"
            && a["state_reason"]
                .as_str()
                .unwrap_or("")
                .contains("needs sign-in")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = agent(&t, &who);
        if signing_in(&a) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{who} is not waiting for sign-in after 30 s: {a:#}\nits screen:\n{}",
            capture(&t, &who)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("waiting for sign-in after {:?}", started.elapsed());
    let problems = t.json(&["feed", "--problems"]);
    assert!(
        problems
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == who.as_str()
                && p["state"] == "waiting"
                && p["reason"].as_str().unwrap_or("").contains("needs sign-in")),
        "{problems:#}"
    );
    // A nudge is refused: nothing is typed into the menu.
    let err = t.fails(&["nudge", &who, "hello"], 1);
    assert!(err.contains("showing a dialog"), "{err}");
    std::thread::sleep(Duration::from_secs(5));
    let a = agent(&t, &who);
    assert!(signing_in(&a), "{a:#}");
    let screen = capture(&t, &who);
    assert!(
        screen.contains("Sign in with ChatGPT"),
        "the sign-in menu moved:\n{screen}"
    );
    assert!(!screen.contains("hello"), "the nudge was typed:\n{screen}");
    up.stop();
    reaper.kill();
    assert!(
        reaper.pids().is_empty(),
        "processes outlived the test: {:?}",
        reaper.pids()
    );
    eprintln!("done after {:?}", started.elapsed());
}

#[test]
fn a_codex_polecat_resumes_its_conversation_after_the_engine_is_killed() {
    let Some(cli) = models::cli("codex") else {
        return;
    };
    let started = Instant::now();
    let server = openai::start(polecat(Polecat {
        file: "{bead}.txt".into(),
        break_tests: false,
        polite: true,
        ..Polecat::default()
    }));
    let (t, reaper) = codex_town(Some(&server), "");
    // GUPP waits long here, so the polite answer stays the last thing before the kill and the
    // restart's own prompt is what sets the polecat to work.
    let cfg = t.root().join("town.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("gupp_idle_after = \"3s\"", "gupp_idle_after = \"10m\""),
    )
    .unwrap();
    let mut first = up(&t, &cli);
    debug_copy(&t, "resume");
    let (bead, who) = sling_to(&t, &cli, "Add a file");
    let wt = polecat_dir(&t, &who);
    server.wait_for("the polite first answer", 60, |log| {
        log.iter().any(|l| {
            matches!(&l.action, Some(Action::Say(s)) if s == POLITE)
                && cwd_of(&l.body).as_deref() == Some(wt.as_path())
        })
    });
    wait_long(&t, "the conversation id found", 30, || {
        agent(&t, &who)["conversation"].is_string()
    });
    let a = agent(&t, &who);
    let conversation = a["conversation"].as_str().unwrap().to_string();
    eprintln!(
        "polite answer and conversation {conversation} after {:?}",
        started.elapsed()
    );
    let old = codex_pids(t.dir.path());
    assert!(!old.is_empty(), "no codex process runs");

    // The engine dies without stopping anything.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while old.iter().any(|p| alive(*p)) {
        assert!(
            Instant::now() < deadline,
            "codex outlived the killed engine: {old:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("old codex gone after {:?}", started.elapsed());
    let before = server.turns().len();

    let second = up(&t, &cli);
    // The engine started it again with `codex resume <id> ...`.
    let mut cmdline = None;
    wait_long(&t, "codex started again", 30, || {
        cmdline = agent(&t, &who)["pid"]
            .as_i64()
            .filter(|p| !old.contains(&(*p as i32)))
            .and_then(|p| cmdline_of(p as i32));
        cmdline.is_some()
    });
    let cmdline = cmdline.unwrap();
    eprintln!("restarted as {cmdline:?} after {:?}", started.elapsed());
    assert!(
        cmdline
            .windows(2)
            .any(|w| w[0] == "resume" && w[1] == conversation),
        "the session was not started with `resume {conversation}`: {cmdline:?}"
    );
    wait_long(&t, "the bead merged after the restart", 90, || {
        path_kept(&server);
        merged(&t, &bead)
    });
    dump(&t, &server);
    let events = feed(&t);
    assert!(
        !events
            .iter()
            .any(|e| e["kind"] == "agent_state" && e["new_value"] == "waiting"),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e["kind"] == "answered"
            && e["subject"] == who.as_str()
            && e["detail"]
                .as_str()
                .unwrap_or("")
                .contains("folder-trust question")),
        "{who}: no answer to the folder-trust question: {events:#?}"
    );
    // The next turn carries the earlier answer.
    let after: Vec<Logged> = server.turns()[before..]
        .iter()
        .filter(|l| cwd_of(&l.body).as_deref() == Some(wt.as_path()))
        .cloned()
        .collect();
    let next = after.first().expect("a turn after the restart");
    let said = assistant_texts(&next.body);
    assert!(
        said.iter().any(|s| s == POLITE),
        "the resumed turn lacks the earlier answer: {said:?}"
    );
    let texts = openai::turn_of(&next.body).user_texts;
    assert!(
        texts
            .iter()
            .filter(|x| x.contains("gastown-tui prime"))
            .count()
            >= 2,
        "{texts:?}"
    );
    // Before and after the resume, every response counted once.
    assert_costs_match(&t, &who, GPT_5_5, || rollout_tokens(&t, &who));
    second.stop();
    drop(reaper);
    eprintln!("done after {:?}", started.elapsed());
}

/// The command line of a live process.
fn cmdline_of(pid: i32) -> Option<Vec<String>> {
    if !alive(pid) {
        return None;
    }
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    (!args.is_empty()).then_some(args)
}
