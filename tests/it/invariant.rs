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

        let compiled = Reducer::parse(reducer).unwrap();
        let mut expected = vec![json!({})];
        let mut state = json!({});
        for (i, data) in events.iter().enumerate() {
            let event = EventRef { kind: "T", version: i as u64 + 1, ts: 0, data: std::borrow::Cow::Borrowed(data), meta: None };
            compiled.apply(&mut state, event).unwrap();
            expected.push(state.clone());
        }

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
