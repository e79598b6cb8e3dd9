//! LangGraph's `PostgresSaver` tables mirrored: `checkpoints` (the checkpoint as JSONB, with
//! its primitive channel values inline), `checkpoint_blobs` (every other channel value, by
//! channel and version) and `checkpoint_writes` (the tasks' writes).
//!
//! The server's rows are first staged into a file of rewind's own beside the mirror, shaped as
//! a `SqliteSaver` file (each checkpoint whole: its inline values and the blobs of the versions
//! it names put back into one msgpack checkpoint), which is then mirrored as a `SqliteSaver`
//! file is ([`super::langgraph`]): branches, forks, subgraphs, unfinished runs and the checks
//! of `verify` are the same code for both savers. The staged file only ever grows while the
//! server's tables only grow, so the mirror's own sync stays incremental over it.
//!
//! Staging reads in one read-only, repeatable-read transaction, new checkpoints in the order
//! of their ids (LangGraph's ids are time-ordered UUIDs) a batch at a time, each batch with
//! its writes committed to the staged file with how far it got: a sync cut short resumes
//! there. Writes added under checkpoints already staged (a step's writes land under the
//! checkpoint it started from, before the next checkpoint) are found by their count and
//! staged by their keys. Rows removed or added among those staged have everything staged
//! again.

use std::path::{Path, PathBuf};

use postgres::{Client, Transaction};
use rusqlite::{Connection, params};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::Micros;
use crate::source::postgres::{Spec, describe};

use super::postgres::{ident, in_snapshot};

/// Checkpoints fetched from the server, and staged, at a time.
const BATCH: i32 = 500;

/// LangGraph's `PostgresSaver` tables in a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointTables {
    pub schema: String,
}

impl CheckpointTables {
    fn table(&self, name: &str) -> String {
        format!("{}.{}", ident(&self.schema), ident(name))
    }
}

/// The schemas on the search path holding `PostgresSaver`'s three tables.
pub fn find(client: &mut Client, spec: &Spec) -> Result<Vec<CheckpointTables>> {
    let rows = client
        .query(
            "SELECT table_schema::text FROM information_schema.columns
             WHERE table_schema = ANY (current_schemas(false))
               AND ((table_name = 'checkpoints' AND column_name IN
                      ('thread_id', 'checkpoint_ns', 'checkpoint_id', 'parent_checkpoint_id', 'checkpoint', 'metadata'))
                 OR (table_name = 'checkpoint_blobs' AND column_name IN
                      ('thread_id', 'checkpoint_ns', 'channel', 'version', 'type', 'blob'))
                 OR (table_name = 'checkpoint_writes' AND column_name IN
                      ('thread_id', 'checkpoint_ns', 'checkpoint_id', 'task_id', 'idx', 'channel', 'type', 'blob')))
             GROUP BY 1 HAVING count(*) = 20 ORDER BY 1",
            &[],
        )
        .map_err(|e| Error::Input(describe(spec, None, &e)))?;
    Ok(rows
        .into_iter()
        .map(|row| CheckpointTables { schema: row.get(0) })
        .collect())
}

/// Where a server source's checkpoints are staged, beside its mirror.
pub fn staged_path(mirror: &Path) -> PathBuf {
    crate::store::sidecar(mirror, ".staged")
}

/// `SqliteSaver`'s tables (with `task_path`), and what staging has read.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS checkpoints (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL DEFAULT '', checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT, type TEXT, checkpoint BLOB, metadata BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id));
CREATE TABLE IF NOT EXISTS writes (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL DEFAULT '', checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL, task_path TEXT NOT NULL DEFAULT '', idx INTEGER NOT NULL,
    channel TEXT NOT NULL, type TEXT, value BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx));
CREATE TABLE IF NOT EXISTS staged (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS checkpoints_by_id ON checkpoints (checkpoint_id);
CREATE INDEX IF NOT EXISTS writes_by_id ON writes (checkpoint_id);
";

/// How far staging has read: the tables it reads, how many checkpoints and writes it holds,
/// and the newest checkpoint's id.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    table: String,
    checkpoints: i64,
    newest: String,
    writes: i64,
}

/// How far back of the newest staged checkpoint each sync looks again for rows it has not
/// staged: a checkpoint's id is the time it was made, and a run's transaction may commit it
/// after another run's newer one was read.
const LATE: Micros = 60_000_000;

