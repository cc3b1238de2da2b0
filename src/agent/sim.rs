//! The simulated coding agent: `gastown-tui sim-agent`, the `sim` runtime.
//!
//! It stands in for a real agent (Claude Code, Codex, ...) so the tests and the demo need no
//! API key. It is a plain line-oriented program: a banner, then the ready prompt [`PROMPT`]
//! (printed without a newline), then one input line at a time (ended by `\n`, `\r` or `\r\n`,
//! so it works in a PTY in cooked or raw mode).
//!
//! Told anything while its hooked bead is still to do, it works: it runs `gastown-tui prime`,
//! reads the bead (`bead show ID --json`), acts out the `sim:` lines of the bead's description
//! in order (see [`Step`]), runs the rig's `./test.sh` and calls `gastown-tui done`, printing
//! agent-like output (tool-call lines, think lines, spinners) on the way. Afterwards it sits at
//! its prompt and echoes what it is told. End of input ends it with exit code 0.
//!
//! Nothing that comes from the bead, the environment or the commands it runs makes it panic:
//! a bad `sim:` line is a warning, a failing step ends the work with a message and the prompt.
//!
//! Everything outside the process goes through [`Host`] (the CLI calls, the test script,
//! sleeping), so [`Session`] runs in unit tests on plain buffers; [`ProcessHost`] is the real
//! one and [`run_stdio`] wires it to standard input and output.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The ready prompt; the `sim` runtime's ready regex is `sim> $`.
pub const PROMPT: &str = "sim> ";
/// The exit code of `sim: crash`.
pub const CRASH_EXIT_CODE: i32 = 17;
/// The file a script without any action step edits.
pub const DEFAULT_EDIT_FILE: &str = "NOTES.md";
/// The file `sim: break-tests` commits (the demo rig's `test.sh` fails while it exists).
pub const BROKEN_FILE: &str = "BROKEN";
/// What the agent answers to a nudge it ignores (`sim: ignore-nudges N`).
pub const IGNORE_REPLY: &str = "I'll wait for more instructions.";

/// Bounds on script arguments, so a typo cannot make the agent run for ever or fill a disk.
const MAX_SLEEP: Duration = Duration::from_secs(24 * 3600);
const MAX_FLOOD_MB: f64 = 1024.0;
const MAX_IGNORE: u32 = 10_000;
/// Longest input line kept; the rest of a longer line is dropped.
const MAX_LINE: usize = 64 * 1024;
/// Spinner frame interval.
const TICK: Duration = Duration::from_millis(80);
const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

// SGR pieces.
const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const MAGENTA: &str = "\x1b[35m";
const CYAN: &str = "\x1b[36m";
const ORANGE: &str = "\x1b[38;5;208m";

// ---------------------------------------------------------------------------------------------
// The script.

/// One `sim:` line of a bead's description.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `sim: edit FILE`: append a line to FILE (relative to the worktree) and commit it.
    Edit(String),
    /// `sim: sleep SECONDS` (also `500ms`, `2s`, ...): a spinner for that long.
    Sleep(Duration),
    /// `sim: stall`: stop producing output and never finish (the process stays alive).
    Stall,
    /// `sim: crash`: exit with [`CRASH_EXIT_CODE`], only in the bead's first session.
    Crash,
    /// `sim: break-tests`: commit a file named [`BROKEN_FILE`].
    BreakTests,
    /// `sim: conflict FILE`: rewrite FILE's first line with text unique to the bead and commit.
    Conflict(String),
    /// `sim: flood MB`: stream that many bytes of agent-like output fast.
    Flood(u64),
    /// `sim: ignore-nudges N`: answer the first N input lines politely and do nothing.
    IgnoreNudges(u32),
    /// A `sim:` line that cannot be run (unknown verb, bad argument): warned about and skipped.
    Invalid { line: String, reason: String },
}

impl Step {
    /// Whether the step does work (as opposed to configuring the agent or being invalid).
    pub fn is_action(&self) -> bool {
        !matches!(self, Step::IgnoreNudges(_) | Step::Invalid { .. })
    }
}

/// The `sim:` lines of a description, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    pub steps: Vec<Step>,
}

impl Script {
    /// How many nudges to ignore (the last `ignore-nudges` line wins; 0 without one).
    pub fn ignore_nudges(&self) -> u32 {
        self.steps
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::IgnoreNudges(n) => Some(*n),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// The steps to run: the script's own, plus one small edit of [`DEFAULT_EDIT_FILE`] when
    /// none of them does any work (no `sim:` line at all, or only settings and bad lines).
    pub fn work_steps(&self) -> Vec<Step> {
        let mut steps = self.steps.clone();
        if !steps.iter().any(Step::is_action) {
            steps.push(Step::Edit(DEFAULT_EDIT_FILE.to_string()));
        }
        steps
    }
}

/// Parses the `sim:` lines (trimmed text starting with `sim:`) of a bead's description.
pub fn parse_script(text: &str) -> Script {
    Script {
        steps: text.lines().filter_map(parse_line).collect(),
    }
}

/// Parses one line: `None` when it is not a `sim:` line.
pub fn parse_line(line: &str) -> Option<Step> {
    let t = line.trim();
    let rest = t.strip_prefix("sim:")?.trim();
    let (verb, arg) = match rest.split_once(char::is_whitespace) {
        Some((v, a)) => (v, a.trim()),
        None => (rest, ""),
    };
    let invalid = |reason: String| Step::Invalid {
        line: t.to_string(),
        reason,
    };
    let step = match verb.to_ascii_lowercase().as_str() {
        "edit" => match file_arg(arg) {
            Ok(f) => Step::Edit(f),
            Err(e) => invalid(e),
        },
        "conflict" => match file_arg(arg) {
            Ok(f) => Step::Conflict(f),
            Err(e) => invalid(e),
        },
        "sleep" => match parse_seconds(arg) {
            Some(d) if d <= MAX_SLEEP => Step::Sleep(d),
            Some(_) => invalid(format!("sleep '{arg}' is longer than a day")),
            None => invalid(format!(
                "sleep needs a number of seconds (e.g. 'sim: sleep 2.5'), got '{arg}'"
            )),
        },
        "stall" => Step::Stall,
        "crash" => Step::Crash,
        "break-tests" => Step::BreakTests,
        "flood" => match arg.parse::<f64>() {
            Ok(mb) if mb.is_finite() && mb > 0.0 && mb <= MAX_FLOOD_MB => {
                Step::Flood((mb * 1024.0 * 1024.0).round().max(1.0) as u64)
            }
            _ => invalid(format!(
                "flood needs a size in megabytes between 0 and {MAX_FLOOD_MB}, got '{arg}'"
            )),
        },
        "ignore-nudges" => match arg.parse::<u32>() {
            Ok(n) if n <= MAX_IGNORE => Step::IgnoreNudges(n),
            _ => invalid(format!(
                "ignore-nudges needs a count between 0 and {MAX_IGNORE}, got '{arg}'"
            )),
        },
        "" => invalid("empty sim: line".to_string()),
        other => invalid(format!("unknown sim verb '{other}'")),
    };
    Some(step)
}

/// A file argument: non-empty, relative, inside the worktree, not in `.git`. Surrounding
/// quotes or backticks are dropped.
fn file_arg(arg: &str) -> Result<String, String> {
    let f = strip_quotes(arg);
    if f.is_empty() {
        return Err("needs a file name".to_string());
    }
    let p = Path::new(f);
    let mut first = true;
    for c in p.components() {
        match c {
            Component::Normal(n) => {
                if first && n == ".git" {
                    return Err(format!("'{f}' is inside .git"));
                }
                first = false;
            }
            Component::CurDir => {}
            _ => return Err(format!("'{f}' must be a relative path inside the worktree")),
        }
    }
    if first {
        return Err(format!("'{f}' is not a file name"));
    }
    Ok(f.to_string())
}

fn strip_quotes(s: &str) -> &str {
    let s = s.trim();
    for q in ['`', '"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].trim();
        }
    }
    s
}

