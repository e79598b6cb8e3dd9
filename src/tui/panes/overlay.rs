//! Overlays over the panes: the help (generated from the key table), lists to jump from
//! (blame, snapshots, verify findings), the compaction plan to confirm, and verify's
//! progress.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::text::clean;
use crate::tui::app::{App, Listing, Overlay};
use crate::tui::keymap::help_lines;
use crate::tui::theme::THEME;

/// A box of `width`×`height` in the middle of `area`, rounding up and left (ratatui's
/// `Rect::centered` rounds an odd margin the other way, which would move every frame).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let (width, height) = (width.min(area.width), height.min(area.height));
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// Draws the overlay on top, if any.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    match &app.overlay {
        Some(Overlay::Help(top)) => help(frame, *top, area),
        Some(Overlay::List(list)) => listing(frame, list, area),
        Some(Overlay::Viewer(viewer)) => view(frame, viewer, area),
        None => {
            if let Some(job) = &app.job {
                let (done, total) = job.progress();
                let popup = centered(area, 44, 3);
                frame.render_widget(Clear, popup);
                frame.render_widget(
                    Paragraph::new(format!(" {done} of {total} streams verified"))
                        .block(Block::bordered().title(" Verifying … ")),
                    popup,
                );
            }
        }
    }
}

fn help(frame: &mut Frame, top: usize, area: Rect) {
    const KEYS: usize = 10;
    let mut lines: Vec<Line> = Vec::new();
    let mut scope = None;
    for (s, keys, text) in help_lines() {
        if scope != Some(s) {
            if scope.is_some() {
                lines.push(Line::raw(""));
            }
            lines.push(Line::styled(s.heading(), THEME.changed));
            scope = Some(s);
        }
        lines.push(Line::raw(format!(" {keys:<KEYS$} {text}")));
    }
    // As many columns of at least 40 cells as fit; what does not fit scrolls (j/k).
    let inner_width = usize::from(area.width.saturating_sub(2));
    let columns = (inner_width / 40).clamp(1, 3);
    let rows = usize::from(area.height.saturating_sub(2)).max(1);
    let per = lines.len().div_ceil(columns).min(rows);
    let top = top.min(lines.len().saturating_sub(per * columns));
    let width = columns * (inner_width / columns).min(58) + 2;
    let popup = centered(
        area,
        u16::try_from(width).unwrap_or(u16::MAX),
        u16::try_from(per + 2).unwrap_or(u16::MAX),
    );
    let more = top + per * columns < lines.len();
    let title = if more || top > 0 {
        " Keys (j/k scroll · any other key closes) "
    } else {
        " Keys (any key closes) "
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(Block::bordered().title(title), popup);
    let inner = crate::tui::ui::inner(popup);
    let column_width = inner.width / u16::try_from(columns).unwrap_or(1);
    for (i, chunk) in lines[top..].chunks(per).take(columns).enumerate() {
        let column = Rect {
            x: inner.x + column_width * u16::try_from(i).unwrap_or(0),
            y: inner.y,
            width: column_width,
            height: inner.height,
        };
        frame.render_widget(Paragraph::new(chunk.to_vec()), column);
    }
}

/// The first row shown so that `selected` is on screen in `height` rows.
pub fn list_top(selected: usize, height: usize) -> usize {
    selected.saturating_sub(height.saturating_sub(1))
}

fn listing(frame: &mut Frame, list: &Listing, area: Rect) {
    let popup = centered(area, area.width * 9 / 10, area.height * 8 / 10);
    let inner_height = usize::from(popup.height.saturating_sub(2));
    let room = inner_height.saturating_sub(list.header.len() + 1);
    let top = list_top(list.selected, room);
    let mut lines: Vec<Line> = list
        .header
        .iter()
        .map(|h| Line::styled(clean(h, 300), THEME.dim))
        .collect();
    if list.rows.is_empty() {
        lines.push(Line::styled("(none)", THEME.dim));
    }
    for (i, row) in list.rows.iter().enumerate().skip(top).take(room) {
        let lead = if i == list.selected { "▶ " } else { "  " };
        let pick = match row.pick {
            Some(true) => "[x] ",
            Some(false) => "[ ] ",
            None if list.rows.iter().any(|r| r.pick.is_some()) => "    ",
            None => "",
        };
        let mut line = Line::raw(format!("{lead}{pick}{}", row.text));
        if row.alarm {
            line = line.style(THEME.alarm);
        }
        if i == list.selected {
            line = line.patch_style(THEME.cursor);
        }
        lines.push(line);
    }
    while lines.len() < inner_height.saturating_sub(1) {
        lines.push(Line::raw(""));
    }
    lines.push(Line::styled(list.hint.clone(), THEME.dim));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(list.title.clone())),
        popup,
    );
}

/// The viewer: every line of the text, over all but the status line, scrolled both ways or
/// wrapped, with where it is in the title and its keys at the bottom.
fn view(frame: &mut Frame, viewer: &crate::tui::app::Viewer, area: Rect) {
    let body = Rect {
        height: area.height.saturating_sub(1),
        ..area
    };
    let rows = usize::from(body.height.saturating_sub(3)).max(1);
    let lines: Vec<Line> = viewer
        .text
        .lines()
        .map(|l| Line::raw(clean(l, usize::MAX)))
        .collect();
    let total = lines.len();
    let title = format!(
        "{}· lines {}–{} of {} ",
        viewer.title,
        (viewer.top + 1).min(total),
        (viewer.top + rows).min(total),
        total
    );
    let mut paragraph = Paragraph::new(lines);
    paragraph = if viewer.wrap {
        paragraph
            .wrap(ratatui::widgets::Wrap { trim: false })
            .scroll((u16::try_from(viewer.top).unwrap_or(u16::MAX), 0))
    } else {
        paragraph.scroll((
            u16::try_from(viewer.top).unwrap_or(u16::MAX),
            u16::try_from(viewer.left).unwrap_or(u16::MAX),
        ))
    };
    let inner = crate::tui::ui::inner(body);
    let text_area = Rect {
        height: inner.height.saturating_sub(1),
        ..inner
    };
    let hint = Rect {
        y: inner.y + inner.height.saturating_sub(1),
        height: 1.min(inner.height),
        ..inner
    };
    let more = total.saturating_sub(viewer.top + rows);
    let keys = format!(
        "{}j/k scroll · h/l sideways · w {} · v $PAGER · E $EDITOR · Esc closes",
        if more > 0 {
            format!("{more} more · ")
        } else {
            String::new()
        },
        if viewer.wrap { "no wrap" } else { "wrap" }
    );
    frame.render_widget(Clear, body);
    frame.render_widget(Block::bordered().title(title), body);
    frame.render_widget(paragraph, text_area);
    frame.render_widget(Paragraph::new(Line::styled(keys, THEME.dim)), hint);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_is_centred_and_never_larger_than_the_area() {
        let area = Rect::new(0, 0, 80, 24);
        assert_eq!(centered(area, 40, 10), Rect::new(20, 7, 40, 10));
        assert_eq!(centered(area, 200, 50), area);
        assert_eq!(list_top(30, 10), 21);
    }
}
