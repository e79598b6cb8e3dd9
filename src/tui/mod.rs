//! The interactive debugger. One model ([`app::App`]), one [`action::Action`] enum, one
//! `update`, one pure [`ui::render`], and keys as data ([`keymap::BINDINGS`]). Terminal I/O
//! lives only in [`run`]; [`render_text`] draws the same frame into a buffer for
//! `rewind render` and the tests. Never runs SQL: it asks the engine and the store's
//! browsing queries.

pub mod action;
pub mod app;
pub mod jobs;
pub mod keymap;
pub mod memory;
pub mod panes;
pub mod theme;
pub mod tree;
pub mod ui;

use std::io::Write;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind, MouseButton, MouseEvent,
    MouseEventKind,
};
use ratatui::crossterm::execute;

use action::Action;
use app::{App, Effect, SPEEDS};

/// How long the loop waits for input while idle before it looks for appended events.
const IDLE: Duration = Duration::from_millis(500);

/// How often a running job's progress is redrawn.
const PROGRESS: Duration = Duration::from_millis(100);

/// Where the loop's input comes from: the terminal, or a script of bursts in tests.
pub trait Input {
    /// Waits up to `timeout` for input; `Ok(false)` when none came in that time.
    fn poll(&mut self, timeout: Duration) -> std::io::Result<bool>;
    /// The next input, after [`Input::poll`] said there is one.
    fn read(&mut self) -> std::io::Result<Event>;
}

/// The terminal's input, through crossterm.
pub struct TerminalInput {
    /// Set by SIGTERM or SIGHUP (a `kill`, the terminal closed): the debugger stops at its
    /// next look for input, giving the terminal back first.
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TerminalInput {
    /// Input from the terminal, catching SIGTERM and SIGHUP from now on (a second one ends the
    /// process at once, as if uncaught).
    fn new() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        #[cfg(unix)]
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
            let _ = signal_hook::flag::register_conditional_shutdown(
                signal,
                128 + signal,
                std::sync::Arc::clone(&stop),
            );
            let _ = signal_hook::flag::register(signal, std::sync::Arc::clone(&stop));
        }
        Self { stop }
    }
}

impl Input for TerminalInput {
    fn poll(&mut self, timeout: Duration) -> std::io::Result<bool> {
        // In slices, so a signal is seen within a tenth of a second.
        let until = std::time::Instant::now() + timeout;
        loop {
            if self.stop.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "stopped by a signal (SIGTERM or SIGHUP); the terminal is restored",
                ));
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            let slice = left.min(Duration::from_millis(100));
            // What crossterm has read already first; then the terminal itself is watched
            // for the slice: a terminal that is gone (its other side closed: a tmux pane
            // killed, an ssh connection dropped) ends the debugger, where crossterm would
            // read its end-of-file for ever.
            if event::poll(Duration::ZERO)? {
                return Ok(true);
            }
            #[cfg(unix)]
            let waited = wait_on_stdin(slice)?;
            #[cfg(not(unix))]
            let waited = None;
            if waited == Some(true) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the terminal is gone (its input closed)",
                ));
            }
            // Where standard input was not watched, crossterm waits the slice itself.
            let rest = if waited.is_some() {
                Duration::ZERO
            } else {
                slice
            };
            if event::poll(rest)? {
                return Ok(true);
            }
            if left.is_zero() {
                return Ok(false);
            }
        }
    }

    fn read(&mut self) -> std::io::Result<Event> {
        event::read()
    }
}

/// Waits up to `wait` for standard input, where it is the terminal, to have something;
/// whether the terminal hung up. `None` where standard input is not the terminal (nothing
/// was waited for).
#[cfg(unix)]
fn wait_on_stdin(wait: Duration) -> std::io::Result<Option<bool>> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdin = std::io::stdin();
    if !std::io::IsTerminal::is_terminal(&stdin) {
        return Ok(None);
    }
    let timeout = Timespec {
        tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(wait.subsec_nanos()),
    };
    let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
    match poll(&mut fds, Some(&timeout)) {
        Ok(_) => {
            Ok(Some(fds[0].revents().intersects(
                PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL,
            )))
        }
        // A signal (a resize, SIGTERM) cut the wait short: the caller looks again.
        Err(rustix::io::Errno::INTR) => Ok(Some(false)),
        Err(e) => Err(e.into()),
    }
}