/// `2`, `0.2`, `1.5s`, or a humantime duration such as `500ms`.
fn parse_seconds(arg: &str) -> Option<Duration> {
    let a = arg.trim();
    let secs = a.parse::<f64>().ok().or_else(|| {
        a.strip_suffix('s')
            .and_then(|n| n.trim().parse::<f64>().ok())
    });
    match secs {
        Some(s) if s.is_finite() && s >= 0.0 => Duration::try_from_secs_f64(s).ok(),
        Some(_) => None,
        None => humantime::parse_duration(a).ok(),
    }
}

// ---------------------------------------------------------------------------------------------
// The outside world.

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default)]
pub struct CmdOutput {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    fn from_output(o: std::process::Output) -> CmdOutput {
        CmdOutput {
            success: o.status.success(),
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// The first non-empty line of stderr, else of stdout: the gist of a failure.
    fn gist(&self) -> String {
        self.stderr
            .lines()
            .chain(self.stdout.lines())
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| match self.code {
                Some(c) => format!("exit code {c}"),
                None => "killed by a signal".to_string(),
            })
    }
}

/// Everything the agent does outside its own process (and outside its worktree's files).
pub trait Host {
    /// Runs `gastown-tui ARGS` as this agent (its town and `--as` added).
    fn gastown(&mut self, args: &[&str]) -> io::Result<CmdOutput>;
    /// Runs the rig's tests (`sh ./test.sh`) in `dir`.
    fn run_tests(&mut self, dir: &Path) -> io::Result<CmdOutput>;
    /// Waits (spinners, `sim: sleep`).
    fn sleep(&mut self, d: Duration);
    /// `sim: stall`: never returns in a real agent. A test host may return; the session then
    /// ends with [`Outcome::Stalled`].
    fn stall(&mut self);
}

/// The real host: the `gastown-tui` binary itself for the CLI, `sh` for the tests, real sleep.
#[derive(Debug, Clone)]
pub struct ProcessHost {
    pub exe: PathBuf,
    pub town: Option<PathBuf>,
    pub agent: String,
    pub dir: PathBuf,
}

impl ProcessHost {
    /// The binary running now (it is `gastown-tui`), for the agent and town of `env`.
    pub fn for_env(env: &SimEnv) -> io::Result<ProcessHost> {
        Ok(ProcessHost {
            exe: std::env::current_exe()?,
            town: env.town.clone(),
            agent: env.agent.clone(),
            dir: env.workdir.clone(),
        })
    }
}

impl Host for ProcessHost {
    fn gastown(&mut self, args: &[&str]) -> io::Result<CmdOutput> {
        let mut c = Command::new(&self.exe);
        if let Some(t) = &self.town {
            c.arg("--town").arg(t);
        }
        c.arg("--as").arg(&self.agent).args(args);
        c.current_dir(&self.dir).stdin(Stdio::null());
        c.output().map(CmdOutput::from_output)
    }

    fn run_tests(&mut self, dir: &Path) -> io::Result<CmdOutput> {
        Command::new("sh")
            .arg("./test.sh")
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .map(CmdOutput::from_output)
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }

    fn stall(&mut self) {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// What the engine tells the agent through its environment.
#[derive(Debug, Clone, Default)]
pub struct SimEnv {
    /// `--town`, else `$GT_TOWN` (else the CLI finds the town from the working directory).
    pub town: Option<PathBuf>,
    /// Who the agent is (`--as`, `$GT_AGENT`, `$BD_ACTOR`).
    pub agent: String,
    pub rig: Option<String>,
    pub role: Option<String>,
    /// `$GT_BEAD`: the bead the engine started this session for.
    pub bead: Option<String>,
    /// The worktree: the working directory.
    pub workdir: PathBuf,
    /// `$GT_USAGE_FILE`: where the sim reports the (made-up) tokens of each turn, in the
    /// town's own usage format, so the demo shows costs.
    pub usage_file: Option<PathBuf>,
}

impl SimEnv {
    /// From the process environment; `town_flag` and `agent` are the resolved CLI flags.
    pub fn from_process(town_flag: Option<&Path>, agent: String) -> SimEnv {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        SimEnv {
            town: town_flag
                .map(Path::to_path_buf)
                .or_else(|| var("GT_TOWN").map(PathBuf::from)),
            agent,
            rig: var("GT_RIG"),
            role: var("GT_ROLE"),
            bead: var("GT_BEAD"),
            workdir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            usage_file: var(super::usage::USAGE_FILE_ENV).map(PathBuf::from),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Input.

/// Splits input into lines ended by `\n`, `\r` or `\r\n` (a PTY in raw mode sends `\r`).
pub struct Lines<R> {
    inner: R,
    after_cr: bool,
}

impl<R: BufRead> Lines<R> {
    pub fn new(inner: R) -> Lines<R> {
        Lines {
            inner,
            after_cr: false,
        }
    }

    /// The next line without its ending; `None` at end of input. Invalid UTF-8 is replaced.
    pub fn next_line(&mut self) -> io::Result<Option<String>> {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let (used, ended) = {
                let avail = match self.inner.fill_buf() {
                    Ok(a) => a,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if avail.is_empty() {
                    self.after_cr = false;
                    return Ok(
                        (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned())
                    );
                }
                if self.after_cr && avail[0] == b'\n' {
                    (1, None)
                } else {
                    match avail.iter().position(|&b| b == b'\n' || b == b'\r') {
                        Some(p) => {
                            keep(&mut buf, &avail[..p]);
                            (p + 1, Some(avail[p] == b'\r'))
                        }
                        None => {
                            keep(&mut buf, avail);
                            (avail.len(), None)
                        }
                    }
                }
            };
            self.inner.consume(used);
            self.after_cr = false;
            if let Some(cr) = ended {
                self.after_cr = cr;
                return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
            }
        }
    }
}

fn keep(buf: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_LINE.saturating_sub(buf.len());
    buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

// ---------------------------------------------------------------------------------------------
// The session.

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// End of input: exit 0.
    Eof,
    /// Exit with this code (`sim: crash`).
    Exit(i32),
    /// `sim: stall` with a host whose `stall` returned (tests only).
    Stalled,
}

impl Outcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Eof | Outcome::Stalled => 0,
            Outcome::Exit(c) => c,
        }
    }
}

/// Why a piece of work stopped early.
enum Fail {
    /// Writing to the terminal failed: the session is over.
    Out(io::Error),
    /// A step failed: say so and go back to the prompt.
    Msg(String),
    /// End the process with this code.
    Exit(i32),
    /// `sim: stall` returned (test hosts only).
    Stalled,
}

type Res<T = ()> = Result<T, Fail>;

fn msg(context: &str) -> impl Fn(String) -> Fail + '_ {
    move |e| Fail::Msg(format!("{context}: {e}"))
}

/// One run of the simulated agent: reads lines, works, writes to `out`.
pub struct Session<W: Write, H: Host> {
    env: SimEnv,
    host: H,
    out: W,
    /// Scripts read so far, by bead.
    scripts: HashMap<String, Script>,
    /// Nudges ignored so far, by bead.
    ignored: HashMap<String, u32>,
    /// Beads this session has worked on (done or not): later input is echoed.
    worked: HashSet<String>,
    /// Counts steps, to vary the think lines.
    beat: usize,
    /// Turns answered, and bytes written during the current one (for the usage report).
    turns: u64,
    said: u64,
}

impl<W: Write, H: Host> Session<W, H> {
    pub fn new(env: SimEnv, host: H, out: W) -> Session<W, H> {
        Session {
            env,
            host,
            out,
            scripts: HashMap::new(),
            ignored: HashMap::new(),
            worked: HashSet::new(),
            beat: 0,
            turns: 0,
            said: 0,
        }
    }

