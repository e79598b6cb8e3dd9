//! The sidecar archive (`DB.archive`): made whole, with its identity, before anyone can see
//! it; attached only when it belongs to its database; and the two moves of an archive run
//! (copy, then finish), with the recovery after a run that was killed between them.
//!
//! An archive belongs to its database: the main file's meta holds `database_id` and the
//! `archive_id` of its archive; the archive's meta holds the same `archive_id` and the
//! database's id as `owner`. A file that names another owner, or another archive id, is
//! refused on every attach, so a leftover archive (a restored, recreated or replaced
//! database's) is never read as this database's history, nor archived into.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::{APPLICATION_ID, ARCHIVE_PENDING, Store, i, schema, sidecar, u};
use crate::error::{Error, Result};
use crate::model::StreamId;

/// Meta key: this database's identity; its archive names it as its `owner`.
pub const DATABASE_ID: &str = "database_id";

/// Meta key, in both files: the identity of the archive paired with the database.
pub const ARCHIVE_ID: &str = "archive_id";

impl Store {
    /// The sidecar archive database's file: the database's path with `.archive` appended.
    pub fn archive_path(&self) -> Option<PathBuf> {
        self.archive_file.clone()
    }

    /// Whether the archive is attached.
    pub fn has_archive(&self) -> bool {
        self.archive.get()
    }

    /// Whether the attached archive was made before archives had an identity: it joins its
    /// database's events exactly, and has yet to be found equal to the snapshots that cover
    /// it (see `snapshot::archive::adopt`).
    pub fn archive_is_legacy(&self) -> bool {
        self.legacy_archive.get()
    }

    /// Attaches the archive if its file exists and belongs to this database; outside any
    /// transaction.
    pub fn attach_archive(&self) -> Result<()> {
        if self.archive.get() {
            return Ok(());
        }
        let Some(path) = self.archive_path().filter(|p| p.exists()) else {
            return Ok(());
        };
        let name = match &self.archive_source {
            Some(source) => source.as_str(),
            None => path
                .to_str()
                .ok_or_else(|| Error::Input(format!("{} is not a UTF-8 path", path.display())))?,
        };
        self.conn.execute("ATTACH DATABASE ?1 AS archive", [name])?;
        if let Err(err) = self
            .check_archive(&path)
            .and_then(|()| self.archive_chain_column())
        {
            let _ = self.conn.execute_batch("DETACH DATABASE archive");
            return Err(err);
        }
        if !self.read_only {
            // An archive restored by an earlier rewind (VACUUM INTO) may be in rollback-journal
            // mode, where a killed writer's hot journal shuts readers out: put it in WAL mode
            // (best effort: another connection in the way just leaves it for later).
            let mode: String = self
                .conn
                .query_row("PRAGMA archive.journal_mode", [], |r| r.get(0))
                .unwrap_or_default();
            if !mode.eq_ignore_ascii_case("wal") {
                let _ = self
                    .conn
                    .query_row("PRAGMA archive.journal_mode = wal", [], |_| Ok(()));
            }
        }
        self.archive.set(true);
        Ok(())
    }

    /// Notes whether the archive's events have their `chain` column, giving it to an archive
    /// made before chains when the database may be written (the engine fills its values).
    fn archive_chain_column(&self) -> Result<()> {
        let has = self
            .conn
            .prepare("SELECT 1 FROM pragma_table_info('events', 'archive') WHERE name = 'chain'")?
            .query_row([], |_| Ok(()))
            .optional()?
            .is_some();
        if !has && !self.read_only && self.chains() {
            self.conn.execute_batch(schema::ARCHIVE_CHAIN)?;
            self.archive_chain.set(true);
            return Ok(());
        }
        self.archive_chain.set(has);
        Ok(())
    }

