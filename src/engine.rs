//! Reconstruction: `state_at` over the store (nearest valid snapshot or cached state, then a
//! replay), the cache that makes stepping cheap, blame, and the writer that appends events
//! and takes the snapshots the policy asks for. Knows nothing of terminals or arguments.

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;

use lru::LruCache;
use serde_json::Value;

use crate::codec;
use crate::error::{Error, Result};
use crate::model::{
    Event, Micros, NewEvent, Provenance, SnapshotFault, StreamId, StreamInfo, Target,
};
use crate::reduce::{EventRef, Reducer};
use crate::store::{EventRow, NewSnapshot, SnapshotMeta, Store};

/// How many reconstructed states the cache holds.
pub const CACHE_STATES: usize = 256;

/// While replaying a long run, keep a copy every this many versions so that stepping back
/// later replays at most this many events.
pub const CHECKPOINT_EVERY: u64 = 128;

/// A reconstructed state and how it was obtained.
#[derive(Debug, Clone)]
pub struct Reconstruction {
    /// The stream.
    pub stream: StreamInfo,
    /// The state after `provenance.version`.
    pub state: Arc<Value>,
    /// Snapshot used, events replayed, time, skipped snapshots.
    pub provenance: Provenance,
}

/// What an append or an import did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct WriteReport {
    /// Events stored.
    pub appended: u64,
    /// Events skipped because their idempotency key was already stored.
    pub duplicates: u64,
    /// Snapshots taken by the policy.
    pub snapshots: u64,
    /// Streams created.
    pub created_streams: Vec<String>,
    /// The stored events' (stream, version, seq) in order, or the originals for duplicates;
    /// kept only for single appends.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

/// One event of an import, with where it came from.
#[derive(Debug, Clone)]
pub struct ImportItem {
    /// Where the event came from, for errors: `events.jsonl line 7`.
    pub at: String,
    /// The event.
    pub event: NewEvent,
    /// The version the line says the event has; checked against the stream.
    pub version: Option<u64>,
}

/// When the writer takes snapshots on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Take a snapshot once this many events were appended since the last one (0: never).
    pub every: u64,
}

/// Snapshot spacing when the database says nothing else.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 100;

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            every: DEFAULT_SNAPSHOT_EVERY,
        }
    }
}

/// Options for one append.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppendOptions {
    /// Fail with [`Error::Conflict`] unless the stream is at this version.
    pub expected_version: Option<u64>,
    /// Skip the automatic snapshot policy.
    pub no_snapshots: bool,
}

/// The reconstruction engine over one open database.
pub struct Engine {
    store: Store,
    cache: LruCache<(StreamId, u64), Arc<Value>>,
    /// Cached versions per stream, for "nearest cached state at or before".
    cached: HashMap<StreamId, (String, BTreeSet<u64>)>,
    reducers: HashMap<String, Arc<Reducer>>,
}

