//! `verify`: every stored snapshot is checked (size, checksum, fingerprint) and compared with
//! a replay of the events before it; the event chain (dense versions, seq growing with
//! version) and SQLite's own integrity are checked too. Streams are verified in parallel,
//! each worker on its own connection. Each stream's hash chain is recomputed from its
//! stored bytes and compared with the values stored with its events and its head; its head
//! is reported, and compared with heads kept elsewhere (`--expect`), which is what makes a
//! consistently rewritten history show.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::chain::Hash;
use crate::diff::Change;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::StreamInfo;
use crate::store::OpenMode;

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A snapshot that cannot be read: size, zstd, checksum or JSON.
    Corrupt,
    /// A snapshot built with another reducer than the stream's current one.
    Stale,
    /// A snapshot that reads fine but differs from the replay of the events before it.
    Divergence,
    /// A delta snapshot whose base is missing.
    MissingBase,
    /// The event chain is broken: a version is missing or seq does not grow with version.
    Chain,
    /// An event the stream's reducer cannot apply.
    Reduce,
    /// An event whose application went over its budget (see [`crate::budget`]).
    OverBudget,
    /// SQLite's integrity check failed.
    Integrity,
    /// An event's stored bytes do not give the chain value stored with it (or with the
    /// stream's head), or a chain value is missing: an event was changed, removed or added.
    Hash,
    /// A stream's chain differs from the expected heads given to `verify --expect`.
    Expected,
    /// A mirror that does not reproduce its source: the state after an event differs from
    /// the checkpoint the source stores for it, or a checkpoint is missing.
    Source,
}

/// A stream's head as its events' chain gives it: what to keep elsewhere and hand back to
/// `verify --expect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Head {
    /// The stream.
    pub stream: String,
    /// Its head version.
    pub version: u64,
    /// The chain value after that version, 64 hex digits.
    pub hash: String,
}

/// One problem found by `verify`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The stream (empty for database-wide findings).
    pub stream: String,
    /// The version of the snapshot or event concerned.
    pub version: Option<u64>,
    /// What kind of problem.
    pub kind: FindingKind,
    /// What exactly.
    pub detail: String,
    /// For a divergence: how the snapshot differs from the replay (snapshot → replay).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<Change>,
}

/// The outcome of `verify`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Streams checked.
    pub streams: usize,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Events replayed.
    pub events: u64,
    /// Problems, by stream and version.
    pub findings: Vec<Finding>,
    /// Each stream's head and its chain value (none for a file without chains yet).
    pub heads: Vec<Head>,
    /// What the caller should know that is not a problem (a file without chains yet).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Wall time, µs.
    pub elapsed_us: u64,
}

