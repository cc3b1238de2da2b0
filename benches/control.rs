//! The control plane as whole processes (goal: each under 300 ms).
//!
//! Not a criterion benchmark: it prints figures, it asserts nothing about time.
//!
//! Setup (untimed): a temp town (`gastown-tui init`), a source git repo with `test.sh`
//! (`test ! -e BROKEN`) added as rig `demo` with `--test-command ./test.sh`, and
//! `gastown-tui up --headless` as a child process, ready once `nudge nobody x` stops saying
//! "no engine is running".
//!
//! Then, for ROUNDS rounds (each slings to a new polecat: furiosa, nux, slit, ...; the
//! stalled polecats stay alive, so round N runs with N-1 idle sims in the engine):
//! - a bead with the description `sim: stall` (the sim works up to the stall, then stays
//!   alive and quiet);
//! - **sling to first output**: from just before `gastown-tui sling BEAD demo --runtime sim`
//!   starts until the polecat's recording `logs/<agent>/*.cast` holds its first output event
//!   (`[t, "o", ...]`; line 1 is the header), polled every 1 ms. Also shown: how long the
//!   `sling` process itself took, and the rest (engine notices the hook, spawns, first bytes);
//! - (untimed) wait for the sim to reach its stall (`Thinking…` in the recording);
//! - **nudge to bytes in the PTY**: from just before `gastown-tui nudge <agent> ping-<n>`
//!   starts until `ping-<n>` is in the recording (the PTY echoes typed input), polled every
//!   1 ms. The nudge process is not waited for first: it returns only after the engine's
//!   Enter (sent `ENTER_DELAY` = 80 ms after the text, on the next tick) is out, which is
//!   shown separately as "nudge process exits".
//!
//! The sling path includes one wait for the engine's next tick (`engine::TICK` = 100 ms: 0-100
//! ms, 50 ms on average): a new hook is only seen when the engine looks at the store. A nudge
//! goes to the engine over its socket and is typed at once.
//!
//! ```text
//! cargo bench --bench control
//! GT_BENCH_ROUNDS=5 cargo bench --bench control    # shorter
//! ```

mod common;

use common::{json_field, machine, ms, pct, Gt, Run, BIN};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Give up on any one wait after this long.
const PATIENCE: Duration = Duration::from_secs(30);

