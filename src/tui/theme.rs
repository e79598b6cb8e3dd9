//! Every colour and style the debugger draws with, in one place.

use ratatui::style::{Color, Modifier, Style};

/// The styles that carry meaning.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    /// The cursor row (events, streams, lists) and the cursor on the timeline.
    pub cursor: Style,
    /// The state cursor row when the state pane has the focus.
    pub state_cursor: Style,
    /// Paths the event at the cursor changed.
    pub changed: Style,
    /// Added lines and values in a diff.
    pub added: Style,
    /// Removed lines and values in a diff.
    pub removed: Style,
    /// Hints and secondary text.
    pub dim: Style,
    /// The border of the pane with the focus.
    pub focus: Style,
    /// Problems: stale or faulty snapshots, findings.
    pub alarm: Style,
    /// The mark on the timeline.
    pub mark: Style,
}

/// The one theme.
pub const THEME: Theme = Theme {
    cursor: Style::new().add_modifier(Modifier::REVERSED),
    state_cursor: Style::new().add_modifier(Modifier::REVERSED),
    changed: Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
    added: Style::new().fg(Color::Green),
    removed: Style::new().fg(Color::Red),
    dim: Style::new().fg(Color::DarkGray),
    focus: Style::new().fg(Color::Cyan),
    alarm: Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    mark: Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
};
