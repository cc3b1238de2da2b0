//! Costs, budgets, freeze/thaw and notifications with the `sim` runtime (it reports made-up
//! usage to its session's GT_USAGE_FILE, the way any runtime may): `costs` adds up exactly
//! what the records hold, a spent daily budget refuses slings and stops auto-dispatch until
//! it is raised, `freeze --all` stops every agent process (and an engine restart keeps them
//! stopped) and `thaw --all` resumes them, a frozen agent is never called stalled, nudged or
//! restarted, a stalled agent runs the notify command once, and the cockpit rings.

mod common;

use common::{agent, sim_town_with, submitted, wait_for, TestTown, Up, BIN};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A town whose patrols run in seconds, with the sim as its runtime and `extra` appended to
/// its town.toml.
fn town(extra: &str) -> TestTown {
    sim_town_with(&format!(
        "\n[patrol]\ngupp_idle_after = \"1s\"\nwitness_every = \"200ms\"\nstall_after = \"3s\"\n\
         deacon_every = \"300ms\"\n{extra}"
    ))
}

/// Every usage line the sim sessions of `agent` wrote, summed: input, output, cache read,
/// cache write.
fn usage_files_total(t: &TestTown, agent: &str) -> [i64; 4] {
    let mut sum = [0i64; 4];
    for e in std::fs::read_dir(t.root().join("logs").join(agent)).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().ends_with(".usage.jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            for (i, k) in [
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
            ]
            .iter()
            .enumerate()
            {
                sum[i] += v[k].as_i64().unwrap_or(0);
            }
        }
    }
    sum
}

fn costs(t: &TestTown, by: &str) -> Vec<Value> {
    t.json(&["costs", "--by", by]).as_array().unwrap().clone()
}

fn group<'a>(rows: &'a [Value], key: &str, name: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r[key] == name)
}

fn feed(t: &TestTown) -> Vec<Value> {
    t.json(&["feed", "--limit", "5000"])
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn costs_add_up_exactly_what_the_records_hold_by_agent_bead_rig_and_model() {
    let t = town("");
    let bead = t.create("Counted", &["-d", "sim: edit counted.txt"]);
    let _up = Up::start(&t);
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    wait_for(&t, "the work", || submitted(&t, &bead));
    // The sim writes a turn's usage once the turn ends (after `done`); the meter reads every
    // 2 s: wait until the store has what the files hold.
    wait_for(&t, "the sim's usage report", || {
        usage_files_total(&t, "furiosa")[0] > 0
    });
    let want = usage_files_total(&t, "furiosa");
    wait_for(&t, "the usage in the store", || {
        group(&costs(&t, "agent"), "agent", "furiosa")
            .is_some_and(|r| r["input_tokens"].as_i64() == Some(want[0]))
    });
    let want = usage_files_total(&t, "furiosa");
    let by_agent = costs(&t, "agent");
    let row = group(&by_agent, "agent", "furiosa").unwrap();
    assert_eq!(row["input_tokens"], want[0]);
    assert_eq!(row["output_tokens"], want[1]);
    assert_eq!(row["cache_read_tokens"], want[2]);
    assert_eq!(row["cache_write_tokens"], want[3]);
    assert_eq!(row["tokens"], want.iter().sum::<i64>());
    // The shipped price of `sim`: 3 / 15 / 0.3 / 3.75 USD per million.
    let usd = (want[0] as f64 * 3.0
        + want[1] as f64 * 15.0
        + want[2] as f64 * 0.3
        + want[3] as f64 * 3.75)
        / 1e6;
    assert!((row["usd"].as_f64().unwrap() - usd).abs() < 1e-9, "{row}");
    // The same tokens under every grouping.
    let bead_row = group(&costs(&t, "bead"), "bead", &bead).cloned().unwrap();
    assert_eq!(bead_row["tokens"], row["tokens"]);
    assert_eq!(
        group(&costs(&t, "rig"), "rig", "demo").unwrap()["tokens"],
        row["tokens"]
    );
    assert_eq!(
        group(&costs(&t, "model"), "model", "sim").unwrap()["tokens"],
        row["tokens"]
    );
    // --since: nothing after now; everything since the start of the day.
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    assert_eq!(
        t.json(&["costs", "--since", &future]),
        serde_json::json!([])
    );
    assert_eq!(
        t.json(&["costs", "--since", "today"]),
        Value::Array(by_agent)
    );
    let bad = t.fails(&["costs", "--since", "last tuesday"], 2);
    assert!(bad.contains("--since: \"last tuesday\""), "{bad}");

    // An unknown model is counted, its cost unknown.
    let cfg = t.root().join("town.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}\n[prices.\"sim\"]\ninput = 1.0\n")).unwrap();
    let repriced = group(&costs(&t, "agent"), "agent", "furiosa")
        .cloned()
        .unwrap();
    assert!(
        (repriced["usd"].as_f64().unwrap() - want[0] as f64 / 1e6).abs() < 1e-9,
        "the town's price wins: {repriced}"
    );
    // The table names what has no price.
    let out = t.gt().args(["costs", "--by", "model"]).assert().success();
    let table = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(table.contains("sim") && table.contains("total"), "{table}");
}

