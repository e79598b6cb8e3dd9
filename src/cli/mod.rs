//! The command line: clap definitions and one module per group of subcommands. Every
//! subcommand is a thin shell over library functions; tables for people, `--json` for scripts.

mod check;
mod demo;
mod maintain;
mod output;
mod read;
mod signals;
mod tui;
mod write;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::Engine;
use crate::model::Target;
use crate::store::OpenMode;

/// rewind — a time-travel debugger for event-sourced and checkpointed application state.
///
/// Exit codes: 0 ok, 1 a check failed, 2 usage or input error.
#[derive(Debug, Parser)]
#[command(name = "rewind", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the demo database (once), show what it holds, and open it in the debugger.
    Demo(demo::DemoArgs),
    /// Open a database in the interactive debugger.
    Open(tui::OpenArgs),
    /// Print the frame the debugger would show (at a size, position, mark, after keys).
    Render(tui::RenderArgs),
    /// Create a database (or migrate an existing one).
    Init(write::InitArgs),
    /// Append one event to a stream.
    Append(write::AppendArgs),
    /// Import events and settings from a JSONL file (what export writes), all in one
    /// transaction; events already there are skipped.
    Import(write::ImportArgs),
    /// Export events, reducers, policies and labelled snapshots as JSONL (what import reads).
    Export(read::ExportArgs),
    /// List streams.
    Streams(read::StreamsArgs),
    /// List the events of a stream (or of all streams by seq); with their titles where the
    /// source's mapping gives a title program ([display] title).
    Log(read::LogArgs),
    /// Print the state of a stream at a version, time or seq.
    State(read::StateArgs),
    /// Show what changed between two versions of a stream.
    Diff(read::DiffArgs),
    /// List the events that changed a JSON path, newest first.
    Blame(read::BlameArgs),
    /// Take a snapshot of a stream (manual), optionally labelled.
    Snapshot(write::SnapshotArgs),
    /// List snapshots.
    Snapshots(read::SnapshotsArgs),
    /// Show or set the reducer of the database or of a stream, or of a source whose state needs
    /// your rules (eventsourcing, a Redux export of actions, your own JSON events), kept in your
    /// settings for it; --channel sets a LangGraph DeltaChannel's fold.
    Reducer(write::ReducerArgs),
    /// Show or set how the debugger summarises each event: a jq program over {state, event}
    /// per stream (name or glob) or per event type, kept in your settings for the database
    /// (default: the top-level keys the event changed).
    Title(write::TitleArgs),
    /// List the formats rewind reads, and how each is recognised.
    Sources(read::SourcesArgs),
    /// Print a first mapping file guessed from an SQLite database's schema and first rows,
    /// to read its events with --map (the source is only read).
    Map(read::MapArgs),
    /// List the mirrors sources are read through (source, size, last change); prune those
    /// whose source is gone.
    Mirrors(read::MirrorsArgs),
    /// Check every snapshot against a replay, the event chain and the file; exit 1 on any problem.
    Verify(check::VerifyArgs),
    /// Events, snapshots and their sizes per stream and in total.
    Stats(check::StatsArgs),
    /// Drop snapshots by rules (keep last N, every Kth, per hour/day/month, ladder; drop
    /// stale, before a version or time, over a byte cap); --dry-run prints the plan.
    Compact(check::CompactArgs),
    /// Show or set the snapshot policy of the database or of a stream.
    Policy(maintain::PolicyArgs),
    /// Run the policy once (snapshots due by time, expiry, retention), or keep running it.
    Maintain(maintain::MaintainArgs),
    /// Move events older than a horizon, up to a snapshot that covers them, to DB.archive.
    Archive(check::ArchiveArgs),
    /// Write a consistent copy of a database and its archive, even while another process
    /// appends.
    Backup(check::BackupArgs),
    /// Replace a database and its archive with a backup's, as one pair, after verifying the
    /// backup (refused while another process has the database open).
    Restore(check::RestoreArgs),
    /// Print a shell's completion script: `rewind completions bash > ~/.local/share/bash-completion/completions/rewind`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff): `rewind man | man -l -`.
    Man,
}