    /// The host (for tests that inspect what was called).
    pub fn host(&self) -> &H {
        &self.host
    }

    /// Banner and prompt, then input line by line until end of input (or a crash).
    /// An error means the output could not be written (or the input read).
    pub fn run(&mut self, input: impl BufRead) -> io::Result<Outcome> {
        self.banner()?;
        let mut lines = Lines::new(input);
        while let Some(line) = lines.next_line()? {
            if let Some(outcome) = self.handle_line(&line)? {
                self.out.flush()?;
                return Ok(outcome);
            }
        }
        writeln!(self.out)?;
        self.out.flush()?;
        Ok(Outcome::Eof)
    }

    fn banner(&mut self) -> io::Result<()> {
        let version = env!("CARGO_PKG_VERSION");
        writeln!(
            self.out,
            "{ORANGE}{BOLD}✻ gastown-tui {version}{RESET} {DIM}·{RESET} simulated agent"
        )?;
        let mut who = vec![self.env.agent.clone()];
        who.extend(self.env.role.clone());
        who.extend(self.env.rig.as_ref().map(|r| format!("rig {r}")));
        who.extend(self.env.bead.as_ref().map(|b| format!("bead {b}")));
        writeln!(self.out, "  {DIM}{}{RESET}", who.join(" · "))?;
        writeln!(
            self.out,
            "  {DIM}cwd: {}{RESET}",
            self.env.workdir.display()
        )?;
        writeln!(
            self.out,
            "  {DIM}Tell me to begin and I work on my hook; no API key needed.{RESET}"
        )?;
        writeln!(self.out)?;
        self.prompt()
    }

    fn prompt(&mut self) -> io::Result<()> {
        write!(self.out, "{PROMPT}")?;
        self.out.flush()
    }

    /// One input line. `Some` ends the session.
    fn handle_line(&mut self, line: &str) -> io::Result<Option<Outcome>> {
        let text = clean(line);
        if text.is_empty() {
            self.prompt()?;
            return Ok(None);
        }
        self.said = 0;
        let result = self.respond(&text);
        self.report_usage(&text);
        let outcome = match result {
            Ok(()) => None,
            Err(Fail::Out(e)) => return Err(e),
            Err(Fail::Msg(m)) => {
                self.error_line(&m)?;
                None
            }
            Err(Fail::Exit(code)) => return Ok(Some(Outcome::Exit(code))),
            Err(Fail::Stalled) => return Ok(Some(Outcome::Stalled)),
        };
        self.prompt()?;
        Ok(outcome)
    }

    fn respond(&mut self, text: &str) -> Res {
        let Some(bead) = self.hooked_bead_quietly() else {
            self.say(&format!("you said: {text}"))?;
            return self.say(&format!("{DIM}(nothing on my hook){RESET}"));
        };
        if self.worked.contains(&bead) {
            // Sent back by the Refinery? Then there is work again: fix it.
            if let Some(mail) = self.fix_needed_quietly(&bead) {
                return self.fix(&bead, &mail);
            }
            return self.say(&format!("you said: {text}"));
        }
        let script = self.script_quietly(&bead)?;
        let ignored = self.ignored.entry(bead.clone()).or_insert(0);
        if *ignored < script.ignore_nudges() {
            *ignored += 1;
            return self.say(IGNORE_REPLY);
        }
        self.work(&bead)
    }

    /// `$GT_BEAD`, else what `prime` says is on the hook; without printing anything.
    fn hooked_bead_quietly(&mut self) -> Option<String> {
        if let Some(b) = &self.env.bead {
            return Some(b.clone());
        }
        match self.host.gastown(&["prime"]) {
            Ok(o) if o.success => hook_from_prime(&o.stdout),
            _ => None,
        }
    }

    /// The bead's script, read once per bead.
    fn script_quietly(&mut self, bead: &str) -> Res<Script> {
        if let Some(s) = self.scripts.get(bead) {
            return Ok(s.clone());
        }
        let (_, description) = self.read_bead(bead)?;
        let script = parse_script(&description);
        self.scripts.insert(bead.to_string(), script.clone());
        Ok(script)
    }

    /// `bead show ID --json`: (title, description).
    fn read_bead(&mut self, bead: &str) -> Res<(String, String)> {
        let o = self
            .host
            .gastown(&["bead", "show", bead, "--json"])
            .map_err(|e| Fail::Msg(format!("cannot run gastown-tui bead show {bead}: {e}")))?;
        if !o.success {
            return Err(Fail::Msg(format!("cannot read {bead}: {}", o.gist())));
        }
        let v: serde_json::Value = serde_json::from_str(&o.stdout)
            .map_err(|e| Fail::Msg(format!("cannot parse {bead} from bead show: {e}")))?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        Ok((field("title"), field("description")))
    }

    /// The whole job: prime, read the bead, run its script, test, done.
    fn work(&mut self, bead_hint: &str) -> Res {
        // prime: role, hook and mail, as a real agent would start.
        self.tool("Bash", "gastown-tui prime")?;
        let mut bead = bead_hint.to_string();
        match self.host.gastown(&["prime"]) {
            Ok(o) if o.success => {
                let shown: Vec<&str> = o
                    .stdout
                    .lines()
                    .filter(|l| l.starts_with("# ") || l.starts_with("## "))
                    .take(3)
                    .collect();
                let n = o.stdout.lines().count();
                for l in shown {
                    self.result(l)?;
                }
                self.result(&format!("{DIM}… {n} lines{RESET}"))?;
                if o.stdout.contains("## Your hook is empty") {
                    return self.say("nothing on my hook");
                }
                if self.env.bead.is_none() {
                    match hook_from_prime(&o.stdout) {
                        Some(b) => bead = b,
                        None => return self.say("nothing on my hook"),
                    }
                }
            }
            Ok(o) => self.warn(&format!("prime failed: {}", o.gist()))?,
            Err(e) => self.warn(&format!("cannot run gastown-tui prime: {e}"))?,
        }
        if let Some(mail) = self.fix_needed_quietly(&bead) {
            self.worked.insert(bead.clone());
            return self.fix(&bead, &mail);
        }
        if self.worked.contains(&bead) {
            return self.say(&format!("{bead} is already done in this session"));
        }

        self.tool("Bash", &format!("gastown-tui bead show {bead} --json"))?;
        let (title, description) = self.read_bead(&bead)?;
        let script = parse_script(&description);
        self.scripts.insert(bead.clone(), script.clone());
        let steps = script.work_steps();
        let actions = steps.iter().filter(|s| s.is_action()).count();
        self.result(&format!("{bead} \"{title}\""))?;
        self.think(&format!(
            "The hook holds {bead}. {actions} step{} to do, then tests and done.",
            if actions == 1 { "" } else { "s" }
        ))?;

        // From here on this bead counts as worked on: more input is echoed.
        self.worked.insert(bead.clone());
        for step in &steps {
            self.step(&bead, step)?;
        }

        let tests_ok = self.run_tests()?;
        self.tool("Bash", "gastown-tui done")?;
        match self.host.gastown(&["done"]) {
            Ok(o) if o.success => {
                for l in o.stdout.lines().filter(|l| !l.trim().is_empty()).take(3) {
                    self.result(l)?;
                }
                if tests_ok == Some(false) {
                    self.say(&format!(
                        "{GREEN}✔{RESET} Done: {bead} submitted for merge {RED}(tests failed: the Refinery will reject it){RESET}"
                    ))
                } else {
                    self.say(&format!("{GREEN}✔{RESET} Done: {bead} submitted for merge"))
                }
            }
            Ok(o) => Err(Fail::Msg(format!(
                "gastown-tui done failed for {bead}: {}",
                o.gist()
            ))),
            Err(e) => Err(Fail::Msg(format!("cannot run gastown-tui done: {e}"))),
        }
    }

