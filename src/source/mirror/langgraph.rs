//! A LangGraph `SqliteSaver` file mirrored: one stream per branch of each thread and
//! namespace (the `delta` reducer: each checkpoint stored as its difference from the one
//! before), one event per checkpoint, in the order of its branch.
//!
//! An event carries, in its meta, the checkpoint's id and metadata and the writes that made it
//! (those of the tasks that started from the checkpoint before); its type is the nodes those
//! tasks ran. A checkpoint whose state cannot be read (pickle, encrypted, damaged) is an
//! `{"$unreadable": why}` state, never the state before it passed off as its own. The writes
//! under a branch's newest checkpoint are what a crashed or interrupted run did not finish:
//! kept beside the stream ([`PENDING`]), which makes it unfinished.
//!
//! Sync is incremental: a stamp of the source's tables tells that nothing changed without
//! reading them, and when rows were only added, each new checkpoint is appended to the
//! branch whose newest checkpoint ([`HEAD`], the stream's watermark) is its parent. Anything
//! else (rows removed or replaced, a new fork, writes under a checkpoint that already has a
//! child) has the mirror made again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use rusqlite::Connection;
use serde_json::{Map, Value, json};

use crate::engine::{Engine, Writer};
use crate::error::{Error, Result};
use crate::model::{NewEvent, Target};
use crate::reduce::delta;
use crate::snapshot::verify::{Finding, FindingKind};
use crate::source::langgraph::{self as format, Checkpoint, Stamp, Write};

use super::{ID_FIELD, Synced};

/// A mirror's snapshots: one every this many checkpoints.
const MIRROR_SNAPSHOT_EVERY: u64 = 16;

/// The source's stamp when the mirror was last brought up to date.
const STAMP: &str = "langgraph.stamp";
/// Per stream: `[thread, namespace, checkpoint id]` of its newest checkpoint.
pub const HEAD: &str = "langgraph.head.";
/// Per stream: the writes under its newest checkpoint, where there are any (unfinished).
pub const PENDING: &str = "langgraph.pending.";
/// Per stream: its thread's DeltaChannels, where it has any.
const DELTAS: &str = "langgraph.delta.";

/// The DeltaChannel folds the mirror was made with (the user's, from their settings).
const FOLDS: &str = "langgraph.folds";

/// A checkpoint's place in the source.
type Key = (String, String, String);

/// How the user folds a DeltaChannel's writes onto its value (LangGraph keeps the channel's
/// reducer in the user's code): `append` (a list extended by each write, a write that is not
/// a list pushed), `update` (an object updated by each write's members) or `jq:FILTER` (a
/// program from `{"value": …, "write": …}` to the new value).
#[derive(Clone)]
pub enum Fold {
    /// List append.
    Append,
    /// Dict update.
    Update,
    /// The user's program.
    Jq(crate::jq::Program),
}

/// The folds by DeltaChannel name.
pub type Folds = BTreeMap<String, Fold>;

impl Fold {
    /// Reads `append`, `update` or `jq:FILTER`.
    pub fn parse(spec: &str) -> std::result::Result<Self, String> {
        match spec {
            "append" => Ok(Self::Append),
            "update" => Ok(Self::Update),
            _ => match spec.strip_prefix("jq:") {
                Some(program) => crate::jq::Program::compile(program)
                    .map(Self::Jq)
                    .map_err(|e| e.to_string()),
                None => Err(format!(
                    "{spec:?}: a DeltaChannel's reducer is append, update or jq:FILTER (over {{value, write}})"
                )),
            },
        }
    }

    /// The value after one write.
    fn apply(
        &self,
        value: Value,
        write: &Value,
        channel: &str,
    ) -> std::result::Result<Value, String> {
        match self {
            Self::Append => {
                let mut list = match value {
                    Value::Array(list) => list,
                    Value::Null => Vec::new(),
                    other => return Err(format!("its value is not a list but {other}")),
                };
                match write {
                    Value::Array(items) => list.extend(items.iter().cloned()),
                    item => list.push(item.clone()),
                }
                Ok(Value::Array(list))
            }
            Self::Update => {
                let mut map = match value {
                    Value::Object(map) => map,
                    Value::Null => Map::new(),
                    other => return Err(format!("its value is not an object but {other}")),
                };
                match write {
                    Value::Object(members) => {
                        map.extend(members.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                    other => return Err(format!("a write is not an object but {other}")),
                }
                Ok(Value::Object(map))
            }
            Self::Jq(program) => program
                .run(&json!({"value": value, "write": write}), channel, 0)
                .map_err(|e| e.to_string()),
        }
    }
}

/// The folds the user set (their settings' `channels`), read.
pub fn folds(specs: &BTreeMap<String, String>) -> Result<Folds> {
    specs
        .iter()
        .map(|(channel, spec)| {
            Fold::parse(spec)
                .map(|fold| (channel.clone(), fold))
                .map_err(|e| Error::Input(format!("the reducer for DeltaChannel {channel:?}: {e}")))
        })
        .collect()
}

/// Brings the mirror up to date with the file, reading it in one read transaction.
pub(super) fn sync(
    engine: &mut Engine,
    conn: &Connection,
    source: &Path,
    deltas: &mut Deltas,
    specs: &BTreeMap<String, String>,
    progress: super::Progress<'_>,
) -> Result<Synced> {
    let at_source = |what: String| Error::Input(format!("{}: {what}", source.display()));
    let folds = folds(specs)?;
    let folds_text = serde_json::to_string(specs).map_err(|e| Error::Input(e.to_string()))?;
    // One snapshot of the source for the stamp and every row read after it.
    conn.execute_batch("BEGIN")
        .map_err(|e| at_source(e.to_string()))?;
    let file = File {
        conn,
        path: source,
        folds: &folds,
        folds_text: &folds_text,
    };
    let outcome = sync_in(engine, &file, deltas, progress);
    let _ = conn.execute_batch("COMMIT");
    outcome
}

/// The file being mirrored: its connection (inside one read transaction) and its path.
struct File<'a> {
    conn: &'a Connection,
    path: &'a Path,
    /// The user's DeltaChannel folds, and as the mirror records them.
    folds: &'a Folds,
    folds_text: &'a str,
}

impl File<'_> {
    /// An error reading it, naming it.
    fn error(&self, what: String) -> Error {
        Error::Input(format!("{}: {what}", self.path.display()))
    }
}

