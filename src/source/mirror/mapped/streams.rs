//! A mapped source's streams beside their events: the attributes its `[streams]` query gives
//! each (a work item's status, lease holder and expiry …), the work its `[pending]` query says
//! was begun and not finished, and when a stream is unfinished (the mapping's SQL condition
//! over its attributes and `:now`). Each sync records them in the mirror; a stream the
//! attributes name and no event does (a task with no checkpoint yet) is made, empty.
//!
//! `:now` is never the clock, so frames stay stable: it is the newest time the source records
//! (the mapping's `now` query, else the newest event's time), recorded at the sync, or what
//! the reader says (`--now`). The condition is evaluated where it is read, over the recorded
//! attributes, so a reader's `--now` needs no sync.

use std::collections::BTreeMap;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::{Map, Value};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::Micros;
use crate::source::mapping::{self, Mapping, TimeFormat};
use crate::store::Store;

/// The mirror's meta key prefix of a stream's attributes and pending work, by its name.
const STREAM: &str = "mapped.stream.";
/// The mirror's meta key of the unfinished condition and the source's newest time.
const UNFINISHED: &str = "mapped.unfinished";

/// What the mirror records of a stream beside its events.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Recorded {
    /// The `[streams]` query's columns for it, but the stream's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
    /// The `[pending]` query's rows for it, each without the stream's column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Value>,
}

/// The condition and the time it is judged at by default.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Condition {
    /// The SQL condition, `None` where the mapping gives none.
    condition: Option<String>,
    /// The columns of the attributes, in the query's order.
    columns: Vec<String>,
    /// The newest time the source records.
    now: Option<Micros>,
    /// How `:now` is given to the condition.
    format: Option<TimeFormat>,
}

/// Records the attributes and pending work of the mapping's streams in the mirror, inside
/// the sync's write transaction; `at_source` puts the source's name on an error.
pub(super) fn sync(
    engine: &mut Engine,
    conn: &Connection,
    mapping: &Mapping,
    at_source: &dyn Fn(String) -> Error,
) -> Result<()> {
    let mut recorded: BTreeMap<String, Recorded> = BTreeMap::new();
    let mut condition = None;
    if let Some(streams) = &mapping.streams {
        let query = super::one_statement(conn, mapping, "streams.query", &streams.query)
            .map_err(at_source)?;
        let (mut stmt, names) =
            super::read_only(conn, mapping, "streams.query", &query).map_err(at_source)?;
        let stream_at = mapping
            .index_of("streams.query", "streams.stream", &streams.stream, &names)
            .map_err(at_source)?;
        let sql_error =
            |e: rusqlite::Error| at_source(mapping.error("streams.query", super::sqlite_error(&e)));
        let mut rows = stmt.query([]).map_err(sql_error)?;
        let mut count = 0u64;
        while let Some(row) = rows.next().map_err(sql_error)? {
            count += 1;
            let name = stream_name(row, stream_at).ok_or_else(|| {
                at_source(mapping.error(
                    "streams.stream",
                    format!("row {count}: {:?} is not text or a number", streams.stream),
                ))
            })?;
            let attributes = columns_of(row, &names, stream_at);
            recorded.entry(name).or_default().attributes = Some(attributes);
        }
        let now = source_now(engine, conn, mapping).map_err(at_source)?;
        let held = Condition {
            condition: streams.unfinished.clone(),
            columns: names
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != stream_at)
                .map(|(_, n)| n.clone())
                .collect(),
            now,
            format: streams.now_format,
        };
        // A condition that cannot be evaluated says so now, naming its key and a row.
        if held.condition.is_some() {
            let judge =
                Judge::new(&held).map_err(|e| at_source(mapping.error("streams.unfinished", e)))?;
            for (name, rec) in &recorded {
                if let Some(attributes) = &rec.attributes {
                    judge.unfinished(attributes, now).map_err(|e| {
                        at_source(
                            mapping.error("streams.unfinished", format!("stream {name:?}: {e}")),
                        )
                    })?;
                }
            }
        }
        condition = Some(held);
    }
    if let Some(pending) = &mapping.pending {
        let query = super::one_statement(conn, mapping, "pending.query", &pending.query)
            .map_err(at_source)?;
        let (mut stmt, names) =
            super::read_only(conn, mapping, "pending.query", &query).map_err(at_source)?;
        let stream_at = mapping
            .index_of("pending.query", "pending.stream", &pending.stream, &names)
            .map_err(at_source)?;
        let sql_error =
            |e: rusqlite::Error| at_source(mapping.error("pending.query", super::sqlite_error(&e)));
        let mut rows = stmt.query([]).map_err(sql_error)?;
        // A row of work under no stream (an idempotency key of no task) belongs to none.
        while let Some(row) = rows.next().map_err(sql_error)? {
            if let Some(name) = stream_name(row, stream_at) {
                recorded
                    .entry(name)
                    .or_default()
                    .pending
                    .push(Value::Object(columns_of(row, &names, stream_at)));
            }
        }
    }
    let store = engine.store();
    // Written only where changed: a sync with nothing new writes nothing.
    let text = condition
        .map(|c| serde_json::to_string(&c))
        .transpose()
        .map_err(|e| Error::Input(e.to_string()))?;
    if store.meta(UNFINISHED)? != text {
        match &text {
            Some(text) => store.set_meta(UNFINISHED, text)?,
            None => store.delete_meta(UNFINISHED)?,
        }
    }
    let mut held: BTreeMap<String, String> = store
        .meta_with_prefix(STREAM)?
        .into_iter()
        .map(|(key, value)| (key[STREAM.len()..].to_owned(), value))
        .collect();
    for (name, rec) in &recorded {
        let stream = crate::source::name(name);
        if store.stream(&stream)?.is_none() {
            store.create_stream(&stream, None)?;
        }
        let text = serde_json::to_string(rec).map_err(|e| Error::Input(e.to_string()))?;
        if held.remove(&stream).as_ref() != Some(&text) {
            store.set_meta(&format!("{STREAM}{stream}"), &text)?;
        }
    }
    for gone in held.keys() {
        store.delete_meta(&format!("{STREAM}{gone}"))?;
    }
    Ok(())
}

