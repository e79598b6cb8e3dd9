//! A PostgreSQL database mirrored: which format its tables are, and their rows brought into
//! the mirror in their global order, a batch at a time, each batch committed with how far it
//! got, so that a sync cut short (a dropped connection, a killed process) resumes there.
//!
//! Everything is read in one read-only, repeatable-read transaction through a server-side
//! cursor (a portal fetched `BATCH` rows at a time), so the rows of a sync are one snapshot
//! of the database and never all in memory. Nothing is ever written to the server.
//!
//! Formats: Python `eventsourcing`'s PostgreSQL tables (`NAME_events` with a
//! `notification_id`, and `NAME_snapshots`), as the SQLite file's are mirrored
//! (`mirror::eventsourcing`).

use postgres::{Client, IsolationLevel, Transaction};

use crate::engine::{Engine, Writer};
use crate::error::{Error, Result};
use crate::source::postgres::{Spec, describe};

use super::eventsourcing::{Stored, UNSET, push};
use super::{ID_FIELD, Synced};

/// Rows fetched from the cursor, and written to the mirror, at a time.
const BATCH: i32 = 2_000;

/// The mirror's meta key for how far it has read.
const STAMP: &str = "postgres.stamp";

/// An `eventsourcing` application's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTables {
    pub schema: String,
    pub events: String,
    /// Its snapshots table, where there is one.
    pub snapshots: Option<String>,
}

impl EventTables {
    fn events_sql(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.events))
    }
}

/// `name` quoted as an SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The formats the database's tables are of, by what its catalogue says (the schemas on the
/// search path only).
pub fn find(client: &mut Client, spec: &Spec) -> Result<Vec<EventTables>> {
    let rows = client
        .query(
            "SELECT table_schema::text, table_name::text FROM information_schema.columns
             WHERE table_schema = ANY (current_schemas(false))
               AND column_name IN ('originator_id', 'originator_version', 'topic', 'state', 'notification_id')
             GROUP BY 1, 2 HAVING count(*) = 5 ORDER BY 1, 2",
            &[],
        )
        .map_err(|e| Error::Input(describe(spec, None, &e)))?;
    let mut found = Vec::new();
    for row in rows {
        let schema: String = row.get(0);
        let events: String = row.get(1);
        let snapshots = events
            .strip_suffix("_events")
            .map(|prefix| format!("{prefix}_snapshots"));
        let snapshots = match snapshots {
            Some(name) => {
                let there: i64 = client
                    .query_one(
                        "SELECT count(*) FROM information_schema.columns
                         WHERE table_schema = $1 AND table_name = $2
                           AND column_name IN ('originator_id', 'originator_version', 'state')",
                        &[&schema, &name],
                    )
                    .map_err(|e| Error::Input(describe(spec, None, &e)))?
                    .get(0);
                (there == 3).then_some(name)
            }
            None => None,
        };
        found.push(EventTables {
            schema,
            events,
            snapshots,
        });
    }
    Ok(found)
}

/// The one application a source names or holds.
pub fn choose(spec: &Spec, found: Vec<EventTables>) -> Result<EventTables> {
    let names: Vec<String> = found.iter().map(|t| t.events.clone()).collect();
    if let Some(table) = &spec.table {
        return found
            .into_iter()
            .find(|t| &t.events == table || format!("{}.{}", t.schema, t.events) == *table)
            .ok_or_else(|| {
                Error::Input(format!(
                    "{}: no eventsourcing table {table:?} here; it has {}",
                    spec.shown(),
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ))
            });
    }
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(Error::Input(format!(
            "{}: no tables of a format rewind reads: it looked for Python eventsourcing's \
             NAME_events (originator_id, originator_version, topic, state, notification_id) \
             on the search path",
            spec.shown()
        ))),
        (Some(_), Some(_)) => Err(Error::Input(format!(
            "{}: several eventsourcing applications ({}); open one with ?rewind_table=NAME",
            spec.shown(),
            names.join(", ")
        ))),
    }
}

/// How far a mirror has read: the newest notification id mirrored, how many rows were at or
/// below it, and how many of them had a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    table: String,
    notification_id: i64,
    events: i64,
    snapshots: i64,
}

/// Brings the mirror up to date with the application's tables, under the user's reducer.
pub(super) fn sync(
    engine: &mut Engine,
    client: &mut Client,
    spec: &Spec,
    tables: &EventTables,
    reducer: Option<&str>,
    progress: super::Progress<'_>,
) -> Result<Synced> {
    let table = tables.events_sql();
    let fail = |e: postgres::Error| Error::Input(describe(spec, Some(&table), &e));
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .map_err(fail)?;
    let outcome = sync_in(engine, &mut tx, spec, tables, reducer, progress);
    // Nothing was written; the transaction only held the snapshot of the database.
    let _ = tx.rollback();
    outcome
}

