//! The debugger's performance targets, measured. Run with `cargo bench --bench tui` (all
//! workloads) or `cargo bench --bench tui -- NAME…` for some of: tui-start, tui-step,
//! tui-rss, tui-big, tui-summary.
//!
//! A plain harness like `engine.rs`: one step is an action applied through `App::dispatch`
//! and one frame drawn into a reused 200×50 `TestBackend`, as the interactive loop does, and
//! the targets are percentiles over thousands of such steps. The databases take a while to
//! build, so they are kept under `target/bench-data/` and reused once complete.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)] // a harness

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;

mod common;
use common::{Rng, item, percentile};
#[path = "common/langgraph.rs"]
mod langgraph_file;
use rewind::tui::action::Action;
use rewind::tui::app::{App, Start};
use rewind::{Engine, OpenMode, Store, Target};
use serde_json::{Value, json};

// The same allocator as the binary, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The frame size every workload draws.
const SIZE: (u16, u16) = (200, 50);
/// Streams of the standard database, and events in each.
const STREAMS: u64 = 1_000;
const EVENTS: u64 = 1_000;
/// Events of the one long stream added to it (named to sort after the others).
const LONG: u64 = 100_000;
const LONG_NAME: &str = "stream-long";
/// Changing this rebuilds the cached databases.
const DATA_VERSION: &str = "tui-bench data v1";
/// Set in the child process that measures resident memory: `DB STREAM|-`.
const RSS_PROBE: &str = "REWIND_BENCH_RSS_PROBE";

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Prints p50/p99/max of `samples`, sorted in place.
fn report(name: &str, samples: &mut [Duration], target: &str) {
    samples.sort_unstable();
    println!(
        "{name:<46} p50 {:>9}  p99 {:>9}  max {:>9}  (n={}, target {target})",
        ms(percentile(samples, 0.5)),
        ms(percentile(samples, 0.99)),
        ms(*samples.last().unwrap()),
        samples.len()
    );
}

/// `target/`: the bench binary runs from `target/release/deps/`.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// A database under `target/bench-data/`, built by `build` unless a complete one is there.
fn cached_db(name: &str, build: impl FnOnce(&mut Engine)) -> PathBuf {
    let dir = target_dir().join("bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    let marker = dir.join(format!("{name}.done"));
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == DATA_VERSION) {
        return path;
    }
    let _ = std::fs::remove_file(&marker);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    println!("building {} (once; kept for later runs)", path.display());
    let started = Instant::now();
    let mut engine = Engine::new(Store::open(&path, OpenMode::Create).unwrap());
    build(&mut engine);
    drop(engine);
    // Fold the WAL into the file so that a later open starts from a clean file.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .unwrap();
    drop(conn);
    std::fs::write(&marker, DATA_VERSION).unwrap();
    println!(
        "  built in {:.1} s, {:.0} MB",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&path).unwrap().len() as f64 / 1e6
    );
    path
}

/// Event `i` (0-based) of an order-like stream: small JSON objects of a few fields, merged
/// into a state of a few dozen fields (a bounded map of line items, an address, a payment).
fn order_event(rng: &mut Rng, i: u64) -> (&'static str, Value) {
    const STATUS: [&str; 5] = ["open", "paid", "packed", "shipped", "delivered"];
    const CITIES: [&str; 6] = ["Lyon", "Porto", "Graz", "Turku", "Ghent", "Brno"];
    if i == 0 {
        let id = rng.below(1_000_000);
        let tier = ["basic", "gold", "platinum"][(id % 3) as usize];
        return (
            "OrderCreated",
            json!({
                "customer": {"id": format!("cust-{id:06}"), "name": format!("Customer {id}"),
                             "tier": tier},
                "status": "open",
                "currency": "EUR",
                "items": {},
            }),
        );
    }
    let sku = format!("sku-{:04}", rng.below(40));
    match rng.below(10) {
        0..=3 => (
            "ItemAdded",
            json!({"items": {sku: {"qty": 1 + rng.below(5), "price_cents": 99 + rng.below(20_000)}},
                   "total_cents": rng.below(500_000)}),
        ),
        4 | 5 => (
            "ItemRemoved",
            json!({"items": {sku: null}, "total_cents": rng.below(500_000)}),
        ),
        6 => (
            "StatusChanged",
            json!({"status": STATUS[rng.below(5) as usize], "updated_by": format!("user-{:02}", rng.below(50))}),
        ),
        7 => (
            "AddressSet",
            json!({"address": {"street": format!("{} Main St", 1 + rng.below(400)),
                               "city": CITIES[rng.below(6) as usize],
                               "zip": format!("{:05}", rng.below(100_000))}}),
        ),
        8 => (
            "PaymentCaptured",
            json!({"payment": {"method": "card", "amount_cents": rng.below(500_000),
                               "ref": format!("pay-{:012x}", rng.next() >> 16)}}),
        ),
        _ => (
            "NoteAdded",
            json!({"notes": i, "last_note": format!("called customer, ticket #{}", rng.below(100_000))}),
        ),
    }
}

