//! Stepping through one stream the way a debugger does: one state, changed in place, forward
//! by applying events and back by undoing them ([`crate::undo`]). A step then costs what the
//! event touches, where a reconstruction copies or decodes the whole state and a diff
//! compares all of it. A jump, or a step back past what was recorded, starts again from the
//! engine's nearest starting point (snapshot or cached state), a little further back when
//! going backwards so that the next steps back are undone again; long replays leave
//! checkpoints in the engine's cache, as reconstructions do.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use serde_json::Value;

use crate::diff::Change;
use crate::engine::{Checkpoints, Engine, apply_row_undoable, grown};
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
/// Stepping back with this few records left, the position below them is built ahead on
/// another thread, if that means reading at most this many bytes of events.
const AHEAD_AT: usize = 12;
const AHEAD_BYTES: usize = 32 << 20;

/// The names of the stepper's helper threads begin with this, so that the debugger's panic
/// hook can tell them from its own thread: a helper that fails leaves the step to do the
/// work itself.
pub const THREAD_PREFIX: &str = "rewind-";

/// Where the stepper is: a stream, a version, its state and how to go back from it.
pub struct Stepper {
    at: Option<Position>,
    ahead: Option<Ahead>,
    /// A position built ahead and no longer wanted, while its thread still runs: no other
    /// is started until it ends, so jumping about never piles up replays.
    retired: Option<JoinHandle<Option<(Position, Checkpoints)>>>,
    /// Undo records kept at most.
    records: usize,
}

impl Default for Stepper {
    fn default() -> Self {
        Self::with_records(LOG_RECORDS)
    }
}

struct Position {
    stream: StreamId,
    fingerprint: String,
    version: u64,
    state: Arc<Value>,
    /// Roughly how many bytes of JSON the state holds, as the engine's cache counts them.
    weight: u64,
    /// Undo records of the events up to `version`, the newest last, at most `records`.
    log: VecDeque<Undo>,
    log_bytes: u64,
    records: usize,
}

/// A position being built on another thread, below the records of the current one.
struct Ahead {
    stream: StreamId,
    fingerprint: String,
    /// The version it will be at, where it starts, and the snapshot there if any.
    version: u64,
    at: u64,
    snapshot: Option<u64>,
    built: JoinHandle<Option<(Position, Checkpoints)>>,
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
    /// A stepper that keeps at most `records` undo records (at least one; the default keeps
    /// 4,096, and at most 16 MiB of them).
    pub fn with_records(records: usize) -> Self {
        Self {
            at: None,
            ahead: None,
            retired: None,
            records: records.max(1),
        }
    }

    /// Forgets the state and its records.
    pub fn clear(&mut self) {
        discard(self.at.take());
        self.retire();
    }

    /// Lets go of the position built ahead. Its result is freed on a helper thread.
    fn retire(&mut self) {
        let Some(ahead) = self.ahead.take() else {
            return;
        };
        if let Some(old) = self.retired.replace(ahead.built) {
            spawn("free", move || drop(old.join()));
        }
    }

