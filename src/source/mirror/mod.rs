//! Mirrors: what rewind derives from a source lives in a rewind database of its own, in the
//! user's data directory (or `$REWIND_DATA_DIR`), one per source, named by the source's
//! canonical path; the source is never written. Every open brings the mirror up to date from
//! where it stopped, inside one write transaction of the mirror (so two processes never sync
//! one source at once); each mirrored event keeps the source's own id (a Temporal event's as
//! its idempotency key, a LangGraph checkpoint's in its meta: [`ID_FIELD`] names where).
//! Content that changed or went under an id already mirrored means the source was rewritten:
//! the mirror is made again, and the caller is told so. A mirror also records what the source
//! says beside the events: forks (streams that continue another, `Store::create_fork`) and
//! unfinished runs ([`marks`]).
//!
//! Formats mirrored so far: LangGraph `SqliteSaver` files, Python `eventsourcing` SQLite
//! files, Temporal history exports, Redux DevTools exports.

use std::path::{Path, PathBuf};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::store::{OpenMode, Store};

use super::sqlite::{self, Kind};

pub use check::{check_against_source, check_mirror_at};
pub use mapped::snapshots::{Checked as CheckedSnapshots, check as check_mapped_snapshots};
pub use mapped::streams::columns as attribute_columns;

mod check;
pub mod eventsourcing;
mod json_events;
pub mod langgraph;
mod mapped;
pub mod pg_langgraph;
pub mod pg_mapped;
pub mod postgres;
pub mod redux;
mod temporal;

