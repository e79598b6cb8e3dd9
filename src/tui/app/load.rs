//! Loading what the panes show: the state and diff at the cursor, the event rows on
//! screen, the state tree's window, snapshots, timeline density and stream markers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::{App, Density, Glyph, Load, Mark, Pane, Scope, StateView, Times, View, relative};
use crate::diff::Change;
use crate::model::{Provenance, StreamInfo, Target};
use crate::tui::{tree, ui};

/// What summarising the rows on screen may take per frame; what would take longer is given
/// when the keys stop (see [`crate::summary::Summaries::of`]).
const SUMMARY_BUDGET: std::time::Duration = std::time::Duration::from_millis(2);

impl App {
    /// Whether rows on screen wait for their summaries.
    pub fn summarising(&self) -> bool {
        self.summaries.pending
    }

    /// Whether work goes on between keys (a verify, a search count, summaries left for
    /// later): the loop then polls often rather than idling.
    pub fn busy(&self) -> bool {
        self.job.is_some() || self.counting() || self.summarising()
    }

    /// Gives the summaries left for later, however long they take.
    pub(super) fn summarise_pending(&mut self) -> anyhow::Result<()> {
        if !self.summaries.pending {
            return Ok(());
        }
        let rows = self.view.events.clone();
        self.view.titles =
            self.summaries
                .of(&mut self.engine, &rows, self.titles.as_mut(), None)?;
        Ok(())
    }

    // ---- loading what the panes show ----------------------------------------------------

    /// Rows of the event list at the current size.
    pub fn event_rows(&self) -> u16 {
        ui::inner(self.areas().events).height
    }

    pub(super) fn state_rows(&self) -> u16 {
        ui::inner(self.areas().state).height
    }

    /// A time as the lists show it: since the first event on the timeline, or absolute.
    pub fn time_text(&self, ts: i64) -> String {
        match self.times {
            Times::Absolute => crate::time::format(ts),
            Times::Relative => relative(ts - self.view.density.as_ref().map_or(0, |d| d.span.0)),
        }
    }

    /// Loads what the panes show, if anything changed since the last time: everything
    /// when the model has moved from where the view was loaded, else what the actions
    /// since asked for.
    pub fn sync(&mut self) -> anyhow::Result<()> {
        let at = self.at();
        let load = if self.view.at.as_ref() == Some(&at) {
            self.pending
        } else {
            Load::Everything
        };
        self.pending = Load::Nothing;
        if load == Load::Nothing {
            return Ok(());
        }
        let Some(stream) = self.stream().cloned() else {
            self.view = View {
                at: Some(at),
                ..View::default()
            };
            return Ok(());
        };
        let everything = load == Load::Everything;
        let loaded = if everything {
            self.view.at = Some(at);
            self.load_events(&stream)
        } else {
            Ok(())
        };
        // Laid out even when loading failed: the tree must not show the rows of a state
        // that is gone.
        self.load_tree(everything);
        loaded?;
        if std::mem::take(&mut self.until_due) {
            self.check_until()?;
        }
        Ok(())
    }

    pub(super) fn load_events(&mut self, stream: &StreamInfo) -> anyhow::Result<()> {
        // A state that cannot be built (an event its reducer refuses) is a message and a
        // note in the state pane; the events around it still show, to find out why.
        let state = self.load_state(stream);
        // What cannot be read is shown as nothing rather than as what another position
        // showed.
        if let Err(err) = self.load_around(stream) {
            self.view.events.clear();
            self.view.event = None;
            self.view.mark_ts = None;
            return Err(err);
        }
        state
    }

