//! The event list: only the rows on screen are loaded. One stream shows versions; all
//! streams show seq, stream and version.

use std::collections::HashMap;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};

use crate::model::group;
use crate::text::clean;
use crate::tui::app::{App, Pane, Scope, Times};
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
        // The time sits at the right in a column as wide as the widest on screen; the
        // summary fills what the row has left between the type and the time. Absolute
        // times leave out their date and fraction where the pane is narrow (the event pane
        // has them whole).
        let inner = usize::from(area.width.saturating_sub(2));
        let times: Vec<String> = app
            .view
            .events
            .iter()
            .map(|e| match app.times {
                Times::Absolute => {
                    let full = crate::time::format(e.ts);
                    let cut = if inner >= 72 { 0..19 } else { 11..19 };
                    full.get(cut).map_or(full.clone(), |t| t.replace('T', " "))
                }
                Times::Relative => app.time_text(e.ts),
            })
            .collect();
        let time_width = times.iter().map(|t| t.chars().count()).max().unwrap_or(0);
        // Each row's head: cursor, position, snapshot glyph, type (and stream in all).
        let heads: Vec<(bool, String)> = app
            .view
            .events
            .iter()
            .map(|e| {
                let here = match at.scope {
                    Scope::Stream => e.version == at.cursor,
                    Scope::All => Some(e.seq) == at.seq,
                };
                let lead = if here { "▶" } else { " " };
                let head = match at.scope {
                    Scope::Stream => format!(
                        "{lead}{:>6} {} {:<kind_width$}",
                        group(e.version),
                        snapshots.get(&e.version).copied().unwrap_or(' '),
                        clean(&e.kind, 24),
                    ),
                    Scope::All => {
                        let glyph = if Some(e.stream.as_str()) == current {
                            snapshots.get(&e.version).copied().unwrap_or(' ')
                        } else {
                            ' '
                        };
                        format!(
                            "{lead}#{:<6} {} {:<kind_width$} {}/v{}",
                            e.seq,
                            glyph,
                            clean(&e.kind, 24),
                            clean(&e.stream, 24),
                            e.version,
                        )
                    }
                };
                (here, head)
            })
            .collect();
        let head_width = heads
            .iter()
            .map(|(_, h)| h.chars().count())
            .max()
            .unwrap_or(0);
        // The summaries line up after the widest head, in what the row has left; where
        // that is too little for both, the summary (what the event did) stays and the time
        // goes (the event pane has it).
        let summarised = app.view.titles.iter().any(|t| !t.is_empty());
        let mut room = inner.saturating_sub(head_width + time_width + 2);
        let time_width = if summarised && room < 12 {
            room = inner.saturating_sub(head_width + 1);
            0
        } else {
            time_width
        };
        let lines: Vec<Line> = heads
            .into_iter()
            .enumerate()
            .map(|(i, (here, head))| {
                let summary = app.view.titles.get(i).map_or("", String::as_str);
                let text = if time_width == 0 {
                    format!("{head:<head_width$} {}", fit(summary, room))
                } else if room < 4 {
                    format!("{head:<head_width$} {:>time_width$}", times[i])
                } else {
                    format!(
                        "{head:<head_width$} {:<room$} {:>time_width$}",
                        fit(summary, room),
                        times[i]
                    )
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

/// Text cut to `width` characters, with `…` where it was cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}
