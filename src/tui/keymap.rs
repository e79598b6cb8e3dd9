//! Keys as data: one table of bindings, from which the help overlay and the README's key
//! table are generated. A binding belongs to a scope: the focused pane's bindings come
//! before the global ones, and a list overlay has its own.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;
use super::app::{App, Overlay, Pane, ViewMove};

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everywhere (unless the focused pane binds the key).
    Global,
    /// With the focus on the state tree.
    State,
    /// In a list overlay (blame, snapshots, compaction, findings).
    List,
    /// In the viewer (`<Enter>` on a value or event, `D` on the diff).
    Viewer,
}

impl Scope {
    /// The help's heading for the scope.
    pub fn heading(self) -> &'static str {
        match self {
            Self::Global => "Everywhere",
            Self::State => "State tree (Tab focuses it)",
            Self::List => "Lists (blame, snapshots, compact, verify)",
            Self::Viewer => "Viewer (Enter on a value or event, D the diff)",
        }
    }
}

/// One key binding.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// Where it applies.
    pub scope: Scope,
    /// The key.
    pub key: KeyCode,
    /// How it is written in the help (and in `--keys` scripts).
    pub name: &'static str,
    /// What it does.
    pub action: Action,
    /// The help line.
    pub help: &'static str,
}

const fn bind(
    scope: Scope,
    key: KeyCode,
    name: &'static str,
    action: Action,
    help: &'static str,
) -> Binding {
    Binding {
        scope,
        key,
        name,
        action,
        help,
    }
}

const fn global(key: KeyCode, name: &'static str, action: Action, help: &'static str) -> Binding {
    bind(Scope::Global, key, name, action, help)
}

const fn state(key: KeyCode, name: &'static str, action: Action, help: &'static str) -> Binding {
    bind(Scope::State, key, name, action, help)
}

const fn list(key: KeyCode, name: &'static str, action: Action, help: &'static str) -> Binding {
    bind(Scope::List, key, name, action, help)
}

const fn viewer(key: KeyCode, name: &'static str, action: Action, help: &'static str) -> Binding {
    bind(Scope::Viewer, key, name, action, help)
}

use KeyCode::{Char, Down, End, Enter, Esc, Home, Left, PageDown, PageUp, Right, Tab, Up};

