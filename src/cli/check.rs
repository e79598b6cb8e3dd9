//! Subcommands that check a database: verify.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use super::output::{Table, clean, json, stdout};
use super::{DbArg, JsonFlag};
use crate::model::group;
use crate::snapshot::verify;

/// `rewind verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    db: DbArg,
    /// Only this stream.
    stream: Option<String>,
    /// Also check each stream's chain against heads kept elsewhere: the output of an earlier
    /// `rewind verify --json`, or lines of `stream<TAB>version<TAB>hash`. A stream whose chain
    /// value at the expected version differs, that is shorter, missing or not listed is a
    /// problem; one that has grown since is not.
    #[arg(long, value_name = "FILE")]
    expect: Option<std::path::PathBuf>,
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn verify(args: &VerifyArgs) -> Result<ExitCode> {
    let show_progress = std::io::stderr().is_terminal();
    let progress = |done: usize, total: usize| {
        if show_progress && (done == total || done.is_multiple_of(16)) {
            eprint!("\rverifying: {done}/{total} streams");
            if done == total {
                eprint!("\r\x1b[K");
            }
        }
    };
    let expect = match &args.expect {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the expected heads {}", file.display()))?;
            Some(verify::read_expected(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e}; give the output of `rewind verify --json` or stream<TAB>version<TAB>hash lines",
                    file.display()
                )
            })?)
        }
        None => None,
    };
    super::remember(&args.db)?;
    let mirrored = crate::source::mirror::resolve_showing(
        &args.db.db,
        args.db.format.as_deref(),
        &super::sync_progress,
    )?;
    if let Some(note) = mirrored.as_ref().and_then(|m| m.note.as_deref()) {
        eprintln!("rewind: note: {}", super::safe_message(note));
    }
    let path = mirrored
        .as_ref()
        .map_or_else(|| args.db.db.clone(), |m| m.path.clone());
    let mut report =
        verify::verify_expecting(&path, args.stream.as_deref(), expect.as_deref(), &progress)?;
    if let Some(mirrored) = &mirrored {
        crate::source::mirror::check_against_source(
            &args.db.db,
            mirrored,
            args.stream.as_deref(),
            args.db.now,
            &mut report,
        )?;
    }
    let code = if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    let mut out = stdout();
    if args.json.json {
        json(&mut out, &report)?;
        return Ok(code);
    }
    #[allow(clippy::cast_precision_loss)] // display only
    let seconds = report.elapsed_us as f64 / 1e6;
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rate = (report.events as f64 / seconds.max(1e-6)) as u64;
    writeln!(
        out,
        "verified {} streams, {} snapshots, {} events in {seconds:.2} s ({} events/s)",
        group(report.streams as u64),
        group(report.snapshots as u64),
        group(report.events),
        group(rate)
    )?;
    for note in &report.notes {
        writeln!(out, "note: {}", clean(note, 400))?;
    }
    if !report.heads.is_empty() {
        let mut heads = Table::new(vec!["stream", "head", "head hash"], vec![1]);
        for h in &report.heads {
            heads.row(vec![clean(&h.stream, 40), group(h.version), h.hash.clone()]);
        }
        heads.print(&mut out)?;
    }
    if report.findings.is_empty() {
        writeln!(out, "no problems found")?;
        out.flush()?;
        return Ok(code);
    }
    let mut table = Table::new(vec!["stream", "version", "problem", "detail"], vec![1]);
    for f in &report.findings {
        let kind = serde_json::to_value(f.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        table.row(vec![
            clean(&f.stream, 40),
            f.version.map_or_else(|| "-".into(), group),
            kind,
            clean(&f.detail, 120),
        ]);
    }
    table.print(&mut out)?;
    for f in report.findings.iter().filter(|f| !f.diff.is_empty()) {
        writeln!(
            out,
            "\n{} v{}: snapshot → replay",
            clean(&f.stream, 40),
            f.version.map_or_else(String::new, group)
        )?;
        for line in super::read::change_lines(&f.diff).iter().take(20) {
            writeln!(out, "  {line}")?;
        }
    }
    let noun = if report.findings.len() == 1 {
        "problem"
    } else {
        "problems"
    };
    writeln!(out, "{} {noun} found", report.findings.len())?;
    out.flush()?;
    Ok(code)
}

