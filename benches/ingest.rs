//! Terminal ingest and memory per agent, through the engine as users run it, side by side with
//! tmux in one run.
//!
//! Not a criterion benchmark: it prints figures, it asserts nothing about time.
//!
//! 1. **Memory per agent.** 5,000 agent-like lines (long, coloured tool-call, diff and test
//!    lines; not `seq`) in a file. A town's engine (`gastown-tui up`, the release binary)
//!    starts 20 polecats whose runtime is `sh -c 'cat LINES; exec sleep 3600'`, at its default
//!    40x120 (no cockpit attached), recording on; the engine's VmRSS before the agents and once
//!    every agent shows the last line (`gastown-tui capture`), the delta per agent. Then the
//!    same program as 20 windows of one private tmux server (`-f /dev/null`, its default
//!    `history-limit`), the server's VmRSS delta per window.
//! 2. **Ingest**, for two deterministic 50 MB streams: `log` (coloured tool calls, spinners
//!    redrawn with `\r`, cursor moves with save/restore, wrapping lines, diffs, erase-and-redraw
//!    footers) and `redraw` (synchronized frames that clear the screen and the scrollback and
//!    repaint 38 rows, as Claude Code does). For ROUNDS rounds, in an order that rotates:
//!    - `engine`: one polecat of a town's engine whose runtime is
//!      `sh -c 's=$(date +%s%N); cat stream; e=$(date +%s%N); echo "$s $e" > timing; ...'`,
//!      restarted each round (`gastown-tui restart`) with `stream` linked to the file: the
//!      time `cat` takes inside the terminal, recording on, 40x120;
//!    - `tmux`: the same script in a new session of a private tmux server at 120x40;
//!    - `session`: the library's `Session` (PTY, screen, recording) on `cat FILE`, spawn to
//!      exit (no engine around it);
//!    - `raw pty`: portable-pty and `cat FILE`, read and thrown away (the ceiling: no parser).
//!
//! MB is 10^6 bytes; throughput is the file's size over the time. `cat` returns once its last
//! write is in the PTY's buffer, in every terminal alike.
//!
//! ```text
//! cargo bench --bench ingest
//! GT_BENCH_ROUNDS=3 GT_BENCH_INGEST_MB=20 cargo bench --bench ingest   # shorter
//! GT_BENCH_SCROLLBACK=100 cargo bench --bench ingest   # memory with another [terminal] scrollback_lines
//! ```

mod common;

