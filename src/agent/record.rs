//! Session recordings in asciicast v2 (<https://docs.asciinema.org/manual/asciicast/v2/>).
//!
//! A header line (JSON object), then one JSON array per event: `[seconds, "o", "text"]` for
//! output, `[seconds, "r", "COLSxROWS"]` for a resize. Each event is written with a single
//! `write` as it happens (no user-space buffering), so a recording is readable up to the
//! moment its writer was killed, even by `kill -9`. Files are created mode 0600 in
//! directories created 0700.

use crate::agent::screen::Screen;
use crate::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The first line of a cast.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CastHeader {
    pub version: u32,
    pub width: u32,
    pub height: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
}

/// What an event is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `"o"`: output from the program.
    Output,
    /// `"i"`: input to the program.
    Input,
    /// `"r"`: the terminal was resized; the data is `COLSxROWS`.
    Resize,
    /// `"m"`: a marker.
    Marker,
    /// Anything else, kept as written.
    Other(String),
}

impl EventKind {
    fn parse(code: &str) -> EventKind {
        match code {
            "o" => EventKind::Output,
            "i" => EventKind::Input,
            "r" => EventKind::Resize,
            "m" => EventKind::Marker,
            other => EventKind::Other(other.to_string()),
        }
    }
}

/// One event of a cast.
#[derive(Clone, Debug, PartialEq)]
pub struct CastEvent {
    /// Seconds since the recording started.
    pub time: f64,
    pub kind: EventKind,
    pub data: String,
}

impl CastEvent {
    /// For a resize event, the new size as `(rows, cols)`.
    pub fn resize(&self) -> Option<(u16, u16)> {
        if self.kind != EventKind::Resize {
            return None;
        }
        let (cols, rows) = self.data.split_once('x')?;
        Some((rows.trim().parse().ok()?, cols.trim().parse().ok()?))
    }
}

/// A whole recording.
#[derive(Clone, Debug, PartialEq)]
pub struct Cast {
    pub header: CastHeader,
    pub events: Vec<CastEvent>,
}

impl Cast {
    /// All output, concatenated.
    pub fn output(&self) -> String {
        self.events
            .iter()
            .filter(|e| e.kind == EventKind::Output)
            .map(|e| e.data.as_str())
            .collect()
    }
}

/// Writes a cast as a session runs.
#[derive(Debug)]
pub struct Recorder {
    file: File,
    path: PathBuf,
    start: Instant,
    /// The start of a UTF-8 sequence cut off at the end of the last chunk.
    carry: Vec<u8>,
    line: Vec<u8>,
}

impl Recorder {
    /// Creates (or truncates) the file at `path`, mode 0600, creating missing parent
    /// directories mode 0700, and writes the header. Event times count from now.
    pub fn create(path: &Path, header: &CastHeader) -> Result<Recorder> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io("create directory", dir, e))?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io("create recording", path, e))?;
        // `mode` only applies to new files; an existing one is tightened too.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io("set permissions of", path, e))?;
        let mut line = serde_json::to_vec(header)?;
        line.push(b'\n');
        let mut rec = Recorder {
            file,
            path: path.to_path_buf(),
            start: Instant::now(),
            carry: Vec::new(),
            line: Vec::new(),
        };
        rec.write_line(&line)?;
        Ok(rec)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records program output. A UTF-8 sequence split across chunks is kept whole (its start
    /// waits for the next chunk); invalid bytes are recorded as U+FFFD.
    pub fn output(&mut self, bytes: &[u8]) -> Result<()> {
        let text = if self.carry.is_empty() {
            decode(bytes, &mut self.carry)
        } else {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(bytes);
            decode(&joined, &mut self.carry)
        };
        if text.is_empty() {
            return Ok(());
        }
        self.event("o", &text)
    }

    /// Records a resize to `rows` x `cols`.
    pub fn resize(&mut self, rows: u16, cols: u16) -> Result<()> {
        self.event("r", &format!("{cols}x{rows}"))
    }

    /// Records what is left of a cut UTF-8 sequence (as U+FFFD), at the end of a session.
    pub fn finish(&mut self) -> Result<()> {
        if self.carry.is_empty() {
            return Ok(());
        }
        self.carry.clear();
        self.event("o", "\u{fffd}")
    }

    fn event(&mut self, code: &str, data: &str) -> Result<()> {
        let t = self.start.elapsed().as_secs_f64();
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        // Writing into a Vec cannot fail.
        let _ = write!(line, "[{t:.6}, \"{code}\", ");
        serde_json::to_writer(&mut line, data)?;
        line.extend_from_slice(b"]\n");
        let result = self.write_line(&line);
        self.line = line;
        result
    }

    fn write_line(&mut self, line: &[u8]) -> Result<()> {
        self.file
            .write_all(line)
            .map_err(|e| Error::io("write recording", &self.path, e))
    }
}

