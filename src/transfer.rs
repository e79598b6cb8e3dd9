//! Import and export: a database's events and the settings that decide its states (reducers,
//! policies, manual and labelled snapshots) through the [`jsonl`](crate::jsonl) format, so that
//! an export imported into a new database reproduces it. An import is one transaction, and
//! importing the same file again changes nothing. Knows nothing of terminals or arguments.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::engine::{Engine, ImportItem, Policy, WriteReport, Writer, differences};
use crate::error::{Error, Result};
use crate::jsonl::{DatabaseSettings, FORMAT, Record, SnapshotMark, StreamHead, StreamSettings};
use crate::model::Target;

impl Engine {
    /// Imports records (events and the settings an export carries) in one transaction: all
    /// or nothing. A record is what a line said with where it came from, or an error that
    /// already says where. Settings apply before the events after them; an event already
    /// stored identically (the same stream and version, or a retried idempotency key) is
    /// skipped and counted in `duplicates`; anything that would change what is stored is
    /// refused, naming the line.
    pub fn import<R: Into<Record>>(
        &mut self,
        records: impl IntoIterator<Item = Result<R>>,
        no_snapshots: bool,
    ) -> Result<WriteReport> {
        self.write(|engine| {
            let mut import = Import {
                writer: Writer::new(no_snapshots),
                file_default: None,
                settled: HashSet::new(),
                first: true,
                heads: Vec::new(),
            };
            for record in records {
                let record = record?.into();
                let at = match &record {
                    Record::Event(item) => item.at.clone(),
                    Record::Database { at, .. }
                    | Record::Stream { at, .. }
                    | Record::Snapshot { at, .. } => at.clone(),
                };
                import.record(engine, record).map_err(|cause| Error::At {
                    at,
                    cause: Box::new(cause),
                })?;
            }
            import.writer.finish(engine)?;
            for (name, head, at) in std::mem::take(&mut import.heads) {
                check_head(engine, &name, &head).map_err(|cause| Error::At {
                    at,
                    cause: Box::new(cause),
                })?;
            }
            Ok(import.writer.report)
        })
    }

    /// Writes a database (or one stream, or what a client at seq `since_seq` lacks) as the
    /// lines `import` reads: the header, a settings line per stream, then the events in seq
    /// order, each manual or labelled snapshot after the event at its version. Policies go
    /// only into whole exports (`since_seq` 0): a client catching up keeps its own. Returns
    /// how many events were written.
    pub fn export(
        &mut self,
        stream: Option<&str>,
        since_seq: i64,
        mut write: impl FnMut(&Value) -> Result<()>,
    ) -> Result<u64> {
        self.read(|engine| {
            let store = engine.store();
            let only = stream.map(|name| store.require_stream(name)).transpose()?;
            let whole = since_seq <= 0;
            let policy = if whole && only.is_none() {
                Some(engine.own_policy(None)?).filter(|p| *p != Policy::default())
            } else {
                None
            };
            write(&crate::jsonl::header_line(&DatabaseSettings {
                format: FORMAT,
                default_reducer: Some(store.default_reducer()?),
                policy,
            }))?;
            let streams = match &only {
                Some(s) => vec![s.clone()],
                None if whole => store.streams()?,
                None => {
                    let written = store.streams_written_since(since_seq)?;
                    store
                        .streams()?
                        .into_iter()
                        .filter(|s| written.contains(&s.id))
                        .collect()
                }
            };
            for s in &streams {
                let policy = if whole {
                    Some(engine.own_policy(Some(&s.name))?).filter(|p| *p != Policy::default())
                } else {
                    None
                };
                let head = match store.head_hash(s.id)? {
                    Some(hash) if s.head > 0 => Some(StreamHead {
                        version: s.head,
                        hash: crate::chain::to_hex(&hash),
                    }),
                    _ => None,
                };
                write(&crate::jsonl::stream_line(&StreamSettings {
                    name: s.name.clone(),
                    reducer: s.reducer_override.then(|| s.reducer.clone()),
                    policy,
                    head,
                }))?;
            }
            // Policy snapshots are the policy's to take again; manual and labelled ones were
            // someone's choice of a version, so they travel.
            let names: HashMap<_, _> = streams.iter().map(|s| (s.id, s.name.as_str())).collect();
            let mut marks: HashMap<&str, HashMap<u64, Option<String>>> = HashMap::new();
            for snap in store.snapshots(only.as_ref().map(|s| s.id))? {
                if let Some(name) = names
                    .get(&snap.stream_id)
                    .filter(|_| snap.trigger == "manual" || snap.label.is_some())
                {
                    marks
                        .entry(name)
                        .or_default()
                        .insert(snap.version, snap.label);
                }
            }
            let mut events = 0;
            store.events_since_seq(since_seq, only.as_ref(), |e| {
                write(&crate::jsonl::export_line(&e))?;
                events += 1;
                if let Some(label) = marks.get(e.stream.as_str()).and_then(|m| m.get(&e.version)) {
                    write(&crate::jsonl::snapshot_line(&SnapshotMark {
                        stream: e.stream.clone(),
                        version: e.version,
                        label: label.clone(),
                    }))?;
                }
                Ok(())
            })?;
            Ok(events)
        })
    }
}

