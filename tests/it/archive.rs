//! Archive: history before the horizon moves to DB.archive and every query still answers
//! exactly; killed at any step, afterwards each event is in exactly one place.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use rewind::engine::AppendOptions;
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000_000;

/// A stream with a year of daily events (times in 2025), snapshots every 30 events, and a
/// second stream of recent events.
fn db(dir: &Path) -> PathBuf {
    let path = dir.join("a.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    engine
        .set_policy(
            None,
            &rewind::engine::Policy {
                every: Some(30),
                ..Default::default()
            },
        )
        .unwrap();
    let start = rewind::time::parse("2025-01-01T00:00:00Z").unwrap();
    for day in 0..365i64 {
        let mut e = crate::support::ev(
            "old",
            "Day",
            json!({ "day": day, format!("m{}", day / 31): day }),
        );
        e.time = Some(start + day * DAY);
        e.idempotency_key = Some(format!("day-{day}"));
        engine.append(e, AppendOptions::default()).unwrap();
    }
    for i in 0..20 {
        crate::support::append(&mut engine, "recent", json!({ "i": i }));
    }
    path
}

fn answers(path: &Path) -> (Vec<Value>, String, Vec<u64>, usize) {
    let mut engine = Engine::new(Store::open(path, OpenMode::Existing).unwrap());
    let states = (0..=365)
        .map(|v| (*engine.state_at("old", Target::Version(v)).unwrap().state).clone())
        .collect();
    let export = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["export", path.to_str().unwrap()])
        .output()
        .unwrap();
    let start = rewind::time::parse("2025-01-01T00:00:00Z").unwrap();
    let at_times = (0..12)
        .map(|m| {
            engine
                .state_at("old", Target::Time(start + m * 30 * DAY + 1))
                .unwrap()
                .provenance
                .version
        })
        .collect();
    let stream = engine.store().require_stream("old").unwrap();
    let log = engine.store().events(&stream, 1, 365, 1000).unwrap().len();
    (
        states,
        String::from_utf8(export.stdout).unwrap(),
        at_times,
        log,
    )
}

fn seqs(path: &Path, table: &str) -> BTreeSet<i64> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare(&format!("SELECT seq FROM {table}")).unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn archive_file(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.archive", path.display()))
}

#[test]
fn history_before_the_horizon_moves_and_every_query_still_answers_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let before = answers(&path);
    let all = seqs(&path, "events");
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["archive", path.to_str().unwrap(), "--older-than", "30d"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let main = seqs(&path, "events");
    let archived = seqs(&archive_file(&path), "events");
    assert!(archived.len() >= 330, "{}", archived.len());
    assert!(main.is_disjoint(&archived));
    assert_eq!(main.union(&archived).copied().collect::<BTreeSet<_>>(), all);
    assert_eq!(answers(&path), before);
    let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    // An archived event's idempotency key still dedupes, and new events get new seqs.
    let mut retry = crate::support::ev("old", "Day", json!({"day": 3, "m0": 3}));
    retry.idempotency_key = Some("day-3".into());
    assert_eq!(
        engine
            .append(retry, AppendOptions::default())
            .unwrap()
            .duplicates,
        1
    );
    let fresh = crate::support::append(&mut engine, "old", json!({"after": "archive"}));
    assert!(fresh.seq > *all.iter().max().unwrap());
    assert!(
        rewind::snapshot::verify::verify(&path, None, &|_, _| {})
            .unwrap()
            .findings
            .is_empty()
    );
    let stats = rewind::snapshot::stats::stats(&mut engine).unwrap();
    assert_eq!(stats.archived_events, archived.len() as u64);
    // A backup carries the archive; the restored copy answers the same.
    let copy = dir.path().join("copy.db");
    rewind::snapshot::backup::backup(&path, &copy).unwrap();
    assert_eq!(answers(&copy).0, answers(&path).0);
}

