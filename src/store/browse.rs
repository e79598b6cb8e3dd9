//! Queries for browsing: the events next to a position (one stream by version, or every
//! stream by seq, optionally only some types), and how events spread over time. The
//! debugger's event list, stepping with a filter and timeline density come from here.

use rusqlite::{OptionalExtension, params};

use super::{Store, i, u};
use crate::error::Result;
use crate::model::{Event, Micros, StreamInfo};

/// Which events a browse walks.
#[derive(Debug, Clone, Copy)]
pub struct Walk<'a> {
    /// One stream, ordered by version; `None`: every stream, ordered by seq.
    pub stream: Option<&'a StreamInfo>,
    /// Only events whose type contains this text (case-insensitive); a leading `!` keeps
    /// the events whose type does not contain it.
    pub kind: Option<&'a str>,
}

impl Walk<'_> {
    /// The LIKE pattern and whether it is negated.
    fn pattern(&self) -> (Option<String>, bool) {
        let Some(text) = self.kind.map(str::trim).filter(|t| !t.is_empty()) else {
            return (None, false);
        };
        let (negate, text) = match text.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, text),
        };
        (Some(super::contains_pattern(text)), negate)
    }
}

impl Store {
    /// Up to `limit` events next to `from` (a version for one stream, a seq for all),
    /// nearest first: after it when `forward`, before it otherwise; `inclusive` counts `from`
    /// itself. Archived events are included. Their data and meta are left out (null): a list
    /// needs their place, type and time, and parsing every row's payload would cost more
    /// than the rest of a frame on large events; [`Store::event`] reads one whole.
    pub fn neighbours(
        &self,
        walk: &Walk<'_>,
        from: u64,
        forward: bool,
        inclusive: bool,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let (pattern, negate) = walk.pattern();
        let dir = if forward { "ASC" } else { "DESC" };
        let Some(stream) = walk.stream else {
            let op = match (forward, inclusive) {
                (true, true) => ">=",
                (true, false) => ">",
                (false, true) => "<=",
                (false, false) => "<",
            };
            let sql = format!(
                "SELECT e.seq, e.version, e.type, e.ts, 'null', NULL, e.idem_key, s.name
                 FROM {} e JOIN main.streams s ON s.id = e.stream_id
                 WHERE e.seq {op} ?1 AND (?2 IS NULL OR (e.type LIKE ?2 ESCAPE '\\') != ?3)
                 ORDER BY e.seq {dir} LIMIT ?4",
                self.all_events()
            );
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![i(from), pattern, negate, i(limit as u64)], |r| {
                let name: String = r.get(7)?;
                Self::event_from_row(r, &name)
            })?;
            return Ok(rows.collect::<rusqlite::Result<_>>()?);
        };
        // One stream: its pieces from `from` on in the walk's direction.
        let mut pieces = match (forward, inclusive) {
            (true, true) => self.pieces(stream, from, stream.head)?,
            (true, false) => self.pieces(stream, from.saturating_add(1), stream.head)?,
            (false, true) => self.pieces(stream, 1, from)?,
            (false, false) if from > 1 => self.pieces(stream, 1, from - 1)?,
            (false, false) => Vec::new(),
        };
        if !forward {
            pieces.reverse();
        }
        let mut out = Vec::new();
        for piece in pieces {
            if out.len() >= limit {
                break;
            }
            let sql = format!(
                "SELECT seq, version, type, ts, 'null', NULL, idem_key FROM {}
                 WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3
                   AND (?4 IS NULL OR (type LIKE ?4 ESCAPE '\\') != ?5)
                 ORDER BY version {dir} LIMIT ?6",
                piece.table()
            );
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![
                    piece.stream_id,
                    i(piece.from),
                    i(piece.to),
                    pattern,
                    negate,
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

    /// The first event of any stream after `seq` (or the last before it) whose type or data
    /// contains `needle`, archived events included (data and meta left out).
    pub fn find_event_any(&self, seq: i64, forward: bool, needle: &str) -> Result<Option<Event>> {
        let (op, dir) = if forward { (">", "ASC") } else { ("<", "DESC") };
        let sql = format!(
            "SELECT e.seq, e.version, e.type, e.ts, 'null', NULL, e.idem_key, s.name
             FROM {} e JOIN main.streams s ON s.id = e.stream_id
             WHERE e.seq {op} ?1 AND (e.type LIKE ?2 ESCAPE '\\' OR e.data LIKE ?2 ESCAPE '\\')
             ORDER BY e.seq {dir} LIMIT 1",
            self.all_events()
        );
        let pattern = super::contains_pattern(needle);
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![seq, pattern], |r| {
                let name: String = r.get(7)?;
                Self::event_from_row(r, &name)
            })
            .optional()?)
    }

