//! What both harnesses share: the random numbers, the percentile, an import item, and the
//! ~1 MB state workload, so `engine` and `tui` measure the very same data.

use std::time::Duration;

use rewind::NewEvent;
use rewind::engine::ImportItem;
use serde_json::{Value, json};

/// A xorshift generator: the same sequence on every run and machine.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The sample at fraction `p` of sorted samples.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // an index into the samples
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Keys in the ~1 MB state.
pub const BIG_KEYS: usize = 10_000;

/// One value of the ~1 MB state (about 90 bytes of JSON).
pub fn big_value(rng: &mut Rng) -> Value {
    let (a, b) = (rng.next(), rng.next());
    json!({"n": a % 1_000_000, "label": format!("item-{a:016x}-{b:016x}-{:08x}", a >> 40), "ok": true})
}

/// The ~1 MB state workload: a first event with 10,000 keys (929 KB of JSON), then
/// `events - 1` merge patches that each replace a random 1% of the keys; and the generator,
/// to go on with the same sequence.
pub fn big_events(events: u64) -> (Vec<Value>, Rng) {
    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    let value = big_value;
    let mut initial = serde_json::Map::new();
    for k in 0..BIG_KEYS {
        initial.insert(format!("key_{k:05}"), value(&mut rng));
    }
    let mut items = Vec::with_capacity(usize::try_from(events).unwrap_or(0));
    items.push(Value::Object(initial));
    for _ in 1..events {
        let mut patch = serde_json::Map::new();
        for _ in 0..BIG_KEYS / 100 {
            patch.insert(
                format!("key_{:05}", rng.below(BIG_KEYS as u64)),
                value(&mut rng),
            );
        }
        items.push(Value::Object(patch));
    }
    (items, rng)
}

/// One event to import: a stream, a type, data and an optional time.
pub fn item(
    stream: &str,
    kind: &str,
    data: Value,
    time: Option<i64>,
) -> rewind::Result<ImportItem> {
    Ok(ImportItem {
        at: String::new(),
        event: NewEvent {
            stream: stream.into(),
            kind: kind.into(),
            data,
            meta: None,
            time,
            idempotency_key: None,
        },
        version: None,
    })
}