/// `rewind completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// The database argument shared by every subcommand that reads or writes one.
#[derive(Debug, Args)]
pub struct DbArg {
    /// The database file, or a source read through its mirror (a LangGraph checkpoint file, a
    /// Python eventsourcing file, a Temporal history, a Redux DevTools export, your own events
    /// as JSON or JSON Lines: `rewind sources` lists the formats).
    #[arg(value_name = "DB")]
    pub db: PathBuf,
    /// The source's format, where detecting it is not wanted (`rewind sources` lists them).
    #[arg(long, value_name = "NAME")]
    pub format: Option<String>,
    /// How to read the source: for another program's SQLite database or a PostgreSQL URL, a
    /// mapping file (TOML) or a shipped mapping's name (`seed-000`); for a JSON source, which
    /// fields of its objects are an event's parts:
    /// `stream=FIELD,type=FIELD,data=FIELD,time=FIELD[:s|ms|us|ns],id=FIELD` (dotted paths
    /// reach into objects; parts left out are found by their usual names). Kept in your
    /// settings for the source, so later commands need it no more.
    #[arg(long, value_name = "MAPPING")]
    pub map: Option<String>,
    /// The time (RFC 3339) a mapping's unfinished marker is judged at, such as a lease
    /// expired by then (default: the newest time the source records, never the clock).
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse)]
    pub now: Option<crate::model::Micros>,
}

/// Keeps what the command line says of a source (`--map`) in the user's settings for it,
/// where its mirror is brought up to date from.
pub(crate) fn remember(db: &DbArg) -> Result<()> {
    let Some(spec) = &db.map else {
        return Ok(());
    };
    // A field spec names fields (`stream=…`); anything else is a mapping file or a shipped
    // mapping's name.
    if !spec.contains('=') {
        let server = crate::source::postgres::url_of(&db.db).is_some();
        let dialect = if server {
            crate::source::mapping::Dialect::Postgres
        } else {
            crate::source::mapping::Dialect::Sqlite
        };
        let mapping =
            crate::source::mapping::Mapping::load_for(spec, dialect).map_err(anyhow::Error::msg)?;
        let mut head = [0u8; 16];
        let sqlite = std::fs::File::open(&db.db)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok()
            && &head == b"SQLite format 3\0";
        if !sqlite && !server {
            anyhow::bail!(
                "--map {spec:?}: a mapping file reads another program's SQLite database or PostgreSQL server, and {} is neither (for events of your own as JSON, name their fields: --map stream=FIELD,type=FIELD,…)",
                db.db.display()
            );
        }
        let kept = match crate::source::mapping::SHIPPED
            .iter()
            .find(|(name, _)| *name == spec)
        {
            Some((name, _)) => (*name).to_owned(),
            None => std::path::Path::new(spec)
                .canonicalize()
                .map_or_else(|_| mapping.origin.clone(), |p| p.display().to_string()),
        };
        let mut settings = crate::source::settings::load(&db.db)?;
        if settings.mapping.as_ref() != Some(&kept) {
            settings.mapping = Some(kept);
            crate::source::settings::save(&db.db, &settings)?;
        }
        return Ok(());
    }
    if db.format.as_deref().is_some_and(|f| f != "json") {
        anyhow::bail!("--map is for a JSON source of your own events (--format json)");
    }
    let mapping = crate::source::json_events::Mapping::parse(spec)
        .map_err(|e| anyhow::anyhow!("--map {spec:?}: {e}"))?;
    let mut settings = crate::source::settings::load(&db.db)?;
    if settings.map.as_ref() != Some(&mapping) {
        settings.map = Some(mapping);
        crate::source::settings::save(&db.db, &settings)?;
    }
    Ok(())
}

