//! Subcommands that only read: export, streams, log, state, diff, blame, snapshots.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use super::output::{Table, clean, json, json_safe, stdout};
use super::{DbArg, JsonFlag, TargetArgs, open};
use crate::jsonl::export_line;
use crate::model::{Target, group};
use crate::store::{OpenMode, SnapshotMeta};
use crate::time;

/// `rewind export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    db: DbArg,
    /// Only this stream (with its settings).
    #[arg(long)]
    stream: Option<String>,
    /// Only events with a seq greater than this: what a client at this seq needs to catch up
    /// (with the reducers of their streams, without policies).
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    since_seq: i64,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub(super) fn export(args: &ExportArgs) -> Result<()> {
    let mut engine = open(&args.db, OpenMode::ReadOnly)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(stdout()),
    };
    engine.export(args.stream.as_deref(), args.since_seq, |line| {
        serde_json::to_string(line)
            .map_err(std::io::Error::from)
            .and_then(|line| writeln!(out, "{}", json_safe(&line)))
            .map_err(|cause| crate::Error::Io {
                path: args.output.clone().unwrap_or_else(|| "the export".into()),
                cause,
            })
    })?;
    out.flush()?;
    Ok(())
}

/// `rewind streams`.
#[derive(Debug, Args)]
pub struct StreamsArgs {
    #[command(flatten)]
    db: DbArg,
    /// Only streams whose attribute (a mapping's `[streams]` column) is this value; given
    /// again, all must hold.
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    filters: Vec<String>,
    /// Only unfinished streams: a run stopped with work pending, or what a mapping's
    /// `streams.unfinished` says (as of --now).
    #[arg(long)]
    unfinished: bool,
    /// Only streams a filter passes, in the debugger's syntax (its `F` key): words that all
    /// hold, each text in the name, a glob over the name (`order-*`), `status:PATTERN`,
    /// `is:unfinished`, or any of them after `!` for the opposite.
    #[arg(long, value_name = "WORDS")]
    filter: Option<String>,
    /// Add each stream's status: its newest state's top-level `status`, else its source's
    /// `status` attribute (this builds every stream's newest state).
    #[arg(long)]
    status: bool,
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn streams(args: &StreamsArgs) -> Result<()> {
    let filters = args
        .filters
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .ok_or_else(|| anyhow::anyhow!("--where {f:?}: give COLUMN=VALUE"))
        })
        .collect::<Result<Vec<_>>>()?;
    let filter = match &args.filter {
        Some(text) => crate::filter::StreamFilter::parse(text)
            .map_err(|e| anyhow::anyhow!("--filter {text:?}: {e}"))?,
        None => None,
    };
    let judged = args.status || filter.as_ref().is_some_and(|f| f.needs_state());
    let mut engine = open(&args.db, OpenMode::ReadOnly)?;
    let all = engine.store().streams()?;
    let mut streams = Vec::new();
    let mut marks = Vec::new();
    let mut statuses = Vec::new();
    // A mapping's attributes in its query's order.
    let mut columns = crate::source::mirror::attribute_columns(engine.store())?;
    for s in all {
        let m = crate::source::mirror::marks(engine.store(), &s.name, args.db.now)?;
        for key in m.attributes.iter().flat_map(|a| a.keys()) {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
        // The newest state, where a status is asked for: one that cannot be built has none.
        let (status, unfinished) = if judged {
            let head = engine.state_of(&s, crate::Target::Head).ok();
            crate::filter::judge(head.as_ref().map(|h| &*h.state), &m)
        } else {
            (None, m.unfinished)
        };
        let passes = filter.as_ref().is_none_or(|f| {
            f.matches(crate::filter::Facts {
                name: &s.name,
                status: status.as_deref(),
                unfinished,
            })
        });
        let kept = passes
            && (!args.unfinished || m.unfinished)
            && filters.iter().all(|(column, value)| {
                m.attributes
                    .as_ref()
                    .and_then(|a| a.get(column))
                    .is_some_and(|v| attribute_text(v) == *value)
            });
        if kept {
            streams.push(s);
            marks.push(m);
            statuses.push(status);
        }
    }
    if let Some((column, _)) = filters.iter().find(|(c, _)| !columns.contains(c)) {
        anyhow::bail!(
            "--where {column:?}: no stream has that attribute ({})",
            if columns.is_empty() {
                "this database's streams have none: attributes come from a mapping's [streams] query".to_owned()
            } else {
                format!("they have {}", columns.join(", "))
            }
        );
    }
    let mut out = stdout();
    if args.json.json {
        let listed: Vec<Value> = streams
            .iter()
            .zip(&marks)
            .zip(&statuses)
            .map(|((s, m), status)| {
                let mut shown = serde_json::to_value(s).unwrap_or_default();
                if let (Value::Object(shown), Ok(Value::Object(m))) =
                    (&mut shown, serde_json::to_value(m))
                {
                    shown.extend(m);
                    if args.status {
                        shown.insert("status".into(), status.clone().into());
                    }
                }
                shown
            })
            .collect();
        return json(&mut out, &listed);
    }
    let mut headers: Vec<String> = ["stream", "events", "reducer", "last event"]
        .map(String::from)
        .into();
    if args.status {
        headers.push("status".into());
    }
    headers.extend(columns.iter().map(|c| clean(c, 40)));
    headers.push("notes".into());
    let mut table = Table::new(headers, vec![1]);
    for ((s, m), status) in streams.iter().zip(&marks).zip(&statuses) {
        // A jq program may span lines; one line of it is enough in a table.
        let spec = s.reducer.split_whitespace().collect::<Vec<_>>().join(" ");
        let reducer = if s.reducer_override {
            spec
        } else {
            format!("{spec} (default)")
        };
        let mut notes = Vec::new();
        if let Some(kind) = &m.kind {
            notes.push(clean(kind, 60));
        }
        if let Some(fork) = &m.fork {
            notes.push(format!(
                "forks from {} at v{}",
                clean(&fork.parent, 60),
                fork.version
            ));
        }
        if m.unfinished && !m.mapped {
            notes.push("unfinished: the run stopped with work pending".into());
        }
        if let Some(at) = m.judged_at {
            notes.push(format!("unfinished as of {}", time::format(at)));
        }
        if let (true, Some(serde_json::Value::Array(work))) = (m.mapped, &m.pending) {
            notes.push(format!("{} pending", group(work.len() as u64)));
        }
        let mut row = vec![
            clean(&s.name, 60),
            group(s.head),
            clean(&reducer, 40),
            s.last_ts.map_or_else(|| "-".into(), time::format),
        ];
        if args.status {
            row.push(status.as_deref().map_or_else(String::new, |t| clean(t, 40)));
        }
        for column in &columns {
            row.push(clean(
                &m.attributes
                    .as_ref()
                    .and_then(|a| a.get(column))
                    .map_or_else(String::new, attribute_text),
                40,
            ));
        }
        row.push(notes.join("; "));
        table.row(row);
    }
    table.print(&mut out)
}

