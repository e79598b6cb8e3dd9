//! The `delta` reducer: an event's data is the difference between two whole states, as a
//! mirror stores a checkpoint history (each checkpoint a difference from the one before, so
//! a history of large states costs what changes). Small on the shapes agents produce: a
//! changed field costs its path and value, and a list that grows at the end and drops at the
//! front (a conversation kept to a window) costs the items added, where RFC 6902's index paths
//! would rewrite every index and RFC 7386 would repeat the whole list.
//!
//! A difference is always an object of one of these forms (never the user's data itself):
//!
//! - `{}`: no change;
//! - `{"=": V}`: the new value is `V`;
//! - `{"{}": {KEY: DIFF, …}, "-": [KEY, …]}`: an object whose members change by their
//!   differences and lose the keys listed (either part may be absent);
//! - `{"[]": [FROM, COUNT, [ITEM, …]]}`: a list that keeps `COUNT` items of the old one from
//!   index `FROM`, then the items given.

use serde_json::{Map, Value, json};

use super::{MAX_DEPTH, ReduceError};

/// Bumped whenever the meaning of a difference changes: snapshots built by another are stale.
pub const FINGERPRINT: &str = "delta/1";

/// How many places in the old list are tried as the start of what the new one keeps.
const STARTS: usize = 16;

/// The difference that turns `old` into `new`: never larger than `new` whole.
pub fn between(old: &Value, new: &Value) -> Value {
    let diff = difference(old, new);
    if diff.get("=").is_some() {
        return diff;
    }
    let size = serde_json::to_vec(&diff).map_or(usize::MAX, |b| b.len());
    // `{"=":` and `}` around the value; the value is measured only as far as it must be.
    if at_least(new, size.saturating_sub(6)) {
        diff
    } else {
        json!({ "=": new })
    }
}

/// Whether a value's JSON text is at least `bytes` long, writing no more of it than that.
fn at_least(value: &Value, bytes: usize) -> bool {
    struct Budget(usize);
    impl std::io::Write for Budget {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if buf.len() >= self.0 {
                self.0 = 0;
                return Err(std::io::Error::other("long enough"));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    bytes == 0 || serde_json::to_writer(Budget(bytes), value).is_err()
}

fn difference(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            // One walk over both in key order (where looking each key up, and comparing the
            // objects whole first, compared every member at every level again).
            let mut changed = Map::new();
            let mut removed = Vec::new();
            for (key, was, value) in crate::diff::members(old, new) {
                match (was, value) {
                    (Some(_), None) => removed.push(Value::String(key.clone())),
                    (None, Some(value)) => {
                        changed.insert(key.clone(), json!({ "=": value }));
                    }
                    (Some(was), Some(value)) if was != value => {
                        changed.insert(key.clone(), difference(was, value));
                    }
                    _ => {}
                }
            }
            let mut diff = Map::new();
            if !changed.is_empty() {
                diff.insert("{}".into(), Value::Object(changed));
            }
            if !removed.is_empty() {
                diff.insert("-".into(), Value::Array(removed));
            }
            Value::Object(diff)
        }
        _ if old == new => json!({}),
        (Value::Array(old), Value::Array(new)) => match kept_run(old, new) {
            (_, 0) => json!({ "=": new }),
            (from, count) => json!({ "[]": [from, count, &new[count..]] }),
        },
        _ => json!({ "=": new }),
    }
}

/// The longest run of the old list that the new one begins with: its start and length.
fn kept_run(old: &[Value], new: &[Value]) -> (usize, usize) {
    let Some(first) = new.first() else {
        return (0, 0);
    };
    let mut best = (0, 0);
    for from in old
        .iter()
        .enumerate()
        .filter(|(_, item)| *item == first)
        .map(|(i, _)| i)
        .take(STARTS)
    {
        let count = old[from..]
            .iter()
            .zip(new)
            .take_while(|(a, b)| a == b)
            .count();
        if count > best.1 {
            best = (from, count);
        }
    }
    best
}

/// Applies a difference to a state. On error `state` is unchanged: the difference is checked
/// against the state whole before any of it is applied.
pub fn apply(state: &mut Value, diff: &Value) -> Result<(), ReduceError> {
    check(state, diff, 0)?;
    patch(state, diff);
    Ok(())
}

