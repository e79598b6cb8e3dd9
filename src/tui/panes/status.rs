//! The status line: position, how the state was obtained, modes, and the last message or
//! the hints; the prompt when one is open.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::model::group;
use crate::text::clean;
use crate::tui::app::{App, Pane, SPEEDS, Scope};
use crate::tui::theme::THEME;

/// The status line.
pub struct StatusLine<'a> {
    /// The model.
    pub app: &'a App,
}

impl Widget for StatusLine<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        if let Some(prompt) = &app.prompt {
            // The text around the cursor, the cursor a reversed cell (or a bar at the end);
            // text the prompt opened with is shown selected until a key keeps or replaces it.
            let text: Vec<char> = prompt.text().chars().collect();
            let at = prompt.input.cursor().min(text.len());
            let before: String = text[..at].iter().collect();
            let after: String = text[at..].iter().collect();
            let typed = if prompt.selected {
                THEME.cursor
            } else {
                ratatui::style::Style::default()
            };
            let mut spans = vec![
                Span::raw(format!(" {}", prompt.kind.lead())),
                Span::styled(clean(&before, 200), typed),
            ];
            let mut rest = after.chars();
            match rest.next() {
                Some(under) => {
                    spans.push(Span::styled(clean(&under.to_string(), 8), THEME.cursor));
                    spans.push(Span::styled(clean(rest.as_str(), 200), typed));
                }
                None => spans.push(Span::styled("▏", THEME.cursor)),
            }
            let line = Line::from(spans);
            // The syntax, after the text where it fits.
            let used = line.width() + 3;
            let hint = prompt.kind.hint();
            let line = if !hint.is_empty() && used + hint.chars().count() <= usize::from(area.width)
            {
                let mut line = line;
                line.push_span(Span::styled(format!("   {hint}"), THEME.dim));
                line
            } else {
                line
            };
            Paragraph::new(line).render(area, buf);
            return;
        }
        let at = app.shown();
        let head = at.stream.map_or(0, |(_, head)| head);
        let mut text = format!(" v{}/{}", group(at.cursor), group(head));
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
        if let Some(mark) = at.mark {
            text.push_str(&format!(" · mark v{}", group(mark)));
        }
        if at.scope == Scope::All {
            text.push_str(" · all streams");
        }
        if app.follow {
            text.push_str(" · following");
        }
        if app.playing {
            text.push_str(&format!(" · ▶ {}/s", SPEEDS[app.speed]));
        }
        if let Some(job) = &app.job {
            let (done, total) = job.progress();
            text.push_str(&format!(" · verifying {done}/{total}"));
        }
        if app.zoomed {
            text.push_str(" · zoomed");
        }
        let hint = match &app.message {
            Some(message) => Span::styled(clean(message, 200), THEME.changed),
            None => {
                let keys: &[&str] = match app.focus {
                    Pane::Events => &[
                        ": go",
                        "/ search",
                        "Enter view",
                        "t filter",
                        "m mark",
                        "Tab state",
                        "o zoom",
                        "p play",
                        "s snap",
                    ],
                    Pane::State => &[
                        "j/k move",
                        "Space fold",
                        "Enter view",
                        "/ find",
                        "b blame",
                        "y copy",
                        "o zoom",
                        "Esc events",
                    ],
                };
                // The keys that fit, in order; `? help` always (a read-only database leaves
                // out the keys that write).
                let room = usize::from(area.width)
                    .saturating_sub(text.chars().count() + 3 + "? help".len());
                let mut shown = String::new();
                for key in keys {
                    if app.read_only && *key == "s snap" {
                        continue;
                    }
                    let key = if app.zoomed && *key == "o zoom" {
                        "o restore"
                    } else {
                        key
                    };
                    if shown.chars().count() + key.chars().count() + 2 > room {
                        break;
                    }
                    shown.push_str(key);
                    shown.push_str("  ");
                }
                shown.push_str("? help");
                Span::styled(shown, THEME.dim)
            }
        };
        Paragraph::new(Line::from(vec![Span::raw(text), Span::raw("   "), hint])).render(area, buf);
    }
}
