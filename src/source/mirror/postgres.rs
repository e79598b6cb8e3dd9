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
//! (`mirror::eventsourcing`); Marten's `mt_events` (one stream per `stream_id`, in `seq_id`
//! order, the event's JSON data under the user's reducer, else `merge`), whose stream
//! snapshots in `mt_streams` are checked by `verify` against the replay, never used.

use postgres::{Client, IsolationLevel, Transaction};

use crate::engine::{Engine, Writer};
use crate::error::{Error, Result};
use crate::source::postgres::{Spec, describe};

use super::eventsourcing::{Stored, UNSET, push};
use super::{ID_FIELD, KIND, Synced};

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
pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Marten's event store: `mt_events` and `mt_streams` in a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MartenTables {
    pub schema: String,
}

impl MartenTables {
    fn events_sql(&self) -> String {
        format!("{}.\"mt_events\"", ident(&self.schema))
    }

    fn streams_sql(&self) -> String {
        format!("{}.\"mt_streams\"", ident(&self.schema))
    }
}

/// The tables of a format rewind reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    EventSourcing(EventTables),
    Marten(MartenTables),
    LangGraph(super::pg_langgraph::CheckpointTables),
}

impl Found {
    /// How the user names it (`?rewind_table=`).
    fn name(&self) -> String {
        match self {
            Self::EventSourcing(t) => t.events.clone(),
            Self::Marten(t) => format!("{}.mt_events", t.schema),
            Self::LangGraph(t) => format!("{}.checkpoints", t.schema),
        }
    }

    /// The format's name, as `rewind sources` lists it.
    pub fn format(&self) -> &'static str {
        match self {
            Self::EventSourcing(_) => "eventsourcing",
            Self::Marten(_) => "marten",
            Self::LangGraph(_) => "langgraph",
        }
    }
}

/// The tables of every format rewind reads in the database, by what its catalogue says
/// (eventsourcing's and LangGraph's on the search path; Marten's in any schema, where its `DatabaseSchemaName`
/// may have put them).
pub fn find(client: &mut Client, spec: &Spec) -> Result<Vec<Found>> {
    let mut found: Vec<Found> = find_eventsourcing(client, spec)?
        .into_iter()
        .map(Found::EventSourcing)
        .collect();
    let rows = client
        .query(
            "SELECT table_schema::text FROM information_schema.columns
             WHERE table_name = 'mt_events'
               AND table_schema NOT IN ('pg_catalog', 'information_schema')
               AND column_name IN ('seq_id', 'id', 'stream_id', 'version', 'data', 'type', 'timestamp')
             GROUP BY 1 HAVING count(*) = 7 ORDER BY 1",
            &[],
        )
        .map_err(|e| Error::Input(describe(spec, None, &e)))?;
    found.extend(
        rows.into_iter()
            .map(|row| Found::Marten(MartenTables { schema: row.get(0) })),
    );
    found.extend(
        super::pg_langgraph::find(client, spec)?
            .into_iter()
            .map(Found::LangGraph),
    );
    Ok(found)
}

