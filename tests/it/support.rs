//! Small builders shared by the tests, and the built binary run on temp databases.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rewind::{Engine, NewEvent, Store};
use serde_json::Value;

pub fn engine() -> Engine {
    Engine::new(Store::open_in_memory().unwrap())
}

pub fn ev(stream: &str, kind: &str, data: Value) -> NewEvent {
    NewEvent {
        stream: stream.into(),
        kind: kind.into(),
        data,
        meta: None,
        time: None,
        idempotency_key: None,
    }
}

pub fn append(engine: &mut Engine, stream: &str, data: Value) -> rewind::Event {
    let report = engine
        .append(
            ev(stream, "Set", data),
            rewind::engine::AppendOptions::default(),
        )
        .unwrap();
    report.events.into_iter().next().unwrap()
}

/// What a run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Only a hang takes this long: a run that does is killed and the test fails.
const HANG: Duration = Duration::from_secs(120);

/// Runs the built binary and waits for it (at most [`HANG`]).
pub fn rewind(args: &[&str]) -> Run {
    let child = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let Ok(out) = rx.recv_timeout(HANG) else {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        panic!("rewind {args:?} did not finish within {HANG:?}");
    };
    let out = out.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs the binary; it must succeed. Returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let run = rewind(args);
    assert_eq!(run.code, 0, "rewind {args:?}\nstderr: {}", run.stderr);
    run.stdout
}

/// Runs the binary; it must exit with `code`. Returns its stderr.
pub fn fails(args: &[&str], code: i32) -> String {
    let run = rewind(args);
    assert_eq!(
        run.code, code,
        "rewind {args:?}\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    run.stderr
}

/// A database in a temp directory, made by `rewind init`.
pub struct Db {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Db {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        ok(&["init", path.to_str().unwrap()]);
        Self { _dir: dir, path }
    }

    /// The path, as an argument.
    pub fn p(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Writes a file beside the database; returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.path.with_file_name(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    }
}
