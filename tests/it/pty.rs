//! The built binary in a pseudo-terminal: `rewind demo` opens the debugger, keys step, mark
//! and take a snapshot, `q` quits, and the terminal is left as it was found. Every wait is
//! for something on the screen, bounded by a deadline; nothing sleeps.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use rewind::store::SnapshotMeta;
use rewind::{OpenMode, Store};
use rustix::termios::{LocalModes, tcgetattr};

const ROWS: u16 = 40;
const COLS: u16 = 120;

/// Bound on the whole scenario; a debug build needs a few seconds, so only a hang reaches it.
const DEADLINE: Duration = Duration::from_secs(60);

/// Just enough of a terminal to read what ratatui draws: cursor moves (`CSI row;col H`),
/// clearing, the switch to the alternate screen, and text. Colours, cursor visibility and
/// every other sequence are skipped. Each character takes one cell: ratatui moves the cursor
/// explicitly after a wide one, so a mismatch never spreads past it.
struct Screen {
    cells: Vec<Vec<char>>,
}

impl Screen {
    fn of(raw: &[u8]) -> Self {
        let blank = || vec![vec![' '; usize::from(COLS)]; usize::from(ROWS)];
        let mut cells = blank();
        let (mut row, mut col) = (0_usize, 0_usize);
        let text = String::from_utf8_lossy(raw);
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\x1b' => match chars.next() {
                    Some('[') => {
                        let mut params = String::new();
                        let mut last = None;
                        for p in chars.by_ref() {
                            if ('\x40'..='\x7e').contains(&p) {
                                last = Some(p);
                                break;
                            }
                            params.push(p);
                        }
                        match (last, params.as_str()) {
                            (Some('H' | 'f'), _) => {
                                let mut n = params
                                    .split(';')
                                    .map(|n| n.parse::<usize>().unwrap_or(1).max(1) - 1);
                                row = n.next().unwrap_or(0);
                                col = n.next().unwrap_or(0);
                            }
                            (Some('J'), "2") | (Some('h'), "?1049") => cells = blank(),
                            _ => {}
                        }
                    }
                    // Operating-system commands run to BEL or ST.
                    Some(']') => {
                        while let Some(p) = chars.next() {
                            if p == '\x07' || (p == '\x1b' && chars.next() == Some('\\')) {
                                break;
                            }
                        }
                    }
                    _ => {}
                },
                '\r' => col = 0,
                '\n' => row += 1,
                c if c.is_control() => {}
                c => {
                    if let Some(cell) = cells.get_mut(row).and_then(|r| r.get_mut(col)) {
                        *cell = c;
                    }
                    col += 1;
                }
            }
        }
        Self { cells }
    }

    fn text(&self) -> String {
        let lines: Vec<String> = self
            .cells
            .iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_string())
            .collect();
        lines.join("\n")
    }

    fn contains(&self, needle: &str) -> bool {
        self.cells
            .iter()
            .any(|r| r.iter().collect::<String>().contains(needle))
    }

    /// The status line, the last row: ` v799/800 · cached … · mark v800   message`.
    fn status(&self) -> String {
        self.cells[usize::from(ROWS) - 1]
            .iter()
            .collect::<String>()
            .trim()
            .to_string()
    }

    /// The cursor and head versions from the status line (`v799/800`).
    fn position(&self) -> Option<(u64, u64)> {
        let status = self.status();
        let (cursor, head) = status
            .strip_prefix('v')?
            .split_whitespace()
            .next()?
            .split_once('/')?;
        Some((cursor.parse().ok()?, head.parse().ok()?))
    }
}

/// The debugger running on the child side of a pty, killed on drop if the test fails first.
struct Session {
    child: Child,
    pty: pty_process::blocking::Pty,
    output: Receiver<Vec<u8>>,
    raw: Vec<u8>,
    deadline: Instant,
}

