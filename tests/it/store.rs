//! The store on real SQLite files: refusing what is not ours, append-only events,
//! idempotency, optimistic concurrency, two writers at once, a held lock.

use std::path::Path;

use rewind::engine::AppendOptions;
use rewind::{Engine, Error, OpenMode, Store};
use serde_json::json;

use crate::support::{append, engine, ev};

fn file_engine(path: &Path) -> Engine {
    Engine::new(Store::open(path, OpenMode::Create).unwrap())
}

#[test]
fn missing_file_is_not_created_by_readers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.db");
    let err = Store::open(&path, OpenMode::Existing).err().unwrap();
    assert!(matches!(err, Error::Missing(_)), "{err}");
    assert!(err.to_string().contains("nope.db"));
    assert!(!path.exists());
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let junk = b"these are my notes, not a database\n".repeat(100);
    std::fs::write(&path, &junk).unwrap();
    for mode in [OpenMode::Existing, OpenMode::Create] {
        let err = Store::open(&path, mode).err().unwrap();
        assert!(err.to_string().contains("not an SQLite file"), "{err}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), junk);
}

#[test]
fn another_programs_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let err = Store::open(&path, OpenMode::Create).err().unwrap();
    assert!(err.to_string().contains("another program"), "{err}");
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(Store::open(&path, OpenMode::Create).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path, OpenMode::Existing).err().unwrap();
    assert!(matches!(err, Error::NewerSchema { found: 99, .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn reopening_keeps_events_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    append(&mut file_engine(&path), "s", json!({"a": 1}));
    let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    assert_eq!(
        *engine.state_at("s", rewind::Target::Head).unwrap().state,
        json!({"a": 1})
    );
}

#[test]
fn the_database_refuses_to_update_an_event() {
    let mut engine = engine();
    append(&mut engine, "s", json!({"a": 1}));
    let err = engine
        .store()
        .execute_raw("UPDATE events SET data = '{}' WHERE version = 1", [])
        .unwrap_err();
    assert!(format!("{err:#}").contains("database error"), "{err:#}");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("append-only"), "{cause}");
}

#[test]
fn seq_increases_across_streams_and_versions_are_dense_per_stream() {
    let mut engine = engine();
    let mut last_seq = 0;
    for i in 0..30 {
        let e = append(&mut engine, ["a", "b", "c"][i % 3], json!({"i": i}));
        assert!(e.seq > last_seq);
        last_seq = e.seq;
        assert_eq!(e.version, (i / 3 + 1) as u64);
    }
}

#[test]
fn a_retried_append_with_the_same_key_returns_the_original() {
    let mut engine = engine();
    let mut event = ev("s", "Paid", json!({"paid": true}));
    event.idempotency_key = Some("pay-1".into());
    let first = engine
        .append(event.clone(), AppendOptions::default())
        .unwrap();
    let again = engine.append(event, AppendOptions::default()).unwrap();
    assert_eq!(again.duplicates, 1);
    assert_eq!(again.appended, 0);
    assert_eq!(again.events[0], first.events[0]);
    assert_eq!(engine.store().require_stream("s").unwrap().head, 1);
}

#[test]
fn a_reused_idempotency_key_with_other_content_is_an_error_naming_the_key() {
    let mut db = engine();
    let mut paid = ev("order-1", "OrderPaid", json!({"status": "paid"}));
    paid.idempotency_key = Some("pay-order-1".into());
    let first = db.append(paid.clone(), AppendOptions::default()).unwrap();
    // The same content again is a retry: the original comes back.
    let retry = db.append(paid.clone(), AppendOptions::default()).unwrap();
    assert_eq!((retry.duplicates, &retry.events[0]), (1, &first.events[0]));
    for (what, mut other) in [
        ("data", paid.clone()),
        ("stream", paid.clone()),
        ("type", paid.clone()),
        ("meta", paid.clone()),
    ] {
        match what {
            "data" => other.data = json!({"status": "refunded"}),
            "stream" => other.stream = "order-2".into(),
            "type" => other.kind = "OrderRefunded".into(),
            _ => other.meta = Some(json!({"by": "bot"})),
        }
        let err = db
            .append(other, AppendOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(r#"idempotency key "pay-order-1""#) && err.contains(what),
            "{what}: {err}"
        );
    }
    assert_eq!(db.store().event_totals().unwrap().0, 1);
}

#[test]
fn a_stale_expected_version_is_a_conflict() {
    let mut engine = engine();
    append(&mut engine, "s", json!({"a": 1}));
    let options = AppendOptions {
        expected_version: Some(0),
        no_snapshots: false,
    };
    let err = engine.append(ev("s", "T", json!({})), options).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: 0,
                actual: 1,
                ..
            }
        ),
        "{err}"
    );
    let ok = AppendOptions {
        expected_version: Some(1),
        no_snapshots: false,
    };
    assert_eq!(
        engine.append(ev("s", "T", json!({})), ok).unwrap().events[0].version,
        2
    );
}

