//! The cockpit's panels: agents, terminal header, convoys, merge queue, Witness, feed, and the
//! status bar. Each is a function drawing into a buffer area from the [`Ctx`]; none keeps
//! state, so the view is a pure function of the app.

use super::app::{App, Focus, Mode};
use super::layout::agents_offset;
use super::text::{fit, fit_spans, pad, pad_left, width};
use super::theme::Theme;
use crate::engine::AgentView;
use chrono::{DateTime, FixedOffset};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::symbols::merge::MergeStrategy;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

/// What every panel draws from.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub app: &'a App,
    pub theme: &'a Theme,
    /// The wall clock, in the zone times are shown in.
    pub now: DateTime<FixedOffset>,
}

// ---------------------------------------------------------------------------------------------
// Glyphs and small text helpers.

/// The health glyph of an agent state.
pub fn glyph(state: &str) -> &'static str {
    match state {
        "working" => "▶",
        "idle" => "·",
        "waiting" => "◐",
        "stalled" => "⏸",
        "dead" => "✕",
        "zombie" => "☠",
        "stopped" => "■",
        "frozen" => "❄",
        _ => "?",
    }
}

/// The state as the agents list shows it (at most 5 columns).
pub fn short_state(state: &str) -> &str {
    match state {
        "working" => "work",
        "waiting" => "wait",
        "stalled" => "stall",
        "zombie" => "zomb",
        "stopped" => "stop",
        "frozen" => "frozn",
        other => other,
    }
}

/// The states in the order the Witness counts them.
pub const STATES: [&str; 8] = [
    "working", "idle", "waiting", "stalled", "dead", "zombie", "stopped", "frozen",
];

/// Seconds from `ts` (RFC 3339) to `now`, if `ts` parses.
pub fn seconds_since(ts: &str, now: DateTime<FixedOffset>) -> Option<i64> {
    let t = DateTime::parse_from_rfc3339(ts).ok()?;
    Some((now - t).num_seconds().max(0))
}

/// A compact age: `12s`, `5m`, `3h`, `2d` (at most 3 columns up to 99 days).
pub fn compact_age(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", (s / 86_400).min(99)),
    }
}

/// An elapsed time as a clock: `0:12`, `14:03`, `2h05`.
pub fn clock(secs: i64) -> String {
    if secs < 3600 {
        format!("{}:{:02}", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}", (secs / 3600).min(999), (secs % 3600) / 60)
    }
}

/// `HH:MM` of `ts` in `now`'s zone.
pub fn hhmm(ts: &str, now: DateTime<FixedOffset>) -> String {
    match DateTime::parse_from_rfc3339(ts) {
        Ok(t) => t.with_timezone(&now.timezone()).format("%H:%M").to_string(),
        Err(_) => "--:--".into(),
    }
}

/// How long the agent has been as it is: from its last activity, else its last update.
fn agent_age(a: &AgentView, now: DateTime<FixedOffset>) -> String {
    a.agent
        .last_activity
        .as_deref()
        .and_then(|t| seconds_since(t, now))
        .or_else(|| seconds_since(&a.agent.updated_at, now))
        .map(compact_age)
        .unwrap_or_default()
}

/// A bordered panel whose borders merge with its neighbours' (panels overlap by one cell).
pub fn panel<'a>(title: Vec<Span<'a>>, focused: bool, t: &Theme) -> Block<'a> {
    let mut spans = vec![Span::raw(" ")];
    spans.extend(title);
    spans.push(Span::raw(" "));
    Block::bordered()
        .merge_borders(MergeStrategy::Exact)
        .border_style(if focused { t.border_focused } else { t.border })
        .title(Line::from(spans))
}

fn title_spans<'a>(
    name: &'a str,
    extra: Option<String>,
    focused: bool,
    t: &Theme,
) -> Vec<Span<'a>> {
    let style = if focused {
        t.title.patch(t.border_focused)
    } else {
        t.title
    };
    let mut v = vec![Span::styled(name, style)];
    if let Some(e) = extra {
        v.push(Span::styled(format!(" {e}"), t.dim));
    }
    v
}

/// Writes `line` at row `y` of `area` (cut to its width).
fn put(buf: &mut Buffer, area: Rect, y: u16, line: &Line<'_>) {
    if y < area.height && area.width > 0 {
        buf.set_line(area.x, area.y + y, line, area.width);
    }
}

/// A dim message in the middle of `area`, wrapped.
pub fn empty_state(buf: &mut Buffer, area: Rect, text: &str, t: &Theme) {
    if area.is_empty() {
        return;
    }
    let lines = width(text).div_ceil(usize::from(area.width)).clamp(1, 100) as u16;
    let y = area.y + area.height.saturating_sub(lines) / 2;
    let r = Rect::new(area.x, y, area.width, area.bottom().saturating_sub(y));
    Paragraph::new(text)
        .style(t.dim)
        .centered()
        .wrap(Wrap { trim: true })
        .render(r, buf);
}

