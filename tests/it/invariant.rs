//! The engine's central promise, as a property: for every version of a random stream, the
//! state is the one a plain fold of its events gives, whatever snapshots exist, whichever of
//! them are corrupted, and in whatever order versions are asked for.

use proptest::prelude::*;
use rewind::engine::AppendOptions;
use rewind::reduce::{EventRef, Reducer};
use rewind::{Engine, Store, Target};
use serde_json::{Value, json};

use crate::support::ev;

#[derive(Debug, Clone)]
enum Corruption {
    None,
    FlipByte(usize),
    Truncate,
    Checksum,
    Stale,
}

fn reducer_and_events() -> impl Strategy<Value = (&'static str, Vec<Value>)> {
    let key = prop::sample::select(vec!["a", "b", "c", "d"]);
    let scalar = prop_oneof![
        any::<i32>().prop_map(|n| json!(n)),
        (-1e9..1e9f64).prop_map(|f| json!(f)),
        "[a-z]{0,3}".prop_map(|s| json!(s)),
        Just(Value::Null)
    ];
    let merge = prop::collection::vec((key.clone(), scalar.clone()), 1..3).prop_map(|pairs| {
        let mut patch = serde_json::Map::new();
        for (k, v) in pairs {
            patch.insert(k.to_string(), if v.is_null() { v } else { json!({"v": v}) });
        }
        Value::Object(patch)
    });
    let replace = prop::collection::vec((key.clone(), scalar.clone()), 0..4).prop_map(|pairs| {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    });
    let patch = (key.clone(), scalar)
        .prop_map(|(k, v)| json!([{"op": "add", "path": format!("/{k}"), "value": v}]));
    // A jq reducer doing arithmetic on floats: the sum must not depend on where replay starts.
    let amounts = (key, -1e6..1e6f64).prop_map(|(k, x)| json!({ "k": k, "x": x }));
    prop_oneof![
        prop::collection::vec(merge, 1..160).prop_map(|e| ("merge", e)),
        prop::collection::vec(replace, 1..160).prop_map(|e| ("replace", e)),
        prop::collection::vec(patch, 1..160).prop_map(|e| ("patch", e)),
        prop::collection::vec(amounts, 1..160)
            .prop_map(|e| ("jq:.state[.event.data.k] += .event.data.x | .state", e)),
    ]
}

/// The state after each event (and `{}` before the first), by a plain fold.
fn fold(reducer: &str, events: &[Value]) -> Vec<Value> {
    let compiled = Reducer::parse(reducer).unwrap();
    let mut expected = vec![json!({})];
    let mut state = json!({});
    for (i, data) in events.iter().enumerate() {
        let event = EventRef {
            stream: "s",
            kind: "T",
            version: i as u64 + 1,
            ts: 0,
            data: std::borrow::Cow::Borrowed(data),
            meta: None,
        };
        compiled.apply(&mut state, event).unwrap();
        expected.push(state.clone());
    }
    expected
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        3 => Just(Corruption::None),
        1 => any::<usize>().prop_map(Corruption::FlipByte),
        1 => Just(Corruption::Truncate),
        1 => Just(Corruption::Checksum),
        1 => Just(Corruption::Stale),
    ]
}

