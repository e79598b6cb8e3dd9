//! Differences between two states: a structural change list keyed by JSON pointer, and a
//! unified text diff of pretty JSON. Pure functions of two values.

use serde::Serialize;
use serde_json::Value;

/// One difference between two states.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Change {
    /// A value present only in the newer state.
    Added {
        /// JSON pointer.
        path: String,
        /// The new value.
        value: Value,
    },
    /// A value present only in the older state.
    Removed {
        /// JSON pointer.
        path: String,
        /// The old value.
        value: Value,
    },
    /// A value that differs (including a change of type).
    Changed {
        /// JSON pointer.
        path: String,
        /// The old value.
        from: Value,
        /// The new value.
        to: Value,
    },
}

impl Change {
    /// The change as one line, as the CLI and the debugger show it: `+ path  value`,
    /// `- path  value`, `~ path  old → new` (not yet made safe for a terminal).
    pub fn line(&self) -> String {
        match self {
            Self::Added { path, value } => format!("+ {path}  {value}"),
            Self::Removed { path, value } => format!("- {path}  {value}"),
            Self::Changed { path, from, to } => format!("~ {path}  {from} → {to}"),
        }
    }

    /// The JSON pointer the change is at.
    pub fn path(&self) -> &str {
        match self {
            Self::Added { path, .. } | Self::Removed { path, .. } | Self::Changed { path, .. } => {
                path
            }
        }
    }
}

/// The changes that turn `old` into `new`, in document order. Objects are compared key by
/// key and arrays index by index; anything else that differs is one `Changed`.
pub fn changes(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(old, new, &mut String::new(), &mut out);
    out
}

/// The changes at `path` between what was there and what is there now (`None`: absent),
/// appended to `out` as [`changes`] lists them.
pub(crate) fn changes_at(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut String,
    out: &mut Vec<Change>,
) {
    match (old, new) {
        (Some(old), Some(new)) => walk(old, new, path, out),
        (Some(old), None) => out.push(Change::Removed {
            path: path.clone(),
            value: old.clone(),
        }),
        (None, Some(new)) => out.push(Change::Added {
            path: path.clone(),
            value: new.clone(),
        }),
        (None, None) => {}
    }
}

fn walk(old: &Value, new: &Value, path: &mut String, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            // Equal values are skipped without building their paths (a step usually
            // changes a few of many keys).
            for (key, x, y) in members(a, b) {
                if x == y {
                    continue;
                }
                let len = path.len();
                push_token(path, key);
                changes_at(x, y, path, out);
                path.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) => walk_arrays(a, b, path, out),
        (a, b) if a != b => out.push(Change::Changed {
            path: path.clone(),
            from: a.clone(),
            to: b.clone(),
        }),
        _ => {}
    }
}

/// The members of two objects side by side, in key order: each key with its value in the
/// first and in the second (None where that one lacks it). One merge pass over both (their
/// maps iterate in key order), with one key comparison a step.
pub(crate) fn members<'a>(
    a: &'a serde_json::Map<String, Value>,
    b: &'a serde_json::Map<String, Value>,
) -> impl Iterator<Item = (&'a String, Option<&'a Value>, Option<&'a Value>)> {
    let (mut xs, mut ys) = (a.iter().peekable(), b.iter().peekable());
    std::iter::from_fn(move || {
        let order = match (xs.peek(), ys.peek()) {
            (None, None) => return None,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) => ka.cmp(kb),
        };
        match order {
            std::cmp::Ordering::Equal => {
                let ((key, x), (_, y)) = (xs.next()?, ys.next()?);
                Some((key, Some(x), Some(y)))
            }
            std::cmp::Ordering::Less => xs.next().map(|(key, x)| (key, Some(x), None)),
            std::cmp::Ordering::Greater => ys.next().map(|(key, y)| (key, None, Some(y))),
        }
    })
}

/// Arrays are aligned, not compared index by index, so that an element inserted or removed
/// near the front is one change rather than a change at every later index. Removed
/// elements are reported at their old index, added and changed ones at their new index.
fn walk_arrays(a: &[Value], b: &[Value], path: &mut String, out: &mut Vec<Change>) {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (old, new) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    // One element's changes, at its index: both there, only the old, or only the new.
    let at = |path: &mut String, out: &mut Vec<Change>, idx: usize, x, y| {
        let len = path.len();
        push_token(path, &idx.to_string());
        changes_at(x, y, path, out);
        path.truncate(len);
    };
    let pair = |path: &mut String, out: &mut Vec<Change>, i: usize, j: usize| {
        at(path, out, prefix + j, Some(&old[i]), Some(&new[j]));
    };
    let removed = |path: &mut String, out: &mut Vec<Change>, i: usize| {
        at(path, out, prefix + i, Some(&old[i]), None);
    };
    let added = |path: &mut String, out: &mut Vec<Change>, j: usize| {
        at(path, out, prefix + j, None, Some(&new[j]));
    };
    if old.len() == new.len() && old.len() <= 1 {
        for i in 0..old.len() {
            pair(path, out, i, i);
        }
        return;
    }
    let hash = |v: &Value| {
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(v, &mut h);
        std::hash::Hasher::finish(&h)
    };
    let old_hashes: Vec<u64> = old.iter().map(hash).collect();
    let new_hashes: Vec<u64> = new.iter().map(hash).collect();
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &old_hashes, &new_hashes) {
        match op {
            // Equal hashes are checked: a collision is reported as a change, never hidden.
            similar::DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => {
                for k in 0..len {
                    pair(path, out, old_index + k, new_index + k);
                }
            }
            similar::DiffOp::Delete {
                old_index, old_len, ..
            } => {
                for k in 0..old_len {
                    removed(path, out, old_index + k);
                }
            }
            similar::DiffOp::Insert {
                new_index, new_len, ..
            } => {
                for k in 0..new_len {
                    added(path, out, new_index + k);
                }
            }
            similar::DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                let both = old_len.min(new_len);
                for k in 0..both {
                    pair(path, out, old_index + k, new_index + k);
                }
                for k in both..old_len {
                    removed(path, out, old_index + k);
                }
                for k in both..new_len {
                    added(path, out, new_index + k);
                }
            }
        }
    }
}

