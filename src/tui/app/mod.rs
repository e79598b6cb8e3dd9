//! The model: which stream, where the cursor and the mark are, what is shown, and `update`,
//! which applies one action by asking the engine. A failed action becomes a message.
//! `update` only changes the model; [`App::sync`] then loads what the panes show, once for
//! any number of actions, so a held key never queues up reconstructions.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

mod dialogs;
mod load;

use super::action::Action;
use super::jobs::VerifyJob;
use super::tree::{self, Row};
use super::ui;
use crate::Engine;
use crate::diff::Change;
use crate::model::{Event, Provenance, StreamId, StreamInfo, Target};
use crate::store::Walk;

/// Playback speeds, events per second.
pub const SPEEDS: [u32; 7] = [1, 2, 5, 10, 25, 50, 100];

/// The state cache's budget in the debugger, in bytes of JSON (a state takes several times
/// that in memory): small enough to stay within 100 MB resident on megabyte states.
pub const CACHE_BYTES: u64 = 4 << 20;

/// The most bytes copied to the clipboard at once (terminals cap OSC 52).
const MAX_COPY: usize = 1 << 20;

/// What the prompt on the status line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// A version number or an RFC 3339 time.
    GoTo,
    /// Text to find in event types and data.
    Search,
    /// Text to find in the state's keys and values.
    StateSearch,
    /// Which event types to show.
    Filter,
    /// Which streams the list shows.
    Streams,
    /// A jq condition that stops playback.
    Until,
    /// An optional label for a snapshot at the cursor.
    Label,
    /// A file to write the event or value to.
    WriteFile,
}

impl PromptKind {
    /// What the status line shows before the typed text.
    pub fn lead(self) -> &'static str {
        match self {
            Self::GoTo => ":",
            Self::Search => "/",
            Self::StateSearch => "state /",
            Self::Filter => "filter types (!x: without): ",
            Self::Streams => "streams: ",
            Self::Until => "play until (jq): ",
            Self::Label => "snapshot label (Enter: none): ",
            Self::WriteFile => "write to a new file: ",
        }
    }
}

impl PromptKind {
    /// What the status line shows after the typed text, where there is room: the syntax.
    pub fn hint(self) -> &'static str {
        match self {
            Self::Streams => crate::filter::SYNTAX,
            Self::GoTo => "version · +10 · -10 · RFC 3339 time",
            _ => "",
        }
    }
}

impl PromptKind {
    /// Its name in the history kept between runs.
    pub fn name(self) -> &'static str {
        match self {
            Self::GoTo => "go",
            Self::Search => "search",
            Self::StateSearch => "state-search",
            Self::Filter => "types",
            Self::Streams => "streams",
            Self::Until => "until",
            Self::Label => "label",
            Self::WriteFile => "file",
        }
    }
}

/// The prompt being typed: a line edited as a shell edits one.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// What it is for.
    pub kind: PromptKind,
    /// What has been typed, and where the cursor is in it.
    pub input: tui_input::Input,
    /// Whether the text it opened with is selected: typing replaces it, a move keeps it.
    pub selected: bool,
    /// The history entry shown (counting back from the newest), while recalling.
    recalled: Option<usize>,
}

impl Prompt {
    /// A prompt holding `text`, selected.
    pub fn new(kind: PromptKind, text: String) -> Self {
        Self {
            kind,
            selected: !text.is_empty(),
            input: tui_input::Input::new(text),
            recalled: None,
        }
    }

    /// What has been typed.
    pub fn text(&self) -> &str {
        self.input.value()
    }

    /// Replaces what has been typed, the cursor at its end.
    pub fn set(&mut self, text: &str) {
        self.input = tui_input::Input::new(text.to_string());
        self.selected = false;
    }

    /// Applies an edit: with the text selected, typing or deleting replaces all of it.
    pub fn edit(&mut self, request: tui_input::InputRequest) {
        use tui_input::InputRequest as R;
        if std::mem::take(&mut self.selected) {
            match request {
                R::InsertChar(_) => self.input.reset(),
                R::DeletePrevChar | R::DeleteNextChar | R::DeletePrevWord | R::DeleteLine => {
                    self.input.reset();
                    return;
                }
                _ => {}
            }
        }
        self.input.handle(request);
    }
}

/// What was typed at each prompt, oldest first, kept between runs.
pub type History = HashMap<String, Vec<String>>;

/// The most entries kept per prompt.
pub const HISTORY: usize = 100;

/// Which pane the movement keys act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// The event list: keys step through events.
    Events,
    /// The state tree: keys move the state cursor, fold, blame and copy.
    State,
}

/// Which events the list and the stepping walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The selected stream, by version.
    Stream,
    /// Every stream, by seq.
    All,
}

/// How event times are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// Since the first event of the stream (or of all).
    Relative,
    /// UTC, RFC 3339.
    Absolute,
}

/// What a row of a list overlay does when chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// Nothing.
    None,
    /// Show this stream at this version.
    Jump(String, u64),
}

/// One row of a list overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    /// What it shows, already escaped.
    pub text: String,
    /// Where Enter goes.
    pub goal: Goal,
    /// Whether it reports a problem.
    pub alarm: bool,
    /// Whether Space selects it (for a compaction), and whether it is selected.
    pub pick: Option<bool>,
}

/// What a list overlay is.
#[derive(Debug, Clone, PartialEq)]
pub enum ListKind {
    /// Events that changed a path.
    Blame,
    /// The stream's snapshots.
    Snapshots,
    /// A compaction plan; Enter drops the rows selected.
    Compact,
    /// What verify found.
    Findings,
}

/// A list overlay.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// What it is.
    pub kind: ListKind,
    /// Its title.
    pub title: String,
    /// Lines above the rows (a summary).
    pub header: Vec<String>,
    /// The rows.
    pub rows: Vec<ListRow>,
    /// The selected row.
    pub selected: usize,
    /// The hint at the bottom.
    pub hint: String,
    /// A row `x` was pressed on once (the snapshot list): pressed again, it drops it.
    pub armed: Option<usize>,
}

/// What an overlay shows on top of the panes.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    /// The key help, generated from the key table, scrolled by this many lines.
    Help(usize),
    /// A list of things to jump to, or a plan to confirm.
    List(Listing),
    /// A value, an event or a diff whole, scrolled both ways.
    Viewer(Viewer),
}

/// A value, an event or a diff shown whole: every line, scrolled down and sideways, or
/// wrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// What it shows.
    pub title: String,
    /// The text, as it goes to `$PAGER`.
    pub text: String,
    /// The first line shown.
    pub top: usize,
    /// The first column shown (not wrapped).
    pub left: usize,
    /// Whether long lines wrap.
    pub wrap: bool,
}

/// A move in the viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewMove {
    /// A line down.
    Down,
    /// A line up.
    Up,
    /// A page down.
    PageDown,
    /// A page up.
    PageUp,
    /// To the first line.
    Top,
    /// To the last page.
    Bottom,
    /// Sideways, left.
    Left,
    /// Sideways, right.
    Right,
    /// Wrap long lines, or not.
    Wrap,
}