fn corrupt(engine: &Engine, version: u64, how: &Corruption) {
    let v = i64::try_from(version).unwrap();
    let store = engine.store();
    match how {
        Corruption::None => {}
        Corruption::FlipByte(at) => {
            let id: i64 = store
                .snapshots(None)
                .unwrap()
                .into_iter()
                .find(|s| s.version == version)
                .unwrap()
                .id;
            let mut blob = store.snapshot_blob(id).unwrap();
            let at = at % blob.len();
            blob[at] ^= 0xA5;
            store
                .execute_raw(
                    "UPDATE snapshots SET blob = ?1 WHERE id = ?2",
                    rusqlite::params![blob, id],
                )
                .unwrap();
        }
        Corruption::Truncate => {
            store.execute_raw("UPDATE snapshots SET blob = substr(blob, 1, length(blob) - 3) WHERE version = ?1", [v]).unwrap();
        }
        Corruption::Checksum => {
            store
                .execute_raw(
                    "UPDATE snapshots SET checksum = randomblob(32) WHERE version = ?1",
                    [v],
                )
                .unwrap();
        }
        Corruption::Stale => {
            store
                .execute_raw(
                    "UPDATE snapshots SET fingerprint = 'replace-v0' WHERE version = ?1",
                    [v],
                )
                .unwrap();
        }
    };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn state_at_every_version_equals_a_plain_fold(
        (reducer, events) in reducer_and_events(),
        snapshot_picks in prop::collection::vec((any::<prop::sample::Index>(), corruption()), 0..8),
        order in any::<u64>(),
    ) {
        let mut engine = Engine::new(Store::open_in_memory().unwrap());
        engine.store().create_stream("s", Some(reducer)).unwrap();
        // A policy snapshot every 7 events: full ones and deltas on them, corrupted below too.
        engine.set_policy(None, &rewind::engine::Policy { every: Some(7), ..Default::default() }).unwrap();
        // Policy snapshots every 100 events, plus manual ones at random versions.
        for data in &events {
            engine.append(ev("s", "T", data.clone()), AppendOptions::default()).unwrap();
        }
        let n = events.len() as u64;
        for (pick, how) in &snapshot_picks {
            let version = pick.index(events.len()) as u64 + 1;
            engine.take_snapshot("s", Target::Version(version), "manual", None).unwrap();
            corrupt(&engine, version, how);
        }

        let expected = fold(reducer, &events);

        // Ascending (the cache steps forward), then a scrambled order from a cold cache.
        for v in 0..=n {
            let rec = engine.state_at("s", Target::Version(v)).unwrap();
            prop_assert_eq!(&*rec.state, &expected[v as usize], "ascending, version {}", v);
        }
        engine.clear_cache();
        // Faults may only come from corrupted snapshots, or deltas whose base was corrupted.
        let corrupted: std::collections::HashSet<u64> = snapshot_picks
            .iter()
            .filter(|(_, how)| !matches!(how, Corruption::None))
            .map(|(p, _)| p.index(events.len()) as u64 + 1)
            .collect();
        let snaps = engine.store().snapshots(None).unwrap();
        let version_of = |id: i64| snaps.iter().find(|s| s.id == id).map(|s| s.version);
        let allowed: std::collections::HashSet<u64> = snaps
            .iter()
            .filter(|s| corrupted.contains(&s.version) || s.base_id.and_then(version_of).is_some_and(|b| corrupted.contains(&b)))
            .map(|s| s.version)
            .collect();
        let step = (order % n.max(1)) | 1;
        for i in 0..=n {
            let v = (i * step + order) % (n + 1);
            let rec = engine.state_at("s", Target::Version(v)).unwrap();
            prop_assert_eq!(&*rec.state, &expected[v as usize], "scrambled, version {}", v);
            for fault in &rec.provenance.faults {
                prop_assert!(allowed.contains(&fault.version), "fault at a snapshot that was not corrupted: {:?}", fault);
            }
        }
    }
}

/// Small nested JSON whose keys include the ones a pointer must escape.
fn nested() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i8>().prop_map(|n| json!(n)),
        "[a-z]{0,2}".prop_map(|s| json!(s)),
        Just(Value::Null),
        any::<bool>().prop_map(|b| json!(b)),
    ];
    let key = prop::sample::select(vec!["a", "b", "a/b", "~", "10", "9"]);
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..4).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

/// A JSON pointer from a few tokens, some of them array indices or `-`.
fn pointer() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "a", "b", "a~1b", "~0", "10", "9", "0", "1", "2", "3", "4", "-",
    ]);
    prop::collection::vec(token, 0..4).prop_map(|t| t.iter().map(|t| format!("/{t}")).collect())
}