enum RecMsg {
    Output(Vec<u8>),
    Resize(u16, u16),
}

/// A [`Recorder`] on its own thread, so writing the cast (JSON escaping, the write call)
/// overlaps with parsing the same bytes on the reader thread. Events keep the order in which
/// they are handed over. A write error stops the recording (logged), never the session.
#[derive(Debug)]
pub struct RecorderThread {
    tx: Option<std::sync::mpsc::Sender<RecMsg>>,
    handle: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl std::fmt::Debug for RecMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecMsg::Output(b) => write!(f, "Output({} bytes)", b.len()),
            RecMsg::Resize(r, c) => write!(f, "Resize({r}x{c})"),
        }
    }
}

impl RecorderThread {
    pub fn start(mut rec: Recorder) -> Result<RecorderThread> {
        let path = rec.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel::<RecMsg>();
        let handle = std::thread::Builder::new()
            .name("agent-recorder".into())
            .spawn(move || {
                crate::agent::session::background_priority();
                let mut ok = true;
                for msg in rx {
                    if !ok {
                        continue;
                    }
                    let r = match msg {
                        RecMsg::Output(bytes) => rec.output(&bytes),
                        RecMsg::Resize(rows, cols) => rec.resize(rows, cols),
                    };
                    if let Err(e) = r {
                        tracing::warn!("recording stopped: {e}");
                        ok = false;
                    }
                }
                if ok {
                    if let Err(e) = rec.finish() {
                        tracing::warn!("recording: {e}");
                    }
                }
            })
            .map_err(|e| Error::io("start the recorder for", &path, e))?;
        Ok(RecorderThread {
            tx: Some(tx),
            handle: Some(handle),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands over a chunk of output.
    pub fn output(&self, bytes: &[u8]) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(RecMsg::Output(bytes.to_vec()));
        }
    }

    /// Hands over a resize.
    pub fn resize(&self, rows: u16, cols: u16) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(RecMsg::Resize(rows, cols));
        }
    }

    /// Writes everything handed over and closes the recording.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for RecorderThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Decodes `bytes` as UTF-8, replacing invalid sequences with U+FFFD and leaving an incomplete
/// sequence at the very end in `carry`.
fn decode(bytes: &[u8], carry: &mut Vec<u8>) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // `good` is valid UTF-8 by construction.
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{fffd}');
                        rest = &bad[n..];
                    }
                    None => {
                        carry.extend_from_slice(bad);
                        break;
                    }
                }
            }
        }
    }
    out
}

