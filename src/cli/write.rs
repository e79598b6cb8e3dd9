//! Subcommands that write: init, append, import, snapshot, reducer.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Value, json};

use super::output::{clean, json, stdout};
use super::{DbArg, JsonFlag, TargetArgs, open};
use crate::engine::{AppendOptions, WriteReport};
use crate::error::Error;
use crate::jsonl::export_line;
use crate::model::{NewEvent, group};
use crate::store::OpenMode;

/// `rewind init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    db: DbArg,
    /// The default reducer: merge, patch, replace, delta, temporal, stored or jq:FILTER.
    #[arg(long, value_name = "SPEC")]
    reducer: Option<String>,
}

pub(super) fn init(args: &InitArgs) -> Result<()> {
    let db = &args.db.db;
    let existed = db.exists();
    let archive = crate::store::sidecar(db, ".archive");
    if !existed && archive.exists() {
        anyhow::bail!(
            "{} exists beside {}, which does not: it is the archive of a database that is gone, \
             and a new database would not own it. Move it aside first: mv {} {}.orphan",
            archive.display(),
            db.display(),
            archive.display(),
            archive.display()
        );
    }
    let opened = (|| -> Result<crate::Engine> {
        let mut engine = open(&args.db, OpenMode::Create)?;
        if let Some(spec) = &args.reducer {
            engine.reducer(spec)?;
            engine.store().set_meta("default_reducer", spec)?;
        }
        Ok(engine)
    })();
    let engine = match opened {
        Ok(engine) => engine,
        Err(err) => {
            // A failed init leaves nothing behind that it made.
            if !existed {
                remove_new_database(db);
            }
            return Err(err);
        }
    };
    let verb = if existed {
        "opened existing"
    } else {
        "created"
    };
    let mut out = stdout();
    writeln!(
        out,
        "{verb} {} (schema v{}, default reducer {})",
        args.db.db.display(),
        crate::store::SCHEMA_VERSION,
        engine.store().default_reducer()?
    )?;
    out.flush()?;
    Ok(())
}

/// Removes a database file this command created (and its WAL files) after it failed.
pub(super) fn remove_new_database(db: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(crate::store::sidecar(db, suffix));
    }
}

/// `rewind append`.
#[derive(Debug, Args)]
pub struct AppendArgs {
    #[command(flatten)]
    db: DbArg,
    /// The stream (created with the default reducer if missing).
    stream: String,
    /// The event type, e.g. OrderPaid.
    #[arg(value_name = "TYPE")]
    kind: String,
    /// The event data as JSON, or - to read it from stdin.
    data: String,
    /// Metadata as JSON.
    #[arg(long)]
    meta: Option<String>,
    /// Fail unless the stream is at this version (optimistic concurrency).
    #[arg(long, value_name = "VERSION")]
    expect: Option<u64>,
    /// An idempotency key: retrying with the same key and content returns the original
    /// event; other content under a used key is an error.
    #[arg(long)]
    key: Option<String>,
    /// The event's time (RFC 3339) instead of the database's write time.
    #[arg(long, value_parser = crate::time::parse)]
    time: Option<crate::model::Micros>,
    /// Do not take policy snapshots.
    #[arg(long)]
    no_snapshots: bool,
    #[command(flatten)]
    json: JsonFlag,
}

fn parse_json(what: &str, text: &str) -> Result<Value> {
    crate::jsonl::parse_strict(text).with_context(|| format!("{what} is not valid JSON"))
}

