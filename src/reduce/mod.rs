//! Reducers: the only code that knows what an event means. `merge` (RFC 7386), `patch`
//! (RFC 6902), `replace` and `jq:FILTER`, and the folds of other programs' histories
//! ([`temporal`]) and of the differences a mirror stores ([`delta`]), each with a
//! fingerprint that snapshots record.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use crate::model::Micros;

pub mod delta;
pub mod stored;
pub mod temporal;

/// States may nest at most this deep, so every state can be stored, parsed back and walked
/// without exhausting the stack (serde_json refuses input deeper than 128 levels).
pub const MAX_DEPTH: usize = 120;

/// Why a reducer could not be built or could not apply an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReduceError {
    /// Unknown reducer name.
    #[error(
        "unknown reducer {0:?}; expected merge, patch, replace, delta, temporal, stored or jq:FILTER"
    )]
    Unknown(String),
    /// The jq program does not parse or compile.
    #[error("jq program does not compile: {0}")]
    JqCompile(String),
    /// A `delta` event whose data is not a difference that fits the state.
    #[error("data is not a difference this state can take: {0}")]
    NotADelta(String),
    /// A `patch` event whose data is not an array of RFC 6902 operations.
    #[error("data is not a JSON Patch (an array of operations): {0}")]
    NotAPatch(String),
    /// An RFC 6902 operation failed (the state is left as it was).
    #[error("{0}")]
    PatchFailed(String),
    /// The jq program failed at run time.
    #[error("jq: {0}")]
    Jq(String),
    /// The jq program produced no output or more than one.
    #[error("the jq program produced {}; a reducer must produce exactly one", if *.0 == 0 { "no output" } else { "more than one output" })]
    JqOutputs(usize),
    /// The new state nests deeper than [`MAX_DEPTH`].
    #[error("the resulting state nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The event's data could not be read from its source (`{"$unreadable": why}`), so no
    /// state after it can be told.
    #[error("the event could not be read from its source: {0}")]
    Unreadable(String),
    /// Applying the event went over a limit of its budget ([`crate::budget`]).
    #[error("the jq program went over its limit of {0}")]
    OverBudget(crate::budget::Limit),
}

/// A compiled reducer.
#[derive(Clone)]
pub enum Reducer {
    /// RFC 7386 JSON Merge Patch.
    Merge,
    /// RFC 6902 JSON Patch.
    Patch,
    /// The event's data is the whole new state.
    Replace,
    /// A jq program over `{"state": …, "event": {…}}`.
    Jq(crate::jq::Program),
    /// A Temporal workflow's execution state, folded from its history ([`temporal`]).
    Temporal,
    /// The data is the difference from the state before ([`delta`]).
    Delta,
    /// A source's own newest snapshot and the events since, while no reducer is set
    /// ([`stored`]).
    Stored,
}

/// The parts of an event a reducer may look at.
#[derive(Debug, Clone)]
pub struct EventRef<'a> {
    /// The stream it belongs to.
    pub stream: &'a str,
    /// The event's type.
    pub kind: &'a str,
    /// Its version in the stream.
    pub version: u64,
    /// Its time, µs since the epoch.
    pub ts: Micros,
    /// The payload: owned where the caller can give it up, so merges move instead of copy.
    pub data: Cow<'a, Value>,
    /// Metadata, if any.
    pub meta: Option<&'a Value>,
}

impl Reducer {
    /// Parses and compiles a reducer spec: `merge`, `patch`, `replace` or `jq:FILTER`.
    pub fn parse(spec: &str) -> Result<Self, ReduceError> {
        match spec {
            "merge" => Ok(Self::Merge),
            "patch" => Ok(Self::Patch),
            "replace" => Ok(Self::Replace),
            "temporal" => Ok(Self::Temporal),
            "delta" => Ok(Self::Delta),
            "stored" => Ok(Self::Stored),
            _ => match spec.strip_prefix("jq:") {
                Some(program) => crate::jq::Program::compile(program).map(Self::Jq),
                None => Err(ReduceError::Unknown(spec.to_string())),
            },
        }
    }

    /// The spec this reducer was parsed from.
    pub fn spec(&self) -> String {
        match self {
            Self::Merge => "merge".into(),
            Self::Patch => "patch".into(),
            Self::Replace => "replace".into(),
            Self::Temporal => "temporal".into(),
            Self::Delta => "delta".into(),
            Self::Stored => "stored".into(),
            Self::Jq(program) => format!("jq:{}", program.source()),
        }
    }