/// A row's stream name (text, or a number as its text), as rewind names streams.
fn stream_name(row: &rusqlite::Row<'_>, at: usize) -> Option<String> {
    row.get_ref(at)
        .ok()
        .and_then(mapping::text_of)
        .map(|name| crate::source::name(&name))
}

/// A row's columns but one, as JSON.
fn columns_of(row: &rusqlite::Row<'_>, names: &[String], but: usize) -> Map<String, Value> {
    names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != but)
        .map(|(i, name)| (name.clone(), row.get_ref(i).map_or(Value::Null, json_of)))
        .collect()
}

/// A column's value as JSON: a BLOB as its size (attributes are for reading at a glance).
fn json_of(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => n.into(),
        ValueRef::Real(x) => serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(format!("({} bytes)", b.len())),
    }
}

/// The `now` query's one value, read as a time.
fn newest_time(
    conn: &Connection,
    mapping: &Mapping,
    sql: &str,
    format: Option<TimeFormat>,
) -> std::result::Result<Option<Micros>, String> {
    let query = super::one_statement(conn, mapping, "streams.now", sql)?;
    let (mut stmt, _) = super::read_only(conn, mapping, "streams.now", &query)?;
    let mut rows = stmt
        .query([])
        .map_err(|e| mapping.error("streams.now", super::sqlite_error(&e)))?;
    let Some(row) = rows
        .next()
        .map_err(|e| mapping.error("streams.now", super::sqlite_error(&e)))?
    else {
        return Ok(None);
    };
    let value = row
        .get_ref(0)
        .map_err(|e| mapping.error("streams.now", e.to_string()))?;
    mapping::time_of(value, format).map_err(|e| mapping.error("streams.now", e))
}

/// The newest time the source records: the mapping's `now` query's, else its newest event's
/// in the mirror.
pub(in crate::source::mirror) fn source_now(
    engine: &Engine,
    conn: &Connection,
    mapping: &Mapping,
) -> std::result::Result<Option<Micros>, String> {
    match mapping
        .streams
        .as_ref()
        .and_then(|s| Some((s.now.as_ref()?, s.now_format)))
    {
        Some((sql, format)) => newest_time(conn, mapping, sql, format),
        None => newest_event(engine.store()).map_err(|e| e.to_string()),
    }
}