pub(super) fn append(args: &AppendArgs) -> Result<()> {
    let data = if args.data == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading data from stdin")?;
        text
    } else {
        args.data.clone()
    };
    let event = NewEvent {
        stream: args.stream.clone(),
        kind: args.kind.clone(),
        data: parse_json("DATA", &data)?,
        meta: args
            .meta
            .as_deref()
            .map(|m| parse_json("--meta", m))
            .transpose()?,
        time: args.time,
        idempotency_key: args.key.clone(),
    };
    let mut engine = open(&args.db, OpenMode::Create)?;
    let report = engine.append(
        event,
        AppendOptions {
            expected_version: args.expect,
            no_snapshots: args.no_snapshots,
        },
    )?;
    // Committed, not yet checkpointed: what a writer killed now leaves in the log.
    crate::failpoint::point("appended");
    let mut out = stdout();
    let Some(stored) = report.events.first() else {
        return Ok(());
    };
    if args.json.json {
        let mut line = export_line(stored);
        line["duplicate"] = json!(report.duplicates > 0);
        line["snapshots"] = json!(report.snapshots);
        return json(&mut out, &line);
    }
    let what = if report.duplicates > 0 {
        "already appended"
    } else {
        "appended"
    };
    write!(
        out,
        "{what} {} v{} (seq {})",
        clean(&stored.stream, 60),
        group(stored.version),
        stored.seq
    )?;
    if report.snapshots > 0 {
        write!(out, ", snapshot taken")?;
    }
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// `rewind import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    db: DbArg,
    /// A JSONL file, one event per line: {"stream", "type", "data"} with optional "meta",
    /// "time" (RFC 3339), "idempotency_key", and "seq"/"version" as `export` writes them,
    /// and the settings lines `export` writes (rewind, rewind_stream, rewind_snapshot).
    /// - reads stdin.
    file: PathBuf,
    /// Do not take policy snapshots.
    #[arg(long)]
    no_snapshots: bool,
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn import(args: &ImportArgs) -> Result<()> {
    let (reader, source): (Box<dyn BufRead>, String) = if args.file.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), "stdin".into())
    } else {
        let file =
            File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
        (
            Box::new(BufReader::with_capacity(1 << 16, file)),
            args.file.display().to_string(),
        )
    };
    let existed = args.db.db.exists();
    let started = std::time::Instant::now();
    let imported = (|| {
        let mut engine = open(&args.db, OpenMode::Create)?;
        engine
            .import(crate::jsonl::read_lines(reader, &source), args.no_snapshots)
            .with_context(|| {
                format!(
                    "importing {source} into {} (nothing was imported)",
                    args.db.db.display()
                )
            })
    })();
    let report = match imported {
        Ok(report) => report,
        Err(err) => {
            // An import into a new file that fails leaves no empty database behind.
            if !existed {
                remove_new_database(&args.db.db);
            }
            return Err(err);
        }
    };
    print_report(&report, started.elapsed(), args.json.json)
}

fn print_report(report: &WriteReport, took: std::time::Duration, as_json: bool) -> Result<()> {
    let mut out = stdout();
    if as_json {
        return json(&mut out, report);
    }
    writeln!(
        out,
        "imported {} events, {} already there ({} new streams, {} settings applied, {} snapshots) in {:.1} ms",
        group(report.appended),
        group(report.duplicates),
        group(report.created_streams.len() as u64),
        group(report.settings),
        group(report.snapshots),
        took.as_secs_f64() * 1000.0
    )?;
    out.flush()?;
    Ok(())
}

