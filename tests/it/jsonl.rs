//! The JSONL reader and the import behind it take outside input: arbitrary bytes, arbitrary
//! lines and mutated valid exports never make them panic, and every error names the line it
//! is about. (A stand-in for a fuzz target until the project has a fuzz/ folder.)

use std::io::Cursor;

use proptest::prelude::*;
use rewind::Target;
use serde_json::json;

use crate::support::{append, engine};

/// The source name the tests read under.
const SOURCE: &str = "in.jsonl";

/// Checks that an error names a line of `text` that holds something (not a blank line).
fn names_a_line(err: &rewind::Error, text: &[u8]) -> Result<(), TestCaseError> {
    let message = rewind::error::describe(err);
    let number = message
        .split(&format!("{SOURCE} line "))
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse::<usize>().ok())
        });
    let Some(number) = number else {
        return Err(TestCaseError::fail(format!("no line named: {message}")));
    };
    let line = text.split(|b| *b == b'\n').nth(number.wrapping_sub(1));
    prop_assert!(
        line.is_some_and(|l| !l.trim_ascii().is_empty()),
        "line {number} is blank or missing: {message}"
    );
    Ok(())
}

/// Reads `text` and imports it into a small database; checks every error it meets.
fn read_and_import(text: &[u8]) -> Result<(), TestCaseError> {
    for record in rewind::jsonl::read_lines(Cursor::new(text), SOURCE) {
        if let Err(err) = record {
            names_a_line(&err, text)?;
        }
    }
    let mut db = engine();
    append(&mut db, "s", json!({"a": 1}));
    let before = db.store().event_totals().unwrap();
    match db.import(rewind::jsonl::read_lines(Cursor::new(text), SOURCE), false) {
        Ok(_) => {}
        Err(err) => {
            names_a_line(&err, text)?;
            prop_assert_eq!(db.store().event_totals().unwrap(), before);
        }
    }
    Ok(())
}

/// A valid export with settings, snapshots, meta and keys: what mutations start from.
fn valid_export() -> String {
    let mut db = engine();
    db.write(|e| e.store().create_stream("stock", Some("patch")).map(|_| ()))
        .unwrap();
    append(
        &mut db,
        "order",
        json!({"status": "placed", "n": [1, 2.5, null]}),
    );
    append(
        &mut db,
        "stock",
        json!([{"op": "add", "path": "/apples", "value": 12}]),
    );
    let mut keyed = crate::support::ev("order", "Paid", json!({"status": "paid"}));
    keyed.idempotency_key = Some("k-1".into());
    keyed.meta = Some(json!({"by": "test"}));
    db.append(keyed, rewind::engine::AppendOptions::default())
        .unwrap();
    db.set_policy(
        None,
        &rewind::engine::Policy {
            every: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    db.take_snapshot("order", Target::Version(1), "manual", Some("one"))
        .unwrap();
    let mut text = String::new();
    db.export(None, 0, |line| {
        text.push_str(&line.to_string());
        text.push('\n');
        Ok(())
    })
    .unwrap();
    text
}

/// One edit of a text: delete, insert or replace a byte, or drop, repeat or swap lines.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Insert(usize, u8),
    Replace(usize, u8),
    DropLine(usize),
    RepeatLine(usize),
    SwapLines(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes that matter to JSON and to the format, and any byte at all.
    let byte = prop_oneof![
        prop::sample::select(b"{}[]\":,0123456789-.eE\\ntfu \n\x00\xff".to_vec()),
        any::<u8>(),
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Replace(i, b)),
        any::<usize>().prop_map(Mutation::DropLine),
        any::<usize>().prop_map(Mutation::RepeatLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
    ]
}

fn apply(text: &mut Vec<u8>, m: &Mutation) {
    let lines =
        |text: &[u8]| -> Vec<Vec<u8>> { text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect() };
    match *m {
        Mutation::Delete(i) if !text.is_empty() => {
            text.remove(i % text.len());
        }
        Mutation::Insert(i, b) => text.insert(i % (text.len() + 1), b),
        Mutation::Replace(i, b) if !text.is_empty() => {
            let at = i % text.len();
            text[at] = b;
        }
        Mutation::DropLine(i) | Mutation::RepeatLine(i) | Mutation::SwapLines(i, _) => {
            let mut all = lines(text);
            let n = all.len();
            match *m {
                Mutation::DropLine(_) => {
                    all.remove(i % n);
                }
                Mutation::RepeatLine(_) => {
                    let line = all[i % n].clone();
                    all.insert(i % n, line);
                }
                Mutation::SwapLines(_, j) => all.swap(i % n, j % n),
                _ => {}
            }
            *text = all.join(&b'\n');
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_name_their_line(
        text in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        read_and_import(&text)?;
    }

    #[test]
    fn arbitrary_json_lines_never_panic_and_errors_name_their_line(
        lines in prop::collection::vec(
            prop_oneof![
                Just(r#"{"rewind":{"format":1}}"#.to_string()),
                Just(r#"{"rewind_stream":{"name":"s","reducer":"patch"}}"#.to_string()),
                Just(r#"{"rewind_snapshot":{"stream":"s","version":1}}"#.to_string()),
                Just(r#"{"stream":"s","type":"T","data":{"a":2},"version":1}"#.to_string()),
                Just(r#"{"stream":"s","type":"T","data":{},"idempotency_key":"k"}"#.to_string()),
                "[ -~]{0,40}",
            ],
            0..8,
        ),
    ) {
        read_and_import(lines.join("\n").as_bytes())?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_exports_never_panic_and_errors_name_their_line(
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut text = valid_export().into_bytes();
        for m in &mutations {
            apply(&mut text, m);
        }
        read_and_import(&text)?;
    }
}

#[test]
fn the_valid_export_imports_whole() {
    let text = valid_export();
    let mut db = engine();
    let report = db
        .import(rewind::jsonl::read_lines(Cursor::new(&text), SOURCE), false)
        .unwrap();
    assert_eq!((report.appended, report.snapshots), (3, 1));
}