/// Something for the terminal loop to do that rendering must not (it has no side effects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Put this text on the clipboard (OSC 52).
    Copy(String),
    /// Hand this text to `$PAGER`, or to `$EDITOR` (a copy: edits are not kept), the
    /// terminal given to it and taken back.
    Page {
        /// The text.
        text: String,
        /// Whether to `$EDITOR` rather than `$PAGER`.
        editor: bool,
    },
}

/// Where the state pane's cursor is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateView {
    /// The rows on screen.
    pub rows: Vec<Row>,
    /// The first row on screen.
    pub top: usize,
    /// The cursor row.
    pub cursor: usize,
    /// Rows in all, with the folds.
    pub total: usize,
    /// Folded containers shown open because the state cursor is inside them.
    pub opened: Vec<String>,
    /// The path of the row under the cursor.
    pub path: String,
}

/// Everything the panes draw, loaded by [`App::sync`] so that rendering never asks the
/// engine.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Where it was loaded; the panes name this version, stream and mark.
    pub at: Option<At>,
    /// The state at the cursor.
    pub state: Arc<Value>,
    /// The state tree's rows on screen.
    pub tree: StateView,
    /// Pointers the diff changed (and their containers), to highlight in the state.
    pub changed: HashSet<String>,
    /// The structural diff from the base (previous event or mark) to the cursor.
    pub changes: Vec<Change>,
    /// The unified text diff for the same two states.
    pub text_diff: String,
    /// The version the diff starts from.
    pub diff_from: u64,
    /// The events the list shows.
    pub events: Vec<Event>,
    /// The event at the cursor.
    pub event: Option<Event>,
    /// How the state at the cursor was obtained.
    pub provenance: Option<Provenance>,
    /// Why there is no state at the cursor, if it could not be built.
    pub state_error: Option<String>,
    /// Why there is no diff, if the state it starts from could not be built.
    pub diff_error: Option<String>,
    /// Snapshots of the stream on the timeline: version, time, glyph.
    pub snapshots: Vec<Glyph>,
    /// The timeline: event time span and events per cell.
    pub density: Option<Density>,
    /// Markers of the streams on screen: `…` unfinished, `!` snapshot problems or a newest
    /// state that cannot be built.
    pub markers: HashMap<String, char>,
    /// Statuses of the streams on screen (see [`crate::filter::status_of`]).
    pub statuses: HashMap<String, String>,
    /// The time of the event at the mark.
    pub mark_ts: Option<i64>,
    /// What a mirror records beside the stream: where it forks from, the work its source's run
    /// left unfinished.
    pub marks: crate::source::mirror::Marks,
    /// The time of the event the stream forks after.
    pub fork_ts: Option<i64>,
    /// The titles of `events`, in their order, where the database has a title program.
    pub titles: Vec<String>,
}

/// Where events fall in time, for the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Density {
    /// First and last event time.
    pub span: (i64, i64),
    /// Events per cell.
    pub counts: Vec<u64>,
}

/// A snapshot on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glyph {
    /// Its version.
    pub version: u64,
    /// The time of the event at that version.
    pub ts: i64,
    /// ◆ full, ◇ delta, × stale.
    pub glyph: char,
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
    /// The terminal width (0: 120).
    pub width: u16,
    /// The terminal height (0: 40).
    pub height: u16,
    /// Leave out anything that depends on the clock, and finish jobs at once.
    pub deterministic: bool,
    /// The time a mapping's unfinished marker is judged at (default: the source's newest).
    pub now: Option<crate::model::Micros>,
}

type Cached<K, V> = Option<(K, V)>;

/// How much of the view an action makes stale. Ordered: what several actions ask for
/// together is the largest of what each asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Load {
    /// Nothing shown changes (a prompt keystroke, a list row).
    Nothing,
    /// Only the state tree's layout: folds, the state cursor, the focus.
    Tree,
    /// The state, the diff, the events and all the rest.
    Everything,
}

/// Where the view was loaded: everything in the model the panes' contents depend on. A
/// view whose position is not the model's is loaded again before it is drawn, whatever the
/// actions said, so no pane ever shows one version under another's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    /// The stream shown and its newest version.
    pub stream: Option<(StreamId, u64)>,
    /// The version at the cursor.
    pub cursor: u64,
    /// In the all-streams scope, the seq at the cursor.
    pub seq: Option<i64>,
    /// The mark.
    pub mark: Option<u64>,
    /// One stream or all.
    pub scope: Scope,
    /// The type filter.
    pub filter: Option<String>,
    /// Whether the diff is text.
    pub text_diff: bool,
    /// The terminal size.
    pub size: (u16, u16),
}

/// A source the debugger reads through its mirror: followed while the debugger is open.
#[derive(Debug, Clone)]
pub struct Followed {
    /// The source's path.
    pub path: std::path::PathBuf,
    /// The format `--format` named, if any.
    pub format: Option<String>,
}

