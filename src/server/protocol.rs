//! The wire protocol between the engine and its clients (cockpits, `attach`, `status`,
//! `down`), over a Unix stream socket.
//!
//! Every message is a frame: a 4-byte big-endian length, then that many bytes. The first
//! frame each way is JSON, so that any version can read it: the client's [`Hello`] (its
//! protocol number) and the engine's [`Welcome`] (its own, and an error when they differ).
//! After that, frames are [`ToEngine`] and [`FromEngine`] messages in postcard (compact serde).
//!
//! Screens cross as cells, not bytes: the engine keeps the emulator and sends a client the
//! screen of the agent it shows ([`ScreenUpdate`]: the rows that changed since the last
//! update, at most one update per frame interval); the client keeps its copy in a [`Grid`].

use crate::agent::screen::{Cell, Cells, Color, QueryColors, Screen};
use crate::engine::{Command, Event, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol's number: a client and an engine of different numbers do not talk. (2: the
/// client tells its theme's colours; 3: snapshots carry the costs and frozen agents, and an
/// agent's view no longer repeats the pid and session its store row has.)
pub const PROTOCOL: u32 = 3;
/// The largest frame either side accepts (a snapshot of a big town is well below).
pub const MAX_FRAME: usize = 64 << 20;

/// The client's first frame (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    /// The client's `gastown-tui` version, for messages.
    pub version: String,
    /// What the client is: `cockpit`, `attach` (both counted as attached clients) or `cli`.
    pub client: String,
}

/// The engine's answer to [`Hello`] (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u32,
    pub version: String,
    pub pid: u32,
    pub town: String,
    /// Why the client is refused (another protocol, another user); `None`: go on.
    pub error: Option<String>,
}

/// What a client sends after the hello.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToEngine {
    /// The client's sizes: `pane` for agents shown in the panel, `full` for the one shown
    /// full screen (both rows, cols).
    Size { pane: (u16, u16), full: (u16, u16) },
    /// The agent whose screen the client shows (`None`: none), whether full screen, and how
    /// many lines it is scrolled back.
    Show {
        agent: Option<String>,
        full: bool,
        offset: usize,
    },
    /// The client theme's default colours, which agents are told when they ask the terminal
    /// (`OSC 10;?` / `OSC 11;?`): every agent gets those of the client used most recently.
    Colors(QueryColors),
    /// A command; its answer comes back as [`FromEngine::Answer`] with the same `id`.
    Command { id: u64, cmd: Command },
    /// Asks for [`FromEngine::Status`].
    Status,
    /// Stop the engine and every agent (their hooks stay).
    Stop,
}

/// What the engine sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromEngine {
    /// The whole state, whenever it changed (the first right after the welcome).
    Snapshot(Box<Snapshot>),
    Event(Event),
    /// The shown agent's screen.
    Screen(ScreenUpdate),
    /// The shown agent has no session (any more).
    NoScreen {
        agent: String,
    },
    /// The answer to [`ToEngine::Command`]: a diff's text, a sling's summary, or the error.
    Answer {
        id: u64,
        result: Result<Option<String>, crate::engine::Refusal>,
    },
    Status(EngineStatus),
    /// The engine is stopping (why: who asked); the connection closes next.
    Stopping {
        reason: String,
    },
}

/// How the engine is: `gastown-tui status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineStatus {
    pub pid: u32,
    pub socket: String,
    pub uptime_s: u64,
    /// Cockpits and `attach` clients connected now.
    pub clients: usize,
    pub version: String,
    pub protocol: u32,
    pub town: String,
    pub agents: AgentCounts,
}

/// Agents by state, and how many have a live session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentCounts {
    pub total: usize,
    pub running: usize,
    pub by_state: BTreeMap<String, usize>,
}

