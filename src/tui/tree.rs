//! A state as a tree of pretty-JSON rows with folding: each row knows the JSON pointer it
//! shows, so the rows an event changed can be highlighted, blamed and copied. Only the rows
//! on screen are formatted; counting and finding walk the value without allocating per
//! node, so a state of megabytes still lays out within a frame. Text is made safe here.

use std::collections::HashSet;
use std::ops::ControlFlow;

use serde_json::Value;

/// One row of the state pane, formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Nesting depth (two spaces each).
    pub depth: usize,
    /// What the row shows, already escaped.
    pub text: String,
    /// The JSON pointer of the value the row belongs to.
    pub path: String,
    /// Whether the row is a container that can be folded or unfolded.
    pub container: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Leaf,
    Open,
    Close,
    Folded,
}

/// A row before formatting: what the walk knows at that point.
struct Visit<'a> {
    depth: usize,
    key: Option<&'a str>,
    value: &'a Value,
    path: &'a str,
    shape: Shape,
    last: bool,
}

impl Visit<'_> {
    fn format(&self) -> Row {
        let comma = if self.last { "" } else { "," };
        let label = self.key.map_or_else(String::new, |k| {
            format!(
                "{}: ",
                crate::text::clean(&Value::String(k.to_string()).to_string(), 80)
            )
        });
        let text = match (self.shape, self.value) {
            (Shape::Leaf, v) => format!("{label}{}{comma}", scalar(v)),
            (Shape::Open, Value::Object(_)) => format!("{label}{{"),
            (Shape::Open, _) => format!("{label}["),
            (Shape::Close, Value::Object(_)) => format!("}}{comma}"),
            (Shape::Close, _) => format!("]{comma}"),
            (Shape::Folded, Value::Object(map)) => {
                format!("{label}{{…}}{comma}  {} keys", map.len())
            }
            (Shape::Folded, Value::Array(items)) => {
                format!("{label}[…]{comma}  {} items", items.len())
            }
            (Shape::Folded, v) => format!("{label}{}{comma}", scalar(v)),
        };
        Row {
            depth: self.depth,
            text,
            path: self.path.to_string(),
            container: matches!(self.shape, Shape::Open | Shape::Close | Shape::Folded),
        }
    }
}

fn scalar(value: &Value) -> String {
    crate::text::clean(&value.to_string(), 200)
}

/// Whether a value is an object or array with something in it (what can be folded).
pub fn non_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

/// Walks the rows in order, skipping the inside of folded containers.
fn walk<'a>(
    value: &'a Value,
    key: Option<&'a str>,
    depth: usize,
    last: bool,
    path: &mut String,
    folded: &HashSet<String>,
    f: &mut dyn FnMut(&Visit<'_>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    if !non_empty_container(value) {
        return f(&Visit {
            depth,
            key,
            value,
            path,
            shape: Shape::Leaf,
            last,
        });
    }
    if folded.contains(path.as_str()) {
        return f(&Visit {
            depth,
            key,
            value,
            path,
            shape: Shape::Folded,
            last,
        });
    }
    f(&Visit {
        depth,
        key,
        value,
        path,
        shape: Shape::Open,
        last,
    })?;
    let len = path.len();
    match value {
        Value::Object(map) => {
            let count = map.len();
            for (i, (k, child)) in map.iter().enumerate() {
                crate::diff::push_token(path, k);
                let flow = walk(child, Some(k), depth + 1, i + 1 == count, path, folded, f);
                path.truncate(len);
                flow?;
            }
        }
        Value::Array(items) => {
            let count = items.len();
            let mut token = itoa_buf();
            for (i, child) in items.iter().enumerate() {
                token.clear();
                push_index(&mut token, i);
                crate::diff::push_token(path, &token);
                let flow = walk(child, None, depth + 1, i + 1 == count, path, folded, f);
                path.truncate(len);
                flow?;
            }
        }
        _ => {}
    }
    f(&Visit {
        depth,
        key: None,
        value,
        path,
        shape: Shape::Close,
        last,
    })
}

fn itoa_buf() -> String {
    String::with_capacity(20)
}

fn push_index(buf: &mut String, i: usize) {
    use std::fmt::Write as _;
    let _ = write!(buf, "{i}");
}

