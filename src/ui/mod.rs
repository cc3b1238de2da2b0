//! The cockpit: a ratatui app, a client of the town's engine. `app` holds the state and turns
//! keys into actions; `view` draws a frame from the state; `run` owns the terminal and the
//! connection to the engine (see [`crate::server`]).

pub mod app;
pub mod dialogs;
pub mod panels;
pub mod term;
pub mod theme;
pub mod view;

use crate::agent::screen::Cells;
use crate::agent::Screen;
use crate::server::protocol::Grid;
use std::collections::HashMap;

/// Where the view finds an agent's terminal screen: the copies the engine keeps a cockpit
/// up to date with, or (in tests) screens built from bytes.
pub trait ScreenSource {
    /// Calls `f` with the agent's screen; false when the agent has none.
    fn with_screen(&self, agent: &str, f: &mut dyn FnMut(&dyn Cells)) -> bool;
}

impl ScreenSource for HashMap<String, Grid> {
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