impl AgentCounts {
    /// Counts agents given as (state, has a live session).
    pub fn count<'a>(agents: impl IntoIterator<Item = (&'a str, bool)>) -> AgentCounts {
        let mut c = AgentCounts::default();
        for (state, running) in agents {
            c.total += 1;
            c.running += usize::from(running);
            *c.by_state.entry(state.to_string()).or_default() += 1;
        }
        c
    }

    /// Counts the agents of a snapshot (`running` from their live sessions).
    pub fn of(snapshot: &Snapshot) -> AgentCounts {
        AgentCounts::count(
            snapshot
                .agents
                .iter()
                .map(|a| (a.agent.state.as_str(), a.running)),
        )
    }
}

/// One cell on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireCell {
    /// Empty for a blank cell.
    pub text: String,
    pub fg: Color,
    pub bg: Color,
    /// [`attr`] bits.
    pub attrs: u8,
}

/// The bits of [`WireCell::attrs`].
pub mod attr {
    pub const BOLD: u8 = 1;
    pub const DIM: u8 = 2;
    pub const ITALIC: u8 = 4;
    pub const UNDERLINE: u8 = 8;
    pub const INVERSE: u8 = 16;
    pub const WIDE: u8 = 32;
    pub const WIDE_CONTINUATION: u8 = 64;
}

impl WireCell {
    fn of(c: &Cell<'_>) -> WireCell {
        let mut attrs = 0;
        for (on, bit) in [
            (c.bold, attr::BOLD),
            (c.dim, attr::DIM),
            (c.italic, attr::ITALIC),
            (c.underline, attr::UNDERLINE),
            (c.inverse, attr::INVERSE),
            (c.wide, attr::WIDE),
            (c.wide_continuation, attr::WIDE_CONTINUATION),
        ] {
            if on {
                attrs |= bit;
            }
        }
        WireCell {
            text: c.text.to_string(),
            fg: c.fg,
            bg: c.bg,
            attrs,
        }
    }

    fn cell(&self) -> Cell<'_> {
        let on = |bit: u8| self.attrs & bit != 0;
        Cell {
            text: self.text.as_str().into(),
            fg: self.fg,
            bg: self.bg,
            bold: on(attr::BOLD),
            dim: on(attr::DIM),
            italic: on(attr::ITALIC),
            underline: on(attr::UNDERLINE),
            inverse: on(attr::INVERSE),
            wide: on(attr::WIDE),
            wide_continuation: on(attr::WIDE_CONTINUATION),
        }
    }
}

/// What of a screen is not its cells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenState {
    /// `(rows, cols)`.
    pub size: (u16, u16),
    pub cursor: (u16, u16),
    pub cursor_visible: bool,
    /// Lines the view is scrolled back, and how many the history holds.
    pub view_offset: usize,
    pub history: usize,
    /// Keys the client must encode the program's way.
    pub application_cursor: bool,
    pub bracketed_paste: bool,
}

/// A change to the screen a client shows: the state, and the rows that changed (all of them
/// when the size changed or the client had none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScreenUpdate {
    pub agent: String,
    pub state: ScreenState,
    pub rows: Vec<(u16, Vec<WireCell>)>,
}

/// A screen as plain data: what the engine last sent a client, and the client's copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grid {
    pub state: ScreenState,
    pub rows: Vec<Vec<WireCell>>,
}

impl ScreenState {
    /// The state of the screen's current view.
    pub fn of(screen: &Screen) -> ScreenState {
        ScreenState {
            size: screen.size(),
            cursor: screen.cursor(),
            cursor_visible: screen.cursor_visible(),
            view_offset: screen.view_offset(),
            history: screen.scrollback_len(),
            application_cursor: screen.application_cursor(),
            bracketed_paste: screen.bracketed_paste(),
        }
    }
}

impl Grid {
    /// The screen's current view.
    pub fn of(screen: &Screen) -> Grid {
        let mut grid = Grid::default();
        grid.refresh(screen, &|_| true);
        grid
    }