/// 1,000 streams of 1,000 events, interleaved in time one second apart, plus one stream of
/// 100,000 events; the default snapshot policy (every 100 events) takes the snapshots.
fn standard_db() -> PathBuf {
    cached_db("tui-1m", |engine| {
        const START_US: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
        const SECOND: i64 = 1_000_000;
        let mut seeds = Rng(0x2545_F491_4F6C_DD1D);
        let names: Vec<String> = (0..STREAMS).map(|s| format!("stream-{s:04}")).collect();
        // Round i: the i-th event of every stream, one second apart.
        let items = (0..EVENTS).flat_map(move |i| {
            let names = names.clone();
            let mut rng = Rng(seeds.next() | 1);
            (0..STREAMS).map(move |s| {
                let (kind, data) = order_event(&mut rng, i);
                let tick = (i * STREAMS + s) as i64;
                item(
                    &names[s as usize],
                    kind,
                    data,
                    Some(START_US + tick * SECOND),
                )
            })
        });
        let report = engine.import(items, false).unwrap();
        // The long stream spans the same days, an event every ten seconds.
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let long = (0..LONG).map(move |i| {
            let (kind, data) = order_event(&mut rng, i);
            let time = START_US + i as i64 * 10 * SECOND + SECOND / 2;
            item(LONG_NAME, kind, data, Some(time))
        });
        let report2 = engine.import(long, false).unwrap();
        println!(
            "  {} events, {} policy snapshots",
            report.appended + report2.appended,
            report.snapshots + report2.snapshots
        );
    })
}

/// The ~1 MB state of `engine.rs`'s `big` workload (the same generator and seed): 10,000
/// keys, 10,000 events each replacing 1% of them.
fn big_db() -> PathBuf {
    cached_db("tui-big", |engine| {
        let (items, _) = common::big_events(10_000);
        engine
            .import(
                items
                    .into_iter()
                    .map(|data| item("big", "Patch", data, None)),
                false,
            )
            .unwrap();
    })
}

fn open_app(path: &Path, stream: Option<&str>) -> App {
    let engine = Engine::new(Store::open(path, OpenMode::Existing).unwrap());
    let start = Start {
        stream: stream.map(str::to_string),
        height: SIZE.1,
        // As the interactive debugger runs: what would hold up a frame (the summaries of
        // rows whose states are slow to replay) waits for the keys to stop.
        deterministic: false,
        ..Start::default()
    };
    App::new(engine, &start).unwrap()
}

fn new_terminal() -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(SIZE.0, SIZE.1)).unwrap()
}

fn draw(terminal: &mut Terminal<TestBackend>, app: &App) {
    terminal.draw(|f| rewind::tui::ui::render(f, app)).unwrap();
}

/// Frame times (action + draw) and, separately, the draw alone.
#[derive(Default)]
struct Steps {
    frames: Vec<Duration>,
    draws: Vec<Duration>,
}