/// An attribute as `--where` compares it and the table shows it: text as itself, NULL empty.
fn attribute_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `rewind sources`.
#[derive(Debug, Args)]
pub struct SourcesArgs {
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn sources(args: &SourcesArgs) -> Result<()> {
    use crate::source::formats::FORMATS;
    let mut out = stdout();
    if args.json.json {
        return json(&mut out, &FORMATS);
    }
    for format in &FORMATS {
        writeln!(
            out,
            "{}{}\n  recognised by: {}\n  stream: {}\n  event: {}\n  state: {}\n",
            format.name,
            if format.read { "" } else { " (not read yet)" },
            format.recognised_by,
            format.stream,
            format.event,
            format.state
        )?;
    }
    out.flush()?;
    Ok(())
}

/// `rewind map`.
#[derive(Debug, Args)]
pub struct MapArgs {
    /// Another program's SQLite database.
    #[arg(value_name = "SOURCE")]
    source: std::path::PathBuf,
}

pub(super) fn map(args: &MapArgs) -> Result<()> {
    let shown = args.source.display().to_string();
    let foreign = crate::source::sqlite::open(&args.source).map_err(anyhow::Error::msg)?;
    if let Some(note) = &foreign.note {
        eprintln!("rewind: note: {note}");
    }
    let text = crate::source::guess::guess(&foreign.conn, &shown).map_err(anyhow::Error::msg)?;
    let mut out = stdout();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// `rewind mirrors`.
#[derive(Debug, Args)]
pub struct MirrorsArgs {
    /// Remove the mirrors whose source is gone.
    #[arg(long)]
    prune: bool,
    /// Remove the mirror of this source (made again on its next open).
    #[arg(long, value_name = "SOURCE", conflicts_with = "prune")]
    remove: Option<std::path::PathBuf>,
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn mirrors(args: &MirrorsArgs) -> Result<()> {
    use crate::source::mirror;
    let mut out = stdout();
    if let Some(source) = &args.remove {
        let path = mirror::mirror_path(source)?;
        if !path.exists() {
            anyhow::bail!(
                "{} has no mirror (looked for {})",
                source.display(),
                path.display()
            );
        }
        mirror::remove(&path)?;
        writeln!(out, "removed {}", path.display())?;
        return Ok(());
    }
    let listed = mirror::list()?;
    if args.prune {
        let mut removed = Vec::new();
        for m in listed.iter().filter(|m| !m.source_exists) {
            mirror::remove(&m.mirror)?;
            removed.push(m);
        }
        if args.json.json {
            return json(&mut out, &removed);
        }
        for m in &removed {
            writeln!(
                out,
                "removed {} (its source {} is gone)",
                m.mirror.display(),
                clean(m.source.as_deref().unwrap_or("(unknown)"), 200)
            )?;
        }
        writeln!(out, "{} mirrors removed", removed.len())?;
        return Ok(());
    }
    if args.json.json {
        return json(&mut out, &listed);
    }
    let mut table = Table::new(
        vec!["source", "format", "size", "last change", "mirror"],
        vec![2],
    );
    for m in &listed {
        let source = m.source.as_deref().unwrap_or("(unknown)");
        table.row(vec![
            format!(
                "{}{}",
                clean(source, 80),
                if m.source_exists { "" } else { " (gone)" }
            ),
            m.format.clone().unwrap_or_else(|| "-".into()),
            group(m.bytes),
            m.changed.map_or_else(|| "-".into(), time::format),
            m.mirror.display().to_string(),
        ]);
    }
    table.print(&mut out)
}

/// `rewind log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    #[command(flatten)]
    db: DbArg,
    /// The stream (all streams by seq if omitted).
    stream: Option<String>,
    /// First version to show (first seq without a stream).
    #[arg(long, default_value_t = 1, conflicts_with = "tail")]
    from: u64,
    /// Show at most this many events.
    #[arg(long, default_value_t = 100, conflicts_with = "tail")]
    limit: usize,
    /// Show the newest N events instead.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    /// Newest first.
    #[arg(long)]
    reverse: bool,
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn log(args: &LogArgs) -> Result<()> {
    let engine = open(&args.db, OpenMode::ReadOnly)?;
    let store = engine.store();
    // The events shown, and how many of the stream (or of all) come before and after them.
    let (mut events, before, after) = match &args.stream {
        Some(name) => {
            let stream = store.require_stream(name)?;
            let from = match args.tail {
                Some(n) => stream.head.saturating_sub(n as u64) + 1,
                None => args.from.max(1),
            };
            let limit = args.tail.unwrap_or(args.limit);
            let events = store.events(&stream, from, stream.head, limit)?;
            let last = events.last().map_or(from.saturating_sub(1), |e| e.version);
            let before = from.saturating_sub(1).min(stream.head);
            (events, before, stream.head.saturating_sub(last.max(before)))
        }
        None => {
            let events = match args.tail {
                Some(n) => store.last_events_by_seq(n)?,
                None => store
                    .events_by_seq(i64::try_from(args.from).unwrap_or(i64::MAX) - 1, args.limit)?,
            };
            let first = events
                .first()
                .map_or(i64::try_from(args.from).unwrap_or(i64::MAX), |e| e.seq);
            let last = events.last().map_or(first - 1, |e| e.seq);
            let before = store.count_by_seq(i64::MIN, first - 1)?;
            let after = store.count_by_seq(last + 1, i64::MAX)?;
            (events, before, after)
        }
    };
    if args.reverse {
        events.reverse();
    }
    // What was left out, on stderr, so that the table or JSON on stdout stays whole.
    let unit = if args.stream.is_some() { "v" } else { "seq " };
    let mut left_out = Vec::new();
    if before > 0 {
        left_out.push(format!(
            "{} earlier (before {unit}{})",
            group(before),
            events
                .iter()
                .map(|e| if args.stream.is_some() {
                    e.version
                } else {
                    u64::try_from(e.seq).unwrap_or(0)
                })
                .min()
                .unwrap_or(args.from)
        ));
    }
    if after > 0 {
        left_out.push(format!(
            "{} later (--tail N shows the newest)",
            group(after)
        ));
    }
    if !left_out.is_empty() {
        eprintln!(
            "{} events shown; not shown: {}",
            group(events.len() as u64),
            left_out.join(", ")
        );
    }
    // A mapping's title program titles each event, in a column of its own.
    let mut titles = crate::title::Titles::of(store)?;
    let mut out = stdout();
    if args.json.json {
        let lines: Vec<Value> = events
            .iter()
            .map(|e| {
                let mut line = export_line(e);
                if let (Some(titles), Value::Object(fields)) = (&mut titles, &mut line) {
                    fields.insert("title".into(), Value::String(titles.title(e)));
                }
                line
            })
            .collect();
        return json(&mut out, &lines);
    }
    let mut headers = vec!["seq", "stream", "version", "time", "type"];
    if titles.is_some() {
        headers.push("title");
    }
    headers.push("data");
    let mut table = Table::new(headers, vec![0, 2]);
    for e in &events {
        let mut cells = vec![
            e.seq.to_string(),
            clean(&e.stream, 30),
            group(e.version),
            time::format(e.ts),
            clean(&e.kind, 30),
        ];
        if let Some(titles) = &mut titles {
            cells.push(titles.title(e));
        }
        cells.push(clean(&e.data.to_string(), 80));
        table.row(cells);
    }
    table.print(&mut out)
}

/// `rewind state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    #[command(flatten)]
    db: DbArg,
    /// The stream.
    stream: String,
    #[command(flatten)]
    target: TargetArgs,
    /// Only the value at this JSON pointer, e.g. /order/status.
    #[arg(long)]
    path: Option<String>,
    /// With --json: say how long building the state took (`provenance.elapsed_us`), which
    /// differs from run to run; without it the output changes only when the data does.
    #[arg(long)]
    timing: bool,
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn state(args: &StateArgs) -> Result<()> {
    let mut engine = open(&args.db, OpenMode::ReadOnly)?;
    let target = engine.read(|e| Ok(args.target.target(e, &args.stream)))??;
    let rec = engine.read(|e| e.state_at(&args.stream, target))?;
    let version = rec.provenance.version;
    let value = match &args.path {
        Some(path) => pointer(&rec.state, path)
            .with_context(|| format!("stream {:?} at version {version}", args.stream))?
            .clone(),
        None => (*rec.state).clone(),
    };
    let mut out = stdout();
    if args.json.json {
        let mut provenance = serde_json::to_value(&rec.provenance)?;
        if let (false, Value::Object(fields)) = (args.timing, &mut provenance) {
            fields.remove("elapsed_us");
        }
        return json(
            &mut out,
            &json!({"stream": rec.stream.name, "version": version, "path": args.path, "state": value, "provenance": provenance}),
        );
    }
    writeln!(out, "{}", json_safe(&serde_json::to_string_pretty(&value)?))?;
    out.flush()?;
    eprintln!(
        "# {} @ v{} · {}",
        clean(&rec.stream.name, 60),
        group(version),
        rec.provenance.describe()
    );
    Ok(())
}

fn pointer<'a>(state: &'a Value, path: &str) -> Result<&'a Value> {
    if !(path.is_empty() || path.starts_with('/')) {
        bail!("{path:?} is not a JSON pointer (it must start with '/', e.g. /order/status)");
    }
    state.pointer(path).with_context(|| {
        if state.get("$no_reducer").is_some() {
            format!(
                "no value at {path}: no reducer is set for this source, so the state is its own newest snapshot (under /snapshot/state) and the events since (/events_since); set one with `rewind reducer SOURCE --set 'jq:…'`"
            )
        } else {
            format!("no value at {path}")
        }
    })
}

/// `rewind diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    db: DbArg,
    /// The stream.
    stream: String,
    /// The older version (default: the one before TO).
    from: Option<u64>,
    /// The newer version (default: the head; with only one version given, that one is TO).
    to: Option<u64>,
    /// A unified text diff of pretty JSON instead of a list of paths.
    #[arg(long, conflicts_with = "json")]
    text: bool,
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn diff(args: &DiffArgs) -> Result<()> {
    let mut engine = open(&args.db, OpenMode::ReadOnly)?;
    let stream = engine.store().require_stream(&args.stream)?;
    let (from, to) = match (args.from, args.to) {
        (Some(a), Some(b)) => (a, b),
        (Some(b), None) => (b.saturating_sub(1), b),
        _ => (stream.head.saturating_sub(1), stream.head),
    };
    let (old, new) = engine.read(|e| {
        let old = e.state_of(&stream, Target::Version(from))?.state;
        let new = e.state_of(&stream, Target::Version(to))?.state;
        Ok((old, new))
    })?;
    let mut out = stdout();
    if args.text {
        let text = crate::diff::unified(&old, &new, (&format!("v{from}"), &format!("v{to}")), 3);
        write!(out, "{}", clean_lines(&text))?;
        out.flush()?;
        return Ok(());
    }
    let changes = crate::diff::changes(&old, &new);
    if args.json.json {
        return json(
            &mut out,
            &json!({"stream": stream.name, "from": from, "to": to, "changes": changes}),
        );
    }
    let noun = if changes.len() == 1 {
        "change"
    } else {
        "changes"
    };
    writeln!(
        out,
        "{} v{} → v{}: {} {noun}",
        clean(&stream.name, 60),
        group(from),
        group(to),
        changes.len()
    )?;
    for line in change_lines(&changes) {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

/// One escaped line per change: `+ path value`, `- path value`, `~ path old → new`.
pub(super) fn change_lines(changes: &[crate::diff::Change]) -> Vec<String> {
    changes.iter().map(|c| clean(&c.line(), 200)).collect()
}

fn clean_lines(text: &str) -> String {
    text.lines().map(|l| clean(l, 400) + "\n").collect()
}

/// `rewind blame`.
#[derive(Debug, Args)]
pub struct BlameArgs {
    #[command(flatten)]
    db: DbArg,
    /// The stream.
    stream: String,
    /// A JSON pointer, e.g. /order/status.
    path: String,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn blame(args: &BlameArgs) -> Result<()> {
    let mut engine = open(&args.db, OpenMode::ReadOnly)?;
    let target = engine.read(|e| Ok(args.target.target(e, &args.stream)))??;
    let events = engine.read(|e| e.blame(&args.stream, &args.path, target))?;
    let mut out = stdout();
    if args.json.json {
        let lines: Vec<Value> = events.iter().map(export_line).collect();
        return json(&mut out, &lines);
    }
    // Events read from a database's copies name the file each was found in.
    let file_of = |e: &crate::model::Event| {
        e.meta
            .as_ref()
            .and_then(|m| m.get("file"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let files = events.iter().any(|e| file_of(e).is_some());
    let mut header = vec!["version", "seq", "time", "type"];
    if files {
        header.push("file");
    }
    header.push("data");
    let mut table = Table::new(header, vec![0, 1]);
    for e in &events {
        let mut row = vec![
            group(e.version),
            e.seq.to_string(),
            time::format(e.ts),
            clean(&e.kind, 30),
        ];
        if files {
            row.push(clean(&file_of(e).unwrap_or_default(), 40));
        }
        row.push(clean(&e.data.to_string(), 80));
        table.row(row);
    }
    table.print(&mut out)
}

/// `rewind snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    db: DbArg,
    /// Only this stream.
    stream: Option<String>,
    /// Drop this snapshot (given again, these snapshots), labelled or not: a delta built on
    /// it is rewritten as a full snapshot first. Events are never touched.
    #[arg(long, value_name = "STREAM@VERSION")]
    drop: Vec<String>,
    #[command(flatten)]
    json: JsonFlag,
}

/// `STREAM@VERSION`, split at the last `@` (a stream name may hold one).
fn stream_at(text: &str) -> Result<(String, u64)> {
    let (stream, version) = text.rsplit_once('@').ok_or_else(|| {
        anyhow::anyhow!("--drop {text:?}: give STREAM@VERSION, as in order-1042@3")
    })?;
    let version = version
        .trim_start_matches('v')
        .replace(',', "")
        .parse::<u64>()
        .map_err(|_| anyhow::anyhow!("--drop {text:?}: {version:?} is not a version number"))?;
    Ok((stream.to_string(), version))
}

fn drop_snapshots(args: &SnapshotsArgs) -> Result<()> {
    let mut by_stream: Vec<(String, Vec<u64>)> = Vec::new();
    for text in &args.drop {
        let (stream, version) = stream_at(text)?;
        match by_stream.iter_mut().find(|(s, _)| *s == stream) {
            Some((_, versions)) => versions.push(version),
            None => by_stream.push((stream, vec![version])),
        }
    }
    let mut engine = open(&args.db, OpenMode::Existing)?;
    let mut plans = Vec::new();
    for (stream, versions) in &by_stream {
        plans.push(crate::snapshot::compact::drop_chosen(
            &mut engine,
            stream,
            versions,
        )?);
    }
    let mut out = stdout();
    if args.json.json {
        return json(&mut out, &plans);
    }
    for plan in &plans {
        for s in &plan.drop {
            writeln!(
                out,
                "dropped {}@{} ({}, {} bytes{})",
                clean(&s.stream, 60),
                s.version,
                s.kind,
                group(s.stored_size),
                s.label
                    .as_deref()
                    .map_or_else(String::new, |l| format!(", label {:?}", clean(l, 40)))
            )?;
        }
        for s in &plan.rebase {
            writeln!(
                out,
                "rebased {}@{} as a full snapshot: its base was dropped",
                clean(&s.stream, 60),
                s.version
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Whether a snapshot can be used: `ok`, `stale` (built with another reducer), or `corrupt`
/// with what is wrong, found by loading and checking it now.
fn health(
    engine: &crate::Engine,
    snap: &SnapshotMeta,
    fingerprint: Option<&str>,
) -> (String, Option<String>) {
    match engine.decode_snapshot(snap, &snap.fingerprint) {
        Err(reason) => ("corrupt".into(), Some(reason)),
        Ok(_) if fingerprint.is_some_and(|f| f != snap.fingerprint) => (
            "stale".into(),
            Some("built with another reducer than the stream's".into()),
        ),
        Ok(_) => ("ok".into(), None),
    }
}

pub(super) fn snapshots(args: &SnapshotsArgs) -> Result<()> {
    if !args.drop.is_empty() {
        return drop_snapshots(args);
    }
    let mut engine = open(&args.db, OpenMode::ReadOnly)?;
    let streams = engine.store().streams()?;
    let id = match &args.stream {
        Some(name) => Some(engine.store().require_stream(name)?.id),
        None => None,
    };
    let snaps = engine.store().snapshots(id)?;
    let mut fingerprints = std::collections::HashMap::new();
    for s in &streams {
        if let Ok(reducer) = engine.reducer(&s.reducer) {
            fingerprints.insert(s.id, reducer.fingerprint().to_string());
        }
    }
    let healths: Vec<(String, Option<String>)> = snaps
        .iter()
        .map(|s| {
            health(
                &engine,
                s,
                fingerprints.get(&s.stream_id).map(String::as_str),
            )
        })
        .collect();
    let name_of = |sid| {
        streams
            .iter()
            .find(|s| s.id == sid)
            .map_or("?", |s| s.name.as_str())
    };
    let mut out = stdout();
    if args.json.json {
        let rows: Vec<Value> = snaps
            .iter()
            .zip(&healths)
            .map(|(s, (health, problem))| {
                let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
                v["stream"] = json!(name_of(s.stream_id));
                v["health"] = json!(health);
                if let Some(problem) = problem {
                    v["problem"] = json!(problem);
                }
                v
            })
            .collect();
        return json(&mut out, &rows);
    }
    let mut table = Table::new(
        vec![
            "stream", "version", "kind", "raw", "stored", "trigger", "taken", "label", "health",
        ],
        vec![1, 3, 4],
    );
    for (s, (health, problem)) in snaps.iter().zip(&healths) {
        table.row(vec![
            clean(name_of(s.stream_id), 30),
            group(s.version),
            s.kind.clone(),
            group(s.raw_size),
            group(s.stored_size),
            clean(&s.trigger, 20),
            time::format(s.created_at),
            clean(s.label.as_deref().unwrap_or(""), 40),
            match problem {
                Some(problem) if health == "corrupt" => format!("corrupt: {}", clean(problem, 80)),
                _ => health.clone(),
            },
        ]);
    }
    table.print(&mut out)
}
