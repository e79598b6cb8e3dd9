//! rewind's performance targets, measured. Run with `cargo bench` (all workloads) or
//! `cargo bench -- NAME…` for some of: import, size, random, head, verify, compact, scale,
//! big.
//!
//! A plain harness rather than divan: the targets are medians *and* p99s over many random
//! queries, and a database's bytes per event, which a per-iteration timer does not report.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)] // a harness

use std::fmt::Write as _;
use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::{Rng, percentile};

// The same allocator as the binary, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::{Value, json};

/// Fields in the state of the standard workload.
const FIELDS: usize = 50;

/// The standard workload as JSONL: one stream, each event a merge patch of one of 50 fields.
fn workload_jsonl(events: u64) -> Vec<u8> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut out = String::with_capacity(events as usize * 80);
    for i in 0..events {
        let field = rng.below(FIELDS as u64);
        let _ = writeln!(
            out,
            r#"{{"stream":"bench","type":"FieldSet","data":{{"field_{field:02}":{}}}}}"#,
            i * 7 + rng.below(1000)
        );
    }
    out.into_bytes()
}

fn import(path: &Path, jsonl: &[u8]) -> Duration {
    let mut engine = Engine::new(Store::open(path, OpenMode::Create).unwrap());
    let started = Instant::now();
    engine
        .import(
            rewind::jsonl::read_lines(Cursor::new(jsonl), "bench"),
            false,
        )
        .unwrap();
    started.elapsed()
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn report(name: &str, samples: &mut [Duration], target: &str) {
    samples.sort_unstable();
    println!(
        "{name:<44} median {:>10}  p99 {:>10}  max {:>10}  (n={}, target {target})",
        us(percentile(samples, 0.5)),
        us(percentile(samples, 0.99)),
        us(*samples.last().unwrap()),
        samples.len()
    );
}

/// Bytes of the database file after a checkpoint, per event.
fn bytes_per_event(path: &Path, events: u64) -> f64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .unwrap();
    drop(conn);
    std::fs::metadata(path).unwrap().len() as f64 / events as f64
}

/// Random versions through one engine; `cold` empties its cache before every query, so
/// every answer is a snapshot load plus a replay, whatever the history length.
fn random_versions(path: &Path, head: u64, queries: usize, label: &str, cold: bool) {
    let mut engine = Engine::new(Store::open(path, OpenMode::Existing).unwrap());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut samples = Vec::with_capacity(queries);
    for _ in 0..queries {
        let v = 1 + rng.below(head);
        if cold {
            engine.clear_cache();
        }
        let started = Instant::now();
        let rec = engine.state_at("bench", Target::Version(v)).unwrap();
        samples.push(started.elapsed());
        assert_eq!(rec.provenance.version, v);
    }
    let cache = if cold { "cold" } else { "warm" };
    report(
        &format!("state at a random version ({label}, {cache})"),
        &mut samples,
        "median ≤ 100 µs, p99 ≤ 500 µs",
    );
}