    /// Attaches the archive, making it first if there is none: for an archive run.
    pub fn create_archive(&self) -> Result<()> {
        let path = self
            .archive_path()
            .ok_or_else(|| Error::Input("a database in memory has no archive".into()))?;
        if !path.exists() {
            self.make_archive(&path)?;
        }
        remove_abandoned_stages(&path);
        self.attach_archive()?;
        if !self.archive.get() {
            return Err(Error::Input(format!(
                "{} could not be made",
                path.display()
            )));
        }
        Ok(())
    }

    /// Makes the archive file whole beside the database (schema and identity in a staged
    /// file, then linked into place), so that no reader ever attaches a half-made one, and
    /// two runs at once never replace each other's.
    fn make_archive(&self, path: &Path) -> Result<()> {
        let database_id = self.meta(DATABASE_ID)?.ok_or_else(|| {
            Error::Input(
                "the database has no identity yet; open it once with a write command".into(),
            )
        })?;
        // The pairing is recorded in the main file first: an archive made after a crash here
        // gets the same id, and one made by another run meanwhile is the same archive.
        let began = self.begin_plain(true)?;
        let archive_id = self.end(
            began,
            (|| match self.meta(ARCHIVE_ID)? {
                Some(id) => Ok(id),
                None => {
                    let id = self.random_id()?;
                    self.set_meta(ARCHIVE_ID, &id)?;
                    Ok(id)
                }
            })(),
        )?;
        let staged = sidecar(path, &format!(".new-{}", std::process::id()));
        let io = |at: &Path| {
            let at = at.to_path_buf();
            move |cause| Error::Io { path: at, cause }
        };
        let _ = std::fs::remove_file(&staged);
        let made = (|| -> Result<()> {
            let conn = Connection::open(&staged)?;
            conn.execute_batch(schema::ARCHIVE)?;
            conn.pragma_update(None, "application_id", APPLICATION_ID)?;
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('owner', ?1), ('archive_id', ?2)",
                [&database_id, &archive_id],
            )?;
            conn.pragma_update(None, "journal_mode", "wal")?;
            drop(conn);
            std::fs::File::open(&staged)
                .and_then(|f| f.sync_all())
                .map_err(io(&staged))?;
            // A link never replaces a file: an archive another run made meanwhile stays.
            match std::fs::hard_link(&staged, path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(_) if !path.exists() => std::fs::rename(&staged, path).map_err(io(path))?,
                Err(e) => return Err(io(path)(e)),
            }
            sync_dir(path);
            Ok(())
        })();
        let _ = std::fs::remove_file(&staged);
        made
    }

    /// A new random identity, from SQLite's generator.
    pub(super) fn random_id(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("SELECT lower(hex(randomblob(16)))", [], |r| r.get(0))?)
    }

    /// Whether the attached file is this database's archive.
    fn check_archive(&self, path: &Path) -> Result<()> {
        let db = self.path.clone().unwrap_or_default();
        let refuse = |reason: String| Error::ForeignArchive {
            db: db.clone(),
            archive: path.to_path_buf(),
            reason,
        };
        let table = |name: &str| -> Result<bool> {
            Ok(self
                .conn
                .prepare_cached(
                    "SELECT 1 FROM archive.sqlite_schema WHERE type = 'table' AND name = ?1",
                )?
                .query_row([name], |_| Ok(()))
                .optional()?
                .is_some())
        };
        if !table("events")? {
            return Err(refuse("it holds no archived events table".into()));
        }
        if !table("meta")? {
            // Made before archives had an identity: it must join the main file exactly.
            if let Some(problem) = self.legacy_join_problem()? {
                return Err(refuse(format!(
                    "it predates archive identities and does not join this database's events: {problem}"
                )));
            }
            self.legacy_archive.set(true);
            return Ok(());
        }
        let archive_meta = |key: &str| -> Result<Option<String>> {
            Ok(self
                .conn
                .prepare_cached("SELECT value FROM archive.meta WHERE key = ?1")?
                .query_row([key], |r| r.get(0))
                .optional()?)
        };
        let owner = archive_meta("owner")?;
        let archive_id = archive_meta("archive_id")?;
        let mine = self.meta(DATABASE_ID)?;
        if owner.is_none() || owner != mine {
            return Err(refuse(format!(
                "it belongs to database {}, this one is {}",
                owner.as_deref().unwrap_or("(none)"),
                mine.as_deref().unwrap_or("(none)")
            )));
        }
        match self.meta(ARCHIVE_ID)? {
            Some(paired) if Some(&paired) != archive_id.as_ref() => Err(refuse(format!(
                "this database is paired with archive {paired}, the file is archive {}",
                archive_id.as_deref().unwrap_or("(none)")
            ))),
            Some(_) => Ok(()),
            // Made by a run killed before it recorded the pairing: this database's own.
            None if !self.read_only => {
                let id = archive_id.unwrap_or_default();
                let began = self.begin_plain(true)?;
                self.end(began, self.set_meta(ARCHIVE_ID, &id))
            }
            None => Ok(()),
        }
    }

    /// For an archive made before archives had an identity: what keeps it from joining the
    /// main file's events exactly (every stream's versions `1..=archived_upto` there, dense,
    /// none of them also in the main file, and older than the main file's first), if
    /// anything.
    fn legacy_join_problem(&self) -> Result<Option<String>> {
        let pending = self.meta(ARCHIVE_PENDING)?.is_some();
        let stray: i64 = self.conn.query_row(
            "SELECT count(*) FROM archive.events a LEFT JOIN main.streams s ON s.id = a.stream_id
             WHERE s.id IS NULL OR a.version > s.archived_upto",
            [],
            |r| r.get(0),
        )?;
        // Copies beyond `archived_upto` are what a killed run leaves; without its mark they
        // are another database's events.
        if stray > 0 && !pending {
            return Ok(Some(format!(
                "it holds {stray} events that no stream of this database counts as archived"
            )));
        }
        let mut stmt = self.conn.prepare(
            "SELECT s.name, s.archived_upto, count(a.seq), coalesce(min(a.version), 0),
                    coalesce(max(a.version), 0), max(a.seq),
                    (SELECT min(m.seq) FROM main.events m WHERE m.stream_id = s.id),
                    (SELECT count(*) FROM main.events m
                     WHERE m.stream_id = s.id AND m.version <= s.archived_upto)
             FROM main.streams s
             LEFT JOIN archive.events a ON a.stream_id = s.id AND a.version <= s.archived_upto
             WHERE s.archived_upto > 0 GROUP BY s.id ORDER BY s.name",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            let upto = u(row.get(1)?);
            let (count, low, high) = (u(row.get(2)?), u(row.get(3)?), u(row.get(4)?));
            let (last_archived, first_main): (Option<i64>, Option<i64>) =
                (row.get(5)?, row.get(6)?);
            let overlap = u(row.get(7)?);
            let problem = if count != upto || low != 1 || high != upto {
                Some(format!(
                    "stream {name:?} is archived up to v{upto}, the file holds {count} of those versions"
                ))
            } else if overlap > 0 {
                Some(format!(
                    "stream {name:?} has {overlap} of its archived versions in the main file too"
                ))
            } else if let (Some(a), Some(m)) = (last_archived, first_main)
                && a >= m
            {
                Some(format!(
                    "stream {name:?}'s archived events are not older than its first in the main file (seq {a} ≥ {m})"
                ))
            } else {
                None
            };
            if problem.is_some() {
                return Ok(problem);
            }
        }
        Ok(None)
    }

    /// Gives an archive made before archives had an identity its identity, once it is known
    /// to be this database's: the archive first, then the pairing in the main file.
    pub fn adopt_legacy_archive(&self) -> Result<()> {
        if !self.legacy_archive.get() || self.read_only {
            return Ok(());
        }
        let database_id = self
            .meta(DATABASE_ID)?
            .ok_or_else(|| Error::Input("the database has no identity yet".into()))?;
        let archive_id = self.random_id()?;
        self.conn.execute_batch(schema::ARCHIVE_META)?;
        self.conn.execute(
            "INSERT OR REPLACE INTO archive.meta (key, value) VALUES ('owner', ?1), ('archive_id', ?2)",
            [&database_id, &archive_id],
        )?;
        let began = self.begin(true)?;
        self.end(began, self.set_meta(ARCHIVE_ID, &archive_id))?;
        self.legacy_archive.set(false);
        Ok(())
    }

    /// Bytes a stream's events `after < version <= upto` take in the main file, roughly
    /// (their data and metadata, and a row's overhead).
    pub fn bytes_between(&self, stream_id: StreamId, after: u64, upto: u64) -> Result<u64> {
        let bytes: i64 = self.conn.query_row(
            "SELECT coalesce(sum(length(data) + coalesce(length(meta), 0) + length(type) + 48), 0)
             FROM main.events WHERE stream_id = ?1 AND version > ?2 AND version <= ?3",
            params![stream_id, i(after), i(upto)],
            |r| r.get(0),
        )?;
        Ok(u(bytes))
    }

    /// Bytes free on the file system that holds the database, where that can be known.
    pub fn free_bytes(&self) -> Option<u64> {
        // For the tests that fill a disk during a run the check would have refused.
        if let Some(assumed) = std::env::var("REWIND_ASSUME_FREE_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            return Some(assumed);
        }
        let dir = self.path.as_deref()?.parent()?;
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        free_space(dir)
    }

    /// Writes both logs back into their files and empties them (best effort: a reader in
    /// the way just leaves them for later).
    pub fn checkpoint(&self) {
        for schema in ["main", "archive"] {
            if schema == "archive" && !self.archive.get() {
                continue;
            }
            let _ = self.conn.query_row(
                &format!("PRAGMA {schema}.wal_checkpoint(TRUNCATE)"),
                [],
                |_| Ok(()),
            );
        }
    }

    /// After an archive run failed: its copies beyond what is archived go, the logs are
    /// emptied, and an archive the run made that holds nothing goes too, so a failure (a
    /// full disk) leaves the disk as it found it. Best effort: what cannot be done now is
    /// done by the next open that recovers the run.
    pub fn abandon_archive_run(&self, made: bool) {
        let archived: i64 = self
            .conn
            .query_row(
                "SELECT coalesce(max(archived_upto), 0) FROM main.streams",
                [],
                |r| r.get(0),
            )
            .unwrap_or(1);
        if made && archived == 0 && self.archive.get() {
            let _ = self.conn.execute_batch("DETACH DATABASE archive");
            self.archive.set(false);
            if let Some(path) = self.archive_path() {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(sidecar(&path, suffix));
                }
            }
        } else if self.archive.get() {
            let _ = self.recover_archive();
        }
        if !self.archive.get() {
            let _ = self.delete_pending();
        }
        self.checkpoint();
    }

    fn delete_pending(&self) -> Result<()> {
        let began = self.begin_plain(true)?;
        self.end(began, self.delete_meta(ARCHIVE_PENDING))
    }

    /// Marks an archive run under way, naming the process that runs it, in its own write
    /// transaction. One run at a time: a mark left by a process known to be gone is
    /// recovered first (its copies beyond what is archived go); one held by a process that
    /// may still run is [`Error::ArchiveBusy`], and nothing is changed.
    pub fn claim_archive_run(&self) -> Result<()> {
        let me = crate::process::Process::current();
        let mine = serde_json::to_string(&me).map_err(|e| Error::Input(e.to_string()))?;
        let began = self.begin(true)?;
        let outcome = (|| {
            if let Some(runner) = self.live_archive_run()?
                && runner != me
            {
                return Err(Error::ArchiveBusy(runner.to_string()));
            }
            // No run is live but this one (the claim holds the write lock): copies beyond
            // what is archived are what an earlier run left, killed or failed (in another
            // process, or in this one before), and go.
            self.delete_stray_copies()?;
            self.set_meta(ARCHIVE_PENDING, &mine)
        })();
        self.end(began, outcome)
    }

    /// For a backup just written: the main file and its archive were copied one after the
    /// other, so an archive run under way between the two copies left its copies in the
    /// archive (and perhaps its mark in the main file). No run will ever finish in the copy:
    /// the copies beyond what is archived go, then the mark.
    pub fn forget_archive_runs(&self) -> Result<()> {
        if self.archive.get() {
            let began = self.begin(true)?;
            self.end(began, self.delete_stray_copies())?;
        }
        let began = self.begin(true)?;
        self.end(began, self.delete_meta(ARCHIVE_PENDING))
    }

    /// Ends this process's archive run: its mark goes (another's is left alone).
    pub fn release_archive_run(&self) -> Result<()> {
        let mine = serde_json::to_string(&crate::process::Process::current())
            .map_err(|e| Error::Input(e.to_string()))?;
        self.conn
            .prepare_cached("DELETE FROM meta WHERE key = ?1 AND value = ?2")?
            .execute([ARCHIVE_PENDING, &mine])?;
        Ok(())
    }

    /// Copies beyond a stream's `archived_upto`: never counted as archived (their originals
    /// are still in the main file), left by a run that did not finish.
    ///
    /// What is not seen cannot be deleted: a process killed after it wrote its commit into a
    /// log but before it updated the log's shared index leaves a commit that no connection
    /// sees until the index is rebuilt from the log (an open after every connection is gone),
    /// and then it counts. So this transaction writes to both files whatever it finds: its
    /// frames go where that commit's are and break their checksum chain, and the unseen
    /// commit never comes back after the judgement made without it.
    fn delete_stray_copies(&self) -> Result<()> {
        for schema in ["main", "archive"] {
            let version: i64 =
                self.conn
                    .query_row(&format!("PRAGMA {schema}.user_version"), [], |r| r.get(0))?;
            self.conn
                .execute_batch(&format!("PRAGMA {schema}.user_version = {version}"))?;
        }
        self.conn.execute_batch(
            "DELETE FROM archive.events
             WHERE version > coalesce((SELECT archived_upto FROM main.streams s WHERE s.id = archive.events.stream_id), 0)",
        )?;
        Ok(())
    }

    /// Recovers after an archive run that was killed, if one was and the process that ran
    /// it is known to be gone: a live run's copies are its own to finish. A mark written by
    /// an earlier rewind (without its process) counts as abandoned.
    pub(super) fn recover_archive_if_abandoned(&self) -> Result<()> {
        if self.meta(ARCHIVE_PENDING)?.is_none() || self.live_archive_run()?.is_some() {
            return Ok(());
        }
        self.recover_archive()
    }

    /// The process whose archive run is marked, unless it is known to be gone (a mark from
    /// an earlier rewind, without its process, counts as gone).
    fn live_archive_run(&self) -> Result<Option<crate::process::Process>> {
        let Some(mark) = self.meta(ARCHIVE_PENDING)? else {
            return Ok(None);
        };
        Ok(serde_json::from_str::<crate::process::Process>(&mark)
            .ok()
            .filter(|runner| !crate::process::Process::current().knows_gone(runner)))
    }

    /// After a killed archive run: copies beyond a stream's `archived_upto` were never
    /// counted as archived (their originals are still in the main file), so they go.
    fn recover_archive(&self) -> Result<()> {
        // Two transactions, the archive's first: SQLite commits attached files one by one,
        // and a mark removed before its copies would leave copies no one will clean up.
        let began = self.begin(true)?;
        self.end(began, self.delete_stray_copies())?;
        let began = self.begin(true)?;
        self.end(began, self.delete_meta(ARCHIVE_PENDING))
    }

    /// Copies a stream's events `after < version <= upto` into the archive (idempotent); the
    /// caller has marked the run pending and commits this on its own.
    pub fn copy_to_archive(&self, stream_id: StreamId, after: u64, upto: u64) -> Result<usize> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO archive.events (seq, stream_id, version, type, ts, data, meta, idem_key, chain)
             SELECT seq, stream_id, version, type, ts, data, meta, idem_key, chain FROM main.events
             WHERE stream_id = ?1 AND version > ?2 AND version <= ?3",
            params![stream_id, i(after), i(upto)],
        )?)
    }
    /// Removes a stream's archived events `after < version <= upto` from the main file and
    /// records how far it is archived; every one of them must be in the archive already.
    pub fn finish_archive(&self, stream_id: StreamId, after: u64, upto: u64) -> Result<usize> {
        let copied: i64 = self.conn.query_row(
            "SELECT count(*) FROM archive.events WHERE stream_id = ?1 AND version > ?2 AND version <= ?3",
            params![stream_id, i(after), i(upto)],
            |r| r.get(0),
        )?;
        // A fork's versions up to the one it continues from are its base's, not its rows.
        let own_after = match self.stream_by_id(stream_id)?.and_then(|s| s.base) {
            Some((_, fork)) => after.max(fork),
            None => after,
        };
        let expected = upto.saturating_sub(own_after);
        if u(copied) != expected {
            return Err(Error::Input(format!(
                "the archive holds {copied} of the {expected} events to move; nothing was removed"
            )));
        }
        let max_seq: Option<i64> = self.conn.query_row(
            "SELECT max(seq) FROM main.events WHERE stream_id = ?1 AND version > ?2 AND version <= ?3",
            params![stream_id, i(after), i(upto)],
            |r| r.get(0),
        )?;
        let high = self
            .meta("seq_high_water")?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        if let Some(max) = max_seq.filter(|m| *m > high) {
            self.set_meta("seq_high_water", &max.to_string())?;
        }
        // Only from where this run planned: another run that moved the stream meanwhile must
        // not be undone (this transaction then rolls back whole).
        let moved = self.conn.execute(
            "UPDATE streams SET archived_upto = ?2 WHERE id = ?1 AND archived_upto = ?3",
            params![stream_id, i(upto), i(after)],
        )?;
        if moved != 1 {
            return Err(Error::Input(
                "another archive run moved this stream meanwhile; nothing was removed, run archive again".into(),
            ));
        }
        let removed = self.conn.execute(
            "DELETE FROM main.events WHERE stream_id = ?1 AND version > ?2 AND version <= ?3",
            params![stream_id, i(after), i(upto)],
        )?;
        Ok(removed)
    }

    /// Events and bytes in the archive (0, 0 without one).
    pub fn archive_totals(&self) -> Result<(u64, u64)> {
        if !self.archive.get() {
            return Ok((0, 0));
        }
        let events: i64 = self
            .conn
            .query_row("SELECT count(*) FROM archive.events", [], |r| r.get(0))?;
        let bytes = self
            .archive_path()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        Ok((u(events), bytes))
    }
}

/// Bytes available to this user on the file system holding `dir`.
#[cfg(unix)]
fn free_space(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(not(unix))]
fn free_space(_dir: &Path) -> Option<u64> {
    None
}

/// Makes a rename or link in `path`'s folder durable (best effort: not every system can).
pub(super) fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Removes the staged archives (`DB.archive.new-PID`, and the journal beside each) that runs
/// killed while making the archive left behind. Making one takes milliseconds, so a stage a
/// minute old is abandoned; a younger one may be another run's (on this host or, in a shared
/// folder, another) making it at this moment, and stays.
fn remove_abandoned_stages(archive: &Path) {
    const ABANDONED: std::time::Duration = std::time::Duration::from_secs(60);
    let (Some(dir), Some(name)) = (archive.parent(), archive.file_name()) else {
        return;
    };
    let prefix = format!("{}.new-", name.to_string_lossy());
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age >= ABANDONED);
        if old && entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