#[test]
fn a_spent_daily_budget_refuses_slings_and_stops_auto_dispatch_until_it_is_raised() {
    // One sim turn costs about a cent: a tenth of a cent is spent by the first answer. That
    // answer is polite (no work), so the polecat sits idle with work on its hook.
    let t = town("\n[budget]\ndaily_usd = 0.001\n");
    let first = t.create(
        "Spends",
        &["-d", "sim: ignore-nudges 2\nsim: edit spends.txt"],
    );
    let _up = Up::start(&t);
    t.gt().args(["sling", &first, "demo"]).assert().success();
    let who = agent_hook_of(&t, &first).unwrap();
    wait_for(&t, "the budget reached", || {
        feed(&t)
            .iter()
            .any(|e| e["kind"] == "budget" && e["subject"] == "town")
    });
    // GUPP nudges no more (it would within a few seconds: gupp_idle_after is 1s).
    let mark = feed(&t).iter().find(|e| e["kind"] == "budget").unwrap()["id"]
        .as_i64()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let nudges_after = |t: &TestTown| {
        feed(t)
            .iter()
            .filter(|e| {
                e["id"].as_i64().unwrap() > mark
                    && e["kind"] == "nudged"
                    && e["actor"] == "gupp"
                    && e["subject"] == who.as_str()
            })
            .count()
    };
    assert_eq!(nudges_after(&t), 0, "GUPP stops over the budget");
    let second = t.create("Refused", &["-d", "sim: edit refused.txt"]);
    let err = t.fails(&["sling", &second, "demo"], 1);
    assert!(
        err.contains("daily budget is spent") && err.contains("daily_usd"),
        "the refusal names the budget and how to raise it: {err}"
    );
    assert!(err.contains("town.toml"), "{err}");
    assert!(agent_hook_of(&t, &second).is_none());

    // A convoy that auto-dispatches gets nothing while the budget is spent.
    let parts: Vec<String> = (0..2)
        .map(|i| t.create(&format!("Part {i}"), &["-d", "sim: edit p.txt"]))
        .collect();
    let mut args = vec!["convoy", "create", "Parts"];
    args.extend(parts.iter().map(String::as_str));
    args.extend(["--auto-dispatch", "demo"]);
    t.gt().args(&args).assert().success();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !feed(&t).iter().any(|e| e["kind"] == "dispatched"),
        "nothing is dispatched over the budget"
    );

    // Raising the budget lets work go on (the engine reloads town.toml).
    let cfg = t.root().join("town.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("daily_usd = 0.001", "daily_usd = 1000.0");
    std::fs::write(&cfg, text).unwrap();
    t.gt().args(["sling", &second, "demo"]).assert().success();
    wait_for(&t, "auto-dispatch again", || {
        feed(&t).iter().any(|e| e["kind"] == "dispatched")
    });
    // ... and GUPP nudges the idle polecat into its work again.
    wait_for(&t, "the first bead's work", || submitted(&t, &first));
    assert!(nudges_after(&t) > 0);
}

