//! The cockpit: a ratatui app over the engine. `app` holds the state and turns keys into
//! actions; `view` draws a frame from the state; `run` owns the terminal and the event loop.

pub mod app;
pub mod dialogs;
pub mod panels;
pub mod term;
pub mod theme;
pub mod view;

use crate::agent::{Screen, Session};
use std::collections::HashMap;
use std::sync::Arc;

/// Where the view finds an agent's terminal screen: the engine's live sessions, or (in tests)
/// screens built from bytes.
pub trait ScreenSource {
    /// Calls `f` with the agent's screen; false when the agent has none.
    fn with_screen(&self, agent: &str, f: &mut dyn FnMut(&Screen)) -> bool;
}

impl ScreenSource for HashMap<String, Arc<Session>> {
    fn with_screen(&self, agent: &str, f: &mut dyn FnMut(&Screen)) -> bool {
        match self.get(agent) {
            Some(s) => {
                s.with_screen(|screen| f(screen));
                true
            }
            None => false,
        }
    }
}

impl ScreenSource for HashMap<String, Screen> {
    fn with_screen(&self, agent: &str, f: &mut dyn FnMut(&Screen)) -> bool {
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
pub use event_loop::run;
