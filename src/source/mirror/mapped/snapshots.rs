//! A mapped source's own snapshots (`[snapshots]`), checked, never trusted: each is read as
//! stored (its checksum over the stored bytes first, then its encoding), an incremental one
//! applied to the snapshot it builds on, and the state compared with the one the events give
//! at the version it was taken. One that is corrupt, unreadable, built on a bad one, or not
//! the events' state is a finding; an expired one (as of the source's newest time or `--now`)
//! is ignored. Those that agree are used: each sync keeps them in the mirror as snapshots of
//! its own (trigger `source`), where reconstruction starts from them.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::Value;

use crate::diff::Change;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{Micros, Target};
use crate::snapshot::verify::{Finding, FindingKind};
use crate::source::mapping::{self, Checksum, Encoding, Mapping, Snapshots};

/// The mirror's meta key for the snapshots last checked: what the query gave, hashed, and
/// the time they were judged at.
const STAMP: &str = "mapped.snapshots";

/// The trigger of the mirror's snapshots that are the source's.
pub const TRIGGER: &str = "source";

/// What checking a source's snapshots found.
#[derive(Debug, Default)]
pub struct Checked {
    /// The snapshots the query gives.
    pub total: u64,
    /// Those whose state is the events' at their version: (stream, version).
    pub valid: Vec<(String, u64)>,
    /// Those expired, ignored.
    pub expired: u64,
    /// Those not checked: the events cannot be replayed to their version.
    pub unchecked: u64,
    /// The others, each a finding.
    pub findings: Vec<Finding>,
    /// The states of `valid`, in its order, where the caller keeps them (a sync stores them
    /// as the mirror's snapshots without replaying to them again).
    pub(crate) states: Vec<Arc<Value>>,
}

/// Where the columns of the snapshots query are.
struct Columns {
    stream: usize,
    position: usize,
    state: usize,
    encoding: Option<usize>,
    checksum: Option<usize>,
    base: Option<usize>,
    expires: Option<usize>,
    id: Option<usize>,
}

impl Columns {
    fn find(
        mapping: &Mapping,
        s: &Snapshots,
        names: &[String],
    ) -> std::result::Result<Self, String> {
        let find =
            |key: &str, column: &str| mapping.index_of("snapshots.query", key, column, names);
        let optional = |key: &str, column: &Option<String>| {
            column.as_deref().map(|c| find(key, c)).transpose()
        };
        let (position_key, position) = position_of(s);
        Ok(Self {
            stream: find("snapshots.stream", &s.stream)?,
            position: find(position_key, position)?,
            state: find("snapshots.state", &s.state)?,
            encoding: optional("snapshots.encoding", &s.encoding)?,
            checksum: optional("snapshots.checksum", &s.checksum)?,
            base: optional("snapshots.base", &s.base)?,
            expires: optional("snapshots.expires", &s.expires)?,
            id: optional("snapshots.id", &s.id)?,
        })
    }
}

/// The key and column of where a snapshot was taken: its seq, or its version.
fn position_of(s: &Snapshots) -> (&'static str, &str) {
    match (&s.seq, &s.version) {
        (Some(seq), _) => ("snapshots.seq", seq.as_str()),
        (None, Some(version)) => ("snapshots.version", version.as_str()),
        // Refused when the mapping is read.
        (None, None) => ("snapshots.version", ""),
    }
}

/// Checks every snapshot the mapping's query gives (of `only`, where given) against the
/// events in the mirror, as of `now`.
pub fn check(
    engine: &mut Engine,
    conn: &Connection,
    mapping: &Mapping,
    now: Option<Micros>,
    only: Option<&str>,
) -> std::result::Result<Checked, String> {
    check_keeping(engine, conn, mapping, now, only, false)
}

