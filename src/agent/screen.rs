//! The terminal emulator boundary: bytes in, a screen of cells out.
//!
//! Everything that knows about `vt100` lives in this file, so another emulator can replace it
//! by rewriting this module only. The rest of the crate sees [`Screen`], [`Cell`], [`Color`]
//! and a few mode enums.
//!
//! On top of `vt100` this layer adds what a hosted program needs from a real terminal and
//! `vt100` 0.18 does not do by itself:
//! - answers to terminal queries (cursor position, device status, primary and secondary
//!   device attributes, DEC private mode reports, OSC 10/11/12 colour queries), collected as
//!   reply bytes for the caller to write back into the PTY ([`Screen::take_replies`]);
//! - DEC special graphics (`ESC ( 0`, `ESC ) 0` + SO/SI): line-drawing bytes are translated to
//!   Unicode box-drawing characters before the emulator sees them;
//! - the synchronized-output flag (`CSI ? 2026 h/l`);
//! - a compact history: vt100 keeps no scrollback (32 bytes a cell, every row full width);
//!   rows that scroll off are kept as SGR-formatted text, about a byte a character, and a
//!   view scrolled back is drawn from them ([`Screen::set_view_offset`]). Clearing the screen
//!   can scroll it into the history first, as tmux does ([`Screen::set_scroll_on_clear`]);
//! - a collecting mode for replaying recordings into a whole history ([`Screen::collector`],
//!   [`crate::agent::history`]);
//! - containment: every call into the emulator is guarded with `catch_unwind`; a panic rebuilds
//!   the emulator at the same size from a bounded tail of recent output (or blank, if replaying
//!   the tail panics too).
//!
//! A small escape-sequence scanner runs alongside the emulator to find queries, charset
//! switches and the synchronized-output mode; it follows the same state machine as the
//! emulator's parser (`vte`), so both agree on where sequences begin and end, also across
//! reads that split a sequence.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Smallest size the screen accepts; smaller requests are clamped (vt100 panics at 0 or 1).
pub const MIN_ROWS: u16 = 2;
/// Smallest width the screen accepts.
pub const MIN_COLS: u16 = 2;
/// Largest size the screen accepts; larger requests are clamped to bound memory.
pub const MAX_ROWS: u16 = 1000;
/// Largest width the screen accepts.
pub const MAX_COLS: u16 = 1000;

/// Recent output is kept in two halves of this size for rebuilding after an emulator panic,
/// so the replayed tail is between this and twice this long.
const TAIL_HALF: usize = 128 * 1024;
/// Titles longer than this (bytes) are cut.
const MAX_TITLE: usize = 1024;
/// Pending reply bytes beyond this are dropped (a child flooding queries without reading).
const MAX_REPLIES: usize = 64 * 1024;
/// Parameters of one CSI sequence the scanner keeps (the rest are ignored).
const MAX_CSI_PARAMS: usize = 16;
/// Bytes of an OSC payload the scanner keeps (enough to recognise `11;?;?`).
const MAX_OSC_PREFIX: usize = 16;

/// Clamps a requested size into what the screen supports: `(rows, cols)`.
pub fn clamp_size(rows: u16, cols: u16) -> (u16, u16) {
    (
        rows.clamp(MIN_ROWS, MAX_ROWS),
        cols.clamp(MIN_COLS, MAX_COLS),
    )
}

/// A 24-bit colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// The colours reported to programs that ask for the terminal's default foreground and
/// background (`OSC 10;?` / `OSC 11;?`). Programs use them to pick a light or dark palette,
/// so they should match the cockpit's theme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueryColors {
    pub foreground: Rgb,
    pub background: Rgb,
}

impl Default for QueryColors {
    fn default() -> Self {
        QueryColors {
            foreground: Rgb(0xe5, 0xe5, 0xe5),
            background: Rgb(0, 0, 0),
        }
    }
}

/// The colour of a cell's text or background.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Color {
    /// The terminal's default colour.
    #[default]
    Default,
    /// One of the 256 indexed colours.
    Indexed(u8),
    /// A 24-bit colour.
    Rgb(u8, u8, u8),
}

impl From<vt100::Color> for Color {
    fn from(c: vt100::Color) -> Self {
        match c {
            vt100::Color::Default => Color::Default,
            vt100::Color::Idx(i) => Color::Indexed(i),
            vt100::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
        }
    }
}

/// One cell of the screen, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell<'a> {
    /// The text in the cell: empty for a blank cell, else one character plus any combining
    /// characters.
    pub text: &'a str,
    pub fg: Color,
    pub bg: Color,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
    pub inverse: bool,
    /// The first half of a double-width character.
    pub wide: bool,
    /// The second half of a double-width character (draw nothing here).
    pub wide_continuation: bool,
}

/// What a renderer reads of a terminal screen: the engine's [`Screen`], or the copy of it a
/// cockpit keeps from the engine's updates (the server protocol's `Grid`).
pub trait Cells {
    /// `(rows, cols)`.
    fn size(&self) -> (u16, u16);
    /// The cell at `row`, `col` of the current view, if inside the screen.
    fn cell(&self, row: u16, col: u16) -> Option<Cell<'_>>;
    /// The cursor as `(row, col)`.
    fn cursor(&self) -> (u16, u16);
    fn cursor_visible(&self) -> bool;
    /// Lines the view is scrolled back (0 = live).
    fn view_offset(&self) -> usize;
}

impl Cells for Screen {
    fn size(&self) -> (u16, u16) {
        Screen::size(self)
    }
    fn cell(&self, row: u16, col: u16) -> Option<Cell<'_>> {
        Screen::cell(self, row, col)
    }
    fn cursor(&self) -> (u16, u16) {
        Screen::cursor(self)
    }
    fn cursor_visible(&self) -> bool {
        Screen::cursor_visible(self)
    }
    fn view_offset(&self) -> usize {
        Screen::view_offset(self)
    }
}

/// Which mouse events the program asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MouseMode {
    #[default]
    None,
    /// Button presses only (X10).
    Press,
    /// Presses and releases.
    PressRelease,
    /// Presses, releases and motion while a button is held.
    ButtonMotion,
    /// Presses, releases and all motion.
    AnyMotion,
}

/// How mouse events are to be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MouseEncoding {
    #[default]
    Default,
    Utf8,
    Sgr,
}

/// The emulator's callbacks: the window title, the bell, and rows leaving the screen.
///
/// The emulator keeps no history of its own (32 bytes a cell, every row the full width): rows
/// that scroll off the top of the main screen are kept here as basic formatted text (SGR
/// sequences and text, about a byte a character), the newest `keep` of them.
#[derive(Default)]
struct Hooks {
    title: String,
    bells: u64,
    /// Rows of the main screen that scrolled off the top since the screen started.
    scrolled: u64,
    /// The history: the newest rows that scrolled off, at most `keep`.
    lines: std::collections::VecDeque<String>,
    keep: usize,
    /// While replaying recent output into a rebuilt emulator: its rows are in `lines` already.
    muted: bool,
    /// When collecting ([`Screen::collector`]): the rows and the clears, in order.
    collect: Option<Vec<Collected>>,
}

/// What a collecting screen ([`Screen::collector`]) reports, in the order it happened. Rows
/// are basic formatted text: SGR sequences and text, from default attributes (see
/// [`Screen::from_rows`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Collected {
    /// A row scrolled off the top of the main screen.
    Scrolled(String),
    /// The main screen was cleared (`CSI 2 J`): its rows down to the last one with text, as
    /// they were just before.
    ClearedScreen(Vec<String>),
    /// The program cleared the history (`CSI 3 J`).
    ClearedHistory,
}

impl vt100::Callbacks for Hooks {
    fn audible_bell(&mut self, _: &mut vt100::Screen) {
        self.bells = self.bells.wrapping_add(1);
    }

    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        let title = &title[..title.len().min(MAX_TITLE)];
        self.title = String::from_utf8_lossy(title)
            .chars()
            .filter(|c| !c.is_control())
            .collect();
    }
    // Resize requests from the child (`CSI 8 ; rows ; cols t`) are deliberately ignored: the
    // pane decides the size, not the program.

    fn on_scroll(&mut self, row: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        if alternate_screen || self.muted {
            return;
        }
        self.scrolled = self.scrolled.wrapping_add(1);
        if self.collect.is_none() && self.keep == 0 {
            return;
        }
        let mut text = String::new();
        let mut state = vt100::capture::BasicFormattedCaptureState::new();
        // Writing into a String cannot fail.
        let _ = row.write_formatted_basic(&mut text, &mut state);
        if let Some(rows) = &mut self.collect {
            rows.push(Collected::Scrolled(text));
            return;
        }
        if self.lines.len() >= self.keep {
            self.lines.pop_front();
        }
        self.lines.push_back(text);
    }
}

