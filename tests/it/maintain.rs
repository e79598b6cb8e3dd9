//! The policy over time: `maintain` ticks with a chosen `now`, the lease, and the scenarios
//! the snapshot lifecycle promises.

use rewind::engine::{AppendOptions, Policy};
use rewind::model::{Bucket, Rules};
use rewind::snapshot::compact::compact;
use rewind::snapshot::maintain::{acquire, release, tick};
use rewind::snapshot::verify::{FindingKind, verify};
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::json;

use crate::support::{append, ev};

const HOUR: i64 = 3_600_000_000;

/// What took each snapshot, oldest first.
fn triggers(engine: &Engine) -> Vec<String> {
    engine
        .store()
        .snapshots(None)
        .unwrap()
        .into_iter()
        .map(|s| s.trigger)
        .collect()
}

#[test]
fn a_time_window_snapshots_only_after_writes_and_once_per_window() {
    let mut engine = crate::support::engine();
    engine
        .set_policy(
            None,
            &Policy {
                every: Some(0),
                bytes: Some(0),
                every_time_us: Some(HOUR),
                ..Policy::default()
            },
        )
        .unwrap();
    append(&mut engine, "s", json!({"a": 1}));
    let now = engine.store().now_us().unwrap();
    assert_eq!(
        tick(&mut engine, now + 30 * 60_000_000).unwrap().taken,
        0,
        "the window has not passed"
    );
    let first = tick(&mut engine, now + 2 * HOUR).unwrap();
    assert_eq!((first.taken, first.decisions[0].version), (1, Some(1)));
    assert_eq!(
        tick(&mut engine, now + 2 * HOUR).unwrap().taken,
        0,
        "a second tick right after does nothing"
    );
    assert_eq!(
        tick(&mut engine, now + 5 * HOUR).unwrap().taken,
        0,
        "no writes since the snapshot"
    );
    append(&mut engine, "s", json!({"a": 2}));
    // The last snapshot was taken (by the database's clock) just now: within the window.
    assert_eq!(tick(&mut engine, now + 30 * 60_000_000).unwrap().taken, 0);
    assert_eq!(tick(&mut engine, now + 3 * HOUR).unwrap().taken, 1);
    assert_eq!(triggers(&engine), ["time", "time"]);
}

#[test]
fn a_year_of_events_gets_monthly_snapshots_old_events_archived_and_every_past_time_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine =
        Engine::new(Store::open(&dir.path().join("year.db"), OpenMode::Create).unwrap());
    engine
        .set_policy(
            None,
            &Policy {
                every: Some(0),
                bytes: Some(0),
                per: Some(Bucket::Month),
                ..Policy::default()
            },
        )
        .unwrap();
    let start = rewind::time::parse("2025-01-01T00:00:00Z").unwrap();
    let mut times = Vec::new();
    for day in 0..365i64 {
        for k in 0..3i64 {
            let mut e = ev(
                "year",
                "Tick",
                json!({ "day": day, "k": k, format!("m{}", day % 12): day }),
            );
            let t = start + day * 24 * HOUR + k * 5 * HOUR;
            e.time = Some(t);
            engine.append(e, AppendOptions::default()).unwrap();
            times.push(t);
        }
    }
    let snaps = engine.store().snapshots(None).unwrap();
    assert_eq!(snaps.len(), 11, "the first event of each month but January");
    let months: Vec<String> = snaps
        .iter()
        .map(|s| rewind::time::format(s.ts)[..10].to_string())
        .collect();
    assert_eq!(months[0], "2025-02-01");
    assert_eq!(months[10], "2025-12-01");
    // Every past time, from a cold cache, equals a replay without snapshots.
    let mut plain = crate::support::engine();
    for (i, t) in times.iter().enumerate() {
        let mut e = ev(
            "year",
            "Tick",
            engine
                .store()
                .event(
                    &engine.store().require_stream("year").unwrap(),
                    i as u64 + 1,
                )
                .unwrap()
                .unwrap()
                .data,
        );
        e.time = Some(*t);
        plain
            .append(
                e,
                AppendOptions {
                    expected_version: None,
                    no_snapshots: true,
                },
            )
            .unwrap();
    }
    let check = |engine: &mut Engine, plain: &mut Engine, label: &str| {
        for probe in (0..365 * 24).step_by(97) {
            let at = Target::Time(start + i64::from(probe) * HOUR + 1);
            engine.clear_cache();
            assert_eq!(
                engine.state_at("year", at).unwrap().state,
                plain.state_at("year", at).unwrap().state,
                "{label}, hour {probe}"
            );
        }
    };
    check(&mut engine, &mut plain, "with monthly snapshots");
    // Events older than three months (before the end of the year) go to the archive, up to
    // the monthly snapshot that covers them; every past time is still exact.
    let year_end = start + 365 * 24 * HOUR;
    let report = rewind::snapshot::archive::archive(&mut engine, 90 * 24 * HOUR, year_end).unwrap();
    let october = engine.store().snapshots(None).unwrap()[8].version;
    assert_eq!(report.moved[0].upto, october, "up to the October snapshot");
    assert_eq!(
        engine.store().require_stream("year").unwrap().archived_upto,
        october
    );
    check(&mut engine, &mut plain, "after archiving");
}

