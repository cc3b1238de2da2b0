//! Text cut and padded to terminal columns: what every panel and dialog lays out with.

use ratatui::text::Span;

/// Display width of `s` in terminal columns.
pub fn width(s: &str) -> usize {
    Span::raw(s).width()
}

fn char_width(c: char) -> usize {
    let mut b = [0u8; 4];
    width(c.encode_utf8(&mut b))
}

/// `s` cut to at most `w` columns, ending in `…` when cut. Control characters become spaces.
pub fn fit(s: &str, w: usize) -> String {
    let clean = |c: char| if c.is_control() { ' ' } else { c };
    if width(s) <= w && !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let total: usize = s.chars().map(|c| char_width(clean(c))).sum();
    if total <= w {
        return s.chars().map(clean).collect();
    }
    if w == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars().map(clean) {
        let cw = char_width(c);
        if used + cw > w - 1 {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    out
}

/// `s` fitted to exactly `w` columns (cut or padded with spaces on the right).
pub fn pad(s: &str, w: usize) -> String {
    let mut out = fit(s, w);
    let n = width(&out);
    out.extend(std::iter::repeat_n(' ', w.saturating_sub(n)));
    out
}

/// `s` fitted to exactly `w` columns, aligned right.
pub fn pad_left(s: &str, w: usize) -> String {
    let s = fit(s, w);
    let n = width(&s);
    let mut out: String = std::iter::repeat_n(' ', w.saturating_sub(n)).collect();
    out.push_str(&s);
    out
}

/// Cuts a line of spans to `w` columns (the last kept span ends in `…` when cut).
pub fn fit_spans(spans: Vec<Span<'_>>, w: usize) -> Vec<Span<'_>> {
    let mut out = Vec::new();
    let mut left = w;
    let total: usize = spans.iter().map(|s| s.width()).sum();
    if total <= w {
        return spans;
    }
    for s in spans {
        let sw = s.width();
        if sw < left {
            left -= sw;
            out.push(s);
        } else {
            out.push(Span::styled(fit(&s.content, left), s.style));
            break;
        }
    }
    out
}
