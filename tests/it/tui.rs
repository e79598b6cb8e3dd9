//! The debugger without a terminal: whole frames as text (insta snapshots at 80x24, 120x40
//! and a too-small size), key scripts against the model, and the styles that carry meaning
//! in the buffer. Fixtures have fixed event times, so frames are the same on every run.

use std::path::Path;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use rewind::tui::action::Action;
use rewind::tui::app::{App, Effect, Pane, Scope, Start};
use rewind::tui::keymap::{action_for, script};
use rewind::tui::{render_text, ui};
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::{Value, json};

use crate::support::{append, ev};

/// 2026-03-01T12:00:00Z, in µs.
const T0: i64 = 1_772_366_400_000_000;

fn at(engine: &mut Engine, stream: &str, kind: &str, data: Value, secs: i64) {
    let mut event = ev(stream, kind, data);
    event.time = Some(T0 + secs * 1_000_000);
    engine
        .append(event, rewind::engine::AppendOptions::default())
        .unwrap();
}

/// Two orders and an agent run that stopped mid-task, in a file (verify needs one), with a
/// labelled snapshot of order-1 at v2.
fn orders(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("orders.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    at(
        &mut engine,
        "order-1",
        "Placed",
        json!({"status": "placed", "total": 30, "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]}),
        0,
    );
    at(
        &mut engine,
        "order-2",
        "Placed",
        json!({"status": "placed", "total": 12}),
        30,
    );
    at(
        &mut engine,
        "order-1",
        "Paid",
        json!({"status": "paid"}),
        60,
    );
    at(
        &mut engine,
        "order-1",
        "Shipped",
        json!({"status": "shipped", "carrier": "dhl"}),
        3_600,
    );
    at(
        &mut engine,
        "agent-1",
        "Checkpoint",
        json!({"status": "running", "pending_tool_call": {"tool": "grep"}}),
        7_200,
    );
    engine
        .take_snapshot("order-1", Target::Version(2), "manual", Some("before ship"))
        .unwrap();
    path
}

fn open(path: &Path, start: Start) -> App {
    let engine = Engine::new(Store::open(path, OpenMode::Existing).unwrap());
    App::new(
        engine,
        &Start {
            width: 80,
            height: 24,
            deterministic: true,
            ..start
        },
    )
    .unwrap()
}

/// The debugger over an engine (a size of 0 takes the default).
fn over(engine: Engine, (width, height): (u16, u16)) -> App {
    App::new(
        engine,
        &Start {
            width,
            height,
            deterministic: true,
            ..Start::default()
        },
    )
    .unwrap()
}

fn order_1(path: &Path) -> App {
    open(
        path,
        Start {
            stream: Some("order-1".into()),
            ..Start::default()
        },
    )
}

/// Presses keys as `rewind render --keys` does.
fn press(app: &mut App, keys: &str) {
    for key in script(keys).unwrap() {
        if let Some(action) = action_for(app, key) {
            app.dispatch(action);
        }
    }
}

/// Applies an action and loads what it shows, failing the test on an error.
fn act(app: &mut App, action: Action) {
    app.update(action).unwrap();
    app.sync().unwrap();
}

fn message(app: &App) -> &str {
    app.message.as_deref().unwrap_or("")
}

/// Fails unless the status message says `part`.
#[track_caller]
fn assert_message(app: &App, part: &str) {
    assert!(message(app).contains(part), "{}", message(app));
}

fn frame(app: &App, (width, height): (u16, u16)) -> String {
    render_text(app, width, height).unwrap()
}

fn buffer(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::render(frame, app)).unwrap();
    terminal.backend().buffer().clone()
}

/// Where `needle` starts in the buffer.
fn find(buffer: &Buffer, needle: &str) -> (u16, u16) {
    let area = buffer.area;
    for y in 0..area.height {
        let row: String = (0..area.width)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        if let Some(col) = row.find(needle) {
            return (u16::try_from(row[..col].chars().count()).unwrap(), y);
        }
    }
    panic!("{needle:?} not in the frame");
}

// ---- whole frames ------------------------------------------------------------------------

#[test]
fn frames_of_the_main_view_at_two_sizes_and_too_small() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let app = order_1(&path);
    assert_eq!(
        frame(&app, (80, 24)),
        frame(&app, (80, 24)),
        "deterministic"
    );
    insta::assert_snapshot!("main_80x24", frame(&app, (80, 24)));
    let mut wide = order_1(&path);
    act(&mut wide, Action::Resize(120, 40));
    insta::assert_snapshot!("main_120x40", frame(&wide, (120, 40)));
    insta::assert_snapshot!("too_small_40x10", frame(&app, (40, 10)));
    assert!(
        !frame(&app, (80, 24)).contains(" ms"),
        "no timing in a render"
    );
}

#[test]
fn frames_of_every_overlay_and_dialog() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let cases: &[(&str, &str, (u16, u16))] = &[
        ("help_80x24", "?", (80, 24)),
        ("help_120x40", "?", (120, 40)),
        (
            "help_scrolled_80x24",
            "? j j j j j j j j j j j j j j j j j j j j",
            (80, 24),
        ),
        ("blame_80x24", "<Tab> / status <Enter> b", (80, 24)),
        ("snapshots_80x24", "S", (80, 24)),
        ("compact_80x24", "C", (80, 24)),
        ("verify_80x24", "V", (80, 24)),
        ("label_prompt_80x24", "s before-refund", (80, 24)),
        ("filter_prompt_80x24", "t Pa", (80, 24)),
        ("all_streams_120x40", "a k", (120, 40)),
        ("state_folded_80x24", "<Tab> z", (80, 24)),
        ("text_diff_mark_120x40", "g j m G d", (120, 40)),
        ("absolute_times_120x40", "T", (120, 40)),
    ];
    for (name, keys, size) in cases {
        let mut app = order_1(&path);
        act(&mut app, Action::Resize(size.0, size.1));
        press(&mut app, keys);
        insta::assert_snapshot!(*name, frame(&app, *size));
    }
}

// ---- stepping, marking, streams ----------------------------------------------------------

#[test]
fn stepping_marking_and_switching_streams_move_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    act(&mut app, Action::StepBack);
    assert_eq!(app.cursor, 2);
    act(&mut app, Action::ToggleMark);
    act(&mut app, Action::First);
    assert_eq!((app.cursor, app.mark), (0, Some(2)));
    // The diff is now against the mark: everything at v2 is removed at v0.
    assert_eq!(app.view.diff_from, 2);
    assert_eq!(app.view.changes.len(), 3);
    act(&mut app, Action::JumpToMark);
    assert_eq!(app.cursor, 2);
    act(&mut app, Action::NextStream);
    assert_eq!(
        (app.stream().unwrap().name.as_str(), app.cursor, app.mark),
        ("order-2", 1, None)
    );
    app.dispatch(Action::NextSnapshot);
    assert_message(&app, "no snapshot after");
    act(&mut app, Action::Quit);
    assert!(app.quit);
}

#[test]
fn actions_only_change_the_model_until_sync_loads_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    for _ in 0..3 {
        app.apply(Action::StepBack);
    }
    assert_eq!(app.cursor, 0);
    assert_eq!(
        app.view.provenance.as_ref().unwrap().version,
        3,
        "nothing reconstructed per key"
    );
    app.sync().unwrap();
    assert_eq!(app.view.provenance.as_ref().unwrap().version, 0);
}

#[test]
fn a_type_filter_steps_over_other_events_and_hides_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    press(&mut app, "g t Pa <Enter>");
    assert_eq!(app.filter.as_deref(), Some("Pa"));
    let kinds: Vec<&str> = app.view.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["Paid"],
        "case-insensitive; Placed and Shipped have no \"pa\""
    );
    press(&mut app, "j");
    assert_eq!(app.cursor, 2);
    press(&mut app, "j");
    assert_message(&app, "no event matching");
    press(&mut app, "t <Backspace> <Backspace> !paid <Enter> g j j");
    assert_eq!(app.cursor, 3, "!paid skips v2");
}