/// Every binding, in help order.
pub const BINDINGS: &[Binding] = &[
    global(Char('j'), "j", Action::StepForward, "next event"),
    global(Down, "<Down>", Action::StepForward, "next event"),
    global(Right, "<Right>", Action::StepForward, "next event"),
    global(Char('k'), "k", Action::StepBack, "previous event"),
    global(Up, "<Up>", Action::StepBack, "previous event"),
    global(Left, "<Left>", Action::StepBack, "previous event"),
    global(PageDown, "<PgDn>", Action::PageForward, "a page forward"),
    global(PageUp, "<PgUp>", Action::PageBack, "a page back"),
    global(Char('g'), "g", Action::First, "to the start (version 0)"),
    global(Home, "<Home>", Action::First, "to the start (version 0)"),
    global(Char('G'), "G", Action::Last, "to the newest event"),
    global(End, "<End>", Action::Last, "to the newest event"),
    global(Char(']'), "]", Action::NextSnapshot, "next snapshot"),
    global(Char('['), "[", Action::PrevSnapshot, "previous snapshot"),
    global(Char('J'), "J", Action::NextStream, "next stream"),
    global(Char('K'), "K", Action::PrevStream, "previous stream"),
    global(
        Char('a'),
        "a",
        Action::ToggleScope,
        "one stream by version / all streams by seq",
    ),
    global(
        Tab,
        "<Tab>",
        Action::ToggleFocus,
        "focus: events / state tree",
    ),
    global(
        Char(':'),
        ":",
        Action::PromptGoTo,
        "go to a version or an RFC 3339 time",
    ),
    global(
        Char('/'),
        "/",
        Action::PromptSearch,
        "search event types and data",
    ),
    global(Char('n'), "n", Action::SearchNext, "next match"),
    global(Char('N'), "N", Action::SearchPrev, "previous match"),
    global(
        Char('t'),
        "t",
        Action::PromptFilter,
        "filter events by type (!type hides it)",
    ),
    global(
        Char('F'),
        "F",
        Action::PromptStreams,
        "filter streams: text, glob, status:…, is:unfinished",
    ),
    global(
        Char('m'),
        "m",
        Action::ToggleMark,
        "set or clear the mark (diff against it)",
    ),
    global(Char('\''), "'", Action::JumpToMark, "jump to the mark"),
    global(
        Char('d'),
        "d",
        Action::ToggleDiffText,
        "diff: paths or unified text",
    ),
    global(
        Enter,
        "<Enter>",
        Action::OpenViewer,
        "show the event whole (scroll, wrap, $PAGER)",
    ),
    global(Char('D'), "D", Action::OpenDiff, "show the whole diff"),
    global(
        Char('v'),
        "v",
        Action::Page(false),
        "the event or value to $PAGER",
    ),
    global(
        Char('E'),
        "E",
        Action::Page(true),
        "the event or value to $EDITOR (a copy: edits are not kept)",
    ),
    global(
        Char('o'),
        "o",
        Action::ToggleZoom,
        "only the focused pane, maximised / all panes",
    ),
    global(
        Char('T'),
        "T",
        Action::ToggleTimes,
        "times: relative / absolute UTC",
    ),
    global(Char('p'), "p", Action::TogglePlay, "play / pause"),
    global(Char('+'), "+", Action::Faster, "play faster"),
    global(Char('-'), "-", Action::Slower, "play slower"),
    global(
        Char('u'),
        "u",
        Action::PromptUntil,
        "play until a jq condition holds",
    ),
    global(
        Char('f'),
        "f",
        Action::ToggleFollow,
        "follow appends; moving back stops it",
    ),
    global(
        Char('b'),
        "b",
        Action::Blame,
        "blame: events that changed the value under the state cursor",
    ),
    global(
        Char('y'),
        "y",
        Action::Copy,
        "copy the event or value (OSC 52)",
    ),
    global(
        Char('Y'),
        "Y",
        Action::PromptWrite,
        "write the event or value to a new file",
    ),
    global(
        Char('s'),
        "s",
        Action::PromptSnapshot,
        "take a snapshot at the cursor (optional label)",
    ),
    global(Char('S'), "S", Action::ListSnapshots, "list the snapshots"),
    global(
        Char('C'),
        "C",
        Action::Compact,
        "compact snapshots (plan, then confirm)",
    ),
    global(
        Char('V'),
        "V",
        Action::Verify,
        "verify snapshots (then jump to findings)",
    ),
    global(Char('?'), "?", Action::ToggleHelp, "help"),
    global(Char('q'), "q", Action::Quit, "quit"),
    state(Char('j'), "j", Action::StateDown, "next row"),
    state(Down, "<Down>", Action::StateDown, "next row"),
    state(Char('k'), "k", Action::StateUp, "previous row"),
    state(Up, "<Up>", Action::StateUp, "previous row"),
    state(PageDown, "<PgDn>", Action::StatePageDown, "a page down"),
    state(PageUp, "<PgUp>", Action::StatePageUp, "a page up"),
    state(Home, "<Home>", Action::StateTop, "first row"),
    state(End, "<End>", Action::StateBottom, "last row"),
    state(
        Enter,
        "<Enter>",
        Action::OpenViewer,
        "show the value whole (scroll, wrap, $PAGER)",
    ),
    state(Char(' '), "<Space>", Action::ToggleFold, "fold / unfold"),
    state(Char('h'), "h", Action::Fold, "fold (or fold the parent)"),
    state(Char('l'), "l", Action::Unfold, "unfold"),
    state(Char('z'), "z", Action::FoldAll, "fold all below the top"),
    state(Char('Z'), "Z", Action::UnfoldAll, "unfold all"),
    state(
        Char('/'),
        "/",
        Action::PromptStateSearch,
        "search keys and values in the state",
    ),
    state(Esc, "<Esc>", Action::ToggleFocus, "back to the events"),
    list(Char('j'), "j", Action::ListDown, "next row"),
    list(Down, "<Down>", Action::ListDown, "next row"),
    list(Char('k'), "k", Action::ListUp, "previous row"),
    list(Up, "<Up>", Action::ListUp, "previous row"),
    list(
        Enter,
        "<Enter>",
        Action::ListActivate,
        "jump there (compaction: drop what is selected)",
    ),
    list(
        Char(' '),
        "<Space>",
        Action::ListToggle,
        "compaction: select or leave out the row",
    ),
    list(
        Char('x'),
        "x",
        Action::ListDrop,
        "snapshots: drop the snapshot (press twice)",
    ),
    list(Esc, "<Esc>", Action::CloseOverlay, "close"),
    list(Char('q'), "q", Action::CloseOverlay, "close"),
    viewer(Char('j'), "j", Action::View(ViewMove::Down), "a line down"),
    viewer(Down, "<Down>", Action::View(ViewMove::Down), "a line down"),
    viewer(Char('k'), "k", Action::View(ViewMove::Up), "a line up"),
    viewer(Up, "<Up>", Action::View(ViewMove::Up), "a line up"),
    viewer(
        PageDown,
        "<PgDn>",
        Action::View(ViewMove::PageDown),
        "a page down",
    ),
    viewer(
        Char(' '),
        "<Space>",
        Action::View(ViewMove::PageDown),
        "a page down",
    ),
    viewer(
        PageUp,
        "<PgUp>",
        Action::View(ViewMove::PageUp),
        "a page up",
    ),
    viewer(Char('g'), "g", Action::View(ViewMove::Top), "to the top"),
    viewer(Home, "<Home>", Action::View(ViewMove::Top), "to the top"),
    viewer(Char('G'), "G", Action::View(ViewMove::Bottom), "to the end"),
    viewer(End, "<End>", Action::View(ViewMove::Bottom), "to the end"),
    viewer(Char('h'), "h", Action::View(ViewMove::Left), "scroll left"),
    viewer(Left, "<Left>", Action::View(ViewMove::Left), "scroll left"),
    viewer(
        Char('l'),
        "l",
        Action::View(ViewMove::Right),
        "scroll right",
    ),
    viewer(
        Right,
        "<Right>",
        Action::View(ViewMove::Right),
        "scroll right",
    ),
    viewer(
        Char('w'),
        "w",
        Action::View(ViewMove::Wrap),
        "wrap long lines / scroll them",
    ),
    viewer(Char('v'), "v", Action::Page(false), "to $PAGER"),
    viewer(
        Char('E'),
        "E",
        Action::Page(true),
        "to $EDITOR (a copy: edits are not kept)",
    ),
    viewer(Esc, "<Esc>", Action::CloseOverlay, "close"),
    viewer(Char('q'), "q", Action::CloseOverlay, "close"),
];

