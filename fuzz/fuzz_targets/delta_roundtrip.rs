//! The `delta` reducer's differences (how a mirror stores a checkpoint history): for any two
//! JSON values the difference turns the first into the second, is never larger than the
//! second whole, and is empty between equal values; and any JSON applied as a difference
//! either fits or is refused, leaving the state as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::reduce::delta::{apply, between};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\u{0}');
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
        return;
    };
    let (Ok(old), Ok(new)) = (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) else {
        return;
    };
    let diff = between(&old, &new);
    assert!(
        diff.to_string().len() <= json!({ "=": &new }).to_string().len(),
        "{diff} is larger than the whole value"
    );
    let mut state = old.clone();
    match apply(&mut state, &diff) {
        Ok(()) => assert_eq!(state, new),
        // Only a result nested past the bound may be refused.
        Err(e) => {
            assert!(
                rewind::reduce::depth(&new) > rewind::reduce::MAX_DEPTH,
                "{e}"
            );
            assert_eq!(state, old);
        }
    }
    assert_eq!(between(&old, &old), json!({}));
    if let Some(Ok(arbitrary)) = parts.next().map(serde_json::from_str::<Value>) {
        let mut state = old.clone();
        if apply(&mut state, &arbitrary).is_err() {
            assert_eq!(state, old);
        }
    }
});
