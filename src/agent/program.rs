//! What the town knows of the real agent programs it hosts (Claude Code, Codex, Gemini CLI):
//! their first-run dialogs and which of them the town answers, the start errors that no
//! restart can fix, how a conversation is resumed, and the versions this knowledge was taken
//! from (the fixtures under `tests/fixtures/screens/<program>/<version>/`).
//!
//! A program is known by its command's file name, so a town runtime of its own (`claude-opus`
//! running `claude --model opus`) is handled like the preset.
//!
//! The town answers only what it owns: the folder-trust question for a worktree the town made
//! (the engine checks the session runs in the agent's own directory), and Claude's bypass
//! warning when the runtime's own command asked for bypass. Every other dialog (a sign-in, an
//! API-key question, one the town does not know) makes the agent *waiting* with its reason;
//! nothing is typed into it.

use regex::Regex;
use std::sync::OnceLock;

/// What the town does about a dialog on an agent's screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The folder-trust question, for a worktree the town made: the option that starts with
    /// this label is chosen (by arrow keys from the selected one, then Enter: programs change
    /// the order of their options, Claude Code puts "No, exit" first when the folder has
    /// hooks).
    Trust(&'static str),
    /// A bypass-permissions warning, when the command asked for it: the option with this
    /// label is chosen.
    Bypass(&'static str),
    /// Needs the human: the agent is waiting, for this reason.
    Human(&'static str),
}

/// A dialog a program shows, recognised by its text.
#[derive(Debug)]
pub struct Dialog {
    /// A short name for events and tests, e.g. `claude.trust`.
    pub id: &'static str,
    pattern: Regex,
    pub answer: Answer,
}

/// A start error that restarting cannot fix: the agent is dead until something changes.
#[derive(Debug)]
pub struct Fatal {
    pub id: &'static str,
    pattern: Regex,
    /// What went wrong, in the town's words.
    pub reason: &'static str,
    /// What the user does about it.
    pub fix: &'static str,
}

/// How a runtime continues a conversation after its process ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resume {
    /// The engine names the conversation (`--session-id ID`) and resumes it (`--resume ID`).
    Named {
        start: &'static str,
        resume: &'static str,
    },
    /// The program names it and writes it down (Codex's rollout files); the engine finds it
    /// after the start and resumes with `<subcommand> ID` before the other arguments.
    Discovered { subcommand: &'static str },
    /// The program resumes the newest conversation of the folder it runs in with these
    /// arguments (each worktree belongs to one agent, so the newest is the agent's).
    Latest(&'static [&'static str]),
}

/// One real program.
#[derive(Debug)]
pub struct Program {
    /// The command's file name: `claude`, `codex`, `gemini`.
    pub name: &'static str,
    /// The npm package it comes from.
    pub package: &'static str,
    /// The versions the presets and dialogs were taken from and tested with.
    pub verified: &'static [&'static str],
    /// Arguments that ask the program to skip its permission questions.
    pub bypass_flags: &'static [&'static str],
    pub resume: Option<Resume>,
    /// Arguments that tell the program, for this launch only, that the folder it starts in is
    /// trusted (no file the program owns is written). Given only for the town's own worktrees.
    pub trust_args: Option<fn(&std::path::Path) -> Vec<String>>,
    /// Arguments every launch of the program gets (added when the runtime's command lacks
    /// them): what keeps one agent's program apart from the others'.
    pub isolation_args: &'static [&'static str],
    dialogs: Vec<Dialog>,
    fatals: Vec<Fatal>,
    /// The program's input prompt, for programs that leave an answered dialog drawn above it
    /// (Gemini CLI restarts itself after the trust question and draws below the old frame):
    /// only what shows below the last prompt is a dialog.
    prompt_below: Option<Regex>,
}

fn re(p: &str) -> Regex {
    Regex::new(&format!("(?m){p}")).expect("a built-in pattern compiles")
}

fn dialog(id: &'static str, pattern: &str, answer: Answer) -> Dialog {
    Dialog {
        id,
        pattern: re(pattern),
        answer,
    }
}

fn fatal(id: &'static str, pattern: &str, reason: &'static str, fix: &'static str) -> Fatal {
    Fatal {
        id,
        pattern: re(pattern),
        reason,
        fix,
    }
}

