//! Store benchmarks at 100,000 beads.
//!
//! What it measures, on an on-disk store in WAL mode (as users have it) holding a generated,
//! deterministic town of 100,000 beads with realistic dependencies:
//!
//! - `store/ready_limit_50`: `Store::ready(Some(50))`, goal < 5 ms.
//! - `store/ready_all`: `Store::ready(None)`, informational.
//! - `store/create`: `Store::create` of a bead with a title and description, goal < 2 ms.
//! - `store/claim`: `Store::claim` of a fresh open bead (created untimed in the setup), goal
//!   < 2 ms.
//! - `store/get`: `Store::get` of a bead with dependencies (what `bead show` loads),
//!   informational.
//! - `store/import_100k`: `Store::import_jsonl` of the 100,000-line JSONL into a fresh on-disk
//!   store, goal: seconds.
//! - `cli/ready_json`, `cli/create`, `cli/show`: whole `gastown-tui` processes (process start
//!   included) against a town built with `gastown-tui init` and `bead import`:
//!   `bead ready --json` (limit 50), `bead create TITLE`, `bead show ID`; goal < 30 ms each.
//!   Write commands start the detached, debounced JSONL flusher (it re-exports the whole
//!   store every `flush_debounce` while writes keep coming); `cli/create` runs last so the
//!   read benchmarks never share the machine with it.
//!
//! The data: about 30% closed (older beads more often), about 20% of beads with 1-3 `blocks`
//! dependencies on earlier beads (open and closed blockers mixed), about 5% epics with 2-10
//! children `<epic>.<n>` each (a `parent-child` dependency on the epic), priorities 0-4,
//! a few labels, created_at spread over a year. About 4% of the top-level work beads are wisps
//! (`"ephemeral": true`, as Gas Town's patrol chores are) and 0.5% are pinned: both must stay
//! out of `ready` without slowing it (they are drawn from their own generator, so the rest of
//! the data is the same as before they were added). Ids are `gt-` plus 7 base-36 characters.
//! Dependencies only point at earlier beads, so there are no cycles. A seeded splitmix64
//! makes every run see the same data.
//!
//! Run it with:
//!
//! ```text
//! cargo bench --bench store
//! cargo bench --bench store -- store/ready     # a subset, by criterion's name filter
//! ```
//!
//! It takes about 2.5 minutes on the 2-core development machine (a filtered run still builds
//! both 100k stores first, about 20 s). Criterion prints a confidence interval of the time per
//! call (the slope or the mean); the medians, with theirs, are in
//! `target/criterion/<group>/<name>/new/estimates.json`.
//!
//! With `GT_BENCH_JSONL_OUT=FILE` set, the generated JSONL is also written to FILE (handy for
//! poking at the same data with `gastown-tui bead import` and `sqlite3`).

mod common;

use chrono::{DateTime, SecondsFormat, Utc};
use common::kit::MustRun;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode};
use gastown_tui::beads::{NewBead, Store};
use gastown_tui::clock;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How many beads the generated store holds.
const BEADS: usize = 100_000;
/// The first created_at: beads are spread over the following year.
const START_UNIX: i64 = 1_761_955_200; // 2025-11-01T00:00:00Z
const YEAR_SECS: i64 = 365 * 24 * 3600;
const SEED: u64 = 0x6761_7374_6f77_6e21; // "gastown!"

// ---------------------------------------------------------------------------------------------
// Deterministic data
// ---------------------------------------------------------------------------------------------

/// splitmix64: tiny, fast and good enough to make plausible data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) / ((1u64 << 53) as f64) < p
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    /// An index into `weights`, chosen in proportion to them.
    fn weighted(&mut self, weights: &[usize]) -> usize {
        let mut r = self.below(weights.iter().sum());
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }
}