/// Opens (making it where it is not there) the staged file of a mirror.
pub fn open_staged(path: &Path) -> Result<Connection> {
    staged_file(path, SCHEMA)
}

/// Opens a file a server's rows are staged in (rewind's own), its tables made by `schema`.
pub(super) fn staged_file(path: &Path, schema: &str) -> Result<Connection> {
    let fail = |e: rusqlite::Error| Error::Input(format!("{}: {e}", path.display()));
    let conn = Connection::open(path).map_err(fail)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .map_err(fail)?;
    conn.execute_batch(schema).map_err(fail)?;
    Ok(conn)
}

fn held(conn: &Connection) -> Stamp {
    conn.query_row("SELECT value FROM staged WHERE key = 'stamp'", [], |r| {
        r.get::<_, String>(0)
    })
    .ok()
    .and_then(|text| serde_json::from_str(&text).ok())
    .unwrap_or_default()
}

/// The smallest time-ordered id (UUIDv6) of a checkpoint made `before` µs ahead of `id`
/// (`""`, below every id, where `id` is not one).
pub fn id_floor(id: &str, before: Micros) -> String {
    let Some(time) = crate::source::langgraph::uuid_time(id) else {
        return String::new();
    };
    const GREGORIAN: u64 = 0x01B2_1DD2_1381_4000;
    let Some(ticks) = u64::try_from(time.saturating_sub(before))
        .ok()
        .and_then(|t| t.checked_mul(10))
        .and_then(|t| t.checked_add(GREGORIAN))
    else {
        return String::new();
    };
    format!(
        "{:08x}-{:04x}-6{:03x}-0000-000000000000",
        (ticks >> 28) & 0xffff_ffff,
        (ticks >> 12) & 0xffff,
        ticks & 0xfff
    )
}

/// Brings the staged file up to date with the server's tables (everything staged again where
/// the server no longer holds what was staged as it was: the mirror's sync then finds its rows
/// replaced and says so).
pub fn stage(
    client: &mut Client,
    spec: &Spec,
    tables: &CheckpointTables,
    staged: &Connection,
    progress: super::Progress<'_>,
) -> Result<()> {
    let checkpoints = tables.table("checkpoints");
    in_snapshot(client, spec, &checkpoints, |tx| {
        Stager {
            spec,
            staged,
            checkpoints: &checkpoints,
            blobs: tables.table("checkpoint_blobs"),
            writes: tables.table("checkpoint_writes"),
        }
        .run(tx, progress)
    })
}

struct Stager<'a> {
    spec: &'a Spec,
    staged: &'a Connection,
    checkpoints: &'a str,
    blobs: String,
    writes: String,
}

/// A checkpoint's key, or a write's with its task and place.
type Key = (String, String, String);
type WriteKey = (String, String, String, String, i64);

