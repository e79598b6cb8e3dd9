//! Backup and restore: a consistent copy of a live database (`VACUUM INTO`, inside one read
//! transaction, so another process may keep appending), and a restore that verifies the copy
//! first and never overwrites a database unless told to.

use std::path::Path;

use crate::error::{Error, Result};
use crate::snapshot::verify;
use crate::store::Store;

/// Writes a consistent copy of `db` to `out`, which must not exist. Returns its size.
pub fn backup(db: &Path, out: &Path) -> Result<u64> {
    if out.exists() {
        return Err(Error::Input(format!(
            "{} exists; choose a new file for the backup",
            out.display()
        )));
    }
    let store = Store::open_for_reading(db)?;
    let target = out
        .to_str()
        .ok_or_else(|| Error::Input(format!("{} is not a UTF-8 path", out.display())))?;
    store.vacuum_into("main", target)?;
    let mut size = std::fs::metadata(out)
        .map_err(|cause| Error::Io {
            path: out.to_path_buf(),
            cause,
        })?
        .len();
    if store.has_archive() {
        // The archive travels with its database: OUT.archive beside OUT.
        let archive = crate::store::sidecar(out, ".archive");
        let target = archive
            .to_str()
            .ok_or_else(|| Error::Input(format!("{} is not a UTF-8 path", archive.display())))?;
        let _ = std::fs::remove_file(&archive);
        store.vacuum_into("archive", target)?;
        size += std::fs::metadata(&archive)
            .map_err(|cause| Error::Io {
                path: archive.clone(),
                cause,
            })?
            .len();
    }
    Ok(size)
}

/// Why a restore did not happen, or what it restored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Restored {
    /// Events in the restored database.
    pub events: u64,
    /// Snapshots in it.
    pub snapshots: usize,
}

/// Replaces `db` with `backup` after verifying the backup; refuses to replace an existing
/// database unless `force`. The copy lands beside `db` and is renamed into place.
pub fn restore(backup: &Path, db: &Path, force: bool) -> Result<Restored> {
    let report = verify::verify(backup, None, &|_, _| {})?;
    if let Some(first) = report.findings.first() {
        return Err(Error::Input(format!(
            "{} does not verify ({} problems, the first: {} v{}: {}); nothing was restored",
            backup.display(),
            report.findings.len(),
            first.stream,
            first.version.map_or_else(|| "-".into(), |v| v.to_string()),
            first.detail
        )));
    }
    if db.exists() && !force {
        return Err(Error::Input(format!(
            "{} exists; pass --force to replace it with the backup",
            db.display()
        )));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| Error::Io { path, cause }
    };
    let archive = crate::store::sidecar(backup, ".archive");
    if archive.exists() {
        let tmp = crate::store::sidecar(db, ".archive.restoring");
        std::fs::copy(&archive, &tmp).map_err(io(&tmp))?;
        std::fs::rename(&tmp, crate::store::sidecar(db, ".archive")).map_err(io(db))?;
    }
    let tmp = crate::store::sidecar(db, ".restoring");
    let _ = std::fs::remove_file(&tmp);
    std::fs::copy(backup, &tmp).map_err(io(&tmp))?;
    for stale in [
        crate::store::sidecar(db, "-wal"),
        crate::store::sidecar(db, "-shm"),
    ] {
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&stale)(e)),
            _ => {}
        }
    }
    std::fs::rename(&tmp, db).map_err(io(db))?;
    Ok(Restored {
        events: report.events,
        snapshots: report.snapshots,
    })
}
