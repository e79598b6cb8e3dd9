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
    title_rules(&mut app, &args.db.db);
    app.message = note.or(app.message);
    tui::run(app)
}

/// Opens the debugger on a database (used by `demo`).
pub(super) fn open_path(db: &std::path::Path, stream: Option<&str>) -> Result<()> {
    let (width, height) = terminal_size();
    let start = Start {
        stream: stream.map(str::to_string),
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
    title_rules(&mut app, &db.db);
    app.message = note.or(app.message);
    tui::run(app)
}

/// Summarises events with the user's title programs for the database, if any; programs
/// that cannot be read are said on the status line, and the rows show the keys changed.
fn title_rules(app: &mut App, db: &std::path::Path) {
    match crate::summary::rules_for(db) {
        Ok(rules) if rules.is_empty() => {}
        Ok(rules) => app.set_title_rules(rules),
        Err(e) => {
            app.message = Some(crate::text::safe_message(&format!(
                "{e}; the rows show the keys each event changed"
            )));
        }
    }
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
                "--size {text:?}: the {what} must be from {} to {max} (the layout needs {}x{})",
                if what == "width" {
                    crate::tui::ui::MIN_SIZE.0
                } else {
                    crate::tui::ui::MIN_SIZE.1
                },
                crate::tui::ui::MIN_SIZE.0,
                crate::tui::ui::MIN_SIZE.1
            );
        }
        Ok(u16::try_from(n)?)
    };
    let size = (
        side(w, "width", MAX_FRAME.0)?,
        side(h, "height", MAX_FRAME.1)?,
    );
    let min = crate::tui::ui::MIN_SIZE;
    if size.0 < min.0 || size.1 < min.1 {
        anyhow::bail!(
            "--size {text}: the debugger's layout needs at least {}x{}",
            min.0,
            min.1
        );
    }
    Ok(size)
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
    /// Only these panes, one box under another, comma-separated: streams, timeline, events,
    /// state, diff, event, status (a frame pinned on one stream's panes does not change when
    /// other streams grow).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    panes: Vec<String>,
    /// The panes as JSON (name, title, lines), for assertions.
    #[arg(long, conflicts_with = "check")]
    json: bool,
    /// Compare the frame with FILE (a frame pinned before): exit 0 if the same, 1 with a
    /// unified diff if not (or if FILE is missing).
    #[arg(long, value_name = "FILE")]
    check: Option<std::path::PathBuf>,
    /// With --check: write the frame to FILE where it differs, and exit 0.
    #[arg(long, requires = "check")]
    update: bool,
}

pub(super) fn render(args: &RenderArgs) -> Result<std::process::ExitCode> {
    use std::process::ExitCode;
    let (width, height) = frame_size(&args.size)?;
    for name in &args.panes {
        if !crate::tui::PANES.contains(&name.as_str()) {
            anyhow::bail!(
                "--panes: no pane {name:?} (the panes: {})",
                crate::tui::PANES.join(", ")
            );
        }
    }
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
    title_rules(&mut app, &args.db.db);
    for key in crate::tui::keymap::script(args.keys.as_deref().unwrap_or(""))
        .map_err(anyhow::Error::msg)?
    {
        if let Some(action) = crate::tui::keymap::action_for(&app, key) {
            app.dispatch(action);
        }
    }
    // The frame is drawn once: whole, or cut into the panes asked for.
    let panes: Vec<crate::tui::PaneText> = if args.json || !args.panes.is_empty() {
        crate::tui::render_panes(&app, width, height)?
            .into_iter()
            .filter(|p| args.panes.is_empty() || args.panes.iter().any(|n| n == p.name))
            .collect()
    } else {
        Vec::new()
    };
    let mut out = stdout();
    if args.json {
        // The event rows whole (a row on screen may cut its summary).
        let at = app.shown();
        let events: Vec<serde_json::Value> = app
            .view
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                serde_json::json!({
                    "seq": e.seq,
                    "stream": e.stream,
                    "version": e.version,
                    "type": e.kind,
                    "time": crate::time::format(e.ts),
                    "summary": app.view.titles.get(i).cloned().unwrap_or_default(),
                    "cursor": match at.scope {
                        crate::tui::app::Scope::Stream => e.version == at.cursor,
                        crate::tui::app::Scope::All => Some(e.seq) == at.seq,
                    },
                })
            })
            .collect();
        let json = serde_json::json!({
            "size": {"width": width, "height": height},
            "stream": app.stream().map(|s| s.name.clone()),
            "cursor": app.cursor,
            "mark": app.mark,
            "panes": panes,
            "events": events,
        });
        super::output::json(&mut out, &json)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let text = if args.panes.is_empty() {
        tui::render_text(&app, width, height)?
    } else {
        let mut text = String::new();
        for pane in &panes {
            for line in &pane.drawn {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    };
    let Some(file) = &args.check else {
        write!(out, "{text}")?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    };
    let pinned = match std::fs::read_to_string(file) {
        Ok(pinned) => Some(pinned),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    if pinned.as_deref() == Some(text.as_str()) {
        writeln!(out, "{}: the frame is the same", file.display())?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.update {
        let partial = file.with_extension("partial");
        std::fs::write(&partial, &text)
            .and_then(|()| std::fs::rename(&partial, file))
            .with_context(|| format!("writing {}", file.display()))?;
        let what = if pinned.is_some() {
            "updated"
        } else {
            "written"
        };
        writeln!(out, "{}: {what}", file.display())?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    match pinned {
        None => writeln!(
            out,
            "{}: no such file; --update writes the frame there",
            file.display()
        )?,
        Some(pinned) => {
            let name = file.display().to_string();
            let diff = similar::TextDiff::from_lines(&pinned, &text);
            write!(
                out,
                "{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header(&name, "rendered now")
            )?;
            writeln!(
                out,
                "{name}: the frame differs (--update writes the new one there)"
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::from(1))
}
