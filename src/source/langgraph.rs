//! LangGraph's `SqliteSaver` file: `checkpoints(thread_id, checkpoint_ns, checkpoint_id,
//! parent_checkpoint_id, type, checkpoint, metadata)` and `writes(thread_id, checkpoint_ns,
//! checkpoint_id, task_id, task_path, idx, channel, type, value)` (older files lack
//! `task_path`). Read into checkpoint histories: one per thread and namespace (a subgraph's
//! namespace is `node:task-id`), each a tree (`update_state` on an earlier checkpoint gives it
//! a second child) cut into branches that share their prefix.
//!
//! A checkpoint's state is its `channel_values` without LangGraph's own channels (`__…`,
//! `branch:…`, `join:…`), decoded by [`super::msgpack`]; one that cannot be decoded (pickle,
//! encrypted, damaged) is reported with its thread and id while the rest shows. Its time is
//! the one in its id (a time-ordered UUIDv6), so times follow ids even where the blob cannot
//! be read. The writes under a checkpoint are what the tasks that started from it wrote: the
//! next step, where the checkpoint has a child; where it has none, what a crashed or
//! interrupted run did not finish (the branch is unfinished).

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;
use serde_json::Value;

use super::msgpack::{decode_member_marking, decode_typed};
use crate::model::Micros;

/// One stored write: a task's output to a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The task that wrote it.
    pub task_id: String,
    /// The node the task ran (from `task_path`; empty where the file does not say).
    pub node: String,
    /// Its place among the task's writes (negative: interrupts, resumes, errors).
    pub idx: i64,
    /// The channel written.
    pub channel: String,
    /// The value, or why it cannot be shown.
    pub value: Result<Value, String>,
}

/// One checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// `checkpoint_id`.
    pub id: String,
    /// `parent_checkpoint_id`.
    pub parent: Option<String>,
    /// The time in its id, µs since the epoch.
    pub time: Micros,
    /// `metadata` (source, step, parents, run ids, the user's own keys).
    pub metadata: Value,
    /// The state (channel values without LangGraph's own), or why it cannot be shown.
    pub state: Result<Value, String>,
    /// The graph's input (`__start__`), where the checkpoint holds it (step -1).
    pub input: Option<Value>,
    /// The channels holding a DeltaChannel snapshot here (their value stored whole).
    pub delta_channels: Vec<String>,
    /// The writes of the tasks that started from it, in LangGraph's order.
    pub writes: Vec<Write>,
}

/// One line of a thread's tree: its own checkpoints, after the one it forks from.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    /// The thread it is in.
    pub thread: String,
    /// The namespace (empty for the graph itself, `node:task-id` for a subgraph).
    pub ns: String,
    /// The stream's name: the thread (and namespace), and for a branch that is not the one
    /// with the newest checkpoint, `~` and the id of its first own checkpoint.
    pub stream: String,
    /// Where it forks: the parent branch's stream and the version there it continues from.
    pub fork: Option<(String, u64)>,
    /// Its own checkpoints, oldest first (version = fork version + 1, + 2, …).
    pub checkpoints: Vec<Checkpoint>,
    /// Whether its newest checkpoint has writes that no checkpoint consumed: a run that
    /// crashed or was interrupted there.
    pub unfinished: bool,
}

