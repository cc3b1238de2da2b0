//! The terminal emulator boundary: bytes in, a screen of cells out.
//!
//! Everything that knows about the emulator (`alacritty_terminal`, with its `vte` parser) lives
//! in this file, so another emulator can replace it by rewriting this module only. The rest of
//! the crate sees [`Screen`], [`Cell`], [`Color`] and a few mode enums.
//!
//! The emulator's parser calls a handler for every action in the output; the handler here
//! (`Emu`) passes most of them on to the emulator's terminal and adds what a hosted program
//! needs from a real terminal and what this crate needs from a screen:
//! - answers to terminal queries (cursor position, device status, primary and secondary
//!   device attributes, DEC private mode reports, OSC 10/11/12 colour queries), collected as
//!   reply bytes for the caller to write back into the PTY ([`Screen::take_replies`]); each
//!   answer sees the screen as it was at the query;
//! - the synchronized-output flag (`CSI ? 2026 h/l`), reported to renderers; the bytes are not
//!   held back (a renderer keeps showing the previous frame meanwhile);
//! - a compact history: the emulator keeps no scrollback (24 bytes a cell, every row the full
//!   width); a row about to scroll off the top of the main screen is kept as SGR-formatted
//!   text, about a byte a character, and a view scrolled back is drawn from those rows
//!   ([`Screen::set_view_offset`]). Clearing the screen can scroll it into the history first,
//!   as tmux does ([`Screen::set_scroll_on_clear`]);
//! - a collecting mode for replaying recordings into a whole history ([`Screen::collector`],
//!   [`crate::agent::history`]), with checkpoints to restart a replay from;
//! - containment: every call into the emulator is guarded with `catch_unwind`; a panic rebuilds
//!   the emulator at the same size from a bounded tail of recent output (or blank, if replaying
//!   the tail panics too).
//!
//! Titles, the bell, hyperlinks, palette changes, clipboard requests and the keyboard
//! protocols are handled here or dropped: the emulator itself never needs to send anything.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use alacritty_terminal::event::VoidListener;
use alacritty_terminal::grid::{Cursor, Dimensions};
use alacritty_terminal::index::{Column, Line};
use alacritty_terminal::term::cell::{Cell as ACell, Flags};
use alacritty_terminal::term::{Config, Term, TermDamage, TermMode};
use alacritty_terminal::vte::ansi::{
    self, CharsetIndex, ClearMode, Handler, LineClearMode, NamedMode, NamedPrivateMode,
    PrivateMode, Processor, StandardCharset, TabulationClearMode,
};
use unicode_width::UnicodeWidthChar;

/// Smallest size the screen accepts; smaller requests are clamped.
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
/// Titles kept by `CSI 22 t` (push) for `CSI 23 t` (pop).
const MAX_TITLES: usize = 16;
/// Pending reply bytes beyond this are dropped (a child flooding queries without reading).
const MAX_REPLIES: usize = 64 * 1024;
/// Bytes of text a cell keeps (a character and its combining characters).
const CELL_TEXT: usize = 15;
/// Rows a resize may push off the top at most (the rest are only in the recording).
const RESIZE_HISTORY: usize = 4 * MAX_ROWS as usize;
/// A clear of the screen directly followed by a clear of the history, as Claude Code sends
/// for every frame: the screen need not be kept, it would be dropped at once.
const CLEAR_BOTH: &[u8] = b"\x1b[2J\x1b[3J";

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

impl From<ansi::Color> for Color {
    fn from(c: ansi::Color) -> Self {
        match c {
            // The 16 named colours are the first 16 indexed ones; the rest (the default
            // foreground and background, the cursor's, dimmed variants) are the default.
            ansi::Color::Named(n) => u8::try_from(n as usize)
                .ok()
                .filter(|&i| i < 16)
                .map_or(Color::Default, Color::Indexed),
            ansi::Color::Indexed(i) => Color::Indexed(i),
            ansi::Color::Spec(c) => Color::Rgb(c.r, c.g, c.b),
        }
    }
}

/// The text of one cell: empty for a blank cell, else one character plus any combining
/// characters (up to 15 bytes; more are dropped). Reads as a `&str`.
#[derive(Clone, Copy)]
pub struct CellText<'a>(TextRepr<'a>);

#[derive(Clone, Copy)]
enum TextRepr<'a> {
    Borrowed(&'a str),
    Inline([u8; CELL_TEXT], u8),
}

impl<'a> CellText<'a> {
    /// The text as a string slice.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            TextRepr::Borrowed(s) => s,
            // Only whole characters are ever written into the buffer.
            TextRepr::Inline(buf, len) => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or_default()
            }
        }
    }

    fn of(c: char, zerowidth: &[char]) -> CellText<'static> {
        let mut buf = [0u8; CELL_TEXT];
        let mut len = 0;
        for ch in std::iter::once(c).chain(zerowidth.iter().copied()) {
            let n = ch.len_utf8();
            if len + n > CELL_TEXT {
                break;
            }
            ch.encode_utf8(&mut buf[len..]);
            len += n;
        }
        CellText(TextRepr::Inline(buf, len as u8))
    }

    const EMPTY: CellText<'static> = CellText(TextRepr::Borrowed(""));
}

impl<'a> From<&'a str> for CellText<'a> {
    fn from(s: &'a str) -> Self {
        CellText(TextRepr::Borrowed(s))
    }
}

impl std::ops::Deref for CellText<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for CellText<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for CellText<'_> {}

impl PartialEq<&str> for CellText<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Debug for CellText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for CellText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One cell of the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell<'a> {
    /// The text in the cell: empty for a blank cell, else one character plus any combining
    /// characters.
    pub text: CellText<'a>,
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

