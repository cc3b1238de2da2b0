//! Agents kept apart. An agent's identity comes from the worktree a command runs in, not only
//! from its environment: inside `<rig>/polecats/<name>` a command acts for that polecat, and
//! one whose `$GT_AGENT`, `$BD_ACTOR` or `$GT_BEAD` name another agent or bead is refused (the
//! environment of another agent leaked in, as a runtime's shared daemon does); outside any
//! agent's worktree the environment decides, as before. And nothing a session started outlives
//! it: a daemon it spawned (its own session, away from the terminal) ends when the session is
//! killed, and after an engine crash the next engine ends it.

mod common;

use common::{agent, capture, town_with_rig, use_sim, wait_for, TestTown, Up};
use std::time::Duration;

/// Slings a fresh bead that sleeps long to `demo`; the polecat's name and the bead.
fn sling_sleeper(t: &TestTown, title: &str) -> (String, String) {
    let bead = t.create(title, &["-d", "sim: sleep 600"]);
    let slung = t.json(&["sling", &bead, "demo"]);
    (slung["agent"].as_str().unwrap().to_string(), bead)
}

/// The binary in `dir` with exactly the given GT_/BD_ variables.
fn gt_in(t: &TestTown, dir: &std::path::Path, env: &[(&str, &str)]) -> assert_cmd::Command {
    let mut c = t.gt();
    c.current_dir(dir)
        .env_remove("GT_BEAD")
        .envs(env.iter().copied());
    c
}

#[test]
fn the_worktree_names_the_agent_and_a_disagreeing_environment_is_refused() {
    let t = town_with_rig();
    use_sim(&t, "");
    let (nux, gt_a) = sling_sleeper(&t, "First");
    let (slit, gt_b) = sling_sleeper(&t, "Second");
    let nux_dir = t.root().join("demo/polecats").join(&nux);
    let slit_dir = t.root().join("demo/polecats").join(&slit);
    // Deep inside the worktree, with no environment at all: the place says who.
    let sub = nux_dir.join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    let out = gt_in(&t, &sub, &[]).arg("prime").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains(&format!("# You are {nux}, the polecat")),
        "{text}"
    );
    assert!(text.contains(&gt_a), "{text}");
    // Its commands by the town binary's absolute path: found from a shell with any PATH.
    assert!(
        text.contains(&format!(
            "Run this town's commands as `{} ...`",
            common::BIN
        )) && text.contains(&format!("`{} done`", common::BIN)),
        "{text}"
    );

    // slit's environment in nux's worktree: done, prime, mail, claim, agent-event and handoff
    // are all refused, and nothing changes.
    // What the store holds, as the CLI shows it (the files change under a debounced flush).
    let state = |t: &TestTown| {
        ["feed", "agents", "mq", "bead list --limit 0"]
            .map(|c| t.json(&c.split(' ').collect::<Vec<_>>()))
    };
    let before = state(&t);
    for (var, value) in [
        ("GT_AGENT", slit.as_str()),
        ("BD_ACTOR", slit.as_str()),
        ("GT_BEAD", gt_b.as_str()),
    ] {
        for args in [
            &["done"][..],
            &["prime"],
            &["mail", "inbox"],
            &["bead", "claim", &gt_b],
            &["agent-event", "idle"],
            &["handoff"],
        ] {
            let out = gt_in(&t, &nux_dir, &[(var, value)])
                .args(args)
                .assert()
                .code(1);
            let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
            assert!(
                err.contains(&format!("is {nux}'s worktree, but ${var} says {value}"))
                    && err.contains("refusing to act for the wrong agent"),
                "{args:?} with {var}={value}: {err}"
            );
        }
    }
    assert_eq!(before, state(&t), "a refused command writes nothing");
    assert_eq!(agent(&t, &nux)["hooked_bead"], gt_a.as_str());
    assert_eq!(agent(&t, &slit)["hooked_bead"], gt_b.as_str());

    // The agent's own environment agrees: accepted.
    gt_in(
        &t,
        &slit_dir,
        &[("GT_AGENT", &slit), ("BD_ACTOR", &slit), ("GT_BEAD", &gt_b)],
    )
    .args(["mail", "inbox"])
    .assert()
    .success();
    // A person's own BD_ACTOR (bd users export one) is no agent of the town: the place says who.
    let out = gt_in(&t, &nux_dir, &[("BD_ACTOR", "alice")])
        .arg("prime")
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains(&format!("# You are {nux}")), "{text}");
    // `--as` says who acts outright (the overseer looking into a worktree).
    gt_in(&t, &nux_dir, &[("GT_AGENT", &slit)])
        .args(["--as", "overseer", "mail", "inbox"])
        .assert()
        .success();
    // Outside every worktree the environment decides, as before.
    let out = gt_in(&t, t.dir.path(), &[("GT_AGENT", &slit)])
        .arg("prime")
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains(&format!("# You are {slit}")), "{text}");
}

