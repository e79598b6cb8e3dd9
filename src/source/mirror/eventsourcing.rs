//! A Python `eventsourcing` SQLite file mirrored: one stream per aggregate, one event per
//! row of `stored_events` in rowid order (the library's notification id: the global order,
//! kept in each event's meta as `notification_id`). The file's own snapshots
//! (`stored_snapshots`) go into the meta of the event they were taken at, where the `stored`
//! reducer shows them while the user has set no reducer, and where `verify` checks them
//! against the user's once one is set ([`check`]).
//!
//! The mirror's reducer is the user's (their settings for the source) or `stored`; when it
//! changes, the mirror's snapshots made with the other are removed. An event the reducer
//! cannot apply is mirrored all the same: the failure shows where the event is read.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};
use serde_json::{Value, json};

use crate::engine::{Engine, Writer};
use crate::error::{Error, Result};
use crate::model::NewEvent;
use crate::reduce::stored::SNAPSHOT;
use crate::snapshot::verify::{Finding, FindingKind};
use crate::source::eventsourcing;

use super::{ID_FIELD, KIND, SEQ_FIELD, Synced};

/// The mirror's meta key for how far it has read: `{"rowid", "events", "snapshots"}`.
const STAMP: &str = "eventsourcing.stamp";

/// The reducer a mirror uses while the user has set none.
pub const UNSET: &str = "stored";

/// How far a mirror has read the file: the newest rowid mirrored, how many rows were at or
/// below it, and how many snapshots the file had.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    rowid: i64,
    events: i64,
    snapshots: i64,
    /// A hash of the newest row: a file made again with as many rows is told apart.
    #[serde(default)]
    newest: String,
}

/// Brings the mirror up to date with the file, under the user's reducer (`None`: the
/// `stored` one).
pub(super) fn sync(
    engine: &mut Engine,
    conn: &Connection,
    source: &Path,
    reducer: Option<&str>,
    progress: super::Progress<'_>,
) -> Result<Synced> {
    let at_source = |what: String| Error::Input(format!("{}: {what}", source.display()));
    // One snapshot of the file for everything read.
    conn.execute_batch("BEGIN")
        .map_err(|e| at_source(e.to_string()))?;
    let outcome = sync_in(engine, conn, source, reducer, progress);
    let _ = conn.execute_batch("COMMIT");
    outcome
}

