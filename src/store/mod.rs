//! SQLite storage: the schema and its migrations, appends and every query. The only module
//! that contains SQL. Knows nothing of reducers or presentation.

mod archive;
mod browse;
mod restore;
mod schema;

pub use archive::{ARCHIVE_ID, DATABASE_ID};
pub use browse::Walk;
pub use restore::{RESTORE_PENDING, restore_pair};

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{Event, Micros, StreamId, StreamInfo};

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
     (SELECT value FROM meta WHERE key = 'default_reducer'), archived_upto FROM streams";

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
    /// Opens a database file to read it, without writing anything.
    pub fn open_for_reading(path: &Path) -> Result<Self> {
        Self::open(path, OpenMode::ReadOnly)
    }

    /// Opens (and, with [`OpenMode::Create`], creates) a database file, migrating it forward.
    /// A file that is refused (not SQLite, another program's, a newer schema) is refused
    /// before anything is made beside it. Read-only, nothing is written; where the folder or
    /// the medium cannot hold SQLite's shared-memory file, the file is read as it is (with no
    /// log beside it) or, when a log is there, from a copy, and [`Store::note`] says so.
    pub fn open(path: &Path, mode: OpenMode) -> Result<Self> {
        if mode != OpenMode::Create && !path.exists() {
            return Err(Error::Missing(path.to_path_buf()));
        }
        if path.is_dir() {
            return Err(Error::NotRewind {
                path: path.to_path_buf(),
                reason: "it is a directory".into(),
            });
        }
        if path.exists()
            && let Err(e) = readable(path)
        {
            return Err(Error::Input(format!(
                "{} cannot be read: {e}; check its permissions (and its folder's)",
                path.display()
            )));
        }
        let not_rewind = |e: rusqlite::Error| Error::NotRewind {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let wal = sidecar(path, "-wal").exists();
        if path.exists() && !wal {
            // With no log beside it, the file alone says what it is: look without opening it
            // the ordinary way, which makes the log and shared-memory files. The look takes
            // no lock, so a writer that opens meanwhile (and checkpoints into the file) can
            // show it half written: what it finds against a file that changed while it
            // looked is no verdict, and the ordinary open below, with its locks, judges.
            // (A change within the file system's clock tick shows in a second look.)
            let probe = || -> Result<()> {
                let conn = Connection::open_with_flags(
                    immutable_uri(path)?,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_URI
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(not_rewind)?;
                check_header(&read_header(&conn, path)?, path, mode)
            };
            let before = file_stamp(path);
            if probe().is_err()
                && let Err(again) = probe()
                && !sidecar(path, "-wal").exists()
                && file_stamp(path) == before
            {
                return Err(again);
            }
        }
        if mode == OpenMode::ReadOnly {
            let readable = open_readable(path, wal)?;
            let mut store = Self::setup_with(
                readable.conn,
                Some(path.to_path_buf()),
                mode,
                readable.archive_source,
            )?;
            store.copy = readable.copy;
            store.note = readable.note;
            return Ok(store);
        }
        let flags = match mode {
            OpenMode::Create => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            _ => OpenFlags::SQLITE_OPEN_READ_WRITE,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(not_rewind)?;
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(Error::NotWritable(path.to_path_buf()));
        }
        Self::setup(conn, Some(path.to_path_buf()), mode)
    }

    /// What the caller should tell the user about how the file is read, if anything.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// A fresh database in memory, for tests and scratch work.
    pub fn open_in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?, None, OpenMode::Create)
    }

    /// A copy in memory of this database's main file (not its archive), page by page: a
    /// scratch database to change freely, made in the time of a copy rather than of the
    /// writes that built it (the fuzz targets start every input from one).
    pub fn copy_in_memory(&self) -> Result<Self> {
        let mut conn = Connection::open_in_memory()?;
        let copy = rusqlite::backup::Backup::new(&self.conn, &mut conn)?;
        // Every page in one step.
        if copy.step(-1)? != rusqlite::backup::StepResult::Done {
            return Err(Error::Input(
                "the database changed while it was copied; try again".into(),
            ));
        }
        drop(copy);
        Self::setup(conn, None, OpenMode::Create)
    }

    fn setup(conn: Connection, path: Option<PathBuf>, mode: OpenMode) -> Result<Self> {
        Self::setup_with(conn, path, mode, None)
    }

    fn setup_with(
        conn: Connection,
        path: Option<PathBuf>,
        mode: OpenMode,
        archive_source: Option<String>,
    ) -> Result<Self> {
        let shown = path.clone().unwrap_or_else(|| PathBuf::from(":memory:"));
        conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
        let header = read_header(&conn, &shown)?;
        let (version, restoring) = (header.version, header.restoring);
        if restoring && let Some(path) = &path {
            // A restore was killed after it installed this file: its archive goes in place
            // before anything reads the pair.
            restore::finish_interrupted(path)?;
        }
        check_header(&header, &shown, mode)?;
        if mode != OpenMode::ReadOnly && path.is_some() {
            // Switching to WAL needs an exclusive lock, and SQLite reports a competing opener
            // as busy without waiting: retry for as long as a write would wait.
            let deadline = std::time::Instant::now() + Duration::from_millis(BUSY_TIMEOUT_MS);
            loop {
                match conn
                    .pragma_update_and_check(None, "journal_mode", "wal", |r| r.get::<_, String>(0))
                {
                    Ok(_) => break,
                    Err(e)
                        if matches!(
                            e.sqlite_error_code(),
                            Some(
                                rusqlite::ErrorCode::DatabaseBusy
                                    | rusqlite::ErrorCode::DatabaseLocked
                            )
                        ) && std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            conn.pragma_update(None, "synchronous", "normal")?;
        }
        // Foreign keys are enforced (the bundled SQLite's default, made explicit): the
        // database itself refuses to drop a snapshot that deltas are based on. They cost
        // about 5% of import time.
        conn.pragma_update(None, "foreign_keys", "on")?;
        conn.pragma_update(None, "cache_size", -16_384)?;
        // Reads through a memory map cost no syscall per page, so a long history reads as
        // fast as a short one (BENCHMARKS.md). The price: an I/O error on a mapped page (the
        // file truncated under us) arrives as SIGBUS rather than as an error.
        conn.pragma_update(None, "mmap_size", 256_i64 << 20)?;
        let archive_file = path.as_deref().map(|p| sidecar(p, ".archive"));
        let store = Self {
            conn,
            path,
            read_only: mode == OpenMode::ReadOnly,
            busy_ms: BUSY_TIMEOUT_MS,
            archive: std::cell::Cell::new(false),
            legacy_archive: std::cell::Cell::new(false),
            archive_chain: std::cell::Cell::new(false),
            schema: version.max(if mode == OpenMode::ReadOnly {
                0
            } else {
                schema::VERSION
            }),
            archive_file,
            copy: None,
            note: None,
            archive_source,
        };
        // Read as it is without writing; migrated by anything that may write.
        if version < schema::VERSION && mode != OpenMode::ReadOnly {
            store.migrate()?;
        }
        store.attach_archive()?;
        if store.has_archive() && mode != OpenMode::ReadOnly {
            store.recover_archive_if_abandoned()?;
        }
        Ok(store)
    }

    fn migrate(&self) -> Result<()> {
        let began = self.begin(true)?;
        let outcome = (|| {
            // Read again under the write lock: another process may have migrated meanwhile.
            let from: i64 = self
                .conn
                .pragma_query_value(None, "user_version", |r| r.get(0))?;
            for (step, sql) in schema::MIGRATIONS
                .iter()
                .enumerate()
                .skip(usize::try_from(from).unwrap_or(0))
            {
                self.conn.execute_batch(sql)?;
                self.conn
                    .pragma_update(None, "user_version", i(step as u64 + 1))?;
            }
            self.conn
                .pragma_update(None, "application_id", APPLICATION_ID)?;
            if from == 0 {
                // A new database has no snapshots from before they were bound, nor events
                // from before chains.
                self.delete_meta("bind_pending")?;
                self.delete_meta(CHAIN_PENDING)?;
            }
            Ok(())
        })();
        self.end(began, outcome)
    }

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

    fn stream_from_row(row: &Row<'_>) -> rusqlite::Result<StreamInfo> {
        let own: Option<String> = row.get(2)?;
        let default: Option<String> = row.get(6)?;
        Ok(StreamInfo {
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
            .prepare_cached(&format!("{STREAM_SELECT} WHERE name = ?1"))?
            .query_row([name], Self::stream_from_row)
            .optional()?)
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
            .prepare_cached(&format!("{STREAM_SELECT} ORDER BY name"))?;
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

    /// The stored chain value of a stream's head: `None` before chains (an older schema, or
    /// not filled yet), or when the stored value is not 32 bytes.
    pub fn head_hash(&self, id: StreamId) -> Result<Option<crate::chain::Hash>> {
        if !self.chains() {
            return Ok(None);
        }
        let blob: Option<Option<Vec<u8>>> = self
            .conn
            .prepare_cached("SELECT head_hash FROM streams WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        Ok(blob.flatten().and_then(|b| crate::chain::from_blob(&b)))
    }

    /// Stores a chain value computed for an event from before chains (main file or archive),
    /// unless it has one: only for the pass that fills them, with the table's append-only
    /// trigger lifted.
    pub fn fill_chain(&self, archived: bool, seq: i64, chain: i64) -> Result<()> {
        self.conn
            .prepare_cached(if archived {
                "UPDATE archive.events SET chain = ?2 WHERE seq = ?1 AND chain IS NULL"
            } else {
                "UPDATE main.events SET chain = ?2 WHERE seq = ?1 AND chain IS NULL"
            })?
            .execute(params![seq, chain])?;
        Ok(())
    }

    /// Stores a stream's full head chain value after the fill pass.
    pub fn set_head_hash(&self, id: StreamId, head_hash: &crate::chain::Hash) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE streams SET head_hash = ?2 WHERE id = ?1")?
            .execute(params![id, &head_hash[..]])?;
        Ok(())
    }

    /// Lifts (`false`) or puts back (`true`) the append-only trigger of the main file's or the
    /// archive's events, inside the caller's write transaction: the pass that fills chain
    /// values is the only update events ever get, and no other connection sees the table
    /// without its trigger, since the change commits or rolls back with the pass.
    pub fn set_append_only(&self, archived: bool, on: bool) -> Result<()> {
        let schema = if archived { "archive" } else { "main" };
        let sql = if on {
            schema::CREATE_APPEND_ONLY
        } else {
            schema::DROP_APPEND_ONLY
        };
        self.conn.execute_batch(&sql.replace("{schema}", schema))?;
        Ok(())
    }

    /// Calls `f` for each event of a stream up to `upto`, oldest first (archived ones from the
    /// archive), with its stored chain value: what `verify` and the fill pass recompute the
    /// chain over. Reconstruction never reads the chain column.
    pub fn chain_rows(
        &self,
        stream: &StreamInfo,
        upto: u64,
        mut f: impl FnMut(ChainRow<'_>) -> Result<()>,
    ) -> Result<()> {
        if stream.archived_upto > 0 {
            self.require_archive(stream)?;
            self.chain_table(true, stream.id, upto.min(stream.archived_upto), &mut f)?;
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, version, type, ts, data, meta, chain FROM main.events
             WHERE stream_id = ?1 AND version > ?2 AND version <= ?3 ORDER BY version",
        )?;
        let rows = stmt.query(params![stream.id, i(stream.archived_upto), i(upto)])?;
        Self::chain_each(rows, false, &mut f)
    }

    fn chain_table(
        &self,
        archived: bool,
        stream_id: StreamId,
        upto: u64,
        f: &mut impl FnMut(ChainRow<'_>) -> Result<()>,
    ) -> Result<()> {
        // An archive not yet given its column (read-only, before the first write command)
        // reads as one without values.
        let chain = if self.archive_chain.get() {
            "chain"
        } else {
            "NULL"
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT seq, version, type, ts, data, meta, {chain} FROM archive.events
             WHERE stream_id = ?1 AND version <= ?2 ORDER BY version"
        ))?;
        let rows = stmt.query(params![stream_id, i(upto)])?;
        Self::chain_each(rows, archived, f)
    }

    fn chain_each(
        mut rows: rusqlite::Rows<'_>,
        archived: bool,
        f: &mut impl FnMut(ChainRow<'_>) -> Result<()>,
    ) -> Result<()> {
        while let Some(row) = rows.next()? {
            f(ChainRow {
                row: event_row(row)?,
                chain: row.get(6)?,
                archived,
            })?;
        }
        Ok(())
    }

    // ---- events -------------------------------------------------------------------------

    /// The database's clock, µs since the epoch: the write time of events appended now.
    pub fn now_us(&self) -> Result<Micros> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {}", schema::NOW_US))?
            .query_row([], |r| r.get(0))?)
    }

    /// The seq the next event gets: above every event stored and every seq ever handed out
    /// (`seq_high_water` in meta, kept by whatever removes events), so none is reused.
    pub fn next_seq(&self) -> Result<i64> {
        let max: Option<i64> = self
            .conn
            .prepare_cached("SELECT max(seq) FROM events")?
            .query_row([], |r| r.get(0))?;
        let high_water = self
            .meta("seq_high_water")?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        Ok(max.unwrap_or(0).max(high_water) + 1)
    }

    /// Appends one event row with the seq and time the writer chose.
    #[allow(clippy::too_many_arguments)] // one column each; a struct would only be unpacked here
    pub fn insert_event(
        &self,
        seq: i64,
        stream_id: StreamId,
        version: u64,
        kind: &str,
        ts: Micros,
        data: &str,
        meta: Option<&str>,
        idempotency_key: Option<&str>,
        chain: i64,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO events (seq, stream_id, version, type, ts, data, meta, idem_key, chain)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                seq,
                stream_id,
                i(version),
                kind,
                ts,
                data,
                meta,
                idempotency_key,
                chain
            ])?;
        Ok(())
    }

    fn event_from_row(row: &Row<'_>, stream: &str) -> rusqlite::Result<Event> {
        let json = |idx: usize| -> rusqlite::Result<Option<serde_json::Value>> {
            let text: Option<String> = row.get(idx)?;
            text.map(|t| {
                serde_json::from_str(&t).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        idx,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })
            })
            .transpose()
        };
        Ok(Event {
            seq: row.get(0)?,
            stream: stream.to_string(),
            version: u(row.get(1)?),
            kind: row.get(2)?,
            ts: row.get(3)?,
            data: json(4)?.unwrap_or(serde_json::Value::Null),
            meta: json(5)?,
            idempotency_key: row.get(6)?,
        })
    }

    /// The version of a stream's event whose meta holds `value` under `field` (a source's
    /// own id, kept by its mirror).
    pub fn version_with_meta(
        &self,
        stream: &StreamInfo,
        field: &str,
        value: &str,
    ) -> Result<Option<u64>> {
        let path = format!("$.{}", serde_json::Value::String(field.to_owned()));
        Ok(self
            .conn
            .prepare_cached(
                "SELECT version FROM events WHERE stream_id = ?1 AND CAST(json_extract(meta, ?2) AS TEXT) = ?3 ORDER BY version LIMIT 1",
            )?
            .query_row(rusqlite::params![stream.id, path, value], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .map(|v| v.unsigned_abs()))
    }

    /// The newest version of a stream whose meta `field` is a number at or below `n` (a
    /// source's global order kept in the meta): 0 where none is.
    pub fn version_at_or_before_meta(
        &self,
        stream: &StreamInfo,
        field: &str,
        n: i64,
    ) -> Result<u64> {
        let path = format!("$.{}", serde_json::Value::String(field.to_owned()));
        Ok(self
            .conn
            .prepare_cached(
                "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?1 AND json_extract(meta, ?2) <= ?3",
            )?
            .query_row(rusqlite::params![stream.id, path, n], |r| r.get::<_, i64>(0))?
            .unsigned_abs())
    }

    /// The event with an idempotency key, with its stream's name.
    pub fn event_by_key(&self, key: &str) -> Result<Option<Event>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT e.seq, e.version, e.type, e.ts, e.data, e.meta, e.idem_key, s.name
             FROM {} e JOIN main.streams s ON s.id = e.stream_id WHERE e.idem_key = ?1",
            self.all_events()
        ))?;
        Ok(stmt
            .query_row([key], |r| {
                let name: String = r.get(7)?;
                Self::event_from_row(r, &name)
            })
            .optional()?)
    }

    /// One event of a stream (archived or not).
    pub fn event(&self, stream: &StreamInfo, version: u64) -> Result<Option<Event>> {
        let archived = version > 0 && version <= stream.archived_upto;
        if archived {
            self.require_archive(stream)?;
        }
        let mut stmt = self.conn.prepare_cached(if archived {
            "SELECT seq, version, type, ts, data, meta, idem_key FROM archive.events WHERE stream_id = ?1 AND version = ?2"
        } else {
            "SELECT seq, version, type, ts, data, meta, idem_key FROM main.events WHERE stream_id = ?1 AND version = ?2"
        })?;
        Ok(stmt
            .query_row(params![stream.id, i(version)], |r| {
                Self::event_from_row(r, &stream.name)
            })
            .optional()?)
    }

    /// Events of a stream with `from <= version <= to`, oldest first, at most `limit`,
    /// archived ones included.
    pub fn events(
        &self,
        stream: &StreamInfo,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        let query =
            |archive: bool, from: u64, to: u64, limit: usize, out: &mut Vec<Event>| -> Result<()> {
                let mut stmt = self.conn.prepare_cached(if archive {
                    "SELECT seq, version, type, ts, data, meta, idem_key FROM archive.events
                 WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3 ORDER BY version LIMIT ?4"
                } else {
                    "SELECT seq, version, type, ts, data, meta, idem_key FROM main.events
                 WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3 ORDER BY version LIMIT ?4"
                })?;
                let rows = stmt
                    .query_map(params![stream.id, i(from), i(to), i(limit as u64)], |r| {
                        Self::event_from_row(r, &stream.name)
                    })?;
                for row in rows {
                    out.push(row?);
                }
                Ok(())
            };
        if from <= stream.archived_upto && stream.archived_upto > 0 {
            self.require_archive(stream)?;
            query(true, from, to.min(stream.archived_upto), limit, &mut out)?;
        }
        let from = from.max(stream.archived_upto + 1);
        if from <= to && out.len() < limit {
            query(false, from, to, limit - out.len(), &mut out)?;
        }
        Ok(out)
    }

    /// Calls `f` for each event of a stream with `after < version <= upto`, oldest first,
    /// without holding more than one row in memory; archived versions come from the archive.
    pub fn replay(
        &self,
        stream: &StreamInfo,
        after: u64,
        upto: u64,
        mut f: impl FnMut(EventRow<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut after = after;
        if after < stream.archived_upto {
            self.require_archive(stream)?;
            self.replay_table(
                true,
                stream.id,
                after,
                upto.min(stream.archived_upto),
                &mut f,
            )?;
            after = stream.archived_upto;
        }
        if upto > after {
            self.replay_table(false, stream.id, after, upto, &mut f)?;
        }
        Ok(())
    }

    fn require_archive(&self, stream: &StreamInfo) -> Result<()> {
        if self.archive.get() || stream.archived_upto == 0 {
            return Ok(());
        }
        let path = self
            .archive_path()
            .map_or_else(|| "the archive".into(), |p| p.display().to_string());
        Err(Error::Input(format!(
            "stream {:?} is archived up to version {} in {path}, which is missing",
            stream.name, stream.archived_upto
        )))
    }

    fn replay_table(
        &self,
        archive: bool,
        stream_id: StreamId,
        after: u64,
        upto: u64,
        f: &mut impl FnMut(EventRow<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(if archive {
            "SELECT seq, version, type, ts, data, meta FROM archive.events
             WHERE stream_id = ?1 AND version > ?2 AND version <= ?3 ORDER BY version"
        } else {
            "SELECT seq, version, type, ts, data, meta FROM main.events
             WHERE stream_id = ?1 AND version > ?2 AND version <= ?3 ORDER BY version"
        })?;
        let mut rows = stmt.query(params![stream_id, i(after), i(upto)])?;
        while let Some(row) = rows.next()? {
            f(event_row(row)?)?;
        }
        Ok(())
    }

    /// Calls `f` for every event with `seq > after` (in seq order), with its stream's name.
    pub fn events_since_seq(
        &self,
        after: i64,
        stream: Option<&StreamInfo>,
        mut f: impl FnMut(Event) -> Result<()>,
    ) -> Result<()> {
        // One statement per case, so that one stream's export reads only its rows.
        let only = if stream.is_some() {
            "AND e.stream_id = ?2"
        } else {
            ""
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT e.seq, e.version, e.type, e.ts, e.data, e.meta, e.idem_key, s.name
             FROM {} e JOIN main.streams s ON s.id = e.stream_id WHERE e.seq > ?1 {only}
             ORDER BY e.seq",
            self.all_events()
        ))?;
        let mut rows = match stream {
            Some(stream) => stmt.query(params![after, stream.id])?,
            None => stmt.query([after])?,
        };
        while let Some(row) = rows.next()? {
            let name: String = row.get(7)?;
            f(Self::event_from_row(row, &name)?)?;
        }
        Ok(())
    }

    /// The ids of the streams with an event whose seq is greater than `after`.
    pub fn streams_written_since(&self, after: i64) -> Result<std::collections::HashSet<StreamId>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT DISTINCT e.stream_id FROM {} e WHERE e.seq > ?1",
            self.all_events()
        ))?;
        let rows = stmt.query_map([after], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// At most `limit` events with `seq > after`, across streams, in seq order.
    pub fn events_by_seq(&self, after: i64, limit: usize) -> Result<Vec<Event>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT e.seq, e.version, e.type, e.ts, e.data, e.meta, e.idem_key, s.name
             FROM {} e JOIN main.streams s ON s.id = e.stream_id WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2",
            self.all_events()
        ))?;
        let rows = stmt.query_map(params![after, i(limit as u64)], |r| {
            let name: String = r.get(7)?;
            Self::event_from_row(r, &name)
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The first event after `version` (or the last before it) whose type or data contains
    /// `needle`, archived events included.
    pub fn find_event(
        &self,
        stream: &StreamInfo,
        version: u64,
        forward: bool,
        needle: &str,
    ) -> Result<Option<u64>> {
        let pattern = contains_pattern(needle);
        let (cmp, order) = if forward { (">", "ASC") } else { ("<", "DESC") };
        let sql = format!(
            "SELECT version FROM {} e WHERE e.stream_id = ?1 AND e.version {cmp} ?2
             AND (e.type LIKE ?3 ESCAPE '\\' OR e.data LIKE ?3 ESCAPE '\\') ORDER BY e.version {order} LIMIT 1",
            self.all_events()
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![stream.id, i(version), pattern], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .map(u))
    }

    /// Version of the stream's last event with `ts <= at` (0 if none).
    pub fn version_at_time(&self, stream: &StreamInfo, at: Micros) -> Result<u64> {
        let stream_id = stream.id;
        if stream.archived_upto > 0 {
            self.require_archive(stream)?;
        }
        // Times never go back within a stream, so the main file's answer, if any, is newer
        // than anything archived.
        for table in ["main.events", "archive.events"] {
            if table == "archive.events" && !self.archive.get() {
                break;
            }
            let found: Option<i64> = self
                .conn
                .prepare_cached(&format!(
                    "SELECT version FROM {table} WHERE stream_id = ?1 AND ts <= ?2 ORDER BY ts DESC, seq DESC LIMIT 1"
                ))?
                .query_row(params![stream_id, at], |r| r.get(0))
                .optional()?;
            if let Some(v) = found {
                return Ok(u(v));
            }
        }
        Ok(0)
    }

    /// Version of the stream's last event with `seq <= at` (0 if none): a binary search over
    /// versions, since seq and version grow together within a stream.
    pub fn version_at_seq(&self, stream: &StreamInfo, at: i64) -> Result<u64> {
        let (mut lo, mut hi) = (0u64, stream.head);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let table = if mid <= stream.archived_upto {
                "archive.events"
            } else {
                "main.events"
            };
            if mid <= stream.archived_upto {
                self.require_archive(stream)?;
            }
            let seq: Option<i64> = self
                .conn
                .prepare_cached(&format!(
                    "SELECT seq FROM {table} WHERE stream_id = ?1 AND version = ?2"
                ))?
                .query_row(params![stream.id, i(mid)], |r| r.get(0))
                .optional()?;
            match seq {
                Some(seq) if seq <= at => lo = mid,
                _ => hi = mid - 1,
            }
        }
        Ok(lo)
    }

    /// Total number of events and the newest seq.
    pub fn event_totals(&self) -> Result<(u64, i64)> {
        let count: i64 =
            self.conn
                .query_row("SELECT coalesce(sum(head), 0) FROM streams", [], |r| {
                    r.get(0)
                })?;
        let max: Option<i64> = self
            .conn
            .query_row("SELECT max(seq) FROM events", [], |r| r.get(0))?;
        Ok((u(count), max.unwrap_or(0)))
    }

    // ---- snapshots ----------------------------------------------------------------------

    fn snapshot_from_row(row: &Row<'_>) -> rusqlite::Result<SnapshotMeta> {
        Ok(SnapshotMeta {
            id: row.get(0)?,
            stream_id: row.get(1)?,
            version: u(row.get(2)?),
            ts: row.get(3)?,
            kind: row.get(4)?,
            base_id: row.get(5)?,
            codec: row.get(6)?,
            raw_size: u(row.get(7)?),
            stored_size: u(row.get(8)?),
            checksum: row.get(9)?,
            fingerprint: row.get(10)?,
            trigger: row.get(11)?,
            label: row.get(12)?,
            created_at: row.get(13)?,
            create_us: u(row.get(14)?),
            expires_at: row.get(15)?,
        })
    }

    /// Stores a full snapshot, replacing any snapshot of the same stream and version.
    pub fn insert_snapshot(&self, snap: &NewSnapshot<'_>) -> Result<SnapshotMeta> {
        // An upsert keeps the row id of a snapshot it replaces, so deltas based on it keep
        // their base (the state at a version never changes, so neither do its bytes).
        let mut stmt = self.conn.prepare_cached(&format!(
            "INSERT INTO snapshots (stream_id, version, ts, kind, base_id, codec, raw_size, stored_size, checksum,
                                    fingerprint, trigger, label, created_at, create_us, blob, expires_at)
             VALUES (?1, ?2, ?3, CASE WHEN ?12 IS NULL THEN 'full' ELSE 'delta' END, ?12, 'zstd', ?4, ?5, ?6,
                     ?7, ?8, ?9, {now}, ?10, ?11, {now} + ?13)
             ON CONFLICT (stream_id, version) DO UPDATE SET
                 ts = excluded.ts, kind = excluded.kind, base_id = excluded.base_id, codec = excluded.codec,
                 raw_size = excluded.raw_size, stored_size = excluded.stored_size, checksum = excluded.checksum,
                 fingerprint = excluded.fingerprint, trigger = excluded.trigger,
                 label = coalesce(excluded.label, label), created_at = excluded.created_at,
                 create_us = excluded.create_us, blob = excluded.blob, expires_at = excluded.expires_at
             RETURNING {SNAPSHOT_COLUMNS}",
            now = schema::NOW_US
        ))?;
        Ok(stmt.query_row(
            params![
                snap.stream_id,
                i(snap.version),
                snap.ts,
                i(snap.raw_size),
                i(snap.blob.len() as u64),
                &snap.checksum[..],
                snap.fingerprint,
                snap.trigger,
                snap.label,
                i(snap.create_us),
                snap.blob,
                snap.base_id,
                snap.expire_after_us
            ],
            Self::snapshot_from_row,
        )?)
    }

    /// Removes snapshots by id (in the caller's transaction).
    pub fn delete_snapshots(&self, ids: &[i64]) -> Result<usize> {
        let mut stmt = self
            .conn
            .prepare_cached("DELETE FROM snapshots WHERE id = ?1")?;
        let mut n = 0;
        for id in ids {
            n += stmt.execute([id])?;
        }
        Ok(n)
    }

    /// The version and creation time of a stream's newest snapshot, if any.
    pub fn last_snapshot(&self, stream_id: StreamId) -> Result<Option<(u64, Micros)>> {
        Ok(self
            .conn
            .prepare_cached("SELECT version, created_at FROM snapshots WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1")?
            .query_row([stream_id], |r| Ok((u(r.get(0)?), r.get(1)?)))
            .optional()?)
    }

    /// How many snapshots have expired by `now`.
    pub fn expired_snapshots(&self, now: Micros) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM snapshots WHERE expires_at <= ?1",
            [now],
            |r| r.get(0),
        )?;
        Ok(u(n))
    }

    /// Rewrites a delta as a full snapshot in place: content, kind and base only, so its
    /// version, trigger, label, creation time and expiry stay what they were.
    pub fn rewrite_as_full(
        &self,
        id: i64,
        raw_size: u64,
        checksum: &[u8; 32],
        blob: &[u8],
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE snapshots SET kind = 'full', base_id = NULL, raw_size = ?2, stored_size = ?3,
                 checksum = ?4, blob = ?5 WHERE id = ?1",
            )?
            .execute(params![id, i(raw_size), i(blob.len() as u64), &checksum[..], blob])?;
        Ok(())
    }

    /// One snapshot's row by id.
    pub fn snapshot_meta(&self, id: i64) -> Result<Option<SnapshotMeta>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE id = ?1"
            ))?
            .query_row([id], Self::snapshot_from_row)
            .optional()?)
    }

    /// Whether a stream has a snapshot at a version.
    pub fn has_snapshot(&self, stream_id: StreamId, version: u64) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM snapshots WHERE stream_id = ?1 AND version = ?2")?
            .query_row(params![stream_id, i(version)], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The stream's newest full snapshot below `version` built with `fingerprint`, and how many
    /// deltas are based on it: where a new delta would go.
    pub fn delta_base(
        &self,
        stream_id: StreamId,
        fingerprint: &str,
        version: u64,
    ) -> Result<Option<(SnapshotMeta, u64)>> {
        let base = self
            .conn
            .prepare_cached(&format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM snapshots
                 WHERE stream_id = ?1 AND kind = 'full' AND fingerprint = ?2 AND version < ?3
                 ORDER BY version DESC LIMIT 1"
            ))?
            .query_row(
                params![stream_id, fingerprint, i(version)],
                Self::snapshot_from_row,
            )
            .optional()?;
        let Some(base) = base else { return Ok(None) };
        let deltas: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM snapshots WHERE base_id = ?1")?
            .query_row([base.id], |r| r.get(0))?;
        Ok(Some((base, u(deltas))))
    }

    /// Snapshots of a stream (all streams if `None`), by stream and version.
    pub fn snapshots(&self, stream_id: Option<StreamId>) -> Result<Vec<SnapshotMeta>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE ?1 IS NULL OR stream_id = ?1 ORDER BY stream_id, version"
        ))?;
        let rows = stmt.query_map([stream_id], Self::snapshot_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Up to [`CANDIDATE_PAGE`] snapshots of a stream with `after < version <= upto`, newest
    /// first: the candidates a reconstruction tries in order, a page at a time.
    pub fn snapshot_candidates(
        &self,
        stream_id: StreamId,
        after: u64,
        upto: u64,
    ) -> Result<Vec<SnapshotMeta>> {
        // The page size is part of the SQL text: a bound LIMIT made SQLite re-prepare the
        // statement on every call.
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots
             WHERE stream_id = ?1 AND version > ?2 AND version <= ?3 ORDER BY version DESC LIMIT {CANDIDATE_PAGE}"
        ))?;
        let rows = stmt.query_map(
            params![stream_id, i(after), i(upto)],
            Self::snapshot_from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The compressed bytes of a snapshot.
    pub fn snapshot_blob(&self, id: i64) -> Result<Vec<u8>> {
        Ok(self
            .conn
            .prepare_cached("SELECT blob FROM snapshots WHERE id = ?1")?
            .query_row([id], |r| r.get(0))?)
    }

    /// Where a stream stands since its newest snapshot built with `fingerprint` (stale ones
    /// do not count): that snapshot's version and raw size (0, 0 if none) and the bytes of
    /// event data appended after it.
    pub fn snapshot_progress(
        &self,
        stream_id: StreamId,
        fingerprint: &str,
    ) -> Result<(u64, u64, u64)> {
        let last: Option<(i64, i64)> = self
            .conn
            // A row above the stream's head contradicts it (verify reports it): it is not
            // where the stream's snapshots stand.
            .prepare_cached("SELECT version, raw_size FROM snapshots WHERE stream_id = ?1 AND fingerprint = ?2
                 AND version <= (SELECT head FROM streams WHERE id = ?1) ORDER BY version DESC LIMIT 1")?
            .query_row(params![stream_id, fingerprint], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (version, raw) = last.map_or((0, 0), |(v, r)| (u(v), u(r)));
        let bytes: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(sum(length(data)), 0) FROM events WHERE stream_id = ?1 AND version > ?2")?
            .query_row(params![stream_id, i(version)], |r| r.get(0))?;
        Ok((version, raw, u(bytes)))
    }

    /// The time of one event, without reading its data.
    pub fn event_ts(&self, stream: &StreamInfo, version: u64) -> Result<Option<Micros>> {
        let stream_id = stream.id;
        if version <= stream.archived_upto {
            self.require_archive(stream)?;
        }
        let mut found = self
            .conn
            .prepare_cached("SELECT ts FROM main.events WHERE stream_id = ?1 AND version = ?2")?
            .query_row(params![stream_id, i(version)], |r| r.get(0))
            .optional()?;
        if found.is_none() && self.archive.get() {
            found = self
                .conn
                .prepare_cached(
                    "SELECT ts FROM archive.events WHERE stream_id = ?1 AND version = ?2",
                )?
                .query_row(params![stream_id, i(version)], |r| r.get(0))
                .optional()?;
        }
        Ok(found)
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

/// An event row (`seq, version, type, ts, data, meta`, in that order) borrowed from the
/// statement's current row.
fn event_row<'a>(row: &'a Row<'_>) -> rusqlite::Result<EventRow<'a>> {
    let text = |idx: usize| -> rusqlite::Result<&'a str> {
        row.get_ref(idx)?.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    let meta = match row.get_ref(5)? {
        rusqlite::types::ValueRef::Null => None,
        _ => Some(text(5)?),
    };
    Ok(EventRow {
        seq: row.get(0)?,
        version: u(row.get(1)?),
        kind: text(2)?,
        ts: row.get(3)?,
        data: text(4)?,
        meta,
    })
}

/// Whether this process may read the file, asked without opening it: closing a descriptor
/// of a database file releases every POSIX lock the process holds on it, SQLite's included.
#[cfg(unix)]
fn readable(path: &Path) -> std::io::Result<()> {
    Ok(rustix::fs::access(path, rustix::fs::Access::READ_OK)?)
}

#[cfg(not(unix))]
fn readable(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path).map(drop)
}

/// A file's size and modification time: what changes when anything is written to it.
fn file_stamp(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// What a database file's header says.
struct Header {
    app_id: i64,
    version: i64,
    tables: i64,
    restoring: bool,
}

/// Reads the header in one read transaction, so that a migration another process commits
/// meanwhile is seen whole or not at all.
fn read_header(conn: &Connection, path: &Path) -> Result<Header> {
    let header = (|| -> rusqlite::Result<Header> {
        conn.execute_batch("BEGIN DEFERRED")?;
        let read = (|| {
            let app_id = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
            let version = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            let tables = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
            let restoring = app_id == APPLICATION_ID
                && version > 0
                && conn
                    .query_row(
                        "SELECT 1 FROM meta WHERE key = ?1",
                        [RESTORE_PENDING],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
            Ok(Header {
                app_id,
                version,
                tables,
                restoring,
            })
        })();
        let _ = conn.execute_batch("COMMIT");
        read
    })();
    header.map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => Error::NotRewind {
            path: path.to_path_buf(),
            reason: "not an SQLite file (or its header is damaged)".into(),
        },
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => Error::NotRewind {
            path: path.to_path_buf(),
            reason: "not an SQLite file that can be read: its header or schema is damaged (a truncated or corrupted file)".into(),
        },
        Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::PermissionDenied) => {
            Error::Input(format!(
                "{} cannot be read: {e} (check its permissions and its folder's)",
                path.display()
            ))
        }
        _ => Error::from(e),
    })
}

/// Whether a header is one this open may go on with.
fn check_header(header: &Header, path: &Path, mode: OpenMode) -> Result<()> {
    let not_rewind = |reason: &str| Error::NotRewind {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let Header {
        app_id,
        version,
        tables,
        ..
    } = *header;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(not_rewind(&format!(
            "application id {app_id:#x} belongs to another program"
        )));
    }
    if version > 0 && app_id != APPLICATION_ID {
        return Err(not_rewind(&format!(
            "schema version {version} without rewind's application id"
        )));
    }
    if version > schema::VERSION {
        return Err(Error::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: schema::VERSION,
        });
    }
    if version == 0 {
        if tables > 0 {
            return Err(not_rewind("it holds tables of another program"));
        }
        if mode != OpenMode::Create {
            return Err(not_rewind(
                "it has no rewind schema; create one with `rewind init`",
            ));
        }
    }
    if mode == OpenMode::ReadOnly && version < schema::READABLE_FROM {
        return Err(not_rewind(
            "its schema is too old to read as it is; open it once with a write command to migrate it",
        ));
    }
    Ok(())
}

/// `file:PATH?immutable=1`, with the path escaped for a URI.
fn immutable_uri(path: &Path) -> Result<String> {
    file_uri(path, "immutable=1")
        .ok_or_else(|| Error::Input(format!("{} is not a UTF-8 path", path.display())))
}

/// `file:PATH?QUERY`, with the path escaped for a URI; `None` for a path that is not UTF-8.
pub(crate) fn file_uri(path: &Path, query: &str) -> Option<String> {
    let text = path.to_str()?;
    let mut uri = String::from("file:");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push('?');
    uri.push_str(query);
    Some(uri)
}

/// A folder of copies that goes when it is dropped.
pub(crate) struct TempCopy(PathBuf);

impl TempCopy {
    /// A new empty folder in the system's temporary folder, named `PREFIX-PID-NANOS`.
    pub(crate) fn new(prefix: &str) -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    /// The folder.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens a file to read it without writing to it. The ordinary way first (SQLite's locks and
/// shared memory, so other processes may write meanwhile); where the folder or the medium
/// cannot hold the shared-memory file: as it is, immutable, when no log is beside it (nothing
/// can be writing it then), or else from a copy of the file and its log, since SQLite ignores a
/// log it cannot use and would show a state without the newest commits.
/// How a file opened to be read is read.
struct Readable {
    conn: Connection,
    copy: Option<TempCopy>,
    note: Option<String>,
    archive_source: Option<String>,
}

fn open_readable(path: &Path, wal: bool) -> Result<Readable> {
    let ordinary = (|| -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "query_only", true)?;
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(conn)
    })();
    let err = match ordinary {
        Ok(conn) => {
            return Ok(Readable {
                conn,
                copy: None,
                note: None,
                archive_source: None,
            });
        }
        Err(err) => err,
    };
    let unusable = matches!(
        err.sqlite_error_code(),
        Some(
            rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::ReadOnly
                | rusqlite::ErrorCode::PermissionDenied
                | rusqlite::ErrorCode::SystemIoFailure
        )
    );
    if !unusable {
        return Err(Error::NotRewind {
            path: path.to_path_buf(),
            reason: err.to_string(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let archive = sidecar(path, ".archive");
    let archive_wal = sidecar(&archive, "-wal").exists();
    if !wal && !archive_wal {
        let conn = Connection::open_with_flags(immutable_uri(path)?, flags)?;
        return Ok(Readable {
            conn,
            copy: None,
            note: None,
            archive_source: Some(immutable_uri(&archive)?),
        });
    }
    let copy = TempCopy::new("rewind-copy").map_err(|cause| Error::Io {
        path: std::env::temp_dir(),
        cause,
    })?;
    let dir = copy.path().to_path_buf();
    let name = dir.join("copy.db");
    let archive_copy = dir.join("copy.db.archive");
    for (from, to) in [
        (path.to_path_buf(), name.clone()),
        (sidecar(path, "-wal"), sidecar(&name, "-wal")),
        (archive.clone(), archive_copy.clone()),
        (sidecar(&archive, "-wal"), sidecar(&archive_copy, "-wal")),
    ] {
        if from.exists() {
            std::fs::copy(&from, &to).map_err(|cause| Error::Io { path: from, cause })?;
        }
    }
    let conn = Connection::open_with_flags(
        &name,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "query_only", true)?;
    let note = format!(
        "{} has a write-ahead log that cannot be used in place ({err}: a read-only folder or \
         medium, or no room for its shared-memory file): reading a copy of the file and its log, \
         as of now",
        path.display()
    );
    let archive_source = archive_copy
        .exists()
        .then(|| archive_copy.to_string_lossy().into_owned());
    Ok(Readable {
        conn,
        copy: Some(copy),
        note: Some(note),
        archive_source,
    })
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
