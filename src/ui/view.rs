//! Draws one frame of the cockpit from the app's state:
//!
//! ```text
//! ┌ Agents ──────┬ nux · polecat · rig demo · gt-a3f · "Fix SQL injection" · ▶ working 2m ┐
//! │ ▶ nux  work  │ (the selected agent's live terminal)                                  │
//! ├ Convoys ─────┼ Merge queue ────────┬ Witness ───┬ Feed ──────────────────────────────┤
//! │ Auth 3/5 ███░│ #12 nux testing 0:12│ ▶ 2 working│ 12:04 slit claimed gt-b71          │
//! └──────────────┴─────────────────────┴────────────┴────────────────────────────────────┘
//!  s sling  n nudge  enter drill-down  : command  / filter  ? help     town demo · 7 agents
//! ```
//!
//! Panels share their borders (each overlaps its neighbours by one cell). Narrower than 100
//! columns the Witness panel goes and its counts move to the agents panel's bottom border. In
//! the drill-down the terminal takes everything but the status line. The layout is a pure
//! function of the screen size ([`plan`]), so [`terminal_size`] tells the event loop the PTY
//! size before anything is drawn.

use super::app::{App, Mode};
use super::dialogs;
use super::layout::Areas;
use super::panels::{self, Ctx};
use super::text;
use super::theme::Theme;
use super::ScreenSource;
use chrono::{DateTime, FixedOffset};
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::Frame;

/// Where everything goes for one screen size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    pub agents: Option<Rect>,
    /// The terminal panel with its border (none in the drill-down).
    pub terminal_block: Option<Rect>,
    /// Where the agent's screen is drawn: its size is the PTY size.
    pub terminal: Option<Rect>,
    pub convoys: Option<Rect>,
    pub merge_queue: Option<Rect>,
    pub witness: Option<Rect>,
    pub feed: Option<Rect>,
    pub status: Option<Rect>,
}

/// Widths from which the Witness panel has its own column.
pub const WITNESS_MIN_WIDTH: u16 = 100;
/// The Witness panel's width (with borders).
const WITNESS_W: u16 = 18;

fn some(r: Rect) -> Option<Rect> {
    (!r.is_empty()).then_some(r)
}

/// The layout for a screen of `area`; `drill_down` gives the terminal everything but the
/// status line.
pub fn plan(area: Rect, drill_down: bool) -> Plan {
    let mut p = Plan::default();
    if area.is_empty() {
        return p;
    }
    let status = Rect::new(area.x, area.bottom() - 1, area.width, 1);
    p.status = Some(status);
    let main = Rect::new(area.x, area.y, area.width, area.height - 1);
    if drill_down {
        p.terminal = some(main);
        return p;
    }
    if main.height < 3 || main.width < 3 {
        return p;
    }
    let w = main.width;
    let left_w = if w >= 60 {
        (w * 3 / 10).clamp(24, 34)
    } else if w >= 30 {
        w * 2 / 5
    } else {
        0
    };
    let bottom_h = if main.height >= 18 {
        (main.height * 3 / 10).clamp(7, 16)
    } else if main.height >= 12 {
        5
    } else {
        0
    };
    // Neighbours overlap by one cell: their borders merge.
    let top_h = if bottom_h > 0 {
        main.height - bottom_h + 1
    } else {
        main.height
    };
    let right_x = if left_w > 0 {
        main.x + left_w - 1
    } else {
        main.x
    };
    let right_w = main.right() - right_x;
    if left_w > 0 {
        p.agents = some(Rect::new(main.x, main.y, left_w, top_h));
    }
    let tb = Rect::new(right_x, main.y, right_w, top_h);
    p.terminal_block = some(tb);
    p.terminal = some(Rect::new(
        tb.x + 1,
        tb.y + 1,
        tb.width.saturating_sub(2),
        tb.height.saturating_sub(2),
    ));
    if bottom_h == 0 {
        return p;
    }
    let by = main.bottom() - bottom_h;
    let row = |x: u16, w: u16| some(Rect::new(x, by, w, bottom_h));
    if left_w > 0 {
        p.convoys = row(main.x, left_w);
    }
    if area.width >= WITNESS_MIN_WIDTH && right_w >= 40 + WITNESS_W {
        let pair = right_w + 2 - WITNESS_W;
        let mq_w = pair * 9 / 20;
        let feed_w = pair - mq_w;
        let wx = right_x + mq_w - 1;
        p.merge_queue = row(right_x, mq_w);
        p.witness = row(wx, WITNESS_W);
        p.feed = row(wx + WITNESS_W - 1, feed_w);
    } else if right_w >= 30 {
        let mq_w = right_w.div_ceil(2);
        p.merge_queue = row(right_x, mq_w);
        p.feed = row(right_x + mq_w - 1, right_w + 1 - mq_w);
    } else {
        p.feed = row(right_x, right_w);
    }
    p
}

