//! Forks: a stream that continues another from a version reads its versions up to there
//! through that stream (stored once), and reads in every way exactly as the same history
//! copied into a stream of its own would: events, states, browsing, search, times, seqs,
//! the chain, export; through an archive of the stream it continues and two forks deep.

use std::path::Path;

use rewind::engine::{AppendOptions, Policy};
use rewind::model::StreamInfo;
use rewind::store::Walk;
use rewind::{Engine, NewEvent, OpenMode, Store, Target};
use serde_json::{Value, json};

/// Event times: one a second from a fixed start, so both files have the same ones.
const START: i64 = 1_700_000_000_000_000;

/// The event at position `n` of the history: a few types, a field changed, a growing list,
/// a meta id (a source's own, as mirrors keep them).
fn event(stream: &str, n: u64, branch: &str) -> NewEvent {
    NewEvent {
        stream: stream.into(),
        kind: ["Added", "Renamed", "Moved"][(n % 3) as usize].into(),
        data: json!({ "count": n, "by": branch, format!("k{}", n % 5): [n, branch] }),
        meta: Some(json!({ "id": format!("{branch}-{n}") })),
        time: Some(START + i64::try_from(n).unwrap() * 1_000_000),
        idempotency_key: None,
    }
}

fn push(engine: &mut Engine, event: NewEvent) {
    engine.append(event, AppendOptions::default()).unwrap();
}

/// The history in both files: `p` 1..=40 (its own 1..=25 shared by `c`), `c` continuing `p`
/// from 25 with 26..=35, `g` continuing `c` from 30 with 31..=36. In the forked file `c` and
/// `g` are forks; in the copied one, streams with every event of theirs.
fn build(path: &Path, forked: bool) -> Engine {
    let mut engine = Engine::new(Store::open(path, OpenMode::Create).unwrap());
    engine
        .set_policy(
            None,
            &Policy {
                every: Some(8),
                ..Policy::default()
            },
        )
        .unwrap();
    for n in 1..=25 {
        push(&mut engine, event("p", n, "p"));
    }
    if forked {
        engine.fork("c", "p", 25).unwrap();
    } else {
        for n in 1..=25 {
            push(&mut engine, event("c", n, "p"));
        }
    }
    for n in 26..=40 {
        push(&mut engine, event("p", n, "p"));
    }
    for n in 26..=30 {
        push(&mut engine, event("c", n, "c"));
    }
    if forked {
        engine.fork("g", "c", 30).unwrap();
    } else {
        for n in 1..=25 {
            push(&mut engine, event("g", n, "p"));
        }
        for n in 26..=30 {
            push(&mut engine, event("g", n, "c"));
        }
    }
    for n in 31..=35 {
        push(&mut engine, event("c", n, "c"));
    }
    for n in 31..=36 {
        push(&mut engine, event("g", n, "g"));
    }
    engine
}

/// Events without their seq (the one thing a copy has its own of).
fn unseq(events: Vec<rewind::Event>) -> Vec<Value> {
    events
        .into_iter()
        .map(|e| {
            json!([
                e.stream,
                e.version,
                e.kind,
                e.ts,
                e.data,
                e.meta,
                e.idempotency_key
            ])
        })
        .collect()
}

