//! A Temporal history export mirrored: one stream per workflow, one event per history event,
//! keyed by the event's id.

use std::path::Path;

use crate::engine::{Engine, Writer};
use crate::error::{Error, Result};
use crate::model::NewEvent;
use crate::source::temporal;

use super::Synced;

/// Appends the history's events the mirror does not hold yet, checking that those it holds
/// are the source's.
pub(super) fn sync(engine: &mut Engine, source: &Path, bytes: &[u8]) -> Result<Synced> {
    let history =
        temporal::parse(bytes).map_err(|e| Error::Input(format!("{}: {e}", source.display())))?;
    let stream = history.workflow_id.clone().unwrap_or_else(|| {
        source
            .file_stem()
            .map_or_else(|| "workflow".into(), |s| s.to_string_lossy().into_owned())
    });
    engine.write(|engine| {
        let store = engine.store();
        store.set_meta("source.format", "temporal")?;
        store.set_meta("source.path", &super::canonical_text(source))?;
        store.set_meta(super::ID_FIELD, "eventId")?;
        let info = match store.stream(&stream)? {
            Some(info) => info,
            None => store.create_stream(&stream, Some("temporal"))?,
        };
        // The mirror's newest event must be the source's event at the same place.
        if info.head > 0 {
            let held = store.event(&info, info.head)?;
            let source_event = usize::try_from(info.head - 1)
                .ok()
                .and_then(|i| history.events.get(i));
            let same = match (held, source_event) {
                (Some(held), Some(event)) => {
                    held.idempotency_key.as_deref() == Some(key(&stream, event.id).as_str())
                        && held.data == event.data
                }
                _ => false,
            };
            if !same {
                return Ok(Synced::Rebuild(Some(format!(
                    "{}: events already mirrored changed in the source; its mirror was made again",
                    source.display()
                ))));
            }
        }
        let mut writer = Writer::new(false);
        for event in history.events.iter().skip(info.head as usize) {
            writer.push(
                engine,
                NewEvent {
                    stream: stream.clone(),
                    kind: event.kind.clone(),
                    data: event.data.clone(),
                    meta: Some(event.meta.clone()),
                    time: Some(event.time),
                    idempotency_key: Some(key(&stream, event.id)),
                },
                None,
            )?;
        }
        writer.finish(engine)?;
        Ok(Synced::UpToDate)
    })
}

/// A mirrored event's key: the source's own id, within its stream.
fn key(stream: &str, id: u64) -> String {
    format!("{stream}#{id}")
}
