//! Events of the user's own as JSON (an array, or JSON Lines) mirrored: a stream per value of
//! the stream's field, an event per object in the file's order, each keeping its position
//! (the global order: `--at-seq`) and its id where a field holds one (`--at-id`). The
//! mapping used is the user's (`--map`, kept in their settings) completed by the usual names;
//! the reducer is theirs, else rewind's default (`merge`).

use std::path::Path;

use serde_json::{Value, json};

use crate::engine::{Engine, Writer};
use crate::error::{Error, Result};
use crate::model::NewEvent;
use crate::source::json_events::{self, Mapping};

use super::{ID_FIELD, SEQ_FIELD, Synced};

/// The mirror's meta key for what it has read: `{"mapping", "count"}`.
const STAMP: &str = "json.stamp";

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    /// The mapping the events were read with.
    mapping: String,
    /// How many objects of the file are mirrored.
    count: u64,
}

/// Appends the file's events the mirror does not hold yet, checking that those it holds are
/// the file's.
pub(super) fn sync(
    engine: &mut Engine,
    source: &Path,
    bytes: &[u8],
    given: &Mapping,
    reducer: Option<&str>,
) -> Result<Synced> {
    let fallback = source
        .file_stem()
        .map_or_else(|| "events".into(), |s| s.to_string_lossy().into_owned());
    let (mapping, events) = json_events::read(bytes, given, &fallback)
        .map_err(|e| Error::Input(format!("{}: {e}", source.display())))?;
    let wanted = reducer.unwrap_or("merge").to_owned();
    let wanted_fingerprint = engine.reducer(&wanted)?.fingerprint().to_owned();
    engine.write(|engine| {
        let store = engine.store();
        if store.meta("source.format")?.is_none() {
            store.set_meta("source.format", "json")?;
            store.set_meta("source.path", &super::canonical_text(source))?;
            store.set_meta(SEQ_FIELD, "position")?;
        }
        store.set_meta(
            ID_FIELD,
            if mapping.id.is_some() {
                "id"
            } else {
                "position"
            },
        )?;
        super::use_reducer(store, &wanted, &wanted_fingerprint)?;
        let held: Stamp = store
            .meta(STAMP)?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let spec = mapping.spec();
        if held.count > 0 && held.mapping != spec {
            return Ok(rewritten(source, "it is read with another mapping now"));
        }
        if held.count > events.len() as u64 {
            return Ok(rewritten(
                source,
                "events already mirrored were removed from the file",
            ));
        }
        // The newest event mirrored must be the file's at the same place.
        if held.count > 0 {
            let theirs = &events[usize::try_from(held.count - 1).unwrap_or(usize::MAX)];
            let same = match store.stream(&theirs.stream)? {
                Some(info) => store.event(&info, info.head)?.is_some_and(|mine| {
                    mine.kind == theirs.kind
                        && mine.data == theirs.data
                        && mine.meta.as_ref().and_then(|m| m.get("position"))
                            == Some(&json!(theirs.position))
                }),
                None => false,
            };
            if !same {
                return Ok(rewritten(
                    source,
                    "an event already mirrored changed in the file",
                ));
            }
        }
        let mut writer = Writer::new(false).keeping_going();
        let count = events.len() as u64;
        for event in events
            .into_iter()
            .skip(usize::try_from(held.count).unwrap_or(usize::MAX))
        {
            let mut meta = json!({"position": event.position});
            if let Some(id) = event.id {
                meta["id"] = match id {
                    Value::String(s) => Value::String(s),
                    other => Value::String(other.to_string()),
                };
            }
            let position = event.position;
            writer
                .push(
                    engine,
                    NewEvent {
                        stream: event.stream,
                        kind: event.kind,
                        data: event.data,
                        meta: Some(meta),
                        time: event.time,
                        idempotency_key: None,
                    },
                    None,
                )
                .map_err(|e| match e {
                    Error::Input(what) => Error::Input(format!(
                        "{}: event {position} of the file: {what}",
                        source.display()
                    )),
                    e => e,
                })?;
        }
        writer.finish(engine)?;
        engine.store().set_meta(
            STAMP,
            &serde_json::to_string(&Stamp {
                mapping: spec,
                count,
            })
            .map_err(|e| Error::Input(e.to_string()))?,
        )?;
        Ok(Synced::UpToDate)
    })
}

fn rewritten(source: &Path, what: &str) -> Synced {
    Synced::Rebuild(Some(format!(
        "{}: {what}; its mirror was made again",
        source.display()
    )))
}