/// `rewind snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    db: DbArg,
    /// The stream.
    #[arg(required_unless_present = "all")]
    stream: Option<String>,
    /// Snapshot the head of every stream that has no snapshot there, in parallel.
    #[arg(long, conflicts_with_all = ["stream", "at", "at_time", "at_seq"])]
    all: bool,
    #[command(flatten)]
    target: TargetArgs,
    /// A label, e.g. "before migration".
    #[arg(long)]
    label: Option<String>,
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn snapshot(args: &SnapshotArgs) -> Result<()> {
    if let Some(label) = &args.label {
        crate::store::check_name("label", label)?;
    }
    let mut out = stdout();
    let Some(stream) = &args.stream else {
        let started = std::time::Instant::now();
        let outcomes = crate::snapshot::all::take_all(&args.db.db, args.label.as_deref())?;
        let failed: Vec<String> = outcomes
            .iter()
            .filter_map(|(name, r)| {
                r.as_ref()
                    .err()
                    .map(|e| format!("{}: {}", clean(name, 60), crate::error::describe(e)))
            })
            .collect();
        if args.json.json {
            let rows: Vec<Value> = outcomes
                .iter()
                .map(|(name, r)| match r {
                    Ok(meta) => json!({"stream": name, "snapshot": meta}),
                    Err(e) => json!({"stream": name, "error": crate::error::describe(e)}),
                })
                .collect();
            json(&mut out, &rows)?;
        } else {
            writeln!(
                out,
                "took {} snapshots in {:.1} ms",
                group((outcomes.len() - failed.len()) as u64),
                started.elapsed().as_secs_f64() * 1000.0
            )?;
            out.flush()?;
        }
        if !failed.is_empty() {
            anyhow::bail!("{} streams failed:\n{}", failed.len(), failed.join("\n"));
        }
        return Ok(());
    };
    let mut engine = open(&args.db, OpenMode::Existing)?;
    let target = args.target.target(&engine, stream)?;
    let meta = engine.take_snapshot(stream, target, "manual", args.label.as_deref())?;
    if args.json.json {
        return json(&mut out, &meta);
    }
    #[allow(clippy::cast_precision_loss)] // display only
    let ms = meta.create_us as f64 / 1000.0;
    writeln!(
        out,
        "snapshot {} v{}: {} bytes of JSON stored in {} bytes ({ms:.1} ms)",
        clean(stream, 60),
        group(meta.version),
        group(meta.raw_size),
        group(meta.stored_size),
    )?;
    out.flush()?;
    Ok(())
}

/// `rewind reducer`.
#[derive(Debug, Args)]
pub struct ReducerArgs {
    #[command(flatten)]
    db: DbArg,
    /// A stream instead of the database default (created if missing when setting).
    #[arg(long)]
    stream: Option<String>,
    /// Set the reducer: merge, patch, replace, delta, temporal, stored or jq:FILTER. It is first tried on every event
    /// of the streams it would apply to (the stream given, or every stream without a reducer
    /// of its own); if any event fails with it (refused, or over its budget), nothing is set.
    #[arg(long, value_name = "SPEC")]
    set: Option<String>,
    /// Set it even if some events fail with it.
    #[arg(long, requires = "set")]
    force: bool,
    /// Remove the stream's own reducer so it uses the database default (with --channel: the
    /// DeltaChannel's, so it shows as its snapshot and the writes since).
    #[arg(long, conflicts_with = "set")]
    clear: bool,
    /// On a LangGraph source: a DeltaChannel whose writes --set folds onto its value, with
    /// append (a list), update (a dict) or jq:FILTER (from {value, write} to the new value).
    /// Kept in your settings for the source.
    #[arg(long, value_name = "NAME", conflicts_with = "stream")]
    channel: Option<String>,
}

pub(super) fn reducer(args: &ReducerArgs) -> Result<()> {
    if args.clear && args.stream.is_none() && args.channel.is_none() {
        anyhow::bail!("--clear needs --stream S (or --channel NAME on a LangGraph source)");
    }
    super::remember(&args.db)?;
    let mirrored = crate::source::mirror::resolve_showing(
        &args.db.db,
        args.db.format.as_deref(),
        &super::sync_progress,
    )?;
    if let Some(mirrored) = mirrored {
        return source_reducer(args, &mirrored);
    }
    if args.channel.is_some() {
        anyhow::bail!(
            "--channel names a DeltaChannel of a LangGraph source; this is a rewind database"
        );
    }
    let mut engine = open(&args.db, OpenMode::Existing)?;
    if let Some(spec) = &args.set {
        engine.reducer(spec)?;
        try_first(&mut engine, spec, args)?;
    }
    let shown = engine.write(|engine| {
        let store = engine.store();
        Ok(match (&args.stream, &args.set, args.clear) {
            (None, Some(spec), _) => {
                store.set_meta("default_reducer", spec)?;
                format!("default reducer set to:\n{}", crate::text::verbatim(spec))
            }
            (None, None, _) => format!(
                "default reducer:\n{}",
                crate::text::verbatim(&store.default_reducer()?)
            ),
            (Some(name), set, clear) => {
                let stream = match store.stream(name)? {
                    Some(s) => s,
                    None if set.is_some() => store.create_stream(name, None)?,
                    None => return Err(Error::UnknownStream(name.clone())),
                };
                if clear || set.is_some() {
                    store.set_stream_reducer(stream.id, set.as_deref())?;
                    let now = store.require_stream(name)?;
                    format!(
                        "stream {} now uses:\n{}",
                        clean(name, 60),
                        crate::text::verbatim(&now.reducer)
                    )
                } else {
                    let whose = if stream.reducer_override {
                        "its own"
                    } else {
                        "the database default"
                    };
                    // Whole and as written, so that it can be copied into --set.
                    format!(
                        "stream {} uses {whose} reducer:\n{}",
                        clean(name, 60),
                        crate::text::verbatim(&stream.reducer)
                    )
                }
            }
        })
    })?;
    let mut out = stdout();
    writeln!(out, "{shown}")?;
    out.flush()?;
    Ok(())
}