/// The debugger's model.
pub struct App {
    engine: Engine,
    /// The source behind the database, when it is a mirror: brought up to date on refresh.
    pub source: Option<Followed>,
    /// The current stream's state, stepped in place (one stream scope).
    stepper: crate::step::Stepper,
    /// All streams, by name.
    pub streams: Vec<StreamInfo>,
    /// Index of the stream shown.
    pub selected: usize,
    /// The version the cursor is on (0: before the first event).
    pub cursor: u64,
    /// In the all-streams scope, the seq of the event at the cursor.
    pub seq: Option<i64>,
    /// The mark, if set.
    pub mark: Option<u64>,
    /// Which pane the movement keys act on.
    pub focus: Pane,
    /// One stream or all.
    pub scope: Scope,
    /// Relative or absolute times.
    pub times: Times,
    /// Only events whose type matches this (see [`Walk::kind`]).
    pub filter: Option<String>,
    /// Whether the diff pane shows a unified text diff.
    pub text_diff: bool,
    /// Whether the focused pane fills the screen.
    pub zoomed: bool,
    /// Whether the cursor follows the newest event as others append.
    pub follow: bool,
    /// Whether following stopped because the user moved from the newest event (`G` resumes).
    follow_stopped: bool,
    /// Whether playback runs.
    pub playing: bool,
    /// The playback speed: an index into [`SPEEDS`].
    pub speed: usize,
    /// The jq condition that stops playback.
    pub until: Option<(String, Arc<crate::jq::Program>)>,
    /// A play tick moved the cursor: the stop condition is due once the state is loaded.
    until_due: bool,
    /// The overlay on top, if any.
    pub overlay: Option<Overlay>,
    /// The prompt being typed, if any.
    pub prompt: Option<Prompt>,
    /// The last search, for `n` and `N`, and whether it was in the state.
    pub search: Option<(String, bool)>,
    /// Its matches, counted.
    count: Option<Count>,
    /// What was typed at each prompt (loaded and saved between runs by the terminal loop).
    pub history: History,
    /// The last message for the status line.
    pub message: Option<String>,
    /// What the panes show.
    pub view: View,
    /// The terminal size.
    pub size: (u16, u16),
    /// Leave out anything that depends on the clock (for `rewind render`).
    pub deterministic: bool,
    /// The time a mapping's unfinished marker is judged at (default: the source's newest).
    pub now: Option<crate::model::Micros>,
    /// The events' title program a mapping gave, with the titles it gave so far.
    titles: Option<crate::title::Titles>,
    /// What each event on screen did (the summary column), cached by seq.
    summaries: crate::summary::Summaries,
    /// Whether the writing keys are disabled.
    pub read_only: bool,
    /// Why the terminal may not receive what `y` copies, said when it copies.
    pub copy_note: Option<String>,
    /// Set by `Quit`.
    pub quit: bool,
    /// Folded containers of the state tree.
    pub folded: HashSet<String>,
    /// The path under the state cursor.
    pub state_path: String,
    /// What the loop must do for the model (clipboard).
    pub effects: Vec<Effect>,
    /// The verify running in the background.
    pub job: Option<VerifyJob>,
    /// Streams with findings from the last verify.
    pub findings: HashSet<String>,
    /// What the action being applied asks to be loaded again.
    want: Load,
    /// What the actions applied since the last load ask for, together.
    pending: Load,
    /// A row the state cursor was moved to (rather than a path).
    state_row: Option<usize>,
    snapshots_of: Cached<(StreamId, u64), Vec<Glyph>>,
    density_of: Cached<(Scope, Option<StreamId>, u64, u16), Option<Density>>,
    markers_of: HashMap<StreamId, (u64, Mark)>,
    /// The stream filter, if one is set.
    pub stream_filter: Option<crate::filter::StreamFilter>,
    /// The streams the list shows, as indices into `streams`, in order.
    pub listed: Vec<usize>,
}

/// What the stream list says of a stream, judged at its head.
#[derive(Debug, Clone, Default)]
pub(super) struct Mark {
    /// `…` unfinished, `!` stale snapshots or a newest state that cannot be built.
    glyph: char,
    /// Its status, if it has one.
    status: Option<String>,
    /// Whether it looks unfinished.
    unfinished: bool,
}

/// How many events a search matches, counted a range at a time (a long history never
/// holds up the keys): the index of the match at the cursor and the total so far.
#[derive(Debug, Clone)]
pub(super) struct Count {
    /// The text, the scope and the stream (one-stream scope) counted.
    key: (String, Scope, Option<StreamId>),
    /// The match at the cursor: a version, or a seq in the all-streams scope.
    at: u64,
    /// The next version (or seq) to count from.
    next: u64,
    /// The last one to count (the newest when the search began).
    end: u64,
    /// Matches counted so far.
    total: u64,
    /// Of those, at or before `at`: its index.
    before: u64,
    /// Whether the search went round an end to find it.
    wrapped: Option<&'static str>,
    /// What the status line was last told.
    said: String,
}

/// Versions (or seqs) counted per query.
const COUNT_CHUNK: u64 = 20_000;

impl Count {
    fn done(&self) -> bool {
        self.next > self.end
    }

    /// "/text: match 3 of 17", "3 of ≥17 …" while counting.
    fn describe(&self) -> String {
        let index = if self.next > self.at {
            crate::model::group(self.before)
        } else {
            "…".into()
        };
        let of = if self.done() {
            crate::model::group(self.total)
        } else {
            format!("≥{} …", crate::model::group(self.total))
        };
        let wrapped = self.wrapped.map_or_else(String::new, |w| format!(" · {w}"));
        format!("/{}: match {index} of {of}{wrapped}", clean(&self.key.0))
    }
}

/// Which way a step goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Forward,
    Back,
}

impl App {
    /// Opens the debugger as `start` says (by default: the first stream, at its newest event).
    pub fn new(mut engine: Engine, start: &Start) -> anyhow::Result<Self> {
        // A viewer stays open for hours: keep its memory to the page cache and a small
        // state cache rather than a map of the whole file.
        engine.store().set_memory_map(0)?;
        engine.set_cache_budget(CACHE_BYTES);
        let streams = engine.store().streams()?;
        let selected = match start.stream.as_deref() {
            Some(name) => streams
                .iter()
                .position(|s| s.name == name)
                .ok_or_else(|| crate::Error::UnknownStream(name.to_string()))?,
            None => 0,
        };
        let read_only = engine.store().is_read_only();
        let size = (
            if start.width == 0 { 120 } else { start.width },
            if start.height == 0 { 40 } else { start.height },
        );
        let mut app = Self {
            engine,
            source: None,
            stepper: crate::step::Stepper::default(),
            streams,
            selected,
            cursor: 0,
            seq: None,
            mark: None,
            focus: Pane::Events,
            scope: Scope::Stream,
            times: Times::Relative,
            filter: None,
            text_diff: false,
            zoomed: false,
            follow: false,
            follow_stopped: false,
            playing: false,
            speed: 3,
            until: None,
            until_due: false,
            overlay: None,
            prompt: None,
            search: None,
            count: None,
            history: History::new(),
            message: None,
            view: View::default(),
            size,
            deterministic: start.deterministic,
            now: start.now,
            titles: None,
            summaries: crate::summary::Summaries::default(),
            read_only,
            copy_note: None,
            quit: false,
            folded: HashSet::new(),
            state_path: String::new(),
            effects: Vec::new(),
            job: None,
            findings: HashSet::new(),
            want: Load::Everything,
            pending: Load::Everything,
            state_row: None,
            snapshots_of: None,
            density_of: None,
            markers_of: HashMap::new(),
            stream_filter: None,
            listed: Vec::new(),
        };
        app.listed = (0..app.streams.len()).collect();
        if let Some(stream) = app.stream().cloned() {
            for (what, v) in [("", start.at), (" to mark", start.mark)] {
                if let Some(v) = v.filter(|v| *v > stream.head) {
                    anyhow::bail!(
                        "stream {:?} has versions 1..={}; there is no version {v}{what}",
                        stream.name,
                        stream.head
                    );
                }
            }
            app.cursor = start.at.unwrap_or(stream.head);
            app.mark = start.mark;
        }
        // A stream that cannot be shown still opens, with the reason in the status line.
        app.load_titles()?;
        app.load();
        Ok(app)
    }

    /// Where each pane is drawn at the terminal's size, the focused pane alone when zoomed.
    pub fn areas(&self) -> ui::Areas {
        ui::layout(self.size, self.zoomed.then_some(self.focus))
    }

    /// The stream shown, if the database has any.
    pub fn stream(&self) -> Option<&StreamInfo> {
        self.streams.get(self.selected)
    }

    /// The stream shown, for an action that needs one.
    fn current_stream(&self) -> anyhow::Result<StreamInfo> {
        self.stream()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no stream"))
    }

