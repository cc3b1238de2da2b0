//! Terminal ingest and memory per agent.
//!
//! Not a criterion benchmark: it prints figures, it asserts nothing about time.
//!
//! 1. Memory per agent: 20 sessions of `sh -c 'seq 1 5000; sleep 30'` at 40x120 with the
//!    default scrollback (so the history is full), the process's VmRSS before and after, the
//!    delta per session; then the same 20 programs as windows of one private tmux server,
//!    the server's VmRSS delta per window.
//! 2. Ingest: a deterministic 50 MB agent-like stream file (SGR colours, `\r` spinners,
//!    cursor moves with save/restore, clear-screen + redraw frames inside synchronized output
//!    `CSI ? 2026 h/l`, lines that wrap, UTF-8 box drawing), then for ROUNDS rounds, in an
//!    order that rotates each round:
//!    - `ours`: `Session::spawn` of `cat FILE` at 40x120, no recording, timed from the spawn
//!      until `wait_timeout` reports the exit (every byte read and parsed);
//!    - `ours+rec`: the same with an asciicast recording (as users run it);
//!    - `tmux`: a private tmux server (`-f /dev/null -S SOCK`), `new-session -d -x 120 -y 40
//!      "cat FILE; tmux -S SOCK wait-for -S done"` and `wait-for done`, timed from the
//!      `new-session` call; the server is killed after each round;
//!    - `raw pty`: portable-pty and `cat FILE`, read and thrown away (the ceiling: no parser).
//!
//! MB is 10^6 bytes; throughput is the file's size over the time. The PTY turns every `\n`
//! into `\r\n` (ONLCR), so the terminal reads the file's size plus its newline count; the
//! `ours` rows check `bytes_read()` against exactly that.
//!
//! ```text
//! cargo bench --bench ingest
//! GT_BENCH_ROUNDS=3 GT_BENCH_INGEST_MB=20 cargo bench --bench ingest   # shorter
//! ```

use gastown_tui::agent::{Session, SessionSpec, DEFAULT_SCROLLBACK};
use portable_pty::{CommandBuilder, PtySize};
use std::fmt::Write as _;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS: u16 = 40;
const COLS: u16 = 120;
/// Sessions (and tmux windows) in the memory measurement.
const MEM_AGENTS: usize = 20;
const MEM_LINES: u32 = 5_000;

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

    let file = tmp.path().join("stream.bin");
    let t = Instant::now();
    let stats = generate(&file, target_mb * 1_000_000);
    let size = std::fs::metadata(&file).expect("stream file").len();
    println!("== ingest ==");
    println!(
        "stream: {} ({} bytes, {} newlines, generated in {:.1} s)",
        file.display(),
        size,
        stats.newlines,
        t.elapsed().as_secs_f64()
    );
    println!("  blocks: {}", stats.summary());
    // Page the file in so the first timed round does not read the disk.
    let _ = std::fs::read(&file).map(|b| b.len());

    let expected_pty = size + stats.newlines;
    let mut paths: Vec<&str> = vec!["ours", "ours+rec"];
    if tmux.is_some() {
        paths.push("tmux");
    }
    paths.push("raw pty");
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    for round in 0..rounds {
        let mut line = format!("round {}:", round + 1);
        for k in 0..paths.len() {
            let i = (k + round) % paths.len();
            let secs = match paths[i] {
                "ours" => ours(&file, None, expected_pty),
                "ours+rec" => {
                    let cast = tmp.path().join(format!("round-{round}.cast"));
                    let s = ours(&file, Some(cast.clone()), expected_pty);
                    let cast_len = std::fs::metadata(&cast).map(|m| m.len()).unwrap_or(0);
                    let _ = std::fs::remove_file(&cast);
                    assert!(cast_len > size, "the recording is short: {cast_len} bytes");
                    s
                }
                "tmux" => tmux_round(tmp.path(), &file, round),
                _ => raw_pty(&file, expected_pty),
            };
            times[i].push(secs);
            let _ = write!(line, "  {} {:.0} MB/s", paths[i], size as f64 / 1e6 / secs);
        }
        println!("{line}");
    }

    println!();
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
        println!();
        for (p, m) in paths.iter().zip(&medians) {
            if *p == "ours" || *p == "ours+rec" {
                println!(
                    "ratio {p}/tmux (medians): {:.2}x  (goal >= 2x)",
                    m / medians[ti]
                );
            }
        }
    }
    println!("(MB = 10^6 bytes of the file; {rounds} rounds, interleaved, order rotating)");
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "cpus: {cpus}, model: {model}, loadavg: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
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

// ---------------------------------------------------------------------------------------------
// Ingest paths.

fn spec(program: &str, args: &[&str], cwd: &Path) -> SessionSpec {
    let mut spec = SessionSpec::new(program, cwd);
    spec.args = args.iter().map(|s| s.to_string()).collect();
    spec.rows = ROWS;
    spec.cols = COLS;
    spec.scrollback = DEFAULT_SCROLLBACK;
    spec
}

/// Our session: spawn to reported exit. Seconds.
fn ours(file: &Path, recording: Option<PathBuf>, expected: u64) -> f64 {
    let dir = file.parent().expect("file dir");
    let mut spec = spec("cat", &[file.to_str().expect("utf-8 path")], dir);
    spec.recording = recording;
    let t = Instant::now();
    let s = Session::spawn(spec, Arc::new(|| {})).expect("spawn cat");
    let exit = s.wait_timeout(Duration::from_secs(300));
    let secs = t.elapsed().as_secs_f64();
    let exit = exit.expect("cat did not finish in 300 s");
    assert!(exit.success, "cat: {exit}");
    assert_eq!(s.bytes_read(), expected, "bytes read by the session");
    secs
}