impl Session {
    fn spawn(args: &[&str], home: &Path) -> Self {
        Self::spawn_with(args, home, &[])
    }

    /// As [`Session::spawn`], with more of the environment set.
    fn spawn_with(args: &[&str], home: &Path, env: &[(&str, &str)]) -> Self {
        let (pty, pts) = pty_process::blocking::open().unwrap();
        pty.resize(pty_process::Size::new(ROWS, COLS)).unwrap();
        // The child becomes a session leader with the pty as its controlling terminal, so
        // crossterm's /dev/tty is this pty and not the terminal the tests run in.
        let child = pty_process::blocking::Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(args)
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("TERM", "xterm-256color")
            .env_remove("TMUX")
            .env_remove("STY")
            .envs(env.iter().copied())
            .spawn(pts)
            .unwrap();
        // Reading blocks, so it happens on its own thread; the test waits on the channel with
        // a timeout. The thread ends when the last holder of the child side closes it (EIO).
        let mut reader = std::fs::File::from(pty.as_fd().try_clone_to_owned().unwrap());
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0_u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        });
        Self {
            child,
            pty,
            output,
            raw: Vec::new(),
            deadline: Instant::now() + DEADLINE,
        }
    }

    fn press(&mut self, keys: &str) {
        (&self.pty).write_all(keys.as_bytes()).unwrap();
    }

    /// Reads output until the screen satisfies `done`, and returns that screen.
    fn wait_for(&mut self, what: &str, done: impl Fn(&Screen) -> bool) -> Screen {
        loop {
            let screen = Screen::of(&self.raw);
            if done(&screen) {
                return screen;
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => {
                    self.raw.extend(chunk);
                    self.raw.extend(self.output.try_iter().flatten());
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "timed out waiting for {what}; the screen:\n{}",
                        screen.text()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "the terminal closed while waiting for {what}; the screen:\n{}",
                    screen.text()
                ),
            }
        }
    }

    /// Reads the rest of the output until the child side closes, then reaps the child.
    fn wait_exit(&mut self) -> ExitStatus {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.raw.extend(chunk),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "timed out waiting for the debugger to exit; the screen:\n{}",
                    Screen::of(&self.raw).text()
                ),
            }
        }
        self.child.wait().unwrap()
    }

    fn local_modes(&self) -> LocalModes {
        // Linux answers tcgetattr on the parent side with the child side's settings.
        tcgetattr(&self.pty).unwrap().local_modes
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn manual_snapshots(db: &Path) -> Vec<SnapshotMeta> {
    let store = Store::open(db, OpenMode::ReadOnly).unwrap();
    let mut all = store.snapshots(None).unwrap();
    all.retain(|s| s.trigger == "manual");
    all
}

fn last(raw: &[u8], seq: &[u8]) -> Option<usize> {
    raw.windows(seq.len()).rposition(|w| w == seq)
}

#[test]
fn demo_step_mark_snapshot_quit_restores_the_terminal() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("demo.db");
    let db_arg = db.to_str().unwrap();

    // Build first, without a terminal, to count the snapshots from before the debugger ran.
    let built = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["demo", "--path", db_arg, "--no-open"])
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let before = manual_snapshots(&db);

    let mut session = Session::spawn(&["demo", "--path", db_arg], home.path());
    let first = session.wait_for("the first frame", |s| {
        s.contains("Streams") && s.position().is_some()
    });
    let (cursor, head) = first.position().unwrap();
    assert_eq!(cursor, head, "the debugger opens at the newest event");
    assert!(
        first.contains("Timeline  agent-run-7"),
        "the demo opens on the crashed agent run:\n{}",
        first.text()
    );
    assert!(
        !session.local_modes().contains(LocalModes::ICANON),
        "the debugger runs in raw mode"
    );

    session.press("k");
    session.wait_for("k to step back", |s| s.position() == Some((head - 1, head)));
    // In one burst: Ctrl-G and Ctrl-B, which are not `g` (to v0) nor `b` (blame), then `j`.
    session.press("\x07\x02j");
    session.wait_for("j to step forward, the held letters doing nothing", |s| {
        s.position() == Some((head, head)) && !s.contains("Blame")
    });
    // A prompt edited as a shell line, in one burst: `5`, Ctrl-A, `-`, Enter is `:-5`.
    session.press(":5\x01-\r");
    session.wait_for(":-5 to move five back", |s| {
        s.position() == Some((head - 5, head))
    });
    session.press("G");
    session.wait_for("G to the newest", |s| s.position() == Some((head, head)));
    session.press("m");
    let mark = format!("mark v{head}");
    session.wait_for("m to set the mark", |s| s.status().contains(&mark));
    // `s` then Enter: Enter takes the snapshot if `s` asks for an optional label first.
    session.press("s\r");
    let taken = session.wait_for("the snapshot message", |s| {
        s.status().contains("snapshot taken")
    });
    let status = taken.status();
    let version: u64 = status
        .split("snapshot taken at v")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no version in the status line {status:?}"));
    assert_eq!(version, head);
    let before_quit = session.raw.len();
    session.press("q");
    let status = session.wait_exit();
    assert!(status.success(), "rewind demo exited with {status}");

    // The snapshot is in the database, and it is the one at the cursor.
    let after = manual_snapshots(&db);
    assert_eq!(after.len(), before.len() + 1, "one manual snapshot more");
    let new = after
        .iter()
        .find(|s| !before.iter().any(|b| b.id == s.id))
        .unwrap();
    assert_eq!((new.version, new.kind.as_str()), (head, "full"));

    // The terminal is restored: what `q` made it write ends on the main screen with the
    // cursor shown, and the pty is back in cooked mode.
    let tail = &session.raw[before_quit..];
    assert!(
        last(tail, b"\x1b[?1049l") > last(tail, b"\x1b[?1049h"),
        "left the alternate screen on quit: {:?}",
        String::from_utf8_lossy(tail)
    );
    assert!(
        last(tail, b"\x1b[?25h") > last(tail, b"\x1b[?25l"),
        "showed the cursor on quit: {:?}",
        String::from_utf8_lossy(tail)
    );
    let modes = session.local_modes();
    assert!(
        modes.contains(LocalModes::ICANON | LocalModes::ECHO),
        "cooked mode again, got {modes:?}"
    );
}