/// Reads every thread and namespace of a `SqliteSaver` file, as branches.
pub fn read(conn: &Connection) -> Result<Vec<Branch>, String> {
    let mut writes: HashMap<(String, String, String), Vec<Write>> = HashMap::new();
    let task_path = task_path_column(conn)?;
    let mut statement = conn
        .prepare(&format!(
            "SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, {task_path}, idx, channel, type, value
             FROM writes ORDER BY thread_id, checkpoint_ns, checkpoint_id, {task_path}, task_id, idx"
        ))
        .map_err(|e| format!("reading writes: {e}"))?;
    let mut rows = statement.query([]).map_err(|e| e.to_string())?;
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let (key, write) = write_row(row)?;
        writes.entry(key).or_default().push(write);
    }
    drop(rows);
    let mut trees: BTreeMap<(String, String), Vec<Checkpoint>> = BTreeMap::new();
    let mut statement = conn
        .prepare(&format!(
            "{CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY thread_id, checkpoint_ns, checkpoint_id"
        ))
        .map_err(|e| format!("reading checkpoints: {e}"))?;
    let mut rows = statement.query([]).map_err(|e| e.to_string())?;
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let (thread, ns, mut checkpoint) = checkpoint_row(row)?;
        checkpoint.writes = writes
            .remove(&(thread.clone(), ns.clone(), checkpoint.id.clone()))
            .unwrap_or_default();
        trees.entry((thread, ns)).or_default().push(checkpoint);
    }
    Ok(trees
        .into_iter()
        .flat_map(|((thread, ns), checkpoints)| branches(&thread, &ns, checkpoints))
        .collect())
}

/// Every thread and namespace cut into branches as [`read`] cuts them, from ids and parents
/// alone: the checkpoints carry no state, metadata or writes (read each with [`checkpoint`]),
/// and no branch is marked unfinished.
pub fn outline(conn: &Connection) -> Result<Vec<Branch>, String> {
    let mut trees: BTreeMap<(String, String), Vec<Checkpoint>> = BTreeMap::new();
    let mut statement = conn
        .prepare(
            "SELECT thread_id, coalesce(checkpoint_ns, ''), checkpoint_id, parent_checkpoint_id
             FROM checkpoints ORDER BY thread_id, checkpoint_ns, checkpoint_id",
        )
        .map_err(|e| format!("reading checkpoints: {e}"))?;
    let mut rows = statement.query([]).map_err(|e| e.to_string())?;
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let text = |i: usize| row.get::<_, Option<String>>(i).ok().flatten();
        let (Some(thread), Some(ns), Some(id)) = (text(0), text(1), text(2)) else {
            return Err("a checkpoint's thread or id is not text".into());
        };
        let time = uuid_time(&id).ok_or_else(|| {
            format!("thread {thread:?} checkpoint {id}: its id is not a time-ordered UUID")
        })?;
        trees.entry((thread, ns)).or_default().push(Checkpoint {
            parent: text(3).filter(|p| !p.is_empty()),
            id,
            time,
            metadata: Value::Null,
            state: Ok(Value::Null),
            input: None,
            delta_channels: Vec::new(),
            writes: Vec::new(),
        });
    }
    Ok(trees
        .into_iter()
        .flat_map(|((thread, ns), checkpoints)| branches(&thread, &ns, checkpoints))
        .collect())
}

/// One checkpoint whole: its state, metadata and the writes under it.
pub fn checkpoint(
    conn: &Connection,
    thread: &str,
    ns: &str,
    id: &str,
) -> Result<Checkpoint, String> {
    raw_checkpoint(conn, thread, ns, id)?
        .decode()
        .map(|(_, _, c)| c)
}

/// One checkpoint's row and the rows of the writes under it, read but not decoded: a mirror
/// reads them on one thread and decodes them ([`Raw::decode`]) on another.
pub fn raw_checkpoint(conn: &Connection, thread: &str, ns: &str, id: &str) -> Result<Raw, String> {
    let mut statement = conn
        .prepare_cached(&format!(
            "{CHECKPOINT_COLUMNS} FROM checkpoints WHERE thread_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id = ?3"
        ))
        .map_err(|e| format!("reading checkpoints: {e}"))?;
    let mut rows = statement
        .query([thread, ns, id])
        .map_err(|e| e.to_string())?;
    let Some(row) = rows.next().map_err(|e| e.to_string())? else {
        return Err(format!(
            "thread {thread:?} checkpoint {id} is gone from the file (removed while it was read)"
        ));
    };
    let mut raw = raw_row(row)?;
    raw.writes = raw_writes_of(conn, thread, ns, id)?;
    Ok(raw)
}

