//! Trying a reducer before it is set: the events of every stream it would apply to are
//! replayed with it from the start, and the ones it refuses or that go over their budget
//! are counted. Knows nothing of terminals or arguments.

use serde_json::Value;

use crate::engine::{Engine, apply_row};
use crate::error::{Error, Result};
use crate::model::StreamInfo;

/// What trying a reducer on some streams found.
#[derive(Debug)]
pub struct Trial {
    /// Streams tried.
    pub streams: usize,
    /// Events tried.
    pub events: u64,
    /// Events the reducer refused or that went over their budget.
    pub failed_events: u64,
    /// Streams with at least one such event.
    pub failed_streams: usize,
    /// The first of them, in the order the streams were given and by version.
    pub first: Option<Error>,
}

impl Engine {
    /// Replays every event of `streams` with the reducer `spec` as if it were theirs,
    /// calling `progress(done, total)` after each event. An event it cannot apply is
    /// counted and skipped: the state stays as it was before it and the replay goes on,
    /// so every event is tried. Other errors (a missing version, a database error) end
    /// the trial.
    pub fn try_reducer(
        &mut self,
        spec: &str,
        streams: &[StreamInfo],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Trial> {
        let reducer = self.reducer(spec)?;
        let total = streams.iter().map(|s| s.head).sum();
        let mut trial = Trial {
            streams: streams.len(),
            events: 0,
            failed_events: 0,
            failed_streams: 0,
            first: None,
        };
        for stream in streams {
            let failed_before = trial.failed_events;
            let mut state = Value::Object(serde_json::Map::new());
            self.read(|engine| {
                engine.replay_rows(stream, 0, stream.head, |row| {
                    match apply_row(stream, &reducer, &mut state, row) {
                        Ok(()) => {}
                        Err(err @ (Error::Reduce { .. } | Error::OverBudget { .. })) => {
                            trial.failed_events += 1;
                            trial.first.get_or_insert(err);
                        }
                        Err(other) => return Err(other),
                    }
                    trial.events += 1;
                    progress(trial.events, total);
                    Ok(())
                })
            })?;
            if trial.failed_events > failed_before {
                trial.failed_streams += 1;
            }
        }
        Ok(trial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::AppendOptions;
    use crate::model::NewEvent;
    use crate::store::Store;
    use serde_json::json;

    fn event(stream: &str, n: u64) -> NewEvent {
        NewEvent {
            stream: stream.into(),
            kind: "T".into(),
            data: json!({ "n": n }),
            meta: None,
            time: None,
            idempotency_key: None,
        }
    }

    #[test]
    fn a_failing_event_is_counted_and_skipped_and_the_rest_tried() {
        let mut engine = Engine::new(Store::open_in_memory().unwrap());
        for (stream, n) in [("a", 1), ("a", 2), ("a", 3), ("b", 1)] {
            engine
                .append(event(stream, n), AppendOptions::default())
                .unwrap();
        }
        let streams = engine.store().streams().unwrap();
        let mut seen = Vec::new();
        // Version 2 of `a` fails; version 3 then applies to the state of version 1.
        let spec =
            r#"jq:if .event.data.n == 2 then error("two") else .state + {last: .event.data.n} end"#;
        let trial = engine
            .try_reducer(spec, &streams, &mut |done, total| seen.push((done, total)))
            .unwrap();
        assert_eq!(
            (
                trial.streams,
                trial.events,
                trial.failed_events,
                trial.failed_streams
            ),
            (2, 4, 1, 1)
        );
        assert!(
            matches!(trial.first, Some(Error::Reduce { ref stream, version: 2, .. }) if stream == "a")
        );
        assert_eq!(seen, [(1, 4), (2, 4), (3, 4), (4, 4)]);
    }
}
