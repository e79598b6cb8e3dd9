//! `verify` of a source beyond its mirror's own checks: the mirror against what the file
//! stores (a LangGraph checkpoint, a Redux lifted state's states), or the file's own
//! snapshots against the user's reducer (`eventsourcing`). The command line and the debugger
//! both add these to their report.

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::{Micros, group};
use crate::snapshot::verify::Report;

use super::Mirrored;

/// Adds to `report` what checking the mirror against its source finds: notes of what was
/// compared, and findings (kind `source`) where they disagree; `only` keeps one stream's.
/// A mapped source's snapshots that expire are judged as of `now` (else the newest time the
/// source records).
pub fn check_against_source(
    source: &Path,
    mirrored: &Mirrored,
    only: Option<&str>,
    now: Option<Micros>,
    report: &mut Report,
) -> Result<()> {
    check_mirror(source, &mirrored.path, mirrored.format, only, now, report)
}

/// [`check_against_source`] for a mirror known by its path (the format it records).
pub fn check_mirror_at(
    source: &Path,
    mirror: &Path,
    now: Option<Micros>,
    report: &mut Report,
) -> Result<()> {
    let format = crate::store::Store::open(mirror, crate::store::OpenMode::ReadOnly)?
        .meta("source.format")?
        .unwrap_or_default();
    check_mirror(source, mirror, &format, None, now, report)
}

fn check_mirror(
    source: &Path,
    mirror: &Path,
    format: &str,
    only: Option<&str>,
    now: Option<Micros>,
    report: &mut Report,
) -> Result<()> {
    let findings_before = report.findings.len();
    match format {
        "langgraph" => langgraph(source, mirror, report)?,
        "eventsourcing" => stored_snapshots(source, mirror, only, report)?,
        "marten" => marten_snapshots(source, mirror, only, report)?,
        "redux" => redux(source, mirror, report)?,
        "mapped" => mapped_snapshots(source, mirror, only, now, report)?,
        _ => {}
    }
    let mut kept = 0;
    report.findings.retain(|f| {
        kept += 1;
        kept <= findings_before || only.is_none_or(|s| s == f.stream)
    });
    Ok(())
}

/// A LangGraph file: every checkpoint it stores, reproduced by the mirror.
fn langgraph(source: &Path, mirror: &Path, report: &mut Report) -> Result<()> {
    // A server's checkpoints are checked as staged beside the mirror by the sync before.
    let conn = if crate::source::postgres::url_of(source).is_some() {
        super::pg_langgraph::open_staged(&super::pg_langgraph::staged_path(mirror))?
    } else {
        super::super::sqlite::open(source)
            .map_err(Error::Input)?
            .conn
    };
    let mut engine = crate::engine::Engine::open(mirror, crate::store::OpenMode::ReadOnly)?;
    let settings = super::super::settings::load(source)?;
    let folds = super::langgraph::folds(&settings.channels)?;
    let checked = super::langgraph::check(&mut engine, &conn, source, &folds)?;
    report.notes.push(format!(
        "{} checkpoints of the source reproduced exactly{}{}",
        group(checked.equal),
        if checked.unreadable > 0 {
            format!(
                "; {} cannot be read (pickle or encrypted), so not compared",
                group(checked.unreadable)
            )
        } else {
            String::new()
        },
        if checked.newer > 0 {
            format!(
                "; {} arrived after the sync and are left for the next one",
                group(checked.newer)
            )
        } else {
            String::new()
        }
    ));
    report.findings.extend(checked.findings);
    Ok(())
}

/// An event source's own snapshots against the replay with the user's reducer: those that
/// disagree are findings; without a reducer set, the report says none could be checked.
fn stored_snapshots(
    source: &Path,
    mirror: &Path,
    only: Option<&str>,
    report: &mut Report,
) -> Result<()> {
    let mut engine = crate::engine::Engine::open(mirror, crate::store::OpenMode::ReadOnly)?;
    let checked = super::eventsourcing::check(&mut engine, only)?;
    let total = checked.equal + checked.unchecked + checked.disagree;
    report.notes.push(if checked.reducer_set {
        format!(
            "{} of the file's {} snapshots are the state your reducer gives{}",
            group(checked.equal),
            group(total),
            if checked.unchecked > 0 {
                format!(
                    "; {} could not be checked (unreadable, or after an event the reducer cannot apply)",
                    group(checked.unchecked)
                )
            } else {
                String::new()
            }
        )
    } else {
        format!(
            "the file's {} snapshots are not checked: no reducer is set (rewind reducer {} --set 'jq:…')",
            group(total),
            source.display()
        )
    });
    report.findings.extend(checked.findings);
    Ok(())
}

