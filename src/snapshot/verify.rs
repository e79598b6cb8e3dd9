//! `verify`: every stored snapshot is checked (size, checksum, fingerprint) and compared with
//! a replay of the events before it; the event chain (dense versions, seq growing with
//! version) and SQLite's own integrity are checked too. Streams are verified in parallel,
//! each worker on its own connection.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::diff::Change;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::StreamInfo;
use crate::store::OpenMode;

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A snapshot that cannot be read: size, zstd, checksum or JSON.
    Corrupt,
    /// A snapshot built with another reducer than the stream's current one.
    Stale,
    /// A snapshot that reads fine but differs from the replay of the events before it.
    Divergence,
    /// A delta snapshot whose base is missing.
    MissingBase,
    /// The event chain is broken: a version is missing or seq does not grow with version.
    Chain,
    /// An event the stream's reducer cannot apply.
    Reduce,
    /// An event whose application went over its budget (see [`crate::budget`]).
    OverBudget,
    /// SQLite's integrity check failed.
    Integrity,
}

/// One problem found by `verify`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The stream (empty for database-wide findings).
    pub stream: String,
    /// The version of the snapshot or event concerned.
    pub version: Option<u64>,
    /// What kind of problem.
    pub kind: FindingKind,
    /// What exactly.
    pub detail: String,
    /// For a divergence: how the snapshot differs from the replay (snapshot → replay).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<Change>,
}

/// The outcome of `verify`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Streams checked.
    pub streams: usize,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Events replayed.
    pub events: u64,
    /// Problems, by stream and version.
    pub findings: Vec<Finding>,
    /// Wall time, µs.
    pub elapsed_us: u64,
}

