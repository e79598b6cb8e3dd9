//! Restore: a database and its archive replaced by a backup's as one pair, though SQLite
//! commits each file on its own.
//!
//! The protocol, each step durable before the next:
//! 1. with no other connection to the database, and none allowed until the end (SQLite's
//!    exclusive locking mode), stage the backup's main file as `DB.restoring`, holding the
//!    intent (`restore_pending` in its meta: the archive it comes with, if any), and its
//!    archive as `DB.archive.restoring`;
//! 2. install the staged main file: into the database through SQLite's backup API (one
//!    transaction), or by renaming it into place when there was no database. From here on the
//!    restore is done, and finishing it is what any open does first;
//! 3. finish: the staged archive renamed into place (or the old archive removed when the
//!    backup has none), then the intent cleared.
//!
//! A kill before step 2 leaves the old pair; after it, the next open finishes the new pair.
//! The archive's identity (see `archive.rs`) guards the rest: a leftover is never read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{APPLICATION_ID, ARCHIVE_ID, Store, archive::sync_dir, sidecar};
use crate::error::{Error, Result};

/// Meta key of a restore's intent, in the restored main file until it is finished.
pub const RESTORE_PENDING: &str = "restore_pending";

/// What the restored main file says about the archive that goes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Intent {
    /// The id of the archive staged beside it, or `None` when the backup has none.
    archive_id: Option<String>,
    /// What the staged archive's meta says as `restored_by`: a backup of the same database
    /// has the same archive id, so the id alone cannot tell the staged archive from the old.
    #[serde(default)]
    token: Option<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |cause| Error::Io { path, cause }
}

fn utf8(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| Error::Input(format!("{} is not a UTF-8 path", path.display())))
}

/// Replaces `db` (and its archive) with `backup` (and the backup's archive), as one pair; a
/// database that another process has open is refused, not replaced under it.
pub fn restore_pair(backup: &Store, db: &Path) -> Result<()> {
    let staged = sidecar(db, ".restoring");
    let staged_archive = sidecar(db, ".archive.restoring");
    // Held from here to the end: nobody else may have the database open meanwhile.
    let mut exclusive = if db.exists() {
        Some(lock_exclusive(db)?)
    } else {
        None
    };
    // An earlier restore killed after it installed its main file is finished first: its
    // staged archive belongs to it, and removing it as a leftover would leave its main file
    // beside the old archive.
    if let Some(conn) = &exclusive {
        finish(db, conn)?;
    }
    for leftover in [&staged, &staged_archive] {
        remove_with_wal(leftover)?;
    }
    crate::failpoint::point("restore-stage");
    // Each staged file is written under a temporary name and renamed when whole: a kill while
    // it is written never leaves half a file under the name the protocol reads.
    let token = backup.random_id()?;
    let archive_id = if backup.has_archive() {
        let writing = sidecar(&staged_archive, ".part");
        remove_with_wal(&writing)?;
        backup.vacuum_into("archive", utf8(&writing)?)?;
        {
            // VACUUM INTO writes a rollback-journal file; the archive is read beside
            // writers, so it goes in place in WAL mode, as a new one is made; and it says
            // which restore staged it.
            let conn = Connection::open(&writing)?;
            conn.pragma_update(None, "journal_mode", "wal")?;
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('restored_by', ?1)",
                [&token],
            )?;
        }
        sync_file(&writing)?;
        std::fs::rename(&writing, &staged_archive).map_err(io(&staged_archive))?;
        sync_dir(&staged_archive);
        Some(
            backup
                .meta(ARCHIVE_ID)?
                .ok_or_else(|| Error::Input("the backup's archive is not paired with it".into()))?,
        )
    } else {
        None
    };
    let writing = sidecar(&staged, ".part");
    remove_with_wal(&writing)?;
    backup.vacuum_into("main", utf8(&writing)?)?;
    {
        let conn = Connection::open(&writing)?;
        conn.pragma_update(None, "journal_mode", "wal")?;
        let intent = serde_json::to_string(&Intent {
            archive_id,
            token: Some(token),
        })
        .map_err(|e| Error::Input(e.to_string()))?;
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            [RESTORE_PENDING, &intent],
        )?;
    }
    sync_file(&writing)?;
    std::fs::rename(&writing, &staged).map_err(io(&staged))?;
    sync_file(&staged)?;
    crate::failpoint::point("restore");
    let conn = match exclusive.as_mut() {
        Some(conn) => {
            replace_content(conn, &staged)?;
            exclusive
        }
        None => {
            std::fs::rename(&staged, db).map_err(io(db))?;
            sync_dir(db);
            None
        }
    };
    crate::failpoint::point("restore");
    match conn {
        Some(conn) => finish(db, &conn)?,
        None => finish_interrupted(db)?,
    }
    remove_with_wal(&staged)?;
    Ok(())
}