    /// The event rows on screen, the event at the cursor, the mark's time, the snapshots,
    /// the timeline and the stream markers.
    fn load_around(&mut self, stream: &StreamInfo) -> anyhow::Result<()> {
        let rows = usize::from(self.event_rows().max(1));
        let walk = self.walk();
        let position = self.position();
        let store = self.engine.store();
        let mut before_rows = store.neighbours(&walk, position, false, false, rows / 2)?;
        let after = store.neighbours(&walk, position, true, true, rows - before_rows.len())?;
        if after.len() + before_rows.len() < rows && before_rows.len() == rows / 2 {
            before_rows = store.neighbours(&walk, position, false, false, rows - after.len())?;
        }
        before_rows.reverse();
        before_rows.extend(after);
        let event = if self.cursor == 0 {
            None
        } else {
            store.event(stream, self.cursor)?
        };
        let mark_ts = match self.mark {
            Some(m) if m > 0 => store.event_ts(stream, m)?,
            _ => None,
        };
        let marks = crate::source::mirror::marks(store, &stream.name, self.now)?;
        let fork_ts = match &marks.fork {
            Some(fork) if fork.version > 0 => store.event_ts(stream, fork.version)?,
            _ => None,
        };
        self.view.marks = marks;
        self.view.fork_ts = fork_ts;
        self.load_snapshots()?;
        self.load_density(stream)?;
        self.load_markers()?;
        // A summary that cannot be given is the status message; the rows still show.
        let summaries = self.summaries.of(
            &mut self.engine,
            &before_rows,
            self.titles.as_mut(),
            (!self.deterministic).then_some(SUMMARY_BUDGET),
        );
        self.view.titles = match summaries {
            Ok(summaries) => summaries,
            Err(err) => {
                self.message = Some(crate::text::safe_message(&format!("summaries: {err:#}")));
                Vec::new()
            }
        };
        self.view.events = before_rows;
        self.view.event = event;
        self.view.mark_ts = mark_ts;
        Ok(())
    }

    /// The state at the cursor and its diff against the previous event or the mark. Either
    /// can fail alone: a state that cannot be built shows why in the state pane, a diff base
    /// that cannot be built (a mark past a refused event) in the diff pane.
    fn load_state(&mut self, stream: &StreamInfo) -> anyhow::Result<()> {
        let base = self.diff_base();
        self.view.diff_from = base;
        let (now, provenance, stepped) = match self.state_at_cursor(stream) {
            Ok(shown) => shown,
            Err(err) => {
                self.view.state = Arc::new(Value::Null);
                self.view.changed.clear();
                self.view.changes.clear();
                self.view.text_diff.clear();
                self.view.provenance = None;
                self.view.state_error = Some(crate::text::safe_message(&format!("{err:#}")));
                self.view.diff_error = None;
                return Err(err);
            }
        };
        self.view.state = now;
        self.view.state_error = None;
        // A frame for CI names the route a cold reconstruction takes: the one the keys took
        // here (the stepper, the cache) depends on how they arrived.
        let provenance = if self.deterministic {
            self.engine
                .route(stream, Target::Version(self.cursor))
                .unwrap_or(provenance)
        } else {
            provenance
        };
        self.view.provenance = Some(provenance);
        let (changes, text_diff, diffed) = match self.diff(stream, base, stepped) {
            Ok((changes, text)) => (changes, text, Ok(())),
            Err(err) => (Vec::new(), String::new(), Err(err)),
        };
        self.view.diff_error = diffed
            .as_ref()
            .err()
            .map(|err| crate::text::safe_message(&format!("{err:#}")));
        let mut changed: HashSet<String> = HashSet::new();
        for change in &changes {
            // The containers of a changed path are shown changed too, so a fold still tells.
            changed.extend(tree::ancestors(change.path()));
            changed.insert(change.path().to_string());
        }
        self.view.changed = changed;
        self.view.changes = changes;
        self.view.text_diff = text_diff;
        if self.focus == Pane::Events {
            // Stepping through events: the state cursor goes to what the event changed (its
            // containers are shown open while it is there; see `App::shown_folds`).
            self.state_path = self
                .view
                .changes
                .first()
                .map(|c| c.path().to_string())
                .unwrap_or_default();
        }
        diffed
    }

