//! The schema as an ordered list of migrations; `PRAGMA user_version` counts those applied.

/// Marks a file as rewind's (`PRAGMA application_id`, "RWND").
pub const APPLICATION_ID: i64 = 0x5257_4E44;

/// Forward migrations, oldest first. Entry `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE streams (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    reducer     TEXT,                       -- NULL: the database default
    created_at  INTEGER NOT NULL,
    head        INTEGER NOT NULL DEFAULT 0, -- newest version
    last_ts     INTEGER
);
CREATE TABLE events (
    seq       INTEGER PRIMARY KEY, -- assigned by the writer above every seq ever used
    stream_id INTEGER NOT NULL REFERENCES streams(id),
    version   INTEGER NOT NULL,
    type      TEXT    NOT NULL,
    ts        INTEGER NOT NULL,                  -- µs since the epoch
    data      TEXT    NOT NULL,                  -- plain JSON, so json_extract works
    meta      TEXT,
    idem_key  TEXT,
    UNIQUE (stream_id, version)
);
CREATE INDEX events_stream_ts ON events(stream_id, ts);
CREATE UNIQUE INDEX events_idem_key ON events(idem_key) WHERE idem_key IS NOT NULL;
CREATE TRIGGER events_append_only BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
CREATE TABLE snapshots (
    id          INTEGER PRIMARY KEY,
    stream_id   INTEGER NOT NULL REFERENCES streams(id),
    version     INTEGER NOT NULL,
    ts          INTEGER NOT NULL,      -- time of the event at `version`
    kind        TEXT    NOT NULL CHECK (kind IN ('full', 'delta')),
    base_id     INTEGER REFERENCES snapshots(id),
    codec       TEXT    NOT NULL,
    raw_size    INTEGER NOT NULL,
    stored_size INTEGER NOT NULL,
    checksum    BLOB    NOT NULL,      -- blake3 of the canonical JSON
    fingerprint TEXT    NOT NULL,      -- reducer fingerprint
    trigger     TEXT    NOT NULL,
    label       TEXT,
    created_at  INTEGER NOT NULL,      -- µs since the epoch
    create_us   INTEGER NOT NULL,      -- how long taking it took
    expires_at  INTEGER,
    blob        BLOB    NOT NULL,      -- last, so listing never reads it
    UNIQUE (stream_id, version)
);
CREATE INDEX snapshots_base ON snapshots(base_id) WHERE base_id IS NOT NULL;
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE maintenance_log (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    stream_id  INTEGER,
    detail     TEXT    NOT NULL,
    elapsed_us INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('default_reducer', 'merge');
",
    r"
-- v2: events at or below a stream's archived_upto live in the sidecar archive database.
ALTER TABLE streams ADD COLUMN archived_upto INTEGER NOT NULL DEFAULT 0;
",
    r"
-- v3: the database's identity, which its archive records as its owner.
INSERT INTO meta (key, value) SELECT 'database_id', lower(hex(randomblob(16)))
WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'database_id');
",
    r"
-- v4: a snapshot's checksum also covers where it belongs (stream name, version, reducer,
-- kind, base). Snapshots from before are bound by the engine once they are found equal to
-- their replay; until then (and the others for good) they are not used.
INSERT OR REPLACE INTO meta (key, value) VALUES ('bind_pending', '1');
",
    r"
-- v5: a per-stream hash chain over events' stored bytes (see chain.rs): each event keeps the
-- first 6 bytes of its chain value, each stream its full head. The engine fills them for the
-- events from before on the first write command (`chain_pending`).
ALTER TABLE events ADD COLUMN chain INTEGER;
ALTER TABLE streams ADD COLUMN head_hash BLOB;
INSERT OR REPLACE INTO meta (key, value) VALUES ('chain_pending', '1');
",
    r"
-- v6: a stream may continue another from a version (a fork): its versions up to
-- `base_version` are `base_id`'s events, read through rather than copied.
ALTER TABLE streams ADD COLUMN base_id INTEGER; -- a streams(id)
ALTER TABLE streams ADD COLUMN base_version INTEGER NOT NULL DEFAULT 0;
",
];

/// The first schema where a stream may continue another.
pub const LINEAGE_FROM: i64 = 6;

/// The first schema with event chains.
pub const CHAINS_FROM: i64 = 5;

/// The oldest schema a read-only open reads as it is (a writable open migrates it).
pub const READABLE_FROM: i64 = 2;

/// The sidecar archive's schema, for a new file on its own connection: the events table,
/// append-only as in the main file, and a meta table naming the database it belongs to
/// (`owner`) and itself (`archive_id`).
pub const ARCHIVE: &str = r"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE events (
    seq       INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL,
    version   INTEGER NOT NULL,
    type      TEXT    NOT NULL,
    ts        INTEGER NOT NULL,
    data      TEXT    NOT NULL,
    meta      TEXT,
    idem_key  TEXT,
    chain     INTEGER,
    UNIQUE (stream_id, version)
);
CREATE INDEX events_stream_ts ON events(stream_id, ts);
CREATE UNIQUE INDEX events_idem_key ON events(idem_key) WHERE idem_key IS NOT NULL;
CREATE TRIGGER events_append_only BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
";

/// Gives an archive made before event chains its `chain` column (filled by the engine with
/// the main file's, see `chain_pending`).
pub const ARCHIVE_CHAIN: &str = "ALTER TABLE archive.events ADD COLUMN chain INTEGER";

/// Lifts the append-only trigger of `{schema}.events` for the one pass that fills the chain
/// values of events from before chains, inside that pass's transaction.
pub const DROP_APPEND_ONLY: &str = "DROP TRIGGER IF EXISTS {schema}.events_append_only";

/// Puts the append-only trigger of `{schema}.events` back (the same as the schema's).
pub const CREATE_APPEND_ONLY: &str =
    "CREATE TRIGGER IF NOT EXISTS {schema}.events_append_only BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END";

/// Gives an archive made before archives had an identity its `meta` table, once it has been
/// found to belong to its database.
pub const ARCHIVE_META: &str = r"
CREATE TABLE IF NOT EXISTS archive.meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// The schema version this build writes.
#[allow(clippy::cast_possible_wrap)] // a handful of migrations
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// SQL for "now" in µs, evaluated by the database so that write times are the database's.
pub const NOW_US: &str = "CAST(unixepoch('subsec') * 1000000 AS INTEGER)";
