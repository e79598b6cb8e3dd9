//! Events of the user's own as JSON: an array of objects, or JSON Lines of them, with their
//! own field names. A [`Mapping`] names the fields (`--map
//! stream=aggregate_id,type=event_type,data=payload,time=ts:ms,id=event_id`); without one, the
//! usual names are looked for. An event's position in the file (1 first) is its global order.
//!
//! - the stream: the mapped field's value (text, or a number as its text); with none mapped,
//!   every event is in one stream named after the file;
//! - the type: the mapped field's text;
//! - the data: the mapped field's value; with none mapped, the object without the mapped
//!   fields;
//! - the time: RFC 3339 text, or a number of seconds, milliseconds, microseconds or
//!   nanoseconds since the epoch, its unit named (`time=ts:ms`): a number without one is
//!   refused, never guessed;
//! - the id (`--at-id`): the mapped field's value, else the position.

use serde_json::{Map, Value};

use crate::model::Micros;

/// How an epoch time is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

/// Which fields of an object are the event's parts (dotted paths reach into objects).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mapping {
    /// The stream's field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The type's field.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The data's field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The time's field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The unit of an epoch time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_unit: Option<Unit>,
    /// The id's field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// The names looked for where no mapping names a part.
const STREAMS: [&str; 7] = [
    "stream",
    "stream_id",
    "streamId",
    "aggregate_id",
    "aggregateId",
    "entity_id",
    "thread_id",
];
const TYPES: [&str; 5] = ["type", "event_type", "eventType", "kind", "event"];
const DATAS: [&str; 4] = ["data", "payload", "body", "event_data"];
const TIMES: [&str; 6] = [
    "time",
    "timestamp",
    "ts",
    "created_at",
    "occurred_at",
    "recorded_at",
];
const IDS: [&str; 4] = ["id", "event_id", "eventId", "uuid"];

impl Mapping {
    /// Reads `stream=F,type=F,data=F,time=F[:s|ms|us|ns],id=F`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut mapping = Self::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, field) = part.split_once('=').ok_or_else(|| {
                format!("{part:?} is not PART=FIELD (parts: stream, type, data, time, id)")
            })?;
            let field = field.trim();
            if field.is_empty() {
                return Err(format!("{part:?} names no field"));
            }
            let slot = match key.trim() {
                "stream" => &mut mapping.stream,
                "type" => &mut mapping.kind,
                "data" => &mut mapping.data,
                "id" => &mut mapping.id,
                "time" => {
                    let (field, unit) = match field.rsplit_once(':') {
                        Some((field, unit)) => (field, Some(unit)),
                        None => (field, None),
                    };
                    mapping.time_unit = match unit {
                        None => None,
                        Some("s") => Some(Unit::S),
                        Some("ms") => Some(Unit::Ms),
                        Some("us") => Some(Unit::Us),
                        Some("ns") => Some(Unit::Ns),
                        Some(other) => {
                            return Err(format!("time unit {other:?}: name it as s, ms, us or ns"));
                        }
                    };
                    mapping.time = Some(field.to_owned());
                    continue;
                }
                other => {
                    return Err(format!(
                        "{other:?} is no part of an event; the parts are stream, type, data, time and id"
                    ));
                }
            };
            *slot = Some(field.to_owned());
        }
        Ok(mapping)
    }

    /// The mapping for a file's first object: what is given, and the usual names found in it
    /// for the rest (the type's field must be found).
    pub fn completed(&self, first: &Map<String, Value>) -> Result<Self, String> {
        let found = |given: &Option<String>, names: &[&str]| {
            given.clone().or_else(|| {
                names
                    .iter()
                    .find(|n| first.contains_key(**n))
                    .map(|n| (*n).to_owned())
            })
        };
        let mapping = Self {
            stream: found(&self.stream, &STREAMS),
            kind: found(&self.kind, &TYPES),
            data: found(&self.data, &DATAS),
            time: found(&self.time, &TIMES),
            time_unit: self.time_unit,
            id: found(&self.id, &IDS),
        };
        if mapping.kind.is_none() {
            let fields: Vec<&str> = first.keys().map(String::as_str).take(20).collect();
            return Err(format!(
                "no field says an event's type: looked for {} among its fields ({}); name it with --map type=FIELD",
                TYPES.join(", "),
                fields.join(", ")
            ));
        }
        Ok(mapping)
    }

    /// The mapping as `--map` takes it.
    pub fn spec(&self) -> String {
        let mut parts = Vec::new();
        for (name, field) in [
            ("stream", &self.stream),
            ("type", &self.kind),
            ("data", &self.data),
            ("time", &self.time),
            ("id", &self.id),
        ] {
            if let Some(field) = field {
                let unit = match (name, self.time_unit) {
                    ("time", Some(Unit::S)) => ":s",
                    ("time", Some(Unit::Ms)) => ":ms",
                    ("time", Some(Unit::Us)) => ":us",
                    ("time", Some(Unit::Ns)) => ":ns",
                    _ => "",
                };
                parts.push(format!("{name}={field}{unit}"));
            }
        }
        parts.join(",")
    }
}

