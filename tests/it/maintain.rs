//! The policy over time: `maintain` ticks with a chosen `now`, the lease, and the scenarios
//! the snapshot lifecycle promises.

use rewind::engine::{AppendOptions, Policy};
use rewind::model::{Bucket, Rules};
use rewind::process::Process;
use rewind::snapshot::compact::compact;
use rewind::snapshot::maintain::{Claim, Vacated, acquire, release, tick};
use rewind::snapshot::verify::{FindingKind, verify};
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::json;

use crate::support::{append, ev};

const HOUR: i64 = 3_600_000_000;

/// What took each snapshot, oldest first.
fn triggers(engine: &Engine) -> Vec<String> {
    engine
        .store()
        .snapshots(None)
        .unwrap()
        .into_iter()
        .map(|s| s.trigger)
        .collect()
}

#[test]
fn a_time_window_snapshots_only_after_writes_and_once_per_window() {
    let mut engine = crate::support::engine();
    engine
        .set_policy(
            None,
            &Policy {
                every: Some(0),
                bytes: Some(0),
                every_time_us: Some(HOUR),
                ..Policy::default()
            },
        )
        .unwrap();
    append(&mut engine, "s", json!({"a": 1}));
    let now = engine.store().now_us().unwrap();
    assert_eq!(
        tick(&mut engine, now + 30 * 60_000_000).unwrap().taken,
        0,
        "the window has not passed"
    );
    let first = tick(&mut engine, now + 2 * HOUR).unwrap();
    assert_eq!((first.taken, first.decisions[0].version), (1, Some(1)));
    assert_eq!(
        tick(&mut engine, now + 2 * HOUR).unwrap().taken,
        0,
        "a second tick right after does nothing"
    );
    assert_eq!(
        tick(&mut engine, now + 5 * HOUR).unwrap().taken,
        0,
        "no writes since the snapshot"
    );
    append(&mut engine, "s", json!({"a": 2}));
    // The last snapshot was taken (by the database's clock) just now: within the window.
    assert_eq!(tick(&mut engine, now + 30 * 60_000_000).unwrap().taken, 0);
    assert_eq!(tick(&mut engine, now + 3 * HOUR).unwrap().taken, 1);
    assert_eq!(triggers(&engine), ["time", "time"]);
}

#[test]
fn a_year_of_events_gets_monthly_snapshots_old_events_archived_and_every_past_time_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine =
        Engine::new(Store::open(&dir.path().join("year.db"), OpenMode::Create).unwrap());
    engine
        .set_policy(
            None,
            &Policy {
                every: Some(0),
                bytes: Some(0),
                per: Some(Bucket::Month),
                ..Policy::default()
            },
        )
        .unwrap();
    let start = rewind::time::parse("2025-01-01T00:00:00Z").unwrap();
    let mut times = Vec::new();
    for day in 0..365i64 {
        for k in 0..3i64 {
            let mut e = ev(
                "year",
                "Tick",
                json!({ "day": day, "k": k, format!("m{}", day % 12): day }),
            );
            let t = start + day * 24 * HOUR + k * 5 * HOUR;
            e.time = Some(t);
            engine.append(e, AppendOptions::default()).unwrap();
            times.push(t);
        }
    }
    let snaps = engine.store().snapshots(None).unwrap();
    assert_eq!(snaps.len(), 11, "the first event of each month but January");
    let months: Vec<String> = snaps
        .iter()
        .map(|s| rewind::time::format(s.ts)[..10].to_string())
        .collect();
    assert_eq!(months[0], "2025-02-01");
    assert_eq!(months[10], "2025-12-01");
    // Every past time, from a cold cache, equals a replay without snapshots.
    let mut plain = crate::support::engine();
    for (i, t) in times.iter().enumerate() {
        let mut e = ev(
            "year",
            "Tick",
            engine
                .store()
                .event(
                    &engine.store().require_stream("year").unwrap(),
                    i as u64 + 1,
                )
                .unwrap()
                .unwrap()
                .data,
        );
        e.time = Some(*t);
        plain
            .append(
                e,
                AppendOptions {
                    expected_version: None,
                    no_snapshots: true,
                },
            )
            .unwrap();
    }
    let check = |engine: &mut Engine, plain: &mut Engine, label: &str| {
        for probe in (0..365 * 24).step_by(97) {
            let at = Target::Time(start + i64::from(probe) * HOUR + 1);
            engine.clear_cache();
            assert_eq!(
                engine.state_at("year", at).unwrap().state,
                plain.state_at("year", at).unwrap().state,
                "{label}, hour {probe}"
            );
        }
    };
    check(&mut engine, &mut plain, "with monthly snapshots");
    // Events older than three months (before the end of the year) go to the archive, up to
    // the monthly snapshot that covers them; every past time is still exact.
    let year_end = start + 365 * 24 * HOUR;
    let report = rewind::snapshot::archive::archive(&mut engine, 90 * 24 * HOUR, year_end).unwrap();
    let october = engine.store().snapshots(None).unwrap()[8].version;
    assert_eq!(report.moved[0].upto, october, "up to the October snapshot");
    assert_eq!(
        engine.store().require_stream("year").unwrap().archived_upto,
        october
    );
    check(&mut engine, &mut plain, "after archiving");
}

