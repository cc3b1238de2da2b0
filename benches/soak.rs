//! The soak: many simulated agents under the patrols and the Refinery for minutes, with the
//! engine killed -9 and restarted again and again, then the reliability invariants (no bead
//! lost, none held twice, every position of main green, no unmerged commit deleted, memory
//! bounded).
//!
//! Not a criterion benchmark: it prints a timeline, throughput and memory figures, and a
//! PASS/FAIL table; it panics (non-zero exit) when an invariant fails, with the evidence.
//!
//! Setup: a temp town (`gastown-tui init`) with `max_polecats = GT_SOAK_AGENTS`, a source git
//! repo whose executable `test.sh` is `test ! -e BROKEN`, added as rig `demo` with
//! `--test-command ./test.sh`, the `sim` runtime as the default, and a `[patrol]` section on a
//! short leash (gupp_idle_after 2s, witness_every 500ms, stall_after 10s, deacon_every 1s,
//! reap_after 30s, max_restarts 3). The binary is copied into the temp dir first, so a rebuild
//! of `target/` by someone else during the run changes nothing here.
//!
//! Work: beads with a deterministic mix of `sim:` scripts (bead n): mostly an edit of a file of
//! its own (`work/fNNNNN.txt`); `sim: flood 5` before the edit (n % 50 in 7, 24, 41);
//! `sim: crash` then the edit (n % 10 == 3); the edit then `sim: break-tests` (n % 25 == 11:
//! the Refinery rejects it, the sim fixes it on its second try); `sim: conflict shared.txt`
//! (n % 25 == 19: concurrent ones conflict and come back as "Resolve merge conflict" beads);
//! `sim: sleep 1..4` mixed into every third. All go into one convoy created with
//! `--auto-dispatch demo`, so the Deacon keeps up to GT_SOAK_AGENTS polecats busy: four beads
//! per agent to start with, then every 30 s a batch that tops the convoy's unfinished beads up
//! to four per agent again (at least half an agent's worth), so the work never runs dry.
//!
//! Chaos: `gastown-tui --town DIR up --headless` runs as a child; every 40-70 s (deterministic
//! jitter) it is killed with SIGKILL and a new one is started.
//!
//! Observation: every 5 s the engine's RSS (`/proc/PID/status` VmRSS), the live sim-agent
//! processes (and whether two share a worktree), `agents --json` (two agents on one bead?),
//! beads by status and merge requests by state; every second, with git2, the rig's `main` and
//! every `polecat/*` branch tip.
//!
//! At the end the engine gets SIGTERM, leftover processes of the temp town are killed by pid,
//! and the invariants are checked:
//! 1. no bead lost: every bead created (and every resolve bead the Refinery made) is listed by
//!    `bead list --limit 0 --json`;
//! 2. no bead double-claimed: no sample shows two agents hooked to one bead, no sample shows
//!    two sim sessions in one worktree, and replaying the feed's `hooked`/`claimed`/`unhooked`
//!    events never gives a bead a second holder;
//! 3. no red merge: every merged request's tip (`merged as <sha>`) and every position `main`
//!    took (its reflog and the 1 s samples) passes `test.sh` in a fresh checkout, and `main`
//!    only moved forward (each position a descendant of the one before) to tips that a merged
//!    request reports (a move whose request is still `testing` is noted, not failed);
//! 4. no unmerged commit deleted: every polecat branch tip ever seen is still held by its
//!    branch, by `main` or by a tip the Refinery merged from that branch (by ancestry, or by
//!    content after the Refinery's rebase), or lies under a later tip that is; and every
//!    `worktree_removed` event is for a polecat whose deleted branch was contained in `main`
//!    when it went (within the 1 s sampling);
//! 5. memory bounded: the engine's RSS after the first minute stays within twice the first
//!    minute's maximum.
//!
//! Also reported (not failed): merge requests whose branch is not `polecat/<agent>/<bead>`,
//! beads left in progress with their requests, samples where ready work waited while no
//! polecat was hooked, and agents with work on their hook but no session.
//!
//! ```text
//! cargo bench --bench soak
//! GT_SOAK_SECS=60 GT_SOAK_AGENTS=10 cargo bench --bench soak     # shorter, smaller
//! GT_SOAK_KEEP=1 cargo bench --bench soak                        # keep the temp town
//! ```

mod common;

use common::kit::MustRun;
use common::{machine, source_repo};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_gastown-tui");
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const GIT_EVERY: Duration = Duration::from_secs(1);
const BATCH_EVERY: Duration = Duration::from_secs(30);
/// How long an engine may take to answer after it starts.
const PATIENCE: Duration = Duration::from_secs(60);
/// An agent with work on its hook and no session this long after an engine start is noted.
const RELAUNCH_GRACE: f64 = 15.0;

