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
                s["judged_at_us"],
                json!(newest_us),
                "judged as of the newest time"
            );
            assert_eq!(
                s["judged_at"],
                json!(rewind::time::format(newest_us)),
                "times in --json are RFC 3339"
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
    assert!(
        table.contains("unfinished as of") && table.contains("; 1 pending"),
        "{table}"
    );

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

/// Seed 000's monitor snapshots: at each of `at` (indexes into `rows`), every agent's state
/// then, keyed by agent, expiring `expires` (SQL datetime text, or NULL).
fn seed_000_snapshots(
    path: &Path,
    rows: &[(i64, String, Value)],
    at: &[(usize, Option<&str>)],
) -> Vec<(String, i64, Value)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut taken = Vec::new();
    for (n, (index, expires)) in at.iter().enumerate() {
        let seq = rows[*index].0;
        let mut agents = serde_json::Map::new();
        for (_, agent, patch) in rows.iter().filter(|r| r.0 <= seq) {
            super::mappings::merge(agents.entry(agent.clone()).or_insert(json!({})), patch);
        }
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let data = Value::Object(agents);
        conn.execute(
            "INSERT INTO snapshots (snapshot_id, seq, data, created_at, expires_at)
             VALUES (?1, ?2, ?3, datetime('2026-02-08 10:00:00', ?4), ?5)",
            rusqlite::params![
                id,
                seq,
                data.to_string(),
                format!("+{seq} seconds"),
                expires
            ],
        )
        .unwrap();
        taken.push((id, seq, data));
    }
    taken
}