impl Stager<'_> {
    fn server(&self, e: postgres::Error) -> Error {
        Error::Input(describe(self.spec, Some(self.checkpoints), &e))
    }

    fn local(&self, e: rusqlite::Error) -> Error {
        Error::Input(format!("staging {}: {e}", self.spec.shown()))
    }

    fn remote(&self, tx: &mut Transaction<'_>, sql: &str, at: Option<&str>) -> Result<i64> {
        let row = match at {
            Some(at) => tx.query_one(sql, &[&at]),
            None => tx.query_one(sql, &[]),
        };
        row.map(|r| r.get(0)).map_err(|e| self.server(e))
    }

    fn here(&self, sql: &str, at: &str) -> Result<i64> {
        self.staged
            .query_row(sql, [at], |r| r.get(0))
            .map_err(|e| self.local(e))
    }

    fn run(&self, tx: &mut Transaction<'_>, progress: super::Progress<'_>) -> Result<()> {
        let (checkpoints, writes) = (self.checkpoints, self.writes.as_str());
        let now = Stamp {
            table: checkpoints.to_owned(),
            checkpoints: self.remote(tx, &format!("SELECT count(*) FROM {checkpoints}"), None)?,
            newest: tx
                .query_one(
                    &format!("SELECT coalesce(max(checkpoint_id), '')::text FROM {checkpoints}"),
                    &[],
                )
                .map(|r| r.get(0))
                .map_err(|e| self.server(e))?,
            writes: self.remote(tx, &format!("SELECT count(*) FROM {writes}"), None)?,
        };
        let mut held = held(self.staged);
        if held == now {
            return Ok(());
        }
        // Below the floor, what is staged must still be on the server as it was: as many
        // checkpoints, and no fewer writes under them (more are staged by their keys).
        let floor = id_floor(&held.newest, LATE);
        let staged_anything = held.checkpoints > 0;
        let mut again = staged_anything && held.table != now.table;
        let mut writes_below = false;
        if staged_anything && !again && !floor.is_empty() {
            let at = Some(floor.as_str());
            let server = self.remote(
                tx,
                &format!("SELECT count(*) FROM {checkpoints} WHERE checkpoint_id <= $1"),
                at,
            )?;
            let here = self.here(
                "SELECT count(*) FROM checkpoints WHERE checkpoint_id <= ?1",
                &floor,
            )?;
            let server_writes = self.remote(
                tx,
                &format!("SELECT count(*) FROM {writes} WHERE checkpoint_id <= $1"),
                at,
            )?;
            let here_writes = self.here(
                "SELECT count(*) FROM writes WHERE checkpoint_id <= ?1",
                &floor,
            )?;
            again = server != here || server_writes < here_writes;
            writes_below = server_writes > here_writes;
        }
        if again {
            self.staged
                .execute_batch("DELETE FROM checkpoints; DELETE FROM writes; DELETE FROM staged;")
                .map_err(|e| self.local(e))?;
        }
        if again || !staged_anything {
            held = Stamp {
                table: now.table.clone(),
                ..Stamp::default()
            };
        }
        let floor = id_floor(&held.newest, LATE);
        self.checkpoints_above(tx, &floor, &mut held, now.checkpoints, progress)?;
        let above = if writes_below { "" } else { floor.as_str() };
        self.writes_above(tx, above, &mut held)
    }

    /// Stages the checkpoints above `floor` that staging lacks, oldest first, a batch at a
    /// time (each committed with how far it got).
    fn checkpoints_above(
        &self,
        tx: &mut Transaction<'_>,
        floor: &str,
        held: &mut Stamp,
        total: i64,
        progress: super::Progress<'_>,
    ) -> Result<()> {
        let (checkpoints, blobs) = (self.checkpoints, self.blobs.as_str());
        let keys = tx
            .bind(
                &format!(
                    "SELECT thread_id::text, checkpoint_ns::text, checkpoint_id::text FROM {checkpoints}
                     WHERE checkpoint_id > $1 ORDER BY checkpoint_id, thread_id, checkpoint_ns"
                ),
                &[&floor],
            )
            .map_err(|e| self.server(e))?;
        let rows = tx
            .prepare(&format!(
                "SELECT c.thread_id::text, c.checkpoint_ns::text, c.checkpoint_id::text,
                        c.parent_checkpoint_id::text, c.checkpoint::text, c.metadata::text,
                        coalesce(b.channels, '{{}}'), coalesce(b.kinds, '{{}}'), coalesce(b.blobs, '{{}}')
                 FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS k(t, n, i, o)
                 JOIN {checkpoints} c ON c.thread_id = k.t AND c.checkpoint_ns = k.n AND c.checkpoint_id = k.i
                 LEFT JOIN LATERAL (
                     SELECT array_agg(bl.channel::text ORDER BY bl.channel) AS channels,
                            array_agg(coalesce(bl.type::text, '') ORDER BY bl.channel) AS kinds,
                            array_agg(bl.blob::bytea ORDER BY bl.channel) AS blobs
                     FROM {blobs} bl
                     JOIN jsonb_each_text(c.checkpoint -> 'channel_versions') v
                       ON bl.channel = v.key AND bl.version = v.value
                     WHERE bl.thread_id = c.thread_id AND bl.checkpoint_ns = c.checkpoint_ns
                 ) b ON true
                 ORDER BY k.o"
            ))
            .map_err(|e| self.server(e))?;
        let todo = u64::try_from(total).unwrap_or(0);
        loop {
            let batch = tx.query_portal(&keys, BATCH).map_err(|e| self.server(e))?;
            let Some(last) = batch.last().map(|r| r.get::<_, String>(2)) else {
                break;
            };
            let missing = self.missing_checkpoints(&batch)?;
            let local = self
                .staged
                .unchecked_transaction()
                .map_err(|e| self.local(e))?;
            if !missing.is_empty() {
                let (t, n, i) = columns3(&missing);
                let mut insert = local
                    .prepare_cached(
                        "INSERT OR IGNORE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata)
                         VALUES (?1, ?2, ?3, ?4, 'msgpack', ?5, ?6)",
                    )
                    .map_err(|e| self.local(e))?;
                for row in tx.query(&rows, &[&t, &n, &i]).map_err(|e| self.server(e))? {
                    let channels: Vec<String> = row.get(6);
                    let kinds: Vec<String> = row.get(7);
                    let bytes: Vec<Option<Vec<u8>>> = row.get(8);
                    let found: Vec<Blob<'_>> = channels
                        .iter()
                        .zip(&kinds)
                        .zip(&bytes)
                        .map(|((channel, kind), blob)| Blob {
                            channel,
                            kind,
                            bytes: blob.as_deref(),
                        })
                        .collect();
                    let checkpoint: Option<String> = row.get(4);
                    let packed = staged_checkpoint(checkpoint.as_deref().unwrap_or("null"), &found)
                        .unwrap_or_else(|why| unreadable_checkpoint(&why));
                    let metadata: Option<String> = row.get(5);
                    let added = insert
                        .execute(params![
                            row.get::<_, String>(0),
                            row.get::<_, String>(1),
                            row.get::<_, String>(2),
                            row.get::<_, Option<String>>(3),
                            packed,
                            metadata.map(String::into_bytes),
                        ])
                        .map_err(|e| self.local(e))?;
                    held.checkpoints += i64::try_from(added).unwrap_or(0);
                }
            }
            if last > held.newest {
                held.newest = last;
            }
            save(&local, held).map_err(|e| self.local(e))?;
            local.commit().map_err(|e| self.local(e))?;
            crate::failpoint::point("postgres.batch");
            let done = u64::try_from(held.checkpoints).unwrap_or(0);
            progress(done, todo.max(done));
        }
        Ok(())
    }

    fn missing_checkpoints(&self, batch: &[postgres::Row]) -> Result<Vec<Key>> {
        let mut there = self
            .staged
            .prepare_cached(
                "SELECT 1 FROM checkpoints WHERE thread_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id = ?3",
            )
            .map_err(|e| self.local(e))?;
        let mut missing = Vec::new();
        for row in batch {
            let key: Key = (row.get(0), row.get(1), row.get(2));
            if !there
                .exists(params![key.0, key.1, key.2])
                .map_err(|e| self.local(e))?
            {
                missing.push(key);
            }
        }
        Ok(missing)
    }

    /// Stages the writes under checkpoints above `floor` (all of them, for `""`) that staging
    /// lacks, by their keys.
    fn writes_above(&self, tx: &mut Transaction<'_>, floor: &str, held: &mut Stamp) -> Result<()> {
        let writes = self.writes.as_str();
        let keys = tx
            .bind(
                &format!(
                    "SELECT thread_id::text, checkpoint_ns::text, checkpoint_id::text, task_id::text, idx::int8
                     FROM {writes} WHERE checkpoint_id > $1 ORDER BY checkpoint_id, thread_id, checkpoint_ns, task_id, idx"
                ),
                &[&floor],
            )
            .map_err(|e| self.server(e))?;
        let rows = tx
            .prepare(&format!(
                "SELECT w.thread_id::text, w.checkpoint_ns::text, w.checkpoint_id::text, w.task_id::text,
                        w.task_path::text, w.idx::int8, w.channel::text, w.type::text, w.blob::bytea
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[]) WITH ORDINALITY AS k(t, n, i, task, x, o)
                 JOIN {writes} w ON w.thread_id = k.t AND w.checkpoint_ns = k.n AND w.checkpoint_id = k.i
                                AND w.task_id = k.task AND w.idx = k.x
                 ORDER BY k.o"
            ))
            .map_err(|e| self.server(e))?;
        loop {
            let batch = tx
                .query_portal(&keys, BATCH * 4)
                .map_err(|e| self.server(e))?;
            if batch.is_empty() {
                break;
            }
            let missing = {
                let mut there = self
                    .staged
                    .prepare_cached(
                        "SELECT 1 FROM writes WHERE thread_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id = ?3 AND task_id = ?4 AND idx = ?5",
                    )
                    .map_err(|e| self.local(e))?;
                let mut missing: Vec<WriteKey> = Vec::new();
                for row in &batch {
                    let key: WriteKey =
                        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
                    if !there
                        .exists(params![key.0, key.1, key.2, key.3, key.4])
                        .map_err(|e| self.local(e))?
                    {
                        missing.push(key);
                    }
                }
                missing
            };
            if missing.is_empty() {
                continue;
            }
            let t: Vec<&str> = missing.iter().map(|k| k.0.as_str()).collect();
            let n: Vec<&str> = missing.iter().map(|k| k.1.as_str()).collect();
            let i: Vec<&str> = missing.iter().map(|k| k.2.as_str()).collect();
            let task: Vec<&str> = missing.iter().map(|k| k.3.as_str()).collect();
            let x: Vec<i64> = missing.iter().map(|k| k.4).collect();
            let local = self
                .staged
                .unchecked_transaction()
                .map_err(|e| self.local(e))?;
            for row in tx
                .query(&rows, &[&t, &n, &i, &task, &x])
                .map_err(|e| self.server(e))?
            {
                held.writes += insert_write(&local, &row).map_err(|e| self.local(e))?;
            }
            save(&local, held).map_err(|e| self.local(e))?;
            local.commit().map_err(|e| self.local(e))?;
        }
        let local = self
            .staged
            .unchecked_transaction()
            .map_err(|e| self.local(e))?;
        save(&local, held).map_err(|e| self.local(e))?;
        local.commit().map_err(|e| self.local(e))
    }
}

