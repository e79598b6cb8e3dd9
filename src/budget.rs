//! What applying one event may cost a reducer, and the guard of last resort.
//!
//! The budget proper is counted, not timed, so a busy machine gives the same answer as an
//! idle one: [`crate::jq`] counts the steps a program evaluates and the stack its recursion
//! takes, measures a string before `*` repeats it, and measures the state it returns,
//! against [`STEPS`], [`STACK`] and [`OUTPUT`]. Going over one is [`Limit`], never a hang.
//!
//! Within its steps a program can still build a value nested hundreds of thousands of
//! levels deep, and dropping, comparing or walking it recurses once per level: threads that
//! apply reducers get [`THREAD_STACK`] (the binary runs its commands on one), and turning
//! a value into text, which takes a kilobyte of stack per level, refuses one nested deeper
//! than 512 levels (see [`crate::jq`]).
//!
//! Counting cannot see inside one operation of the interpreter: a string doubled by `. + .`
//! forty times, or a bignum squared again and again, are a few steps each.
//! For those a watchdog thread watches every evaluation in progress: one that runs longer
//! than [`DEADLINE`] or during which the process grows by more than [`MEMORY`] is asked to
//! stop, and stops at its next step with [`Limit::Time`] or [`Limit::Memory`]. A thread stuck
//! inside one operation cannot be stopped (Rust has no way to kill a thread); if it is
//! still stuck [`GRACE`] later, the watchdog ends the process with exit code 2 and an error
//! naming the stream, the version and the limit, after running the hook that [`on_exit`]
//! set (the debugger restores the terminal there). A one-shot command then fails as it
//! would have failed anyway, and the debugger, whose thread is the one stuck, cannot be
//! responsive again. These limits are far above what any legitimate event needs, so they
//! only ever meet programs that would otherwise hang or exhaust the machine.
//!
//! Knows nothing of jq, streams or storage.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use crate::model::group;

/// Evaluation steps one event may take: every term of a jq program evaluated, and every
/// number `range` produces. About 70 ms of work in a release build; summing a 10,000-element
/// array takes some 30,000.
pub const STEPS: u64 = 1_000_000;

/// Bytes of stack a jq program's recursion may take, measured from where it starts; small
/// enough for a thread with Rust's default 2 MiB stack.
pub const STACK: u64 = 1 << 20;

/// Stack for a thread that applies reducers (the binary's own, and the library's workers).
/// Within its steps a program can build a value nested hundreds of thousands of levels
/// deep; dropping, comparing or walking one recurses once per level, some 50 to 100 bytes
/// each. The memory is reserved, and used only by such a program.
pub const THREAD_STACK: usize = 256 << 20;

thread_local! {
    /// Whether this thread was started with [`THREAD_STACK`] (by [`on_large_stack`]).
    static LARGE_STACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Wraps the work of a thread started with [`THREAD_STACK`] so that the thread knows it:
/// programs are then compiled on it directly instead of on a thread of their own.
pub fn on_large_stack<T>(work: impl FnOnce() -> T) -> impl FnOnce() -> T {
    move || {
        LARGE_STACK.with(|large| large.set(true));
        work()
    }
}

/// Whether this thread was started with [`THREAD_STACK`] and said so ([`on_large_stack`]).
pub(crate) fn has_large_stack() -> bool {
    LARGE_STACK.with(std::cell::Cell::get)
}

/// Bytes of JSON the state a reducer returns may hold.
pub const OUTPUT: u64 = 64 << 20;

/// Wall-clock time one evaluation may take before it is asked to stop (last resort).
pub const DEADLINE: Duration = Duration::from_secs(10);

/// How much the process may grow (resident memory) during one evaluation before it is
/// asked to stop (last resort, where the system reports it).
pub const MEMORY: u64 = 1 << 30;

/// How long an evaluation asked to stop may take to reach its next step before the
/// process ends.
pub const GRACE: Duration = Duration::from_secs(5);

/// How often the watchdog looks.
const TICK: Duration = Duration::from_millis(100);

/// A limit on the work of applying one event, named in the error that exceeds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "limit", content = "value")]
pub enum Limit {
    /// Evaluation steps ([`STEPS`]).
    Steps(u64),
    /// Bytes of stack for recursion ([`STACK`]).
    Stack(u64),
    /// Bytes of JSON in the resulting state ([`OUTPUT`]).
    Output(u64),
    /// Bytes of one string built by repetition (`"x" * n`), checked before it is built
    /// ([`OUTPUT`]).
    String(u64),
    /// Wall-clock time, in seconds ([`DEADLINE`]).
    Time(u64),
    /// Bytes the process grew by ([`MEMORY`]).
    Memory(u64),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Steps(n) => write!(f, "{} evaluation steps", group(n)),
            Self::Stack(b) => write!(f, "{} of stack for recursion", bytes(b)),
            Self::Output(b) => write!(f, "{} of resulting state", bytes(b)),
            Self::String(b) => write!(f, "{} in one string", bytes(b)),
            Self::Time(s) => write!(f, "{s} s of time"),
            Self::Memory(b) => write!(f, "{} of memory", bytes(b)),
        }
    }
}