/// The mirror's snapshots of a source: (stream, version, trigger).
fn mirror_snapshots(data: &Path, source: &str) -> Vec<(String, u64, String)> {
    let listed: Vec<Value> =
        serde_json::from_str(&ok(data, &["snapshots", source, "--json"])).unwrap();
    let mut out: Vec<(String, u64, String)> = listed
        .iter()
        .map(|s| {
            (
                s["stream"].as_str().unwrap().to_owned(),
                s["version"].as_u64().unwrap(),
                s["trigger"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn seed_000_snapshots_are_used_where_they_agree_reported_where_not_and_ignored_once_expired() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().to_path_buf();
    let db = dir.path().join("agent_monitor.db");
    let source = db.to_str().unwrap();
    let rows = super::mappings::seed_000(&db, 300, 4);
    // The newest event is at 10:00:00 + its seq in seconds: about 10:05:40.
    let taken = seed_000_snapshots(
        &db,
        &rows,
        &[
            (99, None),
            (149, Some("2026-02-08 10:01:00")),
            (199, Some("2026-02-09 00:00:00")),
            (249, None),
        ],
    );
    // The monitor's snapshotter went wrong once: one agent's part of the last snapshot.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE snapshots SET data = json_set(data, '$.\"agent-2\".status', 'lost') WHERE snapshot_id = ?1",
        [&taken[3].0],
    )
    .unwrap();
    drop(conn);
    let before = folder(dir.path());
    ok(&data, &["streams", source, "--map", "seed-000"]);
    let version_of =
        |agent: &str, seq: i64| rows.iter().filter(|r| r.1 == agent && r.0 <= seq).count() as u64;
    // Used: each agent's part of the two snapshots that agree and have not expired.
    let mut want: Vec<(String, u64, String)> = Vec::new();
    for (n, (_, seq, parts)) in taken.iter().enumerate() {
        for agent in parts.as_object().unwrap().keys() {
            let fine = n == 0 || n == 2 || (n == 3 && agent != "agent-2");
            if fine {
                want.push((agent.clone(), version_of(agent, *seq), "source".into()));
            }
        }
    }
    // (Where the mirror took one of its own at the same version, that one stays.)
    let held = mirror_snapshots(&data, source);
    for (agent, version, _) in &want {
        assert!(
            held.iter().any(|h| h.0 == *agent && h.1 == *version),
            "{agent} v{version}: {held:?}"
        );
    }
    let from_source: Vec<_> = held.iter().filter(|s| s.2 == "source").collect();
    assert!(from_source.len() >= want.len() - 2, "{held:?}");
    for s in &from_source {
        assert!(
            want.contains(s),
            "{s:?} is not one that agrees and is current"
        );
    }
    // verify names the one that is wrong, where and how, and counts the expired one.
    let (code, out, err) = rewind(&data, &["verify", source, "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let findings: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "source")
        .collect();
    assert_eq!(findings.len(), 1, "{report:#}");
    let f = findings[0];
    assert_eq!(f["stream"], "agent-2");
    assert_eq!(f["version"], json!(version_of("agent-2", taken[3].1)));
    let detail = f["detail"].as_str().unwrap();
    assert!(
        detail.contains(&taken[3].0) && detail.contains("not the state"),
        "{detail}"
    );
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("of the source's 16 snapshots") && notes.contains("4 expired"),
        "{notes}"
    );
    // As of a time before it expired, the expired one is checked too (and agrees).
    let (code, out, _) = rewind(
        &data,
        &["verify", source, "--now", "2026-02-08T10:00:30Z", "--json"],
    );
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(
        !report["notes"].to_string().contains("expired"),
        "{report:#}"
    );
    assert!(folder(dir.path()) == before, "the source is never written");
}

/// SHA-256 as lowercase hex.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// JSON gzipped, then base64.
fn gzip_base64(value: &Value) -> String {
    use base64::Engine as _;
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(value.to_string().as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
}

/// A workflow engine's database (seed 001, in SQLite with its names, the events table
/// designed as the shipped mapping says): `aggregates` workflows of `events` events each,
/// interleaved. Returns each workflow's states by version (index 0 the empty state).
fn seed_001(path: &Path, aggregates: usize, events: usize) -> Vec<(String, Vec<Value>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE events (
           global_position INTEGER PRIMARY KEY AUTOINCREMENT,
           event_id TEXT NOT NULL UNIQUE,
           aggregate_id VARCHAR(255) NOT NULL,
           aggregate_type VARCHAR(100) NOT NULL,
           version INTEGER NOT NULL,
           event_type VARCHAR(100) NOT NULL,
           payload TEXT NOT NULL,
           metadata TEXT NOT NULL DEFAULT '{}',
           timestamp TEXT NOT NULL,
           UNIQUE (aggregate_id, version));
         CREATE TABLE event_snapshots (
           id TEXT PRIMARY KEY,
           aggregate_id VARCHAR(255) NOT NULL,
           version INTEGER NOT NULL,
           timestamp TEXT NOT NULL,
           data TEXT NOT NULL,
           metadata TEXT NOT NULL DEFAULT '{}',
           created_at TEXT, updated_at TEXT,
           UNIQUE (aggregate_id, version));
         CREATE INDEX idx_snapshots_aggregate_version ON event_snapshots (aggregate_id, version DESC);",
    )
    .unwrap();
    let mut out: Vec<(String, Vec<Value>)> = (1..=aggregates)
        .map(|a| (format!("workflow-{a}"), vec![json!({})]))
        .collect();
    let mut position = 0;
    for v in 1..=events {
        for (a, (id, states)) in out.iter_mut().enumerate() {
            position += 1;
            let step = format!("s{}", v / 3);
            let (kind, patch) = match v % 5 {
                1 if v == 1 => (
                    "WorkflowStarted",
                    json!({"status": "running", "steps": {}, "owner": format!("agent-{a}")}),
                ),
                0 => (
                    "ArtifactAdded",
                    json!({"artifacts": {format!("a{v}.md"): v * 100}}),
                ),
                1 => (
                    "StepStarted",
                    json!({"steps": {step: {"status": "running"}}}),
                ),
                2 => (
                    "StepCompleted",
                    json!({"steps": {step: {"status": "done", "output": format!("out {v}")}}}),
                ),
                3 => (
                    "ArtifactRemoved",
                    json!({"artifacts": {format!("a{}.md", v - 3): null}}),
                ),
                _ => ("Heartbeat", json!({"beat": v})),
            };
            let mut state = states.last().unwrap().clone();
            super::mappings::merge(&mut state, &patch);
            states.push(state);
            conn.execute(
                "INSERT INTO events (event_id, aggregate_id, aggregate_type, version, event_type, payload, metadata, timestamp)
                 VALUES (?1, ?2, 'Workflow', ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    format!("e{position:08}-0000-4000-8000-000000000000"),
                    id.as_str(),
                    v as i64,
                    kind,
                    patch.to_string(),
                    json!({"correlationId": format!("c{a}")}).to_string(),
                    format!("2026-03-01T09:{:02}:{:02}.{:03}Z", position / 60 % 60, position % 60, position % 1000),
                ],
            )
            .unwrap();
        }
    }
    out
}

/// Stores a seed 001 snapshot; `data` is stored as given (so that tests can damage it), with
/// `checksum` over it unless one is given.
fn seed_001_snapshot(
    conn: &rusqlite::Connection,
    aggregate: &str,
    version: usize,
    data: &str,
    compressed: bool,
    base: Option<usize>,
    checksum: Option<String>,
) {
    let metadata = json!({
        "eventType": "Snapshot",
        "compressed": compressed,
        "size": data.len(),
        "checksum": checksum.unwrap_or_else(|| sha256(data.as_bytes())),
        "createdFromVersion": base.unwrap_or(version),
        "strategy": if base.is_some() { "incremental" } else { "full" },
    });
    conn.execute(
        "INSERT INTO event_snapshots (id, aggregate_id, version, timestamp, data, metadata, created_at, updated_at)
         VALUES (?1, ?2, ?3, '2026-03-01T10:00:00Z', ?4, ?5, '2026-03-01T10:00:00Z', '2026-03-01T10:00:00Z')",
        rusqlite::params![
            format!("snap-{aggregate}-{version}"),
            aggregate,
            version as i64,
            data,
            metadata.to_string()
        ],
    )
    .unwrap();
}

/// Seed 001's database with 6 workflows of 48 events, and 4 snapshots each (full at 10,
/// incremental at 20 on it, full compressed at 30, incremental at 40 on it) with the damage a
/// snapshotter and a disk do: workflow-2's v10 bit-flipped after its checksum, workflow-3's
/// v30 a wrong state checksummed as written, workflow-4's v40 built on a version never
/// stored, workflow-5's v30 marked compressed and stored plain. Returns the states.
pub(crate) fn seed_001_with_snapshots(db: &Path) -> Vec<(String, Vec<Value>)> {
    let workflows = seed_001(db, 6, 48);
    let conn = rusqlite::Connection::open(db).unwrap();
    // Each workflow: full at 10, incremental at 20 on it, full compressed at 30, incremental
    // at 40 on it; then the damage the snapshotter and the disk did.
    for (id, states) in &workflows {
        for (version, compressed, base) in [
            (10, false, None),
            (20, false, Some(10)),
            (30, true, None),
            (40, false, Some(30)),
        ] {
            let state = &states[version];
            let value = match base {
                Some(b) => merge_patch(&states[b], state),
                None => state.clone(),
            };
            let mut stored = if compressed {
                gzip_base64(&value)
            } else {
                value.to_string()
            };
            let mut checksum = None;
            let mut base = base;
            match (id.as_str(), version) {
                // A bit flipped on disk: the checksum no longer holds.
                ("workflow-2", 10) => {
                    checksum = Some(sha256(stored.as_bytes()));
                    stored = stored.replacen("running", "rUnning", 1);
                }
                // The snapshotter's bug: a wrong state, checksummed as it was written.
                ("workflow-3", 30) => {
                    let mut wrong = state.clone();
                    wrong["status"] = json!("done");
                    stored = gzip_base64(&wrong);
                }
                // Built on a snapshot that was never stored.
                ("workflow-4", 40) => base = Some(35),
                // Marked compressed, stored plain: it cannot be read.
                ("workflow-5", 30) => stored = state.to_string(),
                _ => {}
            }
            seed_001_snapshot(&conn, id, version, &stored, compressed, base, checksum);
        }
    }
    workflows
}

/// The findings of kind `source` in a `verify --json` report: (stream, version, detail),
/// sorted.
pub(crate) fn source_findings(report: &Value) -> Vec<(String, u64, String)> {
    let mut found: Vec<(String, u64, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "source")
        .map(|f| {
            (
                f["stream"].as_str().unwrap().to_owned(),
                f["version"].as_u64().unwrap(),
                f["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

/// A merge patch from `from` to `to` (objects only, as the workflows' states are).
fn merge_patch(from: &Value, to: &Value) -> Value {
    let (Some(from), Some(to)) = (from.as_object(), to.as_object()) else {
        return to.clone();
    };
    let mut patch = serde_json::Map::new();
    for key in from.keys().filter(|k| !to.contains_key(*k)) {
        patch.insert(key.clone(), Value::Null);
    }
    for (key, value) in to {
        match from.get(key) {
            Some(old) if old == value => {}
            Some(old) if old.is_object() && value.is_object() => {
                patch.insert(key.clone(), merge_patch(old, value));
            }
            _ => {
                patch.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(patch)
}

#[test]
fn seed_001_snapshots_full_incremental_and_compressed_are_checked_and_the_bad_ones_and_those_built_on_them_reported()
 {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().to_path_buf();
    let db = dir.path().join("workflows.db");
    let source = db.to_str().unwrap();
    let workflows = seed_001_with_snapshots(&db);
    let before = folder(dir.path());
    // Every state is the fold of the workflow's events.
    for (id, states) in &workflows {
        for version in [1, 17, 48] {
            let got: Value = serde_json::from_str(&ok(
                &data,
                &[
                    "state",
                    source,
                    id,
                    "--map",
                    "seed-001",
                    "--at",
                    &version.to_string(),
                    "--json",
                ],
            ))
            .unwrap();
            assert_eq!(got["state"], states[version], "{id} v{version}");
        }
    }
    let (code, out, err) = rewind(&data, &["verify", source, "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let found = source_findings(&report);
    let expect = [
        ("workflow-2", 10, "is corrupt: its sha256 checksum is"),
        (
            "workflow-2",
            20,
            "builds on the snapshot at version 10, which is corrupt",
        ),
        (
            "workflow-3",
            30,
            "is not the state the events give at version 30",
        ),
        (
            "workflow-3",
            40,
            "builds on the snapshot at version 30, which is not the state",
        ),
        (
            "workflow-4",
            40,
            "builds on a snapshot at version 35 that the snapshots query does not give",
        ),
        ("workflow-5", 30, "cannot be read: not base64"),
        (
            "workflow-5",
            40,
            "builds on the snapshot at version 30, which cannot be read",
        ),
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for ((stream, version, detail), (want_stream, want_version, want)) in found.iter().zip(expect) {
        assert_eq!((stream.as_str(), *version), (want_stream, want_version));
        assert!(detail.contains(want), "{stream} v{version}: {detail}");
        assert!(
            detail.contains(&format!("snap-{stream}-{version}")),
            "{detail}"
        );
    }
    assert!(
        report["notes"]
            .to_string()
            .contains("17 of the source's 24 snapshots are the state the events give"),
        "{}",
        report["notes"]
    );
    // The 17 that agree are used; none of the others is.
    let used: Vec<(String, u64, String)> = mirror_snapshots(&data, source)
        .into_iter()
        .filter(|s| s.2 == "source")
        .collect();
    assert_eq!(used.len(), 17, "{used:?}");
    for (stream, version, _) in &used {
        assert!(
            !found.iter().any(|f| f.0 == *stream && f.1 == *version),
            "{stream} v{version} is used"
        );
    }
    // And states read through them are still the events' own.
    for (id, states) in &workflows {
        let got: Value =
            serde_json::from_str(&ok(&data, &["state", source, id, "--at", "45", "--json"]))
                .unwrap();
        assert_eq!(got["state"], states[45], "{id}");
    }
    assert!(folder(dir.path()) == before, "the source is never written");
}

/// A streaming backend's database (seed 002, Prisma's SQLite tables): `streams` streams'
/// events from January to April 2026 in the live log. Returns (id, stream, patch, ms).
pub(crate) fn seed_002(
    path: &Path,
    streams: usize,
    events: usize,
) -> Vec<(i64, String, Value, i64)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        r#"CREATE TABLE "EventLog" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
             "streamId" TEXT NOT NULL, "type" TEXT NOT NULL, "payload" TEXT NOT NULL,
             "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP);
           CREATE INDEX "EventLog_streamId_createdAt_idx" ON "EventLog"("streamId", "createdAt");
           CREATE TABLE "StreamArchive" ("id" INTEGER NOT NULL PRIMARY KEY,
             "streamId" TEXT NOT NULL, "type" TEXT NOT NULL, "payload" TEXT NOT NULL,
             "createdAt" DATETIME NOT NULL, "archivedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP);
           CREATE TABLE "StreamSnapshot" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
             "streamId" TEXT NOT NULL, "month" TEXT NOT NULL, "state" TEXT NOT NULL,
             "lastEventId" INTEGER NOT NULL, "eventCount" INTEGER NOT NULL,
             "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP);
           CREATE UNIQUE INDEX "StreamSnapshot_streamId_month_key" ON "StreamSnapshot"("streamId", "month");"#,
    )
    .unwrap();
    // 2026-01-01T00:00:00Z, and about four months after it.
    let start: i64 = 1_767_225_600_000;
    let span: i64 = 120 * 86_400_000;
    let mut rows = Vec::new();
    for n in 0..events {
        let stream = format!("stream-{}", (n * 5 + n / 7) % streams);
        let at = start + span * n as i64 / events as i64;
        let (kind, patch) = match n % 6 {
            0 => (
                "StreamStarted",
                json!({"status": "live", "title": format!("show {n}")}),
            ),
            1 | 4 => ("ViewerCountChanged", json!({"viewers": n % 97, "peak": n})),
            2 => (
                "ChatMessage",
                json!({"lastChat": {"from": format!("u{}", n % 13), "text": "hi ✓"}}),
            ),
            3 => (
                "ModeratorAction",
                json!({"lastChat": null, "muted": n % 2 == 0}),
            ),
            _ => ("StreamEnded", json!({"status": "offline"})),
        };
        conn.execute(
            r#"INSERT INTO "EventLog" ("streamId", "type", "payload", "createdAt") VALUES (?1, ?2, ?3, ?4)"#,
            rusqlite::params![stream, kind, patch.to_string(), at],
        )
        .unwrap();
        rows.push((conn.last_insert_rowid(), stream, patch, at));
    }
    rows
}

/// The seed's monthly job: each stream's state as of the end of `month` (its newest event
/// before `until` ms).
pub(crate) fn seed_002_snapshot(
    conn: &rusqlite::Connection,
    rows: &[(i64, String, Value, i64)],
    month: &str,
    until: i64,
) {
    let mut states: std::collections::BTreeMap<&str, (Value, i64, i64)> = Default::default();
    for (id, stream, patch, _) in rows.iter().filter(|r| r.3 < until) {
        let entry = states.entry(stream).or_insert((json!({}), 0, 0));
        super::mappings::merge(&mut entry.0, patch);
        entry.1 = *id;
        entry.2 += 1;
    }
    for (stream, (state, last, count)) in states {
        conn.execute(
            r#"INSERT INTO "StreamSnapshot" ("streamId", "month", "state", "lastEventId", "eventCount", "createdAt")
               VALUES (?1, ?2, ?3, ?4, ?5, ?6)"#,
            rusqlite::params![stream, month, state.to_string(), last, count, until],
        )
        .unwrap();
    }
}

/// The seed's archive job: rows before `before` ms copied to the archive, then deleted from
/// the live log; `finish` false stops between the two (a reader sees both).
pub(crate) fn seed_002_archive(conn: &rusqlite::Connection, before: i64, finish: bool) {
    conn.execute(
        r#"INSERT OR IGNORE INTO "StreamArchive" ("id", "streamId", "type", "payload", "createdAt", "archivedAt")
           SELECT "id", "streamId", "type", "payload", "createdAt", ?1 FROM "EventLog" WHERE "createdAt" < ?1"#,
        [before],
    )
    .unwrap();
    if finish {
        conn.execute(r#"DELETE FROM "EventLog" WHERE "createdAt" < ?1"#, [before])
            .unwrap();
    }
}

#[test]
fn seed_002_live_log_and_archive_read_as_one_history_while_the_archive_job_moves_rows_and_the_monthly_snapshots_are_checked()
 {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().to_path_buf();
    let db = dir.path().join("streams.db");
    let source = db.to_str().unwrap();
    let rows = seed_002(&db, 5, 400);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let feb = 1_769_904_000_000; // 2026-02-01
    let mar = 1_772_323_200_000; // 2026-03-01
    let apr = 1_775_001_600_000; // 2026-04-01
    seed_002_snapshot(&conn, &rows, "2026-01", feb);
    seed_002_snapshot(&conn, &rows, "2026-02", mar);
    seed_002_snapshot(&conn, &rows, "2026-03", apr);
    // The February job went wrong for one stream.
    conn.execute(
        r#"UPDATE "StreamSnapshot" SET "state" = json_set("state", '$.viewers', 100000)
           WHERE "streamId" = 'stream-3' AND "month" = '2026-02'"#,
        [],
    )
    .unwrap();
    seed_002_archive(&conn, feb, true);
    let states = |stream: &str| -> Vec<Value> {
        let mut state = json!({});
        let mut out = vec![state.clone()];
        for (_, _, patch, _) in rows.iter().filter(|r| r.1 == stream) {
            super::mappings::merge(&mut state, patch);
            out.push(state.clone());
        }
        out
    };
    let logged = |stream: &str| -> Vec<i64> {
        let log: Vec<Value> =
            serde_json::from_str(&ok(&data, &["log", source, stream, "--json"])).unwrap();
        log.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
    };
    let ids =
        |stream: &str| -> Vec<i64> { rows.iter().filter(|r| r.1 == stream).map(|r| r.0).collect() };
    ok(&data, &["streams", source, "--map", "seed-002"]);
    for s in 0..5 {
        let stream = format!("stream-{s}");
        assert_eq!(
            logged(&stream),
            ids(&stream),
            "{stream}: archive then live, once each"
        );
    }
    // The archive job, stopped between its copy and its delete: every row still reads once,
    // and the mirror is not made again.
    seed_002_archive(&conn, mar, false);
    let (code, _, err) = rewind(&data, &["streams", source]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("made again"), "{err}");
    for s in 0..5 {
        let stream = format!("stream-{s}");
        assert_eq!(logged(&stream), ids(&stream), "{stream} mid-move");
    }
    seed_002_archive(&conn, mar, true);
    let (code, _, err) = rewind(&data, &["streams", source]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("made again"), "{err}");
    for s in 0..5 {
        let stream = format!("stream-{s}");
        assert_eq!(logged(&stream), ids(&stream), "{stream} after the move");
        let want = states(&stream);
        let head: Value =
            serde_json::from_str(&ok(&data, &["state", source, &stream, "--json"])).unwrap();
        assert_eq!(head["state"], *want.last().unwrap(), "{stream}");
    }
    // The monthly snapshots: the wrong one found, named by its month.
    let (code, out, _) = rewind(&data, &["verify", source, "--json"]);
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let found: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "source")
        .collect();
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["stream"], "stream-3");
    let detail = found[0]["detail"].as_str().unwrap();
    assert!(detail.contains("\"2026-02\""), "{detail}");
    assert!(
        report["notes"]
            .to_string()
            .contains("14 of the source's 15 snapshots are the state the events give"),
        "{}",
        report["notes"]
    );
}

/// A Raft state machine's SQLite file (seed 003): every write applied, then `last_write_at`
/// set to the database's time (here a given second, as text, as `strftime('%s')` gives it).
struct Raft {
    conn: rusqlite::Connection,
    folder: std::path::PathBuf,
}

impl Raft {
    fn new(folder: &Path) -> Self {
        std::fs::create_dir_all(folder.join("snapshots")).unwrap();
        let conn = rusqlite::Connection::open(folder.join("node.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS _raft_meta (key TEXT PRIMARY KEY, value TEXT);
             CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance INTEGER, photo BLOB);
             CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
             CREATE TABLE audit (at INTEGER, what TEXT);
             CREATE TABLE pairs (a TEXT, b INTEGER, c REAL, PRIMARY KEY (a, b));",
        )
        .unwrap();
        Self {
            conn,
            folder: folder.to_path_buf(),
        }
    }

    /// Applies a write at `second` (seconds after 2026-01-29T10:00:00Z).
    fn write(&self, second: i64, sql: &str) {
        self.conn.execute_batch(sql).unwrap();
        self.conn
            .execute(
                "INSERT INTO _raft_meta (key, value) VALUES ('last_write_at', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [(1_769_680_800 + second).to_string()],
            )
            .unwrap();
    }

    /// The scheduler's snapshot: `VACUUM INTO snapshots/snapshot_N.db`.
    fn snapshot(&self, index: u32) -> String {
        let name = format!("snapshot_{index:04}.db");
        let path = self.folder.join("snapshots").join(&name);
        self.conn
            .execute("VACUUM INTO ?1", [path.to_str().unwrap()])
            .unwrap();
        name
    }

    /// A table's rows by key, as the mapping keys them.
    fn rows(&self, sql: &str) -> Value {
        let mut stmt = self.conn.prepare(sql).unwrap();
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let mut out = serde_json::Map::new();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let key: String = row.get(0).unwrap();
            let mut value = serde_json::Map::new();
            for (i, name) in names.iter().enumerate().skip(1) {
                let v = match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(n) => json!(n),
                    rusqlite::types::ValueRef::Real(x) => json!(x),
                    rusqlite::types::ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                    rusqlite::types::ValueRef::Blob(b) => json!(format!(
                        "x'{}'",
                        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
                    )),
                };
                value.insert(name.clone(), v);
            }
            out.insert(key, Value::Object(value));
        }
        Value::Object(out)
    }

    /// Every table's rows as the mapping reads them.
    fn tables(&self) -> Vec<(&'static str, Value)> {
        vec![
            (
                "accounts",
                self.rows("SELECT CAST(id AS TEXT), id, owner, balance, photo FROM accounts"),
            ),
            ("kv", self.rows("SELECT k, k, v FROM kv")),
            (
                "audit",
                self.rows("SELECT CAST(rowid AS TEXT), at, what FROM audit"),
            ),
            (
                "pairs",
                self.rows("SELECT json_array(a, b), a, b, c FROM pairs"),
            ),
        ]
    }
}

#[test]
fn seed_003_a_database_and_its_vacuum_into_copies_read_as_one_history_per_table_with_blame_naming_the_file()
 {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().to_path_buf();
    let raft = Raft::new(dir.path());
    let node = dir.path().join("node.db");
    let source = node.to_str().unwrap();
    let mut second = 0;
    let mut expected: Vec<Vec<(&'static str, Value)>> = Vec::new();
    // Three rounds of writes, a snapshot after each.
    for round in 0..3i64 {
        for n in 0..20i64 {
            second += 1;
            let id = round * 7 + n;
            raft.write(
                second,
                &format!(
                    "INSERT INTO accounts (id, owner, balance, photo) VALUES ({id}, 'owner {id}', {}, x'0a{:02x}')
                       ON CONFLICT (id) DO UPDATE SET balance = balance + 1;
                     INSERT OR REPLACE INTO kv VALUES ('key/{}', 'v{round}~{n}');
                     INSERT INTO audit VALUES ({second}, 'round {round} write {n}');
                     INSERT OR REPLACE INTO pairs VALUES ('p{}', {}, {round}.5);",
                    n * 10,
                    n % 256,
                    n % 9,
                    n % 4,
                    n % 3
                ),
            );
        }
        if round == 1 {
            second += 1;
            raft.write(second, "DELETE FROM accounts WHERE id % 5 = 0; UPDATE accounts SET owner = NULL WHERE 0; DELETE FROM audit WHERE at < 5;");
        }
        raft.snapshot(round as u32);
        expected.push(raft.tables());
    }
    let before = folder(&dir.path().join("snapshots"));
    let streams: Vec<Value> = serde_json::from_str(&ok(
        &data,
        &["streams", source, "--map", "seed-003", "--json"],
    ))
    .unwrap();
    let mut names: Vec<&str> = streams
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["accounts", "audit", "kv", "pairs"],
        "one stream per table, _raft_meta left out"
    );
    let state = |table: &str, at: Option<u64>| -> Value {
        let mut args = vec!["state", source, table, "--json"];
        let at = at.map(|v| v.to_string());
        if let Some(at) = &at {
            args.extend(["--at", at.as_str()]);
        }
        serde_json::from_str::<Value>(&ok(&data, &args)).unwrap()["state"].clone()
    };
    for (table, rows) in expected.last().unwrap() {
        assert_eq!(state(table, None), *rows, "{table}");
    }
    // Each copy is a point: the state after its last event is that copy's table.
    for (table, _) in expected[0].iter() {
        let log: Vec<Value> =
            serde_json::from_str(&ok(&data, &["log", source, table, "--json"])).unwrap();
        for (round, tables) in expected.iter().enumerate() {
            let file = format!("snapshot_{round:04}.db");
            let last = log
                .iter()
                .filter(|e| e["meta"]["file"] == file.as_str())
                .map(|e| e["version"].as_u64().unwrap())
                .max();
            if let Some(version) = last {
                let want = &tables.iter().find(|(t, _)| t == table).unwrap().1;
                assert_eq!(state(table, Some(version)), *want, "{table} at {file}");
            }
        }
    }
    // Row by row: deleted rows are delete events; blame on a row names the files.
    let blame: Vec<Value> =
        serde_json::from_str(&ok(&data, &["blame", source, "accounts", "/10", "--json"])).unwrap();
    let files: Vec<&str> = blame
        .iter()
        .map(|e| e["meta"]["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        ["snapshot_0001.db", "snapshot_0000.db"],
        "{blame:#?}"
    );
    assert_eq!(blame[0]["type"], "delete");
    let table = ok(&data, &["blame", source, "kv", "/key~11"]);
    assert!(table.lines().next().unwrap().contains("file"), "{table}");
    assert!(table.contains("snapshot_0000.db"), "{table}");
    // The live file moves on: its new rows come in, nothing is made again; a new copy of it
    // adds nothing; old copies removed by retention leave the history in place.
    second += 1;
    raft.write(
        second,
        "UPDATE accounts SET balance = -1 WHERE id = 3; INSERT INTO kv VALUES ('late', NULL);",
    );
    let (code, _, err) = rewind(&data, &["streams", source]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("made again"), "{err}");
    for (table, rows) in raft.tables() {
        assert_eq!(state(table, None), rows, "{table} after a live write");
    }
    let heads = |data: &Path| -> Vec<(String, u64)> {
        let listed: Vec<Value> =
            serde_json::from_str(&ok(data, &["streams", source, "--json"])).unwrap();
        listed
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_owned(),
                    s["head"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let heads_before = heads(&data);
    raft.snapshot(3);
    std::fs::remove_file(dir.path().join("snapshots/snapshot_0000.db")).unwrap();
    let (code, _, err) = rewind(&data, &["streams", source]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("made again"), "{err}");
    assert_eq!(
        heads(&data),
        heads_before,
        "a copy of the newest point adds nothing"
    );
    // A copy older than the newest point read: the history is made again, saying so.
    std::fs::copy(
        dir.path().join("snapshots/snapshot_0001.db"),
        dir.path().join("snapshots/snapshot_0000b.db"),
    )
    .unwrap();
    let (code, _, err) = rewind(&data, &["streams", source]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("made again") && err.contains("snapshot_0000b.db"),
        "{err}"
    );
    for (table, rows) in raft.tables() {
        assert_eq!(
            state(table, None),
            rows,
            "{table} after the history was made again"
        );
    }
    // Never written: the copies read are as they were, and nothing was made beside them.
    let after = folder(&dir.path().join("snapshots"));
    for (path, bytes) in &before {
        if let Some((_, now)) = after.iter().find(|(p, _)| p == path) {
            assert!(now == bytes, "{} changed", path.display());
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["node.db", "snapshots"]);
}

#[test]
fn seed_003_a_copy_taken_between_the_points_read_has_the_history_made_again_and_the_head_stays_the_file()
 {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().to_path_buf();
    let raft = Raft::new(dir.path());
    let source = dir.path().join("node.db");
    let source = source.to_str().unwrap();
    raft.write(1, "INSERT INTO kv VALUES ('a', '1');");
    raft.snapshot(1);
    raft.write(5, "INSERT INTO kv VALUES ('b', '2');");
    // A copy made at second 5, kept aside, and the file written on.
    let aside = dir.path().join("aside.db");
    raft.conn
        .execute("VACUUM INTO ?1", [aside.to_str().unwrap()])
        .unwrap();
    raft.write(
        9,
        "UPDATE kv SET v = '3' WHERE k = 'a'; DELETE FROM kv WHERE k = 'b';",
    );
    ok(&data, &["streams", source, "--map", "seed-003"]);
    // The copy from second 5 arrives late: it lies between points already read.
    std::fs::rename(&aside, dir.path().join("snapshots/snapshot_0002.db")).unwrap();
    let (code, _, err) = rewind(&data, &["streams", source]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("made again"), "{err}");
    let log: Vec<Value> =
        serde_json::from_str(&ok(&data, &["log", source, "kv", "--json"])).unwrap();
    let read: Vec<(String, String)> = log
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["meta"]["file"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let pair = |t: &str, f: &str| (t.to_owned(), f.to_owned());
    assert_eq!(
        read,
        [
            pair("insert", "snapshot_0001.db"),
            pair("insert", "snapshot_0002.db"),
            pair("update", "node.db"),
            pair("delete", "node.db"),
        ]
    );
    let head: Value = serde_json::from_str(&ok(&data, &["state", source, "kv", "--json"])).unwrap();
    assert_eq!(head["state"], json!({"a": {"k": "a", "v": "3"}}));
}
