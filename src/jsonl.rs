//! The JSONL interchange format, as `import` reads and `export` writes it: one JSON object a
//! line. An event line is `{"stream", "type", "data"}` with optional `meta`, `time`,
//! `idempotency_key`, `seq` and `version`. Settings travel in lines that cannot be taken for
//! events, each an object with a single `rewind…` member:
//!
//! - `{"rewind": {"format": 1, "default_reducer": …, "policy": {…}}}`: the header, first;
//! - `{"rewind_stream": {"name": …, "reducer": …, "policy": {…}, "head": {"version", "hash"}}}`:
//!   a stream's settings, before its events (`reducer` only when the stream has its own), and
//!   its head with its chain value as exported;
//! - `{"rewind_snapshot": {"stream": …, "version": …, "label": …}}`: a manual or labelled
//!   snapshot, after the event at its version, to be taken again there.
//!
//! A file of event lines only (what older versions wrote) is still a valid file. Errors name
//! the source, the line and, for JSON errors, the column. Knows nothing of the database.

use std::io::BufRead;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::engine::{ImportItem, Policy};
use crate::error::Error;
use crate::model::{Event, NewEvent};
use crate::time;

/// The version of the line format this build writes and the newest it reads (2: stream lines
/// carry the stream's `head`).
pub const FORMAT: u32 = 2;

/// The header line: what holds for the whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// The line format ([`FORMAT`]); a newer one is refused.
    pub format: u32,
    /// The reducer of every stream in the file that has no `reducer` of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_reducer: Option<String>,
    /// The database's snapshot policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
}

/// A stream's settings line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// The stream.
    pub name: String,
    /// The stream's own reducer; without it, the header's `default_reducer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reducer: Option<String>,
    /// The stream's own snapshot policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// The stream's head when it was exported and its chain value there: an import checks
    /// that the events it then holds give the same value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<StreamHead>,
}

/// A stream's head version and its chain value (64 hex digits), as a stream line carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamHead {
    /// The head version.
    pub version: u64,
    /// The chain value after it.
    pub hash: String,
}

/// A snapshot line: take a manual snapshot of the stream at the version, with the label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotMark {
    /// The stream.
    pub stream: String,
    /// The version whose state it holds.
    pub version: u64,
    /// The label it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// One line of an import: an event, or a setting an export carried, with where it came from.
#[derive(Debug, Clone)]
pub enum Record {
    /// An event.
    Event(ImportItem),
    /// The header.
    Database {
        /// Where the line came from, for errors.
        at: String,
        /// What it says.
        settings: DatabaseSettings,
    },
    /// A stream's settings.
    Stream {
        /// Where the line came from, for errors.
        at: String,
        /// What it says.
        settings: StreamSettings,
    },
    /// A snapshot to take again.
    Snapshot {
        /// Where the line came from, for errors.
        at: String,
        /// Which and where.
        mark: SnapshotMark,
    },
}

impl From<ImportItem> for Record {
    fn from(item: ImportItem) -> Self {
        Self::Event(item)
    }
}

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

/// The header line.
pub fn header_line(settings: &DatabaseSettings) -> Value {
    json!({ "rewind": settings })
}

/// A stream's settings line.
pub fn stream_line(settings: &StreamSettings) -> Value {
    json!({ "rewind_stream": settings })
}

/// A snapshot line.
pub fn snapshot_line(mark: &SnapshotMark) -> Value {
    json!({ "rewind_snapshot": mark })
}

/// One line of an import file: the members of every kind of line, so that a line is read
/// once and an unknown member is refused whatever the kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default)]
    stream: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// `Some(Strict(Null))` for `"data": null`, `None` when absent.
    #[serde(default, deserialize_with = "present")]
    data: Option<Strict>,
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
    #[serde(default)]
    rewind: Option<DatabaseSettings>,
    #[serde(default)]
    rewind_stream: Option<StreamSettings>,
    #[serde(default)]
    rewind_snapshot: Option<SnapshotMark>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Strict>, D::Error> {
    Strict::deserialize(d).map(Some)
}

/// Reads JSONL into import records; each error names the source, line and column.
pub fn read_lines(
    reader: impl BufRead,
    source: &str,
) -> impl Iterator<Item = crate::Result<Record>> {
    let source = source.to_string();
    reader
        .split(b'\n')
        .enumerate()
        .filter_map(move |(idx, bytes)| {
            let at = format!("{source} line {}", idx + 1);
            let bytes = match bytes {
                Ok(b) => b,
                Err(cause) => {
                    return Some(Err(Error::At {
                        at,
                        cause: Box::new(Error::Io {
                            path: source.clone().into(),
                            cause,
                        }),
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
            Some(parse_line(text, at))
        })
}

fn parse_line(text: &str, at: String) -> crate::Result<Record> {
    let line: Line = serde_json::from_str(text).map_err(|e| {
        // serde_json appends "at line 1 column N" to some messages; say the column once.
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        Error::Input(format!("{at}, column {}: {msg}", e.column()))
    })?;
    let settings = [
        line.rewind.is_some(),
        line.rewind_stream.is_some(),
        line.rewind_snapshot.is_some(),
    ];
    let is_event = [
        line.stream.is_some(),
        line.kind.is_some(),
        line.data.is_some(),
        line.meta.is_some(),
        line.time.is_some(),
        line.idempotency_key.is_some(),
        line.seq.is_some(),
        line.version.is_some(),
    ];
    if settings.iter().filter(|s| **s).count() + usize::from(is_event.contains(&true)) > 1 {
        return Err(Error::Input(format!(
            "{at}: a line is an event or one of rewind, rewind_stream, rewind_snapshot, not several"
        )));
    }
    if let Some(settings) = line.rewind {
        return Ok(Record::Database { at, settings });
    }
    if let Some(settings) = line.rewind_stream {
        return Ok(Record::Stream { at, settings });
    }
    if let Some(mark) = line.rewind_snapshot {
        if mark.version == 0 {
            return Err(Error::Input(format!(
                "{at}: a snapshot of version 0 is the empty state; snapshots start at version 1"
            )));
        }
        return Ok(Record::Snapshot { at, mark });
    }
    let missing = |field: &str| Error::Input(format!("{at}: missing field `{field}`"));
    let stream = line.stream.ok_or_else(|| missing("stream"))?;
    let kind = line.kind.ok_or_else(|| missing("type"))?;
    let data = line.data.ok_or_else(|| missing("data"))?.0;
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
    Ok(Record::Event(ImportItem {
        at,
        event: NewEvent {
            stream,
            kind,
            data,
            meta: line.meta.map(|m| m.0).filter(|m| !m.is_null()),
            time,
            idempotency_key: line.idempotency_key,
        },
        version: line.version,
    }))
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
