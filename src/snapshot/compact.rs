//! Compaction: which snapshots to keep (last N, every Kth, one per time bucket, a
//! logarithmic ladder) and which to drop (stale, before a version or time, over a byte cap),
//! as a plan that a dry run prints and a real run carries out — the same plan, one code
//! path. The newest usable snapshot of a stream is never dropped, a labelled one only when
//! the rules say so (`drop_labelled`) or the user chose it, and a kept delta whose base goes
//! is rewritten as a full snapshot first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::StreamInfo;
use crate::store::SnapshotMeta;

pub use crate::model::{Bucket, Rules};

/// One snapshot the plan removes or rewrites.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The stream.
    pub stream: String,
    /// The snapshot's version.
    pub version: u64,
    /// `full` or `delta`.
    pub kind: String,
    /// Bytes it takes now.
    pub stored_size: u64,
    /// Why.
    pub reason: String,
    /// Its label, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Row id.
    #[serde(skip)]
    pub id: i64,
}

/// What a compaction does (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Snapshots removed.
    pub drop: Vec<Step>,
    /// Deltas rewritten as full snapshots because their base is removed.
    pub rebase: Vec<Step>,
    /// Snapshots left.
    pub kept: usize,
    /// Labelled snapshots a rule would drop and the plan keeps, since they were taken on
    /// purpose (`drop_labelled` drops them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_labelled: Vec<Step>,
    /// Bytes the removed snapshots take (rebased deltas grow; see `elapsed_us` for time).
    pub bytes_freed: u64,
    /// Whether it was carried out.
    pub applied: bool,
    /// Time taken, µs.
    pub elapsed_us: u64,
}

/// Plans a compaction of one stream or all, and carries it out unless `dry_run`: the dry run
/// and the real run are the same code up to the last step.
pub fn compact(
    engine: &mut Engine,
    stream: Option<&str>,
    rules: &Rules,
    dry_run: bool,
) -> Result<Plan> {
    let started = Instant::now();
    // A real run plans under the write lock, so nothing another process writes meanwhile
    // (a delta on a base the plan drops) can invalidate the plan.
    let mut plan = if dry_run {
        engine.read(|engine| plan(engine, stream, rules))?
    } else {
        let mut planned = engine.write(|engine| {
            let planned = plan(engine, stream, rules)?;
            apply(engine, &planned)?;
            Ok(planned)
        })?;
        planned.applied = true;
        planned
    };
    plan.elapsed_us = crate::engine::elapsed_us(started);
    if plan.applied {
        let detail = serde_json::json!({"rules": rules, "dropped": plan.drop.len(), "rebased": plan.rebase.len(), "bytes_freed": plan.bytes_freed});
        engine.write(|engine| {
            engine
                .store()
                .log("compact", None, &detail, plan.elapsed_us)
        })?;
    }
    Ok(plan)
}

