//! The cockpit (or any `gastown-tui` screen) in a real PTY, our own `agent::Session`: its
//! output parsed as it comes, the screen read back as text. Shared by the integration tests
//! (`tests/common`) and the benchmarks (`benches/common`, by `#[path]`).

#![allow(dead_code)]

use gastown_tui::agent::{Session, SessionSpec};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Counts the chunks of output the PTY's reader parsed (and when the last one was); wakes
/// whoever waits for the screen to change.
#[derive(Default)]
pub struct Parsed {
    state: Mutex<(u64, Option<Instant>)>,
    changed: Condvar,
}

impl Parsed {
    fn lock(&self) -> MutexGuard<'_, (u64, Option<Instant>)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        let mut s = self.lock();
        s.0 += 1;
        s.1 = Some(Instant::now());
        self.changed.notify_all();
    }

    /// How many chunks were parsed so far.
    pub fn now(&self) -> u64 {
        self.lock().0
    }

    /// Waits up to `timeout` for a chunk after `seen`; the count and the latest chunk's time.
    pub fn wait_past(&self, seen: u64, timeout: Duration) -> (u64, Option<Instant>) {
        let guard = self.lock();
        let (s, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |s| s.0 == seen)
            .unwrap_or_else(PoisonError::into_inner);
        *s
    }
}

/// `bin --town TOWN ARGS` in a `rows` x `cols` terminal, with HOME = `home` and no town or
/// actor from the caller's environment.
pub struct Pty {
    pub s: Session,
    pub parsed: Arc<Parsed>,
}

impl Pty {
    pub fn spawn(
        bin: &str,
        home: &Path,
        town: &Path,
        (rows, cols): (u16, u16),
        scrollback: Option<usize>,
        args: &[&str],
    ) -> Pty {
        let mut spec = SessionSpec::new(bin, home);
        spec.args = vec!["--town".into(), town.display().to_string()];
        spec.args.extend(args.iter().map(|a| a.to_string()));
        spec.rows = rows;
        spec.cols = cols;
        if let Some(lines) = scrollback {
            spec.scrollback = lines;
        }
        spec.env = vec![
            ("HOME".into(), home.display().to_string()),
            ("GT_TOWN".into(), String::new()),
            ("GT_AGENT".into(), String::new()),
            ("BD_ACTOR".into(), String::new()),
        ];
        let parsed = Arc::new(Parsed::default());
        let on_output = parsed.clone();
        let s = Session::spawn(spec, Arc::new(move || on_output.bump()))
            .unwrap_or_else(|e| panic!("start {bin}: {e}"));
        Pty { s, parsed }
    }

    pub fn screen(&self) -> String {
        self.s.capture(false)
    }

    /// The screen and whether it is complete (no synchronized update open).
    pub fn frame(&self) -> (String, bool) {
        let text = self.s.capture(false);
        let complete = !self.s.with_screen(|sc| sc.synchronized_update());
        (text, complete)
    }

    /// Waits (up to `patience`) for the screen to satisfy `ok`; the screen. Panics, showing
    /// the screen, when the program exits or time runs out first.
    pub fn wait(&self, what: &str, patience: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + patience;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if let Some(exit) = self.s.exit_status() {
                panic!("the program exited ({exit}) while waiting for {what}:\n{screen}");
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
