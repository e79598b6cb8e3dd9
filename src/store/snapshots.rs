//! Snapshots' rows: inserting, finding the candidates for a state, their blobs, and
//! removing them.

use rusqlite::{OptionalExtension, Row, params};

use super::{CANDIDATE_PAGE, NewSnapshot, SNAPSHOT_COLUMNS, SnapshotMeta, Store, i, schema, u};
use crate::error::Result;
use crate::model::{Micros, StreamId};

impl Store {
    pub(super) fn snapshot_from_row(row: &Row<'_>) -> rusqlite::Result<SnapshotMeta> {
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
}
