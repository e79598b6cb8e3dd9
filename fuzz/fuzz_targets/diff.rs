//! The structural diff of two JSON values: nothing between equal values and something
//! between different ones, every change at a JSON pointer, and the text diff never panics;
//! the debugger's one-line summary of a change says "no change" exactly when there is none
//! and never lets a control character out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::diff::{Change, changes};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    let (Some(Ok(a)), Some(Ok(b))) = (parts.next(), parts.next()) else {
        return;
    };
    assert!(changes(&a, &a).is_empty());
    let found = changes(&a, &b);
    assert_eq!(found.is_empty(), a == b);
    for change in &found {
        // Paths name places in the newer state where there is one (an element's index after
        // the removals before it), in the older one for what was removed: pointers either way.
        let path = change.path();
        assert!(path.is_empty() || path.starts_with('/'), "{path:?}");
        if let Change::Changed { from, to, .. } = change {
            assert_ne!(from, to);
        }
    }
    let _ = rewind::diff::unified(&a, &b, ("a", "b"), 2);
    assert_eq!(rewind::summary::advance(&mut a.clone(), &a), "no change");
    let mut prev = a.clone();
    let said = rewind::summary::advance(&mut prev, &b);
    assert_eq!(said == "no change", a == b, "{said:?}");
    assert!(!said.chars().any(rewind::text::needs_escape), "{said:?}");
    assert_eq!(prev, b, "the previous state is brought up to the new one");
});
