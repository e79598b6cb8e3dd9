//! Backup and restore: a consistent copy of a live database (`VACUUM INTO`, inside one read
//! transaction, so another process may keep appending), and a restore that verifies the copy
//! first and never overwrites a database unless told to.

use std::path::Path;

use crate::error::{Error, Result};
use crate::snapshot::verify;
use crate::store::Store;

/// Writes a consistent copy of `db` to `out`, which must not exist. Returns its size.
pub fn backup(db: &Path, out: &Path) -> Result<u64> {
    let out_archive = crate::store::sidecar(out, ".archive");
    for taken in [out, out_archive.as_path()] {
        if taken.exists() {
            return Err(Error::Input(format!(
                "{} exists; choose a new name for the backup (it is written with its archive beside it, as {}.archive)",
                taken.display(),
                out.display()
            )));
        }
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
        store.vacuum_into("archive", target)?;
        size += std::fs::metadata(&archive)
            .map_err(|cause| Error::Io {
                path: archive.clone(),
                cause,
            })?
            .len();
    }
    drop(store);
    // The two files were copied one after the other (the main file first, so the archive
    // holds everything it counts as archived): what an archive run under way in between
    // left half done is tidied in the copy.
    Store::open(out, crate::store::OpenMode::Existing)?.forget_archive_runs()?;
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

/// Replaces `db` and its archive with `backup` and the backup's archive, as one pair (see
/// `store::restore_pair`), after verifying the backup; refuses to replace an existing
/// database unless `force`, and one that another process has open.
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
            "{} exists; pass --force to replace it (and its archive) with the backup",
            db.display()
        )));
    }
    let source = Store::open(backup, crate::store::OpenMode::ReadOnly)?;
    crate::store::restore_pair(&source, db)?;
    Ok(Restored {
        events: report.events,
        snapshots: report.snapshots,
    })
}