    /// The id of an unread FIX_NEEDED mail about `bead` (the Refinery rejected it), if any.
    fn fix_needed_quietly(&mut self, bead: &str) -> Option<String> {
        let o = self.host.gastown(&["prime"]).ok().filter(|o| o.success)?;
        fix_needed_mail(&o.stdout, bead)
    }

    /// The second try after a red merge: read the Refinery's mail, repair what broke the
    /// tests (the `BROKEN` file of `sim: break-tests`), commit, test, submit again.
    fn fix(&mut self, bead: &str, mail: &str) -> Res {
        self.tool("Bash", &format!("gastown-tui mail read {mail}"))?;
        match self.host.gastown(&["mail", "read", mail]) {
            Ok(o) if o.success => {
                for l in o.stdout.lines().filter(|l| l.contains("FAIL")).take(2) {
                    self.result(l)?;
                }
            }
            Ok(o) => self.warn(&format!("mail read failed: {}", o.gist()))?,
            Err(e) => self.warn(&format!("cannot read mail: {e}"))?,
        }
        self.think(&format!(
            "The Refinery sent {bead} back: the tests fail. Fixing."
        ))?;
        let broken = self.env.workdir.join("BROKEN");
        if broken.exists() {
            self.tool("Bash", "git rm BROKEN")?;
            std::fs::remove_file(&broken)
                .map_err(|e| Fail::Msg(format!("cannot remove BROKEN: {e}")))?;
            self.commit(
                &["BROKEN"],
                &format!("{bead}: fix the tests (remove BROKEN)"),
            )?;
        }
        let tests_ok = self.run_tests()?;
        self.tool("Bash", "gastown-tui done")?;
        match self.host.gastown(&["done"]) {
            Ok(o) if o.success => {
                let note = if tests_ok == Some(false) {
                    " (tests still fail)"
                } else {
                    ""
                };
                self.say(&format!(
                    "{GREEN}✔{RESET} Fixed: {bead} submitted again{note}"
                ))
            }
            Ok(o) => Err(Fail::Msg(format!(
                "gastown-tui done failed for {bead}: {}",
                o.gist()
            ))),
            Err(e) => Err(Fail::Msg(format!("cannot run gastown-tui done: {e}"))),
        }
    }

    fn step(&mut self, bead: &str, step: &Step) -> Res {
        self.beat += 1;
        match step {
            Step::Edit(file) => self.edit(bead, file),
            Step::Sleep(d) => {
                self.think("Let me think this through.")?;
                self.spin(*d)
            }
            Step::Stall => {
                self.think("Hmm.")?;
                self.write(&format!("{CYAN}{}{RESET} Thinking… ", SPINNER[0]))?;
                self.flush()?;
                self.host.stall();
                Err(Fail::Stalled)
            }
            Step::Crash => self.crash(bead),
            Step::BreakTests => {
                self.think("A quick change here; the tests can wait.")?;
                self.tool("Write", BROKEN_FILE)?;
                let path = self.env.workdir.join(BROKEN_FILE);
                std::fs::write(&path, format!("broken on purpose by {bead}\n"))
                    .map_err(|e| Fail::Msg(format!("write {}: {e}", path.display())))?;
                self.result("Wrote 1 line")?;
                self.commit(&[BROKEN_FILE], &format!("{bead}: break the tests"))
            }
            Step::Conflict(file) => self.conflict(bead, file),
            Step::Flood(bytes) => self.flood(*bytes),
            Step::IgnoreNudges(_) => Ok(()),
            Step::Invalid { line, reason } => self.warn(&format!("skipping '{line}': {reason}")),
        }
    }