use common::{machine, Gt, Run};
use gastown_tui::agent::{Session, SessionSpec, DEFAULT_SCROLLBACK};
use portable_pty::{CommandBuilder, PtySize};
use std::fmt::Write as _;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS: u16 = 40;
const COLS: u16 = 120;
/// Agents (and tmux windows) in the memory measurement.
const MEM_AGENTS: usize = 20;
const MEM_LINES: usize = 5_000;
/// The last line of the memory measurement's output.
const MEM_END: &str = "end of the agent's output";
/// Give up on any one wait after this long.
const PATIENCE: Duration = Duration::from_secs(300);

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter is not supported (nothing to filter).
    let rounds = env_num("GT_BENCH_ROUNDS", 5) as usize;
    let target_mb = env_num("GT_BENCH_INGEST_MB", 50);
    let tmp = tempfile::Builder::new()
        .prefix("gt-bench-ingest-")
        .tempdir()
        .expect("temp dir");

    println!("== machine ==");
    println!("{}", machine());
    let tmux = tmux_version();
    match &tmux {
        Some(v) => println!("tmux: {v}"),
        None => println!("tmux: not found on PATH: the tmux rows are skipped"),
    }
    println!();

    memory(tmp.path(), tmux.is_some());

    let gt = Gt::setup(&tmp.path().join("ingest"));
    gt.shell_runtime(
        "catter",
        r#"rm -f timing; s=$(date +%s%N); cat stream; e=$(date +%s%N); echo "$s $e" > timing; exec sleep 3600"#,
    );
    gt.cmd(true).arg("up").ok("up");
    let agent = gt.sling_with(1, "cat a stream", "catter").remove(0);
    wait("the first run of the catter", || {
        gt.worktree(&agent).join("timing").exists()
    });

    for mix in [Mix::Log, Mix::Redraw] {
        let file = tmp.path().join(format!("{}.stream", mix.name()));
        let t = Instant::now();
        let stats = generate(&file, target_mb * 1_000_000, mix);
        let size = std::fs::metadata(&file).expect("stream file").len();
        println!("== ingest: {} stream ==", mix.name());
        println!(
            "{} bytes, {} newlines, generated in {:.1} s; blocks: {}",
            size,
            stats.newlines,
            t.elapsed().as_secs_f64(),
            stats.summary()
        );
        // Page the file in so the first timed round does not read the disk.
        let _ = std::fs::read(&file).map(|b| b.len());
        let expected_pty = size + stats.newlines;

        let mut paths: Vec<&str> = vec!["engine"];
        if tmux.is_some() {
            paths.push("tmux");
        }
        paths.extend(["session", "raw pty"]);
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
        for round in 0..rounds {
            let mut line = format!("round {}:", round + 1);
            for k in 0..paths.len() {
                let i = (k + round) % paths.len();
                let secs = match paths[i] {
                    "engine" => engine_round(&gt, &agent, &file),
                    "tmux" => tmux_round(tmp.path(), &file, round),
                    "session" => session_round(&file, expected_pty),
                    _ => raw_pty(&file, expected_pty),
                };
                times[i].push(secs);
                let _ = write!(line, "  {} {:.0} MB/s", paths[i], size as f64 / 1e6 / secs);
            }
            println!("{line}");
        }
        println!(
            "{:<10} {:>14} {:>10} {:>10} {:>12}",
            "path", "median MB/s", "min", "max", "median s"
        );
        let mut medians = Vec::new();
        for (p, t) in paths.iter().zip(&times) {
            let mut rates: Vec<f64> = t.iter().map(|s| size as f64 / 1e6 / s).collect();
            rates.sort_by(f64::total_cmp);
            let mut secs = t.clone();
            secs.sort_by(f64::total_cmp);
            let med = median(&rates);
            medians.push(med);
            println!(
                "{:<10} {:>14.1} {:>10.1} {:>10.1} {:>12.3}",
                p,
                med,
                rates[0],
                rates[rates.len() - 1],
                median(&secs)
            );
        }
        if let Some(ti) = paths.iter().position(|p| *p == "tmux") {
            for (p, m) in paths.iter().zip(&medians) {
                if *p == "engine" || *p == "session" {
                    println!(
                        "ratio {p}/tmux (medians): {:.2}x  (goal >= 2x)",
                        m / medians[ti]
                    );
                }
            }
        }
        println!("(MB = 10^6 bytes of the file; {rounds} rounds, interleaved, order rotating)");
        println!();
        let _ = std::fs::remove_file(&file);
    }
    gt.cmd(true).arg("down").ok("down");
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn wait(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tmux_version() -> Option<String> {
    let out = Command::new("tmux").arg("-V").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A tmux command on the private server at `sock`, with no config and no outer tmux.
fn tmux(sock: &Path) -> Command {
    let mut c = Command::new("tmux");
    c.arg("-f")
        .arg("/dev/null")
        .arg("-S")
        .arg(sock)
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .stdin(Stdio::null());
    c
}

fn run_ok(c: &mut Command, what: &str) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script both terminals run: `cat` timed inside the terminal, the times to `timing`.
fn timed_cat(file: &str, timing: &str) -> String {
    format!(
        r#"s=$(date +%s%N); cat {file}; e=$(date +%s%N); echo "$s $e" > {timing}; exec sleep 3600"#
    )
}

/// Seconds between the two nanosecond times in `path`, once it holds them.
fn read_timing(path: &Path) -> f64 {
    let mut secs = None;
    wait("the timing of cat", || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let t: Vec<u64> = text
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if let [s, e] = t[..] {
            secs = Some(e.saturating_sub(s) as f64 / 1e9);
        }
        secs.is_some()
    });
    secs.unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Ingest paths.

/// The engine's polecat restarted on `file`. Seconds `cat` took in its terminal.
fn engine_round(gt: &Gt, agent: &str, file: &Path) -> f64 {
    let dir = gt.worktree(agent);
    let link = dir.join("stream");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(file, &link).expect("link the stream");
    let timing = dir.join("timing");
    let _ = std::fs::remove_file(&timing);
    // Old recordings: each round writes one as large as the stream.
    if let Ok(entries) = std::fs::read_dir(gt.town.join("logs").join(agent)) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    gt.cmd(true).args(["restart", agent]).ok("restart");
    read_timing(&timing)
}

/// tmux: a new session on a fresh private server. Seconds `cat` took in its terminal.
fn tmux_round(tmp: &Path, file: &Path, round: usize) -> f64 {
    let sock = tmp.join(format!("tmux-{round}.sock"));
    let timing = tmp.join(format!("tmux-{round}.timing"));
    let _ = std::fs::remove_file(&timing);
    let script = timed_cat(
        &shell_quote(file.to_str().expect("utf-8 path")),
        &shell_quote(timing.to_str().expect("utf-8 path")),
    );
    run_ok(
        tmux(&sock).args([
            "new-session",
            "-d",
            "-x",
            &COLS.to_string(),
            "-y",
            &ROWS.to_string(),
            &format!("sh -c {}", shell_quote(&script)),
        ]),
        "tmux new-session",
    );
    let secs = read_timing(&timing);
    let _ = tmux(&sock)
        .arg("kill-server")
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_file(&sock);
    secs
}

fn spec(program: &str, args: &[&str], cwd: &Path) -> SessionSpec {
    let mut spec = SessionSpec::new(program, cwd);
    spec.args = args.iter().map(|s| s.to_string()).collect();
    spec.rows = ROWS;
    spec.cols = COLS;
    spec.scrollback = DEFAULT_SCROLLBACK;
    spec
}

/// The library's session with a recording: spawn to reported exit. Seconds.
fn session_round(file: &Path, expected: u64) -> f64 {
    let dir = file.parent().expect("file dir");
    let mut spec = spec("cat", &[file.to_str().expect("utf-8 path")], dir);
    let cast = dir.join("session.cast");
    spec.recording = Some(cast.clone());
    let t = Instant::now();
    let s = Session::spawn(spec, Arc::new(|| {})).expect("spawn cat");
    let exit = s.wait_timeout(PATIENCE);
    let secs = t.elapsed().as_secs_f64();
    let exit = exit.expect("cat did not finish in time");
    assert!(exit.success, "cat: {exit}");
    assert_eq!(s.bytes_read(), expected, "bytes read by the session");
    drop(s);
    let _ = std::fs::remove_file(&cast);
    secs
}

/// The PTY alone: `cat FILE` read in 64 KiB chunks and thrown away. Seconds.
fn raw_pty(file: &Path, expected: u64) -> f64 {
    let t = Instant::now();
    let pair = portable_pty::native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut cmd = CommandBuilder::new("cat");
    cmd.arg(file);
    let mut child = pair.slave.spawn_command(cmd).expect("spawn cat");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let status = child.wait().expect("wait cat");
    let secs = t.elapsed().as_secs_f64();
    assert!(status.success(), "cat failed");
    assert_eq!(total, expected, "bytes read from the raw PTY");
    secs
}

// ---------------------------------------------------------------------------------------------
// Memory per agent.

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS")
}

/// 5,000 agent-like lines and the end marker.
fn agent_lines(path: &Path) -> u64 {
    let mut rng = Rng(0x6c69_6e65_7321);
    let mut out = String::new();
    for i in 0..MEM_LINES {
        match i % 4 {
            0 => {
                sgr(&mut rng, &mut out);
                out.push_str("⏺ \x1b[0m\x1b[1mBash\x1b[0m(");
                words(&mut rng, &mut out, 8);
                out.push_str(")  ⎿  ");
                sgr(&mut rng, &mut out);
                words(&mut rng, &mut out, 8);
            }
            1 => {
                out.push_str("\x1b[32m+    ");
                words(&mut rng, &mut out, 14);
            }
            2 => {
                let _ = write!(out, "test tests::case_{i} ... \x1b[32mok\x1b[0m   ");
                words(&mut rng, &mut out, 10);
            }
            _ => {
                out.push_str("\x1b[2m  ");
                words(&mut rng, &mut out, 16);
            }
        }
        out.push_str("\x1b[0m\n");
    }
    out.push_str(MEM_END);
    out.push('\n');
    std::fs::write(path, &out).expect("write the lines");
    out.len() as u64
}

fn memory(tmp: &Path, with_tmux: bool) {
    println!("== memory per agent ==");
    let lines = tmp.join("lines.txt");
    let bytes = agent_lines(&lines);
    let script = format!(
        "cat {}; exec sleep 3600",
        shell_quote(lines.to_str().expect("utf-8 path"))
    );
    println!("{MEM_LINES} agent-like lines, {bytes} bytes, each agent prints them and idles");

    let gt = Gt::setup(&tmp.join("memory"));
    let scrollback = std::env::var("GT_BENCH_SCROLLBACK")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_SCROLLBACK);
    if scrollback != DEFAULT_SCROLLBACK {
        let cfg = gt.town.join("town.toml");
        let text = std::fs::read_to_string(&cfg).expect("town.toml");
        std::fs::write(
            &cfg,
            format!("{text}\n[terminal]\nscrollback_lines = {scrollback}\n"),
        )
        .expect("town.toml");
    }
    gt.shell_runtime("printer", &script);
    gt.cmd(true).arg("up").ok("up");
    let engine = gt.engine_pid();
    std::thread::sleep(Duration::from_secs(1));
    let before = rss_kib(engine);
    let agents = gt.sling_with(MEM_AGENTS, "print lines", "printer");
    wait("every agent's last line", || {
        agents.iter().all(|a| {
            let out = gt.cmd(true).args(["capture", a]).ok("capture");
            String::from_utf8_lossy(&out.stdout).contains(MEM_END)
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(engine);
    let delta = after.saturating_sub(before);
    println!(
        "engine: {MEM_AGENTS} agents at {ROWS}x{COLS}, recording on, {scrollback} lines of scrollback in memory (the rest on disk)"
    );
    println!(
        "  VmRSS {before} KiB -> {after} KiB: +{delta} KiB, {:.0} KiB ({:.2} MiB) per agent",
        delta as f64 / MEM_AGENTS as f64,
        delta as f64 / MEM_AGENTS as f64 / 1024.0
    );
    gt.cmd(true).arg("down").ok("down");

    if with_tmux {
        let sock = tmp.join("tmux-mem.sock");
        run_ok(
            tmux(&sock).args([
                "new-session",
                "-d",
                "-x",
                &COLS.to_string(),
                "-y",
                &ROWS.to_string(),
                "sleep 3600",
            ]),
            "tmux new-session",
        );
        let pid: u32 = run_ok(
            tmux(&sock).args(["display-message", "-p", "#{pid}"]),
            "tmux display-message",
        )
        .trim()
        .parse()
        .expect("tmux pid");
        let limit = run_ok(
            tmux(&sock).args(["show-options", "-g", "-v", "history-limit"]),
            "tmux show-options",
        )
        .trim()
        .to_string();
        let before = rss_kib(pid);
        for _ in 0..MEM_AGENTS {
            run_ok(
                tmux(&sock).args([
                    "new-window",
                    "-d",
                    &format!("sh -c {}", shell_quote(&script)),
                ]),
                "new-window",
            );
        }
        wait("every window's last line", || {
            let out = run_ok(
                tmux(&sock).args(["list-panes", "-a", "-F", "#{pane_id}"]),
                "list-panes",
            );
            out.lines().skip(1).all(|pane| {
                run_ok(
                    tmux(&sock).args(["capture-pane", "-p", "-t", pane]),
                    "capture-pane",
                )
                .contains(MEM_END)
            })
        });
        std::thread::sleep(Duration::from_millis(500));
        let after = rss_kib(pid);
        let delta = after.saturating_sub(before);
        println!("tmux: {MEM_AGENTS} windows of one server, history-limit {limit}, same program");
        println!(
            "  server VmRSS {before} KiB -> {after} KiB: +{delta} KiB, {:.0} KiB ({:.2} MiB) per window",
            delta as f64 / MEM_AGENTS as f64,
            delta as f64 / MEM_AGENTS as f64 / 1024.0
        );
        let _ = tmux(&sock)
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
    println!();
}

// ---------------------------------------------------------------------------------------------
// The stream.

/// splitmix64: the same stream on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "the",
    "test",
    "fails",
    "because",
    "handler",
    "returns",
    "early",
    "when",
    "config",
    "is",
    "missing",
    "let",
    "me",
    "check",
    "src/lib.rs",
    "and",
    "update",
    "parser",
    "to",
    "accept",
    "empty",
    "input",
    "cargo",
    "build",
    "warning",
    "unused",
    "variable",
    "refactor",
    "module",
    "token",
    "stream",
    "retry",
    "timeout",
    "merge",
    "branch",
    "commit",
    "ok",
    "done",
    "read",
    "write",
    "file",
    "line",
    "Result<()>",
    "fn",
    "impl",
    "struct",
    "async",
    "await",
    "né",
    "naïve",
    "→",
    "✔",
    "✘",
    "⏺",
    "…",
];

const SPINNER: &[&str] = &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

#[derive(Default)]
struct Stats {
    newlines: u64,
    counts: [u64; 7],
    bytes: [u64; 7],
}

const KINDS: [&str; 7] = [
    "log",
    "spinner",
    "cursor",
    "sync-frame",
    "wrap",
    "diff",
    "erase",
];

impl Stats {
    fn summary(&self) -> String {
        let total: u64 = self.bytes.iter().sum();
        KINDS
            .iter()
            .enumerate()
            .map(|(i, k)| {
                format!(
                    "{k} {}x {:.0}%",
                    self.counts[i],
                    100.0 * self.bytes[i] as f64 / total.max(1) as f64
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn words(rng: &mut Rng, out: &mut String, n: u64) {
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(rng.pick(WORDS));
    }
}

fn sgr(rng: &mut Rng, out: &mut String) {
    match rng.below(4) {
        0 => {
            let _ = write!(out, "\x1b[{}m", 31 + rng.below(7));
        }
        1 => {
            let _ = write!(out, "\x1b[1;38;5;{}m", rng.below(256));
        }
        2 => {
            let _ = write!(
                out,
                "\x1b[38;2;{};{};{}m",
                rng.below(256),
                rng.below(256),
                rng.below(256)
            );
        }
        _ => out.push_str("\x1b[2m"),
    }
}

/// Which stream to generate.
#[derive(Clone, Copy)]
enum Mix {
    /// Everything but full redraws: coloured lines, spinners, cursor moves, wraps, diffs.
    Log,
    /// Synchronized frames that clear the screen and the scrollback and repaint 38 rows.
    Redraw,
}

impl Mix {
    fn name(self) -> &'static str {
        match self {
            Mix::Log => "log",
            Mix::Redraw => "redraw",
        }
    }
}

/// One block of agent-like output; returns its kind.
fn block(rng: &mut Rng, out: &mut String, mix: Mix) -> usize {
    let kind = match mix {
        Mix::Redraw => 3,
        Mix::Log => match rng.below(93) {
            0..=29 => 0,
            30..=44 => 1,
            45..=54 => 2,
            55..=69 => 4,
            70..=84 => 5,
            _ => 6,
        },
    };
    match kind {
        // A tool-call or think line with colours.
        0 => {
            sgr(rng, out);
            out.push_str("⏺ ");
            out.push_str("\x1b[0m\x1b[1m");
            out.push_str(rng.pick(&["Bash", "Read", "Edit", "Grep", "Write"]));
            out.push_str("\x1b[0m(");
            let n = 2 + rng.below(6);
            words(rng, out, n);
            out.push_str(")\n  ⎿  ");
            sgr(rng, out);
            let n = 3 + rng.below(10);
            words(rng, out, n);
            out.push_str("\x1b[0m\n");
        }
        // A spinner redrawn in place with `\r`, then cleared.
        1 => {
            let frames = 5 + rng.below(25);
            for f in 0..frames {
                let _ = write!(
                    out,
                    "\r\x1b[36m{}\x1b[0m Thinking… \x1b[2m({}s · ↑ {}.{}k tokens · esc to interrupt)\x1b[0m\x1b[K",
                    SPINNER[(f % 10) as usize],
                    f / 3,
                    rng.below(9),
                    rng.below(10)
                );
            }
            out.push_str("\r\x1b[K");
        }
        // A status line drawn elsewhere with saved/restored cursor, and relative moves.
        2 => {
            let (save, restore) = if rng.below(2) == 0 {
                ("\x1b7", "\x1b8")
            } else {
                ("\x1b[s", "\x1b[u")
            };
            out.push_str(save);
            let _ = write!(out, "\x1b[{};{}H", 1 + rng.below(40), 1 + rng.below(80));
            let _ = write!(out, "\x1b[48;2;30;30;{}m\x1b[97m", 40 + rng.below(60));
            let n = 2 + rng.below(5);
            words(rng, out, n);
            out.push_str("\x1b[0m");
            out.push_str(restore);
            let _ = write!(
                out,
                "\x1b[{}A\x1b[{}B\x1b[{}C\x1b[{}D",
                1 + rng.below(3),
                1 + rng.below(3),
                1 + rng.below(10),
                1 + rng.below(10)
            );
            out.push_str("  ");
            let n = 3 + rng.below(6);
            words(rng, out, n);
            out.push('\n');
        }
        // A full redraw inside synchronized output: clear the screen and the scrollback, a
        // box, content, a prompt.
        3 => {
            out.push_str("\x1b[?2026h\x1b[2J\x1b[3J\x1b[H");
            let inner = usize::from(COLS) - 2;
            out.push_str("\x1b[38;5;208m┌");
            out.push_str(&"─".repeat(inner));
            out.push_str("┐\x1b[0m");
            for row in 2..u64::from(ROWS) - 2 {
                let _ = write!(out, "\x1b[{row};1H\x1b[38;5;208m│\x1b[0m ");
                let mut text = String::new();
                sgr(rng, &mut text);
                let n = 2 + rng.below(12);
                words(rng, &mut text, n);
                text.push_str("\x1b[0m");
                out.push_str(&text);
                let _ = write!(out, "\x1b[{row};{}H\x1b[38;5;208m│\x1b[0m", COLS);
            }
            let _ = write!(out, "\x1b[{};1H\x1b[38;5;208m└", ROWS - 2);
            out.push_str(&"─".repeat(inner));
            out.push_str("┘\x1b[0m");
            let _ = write!(out, "\x1b[{};1H\x1b[1m>\x1b[0m ", ROWS - 1);
            out.push_str("\x1b[?2026l");
        }
        // A line longer than the terminal (it wraps), with some colour in it.
        4 => {
            let n = 30 + rng.below(60);
            for i in 0..n {
                if i % 11 == 5 {
                    sgr(rng, out);
                }
                out.push_str(rng.pick(WORDS));
                if i % 11 == 8 {
                    out.push_str("\x1b[0m");
                }
                out.push(' ');
            }
            out.push_str("\x1b[0m\n");
        }
        // A diff hunk.
        5 => {
            let _ = writeln!(
                out,
                "\x1b[36m@@ -{},{} +{},{} @@\x1b[0m",
                rng.below(900),
                3 + rng.below(9),
                rng.below(900),
                3 + rng.below(9)
            );
            for _ in 0..3 + rng.below(8) {
                let (color, sign) = match rng.below(3) {
                    0 => ("\x1b[31m", '-'),
                    1 => ("\x1b[32m", '+'),
                    _ => ("", ' '),
                };
                let _ = write!(out, "{color}{sign}    ");
                let n = 2 + rng.below(10);
                words(rng, out, n);
                out.push_str("\x1b[0m\n");
            }
        }
        // Erase to the end of the screen and redraw a short footer.
        _ => {
            let _ = write!(out, "\x1b[{}A\x1b[J", 1 + rng.below(5));
            out.push_str("\x1b[2m─── ");
            let n = 2 + rng.below(4);
            words(rng, out, n);
            out.push_str(" ───\x1b[0m\n");
        }
    }
    kind
}

fn generate(path: &Path, target: u64, mix: Mix) -> Stats {
    let mut rng = Rng(0x6761_7374_6f77_6e21);
    let mut w = BufWriter::new(std::fs::File::create(path).expect("create stream file"));
    let mut stats = Stats::default();
    let mut written = 0u64;
    let mut s = String::new();
    while written < target {
        s.clear();
        let kind = block(&mut rng, &mut s, mix);
        w.write_all(s.as_bytes()).expect("write stream file");
        let n = s.len() as u64;
        written += n;
        stats.counts[kind] += 1;
        stats.bytes[kind] += n;
        stats.newlines += s.bytes().filter(|&b| b == b'\n').count() as u64;
    }
    w.flush().expect("flush stream file");
    stats
}
