//! Export then import reproduces a database: reducers, policies, labelled snapshots and so
//! every state; importing again changes nothing, and a line that would change something is
//! refused, naming it.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use rewind::engine::{Policy, WriteReport};
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::{Value, json};

use crate::support::{append, engine};

fn export(engine: &mut Engine, stream: Option<&str>, since_seq: i64) -> String {
    let mut text = String::new();
    engine
        .export(stream, since_seq, |line| {
            text.push_str(&line.to_string());
            text.push('\n');
            Ok(())
        })
        .unwrap();
    text
}

fn import(engine: &mut Engine, text: &str) -> rewind::Result<WriteReport> {
    engine.import(
        rewind::jsonl::read_lines(Cursor::new(text.to_string()), "f.jsonl"),
        false,
    )
}

fn refused(engine: &mut Engine, text: &str) -> String {
    rewind::error::describe(&import(engine, text).unwrap_err())
}

fn state(engine: &mut Engine, stream: &str) -> Value {
    (*engine.state_at(stream, Target::Head).unwrap().state).clone()
}

fn event_count(engine: &Engine) -> u64 {
    engine.store().event_totals().unwrap().0
}

/// The README's writing example: a merge stream, a patch stream, a jq stream.
fn shop() -> Engine {
    let mut shop = engine();
    shop.write(|e| {
        let store = e.store();
        store.create_stream("stock", Some("patch"))?;
        store.create_stream(
            "acct",
            Some("jq:.state.balance += .event.data.amount | .state"),
        )?;
        Ok(())
    })
    .unwrap();
    append(
        &mut shop,
        "order-1",
        json!({"status": "placed", "total": 30}),
    );
    append(
        &mut shop,
        "stock",
        json!([{"op": "add", "path": "/apples", "value": 12}]),
    );
    append(&mut shop, "acct", json!({"amount": 25}));
    shop
}

#[test]
fn a_streams_reducer_is_set_before_its_events_apply() {
    let mut shop = shop();
    let mut copy = engine();
    import(&mut copy, &export(&mut shop, None, 0)).unwrap();
    for stream in ["order-1", "stock", "acct"] {
        assert_eq!(
            state(&mut copy, stream),
            state(&mut shop, stream),
            "{stream}"
        );
    }
    assert_eq!(state(&mut copy, "stock"), json!({"apples": 12}));
    let stock = copy.store().require_stream("stock").unwrap();
    assert!(stock.reducer_override && stock.reducer == "patch");
    assert!(
        !copy
            .store()
            .require_stream("order-1")
            .unwrap()
            .reducer_override
    );
}

#[test]
fn an_existing_stream_with_another_reducer_is_refused_naming_both_and_nothing_changes() {
    let mut shop = shop();
    let file = export(&mut shop, None, 0);
    let mut other = engine();
    append(&mut other, "stock", json!({"apples": 3}));
    let err = refused(&mut other, &file);
    assert!(
        err.contains("f.jsonl line 4")
            && err.contains(
                r#"stream "stock" uses the reducer "merge" here and "patch" in the file"#
            ),
        "{err}"
    );
    assert_eq!(event_count(&other), 1);
    assert!(other.store().stream("acct").unwrap().is_none());
}

#[test]
fn a_new_stream_keeps_the_files_default_where_the_database_has_another() {
    let mut source = engine();
    append(&mut source, "a", json!({"x": 1}));
    append(&mut source, "a", json!({"y": 2}));
    let file = export(&mut source, None, 0);
    let mut target = engine();
    target
        .store()
        .set_meta("default_reducer", "replace")
        .unwrap();
    append(&mut target, "mine", json!({"z": 0}));
    import(&mut target, &file).unwrap();
    assert_eq!(state(&mut target, "a"), json!({"x": 1, "y": 2}));
    assert_eq!(target.store().require_stream("a").unwrap().reducer, "merge");
    assert_eq!(target.store().default_reducer().unwrap(), "replace");
    // Into a database without streams the file's default becomes the database's.
    let patch_file = r#"{"rewind":{"format":1,"default_reducer":"patch"}}
{"stream":"p","type":"T","data":[{"op":"add","path":"/n","value":1}]}
"#;
    let mut empty = engine();
    assert_eq!(import(&mut empty, patch_file).unwrap().settings, 1);
    assert_eq!(empty.store().default_reducer().unwrap(), "patch");
    assert!(!empty.store().require_stream("p").unwrap().reducer_override);
    assert_eq!(state(&mut empty, "p"), json!({"n": 1}));
}

