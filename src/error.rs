//! The library's error type. Messages name the thing that is wrong (file, line, stream,
//! version); causes go in `source` so that `{:#}` prints each once.

use std::path::PathBuf;

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database file does not exist and the command does not create one.
    #[error("{}: no such database (create one with `rewind init {}`)", .0.display(), .0.display())]
    Missing(PathBuf),
    /// The file exists but is not an SQLite database or not one of rewind's.
    #[error("{}: not a rewind database ({reason})", path.display())]
    NotRewind {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// The database was written by a newer rewind; it is left untouched.
    #[error(
        "{}: database schema version {found} is newer than this rewind supports ({supported}); upgrade rewind",
        path.display()
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The archive beside the database belongs to another database (or another copy of
    /// this one): it is neither read nor written.
    #[error(
        "{}: not the archive of {} ({reason}); nothing was read from it or changed. If it is left over from another database, move it aside: mv {} {}.orphan",
        archive.display(), db.display(), archive.display(), archive.display()
    )]
    ForeignArchive {
        /// The database.
        db: PathBuf,
        /// The archive file.
        archive: PathBuf,
        /// How it was told apart.
        reason: String,
    },
    /// The file (or its folder, or the medium) cannot be written; reading it still works.
    #[error(
        "{}: cannot be written (no permission, or a read-only file system); read commands and `rewind open --read-only` still read it",
        .0.display()
    )]
    NotWritable(PathBuf),
    /// Another archive run, by a process that may still be running, is under way.
    #[error(
        "another archive run ({0}) is under way; nothing was moved, run archive again once it ends"
    )]
    ArchiveBusy(String),
    /// Another connection held the write lock longer than the busy timeout.
    #[error("the database is locked by another process (waited {waited_ms} ms); try again")]
    Locked {
        /// How long we waited.
        waited_ms: u64,
    },
    /// The disk, or the database's size limit, is full; the write was rolled back.
    #[error(
        "the disk is full (or the database reached its size limit); nothing of this write was stored"
    )]
    Full,
    /// No stream with that name.
    #[error("no stream named {0:?}")]
    UnknownStream(String),
    /// A version outside `0..=head`.
    #[error("stream {stream:?} has versions 1..={head}; there is no version {version}")]
    VersionOutOfRange {
        /// The stream.
        stream: String,
        /// What was asked for.
        version: u64,
        /// The newest version.
        head: u64,
    },
    /// The event chain has a hole: the version is not stored (nor archived).
    #[error("stream {stream:?} is missing version {version}; run `rewind verify`")]
    MissingVersion {
        /// The stream.
        stream: String,
        /// The first version that is missing.
        version: u64,
    },
    /// Optimistic concurrency: the stream moved on.
    #[error("stream {stream:?} is at version {actual}, expected {expected}")]
    Conflict {
        /// The stream.
        stream: String,
        /// The version the caller expected.
        expected: u64,
        /// The version it is at.
        actual: u64,
    },
    /// The reducer could not apply an event.
    #[error(
        "stream {stream:?} version {version}: the {} reducer cannot apply this event",
        short_spec(reducer)
    )]
    Reduce {
        /// The stream.
        stream: String,
        /// The event's version.
        version: u64,
        /// The reducer spec.
        reducer: String,
        /// Why.
        #[source]
        cause: crate::reduce::ReduceError,
    },
    /// Applying an event went over a limit of its budget ([`crate::budget`]): the event is
    /// refused, and nothing built from it is cached or stored.
    #[error(
        "stream {stream:?} version {version}: applying the event went over its limit of {limit} (reducer {})",
        short_spec(reducer)
    )]
    OverBudget {
        /// The stream.
        stream: String,
        /// The event's version.
        version: u64,
        /// The reducer spec.
        reducer: String,
        /// The limit it went over.
        limit: crate::budget::Limit,
    },
    /// A reducer spec that does not parse or compile.
    #[error("invalid reducer {spec:?}")]
    BadReducer {
        /// The spec as given.
        spec: String,
        /// Why.
        #[source]
        cause: crate::reduce::ReduceError,
    },
    /// An error at a place in the input, e.g. a line of an import file.
    #[error("{at}")]
    At {
        /// Where: `events.jsonl line 7`.
        at: String,
        /// What went wrong there.
        #[source]
        cause: Box<Error>,
    },
    /// Input the user supplied is wrong: the message says where and how.
    #[error("{0}")]
    Input(String),
    /// An SQLite error that is not one of the cases above.
    #[error("database error")]
    Sqlite(#[source] rusqlite::Error),
    /// Reading or writing a file.
    #[error("{}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        cause: std::io::Error,
    },
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, DiskFull};
        // SQLITE_IOERR_SHMSIZE: no room to grow the shared-memory file of the log.
        const IOERR_SHMSIZE: i32 = 4874;
        match err.sqlite_error_code() {
            Some(DiskFull) => Self::Full,
            _ if matches!(&err, rusqlite::Error::SqliteFailure(e, _) if e.extended_code == IOERR_SHMSIZE) => {
                Self::Full
            }
            Some(DatabaseBusy | DatabaseLocked) => Self::Locked {
                waited_ms: crate::store::BUSY_TIMEOUT_MS,
            },
            _ => Self::Sqlite(err),
        }
    }
}

impl Error {
    /// Whether SQLite found the file damaged (a page it cannot make sense of).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Self::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseCorrupt))
    }
}

/// An error with its causes, `outer: inner: innermost`, as `{:#}` prints an anyhow chain.
pub fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A reducer spec as a message names it: a long jq program (a file's worth) by its first
/// line, cut short.
pub fn short_spec(spec: &str) -> String {
    const SHOWN: usize = 60;
    let first = spec.lines().next().unwrap_or_default();
    if first.len() == spec.len() && spec.chars().count() <= SHOWN {
        return spec.to_owned();
    }
    let cut: String = first.chars().take(SHOWN).collect();
    format!("{}…", cut.trim_end())
}