    /// Applies an action and loads what it shows; a failure becomes the status message and
    /// the debugger goes on.
    pub fn dispatch(&mut self, action: Action) {
        self.apply(action);
        self.load();
    }

    /// Loads what the panes show ([`App::sync`]); a failure becomes the status message
    /// and stops playback, and the debugger goes on.
    pub fn load(&mut self) {
        if let Err(err) = self.sync() {
            self.fail(&err);
        }
    }

    /// Applies an action; the loop calls [`App::load`] once before drawing, so a burst of
    /// moves is loaded once. An action that reads what is shown (the state tree, the event
    /// rows, the focus that decides where the state cursor goes) loads it first: a burst
    /// of keys then ends where the same keys pressed one at a time end. A failure becomes
    /// the status message.
    pub fn apply(&mut self, action: Action) {
        if !batches(action) {
            self.load();
        }
        // What the user did replaces the message; what the terminal or a timer did does not.
        if !matches!(
            action,
            Action::Refresh | Action::Poll | Action::PlayTick | Action::Resize(..)
        ) {
            self.message = None;
        }
        let outcome = self.update(action);
        // What a failed action changed before it failed is loaded too.
        self.pending = self.pending.max(self.want);
        if let Err(err) = outcome {
            self.fail(&err);
        }
    }

    /// Where the panes were loaded: the cursor, mark and seq every pane names.
    pub fn shown(&self) -> &At {
        const NOWHERE: At = At {
            stream: None,
            cursor: 0,
            seq: None,
            mark: None,
            scope: Scope::Stream,
            filter: None,
            text_diff: false,
            size: (0, 0),
        };
        self.view.at.as_ref().unwrap_or(&NOWHERE)
    }

    /// Where the panes must be loaded for the model as it is now.
    pub fn at(&self) -> At {
        At {
            stream: self.stream().map(|s| (s.id, s.head)),
            cursor: self.cursor,
            seq: self.seq,
            mark: self.mark,
            scope: self.scope,
            filter: self.filter.clone(),
            text_diff: self.text_diff,
            size: self.size,
        }
    }

    fn fail(&mut self, err: &anyhow::Error) {
        self.message = Some(crate::text::safe_message(&format!("{err:#}")));
        if std::mem::take(&mut self.playing) {
            self.message = self
                .message
                .take()
                .map(|m| format!("playback stopped: {m}"));
        }
    }

