//! The stress program: real `rewind` processes killed (SIGKILL, or an abort at a crash point)
//! at random instants during `import`, `snapshot --all`, `compact`, `archive`, `maintain` and
//! `restore`, while two other processes append and a third runs `verify` and `state`.
//! After every kill an independent reader (SQLite on `DB` and `DB.archive`, and a fold of
//! the generated events written here) checks that every acknowledged event is in exactly one
//! place, versions are dense, nothing is duplicated or changed, sampled states are exact and
//! `verify` finds nothing.
//!
//! ```sh
//! cargo build --release && cargo run --release --example stress -- --kills 300 --seconds 600
//! ```
//!
//! Flags: `--seed N` replays a run (the seed is printed first), `--rewind PATH` names the
//! binary (default: `rewind` beside this program's folder, i.e. `target/release/rewind`),
//! `--keep` keeps the scratch folder. Exits 1 on any failure. Not part of `cargo test`.
//!
//! Data: every stream has a single writer, and the event at (stream, version) is a pure
//! function of the seed, so the expected state at any version is a fold of generated merge
//! patches, and a retried or replayed write carries the same idempotency key and content.
//! Appenders own `a*` and `b*`, the killed imports own `i*`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::{Map, Value, json};

/// xorshift64*: small, seedable, good enough to pick instants and data.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The event at (stream, version): a merge patch of one to three keys, sometimes removing
/// one, sometimes merging into a nested object.
fn event_data(seed: u64, stream: &str, version: u64) -> Value {
    let mut r = Rng::new(seed ^ fnv(stream) ^ version.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let mut m = Map::new();
    m.insert("v".into(), json!(version));
    for _ in 0..=r.below(3) {
        let key = format!("k{}", r.below(24));
        let value = match r.below(10) {
            0 => Value::Null,
            1 | 2 => json!({ format!("x{}", r.below(4)): r.below(1000) }),
            3 => json!(r.below(1 << 20)),
            _ => {
                let len = 5 + r.below(40);
                Value::String(
                    (0..len)
                        .map(|_| char::from(b'a' + u8::try_from(r.below(26)).unwrap_or(0)))
                        .collect(),
                )
            }
        };
        m.insert(key, value);
    }
    Value::Object(m)
}

fn event_key(stream: &str, version: u64) -> String {
    format!("{stream}-{version}")
}

/// Times in 2024, one second apart: never back within a stream, always old enough to archive.
fn event_time(version: u64) -> String {
    let second = 1_704_067_200 + i64::try_from(version).unwrap_or(0);
    jiff::Timestamp::from_second(second)
        .map_or_else(|_| "2024-01-01T00:00:00Z".into(), |t| t.to_string())
}

/// RFC 7386, the independent fold.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn expected_state(seed: u64, stream: &str, version: u64) -> Value {
    let mut state = json!({});
    for v in 1..=version {
        merge(&mut state, &event_data(seed, stream, v));
    }
    state
}

/// Everything counted. A failure is any of lost, duplicated, changed, wrong_states,
/// false_findings, unexpected.
#[derive(Default)]
struct Tally {
    kills: BTreeMap<&'static str, u64>,
    crash_points: BTreeMap<&'static str, u64>,
    done_before_kill: u64,
    append_kills: u64,
    appends: u64,
    imports_landed: u64,
    imports_rolled_back: u64,
    restores_old: u64,
    restores_new: u64,
    restores_finished_by_next_open: u64,
    restore_refusals: u64,
    reader_lock_errors: u64,
    hot_journals: u64,
    checks: u64,
    states: u64,
    verifies: u64,
    lost: u64,
    duplicated: u64,
    changed: u64,
    wrong_states: u64,
    false_findings: u64,
    unexpected: u64,
    messages: Vec<String>,
}

impl Tally {
    fn failures(&self) -> u64 {
        self.lost
            + self.duplicated
            + self.changed
            + self.wrong_states
            + self.false_findings
            + self.unexpected
    }
    fn note(&mut self, what: String) {
        eprintln!("FAIL {what}");
        if self.messages.len() < 50 {
            self.messages.push(what);
        }
    }
}

struct Shared {
    rewind: PathBuf,
    dir: PathBuf,
    db: PathBuf,
    seed: u64,
    stop: AtomicBool,
    pause: AtomicBool,
    parked: AtomicUsize,
    restoring: AtomicBool,
    /// Acknowledged heads: every version up to these is in the database.
    heads: Mutex<BTreeMap<String, u64>>,
    tally: Mutex<Tally>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn tally(&self) -> MutexGuard<'_, Tally> {
        lock(&self.tally)
    }
    fn db(&self) -> String {
        self.db.display().to_string()
    }
}

enum Outcome {
    /// Exited by itself: exit code (`None`: a signal, e.g. the abort of a crash point).
    Exited {
        code: Option<i32>,
        stdout: String,
        stderr: String,
        took: Duration,
    },
    Killed,
}

