//! Applying an event so that it can be taken back. Before the reducer runs, the places of
//! the state the event can change are saved; undoing puts them back, and the event's
//! changes are the diff of those places alone. Stepping a state of megabytes back and forth
//! then costs what the event touches, not a copy and a comparison of the whole state.
//!
//! A place is the path of object keys down to what an operation can change: a member of an
//! object, or the first array on the way (an insert or removal shifts every later element),
//! or the whole state; or an element appended at the end of an array (nothing shifts, so
//! the rest of the array need not be saved: the way an agent's messages grow). `merge` and
//! `patch` events name their places; a `replace` or `jq` event can change anything, so its
//! place is the whole state.

use std::collections::HashMap;

use serde_json::Value;

use crate::diff::Change;
use crate::reduce::{EventRef, ReduceError, Reducer};

/// Where an event can change the state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    /// Object keys from the root: to the member, or to the array appended to.
    keys: Vec<String>,
    /// The index of an element appended to the array at `keys`.
    append: Option<usize>,
}

impl Place {
    fn at(keys: Vec<String>) -> Self {
        Self { keys, append: None }
    }

    /// Whether `self` lies inside `other` (or is it): a place inside a saved one needs
    /// nothing of its own.
    fn within(&self, other: &Place) -> bool {
        self.keys.starts_with(&other.keys)
            && (other.append.is_none() && self.keys.len() >= other.keys.len() || self == other)
    }
}

/// What one applied event changed, saved so that it can be undone.
#[derive(Debug, Clone)]
pub struct Undo {
    /// The places, in document order and none inside another, with what each held before
    /// the event (`None`: absent).
    saved: Vec<(Place, Option<Value>)>,
    /// Roughly how many bytes the saved values take in memory.
    weight: u64,
}

impl Undo {
    /// Roughly how many bytes this record keeps alive.
    pub fn weight(&self) -> u64 {
        self.weight
    }

    /// The event's changes, given the state right after it: the same list, in the same
    /// order, as [`crate::diff::changes`] of the states before and after.
    pub fn changes(&self, after: &Value) -> Vec<Change> {
        let mut out = Vec::new();
        let mut pointer = String::new();
        for (place, old) in &self.saved {
            pointer.clear();
            for key in &place.keys {
                crate::diff::push_token(&mut pointer, key);
            }
            let mut now = lookup(after, &place.keys);
            if let Some(index) = place.append {
                crate::diff::push_token(&mut pointer, &index.to_string());
                now = now.and_then(|array| array.get(index));
            }
            crate::diff::changes_at(old.as_ref(), now, &mut pointer, &mut out);
        }
        out
    }

    /// Turns the state right after the event back into the state right before it.
    pub fn undo(self, state: &mut Value) {
        // Appended elements go newest first, so each is the last of its array then.
        for (place, old) in self.saved.into_iter().rev() {
            if let Some(index) = place.append {
                match lookup_mut(state, &place.keys) {
                    Some(Value::Array(items)) => items.truncate(index),
                    _ => debug_assert!(false, "an appended element's array is gone"),
                }
                continue;
            }
            let Some((last, parents)) = place.keys.split_last() else {
                *state = old.unwrap_or(Value::Null);
                continue;
            };
            // The parents of a place are objects before and after the event: anything that
            // changed one would have made it a place, and this one would lie inside it.
            let Some(Value::Object(map)) = lookup_mut(state, parents) else {
                debug_assert!(false, "the parent of an undo place is not an object");
                continue;
            };
            match old {
                Some(value) => {
                    map.insert(last.clone(), value);
                }
                None => {
                    map.remove(last);
                }
            }
        }
    }
}

