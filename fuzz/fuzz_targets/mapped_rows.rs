//! A mapping file and the rows it reads, both fuzzed: a mapping's text is read or refused
//! with a message, never a panic (for SQLite and for PostgreSQL, where a query may be given
//! per dialect); and a table of arbitrary values (text, BLOBs, numbers,
//! NULL) read through a mapping with each encoding and time format gives, row by row, an
//! event rewind can store (a stream and type it keeps, data within the depth bound) or an
//! error, the same each time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::source::mapping::{Columns, Dialect, Mapping};
use rusqlite::types::Value;

const ENCODINGS: [&str; 3] = ["json", "gzip+base64", "msgpack"];
const TIMES: [&str; 7] = [
    "",
    "time_format = \"rfc3339\"",
    "time_format = \"sql\"",
    "time_format = \"epoch-s\"",
    "time_format = \"epoch-ms\"",
    "time_format = \"epoch-us\"",
    "time_format = \"epoch-ns\"",
];

/// A cell: its first byte picks the type, the rest are its bytes.
fn cell(bytes: &[u8]) -> Value {
    let Some((&tag, rest)) = bytes.split_first() else {
        return Value::Null;
    };
    let number = || {
        let mut eight = [0u8; 8];
        for (slot, b) in eight.iter_mut().zip(rest) {
            *slot = *b;
        }
        i64::from_le_bytes(eight)
    };
    match tag % 5 {
        0 => Value::Text(String::from_utf8_lossy(rest).into_owned()),
        1 => Value::Blob(rest.to_vec()),
        2 => Value::Integer(number() >> (tag / 5 % 64)),
        3 => Value::Real(f64::from_bits(number().cast_unsigned())),
        _ => Value::Null,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    // Up to the first NUL: a mapping's text of its own, read or refused.
    let split = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    let (text, cells) = rest.split_at(split);
    let text = String::from_utf8_lossy(text);
    let sqlite = Mapping::parse("fuzz.toml", &text);
    if let Ok(read) = &sqlite {
        // What a mirror depends on: the same text, the same hash.
        assert_eq!(read.hash(), read.hash());
    }
    // Read for PostgreSQL (a query may be given per dialect): the same mapping but for the
    // queries a dialect table gives.
    if let (Ok(lite), Ok(server)) = (&sqlite, Mapping::parse_for("fuzz.toml", &text, Dialect::Postgres)) {
        assert_eq!(lite.hash(), server.hash());
        assert_eq!(lite.streams.as_ref().map(|s| &s.stream), server.streams.as_ref().map(|s| &s.stream));
        assert_eq!(lite.events.as_ref().map(|e| &e.data), server.events.as_ref().map(|e| &e.data));
    }
    let mapping = Mapping::parse(
        "fuzz.toml",
        &format!(
            "[events]\nquery = \"SELECT * FROM t\"\nstream = \"s\"\ntype = \"k\"\ndata = \"d\"\n\
             data_encoding = \"{}\"\nmeta = \"m\"\nmeta_encoding = \"{}\"\ntime = \"t\"\n{}\n\
             version = \"v\"\nseq = \"q\"\nid = \"i\"\n",
            ENCODINGS[usize::from(pick) % 3],
            ENCODINGS[usize::from(pick / 3) % 3],
            TIMES[usize::from(pick / 9) % 7],
        ),
    )
    .expect("a well-formed mapping");
    let conn = rusqlite::Connection::open_in_memory().expect("memory");
    conn.execute_batch("CREATE TABLE t (s, k, d, m, t, v, q, i)")
        .expect("table");
    // The rest: rows split by 0xff, cells by 0xfe.
    for row in cells
        .get(1..)
        .unwrap_or_default()
        .split(|b| *b == 0xff)
        .take(8)
    {
        let mut values: Vec<Value> = row.split(|b| *b == 0xfe).take(8).map(cell).collect();
        values.resize(8, Value::Null);
        conn.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params_from_iter(values),
        )
        .expect("insert");
    }
    let mut stmt = conn.prepare("SELECT * FROM t").expect("select");
    let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let columns = Columns::find(&mapping, &names).expect("every column is there");
    let read =
        |stmt: &mut rusqlite::Statement<'_>| -> Vec<Result<rewind::source::mapping::Row, String>> {
            let mut rows = stmt.query([]).expect("query");
            let mut out = Vec::new();
            while let Some(row) = rows.next().expect("row") {
                out.push(columns.read(&mapping, row));
            }
            out
        };
    let first = read(&mut stmt);
    assert_eq!(first, read(&mut stmt));
    // Read as the mirror reads them (the values taken on one thread, decoded on another):
    // the same events and the same errors.
    let mut rows = stmt.query([]).expect("query");
    let mut by_values = Vec::new();
    while let Some(row) = rows.next().expect("row") {
        let values: Vec<Value> = (0..8).map(|i| row.get(i).expect("a value")).collect();
        by_values.push(columns.read_values(&mapping, &values));
    }
    drop(rows);
    assert_eq!(first, by_values);
    for row in first.into_iter().flatten() {
        rewind::store::check_name("stream name", &row.stream).expect("a stream rewind keeps");
        rewind::store::check_name("event type", &row.kind).expect("a type rewind keeps");
        assert!(rewind::reduce::depth(&row.data) <= rewind::reduce::MAX_DEPTH);
        if let Some(meta) = &row.meta {
            assert!(rewind::reduce::depth(meta) <= rewind::reduce::MAX_DEPTH);
        }
    }
});
