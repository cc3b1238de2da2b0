//! Runtime presets: how to start each kind of agent, how its first prompt is delivered, and
//! the patterns that tell busy, ready-for-input and waiting-for-permission on its screen.
//! Patterns are matched line by line (multi-line mode) against the screen as `capture` shows
//! it, so trailing spaces are gone: write `^sim>$`, not `sim> $`.
//! `[runtimes.NAME]` in town.toml overrides a preset key by key (a table that sets only
//! `command` keeps the preset's patterns) or defines a new runtime.

use crate::{Error, Result};
#[cfg(test)]
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The program name the `sim` preset uses; the engine replaces it with its own binary.
pub const SIM_PROGRAM: &str = "gastown-tui";

/// `[runtimes.NAME]`: how to start an agent CLI and read its screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Program and arguments (required, non-empty; a table over a built-in preset may leave
    /// it out and keep the preset's).
    pub command: Vec<String>,
    /// How the first prompt is delivered (the preset's, else `argument`, when not given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PromptMode>,
    /// Regex matched against the screen: the agent is at its input prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// Regex: the agent is working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy: Option<String>,
    /// Regex: the agent waits for the user (a permission question).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// How the first prompt reaches a runtime.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PromptMode {
    /// As the last command-line argument.
    #[default]
    Argument,
    /// After a flag: `flag:--prompt` runs `cmd --prompt TEXT`.
    Flag(String),
    /// Typed into the terminal once the `ready` regex matches.
    TypeAfterReady,
}

impl fmt::Display for PromptMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PromptMode::Argument => f.write_str("argument"),
            PromptMode::Flag(name) => write!(f, "flag:{name}"),
            PromptMode::TypeAfterReady => f.write_str("type-after-ready"),
        }
    }
}

impl FromStr for PromptMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "argument" => Ok(PromptMode::Argument),
            "type-after-ready" => Ok(PromptMode::TypeAfterReady),
            _ => match s.strip_prefix("flag:") {
                Some(name) => Ok(PromptMode::Flag(name.to_string())),
                None => Err(format!(
                    "invalid prompt mode {s:?} (expected argument, flag:<name> or type-after-ready)"
                )),
            },
        }
    }
}

impl TryFrom<String> for PromptMode {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<PromptMode> for String {
    fn from(p: PromptMode) -> String {
        p.to_string()
    }
}

/// A built-in runtime: what `[runtimes.NAME]` would say, as constants.
struct Preset {
    name: &'static str,
    command: &'static [&'static str],
    /// As town.toml writes it: `argument`, `flag:<name>` or `type-after-ready`.
    prompt: &'static str,
    ready: &'static str,
    busy: &'static str,
    waiting: &'static str,
}

