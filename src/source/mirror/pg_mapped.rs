//! A PostgreSQL database read through a mapping file: each of the mapping's queries (its
//! PostgreSQL text, `[events.query] postgres = …` where it gives one per dialect) run on the
//! server, and its rows staged into a table named after its section (`events`, `snapshots`,
//! `streams`, `now`, `pending`) in a file of rewind's own beside the mirror; the mapping is
//! then read over those tables as over an SQLite file's ([`super::mapped`]), so events,
//! snapshots, unfinished streams and pending work are the same code for both.
//!
//! Values are staged as SQLite holds them: integers, floats, text and bytes as they are, a
//! boolean as 0 or 1, a time in the format the mapping gives for its column (the events'
//! `time_format`, the snapshots' `expires_format`, every time of `[streams]` in its
//! `now_format`, so that its `unfinished` condition compares like with like; RFC 3339 in UTC
//! elsewhere), and anything else (JSON, UUIDs, numerics, arrays) as PostgreSQL's text for it.
//!
//! Events with a `seq` column are staged incrementally, in its order, a batch at a time with
//! how far it got; rows removed or added at or below the newest staged have them all staged
//! again. Without a `seq`, and for the other queries, every sync reads the rows again.

use std::path::{Path, PathBuf};

use postgres::types::Type;
use postgres::{Client, Transaction};
use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;

use crate::error::{Error, Result};
use crate::source::mapping::{Mapping, TimeFormat};
use crate::source::postgres::{Spec, describe};

use super::postgres::in_snapshot;

/// Rows fetched from the server, and staged, at a time.
const BATCH: i32 = 2_000;

/// Where a server source's rows are staged, beside its mirror.
pub fn staged_path(mirror: &Path) -> PathBuf {
    super::pg_langgraph::staged_path(mirror)
}

/// Opens (making it where it is not there) the staged file of a mirror.
pub fn open_staged(path: &Path) -> Result<Connection> {
    super::pg_langgraph::staged_file(
        path,
        "CREATE TABLE IF NOT EXISTS staged (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    )
}

/// The mapping as read over the staged tables: each query reads its section's table.
pub fn over_staged(mapping: &Mapping) -> Mapping {
    let mut staged = mapping.clone();
    if let Some(events) = &mut staged.events {
        events.query = "SELECT * FROM \"events\"".into();
    }
    if let Some(snapshots) = &mut staged.snapshots {
        snapshots.query = "SELECT * FROM \"snapshots\"".into();
    }
    if let Some(streams) = &mut staged.streams {
        streams.query = "SELECT * FROM \"streams\"".into();
        if streams.now.is_some() {
            streams.now = Some("SELECT * FROM \"now\"".into());
        }
    }
    if let Some(pending) = &mut staged.pending {
        pending.query = "SELECT * FROM \"pending\"".into();
    }
    staged
}

/// How far the events are staged: the mapping they were staged by (hashed), how many, and
/// the newest one's seq.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    mapping: String,
    count: i64,
    seq: Option<i64>,
}

/// Brings the staged tables up to date with what the mapping's queries give on the server.
pub fn stage(
    client: &mut Client,
    spec: &Spec,
    mapping: &Mapping,
    staged: &Connection,
    progress: super::Progress<'_>,
) -> Result<()> {
    let Some(events) = &mapping.events else {
        return Err(Error::Input(mapping.error(
            "files",
            "reads an SQLite database and its copies; a PostgreSQL source is read by an [events] query",
        )));
    };
    in_snapshot(client, spec, "the mapping's queries", |tx| {
        let stager = Stager {
            spec,
            mapping,
            staged,
        };
        stager.events(tx, &events.query, progress)?;
        let time_of = |section: &str, column: &str| match section {
            "snapshots" => mapping
                .snapshots
                .as_ref()
                .filter(|s| s.expires.as_deref() == Some(column))
                .map(|s| s.expires_format.unwrap_or(TimeFormat::Rfc3339)),
            _ => None,
        };
        if let Some(snapshots) = &mapping.snapshots {
            stager.whole(tx, "snapshots", &snapshots.query, &time_of)?;
        }
        if let Some(streams) = &mapping.streams {
            let at_now = |_: &str, _: &str| Some(streams.now_format.unwrap_or(TimeFormat::Sql));
            stager.whole(tx, "streams", &streams.query, &at_now)?;
            if let Some(now) = &streams.now {
                stager.whole(tx, "now", now, &at_now)?;
            }
        }
        if let Some(pending) = &mapping.pending {
            stager.whole(tx, "pending", &pending.query, &|_, _| None)?;
        }
        Ok(())
    })
}

struct Stager<'a> {
    spec: &'a Spec,
    mapping: &'a Mapping,
    staged: &'a Connection,
}

/// How a column of a query is read: its name, and the expression that gives it as staged.
struct Column {
    name: String,
    expression: String,
}