/// A runtime that mixes up the environment, as a shared daemon would: its shell exports
/// another polecat's GT_AGENT, BD_ACTOR and GT_BEAD and calls `done`. The engine's agent is
/// refused; the other polecat keeps its hook and nothing is submitted for it.
#[test]
fn done_refuses_when_a_runtime_hands_it_another_agents_environment() {
    let t = town_with_rig();
    use_sim(
        &t,
        "\n[patrol]\nwitness_every = \"200ms\"\ndeacon_every = \"300ms\"\ngupp_idle_after = \"60s\"\n",
    );
    let (victim, victims_bead) = sling_sleeper(&t, "Victim's work");
    let cfg = t.root().join("town.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[runtimes.mixed]\ncommand = [\"sh\", \"-c\", \"export GT_AGENT={victim} \
         BD_ACTOR={victim} GT_BEAD={victims_bead}; gastown-tui done; echo done-exit-$?; \
         exec sleep 600\"]\nprompt = \"argument\"\nready = 'done-exit'\n"
    ));
    std::fs::write(&cfg, text).unwrap();
    let bead = t.create("Mixed up", &[]);
    let _up = Up::start(&t);
    let slung = t.json(&["sling", &bead, "demo", "--runtime", "mixed"]);
    let mixed = slung["agent"].as_str().unwrap().to_string();
    wait_for(&t, "the mixed-up done to finish", || {
        capture(&t, &mixed).contains("done-exit-")
    });
    let screen = capture(&t, &mixed);
    assert!(
        screen.contains(&format!(
            "is {mixed}'s worktree, but $GT_AGENT says {victim}"
        )) && screen.contains("done-exit-1"),
        "{screen}"
    );
    assert_eq!(agent(&t, &victim)["hooked_bead"], victims_bead.as_str());
    assert_eq!(agent(&t, &mixed)["hooked_bead"], bead.as_str());
    assert!(
        t.json(&["mq"]).as_array().unwrap().is_empty(),
        "nothing was submitted for anyone"
    );
}

/// The live processes running `sleep <secs>` whose environment says they belong to `t`'s town.
fn sleepers(t: &TestTown, secs: &str) -> Vec<i32> {
    common::processes_with(
        &[format!("GT_TOWN={}", t.root().display())],
        Some(&["sleep", secs]),
    )
}

#[test]
fn a_daemon_a_session_started_ends_with_it_and_after_an_engine_crash() {
    let t = town_with_rig();
    use_sim(
        &t,
        "\n[patrol]\nwitness_every = \"200ms\"\ndeacon_every = \"300ms\"\n\
         [runtimes.leaky]\ncommand = [\"sh\", \"-c\", \"setsid sleep 7771 </dev/null \
         >/dev/null 2>&1 & echo leaky-ready; exec sleep 600\"]\nprompt = \"argument\"\n\
         ready = 'leaky-ready'\n",
    );
    let bead = t.create("Leaky", &[]);
    let mut up = Up::start(&t);
    let slung = t.json(&["sling", &bead, "demo", "--runtime", "leaky"]);
    let who = slung["agent"].as_str().unwrap().to_string();
    wait_for(&t, "the session's daemon", || {
        sleepers(&t, "7771").len() == 1
    });
    let first = sleepers(&t, "7771")[0];

    // Killed: the daemon, in a session of its own, goes with it.
    t.gt().args(["kill", &who]).assert().success();
    wait_for(&t, "the daemon to end with its session", || {
        !sleepers(&t, "7771").contains(&first)
    });

    // Started again, then the engine dies (kill -9): the daemon outlives it until the next
    // engine starts and ends what the dead engine's sessions left.
    t.gt().args(["restart", &who]).assert().success();
    wait_for(&t, "the new session's daemon", || {
        sleepers(&t, "7771").len() == 1
    });
    let second = sleepers(&t, "7771")[0];
    up.0.kill().unwrap();
    up.0.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        sleepers(&t, "7771").contains(&second),
        "a crash leaves the daemon running"
    );
    let up = Up::start(&t);
    wait_for(
        &t,
        "the next engine to end the dead engine's leftovers",
        || !sleepers(&t, "7771").contains(&second),
    );
    // Its agent is started again (its bead is still on its hook), with a daemon of its own.
    wait_for(&t, "the agent back with a new daemon", || {
        sleepers(&t, "7771").iter().any(|p| *p != second)
    });
    // The engine stopped (SIGTERM, as `down` does): its sessions' daemons go with it.
    assert!(up.stop().success());
    assert!(
        sleepers(&t, "7771").is_empty(),
        "{:?}",
        sleepers(&t, "7771")
    );
}
