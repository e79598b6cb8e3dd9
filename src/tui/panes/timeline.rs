//! The timeline: how densely events fall over time, and where the snapshots (◆ full,
//! ◇ delta, × stale), the mark (M) and the cursor (▲) are on the same time axis.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::model::group;
use crate::text::clean;
use crate::tui::app::{App, Scope};
use crate::tui::theme::THEME;

const LEVELS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The column of time `ts` on a bar `width` cells wide spanning `span`.
pub fn column((first, last): (i64, i64), width: u16, ts: i64) -> u16 {
    let top = i128::from(width.max(1) - 1);
    let span = i128::from(last - first).max(1);
    let at = (i128::from(ts) - i128::from(first)) * top / span;
    u16::try_from(at.clamp(0, top)).unwrap_or(0)
}

/// The time at the middle of column `col` (what a click there means).
pub fn time_at((first, last): (i64, i64), width: u16, col: u16) -> i64 {
    let top = i128::from(width.max(1) - 1).max(1);
    let at = i128::from(first) + i128::from(last - first) * i128::from(col) / top;
    i64::try_from(at).unwrap_or(last)
}

/// A density cell: empty for none, at least the lowest bar for one event.
pub fn level(count: u64, max: u64) -> char {
    if count == 0 || max == 0 {
        return LEVELS[0];
    }
    let step = (count * 8).div_ceil(max).clamp(1, 8);
    LEVELS[usize::try_from(step).unwrap_or(8)]
}

/// The timeline bar.
pub struct TimelinePane<'a> {
    /// The model.
    pub app: &'a App,
}

impl Widget for TimelinePane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let (Some(stream), Some(density)) = (app.stream(), app.view.density.as_ref()) else {
            super::block(" Timeline ".into(), false).render(area, buf);
            return;
        };
        let width = area.width.saturating_sub(2).max(1);
        let cells = usize::from(width);
        let max = density.counts.iter().copied().max().unwrap_or(0);
        let cursor_ts = app.view.event.as_ref().map_or(density.span.0, |e| e.ts);
        let cursor = usize::from(column(density.span, width, cursor_ts));
        let bars: Vec<Span> = (0..cells)
            .map(|i| {
                let c = level(density.counts.get(i).copied().unwrap_or(0), max);
                if i == cursor {
                    Span::styled(c.to_string(), THEME.cursor)
                } else {
                    Span::raw(c.to_string())
                }
            })
            .collect();
        let mut marks = vec![('─', None); cells];
        for s in &app.view.snapshots {
            let style = (s.glyph == '×').then_some(THEME.alarm);
            marks[usize::from(column(density.span, width, s.ts))] = (s.glyph, style);
        }
        if let Some(ts) = app.view.fork_ts {
            marks[usize::from(column(density.span, width, ts))] = ('Y', Some(THEME.mark));
        }
        if let Some(ts) = app.view.mark_ts {
            marks[usize::from(column(density.span, width, ts))] = ('M', Some(THEME.mark));
        }
        marks[cursor] = ('▲', Some(THEME.cursor));
        let marks: Vec<Span> = marks
            .into_iter()
            .map(|(c, style)| Span::styled(c.to_string(), style.unwrap_or_default()))
            .collect();
        let what = match app.shown().scope {
            Scope::Stream => format!(
                "{} · {} events{}",
                clean(&stream.name, 40),
                group(stream.head),
                app.view
                    .marks
                    .fork
                    .as_ref()
                    .map_or(String::new(), |f| format!(
                        " · Y forks from {} at v{}",
                        clean(&f.parent, 40),
                        group(f.version)
                    ))
            ),
            Scope::All => format!(
                "all streams · {} events",
                group(app.streams.iter().map(|s| s.head).sum())
            ),
        };
        let title = format!(
            " Timeline  {what} · {} → {} ",
            crate::time::format(density.span.0),
            crate::tui::app::relative(density.span.1 - density.span.0)
        );
        Paragraph::new(vec![Line::from(bars), Line::from(marks)])
            .block(super::block(title, false))
            .render(area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_map_to_columns_and_back() {
        let span = (1_000, 2_000);
        assert_eq!(column(span, 11, 1_000), 0);
        assert_eq!(column(span, 11, 1_500), 5);
        assert_eq!(column(span, 11, 2_000), 10);
        assert_eq!(column(span, 11, 9_999), 10, "clamped");
        assert_eq!(time_at(span, 11, 5), 1_500);
        assert_eq!(column((5, 5), 10, 5), 0, "one instant");
    }

    #[test]
    fn density_shows_one_event_and_scales_to_the_busiest_cell() {
        assert_eq!(level(0, 10), ' ');
        assert_eq!(level(1, 1_000), '▁');
        assert_eq!(level(500, 1_000), '▄');
        assert_eq!(level(1_000, 1_000), '█');
    }
}
