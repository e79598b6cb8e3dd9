//! Compaction: each rule, the dry run being the real run's plan, the newest usable snapshot
//! and labelled ones surviving, and deltas rebased before their base goes.

use rewind::snapshot::compact::{Bucket, Rules, compact};
use rewind::snapshot::verify::verify;
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::json;

use crate::support::append;

/// A stream with a policy snapshot every 10 events (full and delta), 200 events.
fn db() -> (tempfile::TempDir, std::path::PathBuf, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    engine
        .set_policy(
            None,
            &rewind::engine::Policy {
                every: Some(10),
                ..Default::default()
            },
        )
        .unwrap();
    for i in 1..=200u64 {
        let mut e = crate::support::ev(
            "s",
            "T",
            json!({ format!("k{}", i % 40): i, "pad": "x".repeat(200) }),
        );
        e.time = Some(
            rewind::time::parse("2026-01-01T00:00:00Z").unwrap()
                + i64::try_from(i).unwrap() * 3_600_000_000,
        );
        engine
            .append(e, rewind::engine::AppendOptions::default())
            .unwrap();
    }
    (dir, path, engine)
}

/// Makes every snapshot so far stale: the stream's reducer changes (as a migration does),
/// then one more event and a snapshot under the new one.
fn change_the_reducer(engine: &mut Engine) {
    engine
        .store()
        .execute_raw(
            "UPDATE streams SET reducer = 'replace' WHERE name = 's'",
            [],
        )
        .unwrap();
    engine.clear_cache();
    append(engine, "s", json!({ "after": "change" }));
    engine
        .take_snapshot("s", Target::Head, "manual", None)
        .unwrap();
}

fn versions(engine: &Engine) -> Vec<u64> {
    engine
        .store()
        .snapshots(None)
        .unwrap()
        .iter()
        .map(|s| s.version)
        .collect()
}

#[test]
fn a_dry_run_changes_nothing_and_is_the_plan_the_real_run_carries_out() {
    let (_dir, _path, mut engine) = db();
    let before = versions(&engine);
    let rules = Rules {
        keep_last: Some(3),
        ..Rules::default()
    };
    let dry = compact(&mut engine, None, &rules, true).unwrap();
    assert_eq!(versions(&engine), before);
    assert!(!dry.applied);
    let real = compact(&mut engine, None, &rules, false).unwrap();
    assert!(real.applied);
    assert_eq!(
        (&dry.drop, &dry.rebase, dry.kept, dry.bytes_freed),
        (&real.drop, &real.rebase, real.kept, real.bytes_freed)
    );
    assert_eq!(versions(&engine), vec![180, 190, 200]);
}

#[test]
fn kept_deltas_whose_base_goes_are_rebased_and_every_state_stays_exact() {
    let (_dir, path, mut engine) = db();
    let snaps = engine.store().snapshots(None).unwrap();
    assert!(snaps.iter().any(|s| s.kind == "delta"));
    let expected: Vec<_> = (0..=200)
        .map(|v| engine.state_at("s", Target::Version(v)).unwrap().state)
        .collect();
    let plan = compact(
        &mut engine,
        None,
        &Rules {
            keep_last: Some(2),
            ..Rules::default()
        },
        false,
    )
    .unwrap();
    assert!(!plan.rebase.is_empty(), "{plan:?}");
    let left = engine.store().snapshots(None).unwrap();
    assert!(
        left.iter()
            .all(|s| s.base_id.is_none_or(|b| left.iter().any(|k| k.id == b)))
    );
    engine.clear_cache();
    for v in 0..=200u64 {
        assert_eq!(
            engine.state_at("s", Target::Version(v)).unwrap().state,
            expected[v as usize],
            "v{v}"
        );
    }
    assert_eq!(verify(&path, None, &|_, _| {}).unwrap().findings, vec![]);
}