const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const PRIORITY_WEIGHTS: [usize; 5] = [5, 15, 50, 20, 10];
const TYPES: [&str; 4] = ["task", "bug", "feature", "chore"];
const TYPE_WEIGHTS: [usize; 4] = [55, 25, 15, 5];
/// Statuses of beads that are not closed.
const LIVE_STATUSES: [&str; 5] = ["open", "in_progress", "blocked", "deferred", "hooked"];
const LIVE_WEIGHTS: [usize; 5] = [85, 10, 2, 2, 1];
const LABELS: [&str; 12] = [
    "backend", "frontend", "api", "db", "auth", "ui", "perf", "security", "docs", "infra", "tests",
    "ci",
];
const AGENTS: [&str; 6] = ["nux", "slit", "furiosa", "capable", "toast", "dag"];
const CREATORS: [&str; 3] = ["overseer", "mayor", "gastown/witness"];
const VERBS: [&str; 10] = [
    "Fix", "Add", "Refactor", "Speed up", "Document", "Test", "Remove", "Rename", "Split", "Harden",
];
const THINGS: [&str; 12] = [
    "retry loop",
    "session cache",
    "login form",
    "rate limiter",
    "migration",
    "config loader",
    "search index",
    "webhook handler",
    "export job",
    "settings page",
    "error banner",
    "audit log",
];
const SENTENCES: [&str; 8] = [
    "The current behaviour surprises users and shows up in the support queue every week.",
    "Repro: start the service with an empty cache and send two requests at once.",
    "Acceptance: the new path is covered by a test and the old one is deleted.",
    "See the discussion in the last planning meeting; the owner agreed on the approach.",
    "This blocks the release branch until it is resolved or explicitly deferred.",
    "Measure before and after; attach the numbers to the merge request.",
    "Keep the public API unchanged; only the internals move.",
    "Low risk, but touches code that has no owner right now.",
];

/// The generated town: its JSONL text and a few facts about it.
struct Dataset {
    jsonl: String,
    /// A bead with a parent, `blocks` dependencies and dependents: what `get` and `bead show`
    /// load.
    show_id: String,
    closed: usize,
    with_blocks: usize,
    blocks_edges: usize,
    epics: usize,
    children: usize,
    wisps: usize,
    pinned: usize,
}

