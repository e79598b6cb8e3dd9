//! Key scripts and render: any script over a small database with three streams (merge,
//! patch, replace), at any size. Nothing panics, the frame after the last key has the
//! size asked for, and the view names the version it shows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::tui::app::{App, Start};
use rewind::tui::keymap::{action_for, script};
use rewind::{Engine, Store};
use serde_json::json;

thread_local! {
    /// The database every input starts from, built once and copied in memory per input.
    static TEMPLATE: Store = build().store().copy_in_memory().expect("copy");
}

fn fixture() -> Engine {
    Engine::new(TEMPLATE.with(|t| t.copy_in_memory().expect("copy")))
}

fn build() -> Engine {
    let mut engine = Engine::new(Store::open_in_memory().expect("memory"));
    engine
        .write(|engine| {
            let store = engine.store();
            for (name, reducer) in [("inventory", "patch"), ("agent", "replace")] {
                let stream = store.create_stream(name, None)?;
                store.set_stream_reducer(stream.id, Some(reducer))?;
            }
            Ok(())
        })
        .expect("streams");
    for i in 0..12_i64 {
        let events = [
            (
                "order",
                json!({"status": if i % 2 == 0 { "placed" } else { "paid" }, "lines": {format!("l{i}"): {"qty": i}}}),
            ),
            (
                "inventory",
                json!([{"op": "add", "path": format!("/k{i}"), "value": i}]),
            ),
            ("agent", json!({"step": i, "messages": [{"n": i}]})),
        ];
        for (stream, data) in events {
            let mut event = rewind::NewEvent {
                stream: stream.into(),
                kind: "E".into(),
                data,
                meta: None,
                time: Some(1_772_366_400_000_000 + i * 60_000_000),
                idempotency_key: None,
            };
            event.kind = format!("E{}", i % 3);
            engine
                .append(event, rewind::engine::AppendOptions::default())
                .expect("append");
        }
    }
    engine
        .take_snapshot("order", rewind::Target::Version(5), "manual", Some("five"))
        .expect("snapshot");
    engine
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (width, height) = (u16::from(data[0]) + 1, u16::from(data[1] % 80) + 1);
    let Ok(keys) = script(&String::from_utf8_lossy(&data[2..])) else {
        return;
    };
    let start = Start {
        width,
        height,
        deterministic: true,
        ..Start::default()
    };
    let Ok(mut app) = App::new(fixture(), &start) else {
        return;
    };
    // The view is checked after every key; the frame is drawn after the last one only
    // (drawing is most of the cost, and every prefix of a script is an input of its own).
    for key in keys.into_iter().take(64) {
        if let Some(action) = action_for(&app, key) {
            app.dispatch(action);
        }
        if app.view.state_error.is_none() && app.stream().is_some() {
            assert_eq!(
                app.shown().cursor,
                app.cursor,
                "the view is where the model is"
            );
        }
    }
    let frame = rewind::tui::render_text(&app, width, height).expect("render");
    assert_eq!(frame.lines().count(), usize::from(height));
});
