//! The real Claude Code CLI against a scripted Anthropic Messages server, in a PTY.
//!
//! Claude Code is pointed at the server by `ANTHROPIC_BASE_URL` and an `ANTHROPIC_AUTH_TOKEN`
//! (a bearer token: it switches off the Claude.ai sign-in, so no login menu, no connectivity
//! preflight and no "use this API key?" question); `~/.claude.json` says the onboarding (theme,
//! security notes) is done. What is left of the first run is the folder trust question and,
//! with `--dangerously-skip-permissions`, the bypass-mode warning: answered by keys in the
//! first test, pre-answered by `~/.claude.json` / `~/.claude/settings.json` in the second.
//! Three variables keep it from any outside traffic (telemetry, update checks, the plugin
//! marketplace). We run as root in CI, so `IS_SANDBOX=1` lets the bypass flag through.

// `mod.rs` imports `std::io::Read`, which its `dyn Read` reader does not need.
#[path = "models/anthropic.rs"]
mod anthropic;
#[allow(unused_imports)]
mod models;
#[path = "common/tmux.rs"]
mod tmux;

use gastown_tui::agent::{Session, SessionSpec};
use models::{plan, wait_screen, Action, Server};
use regex::Regex;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Claude waits at its input prompt: the footer of an idle prompt (default or bypass mode).
const READY: &str =
    r"(?m)^  (?:\? for shortcuts|⏵⏵ bypass permissions on \(shift\+tab to cycle\)) · ← for agents";
/// A turn is running (the model streams or a tool runs): the footer offers to interrupt.
const BUSY: &str = r"esc to interrupt";
/// Claude asks before running a command or writing a file.
const PERMISSION: &str =
    r"(?m)^ Do you want to (?:proceed\?|create \S.*\?|overwrite \S.*\?|make this edit to \S.*\?)$";
/// First-run screens.
const TRUST: &str = r"Is this a project you created or one you trust\?";
const BYPASS: &str = r"WARNING: Claude Code running in Bypass Permissions mode";
const API_KEY: &str = r"Do you want to use this API key\?";
const LOGIN: &str = r"(?m)^ +Select login method:$";
const THEME: &str = r"Choose the text style that looks best with your terminal";
const SECURITY_NOTES: &str = r"(?m)^ Security notes:$";
const PREFLIGHT: &str = r"Unable to connect to Anthropic services";
/// Ready, but without credentials (a prompt gets "Not logged in · Please run /login").
const NOT_LOGGED_IN: &str = r"Not logged in · Run /login";
/// What Claude prints (on stderr, exit 1) for the bypass flag as root without IS_SANDBOX.
const ROOT_REFUSAL: &str =
    r"--dangerously-skip-permissions cannot be used with root/sudo privileges";

const DIALOGS: &[(&str, &str)] = &[
    ("permission", PERMISSION),
    ("trust", TRUST),
    ("bypass", BYPASS),
    ("api-key", API_KEY),
    ("login", LOGIN),
    ("theme", THEME),
    ("security-notes", SECURITY_NOTES),
    ("preflight", PREFLIGHT),
];

fn is(re: &str, screen: &str) -> bool {
    Regex::new(re).expect("a valid regex").is_match(screen)
}

fn is_ready(screen: &str) -> bool {
    is(READY, screen) && !is(BUSY, screen) && !DIALOGS.iter().any(|(_, re)| is(re, screen))
}

