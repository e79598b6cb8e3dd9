//! rewind: a time-travel debugger for event-sourced and checkpointed application state.
//!
//! The crate is layered; each layer only knows the ones before it:
//!
//! - [`model`]: streams, events, versions, targets, provenance (plain data);
//! - [`store`]: the SQLite file, its schema and every query (the only SQL);
//! - [`codec`]: canonical JSON, checksums and zstd frames for snapshots; [`chain`], the
//!   per-stream hash chain over events' stored bytes;
//! - [`diff`]: structural and textual differences between two states;
//! - [`reduce`] (with [`jq`]): what an event does to a state, within the [`budget`] of one
//!   event, and [`undo`] to take it back;
//! - [`engine`]: reconstruction (`state_at`), its cache, blame, appends and imports, and
//!   [`step`], the debugger's way through a stream (in place, forward and back), and
//!   [`trial`], a reducer tried on every event before it is set;
//! - [`snapshot`]: the snapshot lifecycle (verify, …), with [`process`] for whether the
//!   holder of the maintainer lease (or an archive run) still runs;
//! - [`jsonl`]: the import/export line format, and [`transfer`], import and export through it
//!   (events with the reducers, policies and labelled snapshots that decide the states);
//! - [`demo`]: the built-in demo database.
//!
//! The two faces sit on top and call the same engine: the command line ([`cli`]) and the
//! terminal UI ([`tui`]).

pub mod budget;
pub mod chain;
pub mod cli;
pub mod codec;
pub mod demo;
pub mod diff;
pub mod engine;
pub mod error;
pub mod failpoint;
pub mod filter;
pub mod jq;
pub mod jsonl;
pub mod model;
pub mod process;
pub mod reduce;
pub mod snapshot;
pub mod source;
pub mod step;
pub mod store;
pub mod summary;
pub mod text;
pub mod time;
pub mod title;
pub mod transfer;
pub mod trial;
pub mod tui;
pub mod undo;

pub use engine::Engine;
pub use error::{Error, Result};
pub use model::{Event, NewEvent, Target};
pub use store::{OpenMode, Store};