    fn edit(&mut self, bead: &str, file: &str) -> Res {
        let path = self.env.workdir.join(file);
        self.tool("Read", file)?;
        let existing = match std::fs::read(&path) {
            Ok(b) => {
                let n = b.iter().filter(|&&c| c == b'\n').count();
                self.result(&format!("Read {n} lines"))?;
                b
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.result("File does not exist yet")?;
                Vec::new()
            }
            Err(e) => return Err(Fail::Msg(format!("read {}: {e}", path.display()))),
        };
        self.think(&format!("I'll add a line to {file}."))?;
        self.tool("Edit", file)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Fail::Msg(format!("create {}: {e}", parent.display())))?;
        }
        let mut text = String::new();
        if !existing.is_empty() && !existing.ends_with(b"\n") {
            text.push('\n');
        }
        text.push_str(&format!(
            "{}change by {} for {bead}\n",
            comment_prefix(file),
            self.env.agent
        ));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Fail::Msg(format!("open {}: {e}", path.display())))?;
        f.write_all(text.as_bytes())
            .map_err(|e| Fail::Msg(format!("write {}: {e}", path.display())))?;
        self.result(&format!(
            "{GREEN}+{RESET} change by {} for {bead}",
            self.env.agent
        ))?;
        self.commit(&[file], &format!("{bead}: edit {file}"))
    }

    fn conflict(&mut self, bead: &str, file: &str) -> Res {
        let path = self.env.workdir.join(file);
        self.tool("Read", file)?;
        let old = match std::fs::read(&path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Fail::Msg(format!("read {}: {e}", path.display()))),
        };
        self.result(&format!("Read {} lines", old.lines().count()))?;
        self.think(&format!("The first line of {file} needs rewriting."))?;
        self.tool("Edit", file)?;
        let new_first = format!(
            "{}{bead} by {} rewrote this line",
            comment_prefix(file),
            self.env.agent
        );
        let rest = old.split_once('\n').map(|(_, r)| r).unwrap_or("");
        let text = format!("{new_first}\n{rest}");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Fail::Msg(format!("create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| Fail::Msg(format!("write {}: {e}", path.display())))?;
        if let Some(first) = old.lines().next() {
            self.result(&format!("{RED}-{RESET} {first}"))?;
        }
        self.result(&format!("{GREEN}+{RESET} {new_first}"))?;
        self.commit(
            &[file],
            &format!("{bead}: rewrite the first line of {file}"),
        )
    }

    fn crash(&mut self, bead: &str) -> Res {
        let marker = self.crash_marker(bead);
        if marker.exists() {
            self.think("Last time this went badly; carrying on.")?;
            return Ok(());
        }
        if let Err(e) = std::fs::write(&marker, format!("{bead}\n")) {
            // Crashing without the marker would crash every restart too.
            return self.warn(&format!(
                "not crashing: cannot write {}: {e}",
                marker.display()
            ));
        }
        self.say(&format!(
            "{RED}✘ Fatal: simulated crash (sim: crash); exiting with code {CRASH_EXIT_CODE}{RESET}"
        ))?;
        self.flush()?;
        Err(Fail::Exit(CRASH_EXIT_CODE))
    }

    /// `<gitdir>/gastown-sim-crashed-<bead>`: in the worktree's private git dir, so it is never
    /// tracked and survives the session. Outside a repository: the temp dir.
    fn crash_marker(&self, bead: &str) -> PathBuf {
        let safe: String = bead
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = format!("gastown-sim-crashed-{safe}");
        match git2::Repository::discover(&self.env.workdir) {
            Ok(repo) => repo.path().join(name),
            Err(_) => std::env::temp_dir().join(format!("{name}-{}", self.env.agent)),
        }
    }

    /// About `bytes` bytes of build-like output as fast as the terminal takes it.
    fn flood(&mut self, bytes: u64) -> Res {
        self.tool("Bash", "cargo build --workspace --verbose")?;
        let mut written: u64 = 0;
        let mut i: u64 = 0;
        let mut chunk = String::with_capacity(70 * 1024);
        while written < bytes {
            chunk.clear();
            while chunk.len() < 64 * 1024 && written + (chunk.len() as u64) < bytes {
                flood_line(&mut chunk, i);
                i += 1;
            }
            self.write(&chunk)?;
            written += chunk.len() as u64;
        }
        self.write(&format!("\r{RESET}\x1b[2K"))?;
        self.result(&format!(
            "Streamed {:.1} MB in {i} lines",
            written as f64 / (1024.0 * 1024.0)
        ))
    }

    /// A spinner with a running time for `d`, then a summary line.
    fn spin(&mut self, d: Duration) -> Res {
        const VERBS: [&str; 5] = [
            "Pondering",
            "Working",
            "Considering",
            "Reticulating",
            "Musing",
        ];
        let verb = VERBS[self.beat % VERBS.len()];
        let mut elapsed = Duration::ZERO;
        let mut frame = 0usize;
        loop {
            self.write(&format!(
                "\r{CYAN}{}{RESET} {verb}… {DIM}({:.1}s · esc to interrupt){RESET}",
                SPINNER[frame % SPINNER.len()],
                elapsed.as_secs_f64()
            ))?;
            self.flush()?;
            if elapsed >= d {
                break;
            }
            let step = TICK.min(d - elapsed);
            self.host.sleep(step);
            elapsed += step;
            frame += 1;
        }
        self.write("\r\x1b[2K")?;
        self.result(&format!("{verb} took {:.1}s", d.as_secs_f64()))
    }

    /// Stages `files` (relative to the working directory) and commits them on HEAD as the
    /// agent.
    fn commit(&mut self, files: &[&str], message: &str) -> Res {
        self.tool(
            "Bash",
            &format!("git add {} && git commit -m \"{message}\"", files.join(" ")),
        )?;
        let (branch, short) = commit_files(&self.env.workdir, files, &self.env.agent, message)
            .map_err(msg("git commit"))?;
        self.result(&format!("[{branch} {short}] {message}"))
    }

    /// Runs `./test.sh` when there is one: `Some(passed)`, `None` without tests.
    fn run_tests(&mut self) -> Res<Option<bool>> {
        if !self.env.workdir.join("test.sh").is_file() {
            self.think("No ./test.sh in this rig; nothing to run.")?;
            return Ok(None);
        }
        self.tool("Bash", "sh ./test.sh")?;
        let dir = self.env.workdir.clone();
        let o = match self.host.run_tests(&dir) {
            Ok(o) => o,
            Err(e) => {
                self.warn(&format!("cannot run ./test.sh: {e}"))?;
                return Ok(Some(false));
            }
        };
        let all: Vec<&str> = o
            .stdout
            .lines()
            .chain(o.stderr.lines())
            .filter(|l| !l.trim().is_empty())
            .collect();
        for l in &all[all.len().saturating_sub(5)..] {
            self.result(&format!("{DIM}{l}{RESET}"))?;
        }
        if o.success {
            self.result(&format!("{GREEN}{BOLD}PASS{RESET}"))?;
        } else {
            let code = o
                .code
                .map(|c| format!("exit code {c}"))
                .unwrap_or_else(|| "killed".to_string());
            self.result(&format!("{RED}{BOLD}FAIL{RESET} ({code})"))?;
            self.think("Tests failed. Submitting anyway: the Refinery is the gate.")?;
        }
        Ok(Some(o.success))
    }

    /// Appends this turn's made-up usage to `$GT_USAGE_FILE`: the prompt and a growing
    /// context read as input (most of it from the cache after the first turn), what was
    /// printed as output. A report that cannot be written is skipped: the sim works on.
    fn report_usage(&mut self, prompt: &str) {
        let Some(path) = &self.env.usage_file else {
            return;
        };
        self.turns += 1;
        let n = self.turns;
        let line = serde_json::json!({
            "id": format!("turn-{n}"),
            "model": "sim",
            "input_tokens": 900 + 2 * prompt.len() as u64,
            "output_tokens": 40 + self.said / 4,
            "cache_read_tokens": 1500 * (n - 1),
            "cache_write_tokens": if n == 1 { 1500 } else { 300 },
        });
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            tracing::debug!("sim: cannot report usage to {}: {e}", path.display());
        }
    }

    // -- output helpers ------------------------------------------------------------------------

    fn write(&mut self, s: &str) -> Res {
        self.said += s.len() as u64;
        self.out.write_all(s.as_bytes()).map_err(Fail::Out)
    }

    fn flush(&mut self) -> Res {
        self.out.flush().map_err(Fail::Out)
    }

    /// A full line, flushed.
    fn say(&mut self, s: &str) -> Res {
        self.write(s)?;
        self.write("\n")?;
        self.flush()
    }

    /// `⏺ Tool(arg)`.
    fn tool(&mut self, name: &str, arg: &str) -> Res {
        self.say(&format!("{GREEN}⏺{RESET} {BOLD}{name}{RESET}({arg})"))
    }

    /// `  ⎿  text`: a tool's result.
    fn result(&mut self, s: &str) -> Res {
        self.say(&format!("  {DIM}⎿{RESET}  {s}"))
    }

    /// `✻ text`: a think line.
    fn think(&mut self, s: &str) -> Res {
        self.say(&format!("{MAGENTA}✻{RESET} {DIM}\x1b[3m{s}{RESET}"))
    }

    fn warn(&mut self, s: &str) -> Res {
        self.say(&format!("{YELLOW}⚠ warning:{RESET} {s}"))
    }

    fn error_line(&mut self, s: &str) -> io::Result<()> {
        writeln!(self.out, "{RED}✘ error:{RESET} {s}")?;
        self.out.flush()
    }
}

