//! Events: appending, the hash chain, reading them back by version, time, seq, key or meta,
//! and replays.

use rusqlite::{OptionalExtension, Row, params};

use super::{ChainRow, EventRow, Store, contains_pattern, i, schema, u};
use crate::error::{Error, Result};
use crate::model::{Event, Micros, StreamId, StreamInfo};

impl Store {
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

    pub(super) fn chain_table(
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

    pub(super) fn chain_each(
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

    pub(super) fn event_from_row(row: &Row<'_>, stream: &str) -> rusqlite::Result<Event> {
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

    pub(super) fn require_archive(&self, stream: &StreamInfo) -> Result<()> {
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

    pub(super) fn replay_table(
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
