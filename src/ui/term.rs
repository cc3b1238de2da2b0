//! A ratatui widget that draws one agent's terminal screen ([`Cells`]) cell by cell, and the
//! cockpit's copy of a screen ([`Pane`]), which converts only the rows an update changed.
//!
//! The engine sizes every PTY to the pane, so normally the screen and the area match. When
//! the area is smaller the top-left part shows; when larger the rest stays blank. The widget
//! reads the screen's current view, so a view offset set on the screen (scrollback) shows
//! the history rows.

use crate::agent::screen::Cells;
use crate::agent::screen::{Cell as ScreenCell, Color as ScreenColor};
use crate::server::protocol::{Grid, ScreenUpdate};
use ratatui::buffer::{Buffer, Cell as BufCell};
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Widget;
use std::cell::RefCell;
use unicode_width::UnicodeWidthStr;

/// Draws a screen into an area.
#[derive(Clone, Copy)]
pub struct TermView<'a> {
    screen: &'a dyn Cells,
    colors: bool,
}

impl<'a> TermView<'a> {
    pub fn new(screen: &'a dyn Cells) -> TermView<'a> {
        TermView {
            screen,
            colors: true,
        }
    }

    /// With `false`, the program's colours are dropped (`NO_COLOR`); attributes stay.
    pub fn colors(mut self, colors: bool) -> TermView<'a> {
        self.colors = colors;
        self
    }

    /// Where the program's cursor is on screen when drawn into `area`: `None` when the
    /// program hides it, the view is scrolled back, or the cursor falls outside the area.
    pub fn cursor(&self, area: Rect) -> Option<Position> {
        if !self.screen.cursor_visible() || self.screen.view_offset() > 0 {
            return None;
        }
        let (rows, cols) = self.screen.size();
        let (row, col) = self.screen.cursor();
        let (h, w) = (area.height.min(rows), area.width.min(cols));
        (row < h && col < w).then(|| Position::new(area.x + col, area.y + row))
    }
}

impl Widget for TermView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        (&self).render(area, buf);
    }
}

impl Widget for &TermView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (rows, _) = self.screen.size();
        let drawn: Vec<Vec<BufCell>> = (0..rows)
            .map(|r| row_cells(self.screen, r, self.colors))
            .collect();
        put_rows(
            area,
            buf,
            self.screen.size(),
            drawn.iter().map(Vec::as_slice),
        );
    }
}

/// Draws `screen` into `area` and returns where its cursor is (see [`TermView::cursor`]).
pub fn render_screen(
    screen: &dyn Cells,
    area: Rect,
    buf: &mut Buffer,
    colors: bool,
) -> Option<Position> {
    let view = TermView::new(screen).colors(colors);
    (&view).render(area, buf);
    view.cursor(area.intersection(buf.area))
}

/// One row of a screen as ratatui cells, the screen's whole width: a wide character's second
/// half is a blank cell with its style.
fn row_cells(screen: &dyn Cells, row: u16, colors: bool) -> Vec<BufCell> {
    let (_, cols) = screen.size();
    let mut out = vec![BufCell::EMPTY; usize::from(cols)];
    for col in 0..cols {
        let Some(cell) = screen.cell(row, col) else {
            continue;
        };
        if cell.wide_continuation {
            continue;
        }
        let style = style_of(&cell, colors);
        let symbol = if cell.text.is_empty() {
            " "
        } else {
            cell.text.as_str()
        };
        let at = usize::from(col);
        out[at].set_symbol(symbol).set_style(style);
        if cell.wide {
            if let Some(next) = out.get_mut(at + 1) {
                next.reset();
                next.set_style(style);
            }
        }
    }
    out
}

