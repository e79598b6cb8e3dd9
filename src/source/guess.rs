//! A first mapping guessed from an SQLite schema (`rewind map SOURCE`): the table most like
//! an event log (a column of JSON, a stream or id column, an order, a time, a type), judged
//! by the columns' names and declared types and by the values of its first rows, printed as
//! a mapping file with a comment on each part it could not guess and each guess to check.

use rusqlite::Connection;
use rusqlite::types::ValueRef;

/// What the first rows of a column hold.
#[derive(Debug, Default, Clone)]
struct Column {
    name: String,
    declared: String,
    /// Values seen that are JSON objects or arrays (text or BLOB).
    json: usize,
    /// Text values seen.
    text: usize,
    /// Integer values seen.
    integers: usize,
    /// Text that reads as an RFC 3339 time / an SQL datetime.
    rfc3339: usize,
    sql_time: usize,
    /// The largest integer seen.
    largest: i64,
    /// Distinct values seen (of the first rows).
    distinct: std::collections::HashSet<String>,
    /// Values seen, NULL included.
    seen: usize,
}

/// How many rows of each table are looked at.
const SAMPLE: usize = 50;

/// A mapping's text for the database, with comments; an error if it has no table at all.
pub fn guess(conn: &Connection, source: &str) -> Result<String, String> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| format!("{source}: cannot list its tables: {e}"))?;
    if tables.is_empty() {
        return Err(format!("{source}: holds no table to read events from"));
    }
    let mut best: Option<(i64, String, Vec<Column>, i64)> = None;
    for table in &tables {
        let Ok(columns) = sample(conn, table) else {
            continue;
        };
        let rows: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {}", ident(table)), [], |r| {
                r.get(0)
            })
            .unwrap_or(0);
        let score = score(&columns);
        if best.as_ref().is_none_or(|(s, ..)| score > *s) {
            best = Some((score, table.clone(), columns, rows));
        }
    }
    let Some((_, table, columns, rows)) = best else {
        return Err(format!("{source}: none of its tables could be read"));
    };
    Ok(render(source, &table, &columns, rows, &tables))
}

