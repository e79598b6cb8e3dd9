//! The snapshot lifecycle on top of the store and the engine: verification now; policies,
//! compaction, archive and maintenance as they come. Library functions first; the CLI and
//! the TUI call the same ones.

pub mod all;
pub mod backup;
pub mod compact;
pub mod stats;
pub mod verify;