fn sync_in(
    engine: &mut Engine,
    tx: &mut Transaction<'_>,
    spec: &Spec,
    tables: &EventTables,
    reducer: Option<&str>,
    progress: super::Progress<'_>,
) -> Result<Synced> {
    let table = tables.events_sql();
    let fail = |e: postgres::Error| Error::Input(describe(spec, Some(&table), &e));
    let wanted = reducer.unwrap_or(UNSET);
    let fingerprint = engine.reducer(wanted)?.fingerprint().to_owned();
    let held: Stamp = engine
        .store()
        .meta(STAMP)?
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    if held.notification_id > 0 && held.table != table {
        return Ok(Synced::Rebuild(Some(format!(
            "{}: the source now reads {table}, not {}; its mirror was made again",
            spec.shown(),
            held.table
        ))));
    }
    // The newest id, from the table's index: what a follower asks twice a second.
    let newest: i64 = tx
        .query_one(
            &format!("SELECT coalesce(max(notification_id), 0)::int8 FROM {table}"),
            &[],
        )
        .map_err(fail)?
        .get(0);
    let snapshots = tables
        .snapshots
        .as_ref()
        .map(|s| format!("{}.{}", ident(&tables.schema), ident(s)));
    let join = |snapshots: &str| {
        format!(
            "JOIN {snapshots} s ON s.originator_id = e.originator_id AND s.originator_version = e.originator_version"
        )
    };
    // Snapshots of the events up to `at`: the snapshots table walked, each event found by
    // its key.
    let snapshots_below = |tx: &mut Transaction<'_>, at: i64| -> Result<i64> {
        let Some(snapshots) = &snapshots else {
            return Ok(0);
        };
        tx.query_one(
            &format!(
                "SELECT count(*) FROM {table} e {} WHERE e.notification_id <= $1",
                join(snapshots)
            ),
            &[&at],
        )
        .map(|r| r.get(0))
        .map_err(fail)
    };
    let reducer_held = engine.store().default_reducer()? == wanted;
    // Nothing new; snapshots taken since of events already mirrored make it again.
    if held.notification_id == newest
        && reducer_held
        && snapshots_below(tx, newest)? == held.snapshots
    {
        return Ok(Synced::UpToDate);
    }
    // What the mirror holds must still be in the source as it was.
    if held.notification_id > 0 {
        let below: i64 = tx
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE notification_id <= $1"),
                &[&held.notification_id],
            )
            .map_err(fail)?
            .get(0);
        if below != held.events {
            return Ok(rewritten(
                spec,
                "events already mirrored were removed or added among them",
            ));
        }
        if snapshots_below(tx, held.notification_id)? != held.snapshots {
            return Ok(rewritten(
                spec,
                "snapshots of events already mirrored were taken or removed",
            ));
        }
        let row = tx
            .query_opt(
                &format!(
                    "SELECT originator_id::text, originator_version, topic, state FROM {table} WHERE notification_id = $1"
                ),
                &[&held.notification_id],
            )
            .map_err(fail)?;
        let same = row.is_some_and(|row| {
            let event = crate::source::eventsourcing::event(
                held.notification_id,
                row.get(0),
                row.get(1),
                row.get::<_, Option<&str>>(2).unwrap_or_default(),
                row.get::<_, Option<&[u8]>>(3).unwrap_or_default(),
            );
            let store = engine.store();
            store
                .stream(&event.stream)
                .ok()
                .flatten()
                .is_some_and(|info| {
                    store
                        .event(&info, info.head)
                        .ok()
                        .flatten()
                        .is_some_and(|e| e.kind == event.kind && e.data == event.data)
                })
        });
        if !same {
            return Ok(rewritten(
                spec,
                "an event already mirrored changed in the source",
            ));
        }
    }
    engine.write(|engine| {
        let store = engine.store();
        if store.meta("source.format")?.is_none() {
            store.set_meta("source.format", "eventsourcing")?;
            store.set_meta("source.path", &spec.shown())?;
            store.set_meta(ID_FIELD, "notification_id")?;
            store.set_meta(super::SEQ_FIELD, "notification_id")?;
        }
        super::use_reducer(store, wanted, &fingerprint)
    })?;
    let snapshot_column = if snapshots.is_some() {
        "s.state"
    } else {
        "NULL::bytea"
    };
    let snapshot_join = snapshots.as_deref().map(|s| format!("LEFT {}", join(s)));
    let portal = tx
        .bind(
            &format!(
                "SELECT e.notification_id, e.originator_id::text, e.originator_version, e.topic, e.state, {snapshot_column}
                 FROM {table} e {} WHERE e.notification_id > $1 ORDER BY e.notification_id",
                snapshot_join.as_deref().unwrap_or("")
            ),
            &[&held.notification_id],
        )
        .map_err(fail)?;
    let todo: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM {table} WHERE notification_id > $1"),
            &[&held.notification_id],
        )
        .map_err(fail)?
        .get(0);
    let todo = u64::try_from(todo).unwrap_or(0);
    let mut stamp = Stamp {
        table: table.clone(),
        ..held
    };
    let mut done = 0u64;
    loop {
        let rows = tx.query_portal(&portal, BATCH).map_err(fail)?;
        if rows.is_empty() {
            break;
        }
        engine.write(|engine| {
            let mut writer = Writer::new(false).keeping_going();
            for row in &rows {
                let snapshot: Option<&[u8]> = row.get(5);
                push(
                    engine,
                    &mut writer,
                    Stored {
                        rowid: row.get(0),
                        id: row.get(1),
                        version: row.get(2),
                        topic: row.get::<_, Option<&str>>(3).unwrap_or_default(),
                        state: row.get::<_, Option<&[u8]>>(4).unwrap_or_default(),
                        snapshot,
                    },
                )?;
                stamp.notification_id = row.get(0);
                stamp.events += 1;
                stamp.snapshots += i64::from(snapshot.is_some());
            }
            writer.finish(engine)?;
            engine.store().set_meta(
                STAMP,
                &serde_json::to_string(&stamp).map_err(|e| Error::Input(e.to_string()))?,
            )
        })?;
        crate::failpoint::point("postgres.batch");
        done += rows.len() as u64;
        progress(done, todo.max(done));
    }
    progress(todo, todo);
    Ok(Synced::UpToDate)
}

fn rewritten(spec: &Spec, what: &str) -> Synced {
    Synced::Rebuild(Some(format!(
        "{}: {what}; its mirror was made again",
        spec.shown()
    )))
}