/// tmux: new-session to the `done` signal. Seconds.
fn tmux_round(tmp: &Path, file: &Path, round: usize) -> f64 {
    let sock = tmp.join(format!("tmux-{round}.sock"));
    let cmd = format!(
        "cat {}; tmux -S {} wait-for -S done",
        shell_quote(file.to_str().expect("utf-8 path")),
        shell_quote(sock.to_str().expect("utf-8 path"))
    );
    let t = Instant::now();
    run_ok(
        tmux(&sock).args([
            "new-session",
            "-d",
            "-x",
            &COLS.to_string(),
            "-y",
            &ROWS.to_string(),
            &cmd,
        ]),
        "tmux new-session",
    );
    run_ok(tmux(&sock).args(["wait-for", "done"]), "tmux wait-for");
    let secs = t.elapsed().as_secs_f64();
    let _ = tmux(&sock)
        .arg("kill-server")
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_file(&sock);
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

fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS")
}

/// The bytes `seq 1 N` prints through a PTY (`\n` becomes `\r\n`).
fn seq_pty_bytes(n: u32) -> u64 {
    (1..=n).map(|i| i.to_string().len() as u64 + 2).sum()
}

fn memory(tmp: &Path, with_tmux: bool) {
    println!("== memory per agent ==");
    let script = format!("seq 1 {MEM_LINES}; sleep 30");
    let expected = seq_pty_bytes(MEM_LINES);
    let before = rss_kib("self");
    let sessions: Vec<Session> = (0..MEM_AGENTS)
        .map(|_| {
            Session::spawn(spec("sh", &["-c", &script], tmp), Arc::new(|| {})).expect("spawn sh")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(25);
    while sessions.iter().any(|s| s.bytes_read() < expected) {
        assert!(
            Instant::now() < deadline,
            "the sessions did not print their {MEM_LINES} lines in time"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // `bytes_read` counts a chunk before it is parsed: let the last ones land.
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib("self");
    let history = sessions[0].with_screen(|s| s.scrollback_len());
    let delta = after.saturating_sub(before);
    println!(
        "ours: {MEM_AGENTS} sessions at {ROWS}x{COLS}, scrollback {DEFAULT_SCROLLBACK} (held: {history} lines), \
         each printed {MEM_LINES} lines and idles"
    );
    println!(
        "  VmRSS {before} KiB -> {after} KiB: +{delta} KiB, {:.0} KiB ({:.2} MiB) per agent",
        delta as f64 / MEM_AGENTS as f64,
        delta as f64 / MEM_AGENTS as f64 / 1024.0
    );
    for s in &sessions {
        let _ = s.kill();
    }
    for s in &sessions {
        let _ = s.wait_timeout(Duration::from_secs(5));
    }
    drop(sessions);

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
                "sleep 120",
            ]),
            "tmux new-session",
        );
        let pid = run_ok(
            tmux(&sock).args(["display-message", "-p", "#{pid}"]),
            "tmux display-message",
        )
        .trim()
        .to_string();
        let limit = run_ok(
            tmux(&sock).args(["show-options", "-g", "-v", "history-limit"]),
            "tmux show-options",
        )
        .trim()
        .to_string();
        // tmux drops the oldest tenth of a full history at once: it never sits at the limit.
        let want: u64 = limit.parse::<u64>().unwrap_or(2000) * 8 / 10;
        let before = rss_kib(&pid);
        for _ in 0..MEM_AGENTS {
            run_ok(
                tmux(&sock).args(["new-window", "-d", &script]),
                "new-window",
            );
        }
        let deadline = Instant::now() + Duration::from_secs(25);
        loop {
            let out = run_ok(
                tmux(&sock).args(["list-panes", "-a", "-F", "#{history_size}"]),
                "list-panes",
            );
            let full = out
                .lines()
                .filter_map(|l| l.trim().parse::<u64>().ok())
                .filter(|&h| h >= want)
                .count();
            if full >= MEM_AGENTS {
                break;
            }
            assert!(Instant::now() < deadline, "the tmux windows did not fill");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The last lines of each window.
        std::thread::sleep(Duration::from_millis(500));
        let after = rss_kib(&pid);
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

/// One block of agent-like output; returns its kind.
fn block(rng: &mut Rng, out: &mut String) -> usize {
    let kind = match rng.below(100) {
        0..=29 => 0,
        30..=44 => 1,
        45..=54 => 2,
        55..=61 => 3,
        62..=76 => 4,
        77..=91 => 5,
        _ => 6,
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
        // A full redraw inside synchronized output: clear, a box, content, a prompt.
        3 => {
            out.push_str("\x1b[?2026h\x1b[H\x1b[2J");
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

fn generate(path: &Path, target: u64) -> Stats {
    let mut rng = Rng(0x6761_7374_6f77_6e21);
    let mut w = BufWriter::new(std::fs::File::create(path).expect("create stream file"));
    let mut stats = Stats::default();
    let mut written = 0u64;
    let mut s = String::new();
    while written < target {
        s.clear();
        let kind = block(&mut rng, &mut s);
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