/// What the screen keeps beside the emulator, across a rebuild after a panic.
#[derive(Default)]
struct Hooks {
    title: String,
    titles: Vec<String>,
    bells: u64,
    /// Rows of the main screen that scrolled off the top since the screen started.
    scrolled: u64,
    /// The history: the newest rows that scrolled off, at most `keep`.
    lines: VecDeque<String>,
    keep: usize,
    /// The program cleared the history since this was last looked at.
    history_cleared: bool,
    /// Clearing the screen scrolls it into the history first.
    scroll_on_clear: bool,
    /// The next clear of the screen is directly followed by a clear of the history.
    skip_clear: bool,
    /// While replaying recent output into a rebuilt emulator: its rows are in `lines`
    /// already and its queries were answered.
    muted: bool,
    /// When collecting ([`Screen::collector`]): the rows and the clears, in order.
    collect: Option<Vec<Collected>>,
    colors: QueryColors,
    replies: Vec<u8>,
}

/// The emulator's state this layer needs and the emulator does not show: kept in step with
/// it, and started afresh with it.
#[derive(Clone, Debug)]
struct Mirror {
    /// The scroll region: first row, and the row after the last.
    region: (usize, usize),
    charset: CharsetIndex,
    /// The program changed the tab stops (a checkpoint could not restore them).
    tabs_set: bool,
    sync: bool,
    /// X10 mouse reporting (`CSI ? 9 h`), which the emulator does not track.
    x10: bool,
}

impl Mirror {
    fn new(rows: u16) -> Mirror {
        Mirror {
            region: (0, usize::from(rows)),
            charset: CharsetIndex::G0,
            tabs_set: false,
            sync: false,
            x10: false,
        }
    }
}

/// Synchronized updates are not buffered by the parser: the screen takes the bytes as they
/// come and reports the mode ([`Screen::synchronized_update`]).
#[derive(Default)]
struct Unbuffered;

impl ansi::Timeout for Unbuffered {
    fn set_timeout(&mut self, _: Duration) {}
    fn clear_timeout(&mut self) {}
    fn pending_timeout(&self) -> bool {
        false
    }
}

/// The size handed to the emulator.
struct Size {
    rows: usize,
    cols: usize,
}

impl Dimensions for Size {
    fn total_lines(&self) -> usize {
        self.rows
    }
    fn screen_lines(&self) -> usize {
        self.rows
    }
    fn columns(&self) -> usize {
        self.cols
    }
}

/// The handler the parser calls: the emulator's terminal, and what this layer adds.
struct Emu {
    term: Term<VoidListener>,
    mirror: Mirror,
    hooks: Hooks,
}

fn new_term(rows: u16, cols: u16) -> Term<VoidListener> {
    let config = Config {
        scrolling_history: 0,
        kitty_keyboard: false,
        osc52: alacritty_terminal::term::Osc52::Disabled,
        ..Config::default()
    };
    let size = Size {
        rows: usize::from(rows),
        cols: usize::from(cols),
    };
    Term::new(config, &size, VoidListener)
}

impl Emu {
    fn new(rows: u16, cols: u16, hooks: Hooks) -> Emu {
        Emu {
            term: new_term(rows, cols),
            mirror: Mirror::new(rows),
            hooks,
        }
    }

    fn alternate(&self) -> bool {
        self.term.mode().contains(TermMode::ALT_SCREEN)
    }

    fn cursor_line(&self) -> usize {
        usize::try_from(self.term.grid().cursor.point.line.0).unwrap_or(0)
    }

    /// Whether a line feed now scrolls the region (and so, from the top, the screen).
    fn feed_scrolls(&self) -> bool {
        self.cursor_line() + 1 == self.mirror.region.1
    }

    /// Whether writing `c` now wraps to the next line first.
    fn input_wraps(&self, c: char) -> bool {
        let cursor = &self.term.grid().cursor;
        let last = cursor.point.column.0 + 1 >= self.term.columns();
        if !cursor.input_needs_wrap && !last {
            return false;
        }
        if !self.term.mode().contains(TermMode::LINE_WRAP) {
            return false;
        }
        match c.width() {
            None | Some(0) => false,
            Some(w) => cursor.input_needs_wrap || (w == 2 && last),
        }
    }

    /// The top `n` rows are about to scroll off the region: when the region starts at the top
    /// of the main screen, they go to the history.
    fn scroll_off(&mut self, n: usize) {
        let (top, bottom) = self.mirror.region;
        if top != 0 || self.alternate() || self.hooks.muted {
            return;
        }
        let n = n.min(bottom - top).min(self.term.screen_lines());
        for r in 0..n {
            let row = self
                .hooks
                .keeps_rows()
                .then(|| format_row(&self.term.grid()[Line(r as i32)][..]));
            self.hooks.push_scrolled(row);
        }
    }

    /// The rows of the active screen down to the last one with text, as basic formatted text.
    fn rows_with_text(&self) -> Vec<String> {
        let grid = self.term.grid();
        let end = (0..grid.screen_lines())
            .rev()
            .find(|&r| {
                grid[Line(r as i32)][..]
                    .iter()
                    .any(|c| !cell_is_blank_text(c))
            })
            .map_or(0, |r| r + 1);
        (0..end)
            .map(|r| format_row(&grid[Line(r as i32)][..]))
            .collect()
    }

    fn resize(&mut self, rows: u16, cols: u16) {
        // The emulator pushes rows off the top when the screen gets shorter or rows rewrap:
        // it keeps them in a history of its own for the time of the resize (counted, as rows
        // that scroll off are, even when not kept).
        let keep = !self.alternate() && !self.hooks.muted;
        if keep {
            self.term.grid_mut().update_history(RESIZE_HISTORY);
        }
        self.term.resize(Size {
            rows: usize::from(rows),
            cols: usize::from(cols),
        });
        self.mirror.region = (0, usize::from(rows));
        if keep {
            let grid = self.term.grid();
            let rows = self.hooks.keeps_rows();
            let pushed: Vec<Option<String>> = (1..=grid.history_size())
                .rev()
                .map(|i| rows.then(|| format_row(&grid[Line(-(i as i32))][..])))
                .collect();
            for row in pushed {
                self.hooks.push_scrolled(row);
            }
            let grid = self.term.grid_mut();
            grid.clear_history();
            grid.update_history(0);
            grid.truncate();
        }
    }

