//! A mapping file (TOML): how a database rewind has no format for is read as events. Its
//! `[events]` table names one read-only SQL `SELECT` and which of its columns are an event's
//! parts, with their encodings:
//!
//! ```toml
//! reducer = "merge"
//!
//! [events]
//! query = "SELECT seq, agent_id, event_type, data, created_at FROM agent_events"
//! stream = "agent_id"      # the stream: text, or a number as its text
//! seq = "seq"              # the source's global order (kept as rewind's seq), optional
//! version = "version"      # the position in the stream, optional (else counted)
//! type = "event_type"
//! data = "data"
//! data_encoding = "json"   # json (text or a BLOB), gzip+base64, msgpack
//! meta = "meta"            # optional, meta_encoding as data_encoding
//! time = "created_at"
//! time_format = "sql"      # rfc3339, sql (UTC), epoch-s, epoch-ms, epoch-us, epoch-ns
//! id = "event_id"          # the source's own id (--at-id), optional
//! listen = "agent_events"  # PostgreSQL: the channel it NOTIFYs on a write, optional
//!
//! [snapshots]              # optional: the source's own snapshots, checked, never trusted
//! query = "SELECT agent_id, seq, state, checksum, expires_at FROM snapshots"
//! stream = "agent_id"
//! seq = "seq"              # where it was taken: a seq, or a version = "…" column
//! state = "state"
//! state_encoding = "json"  # or encoding = "column" naming each row's encoding
//! checksum = "checksum"    # hex of the state column's bytes as stored, optional
//! checksum_algorithm = "sha256"   # sha256, crc32, blake3
//! base = "base_version"    # optional: the version of the snapshot an incremental one
//!                          # patches (RFC 7386 merge patch); NULL for a full one
//! expires = "expires_at"   # optional, expires_format as time_format
//!
//! [streams]                # optional: one row of attributes per stream
//! query = "SELECT task_id, status, lease_expires_at FROM work_items"
//! stream = "task_id"
//! unfinished = "status = 'in_progress' AND lease_expires_at < :now"   # SQL, optional
//! now = "SELECT max(updated_at) FROM work_items"  # the source's newest time, optional
//! now_format = "sql"       # how :now is given to `unfinished` (and `now` read)
//!
//! [pending]                # optional: work begun and not finished, by stream
//! query = "SELECT task_id, idempotency_key FROM idempotency_keys WHERE status <> 'completed'"
//! stream = "task_id"
//! ```
//!
//! Nothing a mapping shows depends on the clock: `:now` is the newest time the source records
//! (the `now` query's, else its newest event's), or what `--now` says.
//!
//! The mappings of the five seed systems ship with rewind (`--map seed-000`, …). A mistake in
//! a mapping names the file, the key and what it names that the database does not have; a
//! row that cannot be read names the key, the column and the row.

use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use rusqlite::types::{Value as SqlValue, ValueRef};
use serde_json::Value;

use crate::model::Micros;

/// The mappings shipped with rewind, by the name `--map` takes.
pub const SHIPPED: [(&str, &str); 5] = [
    (
        "seed-000",
        include_str!("../../assets/mappings/seed-000.toml"),
    ),
    (
        "seed-001",
        include_str!("../../assets/mappings/seed-001.toml"),
    ),
    (
        "seed-002",
        include_str!("../../assets/mappings/seed-002.toml"),
    ),
    (
        "seed-003",
        include_str!("../../assets/mappings/seed-003.toml"),
    ),
    (
        "seed-004",
        include_str!("../../assets/mappings/seed-004.toml"),
    ),
];

/// A mapping file, read and checked for its form (not yet against a database).
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// Where it was read from (a path, or a shipped mapping's name), for messages.
    pub origin: String,
    /// Its text, whose hash tells a mirror that it changed.
    pub text: String,
    /// The reducer its streams use.
    pub reducer: Option<String>,
    /// The events (`None` where `files` reads the database and its copies instead).
    pub events: Option<Events>,
    /// A database and its copies read as one history per table.
    pub files: Option<Files>,
    /// The source's own snapshots.
    pub snapshots: Option<Snapshots>,
    /// The streams' attributes.
    pub streams: Option<Streams>,
    /// Work begun and not finished.
    pub pending: Option<Pending>,
    /// How events are shown.
    pub display: Option<Display>,
}

/// The `[display]` table: how the debugger and `rewind log` show the mapping's events.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Display {
    /// An event's title: a jq program over `{stream, version, seq, type, time, data, meta}`
    /// whose one output (text as it is, anything else as JSON) follows the event's type.
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    reducer: Option<String>,
    #[serde(default)]
    events: Option<Events>,
    #[serde(default)]
    files: Option<Files>,
    #[serde(default)]
    snapshots: Option<Snapshots>,
    #[serde(default)]
    streams: Option<Streams>,
    #[serde(default)]
    pending: Option<Pending>,
    #[serde(default)]
    display: Option<Display>,
}