    /// Identifies the reducer's semantics: snapshots built with another fingerprint are stale.
    pub fn fingerprint(&self) -> &str {
        match self {
            Self::Merge => "merge",
            Self::Patch => "patch",
            Self::Replace => "replace",
            Self::Temporal => temporal::FINGERPRINT,
            Self::Delta => delta::FINGERPRINT,
            Self::Stored => stored::FINGERPRINT,
            Self::Jq(program) => program.fingerprint(),
        }
    }

    /// Whether what an event does depends on its meta: where it does not, a replay leaves
    /// the stored meta unparsed.
    pub fn reads_meta(&self) -> bool {
        matches!(self, Self::Temporal | Self::Stored | Self::Jq(_))
    }

    /// Applies one event to `state`. On error `state` is unchanged.
    pub fn apply(&self, state: &mut Value, event: EventRef<'_>) -> Result<(), ReduceError> {
        // No reducer can tell what an event nobody could read did: a state made as if it were
        // an ordinary one would name a state that is not. Only `stored` shows it as it is.
        if !matches!(self, Self::Stored)
            && let Some(why) = unreadable(&event.data)
        {
            return Err(ReduceError::Unreadable(why.to_owned()));
        }
        match self {
            Self::Merge => match event.data {
                Cow::Owned(data) => merge(state, data),
                Cow::Borrowed(data) => json_patch::merge(state, data),
            },
            Self::Replace => match event.data {
                Cow::Owned(data) => *state = data,
                Cow::Borrowed(data) => state.clone_from(data),
            },
            Self::Patch => apply_patch(state, event.data.into_owned())?,
            Self::Temporal => temporal::apply(state, event.kind, &event.data, event.meta)?,
            Self::Delta => delta::apply(state, &event.data)?,
            Self::Stored => {
                stored::apply(state, event.kind, event.version, &event.data, event.meta)?;
            }
            Self::Jq(program) => {
                let input = json!({
                    "state": std::mem::take(state),
                    "event": {
                        "type": event.kind,
                        "version": event.version,
                        "ts": event.ts,
                        "data": &*event.data,
                        "meta": event.meta,
                    }
                });
                // The program checks the depth of what it returns.
                let result = program.run(&input, event.stream, event.version);
                // Give the old state back whatever happened.
                if let Value::Object(mut map) = input
                    && let Some(old) = map.remove("state")
                {
                    *state = old;
                }
                *state = result?;
            }
        }
        Ok(())
    }
}

/// Why an event's data could not be read, where the reader said so: `{"$unreadable": why}`.
pub fn unreadable(data: &Value) -> Option<&str> {
    match data {
        Value::Object(map) if map.len() == 1 => map.get("$unreadable").and_then(Value::as_str),
        _ => None,
    }
}

/// RFC 7386 on an owned patch: values move into the state instead of being copied.
fn merge(doc: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *doc = patch;
        return;
    };
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    if let Value::Object(map) = doc {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(&key);
            } else {
                merge(map.entry(key).or_insert(Value::Null), value);
            }
        }
    }
}

fn apply_patch(state: &mut Value, data: Value) -> Result<(), ReduceError> {
    let ops: Vec<json_patch::PatchOperation> =
        serde_json::from_value(data).map_err(|e| ReduceError::NotAPatch(e.to_string()))?;
    // A new value can deepen the state by at most its pointer length plus its own depth;
    // `move` and `copy` can relocate a deep subtree under a deep path, so those are measured.
    let mut measure_after = false;
    for op in &ops {
        use json_patch::PatchOperation as Op;
        let bound = match op {
            Op::Add(o) => o.path.count() + depth(&o.value),
            Op::Replace(o) => o.path.count() + depth(&o.value),
            Op::Move(_) | Op::Copy(_) => {
                measure_after = true;
                0
            }
            Op::Remove(_) | Op::Test(_) => 0,
        };
        if bound > MAX_DEPTH {
            return Err(ReduceError::TooDeep);
        }
    }
    if measure_after {
        // On a copy, so a failure needs no undo: json-patch's own undo of a `move` can fail,
        // and panics when it does.
        let mut scratch = state.clone();
        json_patch::patch_unsafe(&mut scratch, &ops)
            .map_err(|e| ReduceError::PatchFailed(e.to_string()))?;
        if depth(&scratch) > MAX_DEPTH {
            return Err(ReduceError::TooDeep);
        }
        *state = scratch;
        return Ok(());
    }
    json_patch::patch(state, &ops).map_err(|e| ReduceError::PatchFailed(e.to_string()))
}

