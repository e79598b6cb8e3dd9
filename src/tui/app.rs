//! The model: which stream, where the cursor and the mark are, what is shown, and `update`,
//! which applies one action by asking the engine. A failed action becomes a message.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::action::Action;
use super::json_lines::{self, Line};
use crate::Engine;
use crate::diff::Change;
use crate::model::{Event, Provenance, StreamInfo, Target};

/// The most state lines laid out for one screen.
const MAX_LINES: usize = 2_000;

/// What the prompt on the status line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// A version number or an RFC 3339 time.
    GoTo,
    /// Text to find in event types and data.
    Search,
}

/// The prompt being typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// What it is for.
    pub kind: PromptKind,
    /// What has been typed.
    pub text: String,
}

/// What an overlay shows on top of the panes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    /// The key help, generated from the key table.
    Help,
}

/// Everything the panes draw, loaded by `update` so that rendering never asks the engine.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The state at the cursor, as lines.
    pub lines: Vec<Line>,
    /// Pointers the diff changed, to highlight in the state.
    pub changed: HashSet<String>,
    /// The structural diff from the base (previous event or mark) to the cursor.
    pub changes: Vec<Change>,
    /// The unified text diff for the same two states.
    pub text_diff: String,
    /// The version the diff starts from.
    pub diff_from: u64,
    /// Events around the cursor (what the event list shows).
    pub events: Vec<Event>,
    /// How the state at the cursor was obtained.
    pub provenance: Option<Provenance>,
    /// Snapshot versions with a glyph: full, delta, stale.
    pub snapshots: Vec<Glyph>,
}

/// Where the debugger starts.
#[derive(Debug, Clone, Default)]
pub struct Start {
    /// The stream to show (default: the first).
    pub stream: Option<String>,
    /// The version at the cursor (default: the newest).
    pub at: Option<u64>,
    /// A version to set the mark at.
    pub mark: Option<u64>,
    /// The terminal height, for the event list.
    pub height: u16,
    /// Leave out anything that depends on the clock.
    pub deterministic: bool,
}

/// A snapshot on the timeline: its version and glyph (◆ full, ◇ delta, × stale).
pub type Glyph = (u64, char);

/// The debugger's model.
pub struct App {
    engine: Engine,
    /// All streams, by name.
    pub streams: Vec<StreamInfo>,
    /// Index of the stream shown.
    pub selected: usize,
    /// The version the cursor is on (0: before the first event).
    pub cursor: u64,
    /// The mark, if set.
    pub mark: Option<u64>,
    /// Whether the diff pane shows a unified text diff.
    pub text_diff: bool,
    /// Whether the cursor follows the newest event as others append.
    pub follow: bool,
    /// The overlay on top, if any.
    pub overlay: Option<Overlay>,
    /// The prompt being typed, if any.
    pub prompt: Option<Prompt>,
    /// The last search, for `n` and `N`.
    pub search: Option<String>,
    /// The last message for the status line.
    pub message: Option<String>,
    /// What the panes show.
    pub view: View,
    /// Rows of the event list, from the last known terminal size.
    pub rows: u16,
    /// Leave out anything that depends on the clock (for `rewind render`).
    pub deterministic: bool,
    /// Whether the writing keys are disabled.
    pub read_only: bool,
    /// Set by `Quit`.
    pub quit: bool,
    /// The snapshot glyphs last read, for (stream id, head).
    snapshots_of: Option<((crate::model::StreamId, u64), Vec<Glyph>)>,
}

impl App {
    /// Opens the debugger as `start` says (by default: the first stream, at its newest event).
    pub fn new(engine: Engine, start: &Start) -> anyhow::Result<Self> {
        let (stream, at) = (start.stream.as_deref(), start.at);
        let streams = engine.store().streams()?;
        let selected = match stream {
            Some(name) => streams
                .iter()
                .position(|s| s.name == name)
                .ok_or_else(|| crate::Error::UnknownStream(name.to_string()))?,
            None => 0,
        };
        let read_only = engine.store().is_read_only();
        let mut app = Self {
            engine,
            streams,
            selected,
            cursor: 0,
            mark: None,
            text_diff: false,
            follow: false,
            overlay: None,
            prompt: None,
            search: None,
            message: None,
            view: View::default(),
            rows: ui_rows(start.height),
            deterministic: start.deterministic,
            read_only,
            quit: false,
            snapshots_of: None,
        };
        if let Some(stream) = app.stream().cloned() {
            if let Some(v) = at.filter(|v| *v > stream.head) {
                anyhow::bail!(
                    "stream {:?} has versions 1..={}; there is no version {v}",
                    stream.name,
                    stream.head
                );
            }
            app.cursor = at.unwrap_or(stream.head);
            if let Some(m) = start.mark.filter(|m| *m > stream.head) {
                anyhow::bail!(
                    "stream {:?} has versions 1..={}; there is no version {m} to mark",
                    stream.name,
                    stream.head
                );
            }
            app.mark = start.mark;
        }
        app.load()?;
        Ok(app)
    }