/// [`check`], keeping the valid snapshots' states where `keep` says so.
fn check_keeping(
    engine: &mut Engine,
    conn: &Connection,
    mapping: &Mapping,
    now: Option<Micros>,
    only: Option<&str>,
    keep: bool,
) -> std::result::Result<Checked, String> {
    let Some(s) = &mapping.snapshots else {
        return Ok(Checked::default());
    };
    let query = super::one_statement(conn, mapping, "snapshots.query", &s.query)?;
    let (_, names) = super::read_only(conn, mapping, "snapshots.query", &query)?;
    let (position_key, position) = position_of(s);
    let unit = if s.seq.is_some() { "seq" } else { "version" };
    let events_seq = mapping.events.as_ref().is_some_and(|e| e.seq.is_some());
    let sorted = format!(
        "SELECT * FROM (\n{query}\n) ORDER BY \"{}\", \"{position}\"",
        s.stream
    );
    let (mut stmt, _) = super::read_only(conn, mapping, "snapshots.query", &sorted)?;
    let columns = Columns::find(mapping, s, &names)?;
    let sql_error = |e: rusqlite::Error| mapping.error("snapshots.query", super::sqlite_error(&e));
    let mut rows = stmt.query([]).map_err(sql_error)?;
    let mut checked = Checked::default();
    // The states of the current stream's snapshots read so far, by position, for the
    // incremental ones built on them; or why one cannot be built on.
    let mut current = String::new();
    let mut resolved: HashMap<i64, std::result::Result<Value, String>> = HashMap::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        let get = |i: usize| row.get_ref(i).map_err(|e| e.to_string());
        let Some(stream) = mapping::text_of(get(columns.stream)?) else {
            return Err(mapping.error(
                "snapshots.stream",
                format!("a row's {:?} is not text or a number", s.stream),
            ));
        };
        let stream = crate::source::name(&stream);
        let at = match get(columns.position)? {
            ValueRef::Integer(n) => n,
            other => {
                return Err(mapping.error(
                    position_key,
                    format!(
                        "stream {stream:?}: {} is not an integer",
                        mapping::shown(other)
                    ),
                ));
            }
        };
        if only.is_some_and(|o| o != stream) {
            continue;
        }
        if stream != current {
            current.clone_from(&stream);
            resolved.clear();
        }
        checked.total += 1;
        let named = match columns.id.map(get).transpose()?.and_then(mapping::text_of) {
            Some(id) => format!("the source's snapshot {id:?} ({unit} {at})"),
            None => format!("the source's snapshot at {unit} {at}"),
        };
        let expired = match columns.expires {
            None => false,
            Some(i) => match mapping::time_of(get(i)?, s.expires_format) {
                Ok(Some(expires)) => now.is_some_and(|now| expires <= now),
                Ok(None) => false,
                Err(e) => {
                    return Err(mapping.error("snapshots.expires", format!("{named}: {e}")));
                }
            },
        };
        let state = read_state(s, &columns, row, &resolved, unit);
        // Where it was taken, in the mirror's stream.
        let info = engine.store().stream(&stream).map_err(|e| e.to_string())?;
        let version = match (&info, s.seq.is_some()) {
            (None, _) => None,
            // The events' seq is the mirror's own (kept as the source's): found by a search
            // of the stream's versions, not a scan of its events' meta.
            (Some(info), true) if events_seq => Some(
                engine
                    .store()
                    .version_at_seq(info, at)
                    .map_err(|e| e.to_string())?,
            ),
            (Some(info), true) => Some(
                engine
                    .store()
                    .version_at_or_before_meta(info, "seq", at)
                    .map_err(|e| e.to_string())?,
            ),
            (Some(_), false) => u64::try_from(at).ok(),
        };
        // The state, and the replay's where it equals it.
        type Outcome = std::result::Result<(Value, Arc<Value>), (String, Vec<Change>)>;
        let outcome: Outcome = match state {
            Err(why) => Err((why, Vec::new())),
            Ok(_) if info.is_none() => Err((
                format!("is of stream {stream:?}, which the events query gives no event of"),
                Vec::new(),
            )),
            Ok(_) if version.is_none_or(|v| info.as_ref().is_some_and(|i| v > i.head)) => Err((
                format!(
                    "is taken at {unit} {at}, past the stream's newest event (version {})",
                    info.as_ref().map_or(0, |i| i.head)
                ),
                Vec::new(),
            )),
            Ok(state) => {
                let (Some(info), Some(version)) = (&info, version) else {
                    unreachable!("both checked above")
                };
                match engine.state_of(info, Target::Version(version)) {
                    Err(e) => {
                        checked.unchecked += 1;
                        resolved.insert(at, Err(format!("could not be checked ({e})")));
                        continue;
                    }
                    Ok(rec) if *rec.state == state => Ok((state, rec.state)),
                    Ok(rec) => Err((
                        format!(
                            "is not the state the events give at version {version} (the stored state on the left)"
                        ),
                        crate::diff::changes(&state, &rec.state),
                    )),
                }
            }
        };
        match outcome {
            Ok((state, replayed)) => {
                if expired {
                    checked.expired += 1;
                } else if let Some(version) = version {
                    checked.valid.push((stream.clone(), version));
                    if keep {
                        checked.states.push(replayed);
                    }
                }
                resolved.insert(at, Ok(state));
            }
            Err((why, diff)) => {
                resolved.insert(at, Err(why.clone()));
                if expired {
                    checked.expired += 1;
                } else {
                    checked.findings.push(Finding {
                        stream: stream.clone(),
                        version,
                        kind: FindingKind::Source,
                        detail: format!("{named} {why}"),
                        diff,
                    });
                }
            }
        }
    }
    Ok(checked)
}