    /// The changes from the diff's base to the state shown, and the text diff if that is
    /// shown. The stepper knows the cursor event's changes; against the mark, or for the
    /// text diff, the state before is needed whole.
    fn diff(
        &mut self,
        stream: &StreamInfo,
        base: u64,
        stepped: Option<Vec<Change>>,
    ) -> anyhow::Result<(Vec<Change>, String)> {
        let now = Arc::clone(&self.view.state);
        let stepped = stepped.filter(|_| base == self.cursor.saturating_sub(1));
        let before: Option<Arc<Value>> = if stepped.is_none() || self.text_diff {
            Some(self.engine.state_of(stream, Target::Version(base))?.state)
        } else {
            None
        };
        let changes = match (stepped, &before) {
            (Some(changes), _) => changes,
            (None, Some(before)) => crate::diff::changes(before, &now),
            (None, None) => Vec::new(),
        };
        let text_diff = match (&before, self.text_diff) {
            (Some(before), true) => crate::diff::unified(
                before,
                &now,
                (&format!("v{base}"), &format!("v{}", self.cursor)),
                2,
            ),
            _ => String::new(),
        };
        Ok((changes, text_diff))
    }

    /// The version the diff starts from: the mark, or the event before the cursor.
    fn diff_base(&self) -> u64 {
        self.mark
            .filter(|m| *m != self.cursor)
            .unwrap_or(self.cursor.saturating_sub(1))
    }

    /// The state at the cursor, how it was obtained, and the cursor event's changes when
    /// known. In one stream it comes from the stepper, which changes its state in place:
    /// the view lets go of its copy first, or the step would have to copy it.
    fn state_at_cursor(
        &mut self,
        stream: &StreamInfo,
    ) -> anyhow::Result<(Arc<Value>, Provenance, Option<Vec<Change>>)> {
        if self.scope == Scope::All {
            self.stepper.clear();
            let now = self.engine.state_of(stream, Target::Version(self.cursor))?;
            return Ok((now.state, now.provenance, None));
        }
        self.view.state = Arc::default();
        let step = self
            .engine
            .step_to(&mut self.stepper, stream, self.cursor)?;
        Ok((step.state, step.provenance, step.changes))
    }

    /// Lays out the rows of the state tree on screen. After the state changed (`fresh`) the
    /// cursor row goes a third of the way down (or as far as it is from the top), whatever
    /// was shown before, so the layout depends on where the cursor is and not on the way it
    /// came; after a move within the same state the rows stay put while the cursor is in
    /// view.
    pub(super) fn load_tree(&mut self, fresh: bool) {
        let height = usize::from(self.state_rows().max(1));
        let state = Arc::clone(&self.view.state);
        let row = self.state_row.take().filter(|_| !fresh);
        let (folds, opened) = self.shown_folds();
        // The cursor row: where the state path is shown (a moved cursor already knows).
        let (total, shown) = tree::locate(&state, &folds, &self.state_path);
        let cursor = row.map_or(shown, |row| row.min(total.saturating_sub(1)));
        let old_top = self.view.tree.top;
        let top = if fresh || cursor < old_top || cursor >= old_top + height {
            cursor.saturating_sub(height / 3)
        } else {
            old_top
        };
        let top = top.min(total.saturating_sub(height));
        let rows = tree::window(&state, &folds, top, height);
        drop(folds);
        self.view.tree = StateView {
            rows,
            top,
            cursor,
            total,
            opened,
            path: String::new(),
        };
        // The path the user asked for stays what it is where the state lacks it (the row
        // shown is then its nearest container), so that it is found again further on.
        self.view.tree.path = self
            .view
            .tree
            .rows
            .get(cursor - top)
            .map(|row| row.path.clone())
            .unwrap_or_default();
    }

