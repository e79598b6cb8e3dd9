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
    data: Value,
    #[serde(default)]
    meta: Option<Value>,
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
    Ok(ImportItem {
        at: at.to_string(),
        event: NewEvent {
            stream: line.stream,
            kind: line.kind,
            data: line.data,
            meta: line.meta.filter(|m| !m.is_null()),
            time,
            idempotency_key: line.idempotency_key,
        },
        version: line.version,
    })
}
