//! A state as pretty JSON lines, each knowing the JSON pointer it shows, so that the lines
//! an event changed can be found and highlighted. Text is made safe for the terminal here.

use serde_json::Value;

/// One line of the state pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Nesting depth (two spaces each).
    pub depth: usize,
    /// What the line shows, already escaped.
    pub text: String,
    /// The JSON pointer of the value the line belongs to.
    pub path: String,
}

/// The lines of a state, at most `limit` of them (a state of millions of nodes is never
/// laid out whole for one screen).
pub fn lines(value: &Value, limit: usize) -> Vec<Line> {
    let mut out = Vec::new();
    walk(value, None, 0, &mut String::new(), true, &mut out, limit);
    out
}

fn scalar(value: &Value) -> String {
    crate::text::clean(&value.to_string(), 200)
}

fn walk(
    value: &Value,
    key: Option<&str>,
    depth: usize,
    path: &mut String,
    last: bool,
    out: &mut Vec<Line>,
    limit: usize,
) {
    if out.len() >= limit {
        return;
    }
    let comma = if last { "" } else { "," };
    let label = key.map_or_else(String::new, |k| {
        format!(
            "{}: ",
            crate::text::clean(&Value::String(k.to_string()).to_string(), 80)
        )
    });
    let (open, close, children): (&str, &str, Vec<(String, &Value)>) = match value {
        Value::Object(map) if !map.is_empty() => {
            ("{", "}", map.iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) if !items.is_empty() => (
            "[",
            "]",
            items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
        ),
        _ => {
            out.push(Line {
                depth,
                text: format!("{label}{}{comma}", scalar(value)),
                path: path.clone(),
            });
            return;
        }
    };
    out.push(Line {
        depth,
        text: format!("{label}{open}"),
        path: path.clone(),
    });
    let is_object = value.is_object();
    let count = children.len();
    for (i, (name, child)) in children.into_iter().enumerate() {
        let len = path.len();
        path.push('/');
        path.push_str(&name.replace('~', "~0").replace('/', "~1"));
        walk(
            child,
            is_object.then_some(name.as_str()),
            depth + 1,
            path,
            i + 1 == count,
            out,
            limit,
        );
        path.truncate(len);
        if out.len() >= limit {
            return;
        }
    }
    out.push(Line {
        depth,
        text: format!("{close}{comma}"),
        path: path.clone(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_line_knows_its_pointer() {
        let got = lines(&json!({"a": {"b": [1, "x\u{1b}"]}, "c/d": null}), 100);
        let shown: Vec<(usize, &str, &str)> = got
            .iter()
            .map(|l| (l.depth, l.text.as_str(), l.path.as_str()))
            .collect();
        assert_eq!(
            shown,
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
    }

    #[test]
    fn a_huge_state_is_cut_at_the_limit() {
        let big = Value::Array((0..10_000).map(Value::from).collect());
        assert_eq!(lines(&big, 50).len(), 50);
    }
}