/// For each branch, whether it is its thread's (and namespace's) only one: such a branch is
/// the whole thread, which [`read_branch`] reads in one pass.
pub fn whole_threads(branches: &[Branch]) -> Vec<bool> {
    let mut per_thread: HashMap<(&str, &str), usize> = HashMap::new();
    for branch in branches {
        *per_thread.entry((&branch.thread, &branch.ns)).or_default() += 1;
    }
    branches
        .iter()
        .map(|b| per_thread[&(b.thread.as_str(), b.ns.as_str())] == 1)
        .collect()
}

/// The checkpoints of a branch with the writes under each, read but not decoded, oldest
/// first, each handed to `each` (which may stop the read by failing). Where the branch is its
/// thread's only one (`whole_thread`) and its ids ascend, as LangGraph's do, both tables are
/// read in one pass each, in the order of their keys; any checkpoint that pass does not find
/// as [`raw_checkpoint`] would (rows of a damaged file) is looked up alone, so the result
/// is the same.
pub fn read_branch<E>(
    conn: &Connection,
    branch: &Branch,
    whole_thread: bool,
    at_source: impl Fn(String) -> E,
    mut each: impl FnMut(Raw) -> Result<(), E>,
) -> Result<(), E> {
    let (thread, ns) = (branch.thread.as_str(), branch.ns.as_str());
    let ascending = branch.checkpoints.windows(2).all(|w| w[0].id < w[1].id);
    if !whole_thread || !ascending {
        for checkpoint in &branch.checkpoints {
            each(raw_checkpoint(conn, thread, ns, &checkpoint.id).map_err(&at_source)?)?;
        }
        return Ok(());
    }
    let failed = |e: rusqlite::Error| at_source(format!("reading thread {thread:?}: {e}"));
    let mut checkpoints = conn
        .prepare_cached(&format!(
            "{CHECKPOINT_COLUMNS} FROM checkpoints WHERE thread_id = ?1 AND checkpoint_ns = ?2 ORDER BY checkpoint_id"
        ))
        .map_err(failed)?;
    let task_path = task_path_column(conn).map_err(&at_source)?;
    let mut writes = conn
        .prepare_cached(&format!(
            "SELECT checkpoint_id, task_id, {task_path}, idx, channel, type, value
             FROM writes WHERE thread_id = ?1 AND checkpoint_ns = ?2 ORDER BY checkpoint_id, task_id, idx"
        ))
        .map_err(failed)?;
    let mut rows = checkpoints.query([thread, ns]).map_err(failed)?;
    let mut written = writes.query([thread, ns]).map_err(failed)?;
    // The row each cursor is at: a checkpoint, and a write with the id it is under (None
    // where its row holds something no lookup would match or sort as SQL does).
    let mut row_at: Option<Raw> = None;
    let mut write_at: Option<(String, Option<RawWrite>)> = None;
    let mut rows_done = false;
    for expected in &branch.checkpoints {
        let id = expected.id.as_str();
        while !rows_done && row_at.as_ref().is_none_or(|r| r.id.as_str() < id) {
            match rows.next().map_err(failed)? {
                Some(row) => row_at = raw_row(row).ok(),
                None => rows_done = true,
            }
        }
        let found = match &row_at {
            Some(r) if r.id == id => row_at.take(),
            _ => None,
        };
        // The writes under it: those the cursor holds with its id.
        let mut under = Vec::new();
        let mut exact = true;
        loop {
            if write_at.is_none() {
                match written.next().map_err(failed)? {
                    // A write under no text id (None): no lookup finds it; read on.
                    Some(row) => write_at = cursor_write(row),
                    None => break,
                }
                continue;
            }
            match &write_at {
                Some((under_id, _)) if under_id.as_str() < id => write_at = None,
                Some((under_id, _)) if under_id == id => {
                    match write_at.take().and_then(|(_, w)| w) {
                        Some(write) => under.push(write),
                        None => exact = false,
                    }
                }
                _ => break,
            }
        }
        let raw = match found {
            Some(mut raw) if exact => {
                // `writes_of`'s order: by path, then task and place (the pass read them by
                // task and place).
                under.sort_by(|a, b| a.path.cmp(&b.path));
                raw.writes = under;
                raw
            }
            Some(mut raw) => {
                raw.writes = raw_writes_of(conn, thread, ns, id).map_err(&at_source)?;
                raw
            }
            None => raw_checkpoint(conn, thread, ns, id).map_err(&at_source)?,
        };
        each(raw)?;
    }
    Ok(())
}

