//! `snapshot --all`: a snapshot at the head of every stream that has none there, taken on one
//! worker per core, each with its own connection (SQLite serialises the short writes).

use std::path::Path;
use std::sync::Mutex;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::Target;
use crate::store::{OpenMode, SnapshotMeta, Store};

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
    let queue = Mutex::new(todo.into_iter());
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    let mut engine = Engine::new(Store::open(path, OpenMode::Existing)?);
                    loop {
                        let next = queue
                            .lock()
                            .map_err(|_| Error::Input("a snapshot worker failed".into()))?
                            .next();
                        let Some(name) = next else { return Ok(()) };
                        let outcome = engine.take_snapshot(&name, Target::Head, "manual", label);
                        done.lock()
                            .map_err(|_| Error::Input("a snapshot worker failed".into()))?
                            .push((name, outcome));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join()
                .unwrap_or_else(|_| Err(Error::Input("a snapshot worker panicked".into())))?;
        }
        Ok(())
    })?;
    let mut outcomes = done
        .into_inner()
        .map_err(|_| Error::Input("a snapshot worker failed".into()))?;
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(outcomes)
}