/// Appends `/token` with RFC 6901 escaping (`~` → `~0`, `/` → `~1`).
/// Appends one reference token to a JSON pointer, escaped.
pub(crate) fn push_token(path: &mut String, token: &str) {
    path.push('/');
    if token.contains(['~', '/']) {
        path.push_str(&token.replace('~', "~0").replace('/', "~1"));
    } else {
        path.push_str(token);
    }
}

/// A unified diff of the two states as pretty-printed JSON, with `context` lines around
/// each change and the given labels in the header.
pub fn unified(old: &Value, new: &Value, labels: (&str, &str), context: usize) -> String {
    let a = pretty(old);
    let b = pretty(new);
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(context)
        .header(labels.0, labels.1)
        .to_string()
}

/// Pretty JSON with a trailing newline (so the last line diffs like the others).
pub fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_changes_are_reported_by_pointer() {
        let old = json!({"order": {"status": "paid", "items": [1, 2]}, "gone": true});
        let new = json!({"order": {"status": "shipped", "items": [1, 2, 3], "a/b~": 1}});
        assert_eq!(
            changes(&old, &new),
            vec![
                Change::Removed {
                    path: "/gone".into(),
                    value: json!(true)
                },
                Change::Added {
                    path: "/order/a~1b~0".into(),
                    value: json!(1)
                },
                Change::Added {
                    path: "/order/items/2".into(),
                    value: json!(3)
                },
                Change::Changed {
                    path: "/order/status".into(),
                    from: json!("paid"),
                    to: json!("shipped")
                },
            ]
        );
    }

    #[test]
    fn equal_states_have_no_changes() {
        let v = json!({"a": [1, {"b": null}]});
        assert!(changes(&v, &v).is_empty());
    }

    #[test]
    fn a_sliding_window_is_one_removal_and_one_addition() {
        let old = json!({"messages": ["a", "b", "c", "d"]});
        let new = json!({"messages": ["b", "c", "d", "e"]});
        assert_eq!(
            changes(&old, &new),
            vec![
                Change::Removed {
                    path: "/messages/0".into(),
                    value: json!("a")
                },
                Change::Added {
                    path: "/messages/3".into(),
                    value: json!("e")
                },
            ]
        );
    }

    #[test]
    fn an_element_edited_in_place_is_diffed_inside() {
        let old = json!([{"id": 1, "s": "x"}, {"id": 2, "s": "y"}, 3]);
        let new = json!([{"id": 1, "s": "x"}, {"id": 2, "s": "z"}, 3]);
        assert_eq!(
            changes(&old, &new),
            vec![Change::Changed {
                path: "/1/s".into(),
                from: json!("y"),
                to: json!("z")
            }]
        );
    }

    #[test]
    fn inserting_in_the_middle_shifts_nothing() {
        let old = json!([1, 2, 3, 4]);
        let new = json!([1, 2, 9, 3, 4]);
        assert_eq!(
            changes(&old, &new),
            vec![Change::Added {
                path: "/2".into(),
                value: json!(9)
            }]
        );
    }

    #[test]
    fn a_change_of_type_is_one_change_at_that_path() {
        assert_eq!(
            changes(&json!({"a": {"b": 1}}), &json!({"a": [1]})),
            vec![Change::Changed {
                path: "/a".into(),
                from: json!({"b": 1}),
                to: json!([1])
            }]
        );
    }

    #[test]
    fn every_pointer_resolves_in_its_state() {
        let old = json!({"x": {"y/z": [1, 2]}, "k~": 0});
        let new = json!({"x": {"y/z": [1]}, "k~": 1});
        for change in changes(&old, &new) {
            match &change {
                Change::Removed { path, value } => assert_eq!(old.pointer(path), Some(value)),
                Change::Added { path, value } => assert_eq!(new.pointer(path), Some(value)),
                Change::Changed { path, from, to } => {
                    assert_eq!(old.pointer(path), Some(from));
                    assert_eq!(new.pointer(path), Some(to));
                }
            }
        }
    }

    #[test]
    fn unified_diff_marks_removed_and_added_lines() {
        let text = unified(
            &json!({"status": "paid"}),
            &json!({"status": "shipped"}),
            ("v1", "v2"),
            3,
        );
        assert!(text.contains("--- v1\n+++ v2\n"), "{text}");
        assert!(text.contains("-  \"status\": \"paid\"\n"), "{text}");
        assert!(text.contains("+  \"status\": \"shipped\"\n"), "{text}");
    }
}
