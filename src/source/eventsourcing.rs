//! Python `eventsourcing`'s stored values: an event's or snapshot's `state` column is JSON
//! (UTF-8, in a BLOB) written by its `JSONTranscoder`, where values JSON cannot hold are
//! objects of exactly two keys, `{"_type_": NAME, "_data_": …}`. The built-in names are
//! rendered as the library's own types print: `uuid_hex` as the dashed UUID, `decimal_str`
//! and `datetime_iso` as their text; a name the application registered itself is rendered
//! as the data it stored. A `state` compressed or encrypted by the application (its
//! `COMPRESSOR_TOPIC` or `CIPHER_TOPIC` settings) is not JSON and says which it looks like.

use serde_json::{Value, json};

use crate::model::Micros;

/// One stored event as rewind shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The aggregate: its id as a dashed UUID (as stored where it is not one).
    pub stream: String,
    /// The event's class within its module: `BankAccount.Deposited` of
    /// `bank:BankAccount.Deposited`.
    pub kind: String,
    /// The method's arguments, tagged values decoded, without the `timestamp` (the event's
    /// time); `{"$unreadable": why}` for a state rewind cannot read.
    pub data: Value,
    /// The event's `timestamp`, where it has one rewind can read.
    pub time: Option<Micros>,
    /// The source's names for it: `notification_id` (the rowid, the global order), `topic`
    /// and `originator_version`.
    pub meta: Value,
}

/// A row of `stored_events` as rewind shows it: never an error, so one unreadable row
/// shows as such among the rest.
pub fn event(rowid: i64, originator_id: &str, version: i64, topic: &str, state: &[u8]) -> Event {
    let kind = topic
        .rsplit_once(':')
        .map_or(topic, |(_, class)| class)
        .trim();
    let kind = if kind.is_empty() { "(no topic)" } else { kind };
    let (data, time) = match decode_state(state) {
        Ok(Value::Object(mut fields)) => {
            let time = match fields.get("timestamp") {
                Some(Value::String(text)) => crate::time::parse(text).ok(),
                _ => None,
            };
            if time.is_some() {
                fields.remove("timestamp");
            }
            (Value::Object(fields), time)
        }
        Ok(other) => (other, None),
        Err(why) => (json!({ "$unreadable": why }), None),
    };
    Event {
        stream: stream_name(originator_id),
        kind: super::name(kind),
        data,
        time,
        meta: json!({
            "notification_id": rowid,
            "topic": topic,
            "originator_version": version,
        }),
    }
}

/// An aggregate's stream name: its id as a dashed UUID where it is one.
pub fn stream_name(originator_id: &str) -> String {
    let hex: String = originator_id.chars().filter(|c| *c != '-').collect();
    match super::dashed_uuid(&hex.to_ascii_lowercase()) {
        Some(dashed) => dashed,
        None if originator_id.is_empty() => "(no id)".into(),
        None => super::name(originator_id),
    }
}

/// A stored snapshot's state as the user sees it (its attributes), or why it cannot be read.
pub fn snapshot(state: &[u8]) -> Value {
    match decode_state(state) {
        Ok(decoded) => match snapshot_attributes(&decoded) {
            Value::Null => {
                json!({ "$unreadable": "not a snapshot of an aggregate's attributes (no object under \"state\")" })
            }
            attributes => attributes,
        },
        Err(why) => json!({ "$unreadable": why }),
    }
}

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
    if bytes.len() >= 2
        && bytes[0] == 0x78
        && u16::from_be_bytes([bytes[0], bytes[1]]).is_multiple_of(31)
    {
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
            if map.len() == 2
                && let (Some(Value::String(name)), Some(data)) =
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
