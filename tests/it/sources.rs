//! Other programs' histories, read from files the real programs (or their own libraries)
//! made: `tests/fixtures/sources/`, with the scripts that made them and the answers those
//! programs gave, which rewind must give too.

use std::borrow::Cow;
use std::path::PathBuf;

use rewind::reduce::{EventRef, Reducer};
use serde_json::Value;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sources")
        .join(path)
}

fn json(path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(path)).unwrap()).unwrap()
}

#[test]
fn temporal_histories_fold_to_the_execution_state_after_every_event() {
    let reducer = Reducer::parse("temporal").unwrap();
    for name in ["order", "failed", "running"] {
        let bytes = std::fs::read(fixture(&format!("temporal/{name}.json"))).unwrap();
        let history = rewind::source::temporal::parse(&bytes).unwrap();
        let expected = json(&format!("temporal/{name}.expected.json"));
        let expected = expected["states"].as_array().unwrap();
        assert_eq!(history.events.len(), expected.len(), "{name}");
        assert_eq!(
            history.workflow_id.as_deref(),
            Some(
                json(&format!("temporal/{name}.expected.json"))["workflow_id"]
                    .as_str()
                    .unwrap()
            )
        );
        let mut state = serde_json::json!({});
        for (version, (event, want)) in history.events.iter().zip(expected).enumerate() {
            assert_eq!(Some(event.id), want["eventId"].as_u64(), "{name}");
            reducer
                .apply(
                    &mut state,
                    EventRef {
                        stream: name,
                        kind: &event.kind,
                        version: version as u64 + 1,
                        ts: event.time,
                        data: Cow::Borrowed(&event.data),
                        meta: Some(&event.meta),
                    },
                )
                .unwrap();
            assert_eq!(
                state, want["state"],
                "{name}: the state after event {} ({})",
                event.id, event.kind
            );
        }
    }
}
