//! The cockpit with many agents (SPEC section 10, "Many agents"): the delay from a key press to
//! the frame that shows it while 50 agents stream, the cockpit's CPU meanwhile, and the idle
//! cockpit's CPU (and memory) with 100 quiet agents.
//!
//! Not a criterion benchmark: it prints figures, it asserts nothing about time.
//!
//! The cockpit is the release binary (`gastown-tui --town DIR`, no command) in a 45x160 PTY of
//! our own (`gastown_tui::agent::Session`, as `tests/cockpit.rs` drives it): its output is parsed
//! into a screen the way a terminal would, and the session's `notify` callback (called by its
//! reader thread after each chunk is parsed) wakes the measuring thread, so the screen is read
//! only when it changed, never by blind polling. That reader thread plays the terminal emulator,
//! a separate program at normal priority: the library starts it at background priority (as it
//! does for agents' output), so it is put back to nice 0 (`renice`; said if that fails).
//!
//! Setup of each town (untimed): `gastown-tui init`, a source git repo with `test.sh`
//! (`test ! -e BROKEN`) added as rig `demo` with `--test-command ./test.sh`,
//! `config default-runtime sim`, then N beads created and slung to `demo` with `--runtime sim`
//! before the cockpit opens (the engine it starts then starts every polecat on its first tick).
//!
//! **Streaming** (default 50 agents): each bead says `sim: flood 1024` (the sim's maximum: far
//! more than the run lasts; the sims are stopped with the cockpit). Once every agent's recording
//! holds at least 512 KiB (all of them are flooding) and the cockpit's terminal pane shows flood
//! lines, PRESSES keys (default 200), 50-100 ms apart with a deterministic jitter: `j` down the
//! agents list SWEEP times, then `k` up as many times, and so on, so every press selects a
//! different agent, whose terminal and header become visible, and the list scrolls. For each
//! press: from just before the key is written to our PTY until the first screen read in which
//! the terminal header (the top border right of the agents list: `┬ NAME · polecat · ...`)
//! names another agent and no synchronized update is open (the frame is complete). Reported:
//! p50/p90/p99/max; the measuring overhead (the screen read's cost, and the time from the
//! latest parsed chunk to the read that saw the change); the cockpit process's CPU over the
//! window (utime+stime from `/proc/PID/stat`; the cockpit is now a client of a background engine,
//! whose CPU this does not count yet: figures in the README are from the in-process cockpit; every
//! PTY reader and recorder), split by thread name with each group's time runnable but waiting
//! for a CPU (`/proc/PID/task/TID/schedstat`); the sims' CPU; the whole machine's busy time;
//! and the aggregate stream rate (growth of the recordings).
//!
//! With `GT_BENCH_LOAD=spinner` the streaming agents run `sim: sleep 3600` instead: a spinner
//! line redrawn every 80 ms, the steady trickle of a working agent (about 1 KB/s each), for
//! the same measurement under a realistic rather than a saturating load.
//!
//! **Idle** (default 100 agents): each bead says `sim: stall`: the sim primes, reads its bead,
//! prints `Thinking…` and stays alive and silent with the bead on its hook (no merge request,
//! so the Refinery has nothing to do; the Witness calls it stalled only after 5 minutes). Once
//! every recording shows the stall (or nothing grew for 6 s) and 3 s more passed, nothing is
//! typed for IDLE_SECS (default 30): the cockpit's CPU as % of one core, split by thread name,
//! and how many bytes it wrote to its terminal. Then its RSS (and peak RSS) with those agents.
//! `GT_BENCH_IDLE_SCRIPT=done` makes them `sim: sleep 0` instead: each runs the tests, calls
//! `done` and sits at its `sim>` prompt, which leaves 100 merge requests for the Refinery, so the
//! "idle" window then includes the merge queue being worked through.
//!
//! Each cockpit stops its engine with `:stop`, `y` (timed); then no `gastown-tui sim-agent` may be left in
//! the temp dir (any left are reported and killed by pid); the temp dir is removed.
//!
//! ```text
//! cargo bench --bench cockpit
//! GT_BENCH_STREAMING=10 GT_BENCH_PRESSES=50 GT_BENCH_IDLE=20 GT_BENCH_IDLE_SECS=10 \
//!     cargo bench --bench cockpit                                     # shorter
//! GT_BENCH_LOAD=spinner cargo bench --bench cockpit                   # agents trickle
//! ```