/// A temp HOME and work dir; on drop, kills what runs from it.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// The least setup: a `.gitconfig` and `~/.claude.json` saying the onboarding is done.
    fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("gt-claude-")
            .tempdir()
            .expect("a temp dir");
        let sb = Sandbox { dir };
        std::fs::create_dir_all(sb.home()).unwrap();
        std::fs::create_dir_all(sb.work()).unwrap();
        std::fs::write(
            sb.home().join(".gitconfig"),
            "[user]\n\tname = Test User\n\temail = test@example.com\n",
        )
        .unwrap();
        sb.write_json(".claude.json", &json!({ "hasCompletedOnboarding": true }));
        sb
    }

    /// Also pre-answers the trust question and the bypass warning.
    fn preanswered() -> Sandbox {
        let sb = Sandbox::new();
        let work = sb.work().display().to_string();
        sb.write_json(
            ".claude.json",
            &json!({
                "hasCompletedOnboarding": true,
                "projects": { work: { "hasTrustDialogAccepted": true } },
            }),
        );
        std::fs::create_dir_all(sb.home().join(".claude")).unwrap();
        sb.write_json(
            ".claude/settings.json",
            &json!({ "skipDangerousModePermissionPrompt": true }),
        );
        sb
    }

    fn write_json(&self, rel: &str, v: &Value) {
        std::fs::write(self.home().join(rel), v.to_string()).unwrap();
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The work dir, canonical (Claude reports its cwd resolved).
    fn work(&self) -> PathBuf {
        let w = self.dir.path().join("work");
        w.canonicalize().unwrap_or(w)
    }

    fn env(&self, server: &Server) -> Vec<(String, String)> {
        [
            ("HOME", self.home().display().to_string()),
            ("ANTHROPIC_BASE_URL", server.url()),
            ("ANTHROPIC_AUTH_TOKEN", "scripted-token".into()),
            ("ANTHROPIC_API_KEY", String::new()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()),
            ("DISABLE_AUTOUPDATER", "1".into()),
            (
                "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL",
                "1".into(),
            ),
            ("IS_SANDBOX", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Runs claude with `args` in a 40x120 PTY, recorded (for [`tmux::Looks`]).
    fn spawn(&self, claude: &Path, server: &Server, args: &[&str]) -> Session {
        let mut spec = SessionSpec::new(claude.to_string_lossy(), self.work());
        spec.rows = 40;
        spec.cols = 120;
        spec.recording = Some(tmux::recording_in(self.dir.path()));
        spec.args = args.iter().map(|s| s.to_string()).collect();
        spec.env = self.env(server);
        Session::spawn(spec, Arc::new(|| {})).expect("claude starts")
    }

    /// Where Claude keeps the transcript of session `id` run in the work dir.
    fn transcript(&self, id: &str) -> PathBuf {
        let key: String = self
            .work()
            .display()
            .to_string()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        self.home()
            .join(".claude/projects")
            .join(key)
            .join(format!("{id}.jsonl"))
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

/// Ends claude with SIGKILL, as a crash would.
fn kill_hard(s: &Session) {
    if let Some(pid) = s.pid() {
        // SAFETY: kill(2) on the child we spawned.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
    assert!(
        s.wait_timeout(Duration::from_secs(10)).is_some(),
        "claude did not end"
    );
}

fn said(log: &[models::Logged], text: &str) -> bool {
    log.iter()
        .any(|l| matches!(&l.action, Some(Action::Say(t)) if t == text))
}

#[test]
fn claude_answers_trust_and_bypass_runs_a_command_and_writes_a_file() {
    let Some(claude) = models::cli("claude") else {
        return;
    };
    let prompt = "Create the marker file, then the notes.";
    let server = anthropic::start(plan(
        vec![(
            "Create the marker",
            vec![
                Action::Shell("echo made > marker.txt && echo marker-ok".into()),
                Action::Write {
                    path: "notes/out.txt".into(),
                    content: "first line\nsecond line\n".into(),
                },
            ],
        )],
        "done",
    ));
    let sb = Sandbox::new();
    let s = sb.spawn(
        &claude,
        &server,
        &["--dangerously-skip-permissions", prompt],
    );

    // Each screen the test waits for is also compared with tmux's for the same bytes.
    let mut looks =
        tmux::Looks::new("claude_answers_trust_and_bypass_runs_a_command_and_writes_a_file");
    let screen = looks.at(&s, "claude's trust question", 60, |sc| is(TRUST, sc));
    assert!(!is_ready(&screen) && !is(BYPASS, &screen));
    s.write(b"\r").unwrap();
    let screen = looks.at(&s, "claude's bypass warning", 30, |sc| is(BYPASS, sc));
    assert!(!is_ready(&screen) && !is(TRUST, &screen));
    s.write(b"2").unwrap();

    server.wait_for("the turn's final answer", 90, |log| said(log, "done"));
    let screen = looks.at(&s, "claude's ready prompt after the turn", 30, |sc| {
        is_ready(sc) && sc.contains("● done")
    });
    assert!(
        screen.contains("Bash(echo made > marker.txt && echo marker-ok)"),
        "{screen}"
    );
    assert_eq!(
        std::fs::read_to_string(sb.work().join("marker.txt")).unwrap(),
        "made\n"
    );
    assert_eq!(
        std::fs::read_to_string(sb.work().join("notes/out.txt")).unwrap(),
        "first line\nsecond line\n"
    );

    // The server log: the prompt, the Bash call, its output, the Write call with an
    // absolute path in the work dir, and the title as a side request.
    let turns = server.turns();
    assert_eq!(
        turns.len(),
        3,
        "{:?}",
        turns.iter().map(|t| &t.action).collect::<Vec<_>>()
    );
    assert!(turns.iter().all(|t| t.url.starts_with("/v1/messages")));
    assert!(turns.iter().all(|t| t.body["stream"] == true));
    let first = anthropic::turn_of(&turns[0].body);
    assert_eq!(first.prompt, prompt, "the prompt is the user turn");
    assert_eq!(first.user_texts, vec![prompt.to_string()]);
    assert!(first.results.is_empty());
    assert_eq!(anthropic::cwd_of(&turns[0].body), Some(sb.work()));
    let tools = anthropic::tool_names(&turns[0].body);
    assert!(tools.iter().any(|t| t == "Bash") && tools.iter().any(|t| t == "Write"));
    let second = anthropic::turn_of(&turns[1].body);
    assert_eq!(second.results.len(), 1);
    assert!(
        second.results[0].contains("marker-ok"),
        "{:?}",
        second.results
    );
    let third = anthropic::turn_of(&turns[2].body);
    assert_eq!(third.results.len(), 2);
    let written = sb.work().join("notes/out.txt").display().to_string();
    assert!(third.results[1].contains(&written), "{:?}", third.results);
    let calls: Vec<&Value> = turns[2].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .flat_map(|m| m["content"].as_array().into_iter().flatten())
        .filter(|b| b["type"] == "tool_use")
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["name"], "Bash");
    assert_eq!(
        calls[0]["input"]["command"],
        "echo made > marker.txt && echo marker-ok"
    );
    assert_eq!(calls[1]["name"], "Write");
    assert_eq!(calls[1]["input"]["file_path"], written.as_str());
    let sides: Vec<_> = server.requests().into_iter().filter(|l| l.side).collect();
    assert!(
        sides.iter().any(|l| anthropic::is_title_request(&l.body)),
        "a title request: {:?}",
        sides.iter().map(|l| &l.url).collect::<Vec<_>>()
    );
    for side in sides.iter().filter(|l| l.method == "POST") {
        assert!(anthropic::tool_names(&side.body).is_empty());
    }

    // Answering the dialogs wrote their pre-answers.
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.home().join(".claude.json")).unwrap())
            .unwrap();
    assert_eq!(
        config["projects"][sb.work().display().to_string()]["hasTrustDialogAccepted"],
        true
    );
    let settings: Value = serde_json::from_str(
        &std::fs::read_to_string(sb.home().join(".claude/settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(settings["skipDangerousModePermissionPrompt"], true);
    looks.assert_same();

    kill_hard(&s);
    sb.kill_leftovers();
    assert!(
        sb.leftovers().is_empty(),
        "processes outlived claude: {:?}",
        sb.leftovers()
    );
}

#[test]
fn claude_resumes_a_killed_session_by_id() {
    let Some(claude) = models::cli("claude") else {
        return;
    };
    let prompt = "Count the files here.";
    let server = anthropic::start(plan(
        vec![("Count the files", vec![Action::Shell("ls | wc -l".into())])],
        "done",
    ));
    let sb = Sandbox::preanswered();
    let id = uuid::Uuid::new_v4().to_string();
    let s = sb.spawn(
        &claude,
        &server,
        &[
            "--dangerously-skip-permissions",
            "--session-id",
            &id,
            prompt,
        ],
    );
    server.wait_for("the first turn's answer", 90, |log| said(log, "done"));
    let screen = wait_screen(&s, "the ready prompt", 30, |sc| {
        is_ready(sc) && sc.contains("● done")
    });
    assert!(!is(TRUST, &screen) && !is(BYPASS, &screen));
    // The transcript holds the turn, with the server's usage. It is written a little after
    // the screen shows the answer: a kill before the final answer is in it makes the turn
    // an interrupted one, which `--resume` continues with "Continue from where you left off."
    let transcript = sb.transcript(&id);
    let deadline = Instant::now() + Duration::from_secs(20);
    let usage = loop {
        let text = std::fs::read_to_string(&transcript).unwrap_or_default();
        let found = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "assistant")
            .filter(|v| v["message"]["content"][0]["text"] == "done")
            .map(|v| v["message"]["usage"].clone())
            .next_back();
        if let Some(u) = found {
            break u;
        }
        assert!(
            Instant::now() < deadline,
            "no assistant entry in {}",
            transcript.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(usage["input_tokens"], anthropic::INPUT_TOKENS);
    assert_eq!(usage["output_tokens"], anthropic::OUTPUT_TOKENS);
    assert_eq!(
        usage["cache_read_input_tokens"],
        anthropic::CACHE_READ_TOKENS
    );
    kill_hard(&s);

    let before = server.turns().len();
    let again = "And now say it again.";
    let s = sb.spawn(
        &claude,
        &server,
        &["--dangerously-skip-permissions", "--resume", &id, again],
    );
    server.wait_for("the resumed turn", 90, |log| {
        log.iter().filter(|l| !l.side).count() > before
    });
    let mut looks = tmux::Looks::new("claude_resumes_a_killed_session_by_id");
    looks.at(&s, "claude's ready prompt after resuming", 30, |sc| {
        is_ready(sc) && sc.contains(again)
    });
    let body = &server.turns()[before].body;
    let resumed = anthropic::turn_of(body);
    assert_eq!(resumed.prompt, again);
    assert_eq!(
        resumed.user_texts,
        vec![prompt.to_string(), again.to_string()]
    );
    let messages = body["messages"].as_array().unwrap();
    let has = |role: &str, kind: &str, f: &dyn Fn(&Value) -> bool| {
        messages.iter().any(|m| {
            m["role"] == role
                && m["content"]
                    .as_array()
                    .is_some_and(|bs| bs.iter().any(|b| b["type"] == kind && f(b)))
        })
    };
    assert!(has("assistant", "tool_use", &|b| b["input"]["command"]
        == "ls | wc -l"));
    assert!(has("user", "tool_result", &|_| true));
    assert!(has("assistant", "text", &|b| b["text"] == "done"));
    // The first turn was complete in the transcript, so no resume prompt was added.
    assert!(!has("user", "text", &|b| {
        b["text"]
            .as_str()
            .is_some_and(|t| t.contains("Continue from where you left off"))
    }));
    looks.assert_same();
    kill_hard(&s);

    sb.kill_leftovers();
    assert!(
        sb.leftovers().is_empty(),
        "processes outlived claude: {:?}",
        sb.leftovers()
    );
}

#[test]
fn claude_refuses_the_bypass_flag_as_root_without_is_sandbox() {
    let Some(claude) = models::cli("claude") else {
        return;
    };
    // SAFETY: geteuid(2) has no failure mode.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let sb = Sandbox::new();
    let out = std::process::Command::new(&claude)
        .arg("--dangerously-skip-permissions")
        .current_dir(sb.work())
        .env("HOME", sb.home())
        .env("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
        .env("ANTHROPIC_AUTH_TOKEN", "scripted-token")
        .env_remove("IS_SANDBOX")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("claude runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(is(ROOT_REFUSAL, &stderr), "{stderr}");
    assert_eq!(stderr.trim(), fixture("root-refusal.txt").trim());
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/screens/claude/2.1.197")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn claude_screens_tell_apart() {
    let ready = ["ready.txt", "ready-bypass.txt", "not-logged-in.txt"];
    let busy = ["busy-stream.txt", "busy-tool.txt"];
    let dialogs = [
        ("permission.txt", PERMISSION),
        ("permission-write.txt", PERMISSION),
        ("trust.txt", TRUST),
        ("bypass.txt", BYPASS),
        ("api-key.txt", API_KEY),
        ("login.txt", LOGIN),
        ("login-onboarding.txt", LOGIN),
        ("theme.txt", THEME),
        ("security-notes.txt", SECURITY_NOTES),
        ("preflight-offline.txt", PREFLIGHT),
    ];
    for name in ready {
        let sc = fixture(name);
        assert!(is_ready(&sc), "{name} is ready");
        assert!(!is(BUSY, &sc), "{name}");
    }
    assert!(is(NOT_LOGGED_IN, &fixture("not-logged-in.txt")));
    assert!(!is(NOT_LOGGED_IN, &fixture("ready.txt")));
    for name in busy {
        let sc = fixture(name);
        assert!(is(BUSY, &sc) && !is_ready(&sc), "{name} is busy");
        for (id, re) in DIALOGS {
            assert!(!is(re, &sc), "{name} matches the {id} regex");
        }
    }
    for (name, re) in dialogs {
        let sc = fixture(name);
        assert!(is(re, &sc), "{name} matches its regex");
        assert!(!is_ready(&sc), "{name} is not ready");
        assert!(!is(BUSY, &sc), "{name} is not busy");
        assert!(!is(READY, &sc), "{name} shows no idle footer");
        for (other, re2) in dialogs {
            if re2 != re {
                assert!(!is(re2, &sc), "{name} matches the regex of {other}");
            }
        }
    }
    assert!(is(ROOT_REFUSAL, &fixture("root-refusal.txt")));
}