/// A source opened through its mirror.
#[derive(Debug)]
pub struct Mirrored {
    /// The mirror database to read.
    pub path: PathBuf,
    /// The format read ("temporal").
    pub format: &'static str,
    /// What the user should know (a mirror made again).
    pub note: Option<String>,
    /// Whether the mirror was made again (a reader holding it open must open it again).
    pub rebuilt: bool,
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
    if let Some(url) = crate::source::postgres::url_of(source) {
        let spec = crate::source::postgres::Spec::from_env(url)
            .map_err(|e| Error::Input(format!("the server source: {e}")))?;
        return server_mirror_path(&spec);
    }
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

/// Where a server source's mirror lives: named by the server and database, never by the
/// password.
fn server_mirror_path(spec: &crate::source::postgres::Spec) -> Result<PathBuf> {
    let shown = spec.shown();
    let hash = blake3::hash(shown.as_bytes()).to_hex();
    let name: String = shown
        .trim_start_matches("postgres://")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    Ok(folder()?.join(format!("postgres-{name}-{}.rewind", &hash[..16])))
}

/// Opens a path as a source if it is one rewind mirrors (a LangGraph checkpoint file, a
/// Temporal history export), bringing its mirror up to date; `None` for rewind's own files
/// (and for what is neither SQLite nor JSON, which the caller's open explains), which the
/// caller opens as it would have. `format` is what `--format` said it is, checked.
pub fn resolve(path: &Path, format: Option<&str>) -> Result<Option<Mirrored>> {
    resolve_showing(path, format, &|_, _| {})
}

/// How far a sync has got: checkpoints or events mirrored, of how many (called now and then
/// while a mirror is made, and once at the end).
pub type Progress<'a> = &'a dyn Fn(u64, u64);

/// [`resolve`], telling `progress` how a mirror being made comes along.
pub fn resolve_showing(
    path: &Path,
    format: Option<&str>,
    progress: Progress<'_>,
) -> Result<Option<Mirrored>> {
    if let Some(name) = format
        && super::formats::named(name).is_none()
    {
        return Err(Error::Input(format!(
            "--format {name:?}: no such format; rewind reads {}",
            super::formats::names()
        )));
    }
    if let Some(url) = crate::source::postgres::url_of(path) {
        return resolve_postgres(path, url, format, progress).map(Some);
    }
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
    let head = &head[..read];
    // An empty log of JSON Lines (a program about to write it) is a source with no events yet.
    let json_named = format == Some("json")
        || path.extension().is_some_and(|e| {
            ["json", "jsonl", "ndjson"]
                .iter()
                .any(|j| e.eq_ignore_ascii_case(j))
        });
    let found = if head.starts_with(b"SQLite format 3\0") {
        resolve_sqlite(path, format, progress)?
    } else if matches!(
        head.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    ) || (json_named && head.iter().all(u8::is_ascii_whitespace))
    {
        resolve_json(path, format)?
    } else if format.is_some_and(|f| f != "rewind") {
        return Err(not_of(path, format, "neither an SQLite file nor JSON"));
    } else if !head.is_empty() {
        return Err(not_of(
            path,
            None,
            "not a rewind database (not an SQLite file), nor JSON",
        ));
    } else {
        None
    };
    Ok(found)
}

/// A PostgreSQL database: mirrored if its tables are of a format rewind reads.
fn resolve_postgres(
    path: &Path,
    url: &str,
    format: Option<&str>,
    progress: Progress<'_>,
) -> Result<Mirrored> {
    use crate::source::postgres::{Spec, give_back, take};
    let spec = Spec::from_env(url).map_err(|e| Error::Input(format!("the server source: {e}")))?;
    if let Some(name) = format.filter(|f| !["eventsourcing", "marten", "langgraph"].contains(f)) {
        return Err(Error::Input(format!(
            "{}: --format {name}: rewind reads eventsourcing's, Marten's and LangGraph's tables from PostgreSQL",
            spec.shown()
        )));
    }
    let settings = super::settings::load(path)?;
    let settings_text = serde_json::to_string(&settings).unwrap_or_default();
    // Nothing written since the last sync, as the source's channel says: no query at all.
    if let Some(format) = crate::source::postgres::quiet(&spec, &settings_text) {
        let mirror = server_mirror_path(&spec)?;
        if mirror.exists() {
            return Ok(Mirrored {
                path: mirror,
                format,
                note: None,
                rebuilt: false,
            });
        }
    }
    // A connection that failed is not given back: the next sync makes a new one.
    let mut client = take(&spec).map_err(Error::Input)?;
    // A mapping the user chose for the database reads it, whatever else it might be read as.
    if let Some(chosen) = &settings.mapping {
        let mapping = super::mapping::Mapping::load_for(chosen, super::mapping::Dialect::Postgres)
            .map_err(Error::Input)?;
        let mirror = with_folder(server_mirror_path(&spec)?)?;
        let staged = pg_mapped::open_staged(&pg_mapped::staged_path(&mirror))?;
        if let Some(channel) = mapping.events.as_ref().and_then(|e| e.listen.as_deref()) {
            crate::source::postgres::listen(&spec, &mut client, channel).map_err(Error::Input)?;
        }
        pg_mapped::stage(&mut client, &spec, &mapping, &staged, progress)?;
        give_back(&spec, client);
        let over = pg_mapped::over_staged(&mapping);
        let shown = PathBuf::from(spec.shown());
        let (rebuilt, note) = bring_up_to_date(&mirror, |engine| {
            mapped::sync(
                engine,
                &staged,
                &shown,
                &over,
                settings.reducer.as_deref(),
                progress,
            )
        })?;
        crate::source::postgres::read_whole(&spec, "mapped", settings_text);
        return Ok(Mirrored {
            path: mirror,
            format: "mapped",
            note,
            rebuilt,
        });
    }
    let mut found = postgres::find(&mut client, &spec)?;
    if let Some(name) = format {
        found.retain(|f| f.format() == name);
    }
    let tables = postgres::choose(&spec, found)?;
    // eventsourcing NOTIFYs a channel named as its events table on every insert.
    if let postgres::Found::EventSourcing(t) = &tables {
        crate::source::postgres::listen(&spec, &mut client, &t.events.replace('.', "_"))
            .map_err(Error::Input)?;
    }
    let mirror = with_folder(server_mirror_path(&spec)?)?;
    let reducer = settings.reducer.as_deref();
    let (rebuilt, note) = match &tables {
        postgres::Found::LangGraph(t) => {
            let staged = pg_langgraph::open_staged(&pg_langgraph::staged_path(&mirror))?;
            pg_langgraph::stage(&mut client, &spec, t, &staged, progress)?;
            let shown = PathBuf::from(spec.shown());
            let mut deltas = langgraph::Deltas::new();
            bring_up_to_date(&mirror, |engine| {
                langgraph::sync(
                    engine,
                    &staged,
                    &shown,
                    &mut deltas,
                    &settings.channels,
                    progress,
                )
            })?
        }
        _ => bring_up_to_date(&mirror, |engine| match &tables {
            postgres::Found::EventSourcing(t) => {
                postgres::sync(engine, &mut client, &spec, t, reducer, progress)
            }
            postgres::Found::Marten(t) => {
                postgres::sync_marten(engine, &mut client, &spec, t, reducer, progress)
            }
            postgres::Found::LangGraph(_) => Ok(Synced::UpToDate),
        })?,
    };
    give_back(&spec, client);
    crate::source::postgres::read_whole(&spec, tables.format(), settings_text);
    Ok(Mirrored {
        path: mirror,
        format: tables.format(),
        note,
        rebuilt,
    })
}

/// The error for a file that is not of the format asked for (or of none rewind reads).
fn not_of(path: &Path, format: Option<&str>, what: &str) -> Error {
    match format {
        Some(name) => Error::Input(format!(
            "{}: not a {name} source ({what}); a {name} source is {}",
            path.display(),
            super::formats::named(name).map_or("", |f| f.recognised_by)
        )),
        None => Error::Input(format!(
            "{}: {what}, of no format rewind reads; it looked for\n{}",
            path.display(),
            super::formats::looked_for()
        )),
    }
}

/// A JSON file: mirrored if it is of a format rewind reads.
fn resolve_json(path: &Path, format: Option<&str>) -> Result<Option<Mirrored>> {
    let settings = super::settings::load(path)?;
    // A file unchanged since its mirror was last brought up to date (same size, same time of
    // change, same settings) is not read again: what a follower finds twice a second.
    let stamp = file_stamp(path, format, &settings);
    if let Some(known) = up_to_date(path, stamp.as_deref())? {
        return Ok(Some(known));
    }
    let bytes = std::fs::read(path).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    // Parsed once to tell the format (JSON Lines is no one document, and is told by its first
    // line); the format's reader reads it again.
    let doc = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
    let found = if format.is_none_or(|f| f == "temporal")
        && doc.as_ref().is_some_and(super::temporal::looks_like)
    {
        "temporal"
    } else if format.is_none_or(|f| f == "redux")
        && doc.as_ref().is_some_and(super::redux::looks_like)
    {
        "redux"
    } else if format == Some("json")
        || (format.is_none() && (settings.map.is_some() || super::json_events::looks_like(&bytes)))
    {
        "json"
    } else {
        let what = if doc.is_some() {
            "JSON"
        } else {
            "text that starts like JSON but does not parse as JSON"
        };
        return Err(not_of(path, format, what));
    };
    let mirror = prepare(path)?;
    let reducer = settings.reducer.as_deref();
    let (rebuilt, note) = match found {
        "temporal" => bring_up_to_date(&mirror, |engine| temporal::sync(engine, path, &bytes))?,
        "redux" => bring_up_to_date(&mirror, |engine| redux::sync(engine, path, &bytes, reducer))?,
        _ => {
            let map = settings.map.clone().unwrap_or_default();
            bring_up_to_date(&mirror, |engine| {
                json_events::sync(engine, path, &bytes, &map, reducer)
            })?
        }
    };
    if let Some(stamp) = stamp {
        Store::open(&mirror, OpenMode::Existing)?.set_meta(FILE_STAMP, &stamp)?;
    }
    Ok(Some(Mirrored {
        path: mirror,
        format: found,
        note,
        rebuilt,
    }))
}

/// The meta key of a whole-file source's stamp when its mirror was last brought up to date.
const FILE_STAMP: &str = "source.file_stamp";

/// A whole-file source's stamp: its size and time of change, the format asked for and the
/// user's settings for it (`None` where the file's time cannot be read).
fn file_stamp(
    path: &Path,
    format: Option<&str>,
    settings: &super::settings::Settings,
) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let changed = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    let settings = serde_json::to_string(settings).ok()?;
    Some(format!(
        "{} {changed} {} {}",
        meta.len(),
        format.unwrap_or("-"),
        blake3::hash(settings.as_bytes()).to_hex()
    ))
}

