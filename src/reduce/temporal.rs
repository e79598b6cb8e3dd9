//! The `temporal` reducer: a workflow's execution state folded from its history's events (as
//! [`crate::source::temporal`] reads them): `status`, `workflow_type`, `task_queue`, `input`,
//! `result`, `failure`, `activities` (by `activityId`), `timers` (by `timerId`), `signals`
//! and `workflow_task`. Payloads are decoded (`json/plain` to its value, `binary/null` to
//! null; any other encoding is kept as `{"encoding", "data"}`). Event types the state does
//! not cover (markers, child workflows, updates …) leave it as it is.
//!
//! An input is the list of its payloads (one per argument); a result is its one payload's
//! value (a list if there are several, null if none). A failure is `{message, type,
//! nonRetryable, cause}`, where `type` is the application failure's own type or else the kind
//! of failure (`ActivityFailure`, `TimeoutFailure` …) and `cause` is the failure it wraps. An
//! activity's attempt is 1 when scheduled and then the one its started event records (a
//! server writes no events for the attempts that failed before, only the last failure).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::{MAX_DEPTH, ReduceError, depth};

/// Bumped whenever what the fold gives changes: snapshots built by another are stale.
pub const FINGERPRINT: &str = "temporal/1";

/// Applies one history event to a state.
pub fn apply(
    state: &mut Value,
    kind: &str,
    data: &Value,
    meta: Option<&Value>,
) -> Result<(), ReduceError> {
    let mut next = state.clone();
    let map = shape(&mut next);
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let name = |key: &str| text(data.get(key).and_then(|v| v.get("name")));
    match kind {
        "WorkflowExecutionStarted" => {
            map.insert("status".into(), json!("Running"));
            map.insert("workflow_type".into(), json!(name("workflowType")));
            map.insert("task_queue".into(), json!(name("taskQueue")));
            map.insert("input".into(), payloads(data.get("input")));
        }
        "WorkflowTaskScheduled" | "WorkflowTaskStarted" => set_task(map, None, true),
        "WorkflowTaskCompleted" => set_task(map, Some(1), false),
        "WorkflowTaskFailed" | "WorkflowTaskTimedOut" => set_task(map, None, false),
        "ActivityTaskScheduled" => {
            let id = text(data.get("activityId")).unwrap_or_default();
            let activity = json!({
                "type": name("activityType"),
                "status": "Scheduled",
                "attempt": 1,
                "input": payloads(data.get("input")),
                "result": null,
                "failure": null,
                "last_failure": null,
            });
            object(map, "activities").insert(id, activity);
        }
        "ActivityTaskStarted"
        | "ActivityTaskCompleted"
        | "ActivityTaskFailed"
        | "ActivityTaskTimedOut"
        | "ActivityTaskCanceled" => {
            let id = text(meta.and_then(|m| m.get("activityId"))).unwrap_or_default();
            let activities = object(map, "activities");
            let Some(Value::Object(activity)) = activities.get_mut(&id) else {
                // Its scheduling is not in the history (a page of one): nothing to update.
                return Ok(());
            };
            match kind {
                "ActivityTaskStarted" => {
                    activity.insert("status".into(), json!("Started"));
                    let attempt = data.get("attempt").and_then(Value::as_u64).unwrap_or(1);
                    activity.insert("attempt".into(), json!(attempt));
                    if let Some(last) = data.get("lastFailure") {
                        activity.insert("last_failure".into(), failure(last, MAX_DEPTH));
                    }
                }
                "ActivityTaskCompleted" => {
                    activity.insert("status".into(), json!("Completed"));
                    activity.insert("result".into(), result(data.get("result")));
                }
                _ => {
                    let status = kind.trim_start_matches("ActivityTask");
                    activity.insert("status".into(), json!(status));
                    if let Some(f) = data.get("failure") {
                        activity.insert("failure".into(), failure(f, MAX_DEPTH));
                    }
                }
            }
        }
        "TimerStarted" => {
            let id = text(data.get("timerId")).unwrap_or_default();
            let timer = json!({
                "duration": data.get("startToFireTimeout").cloned().unwrap_or(Value::Null),
                "status": "Started",
            });
            object(map, "timers").insert(id, timer);
        }
        "TimerFired" | "TimerCanceled" => {
            let id = text(data.get("timerId")).unwrap_or_default();
            if let Some(Value::Object(timer)) = object(map, "timers").get_mut(&id) {
                timer.insert("status".into(), json!(kind.trim_start_matches("Timer")));
            }
        }
        "WorkflowExecutionSignaled" => {
            let signal = json!({
                "name": text(data.get("signalName")),
                "input": payloads(data.get("input")),
                "eventId": meta.and_then(|m| m.get("eventId")).cloned().unwrap_or(Value::Null),
            });
            if let Some(Value::Array(signals)) = map.get_mut("signals") {
                signals.push(signal);
            }
        }
        "WorkflowExecutionCompleted" => {
            close(map, "Completed");
            map.insert("result".into(), result(data.get("result")));
        }
        "WorkflowExecutionFailed" => {
            close(map, "Failed");
            if let Some(f) = data.get("failure") {
                map.insert("failure".into(), failure(f, MAX_DEPTH));
            }
        }
        "WorkflowExecutionTimedOut" => close(map, "TimedOut"),
        "WorkflowExecutionCanceled" => close(map, "Canceled"),
        "WorkflowExecutionTerminated" => close(map, "Terminated"),
        "WorkflowExecutionContinuedAsNew" => close(map, "ContinuedAsNew"),
        _ => return Ok(()),
    }
    if depth(&next) > MAX_DEPTH {
        return Err(ReduceError::TooDeep);
    }
    *state = next;
    Ok(())
}

