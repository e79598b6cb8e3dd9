//! The process killed in the middle of an import, a snapshot or a compaction (by a crash
//! point: an abort, as `kill -9`, at a chosen step): afterwards no event is lost or changed,
//! every state is exact, and verify finds nothing.

use std::path::Path;
use std::process::Command;

use rewind::snapshot::verify::verify;
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::{Value, json};

fn rewind_crashing_at(point: &str, args: &[&str]) -> std::process::ExitStatus {
    Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .env("REWIND_CRASH_AT", point)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
}

fn export(path: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["export", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn states(path: &Path) -> Vec<Value> {
    let mut engine = Engine::new(Store::open(path, OpenMode::Existing).unwrap());
    let head = engine.store().require_stream("s").unwrap().head;
    (0..=head)
        .map(|v| (*engine.state_at("s", Target::Version(v)).unwrap().state).clone())
        .collect()
}

fn seeded(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("c.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    engine
        .set_policy(
            None,
            &rewind::engine::Policy {
                every: Some(25),
                ..Default::default()
            },
        )
        .unwrap();
    for i in 0..400 {
        // 300 keys of some size, 25 changed between snapshots: deltas pay off.
        crate::support::append(
            &mut engine,
            "s",
            json!({ format!("k{}", (i * 7) % 300): format!("value {i} of a state that has some size") }),
        );
    }
    path
}

#[test]
fn an_import_killed_at_any_step_leaves_the_database_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = seeded(dir.path());
    let before = (export(&path), states(&path));
    let lines: String = (0..3_000)
        .map(|i| format!("{{\"stream\":\"s\",\"type\":\"T\",\"data\":{{\"n\":{i}}}}}\n"))
        .collect();
    let file = dir.path().join("more.jsonl");
    std::fs::write(&file, lines).unwrap();
    for step in ["import:1", "import:1500", "import:3000", "snapshot:40"] {
        let status = rewind_crashing_at(
            step,
            &["import", path.to_str().unwrap(), file.to_str().unwrap()],
        );
        assert!(!status.success(), "{step}: the crash point was not reached");
        assert_eq!((export(&path), states(&path)), before, "{step}");
        assert!(
            verify(&path, None, &|_, _| {}).unwrap().findings.is_empty(),
            "{step}"
        );
    }
    // And the same import, uninterrupted, then lands whole.
    assert!(
        rewind_crashing_at(
            "none:1",
            &["import", path.to_str().unwrap(), file.to_str().unwrap()]
        )
        .success()
    );
    assert_eq!(
        Engine::new(Store::open(&path, OpenMode::Existing).unwrap())
            .store()
            .require_stream("s")
            .unwrap()
            .head,
        3_400
    );
}

#[test]
fn a_snapshot_or_compaction_killed_midway_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = seeded(dir.path());
    let before = (export(&path), states(&path));
    let snapshots = Engine::new(Store::open(&path, OpenMode::Existing).unwrap())
        .store()
        .snapshots(None)
        .unwrap()
        .len();
    let p = path.to_str().unwrap();
    assert!(!rewind_crashing_at("snapshot:1", &["snapshot", p, "s", "--at", "333"]).success());
    // Dropping everything below a delta keeps the delta and drops its base: step 1 of the
    // compaction is that delta's rebase, step 2 the deletes.
    let delta = Engine::new(Store::open(&path, OpenMode::Existing).unwrap())
        .store()
        .snapshots(None)
        .unwrap()
        .into_iter()
        .rfind(|s| s.kind == "delta")
        .expect("a delta")
        .version
        .to_string();
    for step in ["compact:1", "compact:2"] {
        assert!(
            !rewind_crashing_at(step, &["compact", p, "--before-version", &delta]).success(),
            "{step}"
        );
    }
    assert_eq!((export(&path), states(&path)), before);
    let engine = Engine::new(Store::open(&path, OpenMode::Existing).unwrap());
    assert_eq!(
        engine.store().snapshots(None).unwrap().len(),
        snapshots,
        "every killed write rolled back whole"
    );
    assert!(verify(&path, None, &|_, _| {}).unwrap().findings.is_empty());
}
