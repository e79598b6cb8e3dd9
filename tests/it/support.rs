//! Small builders shared by the tests.

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
