//! Mirrors: what rewind derives from a source lives in a rewind database of its own, in the
//! user's data directory (or `$REWIND_DATA_DIR`), one per source, named by the source's
//! canonical path; the source is never written. Every open brings the mirror up to date from
//! where it stopped, inside one write transaction of the mirror (so two processes never sync
//! one source at once); each mirrored event keeps the source's own id as its idempotency key.
//! Content that changed under an id already mirrored means the source was rewritten: the
//! mirror is made again, and the caller is told so.
//!
//! Formats mirrored so far: Temporal history exports.

use std::path::{Path, PathBuf};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::NewEvent;
use crate::store::{OpenMode, Store};

use super::temporal;

/// A source opened through its mirror.
#[derive(Debug)]
pub struct Mirrored {
    /// The mirror database to read.
    pub path: PathBuf,
    /// The format read ("temporal").
    pub format: &'static str,
    /// What the user should know (a mirror made again).
    pub note: Option<String>,
}

/// The folder mirrors live in.
pub fn folder() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("REWIND_DATA_DIR") {
        return Ok(PathBuf::from(dir).join("mirrors"));
    }
    directories::ProjectDirs::from("", "", "rewind")
        .map(|dirs| dirs.data_dir().join("mirrors"))
        .ok_or_else(|| {
            Error::Input("no home directory to keep mirrors in; set REWIND_DATA_DIR".into())
        })
}

/// Where a source's mirror lives: its file name and a hash of its canonical path.
pub fn mirror_path(source: &Path) -> Result<PathBuf> {
    let canonical = source.canonicalize().map_err(|cause| Error::Io {
        path: source.to_path_buf(),
        cause,
    })?;
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex();
    let name: String = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(folder()?.join(format!("{name}-{}.rewind", &hash[..16])))
}

/// Opens a path as a source if it is one rewind mirrors (a Temporal history export), bringing
/// its mirror up to date; `None` for anything else (rewind's own files among them), which the
/// caller opens as it would have.
pub fn resolve(path: &Path) -> Result<Option<Mirrored>> {
    if !path.is_file() {
        return Ok(None);
    }
    // A file that cannot be read here is left to the ordinary open, whose message says why.
    let mut head = [0u8; 64];
    let read = {
        use std::io::Read;
        match std::fs::File::open(path).and_then(|mut file| file.read(&mut head)) {
            Ok(read) => read,
            Err(_) => return Ok(None),
        }
    };
    if head[..read].iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(None);
    };
    if !temporal::looks_like(&doc) {
        return Ok(None);
    }
    drop(doc);
    let history =
        temporal::parse(&bytes).map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    let stream = history.workflow_id.clone().unwrap_or_else(|| {
        path.file_stem()
            .map_or_else(|| "workflow".into(), |s| s.to_string_lossy().into_owned())
    });
    let mirror = mirror_path(path)?;
    std::fs::create_dir_all(mirror.parent().unwrap_or(Path::new("."))).map_err(|cause| {
        Error::Io {
            path: mirror.clone(),
            cause,
        }
    })?;
    let note = match sync_temporal(&mirror, path, &stream, &history)? {
        Synced::Rewritten => {
            // Made again from the start: what the old mirror held no longer matches.
            remove_database(&mirror)?;
            sync_temporal(&mirror, path, &stream, &history)?;
            Some(format!(
                "{}: events already mirrored changed in the source; its mirror was made again",
                path.display()
            ))
        }
        Synced::UpToDate => None,
    };
    Ok(Some(Mirrored {
        path: mirror,
        format: "temporal",
        note,
    }))
}

enum Synced {
    UpToDate,
    Rewritten,
}

/// Appends the history's events the mirror does not hold yet, checking that those it holds
/// are the source's.
fn sync_temporal(
    mirror: &Path,
    source: &Path,
    stream: &str,
    history: &temporal::History,
) -> Result<Synced> {
    let mut engine = Engine::new(Store::open(mirror, OpenMode::Create)?);
    engine.write(|engine| {
        let store = engine.store();
        store.set_meta("source.format", "temporal")?;
        store.set_meta("source.path", &source.display().to_string())?;
        let info = match store.stream(stream)? {
            Some(info) => info,
            None => store.create_stream(stream, Some("temporal"))?,
        };
        // The mirror's newest event must be the source's event at the same place.
        if info.head > 0 {
            let held = store.event(&info, info.head)?;
            let source_event = usize::try_from(info.head - 1)
                .ok()
                .and_then(|i| history.events.get(i));
            let same = match (held, source_event) {
                (Some(held), Some(event)) => {
                    held.idempotency_key.as_deref() == Some(key(stream, event.id).as_str())
                        && held.data == event.data
                }
                _ => false,
            };
            if !same {
                return Ok(Synced::Rewritten);
            }
        }
        let mut writer = crate::engine::Writer::new(false);
        for event in history.events.iter().skip(info.head as usize) {
            writer.push(
                engine,
                NewEvent {
                    stream: stream.to_owned(),
                    kind: event.kind.clone(),
                    data: event.data.clone(),
                    meta: Some(event.meta.clone()),
                    time: Some(event.time),
                    idempotency_key: Some(key(stream, event.id)),
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

/// Removes a mirror database and its log files.
fn remove_database(path: &Path) -> Result<()> {
    for suffix in [
        "",
        "-wal",
        "-shm",
        ".archive",
        ".archive-wal",
        ".archive-shm",
    ] {
        let file = crate::store::sidecar(path, suffix);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(cause) => return Err(Error::Io { path: file, cause }),
        }
    }
    Ok(())
}