#[test]
fn control_characters_in_names_are_refused_in_data_kept() {
    let mut engine = engine();
    let err = engine
        .append(
            ev("bad\u{1b}[2Jname", "T", json!({})),
            AppendOptions::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("U+001B"), "{err}");
    let e = append(
        &mut engine,
        "ok",
        json!({"text": "bell\u{7} esc\u{1b}[31m"}),
    );
    let stored = engine
        .store()
        .event(&engine.store().require_stream("ok").unwrap(), e.version)
        .unwrap()
        .unwrap();
    assert_eq!(stored.data, json!({"text": "bell\u{7} esc\u{1b}[31m"}));
}

#[test]
fn two_writers_at_once_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    drop(Store::open(&path, OpenMode::Create).unwrap());
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
                for i in 0..200 {
                    append(&mut engine, "shared", json!({"writer": w, "i": i}));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    let stream = engine.store().require_stream("shared").unwrap();
    assert_eq!(stream.head, 400);
    let events = engine.store().events(&stream, 1, 400, 1000).unwrap();
    let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=400).collect::<Vec<_>>());
    let mut seen: Vec<(i64, i64)> = events
        .iter()
        .map(|e| {
            (
                e.data["writer"].as_i64().unwrap(),
                e.data["i"].as_i64().unwrap(),
            )
        })
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 400);
}

#[test]
fn a_lock_held_past_the_busy_timeout_is_a_clear_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.db");
    append(&mut file_engine(&path), "s", json!({"a": 1}));
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    engine.store_mut().set_busy_timeout(50).unwrap();
    let err = engine
        .append(ev("s", "T", json!({"a": 2})), AppendOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Locked { waited_ms: 50 }), "{err}");
    assert!(err.to_string().contains("locked by another process"));
    holder.execute_batch("COMMIT").unwrap();
    append(&mut engine, "s", json!({"a": 3}));
    assert_eq!(
        *engine.state_at("s", rewind::Target::Head).unwrap().state,
        json!({"a": 3})
    );
    assert_eq!(engine.store().require_stream("s").unwrap().head, 2);
}

#[test]
fn a_rolled_back_write_leaves_no_cached_state_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ghost.db");
    let mut engine = file_engine(&path);
    for i in 0..95 {
        append(&mut engine, "s", json!({ "i": i }));
    }
    // One batch: a ghost event, then a conflict; the whole batch rolls back.
    let err = engine.write(|engine| {
        engine.append(
            ev("s", "T", json!({"ghost": true})),
            AppendOptions::default(),
        )?;
        engine.state_at("s", rewind::Target::Head)?;
        engine.append(
            ev("s", "T", json!({})),
            AppendOptions {
                expected_version: Some(0),
                no_snapshots: false,
            },
        )
    });
    assert!(matches!(err, Err(Error::Conflict { .. })));
    for i in 95..105 {
        append(&mut engine, "s", json!({ "i": i }));
    }
    // Neither the cached state nor the v100 policy snapshot may carry the ghost.
    assert!(
        engine
            .state_at("s", rewind::Target::Version(96))
            .unwrap()
            .state
            .get("ghost")
            .is_none()
    );
    let mut fresh = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    let rec = fresh.state_at("s", rewind::Target::Version(100)).unwrap();
    assert_eq!(rec.provenance.snapshot, Some(100));
    assert!(rec.state.get("ghost").is_none(), "{}", rec.state);
}