fn main() {
    let rounds = std::env::var("GT_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(20);
    let tmp = tempfile::Builder::new()
        .prefix("gt-bench-control-")
        .tempdir()
        .expect("temp dir");
    println!("== machine ==");
    println!("{}", machine());
    println!("binary: {BIN}");
    println!();

    let gt = Gt::setup(tmp.path());
    let town = gt.town.clone();

    let t = Instant::now();
    let engine = Engine(
        gt.cmd(true)
            .args(["up", "--headless"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start up --headless"),
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let out = gt.cmd(true).args(["nudge", "nobody", "x"]).out();
        if !String::from_utf8_lossy(&out.stderr).contains("no engine is running") {
            break;
        }
        assert!(Instant::now() < deadline, "the engine did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "engine pid {} answering after {:.0} ms",
        engine.0.id(),
        ms(t.elapsed())
    );

    let mut sling_first = Vec::new();
    let mut sling_proc = Vec::new();
    let mut nudge_bytes = Vec::new();
    let mut nudge_proc = Vec::new();
    println!(
        "{:>5} {:<10} {:>22} {:>14} {:>22} {:>20}",
        "round",
        "agent",
        "sling->first output",
        "(sling proc)",
        "nudge->bytes in PTY",
        "(nudge proc exits)"
    );
    for n in 1..=rounds {
        let out = gt
            .cmd(true)
            .args(["bead", "create", &format!("Bench round {n}")])
            .args(["-d", "sim: stall", "--json"])
            .ok("bead create");
        let bead = json_field(&out.stdout, "id");

        // Each round starts at a different point of the engine's 50 ms tick (otherwise the
        // rounds lock onto one phase of it and show one tick wait over and over).
        std::thread::sleep(jitter(n, 0));
        let t0 = Instant::now();
        let out = gt
            .cmd(true)
            .args(["sling", &bead, "demo", "--runtime", "sim", "--json"])
            .ok("sling");
        let sling_done = t0.elapsed();
        let agent = json_field(&out.stdout, "agent");
        let logs = town.join("logs").join(&agent);
        wait_cast(&logs, &format!("{agent}'s first output"), |cast| {
            cast.lines()
                .skip(1)
                .any(|l| l.starts_with('[') && l.contains(", \"o\", "))
        });
        let first = t0.elapsed();

        // Let the sim get its first prompt, work up to the stall and go quiet.
        wait_cast(&logs, &format!("{agent} to stall"), |cast| {
            cast.contains("Thinking")
        });
        std::thread::sleep(Duration::from_millis(100) + jitter(n, 1));

        let ping = format!("ping-{n}");
        let t1 = Instant::now();
        let mut nudge = gt
            .cmd(true)
            .args(["nudge", &agent, &ping])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nudge");
        wait_cast(&logs, &format!("{ping} in {agent}'s PTY"), |cast| {
            cast.contains(&ping)
        });
        let arrived = t1.elapsed();
        let status = nudge.wait().expect("wait for nudge");
        let nudge_exit = t1.elapsed();
        if !status.success() {
            let mut err = String::new();
            if let Some(mut e) = nudge.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("nudge {agent} failed: {err}");
        }

        println!(
            "{:>5} {:<10} {:>19.1} ms {:>11.1} ms {:>19.1} ms {:>17.1} ms",
            n,
            agent,
            ms(first),
            ms(sling_done),
            ms(arrived),
            ms(nudge_exit)
        );
        sling_first.push(ms(first));
        sling_proc.push(ms(sling_done));
        nudge_bytes.push(ms(arrived));
        nudge_proc.push(ms(nudge_exit));
    }

    let rest: Vec<f64> = sling_first
        .iter()
        .zip(&sling_proc)
        .map(|(a, b)| a - b)
        .collect();
    println!();
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>8}",
        "ms, over all rounds", "p50", "p90", "max", "min"
    );
    for (name, v) in [
        ("sling -> first output (goal < 300)", &sling_first),
        ("  of which: the sling process", &sling_proc),
        ("  of which: engine notices, spawns, prints", &rest),
        ("nudge -> bytes in the PTY (goal < 300)", &nudge_bytes),
        ("nudge process exits (incl. 80 ms Enter)", &nudge_proc),
    ] {
        let mut s = v.clone();
        s.sort_by(f64::total_cmp);
        println!(
            "{:<44} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            name,
            pct(&s, 50),
            pct(&s, 90),
            s[s.len() - 1],
            s[0]
        );
    }
    println!(
        "({rounds} rounds; engine tick {} ms: the sling path includes one wait for it; \
         a nudge goes over the engine's socket and is typed at once; its Enter goes 80 ms after \
         the text, on a tick, and is not part of 'bytes in the PTY')",
        gastown_tui::engine::TICK.as_millis()
    );

    let t = Instant::now();
    let status = engine.stop();
    println!(
        "engine stopped by SIGTERM ({status}) in {:.0} ms",
        ms(t.elapsed())
    );
    println!("== end: {}", machine());
}

/// A delay of 0-99 ms that spreads the rounds over the engine's tick (deterministic).
fn jitter(round: usize, salt: usize) -> Duration {
    let ms = (round * 37 + salt * 19) % 100;
    Duration::from_millis(ms as u64)
}

/// Polls (every 1 ms) the recordings in `dir` until one satisfies `ok`.
fn wait_cast(dir: &Path, what: &str, ok: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    let mut text = String::new();
    loop {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "cast") {
                    text.clear();
                    if let Ok(mut f) = std::fs::File::open(&p) {
                        let _ = f.read_to_string(&mut text);
                        if ok(&text) {
                            return;
                        }
                    }
                }
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The engine process; SIGTERM on `stop`, SIGKILL if dropped while still running (a panic).
struct Engine(Child);

impl Engine {
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(s)) = self.0.try_wait() {
                return s.to_string();
            }
            if Instant::now() >= deadline {
                return "did not stop in 30 s".into();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
