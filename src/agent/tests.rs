//! Sessions on real PTYs (with `/bin/sh`), and the screen against tmux.

use super::*;
use crate::Error;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

fn quiet() -> Arc<dyn Fn() + Send + Sync> {
    Arc::new(|| {})
}

fn spec(program: &str, args: &[&str]) -> SessionSpec {
    let mut spec = SessionSpec::new(program, "/");
    spec.args = args.iter().map(|a| a.to_string()).collect();
    spec
}

fn sh(script: &str) -> Session {
    match Session::spawn(spec("sh", &["-c", script]), quiet()) {
        Ok(s) => s,
        Err(e) => panic!("spawn sh: {e}"),
    }
}

/// Polls `f` every few milliseconds until it holds or the deadline passes.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + DEADLINE;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_exit(s: &Session) -> Exit {
    match s.wait_timeout(DEADLINE) {
        Some(e) => e,
        None => panic!("no exit within {DEADLINE:?}; screen:\n{}", s.capture(false)),
    }
}

#[test]
fn sessions_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Session>();
    check::<Arc<Session>>();
}

#[test]
fn output_is_captured_and_the_exit_status_reported() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let s = Session::spawn(
        spec("sh", &["-c", "printf hello; sleep 0.2"]),
        Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .expect("spawn");
    assert!(s.pid().is_some());
    assert_eq!(s.exit_status(), None);
    let exit = wait_exit(&s);
    assert_eq!(
        exit,
        Exit {
            code: Some(0),
            signal: None,
            success: true
        }
    );
    // Output printed before the exit has been parsed by the time the exit is reported.
    assert!(
        s.capture(false).starts_with("hello\n"),
        "{}",
        s.capture(false)
    );
    assert_eq!(s.bytes_read(), 5);
    assert!(
        calls.load(Ordering::SeqCst) >= 2,
        "notified for output and exit"
    );
    assert!(
        s.write(b"x").is_err(),
        "writing to an ended session is refused"
    );

    let s = sh("exit 3");
    let exit = wait_exit(&s);
    assert_eq!((exit.code, exit.success), (Some(3), false));
    assert_eq!(exit.to_string(), "exited with code 3");
}