/// `rewind stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    db: DbArg,
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn stats(args: &StatsArgs) -> Result<()> {
    let mut engine = super::open(&args.db, crate::store::OpenMode::ReadOnly)?;
    let stats = crate::snapshot::stats::stats(&mut engine)?;
    let mut out = stdout();
    if args.json.json {
        return json(&mut out, &stats);
    }
    let mut table = Table::new(
        vec![
            "stream",
            "events",
            "event bytes",
            "snapshots",
            "stale",
            "raw",
            "stored",
            "ratio",
            "mean take",
            "max replay",
        ],
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    let row = |name: String, f: &crate::snapshot::stats::Figures| {
        vec![
            name,
            group(f.events),
            group(f.event_bytes),
            group(f.full_snapshots + f.delta_snapshots),
            group(f.stale_snapshots),
            group(f.snapshot_raw_bytes),
            group(f.snapshot_stored_bytes),
            format!("{:.1}×", f.compression_ratio),
            format!("{:.2} ms", f.mean_snapshot_us / 1000.0),
            group(f.max_replay),
        ]
    };
    for (name, f) in &stats.streams {
        table.row(row(clean(name, 40), f));
    }
    table.row(row("total".into(), &stats.total));
    table.print(&mut out)?;
    let last = stats
        .last_maintenance
        .map_or_else(|| "never".into(), crate::time::format);
    writeln!(
        out,
        "file: {} bytes · archive: {} events, {} bytes · last maintenance: {last}",
        group(stats.file_bytes),
        group(stats.archived_events),
        group(stats.archive_bytes)
    )?;
    out.flush()?;
    Ok(())
}

/// `rewind compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    #[command(flatten)]
    db: DbArg,
    /// Only this stream.
    stream: Option<String>,
    /// Keep the newest N snapshots of each stream.
    #[arg(long, value_name = "N")]
    keep_last: Option<usize>,
    /// Keep every Kth snapshot of each stream, counting from the newest.
    #[arg(long, value_name = "K")]
    keep_every: Option<usize>,
    /// Keep the newest snapshot in each hour, day or month of event time.
    #[arg(long, value_name = "BUCKET", value_parser = super::bucket_parser())]
    keep_per: Option<crate::model::Bucket>,
    /// Keep a logarithmic ladder: dense near the head, sparse far back.
    #[arg(long)]
    ladder: bool,
    /// Drop snapshots built with another reducer than the stream's current one.
    #[arg(long)]
    drop_stale: bool,
    /// Drop snapshots of versions below this one.
    #[arg(long, value_name = "VERSION")]
    before_version: Option<u64>,
    /// Drop snapshots of events before this RFC 3339 time.
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse)]
    before_time: Option<crate::model::Micros>,
    /// Then drop the oldest until all snapshots take at most this many bytes.
    #[arg(long, value_name = "BYTES")]
    max_bytes: Option<u64>,
    /// Let the rules drop labelled snapshots too; without it a labelled snapshot (taken on
    /// purpose) is kept, and the plan says which it keeps and why.
    #[arg(long)]
    drop_labelled: bool,
    /// Print the plan (what goes, bytes freed) and change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn compact(args: &CompactArgs) -> Result<()> {
    use crate::snapshot::compact::Rules;
    let rules = Rules {
        keep_last: args.keep_last,
        keep_every: args.keep_every,
        keep_per: args.keep_per,
        ladder: args.ladder,
        drop_stale: args.drop_stale,
        before_version: args.before_version,
        before_time: args.before_time,
        max_bytes: args.max_bytes,
        expired_at: None,
        drop_labelled: args.drop_labelled,
    };
    if rules
        == (Rules {
            drop_labelled: args.drop_labelled,
            ..Rules::default()
        })
    {
        anyhow::bail!(
            "say what to keep or drop, e.g. --keep-last 10, --ladder or --drop-stale (see rewind compact --help)"
        );
    }
    let mut engine = super::open(&args.db, crate::store::OpenMode::Existing)?;
    let plan = crate::snapshot::compact::compact(
        &mut engine,
        args.stream.as_deref(),
        &rules,
        args.dry_run,
    )?;
    let mut out = stdout();
    if args.json.json {
        return json(&mut out, &plan);
    }
    let mut table = Table::new(
        vec![
            "stream", "version", "kind", "bytes", "action", "why", "label",
        ],
        vec![1, 3],
    );
    for (steps, action) in [
        (&plan.rebase, "rebase"),
        (&plan.drop, "drop"),
        (&plan.kept_labelled, "keep"),
    ] {
        for s in steps {
            let why = if action == "keep" {
                format!("{}, but labelled (--drop-labelled drops it)", s.reason)
            } else {
                s.reason.clone()
            };
            table.row(vec![
                clean(&s.stream, 40),
                group(s.version),
                s.kind.clone(),
                group(s.stored_size),
                action.into(),
                why,
                clean(s.label.as_deref().unwrap_or(""), 40),
            ]);
        }
    }
    if !plan.drop.is_empty() || !plan.rebase.is_empty() || !plan.kept_labelled.is_empty() {
        table.print(&mut out)?;
    }
    let verb = if plan.applied {
        "dropped"
    } else {
        "would drop"
    };
    writeln!(
        out,
        "{verb} {} snapshots ({} bytes), rebased {} deltas, kept {}{}",
        group(plan.drop.len() as u64),
        group(plan.bytes_freed),
        group(plan.rebase.len() as u64),
        group(plan.kept as u64),
        if plan.applied {
            ""
        } else {
            " (dry run: nothing changed)"
        }
    )?;
    out.flush()?;
    Ok(())
}