    /// Applies one action to the model.
    pub fn update(&mut self, action: Action) -> anyhow::Result<()> {
        let head = self.stream().map_or(0, |s| s.head);
        let page = u64::from(self.event_rows().max(1));
        self.want = Load::Everything;
        match action {
            Action::StepForward => self.step(Way::Forward, 1)?,
            Action::StepBack => self.step(Way::Back, 1)?,
            Action::PageForward => self.step(Way::Forward, page)?,
            Action::PageBack => self.step(Way::Back, page)?,
            Action::First => self.go_end(Way::Back)?,
            Action::Last => {
                // To the newest event, following it again where moving away stopped that.
                self.follow |= std::mem::take(&mut self.follow_stopped);
                self.go_end(Way::Forward)?;
            }
            Action::NextSnapshot | Action::PrevSnapshot => {
                let stream = self.current_stream()?;
                let glyphs = self.glyphs(&stream)?;
                let list = glyphs.iter().map(|s| s.version);
                let found = if action == Action::NextSnapshot {
                    list.clone().find(|v| *v > self.cursor)
                } else {
                    list.rev().find(|v| *v < self.cursor)
                };
                let way = if action == Action::NextSnapshot {
                    "after"
                } else {
                    "before"
                };
                let v =
                    found.ok_or_else(|| anyhow::anyhow!("no snapshot {way} v{}", self.cursor))?;
                self.go(v)?;
            }
            Action::NextStream | Action::PrevStream => {
                if self.listed.is_empty() {
                    anyhow::bail!("no stream matches the filter (F changes it)");
                }
                let n = self.listed.len();
                let next = action == Action::NextStream;
                let at = match self.listed.iter().position(|i| *i == self.selected) {
                    Some(at) if next => (at + 1) % n,
                    Some(at) => (at + n - 1) % n,
                    None if next => 0,
                    None => n - 1,
                };
                self.select_stream(self.listed[at]);
                self.scope = Scope::Stream;
                self.seq = None;
            }
            Action::ToggleFocus => {
                self.focus = match self.focus {
                    Pane::Events => Pane::State,
                    Pane::State => Pane::Events,
                };
                self.want = Load::Tree;
            }
            Action::ToggleMark => {
                self.mark = if self.mark == Some(self.cursor) {
                    None
                } else {
                    Some(self.cursor)
                }
            }
            Action::JumpToMark => {
                let mark = self
                    .mark
                    .ok_or_else(|| anyhow::anyhow!("no mark set (m sets one)"))?;
                self.go(mark)?;
            }
            Action::ToggleDiffText => self.text_diff = !self.text_diff,
            Action::ToggleZoom => self.zoomed = !self.zoomed,
            Action::ToggleScope => {
                self.scope = match self.scope {
                    Scope::Stream => Scope::All,
                    Scope::All => Scope::Stream,
                };
                self.seq = None;
                if self.scope == Scope::All {
                    self.go(self.cursor)?;
                }
            }
            Action::ToggleTimes => {
                self.times = match self.times {
                    Times::Relative => Times::Absolute,
                    Times::Absolute => Times::Relative,
                }
            }
            Action::PromptSnapshot => {
                self.writable("taking snapshots")?;
                self.open_prompt(PromptKind::Label);
            }
            Action::ToggleHelp => {
                self.overlay = match self.overlay {
                    Some(Overlay::Help(_)) => None,
                    _ => Some(Overlay::Help(0)),
                }
            }
            Action::CloseOverlay => self.overlay = None,
            Action::Quit => self.quit = true,
            Action::Resize(width, height) => self.size = (width, height),
            Action::PromptGoTo => self.open_prompt(PromptKind::GoTo),
            Action::PromptSearch => self.open_prompt(PromptKind::Search),
            Action::PromptStateSearch => self.open_prompt(PromptKind::StateSearch),
            Action::PromptFilter => self.open_prompt(PromptKind::Filter),
            Action::PromptStreams => self.open_prompt(PromptKind::Streams),
            Action::PromptUntil => self.open_prompt(PromptKind::Until),
            Action::PromptEdit(request) => {
                if let Some(prompt) = &mut self.prompt {
                    prompt.edit(request);
                }
                self.want = Load::Nothing;
            }
            Action::PromptHistory(earlier) => {
                self.want = Load::Nothing;
                if let Some(prompt) = &mut self.prompt {
                    let entries = self
                        .history
                        .get(prompt.kind.name())
                        .map_or(&[][..], Vec::as_slice);
                    let at = match (prompt.recalled, earlier) {
                        (None, true) if !entries.is_empty() => Some(0),
                        (None, _) => None,
                        (Some(i), true) => Some((i + 1).min(entries.len().saturating_sub(1))),
                        (Some(0), false) => None,
                        (Some(i), false) => Some(i - 1),
                    };
                    let text = at.map_or("", |i| entries[entries.len() - 1 - i].as_str());
                    prompt.set(text);
                    prompt.recalled = at;
                }
            }
            Action::PromptCancel => {
                self.prompt = None;
                self.want = Load::Nothing;
            }
            Action::PromptSubmit => self.submit()?,
            Action::ToggleFollow => {
                self.follow = !self.follow;
                self.follow_stopped = false;
                if self.follow {
                    self.refresh_streams()?;
                    self.go_end(Way::Forward)?;
                }
            }
            Action::Refresh => self.refresh()?,
            Action::SearchNext | Action::SearchPrev => {
                let forward = action == Action::SearchNext;
                match self.search.clone() {
                    Some((needle, true)) => self.find_in_state(&needle, forward)?,
                    Some((needle, false)) => self.find_event(&needle, forward)?,
                    None => anyhow::bail!("nothing to search for (/ searches)"),
                }
            }
            Action::TogglePlay => {
                if !self.playing && self.cursor >= head && self.scope == Scope::Stream {
                    anyhow::bail!("at the newest event: nothing to play (g goes to the start)");
                }
                self.playing = !self.playing;
                self.want = Load::Nothing;
            }
            Action::Faster | Action::Slower => {
                self.speed = if action == Action::Faster {
                    (self.speed + 1).min(SPEEDS.len() - 1)
                } else {
                    self.speed.saturating_sub(1)
                };
                self.message = Some(format!("playback speed {}/s", SPEEDS[self.speed]));
                self.want = Load::Nothing;
            }
            Action::PlayTick => self.play_tick()?,
            Action::StateDown => self.move_state(1)?,
            Action::StateUp => self.move_state(-1)?,
            Action::StatePageDown => self.move_state(i64::from(self.state_rows()))?,
            Action::StatePageUp => self.move_state(-i64::from(self.state_rows()))?,
            Action::StateTop => self.move_state(i64::MIN / 2)?,
            Action::StateBottom => self.move_state(i64::MAX / 2)?,
            Action::ToggleFold | Action::Fold | Action::Unfold => self.fold(action)?,
            Action::FoldAll => {
                self.settle_state_cursor();
                self.folded = tree::containers_below(&self.view.state, 1);
                self.state_path = tree::ancestors(&self.state_path)
                    .get(1)
                    .cloned()
                    .unwrap_or_else(|| self.state_path.clone());
                self.want = Load::Tree;
            }
            Action::UnfoldAll => {
                self.folded.clear();
                self.want = Load::Tree;
            }
            Action::Copy => self.copy()?,
            Action::PromptWrite => self.prompt_write()?,
            Action::Blame => self.blame()?,
            Action::ListSnapshots => self.list_snapshots()?,
            Action::Compact => self.plan_compaction()?,
            Action::Verify => self.start_verify()?,
            Action::ListDown | Action::ListUp => {
                if let Some(Overlay::Help(top)) = &mut self.overlay {
                    *top = if action == Action::ListDown {
                        (*top + 1).min(super::keymap::help_lines().len())
                    } else {
                        top.saturating_sub(1)
                    };
                }
                if let Some(Overlay::List(list)) = &mut self.overlay {
                    list.armed = None;
                    list.selected = if action == Action::ListDown {
                        (list.selected + 1).min(list.rows.len().saturating_sub(1))
                    } else {
                        list.selected.saturating_sub(1)
                    };
                }
                self.want = Load::Nothing;
            }
            Action::ListActivate => self.activate()?,
            Action::OpenViewer => self.open_viewer()?,
            Action::OpenDiff => self.open_diff()?,
            Action::View(step) => self.view_move(step),
            Action::Page(editor) => self.page(editor)?,
            Action::ListToggle => self.toggle_row()?,
            Action::ListDrop => self.drop_row()?,
            Action::Poll => self.poll_job()?,
            Action::Click(x, y) | Action::Drag(x, y) => self.click(x, y, action)?,
            Action::ScrollDown(x, y) | Action::ScrollUp(x, y) => {
                let down = matches!(action, Action::ScrollDown(..));
                let areas = self.areas();
                if areas.state.contains((x, y).into()) {
                    self.move_state(if down { 3 } else { -3 })?;
                } else if areas.streams.contains((x, y).into()) {
                    self.update(if down {
                        Action::NextStream
                    } else {
                        Action::PrevStream
                    })?;
                } else if areas.events.contains((x, y).into()) {
                    self.step(if down { Way::Forward } else { Way::Back }, 1)?;
                }
            }
        }
        // Following stops when the user moves away from the newest event (to read an older
        // one while others append), saying so; `f` or `G` follows again.
        if self.follow
            && !matches!(
                action,
                Action::Refresh | Action::PlayTick | Action::ToggleFollow | Action::Last
            )
            && self.stream().is_some_and(|s| self.cursor < s.head)
        {
            self.follow = false;
            self.follow_stopped = true;
            self.message =
                Some("follow off: you moved from the newest event (f or G follows again)".into());
        }
        Ok(())
    }

    // ---- moving the cursor -------------------------------------------------------------

