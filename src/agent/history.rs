//! An agent's whole history, read back from its recording.
//!
//! The live screen keeps only a short tail of history (`[terminal] scrollback_lines`), and
//! loses it when the program clears it, as in tmux; the asciicast recording holds everything
//! the program printed. A [`History`] replays the recording into a collecting screen
//! ([`Screen::collector`]) at the agent's size and numbers every row of the history from the
//! session's first line. What programs clear is kept, once:
//!
//! - Rows that scroll off the top are the history.
//! - Clearing the screen (`CSI 2 J`) keeps its rows: they join the history when what follows
//!   does not show them again. A clear whose new screen starts with the same row as the last
//!   clear's, with nothing scrolled in between, is a redraw: it replaces that screen.
//! - Clearing the history (`CSI 3 J`) is ignored, but what the program prints next is compared
//!   with the history from where its latest content started: rows that repeat it are a
//!   reprint (Claude Code clears and reprints its whole transcript) and are not added again;
//!   a reprint that reaches the rows the clear kept replaces them from where it differs.
//!   Anything else starts new content after what was there.
//!
//! So scrolling back through an agent that clears shows each line it printed once, in order,
//! with a clear's screen where it was; the seams are not marked.
//!
//! Memory stays small however long the session: the newest [`RECENT_LINES`] rows are kept, a
//! hash per row (for the comparisons), and every [`CHECKPOINT_LINES`] rows the replay notes
//! where it was in the file with the screen's state ([`Screen::checkpoint`]), so an older
//! stretch is replayed from the nearest checkpoint before it, not from the start.
//! [`History::update`] reads only what the recording gained.
//!
//! Recorded resizes are not followed: the whole recording is replayed at the size asked for
//! (the agent's current one), so every row fits the view.