/// A LangGraph DeltaChannel's fold, kept in the user's settings for the source; the mirror is
/// made again with it.
fn channel_reducer(args: &ReducerArgs, format: &str, channel: &str) -> Result<()> {
    let source = &args.db.db;
    if format != "langgraph" {
        anyhow::bail!(
            "--channel names a DeltaChannel of a LangGraph source; this is a {format} source"
        );
    }
    let mut settings = crate::source::settings::load(source)?;
    let mut out = stdout();
    let said = match (&args.set, args.clear) {
        (Some(spec), _) => {
            crate::source::mirror::langgraph::Fold::parse(spec)
                .map_err(|e| anyhow::anyhow!("not set: {e}"))?;
            settings.channels.insert(channel.to_owned(), spec.clone());
            format!(
                "DeltaChannel {channel} of {} now folds its writes with {}",
                source.display(),
                crate::error::short_spec(spec)
            )
        }
        (None, true) => {
            settings.channels.remove(channel);
            format!(
                "DeltaChannel {channel} of {} now shows as its snapshot and the writes since",
                source.display()
            )
        }
        (None, false) => {
            let shown = settings.channels.get(channel).map_or_else(
                || "none set: it shows as its snapshot and the writes since".to_owned(),
                |spec| spec.clone(),
            );
            writeln!(
                out,
                "{}",
                clean(&format!("DeltaChannel {channel}: {shown}"), 2000)
            )?;
            out.flush()?;
            return Ok(());
        }
    };
    let kept = crate::source::settings::save(source, &settings)?;
    if let Some(mirrored) = crate::source::mirror::resolve(source, Some(format))?
        && let Some(note) = &mirrored.note
    {
        eprintln!("rewind: note: {}", super::safe_message(note));
    }
    writeln!(out, "{} (kept in {})", clean(&said, 2000), kept.display())?;
    out.flush()?;
    Ok(())
}

