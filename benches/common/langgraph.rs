//! LangGraph `SqliteSaver` files of the peers' workload, written in LangGraph's own format
//! (its tables, its msgpack checkpoint maps, its JSON metadata, its writes), so the sources
//! benchmark measures files of any length without Python. A test checks a file written here
//! against one the real LangGraph wrote (`tests/fixtures/sources/langgraph/peers50.sqlite`):
//! the same states, metadata and writes at every checkpoint.
//!
//! Two shapes: `Shape::Fields`, the peers' graph (`../shared/peers/langgraph_bench.py`: two
//! nodes, `work` and `check`, taking turns; a 50-field dict, one field changed per step), and
//! `Shape::Agent`, a conversation kept to a window (a message list that grows at the end and
//! drops at the front).

#![allow(dead_code)] // each harness and test uses part of it

use std::path::Path;

use rmpv::Value as Mp;
use rusqlite::{Connection, params};

/// What the graph's state looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"step", "target", "data": 50 fields}`, one field changed per step.
    Fields,
    /// `{"step", "target", "messages": [at most 20]}`, one message added per step.
    Agent,
}

/// Messages an agent-shaped state keeps.
const WINDOW: usize = 20;

const SCHEMA: &str = "
CREATE TABLE checkpoints (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    type TEXT,
    checkpoint BLOB,
    metadata BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
CREATE TABLE writes (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_path TEXT NOT NULL DEFAULT '',
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT,
    value BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);";

/// The thread the peers' script runs.
pub const THREAD: &str = "bench-thread";

fn s(text: &str) -> Mp {
    Mp::from(text)
}

fn map(pairs: Vec<(&str, Mp)>) -> Mp {
    Mp::Map(pairs.into_iter().map(|(k, v)| (s(k), v)).collect())
}

fn pack(value: &Mp) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).unwrap();
    out
}

/// The peers' field key and value after node step `m`.
fn field(m: u64) -> (String, Mp) {
    let key = format!("k{:02}", m % 50);
    let value = if m % 2 == 1 {
        Mp::from(m)
    } else {
        Mp::from(format!("value-{m}"))
    };
    (key, value)
}

/// A message as LangChain's models render: a map of their fields.
fn message(m: u64) -> Mp {
    map(vec![
        ("type", s(if m % 2 == 1 { "ai" } else { "human" })),
        (
            "content",
            Mp::from(format!("message {m}: {}", "lorem ipsum ".repeat(4))),
        ),
        ("id", Mp::from(format!("msg-{m}"))),
        ("additional_kwargs", map(vec![])),
    ])
}

/// A version 6 UUID for the `i`-th checkpoint: time-ordered, as LangGraph's are.
fn uuid6(i: u64) -> String {
    let ticks: u64 = 0x01F1_EDE6_07C5_7665 + i * 9_000;
    let high = ticks >> 28;
    let mid = (ticks >> 12) & 0xFFFF;
    let low = ticks & 0xFFF;
    format!(
        "{high:08x}-{mid:04x}-6{low:03x}-{:04x}-{:012x}",
        0x8000 | (i & 0x3FFF),
        0x2907_34bb_9097_u64
    )
}

/// A channel version as LangGraph writes them: the counter, then a random fraction.
fn version(n: u64) -> Mp {
    Mp::from(format!(
        "{n:032}.0.{}",
        0.578_699_129_189_711_9 + (n % 7) as f64 * 0.01
    ))
}

/// The file at `path` (which must not exist) with a thread of `steps` node steps: the input
/// checkpoint (step -1), step 0, then one per node step, as LangGraph writes them.
pub fn write(path: &Path, shape: Shape, steps: u64) {
    write_upto(path, shape, steps, steps + 2);
}

/// [`write`], stopping before checkpoint `upto` (the run still going).
pub fn write_upto(path: &Path, shape: Shape, steps: u64, upto: u64) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    append(&tx, shape, steps, 0, upto);
    tx.commit().unwrap();
}

