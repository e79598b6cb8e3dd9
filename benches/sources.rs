//! Sources' performance targets, measured on LangGraph files of the peers' workload (written
//! in LangGraph's own format by `common/langgraph.rs`, which a test checks against a file the
//! real LangGraph wrote). Run with `cargo bench --bench sources` (all) or `cargo bench --bench
//! sources -- NAME…` for some of: fields-10k, fields-100k, agent-10k, agent-100k,
//! mapped-json-100k, mapped-gzip-100k, mapped-msgpack-100k, mapped-json-1m.
//!
//! For each: the first sync (checkpoints mirrored per second, and open to the first frame),
//! a reopen to the first frame, 100 new checkpoints synced, the mirror's bytes per checkpoint
//! (everything in its file counted) and the state at a random checkpoint with no cache.
//! The mapped-* ones read a seed-000-shaped `agent_events` table through a mapping file
//! (seed 000's own for JSON text) and measure the same, with the state at a random seq.
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

/// Opens a source whose mirror is up to date five times, to the first frame, and prints the
/// median.
fn print_reopen(path: &Path) {
    let mut reopen: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let again = rewind::source::mirror::resolve(path, None)
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

    print_reopen(&path);

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

/// How a mapped bench table's `data` column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    Json,
    GzipBase64,
    Msgpack,
}

/// Agents (streams) of a seed-000-shaped table.
const AGENTS: u64 = 1_000;

/// The seq of the `i`th row: the monitor's global sequence, with a gap (a rolled-back
/// transaction's number) every 97 rows.
fn seq_of_row(i: u64) -> i64 {
    i64::try_from(i + 1 + i / 97).unwrap()
}

/// A seed-000-shaped source: `agent_events` of `rows` rows over `AGENTS` agents, each row's
/// data a small object of the fields it changes (an agent monitor's status updates), and a
/// snapshot of every agent every 100,000 rows; kept between runs.
fn mapped_source(rows: u64, data: Data) -> PathBuf {
    let path = target_dir().join(format!("mapped-{data:?}-{rows}.sqlite"));
    if path.exists() {
        return path;
    }
    let part = path.with_extension("part");
    let _ = std::fs::remove_file(&part);
    let conn = rusqlite::Connection::open(&part).unwrap();
    let kind = if data == Data::Json { "JSON" } else { "BLOB" };
    conn.execute_batch(&format!(
        "CREATE TABLE agent_events (
           id INTEGER PRIMARY KEY AUTOINCREMENT,
           seq INTEGER NOT NULL UNIQUE,
           event_type VARCHAR(50) NOT NULL,
           agent_id VARCHAR(255) NOT NULL,
           data {kind} NOT NULL,
           created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
         CREATE TABLE snapshots (
           id INTEGER PRIMARY KEY AUTOINCREMENT,
           snapshot_id VARCHAR(36) UNIQUE NOT NULL,
           seq BIGINT NOT NULL,
           data JSON NOT NULL,
           created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
           expires_at TIMESTAMP NULL);
         BEGIN;"
    ))
    .unwrap();
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let statuses = ["idle", "thinking", "calling_tool", "waiting", "done"];
    let types = ["status_changed", "tool_called", "tokens_used", "message"];
    // Each agent's state as it goes (every event sets all of its fields), for the monitor's
    // snapshot of every agent every 100,000 rows.
    let mut states: Vec<Option<serde_json::Value>> = vec![None; usize::try_from(AGENTS).unwrap()];
    {
        let mut insert = conn
            .prepare(
                "INSERT INTO agent_events (seq, event_type, agent_id, data, created_at)
                 VALUES (?1, ?2, ?3, ?4, datetime(1764547200 + ?5, 'unixepoch'))",
            )
            .unwrap();
        for i in 0..rows {
            let agent = rng.below(AGENTS);
            let kind = types[usize::try_from(rng.below(4)).unwrap()];
            let value = serde_json::json!({
                "status": statuses[usize::try_from(rng.below(5)).unwrap()],
                "step": i,
                "tokens": rng.below(100_000),
                "last_tool": format!("tool_{}", rng.below(40)),
            });
            let stored: rusqlite::types::Value = match data {
                Data::Json => value.to_string().into(),
                Data::GzipBase64 => {
                    use base64::Engine as _;
                    use std::io::Write as _;
                    let mut gz =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    gz.write_all(value.to_string().as_bytes()).unwrap();
                    base64::engine::general_purpose::STANDARD
                        .encode(gz.finish().unwrap())
                        .into()
                }
                Data::Msgpack => {
                    let mut bytes = Vec::new();
                    rmpv::encode::write_value(&mut bytes, &to_msgpack(&value)).unwrap();
                    bytes.into()
                }
            };
            insert
                .execute(rusqlite::params![
                    seq_of_row(i),
                    kind,
                    format!("agent-{agent:04}"),
                    stored,
                    i64::try_from(i / 10).unwrap(),
                ])
                .unwrap();
            states[usize::try_from(agent).unwrap()] = Some(value);
            if (i + 1) % 100_000 == 0 {
                let all: serde_json::Map<String, serde_json::Value> = states
                    .iter()
                    .enumerate()
                    .filter_map(|(a, s)| Some((format!("agent-{a:04}"), s.clone()?)))
                    .collect();
                conn.execute(
                    "INSERT INTO snapshots (snapshot_id, seq, data) VALUES (?1, ?2, ?3)",
                    rusqlite::params![
                        format!("snap-{i}"),
                        seq_of_row(i),
                        serde_json::Value::Object(all).to_string()
                    ],
                )
                .unwrap();
            }
        }
    }
    conn.execute_batch("COMMIT").unwrap();
    drop(conn);
    std::fs::rename(&part, &path).unwrap();
    path
}

