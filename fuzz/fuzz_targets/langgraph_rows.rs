//! A LangGraph `SqliteSaver` file's rows written arbitrarily (ids, parents forming any tree,
//! cycle or forest, any blob under any type, writes under any checkpoint): reading never
//! panics, every checkpoint lands in exactly one branch, a branch forks from a version its
//! parent branch holds, and a branch's checkpoints continue each other.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use rusqlite::Connection;

const KINDS: [&str; 5] = ["msgpack", "json", "null", "pickle", "msgpack+aes"];

fn id(byte: u8) -> String {
    format!("1f0d{byte:02x}00-0000-6000-8000-000000000000")
}

fuzz_target!(|data: &[u8]| {
    let conn = Connection::open_in_memory().expect("memory");
    conn.execute_batch(
        "CREATE TABLE checkpoints (thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL DEFAULT '',
           checkpoint_id TEXT NOT NULL, parent_checkpoint_id TEXT, type TEXT, checkpoint BLOB, metadata BLOB,
           PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id));
         CREATE TABLE writes (thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL DEFAULT '',
           checkpoint_id TEXT NOT NULL, task_id TEXT NOT NULL, task_path TEXT NOT NULL DEFAULT '',
           idx INTEGER NOT NULL, channel TEXT NOT NULL, type TEXT, value BLOB,
           PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx));",
    )
    .expect("schema");
    let mut rest = data;
    while let [head, thread, me, parent, kind, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (blob, after) = tail.split_at(len);
        rest = after;
        let thread = format!("t{}", thread % 3);
        let ns = if head & 1 == 0 { "" } else { "sub:1" };
        let kind = KINDS[usize::from(*kind) % KINDS.len()];
        if head & 2 == 0 {
            let parent = (head & 4 == 0).then(|| id(*parent));
            let _ = conn.execute(
                "INSERT OR IGNORE INTO checkpoints VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![thread, ns, id(*me), parent, kind, blob, blob],
            );
        } else {
            let _ = conn.execute(
                "INSERT OR IGNORE INTO writes VALUES (?1, ?2, ?3, 'task', '~__pregel_pull, node', ?4, 'c', ?5, ?6)",
                rusqlite::params![thread, ns, id(*me), i64::from(*parent) - 8, kind, blob],
            );
        }
    }
    let stored: i64 = conn
        .query_row("SELECT count(*) FROM checkpoints", [], |r| r.get(0))
        .expect("count");
    let stored = usize::try_from(stored).expect("a count");
    let Ok(branches) = rewind::source::langgraph::read(&conn) else {
        return;
    };
    assert_eq!(branches.iter().map(|b| b.checkpoints.len()).sum::<usize>(), stored);
    let ranges: HashMap<&str, (u64, u64)> = branches
        .iter()
        .map(|b| {
            let first = b.fork.as_ref().map_or(1, |(_, v)| v + 1);
            (b.stream.as_str(), (first, first + b.checkpoints.len() as u64 - 1))
        })
        .collect();
    for branch in &branches {
        assert!(!branch.checkpoints.is_empty());
        if let Some((parent, version)) = &branch.fork {
            let (first, last) = ranges[parent.as_str()];
            assert!((first..=last).contains(version), "{} forks from {parent} v{version}", branch.stream);
        }
        for pair in branch.checkpoints.windows(2) {
            assert_eq!(pair[1].parent.as_deref(), Some(pair[0].id.as_str()));
        }
    }
});
