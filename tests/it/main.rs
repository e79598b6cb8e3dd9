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
//! - `maintain`: policy ticks over time, expiry, retention, the lease (also held by the binary,
//!   killed or stopped by a signal), lifecycle scenarios;
//! - `readme`: every command-line example in the README runs;
//! - `roundtrip`: export then import reproduces a database (the demo too); a second import
//!   changes nothing, and a line that would change something is refused, naming it;
//! - `jsonl`: arbitrary and mutated import files never panic, and errors name their line;
//! - `step`: the stepper's replays stay bounded without snapshots, and its provenance;
//! - `tui`: frames as text, key scripts against the model, styles in the buffer;
//! - `bursts`: keys arriving in bursts end on the frame single keys end on, and every frame
//!   on the way names one version and shows its state;
//! - `pty`: the built binary in a pseudo-terminal: keys in, snapshot taken, terminal restored;
//! - `verify`: every kind of finding, and none on a sound database;
//! - `chain`: tampered events found by `verify` and `verify --expect`, chains added to older
//!   files (archive included) on the first write command, heads carried by export;
//! - `cli`: the built binary on temp databases: output, exit codes, bad input;
//! - `seeds`: the shipped mappings of the seed systems on databases built as those systems
//!   build them: histories, the sources' own snapshots checked, stream attributes;
//! - `hostile`: read-only file systems, files and folders of another user, a killed writer's
//!   log, and refused files that get nothing made beside them.

// Helpers panic on setup failures by design: a test that cannot set up must fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod archive;
mod backup;
mod budget;
mod bursts;
mod chain;
mod cli;
mod compact;
mod crash;
mod delta;
mod engine;
mod hostile;
mod invariant;
mod jsonl;
mod lineage;
mod maintain;
mod mappings;
mod pg;
mod pty;
mod readme;
mod rfc;
mod roundtrip;
mod seeds;
mod sources;
mod step;
mod store;
mod support;
mod tui;
mod verify;
