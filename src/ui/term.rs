//! A ratatui widget that draws one agent's terminal screen ([`Cells`]) cell by cell.
//!
//! The engine sizes every PTY to the pane, so normally the screen and the area match. When
//! the area is smaller the top-left part shows; when larger the rest stays blank. The widget
//! reads the screen's current view, so a view offset set on the screen (scrollback) shows
//! the history rows.

use crate::agent::screen::Cells;
use crate::agent::screen::{Cell as ScreenCell, Color as ScreenColor};
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Widget;

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
        let area = area.intersection(buf.area);
        for y in area.top()..area.bottom() {
            for x in area.left()..area.right() {
                if let Some(c) = buf.cell_mut((x, y)) {
                    c.reset();
                }
            }
        }
        let (rows, cols) = self.screen.size();
        let (h, w) = (area.height.min(rows), area.width.min(cols));
        for row in 0..h {
            for col in 0..w {
                let Some(cell) = self.screen.cell(row, col) else {
                    continue;
                };
                if cell.wide_continuation {
                    continue;
                }
                let style = style_of(&cell, self.colors);
                let (x, y) = (area.x + col, area.y + row);
                // A wide character cut by the area's right edge would spill over it.
                let cut = cell.wide && col + 1 >= w;
                let symbol = if cell.text.is_empty() || cut {
                    " "
                } else {
                    cell.text.as_str()
                };
                if let Some(c) = buf.cell_mut((x, y)) {
                    c.set_symbol(symbol).set_style(style);
                }
                if cell.wide && !cut {
                    // The second half: blank, with the same background.
                    if let Some(c) = buf.cell_mut((x + 1, y)) {
                        c.reset();
                        c.set_style(style);
                    }
                }
            }
        }
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
