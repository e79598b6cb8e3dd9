//! Stepping through one stream the way a debugger does: one state, changed in place, forward
//! by applying events and back by undoing them ([`crate::undo`]). A step then costs what the
//! event touches, where a reconstruction copies or decodes the whole state and a diff
//! compares all of it. A jump, or a step back past what was recorded, starts again from the
//! engine's nearest starting point (snapshot or cached state), a little further back when
//! going backwards so that the next steps back are undone again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::diff::Change;
use crate::engine::{Engine, apply_row_undoable};
use crate::error::{Error, Result};
use crate::model::{Provenance, StreamId, StreamInfo, Target};
use crate::reduce::Reducer;
use crate::store::EventRow;
use crate::undo::Undo;

/// Undo records kept at most, by count and by (estimated) bytes; the oldest go first.
const LOG_RECORDS: usize = 4096;
const LOG_BYTES: u64 = 16 << 20;
/// Stepping forward at most this far applies the events in between; further is a jump.
const FORWARD: u64 = 256;
/// A step back past the records starts again at least this far below the target.
const BACK_WINDOW: u64 = 16;
/// Stepping back with this few records left, the position below them is built ahead, on
/// another thread; building it ahead replays at most this many events.
const AHEAD_AT: usize = 12;
const AHEAD_EVENTS: u64 = 1024;

/// Where the stepper is: a stream, a version, its state and how to go back from it.
#[derive(Default)]
pub struct Stepper {
    at: Option<Position>,
    ahead: Option<Ahead>,
}

/// A position being built on another thread, below the records of the current one.
struct Ahead {
    stream: StreamId,
    fingerprint: String,
    /// The version it will be at, and the snapshot it starts from.
    version: u64,
    snapshot: Option<u64>,
    at: u64,
    built: std::thread::JoinHandle<Option<Position>>,
}

struct Position {
    stream: StreamId,
    fingerprint: String,
    version: u64,
    state: Arc<Value>,
    /// Undo records of the events up to `version`, the newest last.
    log: VecDeque<Undo>,
    log_bytes: u64,
}

/// The state the stepper arrived at.
pub struct Step {
    /// The state at the version asked for. Holding on to it past the next step makes that
    /// step copy the state.
    pub state: Arc<Value>,
    /// The changes of the event at this version (empty at version 0), when recorded.
    pub changes: Option<Vec<Change>>,
    /// How the state was obtained.
    pub provenance: Provenance,
}

impl Stepper {
    /// The state the stepper holds now, if any (after a failed step: the last good one).
    pub fn state(&self) -> Option<Arc<Value>> {
        self.at.as_ref().map(|p| Arc::clone(&p.state))
    }

    /// Forgets the state and its records.
    pub fn clear(&mut self) {
        discard(self.at.take());
        self.ahead = None;
    }
}

impl Engine {
    /// Moves `stepper` to `version` of `stream` and returns the state there, with the
    /// changes of the event at that version when the stepper recorded them.
    pub fn step_to(
        &mut self,
        stepper: &mut Stepper,
        stream: &StreamInfo,
        version: u64,
    ) -> Result<Step> {
        self.read(|engine| engine.step(stepper, stream, version))
    }

