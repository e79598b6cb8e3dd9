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

/// Whether a test that needs root and mount(8) may run; if not, says why on stderr, and
/// fails where `REWIND_REQUIRE_PRIVILEGED` is set (as `.ci/run` sets it).
pub fn privileged(what: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    let mount = std::process::Command::new("mount")
        .arg("--version")
        .output()
        .is_ok();
    if root && mount {
        return true;
    }
    let why = format!("skipped: {what} needs root and mount(8) (root: {root}, mount: {mount})");
    assert!(
        std::env::var_os("REWIND_REQUIRE_PRIVILEGED").is_none(),
        "{why}, and REWIND_REQUIRE_PRIVILEGED is set"
    );
    eprintln!("{why}");
    false
}

/// A file system mounted for a test, unmounted when dropped.
pub struct Mount(pub std::path::PathBuf);

impl Mount {
    fn run(args: &[&str]) {
        let out = std::process::Command::new("mount")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount {args:?}: {out:?}");
    }

    /// `dir` again at `at`, read-only (a bind mount).
    pub fn read_only(dir: &std::path::Path, at: &std::path::Path) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let (dir, at_text) = (dir.to_str().unwrap(), at.to_str().unwrap());
        Self::run(&["--bind", dir, at_text]);
        let mount = Self(at.to_path_buf());
        Self::run(&["-o", "remount,bind,ro", at_text]);
        mount
    }

    /// A tmpfs of `size` (e.g. `8m`) at `at`.
    pub fn tmpfs(at: &std::path::Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let options = format!("size={size}");
        Self::run(&["-t", "tmpfs", "-o", &options, "tmpfs", at.to_str().unwrap()]);
        Self(at.to_path_buf())
    }

    /// Bytes free on it.
    pub fn free(&self) -> u64 {
        let stat = rustix::fs::statvfs(&self.0).unwrap();
        stat.f_bavail * stat.f_frsize
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).output();
    }
}

/// Makes a database file look as rewind before event chains left it (schema 4): without
/// the chain columns (nor the lineage columns of schema 6).
pub const BEFORE_CHAINS: &str = "ALTER TABLE streams DROP COLUMN base_id;
     ALTER TABLE streams DROP COLUMN base_version;
     ALTER TABLE events DROP COLUMN chain;
     ALTER TABLE streams DROP COLUMN head_hash;
     DELETE FROM meta WHERE key = 'chain_pending';
     PRAGMA user_version = 4;";

/// A LangGraph-shaped file that an owner fills with the fixture's checkpoints, in the order
/// LangGraph wrote them (each checkpoint, then the writes under it).
pub struct LangGraphOwner {
    pub conn: rusqlite::Connection,
    pub ids: Vec<(String, String, String)>,
    pub next: usize,
}

impl LangGraphOwner {
    pub fn new(path: &std::path::Path, threads: &[&str]) -> Self {
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sources/langgraph/agent.sqlite");
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; ATTACH 'file:{}?immutable=1' AS fixture;",
            fixture.display()
        ))
        .unwrap();
        let schema: Vec<String> = conn
            .prepare("SELECT sql FROM fixture.sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for sql in schema {
            conn.execute_batch(&sql).unwrap();
        }
        let ids = conn
            .prepare(&format!(
                "SELECT thread_id, checkpoint_ns, checkpoint_id FROM fixture.checkpoints
                 WHERE thread_id IN ({}) ORDER BY checkpoint_id",
                threads
                    .iter()
                    .map(|t| format!("'{t}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        Self { conn, ids, next: 0 }
    }

    /// Writes the next checkpoint and not yet the writes under it.
    pub fn checkpoint(&mut self) {
        let key = self.ids[self.next].clone();
        self.copy("checkpoints", &key);
    }

    /// Writes the writes under the checkpoint [`Self::checkpoint`] wrote, and moves on;
    /// whether there were any.
    pub fn writes(&mut self) -> bool {
        let key = self.ids[self.next].clone();
        self.next += 1;
        self.copy("writes", &key) > 0
    }

    fn copy(&self, table: &str, key: &(String, String, String)) -> usize {
        self.conn
            .execute(
                &format!(
                    "INSERT INTO main.{table} SELECT * FROM fixture.{table}
                     WHERE thread_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id = ?3"
                ),
                (&key.0, &key.1, &key.2),
            )
            .unwrap()
    }

    /// Writes the next `n` checkpoints and their writes.
    pub fn write(&mut self, n: usize) {
        for _ in 0..n {
            self.checkpoint();
            self.writes();
        }
    }
}
