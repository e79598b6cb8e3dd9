//! One file per pane: a small view that borrows the model and implements `Widget`. Window
//! and scale arithmetic are pure functions next to the pane that needs them.

pub mod detail;
pub mod diff;
pub mod events;
pub mod overlay;
pub mod state;
pub mod status;
pub mod streams;
pub mod timeline;

use ratatui::text::Span;
use ratatui::widgets::Block;

use super::theme::THEME;

/// A pane's border, highlighted when it has the focus.
fn block(title: String, focused: bool) -> Block<'static> {
    let block = Block::bordered().title(Span::raw(title));
    if focused {
        block.border_style(THEME.focus)
    } else {
        block
    }
}