fn rfc3339(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .expect("a time in range")
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn fresh_top_id(rng: &mut Rng, used: &mut HashSet<String>) -> String {
    loop {
        let mut id = String::with_capacity(10);
        id.push_str("gt-");
        for _ in 0..7 {
            id.push(BASE36[rng.below(36)] as char);
        }
        if used.insert(id.clone()) {
            return id;
        }
    }
}

/// One bead before it becomes a JSONL line.
struct Planned {
    id: String,
    parent: Option<usize>,
    is_epic: bool,
}

fn generate() -> Dataset {
    let mut rng = Rng(SEED);
    let mut used = HashSet::with_capacity(BEADS);
    // First the shape: ids, epics and their children, in creation order. An epic is chosen so
    // that about 5% of all beads are epics (each brings 6 children on average).
    let mut plan: Vec<Planned> = Vec::with_capacity(BEADS);
    while plan.len() < BEADS {
        let id = fresh_top_id(&mut rng, &mut used);
        let room = BEADS - plan.len() - 1;
        let is_epic = room >= 2 && rng.chance(0.0715);
        let epic_index = plan.len();
        plan.push(Planned {
            id: id.clone(),
            parent: None,
            is_epic,
        });
        if is_epic {
            let n = rng.range(2, 10).min(room);
            for k in 1..=n {
                plan.push(Planned {
                    id: format!("{id}.{k}"),
                    parent: Some(epic_index),
                    is_epic: false,
                });
            }
        }
    }

    let step = YEAR_SECS / BEADS as i64;
    let mut statuses: Vec<&str> = Vec::with_capacity(BEADS);
    let mut blockers_of: Vec<Vec<usize>> = Vec::with_capacity(BEADS);
    let mut lines: Vec<Value> = Vec::with_capacity(BEADS);
    let (mut closed, mut with_blocks, mut blocks_edges, mut epics, mut children) = (0, 0, 0, 0, 0);
    let mut marks = Rng(SEED ^ 0x7769_7370); // "wisp"
    let (mut wisps, mut pinned) = (0, 0);
    for (j, p) in plan.iter().enumerate() {
        let created = START_UNIX + j as i64 * step + rng.below(step as usize) as i64;
        // Older beads are closed more often: from 45% at the start to 4% now; with the
        // children of closed epics (closed too) about 30% overall.
        let p_closed = 0.04 + 0.41 * (1.0 - j as f64 / BEADS as f64);
        let status = match p.parent {
            Some(e) if statuses[e] == "closed" => "closed",
            _ if rng.chance(p_closed) => "closed",
            _ => LIVE_STATUSES[rng.weighted(&LIVE_WEIGHTS)],
        };
        statuses.push(status);
        let issue_type = if p.is_epic {
            "epic"
        } else {
            TYPES[rng.weighted(&TYPE_WEIGHTS)]
        };
        let priority = rng.weighted(&PRIORITY_WEIGHTS);

        // About 20% of beads wait for 1-3 earlier ones: mostly recent work, sometimes old.
        let mut blockers: Vec<usize> = Vec::new();
        if j >= 100 && rng.chance(0.2) {
            let want = rng.range(1, 3);
            for _ in 0..want * 4 {
                if blockers.len() == want {
                    break;
                }
                let b = if rng.chance(0.7) {
                    j - 1 - rng.below(j.min(2000))
                } else {
                    rng.below(j)
                };
                if Some(b) != p.parent && !blockers.contains(&b) {
                    blockers.push(b);
                }
            }
        }

        let mut m = Map::new();
        m.insert("id".into(), p.id.clone().into());
        let title = format!(
            "{} {} in {} ({})",
            rng.pick(&VERBS),
            rng.pick(&THINGS),
            rng.pick(&LABELS),
            j + 1
        );
        m.insert("title".into(), title.into());
        let description = (0..rng.range(1, 3))
            .map(|_| *rng.pick(&SENTENCES))
            .collect::<Vec<_>>()
            .join(" ");
        m.insert("description".into(), description.into());
        m.insert("status".into(), status.into());
        m.insert("priority".into(), priority.into());
        m.insert("issue_type".into(), issue_type.into());
        if matches!(status, "in_progress" | "hooked") {
            m.insert("assignee".into(), (*rng.pick(&AGENTS)).into());
        }
        let created_at = rfc3339(created);
        m.insert("created_at".into(), created_at.clone().into());
        m.insert("created_by".into(), (*rng.pick(&CREATORS)).into());
        if status == "closed" {
            let at = rfc3339(created + 3600 + rng.below(30 * 24 * 3600) as i64);
            m.insert("updated_at".into(), at.clone().into());
            m.insert("closed_at".into(), at.into());
            m.insert("close_reason".into(), "done".into());
        } else {
            let at = rfc3339(created + rng.below(7 * 24 * 3600) as i64);
            m.insert("updated_at".into(), at.into());
        }
        let mut labels: Vec<&str> = Vec::new();
        if rng.chance(0.6) {
            for _ in 0..rng.range(1, 3) {
                let l = *rng.pick(&LABELS);
                if !labels.contains(&l) {
                    labels.push(l);
                }
            }
        }
        if !labels.is_empty() {
            m.insert("labels".into(), labels.into());
        }
        let dep = |on: usize, kind: &str| {
            let mut d = Map::new();
            d.insert("issue_id".into(), p.id.clone().into());
            d.insert("depends_on_id".into(), plan[on].id.clone().into());
            d.insert("type".into(), kind.into());
            d.insert("created_at".into(), created_at.clone().into());
            Value::Object(d)
        };
        let mut deps: Vec<Value> = Vec::new();
        if let Some(e) = p.parent {
            deps.push(dep(e, "parent-child"));
            children += 1;
        }
        for &b in &blockers {
            deps.push(dep(b, "blocks"));
        }
        if !deps.is_empty() {
            m.insert("dependencies".into(), deps.into());
        }
        if p.parent.is_none() && !p.is_epic {
            if marks.chance(0.04) {
                m.insert("ephemeral".into(), true.into());
                wisps += 1;
            } else if marks.chance(0.005) {
                m.insert("pinned".into(), true.into());
                pinned += 1;
            }
        }
        closed += usize::from(status == "closed");
        epics += usize::from(p.is_epic);
        with_blocks += usize::from(!blockers.is_empty());
        blocks_edges += blockers.len();
        blockers_of.push(blockers);
        lines.push(Value::Object(m));
    }

    // The bead `get` / `bead show` loads: a child with two or more blockers and the most
    // dependents, among the middle of the store.
    let mut dependents = vec![0usize; BEADS];
    for bs in &blockers_of {
        for &b in bs {
            dependents[b] += 1;
        }
    }
    let show = (BEADS / 4..BEADS * 3 / 4)
        .filter(|&j| plan[j].parent.is_some() && blockers_of[j].len() >= 2)
        .max_by_key(|&j| (dependents[j], std::cmp::Reverse(j)))
        .expect("the data has a child with blockers");

    let mut jsonl = String::with_capacity(BEADS * 600);
    for l in &lines {
        jsonl.push_str(&l.to_string());
        jsonl.push('\n');
    }
    Dataset {
        jsonl,
        show_id: plan[show].id.clone(),
        closed,
        with_blocks,
        blocks_edges,
        epics,
        children,
        wisps,
        pinned,
    }
}

fn dataset() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| {
        let t = Instant::now();
        let d = generate();
        eprintln!(
            "generated {BEADS} beads in {:.2?}: {} closed, {} with blocks deps ({} edges), \
             {} epics with {} children, {} wisps, {} pinned; JSONL {:.1} MB; show/get bead {}",
            t.elapsed(),
            d.closed,
            d.with_blocks,
            d.blocks_edges,
            d.epics,
            d.children,
            d.wisps,
            d.pinned,
            d.jsonl.len() as f64 / 1e6,
            d.show_id
        );
        if let Some(out) = std::env::var_os("GT_BENCH_JSONL_OUT") {
            std::fs::write(&out, &d.jsonl).expect("write GT_BENCH_JSONL_OUT");
            eprintln!("wrote the JSONL to {}", Path::new(&out).display());
        }
        d
    })
}