fn sync_in(
    engine: &mut Engine,
    file: &File<'_>,
    deltas: &mut Deltas,
    progress: super::Progress<'_>,
) -> Result<Synced> {
    let (conn, source) = (file.conn, file.path);
    let stamp = format::stamp(conn).map_err(|e| file.error(e))?;
    // Nothing new (what a follower finds twice a second): told by a read, no write lock taken.
    let unchanged = {
        let store = engine.store();
        let held = store.meta(STAMP)?;
        held.as_deref()
            .and_then(|text| serde_json::from_str::<Stamp>(text).ok())
            .is_some_and(|held| held == stamp)
            && store.meta(FOLDS)?.as_deref().unwrap_or("{}") == file.folds_text
    };
    if unchanged {
        return Ok(Synced::UpToDate);
    }
    engine.write(|engine| {
        let store = engine.store();
        let held = store.meta(STAMP)?;
        if held.is_some() && store.meta(FOLDS)?.as_deref().unwrap_or("{}") != file.folds_text {
            return Ok(Synced::Rebuild(Some(format!(
                "{}: the reducers of its DeltaChannels changed; its mirror was made again",
                source.display()
            ))));
        }
        let old = held
            .as_deref()
            .and_then(|text| serde_json::from_str::<Stamp>(text).ok());
        if old.as_ref() == Some(&stamp) {
            return Ok(Synced::UpToDate);
        }
        let outcome = match old {
            Some(old) => append(engine, file, (&old, &stamp), deltas)?,
            None if store.streams()?.is_empty() => {
                store.set_meta("source.format", "langgraph")?;
                store.set_meta("source.path", &super::canonical_text(source))?;
                store.set_meta(ID_FIELD, "checkpoint_id")?;
                store.set_meta(FOLDS, file.folds_text)?;
                // A checkpoint is looked at alone more often than an event is: a snapshot
                // every 16 keeps one a handful of differences away (they are small deltas).
                let policy = crate::engine::Policy {
                    every: Some(MIRROR_SNAPSHOT_EVERY),
                    full_every: Some(16),
                    ..crate::engine::Policy::default()
                };
                engine.set_policy(None, &policy)?;
                build(engine, file, deltas, progress)?
            }
            // Streams but no stamp: a mirror some other build of rewind made.
            None => Synced::Rebuild(None),
        };
        if let Synced::UpToDate = outcome {
            let text = serde_json::to_string(&stamp).map_err(|e| Error::Input(e.to_string()))?;
            engine.store().set_meta(STAMP, &text)?;
        }
        Ok(outcome)
    })
}

/// The DeltaChannels of each thread and namespace, as learned so far.
pub(super) type Deltas = HashMap<(String, String), BTreeSet<String>>;

/// Mirrors a whole file into a mirror held in memory (for checks and measurements: a real
/// mirror lives in a file, [`super::resolve`]).
pub fn mirror_in_memory(conn: &Connection, source: &Path) -> Result<Engine> {
    let mut deltas = Deltas::new();
    for _ in 0..2 {
        let mut engine = Engine::new(crate::store::Store::open_in_memory()?);
        let none = BTreeMap::new();
        if let Synced::UpToDate = sync(&mut engine, conn, source, &mut deltas, &none, &|_, _| {})? {
            return Ok(engine);
        }
    }
    Err(Error::Input(format!(
        "{}: the mirror had to be made again twice",
        source.display()
    )))
}