#[test]
fn an_identical_event_at_a_stored_version_is_skipped_and_a_different_one_refused() {
    let mut shop = shop();
    let file = export(&mut shop, None, 0);
    let mut copy = engine();
    let first = import(&mut copy, &file).unwrap();
    assert_eq!((first.appended, first.duplicates), (3, 0));
    let again = import(&mut copy, &file).unwrap();
    assert_eq!(
        (again.appended, again.duplicates, again.snapshots),
        (0, 3, 0)
    );
    assert!(again.created_streams.is_empty() && again.settings == 0);

    let before = export(&mut copy, None, 0);
    // Line 5 is order-1's first event (after the header and three stream lines).
    let edited = |edit: &dyn Fn(&mut Value)| -> String {
        let mut lines: Vec<Value> = file
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        edit(&mut lines[4]);
        lines.iter().map(|l| format!("{l}\n")).collect()
    };
    for (edit, needle) in [
        (
            &(|l: &mut Value| l["data"]["total"] = json!(31)) as &dyn Fn(&mut Value),
            "data at /total: 30 stored, 31 given",
        ),
        (
            &|l: &mut Value| l["type"] = json!("Reset"),
            r#"type "Set" stored, "Reset" given"#,
        ),
        (
            &|l: &mut Value| l["time"] = json!("2001-01-01T00:00:00Z"),
            "2001-01-01T00:00:00Z given",
        ),
        (
            &|l: &mut Value| l["meta"] = json!({"by": "x"}),
            r#"meta none stored, {"by":"x"} given"#,
        ),
    ] {
        let changed = edited(edit);
        let err = refused(&mut copy, &changed);
        assert!(
            err.contains("f.jsonl line 5")
                && err
                    .contains(r#"stream "order-1" version 1 is already stored with other content"#)
                && err.contains(needle),
            "{err}"
        );
    }
    assert_eq!(export(&mut copy, None, 0), before);
}

#[test]
fn lines_without_a_version_are_appended_again_unless_their_key_is_stored() {
    let mut db = engine();
    let plain = "{\"stream\":\"s\",\"type\":\"T\",\"data\":{\"n\":1}}\n";
    import(&mut db, plain).unwrap();
    import(&mut db, plain).unwrap();
    assert_eq!(db.store().require_stream("s").unwrap().head, 2);
    let keyed = "{\"stream\":\"s\",\"type\":\"T\",\"data\":{\"n\":1},\"idempotency_key\":\"k\"}\n";
    let first = import(&mut db, &keyed.repeat(2)).unwrap();
    assert_eq!((first.appended, first.duplicates), (1, 1));
    let again = import(&mut db, keyed).unwrap();
    assert_eq!((again.appended, again.duplicates), (0, 1));
    let err = refused(&mut db, &keyed.replace("\"n\":1", "\"n\":2"));
    assert!(
        err.contains("f.jsonl line 1")
            && err.contains(r#"idempotency key "k" is already used by stream "s" version 3"#)
            && err.contains("data at /n: 1 stored, 2 given"),
        "{err}"
    );
    assert_eq!(db.store().require_stream("s").unwrap().head, 3);
}

#[test]
fn policies_apply_where_the_database_has_none_and_must_agree_where_it_has_one() {
    let mut source = shop();
    let every = |n| Policy {
        every: Some(n),
        ..Policy::default()
    };
    source.set_policy(None, &every(50)).unwrap();
    source.set_policy(Some("stock"), &every(5)).unwrap();
    let file = export(&mut source, None, 0);
    let mut copy = engine();
    let report = import(&mut copy, &file).unwrap();
    assert_eq!(copy.own_policy(None).unwrap(), every(50));
    assert_eq!(copy.own_policy(Some("stock")).unwrap(), every(5));
    assert_eq!(copy.own_policy(Some("acct")).unwrap(), Policy::default());
    // patch and jq for two streams, and the two policies.
    assert_eq!(report.settings, 4);
    let mut other = engine();
    other.set_policy(None, &every(7)).unwrap();
    let err = refused(&mut other, &file);
    assert!(
        err.contains("f.jsonl line 1")
            && err.contains(
                r#"the database has the policy {"every":7} here and {"every":50} in the file"#
            ),
        "{err}"
    );
    assert_eq!(event_count(&other), 0);
}

#[test]
fn settings_lines_out_of_place_are_refused_naming_the_line() {
    let header = r#"{"rewind":{"format":1}}"#;
    let event = r#"{"stream":"s","type":"T","data":{}}"#;
    for (text, needle) in [
        (
            format!("{event}\n{header}\n"),
            "f.jsonl line 2: a rewind header must be the file's first line",
        ),
        (
            format!("{event}\n{{\"rewind_stream\":{{\"name\":\"s\"}}}}\n"),
            "f.jsonl line 2: the settings of stream \"s\" come after its events",
        ),
        (
            format!("{event}\n{{\"rewind_snapshot\":{{\"stream\":\"s\",\"version\":2}}}}\n"),
            "f.jsonl line 2: a snapshot of stream \"s\" at version 2 comes before that event",
        ),
        (
            "{\"rewind\":{\"format\":3}}\n".to_string(),
            "f.jsonl line 1: the file is in format 3",
        ),
        (
            "{\"rewind\":{\"format\":1},\"stream\":\"s\"}\n".to_string(),
            "f.jsonl line 1: a line is an event or one of",
        ),
        (
            "{\"rewind_stream\":{\"name\":\"s\",\"reducer\":\"jq:.[\"}}\n".to_string(),
            "f.jsonl line 1: invalid reducer",
        ),
        (
            "{\"rewind\":{\"format\":1,\"policy\":{\"schedules\":[\"soon\"]}}}\n".to_string(),
            "f.jsonl line 1: \"soon\" is not a cron schedule",
        ),
        (
            "{\"rewind_snapshot\":{\"stream\":\"s\",\"version\":0}}\n".to_string(),
            "f.jsonl line 1: a snapshot of version 0",
        ),
    ] {
        let mut db = engine();
        let err = refused(&mut db, &text);
        assert!(err.contains(needle), "{text}\n{err}");
        assert_eq!(event_count(&db), 0);
    }
}

#[test]
fn an_old_export_of_events_only_still_imports() {
    let old = "{\"data\":{\"status\":\"placed\"},\"seq\":1,\"stream\":\"order-1\",\"time\":\"2026-05-01T07:30:00Z\",\"type\":\"OrderPlaced\",\"version\":1}\n\
               {\"data\":{\"status\":\"paid\"},\"seq\":2,\"stream\":\"order-1\",\"time\":\"2026-05-01T07:31:00Z\",\"type\":\"OrderPaid\",\"version\":2}\n";
    let mut db = engine();
    let report = import(&mut db, old).unwrap();
    assert_eq!((report.appended, report.settings), (2, 0));
    assert_eq!(state(&mut db, "order-1"), json!({"status": "paid"}));
    assert_eq!(import(&mut db, old).unwrap().duplicates, 2);
}

#[test]
fn a_catch_up_export_carries_the_reducers_of_its_streams_but_no_policies() {
    let mut source = shop();
    source
        .set_policy(
            Some("stock"),
            &Policy {
                every: Some(5),
                ..Policy::default()
            },
        )
        .unwrap();
    let mut replica = engine();
    import(&mut replica, &export(&mut source, None, 0)).unwrap();
    // New since the replica's import: a patch stream, and an event of stock.
    source
        .write(|e| e.store().create_stream("shelf", Some("patch")).map(|_| ()))
        .unwrap();
    append(
        &mut source,
        "shelf",
        json!([{"op": "add", "path": "/a", "value": 1}]),
    );
    append(
        &mut source,
        "stock",
        json!([{"op": "add", "path": "/pears", "value": 4}]),
    );
    let tail = export(&mut source, None, 3);
    let mut lines: Vec<Value> = tail
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0],
        json!({"rewind": {"format": 2, "default_reducer": "merge"}})
    );
    // Each stream line carries the head the stream had (checked apart: its hash).
    for (line, version) in [(1, 1), (2, 2)] {
        let head = lines[line]["rewind_stream"]
            .as_object_mut()
            .unwrap()
            .remove("head")
            .unwrap();
        assert_eq!(head["version"], json!(version), "{head}");
        assert_eq!(head["hash"].as_str().unwrap().len(), 64);
    }
    assert_eq!(
        lines[1],
        json!({"rewind_stream": {"name": "shelf", "reducer": "patch"}})
    );
    assert_eq!(
        lines[2],
        json!({"rewind_stream": {"name": "stock", "reducer": "patch"}})
    );
    assert_eq!(lines.len(), 5);
    import(&mut replica, &tail).unwrap();
    assert_eq!(export(&mut replica, None, 0), export(&mut source, None, 0));
    assert_eq!(state(&mut replica, "shelf"), json!({"a": 1}));
    // One stream's export carries its own policy, not the database's.
    let only = export(&mut source, Some("stock"), 0);
    let mut only: Vec<Value> = only
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        only[0],
        json!({"rewind": {"format": 2, "default_reducer": "merge"}})
    );
    only[1]["rewind_stream"]
        .as_object_mut()
        .unwrap()
        .remove("head")
        .unwrap();
    assert_eq!(
        only[1],
        json!({"rewind_stream": {"name": "stock", "policy": {"every": 5}, "reducer": "patch"}})
    );
}