/// The runtimes the program knows without a `[runtimes.NAME]` table, in the order they are
/// listed: the one list both [`builtin`] and [`builtin_names`] read.
const PRESETS: &[Preset] = &[
    // Claude Code 2.1.197 (tests/fixtures/screens/claude/2.1.197): its input box "❯ "
    // between two rules sits above a footer that reads "? for shortcuts · ← for agents"
    // (or "⏵⏵ bypass permissions on (shift+tab to cycle) · ← for agents") when idle; "esc
    // to interrupt" joins the footer while it works; a permission question asks "Do you
    // want to proceed?" (a command) or "Do you want to create/overwrite/make this edit to
    // FILE?" (an edit).
    Preset {
        name: "claude",
        command: &["claude", "--dangerously-skip-permissions"],
        prompt: "argument",
        ready: r"^  (?:\? for shortcuts|⏵⏵ bypass permissions on \(shift\+tab to cycle\)) · ← for agents",
        busy: "esc to interrupt",
        waiting: r"^ Do you want to (?:proceed\?|create \S.*\?|overwrite \S.*\?|make this edit to \S.*\?)$",
    },
    // Codex 0.171 (tests/fixtures/screens/codex/0.171.0): its input line starts with `›`
    // ("› Ask Codex to do anything" when empty) above a footer; "• Working (2s • esc to
    // interrupt)" while busy; "Would you like to run the following command?" to approve.
    // Codex runs its commands in a login shell by default, whose profile resets PATH
    // (Debian's /etc/profile does): `gastown-tui` would not be found. The engine adds
    // `--no-daemon` to every codex command line (`program`'s `isolation_args`).
    Preset {
        name: "codex",
        command: &[
            "codex",
            "--dangerously-bypass-approvals-and-sandbox",
            "-c",
            "allow_login_shell=false",
        ],
        prompt: "argument",
        ready: r"^› ",
        busy: r"esc to interrupt",
        waiting: r"Would you like to (run the following command|make the following edits)\?",
    },
    // Gemini CLI 0.61 (tests/fixtures/screens/gemini/0.61.0): its footer "workspace
    // (/directory)  [branch]  sandbox  /model" (branch in a git repository) shows under the
    // input box, idle or busy, never with a dialog; "⠴ Thinking... (esc to cancel, 8s)" above
    // the box while it works; "Allow execution of [Shell]?" or "Apply this change?" to
    // approve.
    Preset {
        name: "gemini",
        command: &["gemini", "--yolo"],
        prompt: "flag:--prompt-interactive",
        ready: r"^ workspace \(/directory\)\s+(?:branch\s+)?sandbox\s+/model$",
        busy: r"\(esc to cancel, [0-9hms ]+\)",
        waiting: r"Allow execution of |Apply this change\?|Do you want to proceed\?",
    },
    Preset {
        name: "cursor",
        command: &["cursor-agent", "--force"],
        prompt: "argument",
        ready: r"→",
        busy: "ctrl\\+c to stop",
        waiting: "Run this command\\?",
    },
    Preset {
        name: "auggie",
        command: &["auggie"],
        prompt: "argument",
        ready: r"›",
        busy: "esc to interrupt",
        waiting: "Do you want to",
    },
    Preset {
        name: "amp",
        command: &["amp", "--dangerously-allow-all"],
        prompt: "type-after-ready",
        ready: r"^\s*>",
        busy: "esc to cancel",
        waiting: "Allow\\?",
    },
    Preset {
        name: "opencode",
        command: &["opencode"],
        prompt: "flag:--prompt",
        ready: r"^\s*>",
        busy: "esc interrupt",
        waiting: "Permission required",
    },
    Preset {
        name: "shell",
        command: &["sh"],
        prompt: "type-after-ready",
        ready: r"[$#]$",
        busy: "",
        waiting: "",
    },
    Preset {
        name: "sim",
        command: &[SIM_PROGRAM, "sim-agent"],
        prompt: "type-after-ready",
        ready: r"^sim>$",
        busy: r"⏺|[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]",
        waiting: "Do you want to",
    },
];

/// The built-in runtime names, in order.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    PRESETS.iter().map(|p| p.name)
}

/// The built-in preset for `name`, if there is one.
pub fn builtin(name: &str) -> Option<RuntimeConfig> {
    let p = PRESETS.iter().find(|p| p.name == name)?;
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Some(RuntimeConfig {
        command: p.command.iter().map(|s| s.to_string()).collect(),
        prompt: p.prompt.parse().ok(),
        ready: opt(p.ready),
        busy: opt(p.busy),
        waiting: opt(p.waiting),
        env: BTreeMap::new(),
    })
}

/// The runtime `name` as a town runs it: the preset, with the town's `[runtimes.NAME]` table
/// (from `runtimes`) laid over it.
pub fn resolve(runtimes: &BTreeMap<String, RuntimeConfig>, name: &str) -> Result<RuntimeConfig> {
    let base = builtin(name);
    match (base, runtimes.get(name)) {
        (Some(b), None) => Ok(b),
        (None, Some(own)) => Ok(RuntimeConfig {
            prompt: Some(own.prompt.clone().unwrap_or_default()),
            ..own.clone()
        }),
        (Some(b), Some(own)) => Ok(RuntimeConfig {
            command: if own.command.is_empty() {
                b.command
            } else {
                own.command.clone()
            },
            prompt: own.prompt.clone().or(b.prompt),
            ready: own.ready.clone().or(b.ready),
            busy: own.busy.clone().or(b.busy),
            waiting: own.waiting.clone().or(b.waiting),
            env: b.env.into_iter().chain(own.env.clone()).collect(),
        }),
        (None, None) => Err(Error::bad(format!("unknown runtime '{name}'"))),
    }
}

/// Where Claude Code reads project settings, relative to a worktree.
pub const CLAUDE_SETTINGS: &str = ".claude/settings.json";

