//! Each reducer with its undo record: a state and an event (two JSON values) under merge,
//! patch and replace. Applied, the record's changes are the whole diff; undone, the state is
//! the one before; refused, the state is untouched.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use rewind::reduce::{EventRef, Reducer};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut parts = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    let (Some(Ok(state)), Some(Ok(event))) = (parts.next(), parts.next()) else {
        return;
    };
    let reducer = match pick % 3 {
        0 => Reducer::Merge,
        1 => Reducer::Patch,
        _ => Reducer::Replace,
    };
    let before = state.clone();
    let mut state = state;
    let applied = rewind::undo::apply(
        &reducer,
        &mut state,
        EventRef {
            stream: "s",
            kind: "E",
            version: 1,
            ts: 0,
            data: Cow::Owned(event),
            meta: None,
        },
    );
    match applied {
        Err(_) => assert_eq!(state, before, "a refused event changes nothing"),
        Ok(undo) => {
            assert_eq!(undo.changes(&state), rewind::diff::changes(&before, &state));
            undo.undo(&mut state);
            assert_eq!(state, before, "undo restores");
        }
    }
});
