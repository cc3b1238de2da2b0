//! The real Gemini CLI against a scripted Gemini API server, in a PTY.
//!
//! Gemini is pointed at the server by `GOOGLE_GEMINI_BASE_URL` with a dummy `GEMINI_API_KEY`;
//! the sign-in menu is answered by `security.auth.selectedType = "gemini-api-key"` in
//! `~/.gemini/settings.json` (interactive Gemini shows the menu whenever no type is selected,
//! whatever the environment holds), and the folder-trust question by `--skip-trust`. Gemini
//! relaunches itself as a child node process, which outlives a killed parent: whatever still
//! runs from the test's HOME at the end is killed.

// `mod.rs` imports `std::io::Read`, which its `dyn Read` reader does not need.
#[path = "models/gemini.rs"]
mod gemini;
#[allow(unused_imports)]
mod models;
#[path = "common/tmux.rs"]
mod tmux;

use gastown_tui::agent::{Session, SessionSpec};
use models::{plan, wait_screen, Action, Server};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Gemini waits at its input prompt: the footer under the input box shows (it shows while
/// busy too, and no dialog shows it), and no turn is running.
const READY: &str = r"(?m)^ workspace \(/directory\)\s+sandbox\s+/model$";
/// A turn is running (the model streams or a command runs): ` ⠹ Thinking... (esc to cancel, 5s)`.
const BUSY: &str = r"\(esc to cancel, [0-9hms ]+\)";
/// Gemini asks whether to run a command (or write a file, or fetch).
const PERMISSION: &str = r"Allow execution of |Apply this change\?|Do you want to proceed\?";
/// First-run screens.
const TRUST: &str = r"Do you trust the files in this folder\?";
const AUTH: &str = r"How would you like to authenticate for this project\?";
const API_KEY: &str = r"Enter Gemini API Key";
/// A model call failed (the CLI is ready again below it).
const API_ERROR: &str = r"(?m)^✕ \[API Error: ";
/// Shown when the trust question was answered by a key: Gemini restarts itself.
const RESTARTING: &str = r"Gemini CLI is restarting to apply the trust changes";

/// The settings every run gets: the API-key sign-in selected, no update checks, no usage
/// statistics.
const SETTINGS: &str = r#"{
  "security": { "auth": { "selectedType": "gemini-api-key" } },
  "general": { "enableAutoUpdate": false, "enableAutoUpdateNotification": false },
  "privacy": { "usageStatisticsEnabled": false }
}
"#;

fn is(re: &str, screen: &str) -> bool {
    Regex::new(re).expect("a valid regex").is_match(screen)
}

fn is_ready(screen: &str) -> bool {
    is(READY, screen) && !is(BUSY, screen)
}

/// A temp HOME and work dir; on drop, kills what runs from that HOME.
struct Sandbox {
    dir: tempfile::TempDir,
    url: String,
}