#[test]
fn killed_at_any_step_every_event_ends_in_exactly_one_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let before = answers(&path);
    let all = seqs(&path, "events");
    for step in ["archive:1", "archive:2", "archive:3", "archive:2"] {
        let status = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(["archive", path.to_str().unwrap(), "--older-than", "30d"])
            .env("REWIND_CRASH_AT", step)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "{step}: not reached");
        // Opening for writing finishes the cleanup; reads are exact even before it.
        assert_eq!(answers(&path), before, "{step}");
        drop(Store::open(&path, OpenMode::Existing).unwrap());
        let main = seqs(&path, "events");
        let archived = if archive_file(&path).exists() {
            seqs(&archive_file(&path), "events")
        } else {
            BTreeSet::new()
        };
        assert!(
            main.is_disjoint(&archived),
            "{step}: {} in both",
            main.intersection(&archived).count()
        );
        assert_eq!(
            main.union(&archived).copied().collect::<BTreeSet<_>>(),
            all,
            "{step}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["archive", path.to_str().unwrap(), "--older-than", "30d"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(answers(&path), before);
    assert!(
        rewind::snapshot::verify::verify(&path, None, &|_, _| {})
            .unwrap()
            .findings
            .is_empty()
    );
}

#[test]
fn a_version_1_database_migrates_forward() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    crate::support::append(
        &mut Engine::new(Store::open(&path, OpenMode::Create).unwrap()),
        "s",
        json!({"a": 1}),
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(crate::support::BEFORE_CHAINS).unwrap();
    conn.execute_batch("ALTER TABLE streams DROP COLUMN archived_upto; PRAGMA user_version = 1")
        .unwrap();
    drop(conn);
    let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    assert_eq!(
        *engine.state_at("s", Target::Head).unwrap().state,
        json!({"a": 1})
    );
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, rewind::store::SCHEMA_VERSION);
}

#[test]
fn a_stale_archive_run_cannot_move_the_boundary_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    let stream = engine.store().require_stream("old").unwrap();
    engine.store().create_archive().unwrap();
    // Run A moves 1..=100; run B, planned before A finished, would move 1..=50.
    engine.store().copy_to_archive(stream.id, 0, 100).unwrap();
    engine.store().finish_archive(stream.id, 0, 100).unwrap();
    let err = engine.store().finish_archive(stream.id, 0, 50).unwrap_err();
    assert!(err.to_string().contains("another archive run"), "{err}");
    assert_eq!(
        engine.store().require_stream("old").unwrap().archived_upto,
        100
    );
}

#[test]
fn a_process_opened_before_the_archive_existed_still_sees_archived_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let mut early = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["archive", path.to_str().unwrap(), "--older-than", "30d"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut retry = crate::support::ev("old", "Day", json!({"day": 3, "m0": 3}));
    retry.idempotency_key = Some("day-3".into());
    assert_eq!(
        early
            .append(retry, AppendOptions::default())
            .unwrap()
            .duplicates,
        1
    );
    assert_eq!(
        early.state_at("old", Target::Version(3)).unwrap().state["day"],
        2
    );
}

