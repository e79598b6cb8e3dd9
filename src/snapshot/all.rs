//! `snapshot --all`: a snapshot at the head of every stream that has none there, taken on one
//! worker per core, each with its own connection (SQLite serialises the short writes).

use crate::error::Result;
use crate::model::Target;
use crate::store::{OpenMode, SnapshotMeta, Store};
use std::path::Path;

/// What `take_all` did for one stream.
pub type Outcome = (String, Result<SnapshotMeta>);

/// Takes the snapshots; each stream's outcome is reported, one failure does not stop others.
pub fn take_all(path: &Path, label: Option<&str>) -> Result<Vec<Outcome>> {
    let store = Store::open(path, OpenMode::Existing)?;
    let mut todo = Vec::new();
    for stream in store.streams()? {
        if stream.head > 0 && !store.has_snapshot(stream.id, stream.head)? {
            todo.push(stream.name);
        }
    }
    drop(store);
    let mut outcomes = super::on_workers(
        path,
        OpenMode::Existing,
        todo,
        "snapshot",
        |engine, name| {
            let outcome = engine.take_snapshot(&name, Target::Head, "manual", label);
            (name, outcome)
        },
    )?;
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(outcomes)
}
