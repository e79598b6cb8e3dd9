//! The formats rewind reads, as `rewind sources` lists them and `--format` names them.

/// One format: its name, how it is recognised, and how it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Format {
    /// What `--format` calls it.
    pub name: &'static str,
    /// How a file of it is recognised.
    pub recognised_by: &'static str,
    /// What a stream is.
    pub stream: &'static str,
    /// What an event is, and its own id (`--at-id`).
    pub event: &'static str,
    /// How the state is made.
    pub state: &'static str,
    /// Whether rewind opens it yet.
    pub read: bool,
}

/// Every format, rewind's own first.
pub const FORMATS: [Format; 8] = [
    Format {
        name: "rewind",
        recognised_by: "an SQLite file with rewind's schema",
        stream: "stream",
        event: "event (version; global order: seq)",
        state: "the stream's reducer",
        read: true,
    },
    Format {
        name: "langgraph",
        recognised_by: "an SQLite file with LangGraph SqliteSaver's tables checkpoints and writes, or a postgres:// URL of a database with PostgresSaver's checkpoints, checkpoint_blobs and checkpoint_writes",
        stream: "a thread (and subgraph namespace); each fork a branch of its own",
        event: "a checkpoint (--at-id: its checkpoint_id)",
        state: "the checkpoint's channel values, stored in the mirror as differences; a DeltaChannel folded by the reducer you name (rewind reducer SOURCE --channel NAME --set append|update|jq:…)",
        read: true,
    },
    Format {
        name: "temporal",
        recognised_by: "JSON {\"events\": [...]} as `temporal workflow show --output json` writes it",
        stream: "the workflow",
        event: "a history event (--at-id: its eventId)",
        state: "the execution state: status, activities, timers, signals, result",
        read: true,
    },
    Format {
        name: "eventsourcing",
        recognised_by: "an SQLite file with Python eventsourcing's table stored_events, or a postgres:// URL of a database with its NAME_events table",
        stream: "an aggregate",
        event: "a stored event (--at-id and --at-seq: its notification id, the rowid)",
        state: "the user's jq reducer (rewind reducer SOURCE --set 'jq:…'); until one is set, the file's own snapshots and the events since",
        read: true,
    },
    Format {
        name: "marten",
        recognised_by: "a postgres:// URL of a database with Marten's mt_events (seq_id, id, stream_id, version, data, type, timestamp) in any schema",
        stream: "a stream (its stream_id; tenant/stream_id for a tenant other than the default)",
        event: "an event (--at-seq: its seq_id; --at-id: its id)",
        state: "your reducer (rewind reducer SOURCE --set SPEC), else merge; the stream snapshots in mt_streams are checked by verify, never used",
        read: true,
    },
    Format {
        name: "redux",
        recognised_by: "JSON a Redux DevTools Export writes: {\"payload\": …} (the actions) or {\"actionsById\": …, \"computedStates\": …} (the lifted state)",
        stream: "the session (named after the file)",
        event: "an action, @@INIT first (--at-id: its action id)",
        state: "the lifted state's own states; for the actions, your jq reducer (rewind reducer SOURCE --set 'jq:…', the action as .action) from the preloaded state",
        read: true,
    },
    Format {
        name: "json",
        recognised_by: "a JSON array or JSON Lines of objects with a field for the type (type, event_type, eventType, kind or event; --map names others)",
        stream: "a value of the stream's field (stream, stream_id, aggregate_id …; --map stream=FIELD), or the file",
        event: "an object (--at-seq: its position in the file; --at-id: its id field's value)",
        state: "your reducer (rewind reducer SOURCE --set SPEC), else merge",
        read: true,
    },
    Format {
        name: "mapped",
        recognised_by: "any other SQLite database, read through a mapping file (TOML) you name with --map FILE.toml, or one rewind ships (--map seed-000)",
        stream: "a value of the mapping's stream column",
        event: "a row of the mapping's events query (--at-seq: its seq column, kept as the mirror's seq; --at-id: its id column)",
        state: "the mapping's reducer, or yours (rewind reducer SOURCE --set SPEC), else merge",
        read: true,
    },
];

/// The format of that name.
pub fn named(name: &str) -> Option<&'static Format> {
    FORMATS.iter().find(|f| f.name == name)
}

/// The names, for messages: `rewind, langgraph, …`.
pub fn names() -> String {
    FORMATS
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What was looked for, one format a line, for a file that is none of them.
pub fn looked_for() -> String {
    FORMATS
        .iter()
        .map(|f| format!("  {}: {}", f.name, f.recognised_by))
        .collect::<Vec<_>>()
        .join("\n")
}
