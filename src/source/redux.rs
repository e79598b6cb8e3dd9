//! Redux DevTools exports, both shapes its Export button writes:
//!
//! - **the actions** (`{"payload": TEXT, "preloadedState": TEXT}`, a Redux store's default):
//!   the app's actions as JSON text, and the state the session started from. No states: the
//!   user's reducer makes them. Skipped actions are in it with no mark (the file does not say).
//! - **the lifted state** (`{"actionsById", "stagedActionIds", "skippedActionIds",
//!   "computedStates", "committedState", …}`): every action with its time and the state after
//!   it, written by `jsan` (shared subtrees as references, `Date`s and `undefined` tagged).
//!
//! `jsan`'s tags are resolved as `JSON.stringify` of the restored value would render them: a
//! reference as the value it points to, a `Date` as its ISO text, `undefined` left out of an
//! object (`null` in a list); a regular expression, function, error or symbol, which JSON has
//! nothing for, as text saying what it was. A reference to a value that contains it (a cycle)
//! is the text `[Circular PATH]`. What references expand to is bounded, so a small file cannot
//! ask for more memory than a multiple of its size.

use serde_json::{Map, Value, json};

use crate::model::Micros;
use crate::reduce::MAX_DEPTH;

/// One action of a session, as rewind shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The instrument's id for it (its place in an export of actions, `@@INIT` 0).
    pub action_id: u64,
    /// The app's action (`{"type": …, …}`).
    pub action: Value,
    /// When it was dispatched, where the file says.
    pub time: Option<Micros>,
    /// Whether the user skipped it in the monitor (its state is the one before).
    pub skipped: bool,
    /// The state after it, where the file has one (a lifted state).
    pub state: Option<Value>,
    /// What the reducer threw on it, where it did.
    pub error: Option<String>,
}

/// A session read from an export.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Whether the file holds the states (a lifted state) or only the actions.
    pub lifted: bool,
    /// The state the actions start from (an export of actions; `None` where it has none).
    pub preloaded: Option<Value>,
    /// The actions, `@@INIT` first, in order.
    pub steps: Vec<Step>,
}

/// Whether a parsed document is a Redux DevTools export of either shape.
pub fn looks_like(doc: &Value) -> bool {
    let Some(map) = doc.as_object() else {
        return false;
    };
    (map.contains_key("actionsById") && map.contains_key("computedStates"))
        || matches!(map.get("payload"), Some(Value::String(_) | Value::Array(_)))
}

/// Reads an export of either shape.
pub fn parse(bytes: &[u8]) -> Result<Session, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if !looks_like(&doc) {
        return Err(
            "not a Redux DevTools export: no \"payload\" (the actions) and no \"actionsById\" with \"computedStates\" (the lifted state)".into(),
        );
    }
    let budget = 1_000_000 + 256 * bytes.len();
    if doc.get("actionsById").is_some() {
        lifted(&doc, budget)
    } else {
        actions(&doc, budget)
    }
}

/// The shape of actions: `payload` and `preloadedState` are JSON (or `jsan`) text, or, as
/// the extension's import also takes, the values themselves.
fn actions(doc: &Value, budget: usize) -> Result<Session, String> {
    let text_or_value = |name: &str| -> Result<Option<Value>, String> {
        match doc.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => {
                let parsed: Value = serde_json::from_str(text)
                    .map_err(|e| format!("\"{name}\" is not JSON text: {e}"))?;
                Ok(Some(
                    restore(&parsed, budget).map_err(|e| format!("\"{name}\": {e}"))?,
                ))
            }
            Some(value) => Ok(Some(
                restore(value, budget).map_err(|e| format!("\"{name}\": {e}"))?,
            )),
        }
    };
    let Some(Value::Array(list)) = text_or_value("payload")? else {
        return Err("\"payload\" is not a list of actions".into());
    };
    let preloaded = text_or_value("preloadedState")?;
    let mut steps = vec![Step {
        action_id: 0,
        action: json!({"type": "@@INIT"}),
        time: None,
        skipped: false,
        state: None,
        error: None,
    }];
    for (i, action) in list.into_iter().enumerate() {
        check_action(&action).map_err(|e| format!("action {} of \"payload\": {e}", i + 1))?;
        steps.push(Step {
            action_id: i as u64 + 1,
            action,
            time: None,
            skipped: false,
            state: None,
            error: None,
        });
    }
    Ok(Session {
        lifted: false,
        preloaded,
        steps,
    })
}

fn check_action(action: &Value) -> Result<(), String> {
    match action.get("type") {
        Some(Value::String(_)) => Ok(()),
        Some(_) => Err("its \"type\" is not text".into()),
        None => Err("not an action (an object with a \"type\")".into()),
    }
}

