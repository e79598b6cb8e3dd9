//! Other programs' histories: detecting a format, reading its rows and feeding the mirror.
//! The only place that knows a foreign schema or encoding (one file per format); it never
//! writes a source, and knows nothing of the terminal or the command line.
//!
//! - [`eventsourcing`]: Python `eventsourcing`'s stored events and snapshots (JSON with
//!   tagged values);
//! - [`sqlite`]: another program's SQLite file opened without writing anything, and what
//!   kind of file it is;
//! - [`guess`]: a first mapping guessed from an SQLite schema (`rewind map`);
//! - [`json_events`]: events of the user's own as a JSON array or JSON Lines, by a mapping;
//! - [`langgraph`]: LangGraph's `SqliteSaver` files, as branches of checkpoints;
//! - [`mapping`]: a mapping file (TOML): any database's table read as events;
//! - [`mirror`]: the rewind database a source is read through, brought up to date on open;
//! - [`msgpack`]: LangGraph's value encodings (its serializer's msgpack dialect), as JSON;
//! - [`redux`]: Redux DevTools exports (the actions, or the lifted state with its states);
//! - [`settings`]: what the user set for a source (its reducer), kept outside its mirror;
//! - [`temporal`]: a Temporal workflow history (JSON), as events for the `temporal` reducer.

pub mod eventsourcing;
pub mod formats;
pub mod guess;
pub mod json_events;
pub mod langgraph;
pub mod mapping;
pub mod mirror;
pub mod msgpack;
pub mod postgres;
pub mod redux;
pub mod settings;
pub mod sqlite;
pub mod temporal;

/// A name a source gives (a stream, an event type) as rewind can keep it: control characters
/// replaced, at most 200 characters.
pub(crate) fn name(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// `0123…` (32 hex digits, as Python's `UUID.hex`) as `01234567-89ab-cdef-0123-456789abcdef`.
pub(crate) fn dashed_uuid(hex: &str) -> Option<String> {
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}