#[test]
fn expired_snapshots_and_retention_go_at_a_tick_and_the_newest_stays() {
    let mut engine = crate::support::engine();
    engine
        .set_policy(
            None,
            &Policy {
                every: Some(10),
                expire_after_us: Some(HOUR),
                keep: Some(Rules {
                    keep_last: Some(3),
                    ..Rules::default()
                }),
                ..Policy::default()
            },
        )
        .unwrap();
    for i in 0..60 {
        append(&mut engine, "s", json!({ "i": i }));
    }
    let now = engine.store().now_us().unwrap();
    let t = tick(&mut engine, now).unwrap();
    assert_eq!(
        (t.expired, t.retained_out),
        (0, 3),
        "six snapshots, keep the last three"
    );
    let t = tick(&mut engine, now + 2 * HOUR).unwrap();
    assert_eq!(
        t.expired, 2,
        "all expired but the newest usable, which is never dropped"
    );
    let left: Vec<u64> = engine
        .store()
        .snapshots(None)
        .unwrap()
        .iter()
        .map(|s| s.version)
        .collect();
    assert_eq!(left, [60]);
    assert_eq!(
        *engine.state_at("s", Target::Version(55)).unwrap().state,
        json!({"i": 54})
    );
}

/// A maintainer that never runs here, so only its lease's expiry can free the lease.
fn elsewhere(pid: u32) -> Process {
    Process {
        host: "elsewhere".into(),
        pid,
        started: None,
    }
}

#[test]
fn one_maintainer_at_a_time_and_a_lapsed_lease_is_taken_over() {
    let mut engine = crate::support::engine();
    let (a, b, c) = (elsewhere(1), elsewhere(2), elsewhere(3));
    let now = 1_000 * HOUR;
    let Claim::Held(first) = acquire(&mut engine, &a, now, HOUR).unwrap() else {
        panic!("a free lease is taken");
    };
    assert_eq!(first.until, now + HOUR);
    assert_eq!(
        acquire(&mut engine, &b, now + HOUR / 2, HOUR).unwrap(),
        Claim::Refused(first.clone())
    );
    assert!(
        matches!(acquire(&mut engine, &a, now + HOUR / 2, HOUR).unwrap(), Claim::Held(l) if l.until == now + HOUR / 2 + HOUR),
        "the holder renews"
    );
    // A stops renewing: once the lease lapses, B takes over.
    let claim = acquire(&mut engine, &b, now + 2 * HOUR, HOUR).unwrap();
    let Claim::TookOver {
        lease,
        from,
        because,
    } = claim
    else {
        panic!("{claim:?}");
    };
    assert_eq!(
        (lease.holder, from.holder, because),
        (b.clone(), a, Vacated::Lapsed)
    );
    assert!(release(&mut engine, &b).unwrap());
    assert_eq!(engine.store().meta("maintainer_lease").unwrap(), None);
    assert!(!release(&mut engine, &b).unwrap(), "released once");
    assert!(
        matches!(
            acquire(&mut engine, &c, now + 2 * HOUR, HOUR).unwrap(),
            Claim::Held(_)
        ),
        "a released lease is free"
    );
    assert!(
        !release(&mut engine, &b).unwrap(),
        "only the holder releases"
    );
}

