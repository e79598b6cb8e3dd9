//! Keys in bursts: a real terminal delivers several keys in one read, and the debugger's
//! loop applies them all before it loads and draws once. Whatever the bursts, the loop must
//! end on exactly the frame that `rewind render --keys` (one key at a time) draws, and every
//! frame it draws on the way must name one version in every pane and show that version's
//! state.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use rewind::tui::app::{App, Start};
use rewind::tui::keymap::{action_for, script};
use rewind::tui::{Input, drive, render_text};
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::{Value, json};

use crate::support::ev;

/// 2026-03-01T12:00:00Z, in µs.
const T0: i64 = 1_772_366_400_000_000;

/// Three streams, one per kind of reducer, with snapshots every 7 events: an order whose
/// nested state grows and shrinks (merge), an inventory of JSON Patch operations, and an
/// agent run of whole checkpoints (replace).
pub fn fixture(dir: &Path) -> PathBuf {
    let path = dir.join("bursts.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    engine
        .set_policy(
            None,
            &rewind::engine::Policy {
                every: Some(7),
                ..Default::default()
            },
        )
        .unwrap();
    engine
        .write(|engine| {
            let store = engine.store();
            for (name, reducer) in [("inventory", "patch"), ("agent", "replace")] {
                let stream = store.create_stream(name, None)?;
                store.set_stream_reducer(stream.id, Some(reducer))?;
            }
            Ok(())
        })
        .unwrap();
    let mut second = 0;
    let mut put = |engine: &mut Engine, stream: &str, kind: &str, data: Value| {
        let mut event = ev(stream, kind, data);
        event.time = Some(T0 + second * 1_000_000);
        second += 37;
        engine
            .append(event, rewind::engine::AppendOptions::default())
            .unwrap();
    };
    for i in 0..60_u64 {
        let mut patch = serde_json::Map::new();
        let line = format!("l{:02}", i % 11);
        patch.insert(
            "lines".into(),
            json!({ line: {"sku": format!("SKU-{}", i % 5), "qty": i % 4, "notes": {"n": i}} }),
        );
        patch.insert(
            "status".into(),
            json!(["placed", "paid", "packed"][(i % 3) as usize]),
        );
        if i % 8 == 5 {
            patch.insert(
                "lines".into(),
                json!({ format!("l{:02}", (i * 3) % 11): null }),
            );
        }
        put(
            &mut engine,
            "order",
            ["Placed", "Paid", "Packed"][(i % 3) as usize],
            Value::Object(patch),
        );
        if i % 2 == 0 {
            let sku = format!("SKU-{}", i % 6);
            let ops = if i < 12 {
                json!([{"op": "add", "path": format!("/{sku}"), "value": {"on_hand": i, "moves": []}}])
            } else {
                json!([
                    {"op": "replace", "path": format!("/{sku}/on_hand"), "value": i},
                    {"op": "add", "path": format!("/{sku}/moves/-"), "value": i}
                ])
            };
            put(&mut engine, "inventory", "Moved", ops);
        }
        if i % 3 == 0 {
            let messages: Vec<Value> = (i.saturating_sub(9)..=i)
                .map(|m| json!({"role": if m % 2 == 0 {"user"} else {"assistant"}, "n": m}))
                .collect();
            put(
                &mut engine,
                "agent",
                "Checkpoint",
                json!({"step": i, "messages": messages, "status": "running"}),
            );
        }
    }
    path
}

/// What the scripts are made of: every key that neither quits nor writes nor depends on
/// time, in every scope (events, state tree, lists, help, prompts). A word with spaces is
/// several keys, which bursts may split.
const WORDS: &[&str] = &[
    "j",
    "j",
    "j",
    "k",
    "k",
    "<PgDn>",
    "<PgUp>",
    "g",
    "G",
    "]",
    "[",
    "J",
    "K",
    "a",
    "<Tab>",
    "<Tab>",
    "m",
    "'",
    "d",
    "T",
    "h",
    "l",
    "z",
    "Z",
    "<Enter>",
    "<Space>",
    "<Down>",
    "<Up>",
    "<Home>",
    "<End>",
    "?",
    "n",
    "N",
    "b",
    "S",
    "y",
    "f",
    ":5 <Enter>",
    ":0 <Enter>",
    ":31 <Enter>",
    "/Paid <Enter>",
    "/SKU-3 <Enter>",
    "t Pa <Enter>",
    "t <Backspace> <Backspace> <Enter>",
];

/// The loop's input: bursts of keys, each delivered at once (as one read of a terminal
/// delivers them), with the loop's wait between two bursts either answered by the next
/// burst or timing out first (the loop then looks for appends), and Ctrl-C at the end.
struct Bursts {
    bursts: VecDeque<(VecDeque<KeyEvent>, bool)>,
    current: VecDeque<KeyEvent>,
}

impl Input for Bursts {
    fn poll(&mut self, timeout: Duration) -> std::io::Result<bool> {
        if !self.current.is_empty() {
            return Ok(true);
        }
        if timeout.is_zero() {
            return Ok(false);
        }
        match self.bursts.front_mut() {
            Some((_, idle)) if *idle => {
                *idle = false;
                Ok(false)
            }
            Some(_) => {
                self.current = self.bursts.pop_front().map(|b| b.0).unwrap_or_default();
                Ok(true)
            }
            None => {
                self.current
                    .push_back(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
                Ok(true)
            }
        }
    }

    fn read(&mut self) -> std::io::Result<Event> {
        Ok(Event::Key(
            self.current.pop_front().expect("poll said a key is queued"),
        ))
    }
}

fn start(stream: &str, at: u64, (width, height): (u16, u16)) -> Start {
    Start {
        stream: Some(stream.into()),
        at: Some(at),
        width,
        height,
        deterministic: true,
        ..Start::default()
    }
}

fn app(path: &Path, start: &Start) -> App {
    App::new(
        Engine::new(Store::open(path, OpenMode::Existing).unwrap()),
        start,
    )
    .unwrap()
}

/// The frame `rewind render --keys` prints: each key applied and loaded in turn.
pub fn rendered(path: &Path, start: &Start, keys: &[KeyEvent]) -> String {
    let mut app = app(path, start);
    for key in keys {
        if let Some(action) = action_for(&app, *key) {
            app.dispatch(action);
        }
    }
    render_text(&app, start.width, start.height).unwrap()
}

/// The number after `needle` in `text` (`State @ v1,204` → 1204), if `needle` is there.
fn named(text: &str, needle: &str) -> Option<u64> {
    let at = text.find(needle)? + needle.len();
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Every version a frame names: the status line, the state, diff and event panes, and the
/// event list's cursor row, where each is on screen (an overlay or a prompt hides some).
fn versions_named(frame: &str) -> Vec<(&'static str, u64)> {
    let mut names = Vec::new();
    let lines: Vec<&str> = frame.lines().collect();
    if let Some(status) = lines.last().and_then(|l| l.strip_prefix(" v"))
        && let Some(v) = named(status, "")
    {
        names.push(("status line", v));
    }
    for line in &lines {
        if let Some(v) = named(line, "State @ v") {
            names.push(("state pane", v));
        }
        if let Some(rest) = line.split("┌ Diff v").nth(1)
            && let Some(v) = named(rest, "→ v")
        {
            names.push(("diff pane", v));
        }
        if let Some(v) = named(line, "┌ Event v") {
            names.push(("event pane", v));
        }
        if line.contains("version 0: the empty state") {
            names.push(("event pane", 0));
        }
        // The event list's cursor row: `│▶  12 ◆ Paid …` (one stream) or `│▶#40 … s/v12 …`.
        if let Some(row) = line.split("││▶").nth(1).or_else(|| line.split("│▶").nth(2)) {
            let version = if row.starts_with('#') {
                row.split_whitespace()
                    .find_map(|w| w.rsplit_once("/v").and_then(|(_, v)| v.parse().ok()))
            } else {
                named(row.trim_start(), "")
            };
            if let Some(v) = version {
                names.push(("event list", v));
            }
        }
    }
    names
}

/// Runs the loop on `bursts` and checks every frame it draws; returns the last one.
fn looped(path: &Path, start: &Start, bursts: Vec<(Vec<KeyEvent>, bool)>) -> String {
    let mut app = app(path, start);
    let mut cold = Engine::new(Store::open(path, OpenMode::ReadOnly).unwrap());
    let mut input = Bursts {
        bursts: bursts
            .into_iter()
            .map(|(keys, idle)| (keys.into(), idle))
            .collect(),
        current: VecDeque::new(),
    };
    let mut last = String::new();
    let mut frames = 0;
    drive(&mut app, &mut input, |app| {
        frames += 1;
        let frame = render_text(app, start.width, start.height).unwrap();
        let at = app.shown().clone();
        for (pane, version) in versions_named(&frame) {
            assert_eq!(
                version, at.cursor,
                "frame {frames}: the {pane} names v{version}, the view was loaded at v{}:\n{frame}",
                at.cursor
            );
        }
        // The state shown is the state at the version named.
        let (stream_id, _) = at.stream.expect("the fixture has streams");
        let stream = app.streams.iter().find(|s| s.id == stream_id).unwrap();
        if app.view.state_error.is_none() {
            let truth = cold.state_of(stream, Target::Version(at.cursor)).unwrap();
            assert_eq!(
                *app.view.state, *truth.state,
                "frame {frames}: the state shown is not {}'s v{}:\n{frame}",
                stream.name, at.cursor
            );
        }
        last = frame;
        Ok(())
    })
    .unwrap();
    last
}

fn keys_of(words: &[usize]) -> Vec<KeyEvent> {
    let text: Vec<&str> = words.iter().map(|w| WORDS[*w]).collect();
    script(&text.join(" ")).unwrap()
}

/// Cuts the keys into bursts after every key marked, each burst with its idle flag.
fn cut(keys: &[KeyEvent], cuts: &[(bool, bool)]) -> Vec<(Vec<KeyEvent>, bool)> {
    let mut bursts = vec![(Vec::new(), false)];
    for (i, key) in keys.iter().enumerate() {
        bursts.last_mut().unwrap().0.push(*key);
        let (end, idle) = cuts.get(i).copied().unwrap_or((false, false));
        if end && i + 1 < keys.len() {
            bursts.push((Vec::new(), idle));
        }
    }
    bursts
}

fn shared_fixture() -> &'static Path {
    static FIXTURE: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    let (_, path) = FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = fixture(dir.path());
        (dir, path)
    });
    path
}