/// Runs the debugger in the terminal until the user quits. The terminal is restored on
/// quit, on error and on panic (ratatui's init installs the panic hook).
pub fn run(mut app: App) -> anyhow::Result<()> {
    app.copy_note = clipboard_note();
    // The prompt history and view choices of the last run.
    let memory = memory::path();
    if let Some(file) = &memory {
        let (remembered, note) = memory::load(file);
        remembered.apply(&mut app);
        if note.is_some() && app.message.is_none() {
            app.message = note.map(|n| crate::text::safe_message(&n));
        }
    }
    let mut terminal = ratatui::init();
    // A helper thread's panic is reported to whoever waits for it (a step then does the
    // work itself, a job reports failure): it must not restore the terminal under a
    // debugger that goes on, nor print over its frame.
    let restore = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let helper = std::thread::current()
            .name()
            .is_some_and(|name| name.starts_with(crate::step::THREAD_PREFIX));
        if !helper {
            restore(info);
        }
    }));
    // If a reducer is stuck inside one operation the watchdog ends the process: the
    // terminal is given back first.
    crate::budget::on_exit(Some(Box::new(|| {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
        ratatui::restore();
    })));
    let outcome = (|| -> anyhow::Result<()> {
        execute!(std::io::stdout(), EnableMouseCapture)?;
        let size = terminal.size()?;
        app.dispatch(Action::Resize(size.width, size.height));
        drive(&mut app, &mut TerminalInput::new(), |app| {
            terminal.draw(|frame| ui::render(frame, app))?;
            let effects: Vec<Effect> = app.effects.drain(..).collect();
            for effect in effects {
                match effect {
                    Effect::Copy(text) => {
                        let mut out = std::io::stdout();
                        out.write_all(osc52(&text).as_bytes())?;
                        out.flush()?;
                    }
                    Effect::Page { text, editor } => {
                        // The terminal is the program's until it exits, then the debugger's
                        // again, drawn whole.
                        execute!(std::io::stdout(), DisableMouseCapture)?;
                        ratatui::restore();
                        let said = page(&text, editor);
                        ratatui::crossterm::terminal::enable_raw_mode()?;
                        execute!(
                            std::io::stdout(),
                            ratatui::crossterm::terminal::EnterAlternateScreen,
                            ratatui::crossterm::terminal::Clear(
                                ratatui::crossterm::terminal::ClearType::All
                            ),
                            EnableMouseCapture
                        )?;
                        // A new terminal draws every cell again (clearing the old one would
                        // ask the terminal where its cursor is, which some never answer).
                        terminal = ratatui::Terminal::new(
                            ratatui::backend::CrosstermBackend::new(std::io::stdout()),
                        )?;
                        app.message = Some(crate::text::safe_message(&said));
                        terminal.draw(|frame| ui::render(frame, app))?;
                    }
                }
            }
            Ok(())
        })
    })();
    crate::budget::on_exit(None);
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    if let Some(file) = &memory
        && let Err(e) = memory::save(file, &memory::Memory::of(&app))
    {
        eprintln!(
            "rewind: {}: the prompt history and view choices were not kept ({e})",
            file.display()
        );
    }
    outcome
}

/// Runs `$PAGER` (default `less`) or `$EDITOR` (default `vi`) on a read-only copy of
/// `text` in a file of its own, removed afterwards; says how it went.
fn page(text: &str, editor: bool) -> String {
    let (var, default) = if editor {
        ("EDITOR", "vi")
    } else {
        ("PAGER", "less")
    };
    let program = std::env::var(var)
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| default.to_string());
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = std::env::temp_dir().join(format!("rewind-{}-{n}.json", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            let mut permissions = f.metadata()?.permissions();
            permissions.set_readonly(true);
            f.set_permissions(permissions)
        });
    if let Err(e) = written {
        return format!("{}: {e}; nothing was shown", file.display());
    }
    // As a shell runs it, so that `less -R` or `code --wait` work; the file is its argument.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{program} \"$1\""))
        .arg("sh")
        .arg(&file)
        .status();
    let _ = std::fs::remove_file(&file);
    match status {
        Ok(s) if s.success() && editor => {
            format!("back from {program}: it had a copy, so edits are not kept")
        }
        Ok(s) if s.success() => format!("back from {program}"),
        Ok(s) => format!("{program} ({var}) ended with {s}"),
        Err(e) => format!("{program} ({var}) could not be run: {e}"),
    }
}

