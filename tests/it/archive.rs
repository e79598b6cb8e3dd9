//! Archive: history before the horizon moves to DB.archive and every query still answers
//! exactly; killed at any step, afterwards each event is in exactly one place.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use rewind::engine::AppendOptions;
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000_000;

/// A stream with a year of daily events (times in 2025), snapshots every 30 events, and a
/// second stream of recent events.
fn db(dir: &Path) -> PathBuf {
    let path = dir.join("a.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    engine
        .set_policy(
            None,
            &rewind::engine::Policy {
                every: Some(30),
                ..Default::default()
            },
        )
        .unwrap();
    let start = rewind::time::parse("2025-01-01T00:00:00Z").unwrap();
    for day in 0..365i64 {
        let mut e = crate::support::ev(
            "old",
            "Day",
            json!({ "day": day, format!("m{}", day / 31): day }),
        );
        e.time = Some(start + day * DAY);
        e.idempotency_key = Some(format!("day-{day}"));
        engine.append(e, AppendOptions::default()).unwrap();
    }
    for i in 0..20 {
        crate::support::append(&mut engine, "recent", json!({ "i": i }));
    }
    path
}

fn answers(path: &Path) -> (Vec<Value>, String, Vec<u64>, usize) {
    let mut engine = Engine::new(Store::open(path, OpenMode::Existing).unwrap());
    let states = (0..=365)
        .map(|v| (*engine.state_at("old", Target::Version(v)).unwrap().state).clone())
        .collect();
    let export = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["export", path.to_str().unwrap()])
        .output()
        .unwrap();
    let start = rewind::time::parse("2025-01-01T00:00:00Z").unwrap();
    let at_times = (0..12)
        .map(|m| {
            engine
                .state_at("old", Target::Time(start + m * 30 * DAY + 1))
                .unwrap()
                .provenance
                .version
        })
        .collect();
    let stream = engine.store().require_stream("old").unwrap();
    let log = engine.store().events(&stream, 1, 365, 1000).unwrap().len();
    (
        states,
        String::from_utf8(export.stdout).unwrap(),
        at_times,
        log,
    )
}

fn seqs(path: &Path, table: &str) -> BTreeSet<i64> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare(&format!("SELECT seq FROM {table}")).unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn archive_file(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.archive", path.display()))
}

#[test]
fn history_before_the_horizon_moves_and_every_query_still_answers_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let before = answers(&path);
    let all = seqs(&path, "events");
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["archive", path.to_str().unwrap(), "--older-than", "30d"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let main = seqs(&path, "events");
    let archived = seqs(&archive_file(&path), "events");
    assert!(archived.len() >= 330, "{}", archived.len());
    assert!(main.is_disjoint(&archived));
    assert_eq!(main.union(&archived).copied().collect::<BTreeSet<_>>(), all);
    assert_eq!(answers(&path), before);
    let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    // An archived event's idempotency key still dedupes, and new events get new seqs.
    let mut retry = crate::support::ev("old", "Day", json!({"day": 3, "m0": 3}));
    retry.idempotency_key = Some("day-3".into());
    assert_eq!(
        engine
            .append(retry, AppendOptions::default())
            .unwrap()
            .duplicates,
        1
    );
    let fresh = crate::support::append(&mut engine, "old", json!({"after": "archive"}));
    assert!(fresh.seq > *all.iter().max().unwrap());
    assert!(
        rewind::snapshot::verify::verify(&path, None, &|_, _| {})
            .unwrap()
            .findings
            .is_empty()
    );
    let stats = rewind::snapshot::stats::stats(&mut engine).unwrap();
    assert_eq!(stats.archived_events, archived.len() as u64);
    // A backup carries the archive; the restored copy answers the same.
    let copy = dir.path().join("copy.db");
    rewind::snapshot::backup::backup(&path, &copy).unwrap();
    assert_eq!(answers(&copy).0, answers(&path).0);
}

#[test]
fn killed_at_any_step_every_event_ends_in_exactly_one_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let before = answers(&path);
    let all = seqs(&path, "events");
    for step in ["archive:1", "archive:2", "archive:3", "archive:2"] {
        let status = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(["archive", path.to_str().unwrap(), "--older-than", "30d"])
            .env("REWIND_CRASH_AT", step)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "{step}: not reached");
        // Opening for writing finishes the cleanup; reads are exact even before it.
        assert_eq!(answers(&path), before, "{step}");
        drop(Store::open(&path, OpenMode::Existing).unwrap());
        let main = seqs(&path, "events");
        let archived = if archive_file(&path).exists() {
            seqs(&archive_file(&path), "events")
        } else {
            BTreeSet::new()
        };
        assert!(
            main.is_disjoint(&archived),
            "{step}: {} in both",
            main.intersection(&archived).count()
        );
        assert_eq!(
            main.union(&archived).copied().collect::<BTreeSet<_>>(),
            all,
            "{step}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["archive", path.to_str().unwrap(), "--older-than", "30d"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(answers(&path), before);
    assert!(
        rewind::snapshot::verify::verify(&path, None, &|_, _| {})
            .unwrap()
            .findings
            .is_empty()
    );
}

#[test]
fn a_version_1_database_migrates_forward() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    crate::support::append(
        &mut Engine::new(Store::open(&path, OpenMode::Create).unwrap()),
        "s",
        json!({"a": 1}),
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("ALTER TABLE streams DROP COLUMN archived_upto; PRAGMA user_version = 1")
        .unwrap();
    drop(conn);
    let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    assert_eq!(
        *engine.state_at("s", Target::Head).unwrap().state,
        json!({"a": 1})
    );
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, rewind::store::SCHEMA_VERSION);
}

#[test]
fn a_stale_archive_run_cannot_move_the_boundary_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    let stream = engine.store().require_stream("old").unwrap();
    engine.store().attach_archive().unwrap();
    // Run A moves 1..=100; run B, planned before A finished, would move 1..=50.
    engine.store().copy_to_archive(stream.id, 0, 100).unwrap();
    engine.store().finish_archive(stream.id, 0, 100).unwrap();
    let err = engine.store().finish_archive(stream.id, 0, 50).unwrap_err();
    assert!(err.to_string().contains("another archive run"), "{err}");
    assert_eq!(
        engine.store().require_stream("old").unwrap().archived_upto,
        100
    );
}

#[test]
fn a_process_opened_before_the_archive_existed_still_sees_archived_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let mut early = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["archive", path.to_str().unwrap(), "--older-than", "30d"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut retry = crate::support::ev("old", "Day", json!({"day": 3, "m0": 3}));
    retry.idempotency_key = Some("day-3".into());
    assert_eq!(
        early
            .append(retry, AppendOptions::default())
            .unwrap()
            .duplicates,
        1
    );
    assert_eq!(
        early.state_at("old", Target::Version(3)).unwrap().state["day"],
        2
    );
}