/// Keys a script can name besides the table's (the prompt's).
const EXTRA: &[(&str, KeyCode)] = &[
    ("<Enter>", Enter),
    ("<Backspace>", KeyCode::Backspace),
    ("<Delete>", KeyCode::Delete),
];

fn lookup(scope: Scope, code: KeyCode) -> Option<Action> {
    BINDINGS
        .iter()
        .find(|b| b.scope == scope && b.key == code)
        .map(|b| b.action)
}

/// The action a key asks for, if any. Ctrl-C quits anywhere. With the help open, any key
/// closes it; otherwise a letter held with Ctrl or Alt is not that letter and does nothing
/// (Ctrl-F is not `f`). In a list, the list's keys apply; with the prompt open, keys type
/// into it (Enter carries it out, Esc closes it); otherwise the focused pane's keys, then
/// the global ones. Esc closes or backs out; in the main view it does nothing (`q` quits).
pub fn action_for(app: &App, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == Char('c') {
        return Some(Action::Quit);
    }
    match &app.overlay {
        Some(Overlay::Help(_)) => {
            return Some(match key.code {
                Char('j') | Down => Action::ListDown,
                Char('k') | Up => Action::ListUp,
                _ => Action::ToggleHelp,
            });
        }
        Some(Overlay::List(_)) if held(key) => return None,
        Some(Overlay::List(_)) => return lookup(Scope::List, key.code),
        Some(Overlay::Viewer(_)) if held(key) => return None,
        Some(Overlay::Viewer(_)) => return lookup(Scope::Viewer, key.code),
        None => {}
    }
    if app.prompt.is_some() {
        // A shell line's keys (Ctrl-A/E/U/W/K, arrows, Home/End), as tui-input reads them;
        // Up and Down go through the prompt's history.
        return match key.code {
            Enter => Some(Action::PromptSubmit),
            Esc => Some(Action::PromptCancel),
            Up => Some(Action::PromptHistory(true)),
            Down => Some(Action::PromptHistory(false)),
            _ => tui_input::backend::crossterm::to_input_request(
                &ratatui::crossterm::event::Event::Key(key),
            )
            .map(Action::PromptEdit),
        };
    }
    if held(key) {
        return None;
    }
    let focused = match app.focus {
        Pane::State => lookup(Scope::State, key.code),
        Pane::Events => None,
    };
    focused.or_else(|| lookup(Scope::Global, key.code))
}

