//! Everything the user can ask the debugger for, as imperative verbs.

/// One request to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// One event forward (of the filtered events, when a filter is set).
    StepForward,
    /// One event back.
    StepBack,
    /// A page of events forward.
    PageForward,
    /// A page of events back.
    PageBack,
    /// To the start: version 0 (the empty state) of the stream, or the first event of all.
    First,
    /// To the newest event.
    Last,
    /// To the next snapshot's version.
    NextSnapshot,
    /// To the previous snapshot's version.
    PrevSnapshot,
    /// To the next stream in the list.
    NextStream,
    /// To the previous stream in the list.
    PrevStream,
    /// Move the focus between the event list and the state tree.
    ToggleFocus,
    /// Set the mark at the cursor (or clear it there); the diff is then against the mark.
    ToggleMark,
    /// Move the cursor to the mark.
    JumpToMark,
    /// Switch the diff between changed paths and a unified text diff.
    ToggleDiffText,
    /// Maximise the focused pane (events or state), or restore the layout.
    ToggleZoom,
    /// Switch between one stream by version and all streams by seq.
    ToggleScope,
    /// Switch event times between relative to the first event and absolute UTC.
    ToggleTimes,
    /// Ask for a label, then take a snapshot at the cursor.
    PromptSnapshot,
    /// Show or hide the key help.
    ToggleHelp,
    /// Close the overlay on top.
    CloseOverlay,
    /// Leave.
    Quit,
    /// The terminal changed size.
    Resize(u16, u16),
    /// Open the prompt to go to a version or a time.
    PromptGoTo,
    /// Open the prompt to search events by type or content.
    PromptSearch,
    /// Open the prompt to search keys and values inside the state.
    PromptStateSearch,
    /// Open the prompt to show only events whose type contains a text (`!text`: without).
    PromptFilter,
    /// Open the prompt to choose which streams the list shows.
    PromptStreams,
    /// Open the prompt for a file to write the event or value to.
    PromptWrite,
    /// Open the prompt for a jq condition on the state that stops playback.
    PromptUntil,
    /// Edit the open prompt: type, delete, move (as a shell line does).
    PromptEdit(tui_input::InputRequest),
    /// Recall an earlier (true) or later entry of the prompt's history.
    PromptHistory(bool),
    /// Carry out what the prompt says.
    PromptSubmit,
    /// Close the prompt without doing anything.
    PromptCancel,
    /// The next match of the last search (events or state).
    SearchNext,
    /// The previous match of the last search.
    SearchPrev,
    /// Follow live appends: keep the cursor on the newest event.
    ToggleFollow,
    /// Look for events other processes appended (sent while idle).
    Refresh,
    /// Start or pause playback.
    TogglePlay,
    /// Play faster.
    Faster,
    /// Play slower.
    Slower,
    /// One step of playback (sent by the loop at the playing speed).
    PlayTick,
    /// Move the state cursor one row down.
    StateDown,
    /// Move the state cursor one row up.
    StateUp,
    /// Move the state cursor a page down.
    StatePageDown,
    /// Move the state cursor a page up.
    StatePageUp,
    /// Move the state cursor to the first row.
    StateTop,
    /// Move the state cursor to the last row.
    StateBottom,
    /// Fold or unfold the container under the state cursor.
    ToggleFold,
    /// Fold the container under the state cursor (or the one it is in).
    Fold,
    /// Unfold the container under the state cursor.
    Unfold,
    /// Fold every container below the top level.
    FoldAll,
    /// Unfold everything.
    UnfoldAll,
    /// Copy the value under the cursor to the clipboard (OSC 52).
    Copy,
    /// List the events that changed the value under the state cursor.
    Blame,
    /// List the stream's snapshots.
    ListSnapshots,
    /// Plan a compaction of the stream's snapshots (a dry run), to confirm.
    Compact,
    /// Verify the database's snapshots in the background, then list the findings.
    Verify,
    /// Select the next row of a list overlay.
    ListDown,
    /// Select the previous row of a list overlay.
    ListUp,
    /// Carry out the selected row of a list overlay (jump, or confirm).
    ListActivate,
    /// Show the value under the state cursor, or the event, whole in the viewer.
    OpenViewer,
    /// Show the whole diff in the viewer.
    OpenDiff,
    /// Scroll the viewer.
    View(super::app::ViewMove),
    /// Hand what the viewer (or `y`) shows to `$PAGER`, or to `$EDITOR` (true).
    Page(bool),
    /// Select or leave out the list row (a compaction's).
    ListToggle,
    /// Drop the snapshot on the list row (pressed twice).
    ListDrop,
    /// See whether a background job finished (sent by the loop while one runs).
    Poll,
    /// A mouse click at a cell.
    Click(u16, u16),
    /// A mouse drag over a cell.
    Drag(u16, u16),
    /// The mouse wheel down over a cell.
    ScrollDown(u16, u16),
    /// The mouse wheel up over a cell.
    ScrollUp(u16, u16),
}
