//! Other programs' histories, read from files the real programs (or their own libraries)
//! made: `tests/fixtures/sources/`, with the scripts that made them and the answers those
//! programs gave, which rewind must give too.

use std::borrow::Cow;
use std::path::PathBuf;

use rewind::reduce::{EventRef, Reducer};
use serde_json::Value;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sources")
        .join(path)
}

fn json(path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(path)).unwrap()).unwrap()
}

#[test]
fn temporal_histories_fold_to_the_execution_state_after_every_event() {
    let reducer = Reducer::parse("temporal").unwrap();
    for name in ["order", "failed", "running"] {
        let bytes = std::fs::read(fixture(&format!("temporal/{name}.json"))).unwrap();
        let history = rewind::source::temporal::parse(&bytes).unwrap();
        let expected = json(&format!("temporal/{name}.expected.json"));
        let expected = expected["states"].as_array().unwrap();
        assert_eq!(history.events.len(), expected.len(), "{name}");
        assert_eq!(
            history.workflow_id.as_deref(),
            Some(
                json(&format!("temporal/{name}.expected.json"))["workflow_id"]
                    .as_str()
                    .unwrap()
            )
        );
        let mut state = serde_json::json!({});
        for (version, (event, want)) in history.events.iter().zip(expected).enumerate() {
            assert_eq!(Some(event.id), want["eventId"].as_u64(), "{name}");
            reducer
                .apply(
                    &mut state,
                    EventRef {
                        stream: name,
                        kind: &event.kind,
                        version: version as u64 + 1,
                        ts: event.time,
                        data: Cow::Borrowed(&event.data),
                        meta: Some(&event.meta),
                    },
                )
                .unwrap();
            assert_eq!(
                state, want["state"],
                "{name}: the state after event {} ({})",
                event.id, event.kind
            );
        }
    }
}

/// A fixture database opened without writing anything beside it (the files are checkpointed).
fn sqlite(path: &str) -> rusqlite::Connection {
    use rusqlite::OpenFlags;
    let uri = format!("file:{}?immutable=1", fixture(path).display());
    rusqlite::Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap()
}

/// The fixtures write bytes as `{"$bytes_hex": …}`; rewind shows them as base64 text.
pub(crate) fn bytes_as_base64(value: &mut Value) {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("$bytes_hex") => {
            let hex = map["$bytes_hex"].as_str().unwrap();
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            use base64::Engine as _;
            *value = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        Value::Object(map) => map.values_mut().for_each(bytes_as_base64),
        Value::Array(items) => items.iter_mut().for_each(bytes_as_base64),
        _ => {}
    }
}

/// Whether LangGraph keeps a channel to itself: `__start__`, `branch:…`, `join:…`.
fn internal(channel: &str) -> bool {
    channel.starts_with("__") || channel.starts_with("branch:") || channel.starts_with("join:")
}

/// The channels a user sees.
pub(crate) fn public(channels: &Value) -> serde_json::Map<String, Value> {
    channels
        .as_object()
        .unwrap()
        .iter()
        .filter(|(channel, _)| !internal(channel))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn langgraph_checkpoints_and_writes_decode_to_what_langgraph_returns() {
    use rewind::source::msgpack::decode_typed;
    for name in ["agent", "delta", "encodings"] {
        let db = sqlite(&format!("langgraph/{name}.sqlite"));
        let mut expected = json(&format!("langgraph/{name}.expected.json"));
        bytes_as_base64(&mut expected);
        let (mut checkpoints, mut writes, mut unreadable) = (0, 0, 0);
        for (thread, namespaces) in expected["threads"].as_object().unwrap() {
            for (ns, list) in namespaces.as_object().unwrap() {
                for want in list.as_array().unwrap() {
                    let id = want["checkpoint_id"].as_str().unwrap();
                    let (kind, blob): (String, Vec<u8>) = db
                        .query_row(
                            "SELECT type, checkpoint FROM checkpoints
                             WHERE thread_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id = ?3",
                            (thread, ns, id),
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .unwrap();
                    let decoded = decode_typed(&kind, &blob);
                    if want["readable_without_python"] == false || kind.contains('+') {
                        assert!(decoded.is_err(), "{name} {thread} {id}: {kind} read");
                        unreadable += 1;
                        continue;
                    }
                    let decoded = decoded.unwrap();
                    assert_eq!(
                        public(&decoded["channel_values"]),
                        public(&want["values"]),
                        "{name} thread {thread:?} checkpoint {id}"
                    );
                    checkpoints += 1;
                    for write in want["pending_writes"].as_array().unwrap() {
                        let (kind, blob): (String, Vec<u8>) = db
                            .query_row(
                                "SELECT type, value FROM writes
                                 WHERE thread_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id = ?3
                                   AND task_id = ?4 AND idx = ?5",
                                (
                                    thread,
                                    ns,
                                    id,
                                    write["task_id"].as_str().unwrap(),
                                    write["idx"].as_i64().unwrap(),
                                ),
                                |r| {
                                    Ok((
                                        r.get(0)?,
                                        r.get::<_, Option<Vec<u8>>>(1)?.unwrap_or_default(),
                                    ))
                                },
                            )
                            .unwrap();
                        match decode_typed(&kind, &blob) {
                            Ok(value) => assert_eq!(
                                value, write["value"],
                                "{name} {thread} {id} write {} {}",
                                write["channel"], write["idx"]
                            ),
                            Err(_) => assert_eq!(write["readable_without_python"], false),
                        }
                        writes += 1;
                    }
                }
            }
        }
        eprintln!(
            "{name}: {checkpoints} checkpoints and {writes} writes equal, {unreadable} unreadable"
        );
        assert!(
            checkpoints > 0 && (name != "encodings" || unreadable > 0),
            "{name}"
        );
    }
}

#[test]
fn eventsourcing_states_and_snapshots_decode_to_what_the_library_returns() {
    use rewind::source::eventsourcing::{decode_state, snapshot_attributes};
    let db = sqlite("eventsourcing/bank.sqlite");
    let expected = json("eventsourcing/bank.expected.json");
    let mut events = db
        .prepare("SELECT rowid, originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid")
        .unwrap();
    let rows: Vec<(i64, String, i64, String, Vec<u8>)> = events
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want = expected["stored_events"].as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    for ((rowid, id, version, topic, state), want) in rows.iter().zip(want) {
        assert_eq!(want["rowid"], *rowid);
        assert_eq!(want["originator_id_stored"], *id);
        assert_eq!(want["originator_version"], *version);
        assert_eq!(want["topic"], *topic);
        assert_eq!(
            decode_state(state).unwrap(),
            want["state_decoded"],
            "row {rowid}"
        );
    }
    let mut snapshots = db
        .prepare("SELECT originator_id, originator_version, state FROM stored_snapshots")
        .unwrap();
    let snapshots: Vec<(String, i64, Vec<u8>)> = snapshots
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(snapshots.len(), 9);
    for (id, version, state) in snapshots {
        let dashed = format!(
            "{}-{}-{}-{}-{}",
            &id[..8],
            &id[8..12],
            &id[12..16],
            &id[16..20],
            &id[20..]
        );
        let attributes = snapshot_attributes(&decode_state(&state).unwrap());
        assert_eq!(
            attributes,
            expected["aggregates"][&dashed]["versions"][version.to_string()]["attributes"],
            "the snapshot of {dashed} at v{version}"
        );
    }
}

/// Every file in a folder with its bytes: what "nothing written, nothing made" compares.
fn folder(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn checkpoint_ids(conn: &rusqlite::Connection) -> Vec<String> {
    let mut statement = conn
        .prepare("SELECT checkpoint_id FROM checkpoints ORDER BY checkpoint_id")
        .unwrap();
    statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn the_newest_checkpoints_in_a_log_without_its_shared_memory_file_are_read_from_a_copy() {
    use rewind::source::sqlite::{Kind, kind, open};
    let dir = tempfile::tempdir().unwrap();
    for name in ["wal.sqlite", "wal.sqlite-wal"] {
        std::fs::copy(fixture(&format!("langgraph/{name}")), dir.path().join(name)).unwrap();
    }
    let before = folder(dir.path());
    let source = open(&dir.path().join("wal.sqlite")).unwrap();
    assert!(source.note.as_deref().unwrap().contains("reading a copy"));
    assert_eq!(kind(&source.conn).unwrap(), Some(Kind::LangGraph));
    let expected = json("langgraph/wal.expected.json");
    assert_eq!(
        serde_json::json!(checkpoint_ids(&source.conn)),
        expected["wal"]["checkpoint_ids_with_wal"],
        "the 5 checkpoints only in the log are read"
    );
    drop(source);
    assert_eq!(
        folder(dir.path()),
        before,
        "the source's folder is as it was"
    );
}

#[test]
fn a_source_is_read_while_its_owner_writes_and_nothing_is_made_beside_it() {
    use rewind::source::sqlite::{Kind, kind, open};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sqlite");
    std::fs::copy(fixture("langgraph/agent.sqlite"), &path).unwrap();
    // Checkpointed, no log: read immutable, nothing made.
    let before = folder(dir.path());
    let source = open(&path).unwrap();
    assert_eq!(source.note, None);
    assert_eq!(kind(&source.conn).unwrap(), Some(Kind::LangGraph));
    let count = checkpoint_ids(&source.conn).len();
    drop(source);
    assert_eq!(folder(dir.path()), before);
    // The owner opens it and writes: its log and shared memory are there, and a new
    // checkpoint sits in the log only.
    let owner = rusqlite::Connection::open(&path).unwrap();
    owner
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
             INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, type, checkpoint, metadata)
             VALUES ('live', '', 'ffff-new', 'msgpack', x'80', x'7b7d');",
        )
        .unwrap();
    let during = folder(dir.path());
    let source = open(&path).unwrap();
    assert_eq!(source.note, None, "read in place, beside its writer");
    assert_eq!(checkpoint_ids(&source.conn).len(), count + 1);
    // The owner goes on writing while rewind holds the file open.
    owner
        .execute(
            "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, type, checkpoint, metadata)
             VALUES ('live', '', 'ffff-newer', 'msgpack', x'80', x'7b7d')",
            [],
        )
        .unwrap();
    assert_eq!(checkpoint_ids(&source.conn).len(), count + 2);
    drop(source);
    let names =
        |m: &std::collections::BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&folder(dir.path())),
        names(&during),
        "no file made beside it"
    );
    drop(owner);
}