#[test]
fn all_streams_walk_by_seq_across_streams() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    act(&mut app, Action::ToggleScope);
    assert_eq!(app.scope, Scope::All);
    act(&mut app, Action::First);
    let mut seen = Vec::new();
    for step in 0..5 {
        if step > 0 {
            act(&mut app, Action::StepForward);
        }
        seen.push((app.stream().unwrap().name.clone(), app.cursor));
    }
    assert_eq!(
        seen,
        vec![
            ("order-1".to_string(), 1),
            ("order-2".to_string(), 1),
            ("order-1".to_string(), 2),
            ("order-1".to_string(), 3),
            ("agent-1".to_string(), 1),
        ]
    );
    assert_eq!(
        app.view.state["status"], "running",
        "the state follows the stream"
    );
    assert!(frame(&app, (80, 24)).contains("Events · all by seq"));
}

// ---- the state tree ----------------------------------------------------------------------

#[test]
fn the_state_cursor_folds_unfolds_and_searches() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    press(&mut app, "<Tab>");
    assert_eq!(app.focus, Pane::State);
    press(&mut app, "<Home> j");
    assert_eq!(app.state_path, "/carrier");
    press(&mut app, "j");
    assert_eq!(app.state_path, "/items");
    let rows = app.view.tree.total;
    press(&mut app, "<Space>");
    assert!(app.folded.contains("/items"));
    assert_eq!(app.view.tree.total, rows - 9, "the fold hides the items");
    assert!(frame(&app, (80, 24)).contains("\"items\": […],  2 items"));
    press(&mut app, "/ B-7 <Enter>");
    assert_eq!(app.state_path, "/items/1/sku");
    assert!(
        !app.folded.contains("/items"),
        "a match inside a fold unfolds it"
    );
    press(&mut app, "h");
    assert_eq!(
        app.state_path, "/items/1",
        "h on a value folds its container"
    );
    assert!(app.folded.contains("/items/1"));
    press(&mut app, "Z");
    assert!(app.folded.is_empty());
    // Stepping with the focus here keeps the cursor on the value being watched.
    press(&mut app, "/ status <Enter> <Left>");
    assert_eq!((app.cursor, app.state_path.as_str()), (2, "/status"));
    press(&mut app, "<Esc>");
    assert_eq!(app.focus, Pane::Events);
}

#[test]
fn blame_lists_the_events_that_changed_a_value_and_enter_jumps() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    press(&mut app, "<Tab> / status <Enter> b");
    let Some(rewind::tui::app::Overlay::List(list)) = &app.overlay else {
        panic!("no blame list");
    };
    assert_eq!(list.rows.len(), 3, "{:?}", list.rows);
    assert!(list.rows[0].text.starts_with("v3"), "{:?}", list.rows);
    press(&mut app, "j j <Enter>");
    assert_eq!((app.cursor, app.overlay.is_none()), (1, true));
}

#[test]
fn copy_puts_the_value_under_the_cursor_on_the_clipboard() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    press(&mut app, "<Tab> / carrier <Enter> y");
    assert_eq!(app.effects, vec![Effect::Copy("\"dhl\"".into())]);
    assert_message(&app, "copied /carrier");
    app.effects.clear();
    press(&mut app, "<Esc> y");
    let Effect::Copy(line) = &app.effects[0] else {
        panic!("not a copy")
    };
    let event: Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        (event["type"].as_str(), event["version"].as_u64()),
        (Some("Shipped"), Some(3))
    );
    assert_eq!(
        rewind::tui::osc52("dhl"),
        "\u{1b}]52;c;ZGhs\u{7}",
        "what the loop writes to the terminal"
    );
}

#[test]
fn copy_escapes_control_characters_as_the_cli_json_does() {
    // A C1 CSI (U+009B), DEL and a bidi override in an event: pasted raw into a terminal,
    // they would drive it. The clipboard gets the same JSON value with them escaped.
    let mut engine = crate::support::engine();
    append(
        &mut engine,
        "s",
        json!({"note": "a\u{9b}31mred\u{7f}\u{202e}x", "n": 1}),
    );
    let mut app = over(engine, (80, 24));
    for keys in ["y", "<Tab> / note <Enter> y"] {
        app.effects.clear();
        press(&mut app, keys);
        let Effect::Copy(text) = &app.effects[0] else {
            panic!("not a copy")
        };
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' || c == '\u{202e}'),
            "{keys}: {text:?}"
        );
        assert!(
            text.contains("\\u009b31mred\\u007f\\u202ex"),
            "{keys}: {text:?}"
        );
        let value: Value = serde_json::from_str(text).unwrap();
        let note = if keys == "y" {
            &value["data"]["note"]
        } else {
            &value
        };
        assert_eq!(
            note, "a\u{9b}31mred\u{7f}\u{202e}x",
            "{keys}: the same value"
        );
    }
}

// ---- playback ----------------------------------------------------------------------------

#[test]
fn playback_steps_on_ticks_and_stops_when_the_condition_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    // A key script types words without their spaces, so the condition is set directly.
    press(&mut app, "g u");
    let prompt = app.prompt.as_mut().unwrap();
    prompt.set(".status == \"paid\"");
    press(&mut app, "<Enter> p");
    assert!(app.playing);
    act(&mut app, Action::PlayTick);
    assert_eq!((app.cursor, app.playing), (1, true));
    act(&mut app, Action::PlayTick);
    assert_eq!((app.cursor, !app.playing), (2, true));
    assert_message(&app, "holds");
    press(&mut app, "u");
    app.prompt.as_mut().unwrap().set("error(\"boom\")");
    press(&mut app, "<Enter> p");
    app.dispatch(Action::PlayTick);
    assert!(
        !app.playing && message(&app).contains("boom"),
        "{}",
        message(&app)
    );
    press(&mut app, "u");
    app.prompt.as_mut().unwrap().set(".status ==");
    press(&mut app, "<Enter>");
    assert_message(&app, "stop condition");
    press(&mut app, "+ +");
    assert_message(&app, "50/s");
}

// ---- writes: snapshot, compaction, verify --------------------------------------------------

#[test]
fn a_snapshot_with_a_label_shows_on_the_timeline_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let mut app = order_1(&path);
    assert_eq!(app.view.snapshots.len(), 1);
    press(&mut app, "s risky <Enter>");
    assert_message(&app, "snapshot taken at v3");
    assert_eq!(
        app.view
            .snapshots
            .iter()
            .map(|s| (s.version, s.glyph))
            .collect::<Vec<_>>(),
        vec![(2, '◆'), (3, '◆')],
        "the head did not move, yet the new snapshot is listed"
    );
    let store = Store::open(&path, OpenMode::ReadOnly).unwrap();
    let labels: Vec<Option<String>> = store
        .snapshots(None)
        .unwrap()
        .into_iter()
        .map(|s| s.label)
        .collect();
    assert!(labels.contains(&Some("risky".into())), "{labels:?}");
}

#[test]
fn compaction_shows_the_plan_and_carries_it_out_only_on_enter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    for i in 0..64 {
        at(&mut engine, "s", "Set", json!({ "i": i }), i);
        engine
            .take_snapshot(
                "s",
                Target::Version(u64::try_from(i + 1).unwrap()),
                "manual",
                None,
            )
            .unwrap();
    }
    let count = || {
        Store::open(&path, OpenMode::ReadOnly)
            .unwrap()
            .snapshots(None)
            .unwrap()
            .len()
    };
    let mut app = open(&path, Start::default());
    press(&mut app, "C");
    let Some(rewind::tui::app::Overlay::List(list)) = &app.overlay else {
        panic!("no plan");
    };
    let drops = list.rows.len();
    assert!(drops > 40, "a ladder keeps a few of 64: {drops}");
    assert_eq!(count(), 64, "a plan is a dry run");
    press(&mut app, "<Esc>");
    assert_eq!(count(), 64, "cancelled");
    press(&mut app, "C <Enter>");
    assert_eq!(count(), 64 - drops, "{}", message(&app));
    assert_message(&app, &format!("dropped {drops}"));
}

/// The list overlay's rows.
fn list_rows(app: &App) -> Vec<rewind::tui::app::ListRow> {
    match &app.overlay {
        Some(rewind::tui::app::Overlay::List(list)) => list.rows.clone(),
        other => panic!("no list: {other:?}"),
    }
}