#[test]
fn the_newest_usable_snapshot_survives_any_rule() {
    let (_dir, _path, mut engine) = db();
    engine
        .store()
        .execute_raw(
            "UPDATE snapshots SET checksum = zeroblob(32) WHERE version = 200",
            [],
        )
        .unwrap();
    compact(
        &mut engine,
        None,
        &Rules {
            keep_last: Some(0),
            max_bytes: Some(0),
            ..Rules::default()
        },
        false,
    )
    .unwrap();
    // v200 is corrupt, so the newest usable one is v190 (rebased if it was a delta).
    assert_eq!(versions(&engine), vec![190]);
    engine.clear_cache();
    assert_eq!(
        engine
            .state_at("s", Target::Version(195))
            .unwrap()
            .provenance
            .snapshot,
        Some(190)
    );
}

#[test]
fn labelled_snapshots_are_kept_unless_drop_labelled_says_so_and_the_plan_says_which() {
    let (_dir, _path, mut engine) = db();
    engine
        .take_snapshot("s", Target::Version(55), "manual", Some("before migration"))
        .unwrap();
    let plan = compact(
        &mut engine,
        None,
        &Rules {
            keep_last: Some(1),
            ..Rules::default()
        },
        false,
    )
    .unwrap();
    assert_eq!(versions(&engine), vec![55, 200]);
    assert_eq!(plan.kept_labelled.len(), 1);
    assert_eq!(plan.kept_labelled[0].version, 55);
    assert_eq!(
        plan.kept_labelled[0].label.as_deref(),
        Some("before migration")
    );
    // A drop rule alone does not drop it either …
    let plan = compact(
        &mut engine,
        None,
        &Rules {
            before_version: Some(100),
            ..Rules::default()
        },
        false,
    )
    .unwrap();
    assert_eq!(versions(&engine), vec![55, 200]);
    assert_eq!(plan.kept_labelled[0].reason, "before the version");
    // … drop_labelled does, and the plan names the label it dropped.
    let plan = compact(
        &mut engine,
        None,
        &Rules {
            before_version: Some(100),
            drop_labelled: true,
            ..Rules::default()
        },
        false,
    )
    .unwrap();
    assert_eq!(versions(&engine), vec![200]);
    assert_eq!(plan.drop[0].label.as_deref(), Some("before migration"));
    assert!(plan.kept_labelled.is_empty());
}

#[test]
fn drop_stale_keeps_a_stale_labelled_snapshot_and_the_cli_shows_it_stale() {
    let (_dir, path, mut engine) = db();
    engine
        .take_snapshot("s", Target::Version(55), "manual", Some("before migration"))
        .unwrap();
    change_the_reducer(&mut engine);
    drop(engine);
    let db = path.to_str().unwrap();
    let plan = crate::support::ok(&["compact", db, "--drop-stale", "--dry-run"]);
    let kept = plan
        .lines()
        .find(|l| l.contains(" keep "))
        .unwrap_or_default();
    assert!(
        kept.contains("55") && kept.contains("stale") && kept.contains("before migration"),
        "{plan}"
    );
    crate::support::ok(&["compact", db, "--drop-stale"]);
    let listed = crate::support::ok(&["snapshots", db]);
    let rows: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(
        rows[0].contains("before migration") && rows[0].ends_with("stale"),
        "{listed}"
    );
    assert!(rows[1].ends_with("ok"), "{listed}");
    crate::support::ok(&["compact", db, "--drop-stale", "--drop-labelled"]);
    assert_eq!(crate::support::ok(&["snapshots", db]).lines().count(), 2);
}

#[test]
fn one_snapshot_drops_by_stream_and_version_and_a_corrupt_one_is_shown_corrupt() {
    let (_dir, path, engine) = db();
    engine
        .store()
        .execute_raw(
            "UPDATE snapshots SET checksum = zeroblob(32) WHERE version = 20",
            [],
        )
        .unwrap();
    drop(engine);
    let db = path.to_str().unwrap();
    let listed = crate::support::ok(&["snapshots", db]);
    let row = listed
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("20"))
        .unwrap();
    assert!(row.contains("corrupt: "), "{listed}");
    let json: serde_json::Value =
        serde_json::from_str(&crate::support::ok(&["snapshots", db, "--json"])).unwrap();
    let health: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["health"].as_str().unwrap())
        .collect();
    assert_eq!(
        health.iter().filter(|h| **h == "corrupt").count(),
        1,
        "{health:?}"
    );

    // A version with no snapshot names the ones there are and drops nothing.
    let e = crate::support::fails(&["snapshots", db, "--drop", "s@21"], 2);
    assert!(
        e.contains("no snapshot at v21") && e.contains("v20, v30"),
        "{e}"
    );
    let e = crate::support::fails(&["snapshots", db, "--drop", "s"], 2);
    assert!(e.contains("STREAM@VERSION"), "{e}");
    assert_eq!(crate::support::ok(&["snapshots", db]).lines().count(), 21);
    let out = crate::support::ok(&["snapshots", db, "--drop", "s@20", "--drop", "s@200"]);
    assert!(
        out.contains("dropped s@20") && out.contains("dropped s@200"),
        "{out}"
    );
    let left = crate::support::ok(&["snapshots", db]);
    assert_eq!(left.lines().count(), 19, "{left}");
    assert!(!left.contains("corrupt"), "{left}");
    let report = crate::support::ok(&["verify", db]);
    assert!(report.contains("no problems"), "{report}");
}