/// `1 MiB`, `64 MiB`, `1 GiB`, or a count of bytes when not a whole number of those.
fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{} bytes", group(n)),
    }
}

/// Ends the process when an evaluation cannot be stopped; set by whoever must clean up
/// first (the debugger restores the terminal).
static ON_EXIT: Mutex<Option<Box<dyn Fn() + Send>>> = Mutex::new(None);

/// Sets what runs before the watchdog ends the process (`None`: nothing).
pub fn on_exit(hook: Option<Box<dyn Fn() + Send>>) {
    if let Ok(mut slot) = ON_EXIT.lock() {
        *slot = hook;
    }
}

/// Why an evaluation was asked to stop.
const TIME: u8 = 1;
const GREW: u8 = 2;

/// One thread's evaluations as the watchdog sees them. The thread writes `generation`
/// (odd while evaluating) and what it is evaluating; the watchdog writes the rest.
pub(crate) struct Slot {
    generation: AtomicU64,
    /// The generation that must stop (0: none), and why ([`TIME`] or [`GREW`]). Keyed by
    /// generation so that a request meant for an evaluation that has just ended cannot
    /// stop the next one.
    stop_for: AtomicU64,
    why: AtomicU8,
    /// The stream and version being applied, for the watchdog's last words.
    version: AtomicU64,
    stream: Mutex<String>,
    /// The watchdog's own notes: the generation it last saw, for how many ticks, the
    /// resident size then, and the tick it asked for a stop at.
    seen: AtomicU64,
    ticks: AtomicU64,
    rss: AtomicU64,
    stopped_at: AtomicU64,
}

impl Slot {
    /// Whether evaluation `generation` must stop, and with which limit.
    #[inline]
    pub(crate) fn stop(&self, generation: u64) -> Option<Limit> {
        if self.stop_for.load(Ordering::Acquire) != generation {
            return None;
        }
        Some(self.limit())
    }

    /// The limit the watchdog asked a stop for.
    fn limit(&self) -> Limit {
        match self.why.load(Ordering::Relaxed) {
            GREW => Limit::Memory(MEMORY),
            _ => Limit::Time(DEADLINE.as_secs()),
        }
    }
}

struct Watchdog {
    slots: Mutex<Vec<Weak<Slot>>>,
}

static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();

thread_local! {
    /// This thread's slot, and the stream name last written to it (compared here, so the
    /// slot's lock is taken only when the stream changes).
    static MINE: RefCell<Option<(Arc<Slot>, String)>> = const { RefCell::new(None) };
}

/// Runs one evaluation under the watchdog: `f` gets the slot and the evaluation's
/// generation, to poll [`Slot::stop`] with.
pub(crate) fn watched<T>(stream: &str, version: u64, f: impl FnOnce(&Slot, u64) -> T) -> T {
    let slot = MINE.with(|mine| {
        let mut mine = mine.borrow_mut();
        let (slot, name) = mine.get_or_insert_with(|| (register(), String::new()));
        if name != stream {
            stream.clone_into(name);
            if let Ok(mut shown) = slot.stream.lock() {
                stream.clone_into(&mut shown);
            }
        }
        Arc::clone(slot)
    });
    slot.version.store(version, Ordering::Relaxed);
    let generation = slot.generation.fetch_add(1, Ordering::Release) + 1;
    // Ends the evaluation however `f` returns, unwinding included.
    struct End<'a>(&'a Slot);
    impl Drop for End<'_> {
        fn drop(&mut self) {
            self.0.generation.fetch_add(1, Ordering::Release);
        }
    }
    let _end = End(&slot);
    f(&slot, generation)
}