    /// Brings this copy up to the screen's current view: the state, and the rows `dirty` says
    /// may have changed (every row when the size changed). Returns the rows that did change,
    /// top to bottom.
    pub fn refresh(&mut self, screen: &Screen, dirty: &dyn Fn(usize) -> bool) -> Vec<u16> {
        let (rows, cols) = screen.size();
        let resized = self.state.size != (rows, cols) || self.rows.len() != usize::from(rows);
        if resized {
            self.rows = vec![Vec::new(); usize::from(rows)];
        }
        let mut changed = Vec::new();
        for (r, old) in (0..rows).zip(self.rows.iter_mut()) {
            if !resized && !dirty(usize::from(r)) {
                continue;
            }
            let row: Vec<WireCell> = (0..cols)
                .map(|c| {
                    screen
                        .cell(r, c)
                        .map(|c| WireCell::of(&c))
                        .unwrap_or_default()
                })
                .collect();
            if resized || *old != row {
                *old = row;
                changed.push(r);
            }
        }
        self.state = ScreenState::of(screen);
        changed
    }

    /// The update that turns a client's copy of this grid as it was (its state `before`,
    /// `None`: the client has none) into this grid, `changed` being the rows changed since
    /// ([`Grid::refresh`]); `None` when nothing changed.
    pub fn update_of(
        &self,
        before: Option<&ScreenState>,
        changed: &[u16],
        agent: &str,
    ) -> Option<ScreenUpdate> {
        if changed.is_empty() && before == Some(&self.state) {
            return None;
        }
        let rows = match before {
            Some(b) if b.size == self.state.size => changed
                .iter()
                .filter_map(|&r| Some((r, self.rows.get(usize::from(r))?.clone())))
                .collect(),
            _ => (0..).zip(self.rows.iter().cloned()).collect(),
        };
        Some(ScreenUpdate {
            agent: agent.to_string(),
            state: self.state.clone(),
            rows,
        })
    }

    /// The update that turns `before` (`None`: nothing yet) into `self`; `None` when nothing
    /// changed.
    pub fn update_since(&self, before: Option<&Grid>, agent: &str) -> Option<ScreenUpdate> {
        let same_size = before.is_some_and(|b| b.state.size == self.state.size);
        let changed: Vec<u16> = (0..)
            .zip(self.rows.iter())
            .filter(|(i, row)| {
                !same_size || before.and_then(|b| b.rows.get(usize::from(*i))) != Some(*row)
            })
            .map(|(i, _)| i)
            .collect();
        self.update_of(before.map(|b| &b.state), &changed, agent)
    }

    /// Applies an update (rows outside the screen are ignored).
    pub fn apply(&mut self, u: ScreenUpdate) {
        let (rows, cols) = u.state.size;
        if self.state.size != u.state.size {
            self.rows = vec![vec![WireCell::default(); usize::from(cols)]; usize::from(rows)];
        }
        self.state = u.state;
        for (i, mut row) in u.rows {
            if let Some(r) = self.rows.get_mut(usize::from(i)) {
                row.resize(usize::from(cols), WireCell::default());
                *r = row;
            }
        }
    }
}

impl Cells for Grid {
    fn size(&self) -> (u16, u16) {
        self.state.size
    }
    fn cell(&self, row: u16, col: u16) -> Option<Cell<'_>> {
        self.rows
            .get(usize::from(row))?
            .get(usize::from(col))
            .map(WireCell::cell)
    }
    fn cursor(&self) -> (u16, u16) {
        self.state.cursor
    }
    fn cursor_visible(&self) -> bool {
        self.state.cursor_visible
    }
    fn view_offset(&self) -> usize {
        self.state.view_offset
    }
}

/// A frame that could not be read: the peer went away, sent too much, or sent nonsense.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("a frame of {0} bytes is over the limit of {MAX_FRAME}")]
    TooLarge(usize),
    #[error("a message that does not decode: {0}")]
    Decode(String),
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> std::io::Result<()> {
    if payload.len() > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "a frame of {} bytes is over the limit of {MAX_FRAME}",
            payload.len()
        )));
    }
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one frame; `None` when the peer closed the connection between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