/// Whether a key comes with Ctrl or Alt held (a terminal sends Esc then a key, typed
/// quickly, as Alt with the key).
fn held(key: KeyEvent) -> bool {
    key.modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
}

/// Parses a key script such as `j j m <PgDn> :120 <Enter>` into key presses: names as in
/// the help (`<Enter>`, `<Esc>`, `<Space>`, `<Backspace>` …), a letter with Ctrl as
/// `<C-a>`, and any other word typed character by character.
pub fn script(text: &str) -> Result<Vec<KeyEvent>, String> {
    let mut keys = Vec::new();
    for word in text.split_whitespace() {
        let ctrl = word
            .strip_prefix("<C-")
            .and_then(|w| w.strip_suffix('>'))
            .and_then(|w| {
                let mut chars = w.chars();
                chars.next().filter(|_| chars.next().is_none())
            });
        if let Some(letter) = ctrl {
            keys.push(KeyEvent::new(Char(letter), KeyModifiers::CONTROL));
        } else if let Some(code) = BINDINGS
            .iter()
            .find(|b| b.name == word)
            .map(|b| b.key)
            .or_else(|| EXTRA.iter().find(|e| e.0 == word).map(|e| e.1))
        {
            keys.push(KeyEvent::from(code));
        } else if word.len() > 2 && word.starts_with('<') && word.ends_with('>') {
            return Err(format!(
                "unknown key {word:?} in the key script (names as in the help: <Down>, <Enter> …)"
            ));
        } else {
            keys.extend(word.chars().map(|c| KeyEvent::from(Char(c))));
        }
    }
    Ok(keys)
}

/// How the help writes a key: arrows as arrows, other names without brackets.
pub fn short_name(name: &str) -> &str {
    match name {
        "<Down>" => "↓",
        "<Up>" => "↑",
        "<Left>" => "←",
        "<Right>" => "→",
        other => other.trim_start_matches('<').trim_end_matches('>'),
    }
}

/// The help as (scope, keys, help) lines: one line per action and scope, its keys joined.
pub fn help_lines() -> Vec<(Scope, String, &'static str)> {
    let mut lines: Vec<(Scope, String, &'static str, Action)> = Vec::new();
    for b in BINDINGS {
        match lines
            .iter_mut()
            .find(|l| l.0 == b.scope && l.3 == b.action && l.2 == b.help)
        {
            Some(line) => {
                line.1.push(' ');
                line.1.push_str(short_name(b.name));
            }
            None => lines.push((b.scope, short_name(b.name).to_string(), b.help, b.action)),
        }
    }
    lines.into_iter().map(|(s, k, h, _)| (s, k, h)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_keys_as_the_help_does_and_type_other_words() {
        let codes: Vec<KeyCode> = script("j <PgDn> :12 <Enter> <Space>")
            .unwrap()
            .into_iter()
            .map(|k| k.code)
            .collect();
        assert_eq!(
            codes,
            vec![
                Char('j'),
                PageDown,
                Char(':'),
                Char('1'),
                Char('2'),
                Enter,
                Char(' ')
            ]
        );
        assert!(script("j <Foo>").unwrap_err().contains("<Foo>"));
    }

    #[test]
    fn every_key_is_bound_once_in_its_scope() {
        let mut keys: Vec<String> = BINDINGS
            .iter()
            .map(|b| format!("{:?} {:?}", b.scope, b.key))
            .collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }

    #[test]
    fn help_joins_the_keys_of_one_action() {
        let lines = help_lines();
        assert!(
            lines
                .iter()
                .any(|l| l.0 == Scope::Global && l.1 == "j ↓ →" && l.2 == "next event")
        );
        assert!(lines.len() < BINDINGS.len());
    }
}