fn plan(engine: &mut Engine, only: Option<&str>, rules: &Rules) -> Result<Plan> {
    let streams: Vec<StreamInfo> = match only {
        Some(name) => vec![engine.store().require_stream(name)?],
        None => engine.store().streams()?,
    };
    let mut by_stream: HashMap<i64, Vec<SnapshotMeta>> = HashMap::new();
    for snap in engine.store().snapshots(only.map(|_| streams[0].id))? {
        by_stream.entry(snap.stream_id).or_default().push(snap);
    }
    // (stream index, snapshot) of everything kept, and what goes with its reason.
    let mut kept: Vec<(usize, SnapshotMeta)> = Vec::new();
    let mut protected: HashSet<i64> = HashSet::new();
    let mut drop: Vec<Step> = Vec::new();
    let mut kept_labelled: Vec<Step> = Vec::new();
    for (si, stream) in streams.iter().enumerate() {
        let snaps = by_stream.remove(&stream.id).unwrap_or_default();
        if snaps.is_empty() {
            continue;
        }
        let fingerprint = engine.reducer(&stream.reducer)?.fingerprint().to_string();
        // The newest snapshot that loads is never dropped.
        if let Some(newest) = snaps
            .iter()
            .rev()
            .find(|s| engine.decode_snapshot(s, &fingerprint).is_ok())
        {
            protected.insert(newest.id);
        }
        let keep = keep_set(&snaps, stream.head, rules);
        for snap in snaps {
            let reason = if protected.contains(&snap.id) {
                None
            } else if rules.drop_stale && snap.fingerprint != fingerprint {
                Some("stale".to_string())
            } else if rules.before_version.is_some_and(|v| snap.version < v) {
                Some("before the version".to_string())
            } else if rules.before_time.is_some_and(|t| snap.ts < t) {
                Some("before the time".to_string())
            } else if rules
                .expired_at
                .is_some_and(|now| snap.expires_at.is_some_and(|e| e <= now))
            {
                Some("expired".to_string())
            } else if !keep.contains(&snap.id) {
                Some("not kept by any rule".to_string())
            } else {
                None
            };
            match reason {
                // A labelled snapshot was taken on purpose: no rule removes it unless the
                // rules say labelled ones may go.
                Some(reason) if snap.label.is_some() && !rules.drop_labelled => {
                    kept_labelled.push(step(stream, &snap, reason));
                    protected.insert(snap.id);
                    kept.push((si, snap));
                }
                Some(reason) => drop.push(step(stream, &snap, reason)),
                None => kept.push((si, snap)),
            }
        }
    }
    if let Some(cap) = rules.max_bytes {
        // Oldest first by event time; what is protected stays even past the cap.
        kept.sort_by_key(|(_, s)| (s.ts, s.version));
        let mut total: u64 = kept.iter().map(|(_, s)| s.stored_size).sum();
        let mut rest = Vec::with_capacity(kept.len());
        for (si, snap) in kept {
            if total > cap
                && snap.label.is_some()
                && !rules.drop_labelled
                && !kept_labelled.iter().any(|k| k.id == snap.id)
            {
                kept_labelled.push(step(
                    &streams[si],
                    &snap,
                    format!("over the {cap}-byte cap"),
                ));
                rest.push((si, snap));
            } else if total > cap && !protected.contains(&snap.id) {
                total -= snap.stored_size;
                drop.push(step(
                    &streams[si],
                    &snap,
                    format!("over the {cap}-byte cap"),
                ));
            } else {
                rest.push((si, snap));
            }
        }
        kept = rest;
    }
    let mut plan = settle(engine, &streams, kept, drop);
    plan.kept_labelled = kept_labelled;
    Ok(plan)
}

/// What remains of a plan once what goes is known: a kept delta whose base goes is rewritten
/// as a full snapshot; one that cannot be read is no use without its base either, and goes
/// too.
fn settle(
    engine: &Engine,
    streams: &[StreamInfo],
    mut kept: Vec<(usize, SnapshotMeta)>,
    mut drop: Vec<Step>,
) -> Plan {
    let dropped: HashSet<i64> = drop.iter().map(|s| s.id).collect();
    let mut rebase = Vec::new();
    kept.retain(|(si, s)| {
        if !s.base_id.is_some_and(|b| dropped.contains(&b)) {
            return true;
        }
        if engine.decode_snapshot(s, &s.fingerprint).is_ok() {
            rebase.push(step(&streams[*si], s, "its base is dropped".into()));
            true
        } else {
            drop.push(step(
                &streams[*si],
                s,
                "its base is dropped and it cannot be read".into(),
            ));
            false
        }
    });
    drop.sort_by(|a, b| (&a.stream, a.version).cmp(&(&b.stream, b.version)));
    Plan {
        bytes_freed: drop.iter().map(|s| s.stored_size).sum(),
        drop,
        rebase,
        kept: kept.len(),
        kept_labelled: Vec::new(),
        applied: false,
        elapsed_us: 0,
    }
}

