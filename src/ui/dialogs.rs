//! The dialogs drawn over the cockpit: sling, nudge, the `:` command line, help, stop / leave
//! confirmation, diff and message. Each is a function of the app's [`Dialog`] state.

use super::app::{Dialog, Focus, SlingDialog, SlingStep, COMMANDS};
use super::layout::agents_offset;
use super::panels::Ctx;
use super::text::{fit, fit_spans, pad, width};
use super::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

/// A `w` x `h` rectangle centred in `area` (shrunk to fit).
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// Clears `r` and draws a popup frame; returns the inner area.
fn popup(buf: &mut Buffer, r: Rect, title: Line<'_>, hint: Option<&str>, t: &Theme) -> Rect {
    Clear.render(r, buf);
    let mut block = Block::bordered()
        .border_style(t.border_focused)
        .style(t.text)
        .title(title);
    if let Some(h) = hint {
        block =
            block.title_bottom(Line::from(Span::styled(format!(" {h} "), t.dim)).right_aligned());
    }
    let inner = block.inner(r);
    block.render(r, buf);
    inner
}

fn title(s: impl Into<String>, t: &Theme) -> Line<'static> {
    Line::from(vec![
        Span::raw(" "),
        Span::styled(s.into(), t.title),
        Span::raw(" "),
    ])
}

fn put(buf: &mut Buffer, area: Rect, y: u16, line: Line<'_>) {
    if y < area.height && area.width > 0 {
        let w = usize::from(area.width);
        let line = Line::from(fit_spans(line.spans, w));
        buf.set_line(area.x, area.y + y, &line, area.width);
    }
}

/// An input line showing the end of `text` when it is too long, with a cursor bar.
fn input_line<'a>(prompt: &'a str, text: &str, w: usize, t: &Theme) -> Line<'a> {
    let room = w.saturating_sub(width(prompt) + 1);
    let mut shown: String = text.to_string();
    while width(&shown) > room {
        shown.remove(0);
    }
    Line::from(vec![
        Span::styled(prompt, t.accent),
        Span::styled(shown, t.input),
        Span::styled("▏", t.accent),
    ])
}

/// Draws `dialog` over `area` (the whole screen).
pub fn draw(buf: &mut Buffer, area: Rect, ctx: &Ctx<'_>, dialog: &Dialog) {
    if area.is_empty() {
        return;
    }
    match dialog {
        Dialog::Sling(s) => sling(buf, area, ctx, s),
        Dialog::Nudge { agent, input } => nudge(buf, area, ctx.theme, agent, input),
        Dialog::Command { input, selected } => command(buf, area, ctx, input, *selected),
        Dialog::Help { focus } => help(buf, area, ctx, *focus),
        Dialog::ConfirmStop { running } => confirm(
            buf,
            area,
            ctx.theme,
            "Stop the engine",
            &format!(
                "Stop the town's engine? {}; their hooks stay, and the next `gastown-tui` starts them again.",
                agents_stop(*running)
            ),
            &[("y", "stop"), ("n", "keep it running")],
        ),
        Dialog::ConfirmFreeze { agents } => confirm(
            buf,
            area,
            ctx.theme,
            "Freeze every agent",
            &format!(
                "Stop all {agents} agents in place (SIGSTOP)? Nothing is killed or lost; :thaw resumes them."
            ),
            &[("y", "freeze all"), ("n", "cancel")],
        ),
        Dialog::LeaveDemo { running } => confirm(
            buf,
            area,
            ctx.theme,
            "Leave the demo",
            &format!(
                "Leave the demo town running in the background, or stop it? {}.",
                agents_running(*running)
            ),
            &[("l", "leave it running"), ("s", "stop it"), ("esc", "stay")],
        ),
        Dialog::Diff {
            agent,
            text,
            scroll,
        } => diff(buf, area, ctx.theme, agent, text, *scroll),
        Dialog::Message { title, text } => message(buf, area, ctx.theme, title, text),
    }
}

// ---------------------------------------------------------------------------------------------