#[test]
fn files_are_told_apart_by_their_tables() {
    use rewind::source::sqlite::{Kind, kind, looked_for, open};
    let source = open(&fixture("eventsourcing/bank.sqlite")).unwrap();
    assert_eq!(kind(&source.conn).unwrap(), Some(Kind::EventSourcing));
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
        .unwrap();
    assert_eq!(kind(&open(&other).unwrap().conn).unwrap(), None);
    assert!(looked_for().contains("langgraph: a table checkpoints(thread_id"));
    let own = dir.path().join("own.db");
    rewind::Store::open(&own, rewind::OpenMode::Create).unwrap();
    assert_eq!(kind(&open(&own).unwrap().conn).unwrap(), Some(Kind::Rewind));
    let not_sqlite = dir.path().join("notes.txt");
    std::fs::write(&not_sqlite, "hello, this is text").unwrap();
    let err = open(&not_sqlite).err().unwrap();
    assert!(err.contains("not an SQLite database"), "{err}");
}

#[test]
fn a_langgraph_file_reads_as_branches_with_forks_subgraphs_and_unfinished_runs() {
    use rewind::source::langgraph::read;
    let source = rewind::source::sqlite::open(&fixture("langgraph/agent.sqlite")).unwrap();
    let branches = read(&source.conn).unwrap();
    let expected = json("langgraph/agent.expected.json");
    let by_name = |name: &str| branches.iter().find(|b| b.stream == name).unwrap();
    // Every checkpoint is in exactly one branch, and a branch's first checkpoint continues
    // the version it forks from.
    assert_eq!(
        branches.iter().map(|b| b.checkpoints.len()).sum::<usize>(),
        46
    );
    // The fork: update_state on the step-2 checkpoint, then continued. The line with the
    // newest checkpoint keeps the thread's name; the other forks from it.
    let forks: Vec<_> = branches
        .iter()
        .filter(|b| b.stream.starts_with("fork"))
        .collect();
    assert_eq!(
        forks.len(),
        2,
        "{:?}",
        forks.iter().map(|b| &b.stream).collect::<Vec<_>>()
    );
    let main = by_name("fork");
    let list = expected["threads"]["fork"][""].as_array().unwrap();
    let newest = list
        .iter()
        .map(|c| c["checkpoint_id"].as_str().unwrap())
        .max()
        .unwrap();
    assert_eq!(main.checkpoints.last().unwrap().id, newest);
    assert_eq!(main.fork, None);
    let other = forks.iter().find(|b| b.stream != "fork").unwrap();
    let (parent, version) = other.fork.clone().unwrap();
    assert_eq!(parent, "fork");
    let fork_point = &main.checkpoints[version as usize - 1];
    assert_eq!(
        other.checkpoints[0].parent.as_deref(),
        Some(fork_point.id.as_str())
    );
    assert_eq!(other.stream, format!("fork~{}", other.checkpoints[0].id));
    // Unfinished: the crash and the unanswered interrupt; the resumed one finished.
    assert!(by_name("crash").unfinished);
    assert!(by_name("interrupt-open").unfinished);
    assert!(!by_name("interrupt-resumed").unfinished);
    assert!(!by_name("basic").unfinished);
    let crash = by_name("crash").checkpoints.last().unwrap();
    assert!(
        crash
            .writes
            .iter()
            .any(|w| w.channel == "__error__" && w.node == "fetch_b")
    );
    assert!(
        crash
            .writes
            .iter()
            .any(|w| w.node == "fetch_a" && w.channel == "messages")
    );
    // The subgraph's namespace is a stream of its own.
    let sub: Vec<_> = branches
        .iter()
        .filter(|b| b.stream.starts_with("subgraph/research:"))
        .collect();
    assert_eq!(sub.len(), 1);
    assert_eq!(sub[0].checkpoints.len(), 4);
    // Times follow ids, and each state is LangGraph's.
    for branch in &branches {
        assert!(
            branch
                .checkpoints
                .windows(2)
                .all(|w| w[0].time <= w[1].time && w[0].id < w[1].id)
        );
        for c in &branch.checkpoints {
            assert!(c.state.is_ok(), "{} {}", branch.stream, c.id);
            assert!(c.metadata.get("step").is_some());
        }
    }
    // The first checkpoint's time is the one its id holds (2026-12-02, when it was made).
    let first = &by_name("basic").checkpoints[0];
    assert!(
        rewind::time::format(first.time).starts_with("2026-12-0"),
        "{}",
        rewind::time::format(first.time)
    );
}