/// Mirrors the whole file into an empty mirror, a few checkpoints in memory at a time. A
/// DeltaChannel first seen after checkpoints of its thread were mirrored without it is added
/// to `deltas` and the mirror must be made again (knowing it from the start).
///
/// Two threads share the work: this one reads each checkpoint's rows and appends its event to
/// the mirror, a [`Decoder`] decodes the rows and takes the difference from the checkpoint
/// before (about half of the work each). Events come back in the order the rows were read.
fn build(
    engine: &mut Engine,
    file: &File<'_>,
    deltas: &mut Deltas,
    progress: super::Progress<'_>,
) -> Result<Synced> {
    let conn = file.conn;
    let branches = format::outline(conn).map_err(|e| file.error(e))?;
    let total: u64 = branches.iter().map(|b| b.checkpoints.len() as u64).sum();
    let mut decoder = Decoder::new(&branches, deltas, file.folds);
    let (trash, trash_rx) = std::sync::mpsc::channel::<crate::model::Event>();
    let mut appender = Appender {
        branches: &branches,
        trash,
        writer: Writer::new(false),
        current: None,
        done: 0,
        total,
        progress,
    };
    // Rows read, ahead of the decoder, at most.
    const AHEAD: usize = 64;
    let late = std::thread::scope(|scope| -> Result<bool> {
        let (rows_tx, rows_rx) = std::sync::mpsc::sync_channel::<(usize, format::Raw)>(AHEAD);
        let (done_tx, done_rx) = std::sync::mpsc::channel::<std::result::Result<Decoded, String>>();
        let worker = std::thread::Builder::new()
            .stack_size(crate::budget::THREAD_STACK)
            .spawn_scoped(
                scope,
                crate::budget::on_large_stack(move || {
                    for (branch, raw) in rows_rx {
                        while trash_rx.try_recv().is_ok() {}
                        let decoded = decoder.take(branch, raw);
                        let failed = decoded.is_err();
                        if done_tx.send(decoded).is_err() || failed {
                            break;
                        }
                    }
                    decoder.late
                }),
            )
            .map_err(|e| Error::Input(format!("starting a thread to decode checkpoints: {e}")))?;
        // A thread of one branch is read in one pass over each table.
        let whole = format::whole_threads(&branches);
        let read = (|| -> Result<()> {
            for (index, branch) in branches.iter().enumerate() {
                let whole_thread = whole[index];
                // Fails with None where the decoder stopped: what it says why is among the
                // decoded.
                let sent = format::read_branch(
                    conn,
                    branch,
                    whole_thread,
                    |e| Some(file.error(e)),
                    |raw| {
                        rows_tx.send((index, raw)).map_err(|_| None)?;
                        while let Ok(decoded) = done_rx.try_recv() {
                            appender.take(engine, file, decoded).map_err(Some)?;
                        }
                        Ok(())
                    },
                );
                match sent {
                    Ok(()) => {}
                    Err(None) => return Ok(()),
                    Err(Some(e)) => return Err(e),
                }
            }
            Ok(())
        })();
        drop(rows_tx);
        read?;
        for decoded in done_rx {
            appender.take(engine, file, decoded)?;
        }
        worker
            .join()
            .map_err(|_| Error::Input("the thread decoding checkpoints failed".into()))
    })?;
    appender.writer.finish(engine)?;
    progress(total, total);
    if late {
        return Ok(Synced::Rebuild(None));
    }
    for branch_stream in engine.store().streams()? {
        let Some(key) = engine
            .store()
            .meta(&format!("{HEAD}{}", branch_stream.name))?
            .and_then(|text| serde_json::from_str::<Key>(&text).ok())
        else {
            continue;
        };
        if let Some(known) = deltas.get(&(key.0, key.1)).filter(|k| !k.is_empty()) {
            let names = serde_json::to_string(known).map_err(|e| Error::Input(e.to_string()))?;
            engine
                .store()
                .set_meta(&format!("{DELTAS}{}", branch_stream.name), &names)?;
        }
    }
    Ok(Synced::UpToDate)
}

/// A checkpoint decoded into its event, for the branch at an index of the outline.
struct Decoded {
    branch: usize,
    event: NewEvent,
    /// Its data and meta as JSON text.
    texts: (String, Option<String>),
    /// For a branch's newest checkpoint: its id and the writes under it (pending).
    head: Option<(String, Vec<Write>)>,
}

/// What a checkpoint's event is taken against: the state shown for the checkpoint before it,
/// and the writes under that one (which made it).
type Before = (Value, Vec<Write>);

/// Decodes the checkpoints of a build in the order they are read (branch by branch, each
/// oldest first), keeping what the next one needs: the state shown and the writes under the
/// checkpoint before, and those of each checkpoint a later branch forks from.
struct Decoder<'a> {
    branches: &'a [format::Branch],
    /// The index of each branch by its stream's name.
    by_name: HashMap<&'a str, usize>,
    deltas: &'a mut Deltas,
    folds: &'a Folds,
    /// The branch being decoded, its next checkpoint's place, state before it and the writes
    /// that make it.
    at: Option<(usize, usize)>,
    state: Value,
    consumed: Vec<Write>,
    /// The state and writes at each (branch, version) another branch forks from.
    forks: HashMap<(usize, u64), Option<Before>>,
    started: HashSet<(String, String)>,
    /// The thread and namespace of the branch being decoded, and whether checkpoints of it
    /// were decoded before the branch began.
    thread: (String, String),
    begun: bool,
    /// A DeltaChannel was first seen after checkpoints of its thread were decoded without it.
    late: bool,
}