/// Gives a worktree Claude Code hooks that report to the town: `prime` at session start, and
/// `agent-event` on prompt submit (working), notification (waiting when it is a permission
/// question, idle for the reminder Claude sends after a minute at its prompt) and stop (idle), so the
/// Witness hears the agent's state from the agent itself. Other keys of an existing settings
/// file are kept. The file is excluded from git through the repository's `info/exclude`, so
/// it never makes the worktree dirty.
pub fn install_claude_hooks(worktree: &std::path::Path, exe: &std::path::Path) -> Result<()> {
    use serde_json::{json, Value};
    let path = worktree.join(CLAUDE_SETTINGS);
    let mut settings = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str::<Value>(&text).map_err(|e| {
            Error::bad(format!(
                "{}: not valid JSON ({e}); fix or remove it",
                path.display()
            ))
        })?,
        Err(_) => json!({}),
    };
    let Some(obj) = settings.as_object_mut() else {
        return Err(Error::bad(format!(
            "{}: expected a JSON object",
            path.display()
        )));
    };
    let gt = format!("'{}'", exe.display().to_string().replace('\'', "'\\''"));
    let hook = |args: &str| json!([{ "hooks": [{ "type": "command", "command": format!("{gt} {args}") }] }]);
    let hooks = obj.entry("hooks").or_insert_with(|| json!({}));
    if let Some(h) = hooks.as_object_mut() {
        h.insert("SessionStart".into(), hook("prime"));
        h.insert("UserPromptSubmit".into(), hook("agent-event working"));
        h.insert("Notification".into(), hook("agent-event notification"));
        h.insert("Stop".into(), hook("agent-event stop"));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    let text = serde_json::to_string_pretty(&settings)?;
    std::fs::write(&path, text + "\n").map_err(|e| Error::io("write", &path, e))?;
    // Keep it out of `git status` (and so out of `done`'s dirty check).
    if let Ok(repo) = git2::Repository::open(worktree) {
        let exclude = repo.commondir().join("info").join("exclude");
        let current = std::fs::read_to_string(&exclude).unwrap_or_default();
        let line = format!("/{CLAUDE_SETTINGS}");
        if !current.lines().any(|l| l.trim() == line) {
            if let Some(dir) = exclude.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
            }
            let mut text = current;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&line);
            text.push('\n');
            std::fs::write(&exclude, text).map_err(|e| Error::io("write", &exclude, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_merge_with_town_toml() {
        let mut cfg: BTreeMap<String, RuntimeConfig> = BTreeMap::new();
        let sim = resolve(&cfg, "sim").unwrap();
        assert_eq!(sim.prompt, Some(PromptMode::TypeAfterReady));
        assert!(Regex::new(&format!("(?m){}", sim.ready.unwrap()))
            .unwrap()
            .is_match("sim>"));
        cfg.insert(
            "claude".into(),
            RuntimeConfig {
                command: vec!["claude".into(), "--model".into(), "opus".into()],
                ..Default::default()
            },
        );
        let claude = resolve(&cfg, "claude").unwrap();
        assert_eq!(claude.command, vec!["claude", "--model", "opus"]);
        assert_eq!(
            claude.busy.as_deref(),
            Some("esc to interrupt"),
            "the preset's patterns stay"
        );
        assert!(resolve(&cfg, "emacs").is_err());
        // A table that only adds environment keeps the preset's command and prompt mode.
        let mut env = BTreeMap::new();
        env.insert("IS_SANDBOX".to_string(), "1".to_string());
        cfg.insert(
            "gemini".into(),
            RuntimeConfig {
                env,
                ..Default::default()
            },
        );
        let gemini = resolve(&cfg, "gemini").unwrap();
        assert_eq!(gemini.command, builtin("gemini").unwrap().command);
        assert_eq!(gemini.prompt, builtin("gemini").unwrap().prompt);
        assert_eq!(gemini.env["IS_SANDBOX"], "1");
        for name in builtin_names() {
            let rt = builtin(name).unwrap();
            assert!(rt.prompt.is_some(), "{name}: its prompt mode parses");
            for p in [rt.ready, rt.busy, rt.waiting].into_iter().flatten() {
                Regex::new(&p).unwrap();
            }
        }
    }

    #[test]
    fn claude_hooks_keep_other_settings_and_the_worktree_clean() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join(".claude")).unwrap();
        std::fs::write(dir.path().join(CLAUDE_SETTINGS), r#"{"model": "opus"}"#).unwrap();
        install_claude_hooks(dir.path(), std::path::Path::new("/opt/gt/gastown-tui")).unwrap();
        install_claude_hooks(dir.path(), std::path::Path::new("/opt/gt/gastown-tui")).unwrap();
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(CLAUDE_SETTINGS)).unwrap(),
        )
        .unwrap();
        assert_eq!(v["model"], "opus");
        assert_eq!(
            v["hooks"]["Stop"][0]["hooks"][0]["command"],
            "'/opt/gt/gastown-tui' agent-event stop"
        );
        assert_eq!(
            v["hooks"]["SessionStart"][0]["hooks"][0]["command"],
            "'/opt/gt/gastown-tui' prime"
        );
        assert!(
            crate::town::worktree::dirty_files(dir.path())
                .unwrap()
                .is_empty(),
            "the settings file is excluded from git, so done does not see it"
        );
        let exclude = std::fs::read_to_string(repo.commondir().join("info/exclude")).unwrap();
        assert_eq!(exclude.matches("/.claude/settings.json").count(), 1);
    }
}