impl Sandbox {
    /// A fresh HOME with only `.gitconfig` and, when `settings` is given, `~/.gemini/settings.json`.
    fn new(server: &Server, settings: Option<&str>) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("gt-gemini-")
            .tempdir()
            .expect("a temp dir");
        let sb = Sandbox {
            dir,
            url: server.url(),
        };
        std::fs::create_dir_all(sb.home()).unwrap();
        std::fs::create_dir_all(sb.work()).unwrap();
        std::fs::write(
            sb.home().join(".gitconfig"),
            "[user]\n\tname = Test User\n\temail = test@example.com\n",
        )
        .unwrap();
        if let Some(settings) = settings {
            std::fs::create_dir_all(sb.gemini_dir()).unwrap();
            std::fs::write(sb.gemini_dir().join("settings.json"), settings).unwrap();
        }
        sb
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn gemini_dir(&self) -> PathBuf {
        self.home().join(".gemini")
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Runs gemini with `args` in a 40x120 PTY, recorded (for [`tmux::Looks`]).
    fn spawn(&self, gemini: &Path, args: &[&str]) -> Session {
        let mut spec = SessionSpec::new(gemini.to_string_lossy(), self.work());
        spec.rows = 40;
        spec.cols = 120;
        spec.recording = Some(tmux::recording_in(self.dir.path()));
        spec.args = args.iter().map(|s| s.to_string()).collect();
        spec.env = vec![
            ("HOME".into(), self.home().display().to_string()),
            ("GEMINI_API_KEY".into(), "dummy-scripted-key".into()),
            ("GOOGLE_GEMINI_BASE_URL".into(), self.url.clone()),
            // Nothing else may pick another way to the model.
            ("GOOGLE_API_KEY".into(), String::new()),
            ("GOOGLE_GENAI_USE_VERTEXAI".into(), String::new()),
            ("GOOGLE_GENAI_USE_GCA".into(), String::new()),
            ("GOOGLE_CLOUD_PROJECT".into(), String::new()),
            ("GEMINI_DEFAULT_AUTH_TYPE".into(), String::new()),
        ];
        Session::spawn(spec, Arc::new(|| {})).expect("gemini starts")
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

    fn signal_all(&self, sig: i32) {
        for pid in self.leftovers() {
            // SAFETY: kill(2) with a pid read from /proc; a gone pid gives ESRCH.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// Gemini's chat files for the work dir: `~/.gemini/tmp/<project>/chats/session-*.jsonl`,
    /// `<project>` being the work dir's name (as `~/.gemini/projects.json` records).
    fn chat_files(&self) -> Vec<PathBuf> {
        let dir = self.gemini_dir().join("tmp").join("work").join("chats");
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("session-") && n.ends_with(".jsonl"))
            })
            .collect();
        found.sort();
        found
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.kill_leftovers();
    }
}

/// Sends `key` until the screen satisfies `ok` (a key sent just as a menu shows can be lost:
/// Gemini's input handler is not listening yet), up to 5 tries 8 seconds apart.
fn press_until(s: &Session, key: &[u8], what: &str, ok: impl Fn(&str) -> bool) -> String {
    for _ in 0..4 {
        s.write(key).unwrap();
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            let screen = s.capture(false);
            if ok(&screen) {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    s.write(key).unwrap();
    wait_screen(s, what, 8, ok)
}

fn stop(s: &Session, sb: &Sandbox) {
    s.kill().expect("kill gemini");
    assert!(
        s.wait_timeout(Duration::from_secs(10)).is_some(),
        "gemini did not end"
    );
    // The relaunched child outlives its parent.
    sb.kill_leftovers();
}

fn no_dialog(screen: &str) {
    for dialog in [PERMISSION, TRUST, AUTH, API_KEY] {
        assert!(!is(dialog, screen), "{dialog} on the screen:\n{screen}");
    }
}

/// The turns (not side requests) whose prompt is `prompt`.
fn turns_for(server: &Server, prompt: &str) -> Vec<models::Logged> {
    server
        .turns()
        .into_iter()
        .filter(|l| gemini::turn_of(&l.body).prompt == prompt)
        .collect()
}

#[test]
fn gemini_runs_a_command_writes_a_file_in_yolo_mode() {
    let Some(gemini_cli) = models::cli("gemini") else {
        return;
    };
    let prompt = "Create the marker file, then the notes.";
    let server = gemini::start(plan(
        vec![(
            "Create the marker",
            vec![
                Action::Shell("echo made > marker.txt && echo marker-ok".into()),
                // Long enough to see the busy screen while it runs.
                Action::Shell("sleep 3 && echo slept".into()),
                Action::Write {
                    path: "notes/out.txt".into(),
                    content: "a draft\n".into(),
                },
                // write_file replaces a file that exists.
                Action::Write {
                    path: "notes/out.txt".into(),
                    content: "first line\nsecond line\n".into(),
                },
            ],
        )],
        "done",
    ));
    let sb = Sandbox::new(&server, Some(SETTINGS));
    let s = sb.spawn(
        &gemini_cli,
        &["--skip-trust", "--yolo", "--prompt-interactive", prompt],
    );

    let busy = wait_screen(&s, "the busy screen while `sleep 3` runs", 60, |sc| {
        is(BUSY, sc) && sc.contains("sleep 3")
    });
    assert!(!is_ready(&busy), "busy is not ready:\n{busy}");
    no_dialog(&busy);

    server.wait_for("the turn's final answer", 60, |log| {
        log.iter()
            .any(|l| matches!(&l.action, Some(Action::Say(t)) if t == "done"))
    });
    let mut looks = tmux::Looks::new("gemini_runs_a_command_writes_a_file_in_yolo_mode");
    let screen = looks.at(&s, "gemini's ready prompt after the turn", 30, |sc| {
        is_ready(sc) && sc.contains("✦ done")
    });
    no_dialog(&screen);
    assert!(screen.contains("YOLO"), "YOLO mode shows:\n{screen}");
    assert_eq!(
        std::fs::read_to_string(sb.work().join("marker.txt")).unwrap(),
        "made\n"
    );
    assert_eq!(
        std::fs::read_to_string(sb.work().join("notes/out.txt")).unwrap(),
        "first line\nsecond line\n"
    );

    // The requests reached the server with the dummy key, as the Gemini API.
    let turns = server.turns();
    assert_eq!(turns.len(), 5, "four tool calls and the answer");
    for t in &turns {
        assert!(
            t.url.contains(":streamGenerateContent") && t.url.contains("alt=sse"),
            "{}",
            t.url
        );
        let tools = gemini::offered_tools(&t.body);
        assert!(
            tools.iter().any(|n| n == "run_shell_command")
                && tools.iter().any(|n| n == "write_file"),
            "{tools:?}"
        );
    }
    assert_eq!(gemini::workspace_of(&turns[0].body), Some(sb.work()));
    let first = gemini::turn_of(&turns[0].body);
    assert_eq!(first.prompt, prompt, "the prompt is the user turn");
    assert_eq!(first.user_texts, vec![prompt.to_string()]);
    assert!(first.results.is_empty());
    assert_eq!(
        turns[0].action,
        Some(Action::Shell(
            "echo made > marker.txt && echo marker-ok".into()
        ))
    );
    let second = gemini::turn_of(&turns[1].body);
    assert_eq!(second.prompt, prompt);
    assert_eq!(second.results.len(), 1);
    assert!(
        second.results[0].contains("marker-ok"),
        "the shell output is a tool result: {:?}",
        second.results
    );
    let fourth = gemini::turn_of(&turns[3].body);
    assert_eq!(fourth.results.len(), 3);
    assert!(
        fourth.results[2].contains("notes/out.txt"),
        "{:?}",
        fourth.results
    );
    // The router's complexity question is a side request with a JSON schema.
    assert!(server.requests().iter().any(|l| l.side
        && l.url.contains(":generateContent")
        && gemini::schema_of(&l.body).is_some()));

    // The chat file holds the session id and the usage the server reported.
    let chats = sb.chat_files();
    assert_eq!(chats.len(), 1, "{chats:?}");
    let text = std::fs::read_to_string(&chats[0]).unwrap();
    let meta: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let id = meta["sessionId"]
        .as_str()
        .expect("a session id")
        .to_string();
    assert!(
        chats[0]
            .to_string_lossy()
            .ends_with(&format!("-{}.jsonl", &id[..8])),
        "{chats:?} {id}"
    );
    let tokens = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["tokens"].as_object().cloned())
        .expect("a message with tokens");
    assert_eq!(tokens["input"], gemini::PROMPT_TOKENS);
    assert_eq!(tokens["output"], gemini::CANDIDATES_TOKENS);
    assert_eq!(tokens["cached"], gemini::CACHED_TOKENS);
    assert_eq!(tokens["thoughts"], gemini::THOUGHTS_TOKENS);
    assert_eq!(tokens["total"], gemini::TOTAL_TOKENS);
    looks.assert_same();

    stop(&s, &sb);
    assert!(
        sb.leftovers().is_empty(),
        "processes outlived gemini: {:?}",
        sb.leftovers()
    );
}

#[test]
fn gemini_asks_before_a_command_without_yolo() {
    let Some(gemini_cli) = models::cli("gemini") else {
        return;
    };
    let prompt = "Make the marker.";
    let server = gemini::start(plan(
        vec![(
            "Make the marker",
            vec![
                Action::Shell("echo made > marker.txt".into()),
                Action::Write {
                    path: "notes.txt".into(),
                    content: "noted\n".into(),
                },
            ],
        )],
        "done",
    ));
    let sb = Sandbox::new(&server, Some(SETTINGS));
    let s = sb.spawn(
        &gemini_cli,
        &["--skip-trust", "--prompt-interactive", prompt],
    );
    let mut looks = tmux::Looks::new("gemini_asks_before_a_command_without_yolo");
    let ask = looks.at(&s, "gemini's question before the command", 60, |sc| {
        is(PERMISSION, sc)
    });
    assert!(ask.contains("Allow execution of [Shell]?"), "{ask}");
    assert!(!is_ready(&ask) && !is(BUSY, &ask), "{ask}");
    assert!(!sb.work().join("marker.txt").exists());
    // Enter: "1. Allow once".
    let ask = press_until(&s, b"\r", "the question before the write", |sc| {
        sc.contains("Apply this change?")
    });
    assert!(is(PERMISSION, &ask) && !is_ready(&ask), "{ask}");
    assert!(sb.work().join("marker.txt").exists());
    let screen = press_until(&s, b"\r", "the ready prompt", |sc| {
        is_ready(sc) && sc.contains("✦ done")
    });
    no_dialog(&screen);
    assert_eq!(
        std::fs::read_to_string(sb.work().join("notes.txt")).unwrap(),
        "noted\n"
    );
    looks.assert_same();
    stop(&s, &sb);
}

#[test]
fn gemini_first_run_asks_trust_then_restarts() {
    let Some(gemini_cli) = models::cli("gemini") else {
        return;
    };
    let server = gemini::start(plan(vec![], "hello"));

    // No settings at all: the trust question, then the sign-in menu (the key from the
    // environment is only preselected).
    let sb = Sandbox::new(&server, None);
    let s = sb.spawn(&gemini_cli, &[]);
    // The first-run screens are also compared with tmux's for the same bytes.
    let mut looks = tmux::Looks::new("gemini_first_run_asks_trust_then_restarts");
    let screen = looks.at(&s, "gemini's trust question", 60, |sc| is(TRUST, sc));
    assert!(!is_ready(&screen) && !is(AUTH, &screen), "{screen}");
    // Trusting restarts Gemini (250 ms later), which draws the menu below the old frame
    // and the restart's notice; but when the menu (which waits for the auth check) takes
    // the screen first, the trust dialog is gone, its restart timer with it, and the menu
    // shows in the first process. Either way the menu is the next screen.
    press_until(&s, b"\r", "the sign-in menu", |sc| is(AUTH, sc));
    let screen = looks.at(&s, "gemini's sign-in menu", 30, |sc| is(AUTH, sc));
    assert!(screen.contains("● 2. Use Gemini API Key"), "{screen}");
    assert!(!is_ready(&screen), "{screen}");
    let trusted = std::fs::read_to_string(sb.gemini_dir().join("trustedFolders.json")).unwrap();
    assert!(trusted.contains("TRUST_FOLDER"), "{trusted}");
    // Enter, then Enter on the key prefilled from GEMINI_API_KEY.
    press_until(&s, b"\r", "the key entry", |sc| is(API_KEY, sc));
    // Ready (an answered menu can stay drawn above the prompt after Gemini's restart: see
    // the fixture ready-after-trust-restart.txt).
    press_until(&s, b"\r", "the ready prompt", is_ready);
    let settings = std::fs::read_to_string(sb.gemini_dir().join("settings.json")).unwrap();
    assert!(
        settings.contains("\"selectedType\": \"gemini-api-key\""),
        "{settings}"
    );
    looks.assert_same();
    stop(&s, &sb);
    assert!(server.requests().is_empty(), "no prompt, no request");

    // Signed in but untrusted, with a prompt: the prompt runs behind the trust question,
    // and again after the restart that trusting causes.
    let prompt = "Say hello.";
    let sb = Sandbox::new(&server, Some(SETTINGS));
    let s = sb.spawn(&gemini_cli, &["--yolo", "--prompt-interactive", prompt]);
    wait_screen(&s, "the trust question", 60, |sc| is(TRUST, sc));
    server.wait_for("the prompt sent behind the question", 60, |log| {
        log.iter().filter(|l| !l.side).count() == 1
    });
    press_until(&s, b"\r", "the restart", |sc| is(RESTARTING, sc));
    let screen = wait_screen(&s, "the ready prompt after the restart", 60, |sc| {
        is_ready(sc) && sc.contains("✦ hello") && sc.contains("YOLO")
    });
    // The question stays on the screen above the restart's notice (see the fixture
    // ready-after-trust-restart.txt).
    assert!(is(RESTARTING, &screen), "{screen}");
    server.wait_for("the prompt sent again", 30, |log| {
        log.iter().filter(|l| !l.side).count() == 2
    });
    assert_eq!(turns_for(&server, prompt).len(), 2);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        sb.chat_files().len(),
        2,
        "one chat before and one after the restart"
    );
    stop(&s, &sb);
}

#[test]
fn gemini_resumes_a_session_by_id_after_a_kill() {
    let Some(gemini_cli) = models::cli("gemini") else {
        return;
    };
    let server = gemini::start(plan(
        vec![(
            "Make the marker",
            vec![Action::Shell("echo made > marker.txt".into())],
        )],
        "done",
    ));
    let sb = Sandbox::new(&server, Some(SETTINGS));
    let id = "3b0f6a52-6d7e-4c1a-9f7e-2a1c0d9e8b71";
    let prompt = "Make the marker.";
    let s = sb.spawn(
        &gemini_cli,
        &[
            "--skip-trust",
            "--yolo",
            "--session-id",
            id,
            "--prompt-interactive",
            prompt,
        ],
    );
    wait_screen(&s, "the ready prompt after the turn", 60, |sc| {
        is_ready(sc) && sc.contains("✦ done")
    });
    let chats = sb.chat_files();
    assert_eq!(chats.len(), 1, "{chats:?}");
    assert!(
        chats[0]
            .to_string_lossy()
            .ends_with(&format!("-{}.jsonl", &id[..8])),
        "{chats:?}"
    );
    let text = std::fs::read_to_string(&chats[0]).unwrap();
    assert!(text.contains(&format!("\"sessionId\":\"{id}\"")), "{text}");

    // SIGKILL, as a crash: the parent and its relaunched child.
    sb.signal_all(libc::SIGKILL);
    assert!(
        s.wait_timeout(Duration::from_secs(10)).is_some(),
        "gemini did not end"
    );
    sb.kill_leftovers();

    // A fresh start with the same id is refused.
    let s = sb.spawn(&gemini_cli, &["--skip-trust", "--session-id", id]);
    let exit = s
        .wait_timeout(Duration::from_secs(60))
        .expect("gemini exits");
    assert!(!exit.success, "{exit}");
    let screen = s.capture(true);
    assert!(screen.contains("already exists"), "{screen}");
    sb.kill_leftovers();

    let before = server.turns().len();
    let again = "And now say it again.";
    let s = sb.spawn(
        &gemini_cli,
        &[
            "--skip-trust",
            "--yolo",
            "--resume",
            id,
            "--prompt-interactive",
            again,
        ],
    );
    server.wait_for("the resumed turn", 60, |log| {
        log.iter().filter(|l| !l.side).count() > before
    });
    wait_screen(&s, "the ready prompt after resuming", 30, |sc| {
        is_ready(sc) && sc.contains(again)
    });
    let resumed = &server.turns()[before];
    let turn = gemini::turn_of(&resumed.body);
    assert_eq!(turn.prompt, again);
    assert_eq!(turn.user_texts, vec![prompt.to_string(), again.to_string()]);
    // The earlier turn's call and its result are in the history too.
    let history = resumed.body["contents"].to_string();
    assert!(history.contains("echo made > marker.txt"), "{history}");
    assert!(history.contains("functionResponse"), "{history}");
    // The resumed conversation goes on in the first chat file. (Resuming also starts a
    // recording named by the current minute: in the same minute that is the same file, which
    // gets a second header line; a minute later, a second file with only the context.)
    let text = std::fs::read_to_string(&chats[0]).unwrap();
    assert!(text.contains(again) && text.contains(prompt), "{text}");
    let later = sb.chat_files();
    assert!(later.len() <= 2 && later[0] == chats[0], "{later:?}");
    stop(&s, &sb);
    assert!(sb.leftovers().is_empty(), "{:?}", sb.leftovers());
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/screens/gemini/0.61.0")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn gemini_screens_tell_apart() {
    let ready = [
        "ready.txt",
        "ready-yolo.txt",
        "ready-after-turn.txt",
        "ready-typed.txt",
        "api-error.txt",
    ];
    let busy = ["busy-stream.txt", "busy-tool.txt"];
    let dialogs = [
        ("permission.txt", PERMISSION),
        ("permission-edit.txt", PERMISSION),
        ("trust.txt", TRUST),
        ("auth.txt", AUTH),
        ("auth-key-detected.txt", AUTH),
        ("api-key-entry.txt", API_KEY),
    ];
    for name in ready {
        let sc = fixture(name);
        assert_eq!(sc.lines().count(), 40, "{name}");
        assert!(is_ready(&sc), "{name} is ready");
        assert!(!is(BUSY, &sc) && !is(PERMISSION, &sc), "{name}");
        for (_, re) in dialogs {
            assert!(!is(re, &sc), "{name} matches {re}");
        }
    }
    for name in busy {
        let sc = fixture(name);
        assert!(is(BUSY, &sc) && !is_ready(&sc), "{name} is busy");
        for (_, re) in dialogs {
            assert!(!is(re, &sc), "{name} matches {re}");
        }
    }
    for (name, re) in dialogs {
        let sc = fixture(name);
        assert!(is(re, &sc), "{name} matches its regex");
        assert!(
            !is_ready(&sc) && !is(BUSY, &sc),
            "{name} is neither ready nor busy"
        );
        for (other, re2) in dialogs {
            if re2 != re {
                assert!(!is(re2, &sc), "{name} matches the regex of {other}");
            }
        }
    }
    for name in ready.iter().chain(&busy) {
        assert_eq!(
            is(API_ERROR, &fixture(name)),
            *name == "api-error.txt",
            "{name}"
        );
    }
    // After the trust question was answered by a key, Gemini restarts under the old frame:
    // the question stays on the screen of the ready CLI. A dialog is only live while the
    // footer (READY) is absent.
    let stale = fixture("ready-after-trust-restart.txt");
    assert!(is_ready(&stale) && is(TRUST, &stale) && is(RESTARTING, &stale));
    for (name, re) in dialogs {
        assert!(!is(READY, &fixture(name)), "{name} shows no footer ({re})");
    }
    // The trust dialog's answer: Enter picks "1. Trust folder".
    assert!(fixture("trust.txt").contains("● 1. Trust folder (work)"));
    // The preset's ready pattern `^\s*>` misses the yolo input line (`*`), and matches the
    // echo of a sent prompt (` > wait a bit`) on busy and permission screens; the footer
    // does neither.
    let pre = Regex::new(r"(?m)^\s*>").unwrap();
    assert!(fixture("ready-yolo.txt").contains("\n *   Type your message"));
    assert!(pre.is_match(&fixture("busy-stream.txt")));
    assert!(pre.is_match(&fixture("permission.txt")));
}