#[test]
fn compaction_rows_toggle_with_space_and_enter_drops_only_the_selected_labelled_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    for i in 0..16 {
        at(&mut engine, "s", "Set", json!({ "i": i }), i);
        let label = (i == 3).then_some("before the migration");
        engine
            .take_snapshot(
                "s",
                Target::Version(u64::try_from(i + 1).unwrap()),
                "manual",
                label,
            )
            .unwrap();
    }
    let versions = || -> Vec<u64> {
        Store::open(&path, OpenMode::ReadOnly)
            .unwrap()
            .snapshots(None)
            .unwrap()
            .iter()
            .map(|s| s.version)
            .collect()
    };
    let mut app = open(&path, Start::default());
    press(&mut app, "C");
    let rows = list_rows(&app);
    // The labelled snapshot is in the plan, left out, and says its label.
    let labelled = rows
        .iter()
        .position(|r| r.text.contains("before the migration"))
        .expect("the plan shows the labelled snapshot");
    assert_eq!(rows[labelled].pick, Some(false));
    assert!(
        rows[labelled].text.starts_with("keep"),
        "{}",
        rows[labelled].text
    );
    let dropped: Vec<usize> = (0..rows.len())
        .filter(|i| rows[*i].pick == Some(true))
        .collect();
    assert!(dropped.len() >= 5, "{rows:?}");
    let text = frame(&app, (120, 40));
    assert!(text.contains("Enter drops "), "{text}");
    assert!(text.contains("[x] drop"), "{text}");

    // Space leaves out the first row; Enter drops the others, counted; the first stays.
    press(&mut app, "<Space>");
    assert_eq!(list_rows(&app)[0].pick, Some(false));
    let hint = frame(&app, (120, 40));
    assert!(
        hint.contains(&format!("Enter drops {} selected", dropped.len() - 1)),
        "{hint}"
    );
    let first = match &rows[0].goal {
        rewind::tui::app::Goal::Jump(_, v) => *v,
        rewind::tui::app::Goal::None => unreachable!(),
    };
    press(&mut app, "<Enter>");
    let left = versions();
    assert!(left.contains(&first), "left out, kept: {left:?}");
    assert!(left.contains(&4), "the labelled snapshot is kept: {left:?}");
    assert_eq!(left.len(), 16 - (dropped.len() - 1), "{left:?}");
    assert_message(&app, &format!("dropped {}", dropped.len() - 1));

    // Selecting the labelled one drops it; nothing selected is refused.
    press(&mut app, "C");
    let rows = list_rows(&app);
    let labelled = rows
        .iter()
        .position(|r| r.text.contains("before the migration"))
        .unwrap();
    for _ in 0..rows.len() {
        press(&mut app, "k");
    }
    for (i, row) in rows.iter().enumerate() {
        if (row.pick == Some(true)) != (i == labelled) {
            press(&mut app, "<Space>");
        }
        press(&mut app, "j");
    }
    press(&mut app, "<Enter>");
    assert!(
        !versions().contains(&4),
        "chosen, dropped: {:?}",
        versions()
    );

    // With every row left out, Enter drops nothing and says how to select.
    let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    for v in [5, 6] {
        engine
            .take_snapshot("s", Target::Version(v), "manual", None)
            .unwrap();
    }
    drop(engine);
    press(&mut app, "C");
    let rows = list_rows(&app);
    assert!(rows.iter().any(|r| r.pick == Some(true)), "{rows:?}");
    for row in &rows {
        if row.pick == Some(true) {
            press(&mut app, "<Space>");
        }
        press(&mut app, "j");
    }
    let before = versions();
    press(&mut app, "<Enter>");
    assert_eq!(versions(), before);
    assert_message(&app, "nothing is selected");
}

#[test]
fn x_twice_in_the_snapshot_list_drops_that_snapshot_and_a_corrupt_one_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let mut engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    engine
        .take_snapshot("order-1", Target::Version(3), "manual", None)
        .unwrap();
    drop(engine);
    Store::open(&path, OpenMode::Existing)
        .unwrap()
        .execute_raw(
            "UPDATE snapshots SET checksum = zeroblob(32) WHERE version = 3",
            [],
        )
        .unwrap();
    let mut app = order_1(&path);
    press(&mut app, "S");
    let rows = list_rows(&app);
    assert_eq!(rows.len(), 2);
    assert!(rows[0].text.contains("corrupt"), "{}", rows[0].text);
    assert!(rows[0].alarm);
    assert!(rows[1].text.contains("before ship") && !rows[1].alarm);
    // Once arms, a move disarms, twice drops.
    press(&mut app, "x");
    assert_message(&app, "x again drops the snapshot at v3");
    press(&mut app, "j k x");
    assert_eq!(list_rows(&app).len(), 2, "a move in between disarms");
    press(&mut app, "x");
    assert_message(&app, "dropped the snapshot at v3");
    assert_eq!(list_rows(&app).len(), 1);
    let left = Store::open(&path, OpenMode::ReadOnly)
        .unwrap()
        .snapshots(None)
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].version, 2);
    // x elsewhere explains itself.
    press(&mut app, "<Esc> b x");
    assert_message(&app, "snapshot list");
}

#[test]
fn verify_lists_findings_and_enter_jumps_to_the_bad_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    Store::open(&path, OpenMode::Existing)
        .unwrap()
        .execute_raw("UPDATE snapshots SET checksum = zeroblob(32)", [])
        .unwrap();
    let mut app = open(&path, Start::default());
    press(&mut app, "V");
    let Some(rewind::tui::app::Overlay::List(list)) = &app.overlay else {
        panic!("no findings");
    };
    assert_eq!(list.rows.len(), 1, "{:?}", list.rows);
    assert!(list.rows[0].text.contains("Corrupt"), "{:?}", list.rows);
    press(&mut app, "<Enter>");
    assert_eq!(
        (app.stream().unwrap().name.as_str(), app.cursor),
        ("order-1", 2)
    );
    assert_eq!(
        app.view.markers.get("order-1"),
        Some(&'!'),
        "the stream is marked"
    );
}

#[test]
fn a_read_only_database_disables_the_write_keys_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let engine = Engine::new(Store::open(&path, OpenMode::ReadOnly).unwrap());
    let mut app = App::new(engine, &Start::default()).unwrap();
    for key in ["s", "C"] {
        press(&mut app, key);
        assert!(
            message(&app).contains("read-only"),
            "{key}: {}",
            message(&app)
        );
        assert!(app.prompt.is_none() && app.overlay.is_none() && !app.quit);
    }
}

// ---- prompts, search, live ----------------------------------------------------------------

#[test]
fn go_to_and_search_through_the_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    press(&mut app, ":1");
    assert_eq!(app.prompt.as_ref().map(|p| p.text()), Some("1"));
    assert!(
        frame(&app, (80, 24))
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
    assert_message(&app, "wrapped to the start");
    assert_eq!(app.cursor, 2, "LIKE is case-insensitive: v2 has \"paid\"");
    press(&mut app, ":nonsense <Enter>");
    assert_message(&app, "neither a version nor");
    press(&mut app, ":9 <Enter>");
    assert_message(&app, "no version 9");
    press(&mut app, ":2026-03-01T12:30:00Z <Enter>");
    assert_eq!(app.cursor, 2, "the last event at or before the time");
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
    let mut app = open(&path, Start::default());
    append(&mut writer, "s", json!({"n": 2}));
    act(&mut app, Action::Refresh);
    assert_eq!(
        (app.stream().unwrap().head, app.cursor),
        (2, 1),
        "new events appear; the cursor stays"
    );
    act(&mut app, Action::ToggleFollow);
    assert_eq!(app.cursor, 2);
    append(&mut writer, "s", json!({"n": 3}));
    append(&mut writer, "t", json!({"other": true}));
    act(&mut app, Action::Refresh);
    assert_eq!(
        (app.cursor, app.streams.len()),
        (3, 2),
        "following: on the newest event; the new stream is listed"
    );
    assert_eq!(app.view.state["n"], 3);
    assert!(frame(&app, (80, 24)).contains("· following"));
    // Moved back to read an older event: following stops, and says so; more appends leave
    // the cursor where the user put it, even once stepped back to the newest.
    act(&mut app, Action::StepBack);
    assert!(!app.follow);
    assert_message(&app, "follow off");
    assert!(!frame(&app, (80, 24)).contains("· following"));
    append(&mut writer, "s", json!({"n": 4}));
    act(&mut app, Action::Refresh);
    assert_eq!((app.cursor, app.stream().unwrap().head), (2, 4));
    // `G` goes to the newest and follows again.
    act(&mut app, Action::Last);
    assert!(app.follow && app.cursor == 4);
    append(&mut writer, "s", json!({"n": 5}));
    act(&mut app, Action::Refresh);
    assert_eq!(app.cursor, 5);
    // `f` turns it off; `G` then only moves.
    act(&mut app, Action::ToggleFollow);
    act(&mut app, Action::First);
    act(&mut app, Action::Last);
    assert!(!app.follow);
}