    fn reply(&mut self, bytes: &[u8]) {
        if self.hooks.muted || self.hooks.replies.len() + bytes.len() > MAX_REPLIES {
            return;
        }
        self.hooks.replies.extend_from_slice(bytes);
    }

    fn private_mode_state(&self, mode: u16) -> u8 {
        let m = *self.term.mode();
        let set = |on: bool| if on { 1 } else { 2 };
        match mode {
            1 => set(m.contains(TermMode::APP_CURSOR)),
            25 => set(m.contains(TermMode::SHOW_CURSOR)),
            47 | 1047 | 1049 => set(m.contains(TermMode::ALT_SCREEN)),
            9 => set(self.mirror.x10 && !m.intersects(TermMode::MOUSE_MODE)),
            1000 => set(m.contains(TermMode::MOUSE_REPORT_CLICK)),
            1002 => set(m.contains(TermMode::MOUSE_DRAG)),
            1003 => set(m.contains(TermMode::MOUSE_MOTION)),
            1005 => set(m.contains(TermMode::UTF8_MOUSE)),
            1006 => set(m.contains(TermMode::SGR_MOUSE)),
            2004 => set(m.contains(TermMode::BRACKETED_PASTE)),
            2026 => set(self.mirror.sync),
            _ => 0,
        }
    }

    /// What a private mode does here beside the emulator; the mode the emulator is to see.
    fn private_mode(&mut self, mode: PrivateMode, on: bool) -> Option<PrivateMode> {
        match mode {
            PrivateMode::Named(NamedPrivateMode::SyncUpdate) => {
                self.mirror.sync = on;
                None
            }
            PrivateMode::Named(NamedPrivateMode::ColumnMode) => {
                // The emulator clears the screen and resets the region.
                self.mirror.region = (0, self.term.screen_lines());
                Some(mode)
            }
            PrivateMode::Named(
                NamedPrivateMode::ReportMouseClicks
                | NamedPrivateMode::ReportCellMouseMotion
                | NamedPrivateMode::ReportAllMouseMotion,
            ) => {
                if on {
                    self.mirror.x10 = false;
                }
                Some(mode)
            }
            PrivateMode::Unknown(9) => {
                self.mirror.x10 = on;
                if on {
                    // Mouse protocols are exclusive: X10 replaces the others.
                    for other in [
                        NamedPrivateMode::ReportMouseClicks,
                        NamedPrivateMode::ReportCellMouseMotion,
                        NamedPrivateMode::ReportAllMouseMotion,
                    ] {
                        self.term.unset_private_mode(other.into());
                    }
                }
                None
            }
            // The older alternate screen modes, as the emulator does 1049.
            PrivateMode::Unknown(47 | 1047) => Some(PrivateMode::Named(
                NamedPrivateMode::SwapScreenAndSetRestoreCursor,
            )),
            _ => Some(mode),
        }
    }
}

impl Hooks {
    /// Whether rows that scroll off are kept (here or for the collector), so worth formatting.
    fn keeps_rows(&self) -> bool {
        self.keep > 0 || self.collect.is_some()
    }

    /// A row scrolled off the top of the main screen (`None`: not kept anywhere).
    fn push_scrolled(&mut self, row: Option<String>) {
        self.scrolled = self.scrolled.wrapping_add(1);
        let Some(row) = row else {
            return;
        };
        if let Some(rows) = &mut self.collect {
            rows.push(Collected::Scrolled(row));
            return;
        }
        if self.keep == 0 {
            return;
        }
        if self.lines.len() >= self.keep {
            self.lines.pop_front();
        }
        self.lines.push_back(row);
    }
}

/// Passes an action on to the emulator unchanged.
macro_rules! pass {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            #[inline]
            fn $name(&mut self, $($arg: $ty),*) {
                self.term.$name($($arg),*)
            }
        )*
    };
}

impl Handler for Emu {
    pass! {
        decaln();
        goto(line: i32, col: usize);
        goto_line(line: i32);
        goto_col(col: usize);
        insert_blank(count: usize);
        move_up(rows: usize);
        move_down(rows: usize);
        move_forward(cols: usize);
        move_backward(cols: usize);
        move_down_and_cr(rows: usize);
        move_up_and_cr(rows: usize);
        backspace();
        carriage_return();
        substitute();
        scroll_down(rows: usize);
        insert_blank_lines(rows: usize);
        delete_lines(rows: usize);
        erase_chars(count: usize);
        delete_chars(count: usize);
        move_backward_tabs(count: u16);
        move_forward_tabs(count: u16);
        save_cursor_position();
        restore_cursor_position();
        clear_line(mode: LineClearMode);
        reverse_index();
        terminal_attribute(attr: ansi::Attr);
        set_mode(mode: ansi::Mode);
        unset_mode(mode: ansi::Mode);
        set_keypad_application_mode();
        unset_keypad_application_mode();
        configure_charset(index: CharsetIndex, charset: StandardCharset);
    }

    #[inline]
    fn input(&mut self, c: char) {
        if self.input_wraps(c) && self.feed_scrolls() {
            self.scroll_off(1);
        }
        self.term.input(c);
    }

    fn put_tab(&mut self, count: u16) {
        // A tab after the last column wraps, as a character would.
        if self.term.grid().cursor.input_needs_wrap
            && self.term.mode().contains(TermMode::LINE_WRAP)
            && self.feed_scrolls()
        {
            self.scroll_off(1);
        }
        self.term.put_tab(count);
    }

    #[inline]
    fn linefeed(&mut self) {
        if self.feed_scrolls() {
            self.scroll_off(1);
        }
        self.term.linefeed();
    }

    fn newline(&mut self) {
        if self.feed_scrolls() {
            self.scroll_off(1);
        }
        self.term.newline();
    }