impl Stager<'_> {
    fn server(&self, key: &str, e: &postgres::Error) -> Error {
        let said = describe(self.spec, None, e);
        Error::Input(self.mapping.error(key, said))
    }

    fn local(&self, e: rusqlite::Error) -> Error {
        Error::Input(format!("staging {}: {e}", self.spec.shown()))
    }

    /// The query's columns, each with the expression that reads it as staged.
    fn columns(
        &self,
        tx: &mut Transaction<'_>,
        key: &str,
        query: &str,
        time: &dyn Fn(&str) -> Option<TimeFormat>,
    ) -> Result<Vec<Column>> {
        let statement = tx
            .prepare(&wrapped(query))
            .map_err(|e| self.server(key, &e))?;
        Ok(statement
            .columns()
            .iter()
            .map(|c| Column {
                name: c.name().to_owned(),
                expression: staged_as(
                    &format!("q.{}", quoted(c.name())),
                    c.type_(),
                    time(c.name()),
                ),
            })
            .collect())
    }

    /// Makes the staged table `table` with `columns`, emptied.
    fn table(&self, table: &str, columns: &[Column]) -> Result<()> {
        let names = columns
            .iter()
            .map(|c| quoted(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        self.staged
            .execute_batch(&format!(
                "DROP TABLE IF EXISTS {0}; CREATE TABLE {0} ({names});",
                quoted(table)
            ))
            .map_err(|e| self.local(e))
    }

    /// Stages every row `query` gives into `table`, replacing what it held.
    fn whole(
        &self,
        tx: &mut Transaction<'_>,
        table: &str,
        query: &str,
        time: &dyn Fn(&str, &str) -> Option<TimeFormat>,
    ) -> Result<()> {
        let key = format!("{table}.query");
        let columns = self.columns(tx, &key, query, &|column| time(table, column))?;
        let select = select(&columns, query, "");
        let local = self
            .staged
            .unchecked_transaction()
            .map_err(|e| self.local(e))?;
        self.table(table, &columns)?;
        let rows = tx.query(&select, &[]).map_err(|e| self.server(&key, &e))?;
        insert(&local, table, columns.len(), &rows).map_err(|e| self.local(e))?;
        local.commit().map_err(|e| self.local(e))
    }

    /// Stages the events: with a seq, those above the newest staged (all again where what is
    /// staged is no longer what the server gives); without, all of them.
    fn events(
        &self,
        tx: &mut Transaction<'_>,
        query: &str,
        progress: super::Progress<'_>,
    ) -> Result<()> {
        let Some(events) = &self.mapping.events else {
            return Ok(());
        };
        let key = "events.query";
        let time = |column: &str| {
            (events.time.as_deref() == Some(column))
                .then(|| events.time_format.unwrap_or(TimeFormat::Rfc3339))
        };
        let columns = self.columns(tx, key, query, &time)?;
        let hash = self.mapping.hash();
        let mut held: Stamp = self
            .staged
            .query_row("SELECT value FROM staged WHERE key = 'events'", [], |r| {
                r.get::<_, String>(0)
            })
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let Some(seq) = events.seq.as_deref() else {
            let select = select(&columns, query, "");
            self.table("events", &columns)?;
            let rows = tx.query(&select, &[]).map_err(|e| self.server(key, &e))?;
            let local = self
                .staged
                .unchecked_transaction()
                .map_err(|e| self.local(e))?;
            insert(&local, "events", columns.len(), &rows).map_err(|e| self.local(e))?;
            return local.commit().map_err(|e| self.local(e));
        };
        let seq_sql = format!("q.{}", quoted(seq));
        let inner = query.trim().trim_end_matches(';');
        let count = |tx: &mut Transaction<'_>, op: &str, at: i64| -> Result<i64> {
            tx.query_one(
                &format!("SELECT count(*) FROM (\n{inner}\n) AS q WHERE {seq_sql} {op} $1::int8"),
                &[&at],
            )
            .map(|r| r.get(0))
            .map_err(|e| self.server(key, &e))
        };
        let fresh = held.mapping != hash
            || held.seq.is_none()
            || count(tx, "<=", held.seq.unwrap_or(i64::MIN))? != held.count;
        if fresh {
            self.table("events", &columns)?;
            held = Stamp {
                mapping: hash,
                count: 0,
                seq: None,
            };
        }
        let after = held.seq.unwrap_or(i64::MIN);
        let todo = u64::try_from(count(tx, ">", after)?).unwrap_or(0);
        let seq_at = columns.iter().position(|c| c.name == seq).ok_or_else(|| {
            Error::Input(self.mapping.error(
                "events.seq",
                format!("names column {seq:?}, which events.query does not return"),
            ))
        })?;
        let portal = tx
            .bind(
                &select(
                    &columns,
                    query,
                    &format!("WHERE {seq_sql} > $1::int8 ORDER BY {seq_sql}"),
                ),
                &[&after],
            )
            .map_err(|e| self.server(key, &e))?;
        let mut done = 0u64;
        loop {
            let rows = tx
                .query_portal(&portal, BATCH)
                .map_err(|e| self.server(key, &e))?;
            let Some(last) = rows.last() else {
                break;
            };
            let last_seq = match value(last, seq_at) {
                SqlValue::Integer(n) => n,
                other => {
                    return Err(Error::Input(self.mapping.error(
                        "events.seq",
                        format!("column {seq:?} holds {other:?}, not an integer"),
                    )));
                }
            };
            let local = self
                .staged
                .unchecked_transaction()
                .map_err(|e| self.local(e))?;
            insert(&local, "events", columns.len(), &rows).map_err(|e| self.local(e))?;
            held.count += i64::try_from(rows.len()).unwrap_or(0);
            held.seq = Some(last_seq);
            local
                .execute(
                    "INSERT OR REPLACE INTO staged (key, value) VALUES ('events', ?1)",
                    [serde_json::to_string(&held).unwrap_or_default()],
                )
                .map_err(|e| self.local(e))?;
            local.commit().map_err(|e| self.local(e))?;
            crate::failpoint::point("postgres.batch");
            done += rows.len() as u64;
            progress(done, todo.max(done));
        }
        if fresh {
            self.staged
                .execute(
                    "INSERT OR REPLACE INTO staged (key, value) VALUES ('events', ?1)",
                    [serde_json::to_string(&held).unwrap_or_default()],
                )
                .map_err(|e| self.local(e))?;
        }
        Ok(())
    }
}

