//! Events' titles: a jq program a mapping gives (`[display] title`), run on each event the
//! debugger shows and each `rewind log` prints, never stored per event. The program is kept
//! in the mirror's meta at each sync, so every reader of the mirror shows the same titles.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::error::Result;
use crate::jq::Program;
use crate::model::Event;
use crate::store::Store;

/// The mirror's meta key holding the title program.
pub const META: &str = "display.title";

/// Longest title shown, in characters.
const WIDTH: usize = 80;

/// The most jq steps a title may take: a title is a few lookups, and a runaway program must
/// not hold up a screen of rows (a reducer may take `budget::STEPS`).
pub const STEPS: u64 = 10_000;

/// A title program, with the titles it gave so far.
pub struct Titles {
    program: Program,
    /// By seq.
    given: HashMap<i64, String>,
}

impl Titles {
    /// Compiles a title program.
    pub fn compile(source: &str) -> std::result::Result<Self, String> {
        let program = Program::compile(source).map_err(|e| e.to_string())?;
        Ok(Self {
            program,
            given: HashMap::new(),
        })
    }

    /// The title program a store keeps, if it keeps one that compiles (one that does not
    /// was refused when its mapping was read, so none is shown rather than an error on
    /// every row).
    pub fn of(store: &Store) -> Result<Option<Self>> {
        Ok(store
            .meta(META)?
            .and_then(|source| Self::compile(&source).ok()))
    }

    /// Keeps `source` as the store's title program, or none.
    pub fn keep(store: &Store, source: Option<&str>) -> Result<()> {
        match source {
            Some(source) if store.meta(META)?.as_deref() != Some(source) => {
                store.set_meta(META, source)
            }
            None if store.meta(META)?.is_some() => store.delete_meta(META),
            _ => Ok(()),
        }
    }

    /// Keeps a mapping's title program as the store's (inside the sync's transaction).
    pub fn keep_for(store: &Store, mapping: &crate::source::mapping::Mapping) -> Result<()> {
        Self::keep(
            store,
            mapping.display.as_ref().and_then(|d| d.title.as_deref()),
        )
    }

    /// The program's text.
    pub fn source(&self) -> &str {
        self.program.source()
    }

    /// The title given to the event at `seq` already, if any.
    pub fn known(&self, seq: i64) -> Option<&str> {
        self.given.get(&seq).map(String::as_str)
    }

    /// An event's title: the program's output, text as it is and anything else as compact
    /// JSON, control characters escaped and cut to a width; where the program fails, why.
    pub fn title(&mut self, event: &Event) -> String {
        if let Some(known) = self.given.get(&event.seq) {
            return known.clone();
        }
        let input = json!({
            "stream": event.stream,
            "version": event.version,
            "seq": event.seq,
            "type": event.kind,
            "time": crate::time::format(event.ts),
            "data": event.data,
            "meta": event.meta,
        });
        let text = shown(
            self.program
                .run_within(&input, &event.stream, event.version, STEPS),
        );
        self.given.insert(event.seq, text.clone());
        text
    }
}

/// What a title program's run shows: text as it is, nothing for null, anything else as
/// compact JSON, control characters escaped and cut to a width; where it failed, why.
pub fn shown(run: std::result::Result<Value, crate::reduce::ReduceError>) -> String {
    match run {
        Ok(Value::String(text)) => crate::text::clean(&text, WIDTH),
        Ok(Value::Null) => String::new(),
        Ok(other) => crate::text::clean(&other.to_string(), WIDTH),
        Err(e) => crate::text::clean(&format!("⚠ title: {e}"), WIDTH),
    }
}
