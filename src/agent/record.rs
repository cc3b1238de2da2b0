//! Session recordings in asciicast v2 (<https://docs.asciinema.org/manual/asciicast/v2/>).
//!
//! A header line (JSON object), then one JSON array per event: `[seconds, "o", "text"]` for
//! output, `[seconds, "r", "COLSxROWS"]` for a resize. Each event is written with a single
//! `write` as it happens (no user-space buffering), so a recording is readable up to the
//! moment its writer was killed, even by `kill -9`. Files are created mode 0600 in
//! directories created 0700.

use crate::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

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
        parse_size(&self.data)
    }
}

/// The data of a resize event (`COLSxROWS`) as `(rows, cols)`.
pub fn parse_size(data: &str) -> Option<(u16, u16)> {
    let (cols, rows) = data.split_once('x')?;
    Some((rows.trim().parse().ok()?, cols.trim().parse().ok()?))
}

/// One event line (`[time, "code", "data"]`, without its newline).
pub fn parse_event(line: &[u8]) -> serde_json::Result<CastEvent> {
    let (time, code, data) = serde_json::from_slice::<(f64, &str, String)>(line)?;
    Ok(CastEvent {
        time,
        kind: EventKind::parse(code),
        data,
    })
}

/// The header line of the recording at `path` (line `n`, 1-based): an asciicast v2 header, or
/// an error naming the file and line.
pub fn parse_header(path: &Path, n: usize, line: &[u8]) -> Result<CastHeader> {
    let header: CastHeader = serde_json::from_slice(line).map_err(|e| {
        Error::bad(format!(
            "{}:{n}: not an asciicast header: {e}",
            path.display()
        ))
    })?;
    if header.version != 2 {
        return Err(Error::bad(format!(
            "{}:{n}: asciicast version {} is not supported (only 2)",
            path.display(),
            header.version
        )));
    }
    Ok(header)
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
        self.output_at(self.start.elapsed(), &[bytes])
    }

    /// Records `chunks` of output, handed over `at` after the start, as one event.
    fn output_at(&mut self, at: Duration, chunks: &[&[u8]]) -> Result<()> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        event_start(&mut line, at, "o");
        let empty = line.len();
        for chunk in chunks {
            escape_utf8(&mut line, chunk, &mut self.carry);
        }
        let result = if line.len() == empty {
            Ok(())
        } else {
            line.extend_from_slice(b"\"]\n");
            self.write_line(&line)
        };
        self.line = line;
        result
    }

    /// Records a resize to `rows` x `cols`.
    pub fn resize(&mut self, rows: u16, cols: u16) -> Result<()> {
        self.resize_at(self.start.elapsed(), rows, cols)
    }

    fn resize_at(&mut self, at: Duration, rows: u16, cols: u16) -> Result<()> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        event_start(&mut line, at, "r");
        // Writing into a Vec cannot fail.
        let _ = writeln!(line, "{cols}x{rows}\"]");
        let result = self.write_line(&line);
        self.line = line;
        result
    }

    /// Records what is left of a cut UTF-8 sequence (as U+FFFD), at the end of a session.
    pub fn finish(&mut self) -> Result<()> {
        if self.carry.is_empty() {
            return Ok(());
        }
        self.carry.clear();
        self.output_at(self.start.elapsed(), &["\u{fffd}".as_bytes()])
    }

    fn write_line(&mut self, line: &[u8]) -> Result<()> {
        self.file
            .write_all(line)
            .map_err(|e| Error::io("write recording", &self.path, e))
    }
}

/// `[seconds, "code", "` (the data and its end follow).
fn event_start(line: &mut Vec<u8>, at: Duration, code: &str) {
    // Writing into a Vec cannot fail.
    let _ = write!(line, "[{:.6}, \"{code}\", \"", at.as_secs_f64());
}

/// Appends `bytes` as the inside of a JSON string: valid UTF-8 is copied in runs, with only
/// `"`, `\` and control characters escaped; invalid bytes become U+FFFD; an incomplete
/// sequence at the very end waits in `carry` for the next chunk.
fn escape_utf8(out: &mut Vec<u8>, bytes: &[u8], carry: &mut Vec<u8>) {
    let joined;
    let mut rest = if carry.is_empty() {
        bytes
    } else {
        let mut j = std::mem::take(carry);
        j.extend_from_slice(bytes);
        joined = j;
        &joined[..]
    };
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                escape_json(out, s.as_bytes());
                return;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                escape_json(out, good);
                match e.error_len() {
                    Some(n) => {
                        out.extend_from_slice("\u{fffd}".as_bytes());
                        rest = &bad[n..];
                    }
                    None => {
                        carry.extend_from_slice(bad);
                        return;
                    }
                }
            }
        }
    }
}

