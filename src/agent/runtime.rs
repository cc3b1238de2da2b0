//! Runtime presets: how to start each kind of agent, how its first prompt is delivered, and
//! the patterns that tell busy, ready-for-input and waiting-for-permission on its screen.
//! Patterns are matched line by line (multi-line mode) against the screen as `capture` shows
//! it, so trailing spaces are gone: write `^sim>$`, not `sim> $`.
//! `[runtimes.NAME]` in town.toml overrides a preset key by key (a table that sets only
//! `command` keeps the preset's patterns) or defines a new runtime.

use crate::town::{PromptMode, RuntimeConfig, TownConfig};
use crate::{Error, Result};
use std::collections::BTreeMap;

/// The program name the `sim` preset uses; the engine replaces it with its own binary.
pub const SIM_PROGRAM: &str = "gastown-tui";

fn preset(
    command: &[&str],
    prompt: PromptMode,
    ready: &str,
    busy: &str,
    waiting: &str,
) -> RuntimeConfig {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    RuntimeConfig {
        command: command.iter().map(|s| s.to_string()).collect(),
        prompt,
        ready: opt(ready),
        busy: opt(busy),
        waiting: opt(waiting),
        env: BTreeMap::new(),
    }
}

/// The built-in preset for `name`, if there is one.
pub fn builtin(name: &str) -> Option<RuntimeConfig> {
    use PromptMode::*;
    Some(match name {
        "claude" => preset(
            &["claude", "--dangerously-skip-permissions"],
            Argument,
            r"❯",
            "esc to interrupt",
            "Do you want to",
        ),
        "codex" => preset(
            &["codex", "--dangerously-bypass-approvals-and-sandbox"],
            Argument,
            r"›|▌",
            "Esc to interrupt",
            "Allow command\\?|approve",
        ),
        "gemini" => preset(
            &["gemini", "--yolo"],
            Flag("--prompt-interactive".into()),
            r"^\s*>",
            "esc to cancel",
            "Allow execution",
        ),
        "cursor" => preset(
            &["cursor-agent", "--force"],
            Argument,
            r"→",
            "ctrl\\+c to stop",
            "Run this command\\?",
        ),
        "auggie" => preset(
            &["auggie"],
            Argument,
            r"›",
            "esc to interrupt",
            "Do you want to",
        ),
        "amp" => preset(
            &["amp", "--dangerously-allow-all"],
            TypeAfterReady,
            r"^\s*>",
            "esc to cancel",
            "Allow\\?",
        ),
        "opencode" => preset(
            &["opencode"],
            Flag("--prompt".into()),
            r"^\s*>",
            "esc interrupt",
            "Permission required",
        ),
        "shell" => preset(&["sh"], TypeAfterReady, r"[$#]$", "", ""),
        "sim" => preset(
            &[SIM_PROGRAM, "sim-agent"],
            TypeAfterReady,
            r"^sim>$",
            r"⏺|[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]",
            "Do you want to",
        ),
        _ => return None,
    })
}

/// The runtime `name` as this town runs it: the preset, with town.toml's table laid over it.
pub fn resolve(config: &TownConfig, name: &str) -> Result<RuntimeConfig> {
    let base = builtin(name);
    match (base, config.runtimes.get(name)) {
        (Some(b), None) => Ok(b),
        (None, Some(own)) => Ok(own.clone()),
        (Some(b), Some(own)) => Ok(RuntimeConfig {
            command: own.command.clone(),
            prompt: own.prompt.clone(),
            ready: own.ready.clone().or(b.ready),
            busy: own.busy.clone().or(b.busy),
            waiting: own.waiting.clone().or(b.waiting),
            env: own.env.clone(),
        }),
        (None, None) => Err(Error::bad(format!("unknown runtime '{name}'"))),
    }
}