/// A name quoted for SQL.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sample(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Column>> {
    let mut columns: Vec<Column> = conn
        .prepare(&format!(
            "SELECT name, type FROM pragma_table_info({})",
            quoted_text(table)
        ))?
        .query_map([], |r| {
            Ok(Column {
                name: r.get(0)?,
                declared: r
                    .get::<_, Option<String>>(1)?
                    .unwrap_or_default()
                    .to_lowercase(),
                ..Column::default()
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare(&format!("SELECT * FROM {} LIMIT {SAMPLE}", ident(table)))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        for (i, column) in columns.iter_mut().enumerate() {
            let Ok(value) = row.get_ref(i) else { continue };
            column.seen += 1;
            match value {
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    let text = String::from_utf8_lossy(t);
                    let trimmed = text.trim_start();
                    if (trimmed.starts_with('{') || trimmed.starts_with('['))
                        && serde_json::from_str::<serde_json::Value>(&text).is_ok()
                    {
                        column.json += 1;
                    }
                    if matches!(value, ValueRef::Text(_)) {
                        column.text += 1;
                        if crate::time::parse(&text).is_ok() {
                            column.rfc3339 += 1;
                        } else if text.trim().parse::<jiff::civil::DateTime>().is_ok() {
                            column.sql_time += 1;
                        }
                    }
                    if column.distinct.len() < SAMPLE {
                        column.distinct.insert(text.into_owned());
                    }
                }
                ValueRef::Integer(n) => {
                    column.integers += 1;
                    column.largest = column.largest.max(n);
                    column.distinct.insert(n.to_string());
                }
                ValueRef::Real(_) | ValueRef::Null => {}
            }
        }
    }
    // Tables without rows are judged by their names and declared types alone.
    Ok(columns)
}

/// A text literal for SQL.
fn quoted_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn named(column: &Column, names: &[&str]) -> bool {
    let name = column.name.to_lowercase();
    names.iter().any(|n| name == *n)
}

fn ends_with(column: &Column, suffixes: &[&str]) -> bool {
    let name = column.name.to_lowercase();
    suffixes.iter().any(|s| name.ends_with(s))
}

const DATA: [&str; 6] = ["data", "payload", "body", "event_data", "state", "content"];
const STREAM: [&str; 9] = [
    "stream",
    "stream_id",
    "aggregate_id",
    "entity_id",
    "thread_id",
    "agent_id",
    "task_id",
    "workflow_id",
    "originator_id",
];
const SEQ: [&str; 6] = [
    "seq",
    "sequence",
    "global_seq",
    "position",
    "notification_id",
    "offset",
];
const VERSION: [&str; 4] = [
    "version",
    "originator_version",
    "stream_version",
    "revision",
];
const TYPE: [&str; 6] = ["type", "event_type", "kind", "event", "topic", "name"];
const TIME: [&str; 7] = [
    "created_at",
    "timestamp",
    "ts",
    "time",
    "occurred_at",
    "recorded_at",
    "updated_at",
];

fn is_json(c: &Column) -> bool {
    c.json > 0 && c.json * 2 >= c.seen.max(1) || (c.seen == 0 && c.declared.contains("json"))
}

fn data_column(columns: &[Column]) -> Option<&Column> {
    columns
        .iter()
        .filter(|c| is_json(c))
        .max_by_key(|c| (named(c, &DATA), c.json))
}

fn stream_column(columns: &[Column]) -> Option<&Column> {
    columns.iter().find(|c| named(c, &STREAM)).or_else(|| {
        columns
            .iter()
            .find(|c| ends_with(c, &["_id"]) && c.text > 0 && c.distinct.len() < c.seen.max(1))
    })
}

fn seq_column(columns: &[Column]) -> Option<&Column> {
    columns
        .iter()
        .find(|c| named(c, &SEQ) && (c.integers > 0 || c.seen == 0))
}

fn version_column(columns: &[Column]) -> Option<&Column> {
    columns
        .iter()
        .find(|c| named(c, &VERSION) && (c.integers > 0 || c.seen == 0))
}

fn type_column(columns: &[Column]) -> Option<&Column> {
    columns
        .iter()
        .find(|c| named(c, &TYPE) && (c.text > 0 || c.seen == 0))
        .or_else(|| {
            columns
                .iter()
                .find(|c| ends_with(c, &["_type", "_kind"]) && c.text > 0)
        })
}

fn time_column(columns: &[Column]) -> Option<&Column> {
    columns
        .iter()
        .find(|c| c.rfc3339 + c.sql_time > 0 && named(c, &TIME))
        .or_else(|| columns.iter().find(|c| named(c, &TIME)))
        .or_else(|| columns.iter().find(|c| c.rfc3339 + c.sql_time > 0))
}

fn id_column(columns: &[Column]) -> Option<&Column> {
    columns
        .iter()
        .find(|c| named(c, &["id", "event_id", "uuid"]))
}

/// How much a table looks like an event log.
fn score(columns: &[Column]) -> i64 {
    let mut score = 0;
    if data_column(columns).is_some() {
        score += 8;
    }
    if type_column(columns).is_some() {
        score += 4;
    }
    if stream_column(columns).is_some() {
        score += 4;
    }
    if seq_column(columns).is_some() || version_column(columns).is_some() {
        score += 2;
    }
    if time_column(columns).is_some() {
        score += 1;
    }
    score
}

/// The time format a column's values show, and a comment where it is a guess to check.
fn time_format(c: &Column) -> (Option<&'static str>, Option<String>) {
    if c.rfc3339 > 0 && c.rfc3339 >= c.sql_time {
        return (Some("rfc3339"), None);
    }
    if c.sql_time > 0 {
        return (Some("sql"), Some("SQL datetimes are read as UTC".into()));
    }
    if c.integers > 0 {
        // Seconds, ms, µs or ns since the epoch, by the size of the largest value seen.
        let unit = match c.largest {
            n if n < 100_000_000_000 => "epoch-s",
            n if n < 100_000_000_000_000 => "epoch-ms",
            n if n < 100_000_000_000_000_000 => "epoch-us",
            _ => "epoch-ns",
        };
        return (
            Some(unit),
            Some(format!(
                "numbers that look like {unit}: check the unit, rewind never guesses it on reading"
            )),
        );
    }
    (None, None)
}

fn render(source: &str, table: &str, columns: &[Column], rows: i64, tables: &[String]) -> String {
    let mut out = String::new();
    let mut missing = Vec::new();
    out.push_str(&format!(
        "# A first mapping for {source}, guessed from its schema and its first rows:\n\
         # the table {table:?} ({rows} rows) looks most like a log of events.\n"
    ));
    let others: Vec<&String> = tables.iter().filter(|t| *t != table).collect();
    if !others.is_empty() {
        out.push_str(&format!(
            "# Its other tables: {}.\n",
            others
                .iter()
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push_str("# Check each part, then: rewind open SOURCE --map THIS_FILE.toml\n\n");
    out.push_str("# How each stream's events make its state: merge (RFC 7386), patch, replace, or jq:FILTER.\nreducer = \"merge\"\n\n[events]\n");
    let names: Vec<String> = columns.iter().map(|c| ident(&c.name)).collect();
    out.push_str(&format!(
        "query = \"\"\"\nSELECT {}\nFROM {}\n\"\"\"\n",
        names.join(", "),
        ident(table)
    ));
    let part = |out: &mut String,
                missing: &mut Vec<String>,
                key: &str,
                column: Option<&Column>,
                why: &str| match column {
        Some(c) => out.push_str(&format!("{key} = {:?}\n", c.name)),
        None => {
            out.push_str(&format!("# {key} = \"COLUMN\"  # {why}\n"));
            missing.push(key.to_owned());
        }
    };
    part(
        &mut out,
        &mut missing,
        "stream",
        stream_column(columns),
        "no column looks like a stream or an entity's id",
    );
    part(
        &mut out,
        &mut missing,
        "seq",
        seq_column(columns),
        "no global order column (seq, sequence, position …): rows are read in the query's order",
    );
    part(
        &mut out,
        &mut missing,
        "version",
        version_column(columns),
        "no version column: each stream's events are counted in order",
    );
    part(
        &mut out,
        &mut missing,
        "type",
        type_column(columns),
        "no column looks like an event's type",
    );
    let data = data_column(columns);
    part(
        &mut out,
        &mut missing,
        "data",
        data,
        "no column holds JSON in its first rows",
    );
    if data.is_some() {
        out.push_str("data_encoding = \"json\"\n");
    }
    let time = time_column(columns);
    part(
        &mut out,
        &mut missing,
        "time",
        time,
        "no column looks like a time",
    );
    if let Some(time) = time {
        match time_format(time) {
            (Some(format), None) => out.push_str(&format!("time_format = {format:?}\n")),
            (Some(format), Some(note)) => {
                out.push_str(&format!("time_format = {format:?}  # {note}\n"));
            }
            (None, _) => out.push_str(
                "# time_format = \"rfc3339\"  # its first rows held no value to tell by\n",
            ),
        }
    }
    part(
        &mut out,
        &mut missing,
        "id",
        id_column(columns),
        "no id column: --at-id uses the seq, or the position",
    );
    let required = ["stream", "type", "data"];
    let unguessed: Vec<&String> = missing
        .iter()
        .filter(|m| required.contains(&m.as_str()))
        .collect();
    if !unguessed.is_empty() {
        out.push_str(&format!(
            "\n# Not guessed, and needed: {}. Name their columns above before using this mapping.\n",
            unguessed.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_table_is_found_and_each_part_guessed_or_commented() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO users (name) VALUES ('ann'), ('bob');
             CREATE TABLE agent_events (id INTEGER PRIMARY KEY, seq INTEGER, agent_id TEXT,
               event_type TEXT, data JSON, created_at TIMESTAMP);
             INSERT INTO agent_events (seq, agent_id, event_type, data, created_at) VALUES
               (3, 'a', 'Started', '{\"x\":1}', '2026-02-08 10:00:00'),
               (5, 'a', 'Stopped', '{\"x\":2}', '2026-02-08 10:00:01'),
               (6, 'b', 'Started', '{\"y\":1}', '2026-02-08 10:00:02');",
        )
        .unwrap();
        let text = guess(&conn, "m.db").unwrap();
        let mapping = crate::source::mapping::Mapping::parse("guessed", &text).unwrap();
        let e = mapping.events.as_ref().unwrap();
        assert_eq!(
            (
                e.stream.as_str(),
                e.seq.as_deref(),
                e.kind.as_str(),
                e.data.as_str()
            ),
            ("agent_id", Some("seq"), "event_type", "data")
        );
        assert_eq!(e.time.as_deref(), Some("created_at"));
        assert_eq!(e.time_format, Some(crate::source::mapping::TimeFormat::Sql));
        assert!(text.contains("\"users\""), "{text}");
        assert!(text.contains("# version"), "{text}");
    }

    #[test]
    fn a_table_with_nothing_like_events_says_what_is_needed() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER, b REAL); INSERT INTO t VALUES (1, 2.0);")
            .unwrap();
        let text = guess(&conn, "m.db").unwrap();
        assert!(
            text.contains("Not guessed, and needed: stream, type, data"),
            "{text}"
        );
        let empty = Connection::open_in_memory().unwrap();
        assert!(guess(&empty, "m.db").unwrap_err().contains("no table"));
    }
}