#[test]
fn a_lease_written_by_an_earlier_rewind_is_understood() {
    let mut engine = crate::support::engine();
    let now = 1_000 * HOUR;
    let me = elsewhere(1);
    // It named its holder in one string, and left an empty one when it released the lease:
    // neither names a process, so such a lease only ever lapses.
    let old =
        |until: i64| json!({"owner": "pid 4711 started 2026-01-01T00:00:00Z", "until": until});
    engine
        .store()
        .set_meta(
            "maintainer_lease",
            &json!({"owner": "", "until": 0}).to_string(),
        )
        .unwrap();
    assert!(matches!(
        acquire(&mut engine, &me, now, HOUR).unwrap(),
        Claim::Held(_)
    ));
    engine
        .store()
        .set_meta("maintainer_lease", &old(now + HOUR).to_string())
        .unwrap();
    assert!(
        matches!(acquire(&mut engine, &me, now, HOUR).unwrap(), Claim::Refused(l) if l.until == now + HOUR)
    );
    assert!(
        matches!(
            acquire(&mut engine, &me, now + HOUR, HOUR).unwrap(),
            Claim::Held(_)
        ),
        "once lapsed it is free, as it names no process to report"
    );
}

/// The lease against real processes: /proc on Linux, and the binary killed or stopped by a
/// signal.
#[cfg(target_os = "linux")]
mod processes {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    use rewind::process::Process;
    use rewind::snapshot::maintain::{Claim, Lease, Vacated, acquire};
    use rewind::{OpenMode, Store};

    use super::HOUR;

    /// What `acquire` says when `claimant` asks for a lease `holder` took an hour ago for two.
    fn claim_against(holder: &Process, claimant: &Process, after: i64) -> Claim {
        let mut engine = crate::support::engine();
        let now = 1_000 * HOUR;
        acquire(&mut engine, holder, now, 2 * HOUR).unwrap();
        acquire(&mut engine, claimant, now + after, HOUR).unwrap()
    }

    /// Another maintainer on this host than the test process, which holds the lease in these
    /// tests.
    fn neighbour() -> Process {
        let me = Process::current();
        Process {
            pid: me.pid + 1,
            ..me
        }
    }

    #[test]
    fn a_lease_whose_holder_still_runs_is_respected_until_it_lapses() {
        let holder = Process::current();
        assert!(holder.started.is_some(), "Linux has /proc");
        assert!(
            matches!(claim_against(&holder, &neighbour(), HOUR), Claim::Refused(l) if l.holder == holder)
        );
        assert!(matches!(
            claim_against(&holder, &neighbour(), 2 * HOUR),
            Claim::TookOver {
                because: Vacated::Lapsed,
                ..
            }
        ));
    }

    #[test]
    fn a_lease_whose_pid_now_belongs_to_a_later_process_is_taken_over_at_once() {
        let mut holder = Process::current();
        if let Some(started) = &mut holder.started {
            started.ticks += 1;
        }
        assert!(matches!(
            claim_against(&holder, &neighbour(), 1),
            Claim::TookOver { because: Vacated::Gone, from, .. } if from.holder == holder
        ));
    }

    #[test]
    fn a_lease_from_an_earlier_boot_is_taken_over_at_once() {
        let mut holder = Process::current();
        if let Some(started) = &mut holder.started {
            started.boot = "an earlier boot".into();
        }
        assert!(matches!(
            claim_against(&holder, &neighbour(), 1),
            Claim::TookOver {
                because: Vacated::Gone,
                ..
            }
        ));
    }

    /// The pid of a process that has exited (and been reaped).
    fn exited_pid() -> u32 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .arg("--version")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_lease_whose_holder_exited_is_taken_over_at_once() {
        // Should the pid be reused meanwhile, the new process started after this one.
        let holder = Process {
            pid: exited_pid(),
            ..Process::current()
        };
        assert!(matches!(
            claim_against(&holder, &neighbour(), 1),
            Claim::TookOver {
                because: Vacated::Gone,
                ..
            }
        ));
    }