fn sync_in(
    engine: &mut Engine,
    conn: &Connection,
    source: &Path,
    reducer: Option<&str>,
    progress: super::Progress<'_>,
) -> Result<Synced> {
    let read_error = |e: rusqlite::Error| Error::Input(format!("{}: {e}", source.display()));
    let has_snapshots = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'stored_snapshots'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(read_error)?
        > 0;
    let (newest, total): (i64, i64) = conn
        .query_row(
            "SELECT coalesce(max(rowid), 0), count(*) FROM stored_events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(read_error)?;
    let snapshots: i64 = if has_snapshots {
        conn.query_row("SELECT count(*) FROM stored_snapshots", [], |r| r.get(0))
            .map_err(read_error)?
    } else {
        0
    };
    let wanted = reducer.unwrap_or(UNSET);
    let wanted_fingerprint = engine.reducer(wanted)?.fingerprint().to_owned();
    let newest_row = conn
        .query_row(
            "SELECT originator_id, originator_version, topic, state FROM stored_events WHERE rowid = ?1",
            [newest],
            |r| {
                let mut hasher = blake3::Hasher::new();
                for i in 0..4 {
                    let column = bytes_or_text(r.get_ref(i)?);
                    hasher.update(&(column.len() as u64).to_le_bytes());
                    hasher.update(&column);
                }
                Ok(hasher.finalize().to_hex().to_string())
            },
        )
        .optional()
        .map_err(read_error)?
        .unwrap_or_default();
    let now = Stamp {
        rowid: newest,
        events: total,
        snapshots,
        newest: newest_row,
    };
    // Nothing new (what a follower finds twice a second): told by a read, no write lock taken.
    let unchanged = {
        let store = engine.store();
        store
            .meta(STAMP)?
            .and_then(|text| serde_json::from_str::<Stamp>(&text).ok())
            .as_ref()
            == Some(&now)
            && store.default_reducer()? == wanted
    };
    if unchanged {
        return Ok(Synced::UpToDate);
    }
    engine.write(|engine| {
        let store = engine.store();
        if store.meta("source.format")?.is_none() {
            store.set_meta("source.format", "eventsourcing")?;
            store.set_meta("source.path", &super::canonical_text(source))?;
            store.set_meta(ID_FIELD, "notification_id")?;
            store.set_meta(SEQ_FIELD, "notification_id")?;
        }
        super::use_reducer(store, wanted, &wanted_fingerprint)?;
        let held: Stamp = store
            .meta(STAMP)?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        if held == now {
            return Ok(Synced::UpToDate);
        }
        // What the mirror holds must still be in the file as it was: as many rows at or
        // below its newest, that one unchanged, and no snapshot gone or new under it.
        if held.rowid > 0 {
            let below: i64 = conn
                .query_row(
                    "SELECT count(*) FROM stored_events WHERE rowid <= ?1",
                    [held.rowid],
                    |r| r.get(0),
                )
                .map_err(read_error)?;
            if below != held.events {
                return Ok(rewritten(source, "events already mirrored were removed or added among them"));
            }
            let row = conn
                .query_row(
                    "SELECT originator_id, originator_version, topic, state FROM stored_events WHERE rowid = ?1",
                    [held.rowid],
                    |r| {
                        Ok(eventsourcing::event(
                            held.rowid,
                            &text(r.get_ref(0)?),
                            r.get(1)?,
                            &text(r.get_ref(2)?),
                            &bytes(r.get_ref(3)?),
                        ))
                    },
                )
                .optional()
                .map_err(read_error)?;
            let same = match row {
                Some(row) => store.stream(&row.stream)?.is_some_and(|info| {
                    store
                        .event(&info, info.head)
                        .ok()
                        .flatten()
                        .is_some_and(|held| held.kind == row.kind && held.data == row.data)
                }),
                None => false,
            };
            if !same {
                return Ok(rewritten(source, "an event already mirrored changed in the file"));
            }
        }
        if snapshots != held.snapshots && has_snapshots {
            if snapshots < held.snapshots {
                return Ok(rewritten(source, "snapshots were removed from the file"));
            }
            // A snapshot taken of an event already mirrored belongs in that event's meta.
            let mut keys = conn
                .prepare("SELECT originator_id, originator_version FROM stored_snapshots")
                .map_err(read_error)?;
            let keys: Vec<(String, i64)> = keys
                .query_map([], |r| Ok((text(r.get_ref(0)?), r.get(1)?)))
                .and_then(Iterator::collect)
                .map_err(read_error)?;
            for (id, version) in keys {
                let Some(info) = store.stream(&eventsourcing::stream_name(&id))? else {
                    continue;
                };
                let Some(version) = u64::try_from(version).ok().filter(|v| *v <= info.head) else {
                    continue;
                };
                let marked = store.event(&info, version)?.is_some_and(|e| {
                    e.meta.as_ref().is_some_and(|m| m.get(SNAPSHOT).is_some())
                });
                if !marked {
                    return Ok(rewritten(
                        source,
                        "the file took snapshots of events already mirrored",
                    ));
                }
            }
        }
        let mut snapshot_of = if has_snapshots {
            Some(
                conn.prepare(
                    "SELECT state FROM stored_snapshots WHERE originator_id = ?1 AND originator_version = ?2",
                )
                .map_err(read_error)?,
            )
        } else {
            None
        };
        let mut rows = conn
            .prepare(
                "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events WHERE rowid > ?1 ORDER BY rowid",
            )
            .map_err(read_error)?;
        let mut rows = rows.query([held.rowid]).map_err(read_error)?;
        let mut writer = Writer::new(false).keeping_going();
        let todo = u64::try_from(total - held.events).unwrap_or(0);
        let mut done = 0u64;
        while let Some(row) = rows.next().map_err(read_error)? {
            let rowid: i64 = row.get(0).map_err(read_error)?;
            let id = text(row.get_ref(1).map_err(read_error)?);
            let version: i64 = row.get(2).unwrap_or(0);
            let stored: Option<Vec<u8>> = match snapshot_of.as_mut() {
                Some(statement) => statement
                    .query_row(rusqlite::params![id, version], |r| Ok(bytes(r.get_ref(0)?)))
                    .optional()
                    .map_err(read_error)?,
                None => None,
            };
            push(
                engine,
                &mut writer,
                Stored {
                    rowid,
                    id: &id,
                    version,
                    topic: &text(row.get_ref(3).map_err(read_error)?),
                    state: &bytes(row.get_ref(4).map_err(read_error)?),
                    snapshot: stored.as_deref(),
                },
            )?;
            done += 1;
            if done.is_multiple_of(4096) {
                progress(done, todo);
            }
        }
        writer.finish(engine)?;
        progress(todo, todo);
        engine.store().set_meta(
            STAMP,
            &serde_json::to_string(&now).map_err(|e| Error::Input(e.to_string()))?,
        )?;
        Ok(Synced::UpToDate)
    })
}

/// One row of a stored-events table, and the state of the snapshot taken at it, if any.
pub(super) struct Stored<'a> {
    /// Its notification id.
    pub rowid: i64,
    pub id: &'a str,
    pub version: i64,
    pub topic: &'a str,
    pub state: &'a [u8],
    pub snapshot: Option<&'a [u8]>,
}