#[test]
fn expired_snapshots_and_retention_go_at_a_tick_and_the_newest_stays() {
    let mut engine = crate::support::engine();
    engine
        .set_policy(
            None,
            &Policy {
                every: Some(10),
                expire_after_us: Some(HOUR),
                keep: Some(Rules {
                    keep_last: Some(3),
                    ..Rules::default()
                }),
                ..Policy::default()
            },
        )
        .unwrap();
    for i in 0..60 {
        append(&mut engine, "s", json!({ "i": i }));
    }
    let now = engine.store().now_us().unwrap();
    let t = tick(&mut engine, now).unwrap();
    assert_eq!(
        (t.expired, t.retained_out),
        (0, 3),
        "six snapshots, keep the last three"
    );
    let t = tick(&mut engine, now + 2 * HOUR).unwrap();
    assert_eq!(
        t.expired, 2,
        "all expired but the newest usable, which is never dropped"
    );
    let left: Vec<u64> = engine
        .store()
        .snapshots(None)
        .unwrap()
        .iter()
        .map(|s| s.version)
        .collect();
    assert_eq!(left, [60]);
    assert_eq!(
        *engine.state_at("s", Target::Version(55)).unwrap().state,
        json!({"i": 54})
    );
}

#[test]
fn one_maintainer_at_a_time_and_a_dead_ones_lease_is_taken_over() {
    let mut engine = crate::support::engine();
    let now = 1_000 * HOUR;
    let first = acquire(&mut engine, "maintainer A", now, HOUR)
        .unwrap()
        .unwrap();
    assert_eq!(first.until, now + HOUR);
    let held = acquire(&mut engine, "maintainer B", now + HOUR / 2, HOUR)
        .unwrap()
        .unwrap_err();
    assert_eq!(held.owner, "maintainer A");
    assert!(
        acquire(&mut engine, "maintainer A", now + HOUR / 2, HOUR)
            .unwrap()
            .is_ok(),
        "the holder renews"
    );
    // A is killed and never renews: once the lease lapses, B takes over.
    let taken = acquire(&mut engine, "maintainer B", now + 2 * HOUR, HOUR)
        .unwrap()
        .unwrap();
    assert_eq!(taken.owner, "maintainer B");
    release(&mut engine, "maintainer B").unwrap();
    assert!(
        acquire(&mut engine, "maintainer C", now + 2 * HOUR, HOUR)
            .unwrap()
            .is_ok(),
        "a released lease is free"
    );
}