#[test]
fn keys_in_one_read_end_on_the_frame_render_draws() {
    // The debugger got `g` and Tab in one read and kept v1,200's state under "State @ v0";
    // now each burst ends on the frame `rewind render --keys` draws for the same keys.
    let home = tempfile::tempdir().unwrap();
    let db = crate::bursts::fixture(home.path());
    let db_arg = db.to_str().unwrap();
    let mut session = Session::spawn(
        &["open", db_arg, "--stream", "order", "--at", "40"],
        home.path(),
    );
    session.wait_for("the first frame", |s| s.position() == Some((40, 60)));
    let mut script = String::new();
    for (burst, cursor) in [("g\t", 0), ("\tjjjjjjjjjjjjjjjjjjjj\t", 20), ("\tG\t", 60)] {
        session.press(burst);
        script.push_str(burst);
        let keys: Vec<_> = script
            .chars()
            .map(|c| match c {
                '\t' => KeyEvent::from(KeyCode::Tab),
                c => KeyEvent::from(KeyCode::Char(c)),
            })
            .collect();
        let start = rewind::tui::app::Start {
            stream: Some("order".into()),
            at: Some(40),
            width: COLS,
            height: ROWS,
            deterministic: true,
            ..Default::default()
        };
        let want = crate::bursts::rendered(&db, &start, &keys);
        // The status line tells how long the state took: compare everything above it.
        let above = |text: &str| {
            text.lines()
                .take(usize::from(ROWS) - 1)
                .map(str::trim_end)
                .collect::<Vec<_>>()
                .join("\n")
        };
        let want = above(&want);
        let screen = session.wait_for(&format!("the frame render draws after {script:?}"), |s| {
            s.position().map(|p| p.0) == Some(cursor) && above(&s.text()) == want
        });
        assert!(screen.text().contains(&format!("State @ v{cursor}")));
    }
    session.press("q");
    assert!(session.wait_exit().success());
}

