//! Another program's SQLite file, opened to read without writing anything: not the file, and
//! no file beside it. SQLite makes this subtle, so the rule (`SOURCES.md`) is:
//!
//! - a log (`-wal`) and its shared-memory file (`-shm`) beside it: the owner may be writing;
//!   open read-only the ordinary way, taking read locks in the existing `-shm` (how readers
//!   cooperate with a writer), so the newest commits in the log are seen;
//! - no log: open `immutable` (nothing else is read, nothing is made);
//! - a log without its shared-memory file, or one SQLite cannot use in place (a read-only
//!   folder or medium): copy the file and its log to a temporary folder and read the copy,
//!   and say so. Opening the ordinary way would make a `-shm` beside the source, and opening
//!   `immutable` would ignore the log: the last checkpoints of a crashed run, exactly what the
//!   user came to see.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::store::{TempCopy, sidecar};

/// A source file open for reading.
pub struct Foreign {
    /// The connection; `query_only`, whatever way it was opened.
    pub conn: Connection,
    /// What the user should know about how it is read (a copy, as of when).
    pub note: Option<String>,
    /// The folder of the copy, removed on drop.
    _copy: Option<TempCopy>,
}

/// What kind of SQLite file a source is, judged by its tables and their columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// rewind's own database.
    Rewind,
    /// LangGraph's `SqliteSaver`: `checkpoints` and `writes`.
    LangGraph,
    /// Python `eventsourcing`: `stored_events` (and maybe `stored_snapshots`).
    EventSourcing,
}

impl Kind {
    /// The name `--format` takes and `rewind sources` lists.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rewind => "rewind",
            Self::LangGraph => "langgraph",
            Self::EventSourcing => "eventsourcing",
        }
    }
}

/// The tables and columns each format is recognised by.
const SIGNATURES: [(Kind, &str, &[&str]); 3] = [
    (
        Kind::LangGraph,
        "checkpoints",
        &[
            "thread_id",
            "checkpoint_ns",
            "checkpoint_id",
            "parent_checkpoint_id",
            "type",
            "checkpoint",
            "metadata",
        ],
    ),
    (
        Kind::EventSourcing,
        "stored_events",
        &["originator_id", "originator_version", "topic", "state"],
    ),
    (Kind::Rewind, "events", &["seq", "stream_id", "version"]),
];

/// Opens `path` for reading by the rule above.
pub fn open(path: &Path) -> Result<Foreign, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_dir() {
        return Err(format!("{} is a folder, not a file", path.display()));
    }
    let wal = sidecar(path, "-wal");
    let shm = sidecar(path, "-shm");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let sqlite_error = |e: rusqlite::Error| format!("{}: {e}", path.display());
    if !wal.exists() {
        let conn =
            Connection::open_with_flags(uri(path, "immutable=1")?, flags).map_err(sqlite_error)?;
        check_readable(&conn, path)?;
        return Ok(Foreign {
            conn,
            note: None,
            _copy: None,
        });
    }
    if shm.exists() {
        let opened = Connection::open_with_flags(uri(path, "mode=ro")?, flags).and_then(|conn| {
            conn.pragma_update(None, "query_only", true)?;
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(conn)
        });
        match opened {
            Ok(conn) => {
                return Ok(Foreign {
                    conn,
                    note: None,
                    _copy: None,
                });
            }
            Err(e)
                if !matches!(
                    e.sqlite_error_code(),
                    Some(
                        rusqlite::ErrorCode::CannotOpen
                            | rusqlite::ErrorCode::ReadOnly
                            | rusqlite::ErrorCode::PermissionDenied
                    )
                ) =>
            {
                return Err(sqlite_error(e));
            }
            Err(_) => {}
        }
    }
    let copy = TempCopy::new("rewind-source")
        .map_err(|e| format!("making a folder for a copy of {}: {e}", path.display()))?;
    let name = copy.path().join("source.db");
    for (from, to) in [
        (path.to_path_buf(), name.clone()),
        (wal, sidecar(&name, "-wal")),
    ] {
        std::fs::copy(&from, &to).map_err(|e| format!("copying {}: {e}", from.display()))?;
    }
    let conn = Connection::open_with_flags(&name, flags).map_err(sqlite_error)?;
    conn.pragma_update(None, "query_only", true)
        .map_err(sqlite_error)?;
    check_readable(&conn, path)?;
    let why = if shm.exists() {
        "its log cannot be used in place (a read-only folder or medium)"
    } else {
        "its log has no shared-memory file beside it, and reading it in place would make one"
    };
    Ok(Foreign {
        conn,
        note: Some(format!(
            "{}: {why}; reading a copy of the file and its log, as of now",
            path.display()
        )),
        _copy: Some(copy),
    })
}

/// What a file is, by the tables its main file holds, read without locks or a log (`None`
/// where that does not tell: no known tables there, or a read that failed): enough to pass
/// rewind's own files on to rewind's open without [`open`]'s copy of a log, never enough to
/// read rows by.
pub fn kind_at_a_glance(path: &Path) -> Option<Kind> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(uri(path, "immutable=1").ok()?, flags).ok()?;
    kind(&conn).ok().flatten()
}

/// What a file is, by its tables; `None` for an SQLite file of none of the known kinds.
pub fn kind(conn: &Connection) -> Result<Option<Kind>, String> {
    for (kind, table, columns) in SIGNATURES {
        let found = self::columns(conn, table)?;
        if columns.iter().all(|c| found.iter().any(|f| f == c)) {
            return Ok(Some(kind));
        }
    }
    Ok(None)
}

/// What [`kind`] looked for, for the message when nothing matched.
pub fn looked_for() -> String {
    SIGNATURES
        .iter()
        .map(|(kind, table, columns)| {
            format!("{}: a table {table}({})", kind.name(), columns.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The columns of a table (none if there is no such table).
pub fn columns(conn: &Connection, table: &str) -> Result<Vec<String>, String> {
    let mut statement = conn
        .prepare_cached("SELECT name FROM pragma_table_info(?1)")
        .map_err(|e| e.to_string())?;
    let names: rusqlite::Result<Vec<String>> = statement
        .query_map([table], |r| r.get::<_, String>(0))
        .and_then(Iterator::collect);
    names.map_err(|e| e.to_string())
}

fn check_readable(conn: &Connection, path: &Path) -> Result<(), String> {
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(drop)
    .map_err(|e| {
        format!(
            "{} is not an SQLite database rewind can read: {e}",
            path.display()
        )
    })
}

/// `file:PATH?QUERY` for SQLite.
fn uri(path: &Path, query: &str) -> Result<String, String> {
    crate::store::file_uri(path, query)
        .ok_or_else(|| format!("{} is not a UTF-8 path", path.display()))
}