/// The `[files]` table: a database and its copies (`VACUUM INTO` snapshot files) read as one
/// history per table, each file a point in it, ordered by a value each file holds.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    /// The copies: a path relative to the source's folder, whose file name may hold one `*`.
    pub copies: String,
    /// A read-only `SELECT` of one value run in each file: its time (default: `_raft_meta`'s
    /// `last_write_at`).
    #[serde(default)]
    pub order: Option<String>,
    /// How that time is written (a number as text is read as a number).
    #[serde(default)]
    pub order_format: Option<TimeFormat>,
    /// Tables not read (SQLite's own never are).
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// The order query where a `[files]` mapping gives none.
pub const DEFAULT_ORDER: &str = "SELECT value FROM _raft_meta WHERE key = 'last_write_at'";

/// The `[snapshots]` table: the source's own snapshots and which columns are their parts.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshots {
    /// One read-only `SELECT`.
    pub query: String,
    /// The stream's column.
    pub stream: String,
    /// The column of the global seq it was taken at (the stream's last event at or before).
    #[serde(default)]
    pub seq: Option<String>,
    /// The column of the stream's version it was taken at.
    #[serde(default)]
    pub version: Option<String>,
    /// The state's column.
    pub state: String,
    /// How the state is stored.
    #[serde(default)]
    pub state_encoding: Encoding,
    /// A column naming each row's encoding (`json`, `gzip+base64`, `msgpack`), where it varies.
    #[serde(default)]
    pub encoding: Option<String>,
    /// The checksum's column: hex (or an integer, for crc32) of the state column's bytes.
    #[serde(default)]
    pub checksum: Option<String>,
    /// The checksum's algorithm.
    #[serde(default)]
    pub checksum_algorithm: Option<Checksum>,
    /// The column of the version of the snapshot an incremental one patches (NULL: full).
    #[serde(default)]
    pub base: Option<String>,
    /// The column of when it expires.
    #[serde(default)]
    pub expires: Option<String>,
    /// How that time is written.
    #[serde(default)]
    pub expires_format: Option<TimeFormat>,
    /// The source's own id's column, for messages.
    #[serde(default)]
    pub id: Option<String>,
}

/// A checksum's algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum Checksum {
    /// SHA-256, hex.
    #[serde(rename = "sha256")]
    Sha256,
    /// CRC-32 (IEEE), hex or an integer.
    #[serde(rename = "crc32")]
    Crc32,
    /// BLAKE3, hex.
    #[serde(rename = "blake3")]
    Blake3,
}

impl Checksum {
    /// The checksum of `bytes`, as lowercase hex.
    pub fn of(self, bytes: &[u8]) -> String {
        match self {
            Self::Sha256 => {
                use sha2::Digest as _;
                sha2::Sha256::digest(bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            }
            Self::Crc32 => format!("{:08x}", crc32fast::hash(bytes)),
            Self::Blake3 => blake3::hash(bytes).to_hex().to_string(),
        }
    }

    /// Its name in a mapping.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Crc32 => "crc32",
            Self::Blake3 => "blake3",
        }
    }
}

/// The `[streams]` table: a row of attributes per stream, and when a stream is unfinished.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Streams {
    /// One read-only `SELECT`: a row per stream.
    pub query: String,
    /// The stream's column; every other column is an attribute.
    pub stream: String,
    /// An SQL condition over the query's columns and `:now`.
    #[serde(default)]
    pub unfinished: Option<String>,
    /// A read-only `SELECT` of one value: the newest time the source records.
    #[serde(default)]
    pub now: Option<String>,
    /// How `:now` is given to the condition, and the `now` query's value read (default `sql`).
    #[serde(default)]
    pub now_format: Option<TimeFormat>,
}

/// The `[pending]` table: rows of work begun and not finished, by stream.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    /// One read-only `SELECT`.
    pub query: String,
    /// The stream's column; the others are what the work is.
    pub stream: String,
}