/// Runs rewind with output to files (no pipe to fill), SIGKILLed after `kill_after` if it
/// still runs then.
fn run(
    sh: &Shared,
    tag: &str,
    args: &[String],
    crash_at: Option<&str>,
    kill_after: Option<Duration>,
) -> Result<Outcome> {
    let out_path = sh.dir.join(format!("{tag}.out"));
    let err_path = sh.dir.join(format!("{tag}.err"));
    let mut cmd = Command::new(&sh.rewind);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?)
        .env_remove("REWIND_CRASH_AT");
    if let Some(point) = crash_at {
        cmd.env("REWIND_CRASH_AT", point);
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {}", sh.rewind.display()))?;
    if let Some(delay) = kill_after {
        std::thread::sleep(delay);
        if child.try_wait()?.is_none() {
            child.kill()?;
            child.wait()?;
            return Ok(Outcome::Killed);
        }
    }
    let mut nap = Duration::from_micros(500);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill()?;
            child.wait()?;
            bail!("rewind {} hung for 120 s", args.join(" "));
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    };
    Ok(Outcome::Exited {
        code: status.code(),
        stdout: std::fs::read_to_string(out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(err_path).unwrap_or_default(),
        took: started.elapsed(),
    })
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(ToString::to_string).collect()
}

/// Runs a command that must succeed; a failure is counted as unexpected.
fn must(sh: &Shared, tag: &str, args: &[String]) -> Option<String> {
    match run(sh, tag, args, None, None) {
        Ok(Outcome::Exited {
            code: Some(0),
            stdout,
            ..
        }) => Some(stdout),
        Ok(Outcome::Exited { code, stderr, .. }) => {
            sh.tally().unexpected += 1;
            sh.tally().note(format!(
                "rewind {}: exit {code:?}: {}",
                args.join(" "),
                stderr.trim()
            ));
            None
        }
        Ok(Outcome::Killed) => None,
        Err(e) => {
            sh.tally().unexpected += 1;
            sh.tally().note(format!("{e:#}"));
            None
        }
    }
}

/// What a reader sees of the database, read independently of rewind.
#[derive(Default, Clone, PartialEq)]
struct View {
    heads: BTreeMap<String, u64>,
    /// (stream, version) → seq of the event readers would take.
    events: BTreeMap<(String, u64), i64>,
    restore_pending: bool,
    archive_pending: bool,
}

type Row = (i64, i64, u64, String, Option<String>);

/// One stored copy of an event: seq, which file, data, idempotency key.
type Stored = (i64, &'static str, String, Option<String>);

/// A command that ran to its end: exit code (`None`: a signal) and stderr.
type Exit = (Option<i32>, String);

/// SQLite stores integers signed; versions are never negative.
fn u(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn rows(conn: &Connection, schema: &str) -> rusqlite::Result<Vec<Row>> {
    conn.prepare(&format!(
        "SELECT seq, stream_id, version, data, idem_key FROM {schema}.events"
    ))?
    .query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, u(r.get(2)?), r.get(3)?, r.get(4)?))
    })?
    .collect()
}