/// Appends valid UTF-8 `s` with JSON string escapes.
fn escape_json(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// Output waiting for the recorder thread beyond this makes the session's parser wait (see
/// [`RecorderLink::wait_room`]).
pub const QUEUE_BYTES: usize = 1 << 20;
/// Below this much output waiting, the writer waits up to [`GATHER`] for more.
const GATHER_BYTES: usize = 32 * 1024;
const GATHER: Duration = Duration::from_millis(2);
/// Outputs handed over within this of the first one waiting are written as one event.
const COALESCE: Duration = Duration::from_millis(20);

enum RecMsg {
    Output(Duration, Vec<u8>),
    Resize(Duration, u16, u16),
}

impl std::fmt::Debug for RecMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecMsg::Output(_, b) => write!(f, "Output({} bytes)", b.len()),
            RecMsg::Resize(_, r, c) => write!(f, "Resize({r}x{c})"),
        }
    }
}

#[derive(Default)]
struct Queue {
    items: std::collections::VecDeque<RecMsg>,
    /// Output bytes handed over and not yet written (or dropped after a write error).
    waiting: usize,
    /// Output bytes handed over, and written, since the start.
    handed: u64,
    written: u64,
    closed: bool,
}

struct Pipe {
    queue: Mutex<Queue>,
    /// Something to write, or the end.
    work: Condvar,
    /// Something was written.
    done: Condvar,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A [`Recorder`] on its own thread, so writing the cast (escaping, the write call) overlaps
/// with parsing the same bytes on the session's parser thread. Events keep the order in which
/// they are handed over. Outputs that queue up while the thread writes are written as one
/// event. The queue is bounded: past [`QUEUE_BYTES`] waiting, [`RecorderLink::wait_room`]
/// blocks (the session's parser calls it after each chunk), so a disk slower than the program
/// slows the program down instead of filling memory. A write error stops the recording (logged),
/// never the session.
pub struct RecorderThread {
    pipe: Arc<Pipe>,
    start: Instant,
    handle: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl std::fmt::Debug for RecorderThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderThread")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A handle to wait on a recorder's queue, without holding the recorder.
#[derive(Clone)]
pub struct RecorderLink(Arc<Pipe>);

impl RecorderLink {
    /// Blocks while more than [`QUEUE_BYTES`] of output wait to be written.
    pub fn wait_room(&self) {
        let mut q = self.0.lock();
        while q.waiting > QUEUE_BYTES && !q.closed {
            q = self.0.done.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Blocks until all output handed over so far is written, for at most `patience`;
    /// whether it was.
    pub fn sync(&self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        let mut q = self.0.lock();
        let target = q.handed;
        while q.written < target && !q.closed {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            q = self
                .0
                .done
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        q.written >= target
    }
}

impl RecorderThread {
    pub fn start(rec: Recorder) -> Result<RecorderThread> {
        let path = rec.path().to_path_buf();
        let start = rec.start;
        let pipe = Arc::new(Pipe {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        // Test hook: a recorder that writes at most this many bytes of output a second, to
        // stand for a slow disk.
        let rate = std::env::var("GT_TEST_RECORDER_RATE")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&r| r > 0);
        let handle = {
            let pipe = Arc::clone(&pipe);
            std::thread::Builder::new()
                .name("agent-recorder".into())
                .spawn(move || write_loop(rec, &pipe, rate))
                .map_err(|e| Error::io("start the recorder for", &path, e))?
        };
        Ok(RecorderThread {
            pipe,
            start,
            handle: Some(handle),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands over a chunk of output. Never blocks (see [`RecorderLink::wait_room`]).
    pub fn output(&self, bytes: Vec<u8>) {
        let at = self.start.elapsed();
        let mut q = self.pipe.lock();
        let idle = q.items.is_empty();
        q.waiting += bytes.len();
        q.handed += bytes.len() as u64;
        q.items.push_back(RecMsg::Output(at, bytes));
        drop(q);
        // A writer with work in hand takes this with it; only one waiting needs waking.
        if idle {
            self.pipe.work.notify_one();
        }
    }

    /// Hands over a resize. Never blocks.
    pub fn resize(&self, rows: u16, cols: u16) {
        let at = self.start.elapsed();
        self.pipe
            .lock()
            .items
            .push_back(RecMsg::Resize(at, rows, cols));
        self.pipe.work.notify_one();
    }

    /// What to wait on for room in the queue, or for everything to be written.
    pub fn link(&self) -> RecorderLink {
        RecorderLink(Arc::clone(&self.pipe))
    }

    /// Writes everything handed over and closes the recording.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.pipe.lock().closed = true;
        self.pipe.work.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.pipe.done.notify_all();
    }
}

impl Drop for RecorderThread {
    fn drop(&mut self) {
        self.stop();
    }
}

fn output_len(m: &RecMsg) -> usize {
    match m {
        RecMsg::Output(_, b) => b.len(),
        RecMsg::Resize(..) => 0,
    }
}

fn write_loop(mut rec: Recorder, pipe: &Pipe, rate: Option<u64>) {
    crate::agent::sys::background_priority();
    let mut ok = true;
    loop {
        let mut q = pipe.lock();
        while q.items.is_empty() && !q.closed {
            q = pipe.work.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
        if q.items.is_empty() {
            break;
        }
        // A little output: let more gather, so a busy agent costs a write per batch, not per
        // read.
        if q.waiting < GATHER_BYTES && !q.closed {
            q = pipe
                .work
                .wait_timeout(q, GATHER)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let batch: Vec<RecMsg> = q.items.drain(..).collect();
        drop(q);
        if let Some(rate) = rate {
            let bytes: usize = batch.iter().map(output_len).sum();
            std::thread::sleep(Duration::from_secs_f64(bytes as f64 / rate as f64));
        }
        let mut bytes = 0usize;
        let mut i = 0;
        while ok && i < batch.len() {
            let r = match &batch[i] {
                RecMsg::Resize(at, rows, cols) => {
                    i += 1;
                    rec.resize_at(*at, *rows, *cols)
                }
                RecMsg::Output(at, _) => {
                    let mut chunks: Vec<&[u8]> = Vec::new();
                    while let Some(RecMsg::Output(t, b)) = batch.get(i) {
                        if t.saturating_sub(*at) > COALESCE {
                            break;
                        }
                        chunks.push(b);
                        bytes += b.len();
                        i += 1;
                    }
                    rec.output_at(*at, &chunks)
                }
            };
            if let Err(e) = r {
                tracing::warn!("recording stopped: {e}");
                ok = false;
            }
        }
        // After a write error the rest is dropped, and counted as written so nobody waits.
        bytes += batch[i..].iter().map(output_len).sum::<usize>();
        let mut q = pipe.lock();
        q.waiting = q.waiting.saturating_sub(bytes);
        q.written += bytes as u64;
        drop(q);
        pipe.done.notify_all();
    }
    if ok {
        if let Err(e) = rec.finish() {
            tracing::warn!("recording: {e}");
        }
    }
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
        break parse_header(path, n + 1, line.as_bytes())?;
    };
    let mut events = Vec::new();
    while let Some((n, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_event(line.as_bytes()) {
            Ok(event) => events.push(event),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header for test recordings of `rows` x `cols`.
    pub(crate) fn header(rows: u32, cols: u32) -> CastHeader {
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

    /// What `escape_utf8` wrote, read back as a JSON string.
    fn unescape(out: &[u8]) -> String {
        let mut quoted = b"\"".to_vec();
        quoted.extend_from_slice(out);
        quoted.push(b'"');
        serde_json::from_slice(&quoted).unwrap_or_else(|e| {
            panic!(
                "not a JSON string ({e}): {}",
                String::from_utf8_lossy(&quoted)
            )
        })
    }

    #[test]
    fn escaping_carries_cut_sequences_and_replaces_bad_bytes() {
        let mut carry = Vec::new();
        let mut out = Vec::new();
        escape_utf8(&mut out, b"a\xe2", &mut carry);
        assert_eq!(unescape(&out), "a");
        assert_eq!(carry, b"\xe2");
        escape_utf8(&mut out, b"\x82\xacb\"\\\x1b[1m\n\r\t\x00\x7f", &mut carry);
        assert!(carry.is_empty());
        assert_eq!(unescape(&out), "a\u{20ac}b\"\\\x1b[1m\n\r\t\u{0}\x7f");
        out.clear();
        escape_utf8(&mut out, b"x\xffy\xc3", &mut carry);
        assert_eq!(unescape(&out), "x\u{fffd}y");
        assert_eq!(carry, b"\xc3");
    }

    #[test]
    fn any_bytes_escape_to_the_json_of_their_lossy_text() {
        // A deterministic spread of bytes: mostly text, every control byte, bad UTF-8.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..200 {
            let mut bytes = Vec::new();
            for _ in 0..(round * 7 % 300) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(match state % 4 {
                    0 => (state >> 8) as u8,
                    1 => (state >> 8) as u8 % 0x20,
                    _ => b'a' + (state >> 8) as u8 % 26,
                });
            }
            bytes.extend_from_slice("é漢".as_bytes());
            let mut out = Vec::new();
            let mut carry = Vec::new();
            escape_utf8(&mut out, &bytes, &mut carry);
            assert!(carry.is_empty());
            assert_eq!(
                unescape(&out),
                String::from_utf8_lossy(&bytes),
                "round {round}"
            );
            assert_eq!(
                serde_json::to_vec(&String::from_utf8_lossy(&bytes).as_ref()).ok(),
                Some([&b"\""[..], &out, b"\""].concat()),
                "the same bytes as serde_json writes, round {round}"
            );
        }
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
}