impl<'a> Decoder<'a> {
    fn new(branches: &'a [format::Branch], deltas: &'a mut Deltas, folds: &'a Folds) -> Self {
        let by_name: HashMap<&str, usize> = branches
            .iter()
            .enumerate()
            .map(|(i, b)| (b.stream.as_str(), i))
            .collect();
        let forks = branches
            .iter()
            .filter_map(|b| b.fork.as_ref())
            .filter_map(|(parent, version)| {
                Some(((*by_name.get(parent.as_str())?, *version), None))
            })
            .collect();
        Self {
            branches,
            by_name,
            deltas,
            folds,
            at: None,
            state: json!({}),
            consumed: Vec::new(),
            forks,
            started: HashSet::new(),
            thread: Default::default(),
            begun: false,
            late: false,
        }
    }

    /// The event for the next checkpoint of the branch at `index`.
    fn take(&mut self, index: usize, raw: format::Raw) -> std::result::Result<Decoded, String> {
        let branch = &self.branches[index];
        let next = match self.at {
            Some((at, next)) if at == index => next,
            _ => {
                // A branch begins: from nothing, or from the checkpoint it forks from.
                self.thread = (branch.thread.clone(), branch.ns.clone());
                self.begun = !self.started.insert(self.thread.clone());
                (self.state, self.consumed) = match &branch.fork {
                    None => (json!({}), Vec::new()),
                    Some((parent, version)) => self
                        .by_name
                        .get(parent.as_str())
                        .and_then(|p| self.forks.get(&(*p, *version)))
                        .cloned()
                        .flatten()
                        .ok_or_else(|| {
                            format!(
                                "branch {} forks from a checkpoint not read before it",
                                branch.stream
                            )
                        })?,
                };
                0
            }
        };
        let (_, _, mut checkpoint) = raw.decode()?;
        // Its thread had checkpoints decoded before this one: in this branch, or in another.
        let begun = next > 0 || self.begun;
        let known = self.deltas.entry(self.thread.clone()).or_default();
        for name in &checkpoint.delta_channels {
            if known.insert(name.clone()) && begun {
                self.late = true;
            }
        }
        let (event, after) = event(
            &branch.stream,
            &mut checkpoint,
            &self.state,
            &self.consumed,
            known,
            self.folds,
        );
        let version = branch.fork.as_ref().map_or(1, |(_, v)| v + 1) + next as u64;
        if let Some(slot) = self.forks.get_mut(&(index, version)) {
            *slot = Some((after.clone(), checkpoint.writes.clone()));
        }
        self.state = after;
        // The writes under this checkpoint made the next one (or are pending under the newest).
        self.consumed = std::mem::take(&mut checkpoint.writes);
        self.at = Some((index, next + 1));
        let head =
            (next + 1 == branch.checkpoints.len()).then(|| (checkpoint.id, self.consumed.clone()));
        let texts = (
            event.data.to_string(),
            event.meta.as_ref().map(Value::to_string),
        );
        Ok(Decoded {
            branch: index,
            event,
            texts,
            head,
        })
    }
}

/// Appends decoded checkpoints to the mirror, each branch's stream made as it begins (a
/// fork's continuing its parent from the checkpoint it forks from, the prefix they share
/// stored once, in the parent).
struct Appender<'a> {
    branches: &'a [format::Branch],
    /// Events appended, for the decoder to drop.
    trash: std::sync::mpsc::Sender<crate::model::Event>,
    writer: Writer,
    current: Option<usize>,
    done: u64,
    total: u64,
    progress: super::Progress<'a>,
}

impl Appender<'_> {
    fn take(
        &mut self,
        engine: &mut Engine,
        file: &File<'_>,
        decoded: std::result::Result<Decoded, String>,
    ) -> Result<()> {
        let decoded = decoded.map_err(|e| file.error(e))?;
        let branch = &self.branches[decoded.branch];
        if self.current != Some(decoded.branch) {
            self.current = Some(decoded.branch);
            match &branch.fork {
                // The shared prefix is the parent's, read through.
                Some((parent, version)) => {
                    self.writer.sync(engine, parent)?;
                    let parent = engine.store().require_stream(parent)?;
                    engine.create_fork(&branch.stream, Some("delta"), &parent, *version)?;
                }
                None => {
                    engine
                        .store()
                        .create_stream(&branch.stream, Some("delta"))?;
                }
            }
        }
        crate::failpoint::point("mirror");
        let event = self
            .writer
            .push_texts(engine, decoded.event, Some(decoded.texts), None)?;
        // Dropped on the decoder's thread, which has the time.
        let _ = self.trash.send(event);
        if let Some((head, pending)) = decoded.head {
            let key = (branch.thread.clone(), branch.ns.clone(), head);
            mark_head(engine, &branch.stream, &key, &pending)?;
        }
        self.done += 1;
        if self.done.is_multiple_of(1024) {
            (self.progress)(self.done, self.total);
        }
        Ok(())
    }
}