#[test]
fn keep_every_per_day_and_ladder_keep_what_they_say() {
    let rules = |r: Rules| {
        let (_dir, _path, mut engine) = db();
        compact(&mut engine, None, &r, false).unwrap();
        versions(&engine)
    };
    // 20 snapshots at 10, 20, …, 200; every 5th counting from the newest.
    assert_eq!(
        rules(Rules {
            keep_every: Some(5),
            ..Rules::default()
        }),
        vec![50, 100, 150, 200]
    );
    // One event an hour, v at hour v: day d holds versions 24d..24d+23; its newest snapshot.
    assert_eq!(
        rules(Rules {
            keep_per: Some(Bucket::Day),
            ..Rules::default()
        }),
        vec![20, 40, 70, 90, 110, 140, 160, 190, 200]
    );
    // Distance from the head d = 201 - v; bands [1], [8,16), [16,32), [32,64), [64,128),
    // [128,256): the newest snapshot in each.
    assert_eq!(
        rules(Rules {
            ladder: true,
            ..Rules::default()
        }),
        vec![70, 130, 160, 180, 190, 200]
    );
}

#[test]
fn stale_snapshots_go_with_drop_stale_and_states_stay_exact() {
    let (_dir, path, mut engine) = db();
    change_the_reducer(&mut engine);
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
    assert_eq!(plan.drop.len(), 20);
    assert!(plan.drop.iter().all(|s| s.reason == "stale"));
    assert_eq!(versions(&engine), vec![201]);
    assert_eq!(verify(&path, None, &|_, _| {}).unwrap().findings, vec![]);
}

#[test]
fn the_byte_cap_drops_the_oldest_first() {
    let (_dir, _path, mut engine) = db();
    let total: u64 = engine
        .store()
        .snapshots(None)
        .unwrap()
        .iter()
        .map(|s| s.stored_size)
        .sum();
    let plan = compact(
        &mut engine,
        None,
        &Rules {
            max_bytes: Some(total / 2),
            ..Rules::default()
        },
        false,
    )
    .unwrap();
    let left = engine.store().snapshots(None).unwrap();
    assert!(left.iter().map(|s| s.stored_size).sum::<u64>() <= total / 2);
    let oldest_kept = left.iter().map(|s| s.version).min().unwrap();
    assert!(
        plan.drop.iter().all(|s| s.version < oldest_kept),
        "{plan:?}"
    );
}

#[test]
fn a_rebased_delta_keeps_its_expiry_and_creation_time() {
    let (_dir, _path, mut engine) = db();
    engine
        .store()
        .execute_raw(
            "UPDATE snapshots SET expires_at = 4102444800000000 WHERE kind = 'delta'",
            [],
        )
        .unwrap();
    let before = engine.store().snapshots(None).unwrap();
    let delta = before
        .iter()
        .rev()
        .find(|s| s.kind == "delta")
        .unwrap()
        .clone();
    compact(
        &mut engine,
        None,
        &Rules {
            before_version: Some(delta.version),
            ..Rules::default()
        },
        false,
    )
    .unwrap();
    let after = engine.store().snapshot_meta(delta.id).unwrap().unwrap();
    assert_eq!((after.kind.as_str(), after.base_id), ("full", None));
    assert_eq!(
        (after.expires_at, after.created_at, after.version),
        (delta.expires_at, delta.created_at, delta.version)
    );
}
