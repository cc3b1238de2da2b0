//! The real Codex CLI against a scripted OpenAI Responses server, in a PTY.
//!
//! Codex is pointed at the server by a `model_provider` in `$CODEX_HOME/config.toml` whose
//! key comes from an environment variable, so no sign-in menu shows; the folder is trusted
//! and the model-upgrade notice is answered in the same file, so no first-run screen needs a
//! key press. `--no-daemon` keeps Codex from starting its background app-server (which would
//! outlive the test); whatever still runs from the test's CODEX_HOME at the end is killed.

// `mod.rs` imports `std::io::Read`, which its `dyn Read` reader does not need.
#[allow(unused_imports)]
mod models;
#[path = "models/openai.rs"]
mod openai;
#[path = "common/tmux.rs"]
mod tmux;

use gastown_tui::agent::{Session, SessionSpec};
use models::{plan, Action, Server};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Codex waits at its input prompt (the footer shows, and no turn is running).
const READY: &str = r"(?m)^  ← for agents · \? for shortcuts";
/// A turn is running (the model streams or a command runs).
const BUSY: &str = r"Working \([0-9hms ]+ • esc to interrupt\)";
/// Codex asks whether to run a command (or make edits).
const PERMISSION: &str =
    r"Would you like to (?:run the following command|make the following edits)\?";
/// First-run screens.
const TRUST: &str = r"Trust this folder\?";
const SIGN_IN: &str = r"Sign in with ChatGPT";
const MODEL_UPGRADE: &str = r"(?m)^. 1\. Try new model$";

/// The key variable the scripted provider reads.
const KEY_VAR: &str = "GT_SCRIPTED_OPENAI_KEY";
/// The model: one in Codex's built-in catalog that gets the `apply_patch` tool (a model it
/// does not know gets no edit tool), with its upgrade notice pre-answered.
const MODEL: &str = "gpt-5.5";

fn is(re: &str, screen: &str) -> bool {
    Regex::new(re).expect("a valid regex").is_match(screen)
}

fn is_ready(screen: &str) -> bool {
    is(READY, screen) && !is(BUSY, screen)
}