    /// Whether a retired position is still being built.
    fn busy(&mut self) -> bool {
        match self.retired.take() {
            Some(handle) if !handle.is_finished() => {
                self.retired = Some(handle);
                true
            }
            Some(done) => {
                spawn("free", move || drop(done.join()));
                false
            }
            None => false,
        }
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
        let mut provenance = Provenance::at(version);
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
                if reachable(p, version) {
                    provenance.cached = Some(p.version);
                    provenance.undone = p.version - version;
                    undo_to(p, version);
                    Ok(true)
                } else {
                    Ok(false)
                }
            }
            Some(p) if version - p.version <= FORWARD => {
                provenance.cached = Some(p.version);
                provenance.replayed = version - p.version;
                let mut checkpoints = Checkpoints::new(p.version, version);
                let done = self.forward(p, stream, &reducer, version, &mut checkpoints);
                self.keep(checkpoints, stream.id, &fingerprint);
                done.map(|()| true)
            }
            _ => Ok(false),
        };
        let arrived = moved?
            || back && self.take_ahead(stepper, stream, &fingerprint, version, &mut provenance);
        if !arrived {
            // Start again, from below the target: the event at the target must be recorded
            // (its changes are shown), and going back, the next steps back too.
            discard(stepper.at.take());
            stepper.retire();
            let below = if back { BACK_WINDOW } else { 1 };
            let (state, at, weight) = self.start_at_or_below(
                stream,
                &fingerprint,
                version.saturating_sub(below),
                &mut provenance,
            )?;
            provenance.replayed = version - at;
            let mut p = Position::new(
                stream.id,
                &fingerprint,
                (at, state, weight),
                stepper.records,
            );
            let mut checkpoints = Checkpoints::new(at, version);
            let done = self.forward(&mut p, stream, &reducer, version, &mut checkpoints);
            self.keep(checkpoints, stream.id, &fingerprint);
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
        provenance.elapsed_us = crate::engine::elapsed_us(started);
        Ok(Step {
            state: Arc::clone(&p.state),
            changes,
            provenance,
        })
    }

    /// Takes the position built ahead if it can reach `version` by undoing.
    fn take_ahead(
        &mut self,
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
            stepper.ahead = Some(ahead);
            stepper.retire();
            return false;
        }
        let Ok(Some((mut p, checkpoints))) = ahead.built.join() else {
            return false;
        };
        self.keep(checkpoints, stream.id, fingerprint);
        if p.version != ahead.version || !reachable(&p, version) {
            return false;
        }
        undo_to(&mut p, version);
        provenance.snapshot = ahead.snapshot;
        provenance.cached = ahead
            .snapshot
            .is_none()
            .then_some(ahead.at)
            .filter(|v| *v > 0);
        provenance.replayed = version - ahead.at;
        discard(stepper.at.replace(p));
        true
    }

    /// Going back with few records left: builds the position below them on another thread
    /// (from the nearest snapshot or cached state, the events up to the records applied with
    /// their records), so that the step back past the records does not wait for that work.
    /// Anything unusual (a stale or bad snapshot, a jq reducer, a long replay) is left to the
    /// step itself.
    fn build_ahead(&mut self, stepper: &mut Stepper, stream: &StreamInfo, reducer: &Reducer) {
        let wanted = stepper.ahead.is_none()
            && stepper
                .at
                .as_ref()
                .is_some_and(|p| p.log.len() <= AHEAD_AT && p.version > p.log.len() as u64);
        if !wanted || matches!(reducer, Reducer::Jq(_)) || stepper.busy() {
            return;
        }
        let Some(p) = &stepper.at else { return };
        let lowest = p.version - p.log.len() as u64;
        // The next step back past the records goes to `lowest`, and shows its changes.
        let target = lowest;
        let upto = target.saturating_sub(BACK_WINDOW);
        let fingerprint = p.fingerprint.clone();
        let snapshot = match self.store().snapshot_candidates(stream.id, 0, upto) {
            Ok(page) => page.into_iter().next(),
            Err(_) => return,
        };
        let cached = self.cached_at_or_below(stream.id, &fingerprint, upto);
        // Where to start: the newer of the snapshot and the cached state, or the empty state.
        enum Start {
            Snapshot(Box<crate::engine::SnapshotBlobs>, u64),
            Cached(Arc<Value>, u64),
            Empty,
        }
        let snapshot = snapshot.filter(|s| cached.as_ref().is_none_or(|c| c.0 < s.version));
        let (start, at, from_snapshot) = match (snapshot, cached) {
            (Some(snap), _) => match self.snapshot_blobs(&snap, &fingerprint) {
                Ok(blobs) => (
                    Start::Snapshot(Box::new(blobs), snap.raw_size),
                    snap.version,
                    Some(snap.version),
                ),
                Err(_) => return,
            },
            (None, Some((v, state, weight))) => (Start::Cached(state, weight), v, None),
            (None, None) => (Start::Empty, 0, None),
        };
        let mut rows = Vec::new();
        let mut bytes = 0;
        let read = self.replay_rows(stream, at, target, |row| {
            bytes += row.data.len() + row.meta.map_or(0, str::len);
            if bytes > AHEAD_BYTES {
                return Err(Error::Input("too much to read ahead".into()));
            }
            rows.push(OwnedRow::from(row));
            Ok(())
        });
        if read.is_err() {
            return;
        }
        let (stream_id, replace) = (stream.id, matches!(reducer, Reducer::Replace));
        let (stream, reducer, fp) = (stream.clone(), reducer.clone(), fingerprint.clone());
        let records = stepper.records;
        let built = spawn("ahead", move || {
            let (state, weight) = match start {
                Start::Snapshot(blobs, raw_size) => (blobs.decode().ok()?, raw_size),
                Start::Cached(state, weight) => (Arc::unwrap_or_clone(state), weight),
                Start::Empty => (Value::Object(serde_json::Map::new()), 2),
            };
            let mut p = Position::new(stream.id, &fp, (at, state, weight), records);
            let mut checkpoints = Checkpoints::new(at, target);
            for row in &rows {
                let row = row.borrow();
                let state = Arc::make_mut(&mut p.state);
                let undo = apply_row_undoable(&stream, &reducer, state, &row).ok()?;
                p.arrive(&row, undo, replace, &mut checkpoints);
            }
            Some((p, checkpoints))
        });
        let Some(built) = built else { return };
        stepper.ahead = Some(Ahead {
            stream: stream_id,
            fingerprint,
            version: target,
            at,
            snapshot: from_snapshot,
            built,
        });
    }

    /// Applies the events after `p.version` up to `upto`, recording how to undo each, and
    /// collecting checkpoints if the replay is long. On error `p` is at the last event that
    /// applied.
    fn forward(
        &self,
        p: &mut Position,
        stream: &StreamInfo,
        reducer: &Reducer,
        upto: u64,
        checkpoints: &mut Checkpoints,
    ) -> Result<()> {
        let replace = matches!(reducer, Reducer::Replace);
        self.replay_rows(stream, p.version, upto, |row| {
            let undo = apply_row_undoable(stream, reducer, Arc::make_mut(&mut p.state), row)?;
            p.arrive(row, undo, replace, checkpoints);
            Ok(())
        })
    }
}

