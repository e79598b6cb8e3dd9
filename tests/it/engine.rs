//! Reconstruction: targets, the cache, snapshot use and every kind of bad snapshot,
//! reducer failures, blame and diff.

use rewind::engine::AppendOptions;
use rewind::{Error, Target};
use serde_json::{Value, json};

use crate::support::{append, engine, ev};

fn stream_of(n: u64) -> rewind::Engine {
    let mut engine = engine();
    for i in 1..=n {
        append(
            &mut engine,
            "s",
            json!({ format!("k{}", i % 7): i, "last": i }),
        );
    }
    engine
}

fn expected_at(v: u64) -> Value {
    let mut state = json!({});
    for i in 1..=v {
        json_patch::merge(&mut state, &json!({ format!("k{}", i % 7): i, "last": i }));
    }
    state
}

#[test]
fn version_zero_is_the_empty_object() {
    let mut engine = stream_of(3);
    assert_eq!(
        *engine.state_at("s", Target::Version(0)).unwrap().state,
        json!({})
    );
}

#[test]
fn policy_snapshots_are_taken_every_hundred_events_and_used() {
    let mut engine = stream_of(250);
    let snaps = engine.store().snapshots(None).unwrap();
    assert_eq!(
        snaps.iter().map(|s| s.version).collect::<Vec<_>>(),
        vec![100, 200]
    );
    let rec = engine.state_at("s", Target::Version(205)).unwrap();
    assert_eq!(*rec.state, expected_at(205));
    // A fresh engine has nothing cached, so it starts from the v200 snapshot.
    engine.clear_cache();
    let rec = engine.state_at("s", Target::Version(205)).unwrap();
    assert_eq!(
        (rec.provenance.snapshot, rec.provenance.replayed),
        (Some(200), 5)
    );
}

#[test]
fn under_replace_a_version_is_read_from_its_own_event() {
    let mut engine = engine();
    engine.store().create_stream("r", Some("replace")).unwrap();
    for i in 1..=250 {
        append(&mut engine, "r", json!({ "checkpoint": i }));
    }
    engine.clear_cache();
    let rec = engine.state_at("r", Target::Version(205)).unwrap();
    assert_eq!(*rec.state, json!({ "checkpoint": 205 }));
    assert_eq!(
        (
            rec.provenance.event,
            rec.provenance.snapshot,
            rec.provenance.replayed
        ),
        (Some(205), None, 0),
        "no snapshot and no replay: {}",
        rec.provenance.describe()
    );
    assert!(rec.provenance.describe().starts_with("event v205 · "));
}

#[test]
fn stepping_forward_from_a_cached_state_applies_one_event() {
    let mut engine = stream_of(150);
    engine.clear_cache();
    engine.state_at("s", Target::Version(120)).unwrap();
    let rec = engine.state_at("s", Target::Version(121)).unwrap();
    assert_eq!(
        (rec.provenance.cached, rec.provenance.replayed),
        (Some(120), 1)
    );
    assert_eq!(*rec.state, expected_at(121));
}

#[test]
fn stepping_back_without_snapshots_replays_at_most_a_checkpoint_interval() {
    let mut engine = engine();
    for i in 1..=1000u64 {
        engine
            .append(
                ev("s", "T", json!({ "n": i })),
                AppendOptions {
                    expected_version: None,
                    no_snapshots: true,
                },
            )
            .unwrap();
    }
    engine.clear_cache();
    engine.state_at("s", Target::Version(1000)).unwrap();
    let back = engine.state_at("s", Target::Version(999)).unwrap();
    assert!(
        back.provenance.replayed <= rewind::engine::CHECKPOINT_EVERY,
        "{:?}",
        back.provenance
    );
    assert_eq!(*back.state, json!({"n": 999}));
}

#[test]
fn time_and_seq_targets_pick_the_last_event_at_or_before() {
    let mut engine = engine();
    for (i, t) in [
        "2026-01-01T00:00:00Z",
        "2026-01-02T00:00:00Z",
        "2026-01-03T00:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        let mut e = ev("s", "T", json!({ "day": i + 1 }));
        e.time = Some(rewind::time::parse(t).unwrap());
        engine.append(e, AppendOptions::default()).unwrap();
        append(&mut engine, "other", json!({ "noise": i }));
    }
    let at = |engine: &mut rewind::Engine, t: &str| {
        engine
            .state_at("s", Target::Time(rewind::time::parse(t).unwrap()))
            .unwrap()
            .provenance
            .version
    };
    assert_eq!(at(&mut engine, "2025-12-31T00:00:00Z"), 0);
    assert_eq!(at(&mut engine, "2026-01-02T00:00:00Z"), 2);
    assert_eq!(at(&mut engine, "2026-01-02T23:59:59Z"), 2);
    assert_eq!(at(&mut engine, "2027-01-01T00:00:00Z"), 3);
    // seq: s has seq 1, 3, 5 (other has 2, 4, 6).
    for (seq, version) in [(0, 0), (1, 1), (2, 1), (4, 2), (5, 3), (100, 3)] {
        assert_eq!(
            engine
                .state_at("s", Target::Seq(seq))
                .unwrap()
                .provenance
                .version,
            version,
            "seq {seq}"
        );
    }
}

