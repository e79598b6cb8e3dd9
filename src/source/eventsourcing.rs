//! Python `eventsourcing`'s stored values: an event's or snapshot's `state` column is JSON
//! (UTF-8, in a BLOB) written by its `JSONTranscoder`, where values JSON cannot hold are
//! objects of exactly two keys, `{"_type_": NAME, "_data_": …}`. The built-in names are
//! rendered as the library's own types print: `uuid_hex` as the dashed UUID, `decimal_str`
//! and `datetime_iso` as their text; a name the application registered itself is rendered
//! as the data it stored. A `state` compressed or encrypted by the application (its
//! `COMPRESSOR_TOPIC` or `CIPHER_TOPIC` settings) is not JSON and says which it looks like.

use serde_json::Value;

/// Renders one stored `state` as JSON with its tagged values decoded.
pub fn decode_state(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| not_json(bytes))?;
    let mut value: Value = serde_json::from_str(text).map_err(|_| not_json(bytes))?;
    if crate::reduce::depth(&value) > crate::reduce::MAX_DEPTH {
        return Err(format!(
            "the state nests deeper than {} levels",
            crate::reduce::MAX_DEPTH
        ));
    }
    untag(&mut value);
    Ok(value)
}

fn not_json(bytes: &[u8]) -> String {
    // zlib's header: the library's ZlibCompressor.
    if bytes.len() >= 2 && bytes[0] == 0x78 && u16::from_be_bytes([bytes[0], bytes[1]]) % 31 == 0 {
        "compressed (zlib, the application's COMPRESSOR_TOPIC); rewind reads uncompressed states only".into()
    } else {
        "not JSON text: encrypted (the application's CIPHER_TOPIC) or not written by eventsourcing's JSONTranscoder".into()
    }
}

/// Replaces every `{"_type_": NAME, "_data_": DATA}` by its rendering, innermost first.
fn untag(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(untag),
        Value::Object(map) => {
            map.values_mut().for_each(untag);
            if map.len() == 2 {
                if let (Some(Value::String(name)), Some(data)) =
                    (map.get("_type_"), map.get("_data_"))
                {
                    let rendered = match (name.as_str(), data) {
                        ("uuid_hex", Value::String(hex)) => {
                            super::dashed_uuid(hex).map_or_else(|| data.clone(), Value::String)
                        }
                        _ => data.clone(),
                    };
                    *value = rendered;
                }
            }
        }
        _ => {}
    }
}

/// An aggregate snapshot's state as the user sees it: the attributes whose names do not
/// start with `_` (the library's own bookkeeping: `_id`, `_version`, `_created_on` …).
pub fn snapshot_attributes(state: &Value) -> Value {
    match state.get("state") {
        Some(Value::Object(attributes)) => Value::Object(
            attributes
                .iter()
                .filter(|(name, _)| !name.starts_with('_'))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        ),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tagged_values_render_as_the_library_prints_them() {
        let stored = br#"{"amount":{"_type_":"decimal_str","_data_":"10.50"},"account":{"_type_":"uuid_hex","_data_":"0123456789abcdef0123456789abcdef"},"at":{"_type_":"datetime_iso","_data_":"2025-01-02T03:04:05+00:00"},"mine":{"_type_":"point","_data_":[1,2]},"plain":{"_type_":"x","_data_":1,"other":2}}"#;
        assert_eq!(
            decode_state(stored).unwrap(),
            json!({
                "amount": "10.50",
                "account": "01234567-89ab-cdef-0123-456789abcdef",
                "at": "2025-01-02T03:04:05+00:00",
                "mine": [1, 2],
                "plain": {"_type_": "x", "_data_": 1, "other": 2},
            })
        );
    }

    #[test]
    fn compressed_and_encrypted_states_say_so() {
        assert!(
            decode_state(&[0x78, 0x9c, 1, 2])
                .unwrap_err()
                .contains("zlib")
        );
        assert!(
            decode_state(&[0x01, 0xff, 0x80])
                .unwrap_err()
                .contains("encrypted")
        );
    }
}
