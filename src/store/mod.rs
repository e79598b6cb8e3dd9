//! SQLite storage: the schema and its migrations, appends and every query. The only module
//! that contains SQL. Knows nothing of reducers or presentation.
//!
//! Here: the store's types, transactions, meta and streams. Beside: `open` (opening, the
//! header, migrations), `events` (appends, the chain, reads and replays), `snapshots`
//! (snapshot rows), `browse` (paging a stream), `archive` and `restore`, `schema`.

mod archive;
mod browse;
mod events;
mod lineage;
mod open;
mod restore;
mod schema;
mod snapshots;

pub use archive::{ARCHIVE_ID, DATABASE_ID};
pub use browse::Walk;
pub(crate) use open::{TempCopy, file_uri};
pub use restore::{RESTORE_PENDING, restore_pair};

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{Micros, StreamId, StreamInfo};

pub use schema::{APPLICATION_ID, VERSION as SCHEMA_VERSION};

/// Every event, the main file's and the archive's: only archive rows a stream counts as
/// archived, so copies left by a killed archive run never show twice.
const ALL_EVENTS: &str = "(SELECT seq, stream_id, version, type, ts, data, meta, idem_key FROM main.events
     UNION ALL
     SELECT a.seq, a.stream_id, a.version, a.type, a.ts, a.data, a.meta, a.idem_key
     FROM archive.events a JOIN main.streams s ON s.id = a.stream_id AND a.version <= s.archived_upto)";

/// Set in `meta` by the migration to schema 5 until the engine has filled the chain values
/// of the events from before chains.
pub const CHAIN_PENDING: &str = "chain_pending";

/// Set in `meta` while an archive run moves events; a writable open that finds it cleans up.
pub const ARCHIVE_PENDING: &str = "archive_pending";

/// How many snapshot candidates one query returns.
pub const CANDIDATE_PAGE: usize = 8;

/// How long a write waits for another process's transaction before giving up.
pub const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Whether opening may create the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The file must exist and hold a rewind database.
    Existing,
    /// Create the file and the schema if missing.
    Create,
    /// Open without writing anything; the schema must be current.
    ReadOnly,
}

/// An open database.
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
    read_only: bool,
    busy_ms: u64,
    /// Whether the sidecar archive database is attached as `archive`.
    archive: std::cell::Cell<bool>,
    /// Whether the attached archive predates archive identities (see `archive.rs`).
    legacy_archive: std::cell::Cell<bool>,
    /// Whether the attached archive's events have a `chain` column.
    archive_chain: std::cell::Cell<bool>,
    /// The file's schema version (older ones are read as they are when opened read-only).
    schema: i64,
    /// A copy read instead of the file (removed when the store is dropped).
    copy: Option<TempCopy>,
    /// How the file is read, when that is worth telling.
    note: Option<String>,
    /// What to attach as the archive when the file is not read in place (an immutable URI
    /// or a copy), else `None`.
    archive_source: Option<String>,
    /// The archive's file (the database's path with `.archive` appended), computed once:
    /// every transaction looks for it.
    archive_file: Option<PathBuf>,
}

/// What [`Store::begin`] started, to hand back to [`Store::end`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Began {
    /// Nothing: a read inside the caller's transaction.
    Nothing,
    /// A transaction of its own.
    Transaction,
    /// A savepoint inside the caller's transaction.
    Savepoint,
}

/// An event row borrowed from the database during a replay.
#[derive(Debug, Clone, Copy)]
pub struct EventRow<'a> {
    /// Global position.
    pub seq: i64,
    /// Position in the stream.
    pub version: u64,
    /// Event type.
    pub kind: &'a str,
    /// Time in µs.
    pub ts: Micros,
    /// Payload as JSON text.
    pub data: &'a str,
    /// Metadata as JSON text.
    pub meta: Option<&'a str>,
}

/// An event row with its stored chain value, for checking and filling the chain.
#[derive(Debug, Clone, Copy)]
pub struct ChainRow<'a> {
    /// The event's stored bytes.
    pub row: EventRow<'a>,
    /// The first 6 bytes of its chain value as stored (`None`: not filled).
    pub chain: Option<i64>,
    /// Whether it was read from the archive.
    pub archived: bool,
    /// Whether it is the stream's own row, not one of a stream it continues (whose chain
    /// value is that stream's).
    pub own: bool,
}

