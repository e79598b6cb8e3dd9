//! Python `eventsourcing`'s stored states (JSON with tagged values, or compressed or
//! encrypted bytes): decoding never panics, what decodes nests within the bound and is never
//! much larger than what was stored (untagging only takes wrappers away), and no object
//! shaped as one of its tags is left. A whole row (id, topic and state cut from the input)
//! always becomes an event rewind can store, and a snapshot's state an object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::source::eventsourcing::decode_state;

fuzz_target!(|data: &[u8]| {
    row(data);
    let Ok(value) = decode_state(data) else {
        return;
    };
    assert!(rewind::reduce::depth(&value) <= rewind::reduce::MAX_DEPTH);
    let text = value.to_string();
    assert!(
        text.len() <= 2 * data.len() + 16,
        "{} bytes from {}",
        text.len(),
        data.len()
    );
    assert!(!tagged(&value), "a tag left in {text}");
    let _ = rewind::source::eventsourcing::snapshot_attributes(&value);
});

/// Whether a value still holds an object shaped as the library's tags.
fn tagged(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Array(items) => items.iter().any(tagged),
        serde_json::Value::Object(map) => {
            (map.len() == 2
                && map.get("_type_").is_some_and(|t| t.is_string())
                && map.contains_key("_data_"))
                || map.values().any(tagged)
        }
        _ => false,
    }
}

/// The first byte says how long the originator id is and the next how long the topic; the
/// rest is the state.
fn row(data: &[u8]) {
    let [id_len, topic_len, rest @ ..] = data else {
        return;
    };
    let (id, rest) = rest.split_at(usize::from(*id_len).min(rest.len()));
    let (topic, state) = rest.split_at(usize::from(*topic_len).min(rest.len()));
    let id = String::from_utf8_lossy(id);
    let topic = String::from_utf8_lossy(topic);
    let event = rewind::source::eventsourcing::event(7, &id, 3, &topic, state);
    rewind::store::check_name("stream name", &event.stream).expect("a stream name rewind keeps");
    rewind::store::check_name("event type", &event.kind).expect("an event type rewind keeps");
    assert!(rewind::reduce::depth(&event.data) <= rewind::reduce::MAX_DEPTH);
    assert_eq!(event.meta["notification_id"], 7);
    assert!(event.data.get("timestamp").is_none() || event.time.is_none());
    assert!(rewind::source::eventsourcing::snapshot(state).is_object());
}
