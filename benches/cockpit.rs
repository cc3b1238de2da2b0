//! The cockpit with many agents: the delay from a key press to
//! the frame that shows it while 50 agents stream, the time from typing `gastown-tui` to the
//! first full frame of a 50-agent town, and the idle CPU (and memory) with 100 quiet agents;
//! each time split between the cockpit (the client, drawing) and the town's engine (the
//! background server that owns the PTYs, emulators, recordings and patrols).
//!
//! Not a criterion benchmark: it prints figures, it asserts nothing about time.
//!
//! The cockpit is the release binary (`gastown-tui --town DIR`, no command) in a 45x160 PTY of
//! our own (`gastown_tui::agent::Session`, as `tests/cockpit.rs` drives it): its output is parsed
//! into a screen the way a terminal would, and the session's `notify` callback (called by its
//! reader thread after each chunk is parsed) wakes the measuring thread, so the screen is read
//! only when it changed, never by blind polling. That reader thread plays the terminal emulator,
//! a separate program at normal priority: the library starts it at background priority (as it
//! does for agents' output), so it is put back to nice 0 as soon as it exists (said if that
//! fails). The first cockpit on a town starts its engine (as users do: `gastown-tui` starts one
//! when none answers); the engine's pid comes from `gastown-tui status --json`.
//!
//! Setup of each town (untimed): `gastown-tui init`, a source git repo with `test.sh`
//! (`test ! -e BROKEN`) added as rig `demo` with `--test-command ./test.sh`,
//! `config default-runtime sim`, then N beads created and slung to `demo` with `--runtime sim`
//! before the cockpit opens (the engine it starts then starts every polecat on its first tick).
//!
//! **Streaming** (default 50 agents): each bead says `sim: flood 1024` (the sim's maximum: far
//! more than the run lasts; the sims are stopped with the engine). Once every agent's recording
//! holds at least 512 KiB (all of them are flooding) and the cockpit's terminal pane shows flood
//! lines, PRESSES keys (default 200), 50-100 ms apart with a deterministic jitter: `j` down the
//! agents list SWEEP times, then `k` up as many times, and so on, so every press selects a
//! different agent, whose terminal and header become visible, and the list scrolls. For each
//! press: from just before the key is written to our PTY until the first screen read in which
//! the terminal header (the top border right of the agents list: `┬ NAME · polecat · ...`)
//! names another agent and no synchronized update is open (the frame is complete). Reported:
//! p50/p90/p99/max; the measuring overhead (the screen read's cost, and the time from the
//! latest parsed chunk to the read that saw the change); the CPU over the window of the cockpit
//! process and of the engine process (utime+stime from `/proc/PID/stat`), each split by thread
//! name with each group's time runnable but waiting for a CPU (`/proc/PID/task/TID/schedstat`);
//! the sims' CPU (the engine's children); the whole machine's busy time; the aggregate stream
//! rate (growth of the recordings); both processes' RSS. Then ATTACHES times (default 5) `q`
//! (the cockpit detaches; timed to its exit) and `gastown-tui` again while the agents flood:
//! the time to the first full frame (below).
//!
//! With `GT_BENCH_LOAD=spinner` the streaming agents run `sim: sleep 3600` instead: a spinner
//! line redrawn every 80 ms, the steady trickle of a working agent (about 1 KB/s each), for
//! the same measurement under a realistic rather than a saturating load.
//!
//! **Start-up** (default 50 agents, `GT_BENCH_START`): each bead says `sim: stall` (primes,
//! prints `Thinking…`, stays alive and silent). The time from starting `gastown-tui --town DIR`
//! in our PTY to the first complete frame (no synchronized update open) whose agents list says
//! `Agents 50` and whose terminal header names an agent. **Cold** (COLD rounds, default 3): no
//! engine runs, so the cockpit starts one (`up --headless` in its own session), waits for its
//! socket, attaches; the new engine restarts the 50 hooked polecats meanwhile, so this frame
//! may still say the selected one has no session. Between rounds `:stop`, `y` stops the engine
//! and its agents (the hooks stay). **Warm** (ATTACHES rounds, default 10): the engine and its
//! 50 agents run (all stalled, quiet), the cockpit is left with `q` (timed until the terminal
//! is given back saying `Detached from`) and opened again, what a user does after detaching;
//! here the frame must also show the selected agent's terminal.
//!
//! **Idle** (default 100 agents): each bead says `sim: stall`. Once every recording shows the
//! stall (or nothing grew for 6 s) and 3 s more passed, nothing is typed for IDLE_SECS
//! (default 30): the cockpit's and the engine's CPU as % of one core, split by thread name, and
//! how many bytes the cockpit wrote to its terminal. Then both processes' RSS (and peak RSS).
//! `GT_BENCH_IDLE_SCRIPT=done` makes them `sim: sleep 0` instead: each runs the tests, calls
//! `done` and sits at its `sim>` prompt, which leaves 100 merge requests for the Refinery, so the
//! "idle" window then includes the merge queue being worked through.
//!
//! Each phase's last cockpit stops its engine with `:stop`, `y` (timed); then no `gastown-tui
//! sim-agent` may be left in the temp dir (any left are reported and killed by pid); the temp
//! dir is removed.
//!
//! ```text
//! cargo bench --bench cockpit
//! GT_BENCH_STREAMING=10 GT_BENCH_PRESSES=50 GT_BENCH_START=10 GT_BENCH_IDLE=20 \
//!     GT_BENCH_IDLE_SECS=10 cargo bench --bench cockpit               # shorter
//! GT_BENCH_LOAD=spinner cargo bench --bench cockpit                   # agents trickle
//! ```