/// RFC 6902 operations, valid or not for the state they meet.
fn patch_ops() -> impl Strategy<Value = Value> {
    let op = (
        prop::sample::select(vec!["add", "remove", "replace", "move", "copy", "test"]),
        pointer(),
        pointer(),
        nested(),
    )
        .prop_map(
            |(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}),
        );
    prop::collection::vec(op, 1..4).prop_map(Value::Array)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Stepping with undo records is exact: each event's recorded changes are the whole
    /// diff, in the same order, and undoing every event in turn gives back each earlier state.
    #[test]
    fn undo_records_give_the_whole_diff_and_the_state_before(
        start in nested(),
        merges in prop::collection::vec(nested(), 1..6),
        patches in prop::collection::vec(patch_ops(), 1..6),
        use_patch in any::<bool>(),
    ) {
        let (reducer, events) = if use_patch { ("patch", patches) } else { ("merge", merges) };
        let reducer = Reducer::parse(reducer).unwrap();
        let mut state = start;
        let mut trail = Vec::new();
        for (i, data) in events.iter().enumerate() {
            let event = |v| EventRef { stream: "s", kind: "T", version: v, ts: 0, data: std::borrow::Cow::Borrowed(data), meta: None };
            let before = state.clone();
            let mut expected = state.clone();
            let plain = reducer.apply(&mut expected, event(i as u64 + 1));
            match rewind::undo::apply(&reducer, &mut state, event(i as u64 + 1)) {
                Ok(undo) => {
                    prop_assert!(plain.is_ok());
                    prop_assert_eq!(&state, &expected);
                    prop_assert_eq!(undo.changes(&state), rewind::diff::changes(&before, &state));
                    trail.push((before, undo));
                }
                Err(_) => {
                    prop_assert!(plain.is_err());
                    prop_assert_eq!(&state, &before, "a refused event changed the state");
                }
            }
        }
        while let Some((before, undo)) = trail.pop() {
            undo.undo(&mut state);
            prop_assert_eq!(&state, &before);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// The debugger's stepper agrees with a plain fold wherever it goes: down the whole
    /// stream one step at a time (undoing, starting again below, using what was built
    /// ahead), back up, and along a random walk of steps and jumps; and the changes it knows
    /// are the whole diff against the version before.
    #[test]
    fn the_stepper_agrees_with_a_plain_fold(
        (reducer, events) in reducer_and_events(),
        walk in prop::collection::vec(prop_oneof![
            4 => (-3i64..=3).prop_map(Some),
            1 => Just(None),
        ], 0..120),
        jumps in prop::collection::vec(any::<prop::sample::Index>(), 120),
    ) {
        let mut engine = Engine::new(Store::open_in_memory().unwrap());
        engine.store().create_stream("s", Some(reducer)).unwrap();
        engine.set_policy(None, &rewind::engine::Policy { every: Some(7), ..Default::default() }).unwrap();
        for data in &events {
            engine.append(ev("s", "T", data.clone()), AppendOptions::default()).unwrap();
        }
        let expected = fold(reducer, &events);
        let n = events.len() as u64;
        let stream = engine.store().require_stream("s").unwrap();
        let mut stepper = rewind::step::Stepper::default();
        let down = (0..=n).rev();
        let up = 0..=n;
        let mut at = n;
        let random = walk.iter().zip(&jumps).map(|(step, jump)| {
            at = match step {
                Some(d) => at.saturating_add_signed(*d).min(n),
                None => jump.index(events.len() + 1) as u64,
            };
            at
        });
        let targets: Vec<u64> = down.chain(up).chain(random).collect();
        for v in targets {
            let step = engine.step_to(&mut stepper, &stream, v).unwrap();
            prop_assert_eq!(&*step.state, &expected[v as usize], "state at version {}", v);
            if let Some(changes) = step.changes {
                let before = &expected[v.saturating_sub(1) as usize];
                prop_assert_eq!(changes, rewind::diff::changes(before, &expected[v as usize]), "changes at version {}", v);
            }
            drop(step.state);
        }
    }
}