// ---------------------------------------------------------------------------------------------
// In-process store
// ---------------------------------------------------------------------------------------------

fn open_store(path: &Path) -> Store {
    Store::open(path, "gt", clock::system()).expect("open the store")
}

fn import(store: &Store, data: &Dataset) {
    let report = store
        .import_jsonl(data.jsonl.as_bytes(), "bench.jsonl", "overseer")
        .expect("import the generated JSONL");
    assert_eq!(report.lines, BEADS);
}

fn new_bead(n: u64) -> NewBead {
    NewBead {
        title: format!("Benchmark bead {n}"),
        description: "Created by benches/store.rs to time a single create on a 100k store."
            .to_string(),
        ..Default::default()
    }
}

fn bench_store(c: &mut Criterion) {
    let data = dataset();
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = open_store(&dir.path().join("beads.db"));
    let t = Instant::now();
    import(&store, data);
    let ready_all = store.ready(None).expect("ready").len();
    eprintln!(
        "built the on-disk store in {:.2?}; {} beads, {} ready",
        t.elapsed(),
        store.count().expect("count"),
        ready_all
    );
    assert_eq!(store.ready(Some(50)).expect("ready").len(), 50);
    let shown = store.get(&data.show_id).expect("get");
    assert!(shown.dependencies.len() >= 3, "{:?}", shown.dependencies);

    let mut g = c.benchmark_group("store");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("ready_limit_50", |b| {
        b.iter(|| store.ready(black_box(Some(50))).expect("ready"))
    });
    g.bench_function("get", |b| {
        b.iter(|| store.get(black_box(&data.show_id)).expect("get"))
    });
    // Slow calls, so one or two per sample: criterion's "Unable to complete 10 samples"
    // warning is expected here (sometimes) and for import_100k (always).
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    g.bench_function("ready_all", |b| {
        b.iter(|| store.ready(black_box(None)).expect("ready"))
    });
    // The writes come after the reads, so the reads see exactly the generated 100,000 beads.
    g.sampling_mode(SamplingMode::Auto)
        .sample_size(100)
        .measurement_time(Duration::from_secs(3));
    let mut n = 0u64;
    g.bench_function("create", |b| {
        b.iter(|| {
            n += 1;
            store.create(&new_bead(n), "overseer").expect("create")
        })
    });
    g.bench_function("claim", |b| {
        b.iter_batched(
            || {
                n += 1;
                store.create(&new_bead(n), "overseer").expect("create").id
            },
            |id| store.claim(&id, "bench-agent").expect("claim"),
            BatchSize::SmallInput,
        )
    });
    eprintln!(
        "the writes above grew the store to {} beads",
        store.count().expect("count")
    );
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    g.warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(20));
    g.bench_function("import_100k", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("a temp dir");
                let store = open_store(&dir.path().join("beads.db"));
                (dir, store)
            },
            |(dir, store)| {
                import(&store, data);
                // Returned so that deleting the store is not timed.
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Whole CLI processes
// ---------------------------------------------------------------------------------------------

const EXE: &str = env!("CARGO_BIN_EXE_gastown-tui");

/// `gastown-tui ARGS`, run; it must succeed.
fn gastown(args: &[&std::ffi::OsStr], what: &str) -> Output {
    common::kit::command(EXE, &std::env::temp_dir())
        .args(args)
        .ok(what)
}

/// Waits until no JSONL flusher is on duty and everything is flushed; returns how long.
fn wait_for_flusher(db: &Path) -> Duration {
    let t = Instant::now();
    let store = open_store(db);
    loop {
        let idle = store.meta_get("flush_slot_ns").expect("meta").is_none()
            && !store.export_dirty().expect("dirty");
        if idle {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "the JSONL flusher did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn bench_cli(c: &mut Criterion) {
    let data = dataset();
    let tmp = tempfile::tempdir().expect("a temp dir");
    let town: PathBuf = tmp.path().join("town");
    let jsonl = tmp.path().join("issues-100k.jsonl");
    std::fs::write(&jsonl, &data.jsonl).expect("write the JSONL");
    let t = Instant::now();
    gastown(&["init".as_ref(), town.as_ref()], "init");
    gastown(
        &[
            "--town".as_ref(),
            town.as_ref(),
            "bead".as_ref(),
            "import".as_ref(),
            jsonl.as_ref(),
        ],
        "bead import",
    );
    let imported = t.elapsed();
    let db = town.join(".beads").join("beads.db");
    let flushed = wait_for_flusher(&db);
    eprintln!(
        "built the CLI town in {imported:.2?} (init + bead import); its JSONL flusher finished \
         {flushed:.2?} later"
    );

    let t = town.as_os_str();
    let show_id = data.show_id.as_str();
    let ready_args: [&std::ffi::OsStr; 5] = [
        "--town".as_ref(),
        t,
        "bead".as_ref(),
        "ready".as_ref(),
        "--json".as_ref(),
    ];
    let out = gastown(&ready_args, "bead ready --json");
    let ready: Value = serde_json::from_slice(&out.stdout).expect("ready --json is JSON");
    assert_eq!(ready.as_array().map(Vec::len), Some(50), "limit 50");
    let show_args: [&std::ffi::OsStr; 5] = [
        "--town".as_ref(),
        t,
        "bead".as_ref(),
        "show".as_ref(),
        show_id.as_ref(),
    ];
    gastown(&show_args, "bead show");

    let mut g = c.benchmark_group("cli");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(40)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.bench_function("ready_json", |b| {
        b.iter(|| gastown(&ready_args, "bead ready --json"))
    });
    g.bench_function("show", |b| b.iter(|| gastown(&show_args, "bead show")));
    // Last: from the first create on, a flusher re-exports the store every debounce period.
    let mut n = 0u64;
    g.bench_function("create", |b| {
        b.iter(|| {
            n += 1;
            let title = format!("CLI benchmark bead {n}");
            gastown(
                &[
                    "--town".as_ref(),
                    t,
                    "bead".as_ref(),
                    "create".as_ref(),
                    title.as_ref(),
                ],
                "bead create",
            )
        })
    });
    g.finish();
    let flushed = wait_for_flusher(&db);
    eprintln!("after cli/create ({n} beads), the JSONL flusher finished {flushed:.2?} later");
}

criterion_group!(benches, bench_store, bench_cli);
criterion_main!(benches);
