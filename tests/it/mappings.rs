//! Mapping files: another program's tables read as events through a mapping (TOML), never
//! written; the shipped seed mappings on databases shaped as their systems make them; each
//! mistake in a mapping or a row named by file, key, column and row.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The built binary with its mirrors and settings kept in `data`.
pub(crate) fn rewind(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .env("REWIND_DATA_DIR", data)
        .env("REWIND_CONFIG_DIR", data.join("config"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn ok(data: &Path, args: &[&str]) -> String {
    let (code, out, err) = rewind(data, args);
    assert_eq!(code, 0, "rewind {args:?}\n{out}\n{err}");
    out
}

/// RFC 7386, independently of rewind's reducer.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let map = target.as_object_mut().unwrap();
    for (key, value) in fields {
        if value.is_null() {
            map.remove(key);
        } else {
            merge(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// An agent monitor's database (seed 000, in SQLite with its names): `agents` agents'
/// events under a global seq with gaps (a rolled-back transaction's number every 7th), rows
/// inserted out of seq order now and then (two writers), SQL datetime times. Returns each
/// row as (seq, agent, data).
pub(crate) fn seed_000(path: &Path, events: u64, agents: u64) -> Vec<(i64, String, Value)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE sequence_generator (
           id INTEGER PRIMARY KEY AUTOINCREMENT,
           sequence_name VARCHAR(100) UNIQUE NOT NULL,
           current_value BIGINT NOT NULL DEFAULT 0,
           updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
         CREATE TABLE snapshots (
           id INTEGER PRIMARY KEY AUTOINCREMENT,
           snapshot_id VARCHAR(36) UNIQUE NOT NULL,
           seq BIGINT NOT NULL,
           data JSON NOT NULL,
           created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
           expires_at TIMESTAMP NULL);
         CREATE TABLE agent_events (
           id INTEGER PRIMARY KEY AUTOINCREMENT,
           seq BIGINT NOT NULL UNIQUE,
           event_type VARCHAR(50) NOT NULL,
           agent_id VARCHAR(255) NOT NULL,
           data JSON NOT NULL,
           created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);",
    )
    .unwrap();
    let mut rows = Vec::new();
    let mut seq = 0;
    for n in 0..events {
        seq += if n % 7 == 6 { 2 } else { 1 };
        let agent = format!("agent-{}", (n * 7 + n / 5) % agents);
        let data = match n % 4 {
            0 => json!({ "status": "running", "step": n }),
            1 => json!({ "tool": { "name": format!("tool-{}", n % 3), "calls": n } }),
            2 => json!({ "tool": null, "tokens": n * 10 }),
            _ => json!({ "status": "waiting", "note": format!("after {n} \u{1F600}") }),
        };
        rows.push((seq, agent, data));
    }
    // Two writers: every tenth pair lands in the other order.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    for pair in order.chunks_mut(2).step_by(10) {
        pair.reverse();
    }
    for i in order {
        let (seq, agent, data) = &rows[i];
        conn.execute(
            "INSERT INTO agent_events (seq, event_type, agent_id, data, created_at)
             VALUES (?1, ?2, ?3, ?4, datetime('2026-02-08 10:00:00', ?5))",
            rusqlite::params![
                seq,
                ["Started", "ToolCalled", "ToolReturned", "Waiting"]
                    [usize::try_from(*seq).unwrap() % 4],
                agent,
                data.to_string(),
                format!("+{seq} seconds")
            ],
        )
        .unwrap();
    }
    rows
}

/// Every file in a folder with its bytes.
pub(crate) fn folder(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap_or_default();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn seed_000_opens_through_its_shipped_mapping_keeping_the_monitors_seq_and_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let source_dir = dir.path().join("monitor");
    std::fs::create_dir(&source_dir).unwrap();
    let path = source_dir.join("agent_monitor.db");
    let source = path.to_str().unwrap();
    let rows = seed_000(&path, 400, 5);
    let before = folder(&source_dir);
    // Without a mapping it is refused, saying how to read it.
    let (code, _, err) = rewind(&data, &["streams", source]);
    assert_eq!(code, 2);
    assert!(err.contains("--map"), "{err}");
    // With one, every agent is a stream, each state the fold of its rows in seq order.
    let streams: Value = serde_json::from_str(&ok(
        &data,
        &["streams", source, "--map", "seed-000", "--json"],
    ))
    .unwrap();
    assert_eq!(streams.as_array().unwrap().len(), 5);
    for agent in (0..5).map(|a| format!("agent-{a}")) {
        let mine: Vec<&(i64, String, Value)> = rows.iter().filter(|r| r.1 == agent).collect();
        let log: Vec<Value> =
            serde_json::from_str(&ok(&data, &["log", source, &agent, "--json"])).unwrap();
        assert_eq!(log.len(), mine.len());
        let mut state = json!({});
        for (event, (seq, _, patch)) in log.iter().zip(&mine) {
            // The monitor's seq is the mirror's, gaps included.
            assert_eq!(event["seq"], json!(seq));
            merge(&mut state, patch);
        }
        // The mapping is remembered: later commands need no --map.
        let head: Value =
            serde_json::from_str(&ok(&data, &["state", source, &agent, "--json"])).unwrap();
        assert_eq!(head["state"], state, "{agent}");
    }
    // --at-seq is the monitor's seq: the agent's last event at or before it.
    let (seq, agent, _) = &rows[200];
    let at: Value = serde_json::from_str(&ok(
        &data,
        &[
            "state",
            source,
            agent,
            "--at-seq",
            &seq.to_string(),
            "--json",
        ],
    ))
    .unwrap();
    let version = rows[..=200].iter().filter(|r| &r.1 == agent).count();
    assert_eq!(at["version"], json!(version));
    // What a client at seq N lacks: exactly the rows after N, by the monitor's seq.
    let n = rows[300].0;
    let export = ok(&data, &["export", source, "--since-seq", &n.to_string()]);
    let seqs: Vec<i64> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| l.get("seq").and_then(Value::as_i64))
        .collect();
    let expected: Vec<i64> = rows.iter().map(|r| r.0).filter(|s| *s > n).collect();
    assert_eq!(seqs, expected);
    assert_eq!(folder(&source_dir), before, "the source is never written");
}

#[test]
fn a_mapped_table_is_mirrored_incrementally_and_made_again_when_rows_already_read_change() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("monitor.db");
    let source = path.to_str().unwrap();
    seed_000(&path, 60, 3);
    let head = |agent: &str| -> Value {
        serde_json::from_str(&ok(
            &data,
            &["state", source, agent, "--map", "seed-000", "--json"],
        ))
        .unwrap()
    };
    let before = head("agent-1");
    // The monitor goes on: new rows are appended, nothing made again.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO agent_events (seq, event_type, agent_id, data, created_at)
         VALUES (1000, 'Finished', 'agent-1', '{\"status\": \"done\"}', '2026-02-08 11:00:00')",
        [],
    )
    .unwrap();
    let (code, out, err) = rewind(&data, &["state", source, "agent-1", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("made again"), "{err}");
    let after: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        after["version"],
        json!(before["version"].as_u64().unwrap() + 1)
    );
    assert_eq!(after["state"]["status"], "done");
    // A row already read changes: the mirror is made again, saying so, and shows the change.
    conn.execute(
        "UPDATE agent_events SET data = '{\"status\": \"cancelled\"}' WHERE seq = 1000",
        [],
    )
    .unwrap();
    let (code, out, err) = rewind(&data, &["state", source, "agent-1", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("made again"), "{err}");
    let changed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(changed["state"]["status"], "cancelled");
    // Rows removed below the newest: made again without them.
    conn.execute("DELETE FROM agent_events WHERE seq < 10", [])
        .unwrap();
    let (code, _, err) = rewind(&data, &["streams", source]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("rows were removed"), "{err}");
    let count: usize =
        serde_json::from_str::<Vec<Value>>(&ok(&data, &["log", source, "agent-1", "--json"]))
            .unwrap()
            .len();
    let stored: i64 = conn
        .query_row(
            "SELECT count(*) FROM agent_events WHERE agent_id = 'agent-1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count as i64, stored);
}

/// A mapping file written to `dir`, the seed's with `change` applied to its text.
fn mapping_with(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

const MAPPING: &str = r#"
[events]
query = "SELECT seq, agent_id, event_type, data, created_at FROM agent_events"
stream = "agent_id"
seq = "seq"
type = "event_type"
data = "data"
time = "created_at"
"#;

#[test]
fn mistakes_in_a_mapping_or_its_rows_name_the_file_key_column_and_row_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitor.db");
    let source = path.to_str().unwrap();
    seed_000(&path, 30, 2);
    let bytes = std::fs::read(&path).unwrap();
    let attached = dir.path().join("other.db");
    let cases: Vec<(&str, String, Vec<&str>)> =
        vec![
        (
            "unknown key",
            MAPPING.replace("stream =", "strem ="),
            vec!["bad.toml", "strem"],
        ),
        (
            "missing column",
            MAPPING.replace("stream = \"agent_id\"", "stream = \"agent\""),
            vec!["bad.toml", "events.stream", "\"agent\"", "\"agent_id\""],
        ),
        (
            "missing table",
            MAPPING.replace("FROM agent_events", "FROM agent_event"),
            vec!["bad.toml", "events.query", "no such table: agent_event"],
        ),
        (
            "a query that writes",
            MAPPING.replace(
                "SELECT seq, agent_id, event_type, data, created_at FROM agent_events",
                "DELETE FROM agent_events RETURNING seq, agent_id, event_type, data, created_at",
            ),
            vec!["bad.toml", "events.query", "only reads"],
        ),
        (
            "a query that attaches another database",
            MAPPING.replace(
                "SELECT seq, agent_id, event_type, data, created_at FROM agent_events",
                &format!("ATTACH DATABASE '{}' AS other", attached.display()),
            ),
            vec!["bad.toml", "events.query", "attaches"],
        ),
        (
            "two statements",
            MAPPING.replace("FROM agent_events\"", "FROM agent_events; DROP TABLE agent_events\""),
            vec!["bad.toml", "events.query", "more than one statement"],
        ),
        (
            "data of the wrong encoding",
            MAPPING.replace("data = \"data\"", "data = \"data\"\ndata_encoding = \"gzip+base64\""),
            vec!["bad.toml", "row 1 (seq 1)", "events.data", "\"data\"", "base64"],
        ),
        (
            "an epoch time without its unit",
            MAPPING.replace("created_at FROM", "seq * 1000 AS created_at FROM"),
            vec!["bad.toml", "events.time", "epoch-ms"],
        ),
        (
            "a seq that is not positive",
            MAPPING.replace("SELECT seq,", "SELECT seq - 5 AS seq,"),
            vec!["bad.toml", "row 1 (seq -4)", "events.seq", "not a positive number"],
        ),
        (
            "versions out of order",
            MAPPING.replace("seq = \"seq\"", "seq = \"seq\"\nversion = \"seq\""),
            vec!["bad.toml", "events.version", "version 2 comes after version 0"],
        ),
    ];
    for (what, text, expected) in cases {
        let data = dir.path().join(format!("data-{}", what.replace(' ', "-")));
        let map = mapping_with(dir.path(), "bad.toml", &text);
        let (code, _, err) = rewind(&data, &["streams", source, "--map", &map]);
        assert_eq!(code, 2, "{what}: {err}");
        for needle in expected {
            assert!(err.contains(needle), "{what}: {needle:?} not in {err}");
        }
        // No mirror is left behind, and the source is as it was.
        let mirrors = data.join("mirrors");
        let left = std::fs::read_dir(&mirrors).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "rewind")
            })
            .count()
        });
        assert_eq!(left, 0, "{what}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{what}");
        assert!(!attached.exists(), "{what}: no other file is made");
    }
    // A query may end as SQL does: a `;`, a comment; a `;` inside a string is its own.
    let ended = r#"