fn sling(buf: &mut Buffer, area: Rect, ctx: &Ctx<'_>, s: &SlingDialog) {
    let (app, t) = (ctx.app, ctx.theme);
    let list_len = match s.step {
        SlingStep::Bead => app.sling_beads(&s.filter).len().max(1),
        SlingStep::Rig => app.snapshot.rigs.len(),
        SlingStep::Runtime => app.sling_runtimes().len(),
    };
    let h = (list_len as u16).saturating_add(4).clamp(8, 18);
    let r = centered(area, 76.min(area.width.saturating_sub(2)), h);
    let (step, name, hint) = match s.step {
        SlingStep::Bead => (1, "pick ready work", "↑↓ pick · enter next · esc cancel"),
        SlingStep::Rig => (2, "pick a rig", "↑↓ pick · enter next · esc cancel"),
        SlingStep::Runtime => (3, "pick a runtime", "↑↓ pick · enter sling · esc cancel"),
    };
    let inner = popup(
        buf,
        r,
        title(format!("Sling · {step}/3 {name}"), t),
        Some(hint),
        t,
    );
    if inner.is_empty() {
        return;
    }
    let w = usize::from(inner.width);
    let bead = s.bead.as_deref().unwrap_or("");
    let bead_title = app
        .snapshot
        .ready
        .iter()
        .find(|b| b.id == bead)
        .map(|b| b.title.as_str())
        .unwrap_or("");
    let rows: Vec<Line> = match s.step {
        SlingStep::Bead => {
            put(buf, inner, 0, input_line("› ", &s.filter, w, t));
            let beads = app.sling_beads(&s.filter);
            if beads.is_empty() {
                let msg = if app.snapshot.ready.is_empty() {
                    "No ready work. Create some: gastown-tui bead create TITLE"
                } else {
                    "Nothing matches the filter"
                };
                put(buf, inner, 2, Line::from(Span::styled(msg, t.dim)));
                return;
            }
            let id_w = beads.iter().map(|b| width(&b.id)).max().unwrap_or(6);
            let ty_w = beads
                .iter()
                .map(|b| width(&b.issue_type))
                .max()
                .unwrap_or(4)
                .min(8);
            beads
                .iter()
                .map(|b| {
                    Line::from(vec![
                        Span::styled(pad(&b.id, id_w), t.accent),
                        Span::raw("  "),
                        Span::styled(format!("P{}", b.priority), priority_style(b.priority, t)),
                        Span::raw("  "),
                        Span::styled(pad(&b.issue_type, ty_w), t.dim),
                        Span::raw("  "),
                        Span::styled(b.title.clone(), t.text),
                    ])
                })
                .collect()
        }
        SlingStep::Rig => {
            put(
                buf,
                inner,
                0,
                Line::from(vec![
                    Span::styled("bead ", t.dim),
                    Span::styled(bead.to_string(), t.accent),
                    Span::styled(format!("  {bead_title}"), t.text),
                ]),
            );
            app.snapshot
                .rigs
                .iter()
                .map(|r| Line::from(Span::styled(r.clone(), t.text)))
                .collect()
        }
        SlingStep::Runtime => {
            put(
                buf,
                inner,
                0,
                Line::from(vec![
                    Span::styled("bead ", t.dim),
                    Span::styled(bead.to_string(), t.accent),
                    Span::styled(" → rig ", t.dim),
                    Span::styled(s.rig.clone().unwrap_or_default(), t.text),
                ]),
            );
            app.sling_runtimes()
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    let missing = app.snapshot.runtimes_missing.contains(&r);
                    let mut v = vec![Span::styled(r, if missing { t.dim } else { t.text })];
                    if i == 0 {
                        v.push(Span::styled(" (default)", t.dim));
                    }
                    if missing {
                        v.push(Span::styled(" (not installed)", t.dim));
                    }
                    Line::from(v)
                })
                .collect()
        }
    };
    let list = Rect::new(
        inner.x,
        inner.y + 2.min(inner.height),
        inner.width,
        inner.height.saturating_sub(2),
    );
    list_rows(buf, list, rows, Some(s.selected), t);
}

fn priority_style(p: i64, t: &Theme) -> Style {
    match p {
        0 => t.dead,
        1 => t.waiting,
        _ => t.dim,
    }
}