// ---------------------------------------------------------------------------------------------
// Agents.

/// The agents list. With `witness_counts` the bottom border carries the Witness's counts
/// (used when the layout has no room for the Witness panel).
pub fn agents(buf: &mut Buffer, area: Rect, ctx: &Ctx<'_>, witness_counts: bool) {
    let (app, t) = (ctx.app, ctx.theme);
    let focused = app.focus == Focus::Agents;
    let visible = app.visible_agents();
    let filtering = matches!(app.mode, Mode::Filter);
    let extra = if !app.filter.is_empty() || filtering {
        Some(format!("/{}", app.filter))
    } else if visible.is_empty() {
        None
    } else {
        Some(visible.len().to_string())
    };
    let block = panel(title_spans("Agents", extra, focused, t), focused, t);
    let mut inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    if visible.is_empty() {
        let msg = if app.snapshot.agents.is_empty() {
            "No agents yet — press s to sling work".to_string()
        } else {
            format!("No agents match /{}", app.filter)
        };
        empty_state(buf, inner, &msg, t);
        return;
    }
    if witness_counts && inner.height >= 3 {
        // The Witness's counts on the panel's last row.
        inner.height -= 1;
        let y = inner.bottom();
        let mut spans = Vec::new();
        for (state, n) in counts(app) {
            if n > 0 {
                spans.push(Span::styled(
                    format!("{}{n} ", glyph(state)),
                    t.agent_state(state),
                ));
            }
        }
        let row = Rect::new(inner.x, y, inner.width, 1);
        buf.set_line(
            row.x,
            y,
            &Line::from(fit_spans(spans, usize::from(row.width))),
            row.width,
        );
        if app.focus == Focus::Witness {
            buf.set_style(row, t.selected);
        }
    }
    let w = usize::from(inner.width);
    let rows = usize::from(inner.height);
    let selected = app.selected.min(visible.len() - 1);
    let offset = agents_offset(selected, rows);
    let display_name = |a: &AgentView| {
        if a.agent.role == "mayor" {
            format!("🎩{}", a.agent.name)
        } else {
            a.agent.name.clone()
        }
    };
    // Columns: glyph, name, [rig/role], state, [today's cost], age.
    let cost_w = if w >= 28 { 7 } else { 0 };
    let fixed = 2 + 1 + 5 + 1 + 3 + cost_w;
    let longest = visible
        .iter()
        .map(|a| width(&display_name(a)))
        .max()
        .unwrap_or(4)
        .clamp(4, 16);
    let mut name_w = w.saturating_sub(fixed).clamp(1, longest);
    let rest = w.saturating_sub(fixed + name_w);
    let where_w = if rest >= 5 { (rest - 1).min(16) } else { 0 };
    if where_w == 0 {
        name_w = w.saturating_sub(fixed).max(1);
    }
    for (i, a) in visible.iter().enumerate().skip(offset).take(rows) {
        let y = (i - offset) as u16;
        let state = a.agent.state.as_str();
        let st = t.agent_state(state);
        let mut spans = vec![
            Span::styled(glyph(state), st),
            Span::raw(" "),
            Span::styled(pad(&display_name(a), name_w), t.text),
            Span::raw(" "),
        ];
        if where_w > 0 {
            let place = match (a.agent.rig.as_str(), a.agent.role.as_str()) {
                ("", "mayor") => String::new(),
                ("", role) => role.to_string(),
                (rig, "polecat") => rig.to_string(),
                (rig, role) => format!("{rig}/{role}"),
            };
            spans.push(Span::styled(pad(&place, where_w), t.dim));
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(pad(short_state(state), 5), st));
        spans.push(Span::raw(" "));
        if cost_w > 0 {
            let cost = app
                .snapshot
                .costs
                .agents
                .get(&a.agent.name)
                .map(|s| s.short_label())
                .unwrap_or_default();
            spans.push(Span::styled(pad_left(&cost, cost_w - 1), t.dim));
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(pad_left(&agent_age(a, ctx.now), 3), t.dim));
        let line = Line::from(fit_spans(spans, w));
        put(buf, inner, y, &line);
        if i == selected {
            buf.set_style(Rect::new(inner.x, inner.y + y, inner.width, 1), t.selected);
        }
    }
}