fn programs() -> &'static [Program] {
    static ALL: OnceLock<Vec<Program>> = OnceLock::new();
    ALL.get_or_init(|| {
        vec![
            Program {
                name: "claude",
                package: "@anthropic-ai/claude-code",
                verified: &["2.1.197"],
                bypass_flags: &["--dangerously-skip-permissions"],
                resume: Some(Resume::Named {
                    start: "--session-id",
                    resume: "--resume",
                }),
                trust_args: None,
                isolation_args: &[],
                dialogs: vec![
                    dialog(
                        "claude.trust",
                        r"Is this a project you created or one you trust\?",
                        Answer::Trust("Yes, I trust this folder"),
                    ),
                    // "❯ 1. No, exit" is selected: "Yes, I accept" is chosen.
                    dialog(
                        "claude.bypass",
                        r"WARNING: Claude Code running in Bypass Permissions mode",
                        Answer::Bypass("Yes, I accept"),
                    ),
                    dialog(
                        "claude.api-key",
                        r"Do you want to use this API key\?|Detected a custom API key in your environment",
                        Answer::Human(
                            "asks whether to use the API key in its environment: answer it once in the agent's terminal (1 = yes)",
                        ),
                    ),
                    dialog(
                        "claude.login",
                        r"^ +Select login method:$",
                        Answer::Human(
                            "needs sign-in: run `claude` once and log in, or give the runtime ANTHROPIC_API_KEY",
                        ),
                    ),
                    dialog(
                        "claude.not-logged-in",
                        r"Not logged in · (Run|Please run) /login",
                        Answer::Human(
                            "needs sign-in (\"Not logged in\"): run `claude` once and /login, or give the runtime ANTHROPIC_API_KEY",
                        ),
                    ),
                    dialog(
                        "claude.offline",
                        r"Unable to connect to Anthropic services",
                        Answer::Human(
                            "cannot reach Anthropic to sign in: check the network, or give the runtime ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL",
                        ),
                    ),
                    dialog(
                        "claude.theme",
                        r"Choose the text style that looks best with your terminal",
                        Answer::Human(
                            "shows Claude Code's first-run setup (theme, security notes): finish it once in the agent's terminal",
                        ),
                    ),
                    dialog(
                        "claude.security-notes",
                        r"^ Security notes:$",
                        Answer::Human(
                            "shows Claude Code's first-run setup (security notes): finish it once in the agent's terminal",
                        ),
                    ),
                ],
                fatals: vec![
                    fatal(
                        "claude.root",
                        r"--dangerously-skip-permissions cannot be used with root/sudo privileges",
                        "Claude Code refuses --dangerously-skip-permissions as root",
                        "set IS_SANDBOX=1 for the runtime (town.toml: [runtimes.claude.env] IS_SANDBOX = \"1\") when this machine is a sandbox, or run the town as a normal user",
                    ),
                    fatal(
                        "claude.unknown-option",
                        r"error: unknown option '(--session-id|--resume|--dangerously-skip-permissions)'",
                        "this claude does not know an option the preset uses",
                        "install a verified version: npm install -g @anthropic-ai/claude-code@2.1.197",
                    ),
                ],
                prompt_below: None,
            },
            Program {
                name: "codex",
                package: "@openai/codex",
                verified: &["0.171.0"],
                bypass_flags: &["--dangerously-bypass-approvals-and-sandbox", "--yolo"],
                resume: Some(Resume::Discovered {
                    subcommand: "resume",
                }),
                // Codex 0.171 asks "Trust this folder?" even with a `-c projects...` override,
                // and saves the answer itself: answered by key (Enter on "Trust and continue").
                trust_args: None,
                // Codex 0.171 runs its shell commands in an app-server daemon shared by every
                // Codex of one CODEX_HOME, started with the environment of the first Codex that
                // needed it (another agent's GT_AGENT, GT_BEAD, PATH) and outliving them all;
                // `--no-daemon` runs them in this Codex, even when such a daemon is running.
                isolation_args: &["--no-daemon"],
                dialogs: vec![
                    dialog(
                        "codex.sign-in",
                        r"Sign in with ChatGPT|^  Sign in another way$",
                        Answer::Human(
                            "needs sign-in: run `codex login` once, or give the runtime an API key",
                        ),
                    ),
                    dialog(
                        "codex.trust",
                        r"Trust this folder\?|Do you trust the contents of this directory\?",
                        Answer::Trust("Trust and continue"),
                    ),
                    dialog(
                        "codex.model-upgrade",
                        r"^  Meet \S.*$|^. 1\. Try new model$",
                        Answer::Human(
                            "offers a model upgrade: answer it once in the agent's terminal (1 tries the new model, 2 keeps the current one)",
                        ),
                    ),
                    // Not fatal: Codex prints it under the prompt and waits for the next one.
                    dialog(
                        "codex.env-key",
                        r"^■ Missing environment variable: `?[A-Za-z_][A-Za-z0-9_]*`?",
                        Answer::Human(
                            "needs an API key: its model provider's key variable is not set (town.toml: [runtimes.codex.env]), or run `codex login` once",
                        ),
                    ),
                ],
                fatals: vec![fatal(
                    "codex.unknown-option",
                    r"(?i)error: unexpected argument '(--no-daemon|--dangerously-bypass-approvals-and-sandbox)' found",
                    "this codex does not know an option the town runs it with (--no-daemon keeps each agent's commands in its own Codex)",
                    "install a verified version: npm install -g @openai/codex@0.171.0",
                )],
                prompt_below: None,
            },
            Program {
                name: "gemini",
                package: "@google/gemini-cli",
                verified: &["0.61.0"],
                bypass_flags: &["--yolo"],
                resume: Some(Resume::Named {
                    start: "--session-id",
                    resume: "--resume",
                }),
                trust_args: Some(|_| vec!["--skip-trust".to_string()]),
                isolation_args: &[],
                dialogs: vec![
                    dialog(
                        "gemini.trust",
                        r"Do you trust the files in this folder\?",
                        Answer::Trust("Trust folder"),
                    ),
                    dialog(
                        "gemini.auth",
                        r"How would you like to authenticate for this project\?",
                        Answer::Human(
                            "needs sign-in: choose how Gemini CLI authenticates once in the agent's terminal (with GEMINI_API_KEY set for the runtime: \"Use Gemini API Key\"), or set security.auth.selectedType in ~/.gemini/settings.json",
                        ),
                    ),
                    dialog(
                        "gemini.api-key",
                        r"Enter Gemini API Key",
                        Answer::Human(
                            "asks for a Gemini API key: paste it once in the agent's terminal, or set GEMINI_API_KEY for the runtime",
                        ),
                    ),
                ],
                fatals: vec![fatal(
                    "gemini.session-exists",
                    r#"Session ID "[^"]+" already exists"#,
                    "Gemini CLI refuses a session id it already has",
                    "run `gastown-tui handoff AGENT` to start a fresh conversation",
                )],
                prompt_below: Some(re(
                    r"^ workspace \(/directory\)\s+(?:branch\s+)?sandbox\s+/model$",
                )),
            },
        ]
    })
}

