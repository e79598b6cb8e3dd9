//! Small builders shared by the tests.

use rewind::{Engine, NewEvent, Store};
use serde_json::Value;

pub fn engine() -> Engine {
    Engine::new(Store::open_in_memory().unwrap())
}

pub fn ev(stream: &str, kind: &str, data: Value) -> NewEvent {
    NewEvent {
        stream: stream.into(),
        kind: kind.into(),
        data,
        meta: None,
        time: None,
        idempotency_key: None,
    }
}

pub fn append(engine: &mut Engine, stream: &str, data: Value) -> rewind::Event {
    let report = engine
        .append(
            ev(stream, "Set", data),
            rewind::engine::AppendOptions::default(),
        )
        .unwrap();
    report.events.into_iter().next().unwrap()
}

/// Makes a database file look as rewind before event chains left it (schema 4): without
/// the chain columns.
pub const BEFORE_CHAINS: &str = "ALTER TABLE events DROP COLUMN chain;
     ALTER TABLE streams DROP COLUMN head_hash;
     DELETE FROM meta WHERE key = 'chain_pending';
     PRAGMA user_version = 4;";