/// A snapshot row's state: its checksum checked over the bytes as stored, decoded, and for an
/// incremental one applied (RFC 7386) to the state of the one it builds on; or why not.
fn read_state(
    s: &Snapshots,
    columns: &Columns,
    row: &rusqlite::Row<'_>,
    resolved: &HashMap<i64, std::result::Result<Value, String>>,
    unit: &str,
) -> std::result::Result<Value, String> {
    let get = |i: usize| row.get_ref(i).map_err(|e| e.to_string());
    let stored = get(columns.state)?;
    if let (Some(i), Some(algorithm)) = (columns.checksum, s.checksum_algorithm) {
        let bytes = match stored {
            ValueRef::Text(b) | ValueRef::Blob(b) => b,
            _ => &[][..],
        };
        let want = expected_checksum(get(i)?, algorithm)?;
        let got = algorithm.of(bytes);
        if want != got {
            return Err(format!(
                "is corrupt: its {} checksum is {want}, and its stored bytes give {got}",
                algorithm.name()
            ));
        }
    }
    let encoding = match columns.encoding {
        None => s.state_encoding,
        Some(i) => match get(i)? {
            ValueRef::Null => s.state_encoding,
            value => {
                let name = mapping::text_of(value).unwrap_or_default();
                Encoding::named(&name).ok_or_else(|| {
                    format!(
                        "names the encoding {name:?} (snapshots.encoding), which is none of json, gzip+base64, msgpack"
                    )
                })?
            }
        },
    };
    let state = mapping::decode(encoding, stored).map_err(|e| format!("cannot be read: {e}"))?;
    let Some(i) = columns.base else {
        return Ok(state);
    };
    let base = match get(i)? {
        ValueRef::Null => return Ok(state),
        ValueRef::Integer(n) => n,
        other => {
            return Err(format!(
                "names {} as the snapshot it builds on (snapshots.base), not an integer",
                mapping::shown(other)
            ));
        }
    };
    match resolved.get(&base) {
        Some(Ok(base_state)) => {
            let mut built = base_state.clone();
            json_patch::merge(&mut built, &state);
            Ok(built)
        }
        Some(Err(why)) => Err(format!(
            "builds on the snapshot at {unit} {base}, which {why}"
        )),
        None => Err(format!(
            "builds on a snapshot at {unit} {base} that the snapshots query does not give"
        )),
    }
}