/// Appends what was added to the file since `old`, or says the mirror must be made again.
fn append(
    engine: &mut Engine,
    file: &File<'_>,
    (old, now): (&Stamp, &Stamp),
    deltas: &mut Deltas,
) -> Result<Synced> {
    let (conn, source) = (file.conn, file.path);
    let at_source = |what: String| file.error(what);
    let fresh = format::checkpoints_after(conn, old.checkpoints.0).map_err(at_source)?;
    let expected = old.checkpoints.2 + fresh.len() as i64;
    if now.checkpoints.2 < old.checkpoints.2 {
        return Ok(Synced::Rebuild(Some(format!(
            "{}: {} checkpoints were removed from the source since it was last read; its mirror was made again without them",
            source.display(),
            old.checkpoints.2 - now.checkpoints.2
        ))));
    }
    if now.checkpoints.2 != expected || now.writes < old.writes {
        return Ok(Synced::Rebuild(Some(format!(
            "{}: checkpoints or writes already mirrored were replaced or removed in the source; its mirror was made again",
            source.display()
        ))));
    }
    let written = format::written_after(conn, old.writes).map_err(at_source)?;
    let mut heads: HashMap<Key, String> = HashMap::new();
    for (name, value) in engine.store().meta_with_prefix(HEAD)? {
        if let Ok((thread, ns, id)) = serde_json::from_str::<Key>(&value) {
            heads.insert((thread, ns, id), name[HEAD.len()..].to_owned());
        }
    }
    let mut writer = Writer::new(false);
    let mut states: HashMap<String, Value> = HashMap::new();
    let mut consumed: HashSet<Key> = HashSet::new();
    let mut moved: HashMap<String, Key> = HashMap::new();
    for (thread, ns, mut checkpoint) in fresh {
        let (thread, ns) = (&thread, &ns);
        let stream = match &checkpoint.parent {
            Some(parent) => {
                let key = (thread.clone(), ns.clone(), parent.clone());
                match heads.remove(&key) {
                    Some(stream) => {
                        consumed.insert(key);
                        stream
                    }
                    // A child of a checkpoint that already has one: a new fork.
                    None => return Ok(Synced::Rebuild(None)),
                }
            }
            None => {
                let name = format::stream_name(thread, ns);
                let store = engine.store();
                if store.stream(&name)?.is_some() {
                    return Ok(Synced::Rebuild(None));
                }
                store.create_stream(&name, Some("delta"))?;
                name
            }
        };
        let before = match states.remove(&stream) {
            Some(state) => state,
            None => (*engine.state_at(&stream, Target::Head)?.state).clone(),
        };
        let writes = match &checkpoint.parent {
            Some(parent) => format::writes_of(conn, thread, ns, parent).map_err(at_source)?,
            None => Vec::new(),
        };
        let key = format!("{DELTAS}{stream}");
        let known: BTreeSet<String> = engine
            .store()
            .meta(&key)?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        if checkpoint.delta_channels.iter().any(|c| !known.contains(c)) {
            // A DeltaChannel not known before: the checkpoints before it show it too.
            deltas
                .entry((thread.clone(), ns.clone()))
                .or_default()
                .extend(
                    known
                        .into_iter()
                        .chain(checkpoint.delta_channels.iter().cloned()),
                );
            return Ok(Synced::Rebuild(None));
        }
        let (event, after) = event(
            &stream,
            &mut checkpoint,
            &before,
            &writes,
            &known,
            file.folds,
        );
        crate::failpoint::point("mirror");
        writer.push(engine, event, None)?;
        states.insert(stream.clone(), after);
        let key = (thread.clone(), ns.clone(), checkpoint.id.clone());
        heads.insert(key.clone(), stream.clone());
        moved.insert(stream, key);
    }
    writer.finish(engine)?;
    // New writes go under a branch's newest checkpoint (pending) or were consumed above;
    // anywhere else they change what the mirror already shows.
    for key in &written {
        if consumed.contains(key) {
            continue;
        }
        match heads.get(key) {
            Some(stream) => {
                moved.entry(stream.clone()).or_insert_with(|| key.clone());
            }
            None => {
                return Ok(Synced::Rebuild(Some(format!(
                    "{}: writes were added under checkpoint {} of thread {:?}, which a later checkpoint already follows; its mirror was made again",
                    source.display(),
                    key.2,
                    key.0
                ))));
            }
        }
    }
    for (stream, key) in moved {
        let pending = format::writes_of(conn, &key.0, &key.1, &key.2).map_err(at_source)?;
        mark_head(engine, &stream, &key, &pending)?;
    }
    Ok(Synced::UpToDate)
}

/// Records a stream's newest checkpoint and the writes pending under it.
fn mark_head(engine: &Engine, stream: &str, key: &Key, pending: &[Write]) -> Result<()> {
    let store = engine.store();
    let text = serde_json::to_string(key).map_err(|e| Error::Input(e.to_string()))?;
    store.set_meta(&format!("{HEAD}{stream}"), &text)?;
    let pending_key = format!("{PENDING}{stream}");
    let shown = writes_json(pending);
    if shown.is_empty() {
        store.delete_meta(&pending_key)
    } else {
        store.set_meta(&pending_key, &Value::Array(shown).to_string())
    }
}