/// Verifies a database file (all streams, or one), calling `progress(done, total)` as
/// streams finish.
pub fn verify(
    path: &Path,
    only: Option<&str>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Report> {
    verify_expecting(path, only, None, progress)
}

/// [`verify`], also comparing each stream's chain with `expect`, heads kept elsewhere: a
/// stream missing, added, shorter than its expected version or with another chain value at
/// that version is a finding. A stream grown since is not.
pub fn verify_expecting(
    path: &Path,
    only: Option<&str>,
    expect: Option<&[Head]>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Report> {
    let started = Instant::now();
    let engine = Engine::open(path, OpenMode::ReadOnly)?;
    let store = engine.store();
    let mut notes = Vec::new();
    let chained = if !store.chains() {
        notes.push(format!(
            "the file has schema version {}, from before event hashes: there is no chain to check yet (the first write command adds it)",
            store.schema_version()
        ));
        false
    } else if store.meta(crate::store::CHAIN_PENDING)?.is_some() {
        notes.push(
            "the events' chain values have not been computed yet (the first write command computes them): there is no chain to check yet".into(),
        );
        false
    } else {
        true
    };
    let wanted: HashMap<&str, u64> = expect
        .unwrap_or_default()
        .iter()
        .map(|h| (h.stream.as_str(), h.version))
        .collect();
    let damaged = |detail: String| Finding {
        stream: String::new(),
        version: None,
        kind: FindingKind::Integrity,
        detail,
        diff: Vec::new(),
    };
    // A file that opens but whose pages are damaged is a finding, not a failure to verify.
    let mut findings: Vec<Finding> = store
        .integrity_check()
        .unwrap_or_else(|err| vec![crate::error::describe(&err)])
        .into_iter()
        .map(damaged)
        .collect();
    let listed = match only {
        Some(name) => store.require_stream(name).map(|s| vec![s]),
        None => store.streams(),
    };
    let streams: Vec<StreamInfo> = match listed {
        Ok(streams) => streams,
        Err(err) if err.is_corrupt() => {
            findings.push(damaged(format!(
                "the stream list cannot be read: {}",
                crate::error::describe(&err)
            )));
            Vec::new()
        }
        Err(err) => return Err(err),
    };
    let total = streams.len();
    let done = AtomicUsize::new(0);
    let results = super::on_workers(
        path,
        OpenMode::ReadOnly,
        streams,
        "verify",
        |engine, stream| {
            let mut found = Vec::new();
            // The stream is read again inside the transaction that reads its events and
            // snapshots: its head and how far it is archived are then of the same moment.
            let checked = engine.read(|engine| {
                let stream = engine.store().require_stream(&stream.name)?;
                let counts = verify_stream(engine, &stream, &mut found)?;
                let chain = if chained {
                    let want = wanted.get(stream.name.as_str()).copied();
                    Some(verify_chain(engine, &stream, want, &mut found)?)
                } else {
                    None
                };
                Ok((counts, chain))
            });
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            match checked {
                Ok(((s, e), chain)) => Ok((s, e, found, chain)),
                Err(err) => Err((stream.name.clone(), err)),
            }
        },
    )?;
    let (mut snapshots, mut events) = (0, 0);
    let mut chains: HashMap<String, ChainOutcome> = HashMap::new();
    for result in results {
        match result {
            Ok((s, e, mut found, chain)) => {
                snapshots += s;
                events += e;
                findings.append(&mut found);
                if let Some(chain) = chain {
                    chains.insert(chain.head.stream.clone(), chain);
                }
            }
            Err((stream, err)) if err.is_corrupt() => findings.push(Finding {
                stream,
                ..damaged(format!(
                    "its rows cannot be read: {}",
                    crate::error::describe(&err)
                ))
            }),
            Err((_, err)) => return Err(err),
        }
    }
    if let Some(expect) = expect {
        if chained {
            compare_heads(expect, only, &chains, &mut findings);
        } else {
            findings.push(Finding {
                kind: FindingKind::Expected,
                ..damaged(
                    "the expected heads cannot be checked: the file has no event chain yet (run a write command on it first)".into(),
                )
            });
        }
    }
    findings.sort_by(|a, b| (&a.stream, a.version).cmp(&(&b.stream, b.version)));
    let mut heads: Vec<Head> = chains.into_values().map(|c| c.head).collect();
    heads.sort_by(|a, b| a.stream.cmp(&b.stream));
    Ok(Report {
        streams: total,
        snapshots,
        events,
        findings,
        heads,
        notes,
        elapsed_us: crate::engine::elapsed_us(started),
    })
}

/// What checking one stream's chain gave.
struct ChainOutcome {
    /// Its head, by the recomputed chain.
    head: Head,
    /// The recomputed chain value at the expected version, if the stream reaches it.
    at_expected: Option<Hash>,
}

/// Recomputes a stream's chain from its start over every stored event (archived ones
/// included), reporting the first event whose stored value departs from it, events without
/// one, and a stored head that is not the chain's; `want` is a version whose value to keep.
fn verify_chain(
    engine: &Engine,
    stream: &StreamInfo,
    want: Option<u64>,
    found: &mut Vec<Finding>,
) -> Result<ChainOutcome> {
    let finding = |version: u64, detail: String| Finding {
        stream: stream.name.clone(),
        version: Some(version),
        kind: FindingKind::Hash,
        detail,
        diff: Vec::new(),
    };
    let store = engine.store();
    let mut hash = crate::chain::genesis(&stream.name);
    let mut at_expected = None;
    let mut broken = false;
    let (mut missing, mut first_missing) = (0u64, None);
    let mut last = 0;
    store.chain_rows(stream, stream.head, |c| {
        hash = crate::engine::chain_next(&hash, &stream.name, &c.row);
        last = c.row.version;
        if want == Some(c.row.version) {
            at_expected = Some(hash);
        }
        // Rows of a stream this one continues carry that stream's chain, checked with it.
        if broken || !c.own {
            return Ok(());
        }
        match c.chain {
            None => {
                missing += 1;
                first_missing.get_or_insert(c.row.version);
            }
            Some(stored) if stored != crate::chain::short(&hash) => {
                broken = true;
                found.push(finding(
                    c.row.version,
                    format!(
                        "the chain breaks at v{}: this event or one before it was changed",
                        c.row.version
                    ),
                ));
            }
            Some(_) => {}
        }
        Ok(())
    })?;
    if let Some(first) = first_missing {
        found.push(finding(
            first,
            format!(
                "{missing} events have no chain value, the first at v{first}: written outside rewind, or their values removed"
            ),
        ));
    }
    if !broken && missing == 0 {
        match store.head_hash(stream.id)? {
            None if stream.head > 0 => found.push(finding(
                stream.head,
                "the stream has no stored head hash".into(),
            )),
            Some(stored) if stored != hash && last == stream.head => found.push(finding(
                stream.head,
                "the stream's stored head hash is not its events' chain: its last events were removed or changed, or the head was".into(),
            )),
            _ => {}
        }
    }
    Ok(ChainOutcome {
        head: Head {
            stream: stream.name.clone(),
            version: stream.head,
            hash: crate::chain::to_hex(&hash),
        },
        at_expected,
    })
}

/// Compares the streams' recomputed chains with heads kept elsewhere.
fn compare_heads(
    expect: &[Head],
    only: Option<&str>,
    chains: &HashMap<String, ChainOutcome>,
    findings: &mut Vec<Finding>,
) {
    let finding = |stream: &str, version: Option<u64>, detail: String| Finding {
        stream: stream.to_string(),
        version,
        kind: FindingKind::Expected,
        detail,
        diff: Vec::new(),
    };
    for want in expect {
        if only.is_some_and(|name| name != want.stream) {
            continue;
        }
        let Some(chain) = chains.get(&want.stream) else {
            findings.push(finding(
                &want.stream,
                None,
                format!(
                    "the expected heads have this stream at v{}, the database does not have it: removed or renamed",
                    want.version
                ),
            ));
            continue;
        };
        if chain.head.version < want.version {
            findings.push(finding(
                &want.stream,
                Some(want.version),
                format!(
                    "the stream is at v{}, the expected heads have it at v{}: events were removed",
                    chain.head.version, want.version
                ),
            ));
            continue;
        }
        let expected = crate::chain::from_hex(&want.hash);
        if expected.is_none() || chain.at_expected != expected {
            findings.push(finding(
                &want.stream,
                Some(want.version),
                format!(
                    "its chain value at v{} is not the expected one: an event at or before v{} was changed",
                    want.version, want.version
                ),
            ));
        }
    }
    let known: std::collections::HashSet<&str> = expect.iter().map(|h| h.stream.as_str()).collect();
    for name in chains.keys().filter(|n| !known.contains(n.as_str())) {
        findings.push(finding(
            name,
            None,
            "the stream is not in the expected heads: created since they were kept, or added"
                .into(),
        ));
    }
}

/// Reads heads kept elsewhere: the output of `verify --json` (its `heads`), or lines of
/// `stream<TAB>version<TAB>hash` (blank lines and lines starting with `#` ignored).
pub fn read_expected(text: &str) -> std::result::Result<Vec<Head>, String> {
    if text.trim_start().starts_with('{') {
        #[derive(serde::Deserialize)]
        struct Heads {
            heads: Vec<Head>,
        }
        let parsed: Heads = serde_json::from_str(text)
            .map_err(|e| format!("not the output of `rewind verify --json`: {e}"))?;
        return Ok(parsed.heads);
    }
    let mut heads = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let parsed = match fields.as_slice() {
            [stream, version, hash] => version
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|_| crate::chain::from_hex(hash).is_some())
                .map(|version| Head {
                    stream: (*stream).to_string(),
                    version,
                    hash: hash.trim().to_string(),
                }),
            _ => None,
        };
        heads.push(parsed.ok_or_else(|| {
            format!(
                "line {}: expected stream<TAB>version<TAB>64 hex digits",
                n + 1
            )
        })?);
    }
    Ok(heads)
}