    /// How many events contain `needle` in their type or data among one stream's versions
    /// `from..=to` (or, without a stream, every stream's seqs `from..=to`), and how many of
    /// those are at or before `upto`: a search's "match 3 of 17", counted a range at a time.
    pub fn count_matches(
        &self,
        stream: Option<&StreamInfo>,
        from: u64,
        to: u64,
        upto: u64,
        needle: &str,
    ) -> Result<(u64, u64)> {
        let pattern = super::contains_pattern(needle);
        let count = |table: &str, column: &str, id: Option<i64>, lo: u64, hi: u64| {
            let sql = format!(
                "SELECT COUNT(*), COALESCE(SUM({column} <= ?4), 0) FROM {table}
                 WHERE (?1 IS NULL OR stream_id = ?1) AND {column} >= ?2 AND {column} <= ?3
                   AND (type LIKE ?5 ESCAPE '\\' OR data LIKE ?5 ESCAPE '\\')"
            );
            self.conn
                .prepare_cached(&sql)?
                .query_row(params![id, i(lo), i(hi), i(upto), pattern], |r| {
                    Ok((u(r.get(0)?), u(r.get(1)?)))
                })
        };
        let Some(stream) = stream else {
            return Ok(count(self.all_events(), "seq", None, from, to)?);
        };
        let mut total = (0, 0);
        for piece in self.pieces(stream, from.max(1), to)? {
            // A piece of a stream this one continues holds the same versions under its id.
            let (n, before) = count(
                piece.table(),
                "version",
                Some(piece.stream_id),
                piece.from,
                piece.to,
            )?;
            total = (total.0 + n, total.1 + before);
        }
        Ok(total)
    }

    /// The newest seq of any stream (0 without events).
    pub fn last_seq(&self) -> Result<i64> {
        let sql = format!("SELECT COALESCE(MAX(seq), 0) FROM {}", self.all_events());
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([], |r| r.get(0))?)
    }

    /// The event with this seq, with its stream's name (data and meta left out).
    pub fn event_at_seq(&self, seq: i64) -> Result<Option<Event>> {
        let walk = Walk {
            stream: None,
            kind: None,
        };
        Ok(self
            .neighbours(&walk, u(seq), true, true, 1)?
            .into_iter()
            .find(|e| e.seq == seq))
    }

    /// The seq of the newest event at or before `at` across every stream (the oldest event
    /// if all are later), or `None` without events.
    pub fn seq_at_time(&self, at: Micros) -> Result<Option<i64>> {
        let sql = format!(
            "SELECT seq FROM {} WHERE ts <= ?1 ORDER BY ts DESC, seq DESC LIMIT 1",
            self.all_events()
        );
        let found: Option<i64> = self
            .conn
            .prepare_cached(&sql)?
            .query_row([at], |r| r.get(0))
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
        let sql = format!("SELECT min(seq) FROM {}", self.all_events());
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([], |r| r.get(0))?)
    }

    /// The first and last event time of one stream or of all, if there are events.
    pub fn time_span(&self, stream: Option<&StreamInfo>) -> Result<Option<(Micros, Micros)>> {
        let (first, last): (Option<i64>, Option<i64>) = match stream {
            // A stream continuing another: its first and last event, times never going
            // back within its history.
            Some(s) if s.base.is_some() => (self.event_ts(s, 1)?, self.event_ts(s, s.head)?),
            // One stream: two lookups on its (stream, ts) index.
            Some(s) => {
                let sql = format!(
                    "SELECT min(ts), max(ts) FROM {} WHERE stream_id = ?1",
                    self.all_events()
                );
                self.conn
                    .prepare_cached(&sql)?
                    .query_row([s.id], |r| Ok((r.get(0)?, r.get(1)?)))?
            }
            None => {
                let sql = format!("SELECT min(ts), max(ts) FROM {}", self.all_events());
                self.conn
                    .prepare_cached(&sql)?
                    .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?
            }
        };
        Ok(first.zip(last))
    }

    /// How many events fall in each of `buckets` equal slices of `[first, last]` of event
    /// time, for one stream or all.
    pub fn time_histogram(
        &self,
        stream: Option<&StreamInfo>,
        (first, last): (Micros, Micros),
        buckets: usize,
    ) -> Result<Vec<u64>> {
        let mut counts = vec![0u64; buckets.max(1)];
        let span = i128::from(last - first).max(1);
        // A condition that names the stream (not `?1 IS NULL OR …`) so SQLite walks that
        // stream's (stream, ts) index instead of every event.
        let (sql, args) = match stream {
            Some(s) if s.base.is_some() => {
                for piece in self.pieces(s, 1, s.head)? {
                    let mut stmt = self.conn.prepare_cached(&format!(
                        "SELECT ts, count(*) FROM {} WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3 GROUP BY ts",
                        piece.table()
                    ))?;
                    let rows = stmt.query(params![piece.stream_id, i(piece.from), i(piece.to)])?;
                    count_into(rows, first, span, &mut counts)?;
                }
                return Ok(counts);
            }
            Some(s) => (
                format!(
                    "SELECT ts, count(*) FROM {} WHERE stream_id = ?1 GROUP BY ts",
                    self.all_events()
                ),
                vec![s.id],
            ),
            None => (
                format!("SELECT ts, count(*) FROM {} GROUP BY ts", self.all_events()),
                vec![],
            ),
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query(rusqlite::params_from_iter(args))?;
        count_into(rows, first, span, &mut counts)?;
        Ok(counts)
    }
}