/// The event for a checkpoint, and the state after it. `before` is the state of the
/// checkpoint before it in its branch, `consumed` the writes under that one.
fn event(
    stream: &str,
    checkpoint: &mut Checkpoint,
    before: &Value,
    consumed: &[Write],
    delta_channels: &BTreeSet<String>,
    folds: &Folds,
) -> (NewEvent, Value) {
    let mut meta = Map::new();
    meta.insert("checkpoint_id".into(), checkpoint.id.clone().into());
    if !checkpoint.metadata.is_null() {
        let mut metadata = checkpoint.metadata.clone();
        // `parents` is empty but in subgraphs; said once here rather than in every event.
        if let Value::Object(fields) = &mut metadata
            && fields.get("parents").is_some_and(|p| p == &json!({}))
        {
            fields.remove("parents");
        }
        meta.insert("metadata".into(), metadata);
    }
    if let Some(input) = &checkpoint.input {
        meta.insert("input".into(), input.clone());
    }
    let after = match std::mem::replace(&mut checkpoint.state, Ok(Value::Null)) {
        Ok(state) => shown_state(state, before, delta_channels, consumed, folds),
        Err(why) => {
            meta.insert("unreadable".into(), why.clone().into());
            json!({ "$unreadable": why })
        }
    };
    let writes = consumed_json(consumed, &after);
    if !writes.is_empty() {
        meta.insert("writes".into(), Value::Array(writes));
    }
    let event = NewEvent {
        stream: stream.to_owned(),
        kind: kind(checkpoint, consumed),
        data: delta::between(before, &after),
        meta: Some(Value::Object(meta)),
        time: Some(checkpoint.time),
        idempotency_key: None,
    };
    (event, after)
}

/// An event's type: the nodes whose writes made the checkpoint, or where the file does not
/// say, the checkpoint's `source` (`input`, `loop`, `update`, `fork`).
fn kind(checkpoint: &Checkpoint, consumed: &[Write]) -> String {
    let mut nodes: Vec<&str> = Vec::new();
    for write in consumed {
        if !write.node.is_empty() && !nodes.contains(&write.node.as_str()) {
            nodes.push(&write.node);
        }
    }
    // Files older than `task_path` name the nodes in the metadata's `writes`.
    if nodes.is_empty()
        && let Some(Value::Object(by_node)) = checkpoint.metadata.get("writes")
    {
        nodes.extend(by_node.keys().map(String::as_str));
    }
    let text = if nodes.is_empty() {
        checkpoint
            .metadata
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or("checkpoint")
            .to_owned()
    } else {
        nodes.join("+")
    };
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    if clean.is_empty() {
        "checkpoint".into()
    } else {
        clean
    }
}

/// The member a DeltaChannel's value is shown under where the checkpoint does not store it.
pub const DELTA_CHANNEL: &str = "$delta_channel";

/// The state a checkpoint is shown as: its stored channels, and for each DeltaChannel
/// (`delta_channels`) it does not store, its value folded with the user's reducer for it
/// (`folds`), or where they set none, `{"$delta_channel": {"snapshot": …, "writes_since":
/// […]}}`: the channel's last stored value and what was written to it since (LangGraph folds
/// them with the channel's reducer, which lives in the user's code). `before` is the state
/// shown for the checkpoint before, `consumed` the writes that made this one.
fn shown_state(
    stored: Value,
    before: &Value,
    delta_channels: &BTreeSet<String>,
    consumed: &[Write],
    folds: &Folds,
) -> Value {
    let mut state = stored;
    let Value::Object(channels) = &mut state else {
        return state;
    };
    for name in delta_channels {
        if channels.contains_key(name) {
            continue;
        }
        let (snapshot, mut since) = match before.get(name) {
            Some(Value::Object(wrapped)) if wrapped.contains_key(DELTA_CHANNEL) => {
                let inner = &wrapped[DELTA_CHANNEL];
                (
                    inner.get("snapshot").cloned().unwrap_or(Value::Null),
                    inner
                        .get("writes_since")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                )
            }
            Some(value) => (value.clone(), Vec::new()),
            None => (Value::Null, Vec::new()),
        };
        since.extend(consumed.iter().filter(|w| w.channel == *name).map(|w| {
            w.value
                .clone()
                .unwrap_or_else(|why| json!({ "$unreadable": why }))
        }));
        let folded = folds.get(name).map(|fold| {
            // Before any snapshot or write, the channel holds its reducer's empty value.
            let start = match (&snapshot, fold) {
                (Value::Null, Fold::Append) => json!([]),
                (Value::Null, Fold::Update) => json!({}),
                _ => snapshot.clone(),
            };
            since.iter().try_fold(start, |value, write| {
                if let Some(why) = crate::reduce::unreadable(write) {
                    return Err(format!("a write could not be read: {why}"));
                }
                fold.apply(value, write, name)
            })
        });
        let shown = match folded {
            Some(Ok(value)) => value,
            // Unfolded, saying why, rather than a value the fold did not give.
            Some(Err(why)) => json!({ DELTA_CHANNEL: {
                "snapshot": snapshot, "writes_since": since, "fold_failed": why
            } }),
            None => json!({ DELTA_CHANNEL: { "snapshot": snapshot, "writes_since": since } }),
        };
        channels.insert(name.clone(), shown);
    }
    state
}

