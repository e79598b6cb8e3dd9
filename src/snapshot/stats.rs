//! `stats`: what the database holds per stream and in total, and what reconstruction costs
//! at worst (the most events any version needs replayed).

use std::collections::HashMap;

use serde::Serialize;

use crate::engine::Engine;
use crate::error::Result;

/// Figures for one stream, or for all of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Events stored.
    pub events: u64,
    /// Bytes of event data and metadata.
    pub event_bytes: u64,
    /// Full snapshots (stale ones included).
    pub full_snapshots: u64,
    /// Delta snapshots (stale ones included).
    pub delta_snapshots: u64,
    /// Snapshots built with another reducer than the stream's current one.
    pub stale_snapshots: u64,
    /// Bytes of canonical JSON the snapshots hold.
    pub snapshot_raw_bytes: u64,
    /// Bytes the snapshots take on disk.
    pub snapshot_stored_bytes: u64,
    /// Raw over stored bytes.
    pub compression_ratio: f64,
    /// Mean time taking a snapshot took, µs.
    pub mean_snapshot_us: f64,
    /// The most events any version needs replayed on top of its nearest usable snapshot.
    pub max_replay: u64,
}

/// Figures per stream and in total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Per stream, by name.
    pub streams: Vec<(String, Figures)>,
    /// All streams together (`max_replay` is the largest of any stream).
    pub total: Figures,
    /// Size of the database file(s) on disk, bytes.
    pub file_bytes: u64,
    /// Events in the archive database.
    pub archived_events: u64,
    /// Size of the archive database, bytes.
    pub archive_bytes: u64,
    /// When maintenance last ran, µs since the epoch.
    pub last_maintenance: Option<i64>,
}

/// Gathers the figures in one read transaction.
pub fn stats(engine: &mut Engine) -> Result<Stats> {
    engine.read(|engine| {
        let streams = engine.store().streams()?;
        let event_bytes: HashMap<i64, u64> = engine
            .store()
            .event_bytes_by_stream()?
            .into_iter()
            .collect();
        let mut snapshots: HashMap<i64, Vec<crate::store::SnapshotMeta>> = HashMap::new();
        for snap in engine.store().snapshots(None)? {
            snapshots.entry(snap.stream_id).or_default().push(snap);
        }
        // The versions a fork starts a replay from before its first own snapshot: those its
        // bases (with its reducer) have snapshots at, up to where it shares their versions.
        let mut inherited: HashMap<i64, Vec<u64>> = HashMap::new();
        for stream in &streams {
            let found = inherited.entry(stream.id).or_default();
            for (base, shared) in engine.store().bases(stream)? {
                if base.reducer != stream.reducer {
                    break;
                }
                found.extend(
                    snapshots
                        .get(&base.id)
                        .into_iter()
                        .flatten()
                        .map(|s| s.version)
                        .filter(|v| *v <= shared),
                );
            }
        }
        let mut out = Vec::with_capacity(streams.len());
        let mut total = Figures::default();
        let mut create_us = (0u64, 0u64);
        for stream in &streams {
            let fingerprint = engine.reducer(&stream.reducer)?.fingerprint().to_string();
            let snaps = snapshots.remove(&stream.id).unwrap_or_default();
            let mut f = Figures {
                events: stream.head,
                event_bytes: event_bytes.get(&stream.id).copied().unwrap_or(0),
                ..Figures::default()
            };
            let mut usable = vec![0];
            usable.extend(inherited.get(&stream.id).into_iter().flatten());
            let mut stream_us = (0u64, 0u64);
            for s in &snaps {
                if s.kind == "delta" {
                    f.delta_snapshots += 1;
                } else {
                    f.full_snapshots += 1;
                }
                if s.fingerprint == fingerprint {
                    usable.push(s.version);
                } else {
                    f.stale_snapshots += 1;
                }
                f.snapshot_raw_bytes += s.raw_size;
                f.snapshot_stored_bytes += s.stored_size;
                stream_us = (stream_us.0 + s.create_us, stream_us.1 + 1);
            }
            usable.push(stream.head + 1);
            usable.sort_unstable();
            f.max_replay = usable
                .windows(2)
                .map(|w| w[1].saturating_sub(w[0] + 1))
                .max()
                .unwrap_or(0);
            f.compression_ratio = ratio(f.snapshot_raw_bytes, f.snapshot_stored_bytes);
            f.mean_snapshot_us = ratio(stream_us.0, stream_us.1);
            create_us = (create_us.0 + stream_us.0, create_us.1 + stream_us.1);
            // Events stored: a fork's shared ones are its base's.
            total.events += f.events - stream.base.map_or(0, |(_, v)| v);
            total.event_bytes += f.event_bytes;
            total.full_snapshots += f.full_snapshots;
            total.delta_snapshots += f.delta_snapshots;
            total.stale_snapshots += f.stale_snapshots;
            total.snapshot_raw_bytes += f.snapshot_raw_bytes;
            total.snapshot_stored_bytes += f.snapshot_stored_bytes;
            total.max_replay = total.max_replay.max(f.max_replay);
            out.push((stream.name.clone(), f));
        }
        total.compression_ratio = ratio(total.snapshot_raw_bytes, total.snapshot_stored_bytes);
        total.mean_snapshot_us = ratio(create_us.0, create_us.1);
        let (archived_events, archive_bytes) = engine.store().archive_totals()?;
        Ok(Stats {
            streams: out,
            total,
            file_bytes: engine.store().file_bytes(),
            archived_events,
            archive_bytes,
            last_maintenance: engine.store().last_maintenance()?,
        })
    })
}

#[allow(clippy::cast_precision_loss)] // ratios for display
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}