mod common;

use common::{json_field, machine, ms, pct, source_repo};
use gastown_tui::agent::{Session, SessionSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gastown-tui");
/// Give up on any one wait of the setup after this long.
const PATIENCE: Duration = Duration::from_secs(180);
/// Give up on one key press after this long (counted as missed).
const PRESS_PATIENCE: Duration = Duration::from_secs(2);
/// The cockpit's terminal.
const ROWS: u16 = 45;
const COLS: u16 = 160;
/// Lines of flood output (`sim: flood`), any of which shows the stream reached the pane.
const FLOOD_MARKS: &[&str] = &[
    "Compiling crate-",
    "thinking about step",
    "Read src/module_",
];
/// The spinner line of `sim: sleep`.
const SPINNER_MARKS: &[&str] = &["esc to interrupt"];

/// What the streaming agents print.
struct Load {
    /// The beads' description.
    script: String,
    /// Some agent's output on screen shows it streams.
    marks: &'static [&'static str],
    /// An agent streams once its recordings hold this many bytes.
    ready_bytes: u64,
}

impl Load {
    /// `GT_BENCH_LOAD=flood` (default): `sim: flood MB`, as fast as the terminal takes it;
    /// `GT_BENCH_LOAD=spinner`: `sim: sleep 3600`, a spinner line redrawn every 80 ms (a
    /// working agent's steady trickle, about 1 KB/s each).
    fn from_env() -> Load {
        let flood_mb = env_num("GT_BENCH_FLOOD_MB", 1024).clamp(1, 1024);
        match std::env::var("GT_BENCH_LOAD").as_deref() {
            Ok("spinner") => Load {
                script: "sim: sleep 3600".into(),
                marks: SPINNER_MARKS,
                ready_bytes: 8 * 1024,
            },
            _ => Load {
                script: format!("sim: flood {flood_mb}"),
                marks: FLOOD_MARKS,
                ready_bytes: 512 * 1024,
            },
        }
    }

    fn on(&self, screen: &str) -> bool {
        self.marks.iter().any(|m| screen.contains(m))
    }
}

fn main() {
    let streaming = env_num("GT_BENCH_STREAMING", 50).max(2);
    let presses = env_num("GT_BENCH_PRESSES", 200);
    let idle = env_num("GT_BENCH_IDLE", 100);
    let idle_secs = env_num("GT_BENCH_IDLE_SECS", 30) as u64;
    let load = Load::from_env();

    let tmp = tempfile::Builder::new()
        .prefix("gt-bench-cockpit-")
        .tempdir()
        .expect("temp dir");
    // Whatever happens, no sim of ours outlives the run.
    let sweep = Sweep(tmp.path().to_path_buf());
    let hz = clock_ticks();

    println!("== machine ==");
    println!("{}", machine());
    println!("binary: {BIN}");
    println!("clock ticks: {hz}/s; cockpit terminal {ROWS}x{COLS}");
    println!();

    let s = streaming_phase(tmp.path(), streaming, presses, &load, hz);
    println!();
    let i = idle_phase(tmp.path(), idle, idle_secs, hz);

    println!();
    println!("== summary ==");
    println!("{:<58} {:>12} {:>12}", "figure", "measured", "goal");
    if let Some(p) = &s.latency {
        println!(
            "{:<58} {:>9.1} ms {:>12}",
            format!("key -> frame, p50 ({streaming} x {})", load.script),
            p[0],
            ""
        );
        println!("{:<58} {:>9.1} ms {:>12}", "key -> frame, p90", p[1], "");
        println!(
            "{:<58} {:>9.1} ms {:>12}",
            "key -> frame, p99", p[2], "< 50 ms"
        );
        println!("{:<58} {:>9.1} ms {:>12}", "key -> frame, max", p[3], "");
    }
    println!(
        "{:<58} {:>10.1} % {:>12}",
        format!("cockpit CPU while {streaming} stream (of one core)"),
        s.cpu,
        "reported"
    );
    println!(
        "{:<58} {:>10.2} % {:>12}",
        format!("cockpit CPU idle, {idle} idle agents (of one core)"),
        i.cpu,
        "< 2 %"
    );
    println!(
        "{:<58} {:>9.1} MB {:>12}",
        format!("cockpit RSS, {idle} idle agents"),
        i.rss_kb as f64 / 1024.0,
        "reported"
    );
    println!(
        "{:<58} {:>9.1} MB {:>12}",
        format!("cockpit RSS, {streaming} streaming agents"),
        s.rss_kb as f64 / 1024.0,
        "reported"
    );

    let left = sweep.leftovers();
    println!();
    if left.is_empty() {
        println!("teardown: no gastown-tui sim-agent left under the temp dir");
    } else {
        println!(
            "teardown: {} sim-agent processes were left (killed now): {left:?}",
            left.len()
        );
    }
    drop(sweep);
    drop(tmp);
    println!("== end: {}", machine());
}

