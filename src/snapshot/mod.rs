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