/// Keys as three columns, for `unnest`.
fn columns3(keys: &[Key]) -> (Vec<&str>, Vec<&str>, Vec<&str>) {
    (
        keys.iter().map(|k| k.0.as_str()).collect(),
        keys.iter().map(|k| k.1.as_str()).collect(),
        keys.iter().map(|k| k.2.as_str()).collect(),
    )
}

/// Stages a write; how many rows that added (none where it was staged already).
fn insert_write(conn: &Connection, row: &postgres::Row) -> rusqlite::Result<i64> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let added = insert.execute(params![
        row.get::<_, String>(0),
        row.get::<_, String>(1),
        row.get::<_, String>(2),
        row.get::<_, String>(3),
        row.get::<_, Option<String>>(4).unwrap_or_default(),
        row.get::<_, i64>(5),
        row.get::<_, String>(6),
        row.get::<_, Option<String>>(7),
        row.get::<_, Option<Vec<u8>>>(8),
    ])?;
    Ok(i64::try_from(added).unwrap_or(0))
}

fn save(conn: &Connection, held: &Stamp) -> rusqlite::Result<()> {
    let text = serde_json::to_string(held).unwrap_or_default();
    conn.execute(
        "INSERT OR REPLACE INTO staged (key, value) VALUES ('stamp', ?1)",
        [text],
    )
    .map(|_| ())
}

