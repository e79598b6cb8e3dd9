//! Backup while another writer appends, restore that verifies first, snapshot --all.

use std::path::Path;

use rewind::snapshot::{all, backup};
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::json;

use crate::support::append;

fn count(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_backup_taken_while_another_connection_appends_is_consistent_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let mut engine = Engine::new(Store::open(&db, OpenMode::Create).unwrap());
    for i in 0..300 {
        append(&mut engine, "s", json!({ "i": i }));
    }
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut engine = Engine::new(Store::open(&db, OpenMode::Existing).unwrap());
            for i in 300..1_300 {
                append(&mut engine, "s", json!({ "i": i }));
            }
        })
    };
    let copy = dir.path().join("copy.db");
    backup::backup(&db, &copy).unwrap();
    writer.join().unwrap();
    let events = count(&copy);
    assert!((300..=1_300).contains(&events), "{events}");
    let report = rewind::snapshot::verify::verify(&copy, None, &|_, _| {}).unwrap();
    assert_eq!(report.findings, vec![]);
    // The copy is a prefix of the history: its head is dense and its last state matches.
    let mut copied = Engine::new(Store::open(&copy, OpenMode::Existing).unwrap());
    let head = copied.store().require_stream("s").unwrap().head;
    assert_eq!(head as i64, events);
    assert_eq!(
        *copied.state_at("s", Target::Head).unwrap().state,
        json!({ "i": head - 1 })
    );
    assert!(
        backup::backup(&db, &copy).is_err(),
        "an existing file is never overwritten"
    );
}

#[test]
fn restore_verifies_the_backup_and_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let (db, bak) = (dir.path().join("db.db"), dir.path().join("db.bak"));
    let mut engine = Engine::new(Store::open(&db, OpenMode::Create).unwrap());
    for i in 0..150 {
        append(&mut engine, "s", json!({ "i": i }));
    }
    drop(engine);
    backup::backup(&db, &bak).unwrap();
    let mut engine = Engine::new(Store::open(&db, OpenMode::Existing).unwrap());
    append(&mut engine, "s", json!({ "after": "backup" }));
    drop(engine);
    let err = backup::restore(&bak, &db, false).unwrap_err();
    assert!(err.to_string().contains("pass --force"), "{err}");
    assert_eq!(count(&db), 151);
    let restored = backup::restore(&bak, &db, true).unwrap();
    assert_eq!((restored.events, count(&db)), (150, 150));

    // A backup that does not verify is refused and the database is left as it was.
    rusqlite::Connection::open(&bak)
        .unwrap()
        .execute_batch("UPDATE snapshots SET checksum = zeroblob(32)")
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    let err = backup::restore(&bak, &db, true).unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn snapshot_all_covers_every_stream_head_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("many.db");
    let mut engine = Engine::new(Store::open(&db, OpenMode::Create).unwrap());
    for i in 0..60 {
        append(&mut engine, &format!("s{}", i % 12), json!({ "i": i }));
    }
    drop(engine);
    let first = all::take_all(&db, Some("nightly")).unwrap();
    assert_eq!(first.len(), 12);
    assert!(first.iter().all(|(_, r)| {
        r.as_ref()
            .is_ok_and(|m| m.version == 5 && m.label.as_deref() == Some("nightly"))
    }));
    assert!(all::take_all(&db, None).unwrap().is_empty());
}

fn rewind(dir: &Path, env: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rewind"));
    command.args(args).current_dir(dir);
    if let Some(spec) = env {
        command.env("REWIND_CRASH_AT", spec);
    }
    command.output().unwrap()
}

/// `name`: stream `s` of `n` events from `from`, dated 2025 (so that archive moves v1..=4).
fn archived_db(dir: &Path, name: &str, from: &str, n: u32) {
    let ok = |args: &[&str]| assert!(rewind(dir, None, args).status.success(), "{args:?}");
    ok(&["init", name]);
    for i in 1..=n {
        let data = format!("{{\"from\":\"{from}\",\"i\":{i}}}");
        let time = format!("2025-01-{i:02}T00:00:00Z");
        ok(&["append", name, "s", "E", &data, "--time", &time]);
    }
    ok(&["snapshot", name, "s", "--at", "4"]);
    ok(&["archive", name, "--older-than", "30d"]);
}