#[test]
fn unknown_stream_and_version_out_of_range_are_named() {
    let mut engine = stream_of(3);
    let err = engine.state_at("nope", Target::Head).unwrap_err();
    assert_eq!(err.to_string(), "no stream named \"nope\"");
    let err = engine.state_at("s", Target::Version(4)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::VersionOutOfRange {
                version: 4,
                head: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "stream \"s\" has versions 1..=3; there is no version 4"
    );
}

fn corrupt(engine: &rewind::Engine, version: u64, sql: &str) {
    let n = engine.store().execute_raw(sql, [version as i64]).unwrap();
    assert_eq!(n, 1, "{sql}");
}

#[test]
fn every_kind_of_bad_snapshot_is_skipped_reported_and_never_used() {
    let faults = [
        (
            "flipped bytes",
            "UPDATE snapshots SET blob = CAST(zeroblob(length(blob)) AS BLOB) WHERE version = ?1",
        ),
        (
            "wrong checksum",
            "UPDATE snapshots SET checksum = zeroblob(32) WHERE version = ?1",
        ),
        (
            "truncated frame",
            "UPDATE snapshots SET blob = substr(blob, 1, length(blob) / 2) WHERE version = ?1",
        ),
        (
            "stale fingerprint",
            "UPDATE snapshots SET fingerprint = 'jq:0123456789abcdef' WHERE version = ?1",
        ),
        (
            "oversized raw size",
            "UPDATE snapshots SET raw_size = raw_size + 1 WHERE version = ?1",
        ),
    ];
    for (what, sql) in faults {
        let mut engine = stream_of(250);
        corrupt(&engine, 200, sql);
        engine.clear_cache();
        let rec = engine.state_at("s", Target::Version(230)).unwrap();
        assert_eq!(*rec.state, expected_at(230), "{what}");
        assert_eq!(
            rec.provenance.snapshot,
            Some(100),
            "{what}: falls back to the older snapshot"
        );
        assert_eq!(rec.provenance.faults.len(), 1, "{what}");
        assert_eq!(rec.provenance.faults[0].version, 200, "{what}");
    }
}

#[test]
fn a_snapshot_with_a_plausible_but_wrong_state_is_caught_by_its_checksum() {
    let mut engine = stream_of(150);
    let forged = zstd::bulk::compress(br#"{"forged":true}"#, 1).unwrap();
    engine
        .store()
        .execute_raw(
            "UPDATE snapshots SET blob = ?1, raw_size = 15 WHERE version = 100",
            [forged],
        )
        .unwrap();
    engine.clear_cache();
    let rec = engine.state_at("s", Target::Version(120)).unwrap();
    assert_eq!(*rec.state, expected_at(120));
    assert_eq!(rec.provenance.snapshot, None);
    assert!(
        rec.provenance.faults[0].reason.contains("checksum"),
        "{:?}",
        rec.provenance.faults
    );
}

#[test]
fn a_reducer_change_makes_old_snapshots_stale_and_replays_with_the_new_one() {
    let mut engine = stream_of(120);
    let id = engine.store().require_stream("s").unwrap().id;
    engine
        .store()
        .set_stream_reducer(id, Some("jq:.state + {seen: .event.version}"))
        .unwrap();
    let rec = engine.state_at("s", Target::Version(110)).unwrap();
    assert_eq!(*rec.state, json!({"seen": 110}));
    assert!(
        rec.provenance.faults[0].reason.starts_with("stale"),
        "{:?}",
        rec.provenance.faults
    );
}

#[test]
fn an_event_the_reducer_cannot_apply_names_stream_and_version_and_the_state_before_stays() {
    fn engine_append(
        engine: &mut rewind::Engine,
        s: &str,
        v: Value,
    ) -> rewind::Result<rewind::engine::WriteReport> {
        engine.append(ev(s, "Ops", v), AppendOptions::default())
    }
    let mut engine = engine();
    engine.store().create_stream("inv", Some("patch")).unwrap();
    engine_append(
        &mut engine,
        "inv",
        json!([{"op": "add", "path": "/sku1", "value": 3}]),
    )
    .unwrap();
    let err = engine_append(
        &mut engine,
        "inv",
        json!([{"op": "remove", "path": "/sku9"}]),
    )
    .unwrap_err();
    let text = format!("{}", anyhow::Error::from(err));
    assert!(
        text.starts_with("stream \"inv\" version 2: the patch reducer cannot apply"),
        "{text}"
    );
    // Refused at the door: nothing was stored.
    assert_eq!(engine.store().require_stream("inv").unwrap().head, 1);

    // An event that became unappliable later (reducer switched) fails on reconstruction,
    // naming the version, while earlier versions stay reachable.
    engine_append(
        &mut engine,
        "inv",
        json!([{"op": "add", "path": "/sku2", "value": 1}]),
    )
    .unwrap();
    engine
        .store()
        .set_stream_reducer(
            engine.store().require_stream("inv").unwrap().id,
            Some("jq:.state + .event.data"),
        )
        .unwrap();
    let err = engine.state_at("inv", Target::Version(1)).unwrap_err();
    assert!(matches!(err, Error::Reduce { version: 1, .. }), "{err}");
    engine
        .store()
        .set_stream_reducer(
            engine.store().require_stream("inv").unwrap().id,
            Some("patch"),
        )
        .unwrap();
    assert_eq!(
        *engine.state_at("inv", Target::Version(1)).unwrap().state,
        json!({"sku1": 3})
    );
}

#[test]
fn an_invalid_jq_program_is_refused_with_its_position() {
    let mut engine = engine();
    let err = engine.reducer("jq:.state | {").err().unwrap();
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(
        text.contains("invalid reducer") && text.contains("1:11"),
        "{text}"
    );
}

#[test]
fn deep_nesting_from_a_jq_reducer_is_an_error_not_a_stack_overflow() {
    let mut engine = engine();
    engine
        .store()
        .create_stream("deep", Some("jq:{a: .state}"))
        .unwrap();
    let mut result = Ok(());
    for _ in 0..200 {
        result = engine
            .append(ev("deep", "T", json!({})), AppendOptions::default())
            .map(|_| ());
        if result.is_err() {
            break;
        }
    }
    let err = result.unwrap_err();
    assert!(err.to_string().contains("version 120"), "{err}");
    assert!(format!("{:#}", anyhow::Error::from(err)).contains("nests deeper"));
}

#[test]
fn blame_lists_the_events_that_changed_a_path_newest_first() {
    let mut engine = engine();
    append(&mut engine, "o", json!({"status": "placed", "total": 10}));
    append(&mut engine, "o", json!({"total": 12}));
    append(&mut engine, "o", json!({"status": "paid"}));
    append(&mut engine, "o", json!({"note": "x"}));
    append(&mut engine, "o", json!({"status": null}));
    let versions = |engine: &mut rewind::Engine, path: &str, upto: Target| -> Vec<u64> {
        engine
            .blame("o", path, upto)
            .unwrap()
            .iter()
            .map(|e| e.version)
            .collect()
    };
    assert_eq!(
        versions(&mut engine, "/status", Target::Head),
        vec![5, 3, 1]
    );
    assert_eq!(
        versions(&mut engine, "/status", Target::Version(4)),
        vec![3, 1]
    );
    assert_eq!(versions(&mut engine, "/total", Target::Head), vec![2, 1]);
    assert_eq!(
        versions(&mut engine, "/nothing", Target::Head),
        Vec::<u64>::new()
    );
    assert!(engine.blame("o", "status", Target::Head).is_err());
}

#[test]
fn a_manual_snapshot_is_labelled_and_used() {
    let mut engine = stream_of(42);
    let snap = engine
        .take_snapshot("s", Target::Version(40), "manual", Some("before migration"))
        .unwrap();
    assert_eq!(
        (snap.version, snap.trigger.as_str(), snap.label.as_deref()),
        (40, "manual", Some("before migration"))
    );
    engine.clear_cache();
    let rec = engine.state_at("s", Target::Version(41)).unwrap();
    assert_eq!(
        (rec.provenance.snapshot, rec.provenance.replayed),
        (Some(40), 1)
    );
    assert_eq!(*rec.state, expected_at(41));
}

#[test]
fn the_cache_stays_within_its_byte_budget_and_keeps_the_newest_state() {
    let mut engine = engine();
    engine
        .store()
        .create_stream("big", Some("replace"))
        .unwrap();
    let blob = "x".repeat(1000);
    for i in 0..40 {
        append(&mut engine, "big", json!({ "i": i, "blob": blob }));
    }
    engine.clear_cache();
    engine.set_cache_budget(5_000);
    for v in 1..=40 {
        engine.state_at("big", Target::Version(v)).unwrap();
        assert!(
            engine.cached_bytes() <= 5_000,
            "{} bytes cached at v{v}",
            engine.cached_bytes()
        );
    }
    // The newest state is still cached: asking again replays nothing.
    let again = engine.state_at("big", Target::Version(40)).unwrap();
    assert_eq!(
        (again.provenance.cached, again.provenance.replayed),
        (Some(40), 0)
    );
    // An old one was evicted and is rebuilt from the store, still correct.
    let old = engine.state_at("big", Target::Version(3)).unwrap();
    assert_eq!(old.provenance.cached, None);
    assert_eq!(old.state["i"], 2);
}

#[test]
fn floats_replay_to_the_same_bits_with_and_without_snapshots() {
    let mut engine = engine();
    engine
        .store()
        .create_stream("acct", Some("jq:.state.total += .event.data.x | .state"))
        .unwrap();
    for x in [0.01, 0.003, 0.1, 0.2, 1e-7, 123.456] {
        engine
            .append(ev("acct", "T", json!({ "x": x })), AppendOptions::default())
            .unwrap();
        engine
            .take_snapshot("acct", Target::Head, "manual", None)
            .unwrap();
    }
    let with: Vec<Value> = (1..=6)
        .map(|v| (*engine.state_at("acct", Target::Version(v)).unwrap().state).clone())
        .collect();
    engine
        .store()
        .execute_raw("DELETE FROM snapshots", [])
        .unwrap();
    engine.clear_cache();
    for (v, expected) in (1..=6).zip(&with) {
        assert_eq!(
            &*engine.state_at("acct", Target::Version(v)).unwrap().state,
            expected,
            "v{v}"
        );
    }
}

#[test]
fn stepping_forward_from_the_empty_state_still_counts_bytes() {
    let mut engine = engine();
    let blob = "y".repeat(20_000);
    for i in 0..30 {
        engine
            .append(
                ev("s", "T", json!({ format!("k{i}"): blob })),
                AppendOptions {
                    expected_version: None,
                    no_snapshots: true,
                },
            )
            .unwrap();
    }
    engine.clear_cache();
    engine.set_cache_budget(100_000);
    for v in 0..=30u64 {
        engine.state_at("s", Target::Version(v)).unwrap();
        // The newest state is cached and weighs at least its data; older ones go once the
        // budget is passed (the newest alone may exceed it).
        let cached = engine.cached_bytes();
        assert!(
            cached >= v * 20_000,
            "{cached} bytes at v{v}: the state is undercounted"
        );
        assert!(
            cached <= 100_000_u64.max(v * 20_100),
            "{cached} bytes at v{v}: over budget"
        );
    }
}

#[test]
fn an_event_time_before_the_streams_last_is_refused() {
    let mut engine = engine();
    let at = |t: &str| {
        let mut e = ev("s", "T", json!({}));
        e.time = Some(rewind::time::parse(t).unwrap());
        e
    };
    engine
        .append(at("2026-01-03T00:00:00Z"), AppendOptions::default())
        .unwrap();
    let err = engine
        .append(at("2026-01-01T12:00:00Z"), AppendOptions::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("before the stream's previous event"),
        "{err}"
    );
    engine
        .append(at("2026-01-03T00:00:00Z"), AppendOptions::default())
        .unwrap();
}

#[test]
fn event_data_deeper_than_the_limit_is_refused_and_the_deepest_allowed_roundtrips() {
    let nest = |n: usize| (0..n).fold(json!(1), |v, _| json!([v]));
    let mut engine = engine();
    let err = engine
        .append(
            ev("s", "T", json!({ "d": nest(rewind::reduce::MAX_DEPTH) })),
            AppendOptions::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("nests deeper"), "{err}");
    let ok = ev(
        "s",
        "T",
        json!({ "d": nest(rewind::reduce::MAX_DEPTH - 1) }),
    );
    let stored = engine
        .append(ok, AppendOptions::default())
        .unwrap()
        .events
        .remove(0);
    // An export line wraps the data once more; it must still parse.
    let line = serde_json::to_string(&rewind::jsonl::export_line(&stored)).unwrap();
    let item = rewind::jsonl::read_lines(std::io::Cursor::new(line), "x")
        .next()
        .unwrap();
    assert!(item.is_ok(), "{:?}", item.err());
}

#[test]
fn an_older_good_snapshot_is_found_behind_many_bad_ones() {
    let mut engine = stream_of(30);
    for v in 1..=30 {
        engine
            .take_snapshot("s", Target::Version(v), "manual", None)
            .unwrap();
    }
    engine
        .store()
        .execute_raw(
            "UPDATE snapshots SET checksum = zeroblob(32) WHERE version > 3",
            [],
        )
        .unwrap();
    engine.clear_cache();
    let rec = engine.state_at("s", Target::Version(30)).unwrap();
    assert_eq!(rec.provenance.snapshot, Some(3));
    assert_eq!(rec.provenance.faults.len(), 27);
    assert_eq!(*rec.state, expected_at(30));
}
