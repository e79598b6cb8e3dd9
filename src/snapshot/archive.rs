//! Archive: events older than a horizon, up to a kept snapshot that covers them, move to a
//! sidecar database beside the main one (`DB.archive`), attached whenever the main one is
//! opened, so state, log and export before the horizon keep working.
//!
//! The two files cannot commit together (WAL makes a transaction atomic per file), so the
//! move is ordered to be safe at any instant: (1) mark the run pending in the main file;
//! (2) copy the events into the archive and commit there; (3) in one main transaction
//! delete the originals, advance `archived_upto` and clear the mark. Readers take versions
//! up to `archived_upto` from the archive and the rest from the main file, so a copy in both
//! places is never read twice, and a writable open that finds the mark removes copies beyond
//! `archived_upto`: every event ends up in exactly one place.

use std::time::Instant;

use serde::Serialize;

use crate::engine::Engine;
use crate::error::Result;
use crate::model::{Micros, StreamInfo};
use crate::store::ARCHIVE_PENDING;

/// What one archive run moved for a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Moved {
    /// The stream.
    pub stream: String,
    /// Versions above this one were already in the main file…
    pub from: u64,
    /// … and up to this one are in the archive now (a usable snapshot is at this version).
    pub upto: u64,
}

/// What an archive run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Per stream.
    pub moved: Vec<Moved>,
    /// Events moved in all.
    pub events: u64,
    /// Time taken, µs.
    pub elapsed_us: u64,
}

/// Moves, for every stream, the events up to its newest usable snapshot whose event time
/// is at least `older_than` µs before `now` into the archive.
pub fn archive(engine: &mut Engine, older_than: Micros, now: Micros) -> Result<Report> {
    let started = Instant::now();
    let horizon = now.saturating_sub(older_than);
    let plan: Vec<(StreamInfo, u64)> = engine.read(|engine| {
        let mut plan = Vec::new();
        for stream in engine.store().streams()? {
            let fingerprint = engine.reducer(&stream.reducer)?.fingerprint().to_string();
            let target = engine
                .store()
                .snapshots(Some(stream.id))?
                .into_iter()
                .rev()
                .filter(|s| s.ts <= horizon && s.version > stream.archived_upto)
                .find(|s| engine.decode_snapshot(s, &fingerprint).is_ok())
                .map(|s| s.version);
            if let Some(upto) = target {
                plan.push((stream, upto));
            }
        }
        Ok(plan)
    })?;
    let mut report = Report::default();
    if plan.is_empty() {
        return Ok(report);
    }
    engine.store().create_archive()?;
    engine.write(|engine| engine.store().mark_archive_pending())?;
    crate::failpoint::point("archive");
    engine.write(|engine| {
        for (stream, upto) in &plan {
            engine
                .store()
                .copy_to_archive(stream.id, stream.archived_upto, *upto)?;
        }
        Ok(())
    })?;
    crate::failpoint::point("archive");
    engine.write(|engine| {
        for (stream, upto) in &plan {
            report.events +=
                engine
                    .store()
                    .finish_archive(stream.id, stream.archived_upto, *upto)? as u64;
            crate::failpoint::point("archive");
            report.moved.push(Moved {
                stream: stream.name.clone(),
                from: stream.archived_upto,
                upto: *upto,
            });
        }
        engine.store().delete_meta(ARCHIVE_PENDING)
    })?;
    report.elapsed_us = crate::engine::elapsed_us(started);
    let detail = serde_json::json!({"older_than_us": older_than, "moved": report.moved, "events": report.events});
    engine.write(|engine| {
        engine
            .store()
            .log("archive", None, &detail, report.elapsed_us)
    })?;
    Ok(report)
}