#[test]
fn labelled_and_manual_snapshots_are_taken_again_at_their_versions() {
    let mut source = engine();
    for i in 0..10 {
        append(&mut source, "s", json!({ "i": i }));
    }
    source
        .take_snapshot("s", Target::Version(3), "manual", Some("three"))
        .unwrap();
    source
        .take_snapshot("s", Target::Version(7), "manual", None)
        .unwrap();
    let file = export(&mut source, None, 0);
    assert!(file.contains(
        "\"version\":3}\n{\"rewind_snapshot\":{\"label\":\"three\",\"stream\":\"s\",\"version\":3}}\n"
    ), "{file}");
    let mut copy = engine();
    assert_eq!(import(&mut copy, &file).unwrap().snapshots, 2);
    let kept = |e: &Engine| -> Vec<(u64, String, Option<String>)> {
        e.store()
            .snapshots(None)
            .unwrap()
            .into_iter()
            .map(|s| (s.version, s.trigger, s.label))
            .collect()
    };
    assert_eq!(kept(&copy), kept(&source));
    assert_eq!(import(&mut copy, &file).unwrap().snapshots, 0);
    let relabelled = file.replace("\"three\"", "\"four\"");
    let err = refused(&mut copy, &relabelled);
    assert!(
        err.contains("f.jsonl line 6")
            && err.contains(
                r#"a snapshot at version 3 labelled "three" here and "four" in the file"#
            ),
        "{err}"
    );
}