impl Steps {
    fn step(&mut self, app: &mut App, terminal: &mut Terminal<TestBackend>, action: Action) {
        let started = Instant::now();
        app.dispatch(action);
        let drawn = Instant::now();
        draw(terminal, app);
        let done = Instant::now();
        assert!(app.message.is_none(), "{action:?}: {:?}", app.message);
        self.frames.push(done - started);
        self.draws.push(done - drawn);
    }

    fn report(mut self, name: &str, target: &str) {
        report(name, &mut self.frames, target);
        report("  of which drawing the frame", &mut self.draws, "-");
    }
}

fn tui_start(path: &Path) {
    let mut samples = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let app = open_app(path, None);
        let mut terminal = new_terminal();
        draw(&mut terminal, &app);
        samples.push(started.elapsed());
        drop((app, terminal));
    }
    report(
        "start to first frame (open, App::new, draw)",
        &mut samples,
        "≤ 200 ms",
    );
    let bin = option_env!("CARGO_BIN_EXE_rewind")
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .unwrap_or_else(|| target_dir().join("release/rewind"));
    if !bin.exists() {
        println!(
            "  (no {}: the binary's start is not measured)",
            bin.display()
        );
        return;
    }
    let size = format!("{}x{}", SIZE.0, SIZE.1);
    let mut samples = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let out = Command::new(&bin)
            .arg("render")
            .arg(path)
            .args(["--size", &size])
            .output()
            .unwrap();
        samples.push(started.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    report(
        "  `rewind render DB --size 200x50`, process",
        &mut samples,
        "≤ 200 ms",
    );
}

fn tui_step(path: &Path) {
    const TARGET: &str = "p99 ≤ 8 ms";
    let mut app = open_app(path, None);
    let mut terminal = new_terminal();
    draw(&mut terminal, &app);
    // A few streams on, untimed (walking the list to a random name would cost more than
    // the workload).
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let mut random_stream = |app: &mut App, terminal: &mut Terminal<TestBackend>| {
        for _ in 0..=rng.below(8) {
            app.dispatch(Action::NextStream);
        }
        if app.stream().unwrap().name == LONG_NAME {
            app.dispatch(Action::NextStream);
        }
        draw(terminal, app);
    };

    // Forward from the empty state to the head, then back from the head, on 4 streams.
    let mut forward = Steps::default();
    let mut back = Steps::default();
    for _ in 0..4 {
        random_stream(&mut app, &mut terminal);
        app.dispatch(Action::First);
        for _ in 0..EVENTS {
            forward.step(&mut app, &mut terminal, Action::StepForward);
        }
        random_stream(&mut app, &mut terminal);
        for _ in 0..EVENTS {
            back.step(&mut app, &mut terminal, Action::StepBack);
        }
    }
    forward.report("step forward (1,000-event streams)", TARGET);
    back.report("step back from the head (1,000-event streams)", TARGET);

    // A page (34 rows at 50 lines) back from the head to the start and forward again.
    let mut page = Steps::default();
    for _ in 0..50 {
        random_stream(&mut app, &mut terminal);
        while app.cursor > 0 {
            page.step(&mut app, &mut terminal, Action::PageBack);
        }
        while app.cursor < app.stream().unwrap().head {
            page.step(&mut app, &mut terminal, Action::PageForward);
        }
    }
    page.report("page back / forward (1,000-event streams)", TARGET);

    // From snapshot to snapshot: first to last and back.
    let mut snaps = Steps::default();
    for _ in 0..100 {
        random_stream(&mut app, &mut terminal);
        app.dispatch(Action::First);
        let versions: Vec<u64> = app.view.snapshots.iter().map(|s| s.version).collect();
        for _ in &versions {
            snaps.step(&mut app, &mut terminal, Action::NextSnapshot);
        }
        for _ in 1..versions.len() {
            snaps.step(&mut app, &mut terminal, Action::PrevSnapshot);
        }
    }
    snaps.report("next / previous snapshot (1,000-event streams)", TARGET);

    // Every stream in turn, each opened at its head.
    let mut switch = Steps::default();
    for _ in 0..3_000 {
        switch.step(&mut app, &mut terminal, Action::NextStream);
    }
    switch.report("next stream (1,001 streams, at their heads)", TARGET);

    // The long stream: scrub back from the head, page through all of it, and go from
    // snapshot to snapshot.
    let mut app = open_app(path, Some(LONG_NAME));
    draw(&mut terminal, &app);
    let mut long_back = Steps::default();
    for _ in 0..5_000 {
        long_back.step(&mut app, &mut terminal, Action::StepBack);
    }
    long_back.report("step back from the head (100,000 events)", TARGET);
    let mut long_page = Steps::default();
    while app.cursor > 0 {
        long_page.step(&mut app, &mut terminal, Action::PageBack);
    }
    long_page.report("page back to the start (100,000 events)", TARGET);
    let mut long_snaps = Steps::default();
    let snapshots = app.view.snapshots.len();
    for _ in 0..snapshots {
        long_snaps.step(&mut app, &mut terminal, Action::NextSnapshot);
    }
    for _ in 1..snapshots {
        long_snaps.step(&mut app, &mut terminal, Action::PrevSnapshot);
    }
    long_snaps.report("next / previous snapshot (100,000 events)", TARGET);
}

