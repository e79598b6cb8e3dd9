//! The shipped mappings of seeds 001, 002 and 004 on databases built from each seed's schema
//! translated to SQLite, with realistic rows and the edge cases their systems produce: the
//! history reads as the system wrote it, the source's own snapshots are checked and never
//! trusted, stream attributes show and filter, and nothing a frame shows depends on the clock.

use std::path::Path;

use serde_json::{Value, json};

use super::mappings::{folder, ok, rewind};

/// Seed 004's schema in SQLite (as the shipped mapping's comments give it), with the seed's
/// status triggers.
const SEED_004_SCHEMA: &str = "
CREATE TABLE tasks (task_id TEXT PRIMARY KEY, title TEXT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE work_items (
  work_item_id TEXT PRIMARY KEY,
  task_id TEXT NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
  status TEXT NOT NULL DEFAULT 'pending',
  priority INTEGER NOT NULL DEFAULT 0,
  lease_holder TEXT, lease_acquired_at TIMESTAMP, lease_expires_at TIMESTAMP,
  heartbeat_at TIMESTAMP,
  retry_count INTEGER NOT NULL DEFAULT 0, max_retries INTEGER NOT NULL DEFAULT 3,
  input_data TEXT, output_data TEXT, error TEXT,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE checkpoints (
  checkpoint_id TEXT PRIMARY KEY,
  task_id TEXT NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
  work_item_id TEXT REFERENCES work_items(work_item_id) ON DELETE SET NULL,
  checkpoint_type TEXT NOT NULL,
  sequence_number INTEGER NOT NULL,
  snapshot_data TEXT NOT NULL,
  metadata TEXT,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  UNIQUE (task_id, sequence_number));
CREATE TABLE idempotency_keys (
  idempotency_key TEXT PRIMARY KEY,
  request_hash TEXT NOT NULL, response_data TEXT,
  status TEXT NOT NULL DEFAULT 'pending',
  task_id TEXT REFERENCES tasks(task_id) ON DELETE SET NULL, work_item_id TEXT,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, expires_at TIMESTAMP, completed_at TIMESTAMP);
CREATE INDEX idx_work_items_status_priority ON work_items(status, priority DESC, created_at);
CREATE INDEX idx_work_items_lease_expiry ON work_items(lease_expires_at) WHERE status = 'in_progress';
CREATE INDEX idx_checkpoints_task_sequence ON checkpoints(task_id, sequence_number);
CREATE TRIGGER check_work_item_status BEFORE UPDATE OF status ON work_items
  WHEN NEW.status NOT IN ('pending', 'in_progress', 'completed', 'failed')
  BEGIN SELECT RAISE(ABORT, 'invalid status'); END;
CREATE TRIGGER protect_terminal_status BEFORE UPDATE OF status ON work_items
  WHEN OLD.status IN ('completed', 'failed') AND NEW.status <> OLD.status
  BEGIN SELECT RAISE(ABORT, 'terminal status'); END;
CREATE TRIGGER check_checkpoint_type BEFORE INSERT ON checkpoints
  WHEN NEW.checkpoint_type NOT IN ('iteration_start', 'iteration_end', 'tool_executed',
    'llm_response', 'approval_checkpoint', 'state_transition', 'manual_checkpoint', 'error_boundary')
  BEGIN SELECT RAISE(ABORT, 'invalid checkpoint type'); END;
";

/// What kind of task each eighth is, by `task % 8`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Task {
    /// Completed.
    Done,
    /// In progress, its lease alive at the newest time.
    Running,
    /// In progress, its lease expired (the worker died), its last tool call never answered.
    Crashed,
    /// A work item, no checkpoint yet.
    Queued,
    /// Failed after its retries (two work items).
    Failed,
    /// Completed, its sequence numbers with a gap.
    Gapped,
    /// Retried: an old work item whose lease expired, a new one in progress.
    Retried,
    /// Checkpoints and no work item (written before the recovery tables).
    Legacy,
}

const KINDS: [Task; 8] = [
    Task::Done,
    Task::Running,
    Task::Crashed,
    Task::Queued,
    Task::Failed,
    Task::Gapped,
    Task::Retried,
    Task::Legacy,
];

/// A database of an agent OS (seed 004): `tasks` tasks, interleaved as workers run them.
/// Returns each task's checkpoints' states, by task id, and the newest time written.
fn seed_004(path: &Path, tasks: usize) -> (Vec<(String, Task, Vec<Value>)>, String) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(SEED_004_SCHEMA).unwrap();
    let at = |seconds: usize| format!("datetime('2026-01-29 10:00:00', '+{seconds} seconds')");
    let types = [
        "iteration_start",
        "llm_response",
        "tool_executed",
        "state_transition",
        "iteration_end",
    ];
    let mut out = Vec::new();
    let mut clock = 0usize;
    // Work items first (claimed as the queue is drained), then checkpoints round by round:
    // tasks' checkpoints interleave as their workers run at once.
    for t in 0..tasks {
        let id = format!("task-{t:03}");
        let kind = KINDS[t % 8];
        conn.execute(
            &format!("INSERT INTO tasks VALUES (?1, ?2, {})", at(t)),
            rusqlite::params![id, format!("task {t}: summarise ticket #{}", 1000 + t)],
        )
        .unwrap();
        let item = |n: usize, status: &str, retries: usize| {
            conn.execute(
                &format!(
                    "INSERT INTO work_items (work_item_id, task_id, status, priority, lease_holder,
                       lease_acquired_at, lease_expires_at, heartbeat_at, retry_count, input_data, created_at, updated_at)
                     VALUES (?1, ?2, 'pending', ?3, ?4, {a}, {a}, {a}, ?5, ?6, {a}, {a})",
                    a = at(t)
                ),
                rusqlite::params![
                    format!("work-{t:03}-{n}"),
                    id,
                    (t % 3) as i64,
                    (status != "pending").then(|| format!("worker-{}", t % 4)),
                    retries as i64,
                    json!({"ticket": 1000 + t}).to_string()
                ],
            )
            .unwrap();
        };
        match kind {
            Task::Legacy => {}
            Task::Failed => {
                item(1, "failed", 2);
                item(2, "failed", 3);
            }
            Task::Retried => {
                item(1, "in_progress", 0);
                item(2, "in_progress", 1);
            }
            Task::Queued => item(1, "pending", 0),
            _ => item(1, "in_progress", 0),
        }
        let checkpoints = match kind {
            Task::Queued => 0,
            Task::Crashed => 3 + t % 5,
            _ => 4 + (t * 5) % 9,
        };
        out.push((id, kind, vec![Value::Null; checkpoints]));
    }
    let rounds = out.iter().map(|(_, _, c)| c.len()).max().unwrap_or(0);
    for round in 0..rounds {
        for (t, (id, kind, states)) in out.iter_mut().enumerate() {
            if round >= states.len() {
                continue;
            }
            clock += 1;
            let sequence = if *kind == Task::Gapped && round >= 2 {
                round + 3
            } else {
                round + 1
            };
            let kind_name = types[round % types.len()];
            let state = json!({
                "iteration": round / types.len() + 1,
                "state": {
                    "messages": (0..=round).map(|m| format!("message {m} of {id}")).collect::<Vec<_>>(),
                    "last": kind_name,
                    "tool": (kind_name == "tool_executed").then(|| json!({"name": "bash", "exit": round % 2})),
                },
                "timestamp": format!("2026-01-29T10:{:02}:{:02}Z", (100 + clock) / 60, (100 + clock) % 60),
            });
            states[round] = state.clone();
            conn.execute(
                &format!(
                    "INSERT INTO checkpoints VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {})",
                    at(3600 + clock)
                ),
                rusqlite::params![
                    format!("ckpt-{t:03}-{round:02}"),
                    id.as_str(),
                    (*kind != Task::Legacy).then(|| format!("work-{t:03}-1")),
                    kind_name,
                    sequence as i64,
                    state.to_string(),
                    (round % 3 == 0)
                        .then(|| json!({"worker": format!("worker-{}", t % 4)}).to_string()),
                ],
            )
            .unwrap();
            if *kind == Task::Crashed && round + 1 == states.len() {
                // The tool call begun after the last checkpoint, never answered.
                conn.execute(
                    &format!(
                        "INSERT INTO idempotency_keys (idempotency_key, request_hash, status, task_id, created_at, expires_at)
                         VALUES (?1, ?2, 'pending', ?3, {a}, datetime({a}, '+1 day'))",
                        a = at(3600 + clock)
                    ),
                    rusqlite::params![format!("tool-bash-{id}"), format!("sha256:{t:064x}"), id.as_str()],
                )
                .unwrap();
            }
            if round == 0 && *kind != Task::Legacy {
                // A tool call answered: its key completed.
                conn.execute(
                    &format!(
                        "INSERT INTO idempotency_keys (idempotency_key, request_hash, status, task_id, response_data, created_at, completed_at)
                         VALUES (?1, 'sha256:00', 'completed', ?2, '{{\"ok\":true}}', {a}, {a})",
                        a = at(3600 + clock)
                    ),
                    rusqlite::params![format!("tool-llm-{id}"), id.as_str()],
                )
                .unwrap();
            }
        }
    }
    // A key of no task (an operation outside any).
    conn.execute(
        &format!(
            "INSERT INTO idempotency_keys (idempotency_key, request_hash, status, created_at) VALUES ('gc-run', 'h', 'pending', {})",
            at(3600 + clock)
        ),
        [],
    )
    .unwrap();
    clock += 10;
    let newest = 3600 + clock;
    // The workers' leases as they stand at the newest time: the running ones' alive, the
    // crashed ones' expired ten minutes before.
    for (t, (id, kind, _)) in out.iter().enumerate() {
        let (status, expires) = match kind {
            Task::Done | Task::Gapped => ("completed", newest - 300),
            Task::Running => ("in_progress", newest + 240),
            Task::Crashed => ("in_progress", newest - 600),
            Task::Failed => ("failed", newest - 900),
            Task::Retried => {
                conn.execute(
                    &format!(
                        "UPDATE work_items SET status = 'failed', lease_expires_at = {} WHERE work_item_id = ?1",
                        at(newest - 1200)
                    ),
                    [format!("work-{t:03}-1")],
                )
                .unwrap();
                ("in_progress", newest + 200)
            }
            Task::Queued | Task::Legacy => continue,
        };
        let newest_item = conn
            .query_row(
                "SELECT max(work_item_id) FROM work_items WHERE task_id = ?1",
                [id],
                |r| r.get::<_, String>(0),
            )
            .unwrap();
        conn.execute(
            &format!(
                "UPDATE work_items SET status = ?1, lease_expires_at = {}, heartbeat_at = {}, updated_at = {} WHERE work_item_id = ?2",
                at(expires),
                at(expires.min(newest) - 60),
                at(newest.min(expires + 60)),
            ),
            rusqlite::params![status, newest_item],
        )
        .unwrap();
    }
    let newest_text: String = conn
        .query_row(&format!("SELECT {}", at(newest)), [], |r| r.get(0))
        .unwrap();
    (out, newest_text)
}