use crate::agent::record::{parse_event, parse_header, CastEvent, CastHeader, EventKind};
use crate::agent::screen::{plain, Checkpoint, Collected, Screen};
use crate::{Error, Result};
use std::collections::VecDeque;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Rows of history between checkpoints (at least; one is taken at the first event boundary
/// after that many rows where the screen is in a state that can be restored).
pub const CHECKPOINT_LINES: usize = 1_000;
/// The newest rows kept in memory.
pub const RECENT_LINES: usize = 5_000;
/// Rows of an older stretch kept (the last one asked for).
const WINDOW_LINES: usize = 3_000;
/// Bytes of the recording read at a time.
const READ_CHUNK: usize = 1 << 20;
/// Rows that repeat the history after a clear of it, held back in case they are not a reprint
/// after all; this many in a row are one.
const HOLD: usize = 2_000;

/// A row's text, for comparing rows (colours aside).
fn row_hash(row: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    plain(row).trim_end().hash(&mut h);
    h.finish()
}

fn blank(row: &str) -> bool {
    plain(row).trim().is_empty()
}

/// After a clear of the history: the rows since, compared with the history from `start`.
#[derive(Clone, Debug)]
struct Check {
    start: usize,
    /// The next row of the history to compare (at the end of it: the kept screen's rows).
    at: usize,
    /// Rows that repeated the history so far (not added), while fewer than [`HOLD`].
    held: Vec<String>,
    /// The rows repeated all of the history from `start`, or [`HOLD`] of it: a reprint.
    reprint: bool,
}

/// Turns what a collecting screen reports into the history's rows (see the module docs).
#[derive(Clone, Debug, Default)]
struct Timeline {
    /// Rows in the history.
    len: usize,
    /// Where the content a program may reprint starts.
    epoch: usize,
    check: Option<Check>,
    /// The screen's rows at the last clear, not in the history yet.
    kept: VecDeque<String>,
    /// Rows scrolled off since the last clear of the screen.
    scrolled_since_clear: bool,
}

impl Timeline {
    /// Feeds one report; rows that join the history go to `out`, in order. `hashes` holds a
    /// hash per row of the history (appended to here when a row is new to it).
    fn feed(&mut self, hashes: &mut Vec<u64>, c: Collected, out: &mut Vec<String>) {
        match c {
            Collected::Scrolled(row) => {
                self.scrolled_since_clear = true;
                self.scrolled(hashes, row, out);
            }
            Collected::ClearedScreen(rows) => {
                self.cleared_screen(hashes, rows, out);
                self.scrolled_since_clear = false;
            }
            Collected::ClearedHistory => {
                if self.check.is_none() {
                    self.check = Some(Check {
                        start: self.epoch,
                        at: self.epoch,
                        held: Vec::new(),
                        reprint: false,
                    });
                }
            }
        }
    }

    /// The rows of the last clear's screen still kept apart, to show above a screen whose top
    /// row is `top`: none while a reprint shows them again, or when the screen is a redraw of
    /// them.
    fn kept(&self, top: &str) -> &[String] {
        let redraw = !self.scrolled_since_clear
            && !blank(top)
            && self
                .kept
                .front()
                .is_some_and(|k| row_hash(k) == row_hash(top));
        if redraw || self.check.as_ref().is_some_and(|c| c.reprint) {
            return &[];
        }
        let (all, _) = self.kept.as_slices();
        // `kept` is only ever filled whole, so it is one slice.
        all
    }

    fn commit(&mut self, hashes: &mut Vec<u64>, row: String, out: &mut Vec<String>) {
        if self.len == hashes.len() {
            hashes.push(row_hash(&row));
        }
        self.len += 1;
        out.push(row);
    }

    fn commit_kept(&mut self, hashes: &mut Vec<u64>, out: &mut Vec<String>) {
        while let Some(row) = self.kept.pop_front() {
            self.commit(hashes, row, out);
        }
    }

    fn scrolled(&mut self, hashes: &mut Vec<u64>, row: String, out: &mut Vec<String>) {
        let Some(mut c) = self.check.take() else {
            self.commit_kept(hashes, out);
            self.commit(hashes, row, out);
            return;
        };
        let h = row_hash(&row);
        // A first row that is blank proves nothing.
        let counts = c.at > c.start || !blank(&row);
        if c.at < self.len {
            if hashes.get(c.at) == Some(&h) && counts {
                c.at += 1;
                if c.reprint || c.held.len() + 1 >= HOLD || c.at == self.len {
                    c.reprint = true;
                    c.held.clear();
                } else {
                    c.held.push(row);
                }
                self.check = Some(c);
            } else if c.reprint {
                // A reprint that differs from here: what differs follows what was there.
                self.commit_kept(hashes, out);
                self.commit(hashes, row, out);
            } else {
                self.new_content(hashes, c.held, row, out);
            }
            return;
        }
        // Past the history: the rows the clear kept.
        if counts && self.kept.front().is_some_and(|k| row_hash(k) == h) {
            self.kept.pop_front();
            self.commit(hashes, row, out);
            c.reprint = true;
            c.held.clear();
            c.at = self.len;
            self.check = Some(c);
        } else if c.reprint {
            // The rest of the kept rows were replaced.
            self.kept.clear();
            self.commit(hashes, row, out);
        } else {
            self.new_content(hashes, c.held, row, out);
        }
    }

    /// What followed a clear of the history is not a reprint: the clear's screen, then it.
    fn new_content(
        &mut self,
        hashes: &mut Vec<u64>,
        held: Vec<String>,
        row: String,
        out: &mut Vec<String>,
    ) {
        self.commit_kept(hashes, out);
        self.epoch = self.len;
        for held in held {
            self.commit(hashes, held, out);
        }
        self.commit(hashes, row, out);
    }

    fn cleared_screen(&mut self, hashes: &mut Vec<u64>, rows: Vec<String>, out: &mut Vec<String>) {
        let redraw = !self.scrolled_since_clear
            && match (self.kept.front(), rows.first()) {
                (Some(old), Some(new)) => !blank(new) && row_hash(old) == row_hash(new),
                _ => false,
            };
        match self.check.take() {
            // A reprint: its screen replaces the one kept.
            Some(c) if c.reprint => {}
            Some(c) if c.at == c.start => {
                if !redraw {
                    self.commit_kept(hashes, out);
                }
                // Still waiting for what follows the clear of the history.
                self.check = Some(c);
            }
            Some(c) => {
                self.commit_kept(hashes, out);
                self.epoch = self.len;
                for held in c.held {
                    self.commit(hashes, held, out);
                }
            }
            None if redraw => {}
            None => self.commit_kept(hashes, out),
        }
        self.kept = rows.into();
    }
}

/// A replay of a recording: a collecting screen and the timeline it feeds.
#[derive(Debug)]
struct Replay {
    screen: Screen,
    timeline: Timeline,
}

impl Replay {
    fn new((rows, cols): (u16, u16)) -> Replay {
        Replay {
            screen: Screen::collector(rows, cols),
            timeline: Timeline::default(),
        }
    }

    /// Feeds an event (output, or a resize when `follow` sizes); rows that join the history
    /// go to `out`.
    fn event(&mut self, hashes: &mut Vec<u64>, e: &CastEvent, follow: bool, out: &mut Vec<String>) {
        match e.kind {
            EventKind::Output => self.screen.process(e.data.as_bytes()),
            EventKind::Resize if follow => {
                if let Some((rows, cols)) = e.resize() {
                    self.screen.resize(rows, cols);
                }
            }
            _ => return,
        }
        drop(self.screen.take_replies());
        for c in self.screen.take_collected() {
            self.timeline.feed(hashes, c, out);
        }
    }

    /// Where to start another replay from, if this is a place one can be restored.
    fn mark(&self) -> Option<(Checkpoint, Timeline)> {
        let quiet = self
            .timeline
            .check
            .as_ref()
            .is_none_or(|c| c.held.is_empty());
        quiet
            .then(|| self.screen.checkpoint())
            .flatten()
            .map(|state| (state, self.timeline.clone()))
    }

    fn restore((state, timeline): &(Checkpoint, Timeline)) -> Replay {
        Replay {
            screen: Screen::restore(state),
            timeline: timeline.clone(),
        }
    }

    /// The last clear's screen while it is still kept apart: the end of the history.
    fn kept(&self) -> &[String] {
        self.timeline.kept(&self.screen.formatted_row(0))
    }

    /// The rows below the history proper: [`Replay::kept`], then the screen.
    fn below(&self) -> Vec<String> {
        let mut rows = self.kept().to_vec();
        rows.extend(self.screen.formatted_rows());
        rows
    }
}

/// A checkpoint: where the replay was, by row and by file offset.
struct Mark {
    line: usize,
    offset: u64,
    state: (Checkpoint, Timeline),
}

/// An older stretch of the history: its first row's number, its rows, and where in the file
/// its replay started.
struct Window {
    start: usize,
    lines: Vec<String>,
    from: u64,
}

/// The history of one recording at one size.
pub struct History {
    path: PathBuf,
    size: (u16, u16),
    /// The replay of everything up to `read`.
    replay: Replay,
    /// A hash of every row of the history.
    hashes: Vec<u64>,
    /// Bytes of the file consumed (whole lines only).
    read: u64,
    /// Where the first event starts (after the header line).
    events_from: u64,
    /// The newest rows, ending at the history's length.
    recent: VecDeque<String>,
    marks: Vec<Mark>,
    window: Option<Window>,
    /// Lines of the file that were not events (skipped).
    skipped: u64,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("read", &self.read)
            .field("rows", &self.replay.timeline.len)
            .field("marks", &self.marks.len())
            .field("window", &self.window.as_ref().map(|w| (w.start, w.from)))
            .finish_non_exhaustive()
    }
}

