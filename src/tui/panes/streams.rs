//! The stream list, with markers: `…` the newest checkpoint looks unfinished, `!` stale
//! snapshots, verify findings, or a newest state that cannot be built.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::text::clean;
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
        let height = usize::from(area.height.saturating_sub(2));
        let first = first_row(app.selected, height);
        let lines: Vec<Line> = app
            .streams
            .iter()
            .enumerate()
            .skip(first)
            .take(height)
            .map(|(i, s)| {
                let chosen = i == app.selected;
                let marker = app.view.markers.get(&s.name).copied().unwrap_or(' ');
                let spans = vec![
                    Span::raw(if chosen { "▶" } else { " " }),
                    Span::styled(marker.to_string(), THEME.alarm),
                    Span::raw(clean(&s.name, 60)),
                ];
                let line = Line::from(spans);
                if chosen {
                    line.style(THEME.cursor)
                } else {
                    line
                }
            })
            .collect();
        let title = format!(" Streams {} ", app.streams.len());
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
