//! Issue 14's PostgreSQL targets, measured on a Marten-shaped store: 10,000,000 events in
//! 100,000 streams of 100, plus one stream of 1,000,000 events with a stored snapshot in
//! `mt_streams`. Run with `cargo bench --bench postgres` (after `cargo build --release`: the
//! commands are the built binary's).
//!
//! The store is loaded with `COPY` into a server of the bench's own, started from the
//! installed server binaries (as the tests do) with its data under
//! `target/bench-data/marten-pg/` and kept between runs (made again when `DATA_VERSION`
//! changes); the server is stopped at the end. `REWIND_BENCH_MARTEN_SCALE=N` divides every
//! count by N (the figures are at 1).
//!
//! Each figure is printed beside a floor measured in the same run: the same rows read by the
//! `postgres` client alone (a full read of the log for the first sync, the stream's rows for a
//! stream), so the ratio is what rewind adds to reading the server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)] // a harness

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)] // shared with the other harnesses
mod common;
use common::{Rng, percentile};

/// Changing this loads the store again.
const DATA_VERSION: &str = "marten-pg bench data v1";
/// The store: short streams, events in each, and the long stream's events.
const STREAMS: u64 = 100_000;
const PER_STREAM: u64 = 100;
const LONG: u64 = 1_000_000;
const LONG_ID: &str = "ffffffff-0000-4000-8000-000000000000";
const PORT: u16 = 55_499;

fn scale() -> u64 {
    std::env::var("REWIND_BENCH_MARTEN_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(1)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The server binaries, as the tests find them.
fn binaries() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .find(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        })
    })
}

/// The postgres user's ids, where the bench runs as root (the server refuses root).
fn server_user() -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres"))
            .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
            .flatten()
    })
}

/// The bench's server, stopped on drop.
struct Server {
    bin: PathBuf,
    data: PathBuf,
    user: Option<(u32, u32)>,
}

