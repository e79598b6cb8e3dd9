//! The JSONL interchange format: one event per line, as `import` reads and `export`
//! writes it. Errors name the source, the line and the column.

use std::io::BufRead;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::engine::ImportItem;
use crate::error::Error;
use crate::model::{Event, NewEvent};
use crate::time;

/// One event in the JSONL format that `import` reads.
pub fn export_line(e: &Event) -> Value {
    let mut line = json!({
        "seq": e.seq,
        "stream": e.stream,
        "version": e.version,
        "type": e.kind,
        "time": time::format(e.ts),
        "data": e.data,
    });
    if let Some(meta) = &e.meta {
        line["meta"] = meta.clone();
    }
    if let Some(key) = &e.idempotency_key {
        line["idempotency_key"] = json!(key);
    }
    line
}

/// One line of an import file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    stream: String,
    #[serde(rename = "type")]
    kind: String,
    data: Strict,
    #[serde(default)]
    meta: Option<Strict>,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
    /// Written by export; a different database assigns its own seq.
    #[serde(default)]
    #[allow(dead_code)]
    seq: Option<i64>,
    #[serde(default)]
    version: Option<u64>,
}

/// Reads JSONL into import items; each error names the source, line and column.
pub fn read_lines(
    reader: impl BufRead,
    source: &str,
) -> impl Iterator<Item = crate::Result<ImportItem>> {
    let source = source.to_string();
    reader
        .split(b'\n')
        .enumerate()
        .filter_map(move |(idx, bytes)| {
            let at = format!("{source} line {}", idx + 1);
            let bytes = match bytes {
                Ok(b) => b,
                Err(cause) => {
                    return Some(Err(Error::Io {
                        path: source.clone().into(),
                        cause,
                    }));
                }
            };
            let Ok(text) = std::str::from_utf8(&bytes) else {
                return Some(Err(Error::Input(format!("{at}: not UTF-8"))));
            };
            let text = text.trim();
            if text.is_empty() {
                return None;
            }
            Some(parse_line(text, &at))
        })
}

fn parse_line(text: &str, at: &str) -> crate::Result<ImportItem> {
    let line: Line = serde_json::from_str(text).map_err(|e| {
        // serde_json appends "at line 1 column N" to some messages; say the column once.
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        Error::Input(format!("{at}, column {}: {msg}", e.column()))
    })?;
    let time = line
        .time
        .as_deref()
        .map(crate::time::parse)
        .transpose()
        .map_err(|e| Error::Input(format!("{at}: time {e}")))?;
    if line.version == Some(0) {
        return Err(Error::Input(format!(
            "{at}: version 0 is the empty state; events start at version 1"
        )));
    }
    Ok(ImportItem {
        at: at.to_string(),
        event: NewEvent {
            stream: line.stream,
            kind: line.kind,
            data: line.data.0,
            meta: line.meta.map(|m| m.0).filter(|m| !m.is_null()),
            time,
            idempotency_key: line.idempotency_key,
        },
        version: line.version,
    })
}

/// Parses JSON text like `serde_json::from_str`, but refuses an object with a duplicate key
/// instead of silently keeping the last value (RFC 8259 leaves it open; a patch with two
/// "op" members is exactly what RFC 6902 forbids).
pub fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<Strict>(text).map(|s| s.0)
}

/// A JSON value that refuses duplicate object keys when deserialised.
#[derive(Debug, Clone, PartialEq)]
pub struct Strict(pub Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = serde_json::Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            let Strict(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}
