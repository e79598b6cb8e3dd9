//! The state at the cursor as a tree: rows the event changed are highlighted, folded
//! containers show their size, and the state cursor (with the focus here) picks the value
//! that blame and copy act on.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};

use crate::model::group;
use crate::tui::app::{App, Pane};
use crate::tui::theme::THEME;

/// The state tree.
pub struct StatePane<'a> {
    /// The model.
    pub app: &'a App,
}

impl Widget for StatePane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let tree = &app.view.tree;
        let focused = app.focus == Pane::State;
        let lines: Vec<Line> = tree
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let text = format!("{}{}", "  ".repeat(row.depth.min(40)), row.text);
                let mut style = if app.view.changed.contains(&row.path) {
                    THEME.changed
                } else {
                    ratatui::style::Style::new()
                };
                if focused && tree.top + i == tree.cursor {
                    style = style.patch(THEME.state_cursor);
                }
                Line::styled(text, style)
            })
            .collect();
        let height = usize::from(area.height.saturating_sub(2));
        let mut title = format!(" State @ v{} ", group(app.shown().cursor));
        if tree.total > height {
            title.push_str(&format!(
                "· {}/{} ",
                group((tree.cursor + 1) as u64),
                group(tree.total as u64)
            ));
        }
        if focused && !tree.path.is_empty() {
            title.push_str(&format!("· {} ", crate::text::clean(&tree.path, 40)));
        }
        if let Some(err) = &app.view.state_error {
            let lines = vec![
                Line::styled("The state here cannot be built:", THEME.changed),
                Line::raw(crate::text::clean(err, 400)),
            ];
            Paragraph::new(lines)
                .wrap(ratatui::widgets::Wrap { trim: false })
                .block(super::block(title, focused))
                .render(area, buf);
            return;
        }
        Paragraph::new(lines)
            .block(super::block(title, focused))
            .render(area, buf);
    }
}