/// The writes that made a checkpoint, as kept with its event, in LangGraph's order. Where one
/// node wrote them all (the event's type names it), `[channel]` for a channel of the state
/// (what it wrote is in the event's difference: the Diff pane shows it) and `[channel,
/// value]` for any other (`__interrupt__`, `__error__` …); where several nodes did, `[node,
/// channel, value]` each. A value that cannot be shown is `{"$unreadable": why}`. Task ids
/// are left to the source ([`PENDING`] writes show them).
fn consumed_json(writes: &[Write], after: &Value) -> Vec<Value> {
    let shown = writes
        .iter()
        .filter(|w| !w.channel.starts_with("branch:") && !w.channel.starts_with("join:"));
    let one_node = shown
        .clone()
        .all(|w| w.node == writes.first().map_or("", |f| f.node.as_str()));
    shown
        .map(|w| {
            let value = || {
                w.value
                    .clone()
                    .unwrap_or_else(|why| json!({ "$unreadable": why }))
            };
            let in_state = w.value.is_ok() && after.get(&w.channel).is_some();
            match (one_node, in_state) {
                (true, true) => json!([w.channel]),
                (true, false) => json!([w.channel, value()]),
                (false, _) => json!([w.node, w.channel, value()]),
            }
        })
        .collect()
}

/// Writes as shown: node, task, channel and value (or why it cannot be shown), and the index
/// where it is not a plain one (interrupts, resumes, errors). Branch triggers and barriers are
/// LangGraph's bookkeeping and left out.
fn writes_json(writes: &[Write]) -> Vec<Value> {
    writes
        .iter()
        .filter(|w| !w.channel.starts_with("branch:") && !w.channel.starts_with("join:"))
        .map(|w| {
            let mut shown = Map::new();
            if !w.node.is_empty() {
                shown.insert("node".into(), w.node.clone().into());
            }
            shown.insert("task".into(), w.task_id.clone().into());
            shown.insert("channel".into(), w.channel.clone().into());
            match &w.value {
                Ok(value) => shown.insert("value".into(), value.clone()),
                Err(why) => shown.insert("unreadable".into(), why.clone().into()),
            };
            if w.idx < 0 {
                shown.insert("idx".into(), w.idx.into());
            }
            Value::Object(shown)
        })
        .collect()
}

/// What checking a mirror against its file found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Checkpoints whose state the mirror reproduced exactly.
    pub equal: u64,
    /// Checkpoints the file cannot show (pickle, encrypted, damaged), so nothing to compare.
    pub unreadable: u64,
    /// Checkpoints in the file the mirror does not hold yet (written since it was synced).
    pub newer: u64,
    /// Where the mirror and the file disagree.
    pub findings: Vec<Finding>,
}

/// Replays every mirrored stream and compares the state after each event with the
/// checkpoint the file stores for it: the mirror must reproduce every one exactly. The file
/// is read a branch at a time, in one pass where it can be ([`format::read_branch`]), so a
/// check holds a few checkpoints in memory, not the file.
pub fn check(
    engine: &mut Engine,
    conn: &Connection,
    source: &Path,
    folds: &Folds,
) -> Result<Checked> {
    conn.execute_batch("BEGIN")
        .map_err(|e| Error::Input(format!("{}: {e}", source.display())))?;
    let outcome = check_in(engine, conn, source, folds);
    let _ = conn.execute_batch("COMMIT");
    outcome
}

fn check_in(
    engine: &mut Engine,
    conn: &Connection,
    source: &Path,
    folds: &Folds,
) -> Result<Checked> {
    let at_source = |e: String| Error::Input(format!("{}: {e}", source.display()));
    let branches = format::outline(conn).map_err(at_source)?;
    let mut checked = Checked::default();
    engine.read(|engine| {
        // A thread's branches together: the DeltaChannels of any of its checkpoints shape
        // how every checkpoint of it is shown, so a thread whose check finds one not known
        // when it began is checked again knowing it.
        let mut start = 0;
        while start < branches.len() {
            let key = (&branches[start].thread, &branches[start].ns);
            let end = start
                + branches[start..]
                    .iter()
                    .take_while(|b| (&b.thread, &b.ns) == key)
                    .count();
            let thread = &branches[start..end];
            let check = Check {
                conn,
                source,
                folds,
                whole_thread: thread.len() == 1,
            };
            let mut known = BTreeSet::new();
            loop {
                let knew = known.len();
                let mut tally = Checked::default();
                for branch in thread {
                    check.branch(engine, branch, &mut known, &mut tally)?;
                }
                if known.len() == knew {
                    checked.equal += tally.equal;
                    checked.unreadable += tally.unreadable;
                    checked.newer += tally.newer;
                    checked.findings.extend(tally.findings);
                    break;
                }
            }
            start = end;
        }
        Ok(())
    })?;
    Ok(checked)
}