impl Position {
    fn new(
        stream: StreamId,
        fingerprint: &str,
        (version, state, weight): (u64, Value, u64),
        records: usize,
    ) -> Self {
        Self {
            stream,
            fingerprint: fingerprint.to_string(),
            version,
            state: Arc::new(state),
            weight,
            log: VecDeque::new(),
            log_bytes: 0,
            records,
        }
    }

    /// Records that the event `row` was applied, with what undoes it (the oldest records go
    /// beyond the limits), and passes the state to the replay's checkpoints.
    fn arrive(
        &mut self,
        row: &EventRow<'_>,
        undo: Undo,
        replace: bool,
        checkpoints: &mut Checkpoints,
    ) {
        self.version = row.version;
        self.weight = grown(self.weight, row, replace);
        checkpoints.pass(row.version, &self.state, self.weight);
        self.log_bytes += undo.weight();
        self.log.push_back(undo);
        while self.log.len() > self.records || (self.log_bytes > LOG_BYTES && self.log.len() > 1) {
            if let Some(old) = self.log.pop_front() {
                self.log_bytes -= old.weight();
            }
        }
    }
}

/// Whether undoing down to `version` reaches a version whose changes are still known: one
/// record must be left for it, unless it is version 0.
fn reachable(p: &Position, version: u64) -> bool {
    let (records, undone) = (p.log.len() as u64, p.version - version);
    undone < records || (version == 0 && undone == records)
}

/// Undoes events down to `version` (which must be [`reachable`]).
fn undo_to(p: &mut Position, version: u64) {
    let state = Arc::make_mut(&mut p.state);
    while p.version > version {
        let Some(undo) = p.log.pop_back() else { break };
        p.log_bytes -= undo.weight();
        undo.undo(state);
        p.version -= 1;
    }
}

/// Starts a named helper thread; `None` if the system has none to give.
fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<JoinHandle<T>> {
    std::thread::Builder::new()
        .name(format!("{THREAD_PREFIX}{name}"))
        .stack_size(crate::budget::THREAD_STACK)
        .spawn(crate::budget::on_large_stack(work))
        .ok()
}

/// Lets go of a position on another thread: freeing a state of megabytes takes a frame's
/// worth of time, and nothing waits for it (without a thread, it is freed here).
fn discard(position: Option<Position>) {
    if let Some(p) = position {
        spawn("free", move || drop(p));
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