/// Applies one event to `state` as [`Reducer::apply`] does, and returns what undoes it. On
/// error `state` is unchanged.
pub fn apply(
    reducer: &Reducer,
    state: &mut Value,
    event: EventRef<'_>,
) -> Result<Undo, ReduceError> {
    if matches!(reducer, Reducer::Replace) {
        // The new state is the event's data: the old one moves into the record, uncopied.
        let old = std::mem::take(state);
        let weight = weigh(&old);
        *state = event.data.into_owned();
        return Ok(Undo {
            saved: vec![(Place::at(Vec::new()), Some(old))],
            weight,
        });
    }
    let places = match reducer {
        Reducer::Merge => {
            let mut out = Vec::new();
            merge_places(state, &event.data, &mut Vec::new(), &mut out);
            out
        }
        Reducer::Patch => patch_places(state, &event.data),
        Reducer::Replace
        | Reducer::Jq(_)
        | Reducer::Temporal
        | Reducer::Delta
        | Reducer::Stored => {
            vec![Place::at(Vec::new())]
        }
    };
    let mut weight = 0;
    let saved: Vec<(Place, Option<Value>)> = places
        .into_iter()
        .map(|place| {
            // An appended element was not there before.
            let old = match place.append {
                Some(_) => None,
                None => lookup(state, &place.keys).cloned(),
            };
            weight += old.as_ref().map_or(0, weigh);
            weight += place.keys.iter().map(|k| k.len() as u64 + 24).sum::<u64>() + 32;
            (place, old)
        })
        .collect();
    reducer.apply(state, event)?;
    Ok(Undo { saved, weight })
}

fn lookup_mut<'a>(state: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter()
        .try_fold(state, |at, key| at.as_object_mut()?.get_mut(key))
}

/// The value at a path of object keys, if there is one.
fn lookup<'a>(state: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(state, |at, key| at.as_object()?.get(key))
}

/// RFC 7386: a patch object recurses into the objects it meets; anything else it sets or
/// removes is a place.
fn merge_places(state: &Value, patch: &Value, path: &mut Vec<String>, out: &mut Vec<Place>) {
    let (Value::Object(patch), Value::Object(map)) = (patch, state) else {
        out.push(Place::at(path.clone()));
        return;
    };
    for (key, value) in patch {
        path.push(key.clone());
        match (value, map.get(key)) {
            (Value::Object(_), Some(inner @ Value::Object(_))) => {
                merge_places(inner, value, path, out);
            }
            _ => out.push(Place::at(path.clone())),
        }
        path.pop();
    }
}

/// RFC 6902: each operation's `path` (and a move's `from`) is followed through the state
/// before the event as far as objects go. Places are then sorted and those inside another
/// dropped. Anything that does not look like a patch is the whole state (the reducer will
/// refuse it anyway).
fn patch_places(state: &Value, data: &Value) -> Vec<Place> {
    let whole = || vec![Place::at(Vec::new())];
    let Some(ops) = data.as_array() else {
        return whole();
    };
    let mut places = Vec::new();
    // Elements appended so far to each array, for the index the next append gets.
    let mut appended = HashMap::new();
    for op in ops {
        // Which pointers name a place, and whether the operation adds there.
        let pointers: &[(&str, bool)] = match op.get("op").and_then(Value::as_str) {
            Some("add" | "copy") => &[("path", true)],
            Some("move") => &[("path", true), ("from", false)],
            Some("test") => &[],
            _ => &[("path", false)],
        };
        for (name, adds) in pointers {
            let Some(tokens) = op.get(*name).and_then(Value::as_str).and_then(tokens) else {
                return whole();
            };
            places.push(place(state, tokens, *adds, &mut appended));
        }
    }
    places.sort();
    let mut kept: Vec<Place> = Vec::with_capacity(places.len());
    for place in places {
        if kept.last().is_none_or(|last| !place.within(last)) {
            kept.push(place);
        }
    }
    kept
}

