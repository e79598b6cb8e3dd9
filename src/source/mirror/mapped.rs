//! A database read through a mapping file, mirrored: a stream per value of the stream column,
//! an event per row of the events query, in the order of its `seq` column (the source's
//! global order, kept as the mirror's seq) or else the query's own. Sync is incremental: rows
//! above the newest seq mirrored are appended, after checking that the rows at or below it
//! are as many as the mirror holds and the newest is the one it holds; anything else (a
//! mapping changed, rows removed or rewritten) has the mirror made again, saying so. Each
//! event keeps its seq, its source id and the row's meta in its meta, and its own time there
//! too where it is earlier than the stream's event before it (two writers' clocks): in the
//! mirror, times never go back within a stream.

use std::path::Path;

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use serde_json::{Value, json};

use crate::engine::{Engine, Writer};
use crate::error::{Error, Result};
use crate::model::NewEvent;
use crate::source::mapping::{Columns, Mapping, Row};

use super::{ID_FIELD, SEQ_FIELD, Synced};

mod files;
pub(super) mod snapshots;
pub(super) mod streams;

/// The mirror's meta key for what it has read.
const STAMP: &str = "mapped.stamp";

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    /// The mapping's text, hashed.
    mapping: String,
    /// How many rows are mirrored.
    count: u64,
    /// The newest row's seq, where the mapping names one.
    seq: Option<i64>,
    /// Where the newest row went: its stream and version.
    last: Option<(String, u64)>,
}

/// The events query's one statement, without the `;` and comments that may end it: what
/// the mirror's own queries wrap. More than one statement is refused whatever the others are
/// (even ones SQLite cannot prepare).
fn one_statement(
    conn: &Connection,
    mapping: &Mapping,
    key: &str,
    sql: &str,
) -> std::result::Result<String, String> {
    use rusqlite::fallible_iterator::FallibleIterator;
    let mut batch = rusqlite::Batch::new(conn, sql);
    match batch.next() {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(mapping.error(key, "holds no statement; give one SELECT"));
        }
        Err(e) => return Err(mapping.error(key, sqlite_error(&e))),
    }
    if !matches!(batch.next(), Ok(None)) {
        return Err(mapping.error(key, sqlite_error(&rusqlite::Error::MultipleStatement)));
    }
    let mut text = sql.trim_end();
    if let Some(cut) = text.rfind(';')
        && matches!(
            rusqlite::Batch::new(conn, &text[cut + 1..]).next(),
            Ok(None)
        )
    {
        text = &text[..cut];
    }
    Ok(text.to_owned())
}

/// The events query, checked: one read-only statement, returning the mapping's columns.
fn prepare<'c>(
    conn: &'c Connection,
    mapping: &Mapping,
    sql: &str,
) -> std::result::Result<(rusqlite::Statement<'c>, Columns), String> {
    let (stmt, names) = read_only(conn, mapping, "events.query", sql)?;
    let columns = Columns::find(mapping, &names)?;
    Ok((stmt, columns))
}

/// A mapping's query prepared, refused where it writes; with its columns' names. `key` names
/// the query in errors.
fn read_only<'c>(
    conn: &'c Connection,
    mapping: &Mapping,
    key: &str,
    sql: &str,
) -> std::result::Result<(rusqlite::Statement<'c>, Vec<String>), String> {
    let stmt = conn
        .prepare(sql)
        .map_err(|e| mapping.error(key, sqlite_error(&e)))?;
    if !stmt.readonly() {
        return Err(mapping.error(key, "must be one SELECT that only reads; this one writes"));
    }
    // SQLite counts ATTACH and DETACH as reading (they write no database); neither they nor
    // any other statement without columns is a query of rows.
    if stmt.column_count() == 0 {
        let first = sql
            .trim_start()
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let what = if first == "ATTACH" || first == "DETACH" {
            "must be one SELECT of the source's own tables; this one attaches or detaches another database"
        } else {
            "must be one SELECT; this one returns no columns"
        };
        return Err(mapping.error(key, what));
    }
    let names = stmt.column_names().into_iter().map(String::from).collect();
    Ok((stmt, names))
}

