//! Where things are on the screen: the panels' areas of the last frame, and which agent row a
//! mouse click hits. The app (input) and the view (drawing) both use it; it uses neither.

use ratatui::layout::{Position, Rect};

/// Where the view drew each panel (for mouse hits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Areas {
    pub agents: Option<Rect>,
    pub terminal: Option<Rect>,
    pub convoys: Option<Rect>,
    pub merge_queue: Option<Rect>,
    pub witness: Option<Rect>,
    pub feed: Option<Rect>,
}

/// The first visible row of the agents list: the list scrolls just enough to keep the
/// selected agent visible. (The mouse handler adds it to the clicked row.)
pub fn agents_offset(selected: usize, rows: usize) -> usize {
    if rows == 0 {
        0
    } else {
        selected.saturating_sub(rows - 1)
    }
}

/// The index (into the `n` visible agents, `selected` the chosen one) of the agent drawn at
/// screen cell (`column`, `row`), given the areas of the last frame: accounts for the list's scrolling and for the Witness
/// counts row the agents panel carries when the Witness panel is not drawn.
pub fn agent_at(areas: &Areas, selected: usize, n: usize, column: u16, row: u16) -> Option<usize> {
    let r = areas.agents?;
    let inner = Rect::new(
        r.x + 1,
        r.y + 1,
        r.width.saturating_sub(2),
        r.height.saturating_sub(2),
    );
    if !inner.contains(Position::new(column, row)) {
        return None;
    }
    let mut rows = inner.height;
    if areas.witness.is_none() && rows >= 3 && n > 0 {
        rows -= 1;
    }
    let k = row - inner.y;
    if k >= rows {
        return None;
    }
    let i = agents_offset(selected.min(n.saturating_sub(1)), usize::from(rows)) + usize::from(k);
    (i < n).then_some(i)
}
