//! The debugger's stepper (`rewind::step`) beyond agreeing with a fold (see `invariant`):
//! what it replays when it must start again, and how it says where a state came from.

use rewind::engine::{AppendOptions, CHECKPOINT_EVERY};
use rewind::step::Stepper;
use serde_json::{Value, json};

use crate::support::{engine, ev};

/// A stream of `n` merge events without snapshots, and the state after each.
fn no_snapshots(n: u64) -> (rewind::Engine, Vec<Value>) {
    let mut engine = engine();
    let options = AppendOptions {
        no_snapshots: true,
        ..AppendOptions::default()
    };
    let mut states = vec![json!({})];
    let mut state = serde_json::Map::new();
    for i in 1..=n {
        let key = format!("k{}", i % 37);
        state.insert(key.clone(), json!(i));
        engine
            .append(ev("s", "Set", json!({ key: i })), options)
            .unwrap();
        states.push(Value::Object(state.clone()));
    }
    // Appending cached the newest states; a debugger opening the file starts cold.
    engine.clear_cache();
    (engine, states)
}

#[test]
fn stepping_back_without_snapshots_replays_from_checkpoints_not_from_the_start() {
    let (mut engine, states) = no_snapshots(600);
    let stream = engine.store().require_stream("s").unwrap();
    // Few records, so that stepping back runs out of them again and again.
    let mut stepper = Stepper::with_records(20);
    let first = engine.step_to(&mut stepper, &stream, 600).unwrap();
    assert_eq!(
        first.provenance.replayed, 600,
        "the first start is a full replay"
    );
    // A start replays at most a checkpoint interval, the window below the target and the
    // records; a long replay (from the start) leaves its newest two checkpoints, so one is
    // needed at most once per two intervals.
    let bound = CHECKPOINT_EVERY + 16 + 20;
    let (mut restarts, mut from_scratch) = (0, 0);
    for v in (0..600).rev() {
        let step = engine.step_to(&mut stepper, &stream, v).unwrap();
        assert_eq!(*step.state, states[v as usize], "state at v{v}");
        let p = &step.provenance;
        if p.undone > 0 {
            assert_eq!(
                (p.undone, p.cached),
                (1, Some(v + 1)),
                "v{v}: {}",
                p.describe()
            );
            continue;
        }
        restarts += 1;
        if p.cached.is_none() && p.snapshot.is_none() && p.replayed > bound {
            from_scratch += 1;
        } else {
            assert!(
                p.replayed <= bound,
                "v{v} replayed {} events ({}), more than {bound}",
                p.replayed,
                p.describe()
            );
        }
    }
    assert!(
        restarts >= 600 / 20,
        "only {restarts} restarts: the records were not limited"
    );
    assert!(
        from_scratch <= 600 / (2 * CHECKPOINT_EVERY) + 1,
        "{from_scratch} replays from the start"
    );
}

#[test]
fn provenance_says_applied_or_undone_and_from_where() {
    let (mut engine, _) = no_snapshots(40);
    let stream = engine.store().require_stream("s").unwrap();
    let mut stepper = Stepper::default();
    let step = engine.step_to(&mut stepper, &stream, 30).unwrap();
    assert_eq!(
        step.provenance.describe().split(" · ").next(),
        Some("full replay + 30 events")
    );
    let step = engine.step_to(&mut stepper, &stream, 33).unwrap();
    assert_eq!(
        step.provenance.describe().split(" · ").next(),
        Some("cached v30 + 3 events")
    );
    let step = engine.step_to(&mut stepper, &stream, 32).unwrap();
    assert_eq!(
        step.provenance.describe().split(" · ").next(),
        Some("cached v33 − 1 event")
    );
    assert_eq!(step.changes.unwrap()[0].path(), "/k32");
    // Back past what was recorded: from the start again, so the records reach further.
    let step = engine.step_to(&mut stepper, &stream, 0).unwrap();
    assert_eq!(
        step.provenance.describe().split(" · ").next(),
        Some("cached v32 − 32 events")
    );
}