    fn step(&mut self, stepper: &mut Stepper, stream: &StreamInfo, version: u64) -> Result<Step> {
        let started = Instant::now();
        let reducer = self.reducer(&stream.reducer)?;
        let fingerprint = reducer.fingerprint().to_string();
        let version = self.resolve(stream, Target::Version(version))?;
        let mut provenance = Provenance {
            version,
            snapshot: None,
            cached: None,
            replayed: 0,
            undone: 0,
            elapsed_us: 0,
            faults: Vec::new(),
        };
        if stepper
            .at
            .as_ref()
            .is_some_and(|p| p.stream != stream.id || p.fingerprint != fingerprint)
        {
            stepper.clear();
        }
        let mut back = false;
        let moved = match &mut stepper.at {
            Some(p) if p.version == version => {
                provenance.cached = Some(version);
                Ok(true)
            }
            Some(p) if version < p.version => {
                back = true;
                let undone = p.version - version;
                if reachable(p.log.len(), undone, version) {
                    provenance.cached = Some(p.version);
                    provenance.undone = undone;
                    let state = Arc::make_mut(&mut p.state);
                    for _ in 0..undone {
                        if let Some(undo) = p.log.pop_back() {
                            p.log_bytes -= undo.weight();
                            undo.undo(state);
                            p.version -= 1;
                        }
                    }
                    Ok(true)
                } else {
                    Ok(false)
                }
            }
            Some(p) if version - p.version <= FORWARD => {
                provenance.cached = Some(p.version);
                provenance.replayed = version - p.version;
                self.forward(p, stream, &reducer, version).map(|()| true)
            }
            _ => Ok(false),
        };
        let arrived = moved?
            || back && self.take_ahead(stepper, stream, &fingerprint, version, &mut provenance);
        if !arrived {
            // Start again, from below the target: the event at the target must be recorded
            // (its changes are shown), and going back, the next steps back too.
            discard(stepper.at.take());
            stepper.ahead = None;
            let below = if back { BACK_WINDOW } else { 1 };
            let (state, at) = self.start_at_or_below(
                stream,
                &fingerprint,
                version.saturating_sub(below),
                &mut provenance,
            )?;
            provenance.replayed = version - at;
            let mut p = Position {
                stream: stream.id,
                fingerprint: fingerprint.clone(),
                version: at,
                state: Arc::new(state),
                log: VecDeque::new(),
                log_bytes: 0,
            };
            let done = self.forward(&mut p, stream, &reducer, version);
            stepper.at = Some(p);
            done?;
        }
        if back {
            self.build_ahead(stepper, stream, &reducer);
        }
        let Some(p) = &stepper.at else {
            return Err(Error::Input("the stepper lost its state".into()));
        };
        let changes = if version == 0 {
            Some(Vec::new())
        } else {
            p.log.back().map(|undo| undo.changes(&p.state))
        };
        provenance.elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        Ok(Step {
            state: Arc::clone(&p.state),
            changes,
            provenance,
        })
    }

    /// Takes the position built ahead if it can reach `version` by undoing.
    fn take_ahead(
        &self,
        stepper: &mut Stepper,
        stream: &StreamInfo,
        fingerprint: &str,
        version: u64,
        provenance: &mut Provenance,
    ) -> bool {
        let Some(ahead) = stepper.ahead.take() else {
            return false;
        };
        if ahead.stream != stream.id
            || ahead.fingerprint != fingerprint
            || version > ahead.version
            || version < ahead.at
        {
            return false;
        }
        let Ok(Some(mut p)) = ahead.built.join() else {
            return false;
        };
        if !reachable(p.log.len(), ahead.version - version, version) {
            return false;
        }
        let state = Arc::make_mut(&mut p.state);
        while p.version > version {
            if let Some(undo) = p.log.pop_back() {
                p.log_bytes -= undo.weight();
                undo.undo(state);
            }
            p.version -= 1;
        }
        provenance.snapshot = ahead.snapshot;
        provenance.replayed = version - ahead.at;
        discard(stepper.at.replace(p));
        true
    }