/// Everything a reader asks of a stream, as one value to compare.
fn every_read(engine: &mut Engine, name: &str) -> Value {
    let stream: StreamInfo = engine.store().require_stream(name).unwrap();
    let store = engine.store();
    let mut reads = serde_json::Map::new();
    reads.insert(
        "events".into(),
        json!(unseq(
            store.events(&stream, 1, stream.head, usize::MAX).unwrap()
        )),
    );
    reads.insert(
        "paged".into(),
        json!(unseq(store.events(&stream, 20, 33, 7).unwrap())),
    );
    let mut per_version = Vec::new();
    for v in 0..=stream.head + 1 {
        let mut row = serde_json::Map::new();
        row.insert(
            "event".into(),
            json!(unseq(
                store.event(&stream, v).unwrap().into_iter().collect()
            )),
        );
        row.insert("ts".into(), json!(store.event_ts(&stream, v).unwrap()));
        for (forward, inclusive) in [(true, true), (true, false), (false, true), (false, false)] {
            for kind in [None, Some("Ren"), Some("!Ren")] {
                let walk = Walk {
                    stream: Some(&stream),
                    kind,
                };
                let near = store.neighbours(&walk, v, forward, inclusive, 4).unwrap();
                row.insert(
                    format!("near {forward} {inclusive} {kind:?}"),
                    json!(
                        near.iter()
                            .map(|e| (e.version, e.kind.clone(), e.ts))
                            .collect::<Vec<_>>()
                    ),
                );
            }
        }
        for needle in ["\"by\":\"c\"", "Moved", "k3"] {
            row.insert(
                format!("find {needle}"),
                json!([
                    store.find_event(&stream, v, true, needle).unwrap(),
                    store.find_event(&stream, v, false, needle).unwrap()
                ]),
            );
        }
        let at = START + i64::try_from(v).unwrap() * 1_000_000;
        row.insert(
            "at time".into(),
            json!([
                store.version_at_time(&stream, at).unwrap(),
                store.version_at_time(&stream, at - 1).unwrap(),
                store.version_at_time(&stream, at + 500_000).unwrap()
            ]),
        );
        per_version.push(Value::Object(row));
    }
    reads.insert("per version".into(), json!(per_version));
    let ids: Vec<_> = [
        "p-3", "p-25", "p-26", "c-26", "c-30", "c-31", "g-31", "g-36",
    ]
    .iter()
    .map(|id| store.version_with_meta(&stream, "id", id).unwrap())
    .collect();
    reads.insert("ids".into(), json!(ids));
    let span = store.time_span(Some(&stream)).unwrap();
    reads.insert("span".into(), json!(span));
    reads.insert(
        "histogram".into(),
        json!(
            store
                .time_histogram(Some(&stream), span.unwrap(), 9)
                .unwrap()
        ),
    );
    reads.insert(
        "head hash".into(),
        json!(
            store
                .head_hash(stream.id)
                .unwrap()
                .map(|h| rewind::chain::to_hex(&h))
        ),
    );
    reads.insert("head".into(), json!(stream.head));
    let states: Vec<Value> = (0..=stream.head)
        .map(|v| (*engine.state_of(&stream, Target::Version(v)).unwrap().state).clone())
        .collect();
    reads.insert("states".into(), json!(states));
    let mut exported = Vec::new();
    engine
        .export(Some(name), 0, |line| {
            let mut line = line.clone();
            if let Some(o) = line.as_object_mut() {
                o.remove("seq");
            }
            exported.push(line);
            Ok(())
        })
        .unwrap();
    reads.insert("export".into(), json!(exported));
    Value::Object(reads)
}

/// Stored event rows per stream name.
fn rows(path: &Path) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT s.name, count(e.seq) FROM streams s LEFT JOIN events e ON e.stream_id = s.id GROUP BY s.name ORDER BY s.name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn assert_same(forked: &mut Engine, copied: &mut Engine, name: &str) {
    let (a, b) = (every_read(forked, name), every_read(copied, name));
    for key in b.as_object().unwrap().keys() {
        assert_eq!(a[key], b[key], "stream {name}: {key} differs");
    }
}

#[test]
fn a_fork_reads_in_every_way_as_its_history_copied_and_stores_only_its_own_events() {
    let dir = tempfile::tempdir().unwrap();
    let (forked_path, copied_path) = (dir.path().join("forked.db"), dir.path().join("copied.db"));
    let mut forked = build(&forked_path, true);
    let mut copied = build(&copied_path, false);
    for name in ["p", "c", "g"] {
        assert_same(&mut forked, &mut copied, name);
    }
    // Each shared event is stored once.
    assert_eq!(
        rows(&forked_path),
        [
            ("c".to_string(), 10),
            ("g".to_string(), 6),
            ("p".to_string(), 40)
        ]
    );
    assert_eq!(forked.store().event_totals().unwrap().0, 56);
    let stats = rewind::snapshot::stats::stats(&mut forked).unwrap();
    assert_eq!(stats.total.events, 56);
    let figures = |name: &str| &stats.streams.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!((figures("g").events, figures("c").events), (36, 35));
    // `g` starts from the snapshots of `p` (8, 16, 24), `c` (26) and its own (31): a replay
    // is at most 7 events, as in `p`, not its 30 shared versions.
    assert_eq!(figures("g").max_replay, 7);
    // Below its first own event, `g` starts from a snapshot that `c` (which took one at its
    // first own event) or `p` took at a version it shares.
    let g = forked.store().require_stream("g").unwrap();
    let route = forked.route(&g, Target::Version(24)).unwrap();
    assert_eq!((route.snapshot, route.replayed), (Some(24), 0), "{route:?}");
    let route = forked.route(&g, Target::Version(30)).unwrap();
    assert_eq!((route.snapshot, route.replayed), (Some(26), 4), "{route:?}");
    let route = forked.route(&g, Target::Version(36)).unwrap();
    assert_eq!((route.snapshot, route.replayed), (Some(31), 5), "{route:?}");
    // The whole file verifies: chains (the shared rows with their own stream's), snapshots.
    let report = rewind::snapshot::verify::verify(&forked_path, None, &|_, _| {}).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    // Exported whole and imported, the forks are streams with every event of theirs, and
    // the heads the export carries check.
    let mut lines = Vec::new();
    forked
        .export(None, 0, |line| {
            lines.push(line.to_string());
            Ok(())
        })
        .unwrap();
    let imported_path = dir.path().join("imported.db");
    let mut imported = Engine::new(Store::open(&imported_path, OpenMode::Create).unwrap());
    let text = lines.join("\n");
    imported
        .import(
            rewind::jsonl::read_lines(std::io::Cursor::new(text), "export"),
            false,
        )
        .unwrap();
    for name in ["p", "c", "g"] {
        assert_same(&mut imported, &mut copied, name);
    }
}