#[test]
fn a_missing_program_fails_at_spawn_naming_it() {
    let err =
        Session::spawn(spec("claudee-not-installed", &[]), quiet()).expect_err("spawn must fail");
    assert!(matches!(err, Error::BadInput(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "runtime command 'claudee-not-installed' not found on PATH"
    );

    let err = Session::spawn(spec("./bin/nope", &[]), quiet()).expect_err("spawn must fail");
    assert!(err.to_string().contains("'./bin/nope' not found"), "{err}");

    let mut with_path = spec("sh", &[]);
    with_path.env = vec![("PATH".into(), "/nonexistent-dir".into())];
    let err = Session::spawn(with_path, quiet()).expect_err("spawn must fail");
    assert!(err.to_string().contains("'sh' not found on PATH"), "{err}");

    let mut bad_cwd = spec("sh", &[]);
    bad_cwd.cwd = "/nonexistent-dir/x".into();
    let err = Session::spawn(bad_cwd, quiet()).expect_err("spawn must fail");
    assert!(matches!(err, Error::BadInput(_)), "{err:?}");
    assert!(err.to_string().contains("/nonexistent-dir/x"), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    let not_exec = dir.path().join("script");
    std::fs::write(&not_exec, "#!/bin/sh\n").expect("write");
    let err = Session::spawn(spec(&not_exec.to_string_lossy(), &[]), quiet())
        .expect_err("spawn must fail");
    assert!(err.to_string().contains("not an executable"), "{err}");
}

#[test]
fn environment_and_working_directory_reach_the_program() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = spec(
        "sh",
        &["-c", r#"printf '%s|%s|%s' "$TERM" "$GT_ROLE" "$(pwd)""#],
    );
    spec.cwd = dir.path().to_path_buf();
    spec.env = vec![("GT_ROLE".into(), "polecat".into())];
    let s = Session::spawn(spec, quiet()).expect("spawn");
    wait_exit(&s);
    let want = format!(
        "xterm-256color|polecat|{}",
        dir.path().canonicalize().expect("canonical").display()
    );
    assert!(s.capture(false).starts_with(&want), "{}", s.capture(false));
}

#[test]
fn resize_reaches_the_program() {
    let mut spec = spec("sh", &["-c", "sleep 0.3; stty size"]);
    spec.rows = 24;
    spec.cols = 80;
    let s = Session::spawn(spec, quiet()).expect("spawn");
    s.resize(40, 100).expect("resize");
    assert_eq!(s.size(), (40, 100));
    wait_exit(&s);
    assert!(
        s.capture(false).starts_with("40 100\n"),
        "{}",
        s.capture(false)
    );
    assert_eq!(s.with_screen(|screen| screen.size()), (40, 100));
}

#[test]
fn typed_input_reaches_the_program() {
    let s = Session::spawn(spec("cat", &[]), quiet()).expect("spawn");
    s.write(b"abc\n").expect("write");
    // The terminal echoes the line, then cat prints it.
    assert!(
        eventually(|| s.capture(false).starts_with("abc\nabc\n")),
        "{}",
        s.capture(false)
    );
    s.kill().expect("kill");
    let exit = wait_exit(&s);
    assert!(!exit.success && exit.signal.is_some(), "{exit:?}");
}

#[test]
fn kill_escalates_when_the_program_ignores_hangup() {
    let s = sh("trap '' HUP; exec sleep 20");
    // Let the trap be set before signalling.
    std::thread::sleep(Duration::from_millis(100));
    s.kill().expect("kill");
    s.kill().expect("a second kill is harmless");
    let exit = wait_exit(&s);
    assert!(!exit.success && exit.signal.is_some(), "{exit:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn dropping_a_session_ends_its_program() {
    let s = sh("exec sleep 20");
    let pid = s.pid().expect("pid");
    let proc_dir = format!("/proc/{pid}");
    assert!(Path::new(&proc_dir).exists());
    drop(s);
    assert!(
        eventually(|| !Path::new(&proc_dir).exists()),
        "process {pid} still there (or not reaped)"
    );
}

#[test]
fn terminal_queries_are_answered_through_the_pty() {
    // The program asks, reads the exact reply length in raw mode, and prints what it got
    // with ESC and BEL made visible.
    let script = r#"stty raw -echo
printf 'ab\033[6n'; r=$(dd bs=1 count=6 2>/dev/null)
printf '\033[c'; d=$(dd bs=1 count=9 2>/dev/null)
printf '\033[>c'; e=$(dd bs=1 count=10 2>/dev/null)
printf '\033]11;?\007'; o=$(dd bs=1 count=24 2>/dev/null)
stty sane
printf '\r\n[%s][%s][%s][%s]\r\n' "$r" "$d" "$e" "$o" | tr '\033\007' 'EG'"#;
    let s = sh(script);
    let exit = wait_exit(&s);
    assert!(exit.success, "{exit:?}");
    let text = s.capture(false);
    assert!(
        text.contains("[E[1;3R][E[?62;22c][E[>1;10;0c][E]11;rgb:0000/0000/0000G]"),
        "{text}"
    );
}

#[test]
fn a_screen_held_by_a_reader_stalls_only_its_own_agent() {
    // A view holding one agent's screen (as a frame being sent does) while that agent floods:
    // another agent's output is still parsed meanwhile.
    let busy = sh("stty -echo; while :; do echo flooding the terminal; done");
    assert!(
        eventually(|| busy.bytes_read() > 10_000),
        "the flood started"
    );
    let other = sh("stty -echo; sleep 0.3; echo marker-from-the-other; sleep 30");
    let held = busy.with_screen(|_| {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if other.capture(false).contains("marker-from-the-other") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    });
    assert!(
        held,
        "the other agent's output was not parsed while the busy one's screen was held"
    );
}

#[test]
fn a_flood_is_read_in_full_while_others_use_the_session() {
    const TOTAL: u64 = 20_000_000;
    let s = Arc::new(sh("stty -echo; head -c 20000000 /dev/zero | tr '\\0' x"));
    let done = Arc::new(AtomicBool::new(false));
    let observer = {
        let s = Arc::clone(&s);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            // Count calls that completed while the flood was still being read.
            let mut during = 0u32;
            while !done.load(Ordering::SeqCst) {
                let before = s.bytes_read();
                let text = s.capture(false);
                // Input only once output flows (after `stty -echo`), so nothing is echoed.
                let writable = before > 0 && s.write(b"k").is_ok();
                let after = s.bytes_read();
                if before > 0 && after < TOTAL && writable && !text.is_empty() {
                    during += 1;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            during
        })
    };
    let exit = s.wait_timeout(Duration::from_secs(60));
    done.store(true, Ordering::SeqCst);
    let during = observer.join().expect("observer");
    assert!(exit.as_ref().is_some_and(|e| e.success), "{exit:?}");
    assert_eq!(s.bytes_read(), TOTAL);
    assert!(
        during >= 3,
        "capture/write completed only {during} times during the flood"
    );
    let text = s.capture(false);
    assert!(text.lines().all(|l| l.chars().all(|c| c == 'x')), "{text}");
    assert_eq!(text.lines().filter(|l| l.len() == 80).count(), 24);
}

#[test]
fn a_recording_holds_everything_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("town/logs/nux.cast");
    let mut spec = spec(
        "sh",
        &[
            "-c",
            r"printf 'a\342'; sleep 0.1; printf '\202\254b'; sleep 0.3; printf 'c\033[1md'",
        ],
    );
    spec.recording = Some(path.clone());
    spec.title = "nux · polecat".into();
    let s = Session::spawn(spec, quiet()).expect("spawn");
    assert_eq!(s.recording_path(), Some(path.as_path()));
    std::thread::sleep(Duration::from_millis(50));
    s.resize(30, 100).expect("resize");
    wait_exit(&s);

    let cast = read_cast(&path).expect("read cast");
    assert_eq!(
        (cast.header.version, cast.header.width, cast.header.height),
        (2, 80, 24)
    );
    assert_eq!(cast.header.title.as_deref(), Some("nux · polecat"));
    assert_eq!(
        cast.header.env.get("TERM").map(String::as_str),
        Some("xterm-256color")
    );
    assert!(cast.header.timestamp.is_some_and(|t| t > 1_600_000_000));
    assert_eq!(cast.output(), "a\u{20ac}bc\x1b[1md");
    let resizes: Vec<_> = cast.events.iter().filter_map(CastEvent::resize).collect();
    assert_eq!(resizes, vec![(30, 100)]);
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(path.parent().expect("parent"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);

    // Replaying the cast gives the screen the session showed.
    let replayed = crate::agent::history::capture(&path, None, false).expect("replay");
    assert_eq!(replayed, s.capture(false));
}

// ---------------------------------------------------------------------------------------------
// The same bytes through tmux and through a session must show the same text.

/// Colours, cursor movement, erasing, insert/delete characters, wide characters, combining
/// characters, Unicode line drawing, autowrap.
fn fixture_drawing() -> Vec<u8> {
    let mut f = String::from("\x1b[H\x1b[2J");
    f += "\x1b[1;31mred bold\x1b[0m normal \x1b[42;30mgreen bg\x1b[m\r\n";
    f += "\x1b[38;5;208m256-colour\x1b[m \x1b[38;2;10;200;30mtruecolour\x1b[m \x1b[7minverse\x1b[27m\r\n";
    f += "\x1b[5;10Hat 5,10\x1b[3;1Hrow three\x1b[2Cskip\x1b[1Dback";
    f += "\x1b[7;1Hline whose tail is erased\x1b[7;11H\x1b[K";
    f += "\x1b[8;1Habcdefghij\x1b[8;3H\x1b[2P\x1b[8;1H\x1b[3@";
    f += "\x1b[9;1H0123456789\x1b[9;4H\x1b[3X\x1b[9;20Hright\x1b[1K";
    f += "\x1b[10;1Ha\tb\tc\x1b[10;40H\x1b[1J";
    f += "\x1b[11;1H漢字テスト mixed 漢a字b";
    f += "\x1b[12;1H┌──────┐\r\n│ box  │\r\n└──────┘\x1b[13;12H├─┼─┤";
    f += "\x1b[16;1H";
    f += &"0123456789".repeat(13);
    f += "\x1b[19;75H漢字漢字漢";
    f += "\x1b[21;1Hcombining: e\u{301}a\u{308} done";
    f += "\x1b[22;5H\x1b[1;4mbold underline\x1b[m\x1b[22;3H\x1b[2@>";
    f += "\x1b[23;1Hlast\x1b[E(cnl)\x1b[24;78Hxyz";
    f += "\x1b[2;60Habc\x1b[3Gcha";
    f.into_bytes()
}

/// A scroll region (as Codex draws): scrolling inside it, reverse index at its top, insert and
/// delete lines, then the region reset.
fn fixture_scroll_region() -> Vec<u8> {
    let mut f = String::from("\x1b[H\x1b[2Jheader line\r\n\x1b[24;1Hfooter line");
    f += "\x1b[3;20r\x1b[3;1H";
    for i in 0..40 {
        f += &format!("\x1b[3{}mregion line {i}\x1b[m\r\n", i % 8);
    }
    f += "\x1b[3;1H\x1bM\x1bMinserted at top";
    f += "\x1b[10;1H\x1b[2Lafter insert";
    f += "\x1b[15;1H\x1b[3Mafter delete";
    f += "\x1b[20;1H\x1b[2Sscrolled up";
    f += "\x1b[5;1H\x1b[1Tscrolled down";
    f += "\x1b[r\x1b[21;1Houtside region\x1b[22;1H\x1b[1L\x1b[23;1Hbelow";
    f.into_bytes()
}

/// A scroll region from the top row with a footer below it, as Codex draws: rows scrolled
/// out of it go to the history, in tmux as here.
fn fixture_top_region() -> Vec<u8> {
    let mut f = String::from("\x1b[H\x1b[2J\x1b[23;1H\x1b[7m status line \x1b[m\x1b[24;1H> prompt");
    f += "\x1b[1;20r\x1b[20;1H";
    for i in 0..45 {
        f += &format!("\r\n\x1b[3{}mtranscript line {i}\x1b[m", i % 8);
    }
    f += "\x1b[3S\x1b[r\x1b[24;10H";
    f.into_bytes()
}

/// DEC special graphics through G0 and G1, as dialog and mc draw boxes without UTF-8.
fn fixture_dec_graphics() -> Vec<u8> {
    let mut f = String::from("\x1b[H\x1b[2J\x1b(0lqqqqk\x1b(B\r\n");
    f += "\x1b(0x\x1b(B box \x1b(0x\x1b(B\r\n\x1b(0mqqqqj\x1b(B\r\n";
    f += "\x1b)0\x0etuvwn~`af\x0f plain again\r\n";
    f += "\x1b(0\x1b7\x1b(Bq\x1b8q\x1b(B\r\n";
    f.into_bytes()
}

/// Agent-like frames: synchronized updates, clear screen and scrollback, a box, a spinner
/// redrawn with `\r`, the alternate screen entered and left.
fn fixture_frames() -> Vec<u8> {
    let spinner = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let mut f = String::from("before the frames\r\n");
    for n in 0..60 {
        f += "\x1b[?2026h\x1b[H\x1b[2J\x1b[3J";
        f += &format!("\x1b[1m╭{}╮\x1b[m\r\n", "─".repeat(40));
        for line in 0..(n % 7) {
            f += &format!(
                "│ \x1b[32m✓\x1b[m tool call {line} of frame {n:>3}{}│\r\n",
                " ".repeat(12)
            );
        }
        f += &format!("╰{}╯\r\n", "─".repeat(40));
        for k in 0..5 {
            f += &format!(
                "\r\x1b[K{} Thinking… ({n}.{k}s)",
                spinner[(n + k) % spinner.len()]
            );
        }
        f += "\x1b[?2026l";
    }
    f += "\r\n\x1b[?1049h\x1b[H\x1b[2Jalternate screen text\x1b[?1049l";
    f += "\r\n\x1b[36m❯\x1b[m ";
    f.into_bytes()
}

/// Plain scrolling output with wrapping lines, colours and wide characters.
fn fixture_scrolling() -> Vec<u8> {
    let mut f = String::new();
    for i in 0..150 {
        let len = (i * 37) % 190;
        let body: String = (0..len)
            .map(|k| char::from(b'a' + (k % 26) as u8))
            .collect();
        f += &format!("\x1b[3{}m{i:03}\x1b[m {body}", i % 8);
        if i % 11 == 0 {
            f += " 全角文字が続く行 全角文字が続く行 全角文字が続く行 全角文字が続く行 全角";
        }
        f += "\r\n";
    }
    f += "$ ";
    f.into_bytes()
}

/// A private tmux server; its socket lives in the test's temporary directory.
struct Tmux {
    socket: std::path::PathBuf,
    config: std::path::PathBuf,
    /// The test's temporary directory, removed after the server is killed.
    dir: tempfile::TempDir,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("tmux")
            .arg("-u")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.config)
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .env_remove("TMUX")
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Tmux {
    /// A new detached session of 80x24 running `command`; false if tmux could not start it.
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn new_pane(&self, target: &str, command: &str) -> bool {
        self.run(&[
            "new-session",
            "-d",
            "-x",
            "80",
            "-y",
            "24",
            "-s",
            target,
            command,
        ])
        .is_some()
    }

    /// The pane's screen as it looks (see [`tmux_screen_text`]), with the history first.
    fn screen(&self, target: &str, history: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-e"];
        if history {
            args.extend(["-S", "-"]);
        }
        args.extend(["-t", target]);
        self.run(&args)
            .map(|t| tmux_screen_text(&t))
            .unwrap_or_default()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Our capture of `file`'s bytes, through a real PTY like tmux's (no echo: a reply to a
/// query in the bytes must not show up on the screen).
fn our_capture(file: &Path, scrollback: bool) -> String {
    let script = format!("stty -echo; cat '{}'", file.display());
    let s = Session::spawn(spec("sh", &["-c", &script]), quiet()).expect("spawn cat");
    wait_exit(&s);
    s.capture(scrollback)
}

fn compare(name: &str, ours: &str, theirs: &str) -> Vec<String> {
    let ours: Vec<&str> = ours.lines().collect();
    let theirs: Vec<&str> = theirs.lines().collect();
    let mut diffs = Vec::new();
    for i in 0..ours.len().max(theirs.len()) {
        let (a, b) = (ours.get(i), theirs.get(i));
        if a != b {
            diffs.push(format!("{name} row {i}:\n  ours: {a:?}\n  tmux: {b:?}"));
        }
    }
    diffs
}

/// tmux's `capture-pane -p -e` as it looks on the screen: escape sequences left out, and the
/// cells tmux keeps in the DEC graphics set (between SO and SI) drawn as their characters.
fn tmux_screen_text(escaped: &str) -> String {
    let mut out = String::new();
    let mut graphics = false;
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        match c {
            '\x0e' => graphics = true,
            '\x0f' => graphics = false,
            '\x1b' => {
                // CSI sequences (SGR, mostly) and OSC hyperlinks.
                match chars.next() {
                    Some('[') => {
                        for p in chars.by_ref() {
                            if ('\x40'..='\x7e').contains(&p) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        while let Some(p) = chars.next() {
                            if p == '\x07' || (p == '\x1b' && chars.next() == Some('\\')) {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            c if graphics && ('\x5f'..='\x7e').contains(&c) => out.push(dec_graphic(c as u8)),
            c => out.push(c),
        }
    }
    // Without `-e` tmux trims the spaces that end a row; with it, only those without
    // attributes.
    out.lines()
        .map(|l| format!("{}\n", l.trim_end_matches(' ')))
        .collect()
}

/// The DEC special graphics character set, bytes 0x5f..=0x7e.
fn dec_graphic(b: u8) -> char {
    const TABLE: [char; 32] = [
        ' ',        // _ blank
        '\u{25c6}', // ` diamond
        '\u{2592}', // a checkerboard
        '\u{2409}', // b HT
        '\u{240c}', // c FF
        '\u{240d}', // d CR
        '\u{240a}', // e LF
        '\u{00b0}', // f degree
        '\u{00b1}', // g plus/minus
        '\u{2424}', // h NL
        '\u{240b}', // i VT
        '\u{2518}', // j lower right corner
        '\u{2510}', // k upper right corner
        '\u{250c}', // l upper left corner
        '\u{2514}', // m lower left corner
        '\u{253c}', // n crossing lines
        '\u{23ba}', // o scan line 1
        '\u{23bb}', // p scan line 3
        '\u{2500}', // q horizontal line
        '\u{23bc}', // r scan line 7
        '\u{23bd}', // s scan line 9
        '\u{251c}', // t left tee
        '\u{2524}', // u right tee
        '\u{2534}', // v bottom tee
        '\u{252c}', // w top tee
        '\u{2502}', // x vertical line
        '\u{2264}', // y less or equal
        '\u{2265}', // z greater or equal
        '\u{03c0}', // { pi
        '\u{2260}', // | not equal
        '\u{00a3}', // } pound
        '\u{00b7}', // ~ centred dot
    ];
    TABLE
        .get(usize::from(b.wrapping_sub(0x5f)))
        .copied()
        .unwrap_or(' ')
}

/// A private tmux server for comparing screens, with `history-limit 5000`, in a temporary
/// directory of its own ([`Tmux::dir`]); `None` (and a line saying so) when tmux is not
/// installed.
fn tmux_for(test: &str) -> Option<Tmux> {
    if !tmux_available() {
        not_installed(test, &["tmux"]);
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tmux.conf");
    std::fs::write(
        &config,
        "set -g status off\nset -g history-limit 5000\nset -g default-terminal xterm-256color\n",
    )
    .expect("config");
    Some(Tmux {
        socket: dir.path().join("tmux.sock"),
        config,
        dir,
    })
}

/// Fails with every row that differs from tmux's.
fn assert_same_as_tmux(diffs: &[String]) {
    assert!(
        diffs.is_empty(),
        "differences from tmux:\n{}",
        diffs.join("\n")
    );
}

/// Shows `bytes` in a tmux pane of 80x24 and on our screen through the same kind of PTY;
/// returns the rows that differ (with the history too, if asked).
fn differences_from_tmux(tmux: &Tmux, name: &str, bytes: &[u8], with_history: bool) -> Vec<String> {
    let file = tmux.dir().join(format!("{}.bin", name.replace(' ', "-")));
    let mut content = bytes.to_vec();
    content.extend_from_slice(b"\x1b]2;fixture-done\x07");
    std::fs::write(&file, &content).expect("fixture");
    let command = format!("stty -echo; cat '{}'; sleep 30", file.display());
    let target = format!("cmp-{}", name.replace(' ', "-"));
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-x",
        "80",
        "-y",
        "24",
        "-s",
        &target,
        &command,
    ]);
    assert!(
        started.is_some(),
        "tmux could not start a session for {name}"
    );
    let size = tmux.run(&[
        "display",
        "-p",
        "-t",
        &target,
        "#{pane_height}x#{pane_width}",
    ]);
    assert_eq!(size.as_deref().map(str::trim), Some("24x80"));
    let done = eventually(|| {
        tmux.run(&["display", "-p", "-t", &target, "#{pane_title}"])
            .is_some_and(|t| t.trim() == "fixture-done")
    });
    assert!(done, "tmux did not finish {name}");
    let theirs = tmux.screen(&target, false);
    let mut diffs = compare(name, &our_capture(&file, false), &theirs);
    if with_history {
        let theirs = tmux.screen(&target, true);
        diffs.extend(compare(
            &format!("{name} (history)"),
            &our_capture(&file, true),
            &theirs,
        ));
    }
    diffs
}

#[test]
fn capture_matches_tmux_for_the_same_bytes() {
    let Some(tmux) = tmux_for("capture_matches_tmux_for_the_same_bytes") else {
        return;
    };
    let fixtures: [(&str, Vec<u8>, bool); 6] = [
        ("drawing", fixture_drawing(), false),
        ("scroll-region", fixture_scroll_region(), false),
        ("top-region", fixture_top_region(), true),
        ("frames", fixture_frames(), false),
        ("scrolling", fixture_scrolling(), true),
        ("dec-graphics", fixture_dec_graphics(), false),
    ];
    let mut diffs = Vec::new();
    for (name, bytes, with_history) in &fixtures {
        diffs.extend(differences_from_tmux(&tmux, name, bytes, *with_history));
    }
    assert_same_as_tmux(&diffs);
}

/// A program's output as it ran in a terminal of 80x24 (xterm-256color) until `marker` was on
/// its screen and the screen settled: the bytes of its recording.
fn recorded_run(dir: &Path, name: &str, script: &str, marker: &str) -> Vec<u8> {
    let cast = dir.join(format!("{}.cast", name.replace(' ', "-")));
    let mut spec = spec("sh", &["-c", script]);
    spec.rows = 24;
    spec.cols = 80;
    spec.recording = Some(cast.clone());
    spec.env = vec![
        ("TERM".into(), "xterm-256color".into()),
        ("LC_ALL".into(), "C.UTF-8".into()),
        ("HOME".into(), dir.display().to_string()),
    ];
    let s = Session::spawn(spec, quiet()).expect("spawn the program");
    let shown = settled(|| s.capture(false), marker);
    assert!(
        shown.is_some(),
        "{name} did not show {marker:?}:\n{}",
        s.capture(false)
    );
    let _ = s.kill();
    let _ = s.wait_timeout(DEADLINE);
    drop(s);
    let cast = crate::agent::read_cast(&cast).expect("read the recording");
    cast.events
        .iter()
        .filter(|e| e.kind == crate::agent::EventKind::Output)
        .flat_map(|e| e.data.as_bytes().iter().copied())
        .collect()
}

/// Full-screen programs whose screens change from run to run (clocks, process lists): one
/// run is recorded, and its bytes are shown in tmux and here.
#[test]
fn full_screen_programs_look_as_they_do_in_tmux() {
    let Some(tmux) = tmux_for("full_screen_programs_look_as_they_do_in_tmux") else {
        return;
    };
    let dir = tmux.dir();
    let mut programs: Vec<(&str, &str, &str)> = Vec::new();
    let mut missing = Vec::new();
    for (name, script, marker) in [
        ("top", "top -d 0.5", "PID"),
        ("htop", "htop -d 5", "Quit"),
        ("mc", "mc --nosubshell --nocolor -X || mc --nosubshell -X", "Command"),
        (
            "dialog",
            "dialog --title Pick --menu 'Pick a rig' 14 50 4 gastown 'the town' beads 'the store' 2>/dev/null",
            "the store",
        ),
        (
            "dialog checklist",
            "dialog --colors --checklist '\\Z1Which\\Zn agents?' 12 50 3 claude on on codex '' off gemini '' off 2>/dev/null",
            "gemini",
        ),
    ] {
        let program = name.split(' ').next().unwrap_or(name);
        if program_available(program) {
            programs.push((name, script, marker));
        } else {
            missing.push(program);
        }
    }
    not_installed("full_screen_programs_look_as_they_do_in_tmux", &missing);
    let mut diffs = Vec::new();
    for (name, script, marker) in programs {
        let bytes = recorded_run(dir, name, script, marker);
        diffs.extend(differences_from_tmux(&tmux, name, &bytes, false));
    }
    assert_same_as_tmux(&diffs);
}

/// Says which programs a test could not run for lack of them; with `GT_REQUIRE_PROGRAMS` set
/// (as CI does, after installing them) that is a failure.
fn not_installed(test: &str, missing: &[&str]) {
    if missing.is_empty() {
        return;
    }
    let what = missing.join(", ");
    assert!(
        std::env::var_os("GT_REQUIRE_PROGRAMS").is_none(),
        "{test}: not installed: {what} (GT_REQUIRE_PROGRAMS is set)"
    );
    eprintln!("SKIPPED in {test}: not installed: {what}");
}

fn program_available(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Polls `read` until it returns the same non-empty text twice, 150 ms apart, containing
/// `marker`.
fn settled(mut read: impl FnMut() -> String, marker: &str) -> Option<String> {
    let end = Instant::now() + DEADLINE;
    let mut last = String::new();
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(150));
        let now = read();
        if now.contains(marker) && now == last {
            return Some(now);
        }
        last = now;
    }
    None
}

#[test]
fn real_programs_look_as_they_do_in_tmux() {
    let Some(tmux) = tmux_for("real_programs_look_as_they_do_in_tmux") else {
        return;
    };
    let dir = tmux.dir();
    let text = dir.join("notes.txt");
    let mut body = String::new();
    for i in 0..60 {
        body += &format!(
            "{i:02}\tline with a tab, some UTF-8 (漢字, é) and length {}",
            i * 3
        );
        body += &"-".repeat(i * 3 % 97);
        body += "\n";
    }
    std::fs::write(&text, body).expect("text");
    let repo = dir.join("repo");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    std::fs::create_dir(&repo).expect("repo dir");
    let have_repo = program_available("git")
        && git(&["init", "-q", "-b", "main"])
        && git(&["commit", "-q", "--allow-empty", "-m", "root"])
        && git(&["checkout", "-q", "-b", "side"])
        && git(&["commit", "-q", "--allow-empty", "-m", "side work"])
        && git(&["checkout", "-q", "main"])
        && git(&["commit", "-q", "--allow-empty", "-m", "main work"])
        && git(&["merge", "-q", "--no-ff", "-m", "merge side", "side"]);

    let file = text.display().to_string();
    let env = "env LC_ALL=C.UTF-8 LESSHISTFILE=- LESS= LESSOPEN= TERM=xterm-256color";
    let mut programs: Vec<(&str, String, &str)> = vec![];
    let missing: Vec<&str> = ["vim", "less", "git"]
        .into_iter()
        .filter(|p| !program_available(p))
        .collect();
    not_installed("real_programs_look_as_they_do_in_tmux", &missing);
    if program_available("vim") {
        programs.push((
            "vim",
            format!("{env} vim -u NONE -i NONE -n -N '{file}'"),
            "notes.txt",
        ));
    }
    if program_available("less") {
        programs.push(("less", format!("{env} less '{file}'"), "notes.txt"));
    }
    if have_repo {
        programs.push((
            "git log --graph",
            format!(
                "cd '{}' && {env} git --no-pager log --graph --oneline --decorate=no; echo log-done",
                repo.display()
            ),
            "log-done",
        ));
    }
    let mut diffs = Vec::new();
    for (n, (name, command, marker)) in programs.iter().enumerate() {
        let target = format!("real{n}");
        let with_sleep = format!("{command}; sleep 30");
        assert!(
            tmux.new_pane(&target, &with_sleep),
            "tmux could not start a session for {name}"
        );
        let theirs = settled(|| tmux.screen(&target, false), marker)
            .unwrap_or_else(|| panic!("{name} did not settle in tmux"));
        let session = sh(&with_sleep);
        let ours = settled(|| session.capture(false), marker)
            .unwrap_or_else(|| panic!("{name} did not settle here:\n{}", session.capture(false)));
        diffs.extend(compare(name, &ours, &theirs));
    }
    assert_same_as_tmux(&diffs);
}

#[test]
fn input_to_a_program_that_is_gone_or_not_reading_is_refused_by_kind() {
    // It exited: nothing reads its input.
    let s = sh("exit 0");
    wait_exit(&s);
    match s.write(b"hello\r") {
        Err(Error::SessionGone { program, how }) => {
            assert_eq!(program, "sh");
            assert_eq!(how, "exited with code 0");
        }
        other => panic!("expected SessionGone, got {other:?}"),
    }
    // It never reads: the terminal's buffer fills, then the queue before it does.
    let s = sh("stty -icanon -echo; sleep 60");
    let chunk = vec![b'x'; 4096];
    let mut refused = None;
    for _ in 0..super::session::INPUT_QUEUE * 4 {
        match s.write(&chunk) {
            Ok(()) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    match refused {
        Some(Error::InputQueueFull { program }) => assert_eq!(program, "sh"),
        other => panic!("expected InputQueueFull, got {other:?}"),
    }
    let _ = s.kill();
}