#[test]
fn open_on_a_file_it_cannot_write_opens_read_only_and_says_so() {
    if !crate::support::privileged("a read-only bind mount") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    std::fs::create_dir(&data).unwrap();
    crate::bursts::fixture(&data);
    let mount = crate::support::Mount::read_only(&data, &home.path().join("ro"));
    let ro = mount.0.clone();
    let db = ro.join("bursts.db");
    let mut session = Session::spawn(&["open", db.to_str().unwrap()], home.path());
    session.wait_for("the read-only message", |s| {
        s.status().contains("opened read-only")
    });
    session.press("s");
    session.wait_for("snapshots refused", |s| s.status().contains("read-only"));
    session.press("q");
    assert!(session.wait_exit().success());
}

#[test]
fn following_a_langgraph_file_shows_checkpoints_as_they_land_and_forks_as_branches() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("live.sqlite");
    // `basic` (12 checkpoints) and `fork` (13, with a fork) interleaved as they were made.
    let mut owner = crate::support::LangGraphOwner::new(&path, &["basic", "fork"]);
    owner.write(5);
    let mut session = Session::spawn(&["open", path.to_str().unwrap()], home.path());
    session.wait_for("the first five checkpoints", |s| {
        s.position() == Some((5, 5)) && s.contains("basic")
    });
    session.press("f");
    session.wait_for("following", |s| s.status().contains("following"));
    // The run goes on while the debugger follows it.
    owner.write(6);
    session.wait_for("the cursor on the newest", |s| {
        s.position() == Some((11, 11))
    });
    // Stepped back to look at one: the cursor stays there as more land.
    session.press("k");
    session.wait_for("one back", |s| s.position() == Some((10, 11)));
    owner.write(1);
    session.wait_for("the head grown, the cursor kept", |s| {
        s.position() == Some((10, 12))
    });
    // Back at the newest, it follows again.
    session.press("G");
    let screen = session.wait_for("the newest checkpoint of basic", |s| {
        s.position() == Some((12, 12))
    });
    assert!(screen.contains("agent"), "{}", screen.text());
    // The other thread starts, forks (update_state on an earlier checkpoint) and goes on:
    // its branches appear, the line with the newest checkpoint keeping the thread's name.
    owner.write(owner.ids.len() - owner.next);
    session.wait_for("the fork's branch", |s| s.contains("fork~1f1e"));
    session.press("q");
    assert!(session.wait_exit().success());
    // The file was only read: rewind's mirror lives in the data folder, nothing beside it.
    let beside: Vec<String> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("live"))
        .collect();
    assert_eq!(
        beside.len(),
        3,
        "{beside:?}: the file, its log and shared memory"
    );
}

