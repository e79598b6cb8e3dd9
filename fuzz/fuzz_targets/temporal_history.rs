//! Temporal histories as exported JSON: reading never panics, event ids only grow, and the
//! execution-state fold applies every event read (a refusal only for a state nested past the
//! bound), giving a state with every field of the execution state.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use rewind::reduce::{EventRef, ReduceError, Reducer};

fuzz_target!(|data: &[u8]| {
    let Ok(history) = rewind::source::temporal::parse(data) else {
        return;
    };
    assert!(history.events.windows(2).all(|w| w[0].id < w[1].id));
    let reducer = Reducer::Temporal;
    let mut state = serde_json::json!({});
    for (i, event) in history.events.iter().enumerate() {
        let applied = reducer.apply(
            &mut state,
            EventRef {
                stream: "w",
                kind: &event.kind,
                version: i as u64 + 1,
                ts: event.time,
                data: Cow::Borrowed(&event.data),
                meta: Some(&event.meta),
            },
        );
        match applied {
            Ok(()) | Err(ReduceError::TooDeep) => {}
            Err(e) => panic!("event {}: {e}", event.id),
        }
        assert!(rewind::reduce::depth(&state) <= rewind::reduce::MAX_DEPTH);
    }
    if let Some(map) = state.as_object().filter(|m| !m.is_empty()) {
        for key in ["status", "activities", "timers", "signals", "workflow_task"] {
            assert!(map.contains_key(key), "{key} missing from {state}");
        }
    }
});