fn rewind(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = rewind(dir, args);
    assert!(
        out.status.success(),
        "rewind {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A database `name` with one stream `s` of `n` events dated in January 2025 (or February),
/// a snapshot at v4, archived.
fn archived(dir: &Path, name: &str, from: &str, n: u32, month: u32) {
    ok(dir, &["init", name]);
    for i in 1..=n {
        let data = format!("{{\"from\":\"{from}\",\"i\":{i}}}");
        let time = format!("2025-{month:02}-{i:02}T00:00:00Z");
        ok(dir, &["append", name, "s", "E", &data, "--time", &time]);
    }
    ok(dir, &["snapshot", name, "s", "--at", "4"]);
}

fn log_of(dir: &Path, db: &str) -> Vec<Value> {
    let out = ok(dir, &["log", db, "s", "--json"]);
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    rows.iter().map(|r| r["data"].clone()).collect()
}

#[test]
fn a_leftover_archive_is_never_read_nor_archived_into() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived(d, "a.db", "A", 6, 1);
    ok(d, &["archive", "a.db", "--older-than", "30d"]);
    archived(d, "b.db", "B", 5, 2);
    ok(d, &["backup", "b.db", "b.bk"]);
    // The sequence: B restored over A, then archived.
    ok(d, &["restore", "b.bk", "a.db", "--force"]);
    ok(d, &["archive", "a.db", "--older-than", "30d"]);
    let want: Vec<Value> = (1..=5).map(|i| json!({"from": "B", "i": i})).collect();
    assert_eq!(log_of(d, "a.db"), want, "B's events, all of them");
    assert_eq!(log_of(d, "b.db"), want);
    // Another database's archive put beside it is refused, naming both and the way out.
    ok(d, &["archive", "b.db", "--older-than", "30d"]);
    let a_archive = std::fs::read(d.join("a.db.archive")).unwrap();
    std::fs::copy(d.join("b.db.archive"), d.join("a.db.archive")).unwrap();
    for args in [
        &["log", "a.db", "s"][..],
        &["state", "a.db", "s", "--at", "2"],
        &["archive", "a.db", "--older-than", "1d"],
        &["verify", "a.db"],
    ] {
        let out = rewind(d, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("a.db.archive: not the archive of a.db")
                && stderr.contains("mv a.db.archive a.db.archive.orphan"),
            "{stderr}"
        );
    }
    std::fs::write(d.join("a.db.archive"), a_archive).unwrap();
    assert_eq!(log_of(d, "a.db"), want);
}

#[test]
fn init_refuses_beside_the_archive_of_a_database_that_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived(d, "d.db", "D", 5, 1);
    ok(d, &["archive", "d.db", "--older-than", "30d"]);
    std::fs::remove_file(d.join("d.db")).unwrap();
    let out = rewind(d, &["init", "d.db"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("mv d.db.archive d.db.archive.orphan"),
        "{stderr}"
    );
    assert!(!d.join("d.db").exists(), "nothing made");
}

/// Takes an archive's identity away, as archives made before identities were.
fn make_legacy(db: &Path) {
    let archive = rewind::store::sidecar(db, ".archive");
    rusqlite::Connection::open(&archive)
        .unwrap()
        .execute_batch("DROP TABLE meta")
        .unwrap();
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch("DELETE FROM meta WHERE key = 'archive_id'")
        .unwrap();
}

#[test]
fn an_archive_from_before_identities_is_adopted_only_if_it_is_this_databases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Its own archive: joins exactly, its covering snapshot equals the replay: adopted.
    archived(d, "own.db", "O", 6, 1);
    ok(d, &["archive", "own.db", "--older-than", "30d"]);
    make_legacy(&d.join("own.db"));
    let want: Vec<Value> = (1..=6).map(|i| json!({"from": "O", "i": i})).collect();
    assert_eq!(log_of(d, "own.db"), want, "read as it is");
    // The first command that may write gives it its identity.
    ok(d, &["policy", "own.db", "--every", "50"]);
    let owner: String = rusqlite::Connection::open(d.join("own.db.archive"))
        .unwrap()
        .query_row("SELECT value FROM meta WHERE key = 'owner'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(owner.len(), 32, "given its identity");
    // Two databases of the same shape, archived at the same version: their archives join
    // either one exactly, but the replay of the other's events is not this one's snapshot.
    archived(d, "x.db", "X", 6, 1);
    archived(d, "y.db", "Y", 6, 1);
    for db in ["x.db", "y.db"] {
        ok(d, &["archive", db, "--older-than", "30d"]);
        make_legacy(&d.join(db));
    }
    std::fs::rename(d.join("y.db.archive"), d.join("x.db.archive")).unwrap();
    let out = rewind(d, &["log", "x.db", "s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not the snapshot at v4"), "{stderr}");
    // One that does not join (another database's events where this one has its own): refused.
    archived(d, "z.db", "Z", 6, 1);
    std::fs::copy(d.join("own.db.archive"), d.join("z.db.archive")).unwrap();
    rusqlite::Connection::open(d.join("z.db.archive"))
        .unwrap()
        .execute_batch("DROP TABLE meta")
        .unwrap();
    let out = rewind(d, &["state", "z.db", "s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not join"), "{stderr}");
}

#[test]
fn only_a_process_that_knows_the_archiver_is_gone_recovers_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    let stream = engine.store().require_stream("old").unwrap();
    engine.store().create_archive().unwrap();
    // A live run (this process) has marked itself and copied, not yet finished.
    engine.store().claim_archive_run().unwrap();
    engine.store().copy_to_archive(stream.id, 0, 100).unwrap();
    let copies = || seqs(&rewind::store::sidecar(&path, ".archive"), "events").len();
    assert_eq!(copies(), 100);
    drop(Store::open(&path, OpenMode::Existing).unwrap());
    assert_eq!(copies(), 100, "a reader left the live run's copies alone");
    engine.store().finish_archive(stream.id, 0, 100).unwrap();
    // A run by a process that has exited: the next writable open recovers it.
    let gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    let mut gone = gone;
    gone.wait().unwrap();
    let mut runner = rewind::process::Process::current();
    runner.pid = pid;
    if let Some(started) = runner.started.as_mut() {
        started.ticks += 1;
    }
    engine
        .store()
        .set_meta(
            rewind::store::ARCHIVE_PENDING,
            &serde_json::to_string(&runner).unwrap(),
        )
        .unwrap();
    engine.store().copy_to_archive(stream.id, 100, 150).unwrap();
    assert_eq!(copies(), 150);
    drop(Store::open(&path, OpenMode::Existing).unwrap());
    assert_eq!(copies(), 100, "the dead run's copies are gone");
    assert_eq!(
        engine.store().meta(rewind::store::ARCHIVE_PENDING).unwrap(),
        None
    );
}