/// Adds rows of `(ts, count)` to the buckets of `counts` over `span` µs from `first`.
fn count_into(
    mut rows: rusqlite::Rows<'_>,
    first: Micros,
    span: i128,
    counts: &mut [u64],
) -> Result<()> {
    let top = counts.len() - 1;
    while let Some(row) = rows.next()? {
        let (ts, n): (i64, i64) = (row.get(0)?, row.get(1)?);
        let at = i128::from(ts - first) * top as i128 / span;
        let at = usize::try_from(at.clamp(0, top as i128)).unwrap_or(0);
        counts[at] += u(n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(types: &[(&str, &str)]) -> Store {
        let store = Store::open_in_memory().unwrap();
        let mut versions = std::collections::HashMap::new();
        for (n, (stream, kind)) in types.iter().enumerate() {
            let info = match store.stream(stream).unwrap() {
                Some(s) => s,
                None => store.create_stream(stream, None).unwrap(),
            };
            let version = versions.entry(stream.to_string()).or_insert(0u64);
            *version += 1;
            let seq = store.next_seq().unwrap();
            let data = format!("{{\"n\":{n}}}");
            store
                .insert_event(
                    seq,
                    info.id,
                    *version,
                    kind,
                    1_000 * n as i64,
                    &data,
                    None,
                    None,
                    0,
                )
                .unwrap();
            store
                .set_head(info.id, *version, 1_000 * n as i64, &[0; 32])
                .unwrap();
        }
        store
    }

    #[test]
    fn neighbours_walk_one_stream_by_version_with_a_type_filter() {
        let store = store_with(&[
            ("a", "Started"),
            ("b", "Other"),
            ("a", "Heartbeat"),
            ("a", "Finished"),
            ("a", "Heartbeat"),
        ]);
        let a = store.stream("a").unwrap().unwrap();
        let walk = |kind| Walk {
            stream: Some(&a),
            kind,
        };
        let versions = |events: Vec<Event>| events.iter().map(|e| e.version).collect::<Vec<_>>();
        assert_eq!(
            versions(store.neighbours(&walk(None), 1, true, false, 10).unwrap()),
            vec![2, 3, 4]
        );
        assert_eq!(
            versions(store.neighbours(&walk(None), 3, false, true, 10).unwrap()),
            vec![3, 2, 1]
        );
        assert_eq!(
            versions(
                store
                    .neighbours(&walk(Some("heart")), 0, true, false, 10)
                    .unwrap()
            ),
            vec![2, 4]
        );
        assert_eq!(
            versions(
                store
                    .neighbours(&walk(Some("!heart")), 4, false, true, 10)
                    .unwrap()
            ),
            vec![3, 1]
        );
    }

    #[test]
    fn neighbours_walk_every_stream_by_seq_and_spread_over_time() {
        let store = store_with(&[("a", "X"), ("b", "Y"), ("a", "Z")]);
        let all = Walk {
            stream: None,
            kind: None,
        };
        let got: Vec<(String, u64)> = store
            .neighbours(&all, 0, true, false, 10)
            .unwrap()
            .into_iter()
            .map(|e| (e.stream, e.version))
            .collect();
        assert_eq!(got, vec![("a".into(), 1), ("b".into(), 1), ("a".into(), 2)]);
        assert_eq!(store.time_span(None).unwrap(), Some((0, 2_000)));
        assert_eq!(
            store.time_histogram(None, (0, 2_000), 3).unwrap(),
            vec![1, 1, 1]
        );
        assert_eq!(store.seq_at_time(1_500).unwrap(), Some(2));
        assert_eq!(store.event_at_seq(2).unwrap().unwrap().stream, "b");
    }
}