// ---- mouse ---------------------------------------------------------------------------------

#[test]
fn clicking_the_timeline_jumps_in_time_and_the_wheel_scrolls_the_list_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    let timeline = ui::inner(ui::areas(app.size).timeline);
    act(&mut app, Action::Click(timeline.x, timeline.y));
    assert_eq!(app.cursor, 1, "the left edge is the first event");
    act(
        &mut app,
        Action::Drag(timeline.x + timeline.width - 1, timeline.y),
    );
    assert_eq!(app.cursor, 3, "dragged to the right edge: the last");
    let events = ui::inner(ui::areas(app.size).events);
    act(&mut app, Action::ScrollUp(events.x + 1, events.y + 1));
    assert_eq!(app.cursor, 2);
    let streams = ui::inner(ui::areas(app.size).streams);
    act(&mut app, Action::Click(streams.x + 1, streams.y));
    assert_eq!(
        app.stream().unwrap().name,
        "agent-1",
        "the first stream listed"
    );
    let state = ui::inner(ui::areas(app.size).state);
    act(&mut app, Action::Click(state.x + 1, state.y + 1));
    assert_eq!(
        (app.focus, app.state_path.as_str()),
        (Pane::State, "/pending_tool_call")
    );
}

// ---- styles that carry meaning -------------------------------------------------------------

#[test]
fn the_cursor_row_is_reversed_and_changed_lines_are_highlighted() {
    let dir = tempfile::tempdir().unwrap();
    let app = order_1(&orders(dir.path()));
    let buf = buffer(&app, 80, 24);
    let (x, y) = find(&buf, "▶     3");
    assert!(
        buf[(x + 2, y)].modifier.contains(Modifier::REVERSED),
        "the event at the cursor"
    );
    let (x, y) = find(&buf, "\"carrier\": \"dhl\"");
    assert_eq!(buf[(x, y)].fg, Color::Yellow, "a line the event changed");
    let (x, y) = find(&buf, "\"qty\": 2");
    assert_ne!(buf[(x, y)].fg, Color::Yellow, "a line it did not change");
}

#[test]
fn diff_lines_are_green_when_added_and_red_when_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    act(&mut app, Action::StepBack);
    act(&mut app, Action::ToggleDiffText);
    let buf = buffer(&app, 120, 40);
    let (x, y) = find(&buf, "+  \"status\": \"paid\"");
    assert_eq!(buf[(x, y)].fg, Color::Green);
    let (x, y) = find(&buf, "-  \"status\": \"placed\"");
    assert_eq!(buf[(x, y)].fg, Color::Red);
    let (x, y) = find(&buf, "   \"total\": 30");
    assert_eq!(buf[(x, y)].fg, Color::Reset, "context");
}

#[test]
fn the_state_cursor_is_reversed_only_with_the_focus_on_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    let reversed = |app: &App| {
        let buf = buffer(app, 80, 24);
        let (x, y) = find(&buf, "\"carrier\"");
        buf[(x, y)].modifier.contains(Modifier::REVERSED)
    };
    assert!(!reversed(&app));
    act(&mut app, Action::ToggleFocus);
    assert!(reversed(&app), "the cursor is on what the event changed");
}

#[test]
fn streams_are_marked_unfinished_or_with_stale_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let app = order_1(&path);
    assert_eq!(app.view.markers.get("agent-1"), Some(&'…'));
    assert_eq!(app.view.markers.get("order-1"), None);
    let buf = buffer(&app, 80, 24);
    let (x, y) = find(&buf, "…agent-1");
    assert_eq!(buf[(x, y)].fg, Color::Red);
}

// ---- safety --------------------------------------------------------------------------------

#[test]
fn hostile_text_never_reaches_the_frame_raw() {
    let mut engine = crate::support::engine();
    let hostile = "\u{1b}[2J\u{1b}]0;x\u{7} \u{202e}rlo \u{9b}31m";
    // Stream names and types with control characters are refused on append; data, keys
    // and meta are stored as given.
    let mut event = ev("s", "Set", json!({"msg": hostile, hostile: [hostile]}));
    event.meta = Some(json!({"actor": hostile}));
    engine
        .append(event, rewind::engine::AppendOptions::default())
        .unwrap();
    let mut app = over(engine, (0, 24));
    for keys in ["", "a", "a <Tab> b", "<Esc> <Esc> S", "<Esc> d", "d ?"] {
        press(&mut app, keys);
        let frame = render_text(&app, 100, 24).unwrap();
        assert!(
            !frame
                .chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "{keys}: {frame:?}"
        );
    }
}

#[test]
fn a_huge_state_is_laid_out_a_window_at_a_time() {
    let mut engine = crate::support::engine();
    let big: serde_json::Map<String, Value> = (0..50_000)
        .map(|i| (format!("k{i:05}"), json!({"v": i})))
        .collect();
    append(&mut engine, "big", Value::Object(big));
    append(&mut engine, "big", json!({"k49999": {"v": -1}}));
    let mut app = over(engine, (0, 24));
    assert_eq!(app.view.tree.total, 150_002);
    assert!(app.view.tree.rows.len() <= 24);
    assert!(
        frame(&app, (80, 24)).contains("\"v\": -1"),
        "the change is in view"
    );
    press(&mut app, "<Tab> <Home>");
    assert_eq!(app.view.tree.cursor, 0);
    press(&mut app, "<End>");
    assert_eq!(app.view.tree.cursor, 150_001);
}

#[test]
fn an_empty_database_draws_and_every_key_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    drop(Store::open(&path, OpenMode::Create).unwrap());
    let mut app = open(&path, Start::default());
    let all: String = rewind::tui::keymap::BINDINGS
        .iter()
        .filter(|b| !matches!(b.name, "q" | "<Esc>"))
        .map(|b| b.name)
        .collect::<Vec<_>>()
        .join(" ");
    press(&mut app, &all);
    press(&mut app, "<Esc> <Esc>");
    if app.zoomed {
        press(&mut app, "o");
    }
    let frame = frame(&app, (80, 24));
    assert!(frame.contains("Streams 0"), "{frame}");
}

