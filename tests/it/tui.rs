//! The debugger without a terminal: frames as text (what `rewind render` prints), key
//! scripts against the model, and the styles that carry meaning in the buffer.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};
use rewind::tui::action::Action;
use rewind::tui::app::{App, Start};
use rewind::tui::{render_text, ui};
use rewind::{Engine, OpenMode, Store};
use serde_json::json;

use crate::support::append;

fn engine_with_orders() -> Engine {
    let mut engine = crate::support::engine();
    append(
        &mut engine,
        "order-1",
        json!({"status": "placed", "total": 30}),
    );
    append(&mut engine, "order-1", json!({"status": "paid"}));
    append(
        &mut engine,
        "order-1",
        json!({"status": "shipped", "carrier": "dhl"}),
    );
    append(&mut engine, "order-2", json!({"status": "placed"}));
    engine
}

fn app(start: Start) -> App {
    App::new(
        engine_with_orders(),
        &Start {
            height: 24,
            deterministic: true,
            ..start
        },
    )
    .unwrap()
}

#[test]
fn a_frame_shows_streams_state_and_the_last_change_and_is_deterministic() {
    let app = app(Start::default());
    let frame = render_text(&app, 80, 24).unwrap();
    assert_eq!(frame, render_text(&app, 80, 24).unwrap());
    assert!(frame.contains("│▶order-1"), "{frame}");
    assert!(frame.contains("State @ v3"), "{frame}");
    assert!(
        frame.contains("~ /status  \"paid\" → \"shipped\""),
        "{frame}"
    );
    assert!(frame.contains("+ /carrier  \"dhl\""), "{frame}");
    assert!(
        frame.lines().last().unwrap().starts_with(" v3/3 · "),
        "{frame}"
    );
    assert!(!frame.contains(" ms"), "no timing in a deterministic frame");
}

#[test]
fn a_terminal_too_small_gets_a_message() {
    let frame = render_text(&app(Start::default()), 40, 10).unwrap();
    assert!(
        frame.starts_with("too small: 40×10 (need 60×16)"),
        "{frame}"
    );
}

#[test]
fn stepping_marking_and_switching_streams_move_the_model() {
    let mut app = app(Start::default());
    app.update(Action::StepBack).unwrap();
    assert_eq!(app.cursor, 2);
    app.update(Action::ToggleMark).unwrap();
    app.update(Action::First).unwrap();
    assert_eq!((app.cursor, app.mark), (0, Some(2)));
    // The diff is now against the mark: everything at v2 is removed at v0.
    assert_eq!(app.view.diff_from, 2);
    assert_eq!(app.view.changes.len(), 2);
    app.update(Action::JumpToMark).unwrap();
    assert_eq!(app.cursor, 2);
    app.update(Action::NextStream).unwrap();
    assert_eq!(
        (app.stream().unwrap().name.as_str(), app.cursor, app.mark),
        ("order-2", 1, None)
    );
    app.dispatch(Action::NextSnapshot);
    assert!(
        app.message
            .as_deref()
            .unwrap_or("")
            .contains("no snapshot after"),
        "{:?}",
        app.message
    );
    app.update(Action::Quit).unwrap();
    assert!(app.quit);
}

#[test]
fn the_cursor_row_is_reversed_and_changed_lines_are_highlighted() {
    let app = app(Start::default());
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|frame| ui::render(frame, &app)).unwrap();
    let buffer = terminal.backend().buffer();
    let find = |needle: &str| -> (u16, u16) {
        for y in 0..24 {
            let row: String = (0..80)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect();
            if let Some(col) = row.find(needle) {
                return (u16::try_from(row[..col].chars().count()).unwrap(), y);
            }
        }
        panic!("{needle} not in the frame");
    };
    let (x, y) = find("▶      3");
    assert!(
        buffer[(x + 2, y)].modifier.contains(Modifier::REVERSED),
        "the event at the cursor"
    );
    let (x, y) = find("\"carrier\": \"dhl\"");
    assert_eq!(buffer[(x, y)].fg, Color::Yellow, "a line the event changed");
    let (x, y) = find("\"total\": 30");
    assert_ne!(buffer[(x, y)].fg, Color::Yellow, "a line it did not change");
}

#[test]
fn hostile_text_never_reaches_the_frame_raw() {
    let mut engine = crate::support::engine();
    append(
        &mut engine,
        "s",
        json!({"msg": "\u{1b}[2J\u{1b}]0;x\u{7} \u{202e}rlo \u{9b}31m"}),
    );
    let app = App::new(
        engine,
        &Start {
            height: 24,
            deterministic: true,
            ..Start::default()
        },
    )
    .unwrap();
    let frame = render_text(&app, 100, 24).unwrap();
    assert!(
        !frame
            .chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
        "{frame:?}"
    );
}