    fn scroll_up(&mut self, rows: usize) {
        self.scroll_off(rows);
        self.term.scroll_up(rows);
    }

    fn clear_screen(&mut self, mode: ClearMode) {
        let skip = std::mem::take(&mut self.hooks.skip_clear);
        if !self.alternate() && !self.hooks.muted {
            match mode {
                ClearMode::All => {
                    if self.hooks.collect.is_some() {
                        let rows = self.rows_with_text();
                        if let Some(c) = &mut self.hooks.collect {
                            c.push(Collected::ClearedScreen(rows));
                        }
                    } else if self.hooks.scroll_on_clear && !skip {
                        for row in self.rows_with_text() {
                            self.hooks.push_scrolled(Some(row));
                        }
                    }
                }
                ClearMode::Saved => {
                    if let Some(c) = &mut self.hooks.collect {
                        c.push(Collected::ClearedHistory);
                    } else {
                        self.hooks.lines.clear();
                        self.hooks.history_cleared = true;
                    }
                }
                _ => {}
            }
        }
        self.term.clear_screen(mode);
    }

    fn reset_state(&mut self) {
        self.term.reset_state();
        self.mirror = Mirror::new(self.term.screen_lines() as u16);
    }

    fn set_scrolling_region(&mut self, top: usize, bottom: Option<usize>) {
        let rows = self.term.screen_lines();
        let bottom = bottom.unwrap_or(rows);
        if top < bottom {
            self.mirror.region = (top.saturating_sub(1).min(rows), bottom.min(rows));
        }
        self.term.set_scrolling_region(top, Some(bottom));
    }

    fn set_private_mode(&mut self, mode: PrivateMode) {
        if let Some(mode) = self.private_mode(mode, true) {
            self.term.set_private_mode(mode);
        }
    }

    fn unset_private_mode(&mut self, mode: PrivateMode) {
        if let Some(mode) = self.private_mode(mode, false) {
            self.term.unset_private_mode(mode);
        }
    }

    fn report_private_mode(&mut self, mode: PrivateMode) {
        let raw = mode.raw();
        let state = self.private_mode_state(raw);
        self.reply(format!("\x1b[?{raw};{state}$y").as_bytes());
    }

    fn set_active_charset(&mut self, index: CharsetIndex) {
        self.mirror.charset = index;
        self.term.set_active_charset(index);
    }

    fn set_horizontal_tabstop(&mut self) {
        self.mirror.tabs_set = true;
        self.term.set_horizontal_tabstop();
    }

    fn clear_tabs(&mut self, mode: TabulationClearMode) {
        self.mirror.tabs_set = true;
        self.term.clear_tabs(mode);
    }

    fn identify_terminal(&mut self, intermediate: Option<char>) {
        match intermediate {
            // A VT220 with ANSI colour (22), as many terminals answer.
            None => self.reply(b"\x1b[?62;22c"),
            Some('>') => self.reply(b"\x1b[>1;10;0c"),
            Some(_) => {}
        }
    }

    fn device_status(&mut self, arg: usize) {
        match arg {
            5 => self.reply(b"\x1b[0n"),
            6 => {
                let p = self.term.grid().cursor.point;
                let row = self.cursor_line().min(self.term.screen_lines() - 1) + 1;
                let col = p.column.0.min(self.term.columns() - 1) + 1;
                self.reply(format!("\x1b[{row};{col}R").as_bytes());
            }
            _ => {}
        }
    }

    fn dynamic_color_sequence(&mut self, prefix: String, index: usize, terminator: &str) {
        // 256, 257, 258: the foreground, the background and the cursor (OSC 10, 11, 12).
        let Rgb(red, green, blue) = match index {
            256 | 258 => self.hooks.colors.foreground,
            257 => self.hooks.colors.background,
            _ => return,
        };
        let hex = |v: u8| u16::from(v) * 257;
        let reply = format!(
            "\x1b]{prefix};rgb:{:04x}/{:04x}/{:04x}{terminator}",
            hex(red),
            hex(green),
            hex(blue)
        );
        self.reply(reply.as_bytes());
    }

    fn set_title(&mut self, title: Option<String>) {
        let title = title.unwrap_or_default();
        let mut end = title.len().min(MAX_TITLE);
        while !title.is_char_boundary(end) {
            end -= 1;
        }
        self.hooks.title = title[..end].chars().filter(|c| !c.is_control()).collect();
    }

    fn push_title(&mut self) {
        if self.hooks.titles.len() >= MAX_TITLES {
            self.hooks.titles.remove(0);
        }
        self.hooks.titles.push(self.hooks.title.clone());
    }

    fn pop_title(&mut self) {
        if let Some(title) = self.hooks.titles.pop() {
            self.hooks.title = title;
        }
    }

    fn bell(&mut self) {
        self.hooks.bells = self.hooks.bells.wrapping_add(1);
    }

    // Resize requests from the child (`CSI 8 ; rows ; cols t`) are not even parsed by the
    // emulator: the pane decides the size, not the program. Hyperlinks, palette changes,
    // cursor shapes, the clipboard and keyboard protocols are dropped (the defaults).
}