[events]
query = """
SELECT seq, agent_id, event_type, data, created_at FROM agent_events
WHERE data <> ';' ; -- every event
"""
stream = "agent_id"
seq = "seq"
type = "event_type"
data = "data"
time = "created_at"
"#;
    let map = mapping_with(dir.path(), "ended.toml", ended);
    let out = ok(
        &dir.path().join("data-ended"),
        &["streams", source, "--map", &map, "--json"],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn rewind_map_guesses_a_mapping_that_reads_the_monitor_as_its_shipped_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitor.db");
    let source = path.to_str().unwrap();
    seed_000(&path, 120, 4);
    let before = folder(dir.path());
    let guessed = ok(&dir.path().join("data-guess"), &["map", source]);
    assert_eq!(folder(dir.path()), before, "rewind map only reads");
    assert!(guessed.contains("FROM \"agent_events\""), "{guessed}");
    assert!(guessed.contains("# version"), "{guessed}");
    let map = mapping_with(dir.path(), "guessed.toml", &guessed);
    for agent in (0..4).map(|a| format!("agent-{a}")) {
        let state = |data: &str, map: &str| -> Value {
            let out = ok(
                &dir.path().join(data),
                &["state", source, &agent, "--map", map, "--json"],
            );
            let mut v: Value = serde_json::from_str(&out).unwrap();
            v.as_object_mut().unwrap().remove("provenance");
            v
        };
        assert_eq!(
            state("data-guess", &map),
            state("data-seed", "seed-000"),
            "{agent}"
        );
    }
    // What is not SQLite is refused, saying so.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let (code, _, err) = rewind(
        &dir.path().join("data-guess"),
        &["map", text.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(err.contains("not an SQLite database"), "{err}");
}

#[test]
fn a_live_table_and_its_archive_read_as_one_history_and_the_archive_job_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("logs.db");
    let source = path.to_str().unwrap();
    let rows = seed_000(&path, 90, 3);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE agent_events_archive AS SELECT * FROM agent_events WHERE 0;")
        .unwrap();
    let map = mapping_with(
        dir.path(),
        "union.toml",
        r#"
[events]
query = """
SELECT seq, agent_id, event_type, data, created_at FROM agent_events
UNION ALL
SELECT seq, agent_id, event_type, data, created_at FROM agent_events_archive
"""
stream = "agent_id"
seq = "seq"
type = "event_type"
data = "data"
time = "created_at"
"#,
    );
    let log = |agent: &str| -> Vec<Value> {
        serde_json::from_str(&ok(&data, &["log", source, agent, "--map", &map, "--json"])).unwrap()
    };
    let before: Vec<Vec<Value>> = (0..3).map(|a| log(&format!("agent-{a}"))).collect();
    // The archive job moves the oldest rows, then the monitor goes on.
    conn.execute_batch(
        "BEGIN;
         INSERT INTO agent_events_archive SELECT * FROM agent_events WHERE seq <= 60;
         DELETE FROM agent_events WHERE seq <= 60;
         COMMIT;",
    )
    .unwrap();
    let (code, _, err) = rewind(&data, &["streams", source]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !err.contains("made again"),
        "moving rows is not a rewrite: {err}"
    );
    conn.execute(
        "INSERT INTO agent_events (seq, event_type, agent_id, data, created_at)
         VALUES (500, 'Finished', 'agent-2', '{\"status\": \"done\"}', '2026-02-09 00:00:00')",
        [],
    )
    .unwrap();
    for a in 0..3 {
        let agent = format!("agent-{a}");
        let now = log(&agent);
        let mine = rows.iter().filter(|r| r.1 == agent).count() + usize::from(a == 2);
        assert_eq!(now.len(), mine, "{agent}: each row once");
        assert_eq!(now[..before[a].len()], before[a][..], "{agent}");
    }
}