/// Replays one stream from the start, segment by segment between its snapshots, comparing
/// each snapshot with the replay. Returns (snapshots checked, events replayed).
fn verify_stream(
    engine: &mut Engine,
    stream: &StreamInfo,
    found: &mut Vec<Finding>,
) -> Result<(usize, u64)> {
    let finding = |version: Option<u64>, kind, detail: String| Finding {
        stream: stream.name.clone(),
        version,
        kind,
        detail,
        diff: Vec::new(),
    };
    let reducer = engine.reducer(&stream.reducer)?;
    let fingerprint = reducer.fingerprint();
    let snapshots = engine.store().snapshots(Some(stream.id))?;
    let ids: std::collections::HashSet<i64> = snapshots.iter().map(|s| s.id).collect();
    let mut state = Value::Object(serde_json::Map::new());
    let mut at = 0;
    let mut checked = 0;
    // Seq must grow with version; checked as the replay reads each row.
    let mut last_seq = i64::MIN;
    let mut out_of_order = Vec::new();
    let mut check_seq = |row: &crate::store::EventRow<'_>, _: &Value| {
        if row.seq <= last_seq {
            out_of_order.push(row.version);
        }
        last_seq = row.seq;
    };
    // A replay that fails ends the walk; what was found on the way is still reported.
    let mut failed = None;
    for snap in &snapshots {
        if let Some(base) = snap.base_id.filter(|b| !ids.contains(b)) {
            found.push(finding(
                Some(snap.version),
                FindingKind::MissingBase,
                format!("its base snapshot #{base} is missing"),
            ));
        }
        if snap.version > stream.head {
            found.push(finding(
                Some(snap.version),
                FindingKind::Chain,
                format!("snapshot beyond the stream's head v{}", stream.head),
            ));
            continue;
        }
        if let Err(err) = engine.replay_onto(
            stream,
            &reducer,
            &mut state,
            at,
            snap.version,
            &mut check_seq,
        ) {
            failed = Some(err);
            break;
        }
        at = snap.version;
        checked += 1;
        if snap.fingerprint != fingerprint {
            found.push(finding(
                Some(snap.version),
                FindingKind::Stale,
                format!(
                    "built with reducer {}, the stream now uses {fingerprint}",
                    snap.fingerprint
                ),
            ));
            continue;
        }
        match engine.decode_snapshot(snap, fingerprint) {
            Err(reason) => found.push(finding(Some(snap.version), FindingKind::Corrupt, reason)),
            Ok(stored) if stored != state => found.push(Finding {
                diff: crate::diff::changes(&stored, &state),
                ..finding(
                    Some(snap.version),
                    FindingKind::Divergence,
                    "differs from the replay of the events before it".into(),
                )
            }),
            Ok(_) => {}
        }
    }
    let outcome = match failed {
        Some(err) => Err(err),
        None => engine.replay_onto(
            stream,
            &reducer,
            &mut state,
            at,
            stream.head,
            &mut check_seq,
        ),
    };
    for version in out_of_order {
        found.push(finding(
            Some(version),
            FindingKind::Chain,
            "its seq is not greater than the previous version's".into(),
        ));
    }
    if let Err(err) = outcome {
        found.push(replay_finding(stream, err));
        return Ok((checked, at));
    }
    Ok((checked, stream.head))
}

fn replay_finding(stream: &StreamInfo, err: Error) -> Finding {
    let (version, kind) = match &err {
        Error::OverBudget { version, limit, .. } => {
            return Finding {
                stream: stream.name.clone(),
                version: Some(*version),
                kind: FindingKind::OverBudget,
                detail: format!("applying the event went over its limit of {limit}"),
                diff: Vec::new(),
            };
        }
        Error::Reduce { version, .. } => (Some(*version), FindingKind::Reduce),
        Error::MissingVersion { version, .. } => (Some(*version), FindingKind::Chain),
        _ => (None, FindingKind::Chain),
    };
    Finding {
        stream: stream.name.clone(),
        version,
        kind,
        detail: crate::error::describe(&err),
        diff: Vec::new(),
    }
}
