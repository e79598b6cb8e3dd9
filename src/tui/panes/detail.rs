//! The event at the cursor: type, seq, time, key, then its data and meta as JSON.

use std::collections::HashSet;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};

use crate::model::group;
use crate::text::clean;
use crate::tui::app::App;
use crate::tui::theme::THEME;
use crate::tui::tree;

/// The selected event.
pub struct DetailPane<'a> {
    /// The model.
    pub app: &'a App,
}

impl Widget for DetailPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let height = usize::from(area.height.saturating_sub(2));
        let Some(event) = &app.view.event else {
            Paragraph::new(Line::styled(
                "version 0: the empty state, no event",
                THEME.dim,
            ))
            .block(super::block(" Event ".into(), false))
            .render(area, buf);
            return;
        };
        let mut lines = vec![Line::from(format!(
            "seq {} · {}",
            event.seq,
            crate::time::format(event.ts)
        ))];
        if let Some(key) = &event.idempotency_key {
            lines.push(Line::from(format!("key {}", clean(key, 80))));
        }
        let none = HashSet::new();
        let json = |label: &str, value: &serde_json::Value, lines: &mut Vec<Line>| {
            let room = height.saturating_sub(lines.len());
            if room == 0 {
                return;
            }
            lines.push(Line::styled(label.to_string(), THEME.dim));
            for row in tree::window(value, &none, 0, room.saturating_sub(1)) {
                lines.push(Line::from(format!(
                    "{}{}",
                    "  ".repeat(row.depth.min(40)),
                    row.text
                )));
            }
        };
        let head = app
            .streams
            .get(app.selected)
            .filter(|s| s.name == event.stream)
            .map(|s| (s.head, s.reducer.as_str()));
        let marks = &app.view.marks;
        if head.is_some_and(|(h, _)| h == event.version) {
            if let Some(pending) = &marks.pending {
                // A mapping's pending rows are work begun and not finished; a LangGraph
                // run's are the writes under its newest checkpoint.
                let label = if marks.mapped {
                    "unfinished work"
                } else {
                    "unfinished run: its pending writes"
                };
                json(label, pending, &mut lines);
            }
            if let Some(attributes) = &marks.attributes {
                let label = match marks.judged_at {
                    Some(at) => format!(
                        "stream attributes · unfinished as of {}",
                        crate::time::format(at)
                    ),
                    _ => "stream attributes".to_owned(),
                };
                json(
                    &label,
                    &serde_json::Value::Object(attributes.clone()),
                    &mut lines,
                );
            }
        }
        // A mirror's difference is its storage; the Diff pane shows the change, so what the
        // source said of the checkpoint comes first.
        if head.is_some_and(|(_, reducer)| reducer == "delta") {
            if let Some(meta) = &event.meta {
                json("meta", meta, &mut lines);
            }
            json("data (the stored difference)", &event.data, &mut lines);
        } else {
            json("data", &event.data, &mut lines);
            if let Some(meta) = &event.meta {
                json("meta", meta, &mut lines);
            }
        }
        let title = format!(
            " Event v{} · {} ",
            group(event.version),
            clean(&event.kind, 40)
        );
        Paragraph::new(lines)
            .block(super::block(title, false))
            .render(area, buf);
    }
}