    /// The folds as shown: the user's, except that the containers of the value under the
    /// state cursor are open, so stepping onto a change inside a folded container shows it
    /// without unfolding it for good (a burst of steps then folds what single steps fold).
    fn shown_folds(&self) -> (std::borrow::Cow<'_, HashSet<String>>, Vec<String>) {
        let opened: Vec<String> = tree::ancestors(&self.state_path)
            .into_iter()
            .filter(|c| self.folded.contains(c))
            .collect();
        if opened.is_empty() {
            // The usual case on every step: the user's folds as they are, uncopied.
            return (std::borrow::Cow::Borrowed(&self.folded), opened);
        }
        let mut folds = self.folded.clone();
        for container in &opened {
            folds.remove(container);
        }
        (std::borrow::Cow::Owned(folds), opened)
    }

    /// Before the state cursor moves, folds or acts on a value: the row shown under it and
    /// the folds shown become the user's own.
    pub(super) fn settle_state_cursor(&mut self) {
        for container in std::mem::take(&mut self.view.tree.opened) {
            self.folded.remove(&container);
        }
        self.state_path.clone_from(&self.view.tree.path);
    }

    pub(super) fn load_snapshots(&mut self) -> anyhow::Result<()> {
        let Some(stream) = self.stream().cloned() else {
            return Ok(());
        };
        self.view.snapshots = self.glyphs(&stream)?;
        Ok(())
    }

    /// The stream's snapshots as the timeline marks them.
    pub(super) fn glyphs(&mut self, stream: &StreamInfo) -> anyhow::Result<Vec<Glyph>> {
        // The snapshot list changes only with the stream, its head, or a snapshot taken
        // here: not re-read on every step.
        let key = (stream.id, stream.head);
        if let Some((k, list)) = &self.snapshots_of
            && *k == key
        {
            return Ok(list.clone());
        }
        let fingerprint = self
            .engine
            .reducer(&stream.reducer)?
            .fingerprint()
            .to_string();
        let list: Vec<Glyph> = self
            .engine
            .store()
            .snapshots(Some(stream.id))?
            .into_iter()
            .map(|s| Glyph {
                version: s.version,
                ts: s.ts,
                glyph: if s.fingerprint != fingerprint {
                    '×'
                } else if s.kind == "delta" {
                    '◇'
                } else {
                    '◆'
                },
            })
            .collect();
        self.snapshots_of = Some((key, list.clone()));
        Ok(list)
    }

    pub(super) fn load_density(&mut self, stream: &StreamInfo) -> anyhow::Result<()> {
        let width = ui::inner(self.areas().timeline).width.max(1);
        let (id, version) = match self.scope {
            Scope::Stream => (Some(stream.id), stream.head),
            Scope::All => (None, self.streams.iter().map(|s| s.head).sum()),
        };
        let key = (self.scope, id, version, width);
        if let Some((k, density)) = &self.density_of
            && *k == key
        {
            self.view.density.clone_from(density);
            return Ok(());
        }
        let only = (self.scope == Scope::Stream).then_some(stream);
        let store = self.engine.store();
        let density = match store.time_span(only)? {
            Some(span) => Some(Density {
                span,
                counts: store.time_histogram(only, span, usize::from(width))?,
            }),
            None => None,
        };
        self.density_of = Some((key, density.clone()));
        self.view.density = density;
        Ok(())
    }

    /// The rows of the stream list on screen, as indices into `streams`.
    pub fn shown_streams(&self) -> std::ops::Range<usize> {
        let height = usize::from(ui::inner(self.areas().streams).height);
        let at = self
            .listed
            .iter()
            .position(|i| *i == self.selected)
            .unwrap_or(0);
        let first = crate::tui::panes::streams::first_row(at, height);
        first..(first + height).min(self.listed.len()).max(first)
    }

