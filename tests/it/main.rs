//! Integration tests, one binary. Table of contents:
//!
//! - `rfc`: every example of RFC 7386 and RFC 6902 through the reducers;
//! - `store`: opening, refusing bad files, append-only events, concurrency, locking;
//! - `archive`: history moved to DB.archive stays exact, and killed archive runs lose nothing;
//! - `backup`: backup while appending, restore that verifies first, snapshot --all;
//! - `budget`: jq reducers that never finish, recurse without end or build too much are
//!   refused by append, state, verify and render within the budget of one event, naming
//!   stream, version and limit; `reducer --set` tries a reducer on every event first;
//! - `compact`: compaction rules, dry run, rebasing, what is never dropped;
//! - `crash`: the process killed mid-import, mid-snapshot and mid-compaction loses nothing;
//! - `delta`: delta snapshots and the ways their bases fail;
//! - `engine`: reconstruction, the cache, snapshots and their faults, blame;
//! - `invariant`: the state at every version is the same with and without snapshots
//!   (property test over random streams, corrupted snapshots included), undo records give
//!   the whole diff, and the debugger's stepper agrees with a plain fold;
//! - `maintain`: policy ticks over time, expiry, retention, the lease, lifecycle scenarios;
//! - `readme`: every command-line example in the README runs;
//! - `step`: the stepper's replays stay bounded without snapshots, and its provenance;
//! - `tui`: frames as text, key scripts against the model, styles in the buffer;
//! - `pty`: the built binary in a pseudo-terminal: keys in, snapshot taken, terminal restored;
//! - `verify`: every kind of finding, and none on a sound database;
//! - `cli`: the built binary on temp databases: output, exit codes, bad input.

// Helpers panic on setup failures by design: a test that cannot set up must fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod archive;
mod backup;
mod budget;
mod cli;
mod compact;
mod crash;
mod delta;
mod engine;
mod invariant;
mod maintain;
mod pty;
mod readme;
mod rfc;
mod step;
mod store;
mod support;
mod tui;
mod verify;