/// Every branch's checkpoints as the mirror reads them when it makes a mirror (a thread of
/// one line in one pass over each table), next to each looked up alone.
fn branch_reads(
    conn: &rusqlite::Connection,
) -> Vec<(
    rewind::source::langgraph::Checkpoint,
    rewind::source::langgraph::Checkpoint,
)> {
    use rewind::source::langgraph::{outline, raw_checkpoint, read_branch};
    let branches = outline(conn).unwrap();
    let mut pairs = Vec::new();
    let whole = rewind::source::langgraph::whole_threads(&branches);
    for (branch, &alone) in branches.iter().zip(&whole) {
        let mut read = Vec::new();
        read_branch(
            conn,
            branch,
            alone,
            |e| e,
            |raw| {
                read.push(raw.decode()?.2);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(read.len(), branch.checkpoints.len());
        for (got, outlined) in read.into_iter().zip(&branch.checkpoints) {
            let looked_up = raw_checkpoint(conn, &branch.thread, &branch.ns, &outlined.id)
                .and_then(|raw| raw.decode())
                .unwrap()
                .2;
            pairs.push((got, looked_up));
        }
    }
    pairs
}

#[test]
fn a_thread_read_in_one_pass_gives_what_each_checkpoint_looked_up_alone_gives() {
    // The real files: forks, subgraphs, unfinished runs, every encoding.
    for file in ["agent", "delta", "encodings", "peers50"] {
        let source =
            rewind::source::sqlite::open(&fixture(&format!("langgraph/{file}.sqlite"))).unwrap();
        let pairs = branch_reads(&source.conn);
        assert!(pairs.len() >= 10, "{file}");
        for (got, want) in pairs {
            assert_eq!(got, want, "{file}");
        }
    }
    // Rows no LangGraph writes, in a file whose tables check nothing: writes under no
    // checkpoint (before, between and after), writes whose task or place is not text or a
    // number (SQL sorts them otherwise than text), writes under checkpoint ids that are not
    // text.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE checkpoints (thread_id TEXT, checkpoint_ns TEXT, checkpoint_id TEXT,
           parent_checkpoint_id TEXT, type TEXT, checkpoint BLOB, metadata BLOB,
           PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id));
         CREATE TABLE writes (thread_id TEXT, checkpoint_ns TEXT, checkpoint_id TEXT, task_id TEXT,
           task_path TEXT, idx INTEGER, channel TEXT, type TEXT, value BLOB,
           PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx));",
    )
    .unwrap();
    let id = |n: u32| format!("1f0d{n:04x}-0000-6000-8000-000000000000");
    let state = |n: u32| {
        // msgpack {"channel_values": {"n": n}}
        let mut b = vec![0x81, 0xae];
        b.extend_from_slice(b"channel_values");
        b.extend_from_slice(&[0x81, 0xa1, b'n', 0xce]);
        b.extend_from_slice(&n.to_be_bytes());
        b
    };
    for n in 0..6_u32 {
        let parent = (n > 0).then(|| id(n - 1));
        conn.execute(
            "INSERT INTO checkpoints VALUES ('t', '', ?1, ?2, 'msgpack', ?3, '{\"step\": 1}')",
            rusqlite::params![id(n), parent, state(n)],
        )
        .unwrap();
    }
    let write = |under: rusqlite::types::Value,
                 task: rusqlite::types::Value,
                 path: &str,
                 idx: rusqlite::types::Value,
                 value: u8| {
        conn.execute(
            "INSERT INTO writes VALUES ('t', '', ?1, ?2, ?3, ?4, 'c', 'msgpack', ?5)",
            rusqlite::params![under, task, path, idx, vec![value]],
        )
        .unwrap();
    };
    use rusqlite::types::Value as Sql;
    let text = |s: &str| Sql::Text(s.to_owned());
    write(text("1f0c"), text("a"), "~x, n", Sql::Integer(0), 1);
    write(text(&id(1)), text("b"), "~x, n", Sql::Integer(1), 2);
    write(text(&id(1)), text("b"), "~x, m", Sql::Integer(0), 3);
    write(text(&id(1)), text("a"), "~x, n", Sql::Integer(0), 4);
    write(
        text(&format!("{}0", id(1))),
        text("a"),
        "",
        Sql::Integer(0),
        5,
    );
    write(text(&id(2)), Sql::Integer(7), "~x, n", Sql::Integer(0), 6);
    write(text(&id(2)), text("a"), "~x, n", Sql::Integer(0), 7);
    write(text(&id(3)), text("a"), "~x, n", Sql::Text("one".into()), 8);
    write(text(&id(3)), text("a"), "~x, n", Sql::Integer(-1), 9);
    write(Sql::Integer(4), text("a"), "", Sql::Integer(0), 10);
    write(
        Sql::Blob(id(4).into_bytes()),
        text("a"),
        "",
        Sql::Integer(0),
        11,
    );
    write(text(&id(5)), text("a"), "~x, n", Sql::Integer(2), 12);
    write(text("1f0e"), text("a"), "", Sql::Integer(0), 13);
    let pairs = branch_reads(&conn);
    assert_eq!(pairs.len(), 6);
    let writes: Vec<usize> = pairs.iter().map(|(got, _)| got.writes.len()).collect();
    assert_eq!(writes, [0, 3, 2, 2, 0, 1]);
    for (got, want) in pairs {
        assert_eq!(got, want);
    }
}

#[test]
fn unreadable_checkpoints_are_reported_and_the_rest_of_the_thread_shows() {
    let source = rewind::source::sqlite::open(&fixture("langgraph/encodings.sqlite")).unwrap();
    let branches = rewind::source::langgraph::read(&source.conn).unwrap();
    let pickled = branches.iter().find(|b| b.stream == "pickle").unwrap();
    let errors: Vec<_> = pickled
        .checkpoints
        .iter()
        .filter_map(|c| c.state.as_ref().err())
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors[0].contains("thread \"pickle\" checkpoint ") && errors[0].contains("pickle"),
        "{}",
        errors[0]
    );
    let aes = branches.iter().find(|b| b.stream == "aes").unwrap();
    assert!(
        aes.checkpoints
            .iter()
            .all(|c| c.state.as_ref().is_err_and(|e| e.contains("encrypted")))
    );
    let bytes = branches.iter().find(|b| b.stream == "bytes").unwrap();
    assert!(bytes.checkpoints.iter().all(|c| c.state.is_ok()));
}

