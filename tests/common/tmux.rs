//! Do the real agents' screens look here as they do in tmux? For tests/real_*.rs.
//!
//! A session records its output (`SessionSpec.recording`, see [`recording_in`]). At a settled
//! moment ([`Looks::at`]: the screen shows what the test waits for and nothing was printed
//! for [`QUIET`]) the bytes recorded so far are
//!
//! - fed to a fresh [`Screen`] of the session's size: its capture must be the session's own
//!   capture at that moment (the recording holds exactly what the session parsed);
//! - shown in a tmux pane of the same size (a private server: its own socket and config in a
//!   temporary directory) running `stty raw -echo; cat FILE`: `raw` passes the bytes on as
//!   they were recorded (they went through the agent's terminal already, with its output
//!   processing on or off), `-echo` keeps tmux's replies to the queries in them off the
//!   screen. tmux's `capture-pane -p -e` is read as text (escapes left out, the DEC graphics
//!   between SO and SI drawn as their characters) and compared with the fresh screen's
//!   capture row by row.
//!
//! The only normalisation is of the capture format: spaces that end a row are trimmed on both
//! sides (our capture never keeps them; tmux's `-e` keeps those with attributes).
//!
//! A recording with a resize in it fails: a replay at one size would not be fair.

use gastown_tui::agent::{read_cast, EventKind, Screen, Session, DEFAULT_SCROLLBACK};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a session must have printed nothing for its screen to count as settled.
pub const QUIET: Duration = Duration::from_secs(1);

/// A fresh recording path in `dir` (for `SessionSpec.recording`).
pub fn recording_in(dir: &Path) -> PathBuf {
    (0..)
        .map(|n| dir.join(format!("screen-{n}.cast")))
        .find(|p| !p.exists())
        .expect("a free name")
}

/// A session's output so far, as its recording holds it, and the size it was recorded at.
pub struct Recording {
    pub rows: u16,
    pub cols: u16,
    pub bytes: Vec<u8>,
}

/// Reads the recording at `path`; panics if it holds a resize.
pub fn recording(path: &Path) -> Recording {
    let cast = read_cast(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let resizes: Vec<&str> = cast
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Resize)
        .map(|e| e.data.as_str())
        .collect();
    assert!(
        resizes.is_empty(),
        "{}: the terminal was resized ({resizes:?}): a replay at one size would not be fair",
        path.display()
    );
    let size = |n: u32| u16::try_from(n).expect("a terminal size");
    Recording {
        rows: size(cast.header.height),
        cols: size(cast.header.width),
        bytes: cast.output().into_bytes(),
    }
}

/// The screen of a fresh [`Screen`] (set up as a session's) fed `rec`'s bytes.
pub fn our_screen(rec: &Recording) -> String {
    let mut screen = Screen::new(rec.rows, rec.cols, DEFAULT_SCROLLBACK);
    screen.set_scroll_on_clear(true);
    screen.process(&rec.bytes);
    screen.capture(false)
}

/// Waits up to `secs` until `s`'s screen satisfies `ok` and `s` has printed nothing for
/// [`QUIET`]; returns that screen and the recording of everything printed up to it (the
/// session's byte count, its recording and its screen agree: nothing came between).
pub fn settled(
    s: &Session,
    what: &str,
    secs: u64,
    ok: impl Fn(&str) -> bool,
) -> (String, Recording) {
    let path = s
        .recording_path()
        .expect("the session has a recording")
        .to_path_buf();
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let screen = s.capture(false);
        if let Some(exit) = s.exit_status() {
            panic!("the program ended ({exit:?}) while waiting for {what}; its screen:\n{screen}");
        }
        let why = if !ok(&screen) {
            "the screen does not match".to_string()
        } else if s.last_output().elapsed() < QUIET {
            format!("the program still prints ({} bytes so far)", s.bytes_read())
        } else if !s.sync_recording(Duration::from_secs(5)) {
            "the recording does not catch up".to_string()
        } else {
            let read = s.bytes_read();
            let rec = recording(&path);
            let quiet = s.last_output().elapsed() >= QUIET;
            let same = s.capture(false) == screen && s.bytes_read() == read;
            if quiet && same && rec.bytes.len() as u64 == read {
                return (screen, rec);
            }
            format!(
                "the recording holds {} bytes, the session read {read} (quiet: {quiet}, \
                 unchanged: {same})",
                rec.bytes.len()
            )
        };
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} to settle ({why}); the screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The rows where `a` and `b` differ, each as `name row N` with both texts.
pub fn rows_differing(name: &str, (la, a): (&str, &str), (lb, b): (&str, &str)) -> Vec<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    (0..a.len().max(b.len()))
        .filter(|&i| a.get(i) != b.get(i))
        .map(|i| {
            format!(
                "{name} row {i}:\n  {la}: {:?}\n  {lb}: {:?}",
                a.get(i),
                b.get(i)
            )
        })
        .collect()
}

/// A private tmux server in a temporary directory; killed on drop.
pub struct Tmux {
    dir: tempfile::TempDir,
    panes: Cell<u32>,
}