fn visit_all(
    value: &Value,
    folded: &HashSet<String>,
    f: &mut dyn FnMut(&Visit<'_>) -> ControlFlow<()>,
) {
    let mut path = String::new();
    let _ = walk(value, None, 0, true, &mut path, folded, f);
}

/// How many rows the state has with these folds.
pub fn count(value: &Value, folded: &HashSet<String>) -> usize {
    locate(value, folded, "").0
}

/// In one walk: how many rows the state has with these folds, and the row that shows
/// `path` (a container's opening row), or, when a fold hides it or it is gone, the row of
/// its nearest container that is shown.
pub fn locate(value: &Value, folded: &HashSet<String>, path: &str) -> (usize, usize) {
    let (mut n, mut found) = (0, 0);
    visit_all(value, folded, &mut |v| {
        // Rows come in document order, so the last container of `path` seen is the nearest.
        let within = path
            .strip_prefix(v.path)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if within && v.shape != Shape::Close {
            found = n;
        }
        n += 1;
        ControlFlow::Continue(())
    });
    (n, found)
}

/// The rows `top..top + height`, formatted.
pub fn window(value: &Value, folded: &HashSet<String>, top: usize, height: usize) -> Vec<Row> {
    let (mut n, mut rows) = (0, Vec::with_capacity(height));
    visit_all(value, folded, &mut |v| {
        if n >= top + height {
            return ControlFlow::Break(());
        }
        if n >= top {
            rows.push(v.format());
        }
        n += 1;
        ControlFlow::Continue(())
    });
    rows
}

/// The path of the next value (after `from` in document order, or before it when not
/// `forward`, wrapping around) whose key or scalar text contains `needle`, ignoring folds.
pub fn find(value: &Value, needle: &str, from: &str, forward: bool) -> Option<String> {
    let needle = needle.to_lowercase();
    let none = HashSet::new();
    let (mut matches, mut here) = (Vec::new(), None);
    visit_all(value, &none, &mut |v| {
        if v.shape == Shape::Close {
            return ControlFlow::Continue(());
        }
        if here.is_none() && v.path == from {
            here = Some(matches.len());
        }
        let key_hit = v.key.is_some_and(|k| k.to_lowercase().contains(&needle));
        let value_hit = v.shape == Shape::Leaf
            && match v.value {
                Value::String(s) => s.to_lowercase().contains(&needle),
                other => other.to_string().contains(&needle),
            };
        if (key_hit || value_hit) && v.path != from {
            matches.push(v.path.to_string());
        }
        ControlFlow::Continue(())
    });
    let here = here.unwrap_or(0);
    if matches.is_empty() {
        return None;
    }
    if forward {
        matches.get(here).or_else(|| matches.first()).cloned()
    } else {
        here.checked_sub(1)
            .and_then(|i| matches.get(i))
            .or_else(|| matches.last())
            .cloned()
    }
}

/// The pointers of `path`'s containers, outermost first (the root, `""`, included).
pub fn ancestors(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = path;
    while let Some(cut) = p.rfind('/') {
        p = &p[..cut];
        out.push(p.to_string());
    }
    out.reverse();
    out
}

/// The containers at `depth` and deeper, to fold a large state to an overview.
pub fn containers_below(value: &Value, depth: usize) -> HashSet<String> {
    let mut out = HashSet::new();
    let none = HashSet::new();
    visit_all(value, &none, &mut |v| {
        if v.shape == Shape::Open && v.depth >= depth {
            out.insert(v.path.to_string());
        }
        ControlFlow::Continue(())
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shown(rows: &[Row]) -> Vec<(usize, &str, &str)> {
        rows.iter()
            .map(|r| (r.depth, r.text.as_str(), r.path.as_str()))
            .collect()
    }

    #[test]
    fn every_row_knows_its_pointer_and_text_is_escaped() {
        let state = json!({"a": {"b": [1, "x\u{1b}"]}, "c/d": null});
        let rows = window(&state, &HashSet::new(), 0, 100);
        assert_eq!(
            shown(&rows),
            vec![
                (0, "{", ""),
                (1, "\"a\": {", "/a"),
                (2, "\"b\": [", "/a/b"),
                (3, "1,", "/a/b/0"),
                (3, "\"x\\u001b\"", "/a/b/1"),
                (2, "]", "/a/b"),
                (1, "},", "/a"),
                (1, "\"c/d\": null", "/c~1d"),
                (0, "}", ""),
            ]
        );
        assert_eq!(count(&state, &HashSet::new()), 9);
    }

    #[test]
    fn a_folded_container_is_one_row_with_its_size() {
        let state = json!({"a": {"b": [1, 2, 3]}, "z": 1});
        let folded: HashSet<String> = ["/a/b".to_string()].into();
        let rows = window(&state, &folded, 0, 100);
        assert_eq!(rows[2].text, "\"b\": […]  3 items");
        assert_eq!(count(&state, &folded), 6);
        assert_eq!(locate(&state, &folded, "/z"), (6, 4));
        assert_eq!(
            locate(&state, &folded, "/a/b/1"),
            (6, 2),
            "hidden by the fold: the folded container's row"
        );
        assert_eq!(locate(&state, &folded, "/gone"), (6, 0), "gone: the root");
    }

    #[test]
    fn only_the_window_is_formatted() {
        let big = Value::Array((0..10_000).map(Value::from).collect());
        let rows = window(&big, &HashSet::new(), 5_000, 3);
        assert_eq!(shown(&rows)[0], (1, "4999,", "/4999"));
        assert_eq!(rows.len(), 3);
        assert_eq!(count(&big, &HashSet::new()), 10_002);
    }

    #[test]
    fn find_goes_to_the_next_key_or_value_and_wraps() {
        let state = json!({"a": "failed", "b": {"failed_count": 2}, "c": "ok"});
        assert_eq!(find(&state, "FAIL", "", true).as_deref(), Some("/a"));
        assert_eq!(
            find(&state, "fail", "/a", true).as_deref(),
            Some("/b/failed_count")
        );
        assert_eq!(find(&state, "fail", "/c", true).as_deref(), Some("/a"));
        assert_eq!(
            find(&state, "fail", "/a", false).as_deref(),
            Some("/b/failed_count")
        );
        assert_eq!(find(&state, "nothing", "", true), None);
    }

    #[test]
    fn ancestors_run_from_the_root() {
        assert_eq!(ancestors("/a/b/0"), vec!["", "/a", "/a/b"]);
    }
}
