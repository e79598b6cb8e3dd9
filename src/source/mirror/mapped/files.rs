//! A database and its copies (`VACUUM INTO` snapshot files) read as one history per table: a
//! mapping's `[files]`. Each file is a point in the history, at the time its order query gives
//! (by default `_raft_meta`'s `last_write_at`); the source itself is the newest point. Each
//! table is a stream whose state is its rows by primary key (the rowid where it has none);
//! going from one point to the next, each row inserted, updated or deleted is one event, an
//! RFC 6902 operation on that row (reducer `patch`), with the file it was found in and its key
//! in its meta: `blame` on a row names the file where it changed.
//!
//! Each point is compared with the mirror's state of each table, a table at a time, streaming
//! the file's rows: no file is loaded as one document. A sync applies the points newer than
//! the newest one mirrored (the source itself again whenever it was written since); a copy
//! older than that appearing, or a different mapping, has the mirror made again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::{Map, Value, json};

use crate::engine::{Engine, Writer};
use crate::error::{Error, Result};
use crate::model::{Micros, NewEvent, Target};
use crate::source::mapping::{self, DEFAULT_ORDER, Files, Mapping};

use super::super::{Synced, sqlite};

/// The mirror's meta key for what it has read.
const STAMP: &str = "mapped.files";

/// The reducer of a table's stream: each event is an RFC 6902 operation on one row.
const REDUCER: &str = "patch";

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    /// The mapping's text, hashed.
    mapping: String,
    /// The points applied: file name, time, size.
    applied: Vec<(String, Micros, u64)>,
    /// The newest point's time.
    head: Option<Micros>,
}

/// One file of the history.
struct Point {
    path: PathBuf,
    name: String,
    time: Micros,
    bytes: u64,
    /// Whether it is the source itself (the newest point).
    live: bool,
}

/// Brings the mirror up to date with the source and its copies.
pub(super) fn sync(
    engine: &mut Engine,
    source: &Path,
    mapping: &Mapping,
    progress: super::super::Progress<'_>,
) -> Result<Synced> {
    let at_source = |what: String| Error::Input(format!("{}: {what}", source.display()));
    let Some(files) = &mapping.files else {
        return Err(at_source(mapping.error("events", "is missing")));
    };
    let mut points =
        copies(source, files).map_err(|e| at_source(mapping.error("files.copies", e)))?;
    points.push(source.to_path_buf());
    let mut timed = Vec::new();
    for path in points {
        let live = path == source;
        timed.push(point(&path, live, mapping, files).map_err(|e| {
            Error::Input(format!(
                "{}: {}",
                path.display(),
                mapping.error("files.order", e)
            ))
        })?);
    }
    // The copies by time, then the file itself: the newest point whatever its time says.
    timed.sort_by(|a, b| (a.live, a.time, &a.name).cmp(&(b.live, b.time, &b.name)));
    let hash = mapping.hash();
    let fingerprint = engine.reducer(REDUCER)?.fingerprint().to_owned();
    engine.write(|engine| {
        let store = engine.store();
        crate::title::Titles::keep_for(store, mapping)?;
        if store.meta("source.format")?.is_none() {
            store.set_meta("source.format", "mapped")?;
            store.set_meta("source.path", &super::super::canonical_text(source))?;
        }
        store.set_meta("source.mapping", &mapping.origin)?;
        store.set_meta(super::ID_FIELD, "key")?;
        super::super::use_reducer(store, REDUCER, &fingerprint)?;
        let mut stamp: Stamp = store
            .meta(STAMP)?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        if !stamp.applied.is_empty() && stamp.mapping != hash {
            return Ok(super::rewritten(
                source,
                "it is read with another mapping now",
            ));
        }
        stamp.mapping.clone_from(&hash);
        let mut fresh: Vec<&Point> = timed
            .iter()
            .filter(|p| {
                !stamp.applied.iter().any(|(name, time, bytes)| {
                    *name == p.name && *time == p.time && *bytes == p.bytes
                })
            })
            .collect();
        // After a new copy, the file itself is read again: it is the newest point.
        if fresh.iter().any(|p| !p.live) && !fresh.iter().any(|p| p.live) {
            fresh.extend(timed.iter().filter(|p| p.live));
        }
        if let (Some(head), Some(older)) = (
            stamp.head,
            fresh
                .iter()
                .find(|p| stamp.head.is_some_and(|h| p.time < h) && !p.live),
        ) {
            return Ok(super::rewritten(
                source,
                &format!(
                    "the copy {} is older ({}) than the newest point mirrored ({})",
                    older.name,
                    crate::time::format(older.time),
                    crate::time::format(head)
                ),
            ));
        }
        let total = fresh.len() as u64;
        for (done, point) in fresh.into_iter().enumerate() {
            apply(engine, point, files).map_err(|e| match e {
                Error::Input(what) => Error::Input(format!("{}: {what}", point.path.display())),
                e => e,
            })?;
            stamp.applied.retain(|(name, _, _)| *name != point.name);
            stamp
                .applied
                .push((point.name.clone(), point.time, point.bytes));
            stamp.head = Some(stamp.head.map_or(point.time, |h| h.max(point.time)));
            progress(done as u64 + 1, total);
        }
        engine.store().set_meta(
            STAMP,
            &serde_json::to_string(&stamp).map_err(|e| Error::Input(e.to_string()))?,
        )?;
        Ok(Synced::UpToDate)
    })
}