/// A terminal screen fed with a program's output.
pub struct Screen {
    parser: vt100::Parser<Hooks>,
    rows: u16,
    cols: u16,
    /// Clearing the screen scrolls it into the history first (see
    /// [`Screen::set_scroll_on_clear`]).
    scroll_on_clear: bool,
    scan: Scanner,
    colors: QueryColors,
    /// Translated bytes waiting to be fed (only used while DEC graphics are active).
    out: Vec<u8>,
    replies: Vec<u8>,
    tail: Tail,
    /// The view scrolled back into the history ([`Screen::set_view_offset`]), and how far.
    view: Option<(usize, Box<Screen>)>,
    rebuilds: u64,
    #[cfg(test)]
    panics_to_inject: u32,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("scrollback", &self.parser.callbacks().keep)
            .field("rebuilds", &self.rebuilds)
            .finish_non_exhaustive()
    }
}

impl Screen {
    /// A blank screen of `rows` x `cols` (clamped, see [`clamp_size`]) keeping at most
    /// `scrollback` lines of history.
    pub fn new(rows: u16, cols: u16, scrollback: usize) -> Screen {
        let (rows, cols) = clamp_size(rows, cols);
        let hooks = Hooks {
            keep: scrollback,
            ..Hooks::default()
        };
        Screen {
            parser: new_parser(rows, cols, hooks),
            rows,
            cols,
            scroll_on_clear: false,
            scan: Scanner::default(),
            colors: QueryColors::default(),
            out: Vec::new(),
            replies: Vec::new(),
            tail: Tail::default(),
            view: None,
            rebuilds: 0,
            #[cfg(test)]
            panics_to_inject: 0,
        }
    }

    /// With `on`, clearing the whole screen (`CSI 2 J`) first scrolls its rows into the
    /// history, down to the last row with text, as tmux's `scroll-on-clear` does; what the
    /// screen shows is unchanged. The alternate screen has no history and is cleared as usual.
    pub fn set_scroll_on_clear(&mut self, on: bool) {
        self.scroll_on_clear = on;
    }

    /// Lines that have scrolled off the top of the main screen since it started, whether the
    /// history still holds them or not (the program may have cleared it).
    pub fn history_seen(&self) -> u64 {
        self.parser.callbacks().scrolled
    }

    /// A screen that keeps no history itself and reports every row that scrolls off the top
    /// of the main screen, and every clear of the screen or of the history, to
    /// [`Screen::take_collected`]. For replaying recordings into a history
    /// ([`crate::agent::history`]).
    pub fn collector(rows: u16, cols: u16) -> Screen {
        let mut s = Screen::new(rows, cols, 0);
        s.parser.callbacks_mut().collect = Some(Vec::new());
        s
    }

    /// What was collected since the last call, oldest first (see [`Screen::collector`]).
    pub fn take_collected(&mut self) -> Vec<Collected> {
        self.parser
            .callbacks_mut()
            .collect
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The rows of the main screen as basic formatted text (as [`Screen::take_collected`]
    /// gives them), top to bottom, empty for a blank row; the active screen when the alternate
    /// one is in use.
    pub fn formatted_rows(&self) -> Vec<String> {
        (0..self.rows).map(|r| self.formatted_row(r)).collect()
    }

    /// One row of [`Screen::formatted_rows`] (empty outside the screen).
    pub fn formatted_row(&self, row: u16) -> String {
        let mut out = String::new();
        let mut current = Pen::default();
        let mut blanks = 0usize;
        for col in 0..self.cols {
            let Some(cell) = self.live_cell(row, col) else {
                break;
            };
            if cell.wide_continuation {
                continue;
            }
            let pen = Pen::of(&cell);
            if cell.text.is_empty() && pen == Pen::default() {
                blanks += 1;
                continue;
            }
            if blanks > 0 {
                if current != Pen::default() {
                    out.push_str("\x1b[m");
                    current = Pen::default();
                }
                out.extend(std::iter::repeat_n(' ', blanks));
                blanks = 0;
            }
            if pen != current {
                pen.write_sgr(&mut out);
                current = pen;
            }
            out.push_str(if cell.text.is_empty() { " " } else { cell.text });
        }
        out
    }

    /// A screen of `rows` x `cols` showing `lines` (basic formatted text, one per row, from the
    /// top; extra lines are ignored), no history, the cursor hidden. For views of a history.
    pub fn from_rows<'a>(rows: u16, cols: u16, lines: impl IntoIterator<Item = &'a str>) -> Screen {
        let (rows, cols) = clamp_size(rows, cols);
        let lines: Vec<&str> = lines.into_iter().take(usize::from(rows)).collect();
        // Drawn on a screen wide enough that no line wraps, then cut to the width asked for.
        let widest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let wide = u16::try_from(widest.saturating_mul(2))
            .unwrap_or(MAX_COLS)
            .clamp(cols, MAX_COLS);
        let mut s = Screen::new(rows, wide, 0);
        let mut bytes = Vec::from(&b"\x1b[?25l"[..]);
        for (i, line) in lines.iter().enumerate() {
            bytes.extend_from_slice(format!("\x1b[{};1H\x1b[m", i + 1).as_bytes());
            push_sgr_and_text(&mut bytes, line);
        }
        bytes.extend_from_slice(b"\x1b[m");
        s.process(&bytes);
        s.resize(rows, cols);
        s
    }

    /// The screen's state at this point of its output, to start another screen from
    /// ([`Screen::restore`]) and feed it what follows. `None` when this is not a good place:
    /// inside an escape sequence, on the alternate screen, or with DEC graphics active.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        let s = self.parser.screen();
        if self.scan.state != State::Ground
            || self.scan.active() != Charset::Ascii
            || s.alternate_screen()
            || !self.out.is_empty()
        {
            return None;
        }
        let mut state = s.state_formatted().into_bytes();
        if let Some((top, bottom)) = self.scan.region {
            // Setting the region homes the cursor: put it back.
            let (row, col) = s.cursor_position();
            state.extend_from_slice(
                format!("\x1b[{top};{bottom}r\x1b[{};{}H", row + 1, col + 1).as_bytes(),
            );
        }
        Some(Checkpoint {
            rows: self.rows,
            cols: self.cols,
            state,
            scan: self.scan.clone(),
        })
    }

    /// A collecting screen ([`Screen::collector`]) in the state `cp` was taken in.
    pub fn restore(cp: &Checkpoint) -> Screen {
        let mut s = Screen::collector(cp.rows, cp.cols);
        s.process(&cp.state);
        drop(s.take_replies());
        drop(s.take_collected());
        s.scan = cp.scan.clone();
        s
    }

    /// Sets the colours reported to `OSC 10;?` / `OSC 11;?` queries.
    pub fn set_query_colors(&mut self, colors: QueryColors) {
        self.colors = colors;
    }