fn sqlite_error(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::MultipleStatement => {
            "holds more than one statement; give one SELECT".into()
        }
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        other => other.to_string(),
    }
}

/// The column a mapping key names, quoted for SQL.
fn quoted(column: &str) -> String {
    format!("\"{column}\"")
}

/// Brings the mirror up to date with the rows of the mapping's events query.
pub(super) fn sync(
    engine: &mut Engine,
    conn: &Connection,
    source: &Path,
    mapping: &Mapping,
    reducer: Option<&str>,
    progress: super::Progress<'_>,
) -> Result<Synced> {
    let at_source = |what: String| Error::Input(format!("{}: {what}", source.display()));
    let Some(events) = &mapping.events else {
        return files::sync(engine, source, mapping, progress);
    };
    let query = one_statement(conn, mapping, "events.query", &events.query).map_err(at_source)?;
    // Checked as written first, so that its errors read as the user wrote it.
    prepare(conn, mapping, &query).map_err(at_source)?;
    let wanted = reducer
        .or(mapping.reducer.as_deref())
        .unwrap_or("merge")
        .to_owned();
    let fingerprint = engine.reducer(&wanted)?.fingerprint().to_owned();
    let hash = mapping.hash();
    engine.write(|engine| {
        let store = engine.store();
        if store.meta("source.format")?.is_none() {
            store.set_meta("source.format", "mapped")?;
            store.set_meta("source.path", &super::canonical_text(source))?;
        }
        store.set_meta("source.mapping", &mapping.origin)?;
        crate::title::Titles::keep_for(store, mapping)?;
        store.set_meta(
            ID_FIELD,
            if events.id.is_some() {
                "id"
            } else if events.seq.is_some() {
                "seq"
            } else {
                "position"
            },
        )?;
        if events.seq.is_some() {
            store.set_meta(SEQ_FIELD, "seq")?;
        }
        super::use_reducer(store, &wanted, &fingerprint)?;
        let held: Stamp = store
            .meta(STAMP)?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        if held.count > 0 && held.mapping != hash {
            return Ok(rewritten(source, "it is read with another mapping now"));
        }
        // The rows the mirror holds, counted again, and the newest read again; then those
        // after it. With a seq, by seq; without, in the query's own order.
        let (held_sql, newest_sql, fresh_sql) = match &events.seq {
            Some(seq) => {
                let seq = quoted(seq);
                (
                    format!("SELECT count(*) FROM (\n{query}\n) WHERE {seq} <= ?1"),
                    format!("SELECT * FROM (\n{query}\n) WHERE {seq} = ?1"),
                    format!("SELECT * FROM (\n{query}\n) WHERE {seq} > ?1 ORDER BY {seq}"),
                )
            }
            None => (
                format!("SELECT min(count(*), ?1) FROM (\n{query}\n)"),
                format!("SELECT * FROM (\n{query}\n) LIMIT 1 OFFSET ?1 - 1"),
                format!("SELECT * FROM (\n{query}\n) LIMIT -1 OFFSET ?1"),
            ),
        };
        let after: rusqlite::types::Value = match events.seq {
            Some(_) => held.seq.unwrap_or(i64::MIN).into(),
            None => i64::try_from(held.count).unwrap_or(i64::MAX).into(),
        };
        let sql_error = |e: rusqlite::Error| at_source(mapping.error("events.query", sqlite_error(&e)));
        let all: i64 = conn
            .query_row(&format!("SELECT count(*) FROM (\n{query}\n)"), [], |r| r.get(0))
            .map_err(sql_error)?;
        if held.count > 0 {
            let counted: i64 = conn
                .query_row(&held_sql, [&after], |r| r.get(0))
                .map_err(sql_error)?;
            if u64::try_from(counted).unwrap_or(0) != held.count {
                return Ok(rewritten(
                    source,
                    &format!(
                        "the query gives {counted} rows up to the newest one mirrored, where the mirror holds {}: rows were removed, or added before it",
                        held.count
                    ),
                ));
            }
            let (mut stmt, columns) = prepare(conn, mapping, &newest_sql).map_err(at_source)?;
            let newest = stmt
                .query_row([&after], |r| Ok(columns.read(mapping, r)))
                .map_err(sql_error)?
                .map_err(at_source)?;
            let same = match (&held.last, store.stream(&newest.stream)?) {
                (Some((stream, version)), Some(info)) if *stream == newest.stream => store
                    .event(&info, *version)?
                    .is_some_and(|mine| mine.kind == newest.kind && mine.data == newest.data),
                _ => false,
            };
            if !same {
                return Ok(rewritten(source, "a row already mirrored changed"));
            }
        }
        let total = u64::try_from(all).unwrap_or(0).saturating_sub(held.count);
        let (mut stmt, columns) = prepare(conn, mapping, &fresh_sql).map_err(at_source)?;
        let width = stmt.column_count();
        let mut rows = stmt.query([&after]).map_err(sql_error)?;
        let mut taker = Taker {
            writer: Writer::new(false).keeping_going(),
            stamp: Stamp {
                mapping: hash.clone(),
                ..held
            },
            done: 0,
            total,
            progress,
        };
        let at = |position: u64, seq: Option<i64>, what: String| {
            at_source(format!(
                "mapping {}: row {position}{}: {what}",
                mapping.origin,
                seq.map_or_else(String::new, |seq| format!(" (seq {seq})"))
            ))
        };
        // The rows are decoded on a second thread (their JSON parsed, and written again as
        // the mirror stores it) while this one reads the next and writes what is decoded.
        std::thread::scope(|scope| -> Result<()> {
            let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<Vec<SqlValue>>(AHEAD);
            let (done_tx, done_rx) = std::sync::mpsc::channel::<Decoded>();
            let columns = &columns;
            std::thread::Builder::new()
                .stack_size(crate::budget::THREAD_STACK)
                .spawn_scoped(
                    scope,
                    crate::budget::on_large_stack(move || {
                        for values in raw_rx {
                            let decoded = columns
                                .read_values(mapping, &values)
                                .map(|row| {
                                    let text = row.data.to_string();
                                    (row, text)
                                })
                                .map_err(|what| (what, columns.seq_in(&values)));
                            let failed = decoded.is_err();
                            if done_tx.send(decoded).is_err() || failed {
                                break;
                            }
                        }
                    }),
                )
                .map_err(|e| Error::Input(format!("starting a thread to decode rows: {e}")))?;
            let read = (|| -> Result<()> {
                while let Some(row) = rows.next().map_err(sql_error)? {
                    let values = (0..width)
                        .map(|i| row.get::<_, SqlValue>(i))
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map_err(sql_error)?;
                    if raw_tx.send(values).is_err() {
                        // The decoder stopped at a row it could not read: its error is
                        // among the decoded.
                        return Ok(());
                    }
                    while let Ok(decoded) = done_rx.try_recv() {
                        taker.take(engine, decoded, &at)?;
                    }
                }
                Ok(())
            })();
            drop(raw_tx);
            read?;
            for decoded in done_rx {
                taker.take(engine, decoded, &at)?;
            }
            Ok(())
        })?;
        let Taker {
            mut writer,
            stamp,
            progress,
            ..
        } = taker;
        writer.finish(engine)?;
        // Done: a progress line on the terminal is cleared.
        progress(total, total);
        streams::sync(engine, conn, mapping, &at_source)?;
        let now = streams::source_now(engine, conn, mapping).map_err(at_source)?;
        snapshots::sync(engine, conn, mapping, now, &at_source)?;
        engine.store().set_meta(
            STAMP,
            &serde_json::to_string(&stamp).map_err(|e| Error::Input(e.to_string()))?,
        )?;
        Ok(Synced::UpToDate)
    })
}