/// Codex's own id for the conversation it started in `cwd` at or after `since`: the newest
/// rollout file under `codex_home/sessions/YYYY/MM/DD/` whose `session_meta` names that folder.
/// Only the two newest day folders are read.
pub fn codex_session(
    codex_home: &std::path::Path,
    cwd: &std::path::Path,
    since: std::time::SystemTime,
) -> Option<String> {
    use std::io::BufRead;
    fn newest(dir: &std::path::Path, n: usize) -> Vec<std::path::PathBuf> {
        let v = super::usage::subdirs(dir);
        v.into_iter().rev().take(n).collect()
    }
    let mut days = Vec::new();
    for y in newest(&codex_home.join("sessions"), 2) {
        for m in newest(&y, 2) {
            days.extend(newest(&m, 2));
        }
    }
    days.sort();
    let mut found: Option<(std::time::SystemTime, String)> = None;
    for day in days.iter().rev().take(2) {
        for e in std::fs::read_dir(day).into_iter().flatten().flatten() {
            let path = e.path();
            let Some(modified) = e.metadata().ok().and_then(|m| m.modified().ok()) else {
                continue;
            };
            if modified < since || path.extension().is_none_or(|x| x != "jsonl") {
                continue;
            }
            let Ok(file) = std::fs::File::open(&path) else {
                continue;
            };
            let mut first = String::new();
            if std::io::BufReader::new(file).read_line(&mut first).is_err() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&first).unwrap_or_default();
            let meta = &v["payload"];
            if v["type"] != "session_meta" || meta["cwd"].as_str() != cwd.to_str() {
                continue;
            }
            if let Some(id) = meta["id"].as_str() {
                if found.as_ref().is_none_or(|(t, _)| modified > *t) {
                    found = Some((modified, id.to_string()));
                }
            }
        }
    }
    found.map(|(_, id)| id)
}

