//! `verify` finds every kind of problem it claims to, and nothing on a sound database.

use std::path::{Path, PathBuf};

use rewind::snapshot::verify::{FindingKind, Report, verify};
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::json;

use crate::support::append;

fn db(events: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    for i in 1..=events {
        append(&mut engine, "s", json!({ format!("k{}", i % 5): i }));
        append(&mut engine, "t", json!({ "n": i }));
    }
    (dir, path)
}

fn run(path: &Path) -> Report {
    verify(path, None, &|_, _| {}).unwrap()
}

fn sql(path: &Path, statement: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(statement)
        .unwrap();
}

fn kinds(report: &Report) -> Vec<(String, Option<u64>, FindingKind)> {
    report
        .findings
        .iter()
        .map(|f| (f.stream.clone(), f.version, f.kind))
        .collect()
}

#[test]
fn a_sound_database_has_no_findings() {
    let (_dir, path) = db(250);
    let report = run(&path);
    assert_eq!(report.findings, vec![]);
    assert_eq!(
        (report.streams, report.snapshots, report.events),
        (2, 4, 500)
    );
}

#[test]
fn corrupt_and_stale_snapshots_are_found() {
    let (_dir, path) = db(250);
    let s = "(SELECT id FROM streams WHERE name = 's')";
    sql(
        &path,
        &format!(
            "UPDATE snapshots SET checksum = zeroblob(32) WHERE stream_id = {s} AND version = 100"
        ),
    );
    sql(
        &path,
        &format!(
            "UPDATE snapshots SET fingerprint = 'replace' WHERE stream_id = {s} AND version = 200"
        ),
    );
    assert_eq!(
        kinds(&run(&path)),
        vec![
            ("s".into(), Some(100), FindingKind::Corrupt),
            ("s".into(), Some(200), FindingKind::Stale)
        ]
    );
}

#[test]
fn a_snapshot_that_reads_fine_but_differs_from_the_replay_is_a_divergence_with_its_diff() {
    let (_dir, path) = db(150);
    let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    let mut wrong = (*engine.state_at("s", Target::Version(100)).unwrap().state).clone();
    wrong["k0"] = json!("tampered");
    // A well-formed snapshot of the wrong state: right checksum for its bytes, wrong content.
    let fingerprint = engine.reducer("merge").unwrap().fingerprint().to_string();
    let place = rewind::codec::binding("s", 100, &fingerprint, "full", None);
    let encoded = rewind::codec::encode(&wrong, 0, &place).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE snapshots SET blob = ?1, checksum = ?2, raw_size = ?3, kind = 'full', base_id = NULL
         WHERE version = 100 AND stream_id = (SELECT id FROM streams WHERE name = 's')",
        rusqlite::params![encoded.blob, &encoded.checksum[..], encoded.raw_size as i64],
    )
    .unwrap();
    let report = run(&path);
    assert_eq!(
        kinds(&report),
        vec![("s".into(), Some(100), FindingKind::Divergence)]
    );
    assert_eq!(
        report.findings[0].diff,
        vec![rewind::diff::Change::Changed {
            path: "/k0".into(),
            from: json!("tampered"),
            to: json!(100)
        }]
    );
}

#[test]
fn a_missing_version_and_seq_out_of_order_break_the_chain() {
    let (_dir, path) = db(20);
    sql(
        &path,
        "DELETE FROM events WHERE version = 7 AND stream_id = (SELECT id FROM streams WHERE name = 's')",
    );
    let report = run(&path);
    // The hash chain breaks at the event after the gap as well.
    assert_eq!(
        kinds(&report),
        vec![
            ("s".into(), Some(7), FindingKind::Chain),
            ("s".into(), Some(8), FindingKind::Hash)
        ]
    );
    assert!(
        report.findings[0].detail.contains("missing version 7"),
        "{}",
        report.findings[0].detail
    );

    let (_dir, path) = db(20);
    sql(
        &path,
        "INSERT INTO events (seq, stream_id, version, type, ts, data)
         SELECT 0, stream_id, 21, type, ts, data FROM events WHERE version = 20 AND stream_id = (SELECT id FROM streams WHERE name = 't');
         UPDATE streams SET head = 21 WHERE name = 't'",
    );
    assert_eq!(
        kinds(&run(&path)),
        vec![
            ("t".into(), Some(21), FindingKind::Chain),
            ("t".into(), Some(21), FindingKind::Hash)
        ]
    );

    // Both at once, before a snapshot: the replay stops at the gap, and the seq found out
    // of order on the way there is reported too.
    let (_dir, path) = db(20);
    let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    engine
        .take_snapshot("t", Target::Version(15), "manual", None)
        .unwrap();
    drop(engine);
    sql(
        &path,
        "DELETE FROM events WHERE version IN (3, 10) AND stream_id = (SELECT id FROM streams WHERE name = 't');
         INSERT INTO events (seq, stream_id, version, type, ts, data)
         SELECT 0, stream_id, 3, type, ts, data FROM events WHERE version = 2 AND stream_id = (SELECT id FROM streams WHERE name = 't')",
    );
    let mut found = kinds(&run(&path));
    found.sort_by_key(|(_, version, _)| *version);
    assert_eq!(
        found,
        vec![
            ("t".into(), Some(3), FindingKind::Chain),
            // The copy at v3 has no chain value, and v4's no longer follows.
            ("t".into(), Some(3), FindingKind::Hash),
            ("t".into(), Some(4), FindingKind::Hash),
            ("t".into(), Some(10), FindingKind::Chain)
        ]
    );
}