/// The mirror of a whole-file source, where it was brought up to date at this stamp.
fn up_to_date(path: &Path, stamp: Option<&str>) -> Result<Option<Mirrored>> {
    let Some(stamp) = stamp else {
        return Ok(None);
    };
    let mirror = mirror_path(path)?;
    if !mirror.exists() {
        return Ok(None);
    }
    let Ok(store) = Store::open(&mirror, OpenMode::ReadOnly) else {
        return Ok(None);
    };
    if store.meta(FILE_STAMP)?.as_deref() != Some(stamp) {
        return Ok(None);
    }
    let format = match store.meta("source.format")?.as_deref() {
        Some("temporal") => "temporal",
        Some("redux") => "redux",
        Some("json") => "json",
        _ => return Ok(None),
    };
    Ok(Some(Mirrored {
        path: mirror,
        format,
        note: None,
        rebuilt: false,
    }))
}

/// Another program's SQLite file: mirrored if it is of a format rewind reads.
fn resolve_sqlite(
    path: &Path,
    format: Option<&str>,
    progress: Progress<'_>,
) -> Result<Option<Mirrored>> {
    if sqlite::kind_at_a_glance(path) == Some(Kind::Rewind) && format.is_none_or(|f| f == "rewind")
    {
        return Ok(None);
    }
    // Files SQLite cannot open are left to the ordinary open, which says why.
    let Ok(foreign) = sqlite::open(path) else {
        return Ok(None);
    };
    // A mapping the user chose for the file reads it, whatever else it might be read as.
    let settings = super::settings::load(path)?;
    if let Some(spec) = &settings.mapping {
        let mapping = super::mapping::Mapping::load(spec).map_err(Error::Input)?;
        let mirror = prepare(path)?;
        let (rebuilt, made_again) = bring_up_to_date(&mirror, |engine| {
            mapped::sync(
                engine,
                &foreign.conn,
                path,
                &mapping,
                settings.reducer.as_deref(),
                progress,
            )
        })?;
        return Ok(Some(Mirrored {
            path: mirror,
            format: "mapped",
            note: join_notes(foreign.note.clone(), made_again),
            rebuilt,
        }));
    }
    let kind = sqlite::kind(&foreign.conn).map_err(|e| not_of(path, format, &e))?;
    let name = kind.map(Kind::name);
    match (kind, format) {
        (Some(Kind::Rewind), None | Some("rewind")) => return Ok(None),
        (Some(Kind::LangGraph), None | Some("langgraph")) => {}
        (Some(Kind::EventSourcing), None | Some("eventsourcing")) => {
            let settings = super::settings::load(path)?;
            let mirror = prepare(path)?;
            let (rebuilt, made_again) = bring_up_to_date(&mirror, |engine| {
                eventsourcing::sync(
                    engine,
                    &foreign.conn,
                    path,
                    settings.reducer.as_deref(),
                    progress,
                )
            })?;
            return Ok(Some(Mirrored {
                path: mirror,
                format: "eventsourcing",
                note: join_notes(foreign.note.clone(), made_again),
                rebuilt,
            }));
        }
        (Some(_), Some(_)) => {
            return Err(not_of(
                path,
                format,
                &format!("it is a {} file", name.unwrap_or_default()),
            ));
        }
        (None, _) => {
            return Err(not_of(
                path,
                format,
                "an SQLite file whose tables are none rewind knows (read your own tables with a mapping: --map FILE.toml, or --map seed-000 … for the seed systems)",
            ));
        }
    }
    let mirror = prepare(path)?;
    let settings = super::settings::load(path)?;
    let mut deltas = langgraph::Deltas::new();
    let (rebuilt, made_again) = bring_up_to_date(&mirror, |engine| {
        langgraph::sync(
            engine,
            &foreign.conn,
            path,
            &mut deltas,
            &settings.channels,
            progress,
        )
    })?;
    Ok(Some(Mirrored {
        path: mirror,
        format: "langgraph",
        note: join_notes(foreign.note.clone(), made_again),
        rebuilt,
    }))
}