#[test]
fn stepping_back_and_forth_shows_what_opening_at_each_version_shows() {
    // A stream long enough for the stepper to run out of undo records and start again
    // below, with snapshots every 5 events; each event touches a few of many keys.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("steps.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    engine
        .set_policy(
            None,
            &rewind::engine::Policy {
                every: Some(5),
                ..Default::default()
            },
        )
        .unwrap();
    for i in 0..60_u64 {
        let mut patch = serde_json::Map::new();
        patch.insert(
            format!("k{:02}", i % 23),
            json!({"n": i, "even": i % 2 == 0}),
        );
        patch.insert(format!("k{:02}", (i * 7) % 23), json!(i));
        if i % 9 == 4 {
            patch.insert(format!("k{:02}", (i * 3) % 23), Value::Null);
        }
        at(
            &mut engine,
            "s",
            "Set",
            Value::Object(patch),
            i64::try_from(i).unwrap(),
        );
    }
    drop(engine);
    let fresh = |version: u64| {
        open(
            &path,
            Start {
                stream: Some("s".into()),
                at: Some(version),
                ..Start::default()
            },
        )
    };
    // The state, its changes, and the diff and event panes below the tree (whose scroll
    // position depends on where the cursor came from); not the status line, which tells
    // how the state was obtained.
    let shown = |app: &App| {
        let text = frame(app, (100, 40));
        let lower = text
            .lines()
            .skip(27)
            .take(12)
            .collect::<Vec<_>>()
            .join("\n");
        (
            Value::clone(&app.view.state),
            app.view.changes.clone(),
            lower,
        )
    };
    let mut app = fresh(60);
    for version in (0..60).rev() {
        press(&mut app, "k");
        assert_eq!(app.cursor, version);
        assert_eq!(
            shown(&app),
            shown(&fresh(version)),
            "stepping back to v{version}"
        );
    }
    press(&mut app, "j j j");
    assert_eq!(shown(&app), shown(&fresh(3)));
    assert!(message(&app).is_empty(), "{}", message(&app));
    // A frame for CI names the route a cold reconstruction takes, however the keys came…
    let status = frame(&app, (100, 40));
    assert!(status.contains("full replay + 3 events"), "{status}");
    // … and the debugger on a terminal says how it got there: one event applied, or undone.
    let mut live = App::new(
        Engine::new(Store::open(&path, OpenMode::Existing).unwrap()),
        &Start {
            stream: Some("s".into()),
            at: Some(2),
            ..Start::default()
        },
    )
    .unwrap();
    press(&mut live, "j");
    let how = |app: &App| app.view.provenance.as_ref().unwrap().describe();
    assert!(
        how(&live).starts_with("cached v2 + 1 event"),
        "{}",
        how(&live)
    );
    press(&mut live, "k");
    assert!(
        how(&live).starts_with("cached v3 − 1 event"),
        "{}",
        how(&live)
    );
}

/// A stream of 8 events whose reducer refuses version 5.
fn refused_at_five() -> Engine {
    let mut engine = crate::support::engine();
    for i in 1..=8 {
        append(&mut engine, "s", json!({ "n": i }));
    }
    let refuses =
        r#"jq:if .event.version == 5 then error("boom at five") else .state + .event.data end"#;
    let id = engine.store().require_stream("s").unwrap().id;
    engine
        .store()
        .set_stream_reducer(id, Some(refuses))
        .unwrap();
    engine
}

#[test]
fn a_stream_whose_reducer_refuses_an_event_still_opens_and_says_why() {
    let engine = refused_at_five();
    let mut app = over(engine, (100, 30));
    assert_eq!(app.cursor, 8);
    assert_message(&app, "version 5");
    let text = frame(&app, (100, 30));
    assert!(text.contains("The state here cannot be built"), "{text}");
    assert!(text.contains("boom at five"), "{text}");
    assert!(text.contains("no state to compare"), "{text}");
    assert!(text.contains("│▶!s"), "the stream is marked: {text}");
    assert_eq!(app.view.events.len(), 8, "the events around it still show");
    // Before the refused event the state is there again; after it, the reason again.
    press(&mut app, "k k k k");
    assert_eq!(app.cursor, 4);
    assert!(message(&app).is_empty(), "{}", message(&app));
    assert_eq!(*app.view.state, json!({"n": 4}));
    assert!(app.view.state_error.is_none());
    press(&mut app, "j");
    assert!(
        app.view
            .state_error
            .as_deref()
            .unwrap()
            .contains("boom at five")
    );
    assert_eq!(*app.view.state, Value::Null);
    // A mark past the refused event: the state at the cursor is fine, the diff cannot be.
    press(&mut app, "G m :3 <Enter>");
    let text = frame(&app, (100, 30));
    assert_eq!((app.cursor, app.mark), (3, Some(8)), "{text}");
    assert_eq!(*app.view.state, json!({"n": 3}));
    assert!(app.view.state_error.is_none());
    assert!(text.contains("v8 cannot be built"), "{text}");
    assert_message(&app, "version 5");
}

#[test]
fn stepping_onto_a_change_in_a_folded_container_shows_it_and_keeps_the_fold() {
    let mut engine = crate::support::engine();
    append(&mut engine, "s", json!({"a": {"x": 1}, "b": {"y": 1}}));
    append(&mut engine, "s", json!({"a": {"x": 2}}));
    append(&mut engine, "s", json!({"b": {"y": 2}}));
    let mut app = over(engine, (80, 24));
    press(&mut app, "g j <Tab> <Home> <Down> h <Tab>");
    assert!(app.folded.contains("/a"), "{:?}", app.folded);
    let rows = |app: &App| {
        app.view
            .tree
            .rows
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        !rows(&app).contains(&"/a/x".to_string()),
        "{:?}",
        rows(&app)
    );
    press(&mut app, "j");
    assert!(
        rows(&app).contains(&"/a/x".to_string()),
        "v2 changed /a/x: shown"
    );
    assert!(app.folded.contains("/a"), "still folded by the user");
    press(&mut app, "j");
    assert!(
        !rows(&app).contains(&"/a/x".to_string()),
        "folded again at v3"
    );
    // Moving the state cursor while a fold is shown open makes it the user's own.
    press(&mut app, "k <Tab> <Down>");
    assert!(!app.folded.contains("/a"), "{:?}", app.folded);
}

#[test]
fn a_letter_held_with_ctrl_or_alt_is_not_the_letter_and_esc_never_quits() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut engine = crate::support::engine();
    for n in 0..5 {
        append(&mut engine, "s", json!({ "n": n }));
    }
    let mut app = over(engine, (0, 24));
    press(&mut app, "k k");
    let (cursor, follow) = (app.cursor, app.follow);
    assert_eq!(cursor, 3);
    let held = |app: &mut App, c: char, modifiers: KeyModifiers| {
        if let Some(action) = action_for(app, KeyEvent::new(KeyCode::Char(c), modifiers)) {
            app.dispatch(action);
        }
    };
    // Ctrl-F is not follow, Ctrl-B not blame, Alt-q not quit, Ctrl-G not "to the end" …
    for c in [
        'f', 'b', 'q', 'g', 'G', 'j', 'k', 'm', 's', 't', ':', '?', 'V', 'C',
    ] {
        for modifiers in [KeyModifiers::CONTROL, KeyModifiers::ALT] {
            held(&mut app, c, modifiers);
            assert!(
                !app.quit && app.overlay.is_none() && app.prompt.is_none(),
                "{modifiers:?} {c}"
            );
            assert_eq!(
                (app.cursor, app.follow),
                (cursor, follow),
                "{modifiers:?} {c}"
            );
        }
    }
    // Esc in the main view backs out of nothing: it does not quit (q does).
    press(&mut app, "<Esc> <Esc>");
    assert!(!app.quit);
    assert_eq!(app.cursor, cursor);
    // At a prompt a held letter types nothing.
    press(&mut app, ":2");
    held(&mut app, 'a', KeyModifiers::CONTROL);
    held(&mut app, 'w', KeyModifiers::ALT);
    assert_eq!(app.prompt.as_ref().map(|p| p.text()), Some("2"));
    press(&mut app, "<Enter>");
    assert_eq!(app.cursor, 2);
    // The help closes on any key, held ones too; Ctrl-C quits from anywhere.
    press(&mut app, "?");
    assert!(app.overlay.is_some());
    held(&mut app, 'x', KeyModifiers::CONTROL);
    assert!(app.overlay.is_none());
    press(&mut app, ":");
    held(&mut app, 'c', KeyModifiers::CONTROL);
    assert!(app.quit);
}

/// The summaries of the rows on screen, by version.
fn summaries(app: &App) -> Vec<(u64, String)> {
    app.view
        .events
        .iter()
        .zip(&app.view.titles)
        .map(|(e, t)| (e.version, t.clone()))
        .collect()
}