/// The `[events]` table: the query and which of its columns are an event's parts.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    /// One read-only `SELECT`.
    pub query: String,
    /// The stream's column.
    pub stream: String,
    /// The global order's column.
    #[serde(default)]
    pub seq: Option<String>,
    /// The position in the stream's column.
    #[serde(default)]
    pub version: Option<String>,
    /// The type's column.
    #[serde(rename = "type")]
    pub kind: String,
    /// The data's column.
    pub data: String,
    /// How the data is stored.
    #[serde(default)]
    pub data_encoding: Encoding,
    /// The meta's column.
    #[serde(default)]
    pub meta: Option<String>,
    /// How the meta is stored.
    #[serde(default)]
    pub meta_encoding: Encoding,
    /// The time's column.
    #[serde(default)]
    pub time: Option<String>,
    /// How the time is written (told by the value where left out: text as RFC 3339 or SQL,
    /// a number refused, never guessed).
    #[serde(default)]
    pub time_format: Option<TimeFormat>,
    /// The source's own id's column.
    #[serde(default)]
    pub id: Option<String>,
    /// On PostgreSQL, the channel the application NOTIFYs when it writes events: a follower
    /// LISTENs and reads the source again only when told (or every half minute).
    #[serde(default)]
    pub listen: Option<String>,
}

/// How a value is stored in its column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub enum Encoding {
    /// JSON as text, or as UTF-8 bytes in a BLOB.
    #[default]
    #[serde(rename = "json")]
    Json,
    /// JSON, gzipped, then base64 (text).
    #[serde(rename = "gzip+base64")]
    GzipBase64,
    /// One msgpack value (a BLOB).
    #[serde(rename = "msgpack")]
    Msgpack,
}

impl Encoding {
    /// The encoding a mapping (or a row's encoding column) names.
    pub fn named(name: &str) -> Option<Self> {
        match name.trim() {
            "json" => Some(Self::Json),
            "gzip+base64" => Some(Self::GzipBase64),
            "msgpack" => Some(Self::Msgpack),
            _ => None,
        }
    }
}

/// How a time is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TimeFormat {
    /// RFC 3339 text.
    #[serde(rename = "rfc3339")]
    Rfc3339,
    /// SQL datetime text (`2026-02-08 10:00:00[.123]`), in UTC.
    #[serde(rename = "sql")]
    Sql,
    /// Seconds since the epoch.
    #[serde(rename = "epoch-s")]
    EpochS,
    /// Milliseconds since the epoch.
    #[serde(rename = "epoch-ms")]
    EpochMs,
    /// Microseconds since the epoch.
    #[serde(rename = "epoch-us")]
    EpochUs,
    /// Nanoseconds since the epoch.
    #[serde(rename = "epoch-ns")]
    EpochNs,
}

/// One row of the events query, read as an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The stream.
    pub stream: String,
    /// The global order.
    pub seq: Option<i64>,
    /// The position in the stream.
    pub version: Option<u64>,
    /// The type.
    pub kind: String,
    /// The data.
    pub data: Value,
    /// The meta.
    pub meta: Option<Value>,
    /// The time, µs since the epoch.
    pub time: Option<Micros>,
    /// The source's own id.
    pub id: Option<String>,
}

/// The SQL a mapping's queries are written in: SQLite's (a file), or PostgreSQL's (a server).
/// A query may be one text for both, or a table of one text per dialect:
///
/// ```toml
/// [events.query]
/// sqlite = "SELECT … FROM events"
/// postgres = "SELECT … payload::text AS payload … FROM events"
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Its key in a mapping's table of queries.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The keys that hold a query, by table.
const QUERY_KEYS: [(&str, &str); 5] = [
    ("events", "query"),
    ("snapshots", "query"),
    ("streams", "query"),
    ("streams", "now"),
    ("pending", "query"),
];

/// The mapping's TOML with each query given per dialect replaced by `dialect`'s text; `None`
/// where no query is given per dialect (the text is read as it is, so errors keep their line).
fn choose_dialect(
    origin: &str,
    text: &str,
    dialect: Dialect,
) -> Result<Option<toml::Table>, String> {
    let Ok(mut table) = toml::from_str::<toml::Table>(text) else {
        return Ok(None);
    };
    let mut chose = false;
    for (section, key) in QUERY_KEYS {
        let Some(toml::Value::Table(section_table)) = table.get_mut(section) else {
            continue;
        };
        let Some(toml::Value::Table(texts)) = section_table.get(key) else {
            continue;
        };
        let at = format!("mapping {origin}: {section}.{key}");
        if let Some(other) = texts.keys().find(|k| {
            ![Dialect::Sqlite, Dialect::Postgres]
                .iter()
                .any(|d| d.name() == *k)
        }) {
            return Err(format!(
                "{at}: {other:?} is no SQL dialect rewind reads; give sqlite = \"…\" and/or postgres = \"…\""
            ));
        }
        let chosen = match texts.get(dialect.name()) {
            Some(toml::Value::String(query)) => query.clone(),
            Some(_) => return Err(format!("{at}.{}: give the query as text", dialect.name())),
            None => {
                return Err(format!(
                    "{at}: gives no {} query (it gives {}); add {}.{key}.{} = \"SELECT …\"",
                    dialect.name(),
                    texts.keys().cloned().collect::<Vec<_>>().join(", "),
                    section,
                    dialect.name()
                ));
            }
        };
        section_table.insert(key.to_owned(), toml::Value::String(chosen));
        chose = true;
    }
    Ok(chose.then_some(table))
}