/// Asks the next evaluation on this thread to stop at its first step, as the watchdog
/// would for memory (`grew`) or time.
#[cfg(test)]
pub(crate) fn stop_next_evaluation_here(grew: bool) {
    MINE.with(|mine| {
        let mut mine = mine.borrow_mut();
        let (slot, _) = mine.get_or_insert_with(|| (register(), String::new()));
        slot.why
            .store(if grew { GREW } else { TIME }, Ordering::Relaxed);
        let next = slot.generation.load(Ordering::Relaxed) + 1;
        slot.stop_for.store(next, Ordering::Release);
    });
}

/// A new slot, watched from now on; the watchdog starts with the first.
fn register() -> Arc<Slot> {
    let slot = Arc::new(Slot {
        generation: AtomicU64::new(0),
        stop_for: AtomicU64::new(0),
        why: AtomicU8::new(TIME),
        version: AtomicU64::new(0),
        stream: Mutex::new(String::new()),
        seen: AtomicU64::new(0),
        ticks: AtomicU64::new(0),
        rss: AtomicU64::new(0),
        stopped_at: AtomicU64::new(0),
    });
    let watchdog = WATCHDOG.get_or_init(|| {
        // Without a watchdog the counted budget still holds; only the last resort is lost.
        let _ = std::thread::Builder::new()
            .name(format!("{}watchdog", crate::step::THREAD_PREFIX))
            .spawn(watch);
        Watchdog {
            slots: Mutex::new(Vec::new()),
        }
    });
    if let Ok(mut slots) = watchdog.slots.lock() {
        slots.push(Arc::downgrade(&slot));
    }
    slot
}

/// The watchdog's loop: every tick, each evaluation that has lasted too long or during
/// which the process grew too much is asked to stop; one that does not, is ended.
fn watch() {
    let deadline = DEADLINE.as_millis() / TICK.as_millis();
    let grace = GRACE.as_millis() / TICK.as_millis();
    let (deadline, grace) = (
        u64::try_from(deadline).unwrap_or(u64::MAX),
        u64::try_from(grace).unwrap_or(u64::MAX),
    );
    loop {
        std::thread::sleep(TICK);
        let Some(watchdog) = WATCHDOG.get() else {
            continue;
        };
        let slots: Vec<Arc<Slot>> = match watchdog.slots.lock() {
            Ok(mut slots) => {
                slots.retain(|s| s.strong_count() > 0);
                slots.iter().filter_map(Weak::upgrade).collect()
            }
            Err(_) => return,
        };
        let mut rss = None;
        for slot in slots {
            let generation = slot.generation.load(Ordering::Acquire);
            if generation % 2 == 0 {
                continue;
            }
            let rss = *rss.get_or_insert_with(resident);
            if slot.seen.swap(generation, Ordering::Relaxed) != generation {
                // A new evaluation: start counting.
                slot.ticks.store(0, Ordering::Relaxed);
                slot.rss.store(rss.unwrap_or(0), Ordering::Relaxed);
                continue;
            }
            let ticks = slot.ticks.fetch_add(1, Ordering::Relaxed) + 1;
            let stopped_at = (slot.stop_for.load(Ordering::Relaxed) == generation)
                .then(|| slot.stopped_at.load(Ordering::Relaxed));
            let grew = rss
                .is_some_and(|now| now.saturating_sub(slot.rss.load(Ordering::Relaxed)) > MEMORY);
            match verdict(ticks, stopped_at, grew, deadline, grace) {
                Verdict::Wait => {}
                Verdict::Stop(why) => {
                    slot.stopped_at.store(ticks, Ordering::Relaxed);
                    slot.why.store(why, Ordering::Relaxed);
                    slot.stop_for.store(generation, Ordering::Release);
                }
                Verdict::GiveUp => give_up(&slot),
            }
        }
    }
}