    /// The stream shown, if the database has any.
    pub fn stream(&self) -> Option<&StreamInfo> {
        self.streams.get(self.selected)
    }

    /// Applies an action; a failure becomes the status message and the debugger goes on.
    pub fn dispatch(&mut self, action: Action) {
        self.message = None;
        if let Err(err) = self.update(action) {
            self.message = Some(crate::text::safe_message(&format!("{err:#}")));
        }
    }

    /// Applies one action.
    pub fn update(&mut self, action: Action) -> anyhow::Result<()> {
        let head = self.stream().map_or(0, |s| s.head);
        let page = u64::from(self.rows.max(1));
        match action {
            Action::StepForward => self.cursor = (self.cursor + 1).min(head),
            Action::StepBack => self.cursor = self.cursor.saturating_sub(1),
            Action::PageForward => self.cursor = (self.cursor + page).min(head),
            Action::PageBack => self.cursor = self.cursor.saturating_sub(page),
            Action::First => self.cursor = 0,
            Action::Last => self.cursor = head,
            Action::NextSnapshot => {
                let next = self
                    .view
                    .snapshots
                    .iter()
                    .map(|s| s.0)
                    .find(|v| *v > self.cursor);
                self.cursor =
                    next.ok_or_else(|| anyhow::anyhow!("no snapshot after v{}", self.cursor))?;
            }
            Action::PrevSnapshot => {
                let prev = self
                    .view
                    .snapshots
                    .iter()
                    .map(|s| s.0)
                    .rev()
                    .find(|v| *v < self.cursor);
                self.cursor =
                    prev.ok_or_else(|| anyhow::anyhow!("no snapshot before v{}", self.cursor))?;
            }
            Action::NextStream | Action::PrevStream => {
                if self.streams.is_empty() {
                    return Ok(());
                }
                let n = self.streams.len();
                self.selected = if action == Action::NextStream {
                    (self.selected + 1) % n
                } else {
                    (self.selected + n - 1) % n
                };
                self.cursor = self.stream().map_or(0, |s| s.head);
                self.mark = None;
            }
            Action::ToggleMark => {
                self.mark = if self.mark == Some(self.cursor) {
                    None
                } else {
                    Some(self.cursor)
                }
            }
            Action::JumpToMark => {
                self.cursor = self
                    .mark
                    .ok_or_else(|| anyhow::anyhow!("no mark set (m sets one)"))?
            }
            Action::ToggleDiffText => self.text_diff = !self.text_diff,
            Action::TakeSnapshot => {
                if self.read_only {
                    anyhow::bail!("the database is open read-only: taking snapshots is disabled");
                }
                let name = self
                    .stream()
                    .map(|s| s.name.clone())
                    .ok_or_else(|| anyhow::anyhow!("no stream"))?;
                self.snapshots_of = None;
                let snap = self.engine.take_snapshot(
                    &name,
                    Target::Version(self.cursor),
                    "manual",
                    None,
                )?;
                self.message = Some(format!(
                    "snapshot taken at v{} ({} bytes)",
                    snap.version, snap.stored_size
                ));
            }
            Action::ToggleHelp => {
                self.overlay = if self.overlay.is_some() {
                    None
                } else {
                    Some(Overlay::Help)
                }
            }
            Action::Quit => {
                self.quit = true;
                return Ok(());
            }
            Action::Resize(_, height) => self.rows = ui_rows(height),
            Action::PromptGoTo | Action::PromptSearch => {
                let kind = if action == Action::PromptGoTo {
                    PromptKind::GoTo
                } else {
                    PromptKind::Search
                };
                self.prompt = Some(Prompt {
                    kind,
                    text: String::new(),
                });
                return Ok(());
            }
            Action::PromptChar(c) => {
                if let Some(prompt) = &mut self.prompt {
                    prompt.text.push(c);
                }
                return Ok(());
            }
            Action::PromptBackspace => {
                if let Some(prompt) = &mut self.prompt {
                    prompt.text.pop();
                }
                return Ok(());
            }
            Action::PromptCancel => {
                self.prompt = None;
                return Ok(());
            }
            Action::PromptSubmit => {
                let Some(prompt) = self.prompt.take() else {
                    return Ok(());
                };
                match prompt.kind {
                    PromptKind::GoTo => self.cursor = self.resolve(prompt.text.trim())?,
                    PromptKind::Search => {
                        self.search = Some(prompt.text.clone()).filter(|t| !t.is_empty());
                        self.cursor = self.find(true)?;
                    }
                }
            }
            Action::ToggleFollow => {
                self.follow = !self.follow;
                if self.follow {
                    self.refresh_streams()?;
                    self.cursor = self.stream().map_or(0, |s| s.head);
                }
            }
            Action::Refresh => {
                let before = self.stream().map(|s| (s.name.clone(), s.head));
                let count = self.streams.len();
                self.refresh_streams()?;
                let after = self.stream().map(|s| (s.name.clone(), s.head));
                if before == after && count == self.streams.len() {
                    return Ok(()); // nothing new: no reload
                }
                if self.follow {
                    self.cursor = self.stream().map_or(0, |s| s.head);
                }
            }
            Action::SearchNext => self.cursor = self.find(true)?,
            Action::SearchPrev => self.cursor = self.find(false)?,
        }
        let message = self.message.take();
        self.load()?;
        self.message = message;
        Ok(())
    }

