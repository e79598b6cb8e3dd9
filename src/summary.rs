//! What each event on screen did, in a few words: the debugger's summary column. By default
//! the top-level keys of the state the event changed (`node → call_tool, messages`); where
//! the user's settings give a title program for the event's stream or type, what it returns
//! over `{state, event}`; where only a mapping gives one ([`crate::title`]), that. Computed
//! for the rows on screen and cached by seq, never stored.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::engine::Engine;
use crate::error::Result;
use crate::jq::Program;
use crate::model::{Event, StreamInfo, Target};
use crate::title::Titles;

/// Longest summary kept, in characters.
const WIDTH: usize = 80;

/// A changed key's new value is shown after it when it is a scalar this short.
const VALUE_WIDTH: usize = 24;

/// Rows of a stream this close together are summarised in one replay rather than two
/// reconstructions.
const GAP: u64 = 64;

/// The user's title programs: by stream name or glob, and by event type.
#[derive(Default)]
pub struct Rules {
    /// In the order the settings give them; the first whose glob matches the stream wins.
    streams: Vec<(String, Program)>,
    types: HashMap<String, Program>,
}

impl Rules {
    /// Compiles the programs of a source's settings; one that does not compile is an error
    /// naming its stream or type.
    pub fn compile(
        streams: &BTreeMap<String, String>,
        types: &BTreeMap<String, String>,
    ) -> std::result::Result<Self, String> {
        let program = |what: String, source: &str| {
            Program::compile(source).map_err(|e| format!("the title for {what}: {e}"))
        };
        let mut rules = Self::default();
        // Exact names before globs, so `order-7` beats `order-*` whatever their order.
        let mut ordered: Vec<(&String, &String)> = streams.iter().collect();
        ordered.sort_by_key(|(name, _)| name.contains(['*', '?']));
        for (name, source) in ordered {
            rules
                .streams
                .push((name.clone(), program(format!("stream {name:?}"), source)?));
        }
        for (kind, source) in types {
            rules
                .types
                .insert(kind.clone(), program(format!("type {kind:?}"), source)?);
        }
        Ok(rules)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.types.is_empty()
    }

    /// The program for an event of this stream and type, if any: a stream's before a type's.
    fn rule(&self, stream: &str, kind: &str) -> Option<&Program> {
        self.streams
            .iter()
            .find(|(glob, _)| crate::text::glob(glob, stream))
            .map(|(_, p)| p)
            .or_else(|| self.types.get(kind))
    }
}

/// The user's title programs for a database or source, from their settings for it; one that
/// does not compile is an error naming the settings file.
pub fn rules_for(path: &std::path::Path) -> std::result::Result<Rules, String> {
    let settings = crate::source::settings::load(path).map_err(|e| e.to_string())?;
    Rules::compile(&settings.stream_titles, &settings.type_titles).map_err(|e| {
        let file = crate::source::settings::path(path)
            .map_or_else(|_| "your settings".to_string(), |f| f.display().to_string());
        format!("{file}: {e}")
    })
}

/// The summaries given so far, by seq, and how to give more.
#[derive(Default)]
pub struct Summaries {
    /// The user's title programs.
    rules: Rules,
    given: HashMap<i64, String>,
    /// What the last run of each stream cost: µs, and how many events it summarised.
    cost: HashMap<String, (f64, u64)>,
    /// Whether rows were left without a summary, to give when there is time.
    pub pending: bool,
}

impl Summaries {
    /// Summaries given with the user's title programs.
    pub fn with(rules: Rules) -> Self {
        Self {
            rules,
            ..Self::default()
        }
    }

    /// Forgets every summary given (the reducer or the rules may have changed).
    pub fn clear(&mut self) {
        self.given.clear();
    }

    /// The summaries of `rows` (read without their data), in their order. A mapping's
    /// title program, where there is one and no rule of the user's applies, titles an event
    /// without its state; everything else is summarised by replaying the rows' streams from
    /// the state before the first row of each run.
    ///
    /// With a `budget`, a run whose events cost more than it did last time (megabyte states
    /// under a reducer that replays them) is left for later: its rows say nothing for now and
    /// `pending` is set, so that a held key never waits for them.
    pub fn of(
        &mut self,
        engine: &mut Engine,
        rows: &[Event],
        mut mapping: Option<&mut Titles>,
        budget: Option<std::time::Duration>,
    ) -> Result<Vec<String>> {
        self.pending = false;
        let mut wanted: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for e in rows {
            if self.given.contains_key(&e.seq) {
                continue;
            }
            let ruled = self.rules.rule(&e.stream, &e.kind).is_some();
            match mapping.as_deref_mut() {
                Some(titles) if !ruled => {
                    let title = match titles.known(e.seq) {
                        Some(known) => known.to_owned(),
                        None => match engine.store().stream(&e.stream)? {
                            Some(info) => engine
                                .store()
                                .event(&info, e.version)?
                                .map(|whole| titles.title(&whole))
                                .unwrap_or_default(),
                            None => String::new(),
                        },
                    };
                    self.given.insert(e.seq, title);
                }
                _ => wanted.entry(&e.stream).or_default().push(e.version),
            }
        }
        for (name, mut versions) in wanted {
            let Some(stream) = engine.store().stream(name)? else {
                continue;
            };
            versions.sort_unstable();
            let mut start = 0;
            for i in 1..=versions.len() {
                if i == versions.len() || versions[i] > versions[i - 1] + GAP {
                    let (from, to) = (versions[start], versions[i - 1]);
                    start = i;
                    // A run costs a reconstruction plus a replay: as much as the last one, or
                    // more in proportion where it is longer.
                    let n = to - from + 1;
                    let estimate = self
                        .cost
                        .get(name)
                        .map_or(0.0, |(us, last)| us * (n as f64 / *last as f64).max(1.0));
                    if budget.is_some_and(|b| estimate > b.as_secs_f64() * 1e6) {
                        self.pending = true;
                        continue;
                    }
                    let began = std::time::Instant::now();
                    self.run(engine, &stream, from, to)?;
                    let us = began.elapsed().as_secs_f64() * 1e6;
                    self.cost.insert(name.to_string(), (us, n));
                }
            }
        }
        Ok(rows
            .iter()
            .map(|e| self.given.get(&e.seq).cloned().unwrap_or_default())
            .collect())
    }