/// One line of flood output, cycling through the kinds of lines agents and builds print.
fn flood_line(buf: &mut String, i: u64) {
    use std::fmt::Write as _;
    let _ = match i % 6 {
        0 => writeln!(buf, "{GREEN}⏺{RESET} {BOLD}Read{RESET}(src/module_{i}.rs)"),
        1 => writeln!(buf, "  {DIM}⎿{RESET}  Read {} lines", 40 + i % 300),
        2 => writeln!(
            buf,
            "{GREEN}{BOLD}   Compiling{RESET} crate-{i} v0.{}.{}",
            i % 10,
            i % 7
        ),
        3 => {
            for pct in [10u64, 40, 70, 100] {
                let bar = "#".repeat((pct / 10) as usize);
                let _ = write!(buf, "\r{CYAN}[{bar:<10}]{RESET} {pct:>3}% ");
            }
            writeln!(buf)
        }
        4 => writeln!(
            buf,
            "{YELLOW}{BOLD}warning{RESET}: unused variable: `x{i}` {DIM}--> src/lib.rs:{}:9{RESET}",
            i % 997
        ),
        _ => writeln!(
            buf,
            "{MAGENTA}✻{RESET} {DIM}thinking about step {i}…{RESET}"
        ),
    };
}

/// The bead id on prime's `## On your hook: ID "title"` line.
/// What starts a comment in `file`, judged by its extension, so the lines the sim writes into
/// source files keep them valid (and the rig's tests meaningful).
pub fn comment_prefix(file: &str) -> &'static str {
    let ext = file.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "sh" | "bash" | "py" | "rb" | "pl" | "toml" | "yaml" | "yml" | "r" | "mk" => "# ",
        "rs" | "c" | "h" | "cc" | "cpp" | "hpp" | "go" | "js" | "ts" | "java" | "kt" | "swift"
        | "cs" | "scala" | "zig" => "// ",
        "sql" | "lua" | "hs" => "-- ",
        _ => "",
    }
}

/// The id of an unread `FIX_NEEDED` mail about `bead` in `prime`'s output (lines like
/// `- gt-m1 from demo/refinery: FIX_NEEDED: gt-abc ...`).
pub fn fix_needed_mail(prime: &str, bead: &str) -> Option<String> {
    prime.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("- ")?;
        let (id, subject) = rest.split_once(" from ")?;
        let subject = subject.split_once(": ")?.1;
        let about = subject.strip_prefix("FIX_NEEDED: ")?;
        (about.split_whitespace().next() == Some(bead)).then(|| id.trim().to_string())
    })
}

pub fn hook_from_prime(prime: &str) -> Option<String> {
    prime.lines().find_map(|l| {
        let rest = l.trim().trim_start_matches('#').trim();
        let rest = rest.strip_prefix("On your hook:")?;
        rest.split_whitespace().next().map(str::to_string)
    })
}

/// The input line without control characters (escape sequences of a paste, stray bytes).
fn clean(line: &str) -> String {
    line.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string()
}

/// Stages `files` (relative to `dir`, which is in a git worktree) and commits them on HEAD with
/// author and committer `<agent> <agent@gastown.local>`. Returns (branch, short id).
pub fn commit_files(
    dir: &Path,
    files: &[&str],
    agent: &str,
    message: &str,
) -> Result<(String, String), String> {
    let e = |e: git2::Error| e.message().to_string();
    let repo = git2::Repository::discover(dir)
        .map_err(|_| format!("{} is not in a git repository", dir.display()))?;
    let root = repo
        .workdir()
        .ok_or_else(|| "the repository has no working tree".to_string())?;
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let prefix = canon(dir)
        .strip_prefix(canon(root))
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut index = repo.index().map_err(e)?;
    for f in files {
        // A file that is gone is a removal.
        if dir.join(f).exists() {
            index.add_path(&prefix.join(f)).map_err(e)?;
        } else {
            index.remove_path(&prefix.join(f)).map_err(e)?;
        }
    }
    index.write().map_err(e)?;
    let tree = repo.find_tree(index.write_tree().map_err(e)?).map_err(e)?;
    let name = if agent.trim().is_empty() {
        "sim"
    } else {
        agent
    };
    let email_user: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let sig = git2::Signature::now(name, &format!("{email_user}@gastown.local")).map_err(e)?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let oid = repo
        .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .map_err(e)?;
    let branch = repo
        .head()
        .ok()
        .and_then(|h| h.shorthand().ok().map(str::to_string))
        .unwrap_or_else(|| "HEAD".to_string());
    let short = oid.to_string().chars().take(7).collect();
    Ok((branch, short))
}

