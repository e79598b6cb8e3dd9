//! Backup while another writer appends, restore that verifies first, snapshot --all.

use std::path::Path;

use rewind::snapshot::{all, backup};
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::json;

use crate::support::append;

fn count(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_backup_taken_while_another_connection_appends_is_consistent_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let mut engine = Engine::new(Store::open(&db, OpenMode::Create).unwrap());
    for i in 0..300 {
        append(&mut engine, "s", json!({ "i": i }));
    }
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut engine = Engine::new(Store::open(&db, OpenMode::Existing).unwrap());
            for i in 300..1_300 {
                append(&mut engine, "s", json!({ "i": i }));
            }
        })
    };
    let copy = dir.path().join("copy.db");
    backup::backup(&db, &copy).unwrap();
    writer.join().unwrap();
    let events = count(&copy);
    assert!((300..=1_300).contains(&events), "{events}");
    let report = rewind::snapshot::verify::verify(&copy, None, &|_, _| {}).unwrap();
    assert_eq!(report.findings, vec![]);
    // The copy is a prefix of the history: its head is dense and its last state matches.
    let mut copied = Engine::new(Store::open(&copy, OpenMode::Existing).unwrap());
    let head = copied.store().require_stream("s").unwrap().head;
    assert_eq!(head as i64, events);
    assert_eq!(
        *copied.state_at("s", Target::Head).unwrap().state,
        json!({ "i": head - 1 })
    );
    assert!(
        backup::backup(&db, &copy).is_err(),
        "an existing file is never overwritten"
    );
}

#[test]
fn restore_verifies_the_backup_and_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let (db, bak) = (dir.path().join("db.db"), dir.path().join("db.bak"));
    let mut engine = Engine::new(Store::open(&db, OpenMode::Create).unwrap());
    for i in 0..150 {
        append(&mut engine, "s", json!({ "i": i }));
    }
    drop(engine);
    backup::backup(&db, &bak).unwrap();
    let mut engine = Engine::new(Store::open(&db, OpenMode::Existing).unwrap());
    append(&mut engine, "s", json!({ "after": "backup" }));
    drop(engine);
    let err = backup::restore(&bak, &db, false).unwrap_err();
    assert!(err.to_string().contains("pass --force"), "{err}");
    assert_eq!(count(&db), 151);
    let restored = backup::restore(&bak, &db, true).unwrap();
    assert_eq!((restored.events, count(&db)), (150, 150));

    // A backup that does not verify is refused and the database is left as it was.
    rusqlite::Connection::open(&bak)
        .unwrap()
        .execute_batch("UPDATE snapshots SET checksum = zeroblob(32)")
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    let err = backup::restore(&bak, &db, true).unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn snapshot_all_covers_every_stream_head_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("many.db");
    let mut engine = Engine::new(Store::open(&db, OpenMode::Create).unwrap());
    for i in 0..60 {
        append(&mut engine, &format!("s{}", i % 12), json!({ "i": i }));
    }
    drop(engine);
    let first = all::take_all(&db, Some("nightly")).unwrap();
    assert_eq!(first.len(), 12);
    assert!(first.iter().all(|(_, r)| {
        r.as_ref()
            .is_ok_and(|m| m.version == 5 && m.label.as_deref() == Some("nightly"))
    }));
    assert!(all::take_all(&db, None).unwrap().is_empty());
}