/// In the child: opens the debugger, walks it around, and prints the peak resident size.
fn rss_probe(spec: &str) {
    let (db, stream) = spec.rsplit_once(' ').unwrap();
    let stream = (stream != "-").then_some(stream);
    let mut app = open_app(Path::new(db), stream);
    let mut terminal = new_terminal();
    draw(&mut terminal, &app);
    let mut act = |app: &mut App, action: Action| {
        app.dispatch(action);
        draw(&mut terminal, app);
    };
    if stream.is_none() {
        // Every stream, a few steps and pages in each, then the long stream end to end.
        for _ in 0..STREAMS + 1 {
            act(&mut app, Action::NextStream);
            act(&mut app, Action::StepBack);
            act(&mut app, Action::PageBack);
            act(&mut app, Action::PrevSnapshot);
        }
        while app.stream().unwrap().name != LONG_NAME {
            act(&mut app, Action::NextStream);
        }
    }
    // Back from the head, then by pages (the ~1 MB state: a few hundred, which fills the
    // engine's cache many times over).
    let steps = if stream.is_none() { 1_000 } else { 200 };
    for _ in 0..steps {
        act(&mut app, Action::StepBack);
    }
    for _ in 0..steps * 3 {
        if app.cursor == 0 {
            break;
        }
        act(&mut app, Action::PageBack);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    for line in status.lines() {
        if ["VmHWM", "VmRSS", "RssAnon", "RssFile"]
            .iter()
            .any(|k| line.starts_with(k))
        {
            println!("{line}");
        }
    }
}

/// Runs the probe in a fresh process (so that building the data does not count) and
/// reports its peak resident size.
fn tui_rss(label: &str, db: &Path, stream: Option<&str>) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(
            RSS_PROBE,
            format!("{} {}", db.display(), stream.unwrap_or("-")),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let kb = |key: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(f64::NAN)
    };
    println!(
        "{label:<46} peak {:>6.1} MB  (at exit: {:.1} MB, of which {:.1} MB anonymous, {:.1} MB file pages; target ≤ 100 MB)",
        kb("VmHWM:") / 1024.0,
        kb("VmRSS:") / 1024.0,
        kb("RssAnon:") / 1024.0,
        kb("RssFile:") / 1024.0,
    );
}