/// A snapshot's row without its blob.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotMeta {
    /// Row id.
    pub id: i64,
    /// Stream row id.
    #[serde(skip)]
    pub stream_id: StreamId,
    /// The version whose state it holds.
    pub version: u64,
    /// Time of the event at `version`.
    pub ts: Micros,
    /// `full` or `delta`.
    pub kind: String,
    /// The full snapshot a delta is relative to.
    pub base_id: Option<i64>,
    /// Compression codec.
    pub codec: String,
    /// Bytes of canonical JSON.
    pub raw_size: u64,
    /// Bytes stored.
    pub stored_size: u64,
    /// blake3 of the canonical JSON, hex.
    #[serde(serialize_with = "hex")]
    pub checksum: Vec<u8>,
    /// Fingerprint of the reducer it was built with.
    pub fingerprint: String,
    /// What took it: manual, count, …
    pub trigger: String,
    /// A label given by the user.
    pub label: Option<String>,
    /// When it was taken, µs since the epoch.
    pub created_at: Micros,
    /// How long taking it took, µs.
    pub create_us: u64,
    /// When maintenance may remove it.
    pub expires_at: Option<Micros>,
}

fn hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    s.serialize_str(&out)
}

/// A snapshot to insert.
#[derive(Debug, Clone)]
pub struct NewSnapshot<'a> {
    /// Stream row id.
    pub stream_id: StreamId,
    /// The full snapshot this one is a delta against (`None`: a full snapshot).
    pub base_id: Option<i64>,
    /// It expires this long (µs) after it is stored (by the database's clock).
    pub expire_after_us: Option<i64>,
    /// Version whose state it holds.
    pub version: u64,
    /// Time of that event.
    pub ts: Micros,
    /// blake3 of the canonical JSON.
    pub checksum: [u8; 32],
    /// Bytes of canonical JSON.
    pub raw_size: u64,
    /// The reducer's fingerprint.
    pub fingerprint: &'a str,
    /// What took it.
    pub trigger: &'a str,
    /// Optional label.
    pub label: Option<&'a str>,
    /// How long it took, µs.
    pub create_us: u64,
    /// The zstd frame.
    pub blob: &'a [u8],
}

const STREAM_SELECT: &str = "SELECT id, name, reducer, created_at, head, last_ts,
     (SELECT value FROM meta WHERE key = 'default_reducer'), archived_upto, base_id, base_version
     FROM streams";

/// [`STREAM_SELECT`] for a file from before lineage, opened read-only as it is.
const STREAM_SELECT_FLAT: &str = "SELECT id, name, reducer, created_at, head, last_ts,
     (SELECT value FROM meta WHERE key = 'default_reducer'), archived_upto, NULL, 0 FROM streams";

/// How deep a stream's lineage may go (a stream continuing one that continues another …):
/// deeper is a damaged file, or a loop.
pub const MAX_LINEAGE: usize = 64;

const SNAPSHOT_COLUMNS: &str = "id, stream_id, version, ts, kind, base_id, codec, raw_size, stored_size, \
     checksum, fingerprint, trigger, label, created_at, create_us, expires_at";