/// `--json` for scripts.
#[derive(Debug, Args, Clone, Copy)]
pub struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Where in a stream: `--at`, `--at-time`, `--at-seq`, or the head.
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// A version (0 is the empty state before the first event).
    #[arg(long, value_name = "VERSION", group = "target")]
    pub at: Option<u64>,
    /// The last event at or before this RFC 3339 time.
    #[arg(long, value_name = "TIME", group = "target", value_parser = crate::time::parse)]
    pub at_time: Option<crate::model::Micros>,
    /// The stream's last event at or before this global seq (the database's own, or the
    /// source's: an eventsourcing notification id; a source without one refuses it).
    #[arg(long, value_name = "SEQ", group = "target")]
    pub at_seq: Option<i64>,
    /// The event a source names by this id: a LangGraph checkpoint id, a Temporal event id,
    /// an eventsourcing notification id.
    #[arg(long, value_name = "ID", group = "target")]
    pub at_id: Option<String>,
}

/// `hour`, `day` or `month`, as a bucket (clap lists the three in `--help`).
fn bucket_parser() -> impl clap::builder::TypedValueParser<Value = crate::model::Bucket> {
    use crate::model::Bucket;
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["hour", "day", "month"]).map(|name| {
        match name.as_str() {
            "hour" => Bucket::Hour,
            "day" => Bucket::Day,
            _ => Bucket::Month,
        }
    })
}

impl TargetArgs {
    /// The target in `stream`: a source's own ids and order are looked up in its mirror.
    fn target(&self, engine: &Engine, stream: &str) -> Result<Target> {
        let store = engine.store();
        let format = store.meta("source.format")?;
        if let Some(id) = &self.at_id {
            let Some(field) = store.meta(crate::source::mirror::ID_FIELD)? else {
                anyhow::bail!(
                    "--at-id names an event by its source's id, and this is a rewind database, not a source: use --at VERSION or --at-seq SEQ"
                );
            };
            let info = store.require_stream(stream)?;
            return match store.version_with_meta(&info, &field, id)? {
                Some(version) => Ok(Target::Version(version)),
                None => anyhow::bail!(
                    "stream {stream:?} has no event whose {field} is {id:?} (this source is {})",
                    format.as_deref().unwrap_or("unknown")
                ),
            };
        }
        if let (Some(seq), Some(format)) = (self.at_seq, &format) {
            if let Some(field) = store.meta(crate::source::mirror::SEQ_FIELD)? {
                let info = store.require_stream(stream)?;
                return Ok(Target::Version(
                    store.version_at_or_before_meta(&info, &field, seq)?,
                ));
            }
            anyhow::bail!(
                "--at-seq needs a global order, and a {format} source has none: use --at-id ID (its own ids) or --at VERSION"
            );
        }
        Ok(match (self.at, self.at_time, self.at_seq) {
            (Some(v), _, _) => Target::Version(v),
            (_, Some(t), _) => Target::Time(t),
            (_, _, Some(s)) => Target::Seq(s),
            _ => Target::Head,
        })
    }
}

/// The arguments with `open` put in front of a bare database path, so that `rewind DB` opens
/// the debugger as `rewind open DB` does: an existing path, a URL, or a word with `/` or `.`
/// opens. A word within two edits of a subcommand is taken for a mistyped one: the error
/// suggests it.
pub fn with_default_command(
    mut args: Vec<std::ffi::OsString>,
) -> std::result::Result<Vec<std::ffi::OsString>, String> {
    use clap::CommandFactory;
    let Some(first) = args.get(1).and_then(|a| a.to_str()) else {
        return Ok(args);
    };
    let command = Cli::command();
    let names: Vec<String> = command
        .get_subcommands()
        .flat_map(|c| {
            std::iter::once(c.get_name().to_string()).chain(c.get_all_aliases().map(str::to_string))
        })
        .chain(["help".to_string()])
        .collect();
    if names.iter().any(|n| n == first) || first.starts_with('-') {
        return Ok(args);
    }
    let path_like =
        std::path::Path::new(first).exists() || first.contains("://") || first.contains(['/', '.']);
    if !path_like {
        let mut near: Vec<(usize, &String)> = names
            .iter()
            .map(|n| (edits(first, n), n))
            .filter(|(d, _)| *d <= 2)
            .collect();
        near.sort();
        if let Some((_, name)) = near.first() {
            return Err(format!(
                "no command {first:?} and no such file; did you mean `rewind {name}`? (`rewind --help` lists the commands)"
            ));
        }
    }
    args.insert(1, "open".into());
    Ok(args)
}