#[test]
#[cfg(unix)]
fn a_killed_runs_copies_still_in_its_log_never_come_back_after_the_recovery() {
    // A process killed after it wrote its commit into the archive's log but before it
    // updated the log's shared index leaves a commit no connection sees, until the index is
    // rebuilt from the log (the next open after every connection is gone, a killed one
    // among them): the recovery found no copies, removed the mark, and the copies came back
    // beyond what is archived with no run to account for them. The shared index is put back
    // as it was before the commit to leave the same log behind.
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let archive = rewind::store::sidecar(&path, ".archive");
    let engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    let stream = engine.store().require_stream("old").unwrap();
    engine.store().create_archive().unwrap();
    engine.store().claim_archive_run().unwrap();
    engine.store().copy_to_archive(stream.id, 0, 100).unwrap();
    engine.store().finish_archive(stream.id, 0, 100).unwrap();
    engine.store().release_archive_run().unwrap();
    engine.store().checkpoint();
    // A run by a process that has exited marked itself, copied and committed; its index
    // update never happened.
    let mut gone = Command::new("true").spawn().unwrap();
    let mut runner = rewind::process::Process::current();
    runner.pid = gone.id();
    gone.wait().unwrap();
    if let Some(started) = runner.started.as_mut() {
        started.ticks += 1;
    }
    engine
        .store()
        .set_meta(
            rewind::store::ARCHIVE_PENDING,
            &serde_json::to_string(&runner).unwrap(),
        )
        .unwrap();
    let shm = rewind::store::sidecar(&archive, "-shm");
    let index = std::fs::read(&shm).unwrap();
    engine.store().copy_to_archive(stream.id, 100, 150).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&shm)
        .unwrap()
        .write_all_at(&index, 0)
        .unwrap();
    let copies = || seqs(&archive, "events").len();
    assert_eq!(copies(), 100, "the commit is in the log, not in the index");
    // The next writable open recovers the run.
    drop(Store::open(&path, OpenMode::Existing).unwrap());
    assert_eq!(
        engine.store().meta(rewind::store::ARCHIVE_PENDING).unwrap(),
        None
    );
    // What an open sees once the index is rebuilt from the logs: the files as they are,
    // elsewhere, without their shared index.
    let later = tempfile::tempdir().unwrap();
    for suffix in ["", "-wal", ".archive", ".archive-wal"] {
        let from = rewind::store::sidecar(&path, suffix);
        if from.exists() {
            std::fs::copy(
                &from,
                rewind::store::sidecar(&later.path().join("a.db"), suffix),
            )
            .unwrap();
        }
    }
    let conn = rusqlite::Connection::open(later.path().join("a.db")).unwrap();
    conn.execute(
        "ATTACH DATABASE ?1 AS archive",
        [later.path().join("a.db.archive").to_str().unwrap()],
    )
    .unwrap();
    let (upto, beyond, pending): (i64, i64, i64) = conn
        .query_row(
            "SELECT s.archived_upto,
                    (SELECT count(*) FROM archive.events a WHERE a.stream_id = s.id AND a.version > s.archived_upto),
                    (SELECT count(*) FROM main.meta WHERE key = 'archive_pending')
             FROM main.streams s WHERE s.name = 'old'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (upto, beyond, pending),
        (100, 0, 0),
        "archived up to, copies beyond it, marks"
    );
    drop(engine);
}

