//! Work that takes longer than a frame runs on a worker thread with its own database
//! connection; the loop polls it and shows progress, so the debugger stays responsive.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crate::snapshot::verify::Report;

/// A `verify` of the whole database in the background.
pub struct VerifyJob {
    handle: JoinHandle<crate::Result<Report>>,
    /// Streams done and streams in all.
    progress: Arc<(AtomicUsize, AtomicUsize)>,
}

impl VerifyJob {
    /// Starts verifying the database file at `path` on a helper thread; where it mirrors
    /// `source`, the mirror is checked against the source too, as `rewind verify SOURCE` does
    /// (a mapped source's expiring snapshots as of `now`, else its newest time).
    pub fn start(
        path: PathBuf,
        source: Option<PathBuf>,
        now: Option<crate::model::Micros>,
    ) -> anyhow::Result<Self> {
        let progress = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let shared = Arc::clone(&progress);
        let handle = std::thread::Builder::new()
            .name(format!("{}verify", crate::step::THREAD_PREFIX))
            .stack_size(crate::budget::THREAD_STACK)
            .spawn(crate::budget::on_large_stack(move || {
                let mut report = crate::snapshot::verify::verify(&path, None, &|done, total| {
                    shared.0.store(done, Ordering::Relaxed);
                    shared.1.store(total, Ordering::Relaxed);
                })?;
                if let Some(source) = &source {
                    crate::source::mirror::check_mirror_at(source, &path, now, &mut report)?;
                }
                Ok(report)
            }))
            .map_err(|e| anyhow::anyhow!("cannot start the verify worker: {e}"))?;
        Ok(Self { handle, progress })
    }

    /// Streams verified so far, and in all (0 until the first is done).
    pub fn progress(&self) -> (usize, usize) {
        (
            self.progress.0.load(Ordering::Relaxed),
            self.progress.1.load(Ordering::Relaxed),
        )
    }

    /// Whether the worker has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the outcome.
    pub fn wait(self) -> anyhow::Result<Report> {
        match self.handle.join() {
            Ok(report) => Ok(report?),
            Err(_) => anyhow::bail!("the verify worker panicked"),
        }
    }
}