struct StreamResult {
    /// p50, p90, p99, max in ms.
    latency: Option<[f64; 4]>,
    cpu: f64,
    rss_kb: u64,
}

fn streaming_phase(tmp: &Path, n: usize, presses: usize, load: &Load, hz: u64) -> StreamResult {
    println!("== {n} streaming agents ({}) ==", load.script);
    let gt = Gt::setup(&tmp.join("stream"));
    let t = Instant::now();
    let agents = gt.sling_many(n, &load.script);
    println!(
        "setup: {n} beads created and slung in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let c = Cockpit::open(&gt);
    println!("cockpit pid {} open after {:.0} ms", c.pid, ms(t.elapsed()));
    let want = format!("Agents {n} ");
    c.wait("every agent in the list", |s| {
        s.lines().next().is_some_and(|l| l.contains(&want))
    });
    wait_until("every agent streaming", || {
        agents
            .iter()
            .all(|a| dir_bytes(&gt.town.join("logs").join(a)) >= load.ready_bytes)
    });
    c.wait("the stream in the cockpit's terminal pane", |s| load.on(s));
    println!(
        "all {n} agents streaming {:.1} s after the cockpit opened",
        t.elapsed().as_secs_f64()
    );
    // Let the start-up settle (the last sims' first prompt, the engine's first snapshots).
    std::thread::sleep(Duration::from_secs(2));

    let sweep = (n - 1).min(40);
    let logs = gt.town.join("logs");
    let bytes0 = dir_bytes(&logs);
    let out0 = c.s.bytes_read();
    let cpu0 = CpuSample::take(c.pid);
    let mut lat = Vec::with_capacity(presses);
    let mut slack = Vec::with_capacity(presses);
    let mut reads = Vec::new();
    let mut missed = 0usize;
    let mut changes = 0usize;
    for i in 0..presses {
        std::thread::sleep(Duration::from_millis(50 + ((i * 37) % 51) as u64));
        let key = if (i / sweep) % 2 == 0 { b'j' } else { b'k' };
        match c.press(key, &mut reads) {
            Some(p) => {
                lat.push(p.latency);
                slack.push(p.slack);
                changes += p.reads;
            }
            None => missed += 1,
        }
    }
    let cpu1 = CpuSample::take(c.pid);
    let bytes1 = dir_bytes(&logs);
    let out1 = c.s.bytes_read();
    let rss = rss(c.pid);
    let wall = cpu1.at.duration_since(cpu0.at).as_secs_f64();

    // Still streaming at the end? (the selected agent's pane must still show it)
    let still = load.on(&c.screen());

    println!();
    println!(
        "{presses} presses ({} answered, {missed} missed after {} s), `j` x{sweep} then `k` x{sweep}, \
         50-100 ms apart, over {wall:.1} s",
        lat.len(),
        PRESS_PATIENCE.as_secs()
    );
    let latency = if lat.is_empty() {
        None
    } else {
        let mut s = lat.clone();
        s.sort_by(f64::total_cmp);
        let p = [pct(&s, 50), pct(&s, 90), pct(&s, 99), s[s.len() - 1]];
        println!(
            "{:<44} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "ms", "p50", "p90", "p99", "max", "min", "mean"
        );
        row("key -> frame showing it (goal p99 < 50)", &lat);
        row("  measuring slack (chunk parsed -> seen)", &slack);
        row("  one screen read (capture + mode check)", &reads);
        Some(p)
    };
    println!(
        "screen reads while waiting: {:.1} per press on average ({} in all); each read happens \
         only after the cockpit's output changed our screen",
        changes as f64 / lat.len().max(1) as f64,
        reads.len()
    );
    let rate = (bytes1.saturating_sub(bytes0)) as f64 / wall / (1024.0 * 1024.0);
    println!(
        "agents' output recorded meanwhile: {rate:.1} MB/s in all ({:.2} MB/s per agent); \
         stream still on screen at the end: {still}",
        rate / n as f64
    );
    println!(
        "the cockpit wrote {:.1} KB/s to its terminal",
        (out1.saturating_sub(out0)) as f64 / wall / 1024.0
    );
    let cpu = cpu0.report(&cpu1, hz);
    println!(
        "cockpit RSS {:.1} MB (peak {:.1} MB) with {n} streaming agents",
        rss.0 as f64 / 1024.0,
        rss.1 as f64 / 1024.0
    );
    c.quit();
    StreamResult {
        latency,
        cpu,
        rss_kb: rss.0,
    }
}

struct IdleResult {
    cpu: f64,
    rss_kb: u64,
}

fn idle_phase(tmp: &Path, n: usize, secs: u64, hz: u64) -> IdleResult {
    // The script, and what its recording shows once the sim has gone quiet.
    let (script, quiet_mark, state) = match std::env::var("GT_BENCH_IDLE_SCRIPT").as_deref() {
        Ok("done") => (
            "sim: sleep 0",
            "submitted for merge",
            "done, at their sim> prompt",
        ),
        _ => ("sim: stall", "Thinking", "stalled, silent"),
    };
    println!("== {n} idle agents ({script}) ==");
    let gt = Gt::setup(&tmp.join("idle"));
    let t = Instant::now();
    let agents = gt.sling_many(n, script);
    println!(
        "setup: {n} beads created and slung in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let c = Cockpit::open(&gt);
    println!("cockpit pid {} open after {:.0} ms", c.pid, ms(t.elapsed()));
    let want = format!("Agents {n} ");
    c.wait("every agent in the list", |s| {
        s.lines().next().is_some_and(|l| l.contains(&want))
    });
    // Every sim quiet (or at least nothing moving for 6 s), then 3 s more.
    let logs = gt.town.join("logs");
    let done = |a: &String| cast_text(&logs.join(a)).contains(quiet_mark);
    let mut last = (dir_bytes(&logs), Instant::now());
    wait_until("every idle agent quiet", || {
        let b = dir_bytes(&logs);
        if b != last.0 {
            last = (b, Instant::now());
        }
        let quiet = last.1.elapsed() >= Duration::from_secs(3);
        quiet && (b > 0 && (agents.iter().all(done) || last.1.elapsed() >= Duration::from_secs(6)))
    });
    let finished = agents.iter().filter(|a| done(a)).count();
    println!(
        "{finished}/{n} agents {state} {:.1} s after the cockpit opened",
        t.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(3));

    let out0 = c.s.bytes_read();
    let cpu0 = CpuSample::take(c.pid);
    std::thread::sleep(Duration::from_secs(secs));
    let cpu1 = CpuSample::take(c.pid);
    let out1 = c.s.bytes_read();
    let wall = cpu1.at.duration_since(cpu0.at).as_secs_f64();
    println!();
    println!("nothing typed for {wall:.1} s:");
    let cpu = cpu0.report(&cpu1, hz);
    println!(
        "the cockpit wrote {} bytes to its terminal meanwhile ({:.0} B/s)",
        out1.saturating_sub(out0),
        out1.saturating_sub(out0) as f64 / wall
    );
    let rss = rss(c.pid);
    println!(
        "cockpit RSS {:.1} MB (peak {:.1} MB) with {n} idle agents",
        rss.0 as f64 / 1024.0,
        rss.1 as f64 / 1024.0
    );
    c.quit();
    IdleResult { cpu, rss_kb: rss.0 }
}

// ---------------------------------------------------------------------------------------------
// The cockpit in our PTY.

/// Counts the chunks our PTY reader parsed; wakes the measuring thread.
#[derive(Default)]
struct Signal {
    state: Mutex<(u64, Option<Instant>)>,
    changed: Condvar,
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, (u64, Option<Instant>)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        let mut s = self.lock();
        s.0 += 1;
        s.1 = Some(Instant::now());
        self.changed.notify_all();
    }

    fn now(&self) -> u64 {
        self.lock().0
    }

    /// Waits up to `timeout` for a chunk after `seen`; the count and the latest chunk's time.
    fn wait_past(&self, seen: u64, timeout: Duration) -> (u64, Option<Instant>) {
        let guard = self.lock();
        let (s, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |s| s.0 == seen)
            .unwrap_or_else(PoisonError::into_inner);
        *s
    }
}

struct Press {
    latency: f64,
    slack: f64,
    reads: usize,
}

struct Cockpit {
    s: Session,
    sig: Arc<Signal>,
    pid: u32,
}

impl Cockpit {
    fn open(gt: &Gt) -> Cockpit {
        let mut spec = SessionSpec::new(BIN, &gt.home);
        spec.args = vec!["--town".into(), gt.town.display().to_string()];
        spec.rows = ROWS;
        spec.cols = COLS;
        spec.scrollback = 0;
        spec.env = vec![
            ("HOME".into(), gt.home.display().to_string()),
            ("GT_TOWN".into(), String::new()),
            ("GT_AGENT".into(), String::new()),
            ("BD_ACTOR".into(), String::new()),
        ];
        let sig = Arc::new(Signal::default());
        let on_output = sig.clone();
        let s =
            Session::spawn(spec, Arc::new(move || on_output.bump())).expect("start the cockpit");
        let pid = s.pid().expect("the cockpit's pid");
        let c = Cockpit { s, sig, pid };
        c.wait("the cockpit", |s| {
            s.contains("Agents") && s.contains("? help")
        });
        // After the first output: the reader has set its own priority by now.
        terminal_priority(pid);
        c
    }

    fn screen(&self) -> String {
        self.s.capture(false)
    }

    /// The screen and whether it is complete (no synchronized update open).
    fn frame(&self) -> (String, bool) {
        let text = self.s.capture(false);
        let complete = !self.s.with_screen(|sc| sc.synchronized_update());
        (text, complete)
    }

    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return;
            }
            if let Some(exit) = self.s.exit_status() {
                panic!("the cockpit exited ({exit}) while waiting for {what}:\n{screen}");
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `key`; how long until a complete frame names another agent in the terminal's
    /// header. `reads` gets the cost of every screen read (ms).
    fn press(&self, key: u8, reads: &mut Vec<f64>) -> Option<Press> {
        let deadline = Instant::now() + PRESS_PATIENCE;
        let before = loop {
            if let (text, true) = self.frame() {
                if let Some(h) = header(&text) {
                    break h;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no agent header:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        let mut seen = self.sig.now();
        let t0 = Instant::now();
        self.s.write(&[key]).expect("type into the cockpit");
        let deadline = t0 + PRESS_PATIENCE;
        let mut n = 0;
        loop {
            let (count, latest) = self.sig.wait_past(seen, Duration::from_millis(1));
            if count != seen {
                seen = count;
                let start = Instant::now();
                let (text, complete) = self.frame();
                let end = Instant::now();
                reads.push(ms(end - start));
                n += 1;
                if complete && header(&text).is_some_and(|h| h != before) {
                    return Some(Press {
                        latency: ms(end - t0),
                        slack: latest.map_or(0.0, |l| ms(end.saturating_duration_since(l))),
                        reads: n,
                    });
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
        }
    }

    /// `:stop`, `y`: the cockpit stops the engine and its agents, and exits.
    fn quit(self) {
        let t = Instant::now();
        let _ = self.s.write(b":stop\r");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.screen().contains("Stop the town's engine?") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.s.write(b"y");
        match self.s.wait_timeout(Duration::from_secs(90)) {
            Some(exit) => println!(
                ":stop, y: the cockpit {exit} {:.1} s after the :stop",
                t.elapsed().as_secs_f64()
            ),
            None => {
                println!(":stop, y: the cockpit did not exit in 90 s; killing it");
                let _ = self.s.kill();
                let _ = self.s.wait_timeout(Duration::from_secs(5));
            }
        }
    }
}

/// Our PTY reader (the thread that plays the terminal emulator, `pty-read-PID`) runs at the
/// priority the library gives agents' output readers; a real terminal is a separate program at
/// normal priority, so put it back to nice 0 (needs root or `RLIMIT_NICE`; said if it fails).
fn terminal_priority(pid: u32) {
    let name: String = format!("pty-read-{pid}").chars().take(15).collect();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    let mut found = false;
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        found = true;
        let nice = |t: &std::fs::DirEntry| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // Field 19 (nice) is the 17th after the comm's closing parenthesis.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(16).map(str::to_string))
                .unwrap_or_default()
        };
        let before = nice(&t);
        let ok = Command::new("renice")
            .args(["-n", "0", "-p"])
            .arg(t.file_name())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        println!(
            "our terminal's reader thread: nice {before} -> {}{}",
            nice(&t),
            if ok {
                ""
            } else {
                " (could not renice: latencies include its lower priority)"
            }
        );
    }
    if !found {
        println!("our terminal's reader thread ({name}) not found: its priority is as it was");
    }
}

/// The agent named in the terminal's header: the top border right of the agents list,
/// `┌ Agents 50 ───┬ NAME · polecat · rig demo · ... ┐`.
fn header(screen: &str) -> Option<String> {
    let top = screen.lines().next()?;
    let (_, rest) = top.split_once('┬')?;
    let name = rest.trim_start().split([' ', '·']).next()?;
    (!name.is_empty() && !name.starts_with('─')).then(|| name.to_string())
}

// ---------------------------------------------------------------------------------------------
// The town.

/// The binary with a clean environment, optionally pointed at the town.
struct Gt {
    home: PathBuf,
    town: PathBuf,
}

impl Gt {
    /// A town at `dir/town` with rig `demo` (from `dir/src`) and `sim` as default runtime.
    fn setup(dir: &Path) -> Gt {
        std::fs::create_dir_all(dir).expect("bench dir");
        let gt = Gt {
            home: dir.to_path_buf(),
            town: dir.join("town"),
        };
        gt.cmd(false).arg("init").arg(&gt.town).ok("init");
        let src = dir.join("src");
        source_repo(&src);
        gt.cmd(true)
            .args(["rig", "add", "demo"])
            .arg(&src)
            .args(["--test-command", "./test.sh"])
            .ok("rig add");
        gt.cmd(true)
            .args(["config", "default-runtime", "sim"])
            .ok("config default-runtime");
        gt
    }

    fn cmd(&self, with_town: bool) -> Command {
        let mut c = Command::new(BIN);
        c.env_remove("GT_TOWN")
            .env_remove("GT_AGENT")
            .env_remove("BD_ACTOR")
            .env("HOME", &self.home);
        if with_town {
            c.arg("--town").arg(&self.town);
        }
        c
    }

    /// `n` beads with `description`, each slung to `demo` (a new polecat each); their agents.
    fn sling_many(&self, n: usize, description: &str) -> Vec<String> {
        (1..=n)
            .map(|i| {
                let out = self
                    .cmd(true)
                    .args(["bead", "create", &format!("Bench agent {i}")])
                    .args(["-d", description, "--json"])
                    .ok("bead create");
                let bead = json_field(&out.stdout, "id");
                let out = self
                    .cmd(true)
                    .args(["sling", &bead, "demo", "--runtime", "sim", "--json"])
                    .ok("sling");
                json_field(&out.stdout, "agent")
            })
            .collect()
    }
}

trait Run {
    fn ok(&mut self, what: &str) -> Output;
}

impl Run for Command {
    fn ok(&mut self, what: &str) -> Output {
        let out = self
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {BIN}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// Bytes of the files directly in `dir` and one level below (an agent's recordings, or all).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The text of an agent's recordings.
fn cast_text(dir: &Path) -> String {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if let Ok(t) = std::fs::read_to_string(e.path()) {
                text.push_str(&t);
            }
        }
    }
    text
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// /proc.

/// CPU ticks of a process (utime + stime) and its parent pid, from `/proc/PID/stat`.
fn proc_stat(path: &Path) -> Option<(String, u32, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let f: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = f.get(1)?.parse().ok()?;
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((comm, ppid, ticks))
}

/// A thread's name without its pid suffix (`pty-read-1234` -> `pty-read`).
fn thread_group(comm: &str) -> String {
    comm.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
        .to_string()
}

/// A thread's time on a CPU and time runnable but waiting for one (ns), from
/// `/proc/PID/task/TID/schedstat`.
fn schedstat(path: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut f = text.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some((f.next()??, f.next()??))
}

struct CpuSample {
    at: Instant,
    cockpit: u64,
    /// By thread id: name group, ns on a CPU, ns waiting for one.
    threads: BTreeMap<u32, (String, u64, u64)>,
    children: BTreeMap<u32, u64>,
    busy: u64,
    total: u64,
}

impl CpuSample {
    fn take(pid: u32) -> CpuSample {
        let cockpit =
            proc_stat(&PathBuf::from(format!("/proc/{pid}/stat"))).map_or(0, |(_, _, t)| t);
        let mut threads = BTreeMap::new();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in tasks.flatten() {
                let tid = t.file_name().to_string_lossy().parse::<u32>().unwrap_or(0);
                let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                if let Some((run, wait)) = schedstat(&t.path().join("schedstat")) {
                    threads.insert(tid, (thread_group(comm.trim()), run, wait));
                }
            }
        }
        let mut children = BTreeMap::new();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.flatten() {
                let Ok(cpid) = p.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                if let Some((_, ppid, ticks)) = proc_stat(&p.path().join("stat")) {
                    if ppid == pid {
                        children.insert(cpid, ticks);
                    }
                }
            }
        }
        let (busy, total) = system_ticks();
        CpuSample {
            at: Instant::now(),
            cockpit,
            threads,
            children,
            busy,
            total,
        }
    }

    /// Prints the CPU used between `self` and `end`; the cockpit's, as % of one core.
    fn report(&self, end: &CpuSample, hz: u64) -> f64 {
        let wall = end.at.duration_since(self.at).as_secs_f64();
        let pc = |ticks: u64| ticks as f64 / hz as f64 / wall * 100.0;
        let cockpit = pc(end.cockpit.saturating_sub(self.cockpit));
        println!(
            "cockpit process (UI + in-process engine + PTY readers/recorders): {cockpit:.2} % of \
             one core over {wall:.1} s"
        );
        // By thread name: CPU, and time runnable but waiting for a CPU (summed over the
        // group's threads, as % of the window).
        let mut groups: BTreeMap<&str, (u64, u64, usize)> = BTreeMap::new();
        for (tid, (name, run, wait)) in &end.threads {
            let (run0, wait0) = self.threads.get(tid).map_or((0, 0), |t| (t.1, t.2));
            let g = groups.entry(name.as_str()).or_default();
            g.0 += run.saturating_sub(run0);
            g.1 += wait.saturating_sub(wait0);
            g.2 += 1;
        }
        let ns = |v: u64| v as f64 / 1e9 / wall * 100.0;
        let listed: f64 = groups.values().map(|g| ns(g.0)).sum();
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.1 .0));
        println!(
            "    {:<18} {:>5} {:>9} {:>26}",
            "threads", "count", "CPU", "runnable, waiting for CPU"
        );
        for (name, (run, wait, count)) in groups.iter().filter(|g| g.1 .0 + g.1 .1 > 0) {
            println!(
                "    {name:<18} {count:>5} {:>7.2} % {:>24.1} %",
                ns(*run),
                ns(*wait)
            );
        }
        if cockpit - listed > 0.05 {
            println!(
                "    {:<18} {:>5} {:>7.2} %",
                "(ended meanwhile)",
                "",
                cockpit - listed
            );
        }
        let children: u64 = end
            .children
            .iter()
            .map(|(pid, t)| t.saturating_sub(self.children.get(pid).copied().unwrap_or(0)))
            .sum();
        println!(
            "agents (the cockpit's {} child processes): {:.1} % of one core",
            end.children.len(),
            pc(children)
        );
        let total = end.total.saturating_sub(self.total).max(1);
        println!(
            "whole machine: {:.0} % busy ({} cores)",
            end.busy.saturating_sub(self.busy) as f64 / total as f64 * 100.0,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        cockpit
    }
}

/// Busy and total ticks of all cores, from `/proc/stat`.
fn system_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// Resident and peak resident set, in KiB.
fn rss(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100)
}

/// Kills (by pid) any `gastown-tui sim-agent` still running in a directory under its root.
struct Sweep(PathBuf);

impl Sweep {
    /// The sims left under the root, killed.
    fn leftovers(&self) -> Vec<u32> {
        let mut left = Vec::new();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return left;
        };
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let is_sim = cmdline.split(|&b| b == 0).any(|a| a == b"sim-agent");
            let ours =
                std::fs::read_link(p.path().join("cwd")).is_ok_and(|d| d.starts_with(&self.0));
            if is_sim && ours {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                left.push(pid);
            }
        }
        left
    }
}

impl Drop for Sweep {
    fn drop(&mut self) {
        let _ = self.leftovers();
    }
}

// ---------------------------------------------------------------------------------------------
// Figures.

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn row(name: &str, v: &[f64]) {
    if v.is_empty() {
        return;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let mean = s.iter().sum::<f64>() / s.len() as f64;
    println!(
        "{:<44} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
        name,
        pct(&s, 50),
        pct(&s, 90),
        pct(&s, 99),
        s[s.len() - 1],
        s[0],
        mean
    );
}