#[test]
fn each_event_row_says_which_top_level_keys_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    at(
        &mut engine,
        "run",
        "Checkpoint",
        json!({"node": "plan", "step": 1}),
        0,
    );
    at(
        &mut engine,
        "run",
        "Checkpoint",
        json!({"node": "call_tool", "pending_tool_call": {"tool": "grep"}, "step": 2}),
        5,
    );
    at(
        &mut engine,
        "run",
        "Checkpoint",
        json!({"node": "call_tool"}),
        9,
    );
    at(
        &mut engine,
        "run",
        "Checkpoint",
        json!({"pending_tool_call": null, "notes": "a string far too long to show after its key"}),
        12,
    );
    drop(engine);
    let mut app = open(
        &path,
        Start {
            width: 120,
            height: 30,
            ..Start::default()
        },
    );
    assert_eq!(
        summaries(&app),
        [
            (1, "node → plan, step → 1".to_string()),
            // Words first, then containers, then numbers (counters change every time).
            (
                2,
                "node → call_tool, pending_tool_call, step → 2".to_string()
            ),
            (3, "no change".to_string()),
            // Merge removes a key set to null.
            (4, "notes, −pending_tool_call".to_string()),
        ]
    );
    let text = frame(&app, (200, 30));
    assert!(
        text.contains("Checkpoint node → call_tool, pending_tool_call, step → 2"),
        "{text}"
    );
    // A key removed says so (a replace reducer's state is its last event).
    let other = Store::open(&path, OpenMode::Existing).unwrap();
    let id = other.require_stream("run").unwrap().id;
    other.set_stream_reducer(id, Some("replace")).unwrap();
    app.dispatch(Action::Refresh);
    assert_eq!(
        *app.view.state,
        json!({"notes": "a string far too long to show after its key", "pending_tool_call": null})
    );
    assert_eq!(summaries(&app)[2].1, "−pending_tool_call, −step");
}

#[test]
fn an_event_the_reducer_refuses_says_so_in_its_row_and_later_rows_say_nothing() {
    let engine = refused_at_five();
    let app = over(engine, (100, 30));
    let rows = summaries(&app);
    assert_eq!(rows[3], (4, "n → 4".to_string()));
    assert!(
        rows[4].1.starts_with('⚠') && rows[4].1.contains("boom"),
        "{rows:?}"
    );
    assert!(rows[5..].iter().all(|(_, t)| t.is_empty()), "{rows:?}");
}

#[test]
fn the_users_title_programs_summarise_by_stream_then_glob_then_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = open(&orders(dir.path()), Start::default());
    press(&mut app, "a");
    assert_eq!(app.scope, Scope::All);
    let streams = [
        (
            "order-*".to_string(),
            r#""order " + .state.status"#.to_string(),
        ),
        (
            "order-2".to_string(),
            r#""two: " + .event.type"#.to_string(),
        ),
    ]
    .into_iter()
    .collect();
    let types = [(
        "Checkpoint".to_string(),
        r#".state.pending_tool_call.tool"#.to_string(),
    )]
    .into_iter()
    .collect();
    app.set_title_rules(rewind::summary::Rules::compile(&streams, &types).unwrap());
    let shown: Vec<(String, String)> = app
        .view
        .events
        .iter()
        .zip(&app.view.titles)
        .map(|(e, t)| (e.stream.clone(), t.clone()))
        .collect();
    assert_eq!(
        shown,
        [
            ("order-1".to_string(), "order placed".to_string()),
            ("order-2".to_string(), "two: Placed".to_string()),
            ("order-1".to_string(), "order paid".to_string()),
            ("order-1".to_string(), "order shipped".to_string()),
            ("agent-1".to_string(), "grep".to_string()),
        ]
    );
    // A program that does not compile is refused, naming what it titles.
    let bad = [("Paid".to_string(), "((".to_string())]
        .into_iter()
        .collect();
    let err = rewind::summary::Rules::compile(&Default::default(), &bad)
        .err()
        .unwrap();
    assert!(err.contains("type \"Paid\""), "{err}");
}

#[test]
fn o_maximises_the_focused_pane_and_restores_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    let rows = app.event_rows();
    press(&mut app, "o");
    assert!(app.zoomed);
    let text = frame(&app, (80, 24));
    insta::assert_snapshot!("zoomed_events_80x24", text);
    assert!(text.starts_with("┌ Events"), "{text}");
    assert!(
        !text.contains("Streams") && !text.contains("Timeline"),
        "{text}"
    );
    assert!(app.event_rows() > rows, "more rows fit");
    assert!(text.lines().last().unwrap().contains("· zoomed"), "{text}");
    // Tab moves the focus, and the maximised pane with it.
    press(&mut app, "<Tab>");
    let text = frame(&app, (80, 24));
    assert!(text.starts_with("┌ State @ v3"), "{text}");
    press(&mut app, "o");
    assert!(!app.zoomed);
    assert!(frame(&app, (80, 24)).starts_with("┌ Streams"));
}

#[test]
fn the_status_line_keeps_help_at_80_columns_and_leaves_out_write_keys_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let app = order_1(&path);
    let status = frame(&app, (80, 24)).lines().last().unwrap().to_string();
    assert!(status.ends_with("? help"), "{status}");
    let wide = frame(&app, (160, 24)).lines().last().unwrap().to_string();
    assert!(wide.contains("s snap"), "{wide}");
    let engine = Engine::new(Store::open(&path, OpenMode::ReadOnly).unwrap());
    let read_only = App::new(
        engine,
        &Start {
            stream: Some("order-1".into()),
            width: 160,
            height: 24,
            deterministic: true,
            ..Start::default()
        },
    )
    .unwrap();
    let status = frame(&read_only, (160, 24))
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert!(
        !status.contains("s snap") && status.ends_with("? help"),
        "{status}"
    );
}

#[test]
fn a_row_summarised_by_keys_after_one_titled_by_a_program_compares_with_the_event_before_it() {
    let mut engine = crate::support::engine();
    at(&mut engine, "s", "Tick", json!({"n": 1}), 0);
    at(&mut engine, "s", "Named", json!({"name": "a"}), 1);
    at(&mut engine, "s", "Tick", json!({"n": 2}), 2);
    let mut app = over(engine, (200, 30));
    let types = [("Named".to_string(), r#""named " + .state.name"#.to_string())]
        .into_iter()
        .collect();
    app.set_title_rules(rewind::summary::Rules::compile(&Default::default(), &types).unwrap());
    assert_eq!(
        summaries(&app),
        [
            (1, "n → 1".to_string()),
            (2, "named a".to_string()),
            // Against v2's state, not v1's: `name` did not change here.
            (3, "n → 2".to_string()),
        ]
    );
}

/// The names the stream list shows, in order.
fn listed(app: &App) -> Vec<String> {
    app.listed
        .iter()
        .map(|i| app.streams[*i].name.clone())
        .collect()
}

#[test]
fn the_stream_list_shows_each_streams_status_from_its_newest_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let app = order_1(&path);
    assert_eq!(
        app.view.statuses.get("order-1").map(String::as_str),
        Some("shipped")
    );
    assert_eq!(
        app.view.statuses.get("agent-1").map(String::as_str),
        Some("running")
    );
    let text = frame(&app, (80, 24));
    let row = text
        .lines()
        .find(|l| l.starts_with("│▶ order-1"))
        .unwrap()
        .to_string();
    assert!(row.contains("order-1") && row.contains("shipped"), "{row}");
    assert!(
        row.find("order-1").unwrap() < row.find("shipped").unwrap(),
        "the status is right of the name: {row}"
    );
}

#[test]
fn the_stream_filter_takes_text_globs_statuses_and_unfinished_and_j_k_stay_inside_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let mut app = order_1(&path);
    assert_eq!(listed(&app), ["agent-1", "order-1", "order-2"]);

    // A glob: the stream shown passes, so it stays.
    press(&mut app, "F order-* <Enter>");
    app.sync().unwrap();
    assert_eq!(listed(&app), ["order-1", "order-2"]);
    assert_eq!(app.stream().unwrap().name, "order-1");
    assert_message(&app, "2 of 3 streams match order-*");
    assert!(frame(&app, (120, 36)).contains("Streams 2/3 order-*"));
    // J and K go round the two, never to agent-1.
    press(&mut app, "J");
    app.sync().unwrap();
    assert_eq!(app.stream().unwrap().name, "order-2");
    press(&mut app, "J");
    app.sync().unwrap();
    assert_eq!(app.stream().unwrap().name, "order-1");
    press(&mut app, "K K");
    app.sync().unwrap();
    assert_eq!(app.stream().unwrap().name, "order-1");

    // Unfinished only: the shown stream does not pass, so the first that does is shown,
    // at its newest event.
    press(&mut app, "F");
    assert_eq!(
        app.prompt.as_ref().unwrap().text(),
        "order-*",
        "F reopens with the filter"
    );
    for _ in 0.."order-*".len() {
        press(&mut app, "<Backspace>");
    }
    press(&mut app, "is:unfinished <Enter>");
    app.sync().unwrap();
    assert_eq!(listed(&app), ["agent-1"]);
    assert_eq!(app.stream().unwrap().name, "agent-1");
    assert_eq!(app.cursor, 1);

    // A status, in any case, and the opposite of a word.
    press(&mut app, "F");
    app.update(Action::PromptCancel).unwrap();
    app.filter_streams("status:PLA* !agent").unwrap();
    app.sync().unwrap();
    assert_eq!(listed(&app), ["order-2"]);

    // A filter nothing passes is refused and the list stays; a bad word is explained.
    assert!(
        app.filter_streams("nothing-is-called-this")
            .unwrap_err()
            .to_string()
            .contains("no stream matches")
    );
    assert_eq!(listed(&app), ["order-2"]);
    press(&mut app, "F");
    app.prompt.as_mut().unwrap().set("");
    press(&mut app, "is:done <Enter>");
    assert_message(&app, "is:unfinished");
    assert_eq!(listed(&app), ["order-2"]);
    // Empty text shows every stream again.
    app.filter_streams("").unwrap();
    assert_eq!(listed(&app), ["agent-1", "order-1", "order-2"]);
    assert!(frame(&app, (80, 24)).contains("Streams 3 "));
}

