//! Everything the user can ask the debugger for, as imperative verbs.

/// One request to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// One event forward.
    StepForward,
    /// One event back.
    StepBack,
    /// A page of events forward.
    PageForward,
    /// A page of events back.
    PageBack,
    /// To version 0, the empty state.
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
    /// Set the mark at the cursor (or clear it there); the diff is then against the mark.
    ToggleMark,
    /// Move the cursor to the mark.
    JumpToMark,
    /// Switch the diff between changed paths and a unified text diff.
    ToggleDiffText,
    /// Take a snapshot at the cursor.
    TakeSnapshot,
    /// Show or hide the key help.
    ToggleHelp,
    /// Leave.
    Quit,
    /// The terminal changed size.
    Resize(u16, u16),
    /// Open the prompt to go to a version or a time.
    PromptGoTo,
    /// Open the prompt to search events by type or content.
    PromptSearch,
    /// Type a character into the open prompt.
    PromptChar(char),
    /// Delete the last character of the prompt.
    PromptBackspace,
    /// Carry out what the prompt says.
    PromptSubmit,
    /// Close the prompt without doing anything.
    PromptCancel,
    /// The next event matching the last search.
    SearchNext,
    /// The previous event matching the last search.
    SearchPrev,
    /// Follow live appends: keep the cursor on the newest event.
    ToggleFollow,
    /// Look for events other processes appended (sent while idle).
    Refresh,
}