#[test]
fn seed_004_lists_every_task_with_its_work_item_and_finds_the_crashed_ones_as_of_the_newest_time() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().to_path_buf();
    let db = dir.path().join("agentos.sqlite");
    let (tasks, newest) = seed_004(&db, 48);
    let source = db.to_str().unwrap();
    let before = folder(dir.path());
    let listed: Vec<Value> = serde_json::from_str(&ok(
        &data,
        &["streams", source, "--map", "seed-004", "--json"],
    ))
    .unwrap();
    assert_eq!(
        listed.len(),
        tasks.len(),
        "every task is a stream: {listed:#?}"
    );
    let newest_us = {
        let civil: jiff::civil::DateTime = newest.parse().unwrap();
        civil
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_microsecond()
    };
    for (id, kind, states) in &tasks {
        let s = listed.iter().find(|s| s["name"] == *id).unwrap();
        assert_eq!(s["head"], json!(states.len()), "{id}");
        let status = &s["attributes"]["status"];
        match kind {
            Task::Legacy => assert!(s.get("attributes").is_none(), "{s}"),
            Task::Queued => assert_eq!(*status, json!("pending")),
            Task::Done | Task::Gapped => assert_eq!(*status, json!("completed")),
            Task::Failed => {
                assert_eq!(*status, json!("failed"));
                assert_eq!(s["attributes"]["retry_count"], json!(3), "the newest item");
            }
            Task::Running | Task::Crashed | Task::Retried => {
                assert_eq!(*status, json!("in_progress"))
            }
        }
        assert_eq!(
            s["unfinished"],
            json!(*kind == Task::Crashed),
            "{id} {kind:?}: {s}"
        );
        if *kind == Task::Crashed {
            assert_eq!(
                s["judged_at"],
                json!(newest_us),
                "judged as of the newest time"
            );
            assert_eq!(
                s["pending"],
                json!([{
                    "idempotency_key": format!("tool-bash-{id}"),
                    "request_hash": s["pending"][0]["request_hash"],
                    "created_at": s["pending"][0]["created_at"],
                }])
            );
        } else {
            assert!(s.get("pending").is_none(), "{id}: {s}");
        }
    }
    // The filters: unfinished, and by attribute.
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["streams", source];
        all.extend_from_slice(args);
        all.push("--json");
        let listed: Vec<Value> = serde_json::from_str(&ok(&data, &all)).unwrap();
        listed
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let of = |wanted: &[Task]| -> Vec<String> {
        tasks
            .iter()
            .filter(|(_, k, _)| wanted.contains(k))
            .map(|(id, _, _)| id.clone())
            .collect()
    };
    assert_eq!(names(&["--unfinished"]), of(&[Task::Crashed]));
    assert_eq!(
        names(&["--where", "status=in_progress"]),
        of(&[Task::Running, Task::Crashed, Task::Retried])
    );
    assert_eq!(
        names(&[
            "--where",
            "status=in_progress",
            "--where",
            "lease_holder=worker-2"
        ]),
        of(&[Task::Running, Task::Crashed, Task::Retried])
            .into_iter()
            .filter(|id| id[5..].parse::<usize>().unwrap() % 4 == 2)
            .collect::<Vec<_>>()
    );
    // As of a day later every lease in progress has expired; as of an hour before, none had.
    assert_eq!(
        names(&["--unfinished", "--now", "2026-01-31T00:00:00Z"]),
        of(&[Task::Running, Task::Crashed, Task::Retried])
    );
    let earlier: Vec<Value> = serde_json::from_str(&ok(
        &data,
        &["streams", source, "--now", "2026-01-29T09:00:00Z", "--json"],
    ))
    .unwrap();
    for s in &earlier {
        // Only the unanswered tool calls mark a task unfinished then.
        assert_eq!(s["unfinished"], json!(s.get("pending").is_some()), "{s}");
    }
    let (code, _, err) = rewind(&data, &["streams", source, "--where", "colour=red"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("colour") && err.contains("lease_holder"),
        "{err}"
    );
    // The table shows the attributes as columns.
    let table = ok(&data, &["streams", source, "--unfinished"]);
    let header = table.lines().next().unwrap();
    for column in [
        "status",
        "lease_holder",
        "lease_expires_at",
        "heartbeat_at",
        "retry_count",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(table.contains("unfinished: 1 pending"), "{table}");

    // A crashed task's history: its checkpoints as whole states, in order, with their ids.
    let (crashed, _, states) = tasks.iter().find(|(_, k, _)| *k == Task::Crashed).unwrap();
    for (v, want) in states.iter().enumerate() {
        let at = (v + 1).to_string();
        let got: Value = serde_json::from_str(&ok(
            &data,
            &["state", source, crashed, "--at", &at, "--json"],
        ))
        .unwrap();
        assert_eq!(got["state"], *want, "{crashed} v{at}");
    }
    let t = &crashed[5..];
    let by_id: Value = serde_json::from_str(&ok(
        &data,
        &[
            "state",
            source,
            crashed,
            "--at-id",
            &format!("ckpt-{t}-01"),
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(by_id["state"], states[1]);
    // A task whose sequence numbers skip keeps them in its meta, its versions counted.
    let (gapped, _, _) = tasks.iter().find(|(_, k, _)| *k == Task::Gapped).unwrap();
    let log: Vec<Value> =
        serde_json::from_str(&ok(&data, &["log", source, gapped, "--json"])).unwrap();
    let sequence: Vec<&Value> = log
        .iter()
        .map(|e| &e["meta"]["meta"]["sequence_number"])
        .take(4)
        .collect();
    assert_eq!(sequence, [&json!(1), &json!(2), &json!(5), &json!(6)]);
    assert!(folder(dir.path()) == before, "the source is never written");
}

#[test]
fn seed_004_attributes_follow_the_work_items_without_making_the_mirror_again() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().to_path_buf();
    let db = dir.path().join("agentos.sqlite");
    let (tasks, _) = seed_004(&db, 16);
    let source = db.to_str().unwrap();
    ok(&data, &["streams", source, "--map", "seed-004"]);
    let (running, _, _) = tasks.iter().find(|(_, k, _)| *k == Task::Running).unwrap();
    let (queued, _, _) = tasks.iter().find(|(_, k, _)| *k == Task::Queued).unwrap();
    // The running task's worker dies: its lease lapses and the newest time moves past it;
    // the queued task is claimed and writes its first checkpoint.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&format!(
        "UPDATE work_items SET lease_expires_at = '2026-01-29 11:00:00' WHERE task_id = '{running}';
         UPDATE work_items SET status = 'in_progress', lease_holder = 'worker-9',
           lease_expires_at = '2026-01-29 12:05:00', heartbeat_at = '2026-01-29 12:00:00',
           updated_at = '2026-01-29 12:00:00' WHERE task_id = '{queued}';
         INSERT INTO checkpoints VALUES ('ckpt-new', '{queued}', NULL, 'iteration_start', 1,
           '{{\"iteration\":1}}', NULL, '2026-01-29 12:00:00');"
    ))
    .unwrap();
    drop(conn);
    let (code, out, err) = rewind(&data, &["streams", source, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("made again"), "{err}");
    let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
    let get = |name: &str| listed.iter().find(|s| s["name"] == name).unwrap();
    assert_eq!(get(running)["unfinished"], json!(true), "{}", get(running));
    assert_eq!(get(queued)["head"], json!(1));
    assert_eq!(get(queued)["attributes"]["lease_holder"], json!("worker-9"));
    assert_eq!(get(queued)["unfinished"], json!(false));
}