/// The Levenshtein distance between two words, in characters.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Open(args) => tui::open(&args),
        Command::Render(args) => return tui::render(&args),
        Command::Init(args) => write::init(&args),
        Command::Append(args) => write::append(&args),
        Command::Import(args) => write::import(&args),
        Command::Export(args) => read::export(&args),
        Command::Streams(args) => read::streams(&args),
        Command::Sources(args) => read::sources(&args),
        Command::Map(args) => read::map(&args),
        Command::Mirrors(args) => read::mirrors(&args),
        Command::Log(args) => read::log(&args),
        Command::State(args) => read::state(&args),
        Command::Diff(args) => read::diff(&args),
        Command::Blame(args) => read::blame(&args),
        Command::Snapshot(args) => write::snapshot(&args),
        Command::Snapshots(args) => read::snapshots(&args),
        Command::Reducer(args) => write::reducer(&args),
        Command::Title(args) => write::title(&args),
        Command::Verify(args) => return check::verify(&args),
        Command::Stats(args) => check::stats(&args),
        Command::Compact(args) => check::compact(&args),
        Command::Policy(args) => maintain::policy(&args),
        Command::Maintain(args) => return maintain::maintain(&args),
        Command::Archive(args) => check::archive(&args),
        Command::Backup(args) => check::backup(&args),
        Command::Restore(args) => check::restore(&args),
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            let mut out = output::stdout();
            clap_complete::generate(args.shell, &mut command, "rewind", &mut out);
            std::io::Write::flush(&mut out)?;
            Ok(())
        }
        Command::Man => {
            use clap::CommandFactory;
            let mut out = output::stdout();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            std::io::Write::flush(&mut out)?;
            Ok(())
        }
    }?;
    Ok(ExitCode::SUCCESS)
}

/// Opens a database for a command; read commands never create one. A source (another
/// program's history) is read through its mirror.
fn open(db: &DbArg, mode: OpenMode) -> Result<Engine> {
    if mode == OpenMode::Create && crate::source::postgres::url_of(&db.db).is_some() {
        anyhow::bail!(
            "{}: a server source is never written; rewind reads it through a mirror (import into a file instead)",
            crate::source::mirror::canonical_text(&db.db)
        );
    }
    let path = if mode == OpenMode::Create {
        db.db.clone()
    } else {
        database(db)?
    };
    // The store's errors already name the file.
    let engine = Engine::open(&path, mode)?;
    if let Some(note) = engine.store().note() {
        eprintln!("rewind: note: {}", safe_message(note));
    }
    Ok(engine)
}

/// The database to read for a path: the path itself, or, for a source rewind mirrors, its
/// mirror brought up to date (with a note on stderr when it had to be made again).
pub(crate) fn database(db: &DbArg) -> Result<std::path::PathBuf> {
    remember(db)?;
    let (path, format) = (&db.db, db.format.as_deref());
    match crate::source::mirror::resolve_showing(path, format, &sync_progress)? {
        Some(mirrored) => {
            if let Some(note) = &mirrored.note {
                eprintln!("rewind: note: {}", safe_message(note));
            }
            Ok(mirrored.path)
        }
        None => Ok(path.to_path_buf()),
    }
}

/// A mirror being made, on a terminal: `mirroring the source: 41,000 of 100,000 read` (its
/// checkpoints, events, rows or files, as the source has them), cleared when done; nothing
/// when stderr is not a terminal.
pub(crate) fn sync_progress(done: u64, total: u64) {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return;
    }
    if done >= total {
        eprint!("\r\x1b[K");
    } else {
        eprint!(
            "\rmirroring the source: {} of {} read",
            crate::model::group(done),
            crate::model::group(total)
        );
    }
}

pub use output::safe_message;

/// Whether an error is a closed stdout (e.g. `rewind log … | head`), which is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