#[test]
fn a_fork_reads_through_the_archive_of_the_stream_it_continues() {
    let dir = tempfile::tempdir().unwrap();
    let (forked_path, copied_path) = (dir.path().join("forked.db"), dir.path().join("copied.db"));
    let mut forked = build(&forked_path, true);
    let mut copied = build(&copied_path, false);
    // Each stream's own events up to its newest snapshot move to the archive: `p` 1..=40,
    // `c` 26..=34 (its snapshots: 26, 34), `g` 31 (its first own event's).
    let now = START + 100 * 1_000_000;
    let report = rewind::snapshot::archive::archive(&mut forked, 0, now).unwrap();
    let moved: Vec<_> = report
        .moved
        .iter()
        .map(|m| (m.stream.as_str(), m.from, m.upto))
        .collect();
    assert_eq!(moved, [("c", 0, 34), ("g", 0, 31), ("p", 0, 40)]);
    rewind::snapshot::archive::archive(&mut copied, 0, now).unwrap();
    drop(forked);
    let mut forked = Engine::open(&forked_path, OpenMode::Existing).unwrap();
    for name in ["p", "c", "g"] {
        assert_same(&mut forked, &mut copied, name);
    }
    let report = rewind::snapshot::verify::verify(&forked_path, None, &|_, _| {}).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[test]
fn a_fork_is_refused_past_the_head_of_its_base_or_under_a_name_in_use() {
    let mut engine = crate::support::engine();
    for n in 1..=3 {
        push(&mut engine, event("p", n, "p"));
    }
    let err = engine.fork("c", "p", 4).unwrap_err().to_string();
    assert!(err.contains('4') && err.contains("\"p\""), "{err}");
    let err = engine.fork("p", "p", 2).unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");
    let err = engine.fork("c", "nope", 1).unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
    assert_eq!(engine.store().streams().unwrap().len(), 1);
    // A fork from version 0 would continue nothing: a stream of its own is made instead.
    assert!(engine.fork("c", "p", 0).is_err());
}

#[test]
fn a_fork_whose_recorded_base_version_was_changed_is_found_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    for (base_version, reads) in [(24, "missing"), (26, "other")] {
        let path = dir.path().join(format!("changed-{base_version}.db"));
        drop(build(&path, true));
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE streams SET base_version = ?1 WHERE name = 'c'",
            [base_version],
        )
        .unwrap();
        drop(conn);
        let mut engine = Engine::open(&path, OpenMode::ReadOnly).unwrap();
        let state = engine.state_at("c", Target::Version(25));
        match reads {
            // Version 25 is neither the base's (now up to 24) nor `c`'s own.
            "missing" => {
                let err = state.unwrap_err().to_string();
                assert!(err.contains("25"), "{err}");
            }
            // Version 26 is now the base's: a history that is not the one written, which
            // only the chain tells.
            _ => assert!(engine.state_at("c", Target::Version(26)).is_ok()),
        }
        let report = rewind::snapshot::verify::verify(&path, Some("c"), &|_, _| {}).unwrap();
        assert!(
            report.findings.iter().any(|f| f.stream == "c"),
            "base_version {base_version}: {:?}",
            report.findings
        );
    }
}