/// Mirrors one stored event: its snapshot, if the source took one there, in its meta; the
/// aggregate's class, from the event that created it, in the stream's meta.
pub(super) fn push(engine: &mut Engine, writer: &mut Writer, row: Stored<'_>) -> Result<()> {
    let event = eventsourcing::event(row.rowid, row.id, row.version, row.topic, row.state);
    let mut meta = event.meta;
    if let (Some(stored), Value::Object(fields)) = (row.snapshot, &mut meta) {
        fields.insert(SNAPSHOT.into(), eventsourcing::snapshot(stored));
    }
    if let Some(Value::String(topic)) = event.data.get("originator_topic") {
        let class = topic.rsplit_once(':').map_or(topic.as_str(), |(_, c)| c);
        engine
            .store()
            .set_meta(&format!("{KIND}{}", event.stream), class)?;
    }
    writer.push(
        engine,
        NewEvent {
            stream: event.stream,
            kind: event.kind,
            data: event.data,
            meta: Some(meta),
            time: event.time,
            idempotency_key: None,
        },
        None,
    )?;
    Ok(())
}

fn rewritten(source: &Path, what: &str) -> Synced {
    Synced::Rebuild(Some(format!(
        "{}: {what}; its mirror was made again",
        source.display()
    )))
}

/// A column as text, whatever SQLite type it was stored with (an id stored as a BLOB too).
fn text(value: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Text(b) | ValueRef::Blob(b) => String::from_utf8_lossy(b).into_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Null => String::new(),
    }
}

/// A column's bytes as stored, whatever its type.
fn bytes_or_text(value: rusqlite::types::ValueRef<'_>) -> Vec<u8> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Integer(i) => i.to_le_bytes().to_vec(),
        ValueRef::Real(f) => f.to_le_bytes().to_vec(),
        other => bytes(other),
    }
}

/// A column as bytes (a state stored as TEXT too).
fn bytes(value: rusqlite::types::ValueRef<'_>) -> Vec<u8> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
        _ => Vec::new(),
    }
}

/// What checking a mirror's snapshots from the file found.
#[derive(Debug, Default)]
pub struct Checked {
    /// The file's snapshots the replay with the user's reducer agrees with.
    pub equal: u64,
    /// The file's snapshots not checked: no reducer is set, or the snapshot is unreadable.
    pub unchecked: u64,
    /// The file's snapshots the replay disagrees with (each a finding).
    pub disagree: u64,
    /// Whether a reducer is set (without one nothing can be checked).
    pub reducer_set: bool,
    /// The snapshots the replay disagrees with.
    pub findings: Vec<Finding>,
}

/// Replays every stream with the mirror's reducer and compares the state at each of the
/// file's own snapshots with it: the user's snapshots that disagree are findings.
pub fn check(engine: &mut Engine, only: Option<&str>) -> Result<Checked> {
    let mut checked = Checked::default();
    engine.read(|engine| {
        checked.reducer_set = engine.store().default_reducer()? != UNSET;
        for info in engine.store().streams()? {
            if only.is_some_and(|s| s != info.name) {
                continue;
            }
            let reducer = engine.reducer(&info.reducer)?;
            let mut state = json!({});
            let mut failed = false;
            for event in engine.store().events(&info, 1, info.head, usize::MAX)? {
                let version = event.version;
                if !failed
                    && let Err(e) = super::apply_event(&reducer, &info.name, &event, &mut state) {
                        failed = true;
                        checked.findings.push(finding(
                            &info.name,
                            version,
                            format!("the reducer cannot apply this event ({e}), so the file's snapshots after it are not checked"),
                            Vec::new(),
                        ));
                    }
                let Some(stored) = event.meta.as_ref().and_then(|m| m.get(SNAPSHOT)) else {
                    continue;
                };
                if !checked.reducer_set || failed || stored.get("$unreadable").is_some() {
                    checked.unchecked += 1;
                    continue;
                }
                if *stored == state {
                    checked.equal += 1;
                } else {
                    checked.disagree += 1;
                    checked.findings.push(finding(
                        &info.name,
                        version,
                        format!(
                            "the file's snapshot at version {version} is not the state your reducer gives there"
                        ),
                        crate::diff::changes(stored, &state),
                    ));
                }
            }
        }
        Ok(())
    })?;
    Ok(checked)
}

pub(super) fn finding(
    stream: &str,
    version: u64,
    detail: String,
    diff: Vec<crate::diff::Change>,
) -> Finding {
    Finding {
        stream: stream.to_owned(),
        version: Some(version),
        kind: FindingKind::Source,
        detail,
        diff,
    }
}