    /// Feeds program output. Never panics: an emulator panic is contained and the screen
    /// rebuilt. Replies to terminal queries in `bytes` are queued for [`Screen::take_replies`].
    pub fn process(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(test)]
            if self.panics_to_inject > 0 {
                self.panics_to_inject -= 1;
                panic!("injected emulator panic (test)");
            }
            self.feed(bytes, true);
        }));
        match result {
            Ok(()) => self.tail.push(bytes),
            Err(payload) => {
                tracing::warn!(
                    panic = panic_message(payload.as_ref()),
                    bytes = bytes.len(),
                    "terminal emulator panicked on program output; rebuilding the screen"
                );
                // The chunk that caused the panic is dropped: it is not in the tail yet.
                self.rebuild();
            }
        }
    }

    /// Takes the reply bytes for queries seen so far (to be written into the PTY, in order).
    pub fn take_replies(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.replies)
    }

    /// Resizes the screen (clamped, see [`clamp_size`]).
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let (rows, cols) = clamp_size(rows, cols);
        if (rows, cols) == (self.rows, self.cols) {
            return;
        }
        self.rows = rows;
        self.cols = cols;
        self.view = None;
        let (r, c) = nonzero(rows, cols);
        let result = catch_unwind(AssertUnwindSafe(|| self.parser.set_size(r, c)));
        if let Err(payload) = result {
            tracing::warn!(
                panic = panic_message(payload.as_ref()),
                rows,
                cols,
                "terminal emulator panicked on resize; rebuilding the screen"
            );
            self.rebuild();
        }
    }

    /// The size as `(rows, cols)`.
    pub fn size(&self) -> (u16, u16) {
        (self.rows, self.cols)
    }

    /// The screen's text like `tmux capture-pane -p`: one line per row, each ended by `\n`,
    /// trailing spaces trimmed, wide characters once. With `scrollback`, the history rows come
    /// first (like `capture-pane -p -S -`). Always the live screen, whatever the view offset.
    pub fn capture(&mut self, scrollback: bool) -> String {
        let result = catch_unwind(AssertUnwindSafe(|| self.capture_inner(scrollback)));
        match result {
            Ok(text) => text,
            Err(payload) => {
                tracing::warn!(
                    panic = panic_message(payload.as_ref()),
                    "terminal emulator panicked on capture; rebuilding the screen"
                );
                self.rebuild();
                catch_unwind(AssertUnwindSafe(|| self.capture_inner(false))).unwrap_or_default()
            }
        }
    }

    fn capture_inner(&mut self, scrollback: bool) -> String {
        let cols = self.cols;
        let mut out = String::new();
        if scrollback {
            for line in &self.parser.callbacks().lines {
                push_row(&mut out, &plain(line));
            }
        }
        for row in self.parser.screen().rows(0, cols) {
            push_row(&mut out, &row);
        }
        out
    }

    /// The cell at `row`, `col` of the current view (0-based), if inside the screen.
    pub fn cell(&self, row: u16, col: u16) -> Option<Cell<'_>> {
        if let Some((_, view)) = &self.view {
            return view.cell(row, col);
        }
        self.live_cell(row, col)
    }

    /// The cell at `row`, `col` of the live screen, whatever the view.
    fn live_cell(&self, row: u16, col: u16) -> Option<Cell<'_>> {
        let c = self.parser.screen().cell(row, col)?;
        Some(Cell {
            text: c.contents(),
            fg: c.fgcolor().into(),
            bg: c.bgcolor().into(),
            bold: c.bold(),
            dim: c.dim(),
            italic: c.italic(),
            underline: c.underline(),
            inverse: c.inverse(),
            wide: c.is_wide(),
            wide_continuation: c.is_wide_continuation(),
        })
    }

    /// The cursor as `(row, col)`, 0-based, clamped inside the screen.
    pub fn cursor(&self) -> (u16, u16) {
        let (row, col) = self.parser.screen().cursor_position();
        (
            row.min(self.rows.saturating_sub(1)),
            col.min(self.cols.saturating_sub(1)),
        )
    }

    /// Whether the program wants the cursor shown.
    pub fn cursor_visible(&self) -> bool {
        !self.parser.screen().hide_cursor()
    }

    /// The window title the program set (`OSC 0` / `OSC 2`), control characters removed.
    pub fn title(&self) -> &str {
        &self.parser.callbacks().title
    }

    /// How many times the program rang the bell.
    pub fn bell_count(&self) -> u64 {
        self.parser.callbacks().bells
    }

    /// Whether the alternate screen is in use.
    pub fn alternate_screen(&self) -> bool {
        self.parser.screen().alternate_screen()
    }

    /// Whether pasted text is to be wrapped in `ESC [ 200 ~` ... `ESC [ 201 ~`.
    pub fn bracketed_paste(&self) -> bool {
        self.parser.screen().bracketed_paste()
    }

    /// Whether cursor keys are to be sent in application mode (`ESC O A`).
    pub fn application_cursor(&self) -> bool {
        self.parser.screen().application_cursor()
    }

    /// Whether the keypad is in application mode.
    pub fn application_keypad(&self) -> bool {
        self.parser.screen().application_keypad()
    }

    /// Which mouse events the program asked for.
    pub fn mouse_mode(&self) -> MouseMode {
        match self.parser.screen().mouse_protocol_mode() {
            vt100::MouseProtocolMode::None => MouseMode::None,
            vt100::MouseProtocolMode::Press => MouseMode::Press,
            vt100::MouseProtocolMode::PressRelease => MouseMode::PressRelease,
            vt100::MouseProtocolMode::ButtonMotion => MouseMode::ButtonMotion,
            vt100::MouseProtocolMode::AnyMotion => MouseMode::AnyMotion,
        }
    }

    /// How mouse events are to be encoded.
    pub fn mouse_encoding(&self) -> MouseEncoding {
        match self.parser.screen().mouse_protocol_encoding() {
            vt100::MouseProtocolEncoding::Default => MouseEncoding::Default,
            vt100::MouseProtocolEncoding::Utf8 => MouseEncoding::Utf8,
            vt100::MouseProtocolEncoding::Sgr => MouseEncoding::Sgr,
        }
    }

    /// Whether the program is inside a synchronized update (`CSI ? 2026 h` without the
    /// closing `l` yet): a renderer should keep showing the previous frame meanwhile (and
    /// give up waiting after a moment, as terminals do).
    pub fn synchronized_update(&self) -> bool {
        self.scan.sync
    }

    /// Lines of history kept above the screen.
    pub fn scrollback_len(&self) -> usize {
        self.parser.callbacks().lines.len()
    }

    /// Scrolls the view `rows` lines up into the history (0 = the live screen); returns the
    /// offset actually set (clamped to the history's length). [`Screen::cell`] reads the view,
    /// as it was when the offset was set (set it again to follow new output).
    pub fn set_view_offset(&mut self, rows: usize) -> usize {
        let lines = &self.parser.callbacks().lines;
        let offset = rows.min(lines.len());
        if offset == 0 {
            self.view = None;
            return 0;
        }
        let screen = self.formatted_rows();
        let lines = &self.parser.callbacks().lines;
        let first = lines.len() - offset;
        let rows: Vec<&str> = lines
            .range(first..)
            .map(String::as_str)
            .chain(screen.iter().map(String::as_str))
            .take(usize::from(self.rows))
            .collect();
        let view = Screen::from_rows(self.rows, self.cols, rows);
        self.view = Some((offset, Box::new(view)));
        offset
    }

    /// The current view offset (0 = the live screen).
    pub fn view_offset(&self) -> usize {
        self.view.as_ref().map_or(0, |(offset, _)| *offset)
    }

    /// How many times the emulator was rebuilt after a panic.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds
    }

    /// Test hook: make the next `n` calls into the emulator panic.
    #[cfg(test)]
    pub(crate) fn inject_panics(&mut self, n: u32) {
        self.panics_to_inject = n;
    }

    /// Feeds `bytes` through the scanner into the emulator, splitting at queries so each reply
    /// sees the screen as it was at the query.
    fn feed(&mut self, bytes: &[u8], answer: bool) {
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if self.scan.state == State::Ground && self.scan.active() == Charset::Ascii {
                // Fast path: plain text needs no scanning, only ESC and the shifts matter.
                match bytes[i..]
                    .iter()
                    .position(|&b| b == 0x1b || b == 0x0e || b == 0x0f)
                {
                    Some(p) => i += p,
                    None => break,
                }
            }
            match self.scan.step(bytes[i]) {
                Step::Pass => {}
                Step::Graphic(c) => {
                    self.out.extend_from_slice(&bytes[start..i]);
                    let mut buf = [0u8; 4];
                    self.out
                        .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    start = i + 1;
                }
                Step::Query(q) => {
                    self.emulate(&bytes[start..=i]);
                    start = i + 1;
                    if answer {
                        self.answer(q);
                    }
                }
                Step::Erase(mode) => {
                    // The emulator sees the sequence up to its final byte first.
                    self.emulate(&bytes[start..i]);
                    start = i;
                    if !self.parser.screen().alternate_screen() {
                        if self.parser.callbacks().collect.is_some() {
                            let event = if mode == 2 {
                                Collected::ClearedScreen(self.rows_with_text())
                            } else {
                                Collected::ClearedHistory
                            };
                            if let Some(c) = &mut self.parser.callbacks_mut().collect {
                                c.push(event);
                            }
                        } else if mode == 3 {
                            self.parser.callbacks_mut().lines.clear();
                            self.view = None;
                        } else if self.scroll_on_clear && !bytes[i + 1..].starts_with(b"\x1b[3J") {
                            // (A clear of the history right after would drop the rows again:
                            // Claude Code clears both for every frame.)
                            self.scroll_into_history(bytes[i]);
                            start = i + 1;
                        }
                    }
                }
            }
            i += 1;
        }
        self.emulate(&bytes[start..]);
    }

    /// The last row of the live screen with text in it, if any.
    fn last_row_with_text(&self) -> Option<u16> {
        (0..self.rows).rev().find(|&r| {
            (0..self.cols).any(|c| {
                self.live_cell(r, c)
                    .is_some_and(|cell| !cell.text.is_empty())
            })
        })
    }

    /// The screen's rows down to the last one with text, as basic formatted text.
    fn rows_with_text(&self) -> Vec<String> {
        let end = self.last_row_with_text().map_or(0, |r| r + 1);
        (0..end).map(|r| self.formatted_row(r)).collect()
    }

    /// Clears the screen (`final_byte` ends the `CSI 2 J` the emulator is in the middle of)
    /// after scrolling its rows, down to the last one with text, into the history. Line feeds
    /// are executed inside an escape sequence, so they go first; then the cursor is put back.
    fn scroll_into_history(&mut self, final_byte: u8) {
        let (row, col) = self.parser.screen().cursor_position();
        let mut bytes = Vec::new();
        if let Some(last) = self.last_row_with_text() {
            let feeds = usize::from(self.rows.saturating_sub(1).saturating_sub(row))
                + usize::from(last)
                + 1;
            bytes.resize(feeds, b'\n');
        }
        bytes.push(final_byte);
        bytes.extend_from_slice(format!("\x1b[{};{}H", row + 1, col + 1).as_bytes());
        self.emulate(&bytes);
    }

    /// Hands bytes to the emulator, after any translated bytes waiting in `out`.
    fn emulate(&mut self, bytes: &[u8]) {
        if self.out.is_empty() {
            if !bytes.is_empty() {
                self.parser.process(bytes);
            }
            return;
        }
        let mut out = std::mem::take(&mut self.out);
        out.extend_from_slice(bytes);
        self.parser.process(&out);
        out.clear();
        self.out = out;
    }

    fn answer(&mut self, q: Query) {
        let start = self.replies.len();
        let r = &mut self.replies;
        match q {
            Query::CursorPosition => {
                let (row, col) = self.parser.screen().cursor_position();
                let row = row.min(self.rows - 1) + 1;
                let col = col.min(self.cols - 1) + 1;
                r.extend_from_slice(format!("\x1b[{row};{col}R").as_bytes());
            }
            Query::Status => r.extend_from_slice(b"\x1b[0n"),
            // A VT220 with ANSI colour (22), as many terminals answer.
            Query::PrimaryAttributes => r.extend_from_slice(b"\x1b[?62;22c"),
            Query::SecondaryAttributes => r.extend_from_slice(b"\x1b[>1;10;0c"),
            Query::Colors { mask, st } => {
                for (bit, code) in [(1u8, 10u8), (2, 11), (4, 12)] {
                    if mask & bit == 0 {
                        continue;
                    }
                    let Rgb(red, green, blue) = if code == 11 {
                        self.colors.background
                    } else {
                        self.colors.foreground
                    };
                    let hex = |v: u8| u16::from(v) * 257;
                    r.extend_from_slice(
                        format!(
                            "\x1b]{code};rgb:{:04x}/{:04x}/{:04x}",
                            hex(red),
                            hex(green),
                            hex(blue)
                        )
                        .as_bytes(),
                    );
                    r.extend_from_slice(if st { b"\x1b\\" } else { b"\x07" });
                }
            }
            Query::PrivateMode(mode) => {
                let s = self.parser.screen();
                let set = |on: bool| if on { 1 } else { 2 };
                let state = match mode {
                    1 => set(s.application_cursor()),
                    25 => set(!s.hide_cursor()),
                    47 | 1047 | 1049 => set(s.alternate_screen()),
                    9 => set(s.mouse_protocol_mode() == vt100::MouseProtocolMode::Press),
                    1000 => set(s.mouse_protocol_mode() == vt100::MouseProtocolMode::PressRelease),
                    1002 => set(s.mouse_protocol_mode() == vt100::MouseProtocolMode::ButtonMotion),
                    1003 => set(s.mouse_protocol_mode() == vt100::MouseProtocolMode::AnyMotion),
                    1005 => set(s.mouse_protocol_encoding() == vt100::MouseProtocolEncoding::Utf8),
                    1006 => set(s.mouse_protocol_encoding() == vt100::MouseProtocolEncoding::Sgr),
                    2004 => set(s.bracketed_paste()),
                    2026 => set(self.scan.sync),
                    _ => 0,
                };
                r.extend_from_slice(format!("\x1b[?{mode};{state}$y").as_bytes());
            }
        }
        if self.replies.len() > MAX_REPLIES {
            self.replies.truncate(start);
        }
    }

    /// Replaces a (possibly corrupted) emulator with a fresh one at the same size, replaying
    /// the recent output; if the replay panics too, the screen starts blank.
    fn rebuild(&mut self) {
        self.rebuilds += 1;
        let mut hooks = std::mem::take(self.parser.callbacks_mut());
        hooks.muted = true;
        self.parser = new_parser(self.rows, self.cols, hooks);
        self.scan = Scanner::default();
        self.out.clear();
        self.view = None;
        let tail = std::mem::take(&mut self.tail);
        let replay = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(test)]
            if self.panics_to_inject > 0 {
                self.panics_to_inject -= 1;
                panic!("injected emulator panic during replay (test)");
            }
            for part in [&tail.older, &tail.newer] {
                self.feed(part, false);
            }
        }));
        self.parser.callbacks_mut().muted = false;
        match replay {
            Ok(()) => self.tail = tail,
            Err(payload) => {
                tracing::warn!(
                    panic = panic_message(payload.as_ref()),
                    "terminal emulator panicked again replaying recent output; starting blank"
                );
                let hooks = std::mem::take(self.parser.callbacks_mut());
                self.parser = new_parser(self.rows, self.cols, hooks);
                self.scan = Scanner::default();
                self.out.clear();
            }
        }
    }
}

