//! Crash points for the tests that kill rewind in the middle of a write. With
//! `REWIND_CRASH_AT=NAME:N` in the environment the process aborts (no unwinding, no cleanup:
//! as `kill -9` would) the Nth time it reaches the point NAME; without it a point costs one
//! read of a `OnceLock`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
static REACHED: AtomicU64 = AtomicU64::new(0);

/// Marks a point where a crash must lose nothing.
pub fn point(name: &str) {
    let target = TARGET.get_or_init(|| {
        let spec = std::env::var("REWIND_CRASH_AT").ok()?;
        let (point, n) = spec.split_once(':')?;
        Some((point.to_string(), n.parse().ok()?))
    });
    if let Some((point, n)) = target
        && point == name
        && REACHED.fetch_add(1, Ordering::Relaxed) + 1 == *n
    {
        std::process::abort();
    }
}