impl Mapping {
    /// Reads a mapping: a shipped one by name (`seed-000`), else a file.
    pub fn load(spec: &str) -> Result<Self, String> {
        Self::load_for(spec, Dialect::Sqlite)
    }

    /// Reads a mapping, its queries in `dialect`.
    pub fn load_for(spec: &str, dialect: Dialect) -> Result<Self, String> {
        if let Some((name, text)) = SHIPPED.iter().find(|(name, _)| *name == spec) {
            return Self::parse_for(name, text, dialect);
        }
        let path = Path::new(spec);
        let text = std::fs::read_to_string(path).map_err(|e| {
            if spec.starts_with("seed-") {
                format!(
                    "no mapping {spec:?}: rewind ships {}",
                    SHIPPED.map(|(n, _)| n).join(", ")
                )
            } else {
                format!("mapping {}: {e}", path.display())
            }
        })?;
        Self::parse_for(&path.display().to_string(), &text, dialect)
    }

    /// Reads a mapping's text, its queries SQLite's; `origin` names it in messages.
    pub fn parse(origin: &str, text: &str) -> Result<Self, String> {
        Self::parse_for(origin, text, Dialect::Sqlite)
    }

    /// Reads a mapping's text, its queries in `dialect`.
    pub fn parse_for(origin: &str, text: &str, dialect: Dialect) -> Result<Self, String> {
        let chosen = match choose_dialect(origin, text, dialect)? {
            Some(table) => Some(
                toml::Value::Table(table)
                    .try_into::<File>()
                    .map_err(|e| format!("mapping {origin}: {}", e.message()))?,
            ),
            None => None,
        };
        let file: File = match chosen {
            Some(file) => file,
            None => toml::from_str(text).map_err(|e| {
                let message = e.message();
                let at = e
                    .span()
                    .map(|span| {
                        let line = text[..span.start.min(text.len())].lines().count().max(1);
                        format!(" (line {line})")
                    })
                    .unwrap_or_default();
                format!("mapping {origin}{at}: {message}")
            })?,
        };
        let key_error = |key: &str, what: &str| format!("mapping {origin}: {key}: {what}");
        let events = match (file.events, &file.files) {
            (Some(events), None) => {
                let query = checked_query(origin, "events.query", &events.query)?;
                for (key, column) in events.columns() {
                    checked_column(origin, key, column)?;
                }
                if events.meta.is_none() && events.meta_encoding != Encoding::Json {
                    return Err(key_error(
                        "events.meta_encoding",
                        "is given, but no events.meta column",
                    ));
                }
                if events.time.is_none() && events.time_format.is_some() {
                    return Err(key_error(
                        "events.time_format",
                        "is given, but no events.time column",
                    ));
                }
                Some(Events { query, ..events })
            }
            (None, Some(files)) => {
                if files.copies.trim().is_empty() || files.copies.matches('*').count() > 1 {
                    return Err(key_error(
                        "files.copies",
                        "give the copies' path, relative to the source's folder, with at most one * in its file name",
                    ));
                }
                None
            }
            (Some(_), Some(_)) => {
                return Err(key_error(
                    "files",
                    "reads a database and its copies instead of an [events] query: give one of them",
                ));
            }
            (None, None) => {
                return Err(key_error(
                    "events",
                    "is missing: give [events] (a query) or [files] (a database and its copies)",
                ));
            }
        };
        let mut snapshots = file.snapshots;
        if let Some(snapshots) = &mut snapshots {
            snapshots.query = checked_query(origin, "snapshots.query", &snapshots.query)?;
            for (key, column) in snapshots.columns() {
                checked_column(origin, key, column)?;
            }
            if snapshots.seq.is_some() == snapshots.version.is_some() {
                return Err(key_error(
                    "snapshots",
                    "give where each was taken: seq = \"COLUMN\" or version = \"COLUMN\" (one of them)",
                ));
            }
            if snapshots.checksum.is_some() != snapshots.checksum_algorithm.is_some() {
                return Err(key_error(
                    "snapshots.checksum_algorithm",
                    "goes with snapshots.checksum: give both (sha256, crc32 or blake3) or neither",
                ));
            }
            if snapshots.expires.is_none() && snapshots.expires_format.is_some() {
                return Err(key_error(
                    "snapshots.expires_format",
                    "is given, but no snapshots.expires column",
                ));
            }
        }
        let mut streams = file.streams;
        if let Some(streams) = &mut streams {
            streams.query = checked_query(origin, "streams.query", &streams.query)?;
            checked_column(origin, "streams.stream", &streams.stream)?;
            if let Some(now) = &streams.now {
                streams.now = Some(checked_query(origin, "streams.now", now)?);
            }
            if streams
                .unfinished
                .as_deref()
                .is_some_and(|c| c.trim().is_empty())
            {
                return Err(key_error(
                    "streams.unfinished",
                    "is empty; give an SQL condition",
                ));
            }
        }
        let mut pending = file.pending;
        if let Some(pending) = &mut pending {
            pending.query = checked_query(origin, "pending.query", &pending.query)?;
            checked_column(origin, "pending.stream", &pending.stream)?;
        }
        if let Some(title) = file.display.as_ref().and_then(|d| d.title.as_deref()) {
            crate::title::Titles::compile(title)
                .map_err(|e| key_error("display.title", &format!("does not compile: {e}")))?;
        }
        Ok(Self {
            origin: origin.to_owned(),
            text: text.to_owned(),
            reducer: file.reducer,
            events,
            files: file.files,
            snapshots,
            streams,
            pending,
            display: file.display,
        })
    }

