//! The cockpit driven like a person drives it: the real binary in a real PTY (our own
//! `agent::Session`), keys typed, the screen read back as text.

mod common;

use common::{sim_town, Cockpit, TestTown};
use std::time::Duration;

#[test]
fn sling_drill_down_type_nudge_help_and_quit_with_the_keys() {
    let t = sim_town();
    let bead = t.create("Add a greeting", &["-d", "sim: edit hello.txt"]);

    let c = Cockpit::open(&t, 45, 160);
    assert!(c.screen().contains("No agents"), "{}", c.screen());

    // s: the sling dialog lists ready work; filter, pick the bead, the rig, the runtime.
    c.keys("s");
    c.wait("the sling dialog", |s| s.contains("Add a greeting"));
    c.keys("greet");
    c.keys("\r");
    c.wait("the rig step", |s| s.contains("demo"));
    c.keys("\r");
    c.wait("the runtime step", |s| s.contains("(default)"));
    c.keys("\r");
    c.wait("the polecat in the agents list", |s| s.contains("furiosa"));
    c.wait("the agent's terminal", |s| s.contains("sim>"));
    c.wait("the work done", |s| s.contains("Done:"));

    // enter: the agent's terminal full screen; what we type goes to the agent.
    c.keys("\r");
    c.wait("the drill-down view", |s| s.contains("ctrl-] back"));
    c.keys("hello from the cockpit\r");
    c.wait("the agent's echo", |s| {
        s.contains("you said: hello from the cockpit")
    });
    // ctrl-] comes back.
    c.keys("\x1d");
    c.wait("the cockpit again", |s| s.contains("s sling"));

    // n: nudge the selected agent.
    c.keys("n");
    c.wait("the nudge dialog", |s| s.to_lowercase().contains("nudge"));
    c.keys("keep going\r");
    c.wait("the nudge in the terminal", |s| {
        s.contains("you said: keep going")
    });

    // ?: help for the focused panel.
    c.keys("?");
    c.wait("the help", |s| s.contains("drill") && s.contains("sling"));
    c.keys("\x1b");
    std::thread::sleep(Duration::from_millis(200));

    // The bead is on furiosa's hook or already submitted; the store agrees with the screen.
    let shown = t.json(&["bead", "show", &bead]);
    assert_eq!(shown["assignee"], "furiosa");

    // :stop asks first; y stops the engine and its agents, and the cockpit exits cleanly.
    c.keys(":stop\r");
    c.wait("the stop confirmation", |s| {
        s.contains("Stop the town's engine?")
    });
    c.keys("y");
    let said = c.exited();
    assert!(said.contains("Stopped the engine of town"), "{said}");
    assert!(t.engine_pid().is_none(), "the engine is gone");
    let shown = t.json(&["bead", "show", &bead]);
    assert_eq!(shown["assignee"], "furiosa", "the hook stays");
}

#[test]
fn the_cockpit_works_at_80x24() {
    let t = TestTown::new();
    let c = Cockpit::open(&t, 24, 80);
    let screen = c.screen();
    assert!(screen.contains("Agents"), "{screen}");
    c.keys("?");
    c.wait("the help at 80x24", |s| {
        s.contains("help") || s.contains("Help")
    });
    c.keys("\x1b");
    c.keys("q");
    let said = c.exited();
    assert!(said.contains("Detached from town"), "{said}");
}

/// How a terminal reports a colour to `OSC 11;?`: `rgb:RRRR/GGGG/BBBB`.
fn osc_rgb(c: gastown_tui::agent::screen::Rgb) -> String {
    format!(
        "rgb:{:02x}{:02x}/{:02x}{:02x}/{:02x}{:02x}",
        c.0, c.0, c.1, c.1, c.2, c.2
    )
}

#[test]
fn agents_are_told_the_cockpit_themes_background() {
    use gastown_tui::ui::theme::Theme;
    let light = osc_rgb(Theme::builtin("light").unwrap().query_colors().background);
    let dark = osc_rgb(Theme::builtin("default").unwrap().query_colors().background);
    assert_ne!(light, dark);

    // An agent that asks its terminal for the background colour (as programs choosing a
    // light or dark palette do), then again once a file `go` appears in its worktree.
    let t = sim_town();
    let script = r#"ask() { stty raw -echo; printf '\033]11;?\033\\'; r=$(timeout --foreground 2 dd bs=1 count=25 2>/dev/null | tr '\033\007' '~~'); stty sane; printf 'answer %s: %s\n' "$1" "$r"; }; ask one; while [ ! -e go ]; do sleep 0.1; done; ask two; sleep 600"#;
    t.gt()
        .args([
            "config", "runtime", "set", "asker", "--", "sh", "-c", script,
        ])
        .assert()
        .success();
    let c = Cockpit::open(&t, 45, 160);
    c.keys(":theme light\r");
    c.wait("the light theme", |s| s.contains("theme light"));
    let bead = t.create("Ask the colours", &[]);
    t.gt()
        .args(["sling", &bead, "demo", "--runtime", "asker"])
        .assert()
        .success();
    c.wait("the first answer", |s| s.contains("answer one:"));
    let screen = c.screen();
    assert!(
        screen.contains(&light),
        "the agent was not told the light background {light}:\n{screen}"
    );

    // :theme changes what agents are told from then on.
    c.keys(":theme default\r");
    c.wait("the default theme", |s| s.contains("theme default"));
    std::fs::write(t.root().join("demo/polecats/furiosa/go"), "").unwrap();
    c.wait("the second answer", |s| s.contains("answer two:"));
    let screen = c.screen();
    let two = screen
        .lines()
        .find(|l| l.contains("answer two:"))
        .unwrap_or_default();
    assert!(
        two.contains(&dark),
        "after :theme default the agent was not told {dark}:\n{screen}"
    );
    c.keys("q");
    c.exited();
}