#[test]
fn a_row_stamped_before_the_one_before_it_keeps_its_place_and_its_own_time_in_its_meta() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("monitor.db");
    let source = path.to_str().unwrap();
    let rows = seed_000(&path, 40, 2);
    // Another writer's clock, a minute behind, stamped agent-1's third event.
    let agent = "agent-1";
    let third = rows.iter().filter(|r| r.1 == agent).nth(2).unwrap().0;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE agent_events SET created_at = datetime(created_at, '-60 seconds') WHERE seq = ?1",
        [third],
    )
    .unwrap();
    let own: String = conn
        .query_row(
            "SELECT created_at FROM agent_events WHERE seq = ?1",
            [third],
            |r| r.get(0),
        )
        .unwrap();
    let log: Vec<Value> = serde_json::from_str(&ok(
        &data,
        &["log", source, agent, "--map", "seed-000", "--json"],
    ))
    .unwrap();
    assert_eq!(log.len(), rows.iter().filter(|r| r.1 == agent).count());
    assert_eq!(log[2]["seq"], json!(third));
    assert_eq!(log[2]["time"], log[1]["time"], "held at the time before it");
    assert_eq!(
        log[2]["meta"]["time"],
        json!(format!("{}Z", own.replace(' ', "T"))),
        "its own time kept"
    );
    assert!(log[3]["meta"].get("time").is_none());
}

