//! The snapshot lifecycle on top of the store and the engine: verify, stats, compaction,
//! maintenance (policy ticks and the maintainer lease), archive, backup and restore,
//! snapshot --all.
//! Library functions first; the CLI and the TUI call the same ones.

pub mod all;
pub mod archive;
pub mod backup;
pub mod compact;
pub mod maintain;
pub mod stats;
pub mod verify;

use std::path::Path;
use std::sync::Mutex;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::store::{OpenMode, Store};

/// Runs `each` over `items` on one worker thread per core (no more than there are items),
/// each with its own engine over the file opened in `mode`. Results come back in no
/// particular order; a worker that cannot open the file, or panics, is an error.
pub(crate) fn on_workers<T: Send, R: Send>(
    path: &Path,
    mode: OpenMode,
    items: Vec<T>,
    what: &str,
    each: impl Fn(&mut Engine, T) -> R + Sync,
) -> Result<Vec<R>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(items.len().max(1));
    let queue = Mutex::new(items.into_iter());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let worker = std::thread::Builder::new()
                    .name(format!("{}{what}", crate::step::THREAD_PREFIX))
                    .stack_size(crate::budget::THREAD_STACK);
                worker.spawn_scoped(
                    scope,
                    crate::budget::on_large_stack(|| -> Result<Vec<R>> {
                        let mut engine = Engine::new(Store::open(path, mode)?);
                        let mut out = Vec::new();
                        loop {
                            let next = queue
                                .lock()
                                .map_err(|_| Error::Input(format!("a {what} worker failed")))?
                                .next();
                            let Some(item) = next else { return Ok(out) };
                            out.push(each(&mut engine, item));
                        }
                    }),
                )
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            let handle =
                handle.map_err(|e| Error::Input(format!("cannot start a {what} worker: {e}")))?;
            all.extend(
                handle
                    .join()
                    .unwrap_or_else(|_| Err(Error::Input(format!("a {what} worker panicked"))))?,
            );
        }
        Ok(all)
    })
}