/// The program a runtime command runs, if the town knows it.
pub fn of_command(command: &[String]) -> Option<&'static Program> {
    let first = command.first()?;
    let name = std::path::Path::new(first).file_name()?.to_str()?;
    programs().iter().find(|p| p.name == name)
}

/// The program called `name`, if the town knows it.
pub fn named(name: &str) -> Option<&'static Program> {
    programs().iter().find(|p| p.name == name)
}

/// Every program the town knows.
pub fn all() -> &'static [Program] {
    programs()
}

/// A numbered menu with a selection cursor on its first line or a later one (`❯ 1. Yes`,
/// `> 2. No`, `● 1. Trust folder`): a question, whatever program asks it.
fn menu() -> &'static Regex {
    static MENU: OnceLock<Regex> = OnceLock::new();
    MENU.get_or_init(|| re(r"^\s*[│┃|]?\s*[❯>›●▶→]\s*[1-9][.)]\s+\S"))
}

/// What a screen shows that is not the program's normal work: a dialog of its own, or a
/// menu the town does not know.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Known(&'static Dialog),
    /// A numbered menu the town does not know.
    Unknown,
}

impl Program {
    /// The dialog on `screen`, if any. Known dialogs first; then any numbered menu.
    pub fn dialog(&'static self, screen: &str) -> Option<Seen> {
        let below = self
            .prompt_below
            .as_ref()
            .and_then(|p| p.find_iter(screen).last())
            .map_or(0, |m| m.start());
        let screen = &screen[below..];
        if let Some(d) = self.dialogs.iter().find(|d| d.pattern.is_match(screen)) {
            return Some(Seen::Known(d));
        }
        unknown_dialog(screen).then_some(Seen::Unknown)
    }

    /// The fatal start error `output` shows, if any.
    pub fn fatal(&self, output: &str) -> Option<&Fatal> {
        self.fatals.iter().find(|f| f.pattern.is_match(output))
    }

    /// Whether `command` asks this program to skip its permission questions.
    pub fn bypass_requested(&self, command: &[String]) -> bool {
        command
            .iter()
            .skip(1)
            .any(|a| self.bypass_flags.contains(&a.as_str()))
    }

    /// Whether `version_output` (what `PROGRAM --version` printed) names a verified version.
    pub fn is_verified(&self, version_output: &str) -> bool {
        version_of(version_output).is_some_and(|v| self.verified.contains(&v.as_str()))
    }
}

impl PartialEq for Dialog {
    fn eq(&self, other: &Dialog) -> bool {
        self.id == other.id
    }
}

/// The arrow key that moves a menu's selection down, and the one that moves it up.
pub const DOWN: &str = "\x1b[B";
pub const UP: &str = "\x1b[A";

/// One line of a menu as drawn: whether the selection cursor is on it, its number if it has
/// one, the column its text starts at, and the text.
struct MenuLine<'a> {
    selected: bool,
    number: Option<u32>,
    column: usize,
    text: &'a str,
}

fn menu_line(line: &str) -> MenuLine<'_> {
    let mut rest = line.trim_start();
    rest = rest
        .strip_prefix(['│', '┃', '|'])
        .unwrap_or(rest)
        .trim_start();
    let selected = rest.starts_with(['❯', '>', '›', '●', '▶', '→']);
    if selected {
        let mut chars = rest.chars();
        chars.next();
        rest = chars.as_str().trim_start();
    }
    let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
    let mut number = None;
    if digits > 0 && rest[digits..].starts_with(['.', ')']) {
        let after = &rest[digits + 1..];
        if after.starts_with(' ') {
            number = rest[..digits].parse().ok();
            rest = after.trim_start();
        }
    }
    let text = rest.trim_end().trim_end_matches(['│', '┃', '|']).trim_end();
    MenuLine {
        selected,
        number,
        column: line.chars().count() - rest.chars().count(),
        text,
    }
}

