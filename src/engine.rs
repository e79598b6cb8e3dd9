//! Reconstruction: `state_at` over the store (nearest valid snapshot or cached state, then a
//! replay), the cache that makes stepping cheap, blame, and the writer that appends events
//! and takes the snapshots the policy asks for. Knows nothing of terminals or arguments.

use std::borrow::Cow;
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
use crate::store::{CHAIN_PENDING, EventRow, NewSnapshot, SnapshotMeta, Store};

/// How many reconstructed states the cache holds at most.
pub const CACHE_STATES: usize = 256;

/// How many bytes of (canonical JSON) state the cache holds at most; in memory a state
/// takes a few times its JSON size.
pub const CACHE_BYTES: u64 = 16 << 20;

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
    /// Events skipped because they were already stored identically: a retried idempotency
    /// key, or an import line whose stream and version hold the same event.
    pub duplicates: u64,
    /// Settings an import applied from its file: the default reducer, a stream's reducer,
    /// a policy.
    pub settings: u64,
    /// Snapshots taken: by the policy, and those an import's snapshot lines ask for.
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

/// The snapshot policy as stored (JSON in `meta`): every field optional, a stream's own
/// overriding the database's field by field, unset fields meaning the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Snapshot every this many events (0: never by count). Default 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    /// Snapshot once the events since the last one hold this many bytes. Default: adaptive,
    /// a quarter of the last snapshot's size but at least 64 KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Snapshot at the first event of each hour, day or month of event time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per: Option<crate::model::Bucket>,
    /// `maintain` snapshots a stream this long (µs) after its last snapshot, if it was
    /// written to since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every_time_us: Option<i64>,
    /// One policy snapshot in this many is full, the rest deltas. Default 8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_every: Option<u64>,
    /// Policy snapshots expire this long (µs) after they are taken; `maintain` removes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_after_us: Option<i64>,
    /// Retention rules `maintain` applies (as `compact` would).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<crate::model::Rules>,
    /// Cron schedules (UTC): `maintain` snapshots a stream written to since when one fires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedules: Option<Vec<String>>,
    /// `maintain` archives events older than this (µs), up to a snapshot that covers them
    /// (a database setting: the archive is one file for all streams).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_after_us: Option<i64>,
}

impl Policy {
    /// This policy with the unset fields taken from `base`.
    pub fn over(self, base: &Policy) -> Policy {
        Policy {
            every: self.every.or(base.every),
            bytes: self.bytes.or(base.bytes),
            per: self.per.or(base.per),
            every_time_us: self.every_time_us.or(base.every_time_us),
            full_every: self.full_every.or(base.full_every),
            expire_after_us: self.expire_after_us.or(base.expire_after_us),
            keep: self.keep.or_else(|| base.keep.clone()),
            schedules: self.schedules.or_else(|| base.schedules.clone()),
            archive_after_us: self.archive_after_us.or(base.archive_after_us),
        }
    }

    /// What the writer acts on.
    pub fn resolve(&self) -> SnapshotPolicy {
        SnapshotPolicy {
            every: self.every.unwrap_or(DEFAULT_SNAPSHOT_EVERY),
            min_bytes: DEFAULT_SNAPSHOT_MIN_BYTES,
            fixed_bytes: self.bytes,
            per: self.per,
            full_every: self.full_every.unwrap_or(DEFAULT_FULL_EVERY),
            expire_after_us: self.expire_after_us,
        }
    }
}

/// When the writer takes snapshots on its own: a resolved [`Policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Take a snapshot once this many events were appended since the last one (0: never).
    pub every: u64,
    /// Or sooner, once the events since the last snapshot hold more bytes than a quarter of
    /// that snapshot (and at least this many): replaying them would then cost a good part
    /// of what loading the state costs, so a closer snapshot pays for itself.
    pub min_bytes: u64,
    /// A fixed byte threshold instead of the adaptive one.
    pub fixed_bytes: Option<u64>,
    /// Also at the first event of each hour, day or month.
    pub per: Option<crate::model::Bucket>,
    /// Every this many policy snapshots of a stream one is full and the others are deltas
    /// against it (0 or 1: all full).
    pub full_every: u64,
    /// Policy snapshots expire this long (µs) after they are taken.
    pub expire_after_us: Option<i64>,
}

/// Snapshot spacing when the database says nothing else.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 100;

/// One policy snapshot in this many is full, the rest are deltas against it.
pub const DEFAULT_FULL_EVERY: u64 = 8;

/// The floor of the size trigger: below it, replaying is cheap whatever the state's size.
pub const DEFAULT_SNAPSHOT_MIN_BYTES: u64 = 64 << 10;

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Policy::default().resolve()
    }
}