/// Opens the database so that no other connection has it or can get it until this one is
/// closed: SQLite's exclusive locking mode, taken with a write.
fn lock_exclusive(db: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::NotRewind {
        path: db.to_path_buf(),
        reason: e.to_string(),
    })?;
    let app_id: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| Error::NotRewind {
            path: db.to_path_buf(),
            reason: e.to_string(),
        })?;
    if app_id != APPLICATION_ID {
        return Err(Error::NotRewind {
            path: db.to_path_buf(),
            reason: "restore replaces only a rewind database".into(),
        });
    }
    conn.busy_timeout(Duration::from_millis(200))?;
    conn.pragma_update(None, "locking_mode", "exclusive")?;
    conn.execute_batch("BEGIN EXCLUSIVE; COMMIT")
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                Error::Input(format!(
                    "{} is open in another process (a debugger, a maintainer, a writer); \
                     restore replaces the whole database, so close them first. Nothing was changed",
                    db.display()
                ))
            }
            _ => e.into(),
        })?;
    Ok(conn)
}

/// The database's content replaced by the staged file's, in one transaction.
fn replace_content(conn: &mut Connection, staged: &Path) -> Result<()> {
    let source = Connection::open_with_flags(staged, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let backup = rusqlite::backup::Backup::new(&source, conn)?;
    // Every page in one step: one write transaction on the database.
    match backup.step(-1)? {
        rusqlite::backup::StepResult::Done => Ok(()),
        other => Err(Error::Input(format!(
            "copying the backup into the database stopped ({other:?}); nothing was changed"
        ))),
    }
}

/// Finishes a restore whose main file is installed: the archive that goes with it in place
/// (or none), then the intent cleared. Idempotent, so a kill anywhere in it is finished by
/// the next open.
fn finish(db: &Path, conn: &Connection) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let outcome = (|| -> Result<()> {
        let intent: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [RESTORE_PENDING],
                |r| r.get(0),
            )
            .optional()?;
        let Some(intent) = intent else {
            return Ok(());
        };
        let intent: Intent = serde_json::from_str(&intent).map_err(|e| {
            Error::Input(format!(
                "{}: a restore's intent is unreadable: {e}",
                db.display()
            ))
        })?;
        let archive = sidecar(db, ".archive");
        let staged = sidecar(db, ".archive.restoring");
        match &intent.archive_id {
            Some(_) if staged.exists() => {
                // The old archive's log must not be read as the new one's.
                remove_wal(&archive)?;
                std::fs::rename(&staged, &archive).map_err(io(&archive))?;
                sync_dir(&archive);
            }
            Some(id) => {
                let (found, by) = archive_id_of(&archive)?;
                if found.as_ref() != Some(id) || (intent.token.is_some() && by != intent.token) {
                    return Err(Error::Input(format!(
                        "{}: a restore was interrupted and the archive it staged ({}) is gone; restore again",
                        db.display(),
                        staged.display()
                    )));
                }
            }
            None => remove_with_wal(&archive)?,
        }
        crate::failpoint::point("restore");
        conn.execute("DELETE FROM meta WHERE key = ?1", [RESTORE_PENDING])?;
        Ok(())
    })();
    match outcome {
        Ok(()) => Ok(conn.execute_batch("COMMIT")?),
        Err(err) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(err)
        }
    }
}

/// Finishes a restore that was killed after its main file was installed (its intent is in
/// the database): what an open that finds the intent does first.
pub(super) fn finish_interrupted(db: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|_| {
        Error::Input(format!(
            "{}: a restore into it was interrupted and must be finished by a process that may write it",
            db.display()
        ))
    })?;
    conn.busy_timeout(Duration::from_millis(super::BUSY_TIMEOUT_MS))?;
    finish(db, &conn)
}

/// An archive's id and which restore staged it, if it says.
fn archive_id_of(archive: &Path) -> Result<(Option<String>, Option<String>)> {
    if !archive.exists() {
        return Ok((None, None));
    }
    let conn = Connection::open_with_flags(archive, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let meta = |key: &str| {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .unwrap_or(None)
    };
    Ok((meta("archive_id"), meta("restored_by")))
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

fn remove_wal(path: &Path) -> Result<()> {
    for suffix in ["-wal", "-shm"] {
        let file: PathBuf = sidecar(path, suffix);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&file)(e)),
            _ => {}
        }
    }
    Ok(())
}

fn remove_with_wal(path: &Path) -> Result<()> {
    remove_wal(path)?;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
        _ => Ok(()),
    }
}