/// The built binary with its mirrors kept in `data`.
fn rewind_with(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .env("REWIND_DATA_DIR", data)
        .env("REWIND_CONFIG_DIR", data.join("config"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn state_json(data: &std::path::Path, source: &str, stream: &str, at: u64) -> Value {
    let out = rewind_with(
        data,
        &["state", source, stream, "--at", &at.to_string(), "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    printed.get("state").cloned().unwrap_or(printed)
}

#[test]
fn a_temporal_export_opens_through_its_mirror_which_follows_the_file_and_never_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let source_dir = dir.path().join("src");
    std::fs::create_dir(&source_dir).unwrap();
    let path = source_dir.join("order.json");
    let path_text = path.to_str().unwrap();
    let full = json("temporal/order.json");
    let expected = json("temporal/order.expected.json");
    // The run so far: the first 14 events.
    let mut partial = full.clone();
    partial["events"].as_array_mut().unwrap().truncate(14);
    std::fs::write(&path, serde_json::to_vec_pretty(&partial).unwrap()).unwrap();
    let before = folder(&source_dir);
    assert_eq!(
        state_json(&data, path_text, "order-1001", 14),
        expected["states"][13]["state"]
    );
    assert_eq!(
        folder(&source_dir),
        before,
        "the source is never written, nothing made beside it"
    );
    // The rest arrives: the mirror takes only what is new.
    std::fs::write(&path, serde_json::to_vec_pretty(&full).unwrap()).unwrap();
    for at in [14, 20, 32] {
        assert_eq!(
            state_json(&data, path_text, "order-1001", at),
            expected["states"][at as usize - 1]["state"],
            "v{at}"
        );
    }
    let mirrors: Vec<_> = std::fs::read_dir(data.join("mirrors")).unwrap().collect();
    assert_eq!(
        mirrors
            .iter()
            .filter(|m| m
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "rewind"))
            .count(),
        1
    );
    // A history rewritten under ids already mirrored is mirrored again, saying so.
    let mut rewritten = full.clone();
    rewritten["events"][31]["workflowExecutionCompletedEventAttributes"]["result"] =
        serde_json::json!({"payloads": []});
    std::fs::write(&path, serde_json::to_vec_pretty(&rewritten).unwrap()).unwrap();
    let out = rewind_with(&data, &["state", path_text, "order-1001", "--json"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("its mirror was made again"));
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state.get("state").unwrap_or(&state)["result"], Value::Null);
    // A history with a broken event says which, and where.
    let mut broken = full;
    broken["events"][4]["eventTime"] = serde_json::json!("not a time");
    std::fs::write(&path, serde_json::to_vec(&broken).unwrap()).unwrap();
    let out = rewind_with(&data, &["log", path_text, "order-1001"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("order.json: event 5 (#5 of the history)"),
        "{err}"
    );
}

#[test]
fn a_langgraph_fork_is_stored_once_and_reads_its_prefix_through_the_branch_it_forks_from() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let source = fixture("langgraph/agent.sqlite");
    let source = source.to_str().unwrap();
    let out = rewind_with(&data, &["streams", source, "--json"]);
    assert!(out.status.success());
    let streams: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fork = streams
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s.get("fork").is_some())
        .unwrap();
    let name = fork["name"].as_str().unwrap();
    let parent = fork["fork"]["parent"].as_str().unwrap();
    let version = fork["fork"]["version"].as_u64().unwrap();
    let head = fork["head"].as_u64().unwrap();
    assert_eq!((parent, version, head), ("fork", 4, 5));
    // The mirror stores the fork's own checkpoints only.
    let mirror = std::fs::read_dir(data.join("mirrors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "rewind"))
        .unwrap();
    let conn = rusqlite::Connection::open(&mirror).unwrap();
    let stored: i64 = conn
        .query_row(
            "SELECT count(*) FROM events e JOIN streams s ON s.id = e.stream_id WHERE s.name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored as u64, head - version);
    drop(conn);
    // Its log and states up to the fork are the parent's; the source's ids reach them.
    let log = |stream: &str| -> Vec<Value> {
        let out = rewind_with(&data, &["log", source, stream, "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut events: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        for e in &mut events {
            let e = e.as_object_mut().unwrap();
            e.remove("seq");
            e.remove("stream");
        }
        events
    };
    let (forked, main) = (log(name), log(parent));
    assert_eq!(forked.len() as u64, head);
    assert_eq!(forked[..version as usize], main[..version as usize]);
    assert_ne!(forked[version as usize], main[version as usize]);
    for v in 1..=version {
        assert_eq!(
            state_json(&data, source, name, v),
            state_json(&data, source, parent, v),
            "v{v}"
        );
    }
    let id = main[version as usize - 1]["meta"]["checkpoint_id"]
        .as_str()
        .unwrap();
    let out = rewind_with(&data, &["state", source, name, "--at-id", id, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(at["version"], version, "{at}");
    verify_source(&data, source);
}

/// `rewind verify SOURCE`: the mirror checked against every checkpoint the file stores.
fn verify_source(data: &std::path::Path, source: &str) -> (String, String) {
    let out = rewind_with(data, &["verify", source]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("no problems found"), "{stdout}");
    (stdout, stderr)
}

#[test]
fn a_langgraph_file_written_checkpoint_by_checkpoint_is_mirrored_incrementally_and_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let source_dir = dir.path().join("src");
    std::fs::create_dir(&source_dir).unwrap();
    let path = source_dir.join("live.sqlite");
    let path_text = path.to_str().unwrap();
    // The owner: LangGraph's tables, filled in the order LangGraph wrote the fixture's rows
    // (each checkpoint, then the writes of the tasks that start from it).
    let threads = [
        "basic",
        "crash",
        "fork",
        "interrupt-open",
        "interrupt-resumed",
        "subgraph",
    ];
    let mut owner = crate::support::LangGraphOwner::new(&path, &threads);
    assert_eq!(owner.ids.len(), 46);
    let mut rebuilt = 0;
    for i in 0..owner.ids.len() {
        owner.checkpoint();
        // Between a checkpoint and its writes, and after them, as a reader may come by.
        if i % 3 == 0 {
            let (out, err) = verify_source(&data, path_text);
            assert!(
                out.contains(&format!(
                    "{} checkpoints of the source reproduced exactly",
                    i + 1
                )) || out.contains("cannot be read"),
                "{out}"
            );
            rebuilt += usize::from(err.contains("made again"));
        }
        if owner.writes() && i % 2 == 0 {
            verify_source(&data, path_text);
        }
    }
    let (out, err) = verify_source(&data, path_text);
    assert!(
        out.contains("46 checkpoints of the source reproduced exactly"),
        "{out}"
    );
    assert_eq!(err, "");
    assert_eq!(
        rebuilt, 0,
        "rows only added never have the mirror made again"
    );
    // The same states as a mirror made from the whole file at once.
    let whole = rewind_with(
        &data,
        &[
            "export",
            fixture("langgraph/agent.sqlite").to_str().unwrap(),
        ],
    );
    let grown = rewind_with(&data, &["export", path_text]);
    let events = |out: &std::process::Output| -> Vec<Value> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|l| l.get("stream").is_some())
            .map(|mut l| {
                l.as_object_mut().unwrap().remove("seq");
                l
            })
            .collect()
    };
    let (whole, grown) = (events(&whole), events(&grown));
    assert_eq!(whole.len(), 50);
    let sorted = |mut v: Vec<Value>| {
        v.sort_by_key(|e| (e["stream"].to_string(), e["version"].as_u64()));
        v
    };
    assert_eq!(sorted(whole), sorted(grown));
    // The unfinished runs are marked, and `--at-id` speaks the source's ids.
    let streams = rewind_with(&data, &["streams", path_text, "--json"]);
    let streams: Value = serde_json::from_slice(&streams.stdout).unwrap();
    let unfinished: Vec<&str> = streams
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["unfinished"] == true)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(unfinished, ["crash", "interrupt-open"]);
    let expected = json("langgraph/agent.expected.json");
    let mut expected_basic = expected["threads"]["basic"][""].as_array().unwrap().clone();
    for want in expected_basic.iter_mut().skip(3).step_by(4) {
        bytes_as_base64(want);
        let id = want["checkpoint_id"].as_str().unwrap();
        let out = rewind_with(
            &data,
            &["state", path_text, "basic", "--at-id", id, "--json"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            Value::Object(printed["state"].as_object().unwrap().clone()),
            Value::Object(public(&want["values"])),
            "checkpoint {id}"
        );
    }
    // A pruned thread: the mirror is made again without it, saying so.
    owner
        .conn
        .execute_batch("DELETE FROM writes WHERE thread_id = 'basic'; DELETE FROM checkpoints WHERE thread_id = 'basic';")
        .unwrap();
    let (out, err) = verify_source(&data, path_text);
    assert!(
        err.contains("12 checkpoints were removed from the source"),
        "{err}"
    );
    assert!(
        out.contains("34 checkpoints of the source reproduced exactly"),
        "{out}"
    );
    let out = rewind_with(&data, &["state", path_text, "basic"]);
    assert!(!out.status.success());
}

#[test]
fn verify_names_each_checkpoint_a_damaged_langgraph_mirror_no_longer_reproduces() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let source = dir.path().join("agent.sqlite");
    std::fs::copy(fixture("langgraph/agent.sqlite"), &source).unwrap();
    let source_text = source.to_str().unwrap();
    let (out, _) = verify_source(&data, source_text);
    assert!(
        out.contains("46 checkpoints of the source reproduced exactly"),
        "{out}"
    );
    // The mirror damaged as a faulty writer would: a state changed, an event given another
    // checkpoint's id, an event the file has no checkpoint for.
    let mirror = std::fs::read_dir(data.join("mirrors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "rewind"))
        .unwrap();
    let conn = rusqlite::Connection::open(&mirror).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_append_only;
         UPDATE events SET data = replace(data, '1235.8100', '9999.0000')
           WHERE version = 3 AND stream_id = (SELECT id FROM streams WHERE name = 'basic');
         UPDATE events SET meta = replace(meta, '1f1ede3a-6f67-6188-8002-00e0db09b7a1', '1f1ede3a-6f67-6188-8002-000000000000')
           WHERE version = 4 AND stream_id = (SELECT id FROM streams WHERE name = 'basic');
         INSERT INTO events (seq, stream_id, version, type, ts, data, meta, chain)
           SELECT (SELECT max(seq) + 1 FROM events), stream_id, 4, type, ts + 1, '{}', meta, chain
           FROM events WHERE version = 3 AND stream_id = (SELECT id FROM streams WHERE name = 'interrupt-open');
         UPDATE streams SET head = 4 WHERE name = 'interrupt-open';",
    )
    .unwrap();
    drop(conn);
    let out = rewind_with(&data, &["verify", source_text]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let has = |stream: &str, version: &str, detail: &str| {
        stdout.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.first() == Some(&stream)
                && cells.get(1) == Some(&version)
                && cells.get(2) == Some(&"source")
                && l.contains(detail)
        })
    };
    assert!(
        has(
            "basic",
            "3",
            "the state after checkpoint 1f1ede3a-6f4d-6913-8001-27fcc50ffbca differs"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"~ /amount  "1235.8100" → "9999.0000""#),
        "{stdout}"
    );
    assert!(
        has(
            "basic",
            "4",
            "the event is checkpoint 1f1ede3a-6f67-6188-8002-000000000000"
        ),
        "{stdout}"
    );
    assert!(
        has("interrupt-open", "4", "past the branch's newest checkpoint"),
        "{stdout}"
    );
    // Every other checkpoint still checks out.
    assert!(
        stdout.contains("44 checkpoints of the source reproduced exactly"),
        "{stdout}"
    );
}

#[test]
fn mirrors_are_listed_with_their_sources_and_pruned_when_a_source_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let kept = dir.path().join("kept.sqlite");
    let gone = dir.path().join("gone.json");
    std::fs::copy(fixture("langgraph/agent.sqlite"), &kept).unwrap();
    std::fs::copy(fixture("temporal/order.json"), &gone).unwrap();
    for source in [&kept, &gone] {
        assert!(
            rewind_with(&data, &["streams", source.to_str().unwrap()])
                .status
                .success()
        );
    }
    let listed = |data: &std::path::Path| -> Vec<Value> {
        let out = rewind_with(data, &["mirrors", "--json"]);
        assert!(out.status.success());
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let all = listed(&data);
    assert_eq!(all.len(), 2);
    let by_format = |format: &str| all.iter().find(|m| m["format"] == format).unwrap().clone();
    assert_eq!(
        by_format("langgraph")["source"],
        kept.canonicalize().unwrap().to_str().unwrap()
    );
    assert!(by_format("temporal")["bytes"].as_u64().unwrap() > 0);
    std::fs::remove_file(&gone).unwrap();
    let out = rewind_with(&data, &["mirrors", "--prune"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 mirrors removed"));
    let left = listed(&data);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["format"], "langgraph");
    assert!(kept.exists(), "the source itself is never removed");
    let out = rewind_with(&data, &["mirrors", "--remove", kept.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(listed(&data).is_empty());
}

#[test]
fn a_file_of_no_known_format_says_what_was_looked_for_and_format_checks_what_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let json_file = dir.path().join("other.json");
    std::fs::write(&json_file, r#"{"hello": "world"}"#).unwrap();
    let out = rewind_with(&data, &["streams", json_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("of no format rewind reads"), "{err}");
    assert!(
        err.contains("langgraph: an SQLite file with LangGraph"),
        "{err}"
    );
    assert!(err.contains("temporal: JSON"), "{err}");
    let agent = fixture("langgraph/agent.sqlite");
    let out = rewind_with(
        &data,
        &["streams", agent.to_str().unwrap(), "--format", "temporal"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a temporal source (it is a langgraph file)"),
        "{err}"
    );
    let out = rewind_with(
        &data,
        &["streams", agent.to_str().unwrap(), "--format", "langgraph"],
    );
    assert!(out.status.success());
    let out = rewind_with(
        &data,
        &["state", agent.to_str().unwrap(), "basic", "--at-seq", "3"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a langgraph source has none"));
    let out = rewind_with(&data, &["sources", "--json"]);
    let formats: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = formats
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "rewind",
            "langgraph",
            "temporal",
            "eventsourcing",
            "marten",
            "redux",
            "json",
            "mapped"
        ]
    );
}

#[path = "../../benches/common/langgraph.rs"]
mod peers_file;

#[test]
fn the_benchmark_writes_langgraph_files_as_the_real_langgraph_does() {
    let dir = tempfile::tempdir().unwrap();
    let written = dir.path().join("written.sqlite");
    peers_file::write(&written, peers_file::Shape::Fields, 50);
    let real = rewind::source::sqlite::open(&fixture("langgraph/peers50.sqlite")).unwrap();
    let ours = rewind::source::sqlite::open(&written).unwrap();
    let (real, ours) = (
        rewind::source::langgraph::read(&real.conn).unwrap(),
        rewind::source::langgraph::read(&ours.conn).unwrap(),
    );
    assert_eq!((real.len(), ours.len()), (1, 1));
    assert_eq!(real[0].stream, ours[0].stream);
    let (real, ours) = (&real[0].checkpoints, &ours[0].checkpoints);
    assert_eq!(real.len(), 52);
    assert_eq!(ours.len(), real.len());
    let writes = |c: &rewind::source::langgraph::Checkpoint| -> Vec<(String, String, Value)> {
        c.writes
            .iter()
            .map(|w| (w.node.clone(), w.channel.clone(), w.value.clone().unwrap()))
            .collect()
    };
    for (i, (real, ours)) in real.iter().zip(ours).enumerate() {
        assert_eq!(ours.state, real.state, "checkpoint {i}: the state");
        assert_eq!(ours.input, real.input, "checkpoint {i}: the input");
        assert_eq!(ours.metadata, real.metadata, "checkpoint {i}: the metadata");
        assert_eq!(writes(ours), writes(real), "checkpoint {i}: the writes");
        assert_eq!(ours.parent.is_some(), real.parent.is_some());
    }
}

#[test]
fn every_format_reads_from_a_read_only_folder_and_a_langgraph_log_there_shows_its_newest_checkpoints()
 {
    if !crate::support::privileged("a read-only bind mount") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    for name in ["wal.sqlite", "wal.sqlite-wal", "agent.sqlite"] {
        std::fs::copy(fixture(&format!("langgraph/{name}")), files.join(name)).unwrap();
    }
    // Every other format too.
    for name in [
        "eventsourcing/bank.sqlite",
        "temporal/order.json",
        "redux/lifted.json",
        "redux/export.json",
    ] {
        let file = name.rsplit('/').next().unwrap();
        std::fs::copy(fixture(name), files.join(file)).unwrap();
    }
    std::fs::write(
        files.join("events.jsonl"),
        "{\"stream\":\"s\",\"type\":\"A\",\"data\":{\"n\":1}}\n{\"stream\":\"s\",\"type\":\"B\",\"data\":{\"m\":2}}\n",
    )
    .unwrap();
    let before = folder(&files);
    let mount = crate::support::Mount::read_only(&files, &dir.path().join("ro"));
    let data = dir.path().join("data");
    let expected = json("langgraph/wal.expected.json");
    let with_log = expected["wal"]["checkpoint_ids_with_wal"]
        .as_array()
        .unwrap();
    // A file whose log has no shared-memory file beside it, on a read-only medium: read from
    // a copy of both, saying so; every checkpoint of the log is there.
    let wal = mount.0.join("wal.sqlite");
    let out = rewind_with(&data, &["verify", wal.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading a copy"));
    assert!(
        stdout.contains(&format!(
            "{} checkpoints of the source reproduced exactly",
            with_log.len()
        )),
        "{stdout}"
    );
    let newest = with_log.last().unwrap().as_str().unwrap();
    let thread = rewind_with(&data, &["streams", wal.to_str().unwrap(), "--json"]);
    let streams: Value = serde_json::from_slice(&thread.stdout).unwrap();
    let stream = streams[0]["name"].as_str().unwrap().to_owned();
    let out = rewind_with(
        &data,
        &[
            "state",
            wal.to_str().unwrap(),
            &stream,
            "--at-id",
            newest,
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A checkpointed file there reads in place.
    let agent = mount.0.join("agent.sqlite");
    let out = rewind_with(&data, &["verify", agent.to_str().unwrap()]);
    assert!(out.status.success());
    // And every other format, in place.
    for (file, stream) in [
        ("bank.sqlite", "914fa10e-e5db-4ac6-8bdf-13e9513710a6"),
        ("order.json", "order-1001"),
        ("lifted.json", "lifted"),
        ("export.json", "export"),
        ("events.jsonl", "s"),
    ] {
        let source = mount.0.join(file);
        let source = source.to_str().unwrap();
        verify_source(&data, source);
        let shown = state_json(&data, source, stream, 2);
        assert!(shown.is_object(), "{file}: {shown}");
    }
    assert_eq!(
        state_json(
            &data,
            mount.0.join("events.jsonl").to_str().unwrap(),
            "s",
            2
        ),
        serde_json::json!({"n": 1, "m": 2})
    );
    drop(mount);
    assert_eq!(folder(&files), before, "nothing written, nothing made");
}

#[test]
fn a_sync_killed_midway_leaves_a_mirror_the_next_open_completes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("live.sqlite");
    let path_text = path.to_str().unwrap();
    let mut owner =
        crate::support::LangGraphOwner::new(&path, &["basic", "crash", "fork", "subgraph"]);
    owner.write(20);
    let killed = |at: u32| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(["streams", path_text])
            .env("REWIND_DATA_DIR", &data)
            .env("REWIND_CRASH_AT", format!("mirror:{at}"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "the crash point was reached");
        assert_eq!(out.status.code(), None, "killed, not an error exit");
    };
    // The first sync dies at its 7th checkpoint: nothing of it stays, and the next open makes
    // the whole mirror.
    killed(7);
    let (out, _) = verify_source(&data, path_text);
    assert!(
        out.contains("20 checkpoints of the source reproduced exactly"),
        "{out}"
    );
    // An incremental sync dies at its 3rd new checkpoint: the next open takes them all.
    owner.write(8);
    killed(3);
    let (out, err) = verify_source(&data, path_text);
    assert!(
        out.contains("28 checkpoints of the source reproduced exactly"),
        "{out}"
    );
    assert!(!err.contains("made again"), "{err}");
}

/// The README's reducer for the fixture's aggregates, as `--set` takes it.
fn bank_reducer() -> String {
    format!(
        "jq:{}",
        std::fs::read_to_string(fixture("eventsourcing/bank.jq")).unwrap()
    )
}

/// Runs the binary on a source; it must succeed. Returns stdout and stderr.
fn ok_with(data: &std::path::Path, args: &[&str]) -> (String, String) {
    let out = rewind_with(data, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "rewind {args:?}\n{stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn an_eventsourcing_file_shows_its_own_snapshots_until_the_user_sets_a_reducer_which_then_gives_every_state()
 {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let source_dir = dir.path().join("src");
    std::fs::create_dir(&source_dir).unwrap();
    let path = source_dir.join("bank.sqlite");
    std::fs::copy(fixture("eventsourcing/bank.sqlite"), &path).unwrap();
    let source = path.to_str().unwrap();
    let before = folder(&source_dir);
    let expected = json("eventsourcing/bank.expected.json");
    let (rex, bella) = (
        "f5ab1f41-07ff-4916-95ed-e9c46d2bb1f6",
        "15c46101-7219-4bdc-8bb2-ee4068046d1d",
    );
    // No reducer yet: the file's newest snapshot at or before the cursor and the events
    // since, saying so; never the method arguments merged.
    let shown = state_json(&data, source, rex, 5);
    assert!(
        shown["$no_reducer"]
            .as_str()
            .unwrap()
            .contains("no reducer is set")
    );
    assert_eq!(shown["snapshot"]["version"], 3);
    assert_eq!(
        shown["snapshot"]["state"],
        expected["aggregates"][rex]["versions"]["3"]["attributes"]
    );
    let since: Vec<&Value> = shown["events_since"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["data"]["trick"])
        .collect();
    assert_eq!(since, ["beg", "down"]);
    let out = rewind_with(&data, &["state", source, rex, "--path", "/tricks"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no reducer is set for this source"));
    let shown = state_json(&data, source, bella, 7);
    assert_eq!(shown["snapshot"], Value::Null);
    assert_eq!(shown["events_since"].as_array().unwrap().len(), 7);
    assert!(shown.get("name").is_none(), "no merge of the arguments");
    let (out, _) = ok_with(&data, &["verify", source]);
    assert!(
        out.contains("the file's 9 snapshots are not checked: no reducer is set"),
        "{out}"
    );
    // Each stream says which aggregate it is.
    let (out, _) = ok_with(&data, &["streams", source, "--json"]);
    let streams: Value = serde_json::from_str(&out).unwrap();
    let kinds: std::collections::BTreeMap<&str, &str> = streams
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds[rex], "Dog");
    assert_eq!(kinds["914fa10e-e5db-4ac6-8bdf-13e9513710a6"], "BankAccount");
    // The user's reducer, kept in their settings: every state the library gives.
    let (out, _) = ok_with(&data, &["reducer", source, "--set", &bank_reducer()]);
    assert!(out.contains("kept in"), "{out}");
    for (id, aggregate) in expected["aggregates"].as_object().unwrap() {
        for (version, at) in aggregate["versions"].as_object().unwrap() {
            assert_eq!(
                state_json(&data, source, id, version.parse().unwrap()),
                at["attributes"],
                "{id} v{version}"
            );
        }
    }
    let (out, _) = ok_with(&data, &["verify", source]);
    assert!(
        out.contains("9 of the file's 9 snapshots are the state your reducer gives"),
        "{out}"
    );
    // The source's own ids and order: rowid 7 is Ada's deposit, her second event.
    let ada = "914fa10e-e5db-4ac6-8bdf-13e9513710a6";
    for (flag, value, version) in [
        ("--at-id", "7", "2"),
        ("--at-seq", "7", "2"),
        ("--at-seq", "12", "2"),
        ("--at-seq", "6", "1"),
    ] {
        let (out, _) = ok_with(&data, &["state", source, ada, flag, value, "--json"]);
        let printed: Value = serde_json::from_slice(out.as_bytes()).unwrap();
        assert_eq!(
            printed["state"], expected["aggregates"][ada]["versions"][version]["attributes"],
            "{flag} {value}"
        );
    }
    // A reducer that forgets a field: the user's snapshots that disagree are named.
    let wrong = bank_reducer().replace("| .last_ref = $d.ref ", "");
    assert_ne!(wrong, bank_reducer());
    ok_with(&data, &["reducer", source, "--set", &wrong]);
    let out = rewind_with(&data, &["verify", source, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found: Vec<(String, u64)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["kind"], "source");
            (
                f["stream"].as_str().unwrap().to_owned(),
                f["version"].as_u64().unwrap(),
            )
        })
        .collect();
    found.sort();
    // The difference goes from the file's snapshot to the replay.
    let diff = &report["findings"][0]["diff"][0];
    assert_eq!(diff["path"], "/last_ref");
    assert!(diff["from"].is_string(), "{diff}");
    assert_eq!(diff["to"], Value::Null, "{diff}");
    assert_eq!(
        found,
        [
            ("6ec16cdc-204b-462f-bdb4-e311f3cfcbe0".into(), 5),
            (ada.into(), 5),
            (ada.into(), 10),
            ("e5422793-6c4b-43d5-b845-58a34bcd4214".into(), 5),
            ("e5422793-6c4b-43d5-b845-58a34bcd4214".into(), 10),
            ("e5422793-6c4b-43d5-b845-58a34bcd4214".into(), 15),
            ("e5422793-6c4b-43d5-b845-58a34bcd4214".into(), 20),
        ]
    );
    // The debugger's `V` finds them too.
    let (frame, _) = ok_with(
        &data,
        &["render", source, "--keys", "V", "--size", "120x30"],
    );
    assert!(frame.contains("61 events replayed: 7 findings"), "{frame}");
    // The settings outlive the mirror.
    ok_with(&data, &["reducer", source, "--set", &bank_reducer()]);
    ok_with(&data, &["mirrors", "--remove", source]);
    assert_eq!(
        state_json(&data, source, ada, 12),
        expected["aggregates"][ada]["versions"]["12"]["attributes"]
    );
    // A reducer for a whole source only, and only where the format needs one.
    let out = rewind_with(
        &data,
        &["reducer", source, "--stream", ada, "--set", "merge"],
    );
    assert_eq!(out.status.code(), Some(2));
    let langgraph = fixture("langgraph/agent.sqlite");
    let out = rewind_with(
        &data,
        &["reducer", langgraph.to_str().unwrap(), "--set", "merge"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("made by rewind's reader"));
    assert_eq!(
        folder(&source_dir),
        before,
        "the source is never written, nothing made beside it"
    );
}

/// An application writing to an eventsourcing file as the library does: the next event of an
/// aggregate, or a snapshot of it.
fn es_insert(
    owner: &rusqlite::Connection,
    table: &str,
    id: &str,
    version: i64,
    topic: &str,
    state: &[u8],
) {
    owner
        .execute(
            &format!("INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES (?1, ?2, ?3, ?4)"),
            rusqlite::params![id.replace('-', ""), version, topic, state],
        )
        .unwrap();
}

#[test]
fn an_eventsourcing_file_written_while_mirrored_shows_new_events_new_snapshots_and_unreadable_rows()
{
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("bank.sqlite");
    std::fs::copy(fixture("eventsourcing/bank.sqlite"), &path).unwrap();
    let source = path.to_str().unwrap();
    let bella = "15c46101-7219-4bdc-8bb2-ee4068046d1d";
    ok_with(&data, &["reducer", source, "--set", &bank_reducer()]);
    // The application keeps the file open, its newest commits in the log (as a live one
    // does between checkpoints of its log).
    let owner = rusqlite::Connection::open(&path).unwrap();
    owner
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;")
        .unwrap();
    assert_eq!(
        state_json(&data, source, bella, 7)["tricks"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    // The next event lands: the mirror takes it.
    es_insert(
        &owner,
        "stored_events",
        bella,
        8,
        "bank:Dog.TrickAdded",
        br#"{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-02T01:00:00+00:00"},"trick":"sing"}"#,
    );
    let log_bytes = std::fs::metadata(dir.path().join("bank.sqlite-wal"))
        .unwrap()
        .len();
    assert!(log_bytes > 0, "the new event is in the log only");
    let (out, _) = ok_with(&data, &["state", source, bella, "--json"]);
    let state: Value = serde_json::from_slice(out.as_bytes()).unwrap();
    assert_eq!(state["state"]["tricks"][6], "sing");
    // A snapshot of an event already mirrored: the mirror is made again, saying so, and
    // verify checks it.
    es_insert(
        &owner,
        "stored_snapshots",
        bella,
        8,
        "eventsourcing.domain:Snapshot",
        br#"{"topic":"bank:Dog","state":{"_id":"x","name":"Bella","tricks":["wrong"]}}"#,
    );
    let (_, err) = ok_with(&data, &["state", source, bella]);
    assert!(err.contains("its mirror was made again"), "{err}");
    let out = rewind_with(&data, &["verify", source, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"][0]["stream"], bella);
    assert_eq!(report["findings"][0]["version"], 8);
    // A row the application compressed: shown as unreadable, saying why, with the rest.
    es_insert(
        &owner,
        "stored_events",
        bella,
        9,
        "bank:Dog.TrickAdded",
        &[0x78, 0x9c, 1, 2, 3],
    );
    let (out, _) = ok_with(&data, &["log", source, bella, "--json"]);
    assert!(out.contains("zlib"), "{out}");
    let out = rewind_with(&data, &["state", source, bella, "--json"]);
    assert_eq!(out.status.code(), Some(2), "the reducer cannot apply it");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(bella) && err.contains('9'), "{err}");
    assert_eq!(state_json(&data, source, bella, 8)["tricks"][6], "sing");
}

#[test]
fn a_redux_lifted_state_shows_every_state_the_instrument_computed_skips_included() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let source_dir = dir.path().join("src");
    std::fs::create_dir(&source_dir).unwrap();
    let path = source_dir.join("lifted.json");
    std::fs::copy(fixture("redux/lifted.json"), &path).unwrap();
    let source = path.to_str().unwrap();
    let before = folder(&source_dir);
    let expected = json("redux/lifted.expected.json");
    let states = expected["states"].as_array().unwrap();
    assert_eq!(states.len(), 12);
    for (i, want) in states.iter().enumerate() {
        assert_eq!(
            state_json(&data, source, "lifted", i as u64 + 1),
            want["state"],
            "after action {i} ({})",
            want["type"]
        );
    }
    // The skipped action is marked, its state the one before; its own id names it.
    let (log, _) = ok_with(&data, &["log", source, "lifted", "--json"]);
    let log: Value = serde_json::from_str(&log).unwrap();
    let skipped: Vec<u64> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["meta"]["skipped"] == true)
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(skipped, [5], "action 4, the fifth event");
    let (out, _) = ok_with(
        &data,
        &["state", source, "lifted", "--at-id", "4", "--json"],
    );
    let at: Value = serde_json::from_slice(out.as_bytes()).unwrap();
    assert_eq!(at["state"], states[4]["state"]);
    let (out, _) = ok_with(&data, &["verify", source]);
    assert!(
        out.contains("12 states of the file reproduced exactly"),
        "{out}"
    );
    // The states are the file's: no reducer of the user's.
    let out = rewind_with(&data, &["reducer", source, "--set", "merge"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(folder(&source_dir), before, "the source is never written");
}

#[test]
fn a_redux_export_of_actions_folds_with_the_users_reducer_from_the_preloaded_state() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("session.json");
    let full = json("redux/export.json");
    let actions: Value = serde_json::from_str(full["payload"].as_str().unwrap()).unwrap();
    let expected = json("redux/export.expected.json");
    let states = expected["states"].as_array().unwrap();
    // The first seven actions, as an export written mid-session would hold.
    let write = |count: usize| {
        let mut doc = full.clone();
        let cut: Vec<&Value> = actions.as_array().unwrap().iter().take(count).collect();
        doc["payload"] = Value::String(serde_json::to_string(&cut).unwrap());
        std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    };
    write(7);
    let source = path.to_str().unwrap();
    // No reducer: the preloaded state and the actions since, saying so.
    let shown = state_json(&data, source, "session", 3);
    assert!(shown["$no_reducer"].is_string());
    assert_eq!(shown["snapshot"]["state"], states[0]["state"]);
    assert_eq!(shown["events_since"][1]["data"], states[2]["action"]);
    // The fixture's reducer, written for (state, action) as Redux calls it.
    let reducer = format!(
        "jq:{}",
        std::fs::read_to_string(fixture("redux/reducer.jq")).unwrap()
    );
    ok_with(&data, &["reducer", source, "--set", &reducer]);
    for (i, want) in states.iter().enumerate().take(8) {
        assert_eq!(
            state_json(&data, source, "session", i as u64 + 1),
            want["state"],
            "after action {i} ({})",
            want["type"]
        );
    }
    // The rest of the session exported again: the mirror takes what is new.
    write(11);
    for (i, want) in states.iter().enumerate() {
        assert_eq!(
            state_json(&data, source, "session", i as u64 + 1),
            want["state"],
            "after action {i} ({})",
            want["type"]
        );
    }
    // A file that is no export says what was looked for; a damaged one says what is wrong.
    std::fs::write(&path, br#"{"payload": "[{\"kind\": 1}]"}"#).unwrap();
    let out = rewind_with(&data, &["log", source, "session"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("session.json: action 1 of \"payload\": not an action"),
        "{err}"
    );
    let mut lifted = json("redux/lifted.json");
    lifted["computedStates"].as_array_mut().unwrap().pop();
    std::fs::write(&path, serde_json::to_vec(&lifted).unwrap()).unwrap();
    let out = rewind_with(&data, &["log", source, "session", "--format", "redux"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("12 staged actions but 11 computed states"),
        "{err}"
    );
}

#[test]
fn json_lines_of_the_users_own_events_open_by_a_mapping_kept_for_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let source_dir = dir.path().join("src");
    std::fs::create_dir(&source_dir).unwrap();
    let path = source_dir.join("orders.jsonl");
    let source = path.to_str().unwrap();
    let line = |order: &str, what: &str, ms: u64, payload: &str| {
        format!(
            r#"{{"order_id":"{order}","event":"{what}","at":{ms},"id":"e{ms}","payload":{payload}}}"#
        )
    };
    std::fs::write(
        &path,
        [
            line(
                "o1",
                "Placed",
                1_700_000_000_000,
                r#"{"items":2,"total":30}"#,
            ),
            line(
                "o2",
                "Placed",
                1_700_000_001_000,
                r#"{"items":1,"total":10}"#,
            ),
            line("o1", "Paid", 1_700_000_002_000, r#"{"paid":true}"#),
        ]
        .join("\n")
            + "\n",
    )
    .unwrap();
    // A number of unknown unit is refused, never guessed.
    let out = rewind_with(
        &data,
        &["streams", source, "--map", "stream=order_id,time=at"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "line 1: its time (\"at\"): 1700000000000 is a number, and its unit is not named"
        ),
        "{err}"
    );
    ok_with(
        &data,
        &["streams", source, "--map", "stream=order_id,time=at:ms"],
    );
    let before = folder(&source_dir);
    // Later commands need the mapping no more.
    let (out, _) = ok_with(&data, &["state", source, "o1", "--json"]);
    let o1: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        o1["state"],
        serde_json::json!({"items": 2, "total": 30, "paid": true})
    );
    assert_eq!(o1["provenance"]["version"], 2);
    let (out, _) = ok_with(&data, &["log", source, "o1", "--json"]);
    let log: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(log[1]["time"], "2023-11-14T22:13:22Z");
    // The file's order and ids.
    for (flag, value, state) in [
        (
            "--at-seq",
            "2",
            serde_json::json!({"items": 2, "total": 30}),
        ),
        (
            "--at-id",
            "e1700000002000",
            serde_json::json!({"items": 2, "total": 30, "paid": true}),
        ),
    ] {
        let (out, _) = ok_with(&data, &["state", source, "o1", flag, value, "--json"]);
        let at: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(at["state"], state, "{flag} {value}");
    }
    assert_eq!(folder(&source_dir), before, "the source is never written");
    // The program appends: the mirror takes the new lines; a line still being written waits.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    use std::io::Write as _;
    let shipped = line("o2", "Shipped", 1_700_000_003_000, r#"{"shipped":true}"#);
    let partial = r#"{"order_id":"o2","event":"Refu"#;
    write!(file, "{shipped}\n{partial}").unwrap();
    let (out, _) = ok_with(&data, &["state", source, "o2", "--json"]);
    let o2: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(o2["provenance"]["version"], 2);
    assert_eq!(o2["state"]["shipped"], true);
    // A line that is not JSON says which.
    writeln!(file, "nded\",\"at\":1700000004000}}\nnot json").unwrap();
    let out = rewind_with(&data, &["log", source, "o2"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("orders.jsonl: line 6, column 2: not JSON"),
        "{err}"
    );
}

#[test]
fn langgraph_delta_channels_fold_with_the_reducers_the_user_names_into_what_langgraph_gives() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("delta.sqlite");
    std::fs::copy(fixture("langgraph/delta.sqlite"), &path).unwrap();
    let source = path.to_str().unwrap();
    let expected = json("langgraph/delta.expected.json");
    let checkpoints = expected["threads"]["delta"][""].as_array().unwrap();
    // None named: the snapshot and the writes since, saying so.
    let shown = state_json(&data, source, "delta", 5);
    assert!(shown["log"]["$delta_channel"]["writes_since"].is_array());
    // The fixture's channels: a list appended to, a dict updated.
    ok_with(
        &data,
        &["reducer", source, "--channel", "log", "--set", "append"],
    );
    let (out, err) = ok_with(
        &data,
        &["reducer", source, "--channel", "facts", "--set", "update"],
    );
    assert!(out.contains("now folds its writes with update"), "{out}");
    assert!(err.contains("its mirror was made again"), "{err}");
    for (i, checkpoint) in checkpoints.iter().enumerate() {
        assert_eq!(
            state_json(&data, source, "delta", i as u64 + 1),
            Value::Object(public(&checkpoint["reconstructed_values"])),
            "checkpoint {i}"
        );
    }
    let (out, _) = ok_with(&data, &["verify", source]);
    assert!(
        out.contains("11 checkpoints of the source reproduced exactly"),
        "{out}"
    );
    // A fold that does not fit says so in place of a value.
    ok_with(
        &data,
        &["reducer", source, "--channel", "log", "--set", "update"],
    );
    let shown = state_json(&data, source, "delta", 5);
    assert!(
        shown["log"]["$delta_channel"]["fold_failed"]
            .as_str()
            .unwrap()
            .contains("not an object"),
        "{shown}"
    );
    let out = rewind_with(
        &data,
        &["reducer", source, "--channel", "log", "--set", "sum"],
    );
    assert_eq!(out.status.code(), Some(2));
    ok_with(&data, &["reducer", source, "--channel", "facts", "--clear"]);
    assert!(state_json(&data, source, "delta", 5)["facts"]["$delta_channel"].is_object());
}

#[test]
fn an_eventsourcing_file_made_again_with_as_many_rows_is_mirrored_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("bank.sqlite");
    std::fs::copy(fixture("eventsourcing/bank.sqlite"), &path).unwrap();
    let source = path.to_str().unwrap();
    let (before, _) = ok_with(&data, &["streams", source]);
    assert!(before.contains("914fa10e-e5db-4ac6-8bdf-13e9513710a6"));
    // The application's file deleted and made again: the same rows, other aggregates.
    let copy = dir.path().join("again.sqlite");
    std::fs::copy(&path, &copy).unwrap();
    rusqlite::Connection::open(&copy)
        .unwrap()
        .execute_batch(
            "UPDATE stored_events SET originator_id = replace(originator_id, '9', 'a');
             UPDATE stored_snapshots SET originator_id = replace(originator_id, '9', 'a');",
        )
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::rename(&copy, &path).unwrap();
    let (after, err) = ok_with(&data, &["streams", source]);
    assert!(err.contains("its mirror was made again"), "{err}");
    assert!(
        !after.contains("914fa10e-e5db-4ac6-8bdf-13e9513710a6"),
        "{after}"
    );
    assert!(
        after.contains("a14fa10e-e5db-4ac6-8bdf-13ea513710a6"),
        "{after}"
    );
}

#[test]
fn a_new_reducer_for_a_source_whose_mirror_holds_delta_snapshots_replaces_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("counts.jsonl");
    let lines: String = (1..=450)
        .map(|n| {
            format!(
                "{{\"stream\":\"c\",\"type\":\"Add\",\"data\":{{\"k{n}\":\"an entry of the log, number {n}\"}}}}\n"
            )
        })
        .collect();
    std::fs::write(&path, lines).unwrap();
    let source = path.to_str().unwrap();
    assert_eq!(
        state_json(&data, source, "c", 450)
            .as_object()
            .unwrap()
            .len(),
        450
    );
    let (out, _) = ok_with(&data, &["snapshots", source, "--json"]);
    let kinds: Value = serde_json::from_str(&out).unwrap();
    assert!(
        kinds
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == "delta"),
        "the mirror holds a delta snapshot: {kinds}"
    );
    ok_with(
        &data,
        &["reducer", source, "--set", "jq:.state + .event.data"],
    );
    let state = state_json(&data, source, "c", 450);
    assert_eq!(state.as_object().unwrap().len(), 450);
    assert_eq!(state["k7"], "an entry of the log, number 7");
    let (out, _) = ok_with(&data, &["verify", source]);
    assert!(out.contains("no problems found"), "{out}");
}

#[test]
fn an_empty_log_opens_and_fills_and_a_refused_file_leaves_no_mirror_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A program about to write its log: nothing in it yet.
    let log = dir.path().join("events.jsonl");
    std::fs::write(&log, "").unwrap();
    let source = log.to_str().unwrap();
    let (out, _) = ok_with(&data, &["streams", source, "--json"]);
    assert_eq!(out.trim(), "[]");
    std::fs::write(
        &log,
        "{\"stream\":\"s\",\"type\":\"A\",\"data\":{\"n\":1}}\n",
    )
    .unwrap();
    assert_eq!(
        state_json(&data, source, "s", 1),
        serde_json::json!({"n": 1})
    );
    // A file rewind cannot read: told what was looked for, and no mirror is left for it.
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "these are notes\n").unwrap();
    let out = rewind_with(&data, &["streams", notes.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not an SQLite file") && err.contains("it looked for"),
        "{err}"
    );
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(&broken, "{\"type\":\"A\"}\nnot json\n").unwrap();
    let out = rewind_with(&data, &["streams", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let (out, _) = ok_with(&data, &["mirrors", "--json"]);
    let mirrors: Value = serde_json::from_str(&out).unwrap();
    let sources: Vec<&str> = mirrors
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["source"].as_str().unwrap_or("(none)"))
        .collect();
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert!(sources[0].ends_with("events.jsonl"), "{sources:?}");
}