fn main() {
    let secs = env_num("GT_SOAK_SECS", 240);
    let agents = env_num("GT_SOAK_AGENTS", 50).max(1) as usize;
    let keep = std::env::var_os("GT_SOAK_KEEP").is_some();
    let tmp = tempfile::Builder::new()
        .prefix("gt-bench-soak-")
        .tempdir()
        .expect("temp dir");
    let root = tmp.path().to_path_buf();
    println!("== machine ==");
    println!("{}", machine());
    println!(
        "soak: {secs} s, {agents} agents, temp town under {}",
        root.display()
    );

    // A copy of the binary: the engine, the sims and the CLI all run this one.
    let bin_dir = root.join("bin");
    std::fs::create_dir_all(&bin_dir).expect("bin dir");
    let bin = bin_dir.join("gastown-tui");
    std::fs::copy(BIN, &bin).expect("copy the binary");
    let gt = Gt {
        bin: bin.clone(),
        home: root.clone(),
        town: root.join("town"),
    };
    setup_town(&gt, agents);

    let shared = Shared {
        start: Instant::now(),
        start_unix: unix_now(),
        stop: AtomicBool::new(false),
        engine_pid: AtomicU32::new(0),
        engine_gen: AtomicUsize::new(0),
        engine_started: Mutex::new(0.0),
        log: Mutex::new(Log::default()),
    };
    let convoy = first_batch(&gt, &shared, agents);
    println!("convoy {convoy}: {} beads to start with", 4 * agents);
    println!();

    // Where main starts (before any engine runs).
    git_sample(&gt, &shared);
    let deadline = shared.start + Duration::from_secs(secs);
    let mut chaos = Chaos::default();
    let mut engine = start_engine(&gt, &shared, &mut chaos);
    println!(
        "{:>6} {:>3} {:>8} {:>5} {:>7} {:<44} merge requests by state",
        "t(s)", "gen", "RSS MiB", "sims", "hooked", "beads by status"
    );
    std::thread::scope(|s| {
        s.spawn(|| sampler(&gt, &shared));
        s.spawn(|| git_sampler(&gt, &shared));
        s.spawn(|| feeder(&gt, &shared, &convoy, agents));
        let mut next_kill = Instant::now() + kill_after(1);
        while Instant::now() < deadline {
            if Instant::now() >= next_kill
                && deadline.saturating_duration_since(next_kill) > Duration::from_secs(10)
            {
                chaos.kills += 1;
                let pid = engine.id();
                shared.engine_pid.store(0, Ordering::SeqCst);
                let _ = engine.kill();
                let _ = engine.wait();
                let t = shared.t();
                // The sims lose their terminal with the engine: who is still running a second later?
                std::thread::sleep(Duration::from_secs(1));
                let survivors = sim_procs(&root).len();
                println!("{t:>6.1} kill -9 of engine pid {pid} (#{}); {survivors} sim agents still running 1 s later", chaos.kills);
                chaos.survivors.push(survivors);
                engine = start_engine(&gt, &shared, &mut chaos);
                next_kill = Instant::now() + kill_after(chaos.kills + 1);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        shared.stop.store(true, Ordering::SeqCst);
    });

    // Stop: SIGTERM, then whatever of the town is still running is killed by pid.
    let t_stop = Instant::now();
    let pid = engine.id();
    shared.engine_pid.store(0, Ordering::SeqCst);
    // SAFETY: kill(2) on our own child's pid with a valid signal has no memory effects.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    let stop_status = wait_child(&mut engine, PATIENCE);
    println!(
        "{:>6.1} engine pid {pid} stopped by SIGTERM: {stop_status} in {:.1} s",
        shared.t(),
        t_stop.elapsed().as_secs_f64()
    );
    let leftovers = kill_leftovers(&root);
    println!("leftover processes of the temp town killed by pid: {leftovers:?}");
    if !leftovers.is_empty() {
        std::thread::sleep(Duration::from_millis(500));
    }
    // A last look at git, now that nothing moves.
    git_sample(&gt, &shared);

    let failed = report(&gt, &shared, &chaos, secs);
    let left = sim_procs(&root);
    println!(
        "sim agents of the temp town still running at the end: {}",
        left.len()
    );
    println!("== end: {}", machine());
    if failed.is_empty() {
        if keep {
            println!("kept the temp town: {}", tmp.keep().display());
        }
        println!("soak: every invariant holds");
    } else {
        let kept = tmp.keep();
        panic!(
            "soak: invariant(s) failed: {} (the town is kept at {})",
            failed.join(", "),
            kept.display()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Setup and the work.

fn setup_town(gt: &Gt, agents: usize) {
    gt.plain().arg("init").arg(&gt.town).ok("init");
    let cfg = gt.town.join("town.toml");
    let text = std::fs::read_to_string(&cfg).expect("town.toml");
    std::fs::write(&cfg, format!("max_polecats = {agents}\n{text}")).expect("town.toml");
    let src = gt.home.join("src");
    source_repo(&src);
    gt.cmd()
        .args(["rig", "add", "demo"])
        .arg(&src)
        .args(["--test-command", "./test.sh"])
        .ok("rig add");
    let mut text = std::fs::read_to_string(&cfg).expect("town.toml");
    text.push_str(
        "\n[patrol]\ngupp_idle_after = \"2s\"\nwitness_every = \"500ms\"\nstall_after = \"10s\"\n\
         deacon_every = \"1s\"\nreap_after = \"30s\"\nmax_restarts = 3\n",
    );
    std::fs::write(&cfg, text).expect("town.toml");
    gt.cmd()
        .args(["config", "default-runtime", "sim"])
        .ok("config default-runtime sim");
}

/// Bead `n`'s kind and `sim:` script.
fn script(n: usize) -> (&'static str, String) {
    let file = format!("work/f{n:05}.txt");
    let sleep = if n % 3 == 0 {
        format!("sim: sleep {}\n", 1 + n % 4)
    } else {
        String::new()
    };
    if n % 25 == 19 {
        ("conflict", format!("sim: conflict shared.txt\n{sleep}"))
    } else if n % 25 == 11 {
        (
            "break-tests",
            format!("{sleep}sim: edit {file}\nsim: break-tests"),
        )
    } else if matches!(n % 50, 7 | 24 | 41) {
        ("flood", format!("{sleep}sim: flood 5\nsim: edit {file}"))
    } else if n % 10 == 3 {
        ("crash", format!("sim: crash\n{sleep}sim: edit {file}"))
    } else {
        ("edit", format!("{sleep}sim: edit {file}"))
    }
}

/// Creates beads `from..to`; returns their ids (failures are logged, not fatal).
fn create_beads(gt: &Gt, shared: &Shared, from: usize, to: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in from..to {
        let (kind, desc) = script(n);
        let title = format!("Soak {n}: {kind}");
        match gt.json(&["bead", "create", &title, "-d", &desc]) {
            Ok(v) => {
                let id = v["id"].as_str().unwrap_or_default().to_string();
                shared.lock().created.push((id.clone(), kind));
                ids.push(id);
            }
            Err(e) => shared.problem(format!("bead create {n}: {e}")),
        }
    }
    ids
}

fn first_batch(gt: &Gt, shared: &Shared, agents: usize) -> String {
    let ids = create_beads(gt, shared, 0, 4 * agents);
    let mut args = vec!["convoy", "create", "Soak"];
    args.extend(ids.iter().map(String::as_str));
    args.extend(["--auto-dispatch", "demo"]);
    let v = gt.json(&args).expect("convoy create");
    v["id"].as_str().expect("convoy id").to_string()
}

/// A batch of `agents` beads into the convoy every 30 s.
fn feeder(gt: &Gt, shared: &Shared, convoy: &str, agents: usize) {
    let mut next = Instant::now() + BATCH_EVERY;
    let mut n = 4 * agents;
    while !shared.stopping() {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        next += BATCH_EVERY;
        let shown = gt.json(&["convoy", "show", convoy]);
        let status = shown
            .as_ref()
            .map(|v| v["status"].as_str().unwrap_or("?").to_string())
            .unwrap_or_else(|e| e.clone());
        if status == "closed" {
            shared.problem(format!(
                "{:.0} s: the convoy ran dry (closed) before the next batch",
                shared.t()
            ));
        }
        // Top the convoy's unfinished work up to four beads per agent (at least half an
        // agent's worth each time), so the polecats never run out.
        let unfinished = shown
            .ok()
            .and_then(|v| Some(v["total"].as_u64()? - v["closed"].as_u64()?))
            .unwrap_or(0) as usize;
        let size = (4 * agents)
            .saturating_sub(unfinished)
            .max(agents.div_ceil(2));
        let ids = create_beads(gt, shared, n, n + size);
        n += size;
        let mut args = vec!["convoy", "add", convoy];
        args.extend(ids.iter().map(String::as_str));
        if let Err(e) = gt.json(&args) {
            shared.problem(format!("convoy add: {e}"));
        }
        println!(
            "{:>6.1} batch: {} beads more ({unfinished} unfinished, convoy was {status})",
            shared.t(),
            ids.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The engine and the chaos.

#[derive(Default)]
struct Chaos {
    kills: usize,
    /// Sim agents still running one second after each kill -9.
    survivors: Vec<usize>,
    /// How long each engine took to answer.
    answer: Vec<f64>,
}

/// 40-70 s, deterministic.
fn kill_after(k: usize) -> Duration {
    Duration::from_secs(40 + ((k * 23 + 7) % 31) as u64)
}

fn start_engine(gt: &Gt, shared: &Shared, chaos: &mut Chaos) -> Child {
    let t0 = Instant::now();
    let mut child = gt
        .cmd()
        .args(["up", "--headless"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start up --headless");
    let gen = shared.engine_gen.fetch_add(1, Ordering::SeqCst) + 1;
    *shared.engine_started.lock().unwrap() = shared.t();
    shared.engine_pid.store(child.id(), Ordering::SeqCst);
    // Ready when a request gets an answer from it.
    let deadline = t0 + PATIENCE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("the engine exited at once ({status}): {err}");
        }
        let probe = run_timeout(
            gt.cmd().args(["nudge", "nobody", "x"]),
            Duration::from_secs(10),
        );
        if probe
            .is_some_and(|o| !String::from_utf8_lossy(&o.stderr).contains("no engine is running"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the engine did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its stderr is not read from here on: a thread drains it so it never blocks.
    if let Some(mut e) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = e.read_to_end(&mut sink);
        });
    }
    let took = t0.elapsed().as_secs_f64();
    chaos.answer.push(took);
    println!(
        "{:>6.1} engine #{gen} pid {} answering after {:.0} ms",
        shared.t(),
        child.id(),
        took * 1000.0
    );
    child
}

fn wait_child(child: &mut Child, patience: Duration) -> String {
    let deadline = Instant::now() + patience;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return s.to_string();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return format!("did not stop in {} s, killed", patience.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// Observation.

struct Shared {
    start: Instant,
    start_unix: f64,
    stop: AtomicBool,
    engine_pid: AtomicU32,
    engine_gen: AtomicUsize,
    /// When the current engine started (seconds into the run).
    engine_started: Mutex<f64>,
    log: Mutex<Log>,
}

impl Shared {
    fn t(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn problem(&self, p: String) {
        println!("  ! {p}");
        self.lock().problems.push(p);
    }
}

#[derive(Default)]
struct Log {
    created: Vec<(String, &'static str)>,
    samples: Vec<Sample>,
    problems: Vec<String>,
    /// Samples where two agents had the same bead on their hook.
    double_hooks: Vec<String>,
    /// Samples where two sim sessions ran in one worktree.
    double_sessions: Vec<String>,
    /// Agents with work on their hook and no session, well after an engine start.
    unattended: Vec<String>,
    git: GitTrack,
}

struct Sample {
    t: f64,
    gen: usize,
    rss_kb: Option<u64>,
    sims: usize,
    hooked: usize,
    beads: BTreeMap<String, usize>,
    mrs: BTreeMap<String, usize>,
}

#[derive(Default)]
struct GitTrack {
    /// Every position main was seen at, in order, with when.
    main: Vec<(f64, git2::Oid)>,
    /// Every tip each polecat branch was seen at (distinct, in order), and when last seen.
    branches: BTreeMap<String, (Vec<git2::Oid>, f64)>,
    /// Branches that disappeared: when first seen gone, and main at that sample.
    gone: BTreeMap<String, (f64, git2::Oid)>,
    samples: usize,
}

fn sampler(gt: &Gt, shared: &Shared) {
    let root = gt.home.clone();
    let mut next = Instant::now();
    while !shared.stopping() {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        next += SAMPLE_EVERY;
        let t = shared.t();
        let gen = shared.engine_gen.load(Ordering::SeqCst);
        let pid = shared.engine_pid.load(Ordering::SeqCst);
        let rss = (pid != 0).then(|| rss_kb(pid)).flatten();
        let sims = sim_procs(&root);
        let mut by_cwd: BTreeMap<PathBuf, Vec<i32>> = BTreeMap::new();
        for p in &sims {
            by_cwd
                .entry(p.cwd.clone().unwrap_or_default())
                .or_default()
                .push(p.pid);
        }
        let doubles: Vec<String> = by_cwd
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(d, v)| format!("{} sims {v:?} in {}", v.len(), d.display()))
            .collect();
        let mut hooked = 0;
        let mut double_hooks = Vec::new();
        let mut unattended = Vec::new();
        match gt.json(&["agents"]) {
            Ok(v) => {
                let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for a in v.as_array().into_iter().flatten() {
                    let name = a["name"].as_str().unwrap_or("?").to_string();
                    if let Some(b) = a["hooked_bead"].as_str() {
                        hooked += 1;
                        holders.entry(b.to_string()).or_default().push(name.clone());
                        let since_start = t - *shared.engine_started.lock().unwrap();
                        if a["pid"].is_null()
                            && a["state"] != "dead"
                            && since_start > RELAUNCH_GRACE
                        {
                            unattended.push(format!("{name} ({b}, {})", a["state"]));
                        }
                    }
                }
                for (b, names) in holders {
                    if names.len() > 1 {
                        double_hooks.push(format!("{b} on {names:?}"));
                    }
                }
            }
            Err(e) => shared.problem(format!("{t:.0} s: agents: {e}")),
        }
        let beads = match gt.json(&["bead", "list", "--limit", "0"]) {
            Ok(v) => count_by(&v, "status"),
            Err(e) => {
                shared.problem(format!("{t:.0} s: bead list: {e}"));
                BTreeMap::new()
            }
        };
        let mrs = match gt.json(&["mq"]) {
            Ok(v) => count_by(&v, "state"),
            Err(e) => {
                shared.problem(format!("{t:.0} s: mq: {e}"));
                BTreeMap::new()
            }
        };
        println!(
            "{t:>6.1} {gen:>3} {:>8} {:>5} {hooked:>7} {:<44} {}",
            rss.map_or("-".to_string(), |k| format!("{:.1}", k as f64 / 1024.0)),
            sims.len(),
            brief(&beads),
            brief(&mrs)
        );
        let mut log = shared.lock();
        for d in &doubles {
            println!("  ! {t:.1} s: {d}");
            log.double_sessions.push(format!("{t:.1} s: {d}"));
        }
        for d in &double_hooks {
            println!("  ! {t:.1} s: two agents hooked: {d}");
            log.double_hooks.push(format!("{t:.1} s: {d}"));
        }
        if !unattended.is_empty() {
            log.unattended.push(format!(
                "{t:.1} s (engine #{gen}): {}",
                unattended.join(", ")
            ));
        }
        log.samples.push(Sample {
            t,
            gen,
            rss_kb: rss,
            sims: sims.len(),
            hooked,
            beads,
            mrs,
        });
    }
}

fn git_sampler(gt: &Gt, shared: &Shared) {
    while !shared.stopping() {
        git_sample(gt, shared);
        std::thread::sleep(GIT_EVERY);
    }
}

/// main and every polecat branch, now.
fn git_sample(gt: &Gt, shared: &Shared) {
    let t = shared.t();
    let Ok(repo) = git2::Repository::open(gt.town.join("demo/repo")) else {
        return;
    };
    let Ok(main) = repo.find_branch("main", git2::BranchType::Local) else {
        return;
    };
    let Some(main_tip) = main.get().target() else {
        return;
    };
    let mut now: BTreeMap<String, git2::Oid> = BTreeMap::new();
    if let Ok(branches) = repo.branches(Some(git2::BranchType::Local)) {
        for (b, _) in branches.flatten() {
            let Ok(Some(name)) = b.name() else { continue };
            if !name.starts_with("polecat/") {
                continue;
            }
            if let Some(tip) = b.get().target() {
                now.insert(name.to_string(), tip);
            }
        }
    }
    let mut log = shared.lock();
    let g = &mut log.git;
    g.samples += 1;
    if g.main.last().map(|(_, o)| *o) != Some(main_tip) {
        g.main.push((t, main_tip));
    }
    for (name, tip) in &now {
        let e = g
            .branches
            .entry(name.clone())
            .or_insert_with(|| (Vec::new(), t));
        if e.0.last() != Some(tip) {
            e.0.push(*tip);
        }
        e.1 = t;
        g.gone.remove(name);
    }
    let vanished: Vec<String> = g
        .branches
        .keys()
        .filter(|n| !now.contains_key(*n) && !g.gone.contains_key(*n))
        .cloned()
        .collect();
    for name in vanished {
        g.gone.insert(name, (t, main_tip));
    }
}

// ---------------------------------------------------------------------------------------------
// The verdict.

/// Prints the figures and the invariant table; returns the names of the failed invariants.
fn report(gt: &Gt, shared: &Shared, chaos: &Chaos, secs: u64) -> Vec<String> {
    let beads = gt
        .json(&["bead", "list", "--limit", "0", "--all"])
        .expect("bead list");
    let mrs = gt.json(&["mq"]).expect("mq");
    let feed = gt.json(&["feed", "--limit", "100000000"]).expect("feed");
    let mrs = mrs.as_array().cloned().unwrap_or_default();
    let feed = feed.as_array().cloned().unwrap_or_default();
    let beads = beads.as_array().cloned().unwrap_or_default();
    let log = shared.lock();
    let mut rows: Vec<(String, bool, String)> = Vec::new();
    let mut evidence: Vec<String> = Vec::new();

    // 1. No bead lost.
    let listed: BTreeSet<&str> = beads.iter().filter_map(|b| b["id"].as_str()).collect();
    let resolve: Vec<&str> = feed
        .iter()
        .filter(|e| e["kind"] == "created" && e["actor"] == "refinery")
        .filter_map(|e| e["subject"].as_str())
        .collect();
    let resolve: BTreeSet<&str> = resolve.into_iter().collect();
    let missing: Vec<&str> = log
        .created
        .iter()
        .map(|(id, _)| id.as_str())
        .chain(resolve.iter().copied())
        .filter(|id| !listed.contains(id))
        .collect();
    let dup_ids = beads.len() - listed.len();
    rows.push((
        "1 no bead lost".into(),
        missing.is_empty() && dup_ids == 0 && !log.created.is_empty(),
        format!(
            "{} created + {} resolve beads; {} missing, {} duplicate ids ({} rows listed)",
            log.created.len(),
            resolve.len(),
            missing.len(),
            dup_ids,
            beads.len()
        ),
    ));
    if !missing.is_empty() {
        evidence.push(format!("missing beads: {missing:?}"));
    }

    // 2. No bead double-claimed.
    let replay = replay_holders(&feed);
    let ok2 = log.double_hooks.is_empty() && log.double_sessions.is_empty() && replay.is_empty();
    rows.push((
        "2 no bead double-claimed".into(),
        ok2,
        format!(
            "{} samples: {} with two agents on one bead, {} with two sims in one worktree; \
             {} hook/claim events replayed: {} second holders",
            log.samples.len(),
            log.double_hooks.len(),
            log.double_sessions.len(),
            feed.iter()
                .filter(|e| matches!(e["kind"].as_str(), Some("hooked" | "claimed" | "unhooked")))
                .count(),
            replay.len()
        ),
    ));
    evidence.extend(
        log.double_hooks
            .iter()
            .take(20)
            .map(|d| format!("double hook: {d}")),
    );
    evidence.extend(
        log.double_sessions
            .iter()
            .take(20)
            .map(|d| format!("double session: {d}")),
    );
    evidence.extend(replay.iter().take(20).map(|d| format!("feed: {d}")));

    // 3. No red merge.
    let repo = git2::Repository::open(gt.town.join("demo/repo")).expect("the rig's repo");
    let (ok3, line3, ev3) = check_merges(&repo, &mrs, &log.git);
    rows.push(("3 no red merge".into(), ok3, line3));
    evidence.extend(ev3);

    // 4. No unmerged commit deleted.
    let (ok4, line4, ev4) = check_branches(&repo, &mrs, &feed, &log.git, shared.start_unix);
    rows.push(("4 no unmerged commit deleted".into(), ok4, line4));
    evidence.extend(ev4);

    // 5. Memory bounded.
    let (ok5, line5, detail5) = check_memory(&log.samples);
    rows.push(("5 memory bounded".into(), ok5, line5));

    // Consistency (reported, not an invariant of section 11): each request's branch is the
    // one `sling` made for its bead, `polecat/<submitter>/<bead>`.
    let foreign: Vec<String> = mrs
        .iter()
        .filter(|m| {
            let want = format!(
                "polecat/{}/{}",
                m["submitter"].as_str().unwrap_or(""),
                m["bead_id"].as_str().unwrap_or("")
            );
            m["bead_id"].is_string() && m["branch"].as_str() != Some(want.as_str())
        })
        .map(|m| {
            format!(
                "mr-{} for {} submitted {} ({})",
                m["id"],
                m["bead_id"].as_str().unwrap_or("?"),
                m["branch"].as_str().unwrap_or("?"),
                m["state"].as_str().unwrap_or("?")
            )
        })
        .collect();

    // Throughput.
    let count_mr = |s: &str| mrs.iter().filter(|m| m["state"] == s).count();
    let count_ev = |k: &str| feed.iter().filter(|e| e["kind"] == k).count();
    let witness_restarts = feed
        .iter()
        .filter(|e| e["kind"] == "restarted" && e["actor"] == "witness")
        .count();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, k) in &log.created {
        *kinds.entry(k).or_default() += 1;
    }
    let merged = count_mr("merged");
    println!();
    println!("== throughput over {secs} s ==");
    println!(
        "beads created:              {} ({kinds:?})",
        log.created.len()
    );
    println!("resolve beads (Refinery):   {}", resolve.len());
    println!(
        "merge requests:             {} merged ({:.1}/min), {} rejected, {} conflicts, {} queued, {} testing",
        merged,
        merged as f64 * 60.0 / secs as f64,
        count_mr("rejected"),
        count_mr("conflict"),
        count_mr("queued"),
        count_mr("testing")
    );
    println!(
        "beads at the end:           {}",
        brief(&count_by(&Value::Array(beads.clone()), "status"))
    );
    println!(
        "engine restarts (kill -9):  {} (sim agents alive 1 s after each: {:?})",
        chaos.kills, chaos.survivors
    );
    println!(
        "engine answering after:     {}",
        chaos
            .answer
            .iter()
            .map(|s| format!("{:.0} ms", s * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Beads left in progress: what their merge requests say.
    for b in beads.iter().filter(|b| b["status"] == "in_progress") {
        let id = b["id"].as_str().unwrap_or("?");
        let theirs: Vec<String> = mrs
            .iter()
            .filter(|m| m["bead_id"] == id)
            .map(|m| {
                format!(
                    "mr-{} {} '{}'",
                    m["id"],
                    m["state"].as_str().unwrap_or("?"),
                    m["reason"].as_str().unwrap_or("")
                )
            })
            .collect();
        println!("  in progress at the end: {id}: {}", theirs.join("; "));
    }
    println!("agents restarted (Witness): {witness_restarts}");
    println!("escalations:                {}", count_ev("escalated"));
    println!(
        "other patrol events:        {} nudged, {} dispatched, {} reaped, {} worktrees removed, {} kept, {} zombies stopped",
        count_ev("nudged"),
        count_ev("dispatched"),
        count_ev("reaped"),
        count_ev("worktree_removed"),
        count_ev("worktree_kept"),
        count_ev("zombie")
    );
    println!(
        "polecats:                   {} agents registered; max {} hooked and {} sims in one sample",
        feed.iter()
            .filter(|e| e["kind"] == "agent_registered")
            .count(),
        log.samples.iter().map(|s| s.hooked).max().unwrap_or(0),
        log.samples.iter().map(|s| s.sims).max().unwrap_or(0)
    );
    let mut per_gen: BTreeMap<usize, (usize, usize, usize, f64, f64)> = BTreeMap::new();
    for smp in &log.samples {
        let m = smp.mrs.get("merged").copied().unwrap_or(0);
        let open = smp.beads.get("open").copied().unwrap_or(0);
        let e = per_gen.entry(smp.gen).or_insert((m, m, open, smp.t, smp.t));
        e.1 = m;
        e.2 = e.2.max(open);
        e.4 = smp.t;
    }
    for (g, (first, last, open, t0, t1)) in per_gen {
        println!(
            "engine #{g:<2} ({t0:>5.0}-{t1:>5.0} s):    {} merges in its samples, up to {open} beads open (ready backlog)",
            last.saturating_sub(first)
        );
    }
    println!("feed events:                {}", feed.len());
    println!(
        "git samples:                {} (main moved {} times)",
        log.git.samples,
        log.git.main.len().saturating_sub(1)
    );
    println!();
    println!("== engine memory (VmRSS) ==");
    for l in &detail5 {
        println!("{l}");
    }
    if !log.unattended.is_empty() {
        println!();
        println!(
            "note: {} samples saw agents with work on their hook and no session {RELAUNCH_GRACE} s after an engine start:",
            log.unattended.len()
        );
        for u in log.unattended.iter().take(10) {
            println!("  {u}");
        }
    }
    // Liveness: ready work waiting while no polecat has anything on its hook.
    let idle: Vec<String> = log
        .samples
        .iter()
        .filter(|s| s.t > 10.0 && s.hooked == 0 && s.beads.get("open").copied().unwrap_or(0) > 0)
        .map(|s| {
            format!(
                "{:.0} s ({} open)",
                s.t,
                s.beads.get("open").copied().unwrap_or(0)
            )
        })
        .collect();
    if !idle.is_empty() {
        println!();
        println!(
            "note: dispatch stalled in {} of {} samples (open beads, nobody hooked): {}",
            idle.len(),
            log.samples.len(),
            idle.join(", ")
        );
    }
    if !log.problems.is_empty() {
        println!();
        println!("problems while running ({}):", log.problems.len());
        for p in log.problems.iter().take(30) {
            println!("  {p}");
        }
    }
    println!();
    println!("== invariants ==");
    let mut failed = Vec::new();
    for (name, ok, line) in &rows {
        println!("{:<30} {}  {line}", name, if *ok { "PASS" } else { "FAIL" });
        if !ok {
            failed.push(name.clone());
        }
    }
    println!(
        "{:<30} {}  {} merge requests on a branch that is not their bead's",
        "+ one branch per bead",
        if foreign.is_empty() { "OK  " } else { "WARN" },
        foreign.len()
    );
    for f in &foreign {
        println!("    {f}");
    }
    if !evidence.is_empty() {
        println!();
        println!("evidence:");
        for e in &evidence {
            println!("  {e}");
        }
    }
    failed
}

/// Replays the feed's hook and claim events: a bead that gets a second holder while it has
/// one is a double claim.
fn replay_holders(feed: &[Value]) -> Vec<String> {
    let mut holder: HashMap<String, String> = HashMap::new();
    let mut bad = Vec::new();
    for e in feed {
        let (Some(kind), Some(bead)) = (e["kind"].as_str(), e["subject"].as_str()) else {
            continue;
        };
        let who = match kind {
            "hooked" => e["new_value"].as_str(),
            "claimed" => e["actor"].as_str(),
            "unhooked" => {
                let old = e["old_value"].as_str().unwrap_or("");
                match holder.get(bead) {
                    Some(h) if h != old => bad.push(format!(
                        "event {}: {bead} taken off {old}'s hook while {h} holds it",
                        e["id"]
                    )),
                    _ => {}
                }
                holder.remove(bead);
                continue;
            }
            _ => continue,
        };
        let Some(who) = who else { continue };
        match holder.get(bead) {
            Some(h) if h != who => bad.push(format!(
                "event {} ({}): {bead} {kind} by/to {who} while {h} holds it",
                e["id"],
                e["created_at"].as_str().unwrap_or("")
            )),
            _ => {
                holder.insert(bead.to_string(), who.to_string());
            }
        }
    }
    bad
}

/// Invariant 3: every merged tip and every position main took is green in a fresh checkout;
/// main moved only forward, and only to tips the Refinery merged (a move whose request is
/// still `testing` is a merge whose verdict was not recorded yet: noted, not failed).
fn check_merges(
    repo: &git2::Repository,
    mrs: &[Value],
    git: &GitTrack,
) -> (bool, String, Vec<String>) {
    let mut ev = Vec::new();
    let mut bad = 0;
    let mut tips: BTreeMap<git2::Oid, Vec<String>> = BTreeMap::new();
    for m in mrs.iter().filter(|m| m["state"] == "merged") {
        let reason = m["reason"].as_str().unwrap_or("");
        let short = reason.trim_start_matches("merged as ").trim();
        match repo.revparse_single(short) {
            Ok(o) => tips
                .entry(o.id())
                .or_default()
                .push(format!("mr-{}", m["id"])),
            Err(e) => {
                bad += 1;
                ev.push(format!("mr-{}: cannot resolve '{reason}': {e}", m["id"]));
            }
        }
    }
    let state_of = |id: &str| -> String {
        mrs.iter()
            .find(|m| m["id"].as_i64().is_some_and(|n| n.to_string() == id))
            .and_then(|m| m["state"].as_str())
            .unwrap_or("unknown")
            .to_string()
    };
    let main_tip = repo
        .find_branch("main", git2::BranchType::Local)
        .ok()
        .and_then(|b| b.get().target());
    let Some(main_tip) = main_tip else {
        return (false, "no main branch".into(), ev);
    };
    let initial = git.main.first().map(|(_, o)| *o);
    // Every position, from main's reflog (each move, with the Refinery's message).
    let mut positions: BTreeMap<git2::Oid, String> = BTreeMap::new();
    let mut moves = 0;
    let mut unrecorded = Vec::new();
    let mut reflog_note = String::from("no reflog");
    if let Ok(reflog) = repo.reflog("refs/heads/main") {
        let entries: Vec<(git2::Oid, git2::Oid, String)> = reflog
            .iter()
            .map(|e| {
                (
                    e.id_old(),
                    e.id_new(),
                    e.message().ok().flatten().unwrap_or("").to_string(),
                )
            })
            .collect();
        reflog_note = format!("{} reflog entries", entries.len());
        let mut prev: Option<git2::Oid> = None;
        for (old, new, msg) in entries.into_iter().rev() {
            positions.insert(new, msg.clone());
            if old.is_zero() {
                prev = Some(new);
                continue;
            }
            moves += 1;
            if let Some(p) = prev.filter(|p| *p != old) {
                bad += 1;
                ev.push(format!("reflog: main moved from {old}, but it was at {p}"));
            }
            if old != new && !repo.graph_descendant_of(new, old).unwrap_or(false) {
                bad += 1;
                ev.push(format!(
                    "reflog: main moved from {old} to {new}, not a descendant"
                ));
            }
            if Some(new) != initial && !tips.contains_key(&new) {
                // "refinery: merge mr-N (branch)": whose move was it?
                let mr = msg
                    .split("mr-")
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .unwrap_or("");
                let state = state_of(mr);
                if state == "testing" {
                    unrecorded.push(format!("{new} (mr-{mr}, still testing)"));
                } else {
                    bad += 1;
                    ev.push(format!(
                        "reflog: main moved to {new} ('{msg}'), which no merged request reports (mr-{mr} is {state})"
                    ));
                }
            }
            prev = Some(new);
        }
    }
    let mut prev: Option<git2::Oid> = None;
    for (t, o) in &git.main {
        positions
            .entry(*o)
            .or_insert_with(|| format!("seen at {t:.1} s"));
        if let Some(p) = prev {
            if !repo.graph_descendant_of(*o, p).unwrap_or(false) {
                bad += 1;
                ev.push(format!(
                    "{t:.1} s: main at {o}, not a descendant of {p} seen before"
                ));
            }
        }
        prev = Some(*o);
    }
    // Green in a fresh checkout: every merged tip and every position.
    let mut all: BTreeSet<git2::Oid> = tips.keys().copied().collect();
    all.extend(positions.keys().copied());
    let mut red = 0;
    for c in &all {
        if !tests_pass_at(repo, *c) {
            red += 1;
            let who = tips
                .get(c)
                .map(|w| w.join(", "))
                .or_else(|| positions.get(c).cloned())
                .unwrap_or_default();
            ev.push(format!("{c} ({who}) fails test.sh in a fresh checkout"));
        }
    }
    for (tip, who) in &tips {
        if !(*tip == main_tip || repo.graph_descendant_of(main_tip, *tip).unwrap_or(false)) {
            bad += 1;
            ev.push(format!(
                "{tip} ({}) was merged but is not in main's history",
                who.join(", ")
            ));
        }
    }
    (
        red == 0 && bad == 0,
        format!(
            "{} merged tips ({} requests) + main's positions: {} commits tested in fresh checkouts, {red} red; \
             main moved {moves} times ({reflog_note}, {} positions sampled), {bad} bad moves; \
             {} moves whose verdict was not recorded yet{}",
            tips.len(),
            tips.values().map(Vec::len).sum::<usize>(),
            all.len(),
            git.main.len(),
            unrecorded.len(),
            if unrecorded.is_empty() {
                String::new()
            } else {
                format!(" ({})", unrecorded.join(", "))
            }
        ),
        ev,
    )
}

/// Runs test.sh at `commit` in a fresh checkout.
fn tests_pass_at(repo: &git2::Repository, commit: git2::Oid) -> bool {
    let Ok(dir) = tempfile::tempdir() else {
        return false;
    };
    let Ok(tree) = repo.find_commit(commit).and_then(|c| c.tree()) else {
        return false;
    };
    let mut opts = git2::build::CheckoutBuilder::new();
    opts.target_dir(dir.path()).force();
    if repo
        .checkout_tree(tree.as_object(), Some(&mut opts))
        .is_err()
    {
        return false;
    }
    Command::new("sh")
        .arg("test.sh")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `tip`'s work is in `into`: an ancestor of it, or (after the Refinery's rebase) its
/// changes merge into `into` without changing anything.
fn contained(repo: &git2::Repository, tip: git2::Oid, into: git2::Oid) -> bool {
    if tip == into || repo.graph_descendant_of(into, tip).unwrap_or(false) {
        return true;
    }
    let (Ok(a), Ok(b)) = (repo.find_commit(into), repo.find_commit(tip)) else {
        return false;
    };
    match repo.merge_commits(&a, &b, None) {
        Ok(mut idx) if !idx.has_conflicts() => {
            idx.write_tree_to(repo).is_ok_and(|t| t == a.tree_id())
        }
        _ => false,
    }
}

/// Invariant 4: every polecat branch tip ever seen is still held by its branch or is in main;
/// every removed worktree's branch was merged when it went.
fn check_branches(
    repo: &git2::Repository,
    mrs: &[Value],
    feed: &[Value],
    git: &GitTrack,
    start_unix: f64,
) -> (bool, String, Vec<String>) {
    let mut ev = Vec::new();
    let main_tip = repo
        .find_branch("main", git2::BranchType::Local)
        .ok()
        .and_then(|b| b.get().target());
    let Some(main_tip) = main_tip else {
        return (false, "no main branch".into(), ev);
    };
    let mut tips_checked = 0;
    let mut lost = 0;
    for (name, (tips, _)) in &git.branches {
        let now = repo
            .find_branch(name, git2::BranchType::Local)
            .ok()
            .and_then(|b| b.get().target());
        // What the Refinery merged from this branch (invariant 3 checks those are in main).
        let merged: Vec<git2::Oid> = mrs
            .iter()
            .filter(|m| m["branch"] == name.as_str() && m["state"] == "merged")
            .filter_map(|m| {
                let short = m["reason"]
                    .as_str()?
                    .trim_start_matches("merged as ")
                    .trim();
                repo.revparse_single(short).ok().map(|o| o.id())
            })
            .collect();
        // Newest first: a tip is safe when the branch, main or a merged tip of the branch
        // holds its work, or when a later tip that is safe was built on it (a red change,
        // then its fix on top).
        let mut safe: Vec<git2::Oid> = Vec::new();
        for tip in tips.iter().rev() {
            tips_checked += 1;
            let ok = now.is_some_and(|n| contained(repo, *tip, n))
                || contained(repo, *tip, main_tip)
                || merged.iter().any(|m| contained(repo, *tip, *m))
                || safe
                    .iter()
                    .any(|s| repo.graph_descendant_of(*s, *tip).unwrap_or(false));
            if ok {
                safe.push(*tip);
            } else {
                lost += 1;
                ev.push(format!(
                    "{name}: tip {tip} is neither in the branch ({}) nor in main, nor under a later tip",
                    now.map_or("deleted".to_string(), |n| n.to_string())
                ));
            }
        }
    }
    // Branches with a merge request: still there, or merged.
    let mut with_mr = 0;
    for branch in mrs
        .iter()
        .filter_map(|m| m["branch"].as_str())
        .collect::<BTreeSet<_>>()
    {
        with_mr += 1;
        let exists = repo.find_branch(branch, git2::BranchType::Local).is_ok();
        if !exists && !git.branches.contains_key(branch) {
            ev.push(format!(
                "{branch} had a merge request, is gone and was never seen by the sampler"
            ));
            lost += 1;
        }
    }
    // Every worktree removal: the polecat's branches that went with it were in main then.
    let mut removals = 0;
    let mut unverified = 0;
    for e in feed.iter().filter(|e| e["kind"] == "worktree_removed") {
        removals += 1;
        let agent = e["subject"].as_str().unwrap_or("");
        let t = event_time(e).map_or(f64::NAN, |u| u - start_unix);
        let prefix = format!("polecat/{agent}/");
        let near: Vec<(&String, &(f64, git2::Oid))> = git
            .gone
            .iter()
            .filter(|(n, (gone_at, _))| {
                n.starts_with(&prefix) && (*gone_at - t) > -1.0 && (*gone_at - t) < 3.0
            })
            .collect();
        if near.is_empty() {
            unverified += 1;
            continue;
        }
        for (name, (gone_at, main_then)) in near {
            let last = git
                .branches
                .get(name)
                .and_then(|(tips, _)| tips.last().copied());
            if let Some(last) = last {
                if !contained(repo, last, *main_then) {
                    lost += 1;
                    ev.push(format!(
                        "worktree_removed for {agent} at {t:.1} s: {name} (last seen at {last}) was not in main ({main_then}) when it went at {gone_at:.1} s"
                    ));
                }
            }
        }
    }
    let deleted = git.gone.len();
    (
        lost == 0,
        format!(
            "{} polecat branches seen ({tips_checked} tips), {deleted} deleted, {with_mr} with a merge request; \
             {removals} worktree removals ({unverified} not matched to a deleted branch); {lost} unmerged losses",
            git.branches.len()
        ),
        ev,
    )
}

/// Invariant 5: after the first minute, RSS stays within twice the first minute's maximum.
fn check_memory(samples: &[Sample]) -> (bool, String, Vec<String>) {
    let rss: Vec<(f64, usize, f64)> = samples
        .iter()
        .filter_map(|s| s.rss_kb.map(|k| (s.t, s.gen, k as f64 / 1024.0)))
        .collect();
    if rss.is_empty() {
        return (false, "no RSS samples".into(), Vec::new());
    }
    let mut sorted: Vec<f64> = rss.iter().map(|r| r.2).collect();
    sorted.sort_by(f64::total_cmp);
    let min = sorted[0];
    let max = sorted[sorted.len() - 1];
    let median = sorted[sorted.len() / 2];
    let first_minute = rss
        .iter()
        .filter(|r| r.0 < 60.0)
        .map(|r| r.2)
        .fold(0.0, f64::max);
    let later = rss
        .iter()
        .filter(|r| r.0 >= 60.0)
        .map(|r| r.2)
        .fold(0.0, f64::max);
    let last = rss[rss.len() - 1].2;
    let ok = first_minute > 0.0 && later <= 2.0 * first_minute;
    let mut detail = vec![format!(
        "samples {}: min {min:.1} MiB, median {median:.1} MiB, max {max:.1} MiB; first minute max {first_minute:.1} MiB, \
         after it max {later:.1} MiB, last {last:.1} MiB",
        rss.len()
    )];
    let mut by_gen: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for (t, g, m) in &rss {
        by_gen.entry(*g).or_default().push((*t, *m));
    }
    for (g, v) in by_gen {
        let peak = v.iter().map(|x| x.1).fold(0.0, f64::max);
        detail.push(format!(
            "engine #{g}: {} samples from {:.0} s to {:.0} s: first {:.1} MiB, peak {peak:.1} MiB, last {:.1} MiB",
            v.len(),
            v[0].0,
            v[v.len() - 1].0,
            v[0].1,
            v[v.len() - 1].1
        ));
    }
    (
        ok,
        format!(
            "min {min:.1} / median {median:.1} / max {max:.1} MiB; last {last:.1} MiB vs first-minute max {first_minute:.1} MiB \
             (bound: after the first minute <= 2x that: {later:.1} MiB)"
        ),
        detail,
    )
}

// ---------------------------------------------------------------------------------------------
// Processes.

struct Proc {
    pid: i32,
    argv: Vec<String>,
    cwd: Option<PathBuf>,
}

/// Every process (but this one) run from the copied binary under `root` or working under it.
fn town_procs(root: &Path) -> Vec<Proc> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|&c| c == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
        let ours = argv.first().is_some_and(|a| Path::new(a).starts_with(root))
            || cwd.as_ref().is_some_and(|c| c.starts_with(root));
        if ours && !argv.is_empty() {
            out.push(Proc { pid, argv, cwd });
        }
    }
    out
}

/// The parent pid of `pid`, from `/proc/PID/stat` (field 4, after the command in parentheses).
fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
}

/// The sim agents running in the temp town. A sim's own child caught between fork and exec
/// (it still shows the sim's command line and directory for a moment) is not a second sim.
fn sim_procs(root: &Path) -> Vec<Proc> {
    let sims: Vec<Proc> = town_procs(root)
        .into_iter()
        .filter(|p| p.argv.get(1).is_some_and(|a| a == "sim-agent"))
        .collect();
    let pids: std::collections::HashSet<i32> = sims.iter().map(|p| p.pid).collect();
    sims.into_iter()
        .filter(|p| !ppid(p.pid).is_some_and(|pp| pids.contains(&pp)))
        .collect()
}

/// SIGKILL to every process of the temp town; returns what was killed (pid and program).
fn kill_leftovers(root: &Path) -> Vec<String> {
    let mut killed = Vec::new();
    for _ in 0..5 {
        let procs = town_procs(root);
        if procs.is_empty() {
            break;
        }
        for p in procs {
            // SAFETY: kill(2) on a pid we found under our own temp dir; no memory effects.
            unsafe {
                libc::kill(p.pid, libc::SIGKILL);
            }
            killed.push(format!(
                "{} {}",
                p.pid,
                p.argv[1..].first().map_or("", |s| s.as_str())
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    killed
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The copied binary with a clean environment.
struct Gt {
    bin: PathBuf,
    home: PathBuf,
    town: PathBuf,
}

impl Gt {
    fn plain(&self) -> Command {
        let mut c = common::kit::command(&self.bin, &self.home);
        c.stdin(Stdio::null());
        c
    }

    fn cmd(&self) -> Command {
        let mut c = self.plain();
        c.arg("--town").arg(&self.town);
        c
    }

    /// `ARGS --json`, parsed; Err with the stderr when it fails.
    fn json(&self, args: &[&str]) -> Result<Value, String> {
        let out = self
            .cmd()
            .args(args)
            .arg("--json")
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "{args:?}: {} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{args:?}: bad JSON: {e}"))
    }
}

/// Runs a command with small output, giving up (and killing it) after `limit`.
fn run_timeout(cmd: &mut Command, limit: Duration) -> Option<Output> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().ok(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

fn count_by(v: &Value, key: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for x in v.as_array().into_iter().flatten() {
        *m.entry(x[key].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    m
}

fn brief(m: &BTreeMap<String, usize>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn event_time(e: &Value) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(e["created_at"].as_str()?).ok()?;
    Some(t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}
