//! Agents' terminals as users rely on them: history that survives what agents do to clear
//! it, and recordings that keep up without taking the engine's memory, through the real
//! binary (the engine, its socket, the cockpit in a PTY of our own).

mod common;

use common::{sim_town, status, Cockpit};
use std::time::{Duration, Instant};

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: i64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_recorder_slower_than_the_agent_leaves_the_engine_memory_bounded() {
    // The recorder writes 200 kB a second (a test hook standing for a slow disk) while the
    // agent prints as fast as it can: the agent is held back instead of its output piling up
    // in the engine. Unbounded, the backlog grew by the parse rate (megabytes a second).
    let t = sim_town();
    let script =
        r#"yes 'a long agent line: [32mok[m test_module::case_name ... passed in 0.01s'"#;
    t.gt()
        .args([
            "config", "runtime", "set", "flood", "--", "sh", "-c", script,
        ])
        .assert()
        .success();
    let up = t
        .gt()
        .arg("up")
        .env("GT_TEST_RECORDER_RATE", "200000")
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let engine = status(&t)["engine"]["pid"]
        .as_i64()
        .expect("the engine's pid");
    let base = rss_kib(engine);
    let bead = t.create("Flood", &[]);
    t.gt()
        .args(["sling", &bead, "demo", "--runtime", "flood"])
        .assert()
        .success();
    let logs = t.root().join("logs/furiosa");
    let cast = || {
        std::fs::read_dir(&logs)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "cast"))
    };
    let started = Instant::now();
    let mut peak = base;
    while started.elapsed() < Duration::from_secs(10) {
        peak = peak.max(rss_kib(engine));
        std::thread::sleep(Duration::from_millis(100));
    }
    let path = cast().expect("the agent's recording");
    let shown = t.gt().args(["capture", "furiosa"]).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    let written = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    t.gt().args(["down"]).assert().success();
    eprintln!("engine RSS {base} KiB before, peak {peak} KiB; recording {written} bytes in 10 s");
    assert!(
        shown.contains("test_module::case_name ... passed"),
        "the agent was flooding:\n{shown}"
    );
    assert!(
        peak < base + 16 * 1024,
        "the engine grew from {base} KiB to {peak} KiB"
    );
    // What was written is a valid recording, to its last line.
    let read = gastown_tui::agent::read_cast(&path).expect("a valid asciicast");
    assert!(read.output().contains("test_module::case_name ... passed"));
}

#[test]
fn history_reaches_the_first_line_past_a_clear_of_screen_and_scrollback() {
    // 3,000 numbered lines, then what `clear` prints (home, clear the screen, clear the
    // scrollback: Claude Code does the same), then more. The screen keeps 1,000 lines; the rest
    // is read back from the recording, and nothing the agent cleared is lost.
    let t = sim_town();
    let script = r#"seq -f 'numbered line %g.' 1 3000; printf '\033[H\033[2J\033[3J'; echo after the clear; sleep 600"#;
    t.gt()
        .args([
            "config", "runtime", "set", "printer", "--", "sh", "-c", script,
        ])
        .assert()
        .success();
    let bead = t.create("Print and clear", &[]);
    t.gt()
        .args(["sling", &bead, "demo", "--runtime", "printer"])
        .assert()
        .success();
    let c = Cockpit::open(&t, 45, 160);
    c.wait("the output after the clear", |s| {
        s.contains("after the clear")
    });

    let out = t
        .gt()
        .args(["capture", "furiosa", "--scrollback"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"numbered line 1."), "{text:.400}");
    let last = lines.iter().position(|l| *l == "numbered line 3000.");
    let after = lines.iter().position(|l| *l == "after the clear");
    assert!(
        last.is_some() && after > last,
        "the whole history, then the screen after the clear:\n{text:.400}"
    );
    let numbered = lines
        .iter()
        .filter(|l| l.starts_with("numbered line"))
        .count();
    assert_eq!(numbered, 3000, "every line once");

    // The drill-down: shift-Home goes to the session's first line, shift-End back to live.
    c.keys("\r");
    c.wait("the drill-down", |s| s.contains("ctrl-] back"));
    c.keys("\x1b[1;2H");
    let top = c.wait("the first line", |s| {
        s.contains("numbered line 1.") && s.contains("lines back")
    });
    assert!(!top.contains("after the clear"), "{top}");
    assert!(
        top.lines().any(|l| l.contains("numbered line 2.")),
        "the lines after it below it:\n{top}"
    );
    c.keys("\x1b[1;2F");
    c.wait("live again", |s| {
        s.contains("after the clear") && !s.contains("lines back")
    });
    c.keys("\x1d");
    c.keys("q");
    c.exited();
}