/// The checksum a row states, as lowercase hex (an integer for CRC-32 as its hex; an
/// `algorithm:` prefix left out).
fn expected_checksum(
    value: ValueRef<'_>,
    algorithm: Checksum,
) -> std::result::Result<String, String> {
    match value {
        ValueRef::Integer(n) if algorithm == Checksum::Crc32 => u32::try_from(n)
            .map(|n| format!("{n:08x}"))
            .map_err(|_| format!("its crc32 checksum {n} is not a 32-bit number")),
        ValueRef::Text(t) => {
            let text = String::from_utf8_lossy(t).trim().to_ascii_lowercase();
            let hex = text
                .strip_prefix(&format!("{}:", algorithm.name()))
                .unwrap_or(&text);
            Ok(hex.to_owned())
        }
        ValueRef::Null => Err("has no checksum (NULL in snapshots.checksum)".into()),
        other => Err(format!(
            "has the checksum {}, which is not hex text",
            mapping::shown(other)
        )),
    }
}

/// At a sync: where the snapshots the query gives changed since the last check (or the time
/// they are judged at did), checks them again and keeps those that agree as the mirror's own.
pub(super) fn sync(
    engine: &mut Engine,
    conn: &Connection,
    mapping: &Mapping,
    now: Option<Micros>,
    at_source: &dyn Fn(String) -> Error,
) -> Result<()> {
    let Some(s) = &mapping.snapshots else {
        if engine.store().meta(STAMP)?.is_some() {
            engine.store().delete_meta(STAMP)?;
        }
        return Ok(());
    };
    let query =
        super::one_statement(conn, mapping, "snapshots.query", &s.query).map_err(at_source)?;
    // What the query gives, hashed without reading the states: their rows' keys and sizes.
    let (_, position) = position_of(s);
    let keys = format!(
        "SELECT \"{}\", \"{position}\", length(\"{}\"), {} FROM (\n{query}\n)",
        s.stream,
        s.state,
        s.checksum
            .as_deref()
            .map_or_else(|| "NULL".to_owned(), |c| format!("\"{c}\""))
    );
    let (mut stmt, _) =
        super::read_only(conn, mapping, "snapshots.query", &keys).map_err(at_source)?;
    let sql_error =
        |e: rusqlite::Error| at_source(mapping.error("snapshots.query", super::sqlite_error(&e)));
    let mut hasher = blake3::Hasher::new();
    let mut rows = stmt.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        for i in 0..4 {
            match row.get_ref(i).map_err(sql_error)? {
                ValueRef::Null => hasher.update(b"N"),
                ValueRef::Integer(n) => hasher.update(&n.to_le_bytes()),
                ValueRef::Real(x) => hasher.update(&x.to_le_bytes()),
                ValueRef::Text(b) | ValueRef::Blob(b) => hasher.update(b),
            };
            hasher.update(b"\x1f");
        }
        hasher.update(b"\x1e");
    }
    drop(rows);
    drop(stmt);
    let stamp = format!("{} {:?}", hasher.finalize().to_hex(), now);
    if engine.store().meta(STAMP)?.as_deref() == Some(stamp.as_str()) {
        return Ok(());
    }
    let checked = check_keeping(engine, conn, mapping, now, None, true).map_err(at_source)?;
    for ((stream, version), state) in checked.valid.into_iter().zip(checked.states) {
        let Some(info) = engine.store().stream(&stream)? else {
            continue;
        };
        if version > 0 && !engine.store().has_snapshot(info.id, version)? {
            // Full, as a manual snapshot is: the source's snapshot must not lean on another.
            engine.store_state(&info, version, &state, TRIGGER, None, 0, None)?;
        }
    }
    engine.store().set_meta(STAMP, &stamp)?;
    Ok(())
}