/// Whether a difference applies to a value at `level` (the root is 0) without error, and what
/// it puts there nests no deeper than [`MAX_DEPTH`] from the root.
fn check(value: &Value, diff: &Value, level: usize) -> Result<(), ReduceError> {
    let bad = |what: &str| ReduceError::NotADelta(what.to_owned());
    if level > MAX_DEPTH {
        return Err(ReduceError::TooDeep);
    }
    let Value::Object(ops) = diff else {
        return Err(bad("a difference is an object"));
    };
    if ops.is_empty() {
        return Ok(());
    }
    if let Some(whole) = ops.get("=") {
        if ops.len() != 1 {
            return Err(bad("\"=\" stands alone"));
        }
        return fits(whole, level);
    }
    if let Some(list) = ops.get("[]") {
        let (Some(Value::Array(items)), 1) = (Some(list), ops.len()) else {
            return Err(bad("\"[]\" is [from, count, [items]] and stands alone"));
        };
        let [from, count, Value::Array(added)] = items.as_slice() else {
            return Err(bad("\"[]\" is [from, count, [items]]"));
        };
        let (Some(from), Some(count)) = (from.as_u64(), count.as_u64()) else {
            return Err(bad("\"[]\" starts with two counts"));
        };
        let Value::Array(old) = value else {
            return Err(bad("\"[]\" applies to a list, and the value is not one"));
        };
        from.checked_add(count)
            .filter(|&end| end <= old.len() as u64)
            .ok_or_else(|| {
                bad(&format!(
                    "\"[]\" keeps items {from}..{} of a list of {}",
                    from.saturating_add(count),
                    old.len()
                ))
            })?;
        for item in added {
            fits(item, level + 1)?;
        }
        return Ok(());
    }
    for key in ops.keys() {
        if key != "{}" && key != "-" {
            return Err(bad(&format!("unknown part {key:?}")));
        }
    }
    let Value::Object(map) = value else {
        return Err(bad("\"{}\" applies to an object, and the value is not one"));
    };
    if let Some(removed) = ops.get("-") {
        let Value::Array(removed) = removed else {
            return Err(bad("\"-\" is a list of keys"));
        };
        if removed.iter().any(|key| !key.is_string()) {
            return Err(bad("\"-\" is a list of keys"));
        }
    }
    if let Some(changed) = ops.get("{}") {
        let Value::Object(changed) = changed else {
            return Err(bad("\"{}\" is an object of differences"));
        };
        for (key, diff) in changed {
            // A key the difference removes and changes starts again from nothing.
            let removed = ops
                .get("-")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|k| k.as_str() == Some(key)));
            let slot = if removed { None } else { map.get(key) };
            check(slot.unwrap_or(&Value::Null), diff, level + 1)?;
        }
    }
    Ok(())
}

/// Whether a value put at `level` keeps the state within [`MAX_DEPTH`].
fn fits(value: &Value, level: usize) -> Result<(), ReduceError> {
    if level + super::depth(value) > MAX_DEPTH {
        return Err(ReduceError::TooDeep);
    }
    Ok(())
}

/// Applies a difference [`check`] accepted for this value (so every part of it fits).
fn patch(value: &mut Value, diff: &Value) {
    let Value::Object(ops) = diff else {
        return;
    };
    if let Some(whole) = ops.get("=") {
        *value = whole.clone();
        return;
    }
    if let Some(Value::Array(items)) = ops.get("[]") {
        if let ([from, count, Value::Array(added)], Value::Array(old)) = (items.as_slice(), value) {
            let at = |n: &Value| {
                n.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(0)
            };
            let (from, count) = (at(from), at(count));
            let mut kept: Vec<Value> = old.drain(from..from + count).collect();
            kept.extend(added.iter().cloned());
            *old = kept;
        }
        return;
    }
    let Value::Object(map) = value else {
        return;
    };
    if let Some(Value::Array(removed)) = ops.get("-") {
        for key in removed.iter().filter_map(Value::as_str) {
            map.remove(key);
        }
    }
    if let Some(Value::Object(changed)) = ops.get("{}") {
        for (key, diff) in changed {
            patch(map.entry(key.clone()).or_insert(Value::Null), diff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(old: Value, new: Value) -> Value {
        let diff = between(&old, &new);
        let mut state = old;
        apply(&mut state, &diff).unwrap();
        assert_eq!(state, new);
        diff
    }

    #[test]
    fn one_changed_field_costs_its_name_and_value() {
        let old: Value = (0..50)
            .map(|i| (format!("k{i:02}"), json!(format!("init-{i:02}"))))
            .collect::<Map<_, _>>()
            .into();
        let mut new = old.clone();
        new["k07"] = json!(7);
        assert_eq!(round_trip(old, new), json!({"{}": {"k07": {"=": 7}}}));
    }

    #[test]
    fn a_window_of_messages_costs_the_new_ones() {
        let message = |i: u32| json!({"role": "user", "content": format!("message {i} with some words in it")});
        let old = json!({"messages": (0..40).map(message).collect::<Vec<_>>()});
        let new = json!({"messages": (3..42).map(message).collect::<Vec<_>>()});
        assert_eq!(
            round_trip(old, new),
            json!({"{}": {"messages": {"[]": [3, 37, [message(40), message(41)]]}}})
        );
    }

    #[test]
    fn removals_replacements_and_no_change() {
        assert_eq!(
            round_trip(json!({"a": 1, "b": 2}), json!({"a": 1})),
            json!({"-": ["b"]})
        );
        assert_eq!(
            round_trip(json!([1, 2]), json!({"x": 1})),
            json!({"=": {"x": 1}})
        );
        assert_eq!(round_trip(json!({"a": [1]}), json!({"a": [1]})), json!({}));
        round_trip(json!([1, 2, 3]), json!([9]));
        round_trip(
            json!({"a": {"b": {"c": 1}}}),
            json!({"a": {"b": {"c": 2, "d": null}}}),
        );
    }

    #[test]
    fn a_difference_that_does_not_fit_is_refused_and_changes_nothing() {
        let mut state = json!({"a": [1, 2]});
        for diff in [
            json!({"{}": {"a": {"[]": [1, 5, []]}}}),
            json!({"{}": {"a": {"{}": {"x": {"=": 1}}}}}),
            json!({"?": 1}),
            json!([1]),
            json!({"=": 1, "-": []}),
        ] {
            assert!(apply(&mut state, &diff).is_err(), "{diff}");
            assert_eq!(state, json!({"a": [1, 2]}));
        }
    }
}