impl History {
    /// The history of the recording at `path`, replayed at `size` (`(rows, cols)`). Nothing
    /// is read until [`History::update`].
    pub fn new(path: &Path, size: (u16, u16)) -> History {
        History {
            path: path.to_path_buf(),
            size,
            replay: Replay::new(size),
            hashes: Vec::new(),
            read: 0,
            events_from: 0,
            recent: VecDeque::new(),
            marks: Vec::new(),
            window: None,
            skipped: 0,
        }
    }

    /// The recording this history reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size it is replayed at, `(rows, cols)`.
    pub fn size(&self) -> (u16, u16) {
        self.size
    }

    /// Rows in the history so far (above the screen), with those of the last clear's screen.
    pub fn len(&self) -> usize {
        self.replay.timeline.len + self.replay.kept().len()
    }

    /// Whether there is no history yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lines of the file that were not events and were skipped.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Reads what the recording gained since the last call.
    pub fn update(&mut self) -> Result<()> {
        if self.read == 0 {
            let (end, _) = read_header(&self.path)?;
            self.events_from = end;
            self.read = end;
        }
        let History {
            path,
            replay,
            hashes,
            recent,
            marks,
            ..
        } = self;
        let mut rows = Vec::new();
        let (read, skipped) = each_event(path, self.read, None, |offset, e| {
            replay.event(hashes, e, false, &mut rows);
            recent.extend(rows.drain(..));
            while recent.len() > RECENT_LINES {
                recent.pop_front();
            }
            let line = replay.timeline.len;
            if line >= marks.last().map_or(0, |m| m.line) + CHECKPOINT_LINES {
                if let Some(state) = replay.mark() {
                    marks.push(Mark {
                        line,
                        offset,
                        state,
                    });
                }
            }
            true
        })?;
        self.read = read;
        self.skipped += skipped;
        Ok(())
    }