/// Draws `rows` into `area` with the `selected` one highlighted and kept in view.
/// (`None`: no row is selected.)
fn list_rows(
    buf: &mut Buffer,
    area: Rect,
    rows: Vec<Line<'_>>,
    selected: Option<usize>,
    t: &Theme,
) {
    if area.is_empty() || rows.is_empty() {
        return;
    }
    let selected = selected.map(|s| s.min(rows.len() - 1));
    let h = usize::from(area.height);
    let offset = agents_offset(selected.unwrap_or(0), h);
    for (i, line) in rows.into_iter().enumerate().skip(offset).take(h) {
        let y = (i - offset) as u16;
        let here = selected == Some(i);
        let mut spans = vec![Span::styled(if here { "▸ " } else { "  " }, t.accent)];
        spans.extend(line.spans);
        put(buf, area, y, Line::from(spans));
        if here {
            buf.set_style(Rect::new(area.x, area.y + y, area.width, 1), t.selected);
        }
    }
}

// ---------------------------------------------------------------------------------------------

fn nudge(buf: &mut Buffer, area: Rect, t: &Theme, agent: &str, input: &str) {
    let r = centered(area, 64.min(area.width.saturating_sub(2)), 5);
    let inner = popup(
        buf,
        r,
        title(format!("Nudge {agent}"), t),
        Some("enter send · esc cancel"),
        t,
    );
    let w = usize::from(inner.width);
    put(
        buf,
        inner,
        0,
        Line::from(Span::styled(
            format!("Typed into {agent}'s prompt, then enter:"),
            t.dim,
        )),
    );
    put(
        buf,
        inner,
        2.min(inner.height.saturating_sub(1)),
        input_line("› ", input, w, t),
    );
}

// ---------------------------------------------------------------------------------------------

/// The usage text of the command being typed (its first word), if known.
pub fn usage(input: &str) -> Option<&'static str> {
    let first = input.split_whitespace().next()?;
    let exact = COMMANDS.iter().find(|(c, _)| *c == first);
    let word_done = input.contains(' ');
    match exact {
        Some((_, u)) => Some(u),
        None if !word_done => {
            let mut m = COMMANDS.iter().filter(|(c, _)| c.starts_with(first));
            match (m.next(), m.next()) {
                (Some((_, u)), None) => Some(u),
                _ => None,
            }
        }
        None => None,
    }
}

fn command(buf: &mut Buffer, area: Rect, ctx: &Ctx<'_>, input: &str, selected: Option<usize>) {
    let (app, t) = (ctx.app, ctx.theme);
    let line_y = area.bottom() - 1;
    let line = Rect::new(area.x, line_y, area.width, 1);
    Clear.render(line, buf);
    buf.set_style(line, t.status);
    let w = usize::from(area.width);
    let u = usage(input);
    let usage_w = u.map_or(0, |u| width(u) + 2);
    let (input_w, show_usage) = if usage_w > 0 && w >= usage_w + 20 {
        (w - usage_w, true)
    } else {
        (w, false)
    };
    buf.set_line(
        area.x,
        line_y,
        &input_line(":", input, input_w, t),
        input_w as u16,
    );
    if let (true, Some(u)) = (show_usage, u) {
        let x = area.x + (w - usage_w) as u16;
        buf.set_line(
            x,
            line_y,
            &Line::from(Span::styled(u, t.dim)),
            usage_w as u16,
        );
    }

    // The completions, in a box above the line; the one tab chose is highlighted.
    let completions = app.completions(input);
    if completions.is_empty() || area.height < 4 {
        return;
    }
    let first_word = !input.contains(' ');
    let name_w = completions.iter().map(|c| width(c)).max().unwrap_or(0);
    let rows: Vec<Line> = completions
        .iter()
        .map(|c| {
            let mut v = vec![Span::styled(pad(c, name_w), t.text)];
            if first_word {
                if let Some(u) = COMMANDS.iter().find(|(n, _)| n == c).map(|(_, u)| u) {
                    // The usage without the command's own name.
                    let rest = u.strip_prefix(c.as_str()).unwrap_or(u);
                    let rest = rest.trim_start_matches([':', ' ']);
                    v.push(Span::styled(format!("  {rest}"), t.dim));
                }
            }
            Line::from(v)
        })
        .collect();
    let content_w = rows.iter().map(|l| l.width()).max().unwrap_or(0) + 2;
    let bw = (content_w.min(500) as u16 + 2).max(12).min(area.width);
    let bh = (rows.len().min(100) as u16 + 2)
        .min(14)
        .min(area.height.saturating_sub(1));
    let r = Rect::new(area.x, line_y.saturating_sub(bh), bw, bh);
    let inner = popup(buf, r, Line::default(), Some("tab"), t);
    list_rows(buf, inner, rows, selected, t);
}

