//! The hash chain over events: a changed, removed or inserted event is found by `verify`,
//! a consistently rewritten history by `verify --expect`; files from before chains get them
//! on the first write command (archive included); export carries the heads, import checks them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rewind::{Engine, OpenMode, Store};
use serde_json::{Value, json};

fn rewind(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn run(dir: &Path, args: &[&str], code: i32) -> String {
    let out = rewind(dir, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "rewind {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `db.db` with stream `s` of 10 events and `t` of 5.
fn db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    for i in 1..=10 {
        crate::support::append(&mut engine, "s", json!({ "k": i }));
        if i <= 5 {
            crate::support::append(&mut engine, "t", json!({ "n": i }));
        }
    }
    (dir, path)
}

fn sql(path: &Path, statement: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(statement)
        .unwrap();
}

const S: &str = "(SELECT id FROM streams WHERE name = 's')";

/// What a tamperer who knows the chain does after changing events: every chain value of
/// stream `s` and its head recomputed from its stored rows.
fn rechain(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("DROP TRIGGER IF EXISTS events_append_only")
        .unwrap();
    let rows: Vec<(i64, i64, String, i64, String, Option<String>)> = conn
        .prepare(&format!(
            "SELECT seq, version, type, ts, data, meta FROM events WHERE stream_id = {S} ORDER BY version"
        ))
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut hash = rewind::chain::genesis("s");
    for (seq, version, kind, ts, data, meta) in rows {
        hash = rewind::chain::next(
            &hash,
            "s",
            version as u64,
            &kind,
            ts,
            &data,
            meta.as_deref(),
        );
        conn.execute(
            "UPDATE events SET chain = ?2 WHERE seq = ?1",
            rusqlite::params![seq, rewind::chain::short(&hash)],
        )
        .unwrap();
    }
    conn.execute(
        &format!("UPDATE streams SET head_hash = ?1 WHERE id = {S}"),
        [&hash[..]],
    )
    .unwrap();
}

fn verify_json(dir: &Path, args: &[&str], code: i32) -> Value {
    let mut all = vec!["verify", "db.db", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&run(dir, &all, code)).unwrap()
}

fn findings(report: &Value) -> Vec<(String, Option<u64>, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["stream"].as_str().unwrap().to_string(),
                f["version"].as_u64(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_changed_event_breaks_the_chain_at_its_version() {
    let (dir, path) = db();
    let d = dir.path();
    let text = run(d, &["verify", "db.db"], 0);
    assert!(text.contains("head hash"), "{text}");
    sql(
        &path,
        &format!(
            "DROP TRIGGER events_append_only;
             UPDATE events SET data = '{{\"k\":999}}' WHERE stream_id = {S} AND version = 5"
        ),
    );
    let text = run(d, &["verify", "db.db"], 1);
    assert!(
        text.contains("the chain breaks at v5: this event or one before it was changed"),
        "{text}"
    );
    let report = verify_json(d, &[], 1);
    assert_eq!(
        findings(&report),
        vec![("s".into(), Some(5), "hash".into())]
    );
}

#[test]
fn a_consistently_rewritten_history_passes_verify_but_not_expect() {
    let (dir, path) = db();
    let d = dir.path();
    std::fs::write(
        d.join("heads.json"),
        run(d, &["verify", "db.db", "--json"], 0),
    )
    .unwrap();
    let kept = verify_json(d, &[], 0);
    let lines: String = kept["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            format!(
                "{}\t{}\t{}\n",
                h["stream"].as_str().unwrap(),
                h["version"],
                h["hash"].as_str().unwrap()
            )
        })
        .collect();
    std::fs::write(d.join("heads.tsv"), lines).unwrap();
    run(d, &["verify", "db.db", "--expect", "heads.tsv"], 0);
    sql(
        &path,
        &format!(
            "DROP TRIGGER events_append_only;
             UPDATE events SET data = '{{\"k\":999}}' WHERE stream_id = {S} AND version = 5"
        ),
    );
    rechain(&path);
    run(d, &["verify", "db.db"], 0);
    for file in ["heads.json", "heads.tsv"] {
        let report = verify_json(d, &["--expect", file], 1);
        assert_eq!(
            findings(&report),
            vec![("s".into(), Some(10), "expected".into())],
            "{file}"
        );
        let text = run(d, &["verify", "db.db", "--expect", file], 1);
        assert!(text.contains("not the expected one"), "{text}");
    }
}

#[test]
fn removing_the_last_event_and_fixing_the_head_is_caught_by_expect() {
    let (dir, path) = db();
    let d = dir.path();
    std::fs::write(
        d.join("heads.json"),
        run(d, &["verify", "db.db", "--json"], 0),
    )
    .unwrap();
    sql(
        &path,
        &format!(
            "DELETE FROM events WHERE stream_id = {S} AND version = 10;
             UPDATE streams SET head = 9 WHERE id = {S}"
        ),
    );
    // The stored head no longer matches the events: found without the kept heads.
    assert_eq!(
        findings(&verify_json(d, &[], 1)),
        vec![("s".into(), Some(9), "hash".into())]
    );
    rechain(&path);
    run(d, &["verify", "db.db"], 0);
    let text = run(d, &["verify", "db.db", "--expect", "heads.json"], 1);
    assert!(text.contains("events were removed"), "{text}");
}

#[test]
fn growth_since_the_heads_were_kept_is_not_tampering_but_a_new_stream_is_named() {
    let (dir, path) = db();
    let d = dir.path();
    std::fs::write(
        d.join("heads.json"),
        run(d, &["verify", "db.db", "--json"], 0),
    )
    .unwrap();
    run(d, &["append", "db.db", "s", "E", "{\"k\":11}"], 0);
    run(d, &["verify", "db.db", "--expect", "heads.json"], 0);
    run(d, &["append", "db.db", "u", "E", "{}"], 0);
    let report = verify_json(d, &["--expect", "heads.json"], 1);
    assert_eq!(
        findings(&report),
        vec![("u".into(), None, "expected".into())]
    );
    // Only one stream: the others' expectations are not its business.
    run(d, &["verify", "db.db", "s", "--expect", "heads.json"], 0);
    drop(path);
    std::fs::write(d.join("bad.tsv"), "s\tten\tabc\n").unwrap();
    let out = rewind(d, &["verify", "db.db", "--expect", "bad.tsv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
}

fn chains_missing(path: &Path, table: &str) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            &format!("SELECT count(*) FROM {table} WHERE chain IS NULL"),
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn a_schema_4_file_is_read_as_it_is_and_gets_chains_on_the_first_write_command() {
    let (dir, path) = db();
    let d = dir.path();
    let before = verify_json(d, &[], 0)["heads"].clone();
    sql(&path, crate::support::BEFORE_CHAINS);
    let text = run(d, &["verify", "db.db"], 0);
    assert!(
        text.contains("note: the file has schema version 4"),
        "{text}"
    );
    run(d, &["log", "db.db", "s"], 0);
    run(d, &["export", "db.db"], 0);
    let out = rewind(d, &["verify", "db.db", "--expect", "/dev/null"]);
    assert_eq!(out.status.code(), Some(1));
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4, "read commands do not migrate");
    run(d, &["policy", "db.db", "--every", "50"], 0);
    assert_eq!(chains_missing(&path, "events"), 0);
    let after = verify_json(d, &[], 0);
    assert_eq!(after["heads"], before, "the same bytes give the same chain");
    // The append-only trigger is back.
    let err = rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE events SET chain = 0", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    run(d, &["append", "db.db", "s", "E", "{\"k\":11}"], 0);
    run(d, &["verify", "db.db"], 0);
}

/// `db.db` with stream `s` of 8 events dated in January 2025, a snapshot at v4, archived
/// (v1..=4 in `db.db.archive`).
fn archived(d: &Path) {
    run(d, &["init", "db.db"], 0);
    for i in 1..=8 {
        let time = format!("2025-01-{i:02}T00:00:00Z");
        run(
            d,
            &[
                "append",
                "db.db",
                "s",
                "E",
                &format!("{{\"i\":{i}}}"),
                "--time",
                &time,
            ],
            0,
        );
    }
    run(d, &["snapshot", "db.db", "s", "--at", "4"], 0);
    run(d, &["archive", "db.db", "--older-than", "30d"], 0);
}

#[test]
fn archived_events_keep_their_chain_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived(d);
    let archive = d.join("db.db.archive");
    let moved: i64 = rusqlite::Connection::open(&archive)
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert!(moved > 0);
    assert_eq!(chains_missing(&archive, "events"), 0);
    run(d, &["verify", "db.db"], 0);
    sql(
        &archive,
        "DROP TRIGGER events_append_only; UPDATE events SET data = '{\"i\":99}' WHERE version = 2",
    );
    assert_eq!(
        findings(&verify_json(d, &[], 1))
            .into_iter()
            .filter(|f| f.2 == "hash")
            .collect::<Vec<_>>(),
        vec![("s".into(), Some(2), "hash".into())]
    );
}

#[test]
fn an_archive_from_before_chains_gets_them_with_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived(d);
    let heads = verify_json(d, &[], 0)["heads"].clone();
    sql(&d.join("db.db"), crate::support::BEFORE_CHAINS);
    sql(
        &d.join("db.db.archive"),
        "ALTER TABLE events DROP COLUMN chain",
    );
    run(d, &["verify", "db.db"], 0);
    run(d, &["log", "db.db", "s"], 0);
    run(d, &["append", "db.db", "s", "E", "{\"i\":9}"], 0);
    assert_eq!(chains_missing(&d.join("db.db.archive"), "events"), 0);
    assert_eq!(chains_missing(&d.join("db.db"), "events"), 0);
    let report = verify_json(d, &[], 0);
    std::fs::write(
        d.join("old.tsv"),
        format!(
            "s\t{}\t{}\n",
            heads[0]["version"],
            heads[0]["hash"].as_str().unwrap()
        ),
    )
    .unwrap();
    assert_eq!(report["heads"][0]["version"], 9);
    run(d, &["verify", "db.db", "--expect", "old.tsv"], 0);
}

#[test]
fn export_carries_the_heads_and_import_checks_them() {
    let (dir, _path) = db();
    let d = dir.path();
    let exported = run(d, &["export", "db.db"], 0);
    let heads = verify_json(d, &[], 0)["heads"].clone();
    let carried: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|l| l.get("rewind_stream").map(|s| s["head"].clone()))
        .collect();
    let kept: Vec<Value> = heads
        .as_array()
        .unwrap()
        .iter()
        .map(|h| json!({"version": h["version"], "hash": h["hash"]}))
        .collect();
    assert_eq!(carried, kept);
    std::fs::write(d.join("all.jsonl"), &exported).unwrap();
    run(d, &["import", "copy.db", "all.jsonl"], 0);
    let copy: Value = serde_json::from_str(&run(d, &["verify", "copy.db", "--json"], 0)).unwrap();
    assert_eq!(copy["heads"], heads);
    // A file whose events were changed after the export is refused whole.
    let changed = exported.replace("{\"k\":7}", "{\"k\":70}");
    assert_ne!(changed, exported);
    std::fs::write(d.join("changed.jsonl"), changed).unwrap();
    let out = rewind(d, &["import", "other.db", "changed.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("changed after the export"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
}