/// A `writes` row as [`read_branch`] reads it: the checkpoint id it is under (None where that
/// is not text), and the write, None where a column [`raw_writes_of`] sorts by is not what
/// sorts the same in Rust and SQL (text paths and task ids, an integer place).
fn cursor_write(row: &rusqlite::Row<'_>) -> Option<(String, Option<RawWrite>)> {
    use rusqlite::types::ValueRef;
    let text = |i: usize| match row.get_ref(i) {
        Ok(ValueRef::Text(t)) => std::str::from_utf8(t).ok().map(str::to_owned),
        _ => None,
    };
    let under = text(0)?;
    let write = (|| {
        let ValueRef::Integer(idx) = row.get_ref(3).ok()? else {
            return None;
        };
        Some(RawWrite {
            task_id: text(1)?,
            path: text(2)?,
            idx,
            channel: text_or_empty(row, 4),
            kind: text_or_empty(row, 5),
            blob: blob(row, 6),
        })
    })();
    Some((under, write))
}

/// A BLOB column's bytes, empty where it holds none.
fn blob(row: &rusqlite::Row<'_>, i: usize) -> Vec<u8> {
    row.get::<_, Option<Vec<u8>>>(i)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// A TEXT column's text, empty where it holds none.
fn text_or_empty(row: &rusqlite::Row<'_>, i: usize) -> String {
    row.get::<_, Option<String>>(i)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// A `checkpoints` row and the `writes` rows under it as stored.
#[derive(Debug, Clone)]
pub struct Raw {
    thread: String,
    ns: String,
    id: String,
    parent: Option<String>,
    kind: String,
    blob: Vec<u8>,
    metadata: Option<Vec<u8>>,
    writes: Vec<RawWrite>,
}

/// A `writes` row as stored.
#[derive(Debug, Clone)]
struct RawWrite {
    task_id: String,
    path: String,
    idx: i64,
    channel: String,
    kind: String,
    blob: Vec<u8>,
}

impl Raw {
    /// The checkpoint, its state and writes decoded, with its thread and namespace.
    pub fn decode(self) -> Result<Placed, String> {
        let Self {
            thread,
            ns,
            id,
            parent,
            kind,
            blob,
            metadata,
            writes,
        } = self;
        let at = |what: String| format!("thread {thread:?} checkpoint {id}: {what}");
        let metadata = metadata
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null);
        let mut input = None;
        let mut delta_channels = Vec::new();
        let state = decode_member_marking(&kind, &blob, "channel_values")
            .map_err(|e| at(e.to_string()))
            .and_then(|values| match values {
                Some((Value::Object(mut channels), marked)) => {
                    delta_channels = marked;
                    input = channels.remove("__start__");
                    channels.retain(|name, _| !internal(name));
                    Ok(Value::Object(channels))
                }
                _ => Err(at("the checkpoint has no channel_values".into())),
            });
        let checkpoint = Checkpoint {
            time: uuid_time(&id).ok_or_else(|| at("its id is not a time-ordered UUID".into()))?,
            parent,
            id,
            metadata,
            state,
            input,
            delta_channels,
            writes: writes.into_iter().map(RawWrite::decode).collect(),
        };
        Ok((thread, ns, checkpoint))
    }
}

impl RawWrite {
    fn decode(self) -> Write {
        Write {
            node: node_of(&self.path),
            value: decode_typed(&self.kind, &self.blob).map_err(|e| e.to_string()),
            task_id: self.task_id,
            idx: self.idx,
            channel: self.channel,
        }
    }
}

/// The stream a thread and namespace are shown as: the thread, and a subgraph's namespace
/// after a `/`.
pub fn stream_name(thread: &str, ns: &str) -> String {
    if ns.is_empty() {
        thread.to_owned()
    } else {
        format!("{thread}/{ns}")
    }
}

/// What the tables held when last read: enough to tell that nothing changed without reading
/// them, and that rows were only added (never removed or replaced) when something did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    /// The newest `checkpoints` rowid (a replaced row gets a new one), its checkpoint id, and
    /// the row count.
    pub checkpoints: (i64, String, i64),
    /// The newest `writes` rowid (a replaced row gets a new one too). Not the count: LangGraph
    /// removes writes only with their checkpoints, which the checkpoints' count tells.
    pub writes: i64,
}