/// What the watchdog does about an evaluation.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Wait,
    /// Ask it to stop, for this reason ([`TIME`] or [`GREW`]).
    Stop(u8),
    /// End the process: it was asked and has not stopped.
    GiveUp,
}

/// The watchdog's rule, for an evaluation seen running for `ticks`, asked to stop at tick
/// `stopped_at` if it was, during which the process grew past [`MEMORY`] if `grew`.
fn verdict(ticks: u64, stopped_at: Option<u64>, grew: bool, deadline: u64, grace: u64) -> Verdict {
    match stopped_at {
        Some(at) if ticks - at >= grace => Verdict::GiveUp,
        Some(_) => Verdict::Wait,
        None if grew => Verdict::Stop(GREW),
        None if ticks >= deadline => Verdict::Stop(TIME),
        None => Verdict::Wait,
    }
}

/// Ends the process: an evaluation asked to stop did not reach its next step.
fn give_up(slot: &Slot) -> ! {
    if let Ok(hook) = ON_EXIT.lock()
        && let Some(hook) = hook.as_ref()
    {
        hook();
    }
    let stream = slot.stream.lock().map(|s| s.clone()).unwrap_or_default();
    let limit = slot.limit();
    eprintln!(
        "rewind: stream {:?} version {}: the jq reducer went over its limit of {limit} inside \
         one operation and could not be stopped; exiting",
        crate::text::clean(&stream, 200),
        slot.version.load(Ordering::Relaxed),
    );
    std::process::exit(2)
}

/// The process's resident size in bytes, where the system tells it.
fn resident() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_amounts() {
        assert_eq!(
            Limit::Steps(STEPS).to_string(),
            "1,000,000 evaluation steps"
        );
        assert_eq!(
            Limit::Stack(STACK).to_string(),
            "1 MiB of stack for recursion"
        );
        assert_eq!(
            Limit::Output(OUTPUT).to_string(),
            "64 MiB of resulting state"
        );
        assert_eq!(Limit::Time(10).to_string(), "10 s of time");
        assert_eq!(Limit::Memory(MEMORY).to_string(), "1 GiB of memory");
        assert_eq!(bytes(1500), "1,500 bytes");
    }

    #[test]
    fn the_watchdog_asks_first_and_gives_up_only_after_the_grace() {
        let (deadline, grace) = (100, 50);
        assert_eq!(verdict(99, None, false, deadline, grace), Verdict::Wait);
        assert_eq!(
            verdict(100, None, false, deadline, grace),
            Verdict::Stop(TIME)
        );
        assert_eq!(verdict(3, None, true, deadline, grace), Verdict::Stop(GREW));
        assert_eq!(
            verdict(149, Some(100), true, deadline, grace),
            Verdict::Wait
        );
        assert_eq!(
            verdict(150, Some(100), false, deadline, grace),
            Verdict::GiveUp
        );
    }

    #[test]
    fn an_evaluation_is_marked_while_it_runs_and_after_a_panic_ends() {
        let generation = watched("s", 3, |slot, generation| {
            assert_eq!(slot.stop(generation), None);
            // A request for this evaluation stops it, and only it.
            slot.why.store(GREW, Ordering::Relaxed);
            slot.stop_for.store(generation, Ordering::Release);
            assert_eq!(slot.stop(generation), Some(Limit::Memory(MEMORY)));
            generation
        });
        assert_eq!(generation % 2, 1);
        watched("s", 4, |slot, next| assert_eq!(slot.stop(next), None));
        let again = std::panic::catch_unwind(|| {
            watched("s", 5, |_, _| -> u8 {
                std::panic::resume_unwind(Box::new(()))
            })
        });
        assert!(again.is_err());
        let after = MINE.with(|m| {
            m.borrow()
                .as_ref()
                .map(|(slot, _)| slot.generation.load(Ordering::Relaxed))
        });
        assert_eq!(after.map(|g| g % 2), Some(0));
    }
}