/// A Marten store's stream snapshots (`mt_streams`) against the events' states.
fn marten_snapshots(
    source: &Path,
    mirror: &Path,
    only: Option<&str>,
    report: &mut Report,
) -> Result<()> {
    let Some(url) = crate::source::postgres::url_of(source) else {
        return Ok(());
    };
    let spec = crate::source::postgres::Spec::from_env(url)
        .map_err(|e| Error::Input(format!("the server source: {e}")))?;
    let mut engine = crate::engine::Engine::open(mirror, crate::store::OpenMode::ReadOnly)?;
    let (equal, differ, unchecked) =
        super::postgres::check_marten(&spec, &mut engine, only, &mut report.findings)?;
    report.notes.push(format!(
        "{} of the store's {} stream snapshots (mt_streams) are the state the events give{}",
        group(equal),
        group(equal + differ + unchecked),
        if unchecked > 0 {
            format!(
                "; {} could not be checked (no such version in the mirror)",
                group(unchecked)
            )
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// A mapped source's own snapshots (its mapping's `[snapshots]`) against the events' states.
fn mapped_snapshots(
    source: &Path,
    mirror: &Path,
    only: Option<&str>,
    now: Option<Micros>,
    report: &mut Report,
) -> Result<()> {
    let settings = super::super::settings::load(source)?;
    let Some(spec) = &settings.mapping else {
        return Ok(());
    };
    // A server's rows are checked as staged beside the mirror by the sync before.
    let (conn, mapping) = if crate::source::postgres::url_of(source).is_some() {
        let mapping = super::super::mapping::Mapping::load_for(
            spec,
            super::super::mapping::Dialect::Postgres,
        )
        .map_err(Error::Input)?;
        (
            super::pg_mapped::open_staged(&super::pg_mapped::staged_path(mirror))?,
            super::pg_mapped::over_staged(&mapping),
        )
    } else {
        (
            super::super::sqlite::open(source)
                .map_err(Error::Input)?
                .conn,
            super::super::mapping::Mapping::load(spec).map_err(Error::Input)?,
        )
    };
    if mapping.snapshots.is_none() {
        return Ok(());
    }
    let at_source = |what: String| Error::Input(format!("{}: {what}", source.display()));
    let mut engine = crate::engine::Engine::open(mirror, crate::store::OpenMode::ReadOnly)?;
    let now = match now {
        Some(now) => Some(now),
        None => super::mapped::streams::source_now(&engine, &conn, &mapping).map_err(at_source)?,
    };
    let checked = super::mapped::snapshots::check(&mut engine, &conn, &mapping, now, only)
        .map_err(at_source)?;
    let mut note = format!(
        "{} of the source's {} snapshots are the state the events give",
        group(checked.valid.len() as u64),
        group(checked.total)
    );
    if checked.expired > 0 {
        note.push_str(&format!(
            "; {} expired as of {}, ignored",
            group(checked.expired),
            now.map_or_else(|| "-".into(), crate::time::format)
        ));
    }
    if checked.unchecked > 0 {
        note.push_str(&format!(
            "; {} could not be checked (the events cannot be replayed to them)",
            group(checked.unchecked)
        ));
    }
    report.notes.push(note);
    report.findings.extend(checked.findings);
    Ok(())
}

/// A Redux lifted state: every state it stores, reproduced by the mirror.
fn redux(source: &Path, mirror: &Path, report: &mut Report) -> Result<()> {
    let bytes = std::fs::read(source).map_err(|cause| Error::Io {
        path: source.to_path_buf(),
        cause,
    })?;
    let mut engine = crate::engine::Engine::open(mirror, crate::store::OpenMode::ReadOnly)?;
    let (equal, findings) = super::redux::check(&mut engine, source, &bytes)?;
    if equal > 0 || !findings.is_empty() {
        report.notes.push(format!(
            "{} states of the file reproduced exactly",
            group(equal)
        ));
    }
    report.findings.extend(findings);
    Ok(())
}