#[test]
fn sigterm_and_sighup_give_the_terminal_back() {
    for signal in ["TERM", "HUP"] {
        let home = tempfile::tempdir().unwrap();
        let data = home.path().join("data");
        std::fs::create_dir(&data).unwrap();
        crate::bursts::fixture(&data);
        let db = data.join("bursts.db");
        let mut session = Session::spawn(&["open", db.to_str().unwrap()], home.path());
        session.wait_for("the first frame", |s| s.position().is_some());
        let before = session.raw.len();
        let killed = Command::new("kill")
            .args([format!("-{signal}"), session.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = session.wait_exit();
        assert!(!status.success(), "SIG{signal}: stopped, not a clean quit");
        let tail = &session.raw[before..];
        assert!(
            last(tail, b"\x1b[?1049l").is_some(),
            "SIG{signal}: left the alternate screen: {:?}",
            String::from_utf8_lossy(tail)
        );
        assert!(
            last(tail, b"\x1b[?25h").is_some(),
            "SIG{signal}: showed the cursor: {:?}",
            String::from_utf8_lossy(tail)
        );
        assert!(
            last(tail, b"\x1b[?1000l").is_some(),
            "SIG{signal}: let go of the mouse: {:?}",
            String::from_utf8_lossy(tail)
        );
        let modes = session.local_modes();
        assert!(
            modes.contains(LocalModes::ICANON | LocalModes::ECHO),
            "SIG{signal}: cooked mode again, got {modes:?}"
        );
    }
}

#[test]
fn the_pager_and_the_editor_get_the_terminal_and_give_it_back() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("t.db");
    let db_arg = db.to_str().unwrap();
    for (kind, data) in [
        ("Placed", r#"{"status":"placed"}"#),
        ("Paid", r#"{"status":"paid"}"#),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(["append", db_arg, "order-1", kind, data])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    // A "pager" that keeps what it was given and says where it ran; an "editor" that
    // changes its file.
    let seen = home.path().join("seen.json");
    let pager = home.path().join("pager.sh");
    std::fs::write(
        &pager,
        format!(
            "#!/bin/sh\ncp \"$1\" {}\necho \"$1\" > {}.path\n",
            seen.display(),
            seen.display()
        ),
    )
    .unwrap();
    let editor = home.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\necho changed >> \"$1\" 2>/dev/null\nexit 0\n",
    )
    .unwrap();
    for script in [&pager, &editor] {
        std::fs::set_permissions(script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let mut session = Session::spawn_with(
        &["open", db_arg],
        home.path(),
        &[
            ("PAGER", pager.to_str().unwrap()),
            ("EDITOR", editor.to_str().unwrap()),
        ],
    );
    session.wait_for("the first frame", |s| s.position() == Some((2, 2)));
    // Enter shows the event whole; v hands it to the pager, in one burst.
    session.press("\rv");
    session.wait_for("back from the pager", |s| s.status().contains("back from"));
    let given: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&seen).unwrap()).unwrap();
    assert_eq!(given["type"], "Paid");
    assert_eq!(given["data"]["status"], "paid");
    let copy = std::fs::read_to_string(seen.with_extension("json.path")).unwrap();
    assert!(
        !Path::new(copy.trim()).exists(),
        "the copy it was given is removed: {copy}"
    );
    assert!(
        !session.local_modes().contains(LocalModes::ICANON),
        "raw mode again after the pager"
    );
    // The debugger goes on: keys still work; E says edits are not kept.
    session.press("\x1b");
    session.wait_for("Esc to close the viewer", |s| s.contains("Streams"));
    session.press("kE");
    session.wait_for("back from the editor", |s| {
        s.status().contains("edits are not kept") && s.position() == Some((1, 2))
    });
    session.press("q");
    assert!(session.wait_exit().success());
    let modes = session.local_modes();
    assert!(
        modes.contains(LocalModes::ICANON | LocalModes::ECHO),
        "{modes:?}"
    );
}

#[test]
fn a_terminal_that_goes_away_ends_the_debugger() {
    // The terminal's other side closed (a tmux pane killed, an ssh connection dropped):
    // crossterm reads its end-of-file for ever, so the debugger must notice by itself
    // rather than spin on the CPU with no one to see it. Read here on the test's own
    // thread, so that closing `pty` closes the terminal's only other side.
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    std::fs::create_dir(&data).unwrap();
    crate::bursts::fixture(&data);
    let db = data.join("bursts.db");
    let (pty, pts) = pty_process::blocking::open().unwrap();
    pty.resize(pty_process::Size::new(ROWS, COLS)).unwrap();
    let mut child = pty_process::blocking::Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["open", db.to_str().unwrap()])
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("TERM", "xterm-256color")
        .env_remove("TMUX")
        .env_remove("STY")
        .spawn(pts)
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + DEADLINE;
    let mut raw = Vec::new();
    while Screen::of(&raw).position().is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            panic!("no first frame; the screen:\n{}", Screen::of(&raw).text());
        }
        let mut fds = [PollFd::new(&pty, PollFlags::IN)];
        let wait = Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        if poll(&mut fds, Some(&wait)).unwrap_or(0) == 0 {
            continue;
        }
        let mut buf = [0_u8; 8192];
        match (&pty).read(&mut buf) {
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the terminal: {e}"),
        }
    }
    drop(pty);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    match done_rx.recv_timeout(DEADLINE) {
        Ok(status) => {
            status.unwrap();
        }
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the debugger was still running {DEADLINE:?} after its terminal went away");
        }
    }
}