/// Two notes for the user as one.
fn join_notes(first: Option<String>, second: Option<String>) -> Option<String> {
    match (first, second) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

/// The mirror's path for a source, its folder made.
fn prepare(source: &Path) -> Result<PathBuf> {
    with_folder(mirror_path(source)?)
}

/// `mirror`, its folder made.
fn with_folder(mirror: PathBuf) -> Result<PathBuf> {
    std::fs::create_dir_all(mirror.parent().unwrap_or(Path::new("."))).map_err(|cause| {
        Error::Io {
            path: mirror.clone(),
            cause,
        }
    })?;
    Ok(mirror)
}

/// What a sync found.
pub(super) enum Synced {
    /// The mirror holds everything the source does.
    UpToDate,
    /// What the mirror holds no longer matches the source (or the source's history was
    /// re-cut, as a new fork does): it must be made again, telling the user this where given.
    Rebuild(Option<String>),
}

/// Runs a sync on the mirror, and where the mirror must be made again, makes it again from
/// nothing (at most twice: a source that changes again meanwhile is caught by the next open). Returns
/// whether it was made again, and what the user should be told.
fn bring_up_to_date(
    mirror: &Path,
    mut sync: impl FnMut(&mut Engine) -> Result<Synced>,
) -> Result<(bool, Option<String>)> {
    // A mirror made here for a source that turns out unreadable is not left behind.
    let existed = mirror.exists();
    let outcome = bring_up_to_date_in(mirror, &mut sync);
    if outcome.is_err() && !existed {
        let _ = remove_database(mirror);
    }
    outcome
}

fn bring_up_to_date_in(
    mirror: &Path,
    sync: &mut impl FnMut(&mut Engine) -> Result<Synced>,
) -> Result<(bool, Option<String>)> {
    let mut engine = Engine::new(Store::open(mirror, OpenMode::Create)?);
    let Synced::Rebuild(note) = sync(&mut engine)? else {
        return Ok((false, None));
    };
    drop(engine);
    // Made again from nothing: a second time too where the first learned something that
    // shapes it from the start (a LangGraph DeltaChannel first seen late).
    for _ in 0..2 {
        remove_database(mirror)?;
        let mut engine = Engine::new(Store::open(mirror, OpenMode::Create)?);
        if let Synced::UpToDate = sync(&mut engine)? {
            return Ok((true, note));
        }
    }
    Err(Error::Input(format!(
        "the source changed while its mirror {} was being made; open it again",
        mirror.display()
    )))
}

/// Makes `spec` (of `fingerprint`) the mirror's reducer where it is not yet (the user set
/// another), removing the snapshots made with the one before: newest first, so a delta goes
/// before the snapshot it is based on.
fn use_reducer(store: &Store, spec: &str, fingerprint: &str) -> Result<()> {
    if store.default_reducer()? == spec {
        return Ok(());
    }
    store.set_meta("default_reducer", spec)?;
    let mut stale: Vec<i64> = store
        .snapshots(None)?
        .into_iter()
        .filter(|s| s.fingerprint != fingerprint)
        .map(|s| s.id)
        .collect();
    stale.sort_unstable_by(|a, b| b.cmp(a));
    store.delete_snapshots(&stale)?;
    Ok(())
}

/// Applies a mirrored event to `state` with its stream's reducer (what a check of a mirror
/// against its source replays).
fn apply_event(
    reducer: &crate::reduce::Reducer,
    stream: &str,
    event: &crate::model::Event,
    state: &mut serde_json::Value,
) -> std::result::Result<(), crate::reduce::ReduceError> {
    reducer.apply(
        state,
        crate::reduce::EventRef {
            stream,
            kind: &event.kind,
            version: event.version,
            ts: event.ts,
            data: std::borrow::Cow::Borrowed(&event.data),
            meta: event.meta.as_ref(),
        },
    )
}

/// The meta key naming the event meta field that holds the source's own id for an event
/// (`checkpoint_id`, `eventId`): what `--at-id` looks for.
pub const ID_FIELD: &str = "source.id_field";

/// The meta key naming the event meta field that holds the source's global order (an
/// `eventsourcing` notification id): what `--at-seq` looks for. A source without one has no
/// global order.
pub const SEQ_FIELD: &str = "source.seq_field";

/// The meta key prefix under which a stream of a mirror made before lineage was read
/// through (its prefix copied) recorded the stream it continues and from which version
/// (`{"parent": STREAM, "version": N}`), by the stream's name.
pub const LINEAGE: &str = "lineage.";

/// A source's path as its mirror records it: canonical where it can be made so.
pub(crate) fn canonical_text(source: &Path) -> String {
    if let Some(url) = crate::source::postgres::url_of(source) {
        return crate::source::postgres::Spec::from_env(url)
            .map_or_else(|_| "postgres://…".to_owned(), |spec| spec.shown());
    }
    source
        .canonicalize()
        .unwrap_or_else(|_| source.to_path_buf())
        .display()
        .to_string()
}

/// A mirror as `rewind mirrors` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    /// The mirror database.
    pub mirror: PathBuf,
    /// The source it mirrors, as recorded at its last sync.
    pub source: Option<String>,
    /// The source's format.
    pub format: Option<String>,
    /// Whether the source is still there (a server source always counts as there).
    pub source_exists: bool,
    /// Bytes on disk, its log files included.
    pub bytes: u64,
    /// When it last changed (its newest sync that found something), µs since the epoch.
    pub changed: Option<crate::model::Micros>,
}