/// Nesting depth of a value: a scalar is 0, `[]` and `{}` are 1.
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(data: &Value) -> EventRef<'_> {
        EventRef {
            stream: "s",
            kind: "T",
            version: 1,
            ts: 0,
            data: Cow::Borrowed(data),
            meta: None,
        }
    }

    #[test]
    fn an_event_nobody_could_read_is_refused_by_every_reducer_but_stored() {
        let unreadable = json!({"$unreadable": "compressed"});
        for spec in [
            "merge",
            "patch",
            "replace",
            "delta",
            "temporal",
            "jq:.state",
        ] {
            let mut state = json!({"kept": 1});
            let err = Reducer::parse(spec)
                .unwrap()
                .apply(&mut state, ev(&unreadable))
                .unwrap_err();
            assert_eq!(err, ReduceError::Unreadable("compressed".into()), "{spec}");
            assert_eq!(state, json!({"kept": 1}), "{spec}: the state is unchanged");
        }
        let mut state = json!({});
        Reducer::Stored.apply(&mut state, ev(&unreadable)).unwrap();
        assert_eq!(state["events_since"][0]["data"], unreadable);
    }

    #[test]
    fn a_failing_patch_after_a_move_to_the_root_is_an_error_not_a_panic() {
        // json-patch cannot undo this move (the root into its own element) and panics when
        // asked to; the reducer must refuse the event and keep the state.
        let mut state = json!([0, 0]);
        let data = json!([
            {"op": "move", "from": "/0", "path": ""},
            {"op": "add", "path": "/a/b", "value": 0},
        ]);
        assert!(Reducer::Patch.apply(&mut state, ev(&data)).is_err());
        assert_eq!(state, json!([0, 0]));
    }

    #[test]
    fn owned_and_borrowed_merges_agree() {
        let doc = json!({"a": {"b": 1, "c": [1]}, "d": 2});
        let patch = json!({"a": {"b": null, "e": {"f": null, "g": 3}}, "d": [1], "h": null});
        let mut owned = doc.clone();
        Reducer::Merge
            .apply(
                &mut owned,
                EventRef {
                    data: Cow::Owned(patch.clone()),
                    ..ev(&patch)
                },
            )
            .unwrap();
        let mut borrowed = doc;
        Reducer::Merge.apply(&mut borrowed, ev(&patch)).unwrap();
        assert_eq!(owned, borrowed);
        assert_eq!(owned, json!({"a": {"c": [1], "e": {"g": 3}}, "d": [1]}));
    }

    #[test]
    fn parse_rejects_unknown_names() {
        assert_eq!(
            Reducer::parse("mrege").err(),
            Some(ReduceError::Unknown("mrege".into()))
        );
    }

    #[test]
    fn fingerprints_differ_between_reducers_and_programs() {
        let (a, b) = (
            Reducer::parse("jq:.state").unwrap(),
            Reducer::parse("jq:.event.data").unwrap(),
        );
        let (a, b) = (a.fingerprint(), b.fingerprint());
        assert_ne!(a, b);
        assert_eq!(Reducer::parse("merge").unwrap().fingerprint(), "merge");
    }

    #[test]
    fn failed_patch_leaves_state_unchanged() {
        let mut state = json!({"a": 1});
        let data =
            json!([{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/zzz"}]);
        assert!(Reducer::Patch.apply(&mut state, ev(&data)).is_err());
        assert_eq!(state, json!({"a": 1}));
    }

    #[test]
    fn patch_data_that_is_not_operations_is_named() {
        let mut state = json!({});
        let err = Reducer::Patch
            .apply(&mut state, ev(&json!({"op": "add"})))
            .unwrap_err();
        assert!(matches!(err, ReduceError::NotAPatch(_)), "{err}");
    }

    #[test]
    fn patch_cannot_grow_the_state_past_the_depth_limit() {
        let mut deep = json!(1);
        for _ in 0..100 {
            deep = json!([deep]);
        }
        let mut state = json!({});
        let data = json!([{"op": "add", "path": "/a", "value": deep}]);
        Reducer::Patch.apply(&mut state, ev(&data)).unwrap();
        // Copying the 101-deep subtree under itself twice would pass 120 levels.
        let copy = json!([{"op": "copy", "from": "/a", "path": "/a/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0"}]);
        assert_eq!(
            Reducer::Patch.apply(&mut state, ev(&copy)).unwrap_err(),
            ReduceError::TooDeep
        );
    }

    #[test]
    fn replace_takes_the_data_as_the_state() {
        let mut state = json!({"a": 1});
        Reducer::Replace
            .apply(&mut state, ev(&json!({"b": 2})))
            .unwrap();
        assert_eq!(state, json!({"b": 2}));
    }
}
