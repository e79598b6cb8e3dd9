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

/// The event bytes one batch of an archive run moves at most (a stream larger than this is a
/// batch of its own).
const BATCH_BYTES: u64 = 2 << 20;

/// Room left over beyond the estimate, for SQLite's own pages and the maintenance log.
const MARGIN_BYTES: u64 = 1 << 20;

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
    // What the run adds to the disk before it can give anything back: the archive grows by
    // what it moves, and each batch's log (the archive's copies, the main file's removals)
    // holds about that batch again, until the checkpoint after it.
    let sizes: Vec<u64> = engine.read(|engine| {
        plan.iter()
            .map(|(stream, upto)| {
                engine
                    .store()
                    .bytes_between(stream.id, stream.archived_upto, *upto)
            })
            .collect()
    })?;
    let total: u64 = sizes.iter().sum();
    let batch = sizes.iter().copied().max().unwrap_or(0).max(BATCH_BYTES);
    let need = total + 2 * batch.min(total.max(1)) + MARGIN_BYTES;
    if let Some(free) = engine.store().free_bytes()
        && free < need
    {
        return Err(crate::error::Error::Input(format!(
            "archiving needs about {} MB free beside the database and {} MB are; nothing was moved. \
             Free some space, or archive less (a longer --older-than)",
            need.div_ceil(1 << 20),
            free / (1 << 20)
        )));
    }
    let made = !engine.store().archive_path().is_some_and(|p| p.exists());
    engine.store().create_archive()?;
    engine.store().claim_archive_run()?;
    crate::failpoint::point("archive");
    // Batches of whole streams, each copied, then finished, then checkpointed, so that the
    // logs never hold more than a batch.
    let mut start = 0;
    let outcome = (|| -> Result<()> {
        while start < plan.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < plan.len() && (end == start || bytes + sizes[end] <= BATCH_BYTES) {
                bytes += sizes[end];
                end += 1;
            }
            let batch = &plan[start..end];
            engine.write(|engine| {
                for (stream, upto) in batch {
                    engine
                        .store()
                        .copy_to_archive(stream.id, stream.archived_upto, *upto)?;
                }
                Ok(())
            })?;
            crate::failpoint::point("archive");
            engine.write(|engine| {
                for (stream, upto) in batch {
                    report.events +=
                        engine
                            .store()
                            .finish_archive(stream.id, stream.archived_upto, *upto)?
                            as u64;
                    crate::failpoint::point("archive");
                    report.moved.push(Moved {
                        stream: stream.name.clone(),
                        from: stream.archived_upto,
                        upto: *upto,
                    });
                }
                if end == plan.len() {
                    engine.store().release_archive_run()?;
                }
                Ok(())
            })?;
            engine.store().checkpoint();
            start = end;
        }
        Ok(())
    })();
    if let Err(err) = outcome {
        // A run that fails (a full disk, say) gives back what it added: its copies beyond
        // what is archived, and the archive itself if it made it and nothing is in it.
        engine.store().abandon_archive_run(made);
        return Err(err);
    }
    report.elapsed_us = crate::engine::elapsed_us(started);
    let detail = serde_json::json!({"older_than_us": older_than, "moved": report.moved, "events": report.events});
    engine.write(|engine| {
        engine
            .store()
            .log("archive", None, &detail, report.elapsed_us)
    })?;
    Ok(report)
}
