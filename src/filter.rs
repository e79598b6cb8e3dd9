//! The stream filter: one syntax, for the debugger's stream prompt (`F`) and
//! `rewind streams --filter`. Words separated by spaces, every one of which must hold:
//!
//! - `is:unfinished`: the newest state looks unfinished (a run stopped mid-task);
//! - `status:PATTERN`: the stream's status (its newest state's top-level `status`, else the
//!   source's `status` attribute) matches, in any case, `*` and `?` as in a glob;
//! - a word with `*` or `?`: a glob over the whole name (`order-*`);
//! - any other word: text the name contains, in any case.
//!
//! `!` before a word asks for the opposite (`!order-*`).

use serde_json::{Map, Value};

/// The syntax in a line, for the prompt's hint and the help.
pub const SYNTAX: &str = "text · order-* · status:failed · is:unfinished · !word";

/// What the filter knows about one stream.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its status, if it has one.
    pub status: Option<&'a str>,
    /// Whether its newest state looks unfinished.
    pub unfinished: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Unfinished,
    Status(String),
    Glob(String),
    Text(String),
}

/// A parsed stream filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFilter {
    text: String,
    terms: Vec<(bool, Term)>,
}

impl StreamFilter {
    /// Parses a filter; empty text is no filter.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let mut terms = Vec::new();
        for word in text.split_whitespace() {
            let (wanted, word) = match word.strip_prefix('!') {
                Some(rest) => (false, rest),
                None => (true, word),
            };
            let term = if let Some(what) = word.strip_prefix("is:") {
                match what {
                    "unfinished" => Term::Unfinished,
                    _ => {
                        return Err(format!(
                            "{word:?}: the only `is:` is `is:unfinished` ({SYNTAX})"
                        ));
                    }
                }
            } else if let Some(status) = word.strip_prefix("status:") {
                if status.is_empty() {
                    return Err(format!(
                        "`status:` needs a status, as in status:failed ({SYNTAX})"
                    ));
                }
                Term::Status(status.to_lowercase())
            } else if word.is_empty() {
                return Err(format!("a lone `!` says nothing ({SYNTAX})"));
            } else if word.contains(['*', '?']) {
                Term::Glob(word.to_string())
            } else {
                Term::Text(word.to_lowercase())
            };
            terms.push((wanted, term));
        }
        Ok((!terms.is_empty()).then(|| Self {
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
            terms,
        }))
    }

    /// The filter as typed (spaces collapsed).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether judging a stream needs its newest state (a status or unfinished word).
    pub fn needs_state(&self) -> bool {
        self.terms
            .iter()
            .any(|(_, t)| matches!(t, Term::Unfinished | Term::Status(_)))
    }

    /// Whether a stream passes.
    pub fn matches(&self, facts: Facts) -> bool {
        self.terms.iter().all(|(wanted, term)| {
            let holds = match term {
                Term::Unfinished => facts.unfinished,
                Term::Status(pattern) => facts
                    .status
                    .is_some_and(|s| crate::text::glob(pattern, &s.to_lowercase())),
                Term::Glob(pattern) => crate::text::glob(pattern, facts.name),
                Term::Text(text) => facts.name.to_lowercase().contains(text.as_str()),
            };
            holds == *wanted
        })
    }
}

/// What the filter judges of a stream from its newest state (`None`: it cannot be built) and
/// what its source records: its status, and whether it looks unfinished.
pub fn judge(head: Option<&Value>, marks: &crate::source::mirror::Marks) -> (Option<String>, bool) {
    let attributes = marks.attributes.as_ref();
    match head {
        Some(state) => (
            status_of(state, attributes),
            marks.unfinished || unfinished(state),
        ),
        None => (status_of(&Value::Null, attributes), marks.unfinished),
    }
}

/// A stream's status: its newest state's top-level `status`, else the source's `status`
/// attribute (a string, or a number or boolean written out).
pub fn status_of(state: &Value, attributes: Option<&Map<String, Value>>) -> Option<String> {
    let word = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    state
        .get("status")
        .and_then(word)
        .or_else(|| attributes.and_then(|a| a.get("status")).and_then(word))
}

