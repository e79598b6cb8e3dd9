//! The README's command-line examples are run, in order, exactly as written.

use std::process::Command;

fn words(line: &str) -> Vec<String> {
    // Enough of shell quoting for the README: single quotes, double quotes, plain words.
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, ' ') => {
                if started || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                started = false;
            }
            (None, c) => word.push(c),
        }
    }
    if started || !word.is_empty() {
        out.push(word);
    }
    out
}

#[test]
fn every_readme_example_runs() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for line in readme.lines().filter_map(|l| l.strip_prefix("$ rewind ")) {
        let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(words(line))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rewind {line}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 20, "only {ran} examples found");
}

#[test]
fn quoting_splits_like_a_shell() {
    assert_eq!(words(r#"a 'b c' "d" '' e"#), vec!["a", "b c", "d", "", "e"]);
}

#[test]
fn the_readme_frame_is_what_render_prints_now() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme
        .find("## What it looks like")
        .expect("a frame section")..];
    let command = section
        .split('`')
        .nth(1)
        .expect("the render command in backticks");
    let frame = section
        .split("```text\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a text block");
    let dir = tempfile::tempdir().unwrap();
    let run = |args: Vec<String>| {
        Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    assert!(run(words("demo --path demo.db --no-open")).status.success());
    let out = run(words(
        command.strip_prefix("rewind ").expect("a rewind command"),
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        printed.trim_end(),
        frame,
        "the README's frame is stale: paste the output of `{command}`"
    );
}

#[test]
fn the_readme_key_table_lists_every_binding() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for b in rewind::tui::keymap::BINDINGS {
        let row = readme.lines().find(|l| {
            l.starts_with('|') && l.contains(&format!("`{}`", b.name)) && l.contains(b.help)
        });
        assert!(
            row.is_some(),
            "README lacks the key {} ({})",
            b.name,
            b.help
        );
    }
}

#[test]
fn the_readme_writing_sequence_gives_the_same_states_in_the_copy() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("Writing:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```\n").next())
        .expect("the Writing example block");
    let dir = tempfile::tempdir().unwrap();
    let run = |args: Vec<String>| {
        let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rewind {args:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let lines: Vec<&str> = block
        .lines()
        .filter_map(|l| l.strip_prefix("$ rewind "))
        .collect();
    assert!(lines.iter().any(|l| l.starts_with("import copy.db")));
    for line in lines {
        run(words(line));
    }
    let streams = |db: &str| -> Vec<String> {
        let list: serde_json::Value =
            serde_json::from_str(&run(words(&format!("streams {db} --json")))).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    let names = streams("shop.db");
    assert_eq!(names, ["acct", "order-1", "stock"]);
    assert_eq!(streams("copy.db"), names);
    for name in &names {
        let state = |db: &str| {
            let out: serde_json::Value =
                serde_json::from_str(&run(words(&format!("state {db} {name} --json")))).unwrap();
            (out["version"].clone(), out["state"].clone())
        };
        assert_eq!(state("copy.db"), state("shop.db"), "{name}");
        let reducer = |db: &str| run(words(&format!("reducer {db} --stream {name}")));
        assert_eq!(reducer("copy.db"), reducer("shop.db"), "{name}");
    }
    let stock: serde_json::Value =
        serde_json::from_str(&run(words("state copy.db stock --json"))).unwrap();
    assert_eq!(stock["state"], serde_json::json!({"apples": 12}));
}

#[test]
fn the_readme_langgraph_frame_is_what_render_prints_now() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme
        .find("### LangGraph checkpoints")
        .expect("a LangGraph section")..];
    let section = &section[section.find("`rewind render").expect("its render command")..];
    let command = section.split('`').nth(1).unwrap();
    let frame = section
        .split("```text\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a text block");
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(words(command.strip_prefix("rewind ").unwrap()))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("REWIND_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim_end(),
        frame,
        "the README's LangGraph frame is stale: paste the output of `{command}`"
    );
}

/// The `jq` block of a README section is the fixture file the tests run.
fn jq_block_is(section: &str, fixture: &str) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let at = readme
        .find(section)
        .unwrap_or_else(|| panic!("no section {section:?}"));
    let shown = readme[at..]
        .split("```jq\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a jq block");
    let checked =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(fixture))
            .unwrap();
    assert_eq!(
        shown,
        checked.trim_end(),
        "the README's reducer in {section:?} is not {fixture}"
    );
}

#[test]
fn the_readme_eventsourcing_reducer_is_the_one_the_tests_check() {
    jq_block_is(
        "### Python `eventsourcing`",
        "tests/fixtures/sources/eventsourcing/bank.jq",
    );
}

#[test]
fn the_readme_redux_reducer_is_the_one_the_tests_check() {
    jq_block_is(
        "### Redux DevTools export",
        "tests/fixtures/sources/redux/reducer.jq",
    );
}