mod common;

use common::pty::Pty;
use common::{machine, ms, pct, Gt, BIN};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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
    let attaches = env_num("GT_BENCH_ATTACHES", 10).max(1);
    let start = env_num("GT_BENCH_START", 50).max(1);
    let cold = env_num("GT_BENCH_COLD", 3).max(1);
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

    let s = streaming_phase(
        tmp.path(),
        streaming,
        presses,
        attaches.div_ceil(2),
        &load,
        hz,
    );
    println!();
    let st = startup_phase(tmp.path(), start, cold, attaches);
    println!();
    let i = idle_phase(tmp.path(), idle, idle_secs, hz);

    println!();
    println!("== summary ==");
    println!("{:<64} {:>12} {:>12}", "figure", "measured", "goal");
    let line = |what: String, v: String, goal: &str| println!("{what:<64} {v:>12} {goal:>12}");
    let ms1 = |v: f64| format!("{v:.1} ms");
    if let Some(p) = &s.latency {
        line(
            format!("key -> frame, p50 ({streaming} x {})", load.script),
            ms1(p[0]),
            "",
        );
        line("key -> frame, p90".into(), ms1(p[1]), "");
        line("key -> frame, p99".into(), ms1(p[2]), "< 16 ms");
        line("key -> frame, max".into(), ms1(p[3]), "");
    }
    let first = |what: &str, v: &[f64], goal: &str| {
        if let Some(p) = percentiles(v) {
            line(
                format!("{what}: p50 / max ({} rounds)", v.len()),
                format!("{:.0} / {:.0} ms", p[0], p[3]),
                goal,
            );
        }
    };
    first(
        &format!("`gastown-tui` -> first full frame, {start} agents, cold"),
        &st.cold,
        "< 150 ms",
    );
    first(
        &format!("`gastown-tui` -> first full frame, {start} agents, attach"),
        &st.warm,
        "< 150 ms",
    );
    first(
        &format!("`gastown-tui` -> first full frame, {streaming} flooding, attach"),
        &s.attach,
        "",
    );
    first("`q` -> the terminal given back (detach)", &st.detach, "");
    let pc = |v: f64| format!("{v:.2} %");
    let mb = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
    let both = |what: String, v: Split<String>, goal: &str| {
        line(format!("cockpit {what}"), v.client, goal);
        line(format!("engine {what}"), v.engine, goal);
    };
    both(
        format!("CPU while {streaming} stream (of one core)"),
        s.cpu.map(pc),
        "reported",
    );
    both(
        format!("CPU idle, {idle} idle agents (of one core)"),
        i.cpu.map(pc),
        "",
    );
    line(
        "  the two together".into(),
        pc(i.cpu.client + i.cpu.engine),
        "< 1 %",
    );
    both(
        format!("RSS, {idle} idle agents"),
        i.rss.map(mb),
        "reported",
    );
    both(
        format!("RSS, {streaming} streaming agents"),
        s.rss.map(mb),
        "reported",
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

/// The same figure for the cockpit (the client) and the engine (the server).
#[derive(Default, Clone, Copy)]
struct Split<T> {
    client: T,
    engine: T,
}

impl<T> Split<T> {
    fn map<U>(self, f: impl Fn(T) -> U) -> Split<U> {
        Split {
            client: f(self.client),
            engine: f(self.engine),
        }
    }
}

impl Split<CpuSample> {
    fn take(client: u32, engine: u32) -> Split<CpuSample> {
        Split {
            client: CpuSample::take(client),
            engine: CpuSample::take(engine),
        }
    }

    /// Prints both processes' CPU since `self`; their % of one core.
    fn report(&self, end: &Split<CpuSample>, hz: u64) -> Split<f64> {
        Split {
            client: self
                .client
                .report(&end.client, hz, "cockpit (the client)", None),
            engine: self
                .engine
                .report(&end.engine, hz, "engine (the server)", Some("the agents")),
        }
    }
}

/// Both processes' resident set now (KiB), printed with their peaks.
fn rss_both(client: u32, engine: u32, with: &str) -> Split<u64> {
    let (c, e) = (rss(client), rss(engine));
    println!(
        "RSS with {with}: cockpit {:.1} MB (peak {:.1} MB), engine {:.1} MB (peak {:.1} MB)",
        c.0 as f64 / 1024.0,
        c.1 as f64 / 1024.0,
        e.0 as f64 / 1024.0,
        e.1 as f64 / 1024.0
    );
    Split {
        client: c.0,
        engine: e.0,
    }
}

struct StreamResult {
    /// p50, p90, p99, max in ms.
    latency: Option<[f64; 4]>,
    cpu: Split<f64>,
    rss: Split<u64>,
    /// `gastown-tui` to the first full frame while the agents flood (ms).
    attach: Vec<f64>,
}

fn streaming_phase(
    tmp: &Path,
    n: usize,
    presses: usize,
    attaches: usize,
    load: &Load,
    hz: u64,
) -> StreamResult {
    println!("== {n} streaming agents ({}) ==", load.script);
    let gt = Gt::setup(&tmp.join("stream"));
    let t = Instant::now();
    let agents = gt.sling_many(n, &load.script);
    println!(
        "setup: {n} beads created and slung in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut c = Cockpit::open(&gt);
    let engine = gt.engine_pid();
    println!(
        "cockpit pid {} open after {:.0} ms (it started the engine, pid {engine})",
        c.pid,
        ms(t.elapsed())
    );
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
    let cpu0 = Split::take(c.pid, engine);
    let mut lat = Vec::with_capacity(presses);
    let mut slack = Vec::with_capacity(presses);
    let mut reads = Vec::new();
    let mut missed = 0usize;
    let mut changes = 0usize;
    let mut bare = 0usize;
    for i in 0..presses {
        std::thread::sleep(Duration::from_millis(50 + ((i * 37) % 51) as u64));
        let key = if (i / sweep) % 2 == 0 { b'j' } else { b'k' };
        match c.press(key, &mut reads) {
            Some(p) => {
                lat.push(p.latency);
                slack.push(p.slack);
                changes += p.reads;
                bare += p.bare;
            }
            None => missed += 1,
        }
    }
    let cpu1 = Split::take(c.pid, engine);
    let bytes1 = dir_bytes(&logs);
    let out1 = c.s.bytes_read();
    let rss = rss_both(c.pid, engine, &format!("{n} streaming agents"));
    let wall = cpu1.client.at.duration_since(cpu0.client.at).as_secs_f64();

    // Still streaming at the end? (the selected agent's pane must still show it)
    let still = load.on(&c.screen());

    println!();
    println!(
        "{presses} presses ({} answered, {missed} missed after {} s), `j` x{sweep} then `k` x{sweep}, \
         50-100 ms apart, over {wall:.1} s",
        lat.len(),
        PRESS_PATIENCE.as_secs()
    );
    let latency = percentiles(&lat);
    if latency.is_some() {
        row_header();
        row("key -> frame showing it (goal p99 < 16)", &lat);
        row("  measuring slack (chunk parsed -> seen)", &slack);
        row("  one screen read (capture + mode check)", &reads);
    }
    println!(
        "screen reads while waiting: {:.1} per press on average ({} in all); each read happens \
         only after the cockpit's output changed our screen",
        changes as f64 / lat.len().max(1) as f64,
        reads.len()
    );
    println!(
        "complete frames naming the new agent over no terminal yet (the header before the \
         screen): {bare}"
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
    let machine = cpu0.client.machine(&cpu1.client);
    println!(
        "whole machine: {machine:.0} % busy ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Leave and come back while they flood.
    let mut attach = Vec::with_capacity(attaches);
    for _ in 0..attaches {
        c.detach();
        std::thread::sleep(Duration::from_millis(300));
        let (next, took) = Cockpit::attach(&gt, n, true);
        attach.push(took);
        c = next;
    }
    println!();
    println!("`q`, then `gastown-tui` again while {n} agents flood, {attaches} times:");
    row_header();
    row("  `gastown-tui` -> first full frame", &attach);
    c.quit();
    StreamResult {
        latency,
        cpu,
        rss,
        attach,
    }
}

struct StartResult {
    /// `gastown-tui` to the first full frame, starting the engine (ms).
    cold: Vec<f64>,
    /// The same, attaching to a running engine (ms).
    warm: Vec<f64>,
    /// `q` to the terminal given back (ms).
    detach: Vec<f64>,
}

fn startup_phase(tmp: &Path, n: usize, cold_rounds: usize, warm_rounds: usize) -> StartResult {
    println!("== start-up, {n} agents (sim: stall) ==");
    let gt = Gt::setup(&tmp.join("start"));
    let t = Instant::now();
    let agents = gt.sling_many(n, "sim: stall");
    println!(
        "setup: {n} beads created and slung in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let logs = gt.town.join("logs");
    let mut cold = Vec::with_capacity(cold_rounds);
    let mut warm = Vec::with_capacity(warm_rounds);
    let mut detach = Vec::with_capacity(warm_rounds);
    for round in 0..cold_rounds {
        assert!(gt.engine().is_none(), "an engine runs before a cold start");
        // The agents' sessions start meanwhile: the first frame may say one has none yet.
        let (mut c, took) = Cockpit::attach(&gt, n, false);
        cold.push(took);
        // Every agent started and gone quiet before the next measurement.
        let runs = round + 1;
        wait_until("every agent stalled", || {
            agents
                .iter()
                .all(|a| cast_text(&logs.join(a)).matches("Thinking").count() >= runs)
        });
        std::thread::sleep(Duration::from_secs(1));
        if round + 1 == cold_rounds {
            for _ in 0..warm_rounds {
                if let Some(d) = c.detach() {
                    detach.push(d);
                }
                std::thread::sleep(Duration::from_millis(300));
                let (next, took) = Cockpit::attach(&gt, n, true);
                warm.push(took);
                c = next;
            }
        }
        c.quit();
    }
    println!();
    println!("`gastown-tui` to its first full frame (`Agents {n}` listed, a terminal header):");
    row_header();
    row("  cold: no engine, the cockpit starts it", &cold);
    row("  attach: the engine runs, agents quiet", &warm);
    row("  `q` -> terminal back, \"Detached from\" shown", &detach);
    StartResult { cold, warm, detach }
}

struct IdleResult {
    cpu: Split<f64>,
    rss: Split<u64>,
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
    let engine = gt.engine_pid();
    println!(
        "cockpit pid {} open after {:.0} ms (engine pid {engine})",
        c.pid,
        ms(t.elapsed())
    );
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
    let cpu0 = Split::take(c.pid, engine);
    std::thread::sleep(Duration::from_secs(secs));
    let cpu1 = Split::take(c.pid, engine);
    let out1 = c.s.bytes_read();
    let wall = cpu1.client.at.duration_since(cpu0.client.at).as_secs_f64();
    println!();
    println!("nothing typed for {wall:.1} s:");
    let cpu = cpu0.report(&cpu1, hz);
    println!(
        "whole machine: {:.0} % busy",
        cpu0.client.machine(&cpu1.client)
    );
    println!(
        "the cockpit wrote {} bytes to its terminal meanwhile ({:.0} B/s)",
        out1.saturating_sub(out0),
        out1.saturating_sub(out0) as f64 / wall
    );
    let rss = rss_both(c.pid, engine, &format!("{n} idle agents"));
    c.quit();
    IdleResult { cpu, rss }
}

// ---------------------------------------------------------------------------------------------
// The cockpit in our PTY.

struct Press {
    latency: f64,
    slack: f64,
    reads: usize,
    /// Complete frames before it naming the new agent over no terminal yet.
    bare: usize,
}

struct Cockpit {
    pty: Pty,
    pid: u32,
}

impl std::ops::Deref for Cockpit {
    type Target = Pty;
    fn deref(&self) -> &Pty {
        &self.pty
    }
}

impl Cockpit {
    /// Starts `gastown-tui --town DIR` in our PTY (at once; nothing waited for).
    fn spawn(gt: &Gt) -> Cockpit {
        let pty = Pty::spawn(BIN, &gt.home, &gt.town, (ROWS, COLS), Some(0), &[]);
        let pid = pty.s.pid().expect("the cockpit's pid");
        terminal_priority(pid);
        Cockpit { pty, pid }
    }

    /// The cockpit, once it shows its panels.
    fn open(gt: &Gt) -> Cockpit {
        let c = Cockpit::spawn(gt);
        c.wait("the cockpit", |s| {
            s.contains("Agents") && s.contains("? help")
        });
        c
    }

    /// `gastown-tui` typed: the cockpit, and the time (ms) from its start to the first complete
    /// frame that lists `n` agents and names one in the terminal's header (and, when `shown`,
    /// shows that agent's terminal rather than the words for an agent with no session).
    fn attach(gt: &Gt, n: usize, shown: bool) -> (Cockpit, f64) {
        let t0 = Instant::now();
        let c = Cockpit::spawn(gt);
        let want = format!("Agents {n} ");
        let deadline = t0 + PATIENCE;
        let mut seen = 0;
        loop {
            let (count, _) = c.parsed.wait_past(seen, Duration::from_millis(5));
            if count != seen {
                seen = count;
                let (text, complete) = c.frame();
                let end = Instant::now();
                let listed = text.lines().next().is_some_and(|l| l.contains(&want));
                let terminal = !shown || shows_terminal(&text);
                if complete && listed && header(&text).is_some() && terminal {
                    return (c, ms(end - t0));
                }
            }
            if let Some(exit) = c.s.exit_status() {
                panic!(
                    "the cockpit exited ({exit}) before its first frame:\n{}",
                    c.screen()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no first frame listing {n} agents; the screen:\n{}",
                c.screen()
            );
        }
    }

    /// `q`: the cockpit detaches (its engine and agents stay); the time (ms) until the terminal
    /// is given back with the words saying so (the alternate screen left, `Detached from`
    /// shown), then its exit is waited for.
    fn detach(&self) -> Option<f64> {
        let t0 = Instant::now();
        let mut seen = self.parsed.now();
        self.s.write(b"q").expect("type into the cockpit");
        let deadline = t0 + Duration::from_secs(10);
        let mut took = None;
        while took.is_none() && Instant::now() < deadline {
            let (count, _) = self.parsed.wait_past(seen, Duration::from_millis(5));
            if count != seen {
                seen = count;
                let back = !self.s.with_screen(|sc| sc.alternate_screen());
                if back && self.screen().contains("Detached from") {
                    took = Some(ms(t0.elapsed()));
                }
            }
        }
        if took.is_none() {
            println!("`q`: the cockpit did not say it detached in 10 s");
        }
        if self.s.wait_timeout(Duration::from_secs(10)).is_none() {
            println!("`q`: the cockpit did not exit in 10 s; killing it");
            let _ = self.s.kill();
            let _ = self.s.wait_timeout(Duration::from_secs(5));
        }
        took
    }

    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) {
        self.pty.wait(what, PATIENCE, ok);
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
        let mut seen = self.parsed.now();
        let t0 = Instant::now();
        self.s.write(&[key]).expect("type into the cockpit");
        let deadline = t0 + PRESS_PATIENCE;
        let mut n = 0;
        let mut bare = 0;
        loop {
            let (count, latest) = self.parsed.wait_past(seen, Duration::from_millis(1));
            if count != seen {
                seen = count;
                let start = Instant::now();
                let (text, complete) = self.frame();
                let end = Instant::now();
                reads.push(ms(end - start));
                n += 1;
                if complete && header(&text).is_some_and(|h| h != before) {
                    if !shows_terminal(&text) {
                        // The new agent's header over no terminal: counted, not the answer.
                        bare += 1;
                        continue;
                    }
                    return Some(Press {
                        latency: ms(end - t0),
                        slack: latest.map_or(0.0, |l| ms(end.saturating_duration_since(l))),
                        reads: n,
                        bare,
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
/// normal priority, so put it back to nice 0 as soon as the thread exists (needs root or
/// `RLIMIT_NICE`; said once if it fails).
fn terminal_priority(pid: u32) {
    static SAID: std::sync::Once = std::sync::Once::new();
    let name: String = format!("pty-read-{pid}").chars().take(15).collect();
    let deadline = Instant::now() + Duration::from_secs(1);
    let tid = loop {
        let found = std::fs::read_dir("/proc/self/task").ok().and_then(|tasks| {
            tasks.flatten().find_map(|t| {
                let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                (comm.trim() == name)
                    .then(|| t.file_name().to_string_lossy().parse::<libc::id_t>().ok())
                    .flatten()
            })
        });
        // The thread names itself, then lowers its own priority: wait for both.
        if let Some(tid) = found {
            // SAFETY: getpriority only reads a thread's nice value.
            let nice = unsafe {
                *libc::__errno_location() = 0;
                libc::getpriority(libc::PRIO_PROCESS, tid)
            };
            if nice > 0 {
                break Some(tid);
            }
        }
        if Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let Some(tid) = tid else {
        SAID.call_once(|| {
            println!("our terminal's reader thread ({name}) not found: its priority is as it was")
        });
        return;
    };
    // SAFETY: setpriority on one of our own threads only changes its nice value.
    let ok = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 0) } == 0;
    SAID.call_once(|| {
        println!(
            "our terminal's reader thread: nice 10 -> {}",
            if ok {
                "0"
            } else {
                "10 (could not renice: latencies include its lower priority)"
            }
        )
    });
}

/// The terminal pane shows the selected agent's screen, not the words for a missing one.
fn shows_terminal(screen: &str) -> bool {
    !screen.contains("has no running session")
}

/// The agent named in the terminal's header: the top border right of the agents list,
/// `┌ Agents 50 ───┬ NAME · polecat · rig demo · ... ┐`.
fn header(screen: &str) -> Option<String> {
    let top = screen.lines().next()?;
    let (_, rest) = top.split_once('┬')?;
    let name = rest.trim_start().split([' ', '·']).next()?;
    (!name.is_empty() && !name.starts_with('─')).then(|| name.to_string())
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
    /// The process's ticks.
    ticks: u64,
    /// By thread id: name group, ns on a CPU, ns waiting for one.
    threads: BTreeMap<u32, (String, u64, u64)>,
    children: BTreeMap<u32, u64>,
    busy: u64,
    total: u64,
}

impl CpuSample {
    fn take(pid: u32) -> CpuSample {
        let ticks = proc_stat(&PathBuf::from(format!("/proc/{pid}/stat"))).map_or(0, |(_, _, t)| t);
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
            ticks,
            threads,
            children,
            busy,
            total,
        }
    }

    /// Prints the CPU the process (`what`) used between `self` and `end`, by thread name, and
    /// its children's when they are `children` (the cockpit's only child is the engine it
    /// started, counted on its own); returns the process's, as % of one core.
    fn report(&self, end: &CpuSample, hz: u64, what: &str, children: Option<&str>) -> f64 {
        let wall = end.at.duration_since(self.at).as_secs_f64();
        let pc = |ticks: u64| ticks as f64 / hz as f64 / wall * 100.0;
        let process = pc(end.ticks.saturating_sub(self.ticks));
        println!("{what}: {process:.2} % of one core over {wall:.1} s");
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
        if process - listed > 0.05 {
            println!(
                "    {:<18} {:>5} {:>7.2} %",
                "(ended meanwhile)",
                "",
                process - listed
            );
        }
        if let Some(who) = children.filter(|_| !end.children.is_empty()) {
            let ticks: u64 = end
                .children
                .iter()
                .map(|(pid, t)| t.saturating_sub(self.children.get(pid).copied().unwrap_or(0)))
                .sum();
            println!(
                "    its {} child processes ({who}): {:.1} % of one core",
                end.children.len(),
                pc(ticks)
            );
        }
        process
    }

    /// The whole machine's busy time between `self` and `end`, in %.
    fn machine(&self, end: &CpuSample) -> f64 {
        let total = end.total.saturating_sub(self.total).max(1);
        end.busy.saturating_sub(self.busy) as f64 / total as f64 * 100.0
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

/// p50, p90, p99 and max of `v` (none when empty).
fn percentiles(v: &[f64]) -> Option<[f64; 4]> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let max = *s.last()?;
    Some([pct(&s, 50), pct(&s, 90), pct(&s, 99), max])
}

fn row_header() {
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "ms", "p50", "p90", "p99", "max", "min", "mean"
    );
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