    /// What a mirror made through this mapping depends on, hashed: its text without the
    /// `[display]` table, so that changing how events are shown does not make the mirror
    /// again.
    pub fn hash(&self) -> String {
        let text = match toml::from_str::<toml::Table>(&self.text) {
            Ok(mut table) => {
                table.remove("display");
                table.to_string()
            }
            Err(_) => self.text.clone(),
        };
        blake3::hash(text.as_bytes()).to_hex().to_string()
    }

    /// Where `column` (named by `key`) is among the columns `names` of the query `query_key`,
    /// or the error saying the query does not return it.
    pub fn index_of(
        &self,
        query_key: &str,
        key: &str,
        column: &str,
        names: &[String],
    ) -> Result<usize, String> {
        names.iter().position(|n| n == column).ok_or_else(|| {
            self.error(
                key,
                format!(
                    "names column {column:?}, which {query_key} does not return (it returns {})",
                    names
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// The error of a key of this mapping.
    pub fn error(&self, key: &str, what: impl std::fmt::Display) -> String {
        format!("mapping {}: {key}: {what}", self.origin)
    }
}

/// A query's text, trimmed, or the error of an empty one.
fn checked_query(origin: &str, key: &str, query: &str) -> Result<String, String> {
    let query = query.trim();
    if query.is_empty() {
        return Err(format!(
            "mapping {origin}: {key}: is empty; give one SELECT"
        ));
    }
    Ok(query.to_owned())
}

/// The error of a key that names no column.
fn checked_column(origin: &str, key: &str, column: &str) -> Result<(), String> {
    if column.is_empty() || column.contains('"') {
        return Err(format!(
            "mapping {origin}: {key}: names no column (an empty name, or a quote in it)"
        ));
    }
    Ok(())
}

impl Snapshots {
    /// Each column named, with its key.
    pub fn columns(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("snapshots.stream", self.stream.as_str()),
            ("snapshots.state", self.state.as_str()),
        ];
        for (key, column) in [
            ("snapshots.seq", &self.seq),
            ("snapshots.version", &self.version),
            ("snapshots.encoding", &self.encoding),
            ("snapshots.checksum", &self.checksum),
            ("snapshots.base", &self.base),
            ("snapshots.expires", &self.expires),
            ("snapshots.id", &self.id),
        ] {
            if let Some(column) = column {
                out.push((key, column.as_str()));
            }
        }
        out
    }
}

impl Events {
    /// Each column named, with its key.
    pub fn columns(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("events.stream", self.stream.as_str()),
            ("events.type", self.kind.as_str()),
            ("events.data", self.data.as_str()),
        ];
        for (key, column) in [
            ("events.seq", &self.seq),
            ("events.version", &self.version),
            ("events.meta", &self.meta),
            ("events.time", &self.time),
            ("events.id", &self.id),
        ] {
            if let Some(column) = column {
                out.push((key, column.as_str()));
            }
        }
        out
    }
}

/// Where each part of an event is among a query's columns.
#[derive(Debug, Clone)]
pub struct Columns {
    stream: usize,
    seq: Option<usize>,
    version: Option<usize>,
    kind: usize,
    data: usize,
    meta: Option<usize>,
    time: Option<usize>,
    id: Option<usize>,
}

impl Columns {
    /// Finds the mapping's columns among a query's (`names`), or says which key names one
    /// the query does not return.
    pub fn find(mapping: &Mapping, names: &[String]) -> Result<Self, String> {
        let Some(e) = &mapping.events else {
            return Err(mapping.error("events", "is missing"));
        };
        let find = |key: &str, column: &str| mapping.index_of("events.query", key, column, names);
        let optional = |key: &str, column: &Option<String>| -> Result<Option<usize>, String> {
            column.as_deref().map(|c| find(key, c)).transpose()
        };
        Ok(Self {
            stream: find("events.stream", &e.stream)?,
            seq: optional("events.seq", &e.seq)?,
            version: optional("events.version", &e.version)?,
            kind: find("events.type", &e.kind)?,
            data: find("events.data", &e.data)?,
            meta: optional("events.meta", &e.meta)?,
            time: optional("events.time", &e.time)?,
            id: optional("events.id", &e.id)?,
        })
    }

    /// The seq of a row read already, where the mapping names one and it is an integer.
    pub fn seq_in(&self, values: &[SqlValue]) -> Option<i64> {
        match values.get(self.seq?)? {
            SqlValue::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// Reads one row as an event; an error names the key and its column.
    pub fn read(&self, mapping: &Mapping, row: &rusqlite::Row<'_>) -> Result<Row, String> {
        self.read_with(mapping, |index| {
            row.get_ref(index).map_err(|err| err.to_string())
        })
    }

    /// [`Self::read`] of a row's values read already (on another thread than the query's).
    pub fn read_values(&self, mapping: &Mapping, values: &[SqlValue]) -> Result<Row, String> {
        self.read_with(mapping, |index| {
            values
                .get(index)
                .map(ValueRef::from)
                .ok_or_else(|| format!("the row has no column {index}"))
        })
    }

    fn read_with<'v>(
        &self,
        mapping: &Mapping,
        get: impl Fn(usize) -> Result<ValueRef<'v>, String>,
    ) -> Result<Row, String> {
        let Some(e) = &mapping.events else {
            return Err(mapping.error("events", "is missing"));
        };
        let fail = |key: &str, column: &str, what: String| format!("{key} ({column:?}): {what}");
        let stream = text_of(get(self.stream)?)
            .ok_or_else(|| fail("events.stream", &e.stream, "not text or a number".into()))?;
        let kind = match get(self.kind)? {
            ValueRef::Text(t) if !t.is_empty() => String::from_utf8_lossy(t).into_owned(),
            _ => return Err(fail("events.type", &e.kind, "not text".into())),
        };
        let seq = match self.seq {
            None => None,
            Some(i) => Some(match get(i)? {
                ValueRef::Integer(n) => n,
                other => {
                    return Err(fail(
                        "events.seq",
                        e.seq.as_deref().unwrap_or_default(),
                        format!("{} is not an integer", shown(other)),
                    ));
                }
            }),
        };
        let version = match self.version {
            None => None,
            Some(i) => Some(match get(i)? {
                ValueRef::Integer(n) if n > 0 => n.unsigned_abs(),
                other => {
                    return Err(fail(
                        "events.version",
                        e.version.as_deref().unwrap_or_default(),
                        format!("{} is not a positive integer", shown(other)),
                    ));
                }
            }),
        };
        let data = decode(e.data_encoding, get(self.data)?)
            .map_err(|what| fail("events.data", &e.data, what))?;
        let meta = match self.meta {
            None => None,
            Some(i) => match get(i)? {
                ValueRef::Null => None,
                value => Some(decode(e.meta_encoding, value).map_err(|what| {
                    fail("events.meta", e.meta.as_deref().unwrap_or_default(), what)
                })?),
            },
        };
        let time = match self.time {
            None => None,
            Some(i) => time_of(get(i)?, e.time_format)
                .map_err(|what| fail("events.time", e.time.as_deref().unwrap_or_default(), what))?,
        };
        let id = match self.id {
            None => None,
            Some(i) => text_of(get(i)?),
        };
        for (part, value) in [("events.data", Some(&data)), ("events.meta", meta.as_ref())] {
            if value.is_some_and(|v| crate::reduce::depth(v) > crate::reduce::MAX_DEPTH) {
                return Err(format!(
                    "{part}: nests deeper than {} levels",
                    crate::reduce::MAX_DEPTH
                ));
            }
        }
        Ok(Row {
            stream: super::name(&stream),
            seq,
            version,
            kind: super::name(&kind),
            data,
            meta,
            time,
            id,
        })
    }
}

/// A value as a name: text, or an integer as its text.
pub fn text_of(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Text(t) if !t.is_empty() => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A column's value as a message shows it.
pub fn shown(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(x) => x.to_string(),
        ValueRef::Text(t) => format!("{:?}", crate::text::clean(&String::from_utf8_lossy(t), 40)),
        ValueRef::Blob(b) => format!("a BLOB of {} bytes", b.len()),
    }
}

/// Decodes a stored value.
pub fn decode(encoding: Encoding, value: ValueRef<'_>) -> Result<Value, String> {
    let bytes = match value {
        ValueRef::Text(b) | ValueRef::Blob(b) => b,
        ValueRef::Null => return Err("NULL".into()),
        other => return Err(format!("{} is neither text nor a BLOB", shown(other))),
    };
    match encoding {
        Encoding::Json => crate::jsonl::parse_strict(
            std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?,
        )
        .map_err(|e| format!("not JSON: {e}")),
        Encoding::GzipBase64 => {
            let text: Vec<u8> = bytes
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            let zipped = base64::engine::general_purpose::STANDARD
                .decode(&text)
                .map_err(|e| format!("not base64: {e}"))?;
            // Bounded: a small input must not inflate without end.
            let mut json = Vec::new();
            flate2::read::GzDecoder::new(zipped.as_slice())
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut json)
                .map_err(|e| format!("not gzip: {e}"))?;
            if json.len() as u64 > MAX_INFLATED {
                return Err(format!("inflates to more than {} MB", MAX_INFLATED >> 20));
            }
            crate::jsonl::parse_strict(
                std::str::from_utf8(&json)
                    .map_err(|_| "inflates to bytes that are not UTF-8".to_string())?,
            )
            .map_err(|e| format!("inflates to text that is not JSON: {e}"))
        }
        Encoding::Msgpack => super::msgpack::decode_msgpack(bytes).map_err(|e| e.to_string()),
    }
}

/// The most a gzipped value may inflate to.
const MAX_INFLATED: u64 = 64 << 20;

/// Reads a time as `format` says, or as its value says where no format is named.
pub fn time_of(value: ValueRef<'_>, format: Option<TimeFormat>) -> Result<Option<Micros>, String> {
    use super::json_events::Unit;
    let unit = |format: TimeFormat| match format {
        TimeFormat::EpochS => Some(Unit::S),
        TimeFormat::EpochMs => Some(Unit::Ms),
        TimeFormat::EpochUs => Some(Unit::Us),
        TimeFormat::EpochNs => Some(Unit::Ns),
        TimeFormat::Rfc3339 | TimeFormat::Sql => None,
    };
    let epoch = format.is_some_and(|f| unit(f).is_some());
    let number = match value {
        ValueRef::Integer(n) => Some(n as f64),
        ValueRef::Real(x) => Some(x),
        // A number kept as text (`strftime('%s', 'now')`), where the mapping says it is one.
        ValueRef::Text(t) if epoch => std::str::from_utf8(t)
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok()),
        _ => None,
    };
    if let Some(n) = number {
        let Some(unit) = format.and_then(unit) else {
            return Err(format!(
                "{} is a number, and the mapping does not say its unit: add time_format = \"epoch-s\", \"epoch-ms\", \"epoch-us\" or \"epoch-ns\"",
                shown(value)
            ));
        };
        return super::json_events::epoch_us(n, unit)
            .map(Some)
            .ok_or_else(|| format!("{} since the epoch is out of range", shown(value)));
    }
    let text = match value {
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Null => return Ok(None),
        // A BLOB (numbers were read above).
        _ => return Err(format!("{} is not a time", shown(value))),
    };
    match format {
        Some(TimeFormat::Rfc3339) => crate::time::parse(&text).map(Some),
        Some(TimeFormat::Sql) => sql_time(&text).map(Some),
        Some(_) => Err(format!(
            "{text:?} is text, and the mapping says the time is a number since the epoch"
        )),
        None => crate::time::parse(&text)
            .or_else(|_| sql_time(&text))
            .map(Some)
            .map_err(|_| format!("{text:?} is neither an RFC 3339 time nor an SQL datetime")),
    }
}

/// SQL datetime text (`2026-02-08 10:00:00[.123]`), in UTC as SQLite writes it.
fn sql_time(text: &str) -> Result<Micros, String> {
    let civil: jiff::civil::DateTime = text
        .trim()
        .parse()
        .map_err(|e| format!("{text:?} is not an SQL datetime such as 2026-02-08 10:00:00: {e}"))?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().as_microsecond())
        .map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
reducer = "merge"
[events]
query = "SELECT * FROM t;"
stream = "s"
type = "k"
data = "d"
time = "at"
time_format = "epoch-ms"
"#;

    #[test]
    fn a_query_given_per_dialect_is_read_in_the_one_asked_for() {
        let text = "[events]\nstream = \"s\"\ntype = \"k\"\ndata = \"d\"\n\
                    [events.query]\nsqlite = \"SELECT json(d) AS d FROM t\"\n\
                    postgres = \"SELECT d::text AS d FROM t\"\n";
        let lite = Mapping::parse("m.toml", text).unwrap();
        assert_eq!(lite.events.unwrap().query, "SELECT json(d) AS d FROM t");
        let server = Mapping::parse_for("m.toml", text, Dialect::Postgres).unwrap();
        assert_eq!(server.events.unwrap().query, "SELECT d::text AS d FROM t");
        // One text serves both.
        let one = Mapping::parse_for("m.toml", GOOD, Dialect::Postgres).unwrap();
        assert_eq!(one.events.unwrap().query, "SELECT * FROM t;");
        // A dialect not given, or not known, is named.
        let only = text.replace("postgres =", "# postgres =");
        let err = Mapping::parse_for("m.toml", &only, Dialect::Postgres).unwrap_err();
        assert!(
            err.contains("m.toml") && err.contains("events.query: gives no postgres query"),
            "{err}"
        );
        let err = Mapping::parse("m.toml", &text.replace("postgres =", "mysql =")).unwrap_err();
        assert!(err.contains("\"mysql\" is no SQL dialect"), "{err}");
    }

    #[test]
    fn a_mapping_reads_its_keys_and_names_the_file_and_key_of_a_mistake() {
        let m = Mapping::parse("m.toml", GOOD).unwrap();
        let events = m.events.as_ref().unwrap();
        assert_eq!(events.query, "SELECT * FROM t;");
        assert_eq!(events.time_format, Some(TimeFormat::EpochMs));
        let err = Mapping::parse("m.toml", &GOOD.replace("stream =", "strem =")).unwrap_err();
        assert!(err.contains("m.toml") && err.contains("strem"), "{err}");
        let err = Mapping::parse("m.toml", &GOOD.replace("epoch-ms", "epoch-weeks")).unwrap_err();
        assert!(
            err.contains("m.toml") && err.contains("epoch-weeks"),
            "{err}"
        );
        let err = Mapping::parse("m.toml", &GOOD.replace("\"d\"", "\"\"")).unwrap_err();
        assert!(err.contains("events.data"), "{err}");
        let err = Mapping::load("seed-999").unwrap_err();
        assert!(err.contains("seed-000"), "{err}");
    }

    #[test]
    fn every_shipped_mapping_reads() {
        for (name, _) in SHIPPED {
            let m = Mapping::load(name).unwrap();
            assert_eq!(m.origin, name);
        }
    }

    #[test]
    fn values_decode_by_their_encoding_or_say_why_not() {
        let json = decode(Encoding::Json, ValueRef::Text(br#"{"a":1}"#)).unwrap();
        assert_eq!(json, serde_json::json!({"a": 1}));
        assert_eq!(
            decode(Encoding::Json, ValueRef::Blob(br#"[1]"#)).unwrap(),
            serde_json::json!([1])
        );
        let mut zipped = Vec::new();
        {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(&mut zipped, flate2::Compression::fast());
            gz.write_all(br#"{"b":[true]}"#).unwrap();
            gz.finish().unwrap();
        }
        let text = base64::engine::general_purpose::STANDARD.encode(&zipped);
        assert_eq!(
            decode(Encoding::GzipBase64, ValueRef::Text(text.as_bytes())).unwrap(),
            serde_json::json!({"b": [true]})
        );
        assert!(
            decode(Encoding::GzipBase64, ValueRef::Text(b"!!"))
                .unwrap_err()
                .contains("base64")
        );
        assert!(
            decode(Encoding::Json, ValueRef::Text(b"{"))
                .unwrap_err()
                .contains("not JSON")
        );
        assert_eq!(
            decode(Encoding::Msgpack, ValueRef::Blob(&[0x81, 0xa1, b'x', 0x02])).unwrap(),
            serde_json::json!({"x": 2})
        );
    }

    #[test]
    fn times_read_as_their_format_says_and_a_bare_number_is_refused() {
        let at = 1_770_544_800_000_000; // 2026-02-08T10:00:00Z
        assert_eq!(
            time_of(ValueRef::Text(b"2026-02-08 10:00:00"), None).unwrap(),
            Some(at)
        );
        assert_eq!(
            time_of(
                ValueRef::Text(b"2026-02-08T10:00:00Z"),
                Some(TimeFormat::Rfc3339)
            )
            .unwrap(),
            Some(at)
        );
        assert_eq!(
            time_of(
                ValueRef::Integer(1_770_544_800_000),
                Some(TimeFormat::EpochMs)
            )
            .unwrap(),
            Some(at)
        );
        let err = time_of(ValueRef::Integer(1_770_544_800), None).unwrap_err();
        assert!(err.contains("epoch-s"), "{err}");
        assert_eq!(time_of(ValueRef::Null, None).unwrap(), None);
    }
}
