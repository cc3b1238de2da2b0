//! The fleet outlives the window that shows it: the cockpit is a client of the town's engine,
//! driven as a user does (the real binary in PTYs of our own), with `status --json` and the
//! agents' processes as the witnesses.

mod common;

use common::{sim_town, status, Cockpit, TestTown};
use std::time::{Duration, Instant};

/// A town with rig `demo` and the sim as default runtime, and a bead that keeps its polecat
/// busy for a minute.
fn town() -> (TestTown, String) {
    let t = sim_town();
    let bead = t.create("Think a long time", &["-d", "sim: sleep 60"]);
    (t, bead)
}

/// How long a test waits for what a user would see at once.
const PATIENCE: Duration = Duration::from_secs(30);

fn wait(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn alive(pid: i64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The size (rows, cols) of the terminal a process runs in, read from its PTY.
fn pty_size(pid: i64) -> Option<(u16, u16)> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let tty = std::fs::read_link(format!("/proc/{pid}/fd/0")).ok()?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(tty)
        .ok()?;
    // SAFETY: TIOCGWINSZ fills the winsize it is given and touches nothing else.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some((ws.ws_row, ws.ws_col))
}

/// The agent terminal's size in a cockpit of `rows` x `cols`: as a pane, or full screen.
fn pane(rows: u16, cols: u16, full: bool) -> (u16, u16) {
    gastown_tui::ui::view::terminal_size(ratatui::layout::Rect::new(0, 0, cols, rows), full)
}

/// Waits up to `patience` for the agent's terminal (process `pid`) to be `want`.
fn wait_size(pid: i64, want: (u16, u16), what: &str, patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        let now = pty_size(pid);
        if now == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the agent's terminal is {now:?}, not {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The agents with a session (name, role, pid), from the agents list.
fn running(t: &TestTown) -> Vec<(String, String, i64)> {
    t.json(&["agents"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| {
            let pid = a["pid"].as_i64()?;
            Some((a["name"].as_str()?.into(), a["role"].as_str()?.into(), pid))
        })
        .collect()
}

/// An agent's pid, from the agents list.
fn pid_of(t: &TestTown, name: &str) -> i64 {
    running(t)
        .into_iter()
        .find(|a| a.0 == name)
        .map(|a| a.2)
        .unwrap_or_else(|| panic!("{name} has no pid"))
}

/// The polecat's pid, from the agents list.
fn polecat_pid(t: &TestTown) -> i64 {
    running(t)
        .into_iter()
        .find(|a| a.1 == "polecat")
        .map(|a| a.2)
        .expect("a polecat with a pid")
}

#[test]
fn q_detaches_the_agents_keep_working_and_a_second_cockpit_sees_them() {
    let (t, bead) = town();
    assert!(
        status(&t)["engine"].is_null(),
        "no engine before the cockpit"
    );

    // The cockpit starts the engine; sling from the keyboard.
    let c = Cockpit::open(&t, 45, 160);
    c.keys(&format!(":sling {bead} demo\r"));
    c.wait("the polecat thinking", |s| {
        s.contains("furiosa") && s.contains("think this through")
    });
    let st = status(&t);
    assert_eq!(st["engine"]["clients"], 1, "{st}");
    let pid = polecat_pid(&t);

    // q: detached at once, and it says so.
    c.keys("q");
    let said = c.exited();
    assert!(said.contains("running in its engine"), "{said}");
    assert!(said.contains("down"), "{said}");
    let st = status(&t);
    assert_eq!(st["engine"]["clients"], 0, "{st}");
    assert_eq!(st["agents"]["running"], 1, "{st}");
    assert!(alive(pid), "the agent's process outlived the cockpit");

    // Attach again: the same agent, its live terminal; two cockpits of different sizes.
    let big = Cockpit::open(&t, 45, 160);
    big.wait("the same session's screen", |s| {
        s.contains("furiosa") && s.contains("think this through")
    });
    let small = Cockpit::open(&t, 24, 80);
    small.wait("the agent at 80x24", |s| {
        s.contains("furiosa") && s.contains("think this through")
    });
    assert_eq!(status(&t)["engine"]["clients"], 2);
    assert_eq!(polecat_pid(&t), pid, "not restarted");
    // The agent's terminal follows the cockpit used last: the small one, just opened.
    wait_size(
        pid,
        pane(24, 80, false),
        "the 80x24 cockpit opened last",
        PATIENCE,
    );
    // What one does, the other sees: a sling from the small one shows in the big one.
    let second = t.create("Think some more", &["-d", "sim: sleep 60"]);
    small.keys(&format!(":sling {second} demo\r"));
    big.wait("the second polecat in the other cockpit", |s| {
        s.contains("Agents 2")
    });
    // Each has its own selection and drill-down.
    big.keys("\r");
    big.wait("the drill-down", |s| s.contains("ctrl-] back"));
    // The big one is used last now: the agent it shows full screen gets its full size, the
    // others its pane's.
    wait_size(
        pid,
        pane(45, 160, true),
        "furiosa full screen in the big cockpit",
        PATIENCE,
    );
    let mut nux = None;
    wait("the second polecat's session", || {
        nux = running(&t)
            .into_iter()
            .find(|a| a.1 == "polecat" && a.0 != "furiosa");
        nux.is_some()
    });
    let (_, _, nux_pid) = nux.expect("the second polecat");
    wait_size(nux_pid, pane(45, 160, false), "the other polecat", PATIENCE);
    let other = small.screen();
    assert!(
        other.contains("Agents 2") && !other.contains("ctrl-] back"),
        "the small one stays on its panels:\n{other}"
    );

    // kill -9 of one client and a hang-up of the other harm nothing.
    // SAFETY: signals to the cockpits' process ids.
    unsafe { libc::kill(small.s.pid().unwrap() as i32, libc::SIGKILL) };
    small
        .s
        .wait_timeout(Duration::from_secs(10))
        .expect("killed");
    big.s.kill().unwrap();
    big.s
        .wait_timeout(Duration::from_secs(10))
        .expect("hung up");
    wait("both clients gone", || status(&t)["engine"]["clients"] == 0);
    assert!(alive(pid), "the agent survived its clients");
    assert_eq!(status(&t)["agents"]["running"], 2, "both polecats run on");

    // down: everything stops, the hook stays.
    let out = t.gt().arg("down").output().unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Stopped the engine"), "{said}");
    assert!(status(&t)["engine"].is_null());
    wait("the agent's end", || !alive(pid));
    assert_eq!(t.json(&["bead", "show", &bead])["assignee"], "furiosa");
    let out = t.gt().arg("down").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("No engine is running"));
}

#[test]
fn a_dead_engine_is_reported_and_clients_reconnect_to_the_next() {
    let (t, bead) = town();
    let out = t.gt().arg("up").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Started the engine"));
    let again = t.gt().arg("up").output().unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("already running"));
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    let c = Cockpit::open(&t, 45, 160);
    c.wait("the polecat", |s| {
        s.contains("furiosa") && s.contains("think this through")
    });
    let first = polecat_pid(&t);

    let engine = t.engine_pid().expect("an engine");
    // SAFETY: a signal to the engine's pid.
    unsafe { libc::kill(engine, libc::SIGKILL) };
    c.wait("the cockpit saying so", |s| {
        s.contains("is gone") && s.contains("reconnecting")
    });

    // The next engine (here: `up`) restarts the hooked agent; the cockpit reconnects.
    t.gt().arg("up").assert().success();
    c.wait("the cockpit reconnected", |s| {
        s.contains("reconnected to the engine")
    });
    c.wait("the agent again", |s| {
        s.contains("furiosa") && s.contains("think this through")
    });
    let second = polecat_pid(&t);
    assert_ne!(first, second, "a new session for the hooked bead");
    assert!(status(&t)["engine"]["pid"].as_i64().unwrap() != i64::from(engine));
    c.keys("q");
    c.exited();
}

/// The agent named in the terminal pane's header (`┌ Agents N ──┬ NAME · polecat · ...`).
fn shown_agent(screen: &str) -> Option<String> {
    let (_, rest) = screen.lines().next()?.split_once('┬')?;
    let name = rest.trim_start().split([' ', '·']).next()?;
    (!name.is_empty() && !name.starts_with('─')).then(|| name.to_string())
}

#[test]
fn another_agent_appears_with_its_terminal_in_one_frame() {
    // The screen comes from the engine a moment after the header: no frame in between may
    // show the new agent's header over the words for an agent with no session.
    let t = sim_town();
    for i in 1..=3 {
        let bead = t.create(&format!("Stall {i}"), &["-d", "sim: stall"]);
        t.gt().args(["sling", &bead, "demo"]).assert().success();
    }
    let c = Cockpit::open(&t, 45, 160);
    c.wait("three agents, the first one's terminal", |s| {
        s.contains("Agents 3 ") && s.contains("Thinking")
    });
    wait("all three thinking", || running(&t).len() == 3);
    let mut names = std::collections::BTreeSet::new();
    for key in "jjkkjjkk".chars() {
        let before = shown_agent(&c.screen()).expect("an agent's header");
        c.s.write(key.to_string().as_bytes()).unwrap();
        let moved = c.frames(Duration::from_secs(5), |f| {
            let Some(now) = shown_agent(f).filter(|a| *a != before) else {
                return false;
            };
            assert!(
                !f.contains("has no running session"),
                "{now}'s header over no terminal:\n{f}"
            );
            assert!(
                f.contains("Thinking"),
                "{now}'s terminal is not shown:\n{f}"
            );
            names.insert(now);
            true
        });
        assert!(moved, "`{key}` showed no other agent:\n{}", c.screen());
    }
    assert_eq!(names.len(), 3, "every agent shown: {names:?}");
    c.keys("q");
    c.exited();
}

#[test]
fn keys_and_resizes_reach_the_agent_while_the_engine_waits_for_the_store() {
    let t = sim_town();
    let bead = t.create("Add a greeting", &["-d", "sim: edit hello.txt"]);
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    let c = Cockpit::open(&t, 45, 160);
    c.wait("the work done, the agent at its prompt", |s| {
        s.contains("Done:")
    });
    c.keys("\r");
    c.wait("the drill-down", |s| s.contains("ctrl-] back"));
    let pid = pid_of(&t, "furiosa");

    // Another process holds the store's write lock: the engine's loop waits on it (up to the
    // store's 30 s busy timeout) from its next heartbeat, within a second.
    let db = rusqlite::Connection::open(t.root().join(".beads/beads.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::thread::sleep(Duration::from_millis(1500));

    c.keys("typed while the store is locked\r");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c
        .screen()
        .contains("you said: typed while the store is locked")
    {
        assert!(
            Instant::now() < deadline,
            "the keys waited for the engine's loop:\n{}",
            c.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.s.resize(30, 100).unwrap();
    // Well inside the store's 30 s busy timeout that holds up the engine's loop.
    wait_size(
        pid,
        pane(30, 100, true),
        "the resize waited for the engine's loop",
        Duration::from_secs(10),
    );
    db.execute_batch("ROLLBACK").unwrap();
    c.keys("\x1d");
    c.keys("q");
    c.exited();
}

#[test]
fn attach_opens_one_agent_and_the_escape_key_detaches() {
    let (t, bead) = town();
    t.gt().arg("up").assert().success();
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    wait("the polecat's session", || !running(&t).is_empty());
    let a = Cockpit::spawn(&t, 30, 100, &["attach", "furiosa"]);
    a.wait("the agent full screen", |s| {
        s.contains("think this through") && s.contains("ctrl-] detach")
    });
    assert!(
        !a.screen().contains("Merge queue"),
        "only the agent's terminal"
    );
    a.keys("\x1d");
    let said = a.exited();
    assert!(said.contains("running in its engine"), "{said}");
    assert!(t.engine_pid().is_some(), "detaching stops nothing");

    let out = t.gt().args(["attach", "nobody"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody"));
}

#[test]
fn a_client_of_another_protocol_or_another_user_is_told_so() {
    use gastown_tui::server::protocol::{read_frame, write_frame, Welcome};
    let (t, _) = town();
    t.gt().arg("up").assert().success();
    let socket = std::fs::read_to_string(t.root().join(".beads/engine.socket")).unwrap();
    let socket = socket.trim().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let welcome: Welcome = rt.block_on(async {
        let mut s = tokio::net::UnixStream::connect(&socket).await.unwrap();
        let hello = br#"{"protocol": 999, "version": "9.9.9", "client": "cockpit"}"#;
        write_frame(&mut s, hello).await.unwrap();
        let frame = read_frame(&mut s).await.unwrap().unwrap();
        serde_json::from_slice(&frame).unwrap()
    });
    let why = welcome.error.expect("refused");
    assert!(
        why.contains("protocol 999") && why.contains("9.9.9"),
        "{why}"
    );

    // Another user: the socket's directory keeps them out; opened up, the uid check does.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: the uid check is covered by server::socket's unit test only");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = std::path::Path::new(&socket)
        .parent()
        .unwrap()
        .to_path_buf();
    // A copy of the binary that uid 65534 may run, wherever this checkout is.
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = bin_dir.path().join("gastown-tui");
    std::fs::copy(common::BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let probe = |label: &str| -> String {
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin)
            .args(["__probe", &socket])
            .output();
        match out {
            Ok(o) => format!(
                "{label}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("setpriv (util-linux) is needed to test another uid: {e}"),
        }
    };
    let shut = probe("closed dir");
    assert!(
        shut.contains("connect to the engine") && shut.contains("Permission denied"),
        "{shut}"
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let open = probe("open dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(open.contains("refused: uid 65534"), "{open}");
}

#[test]
fn the_drill_down_scrolls_back_through_the_engine_and_any_key_returns_to_live() {
    // The history lives in the engine's emulator: the cockpit asks for the view some lines
    // back and gets those rows.
    let t = sim_town();
    let bead = t.create("Print a lot", &["-d", "sim: flood 1"]);
    t.gt().args(["sling", &bead, "demo"]).assert().success();
    let c = Cockpit::open(&t, 45, 160);
    c.wait("the flood done, the agent at its prompt", |s| {
        s.contains("Streamed") && s.contains("Done:")
    });
    c.keys("\r");
    c.wait("the drill-down", |s| s.contains("ctrl-] back"));
    let live = c.screen();
    // shift-PageUp, three times: 30 lines back.
    c.keys("\x1b[5;2~\x1b[5;2~\x1b[5;2~");
    let back = c.wait("the view 30 lines back", |s| s.contains("↑ 30 lines back"));
    assert!(
        !back.contains("Done:"),
        "the live bottom lines are off the view:\n{back}"
    );
    assert!(back.contains("Compiling crate-"), "{back}");
    assert_ne!(back, live);
    // shift-PageDown comes 10 lines nearer; any other key (here: a letter) is live again.
    c.keys("\x1b[6;2~");
    c.wait("20 lines back", |s| s.contains("↑ 20 lines back"));
    c.keys("x");
    c.wait("live again", |s| {
        s.contains("Done:") && !s.contains("lines back")
    });
    c.keys("\x1d");
    c.keys("q");
    c.exited();
}
