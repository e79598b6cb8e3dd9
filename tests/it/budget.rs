//! jq reducers that never finish, recurse without end or build too much, through the built
//! binary: `append`, `state`, `verify` and `render` each end within the budget of one event,
//! name the stream, the version and the limit, and keep nothing of it; `reducer --set`
//! tries a reducer on every event it would apply to before setting it.

use serde_json::{Value, json};

use super::support::{Db, fails, ok, rewind};

const STEPS: &str = "1,000,000 evaluation steps";
const STACK: &str = "1 MiB of stack for recursion";
const OUTPUT: &str = "64 MiB of resulting state";
const STRING: &str = "64 MiB in one string";

/// The error every command gives for version 2 of stream `s`.
fn over(limit: &str) -> String {
    format!(r#"stream "s" version 2: applying the event went over its limit of {limit}"#)
}

fn events(db: &Db) -> u64 {
    let streams: Value = serde_json::from_str(&ok(&["streams", db.p(), "--json"])).unwrap();
    streams
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["head"].as_u64().unwrap())
        .sum()
}

/// Stream `s` holds two events; its reducer becomes one that runs `program` at version 2.
/// Setting it is refused (the trial finds version 2) until `--force`; then every command
/// that needs version 2 ends with the limit named, and the rest still work.
fn over_budget_everywhere(program: &str, limit: &str) {
    let db = Db::new();
    ok(&["append", db.p(), "s", "T", r#"{"n":1}"#]);
    ok(&["append", db.p(), "s", "T", r#"{"n":2}"#]);
    let spec = format!("jq:if .event.version == 2 then ({program}) else .state + .event.data end");
    let set = ["reducer", db.p(), "--stream", "s", "--set", &spec];

    let err = fails(&set, 2);
    assert!(
        err.contains("not set: 1 of 2 events in 1 of 1 stream fail with it"),
        "{err}"
    );
    assert!(err.contains(&over(limit)), "{err}");
    assert!(err.contains("--force"), "{err}");
    let set_force: Vec<&str> = set.iter().copied().chain(["--force"]).collect();
    let forced = rewind(&set_force);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(
        forced.stderr.contains("setting it anyway"),
        "{}",
        forced.stderr
    );

    let err = fails(&["state", db.p(), "s"], 2);
    assert!(err.contains(&over(limit)), "{err}");
    let before: Value = serde_json::from_str(&ok(&["state", db.p(), "s", "--at", "1"])).unwrap();
    assert_eq!(before, json!({"n": 1}));

    let verify = rewind(&["verify", db.p(), "--json"]);
    assert_eq!(verify.code, 1, "{}", verify.stderr);
    let report: Value = serde_json::from_str(&verify.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["stream"], "s");
    assert_eq!(findings[0]["version"], 2);
    assert_eq!(findings[0]["kind"], "over_budget");
    let detail = findings[0]["detail"].as_str().unwrap();
    assert!(
        detail.ends_with(&format!("over its limit of {limit}")),
        "{detail}"
    );

    let frame = ok(&["render", db.p(), "--stream", "s", "--size", "250x30"]);
    assert!(frame.contains(&over(limit)), "{frame}");

    // The next event needs the state at version 2: refused, and nothing is stored.
    let err = fails(&["append", db.p(), "s", "T", "{}"], 2);
    assert!(err.contains(&over(limit)), "{err}");
    assert_eq!(events(&db), 2);
}

#[test]
fn a_generator_that_never_ends_runs_out_of_steps() {
    over_budget_everywhere("last(range(1e10))", STEPS);
}

#[test]
fn collecting_an_endless_repeat_runs_out_of_steps() {
    over_budget_everywhere("[repeat(.)]", STEPS);
}

#[test]
fn a_definition_calling_itself_forever_runs_out_of_steps() {
    over_budget_everywhere("def f: f; f", STEPS);
}

#[test]
fn a_hundred_million_element_array_runs_out_of_steps() {
    over_budget_everywhere("[range(1e8)]", STEPS);
}

#[test]
fn deep_recursion_runs_out_of_stack() {
    over_budget_everywhere("def f: 1 + f; f", STACK);
}

#[test]
fn a_huge_string_is_refused_before_it_is_built() {
    over_budget_everywhere(r#""x" * 1000000000"#, STRING);
}

#[test]
fn a_state_too_large_is_over_its_size() {
    over_budget_everywhere(r#""x" * 40000000 | [., .]"#, OUTPUT);
}

#[test]
fn a_value_nested_300000_levels_deep_is_compared_and_dropped_but_not_turned_into_text() {
    let db = Db::new();
    let deep = "reduce range(300000) as $i (null; [.])";
    let compare = format!("jq:({deep} | . == .) as $same | .state + {{same: $same}}");
    ok(&["reducer", db.p(), "--stream", "s", "--set", &compare]);
    ok(&["append", db.p(), "s", "T", "{}"]);
    let state: Value = serde_json::from_str(&ok(&["state", db.p(), "s"])).unwrap();
    assert_eq!(state, json!({"same": true}));
    let text = format!("jq:{deep} | {{text: tostring}}");
    ok(&[
        "reducer",
        db.p(),
        "--stream",
        "s",
        "--set",
        &text,
        "--force",
    ]);
    let err = fails(&["append", db.p(), "s", "T", "{}"], 2);
    assert!(
        err.contains("cannot turn a value nested deeper than 512 levels into text"),
        "{err}"
    );
}

#[test]
fn an_append_over_budget_is_refused_and_stores_nothing() {
    let db = Db::new();
    ok(&[
        "reducer",
        db.p(),
        "--stream",
        "s",
        "--set",
        "jq:.state + .event.data",
    ]);
    ok(&["append", db.p(), "s", "T", r#"{"n":1}"#]);
    ok(&[
        "reducer",
        db.p(),
        "--stream",
        "s",
        "--set",
        "jq:if .event.data.loop then last(range(1e10)) else .state + .event.data end",
    ]);
    let err = fails(&["append", db.p(), "s", "T", r#"{"loop":true}"#], 2);
    assert!(err.contains(&over(STEPS)), "{err}");
    assert_eq!(events(&db), 1);
    ok(&["append", db.p(), "s", "T", r#"{"n":2}"#]);
    let state: Value = serde_json::from_str(&ok(&["state", db.p(), "s"])).unwrap();
    assert_eq!(state, json!({"n": 2}));
}

#[test]
fn an_import_with_an_event_over_budget_imports_nothing() {
    let db = Db::new();
    ok(&[
        "reducer",
        db.p(),
        "--set",
        "jq:if .event.data.loop then [repeat(.)] else .state + .event.data end",
    ]);
    let lines = [
        r#"{"stream":"s","type":"T","data":{"n":1}}"#,
        r#"{"stream":"s","type":"T","data":{"loop":true}}"#,
        r#"{"stream":"s","type":"T","data":{"n":3}}"#,
    ];
    let file = db.file("events.jsonl", &lines.join("\n"));
    let err = fails(&["import", db.p(), &file], 2);
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains(&over(STEPS)), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(events(&db), 0);
}

#[test]
fn reducer_set_tries_every_stream_it_would_apply_to() {
    let db = Db::new();
    for stream in ["a", "b"] {
        for n in 1..=2 {
            ok(&["append", db.p(), stream, "T", &format!(r#"{{"n":{n}}}"#)]);
        }
    }
    // A stream with a reducer of its own is not affected by the default, nor tried.
    ok(&["reducer", db.p(), "--stream", "own", "--set", "replace"]);
    ok(&["append", db.p(), "own", "T", r#"{"n":2}"#]);
    let bad = "jq:if .event.data.n == 2 then def f: f; f else .state + .event.data end";

    let err = fails(&["reducer", db.p(), "--set", bad], 2);
    assert!(
        err.contains("2 of 4 events in 2 of 2 streams fail with it"),
        "{err}"
    );
    assert!(err.contains(r#"the first: stream "a" version 2"#), "{err}");
    assert_eq!(ok(&["reducer", db.p()]), "default reducer:\nmerge\n");

    let set = rewind(&["reducer", db.p(), "--set", "jq:.state + .event.data"]);
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert!(
        set.stderr
            .contains("tried the reducer on 4 events of 2 streams: all apply"),
        "{}",
        set.stderr
    );
    let forced = rewind(&["reducer", db.p(), "--set", bad, "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(ok(&["reducer", db.p()]).contains("def f: f; f"));
    let own: Value = serde_json::from_str(&ok(&["state", db.p(), "own"])).unwrap();
    assert_eq!(own, json!({"n": 2}));
}

#[test]
fn a_heavy_but_legitimate_reducer_still_applies() {
    let db = Db::new();
    let items: Vec<u64> = (0..10_000).collect();
    let data = json!({ "items": items }).to_string();
    ok(&["append", db.p(), "s", "Batch", &data]);
    let sum = "jq:.state.total = (.state.total // 0) + (.event.data.items | add) | .state";
    let set = rewind(&["reducer", db.p(), "--stream", "s", "--set", sum]);
    assert_eq!(set.code, 0, "{}", set.stderr);
    ok(&["append", db.p(), "s", "Batch", &data]);
    let state: Value = serde_json::from_str(&ok(&["state", db.p(), "s"])).unwrap();
    assert_eq!(state, json!({"total": 99_990_000}));
    let verify = rewind(&["verify", db.p()]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
}