/// Why the terminal may never receive what `y` copies (OSC 52), if it may not: tmux passes
/// it on only with `set-clipboard` on, GNU screen not at all.
pub fn clipboard_note() -> Option<String> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("TMUX") {
        let option = std::process::Command::new("tmux")
            .args(["show-options", "-gv", "set-clipboard"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        return match option.as_deref() {
            Some("on" | "external") => None,
            Some(value) => Some(format!(
                "tmux's set-clipboard is {value}, so the terminal may not get it (tmux set -g set-clipboard on); Y writes it to a file"
            )),
            None => Some(
                "inside tmux the terminal may not get it (tmux set -g set-clipboard on); Y writes it to a file".into(),
            ),
        };
    }
    if set("STY") {
        return Some(
            "GNU screen does not pass the clipboard on to the terminal; Y writes it to a file"
                .into(),
        );
    }
    None
}

/// The debugger's loop: load what changed and draw, wait for input (or for the next play
/// tick, job progress or look for appends when idle), then apply every input already
/// queued before drawing again: a held key moves the cursor as far as it was asked to, and
/// the state is rebuilt once, not per key. Ends when the app quits.
pub fn drive(
    app: &mut App,
    input: &mut impl Input,
    mut draw: impl FnMut(&mut App) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut next_tick = Instant::now();
    while !app.quit {
        app.load();
        draw(app)?;
        let wait = if app.playing {
            next_tick.saturating_duration_since(Instant::now())
        } else if app.busy() {
            PROGRESS
        } else {
            IDLE
        };
        if !input.poll(wait)? {
            if app.playing {
                app.apply(Action::PlayTick);
                let every = Duration::from_secs(1) / SPEEDS[app.speed];
                next_tick = Instant::now() + every;
            } else if app.busy() {
                app.apply(Action::Poll);
            } else {
                app.apply(Action::Refresh);
            }
            continue;
        }
        loop {
            handle(app, input.read()?);
            if app.quit || !input.poll(Duration::ZERO)? {
                break;
            }
        }
    }
    Ok(())
}

fn handle(app: &mut App, input: Event) {
    let action = match input {
        Event::Key(key) if key.kind != KeyEventKind::Release => keymap::action_for(app, key),
        Event::Mouse(mouse) => mouse_action(mouse),
        Event::Resize(width, height) => Some(Action::Resize(width, height)),
        _ => None,
    };
    if let Some(action) = action {
        app.apply(action);
    }
}

/// What a mouse event asks for: click the timeline to jump, drag to scrub, the wheel
/// scrolls the pane under it.
pub fn mouse_action(mouse: MouseEvent) -> Option<Action> {
    let (x, y) = (mouse.column, mouse.row);
    match mouse.kind {
        MouseEventKind::Down(MouseButton::Left) => Some(Action::Click(x, y)),
        MouseEventKind::Drag(MouseButton::Left) => Some(Action::Drag(x, y)),
        MouseEventKind::ScrollDown => Some(Action::ScrollDown(x, y)),
        MouseEventKind::ScrollUp => Some(Action::ScrollUp(x, y)),
        _ => None,
    }
}

/// The OSC 52 sequence that puts `text` on the terminal's clipboard.
pub fn osc52(text: &str) -> String {
    format!("\x1b]52;c;{}\x07", base64(text.as_bytes()))
}

/// Standard base64 with padding (OSC 52 wants it; not worth a dependency).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
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

/// The panes a frame is made of, by the names `render --panes` takes, in drawing order.
pub const PANES: [&str; 7] = [
    "streams", "timeline", "events", "state", "diff", "event", "status",
];

/// One pane of a drawn frame, as text: its name, the title on its border, and its lines
/// (inside the border; the status line has none).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaneText {
    /// Its name in [`PANES`].
    pub name: &'static str,
    /// The title on its top border, without the border.
    pub title: String,
    /// Its lines, right-trimmed, without the border.
    pub lines: Vec<String>,
    /// The whole box as drawn, right-trimmed lines.
    #[serde(skip)]
    pub drawn: Vec<String>,
}

/// Draws one frame and cuts it into its panes (empty where the size is below the layout's
/// minimum, which the caller refuses first).
pub fn render_panes(app: &App, width: u16, height: u16) -> anyhow::Result<Vec<PaneText>> {
    let mut terminal = Terminal::new(TestBackend::new(width, height))?;
    terminal.draw(|frame| ui::render(frame, app))?;
    let buffer = terminal.backend().buffer();
    let a = ui::layout((width, height), app.zoomed.then_some(app.focus));
    let rects = [
        a.streams, a.timeline, a.events, a.state, a.diff, a.detail, a.status,
    ];
    let row = |y: u16, x0: u16, x1: u16| -> String {
        let mut line = String::new();
        for x in x0..x1 {
            line.push_str(buffer[(x, y)].symbol());
        }
        line.trim_end().to_string()
    };
    Ok(PANES
        .iter()
        .zip(rects)
        .map(|(name, r)| {
            let drawn: Vec<String> = (r.y..r.y + r.height)
                .map(|y| row(y, r.x, r.x + r.width))
                .collect();
            let (title, lines) = if *name == "status" {
                (String::new(), drawn.clone())
            } else {
                let top = drawn.first().cloned().unwrap_or_default();
                let title = top
                    .trim_matches(|c| matches!(c, '┌' | '┐' | '─' | ' '))
                    .to_string();
                let lines = (r.y + 1..(r.y + r.height).saturating_sub(1))
                    .map(|y| row(y, r.x + 1, (r.x + r.width).saturating_sub(1)))
                    .collect();
                (title, lines)
            };
            PaneText {
                name,
                title,
                lines,
                drawn,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded, "{plain}");
        }
        assert_eq!(osc52("hi"), "\x1b]52;c;aGk=\x07");
    }
}