/// An import under way.
struct Import {
    writer: Writer,
    /// The header's default reducer: what the file's streams without their own use.
    file_default: Option<String>,
    /// Streams whose settings this import has checked or applied.
    settled: HashSet<String>,
    /// Whether no record has been read yet (the header must come first).
    first: bool,
    /// The heads the file's stream lines carry, with where, to check once all is imported.
    heads: Vec<(String, StreamHead, String)>,
}

/// Whether a stream's events here give the chain value a file carried for its head: the
/// file's events were not changed after the export, and the stream here has the history
/// the exported one had. A stream that does not reach that head here is not checked.
fn check_head(engine: &Engine, name: &str, head: &StreamHead) -> Result<()> {
    let store = engine.store();
    let stream = store.require_stream(name)?;
    let Some(expected) = crate::chain::from_hex(&head.hash) else {
        return Err(Error::Input(format!(
            "stream {name:?}: the head hash {:?} is not 64 hex digits",
            head.hash
        )));
    };
    // A file that stops before the head it carries (the first lines of an export, as a
    // client catching up may hold) cannot be checked against it.
    if stream.head < head.version {
        return Ok(());
    }
    let here = crate::engine::chain_at(store, &stream, head.version)?;
    if here != expected {
        return Err(Error::Input(format!(
            "stream {name:?}: its events up to version {} give the chain value {} here, the file carries {}:              the file's events were changed after the export, or the stream here has another history; nothing was imported",
            head.version,
            crate::chain::to_hex(&here),
            head.hash
        )));
    }
    Ok(())
}

impl Import {
    fn record(&mut self, engine: &mut Engine, record: Record) -> Result<()> {
        let first = std::mem::replace(&mut self.first, false);
        match record {
            Record::Database { settings, .. } if first => self.database(engine, settings),
            Record::Database { .. } => Err(Error::Input(
                "a rewind header must be the file's first line".into(),
            )),
            Record::Stream { settings, at } => {
                if let Some(head) = &settings.head {
                    self.heads.push((settings.name.clone(), head.clone(), at));
                }
                if self.settled.contains(&settings.name) {
                    return Err(Error::Input(format!(
                        "the settings of stream {:?} come after its events or its other settings line; \
                         a rewind_stream line comes before the stream's first event",
                        settings.name
                    )));
                }
                self.settle(engine, &settings)
            }
            Record::Snapshot { mark, .. } => self.snapshot(engine, &mark),
            Record::Event(item) => self.event(engine, item),
        }
    }

    /// The header: the default reducer becomes the database's when it has no streams yet;
    /// otherwise the file's streams that follow it get it as their own.
    /// The policy is applied where the database has none, and must agree where it has one.
    fn database(&mut self, engine: &mut Engine, settings: DatabaseSettings) -> Result<()> {
        if settings.format > FORMAT {
            return Err(Error::Input(format!(
                "the file is in format {} and this rewind reads up to format {FORMAT}; upgrade rewind",
                settings.format
            )));
        }
        if let Some(spec) = &settings.default_reducer {
            engine.reducer(spec)?;
            let store = engine.store();
            if *spec != store.default_reducer()? && store.streams()?.is_empty() {
                store.set_meta("default_reducer", spec)?;
                self.writer.report.settings += 1;
            }
            self.file_default = Some(spec.clone());
        }
        if let Some(policy) = &settings.policy {
            self.policy(engine, None, policy)?;
        }
        Ok(())
    }

    /// A policy from the file, for the database or a stream: applied where the database has
    /// none of its own, checked where it has one.
    fn policy(&mut self, engine: &Engine, stream: Option<&str>, policy: &Policy) -> Result<()> {
        for text in policy.schedules.iter().flatten() {
            crate::time::parse_cron(text).map_err(Error::Input)?;
        }
        let own = engine.own_policy(stream)?;
        if own == *policy {
            return Ok(());
        }
        if own != Policy::default() {
            let whose =
                stream.map_or_else(|| "the database".to_string(), |s| format!("stream {s:?}"));
            let shown = |p: &Policy| serde_json::to_string(p).unwrap_or_default();
            return Err(Error::Input(format!(
                "{whose} has the policy {} here and {} in the file; make them agree with `rewind policy` first",
                shown(&own),
                shown(policy)
            )));
        }
        engine.set_policy(stream, policy)?;
        self.writer.report.settings += 1;
        Ok(())
    }