#[test]
fn a_refused_append_inside_a_callers_transaction_leaves_nothing_and_blocks_nothing() {
    let mut engine = engine();
    append(&mut engine, "s", json!({"a": 1}));
    engine
        .write(|engine| {
            let refused = engine.append(
                ev("s", "T", json!({"a": 2})),
                AppendOptions {
                    expected_version: Some(7),
                    no_snapshots: false,
                },
            );
            assert!(refused.is_err());
            engine.append(ev("s", "T", json!({"a": 3})), AppendOptions::default())
        })
        .unwrap();
    let stream = engine.store().require_stream("s").unwrap();
    assert_eq!(stream.head, 2);
    assert_eq!(engine.store().events(&stream, 1, 10, 10).unwrap().len(), 2);
    append(&mut engine, "s", json!({"a": 4}));
    assert_eq!(
        *engine.state_at("s", rewind::Target::Head).unwrap().state,
        json!({"a": 4})
    );
}

#[test]
fn several_processes_creating_one_file_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || Store::open(&path, OpenMode::Create).map(|_| ()))
        })
        .collect();
    for o in openers {
        o.join().unwrap().unwrap();
    }
}

#[test]
fn a_foreign_database_with_a_schema_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("theirs.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path, OpenMode::Existing).err().unwrap();
    assert!(
        err.to_string().contains("without rewind's application id"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_full_disk_is_a_clear_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    let mut engine = file_engine(&path);
    for i in 0..50 {
        append(&mut engine, "s", json!({ "i": i }));
    }
    // Let the file grow by a few pages only: the next big import cannot fit.
    let pages: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    engine
        .store()
        .execute_batch_raw(&format!("PRAGMA max_page_count = {}", pages + 2))
        .unwrap();
    let big = (0..5_000).map(|i| {
        Ok(rewind::engine::ImportItem {
            at: format!("line {i}"),
            event: ev("s", "T", json!({ "i": i, "pad": "x".repeat(100) })),
            version: None,
        })
    });
    let err = engine.import(big, false).unwrap_err();
    let text = rewind::error::describe(&err);
    assert!(
        text.contains("disk is full") && text.contains("nothing of this write was stored"),
        "{text}"
    );
    drop(engine);
    let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    assert_eq!(engine.store().require_stream("s").unwrap().head, 50);
    assert_eq!(
        *engine.state_at("s", rewind::Target::Head).unwrap().state,
        json!({ "i": 49 })
    );
    assert!(
        rewind::snapshot::verify::verify(&path, None, &|_, _| {})
            .unwrap()
            .findings
            .is_empty()
    );
}

#[test]
fn a_copy_in_memory_reads_the_same_and_changes_apart_from_the_original() {
    let mut original = engine();
    for i in 0..5 {
        append(&mut original, "s", json!({ "i": i }));
    }
    original
        .take_snapshot("s", rewind::Target::Version(3), "manual", Some("three"))
        .unwrap();
    let mut copy = Engine::new(original.store().copy_in_memory().unwrap());
    let state =
        |e: &mut Engine, v| (*e.state_at("s", rewind::Target::Version(v)).unwrap().state).clone();
    for v in 0..=5 {
        assert_eq!(state(&mut copy, v), state(&mut original, v), "v{v}");
    }
    assert_eq!(
        copy.store().snapshots(None).unwrap().len(),
        original.store().snapshots(None).unwrap().len()
    );
    append(&mut copy, "s", json!({ "i": 99 }));
    assert_eq!(state(&mut copy, 6), json!({ "i": 99 }));
    let head = |e: &Engine| e.store().streams().unwrap()[0].head;
    assert_eq!((head(&copy), head(&original)), (6, 5));
}