/// `rewind backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    db: DbArg,
    /// The new file to write the copy to.
    out: std::path::PathBuf,
}

pub(super) fn backup(args: &BackupArgs) -> Result<()> {
    if crate::source::postgres::url_of(&args.db.db).is_some() {
        anyhow::bail!(
            "{}: a server source is backed up by its server (pg_dump); rewind backs up its own databases",
            crate::source::mirror::canonical_text(&args.db.db)
        );
    }
    let bytes = crate::snapshot::backup::backup(&args.db.db, &args.out)?;
    let mut out = stdout();
    writeln!(
        out,
        "backed up {} to {} ({} bytes)",
        args.db.db.display(),
        args.out.display(),
        group(bytes)
    )?;
    out.flush()?;
    Ok(())
}

/// `rewind restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore from; it is verified first.
    backup: std::path::PathBuf,
    /// The database to replace.
    db: std::path::PathBuf,
    /// Replace the database if it exists.
    #[arg(long)]
    force: bool,
}

pub(super) fn restore(args: &RestoreArgs) -> Result<()> {
    let restored = crate::snapshot::backup::restore(&args.backup, &args.db, args.force)?;
    let mut out = stdout();
    writeln!(
        out,
        "restored {} from {} ({} events, {} snapshots, verified)",
        args.db.display(),
        args.backup.display(),
        group(restored.events),
        group(restored.snapshots as u64)
    )?;
    out.flush()?;
    Ok(())
}

/// `rewind archive`.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    #[command(flatten)]
    db: DbArg,
    /// Move events older than this (e.g. 90d), up to a kept snapshot that covers them.
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    older_than: crate::model::Micros,
    /// List what moved per stream, not only the totals.
    #[arg(long, short)]
    verbose: bool,
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn archive(args: &ArchiveArgs) -> Result<()> {
    let older_than = args.older_than;
    let mut engine = super::open(&args.db, crate::store::OpenMode::Existing)?;
    let now = engine.store().now_us()?;
    let report = crate::snapshot::archive::archive(&mut engine, older_than, now)?;
    let mut out = stdout();
    if args.json.json {
        return json(&mut out, &report);
    }
    if args.verbose {
        for m in &report.moved {
            writeln!(
                out,
                "{}: versions {}..={} archived",
                clean(&m.stream, 60),
                group(m.from + 1),
                group(m.upto)
            )?;
        }
    }
    let path = engine
        .store()
        .archive_path()
        .map_or_else(String::new, |p| p.display().to_string());
    let streams = engine.store().streams()?.len();
    if report.moved.is_empty() {
        writeln!(
            out,
            "moved nothing: no stream has events older than the horizon up to a snapshot that covers them ({} streams looked at)",
            group(streams as u64)
        )?;
    } else {
        writeln!(
            out,
            "moved {} events of {} of {} streams to {}{}",
            group(report.events),
            group(report.moved.len() as u64),
            group(streams as u64),
            clean(&path, 200),
            if args.verbose {
                ""
            } else {
                " (--verbose lists them)"
            }
        )?;
    }
    out.flush()?;
    Ok(())
}
