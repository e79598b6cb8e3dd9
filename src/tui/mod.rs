//! The interactive debugger. One model ([`app::App`]), one [`action::Action`] enum, one
//! `update`, one pure [`ui::render`], and keys as data ([`keymap::BINDINGS`]). Terminal I/O
//! lives only in [`run`]; [`render_text`] draws the same frame into a buffer for
//! `rewind render` and the tests. Never runs SQL: it asks the engine.

pub mod action;
pub mod app;
pub mod json_lines;
pub mod keymap;
pub mod ui;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self, Event, KeyEventKind};

use app::App;

/// Runs the debugger in the terminal until the user quits. The terminal is restored on
/// quit, on error and on panic (ratatui's init installs the panic hook).
pub fn run(mut app: App) -> anyhow::Result<()> {
    let mut terminal = ratatui::init();
    let outcome = (|| -> anyhow::Result<()> {
        while !app.quit {
            terminal.draw(|frame| ui::render(frame, &app))?;
            // Idle twice a second: look for events other processes appended.
            if !event::poll(std::time::Duration::from_millis(500))? {
                app.dispatch(action::Action::Refresh);
                continue;
            }
            match event::read()? {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    if let Some(action) = keymap::action_for(&app, key) {
                        app.dispatch(action);
                    }
                }
                Event::Resize(width, height) => app.dispatch(action::Action::Resize(width, height)),
                _ => {}
            }
        }
        Ok(())
    })();
    ratatui::restore();
    outcome
}

/// The frame the TUI would show at `width`×`height`, as plain text lines without trailing
/// spaces: what `rewind render` prints and CI compares.
pub fn render_text(app: &App, width: u16, height: u16) -> anyhow::Result<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height))?;
    terminal.draw(|frame| ui::render(frame, app))?;
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        let mut line = String::new();
        for x in 0..width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    Ok(out)
}