fn find_eventsourcing(client: &mut Client, spec: &Spec) -> Result<Vec<EventTables>> {
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

/// The one store a source names or holds.
pub fn choose(spec: &Spec, found: Vec<Found>) -> Result<Found> {
    let names: Vec<String> = found.iter().map(Found::name).collect();
    if let Some(table) = &spec.table {
        return found
            .into_iter()
            .find(|f| {
                let name = f.name();
                name == *table
                    || match f {
                        Found::EventSourcing(t) => format!("{}.{}", t.schema, t.events) == *table,
                        Found::Marten(_) => table == "mt_events",
                        Found::LangGraph(_) => table == "checkpoints",
                    }
            })
            .ok_or_else(|| {
                Error::Input(format!(
                    "{}: no table {table:?} of a format rewind reads here; it has {}",
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
             on the search path, LangGraph PostgresSaver's checkpoints, checkpoint_blobs and \
             checkpoint_writes on the search path, and Marten's mt_events (seq_id, id, \
             stream_id, version, data, type, timestamp) in any schema",
            spec.shown()
        ))),
        (Some(_), Some(_)) => Err(Error::Input(format!(
            "{}: several event stores ({}); open one with ?rewind_table=NAME",
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
    in_snapshot(client, spec, &tables.events_sql(), |tx| {
        sync_in(engine, tx, spec, tables, reducer, progress)
    })
}

/// Runs `read` in one read-only, repeatable-read transaction: everything it reads is one
/// snapshot of the database. Nothing is written; the transaction is rolled back.
pub(super) fn in_snapshot<T>(
    client: &mut Client,
    spec: &Spec,
    table: &str,
    read: impl FnOnce(&mut Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .map_err(|e| Error::Input(describe(spec, Some(table), &e)))?;
    let outcome = read(&mut tx);
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
    let log = Ordered {
        table: &table,
        position: "notification_id",
        fail: &fail,
    };
    let wanted = reducer.unwrap_or(UNSET);
    let held = held(engine)?;
    if let Some(again) = other_table(spec, &held, &table) {
        return Ok(again);
    }
    let newest = log.newest(tx)?;
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
        if log.count(tx, true, held.notification_id)? != held.events {
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
            head_is(engine, &event.stream, &event.kind, &event.data)
        });
        if !same {
            return Ok(rewritten(
                spec,
                "an event already mirrored changed in the source",
            ));
        }
    }
    mark(
        engine,
        spec,
        "eventsourcing",
        "notification_id",
        "notification_id",
        wanted,
    )?;
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
    let todo = u64::try_from(log.count(tx, false, held.notification_id)?).unwrap_or(0);
    let mut stamp = Stamp {
        table: table.clone(),
        ..held
    };
    take_rows(
        engine,
        tx,
        &portal,
        &fail,
        &mut stamp,
        todo,
        progress,
        |engine, writer, row, stamp| {
            let snapshot: Option<&[u8]> = row.get(5);
            push(
                engine,
                writer,
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
            stamp.snapshots += i64::from(snapshot.is_some());
            Ok(())
        },
    )
}

/// Reads the portal's rows `BATCH` at a time, each batch written to the mirror by `each`
/// (which moves the stamp on) in one transaction with the stamp, with one writer for the
/// whole sync so that a stream's state is followed from batch to batch.
#[allow(clippy::too_many_arguments)]
fn take_rows(
    engine: &mut Engine,
    tx: &mut Transaction<'_>,
    portal: &postgres::Portal,
    fail: &dyn Fn(postgres::Error) -> Error,
    stamp: &mut Stamp,
    todo: u64,
    progress: super::Progress<'_>,
    mut each: impl FnMut(&mut Engine, &mut Writer, &postgres::Row, &mut Stamp) -> Result<()>,
) -> Result<Synced> {
    let mut done = 0u64;
    let mut writer = Writer::new(false).keeping_going();
    loop {
        let rows = tx.query_portal(portal, BATCH).map_err(fail)?;
        if rows.is_empty() {
            break;
        }
        engine.write(|engine| {
            writer.next_transaction();
            for row in &rows {
                each(engine, &mut writer, row, stamp)?;
                stamp.events += 1;
            }
            writer.finish(engine)?;
            engine.store().set_meta(
                STAMP,
                &serde_json::to_string(&*stamp).map_err(|e| Error::Input(e.to_string()))?,
            )
        })?;
        crate::failpoint::point("postgres.batch");
        done += rows.len() as u64;
        progress(done, todo.max(done));
    }
    progress(todo, todo);
    Ok(Synced::UpToDate)
}

/// What a sync of a table ordered by `position` asks of it.
struct Ordered<'a> {
    /// The table, quoted.
    table: &'a str,
    /// Its column of the global order (`notification_id`, `seq_id`).
    position: &'a str,
    fail: &'a dyn Fn(postgres::Error) -> Error,
}

impl Ordered<'_> {
    /// The newest position, from the table's index: what a follower asks twice a second.
    fn newest(&self, tx: &mut Transaction<'_>) -> Result<i64> {
        let (table, position) = (self.table, self.position);
        tx.query_one(
            &format!("SELECT coalesce(max({position}), 0)::int8 FROM {table}"),
            &[],
        )
        .map(|r| r.get(0))
        .map_err(self.fail)
    }

    /// How many rows are at or below `at` (`below`), or above it.
    fn count(&self, tx: &mut Transaction<'_>, below: bool, at: i64) -> Result<i64> {
        let (table, position) = (self.table, self.position);
        let op = if below { "<=" } else { ">" };
        tx.query_one(
            &format!("SELECT count(*) FROM {table} WHERE {position} {op} $1"),
            &[&at],
        )
        .map(|r| r.get(0))
        .map_err(self.fail)
    }
}

/// How far the mirror has read, as its stamp says (nothing read: the default).
fn held(engine: &Engine) -> Result<Stamp> {
    Ok(engine
        .store()
        .meta(STAMP)?
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default())
}

/// Whether the newest mirrored event of `stream` is of `kind` with `data`: the row the
/// stamp names is still the one mirrored.
fn head_is(engine: &Engine, stream: &str, kind: &str, data: &serde_json::Value) -> bool {
    let store = engine.store();
    store.stream(stream).ok().flatten().is_some_and(|info| {
        store
            .event(&info, info.head)
            .ok()
            .flatten()
            .is_some_and(|e| e.kind == kind && e.data == *data)
    })
}

/// Records what the mirror reads (the first time) and makes `wanted` its reducer.
fn mark(
    engine: &mut Engine,
    spec: &Spec,
    format: &str,
    id_field: &str,
    seq_field: &str,
    wanted: &str,
) -> Result<()> {
    let fingerprint = engine.reducer(wanted)?.fingerprint().to_owned();
    engine.write(|engine| {
        let store = engine.store();
        if store.meta("source.format")?.is_none() {
            store.set_meta("source.format", format)?;
            store.set_meta("source.path", &spec.shown())?;
            store.set_meta(ID_FIELD, id_field)?;
            store.set_meta(super::SEQ_FIELD, seq_field)?;
        }
        super::use_reducer(store, wanted, &fingerprint)
    })
}

/// The mirror read another table before (the user named another with `rewind_table`).
fn other_table(spec: &Spec, held: &Stamp, table: &str) -> Option<Synced> {
    (held.notification_id > 0 && held.table != table).then(|| {
        rewritten(
            spec,
            &format!("the source now reads {table}, not {}", held.table),
        )
    })
}

fn rewritten(spec: &Spec, what: &str) -> Synced {
    Synced::Rebuild(Some(format!(
        "{}: {what}; its mirror was made again",
        spec.shown()
    )))
}

/// The reducer a Marten mirror uses while the user has set none: its events' data are the
/// changes, merged.
pub const MARTEN_UNSET: &str = "merge";

/// Brings the mirror up to date with a Marten event store, under the user's reducer.
pub(super) fn sync_marten(
    engine: &mut Engine,
    client: &mut Client,
    spec: &Spec,
    tables: &MartenTables,
    reducer: Option<&str>,
    progress: super::Progress<'_>,
) -> Result<Synced> {
    in_snapshot(client, spec, &tables.events_sql(), |tx| {
        sync_marten_in(engine, tx, spec, tables, reducer, progress)
    })
}

/// A Marten stream's name: its id, after its tenant where that is not the default one.
fn marten_stream(id: &str, tenant: Option<&str>) -> String {
    match tenant.filter(|t| !t.is_empty() && *t != "*DEFAULT*") {
        Some(tenant) => crate::source::name(&format!("{tenant}/{id}")),
        None => crate::source::name(id),
    }
}

fn sync_marten_in(
    engine: &mut Engine,
    tx: &mut Transaction<'_>,
    spec: &Spec,
    tables: &MartenTables,
    reducer: Option<&str>,
    progress: super::Progress<'_>,
) -> Result<Synced> {
    let table = tables.events_sql();
    let streams = tables.streams_sql();
    let fail = |e: postgres::Error| Error::Input(describe(spec, Some(&table), &e));
    let log = Ordered {
        table: &table,
        position: "seq_id",
        fail: &fail,
    };
    let wanted = reducer.unwrap_or(MARTEN_UNSET);
    let held = held(engine)?;
    if let Some(again) = other_table(spec, &held, &table) {
        return Ok(again);
    }
    let newest = log.newest(tx)?;
    if held.notification_id == newest && engine.store().default_reducer()? == wanted {
        return Ok(Synced::UpToDate);
    }
    if held.notification_id > 0 {
        if log.count(tx, true, held.notification_id)? != held.events {
            return Ok(rewritten(
                spec,
                "events already mirrored were removed or added among them",
            ));
        }
        let row = tx
            .query_opt(
                &format!(
                    "SELECT stream_id::text, tenant_id::text, type::text, data::text FROM {table} WHERE seq_id = $1"
                ),
                &[&held.notification_id],
            )
            .map_err(fail)?;
        let same = row.is_some_and(|row| {
            let stream = marten_stream(
                row.get::<_, Option<&str>>(0).unwrap_or_default(),
                row.get(1),
            );
            head_is(engine, &stream, row.get(2), &marten_data(row.get(3)))
        });
        if !same {
            return Ok(rewritten(
                spec,
                "an event already mirrored changed in the source",
            ));
        }
    }
    mark(engine, spec, "marten", "id", "seq_id", wanted)?;
    let todo = u64::try_from(log.count(tx, false, held.notification_id)?).unwrap_or(0);
    let portal = tx
        .bind(
            &format!(
                "SELECT e.seq_id, e.stream_id::text, e.tenant_id::text, e.version, e.type::text, e.data::text,
                        (extract(epoch FROM e.timestamp) * 1000000)::int8, e.id::text, s.type::text,
                        coalesce(e.is_archived, false)
                 FROM {table} e LEFT JOIN {streams} s ON s.id = e.stream_id
                 WHERE e.seq_id > $1 ORDER BY e.seq_id"
            ),
            &[&held.notification_id],
        )
        .map_err(fail)?;
    let mut stamp = Stamp {
        table: table.clone(),
        ..held
    };
    take_rows(
        engine,
        tx,
        &portal,
        &fail,
        &mut stamp,
        todo,
        progress,
        |engine, writer, row, stamp| {
            let seq: i64 = row.get(0);
            let stream = marten_stream(
                row.get::<_, Option<&str>>(1).unwrap_or_default(),
                row.get(2),
            );
            if let Some(kind) = row.get::<_, Option<&str>>(8)
                && engine.store().meta(&format!("{KIND}{stream}"))?.is_none()
            {
                engine.store().set_meta(&format!("{KIND}{stream}"), kind)?;
            }
            let mut meta = serde_json::json!({
                "seq_id": seq,
                "id": row.get::<_, Option<&str>>(7),
                "version": row.get::<_, i64>(3),
            });
            if row.get::<_, bool>(9)
                && let serde_json::Value::Object(fields) = &mut meta
            {
                fields.insert("archived".into(), true.into());
            }
            writer.push(
                engine,
                crate::model::NewEvent {
                    stream,
                    kind: crate::source::name(row.get::<_, &str>(4)),
                    data: marten_data(row.get(5)),
                    meta: Some(meta),
                    time: row.get(6),
                    idempotency_key: None,
                },
                None,
            )?;
            stamp.notification_id = seq;
            Ok(())
        },
    )
}

/// A Marten event's data (JSONB as text) as JSON; text that is not (it always is, from a
/// JSONB column) says so in place.
fn marten_data(text: Option<&str>) -> serde_json::Value {
    match text.map(serde_json::from_str::<serde_json::Value>) {
        Some(Ok(value)) if crate::reduce::depth(&value) <= crate::reduce::MAX_DEPTH => value,
        Some(Ok(_)) => serde_json::json!({"$unreadable": "the data nests too deep"}),
        Some(Err(e)) => serde_json::json!({"$unreadable": format!("not JSON: {e}")}),
        None => serde_json::Value::Null,
    }
}

/// Marten's own stream snapshots (`mt_streams.snapshot` at `snapshot_version`) against the
/// mirror's replay: those that differ are findings. Returns (equal, differing, not checked).
pub fn check_marten(
    spec: &Spec,
    engine: &mut Engine,
    only: Option<&str>,
    findings: &mut Vec<crate::snapshot::verify::Finding>,
) -> Result<(u64, u64, u64)> {
    let mut client = crate::source::postgres::take(spec).map_err(Error::Input)?;
    let mut found = find(&mut client, spec)?;
    found.retain(|f| matches!(f, Found::Marten(_)));
    let Found::Marten(tables) = choose(spec, found)? else {
        return Ok((0, 0, 0));
    };
    let streams = tables.streams_sql();
    let rows = client
        .query(
            &format!(
                "SELECT id::text, tenant_id::text, snapshot::text, snapshot_version::int8 FROM {streams}
                 WHERE snapshot IS NOT NULL AND snapshot_version IS NOT NULL ORDER BY 1"
            ),
            &[],
        )
        .map_err(|e| Error::Input(describe(spec, Some(&streams), &e)))?;
    crate::source::postgres::give_back(spec, client);
    let (mut equal, mut differ, mut unchecked) = (0, 0, 0);
    for row in rows {
        let stream = marten_stream(
            row.get::<_, Option<&str>>(0).unwrap_or_default(),
            row.get(1),
        );
        if only.is_some_and(|s| s != stream) {
            continue;
        }
        let stored = marten_data(row.get(2));
        let version = u64::try_from(row.get::<_, i64>(3)).unwrap_or(0);
        let replayed = match engine.state_at(&stream, crate::model::Target::Version(version)) {
            Ok(r) => r.state,
            Err(_) => {
                unchecked += 1;
                continue;
            }
        };
        if replayed.as_ref() == &stored {
            equal += 1;
        } else {
            differ += 1;
            findings.push(super::eventsourcing::finding(
                &stream,
                version,
                format!("the stream's snapshot in mt_streams (version {version}) is not the state the events give there"),
                crate::diff::changes(&stored, &replayed),
            ));
        }
    }
    Ok((equal, differ, unchecked))
}
