//! The `stored` reducer: what a source that keeps its own snapshots shows while the user has
//! set no reducer for it (Python `eventsourcing`, whose events carry a method's arguments and
//! not the state they lead to). Never a merge of those arguments passed off as the state: the
//! state is the source's own newest snapshot at or before the event (from the event's meta
//! [`SNAPSHOT`], where the mirror put it) and the events since, saying that no reducer is set.

use serde_json::{Value, json};

use super::{MAX_DEPTH, ReduceError, depth};

/// Bumped whenever what the fold gives changes: snapshots built by another are stale.
pub const FINGERPRINT: &str = "stored/1";

/// The event meta field holding the source's own snapshot taken at that event: the state
/// the source says it leads to.
pub const SNAPSHOT: &str = "stored_snapshot";

/// What the state says in place of a reducer's answer.
pub const NO_REDUCER: &str = "no reducer is set for this source: shown is its own newest snapshot at or before here and the events since; set one with `rewind reducer SOURCE --set 'jq:…'`";

/// Applies one event: its snapshot where the source stored one, else one more event since.
pub fn apply(
    state: &mut Value,
    kind: &str,
    version: u64,
    data: &Value,
    meta: Option<&Value>,
) -> Result<(), ReduceError> {
    if let Some(snapshot) = meta.and_then(|m| m.get(SNAPSHOT)) {
        if depth(snapshot) + 2 > MAX_DEPTH {
            return Err(ReduceError::TooDeep);
        }
        *state = json!({
            "$no_reducer": NO_REDUCER,
            "snapshot": {"version": version, "state": snapshot},
            "events_since": [],
        });
        return Ok(());
    }
    let event = json!({"version": version, "type": kind, "data": data});
    if depth(&event) + 2 > MAX_DEPTH {
        return Err(ReduceError::TooDeep);
    }
    match state.get_mut("events_since").and_then(Value::as_array_mut) {
        Some(since) => since.push(event),
        None => {
            *state = json!({
                "$no_reducer": NO_REDUCER,
                "snapshot": null,
                "events_since": [event],
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_snapshot_and_the_events_since_never_a_merge() {
        let mut state = json!({});
        apply(&mut state, "Opened", 1, &json!({"owner": "Ada"}), None).unwrap();
        apply(&mut state, "Deposited", 2, &json!({"amount": "1.10"}), None).unwrap();
        assert_eq!(state["snapshot"], Value::Null);
        assert_eq!(state["events_since"].as_array().unwrap().len(), 2);
        assert_eq!(state["$no_reducer"], NO_REDUCER);
        let meta = json!({SNAPSHOT: {"owner": "Ada", "balance": "1.10"}});
        apply(&mut state, "Deposited", 3, &json!({}), Some(&meta)).unwrap();
        assert_eq!(
            state["snapshot"],
            json!({"version": 3, "state": {"owner": "Ada", "balance": "1.10"}})
        );
        assert_eq!(state["events_since"], json!([]));
        apply(&mut state, "Withdrawn", 4, &json!({"amount": "0.10"}), None).unwrap();
        assert_eq!(
            state["events_since"],
            json!([{"version": 4, "type": "Withdrawn", "data": {"amount": "0.10"}}])
        );
        assert!(state.get("balance").is_none(), "no merge of the arguments");
    }
}
