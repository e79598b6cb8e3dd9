//! The event list: only the rows on screen are loaded. One stream shows versions; all
//! streams show seq, stream and version.

use std::collections::HashMap;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};

use crate::model::group;
use crate::text::clean;
use crate::tui::app::{App, Pane, Scope};
use crate::tui::theme::THEME;

/// The event list.
pub struct EventsPane<'a> {
    /// The model.
    pub app: &'a App,
}

impl Widget for EventsPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let at = app.shown();
        let snapshots: HashMap<u64, char> = app
            .view
            .snapshots
            .iter()
            .map(|s| (s.version, s.glyph))
            .collect();
        let current = app.stream().map(|s| s.name.as_str());
        // Types line up in a column as wide as the longest on screen (at most 24).
        let kind_width = app
            .view
            .events
            .iter()
            .map(|e| clean(&e.kind, 24).chars().count())
            .max()
            .unwrap_or(0);
        let lines: Vec<Line> = app
            .view
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let here = match at.scope {
                    Scope::Stream => e.version == at.cursor,
                    Scope::All => Some(e.seq) == at.seq,
                };
                let lead = if here { "▶" } else { " " };
                let text = match at.scope {
                    Scope::Stream => format!(
                        "{lead}{:>6} {} {:<kind_width$} {}",
                        group(e.version),
                        snapshots.get(&e.version).copied().unwrap_or(' '),
                        clean(&e.kind, 24),
                        app.time_text(e.ts),
                    ),
                    Scope::All => {
                        let glyph = if Some(e.stream.as_str()) == current {
                            snapshots.get(&e.version).copied().unwrap_or(' ')
                        } else {
                            ' '
                        };
                        format!(
                            "{lead}#{:<6} {} {:<kind_width$} {}/v{} {}",
                            e.seq,
                            glyph,
                            clean(&e.kind, 24),
                            clean(&e.stream, 24),
                            e.version,
                            app.time_text(e.ts),
                        )
                    }
                };
                let text = match app.view.titles.get(i).filter(|t| !t.is_empty()) {
                    Some(title) => format!("{text}  {title}"),
                    None => text,
                };
                let line = Line::from(text);
                if here { line.style(THEME.cursor) } else { line }
            })
            .collect();
        let mut title = match at.scope {
            Scope::Stream => " Events ".to_string(),
            Scope::All => " Events · all by seq ".to_string(),
        };
        if let Some(filter) = &at.filter {
            title.push_str(&format!("· type {} ", clean(filter, 30)));
        }
        Paragraph::new(lines)
            .block(super::block(title, app.focus == Pane::Events))
            .render(area, buf);
    }
}