#[test]
fn a_debugger_following_an_eventsourcing_server_shows_a_write_its_channel_tells_of() {
    use crate::pg::{ADMIN, ADMIN_PASSWORD, Server};
    let Some(server) = Server::start("the debugger following a PostgreSQL source") else {
        return;
    };
    server.load("bank", "postgres/bank.sql");
    let url = server.url(ADMIN, Some(ADMIN_PASSWORD), "bank");
    let home = tempfile::tempdir().unwrap();
    let mut session = Session::spawn(&["open", &url], home.path());
    session.wait_for("the first frame", |s| s.text().contains("Streams 6"));
    // The application saves a new aggregate as eventsourcing does: the row and a NOTIFY on
    // the events table's channel, in one transaction. The debugger LISTENs, and between
    // notifications reads nothing from the server.
    server
        .admin("bank")
        .batch_execute(
            "BEGIN;
             INSERT INTO bank_events (originator_id, originator_version, topic, state)
               VALUES ('00000000-0000-4000-8000-0000000000aa', 1, 'bank:Dog.Registered',
                       convert_to('{\"timestamp\":{\"_type_\":\"datetime_iso\",\"_data_\":\"2026-12-03T17:00:00+00:00\"},\"originator_topic\":\"bank:Dog\",\"name\":\"Rex\"}', 'UTF8'));
             NOTIFY bank_events;
             COMMIT;",
        )
        .unwrap();
    session.wait_for("the new aggregate", |s| s.text().contains("Streams 7"));
    session.press("q");
    assert!(session.wait_exit().success());
}

#[test]
fn a_source_that_cannot_be_read_for_a_while_is_said_on_the_status_line_until_it_can() {
    let home = tempfile::tempdir().unwrap();
    let source = home.path().join("events.jsonl");
    let good = "{\"stream\":\"a\",\"type\":\"x\",\"data\":{\"n\":1},\"time\":\"2026-01-01T00:00:00Z\"}\n\
                {\"stream\":\"a\",\"type\":\"x\",\"data\":{\"n\":2},\"time\":\"2026-01-01T00:00:01Z\"}\n";
    std::fs::write(&source, good).unwrap();
    let mut session = Session::spawn(&["open", source.to_str().unwrap()], home.path());
    session.wait_for("the first frame", |s| s.position() == Some((2, 2)));
    // A writer's line that is not JSON: the debugger says so and keeps what it read.
    std::fs::write(&source, format!("{good}{{\"stream\": broken\n")).unwrap();
    let screen = session.wait_for("the source said unreadable", |s| {
        s.status().contains("cannot be read now")
    });
    assert!(screen.status().contains("line 3"), "{}", screen.status());
    assert_eq!(screen.position(), Some((2, 2)));
    // The line taken back: the status line no longer says the source cannot be read.
    std::fs::write(&source, good).unwrap();
    let screen = session.wait_for("the message gone", |s| {
        !s.status().contains("cannot be read now")
    });
    assert_eq!(screen.position(), Some((2, 2)));
    session.press("q");
    assert!(session.wait_exit().success());
}