#[test]
fn an_event_the_reducer_cannot_apply_is_found_at_its_version() {
    let (_dir, path) = db(30);
    sql(
        &path,
        "UPDATE streams SET reducer = 'patch' WHERE name = 't'",
    );
    let report = run(&path);
    assert!(
        kinds(&report).contains(&("t".into(), Some(1), FindingKind::Reduce)),
        "{:?}",
        report.findings
    );
}

#[test]
fn the_cli_exits_one_on_findings_and_zero_without() {
    let (_dir, path) = db(120);
    let bin = env!("CARGO_BIN_EXE_rewind");
    let out = std::process::Command::new(bin)
        .args(["verify", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no problems found"));
    sql(&path, "UPDATE snapshots SET blob = substr(blob, 1, 10)");
    let out = std::process::Command::new(bin)
        .args(["verify", path.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"].as_array().unwrap().len(), 2);
    assert_eq!(report["findings"][0]["kind"], "corrupt");
}

#[test]
fn verify_finds_nothing_while_others_append_snapshot_compact_and_archive() {
    // Many small streams, events dated in the past so that archive has work, snapshots
    // every 5 events; writers and an archiver run while verify checks again and again.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let start = rewind::time::parse("2025-01-01T00:00:00Z").unwrap();
    let append_round = |engine: &mut Engine, round: i64| {
        for s in 0..40 {
            let mut e = crate::support::ev(&format!("s{s:02}"), "E", json!({ "r": round, "s": s }));
            e.time = Some(start + round * 3_600_000_000);
            engine
                .append(e, rewind::engine::AppendOptions::default())
                .unwrap();
        }
    };
    {
        let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
        engine
            .set_policy(
                None,
                &rewind::engine::Policy {
                    every: Some(5),
                    ..Default::default()
                },
            )
            .unwrap();
        for round in 0..10 {
            append_round(&mut engine, round);
        }
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
            for round in 10..60 {
                append_round(&mut engine, round);
                if round % 7 == 0 {
                    let rules = rewind::model::Rules {
                        keep_last: Some(2),
                        ..Default::default()
                    };
                    rewind::snapshot::compact::compact(&mut engine, None, &rules, false).unwrap();
                }
            }
        });
        let archiver = scope.spawn(|| {
            let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
            // Each run moves what has been covered by a snapshot older than a day.
            for _ in 0..12 {
                let now = engine.store().now_us().unwrap();
                rewind::snapshot::archive::archive(
                    &mut engine,
                    now - start - 20 * 3_600_000_000,
                    now,
                )
                .unwrap();
            }
        });
        let mut runs = 0;
        while !(writer.is_finished() && archiver.is_finished()) || runs < 3 {
            let report = run(&path);
            assert!(
                report.findings.is_empty(),
                "run {runs}: {:?}",
                kinds(&report)
            );
            runs += 1;
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let report = run(&path);
    assert!(report.findings.is_empty(), "{:?}", kinds(&report));
    assert!(report.events >= 2400, "{}", report.events);
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .output()
        .unwrap()
}

fn state_json(path: &Path, stream: &str, at: u64) -> serde_json::Value {
    let out = cli(&[
        "state",
        path.to_str().unwrap(),
        stream,
        "--at",
        &at.to_string(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Streams `s` and `t` of 20 events each, every event a new key, full snapshots every 5 and a
/// delta at 12.
fn placed(dir: &Path) -> PathBuf {
    let path = dir.join("placed.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    let quiet = rewind::engine::AppendOptions {
        no_snapshots: true,
        ..Default::default()
    };
    for i in 1..=20 {
        for (stream, scale) in [("s", 1), ("t", 100)] {
            let mut data = json!({ format!("k{i}"): i * scale });
            if i == 1 {
                data["pad"] = pad();
            }
            let event = crate::support::ev(stream, "Set", data);
            engine.append(event, quiet).unwrap();
            if i % 5 == 0 && i < 20 {
                engine
                    .take_snapshot(stream, Target::Head, "manual", None)
                    .unwrap();
            }
        }
    }
    let policy = rewind::engine::Policy {
        full_every: Some(8),
        ..Default::default()
    };
    engine.set_policy(Some("s"), &policy).unwrap();
    engine.take_policy_snapshot("s", "count").unwrap();
    path
}

/// Enough varied data that a delta is a small part of its base.
fn pad() -> serde_json::Value {
    (0..400_u64)
        .map(|n| json!(format!("item-{n}-{}", n * 7919 % 1000)))
        .collect()
}

fn truth(path: &Path, stream: &str, at: u64) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    if at > 0 {
        map.insert("pad".into(), pad());
    }
    let scale = if stream == "s" { 1 } else { 100 };
    for i in 1..=at {
        map.insert(format!("k{i}"), json!(i * scale));
    }
    let _ = path;
    serde_json::Value::Object(map)
}

#[test]
fn a_snapshot_moved_to_another_version_stream_or_base_is_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = placed(dir.path());
    let is_delta = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row(
            "SELECT kind FROM snapshots WHERE version = 20 AND stream_id = (SELECT id FROM streams WHERE name = 's')",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap()
    };
    assert_eq!(is_delta, "delta", "the fixture has a delta at s v20");
    for (what, tamper, stream, at) in [
        (
            "version - 1",
            "UPDATE snapshots SET version = version - 1 WHERE version = 10 AND stream_id = (SELECT id FROM streams WHERE name = 's')",
            "s",
            9,
        ),
        (
            "another stream",
            "UPDATE snapshots SET stream_id = (SELECT id FROM streams WHERE name = 't'), version = 11
             WHERE version = 10 AND stream_id = (SELECT id FROM streams WHERE name = 's')",
            "t",
            11,
        ),
        (
            "another base",
            "UPDATE snapshots SET base_id = (SELECT id FROM snapshots WHERE version = 10 AND stream_id = (SELECT id FROM streams WHERE name = 's'))
             WHERE version = 20 AND stream_id = (SELECT id FROM streams WHERE name = 's')",
            "s",
            20,
        ),
    ] {
        let copy = dir.path().join(format!("{}.db", what.replace(' ', "_")));
        std::fs::copy(&path, &copy).unwrap();
        sql(&copy, tamper);
        let got = state_json(&copy, stream, at);
        assert_eq!(got["state"], truth(&copy, stream, at), "{what}: the replay's state");
        // Skipped, with why (a delta given another base may not even decompress).
        let faults = got["provenance"]["faults"].as_array().unwrap();
        assert!(
            faults.iter().any(|f| f["version"] == json!(at)),
            "{what}: {faults:?}"
        );
        let report = run(&copy);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.stream == stream && f.version == Some(at) && f.kind == FindingKind::Corrupt),
            "{what}: {:?}",
            kinds(&report)
        );
    }
}

#[test]
fn an_upgrade_binds_the_snapshots_that_equal_their_replay_and_reports_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = placed(dir.path());
    // The file as rewind wrote it before snapshots were bound: schema 3, checksums of the
    // content alone. Then one snapshot moved down a version, which that schema cannot see.
    {
        let engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut legacy = Vec::new();
        for snap in engine.store().snapshots(None).unwrap() {
            let name = engine.store().stream_name(snap.stream_id).unwrap().unwrap();
            let blob = engine.store().snapshot_blob(snap.id).unwrap();
            let bytes = if snap.kind == "full" {
                let place =
                    rewind::codec::binding(&name, snap.version, &snap.fingerprint, "full", None);
                rewind::codec::canonical_bytes(&blob, snap.raw_size, &snap.checksum, &place)
                    .unwrap()
            } else {
                let state = engine.decode_snapshot(&snap, &snap.fingerprint).unwrap();
                rewind::codec::canonical(&state)
            };
            legacy.push((snap.id, rewind::codec::checksum(&[], &bytes)));
        }
        for (id, sum) in legacy {
            conn.execute(
                "UPDATE snapshots SET checksum = ?2 WHERE id = ?1",
                rusqlite::params![id, &sum[..]],
            )
            .unwrap();
        }
        conn.execute_batch(crate::support::BEFORE_CHAINS).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 3;
             UPDATE snapshots SET version = version - 1 WHERE version = 10 AND stream_id = (SELECT id FROM streams WHERE name = 's');",
        )
        .unwrap();
    }
    // Read as it is, the old file trusts the moved snapshot (what the upgrade fixes).
    let old = state_json(&path, "s", 9);
    assert_ne!(old["state"], truth(&path, "s", 9), "{old}");
    // The first write command upgrades it and binds every snapshot but the moved one.
    let out = cli(&["policy", path.to_str().unwrap(), "--every", "50"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state_json(&path, "s", 9)["state"], truth(&path, "s", 9));
    for (stream, at, from) in [("s", 17, 15), ("t", 18, 15), ("s", 20, 20), ("s", 12, 5)] {
        let got = state_json(&path, stream, at);
        assert_eq!(got["state"], truth(&path, stream, at));
        assert_eq!(
            got["provenance"]["snapshot"],
            json!(from),
            "{stream} v{at}: {got}"
        );
    }
    let report = run(&path);
    assert_eq!(
        kinds(&report),
        vec![("s".to_string(), Some(9), FindingKind::Corrupt)],
        "the moved snapshot is reported, nothing else"
    );
    let logged: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT detail FROM maintenance_log WHERE action = 'bind'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(logged.contains("\"version\":9"), "{logged}");
}