/// A LIKE pattern (with `ESCAPE '\'`) matching text that contains `needle` literally.
fn contains_pattern(needle: &str) -> String {
    let escaped = needle
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A file beside the database: its path with `suffix` appended (`-wal`, `.archive`, …).
pub fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Whether snapshots' checksums cover where they belong (schema 4 and later; an older
    /// file opened read-only is read as it is).
    pub fn binds_snapshots(&self) -> bool {
        self.schema >= 4
    }

    /// Whether events carry their chain values (schema 5 and later; an older file opened
    /// read-only is read as it is). Values may still be missing while [`CHAIN_PENDING`] is set.
    pub fn chains(&self) -> bool {
        self.schema >= schema::CHAINS_FROM
    }

    /// The file's schema version (an older one is read as it is when opened read-only).
    pub fn schema_version(&self) -> i64 {
        self.schema
    }

    /// A stream's name by its row id.
    pub fn stream_name(&self, id: StreamId) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT name FROM streams WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }

    /// Replaces a snapshot's checksum (when binding snapshots made before bindings).
    pub fn set_snapshot_checksum(&self, id: i64, checksum: &[u8; 32]) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE snapshots SET checksum = ?2 WHERE id = ?1")?
            .execute(params![id, &checksum[..]])?;
        Ok(())
    }

    /// Changes how long writes wait for another process's lock (default [`BUSY_TIMEOUT_MS`]).
    pub fn set_busy_timeout(&mut self, ms: u64) -> Result<()> {
        self.conn.busy_timeout(Duration::from_millis(ms))?;
        self.busy_ms = ms;
        Ok(())
    }

    /// Sets how many bytes of the file SQLite reads through a memory map (default 256 MiB;
    /// 0 reads through its page cache only). Mapped pages count as the process's resident
    /// memory, which matters for a long-running viewer more than for a one-shot command.
    pub fn set_memory_map(&self, bytes: u64) -> Result<()> {
        self.conn.pragma_update(None, "mmap_size", i(bytes))?;
        Ok(())
    }

    /// How long writes wait for another process's lock, in ms.
    pub fn busy_timeout_ms(&self) -> u64 {
        self.busy_ms
    }

    /// The file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether the database was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn all_events(&self) -> &'static str {
        if self.archive.get() {
            ALL_EVENTS
        } else {
            "main.events"
        }
    }

    /// Begins a transaction: an immediate one for writes (taking the write lock now, waiting
    /// up to the busy timeout), a deferred one for reads. Inside an open transaction a write
    /// gets a savepoint, so that it is all-or-nothing on its own, and a read joins it.
    pub fn begin(&self, write: bool) -> Result<Began> {
        // Another process may have created the archive since this one opened the database.
        if !self.archive.get()
            && self.conn.is_autocommit()
            && self.archive_file.as_ref().is_some_and(|p| p.exists())
        {
            self.attach_archive()?;
        }
        self.begin_plain(write)
    }

    /// [`Store::begin`] without looking for a new archive first.
    fn begin_plain(&self, write: bool) -> Result<Began> {
        if write && self.read_only {
            return Err(Error::Input("the database is open read-only".into()));
        }
        if !self.conn.is_autocommit() {
            if !write {
                return Ok(Began::Nothing);
            }
            self.conn.execute_batch("SAVEPOINT rewind_write")?;
            return Ok(Began::Savepoint);
        }
        self.conn
            .execute_batch(if write {
                "BEGIN IMMEDIATE"
            } else {
                "BEGIN DEFERRED"
            })
            .map_err(|e| match Error::from(e) {
                Error::Locked { .. } => Error::Locked {
                    waited_ms: self.busy_ms,
                },
                other => other,
            })?;
        if !write && self.archive.get() {
            // A read transaction takes each file's snapshot at its first read of it. An
            // archive run commits its copies to the archive before it removes the originals
            // from the main file, so reading the main file first gives an archive at least as
            // new: every event the main file counts as archived is in it.
            let pinned = self
                .pin("main.meta")
                .and_then(|()| self.pin("archive.events"));
            if let Err(err) = pinned {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(err);
            }
        }
        Ok(Began::Transaction)
    }

    /// Reads one row of a table, which starts the transaction's snapshot of its file.
    fn pin(&self, table: &str) -> Result<()> {
        self.conn
            .prepare_cached(&format!("SELECT 1 FROM {table} LIMIT 1"))?
            .query_row([], |_| Ok(()))
            .optional()?;
        Ok(())
    }

    /// Ends what [`Store::begin`] began: commits (or releases the savepoint) on success, rolls
    /// back otherwise; a commit that fails is rolled back too, never left open.
    pub fn end<T>(&self, began: Began, outcome: Result<T>) -> Result<T> {
        let (keep, undo) = match began {
            Began::Nothing => return outcome,
            Began::Transaction => ("COMMIT", "ROLLBACK"),
            Began::Savepoint => (
                "RELEASE rewind_write",
                "ROLLBACK TO rewind_write; RELEASE rewind_write",
            ),
        };
        match outcome {
            Ok(value) => match self.conn.execute_batch(keep) {
                Ok(()) => Ok(value),
                Err(err) => {
                    let _ = self.conn.execute_batch(undo);
                    Err(err.into())
                }
            },
            Err(err) => {
                let _ = self.conn.execute_batch(undo);
                Err(err)
            }
        }
    }

    // ---- meta ---------------------------------------------------------------------------

    /// A value from the meta table.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    /// Sets a value in the meta table.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2")?
            .execute([key, value])?;
        Ok(())
    }

    /// The meta entries whose keys start with `prefix`, in key order.
    pub fn meta_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT key, value FROM meta WHERE key >= ?1 AND substr(key, 1, length(?1)) = ?1 ORDER BY key")?;
        let rows = statement.query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Removes a database-wide setting, if it is there.
    pub fn delete_meta(&self, key: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM meta WHERE key = ?1")?
            .execute([key])?;
        Ok(())
    }

    /// The reducer spec streams use unless they override it.
    pub fn default_reducer(&self) -> Result<String> {
        Ok(self
            .meta("default_reducer")?
            .unwrap_or_else(|| "merge".into()))
    }

    // ---- streams ------------------------------------------------------------------------

    fn stream_select(&self) -> &'static str {
        if self.schema >= schema::LINEAGE_FROM {
            STREAM_SELECT
        } else {
            STREAM_SELECT_FLAT
        }
    }

    fn stream_from_row(row: &Row<'_>) -> rusqlite::Result<StreamInfo> {
        let own: Option<String> = row.get(2)?;
        let default: Option<String> = row.get(6)?;
        let base: Option<StreamId> = row.get(8)?;
        Ok(StreamInfo {
            base: base
                .map(|id| Ok::<_, rusqlite::Error>((id, u(row.get(9)?))))
                .transpose()?,
            id: row.get(0)?,
            name: row.get(1)?,
            reducer_override: own.is_some(),
            reducer: own.or(default).unwrap_or_else(|| "merge".to_string()),
            created_at: row.get(3)?,
            head: u(row.get(4)?),
            last_ts: row.get(5)?,
            archived_upto: u(row.get(7)?),
        })
    }

    /// Looks a stream up by name.
    pub fn stream(&self, name: &str) -> Result<Option<StreamInfo>> {
        Ok(self
            .conn
            .prepare_cached(&format!("{} WHERE name = ?1", self.stream_select()))?
            .query_row([name], Self::stream_from_row)
            .optional()?)
    }

    /// Looks a stream up by row id.
    pub fn stream_by_id(&self, id: StreamId) -> Result<Option<StreamInfo>> {
        Ok(self
            .conn
            .prepare_cached(&format!("{} WHERE id = ?1", self.stream_select()))?
            .query_row([id], Self::stream_from_row)
            .optional()?)
    }

    /// The stream a stream continues (its base), failing where the file lost it.
    pub fn base_of(&self, stream: &StreamInfo) -> Result<Option<(StreamInfo, u64)>> {
        let Some((id, version)) = stream.base else {
            return Ok(None);
        };
        let base = self.stream_by_id(id)?.ok_or_else(|| {
            Error::Input(format!(
                "stream {:?} continues stream #{id} from version {version}, which is not in the database",
                stream.name
            ))
        })?;
        Ok(Some((base, version)))
    }

    /// Looks a stream up by name, failing with [`Error::UnknownStream`].
    pub fn require_stream(&self, name: &str) -> Result<StreamInfo> {
        self.stream(name)?
            .ok_or_else(|| Error::UnknownStream(name.to_string()))
    }

    /// Every stream, by name.
    pub fn streams(&self) -> Result<Vec<StreamInfo>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{} ORDER BY name", self.stream_select()))?;
        let rows = stmt.query_map([], Self::stream_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Creates a stream (within the caller's write transaction).
    pub fn create_stream(&self, name: &str, reducer: Option<&str>) -> Result<StreamInfo> {
        check_name("stream name", name)?;
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO streams (name, reducer, created_at) VALUES (?1, ?2, {})",
                schema::NOW_US
            ))?
            .execute(params![name, reducer])?;
        self.require_stream(name)
    }

    /// Creates a stream that continues `base` from its version `version` (within the
    /// caller's write transaction): its versions up to `version` are `base`'s events, read
    /// through; it starts at that head, with the time of `base`'s event there and
    /// `head_hash`, its chain value there (the chain of its own history, as if copied).
    pub fn create_fork(
        &self,
        name: &str,
        reducer: Option<&str>,
        base: &StreamInfo,
        version: u64,
        head_hash: &crate::chain::Hash,
    ) -> Result<StreamInfo> {
        if self.schema < schema::LINEAGE_FROM {
            return Err(Error::Input(format!(
                "this database's schema ({}) predates forks; open it writable once to upgrade it",
                self.schema
            )));
        }
        if version == 0 || version > base.head {
            return Err(Error::VersionOutOfRange {
                stream: base.name.clone(),
                version,
                head: base.head,
            });
        }
        let last_ts = self
            .event_ts(base, version)?
            .ok_or_else(|| Error::MissingVersion {
                stream: base.name.clone(),
                version,
            })?;
        check_name("stream name", name)?;
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO streams (name, reducer, created_at, head, last_ts, head_hash, base_id, base_version)
                 VALUES (?1, ?2, {}, ?3, ?4, ?5, ?6, ?3)",
                schema::NOW_US
            ))?
            .execute(params![name, reducer, i(version), last_ts, &head_hash[..], base.id])?;
        self.require_stream(name)
    }

    /// Sets or clears (`None`) a stream's own reducer.
    pub fn set_stream_reducer(&self, id: StreamId, reducer: Option<&str>) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE streams SET reducer = ?2 WHERE id = ?1")?
            .execute(params![id, reducer])?;
        Ok(())
    }

    /// Records a stream's new head after appends, with the chain value of its last event.
    pub fn set_head(
        &self,
        id: StreamId,
        head: u64,
        last_ts: Micros,
        head_hash: &crate::chain::Hash,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE streams SET head = ?2, last_ts = ?3, head_hash = ?4 WHERE id = ?1",
            )?
            .execute(params![id, i(head), last_ts, &head_hash[..]])?;
        Ok(())
    }

    /// The time of one event, without reading its data.
    pub fn event_ts(&self, stream: &StreamInfo, version: u64) -> Result<Option<Micros>> {
        let Some(piece) = self.piece_at(stream, version)? else {
            return Ok(None);
        };
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT ts FROM {} WHERE stream_id = ?1 AND version = ?2",
                piece.table()
            ))?
            .query_row(params![piece.stream_id, i(version)], |r| r.get(0))
            .optional()?)
    }

    /// Bytes of event data and metadata per stream id.
    pub fn event_bytes_by_stream(&self) -> Result<Vec<(StreamId, u64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT stream_id, sum(length(data) + coalesce(length(meta), 0)) FROM events GROUP BY stream_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, u(r.get(1)?))))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// When maintenance last did anything, µs since the epoch.
    pub fn last_maintenance(&self) -> Result<Option<Micros>> {
        Ok(self
            .conn
            .query_row("SELECT max(at) FROM maintenance_log", [], |r| r.get(0))?)
    }

    /// Bytes the database takes on disk: the file and its write-ahead log (0 in memory).
    pub fn file_bytes(&self) -> u64 {
        let Some(path) = &self.path else { return 0 };
        [path.clone(), sidecar(path, "-wal")]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Writes a consistent, compacted copy of the main database or the attached archive
    /// (`schema` `main` or `archive`) to a new file (`VACUUM INTO`).
    pub fn vacuum_into(&self, schema: &str, target: &str) -> Result<()> {
        let schema = if schema == "archive" {
            "archive"
        } else {
            "main"
        };
        // VACUUM INTO writes only the new file, but a query-only connection refuses it.
        self.conn.pragma_update(None, "query_only", false)?;
        let copied = self
            .conn
            .execute(&format!("VACUUM {schema} INTO ?1"), [target]);
        if self.read_only {
            self.conn.pragma_update(None, "query_only", true)?;
        }
        copied?;
        Ok(())
    }

    /// SQLite's `PRAGMA integrity_check`: the problems it lists (none when the file is sound).
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        for (schema, name) in [("main", ""), ("archive", "archive: ")] {
            if schema == "archive" && !self.archive.get() {
                continue;
            }
            let mut stmt = self
                .conn
                .prepare(&format!("PRAGMA {schema}.integrity_check"))?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for row in rows {
                let row = row?;
                // A row may hold several lines, under a `*** in database main ***` heading.
                for line in row.lines() {
                    if line != "ok" && !line.starts_with("*** in database") {
                        problems.push(format!("{name}{line}"));
                    }
                }
            }
        }
        Ok(problems)
    }

    /// Runs raw SQL that may return rows (e.g. a pragma); for tests that simulate faults.
    #[doc(hidden)]
    pub fn execute_batch_raw(&self, sql: &str) -> Result<()> {
        Ok(self.conn.execute_batch(sql)?)
    }

    /// Runs a raw statement; for tests that simulate corruption and for maintenance.
    #[doc(hidden)]
    pub fn execute_raw(&self, sql: &str, args: impl rusqlite::Params) -> Result<usize> {
        Ok(self.conn.execute(sql, args)?)
    }

    // ---- maintenance log ----------------------------------------------------------------

    /// Records an operation in the maintenance log.
    pub fn log(
        &self,
        action: &str,
        stream_id: Option<StreamId>,
        detail: &serde_json::Value,
        elapsed_us: u64,
    ) -> Result<()> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO maintenance_log (at, action, stream_id, detail, elapsed_us) VALUES ({}, ?1, ?2, ?3, ?4)",
                schema::NOW_US
            ))?
            .execute(params![action, stream_id, detail.to_string(), i(elapsed_us)])?;
        Ok(())
    }
}

/// Stream names and event types are shown in tables and terminals: refuse control characters
/// and empty names at the door rather than escaping them forever after.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::Input(format!("{what} is empty")));
    }
    if let Some((at, c)) = name.char_indices().find(|(_, c)| c.is_control()) {
        return Err(Error::Input(format!(
            "{what} {:?} contains the control character U+{:04X} at byte {at}",
            name, c as u32
        )));
    }
    Ok(())
}