/// The copies the mapping names, in the source's folder (or the folder it names there).
fn copies(source: &Path, files: &Files) -> std::result::Result<Vec<PathBuf>, String> {
    let base = source.parent().unwrap_or_else(|| Path::new("."));
    let pattern = base.join(files.copies.trim());
    let folder = pattern.parent().unwrap_or(base).to_path_buf();
    let Some(name) = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return Err(format!("{:?} names no file", files.copies));
    };
    let (before, after) = name.split_once('*').unwrap_or((name.as_str(), ""));
    let exact = !name.contains('*');
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        // No copies yet: the source alone is the history.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", folder.display())),
    };
    let source = source.canonicalize().ok();
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", folder.display()))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        let matches = if exact {
            file == name
        } else {
            file.len() >= before.len() + after.len()
                && file.starts_with(before)
                && file.ends_with(after)
        };
        // A copy's own log files, and the source itself, are not copies.
        if !matches
            || file.ends_with("-wal")
            || file.ends_with("-shm")
            || file.ends_with("-journal")
        {
            continue;
        }
        let path = entry.path();
        if path.is_file() && path.canonicalize().ok() != source {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// A file's time, read by the mapping's order query.
fn point(
    path: &Path,
    live: bool,
    mapping: &Mapping,
    files: &Files,
) -> std::result::Result<Point, String> {
    let foreign = sqlite::open(path)?;
    let sql = files.order.as_deref().unwrap_or(DEFAULT_ORDER);
    let query = super::one_statement(&foreign.conn, mapping, "files.order", sql)?;
    let (mut stmt, _) = super::read_only(&foreign.conn, mapping, "files.order", &query)?;
    let mut rows = stmt.query([]).map_err(|e| super::sqlite_error(&e))?;
    let row = rows
        .next()
        .map_err(|e| super::sqlite_error(&e))?
        .ok_or("gives no row: each file must hold its time")?;
    let value = row.get_ref(0).map_err(|e| e.to_string())?;
    let time = mapping::time_of(value, files.order_format)?
        .ok_or("gives NULL: each file must hold its time")?;
    Ok(Point {
        path: path.to_path_buf(),
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        time,
        bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        live,
    })
}

/// Applies one point: every table's rows compared with the mirror's state of it.
fn apply(engine: &mut Engine, point: &Point, files: &Files) -> Result<()> {
    let foreign = sqlite::open(&point.path).map_err(Error::Input)?;
    let conn = &foreign.conn;
    let mut tables: Vec<String> = {
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )?;
        stmt.query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?
    };
    tables.retain(|t| !files.exclude.contains(t));
    // Tables the mirror holds that this file no longer has: all their rows went.
    let gone: Vec<String> = engine
        .store()
        .streams()?
        .into_iter()
        .map(|s| s.name)
        .filter(|name| !tables.iter().any(|t| crate::source::name(t) == *name))
        .collect();
    let all = tables
        .iter()
        .map(|t| (t, true))
        .chain(gone.iter().map(|t| (t, false)));
    for (name, present) in all {
        let mut writer = Writer::new(false).keeping_going();
        diff_table(engine, &mut writer, conn, name, present, point)?;
        writer.finish(engine)?;
    }
    Ok(())
}