#[test]
fn a_reducer_change_makes_snapshots_stale_reconstruction_ignores_them_verify_reports_them_compaction_drops_them()
 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    for i in 1..=250 {
        append(&mut engine, "acct", json!({ "amount": i }));
    }
    let id = engine.store().require_stream("acct").unwrap().id;
    engine
        .store()
        .set_stream_reducer(id, Some("jq:.state.total += .event.data.amount | .state"))
        .unwrap();
    engine.clear_cache();
    let rec = engine.state_at("acct", Target::Version(220)).unwrap();
    assert_eq!(rec.state["total"], json!((1..=220).sum::<i64>()));
    assert_eq!(rec.provenance.snapshot, None);
    assert!(
        rec.provenance
            .faults
            .iter()
            .all(|f| f.reason.starts_with("stale"))
    );
    let report = verify(&path, None, &|_, _| {}).unwrap();
    assert_eq!(
        report.findings.iter().map(|f| f.kind).collect::<Vec<_>>(),
        [FindingKind::Stale, FindingKind::Stale]
    );
    engine
        .take_snapshot("acct", Target::Head, "manual", None)
        .unwrap();
    let plan = compact(
        &mut engine,
        None,
        &Rules {
            drop_stale: true,
            ..Rules::default()
        },
        false,
    )
    .unwrap();
    assert_eq!(plan.drop.len(), 2);
    assert_eq!(verify(&path, None, &|_, _| {}).unwrap().findings, vec![]);
}

#[test]
fn a_cron_schedule_snapshots_streams_written_to_once_per_firing() {
    let mut engine = crate::support::engine();
    let policy = Policy {
        every: Some(0),
        bytes: Some(0),
        schedules: Some(vec!["*/5 * * * *".into()]),
        ..Policy::default()
    };
    engine.set_policy(None, &policy).unwrap();
    append(&mut engine, "written", json!({"a": 1}));
    engine.store().create_stream("idle", None).unwrap();
    let now = engine.store().now_us().unwrap();
    let first = tick(&mut engine, now + 10 * 60_000_000).unwrap();
    assert_eq!(first.taken, 1, "{:?}", first.decisions);
    assert_eq!(first.decisions[0].stream, "written");
    assert_eq!(
        tick(&mut engine, now + 10 * 60_000_000).unwrap().taken,
        0,
        "a tick right after does nothing"
    );
    append(&mut engine, "written", json!({"a": 2}));
    assert_eq!(
        tick(&mut engine, now + 10 * 60_000_000 + 1).unwrap().taken,
        0,
        "the schedule has not fired again"
    );
    assert_eq!(tick(&mut engine, now + 16 * 60_000_000).unwrap().taken, 1);
    assert_eq!(triggers(&engine), ["schedule", "schedule"]);
}

#[test]
fn archiving_as_policy_moves_old_history_at_a_tick_and_keeps_it_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    engine
        .set_policy(
            None,
            &Policy {
                every: Some(10),
                archive_after_us: Some(24 * HOUR),
                ..Policy::default()
            },
        )
        .unwrap();
    let start = rewind::time::parse("2025-06-01T00:00:00Z").unwrap();
    for i in 0..100i64 {
        let mut e = ev("s", "T", json!({ format!("k{}", i % 9): i }));
        e.time = Some(start + i * HOUR);
        engine.append(e, AppendOptions::default()).unwrap();
    }
    let before: Vec<_> = (0..=100)
        .map(|v| engine.state_at("s", Target::Version(v)).unwrap().state)
        .collect();
    let now = start + 95 * HOUR;
    let t = tick(&mut engine, now).unwrap();
    // The horizon is 71 hours after the first event (v72): the newest snapshot before it is v70.
    assert_eq!(t.archived, 70, "{:?}", t.decisions);
    assert_eq!(
        engine.store().require_stream("s").unwrap().archived_upto,
        70
    );
    engine.clear_cache();
    for v in 0..=100u64 {
        assert_eq!(
            engine.state_at("s", Target::Version(v)).unwrap().state,
            before[v as usize],
            "v{v}"
        );
    }
    assert_eq!(
        tick(&mut engine, now).unwrap().archived,
        0,
        "a second tick right after does nothing"
    );
}