/// The keys that choose the option starting with `label` in the menu on `screen`: arrows
/// from the selected option to it, then Enter. None when the screen has no such option or
/// no selected one near it (the town then leaves the dialog to the human).
pub fn keys_to_choose(screen: &str, label: &str) -> Option<Vec<&'static str>> {
    let lines: Vec<&str> = screen.lines().collect();
    let parsed: Vec<MenuLine> = lines.iter().map(|l| menu_line(l)).collect();
    let target = parsed.iter().position(|m| m.text.starts_with(label))?;
    let near = target.saturating_sub(12)..(target + 13).min(parsed.len());
    let cursor = near.clone().find(|&i| parsed[i].selected)?;
    let t = &parsed[target];
    let steps: i64 = match (t.number, parsed[cursor].number) {
        // Numbered options: their numbers tell the distance (descriptions in between do not
        // count).
        (Some(to), Some(from)) => to as i64 - from as i64,
        (None, None) => {
            // Unnumbered: the lines between with the options' text column are options.
            let (lo, hi) = (cursor.min(target), cursor.max(target));
            let n = (lo + 1..=hi)
                .filter(|&i| parsed[i].column == t.column && !parsed[i].text.is_empty())
                .count() as i64;
            if target >= cursor {
                n
            } else {
                -n
            }
        }
        _ => return None,
    };
    let arrow = if steps >= 0 { DOWN } else { UP };
    let mut keys = vec![arrow; steps.unsigned_abs() as usize];
    keys.push("\r");
    Some(keys)
}

/// Whether `screen` shows a numbered menu with a cursor (any program's question).
pub fn unknown_dialog(screen: &str) -> bool {
    menu().is_match(screen)
}

/// What `program --version` prints, with a time limit (a node CLI can take seconds to start;
/// one that hangs is killed). None when it could not be run or printed nothing.
pub fn probe_version(program: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let mut child = std::process::Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    let out = out.trim().to_string();
    (!out.is_empty()).then_some(out)
}