/// The tables' stamp now.
pub fn stamp(conn: &Connection) -> Result<Stamp, String> {
    // Each aggregate alone: `max(rowid)` by itself is one step down the table's tree, where
    // beside `count(*)` it would read every row.
    let one = |sql: &str| -> Result<i64, String> {
        conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .map(Option::unwrap_or_default)
            .map_err(|e| format!("reading the tables: {e}"))
    };
    let newest_rowid = one("SELECT max(rowid) FROM checkpoints")?;
    let newest: String = conn
        .query_row(
            "SELECT coalesce(checkpoint_id, '') FROM checkpoints WHERE rowid = ?1",
            [newest_rowid],
            |r| r.get(0),
        )
        .unwrap_or_default();
    Ok(Stamp {
        checkpoints: (
            newest_rowid,
            newest,
            one("SELECT count(*) FROM checkpoints")?,
        ),
        writes: one("SELECT max(rowid) FROM writes")?,
    })
}

/// A checkpoint with the thread and namespace it belongs to.
pub type Placed = (String, String, Checkpoint);

/// The checkpoints stored after a rowid (new or replaced since a stamp), in id order, without
/// their writes.
pub fn checkpoints_after(conn: &Connection, rowid: i64) -> Result<Vec<Placed>, String> {
    let mut statement = conn
        .prepare(&format!(
            "{CHECKPOINT_COLUMNS} FROM checkpoints WHERE rowid > ?1 ORDER BY checkpoint_id"
        ))
        .map_err(|e| format!("reading checkpoints: {e}"))?;
    let mut rows = statement.query([rowid]).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        found.push(checkpoint_row(row)?);
    }
    Ok(found)
}

/// The checkpoints (thread, namespace, id) that writes stored after a rowid went under.
pub fn written_after(
    conn: &Connection,
    rowid: i64,
) -> Result<std::collections::BTreeSet<(String, String, String)>, String> {
    let mut statement = conn
        .prepare(
            // Not DISTINCT (the set is): with it, SQLite scans the whole table's index.
            "SELECT thread_id, coalesce(checkpoint_ns, ''), checkpoint_id FROM writes WHERE rowid > ?1",
        )
        .map_err(|e| format!("reading writes: {e}"))?;
    let found: rusqlite::Result<_> = statement
        .query_map([rowid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(Iterator::collect);
    found.map_err(|e| format!("reading writes: {e}"))
}

/// The writes of the tasks that started from one checkpoint.
pub fn writes_of(
    conn: &Connection,
    thread: &str,
    ns: &str,
    checkpoint: &str,
) -> Result<Vec<Write>, String> {
    Ok(raw_writes_of(conn, thread, ns, checkpoint)?
        .into_iter()
        .map(RawWrite::decode)
        .collect())
}

/// [`writes_of`], not decoded.
fn raw_writes_of(
    conn: &Connection,
    thread: &str,
    ns: &str,
    checkpoint: &str,
) -> Result<Vec<RawWrite>, String> {
    let query = |task_path: &str| {
        format!(
            "SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, {task_path}, idx, channel, type, value
             FROM writes WHERE thread_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id = ?3
             ORDER BY {task_path}, task_id, idx"
        )
    };
    // Files older than `task_path` lack it (and the statement with it does not prepare).
    let mut statement = match conn.prepare_cached(&query("task_path")) {
        Ok(statement) => statement,
        Err(_) => conn
            .prepare_cached(&query(task_path_column(conn)?))
            .map_err(|e| format!("reading writes: {e}"))?,
    };
    let mut rows = statement
        .query([thread, ns, checkpoint])
        .map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        found.push(raw_write_row(row)?.1);
    }
    Ok(found)
}

/// `task_path`, or an empty text in files older than it.
fn task_path_column(conn: &Connection) -> Result<&'static str, String> {
    let has = super::sqlite::columns(conn, "writes")?
        .iter()
        .any(|c| c == "task_path");
    Ok(if has { "task_path" } else { "''" })
}