/// One event read from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its place in the file, 1 first: the global order.
    pub position: u64,
    /// Its stream.
    pub stream: String,
    /// Its type.
    pub kind: String,
    /// Its data.
    pub data: Value,
    /// Its time, where the file has one.
    pub time: Option<Micros>,
    /// Its id in the file, where a field holds one.
    pub id: Option<Value>,
}

/// The objects of a JSON array or of JSON Lines, each with where it is (`line 7`, `item 7`).
/// A last line still being written (no newline after it, and not JSON yet) is left for later.
pub fn objects(bytes: &[u8]) -> Result<Vec<(String, Value)>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    if text.trim_start().starts_with('[') {
        let items: Vec<Value> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON array: {e}"))?;
        return Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("item {}", i + 1), v))
            .collect());
    }
    let mut out = Vec::new();
    let finished = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(value) => out.push((format!("line {}", i + 1), value)),
            Err(_) if i + 1 == lines.len() && !finished => break,
            Err(e) => {
                // serde's text ends with where in the text it parsed, here always line 1.
                let what = e.to_string();
                let what = what
                    .rsplit_once(" at line ")
                    .map_or(what.as_str(), |(w, _)| w);
                return Err(format!(
                    "line {}, column {}: not JSON: {what}",
                    i + 1,
                    e.column()
                ));
            }
        }
    }
    Ok(out)
}

/// Whether a file's first object looks like an event of the user's own: an object with a
/// field the usual names of a type find. An empty log, or an empty array, is one with no
/// events yet. JSON Lines are told by their first line alone.
pub fn looks_like(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let head = if bytes[start..].starts_with(b"[") {
        bytes
    } else {
        let end = bytes[start..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |at| start + at + 1);
        &bytes[..end]
    };
    match objects(head).as_deref() {
        Ok([]) => true,
        Ok([(_, Value::Object(first)), ..]) => Mapping::default().completed(first).is_ok(),
        _ => false,
    }
}

/// The file's events, by a mapping completed for its first object; `fallback` names the
/// stream where no field does.
pub fn read(
    bytes: &[u8],
    given: &Mapping,
    fallback: &str,
) -> Result<(Mapping, Vec<Event>), String> {
    let objects = objects(bytes)?;
    let Some((_, Value::Object(first))) = objects.first() else {
        return match objects.first() {
            Some((at, _)) => Err(format!("{at}: not an object")),
            None => Ok((given.clone(), Vec::new())),
        };
    };
    let mapping = given.completed(first)?;
    let mut events = Vec::with_capacity(objects.len());
    for (i, (at, object)) in objects.into_iter().enumerate() {
        let event =
            event(&mapping, object, i as u64 + 1, fallback).map_err(|e| format!("{at}: {e}"))?;
        events.push(event);
    }
    Ok((mapping, events))
}

/// One object as an event.
fn event(mapping: &Mapping, object: Value, position: u64, fallback: &str) -> Result<Event, String> {
    let Value::Object(mut fields) = object else {
        return Err("not an object".into());
    };
    let mut take =
        |field: &Option<String>| field.as_deref().and_then(|f| take_path(&mut fields, f));
    let stream = take(&mapping.stream);
    let kind = take(&mapping.kind);
    let data = take(&mapping.data);
    let time = take(&mapping.time);
    let id = take(&mapping.id);
    let stream = match stream {
        None if mapping.stream.is_none() => fallback.to_owned(),
        None => return Err(format!("no field {}", quoted(&mapping.stream))),
        Some(value) => name(&value).ok_or_else(|| {
            format!(
                "its stream ({}) is not text or a number",
                quoted(&mapping.stream)
            )
        })?,
    };
    let kind = match kind {
        Some(Value::String(kind)) if !kind.is_empty() => super::name(&kind),
        Some(_) => return Err(format!("its type ({}) is not text", quoted(&mapping.kind))),
        None => return Err(format!("no field {}", quoted(&mapping.kind))),
    };
    let time = match time {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            time_of(&value, mapping.time_unit)
                .map_err(|e| format!("its time ({}): {e}", quoted(&mapping.time)))?,
        ),
    };
    let data = match (data, &mapping.data) {
        (Some(data), _) => data,
        (None, Some(field)) => return Err(format!("no field {field:?}")),
        (None, None) => Value::Object(fields),
    };
    if crate::reduce::depth(&data) > crate::reduce::MAX_DEPTH {
        return Err(format!(
            "its data nests deeper than {} levels",
            crate::reduce::MAX_DEPTH
        ));
    }
    Ok(Event {
        position,
        stream: super::name(&stream),
        kind,
        data,
        time,
        id,
    })
}