/// Puts the rows of a screen of `size` (as [`row_cells`] makes them) into `area`: the top-left
/// part when the area is smaller, blank beyond the screen when it is larger.
fn put_rows<'a>(
    area: Rect,
    buf: &mut Buffer,
    size: (u16, u16),
    rows: impl Iterator<Item = &'a [BufCell]>,
) {
    let area = area.intersection(buf.area);
    let (h, w) = (area.height.min(size.0), area.width.min(size.1));
    let mut rows = rows.take(usize::from(h));
    for row in 0..area.height {
        let cells = rows.next().unwrap_or_default();
        for col in 0..area.width {
            let Some(c) = buf.cell_mut((area.x + col, area.y + row)) else {
                continue;
            };
            match cells.get(usize::from(col)).filter(|_| col < w) {
                // A wide character cut by the area's right edge would spill over it.
                Some(cell) if col + 1 == w && UnicodeWidthStr::width(cell.symbol()) > 1 => {
                    c.reset();
                    c.set_symbol(" ").set_style(cell.style());
                }
                Some(cell) => c.clone_from(cell),
                None => c.reset(),
            }
        }
    }
}

/// The cockpit's copy of an agent's screen ([`Grid`], kept up to date from the engine's
/// updates) with its rows ready to draw: an update marks the rows it changed, only those are
/// converted again, and a frame copies the converted rows into the terminal's buffer (whose
/// diff then writes only the cells that changed to the terminal).
#[derive(Debug, Default)]
pub struct Pane {
    grid: Grid,
    drawn: RefCell<Drawn>,
}

/// The rows of a [`Pane`] as ratatui cells (`None`: to convert), for the colour setting they
/// were converted with.
#[derive(Debug, Default)]
struct Drawn {
    colors: Option<bool>,
    rows: Vec<Option<Vec<BufCell>>>,
    /// Rows converted so far.
    #[cfg(test)]
    converted: usize,
}

impl Pane {
    /// The screen as the engine last sent it.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Applies an update from the engine.
    pub fn apply(&mut self, u: ScreenUpdate) {
        let resized = self.grid.state.size != u.state.size;
        let changed: Vec<u16> = u.rows.iter().map(|(r, _)| *r).collect();
        self.grid.apply(u);
        let drawn = self.drawn.get_mut();
        let rows = usize::from(self.grid.state.size.0);
        if resized || drawn.rows.len() != rows {
            drawn.rows = vec![None; rows];
        } else {
            for r in changed {
                if let Some(row) = drawn.rows.get_mut(usize::from(r)) {
                    *row = None;
                }
            }
        }
    }

    /// Draws the screen into `area` (see [`render_screen`]), converting only the rows changed
    /// since the last time; returns where the cursor is.
    pub fn render(&self, area: Rect, buf: &mut Buffer, colors: bool) -> Option<Position> {
        let mut drawn = self.drawn.borrow_mut();
        let drawn = &mut *drawn;
        let rows = usize::from(self.grid.state.size.0);
        if drawn.colors != Some(colors) || drawn.rows.len() != rows {
            drawn.colors = Some(colors);
            drawn.rows = vec![None; rows];
        }
        #[cfg(test)]
        let mut converted = 0;
        for (r, row) in (0..).zip(drawn.rows.iter_mut()) {
            if row.is_none() {
                *row = Some(row_cells(&self.grid, r, colors));
                #[cfg(test)]
                {
                    converted += 1;
                }
            }
        }
        #[cfg(test)]
        {
            drawn.converted += converted;
        }
        put_rows(
            area,
            buf,
            self.grid.state.size,
            drawn.rows.iter().flatten().map(Vec::as_slice),
        );
        TermView::new(&self.grid).cursor(area.intersection(buf.area))
    }
}

impl Cells for Pane {
    fn size(&self) -> (u16, u16) {
        self.grid.size()
    }
    fn cell(&self, row: u16, col: u16) -> Option<ScreenCell<'_>> {
        self.grid.cell(row, col)
    }
    fn cursor(&self) -> (u16, u16) {
        self.grid.cursor()
    }
    fn cursor_visible(&self) -> bool {
        self.grid.cursor_visible()
    }
    fn view_offset(&self) -> usize {
        self.grid.view_offset()
    }
}

fn color(c: ScreenColor) -> Option<Color> {
    match c {
        ScreenColor::Default => None,
        ScreenColor::Indexed(i) => Some(Color::Indexed(i)),
        ScreenColor::Rgb(r, g, b) => Some(Color::Rgb(r, g, b)),
    }
}