fn metas(conn: &Connection, schema: &str) -> rusqlite::Result<BTreeMap<String, String>> {
    conn.prepare(&format!("SELECT key, value FROM {schema}.meta"))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Reads `DB` and then `DB.archive`, each in a read transaction held until both are read (the
/// main file first, as rewind's archive commits the copy before the main file moves its
/// boundary) and counts what is
/// wrong: missing or doubled versions, events in both files, content other than generated.
fn inspect(sh: &Shared) -> Result<View> {
    match inspect_with(sh, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        // A hot rollback journal (an archive restored from a backup is not in WAL mode, and
        // its writer was killed): a read-only connection may not roll it back; SQLite's own
        // recovery on a writable connection does, as any open by rewind that may write.
        Err(e)
            if e.downcast_ref::<rusqlite::Error>()
                .and_then(rusqlite::Error::sqlite_error)
                .is_some_and(|e| e.extended_code == 776) =>
        {
            sh.tally().hot_journals += 1;
            inspect_with(sh, OpenFlags::SQLITE_OPEN_READ_WRITE)
        }
        other => other,
    }
}

fn inspect_with(sh: &Shared, flags: OpenFlags) -> Result<View> {
    // Read-only if it can be: no checkpoint at close, nothing written by the judge.
    let conn = Connection::open_with_flags(&sh.db, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch("BEGIN")?;
    let meta = metas(&conn, "main")?;
    let streams: BTreeMap<i64, (String, u64, u64)> = conn
        .prepare("SELECT id, name, head, archived_upto FROM main.streams")?
        .query_map([], |r| {
            Ok((r.get(0)?, (r.get(1)?, u(r.get(2)?), u(r.get(3)?))))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let main = rows(&conn, "main")?;
    // The archive file is opened only now, after the main file's read began: a restore
    // finished meanwhile renames a new archive into place before it clears its intent, so
    // the file found at this name is the one paired with what was read (an archive opened
    // before the main file's read could be the old one, unlinked since).
    let archive = PathBuf::from(format!("{}.archive", sh.db.display()));
    let archive_conn = match Connection::open_with_flags(&archive, flags) {
        Ok(archive_conn) => {
            archive_conn.busy_timeout(Duration::from_secs(10))?;
            archive_conn.execute_batch("BEGIN")?;
            Some(archive_conn)
        }
        Err(_) if !archive.exists() => None,
        Err(e) => return Err(e.into()),
    };
    let (archived, archive_meta) = match &archive_conn {
        Some(a)
            if a.query_row(
                "SELECT 1 FROM sqlite_schema WHERE name = 'events'",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some() =>
        {
            (rows(a, "main")?, metas(a, "main").unwrap_or_default())
        }
        _ => (Vec::new(), BTreeMap::new()),
    };
    if let Some(a) = &archive_conn {
        a.execute_batch("COMMIT")?;
    }
    conn.execute_batch("COMMIT")?;
    // The main file is read before the archive, so an archive run that began in between
    // (its mark committed after the first read, its copies before the second) shows copies
    // and no mark: look at the main file again, as it is now, before calling them strays.
    let (later_pending, later_upto): (bool, BTreeMap<i64, u64>) = {
        let pending = conn
            .query_row(
                "SELECT 1 FROM main.meta WHERE key = 'archive_pending'",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        let upto = conn
            .prepare("SELECT id, archived_upto FROM main.streams")?
            .query_map([], |r| Ok((r.get(0)?, u(r.get(1)?))))?
            .collect::<rusqlite::Result<_>>()?;
        (pending, upto)
    };
    let mut view = View {
        restore_pending: meta.contains_key("restore_pending"),
        archive_pending: meta.contains_key("archive_pending"),
        ..View::default()
    };
    if view.restore_pending {
        // The main file is the restored one, the archive beside it not yet: the next open
        // finishes the pair, and only then is it a database to judge.
        return Ok(view);
    }
    let mut t = sh.tally();
    if !archived.is_empty()
        && (archive_meta.get("owner") != meta.get("database_id")
            || meta
                .get("archive_id")
                .is_some_and(|id| archive_meta.get("archive_id") != Some(id)))
    {
        t.duplicated += 1;
        t.note(format!(
            "{}.archive is not the archive paired with the database",
            sh.db()
        ));
    }
    let mut by_stream: BTreeMap<i64, BTreeMap<u64, Vec<Stored>>> = BTreeMap::new();
    for (seq, sid, version, data, key) in main {
        let upto = streams.get(&sid).map_or(0, |s| s.2);
        if version <= upto {
            // Readers take this version from the archive: a copy left in the main file.
            t.duplicated += 1;
            t.note(format!("seq {seq} (stream id {sid} v{version}) still in the main file, archived up to v{upto}"));
            continue;
        }
        by_stream
            .entry(sid)
            .or_default()
            .entry(version)
            .or_default()
            .push((seq, "main", data, key));
    }
    for (seq, sid, version, data, key) in archived {
        let upto = streams.get(&sid).map_or(0, |s| s.2);
        if version > upto {
            let in_flight = later_pending || later_upto.get(&sid).is_some_and(|u| version <= *u);
            if !view.archive_pending && !in_flight {
                t.duplicated += 1;
                t.note(format!("seq {seq} (stream id {sid} v{version}) in the archive beyond archived_upto v{upto}, no archive run pending"));
            }
            continue;
        }
        by_stream
            .entry(sid)
            .or_default()
            .entry(version)
            .or_default()
            .push((seq, "archive", data, key));
    }
    let mut seqs = BTreeSet::new();
    for (sid, (name, head, _)) in &streams {
        let found = by_stream.remove(sid).unwrap_or_default();
        let mut last_seq = 0;
        for version in 1..=*head {
            let Some(copies) = found.get(&version) else {
                t.lost += 1;
                t.note(format!("{name} v{version} (head {head}) is nowhere"));
                continue;
            };
            if copies.len() > 1 {
                t.duplicated += copies.len() as u64 - 1;
                t.note(format!("{name} v{version} stored {} times", copies.len()));
            }
            let (seq, place, data, key) = &copies[0];
            if !seqs.insert(*seq) {
                t.duplicated += 1;
                t.note(format!("seq {seq} used twice ({name} v{version})"));
            }
            if *seq <= last_seq {
                t.changed += 1;
                t.note(format!(
                    "{name} v{version}: seq {seq} not above v{}'s {last_seq}",
                    version - 1
                ));
            }
            last_seq = *seq;
            let want = event_data(sh.seed, name, version);
            if serde_json::from_str::<Value>(data).ok().as_ref() != Some(&want)
                || key.as_deref() != Some(event_key(name, version).as_str())
            {
                t.changed += 1;
                t.note(format!(
                    "{name} v{version} ({place}): {data} key {key:?}, generated {want}"
                ));
            }
            view.events.insert((name.clone(), version), *seq);
        }
        if let Some(beyond) = found.keys().find(|v| **v > *head) {
            t.duplicated += 1;
            t.note(format!("{name} v{beyond} stored beyond the head v{head}"));
        }
        view.heads.insert(name.clone(), *head);
    }
    if !by_stream.is_empty() {
        t.changed += 1;
        t.note(format!(
            "events of unknown stream ids {:?}",
            by_stream.keys().collect::<Vec<_>>()
        ));
    }
    Ok(view)
}

/// After a kill: the independent read, acknowledged events all there, sampled states equal
/// the fold, and `verify` finds nothing. `exact`: nobody else writes, so the heads must be
/// the expected ones, not merely at least them.
fn check(sh: &Shared, expect: &BTreeMap<String, u64>, exact: bool, rng: &mut Rng) -> Result<View> {
    sh.tally().checks += 1;
    let mut view = inspect(sh)?;
    if view.restore_pending {
        // Any open finishes an installed restore; verify is that open here.
        sh.tally().restores_finished_by_next_open += 1;
        must(sh, "finish", &strings(&["verify", &sh.db()]));
        view = inspect(sh)?;
        if view.restore_pending {
            sh.tally().unexpected += 1;
            sh.tally()
                .note("a restore left pending after the next open".into());
        }
    }
    for (stream, want) in expect {
        let have = view.heads.get(stream).copied().unwrap_or(0);
        let mut t = sh.tally();
        if have < *want {
            t.lost += want - have;
            t.note(format!("{stream}: head v{have}, v{want} was acknowledged"));
        } else if exact && have > *want {
            t.duplicated += have - want;
            t.note(format!("{stream}: head v{have}, expected exactly v{want}"));
        }
    }
    let streams: Vec<(&String, &u64)> = view.heads.iter().filter(|(_, h)| **h > 0).collect();
    for i in 0..3 {
        if streams.is_empty() {
            break;
        }
        let (stream, head) = streams[usize::try_from(rng.below(streams.len() as u64))?];
        let version = if i == 0 { *head } else { 1 + rng.below(*head) };
        state_matches(sh, stream, version, "check", false);
    }
    verify_clean(sh, "check-verify", false);
    Ok(view)
}

/// `rewind state --at V` against the fold; `tolerant`: a lock error is no failure (restore).
fn state_matches(sh: &Shared, stream: &str, version: u64, tag: &str, tolerant: bool) {
    let args = strings(&[
        "state",
        &sh.db(),
        stream,
        "--at",
        &version.to_string(),
        "--json",
    ]);
    match run(sh, tag, &args, None, None) {
        Ok(Outcome::Exited {
            code: Some(0),
            stdout,
            ..
        }) => {
            let got: Option<Value> = serde_json::from_str::<Value>(&stdout)
                .ok()
                .map(|v| v["state"].clone());
            let want = expected_state(sh.seed, stream, version);
            let mut t = sh.tally();
            t.states += 1;
            if got.as_ref() != Some(&want) {
                t.wrong_states += 1;
                t.note(format!(
                    "state {stream} --at {version}: {} but the fold gives {want}",
                    stdout.trim()
                ));
            }
        }
        other => unexpected_exit(sh, &args, other, tolerant),
    }
}

fn verify_clean(sh: &Shared, tag: &str, tolerant: bool) {
    let args = strings(&["verify", &sh.db(), "--json"]);
    match run(sh, tag, &args, None, None) {
        Ok(Outcome::Exited { code: Some(0), .. }) => sh.tally().verifies += 1,
        Ok(Outcome::Exited {
            code: Some(1),
            stdout,
            ..
        }) => {
            let mut t = sh.tally();
            t.verifies += 1;
            t.false_findings += 1;
            t.note(format!("verify found: {}", stdout.trim()));
        }
        other => unexpected_exit(sh, &args, other, tolerant),
    }
}

/// A lock error while a restore may hold the database is expected; anything else is not.
fn unexpected_exit(sh: &Shared, args: &[String], outcome: Result<Outcome>, tolerant: bool) {
    let text = match outcome {
        Ok(Outcome::Exited { code, stderr, .. }) => {
            let lockish = ["locked", "busy", "open in another process"]
                .iter()
                .any(|w| stderr.contains(w));
            if tolerant && lockish {
                sh.tally().reader_lock_errors += 1;
                return;
            }
            format!(
                "rewind {}: exit {code:?}: {}",
                args.join(" "),
                stderr.trim()
            )
        }
        Ok(Outcome::Killed) => return,
        Err(e) => format!("{e:#}"),
    };
    let mut t = sh.tally();
    t.unexpected += 1;
    t.note(text);
}

/// An appender: appends to its own streams with `--expect` and `--key`; one append in
/// twelve is killed and retried until acknowledged.
fn appender(sh: &Shared, prefix: &str) {
    let mut rng = Rng::new(sh.seed ^ fnv(prefix));
    let streams: Vec<String> = (0..3).map(|i| format!("{prefix}{i}")).collect();
    let tag = format!("append-{prefix}");
    while !sh.stop.load(Ordering::Relaxed) {
        if sh.pause.load(Ordering::Relaxed) {
            sh.parked.fetch_add(1, Ordering::SeqCst);
            while sh.pause.load(Ordering::Relaxed) && !sh.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
            sh.parked.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let stream = &streams[usize::try_from(rng.below(3)).unwrap_or(0)];
        let version = lock(&sh.heads).get(stream).copied().unwrap_or(0) + 1;
        let args = strings(&[
            "append",
            &sh.db(),
            stream,
            "E",
            &event_data(sh.seed, stream, version).to_string(),
            "--time",
            &event_time(version),
            "--key",
            &event_key(stream, version),
            "--expect",
            &(version - 1).to_string(),
            "--json",
        ]);
        let mut killed = false;
        for attempt in 0.. {
            let kill = (attempt == 0 && rng.below(12) == 0)
                .then(|| Duration::from_micros(rng.below(15_000)));
            match run(sh, &tag, &args, None, kill) {
                Ok(Outcome::Killed) => {
                    killed = true;
                    sh.tally().append_kills += 1;
                }
                Ok(Outcome::Exited {
                    code: Some(0),
                    stdout,
                    ..
                }) => {
                    let got: Value = serde_json::from_str(&stdout).unwrap_or_default();
                    let duplicate = got["duplicate"] == json!(true);
                    if got["version"] != json!(version)
                        || got["stream"] != json!(stream)
                        || (duplicate && !killed)
                    {
                        let mut t = sh.tally();
                        t.unexpected += 1;
                        t.note(format!(
                            "append {stream} v{version} acknowledged as {}",
                            stdout.trim()
                        ));
                    }
                    lock(&sh.heads).insert(stream.clone(), version);
                    sh.tally().appends += 1;
                    break;
                }
                other => {
                    unexpected_exit(sh, &args, other, false);
                    if attempt > 20 || sh.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

/// The reader: `verify` and `state` at acknowledged versions, all the time.
fn reader(sh: &Shared) {
    let mut rng = Rng::new(sh.seed ^ 0x5EED);
    while !sh.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10 + rng.below(50)));
        let tolerant = sh.restoring.load(Ordering::SeqCst);
        if rng.below(3) == 0 {
            verify_clean(sh, "reader", tolerant);
        } else {
            let heads: Vec<(String, u64)> = lock(&sh.heads)
                .iter()
                .filter(|(_, h)| **h > 0)
                .map(|(s, h)| (s.clone(), *h))
                .collect();
            if heads.is_empty() {
                continue;
            }
            let (stream, head) =
                &heads[usize::try_from(rng.below(heads.len() as u64)).unwrap_or(0)];
            state_matches(sh, stream, 1 + rng.below(*head), "reader", tolerant);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Import,
    Snapshot,
    Compact,
    Archive,
    Maintain,
    Restore,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Import => "import",
            Kind::Snapshot => "snapshot --all",
            Kind::Compact => "compact",
            Kind::Archive => "archive",
            Kind::Maintain => "maintain",
            Kind::Restore => "restore",
        }
    }
    /// The crash points this command passes, and how many times at most.
    fn crash_point(self, rng: &mut Rng, batch: u64) -> String {
        match self {
            Kind::Import => format!("import:{}", 1 + rng.below(batch)),
            Kind::Snapshot => format!("snapshot:{}", 1 + rng.below(10)),
            Kind::Compact => format!("compact:{}", 1 + rng.below(4)),
            Kind::Archive => format!("archive:{}", 1 + rng.below(6)),
            Kind::Maintain => [
                "snapshot:1",
                "compact:1",
                "compact:2",
                "archive:1",
                "archive:2",
                "archive:3",
            ][usize::try_from(rng.below(6)).unwrap_or(0)]
            .to_string(),
            Kind::Restore => format!("restore:{}", 1 + rng.below(3)),
        }
    }
}

/// The main thread's own state: the import streams' heads and how long each command takes.
struct Driver<'a> {
    sh: &'a Shared,
    rng: Rng,
    imports: BTreeMap<String, u64>,
    took_ms: BTreeMap<Kind, f64>,
    kills: u64,
}

impl Driver<'_> {
    /// Every acknowledged head: the appenders' and the imports'.
    fn expected(&self) -> BTreeMap<String, u64> {
        let mut all = lock(&self.sh.heads).clone();
        all.extend(self.imports.iter().map(|(s, h)| (s.clone(), *h)));
        all
    }

    fn publish_imports(&self) {
        lock(&self.sh.heads).extend(self.imports.iter().map(|(s, h)| (s.clone(), *h)));
    }

    /// A JSONL batch continuing some import streams; returns the file, its new heads and size.
    fn import_batch(&mut self, max: u64) -> Result<(PathBuf, BTreeMap<String, u64>, u64)> {
        let mut text = String::new();
        let mut heads = self.imports.clone();
        let mut n = 0;
        for (stream, head) in &mut heads {
            if self.rng.below(3) == 0 {
                continue;
            }
            for _ in 0..=self.rng.below(max) {
                *head += 1;
                n += 1;
                let line = json!({
                    "stream": stream, "type": "E", "version": *head,
                    "data": event_data(self.sh.seed, stream, *head),
                    "time": event_time(*head),
                    "idempotency_key": event_key(stream, *head),
                });
                writeln!(text, "{line}")?;
            }
        }
        let path = self.sh.dir.join("batch.jsonl");
        std::fs::write(&path, text)?;
        Ok((path, heads, n.max(1)))
    }

    fn args(&mut self, kind: Kind, batch: &Path) -> Vec<String> {
        let db = self.sh.db();
        match kind {
            Kind::Import => strings(&["import", &db, &batch.display().to_string()]),
            Kind::Snapshot => strings(&["snapshot", &db, "--all"]),
            Kind::Compact if self.rng.below(2) == 0 => strings(&["compact", &db, "--ladder"]),
            Kind::Compact => strings(&["compact", &db, "--keep-last", "2"]),
            Kind::Archive => strings(&["archive", &db, "--older-than", "1s"]),
            Kind::Maintain => strings(&["maintain", &db]),
            Kind::Restore => {
                let backup = self.sh.dir.join("backup.db").display().to_string();
                strings(&["restore", &backup, &db, "--force"])
            }
        }
    }

    /// Runs `kind` and kills it at a random instant (or lets a crash point abort it); returns
    /// whether it was killed, and its exit otherwise.
    fn victim(&mut self, kind: Kind, args: &[String], batch: u64) -> Result<(bool, Option<Exit>)> {
        let crash = (self.rng.below(4) == 0).then(|| kind.crash_point(&mut self.rng, batch));
        let took = self.took_ms.get(&kind).copied().unwrap_or(50.0);
        let delay = crash
            .is_none()
            .then(|| Duration::from_micros(self.rng.below((took * 1000.0) as u64 + 1000)));
        match run(self.sh, "victim", args, crash.as_deref(), delay)? {
            Outcome::Killed => {
                *self.sh.tally().kills.entry(kind.name()).or_default() += 1;
                self.kills += 1;
                Ok((true, None))
            }
            Outcome::Exited { code: None, .. } if crash.is_some() => {
                *self.sh.tally().crash_points.entry(kind.name()).or_default() += 1;
                self.kills += 1;
                Ok((true, None))
            }
            Outcome::Exited {
                code, stderr, took, ..
            } => {
                if code == Some(0) {
                    let ms = took.as_secs_f64() * 1000.0;
                    let ema = self.took_ms.entry(kind).or_insert(ms);
                    *ema = 0.7 * *ema + 0.3 * ms;
                }
                if delay.is_some() {
                    self.sh.tally().done_before_kill += 1;
                }
                Ok((false, Some((code, stderr))))
            }
        }
    }

    /// One round: a victim among import, snapshot, compact, archive and maintain, then the
    /// checks, then now and then the next command run to its end.
    fn round(&mut self) -> Result<()> {
        let kinds = [
            Kind::Import,
            Kind::Import,
            Kind::Snapshot,
            Kind::Compact,
            Kind::Archive,
            Kind::Archive,
            Kind::Maintain,
        ];
        let kind = kinds[usize::try_from(self.rng.below(kinds.len() as u64))?];
        let (batch, new_heads, n) = self.import_batch(300)?;
        let args = self.args(kind, &batch);
        let (_, exit) = self.victim(kind, &args, n)?;
        if let Some((code, stderr)) = &exit
            && *code != Some(0)
        {
            self.sh.tally().unexpected += 1;
            self.sh.tally().note(format!(
                "rewind {}: exit {code:?}: {}",
                args.join(" "),
                stderr.trim()
            ));
        }
        if kind == Kind::Import {
            self.reconcile_import(&new_heads, exit.is_some_and(|(c, _)| c == Some(0)))?;
        }
        let expect = self.expected();
        check(self.sh, &expect, false, &mut self.rng)?;
        if self.rng.below(3) == 0 {
            let next = kinds[usize::try_from(self.rng.below(kinds.len() as u64))?];
            let (batch, new_heads, _) = self.import_batch(100)?;
            let args = self.args(next, &batch);
            let ok = must(self.sh, "next", &args).is_some();
            if next == Kind::Import {
                self.reconcile_import(&new_heads, ok)?;
            }
        }
        Ok(())
    }

    /// An import is all or nothing: afterwards every import stream is at its old head or
    /// every one at its new head.
    fn reconcile_import(&mut self, new: &BTreeMap<String, u64>, acknowledged: bool) -> Result<()> {
        let view = inspect(self.sh)?;
        let have: BTreeMap<String, u64> = new
            .keys()
            .map(|s| (s.clone(), view.heads.get(s).copied().unwrap_or(0)))
            .collect();
        if have == *new {
            self.sh.tally().imports_landed += 1;
            self.imports.clone_from(new);
            self.publish_imports();
        } else if have == self.imports && !acknowledged {
            self.sh.tally().imports_rolled_back += 1;
        } else {
            let mut t = self.sh.tally();
            t.lost += 1;
            t.note(format!(
                "import: heads {have:?}, neither the old {:?} nor the new {new:?}",
                self.imports
            ));
        }
        Ok(())
    }

    /// The restore phase: appenders parked, a backup taken, more events imported and
    /// archived (the old pair), then restores killed at random instants: afterwards the
    /// database is the old pair or the backup's, never a mix. Readers keep running (restore
    /// refuses while they have the database open: counted, and tried again).
    fn restore_phase(&mut self, kills: u64) -> Result<()> {
        let sh = self.sh;
        sh.pause.store(true, Ordering::SeqCst);
        while sh.parked.load(Ordering::SeqCst) < 2 {
            std::thread::sleep(Duration::from_millis(2));
        }
        let result = (|| -> Result<()> {
            let expect = self.expected();
            let new = check(sh, &expect, true, &mut self.rng)?;
            let backup = sh.dir.join("backup.db");
            for file in [backup.clone(), sh.dir.join("backup.db.archive")] {
                let _ = std::fs::remove_file(file);
            }
            must(
                sh,
                "backup",
                &strings(&["backup", &sh.db(), &backup.display().to_string()]),
            )
            .context("the backup failed")?;
            let at_backup = self.imports.clone();
            sh.restoring.store(true, Ordering::SeqCst);
            let mut old = self.diverge()?;
            self.refused_while_open(&backup, &old)?;
            let mut killed = 0;
            let mut tries = 0;
            while killed < kills && tries < 40 {
                tries += 1;
                let args = self.args(Kind::Restore, &backup);
                let (was_killed, exit) = self.victim(Kind::Restore, &args, 1)?;
                if was_killed {
                    killed += 1;
                }
                if let Some((code, stderr)) = &exit
                    && *code != Some(0)
                {
                    if stderr.contains("open in another process") {
                        sh.tally().restore_refusals += 1;
                    } else {
                        sh.tally().unexpected += 1;
                        sh.tally().note(format!(
                            "rewind {}: exit {code:?}: {}",
                            args.join(" "),
                            stderr.trim()
                        ));
                    }
                }
                let mut view = inspect(sh)?;
                if view.restore_pending {
                    view = check(sh, &BTreeMap::new(), false, &mut self.rng)?;
                }
                if view.events == new.events {
                    sh.tally().restores_new += 1;
                    self.imports.clone_from(&at_backup);
                    check(sh, &self.expected(), true, &mut self.rng)?;
                    old = self.diverge()?;
                } else if view.events == old.events {
                    sh.tally().restores_old += 1;
                    let mut expect = self.expected();
                    expect.extend(old.heads.clone());
                    check(sh, &expect, true, &mut self.rng)?;
                } else {
                    let mut t = sh.tally();
                    t.lost += 1;
                    t.note(format!(
                        "after restore: {} events, neither the old pair's {} nor the backup's {}",
                        view.events.len(),
                        old.events.len(),
                        new.events.len()
                    ));
                    break;
                }
            }
            // Back to what every reader may ask for: the backup's content.
            if self.imports != at_backup {
                must(sh, "restore-final", &self.args(Kind::Restore, &backup));
                self.imports.clone_from(&at_backup);
            }
            sh.restoring.store(false, Ordering::SeqCst);
            check(sh, &self.expected(), true, &mut self.rng)?;
            Ok(())
        })();
        sh.restoring.store(false, Ordering::SeqCst);
        sh.pause.store(false, Ordering::SeqCst);
        result
    }

    /// A restore while a maintainer (`maintain --watch`) has the database open is refused
    /// and changes nothing; the maintainer is then killed in its wait.
    fn refused_while_open(&mut self, backup: &Path, old: &View) -> Result<()> {
        let sh = self.sh;
        let out = sh.dir.join("watch.out");
        let mut watcher = Command::new(&sh.rewind)
            .args(["maintain", &sh.db(), "--watch", "--interval", "1h"])
            .stdin(Stdio::null())
            .stdout(File::create(&out)?)
            .stderr(Stdio::null())
            .env_remove("REWIND_CRASH_AT")
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&out)?.contains("tick:") {
            if Instant::now() > deadline || watcher.try_wait()?.is_some() {
                watcher.kill()?;
                watcher.wait()?;
                bail!("maintain --watch did not tick");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let args = self.args(Kind::Restore, backup);
        let outcome = run(sh, "refused", &args, None, None)?;
        watcher.kill()?;
        watcher.wait()?;
        // Killed in its wait, not at a random instant: counted apart, not towards --kills.
        *sh.tally()
            .kills
            .entry("maintain --watch (idle)")
            .or_default() += 1;
        match outcome {
            Outcome::Exited {
                code: Some(c),
                stderr,
                ..
            } if c != 0 && stderr.contains("open in another process") => {
                sh.tally().restore_refusals += 1;
            }
            Outcome::Exited { code, stderr, .. } => {
                let mut t = sh.tally();
                t.unexpected += 1;
                t.note(format!(
                    "restore while maintain --watch had the database open: exit {code:?}: {}",
                    stderr.trim()
                ));
            }
            Outcome::Killed => {}
        }
        let view = inspect(sh)?;
        if view.events != old.events {
            let mut t = sh.tally();
            t.lost += 1;
            t.note("a refused restore changed the database".into());
        }
        Ok(())
    }

    /// Makes the database differ from the backup: more import events, archived. Readers are
    /// not told (they ask only for what both have).
    fn diverge(&mut self) -> Result<View> {
        let (batch, new_heads, _) = self.import_batch(60)?;
        let db = self.sh.db();
        must(
            self.sh,
            "diverge",
            &strings(&["import", &db, &batch.display().to_string()]),
        )
        .context("import while diverging")?;
        self.imports = new_heads;
        must(
            self.sh,
            "diverge",
            &strings(&["archive", &db, "--older-than", "1s"]),
        );
        inspect(self.sh)
    }
}

struct Options {
    kills: u64,
    seconds: u64,
    seed: u64,
    rewind: PathBuf,
    keep: bool,
}

fn options() -> Result<Options> {
    let mut args = std::env::args().skip(1);
    let exe = std::env::current_exe()?;
    let mut o = Options {
        kills: 300,
        seconds: 600,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_micros() as u64,
        rewind: exe
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join(format!("rewind{}", std::env::consts::EXE_SUFFIX)))
            .unwrap_or_default(),
        keep: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--kills" => o.kills = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--seed" => o.seed = value()?.parse()?,
            "--rewind" => o.rewind = value()?.into(),
            "--keep" => o.keep = true,
            _ => {
                bail!("usage: stress [--kills N] [--seconds S] [--seed N] [--rewind PATH] [--keep]")
            }
        }
    }
    if !o.rewind.exists() {
        bail!(
            "{} not found: build it first (cargo build --release) or pass --rewind PATH",
            o.rewind.display()
        );
    }
    Ok(o)
}

fn main() -> std::process::ExitCode {
    match stress() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("stress: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn stress() -> Result<bool> {
    let o = options()?;
    let scratch = tempfile::Builder::new()
        .prefix("rewind-stress-")
        .tempdir()?;
    println!(
        "stress: seed {} (replay with --seed {}), up to {} kills or {} s, rewind {}, in {}",
        o.seed,
        o.seed,
        o.kills,
        o.seconds,
        o.rewind.display(),
        scratch.path().display()
    );
    let sh = Arc::new(Shared {
        rewind: o.rewind.clone(),
        dir: scratch.path().to_path_buf(),
        db: scratch.path().join("stress.db"),
        seed: o.seed,
        stop: AtomicBool::new(false),
        pause: AtomicBool::new(false),
        parked: AtomicUsize::new(0),
        restoring: AtomicBool::new(false),
        heads: Mutex::new(BTreeMap::new()),
        tally: Mutex::new(Tally::default()),
    });
    let db = sh.db();
    must(&sh, "setup", &strings(&["init", &db])).context("init")?;
    must(
        &sh,
        "setup",
        &strings(&[
            "policy",
            &db,
            "--every",
            "20",
            "--full-every",
            "4",
            "--every-time",
            "1s",
            "--keep-last",
            "6",
            "--archive-after",
            "1s",
        ]),
    )
    .context("policy")?;
    let mut driver = Driver {
        sh: &sh,
        rng: Rng::new(o.seed),
        imports: (0..4).map(|i| (format!("i{i}"), 0)).collect(),
        took_ms: BTreeMap::new(),
        kills: 0,
    };
    let (first, heads, _) = driver.import_batch(400)?;
    must(
        &sh,
        "setup",
        &strings(&["import", &db, &first.display().to_string()]),
    )
    .context("first import")?;
    driver.imports = heads;
    driver.publish_imports();
    let started = Instant::now();
    let threads: Vec<_> = ["a", "b", "r"]
        .into_iter()
        .map(|who| {
            let sh = Arc::clone(&sh);
            std::thread::spawn(move || match who {
                "r" => reader(&sh),
                prefix => appender(&sh, prefix),
            })
        })
        .collect();
    let budget = Duration::from_secs(o.seconds);
    let mut rounds = 0u64;
    let outcome = (|| -> Result<()> {
        while driver.kills < o.kills && started.elapsed() < budget && sh.tally().failures() == 0 {
            rounds += 1;
            if rounds.is_multiple_of(8) {
                driver.restore_phase(3)?;
            } else {
                driver.round()?;
            }
            if rounds.is_multiple_of(20) {
                let t = sh.tally();
                println!(
                    "  {:>4} s  round {rounds}  kills {}  appends {}  checks {}  failures {}",
                    started.elapsed().as_secs(),
                    driver.kills,
                    t.appends,
                    t.checks,
                    t.failures()
                );
            }
        }
        Ok(())
    })();
    sh.stop.store(true, Ordering::SeqCst);
    sh.pause.store(false, Ordering::SeqCst);
    for thread in threads {
        let _ = thread.join();
    }
    if let Err(e) = outcome {
        println!("  scratch kept in {}", scratch.keep().display());
        return Err(e);
    }
    // Nobody writes now: the heads must be exactly the acknowledged ones.
    let expect = driver.expected();
    let last = check(&sh, &expect, true, &mut driver.rng)?;
    let elapsed = started.elapsed();
    let t = sh.tally();
    let events = last.events.len();
    println!(
        "stress: seed {} · {rounds} rounds in {:.0} s · {events} events in the end",
        o.seed,
        elapsed.as_secs_f64()
    );
    println!("  kills (SIGKILL):      {:?}", t.kills);
    println!("  kills (crash points): {:?}", t.crash_points);
    println!(
        "  kills at random instants and crash points: {}",
        driver.kills
    );
    println!(
        "  appends acknowledged {} (killed and retried {}), imports landed {} / rolled back {}",
        t.appends, t.append_kills, t.imports_landed, t.imports_rolled_back
    );
    println!(
        "  restores: old pair {}, backup's pair {}, finished by the next open {}, refused {}",
        t.restores_old, t.restores_new, t.restores_finished_by_next_open, t.restore_refusals
    );
    println!(
        "  finished before their kill {}, reader lock errors during restores {}, hot journals rolled back {}",
        t.done_before_kill, t.reader_lock_errors, t.hot_journals
    );
    let took: Vec<String> = driver
        .took_ms
        .iter()
        .map(|(k, ms)| format!("{} {ms:.0} ms", k.name()))
        .collect();
    println!("  typical run to the end: {}", took.join(", "));
    println!(
        "  checks {}, states compared {}, verifies {}",
        t.checks, t.states, t.verifies
    );
    println!(
        "  lost {}, duplicated {}, changed {}, wrong states {}, false findings {}, unexpected errors {}",
        t.lost, t.duplicated, t.changed, t.wrong_states, t.false_findings, t.unexpected
    );
    let ok = t.failures() == 0 && driver.kills >= o.kills.min(1);
    if !ok || o.keep {
        let kept = scratch.keep();
        println!("  scratch kept in {}", kept.display());
    }
    println!(
        "stress: {}",
        if t.failures() == 0 { "PASS" } else { "FAIL" }
    );
    Ok(t.failures() == 0)
}