impl SnapshotPolicy {
    /// Which trigger, if any, asks for a snapshot now, given the events and bytes of event
    /// data appended since the last snapshot, that snapshot's raw size, and whether the event
    /// just appended is the first of a new hour/day/month bucket.
    pub fn due(
        &self,
        events_since: u64,
        bytes_since: u64,
        last_raw_size: u64,
        new_bucket: bool,
    ) -> Option<&'static str> {
        if events_since == 0 {
            return None;
        }
        if self.every > 0 && events_since >= self.every {
            return Some("count");
        }
        let threshold = self
            .fixed_bytes
            .unwrap_or_else(|| self.min_bytes.max(last_raw_size / 4));
        if threshold > 0 && bytes_since >= threshold {
            return Some("size");
        }
        if new_bucket {
            return Some("bucket");
        }
        None
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

/// Meta key set by the migration to schema 4 until the engine has bound the snapshots made
/// before it.
const BIND_PENDING: &str = "bind_pending";

/// The chain value after a stored event row.
pub(crate) fn chain_next(
    previous: &crate::chain::Hash,
    stream: &str,
    row: &EventRow<'_>,
) -> crate::chain::Hash {
    crate::chain::next(
        previous,
        stream,
        row.version,
        row.kind,
        row.ts,
        row.data,
        row.meta,
    )
}

/// A stream's chain value at `version`: the stored head's at its head, else recomputed from
/// its events.
pub(crate) fn chain_at(
    store: &Store,
    stream: &StreamInfo,
    version: u64,
) -> Result<crate::chain::Hash> {
    if version == stream.head {
        return head_chain(store, stream);
    }
    let mut hash = crate::chain::genesis(&stream.name);
    store.chain_rows(stream, version, |c| {
        hash = chain_next(&hash, &stream.name, &c.row);
        Ok(())
    })?;
    Ok(hash)
}

/// A stream's chain value at its head as its events give it, from its stored head when
/// there is one, else recomputed from its events (a file whose chains are not filled yet).
fn head_chain(store: &Store, stream: &StreamInfo) -> Result<crate::chain::Hash> {
    if let Some(hash) = store.head_hash(stream.id)? {
        return Ok(hash);
    }
    let mut hash = crate::chain::genesis(&stream.name);
    store.chain_rows(stream, stream.head, |c| {
        hash = chain_next(&hash, &stream.name, &c.row);
        Ok(())
    })?;
    Ok(hash)
}

/// The reconstruction engine over one open database.
pub struct Engine {
    store: Store,
    /// Reconstructed states with their approximate size in bytes of JSON.
    cache: LruCache<(StreamId, u64), (Arc<Value>, u64)>,
    cached_bytes: u64,
    cache_budget: u64,
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
            cached_bytes: 0,
            cache_budget: CACHE_BYTES,
            cached: HashMap::new(),
            reducers: HashMap::new(),
        }
    }

    /// Opens a database file for the engine. An archive beside it made before archives had
    /// an identity is read only once the snapshot that covers each stream's archived events
    /// equals their replay (then, if the file may be written, it is given its identity).
    pub fn open(path: &std::path::Path, mode: crate::store::OpenMode) -> Result<Self> {
        let mut engine = Self::new(Store::open(path, mode)?);
        if engine.store.archive_is_legacy() {
            engine.read(Self::check_legacy_archive)?;
            engine.store.adopt_legacy_archive()?;
        }
        if !engine.store.is_read_only() && engine.store.meta(BIND_PENDING)?.is_some() {
            engine.write(Self::bind_snapshots)?;
        }
        if !engine.store.is_read_only() && engine.store.meta(CHAIN_PENDING)?.is_some() {
            engine.fill_chains()?;
        }
        Ok(engine)
    }

    /// Gives the events of a file from before chains their chain values, and each stream its
    /// head. The archive's events first, in a transaction of their own (SQLite commits the
    /// two files separately), then the main file's with the heads and the end of
    /// `chain_pending`, so a pass killed at any point leaves the flag set and is run again. A
    /// stream whose archive is missing is left for a later pass.
    fn fill_chains(&mut self) -> Result<()> {
        let started = Instant::now();
        if self.store.has_archive() {
            self.write(|engine| engine.fill_chain_table(true).map(|_| ()))?;
        }
        self.write(|engine| {
            let store = &engine.store;
            // Read again under the write lock: another process may have filled them.
            if store.meta(CHAIN_PENDING)?.is_none() {
                return Ok(());
            }
            let skipped = engine.fill_chain_table(false)?;
            let store = &engine.store;
            if skipped.is_empty() {
                store.delete_meta(CHAIN_PENDING)?;
            }
            store.log(
                "chain",
                None,
                &serde_json::json!({ "skipped": skipped }),
                elapsed_us(started),
            )
        })
    }

    /// Fills the chain values of the main file's (or the archive's) events that have none,
    /// with the table's append-only trigger lifted for the pass; the main pass also stores
    /// every stream's head. Returns the streams it could not do (their archive is missing).
    fn fill_chain_table(&mut self, archived: bool) -> Result<Vec<String>> {
        let store = &self.store;
        let mut skipped = Vec::new();
        store.set_append_only(archived, false)?;
        for stream in store.streams()? {
            if archived && stream.archived_upto == 0 {
                continue;
            }
            if stream.archived_upto > 0 && !store.has_archive() {
                skipped.push(stream.name.clone());
                continue;
            }
            let upto = if archived {
                stream.archived_upto
            } else {
                stream.head
            };
            let mut hash = crate::chain::genesis(&stream.name);
            let mut fill = Vec::new();
            store.chain_rows(&stream, upto, |c| {
                hash = chain_next(&hash, &stream.name, &c.row);
                if c.chain.is_none() && c.archived == archived && c.own {
                    fill.push((c.row.seq, crate::chain::short(&hash)));
                }
                Ok(())
            })?;
            for (seq, chain) in fill {
                store.fill_chain(archived, seq, chain)?;
            }
            if !archived {
                store.set_head_hash(stream.id, &hash)?;
            }
        }
        store.set_append_only(archived, true)?;
        Ok(skipped)
    }

    /// Binds the snapshots of a file from before snapshots were bound to their place (see
    /// `codec::binding`): each one that equals the replay of the events before it gets a
    /// checksum that covers where it belongs; the others stay unbound, are never used, and
    /// are listed in the maintenance log (and by `verify`).
    fn bind_snapshots(&mut self) -> Result<()> {
        let started = Instant::now();
        let mut unbound = Vec::new();
        for stream in self.store.streams()? {
            let reducer = self.reducer(&stream.reducer)?;
            let fingerprint = reducer.fingerprint().to_string();
            let mut state = Value::Object(serde_json::Map::new());
            let (mut at, mut replayable) = (0, true);
            let mut bound: HashMap<i64, [u8; 32]> = HashMap::new();
            let mut rebind = Vec::new();
            for snap in self.store.snapshots(Some(stream.id))? {
                let mut refuse = |why: &str| {
                    unbound.push(serde_json::json!({"stream": stream.name, "version": snap.version, "why": why}));
                };
                if !replayable || snap.version > stream.head {
                    refuse("no replay reaches it");
                    continue;
                }
                if self
                    .replay_onto(&stream, &reducer, &mut state, at, snap.version, |_, _| {})
                    .is_err()
                {
                    replayable = false;
                    refuse("no replay reaches it");
                    continue;
                }
                at = snap.version;
                if snap.fingerprint != fingerprint {
                    refuse("built with another reducer");
                    continue;
                }
                let base = match snap.base_id {
                    None => None,
                    Some(id) => match bound.get(&id) {
                        Some(sum) => Some(*sum),
                        None => {
                            refuse("its base is not bound");
                            continue;
                        }
                    },
                };
                // Bound already (taken since the upgrade): nothing to do.
                if self
                    .snapshot_blobs_as(&snap, &fingerprint, true)
                    .and_then(|b| b.decode())
                    .is_ok_and(|stored| stored == state)
                {
                    bound.insert(snap.id, snap.checksum.clone().try_into().unwrap_or([0; 32]));
                    continue;
                }
                match self
                    .snapshot_blobs_as(&snap, &fingerprint, false)
                    .and_then(|b| b.decode())
                {
                    Ok(stored) if stored == state => {
                        let binding = codec::binding(
                            &stream.name,
                            snap.version,
                            &snap.fingerprint,
                            &snap.kind,
                            base.as_ref().map(|b| &b[..]),
                        );
                        let sum = codec::checksum(&binding, &codec::canonical(&state));
                        bound.insert(snap.id, sum);
                        // Written once the stream is done: a delta after it still reads
                        // its base by the checksum it had.
                        rebind.push((snap.id, sum));
                    }
                    Ok(_) => refuse("it differs from the replay of the events before it"),
                    Err(reason) => refuse(&reason),
                }
            }
            for (id, sum) in rebind {
                self.store.set_snapshot_checksum(id, &sum)?;
            }
        }
        self.store.delete_meta(BIND_PENDING)?;
        self.store.log(
            "bind",
            None,
            &serde_json::json!({ "unbound": unbound }),
            elapsed_us(started),
        )
    }

    fn check_legacy_archive(&mut self) -> Result<()> {
        for stream in self.store.streams()? {
            if stream.archived_upto == 0 {
                continue;
            }
            let reducer = self.reducer(&stream.reducer)?;
            let covering = self.store.snapshot_candidates(
                stream.id,
                stream.archived_upto - 1,
                stream.archived_upto,
            )?;
            let Some(snap) = covering.first() else {
                continue;
            };
            let Ok(stored) = self.decode_snapshot(snap, reducer.fingerprint()) else {
                continue;
            };
            let mut state = Value::Object(serde_json::Map::new());
            let replayed = self.replay_onto(
                &stream,
                &reducer,
                &mut state,
                0,
                stream.archived_upto,
                |_, _| {},
            );
            if replayed.is_err() || state != stored {
                let path = self
                    .store
                    .path()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default();
                return Err(Error::ForeignArchive {
                    archive: crate::store::sidecar(&path, ".archive"),
                    db: path,
                    reason: format!(
                        "it predates archive identities, and the replay of its events of stream {:?} is not the snapshot at v{} that covers them",
                        stream.name, stream.archived_upto
                    ),
                });
            }
        }
        Ok(())
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
        let out = self.store.end(began, out);
        if out.is_err() {
            // States built inside the rolled-back writes may be cached; none may outlive them.
            self.clear_cache();
        }
        out
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
            Target::Time(t) => self.store.version_at_time(stream, t)?,
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
        self.read(|engine| {
            let stream = engine.store.require_stream(stream)?;
            engine.reconstruct(&stream, target)
        })
    }

    /// As [`Engine::state_at`], for a stream already looked up.
    pub fn state_of(&mut self, stream: &StreamInfo, target: Target) -> Result<Reconstruction> {
        // One read transaction: one lock for all the queries, and one consistent view.
        self.read(|engine| engine.reconstruct(stream, target))
    }

    /// How a reconstruction with nothing cached reaches a target: the snapshot it starts
    /// from (or the event itself, under `replace`), the snapshots it skips and why, and how
    /// many events it replays; the state itself is not built. For frames that must not
    /// depend on what happened to be cached.
    pub fn route(&mut self, stream: &StreamInfo, target: Target) -> Result<Provenance> {
        self.read(|engine| {
            let fingerprint = engine.reducer(&stream.reducer)?.fingerprint().to_string();
            let version = engine.resolve(stream, target)?;
            let mut provenance = Provenance::at(version);
            let (_, at, _) =
                engine.starting_point(stream, &fingerprint, None, version, &mut provenance)?;
            provenance.replayed = version - at;
            Ok(provenance)
        })
    }

    fn reconstruct(&mut self, stream: &StreamInfo, target: Target) -> Result<Reconstruction> {
        let started = Instant::now();
        let reducer = self.reducer(&stream.reducer)?;
        let fingerprint = reducer.fingerprint();
        let version = self.resolve(stream, target)?;
        let mut provenance = Provenance::at(version);
        let floor = self.cached_floor(stream.id, fingerprint, version);
        if let Some((v, (state, _))) =
            floor.and_then(|v| Some((v, self.cache.get(&(stream.id, v))?.clone())))
            && v == version
        {
            provenance.cached = Some(version);
            provenance.elapsed_us = elapsed_us(started);
            return Ok(Reconstruction {
                stream: stream.clone(),
                state,
                provenance,
            });
        }
        let (mut state, at, weight) =
            self.starting_point(stream, fingerprint, floor, version, &mut provenance)?;
        // The cache is budgeted in bytes of JSON. A state weighs at most what it started from
        // plus the event data applied to it (a replace reducer's state is its last event).
        let replace = matches!(*reducer, Reducer::Replace);
        let mut weight = weight.unwrap_or(2);
        let mut checkpoints = Checkpoints::new(at, version);
        self.replay_onto(stream, &reducer, &mut state, at, version, |row, s| {
            weight = grown(weight, row, replace);
            checkpoints.pass(row.version, s, weight);
        })?;
        provenance.replayed = version - at;
        self.keep(checkpoints, stream.id, fingerprint);
        let state = Arc::new(state);
        self.remember(stream.id, fingerprint, version, Arc::clone(&state), weight);
        provenance.elapsed_us = elapsed_us(started);
        Ok(Reconstruction {
            stream: stream.clone(),
            state,
            provenance,
        })
    }

    /// Where a replay to `version` starts, as a state of its own: the newest usable
    /// snapshot above the cached `floor`, else that cached state (copied), else the empty
    /// state at version 0. Returns the state, its version and its weight if known.
    fn starting_point(
        &mut self,
        stream: &StreamInfo,
        fingerprint: &str,
        floor: Option<u64>,
        version: u64,
        provenance: &mut Provenance,
    ) -> Result<(Value, u64, Option<u64>)> {
        // Under `replace` the event at `version` holds the whole state: nothing to replay
        // (archived events are read only when nothing else will do).
        if version > stream.archived_upto
            && version > 0
            && matches!(*self.reducer(&stream.reducer)?, Reducer::Replace)
        {
            let mut found = None;
            self.store.replay(stream, version - 1, version, |row| {
                found = Some((parse_row(stream, &row, false)?.0, row.data.len() as u64));
                Ok(())
            })?;
            if let Some((state, bytes)) = found {
                provenance.event = Some(version);
                return Ok((state, version, Some(bytes)));
            }
        }
        let after = floor.unwrap_or(0);
        let snapshot = match self.load_snapshot(
            stream,
            fingerprint,
            after,
            version,
            &mut provenance.faults,
        )? {
            Some(found) => Some(found),
            None => self.inherited_snapshot(
                stream,
                fingerprint,
                after,
                version,
                &mut provenance.faults,
            )?,
        };
        Ok(match (snapshot, floor) {
            (Some((snap_version, state, raw_size)), _) => {
                provenance.snapshot = Some(snap_version);
                (state, snap_version, Some(raw_size))
            }
            (None, Some(v)) => {
                provenance.cached = Some(v);
                let (state, weight) = self.cache.get(&(stream.id, v)).cloned().unwrap_or_default();
                ((*state).clone(), v, Some(weight))
            }
            (None, None) => (Value::Object(serde_json::Map::new()), 0, None),
        })
    }

    /// As [`Engine::starting_point`] at or below `version`, for the stepper: the state, its
    /// version and its weight (bytes of JSON, as the cache counts them).
    pub(crate) fn start_at_or_below(
        &mut self,
        stream: &StreamInfo,
        fingerprint: &str,
        version: u64,
        provenance: &mut Provenance,
    ) -> Result<(Value, u64, u64)> {
        let floor = self.cached_floor(stream.id, fingerprint, version);
        let (state, at, weight) =
            self.starting_point(stream, fingerprint, floor, version, provenance)?;
        Ok((state, at, weight.unwrap_or(2)))
    }

    /// The newest cached state at or below `version`: its version, the state and its weight.
    pub(crate) fn cached_at_or_below(
        &mut self,
        stream: StreamId,
        fingerprint: &str,
        version: u64,
    ) -> Option<(u64, Arc<Value>, u64)> {
        let v = self.cached_floor(stream, fingerprint, version)?;
        let (state, weight) = self.cache.get(&(stream, v))?.clone();
        Some((v, state, weight))
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
        mut each: impl FnMut(&EventRow<'_>, &Value),
    ) -> Result<()> {
        self.replay_rows(stream, after, upto, |row| {
            apply_row(stream, reducer, state, row)?;
            each(row, state);
            Ok(())
        })
    }

    /// Reads the events `after < version <= upto` of a stream in order into `each`; a
    /// missing version is an error naming it.
    pub(crate) fn replay_rows(
        &self,
        stream: &StreamInfo,
        after: u64,
        upto: u64,
        mut each: impl FnMut(&EventRow<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut expected = after + 1;
        self.store
            .replay(stream, after, upto, |row: EventRow<'_>| {
                if row.version != expected {
                    return Err(Error::MissingVersion {
                        stream: stream.name.clone(),
                        version: expected,
                    });
                }
                expected += 1;
                each(&row)
            })?;
        if expected != upto + 1 {
            return Err(Error::MissingVersion {
                stream: stream.name.clone(),
                version: expected,
            });
        }
        Ok(())
    }

    /// Puts a replay's checkpoints in the cache, where the next reconstruction looks.
    pub(crate) fn keep(&mut self, checkpoints: Checkpoints, stream: StreamId, fingerprint: &str) {
        for (version, state, weight) in checkpoints.kept {
            self.remember(stream, fingerprint, version, state, weight);
        }
    }

    /// Newest usable snapshot with `after < version <= upto`; faults are recorded, not fatal.
    fn load_snapshot(
        &self,
        stream: &StreamInfo,
        fingerprint: &str,
        after: u64,
        upto: u64,
        faults: &mut Vec<SnapshotFault>,
    ) -> Result<Option<(u64, Value, u64)>> {
        // A page at a time: the newest candidate is nearly always good, and however many bad
        // ones lie above an older good one, it is still reached.
        let mut upto = upto;
        loop {
            let page = self.store.snapshot_candidates(stream.id, after, upto)?;
            for snap in &page {
                match self.decode_snapshot(snap, fingerprint) {
                    Ok(state) => return Ok(Some((snap.version, state, snap.raw_size))),
                    Err(reason) => faults.push(SnapshotFault {
                        version: snap.version,
                        reason,
                    }),
                }
            }
            match page.last() {
                Some(oldest) if page.len() == crate::store::CANDIDATE_PAGE => {
                    upto = oldest.version - 1
                }
                _ => return Ok(None),
            }
        }
    }

    /// Newest usable snapshot with `after < version <= upto` of the streams `stream`
    /// continues, at a version it shares with them, where they use the same reducer: a fork
    /// starts from what its base keeps before it has snapshots of its own.
    fn inherited_snapshot(
        &self,
        stream: &StreamInfo,
        fingerprint: &str,
        after: u64,
        upto: u64,
        faults: &mut Vec<SnapshotFault>,
    ) -> Result<Option<(u64, Value, u64)>> {
        for (base, shared) in self.store.bases(stream)? {
            let upto = upto.min(shared);
            if upto <= after || base.reducer != stream.reducer {
                break;
            }
            if let Some(found) = self.load_snapshot(&base, fingerprint, after, upto, faults)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Creates a stream that continues `base` from its version `version` (within the
    /// caller's write transaction), sharing its events up to there rather than copying them;
    /// its chain is that of its whole history, as if they were copied.
    pub(crate) fn create_fork(
        &self,
        name: &str,
        reducer: Option<&str>,
        base: &StreamInfo,
        version: u64,
    ) -> Result<StreamInfo> {
        let mut hash = crate::chain::genesis(name);
        self.store.chain_rows(base, version, |c| {
            hash = chain_next(&hash, name, &c.row);
            Ok(())
        })?;
        self.store.create_fork(name, reducer, base, version, &hash)
    }

    /// Loads and checks one snapshot: fingerprint, size, checksum, JSON; for a delta, its
    /// base too (present, full, same stream and reducer, and sound).
    pub fn decode_snapshot(&self, snap: &SnapshotMeta, fingerprint: &str) -> Result<Value, String> {
        self.snapshot_blobs(snap, fingerprint)?.decode()
    }

    /// What decoding a snapshot needs from the file, its metadata checked; decoding it is
    /// then pure work that any thread can do.
    pub(crate) fn snapshot_blobs(
        &self,
        snap: &SnapshotMeta,
        fingerprint: &str,
    ) -> Result<SnapshotBlobs, String> {
        self.snapshot_blobs_as(snap, fingerprint, self.store.binds_snapshots())
    }

    /// As [`Engine::snapshot_blobs`], checking where the snapshot belongs (`bound`) or not
    /// (a file from before snapshots were bound).
    fn snapshot_blobs_as(
        &self,
        snap: &SnapshotMeta,
        fingerprint: &str,
        bound: bool,
    ) -> Result<SnapshotBlobs, String> {
        if snap.fingerprint != fingerprint {
            return Err(format!(
                "stale: built with reducer {}, the stream now uses {fingerprint}",
                snap.fingerprint
            ));
        }
        if snap.codec != "zstd" {
            return Err(format!("unsupported codec {}", snap.codec));
        }
        let blob = self
            .store
            .snapshot_blob(snap.id)
            .map_err(|e| format!("unreadable: {}", crate::error::describe(&e)))?;
        let base = match (snap.kind.as_str(), snap.base_id) {
            ("full", None) => None,
            ("delta", Some(base_id)) => {
                let base = self
                    .store
                    .snapshot_meta(base_id)
                    .map_err(|e| format!("unreadable base: {}", crate::error::describe(&e)))?
                    .ok_or_else(|| format!("its base snapshot #{base_id} is missing"))?;
                if base.kind != "full"
                    || base.stream_id != snap.stream_id
                    || base.fingerprint != snap.fingerprint
                {
                    return Err(format!(
                        "its base snapshot #{base_id} (v{}) is not a full snapshot of this stream and reducer",
                        base.version
                    ));
                }
                let base_blob = self
                    .store
                    .snapshot_blob(base.id)
                    .map_err(|e| format!("unreadable base: {}", crate::error::describe(&e)))?;
                Some((base, base_blob))
            }
            (kind, _) => return Err(format!("a {kind} snapshot with an inconsistent base")),
        };
        let (binding, base_binding) = if bound {
            self.bindings(snap, base.as_ref().map(|b| &b.0))?
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(SnapshotBlobs {
            snap: snap.clone(),
            blob,
            base,
            binding,
            base_binding,
        })
    }

    /// What a snapshot's checksum (and its base's) covers besides its content: nothing in a
    /// file from before snapshots were bound to their place (read as it is).
    fn bindings(
        &self,
        snap: &SnapshotMeta,
        base: Option<&SnapshotMeta>,
    ) -> Result<(Vec<u8>, Vec<u8>), String> {
        let name = self
            .store
            .stream_name(snap.stream_id)
            .map_err(|e| format!("unreadable: {}", crate::error::describe(&e)))?
            .ok_or_else(|| format!("its stream #{} is missing", snap.stream_id))?;
        let binding = codec::binding(
            &name,
            snap.version,
            &snap.fingerprint,
            &snap.kind,
            base.map(|b| b.checksum.as_slice()),
        );
        let base_binding = base.map_or_else(Vec::new, |b| {
            codec::binding(&name, b.version, &b.fingerprint, "full", None)
        });
        Ok((binding, base_binding))
    }

    fn cached_floor(&mut self, stream: StreamId, fingerprint: &str, version: u64) -> Option<u64> {
        let entry = self.cached.get_mut(&stream)?;
        if entry.0 != fingerprint {
            // The stream's reducer changed: every cached state of it is stale.
            for v in std::mem::take(&mut entry.1) {
                if let Some((_, weight)) = self.cache.pop(&(stream, v)) {
                    self.cached_bytes -= weight;
                }
            }
            entry.0 = fingerprint.to_string();
            return None;
        }
        entry.1.range(..=version).next_back().copied()
    }

    pub(crate) fn remember(
        &mut self,
        stream: StreamId,
        fingerprint: &str,
        version: u64,
        state: Arc<Value>,
        weight: u64,
    ) {
        if let Some(((old_stream, old_version), (_, old_weight))) =
            self.cache.push((stream, version), (state, weight))
        {
            self.cached_bytes -= old_weight;
            if (old_stream, old_version) != (stream, version) {
                self.forget_version(old_stream, old_version);
            }
        }
        self.cached_bytes += weight;
        self.cached
            .entry(stream)
            .or_insert_with(|| (fingerprint.to_string(), BTreeSet::new()))
            .1
            .insert(version);
        // Keep at least the newest entry, however large, so stepping from it stays cheap.
        while self.cached_bytes > self.cache_budget && self.cache.len() > 1 {
            let Some(((s, v), (_, w))) = self.cache.pop_lru() else {
                break;
            };
            self.cached_bytes -= w;
            self.forget_version(s, v);
        }
    }

    fn forget_version(&mut self, stream: StreamId, version: u64) {
        if let Some(entry) = self.cached.get_mut(&stream) {
            entry.1.remove(&version);
        }
    }

    /// Sets how many bytes of JSON state the cache may hold (default [`CACHE_BYTES`]).
    pub fn set_cache_budget(&mut self, bytes: u64) {
        self.cache_budget = bytes;
    }

    /// Bytes of JSON state the cache holds now (an estimate, see [`CACHE_BYTES`]).
    pub fn cached_bytes(&self) -> u64 {
        self.cached_bytes
    }

    /// Forgets every cached state (e.g. after a reducer change).
    pub fn clear_cache(&mut self) {
        self.cache.clear();
        self.cached.clear();
        self.cached_bytes = 0;
    }

    // ---- writing --------------------------------------------------------------------------

    /// Appends one event, creating the stream if needed, and applies the snapshot policy.
    pub fn append(&mut self, event: NewEvent, options: AppendOptions) -> Result<WriteReport> {
        self.write(|engine| {
            let mut writer = Writer::new(options.no_snapshots);
            let stored = writer.push(engine, event, options.expected_version)?;
            writer.finish(engine)?;
            let mut report = writer.report;
            report.events.push(stored);
            Ok(report)
        })
    }

    /// The policy stored for a stream (its own, without the database's) or for the database.
    pub fn own_policy(&self, stream: Option<&str>) -> Result<Policy> {
        let key = stream.map_or_else(|| "policy".to_string(), |name| format!("policy:{name}"));
        match self.store.meta(&key)? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| Error::Input(format!("meta {key} is not a policy: {e}"))),
            None => Ok(Policy::default()),
        }
    }

    /// The policy a stream follows: its own over the database's (`None`: the database's).
    pub fn policy_of(&self, stream: Option<&str>) -> Result<Policy> {
        let db = self.own_policy(None)?;
        Ok(match stream {
            Some(_) => self.own_policy(stream)?.over(&db),
            None => db,
        })
    }

    /// Stores the database's policy, or a stream's own.
    pub fn set_policy(&self, stream: Option<&str>, policy: &Policy) -> Result<()> {
        let key = stream.map_or_else(|| "policy".to_string(), |name| format!("policy:{name}"));
        let text = serde_json::to_string(policy).map_err(|e| Error::Input(e.to_string()))?;
        self.store.set_meta(&key, &text)
    }

    /// Makes `name` a new stream that continues `base` from its version `version`: its
    /// versions up to there are `base`'s events, shared rather than copied; it uses `base`'s
    /// own reducer, if it has one.
    pub fn fork(&mut self, name: &str, base: &str, version: u64) -> Result<StreamInfo> {
        self.write(|engine| {
            let base = engine.store.require_stream(base)?;
            if engine.store.stream(name)?.is_some() {
                return Err(Error::Input(format!("stream {name:?} already exists")));
            }
            let reducer = base.reducer_override.then_some(base.reducer.as_str());
            engine.create_fork(name, reducer, &base, version)
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
        // A manual snapshot is full: one taken before a risky change must not depend on another.
        self.snapshot_with(stream, target, trigger, label, 0, None)
    }

    /// Takes a snapshot at the head as the stream's policy would: a delta where it allows one,
    /// with the policy's expiry. What `maintain` uses for time-triggered snapshots.
    pub fn take_policy_snapshot(&mut self, stream: &str, trigger: &str) -> Result<SnapshotMeta> {
        let policy = self.policy_of(Some(stream))?.resolve();
        self.snapshot_with(
            stream,
            Target::Head,
            trigger,
            None,
            policy.full_every,
            policy.expire_after_us,
        )
    }

    fn snapshot_with(
        &mut self,
        stream: &str,
        target: Target,
        trigger: &str,
        label: Option<&str>,
        full_every: u64,
        expire_after_us: Option<i64>,
    ) -> Result<SnapshotMeta> {
        let rec = self.state_at(stream, target)?;
        let version = rec.provenance.version;
        if version == 0 {
            return Err(Error::Input(if rec.stream.head == 0 {
                format!("stream {stream:?} has no events to snapshot")
            } else {
                format!(
                    "version 0 of stream {stream:?} is the empty state, which needs no snapshot; \
                     choose a version from 1 to {}",
                    rec.stream.head
                )
            }));
        }
        self.store_state(
            &rec.stream,
            version,
            &rec.state,
            trigger,
            label,
            full_every,
            expire_after_us,
        )
    }

    /// Stores `state` as the snapshot of `stream` at `version`: the state there, which the
    /// caller has just reconstructed (a source's snapshot is adopted only once it equals the
    /// replay, and then it is the replay's state that is stored).
    #[allow(clippy::too_many_arguments)] // the parts of one snapshot
    pub(crate) fn store_state(
        &mut self,
        stream: &StreamInfo,
        version: u64,
        state: &Value,
        trigger: &str,
        label: Option<&str>,
        full_every: u64,
        expire_after_us: Option<i64>,
    ) -> Result<SnapshotMeta> {
        let ts = self.store.event_ts(stream, version)?.unwrap_or(0);
        let fingerprint = self.reducer(&stream.reducer)?.fingerprint().to_string();
        self.write(|engine| {
            let size_hint = engine.store.snapshot_progress(stream.id, &fingerprint)?.1;
            store_snapshot(
                &engine.store,
                &Shot {
                    stream,
                    version,
                    ts,
                    state,
                    fingerprint: &fingerprint,
                    trigger,
                    label,
                    size_hint,
                    full_every,
                    expire_after_us,
                },
            )
        })
    }

    /// Rewrites a delta snapshot as a full one in place (same id and version), from its own
    /// decoded state: what compaction does before removing the delta's base.
    pub fn rebase_to_full(&mut self, id: i64) -> Result<SnapshotMeta> {
        let missing = || Error::Input(format!("no snapshot #{id}"));
        let snap = self.store.snapshot_meta(id)?.ok_or_else(missing)?;
        let state = self
            .decode_snapshot(&snap, &snap.fingerprint)
            .map_err(Error::Input)?;
        let name = self
            .store
            .stream_name(snap.stream_id)?
            .ok_or_else(missing)?;
        let binding = codec::binding(&name, snap.version, &snap.fingerprint, "full", None);
        let encoded = codec::encode(&state, snap.raw_size, &binding)
            .map_err(|e| Error::Input(format!("encoding snapshot #{id}: {e}")))?;
        self.store
            .rewrite_as_full(id, encoded.raw_size, &encoded.checksum, &encoded.blob)?;
        self.store.snapshot_meta(id)?.ok_or_else(missing)
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
        self.replay_onto(&stream, &reducer, &mut state, 0, upto, |row, s| {
            let version = row.version;
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

/// A snapshot's blobs (and its base's, for a delta), read and ready to decode.
pub(crate) struct SnapshotBlobs {
    snap: SnapshotMeta,
    blob: Vec<u8>,
    base: Option<(SnapshotMeta, Vec<u8>)>,
    /// What the checksum covers besides the content (see `codec::binding`).
    binding: Vec<u8>,
    /// The same for the base.
    base_binding: Vec<u8>,
}

impl SnapshotBlobs {
    /// Decompresses, checks and parses the state.
    pub(crate) fn decode(&self) -> Result<Value, String> {
        let snap = &self.snap;
        let why = |e: codec::CodecError| {
            match e {
            codec::CodecError::Checksum => {
                "checksum mismatch: its content, or where it belongs (stream, version, reducer, base), was altered".to_string()
            }
            other => other.to_string(),
        }
        };
        match &self.base {
            None => {
                codec::decode(&self.blob, snap.raw_size, &snap.checksum, &self.binding).map_err(why)
            }
            Some((base, base_blob)) => {
                let bytes = codec::canonical_bytes(
                    base_blob,
                    base.raw_size,
                    &base.checksum,
                    &self.base_binding,
                )
                .map_err(|e| format!("its base v{} is bad: {}", base.version, why(e)))?;
                codec::decode_delta(
                    &self.blob,
                    snap.raw_size,
                    &snap.checksum,
                    &self.binding,
                    &bytes,
                )
                .map_err(why)
            }
        }
    }
}

/// The weight of a state after one more event: at most what it was plus the event's data
/// (a replace reducer's state is its last event).
pub(crate) fn grown(weight: u64, row: &EventRow<'_>, replace: bool) -> u64 {
    let bytes = row.data.len() as u64;
    if replace { bytes } else { weight + bytes }
}

/// Copies of the state a long replay passes every [`CHECKPOINT_EVERY`] versions, for the
/// cache. Only the newest two are kept: stepping back from the target needs those, and
/// keeping every one would hold (events / interval) states at once.
pub(crate) struct Checkpoints {
    long: bool,
    upto: u64,
    kept: std::collections::VecDeque<(u64, Arc<Value>, u64)>,
}

impl Checkpoints {
    /// For a replay of the events after `from` up to `upto`.
    pub(crate) fn new(from: u64, upto: u64) -> Self {
        Self {
            long: upto - from > CHECKPOINT_EVERY,
            upto,
            kept: std::collections::VecDeque::new(),
        }
    }

    /// The replay has reached `version`, with this state and weight.
    pub(crate) fn pass(&mut self, version: u64, state: &Value, weight: u64) {
        if self.long && version.is_multiple_of(CHECKPOINT_EVERY) && version != self.upto {
            if self.kept.len() == 2 {
                self.kept.pop_front();
            }
            self.kept
                .push_back((version, Arc::new(state.clone()), weight));
        }
    }
}

/// Microseconds since `started`, for reports.
pub(crate) fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Applies one stored event to `state`; a failure names the stream and version.
pub(crate) fn apply_row(
    stream: &StreamInfo,
    reducer: &Reducer,
    state: &mut Value,
    row: &EventRow<'_>,
) -> Result<()> {
    let (data, meta) = parse_row(stream, row, reducer.reads_meta())?;
    reducer
        .apply(state, event_ref(stream, row, data, meta.as_ref()))
        .map_err(|cause| reduce_error(&stream.name, reducer, row.version, cause))
}

/// As [`apply_row`], returning what undoes the event.
pub(crate) fn apply_row_undoable(
    stream: &StreamInfo,
    reducer: &Reducer,
    state: &mut Value,
    row: &EventRow<'_>,
) -> Result<crate::undo::Undo> {
    let (data, meta) = parse_row(stream, row, reducer.reads_meta())?;
    crate::undo::apply(reducer, state, event_ref(stream, row, data, meta.as_ref()))
        .map_err(|cause| reduce_error(&stream.name, reducer, row.version, cause))
}

/// A stored event's data and, where `meta` asks for it (the reducer reads it), its meta,
/// parsed.
fn parse_row(
    stream: &StreamInfo,
    row: &EventRow<'_>,
    meta: bool,
) -> Result<(Value, Option<Value>)> {
    let bad = |what: &str, e: serde_json::Error| {
        Error::Input(format!(
            "stream {:?} version {}: stored {what} is not JSON: {e}",
            stream.name, row.version
        ))
    };
    let data: Value = serde_json::from_str(row.data).map_err(|e| bad("data", e))?;
    let meta: Option<Value> = row
        .meta
        .filter(|_| meta)
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| bad("meta", e))?;
    Ok((data, meta))
}

fn event_ref<'a>(
    stream: &'a StreamInfo,
    row: &EventRow<'a>,
    data: Value,
    meta: Option<&'a Value>,
) -> EventRef<'a> {
    EventRef {
        stream: &stream.name,
        kind: row.kind,
        version: row.version,
        ts: row.ts,
        data: Cow::Owned(data),
        meta,
    }
}

/// The error for an event the reducer refused: over its budget, or unable to apply it.
pub(crate) fn reduce_error(
    stream: &str,
    reducer: &Reducer,
    version: u64,
    cause: crate::reduce::ReduceError,
) -> Error {
    match cause {
        crate::reduce::ReduceError::OverBudget(limit) => Error::OverBudget {
            stream: stream.to_string(),
            version,
            reducer: reducer.spec(),
            limit,
        },
        cause => Error::Reduce {
            stream: stream.to_string(),
            version,
            reducer: reducer.spec(),
            cause,
        },
    }
}

/// A snapshot to take.
struct Shot<'a> {
    stream: &'a StreamInfo,
    version: u64,
    ts: Micros,
    state: &'a Value,
    fingerprint: &'a str,
    trigger: &'a str,
    label: Option<&'a str>,
    /// The expected size, to choose the parallel encoder for large states.
    size_hint: u64,
    /// Every this many snapshots of a stream one is full, the others are deltas against it
    /// (0 or 1: always full).
    full_every: u64,
    /// The snapshot expires this long (µs) after it is taken.
    expire_after_us: Option<i64>,
}

/// Encodes and stores a snapshot (inside the caller's transaction): a delta against the
/// stream's last full snapshot when the policy allows one and that base is sound, else full.
fn store_snapshot(store: &Store, shot: &Shot<'_>) -> Result<SnapshotMeta> {
    let started = Instant::now();
    let failed = |e: codec::CodecError| {
        Error::Input(format!(
            "encoding a snapshot of {:?} at version {}: {e}",
            shot.stream.name, shot.version
        ))
    };
    let name = shot.stream.name.as_str();
    let base = if shot.full_every > 1 && !store.has_snapshot(shot.stream.id, shot.version)? {
        match store.delta_base(shot.stream.id, shot.fingerprint, shot.version)? {
            Some((base, deltas)) if deltas + 1 < shot.full_every => {
                let blob = store.snapshot_blob(base.id)?;
                let binding = codec::binding(name, base.version, &base.fingerprint, "full", None);
                // A base that does not check out is no base: take a full snapshot instead.
                codec::canonical_bytes(&blob, base.raw_size, &base.checksum, &binding)
                    .ok()
                    .map(|bytes| (base, bytes))
            }
            _ => None,
        }
    } else {
        None
    };
    // A delta grows with the changes since its base; once it is no longer small it is not
    // worth the dependency, and a full snapshot (the next base) is stored instead.
    let delta = match base {
        Some((base, bytes)) => {
            let binding = codec::binding(
                name,
                shot.version,
                shot.fingerprint,
                "delta",
                Some(&base.checksum),
            );
            let encoded = codec::encode_delta(shot.state, &bytes, &binding).map_err(failed)?;
            (encoded.blob.len() as u64 * 2 <= base.stored_size).then_some((encoded, base.id))
        }
        None => None,
    };
    let (encoded, base_id) = match delta {
        Some((encoded, base_id)) => (encoded, Some(base_id)),
        None => {
            let binding = codec::binding(name, shot.version, shot.fingerprint, "full", None);
            (
                codec::encode(shot.state, shot.size_hint, &binding).map_err(failed)?,
                None,
            )
        }
    };
    crate::failpoint::point("snapshot");
    store.insert_snapshot(&NewSnapshot {
        stream_id: shot.stream.id,
        base_id,
        expire_after_us: shot.expire_after_us,
        version: shot.version,
        ts: shot.ts,
        checksum: encoded.checksum,
        raw_size: encoded.raw_size,
        fingerprint: shot.fingerprint,
        trigger: shot.trigger,
        label: shot.label,
        create_us: elapsed_us(started),
        blob: &encoded.blob,
    })
}

/// The running state of one stream during a batch of appends.
struct Running {
    stream: StreamInfo,
    reducer: Arc<Reducer>,
    fingerprint: String,
    state: Value,
    last_snapshot: u64,
    last_raw_size: u64,
    bytes_since: u64,
    policy: SnapshotPolicy,
    /// The chain value of the stream's newest event.
    hash: crate::chain::Hash,
    /// Whether the reducer failed on an event of the stream (a writer that keeps going):
    /// the state is no longer followed, and no snapshot is taken.
    failed: bool,
    /// The head the store last recorded for it ([`Writer::finish`] records only what moved).
    recorded_head: u64,
}

/// Appends events inside an open transaction, checking each against the reducer and taking
/// policy snapshots from the running state (no second replay).
pub(crate) struct Writer {
    running: HashMap<String, Running>,
    no_snapshots: bool,
    /// Whether an event the reducer cannot apply is still written (a mirror keeps every
    /// event of its source; the failure shows where the event is read).
    keep_going: bool,
    /// What was written so far.
    pub(crate) report: WriteReport,
    /// The next seq and the transaction's write time, read once on the first append.
    clock: Option<(i64, Micros)>,
}

impl Writer {
    pub(crate) fn new(no_snapshots: bool) -> Self {
        Self {
            running: HashMap::new(),
            no_snapshots,
            keep_going: false,
            report: WriteReport::default(),
            clock: None,
        }
    }

    /// A writer that writes every event, those the reducer cannot apply too (a mirror's:
    /// its source's events are what they are), and takes no snapshot of a stream past one.
    pub(crate) fn keeping_going(mut self) -> Self {
        self.keep_going = true;
        self
    }

    /// Appends one event (or finds the original of a retried idempotency key).
    pub(crate) fn push(
        &mut self,
        engine: &mut Engine,
        event: NewEvent,
        expected: Option<u64>,
    ) -> Result<Event> {
        self.push_texts(engine, event, None, expected)
    }

    /// [`Self::push`], given the event's data and meta as JSON text already (a mirror writes
    /// them on the thread that decodes its source).
    pub(crate) fn push_texts(
        &mut self,
        engine: &mut Engine,
        event: NewEvent,
        texts: Option<(String, Option<String>)>,
        expected: Option<u64>,
    ) -> Result<Event> {
        crate::store::check_name("event type", &event.kind)?;
        if let Some(key) = &event.idempotency_key
            && let Some(original) = engine.store.event_by_key(key)?
        {
            // A retry is the same request again; other content under the same key is a
            // new event that must not vanish as "already appended".
            let differs = differences(&original, &event);
            if !differs.is_empty() {
                return Err(Error::Input(format!(
                    "idempotency key {key:?} is already used by stream {:?} version {} with other content ({}); a new event needs a new key",
                    original.stream,
                    original.version,
                    differs.join("; ")
                )));
            }
            self.report.duplicates += 1;
            return Ok(original);
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
            let (state, failed) = match engine.state_of(&stream, Target::Head) {
                Ok(at) => ((*at.state).clone(), false),
                Err(Error::Reduce { .. } | Error::OverBudget { .. }) if self.keep_going => {
                    (Value::Null, true)
                }
                Err(e) => return Err(e),
            };
            let fingerprint = reducer.fingerprint().to_string();
            let recorded_head = stream.head;
            let (last_snapshot, last_raw_size, bytes_since) =
                engine.store.snapshot_progress(stream.id, &fingerprint)?;
            let policy = engine.policy_of(Some(&stream.name))?.resolve();
            let hash = if stream.head == 0 {
                crate::chain::genesis(&stream.name)
            } else {
                head_chain(&engine.store, &stream)?
            };
            self.running.insert(
                event.stream.clone(),
                Running {
                    stream,
                    reducer,
                    fingerprint,
                    state,
                    last_snapshot,
                    last_raw_size,
                    bytes_since,
                    policy,
                    hash,
                    failed,
                    recorded_head,
                },
            );
        }
        let Some(run) = self.running.get_mut(&event.stream) else {
            return Err(Error::UnknownStream(event.stream));
        };
        if let Some(expected) = expected
            && expected != run.stream.head
        {
            return Err(Error::Conflict {
                stream: event.stream,
                expected,
                actual: run.stream.head,
            });
        }
        let version = run.stream.head + 1;
        for (what, value) in [("data", Some(&event.data)), ("meta", event.meta.as_ref())] {
            if value.is_some_and(|v| crate::reduce::depth(v) > crate::reduce::MAX_DEPTH) {
                return Err(Error::Input(format!(
                    "event {what} nests deeper than {} levels",
                    crate::reduce::MAX_DEPTH
                )));
            }
        }
        let (data, meta) = texts.unwrap_or_else(|| {
            (
                event.data.to_string(),
                event.meta.as_ref().map(Value::to_string),
            )
        });
        let (seq, now) = match self.clock {
            Some(clock) => clock,
            None => (engine.store.next_seq()?, engine.store.now_us()?),
        };
        self.clock = Some((seq + 1, now));
        // Times within a stream never go backwards, so "the state at time T" never includes
        // an event written after T. An explicit earlier time is refused; the database clock,
        // should it step back, is held at the stream's last time.
        let last_ts = run.stream.last_ts.unwrap_or(i64::MIN);
        let ts = match event.time {
            Some(t) if t < last_ts => {
                return Err(Error::Input(format!(
                    "time {} is before the stream's previous event ({})",
                    crate::time::format(t),
                    crate::time::format(last_ts)
                )));
            }
            Some(t) => t,
            None => now.max(last_ts),
        };
        let hash = crate::chain::next(
            &run.hash,
            &run.stream.name,
            version,
            &event.kind,
            ts,
            &data,
            meta.as_deref(),
        );
        // A failure below aborts the caller's whole transaction, so nothing half-applied is kept.
        engine.store.insert_event(
            seq,
            run.stream.id,
            version,
            &event.kind,
            ts,
            &data,
            meta.as_deref(),
            event.idempotency_key.as_deref(),
            crate::chain::short(&hash),
        )?;
        crate::failpoint::point("import");
        let reducer = Arc::clone(&run.reducer);
        if !run.failed {
            let applied = reducer.apply(
                &mut run.state,
                EventRef {
                    stream: &event.stream,
                    kind: &event.kind,
                    version,
                    ts,
                    data: Cow::Borrowed(&event.data),
                    meta: event.meta.as_ref(),
                },
            );
            match applied {
                Ok(()) => {}
                Err(_) if self.keep_going => run.failed = true,
                Err(cause) => return Err(reduce_error(&event.stream, &reducer, version, cause)),
            }
        }
        let previous_ts = run.stream.last_ts;
        run.hash = hash;
        run.stream.head = version;
        run.stream.last_ts = Some(ts);
        run.bytes_since += data.len() as u64;
        self.report.appended += 1;
        let new_bucket = run.policy.per.is_some_and(|b| {
            previous_ts
                .is_some_and(|prev| crate::time::bucket(b, prev) != crate::time::bucket(b, ts))
        });
        let due = run.policy.due(
            version.saturating_sub(run.last_snapshot),
            run.bytes_since,
            run.last_raw_size,
            new_bucket,
        );
        if let Some(trigger) = due.filter(|_| !self.no_snapshots && !run.failed) {
            let meta = store_snapshot(
                &engine.store,
                &Shot {
                    stream: &run.stream,
                    version,
                    ts,
                    state: &run.state,
                    fingerprint: &run.fingerprint,
                    trigger,
                    label: None,
                    size_hint: run.last_raw_size,
                    full_every: run.policy.full_every,
                    expire_after_us: run.policy.expire_after_us,
                },
            )?;
            run.last_snapshot = version;
            run.last_raw_size = meta.raw_size;
            run.bytes_since = 0;
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

    /// Gives the next event the seq a source gave it (a mirror that keeps its source's global
    /// order, gaps included): it must be above every seq stored or handed out.
    pub(crate) fn use_seq(&mut self, engine: &Engine, seq: i64) -> Result<()> {
        let (next, now) = match self.clock {
            Some(clock) => clock,
            None => (engine.store.next_seq()?, engine.store.now_us()?),
        };
        if seq < next {
            return Err(Error::Input(if next <= 1 {
                format!("seq {seq} is not a positive number")
            } else {
                format!("seq {seq} is not above the seq before it ({})", next - 1)
            }));
        }
        self.clock = Some((seq, now));
        Ok(())
    }

    /// The head of a stream as this batch left it, if the batch has written to it.
    pub(crate) fn head(&self, stream: &str) -> Option<u64> {
        self.running.get(stream).map(|run| run.stream.head)
    }

    /// The time of a stream's newest event as this batch left it, if the batch has written
    /// to it.
    pub(crate) fn last_ts(&self, stream: &str) -> Option<Option<Micros>> {
        self.running.get(stream).map(|run| run.stream.last_ts)
    }

    /// Records the head of one stream written so far, so that reads inside the same
    /// transaction (a snapshot taken mid-import) see it.
    pub(crate) fn sync(&self, engine: &Engine, stream: &str) -> Result<()> {
        match self.running.get(stream) {
            Some(run) => engine.store.set_head(
                run.stream.id,
                run.stream.head,
                run.stream.last_ts.unwrap_or(0),
                &run.hash,
            ),
            None => Ok(()),
        }
    }

    /// Records the heads of every stream written since the last time: the end of a batch.
    pub(crate) fn finish(&mut self, engine: &mut Engine) -> Result<()> {
        for run in self.running.values_mut() {
            if run.stream.head == run.recorded_head {
                continue;
            }
            engine.store.set_head(
                run.stream.id,
                run.stream.head,
                run.stream.last_ts.unwrap_or(0),
                &run.hash,
            )?;
            run.recorded_head = run.stream.head;
        }
        Ok(())
    }

    /// Goes on in a new transaction (a mirror that commits a batch at a time): the streams'
    /// running states are kept, so a stream is not reconstructed again at every batch, and
    /// the next seq is read again.
    pub(crate) fn next_transaction(&mut self) {
        self.clock = None;
    }
}

/// How a stored event differs from one given again for the same place (the same stream and
/// version, or the same idempotency key), one phrase per difference; empty when it is the
/// same event. The time and the key count only when given.
pub(crate) fn differences(stored: &Event, given: &NewEvent) -> Vec<String> {
    let shown = |v: &Value| crate::text::clean(&v.to_string(), 60);
    let mut out = Vec::new();
    if stored.stream != given.stream {
        out.push(format!(
            "stream {:?} stored, {:?} given",
            stored.stream, given.stream
        ));
    }
    if stored.kind != given.kind {
        out.push(format!(
            "type {:?} stored, {:?} given",
            stored.kind, given.kind
        ));
    }
    for (what, old, new) in [
        ("data", Some(&stored.data), Some(&given.data)),
        ("meta", stored.meta.as_ref(), given.meta.as_ref()),
    ] {
        if old == new {
            continue;
        }
        let (Some(old), Some(new)) = (old, new) else {
            let side = |v: Option<&Value>| v.map_or_else(|| "none".to_string(), shown);
            out.push(format!("{what} {} stored, {} given", side(old), side(new)));
            continue;
        };
        let changes = crate::diff::changes(old, new);
        let at = |path: &str| {
            if path.is_empty() {
                format!("{what}:")
            } else {
                format!("{what} at {}:", crate::text::clean(path, 60))
            }
        };
        let first = match changes.first() {
            Some(crate::diff::Change::Added { path, value }) => {
                format!("{} absent stored, {} given", at(path), shown(value))
            }
            Some(crate::diff::Change::Removed { path, value }) => {
                format!("{} {} stored, absent given", at(path), shown(value))
            }
            Some(crate::diff::Change::Changed { path, from, to }) => {
                format!("{} {} stored, {} given", at(path), shown(from), shown(to))
            }
            // Equal as values but not as `==` (cannot happen for JSON); say so plainly.
            None => format!("{what} differs"),
        };
        match changes.len() {
            0 | 1 => out.push(first),
            n => out.push(format!("{first} (and {} more changes)", n - 1)),
        }
    }
    if let Some(time) = given.time.filter(|t| *t != stored.ts) {
        out.push(format!(
            "time {} stored, {} given",
            crate::time::format(stored.ts),
            crate::time::format(time)
        ));
    }
    if let Some(key) = given
        .idempotency_key
        .as_ref()
        .filter(|k| stored.idempotency_key.as_ref() != Some(*k))
    {
        let old = stored
            .idempotency_key
            .as_ref()
            .map_or_else(|| "none".to_string(), |k| format!("{k:?}"));
        out.push(format!("idempotency key {old} stored, {key:?} given"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_states_are_snapshotted_by_count() {
        let p = SnapshotPolicy::default();
        assert_eq!(p.due(99, 2_000, 1_200, false), None);
        assert_eq!(p.due(100, 2_000, 1_200, false), Some("count"));
    }

    #[test]
    fn large_events_on_a_large_state_trigger_by_size() {
        let p = SnapshotPolicy::default();
        // A 1 MB state: a quarter of it, 250 KB of events, is due before 100 events.
        assert_eq!(p.due(20, 200_000, 1_000_000, false), None);
        assert_eq!(p.due(25, 250_000, 1_000_000, false), Some("size"));
        // Below the floor nothing is due by size, whatever the state.
        assert_eq!(p.due(50, 60_000, 100, false), None);
        assert_eq!(p.due(50, 70_000, 100, false), Some("size"));
        assert_eq!(p.due(1, 10, 100, true), Some("bucket"));
    }

    #[test]
    fn zero_turns_a_trigger_off() {
        let p = Policy {
            every: Some(0),
            bytes: Some(0),
            ..Policy::default()
        }
        .resolve();
        assert_eq!(p.due(1_000_000, u64::MAX, 0, false), None);
    }

    #[test]
    fn a_streams_policy_overrides_the_databases_field_by_field() {
        let db = Policy {
            every: Some(50),
            full_every: Some(4),
            ..Policy::default()
        };
        let own = Policy {
            every: Some(10),
            ..Policy::default()
        };
        let merged = own.over(&db);
        assert_eq!((merged.every, merged.full_every), (Some(10), Some(4)));
        assert_eq!(Policy::default().resolve().every, DEFAULT_SNAPSHOT_EVERY);
    }
}