#[test]
fn a_stream_that_stops_passing_the_filter_leaves_the_list_when_it_refreshes() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let mut app = order_1(&path);
    app.filter_streams("is:unfinished").unwrap();
    app.sync().unwrap();
    assert_eq!(listed(&app), ["agent-1"]);
    // Another process finishes the run.
    let mut other = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    at(
        &mut other,
        "agent-1",
        "Checkpoint",
        json!({"status": "completed", "pending_tool_call": null}),
        7_300,
    );
    act(&mut app, Action::Refresh);
    assert!(listed(&app).is_empty());
    // The run stays on screen, and the list says why it is empty.
    assert_eq!(app.stream().unwrap().name, "agent-1");
    assert!(frame(&app, (80, 24)).contains("none match now"));
    app.update(Action::NextStream).unwrap_err();
}

#[test]
fn long_stream_names_lose_their_middle_at_80_columns() {
    let mut engine = crate::support::engine();
    for name in [
        "account-ACC-1001",
        "account-ACC-1002",
        "account-ACC-1003-savings",
    ] {
        at(&mut engine, name, "Opened", json!({"status": "open"}), 0);
    }
    let app = over(engine, (80, 24));
    let text = frame(&app, (80, 24));
    for end in ["-1001", "-1002", "vings"] {
        assert!(
            text.lines().any(|l| l.contains('…') && l.contains(end)),
            "{end} is kept:\n{text}"
        );
    }
}

#[test]
fn search_wraps_with_a_message_counts_matches_and_works_across_all_streams() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let mut app = order_1(&path);
    // order-1 is at v3; "paid" is at v2 only: forward from v3 wraps to the start.
    press(&mut app, "/ paid <Enter>");
    app.sync().unwrap();
    assert_eq!(app.cursor, 2);
    assert_message(&app, "/paid: match 1 of 1 · wrapped to the start");
    // "status" is in every event of order-1: from v2, n goes to v3, then round to v1.
    press(&mut app, "/ status <Enter>");
    app.sync().unwrap();
    assert_eq!(app.cursor, 3);
    assert_message(&app, "/status: match 3 of 3");
    press(&mut app, "n");
    app.sync().unwrap();
    assert_eq!(app.cursor, 1);
    assert_message(&app, "match 1 of 3 · wrapped to the start");
    press(&mut app, "N");
    app.sync().unwrap();
    assert_eq!(app.cursor, 3);
    assert_message(&app, "match 3 of 3 · wrapped to the end");

    // In all streams, by seq: "placed" is in order-1 v1 (seq 1) and order-2 v1 (seq 2);
    // "running" only in agent-1.
    press(&mut app, "a g / placed <Enter>");
    app.sync().unwrap();
    assert_eq!(app.scope, Scope::All);
    assert_eq!(app.stream().unwrap().name, "order-2");
    assert_message(&app, "/placed: match 2 of 2");
    press(&mut app, "n");
    app.sync().unwrap();
    assert_eq!(
        (app.stream().unwrap().name.as_str(), app.cursor),
        ("order-1", 1)
    );
    assert_message(&app, "match 1 of 2 · wrapped to the start");
    press(&mut app, "/ running <Enter>");
    app.sync().unwrap();
    assert_eq!(app.stream().unwrap().name, "agent-1");
    assert_eq!(app.view.at.as_ref().unwrap().seq, app.seq);
    assert_message(&app, "/running: match 1 of 1");
    press(&mut app, "/ nowhere-at-all <Enter>");
    assert_message(&app, "no event of any stream matches");
}

#[test]
fn a_long_history_is_counted_a_range_at_a_time_saying_at_least_until_done() {
    let mut engine = crate::support::engine();
    let items = (0..45_000u64).map(|i| {
        let kind = if i % 1_000 == 999 { "Hit" } else { "Miss" };
        Ok(rewind::engine::ImportItem {
            at: format!("line {i}"),
            event: crate::support::ev("s", kind, json!({ "i": i })),
            version: None,
        })
    });
    engine.import(items, false).unwrap();
    let mut app = over(engine, (100, 30));
    press(&mut app, "g");
    app.sync().unwrap();
    // Not deterministic: each search and each poll counts a range at most.
    app.deterministic = false;
    press(&mut app, "/ Hit <Enter>");
    app.sync().unwrap();
    assert_eq!(app.cursor, 1_000);
    let mut said = vec![message(&app).to_string()];
    while app.counting() {
        app.dispatch(Action::Poll);
        said.push(message(&app).to_string());
    }
    assert!(
        said.len() >= 2,
        "45,000 events take more than one range: {said:?}"
    );
    assert!(said[0].contains("of ≥"), "{said:?}");
    assert_eq!(said.last().unwrap(), "/Hit: match 1 of 45");
    // The next one is counted on from the last, at once.
    press(&mut app, "n");
    assert!(!app.counting());
    assert_message(&app, "/Hit: match 2 of 45");
    // Another key's message is not overwritten by the count.
    press(&mut app, "/ Hi <Enter>");
    assert!(app.counting());
    press(&mut app, "'");
    assert_message(&app, "no mark set");
    while app.counting() {
        app.dispatch(Action::Poll);
    }
    assert_message(&app, "no mark set");
    press(&mut app, "m");
    while app.counting() {
        app.dispatch(Action::Poll);
    }
    assert!(!message(&app).contains("match"), "{}", message(&app));
}

#[test]
fn copy_says_when_the_terminal_may_not_get_it_and_y_writes_a_new_file_instead() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let mut app = order_1(&path);
    app.copy_note = Some("tmux's set-clipboard is off".into());
    press(&mut app, "y");
    assert_message(&app, "copied event v3");
    assert_message(&app, "but tmux's set-clipboard is off");
    assert_eq!(app.effects.len(), 1, "it is still sent");

    // Y asks for a file, with a name filled in; Enter writes the same text y copies.
    let Effect::Copy(copied) = app.effects.remove(0) else {
        panic!("not a copy")
    };
    press(&mut app, "Y");
    let name = app.prompt.as_ref().unwrap().text().to_string();
    assert_eq!(name, "order-1-event-v3.json");
    let target = dir.path().join(&name);
    app.prompt.as_mut().unwrap().set(target.to_str().unwrap());
    press(&mut app, "<Enter>");
    assert_message(&app, "wrote event v3 to");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        format!("{copied}\n")
    );
    // A file that exists is never written over.
    std::fs::write(&target, "mine").unwrap();
    press(&mut app, "Y");
    app.prompt.as_mut().unwrap().set(target.to_str().unwrap());
    press(&mut app, "<Enter>");
    assert_message(&app, "nothing written");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine");
    // The state's value under the cursor, named by its path.
    press(&mut app, "<Tab> j Y");
    let name = app.prompt.as_ref().unwrap().text().to_string();
    assert!(
        name.starts_with("order-1-v3-") && name.ends_with(".json"),
        "{name}"
    );
}