fn tui_big(path: &Path) {
    const TARGET: &str = "≤ 16 ms";
    const STEPS: u64 = 300;
    let mut app = open_app(path, Some("big"));
    let mut terminal = new_terminal();
    draw(&mut terminal, &app);
    let head = app.cursor;
    let mut back = Steps::default();
    for _ in 0..STEPS {
        back.step(&mut app, &mut terminal, Action::StepBack);
    }
    app.dispatch(Action::First);
    let mut forward = Steps::default();
    for _ in 0..STEPS {
        forward.step(&mut app, &mut terminal, Action::StepForward);
    }
    forward.report("~1 MB state: step forward from v0", TARGET);
    back.report("~1 MB state: step back from the head", TARGET);
    drop(app);
    // For comparison, what a step back cost before the debugger stepped in place: building
    // the two states a frame shows (the cursor's and the one before) with the engine, and
    // the structural diff of the whole of them.
    let mut engine = Engine::new(Store::open(path, OpenMode::Existing).unwrap());
    engine.state_at("big", Target::Version(head)).unwrap();
    let (mut states, mut diffs) = (Vec::new(), Vec::new());
    for v in (head - STEPS..head).rev() {
        let started = Instant::now();
        let now = engine.state_at("big", Target::Version(v)).unwrap().state;
        let before = engine
            .state_at("big", Target::Version(v - 1))
            .unwrap()
            .state;
        states.push(started.elapsed());
        let started = Instant::now();
        std::hint::black_box(rewind::diff::changes(&before, &now));
        diffs.push(started.elapsed());
    }
    report(
        "  without the stepper: state_at v and v-1",
        &mut states,
        "-",
    );
    report("  without the stepper: their whole diff", &mut diffs, "-");
}

/// Agent runs shaped as the demo's (checkpoints under `replace`: the whole state each
/// time, a window of the last 8 messages, a node, a step, token counts, a pending tool
/// call), scaled up: 20 runs of 5,000 checkpoints.
fn agent_db() -> PathBuf {
    const RUNS: u64 = 20;
    const CHECKPOINTS: u64 = 5_000;
    cached_db("tui-agents", |engine| {
        engine
            .store()
            .set_meta("default_reducer", "replace")
            .unwrap();
        const NODES: [&str; 4] = ["plan", "call_tool", "observe", "reflect"];
        const TOOLS: [&str; 4] = ["read_file", "edit_file", "grep", "run_tests"];
        let mut rng = Rng(0x51A7_E5ED_0F0A_6E47);
        let items = (0..CHECKPOINTS).flat_map(move |i| {
            let mut rng = Rng(rng.next() | 1);
            (0..RUNS).map(move |run| {
                let node = NODES[(i % 4) as usize];
                let messages: Vec<Value> = (i.saturating_sub(7)..=i)
                    .map(|m| {
                        json!({"role": if m % 2 == 0 { "assistant" } else { "tool" },
                               "content": format!("step {m}: src/module_{}.rs has {} lines", m % 40, 100 + m % 900)})
                    })
                    .collect();
                let pending = (node == "call_tool").then(|| {
                    json!({"tool": TOOLS[rng.below(4) as usize],
                           "args": {"path": format!("src/module_{}.rs", rng.below(40))}})
                });
                let data = json!({
                    "node": node,
                    "step": i + 1,
                    "message_count": i + 1,
                    "messages": messages,
                    "pending_tool_call": pending,
                    "tokens": {"input": 1_000 * (i + 1), "output": 150 * (i + 1)},
                    "status": if i + 1 == CHECKPOINTS && run % 2 == 1 { "crashed" } else { "running" },
                });
                let time = 1_767_225_600_000_000 + ((i * RUNS + run) as i64) * 1_000_000;
                item(&format!("agent-run-{run:02}"), "Checkpoint", data, Some(time))
            })
        });
        let report = engine.import(items, false).unwrap();
        println!(
            "  {} checkpoints, {} policy snapshots",
            report.appended, report.snapshots
        );
    })
}