// ---- the demo, through the binary ---------------------------------------------------------

fn rewind(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = rewind(dir, args);
    assert_eq!(code, 0, "rewind {args:?}\n{stderr}");
    stdout
}

/// The demo in `dir` with a database policy, a stream policy and a labelled snapshot added,
/// exported, and imported into a new database `copy.db`: the paths of the three.
fn demo_and_copy(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    ok(dir, &["demo", "--path", "d.db", "--no-open"]);
    ok(
        dir,
        &["policy", "d.db", "--every", "40", "--keep-last", "9"],
    );
    ok(
        dir,
        &["policy", "d.db", "--stream", "inventory", "--every", "25"],
    );
    ok(
        dir,
        &[
            "snapshot",
            "d.db",
            "order-1042",
            "--at",
            "3",
            "--label",
            "paid",
        ],
    );
    ok(dir, &["export", "d.db", "--output", "d.jsonl"]);
    let out = ok(dir, &["import", "copy.db", "d.jsonl"]);
    assert!(
        out.starts_with("imported 10,950 events, 0 already there"),
        "{out}"
    );
    (dir.join("d.db"), dir.join("d.jsonl"), dir.join("copy.db"))
}

fn labelled(path: &Path) -> BTreeMap<(String, u64), (String, Option<String>)> {
    let dir = path.parent().unwrap();
    let rows: Value =
        serde_json::from_str(&ok(dir, &["snapshots", path.to_str().unwrap(), "--json"])).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|s| s["trigger"] == "manual" || !s["label"].is_null())
        .map(|s| {
            (
                (
                    s["stream"].as_str().unwrap().to_string(),
                    s["version"].as_u64().unwrap(),
                ),
                (
                    s["trigger"].as_str().unwrap().to_string(),
                    s["label"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

#[test]
fn the_demo_survives_export_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let (source, _, copy) = demo_and_copy(dir.path());
    let source = &source;
    let mut a = Engine::new(Store::open(source, OpenMode::ReadOnly).unwrap());
    let mut b = Engine::new(Store::open(&copy, OpenMode::ReadOnly).unwrap());
    let streams = a.store().streams().unwrap();
    assert_eq!(streams.len(), 1206);
    let shape = |s: &rewind::model::StreamInfo| {
        (
            s.name.clone(),
            s.reducer.clone(),
            s.reducer_override,
            s.head,
        )
    };
    assert_eq!(
        streams.iter().map(shape).collect::<Vec<_>>(),
        b.store()
            .streams()
            .unwrap()
            .iter()
            .map(shape)
            .collect::<Vec<_>>()
    );
    for s in &streams {
        for v in [s.head, s.head / 2, 1] {
            let at = Target::Version(v);
            assert_eq!(
                a.state_at(&s.name, at).unwrap().state,
                b.state_at(&s.name, at).unwrap().state,
                "{} v{v}",
                s.name
            );
        }
        assert_eq!(
            a.own_policy(Some(&s.name)).unwrap(),
            b.own_policy(Some(&s.name)).unwrap(),
            "{}",
            s.name
        );
    }
    // What people see: reducer and policy output are the same for both files.
    let show = |path: &Path, args: &[&str]| {
        let mut all = vec![args[0], path.to_str().unwrap()];
        all.extend(&args[1..]);
        ok(path.parent().unwrap(), &all)
    };
    for args in [
        &["reducer"][..],
        &["reducer", "--stream", "inventory"],
        &["reducer", "--stream", "account-ACC-1001"],
        &["reducer", "--stream", "agent-run-7"],
        &["reducer", "--stream", "order-1042"],
        &["policy", "--json"],
        &["policy", "--stream", "inventory", "--json"],
        &["policy", "--stream", "order-1042", "--json"],
    ] {
        assert_eq!(show(source, args), show(&copy, args), "{args:?}");
    }
    let marks = labelled(source);
    assert_eq!(marks.len(), 3, "{marks:?}");
    assert_eq!(labelled(&copy), marks);
}

#[test]
fn importing_the_demo_twice_imports_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_, file, copy) = demo_and_copy(dir.path());
    let before = labelled(&copy);
    let out = ok(dir.path(), &["import", "copy.db", "d.jsonl"]);
    assert!(
        out.starts_with("imported 0 events, 10,950 already there (0 new streams, 0 settings applied, 0 snapshots)"),
        "{out}"
    );
    assert_eq!(labelled(&copy), before);
    let exported = ok(dir.path(), &["export", "copy.db"]);
    assert_eq!(exported, std::fs::read_to_string(file).unwrap());
}

#[test]
fn a_modified_line_of_the_demo_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, file, copy) = demo_and_copy(dir.path());
    let text = std::fs::read_to_string(file).unwrap();
    let (index, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("\"stream\":\"order-1042\"") && l.ends_with("\"version\":2}"))
        .unwrap();
    let mut event: Value = serde_json::from_str(line).unwrap();
    event["data"]["note"] = json!("edited");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[index] = event.to_string();
    // A new event at the end too: it must not land either.
    lines.push(r#"{"stream":"order-1042","type":"Late","data":{}}"#.into());
    let edited = dir.path().join("edited.jsonl");
    std::fs::write(&edited, lines.join("\n")).unwrap();
    let count = |path: &Path| {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    let before = count(&copy);
    let (code, _, err) = rewind(dir.path(), &["import", "copy.db", edited.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("edited.jsonl line {}", index + 1))
            && err
                .contains(r#"stream "order-1042" version 2 is already stored with other content"#)
            && err.contains(r#"data at /note: absent stored, "edited" given"#)
            && err.contains("nothing was imported"),
        "{err}"
    );
    assert_eq!(count(&copy), before);
}