#[test]
fn the_bursts_the_issue_reported_end_where_single_keys_end() {
    let path = shared_fixture();
    for (stream, at, keys) in [
        ("order", 40, "g <Tab>"),
        ("order", 30, "j j j j j j j j j j j j j j j j j j j j <Tab>"),
        ("agent", 12, "a G <Tab>"),
        ("inventory", 20, "m k k <Tab> <Down> <Tab> G"),
        ("order", 50, "<Tab> z <Tab> g j j j <Tab> <Down>"),
    ] {
        let start = start(stream, at, (100, 30));
        let keys = script(keys).unwrap();
        let want = rendered(path, &start, &keys);
        let got = looped(path, &start, vec![(keys.clone(), false)]);
        assert_eq!(got, want, "{stream} at v{at}, keys in one burst");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_bursts_end_on_the_frame_single_keys_end_on(
        stream in 0..3_usize,
        at in 0..40_u64,
        small in any::<bool>(),
        words in prop::collection::vec(0..WORDS.len(), 1..24),
        cuts in prop::collection::vec((prop::bool::weighted(0.3), any::<bool>()), 0..80),
    ) {
        let path = shared_fixture();
        let name = ["order", "inventory", "agent"][stream];
        let head = match name { "order" => 60, "inventory" => 30, _ => 20 };
        let size = if small { (80, 24) } else { (110, 32) };
        let start = start(name, at.min(head), size);
        let keys = keys_of(&words);
        let want = rendered(path, &start, &keys);
        let got = looped(path, &start, cut(&keys, &cuts));
        prop_assert_eq!(got, want);
    }
}