/// The user's query as a subquery named `q`.
fn wrapped(query: &str) -> String {
    let query = query.trim().trim_end_matches(';');
    format!("SELECT * FROM (\n{query}\n) AS q")
}

/// The statement that reads the query's columns as staged, with `rest` (a condition and an
/// order) after it.
fn select(columns: &[Column], query: &str, rest: &str) -> String {
    let query = query.trim().trim_end_matches(';');
    let list = columns
        .iter()
        .map(|c| c.expression.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT {list} FROM (\n{query}\n) AS q {rest}")
}

/// `name` quoted as an SQL identifier (for both SQLite and PostgreSQL).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The expression that reads `column` (of type `kind`) as it is staged; a time in `time`'s
/// format where given, else RFC 3339 in UTC.
fn staged_as(column: &str, kind: &Type, time: Option<TimeFormat>) -> String {
    let zoned = *kind == Type::TIMESTAMPTZ;
    if zoned || *kind == Type::TIMESTAMP {
        let utc = if zoned {
            format!("({column} AT TIME ZONE 'UTC')")
        } else {
            column.to_owned()
        };
        let epoch = format!("extract(epoch FROM {column})");
        return match time.unwrap_or(TimeFormat::Rfc3339) {
            TimeFormat::Rfc3339 => {
                format!("to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
            }
            TimeFormat::Sql => format!("to_char({utc}, 'YYYY-MM-DD HH24:MI:SS.US')"),
            TimeFormat::EpochS => format!("{epoch}::float8"),
            TimeFormat::EpochMs => format!("round({epoch} * 1000)::int8"),
            TimeFormat::EpochUs => format!("round({epoch} * 1000000)::int8"),
            TimeFormat::EpochNs => format!("round({epoch} * 1000000)::int8 * 1000"),
        };
    }
    if [
        Type::BOOL,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::BYTEA,
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
    ]
    .contains(kind)
    {
        column.to_owned()
    } else {
        format!("{column}::text")
    }
}

/// A staged row's value at `i`, as SQLite holds it.
fn value(row: &postgres::Row, i: usize) -> SqlValue {
    let kind = row.columns()[i].type_().clone();
    let got = match kind {
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map(|v| v.map(|b| SqlValue::Integer(i64::from(b)))),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map(|v| v.map(|n| SqlValue::Integer(n.into()))),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map(|v| v.map(|n| SqlValue::Integer(n.into()))),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map(|v| v.map(SqlValue::Integer)),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map(|v| v.map(|x| SqlValue::Real(x.into()))),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)
            .map(|v| v.map(SqlValue::Real)),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)
            .map(|v| v.map(SqlValue::Blob)),
        _ => row
            .try_get::<_, Option<String>>(i)
            .map(|v| v.map(SqlValue::Text)),
    };
    got.ok().flatten().unwrap_or(SqlValue::Null)
}

/// Stages `rows` into `table`.
fn insert(
    conn: &Connection,
    table: &str,
    width: usize,
    rows: &[postgres::Row],
) -> rusqlite::Result<()> {
    let marks = (1..=width)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut statement =
        conn.prepare_cached(&format!("INSERT INTO {} VALUES ({marks})", quoted(table)))?;
    for row in rows {
        let values: Vec<SqlValue> = (0..width).map(|i| value(row, i)).collect();
        statement.execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}