impl Engine {
    /// Wraps an open store.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: LruCache::new(NonZeroUsize::new(CACHE_STATES).unwrap_or(NonZeroUsize::MIN)),
            cached: HashMap::new(),
            reducers: HashMap::new(),
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The underlying store, for settings such as the busy timeout.
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Runs `f` in one read transaction, so that everything it reads is one consistent view
    /// of the file even while another process appends.
    pub fn read<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let began = self.store.begin(false)?;
        let out = f(self);
        self.store.end(began, out)
    }

    /// Runs `f` in one write transaction: all of it is stored, or none of it.
    pub fn write<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let began = self.store.begin(true)?;
        let out = f(self);
        self.store.end(began, out)
    }

    /// The compiled reducer for a spec (compiled once per engine).
    pub fn reducer(&mut self, spec: &str) -> Result<Arc<Reducer>> {
        if let Some(r) = self.reducers.get(spec) {
            return Ok(Arc::clone(r));
        }
        let reducer = Arc::new(Reducer::parse(spec).map_err(|cause| Error::BadReducer {
            spec: spec.to_string(),
            cause,
        })?);
        self.reducers.insert(spec.to_string(), Arc::clone(&reducer));
        Ok(reducer)
    }

    /// Resolves a target to a version of the stream, checking the range.
    pub fn resolve(&self, stream: &StreamInfo, target: Target) -> Result<u64> {
        let version = match target {
            Target::Head => stream.head,
            Target::Version(v) => v,
            Target::Time(t) => self.store.version_at_time(stream.id, t)?,
            Target::Seq(s) => self.store.version_at_seq(stream, s)?,
        };
        if version > stream.head {
            return Err(Error::VersionOutOfRange {
                stream: stream.name.clone(),
                version,
                head: stream.head,
            });
        }
        Ok(version)
    }

    /// The state of a stream at a target, and how it was obtained.
    pub fn state_at(&mut self, stream: &str, target: Target) -> Result<Reconstruction> {
        let stream = self.store.require_stream(stream)?;
        self.state_of(&stream, target)
    }

    /// As [`Engine::state_at`], for a stream already looked up.
    pub fn state_of(&mut self, stream: &StreamInfo, target: Target) -> Result<Reconstruction> {
        let started = Instant::now();
        let reducer = self.reducer(&stream.reducer)?;
        let fingerprint = reducer.fingerprint();
        let version = self.resolve(stream, target)?;
        let mut provenance = Provenance {
            version,
            snapshot: None,
            cached: None,
            replayed: 0,
            elapsed_us: 0,
            faults: Vec::new(),
        };
        let floor = self.cached_floor(stream.id, &fingerprint, version);
        if floor == Some(version) {
            provenance.cached = Some(version);
            let state = self
                .cache
                .get(&(stream.id, version))
                .cloned()
                .unwrap_or_default();
            provenance.elapsed_us = elapsed_us(started);
            return Ok(Reconstruction {
                stream: stream.clone(),
                state,
                provenance,
            });
        }
        let after = floor.unwrap_or(0);
        let (mut state, mut at) = match self.load_snapshot(
            stream,
            &fingerprint,
            after,
            version,
            &mut provenance.faults,
        )? {
            Some((snap_version, state)) => {
                provenance.snapshot = Some(snap_version);
                (state, snap_version)
            }
            None => match floor {
                Some(v) => {
                    provenance.cached = Some(v);
                    let state = self
                        .cache
                        .get(&(stream.id, v))
                        .map(|s| (**s).clone())
                        .unwrap_or_default();
                    (state, v)
                }
                None => (Value::Object(serde_json::Map::new()), 0),
            },
        };
        let long_run = version - at > CHECKPOINT_EVERY;
        let mut checkpoints = Vec::new();
        self.replay_onto(stream, &reducer, &mut state, at, version, |v, s| {
            if long_run && v % CHECKPOINT_EVERY == 0 && v != version {
                checkpoints.push((v, Arc::new(s.clone())));
            }
        })?;
        provenance.replayed = version - at;
        at = version;
        for (v, s) in checkpoints {
            self.remember(stream.id, &fingerprint, v, s);
        }
        let state = Arc::new(state);
        self.remember(stream.id, &fingerprint, at, Arc::clone(&state));
        provenance.elapsed_us = elapsed_us(started);
        Ok(Reconstruction {
            stream: stream.clone(),
            state,
            provenance,
        })
    }

    /// Applies the events `after < version <= upto` of a stream to `state`, calling `each`
    /// after every one. A failing event is an error naming stream and version; `state` then
    /// holds the state before it.
    pub fn replay_onto(
        &self,
        stream: &StreamInfo,
        reducer: &Reducer,
        state: &mut Value,
        after: u64,
        upto: u64,
        mut each: impl FnMut(u64, &Value),
    ) -> Result<()> {
        let mut expected = after + 1;
        self.store.replay(stream.id, after, upto, |row: EventRow<'_>| {
            if row.version != expected {
                return Err(Error::Input(format!(
                    "stream {:?} is missing version {expected} (found {} next); run `rewind verify`",
                    stream.name, row.version
                )));
            }
            expected += 1;
            apply_row(stream, reducer, state, &row)?;
            each(row.version, state);
            Ok(())
        })?;
        if expected != upto + 1 {
            return Err(Error::Input(format!(
                "stream {:?} is missing version {expected}; run `rewind verify`",
                stream.name
            )));
        }
        Ok(())
    }

    /// Newest usable snapshot with `after < version <= upto`; faults are recorded, not fatal.
    fn load_snapshot(
        &self,
        stream: &StreamInfo,
        fingerprint: &str,
        after: u64,
        upto: u64,
        faults: &mut Vec<SnapshotFault>,
    ) -> Result<Option<(u64, Value)>> {
        for snap in self.store.snapshot_candidates(stream.id, after, upto)? {
            match self.decode_snapshot(&snap, fingerprint) {
                Ok(state) => return Ok(Some((snap.version, state))),
                Err(reason) => faults.push(SnapshotFault {
                    version: snap.version,
                    reason,
                }),
            }
        }
        Ok(None)
    }

    /// Loads and checks one snapshot: fingerprint, size, checksum, JSON.
    pub fn decode_snapshot(&self, snap: &SnapshotMeta, fingerprint: &str) -> Result<Value, String> {
        if snap.fingerprint != fingerprint {
            return Err(format!(
                "stale: built with reducer {}, the stream now uses {fingerprint}",
                snap.fingerprint
            ));
        }
        if snap.kind != "full" || snap.codec != "zstd" {
            return Err(format!(
                "unsupported {} snapshot with codec {}",
                snap.kind, snap.codec
            ));
        }
        let blob = self
            .store
            .snapshot_blob(snap.id)
            .map_err(|e| format!("unreadable: {e:#}"))?;
        codec::decode(&blob, snap.raw_size, &snap.checksum).map_err(|e| e.to_string())
    }

    fn cached_floor(&mut self, stream: StreamId, fingerprint: &str, version: u64) -> Option<u64> {
        let entry = self.cached.get_mut(&stream)?;
        if entry.0 != fingerprint {
            // The stream's reducer changed: every cached state of it is stale.
            for v in std::mem::take(&mut entry.1) {
                self.cache.pop(&(stream, v));
            }
            entry.0 = fingerprint.to_string();
            return None;
        }
        entry.1.range(..=version).next_back().copied()
    }

    fn remember(&mut self, stream: StreamId, fingerprint: &str, version: u64, state: Arc<Value>) {
        if let Some(((old_stream, old_version), _)) = self.cache.push((stream, version), state) {
            if (old_stream, old_version) != (stream, version) {
                if let Some(entry) = self.cached.get_mut(&old_stream) {
                    entry.1.remove(&old_version);
                }
            }
        }
        self.cached
            .entry(stream)
            .or_insert_with(|| (fingerprint.to_string(), BTreeSet::new()))
            .1
            .insert(version);
    }

    /// Forgets every cached state (e.g. after a reducer change).
    pub fn clear_cache(&mut self) {
        self.cache.clear();
        self.cached.clear();
    }

    // ---- writing --------------------------------------------------------------------------

    /// Appends one event, creating the stream if needed, and applies the snapshot policy.
    pub fn append(&mut self, event: NewEvent, options: AppendOptions) -> Result<WriteReport> {
        self.write(|engine| {
            let mut writer = Writer::new(options.no_snapshots, engine.policy()?);
            let stored = writer.push(engine, event, options.expected_version)?;
            writer.finish(engine)?;
            let mut report = writer.report;
            report.events.push(stored);
            Ok(report)
        })
    }

    /// Appends every event from `items` in one transaction: all or nothing. An item is an
    /// event with where it came from, or an error that already says where.
    pub fn import(
        &mut self,
        items: impl IntoIterator<Item = Result<ImportItem>>,
        no_snapshots: bool,
    ) -> Result<WriteReport> {
        self.write(|engine| {
            let mut writer = Writer::new(no_snapshots, engine.policy()?);
            for item in items {
                let item = item?;
                let expected = item.version.map(|v| v.saturating_sub(1));
                writer
                    .push(engine, item.event, expected)
                    .map_err(|cause| Error::At {
                        at: item.at,
                        cause: Box::new(cause),
                    })?;
            }
            writer.finish(engine)?;
            Ok(writer.report)
        })
    }

    /// The database's snapshot policy.
    pub fn policy(&self) -> Result<SnapshotPolicy> {
        Ok(match self.store.meta("snapshot_every")? {
            Some(text) => SnapshotPolicy {
                every: text.parse().map_err(|_| {
                    Error::Input(format!("meta snapshot_every is {text:?}, not a number"))
                })?,
            },
            None => SnapshotPolicy::default(),
        })
    }

    /// Takes a full snapshot of a stream at a target (manual unless `trigger` says otherwise).
    pub fn take_snapshot(
        &mut self,
        stream: &str,
        target: Target,
        trigger: &str,
        label: Option<&str>,
    ) -> Result<SnapshotMeta> {
        let rec = self.state_at(stream, target)?;
        let version = rec.provenance.version;
        if version == 0 {
            return Err(Error::Input(format!(
                "stream {stream:?} has no events to snapshot"
            )));
        }
        let ts = self.store.event(&rec.stream, version)?.map_or(0, |e| e.ts);
        let fingerprint = self.reducer(&rec.stream.reducer)?.fingerprint();
        self.write(|engine| {
            store_snapshot(
                &engine.store,
                &rec.stream,
                version,
                ts,
                &rec.state,
                &fingerprint,
                trigger,
                label,
            )
        })
    }

    /// The events that changed the value at a JSON pointer, newest first, up to `upto`.
    pub fn blame(&mut self, stream: &str, pointer: &str, upto: Target) -> Result<Vec<Event>> {
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            return Err(Error::Input(format!(
                "{pointer:?} is not a JSON pointer (it must start with '/')"
            )));
        }
        let stream = self.store.require_stream(stream)?;
        let reducer = self.reducer(&stream.reducer)?;
        let upto = self.resolve(&stream, upto)?;
        let mut state = Value::Object(serde_json::Map::new());
        let mut before = state.pointer(pointer).cloned();
        let mut changed = Vec::new();
        self.replay_onto(&stream, &reducer, &mut state, 0, upto, |version, s| {
            let now = s.pointer(pointer);
            if now != before.as_ref() {
                changed.push(version);
                before = now.cloned();
            }
        })?;
        let mut events = Vec::with_capacity(changed.len());
        for version in changed.into_iter().rev() {
            if let Some(e) = self.store.event(&stream, version)? {
                events.push(e);
            }
        }
        Ok(events)
    }
}

fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn apply_row(
    stream: &StreamInfo,
    reducer: &Reducer,
    state: &mut Value,
    row: &EventRow<'_>,
) -> Result<()> {
    let bad = |what: &str, e: serde_json::Error| {
        Error::Input(format!(
            "stream {:?} version {}: stored {what} is not JSON: {e}",
            stream.name, row.version
        ))
    };
    let data: Value = serde_json::from_str(row.data).map_err(|e| bad("data", e))?;
    let meta: Option<Value> = row
        .meta
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| bad("meta", e))?;
    let event = EventRef {
        kind: row.kind,
        version: row.version,
        ts: row.ts,
        data: &data,
        meta: meta.as_ref(),
    };
    reducer.apply(state, event).map_err(|cause| Error::Reduce {
        stream: stream.name.clone(),
        version: row.version,
        reducer: reducer.spec(),
        cause,
    })
}

/// Encodes and stores a full snapshot of `state` (inside the caller's transaction).
#[allow(clippy::too_many_arguments)] // the columns of one row
fn store_snapshot(
    store: &Store,
    stream: &StreamInfo,
    version: u64,
    ts: Micros,
    state: &Value,
    fingerprint: &str,
    trigger: &str,
    label: Option<&str>,
) -> Result<SnapshotMeta> {
    let started = Instant::now();
    let bytes = codec::canonical(state);
    let checksum = codec::checksum(&bytes);
    let blob =
        codec::compress(&bytes).map_err(|e| Error::Input(format!("compressing snapshot: {e}")))?;
    store.insert_snapshot(&NewSnapshot {
        stream_id: stream.id,
        version,
        ts,
        checksum,
        raw_size: bytes.len() as u64,
        fingerprint,
        trigger,
        label,
        create_us: elapsed_us(started),
        blob: &blob,
    })
}

