//! Delta snapshots: the policy's rhythm of full and delta, their size, and every way a base
//! can fail (corrupt, missing), each a reported fault with fallback, never a wrong state.

use rewind::snapshot::verify::{FindingKind, verify};
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::{Value, json};

use crate::support::append;

const KEYS: u64 = 1_000;

fn event(i: u64) -> Value {
    if i == 1 {
        // The first event fills the state; each later one changes one key.
        let all: serde_json::Map<String, Value> = (0..KEYS)
            .map(|k| {
                (
                    format!("key{k:04}"),
                    json!({ "n": 0, "label": format!("item {k}") }),
                )
            })
            .collect();
        return Value::Object(all);
    }
    json!({ format!("key{:04}", (i * 7919) % KEYS): { "n": i } })
}

fn build(engine: &mut Engine, events: u64) {
    for i in 1..=events {
        append(engine, "s", event(i));
    }
}

fn expected_at(v: u64) -> Value {
    let mut state = json!({});
    for i in 1..=v {
        json_patch::merge(&mut state, &event(i));
    }
    state
}

#[test]
fn policy_snapshots_are_small_deltas_on_a_full_base_at_most_seven_per_base() {
    let mut engine = crate::support::engine();
    build(&mut engine, 1_000);
    let snaps = engine.store().snapshots(None).unwrap();
    assert_eq!(
        snaps.iter().map(|s| s.version).collect::<Vec<_>>(),
        (1..=10).map(|k| k * 100).collect::<Vec<_>>()
    );
    assert_eq!(snaps[0].kind, "full");
    assert!(
        snaps.iter().filter(|s| s.kind == "delta").count() >= 5,
        "{snaps:?}"
    );
    for delta in snaps.iter().filter(|s| s.kind == "delta") {
        let base = snaps
            .iter()
            .find(|s| Some(s.id) == delta.base_id)
            .expect("base present");
        assert!(base.kind == "full" && base.version < delta.version);
        assert!(
            delta.stored_size * 2 <= base.stored_size,
            "delta {} vs its base {}",
            delta.stored_size,
            base.stored_size
        );
        assert!(snaps.iter().filter(|s| s.base_id == Some(base.id)).count() <= 7);
    }
    engine.clear_cache();
    for v in [150, 750, 999] {
        let rec = engine.state_at("s", Target::Version(v)).unwrap();
        assert_eq!(
            (rec.provenance.snapshot, rec.provenance.replayed),
            (Some(v / 100 * 100), v % 100)
        );
        assert_eq!(*rec.state, expected_at(v));
    }
}

#[test]
fn a_corrupt_base_makes_its_deltas_faults_with_fallback_and_verify_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    build(&mut engine, 450);
    engine
        .store()
        .execute_raw(
            "UPDATE snapshots SET checksum = zeroblob(32) WHERE version = 100",
            [],
        )
        .unwrap();
    let snaps = engine.store().snapshots(None).unwrap();
    let base_id = snaps[0].id;
    let on_base: Vec<u64> = snaps
        .iter()
        .filter(|s| s.id == base_id || s.base_id == Some(base_id))
        .map(|s| s.version)
        .collect();
    assert!(on_base.len() >= 2, "{on_base:?}");
    let newest_on_base = *on_base.iter().max().unwrap();
    let target = newest_on_base + 20;
    engine.clear_cache();
    let rec = engine.state_at("s", Target::Version(target)).unwrap();
    assert_eq!(*rec.state, expected_at(target));
    assert_eq!(
        rec.provenance.snapshot, None,
        "everything below {target} depends on the bad base"
    );
    assert!(
        rec.provenance
            .faults
            .iter()
            .any(|f| f.version == newest_on_base && f.reason.contains("base v100 is bad")),
        "{:?}",
        rec.provenance.faults
    );
    let report = verify(&path, None, &|_, _| {}).unwrap();
    let found: Vec<(Option<u64>, FindingKind)> = report
        .findings
        .iter()
        .map(|f| (f.version, f.kind))
        .collect();
    assert_eq!(
        found,
        on_base
            .iter()
            .map(|&v| (Some(v), FindingKind::Corrupt))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_missing_base_is_a_fault_and_a_verify_finding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    build(&mut engine, 250);
    // The database refuses to drop a base in use; another tool with foreign keys off may not.
    assert!(
        engine
            .store()
            .execute_raw("DELETE FROM snapshots WHERE version = 100", [])
            .is_err()
    );
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM snapshots WHERE version = 100")
        .unwrap();
    engine.clear_cache();
    let rec = engine.state_at("s", Target::Version(240)).unwrap();
    assert_eq!(*rec.state, expected_at(240));
    assert!(
        rec.provenance.faults[0].reason.contains("is missing"),
        "{:?}",
        rec.provenance.faults
    );
    let report = verify(&path, None, &|_, _| {}).unwrap();
    let kinds: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FindingKind::MissingBase, FindingKind::Corrupt]);
}

#[test]
fn a_manual_snapshot_over_a_delta_is_full_and_retaking_a_base_keeps_its_deltas() {
    let mut engine = crate::support::engine();
    build(&mut engine, 300);
    let snaps = engine.store().snapshots(None).unwrap();
    let delta = snaps
        .iter()
        .find(|s| s.kind == "delta")
        .expect("a delta")
        .clone();
    let base = snaps
        .iter()
        .find(|s| Some(s.id) == delta.base_id)
        .unwrap()
        .clone();
    // Re-taking the base in place keeps its id, so the delta still decodes.
    let retaken = engine
        .take_snapshot("s", Target::Version(base.version), "manual", None)
        .unwrap();
    assert_eq!(retaken.id, base.id);
    engine.clear_cache();
    let rec = engine
        .state_at("s", Target::Version(delta.version))
        .unwrap();
    assert_eq!(
        (rec.provenance.snapshot, rec.provenance.faults.len()),
        (Some(delta.version), 0)
    );
    // A manual snapshot where the delta was is full, with its label.
    let snap = engine
        .take_snapshot("s", Target::Version(delta.version), "manual", Some("fix"))
        .unwrap();
    assert_eq!(
        (
            snap.id,
            snap.kind.as_str(),
            snap.base_id,
            snap.label.as_deref()
        ),
        (delta.id, "full", None, Some("fix"))
    );
    engine.clear_cache();
    assert_eq!(
        *engine
            .state_at("s", Target::Version(delta.version))
            .unwrap()
            .state,
        expected_at(delta.version)
    );
}
