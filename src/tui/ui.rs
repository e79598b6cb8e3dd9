//! The root render: a pure function of the model.
//!
//! ```text
//! ┌ Streams ─┐┌ Timeline ──────────────────────────┐
//! │▶order-42 │└────────────────────────────────────┘
//! │ order-43 │┌ Events ──────────┐┌ State @ v12 ────┐
//! │          ││▶ 12 Paid         ││ "status": …      │
//! │          │└──────────────────┘└──────────────────┘
//! │          │┌ Diff v11 → v12 ─────────────────────┐
//! └──────────┘└────────────────────────────────────┘
//!  status line
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::app::{App, Overlay};
use super::keymap::BINDINGS;
use crate::model::group;
use crate::text::clean;

/// The smallest terminal the layout fits.
pub const MIN_SIZE: (u16, u16) = (60, 16);

const CURSOR: Style = Style::new().add_modifier(Modifier::REVERSED);
const CHANGED: Style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
const ADDED: Style = Style::new().fg(Color::Green);
const REMOVED: Style = Style::new().fg(Color::Red);
const DIM: Style = Style::new().fg(Color::DarkGray);

/// Draws one frame.
pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let text = format!(
            "too small: {}×{} (need {}×{})",
            area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
        );
        frame.render_widget(Paragraph::new(text), area);
        return;
    }
    let [body, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let [streams, right] =
        Layout::horizontal([Constraint::Length(20), Constraint::Min(1)]).areas(body);
    let [timeline, middle, diff] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(3),
        Constraint::Length(10),
    ])
    .areas(right);
    let [events, state] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(middle);
    render_streams(frame, app, streams);
    render_timeline(frame, app, timeline);
    render_events(frame, app, events);
    render_state(frame, app, state);
    render_diff(frame, app, diff);
    render_status(frame, app, status);
    if app.overlay == Some(Overlay::Help) {
        render_help(frame, area);
    }
}

fn render_streams(frame: &mut Frame, app: &App, area: Rect) {
    let height = usize::from(area.height.saturating_sub(2));
    let first = app.selected.saturating_sub(height.saturating_sub(1));
    let lines: Vec<Line> = app
        .streams
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, s)| {
            let marker = if i == app.selected { "▶" } else { " " };
            let line = Line::from(format!("{marker}{}", clean(&s.name, 40)));
            if i == app.selected {
                line.style(CURSOR)
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Streams ")),
        area,
    );
}

fn render_timeline(frame: &mut Frame, app: &App, area: Rect) {
    let Some(stream) = app.stream() else {
        frame.render_widget(Block::bordered().title(" Timeline "), area);
        return;
    };
    let width = usize::from(area.width.saturating_sub(2)).max(1);
    let at = |version: u64| -> usize {
        if stream.head == 0 {
            return 0;
        }
        usize::try_from(u128::from(version) * (width as u128 - 1) / u128::from(stream.head))
            .unwrap_or(0)
    };
    let mut cells = vec!['─'; width];
    for (version, glyph) in &app.view.snapshots {
        cells[at(*version).min(width - 1)] = *glyph;
    }
    if let Some(mark) = app.mark {
        cells[at(mark).min(width - 1)] = 'M';
    }
    let cursor = at(app.cursor).min(width - 1);
    let spans: Vec<Span> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == cursor {
                Span::styled("█", CURSOR)
            } else {
                Span::raw(c.to_string())
            }
        })
        .collect();
    let title = format!(
        " Timeline  {} · v1..{} ",
        clean(&stream.name, 40),
        group(stream.head)
    );
    frame.render_widget(
        Paragraph::new(Line::from(spans)).block(Block::bordered().title(title)),
        area,
    );
}

