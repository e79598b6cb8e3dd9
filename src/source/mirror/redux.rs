//! A Redux DevTools export mirrored: one stream (named after the file), one event per action,
//! `@@INIT` first, keyed by its action id.
//!
//! - A lifted state holds the state after every action: each event stores the difference
//!   from the state before (the `delta` reducer, as a checkpoint history), with the action,
//!   its time, whether it was skipped and any error in the meta.
//! - An export of actions holds only the actions: each event's data is the action, and the
//!   state is the user's reducer's (their settings for the source), folded from the preloaded
//!   state, which `@@INIT` carries; until one is set, the `stored` reducer shows the preloaded
//!   state and the actions since.

use std::path::Path;

use serde_json::{Value, json};

use crate::engine::{Engine, Writer};
use crate::error::{Error, Result};
use crate::model::NewEvent;
use crate::reduce::stored::SNAPSHOT;
use crate::source::redux::{self, Session};

use super::{ID_FIELD, Synced};

/// The mirror's meta key for the shape read: `lifted` or `actions`.
pub const SHAPE: &str = "redux.shape";

/// The reducer a mirror of actions runs for the user's program: the action given as
/// `.action` too (as a Redux reducer takes it), the state starting from the preloaded one.
pub fn composed(user: &str) -> String {
    let program = user.strip_prefix("jq:").unwrap_or(user);
    format!(
        "jq:def reducer:\n{program}\n;\n(if .event.meta.{SNAPSHOT} != null then .state = .event.meta.{SNAPSHOT} else . end) | .action = .event.data | reducer"
    )
}

/// Appends the actions the mirror does not hold yet, checking that those it holds are the
/// file's.
pub(super) fn sync(
    engine: &mut Engine,
    source: &Path,
    bytes: &[u8],
    reducer: Option<&str>,
) -> Result<Synced> {
    let session =
        redux::parse(bytes).map_err(|e| Error::Input(format!("{}: {e}", source.display())))?;
    let stream = crate::source::name(
        &source
            .file_stem()
            .map_or_else(|| "redux".into(), |s| s.to_string_lossy()),
    );
    let wanted = if session.lifted {
        "delta".to_owned()
    } else {
        reducer.map_or_else(|| super::eventsourcing::UNSET.to_owned(), composed)
    };
    let wanted_fingerprint = engine.reducer(&wanted)?.fingerprint().to_owned();
    let events = events(&session);
    engine.write(|engine| {
        let store = engine.store();
        if store.meta("source.format")?.is_none() {
            store.set_meta("source.format", "redux")?;
            store.set_meta("source.path", &super::canonical_text(source))?;
            store.set_meta(ID_FIELD, "actionId")?;
            store.set_meta(SHAPE, if session.lifted { "lifted" } else { "actions" })?;
        }
        if store.meta(SHAPE)?.as_deref() != Some(if session.lifted { "lifted" } else { "actions" })
        {
            return Ok(Synced::Rebuild(Some(format!(
                "{}: the export is of the other shape now; its mirror was made again",
                source.display()
            ))));
        }
        super::use_reducer(store, &wanted, &wanted_fingerprint)?;
        let held = store.stream(&stream)?.map_or(0, |info| info.head);
        // The mirror's newest event must be the file's at the same place.
        if held > 0 {
            let info = store.require_stream(&stream)?;
            let mine = store.event(&info, held)?;
            let theirs = usize::try_from(held - 1).ok().and_then(|i| events.get(i));
            let same = match (mine, theirs) {
                (Some(mine), Some(theirs)) => {
                    mine.kind == theirs.kind && mine.meta == theirs.meta && mine.data == theirs.data
                }
                _ => false,
            };
            if !same {
                return Ok(Synced::Rebuild(Some(format!(
                    "{}: actions already mirrored changed in the export; its mirror was made again",
                    source.display()
                ))));
            }
        }
        let mut writer = Writer::new(false).keeping_going();
        for event in events
            .into_iter()
            .skip(usize::try_from(held).unwrap_or(usize::MAX))
        {
            writer.push(
                engine,
                NewEvent {
                    stream: stream.clone(),
                    ..event
                },
                None,
            )?;
        }
        writer.finish(engine)?;
        Ok(Synced::UpToDate)
    })
}