/// The running state of one stream during a batch of appends.
struct Running {
    stream: StreamInfo,
    reducer: Arc<Reducer>,
    fingerprint: String,
    state: Value,
    last_snapshot: u64,
}

/// Appends events inside an open transaction, checking each against the reducer and taking
/// policy snapshots from the running state (no second replay).
struct Writer {
    running: HashMap<String, Running>,
    no_snapshots: bool,
    policy: SnapshotPolicy,
    report: WriteReport,
}

impl Writer {
    fn new(no_snapshots: bool, policy: SnapshotPolicy) -> Self {
        Self {
            running: HashMap::new(),
            no_snapshots,
            policy,
            report: WriteReport::default(),
        }
    }

    fn push(
        &mut self,
        engine: &mut Engine,
        event: NewEvent,
        expected: Option<u64>,
    ) -> Result<Event> {
        crate::store::check_name("event type", &event.kind)?;
        if let Some(key) = &event.idempotency_key {
            if let Some(original) = engine.store.event_by_key(key)? {
                if original.stream != event.stream {
                    return Err(Error::Input(format!(
                        "idempotency key {key:?} was used for stream {:?}, not {:?}",
                        original.stream, event.stream
                    )));
                }
                self.report.duplicates += 1;
                return Ok(original);
            }
        }
        if !self.running.contains_key(&event.stream) {
            let stream = match engine.store.stream(&event.stream)? {
                Some(s) => s,
                None => {
                    self.report.created_streams.push(event.stream.clone());
                    engine.store.create_stream(&event.stream, None)?
                }
            };
            let reducer = engine.reducer(&stream.reducer)?;
            let state = (*engine.state_of(&stream, Target::Head)?.state).clone();
            let last_snapshot = engine.store.last_snapshot_version(stream.id)?;
            let fingerprint = reducer.fingerprint();
            self.running.insert(
                event.stream.clone(),
                Running {
                    stream,
                    reducer,
                    fingerprint,
                    state,
                    last_snapshot,
                },
            );
        }
        let Some(run) = self.running.get_mut(&event.stream) else {
            return Err(Error::UnknownStream(event.stream));
        };
        if let Some(expected) = expected {
            if expected != run.stream.head {
                return Err(Error::Conflict {
                    stream: event.stream,
                    expected,
                    actual: run.stream.head,
                });
            }
        }
        let version = run.stream.head + 1;
        let data = event.data.to_string();
        let meta = event.meta.as_ref().map(Value::to_string);
        // Insert first so the reducer sees the time the database stored; a failure below
        // aborts the caller's whole transaction, so nothing half-applied is kept.
        let (seq, ts) = engine.store.insert_event(
            run.stream.id,
            version,
            &event.kind,
            event.time,
            &data,
            meta.as_deref(),
            event.idempotency_key.as_deref(),
        )?;
        let reducer = Arc::clone(&run.reducer);
        reducer
            .apply(
                &mut run.state,
                EventRef {
                    kind: &event.kind,
                    version,
                    ts,
                    data: &event.data,
                    meta: event.meta.as_ref(),
                },
            )
            .map_err(|cause| Error::Reduce {
                stream: event.stream.clone(),
                version,
                reducer: reducer.spec(),
                cause,
            })?;
        run.stream.head = version;
        run.stream.last_ts = Some(ts);
        self.report.appended += 1;
        if !self.no_snapshots
            && self.policy.every > 0
            && version - run.last_snapshot >= self.policy.every
        {
            store_snapshot(
                &engine.store,
                &run.stream,
                version,
                ts,
                &run.state,
                &run.fingerprint,
                "count",
                None,
            )?;
            run.last_snapshot = version;
            self.report.snapshots += 1;
        }
        Ok(Event {
            seq,
            stream: event.stream,
            version,
            kind: event.kind,
            ts,
            data: event.data,
            meta: event.meta,
            idempotency_key: event.idempotency_key,
        })
    }

    fn finish(&mut self, engine: &mut Engine) -> Result<()> {
        for run in self.running.values() {
            engine.store.set_head(
                run.stream.id,
                run.stream.head,
                run.stream.last_ts.unwrap_or(0),
            )?;
        }
        Ok(())
    }
}