impl Tmux {
    /// A server for `test`; `None` when tmux is not installed, after saying so on stderr
    /// (with `GT_REQUIRE_PROGRAMS` set, as CI does, that is a failure).
    pub fn start(test: &str) -> Option<Tmux> {
        let installed = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            assert!(
                std::env::var_os("GT_REQUIRE_PROGRAMS").is_none(),
                "{test}: not installed: tmux (GT_REQUIRE_PROGRAMS is set)"
            );
            eprintln!(
                "SKIPPED in {test}: not installed: tmux (the screens are not compared with tmux's)"
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("gt-tmux-")
            .tempdir()
            .expect("a temp dir");
        std::fs::write(
            dir.path().join("tmux.conf"),
            "set -g status off\nset -g default-terminal xterm-256color\n",
        )
        .expect("the tmux config");
        Some(Tmux {
            dir,
            panes: Cell::new(0),
        })
    }

    fn run(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("tmux")
            .arg("-u")
            .arg("-S")
            .arg(self.dir.path().join("sock"))
            .arg("-f")
            .arg(self.dir.path().join("tmux.conf"))
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .env_remove("TMUX")
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// tmux's screen (as text, see [`tmux_text`]) after showing `rec`'s bytes in a pane of
    /// `rec`'s size (a pane of its own, killed afterwards).
    pub fn screen_after(&self, rec: &Recording) -> String {
        let n = self.panes.get();
        self.panes.set(n + 1);
        let file = self.dir.path().join(format!("replay-{n}.bin"));
        std::fs::write(&file, &rec.bytes).expect("the replay file");
        let target = format!("replay{n}");
        let command = format!(
            "stty raw -echo; cat '{}'; printf '\\033]2;replay-done\\007'; exec sleep 3600",
            file.display()
        );
        let (rows, cols) = (rec.rows.to_string(), rec.cols.to_string());
        let started = self.run(&[
            "new-session",
            "-d",
            "-x",
            &cols,
            "-y",
            &rows,
            "-s",
            &target,
            &command,
        ]);
        assert!(started.is_some(), "tmux could not start a pane");
        let size = self.run(&[
            "display",
            "-p",
            "-t",
            &target,
            "#{pane_height}x#{pane_width}",
        ]);
        assert_eq!(
            size.as_deref().map(str::trim),
            Some(format!("{rows}x{cols}").as_str()),
            "tmux's pane size"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .run(&["display", "-p", "-t", &target, "#{pane_title}"])
            .is_none_or(|t| t.trim() != "replay-done")
        {
            assert!(Instant::now() < deadline, "tmux did not show the replay");
            std::thread::sleep(Duration::from_millis(50));
        }
        let screen = self
            .run(&["capture-pane", "-p", "-e", "-t", &target])
            .expect("tmux's capture");
        let _ = self.run(&["kill-session", "-t", &target]);
        tmux_text(&screen)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// tmux's `capture-pane -p -e` as text: CSI and OSC sequences left out, the characters
/// between SO and SI (the DEC graphics set) drawn as what they show, row ends trimmed.
pub fn tmux_text(escaped: &str) -> String {
    let mut out = String::new();
    let mut graphics = false;
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        match c {
            '\x0e' => graphics = true,
            '\x0f' => graphics = false,
            '\x1b' => match chars.next() {
                Some('[') => {
                    chars.by_ref().find(|p| ('\x40'..='\x7e').contains(p));
                }
                Some(']') => {
                    while let Some(p) = chars.next() {
                        if p == '\x07' || (p == '\x1b' && chars.next() == Some('\\')) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            c if graphics => out.push(dec_graphic(c)),
            c => out.push(c),
        }
    }
    out.lines()
        .map(|l| format!("{}\n", l.trim_end_matches(' ')))
        .collect()
}

/// What a character shows in the DEC special graphics set (`ESC ( 0`).
fn dec_graphic(c: char) -> char {
    const FROM_UNDERSCORE: &str = " ◆▒␉␌␍␊°±␤␋┘┐┌└┼⎺⎻─⎼⎽├┤┴┬│≤≥π≠£·";
    u32::from(c)
        .checked_sub(0x5f)
        .and_then(|i| FROM_UNDERSCORE.chars().nth(i as usize))
        .unwrap_or(c)
}

/// The screens of one test compared with tmux's; [`Looks::assert_same`] fails with every row
/// that differed.
pub struct Looks {
    tmux: Option<Tmux>,
    diffs: Vec<String>,
    compared: Vec<String>,
}

impl Looks {
    pub fn new(test: &str) -> Looks {
        Looks {
            tmux: Tmux::start(test),
            diffs: Vec::new(),
            compared: Vec::new(),
        }
    }

    /// Waits like [`settled`] for `what`, then compares the session's screen with a fresh
    /// screen's for the recording, and that with tmux's; returns the session's screen.
    pub fn at(&mut self, s: &Session, what: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let (live, rec) = settled(s, what, secs, ok);
        assert_eq!((rec.rows, rec.cols), s.size(), "the recording's size");
        let name = format!(
            "{what} ({}x{}, {} bytes)",
            rec.rows,
            rec.cols,
            rec.bytes.len()
        );
        let fresh = our_screen(&rec);
        let mut diffs = rows_differing(
            &format!("{name}: the session's screen and a fresh one fed its recording,"),
            ("session", &live),
            ("fresh", &fresh),
        );
        if let Some(tmux) = &self.tmux {
            diffs.extend(rows_differing(
                &name,
                ("ours", &fresh),
                ("tmux", &tmux.screen_after(&rec)),
            ));
        }
        if !diffs.is_empty() {
            // Kept for a look at the bytes (target/tmp is not cleaned by the tests).
            let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
                "{}-{}x{}.bin",
                what.replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
                rec.rows,
                rec.cols
            ));
            if std::fs::write(&keep, &rec.bytes).is_ok() {
                diffs.push(format!("{name}: the bytes are in {}", keep.display()));
            }
        }
        self.diffs.extend(diffs);
        self.compared.push(name);
        live
    }

    /// Fails with every row that differed; says on stderr what was compared.
    pub fn assert_same(self) {
        let with = if self.tmux.is_some() {
            "tmux's"
        } else {
            "a fresh screen's only (no tmux)"
        };
        eprintln!("compared with {with}: {}", self.compared.join("; "));
        assert!(
            self.diffs.is_empty(),
            "screens that differ:\n{}",
            self.diffs.join("\n")
        );
    }
}