/// The emulator keeps no history: rows that scroll off go to the hooks.
fn new_parser(rows: u16, cols: u16, hooks: Hooks) -> vt100::Parser<Hooks> {
    let (r, c) = nonzero(rows, cols);
    vt100::Parser::new_with_callbacks(r, c, 0, hooks)
}

fn nonzero(rows: u16, cols: u16) -> (std::num::NonZeroU16, std::num::NonZeroU16) {
    let n = |v: u16| std::num::NonZeroU16::new(v).unwrap_or(std::num::NonZeroU16::MIN);
    (n(rows), n(cols))
}

/// The attributes of a cell, for writing rows as SGR sequences and text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Pen {
    fg: Color,
    bg: Color,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
    inverse: bool,
}

impl Pen {
    fn of(c: &Cell<'_>) -> Pen {
        Pen {
            fg: c.fg,
            bg: c.bg,
            bold: c.bold,
            dim: c.dim,
            italic: c.italic,
            underline: c.underline,
            inverse: c.inverse,
        }
    }

    /// One SGR sequence that sets exactly this pen, from a reset.
    fn write_sgr(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str("\x1b[0");
        for (on, code) in [
            (self.bold, 1),
            (self.dim, 2),
            (self.italic, 3),
            (self.underline, 4),
            (self.inverse, 7),
        ] {
            if on {
                let _ = write!(out, ";{code}");
            }
        }
        for (color, base) in [(self.fg, 38), (self.bg, 48)] {
            let _ = match color {
                Color::Default => Ok(()),
                Color::Indexed(i) => write!(out, ";{base};5;{i}"),
                Color::Rgb(r, g, b) => write!(out, ";{base};2;{r};{g};{b}"),
            };
        }
        out.push('m');
    }
}

/// The text of a row in basic formatted form ([`Screen::take_collected`]), without its SGR
/// sequences.
pub fn plain(formatted: &str) -> String {
    vt100::capture::basic_formatted_to_plain(formatted).collect()
}