/// The agent terminal's size `(rows, cols)` for a screen of `total` (0 when no terminal fits;
/// PTYs clamp to their minimum).
pub fn terminal_size(total: Rect, drill_down: bool) -> (u16, u16) {
    plan(total, drill_down)
        .terminal
        .map_or((0, 0), |r| (r.height, r.width))
}

/// Draws the cockpit and returns where each panel went (for mouse hits; `terminal` is the
/// area the agent's screen fills). Places the terminal cursor in the drill-down.
pub fn draw(frame: &mut Frame, app: &App, screens: &dyn ScreenSource, theme: &Theme) -> Areas {
    let now = chrono::Local::now().fixed_offset();
    draw_at(frame, app, screens, theme, now)
}

/// [`draw`] with the wall clock given (tests pin it).
pub fn draw_at(
    frame: &mut Frame,
    app: &App,
    screens: &dyn ScreenSource,
    theme: &Theme,
    now: DateTime<FixedOffset>,
) -> Areas {
    let area = frame.area();
    let drill = matches!(app.mode, Mode::DrillDown);
    let p = plan(area, drill);
    let ctx = Ctx { app, theme, now };
    let buf = frame.buffer_mut();
    let selected = app.selected_agent();
    let mut cursor: Option<Position> = None;

    if let Some(r) = p.terminal_block {
        let block = panels::terminal_block(selected, &ctx, r.width);
        ratatui::widgets::Widget::render(block, r, buf);
    }
    // Unfocused panels first: the focused one's border is drawn last, over shared edges.
    let mut order: Vec<(super::app::Focus, Option<Rect>)> = vec![
        (super::app::Focus::Agents, p.agents),
        (super::app::Focus::Convoys, p.convoys),
        (super::app::Focus::MergeQueue, p.merge_queue),
        (super::app::Focus::Witness, p.witness),
        (super::app::Focus::Feed, p.feed),
    ];
    order.sort_by_key(|(f, _)| *f == app.focus);
    for (f, r) in order {
        let Some(r) = r else { continue };
        match f {
            super::app::Focus::Agents => panels::agents(buf, r, &ctx, p.witness.is_none()),
            super::app::Focus::Convoys => panels::convoys(buf, r, &ctx),
            super::app::Focus::MergeQueue => panels::merge_queue(buf, r, &ctx),
            super::app::Focus::Witness => panels::witness(buf, r, &ctx),
            super::app::Focus::Feed => panels::feed(buf, r, &ctx),
        }
    }
    if let Some(r) = p.terminal {
        let mut offset = 0;
        let drawn = selected.and_then(|a| screens.render(&a.agent.name, r, buf, theme.colors));
        if let Some((c, o)) = drawn {
            (cursor, offset) = (c, o);
        }
        if drawn.is_none() {
            panels::no_terminal(buf, r, selected, theme);
        } else if offset > 0 {
            let label = format!(" ↑ {offset} lines back ");
            let w = text::width(&label) as u16;
            if w < r.width {
                let line = Line::from(Span::styled(label, theme.attention));
                buf.set_line(r.right() - w, r.y, &line, w);
            }
        }
    }
    if let Some(r) = p.status {
        panels::status_bar(buf, r, &ctx);
    }
    if let Mode::Dialog(d) = &app.mode {
        dialogs::draw(buf, area, &ctx, d);
    }
    if drill {
        if let Some(c) = cursor {
            frame.set_cursor_position(c);
        }
    }
    Areas {
        agents: p.agents,
        terminal: p.terminal,
        convoys: p.convoys,
        merge_queue: p.merge_queue,
        witness: p.witness,
        feed: p.feed,
    }
}