/// The lifted state: one step per staged action, with the state the instrument computed.
fn lifted(doc: &Value, budget: usize) -> Result<Session, String> {
    let doc = restore(doc, budget)?;
    let ids = doc
        .get("stagedActionIds")
        .and_then(Value::as_array)
        .ok_or("\"stagedActionIds\" is not a list")?;
    let states = doc
        .get("computedStates")
        .and_then(Value::as_array)
        .ok_or("\"computedStates\" is not a list")?;
    if states.len() != ids.len() {
        return Err(format!(
            "{} staged actions but {} computed states: the lifted state is cut short",
            ids.len(),
            states.len()
        ));
    }
    let skipped: Vec<u64> = doc
        .get("skippedActionIds")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let by_id = doc.get("actionsById").and_then(Value::as_object);
    let mut steps = Vec::with_capacity(ids.len());
    for (i, (id, computed)) in ids.iter().zip(states).enumerate() {
        let at = |what: String| format!("staged action {i}: {what}");
        let id = id
            .as_u64()
            .ok_or_else(|| at(format!("its id {id} is not a whole number")))?;
        let lifted = by_id
            .and_then(|m| m.get(&id.to_string()))
            .ok_or_else(|| at(format!("no action {id} in \"actionsById\"")))?;
        let action = lifted
            .get("action")
            .cloned()
            .ok_or_else(|| at(format!("action {id} holds no \"action\"")))?;
        check_action(&action).map_err(|e| at(format!("action {id}: {e}")))?;
        #[allow(clippy::cast_possible_truncation)] // a time in ms, far inside the range
        let time = lifted
            .get("timestamp")
            .and_then(Value::as_f64)
            .filter(|ms| ms.is_finite() && ms.abs() < 1e15)
            .map(|ms| (ms * 1000.0) as Micros);
        steps.push(Step {
            action_id: id,
            action,
            time,
            skipped: skipped.contains(&id),
            state: Some(computed.get("state").cloned().unwrap_or(Value::Null)),
            error: computed
                .get("error")
                .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned)),
        });
    }
    Ok(Session {
        lifted: true,
        preloaded: None,
        steps,
    })
}

/// A document with `jsan`'s tags resolved (see the module's doc), expanding to at most
/// `budget` values.
pub fn restore(doc: &Value, budget: usize) -> Result<Value, String> {
    let mut restorer = Restorer {
        root: doc,
        budget,
        following: Vec::new(),
    };
    Ok(restorer.value(doc, 0)?.unwrap_or(Value::Null))
}

struct Restorer<'a> {
    root: &'a Value,
    /// How many more values may be made.
    budget: usize,
    /// The references being followed, innermost last (a cycle comes back to one of them).
    following: Vec<String>,
}