#[test]
fn a_mapping_file_for_a_file_that_is_not_sqlite_is_refused_before_it_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, "{\"type\": \"Started\", \"stream\": \"a\"}\n").unwrap();
    let source = events.to_str().unwrap();
    let (code, _, err) = rewind(&data, &["streams", source, "--map", "seed-000"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("is neither") && err.contains("--map stream="),
        "{err}"
    );
    // Not kept: the file still reads as JSON events.
    let streams: Value = serde_json::from_str(&ok(&data, &["streams", source, "--json"])).unwrap();
    assert_eq!(streams[0]["name"], "a");
}

#[test]
fn a_bad_row_far_into_a_long_table_is_named_and_nothing_is_kept() {
    // The rows are decoded on a second thread, hundreds ahead of the writes: the error is
    // still the first bad row's, and the rows written before it are rolled back.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitor.db");
    let source = path.to_str().unwrap();
    let events = seed_000(&path, 3_000, 3);
    let (bad, _, _) = events[2_400];
    let (later, _, _) = events[2_700];
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE agent_events SET data = '{\"status\": ' WHERE seq IN (?1, ?2)",
        [bad, later],
    )
    .unwrap();
    drop(conn);
    let data = dir.path().join("data");
    let (code, _, err) = rewind(&data, &["streams", source, "--map", "seed-000"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "row 2401 (seq {bad}): events.data (\"data\"): not JSON"
        )),
        "{err}"
    );
    let mirrors: Vec<_> = std::fs::read_dir(data.join("mirrors"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(
        mirrors
            .iter()
            .all(|p| p.extension().is_none_or(|x| x != "rewind")),
        "{mirrors:?}"
    );
    // Mended, it opens with every row.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE agent_events SET data = '{}' WHERE seq IN (?1, ?2)",
        [bad, later],
    )
    .unwrap();
    drop(conn);
    let out = ok(&data, &["streams", source, "--map", "seed-000", "--json"]);
    let listed: Value = serde_json::from_str(&out).unwrap();
    let total: u64 = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["head"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 3_000);
}