/// A terminal screen fed with a program's output.
pub struct Screen {
    emu: Emu,
    parser: Processor<Unbuffered>,
    rows: u16,
    cols: u16,
    /// Where the parser stands, for checkpoints (collecting screens only).
    ground: Option<Ground>,
    tail: Tail,
    /// The view scrolled back into the history ([`Screen::set_view_offset`]), and how far.
    view: Option<(usize, Box<Screen>)>,
    /// Per row of the live screen, the stamp of its last possible change
    /// ([`Screen::row_stamps`]), and the latest stamp given.
    stamps: Vec<u64>,
    stamp: u64,
    rebuilds: u64,
    #[cfg(test)]
    panics_to_inject: u32,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("scrollback", &self.emu.hooks.keep)
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
            emu: Emu::new(rows, cols, hooks),
            parser: Processor::new(),
            rows,
            cols,
            ground: None,
            tail: Tail::default(),
            view: None,
            stamps: Vec::new(),
            stamp: 0,
            rebuilds: 0,
            #[cfg(test)]
            panics_to_inject: 0,
        }
    }

    /// A stamp per row of the live screen, top to bottom: a row whose stamp is the same as at
    /// an earlier call has not changed since (its cells, that is; the cursor and the modes are
    /// read on their own). A reader keeps the stamps of what it last read and reads again only
    /// the rows whose stamp moved. The emulator's damage tracking gives the changed rows; a
    /// scroll, a clear or a resize changes them all.
    pub fn row_stamps(&mut self) -> &[u64] {
        self.stamp += 1;
        let stamp = self.stamp;
        let rows = usize::from(self.rows);
        let mut all = self.stamps.len() != rows;
        if all {
            self.stamps = vec![stamp; rows];
        }
        let term = &mut self.emu.term;
        let stamps = &mut self.stamps;
        let folded = catch_unwind(AssertUnwindSafe(|| {
            match term.damage() {
                TermDamage::Full => all = true,
                TermDamage::Partial(lines) => {
                    for d in lines {
                        if let Some(s) = stamps.get_mut(d.line) {
                            *s = stamp;
                        }
                    }
                }
            }
            term.reset_damage();
        }));
        if all || folded.is_err() {
            self.stamps.fill(stamp);
        }
        &self.stamps
    }

    /// With `on`, clearing the whole screen (`CSI 2 J`) first scrolls its rows into the
    /// history, down to the last row with text, as tmux's `scroll-on-clear` does; what the
    /// screen shows is unchanged. The alternate screen has no history and is cleared as usual.
    pub fn set_scroll_on_clear(&mut self, on: bool) {
        self.emu.hooks.scroll_on_clear = on;
    }

    /// Lines that have scrolled off the top of the main screen since it started, whether the
    /// history still holds them or not (the program may have cleared it).
    pub fn history_seen(&self) -> u64 {
        self.emu.hooks.scrolled
    }

    /// A screen that keeps no history itself and reports every row that scrolls off the top
    /// of the main screen, and every clear of the screen or of the history, to
    /// [`Screen::take_collected`]. For replaying recordings into a history
    /// ([`crate::agent::history`]).
    pub fn collector(rows: u16, cols: u16) -> Screen {
        let mut s = Screen::new(rows, cols, 0);
        s.emu.hooks.collect = Some(Vec::new());
        s.ground = Some(Ground::default());
        s
    }

    /// What was collected since the last call, oldest first (see [`Screen::collector`]).
    pub fn take_collected(&mut self) -> Vec<Collected> {
        self.emu
            .hooks
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
        if row >= self.rows {
            return String::new();
        }
        format_row(&self.emu.term.grid()[Line(i32::from(row))][..])
    }

    /// A screen of `rows` x `cols` showing `lines` (basic formatted text, one per row, from the
    /// top, each cut to the width; extra lines are ignored), no history, the cursor hidden.
    /// For views of a history.
    pub fn from_rows<'a>(rows: u16, cols: u16, lines: impl IntoIterator<Item = &'a str>) -> Screen {
        let (rows, cols) = clamp_size(rows, cols);
        let mut s = Screen::new(rows, cols, 0);
        let mut bytes = Vec::from(&b"\x1b[?25l"[..]);
        for (i, line) in lines.into_iter().take(usize::from(rows)).enumerate() {
            bytes.extend_from_slice(format!("\x1b[{};1H\x1b[m", i + 1).as_bytes());
            push_sgr_and_text(&mut bytes, line, usize::from(cols));
        }
        bytes.extend_from_slice(b"\x1b[m");
        s.process(&bytes);
        s
    }

    /// The screen's state at this point of its output, to start another screen from
    /// ([`Screen::restore`]) and feed it what follows. `None` when this is not a good place:
    /// not a collecting screen, inside an escape sequence or a character, on the alternate
    /// screen, or with tab stops the program set.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        let ground = self.ground.as_ref()?;
        if !ground.at_rest() || self.emu.alternate() || self.emu.mirror.tabs_set {
            return None;
        }
        let grid = self.emu.term.grid();
        let wrapped = (0..self.rows)
            .map(|r| {
                grid[Line(i32::from(r))][..]
                    .last()
                    .is_some_and(|c| c.flags.contains(Flags::WRAPLINE))
            })
            .collect();
        Some(Checkpoint {
            rows: self.rows,
            cols: self.cols,
            lines: self.formatted_rows(),
            wrapped,
            cursor: grid.cursor.clone(),
            saved: grid.saved_cursor.clone(),
            mode: *self.emu.term.mode(),
            mirror: self.emu.mirror.clone(),
        })
    }

    /// A collecting screen ([`Screen::collector`]) in the state `cp` was taken in.
    pub fn restore(cp: &Checkpoint) -> Screen {
        let mut s = Screen::from_rows(cp.rows, cp.cols, cp.lines.iter().map(String::as_str));
        s.emu.hooks.collect = Some(Vec::new());
        s.ground = Some(Ground::default());
        let term = &mut s.emu.term;
        for (on, mode) in [
            (TermMode::LINE_WRAP, NamedPrivateMode::LineWrap),
            (TermMode::ORIGIN, NamedPrivateMode::Origin),
            (TermMode::SHOW_CURSOR, NamedPrivateMode::ShowCursor),
        ] {
            if cp.mode.contains(on) {
                term.set_private_mode(mode.into());
            } else {
                term.unset_private_mode(mode.into());
            }
        }
        for (on, mode) in [
            (TermMode::INSERT, NamedMode::Insert),
            (TermMode::LINE_FEED_NEW_LINE, NamedMode::LineFeedNewLine),
        ] {
            if cp.mode.contains(on) {
                term.set_mode(mode.into());
            }
        }
        let (top, bottom) = cp.mirror.region;
        term.set_scrolling_region(top + 1, Some(bottom));
        term.set_active_charset(cp.mirror.charset);
        let grid = term.grid_mut();
        for (r, wrapped) in cp.wrapped.iter().enumerate() {
            if *wrapped {
                if let Some(last) = grid[Line(r as i32)][..].last_mut() {
                    last.flags.insert(Flags::WRAPLINE);
                }
            }
        }
        grid.cursor = cp.cursor.clone();
        grid.saved_cursor = cp.saved.clone();
        s.emu.mirror = cp.mirror.clone();
        s
    }

    /// Sets the colours reported to `OSC 10;?` / `OSC 11;?` queries.
    pub fn set_query_colors(&mut self, colors: QueryColors) {
        self.emu.hooks.colors = colors;
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
            self.feed(bytes);
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
        std::mem::take(&mut self.emu.hooks.replies)
    }

    /// Resizes the screen (clamped, see [`clamp_size`]). Rows of the main screen are rewrapped
    /// to the new width, as tmux does; rows pushed off the top go to the history.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let (rows, cols) = clamp_size(rows, cols);
        if (rows, cols) == (self.rows, self.cols) {
            return;
        }
        self.rows = rows;
        self.cols = cols;
        self.view = None;
        let result = catch_unwind(AssertUnwindSafe(|| self.emu.resize(rows, cols)));
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

    fn capture_inner(&self, scrollback: bool) -> String {
        let mut out = String::new();
        if scrollback {
            for line in &self.emu.hooks.lines {
                push_row(&mut out, &plain(line));
            }
        }
        let grid = self.emu.term.grid();
        for r in 0..self.rows {
            let mut row = String::new();
            for c in &grid[Line(i32::from(r))][..] {
                if c.flags.contains(Flags::WIDE_CHAR_SPACER) {
                    continue;
                }
                row.push(cell_char(c));
                row.extend(c.zerowidth().unwrap_or_default());
            }
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
        if row >= self.rows || col >= self.cols {
            return None;
        }
        let c = &self.emu.term.grid()[Line(i32::from(row))][Column(usize::from(col))];
        let pen = Pen::of(c);
        let text = if cell_is_blank_text(c) {
            CellText::EMPTY
        } else {
            CellText::of(cell_char(c), c.zerowidth().unwrap_or_default())
        };
        Some(Cell {
            text,
            fg: pen.fg,
            bg: pen.bg,
            bold: pen.bold,
            dim: pen.dim,
            italic: pen.italic,
            underline: pen.underline,
            inverse: pen.inverse,
            wide: c.flags.contains(Flags::WIDE_CHAR),
            wide_continuation: c.flags.contains(Flags::WIDE_CHAR_SPACER),
        })
    }

    /// The cursor as `(row, col)`, 0-based, clamped inside the screen.
    pub fn cursor(&self) -> (u16, u16) {
        let p = self.emu.term.grid().cursor.point;
        let row = u16::try_from(p.line.0.max(0)).unwrap_or(u16::MAX);
        let col = u16::try_from(p.column.0).unwrap_or(u16::MAX);
        (
            row.min(self.rows.saturating_sub(1)),
            col.min(self.cols.saturating_sub(1)),
        )
    }

    fn mode(&self) -> TermMode {
        *self.emu.term.mode()
    }

    /// Whether the program wants the cursor shown.
    pub fn cursor_visible(&self) -> bool {
        self.mode().contains(TermMode::SHOW_CURSOR)
    }

    /// The window title the program set (`OSC 0` / `OSC 2`), control characters removed.
    pub fn title(&self) -> &str {
        &self.emu.hooks.title
    }

    /// How many times the program rang the bell.
    pub fn bell_count(&self) -> u64 {
        self.emu.hooks.bells
    }

    /// Whether the alternate screen is in use.
    pub fn alternate_screen(&self) -> bool {
        self.emu.alternate()
    }

    /// Whether pasted text is to be wrapped in `ESC [ 200 ~` ... `ESC [ 201 ~`.
    pub fn bracketed_paste(&self) -> bool {
        self.mode().contains(TermMode::BRACKETED_PASTE)
    }

    /// Whether cursor keys are to be sent in application mode (`ESC O A`).
    pub fn application_cursor(&self) -> bool {
        self.mode().contains(TermMode::APP_CURSOR)
    }

    /// Whether the keypad is in application mode.
    pub fn application_keypad(&self) -> bool {
        self.mode().contains(TermMode::APP_KEYPAD)
    }

    /// Which mouse events the program asked for.
    pub fn mouse_mode(&self) -> MouseMode {
        let m = self.mode();
        if m.contains(TermMode::MOUSE_MOTION) {
            MouseMode::AnyMotion
        } else if m.contains(TermMode::MOUSE_DRAG) {
            MouseMode::ButtonMotion
        } else if m.contains(TermMode::MOUSE_REPORT_CLICK) {
            MouseMode::PressRelease
        } else if self.emu.mirror.x10 {
            MouseMode::Press
        } else {
            MouseMode::None
        }
    }

    /// How mouse events are to be encoded.
    pub fn mouse_encoding(&self) -> MouseEncoding {
        let m = self.mode();
        if m.contains(TermMode::SGR_MOUSE) {
            MouseEncoding::Sgr
        } else if m.contains(TermMode::UTF8_MOUSE) {
            MouseEncoding::Utf8
        } else {
            MouseEncoding::Default
        }
    }

    /// Whether the program is inside a synchronized update (`CSI ? 2026 h` without the
    /// closing `l` yet): a renderer should keep showing the previous frame meanwhile (and
    /// give up waiting after a moment, as terminals do).
    pub fn synchronized_update(&self) -> bool {
        self.emu.mirror.sync
    }

    /// Lines of history kept above the screen.
    pub fn scrollback_len(&self) -> usize {
        self.emu.hooks.lines.len()
    }

    /// Scrolls the view `rows` lines up into the history (0 = the live screen); returns the
    /// offset actually set (clamped to the history's length). [`Screen::cell`] reads the view,
    /// as it was when the offset was set (set it again to follow new output).
    pub fn set_view_offset(&mut self, rows: usize) -> usize {
        let lines = &self.emu.hooks.lines;
        let offset = rows.min(lines.len());
        if offset == 0 {
            self.view = None;
            return 0;
        }
        let screen = self.formatted_rows();
        let lines = &self.emu.hooks.lines;
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

    /// Feeds `bytes` to the parser. A clear of the screen directly followed by a clear of the
    /// history is told so (the screen need not be kept in the history first).
    fn feed(&mut self, bytes: &[u8]) {
        if let Some(g) = &mut self.ground {
            g.advance(bytes);
        }
        let hooks = &self.emu.hooks;
        if hooks.scroll_on_clear && hooks.collect.is_none() {
            let mut start = 0;
            for at in memchr::memmem::find_iter(bytes, CLEAR_BOTH) {
                self.parser.advance(&mut self.emu, &bytes[start..at]);
                self.emu.hooks.skip_clear = true;
                start = at;
            }
            self.parser.advance(&mut self.emu, &bytes[start..]);
            self.emu.hooks.skip_clear = false;
        } else {
            self.parser.advance(&mut self.emu, bytes);
        }
        if std::mem::take(&mut self.emu.hooks.history_cleared) {
            self.view = None;
        }
    }

    /// Replaces a (possibly corrupted) emulator with a fresh one at the same size, replaying
    /// the recent output; if the replay panics too, the screen starts blank.
    fn rebuild(&mut self) {
        self.rebuilds += 1;
        let mut hooks = std::mem::take(&mut self.emu.hooks);
        hooks.muted = true;
        self.emu = Emu::new(self.rows, self.cols, hooks);
        self.parser = Processor::new();
        self.ground = self.ground.as_ref().map(|_| Ground::default());
        self.view = None;
        let tail = std::mem::take(&mut self.tail);
        let replay = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(test)]
            if self.panics_to_inject > 0 {
                self.panics_to_inject -= 1;
                panic!("injected emulator panic during replay (test)");
            }
            for part in [&tail.older, &tail.newer] {
                self.feed(part);
            }
        }));
        self.emu.hooks.muted = false;
        match replay {
            Ok(()) => self.tail = tail,
            Err(payload) => {
                tracing::warn!(
                    panic = panic_message(payload.as_ref()),
                    "terminal emulator panicked again replaying recent output; starting blank"
                );
                let hooks = std::mem::take(&mut self.emu.hooks);
                self.emu = Emu::new(self.rows, self.cols, hooks);
                self.parser = Processor::new();
                self.ground = self.ground.as_ref().map(|_| Ground::default());
            }
        }
    }
}