    #[test]
    fn a_lease_from_another_host_is_respected_until_it_lapses_even_if_its_pid_is_free_here() {
        let holder = Process {
            host: "elsewhere".into(),
            pid: exited_pid(),
            ..Process::current()
        };
        assert!(matches!(
            claim_against(&holder, &neighbour(), HOUR),
            Claim::Refused(_)
        ));
        assert!(matches!(
            claim_against(&holder, &neighbour(), 2 * HOUR),
            Claim::TookOver {
                because: Vacated::Lapsed,
                ..
            }
        ));
    }

    #[test]
    fn a_lease_from_another_pid_namespace_is_respected_until_it_lapses() {
        // Another container with the same host name: its pids are not this /proc's.
        let mut holder = Process {
            pid: exited_pid(),
            ..Process::current()
        };
        if let Some(started) = &mut holder.started {
            started.pid_namespace = "pid:[1]".into();
        }
        assert!(matches!(
            claim_against(&holder, &neighbour(), HOUR),
            Claim::Refused(_)
        ));
        assert!(matches!(
            claim_against(&holder, &neighbour(), 2 * HOUR),
            Claim::TookOver {
                because: Vacated::Lapsed,
                ..
            }
        ));
    }

    /// What a spawned `rewind` wrote, line by line, as it comes.
    enum Output {
        Stdout(String),
        Stderr(String),
        Closed,
    }

    /// A `maintain --watch` running in the background on a temp database.
    struct Watching {
        child: std::process::Child,
        output: std::sync::mpsc::Receiver<Output>,
        stderr: String,
    }

    /// Long enough for a slow, busy machine; only reached if something is broken.
    const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

    impl Watching {
        /// Starts `maintain --watch` with an hour between ticks and waits for its first tick, so
        /// that it holds the lease.
        fn start(db: &Path) -> Self {
            let mut watching = Self::spawn(db);
            watching.tick();
            watching
        }

        /// Starts `maintain --watch` with an hour between ticks.
        fn spawn(db: &Path) -> Self {
            let mut child = Command::new(env!("CARGO_BIN_EXE_rewind"))
                .args([
                    "maintain",
                    db.to_str().unwrap(),
                    "--watch",
                    "--interval",
                    "1h",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let (tx, output) = std::sync::mpsc::channel();
            let stdout = child.stdout.take().unwrap();
            let stderr = child.stderr.take().unwrap();
            for (pipe, wrap) in [
                (
                    Box::new(stdout) as Box<dyn std::io::Read + Send>,
                    Output::Stdout as fn(String) -> Output,
                ),
                (Box::new(stderr), Output::Stderr),
            ] {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                        let _ = tx.send(wrap(line));
                    }
                    let _ = tx.send(Output::Closed);
                });
            }
            Self {
                child,
                output,
                stderr: String::new(),
            }
        }

        /// Waits for the next tick's line on stdout, collecting stderr meanwhile.
        fn tick(&mut self) {
            loop {
                match self.next() {
                    Output::Stdout(line) => {
                        assert!(line.contains(" tick: "), "{line}");
                        return;
                    }
                    Output::Stderr(line) => self.stderr.push_str(&(line + "\n")),
                    Output::Closed => panic!("maintain --watch ended: {}", self.stderr),
                }
            }
        }

        /// Reads on until what it said on stderr holds `needle`: stdout and stderr are read
        /// apart, so a line on one may arrive before an earlier line on the other.
        fn said(&mut self, needle: &str) -> bool {
            while !self.stderr.contains(needle) {
                match self.next() {
                    Output::Stdout(_) => {}
                    Output::Stderr(line) => self.stderr.push_str(&(line + "\n")),
                    Output::Closed => return false,
                }
            }
            true
        }

        /// The next line or end of output, or a failed test after the deadline.
        fn next(&mut self) -> Output {
            self.output.recv_timeout(DEADLINE).unwrap_or_else(|_| {
                let _ = self.child.kill();
                panic!(
                    "maintain --watch said nothing in {DEADLINE:?}: {}",
                    self.stderr
                )
            })
        }