// ---------------------------------------------------------------------------------------------

/// The keys of a panel, for the help: (keys, what they do).
pub fn panel_keys(focus: Focus) -> &'static [(&'static str, &'static str)] {
    match focus {
        Focus::Agents => &[
            ("j k ↑ ↓", "select an agent"),
            ("g G", "first / last agent"),
            ("/", "filter by name, rig, role or bead"),
            ("esc", "clear the filter"),
            ("click", "select the agent"),
        ],
        Focus::Convoys => &[("j k ↑ ↓", "scroll"), ("g G", "top / bottom")],
        Focus::MergeQueue => &[("j k ↑ ↓", "scroll"), ("g G", "top / bottom")],
        Focus::Witness => &[("", "counts agents by state; nothing to select")],
        Focus::Feed => &[
            ("k ↑", "older events"),
            ("j ↓", "newer events"),
            ("g G", "oldest / newest"),
        ],
    }
}

/// The keys that work everywhere (the escape key's label is filled in).
fn global_keys(escape: &str) -> Vec<(String, &'static str)> {
    vec![
        ("tab  shift-tab".into(), "next / previous panel"),
        (
            "enter".into(),
            "drill down: the agent's terminal, full screen",
        ),
        (escape.to_string(), "back from the drill-down"),
        ("shift-PgUp PgDn".into(), "scroll back in the drill-down"),
        ("shift-Home End".into(), "its first line / live again"),
        ("s".into(), "sling ready work to a rig"),
        ("n".into(), "nudge the selected agent"),
        ("d".into(), "the selected agent's diff"),
        ("F".into(), "freeze every agent (asks); :thaw resumes"),
        (":".into(), "command line (tab completes)"),
        ("?".into(), "this help"),
        ("q  ctrl-c".into(), "detach: close; the agents keep running"),
        (":stop".into(), "stop the engine and its agents (asks)"),
        ("mouse".into(), "click focuses, wheel scrolls"),
    ]
}

fn help(buf: &mut Buffer, area: Rect, ctx: &Ctx<'_>, focus: Focus) {
    let t = ctx.theme;
    let esc = ctx.app.escape.label();
    let own = panel_keys(focus);
    let global = global_keys(&esc);
    let key_w = own
        .iter()
        .map(|(k, _)| width(k))
        .chain(global.iter().map(|(k, _)| width(k)))
        .max()
        .unwrap_or(8)
        + 2;
    let mut lines: Vec<Line> = vec![Line::from(Span::styled(
        format!("{} panel", focus.title()),
        t.accent,
    ))];
    for (k, what) in own {
        lines.push(Line::from(vec![
            Span::styled(format!("  {}", pad(k, key_w)), t.key),
            Span::styled(*what, t.text),
        ]));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled("Everywhere", t.accent)));
    for (k, what) in &global {
        lines.push(Line::from(vec![
            Span::styled(format!("  {}", pad(k, key_w)), t.key),
            Span::styled(*what, t.text),
        ]));
    }
    let content_w = lines.iter().map(|l| l.width()).max().unwrap_or(40).min(500) as u16;
    let r = centered(
        area,
        (content_w + 4).min(area.width),
        (lines.len() as u16 + 2).min(area.height),
    );
    let inner = popup(buf, r, title("Help", t), Some("esc close"), t);
    let inner = Rect::new(
        inner.x + 1.min(inner.width),
        inner.y,
        inner.width.saturating_sub(1),
        inner.height,
    );
    for (y, l) in lines
        .into_iter()
        .enumerate()
        .take(usize::from(inner.height))
    {
        put(buf, inner, y as u16, l);
    }
}

// ---------------------------------------------------------------------------------------------

fn wrapped_height(text: &str, w: usize) -> u16 {
    if w == 0 {
        return 1;
    }
    text.lines()
        .map(|l| width(l).max(1).div_ceil(w))
        .sum::<usize>()
        .clamp(1, 1000) as u16
}

