//! A database and its copies read through a `[files]` mapping, fuzzed: a copy and the file
//! itself hold one table of arbitrary values (text, BLOBs, numbers, NULL, duplicate and odd
//! keys) and an order value that may be anything; the mirror is made or an error names the
//! file, never a panic, and where it is made the table's state at the head is the file's rows.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rusqlite::types::{Value, ValueRef};
use serde_json::{Map, json};

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

/// A file with a table `t (k PRIMARY KEY, v)` of `rows` and `_raft_meta`'s time `order`.
fn write(path: &Path, rows: &[(Value, Value)], order: Value, rowid: bool) {
    let _ = std::fs::remove_file(path);
    let conn = rusqlite::Connection::open(path).expect("file");
    conn.execute_batch(if rowid {
        "CREATE TABLE t (k, v); CREATE TABLE _raft_meta (key TEXT PRIMARY KEY, value);"
    } else {
        "CREATE TABLE t (k PRIMARY KEY, v); CREATE TABLE _raft_meta (key TEXT PRIMARY KEY, value);"
    })
    .expect("tables");
    for (k, v) in rows {
        // A key that repeats is refused by the table, as it would be by the program.
        let _ = conn.execute("INSERT INTO t VALUES (?1, ?2)", rusqlite::params![k, v]);
    }
    conn.execute(
        "INSERT INTO _raft_meta VALUES ('last_write_at', ?1)",
        [order],
    )
    .expect("meta");
}

/// The file's rows as the mapping keys them.
fn rows_of(path: &Path, rowid: bool) -> serde_json::Value {
    let conn = rusqlite::Connection::open(path).expect("file");
    let sql = if rowid {
        "SELECT rowid, k, v FROM t"
    } else {
        "SELECT k, k, v FROM t"
    };
    let mut stmt = conn.prepare(sql).expect("select");
    let mut rows = stmt.query([]).expect("rows");
    let mut out = Map::new();
    let json = |v: ValueRef<'_>| match v {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(n) => json!(n),
        ValueRef::Real(x) => serde_json::Number::from_f64(x)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => json!(format!(
            "x'{}'",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        )),
    };
    while let Some(row) = rows.next().expect("row") {
        let key = match row.get_ref(0).expect("key") {
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            other => match json(other) {
                serde_json::Value::String(s) => s,
                v => v.to_string(),
            },
        };
        out.insert(
            key,
            json!({"k": json(row.get_ref(1).expect("k")), "v": json(row.get_ref(2).expect("v"))}),
        );
    }
    serde_json::Value::Object(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let dir = tempfile_dir();
    let home = dir.join("home");
    // SAFETY of the environment: set before any thread of this process reads it.
    unsafe {
        std::env::set_var("REWIND_DATA_DIR", &home);
        std::env::set_var("REWIND_CONFIG_DIR", home.join("config"));
    }
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(dir.join("snapshots")).expect("folder");
    let rowid = pick % 2 == 1;
    // Rows split by 0xff, cells by 0xfe: the first half go into the copy, all into the file.
    let rows: Vec<(Value, Value)> = rest
        .split(|b| *b == 0xff)
        .take(16)
        .map(|row| {
            let mut cells = row.split(|b| *b == 0xfe).map(cell);
            (
                cells.next().unwrap_or(Value::Null),
                cells.next().unwrap_or(Value::Null),
            )
        })
        .collect();
    let copy = dir.join("snapshots/snapshot_1.db");
    let node = dir.join("node.db");
    let orders = [
        Value::Text("1769680800".into()),
        Value::Integer(1_769_680_900),
        cell(rest.get(..9).unwrap_or_default()),
    ];
    write(
        &copy,
        &rows[..rows.len() / 2],
        orders[usize::from(pick / 2) % 3].clone(),
        rowid,
    );
    write(
        &node,
        &rows,
        orders[usize::from(pick / 6) % 2].clone(),
        rowid,
    );
    let settings = rewind::source::settings::Settings {
        mapping: Some("seed-003".into()),
        ..Default::default()
    };
    rewind::source::settings::save(&node, &settings).expect("settings");
    match rewind::source::mirror::resolve(&node, None) {
        Ok(Some(mirrored)) => {
            let mut engine =
                rewind::Engine::open(&mirrored.path, rewind::OpenMode::ReadOnly).expect("mirror");
            let want = rows_of(&node, rowid);
            let got = match engine.state_at("t", rewind::Target::Head) {
                Ok(rec) => (*rec.state).clone(),
                // No row in any file: no stream.
                Err(_) => json!({}),
            };
            assert_eq!(got, want, "the head is the file's rows");
        }
        Ok(None) => panic!("a mapped source is mirrored"),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(".db"),
                "the error names the file: {message}"
            );
        }
    }
});

/// One folder for this process's runs.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rewind-fuzz-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp");
    dir
}