/// The newest event's time in the mirror.
fn newest_event(store: &Store) -> Result<Option<Micros>> {
    Ok(store.streams()?.iter().filter_map(|s| s.last_ts).max())
}

/// What the mirror records of a stream (nothing for a stream of no mapped source).
pub fn recorded(store: &Store, stream: &str) -> Result<Recorded> {
    Ok(store
        .meta(&format!("{STREAM}{stream}"))?
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default())
}

/// The attributes' names in the order the mapping's `[streams]` query gives them.
pub fn columns(store: &Store) -> Result<Vec<String>> {
    Ok(store
        .meta(UNFINISHED)?
        .and_then(|text| serde_json::from_str::<Condition>(&text).ok())
        .map(|held| held.columns)
        .unwrap_or_default())
}

/// Whether a stream with these attributes is unfinished, as of `now` (else the newest time the
/// source records), with the time it was judged at; `None` where the mapping gives no
/// condition.
pub fn unfinished(
    store: &Store,
    attributes: &Map<String, Value>,
    now: Option<Micros>,
) -> Result<Option<(bool, Option<Micros>)>> {
    let Some(held) = store
        .meta(UNFINISHED)?
        .and_then(|text| serde_json::from_str::<Condition>(&text).ok())
    else {
        return Ok(None);
    };
    if held.condition.is_none() {
        return Ok(None);
    }
    let at = now.or(held.now);
    let judge = Judge::new(&held).map_err(Error::Input)?;
    let yes = judge
        .unfinished(attributes, at)
        .map_err(|e| Error::Input(format!("the mapping's streams.unfinished: {e}")))?;
    Ok(Some((yes, at)))
}

/// The condition, ready to judge rows: evaluated by an SQLite of its own, in memory, over
/// the attributes and `:now` alone.
struct Judge<'a> {
    conn: Connection,
    held: &'a Condition,
    sql: String,
}