#[test]
fn a_read_only_database_disables_the_snapshot_key_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    append(
        &mut Engine::new(Store::open(&path, OpenMode::Create).unwrap()),
        "s",
        json!({"a": 1}),
    );
    let engine = Engine::new(Store::open(&path, OpenMode::ReadOnly).unwrap());
    let mut app = App::new(
        engine,
        &Start {
            height: 24,
            ..Start::default()
        },
    )
    .unwrap();
    app.dispatch(Action::TakeSnapshot);
    assert!(
        app.message.as_deref().unwrap_or("").contains("read-only"),
        "{:?}",
        app.message
    );
    assert!(!app.quit);
}

#[test]
fn go_to_and_search_through_the_prompt() {
    use rewind::tui::keymap::{action_for, script};
    let mut app = app(Start::default());
    let press = |app: &mut App, keys: &str| {
        for key in script(keys).unwrap() {
            if let Some(action) = action_for(app, key) {
                app.dispatch(action);
            }
        }
    };
    press(&mut app, ":1");
    assert_eq!(app.prompt.as_ref().map(|p| p.text.as_str()), Some("1"));
    assert!(
        render_text(&app, 80, 24)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .starts_with(" :1▏")
    );
    press(&mut app, "<Enter>");
    assert_eq!((app.cursor, app.prompt.is_none()), (1, true));
    press(&mut app, "/shipped <Enter>");
    assert_eq!(app.cursor, 3);
    press(&mut app, "/PAID <Enter>");
    assert!(
        app.message
            .as_deref()
            .unwrap_or("")
            .contains("no event after v3"),
        "{:?}",
        app.message
    );
    press(&mut app, "N");
    assert_eq!(app.cursor, 2, "LIKE is case-insensitive: v2 has \"paid\"");
    press(&mut app, ":nonsense <Enter>");
    assert!(
        app.message
            .as_deref()
            .unwrap_or("")
            .contains("neither a version nor"),
        "{:?}",
        app.message
    );
    press(&mut app, ":9 <Enter>");
    assert!(
        app.message
            .as_deref()
            .unwrap_or("")
            .contains("no version 9"),
        "{:?}",
        app.message
    );
    press(&mut app, ": <Esc>");
    assert!(
        app.prompt.is_none() && !app.quit,
        "Esc closes the prompt, it does not quit"
    );
}

#[test]
fn events_appended_by_another_process_appear_and_follow_keeps_the_cursor_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.db");
    let mut writer = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    append(&mut writer, "s", json!({"n": 1}));
    let reader = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    let mut app = App::new(
        reader,
        &Start {
            height: 24,
            ..Start::default()
        },
    )
    .unwrap();
    append(&mut writer, "s", json!({"n": 2}));
    app.update(Action::Refresh).unwrap();
    assert_eq!(
        (app.stream().unwrap().head, app.cursor),
        (2, 1),
        "new events appear; the cursor stays"
    );
    app.update(Action::ToggleFollow).unwrap();
    assert_eq!(app.cursor, 2);
    append(&mut writer, "s", json!({"n": 3}));
    append(&mut writer, "t", json!({"other": true}));
    app.update(Action::Refresh).unwrap();
    assert_eq!(
        (app.cursor, app.streams.len()),
        (3, 2),
        "following: on the newest event; the new stream is listed"
    );
    assert_eq!(
        app.view
            .lines
            .iter()
            .find(|l| l.path == "/n")
            .map(|l| l.text.as_str()),
        Some("\"n\": 3")
    );
    assert!(render_text(&app, 80, 24).unwrap().contains("· following"));
}

#[test]
fn a_snapshot_taken_from_the_debugger_shows_on_the_timeline_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.db");
    let mut writer = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    for i in 0..5 {
        append(&mut writer, "s", json!({ "i": i }));
    }
    let mut app = App::new(
        Engine::new(Store::open(&path, OpenMode::Existing).unwrap()),
        &Start {
            height: 24,
            ..Start::default()
        },
    )
    .unwrap();
    app.update(Action::StepBack).unwrap();
    assert!(app.view.snapshots.is_empty());
    app.update(Action::TakeSnapshot).unwrap();
    assert_eq!(
        app.view.snapshots,
        vec![(4, '◆')],
        "the head did not move, yet the new snapshot is listed"
    );
}