/// A channel's value in `checkpoint_blobs`: its serializer's type and bytes.
#[derive(Debug, Clone, Copy)]
pub struct Blob<'a> {
    pub channel: &'a str,
    pub kind: &'a str,
    pub bytes: Option<&'a [u8]>,
}

/// A `PostgresSaver` checkpoint (its JSONB as text, and the blobs of the channel versions it
/// names) as the msgpack checkpoint a `SqliteSaver` stores, as much of it as rewind reads: its
/// scalar fields (`v`, `id`, `ts`) and its channel values, the inline ones with each blob's
/// value put in its channel. An `empty` blob is a channel without a value (LangGraph leaves it
/// out); a value in a serializer rewind cannot read (pickle, encrypted) or nested too deep is
/// `{"$unreadable": why}` in its channel, so the rest of the state still shows.
pub fn staged_checkpoint(
    checkpoint: &str,
    blobs: &[Blob<'_>],
) -> std::result::Result<Vec<u8>, String> {
    let parsed: Value =
        serde_json::from_str(checkpoint).map_err(|e| format!("the checkpoint is not JSON: {e}"))?;
    let Value::Object(fields) = parsed else {
        return Err("the checkpoint is not a JSON object".into());
    };
    let mut packed: Vec<(String, Packed<'_>)> = Vec::with_capacity(4);
    let mut values = None;
    for (key, value) in fields {
        if key == "channel_values" {
            values = Some(value);
        } else if !value.is_object() && !value.is_array() {
            packed.push((key, Packed::Value(to_msgpack(value))));
        }
    }
    let values = values.ok_or("the checkpoint has no channel_values")?;
    let channels = write_map(&channel_values(values, blobs)?);
    packed.push(("channel_values".into(), Packed::Raw(&channels)));
    Ok(write_map(&packed))
}

/// How deep a channel's value may nest: the checkpoint and its channel map hold it.
const VALUE_DEPTH: usize = crate::reduce::MAX_DEPTH - 3;

/// A value to pack: made here, or msgpack bytes as stored, put in as they are.
enum Packed<'a> {
    Value(rmpv::Value),
    Raw(&'a [u8]),
}

/// A msgpack map of `entries`, text keys.
fn write_map(entries: &[(String, Packed<'_>)]) -> Vec<u8> {
    let mut out = Vec::new();
    match u32::try_from(entries.len()).unwrap_or(u32::MAX) {
        n @ 0..=15 => out.push(0x80 | n as u8),
        n @ 16..=0xffff => {
            out.push(0xde);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0xdf);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    for (key, value) in entries {
        // Writing to a Vec does not fail.
        let _ = rmpv::encode::write_value(&mut out, &rmpv::Value::from(key.as_str()));
        match value {
            Packed::Value(value) => {
                let _ = rmpv::encode::write_value(&mut out, value);
            }
            Packed::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
    out
}

fn channel_values<'a>(
    inline: Value,
    blobs: &[Blob<'a>],
) -> std::result::Result<Vec<(String, Packed<'a>)>, String> {
    let Value::Object(inline) = inline else {
        return Err("its channel_values is not an object".into());
    };
    let mut values: Vec<(String, Packed<'a>)> = inline
        .into_iter()
        .map(|(channel, value)| {
            let value = if crate::reduce::depth(&value) > VALUE_DEPTH {
                unreadable(&channel, "it nests too deep")
            } else {
                to_msgpack(value)
            };
            (channel, Packed::Value(value))
        })
        .collect();
    for blob in blobs {
        values.retain(|(channel, _)| channel != blob.channel);
        // Read as the mirror will read it (an extension's payload included): a value it
        // cannot read is unreadable in its channel only; one it can is put in as stored.
        let value = match (blob.kind, blob.bytes) {
            ("empty", _) => continue,
            ("msgpack", Some(bytes)) => match crate::source::msgpack::decode_msgpack(bytes) {
                Ok(value) if crate::reduce::depth(&value) > VALUE_DEPTH => {
                    Packed::Value(unreadable(blob.channel, "it nests too deep"))
                }
                Ok(_) => Packed::Raw(bytes),
                Err(e) => Packed::Value(unreadable(blob.channel, &e.to_string())),
            },
            (kind, bytes) => Packed::Value(
                match crate::source::msgpack::decode_typed(kind, bytes.unwrap_or_default()) {
                    Ok(value) if crate::reduce::depth(&value) > VALUE_DEPTH => {
                        unreadable(blob.channel, "it nests too deep")
                    }
                    Ok(value) => to_msgpack(value),
                    Err(e) => unreadable(blob.channel, &e.to_string()),
                },
            ),
        };
        values.push((blob.channel.to_owned(), value));
    }
    Ok(values)
}

fn unreadable(channel: &str, why: &str) -> rmpv::Value {
    rmpv::Value::Map(vec![(
        rmpv::Value::from("$unreadable"),
        rmpv::Value::from(format!("channel {channel}: {why}")),
    )])
}

/// A checkpoint whose JSON cannot be read, staged as one whose state is `{"$unreadable":
/// why}`: what the mirror shows for a checkpoint it cannot read.
fn unreadable_checkpoint(why: &str) -> Vec<u8> {
    let state = rmpv::Value::Map(vec![(
        rmpv::Value::from("$unreadable"),
        rmpv::Value::from(why),
    )]);
    let mut out = Vec::new();
    let _ = rmpv::encode::write_value(
        &mut out,
        &rmpv::Value::Map(vec![(rmpv::Value::from("channel_values"), state)]),
    );
    out
}

/// JSON as msgpack.
fn to_msgpack(value: Value) -> rmpv::Value {
    match value {
        Value::Null => rmpv::Value::Nil,
        Value::Bool(b) => rmpv::Value::Boolean(b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                rmpv::Value::from(u)
            } else if let Some(i) = n.as_i64() {
                rmpv::Value::from(i)
            } else {
                rmpv::Value::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => rmpv::Value::from(s),
        Value::Array(items) => rmpv::Value::Array(items.into_iter().map(to_msgpack).collect()),
        Value::Object(fields) => rmpv::Value::Map(
            fields
                .into_iter()
                .map(|(k, v)| (rmpv::Value::from(k), to_msgpack(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::msgpack::decode_member;

    #[test]
    fn a_checkpoint_is_its_inline_values_with_each_blob_in_its_channel() {
        let mut message = Vec::new();
        rmpv::encode::write_value(
            &mut message,
            &rmpv::Value::Array(vec![rmpv::Value::from("hi"), rmpv::Value::from(2)]),
        )
        .unwrap();
        let checkpoint = r#"{"v": 4, "id": "1f1ef52d-d256-65fd-8002-e807687300d4",
            "channel_versions": {"messages": "2", "gone": "1"},
            "channel_values": {"counter": 2, "big": 18446744073709551615, "flag": true,
                               "gone": "inline, then emptied", "delta": true}}"#;
        let blobs = [
            Blob {
                channel: "messages",
                kind: "msgpack",
                bytes: Some(&message),
            },
            Blob {
                channel: "gone",
                kind: "empty",
                bytes: None,
            },
            Blob {
                channel: "secret",
                kind: "pickle",
                bytes: Some(b"\x80\x04"),
            },
            Blob {
                channel: "bad",
                kind: "msgpack",
                bytes: Some(&[0x92, 0x01]),
            },
            // An extension whose payload is not what LangGraph writes: msgpack to rmpv, not
            // to the mirror's reader.
            Blob {
                channel: "ext",
                kind: "msgpack",
                bytes: Some(&[0xd4, 0x00, 0x92]),
            },
        ];
        let packed = staged_checkpoint(checkpoint, &blobs).unwrap();
        let values = decode_member("msgpack", &packed, "channel_values")
            .unwrap()
            .unwrap();
        assert_eq!(values["counter"], 2);
        assert_eq!(values["big"], serde_json::json!(18446744073709551615u64));
        assert_eq!(values["flag"], true);
        assert_eq!(values["messages"], serde_json::json!(["hi", 2]));
        assert!(values.get("gone").is_none(), "{values}");
        assert!(
            values["secret"]["$unreadable"]
                .as_str()
                .unwrap()
                .starts_with("channel secret:"),
            "{values}"
        );
        assert!(values["bad"]["$unreadable"].is_string(), "{values}");
        assert!(values["ext"]["$unreadable"].is_string(), "{values}");
        assert_eq!(
            decode_member("msgpack", &packed, "id").unwrap().unwrap(),
            "1f1ef52d-d256-65fd-8002-e807687300d4"
        );
        // Not a checkpoint: said, and staged as a state that says so.
        let err = staged_checkpoint("[1]", &[]).unwrap_err();
        assert!(err.contains("not a JSON object"), "{err}");
        let shown = decode_member("msgpack", &unreadable_checkpoint(&err), "channel_values")
            .unwrap()
            .unwrap();
        assert_eq!(shown["$unreadable"], err.as_str());
        // A value nested too deep for the mirror is unreadable in its channel only.
        let deep = format!(
            r#"{{"channel_values": {{"deep": {}1{}, "n": 1}}}}"#,
            "[".repeat(VALUE_DEPTH + 1),
            "]".repeat(VALUE_DEPTH + 1)
        );
        let packed = staged_checkpoint(&deep, &[]).unwrap();
        let values = decode_member("msgpack", &packed, "channel_values")
            .unwrap()
            .unwrap();
        assert_eq!(values["n"], 1);
        assert!(values["deep"]["$unreadable"].is_string(), "{values}");
    }

    #[test]
    fn the_floor_is_the_id_of_a_checkpoint_made_that_much_earlier() {
        use crate::source::langgraph::uuid_time;
        let id = "1f1ef52d-d256-65fd-8002-e807687300d4";
        let floor = id_floor(id, LATE);
        assert!(floor.as_str() < id);
        assert_eq!(uuid_time(&floor), Some(uuid_time(id).unwrap() - LATE));
        // Every id made after the floor's time sorts above it.
        let later = id_floor(id, LATE - 1);
        assert!(later > floor);
        assert_eq!(id_floor("not-an-id", LATE), "");
    }
}