fn to_msgpack(value: &serde_json::Value) -> rmpv::Value {
    use serde_json::Value as J;
    match value {
        J::Null => rmpv::Value::Nil,
        J::Bool(b) => rmpv::Value::Boolean(*b),
        J::Number(n) => n
            .as_i64()
            .map_or_else(|| rmpv::Value::F64(n.as_f64().unwrap()), rmpv::Value::from),
        J::String(s) => rmpv::Value::from(s.as_str()),
        J::Array(items) => rmpv::Value::Array(items.iter().map(to_msgpack).collect()),
        J::Object(map) => rmpv::Value::Map(
            map.iter()
                .map(|(k, v)| (rmpv::Value::from(k.as_str()), to_msgpack(v)))
                .collect(),
        ),
    }
}

/// The mapping a bench table is read through: seed 000's own for JSON text, the same with
/// the data column's encoding named for the others.
fn mapping_for(data: Data) -> String {
    match data {
        Data::Json => "seed-000".into(),
        Data::GzipBase64 | Data::Msgpack => {
            let encoding = if data == Data::Msgpack {
                "msgpack"
            } else {
                "gzip+base64"
            };
            let file = target_dir().join(format!("mapped-{data:?}.toml"));
            std::fs::write(
                &file,
                format!(
                    "reducer = \"merge\"\n[events]\nquery = \"SELECT id, seq, agent_id, event_type, data, created_at FROM agent_events\"\n\
                     stream = \"agent_id\"\nseq = \"seq\"\ntype = \"event_type\"\ndata = \"data\"\n\
                     data_encoding = \"{encoding}\"\ntime = \"created_at\"\ntime_format = \"sql\"\nid = \"id\"\n"
                ),
            )
            .unwrap();
            file.to_string_lossy().into_owned()
        }
    }
}

/// The mapped sync's floor: every row of the events query read and decoded on one thread,
/// as the mirror reads them, and nothing else (nothing written).
fn mapped_read_and_decode(path: &Path, mapping: &str) -> Duration {
    use rewind::source::mapping::{Columns, Mapping};
    let mapping = Mapping::load(mapping).unwrap();
    let query = &mapping.events.as_ref().unwrap().query;
    let source = rewind::source::sqlite::open(path).unwrap();
    let conn = &source.conn;
    let started = Instant::now();
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM ({query}) ORDER BY seq"))
        .unwrap();
    let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let columns = Columns::find(&mapping, &names).unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        std::hint::black_box(columns.read(&mapping, row).unwrap());
    }
    started.elapsed()
}