/// Every mirror in the mirrors folder, by file name.
pub fn list() -> Result<Vec<Listed>> {
    let dir = folder()?;
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(cause) => return Err(Error::Io { path: dir, cause }),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|cause| Error::Io {
                path: dir.clone(),
                cause,
            })?
            .path();
        if path.extension().is_none_or(|e| e != "rewind") {
            continue;
        }
        let (source, format) = match Store::open(&path, OpenMode::ReadOnly) {
            Ok(store) => (
                store.meta("source.path").ok().flatten(),
                store.meta("source.format").ok().flatten(),
            ),
            Err(_) => (None, None),
        };
        let bytes = ["", "-wal", "-shm", ".staged", ".staged-wal", ".staged-shm"]
            .iter()
            .filter_map(|s| std::fs::metadata(crate::store::sidecar(&path, s)).ok())
            .map(|m| m.len())
            .sum();
        let changed = ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(crate::store::sidecar(&path, s)).ok())
            .filter_map(|m| m.modified().ok())
            .max()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| crate::model::Micros::try_from(d.as_micros()).ok());
        found.push(Listed {
            // A server is not asked: its mirror is kept (removed only by --remove).
            source_exists: source
                .as_deref()
                .is_some_and(|s| crate::source::postgres::is_url(s) || Path::new(s).exists()),
            mirror: path,
            source,
            format,
            bytes,
            changed,
        });
    }
    found.sort_by(|a, b| a.mirror.cmp(&b.mirror));
    Ok(found)
}