/// Rows read ahead of the decoder, at most.
const AHEAD: usize = 256;

/// A row decoded: its event and its data as JSON text; or why it could not be read, with its
/// seq where that can be read.
type Decoded = std::result::Result<(Row, String), (String, Option<i64>)>;

/// Appends the decoded rows, in order.
struct Taker<'p> {
    writer: Writer,
    stamp: Stamp,
    done: u64,
    total: u64,
    progress: super::Progress<'p>,
}

impl Taker<'_> {
    fn take(
        &mut self,
        engine: &mut Engine,
        decoded: Decoded,
        at: &dyn Fn(u64, Option<i64>, String) -> Error,
    ) -> Result<()> {
        let position = self.stamp.count + 1;
        let (row, data) = decoded.map_err(|(what, seq)| at(position, seq, what))?;
        let seq = row.seq;
        append(
            engine,
            &mut self.writer,
            row,
            data,
            position,
            &mut self.stamp,
        )
        .map_err(|e| match e {
            Error::Input(what) => at(position, seq, what),
            e => e,
        })?;
        self.done += 1;
        if self.done.is_multiple_of(4096) {
            (self.progress)(self.done, self.total);
        }
        Ok(())
    }
}

/// Appends one row's event.
fn append(
    engine: &mut Engine,
    writer: &mut Writer,
    row: Row,
    data: String,
    position: u64,
    stamp: &mut Stamp,
) -> Result<()> {
    let (head, last_ts) = match (writer.head(&row.stream), writer.last_ts(&row.stream)) {
        (Some(head), Some(last_ts)) => (head, last_ts),
        _ => engine
            .store()
            .stream(&row.stream)?
            .map_or((0, None), |s| (s.head, s.last_ts)),
    };
    if let Some(version) = row.version
        && version != head + 1
    {
        return Err(Error::Input(format!(
            "events.version: stream {:?} version {version} comes after version {head}: the query must give each stream's rows in order, without gaps",
            row.stream
        )));
    }
    let mut meta = serde_json::Map::new();
    if let Some(seq) = row.seq {
        writer
            .use_seq(engine, seq)
            .map_err(|e| Error::Input(format!("events.seq: {e}")))?;
        meta.insert("seq".into(), json!(seq));
    } else {
        meta.insert("position".into(), json!(position));
    }
    if let Some(id) = row.id {
        meta.insert("id".into(), Value::String(id));
    }
    if let Some(extra) = row.meta {
        meta.insert("meta".into(), extra);
    }
    // Times never go back within a stream (so "the state at time T" never holds an event
    // written after T). A row stamped before the one before it (two writers' clocks) keeps
    // its place, at the time before it; its own time stays in its meta.
    let mut time = row.time;
    if let (Some(t), Some(last)) = (time, last_ts)
        && t < last
    {
        meta.insert("time".into(), json!(crate::time::format(t)));
        time = Some(last);
    }
    let stream = row.stream.clone();
    let meta = Value::Object(meta);
    let meta_text = meta.to_string();
    writer.push_texts(
        engine,
        NewEvent {
            stream: row.stream,
            kind: row.kind,
            data: row.data,
            meta: Some(meta),
            time,
            idempotency_key: None,
        },
        Some((data, Some(meta_text))),
        None,
    )?;
    stamp.count = position;
    stamp.seq = row.seq;
    stamp.last = Some((stream, head + 1));
    Ok(())
}

fn rewritten(source: &Path, what: &str) -> Synced {
    Synced::Rebuild(Some(format!(
        "{}: {what}; its mirror was made again",
        source.display()
    )))
}