/// Appends checkpoints `from..to` of a thread of `steps` node steps to a file [`write`]
/// made: each checkpoint, then the writes of the task that starts from it.
pub fn append(conn: &Connection, shape: Shape, steps: u64, from: u64, to: u64) {
    let mut checkpoint = conn
        .prepare_cached("INSERT INTO checkpoints VALUES (?1, '', ?2, ?3, 'msgpack', ?4, ?5)")
        .unwrap();
    let mut write = conn
        .prepare_cached("INSERT INTO writes VALUES (?1, '', ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
        .unwrap();
    // The state after node step m, as channel values.
    let data = |m: u64| -> Mp {
        match shape {
            Shape::Fields => {
                let mut fields: Vec<(Mp, Mp)> = (0..50)
                    .map(|j| {
                        (
                            Mp::from(format!("k{j:02}")),
                            Mp::from(format!("init-{j:02}")),
                        )
                    })
                    .collect();
                if m >= 1 {
                    for (j, slot) in fields.iter_mut().enumerate() {
                        let j = j as u64;
                        if m >= j.max(1) {
                            let last = m - ((m - j) % 50);
                            if last >= 1 {
                                slot.1 = field(last).1;
                            }
                        }
                    }
                }
                Mp::Map(fields)
            }
            Shape::Agent => {
                let first = (m + 1).saturating_sub(WINDOW as u64);
                Mp::Array((first..=m).map(message).collect())
            }
        }
    };
    let channel = match shape {
        Shape::Fields => "data",
        Shape::Agent => "messages",
    };
    for i in from..to {
        let id = uuid6(i);
        let parent = (i > 0).then(|| uuid6(i - 1));
        // Checkpoint i holds the state after node step i - 1 (the input checkpoint none).
        let (source, step) = if i == 0 {
            ("input", -1_i64)
        } else {
            ("loop", i as i64 - 1)
        };
        let m = i.saturating_sub(1);
        let node = |k: u64| if k.is_multiple_of(2) { "work" } else { "check" };
        let mut values = Vec::new();
        let mut versions = vec![("__start__", version(if i == 0 { 1 } else { 2 }))];
        if i == 0 {
            values.push((
                "__start__",
                map(vec![
                    ("step", Mp::from(0)),
                    ("target", Mp::from(steps)),
                    (channel, data(0)),
                ]),
            ));
        } else {
            values.push(("step", Mp::from(m)));
            values.push(("target", Mp::from(steps)));
            values.push((channel, data(m)));
            if i <= steps {
                let next = format!("branch:to:{}", node(m));
                values.push((Box::leak(next.into_boxed_str()), Mp::Nil));
            }
            versions.push(("step", version(i + 1)));
            versions.push(("target", version(2)));
            versions.push((channel, version(i + 1)));
            versions.push(("branch:to:work", version(i + 1)));
            versions.push(("branch:to:check", version(i)));
        }
        let body = map(vec![
            ("v", Mp::from(4)),
            (
                "ts",
                Mp::from(format!("2026-12-02T00:19:25.{:06}+00:00", i % 1_000_000)),
            ),
            ("id", Mp::from(id.clone())),
            ("channel_values", map(values)),
            ("channel_versions", map(versions)),
            (
                "versions_seen",
                map(vec![
                    ("__input__", map(vec![])),
                    ("__start__", map(vec![("__start__", version(1))])),
                    ("work", map(vec![("branch:to:work", version(i))])),
                    (
                        "check",
                        map(vec![("branch:to:check", version(i.saturating_sub(1)))]),
                    ),
                ]),
            ),
            ("updated_channels", Mp::Array(vec![s(channel), s("step")])),
        ]);
        let metadata = format!(r#"{{"source": "{source}", "step": {step}, "parents": {{}}}}"#);
        checkpoint
            .execute(params![
                THREAD,
                id,
                parent,
                pack(&body),
                metadata.as_bytes()
            ])
            .unwrap();
        // The task that starts from this checkpoint: the input's, then one node per step;
        // the last checkpoint has none (the graph ended).
        if i > steps {
            continue;
        }
        let (task_node, wrote) = if i == 0 {
            let all = vec![
                ("step", Mp::from(0)),
                ("target", Mp::from(steps)),
                (channel, data(0)),
            ];
            ("__start__", all)
        } else {
            let next = m + 1;
            let change = match shape {
                Shape::Fields => {
                    let (key, value) = field(next);
                    Mp::Map(vec![(Mp::from(key), value)])
                }
                Shape::Agent => Mp::Array(vec![message(next)]),
            };
            (node(m), vec![("step", Mp::from(next)), (channel, change)])
        };
        let task = format!("{:08x}-0000-0000-0000-{:012x}", i, i * 7919);
        let path = format!("~__pregel_pull, {task_node}");
        let mut idx = 0_i64;
        for (name, value) in wrote {
            write
                .execute(params![
                    THREAD,
                    id,
                    task,
                    path,
                    idx,
                    name,
                    "msgpack",
                    pack(&value)
                ])
                .unwrap();
            idx += 1;
        }
        if i < steps {
            let branch = format!("branch:to:{}", node(if i == 0 { 0 } else { m + 1 }));
            write
                .execute(params![
                    THREAD,
                    id,
                    task,
                    path,
                    idx,
                    branch,
                    "null",
                    Vec::<u8>::new()
                ])
                .unwrap();
        }
    }
}