/// Removes a mirror (its snapshots and labels go with it; the source is untouched), and what
/// was staged for it from a server.
pub fn remove(mirror: &Path) -> Result<()> {
    remove_database(mirror)?;
    let staged = pg_langgraph::staged_path(mirror);
    for suffix in ["", "-wal", "-shm"] {
        let file = crate::store::sidecar(&staged, suffix);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(cause) => return Err(Error::Io { path: file, cause }),
        }
    }
    Ok(())
}

/// What a mirror records beside a stream's events.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Marks {
    /// The stream this one continues, and the version it continues from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fork: Option<Fork>,
    /// Whether the source's run stopped with work under the newest event unfinished (a
    /// crash, an interrupt awaiting an answer).
    pub unfinished: bool,
    /// That work: the writes under the newest checkpoint, as the source stores them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<serde_json::Value>,
    /// What the source says the stream is (an aggregate's class).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// What a mapping's `[streams]` query gives for it (status, lease …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// Whether the stream is read through a mapping (its pending work is the mapping's rows).
    #[serde(skip)]
    pub mapped: bool,
    /// Where the mapping's unfinished condition holds: the time it was judged at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judged_at: Option<crate::model::Micros>,
}

/// Where a stream forks from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fork {
    /// The stream it continues.
    pub parent: String,
    /// The parent's version it continues from.
    pub version: u64,
}

/// The meta key prefix under which a stream records what the source says it is (an
/// `eventsourcing` aggregate's class), by the stream's name.
pub const KIND: &str = "source.kind.";

/// A stream's marks in a database (none in one that is not a mirror); a mapping's unfinished
/// condition judged as of `now` (else the newest time the source records).
pub fn marks(store: &Store, stream: &str, now: Option<crate::model::Micros>) -> Result<Marks> {
    let base = match store.stream(stream)? {
        Some(info) => store.base_of(&info)?,
        None => None,
    };
    let fork = match base {
        Some((base, version)) => Some(Fork {
            parent: base.name,
            version,
        }),
        // A mirror made before lineage was read through copied the prefix, and said so here.
        None => store
            .meta(&format!("{LINEAGE}{stream}"))?
            .and_then(|text| serde_json::from_str(&text).ok()),
    };
    let mut pending: Option<serde_json::Value> = store
        .meta(&format!("{}{stream}", langgraph::PENDING))?
        .and_then(|text| serde_json::from_str(&text).ok());
    let mut unfinished = pending.is_some();
    let recorded = mapped::streams::recorded(store, stream)?;
    let mut judged_at = None;
    let pending_rows = !recorded.pending.is_empty();
    if pending_rows {
        unfinished = true;
        pending = Some(serde_json::Value::Array(recorded.pending));
    }
    if let Some(attributes) = &recorded.attributes
        && let Some((yes, at)) = mapped::streams::unfinished(store, attributes, now)?
    {
        unfinished |= yes;
        judged_at = at.filter(|_| yes);
    }
    Ok(Marks {
        fork,
        unfinished,
        pending,
        kind: store.meta(&format!("{KIND}{stream}"))?,
        mapped: recorded.attributes.is_some() || pending_rows,
        attributes: recorded.attributes,
        judged_at,
    })
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