fn quoted(field: &Option<String>) -> String {
    format!("{:?}", field.as_deref().unwrap_or_default())
}

/// Removes and returns the value at a dotted path (`meta.ts`), or at the key itself where
/// the object has a key with the dot in it.
fn take_path(fields: &mut Map<String, Value>, path: &str) -> Option<Value> {
    if let Some(value) = fields.remove(path) {
        return Some(value);
    }
    let (head, rest) = path.split_once('.')?;
    match fields.get_mut(head) {
        Some(Value::Object(inner)) => take_path(inner, rest),
        _ => None,
    }
}

/// A value as a stream's name: text, or a number's text.
fn name(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number of `unit`s since the epoch in µs, where it can be counted.
pub(crate) fn epoch_us(n: f64, unit: Unit) -> Option<Micros> {
    let per_us = match unit {
        Unit::S => 1e6,
        Unit::Ms => 1e3,
        Unit::Us => 1.0,
        Unit::Ns => 1e-3,
    };
    let us = n * per_us;
    #[allow(clippy::cast_possible_truncation)] // bounded just before
    (us.is_finite() && us.abs() <= 8.0e18).then(|| us.round() as Micros)
}

/// A time: RFC 3339 text, or a number in the unit named.
fn time_of(value: &Value, unit: Option<Unit>) -> Result<Micros, String> {
    match value {
        Value::String(text) => crate::time::parse(text),
        Value::Number(n) => {
            let unit = unit.ok_or_else(|| {
                format!("{n} is a number, and its unit is not named: add it to the mapping (time=FIELD:s, :ms, :us or :ns)")
            })?;
            epoch_us(n.as_f64().unwrap_or(f64::NAN), unit)
                .ok_or_else(|| format!("{n} {unit:?} since the epoch is out of range"))
        }
        other => Err(format!("{other} is neither RFC 3339 text nor a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_mapping_names_the_fields_and_the_usual_names_fill_in_the_rest() {
        let mapping = Mapping::parse("stream=order.id, type=what, time=at:ms").unwrap();
        let lines = b"{\"order\":{\"id\":7,\"x\":1},\"what\":\"Placed\",\"at\":1700000000123,\"total\":5}\n{\"order\":{\"id\":7},\"what\":\"Paid\",\"at\":1700000000999,\"event_id\":\"e2\"}\n{\"order\":{\"id\":8},\"what\":\"Pla";
        let (completed, events) = read(lines, &mapping, "file").unwrap();
        assert_eq!(completed.spec(), "stream=order.id,type=what,time=at:ms");
        assert_eq!(events.len(), 2, "the line being written is left for later");
        assert_eq!(events[0].stream, "7");
        assert_eq!(events[0].kind, "Placed");
        assert_eq!(events[0].time, Some(1_700_000_000_123_000));
        assert_eq!(events[0].data, json!({"order": {"x": 1}, "total": 5}));
        assert_eq!(events[1].position, 2);
        // Without a mapping, the usual names; a number of unknown unit is refused.
        let array = br#"[{"aggregate_id":"a","event_type":"Made","payload":{"n":1},"ts":5}]"#;
        let err = read(array, &Mapping::default(), "file").unwrap_err();
        assert!(
            err.contains("item 1: its time (\"ts\"): 5 is a number"),
            "{err}"
        );
        let seconds = Mapping::parse("type=event_type,time=ts:s").unwrap();
        let (_, events) = read(array, &seconds, "file").unwrap();
        assert_eq!(
            (events[0].stream.as_str(), &events[0].data, events[0].time),
            ("a", &json!({"n": 1}), Some(5_000_000))
        );
        // What cannot be read says where.
        let err = read(
            b"{\"type\":\"A\"}\nnot json\n{\"type\":\"B\"}\n",
            &Mapping::default(),
            "f",
        )
        .unwrap_err();
        assert_eq!(err, "line 2, column 2: not JSON: expected ident");
        let err = read(br#"[{"name":"x"}]"#, &Mapping::default(), "f").unwrap_err();
        assert!(err.contains("no field says an event's type"), "{err}");
        assert!(
            Mapping::parse("type=t,time=ts:minutes")
                .unwrap_err()
                .contains("s, ms, us or ns")
        );
        assert!(Mapping::parse("color=red").is_err());
    }
}
