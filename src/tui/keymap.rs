//! Keys as data: one table of bindings, from which the help overlay is generated.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;
use super::app::App;

/// One key binding.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The key.
    pub key: KeyCode,
    /// How it is written in the help (and in `--keys` scripts).
    pub name: &'static str,
    /// What it does.
    pub action: Action,
    /// The help line.
    pub help: &'static str,
}

const fn bind(key: KeyCode, name: &'static str, action: Action, help: &'static str) -> Binding {
    Binding {
        key,
        name,
        action,
        help,
    }
}

/// Every binding, in help order.
pub const BINDINGS: &[Binding] = &[
    bind(KeyCode::Char('j'), "j", Action::StepForward, "next event"),
    bind(KeyCode::Down, "<Down>", Action::StepForward, "next event"),
    bind(KeyCode::Char('k'), "k", Action::StepBack, "previous event"),
    bind(KeyCode::Up, "<Up>", Action::StepBack, "previous event"),
    bind(
        KeyCode::PageDown,
        "<PgDn>",
        Action::PageForward,
        "a page forward",
    ),
    bind(KeyCode::PageUp, "<PgUp>", Action::PageBack, "a page back"),
    bind(
        KeyCode::Char('g'),
        "g",
        Action::First,
        "to version 0 (the empty state)",
    ),
    bind(KeyCode::Home, "<Home>", Action::First, "to version 0"),
    bind(KeyCode::Char('G'), "G", Action::Last, "to the newest event"),
    bind(KeyCode::End, "<End>", Action::Last, "to the newest event"),
    bind(
        KeyCode::Char(']'),
        "]",
        Action::NextSnapshot,
        "next snapshot",
    ),
    bind(
        KeyCode::Char('['),
        "[",
        Action::PrevSnapshot,
        "previous snapshot",
    ),
    bind(KeyCode::Char('J'), "J", Action::NextStream, "next stream"),
    bind(KeyCode::Tab, "<Tab>", Action::NextStream, "next stream"),
    bind(
        KeyCode::Char('K'),
        "K",
        Action::PrevStream,
        "previous stream",
    ),
    bind(
        KeyCode::Char('m'),
        "m",
        Action::ToggleMark,
        "set or clear the mark (diff against it)",
    ),
    bind(
        KeyCode::Char('\''),
        "'",
        Action::JumpToMark,
        "jump to the mark",
    ),
    bind(
        KeyCode::Char('d'),
        "d",
        Action::ToggleDiffText,
        "diff: paths or unified text",
    ),
    bind(
        KeyCode::Char('s'),
        "s",
        Action::TakeSnapshot,
        "take a snapshot at the cursor",
    ),
    bind(KeyCode::Char('?'), "?", Action::ToggleHelp, "help"),
    bind(KeyCode::Char('q'), "q", Action::Quit, "quit"),
    bind(
        KeyCode::Esc,
        "<Esc>",
        Action::Quit,
        "quit (or close the help)",
    ),
];

/// The action a key asks for, if any. With the help open, any key closes it.
pub fn action_for(app: &App, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if app.overlay.is_some() {
        return Some(Action::ToggleHelp);
    }
    BINDINGS
        .iter()
        .find(|b| b.key == key.code)
        .map(|b| b.action)
}

/// Parses a key script such as `j j m <PgDn> G` into actions; unknown keys are an error.
pub fn script(text: &str) -> Result<Vec<Action>, String> {
    text.split_whitespace()
        .map(|word| {
            BINDINGS
                .iter()
                .find(|b| b.name == word)
                .map(|b| b.action)
                .ok_or_else(|| {
                    format!("unknown key {word:?} in the key script (keys: see ? in the debugger)")
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_keys_as_the_help_does() {
        assert_eq!(
            script("j <PgDn> G m").unwrap(),
            vec![
                Action::StepForward,
                Action::PageForward,
                Action::Last,
                Action::ToggleMark
            ]
        );
        assert!(script("j x").unwrap_err().contains("\"x\""));
    }

    #[test]
    fn every_key_is_bound_once() {
        let mut keys: Vec<String> = BINDINGS.iter().map(|b| format!("{:?}", b.key)).collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }
}