impl<'a> Restorer<'a> {
    /// The restored value; `None` for `undefined`.
    fn value(&mut self, value: &'a Value, depth: usize) -> Result<Option<Value>, String> {
        self.budget = self.budget.checked_sub(1).ok_or_else(|| {
            "its references expand to more values than rewind will make of a file this size"
                .to_owned()
        })?;
        if depth > MAX_DEPTH {
            return Err(format!("it nests deeper than {MAX_DEPTH} levels"));
        }
        Ok(Some(match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.value(item, depth + 1)?.unwrap_or(Value::Null));
                }
                Value::Array(out)
            }
            Value::Object(map) => {
                if let Some(Value::String(tag)) = map.get("$jsan")
                    && !tag.is_empty()
                {
                    return self.tagged(tag, depth);
                }
                let mut out = Map::new();
                for (key, item) in map {
                    // A key of the app's own named `$jsan` is written wrapped in a list.
                    let item = match (key.as_str(), item) {
                        ("$jsan", Value::Array(wrapped)) => match wrapped.first() {
                            Some(inner) => inner,
                            None => item,
                        },
                        _ => item,
                    };
                    if let Some(restored) = self.value(item, depth + 1)? {
                        out.insert(key.clone(), restored);
                    }
                }
                Value::Object(out)
            }
            other => other.clone(),
        }))
    }

    /// What a `{"$jsan": TAG}` stands for.
    fn tagged(&mut self, tag: &str, depth: usize) -> Result<Option<Value>, String> {
        let (kind, rest) = tag.split_at(tag.chars().next().map_or(0, char::len_utf8));
        Ok(Some(match kind {
            "$" => {
                if self.following.iter().any(|p| p == tag) {
                    return Ok(Some(Value::String(format!("[Circular {tag}]"))));
                }
                let target = self.target(tag, 0)?;
                self.following.push(tag.to_owned());
                let restored = self.value(target, depth);
                self.following.pop();
                return restored;
            }
            "u" => return Ok(None),
            "d" => rest
                .parse::<f64>()
                .ok()
                .and_then(iso_millis)
                .map_or(Value::Null, Value::String),
            "r" => {
                let (flags, source) = rest.split_once(',').unwrap_or(("", rest));
                Value::String(format!("/{source}/{flags}"))
            }
            "f" => Value::String(format!("[function {rest}]")),
            "e" => Value::String(format!("[Error: {rest}]")),
            "s" | "g" => Value::String(format!("[Symbol({rest})]")),
            _ => Value::String(format!("[jsan {tag}]")),
        }))
    }

    /// The document's value at a reference's path (`$`, `$.a.b[2]["c d"]`), following the
    /// references met on the way.
    fn target(&self, path: &str, hops: usize) -> Result<&'a Value, String> {
        if hops > 64 {
            return Err(format!(
                "reference {path:?} goes through more than 64 references"
            ));
        }
        let broken = || format!("reference {path:?} points at nothing in the file");
        let mut node = self.root;
        for segment in segments(path).ok_or_else(|| format!("reference {path:?} is not a path"))? {
            // A step through a reference goes where it points.
            if let Some(Value::String(tag)) = node.get("$jsan")
                && tag.starts_with('$')
            {
                node = self.target(tag, hops + 1)?;
            }
            node = match (segment, node) {
                (Segment::Index(i), Value::Array(items)) => items.get(i).ok_or_else(broken)?,
                (Segment::Key(key), Value::Object(map)) => map.get(&key).ok_or_else(broken)?,
                // `$jsan`-escaped keys and indexes written as keys.
                (Segment::Index(i), Value::Object(map)) => {
                    map.get(&i.to_string()).ok_or_else(broken)?
                }
                _ => return Err(broken()),
            };
        }
        if let Some(Value::String(tag)) = node.get("$jsan")
            && tag.starts_with('$')
            && tag != path
        {
            return self.target(tag, hops + 1);
        }
        Ok(node)
    }
}

enum Segment {
    Key(String),
    Index(usize),
}

/// The steps of a reference's path: `.name`, `[N]` and `["text"]` after `$`.
fn segments(path: &str) -> Option<Vec<Segment>> {
    let mut rest = path.strip_prefix('$')?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            out.push(Segment::Key(after[..end].to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix("[\"") {
            // A JSON string's text up to its closing quote.
            let mut escaped = false;
            let end = after.char_indices().find_map(|(i, c)| {
                let closes = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                closes.then_some(i)
            })?;
            let key: String = serde_json::from_str(&format!("\"{}\"", &after[..end])).ok()?;
            out.push(Segment::Key(key));
            rest = after[end + 1..].strip_prefix(']')?;
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            out.push(Segment::Index(after[..end].parse().ok()?));
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(out)
}

/// A JavaScript time (ms since the epoch) as `Date.prototype.toISOString` writes it.
fn iso_millis(ms: f64) -> Option<String> {
    if !ms.is_finite() {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)] // checked by the conversion below
    let ts = jiff::Timestamp::from_millisecond(ms.trunc() as i64).ok()?;
    Some(ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsan_tags_resolve_as_json_stringify_renders_them() {
        let doc = json!({
            "a": {"list": [1, {"$jsan": "u"}], "when": {"$jsan": "d1741944420000"}, "gone": {"$jsan": "u"}},
            "b": {"$jsan": "$.a.list"},
            "c": {"$jsan": "$[\"a\"].when"},
            "d": {"$jsan": "$.b[0]"},
            "self": {"inner": {"$jsan": "$.self"}},
            "$jsan": ["mine"],
            "re": {"$jsan": "rgi,a+b"},
        });
        assert_eq!(
            restore(&doc, 1000).unwrap(),
            json!({
                "a": {"list": [1, null], "when": "2025-03-14T09:27:00.000Z"},
                "b": [1, null],
                "c": "2025-03-14T09:27:00.000Z",
                "d": 1,
                "self": {"inner": {"inner": "[Circular $.self]"}},
                "$jsan": "mine",
                "re": "/a+b/gi",
            })
        );
    }

    #[test]
    fn references_that_multiply_stop_at_the_budget() {
        // Each level holds the one before twice: 2^40 values from a few hundred bytes.
        let mut doc = Map::new();
        doc.insert("l0".into(), json!([1, 2]));
        for level in 1..40 {
            let before = format!("$.l{}", level - 1);
            doc.insert(
                format!("l{level}"),
                json!([{"$jsan": before}, {"$jsan": before}]),
            );
        }
        let err = restore(&Value::Object(doc), 100_000).unwrap_err();
        assert!(err.contains("expand to more values"), "{err}");
    }
}
