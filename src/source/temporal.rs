//! A Temporal workflow history as `temporal workflow show --output json` (and the Web UI's
//! download) writes it: `{"events": [{"eventId": "1", "eventTime": …, "eventType":
//! "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED", "workflowExecutionStartedEventAttributes": {…}},
//! …]}`, proto3 JSON (64-bit integers as text). Read into events in rewind's model: the type
//! without its `EVENT_TYPE_` prefix in the case the Temporal docs use
//! (`WorkflowExecutionStarted`, which older exports write already), the attributes as data,
//! and in `meta` the event id and what the event refers to by id (an activity's events name
//! the activity only by the id of the event that scheduled it; the fold needs its
//! `activityId`). The execution state is the `temporal` reducer's fold.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::model::Micros;

/// One event of a history, in rewind's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    /// Temporal's `eventId` (1, 2, 3 … in a whole history).
    pub id: u64,
    /// `WorkflowExecutionStarted`, `ActivityTaskScheduled`, ….
    pub kind: String,
    /// `eventTime`, µs since the epoch.
    pub time: Micros,
    /// The event's attributes (`…EventAttributes`), `{}` where it has none.
    pub data: Value,
    /// `{"eventId": N}`, and `"activityId"` on an activity's events.
    pub meta: Value,
}

/// A parsed history.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// The workflow id, from the start event (absent from some exports).
    pub workflow_id: Option<String>,
    /// The events in order.
    pub events: Vec<HistoryEvent>,
}

/// Whether a JSON document looks like a Temporal history (for format detection).
pub fn looks_like(doc: &Value) -> bool {
    doc.get("events")
        .and_then(Value::as_array)
        .and_then(|events| events.first())
        .is_some_and(|first| first.get("eventType").is_some() && first.get("eventId").is_some())
}

/// Reads a history. Errors name the event (its position and id) and what is wrong with it.
pub fn parse(bytes: &[u8]) -> Result<History, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let events = doc
        .get("events")
        .and_then(Value::as_array)
        .ok_or("not a Temporal history: no \"events\" array at the top")?;
    let mut out = Vec::with_capacity(events.len());
    // The activity scheduled by each event id, for the events that name it only so.
    let mut activities: HashMap<u64, String> = HashMap::new();
    let mut workflow_id = None;
    for (index, event) in events.iter().enumerate() {
        let at = |what: String| format!("event #{} of the history: {what}", index + 1);
        let Value::Object(fields) = event else {
            return Err(at("not an object".into()));
        };
        let id = fields
            .get("eventId")
            .and_then(int64)
            .ok_or_else(|| at("no eventId".into()))?;
        let at = |what: String| format!("event {id} (#{} of the history): {what}", index + 1);
        if let Some(previous) = out.last().map(|e: &HistoryEvent| e.id)
            && id <= previous
        {
            return Err(at(format!(
                "its eventId is not after the previous one ({previous})"
            )));
        }
        let kind = fields
            .get("eventType")
            .and_then(Value::as_str)
            .map(event_type)
            .ok_or_else(|| at("no eventType".into()))?;
        if kind.is_empty() {
            return Err(at("an empty eventType".into()));
        }
        let time = match fields.get("eventTime") {
            Some(Value::String(text)) => crate::time::parse(text).map_err(at)?,
            Some(_) => return Err(at("eventTime is not text".into())),
            None => return Err(at("no eventTime".into())),
        };
        let data = fields
            .iter()
            .find(|(key, _)| key.ends_with("EventAttributes"))
            .map_or_else(|| Value::Object(Map::new()), |(_, v)| v.clone());
        let mut meta = json!({ "eventId": id });
        let scheduled = data.get("scheduledEventId").and_then(int64);
        match kind.as_str() {
            "WorkflowExecutionStarted" => {
                workflow_id = data
                    .get("workflowId")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            "ActivityTaskScheduled" => {
                if let Some(activity) = data.get("activityId").and_then(Value::as_str) {
                    activities.insert(id, activity.to_owned());
                    meta["activityId"] = json!(activity);
                }
            }
            kind if kind.starts_with("ActivityTask") => {
                if let Some(activity) = scheduled.and_then(|s| activities.get(&s)) {
                    meta["activityId"] = json!(activity);
                }
            }
            _ => {}
        }
        out.push(HistoryEvent {
            id,
            kind,
            time,
            data,
            meta,
        });
    }
    Ok(History {
        workflow_id,
        events: out,
    })
}

/// A proto3 JSON int64: text (as written) or a number.
pub(crate) fn int64(value: &Value) -> Option<u64> {
    match value {
        Value::String(text) => text.parse().ok(),
        value => value.as_u64(),
    }
}

/// `EVENT_TYPE_ACTIVITY_TASK_STARTED` → `ActivityTaskStarted`; a name already so is kept.
fn event_type(name: &str) -> String {
    let Some(rest) = name.strip_prefix("EVENT_TYPE_") else {
        return name.to_owned();
    };
    rest.split('_')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_named_as_the_docs_name_them() {
        assert_eq!(
            event_type("EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"),
            "WorkflowExecutionStarted"
        );
        assert_eq!(event_type("ActivityTaskStarted"), "ActivityTaskStarted");
    }

    #[test]
    fn an_activitys_events_carry_its_id() {
        let history = parse(
            br#"{"events": [
              {"eventId": "5", "eventTime": "2025-01-01T00:00:00Z", "eventType": "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED",
               "activityTaskScheduledEventAttributes": {"activityId": "a1", "activityType": {"name": "t"}}},
              {"eventId": "6", "eventTime": "2025-01-01T00:00:01Z", "eventType": "EVENT_TYPE_ACTIVITY_TASK_STARTED",
               "activityTaskStartedEventAttributes": {"scheduledEventId": "5", "attempt": 2}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(history.events[1].kind, "ActivityTaskStarted");
        assert_eq!(
            history.events[1].meta,
            json!({"eventId": 6, "activityId": "a1"})
        );
        assert_eq!(history.events[1].data["attempt"], json!(2));
    }

    #[test]
    fn a_broken_event_is_named_by_its_id_and_place() {
        let err = parse(
            br#"{"events": [
              {"eventId": "1", "eventTime": "2025-01-01T00:00:00Z", "eventType": "EVENT_TYPE_TIMER_STARTED"},
              {"eventId": "2", "eventTime": "yesterday", "eventType": "EVENT_TYPE_TIMER_FIRED"}
            ]}"#,
        )
        .unwrap_err();
        assert!(err.starts_with("event 2 (#2 of the history): "), "{err}");
        let err = parse(br#"{"events": [{"eventId": "3", "eventTime": "2025-01-01T00:00:00Z", "eventType": "X"}, {"eventId": "3", "eventTime": "2025-01-01T00:00:00Z", "eventType": "X"}]}"#).unwrap_err();
        assert!(err.contains("not after the previous one (3)"), "{err}");
        assert!(parse(b"[]").unwrap_err().contains("no \"events\""));
    }
}