    /// A stream's settings, before its first event: a new stream is created with the file's
    /// reducer; an existing one must already have it.
    fn settle(&mut self, engine: &mut Engine, settings: &StreamSettings) -> Result<()> {
        let name = &settings.name;
        let wanted = settings.reducer.as_ref().or(self.file_default.as_ref());
        if let Some(spec) = wanted {
            engine.reducer(spec)?;
        }
        match engine.store().stream(name)? {
            Some(here) => {
                if let Some(spec) = wanted.filter(|spec| **spec != here.reducer) {
                    return Err(Error::Input(format!(
                        "stream {name:?} uses the reducer {:?} here and {spec:?} in the file; \
                         its events would not give the same states (import into a new database, \
                         or into one where the stream has that reducer)",
                        here.reducer
                    )));
                }
            }
            None => {
                let store = engine.store();
                // A stream that follows the file's default keeps it where the database's
                // default is another.
                let own = match (&settings.reducer, &self.file_default) {
                    (Some(own), _) => Some(own.clone()),
                    (None, Some(default)) if *default != store.default_reducer()? => {
                        Some(default.clone())
                    }
                    _ => None,
                };
                store.create_stream(name, own.as_deref())?;
                if own.is_some() {
                    self.writer.report.settings += 1;
                }
                self.writer.report.created_streams.push(name.clone());
            }
        }
        if let Some(policy) = &settings.policy {
            self.policy(engine, Some(name), policy)?;
        }
        self.settled.insert(name.clone());
        Ok(())
    }

    /// An event: one whose version is already stored must be the same event (then it is
    /// skipped); otherwise it is appended, at the version it names if it names one.
    fn event(&mut self, engine: &mut Engine, item: ImportItem) -> Result<()> {
        let name = &item.event.stream;
        if !self.settled.contains(name) {
            self.settle(
                engine,
                &StreamSettings {
                    name: name.clone(),
                    reducer: None,
                    policy: None,
                    head: None,
                },
            )?;
        }
        let written = self.writer.head(name);
        if let Some(version) = item
            .version
            .filter(|v| written.is_none_or(|head| *v <= head))
        {
            let stream = engine.store().require_stream(name)?;
            if version <= written.unwrap_or(stream.head) {
                let Some(stored) = engine.store().event(&stream, version)? else {
                    return Err(Error::MissingVersion {
                        stream: name.clone(),
                        version,
                    });
                };
                let differs = differences(&stored, &item.event);
                if !differs.is_empty() {
                    return Err(Error::Input(format!(
                        "stream {name:?} version {version} is already stored with other content: {}",
                        differs.join("; ")
                    )));
                }
                self.writer.report.duplicates += 1;
                return Ok(());
            }
        }
        let expected = item.version.map(|v| v.saturating_sub(1));
        self.writer
            .push(engine, item.event, expected)
            .map(|_| ())
            .map_err(|cause| match (cause, item.version) {
                (Error::Conflict { stream, actual, .. }, Some(line)) => Error::Input(format!(
                    "the line is version {line} of stream {stream:?}, which is at version {actual} \
                     (its next event is version {})",
                    actual + 1
                )),
                (other, _) => other,
            })
    }

    /// A snapshot line: a manual snapshot at the version, with the label, unless the same
    /// one is there already.
    fn snapshot(&mut self, engine: &mut Engine, mark: &SnapshotMark) -> Result<()> {
        let name = &mark.stream;
        let stream = engine.store().require_stream(name)?;
        let head = self.writer.head(name).unwrap_or(stream.head);
        if mark.version > head {
            return Err(Error::Input(format!(
                "a snapshot of stream {name:?} at version {} comes before that event \
                 (the stream is at version {head}); a rewind_snapshot line follows the event at its version",
                mark.version
            )));
        }
        let there = engine
            .store()
            .snapshot_candidates(stream.id, mark.version - 1, mark.version)?
            .pop();
        if let Some(there) = there {
            match (&there.label, &mark.label) {
                (Some(old), Some(new)) if old != new => {
                    return Err(Error::Input(format!(
                        "stream {name:?} has a snapshot at version {} labelled {old:?} here and {new:?} in the file",
                        mark.version
                    )));
                }
                (Some(_), _) => return Ok(()),
                (None, None) if there.trigger == "manual" => return Ok(()),
                // A policy snapshot at that version becomes the manual one (the same state).
                (None, _) => {}
            }
        }
        // The snapshot reads the stream through the store: it must see this batch's head.
        self.writer.sync(engine, name)?;
        engine.take_snapshot(
            name,
            Target::Version(mark.version),
            "manual",
            mark.label.as_deref(),
        )?;
        self.writer.report.snapshots += 1;
        Ok(())
    }
}