#[test]
fn one_archive_run_at_a_time_and_a_dead_ones_copies_go_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let p = path.to_str().unwrap();
    let engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    let stream = engine.store().require_stream("old").unwrap();
    engine.store().create_archive().unwrap();
    // This test process stands for a live run that has copied and not finished.
    engine.store().claim_archive_run().unwrap();
    engine.store().copy_to_archive(stream.id, 0, 100).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["archive", p, "--older-than", "30d"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("another archive run")
            && stderr.contains(&format!("pid {}", std::process::id())),
        "{stderr}"
    );
    let copies = || seqs(&rewind::store::sidecar(&path, ".archive"), "events").len();
    assert_eq!(copies(), 100, "the live run's copies are left alone");
    // The run ends without finishing (as a killed one would): the next run recovers first.
    let mut gone = rewind::process::Process::current();
    let child = Command::new("true").spawn().unwrap();
    gone.pid = child.id();
    let mut child = child;
    child.wait().unwrap();
    engine
        .store()
        .set_meta(
            rewind::store::ARCHIVE_PENDING,
            &serde_json::to_string(&gone).unwrap(),
        )
        .unwrap();
    drop(engine);
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["archive", p, "--older-than", "30d"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let main = seqs(&path, "events");
    let archived = seqs(&rewind::store::sidecar(&path, ".archive"), "events");
    assert!(main.is_disjoint(&archived));
    let mark: Option<String> = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT value FROM meta WHERE key = 'archive_pending'",
            [],
            |r| r.get(0),
        )
        .ok();
    assert_eq!(mark, None, "the run released its mark");
}

#[test]
fn making_the_archive_removes_stages_that_killed_runs_left_and_keeps_a_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["init", "a.db"]);
    for i in 1..=3 {
        let time = format!("2025-01-{i:02}T00:00:00Z");
        ok(
            dir.path(),
            &["append", "a.db", "s", "E", "{\"i\":1}", "--time", &time],
        );
    }
    ok(dir.path(), &["snapshot", "a.db", "s", "--at", "2"]);
    // What a run killed while making the archive leaves (its stage and journal), an hour
    // ago; and one another run is making now.
    let stage = |name: &str, age: u64| {
        let path = dir.path().join(name);
        let file = std::fs::File::create(&path).unwrap();
        file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(age))
            .unwrap();
        path
    };
    let abandoned = stage("a.db.archive.new-4242", 3600);
    let journal = stage("a.db.archive.new-4242-journal", 3600);
    let live = stage("a.db.archive.new-4243", 0);
    let other = stage("b.db.archive.new-4242", 3600);
    ok(dir.path(), &["archive", "a.db", "--older-than", "30d"]);
    assert!(dir.path().join("a.db.archive").exists());
    assert!(!abandoned.exists() && !journal.exists());
    assert!(live.exists(), "a stage a minute young may be a live run's");
    assert!(
        other.exists(),
        "another database's stage is not this one's to remove"
    );
    assert_eq!(log_of(dir.path(), "a.db").len(), 3);
    // Left while the archive already exists: the next run that moves events removes it.
    let later = stage("a.db.archive.new-4244", 3600);
    ok(dir.path(), &["snapshot", "a.db", "s", "--at", "3"]);
    ok(dir.path(), &["archive", "a.db", "--older-than", "30d"]);
    assert!(!later.exists());
}