    fn walk(&self) -> Walk<'_> {
        Walk {
            stream: match self.scope {
                Scope::Stream => self.stream(),
                Scope::All => None,
            },
            kind: self.filter.as_deref(),
        }
    }

    /// Where the cursor is in the walk's order: a version, or a seq in the all scope.
    fn position(&self) -> u64 {
        match self.scope {
            Scope::Stream => self.cursor,
            Scope::All => self.seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)),
        }
    }

    fn step(&mut self, way: Way, n: u64) -> anyhow::Result<()> {
        let head = self.stream().map_or(0, |s| s.head);
        if self.scope == Scope::Stream && self.filter.is_none() {
            let to = match way {
                Way::Forward => (self.cursor + n).min(head),
                Way::Back => self.cursor.saturating_sub(n),
            };
            return self.go(to);
        }
        let found = self.engine.store().neighbours(
            &self.walk(),
            self.position(),
            way == Way::Forward,
            false,
            usize::try_from(n).unwrap_or(usize::MAX),
        )?;
        match found.into_iter().last() {
            Some(event) => self.go_event(&event),
            None => {
                let what = self
                    .filter
                    .as_deref()
                    .map_or_else(String::new, |f| format!(" matching {:?}", clean(f)));
                let way = if way == Way::Forward {
                    "after"
                } else {
                    "before"
                };
                anyhow::bail!("no event{what} {way} this one")
            }
        }
    }

    fn go_end(&mut self, way: Way) -> anyhow::Result<()> {
        if self.scope == Scope::Stream && (self.filter.is_none() || way == Way::Back) {
            let to = match way {
                Way::Forward => self.stream().map_or(0, |s| s.head),
                Way::Back => 0,
            };
            return self.go(to);
        }
        let from = if way == Way::Forward {
            u64::MAX >> 1
        } else {
            0
        };
        // The newest event is the nearest going back from the far end; the oldest, the
        // nearest going forward from the start.
        let found =
            self.engine
                .store()
                .neighbours(&self.walk(), from, way == Way::Back, true, 1)?;
        match found.first() {
            Some(event) => self.go_event(event),
            None => Ok(()),
        }
    }

    /// Moves the cursor to a version of the selected stream.
    fn go(&mut self, version: u64) -> anyhow::Result<()> {
        self.cursor = version;
        if self.scope == Scope::All {
            // All streams walk events by seq, and version 0 is no event: the cursor goes to
            // the stream's first one, so that the list and the state name the same event.
            match self.event_here()? {
                Some(event) => {
                    self.cursor = event.version;
                    self.seq = Some(event.seq);
                }
                None => self.seq = None,
            }
        }
        Ok(())
    }

    /// Moves the cursor to an event, of whichever stream.
    fn go_event(&mut self, event: &Event) -> anyhow::Result<()> {
        if self.stream().is_none_or(|s| s.name != event.stream) {
            let i = self
                .streams
                .iter()
                .position(|s| s.name == event.stream)
                .ok_or_else(|| crate::Error::UnknownStream(event.stream.clone()))?;
            self.selected = i;
            self.mark = None;
        }
        self.cursor = event.version;
        self.seq = Some(event.seq);
        Ok(())
    }

    /// The event at the cursor (the stream's first event at version 0).
    fn event_here(&self) -> anyhow::Result<Option<Event>> {
        let Some(stream) = self.stream() else {
            return Ok(None);
        };
        let walk = Walk {
            stream: Some(stream),
            kind: None,
        };
        let found = self
            .engine
            .store()
            .neighbours(&walk, self.cursor.max(1), true, true, 1)?;
        Ok(found.into_iter().next())
    }

    fn select_stream(&mut self, i: usize) {
        self.selected = i;
        self.cursor = self.stream().map_or(0, |s| s.head);
        self.mark = None;
        self.folded.clear();
    }

    /// Shows a stream at a version (from a list overlay).
    fn jump(&mut self, stream: &str, version: u64) -> anyhow::Result<()> {
        self.refresh_streams()?;
        let i = self
            .streams
            .iter()
            .position(|s| s.name == stream)
            .ok_or_else(|| crate::Error::UnknownStream(stream.to_string()))?;
        if i != self.selected {
            self.select_stream(i);
        }
        let head = self.stream().map_or(0, |s| s.head);
        self.go(version.min(head))
    }

    /// Reloads the stream list (heads move as others append), keeping the selected stream.
    fn refresh_streams(&mut self) -> anyhow::Result<()> {
        let name = self.stream().map(|s| s.name.clone());
        self.streams = self.engine.store().streams()?;
        self.selected = name
            .and_then(|n| self.streams.iter().position(|s| s.name == n))
            .unwrap_or(0);
        let filter = self.stream_filter.clone();
        self.listed = self.list(filter.as_ref())?;
        Ok(())
    }

    /// Brings the mirror up to date with its source, opening it again where it was made
    /// again; a source that cannot be read now is said on the status line, and what was
    /// read before stays on screen.
    fn sync_source(&mut self) -> anyhow::Result<()> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        let read = crate::source::mirror::resolve(&source.path, source.format.as_deref());
        // Read again after it could not be: what said so is no longer true.
        if read.is_ok()
            && self.message.as_deref().is_some_and(|m| {
                m.starts_with(&format!(
                    "{}: cannot be read now (",
                    crate::source::mirror::canonical_text(&source.path)
                ))
            })
        {
            self.message = None;
        }
        match read {
            Ok(Some(mirrored)) => {
                if mirrored.rebuilt {
                    let mode = if self.engine.store().is_read_only() {
                        crate::store::OpenMode::ReadOnly
                    } else {
                        crate::store::OpenMode::Existing
                    };
                    let mut engine = Engine::open(&mirrored.path, mode)?;
                    engine.store().set_memory_map(0)?;
                    engine.set_cache_budget(CACHE_BYTES);
                    self.engine = engine;
                    self.stepper = crate::step::Stepper::default();
                    self.snapshots_of = None;
                    self.markers_of.clear();
                    // The stream at the cursor may be another now: start again at its head.
                    self.refresh_streams()?;
                    self.go_end(Way::Forward)?;
                }
                if let Some(note) = mirrored.note {
                    self.message = Some(note);
                }
            }
            Ok(None) => {}
            Err(e) => {
                self.message = Some(format!(
                    "{}: cannot be read now ({e}); showing what was read before",
                    crate::source::mirror::canonical_text(&source.path)
                ));
            }
        }
        Ok(())
    }

    fn refresh(&mut self) -> anyhow::Result<()> {
        self.sync_source()?;
        // A sync may bring another title program.
        self.load_titles()?;
        let before = self.stream().map(|s| (s.name.clone(), s.head));
        // Following keeps the cursor on the newest event while it is there: moved back to
        // look at an older one, it stays there (and follows again once back at the newest).
        let at_newest = before.as_ref().is_none_or(|(_, head)| self.cursor >= *head);
        let heads: u64 = self.streams.iter().map(|s| s.head).sum();
        let count = self.streams.len();
        let reducers: Vec<(String, String)> = self
            .streams
            .iter()
            .map(|s| (s.name.clone(), s.reducer.clone()))
            .collect();
        self.refresh_streams()?;
        // Events never change, but what replays them may: summaries are given again where
        // a stream's reducer did.
        let reduced_otherwise = self.streams.iter().any(|s| {
            reducers
                .binary_search_by(|(n, _)| n.cmp(&s.name))
                .is_ok_and(|i| reducers[i].1 != s.reducer)
        });
        if reduced_otherwise {
            self.summaries.clear();
            self.stepper = crate::step::Stepper::default();
        }
        let after = self.stream().map(|s| (s.name.clone(), s.head));
        let now: u64 = self.streams.iter().map(|s| s.head).sum();
        if before == after && count == self.streams.len() && heads == now && !reduced_otherwise {
            self.want = Load::Nothing; // nothing new: no reload
            return Ok(());
        }
        if self.follow && at_newest {
            self.go_end(Way::Forward)?;
        }
        Ok(())
    }

    /// Summarises events with the user's title programs (from their settings for the
    /// database) instead of the keys each changed.
    pub fn set_title_rules(&mut self, rules: crate::summary::Rules) {
        self.summaries = crate::summary::Summaries::with(rules);
        self.pending = Load::Everything;
        self.load();
    }

    /// The events' title program the database keeps, compiled again only where it changed.
    fn load_titles(&mut self) -> anyhow::Result<()> {
        let program = self.engine.store().meta(crate::title::META)?;
        if program.as_deref() != self.titles.as_ref().map(crate::title::Titles::source) {
            self.titles = crate::title::Titles::of(self.engine.store())?;
        }
        Ok(())
    }

    fn open_prompt(&mut self, kind: PromptKind) {
        let text = match kind {
            PromptKind::Filter => self.filter.clone().unwrap_or_default(),
            PromptKind::Streams => self
                .stream_filter
                .as_ref()
                .map(|f| f.text().to_string())
                .unwrap_or_default(),
            PromptKind::Until => self.until.as_ref().map(|u| u.0.clone()).unwrap_or_default(),
            _ => String::new(),
        };
        self.prompt = Some(Prompt::new(kind, text));
        self.want = Load::Nothing;
    }

    fn submit(&mut self) -> anyhow::Result<()> {
        let Some(prompt) = self.prompt.take() else {
            return Ok(());
        };
        let text = prompt.text().trim().to_string();
        if !text.is_empty() {
            let entries = self
                .history
                .entry(prompt.kind.name().to_string())
                .or_default();
            entries.retain(|e| *e != text);
            entries.push(text.clone());
            let over = entries.len().saturating_sub(HISTORY);
            entries.drain(..over);
        }
        match prompt.kind {
            PromptKind::GoTo => {
                let v = self.resolve(&text)?;
                self.go(v)?;
            }
            PromptKind::Search if text.is_empty() => self.search = None,
            PromptKind::Search => {
                self.search = Some((text.clone(), false));
                self.find_event(&text, true)?;
            }
            PromptKind::StateSearch if text.is_empty() => self.search = None,
            PromptKind::StateSearch => {
                self.search = Some((text.clone(), true));
                self.find_in_state(&text, true)?;
            }
            PromptKind::Filter => {
                self.filter = Some(text).filter(|t| !t.is_empty() && t != "!");
            }
            PromptKind::Streams => self.filter_streams(&text)?,
            PromptKind::Until if text.is_empty() => {
                self.until = None;
                self.message = Some("playback runs to the newest event".into());
            }
            PromptKind::Until => {
                let program = crate::jq::Program::compile(&text)
                    .map_err(|e| anyhow::anyhow!("the stop condition: {e}"))?;
                self.message = Some(format!("playback stops when {} (p plays)", clean(&text)));
                self.until = Some((text, Arc::new(program)));
            }
            PromptKind::Label => self.take_snapshot(Some(text).filter(|t| !t.is_empty()))?,
            PromptKind::WriteFile => self.write_file(&text)?,
        }
        Ok(())
    }

    /// A version from what was typed at the go-to prompt: a number, or an RFC 3339 time
    /// (the last event at or before it).
    fn resolve(&mut self, text: &str) -> anyhow::Result<u64> {
        let stream = self.current_stream()?;
        // `+10` and `-10` move from the cursor, stopping at either end.
        let relative = |sign: char| {
            text.strip_prefix(sign)
                .and_then(|n| n.trim().replace(',', "").parse::<u64>().ok())
        };
        if let Some(n) = relative('+') {
            return Ok(self.cursor.saturating_add(n).min(stream.head));
        }
        if let Some(n) = relative('-') {
            return Ok(self.cursor.saturating_sub(n));
        }
        let target = match text.replace(',', "").parse::<u64>() {
            Ok(v) => Target::Version(v),
            Err(_) => Target::Time(crate::time::parse(text).map_err(|_| {
                anyhow::anyhow!(
                    "{:?} is neither a version nor an RFC 3339 time",
                    clean(text)
                )
            })?),
        };
        Ok(self.engine.resolve(&stream, target)?)
    }

    /// Finds the next (or previous) event whose type or data contains `needle`, of the
    /// stream or, in the all-streams scope, of any stream; past the last match it wraps to
    /// the first and says so. Then counts the matches ("match 3 of 17"), a range at a time.
    fn find_event(&mut self, needle: &str, forward: bool) -> anyhow::Result<()> {
        let wrap = if forward {
            "wrapped to the start"
        } else {
            "wrapped to the end"
        };
        let (at, wrapped) = match self.scope {
            Scope::Stream => {
                let stream = self.current_stream()?;
                let store = self.engine.store();
                let (found, wrapped) =
                    match store.find_event(&stream, self.cursor, forward, needle)? {
                        Some(v) => (Some(v), false),
                        None => {
                            let from = if forward { 0 } else { stream.head + 1 };
                            (store.find_event(&stream, from, forward, needle)?, true)
                        }
                    };
                let found = found.ok_or_else(|| {
                    anyhow::anyhow!(
                        "no event of {} matches {:?}",
                        clean(&stream.name),
                        clean(needle)
                    )
                })?;
                self.go(found)?;
                (found, wrapped)
            }
            Scope::All => {
                let store = self.engine.store();
                let seq = self.seq.unwrap_or(0);
                let (found, wrapped) = match store.find_event_any(seq, forward, needle)? {
                    Some(e) => (Some(e), false),
                    None => {
                        let from = if forward { 0 } else { i64::MAX };
                        (store.find_event_any(from, forward, needle)?, true)
                    }
                };
                let found = found.ok_or_else(|| {
                    anyhow::anyhow!("no event of any stream matches {:?}", clean(needle))
                })?;
                self.go_event(&found)?;
                (u64::try_from(found.seq).unwrap_or(0), wrapped)
            }
        };
        let key = (
            needle.to_string(),
            self.scope,
            self.stream()
                .map(|s| s.id)
                .filter(|_| self.scope == Scope::Stream),
        );
        let wrapped = wrapped.then_some(wrap);
        // The next match of a count already made is one on (or back, or round to an end).
        let reused = match &mut self.count {
            Some(count) if count.key == key && count.done() && at <= count.end => {
                count.before = match (forward, wrapped.is_some()) {
                    (true, true) => 1,
                    (true, false) => count.before + 1,
                    (false, true) => count.total,
                    (false, false) => count.before.saturating_sub(1),
                }
                .clamp(1, count.total.max(1));
                count.at = at;
                count.wrapped = wrapped;
                count.said = String::new();
                true
            }
            _ => false,
        };
        if !reused {
            let end = match self.scope {
                Scope::Stream => self.stream().map_or(0, |s| s.head),
                Scope::All => u64::try_from(self.engine.store().last_seq()?).unwrap_or(0),
            };
            self.count = Some(Count {
                key,
                at,
                next: 1,
                end,
                total: 0,
                before: 0,
                wrapped,
                said: String::new(),
            });
        }
        self.count_matches(if self.deterministic {
            None
        } else {
            Some(std::time::Duration::from_millis(8))
        })?;
        Ok(())
    }

    /// Counts the search's matches for up to `budget` (all of them without one), and says
    /// where the count stands, unless something else has been said since.
    pub(super) fn count_matches(
        &mut self,
        budget: Option<std::time::Duration>,
    ) -> anyhow::Result<()> {
        let Some(mut count) = self.count.take() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let stream = match count.key.2 {
            Some(id) => self.streams.iter().find(|s| s.id == id).cloned(),
            None => None,
        };
        while !count.done() && budget.is_none_or(|b| started.elapsed() < b) {
            let to = count.end.min(count.next.saturating_add(COUNT_CHUNK - 1));
            let (n, before) = self.engine.store().count_matches(
                stream.as_ref(),
                count.next,
                to,
                count.at,
                &count.key.0,
            )?;
            count.total += n;
            count.before += before;
            count.next = to + 1;
        }
        let said = count.describe();
        // A new search says it at once; later ranges only replace what it said.
        let unchanged = count.said.is_empty() || self.message.as_deref() == Some(&count.said);
        if unchanged {
            self.message = Some(said.clone());
        }
        count.said = said;
        self.count = Some(count);
        Ok(())
    }

    /// Whether a search count is still under way.
    pub fn counting(&self) -> bool {
        self.count.as_ref().is_some_and(|c| !c.done())
    }

    fn find_in_state(&mut self, needle: &str, forward: bool) -> anyhow::Result<()> {
        self.settle_state_cursor();
        let path =
            tree::find(&self.view.state, needle, &self.state_path, forward).ok_or_else(|| {
                anyhow::anyhow!(
                    "nothing in the state at v{} matches {:?}",
                    self.cursor,
                    clean(needle)
                )
            })?;
        for container in tree::ancestors(&path) {
            self.folded.remove(&container);
        }
        self.state_path = path;
        self.focus = Pane::State;
        self.want = Load::Tree;
        Ok(())
    }

    // ---- playback ----------------------------------------------------------------------

    fn play_tick(&mut self) -> anyhow::Result<()> {
        if !self.playing {
            self.want = Load::Nothing;
            return Ok(());
        }
        let before = (self.selected, self.cursor);
        if let Err(err) = self.step(Way::Forward, 1) {
            self.playing = false;
            self.message = Some(format!("playback stopped: {err:#}"));
            return Ok(());
        }
        if (self.selected, self.cursor) == before {
            self.playing = false;
            self.message = Some("playback stopped at the newest event".into());
            return Ok(());
        }
        // The stop condition is checked on the state there once it is loaded.
        self.until_due = self.until.is_some();
        Ok(())
    }

    /// After a play tick: stops playback if the stop condition holds on the state shown.
    pub(super) fn check_until(&mut self) -> anyhow::Result<()> {
        let Some((text, program)) = self.until.clone().filter(|_| self.playing) else {
            return Ok(());
        };
        let hit = program
            .run(&self.view.state, "(the stop condition)", self.cursor)
            .map_err(|e| anyhow::anyhow!("the stop condition {:?}: {e}", clean(&text)))?;
        if !matches!(hit, Value::Null | Value::Bool(false)) {
            self.playing = false;
            self.message = Some(format!(
                "playback stopped at v{}: {} holds",
                self.cursor,
                clean(&text)
            ));
        }
        Ok(())
    }

    // ---- the state tree ----------------------------------------------------------------

    fn move_state(&mut self, by: i64) -> anyhow::Result<()> {
        self.settle_state_cursor();
        let tree = &self.view.tree;
        if tree.total == 0 {
            return Ok(());
        }
        let last = i64::try_from(tree.total - 1).unwrap_or(i64::MAX);
        let at = i64::try_from(tree.cursor)
            .unwrap_or(0)
            .saturating_add(by)
            .clamp(0, last);
        let at = usize::try_from(at).unwrap_or(0);
        self.state_path = tree::window(&self.view.state, &self.folded, at, 1)
            .pop()
            .map(|r| r.path)
            .unwrap_or_default();
        // A closing row has its container's path: land on the row itself, not its opening.
        self.state_row = Some(at);
        self.want = Load::Tree;
        self.focus = Pane::State;
        Ok(())
    }

    fn fold(&mut self, action: Action) -> anyhow::Result<()> {
        self.settle_state_cursor();
        let path = self.state_path.clone();
        let is_container = self
            .view
            .state
            .pointer(&path)
            .is_some_and(tree::non_empty_container);
        let folded = self.folded.contains(&path);
        match action {
            Action::Unfold if is_container => {
                self.folded.remove(&path);
            }
            Action::ToggleFold if is_container && folded => {
                self.folded.remove(&path);
            }
            Action::Fold | Action::ToggleFold if is_container && !folded && !path.is_empty() => {
                self.folded.insert(path);
            }
            Action::Fold | Action::ToggleFold => {
                // On a value, or on a folded container: fold the container it is in.
                if let Some(parent) = tree::ancestors(&path).pop().filter(|p| !p.is_empty()) {
                    self.folded.insert(parent.clone());
                    self.state_path = parent;
                }
            }
            _ => {}
        }
        self.want = Load::Tree;
        self.focus = Pane::State;
        Ok(())
    }
}

