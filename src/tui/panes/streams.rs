//! The stream list, with markers (`…` the newest checkpoint looks unfinished, `!` stale
//! snapshots, verify findings, or a newest state that cannot be built), each stream's status
//! on the right, and the filter `F` set in the title.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::text::{clean, middle};
use crate::tui::app::App;
use crate::tui::theme::THEME;

/// The first stream shown when `selected` must be visible in `height` rows.
pub fn first_row(selected: usize, height: usize) -> usize {
    selected.saturating_sub(height.saturating_sub(1))
}

/// The stream list.
pub struct StreamsPane<'a> {
    /// The model.
    pub app: &'a App,
}

impl Widget for StreamsPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let inner = usize::from(area.width.saturating_sub(2));
        let rows: Vec<&crate::model::StreamInfo> = app.listed[app.shown_streams()]
            .iter()
            .filter_map(|i| app.streams.get(*i))
            .collect();
        // The status column is as wide as the widest status on screen where the names (up to
        // 12 characters of them) leave room, and at least 4 characters; names too long for the
        // rest lose their middle.
        let widest = |texts: &mut dyn Iterator<Item = &String>| {
            texts
                .map(|s| clean(s, usize::MAX).chars().count())
                .max()
                .unwrap_or(0)
        };
        let statuses = widest(&mut rows.iter().filter_map(|s| app.view.statuses.get(&s.name)));
        let names = widest(&mut rows.iter().map(|s| &s.name));
        let room = inner.saturating_sub(2 + 1 + names.min(12)).max(4);
        let status_width = statuses.min(room).min(inner.saturating_sub(2 + 1 + 6));
        let name_width = inner.saturating_sub(
            2 + if status_width > 0 {
                status_width + 1
            } else {
                0
            },
        );
        let lines: Vec<Line> = rows
            .iter()
            .map(|s| {
                let chosen = app.streams.get(app.selected).is_some_and(|c| c.id == s.id);
                let marker = app.view.markers.get(&s.name).copied().unwrap_or(' ');
                let name = middle(&s.name, name_width);
                let mut spans = vec![
                    Span::raw(if chosen { "▶" } else { " " }),
                    Span::styled(marker.to_string(), THEME.alarm),
                    Span::raw(format!("{name:<name_width$}")),
                ];
                if let Some(status) = app.view.statuses.get(&s.name).filter(|_| status_width > 0) {
                    let cleaned = clean(status, usize::MAX);
                    let status = if cleaned.chars().count() > status_width {
                        clean(status, status_width - 1)
                    } else {
                        cleaned
                    };
                    spans.push(Span::raw(" "));
                    spans.push(Span::styled(format!("{status:<status_width$}"), THEME.dim));
                }
                let line = Line::from(spans);
                if chosen {
                    line.style(THEME.cursor)
                } else {
                    line
                }
            })
            .collect();
        let title = match &app.stream_filter {
            Some(filter) => {
                let count = format!(" Streams {}/{} ", app.listed.len(), app.streams.len());
                let room = inner.saturating_sub(count.chars().count() + 1).max(4);
                format!("{count}{} ", middle(filter.text(), room))
            }
            None => format!(" Streams {} ", app.streams.len()),
        };
        let mut lines = lines;
        if app.listed.is_empty() {
            lines.push(Line::styled(" none match now", THEME.dim));
        }
        Paragraph::new(lines)
            .block(super::block(title, false))
            .render(area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selected_stream_stays_on_screen() {
        assert_eq!(first_row(0, 10), 0);
        assert_eq!(first_row(9, 10), 0);
        assert_eq!(first_row(10, 10), 1);
        assert_eq!(first_row(5, 0), 5);
    }
}