    /// Summarises the events `from..=to` of a stream in one replay. An event the reducer
    /// refuses says so, and the events after it, whose state is unknown, say nothing.
    fn run(&mut self, engine: &mut Engine, stream: &StreamInfo, from: u64, to: u64) -> Result<()> {
        let reducer = engine.reducer(&stream.reducer)?;
        let before = match engine.state_of(stream, Target::Version(from - 1)) {
            Ok(r) => r.state,
            Err(e) => {
                // The state before the run cannot be built: none of it can be summarised.
                let why = crate::text::clean(&format!("⚠ {e}"), WIDTH);
                engine.store().replay(stream, from - 1, to, |row| {
                    self.given.insert(row.seq, why.clone());
                    Ok(())
                })?;
                return Ok(());
            }
        };
        let mut state = (*before).clone();
        let mut prev = (*before).clone();
        let mut last = from - 1;
        let rules = &self.rules;
        let given = &mut self.given;
        let replayed = engine.replay_onto(stream, &reducer, &mut state, from - 1, to, |row, s| {
            last = row.version;
            // `prev` follows every event, so a row summarised by keys after one titled by
            // a program compares with the state just before it.
            let keys = advance(&mut prev, s);
            let text = match rules.rule(&stream.name, row.kind) {
                Some(program) => titled(program, stream, row, s),
                None => keys,
            };
            given.insert(row.seq, text);
        });
        if let Err(e) = replayed {
            let failed = last + 1;
            let why = crate::text::clean(&format!("⚠ {e}"), WIDTH);
            engine.store().replay(stream, last, to, |row| {
                let text = if row.version == failed {
                    why.clone()
                } else {
                    String::new()
                };
                self.given.insert(row.seq, text);
                Ok(())
            })?;
        }
        Ok(())
    }
}

/// What a title program returns over `{state, event}`: text as it is, anything else as
/// compact JSON, cut to a width; where it fails, why.
fn titled(
    program: &Program,
    stream: &StreamInfo,
    row: &crate::store::EventRow<'_>,
    state: &Value,
) -> String {
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let input = json!({
        "state": state,
        "event": {
            "stream": stream.name,
            "version": row.version,
            "seq": row.seq,
            "type": row.kind,
            "time": crate::time::format(row.ts),
            "data": parse(row.data),
            "meta": row.meta.map(parse),
        },
    });
    crate::title::shown(program.run_within(&input, &stream.name, row.version, crate::title::STEPS))
}

/// What changed from `prev` to `now`, said in a line, with `prev` brought up to `now` in
/// the same pass (copying only the top-level values that changed). The top-level keys that
/// differ, words first (`node → observe`), then containers, then numbers, which in
/// checkpoints are mostly counters that change every time (`step`, `message_count`); then
/// the keys removed (`−key`). A state that is not an object shows its new value, or
/// `no change`.
pub fn advance(prev: &mut Value, now: &Value) -> String {
    let text = match (&mut *prev, now) {
        (Value::Object(old), Value::Object(new)) => {
            let mut parts: Vec<(u8, String)> = Vec::new();
            for (key, value) in new {
                if old.get(key) == Some(value) {
                    continue;
                }
                parts.push(match (scalar(value), value) {
                    (Some(shown), Value::Number(_)) => (2, format!("{key} → {shown}")),
                    (Some(shown), _) => (0, format!("{key} → {shown}")),
                    (None, _) => (1, key.clone()),
                });
                old.insert(key.clone(), value.clone());
            }
            parts.sort_by_key(|(rank, _)| *rank);
            let removed: Vec<String> = old
                .keys()
                .filter(|k| !new.contains_key(*k))
                .cloned()
                .collect();
            for key in &removed {
                old.remove(key);
            }
            let parts: Vec<String> = parts
                .into_iter()
                .map(|(_, part)| part)
                .chain(removed.iter().map(|key| format!("−{key}")))
                .collect();
            if parts.is_empty() {
                "no change".to_string()
            } else {
                parts.join(", ")
            }
        }
        (before, _) if *before == *now => "no change".to_string(),
        (before, value) => {
            *before = value.clone();
            match scalar(value) {
                Some(shown) => format!("→ {shown}"),
                None => match value {
                    Value::Array(items) => format!("{} items", items.len()),
                    Value::Object(map) => format!("{} keys", map.len()),
                    _ => "changed".to_string(),
                },
            }
        }
    };
    crate::text::clean(&text, WIDTH)
}

/// A scalar short enough to show after its key: text unquoted, the rest as JSON.
fn scalar(value: &Value) -> Option<String> {
    let shown = match value {
        Value::String(s) => s.clone(),
        Value::Number(_) | Value::Bool(_) | Value::Null => value.to_string(),
        _ => return None,
    };
    (shown.chars().count() <= VALUE_WIDTH && !shown.is_empty()).then_some(shown)
}