/// The character a cell shows (tabs and the padding before a wrapped wide character are
/// blanks).
fn cell_char(c: &ACell) -> char {
    if c.c == '\t' || c.flags.contains(Flags::LEADING_WIDE_CHAR_SPACER) {
        ' '
    } else {
        c.c
    }
}

/// Whether the cell holds no text (it may still have a background).
fn cell_is_blank_text(c: &ACell) -> bool {
    cell_char(c) == ' ' && c.zerowidth().is_none_or(|z| z.is_empty())
}

/// Whether the cell shows nothing: no text, default attributes.
#[inline]
fn cell_is_default_blank(c: &ACell) -> bool {
    // What a cleared cell is, first: most blanks are.
    const FG: ansi::Color = ansi::Color::Named(ansi::NamedColor::Foreground);
    const BG: ansi::Color = ansi::Color::Named(ansi::NamedColor::Background);
    if c.c == ' ' && c.flags.is_empty() && c.extra.is_none() && c.bg == BG && c.fg == FG {
        return true;
    }
    cell_is_blank_text(c) && Pen::of(c) == Pen::default()
}

/// One row as basic formatted text: SGR sequences and text, from default attributes, up to
/// the last cell that is not a default blank.
fn format_row(row: &[ACell]) -> String {
    let end = row
        .iter()
        .rposition(|c| !cell_is_default_blank(c))
        .map_or(0, |i| i + 1);
    let mut out = String::with_capacity(end + 16);
    let mut current = Pen::default();
    // The pen of the cells just seen, and what it was made from (most runs share it).
    let mut pen = Pen::default();
    let mut made_from = None;
    let mut blanks = 0usize;
    for c in &row[..end] {
        if c.flags.contains(Flags::WIDE_CHAR_SPACER) {
            continue;
        }
        let raw = (c.fg, c.bg, c.flags);
        if made_from != Some(raw) {
            pen = Pen::of(c);
            made_from = Some(raw);
        }
        let blank = cell_is_blank_text(c);
        if blank && pen == Pen::default() {
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
        out.push(cell_char(c));
        if let Some(z) = c.zerowidth() {
            out.extend(z);
        }
    }
    out
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
    #[inline]
    fn of(c: &ACell) -> Pen {
        let f = c.flags;
        Pen {
            fg: c.fg.into(),
            bg: c.bg.into(),
            bold: f.contains(Flags::BOLD),
            dim: f.contains(Flags::DIM),
            italic: f.contains(Flags::ITALIC),
            underline: f.intersects(Flags::ALL_UNDERLINES),
            inverse: f.contains(Flags::INVERSE),
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
    let mut out = String::with_capacity(formatted.len());
    let mut rest = formatted;
    while let Some(at) = rest.find('\x1b') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(body) = rest.strip_prefix('[') {
            let end = body
                .find(|c: char| !(c.is_ascii_digit() || c == ';' || c == ':'))
                .map_or(body.len(), |e| e + 1);
            rest = &body[end..];
        }
    }
    out.push_str(rest);
    out
}

/// Appends `line`'s text and SGR sequences (`ESC [ ... m`), the text cut to `cols` columns;
/// every other control character or escape sequence is left out.
fn push_sgr_and_text(out: &mut Vec<u8>, line: &str, cols: usize) {
    let mut used = 0usize;
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
            let w = c.width().unwrap_or(0);
            if used + w > cols {
                break;
            }
            used += w;
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

/// Where a screen's output stood at a [`Screen::checkpoint`].
#[derive(Clone)]
pub struct Checkpoint {
    rows: u16,
    cols: u16,
    /// The rows as basic formatted text, and whether each wraps into the next.
    lines: Vec<String>,
    wrapped: Vec<bool>,
    cursor: Cursor<ACell>,
    saved: Cursor<ACell>,
    mode: TermMode,
    mirror: Mirror,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("bytes", &self.lines.iter().map(String::len).sum::<usize>())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Where the parser stands: a shadow of its state machine (vte's), only to know whether it is
// between sequences and characters, where a replay can restart from a checkpoint.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum State {
    #[default]
    Ground,
    Escape,
    EscapeIntermediate,
    Csi,
    Osc,
    /// DCS, SOS, PM and APC strings: skipped to their terminator.
    String,
}

#[derive(Clone, Copy, Debug, Default)]
struct Ground {
    state: State,
    /// Continuation bytes still expected for the UTF-8 character being read in ground state.
    utf8: u8,
}

impl Ground {
    fn at_rest(&self) -> bool {
        self.state == State::Ground && self.utf8 == 0
    }

    fn advance(&mut self, bytes: &[u8]) {
        // ESC, CAN and SUB act from any state: only what follows the last of them matters.
        let from = match memchr::memrchr3(0x1b, 0x18, 0x1a, bytes) {
            Some(at) => {
                *self = Ground::default();
                at
            }
            None => 0,
        };
        let mut i = from;
        while i < bytes.len() {
            if self.state == State::Ground && self.utf8 == 0 {
                // Nothing after this (no ESC) leaves ground: only a character cut at the end.
                self.utf8 = utf8_pending(&bytes[i..]);
                return;
            }
            self.step(bytes[i]);
            i += 1;
        }
    }

    fn step(&mut self, b: u8) {
        match b {
            0x18 | 0x1a => {
                *self = Ground::default();
                return;
            }
            0x1b => {
                *self = Ground {
                    state: State::Escape,
                    utf8: 0,
                };
                return;
            }
            _ => {}
        }
        self.state = match self.state {
            State::Ground => {
                self.utf8 = match b {
                    0x80..=0xbf => self.utf8.saturating_sub(1),
                    _ => 0,
                };
                State::Ground
            }
            State::Escape => match b {
                0x00..=0x1f | 0x7f => State::Escape,
                0x20..=0x2f => State::EscapeIntermediate,
                b'[' => State::Csi,
                b']' => State::Osc,
                b'P' | b'X' | b'^' | b'_' => State::String,
                _ => State::Ground,
            },
            State::EscapeIntermediate => match b {
                0x00..=0x2f | 0x7f => State::EscapeIntermediate,
                _ => State::Ground,
            },
            State::Csi => match b {
                0x40..=0x7e => State::Ground,
                _ => State::Csi,
            },
            State::Osc => match b {
                0x07 | 0x9c => State::Ground,
                _ => State::Osc,
            },
            State::String => match b {
                0x9c => State::Ground,
                _ => State::String,
            },
        };
    }
}

/// Continuation bytes missing from a UTF-8 character cut at the end of `bytes`.
fn utf8_pending(bytes: &[u8]) -> u8 {
    for back in 1..=bytes.len().min(4) {
        let b = bytes[bytes.len() - back];
        if b & 0xc0 == 0x80 {
            continue;
        }
        let len: usize = match b {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => return 0,
        };
        return u8::try_from(len.saturating_sub(back)).unwrap_or(0);
    }
    0
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
            &b"[6n 6n \x1b[16n \x1b[?6n \x1b[1c \x1b[=c"[..],
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
        assert_eq!(
            s.cell(0, 0).map(|c| c.text.to_string()).as_deref(),
            Some("├")
        );

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
            (r.text.as_str(), r.fg, r.bg, r.bold),
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
        assert_eq!(
            s.cell(0, 0).map(|c| c.text.to_string()).as_deref(),
            Some("o")
        );
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
    fn rows_a_resize_pushes_off_the_top_go_to_the_history() {
        let mut s = Screen::new(6, 20, 100);
        s.process(b"one\r\ntwo\r\nthree\r\nfour\r\nfive\r\nsix");
        s.resize(3, 20);
        assert_eq!(s.capture(false), "four\nfive\nsix\n");
        assert_eq!(s.capture(true), "one\ntwo\nthree\nfour\nfive\nsix\n");
        assert_eq!(s.history_seen(), 3);
        // Counted when not kept too, as rows that scroll off are.
        let mut none = Screen::new(6, 20, 0);
        none.process(b"one\r\ntwo\r\nthree\r\nfour\r\nfive\r\nsix");
        none.resize(3, 20);
        assert_eq!((none.history_seen(), none.scrollback_len()), (3, 0));
        // Narrower: the long row is rewrapped, as in tmux; what it pushes off is kept too.
        let mut s = Screen::new(3, 10, 100);
        s.process(b"a\r\n0123456789abcdefghij");
        s.resize(3, 5);
        assert_eq!(s.capture(false), "56789\nabcde\nfghij\n");
        assert_eq!(s.capture(true), "a\n01234\n56789\nabcde\nfghij\n");
        // A collector reports them as scrolled rows.
        let mut c = Screen::collector(4, 10);
        c.process(b"w\r\nx\r\ny\r\nz");
        c.resize(2, 10);
        let got: Vec<Collected> = c.take_collected();
        assert_eq!(
            got,
            vec![
                Collected::Scrolled("w".into()),
                Collected::Scrolled("x".into())
            ]
        );
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
        let _ = s.take_replies();
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