/// Runs the simulated agent on standard input and output; returns the exit code.
pub fn run_stdio(env: SimEnv) -> io::Result<i32> {
    let host = ProcessHost::for_env(&env)?;
    let stdout = io::stdout();
    let out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut session = Session::new(env, host, out);
    let stdin = io::stdin();
    let outcome = session.run(stdin.lock())?;
    Ok(outcome.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn parses_every_verb() {
        let s = parse_script(
            "Fix the thing.\n\
             sim: edit src/a.txt\n\
             \x20 sim: sleep 0.2\n\
             sim: sleep 3\n\
             sim: sleep 1.5s\n\
             sim: sleep 500ms\n\
             sim: stall\n\
             sim: crash\n\
             sim: break-tests\n\
             sim: conflict README.md\n\
             sim: flood 2\n\
             sim: flood 0.5\n\
             sim: ignore-nudges 3\n\
             SIM: edit nope\n\
             sim:EDIT `docs/with space.md`\r\n\
             sim: edit \"./q.txt\"\n",
        );
        assert_eq!(
            s.steps,
            vec![
                Step::Edit("src/a.txt".into()),
                Step::Sleep(Duration::from_millis(200)),
                Step::Sleep(Duration::from_secs(3)),
                Step::Sleep(Duration::from_millis(1500)),
                Step::Sleep(Duration::from_millis(500)),
                Step::Stall,
                Step::Crash,
                Step::BreakTests,
                Step::Conflict("README.md".into()),
                Step::Flood(2 * 1024 * 1024),
                Step::Flood(512 * 1024),
                Step::IgnoreNudges(3),
                Step::Edit("docs/with space.md".into()),
                Step::Edit("./q.txt".into()),
            ]
        );
        assert_eq!(s.ignore_nudges(), 3);
        assert_eq!(s.work_steps(), s.steps, "actions present: no default edit");
    }

    #[test]
    fn bad_lines_are_invalid_steps_not_errors() {
        let bad = [
            "sim: dance",
            "sim:",
            "sim:    ",
            "sim: edit",
            "sim: edit /etc/passwd",
            "sim: edit ../outside.txt",
            "sim: edit src/../../x",
            "sim: edit .git/config",
            "sim: edit .",
            "sim: conflict",
            "sim: sleep",
            "sim: sleep soon",
            "sim: sleep -1",
            "sim: sleep NaN",
            "sim: sleep inf",
            "sim: sleep 100000",
            "sim: flood",
            "sim: flood 0",
            "sim: flood -3",
            "sim: flood 99999",
            "sim: flood lots",
            "sim: ignore-nudges",
            "sim: ignore-nudges -1",
            "sim: ignore-nudges 2.5",
            "sim: ignore-nudges 99999999",
        ];
        for line in bad {
            match parse_line(line) {
                Some(Step::Invalid { line: l, reason }) => {
                    assert_eq!(l, line.trim());
                    assert!(!reason.is_empty());
                }
                other => panic!("{line:?} parsed as {other:?}"),
            }
        }
        assert!(matches!(
            parse_line("sim: dance"),
            Some(Step::Invalid { reason, .. }) if reason.contains("unknown sim verb 'dance'")
        ));
    }

    #[test]
    fn lines_that_are_not_sim_lines_are_ignored() {
        for line in [
            "",
            "plain text",
            "see sim: edit x",
            "- sim: edit x",
            "simulate: edit x",
            "sim edit x",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn no_sim_line_means_one_small_edit() {
        let s = parse_script("Just a description.\nWith two lines.");
        assert!(s.steps.is_empty());
        assert_eq!(s.ignore_nudges(), 0);
        assert_eq!(s.work_steps(), vec![Step::Edit(DEFAULT_EDIT_FILE.into())]);
        assert_eq!(
            parse_script("").work_steps(),
            vec![Step::Edit(DEFAULT_EDIT_FILE.into())]
        );
        // Only settings and bad lines: still one edit, after the warnings.
        let s = parse_script("sim: ignore-nudges 1\nsim: nonsense\nsim: ignore-nudges 2");
        assert_eq!(s.ignore_nudges(), 2, "the last one wins");
        let w = s.work_steps();
        assert_eq!(w.len(), 4);
        assert_eq!(w[3], Step::Edit(DEFAULT_EDIT_FILE.into()));
    }

    #[test]
    fn lines_written_into_source_files_are_comments() {
        assert_eq!(comment_prefix("src/todo.sh"), "# ");
        assert_eq!(comment_prefix("lib.rs"), "// ");
        assert_eq!(comment_prefix("NOTES.md"), "");
        assert_eq!(comment_prefix("Makefile"), "");
    }

    #[test]
    fn fix_needed_mail_is_found_in_prime() {
        let prime = "## Unread mail (2)\n- gt-m1 from mayor: hello\n- gt-m2 from demo/refinery: FIX_NEEDED: gt-abc Add a flag\n";
        assert_eq!(fix_needed_mail(prime, "gt-abc"), Some("gt-m2".into()));
        assert_eq!(fix_needed_mail(prime, "gt-xyz"), None);
        assert_eq!(fix_needed_mail("## No unread mail.", "gt-abc"), None);
    }

    #[test]
    fn hook_is_read_from_prime() {
        let p = "# You are nux.\n\n## On your hook: gt-a1b.2 \"Title\"\nP2 task";
        assert_eq!(hook_from_prime(p), Some("gt-a1b.2".into()));
        assert_eq!(hook_from_prime("## Your hook is empty."), None);
        assert_eq!(hook_from_prime(""), None);
    }

    fn all_lines(input: &[u8], capacity: usize) -> Vec<String> {
        let mut l = Lines::new(BufReader::with_capacity(capacity, input));
        let mut v = Vec::new();
        while let Some(s) = l.next_line().unwrap() {
            v.push(s);
        }
        v
    }

    #[test]
    fn input_lines_end_at_cr_lf_or_crlf() {
        let input = b"a\r\nb\rc\n\nd\r\r\ne\xff";
        let want = vec!["a", "b", "c", "", "d", "", "e\u{fffd}"];
        for cap in [1, 2, 3, 64] {
            assert_eq!(all_lines(input, cap), want, "capacity {cap}");
        }
        assert!(all_lines(b"", 8).is_empty());
        let long = vec![b'x'; MAX_LINE + 100];
        assert_eq!(all_lines(&long, 4096)[0].len(), MAX_LINE);
    }

    // -- the session, on a fake host and a real git repository --------------------------------

    #[derive(Default)]
    struct Fake {
        /// What `prime` prints; `None`: prime fails.
        prime: Option<String>,
        /// What `bead show` prints; `None`: it fails.
        show: Option<String>,
        done_ok: bool,
        calls: Vec<String>,
        slept: Duration,
        stalled: bool,
    }

    impl Host for Fake {
        fn gastown(&mut self, args: &[&str]) -> io::Result<CmdOutput> {
            self.calls.push(args.join(" "));
            let ok = |s: &str| CmdOutput {
                success: true,
                code: Some(0),
                stdout: s.to_string(),
                stderr: String::new(),
            };
            let fail = |s: &str| CmdOutput {
                success: false,
                code: Some(1),
                stdout: String::new(),
                stderr: format!("error: {s}\n"),
            };
            Ok(match args.first().copied() {
                Some("prime") => match &self.prime {
                    Some(p) => ok(p),
                    None => fail("'x' is not an agent of this town"),
                },
                Some("bead") => match &self.show {
                    Some(s) => ok(s),
                    None => fail("issue 'gt-zz' not found"),
                },
                Some("done") if self.done_ok => ok("Submitted polecat/nux/gt-1 as mr-1\n"),
                Some("done") => fail("dirty worktree"),
                _ => fail("unexpected"),
            })
        }

        fn run_tests(&mut self, dir: &Path) -> io::Result<CmdOutput> {
            let broken = dir.join(BROKEN_FILE).exists();
            Ok(CmdOutput {
                success: !broken,
                code: Some(i32::from(broken)),
                stdout: "running tests\n".into(),
                stderr: if broken {
                    "BROKEN exists\n".into()
                } else {
                    String::new()
                },
            })
        }

        fn sleep(&mut self, d: Duration) {
            self.slept += d;
        }

        fn stall(&mut self) {
            self.stalled = true;
        }
    }

    fn fake_for(description: &str) -> Fake {
        Fake {
            prime: Some("# You are nux.\n## On your hook: gt-1 \"Job\"\n".into()),
            show: Some(
                serde_json::json!({"id": "gt-1", "title": "Job", "description": description})
                    .to_string(),
            ),
            done_ok: true,
            ..Fake::default()
        }
    }

    /// A repository with `test.sh` committed on `main`.
    fn repo() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        crate::test_kit::source_repo(tmp.path());
        tmp
    }

    fn env(dir: &Path, bead: Option<&str>) -> SimEnv {
        SimEnv {
            town: None,
            agent: "nux".into(),
            rig: Some("demo".into()),
            role: Some("polecat".into()),
            bead: bead.map(str::to_string),
            workdir: dir.to_path_buf(),
            usage_file: None,
        }
    }

    fn run(env: SimEnv, host: Fake, input: &str) -> (Outcome, String, Fake) {
        let mut s = Session::new(env, host, Vec::new());
        let outcome = s.run(input.as_bytes()).unwrap();
        let out = String::from_utf8(s.out.clone()).unwrap();
        (outcome, out, s.host)
    }

    fn head_files(dir: &Path) -> (String, Vec<String>) {
        let repo = git2::Repository::open(dir).unwrap();
        let c = repo.head().unwrap().peel_to_commit().unwrap();
        let tree = c.tree().unwrap();
        let parent = c.parent(0).unwrap().tree().unwrap();
        let diff = repo
            .diff_tree_to_tree(Some(&parent), Some(&tree), None)
            .unwrap();
        let files = diff
            .deltas()
            .map(|d| d.new_file().path().unwrap().display().to_string())
            .collect();
        let author = c.author().to_string();
        (author, files)
    }

    #[test]
    fn ignores_nudges_then_works_then_echoes() {
        let dir = repo();
        let fake = fake_for("sim: ignore-nudges 2\nsim: edit src/a.txt\nsim: sleep 0.3");
        let (outcome, out, host) = run(
            env(dir.path(), Some("gt-1")),
            fake,
            "\r\nnudge one\rnudge two\nbegin\nhello there\n",
        );
        assert_eq!(outcome, Outcome::Eof);
        assert!(
            out.starts_with(&format!("{ORANGE}{BOLD}✻ gastown-tui")),
            "{out}"
        );
        assert_eq!(out.matches(IGNORE_REPLY).count(), 2, "{out}");
        assert!(out.contains("Done: gt-1 submitted for merge"), "{out}");
        assert!(out.contains("you said: hello there"), "{out}");
        assert!(out.contains("PASS"), "{out}");
        assert_eq!(
            out.matches(PROMPT).count(),
            6,
            "banner + one per line: {out}"
        );
        assert_eq!(host.calls.iter().filter(|c| *c == "done").count(), 1);
        assert_eq!(host.slept, Duration::from_millis(300));
        let text = std::fs::read_to_string(dir.path().join("src/a.txt")).unwrap();
        assert_eq!(text, "change by nux for gt-1\n");
        let (author, files) = head_files(dir.path());
        assert_eq!(author, "nux <nux@gastown.local>");
        assert_eq!(files, vec!["src/a.txt"]);
        assert!(crate::town::worktree::dirty_files(dir.path())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn without_a_hook_it_echoes() {
        let dir = repo();
        let mut fake = fake_for("");
        fake.prime = Some("# You are nux.\n## Your hook is empty.\n".into());
        let (outcome, out, host) = run(env(dir.path(), None), fake, "Run prime and begin\n");
        assert_eq!(outcome, Outcome::Eof);
        assert!(out.contains("you said: Run prime and begin"), "{out}");
        assert!(out.contains("nothing on my hook"), "{out}");
        assert_eq!(host.calls, vec!["prime"]);

        // Prime fails and no GT_BEAD: the same, no panic.
        let mut fake = fake_for("");
        fake.prime = None;
        let (_, out, _) = run(env(dir.path(), None), fake, "go\n");
        assert!(out.contains("you said: go"), "{out}");
    }

    #[test]
    fn hook_from_prime_when_there_is_no_gt_bead() {
        let dir = repo();
        let (_, out, host) = run(env(dir.path(), None), fake_for(""), "go\n");
        assert!(out.contains("Done: gt-1 submitted"), "{out}");
        assert!(host.calls.contains(&"bead show gt-1 --json".to_string()));
        let text = std::fs::read_to_string(dir.path().join(DEFAULT_EDIT_FILE)).unwrap();
        assert_eq!(text, "change by nux for gt-1\n");
    }

    #[test]
    fn unreadable_beads_and_failing_done_are_reported_not_fatal() {
        let dir = repo();
        let mut fake = fake_for("");
        fake.show = None;
        let (outcome, out, _) = run(env(dir.path(), Some("gt-zz")), fake, "go\nagain\n");
        assert_eq!(outcome, Outcome::Eof);
        assert_eq!(out.matches("cannot read gt-zz").count(), 2, "{out}");

        let mut fake = fake_for("");
        fake.show = Some("{not json".into());
        let (_, out, _) = run(env(dir.path(), Some("gt-1")), fake, "go\n");
        assert!(out.contains("cannot parse gt-1"), "{out}");

        let mut fake = fake_for("sim: edit a.txt");
        fake.done_ok = false;
        let (outcome, out, _) = run(env(dir.path(), Some("gt-1")), fake, "go\nmore\n");
        assert_eq!(outcome, Outcome::Eof);
        assert!(out.contains("gastown-tui done failed for gt-1: error: dirty worktree"));
        assert!(
            out.contains("you said: more"),
            "worked once, then echoes: {out}"
        );
    }

    #[test]
    fn crash_only_in_the_first_session() {
        let dir = repo();
        let script = "sim: edit a.txt\nsim: crash\nsim: edit b.txt";
        let (outcome, out, host) = run(env(dir.path(), Some("gt-1")), fake_for(script), "go\n");
        assert_eq!(outcome, Outcome::Exit(CRASH_EXIT_CODE));
        assert_eq!(outcome.exit_code(), 17);
        assert!(out.contains("simulated crash"), "{out}");
        assert!(!host.calls.contains(&"done".to_string()));
        let gitdir = git2::Repository::open(dir.path())
            .unwrap()
            .path()
            .to_path_buf();
        assert!(gitdir.join("gastown-sim-crashed-gt-1").is_file());

        let (outcome, out, host) = run(env(dir.path(), Some("gt-1")), fake_for(script), "go\n");
        assert_eq!(outcome, Outcome::Eof);
        assert!(out.contains("Done: gt-1 submitted"), "{out}");
        assert!(host.calls.contains(&"done".to_string()));
        assert!(dir.path().join("b.txt").is_file());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
            "change by nux for gt-1\nchange by nux for gt-1\n",
            "the restarted session ran the script again"
        );
    }

    #[test]
    fn stall_stops_before_done() {
        let dir = repo();
        let (outcome, out, host) = run(
            env(dir.path(), Some("gt-1")),
            fake_for("sim: stall\nsim: edit a.txt"),
            "go\nmore\n",
        );
        assert_eq!(outcome, Outcome::Stalled);
        assert!(host.stalled);
        assert!(!host.calls.contains(&"done".to_string()));
        assert!(!out.contains("you said"), "{out}");
        assert!(!dir.path().join("a.txt").exists());
    }

    #[test]
    fn break_tests_conflict_flood_and_bad_verbs() {
        let dir = repo();
        std::fs::write(dir.path().join("README.md"), "first\nsecond\n").unwrap();
        let script = "sim: conflict README.md\nsim: flood 0.01\nsim: dance\nsim: break-tests";
        let (outcome, out, host) = run(env(dir.path(), Some("gt-1")), fake_for(script), "go\n");
        assert_eq!(outcome, Outcome::Eof);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
            "gt-1 by nux rewrote this line\nsecond\n"
        );
        assert!(
            out.contains("skipping 'sim: dance': unknown sim verb"),
            "{out}"
        );
        assert!(out.len() > 10 * 1024, "flooded");
        assert!(out.contains("FAIL"), "{out}");
        assert!(out.contains("tests failed"), "{out}");
        assert!(host.calls.contains(&"done".to_string()), "submits anyway");
        let (_, files) = head_files(dir.path());
        assert_eq!(files, vec![BROKEN_FILE]);
        assert!(crate::town::worktree::dirty_files(dir.path())
            .unwrap()
            .is_empty());

        // conflict on a missing file creates it.
        let (_, _, _) = run(
            env(dir.path(), Some("gt-2")),
            fake_for("sim: conflict new/c.txt"),
            "go\n",
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("new/c.txt")).unwrap(),
            "gt-2 by nux rewrote this line\n"
        );
    }

    #[test]
    fn outside_a_repository_an_edit_fails_cleanly() {
        let tmp = tempfile::tempdir().unwrap();
        let (outcome, out, host) = run(
            env(tmp.path(), Some("gt-1")),
            fake_for("sim: edit a.txt"),
            "go\n",
        );
        assert_eq!(outcome, Outcome::Eof);
        assert!(out.contains("git commit:"), "{out}");
        assert!(!host.calls.contains(&"done".to_string()));
    }
}
