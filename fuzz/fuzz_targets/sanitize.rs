//! Text from events on its way to a terminal: no control or format character gets out of
//! `clean`, and `json_safe` keeps a JSON text the same value while escaping them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::text::{clean, json_safe, needs_escape, safe_message};

fuzz_target!(|data: &[u8]| {
    let Some((&max, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let cleaned = clean(&text, usize::from(max));
    assert!(!cleaned.chars().any(needs_escape), "{cleaned:?}");
    assert!(cleaned.chars().count() <= usize::from(max) * 10 + 1);
    let message = safe_message(&text);
    assert!(!message.chars().any(|c| needs_escape(c) && c != '\n'));
    let safe = json_safe(&text);
    assert!(!safe.chars().any(|c| needs_escape(c) && c != '\n'));
    // JSON as rewind writes it (serde_json's text) stays the same value once made safe.
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        for written in [
            serde_json::to_string(&value).expect("text"),
            serde_json::to_string_pretty(&value).expect("text"),
        ] {
            let safe = json_safe(&written);
            assert!(!safe.chars().any(|c| needs_escape(c) && c != '\n'));
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&safe).ok(),
                Some(value.clone())
            );
        }
    }
});