fn render_events(frame: &mut Frame, app: &App, area: Rect) {
    let snapshots: std::collections::HashMap<u64, char> =
        app.view.snapshots.iter().copied().collect();
    let lines: Vec<Line> = app
        .view
        .events
        .iter()
        .map(|e| {
            let glyph = snapshots.get(&e.version).copied().unwrap_or(' ');
            let text = format!(
                "{} {:>6} {} {}",
                if e.version == app.cursor { "▶" } else { " " },
                group(e.version),
                glyph,
                clean(&e.kind, 40)
            );
            let line = Line::from(text);
            if e.version == app.cursor {
                line.style(CURSOR)
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Events ")),
        area,
    );
}

fn render_state(frame: &mut Frame, app: &App, area: Rect) {
    let height = usize::from(area.height.saturating_sub(2));
    // Keep the first changed line in view.
    let first_changed = app
        .view
        .lines
        .iter()
        .position(|l| !l.path.is_empty() && app.view.changed.contains(&l.path));
    let top = first_changed.map_or(0, |i| i.saturating_sub(height / 3));
    let lines: Vec<Line> = app
        .view
        .lines
        .iter()
        .skip(top)
        .take(height)
        .map(|l| {
            let text = format!("{}{}", "  ".repeat(l.depth), l.text);
            let changed = !l.path.is_empty() && app.view.changed.contains(&l.path);
            if changed {
                Line::styled(text, CHANGED)
            } else {
                Line::from(text)
            }
        })
        .collect();
    let title = format!(" State @ v{} ", group(app.cursor));
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

fn render_diff(frame: &mut Frame, app: &App, area: Rect) {
    let title = format!(
        " Diff v{} → v{} ",
        group(app.view.diff_from),
        group(app.cursor)
    );
    let lines: Vec<Line> = if app.text_diff {
        app.view
            .text_diff
            .lines()
            .map(|l| {
                let style = match l.chars().next() {
                    Some('+') if !l.starts_with("+++") => ADDED,
                    Some('-') if !l.starts_with("---") => REMOVED,
                    _ => Style::new(),
                };
                Line::styled(clean(l, 300), style)
            })
            .collect()
    } else if app.view.changes.is_empty() {
        vec![Line::styled("no changes", DIM)]
    } else {
        app.view
            .changes
            .iter()
            .map(|c| match c {
                crate::diff::Change::Added { path, value } => {
                    Line::styled(clean(&format!("+ {path}  {value}"), 300), ADDED)
                }
                crate::diff::Change::Removed { path, value } => {
                    Line::styled(clean(&format!("- {path}  {value}"), 300), REMOVED)
                }
                crate::diff::Change::Changed { path, from, to } => {
                    Line::styled(clean(&format!("~ {path}  {from} → {to}"), 300), CHANGED)
                }
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

fn render_status(frame: &mut Frame, app: &App, area: Rect) {
    let head = app.stream().map_or(0, |s| s.head);
    let mut text = format!(" v{}/{}", group(app.cursor), group(head));
    if let Some(p) = &app.view.provenance {
        let how = p.describe();
        // The time taken is left out of deterministic frames (`rewind render`).
        let how = if app.deterministic {
            how.split(" · ")
                .filter(|part| !part.ends_with(" ms"))
                .collect::<Vec<_>>()
                .join(" · ")
        } else {
            how
        };
        text.push_str(&format!(" · {}", clean(&how, 120)));
    }
    if let Some(mark) = app.mark {
        text.push_str(&format!(" · mark v{}", group(mark)));
    }
    if app.follow {
        text.push_str(" · following");
    }
    if let Some(prompt) = &app.prompt {
        let lead = match prompt.kind {
            super::app::PromptKind::GoTo => ":",
            super::app::PromptKind::Search => "/",
        };
        let line = Line::from(vec![
            Span::raw(format!(" {lead}{}", clean(&prompt.text, 200))),
            Span::styled("▏", CURSOR),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let hint = match &app.message {
        Some(message) => clean(message, 200),
        None => ": go  / search  m mark  d diff  s snap  ? help  q quit".to_string(),
    };
    let line = Line::from(vec![
        Span::raw(text),
        Span::raw("   "),
        Span::styled(hint, DIM),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

fn render_help(frame: &mut Frame, area: Rect) {
    let lines: Vec<Line> = BINDINGS
        .iter()
        .map(|b| Line::from(format!(" {:<8} {}", b.name, b.help)))
        .collect();
    let height = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_add(2)
        .min(area.height);
    let width = 52.min(area.width);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys (any key closes) ")),
        popup,
    );
}