/// Encodes a message after the hello.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serialising plain data to a Vec cannot fail.
    postcard::to_stdvec(msg).unwrap_or_default()
}

/// Decodes a message after the hello.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, FrameError> {
    postcard::from_bytes(bytes).map_err(|e| FrameError::Decode(e.to_string()))
}

/// Reads and decodes one message; `None` when the peer closed the connection.
pub async fn read_msg<R: AsyncRead + Unpin, T: for<'a> Deserialize<'a>>(
    r: &mut R,
) -> Result<Option<T>, FrameError> {
    match read_frame(r).await? {
        Some(bytes) => decode(&bytes).map(Some),
        None => Ok(None),
    }
}

/// Encodes and writes one message.
pub async fn write_msg<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> std::io::Result<()> {
    write_frame(w, &encode(msg)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(bytes: &[u8]) -> Screen {
        let mut s = Screen::new(4, 10, 100);
        s.process(bytes);
        s
    }

    fn text(g: &Grid) -> Vec<String> {
        g.rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| if c.text.is_empty() { " " } else { &c.text })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_client_copy_follows_the_screen_with_only_changed_rows() {
        let mut s = screen(b"one\r\ntwo\r\n\x1b[1;31mred\x1b[0m");
        let first = Grid::of(&s);
        let u = first.update_since(None, "nux").expect("a first update");
        assert_eq!(u.rows.len(), 4, "the first update carries every row");
        let mut copy = Grid::default();
        copy.apply(decode(&encode(&u)).unwrap());
        assert_eq!(copy, first);
        assert_eq!(text(&copy)[2], "red       ");
        let red = copy.cell(2, 0).unwrap();
        assert!(red.bold && red.fg == Color::Indexed(1), "{red:?}");

        // One row changes: one row crosses.
        s.process(b"\r\nfour");
        let second = Grid::of(&s);
        let u = second.update_since(Some(&first), "nux").unwrap();
        assert_eq!(u.rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3]);
        copy.apply(u);
        assert_eq!(copy, second);
        assert_eq!(copy.cursor(), (3, 4));
        // Nothing changed: nothing to send.
        assert!(Grid::of(&s).update_since(Some(&second), "nux").is_none());

        // A resize sends everything again at the new size.
        s.resize(3, 6);
        let third = Grid::of(&s);
        let u = third.update_since(Some(&second), "nux").unwrap();
        assert_eq!(u.rows.len(), 3);
        copy.apply(u);
        assert_eq!(copy.size(), (3, 6));
        assert_eq!(copy, third);
    }

    /// Terminal output in pieces that touch the screen every way a program can: text (wide,
    /// combining, wrapping), moves, erases, inserts and deletes, scroll regions, scrolls,
    /// insert mode, the alternate screen, DECALN.
    const PIECES: &[&[u8]] = &[
        b"hello",
        b"\xe4\xb8\x96\xe7\x95\x8c",
        b"e\xcc\x81",
        b"\r\n",
        b"\n",
        b"\r",
        b"\x08",
        b"\t",
        b"\x1b[H",
        b"\x1b[3;5H",
        b"\x1b[9;1H",
        b"\x1b[2;20H",
        b"\x1b[J",
        b"\x1b[1J",
        b"\x1b[2J",
        b"\x1b[K",
        b"\x1b[1K",
        b"\x1b[2K",
        b"\x1b[2@",
        b"\x1b[3P",
        b"\x1b[4X",
        b"\x1b[L",
        b"\x1b[2M",
        b"\x1b[2;5r",
        b"\x1b[r",
        b"\x1b[S",
        b"\x1b[2T",
        b"\x1bM",
        b"\x1bD",
        b"\x1b[4h",
        b"\x1b[4l",
        b"\x1b[?1049h",
        b"\x1b[?1049l",
        b"\x1b#8",
        b"\x1b[1;31m",
        b"\x1b[44m",
        b"\x1b[0m",
        b"\x1b7",
        b"\x1b8",
        b"\x1b[?7l",
        b"\x1b[?7h",
        b"0123456789abcdefghij",
        b"\x1b[5b",
        b"\x1b[?25l",
        b"\x1b[?25h",
    ];

    #[test]
    fn reading_only_the_rows_whose_stamp_moved_gives_the_whole_screen() {
        let mut s = Screen::new(8, 20, 100);
        let mut kept = Grid::default();
        let mut client = Grid::default();
        let mut seen: Vec<u64> = Vec::new();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut partial = 0;
        for step in 0..4000 {
            let mut chunk = Vec::new();
            for _ in 0..1 + next(4) {
                chunk.extend_from_slice(PIECES[next(PIECES.len())]);
            }
            s.process(&chunk);
            if step % 500 == 499 {
                s.resize(6 + next(6) as u16, 12 + next(20) as u16);
            }
            let stamps = s.row_stamps().to_vec();
            let same = seen.len() == stamps.len();
            let before = (step > 0).then(|| kept.state.clone());
            let dirty = |r: usize| !same || seen[r] != stamps[r];
            let read = (0..stamps.len()).filter(|&r| dirty(r)).count();
            if read < stamps.len() {
                partial += 1;
            }
            let changed = kept.refresh(&s, &dirty);
            seen = stamps;
            let whole = Grid::of(&s);
            assert_eq!(kept, whole, "step {step}: after {chunk:?}");
            if let Some(u) = kept.update_of(before.as_ref(), &changed, "nux") {
                client.apply(decode(&encode(&u)).unwrap());
            }
            assert_eq!(
                client, whole,
                "step {step}: the client's copy after {chunk:?}"
            );
        }
        // Many looks read only some rows, though these pieces scroll a lot.
        assert!(
            partial > 1000,
            "only {partial} of 4000 looks read fewer than all rows"
        );
    }

    #[test]
    fn a_spinner_line_moves_the_stamp_of_its_row_alone() {
        let mut s = Screen::new(40, 120, 100);
        for i in 0..30 {
            s.process(format!("\x1b[1;34mline {i}\x1b[0m of the log\r\n").as_bytes());
        }
        let before = s.row_stamps().to_vec();
        // A status line redrawn in place, the cursor put back where it was.
        s.process("\x1b7\x1b[38;1H\x1b[2K\u{280b} Working (3s)\x1b8".as_bytes());
        let after = s.row_stamps().to_vec();
        let moved: Vec<usize> = (0..40).filter(|&r| before[r] != after[r]).collect();
        // Row 37, and the cursor's row (30), which a cursor move always counts.
        assert_eq!(moved, [30, 37]);
        // With nothing printed, only the cursor's row is counted again.
        let again = s.row_stamps().to_vec();
        let moved: Vec<usize> = (0..40).filter(|&r| after[r] != again[r]).collect();
        assert_eq!(moved, [30]);
    }

    #[test]
    fn frames_refuse_what_is_too_large_or_not_a_message() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut huge: &[u8] = &(u32::MAX).to_be_bytes();
            assert!(matches!(
                read_frame(&mut huge).await,
                Err(FrameError::TooLarge(_))
            ));
            let mut buf = Vec::new();
            write_frame(&mut buf, &[0xff, 0xff, 0xff]).await.unwrap();
            let mut r: &[u8] = &buf;
            let got: Result<Option<ToEngine>, _> = read_msg(&mut r).await;
            assert!(matches!(got, Err(FrameError::Decode(_))), "{got:?}");
            // A cut frame is an error, a clean end is None.
            let mut cut: &[u8] = &buf[..5];
            assert!(read_frame(&mut cut).await.is_err());
            let mut empty: &[u8] = &[];
            assert!(read_frame(&mut empty).await.unwrap().is_none());
        });
    }
}