impl Server {
    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let mut command = Command::new(self.bin.join(program));
        command.args(args).stdin(Stdio::null()).env("LC_ALL", "C");
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        command.output().unwrap()
    }

    fn start(root: &Path) -> Option<Self> {
        let bin = binaries()?;
        let user = server_user();
        let data = root.join("data");
        let server = Self { bin, data, user };
        if !server.data.join("PG_VERSION").exists() {
            std::fs::create_dir_all(root).unwrap();
            if let Some((uid, gid)) = user {
                std::os::unix::fs::chown(root, Some(uid), Some(gid)).unwrap();
            }
            let out = server.run(
                "initdb",
                &[
                    "-D",
                    server.data.to_str().unwrap(),
                    "-U",
                    "bench",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            );
            assert!(
                out.status.success(),
                "initdb: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let options = format!(
            "-p {PORT} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=256MB -c max_wal_size=4GB",
            root.display()
        );
        let log = root.join("log");
        let out = server.run(
            "pg_ctl",
            &[
                "-D",
                server.data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Some(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", self.data.to_str().unwrap(), "-m", "fast", "stop"],
        );
    }
}

fn url(db: &str) -> String {
    format!("postgres://bench@127.0.0.1:{PORT}/{db}?sslmode=disable")
}

fn uuid(kind: u32, n: u64) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

/// Loads the store (once): `mt_streams` and `mt_events` as Marten 7 makes them, the events of
/// the short streams interleaved in `seq_id` order with every eleventh event the long
/// stream's; each event a merge patch of its stream (`{"n": version, "step": …}`), the first
/// naming it. The long stream's snapshot in `mt_streams` is its state at its last version.
fn load(client: &mut postgres::Client, streams: u64, per_stream: u64, long: u64) {
    client
        .batch_execute(
            "DROP TABLE IF EXISTS mt_events; DROP TABLE IF EXISTS mt_streams;
             CREATE TABLE mt_streams (id uuid NOT NULL PRIMARY KEY, type varchar NULL, version bigint NULL,
               \"timestamp\" timestamptz DEFAULT now() NOT NULL, snapshot jsonb NULL, snapshot_version integer NULL,
               created timestamptz DEFAULT now() NOT NULL, tenant_id varchar NULL DEFAULT '*DEFAULT*',
               is_archived bool NULL DEFAULT false);
             CREATE TABLE mt_events (seq_id bigint NOT NULL, id uuid NOT NULL, stream_id uuid NULL,
               version bigint NOT NULL, data jsonb NOT NULL, type varchar(500) NOT NULL,
               \"timestamp\" timestamptz DEFAULT now() NOT NULL, tenant_id varchar NULL DEFAULT '*DEFAULT*',
               mt_dotnet_type varchar NULL, is_archived bool NULL DEFAULT false);",
        )
        .unwrap();
    let base = 1_767_225_600_i64; // 2026-01-01T00:00:00Z
    let total = streams * per_stream + long;
    let started = Instant::now();
    {
        let mut copy = client
            .copy_in("COPY mt_events (seq_id, id, stream_id, version, data, type, \"timestamp\") FROM STDIN")
            .unwrap();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut copy);
        let (mut short, mut long_version) = (0u64, 0u64);
        for seq in 1..=total {
            let (stream, version) =
                if seq % 11 == 0 && long_version < long || short == streams * per_stream {
                    long_version += 1;
                    (LONG_ID.to_owned(), long_version)
                } else {
                    let s = short % streams;
                    short += 1;
                    (uuid(1, s), short.div_ceil(streams))
                };
            let (kind, data) = if version == 1 {
                (
                    "started",
                    format!("{{\"name\": \"stream {stream}\", \"n\": 1, \"step\": \"s1\"}}"),
                )
            } else {
                (
                    "stepped",
                    format!("{{\"n\": {version}, \"step\": \"s{}\"}}", version % 7),
                )
            };
            writeln!(
                out,
                "{seq}\t{}\t{stream}\t{version}\t{data}\t{kind}\t{}",
                uuid(2, seq),
                jiff::Timestamp::from_second(base + i64::try_from(seq).unwrap()).unwrap()
            )
            .unwrap();
        }
        out.flush().unwrap();
        drop(out);
        copy.finish().unwrap();
    }
    println!(
        "  mt_events: {total} rows copied in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    client
        .batch_execute(&format!(
            "INSERT INTO mt_streams (id, type, version)
               SELECT stream_id, 'Run', max(version) FROM mt_events GROUP BY stream_id;
             UPDATE mt_streams SET snapshot = jsonb_build_object('name', 'stream {LONG_ID}', 'n', {long}, 'step', 's{}'),
               snapshot_version = {long} WHERE id = '{LONG_ID}';
             ALTER TABLE mt_events ADD CONSTRAINT pkey_mt_events_seq_id PRIMARY KEY (seq_id);
             CREATE UNIQUE INDEX pk_mt_events_stream_and_version ON mt_events (stream_id, version);
             ANALYZE;",
            long % 7
        ))
        .unwrap();
    println!(
        "  indexed in {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
}

/// Runs the binary, returning its time, its peak resident size and the most anonymous memory
/// it held (MB, sampled from /proc while it runs), failing on an error.
fn timed(bin: &Path, data: &Path, args: &[&str]) -> (Duration, (f64, f64), String) {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .env("REWIND_DATA_DIR", data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    // Peak resident (file pages of the memory-mapped mirror included) and the most
    // anonymous memory seen.
    let (mut peak_kb, mut anon_kb) = (0.0_f64, 0.0_f64);
    let reader = {
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
            text
        })
    };
    loop {
        let status = std::fs::read_to_string(&status_file).unwrap_or_default();
        let kb = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        peak_kb = peak_kb.max(kb("VmHWM:"));
        anon_kb = anon_kb.max(kb("RssAnon:"));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "rewind {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        elapsed,
        (peak_kb / 1024.0, anon_kb / 1024.0),
        reader.join().unwrap(),
    )
}

/// The floor: reading `sql`'s rows with the client alone.
fn floor(client: &mut postgres::Client, sql: &str) -> Duration {
    let started = Instant::now();
    let mut tx = client.transaction().unwrap();
    let portal = tx.bind(sql, &[]).unwrap();
    loop {
        let rows = tx.query_portal(&portal, 2_000).unwrap();
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let _: Option<String> = row.get(0);
        }
    }
    tx.rollback().unwrap();
    started.elapsed()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let scale = scale();
    let (streams, per_stream, long) = (STREAMS / scale, PER_STREAM, LONG / scale);
    let root = target_dir().join("bench-data/marten-pg");
    let Some(_server) = Server::start(&root) else {
        println!(
            "skipped: the PostgreSQL bench needs the server binaries (Debian's package postgresql)"
        );
        return;
    };
    let bin = target_dir().join("release/rewind");
    assert!(
        bin.exists(),
        "build the binary first: cargo build --release"
    );
    let mut admin = postgres::Client::connect(&url("postgres"), postgres::NoTls).unwrap();
    let db = format!("marten_{scale}");
    let marker = root.join(format!("{db}.loaded"));
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(DATA_VERSION) {
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .unwrap();
        let mut client = postgres::Client::connect(&url(&db), postgres::NoTls).unwrap();
        println!(
            "loading {} events into {db} (kept for the next run)…",
            streams * per_stream + long
        );
        load(&mut client, streams, per_stream, long);
        std::fs::write(&marker, DATA_VERSION).unwrap();
    }
    let mut client = postgres::Client::connect(&url(&db), postgres::NoTls).unwrap();
    let source = url(&db);
    let data = root.join("rewind-data");
    let _ = std::fs::remove_dir_all(&data);
    println!(
        "Marten store: {} events in {} streams of {per_stream} and one of {long} (scale 1/{scale})",
        streams * per_stream + long,
        streams
    );

    // The stream list, the first time: today the whole store is mirrored first.
    let all = floor(
        &mut client,
        "SELECT data::text FROM mt_events ORDER BY seq_id",
    );
    let (first, (rss, anon), _) = timed(&bin, &data, &["streams", &source]);
    println!(
        "pg-list    first `rewind streams URL` (whole store mirrored)  {:>10}  floor (read every event) {:>10}  ×{:.1}  peak {rss:.0} MB, {anon:.0} MB anonymous  (targets: ≤ 300 ms, ≤ 150 MB)",
        ms(first),
        ms(all),
        first.as_secs_f64() / all.as_secs_f64()
    );
    let (again, (rss_again, _), _) = timed(&bin, &data, &["streams", &source]);
    println!(
        "pg-list    again, mirror up to date                          {:>10}  peak {rss_again:.0} MB",
        ms(again)
    );

    // The long stream at its newest, and at random versions, once mirrored.
    let long_rows = floor(
        &mut client,
        &format!("SELECT data::text FROM mt_events WHERE stream_id = '{LONG_ID}' ORDER BY version"),
    );
    let (newest, _, _) = timed(&bin, &data, &["state", &source, LONG_ID]);
    println!(
        "pg-long    `state URL LONG` (newest), mirrored                 {:>10}  floor (its rows) {:>10}  (target ≤ 1 s)",
        ms(newest),
        ms(long_rows)
    );
    let mut rng = Rng(0x5eed_1234);
    let mut samples = Vec::new();
    for _ in 0..10 {
        let at = (1 + rng.below(long)).to_string();
        samples.push(timed(&bin, &data, &["state", &source, LONG_ID, "--at", &at]).0);
    }
    samples.sort_unstable();
    println!(
        "pg-long    `state URL LONG --at RANDOM`, mirrored            p50 {:>10}  max {:>10}  (target ≤ 50 ms; the process included)",
        ms(percentile(&samples, 0.5)),
        ms(*samples.last().unwrap())
    );
    let mut samples = Vec::new();
    let mut floors = Vec::new();
    for _ in 0..10 {
        let stream = uuid(1, rng.below(streams));
        let at = (1 + rng.below(per_stream)).to_string();
        floors.push(floor(
            &mut client,
            &format!(
                "SELECT data::text FROM mt_events WHERE stream_id = '{stream}' ORDER BY version"
            ),
        ));
        samples.push(timed(&bin, &data, &["state", &source, &stream, "--at", &at]).0);
    }
    samples.sort_unstable();
    floors.sort_unstable();
    println!(
        "pg-short   `state URL SHORT --at RANDOM` (100-event stream)  p50 {:>10}  max {:>10}  floor p50 {:>10}  (target ≤ 200 ms)",
        ms(percentile(&samples, 0.5)),
        ms(*samples.last().unwrap()),
        ms(percentile(&floors, 0.5))
    );
    let mirrors: u64 = std::fs::read_dir(data.join("mirrors"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!("pg-disk    the mirror: {:.0} MB", mirrors as f64 / 1e6);
}