/// A LangGraph `SqliteSaver` file of 100,000 checkpoints in one thread (written in
/// LangGraph's format by `common/langgraph.rs`; `shape` says what the state holds), mirrored
/// as the debugger mirrors it (in the user's mirror folder, removed after the workload; the
/// source is kept under `target/bench-data/`). Returns the mirror and its stream.
fn langgraph_mirror(shape: langgraph_file::Shape) -> (PathBuf, String) {
    const STEPS: u64 = 99_998; // LangGraph writes 2 checkpoints more than node steps
    let dir = target_dir().join("bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join(format!("tui-langgraph-{shape:?}-100k.sqlite"));
    if !source.exists() {
        let part = source.with_extension("part");
        let _ = std::fs::remove_file(&part);
        println!("building {} (once; kept for later runs)", source.display());
        langgraph_file::write(&part, shape, STEPS);
        std::fs::rename(&part, &source).unwrap();
    }
    let started = Instant::now();
    let mirrored = rewind::source::mirror::resolve(&source, None)
        .unwrap()
        .unwrap();
    println!(
        "  {shape:?} mirrored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    (mirrored.path, langgraph_file::THREAD.to_owned())
}

/// What the summary column costs per frame: `Summaries::of` over the rows a 200x50 frame
/// lists (46), kept across frames as the debugger keeps it, while the cursor steps back
/// from the head and pages back to the start; and the whole frame (action + draw) with it.
fn tui_summary(label: &str, path: &Path, stream: &str) {
    const ROWS: u64 = 46;
    let mut engine = Engine::new(Store::open(path, OpenMode::Existing).unwrap());
    let info = engine.store().require_stream(stream).unwrap();
    let mut summaries = rewind::summary::Summaries::default();
    let mut walk = |cursors: &mut dyn Iterator<Item = u64>| {
        let mut samples = Vec::new();
        for cursor in cursors {
            let from = cursor.saturating_sub(ROWS / 2).max(1);
            let rows = engine
                .store()
                .events(&info, from, from + ROWS - 1, ROWS as usize)
                .unwrap();
            let started = Instant::now();
            let shown = summaries.of(&mut engine, &rows, None, None).unwrap();
            samples.push(started.elapsed());
            assert!(
                shown.iter().all(|s| !s.is_empty() && !s.starts_with('⚠')),
                "{shown:?}"
            );
        }
        samples
    };
    let head = info.head;
    let mut back = walk(&mut (head.saturating_sub(2_000)..=head).rev());
    report(
        &format!("{label}: summaries, step back (2,000)"),
        &mut back,
        "≤ 1 ms",
    );
    let mut pages = walk(&mut (1..=head).rev().step_by(ROWS as usize));
    report(
        &format!("{label}: summaries, page back to v1"),
        &mut pages,
        "≤ 1 ms",
    );
    // The whole frame, summaries included.
    let mut app = open_app(path, Some(stream));
    let mut terminal = new_terminal();
    draw(&mut terminal, &app);
    let mut frames = Steps::default();
    for _ in 0..2_000.min(head - 1) {
        frames.step(&mut app, &mut terminal, Action::StepBack);
    }
    frames.report(&format!("{label}: whole frame, step back"), "p99 ≤ 8 ms");
}

fn main() {
    if let Ok(spec) = std::env::var(RSS_PROBE) {
        rss_probe(&spec);
        return;
    }
    // `cargo bench` passes `--bench`; everything else names workloads.
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    println!(
        "rewind TUI benchmarks on {} cores, frames {}x{}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        SIZE.0,
        SIZE.1
    );
    if wants("tui-start") || wants("tui-step") || wants("tui-rss") {
        let db = standard_db();
        if wants("tui-start") {
            tui_start(&db);
        }
        if wants("tui-step") {
            tui_step(&db);
        }
        if wants("tui-rss") {
            tui_rss("resident memory, 1,001 streams walked", &db, None);
        }
    }
    if wants("tui-summary") {
        tui_summary(
            "agent runs (20 x 5,000 checkpoints)",
            &agent_db(),
            "agent-run-07",
        );
        tui_summary("orders (100,000-event stream)", &standard_db(), LONG_NAME);
        for (label, shape) in [
            (
                "LangGraph agent (100,000 checkpoints)",
                langgraph_file::Shape::Agent,
            ),
            (
                "LangGraph fields (100,000 checkpoints)",
                langgraph_file::Shape::Fields,
            ),
        ] {
            let (mirror, stream) = langgraph_mirror(shape);
            tui_summary(label, &mirror, &stream);
            rewind::source::mirror::remove(&mirror).unwrap();
        }
    }
    if wants("tui-big") || wants("tui-rss") {
        let db = big_db();
        if wants("tui-big") {
            tui_big(&db);
        }
        if wants("tui-rss") {
            tui_rss("resident memory, ~1 MB state walked", &db, Some("big"));
        }
    }
}