        /// Sends a signal.
        fn signal(&self, signal: rustix::process::Signal) {
            rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), signal)
                .unwrap();
        }

        /// Waits for the process to end; its exit status and everything it wrote to stderr.
        fn finish(mut self) -> (std::process::ExitStatus, String) {
            let mut open = 2;
            while open > 0 {
                match self.next() {
                    Output::Closed => open -= 1,
                    Output::Stderr(line) => self.stderr.push_str(&(line + "\n")),
                    Output::Stdout(_) => {}
                }
            }
            (self.child.wait().unwrap(), std::mem::take(&mut self.stderr))
        }
    }

    impl Drop for Watching {
        /// A failed test leaves no maintainer behind, waiting an hour for its next tick.
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// A new, empty database.
    fn database(dir: &tempfile::TempDir) -> PathBuf {
        let path = dir.path().join("m.db");
        Store::open(&path, OpenMode::Create).unwrap();
        path
    }

    /// The lease as stored, if any.
    fn lease(db: &Path) -> Option<Lease> {
        Store::open_for_reading(db)
            .unwrap()
            .meta("maintainer_lease")
            .unwrap()
            .map(|text| serde_json::from_str(&text).unwrap())
    }

    #[test]
    fn a_killed_maintainers_lease_is_taken_over_at_once_by_the_next_on_the_same_host() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let mut first = Watching::start(&db);
        let pid = first.child.id();
        assert_eq!(lease(&db).map(|l| l.holder.pid), Some(pid));
        first.child.kill().unwrap();
        let (status, _) = first.finish();
        assert_eq!(status.signal(), Some(9), "SIGKILL cannot be caught");
        assert_eq!(
            lease(&db).map(|l| l.holder.pid),
            Some(pid),
            "so the lease stays"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(["maintain", db.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let host = Process::current().host;
        assert!(
            stderr.contains(&format!(
                "taking over the lease of pid {pid} on {host}, which is no longer running"
            )),
            "{stderr}"
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(" tick: 0 snapshots taken"));
        assert_eq!(lease(&db), None, "and released when done");
    }

    #[test]
    fn a_waiting_maintainer_follows_a_killed_one_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let mut first = Watching::start(&db);
        let held = lease(&db).unwrap();
        let mut second = Watching::spawn(&db);
        match second.next() {
            Output::Stderr(line) => assert_eq!(
                line,
                format!(
                    "waiting: {} holds the lease until {}",
                    held.holder,
                    rewind::time::format(held.until)
                )
            ),
            _ => panic!("the second maintainer does not wait"),
        }
        first.child.kill().unwrap();
        first.child.wait().unwrap();
        // Not an interval (an hour) later: the waiter looks again within seconds.
        second.tick();
        let taking_over = format!(
            "taking over the lease of {}, which is no longer running",
            held.holder
        );
        assert!(second.said(&taking_over), "{}", second.stderr);
        assert_eq!(lease(&db).map(|l| l.holder.pid), Some(second.child.id()));
        second.signal(rustix::process::Signal::TERM);
        assert_eq!(second.finish().0.code(), Some(0));
    }

    #[test]
    fn ctrl_c_stops_a_watching_maintainer_which_releases_the_lease_and_exits_130() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let watching = Watching::start(&db);
        let held = lease(&db).unwrap();
        // Meanwhile another maintainer is told who holds the lease, and until when.
        let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(["maintain", db.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "another maintainer, {}, holds the lease until {}",
                held.holder,
                rewind::time::format(held.until)
            )),
            "{stderr}"
        );
        // The watcher waits an hour for its next tick, but wakes at once on Ctrl-C.
        watching.signal(rustix::process::Signal::INT);
        let (status, stderr) = watching.finish();
        assert_eq!(status.code(), Some(130), "{stderr}");
        assert!(
            stderr.contains("stopped by SIGINT; the lease is released"),
            "{stderr}"
        );
        assert_eq!(lease(&db), None);
    }

    #[test]
    fn sigterm_stops_a_watching_maintainer_which_releases_the_lease_and_exits_0() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let watching = Watching::start(&db);
        assert!(lease(&db).is_some());
        watching.signal(rustix::process::Signal::TERM);
        let (status, stderr) = watching.finish();
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains("stopped by SIGTERM; the lease is released"),
            "{stderr}"
        );
        assert_eq!(lease(&db), None);
    }
}