/// The session's actions as events (their stream filled in by the caller).
fn events(session: &Session) -> Vec<NewEvent> {
    let mut before = json!({});
    // Times within a stream never go back: a clock that stepped back is held.
    let mut last = None;
    session
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let kind = match step.action.get("type").and_then(Value::as_str) {
                Some(kind) if !kind.is_empty() => crate::source::name(kind),
                _ => "(no type)".to_owned(),
            };
            let mut meta = json!({"actionId": step.action_id});
            if step.skipped {
                meta["skipped"] = Value::Bool(true);
            }
            if let Some(error) = &step.error {
                meta["error"] = Value::String(error.clone());
            }
            let data = match &step.state {
                // A lifted state: the difference, the action beside it.
                Some(state) => {
                    meta["action"] = step.action.clone();
                    let mut diff = crate::reduce::delta::between(&before, state);
                    // A difference nests deeper than its state; where too deep, the state whole.
                    if crate::reduce::depth(&diff) > crate::reduce::MAX_DEPTH {
                        diff = json!({ "=": state });
                    }
                    before = state.clone();
                    diff
                }
                None => {
                    if i == 0
                        && let Some(preloaded) = &session.preloaded
                    {
                        meta[SNAPSHOT] = preloaded.clone();
                    }
                    step.action.clone()
                }
            };
            let time = step
                .time
                .map(|t| last.map_or(t, |l: crate::model::Micros| t.max(l)));
            last = time.or(last);
            NewEvent {
                stream: String::new(),
                kind,
                data,
                meta: Some(meta),
                time,
                idempotency_key: None,
            }
        })
        .collect()
}

/// Replays a lifted state's mirror and compares the state after each action with the one the
/// file stores: the mirror must reproduce every one exactly. Returns how many were equal, and
/// the findings where they differ (none to compare in an export of actions).
pub fn check(
    engine: &mut Engine,
    source: &Path,
    bytes: &[u8],
) -> Result<(u64, Vec<crate::snapshot::verify::Finding>)> {
    use crate::snapshot::verify::{Finding, FindingKind};
    let session =
        redux::parse(bytes).map_err(|e| Error::Input(format!("{}: {e}", source.display())))?;
    let mut equal = 0;
    let mut findings = Vec::new();
    if !session.lifted {
        return Ok((equal, findings));
    }
    engine.read(|engine| {
        for info in engine.store().streams()? {
            let reducer = engine.reducer(&info.reducer)?;
            let mut state = json!({});
            for event in engine.store().events(&info, 1, info.head, usize::MAX)? {
                let version = event.version;
                super::apply_event(&reducer, &info.name, &event, &mut state)
                    .map_err(|e| Error::Input(format!("{} v{version}: {e}", info.name)))?;
                let stored = usize::try_from(version - 1)
                    .ok()
                    .and_then(|i| session.steps.get(i))
                    .and_then(|step| step.state.as_ref());
                match stored {
                    Some(stored) if *stored == state => equal += 1,
                    Some(stored) => findings.push(Finding {
                        stream: info.name.clone(),
                        version: Some(version),
                        kind: FindingKind::Source,
                        detail: "the state after this action differs from the one the file stores"
                            .into(),
                        diff: crate::diff::changes(stored, &state),
                    }),
                    None => findings.push(Finding {
                        stream: info.name.clone(),
                        version: Some(version),
                        kind: FindingKind::Source,
                        detail: "the mirror holds an action the file does not".into(),
                        diff: Vec::new(),
                    }),
                }
            }
        }
        Ok(())
    })?;
    Ok((equal, findings))
}