/// The state's fields, each there from the first event on (whatever that event is).
fn shape(state: &mut Value) -> &mut Map<String, Value> {
    if !state.is_object() {
        *state = Value::Object(Map::new());
    }
    let Value::Object(map) = state else {
        unreachable!("made an object above")
    };
    for (key, value) in [
        ("status", json!("Running")),
        ("workflow_type", Value::Null),
        ("task_queue", Value::Null),
        ("input", json!([])),
        ("result", Value::Null),
        ("failure", Value::Null),
        ("activities", json!({})),
        ("timers", json!({})),
        ("signals", json!([])),
        ("workflow_task", json!({"completed": 0, "in_flight": false})),
    ] {
        map.entry(key).or_insert(value);
    }
    map
}

/// The object under `key`, made one if it is something else.
fn object<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    let Value::Object(inner) = slot else {
        unreachable!("made an object above")
    };
    inner
}

fn set_task(map: &mut Map<String, Value>, completed: Option<u64>, in_flight: bool) {
    let task = object(map, "workflow_task");
    if let Some(n) = completed {
        let count = task.get("completed").and_then(Value::as_u64).unwrap_or(0);
        task.insert("completed".into(), json!(count + n));
    }
    task.insert("in_flight".into(), json!(in_flight));
}

fn close(map: &mut Map<String, Value>, status: &str) {
    map.insert("status".into(), json!(status));
    set_task(map, None, false);
}

/// `{"payloads": [...]}` as the list of their values.
fn payloads(field: Option<&Value>) -> Value {
    let list = field
        .and_then(|f| f.get("payloads"))
        .and_then(Value::as_array)
        .map(|items| items.iter().map(payload).collect())
        .unwrap_or_default();
    Value::Array(list)
}

/// A result: its one payload's value, null without one, the list if there are several.
fn result(field: Option<&Value>) -> Value {
    match payloads(field) {
        Value::Array(mut items) if items.len() <= 1 => items.pop().unwrap_or(Value::Null),
        list => list,
    }
}

/// One payload's value, decoded by its `encoding` metadata.
fn payload(payload: &Value) -> Value {
    let b64 = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
    };
    let encoding = b64(payload.get("metadata").and_then(|m| m.get("encoding")));
    let data = b64(payload.get("data"));
    match (encoding.as_deref(), data) {
        (Some(b"binary/null"), _) => Value::Null,
        (Some(b"json/plain"), Some(bytes)) => match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(_) => raw(payload),
        },
        _ => raw(payload),
    }
}

/// A payload rewind does not decode: its encoding as text and its data as stored.
fn raw(payload: &Value) -> Value {
    let encoding = payload
        .get("metadata")
        .and_then(|m| m.get("encoding"))
        .and_then(Value::as_str)
        .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    json!({
        "encoding": encoding,
        "data": payload.get("data").cloned().unwrap_or(Value::Null),
    })
}

/// A failure as `{message, type, nonRetryable, cause}`, its causes as deep as `levels`.
fn failure(f: &Value, levels: usize) -> Value {
    if !f.is_object() {
        return Value::Null;
    }
    let application = f.get("applicationFailureInfo");
    let kind = application
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            f.as_object()?.keys().find_map(|key| {
                let kind = key.strip_suffix("FailureInfo")?;
                let mut chars = kind.chars();
                let first = chars.next()?.to_ascii_uppercase();
                Some(format!("{first}{}Failure", chars.as_str()))
            })
        });
    let non_retryable = application
        .and_then(|a| a.get("nonRetryable"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let cause = match f.get("cause") {
        Some(cause) if levels > 0 => failure(cause, levels - 1),
        _ => Value::Null,
    };
    json!({
        "message": f.get("message").cloned().unwrap_or(Value::Null),
        "type": kind,
        "nonRetryable": non_retryable,
        "cause": cause,
    })
}