/// A temp HOME/CODEX_HOME and work dir; on drop, kills what runs from that CODEX_HOME.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(server: &Server) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("gt-codex-")
            .tempdir()
            .expect("a temp dir");
        let sb = Sandbox { dir };
        std::fs::create_dir_all(sb.codex_home()).unwrap();
        std::fs::create_dir_all(sb.work()).unwrap();
        std::fs::write(
            sb.home().join(".gitconfig"),
            "[user]\n\tname = Test User\n\temail = test@example.com\n",
        )
        .unwrap();
        let work = sb.work();
        let config = format!(
            r#"model = "{MODEL}"
model_provider = "scripted"
check_for_update_on_startup = false

[model_providers.scripted]
name = "Scripted"
base_url = "{url}/v1"
wire_api = "responses"
env_key = "{KEY_VAR}"

[projects."{work}"]
trust_level = "trusted"

[notice.model_migrations]
"{MODEL}" = "gpt-6-sol"

[features]
daemon_auto_start = false

[analytics]
enabled = false
"#,
            url = server.url(),
            work = work.display(),
        );
        std::fs::write(sb.codex_home().join("config.toml"), config).unwrap();
        std::fs::write(work.join("AGENTS.md"), "# Notes\nKeep answers short.\n").unwrap();
        sb
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn codex_home(&self) -> PathBuf {
        self.home().join(".codex")
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Runs codex with `args` (after the flags every run gets) in a 40x120 PTY, recorded (for
    /// [`tmux::Looks`]).
    fn spawn(&self, codex: &Path, args: &[&str]) -> Session {
        let flags = ["--no-daemon", "--dangerously-bypass-approvals-and-sandbox"];
        self.spawn_with(codex, &flags, args)
    }

    /// Runs codex with `flags`, then `args`, in a recorded 40x120 PTY.
    fn spawn_with(&self, codex: &Path, flags: &[&str], args: &[&str]) -> Session {
        let mut spec = SessionSpec::new(codex.to_string_lossy(), self.work());
        spec.rows = 40;
        spec.cols = 120;
        spec.recording = Some(tmux::recording_in(self.dir.path()));
        // `resume` takes the flags after the subcommand.
        let (sub, rest) = match args.split_first() {
            Some((&"resume", rest)) => (Some("resume"), rest),
            _ => (None, args),
        };
        spec.args = sub
            .into_iter()
            .chain(flags.iter().copied())
            .chain(rest.iter().copied())
            .map(String::from)
            .collect();
        spec.env = vec![
            ("HOME".into(), self.home().display().to_string()),
            ("CODEX_HOME".into(), self.codex_home().display().to_string()),
            (KEY_VAR.into(), "sk-scripted".into()),
            ("OPENAI_API_KEY".into(), String::new()),
        ];
        Session::spawn(spec, Arc::new(|| {})).expect("codex starts")
    }

    /// Processes whose command line or environment names this sandbox.
    fn leftovers(&self) -> Vec<i32> {
        models::procs_of(self.dir.path())
            .into_iter()
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Ends what still runs from this sandbox (a CLI's daemon or relaunched child).
    fn kill_leftovers(&self) {
        models::kill_procs_of(self.dir.path());
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.kill_leftovers();
    }
}

fn stop(s: &Session) {
    s.kill().expect("kill codex");
    assert!(
        s.wait_timeout(Duration::from_secs(10)).is_some(),
        "codex did not end"
    );
}

#[test]
fn codex_runs_a_command_writes_a_file_and_resumes_after_a_kill() {
    let Some(codex) = models::cli("codex") else {
        return;
    };
    let prompt = "Create the marker file, then the notes.";
    let server = openai::start(plan(
        vec![(
            "Create the marker",
            vec![
                Action::Shell("echo made > marker.txt && echo marker-ok".into()),
                Action::Write {
                    path: "notes/out.txt".into(),
                    content: "a draft\n".into(),
                },
                // An `*** Add File` patch replaces a file that exists.
                Action::Write {
                    path: "notes/out.txt".into(),
                    content: "first line\nsecond line\n".into(),
                },
            ],
        )],
        "done",
    ));
    let sb = Sandbox::new(&server);
    let s = sb.spawn(&codex, &[prompt]);

    server.wait_for("the turn's final answer", 60, |log| {
        log.iter()
            .any(|l| matches!(&l.action, Some(Action::Say(t)) if t == "done"))
    });
    // The screens the test waits for are also compared with tmux's for the same bytes.
    let mut looks = tmux::Looks::new("codex_runs_a_command_writes_a_file_and_resumes_after_a_kill");
    let screen = looks.at(&s, "codex's ready prompt after the turn", 30, |sc| {
        is_ready(sc) && sc.contains("• done")
    });
    for dialog in [PERMISSION, TRUST, SIGN_IN, MODEL_UPGRADE] {
        assert!(
            !is(dialog, &screen),
            "{dialog} on the ready screen:\n{screen}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(sb.work().join("marker.txt")).unwrap(),
        "made\n"
    );
    assert_eq!(
        std::fs::read_to_string(sb.work().join("notes/out.txt")).unwrap(),
        "first line\nsecond line\n"
    );

    let turns = server.turns();
    let first = openai::turn_of(&turns[0].body);
    assert_eq!(first.prompt, prompt, "the prompt is the user turn");
    assert!(first.results.is_empty());
    assert_eq!(
        turns[0].action,
        Some(Action::Shell(
            "echo made > marker.txt && echo marker-ok".into()
        ))
    );
    let second = openai::turn_of(&turns[1].body);
    assert_eq!(second.prompt, prompt);
    assert_eq!(second.results.len(), 1);
    assert!(
        second.results[0].contains("marker-ok"),
        "the shell output is a tool result: {:?}",
        second.results
    );
    let third = openai::turn_of(&turns[2].body);
    assert_eq!(third.results.len(), 2);
    assert!(
        third.results[1].contains("notes/out.txt"),
        "{:?}",
        third.results
    );
    // The title request is a side request.
    assert!(server
        .requests()
        .iter()
        .any(|l| l.side && openai::is_title_request(&l.body)));

    // The rollout holds the session id, the cwd and the usage the server reported.
    let rollout = find_rollout(&sb.codex_home()).expect("a rollout file");
    let text = std::fs::read_to_string(&rollout).unwrap();
    let meta: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(meta["type"], "session_meta");
    assert_eq!(
        meta["payload"]["cwd"].as_str().map(PathBuf::from),
        Some(sb.work())
    );
    let id = meta["payload"]["id"].as_str().unwrap().to_string();
    assert!(rollout.to_string_lossy().ends_with(&format!("-{id}.jsonl")));
    let last_usage = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["payload"]["type"] == "token_count")
        .filter_map(|v| {
            v["payload"]["info"]["last_token_usage"]
                .as_object()
                .cloned()
        })
        .next()
        .expect("a token_count event");
    assert_eq!(last_usage["input_tokens"], openai::INPUT_TOKENS);
    assert_eq!(last_usage["cached_input_tokens"], openai::CACHED_TOKENS);
    assert_eq!(last_usage["output_tokens"], openai::OUTPUT_TOKENS);
    assert_eq!(
        last_usage["reasoning_output_tokens"],
        openai::REASONING_TOKENS
    );
    assert_eq!(last_usage["total_tokens"], openai::TOTAL_TOKENS);

    // Killed, then resumed by id with a new prompt: the request carries the earlier turn.
    stop(&s);
    let before = server.turns().len();
    let again = "And now say it again.";
    let s = sb.spawn(&codex, &["resume", &id, again]);
    server.wait_for("the resumed turn", 60, |log| {
        log.iter().filter(|l| !l.side).count() > before
    });
    looks.at(&s, "codex's ready prompt after resuming", 30, |sc| {
        is_ready(sc) && sc.contains(again)
    });
    let resumed = openai::turn_of(&server.turns()[before].body);
    assert_eq!(resumed.prompt, again);
    assert_eq!(
        resumed.user_texts,
        vec![prompt.to_string(), again.to_string()]
    );
    looks.assert_same();
    stop(&s);

    sb.kill_leftovers();
    assert!(
        sb.leftovers().is_empty(),
        "processes outlived codex: {:?}",
        sb.leftovers()
    );
}

/// The first-run trust question (a folder not trusted in `config.toml`), and the idle prompt
/// after trusting, look as they do in tmux for the same bytes.
#[test]
fn codex_trust_question_looks_as_it_does_in_tmux() {
    let Some(codex) = models::cli("codex") else {
        return;
    };
    let server = openai::start(plan(vec![], "done"));
    let sb = Sandbox::new(&server);
    let config = sb.codex_home().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let trusted = format!(
        "[projects.\"{}\"]\ntrust_level = \"trusted\"\n",
        sb.work().display()
    );
    assert!(text.contains(&trusted), "{text}");
    std::fs::write(&config, text.replace(&trusted, "")).unwrap();
    // Codex asks about the folder of a git repository (here it did not ask about a plain one).
    let git = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(sb.work())
        .status()
        .expect("git runs");
    assert!(git.success());
    // The bypass flag skips the question.
    let s = sb.spawn_with(&codex, &["--no-daemon"], &[]);
    let mut looks = tmux::Looks::new("codex_trust_question_looks_as_it_does_in_tmux");
    let screen = looks.at(&s, "codex's trust question", 60, |sc| is(TRUST, sc));
    assert!(!is_ready(&screen), "{screen}");
    s.write(b"\r").unwrap();
    let screen = looks.at(&s, "codex's idle prompt after trusting", 30, |sc| {
        is_ready(sc) && !is(TRUST, sc)
    });
    for dialog in [PERMISSION, SIGN_IN, MODEL_UPGRADE] {
        assert!(!is(dialog, &screen), "{dialog} on the screen:\n{screen}");
    }
    // The answer is saved.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(trusted.trim_end()), "{text}");
    looks.assert_same();
    stop(&s);
    assert!(server.turns().is_empty(), "no prompt, no turn");
    sb.kill_leftovers();
}

/// The newest rollout file under `$CODEX_HOME/sessions/YYYY/MM/DD/`.
fn find_rollout(codex_home: &Path) -> Option<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, found);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rollout-") && n.ends_with(".jsonl"))
            {
                found.push(p);
            }
        }
    }
    let mut found = Vec::new();
    walk(&codex_home.join("sessions"), &mut found);
    found.sort();
    found.pop()
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/screens/codex/0.171.0")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn codex_screens_tell_apart() {
    let ready = ["ready.txt", "welcome-idle.txt", "missing-env-key.txt"];
    let busy = ["busy-stream.txt", "busy-command.txt"];
    let dialogs = [
        ("permission.txt", PERMISSION),
        ("trust.txt", TRUST),
        ("signin.txt", SIGN_IN),
        ("model-upgrade.txt", MODEL_UPGRADE),
    ];
    for name in ready {
        let sc = fixture(name);
        assert!(is_ready(&sc), "{name} is ready");
        assert!(!is(BUSY, &sc) && !is(PERMISSION, &sc), "{name}");
    }
    for name in busy {
        let sc = fixture(name);
        assert!(is(BUSY, &sc) && !is_ready(&sc), "{name} is busy");
        assert!(!is(PERMISSION, &sc), "{name}");
    }
    for (name, re) in dialogs {
        let sc = fixture(name);
        assert!(is(re, &sc), "{name} matches its regex");
        assert!(
            !is_ready(&sc) && !is(BUSY, &sc),
            "{name} is neither ready nor busy"
        );
        for (other, re2) in dialogs {
            if other != name {
                assert!(!is(re2, &sc), "{name} matches the regex of {other}");
            }
        }
    }
    // The second page of the sign-in menu ("Sign in another way").
    let other = fixture("signin-other.txt");
    assert!(other.contains("Use an OpenAI API key") && !is_ready(&other));
}
