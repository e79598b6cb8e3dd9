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
    /// archive, those of a stream it continues from that stream), with its stored chain
    /// value: what `verify` and the fill pass recompute the chain over. Reconstruction never
    /// reads the chain column.
    pub fn chain_rows(
        &self,
        stream: &StreamInfo,
        upto: u64,
        mut f: impl FnMut(ChainRow<'_>) -> Result<()>,
    ) -> Result<()> {
        for piece in self.pieces(stream, 1, upto)? {
            // An archive not yet given its column (read-only, before the first write
            // command) reads as one without values.
            let chain = if piece.archive && !self.archive_chain.get() {
                "NULL"
            } else {
                "chain"
            };
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT seq, version, type, ts, data, meta, {chain} FROM {}
                 WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3 ORDER BY version",
                piece.table()
            ))?;
            let mut rows = stmt.query(params![piece.stream_id, i(piece.from), i(piece.to)])?;
            while let Some(row) = rows.next()? {
                f(ChainRow {
                    row: event_row(row)?,
                    chain: row.get(6)?,
                    archived: piece.archive,
                    own: piece.own,
                })?;
            }
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
        for piece in self.pieces(stream, 1, stream.head)? {
            let found = self
                .conn
                .prepare_cached(&format!(
                    "SELECT version FROM {} WHERE stream_id = ?1 AND version >= ?4 AND version <= ?5
                     AND CAST(json_extract(meta, ?2) AS TEXT) = ?3 ORDER BY version LIMIT 1",
                    piece.table()
                ))?
                .query_row(
                    params![piece.stream_id, path, value, i(piece.from), i(piece.to)],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?;
            if let Some(version) = found {
                return Ok(Some(u(version)));
            }
        }
        Ok(None)
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
        for piece in self.pieces(stream, 1, stream.head)?.iter().rev() {
            let found = self
                .conn
                .prepare_cached(&format!(
                    "SELECT max(version) FROM {} WHERE stream_id = ?1 AND version >= ?4 AND version <= ?5
                     AND json_extract(meta, ?2) <= ?3",
                    piece.table()
                ))?
                .query_row(
                    params![piece.stream_id, path, n, i(piece.from), i(piece.to)],
                    |r| r.get::<_, Option<i64>>(0),
                )?;
            if let Some(version) = found {
                return Ok(u(version));
            }
        }
        Ok(0)
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

    /// One event of a stream (archived or not, its own or a stream's it continues).
    pub fn event(&self, stream: &StreamInfo, version: u64) -> Result<Option<Event>> {
        Ok(self.events(stream, version, version, 1)?.pop())
    }

    /// Events of a stream with `from <= version <= to`, oldest first, at most `limit`,
    /// archived ones and those of a stream it continues included.
    pub fn events(
        &self,
        stream: &StreamInfo,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        for piece in self.pieces(stream, from, to)? {
            if out.len() >= limit {
                break;
            }
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT seq, version, type, ts, data, meta, idem_key FROM {}
                 WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3 ORDER BY version LIMIT ?4",
                piece.table()
            ))?;
            let rows = stmt.query_map(
                params![
                    piece.stream_id,
                    i(piece.from),
                    i(piece.to),
                    i((limit - out.len()) as u64)
                ],
                |r| Self::event_from_row(r, &stream.name),
            )?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// Calls `f` for each event of a stream with `after < version <= upto`, oldest first,
    /// without holding more than one row in memory; archived versions come from the archive,
    /// those of a stream it continues from that stream.
    pub fn replay(
        &self,
        stream: &StreamInfo,
        after: u64,
        upto: u64,
        mut f: impl FnMut(EventRow<'_>) -> Result<()>,
    ) -> Result<()> {
        for piece in self.pieces(stream, after + 1, upto)? {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT seq, version, type, ts, data, meta FROM {}
                 WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3 ORDER BY version",
                piece.table()
            ))?;
            let mut rows = stmt.query(params![piece.stream_id, i(piece.from), i(piece.to)])?;
            while let Some(row) = rows.next()? {
                f(event_row(row)?)?;
            }
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

    /// Calls `f` for every event with `seq > after` (in seq order), with its stream's name;
    /// or, given a stream, for each of its events with `seq > after`, those of a stream it
    /// continues included. In a walk of every stream, a stream that continues another has
    /// the versions it continues (whatever their seq) just before its first own event: the
    /// history each stream is, as `import` takes it.
    pub fn events_since_seq(
        &self,
        after: i64,
        stream: Option<&StreamInfo>,
        mut f: impl FnMut(Event) -> Result<()>,
    ) -> Result<()> {
        if let Some(stream) = stream {
            return self.each_event(stream, 1, stream.head, after, &mut f);
        }
        let base = if self.schema >= schema::LINEAGE_FROM {
            "s.base_version"
        } else {
            "0"
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT e.seq, e.version, e.type, e.ts, e.data, e.meta, e.idem_key, s.name, {base}
             FROM {} e JOIN main.streams s ON s.id = e.stream_id WHERE e.seq > ?1
             ORDER BY e.seq",
            self.all_events()
        ))?;
        let mut rows = stmt.query([after])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(7)?;
            let fork = u(row.get(8)?);
            let event = Self::event_from_row(row, &name)?;
            if fork > 0 && event.version == fork + 1 {
                let info = self.require_stream(&name)?;
                self.each_event(&info, 1, fork, i64::MIN, &mut f)?;
            }
            f(event)?;
        }
        Ok(())
    }

    /// Calls `f` for each event of a stream with `from <= version <= to` and `seq > after`,
    /// oldest first, one row in memory at a time.
    fn each_event(
        &self,
        stream: &StreamInfo,
        from: u64,
        to: u64,
        after: i64,
        f: &mut impl FnMut(Event) -> Result<()>,
    ) -> Result<()> {
        for piece in self.pieces(stream, from, to)? {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT seq, version, type, ts, data, meta, idem_key FROM {}
                 WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3 AND seq > ?4 ORDER BY version",
                piece.table()
            ))?;
            let mut rows =
                stmt.query(params![piece.stream_id, i(piece.from), i(piece.to), after])?;
            while let Some(row) = rows.next()? {
                f(Self::event_from_row(row, &stream.name)?)?;
            }
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

    /// The newest `limit` events of every stream, oldest first.
    pub fn last_events_by_seq(&self, limit: usize) -> Result<Vec<Event>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT e.seq, e.version, e.type, e.ts, e.data, e.meta, e.idem_key, s.name
             FROM {} e JOIN main.streams s ON s.id = e.stream_id ORDER BY e.seq DESC LIMIT ?1",
            self.all_events()
        ))?;
        let rows = stmt.query_map(params![i(limit as u64)], |r| {
            let name: String = r.get(7)?;
            Self::event_from_row(r, &name)
        })?;
        let mut events = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        events.reverse();
        Ok(events)
    }

    /// How many events of every stream have a seq in `from..=to`.
    pub fn count_by_seq(&self, from: i64, to: i64) -> Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM {} WHERE seq >= ?1 AND seq <= ?2",
                self.all_events()
            ))?
            .query_row(params![from, to], |r| r.get(0))?;
        Ok(u(n))
    }

    /// The first event after `version` (or the last before it) whose type or data contains
    /// `needle`, archived events and those of a stream it continues included.
    pub fn find_event(
        &self,
        stream: &StreamInfo,
        version: u64,
        forward: bool,
        needle: &str,
    ) -> Result<Option<u64>> {
        let pattern = contains_pattern(needle);
        let (mut pieces, order) = if forward {
            (self.pieces(stream, version + 1, stream.head)?, "ASC")
        } else if version > 1 {
            (self.pieces(stream, 1, version - 1)?, "DESC")
        } else {
            return Ok(None);
        };
        if !forward {
            pieces.reverse();
        }
        for piece in pieces {
            let sql = format!(
                "SELECT version FROM {} WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3
                 AND (type LIKE ?4 ESCAPE '\\' OR data LIKE ?4 ESCAPE '\\') ORDER BY version {order} LIMIT 1",
                piece.table()
            );
            let found = self
                .conn
                .prepare_cached(&sql)?
                .query_row(
                    params![piece.stream_id, i(piece.from), i(piece.to), pattern],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?;
            if let Some(v) = found {
                return Ok(Some(u(v)));
            }
        }
        Ok(None)
    }

    /// Version of the stream's last event with `ts <= at` (0 if none).
    pub fn version_at_time(&self, stream: &StreamInfo, at: Micros) -> Result<u64> {
        // Times never go back within a stream (nor from a stream to one continuing it), so
        // the newest piece with an answer has the answer; and where the rows' stream goes on
        // past the piece (a stream this one continues), an answer past the piece means its
        // last version.
        for piece in self.pieces(stream, 1, stream.head)?.iter().rev() {
            let found: Option<i64> = self
                .conn
                .prepare_cached(&format!(
                    "SELECT version FROM {} WHERE stream_id = ?1 AND ts <= ?2 ORDER BY ts DESC, seq DESC LIMIT 1",
                    piece.table()
                ))?
                .query_row(params![piece.stream_id, at], |r| r.get(0))
                .optional()?;
            if let Some(v) = found {
                return Ok(u(v).clamp(piece.from, piece.to));
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
            let seq = match self.piece_at(stream, mid)? {
                Some(piece) => self
                    .conn
                    .prepare_cached(&format!(
                        "SELECT seq FROM {} WHERE stream_id = ?1 AND version = ?2",
                        piece.table()
                    ))?
                    .query_row(params![piece.stream_id, i(mid)], |r| r.get::<_, i64>(0))
                    .optional()?,
                None => None,
            };
            match seq {
                Some(seq) if seq <= at => lo = mid,
                _ => hi = mid - 1,
            }
        }
        Ok(lo)
    }

    /// Total number of events and the newest seq.
    pub fn event_totals(&self) -> Result<(u64, i64)> {
        // A stream continuing another stores only its versions past the one it continues.
        let sql = if self.schema >= schema::LINEAGE_FROM {
            "SELECT coalesce(sum(head - base_version), 0) FROM streams"
        } else {
            "SELECT coalesce(sum(head), 0) FROM streams"
        };
        let count: i64 = self.conn.query_row(sql, [], |r| r.get(0))?;
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
