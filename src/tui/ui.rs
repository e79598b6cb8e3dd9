//! The root render: a pure function of the model, and the layout it draws into (which the
//! model also uses to map mouse clicks to panes).
//!
//! ```text
//! ┌ Streams ─┐┌ Timeline ─────────────────────────────────┐
//! │▶ order-42││▁▂▅█▃▁  ▂▃  density of events over time    │
//! │  order-43││◆──◇───M───▲──◆  snapshots, mark, cursor   │
//! │…!agent-7 │└───────────────────────────────────────────┘
//! │          │┌ Events ──────────┐┌ State @ v12 ──────────┐
//! │          ││▶ 12 ◆ +0:01 Paid ││ "status": "paid",     │
//! │          │└──────────────────┘└───────────────────────┘
//! │          │┌ Diff v11 → v12 ──┐┌ Event v12 ────────────┐
//! └──────────┘└──────────────────┘└───────────────────────┘
//!  status line: position · provenance · mode · message or hints
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Margin, Rect};
use ratatui::widgets::{Paragraph, Widget};

use super::app::App;
use super::panes;

/// The smallest terminal the layout fits.
pub const MIN_SIZE: (u16, u16) = (60, 16);

/// Where each pane goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// The stream list.
    pub streams: Rect,
    /// The timeline bar.
    pub timeline: Rect,
    /// The event list.
    pub events: Rect,
    /// The state tree.
    pub state: Rect,
    /// The diff.
    pub diff: Rect,
    /// The selected event.
    pub detail: Rect,
    /// The status line.
    pub status: Rect,
}

/// The layout for a terminal size.
pub fn areas((width, height): (u16, u16)) -> Areas {
    let area = Rect::new(0, 0, width, height);
    let [body, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let list = if width >= 100 { 28 } else { 20 };
    let [streams, right] =
        Layout::horizontal([Constraint::Length(list), Constraint::Min(1)]).areas(body);
    let bottom = (body.height * 3 / 10).max(6);
    let [timeline, middle, lower] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(3),
        Constraint::Length(bottom),
    ])
    .areas(right);
    let [events, state] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    let [diff, detail] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(lower);
    Areas {
        streams,
        timeline,
        events,
        state,
        diff,
        detail,
        status,
    }
}

/// The layout, with `zoomed` (the events or the state) filling all but the status line and
/// the other panes empty.
pub fn layout(size: (u16, u16), zoomed: Option<super::app::Pane>) -> Areas {
    let full = areas(size);
    let Some(pane) = zoomed else {
        return full;
    };
    let body = Rect::new(0, 0, size.0, full.status.y);
    let none = Rect::new(0, 0, 0, 0);
    let mut zoomed = Areas {
        streams: none,
        timeline: none,
        events: none,
        state: none,
        diff: none,
        detail: none,
        status: full.status,
    };
    match pane {
        super::app::Pane::Events => zoomed.events = body,
        super::app::Pane::State => zoomed.state = body,
    }
    zoomed
}

/// The inside of a bordered pane.
pub fn inner(area: Rect) -> Rect {
    area.inner(Margin::new(1, 1))
}

/// Draws one frame.
pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let text = format!(
            "too small: {}×{} (need {}×{})",
            area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
        );
        frame.render_widget(Paragraph::new(text), area);
        return;
    }
    let a = layout((area.width, area.height), app.zoomed.then_some(app.focus));
    draw(frame, panes::streams::StreamsPane { app }, a.streams);
    draw(frame, panes::timeline::TimelinePane { app }, a.timeline);
    draw(frame, panes::events::EventsPane { app }, a.events);
    draw(frame, panes::state::StatePane { app }, a.state);
    draw(frame, panes::diff::DiffPane { app }, a.diff);
    draw(frame, panes::detail::DetailPane { app }, a.detail);
    frame.render_widget(panes::status::StatusLine { app }, a.status);
    panes::overlay::render(frame, app, area);
}

/// Draws a pane where it has an area: one left out (another is maximised) has none.
fn draw(frame: &mut Frame, pane: impl Widget, area: Rect) {
    if !area.is_empty() {
        frame.render_widget(pane, area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panes_tile_the_terminal_without_overlap() {
        for size in [(60, 16), (80, 24), (120, 40), (200, 50)] {
            let a = areas(size);
            let panes = [a.streams, a.timeline, a.events, a.state, a.diff, a.detail];
            let cells: u32 = panes
                .iter()
                .chain([&a.status])
                .map(|r| u32::from(r.width) * u32::from(r.height))
                .sum();
            assert_eq!(cells, u32::from(size.0) * u32::from(size.1), "{size:?}");
            for (i, p) in panes.iter().enumerate() {
                for q in &panes[i + 1..] {
                    assert!(!p.intersects(*q), "{size:?}: {p:?} {q:?}");
                }
                assert!(inner(*p).height >= 1, "{size:?}: {p:?}");
            }
        }
    }
}
