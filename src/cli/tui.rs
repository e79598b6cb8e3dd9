//! Subcommands of the terminal UI: open (interactive) and render (one frame as text, for CI).

use std::io::Write;

use anyhow::{Context, Result};
use clap::Args;

use super::DbArg;
use super::output::stdout;
use crate::store::OpenMode;
use crate::tui::{self, app::App, app::Start};

fn terminal_size() -> (u16, u16) {
    ratatui::crossterm::terminal::size().unwrap_or((120, 40))
}

/// `rewind open`.
#[derive(Debug, Args)]
pub struct OpenArgs {
    #[command(flatten)]
    db: DbArg,
    /// The stream to show first.
    #[arg(long)]
    stream: Option<String>,
    /// The version to start at (default: the newest).
    #[arg(long)]
    at: Option<u64>,
    /// Disable the keys that write (snapshots); a file that cannot be written opens so anyway.
    #[arg(long)]
    read_only: bool,
}

/// What the debugger opens: the engine, a note for the status line, and the source when the
/// database is its mirror.
type Opened = (
    crate::Engine,
    Option<String>,
    Option<crate::tui::app::Followed>,
);

/// Opens a database for the debugger: read-only when asked, or, with a message for the
/// status line, when the file (or its folder, or the medium) cannot be written. A source
/// opens its mirror, which the debugger follows.
fn open_engine(db: &super::DbArg, read_only: bool) -> Result<Opened> {
    super::remember(db)?;
    let mirrored = crate::source::mirror::resolve_showing(
        &db.db,
        db.format.as_deref(),
        &super::sync_progress,
    )?;
    let source = mirrored.as_ref().map(|_| crate::tui::app::Followed {
        path: db.db.clone(),
        format: db.format.clone(),
    });
    let synced = mirrored.as_ref().and_then(|m| m.note.clone());
    let path = mirrored.map_or_else(|| db.db.clone(), |m| m.path);
    let db = &path;
    let engine = if read_only {
        crate::Engine::open(db, OpenMode::ReadOnly)
    } else {
        match crate::Engine::open(db, OpenMode::Existing) {
            Err(crate::Error::NotWritable(_)) => {
                let engine = crate::Engine::open(db, OpenMode::ReadOnly)?;
                let note = engine.store().note().map(str::to_string);
                return Ok((
                    engine,
                    Some(note.unwrap_or_else(|| {
                        "opened read-only: the file cannot be written (the writing keys are off)"
                            .into()
                    })),
                    source,
                ));
            }
            other => other,
        }
    }?;
    let note = engine.store().note().map(str::to_string).or(synced);
    Ok((engine, note, source))
}

/// The debugger draws on a terminal and reads keys from it: without one it would draw into
/// a pipe and wait for keys that never come.
fn need_terminal(db: &std::path::Path) -> Result<()> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        return Ok(());
    }
    anyhow::bail!(
        "the debugger needs a terminal (standard input and output are not one); \
         `rewind render {}` prints its frame without one",
        db.display()
    )
}

pub(super) fn open(args: &OpenArgs) -> Result<()> {
    let (engine, note, source) = open_engine(&args.db, args.read_only)?;
    need_terminal(&args.db.db)?;
    let (width, height) = terminal_size();
    let start = Start {
        stream: args.stream.clone(),
        at: args.at,
        width,
        height,
        now: args.db.now,
        ..Start::default()
    };
    let mut app = App::new(engine, &start)?;
    app.source = source;
    app.message = note.or(app.message);
    tui::run(app)
}

/// Opens the debugger on a database (used by `demo`).
pub(super) fn open_path(db: &std::path::Path) -> Result<()> {
    let (width, height) = terminal_size();
    let start = Start {
        width,
        height,
        ..Start::default()
    };
    let db = super::DbArg {
        db: db.to_path_buf(),
        format: None,
        map: None,
        now: None,
    };
    let (engine, note, _) = open_engine(&db, false)?;
    let mut app = App::new(engine, &start)?;
    app.message = note.or(app.message);
    tui::run(app)
}

/// The largest frame `render` draws: far beyond any terminal, small enough to hold in memory.
const MAX_FRAME: (u16, u16) = (1_000, 1_000);

/// Reads `--size WIDTHxHEIGHT`, each side from 1 to the largest frame.
fn frame_size(text: &str) -> Result<(u16, u16)> {
    let (w, h) = text
        .split_once('x')
        .with_context(|| format!("--size {text:?} is not WIDTHxHEIGHT, e.g. 120x40"))?;
    let side = |part: &str, what: &str, max: u16| -> Result<u16> {
        let n: u64 = part
            .parse()
            .with_context(|| format!("--size {text:?}: the {what} {part:?} is not a number"))?;
        if n == 0 || n > u64::from(max) {
            anyhow::bail!(
                "--size {text:?}: the {what} must be from 1 to {max} (the layout needs {}x{}; \
                 a smaller frame says it is too small)",
                crate::tui::ui::MIN_SIZE.0,
                crate::tui::ui::MIN_SIZE.1
            );
        }
        Ok(u16::try_from(n)?)
    };
    Ok((
        side(w, "width", MAX_FRAME.0)?,
        side(h, "height", MAX_FRAME.1)?,
    ))
}

/// `rewind render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    db: DbArg,
    /// The stream to show (default: the first).
    #[arg(long)]
    stream: Option<String>,
    /// The version at the cursor (default: the newest).
    #[arg(long)]
    at: Option<u64>,
    /// A version to set the mark at (the diff is then against it).
    #[arg(long)]
    mark: Option<u64>,
    /// The terminal size to draw, WIDTHxHEIGHT.
    #[arg(long, default_value = "120x40", value_name = "WxH")]
    size: String,
    /// Keys to press first, e.g. "j j m <PgDn> G" (names as in the help overlay).
    #[arg(long, value_name = "KEYS")]
    keys: Option<String>,
}

pub(super) fn render(args: &RenderArgs) -> Result<()> {
    let (width, height) = frame_size(&args.size)?;
    let (engine, _, source) = open_engine(&args.db, true)?;
    let start = Start {
        stream: args.stream.clone(),
        at: args.at,
        mark: args.mark,
        width,
        height,
        deterministic: true,
        now: args.db.now,
    };
    let mut app = App::new(engine, &start)?;
    // The source is not followed (a frame is drawn once), but `V` checks against it.
    app.source = source;
    for key in crate::tui::keymap::script(args.keys.as_deref().unwrap_or(""))
        .map_err(anyhow::Error::msg)?
    {
        if let Some(action) = crate::tui::keymap::action_for(&app, key) {
            app.dispatch(action);
        }
    }
    let mut out = stdout();
    write!(out, "{}", tui::render_text(&app, width, height)?)?;
    out.flush()?;
    Ok(())
}