    /// Going back with few records left: builds the position below them on another thread
    /// (its snapshot decoded, the events up to it applied with their records), so that the
    /// step back past the records does not wait for that work. Anything unusual (a stale
    /// or bad snapshot, a jq reducer, a long replay) is left to the step itself.
    fn build_ahead(&self, stepper: &mut Stepper, stream: &StreamInfo, reducer: &Reducer) {
        let Some(p) = &stepper.at else { return };
        let lowest = p.version - p.log.len() as u64;
        if stepper.ahead.is_some() || p.log.len() > AHEAD_AT || lowest == 0 {
            return;
        }
        if matches!(reducer, Reducer::Jq(_)) {
            return;
        }
        // The next step back past the records goes to `lowest`, and shows its changes.
        let target = lowest;
        let upto = target.saturating_sub(BACK_WINDOW);
        let candidate = match self.store().snapshot_candidates(stream.id, 0, upto) {
            Ok(page) => page.into_iter().next(),
            Err(_) => return,
        };
        let (snapshot, at, blobs) = match candidate {
            Some(snap) => match self.snapshot_blobs(&snap, &p.fingerprint) {
                Ok(blobs) => (Some(snap.version), snap.version, Some(blobs)),
                Err(_) => return,
            },
            None => (None, 0, None),
        };
        if target - at > AHEAD_EVENTS {
            return;
        }
        let mut rows = Vec::new();
        let read = self.store().replay(stream, at, target, |row| {
            rows.push(OwnedRow::from(&row));
            Ok(())
        });
        if read.is_err() || rows.len() as u64 != target - at {
            return;
        }
        let stream_id = stream.id;
        let (stream, reducer, fingerprint) =
            (stream.clone(), reducer.clone(), p.fingerprint.clone());
        let ahead_fingerprint = fingerprint.clone();
        let built = std::thread::spawn(move || {
            let state = match blobs {
                Some(blobs) => blobs.decode().ok()?,
                None => Value::Object(serde_json::Map::new()),
            };
            let mut p = Position {
                stream: stream.id,
                fingerprint,
                version: at,
                state: Arc::new(state),
                log: VecDeque::new(),
                log_bytes: 0,
            };
            let state = Arc::make_mut(&mut p.state);
            for row in &rows {
                let undo = apply_row_undoable(&stream, &reducer, state, &row.borrow()).ok()?;
                p.version = row.version;
                record(&mut p.log, &mut p.log_bytes, undo);
            }
            Some(p)
        });
        stepper.ahead = Some(Ahead {
            stream: stream_id,
            fingerprint: ahead_fingerprint,
            version: target,
            snapshot,
            at,
            built,
        });
    }

    /// Applies the events after `p.version` up to `upto`, recording how to undo each. On
    /// error `p` is at the last event that applied.
    fn forward(
        &self,
        p: &mut Position,
        stream: &StreamInfo,
        reducer: &Reducer,
        upto: u64,
    ) -> Result<()> {
        let Position {
            version,
            state,
            log,
            log_bytes,
            ..
        } = p;
        let state = Arc::make_mut(state);
        self.store().replay(stream, *version, upto, |row| {
            if row.version != *version + 1 {
                return Err(Error::MissingVersion {
                    stream: stream.name.clone(),
                    version: *version + 1,
                });
            }
            let undo = apply_row_undoable(stream, reducer, state, &row)?;
            *version = row.version;
            record(log, log_bytes, undo);
            Ok(())
        })?;
        if *version != upto {
            return Err(Error::MissingVersion {
                stream: stream.name.clone(),
                version: *version + 1,
            });
        }
        Ok(())
    }
}

/// Whether undoing `undone` of `records` reaches a version whose changes are still known:
/// one record must be left for it, unless it is version 0.
fn reachable(records: usize, undone: u64, version: u64) -> bool {
    undone < records as u64 || (version == 0 && undone == records as u64)
}

/// Adds an undo record, dropping the oldest beyond the limits.
fn record(log: &mut VecDeque<Undo>, log_bytes: &mut u64, undo: Undo) {
    *log_bytes += undo.weight();
    log.push_back(undo);
    while log.len() > LOG_RECORDS || (*log_bytes > LOG_BYTES && log.len() > 1) {
        if let Some(old) = log.pop_front() {
            *log_bytes -= old.weight();
        }
    }
}

/// Lets go of a position on another thread: freeing a state of megabytes takes a frame's
/// worth of time, and nothing waits for it.
fn discard(position: Option<Position>) {
    if let Some(p) = position {
        std::thread::spawn(move || drop(p));
    }
}

/// An event row that can cross to another thread.
struct OwnedRow {
    seq: i64,
    version: u64,
    kind: String,
    ts: crate::model::Micros,
    data: String,
    meta: Option<String>,
}

impl OwnedRow {
    fn from(row: &EventRow<'_>) -> Self {
        Self {
            seq: row.seq,
            version: row.version,
            kind: row.kind.to_string(),
            ts: row.ts,
            data: row.data.to_string(),
            meta: row.meta.map(str::to_string),
        }
    }

    fn borrow(&self) -> EventRow<'_> {
        EventRow {
            seq: self.seq,
            version: self.version,
            kind: &self.kind,
            ts: self.ts,
            data: &self.data,
            meta: self.meta.as_deref(),
        }
    }
}