fn agent_hook_of(t: &TestTown, bead: &str) -> Option<String> {
    t.json(&["agents"])
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["hooked_bead"] == bead)
        .map(|a| a["name"].as_str().unwrap().to_string())
}

/// The state letter of a process (`R`, `S`, `T` for stopped...), if it exists.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// The agents' session pids.
fn pids(t: &TestTown, names: &[&str]) -> Vec<i32> {
    names
        .iter()
        .filter_map(|n| agent(t, n)["pid"].as_i64().map(|p| p as i32))
        .collect()
}

#[test]
fn freeze_all_stops_every_agent_in_place_across_an_engine_restart_and_thaw_resumes_them() {
    let t = town("");
    let a = t.create("Stuck one", &["-d", "sim: stall"]);
    let b = t.create("Stuck two", &["-d", "sim: stall"]);
    let up = Up::start(&t);
    t.gt().args(["sling", &a, "demo"]).assert().success();
    t.gt().args(["sling", &b, "demo"]).assert().success();
    let names = [
        agent_hook_of(&t, &a).unwrap(),
        agent_hook_of(&t, &b).unwrap(),
    ];
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    wait_for(&t, "both running", || pids(&t, &names).len() == 2);

    let out = t.gt().args(["freeze", "--all"]).assert().success();
    let said = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(said.contains("processes are stopped"), "{said}");
    for pid in pids(&t, &names) {
        assert_eq!(proc_state(pid), Some('T'), "pid {pid} is stopped");
    }
    for n in &names {
        assert_eq!(agent(&t, n)["state"], "frozen");
        assert_eq!(agent(&t, n)["frozen"], true);
    }
    // Longer than stall_after (3 s): a frozen agent is never stalled, nudged or restarted.
    let mark = feed(&t).last().unwrap()["id"].as_i64().unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let after: Vec<Value> = feed(&t)
        .into_iter()
        .filter(|e| e["id"].as_i64().unwrap() > mark)
        .collect();
    assert!(
        !after
            .iter()
            .any(|e| names.contains(&e["subject"].as_str().unwrap_or(""))),
        "nothing happened to the frozen agents: {after:#?}"
    );
    // A nudge is refused with the reason.
    let err = t.fails(&["nudge", names[0], "wake up"], 1);
    assert!(err.contains("frozen"), "{err}");

    // A new engine starts them frozen.
    up.stop();
    let _up = Up::start(&t);
    wait_for(&t, "the agents started again, frozen", || {
        let p = pids(&t, &names);
        p.len() == 2 && p.iter().all(|pid| proc_state(*pid) == Some('T'))
    });
    t.gt().args(["thaw", "--all"]).assert().success();
    for pid in pids(&t, &names) {
        assert_ne!(proc_state(pid), Some('T'), "pid {pid} runs again");
    }
    assert_ne!(agent(&t, names[0])["state"], "frozen");
    let err = t.fails(&["freeze"], 2);
    assert!(
        err.contains("freeze: name an agent, or give --rig RIG or --all"),
        "{err}"
    );
}