#[test]
fn a_reducer_change_makes_snapshots_stale_reconstruction_ignores_them_verify_reports_them_compaction_drops_them()
 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    for i in 1..=250 {
        append(&mut engine, "acct", json!({ "amount": i }));
    }
    let id = engine.store().require_stream("acct").unwrap().id;
    engine
        .store()
        .set_stream_reducer(id, Some("jq:.state.total += .event.data.amount | .state"))
        .unwrap();
    engine.clear_cache();
    let rec = engine.state_at("acct", Target::Version(220)).unwrap();
    assert_eq!(rec.state["total"], json!((1..=220).sum::<i64>()));
    assert_eq!(rec.provenance.snapshot, None);
    assert!(
        rec.provenance
            .faults
            .iter()
            .all(|f| f.reason.starts_with("stale"))
    );
    let report = verify(&path, None, &|_, _| {}).unwrap();
    assert_eq!(
        report.findings.iter().map(|f| f.kind).collect::<Vec<_>>(),
        [FindingKind::Stale, FindingKind::Stale]
    );
    engine
        .take_snapshot("acct", Target::Head, "manual", None)
        .unwrap();
    let plan = compact(
        &mut engine,
        None,
        &Rules {
            drop_stale: true,
            ..Rules::default()
        },
        false,
    )
    .unwrap();
    assert_eq!(plan.drop.len(), 2);
    assert_eq!(verify(&path, None, &|_, _| {}).unwrap().findings, vec![]);
}

#[test]
fn a_cron_schedule_snapshots_streams_written_to_once_per_firing() {
    let mut engine = crate::support::engine();
    let policy = Policy {
        every: Some(0),
        bytes: Some(0),
        schedules: Some(vec!["*/5 * * * *".into()]),
        ..Policy::default()
    };
    engine.set_policy(None, &policy).unwrap();
    append(&mut engine, "written", json!({"a": 1}));
    engine.store().create_stream("idle", None).unwrap();
    let now = engine.store().now_us().unwrap();
    let first = tick(&mut engine, now + 10 * 60_000_000).unwrap();
    assert_eq!(first.taken, 1, "{:?}", first.decisions);
    assert_eq!(first.decisions[0].stream, "written");
    assert_eq!(
        tick(&mut engine, now + 10 * 60_000_000).unwrap().taken,
        0,
        "a tick right after does nothing"
    );
    append(&mut engine, "written", json!({"a": 2}));
    assert_eq!(
        tick(&mut engine, now + 10 * 60_000_000 + 1).unwrap().taken,
        0,
        "the schedule has not fired again"
    );
    assert_eq!(tick(&mut engine, now + 16 * 60_000_000).unwrap().taken, 1);
    assert_eq!(triggers(&engine), ["schedule", "schedule"]);
}

#[test]
fn archiving_as_policy_moves_old_history_at_a_tick_and_keeps_it_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    engine
        .set_policy(
            None,
            &Policy {
                every: Some(10),
                archive_after_us: Some(24 * HOUR),
                ..Policy::default()
            },
        )
        .unwrap();
    let start = rewind::time::parse("2025-06-01T00:00:00Z").unwrap();
    for i in 0..100i64 {
        let mut e = ev("s", "T", json!({ format!("k{}", i % 9): i }));
        e.time = Some(start + i * HOUR);
        engine.append(e, AppendOptions::default()).unwrap();
    }
    let before: Vec<_> = (0..=100)
        .map(|v| engine.state_at("s", Target::Version(v)).unwrap().state)
        .collect();
    let now = start + 95 * HOUR;
    let t = tick(&mut engine, now).unwrap();
    // The horizon is 71 hours after the first event (v72): the newest snapshot before it is v70.
    assert_eq!(t.archived, 70, "{:?}", t.decisions);
    assert_eq!(
        engine.store().require_stream("s").unwrap().archived_upto,
        70
    );
    engine.clear_cache();
    for v in 0..=100u64 {
        assert_eq!(
            engine.state_at("s", Target::Version(v)).unwrap().state,
            before[v as usize],
            "v{v}"
        );
    }
    assert_eq!(
        tick(&mut engine, now).unwrap().archived,
        0,
        "a second tick right after does nothing"
    );
}
