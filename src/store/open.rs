//! Opening a database: the ordinary way, read-only, immutable or from a copy of the file and
//! its log (another program's file is never written), its header checked, its schema
//! migrated.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{
    APPLICATION_ID, BUSY_TIMEOUT_MS, CHAIN_PENDING, OpenMode, RESTORE_PENDING, Store, i, restore,
    schema, sidecar,
};
use crate::error::{Error, Result};

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

    pub(super) fn setup(conn: Connection, path: Option<PathBuf>, mode: OpenMode) -> Result<Self> {
        Self::setup_with(conn, path, mode, None)
    }

    pub(super) fn setup_with(
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

    pub(super) fn migrate(&self) -> Result<()> {
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