/// One table's rows in the file against the mirror's state of it: an event per row that
/// differs.
fn diff_table(
    engine: &mut Engine,
    writer: &mut Writer,
    conn: &Connection,
    table: &str,
    present: bool,
    point: &Point,
) -> Result<()> {
    let stream = crate::source::name(table);
    let held = match engine.store().stream(&stream)? {
        Some(_) => engine.state_at(&stream, Target::Head)?.state,
        None => std::sync::Arc::new(json!({})),
    };
    let empty = Map::new();
    let held = held.as_object().unwrap_or(&empty);
    let mut seen: HashMap<&str, ()> = HashMap::with_capacity(held.len());
    let mut emit = |engine: &mut Engine, kind: &str, key: &str, op: Value| -> Result<()> {
        writer.push(
            engine,
            NewEvent {
                stream: stream.clone(),
                kind: kind.into(),
                data: json!([op]),
                meta: Some(json!({ "file": point.name, "key": key })),
                time: Some(point.time),
                idempotency_key: None,
            },
            None,
        )?;
        Ok(())
    };
    if present {
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        let keys = primary_key(conn, &quoted)?;
        let sql = if keys.is_empty() {
            format!("SELECT rowid AS \"rewind.rowid\", * FROM {quoted}")
        } else {
            format!("SELECT * FROM {quoted}")
        };
        let mut stmt = conn.prepare(&sql)?;
        let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let key_at: Vec<usize> = if keys.is_empty() {
            vec![0]
        } else {
            keys.iter()
                .filter_map(|k| names.iter().position(|n| n == k))
                .collect()
        };
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let key = row_key(row, &key_at)?;
            let mut value = Map::new();
            for (i, name) in names.iter().enumerate() {
                if keys.is_empty() && i == 0 {
                    continue;
                }
                value.insert(name.clone(), json_of(row.get_ref(i)?));
            }
            let value = Value::Object(value);
            let path = format!("/{}", pointer_segment(&key));
            match held.get_key_value(&key) {
                Some((held_key, old)) => {
                    seen.insert(held_key.as_str(), ());
                    if *old != value {
                        emit(
                            engine,
                            "update",
                            &key,
                            json!({"op": "replace", "path": path, "value": value}),
                        )?;
                    }
                }
                None => emit(
                    engine,
                    "insert",
                    &key,
                    json!({"op": "add", "path": path, "value": value}),
                )?,
            }
        }
    }
    for key in held.keys() {
        if !seen.contains_key(key.as_str()) {
            let path = format!("/{}", pointer_segment(key));
            emit(engine, "delete", key, json!({"op": "remove", "path": path}))?;
        }
    }
    Ok(())
}

/// A table's primary key columns, in key order (none: it is keyed by its rowid).
fn primary_key(conn: &Connection, quoted: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({quoted})"))?;
    let mut keys: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(5)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter(|(pk, _)| *pk > 0)
        .collect();
    keys.sort();
    Ok(keys.into_iter().map(|(_, name)| name).collect())
}

/// A row's key: its one key column as text, or its key columns as a JSON array.
fn row_key(row: &rusqlite::Row<'_>, at: &[usize]) -> Result<String> {
    if let [one] = at {
        return Ok(match row.get_ref(*one)? {
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            other => match json_of(other) {
                Value::String(s) => s,
                v => v.to_string(),
            },
        });
    }
    let mut parts = Vec::with_capacity(at.len());
    for i in at {
        parts.push(json_of(row.get_ref(*i)?));
    }
    Ok(Value::Array(parts).to_string())
}

/// A key as one JSON Pointer segment (RFC 6901).
fn pointer_segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A column's value as JSON: a BLOB as SQL writes its literal (`x'0a1b'`).
fn json_of(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => n.into(),
        ValueRef::Real(x) => serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => {
            let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
            Value::String(format!("x'{hex}'"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_pointer_segments_and_blobs_read_as_sql_literals() {
        assert_eq!(pointer_segment("a/b~c"), "a~1b~0c");
        assert_eq!(json_of(ValueRef::Blob(&[10, 27])), json!("x'0a1b'"));
        assert_eq!(json_of(ValueRef::Real(f64::NAN)), Value::Null);
    }
}