/// Whether an action depends only on the model, not on what is shown, so that a burst of
/// them can be applied before loading once: the moves a held key repeats, the toggles, and
/// typing. Anything else (and any action added later) loads what is shown first.
fn batches(action: Action) -> bool {
    matches!(
        action,
        Action::StepForward
            | Action::StepBack
            | Action::PageForward
            | Action::PageBack
            | Action::First
            | Action::Last
            | Action::NextSnapshot
            | Action::PrevSnapshot
            | Action::NextStream
            | Action::PrevStream
            | Action::ToggleMark
            | Action::JumpToMark
            | Action::ToggleDiffText
            | Action::ToggleZoom
            | Action::ToggleScope
            | Action::ToggleTimes
            | Action::ToggleHelp
            | Action::CloseOverlay
            | Action::Quit
            | Action::Resize(..)
            | Action::PromptGoTo
            | Action::PromptSearch
            | Action::PromptStateSearch
            | Action::PromptFilter
            | Action::PromptStreams
            | Action::PromptUntil
            | Action::PromptSnapshot
            | Action::PromptEdit(_)
            | Action::PromptHistory(_)
            | Action::PromptCancel
            | Action::TogglePlay
            | Action::Faster
            | Action::Slower
            | Action::PlayTick
            | Action::Refresh
            | Action::Poll
            | Action::ListDown
            | Action::ListUp
            | Action::ListToggle
    )
}

/// A duration in µs as the event list shows relative times: `+1:02:03`, `+2d 03:04:05`
/// (the event pane shows the exact time).
pub fn relative(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "+" };
    let s = us.unsigned_abs() / 1_000_000;
    let (d, h, m, s) = (s / 86_400, (s / 3_600) % 24, (s / 60) % 60, s % 60);
    if d > 0 {
        format!("{sign}{d}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{sign}{h}:{m:02}:{s:02}")
    }
}

fn clean(text: &str) -> String {
    crate::text::clean(text, 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_as_hours_or_days() {
        assert_eq!(relative(0), "+0:00:00");
        assert_eq!(relative(3_723_456_000), "+1:02:03");
        assert_eq!(relative(2 * 86_400_000_000 + 3_600_000_000), "+2d 01:00:00");
        assert_eq!(relative(-1_500_000), "-0:00:01");
    }
}