/// Hand-built states for tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::agent::Screen;
    use crate::beads::{Agent, Convoy, Event, MergeRequest};
    use crate::engine::{AgentView, BeadBrief, Snapshot};
    use crate::ui::app::App;
    use chrono::{DateTime, Duration, FixedOffset};
    use ratatui::buffer::Buffer;
    use std::collections::HashMap;

    /// The pinned wall clock: 2025-06-01 12:00:00 UTC.
    pub fn now() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z").expect("fixed time")
    }

    /// `secs` before [`now`], as the store writes times.
    pub fn ago(secs: i64) -> String {
        (now() - Duration::seconds(secs)).to_rfc3339()
    }

    #[allow(clippy::too_many_arguments)]
    fn agent(
        name: &str,
        role: &str,
        rig: &str,
        state: &str,
        running: bool,
        bead: Option<(&str, &str)>,
        idle_secs: i64,
        restarts: i64,
    ) -> AgentView {
        AgentView {
            agent: Agent {
                name: name.into(),
                role: role.into(),
                rig: rig.into(),
                runtime: "sim".into(),
                state: state.into(),
                hooked_bead: bead.map(|(id, _)| id.to_string()),
                session: running.then(|| "20250601-115000.000".to_string()),
                pid: running.then_some(4242),
                last_activity: Some(ago(idle_secs)),
                restarts,
                created_at: ago(7200),
                updated_at: ago(idle_secs),
                reported_state: None,
                reported_at: None,
                state_reason: String::new(),
                conversation: None,
                conversation_bead: None,
                frozen: false,
            },
            running,
            bead_title: bead.map(|(_, t)| t.to_string()),
        }
    }

    fn mr(id: i64, who: &str, state: &str, reason: &str, age: i64) -> MergeRequest {
        MergeRequest {
            id,
            rig: "demo".into(),
            branch: format!("polecat/{who}-gt-{id:03}"),
            bead_id: Some(format!("gt-{id:03}")),
            submitter: who.into(),
            state: state.into(),
            attempts: 1,
            reason: reason.into(),
            test_log_tail: String::new(),
            created_at: ago(age + 30),
            updated_at: ago(age),
            style: String::new(),
            source_tip: None,
            merge_commit: (state == "merged").then(|| format!("3f9a2c1{id:033x}")),
        }
    }

    fn event(id: i64, subject: &str, kind: &str, actor: &str, new: &str, detail: &str) -> Event {
        Event {
            id,
            subject: subject.into(),
            kind: kind.into(),
            actor: actor.into(),
            old_value: Some("idle".into()),
            new_value: (!new.is_empty()).then(|| new.to_string()),
            detail: (!detail.is_empty()).then(|| detail.to_string()),
            created_at: ago(600 - id * 55),
        }
    }

    /// A town with an agent in every state, convoys, a merge queue and a feed.
    pub fn snapshot() -> Snapshot {
        let agents = vec![
            agent("mayor", "mayor", "", "idle", true, None, 300, 0),
            agent(
                "nux",
                "polecat",
                "demo",
                "working",
                true,
                Some(("gt-a3f", "Fix SQL injection in the login handler")),
                125,
                0,
            ),
            agent(
                "slit",
                "polecat",
                "demo",
                "waiting",
                true,
                Some(("gt-b71", "Add rate limiting")),
                40,
                0,
            ),
            agent(
                "toast",
                "polecat",
                "api",
                "stalled",
                true,
                Some(("gt-c09", "Migrate the users table")),
                900,
                1,
            ),
            agent("furiosa", "crew", "api", "stopped", false, None, 5400, 0),
            agent(
                "rictus",
                "polecat",
                "api",
                "dead",
                false,
                Some(("gt-d44", "Cache invalidation")),
                3600,
                3,
            ),
            agent("dag", "polecat", "demo", "zombie", false, None, 200_000, 2),
        ];
        let convoys = vec![
            Convoy {
                id: "gt-cv1".into(),
                name: "Auth hardening".into(),
                status: "open".into(),
                closed: 3,
                total: 5,
                auto_dispatch: None,
                tracked: Vec::new(),
            },
            Convoy {
                id: "gt-cv2".into(),
                name: "API v2".into(),
                status: "open".into(),
                closed: 1,
                total: 4,
                auto_dispatch: None,
                tracked: Vec::new(),
            },
        ];
        let merge_requests = vec![
            mr(12, "nux", "testing", "", 12),
            mr(13, "slit", "queued", "", 45),
            mr(10, "toast", "merged", "", 180),
            mr(
                9,
                "rictus",
                "rejected",
                "tests failed: test_login (exit 1)",
                600,
            ),
            mr(8, "dag", "conflict", "conflict in src/db.rs", 1200),
        ];
        use crate::beads::ev;
        let feed = vec![
            event(
                1,
                "gt-a3f",
                ev::CREATED,
                "overseer",
                "task",
                "Fix SQL injection",
            ),
            event(2, "gt-a3f", ev::HOOKED, "overseer", "nux", ""),
            event(3, "nux", ev::AGENT_STATE, "engine", "working", ""),
            event(4, "gt-b71", ev::CLAIMED, "slit", "", ""),
            event(
                5,
                "slit",
                ev::AGENT_STATE,
                "engine",
                "waiting",
                "permission prompt",
            ),
            event(
                6,
                "mr-10",
                ev::SUBMITTED,
                "toast",
                "polecat/toast-gt-010",
                "",
            ),
            event(7, "mr-10", ev::MERGED, "refinery", "", ""),
            event(
                8,
                "mr-9",
                ev::REJECTED,
                "refinery",
                "rejected",
                "tests failed",
            ),
            event(9, "rictus", ev::AGENT_STATE, "witness", "dead", "exited 1"),
            event(
                10,
                "gt-a3f",
                ev::COMMENTED,
                "nux",
                "",
                "found the bug in login.rs",
            ),
        ];
        let ready = vec![
            BeadBrief {
                id: "gt-e12".into(),
                title: "Paginate the audit log".into(),
                priority: 1,
                issue_type: "feature".into(),
            },
            BeadBrief {
                id: "gt-f3a".into(),
                title: "Flaky test in auth::tokens".into(),
                priority: 0,
                issue_type: "bug".into(),
            },
            BeadBrief {
                id: "gt-0b2".into(),
                title: "Document the sling command".into(),
                priority: 2,
                issue_type: "task".into(),
            },
            BeadBrief {
                id: "gt-9c1".into(),
                title: "Bump dependencies".into(),
                priority: 3,
                issue_type: "chore".into(),
            },
        ];
        Snapshot {
            town: "demo".into(),
            agents,
            convoys,
            merge_requests,
            feed,
            ready,
            rigs: vec!["api".into(), "demo".into()],
            runtimes: vec![
                "claude".into(),
                "codex".into(),
                "shell".into(),
                "sim".into(),
            ],
            runtimes_missing: vec!["codex".into()],
            default_runtime: "sim".into(),
            inbox_unread: 2,
            patrol_heartbeat_ns: (now() - Duration::seconds(3)).timestamp_nanos_opt(),
            costs: costs(),
        }
    }

    /// Today's spending: nux's priced, toast's partly unknown; a convoy's; a daily budget.
    fn costs() -> crate::engine::Costs {
        use crate::town::costs::Spent;
        let spent = |usd: f64, unpriced: &[&str]| Spent {
            tokens: crate::beads::Tokens {
                input: 1000,
                ..Default::default()
            },
            usd_priced: usd,
            unpriced: unpriced.iter().map(|s| s.to_string()).collect(),
        };
        crate::engine::Costs {
            day: spent(14.2, &["llama"]),
            agents: [
                ("nux".to_string(), spent(3.5, &[])),
                ("toast".to_string(), spent(0.42, &["llama"])),
            ]
            .into(),
            convoys: [("gt-cv1".to_string(), spent(12.75, &[]))].into(),
            daily_usd: Some(50.0),
            over_daily: false,
        }
    }

    /// The populated app with `nux` (a working polecat) selected.
    pub fn populated() -> App {
        let mut app = App::new(snapshot());
        app.selected = 1;
        app
    }

    pub fn empty() -> App {
        App::new(Snapshot {
            town: "demo".into(),
            default_runtime: "sim".into(),
            runtimes: vec!["sim".into()],
            ..Snapshot::default()
        })
    }

    /// What a busy agent's terminal shows (with colours).
    pub const NUX_OUTPUT: &[u8] = b"\x1b[1;36m* sim agent\x1b[0m  \x1b[2mgt-a3f\x1b[0m\r\n\r\n\
        \x1b[32m\xe2\x97\x8f\x1b[0m Read src/login.rs\r\n\
        \x1b[33m\xe2\x97\x8f\x1b[0m Edit src/login.rs\r\n\
        \x1b[31m-   query(&format!(\"SELECT * FROM users WHERE name = '{name}'\"))\x1b[0m\r\n\
        \x1b[32m+   query(\"SELECT * FROM users WHERE name = ?\", [name])\x1b[0m\r\n\
        \x1b[38;2;255;135;0m\xe2\x97\x8f\x1b[0m Bash ./test.sh\r\n\
        \x1b[2m  14 passed, 0 failed\x1b[0m\r\n\r\n\
        \x1b[7m > \x1b[0m ";

    /// Screens for the populated town: `nux` with [`NUX_OUTPUT`] at `rows` x `cols`.
    pub fn screens(rows: u16, cols: u16) -> HashMap<String, Screen> {
        let mut s = Screen::new(rows, cols, 100);
        s.process(NUX_OUTPUT);
        let mut m = HashMap::new();
        m.insert("nux".to_string(), s);
        let mut slit = Screen::new(rows, cols, 100);
        slit.process(b"Allow edit to src/limits.rs? [y/n] ");
        m.insert("slit".to_string(), slit);
        m
    }

    /// The buffer's text: one line per row, trailing spaces trimmed, wide characters once.
    pub fn text(buf: &Buffer) -> String {
        let mut out = String::new();
        for y in buf.area.top()..buf.area.bottom() {
            let mut line = String::new();
            let mut skip = 0;
            for x in buf.area.left()..buf.area.right() {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let sym = buf[(x, y)].symbol();
                line.push_str(sym);
                skip = super::text::width(sym).saturating_sub(1);
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures;
    use super::*;
    use crate::ui::app::{Dialog, Focus, SlingDialog, SlingStep};
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;
    use ratatui::style::{Color, Modifier};
    use ratatui::Terminal;

    struct Drawn {
        text: String,
        buf: Buffer,
        areas: Areas,
        cursor: Option<Position>,
    }

    fn draw_with(app: &App, w: u16, h: u16, theme: &Theme, screens: &dyn ScreenSource) -> Drawn {
        let mut term = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
        let mut areas = Areas::default();
        term.draw(|f| {
            areas = draw_at(f, app, screens, theme, fixtures::now());
        })
        .expect("draw");
        let b = term.backend();
        let cursor = b.cursor_visible().then(|| b.cursor_position());
        let buf = term.backend().buffer().clone();
        Drawn {
            text: fixtures::text(&buf),
            buf,
            areas,
            cursor,
        }
    }

    fn draw_app(app: &App, w: u16, h: u16) -> Drawn {
        let (rows, cols) =
            terminal_size(Rect::new(0, 0, w, h), matches!(app.mode, Mode::DrillDown));
        let screens = fixtures::screens(rows, cols);
        draw_with(app, w, h, &Theme::default_theme(), &screens)
    }

    #[test]
    fn plan_at_common_sizes() {
        let p = plan(Rect::new(0, 0, 80, 24), false);
        assert_eq!(p.agents, Some(Rect::new(0, 0, 24, 17)));
        assert_eq!(p.terminal, Some(Rect::new(24, 1, 55, 15)));
        assert_eq!(p.witness, None);
        assert!(p.merge_queue.is_some() && p.feed.is_some() && p.convoys.is_some());
        assert_eq!(p.status, Some(Rect::new(0, 23, 80, 1)));
        assert_eq!(terminal_size(Rect::new(0, 0, 80, 24), false), (15, 55));
        assert_eq!(terminal_size(Rect::new(0, 0, 80, 24), true), (23, 80));
        let p = plan(Rect::new(0, 0, 160, 45), false);
        assert!(p.witness.is_some());
        assert_eq!(terminal_size(Rect::new(0, 0, 160, 45), false), (30, 125));
        // The bottom row fills the width exactly, neighbours sharing borders.
        for (w, h) in [(80, 24), (100, 30), (160, 45), (200, 60), (123, 37)] {
            let p = plan(Rect::new(0, 0, w, h), false);
            let row: Vec<Rect> = [p.convoys, p.merge_queue, p.witness, p.feed]
                .into_iter()
                .flatten()
                .collect();
            assert_eq!(row[0].x, 0);
            for pair in row.windows(2) {
                assert_eq!(pair[0].right() - 1, pair[1].x, "{w}x{h}");
            }
            assert_eq!(row[row.len() - 1].right(), w, "{w}x{h}");
            let tb = p.terminal_block.expect("terminal");
            assert_eq!(tb.right(), w);
            assert_eq!(tb.bottom() - 1, row[0].y);
        }
    }

    #[test]
    fn populated_80x24() {
        let d = draw_app(&fixtures::populated(), 80, 24);
        insta::assert_snapshot!("cockpit_populated_80x24", d.text);
        assert!(d.areas.witness.is_none());
    }

    #[test]
    fn populated_160x45() {
        let d = draw_app(&fixtures::populated(), 160, 45);
        insta::assert_snapshot!("cockpit_populated_160x45", d.text);
        assert!(d.areas.witness.is_some());
        // No cursor outside the drill-down.
        assert_eq!(d.cursor, None);
    }

    #[test]
    fn populated_200x60_focus_on_feed() {
        let mut app = fixtures::populated();
        app.focus = Focus::Feed;
        let d = draw_app(&app, 200, 60);
        insta::assert_snapshot!("cockpit_populated_200x60_feed_focused", d.text);
        let theme = Theme::default_theme();
        let feed = d.areas.feed.expect("feed");
        // The focused panel's border wins over its neighbour's on the shared edge.
        assert_eq!(
            d.buf[(feed.x, feed.y + 2)].fg,
            theme.border_focused.fg.unwrap_or_default()
        );
    }

    #[test]
    fn empty_town() {
        for (w, h) in [(80, 24), (160, 45)] {
            let d = draw_app(&fixtures::empty(), w, h);
            insta::assert_snapshot!(format!("cockpit_empty_{w}x{h}"), d.text);
        }
    }

    #[test]
    fn agent_terminal_has_colours() {
        let app = fixtures::populated();
        let d = draw_app(&app, 160, 45);
        let t = d.areas.terminal.expect("terminal");
        // Row 0: "* sim agent" bold cyan; row 4: the removed line red; row 6: an RGB bullet.
        let c = &d.buf[(t.x, t.y)];
        assert_eq!(c.symbol(), "*");
        assert_eq!(c.fg, Color::Indexed(6));
        assert!(c.modifier.contains(Modifier::BOLD));
        assert_eq!(d.buf[(t.x, t.y + 4)].fg, Color::Indexed(1));
        assert_eq!(d.buf[(t.x, t.y + 5)].fg, Color::Indexed(2));
        assert_eq!(d.buf[(t.x, t.y + 6)].fg, Color::Rgb(255, 135, 0));
        assert!(d.buf[(t.x + 2, t.y + 7)].modifier.contains(Modifier::DIM));
        assert!(d.buf[(t.x, t.y + 9)].modifier.contains(Modifier::REVERSED));
        insta::assert_snapshot!("terminal_pane_160x45", pane_text(&d.buf, t));
    }

    fn pane_text(buf: &Buffer, r: Rect) -> String {
        let mut sub = Buffer::empty(Rect::new(0, 0, r.width, r.height));
        for y in 0..r.height {
            for x in 0..r.width {
                sub[(x, y)] = buf[(r.x + x, r.y + y)].clone();
            }
        }
        fixtures::text(&sub)
    }

    #[test]
    fn drill_down_is_full_screen_with_cursor() {
        let mut app = fixtures::populated();
        app.mode = Mode::DrillDown;
        for (w, h) in [(80, 24), (160, 45)] {
            let d = draw_app(&app, w, h);
            insta::assert_snapshot!(format!("cockpit_drill_down_{w}x{h}"), d.text);
            assert_eq!(d.areas.terminal, Some(Rect::new(0, 0, w, h - 1)));
            assert_eq!(d.areas.agents, None);
            // After "\x1b[7m > \x1b[0m " on row 9: column 4.
            assert_eq!(d.cursor, Some(Position::new(4, 9)));
        }
    }

    #[test]
    fn drill_down_scrolled_back_shows_history() {
        let mut app = fixtures::populated();
        app.mode = Mode::DrillDown;
        app.term_scroll = 5;
        let mut s = crate::agent::Screen::new(4, 40, 100);
        for i in 0..20 {
            s.process(format!("line {i}\r\n").as_bytes());
        }
        // The event loop applies `term_scroll` to the session before drawing.
        s.set_view_offset(app.term_scroll);
        let mut screens = std::collections::HashMap::new();
        screens.insert("nux".to_string(), s);
        let d = draw_with(&app, 40, 5, &Theme::default_theme(), &screens);
        insta::assert_snapshot!("cockpit_drill_down_scrolled_back", d.text);
        assert_eq!(d.cursor, None);
    }

    #[test]
    fn no_color_theme_draws_no_colours() {
        let app = fixtures::populated();
        let screens = fixtures::screens(30, 125);
        let mut apps = vec![app.clone()];
        for (_, d) in dialog_cases() {
            let mut a = app.clone();
            a.mode = Mode::Dialog(d);
            apps.push(a);
        }
        for app in apps {
            let d = draw_with(&app, 160, 45, &Theme::no_color(), &screens);
            for c in d.buf.content() {
                assert_eq!(c.fg, Color::Reset, "{c:?}");
                assert_eq!(c.bg, Color::Reset, "{c:?}");
            }
            // Attributes still mark the selected row and the terminal's styles.
            assert!(d
                .buf
                .content()
                .iter()
                .any(|c| c.modifier.contains(Modifier::REVERSED)));
        }
    }

    #[test]
    fn every_builtin_theme_draws() {
        for (name, _) in crate::ui::theme::BUILTIN {
            let theme = Theme::builtin(name).expect("builtin");
            let screens = fixtures::screens(15, 55);
            let d = draw_with(&fixtures::populated(), 80, 24, &theme, &screens);
            assert!(d.text.contains("Agents"), "{name}");
        }
    }

    #[test]
    fn tiny_sizes_do_not_panic() {
        let mut apps = vec![fixtures::populated(), fixtures::empty()];
        let mut drill = fixtures::populated();
        drill.mode = Mode::DrillDown;
        apps.push(drill);
        for d in dialog_cases() {
            let mut a = fixtures::populated();
            a.mode = Mode::Dialog(d.1);
            apps.push(a);
        }
        let mut filter = fixtures::populated();
        filter.mode = Mode::Filter;
        filter.filter = "n".into();
        apps.push(filter);
        let screens = fixtures::screens(20, 60);
        let theme = Theme::default_theme();
        for app in &apps {
            for w in 1..=30 {
                for h in 1..=10 {
                    draw_with(app, w, h, &theme, &screens);
                }
            }
            for (w, h) in [
                (0, 0),
                (1, 40),
                (200, 1),
                (35, 12),
                (61, 18),
                (99, 20),
                (100, 20),
            ] {
                if w > 0 && h > 0 {
                    draw_with(app, w, h, &theme, &screens);
                }
                let _ = terminal_size(Rect::new(0, 0, w, h), false);
            }
        }
    }

    fn dialog_cases() -> Vec<(&'static str, Dialog)> {
        let sling = |step, filter: &str, selected, bead: Option<&str>, rig: Option<&str>| {
            Dialog::Sling(SlingDialog {
                step,
                filter: filter.into(),
                selected,
                bead: bead.map(String::from),
                rig: rig.map(String::from),
            })
        };
        let diff = "diff --git a/src/login.rs b/src/login.rs\n\
            index 3b18e51..a9c2f04 100644\n\
            --- a/src/login.rs\n\
            +++ b/src/login.rs\n\
            @@ -10,7 +10,7 @@ fn login(name: &str) {\n\
             \tlet db = open();\n\
            -\tquery(&format!(\"SELECT * FROM users WHERE name = '{name}'\"))\n\
            +\tquery(\"SELECT * FROM users WHERE name = ?\", [name])\n\
             }\n";
        vec![
            ("sling_bead", sling(SlingStep::Bead, "", 1, None, None)),
            (
                "sling_bead_filtered",
                sling(SlingStep::Bead, "tst", 0, None, None),
            ),
            (
                "sling_bead_no_match",
                sling(SlingStep::Bead, "zzzz", 0, None, None),
            ),
            (
                "sling_rig",
                sling(SlingStep::Rig, "", 1, Some("gt-e12"), None),
            ),
            (
                "sling_runtime",
                sling(SlingStep::Runtime, "", 0, Some("gt-e12"), Some("demo")),
            ),
            (
                "nudge",
                Dialog::Nudge {
                    agent: "slit".into(),
                    input: "yes, allow edits to src/limits.rs".into(),
                },
            ),
            (
                "command_empty",
                Dialog::Command {
                    input: String::new(),
                    selected: None,
                },
            ),
            (
                "command_sling_completing",
                Dialog::Command {
                    input: "sling gt-".into(),
                    selected: Some(1),
                },
            ),
            (
                "command_nudge_typing",
                Dialog::Command {
                    input: "nudge nux please run the tests".into(),
                    selected: None,
                },
            ),
            (
                "help_agents",
                Dialog::Help {
                    focus: Focus::Agents,
                },
            ),
            ("help_feed", Dialog::Help { focus: Focus::Feed }),
            ("confirm_stop", Dialog::ConfirmStop { running: 4 }),
            ("leave_demo", Dialog::LeaveDemo { running: 4 }),
            (
                "diff",
                Dialog::Diff {
                    agent: "nux".into(),
                    text: diff.into(),
                    scroll: 0,
                },
            ),
            (
                "diff_scrolled",
                Dialog::Diff {
                    agent: "nux".into(),
                    text: diff.into(),
                    scroll: 4,
                },
            ),
            (
                "message",
                Dialog::Message {
                    title: "Sling failed".into(),
                    text: "rig 'demo' has uncommitted changes in its main checkout; commit or \
                           stash them, then sling again.\nDetails: git status --short"
                        .into(),
                },
            ),
        ]
    }

    #[test]
    fn dialogs_at_80x24_and_160x45() {
        for (name, d) in dialog_cases() {
            let mut app = fixtures::populated();
            app.mode = Mode::Dialog(d);
            for (w, h) in [(80, 24), (160, 45)] {
                let drawn = draw_app(&app, w, h);
                insta::assert_snapshot!(format!("dialog_{name}_{w}x{h}"), drawn.text);
            }
        }
    }

    #[test]
    fn diff_lines_are_coloured() {
        let (_, d) = dialog_cases()
            .into_iter()
            .find(|(n, _)| *n == "diff")
            .expect("diff case");
        let mut app = fixtures::populated();
        app.mode = Mode::Dialog(d);
        let theme = Theme::default_theme();
        let drawn = draw_app(&app, 80, 24);
        // The colour of the first cell of the row showing `needle`.
        let find = |needle: &str| {
            let (y, line) = drawn
                .text
                .lines()
                .enumerate()
                .find(|(_, l)| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle} not drawn"));
            let x = line[..line.find(needle).unwrap_or(0)].chars().count() as u16;
            drawn.buf[(x, y as u16)].fg
        };
        assert_eq!(find("+    query"), theme.diff_added.fg.unwrap_or_default());
        assert_eq!(
            find("-    query"),
            theme.diff_removed.fg.unwrap_or_default()
        );
        assert_eq!(find("@@ -10"), theme.diff_hunk.fg.unwrap_or_default());
        assert_eq!(find("+++ b/"), theme.diff_header.fg.unwrap_or_default());
    }

    #[test]
    fn agent_at_follows_scrolling_and_the_counts_row() {
        let agent_at = |app: &App, areas: &Areas, column, row| {
            super::super::layout::agent_at(
                areas,
                app.selected,
                app.visible_agents().len(),
                column,
                row,
            )
        };
        let mut app = fixtures::populated();
        // 80x13: the agents panel has 6 inner rows, the last one the Witness counts.
        let d = draw_app(&app, 80, 13);
        let r = d.areas.agents.expect("agents");
        assert_eq!(agent_at(&app, &d.areas, r.x + 2, r.y + 1), Some(0));
        assert_eq!(agent_at(&app, &d.areas, r.x + 2, r.y + 5), Some(4));
        assert_eq!(
            agent_at(&app, &d.areas, r.x + 2, r.y + 6),
            None,
            "counts row"
        );
        assert_eq!(agent_at(&app, &d.areas, r.x, r.y + 1), None, "border");
        app.selected = 6;
        let d = draw_app(&app, 80, 13);
        assert!(
            d.text.lines().nth(5).is_some_and(|l| l.contains("dag")),
            "{}",
            d.text
        );
        assert_eq!(agent_at(&app, &d.areas, r.x + 2, r.y + 5), Some(6));
        assert_eq!(agent_at(&app, &d.areas, r.x + 2, r.y + 1), Some(2));
    }

    #[test]
    fn filter_mode_and_notice() {
        let mut app = fixtures::populated();
        app.mode = Mode::Filter;
        app.filter = "demo".into();
        app.selected = 0;
        let d = draw_app(&app, 80, 24);
        insta::assert_snapshot!("cockpit_filter_demo_80x24", d.text);
    }
}