fn agents_stop(running: usize) -> String {
    match running {
        0 => "No agent is running".to_string(),
        1 => "1 running agent stops".to_string(),
        n => format!("{n} running agents stop"),
    }
}

fn agents_running(running: usize) -> String {
    match running {
        1 => "1 agent is running".to_string(),
        n => format!("{n} agents are running"),
    }
}

/// A question with its answers' keys on the last line.
fn confirm(
    buf: &mut Buffer,
    area: Rect,
    t: &Theme,
    heading: &str,
    text: &str,
    keys: &[(&str, &str)],
) {
    let w = (width(text).min(200) as u16 + 4).min(60).min(area.width);
    let inner_w = usize::from(w.saturating_sub(4));
    let h = wrapped_height(text, inner_w) + 4;
    let r = centered(area, w, h);
    let inner = popup(buf, r, title(heading, t), None, t);
    let inner = Rect::new(
        inner.x + 1.min(inner.width),
        inner.y,
        inner.width.saturating_sub(2),
        inner.height,
    );
    let body = Rect::new(
        inner.x,
        inner.y,
        inner.width,
        inner.height.saturating_sub(1),
    );
    Paragraph::new(text.to_string())
        .style(t.text)
        .wrap(Wrap { trim: true })
        .render(body, buf);
    if inner.height >= 1 {
        let mut spans = Vec::new();
        for (k, what) in keys {
            spans.push(Span::styled(k.to_string(), t.key));
            spans.push(Span::styled(format!(" {what}   "), t.text));
        }
        put(buf, inner, inner.height - 1, Line::from(spans));
    }
}

// ---------------------------------------------------------------------------------------------

/// The style of one line of a unified diff.
pub fn diff_style(line: &str, t: &Theme) -> Style {
    if line.starts_with("+++")
        || line.starts_with("---")
        || line.starts_with("diff ")
        || line.starts_with("index ")
    {
        t.diff_header
    } else if line.starts_with("@@") {
        t.diff_hunk
    } else if line.starts_with('+') {
        t.diff_added
    } else if line.starts_with('-') {
        t.diff_removed
    } else {
        t.text
    }
}

fn diff(buf: &mut Buffer, area: Rect, t: &Theme, agent: &str, text: &str, scroll: usize) {
    let r = if area.width > 8 && area.height > 4 {
        Rect::new(area.x + 2, area.y + 1, area.width - 4, area.height - 2)
    } else {
        area
    };
    let total = text.lines().count();
    let inner_h = usize::from(r.height.saturating_sub(2));
    let first = scroll.min(total.saturating_sub(1));
    let last = (first + inner_h).min(total);
    let hint = if total == 0 {
        "esc close".to_string()
    } else {
        format!("j/k scroll · esc close · {}-{last}/{total}", first + 1)
    };
    let inner = popup(buf, r, title(format!("diff {agent}"), t), Some(&hint), t);
    if total == 0 {
        super::panels::empty_state(buf, inner, "No changes", t);
        return;
    }
    let w = usize::from(inner.width);
    for (y, l) in text.lines().skip(first).take(inner_h).enumerate() {
        let l = l.replace('\t', "    ");
        put(
            buf,
            inner,
            y as u16,
            Line::from(Span::styled(fit(&l, w), diff_style(&l, t))),
        );
    }
}

// ---------------------------------------------------------------------------------------------

fn message(buf: &mut Buffer, area: Rect, t: &Theme, head: &str, text: &str) {
    let longest = text
        .lines()
        .map(width)
        .max()
        .unwrap_or(0)
        .max(width(head) + 4);
    let w = (longest.min(200) as u16 + 4).clamp(30, 70).min(area.width);
    let inner_w = usize::from(w.saturating_sub(4));
    let h = wrapped_height(text, inner_w) + 2;
    let r = centered(area, w, h);
    let inner = popup(buf, r, title(head, t), Some("enter to close"), t);
    let inner = Rect::new(
        inner.x + 1.min(inner.width),
        inner.y,
        inner.width.saturating_sub(2),
        inner.height,
    );
    Paragraph::new(text)
        .style(t.text)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}