/// A source's reducer: the user's, kept in their settings for the source (outside the
/// mirror, so it survives the mirror), for the formats whose state needs the user's rules.
fn source_reducer(args: &ReducerArgs, mirrored: &crate::source::mirror::Mirrored) -> Result<()> {
    let source = &args.db.db;
    if let Some(note) = &mirrored.note {
        eprintln!("rewind: note: {}", super::safe_message(note));
    }
    let format = mirrored.format;
    if let Some(channel) = &args.channel {
        return channel_reducer(args, format, channel);
    }
    let shape = crate::Engine::open(&mirrored.path, OpenMode::ReadOnly)?
        .store()
        .meta(crate::source::mirror::redux::SHAPE)?;
    // The formats whose files hold events, not states: the state needs the user's rules.
    let needs_rules = matches!(format, "eventsourcing" | "json" | "marten")
        || shape.as_deref() == Some("actions");
    if !needs_rules {
        if args.set.is_some() || args.clear {
            anyhow::bail!(
                "a {format} source's state is made by rewind's reader of the format, not by a reducer you set; `rewind sources` says how"
            );
        }
    } else if args.stream.is_some() && (args.set.is_some() || args.clear) {
        anyhow::bail!(
            "a source's reducer is set for the whole source (its rules go by event type): leave out --stream"
        );
    }
    let mut out = stdout();
    let Some(spec) = &args.set else {
        let engine = crate::Engine::open(&mirrored.path, OpenMode::ReadOnly)?;
        let set = crate::source::settings::load(source)?.reducer;
        let using = match &set {
            Some(spec) if needs_rules => spec.clone(),
            _ => engine.store().default_reducer()?,
        };
        let whose = if !needs_rules {
            format!("the {format} format's own")
        } else if set.is_none() && format == "eventsourcing" {
            format!(
                "none set: the file's own snapshots and the events since; rewind reducer {} --set 'jq:…'",
                crate::source::mirror::canonical_text(source)
            )
        } else if set.is_none() {
            format!(
                "none set: merge; rewind reducer {} --set SPEC",
                crate::source::mirror::canonical_text(source)
            )
        } else {
            format!(
                "yours, kept in {}",
                crate::source::settings::path(source)?.display()
            )
        };
        writeln!(out, "{}", clean(&format!("reducer ({whose}):"), 2000))?;
        for line in using.lines() {
            writeln!(out, "  {}", clean(line, 2000))?;
        }
        out.flush()?;
        return Ok(());
    };
    let mut engine = crate::Engine::open(&mirrored.path, OpenMode::ReadOnly)?;
    engine.reducer(spec)?;
    // What the mirror runs: for Redux actions, the user's program given the action and the
    // preloaded state.
    let runs = if shape.is_some() {
        crate::source::mirror::redux::composed(spec)
    } else {
        spec.clone()
    };
    try_first(&mut engine, &runs, args)?;
    drop(engine);
    let mut settings = crate::source::settings::load(source)?;
    settings.reducer = Some(spec.clone());
    let kept = crate::source::settings::save(source, &settings)?;
    // The mirror takes it now, its snapshots made with the other one removed.
    crate::source::mirror::resolve(source, Some(format))?;
    writeln!(
        out,
        "{}",
        clean(
            &format!(
                "reducer of {} set to {} (kept in {})",
                crate::source::mirror::canonical_text(source),
                crate::error::short_spec(spec),
                kept.display()
            ),
            2000
        )
    )?;
    out.flush()?;
    Ok(())
}

/// Tries `spec` on every event of the streams it would apply to, with progress on stderr
/// when that is a terminal and a count at the end; fails if any event fails with it,
/// unless `--force`.
fn try_first(engine: &mut crate::Engine, spec: &str, args: &ReducerArgs) -> Result<()> {
    use std::io::IsTerminal;
    let streams: Vec<_> = match &args.stream {
        Some(name) => engine.store().stream(name)?.into_iter().collect(),
        None => engine
            .store()
            .streams()?
            .into_iter()
            .filter(|s| !s.reducer_override)
            .collect(),
    };
    let terminal = std::io::stderr().is_terminal();
    let mut shown_at = std::time::Instant::now();
    let mut progress = |done: u64, total: u64| {
        if terminal && (done == total || shown_at.elapsed().as_millis() >= 100) {
            shown_at = std::time::Instant::now();
            eprint!(
                "\rtrying the reducer: {} of {} events",
                group(done),
                group(total)
            );
        }
    };
    let trial = engine.try_reducer(spec, &streams, &mut progress)?;
    if terminal && trial.events > 0 {
        eprintln!();
    }
    let streams_noun = |n: usize| if n == 1 { "stream" } else { "streams" };
    let Some(first) = &trial.first else {
        eprintln!(
            "tried the reducer on {} events of {} {}: all apply",
            group(trial.events),
            group(trial.streams as u64),
            streams_noun(trial.streams)
        );
        return Ok(());
    };
    let failed = format!(
        "{} of {} events in {} of {} {} fail with it; the first: {}",
        group(trial.failed_events),
        group(trial.events),
        group(trial.failed_streams as u64),
        group(trial.streams as u64),
        streams_noun(trial.streams),
        crate::error::describe(first)
    );
    if !args.force {
        anyhow::bail!("not set: {failed}\n(--force sets it anyway)");
    }
    eprintln!("setting it anyway (--force): {}", clean(&failed, 1000));
    Ok(())
}

