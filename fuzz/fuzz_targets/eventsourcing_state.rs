//! Python `eventsourcing`'s stored states (JSON with tagged values, or compressed or
//! encrypted bytes): decoding never panics, what decodes nests within the bound and is never
//! much larger than what was stored (untagging only takes wrappers away), and no object
//! shaped as one of its tags is left.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::source::eventsourcing::decode_state;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = decode_state(data) else {
        return;
    };
    assert!(rewind::reduce::depth(&value) <= rewind::reduce::MAX_DEPTH);
    let text = value.to_string();
    assert!(text.len() <= 2 * data.len() + 16, "{} bytes from {}", text.len(), data.len());
    assert!(!tagged(&value), "a tag left in {text}");
    let _ = rewind::source::eventsourcing::snapshot_attributes(&value);
});

/// Whether a value still holds an object shaped as the library's tags.
fn tagged(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Array(items) => items.iter().any(tagged),
        serde_json::Value::Object(map) => {
            (map.len() == 2 && map.get("_type_").is_some_and(|t| t.is_string()) && map.contains_key("_data_"))
                || map.values().any(tagged)
        }
        _ => false,
    }
}