    /// The view `offset` rows back from the bottom of the history and the replayed screen
    /// below it (0 = the screen as recorded so far), at the history's size; the offset is
    /// clamped to the history's length and returned with the view.
    pub fn view(&mut self, offset: usize) -> Result<(Screen, usize)> {
        let rows = usize::from(self.size.0);
        let total = self.replay.timeline.len;
        let offset = offset.min(self.len());
        let first = self.len() - offset;
        let recent_from = total - self.recent.len();
        if first < recent_from {
            let covered = self.window.as_ref().is_some_and(|w| {
                w.start <= first
                    && first.saturating_add(rows).min(recent_from) <= w.start + w.lines.len()
            });
            if !covered {
                self.load_window(first)?;
            }
        }
        let below = self.replay.below();
        let line = |i: usize| -> &str {
            if i >= total {
                below.get(i - total).map_or("", String::as_str)
            } else if i >= recent_from {
                self.recent.get(i - recent_from).map_or("", String::as_str)
            } else {
                self.window
                    .as_ref()
                    .and_then(|w| w.lines.get(i.checked_sub(w.start)?))
                    .map_or("", String::as_str)
            }
        };
        let lines: Vec<&str> = (first..first + rows).map(line).collect();
        Ok((Screen::from_rows(self.size.0, self.size.1, lines), offset))
    }

    /// Replays the stretch around row `first` from the nearest checkpoint before it, reading
    /// no further than the stretch's end.
    fn load_window(&mut self, first: usize) -> Result<()> {
        let start = first.saturating_sub(WINDOW_LINES / 4);
        let end = start + WINDOW_LINES;
        let (mut replay, from) = match self.marks.iter().rev().find(|m| m.line <= start) {
            Some(m) => (Replay::restore(&m.state), m.offset),
            None => (Replay::new(self.size), self.events_from),
        };
        let mut lines = Vec::new();
        let mut rows = Vec::new();
        let hashes = &mut self.hashes;
        each_event(&self.path, from, Some(self.read), |_, e| {
            let mut line = replay.timeline.len;
            replay.event(hashes, e, false, &mut rows);
            for row in rows.drain(..) {
                if (start..end).contains(&line) {
                    lines.push(row);
                }
                line += 1;
            }
            line < end
        })?;
        self.window = Some(Window { start, lines, from });
        Ok(())
    }
}

/// The text of a recording like `tmux capture-pane -p` (with `scrollback`, `-S -`): the whole
/// history from the session's first line, kept past clears (see the module docs), then the
/// last screen. Replayed at `size`, or following the recording's own sizes when `None`.
pub fn capture(path: &Path, size: Option<(u16, u16)>, scrollback: bool) -> Result<String> {
    let (from, header) = read_header(path)?;
    let to_u16 = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    let mut replay = Replay::new(size.unwrap_or((to_u16(header.height), to_u16(header.width))));
    let mut hashes = Vec::new();
    let mut out = String::new();
    let mut rows = Vec::new();
    let text = |rows: &mut Vec<String>, out: &mut String| {
        for row in rows.drain(..) {
            if scrollback {
                out.push_str(plain(&row).trim_end_matches(' '));
                out.push('\n');
            }
        }
    };
    each_event(path, from, None, |_, e| {
        replay.event(&mut hashes, e, size.is_none(), &mut rows);
        text(&mut rows, &mut out);
        true
    })?;
    let mut kept = replay.kept().to_vec();
    text(&mut kept, &mut out);
    out.push_str(&replay.screen.capture(false));
    Ok(out)
}