/// The reference tokens of a JSON pointer, unescaped; `None` if it is not one.
fn tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// Where an operation at `tokens` acts: the member it names, or the first array (or
/// non-container) on the way there, or the first missing key; or, for an element added at
/// the end of that array, the new element.
fn place(
    state: &Value,
    tokens: Vec<String>,
    adds: bool,
    appended: &mut HashMap<Vec<String>, usize>,
) -> Place {
    let mut at = state;
    let mut keys = Vec::with_capacity(tokens.len());
    let mut rest = tokens.into_iter().peekable();
    while let Some(token) = rest.next() {
        match at {
            Value::Object(map) => {
                let next = map.get(&token);
                keys.push(token);
                match next {
                    Some(value) => at = value,
                    None => break,
                }
            }
            Value::Array(items) if adds && rest.peek().is_none() => {
                let count = appended.entry(keys.clone()).or_insert(0);
                let end = items.len() + *count;
                if token == "-" || token == end.to_string() {
                    *count += 1;
                    return Place {
                        keys,
                        append: Some(end),
                    };
                }
                break;
            }
            _ => break,
        }
    }
    Place::at(keys)
}

/// Roughly the memory a value takes: a few words per node plus its text.
fn weigh(value: &Value) -> u64 {
    match value {
        Value::Object(map) => {
            64 + map
                .iter()
                .map(|(k, v)| k.len() as u64 + 32 + weigh(v))
                .sum::<u64>()
        }
        Value::Array(items) => 32 + items.iter().map(weigh).sum::<u64>(),
        Value::String(s) => 32 + s.len() as u64,
        _ => 32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::borrow::Cow;

    /// A place as `a.b` or `a.b[3]` (an appended element).
    fn shown(place: &Place) -> String {
        let keys = place.keys.join(".");
        match place.append {
            Some(i) => format!("{keys}[{i}]"),
            None => keys,
        }
    }

    fn event(data: &Value) -> EventRef<'_> {
        EventRef {
            stream: "s",
            kind: "E",
            version: 1,
            ts: 0,
            data: Cow::Borrowed(data),
            meta: None,
        }
    }

    /// Applies, checks the changes against a whole diff, undoes, checks the state is back.
    fn round_trip(reducer: &str, before: Value, data: Value) -> Vec<Change> {
        let reducer = Reducer::parse(reducer).unwrap();
        let mut state = before.clone();
        let undo = apply(&reducer, &mut state, event(&data)).unwrap();
        let mut expected = before.clone();
        reducer.apply(&mut expected, event(&data)).unwrap();
        assert_eq!(state, expected, "apply differs from the reducer");
        let changes = undo.changes(&state);
        assert_eq!(changes, crate::diff::changes(&before, &state));
        undo.undo(&mut state);
        assert_eq!(state, before, "undo did not restore the state");
        changes
    }

    #[test]
    fn merge_saves_only_the_members_it_names() {
        let before = json!({"a": {"x": 1, "y": [1, 2]}, "b": 2, "c": {"deep": {"k": true}}});
        let reducer = Reducer::Merge;
        let data = json!({"a": {"x": 5}, "b": null, "c": {"deep": {"new": 1}}});
        let mut places = Vec::new();
        merge_places(&before, &data, &mut Vec::new(), &mut places);
        let places: Vec<String> = places.iter().map(shown).collect();
        assert_eq!(places, ["a.x", "b", "c.deep.new"]);
        let changes = round_trip(reducer.fingerprint(), before, data);
        let paths: Vec<&str> = changes.iter().map(Change::path).collect();
        assert_eq!(paths, ["/a/x", "/b", "/c/deep/new"]);
    }

    #[test]
    fn merge_over_a_scalar_or_with_a_scalar_patch_is_the_whole_state() {
        round_trip("merge", json!(3), json!({"a": 1}));
        round_trip("merge", json!({"a": 1}), json!([1, 2]));
        round_trip(
            "merge",
            json!({"a": 1, "b": 5}),
            json!({"a": {"nested": null}}),
        );
    }

    #[test]
    fn patch_places_stop_at_arrays_and_missing_keys() {
        let before = json!({"list": [{"n": 1}, {"n": 2}], "m": {"k": 1}, "s": "x"});
        let data = json!([
            {"op": "replace", "path": "/list/1/n", "value": 9},
            {"op": "add", "path": "/m/new", "value": {"a": 1}},
            {"op": "add", "path": "/m/new/b", "value": 2},
            {"op": "move", "from": "/s", "path": "/t"},
            {"op": "test", "path": "/m/k", "value": 1},
        ]);
        let places = patch_places(&before, &data);
        let places: Vec<String> = places.iter().map(shown).collect();
        assert_eq!(places, ["list", "m.new", "s", "t"]);
        round_trip("patch", before, data);
    }

    #[test]
    fn patch_with_escaped_keys_and_array_shifts() {
        let before = json!({"a/b": {"~x": 1}, "arr": [1, 2, 3]});
        round_trip(
            "patch",
            before,
            json!([
                {"op": "replace", "path": "/a~1b/~0x", "value": 2},
                {"op": "remove", "path": "/arr/0"},
                {"op": "add", "path": "/arr/-", "value": 4},
            ]),
        );
    }

    #[test]
    fn appending_to_an_array_saves_the_new_elements_not_the_array() {
        let messages: Vec<Value> = (0..1000)
            .map(|i| json!({"text": format!("message {i}")}))
            .collect();
        let before = json!({"run": {"messages": messages}, "status": "running"});
        let data = json!([
            {"op": "add", "path": "/run/messages/-", "value": {"text": "a"}},
            {"op": "add", "path": "/run/messages/1001", "value": {"text": "b"}},
            {"op": "replace", "path": "/status", "value": "waiting"},
        ]);
        let places: Vec<String> = patch_places(&before, &data).iter().map(shown).collect();
        assert_eq!(
            places,
            ["run.messages[1000]", "run.messages[1001]", "status"]
        );
        let mut state = before.clone();
        let undo = apply(&Reducer::Patch, &mut state, event(&data)).unwrap();
        assert!(
            undo.weight() < 1_000,
            "the record holds {} bytes",
            undo.weight()
        );
        let changes = round_trip("patch", before.clone(), data);
        let paths: Vec<&str> = changes.iter().map(Change::path).collect();
        assert_eq!(
            paths,
            ["/run/messages/1000", "/run/messages/1001", "/status"]
        );
        // Anything else done to the same array saves the array.
        let mixed = json!([
            {"op": "add", "path": "/run/messages/-", "value": 1},
            {"op": "remove", "path": "/run/messages/0"},
        ]);
        let places: Vec<String> = patch_places(&before, &mixed).iter().map(shown).collect();
        assert_eq!(places, ["run.messages"]);
        round_trip("patch", before.clone(), mixed);
        // An index that is not the end inserts, and shifts what follows.
        let insert = json!([{"op": "add", "path": "/run/messages/3", "value": 1}]);
        let places: Vec<String> = patch_places(&before, &insert).iter().map(shown).collect();
        assert_eq!(places, ["run.messages"]);
        round_trip("patch", before, insert);
    }

    #[test]
    fn replace_moves_the_old_state_into_the_record() {
        let changes = round_trip("replace", json!({"a": 1}), json!({"b": 2}));
        assert_eq!(changes.len(), 2);
    }

    #[test]
    fn jq_saves_the_whole_state() {
        round_trip(
            "jq:.state + {n: ((.state.n // 0) + 1)}",
            json!({"n": 1, "k": [1]}),
            json!({}),
        );
    }

    #[test]
    fn a_failing_event_leaves_the_state_unchanged() {
        let reducer = Reducer::Patch;
        let mut state = json!({"a": 1});
        let data = json!([{"op": "remove", "path": "/missing"}]);
        assert!(apply(&reducer, &mut state, event(&data)).is_err());
        assert_eq!(state, json!({"a": 1}));
    }
}