/// Whether a state looks like a checkpoint taken mid-task: a top-level `status` that says
/// work is under way, or a top-level `pending…` field that holds something.
pub fn unfinished(state: &Value) -> bool {
    let Some(map) = state.as_object() else {
        return false;
    };
    let busy = map.get("status").and_then(Value::as_str).is_some_and(|s| {
        matches!(
            s.to_ascii_lowercase().as_str(),
            "running" | "pending" | "started" | "in_progress" | "in-progress" | "waiting"
        )
    });
    busy || map.iter().any(|(k, v)| {
        k.starts_with("pending")
            && !matches!(v, Value::Null)
            && v.as_array().is_none_or(|a| !a.is_empty())
            && v.as_object().is_none_or(|o| !o.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts<'a>(name: &'a str, status: Option<&'a str>, unfinished: bool) -> Facts<'a> {
        Facts {
            name,
            status,
            unfinished,
        }
    }

    fn passes(filter: &str, f: Facts) -> bool {
        StreamFilter::parse(filter).unwrap().unwrap().matches(f)
    }

    #[test]
    fn words_are_text_globs_statuses_and_unfinished_all_of_which_hold() {
        let run = facts("agent-run-7", Some("running"), true);
        let order = facts("order-1042", Some("Delivered"), false);
        assert!(passes("run", run));
        assert!(passes("RUN-7", run));
        assert!(!passes("run", order));
        assert!(passes("order-*", order));
        assert!(!passes("order-*", run), "a glob matches the whole name");
        assert!(passes("*-7", run));
        assert!(passes("is:unfinished", run));
        assert!(!passes("is:unfinished", order));
        assert!(passes("status:delivered", order));
        assert!(passes("status:deliv*", order));
        assert!(!passes("status:deliv", order), "a status matches whole");
        assert!(!passes("status:x", facts("a", None, false)));
        assert!(passes("order !is:unfinished", order));
        assert!(!passes("order is:unfinished", order));
        assert!(passes("!order-*", run));
    }

    #[test]
    fn empty_text_is_no_filter_and_bad_words_are_explained() {
        assert_eq!(StreamFilter::parse("  ").unwrap(), None);
        let f = StreamFilter::parse(" order-*   is:unfinished ")
            .unwrap()
            .unwrap();
        assert_eq!(f.text(), "order-* is:unfinished");
        assert!(f.needs_state());
        assert!(!StreamFilter::parse("order").unwrap().unwrap().needs_state());
        for bad in ["is:done", "status:", "!"] {
            let e = StreamFilter::parse(bad).unwrap_err();
            assert!(e.contains("is:unfinished"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_status_is_the_states_then_the_sources() {
        let attributes: Map<String, Value> =
            serde_json::from_value(json!({"status": "failed"})).unwrap();
        assert_eq!(
            status_of(&json!({"status": "paid"}), Some(&attributes)).as_deref(),
            Some("paid")
        );
        assert_eq!(
            status_of(&json!({"status": null}), Some(&attributes)).as_deref(),
            Some("failed")
        );
        assert_eq!(status_of(&json!({"status": 3}), None).as_deref(), Some("3"));
        assert_eq!(status_of(&json!([1]), None), None);
        assert_eq!(status_of(&json!({"status": {"a": 1}}), None), None);
    }

    #[test]
    fn a_checkpoint_is_unfinished_while_running_or_with_pending_work() {
        assert!(unfinished(&json!({"status": "running"})));
        assert!(unfinished(
            &json!({"status": "x", "pending_tool_call": {"id": 1}})
        ));
        assert!(!unfinished(
            &json!({"status": "completed", "pending_tool_call": null})
        ));
        assert!(!unfinished(&json!({"pending": []})));
        assert!(!unfinished(&json!([1, 2])));
    }
}