/// Drops the snapshots of one stream the user chose (by version), whatever the rules say:
/// labelled or newest. Planned under the write lock like a compaction; a delta left without
/// its base is rewritten as a full snapshot first. A version with no snapshot is an error
/// that names the versions there are, and nothing is dropped.
pub fn drop_chosen(engine: &mut Engine, stream: &str, versions: &[u64]) -> Result<Plan> {
    let started = Instant::now();
    let mut plan = engine.write(|engine| {
        let info = engine.store().require_stream(stream)?;
        let snaps = engine.store().snapshots(Some(info.id))?;
        if let Some(missing) = versions
            .iter()
            .find(|v| !snaps.iter().any(|s| s.version == **v))
        {
            let there: Vec<String> = snaps.iter().map(|s| format!("v{}", s.version)).collect();
            return Err(Error::Input(format!(
                "stream {stream:?} has no snapshot at v{missing} (it has {})",
                if there.is_empty() {
                    "none".to_string()
                } else {
                    there.join(", ")
                }
            )));
        }
        let (chosen, kept): (Vec<SnapshotMeta>, Vec<SnapshotMeta>) = snaps
            .into_iter()
            .partition(|s| versions.contains(&s.version));
        let streams = [info];
        let drop = chosen
            .iter()
            .map(|s| step(&streams[0], s, "chosen".to_string()))
            .collect();
        let kept = kept.into_iter().map(|s| (0, s)).collect();
        let planned = settle(engine, &streams, kept, drop);
        apply(engine, &planned)?;
        Ok(planned)
    })?;
    plan.applied = true;
    plan.elapsed_us = crate::engine::elapsed_us(started);
    let detail = serde_json::json!({"stream": stream, "chosen": versions, "dropped": plan.drop.len(), "rebased": plan.rebase.len(), "bytes_freed": plan.bytes_freed});
    engine.write(|engine| {
        engine
            .store()
            .log("drop snapshots", None, &detail, plan.elapsed_us)
    })?;
    Ok(plan)
}

fn step(stream: &StreamInfo, snap: &SnapshotMeta, reason: String) -> Step {
    Step {
        stream: stream.name.clone(),
        version: snap.version,
        kind: snap.kind.clone(),
        stored_size: snap.stored_size,
        reason,
        label: snap.label.clone(),
        id: snap.id,
    }
}

/// The snapshots (by id) the keep rules keep; all of them without a keep rule.
fn keep_set(snaps: &[SnapshotMeta], head: u64, rules: &Rules) -> HashSet<i64> {
    if !rules.has_keep_rule() {
        return snaps.iter().map(|s| s.id).collect();
    }
    let mut keep = HashSet::new();
    let newest_first = || snaps.iter().rev();
    if let Some(n) = rules.keep_last {
        keep.extend(newest_first().take(n).map(|s| s.id));
    }
    if let Some(k) = rules.keep_every.filter(|k| *k > 0) {
        keep.extend(newest_first().step_by(k).map(|s| s.id));
    }
    if let Some(bucket) = rules.keep_per {
        let mut newest: BTreeMap<i64, i64> = BTreeMap::new();
        for s in snaps {
            newest.insert(crate::time::bucket(bucket, s.ts), s.id);
        }
        keep.extend(newest.into_values());
    }
    if rules.ladder {
        // Rung r holds distances from the head in [2^(r-1), 2^r); `snaps` is oldest first,
        // so the last snapshot written to a rung is its newest.
        let mut newest: BTreeMap<u32, i64> = BTreeMap::new();
        for s in snaps {
            let distance = head.saturating_sub(s.version) + 1;
            newest.insert(u64::BITS - distance.leading_zeros(), s.id);
        }
        keep.extend(newest.into_values());
    }
    keep
}

/// Rewrites the deltas that lose their base as full snapshots, then removes the dropped rows.
fn apply(engine: &mut Engine, plan: &Plan) -> Result<()> {
    for step in &plan.rebase {
        crate::failpoint::point("compact");
        engine.rebase_to_full(step.id).map_err(|e| {
            Error::Input(format!(
                "rebasing {} v{} before its base goes: {}",
                step.stream,
                step.version,
                crate::error::describe(&e)
            ))
        })?;
    }
    // Deltas before the bases they name: the database refuses a dangling base.
    let ids: Vec<i64> = plan
        .drop
        .iter()
        .filter(|s| s.kind == "delta")
        .chain(plan.drop.iter().filter(|s| s.kind != "delta"))
        .map(|s| s.id)
        .collect();
    for chunk in ids.chunks(64) {
        crate::failpoint::point("compact");
        engine.store().delete_snapshots(chunk)?;
    }
    Ok(())
}