#[test]
fn a_mappings_title_names_each_event_in_the_log_and_the_debugger_without_making_the_mirror_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitor.db");
    let source = path.to_str().unwrap();
    let rows = seed_000(&path, 12, 2);
    let data = dir.path().join("data");
    let plain = mapping_with(dir.path(), "plain.toml", MAPPING);
    let first = ok(&data, &["log", source, "--map", &plain]);
    assert!(!first.contains("title"), "{first}");
    // A title program: what it gives follows the type; one that fails says so on its row.
    let titled = format!(
        "{MAPPING}\n[display]\ntitle = '''if .data.tool then \"calls \" + .data.tool.name \
         elif .data.tokens then .data.tokens else .data.status end'''\n"
    );
    let map = mapping_with(dir.path(), "titled.toml", &titled);
    let (_, _, err) = rewind(&data, &["log", source, "--map", &map]);
    assert!(!err.contains("made again"), "{err}");
    let lines: Vec<Value> =
        serde_json::from_str(&ok(&data, &["log", source, "--map", &map, "--json"])).unwrap();
    assert_eq!(lines.len(), rows.len());
    for line in &lines {
        let seq = line["meta"]["seq"].as_i64().unwrap();
        let (_, _, data) = rows.iter().find(|(s, _, _)| *s == seq).unwrap();
        let expected = if let Some(name) = data["tool"]["name"].as_str() {
            format!("calls {name}")
        } else if let Some(tokens) = data["tokens"].as_u64().filter(|t| *t > 0) {
            tokens.to_string()
        } else {
            data["status"].as_str().unwrap_or_default().to_owned()
        };
        assert_eq!(line["title"], json!(expected), "{line}");
    }
    let table = ok(&data, &["log", source, "--map", &map]);
    assert!(table.lines().next().unwrap().contains("title"), "{table}");
    assert!(table.contains("calls tool-1"), "{table}");
    // The debugger shows the same titles on the event rows.
    let frame = ok(
        &data,
        &[
            "render", source, "--map", &map, "--stream", "agent-1", "--size", "160x40",
        ],
    );
    let agent_1: Vec<&Value> = lines
        .iter()
        .filter(|l| l["stream"] == json!("agent-1"))
        .collect();
    assert!(!agent_1.is_empty());
    for line in agent_1 {
        let title = line["title"].as_str().unwrap();
        let kind = line["type"].as_str().unwrap();
        assert!(
            frame.lines().any(|row| row
                .split_once(&format!(" {kind} "))
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(title))),
            "{title:?} not in\n{frame}"
        );
    }
    // A title that does not compile is refused, naming its key.
    let broken = mapping_with(
        dir.path(),
        "broken.toml",
        &format!("{MAPPING}\n[display]\ntitle = '.data | ('\n"),
    );
    let (code, _, err) = rewind(&data, &["log", source, "--map", &broken]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("broken.toml") && err.contains("display.title"),
        "{err}"
    );
    // A title that fails on an event says why on that event's row only.
    let failing = mapping_with(
        dir.path(),
        "failing.toml",
        &format!("{MAPPING}\n[display]\ntitle = '.data.status | ascii_downcase'\n"),
    );
    let lines: Vec<Value> =
        serde_json::from_str(&ok(&data, &["log", source, "--map", &failing, "--json"])).unwrap();
    for line in &lines {
        let title = line["title"].as_str().unwrap();
        match line["data"]["status"].as_str() {
            Some(status) => assert_eq!(title, status),
            None => assert!(title.starts_with("⚠ title:"), "{line}"),
        }
    }
    // A runaway title is stopped within a title's budget, far below a reducer's.
    let runaway = mapping_with(
        dir.path(),
        "runaway.toml",
        &format!(
            "{MAPPING}
[display]
title = 'last(range(1e12))'
"
        ),
    );
    let lines: Vec<Value> =
        serde_json::from_str(&ok(&data, &["log", source, "--map", &runaway, "--json"])).unwrap();
    assert_eq!(lines.len(), rows.len());
    for line in &lines {
        let title = line["title"].as_str().unwrap();
        assert!(
            title.starts_with("⚠ title:") && title.contains("10,000"),
            "{line}"
        );
    }
}
