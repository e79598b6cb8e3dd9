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
        KeyCode::Char(':'),
        ":",
        Action::PromptGoTo,
        "go to a version or an RFC 3339 time",
    ),
    bind(
        KeyCode::Char('/'),
        "/",
        Action::PromptSearch,
        "search event types and data",
    ),
    bind(KeyCode::Char('n'), "n", Action::SearchNext, "next match"),
    bind(
        KeyCode::Char('N'),
        "N",
        Action::SearchPrev,
        "previous match",
    ),
    bind(
        KeyCode::Char('f'),
        "f",
        Action::ToggleFollow,
        "follow live appends (cursor on the newest)",
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

/// The action a key asks for, if any. With the help open, any key closes it; with the
/// prompt open, keys type into it (Enter carries it out, Esc closes it).
pub fn action_for(app: &App, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if app.overlay.is_some() {
        return Some(Action::ToggleHelp);
    }
    if app.prompt.is_some() {
        return match key.code {
            KeyCode::Enter => Some(Action::PromptSubmit),
            KeyCode::Esc => Some(Action::PromptCancel),
            KeyCode::Backspace => Some(Action::PromptBackspace),
            KeyCode::Char(c) => Some(Action::PromptChar(c)),
            _ => None,
        };
    }
    BINDINGS
        .iter()
        .find(|b| b.key == key.code)
        .map(|b| b.action)
}

/// Parses a key script such as `j j m <PgDn> :120 <Enter>` into key presses: names as in
/// the help (`<Enter>`, `<Esc>`, `<Backspace>` too), and any other word typed character by
/// character.
pub fn script(text: &str) -> Result<Vec<KeyEvent>, String> {
    let extra = [
        ("<Enter>", KeyCode::Enter),
        ("<Backspace>", KeyCode::Backspace),
    ];
    let mut keys = Vec::new();
    for word in text.split_whitespace() {
        if let Some(code) = BINDINGS
            .iter()
            .find(|b| b.name == word)
            .map(|b| b.key)
            .or_else(|| extra.iter().find(|e| e.0 == word).map(|e| e.1))
        {
            keys.push(KeyEvent::from(code));
        } else if word.len() > 2 && word.starts_with('<') && word.ends_with('>') {
            return Err(format!(
                "unknown key {word:?} in the key script (names as in the help: <Down>, <Enter> …)"
            ));
        } else {
            keys.extend(word.chars().map(|c| KeyEvent::from(KeyCode::Char(c))));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_keys_as_the_help_does_and_type_other_words() {
        let codes: Vec<KeyCode> = script("j <PgDn> :12 <Enter>")
            .unwrap()
            .into_iter()
            .map(|k| k.code)
            .collect();
        assert_eq!(
            codes,
            vec![
                KeyCode::Char('j'),
                KeyCode::PageDown,
                KeyCode::Char(':'),
                KeyCode::Char('1'),
                KeyCode::Char('2'),
                KeyCode::Enter
            ]
        );
        assert!(script("j <Foo>").unwrap_err().contains("<Foo>"));
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
