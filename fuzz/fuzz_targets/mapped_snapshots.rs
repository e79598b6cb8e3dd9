//! A mapped source's own snapshots, fuzzed: rows of arbitrary values (text, BLOBs, numbers,
//! NULL) in the state, encoding, checksum, base and expiry columns, read through a mapping
//! with each position kind and checksum algorithm and checked against a stream's events,
//! never panic; every snapshot is counted once (agreeing, expired, unchecked or a finding),
//! and one that agrees names a version the stream has.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::engine::AppendOptions;
use rewind::source::mapping::Mapping;
use rewind::source::mirror::check_mapped_snapshots;
use rewind::store::Store;
use rewind::{Engine, NewEvent};
use rusqlite::types::Value;
use serde_json::json;

const ENCODINGS: [&str; 3] = ["json", "gzip+base64", "msgpack"];
const SUMS: [&str; 4] = [
    "",
    "checksum = \"c\"\nchecksum_algorithm = \"sha256\"",
    "checksum = \"c\"\nchecksum_algorithm = \"crc32\"",
    "checksum = \"c\"\nchecksum_algorithm = \"blake3\"",
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
    match tag % 6 {
        0 => Value::Text(String::from_utf8_lossy(rest).into_owned()),
        1 => Value::Blob(rest.to_vec()),
        // Small numbers, to land on versions, seqs and bases that exist.
        2 => Value::Integer(i64::from(rest.first().copied().unwrap_or(0) % 12) - 2),
        3 => Value::Integer(number()),
        4 => Value::Real(f64::from_bits(number().cast_unsigned())),
        _ => Value::Null,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    // A stream of eight events, each setting a field.
    let mut engine = Engine::new(Store::open_in_memory().expect("memory"));
    for n in 0..8 {
        engine
            .append(
                NewEvent {
                    stream: "s".into(),
                    kind: "set".into(),
                    data: json!({ "n": n, "k": { "v": n % 3 } }),
                    meta: None,
                    time: Some(1_000_000 * n),
                    idempotency_key: None,
                },
                AppendOptions::default(),
            )
            .expect("append");
    }
    let position = if pick % 2 == 0 {
        "version = \"p\""
    } else {
        "seq = \"p\""
    };
    let mapping = Mapping::parse(
        "fuzz.toml",
        &format!(
            "[events]\nquery = \"SELECT 1\"\nstream = \"a\"\ntype = \"b\"\ndata = \"c\"\n\
             [snapshots]\nquery = \"SELECT * FROM t\"\nstream = \"s\"\n{position}\nstate = \"d\"\n\
             state_encoding = \"{}\"\nencoding = \"e\"\n{}\nbase = \"b\"\nexpires = \"x\"\n{}\nid = \"i\"\n",
            ENCODINGS[usize::from(pick / 2) % 3],
            SUMS[usize::from(pick / 6) % 4],
            if pick / 24 % 2 == 0 { "" } else { "expires_format = \"epoch-s\"" },
        ),
    )
    .expect("a well-formed mapping");
    let conn = rusqlite::Connection::open_in_memory().expect("memory");
    conn.execute_batch("CREATE TABLE t (s, p, d, e, c, b, x, i)")
        .expect("table");
    // Rows split by 0xff, cells by 0xfe; the stream is "s" unless a row's first byte is odd.
    for row in rest.split(|b| *b == 0xff).take(12) {
        let (stream, cells) = match row.split_first() {
            Some((first, cells)) if first % 2 == 1 => (Value::Text("other".into()), cells),
            Some((_, cells)) => (Value::Text("s".into()), cells),
            None => (Value::Text("s".into()), row),
        };
        let mut values = vec![stream];
        values.extend(cells.split(|b| *b == 0xfe).take(7).map(cell));
        values.resize(8, Value::Null);
        conn.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params_from_iter(values),
        )
        .expect("insert");
    }
    let rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM t WHERE typeof(p) = 'integer'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    let all: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("count");
    let now = Some(4_000_000);
    let once = check_mapped_snapshots(&mut engine, &conn, &mapping, now, None);
    let again = check_mapped_snapshots(&mut engine, &conn, &mapping, now, None);
    match (&once, &again) {
        (Ok(checked), Ok(same)) => {
            assert_eq!(rows, all, "a position that is not an integer is an error");
            assert_eq!(
                checked.valid.len() as u64
                    + checked.expired
                    + checked.unchecked
                    + checked.findings.len() as u64,
                checked.total
            );
            assert_eq!(checked.total, rows.cast_unsigned());
            for (stream, version) in &checked.valid {
                assert!(stream == "s" && *version <= 8, "{stream} v{version}");
            }
            assert_eq!(checked.valid, same.valid);
            assert_eq!(checked.findings.len(), same.findings.len());
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("the same rows checked twice gave different outcomes"),
    }
});
