//! Hostile environments: a database on a read-only file system, a read-only file and folder
//! for a user who does not own them, a killed writer's log left behind, and files rewind must
//! refuse without leaving anything beside them. Tests that need root (to mount, or to run as
//! another user) say why they skip; with `REWIND_REQUIRE_PRIVILEGED` set (as `.ci/run` does)
//! a skip is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{Mount, privileged};

fn rewind(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .output()
        .unwrap()
}

fn run_ok(args: &[&str]) -> String {
    let out = rewind(args);
    assert!(
        out.status.success(),
        "rewind {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A database with an archive: stream `s` of 8 events dated 2025 (v1..=4 archived), and a
/// recent stream `r`.
fn fixture(dir: &Path) -> PathBuf {
    let db = dir.join("ro.db");
    let p = db.to_str().unwrap();
    run_ok(&["init", p]);
    for i in 1..=8 {
        let data = format!("{{\"i\":{i}}}");
        let time = format!("2025-01-{i:02}T00:00:00Z");
        run_ok(&["append", p, "s", "E", &data, "--time", &time]);
    }
    run_ok(&["snapshot", p, "s", "--at", "4"]);
    run_ok(&["archive", p, "--older-than", "30d"]);
    run_ok(&["append", p, "r", "E", "{\"n\":1}"]);
    db
}

/// The fixture in a folder of its own (`data`) inside a temporary one.
fn fixture_in_folder() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = fixture(&data);
    (dir, data, db)
}

/// Every read command on `db`, each of whose answers must be what the same command says on
/// the writable original `reference`.
fn read_everything(db: &Path, reference: &Path) {
    let (p, q) = (db.to_str().unwrap(), reference.to_str().unwrap());
    for args in [
        vec!["streams", "{}"],
        vec!["log", "{}", "s"],
        vec!["state", "{}", "s", "--at", "2"],
        vec!["state", "{}", "r"],
        vec!["diff", "{}", "s", "1", "6"],
        vec!["blame", "{}", "s", "/i"],
        vec!["export", "{}"],
        vec!["verify", "{}"],
        vec![
            "render", "{}", "--stream", "s", "--at", "3", "--size", "80x24",
        ],
    ] {
        let on = |path: &str| -> Vec<String> {
            args.iter()
                .map(|a| {
                    if *a == "{}" {
                        path.to_string()
                    } else {
                        (*a).to_string()
                    }
                })
                .collect()
        };
        let here: Vec<String> = on(p);
        let there: Vec<String> = on(q);
        let here: Vec<&str> = here.iter().map(String::as_str).collect();
        let there: Vec<&str> = there.iter().map(String::as_str).collect();
        let got = rewind(&here);
        assert!(
            got.status.success(),
            "{here:?}: {}",
            String::from_utf8_lossy(&got.stderr)
        );
        let want = run_ok(&there);
        let normal = |text: &str| text.replace(q, "DB").replace(p, "DB");
        if args[0] != "verify" {
            assert_eq!(
                normal(&String::from_utf8_lossy(&got.stdout)),
                normal(&want),
                "{args:?}"
            );
        }
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_read_command_reads_a_database_on_a_read_only_file_system() {
    if !privileged("mounting a read-only file system") {
        return;
    }
    let (dir, data, db) = fixture_in_folder();
    let mount = Mount::read_only(&data, &dir.path().join("ro"));
    let ro = mount.0.join("ro.db");
    let before = listing(&mount.0);
    read_everything(&ro, &db);
    assert_eq!(listing(&mount.0), before);
    // A write says it cannot write, and what still works.
    let out = rewind(&["append", ro.to_str().unwrap(), "s", "E", "{}"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot be written"), "{stderr}");
}

#[test]
fn a_killed_writers_log_on_a_read_only_file_system_is_read_not_ignored() {
    if !privileged("mounting a read-only file system") {
        return;
    }
    let (dir, data, db) = fixture_in_folder();
    // A writer that committed and was killed before it could checkpoint: its last event is
    // only in the log.
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["append", db.to_str().unwrap(), "r", "E", "{\"n\":2}"])
        .env("REWIND_CRASH_AT", "appended:1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "killed after its commit");
    assert!(rewind::store::sidecar(&db, "-wal").exists());
    for keep_shm in [true, false] {
        if !keep_shm {
            let _ = std::fs::remove_file(rewind::store::sidecar(&db, "-shm"));
        }
        let mount = Mount::read_only(&data, &dir.path().join(format!("ro-{keep_shm}")));
        let ro = mount.0.join("ro.db");
        let out = rewind(&["state", ro.to_str().unwrap(), "r", "--json"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let state: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            state["state"]["n"], 2,
            "the newest commit (shm kept: {keep_shm})"
        );
        if !keep_shm {
            assert!(stderr.contains("reading a copy"), "{stderr}");
        }
    }
}

#[test]
fn a_read_only_file_and_folder_read_for_another_user() {
    if !privileged("running as another user") {
        return;
    }
    let (dir, data, db) = fixture_in_folder();
    let reference = dir.path().join("reference");
    std::fs::create_dir(&reference).unwrap();
    for name in ["ro.db", "ro.db.archive"] {
        std::fs::copy(data.join(name), reference.join(name)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    for name in ["ro.db", "ro.db.archive"] {
        std::fs::set_permissions(data.join(name), std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    for d in [dir.path(), data.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let before = listing(&data);
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_rewind"))
            .args(args)
            .output()
            .unwrap()
    };
    let p = db.to_str().unwrap();
    for args in [
        vec!["state", p, "s", "--at", "2"],
        vec!["log", p, "s"],
        vec!["verify", p],
        vec!["export", p],
    ] {
        let out = as_nobody(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = as_nobody(&["state", p, "s", "--at", "2", "--json"]);
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["state"]["i"], 2);
    assert_eq!(listing(&data), before, "nothing made beside it");
    let out = as_nobody(&["append", p, "s", "E", "{}"]);
    assert_eq!(out.status.code(), Some(2));
    for d in [dir.path(), data.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn a_refused_file_gets_nothing_made_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = fixture(dir.path());
    // Written by a newer rewind.
    let newer = dir.path().join("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    // Cut short: the first 60 bytes of a database.
    let truncated = dir.path().join("truncated.db");
    std::fs::write(&truncated, &std::fs::read(&good).unwrap()[..60]).unwrap();
    // Not SQLite at all.
    let text = dir.path().join("notes.db");
    std::fs::write(&text, "these are notes, not a database\n".repeat(200)).unwrap();
    for (file, says) in [
        (&newer, "newer than this rewind"),
        (&truncated, "truncated"),
        (&text, "not an SQLite file"),
    ] {
        let bytes = std::fs::read(file).unwrap();
        for args in [
            vec!["state", file.to_str().unwrap(), "s"],
            vec!["append", file.to_str().unwrap(), "s", "E", "{}"],
            vec!["verify", file.to_str().unwrap()],
        ] {
            let out = rewind(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(says), "{args:?}: {stderr}");
            for suffix in ["-wal", "-shm", "-journal"] {
                assert!(
                    !rewind::store::sidecar(file, suffix).exists(),
                    "{args:?} left {suffix}"
                );
            }
            assert_eq!(
                std::fs::read(file).unwrap(),
                bytes,
                "{args:?} changed the file"
            );
        }
    }
}

#[test]
fn a_file_with_damaged_pages_is_a_finding_of_verify_not_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("damaged.db");
    let p = db.to_str().unwrap();
    run_ok(&["init", p]);
    let lines: String = (0..300)
        .map(|i| {
            format!(
                "{{\"stream\":\"s{}\",\"type\":\"E\",\"data\":{{\"i\":{i},\"pad\":\"{}\"}}}}\n",
                i % 5,
                "x".repeat(100)
            )
        })
        .collect();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, lines).unwrap();
    run_ok(&["import", p, input.to_str().unwrap()]);
    // Garbage over the middle of pages 3 to 19; the header and the schema page stay whole.
    let mut bytes = std::fs::read(&db).unwrap();
    for page in 2..19 {
        let at = 4096 * page + 200;
        if at + 400 <= bytes.len() {
            bytes[at..at + 400].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef].repeat(100));
        }
    }
    std::fs::write(&db, bytes).unwrap();
    let out = rewind(&["verify", p]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("integrity"), "{stdout}");
    assert!(!stdout.contains("*** in database"), "{stdout}");
}

#[test]
fn a_database_the_user_may_not_read_says_so() {
    if !privileged("running as another user") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = dir.path().join("closed.db");
    run_ok(&["init", db.to_str().unwrap()]);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_rewind"))
        .args(["streams", db.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot be read") && stderr.contains("permissions"),
        "{stderr}"
    );
    assert!(!stderr.contains("not a rewind database"), "{stderr}");
}

#[test]
fn a_full_disk_during_archive_is_said_plainly_and_every_command_goes_on_working() {
    if !privileged("mounting a small file system") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fs = Mount::tmpfs(&dir.path().join("small"), "8m");
    let db = fs.0.join("f.db");
    let p = db.to_str().unwrap();
    run_ok(&["init", p]);
    let start = rewind::time::parse("2025-01-01T00:00:00Z").unwrap();
    let lines: String = (0..3000_i64)
        .map(|i| {
            let data = serde_json::json!({"i": i, "pad": format!("p{i}").repeat(60)});
            let line = serde_json::json!({
                "stream": format!("s{}", i % 10),
                "type": "E",
                "time": rewind::time::format(start + i * 600_000_000),
                "data": data,
            });
            format!("{line}\n")
        })
        .collect();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, lines).unwrap();
    run_ok(&["import", p, input.to_str().unwrap()]);
    run_ok(&["snapshot", p, "--all"]);
    let filler = fs.0.join("filler");
    let fill = |leave: u64| {
        let size = fs.free().saturating_sub(leave);
        std::fs::write(&filler, vec![0_u8; usize::try_from(size).unwrap()]).unwrap();
    };
    let archive = |assume: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rewind"));
        command.args(["archive", p, "--older-than", "30d"]);
        if let Some(bytes) = assume {
            command.env("REWIND_ASSUME_FREE_BYTES", bytes);
        }
        command.output().unwrap()
    };
    fill(300 << 10);
    // Not enough room: refused before anything moves.
    let out = archive(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("archiving needs about"), "{stderr}");
    // The disk fills during the run (the check told otherwise): a plain message, and what
    // the run added is given back.
    let out = archive(Some("99999999999"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the disk is full"), "{stderr}");
    assert!(!stderr.contains("I/O error"), "{stderr}");
    assert!(!rewind::store::sidecar(&db, ".archive").exists());
    for args in [
        vec!["state", p, "s1", "--at", "5"],
        vec!["log", p, "s2", "--limit", "3"],
        vec!["verify", p],
        vec!["append", p, "s1", "E", "{\"after\":true}"],
    ] {
        run_ok(&args);
    }
    std::fs::remove_file(&filler).unwrap();
    let out = archive(None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run_ok(&["verify", p]);
    let exported = run_ok(&["export", p]);
    assert_eq!(
        exported
            .lines()
            .filter(|l| l.contains("\"stream\""))
            .count(),
        3001
    );
}
