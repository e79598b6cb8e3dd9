//! Rows of a database written arbitrarily: a small database whose snapshot rows (and a few
//! event columns) are overwritten with arbitrary values. Every version's state is then the
//! plain fold of its events or an error naming what is wrong: never another state, never a
//! panic. A fork of the stream, which starts from the snapshots its base took, included.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::{Engine, Store, Target};
use serde_json::{Value, json};

const COLUMNS: [&str; 9] = [
    "version",
    "stream_id",
    "kind",
    "base_id",
    "raw_size",
    "checksum",
    "fingerprint",
    "blob",
    "stored_size",
];

fn value(bytes: &[u8]) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match bytes.first().map(|b| b % 4) {
        Some(0) => V::Integer(
            i64::from_le_bytes(
                bytes
                    .iter()
                    .copied()
                    .chain([0; 8])
                    .skip(1)
                    .take(8)
                    .collect::<Vec<_>>()
                    .try_into()
                    .expect("8"),
            ) >> (bytes.get(9).copied().unwrap_or(0) % 64),
        ),
        Some(1) => V::Text(String::from_utf8_lossy(&bytes[1..]).into_owned()),
        Some(2) => V::Blob(bytes[1..].to_vec()),
        _ => V::Null,
    }
}

/// RFC 7386, independently of the reducer under test.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let map = target.as_object_mut().expect("an object");
    for (key, value) in fields {
        if value.is_null() {
            map.remove(key);
        } else {
            merge(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

thread_local! {
    /// The database every input starts from (twelve merge events, a snapshot every third)
    /// and the state at each version by an independent fold: built once, copied per input.
    static TEMPLATE: (Store, Vec<(&'static str, Vec<Value>)>) = build();
}

fn append(engine: &mut Engine, stream: &str, data: Value) {
    let event = rewind::NewEvent {
        stream: stream.into(),
        kind: "E".into(),
        data,
        meta: None,
        time: None,
        idempotency_key: None,
    };
    engine
        .append(event, rewind::engine::AppendOptions::default())
        .expect("append");
}

fn build() -> (Store, Vec<(&'static str, Vec<Value>)>) {
    let mut engine = Engine::new(Store::open_in_memory().expect("memory"));
    let mut state = json!({});
    let mut truth: Vec<Value> = vec![state.clone()];
    for i in 1..=12_u64 {
        let patch = json!({ format!("k{}", i % 4): i, "n": i });
        merge(&mut state, &patch);
        truth.push(state.clone());
        append(&mut engine, "s", patch);
        if i % 3 == 0 {
            engine
                .take_snapshot("s", Target::Head, "manual", None)
                .expect("snapshot");
        }
    }
    // `f` continues `s` from version 6 with four events of its own, and one snapshot.
    engine.fork("f", "s", 6).expect("fork");
    let mut forked = truth[..=6].to_vec();
    let mut state = forked[6].clone();
    for i in 7..=10_u64 {
        let patch = json!({ "f": i, "n": i * 10 });
        merge(&mut state, &patch);
        forked.push(state.clone());
        append(&mut engine, "f", patch);
    }
    engine
        .take_snapshot("f", Target::Version(9), "manual", None)
        .expect("snapshot");
    (
        engine.store().copy_in_memory().expect("copy"),
        vec![("s", truth), ("f", forked)],
    )
}

fuzz_target!(|data: &[u8]| {
    let (mut engine, truth) = TEMPLATE.with(|(store, truth)| {
        (
            Engine::new(store.copy_in_memory().expect("copy")),
            truth.clone(),
        )
    });
    for chunk in data.chunks(24).take(16) {
        if chunk.len() < 3 {
            break;
        }
        let column = COLUMNS[usize::from(chunk[0]) % COLUMNS.len()];
        let row = i64::from(chunk[1] % 6);
        let _ = engine.store().execute_raw(
            &format!("UPDATE snapshots SET {column} = ?1 WHERE id = ?2"),
            rusqlite::params![value(&chunk[2..]), row],
        );
    }
    engine.clear_cache();
    for (stream, truth) in &truth {
        for (version, expected) in truth.iter().enumerate() {
            if let Ok(rec) = engine.state_at(stream, Target::Version(version as u64)) {
                assert_eq!(*rec.state, *expected, "{stream} v{version}");
            }
        }
    }
});