/// How many agents are in each state (every state of [`STATES`], in order).
pub fn counts(app: &App) -> Vec<(&'static str, usize)> {
    STATES
        .iter()
        .map(|s| {
            (
                *s,
                app.snapshot
                    .agents
                    .iter()
                    .filter(|a| a.agent.state == *s)
                    .count(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The terminal's header.

/// The header of the selected agent's terminal:
/// `nux · polecat · rig demo · gt-a3f · "Fix SQL injection" · working 2m`.
pub fn terminal_header<'a>(a: &'a AgentView, ctx: &Ctx<'_>, w: usize) -> Vec<Span<'a>> {
    let t = ctx.theme;
    let sep = || Span::styled(" · ", t.dim);
    // Optional parts, by the order they give way when the line is too long.
    let mut title = None;
    let mut role = None;
    let mut rig = None;
    let mut bead = None;
    if !a.agent.role.is_empty() {
        role = Some(Span::styled(a.agent.role.as_str(), t.dim));
    }
    if !a.agent.rig.is_empty() {
        rig = Some(Span::styled(format!("rig {}", a.agent.rig), t.dim));
    }
    if let Some(b) = &a.agent.hooked_bead {
        bead = Some(Span::styled(b.as_str(), t.accent));
    }
    let state = a.agent.state.as_str();
    let mut tail = vec![Span::styled(
        format!("{} {state}", glyph(state)),
        t.agent_state(state),
    )];
    let age = agent_age(a, ctx.now);
    if !age.is_empty() {
        tail.push(Span::styled(format!(" {age}"), t.dim));
    }
    let name = Span::styled(a.agent.name.as_str(), t.title);
    // Why an agent waits or died says more than its bead's title: it takes the title's place,
    // after the state.
    let why = match state {
        "waiting" | "dead" if !a.agent.state_reason.is_empty() => Some(&a.agent.state_reason),
        _ => None,
    };
    let assemble =
        |parts: [&Option<Span<'a>>; 3], title: &Option<Span<'a>>, reason: &Option<Span<'a>>| {
            let mut v = vec![name.clone()];
            for p in parts.into_iter().chain([title]).flatten() {
                v.push(sep());
                v.push(p.clone());
            }
            v.push(sep());
            v.extend(tail.iter().cloned());
            if let Some(r) = reason {
                v.push(Span::styled(": ", t.dim));
                v.push(r.clone());
            }
            v
        };
    let len = |v: &[Span]| v.iter().map(|s| s.width()).sum::<usize>();
    let without_title = assemble([&role, &rig, &bead], &None, &None);
    let mut reason = None;
    if let Some(why) = why {
        let room =
            w.saturating_sub(name.width() + 3 + tail.iter().map(|s| s.width()).sum::<usize>() + 2);
        if room >= 6 {
            reason = Some(Span::styled(fit(why, room), t.agent_state(state)));
        }
    } else if let Some(bt) = &a.bead_title {
        // The bead's title is cut to what is left, or left out below 6 columns.
        let room = w.saturating_sub(len(&without_title) + 3 + 2);
        if room >= 6 {
            title = Some(Span::styled(format!("\"{}\"", fit(bt, room)), t.text));
        }
    }
    let mut line = assemble([&role, &rig, &bead], &title, &reason);
    for drop in 0..3 {
        if len(&line) <= w {
            break;
        }
        match drop {
            0 => role = None,
            1 => rig = None,
            _ => bead = None,
        }
        line = assemble([&role, &rig, &bead], &None, &reason);
    }
    fit_spans(line, w)
}

/// The terminal panel's block: the header as its title.
pub fn terminal_block<'a>(a: Option<&'a AgentView>, ctx: &Ctx<'_>, w: u16) -> Block<'a> {
    let t = ctx.theme;
    let title = match a {
        Some(a) => terminal_header(a, ctx, usize::from(w).saturating_sub(4)),
        None => vec![Span::styled("Terminal", t.title)],
    };
    panel(title, false, t)
}

/// What the terminal pane says when there is no screen to show.
pub fn no_terminal(buf: &mut Buffer, area: Rect, a: Option<&AgentView>, t: &Theme) {
    let msg = match a {
        None => "No agent selected".to_string(),
        Some(a) if a.agent.state == "dead" || a.agent.state == "zombie" => format!(
            "{} is {}: no session. :restart {} starts a new one",
            a.agent.name, a.agent.state, a.agent.name
        ),
        Some(a) => format!(
            "{} has no running session ({})",
            a.agent.name, a.agent.state
        ),
    };
    empty_state(buf, area, &msg, t);
}

// ---------------------------------------------------------------------------------------------
// Convoys.

/// A progress bar of `w` cells: `███░░`.
pub fn progress_bar(done: usize, total: usize, w: usize, t: &Theme) -> Vec<Span<'static>> {
    let filled = ((done.min(total) * w) + total / 2)
        .checked_div(total)
        .unwrap_or(0);
    vec![
        Span::styled("█".repeat(filled), t.progress_filled),
        Span::styled("░".repeat(w - filled), t.progress_empty),
    ]
}

pub fn convoys(buf: &mut Buffer, area: Rect, ctx: &Ctx<'_>) {
    let (app, t) = (ctx.app, ctx.theme);
    let focused = app.focus == Focus::Convoys;
    let list = &app.snapshot.convoys;
    let extra = (!list.is_empty()).then(|| list.len().to_string());
    let block = panel(title_spans("Convoys", extra, focused, t), focused, t);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    if list.is_empty() {
        empty_state(buf, inner, "No convoys", t);
        return;
    }
    let w = usize::from(inner.width);
    let first = app.convoy_scroll.min(list.len().saturating_sub(1));
    for (y, c) in list
        .iter()
        .skip(first)
        .take(usize::from(inner.height))
        .enumerate()
    {
        let mut count = format!("{}/{}", c.closed, c.total);
        if let Some(spent) = app.snapshot.costs.convoys.get(&c.id) {
            count = format!("{count} {}", spent.label());
        }
        let bar_w = (w / 3).clamp(3, 20);
        let mut name_w = w.saturating_sub(width(&count) + bar_w + 2);
        let show_bar = name_w >= 4;
        if !show_bar {
            name_w = w.saturating_sub(width(&count) + 1);
        }
        let done = c.total > 0 && c.closed >= c.total;
        let mut spans = vec![
            Span::styled(pad(&c.name, name_w), if done { t.dim } else { t.text }),
            Span::raw(" "),
            Span::styled(count, if done { t.progress_filled } else { t.accent }),
        ];
        if show_bar {
            spans.push(Span::raw(" "));
            spans.extend(progress_bar(c.closed, c.total, bar_w, t));
        }
        put(buf, inner, y as u16, &Line::from(fit_spans(spans, w)));
    }
}

// ---------------------------------------------------------------------------------------------
// Merge queue.

pub fn merge_queue(buf: &mut Buffer, area: Rect, ctx: &Ctx<'_>) {
    let (app, t) = (ctx.app, ctx.theme);
    let focused = app.focus == Focus::MergeQueue;
    let list = &app.snapshot.merge_requests;
    let open = list
        .iter()
        .filter(|m| m.state == "queued" || m.state == "testing")
        .count();
    let extra = (open > 0).then(|| format!("{open} open"));
    let block = panel(title_spans("Merge queue", extra, focused, t), focused, t);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    if list.is_empty() {
        empty_state(buf, inner, "Queue empty", t);
        return;
    }
    let w = usize::from(inner.width);
    let first = app.mq_scroll.min(list.len().saturating_sub(1));
    let id_w = list
        .iter()
        .map(|m| width(&m.id.to_string()) + 1)
        .max()
        .unwrap_or(2);
    let who_w = list
        .iter()
        .map(|m| width(&m.submitter))
        .max()
        .unwrap_or(4)
        .clamp(3, 10);
    let branch_w = if w >= 56 { (w - 40).min(24) } else { 0 };
    for (y, m) in list
        .iter()
        .skip(first)
        .take(usize::from(inner.height))
        .enumerate()
    {
        let mut spans = vec![
            Span::styled(pad(&format!("#{}", m.id), id_w), t.dim),
            Span::raw(" "),
            Span::styled(pad(&m.submitter, who_w), t.text),
            Span::raw(" "),
        ];
        if branch_w > 0 {
            spans.push(Span::styled(pad(&m.branch, branch_w), t.dim));
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(pad(&m.state, 8), t.mr_state(&m.state)));
        let tail = match m.state.as_str() {
            "queued" => seconds_since(&m.created_at, ctx.now).map(clock),
            "testing" => seconds_since(&m.updated_at, ctx.now).map(clock),
            "rejected" | "conflict" if !m.reason.is_empty() => Some(m.reason.clone()),
            _ => {
                let age = seconds_since(&m.updated_at, ctx.now).map(|s| compact_age(s) + " ago");
                // A merge names the commit it produced on the target.
                match (m.state.as_str(), m.merge_commit.as_deref(), age) {
                    ("merged", Some(c), age) => Some(match age {
                        Some(age) => format!("{} {age}", short_commit(c)),
                        None => short_commit(c).to_string(),
                    }),
                    (_, _, age) => age,
                }
            }
        };
        if let Some(tail) = tail {
            spans.push(Span::raw(" "));
            let style = if matches!(m.state.as_str(), "rejected" | "conflict") {
                t.mr_state(&m.state)
            } else {
                t.dim
            };
            spans.push(Span::styled(tail, style));
        }
        put(buf, inner, y as u16, &Line::from(fit_spans(spans, w)));
    }
}

/// A commit id as `git log --oneline` shows it (7 characters).
fn short_commit(id: &str) -> &str {
    id.get(..7).unwrap_or(id)
}

// ---------------------------------------------------------------------------------------------
// Witness.

pub fn witness(buf: &mut Buffer, area: Rect, ctx: &Ctx<'_>) {
    let (app, t) = (ctx.app, ctx.theme);
    let focused = app.focus == Focus::Witness;
    // Whether the patrols are alive: the age of the Deacon's heartbeat.
    let patrol = app.snapshot.patrol_heartbeat_ns.map(|ns| {
        let age = (ctx.now.timestamp_nanos_opt().unwrap_or(0) - ns).max(0) / 1_000_000_000;
        if age < 60 {
            format!("♥{age}s")
        } else {
            format!("♥ silent {}m", age / 60)
        }
    });
    let block = panel(title_spans("Witness", patrol, focused, t), focused, t);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    if app.snapshot.agents.is_empty() {
        empty_state(buf, inner, "Nothing to watch", t);
        return;
    }
    // The five states always; zombie and stopped only when there are any.
    let shown: Vec<(&str, usize)> = counts(app)
        .into_iter()
        .enumerate()
        .filter(|(i, (_, n))| *i < 5 || *n > 0)
        .map(|(_, c)| c)
        .collect();
    let restarts: i64 = app.snapshot.agents.iter().map(|a| a.agent.restarts).sum();
    let w = usize::from(inner.width);
    if shown.len() <= usize::from(inner.height) {
        for (y, (state, n)) in shown.iter().enumerate() {
            let style = if *n > 0 { t.agent_state(state) } else { t.dim };
            let line = Line::from(vec![
                Span::styled(format!("{} ", glyph(state)), style),
                Span::styled(format!("{n:>2} "), style),
                Span::styled(*state, if *n > 0 { t.text } else { t.dim }),
            ]);
            put(buf, inner, y as u16, &Line::from(fit_spans(line.spans, w)));
        }
        if shown.len() < usize::from(inner.height) {
            let line = Line::from(Span::styled(
                format!(
                    "  {restarts:>2} restart{}",
                    if restarts == 1 { "" } else { "s" }
                ),
                t.dim,
            ));
            put(buf, inner, shown.len() as u16, &line);
        }
    } else {
        // Too short for one state a line: flow them.
        let spans: Vec<Span> = shown
            .iter()
            .map(|(state, n)| {
                let style = if *n > 0 { t.agent_state(state) } else { t.dim };
                Span::styled(format!("{}{n} ", glyph(state)), style)
            })
            .collect();
        Paragraph::new(Line::from(spans))
            .wrap(Wrap { trim: true })
            .render(inner, buf);
    }
}

// ---------------------------------------------------------------------------------------------
// Feed.

pub fn feed(buf: &mut Buffer, area: Rect, ctx: &Ctx<'_>) {
    let (app, t) = (ctx.app, ctx.theme);
    let focused = app.focus == Focus::Feed;
    let events = &app.snapshot.feed;
    let back = app.feed_scroll.min(events.len().saturating_sub(1));
    let extra = (back > 0).then(|| format!("↑{back}"));
    let block = panel(title_spans("Feed", extra, focused, t), focused, t);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    if events.is_empty() {
        empty_state(buf, inner, "No events yet", t);
        return;
    }
    let w = usize::from(inner.width);
    let h = usize::from(inner.height);
    let end = events.len() - back;
    let start = end.saturating_sub(h);
    // Newest at the bottom: with fewer events than rows, they sit at the bottom.
    let top = h - (end - start);
    for (i, e) in events[start..end].iter().enumerate() {
        let spans = vec![
            Span::styled(hhmm(&e.created_at, ctx.now), t.dim),
            Span::raw(" "),
            Span::styled(e.summary(), t.text),
        ];
        put(
            buf,
            inner,
            (top + i) as u16,
            &Line::from(fit_spans(spans, w)),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Status bar.

/// The key hints of the normal mode: (key, label, short label).
const HINTS: &[(&str, &str, &str)] = &[
    ("s", "sling", "sling"),
    ("n", "nudge", "nudge"),
    ("enter", "drill-down", "drill"),
    (":", "command", "cmd"),
    ("/", "filter", "filter"),
    ("?", "help", "help"),
    ("q", "detach", "detach"),
];

fn hints(t: &Theme, short: bool, gap: &'static str) -> Vec<Span<'static>> {
    let mut v = Vec::new();
    for (i, (k, long, brief)) in HINTS.iter().enumerate() {
        if i > 0 {
            v.push(Span::raw(gap));
        }
        let k = if short && *k == "enter" { "⏎" } else { k };
        v.push(Span::styled(k, t.key));
        v.push(Span::raw(" "));
        v.push(Span::raw(if short { *brief } else { *long }));
    }
    v
}

/// The bottom line: key hints (or the notice, the filter being typed, the drill-down's way
/// back) on the left; attention and the town on the right.
pub fn status_bar(buf: &mut Buffer, area: Rect, ctx: &Ctx<'_>) {
    let (app, t) = (ctx.app, ctx.theme);
    if area.is_empty() {
        return;
    }
    let area = Rect::new(area.x, area.y, area.width, 1);
    buf.set_style(area, t.status);
    let w = usize::from(area.width);

    // The right side, from the fullest form to the most compact.
    let need = app.attention();
    let n = app.snapshot.agents.len();
    let costs = &app.snapshot.costs;
    let spent = match costs.daily_usd {
        Some(limit) => format!(
            " · {}/{} today",
            costs.day.label(),
            crate::town::costs::money(limit)
        ),
        None if costs.day.tokens.total() > 0 => format!(" · {} today", costs.day.label()),
        None => String::new(),
    };
    let agents_word = format!("{n} agent{}{spent}", if n == 1 { "" } else { "s" });
    let town = &app.snapshot.town;
    let (full, brief) = if town.is_empty() {
        (format!("{agents_word} "), format!("{agents_word} "))
    } else {
        (
            format!("town {town} · {agents_word} "),
            format!("{town} · {agents_word} "),
        )
    };
    let long_warn = format!(" ⚠ {need} need you ");
    let short_warn = format!(" ⚠ {need} ");
    let rights: Vec<Vec<Span>> = [
        (&long_warn, full.as_str()),
        (&long_warn, brief.as_str()),
        (&short_warn, brief.as_str()),
        (&short_warn, ""),
    ]
    .into_iter()
    .map(|(warn, info)| {
        let mut v = Vec::new();
        if costs.over_daily {
            v.push(Span::styled(" budget spent ", t.attention));
            v.push(Span::raw(" "));
        }
        if need > 0 {
            v.push(Span::styled(warn.clone(), t.attention));
            v.push(Span::raw(" "));
        }
        if !info.is_empty() {
            v.push(Span::raw(info.to_string()));
        }
        v
    })
    .collect();
    let spans_w = |v: &[Span]| -> usize { v.iter().map(|s| s.width()).sum() };

    // The left side: one form per mode; key hints come long or short.
    let mut lefts: Vec<Vec<Span>> = Vec::new();
    let lead = || vec![Span::raw(" ")];
    match &app.mode {
        Mode::Filter => {
            let mut l = lead();
            l.push(Span::styled(format!("/{}▏", app.filter), t.input));
            l.push(Span::styled("  enter keep · esc clear", t.dim));
            lefts.push(l);
        }
        Mode::DrillDown => {
            let mut l = lead();
            if let Some(a) = app.selected_agent() {
                let st = a.agent.state.as_str();
                l.push(Span::styled(a.agent.name.clone(), t.title));
                l.push(Span::raw(" "));
                l.push(Span::styled(
                    format!("{} {st}", glyph(st)),
                    t.agent_state(st),
                ));
                l.push(Span::raw("  "));
            }
            l.push(Span::styled(app.escape.label(), t.key));
            l.push(Span::raw(if app.only.is_some() {
                " detach · "
            } else {
                " back · "
            }));
            if app.term_scroll > 0 {
                // How far is on the terminal's own label (the engine's clamped offset).
                l.push(Span::styled("scrolled back · ", t.notice));
                l.push(Span::styled("shift-PgDn", t.key));
                l.push(Span::raw(" forward · "));
                l.push(Span::styled("shift-End", t.key));
                l.push(Span::raw(" live"));
            } else {
                l.push(Span::styled("shift-PgUp", t.key));
                l.push(Span::raw(" scroll"));
            }
            lefts.push(l);
        }
        _ if app.engine_gone.is_some() => {
            let why = app.engine_gone.clone().unwrap_or_default();
            let mut l = lead();
            l.push(Span::styled(format!("⚠ {why} · reconnecting"), t.attention));
            l.push(Span::raw("  "));
            l.push(Span::styled("r", t.key));
            l.push(Span::raw(" start it  "));
            l.push(Span::styled("q", t.key));
            l.push(Span::raw(" leave"));
            lefts.push(l);
            let mut l = lead();
            l.push(Span::styled("⚠ engine gone", t.attention));
            l.push(Span::raw(" "));
            l.push(Span::styled("r", t.key));
            l.push(Span::raw(" start"));
            lefts.push(l);
        }
        _ => match &app.notice {
            Some(n) => {
                let mut l = lead();
                l.push(Span::styled(n.clone(), t.notice));
                lefts.push(l);
            }
            None => {
                let mut l = lead();
                l.extend(hints(t, false, "  "));
                lefts.push(l);
                let mut l = lead();
                l.extend(hints(t, true, " "));
                lefts.push(l);
            }
        },
    }
    // The first pair that fits (the right side's fuller forms first); else the most compact of both, the left cut.
    let mut choice = None;
    'find: for r in &rights {
        for l in &lefts {
            if spans_w(l) + 1 + spans_w(r) <= w {
                choice = Some((l.clone(), r.clone()));
                break 'find;
            }
        }
    }
    let (left, right) = choice.unwrap_or_else(|| {
        let l = lefts.last().cloned().unwrap_or_default();
        let r = rights.last().cloned().unwrap_or_default();
        if spans_w(&r) + 8 <= w {
            (l, r)
        } else {
            (l, Vec::new())
        }
    });
    let right_w = spans_w(&right);
    let left_w = w - right_w;
    let left = fit_spans(left, left_w);
    buf.set_line(area.x, area.y, &Line::from(left), left_w as u16);
    if right_w > 0 {
        let x = area.x + left_w as u16;
        buf.set_line(x, area.y, &Line::from(right), right_w as u16);
    }
}

#[cfg(test)]
mod tests {
    use super::super::view::fixtures;
    use super::*;
    use crate::ui::app::App;

    fn render(w: u16, h: u16, app: &App, f: impl Fn(&mut Buffer, Rect, &Ctx<'_>)) -> String {
        let theme = Theme::default_theme();
        let ctx = Ctx {
            app,
            theme: &theme,
            now: fixtures::now(),
        };
        let area = Rect::new(0, 0, w, h);
        let mut buf = Buffer::empty(area);
        f(&mut buf, area, &ctx);
        fixtures::text(&buf)
    }

    #[test]
    fn text_helpers() {
        assert_eq!(fit("hello world", 5), "hell…");
        assert_eq!(fit("hello", 5), "hello");
        assert_eq!(fit("a\nb", 5), "a b");
        assert_eq!(fit("世界世界", 5), "世界…");
        assert_eq!(fit("abc", 0), "");
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad_left("ab", 4), "  ab");
        assert_eq!(compact_age(5), "5s");
        assert_eq!(compact_age(125), "2m");
        assert_eq!(compact_age(7300), "2h");
        assert_eq!(compact_age(86_400 * 500), "99d");
        assert_eq!(clock(12), "0:12");
        assert_eq!(clock(3725), "1h02");
        assert_eq!(agents_offset(0, 5), 0);
        assert_eq!(agents_offset(7, 5), 3);
        assert_eq!(agents_offset(7, 0), 0);
        let t = Theme::default_theme();
        let bar: String = progress_bar(3, 5, 5, &t)
            .iter()
            .map(|s| s.content.to_string())
            .collect();
        assert_eq!(bar, "███░░");
        let bar: String = progress_bar(0, 0, 4, &t)
            .iter()
            .map(|s| s.content.to_string())
            .collect();
        assert_eq!(bar, "░░░░");
    }

    #[test]
    fn each_panel_populated() {
        let app = fixtures::populated();
        for (w, h) in [(24, 10), (34, 12), (60, 8)] {
            let s = render(w, h, &app, |b, a, c| agents(b, a, c, false));
            insta::assert_snapshot!(format!("panel_agents_{w}x{h}"), s);
        }
        let s = render(24, 8, &app, |b, a, c| agents(b, a, c, true));
        insta::assert_snapshot!("panel_agents_with_witness_counts", s);
        for w in [24, 40] {
            let s = render(w, 5, &app, convoys);
            insta::assert_snapshot!(format!("panel_convoys_{w}"), s);
        }
        for w in [30, 70] {
            let s = render(w, 6, &app, merge_queue);
            insta::assert_snapshot!(format!("panel_merge_queue_{w}"), s);
        }
        for h in [9, 5] {
            let s = render(18, h, &app, witness);
            insta::assert_snapshot!(format!("panel_witness_h{h}"), s);
        }
        let s = render(50, 7, &app, feed);
        insta::assert_snapshot!("panel_feed", s);
        let mut scrolled = app.clone();
        scrolled.feed_scroll = 3;
        let s = render(50, 7, &scrolled, feed);
        insta::assert_snapshot!("panel_feed_scrolled_back_3", s);
    }

    #[test]
    fn each_panel_empty() {
        let app = fixtures::empty();
        let s = render(24, 8, &app, |b, a, c| agents(b, a, c, false));
        insta::assert_snapshot!("panel_agents_empty", s);
        let s = render(24, 5, &app, convoys);
        insta::assert_snapshot!("panel_convoys_empty", s);
        let s = render(30, 5, &app, merge_queue);
        insta::assert_snapshot!("panel_merge_queue_empty", s);
        let s = render(18, 5, &app, witness);
        insta::assert_snapshot!("panel_witness_empty", s);
        let s = render(30, 5, &app, feed);
        insta::assert_snapshot!("panel_feed_empty", s);
        let mut filtered = fixtures::populated();
        filtered.filter = "zzz".into();
        let s = render(24, 6, &filtered, |b, a, c| agents(b, a, c, false));
        insta::assert_snapshot!("panel_agents_no_match", s);
    }

    #[test]
    fn selection_scrolls_and_highlights() {
        let mut app = fixtures::populated();
        app.selected = 5;
        let theme = Theme::default_theme();
        let ctx = Ctx {
            app: &app,
            theme: &theme,
            now: fixtures::now(),
        };
        let area = Rect::new(0, 0, 24, 5);
        let mut buf = Buffer::empty(area);
        agents(&mut buf, area, &ctx, false);
        let text = fixtures::text(&buf);
        // Three rows: the sixth agent is the last one shown, highlighted.
        let rows: Vec<&str> = text.lines().collect();
        assert!(rows[3].contains("rictus"), "{text}");
        assert_eq!(buf[(5, 3)].bg, theme.selected.bg.unwrap_or_default());
        assert_ne!(buf[(5, 2)].bg, theme.selected.bg.unwrap_or_default());
    }

    #[test]
    fn status_bar_modes() {
        let mut app = fixtures::populated();
        let mut out = String::new();
        for w in [160u16, 100, 80, 50, 20] {
            out.push_str(&render(w, 1, &app, status_bar));
        }
        app.notice = Some("slinging gt-a3f to demo".into());
        out.push_str(&render(80, 1, &app, status_bar));
        app.notice = None;
        app.mode = Mode::Filter;
        app.filter = "nu".into();
        out.push_str(&render(80, 1, &app, status_bar));
        app.mode = Mode::DrillDown;
        app.filter.clear();
        out.push_str(&render(80, 1, &app, status_bar));
        app.term_scroll = 30;
        out.push_str(&render(80, 1, &app, status_bar));
        let calm = fixtures::empty();
        out.push_str(&render(80, 1, &calm, status_bar));
        let mut gone = fixtures::populated();
        gone.engine_gone = Some("the engine (pid 4242) is gone".into());
        out.push_str(&render(120, 1, &gone, status_bar));
        out.push_str(&render(60, 1, &gone, status_bar));
        insta::assert_snapshot!("status_bar_modes", out);
    }

    #[test]
    fn header_gives_way_to_width() {
        let app = fixtures::populated();
        let theme = Theme::default_theme();
        let ctx = Ctx {
            app: &app,
            theme: &theme,
            now: fixtures::now(),
        };
        let a = &app.snapshot.agents[1];
        let mut out = String::new();
        for w in [120, 70, 40, 12] {
            let s: String = terminal_header(a, &ctx, w)
                .iter()
                .map(|s| s.content.to_string())
                .collect();
            assert!(width(&s) <= w, "{s}");
            out.push_str(&s);
            out.push('\n');
        }
        insta::assert_snapshot!("terminal_header_widths", out);
    }

    #[test]
    fn a_waiting_agent_s_header_says_why() {
        let app = fixtures::populated();
        let theme = Theme::default_theme();
        let ctx = Ctx {
            app: &app,
            theme: &theme,
            now: fixtures::now(),
        };
        let mut a = app.snapshot.agents[1].clone();
        a.agent.state = "waiting".into();
        a.agent.state_reason = "needs sign-in: run `codex login` once".into();
        let text = |a: &AgentView, w: usize| -> String {
            terminal_header(a, &ctx, w)
                .iter()
                .map(|s| s.content.to_string())
                .collect()
        };
        let wide = text(&a, 120);
        assert!(wide.contains("waiting"), "{wide}");
        assert!(
            wide.contains(": needs sign-in: run `codex login` once"),
            "{wide}"
        );
        let narrow = text(&a, 50);
        assert!(width(&narrow) <= 50, "{narrow}");
        assert!(
            narrow.contains(": needs sign"),
            "the reason stays, cut: {narrow}"
        );
        // A working agent shows its bead's title there instead.
        a.agent.state = "working".into();
        assert!(!text(&a, 120).contains("needs sign-in"));
    }
}