    /// Reloads the stream list (heads move as others append), keeping the selected stream.
    fn refresh_streams(&mut self) -> anyhow::Result<()> {
        let name = self.stream().map(|s| s.name.clone());
        self.streams = self.engine.store().streams()?;
        self.selected = name
            .and_then(|n| self.streams.iter().position(|s| s.name == n))
            .unwrap_or(0);
        Ok(())
    }

    /// A version from what was typed at the go-to prompt: a number, or an RFC 3339 time
    /// (the last event at or before it).
    fn resolve(&mut self, text: &str) -> anyhow::Result<u64> {
        let stream = self
            .stream()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no stream"))?;
        let target = match text.replace(',', "").parse::<u64>() {
            Ok(v) => Target::Version(v),
            Err(_) => Target::Time(crate::time::parse(text).map_err(|_| {
                anyhow::anyhow!(
                    "{:?} is neither a version nor an RFC 3339 time",
                    crate::text::clean(text, 40)
                )
            })?),
        };
        Ok(self.engine.resolve(&stream, target)?)
    }

    /// The next (or previous) event after (before) the cursor whose type or data holds the
    /// last search.
    fn find(&mut self, forward: bool) -> anyhow::Result<u64> {
        let needle = self
            .search
            .clone()
            .ok_or_else(|| anyhow::anyhow!("nothing to search for (/ searches)"))?;
        let stream = self
            .stream()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no stream"))?;
        self.engine
            .store()
            .find_event(&stream, self.cursor, forward, &needle)?
            .ok_or_else(|| {
                let way = if forward { "after" } else { "before" };
                anyhow::anyhow!(
                    "no event {way} v{} matches {:?}",
                    self.cursor,
                    crate::text::clean(&needle, 40)
                )
            })
    }

    /// Loads what the panes show for the current stream, cursor and mark.
    fn load(&mut self) -> anyhow::Result<()> {
        let Some(stream) = self.stream().cloned() else {
            self.view = View::default();
            return Ok(());
        };
        let now = self
            .engine
            .state_at(&stream.name, Target::Version(self.cursor))?;
        let base = self
            .mark
            .filter(|m| *m != self.cursor)
            .unwrap_or(self.cursor.saturating_sub(1));
        let before: Arc<Value> = self
            .engine
            .state_at(&stream.name, Target::Version(base))?
            .state;
        let changes = crate::diff::changes(&before, &now.state);
        let text_diff = if self.text_diff {
            crate::diff::unified(
                &before,
                &now.state,
                (&format!("v{base}"), &format!("v{}", self.cursor)),
                2,
            )
        } else {
            String::new()
        };
        let half = u64::from(self.rows) / 2;
        let from = self.cursor.saturating_sub(half).max(1);
        let events = self.engine.store().events(
            &stream,
            from,
            stream.head,
            usize::from(self.rows.max(1)),
        )?;
        // The snapshot list changes only with the stream, its head, or a snapshot taken
        // here: not re-read on every step.
        let key = (stream.id, stream.head);
        let snapshots = match &self.snapshots_of {
            Some((k, list)) if *k == key => list.clone(),
            _ => {
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
                    .map(|s| {
                        let glyph = if s.fingerprint != fingerprint {
                            '×'
                        } else if s.kind == "delta" {
                            '◇'
                        } else {
                            '◆'
                        };
                        (s.version, glyph)
                    })
                    .collect();
                self.snapshots_of = Some((key, list.clone()));
                list
            }
        };
        let mut changed: HashSet<String> = changes.iter().map(|c| c.path().to_string()).collect();
        // The parents of a changed path are shown changed too, so a folded line still tells.
        for path in changed.clone() {
            let mut p = path.as_str();
            while let Some(cut) = p.rfind('/') {
                p = &p[..cut];
                changed.insert(p.to_string());
            }
        }
        self.view = View {
            lines: json_lines::lines(&now.state, MAX_LINES),
            changed,
            changes,
            text_diff,
            diff_from: base,
            events,
            provenance: Some(now.provenance),
            snapshots,
        };
        Ok(())
    }
}

/// Event-list rows for a terminal height: what the layout in `ui` leaves for the list.
pub fn ui_rows(height: u16) -> u16 {
    height.saturating_sub(3 + 10 + 1 + 2).max(1)
}
