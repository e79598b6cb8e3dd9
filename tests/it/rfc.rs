//! The RFC examples, transcribed in `tests/fixtures/`, applied through the reducers.

use rewind::reduce::{EventRef, Reducer};
use serde_json::Value;

fn cases(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

fn apply(
    reducer: &Reducer,
    doc: &Value,
    data: &Value,
) -> Result<Value, rewind::reduce::ReduceError> {
    let mut state = doc.clone();
    reducer.apply(
        &mut state,
        EventRef {
            stream: "s",
            kind: "T",
            version: 1,
            ts: 0,
            data: std::borrow::Cow::Borrowed(data),
            meta: None,
        },
    )?;
    Ok(state)
}

#[test]
fn rfc7386_every_example_merges_as_specified() {
    let cases = cases("rfc7386.json");
    assert_eq!(cases.len(), 16);
    for case in cases {
        let got = apply(&Reducer::Merge, &case["doc"], &case["patch"]).unwrap();
        assert_eq!(got, case["expected"], "{}", case["name"]);
    }
}

#[test]
fn rfc6902_every_example_patches_or_fails_as_specified() {
    let cases = cases("rfc6902.json");
    assert_eq!(cases.len(), 16);
    for case in cases {
        let name = &case["name"];
        // A.13 has a duplicate "op" member, which a JSON value cannot hold: parse its text.
        let patch = match case.get("patch_text") {
            // rewind parses event data strictly, so the duplicate is refused at the door.
            Some(text) => match rewind::jsonl::parse_strict(text.as_str().unwrap()) {
                Ok(_) => panic!("{name}: a patch with two \"op\" members must be refused"),
                Err(e) => {
                    assert!(
                        e.to_string().contains("duplicate key \"op\""),
                        "{name}: {e}"
                    );
                    continue;
                }
            },
            None => &case["patch"],
        };
        let result = apply(&Reducer::Patch, &case["doc"], patch);
        match case.get("expected") {
            Some(expected) => assert_eq!(&result.unwrap(), expected, "{name}"),
            None => assert!(result.is_err(), "{name} must fail"),
        }
    }
}