/// Reads a cast. A last line cut short (the writer was killed mid-line) is ignored; any other
/// malformed line is an error naming the file and line.
pub fn read_cast(path: &Path) -> Result<Cast> {
    let text = fs::read(path).map_err(|e| Error::io("read recording", path, e))?;
    let text = String::from_utf8_lossy(&text);
    let complete = text.ends_with('\n');
    let mut lines = text.lines().enumerate().peekable();
    let header = loop {
        let Some((n, line)) = lines.next() else {
            return Err(Error::bad(format!(
                "{}: empty recording (no asciicast header)",
                path.display()
            )));
        };
        if line.trim().is_empty() {
            continue;
        }
        let header: CastHeader = serde_json::from_str(line).map_err(|e| {
            Error::bad(format!(
                "{}:{}: not an asciicast header: {e}",
                path.display(),
                n + 1
            ))
        })?;
        if header.version != 2 {
            return Err(Error::bad(format!(
                "{}:{}: asciicast version {} is not supported (only 2)",
                path.display(),
                n + 1,
                header.version
            )));
        }
        break header;
    };
    let mut events = Vec::new();
    while let Some((n, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<(f64, String, String)>(line) {
            Ok((time, code, data)) => events.push(CastEvent {
                time,
                kind: EventKind::parse(&code),
                data,
            }),
            Err(_) if lines.peek().is_none() && !complete => break,
            Err(e) => {
                return Err(Error::bad(format!(
                    "{}:{}: not an asciicast event: {e}",
                    path.display(),
                    n + 1
                )))
            }
        }
    }
    Ok(Cast { header, events })
}

/// Replays a cast into a fresh screen. With `size` (`(rows, cols)`) the screen has that size
/// throughout and resize events are ignored; without, it starts at the header's size and
/// follows the resize events. Query replies are discarded.
pub fn replay_cast(cast: &Cast, size: Option<(u16, u16)>, scrollback: usize) -> Screen {
    let to_u16 = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    let (rows, cols) = size.unwrap_or((to_u16(cast.header.height), to_u16(cast.header.width)));
    let mut screen = Screen::new(rows, cols, scrollback);
    for event in &cast.events {
        match event.kind {
            EventKind::Output => {
                screen.process(event.data.as_bytes());
                drop(screen.take_replies());
            }
            EventKind::Resize if size.is_none() => {
                if let Some((r, c)) = event.resize() {
                    screen.resize(r, c);
                }
            }
            _ => {}
        }
    }
    screen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(rows: u32, cols: u32) -> CastHeader {
        CastHeader {
            version: 2,
            width: cols,
            height: rows,
            timestamp: Some(1_700_000_000),
            title: Some("t \"quoted\"".into()),
            env: [("TERM".to_string(), "xterm-256color".to_string())]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn decode_carries_cut_sequences_and_replaces_bad_bytes() {
        let mut carry = Vec::new();
        assert_eq!(decode(b"a\xe2", &mut carry), "a");
        assert_eq!(carry, b"\xe2");
        let mut joined = std::mem::take(&mut carry);
        joined.extend_from_slice(b"\x82\xacb");
        assert_eq!(decode(&joined, &mut carry), "\u{20ac}b");
        assert!(carry.is_empty());
        assert_eq!(decode(b"x\xffy\xc3", &mut carry), "x\u{fffd}y");
        assert_eq!(carry, b"\xc3");
    }

    #[test]
    fn header_and_events_round_trip() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", "/tmp", e))?;
        let path = dir.path().join("deep/er/s.cast");
        let mut rec = Recorder::create(&path, &header(24, 80))?;
        rec.output(b"hello \xe2\x82")?;
        rec.output(b"\xac \"q\" \x1b[1m\n")?;
        rec.resize(30, 100)?;
        rec.output(b"\xff")?;
        drop(rec);

        let text = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(r#"{"version":2,"width":80,"height":24,"timestamp":1700000000,"title":"t \"quoted\"","env":{"TERM":"xterm-256color"}}"#),
            "{first}"
        );
        let cast = read_cast(&path)?;
        assert_eq!(cast.header, header(24, 80));
        assert_eq!(cast.output(), "hello \u{20ac} \"q\" \x1b[1m\n\u{fffd}");
        let resizes: Vec<_> = cast.events.iter().filter_map(CastEvent::resize).collect();
        assert_eq!(resizes, vec![(30, 100)]);
        assert!(cast.events.windows(2).all(|w| w[0].time <= w[1].time));

        let mode = fs::metadata(&path).map_err(|e| Error::io("stat", &path, e))?;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        let parent =
            fs::metadata(dir.path().join("deep")).map_err(|e| Error::io("stat", &path, e))?;
        assert_eq!(parent.permissions().mode() & 0o777, 0o700);
        Ok(())
    }

    #[test]
    fn a_cut_last_line_is_ignored_but_a_bad_middle_line_is_an_error() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", "/tmp", e))?;
        let path = dir.path().join("cut.cast");
        let head = r#"{"version":2,"width":10,"height":5}"#;
        fs::write(
            &path,
            format!("{head}\n[0.1, \"o\", \"ab\"]\n[0.2, \"o\", \"c"),
        )
        .map_err(|e| Error::io("write", &path, e))?;
        let cast = read_cast(&path)?;
        assert_eq!(cast.output(), "ab");

        fs::write(&path, format!("{head}\n[0.1, \"o\"\n[0.2, \"o\", \"c\"]\n"))
            .map_err(|e| Error::io("write", &path, e))?;
        let err = read_cast(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("cut.cast:2:"), "{err}");

        fs::write(&path, "").map_err(|e| Error::io("write", &path, e))?;
        assert!(matches!(read_cast(&path), Err(Error::BadInput(_))));
        Ok(())
    }

    #[test]
    fn replay_follows_resizes_or_keeps_a_given_size() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", "/tmp", e))?;
        let path = dir.path().join("r.cast");
        let mut rec = Recorder::create(&path, &header(5, 20))?;
        rec.output(b"one\r\ntwo\x1b[6n")?;
        rec.resize(8, 30)?;
        rec.output(b"\r\nthree")?;
        drop(rec);
        let cast = read_cast(&path)?;

        let mut screen = replay_cast(&cast, None, 100);
        assert_eq!(screen.size(), (8, 30));
        assert!(screen.take_replies().is_empty());
        let text = screen.capture(false);
        assert_eq!(
            text.lines().take(3).collect::<Vec<_>>(),
            ["one", "two", "three"]
        );

        let mut fixed = replay_cast(&cast, Some((3, 12)), 100);
        assert_eq!(fixed.size(), (3, 12));
        assert_eq!(fixed.capture(false), "one\ntwo\nthree\n");
        Ok(())
    }
}
