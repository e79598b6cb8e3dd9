//! The built binary on temp databases: what it prints, its exit codes, and bad input.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::support::{Db, fails, ok, rewind};

fn count_events(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn append_state_diff_blame_log_roundtrip_for_people_and_scripts() {
    let db = Db::new();
    ok(&[
        "append",
        db.p(),
        "order-1",
        "Placed",
        r#"{"status":"placed","total":10}"#,
    ]);
    ok(&["append", db.p(), "order-1", "Paid", r#"{"status":"paid"}"#]);
    let state: Value = serde_json::from_str(&ok(&["state", db.p(), "order-1", "--json"])).unwrap();
    assert_eq!(state["state"], json!({"status": "paid", "total": 10}));
    assert_eq!(state["version"], 2);
    assert_eq!(
        ok(&["state", db.p(), "order-1", "--at", "1", "--path", "/status"]),
        "\"placed\"\n"
    );
    let diff = ok(&["diff", db.p(), "order-1"]);
    assert_eq!(
        diff,
        "order-1 v1 → v2: 1 change\n~ /status  \"placed\" → \"paid\"\n"
    );
    let blame: Value =
        serde_json::from_str(&ok(&["blame", db.p(), "order-1", "/status", "--json"])).unwrap();
    assert_eq!(
        blame
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["version"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![2, 1]
    );
    let log = ok(&["log", db.p(), "order-1"]);
    assert!(log.starts_with("seq  stream   version  time"), "{log}");
    assert_eq!(log.lines().count(), 3);
}

#[test]
fn export_then_import_roundtrips_and_since_seq_catches_a_client_up() {
    let db = Db::new();
    for i in 0..5 {
        ok(&[
            "append",
            db.p(),
            if i % 2 == 0 { "a" } else { "b" },
            "T",
            &format!(r#"{{"i":{i}}}"#),
            "--meta",
            r#"{"by":"test"}"#,
        ]);
    }
    let full = ok(&["export", db.p()]);
    let copy = db.path.with_file_name("copy.db");
    let file = db.file("full.jsonl", &full);
    ok(&["import", copy.to_str().unwrap(), &file]);
    assert_eq!(ok(&["export", copy.to_str().unwrap()]), full);

    let tail = ok(&["export", db.p(), "--since-seq", "3"]);
    let event_lines = |text: &str| -> Vec<Value> {
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|l| l.get("seq").is_some())
            .collect()
    };
    let seqs: Vec<i64> = event_lines(&tail)
        .iter()
        .map(|l| l["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![4, 5]);
    // One stream: only its events, in seq order; an unknown one is named.
    let only_b: Vec<(String, i64)> = event_lines(&ok(&["export", db.p(), "--stream", "b"]))
        .iter()
        .map(|e| {
            (
                e["stream"].as_str().unwrap().to_string(),
                e["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(only_b, vec![("b".into(), 2), ("b".into(), 4)]);
    assert!(fails(&["export", db.p(), "--stream", "nope"], 2).contains("nope"));
    // A replica that has everything up to seq 3 (the header, two stream lines, three
    // events) applies the tail and matches the source.
    let replica = db.path.with_file_name("replica.db");
    let head: String = full.lines().take(6).map(|l| format!("{l}\n")).collect();
    ok(&[
        "import",
        replica.to_str().unwrap(),
        &db.file("head.jsonl", &head),
    ]);
    ok(&[
        "import",
        replica.to_str().unwrap(),
        &db.file("tail.jsonl", &tail),
    ]);
    assert_eq!(ok(&["export", replica.to_str().unwrap()]), full);
    // Applying the same tail again finds its events there and duplicates nothing.
    let again = ok(&[
        "import",
        replica.to_str().unwrap(),
        &db.file("tail.jsonl", &tail),
    ]);
    assert!(
        again.starts_with("imported 0 events, 2 already there"),
        "{again}"
    );
    assert_eq!(ok(&["export", replica.to_str().unwrap()]), full);
    // A tail that skips events a replica lacks is refused, naming the line and the gap.
    let fresh = db.path.with_file_name("fresh.db");
    let gap: String = tail
        .lines()
        .filter(|l| !l.contains("\"seq\":4"))
        .map(|l| format!("{l}\n"))
        .collect();
    let err = fails(
        &[
            "import",
            fresh.to_str().unwrap(),
            &db.file("gap.jsonl", &gap),
        ],
        2,
    );
    assert!(
        err.contains("gap.jsonl line 4")
            && err.contains("which is at version 0 (its next event is version 1)"),
        "{err}"
    );
}

#[test]
fn a_malformed_line_names_line_and_column_and_imports_nothing() {
    let db = Db::new();
    ok(&["append", db.p(), "s", "T", "{}"]);
    let file = db.file(
        "bad.jsonl",
        "{\"stream\":\"s\",\"type\":\"T\",\"data\":{\"a\":1}}\n\n{\"stream\":\"s\",\"type\":\"T\",\"data\":{\"a\":2}}\n{\"stream\":\"s\",\"type\":\"T\",\"data\":{\"a\":}\n",
    );
    let err = fails(&["import", db.p(), &file], 2);
    assert!(err.contains("bad.jsonl line 4, column 38"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(count_events(&db.path), 1);
}

#[test]
fn unknown_fields_missing_fields_and_bad_times_are_named() {
    let db = Db::new();
    for (line, needle) in [
        (
            r#"{"stream":"s","type":"T","data":{},"tiem":"x"}"#,
            "unknown field `tiem`",
        ),
        (r#"{"stream":"s","data":{}}"#, "missing field `type`"),
        (
            r#"{"stream":"s","type":"T","data":{},"time":"yesterday"}"#,
            "RFC 3339",
        ),
        (r#"{"stream":"s\u0007","type":"T","data":{}}"#, "U+0007"),
    ] {
        let err = fails(&["import", db.p(), &db.file("x.jsonl", line)], 2);
        assert!(
            err.contains("x.jsonl line 1") && err.contains(needle),
            "{line}\n{err}"
        );
    }
    assert_eq!(count_events(&db.path), 0);
}

#[test]
fn deeply_nested_json_is_refused_without_a_stack_overflow() {
    let db = Db::new();
    let deep = format!(
        r#"{{"stream":"s","type":"T","data":{}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let err = fails(&["import", db.p(), &db.file("deep.jsonl", &deep)], 2);
    assert!(
        err.contains("deep.jsonl line 1") && err.contains("recursion limit"),
        "{err}"
    );
    let err = fails(
        &[
            "append",
            db.p(),
            "s",
            "T",
            &format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)),
        ],
        2,
    );
    assert!(err.contains("DATA is not valid JSON"), "{err}");
}

#[test]
fn control_characters_in_data_never_reach_the_terminal_raw() {
    let db = Db::new();
    ok(&[
        "append",
        db.p(),
        "s",
        "T",
        r#"{"msg":"\u001b[2J\u001b]52;c;aGk=\u0007 hi"}"#,
    ]);
    for args in [
        vec!["log", db.p()],
        vec!["log", db.p(), "s"],
        vec!["diff", db.p(), "s", "--text"],
        vec!["state", db.p(), "s"],
    ] {
        let out = ok(&args);
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{7}'),
            "{args:?}: {out:?}"
        );
    }
}

#[test]
fn read_commands_do_not_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.db");
    for cmd in ["streams", "log", "snapshots", "export"] {
        let err = fails(&[cmd, path.to_str().unwrap()], 2);
        assert!(err.contains("missing.db: no such database"), "{cmd}: {err}");
    }
    let err = fails(&["state", path.to_str().unwrap(), "s"], 2);
    assert!(err.contains("no such database"), "{err}");
    assert!(!path.exists());
}

#[test]
fn input_errors_exit_two_with_the_thing_named() {
    let db = Db::new();
    ok(&["append", db.p(), "s", "T", r#"{"a":1}"#]);
    assert!(fails(&["state", db.p(), "nope"], 2).contains("no stream named \"nope\""));
    assert!(fails(&["state", db.p(), "s", "--at", "9"], 2).contains("there is no version 9"));
    assert!(fails(&["state", db.p(), "s", "--path", "/zz"], 2).contains("no value at /zz"));
    assert!(fails(&["append", db.p(), "s", "T", "{oops"], 2).contains("DATA is not valid JSON"));
    assert!(
        fails(
            &["reducer", db.p(), "--stream", "b", "--set", "jq:.state |"],
            2
        )
        .contains("invalid reducer")
    );
    assert!(fails(&["reducer", db.p(), "--set", "mrege"], 2).contains("unknown reducer"));
    ok(&["reducer", db.p(), "--stream", "inv", "--set", "patch"]);
    let err = fails(
        &[
            "append",
            db.p(),
            "inv",
            "Ops",
            r#"[{"op":"remove","path":"/x"}]"#,
        ],
        2,
    );
    assert!(
        err.contains("stream \"inv\" version 1: the patch reducer cannot apply this event"),
        "{err}"
    );
    assert!(fails(&["state", db.p()], 2).contains("Usage"));
    let not_db = db.file("notes.txt", "hello");
    assert!(fails(&["streams", &not_db], 2).contains("not an SQLite file"));
}

#[test]
fn append_with_a_used_key_and_other_data_exits_two_naming_the_key() {
    let db = Db::new();
    let pay = |data: &'static str| {
        [
            "append",
            db.p(),
            "order-1",
            "OrderPaid",
            data,
            "--key",
            "pay-order-1",
        ]
        .map(String::from)
    };
    let run = |args: [String; 7], code: i32| {
        let args = args.each_ref().map(String::as_str);
        if code == 0 {
            ok(&args)
        } else {
            fails(&args, code)
        }
    };
    let paid = r#"{"status":"paid"}"#;
    assert_eq!(run(pay(paid), 0), "appended order-1 v1 (seq 1)\n");
    assert_eq!(run(pay(paid), 0), "already appended order-1 v1 (seq 1)\n");
    let err = run(pay(r#"{"status":"refunded"}"#), 2);
    assert!(
        err.contains(
            r#"idempotency key "pay-order-1" is already used by stream "order-1" version 1"#
        ) && err.contains(r#"data at /status: "paid" stored, "refunded" given"#),
        "{err}"
    );
    assert_eq!(count_events(&db.path), 1);
}

#[test]
fn two_processes_importing_at_once_both_land_whole() {
    let db = Db::new();
    let files: Vec<String> = (0..2)
        .map(|w| {
            let lines: String = (0..2000)
                .map(|i| {
                    format!("{{\"stream\":\"shared\",\"type\":\"T\",\"data\":{{\"w{w}\":{i}}}}}\n")
                })
                .collect();
            db.file(&format!("w{w}.jsonl"), &lines)
        })
        .collect();
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            Command::new(env!("CARGO_BIN_EXE_rewind"))
                .args(["import", db.p(), f])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(count_events(&db.path), 4000);
    let conn = rusqlite::Connection::open(&db.path).unwrap();
    let (min, max, distinct): (i64, i64, i64) = conn
        .query_row(
            "SELECT min(version), max(version), count(DISTINCT version) FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((min, max, distinct), (1, 4000, 4000));
    // Each file landed as one unbroken run of versions.
    let firsts: Vec<String> = conn
        .prepare("SELECT data FROM events WHERE version IN (1, 2001) ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_ne!(firsts[0][..4], firsts[1][..4]);
}

#[test]
fn snapshot_and_snapshots_list_with_labels() {
    let db = Db::new();
    for i in 0..3 {
        ok(&["append", db.p(), "s", "T", &format!(r#"{{"i":{i}}}"#)]);
    }
    let out = ok(&[
        "snapshot",
        db.p(),
        "s",
        "--at",
        "2",
        "--label",
        "before migration",
    ]);
    assert!(out.starts_with("snapshot s v2: "), "{out}");
    let list: Value = serde_json::from_str(&ok(&["snapshots", db.p(), "--json"])).unwrap();
    assert_eq!(list[0]["version"], 2);
    assert_eq!(list[0]["label"], "before migration");
    assert_eq!(list[0]["stream"], "s");
    assert_eq!(list[0]["trigger"], "manual");
    let err = fails(&["snapshot", db.p(), "s", "--label", "a\u{1b}b"], 2);
    assert!(err.contains("U+001B"), "{err}");
}

#[test]
fn demo_refuses_to_replace_a_file_that_is_not_a_demo() {
    let db = Db::new();
    ok(&["append", db.p(), "order-1", "Placed", "{}"]);
    let before = std::fs::read(&db.path).unwrap();
    let err = fails(&["demo", "--path", db.p()], 2);
    assert!(err.contains("is not a rewind demo database"), "{err}");
    assert_eq!(std::fs::read(&db.path).unwrap(), before);
    let notes = db.file("notes.txt", "my notes");
    fails(&["demo", "--path", &notes, "--rebuild"], 2);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes");
    // A demo may be rebuilt in place.
    let demo = db.path.with_file_name("demo.db");
    ok(&["demo", "--path", demo.to_str().unwrap()]);
    assert!(ok(&["demo", "--path", demo.to_str().unwrap(), "--rebuild"]).contains("(built)"));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let db = Db::new();
    let lines: String = (0..5000)
        .map(|i| format!("{{\"stream\":\"s\",\"type\":\"T\",\"data\":{{\"i\":{i}}}}}\n"))
        .collect();
    ok(&["import", db.p(), &db.file("many.jsonl", &lines)]);
    for args in [
        vec!["export", db.p()],
        vec!["log", db.p(), "s", "--limit", "3000", "--json"],
        vec!["snapshots", db.p(), "--json"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn c1_controls_bidi_and_del_are_escaped_on_stdout_and_stderr() {
    let db = Db::new();
    let nasty = "csi\u{9b}2J rlo\u{202e} del\u{7f} ls\u{2028} esc\u{1b}]0;t\u{7}";
    let data = serde_json::to_string(&json!({ "msg": nasty })).unwrap();
    ok(&["append", db.p(), "s", "T", &data]);
    let terminal_unsafe = |text: &str| {
        text.chars()
            .any(|c| (c.is_control() && c != '\n') || matches!(c, '\u{202e}' | '\u{2028}'))
    };
    for args in [
        vec!["state", db.p(), "s"],
        vec!["state", db.p(), "s", "--json"],
        vec!["export", db.p()],
        vec!["log", db.p(), "s", "--json"],
    ] {
        let out = ok(&args);
        assert!(!terminal_unsafe(&out), "{args:?}: {out:?}");
    }
    // The escaped JSON is still the same value.
    let state: Value = serde_json::from_str(&ok(&["state", db.p(), "s"])).unwrap();
    assert_eq!(state["msg"], nasty);
    // The key is written with JSON escapes, so the parsed field name holds ESC and BEL.
    let line = r#"{"stream":"s","type":"T","data":{},"\u001b]0;pwned\u0007":1}"#;
    let err = fails(&["import", db.p(), &db.file("evil.jsonl", line)], 2);
    assert!(!terminal_unsafe(&err), "{err:?}");
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn an_import_line_with_version_zero_is_refused() {
    let db = Db::new();
    let err = fails(
        &[
            "import",
            db.p(),
            &db.file(
                "v0.jsonl",
                r#"{"stream":"s","type":"T","data":{},"version":0}"#,
            ),
        ],
        2,
    );
    assert!(
        err.contains("v0.jsonl line 1: version 0 is the empty state"),
        "{err}"
    );
}

#[test]
fn duplicate_keys_in_event_data_are_refused() {
    let db = Db::new();
    ok(&["reducer", db.p(), "--stream", "inv", "--set", "patch"]);
    let err = fails(
        &[
            "append",
            db.p(),
            "inv",
            "Ops",
            r#"[{"op":"add","path":"/a","value":1,"op":"remove"}]"#,
        ],
        2,
    );
    assert!(err.contains("duplicate key \"op\""), "{err}");
    let line = r#"{"stream":"s","type":"T","data":{"a":1,"a":2}}"#;
    let err = fails(&["import", db.p(), &db.file("dup.jsonl", line)], 2);
    assert!(
        err.contains("dup.jsonl line 1") && err.contains("duplicate key \"a\""),
        "{err}"
    );
}

#[test]
fn stats_shows_the_archive_and_the_last_maintenance() {
    let db = Db::new();
    let lines: String = (0..250)
        .map(|i| format!("{{\"stream\":\"s\",\"type\":\"T\",\"time\":\"2025-01-01T00:{:02}:{:02}Z\",\"data\":{{\"i\":{i}}}}}\n", i / 60, i % 60))
        .collect();
    ok(&["import", db.p(), &db.file("old.jsonl", &lines)]);
    assert!(
        ok(&["stats", db.p()]).contains("archive: 0 events, 0 bytes · last maintenance: never")
    );
    assert!(ok(&["archive", db.p(), "--older-than", "30d"]).contains("moved 200 events"));
    let stats = ok(&["stats", db.p()]);
    assert!(stats.contains("archive: 200 events"), "{stats}");
    assert!(!stats.contains("last maintenance: never"), "{stats}");
}

#[test]
fn a_bare_database_path_opens_the_debugger() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.db");
    let err = fails(&[missing.to_str().unwrap()], 2);
    assert!(err.contains("no such database"), "{err}");
    let bad = dir.path().join("bad.db");
    std::fs::write(&bad, "not sqlite").unwrap();
    let err = fails(&[bad.to_str().unwrap()], 2);
    assert!(err.contains("not a rewind database"), "{err}");
    // Subcommands and flags are still what they were.
    assert!(ok(&["--help"]).contains("Usage: rewind"));
    let err = fails(&["state"], 2);
    assert!(err.contains("Usage: rewind state"), "{err}");
}

#[test]
fn open_without_a_terminal_says_so_and_leaves_no_escape_sequence() {
    let db = Db::new();
    ok(&["append", db.p(), "s", "E", r#"{"a":1}"#]);
    // `output()` gives the child a pipe for stdout and stderr and a null stdin.
    for args in [vec!["open", db.p()], vec![db.p()]] {
        let run = rewind(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("needs a terminal") && run.stderr.contains("rewind render"),
            "{}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "nothing drawn: {:?}", run.stdout);
        assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
    }
    // A missing file is still the first thing said.
    let missing = db.path.with_file_name("missing.db");
    let stderr = fails(&["open", missing.to_str().unwrap()], 2);
    assert!(stderr.contains("missing.db"), "{stderr}");
}

#[test]
fn a_failed_init_or_import_into_a_new_file_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let p = db.to_str().unwrap();
    let stderr = fails(&["init", p, "--reducer", "jq:this is not jq"], 2);
    assert!(stderr.contains("jq"), "{stderr}");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"stream\":\"s\",\"type\":\"E\",\"data\":{}}\nnot json\n",
    )
    .unwrap();
    let stderr = fails(&["import", p, bad.to_str().unwrap()], 2);
    assert!(stderr.contains("line 2"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("new.db"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn messages_say_what_is_wrong_and_what_to_do() {
    let db = Db::new();
    ok(&["append", db.p(), "s", "E", r#"{"a":1}"#]);
    // Version 0 of a stream with nothing archived is simply the start.
    assert!(ok(&["log", db.p(), "s", "--from", "0"]).contains("{\"a\":1}"));
    let cases: [(&[&str], &str); 6] = [
        (
            &["snapshot", db.p(), "s", "--at", "0"],
            "the empty state, which needs no snapshot; choose a version from 1 to 1",
        ),
        (
            &["archive", db.p(), "--older-than", "0s"],
            "is zero; give a duration of at least 1s",
        ),
        (&["policy", db.p(), "--every-time", "0m"], "is zero"),
        (
            &["render", db.p(), "--size", "70000x2"],
            "the width must be from 60 to 1000",
        ),
        (
            &["state", db.p(), "s", "--at-time", "9999-12-31T23:59:59Z"],
            "outside the times rewind can count",
        ),
        (
            &["render", db.p(), "--size", "80x0"],
            "the height must be from 16 to 1000",
        ),
    ];
    for (args, says) in cases {
        let stderr = fails(args, 2);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("overflow"), "{args:?}: {stderr}");
    }
}

/// The bytes of a 16-byte zstd frame that declares 2^62 bytes of content.
/// (`28b52ffde00000000000000040010000`, as the fuzzer found it).
const HUGE_FRAME: [u8; 16] = [
    0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x01, 0, 0,
];

#[test]
fn a_delta_that_claims_a_huge_size_is_a_fault_not_an_abort() {
    let db = Db::new();
    for i in 1..=3 {
        ok(&["append", db.p(), "s", "E", &format!("{{\"k{i}\":{i}}}")]);
        ok(&["snapshot", db.p(), "s", "--at", &i.to_string()]);
    }
    let conn = rusqlite::Connection::open(&db.path).unwrap();
    conn.execute(
        "UPDATE snapshots SET kind = 'delta', base_id = (SELECT id FROM snapshots WHERE version = 1),
         raw_size = ?1, blob = ?2 WHERE version = 2",
        rusqlite::params![1_i64 << 62, &HUGE_FRAME[..]],
    )
    .unwrap();
    drop(conn);
    let state: Value =
        serde_json::from_str(&ok(&["state", db.p(), "s", "--at", "2", "--json"])).unwrap();
    assert_eq!(state["state"], json!({"k1": 1, "k2": 2}));
    assert_eq!(state["provenance"]["faults"][0]["version"], 2, "{state}");
    let run = rewind(&["verify", db.p()]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("corrupt"), "{}", run.stdout);
    ok(&["render", db.p(), "--at", "2", "--size", "80x24"]);
}

#[test]
fn a_snapshot_row_above_the_head_is_reported_and_ignored_by_the_writer() {
    let db = Db::new();
    for i in 1..=5 {
        ok(&["append", db.p(), "s", "E", &format!("{{\"k\":{i}}}")]);
    }
    ok(&["snapshot", db.p(), "s", "--at", "3"]);
    rusqlite::Connection::open(&db.path)
        .unwrap()
        .execute_batch("UPDATE snapshots SET version = 100")
        .unwrap();
    // The debug build checks arithmetic: the writer's policy no longer subtracts past zero.
    ok(&["append", db.p(), "s", "E", r#"{"k":6}"#]);
    let state: Value = serde_json::from_str(&ok(&["state", db.p(), "s", "--json"])).unwrap();
    assert_eq!(state["state"], json!({"k": 6}));
    let run = rewind(&["verify", db.p()]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("beyond the stream's head"),
        "{}",
        run.stdout
    );
}

#[test]
fn title_keeps_a_program_in_the_users_settings_and_render_shows_it() {
    use crate::mappings::rewind as run;
    let db = Db::new();
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    for (n, node) in ["plan", "call_tool"].iter().enumerate() {
        ok(&[
            "append",
            db.p(),
            "run-1",
            "Checkpoint",
            &json!({"node": node, "step": n + 1}).to_string(),
        ]);
    }
    let before = std::fs::read(&db.path).unwrap();
    let (code, out, _) = run(data, &["title", db.p()]);
    assert_eq!(code, 0);
    assert!(out.contains("no title programs"), "{out}");
    // By default a row says which keys its event changed.
    let (_, frame, _) = run(data, &["render", db.p(), "--size", "200x20"]);
    assert!(
        frame.contains("Checkpoint node → call_tool, step → 2"),
        "{frame}"
    );
    let (code, out, err) = run(
        data,
        &[
            "title",
            db.p(),
            "--stream",
            "run-*",
            r#""at " + .state.node"#,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("kept in"), "{out}");
    let (_, frame, _) = run(data, &["render", db.p(), "--size", "200x20"]);
    assert!(frame.contains("Checkpoint at call_tool"), "{frame}");
    let (_, out, _) = run(data, &["title", db.p()]);
    assert!(out.contains("stream run-*"), "{out}");
    // A program that does not compile is refused and nothing is kept.
    let (code, _, err) = run(data, &["title", db.p(), "--type", "Checkpoint", "(("]);
    assert_eq!(code, 2);
    assert!(err.contains("does not compile"), "{err}");
    let (_, out, _) = run(data, &["title", db.p()]);
    assert!(!out.contains("type Checkpoint"), "{out}");
    // Clearing what is not there says so; clearing what is goes back to the default.
    let (code, _, err) = run(data, &["title", db.p(), "--clear", "--type", "Nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no such title program"), "{err}");
    let (code, _, _) = run(data, &["title", db.p(), "--clear"]);
    assert_eq!(code, 0);
    let (_, frame, _) = run(data, &["render", db.p(), "--size", "200x20"]);
    assert!(frame.contains("Checkpoint node → call_tool"), "{frame}");
    // The settings live with the user, never in the database.
    assert_eq!(std::fs::read(&db.path).unwrap(), before);
}

#[test]
fn render_pins_a_frame_in_ci_and_fails_loudly_when_it_changes() {
    let db = Db::new();
    for (kind, data) in [
        ("Placed", r#"{"status":"placed"}"#),
        ("Paid", r#"{"status":"paid"}"#),
    ] {
        ok(&["append", db.p(), "order-1", kind, data]);
    }
    let pin = db.path.with_file_name("order-1.frame");
    let pin_arg = pin.to_str().unwrap();
    let panes = [
        "render",
        db.p(),
        "--stream",
        "order-1",
        "--size",
        "100x30",
        "--panes",
        "events,state,diff",
    ];
    // No pinned frame yet: exit 1, saying how to write one; --update writes it.
    let run = rewind(&[&panes[..], &["--check", pin_arg]].concat());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.contains("no such file"), "{}", run.stdout);
    assert!(ok(&[&panes[..], &["--check", pin_arg, "--update"]].concat()).contains("written"));
    let pinned = std::fs::read_to_string(&pin).unwrap();
    assert!(pinned.starts_with("┌ Events"), "{pinned}");
    assert!(pinned.contains("┌ State @ v2"), "{pinned}");
    assert!(
        !pinned.contains("Streams"),
        "only the panes asked for: {pinned}"
    );
    assert!(ok(&[&panes[..], &["--check", pin_arg]].concat()).contains("the same"));
    // Another stream growing does not change the pinned panes; this stream growing does,
    // and the check says how, as a unified diff.
    ok(&[
        "append",
        db.p(),
        "order-2",
        "Placed",
        r#"{"status":"placed"}"#,
    ]);
    assert_eq!(
        rewind(&[&panes[..], &["--check", pin_arg]].concat()).code,
        0
    );
    ok(&[
        "append",
        db.p(),
        "order-1",
        "Shipped",
        r#"{"status":"shipped"}"#,
    ]);
    let run = rewind(&[&panes[..], &["--check", pin_arg]].concat());
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains(&format!("--- {pin_arg}")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("+┌ State @ v3"), "{}", run.stdout);
    assert!(run.stdout.contains("-┌ State @ v2"), "{}", run.stdout);
    assert!(run.stdout.contains("the frame differs"), "{}", run.stdout);
    assert_eq!(
        std::fs::read_to_string(&pin).unwrap(),
        pinned,
        "a check never writes"
    );
    assert!(ok(&[&panes[..], &["--check", pin_arg, "--update"]].concat()).contains("updated"));
    assert_eq!(
        rewind(&[&panes[..], &["--check", pin_arg]].concat()).code,
        0
    );
    // The whole frame is what render prints without --panes.
    let whole = ok(&["render", db.p(), "--size", "100x30"]);
    assert!(whole.starts_with("┌ Streams 2"), "{whole}");
    // --json gives the panes and the rows whole, for assertions.
    let json: Value = serde_json::from_str(&ok(&[&panes[..6], &["--json"]].concat())).unwrap();
    let names: Vec<&str> = json["panes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "streams", "timeline", "events", "state", "diff", "event", "status"
        ]
    );
    assert_eq!(json["panes"][3]["title"], "State @ v3");
    assert_eq!(json["events"][2]["summary"], "status → shipped");
    assert_eq!(json["events"][2]["cursor"], true);
    assert_eq!(json["cursor"], 3);
    // Sizes the layout cannot take and unknown panes are usage errors.
    for (args, says) in [
        (&["--size", "10x5"][..], "needs at least 60x16"),
        (&["--size", "0x0"][..], "must be from 60"),
        (&["--size", "1001x1001"][..], "must be from 60 to 1000"),
        (&["--panes", "events,nope"][..], "no pane \"nope\""),
    ] {
        let stderr = fails(&[&["render", db.p()][..], args].concat(), 2);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn completions_and_the_manual_come_from_the_command_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&["completions", shell]);
        // Every subcommand and a flag of one are offered.
        for word in [
            "render",
            "streams",
            "compact",
            "title",
            "completions",
            "--check",
        ] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
    }
    assert!(fails(&["completions", "tcsh"], 2).contains("possible values"));
    let man = ok(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH rewind 1"),
        "{man}"
    );
    assert!(man.contains("time\\-travel debugger"), "{man}");
}

#[test]
fn a_mistyped_command_is_a_suggestion_and_a_path_still_opens() {
    let said = fails(&["stremas", "x.db"], 2);
    assert!(said.contains("did you mean `rewind streams`"), "{said}");
    let said = fails(&["verfy"], 2);
    assert!(said.contains("did you mean `rewind verify`"), "{said}");
    // A word far from every command, or one that looks like a path, is a database to open.
    let said = fails(&["nonsenseword"], 2);
    assert!(said.contains("no such database"), "{said}");
    let said = fails(&["stats.db"], 2);
    assert!(!said.contains("did you mean"), "{said}");
    // An existing file named like a command is opened, not corrected (the debugger needs a
    // terminal, which a test has not).
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stat");
    ok(&["init", db.to_str().unwrap()]);
    let run = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .arg("stat")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2));
    assert!(said.contains("needs a terminal"), "{said}");
}

#[test]
fn log_says_what_it_left_out_and_shows_the_tail_newest_first_on_request() {
    let db = Db::new();
    for i in 1..=7 {
        ok(&["append", db.p(), "s", "T", &format!(r#"{{"i":{i}}}"#)]);
    }
    ok(&["append", db.p(), "other", "T", "{}"]);
    let versions = |out: &str| -> Vec<String> {
        out.lines()
            .skip(1)
            .map(|l| l.split_whitespace().nth(2).unwrap().to_string())
            .collect()
    };
    let run = rewind(&["log", db.p(), "s", "--limit", "3"]);
    assert_eq!(versions(&run.stdout), ["1", "2", "3"]);
    assert_eq!(
        run.stderr,
        "3 events shown; not shown: 4 later (--tail N shows the newest)\n"
    );
    let run = rewind(&["log", db.p(), "s", "--tail", "2", "--reverse"]);
    assert_eq!(versions(&run.stdout), ["7", "6"]);
    assert_eq!(
        run.stderr,
        "2 events shown; not shown: 5 earlier (before v6)\n"
    );
    let run = rewind(&["log", db.p(), "s", "--from", "3", "--limit", "2"]);
    assert_eq!(versions(&run.stdout), ["3", "4"]);
    assert!(
        run.stderr.contains("2 earlier") && run.stderr.contains("3 later"),
        "{}",
        run.stderr
    );
    // Everything shown: nothing said. All streams count by seq.
    assert_eq!(rewind(&["log", db.p(), "s"]).stderr, "");
    let run = rewind(&["log", db.p(), "--tail", "1", "--json"]);
    let lines: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(lines[0]["stream"], "other");
    assert_eq!(
        run.stderr,
        "1 events shown; not shown: 7 earlier (before seq 8)\n"
    );
    assert!(fails(&["log", db.p(), "--tail", "1", "--from", "2"], 2).contains("--tail"));
}

#[test]
fn reducer_prints_a_jq_program_as_written_so_it_can_be_copied() {
    let db = Db::new();
    let program = "jq:.state as $s\n|\t$s + .event.data";
    ok(&["reducer", db.p(), "--stream", "s", "--set", program]);
    assert_eq!(
        ok(&["reducer", db.p(), "--stream", "s"]),
        format!("stream s uses its own reducer:\n{program}\n")
    );
    // An escape sequence in a program is shown, not sent to the terminal.
    let hostile = "jq:.state # \u{1b}[2J";
    ok(&[
        "reducer",
        db.p(),
        "--stream",
        "t",
        "--set",
        hostile,
        "--force",
    ]);
    let shown = ok(&["reducer", db.p(), "--stream", "t"]);
    assert!(
        !shown.contains('\u{1b}') && shown.contains("\\u{001b}[2J"),
        "{shown}"
    );
}

#[test]
fn times_in_json_are_rfc_3339_with_the_micros_beside_and_state_json_is_stable() {
    let db = Db::new();
    ok(&[
        "append",
        db.p(),
        "s",
        "T",
        r#"{"a":1}"#,
        "--time",
        "2026-03-01T12:00:00Z",
    ]);
    ok(&["snapshot", db.p(), "s"]);
    let streams: Value = serde_json::from_str(&ok(&["streams", db.p(), "--json"])).unwrap();
    assert_eq!(streams[0]["last_ts"], "2026-03-01T12:00:00Z");
    assert_eq!(streams[0]["last_ts_us"], 1_772_366_400_000_000_i64);
    assert!(streams[0]["created_at"].as_str().unwrap().ends_with('Z'));
    let snaps: Value = serde_json::from_str(&ok(&["snapshots", db.p(), "--json"])).unwrap();
    assert_eq!(snaps[0]["ts"], "2026-03-01T12:00:00Z");
    assert!(snaps[0]["created_at_us"].is_i64());
    // Durations stay numbers under their `_us` names.
    assert!(snaps[0]["create_us"].is_u64());

    let first = ok(&["state", db.p(), "s", "--json"]);
    assert_eq!(ok(&["state", db.p(), "s", "--json"]), first);
    assert!(!first.contains("elapsed_us"), "{first}");
    let timed: Value =
        serde_json::from_str(&ok(&["state", db.p(), "s", "--json", "--timing"])).unwrap();
    assert!(timed["provenance"]["elapsed_us"].is_u64(), "{timed}");
    ok(&["append", db.p(), "s", "T", r#"{"a":2}"#]);
    assert_ne!(ok(&["state", db.p(), "s", "--json"]), first);
}

#[test]
fn archive_prints_totals_and_lists_streams_only_when_verbose() {
    let db = Db::new();
    for (stream, i) in [("s", 1), ("s", 2), ("s", 3), ("t", 1)] {
        ok(&[
            "append",
            db.p(),
            stream,
            "T",
            &format!(r#"{{"i":{i}}}"#),
            "--time",
            "2020-01-01T00:00:00Z",
        ]);
    }
    ok(&["snapshot", db.p(), "s"]);
    let out = ok(&["archive", db.p(), "--older-than", "30d"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("moved 3 events of 1 of 2 streams to ") && out.contains("--verbose"),
        "{out}"
    );
    ok(&["snapshot", db.p(), "t"]);
    let out = ok(&["archive", db.p(), "--older-than", "30d", "--verbose"]);
    assert_eq!(
        out.lines().next(),
        Some("t: versions 1..=1 archived"),
        "{out}"
    );
    let out = ok(&["archive", db.p(), "--older-than", "30d"]);
    assert!(out.starts_with("moved nothing"), "{out}");
}