fn standard(which: &[String]) {
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let events = 100_000;
    let jsonl = workload_jsonl(events);
    let took = import(&path, &jsonl);
    if wants("import") {
        println!(
            "{:<44} {:>10.0} events/s ({events} events in {:.0} ms, target ≥ 200,000/s)",
            "import, one transaction, default snapshots",
            events as f64 / took.as_secs_f64(),
            took.as_secs_f64() * 1000.0
        );
    }
    if wants("size") {
        println!(
            "{:<44} {:>10.1} bytes/event (target ≤ 150)",
            "database size, snapshots included",
            bytes_per_event(&path, events)
        );
        let store = Store::open(&path, OpenMode::Existing).unwrap();
        let snaps = store.snapshots(None).unwrap();
        let stored: u64 = snaps.iter().map(|s| s.stored_size).sum();
        println!(
            "{:<44} {:>10} snapshots, {:.1} bytes/event of snapshot blobs",
            "",
            snaps.len(),
            stored as f64 / events as f64
        );
    }
    if wants("random") {
        random_versions(&path, events, 20_000, "100k events", false);
        random_versions(&path, events, 20_000, "100k events", true);
    }
    if wants("head") {
        let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
        let mut warm = Vec::new();
        let mut cold = Vec::new();
        for _ in 0..5_000 {
            let started = Instant::now();
            engine.state_at("bench", Target::Head).unwrap();
            warm.push(started.elapsed());
        }
        for _ in 0..2_000 {
            engine.clear_cache();
            let started = Instant::now();
            engine.state_at("bench", Target::Head).unwrap();
            cold.push(started.elapsed());
        }
        report(
            "state at the latest version (warm engine)",
            &mut warm,
            "≤ 50 µs",
        );
        report("state at the latest version (cold cache)", &mut cold, "-");
    }
    if wants("verify") {
        let started = Instant::now();
        let report = rewind::snapshot::verify::verify(&path, None, &|_, _| {}).unwrap();
        let took = started.elapsed();
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        println!(
            "{:<44} {:>10.0} events/s ({} events, {} snapshots in {:.0} ms, target ≥ 500,000/s)",
            "verify (replay + compare every snapshot)",
            report.events as f64 / took.as_secs_f64(),
            report.events,
            report.snapshots,
            took.as_secs_f64() * 1000.0
        );
    }
    if wants("compact") {
        // 10,000 snapshots (a policy snapshot every 10 events), then a ladder compaction.
        let path = dir.path().join("compact.db");
        let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
        engine
            .set_policy(
                None,
                &rewind::engine::Policy {
                    every: Some(10),
                    ..Default::default()
                },
            )
            .unwrap();
        engine
            .import(
                rewind::jsonl::read_lines(Cursor::new(workload_jsonl(events)), "bench"),
                false,
            )
            .unwrap();
        let snapshots = engine.store().snapshots(None).unwrap().len();
        let rules = rewind::model::Rules {
            ladder: true,
            ..Default::default()
        };
        let started = Instant::now();
        let plan = rewind::snapshot::compact::compact(&mut engine, None, &rules, false).unwrap();
        let took = started.elapsed();
        println!(
            "{:<44} {:>10.0} ms ({snapshots} snapshots, {} dropped, {} rebased, target < 1,000 ms)",
            "compaction (ladder) of 10,000 snapshots",
            took.as_secs_f64() * 1000.0,
            plan.drop.len(),
            plan.rebase.len()
        );
    }
    if wants("scale") {
        for n in [10_000, 1_000_000] {
            let path = dir.path().join(format!("scale-{n}.db"));
            import(&path, &workload_jsonl(n));
            random_versions(&path, n, 20_000, &format!("{}k events", n / 1000), true);
        }
    }
}