/// Appends `line`'s text and SGR sequences (`ESC [ ... m`); every other control character
/// or escape sequence is left out.
fn push_sgr_and_text(out: &mut Vec<u8>, line: &str) {
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() != Some(&'[') {
                continue;
            }
            chars.next();
            let mut seq = String::from("\x1b[");
            for p in chars.by_ref() {
                seq.push(p);
                if !(p.is_ascii_digit() || p == ';' || p == ':') {
                    break;
                }
            }
            if seq.ends_with('m') {
                out.extend_from_slice(seq.as_bytes());
            }
        } else if !c.is_control() {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

fn push_row(out: &mut String, row: &str) {
    out.push_str(row.trim_end_matches(' '));
    out.push('\n');
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// The most recent output, bounded: between `TAIL_HALF` and `2 * TAIL_HALF` bytes (plus at
/// most one chunk).
#[derive(Default)]
struct Tail {
    older: Vec<u8>,
    newer: Vec<u8>,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        if self.newer.len() >= TAIL_HALF {
            std::mem::swap(&mut self.older, &mut self.newer);
            self.newer.clear();
        }
        if bytes.len() >= TAIL_HALF {
            self.older.clear();
            self.newer.clear();
            self.newer
                .extend_from_slice(&bytes[bytes.len() - TAIL_HALF..]);
        } else {
            self.newer.extend_from_slice(bytes);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The scanner: a shadow of the emulator's parser state machine (vte's), tracking only what
// this layer needs.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Charset {
    #[default]
    Ascii,
    DecGraphics,
}

#[derive(Clone, Copy, Debug, Default)]
struct Charsets {
    g0: Charset,
    g1: Charset,
    /// Shift Out (SO) is active: G1 is in use.
    shifted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum State {
    #[default]
    Ground,
    Escape,
    EscapeIntermediate,
    Csi,
    CsiIgnore,
    Osc,
    /// A DCS string: skipped to its terminator.
    Dcs,
    /// SOS, PM and APC strings: skipped to their terminator.
    String,
}

/// A terminal query found in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Query {
    /// `CSI 6 n`
    CursorPosition,
    /// `CSI 5 n`
    Status,
    /// `CSI c`, `CSI 0 c`
    PrimaryAttributes,
    /// `CSI > c`, `CSI > 0 c`
    SecondaryAttributes,
    /// `OSC 10;?` (bit 1), `OSC 11;?` (bit 2), `OSC 12;?` (bit 4), or several at once
    /// (`OSC 10;?;?`); `st`: terminated by ST rather than BEL.
    Colors { mask: u8, st: bool },
    /// `CSI ? mode $ p` (DECRQM)
    PrivateMode(u16),
}

enum Step {
    Pass,
    /// A DEC special graphics byte, to be drawn as this character.
    Graphic(char),
    /// The byte just scanned ended a query.
    Query(Query),
    /// The byte just scanned is the final byte of `CSI 2 J` (2) or `CSI 3 J` (3), which the
    /// emulator has not seen yet.
    Erase(u8),
}

/// Where a screen's output stood at a [`Screen::checkpoint`].
#[derive(Clone)]
pub struct Checkpoint {
    rows: u16,
    cols: u16,
    /// Bytes that draw the screen and set its modes, cursor and attributes.
    state: Vec<u8>,
    scan: Scanner,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("state", &self.state.len())
            .finish_non_exhaustive()
    }
}

#[derive(Default, Clone)]
struct Scanner {
    state: State,
    charsets: Charsets,
    saved_charsets: Charsets,
    sync: bool,
    /// The scroll region last set (`CSI top ; bottom r`), `None` for the whole screen.
    region: Option<(u16, u16)>,
    /// First intermediate of an ESC sequence.
    esc_intermediate: Option<u8>,
    // CSI being scanned
    csi_marker: Option<u8>,
    csi_intermediate: Option<u8>,
    csi_intermediates: u8,
    csi_params: [u16; MAX_CSI_PARAMS],
    csi_len: usize,
    csi_current: u16,
    csi_any: bool,
    csi_sub: bool,
    csi_overflow: bool,
    // OSC being scanned
    osc: [u8; MAX_OSC_PREFIX],
    osc_len: usize,
    osc_long: bool,
}

impl Scanner {
    fn active(&self) -> Charset {
        if self.charsets.shifted {
            self.charsets.g1
        } else {
            self.charsets.g0
        }
    }

    /// C0 controls that the emulator executes (in ground, escape and CSI states).
    fn execute(&mut self, b: u8) {
        match b {
            0x0e => self.charsets.shifted = true,
            0x0f => self.charsets.shifted = false,
            _ => {}
        }
    }

    fn step(&mut self, b: u8) -> Step {
        match self.state {
            State::Ground => match b {
                0x1b => self.enter_escape(),
                0x00..=0x1f => self.execute(b),
                0x5f..=0x7e if self.active() == Charset::DecGraphics => {
                    return Step::Graphic(dec_graphic(b));
                }
                _ => {}
            },
            State::Escape => match b {
                0x18 | 0x1a => self.state = State::Ground,
                0x1b => {}
                0x00..=0x1f => self.execute(b),
                0x20..=0x2f => {
                    self.esc_intermediate = Some(b);
                    self.state = State::EscapeIntermediate;
                }
                b'[' => self.enter_csi(),
                b']' => {
                    self.osc_len = 0;
                    self.osc_long = false;
                    self.state = State::Osc;
                }
                b'P' => self.state = State::Dcs,
                b'X' | b'^' | b'_' => self.state = State::String,
                0x30..=0x7e => {
                    self.esc_dispatch(b);
                    self.state = State::Ground;
                }
                _ => {}
            },
            State::EscapeIntermediate => match b {
                0x18 | 0x1a => self.state = State::Ground,
                0x1b => self.enter_escape(),
                0x00..=0x1f => self.execute(b),
                0x20..=0x2f => {}
                0x30..=0x7e => {
                    self.designate(b);
                    self.state = State::Ground;
                }
                _ => {}
            },
            State::Csi => match b {
                0x18 | 0x1a => self.state = State::Ground,
                0x1b => self.enter_escape(),
                0x00..=0x1f => self.execute(b),
                0x30..=0x39 => {
                    if self.csi_intermediates > 0 {
                        self.state = State::CsiIgnore;
                    } else {
                        self.csi_any = true;
                        let digit = u16::from(b - b'0');
                        self.csi_current =
                            self.csi_current.saturating_mul(10).saturating_add(digit);
                    }
                }
                b':' | b';' => {
                    if self.csi_intermediates > 0 {
                        self.state = State::CsiIgnore;
                    } else {
                        if b == b':' {
                            self.csi_sub = true;
                        }
                        self.csi_any = true;
                        self.push_param();
                    }
                }
                0x3c..=0x3f => {
                    if self.csi_any || self.csi_marker.is_some() || self.csi_intermediates > 0 {
                        self.state = State::CsiIgnore;
                    } else {
                        self.csi_marker = Some(b);
                    }
                }
                0x20..=0x2f => {
                    if self.csi_intermediates == 0 {
                        self.csi_intermediate = Some(b);
                    }
                    self.csi_intermediates = self.csi_intermediates.saturating_add(1);
                }
                0x40..=0x7e => {
                    self.state = State::Ground;
                    if self.csi_any {
                        self.push_param();
                    }
                    if let Some(mode) = self.csi_erase(b) {
                        return Step::Erase(mode);
                    }
                    if let Some(q) = self.csi_dispatch(b) {
                        return Step::Query(q);
                    }
                }
                _ => {}
            },
            State::CsiIgnore => match b {
                0x18 | 0x1a => self.state = State::Ground,
                0x1b => self.enter_escape(),
                0x00..=0x1f => self.execute(b),
                0x40..=0x7e => self.state = State::Ground,
                _ => {}
            },
            State::Osc => match b {
                0x07 => {
                    self.state = State::Ground;
                    if let Some(q) = self.osc_dispatch(false) {
                        return Step::Query(q);
                    }
                }
                0x18 | 0x1a => self.state = State::Ground,
                0x1b => {
                    // ESC ends the OSC (normally as ESC \).
                    self.enter_escape();
                    if let Some(q) = self.osc_dispatch(true) {
                        return Step::Query(q);
                    }
                }
                0x00..=0x1f => {}
                _ => {
                    if self.osc_len < MAX_OSC_PREFIX {
                        self.osc[self.osc_len] = b;
                        self.osc_len += 1;
                    } else {
                        self.osc_long = true;
                    }
                }
            },
            State::Dcs => match b {
                0x18 | 0x1a | 0x9c => self.state = State::Ground,
                0x1b => self.enter_escape(),
                _ => {}
            },
            State::String => match b {
                0x18 | 0x1a => self.state = State::Ground,
                0x1b => self.enter_escape(),
                _ => {}
            },
        }
        Step::Pass
    }

    fn enter_escape(&mut self) {
        self.state = State::Escape;
        self.esc_intermediate = None;
    }

    fn enter_csi(&mut self) {
        self.state = State::Csi;
        self.csi_marker = None;
        self.csi_intermediate = None;
        self.csi_intermediates = 0;
        self.csi_len = 0;
        self.csi_current = 0;
        self.csi_any = false;
        self.csi_sub = false;
        self.csi_overflow = false;
    }

    fn push_param(&mut self) {
        if self.csi_len < MAX_CSI_PARAMS {
            self.csi_params[self.csi_len] = self.csi_current;
            self.csi_len += 1;
        } else {
            self.csi_overflow = true;
        }
        self.csi_current = 0;
    }

    /// ESC sequences without intermediates.
    fn esc_dispatch(&mut self, b: u8) {
        match b {
            b'7' => self.saved_charsets = self.charsets,
            b'8' => self.charsets = self.saved_charsets,
            b'c' => {
                self.charsets = Charsets::default();
                self.saved_charsets = Charsets::default();
                self.sync = false;
                self.region = None;
            }
            _ => {}
        }
    }

    /// ESC sequences with an intermediate: charset designation (`ESC ( 0`, `ESC ) B`, ...).
    fn designate(&mut self, fin: u8) {
        let set = if fin == b'0' {
            Charset::DecGraphics
        } else {
            Charset::Ascii
        };
        match self.esc_intermediate {
            Some(b'(') => self.charsets.g0 = set,
            Some(b')') => self.charsets.g1 = set,
            _ => {}
        }
    }

    /// `CSI 2 J` / `CSI 3 J` (also `CSI ? 2 J`): the mode; tracks the scroll region meanwhile.
    fn csi_erase(&mut self, fin: u8) -> Option<u8> {
        if self.csi_sub || self.csi_overflow || self.csi_intermediates > 0 {
            return None;
        }
        let params = &self.csi_params[..self.csi_len];
        match (self.csi_marker, fin) {
            (None | Some(b'?'), b'J') => match params {
                [2] => Some(2),
                [3] => Some(3),
                _ => None,
            },
            (None, b'r') => {
                self.region = match *params {
                    [] | [0] | [0, 0] | [1] => None,
                    [top] => Some((top, 0)),
                    [top, bottom, ..] => Some((top, bottom)),
                };
                None
            }
            _ => None,
        }
    }

    fn csi_dispatch(&mut self, fin: u8) -> Option<Query> {
        if self.csi_sub || self.csi_overflow || self.csi_intermediates > 1 {
            return None;
        }
        let params = &self.csi_params[..self.csi_len];
        let default = params.is_empty() || params == [0];
        match (self.csi_marker, self.csi_intermediate, fin) {
            (None, None, b'n') if params == [6] => Some(Query::CursorPosition),
            (None, None, b'n') if params == [5] => Some(Query::Status),
            (None, None, b'c') if default => Some(Query::PrimaryAttributes),
            (Some(b'>'), None, b'c') if default => Some(Query::SecondaryAttributes),
            (Some(b'?'), Some(b'$'), b'p') if params.len() == 1 => {
                Some(Query::PrivateMode(params[0]))
            }
            (Some(b'?'), None, b'h' | b'l') => {
                let on = fin == b'h';
                for i in 0..self.csi_len {
                    match self.csi_params[i] {
                        2026 => self.sync = on,
                        1049 if on => self.saved_charsets = self.charsets,
                        1049 => self.charsets = self.saved_charsets,
                        _ => {}
                    }
                }
                None
            }
            _ => None,
        }
    }

    fn osc_dispatch(&self, st: bool) -> Option<Query> {
        if self.osc_long {
            return None;
        }
        let payload = &self.osc[..self.osc_len];
        let mut parts = payload.split(|&b| b == b';');
        let first = parts.next()?;
        let code: u8 = match first {
            b"10" => 10,
            b"11" => 11,
            b"12" => 12,
            _ => return None,
        };
        let mut mask = 0u8;
        for (k, part) in parts.enumerate() {
            if part != b"?" {
                return None;
            }
            let c = usize::from(code) + k;
            mask |= match c {
                10 => 1,
                11 => 2,
                12 => 4,
                _ => 0,
            };
        }
        (mask != 0).then_some(Query::Colors { mask, st })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn screen() -> Screen {
        Screen::new(24, 80, 100)
    }

    /// Feeds `bytes` split at every possible point (two chunks) and one byte at a time; each
    /// run must give the same replies and screen text as feeding it whole.
    fn feed_all_ways(bytes: &[u8]) -> (Vec<u8>, String) {
        let mut whole = screen();
        whole.process(bytes);
        let want = (whole.take_replies(), whole.capture(false));
        for cut in 0..=bytes.len() {
            let mut s = screen();
            s.process(&bytes[..cut]);
            s.process(&bytes[cut..]);
            assert_eq!((s.take_replies(), s.capture(false)), want, "split at {cut}");
        }
        let mut s = screen();
        for b in bytes {
            s.process(std::slice::from_ref(b));
        }
        assert_eq!((s.take_replies(), s.capture(false)), want, "byte by byte");
        want
    }

    fn replies(bytes: &[u8]) -> String {
        String::from_utf8_lossy(&feed_all_ways(bytes).0).into_owned()
    }

    #[test]
    fn cursor_position_report_is_taken_at_the_query() {
        assert_eq!(replies(b"\x1b[3;5H\x1b[6n"), "\x1b[3;5R");
        // The cursor moves after the query: the reply still says where it was.
        assert_eq!(
            replies(b"ab\x1b[6n\r\nxyz\x1b[6n\x1b[10;10H"),
            "\x1b[1;3R\x1b[2;4R"
        );
        // Pending wrap at the last column reports the last column.
        let mut s = Screen::new(5, 10, 0);
        s.process(b"0123456789\x1b[6n");
        assert_eq!(s.take_replies(), b"\x1b[1;10R");
    }

    #[test]
    fn device_status_and_attributes_are_answered() {
        assert_eq!(replies(b"\x1b[5n"), "\x1b[0n");
        assert_eq!(replies(b"\x1b[c"), "\x1b[?62;22c");
        assert_eq!(replies(b"\x1b[0c"), "\x1b[?62;22c");
        assert_eq!(replies(b"\x1b[>c"), "\x1b[>1;10;0c");
        assert_eq!(replies(b"\x1b[>0c"), "\x1b[>1;10;0c");
        assert_eq!(replies(b"x\x1b[>c\x1b[c"), "\x1b[>1;10;0c\x1b[?62;22c");
    }

    #[test]
    fn colour_queries_are_answered_with_the_query_terminator() {
        assert_eq!(replies(b"\x1b]11;?\x07"), "\x1b]11;rgb:0000/0000/0000\x07");
        assert_eq!(
            replies(b"\x1b]10;?\x1b\\"),
            "\x1b]10;rgb:e5e5/e5e5/e5e5\x1b\\"
        );
        assert_eq!(
            replies(b"\x1b]10;?;?\x07"),
            "\x1b]10;rgb:e5e5/e5e5/e5e5\x07\x1b]11;rgb:0000/0000/0000\x07"
        );
        let mut s = screen();
        s.set_query_colors(QueryColors {
            foreground: Rgb(0x10, 0x20, 0x30),
            background: Rgb(0xff, 0xfe, 0x01),
        });
        s.process(b"\x1b]11;?\x1b\\\x1b]10;?\x07");
        assert_eq!(
            String::from_utf8_lossy(&s.take_replies()),
            "\x1b]11;rgb:ffff/fefe/0101\x1b\\\x1b]10;rgb:1010/2020/3030\x07"
        );
    }

    #[test]
    fn things_that_are_not_queries_get_no_reply() {
        for bytes in [
            &b"[6n 6n \x1b[6;1n \x1b[16n \x1b[?6n \x1b[1c \x1b[=c"[..],
            b"\x1b[6\x18n",              // cancelled
            b"\x1b]11;rgb:1/2/3\x07",    // a colour set, not a query
            b"\x1b]11;?x\x07",           // not exactly `?`
            b"\x1b]2;\x1b[6n title\x07", // ESC ends the OSC; the CSI is real...
            b"\x1bP1$r6n\x1b\\",         // a DCS payload
            b"\x1b_G6n;c\x1b\\",         // an APC payload
        ] {
            let r = replies(bytes);
            if bytes.starts_with(b"\x1b]2;") {
                assert_eq!(r, "\x1b[1;1R", "{bytes:?}");
            } else {
                assert_eq!(r, "", "{bytes:?}");
            }
        }
    }

    #[test]
    fn private_mode_reports_and_synchronized_output() {
        let mut s = screen();
        s.process(b"\x1b[?2026$p");
        assert_eq!(s.take_replies(), b"\x1b[?2026;2$y");
        assert!(!s.synchronized_update());
        s.process(b"\x1b[?2026h");
        assert!(s.synchronized_update());
        s.process(b"\x1b[?2026$p\x1b[?2004h\x1b[?2004$p\x1b[?25l\x1b[?25$p\x1b[?7777$p");
        assert_eq!(
            String::from_utf8_lossy(&s.take_replies()),
            "\x1b[?2026;1$y\x1b[?2004;1$y\x1b[?25;2$y\x1b[?7777;0$y"
        );
        s.process(b"frame\x1b[?20");
        assert!(s.synchronized_update());
        s.process(b"26l");
        assert!(!s.synchronized_update());
        s.process(b"\x1b[?1;2026h");
        assert!(s.synchronized_update());
        s.process(b"\x1bc");
        assert!(!s.synchronized_update());
    }

    #[test]
    fn dec_special_graphics_become_box_drawing() {
        let text = feed_all_ways(b"\x1b(0lqqk\r\nx  x\r\nmqqj\x1b(B q").1;
        let rows: Vec<&str> = text.lines().take(3).collect();
        assert_eq!(rows, ["┌──┐", "│  │", "└──┘ q"]);

        let mut s = screen();
        s.process(b"\x1b(0tuvwn~`a\x1b(Bqx");
        assert_eq!(s.capture(false).lines().next(), Some("├┤┴┬┼·◆▒qx"));
        assert_eq!(s.cell(0, 0).map(|c| c.text), Some("├"));

        // G1 through SO / SI, as some programs do it.
        let mut s = screen();
        s.process(b"\x1b)0a\x0eqq\x0fq");
        assert_eq!(s.capture(false).lines().next(), Some("a──q"));

        // Save / restore cursor keeps the charset; reset clears it.
        let mut s = screen();
        s.process(b"\x1b(0\x1b7\x1b(Bq\x1b8q\x1bcq");
        assert_eq!(s.capture(false).lines().next(), Some("q"));
        let mut s = screen();
        s.process(b"\x1b(0\x1b7\x1b(Bq\x1b8\x1b[1;3Hq");
        assert_eq!(s.capture(false).lines().next(), Some("q ─"));
    }

    #[test]
    fn title_and_modes_are_exposed() {
        let mut s = screen();
        s.process(b"\x1b]0;first\x07");
        assert_eq!(s.title(), "first");
        s.process(b"\x1b]2;sec\x01ond\x1b\\");
        assert_eq!(s.title(), "second");
        s.process(b"\x1b[?1049h\x1b[?2004h\x1b[?1000h\x1b[?1006h\x1b[?25l\x1b[?1h\x07");
        assert!(s.alternate_screen());
        assert!(s.bracketed_paste());
        assert_eq!(s.mouse_mode(), MouseMode::PressRelease);
        assert_eq!(s.mouse_encoding(), MouseEncoding::Sgr);
        assert!(!s.cursor_visible());
        assert!(s.application_cursor());
        assert_eq!(s.bell_count(), 1);
        s.process(b"\x1b[?1049l");
        assert!(!s.alternate_screen());
    }

    #[test]
    fn cells_carry_colours_and_attributes() {
        let mut s = screen();
        s.process("\x1b[1;31;44mR\x1b[0;38;2;1;2;3mG\x1b[m界".as_bytes());
        let r = s.cell(0, 0).expect("cell");
        assert_eq!(
            (r.text, r.fg, r.bg, r.bold),
            ("R", Color::Indexed(1), Color::Indexed(4), true)
        );
        let g = s.cell(0, 1).expect("cell");
        assert_eq!((g.fg, g.bold), (Color::Rgb(1, 2, 3), false));
        let w = s.cell(0, 2).expect("cell");
        assert!(w.wide && w.text == "界");
        assert!(s.cell(0, 3).is_some_and(|c| c.wide_continuation));
        assert_eq!(s.cursor(), (0, 4));
        assert!(s.cell(24, 0).is_none());
    }

    #[test]
    fn capture_is_row_per_line_trimmed_with_history_first() {
        let mut s = Screen::new(3, 10, 100);
        s.process(b"one  \r\ntwo\r\nthree\r\nfour\r\nfive");
        assert_eq!(s.capture(false), "three\nfour\nfive\n");
        assert_eq!(s.capture(true), "one\ntwo\nthree\nfour\nfive\n");
        assert_eq!(s.scrollback_len(), 2);
        assert_eq!(s.set_view_offset(99), 2);
        assert_eq!(s.cell(0, 0).map(|c| c.text), Some("o"));
        // Capture is of the live screen, and leaves the view where it was.
        assert_eq!(s.capture(false), "three\nfour\nfive\n");
        assert_eq!(s.view_offset(), 2);
        let mut blank = Screen::new(2, 5, 0);
        assert_eq!(blank.capture(true), "\n\n");
    }

    #[test]
    fn scroll_on_clear_keeps_a_cleared_screen_in_the_history_until_the_history_is_cleared() {
        let out: &[u8] = b"one\r\ntwo\r\nthree\r\nfour\x1b[2;3H\x1b[2Jx\x1b[5;1H\x1b[?1049h\x1b[2Jalt\x1b[?1049l";
        let plain_screen = {
            let mut s = Screen::new(4, 10, 100);
            s.process(out);
            assert_eq!(
                s.capture(true),
                s.capture(false),
                "a plain screen keeps nothing"
            );
            s.capture(false)
        };
        for cut in 0..=out.len() {
            let mut s = Screen::new(4, 10, 100);
            s.set_scroll_on_clear(true);
            s.process(&out[..cut]);
            s.process(&out[cut..]);
            // The screen shows the same (the cursor was put back at row 2, col 3); the clear
            // of the alternate screen pushes nothing.
            assert_eq!(s.capture(false), plain_screen, "split at {cut}");
            assert_eq!(
                s.capture(true),
                format!("one\ntwo\nthree\nfour\n{plain_screen}"),
                "split at {cut}"
            );
            assert_eq!(s.history_seen(), 4);
        }
        let mut s = Screen::new(4, 10, 100);
        s.set_scroll_on_clear(true);
        s.process(b"one\r\ntwo\x1b[H\x1b[2J\x1b[3Jnew");
        assert_eq!(
            s.capture(true),
            "new\n\n\n\n",
            "CSI 3 J clears it, as in tmux"
        );
        // Directly followed by the clear of the history, the clear of the screen pushes
        // nothing (it would be dropped at once); split across reads, it is pushed and dropped.
        assert_eq!(s.history_seen(), 0);
        let mut split = Screen::new(4, 10, 100);
        split.set_scroll_on_clear(true);
        split.process(b"one\r\ntwo\x1b[H\x1b[2J");
        split.process(b"\x1b[3Jnew");
        assert_eq!(split.capture(true), "new\n\n\n\n");
    }

    #[test]
    fn a_collector_reports_scrolled_rows_and_clears_in_order() {
        let out: &[u8] = b"a\r\nb\r\nc\r\nd\x1b[H\x1b[2J\x1b[3Je\r\n\x1b[?1049h\x1b[2Jalt\r\n\r\n\r\n\x1b[?1049lf";
        let want = vec![
            Collected::Scrolled("a".into()),
            Collected::ClearedScreen(vec!["b".into(), "c".into(), "d".into()]),
            Collected::ClearedHistory,
        ];
        for cut in 0..=out.len() {
            let mut s = Screen::collector(3, 10);
            s.process(&out[..cut]);
            let mut got = s.take_collected();
            s.process(&out[cut..]);
            got.extend(s.take_collected());
            let got: Vec<Collected> = got
                .into_iter()
                .map(|c| match c {
                    Collected::Scrolled(r) => Collected::Scrolled(plain(&r)),
                    Collected::ClearedScreen(rows) => {
                        Collected::ClearedScreen(rows.iter().map(|r| plain(r)).collect())
                    }
                    other => other,
                })
                .collect();
            assert_eq!(got, want, "split at {cut}");
            assert_eq!(s.capture(false), "e\nf\n\n", "split at {cut}");
        }
    }

    #[test]
    fn collected_rows_come_back_as_a_view_with_their_colours() {
        let mut s = Screen::collector(2, 12);
        s.process(b"\x1b[1;31mred\x1b[m \x1b[44mblue\x1b[m \xe6\xbc\xa2\r\nplain\r\nlast");
        let rows: Vec<String> = s
            .take_collected()
            .into_iter()
            .filter_map(|c| match c {
                Collected::Scrolled(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(plain(&rows[0]), "red blue \u{6f22}");
        let mut lines: Vec<String> = rows;
        lines.extend(s.formatted_rows());
        let mut v = Screen::from_rows(3, 6, lines.iter().map(String::as_str));
        assert_eq!(v.capture(false), "red bl\nplain\nlast\n");
        let red = v.cell(0, 0).expect("cell");
        assert!(red.bold);
        assert_eq!(red.fg, Color::Indexed(1));
        assert_eq!(v.cell(0, 4).map(|c| c.bg), Some(Color::Indexed(4)));
        assert!(!v.cursor_visible());
        // Nothing but SGR and text gets through.
        let mut v = Screen::from_rows(2, 10, ["a\x1b[2Jb\x1b]0;t\x07c\r\nd", "e"]);
        assert_eq!(v.capture(false), "ab]0;tcd\ne\n");
    }

    #[test]
    fn sizes_are_clamped() {
        let mut s = Screen::new(0, 1, 10);
        assert_eq!(s.size(), (MIN_ROWS, MIN_COLS));
        s.process(b"hello world");
        s.resize(65535, 65535);
        assert_eq!(s.size(), (MAX_ROWS, MAX_COLS));
        s.resize(0, 0);
        assert_eq!(s.size(), (2, 2));
        s.process(b"\x1b[H\x1b[2Jok");
        assert_eq!(s.capture(false), "ok\n\n");
    }

    /// A small deterministic generator (xorshift64*), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Random bytes biased towards what makes parsers work: escapes, digits, separators,
    /// finals, controls and UTF-8 lead bytes.
    fn hostile_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
        const INTERESTING: &[u8] = b"\x1b\x1b\x1b[[]]()0;;:?>$ 123456789\x07\x08\x09\x0a\x0d\x0e\x0f\x18\x9c\\mHJKrhlcntPX_^@ABCDLMSTbdq\xe2\xf0\x80\xbf\xff";
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let r = rng.next();
            match r % 8 {
                0..=3 => out.push(INTERESTING[(r >> 8) as usize % INTERESTING.len()]),
                4 => out.push((r >> 8) as u8),
                _ => {
                    let n = 1 + (r >> 8) as usize % 16;
                    out.extend((0..n).map(|i| b'a' + ((r >> (i % 7)) % 26) as u8));
                }
            }
        }
        out
    }

    fn crafted() -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = vec![
            b"\x1b[99999999999999;99999999999999H".to_vec(),
            b"\x1b[65535@\x1b[65535P\x1b[65535X\x1b[65535L\x1b[65535M".to_vec(),
            b"x\x1b[65535b\x1b[65535S\x1b[65535T\x1b[65535A\x1b[65535C".to_vec(),
            b"\x1b[8;0;0t\x1b[8;65535;65535t\x1b[8;1;1t".to_vec(),
            b"\x1b[20;5r\x1b[0;0r\x1b[65535;65535r\x1b[?6h\x1b[99;99Hx\x1b[?6l".to_vec(),
            b"\x1b[?1049h\x1b[?47l\x1b[?1049l\x1b[?47h\x1b[?1049h\x1b[?1049l\x1b[?47l".to_vec(),
            "\u{301}\u{301}\x1b[1;80H界界\u{301}\x1b[1;79H界\x1b[2;80H\u{200d}\u{fe0f}"
                .as_bytes()
                .to_vec(),
            b"\xe2\x82\x1b[m\xf0\x9f\x98\xff\xfe\xc0\xaf\xed\xa0\x80\x80\x81".to_vec(),
            b"\x1b[38;2;999;999;999m\x1b[38;5;999m\x1b[48:2::1:2:3m\x1b[58;5;1m".to_vec(),
            b"\x1b#8\x1bZ\x1b[!p\x1b[>q\x1b[?u\x1b[=1;2u\x1bP+q544e\x1b\\".to_vec(),
            b"\x1b]52;c;?\x07\x1b]52;c;AAAA\x07\x1b]8;;http://x\x07link\x1b]8;;\x07".to_vec(),
        ];
        // Deep nesting and long parameter lists.
        v.push(b"\x1b[".repeat(10_000));
        v.push([&b"\x1b["[..], &b"1;".repeat(100_000), b"m"].concat());
        v.push([&b"\x1b[?"[..], &b"2026;".repeat(10_000), b"h"].concat());
        // An OSC and a DCS that never end.
        v.push([&b"\x1b]0;"[..], &b"t".repeat(1_000_000)].concat());
        v.push([&b"\x1bP"[..], &b"q#0;2;0;0;0".repeat(100_000)].concat());
        v
    }

    #[test]
    fn hostile_output_never_escapes_and_the_screen_still_works() {
        let mut s = Screen::new(24, 80, 500);
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let mut fed = 0usize;
        // Tens of MB in all: random chunks of random sizes, crafted sequences in between.
        let crafted = crafted();
        while fed < 24 << 20 {
            let len = 1 + rng.below(256 * 1024) as usize;
            let chunk = hostile_bytes(&mut rng, len);
            s.process(&chunk);
            fed += chunk.len();
            let c = &crafted[rng.below(crafted.len() as u64) as usize];
            s.process(c);
            fed += c.len();
            if rng.below(8) == 0 {
                s.resize(rng.below(300) as u16, rng.below(300) as u16);
            }
            let _ = s.take_replies();
        }
        for c in &crafted {
            s.process(c);
        }
        let _ = s.capture(true);
        // End whatever is open, reset, and draw.
        s.resize(24, 80);
        s.process(b"\x18\x1bc");
        s.process(b"ok\x1b[6n");
        assert_eq!(s.capture(false).lines().next(), Some("ok"));
        assert_eq!(s.take_replies(), b"\x1b[1;3R");
    }

    #[test]
    fn replies_to_a_query_flood_are_bounded() {
        let mut s = screen();
        s.process(&b"\x1b[6n".repeat(100_000));
        assert!(s.take_replies().len() <= MAX_REPLIES);
    }

    #[test]
    fn an_emulator_panic_rebuilds_the_screen_from_recent_output() {
        let mut s = Screen::new(5, 20, 10);
        s.process(b"\x1b]2;kept\x07hello\r\nworld");
        s.inject_panics(1);
        s.process(b"\r\nlost chunk");
        assert_eq!(s.rebuilds(), 1);
        assert_eq!(s.capture(false), "hello\nworld\n\n\n\n");
        assert_eq!(s.title(), "kept");
        s.process(b" ok\x1b[6n");
        assert_eq!(s.capture(false).lines().nth(1), Some("world ok"));
        assert_eq!(s.take_replies(), b"\x1b[2;9R");

        // If replaying panics too, the screen starts blank and still works.
        s.inject_panics(2);
        s.process(b"boom");
        assert_eq!(s.rebuilds(), 2);
        assert_eq!(s.capture(false), "\n\n\n\n\n");
        s.process(b"ok");
        assert_eq!(s.capture(false), "ok\n\n\n\n\n");
        // The tail starts afresh after a failed replay.
        s.inject_panics(1);
        s.process(b"x");
        assert_eq!(s.capture(false), "ok\n\n\n\n\n");
    }

    #[test]
    fn the_tail_is_bounded() {
        let mut t = Tail::default();
        for _ in 0..100 {
            t.push(&[b'x'; 50_000]);
        }
        assert!(t.older.len() + t.newer.len() <= 2 * TAIL_HALF + 50_000);
        assert!(t.older.len() + t.newer.len() >= TAIL_HALF);
        t.push(&vec![b'y'; 3 * TAIL_HALF]);
        assert_eq!(t.older.len() + t.newer.len(), TAIL_HALF);
    }
}
