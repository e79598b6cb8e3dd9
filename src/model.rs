//! The vocabulary of rewind as plain data: streams, events, versions, targets and the
//! record of how a state was obtained. No storage or presentation code lives here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Row id of a stream in the database.
pub type StreamId = i64;

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// One immutable fact in a stream, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Position across the whole database: strictly increasing, never reused.
    pub seq: i64,
    /// Name of the stream the event belongs to.
    pub stream: String,
    /// Position in its stream: 1, 2, 3 … with no gaps.
    pub version: u64,
    /// The event's type, e.g. `OrderPaid`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Write time (or the time an import supplied), µs since the epoch.
    pub ts: Micros,
    /// The event's payload.
    pub data: Value,
    /// Optional metadata (correlation ids, actor …).
    pub meta: Option<Value>,
    /// The idempotency key the event was appended with, if any.
    pub idempotency_key: Option<String>,
}

/// A new event as handed to `append` or read from an import line.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Stream to append to; created with the database's default reducer if missing.
    pub stream: String,
    /// The event's type.
    pub kind: String,
    /// The payload the reducer applies.
    pub data: Value,
    /// Optional metadata.
    pub meta: Option<Value>,
    /// An explicit event time; `None` means the database's write time.
    pub time: Option<Micros>,
    /// A retried append with the same key returns the original event.
    pub idempotency_key: Option<String>,
}

/// Where in a stream a state is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// After the event with this version (0 is the empty state before version 1).
    Version(u64),
    /// After the last event whose time is at or before this instant.
    Time(Micros),
    /// After the last event of the stream whose seq is at or before this one.
    Seq(i64),
    /// After the newest event.
    Head,
}

/// A stream as listed by `streams`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamInfo {
    /// Row id.
    #[serde(skip)]
    pub id: StreamId,
    /// Unique name.
    pub name: String,
    /// The reducer spec in force (the stream's own or the database default).
    pub reducer: String,
    /// Whether `reducer` is the stream's own override.
    pub reducer_override: bool,
    /// Newest version (the number of events ever appended).
    pub head: u64,
    /// Time of the newest event.
    pub last_ts: Option<Micros>,
    /// Creation time.
    pub created_at: Micros,
    /// Events up to this version live in the archive database (0: none archived).
    pub archived_upto: u64,
    /// The stream this one continues and the version it continues from: its versions up
    /// to that one are the other stream's events, read through (a fork).
    #[serde(skip)]
    pub base: Option<(StreamId, u64)>,
}

/// Why a stored snapshot was not used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotFault {
    /// Version the snapshot was taken at.
    pub version: u64,
    /// What was wrong with it.
    pub reason: String,
}

/// How a reconstructed state was obtained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    /// The version the state belongs to.
    pub version: u64,
    /// Version of the snapshot the replay started from, if one was used.
    pub snapshot: Option<u64>,
    /// Version of a cached state the replay started from, if one was used.
    pub cached: Option<u64>,
    /// Version of the event whose data the replay started from: under the `replace`
    /// reducer an event's data is the whole state after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<u64>,
    /// Number of events applied on top of the starting point.
    pub replayed: u64,
    /// Number of events undone from the (newer) cached starting point: the debugger
    /// stepping back.
    #[serde(skip_serializing_if = "is_zero")]
    pub undone: u64,
    /// Time spent, in µs.
    pub elapsed_us: u64,
    /// Snapshots that were skipped because they were corrupt or stale.
    pub faults: Vec<SnapshotFault>,
}

impl Provenance {
    /// Nothing known yet about how the state at `version` will be obtained.
    pub fn at(version: u64) -> Self {
        Self {
            version,
            snapshot: None,
            cached: None,
            event: None,
            replayed: 0,
            undone: 0,
            elapsed_us: 0,
            faults: Vec::new(),
        }
    }

    /// One line for people: `snapshot v1,200 + 4 events · 0.3 ms`.
    pub fn describe(&self) -> String {
        let start = match (self.cached, self.snapshot, self.event) {
            (Some(v), _, _) => format!("cached v{}", group(v)),
            (None, Some(v), _) => format!("snapshot v{}", group(v)),
            (None, None, Some(v)) => format!("event v{}", group(v)),
            (None, None, None) if self.version == 0 => "the empty state".to_string(),
            (None, None, None) => "full replay".to_string(),
        };
        let (sign, count) = if self.undone > 0 {
            ('−', self.undone)
        } else {
            ('+', self.replayed)
        };
        let events = if count == 1 { "event" } else { "events" };
        #[allow(clippy::cast_precision_loss)] // a display value; µs fit f64 exactly for years
        let ms = self.elapsed_us as f64 / 1000.0;
        // A state read as it was stored, with nothing applied, says only where from.
        let mut line = if count == 0 {
            format!("{start} · {ms:.1} ms")
        } else {
            format!("{start} {sign} {} {events} · {ms:.1} ms", group(count))
        };
        for fault in &self.faults {
            line.push_str(&format!(
                " · skipped snapshot v{}: {}",
                group(fault.version),
                fault.reason
            ));
        }
        line
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A calendar bucket for "one per bucket".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    /// One per UTC hour.
    Hour,
    /// One per UTC day.
    Day,
    /// One per UTC month.
    Month,
}

/// What to keep and what to drop. Keep rules combine (a snapshot any of them keeps is kept;
/// with none, all are kept); drop rules then remove from what is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Keep the newest N of each stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<usize>,
    /// Keep every Kth of each stream, counting from the newest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_every: Option<usize>,
    /// Keep the newest in each hour, day or month of event time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_per: Option<Bucket>,
    /// Keep the newest in each power-of-two distance from the head: dense near the head,
    /// sparse far back.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ladder: bool,
    /// Drop snapshots built with another reducer than the stream's current one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub drop_stale: bool,
    /// Drop snapshots of versions below this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_version: Option<u64>,
    /// Drop snapshots of events before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_time: Option<Micros>,
    /// Then drop the oldest until all snapshots together take at most this many bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Drop snapshots whose expiry time is at or before this instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<Micros>,
    /// Let the rules drop labelled snapshots too (taken on purpose, they are kept otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_labelled: bool,
}

impl Rules {
    /// Whether any rule says what to keep (without one, everything is kept).
    pub fn has_keep_rule(&self) -> bool {
        self.keep_last.is_some()
            || self.keep_every.is_some()
            || self.keep_per.is_some()
            || self.ladder
    }
}

/// Formats a count with thousands separators: `12408` → `12,408`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_inserts_separators_every_three_digits() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(12_408), "12,408");
        assert_eq!(group(1_000_000), "1,000,000");
    }
}