/// A ~1 MB state (thousands of keys); each event touches 1% of it.
fn big(which: &[String]) {
    if !(which.is_empty() || which.iter().any(|w| w == "big")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.db");
    const KEYS: usize = common::BIG_KEYS;
    let events = 10_000u64;
    let (items, mut rng) = common::big_events(events);
    let value = common::big_value;
    let size = serde_json::to_vec(&items[0]).unwrap().len();
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    let started = Instant::now();
    engine
        .import(
            items
                .into_iter()
                .map(|data| common::item("big", "Patch", data, None)),
            false,
        )
        .unwrap();
    println!(
        "{:<44} {} bytes of state, {events} events imported in {:.1} s",
        "~1 MB state",
        size,
        started.elapsed().as_secs_f64()
    );
    let mut take = Vec::new();
    for i in 0..30 {
        let target = Target::Version(events - 1 - i * 7);
        engine.state_at("big", target).unwrap();
        let started = Instant::now();
        let meta = engine.take_snapshot("big", target, "manual", None).unwrap();
        take.push(started.elapsed());
        if i == 0 {
            println!(
                "{:<44} raw {} bytes, stored {} bytes",
                "  full snapshot", meta.raw_size, meta.stored_size
            );
        }
    }
    report(
        "  full snapshot of the ~1 MB state (state cached)",
        &mut take,
        "≤ 5 ms",
    );
    // Where a snapshot's time goes.
    let state = engine.state_at("big", Target::Head).unwrap().state;
    let (mut enc, mut sum, mut zst) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..30 {
        let t = Instant::now();
        let bytes = rewind::codec::canonical(&state);
        enc.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(rewind::codec::checksum(&[], &bytes));
        sum.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(rewind::codec::compress(&bytes).unwrap());
        zst.push(t.elapsed());
    }
    report("    of which: canonical JSON", &mut enc, "-");
    report("    of which: blake3", &mut sum, "-");
    report("    of which: zstd", &mut zst, "-");
    // A delta 100 events after its full base, on a workload whose events touch 1% of the
    // keys each (a counter in each touched value, as live state changes).
    let delta_path = dir.path().join("big-delta.db");
    let mut delta_engine = Engine::new(Store::open(&delta_path, OpenMode::Create).unwrap());
    delta_engine
        .set_policy(
            None,
            &rewind::engine::Policy {
                every: Some(0),
                bytes: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
    let mut initial = serde_json::Map::new();
    for k in 0..KEYS {
        initial.insert(format!("key_{k:05}"), value(&mut rng));
    }
    let item = |data: Value| common::item("big", "Patch", data, None);
    delta_engine
        .import(std::iter::once(item(Value::Object(initial))), false)
        .unwrap();
    let full = delta_engine
        .take_snapshot("big", Target::Head, "manual", None)
        .unwrap();
    let touches: Vec<Value> = (1..=100)
        .map(|i| {
            let mut patch = serde_json::Map::new();
            for _ in 0..KEYS / 100 {
                patch.insert(
                    format!("key_{:05}", rng.below(KEYS as u64)),
                    json!({ "n": i }),
                );
            }
            Value::Object(patch)
        })
        .collect();
    delta_engine
        .import(touches.into_iter().map(item), true)
        .unwrap();
    // The delta the policy would store k events after the base, and what encoding it costs.
    let base_blob = delta_engine.store().snapshot_blob(full.id).unwrap();
    let place = |version, kind, base: Option<&[u8]>| {
        rewind::codec::binding("big", version, &full.fingerprint, kind, base)
    };
    let base = rewind::codec::canonical_bytes(
        &base_blob,
        full.raw_size,
        &full.checksum,
        &place(full.version, "full", None),
    )
    .unwrap();
    for k in [1u64, 10, 100] {
        let state = delta_engine
            .state_at("big", Target::Version(1 + k))
            .unwrap()
            .state;
        let mut takes = Vec::new();
        let mut size = 0;
        for _ in 0..10 {
            let started = Instant::now();
            let binding = place(1 + k, "delta", Some(&full.checksum));
            let delta = rewind::codec::encode_delta(&state, &base, &binding).unwrap();
            takes.push(started.elapsed());
            size = delta.blob.len();
        }
        report(
            &format!(
                "  delta {k:>3} events after its base: {:.1}% of full",
                size as f64 * 100.0 / full.stored_size as f64
            ),
            &mut takes,
            "≤ 5% and ≤ 5 ms at 100 events",
        );
    }
    let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    let mut random = Vec::new();
    for _ in 0..300 {
        let v = 1 + rng.below(events);
        engine.clear_cache();
        let started = Instant::now();
        engine.state_at("big", Target::Version(v)).unwrap();
        random.push(started.elapsed());
    }
    report(
        "  state at a random version (cold cache)",
        &mut random,
        "≤ 10 ms",
    );
}

fn main() {
    // `cargo bench` passes `--bench`; everything else names workloads.
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    println!(
        "rewind benchmarks on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    standard(&which);
    big(&which);
}
