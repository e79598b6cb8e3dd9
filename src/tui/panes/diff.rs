//! The diff from the previous event (or the mark) to the cursor: changed paths, or a
//! unified text diff of the pretty JSON.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};

use crate::diff::Change;
use crate::model::group;
use crate::text::clean;
use crate::tui::app::App;
use crate::tui::theme::THEME;

/// The diff pane.
pub struct DiffPane<'a> {
    /// The model.
    pub app: &'a App,
}

impl Widget for DiffPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let at = app.shown();
        let against = if at.mark.is_some_and(|m| m != at.cursor) {
            " (mark)"
        } else {
            ""
        };
        let title = format!(
            " Diff v{}{against} → v{} ",
            group(app.view.diff_from),
            group(at.cursor)
        );
        // What does not fit is counted on the last row (D shows it all).
        let height = usize::from(area.height.saturating_sub(2));
        let total = if app.text_diff {
            app.view.text_diff.lines().count()
        } else {
            app.view.changes.len()
        };
        let more = total.saturating_sub(height);
        let height = if more > 0 {
            height.saturating_sub(1)
        } else {
            height
        };
        let more = total.saturating_sub(height);
        let lines: Vec<Line> = if app.view.state_error.is_some() {
            vec![Line::styled("no state to compare", THEME.dim)]
        } else if let Some(err) = &app.view.diff_error {
            vec![
                Line::styled(
                    format!("v{} cannot be built:", group(app.view.diff_from)),
                    THEME.changed,
                ),
                Line::raw(clean(err, 400)),
            ]
        } else if app.text_diff {
            app.view
                .text_diff
                .lines()
                .take(height)
                .map(|l| {
                    let style = match l.chars().next() {
                        Some('+') if !l.starts_with("+++") => THEME.added,
                        Some('-') if !l.starts_with("---") => THEME.removed,
                        _ => Style::new(),
                    };
                    Line::styled(clean(l, 300), style)
                })
                .collect()
        } else if app.view.changes.is_empty() {
            vec![Line::styled("no changes", THEME.dim)]
        } else {
            app.view
                .changes
                .iter()
                .take(height)
                .map(|c| {
                    let style = match c {
                        Change::Added { .. } => THEME.added,
                        Change::Removed { .. } => THEME.removed,
                        Change::Changed { .. } => THEME.changed,
                    };
                    Line::styled(clean(&c.line(), 300), style)
                })
                .collect()
        };
        let mut lines = lines;
        if more > 0 && app.view.state_error.is_none() && app.view.diff_error.is_none() {
            lines.push(Line::styled(
                format!("… {} more · D shows all", group(more as u64)),
                THEME.dim,
            ));
        }
        Paragraph::new(lines)
            .block(super::block(title, false))
            .render(area, buf);
    }
}