impl<'a> Judge<'a> {
    fn new(held: &'a Condition) -> std::result::Result<Self, String> {
        let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        let columns = if held.columns.is_empty() {
            "NULL AS \"rewind.none\"".to_owned()
        } else {
            held.columns
                .iter()
                .enumerate()
                .map(|(i, name)| format!(":rewind_{i} AS \"{}\"", name.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let condition = held.condition.as_deref().unwrap_or("0");
        let sql = format!("SELECT ({condition}) FROM (SELECT {columns})");
        {
            // SQLite's message may quote the statement: this one is rewind's, not the user's.
            let stmt = conn.prepare(&sql).map_err(|e| {
                let message = super::sqlite_error(&e);
                let message = message
                    .split(" in SELECT (")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                format!(
                    "{message} (the condition sees the columns of streams.query, {}, and :now)",
                    held.columns.join(", ")
                )
            })?;
            if !stmt.readonly() {
                return Err("must only read".into());
            }
        }
        Ok(Self { conn, held, sql })
    }

    fn unfinished(
        &self,
        attributes: &Map<String, Value>,
        now: Option<Micros>,
    ) -> std::result::Result<bool, String> {
        use rusqlite::types::Value as Sql;
        let mut stmt = self
            .conn
            .prepare_cached(&self.sql)
            .map_err(|e| super::sqlite_error(&e))?;
        for (i, name) in self.held.columns.iter().enumerate() {
            let value = match attributes.get(name) {
                None | Some(Value::Null) => Sql::Null,
                Some(Value::Bool(b)) => Sql::Integer(i64::from(*b)),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .map_or_else(|| Sql::Real(n.as_f64().unwrap_or(0.0)), Sql::Integer),
                Some(Value::String(s)) => Sql::Text(s.clone()),
                Some(other) => Sql::Text(other.to_string()),
            };
            if let Some(index) = stmt
                .parameter_index(&format!(":rewind_{i}"))
                .map_err(|e| e.to_string())?
            {
                stmt.raw_bind_parameter(index, value)
                    .map_err(|e| e.to_string())?;
            }
        }
        if let Some(index) = stmt.parameter_index(":now").map_err(|e| e.to_string())? {
            stmt.raw_bind_parameter(index, now_value(now, self.held.format))
                .map_err(|e| e.to_string())?;
        }
        let mut rows = stmt.raw_query();
        let row = rows
            .next()
            .map_err(|e| super::sqlite_error(&e))?
            .ok_or("gives no row")?;
        Ok(match row.get_ref(0).map_err(|e| e.to_string())? {
            ValueRef::Integer(n) => n != 0,
            ValueRef::Real(x) => x != 0.0,
            ValueRef::Null => false,
            other => {
                return Err(format!(
                    "gives {}, not true or false",
                    mapping::shown(other)
                ));
            }
        })
    }
}

/// `:now` as the source writes its times.
fn now_value(now: Option<Micros>, format: Option<TimeFormat>) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    let Some(now) = now else {
        return Sql::Null;
    };
    match format.unwrap_or(TimeFormat::Sql) {
        TimeFormat::Sql => Sql::Text(sql_time(now)),
        TimeFormat::Rfc3339 => Sql::Text(crate::time::format(now)),
        TimeFormat::EpochS => Sql::Integer(now.div_euclid(1_000_000)),
        TimeFormat::EpochMs => Sql::Integer(now.div_euclid(1_000)),
        TimeFormat::EpochUs => Sql::Integer(now),
        TimeFormat::EpochNs => Sql::Integer(now.saturating_mul(1_000)),
    }
}

/// A time as SQLite's `datetime()` writes it (UTC), with a fraction only where it has one.
fn sql_time(us: Micros) -> String {
    match jiff::Timestamp::from_microsecond(us) {
        Ok(ts) => {
            let civil = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
            if us % 1_000_000 == 0 {
                civil.strftime("%Y-%m-%d %H:%M:%S").to_string()
            } else {
                civil.strftime("%Y-%m-%d %H:%M:%S%.6f").to_string()
            }
        }
        Err(_) => us.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_given_as_the_source_writes_its_times() {
        let at = 1_769_680_800_000_000; // 2026-01-29T10:00:00Z
        assert_eq!(
            now_value(Some(at), None),
            rusqlite::types::Value::Text("2026-01-29 10:00:00".into())
        );
        assert_eq!(
            now_value(Some(at + 500_000), Some(TimeFormat::Sql)),
            rusqlite::types::Value::Text("2026-01-29 10:00:00.500000".into())
        );
        assert_eq!(
            now_value(Some(at), Some(TimeFormat::EpochMs)),
            rusqlite::types::Value::Integer(1_769_680_800_000)
        );
        assert_eq!(now_value(None, None), rusqlite::types::Value::Null);
    }

    #[test]
    fn the_condition_judges_attributes_as_of_now() {
        let held = Condition {
            condition: Some("status = 'in_progress' AND lease_expires_at < :now".into()),
            columns: vec!["status".into(), "lease_expires_at".into()],
            now: None,
            format: None,
        };
        let judge = Judge::new(&held).unwrap();
        let row = |status: &str, expires: &str| {
            let mut m = Map::new();
            m.insert("status".into(), status.into());
            m.insert("lease_expires_at".into(), expires.into());
            m
        };
        let at = 1_769_680_800_000_000; // 2026-01-29 10:00:00
        assert!(
            judge
                .unfinished(&row("in_progress", "2026-01-29 09:59:00"), Some(at))
                .unwrap()
        );
        assert!(
            !judge
                .unfinished(&row("in_progress", "2026-01-29 10:05:00"), Some(at))
                .unwrap()
        );
        assert!(
            !judge
                .unfinished(&row("completed", "2026-01-29 09:59:00"), Some(at))
                .unwrap()
        );
        // Without a time, nothing is expired.
        assert!(
            !judge
                .unfinished(&row("in_progress", "2026-01-29 09:59:00"), None)
                .unwrap()
        );
        let bad = Condition {
            condition: Some("no_such_column = 1".into()),
            ..held.clone()
        };
        let err = Judge::new(&bad).err().unwrap();
        assert!(err.contains("no_such_column"), "{err}");
        let writes = Condition {
            condition: Some("(SELECT 1 FROM (DELETE FROM x))".into()),
            ..held
        };
        assert!(Judge::new(&writes).is_err());
    }
}