#[test]
fn a_stalled_agent_runs_the_notify_command_once_with_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("notified");
    let t = town(&format!(
        "\n[notify]\ncommand = [\"sh\", \"-c\", \"env | grep ^GT_NOTIFY_ | sort >> '{}'; echo --- >> '{}'\"]\nevents = [\"stalled\"]\n",
        log.display(),
        log.display()
    ));
    let bead = t.create("Stuck", &["-d", "sim: stall"]);
    let _up = Up::start(&t);
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    let who = agent_hook_of(&t, &bead).unwrap();
    wait_for(&t, "the notification", || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.contains("---"))
    });
    // Stalled stays stalled (and is nudged and escalated): still one notification.
    std::thread::sleep(Duration::from_secs(4));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("---").count(), 1, "{text}");
    for want in [
        "GT_NOTIFY_KIND=stalled".to_string(),
        format!("GT_NOTIFY_AGENT={who}"),
        "GT_NOTIFY_RIG=demo".into(),
        format!("GT_NOTIFY_BEAD={bead}"),
    ] {
        assert!(text.lines().any(|l| l == want), "{want} in:\n{text}");
    }
    assert!(
        text.contains(&format!("GT_NOTIFY_TEXT={who} is stalled")),
        "{text}"
    );
}

/// Whether tmux is installed (the cockpit test needs it; CI installs it).
fn tmux() -> bool {
    let ok = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("GT_REQUIRE_PROGRAMS").is_none(),
            "tmux is required (GT_REQUIRE_PROGRAMS) but not installed"
        );
        eprintln!("SKIPPED: tmux is not installed");
    }
    ok
}

fn tmux_at(socket: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn the_cockpit_in_tmux_rings_when_an_agent_needs_the_overseer() {
    if !tmux() {
        return;
    }
    let t = town("");
    let bead = t.create("Stuck", &["-d", "sim: stall"]);
    let _up = Up::start(&t);
    let socket = t.dir.path().join("tmux.sock");
    let cockpit = format!(
        "env -u GT_TOWN HOME='{}' '{BIN}' --town '{}'",
        t.dir.path().display(),
        t.root().display()
    );
    tmux_at(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "c",
            "-x",
            "120",
            "-y",
            "40",
            &cockpit,
        ],
    );
    // A second window in front: tmux flags a bell in a window that is not shown.
    tmux_at(&socket, &["new-window", "-d", "-t", "c:1", "sleep 600"]);
    tmux_at(&socket, &["select-window", "-t", "c:1"]);
    let bell = || {
        tmux_at(
            &socket,
            &["display", "-p", "-t", "c:0", "#{window_bell_flag}"],
        )
    };
    wait_for(&t, "the cockpit drawn", || {
        tmux_at(&socket, &["capture-pane", "-p", "-t", "c:0"]).contains("Agents")
    });
    assert_eq!(bell().trim(), "0", "no bell before anything happened");
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    wait_for(&t, "the bell when the agent stalls", || {
        bell().trim() == "1"
    });
    tmux_at(&socket, &["kill-server"]);
}

#[test]
fn an_agent_over_its_beads_budget_is_frozen_and_the_overseer_told() {
    // The polite sim answers the first prompt without working (and reports that turn's usage,
    // about a cent): the bead's tenth of a cent is spent before any work.
    let t = town("\n[budget]\nper_bead_usd = 0.001\n");
    let bead = t.create("Pricey", &["-d", "sim: ignore-nudges 5\nsim: edit p.txt"]);
    let _up = Up::start(&t);
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    let who = agent_hook_of(&t, &bead).unwrap();
    wait_for(&t, "the agent frozen", || {
        agent(&t, &who)["state"] == "frozen"
    });
    assert_eq!(agent(&t, &who)["frozen"], true);
    let events = feed(&t);
    assert!(
        events.iter().any(|e| e["kind"] == "budget"
            && e["subject"] == bead.as_str()
            && e["detail"].as_str().unwrap_or("").contains("per_bead_usd")),
        "{events:#?}"
    );
    let inbox = t.json(&["mail", "inbox"]);
    assert!(
        inbox
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["subject"] == format!("{who} is over {bead}'s budget")),
        "{inbox:#}"
    );
    // Frozen, GUPP leaves it alone: no nudge after the freeze.
    let mark = feed(&t).last().unwrap()["id"].as_i64().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !feed(&t).iter().any(|e| e["id"].as_i64().unwrap() > mark
            && e["kind"] == "nudged"
            && e["subject"] == who.as_str()),
        "a frozen agent is not nudged"
    );
}