/// The header of the recording at `path` (its first line, as the recorder writes it) and the
/// offset of its first event.
fn read_header(path: &Path) -> Result<(u64, CastHeader)> {
    let file = File::open(path).map_err(|e| Error::io("read recording", path, e))?;
    let mut first = Vec::new();
    std::io::BufRead::read_until(
        &mut std::io::BufReader::new(file.take(1 << 20)),
        b'\n',
        &mut first,
    )
    .map_err(|e| Error::io("read recording", path, e))?;
    Ok((first.len() as u64, parse_header(path, 1, &first)?))
}

/// Calls `f(offset after the event, event)` for each event of the recording from byte `from`
/// (the start of an event line) up to `until` (or the end of what is written; a last line
/// without its newline is left for later), while `f` returns true. Returns where reading
/// stopped and how many lines were not events.
fn each_event(
    path: &Path,
    from: u64,
    until: Option<u64>,
    mut f: impl FnMut(u64, &CastEvent) -> bool,
) -> Result<(u64, u64)> {
    let mut file = File::open(path).map_err(|e| Error::io("read recording", path, e))?;
    file.seek(SeekFrom::Start(from))
        .map_err(|e| Error::io("read recording", path, e))?;
    let mut pos = from;
    let mut skipped = 0;
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let want = match until {
            Some(u) => {
                let left = u.saturating_sub(pos + buf.len() as u64);
                if left == 0 {
                    break;
                }
                usize::try_from(left).unwrap_or(READ_CHUNK).min(READ_CHUNK)
            }
            None => READ_CHUNK,
        };
        let n = match file.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read recording", path, e)),
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + nl];
            start += nl + 1;
            match parse_event(line) {
                Ok(e) => {
                    if !f(pos + start as u64, &e) {
                        return Ok((pos + start as u64, skipped));
                    }
                }
                Err(_) if line.iter().all(u8::is_ascii_whitespace) => {}
                Err(_) => skipped += 1,
            }
        }
        pos += start as u64;
        buf.drain(..start);
    }
    Ok((pos, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::record::tests::header;
    use crate::agent::record::Recorder;

    fn numbered(from: usize, to: usize) -> Vec<u8> {
        (from..=to)
            .map(|i| format!("\x1b[3{}mline {i}\x1b[m\r\n", i % 8))
            .collect::<String>()
            .into_bytes()
    }

    /// A recording of `rows` x `cols` holding what `write` records (in a directory that lives
    /// as long as the first value).
    fn recorded(
        rows: u32,
        cols: u32,
        write: impl FnOnce(&mut Recorder) -> Result<()>,
    ) -> Result<(tempfile::TempDir, PathBuf)> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", "/tmp", e))?;
        let path = dir.path().join("test.cast");
        let mut rec = Recorder::create(&path, &header(rows, cols))?;
        write(&mut rec)?;
        Ok((dir, path))
    }

    fn text(screen: &mut Screen) -> Vec<String> {
        screen.capture(false).lines().map(str::to_string).collect()
    }

    #[test]
    fn the_history_reaches_the_first_line_past_clears() -> Result<()> {
        let (_dir, path) = recorded(10, 40, |rec| {
            rec.output(&numbered(1, 3000))?;
            rec.output(b"\x1b[H\x1b[2J\x1b[3J")?;
            rec.output(&numbered(3001, 3004))?;
            Ok(())
        })?;

        let mut h = History::new(&path, (10, 40));
        h.update()?;
        // 3,000 lines and the empty line the cursor was on: 2,991 scrolled off, and the 9 rows
        // of the cleared screen that had text are kept (nothing after the clear repeats them).
        assert_eq!(h.len(), 3000);
        let (mut view, offset) = h.view(usize::MAX)?;
        assert_eq!(offset, 3000);
        assert_eq!(text(&mut view)[0], "line 1");
        assert_eq!(
            view.cell(0, 0).map(|c| c.fg),
            Some(crate::agent::Color::Indexed(1))
        );
        // The seam: the last line before the clear, then the screen after it.
        let (mut view, _) = h.view(1)?;
        let rows = text(&mut view);
        assert_eq!(rows[0], "line 3000");
        assert_eq!(rows[1], "line 3001");
        let all = capture(&path, None, true)?;
        let lines: Vec<&str> = all.lines().collect();
        assert_eq!(lines[0], "line 1");
        assert_eq!(lines[2999], "line 3000");
        assert_eq!(lines[3000], "line 3001");
        Ok(())
    }

    /// Frames as Claude Code draws them: clear the screen and the history, then the whole
    /// transcript so far and a box that changes each frame.
    fn reprinting(frames: usize, per_frame: usize) -> Vec<Vec<u8>> {
        (1..=frames)
            .map(|f| {
                let mut out = String::from("\x1b[?2026h\x1b[2J\x1b[3J\x1b[H");
                for m in 1..=f * per_frame {
                    out += &format!("message {m}\r\n");
                }
                out += &format!("\x1b[2m╭────╮\r\n│ thinking {f} │\r\n╰────╯\x1b[m\x1b[?2026l");
                out.into_bytes()
            })
            .collect()
    }

    #[test]
    fn a_program_that_clears_and_reprints_its_transcript_is_in_the_history_once() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", "/tmp", e))?;
        for (frames, per_frame) in [(40, 3), (3, 1), (30, 7)] {
            let path = dir.path().join(format!("claude-{frames}-{per_frame}.cast"));
            let mut rec = Recorder::create(&path, &header(10, 40))?;
            for frame in reprinting(frames, per_frame) {
                rec.output(&frame)?;
            }
            drop(rec);
            let all = capture(&path, Some((10, 40)), true)?;
            let lines: Vec<&str> = all.lines().collect();
            let messages: Vec<String> = lines
                .iter()
                .filter(|l| l.starts_with("message "))
                .map(|l| l.to_string())
                .collect();
            let want: Vec<String> = (1..=frames * per_frame)
                .map(|m| format!("message {m}"))
                .collect();
            assert_eq!(messages, want, "{frames} frames of {per_frame}:\n{all}");
            let boxes: Vec<&&str> = lines.iter().filter(|l| l.contains("thinking")).collect();
            assert_eq!(
                boxes,
                [&&*format!("│ thinking {frames} │")],
                "only the last box:\n{all}"
            );

            // The history as scrolled through shows the same rows.
            let mut h = History::new(&path, (10, 40));
            h.update()?;
            let (mut v, offset) = h.view(usize::MAX)?;
            assert_eq!(offset, h.len());
            assert_eq!(text(&mut v)[0], "message 1");
            assert_eq!(h.len() + 10, lines.len(), "{all}");
        }
        Ok(())
    }

    #[test]
    fn clears_that_redraw_the_same_screen_keep_only_the_last() -> Result<()> {
        // A status screen redrawn with a lone clear (no history cleared), then a shell clear.
        let (_dir, path) = recorded(6, 30, |rec| {
            rec.output(b"before 1\r\nbefore 2\r\n")?;
            for n in 0..50 {
                rec.output(format!("\x1b[H\x1b[2JStatus\r\nprogress {n}\r\n").as_bytes())?;
            }
            rec.output(b"\x1b[H\x1b[2J\x1b[3Jdone\r\n")?;
            Ok(())
        })?;
        let all = capture(&path, None, true)?;
        let lines: Vec<&str> = all.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(
            lines,
            ["before 1", "before 2", "Status", "progress 49", "done"],
            "{all}"
        );
        Ok(())
    }

    #[test]
    fn an_old_stretch_is_replayed_from_a_checkpoint_and_matches_the_full_replay() -> Result<()> {
        let (_dir, path) = recorded(8, 30, |rec| {
            // Scroll regions, charsets and colours around the checkpoints.
            rec.output(b"\x1b[1;6r")?;
            for i in (1..9000).step_by(50) {
                rec.output(&numbered(i, i + 49))?;
            }
            rec.output(b"\x1b[r\x1b(0qqq\x1b(B")?;
            for i in (9001..20_000).step_by(100) {
                rec.output(&numbered(i, i + 99))?;
            }
            Ok(())
        })?;
        let mut h = History::new(&path, (8, 30));
        h.update()?;
        assert!(h.marks.len() >= 10, "{} checkpoints", h.marks.len());
        let full = capture(&path, Some((8, 30)), true)?;
        let full: Vec<&str> = full.lines().collect();
        for back in [h.len(), h.len() - 1, 15_000, 7_777, 4_321, 100] {
            let (mut view, offset) = h.view(back)?;
            let first = h.len() - offset;
            let rows = text(&mut view);
            assert_eq!(rows[..], full[first..first + 8], "{back} back");
        }
        // An old stretch is replayed from a checkpoint, not from the start of the file.
        h.view(12_000)?;
        let from = h.window.as_ref().map_or(0, |w| w.from);
        assert!(from > h.events_from, "replayed from byte {from}");
        // Later output is read on the next update only.
        let before = h.len();
        let mut more = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        std::io::Write::write_all(&mut more, b"[99.0, \"o\", \"x\\r\\ny\\r\\nz\\r\\n\"]\n")
            .map_err(|e| Error::io("append", &path, e))?;
        assert_eq!(h.len(), before);
        h.update()?;
        assert_eq!(h.len(), before + 3);
        Ok(())
    }

    #[test]
    fn the_history_runs_on_past_a_full_screen_program() -> Result<()> {
        // A pager on the alternate screen in the middle: its rows are not history, and what
        // was printed before and after it is, in order.
        let (_dir, path) = recorded(5, 30, |rec| {
            rec.output(&numbered(1, 20))?;
            rec.output(b"\x1b[?1049h\x1b[H\x1b[2Jpager page\r\n")?;
            for _ in 0..10 {
                rec.output(b"pager line\r\n")?;
            }
            rec.output(b"\x1b[?1049l")?;
            rec.output(&numbered(21, 30))?;
            Ok(())
        })?;
        let all = capture(&path, None, true)?;
        assert!(!all.contains("pager"), "{all}");
        let numbered: Vec<&str> = all.lines().filter(|l| l.starts_with("line ")).collect();
        let want: Vec<String> = (1..=30).map(|i| format!("line {i}")).collect();
        assert_eq!(numbered, want, "{all}");
        Ok(())
    }

    #[test]
    fn a_capture_follows_the_recorded_sizes_or_keeps_a_given_one() -> Result<()> {
        let (_dir, path) = recorded(5, 20, |rec| {
            rec.output(b"one\r\ntwo\x1b[6n")?;
            rec.resize(8, 30)?;
            rec.output(b"\r\nthree")?;
            Ok(())
        })?;
        let followed = capture(&path, None, false)?;
        assert_eq!(
            followed.lines().count(),
            8,
            "the last recorded size:\n{followed}"
        );
        assert_eq!(
            followed.lines().take(3).collect::<Vec<_>>(),
            ["one", "two", "three"]
        );
        assert_eq!(capture(&path, Some((3, 12)), false)?, "one\ntwo\nthree\n");
        Ok(())
    }

    #[test]
    fn a_bad_line_is_skipped_and_a_missing_file_named() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", "/tmp", e))?;
        let path = dir.path().join("c.cast");
        std::fs::write(
            &path,
            "{\"version\":2,\"width\":10,\"height\":3}\n[0.1, \"o\", \"a\\r\\nb\\r\\n\"]\nnot json\n[0.2, \"o\", \"c\\r\\nd\"]\n[0.3, \"o\", \"cut",
        )
        .map_err(|e| Error::io("write", &path, e))?;
        let mut h = History::new(&path, (3, 10));
        h.update()?;
        assert_eq!(h.skipped(), 1);
        assert_eq!(h.len(), 1);
        let (mut v, _) = h.view(1)?;
        assert_eq!(text(&mut v), ["a", "b", "c"]);
        let missing = dir.path().join("gone.cast");
        let err = History::new(&missing, (3, 10))
            .update()
            .unwrap_err()
            .to_string();
        assert!(err.contains("gone.cast"), "{err}");
        Ok(())
    }
}