const CHECKPOINT_COLUMNS: &str = "SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata";

/// One `writes` row (selected as in [`read`]) and the checkpoint it is under.
fn write_row(row: &rusqlite::Row<'_>) -> Result<((String, String, String), Write), String> {
    raw_write_row(row).map(|(key, raw)| (key, raw.decode()))
}

/// [`write_row`], not decoded.
fn raw_write_row(row: &rusqlite::Row<'_>) -> Result<((String, String, String), RawWrite), String> {
    let text = |i: usize| {
        row.get::<_, Option<String>>(i)
            .map(Option::unwrap_or_default)
    };
    let key = (text(0), text(1), text(2));
    let (Ok(thread), Ok(ns), Ok(id)) = key else {
        return Err("a write's thread, namespace or checkpoint id is not text".into());
    };
    let write = RawWrite {
        task_id: text(3).unwrap_or_default(),
        path: text(4).unwrap_or_default(),
        idx: row.get(5).unwrap_or(0),
        channel: text(6).unwrap_or_default(),
        kind: text(7).unwrap_or_default(),
        blob: blob(row, 8),
    };
    Ok(((thread, ns, id), write))
}

/// One `checkpoints` row (selected by [`CHECKPOINT_COLUMNS`]), without its writes.
fn checkpoint_row(row: &rusqlite::Row<'_>) -> Result<Placed, String> {
    raw_row(row)?.decode()
}

/// [`checkpoint_row`], not decoded.
fn raw_row(row: &rusqlite::Row<'_>) -> Result<Raw, String> {
    let text = |i: usize| row.get::<_, Option<String>>(i).ok().flatten();
    let (Some(thread), Some(ns), Some(id)) = (text(0), text(1).or(Some(String::new())), text(2))
    else {
        return Err("a checkpoint's thread or id is not text".into());
    };
    let metadata = match row.get_ref(6).map_err(|e| e.to_string())? {
        rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => Some(b.to_vec()),
        _ => None,
    };
    Ok(Raw {
        parent: text(3).filter(|p| !p.is_empty()),
        kind: text(4).unwrap_or_default(),
        blob: blob(row, 5),
        metadata,
        thread,
        ns,
        id,
        writes: Vec::new(),
    })
}

/// Whether a channel is LangGraph's own: the graph's input and internals (`__…`), branch
/// triggers (`branch:…`) and the barriers of edges with several sources (`join:…`).
pub fn internal(channel: &str) -> bool {
    channel.starts_with("__") || channel.starts_with("branch:") || channel.starts_with("join:")
}

/// The node a task ran, from its path (`~__pregel_pull, agent` → `agent`).
fn node_of(task_path: &str) -> String {
    task_path
        .rsplit(", ")
        .next()
        .unwrap_or_default()
        .trim_matches(|c| c == '(' || c == ')' || c == '\'')
        .to_owned()
}

/// The time in a version 6 UUID (60 bits of 100 ns since 1582-10-15), µs since the epoch.
pub fn uuid_time(id: &str) -> Option<Micros> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || hex.as_bytes()[12] != b'6' {
        return None;
    }
    let high = u64::from_str_radix(&hex[..8], 16).ok()?;
    let mid = u64::from_str_radix(&hex[8..12], 16).ok()?;
    let low = u64::from_str_radix(&hex[13..16], 16).ok()?;
    let ticks = (high << 28) | (mid << 12) | low;
    // 100 ns ticks between 1582-10-15 and 1970-01-01.
    const GREGORIAN: u64 = 0x01B2_1DD2_1381_4000;
    Micros::try_from(ticks.checked_sub(GREGORIAN)? / 10).ok()
}

/// A checkpoint's place: the branch (its index among those cut) and the version there.
type Place = (usize, u64);