/// `rewind title`.
#[derive(Debug, Args)]
pub struct TitleArgs {
    /// The database file, or a source read through its mirror.
    #[arg(value_name = "DB")]
    db: PathBuf,
    /// The jq program: it reads `{state, event}` (the state after the event; the event's
    /// stream, version, seq, type, time, data and meta) and returns the text to show, e.g.
    /// '.state.node + " · " + (.event.data.step|tostring)'. Without it, the programs set are
    /// listed.
    #[arg(value_name = "PROGRAM", conflicts_with = "clear")]
    program: Option<String>,
    /// The streams it titles: a name or a glob such as 'agent-*' (default: every stream).
    #[arg(long, value_name = "NAME|GLOB", conflicts_with = "kind")]
    stream: Option<String>,
    /// The event type it titles instead (a stream's program comes first).
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// Remove the program of --stream or --type (or, with neither, every program).
    #[arg(long)]
    clear: bool,
}

pub(super) fn title(args: &TitleArgs) -> Result<()> {
    if !args.db.exists() {
        anyhow::bail!("{}: no such file", args.db.display());
    }
    let mut settings = crate::source::settings::load(&args.db)?;
    let mut out = stdout();
    let key = match (&args.stream, &args.kind) {
        (Some(glob), _) => Some((true, glob.clone())),
        (None, Some(kind)) => Some((false, kind.clone())),
        (None, None) if args.program.is_some() => Some((true, "*".to_string())),
        (None, None) => None,
    };
    let said = match (&args.program, args.clear, key) {
        (Some(program), _, Some((by_stream, name))) => {
            crate::jq::Program::compile(program)
                .map_err(|e| anyhow::anyhow!("the title program does not compile: {e}"))?;
            let map = if by_stream {
                &mut settings.stream_titles
            } else {
                &mut settings.type_titles
            };
            map.insert(name.clone(), program.clone());
            let file = crate::source::settings::save(&args.db, &settings)?;
            let whose = if by_stream { "stream" } else { "type" };
            format!(
                "events of {whose} {} are titled by {} (kept in {})",
                clean(&name, 60),
                clean(program, 200),
                file.display()
            )
        }
        (None, true, key) => {
            match key {
                Some((true, glob)) => settings.stream_titles.remove(&glob).map(|_| ()),
                Some((false, kind)) => settings.type_titles.remove(&kind).map(|_| ()),
                None => {
                    let had =
                        !(settings.stream_titles.is_empty() && settings.type_titles.is_empty());
                    settings.stream_titles.clear();
                    settings.type_titles.clear();
                    had.then_some(())
                }
            }
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no such title program to clear (`rewind title {}` lists them)",
                    args.db.display()
                )
            })?;
            crate::source::settings::save(&args.db, &settings)?;
            "cleared".to_string()
        }
        _ => {
            let mut lines = Vec::new();
            for (glob, program) in &settings.stream_titles {
                lines.push(format!(
                    "stream {}\t{}",
                    clean(glob, 60),
                    clean(program, 400)
                ));
            }
            for (kind, program) in &settings.type_titles {
                lines.push(format!("type {}\t{}", clean(kind, 60), clean(program, 400)));
            }
            if lines.is_empty() {
                "no title programs: the debugger shows the top-level keys each event changed"
                    .to_string()
            } else {
                lines.join("\n")
            }
        }
    };
    writeln!(out, "{said}")?;
    out.flush()?;
    Ok(())
}