/// Every version's state of `s`, each through a fresh process (archived ones included).
fn states(dir: &Path, db: &str) -> Vec<String> {
    let head = {
        let out = rewind(dir, None, &["state", db, "s", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["provenance"]["version"].as_u64().unwrap()
    };
    (1..=head)
        .map(|v| {
            let out = rewind(dir, None, &["state", db, "s", "--at", &v.to_string()]);
            assert!(
                out.status.success(),
                "v{v}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        })
        .collect()
}

#[test]
fn a_restore_killed_at_any_step_leaves_the_old_pair_or_the_new_pair() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived_db(d, "new.db", "N", 7);
    assert!(
        rewind(d, None, &["backup", "new.db", "new.bk"])
            .status
            .success()
    );
    let new = states(d, "new.db");
    // Each kill point, then the next open: the old pair (6 events of O) or the new (7 of N).
    for (point, finished) in [(1, false), (2, true), (3, true)] {
        let _ = std::fs::remove_file(d.join("db.db"));
        let _ = std::fs::remove_file(d.join("db.db.archive"));
        archived_db(d, "db.db", "O", 6);
        let old = states(d, "db.db");
        let spec = format!("restore:{point}");
        let out = rewind(d, Some(&spec), &["restore", "new.bk", "db.db", "--force"]);
        assert!(!out.status.success(), "killed at {spec}");
        let now = states(d, "db.db");
        if finished {
            assert_eq!(now, new, "killed at {spec}: the new pair");
        } else {
            assert_eq!(now, old, "killed at {spec}: the old pair");
        }
        let verify = rewind(d, None, &["verify", "db.db"]);
        assert!(
            verify.status.success(),
            "{spec}: {}",
            String::from_utf8_lossy(&verify.stdout)
        );
        // Restoring again from there ends on the new pair.
        assert!(
            rewind(d, None, &["restore", "new.bk", "db.db", "--force"])
                .status
                .success()
        );
        assert_eq!(states(d, "db.db"), new);
    }
}

#[test]
fn restore_refuses_a_database_another_process_has_open_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived_db(d, "new.db", "N", 5);
    assert!(
        rewind(d, None, &["backup", "new.db", "new.bk"])
            .status
            .success()
    );
    archived_db(d, "db.db", "O", 6);
    let old = states(d, "db.db");
    let holder = Engine::new(Store::open(&d.join("db.db"), OpenMode::Existing).unwrap());
    holder.store().event_totals().unwrap();
    let out = rewind(d, None, &["restore", "new.bk", "db.db", "--force"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("open in another process"), "{stderr}");
    drop(holder);
    assert_eq!(states(d, "db.db"), old, "nothing changed");
    assert!(!d.join("db.db.restoring").exists());
}

/// How many POSIX locks this process holds on a file, as Linux lists them.
#[cfg(target_os = "linux")]
fn locks_held_on(path: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    // /proc/locks names a file as MAJOR:MINOR:INODE (the device numbers in hex): an inode
    // number alone may be another file's on another file system, locked by a test running
    // beside this one.
    let meta = std::fs::metadata(path).unwrap();
    let dev = meta.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let file = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let pid = std::process::id().to_string();
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&"POSIX")
                && fields.get(4) == Some(&pid.as_str())
                && fields.get(5) == Some(&file.as_str())
        })
        .count()
}

#[test]
#[cfg(target_os = "linux")]
fn opening_a_database_again_keeps_the_locks_the_process_holds_on_it() {
    // POSIX drops every lock a process holds on a file when any descriptor of that file is
    // closed: an open that looked at the file through a descriptor of its own released the
    // lock SQLite holds for the first connection, which is what tells other processes (a
    // restore among them) that the database is in use.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived_db(d, "new.db", "N", 5);
    assert!(
        rewind(d, None, &["backup", "new.db", "new.bk"])
            .status
            .success()
    );
    archived_db(d, "db.db", "O", 6);
    let old = states(d, "db.db");
    let db = d.join("db.db");
    let holder = Engine::new(Store::open(&db, OpenMode::Existing).unwrap());
    holder.store().event_totals().unwrap();
    let held = locks_held_on(&db);
    assert!(
        held > 0,
        "a connection in WAL mode holds a shared lock on its file"
    );
    // What is tested is that no lock is lost: SQLite may hold one more range for a moment
    // while the second connection is open (seen under load, once in a few hundred runs).
    for mode in [OpenMode::ReadOnly, OpenMode::Existing] {
        let second = Store::open(&db, mode).unwrap();
        second.event_totals().unwrap();
        let open = locks_held_on(&db);
        assert!(
            open >= held,
            "after a second open ({mode:?}): {open} < {held}"
        );
        drop(second);
        assert_eq!(locks_held_on(&db), held, "after closing it ({mode:?})");
    }
    let out = rewind(d, None, &["restore", "new.bk", "db.db", "--force"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("open in another process"), "{stderr}");
    drop(holder);
    assert_eq!(states(d, "db.db"), old, "nothing changed");
}

#[test]
fn a_restore_while_others_append_leaves_a_sound_database() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    archived_db(&d, "new.db", "N", 5);
    assert!(
        rewind(&d, None, &["backup", "new.db", "new.bk"])
            .status
            .success()
    );
    archived_db(&d, "db.db", "O", 6);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (mut restored, mut refused) = (0, 0);
    std::thread::scope(|scope| {
        for w in 0..2 {
            let (d, stop) = (&d, &stop);
            scope.spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // A writer that finds the database locked by a restore says so and
                    // stops; it never damages it.
                    let data = format!("{{\"w\":{w},\"i\":{i}}}");
                    let out = rewind(d, None, &["append", "db.db", &format!("w{w}"), "E", &data]);
                    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
                    assert!(
                        out.status.success() || stderr.contains("locked"),
                        "{stderr}"
                    );
                    i += 1;
                }
            });
        }
        for _ in 0..6 {
            let out = rewind(&d, None, &["restore", "new.bk", "db.db", "--force"]);
            if out.status.success() {
                restored += 1;
            } else {
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(stderr.contains("open in another process"), "{stderr}");
                refused += 1;
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(restored + refused, 6);
    let verify = rewind(&d, None, &["verify", "db.db"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let names: Vec<String> = {
        let conn = rusqlite::Connection::open(d.join("db.db")).unwrap();
        let mut stmt = conn.prepare("SELECT name FROM streams").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(names.len(), unique.len(), "{names:?}");
}

#[test]
fn a_restored_pair_is_in_wal_mode_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived_db(d, "new.db", "N", 6);
    assert!(
        rewind(d, None, &["backup", "new.db", "new.bk"])
            .status
            .success()
    );
    archived_db(d, "db.db", "O", 6);
    assert!(
        rewind(d, None, &["restore", "new.bk", "db.db", "--force"])
            .status
            .success()
    );
    for file in ["db.db", "db.db.archive"] {
        let header = std::fs::read(d.join(file)).unwrap();
        // Bytes 18 and 19: the file format versions, 2 for WAL (1: rollback journal).
        assert_eq!((header[18], header[19]), (2, 2), "{file}");
    }
}

#[test]
fn a_backup_taken_during_an_archive_run_holds_no_half_done_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived_db(d, "db.db", "O", 12);
    assert!(
        rewind(d, None, &["snapshot", "db.db", "s", "--at", "9"])
            .status
            .success()
    );
    // An archive run that has copied v5..=9 and not finished (as between the backup's copy
    // of the main file and its copy of the archive).
    let engine = Engine::new(Store::open(&d.join("db.db"), OpenMode::Existing).unwrap());
    let stream = engine.store().require_stream("s").unwrap();
    engine.store().claim_archive_run().unwrap();
    engine.store().copy_to_archive(stream.id, 4, 9).unwrap();
    let copy = d.join("copy.db");
    backup::backup(&d.join("db.db"), &copy).unwrap();
    let conn = rusqlite::Connection::open(rewind::store::sidecar(&copy, ".archive")).unwrap();
    let top: i64 = conn
        .query_row("SELECT max(version) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(top, 4, "only what the copy counts as archived");
    let mark: Option<String> = rusqlite::Connection::open(&copy)
        .unwrap()
        .query_row(
            "SELECT value FROM meta WHERE key = 'archive_pending'",
            [],
            |r| r.get(0),
        )
        .ok();
    assert_eq!(mark, None);
    // The original's run is untouched.
    assert_eq!(
        seqs_in(&rewind::store::sidecar(&d.join("db.db"), ".archive")),
        9
    );
}

fn seqs_in(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_restore_killed_after_another_was_killed_ends_on_the_backups_pair() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived_db(d, "db.db", "O", 8);
    assert!(
        rewind(d, None, &["backup", "db.db", "db.bk"])
            .status
            .success()
    );
    let backup = states(d, "db.db");
    // The database moves on: more events, more of them archived (the same archive lineage).
    for i in 9..=14 {
        let data = format!("{{\"from\":\"O\",\"i\":{i}}}");
        let time = format!("2025-01-{i:02}T00:00:00Z");
        assert!(
            rewind(
                d,
                None,
                &["append", "db.db", "s", "E", &data, "--time", &time]
            )
            .status
            .success()
        );
    }
    assert!(
        rewind(d, None, &["snapshot", "db.db", "s", "--at", "12"])
            .status
            .success()
    );
    assert!(
        rewind(d, None, &["archive", "db.db", "--older-than", "30d"])
            .status
            .success()
    );
    // One restore killed once it installed the main file, then another killed as it began
    // staging: the second must not take the first's staged archive for a leftover.
    let out = rewind(
        d,
        Some("restore:2"),
        &["restore", "db.bk", "db.db", "--force"],
    );
    assert!(!out.status.success());
    let out = rewind(
        d,
        Some("restore-stage:1"),
        &["restore", "db.bk", "db.db", "--force"],
    );
    assert!(!out.status.success());
    assert_eq!(states(d, "db.db"), backup, "the backup's pair");
    let archived: i64 = rusqlite::Connection::open(d.join("db.db"))
        .unwrap()
        .query_row(
            "SELECT archived_upto FROM streams WHERE name = 's'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let top: i64 = rusqlite::Connection::open(rewind::store::sidecar(&d.join("db.db"), ".archive"))
        .unwrap()
        .query_row("SELECT max(version) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        top, archived,
        "the backup's archive, not the newer one beside it"
    );
}
