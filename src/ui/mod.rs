//! The cockpit: a ratatui app, a client of the town's engine. `app` holds the state and turns
//! keys into actions; `view` draws a frame from the state; `run` owns the terminal and the
//! connection to the engine (see [`crate::server`]).

pub mod app;
pub mod dialogs;
pub mod layout;
pub mod panels;
pub mod term;
pub mod text;
pub mod theme;
pub mod view;

use crate::agent::screen::Cells;
use crate::agent::Screen;
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use std::collections::HashMap;
use term::Pane;

/// Where the view finds an agent's terminal screen: the copies the engine keeps a cockpit
/// up to date with, or (in tests) screens built from bytes.
pub trait ScreenSource {
    /// Calls `f` with the agent's screen; false when the agent has none.
    fn with_screen(&self, agent: &str, f: &mut dyn FnMut(&dyn Cells)) -> bool;

    /// Draws the agent's screen into `area` ([`term::render_screen`]): where its cursor is,
    /// and the view's offset into the history; `None` when the agent has no screen.
    fn render(
        &self,
        agent: &str,
        area: Rect,
        buf: &mut Buffer,
        colors: bool,
    ) -> Option<(Option<Position>, usize)> {
        let mut out = None;
        self.with_screen(agent, &mut |s| {
            out = Some((term::render_screen(s, area, buf, colors), s.view_offset()));
        });
        out
    }
}

impl ScreenSource for HashMap<String, Pane> {
    fn with_screen(&self, agent: &str, f: &mut dyn FnMut(&dyn Cells)) -> bool {
        match self.get(agent) {
            Some(s) => {
                f(s);
                true
            }
            None => false,
        }
    }

    fn render(
        &self,
        agent: &str,
        area: Rect,
        buf: &mut Buffer,
        colors: bool,
    ) -> Option<(Option<Position>, usize)> {
        let pane = self.get(agent)?;
        Some((pane.render(area, buf, colors), pane.view_offset()))
    }
}

impl ScreenSource for HashMap<String, Screen> {
    fn with_screen(&self, agent: &str, f: &mut dyn FnMut(&dyn Cells)) -> bool {
        match self.get(agent) {
            Some(s) => {
                f(s);
                true
            }
            None => false,
        }
    }
}

mod event_loop;
pub use event_loop::{run, Kind, Outcome};