/// The ratatui style of a screen cell.
pub fn style_of(cell: &ScreenCell<'_>, colors: bool) -> Style {
    let mut s = Style::new();
    if colors {
        if let Some(c) = color(cell.fg) {
            s = s.fg(c);
        }
        if let Some(c) = color(cell.bg) {
            s = s.bg(c);
        }
    }
    let mut m = Modifier::empty();
    for (on, bit) in [
        (cell.bold, Modifier::BOLD),
        (cell.dim, Modifier::DIM),
        (cell.italic, Modifier::ITALIC),
        (cell.underline, Modifier::UNDERLINED),
        (cell.inverse, Modifier::REVERSED),
    ] {
        if on {
            m |= bit;
        }
    }
    s.add_modifier(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Screen;

    fn screen(rows: u16, cols: u16, bytes: &[u8]) -> Screen {
        let mut s = Screen::new(rows, cols, 100);
        s.process(bytes);
        s
    }

    fn row_text(buf: &Buffer, y: u16) -> String {
        let mut out = String::new();
        let mut skip = 0;
        for x in buf.area.left()..buf.area.right() {
            let sym = buf[(x, y)].symbol();
            if skip > 0 {
                skip -= 1;
                continue;
            }
            out.push_str(sym);
            if ratatui::text::Span::raw(sym).width() == 2 {
                skip = 1;
            }
        }
        out
    }

    #[test]
    fn draws_text_colours_and_attributes() {
        let s = screen(
            3,
            20,
            b"\x1b[31mred\x1b[0m \x1b[1;44mbold\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[0m\r\n\
              \x1b[2;3;4;7mx\x1b[0m\xe4\xb8\x96\xe7\x95\x8c!",
        );
        let area = Rect::new(0, 0, 20, 3);
        let mut buf = Buffer::empty(area);
        let cursor = render_screen(&s, area, &mut buf, true);
        assert_eq!(row_text(&buf, 0), "red bold rgb        ");
        assert_eq!(row_text(&buf, 1), "x世界!              ");
        assert_eq!(buf[(0, 0)].fg, Color::Indexed(1));
        assert_eq!(buf[(3, 0)].fg, Color::Reset);
        assert_eq!(buf[(4, 0)].bg, Color::Indexed(4));
        assert!(buf[(4, 0)].modifier.contains(Modifier::BOLD));
        assert_eq!(buf[(9, 0)].fg, Color::Rgb(1, 2, 3));
        let m = buf[(0, 1)].modifier;
        assert!(m.contains(Modifier::DIM | Modifier::ITALIC | Modifier::UNDERLINED));
        assert!(m.contains(Modifier::REVERSED));
        // The wide characters take two cells each.
        assert_eq!(buf[(1, 1)].symbol(), "世");
        assert_eq!(buf[(3, 1)].symbol(), "界");
        assert_eq!(buf[(5, 1)].symbol(), "!");
        assert_eq!(cursor, Some(Position::new(6, 1)));
    }

    #[test]
    fn no_colours_keeps_attributes() {
        let s = screen(2, 10, b"\x1b[1;31;42mhi");
        let area = Rect::new(0, 0, 10, 2);
        let mut buf = Buffer::empty(area);
        render_screen(&s, area, &mut buf, false);
        assert_eq!(buf[(0, 0)].fg, Color::Reset);
        assert_eq!(buf[(0, 0)].bg, Color::Reset);
        assert!(buf[(0, 0)].modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn smaller_area_shows_top_left_and_cuts_wide_characters() {
        let s = screen(4, 10, b"abcd\xe4\xb8\x96efg\r\nline2\r\nline3\r\nline4");
        let area = Rect::new(2, 1, 5, 2);
        let mut buf = Buffer::empty(Rect::new(0, 0, 8, 4));
        buf[(7, 1)].set_symbol("|");
        let cursor = render_screen(&s, area, &mut buf, true);
        assert_eq!(row_text(&buf, 1), "  abcd |");
        assert_eq!(row_text(&buf, 2), "  line2 ");
        assert_eq!(row_text(&buf, 3), "        ");
        // The cursor is on row 4: outside the area.
        assert_eq!(cursor, None);
    }

    #[test]
    fn larger_area_is_blank_beyond_the_screen_and_hidden_cursor_is_none() {
        let s = screen(2, 3, b"\x1b[?25lab");
        let area = Rect::new(0, 0, 6, 3);
        let mut buf = Buffer::empty(area);
        for x in 0..6 {
            for y in 0..3 {
                buf[(x, y)].set_symbol("#");
            }
        }
        let cursor = render_screen(&s, area, &mut buf, true);
        assert_eq!(row_text(&buf, 0), "ab    ");
        assert_eq!(row_text(&buf, 2), "      ");
        assert_eq!(cursor, None);
    }

    #[test]
    fn scrolled_view_shows_history_without_cursor() {
        let mut s = screen(2, 8, b"one\r\ntwo\r\nthree\r\nfour");
        assert_eq!(s.set_view_offset(2), 2);
        let area = Rect::new(0, 0, 8, 2);
        let mut buf = Buffer::empty(area);
        let cursor = render_screen(&s, area, &mut buf, true);
        assert_eq!(row_text(&buf, 0), "one     ");
        assert_eq!(row_text(&buf, 1), "two     ");
        assert_eq!(cursor, None);
    }

    #[test]
    fn a_pane_converts_only_the_rows_an_update_changed_and_draws_as_the_screen() {
        use crate::server::protocol::Grid;
        let mut s = screen(6, 12, b"\x1b[1;31mone\x1b[0m\r\ntwo \xe4\xb8\x96\r\nthree");
        let mut pane = Pane::default();
        let mut sent = Grid::of(&s);
        pane.apply(sent.update_since(None, "nux").unwrap());
        let area = Rect::new(1, 1, 12, 6);
        let drawn = |pane: &Pane| {
            let mut buf = Buffer::empty(Rect::new(0, 0, 14, 8));
            let cursor = pane.render(area, &mut buf, true);
            (buf, cursor)
        };
        let expected = |s: &Screen| {
            let mut buf = Buffer::empty(Rect::new(0, 0, 14, 8));
            let cursor = render_screen(s, area, &mut buf, true);
            (buf, cursor)
        };
        assert_eq!(drawn(&pane), expected(&s));
        assert_eq!(pane.drawn.borrow().converted, 6);
        // Frames with no update convert nothing.
        assert_eq!(drawn(&pane), expected(&s));
        assert_eq!(pane.drawn.borrow().converted, 6);
        // One row changes: one row is converted.
        s.process(b"\x1b[2;1H\x1b[44mTWO\x1b[0m");
        let next = Grid::of(&s);
        pane.apply(next.update_since(Some(&sent), "nux").unwrap());
        sent = next;
        assert_eq!(drawn(&pane), expected(&s));
        assert_eq!(pane.drawn.borrow().converted, 7);
        // Without colours every row is converted again, then drawn as the screen is.
        let mut buf = Buffer::empty(Rect::new(0, 0, 14, 8));
        pane.render(area, &mut buf, false);
        let mut want = Buffer::empty(Rect::new(0, 0, 14, 8));
        render_screen(&s, area, &mut want, false);
        assert_eq!(buf, want);
        assert_eq!(pane.drawn.borrow().converted, 13);
        // A resize converts every row at the new size.
        s.resize(4, 8);
        pane.apply(Grid::of(&s).update_since(Some(&sent), "nux").unwrap());
        assert_eq!(drawn(&pane), expected(&s));
        assert_eq!(pane.drawn.borrow().converted, 17);
    }

    #[test]
    fn zero_and_offscreen_areas_do_not_panic() {
        let s = screen(5, 5, b"hello");
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 3));
        for area in [
            Rect::new(0, 0, 0, 0),
            Rect::new(2, 2, 10, 10),
            Rect::new(50, 50, 5, 5),
            Rect::new(0, 0, 1, 1),
        ] {
            render_screen(&s, area, &mut buf, true);
        }
    }
}