/// Verifies a database file (all streams, or one), calling `progress(done, total)` as
/// streams finish.
pub fn verify(
    path: &Path,
    only: Option<&str>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Report> {
    let started = Instant::now();
    let engine = Engine::open(path, OpenMode::ReadOnly)?;
    let store = engine.store();
    let damaged = |detail: String| Finding {
        stream: String::new(),
        version: None,
        kind: FindingKind::Integrity,
        detail,
        diff: Vec::new(),
    };
    // A file that opens but whose pages are damaged is a finding, not a failure to verify.
    let mut findings: Vec<Finding> = store
        .integrity_check()
        .unwrap_or_else(|err| vec![crate::error::describe(&err)])
        .into_iter()
        .map(damaged)
        .collect();
    let listed = match only {
        Some(name) => store.require_stream(name).map(|s| vec![s]),
        None => store.streams(),
    };
    let streams: Vec<StreamInfo> = match listed {
        Ok(streams) => streams,
        Err(err) if err.is_corrupt() => {
            findings.push(damaged(format!(
                "the stream list cannot be read: {}",
                crate::error::describe(&err)
            )));
            Vec::new()
        }
        Err(err) => return Err(err),
    };
    let total = streams.len();
    let done = AtomicUsize::new(0);
    let results = super::on_workers(
        path,
        OpenMode::ReadOnly,
        streams,
        "verify",
        |engine, stream| {
            let mut found = Vec::new();
            // The stream is read again inside the transaction that reads its events and
            // snapshots: its head and how far it is archived are then of the same moment.
            let checked = engine.read(|engine| {
                let stream = engine.store().require_stream(&stream.name)?;
                verify_stream(engine, &stream, &mut found)
            });
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            match checked {
                Ok((s, e)) => Ok((s, e, found)),
                Err(err) => Err((stream.name.clone(), err)),
            }
        },
    )?;
    let (mut snapshots, mut events) = (0, 0);
    for result in results {
        match result {
            Ok((s, e, mut found)) => {
                snapshots += s;
                events += e;
                findings.append(&mut found);
            }
            Err((stream, err)) if err.is_corrupt() => findings.push(Finding {
                stream,
                ..damaged(format!(
                    "its rows cannot be read: {}",
                    crate::error::describe(&err)
                ))
            }),
            Err((_, err)) => return Err(err),
        }
    }
    findings.sort_by(|a, b| (&a.stream, a.version).cmp(&(&b.stream, b.version)));
    Ok(Report {
        streams: total,
        snapshots,
        events,
        findings,
        elapsed_us: crate::engine::elapsed_us(started),
    })
}

/// Replays one stream from the start, segment by segment between its snapshots, comparing
/// each snapshot with the replay. Returns (snapshots checked, events replayed).
fn verify_stream(
    engine: &mut Engine,
    stream: &StreamInfo,
    found: &mut Vec<Finding>,
) -> Result<(usize, u64)> {
    let finding = |version: Option<u64>, kind, detail: String| Finding {
        stream: stream.name.clone(),
        version,
        kind,
        detail,
        diff: Vec::new(),
    };
    let reducer = engine.reducer(&stream.reducer)?;
    let fingerprint = reducer.fingerprint();
    let snapshots = engine.store().snapshots(Some(stream.id))?;
    let ids: std::collections::HashSet<i64> = snapshots.iter().map(|s| s.id).collect();
    let mut state = Value::Object(serde_json::Map::new());
    let mut at = 0;
    let mut checked = 0;
    // Seq must grow with version; checked as the replay reads each row.
    let mut last_seq = i64::MIN;
    let mut out_of_order = Vec::new();
    let mut check_seq = |row: &crate::store::EventRow<'_>, _: &Value| {
        if row.seq <= last_seq {
            out_of_order.push(row.version);
        }
        last_seq = row.seq;
    };
    // A replay that fails ends the walk; what was found on the way is still reported.
    let mut failed = None;
    for snap in &snapshots {
        if let Some(base) = snap.base_id.filter(|b| !ids.contains(b)) {
            found.push(finding(
                Some(snap.version),
                FindingKind::MissingBase,
                format!("its base snapshot #{base} is missing"),
            ));
        }
        if snap.version > stream.head {
            found.push(finding(
                Some(snap.version),
                FindingKind::Chain,
                format!("snapshot beyond the stream's head v{}", stream.head),
            ));
            continue;
        }
        if let Err(err) = engine.replay_onto(
            stream,
            &reducer,
            &mut state,
            at,
            snap.version,
            &mut check_seq,
        ) {
            failed = Some(err);
            break;
        }
        at = snap.version;
        checked += 1;
        if snap.fingerprint != fingerprint {
            found.push(finding(
                Some(snap.version),
                FindingKind::Stale,
                format!(
                    "built with reducer {}, the stream now uses {fingerprint}",
                    snap.fingerprint
                ),
            ));
            continue;
        }
        match engine.decode_snapshot(snap, fingerprint) {
            Err(reason) => found.push(finding(Some(snap.version), FindingKind::Corrupt, reason)),
            Ok(stored) if stored != state => found.push(Finding {
                diff: crate::diff::changes(&stored, &state),
                ..finding(
                    Some(snap.version),
                    FindingKind::Divergence,
                    "differs from the replay of the events before it".into(),
                )
            }),
            Ok(_) => {}
        }
    }
    let outcome = match failed {
        Some(err) => Err(err),
        None => engine.replay_onto(
            stream,
            &reducer,
            &mut state,
            at,
            stream.head,
            &mut check_seq,
        ),
    };
    for version in out_of_order {
        found.push(finding(
            Some(version),
            FindingKind::Chain,
            "its seq is not greater than the previous version's".into(),
        ));
    }
    if let Err(err) = outcome {
        found.push(replay_finding(stream, err));
        return Ok((checked, at));
    }
    Ok((checked, stream.head))
}

fn replay_finding(stream: &StreamInfo, err: Error) -> Finding {
    let (version, kind) = match &err {
        Error::OverBudget { version, limit, .. } => {
            return Finding {
                stream: stream.name.clone(),
                version: Some(*version),
                kind: FindingKind::OverBudget,
                detail: format!("applying the event went over its limit of {limit}"),
                diff: Vec::new(),
            };
        }
        Error::Reduce { version, .. } => (Some(*version), FindingKind::Reduce),
        Error::MissingVersion { version, .. } => (Some(*version), FindingKind::Chain),
        _ => (None, FindingKind::Chain),
    };
    Finding {
        stream: stream.name.clone(),
        version,
        kind,
        detail: crate::error::describe(&err),
        diff: Vec::new(),
    }
}