/// Cuts a thread's tree (checkpoints in id order) into branches: the path from the root to
/// the newest checkpoint keeps the thread's name, and every other leaf's path, up to where it
/// meets a branch already cut, is a branch of its own.
fn branches(thread: &str, ns: &str, checkpoints: Vec<Checkpoint>) -> Vec<Branch> {
    let name = &stream_name(thread, ns);
    // The usual thread, one line: each checkpoint the child of the one before, ids ascending
    // (so the first's parent, if any, is none of them). What the walk below would cut too.
    let line = checkpoints
        .windows(2)
        .all(|w| w[0].id < w[1].id && w[1].parent.as_deref() == Some(w[0].id.as_str()))
        && checkpoints
            .first()
            .is_some_and(|c| c.parent.as_deref().is_none_or(|p| p < c.id.as_str()));
    if line {
        return vec![Branch {
            thread: thread.to_owned(),
            ns: ns.to_owned(),
            stream: name.clone(),
            fork: None,
            unfinished: checkpoints.last().is_some_and(|c| !c.writes.is_empty()),
            checkpoints,
        }];
    }
    let index: HashMap<&str, usize> = checkpoints
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let parent_of = |i: usize| {
        checkpoints[i]
            .parent
            .as_deref()
            .and_then(|p| index.get(p).copied())
    };
    let mut has_child = vec![false; checkpoints.len()];
    for i in 0..checkpoints.len() {
        if let Some(p) = parent_of(i) {
            has_child[p] = true;
        }
    }
    // Leaves, newest first: the first is the thread's own line. Then, for rows whose
    // parents go round in a circle (damage: no leaf leads to them), every checkpoint not yet
    // placed, newest first.
    let mut newest_first: Vec<usize> = (0..checkpoints.len()).collect();
    newest_first.sort_by(|a, b| checkpoints[*b].id.cmp(&checkpoints[*a].id));
    let leaves = newest_first.iter().copied().filter(|&i| !has_child[i]);
    let starts: Vec<usize> = leaves.chain(newest_first.iter().copied()).collect();
    // Which branch and version each checkpoint was given.
    let mut placed: Vec<Option<Place>> = vec![None; checkpoints.len()];
    // Each branch: where it forks, and its checkpoints (indices) oldest first.
    let mut cut: Vec<(Option<Place>, Vec<usize>)> = Vec::new();
    let mut on_path = vec![false; checkpoints.len()];
    for leaf in starts {
        if placed[leaf].is_some() {
            continue;
        }
        let mut path = vec![leaf];
        on_path[leaf] = true;
        let mut at = leaf;
        let mut fork = None;
        while let Some(p) = parent_of(at) {
            if let Some(place) = placed[p] {
                fork = Some(place);
                break;
            }
            // A cycle in damaged rows ends the walk rather than looping.
            if on_path[p] {
                break;
            }
            on_path[p] = true;
            path.push(p);
            at = p;
        }
        path.reverse();
        let branch = cut.len();
        let first = fork.map_or(1, |(_, v)| v + 1);
        for (k, &i) in path.iter().enumerate() {
            placed[i] = Some((branch, first + k as u64));
        }
        cut.push((fork, path));
    }
    let names: Vec<String> = cut
        .iter()
        .enumerate()
        .map(|(b, (_, path))| {
            if b == 0 {
                name.to_owned()
            } else {
                format!("{name}~{}", checkpoints[path[0]].id)
            }
        })
        .collect();
    let mut slots: Vec<Option<Checkpoint>> = checkpoints.into_iter().map(Some).collect();
    cut.iter()
        .enumerate()
        .map(|(b, (fork, path))| {
            let own: Vec<Checkpoint> = path.iter().filter_map(|&i| slots[i].take()).collect();
            let unfinished = own.last().is_some_and(|c| !c.writes.is_empty());
            Branch {
                thread: thread.to_owned(),
                ns: ns.to_owned(),
                stream: names[b].clone(),
                fork: fork.map(|(parent, version)| (names[parent].clone(), version)),
                checkpoints: own,
                unfinished,
            }
        })
        .collect()
}