#[test]
fn prompts_edit_like_a_shell_line_recall_history_and_replace_the_text_they_open_with() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let mut app = order_1(&path);
    let typed = |app: &App| app.prompt.as_ref().unwrap().text().to_string();
    // Left, Ctrl-A, Ctrl-E, Ctrl-W, Ctrl-U as a shell has them.
    press(&mut app, "/ sta <Left> <Left> x <C-a> y <C-e> z");
    assert_eq!(typed(&app), "ysxtaz");
    press(&mut app, "<Space> two <C-w>");
    assert_eq!(typed(&app), "ysxtaz ");
    press(&mut app, "<C-u>");
    assert_eq!(typed(&app), "");
    press(&mut app, "Paid <Enter>");
    assert_eq!(app.cursor, 2);
    // Up recalls what was typed before at the same prompt, newest first; Down comes back.
    press(&mut app, "/ shipped <Enter> /");
    press(&mut app, "<Up>");
    assert_eq!(typed(&app), "shipped");
    press(&mut app, "<Up>");
    assert_eq!(typed(&app), "Paid");
    press(&mut app, "<Up>");
    assert_eq!(typed(&app), "Paid", "the oldest stays");
    press(&mut app, "<Down>");
    assert_eq!(typed(&app), "shipped");
    press(&mut app, "<Down>");
    assert_eq!(typed(&app), "");
    press(&mut app, "<Esc>");
    assert_eq!(
        app.history.get("search").unwrap(),
        &vec!["Paid".to_string(), "shipped".to_string()]
    );
    // t reopens with the filter selected: typing replaces it, a move keeps it.
    press(&mut app, "t Paid <Enter> t");
    assert!(app.prompt.as_ref().unwrap().selected);
    press(&mut app, "Placed");
    assert_eq!(typed(&app), "Placed");
    press(&mut app, "<Enter> t <End> X");
    assert_eq!(typed(&app), "PlacedX");
    press(&mut app, "<Esc>");
}

#[test]
fn go_to_moves_relatively_with_plus_and_minus() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = order_1(&orders(dir.path()));
    press(&mut app, ":1 <Enter> :+1 <Enter>");
    assert_eq!(app.cursor, 2);
    press(&mut app, ":+10 <Enter>");
    assert_eq!(app.cursor, 3, "stops at the newest");
    press(&mut app, ":-2 <Enter>");
    assert_eq!(app.cursor, 1);
    press(&mut app, ":-10 <Enter>");
    assert_eq!(app.cursor, 0, "stops at the start");
    press(&mut app, ":+x <Enter>");
    assert_message(&app, "neither a version nor");
}

#[test]
fn view_choices_and_prompt_history_are_remembered_between_runs() {
    use rewind::tui::memory::{self, Memory};
    let dir = tempfile::tempdir().unwrap();
    let path = orders(dir.path());
    let file = dir.path().join("config").join("debugger.json");
    let mut app = order_1(&path);
    press(&mut app, "T d o / Paid <Enter>");
    memory::save(&file, &Memory::of(&app)).unwrap();
    let (remembered, note) = memory::load(&file);
    assert_eq!(note, None);
    let mut again = order_1(&path);
    remembered.apply(&mut again);
    assert_eq!(again.times, rewind::tui::app::Times::Absolute);
    assert!(again.text_diff && again.zoomed);
    press(&mut again, "/ <Up>");
    assert_eq!(again.prompt.as_ref().unwrap().text(), "Paid");
    // A file that cannot be read is said, and the defaults are used; it is left as it was.
    std::fs::write(&file, "{ not json").unwrap();
    let (memory, note) = memory::load(&file);
    assert_eq!(memory, Memory::default());
    assert!(note.unwrap().contains("not readable"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "{ not json");
}

#[test]
fn enter_shows_a_value_whole_scrolled_both_ways_and_the_diff_counts_what_does_not_fit() {
    let mut engine = crate::support::engine();
    let long = "x".repeat(300);
    let many: serde_json::Map<String, Value> =
        (0..40).map(|i| (format!("k{i:02}"), json!(i))).collect();
    at(
        &mut engine,
        "s",
        "Set",
        json!({"long": long, "many": many}),
        0,
    );
    let more: serde_json::Map<String, Value> = (0..40)
        .map(|i| (format!("k{i:02}"), json!(i + 1)))
        .collect();
    at(&mut engine, "s", "Set", json!({ "many": more }), 1);
    let mut app = over(engine, (80, 24));
    // The diff pane: 41 changes do not fit; the last row counts the rest.
    let text = frame(&app, (80, 24));
    assert!(text.contains("37 more · D shows all"), "{text}");
    press(&mut app, "D");
    let Some(rewind::tui::app::Overlay::Viewer(viewer)) = &app.overlay else {
        panic!("no viewer");
    };
    assert_eq!(viewer.text.lines().count(), 40, "the whole diff");
    press(&mut app, "<Esc>");
    // Enter on the event: every line of it, pretty; G to the end, h/l sideways.
    press(&mut app, "k <Enter>");
    let viewer = |app: &App| match &app.overlay {
        Some(rewind::tui::app::Overlay::Viewer(v)) => v.clone(),
        other => panic!("no viewer: {other:?}"),
    };
    let lines = viewer(&app).text.lines().count();
    assert!(lines > 40, "{lines}");
    let text = frame(&app, (80, 24));
    assert!(text.contains(&format!("of {lines} ")), "{text}");
    press(&mut app, "G");
    assert_eq!(viewer(&app).top, lines - app.viewer_rows());
    press(&mut app, "g l l");
    assert_eq!(viewer(&app).left, 16);
    press(&mut app, "h w");
    assert!(viewer(&app).wrap);
    assert_eq!(viewer(&app).left, 0);
    // v hands it to the pager (the terminal loop runs it).
    press(&mut app, "v");
    assert!(matches!(
        app.effects.last(),
        Some(Effect::Page { editor: false, .. })
    ));
    press(&mut app, "q");
    assert!(app.overlay.is_none() && !app.quit);
    // In the state tree, Enter shows the value under the cursor; Space folds.
    press(&mut app, "<Tab> <Home> j <Enter>");
    let shown = viewer(&app);
    assert!(shown.title.contains("/long"), "{}", shown.title);
    assert_eq!(shown.text, format!("\"{long}\""));
}

#[test]
fn summaries_that_would_hold_up_a_held_key_are_given_when_the_keys_stop() {
    // A reducer that takes its time over every event (as replaying megabyte states does).
    let mut engine = crate::support::engine();
    engine
        .store()
        .set_meta(
            "default_reducer",
            "jq:(reduce range(0; 2000) as $i (0; . + $i)) as $burn | .state + .event.data",
        )
        .unwrap();
    let items = (0..200u64).map(|i| {
        Ok(rewind::engine::ImportItem {
            at: format!("line {i}"),
            event: crate::support::ev("s", "Set", json!({ "n": i })),
            version: None,
        })
    });
    engine.import(items, false).unwrap();
    let mut app = over(engine, (100, 30));
    assert!(!app.summarising(), "opening gives them all");
    app.deterministic = false;
    press(&mut app, "<PgUp>");
    app.sync().unwrap();
    let rows = app.view.events.len();
    assert!(rows > 10);
    assert!(app.summarising(), "a page of slow rows waits");
    let waiting = app.view.titles.iter().filter(|t| t.is_empty()).count();
    assert!(waiting > 0, "{:?}", app.view.titles);
    // When the keys stop, the loop polls, and they are given.
    app.dispatch(Action::Poll);
    assert!(!app.summarising());
    assert_eq!(app.view.titles.len(), rows);
    assert!(
        app.view.titles.iter().all(|t| t.starts_with("n → ")),
        "{:?}",
        app.view.titles
    );
}