/// What checking a branch reads.
struct Check<'a> {
    conn: &'a Connection,
    source: &'a Path,
    folds: &'a Folds,
    /// Whether the branch is its thread's only one.
    whole_thread: bool,
}

impl Check<'_> {
    /// Checks one branch's stream against the branch's checkpoints, adding the DeltaChannels
    /// met to `known`.
    fn branch(
        &self,
        engine: &mut Engine,
        branch: &format::Branch,
        known: &mut BTreeSet<String>,
        checked: &mut Checked,
    ) -> Result<()> {
        let (conn, source) = (self.conn, self.source);
        let at_source = |e: String| Error::Input(format!("{}: {e}", source.display()));
        let finding = |stream: &str, version: Option<u64>, detail: String| Finding {
            stream: stream.to_owned(),
            version,
            kind: FindingKind::Source,
            detail,
            diff: Vec::new(),
        };
        let info = engine.store().stream(&branch.stream)?;
        let head = info.as_ref().map_or(0, |i| i.head);
        let reducer = match &info {
            Some(info) => Some(engine.reducer(&info.reducer)?),
            None => None,
        };
        let first = branch.fork.as_ref().map_or(1, |(_, v)| v + 1);
        // The mirror's events, read a page at a time as the checkpoints come.
        const PAGE: usize = 512;
        let mut page: std::collections::VecDeque<crate::model::Event> = Default::default();
        let mut next = 1_u64;
        let mut state = json!({});
        // The writes that made the branch's first checkpoint: those under its parent, where
        // the file holds the parent.
        let mut consumed = match branch.checkpoints.first().and_then(|c| c.parent.as_deref()) {
            Some(parent)
                if held(conn, &branch.thread, &branch.ns, parent).map_err(at_source)? =>
            {
                format::writes_of(conn, &branch.thread, &branch.ns, parent).map_err(at_source)?
            }
            _ => Vec::new(),
        };
        let mut version = first;
        format::read_branch(conn, branch, self.whole_thread, at_source, |raw| {
            let (_, _, mut checkpoint) = raw.decode().map_err(at_source)?;
            let at = version;
            version += 1;
            known.extend(checkpoint.delta_channels.iter().cloned());
            let writes = std::mem::take(&mut checkpoint.writes);
            'compared: {
                let (Some(info), Some(reducer)) = (&info, &reducer) else {
                    checked.newer += 1;
                    break 'compared;
                };
                if at > head {
                    checked.newer += 1;
                    break 'compared;
                }
                // The mirror's state after the event at `at`, and the one before it.
                let mut before = Value::Null;
                let mut event = None;
                while next <= at {
                    if page.is_empty() {
                        let to = (next + PAGE as u64 - 1).min(head);
                        page.extend(engine.store().events(info, next, to, PAGE)?);
                    }
                    let Some(held) = page.pop_front() else { break };
                    if next == at && !known.is_empty() {
                        before = state.clone();
                    }
                    super::apply_event(reducer, &info.name, &held, &mut state).map_err(|e| {
                        Error::Input(format!("{} v{}: {e}", info.name, held.version))
                    })?;
                    next = held.version + 1;
                    event = Some(held);
                }
                let Some(event) = event.filter(|e| e.version == at) else {
                    break 'compared;
                };
                let held_id = event
                    .meta
                    .as_ref()
                    .and_then(|m| m.get("checkpoint_id"))
                    .and_then(Value::as_str);
                if held_id != Some(checkpoint.id.as_str()) {
                    checked.findings.push(finding(
                        &info.name,
                        Some(at),
                        format!(
                            "the event is checkpoint {}, where the file has checkpoint {}",
                            held_id.unwrap_or("(none)"),
                            checkpoint.id
                        ),
                    ));
                    break 'compared;
                }
                let want = std::mem::replace(&mut checkpoint.state, Ok(Value::Null))
                    .map(|stored| shown_state(stored, &before, known, &consumed, self.folds));
                match want {
                    Ok(want) if want == state => checked.equal += 1,
                    Ok(want) => checked.findings.push(Finding {
                        diff: crate::diff::changes(&want, &state),
                        ..finding(
                            &info.name,
                            Some(at),
                            format!(
                                "the state after checkpoint {} differs from the one the file stores",
                                checkpoint.id
                            ),
                        )
                    }),
                    Err(_) => checked.unreadable += 1,
                }
            }
            // The writes under this checkpoint made the next one.
            consumed = writes;
            Ok(())
        })?;
        // Events past the branch's newest checkpoint in the file.
        if let Some(info) = &info {
            let last = first + branch.checkpoints.len() as u64 - 1;
            for past in (last + 1).max(first)..=head {
                checked.findings.push(finding(
                    &info.name,
                    Some(past),
                    "the mirror holds an event past the branch's newest checkpoint in the file"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}

/// Whether the file holds a checkpoint.
fn held(conn: &Connection, thread: &str, ns: &str, id: &str) -> std::result::Result<bool, String> {
    conn.query_row(
        "SELECT count(*) FROM checkpoints WHERE thread_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id = ?3",
        [thread, ns, id],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|e| format!("reading checkpoints: {e}"))
}