/// The first dotted version number in a program's `--version` output.
pub fn version_of(output: &str) -> Option<String> {
    static V: OnceLock<Regex> = OnceLock::new();
    V.get_or_init(|| Regex::new(r"\d+\.\d+\.\d+").expect("compiles"))
        .find(output)
        .map(|m| m.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn codex_s_session_is_found_by_its_folder() {
        let home = tempfile::tempdir().unwrap();
        let day = home.path().join("sessions/2026/12/02");
        std::fs::create_dir_all(&day).unwrap();
        let since = std::time::SystemTime::now() - std::time::Duration::from_secs(5);
        let meta = |id: &str, cwd: &str| {
            format!(
                "{{\"timestamp\":\"t\",\"type\":\"session_meta\",\"payload\":{{\"id\":\"{id}\",\"cwd\":\"{cwd}\"}}}}\n{{\"type\":\"event_msg\"}}\n"
            )
        };
        std::fs::write(
            day.join("rollout-a-111.jsonl"),
            meta("111", "/town/demo/polecats/nux"),
        )
        .unwrap();
        std::fs::write(
            day.join("rollout-b-222.jsonl"),
            meta("222", "/town/demo/polecats/slit"),
        )
        .unwrap();
        std::fs::write(day.join("notes.txt"), "x").unwrap();
        let nux = Path::new("/town/demo/polecats/nux");
        assert_eq!(
            codex_session(home.path(), nux, since).as_deref(),
            Some("111")
        );
        assert_eq!(
            codex_session(home.path(), Path::new("/town/demo/polecats/slit"), since).as_deref(),
            Some("222")
        );
        assert_eq!(
            codex_session(home.path(), Path::new("/elsewhere"), since),
            None
        );
        // Files older than the session are an earlier conversation, not this one.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        assert_eq!(codex_session(home.path(), nux, later), None);
    }

    #[test]
    fn programs_are_known_by_their_command_s_file_name() {
        let cmd = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let claude =
            of_command(&cmd(&["/opt/bin/claude", "--dangerously-skip-permissions"])).unwrap();
        assert_eq!(claude.name, "claude");
        assert!(claude.bypass_requested(&cmd(&["claude", "--dangerously-skip-permissions"])));
        assert!(!claude.bypass_requested(&cmd(&["claude", "--model", "opus"])));
        assert!(of_command(&cmd(&["gastown-tui", "sim-agent"])).is_none());
        assert!(claude.is_verified("2.1.197 (Claude Code)"));
        assert!(!claude.is_verified("2.0.1 (Claude Code)"));
        assert_eq!(version_of("codex-cli 0.171.0").as_deref(), Some("0.171.0"));
        let gemini = named("gemini").unwrap();
        let args = (gemini.trust_args.unwrap())(Path::new("/t/demo/polecats/nux"));
        assert_eq!(args, ["--skip-trust"]);
        assert!(
            named("codex").unwrap().trust_args.is_none(),
            "Codex is answered by key"
        );
    }

    fn fixture(rel: &str) -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens");
        std::fs::read_to_string(root.join(rel)).unwrap()
    }

    /// The option the town means is chosen wherever the program put it and whichever option
    /// the program selected first, in the real screens of every version captured.
    #[test]
    fn the_town_chooses_its_answer_by_the_option_s_label() {
        let cases: &[(&str, &[&str])] = &[
            // "❯ 1. Yes, I trust this folder" is selected: Enter.
            ("claude/2.1.197/trust.txt", &["\r"]),
            // "❯ 1. No, exit" is selected, "2. Yes, I accept" below it.
            ("claude/2.1.197/bypass.txt", &[DOWN, "\r"]),
            // A later Claude Code, with hooks in the folder: "❯ No, exit" first, unnumbered.
            ("claude/2.1.332/trust-hooks.txt", &[DOWN, "\r"]),
            ("claude/2.1.332/bypass.txt", &[DOWN, "\r"]),
            ("codex/0.171.0/trust.txt", &["\r"]),
            ("gemini/0.61.0/trust.txt", &["\r"]),
        ];
        for (file, want) in cases {
            let screen = fixture(file);
            let program = named(file.split('/').next().unwrap()).unwrap();
            let Some(Seen::Known(d)) = program.dialog(&screen) else {
                panic!("{file}: no known dialog");
            };
            let label = match d.answer {
                Answer::Trust(l) | Answer::Bypass(l) => l,
                Answer::Human(r) => panic!("{file}: {} is for the human: {r}", d.id),
            };
            assert_eq!(
                keys_to_choose(&screen, label).as_deref(),
                Some(*want),
                "{file}"
            );
        }
        // Upwards, and a description line under an option is not an option.
        let menu = "  1. Trust folder\n     it is yours\n  2. Other\n> 3. Don't trust\n";
        assert_eq!(
            keys_to_choose(menu, "Trust folder").as_deref(),
            Some(&[UP, UP, "\r"][..])
        );
        // No such option, or no selection to move from: nothing is typed.
        assert_eq!(keys_to_choose(menu, "Yes, I accept"), None);
        assert_eq!(
            keys_to_choose("  1. Trust folder\n  2. No\n", "Trust folder"),
            None
        );
    }

    /// The start errors no restart fixes are told apart by what the program printed; other
    /// exits are not fatal (the Witness restarts them).
    #[test]
    fn fatal_start_errors_are_known_by_their_output() {
        let claude = named("claude").unwrap();
        let old = "error: unknown option '--session-id'\n(Did you mean --resume?)";
        assert_eq!(
            claude.fatal(old).map(|f| f.id),
            Some("claude.unknown-option")
        );
        let root = fixture("claude/2.1.197/root-refusal.txt");
        let f = claude.fatal(&root).unwrap();
        assert!(f.fix.contains("IS_SANDBOX=1"), "{}", f.fix);
        assert!(claude.fatal("Error: connection reset").is_none());
        let gemini = named("gemini").unwrap();
        let exists = "Error starting session: Session ID \"9b2e\" already exists. Use --resume to resume it, or provide a different ID.";
        assert_eq!(
            gemini.fatal(exists).map(|f| f.id),
            Some("gemini.session-exists")
        );
        let codex = named("codex").unwrap();
        assert!(codex.fatal(exists).is_none());
        // What Codex 0.171's argument parser prints for an option it does not know.
        let old = "Error: unexpected argument '--no-daemon' found\n\n  tip: to pass '--no-daemon' as a value, use '-- --no-daemon'";
        assert_eq!(codex.fatal(old).map(|f| f.id), Some("codex.unknown-option"));
        assert!(codex
            .fatal("error: unexpected argument '--other' found")
            .is_none());
    }
}