/// The mapped sync's other floor: the mirror's event rows, as it wrote them, inserted again
/// in the same order into an empty table of the same schema (its indexes included, in a
/// file of its own with the store's settings) with one prepared statement in one
/// transaction, and nothing else: what SQLite alone costs to store them.
fn insert_floor(mirror: &Path, dir: &Path) -> Duration {
    let from = rusqlite::Connection::open(mirror).unwrap();
    let schema: Vec<String> = from
        .prepare("SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let streams_schema: String = from
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'streams'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let rows: Vec<Vec<rusqlite::types::Value>> = from
        .prepare("SELECT seq, stream_id, version, type, ts, data, meta, idem_key, chain FROM events ORDER BY seq")
        .unwrap()
        .query_map([], |r| (0..9).map(|i| r.get(i)).collect())
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    drop(from);
    let path = dir.join("insert-floor.sqlite");
    let to = rusqlite::Connection::open(&path).unwrap();
    to.execute_batch(
        "PRAGMA journal_mode = wal; PRAGMA synchronous = normal; PRAGMA cache_size = -16384;",
    )
    .unwrap();
    // The streams the events name (foreign keys are enforced, as in the store).
    to.execute_batch(&format!(
        "PRAGMA foreign_keys = on; {streams_schema}; ATTACH '{}' AS mirror; \
         INSERT INTO main.streams SELECT * FROM mirror.streams; DETACH mirror;",
        mirror.display()
    ))
    .unwrap();
    for sql in &schema {
        to.execute_batch(sql).unwrap();
    }
    let started = Instant::now();
    to.execute_batch("BEGIN").unwrap();
    {
        let mut insert = to
            .prepare("INSERT INTO events (seq, stream_id, version, type, ts, data, meta, idem_key, chain) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")
            .unwrap();
        for row in &rows {
            insert.execute(rusqlite::params_from_iter(row)).unwrap();
        }
    }
    to.execute_batch("COMMIT").unwrap();
    let took = started.elapsed();
    drop(to);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    took
}

fn bench_mapped(name: &str, rows: u64, data: Data) {
    let held = mapped_source(rows, data);
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("monitor.db");
    std::fs::copy(&held, &path).unwrap();
    let mapping = mapping_for(data);
    rewind::source::settings::save(
        &path,
        &rewind::source::settings::Settings {
            mapping: Some(mapping.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    println!(
        "{name}: {rows} rows over {AGENTS} agents ({data:?} data, seed 000's shape), source {} bytes",
        std::fs::metadata(&path).unwrap().len()
    );
    let floor = mapped_read_and_decode(&path, &mapping);
    let started = Instant::now();
    let mirrored = rewind::source::mirror::resolve(&path, None)
        .unwrap()
        .unwrap();
    let sync = started.elapsed();
    let frame = first_frame(&mirrored.path);
    let insert = insert_floor(&mirrored.path, work.path());
    println!(
        "  first sync           {:>10}  {:>9.0} rows/s   (target ≥ 200,000/s for JSON text)",
        ms(sync),
        rows as f64 / sync.as_secs_f64()
    );
    println!(
        "  read + decode floor  {:>10}  {:>9.0} rows/s; first sync = {:.2}× it",
        ms(floor),
        rows as f64 / floor.as_secs_f64(),
        sync.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "  insert floor         {:>10}  {:>9.0} rows/s; first sync = {:.2}× it, {:.2}× both floors",
        ms(insert),
        rows as f64 / insert.as_secs_f64(),
        sync.as_secs_f64() / insert.as_secs_f64(),
        sync.as_secs_f64() / (insert + floor).as_secs_f64()
    );
    println!(
        "  first open to frame  {:>10}                      (target ≤ 5 s at 1M)",
        ms(sync + frame)
    );
    print_reopen(&path);
    // The state of an agent at a random global seq, with no cache: the row at that seq is
    // read from the source to know whose it is.
    let source = rusqlite::Connection::open(&path).unwrap();
    let mut whose = source
        .prepare("SELECT agent_id FROM agent_events WHERE seq = ?1")
        .unwrap();
    let mut engine = Engine::new(Store::open(&mirrored.path, OpenMode::ReadOnly).unwrap());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut finding: Vec<Duration> = Vec::new();
    let mut cold: Vec<Duration> = (0..2_000)
        .map(|_| {
            let seq = seq_of_row(rng.below(rows));
            let agent: String = whose.query_row([seq], |r| r.get(0)).unwrap();
            engine.clear_cache();
            let started = Instant::now();
            let state = engine.state_at(&agent, Target::Seq(seq)).unwrap();
            let took = started.elapsed();
            let info = engine.store().stream(&agent).unwrap().unwrap();
            let event = engine
                .store()
                .event(&info, state.provenance.version)
                .unwrap()
                .unwrap();
            assert_eq!(
                event.seq, seq,
                "the state is the one after the row at that seq"
            );
            let started = Instant::now();
            let version = engine.store().version_at_seq(&info, seq).unwrap();
            finding.push(started.elapsed());
            assert_eq!(version, state.provenance.version);
            took
        })
        .collect();
    cold.sort_unstable();
    println!(
        "  state at a seq, cold {:>8.1} µs median  {:>8.1} µs p99   (target ≤ 100 µs)",
        percentile(&cold, 0.5).as_secs_f64() * 1e6,
        percentile(&cold, 0.99).as_secs_f64() * 1e6
    );
    finding.sort_unstable();
    println!(
        "    of which the version at the seq {:>6.1} µs median",
        percentile(&finding, 0.5).as_secs_f64() * 1e6
    );
    drop(engine);
    println!(
        "  mirror size          {:>10} bytes",
        bytes_of(&mirrored.path)
    );
    rewind::source::mirror::remove(&mirrored.path).unwrap();
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
            // The mapped tables' settings (which mapping reads them), apart from the user's.
            .env(
                "REWIND_CONFIG_DIR",
                target_dir().join("config-of-sources-bench"),
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
    for (name, rows, data) in [
        ("mapped-json-100k", 100_000, Data::Json),
        ("mapped-gzip-100k", 100_000, Data::GzipBase64),
        ("mapped-msgpack-100k", 100_000, Data::Msgpack),
        ("mapped-json-1m", 1_000_000, Data::Json),
    ] {
        if wants(name) {
            bench_mapped(name, rows, data);
        }
    }
}
