//! Sources' performance targets, measured on LangGraph files of the peers' workload (written
//! in LangGraph's own format by `common/langgraph.rs`, which a test checks against a file the
//! real LangGraph wrote). Run with `cargo bench --bench sources` (all) or `cargo bench --bench
//! sources -- NAME…` for some of: fields-10k, fields-100k, agent-10k, agent-100k.
//!
//! For each: the first sync (checkpoints mirrored per second, and open to the first frame),
//! a reopen to the first frame, 100 new checkpoints synced, the mirror's bytes per checkpoint
//! (everything in its file counted) and the state at a random checkpoint with no cache.
//! The source files take a while to write, so they are kept under `target/bench-data/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)] // a harness

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rewind::tui::app::{App, Start};
use rewind::{Engine, OpenMode, Store, Target};

#[allow(dead_code)] // shared with the other harnesses
mod common;
use common::{Rng, percentile};

#[path = "common/langgraph.rs"]
mod langgraph_file;
use langgraph_file::Shape;

// The same allocator as the binary, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// New checkpoints an incremental sync takes in.
const NEW: u64 = 100;

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn target_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
            PathBuf::from,
        )
        .join("bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A source of `steps` node steps whose first `steps + 2 - NEW` checkpoints are written (the
/// rest arrive during the benchmark), kept between runs.
fn source(shape: Shape, steps: u64) -> PathBuf {
    let path = target_dir().join(format!("langgraph-{shape:?}-{steps}.sqlite"));
    if !path.exists() {
        let part = path.with_extension("part");
        let _ = std::fs::remove_file(&part);
        let conn = rusqlite::Connection::open(&part).unwrap();
        drop(conn);
        langgraph_file::write_upto(&part, shape, steps, steps + 2 - NEW);
        std::fs::rename(&part, &path).unwrap();
    }
    path
}

/// The mirror's file with everything beside it.
fn bytes_of(mirror: &Path) -> u64 {
    ["", "-wal", "-shm", ".archive"]
        .iter()
        .filter_map(|s| std::fs::metadata(rewind::store::sidecar(mirror, s)).ok())
        .map(|m| m.len())
        .sum()
}

fn first_frame(mirror: &Path) -> Duration {
    let started = Instant::now();
    let engine = Engine::new(Store::open(mirror, OpenMode::ReadOnly).unwrap());
    let start = Start {
        height: 50,
        deterministic: true,
        ..Start::default()
    };
    let mut app = App::new(engine, &start).unwrap();
    app.load();
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).unwrap();
    terminal.draw(|f| rewind::tui::ui::render(f, &app)).unwrap();
    started.elapsed()
}

/// The first sync's floor: every checkpoint's rows read and decoded on one thread, as the
/// mirror reads them, and nothing else (no difference taken, nothing written).
fn read_and_decode(path: &Path) -> Duration {
    use rewind::source::langgraph::{outline, read_branch};
    let source = rewind::source::sqlite::open(path).unwrap();
    let conn = &source.conn;
    let started = Instant::now();
    conn.execute_batch("BEGIN").unwrap();
    let branches = outline(conn).unwrap();
    let whole = rewind::source::langgraph::whole_threads(&branches);
    for (branch, &alone) in branches.iter().zip(&whole) {
        read_branch(
            conn,
            branch,
            alone,
            |e| e,
            |raw| {
                std::hint::black_box(raw.decode()?);
                Ok(())
            },
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    started.elapsed()
}

fn bench(name: &str, shape: Shape, steps: u64) {
    let held = source(shape, steps);
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("checkpoints.sqlite");
    std::fs::copy(&held, &path).unwrap();
    let checkpoints = steps + 2 - NEW;
    println!(
        "{name}: {checkpoints} checkpoints ({shape:?}), source {} bytes",
        std::fs::metadata(&path).unwrap().len()
    );

    let floor = read_and_decode(&path);
    let started = Instant::now();
    let mirrored = rewind::source::mirror::resolve(&path, None)
        .unwrap()
        .unwrap();
    let sync = started.elapsed();
    let frame = first_frame(&mirrored.path);
    println!(
        "  first sync           {:>10}  {:>9.0} checkpoints/s   (target ≥ 50,000/s)",
        ms(sync),
        checkpoints as f64 / sync.as_secs_f64()
    );
    println!(
        "  read + decode floor  {:>10}  first sync = {:.2}× it (one thread reading and decoding every checkpoint, nothing else)",
        ms(floor),
        sync.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "  first open to frame  {:>10}                      (target ≤ 3 s at 100k)",
        ms(sync + frame)
    );

    let mut reopen: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let again = rewind::source::mirror::resolve(&path, None)
                .unwrap()
                .unwrap();
            started.elapsed() + first_frame(&again.path)
        })
        .collect();
    reopen.sort_unstable();
    println!(
        "  reopen to frame      {:>10}  (median of 5)       (target ≤ 200 ms)",
        ms(percentile(&reopen, 0.5))
    );

    let conn = rusqlite::Connection::open(&path).unwrap();
    langgraph_file::append(&conn, shape, steps, checkpoints, checkpoints + NEW);
    drop(conn);
    let started = Instant::now();
    let synced = rewind::source::mirror::resolve(&path, None)
        .unwrap()
        .unwrap();
    let increment = started.elapsed();
    assert!(
        !synced.rebuilt,
        "new checkpoints are appended, not a reason to start again"
    );
    println!(
        "  {NEW} new checkpoints   {:>10}                      (target ≤ 20 ms)",
        ms(increment)
    );

    {
        // Settled: the log checkpointed into the file, as after any reader closes it.
        let store = Store::open(&synced.path, OpenMode::Existing).unwrap();
        store.checkpoint();
    }
    let total = checkpoints + NEW;
    println!(
        "  mirror size          {:>10} bytes  {:>6.0} bytes/checkpoint   (target ≤ 300; LangGraph 2,870)",
        bytes_of(&synced.path),
        bytes_of(&synced.path) as f64 / total as f64
    );

    let mut engine = Engine::new(Store::open(&synced.path, OpenMode::ReadOnly).unwrap());
    let stream = langgraph_file::THREAD;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut cold: Vec<Duration> = (0..2_000)
        .map(|_| {
            engine.clear_cache();
            let at = 1 + rng.below(total);
            let started = Instant::now();
            let state = engine.state_at(stream, Target::Version(at)).unwrap();
            let took = started.elapsed();
            assert_eq!(state.provenance.version, at);
            took
        })
        .collect();
    cold.sort_unstable();
    println!(
        "  state, cold          {:>8.1} µs median  {:>8.1} µs p99   (target ≤ 50 µs; LangGraph get_state 72 µs)",
        percentile(&cold, 0.5).as_secs_f64() * 1e6,
        percentile(&cold, 0.99).as_secs_f64() * 1e6
    );
    drop(engine);
    rewind::source::mirror::remove(&synced.path).unwrap();
}

fn main() {
    // Mirrors go to the data directory the environment names: a folder of the benchmark's
    // own, set by running this harness again with it.
    if std::env::var_os("REWIND_DATA_DIR").is_none() {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(std::env::args_os().skip(1))
            .env(
                "REWIND_DATA_DIR",
                target_dir().join("mirrors-of-sources-bench"),
            )
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    println!(
        "rewind sources benchmarks on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for (name, shape, steps) in [
        ("fields-10k", Shape::Fields, 10_000),
        ("agent-10k", Shape::Agent, 10_000),
        ("fields-100k", Shape::Fields, 100_000),
        ("agent-100k", Shape::Agent, 100_000),
    ] {
        if wants(name) {
            bench(name, shape, steps);
        }
    }
}