    /// Markers and statuses for the streams on screen only: whether the newest state looks
    /// unfinished, whether the stream has stale snapshots or findings, and its status.
    pub(super) fn load_markers(&mut self) -> anyhow::Result<()> {
        let shown: Vec<StreamInfo> = self.listed[self.shown_streams()]
            .iter()
            .filter_map(|i| self.streams.get(*i).cloned())
            .collect();
        let mut markers = HashMap::new();
        let mut statuses = HashMap::new();
        for stream in shown {
            let mark = self.mark_of(&stream)?;
            let marker = if self.findings.contains(&stream.name) {
                '!'
            } else {
                mark.glyph
            };
            if marker != ' ' {
                markers.insert(stream.name.clone(), marker);
            }
            if let Some(status) = mark.status {
                statuses.insert(stream.name.clone(), status);
            }
        }
        self.view.markers = markers;
        self.view.statuses = statuses;
        Ok(())
    }

    /// What the stream list says of a stream, judged at its head once per head.
    pub(super) fn mark_of(&mut self, stream: &StreamInfo) -> anyhow::Result<Mark> {
        if let Some((head, mark)) = self.markers_of.get(&stream.id)
            && *head == stream.head
        {
            return Ok(mark.clone());
        }
        let mark = self.judge(stream)?;
        self.markers_of
            .insert(stream.id, (stream.head, mark.clone()));
        Ok(mark)
    }

    fn judge(&mut self, stream: &StreamInfo) -> anyhow::Result<Mark> {
        let fingerprint = self
            .engine
            .reducer(&stream.reducer)?
            .fingerprint()
            .to_string();
        let stale = self
            .engine
            .store()
            .snapshots(Some(stream.id))?
            .iter()
            .any(|s| s.fingerprint != fingerprint);
        let marks = crate::source::mirror::marks(self.engine.store(), &stream.name, self.now)?;
        // A newest state that cannot be built is a problem to look at, not a failed frame.
        let head = self.engine.state_of(stream, Target::Head).ok();
        let (status, unfinished) = crate::filter::judge(head.as_ref().map(|h| &*h.state), &marks);
        let glyph = if stale || head.is_none() {
            '!'
        } else if unfinished {
            '…'
        } else {
            ' '
        };
        Ok(Mark {
            glyph,
            status,
            unfinished,
        })
    }

    /// The streams a filter passes, as indices into `streams` (all of them without one).
    pub(super) fn list(
        &mut self,
        filter: Option<&crate::filter::StreamFilter>,
    ) -> anyhow::Result<Vec<usize>> {
        let Some(filter) = filter else {
            return Ok((0..self.streams.len()).collect());
        };
        let mut listed = Vec::new();
        for i in 0..self.streams.len() {
            let stream = self.streams[i].clone();
            let mark = if filter.needs_state() {
                self.mark_of(&stream)?
            } else {
                Mark::default()
            };
            let facts = crate::filter::Facts {
                name: &stream.name,
                status: mark.status.as_deref(),
                unfinished: mark.unfinished,
            };
            if filter.matches(facts) {
                listed.push(i);
            }
        }
        Ok(listed)
    }

    /// Shows only the streams a filter passes (empty text: all); a filter no stream passes
    /// is refused and the list stays as it was.
    pub fn filter_streams(&mut self, text: &str) -> anyhow::Result<()> {
        let filter = crate::filter::StreamFilter::parse(text).map_err(|e| anyhow::anyhow!(e))?;
        let listed = self.list(filter.as_ref())?;
        if listed.is_empty() {
            anyhow::bail!(
                "no stream matches {:?}; the list is as it was",
                crate::text::clean(text, 60)
            );
        }
        if !listed.contains(&self.selected) {
            self.select_stream(listed[0]);
            self.scope = Scope::Stream;
            self.seq = None;
        }
        self.message = filter.as_ref().map(|f| {
            format!(
                "{} of {} streams match {} (F changes it)",
                listed.len(),
                self.streams.len(),
                crate::text::clean(f.text(), 60)
            )
        });
        self.stream_filter = filter;
        self.listed = listed;
        Ok(())
    }
}
