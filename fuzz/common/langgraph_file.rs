//! A LangGraph `SqliteSaver` file in memory whose rows are written from fuzz input (ids,
//! parents forming any tree, cycle or forest, any blob under any type, writes under any
//! checkpoint): shared by the targets that read such files.

use rusqlite::Connection;

const KINDS: [&str; 5] = ["msgpack", "json", "null", "pickle", "msgpack+aes"];

fn id(byte: u8) -> String {
    format!("1f0d{byte:02x}00-0000-6000-8000-000000000000")
}

/// The file the input describes, and how many checkpoints it stores.
pub fn file(data: &[u8]) -> (Connection, usize) {
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
    (conn, usize::try_from(stored).expect("a count"))
}
