//! The built-in demo database: an order workflow (merge), two AI-agent runs with
//! checkpoints (replace), one of which stops mid-task as if its process crashed, an
//! inventory changed by JSON Patch operations (patch), and bank accounts reduced by a jq
//! filter. The sources live in `assets/demo/`; the expansion is deterministic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::Engine;
use crate::engine::ImportItem;
use crate::error::{Error, Result};
use crate::model::{Micros, NewEvent, Target};
use crate::store::{OpenMode, Store};

const CATALOG: &str = include_str!("../assets/demo/catalog.json");
const AGENT_RUNS: &str = include_str!("../assets/demo/agent-runs.json");
const BANK_JQ: &str = include_str!("../assets/demo/bank.jq");

/// Bumped when the generator or the way rewind stores a demo changes (e.g. delta snapshots).
const REVISION: &str = "2";

/// The agent run that crashed mid-task: the story the README tells, where the debugger opens.
pub const CRASHED: &str = "agent-run-7";

/// Changes whenever the assets or the generator change, so an old demo is rebuilt.
pub fn fingerprint() -> String {
    let mut hasher = blake3::Hasher::new();
    for part in [
        CATALOG,
        AGENT_RUNS,
        BANK_JQ,
        env!("CARGO_PKG_VERSION"),
        REVISION,
    ] {
        hasher.update(part.as_bytes());
    }
    hasher.finalize().to_hex()[..16].to_string()
}

/// Where `rewind demo` keeps its database: the user's data directory.
pub fn default_path() -> Result<PathBuf> {
    directories::ProjectDirs::from("", "", "rewind")
        .map(|dirs| dirs.data_dir().join("demo.db"))
        .ok_or_else(|| Error::Input("no home directory to keep the demo in; pass --path".into()))
}

/// What the demo holds, for the summary `rewind demo` prints.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// The database file.
    pub path: PathBuf,
    /// Whether it was built now (false: an up-to-date one was reused).
    pub built: bool,
    /// Events in all streams.
    pub events: u64,
    /// Number of streams.
    pub streams: u64,
    /// Snapshots stored.
    pub snapshots: u64,
}

/// Opens the demo at `path`, building it first if it is missing, outdated or `rebuild`.
pub fn ensure(path: &Path, rebuild: bool) -> Result<Summary> {
    let current = !rebuild
        && path.exists()
        && Store::open(path, OpenMode::Existing)
            .and_then(|s| s.meta("demo"))
            .is_ok_and(|v| v.as_deref() == Some(fingerprint().as_str()));
    if !current {
        if path.exists() && !is_demo(path) {
            return Err(Error::Input(format!(
                "{} exists and is not a rewind demo database; choose another --path",
                path.display()
            )));
        }
        build(path)?;
    }
    let store = Store::open(path, OpenMode::Existing)?;
    let (events, _) = store.event_totals()?;
    Ok(Summary {
        path: path.to_path_buf(),
        built: !current,
        events,
        streams: store.streams()?.len() as u64,
        snapshots: store.snapshots(None)?.len() as u64,
    })
}

/// Whether the file is a demo database (of any version), which `ensure` may replace.
fn is_demo(path: &Path) -> bool {
    Store::open_for_reading(path)
        .and_then(|s| s.meta("demo"))
        .is_ok_and(|v| v.is_some())
}

/// Builds the demo into a temporary file beside `path`, then renames it into place.
pub fn build(path: &Path) -> Result<()> {
    let io = |cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("building");
    for stale in [
        tmp.clone(),
        crate::store::sidecar(&tmp, "-wal"),
        crate::store::sidecar(&tmp, "-shm"),
    ] {
        let _ = std::fs::remove_file(stale);
    }
    {
        let mut engine = Engine::new(Store::open(&tmp, OpenMode::Create)?);
        populate(&mut engine)?;
        engine.store().set_meta("demo", &fingerprint())?;
    }
    for old in [
        crate::store::sidecar(path, "-wal"),
        crate::store::sidecar(path, "-shm"),
    ] {
        let _ = std::fs::remove_file(old);
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// Writes the demo's streams, events and snapshots into an empty database.
pub fn populate(engine: &mut Engine) -> Result<()> {
    let catalog: Catalog = serde_json::from_str(CATALOG).map_err(|e| asset("catalog.json", &e))?;
    let runs: Vec<AgentRun> =
        serde_json::from_str(AGENT_RUNS).map_err(|e| asset("agent-runs.json", &e))?;
    let start = crate::time::parse(&catalog.start).map_err(Error::Input)?;
    let mut generator = Generator {
        rng: Rng(0x5EED_2026),
        events: Vec::new(),
    };
    generator.orders_and_inventory(&catalog, start);
    generator.bank(&catalog, start);
    for (i, run) in runs.iter().enumerate() {
        generator.agent_run(run, start + (i as i64 + 1) * 3 * DAY);
    }
    // One global history in time order, so that seq interleaves the streams as it would live.
    generator.events.sort_by_key(|(t, n, _)| (*t, *n));
    let events = materialize_inventory(generator.events, &catalog.products);
    let bank = format!("jq:{}", BANK_JQ.trim());
    engine.write(|engine| {
        let store = engine.store();
        store.create_stream("inventory", Some("patch"))?;
        for account in &catalog.accounts {
            store.create_stream(&format!("account-{}", account.id), Some(&bank))?;
        }
        for run in &runs {
            store.create_stream(&run.stream, Some("replace"))?;
        }
        let items = events.into_iter().enumerate().map(|(i, event)| {
            Ok(ImportItem {
                at: format!("demo event {}", i + 1),
                event,
                version: None,
            })
        });
        engine.import(items, false)?;
        engine.take_snapshot(
            "inventory",
            Target::Version(1),
            "manual",
            Some("opening stock"),
        )?;
        engine.take_snapshot(
            CRASHED,
            Target::Version(100),
            "manual",
            Some("before the long migration loop"),
        )?;
        Ok(())
    })
}

/// Replaces the stock deltas of inventory events, in time order, by JSON Patch operations
/// on the running counts, restocking (guarded by a `test` of the count it read) before a
/// reservation would exceed what is on hand.
fn materialize_inventory(
    events: Vec<(Micros, usize, NewEvent)>,
    products: &[Product],
) -> Vec<NewEvent> {
    let mut stock: BTreeMap<String, (i64, i64)> = products
        .iter()
        .map(|p| (p.sku.clone(), (p.stock, 0)))
        .collect();
    let mut out = Vec::with_capacity(events.len() + 64);
    for (_, _, mut event) in events {
        let Some(deltas) = event.data.get("delta").and_then(Value::as_array).cloned() else {
            out.push(event);
            continue;
        };
        let mut ops = Vec::new();
        for d in &deltas {
            let sku = d[0].as_str().unwrap_or_default();
            let (reserve, ship) = (d[1].as_i64().unwrap_or(0), d[2].as_i64().unwrap_or(0));
            let Some(entry) = stock.get_mut(sku) else {
                continue;
            };
            if reserve > 0 && entry.0 - entry.1 < reserve {
                let before = entry.0;
                entry.0 += 100;
                let mut restock = event.clone();
                restock.kind = "Restocked".into();
                restock.data = json!([
                    {"op": "test", "path": format!("/{sku}/on_hand"), "value": before},
                    {"op": "replace", "path": format!("/{sku}/on_hand"), "value": entry.0}
                ]);
                out.push(restock);
            }
            entry.1 += reserve;
            ops.push(
                json!({"op": "replace", "path": format!("/{sku}/reserved"), "value": entry.1}),
            );
            if ship != 0 {
                entry.0 += ship;
                ops.push(
                    json!({"op": "replace", "path": format!("/{sku}/on_hand"), "value": entry.0}),
                );
            }
        }
        event.data = Value::Array(ops);
        out.push(event);
    }
    out
}

fn asset(name: &str, e: &serde_json::Error) -> Error {
    Error::Input(format!("assets/demo/{name}: {e}"))
}

const MINUTE: Micros = 60_000_000;
const HOUR: Micros = 60 * MINUTE;
const DAY: Micros = 24 * HOUR;

#[derive(Deserialize)]
struct Catalog {
    start: String,
    orders: usize,
    customers: Vec<Value>,
    products: Vec<Product>,
    carriers: Vec<String>,
    payment_methods: Vec<String>,
    payment_errors: Vec<String>,
    accounts: Vec<Account>,
}

#[derive(Deserialize)]
struct Product {
    sku: String,
    name: String,
    price_cents: i64,
    stock: i64,
}

#[derive(Deserialize)]
struct Account {
    id: String,
    owner: String,
    currency: String,
    events: usize,
}

#[derive(Deserialize)]
struct AgentRun {
    stream: String,
    task: String,
    model: String,
    files: Vec<String>,
    turns: Vec<Turn>,
    #[serde(default)]
    crash_after: Option<usize>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Turn {
    Repeat {
        repeat: Value,
        turns: Vec<Turn>,
    },
    Step {
        node: String,
        #[serde(default)]
        say: Option<String>,
        #[serde(default)]
        tool: Option<String>,
        #[serde(default)]
        args: Option<Value>,
        #[serde(default)]
        status: Option<String>,
    },
}

/// splitmix64: small, fast and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + i64::try_from(self.next() % u64::try_from(hi - lo + 1).unwrap_or(1)).unwrap_or(0)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct Generator {
    rng: Rng,
    /// (time, tie-breaker, event)
    events: Vec<(Micros, usize, NewEvent)>,
}

impl Generator {
    fn push(&mut self, stream: &str, kind: &str, time: Micros, data: Value) {
        let n = self.events.len();
        self.events.push((
            time,
            n,
            NewEvent {
                stream: stream.to_string(),
                kind: kind.to_string(),
                data,
                meta: Some(json!({"source": "demo"})),
                time: Some(time),
                idempotency_key: None,
            },
        ));
    }

    /// Orders move through placed → paid → packed → shipped → delivered, with failed
    /// payments, cancellations and returns; each one reserves and ships inventory.
    fn orders_and_inventory(&mut self, c: &Catalog, start: Micros) {
        let opening: Vec<Value> = c
            .products
            .iter()
            .map(|p| {
                json!({"op": "add", "path": format!("/{}", p.sku),
                       "value": {"name": p.name, "price_cents": p.price_cents, "on_hand": p.stock, "reserved": 0}})
            })
            .collect();
        self.push(
            "inventory",
            "StockOpened",
            start - HOUR,
            Value::Array(opening),
        );
        let mut t = start;
        for n in 0..c.orders {
            t += self.rng.range(MINUTE, 8 * MINUTE);
            let stream = format!("order-{}", 1001 + n);
            let customer = c.customers[self.rng.below(c.customers.len())].clone();
            let mut items = Vec::new();
            for _ in 0..self.rng.range(1, 3) {
                let p = &c.products[self.rng.below(c.products.len())];
                let qty = self.rng.range(1, 3);
                items.push(
                    json!({"sku": p.sku, "name": p.name, "qty": qty, "price_cents": p.price_cents}),
                );
            }
            let total: i64 = items
                .iter()
                .map(|i| i["qty"].as_i64().unwrap_or(0) * i["price_cents"].as_i64().unwrap_or(0))
                .sum();
            self.push(&stream, "OrderPlaced", t, json!({"status": "placed", "customer": customer, "items": items, "total_cents": total}));
            let deltas: Vec<Value> = items
                .iter()
                .map(|i| json!([i["sku"], i["qty"], 0]))
                .collect();
            self.push(
                "inventory",
                "StockReserved",
                t + 1,
                json!({ "delta": deltas }),
            );
            let mut at = t + self.rng.range(MINUTE, 30 * MINUTE);
            if self.rng.chance(8) {
                let error = &c.payment_errors[self.rng.below(c.payment_errors.len())];
                self.push(
                    &stream,
                    "PaymentFailed",
                    at,
                    json!({"status": "payment_failed", "payment": {"error": error}}),
                );
                at += self.rng.range(HOUR, 2 * DAY);
                self.push(
                    &stream,
                    "OrderCancelled",
                    at,
                    json!({"status": "cancelled", "cancel_reason": "payment"}),
                );
                self.release(&items, at + 1, false);
                continue;
            }
            let method = &c.payment_methods[self.rng.below(c.payment_methods.len())];
            let auth = format!("AUTH-{:06}", self.rng.below(1_000_000));
            self.push(
                &stream,
                "PaymentAuthorized",
                at,
                json!({"status": "paid", "payment": {"method": method, "auth": auth}}),
            );
            if self.rng.chance(5) {
                at += self.rng.range(10 * MINUTE, 6 * HOUR);
                let city = c.customers[self.rng.below(c.customers.len())]["city"].clone();
                self.push(
                    &stream,
                    "AddressChanged",
                    at,
                    json!({"customer": {"city": city}}),
                );
            }
            at += self.rng.range(HOUR, DAY);
            let picker = format!("picker-{}", self.rng.range(1, 9));
            self.push(
                &stream,
                "OrderPacked",
                at,
                json!({"status": "packed", "packed_by": picker}),
            );
            at += self.rng.range(HOUR, 12 * HOUR);
            let carrier = &c.carriers[self.rng.below(c.carriers.len())];
            let tracking = format!(
                "{}{:09}",
                carrier.to_uppercase(),
                self.rng.below(1_000_000_000)
            );
            self.push(&stream, "OrderShipped", at, json!({"status": "shipped", "shipment": {"carrier": carrier, "tracking": tracking}}));
            self.release(&items, at + 1, true);
            if self.rng.chance(3) {
                continue; // still in transit at the end of the demo
            }
            at += self.rng.range(DAY, 4 * DAY);
            self.push(
                &stream,
                "OrderDelivered",
                at,
                json!({"status": "delivered", "shipment": {"delivered": true}}),
            );
            if self.rng.chance(4) {
                at += self.rng.range(DAY, 10 * DAY);
                self.push(
                    &stream,
                    "ReturnRequested",
                    at,
                    json!({"status": "return_requested", "return": {"reason": "damaged"}}),
                );
                at += self.rng.range(DAY, 5 * DAY);
                self.push(
                    &stream,
                    "Refunded",
                    at,
                    json!({"status": "refunded", "return": {"refund_cents": total}}),
                );
            }
        }
    }

    /// Records what an order does to stock; [`materialize_inventory`] turns it into patches.
    fn release(&mut self, items: &[Value], at: Micros, shipped: bool) {
        let deltas: Vec<Value> = items
            .iter()
            .map(|i| {
                let qty = i["qty"].as_i64().unwrap_or(0);
                json!([i["sku"], -qty, if shipped { -qty } else { 0 }])
            })
            .collect();
        self.push(
            "inventory",
            if shipped {
                "StockShipped"
            } else {
                "StockReleased"
            },
            at,
            json!({ "delta": deltas }),
        );
    }

    /// Domain events only; the jq reducer in `bank.jq` knows what they mean.
    fn bank(&mut self, c: &Catalog, start: Micros) {
        for account in &c.accounts {
            let stream = format!("account-{}", account.id);
            let mut t = start + self.rng.range(0, HOUR);
            self.push(
                &stream,
                "AccountOpened",
                t,
                json!({"owner": account.owner, "currency": account.currency}),
            );
            let mut balance = 0i64;
            let mut frozen = false;
            for i in 1..account.events {
                t += self.rng.range(10 * MINUTE, 6 * HOUR);
                let (kind, data) = if frozen {
                    frozen = false;
                    ("AccountUnfrozen", json!({}))
                } else if i % 30 == 0 {
                    (
                        "InterestPaid",
                        json!({"amount": (balance.max(0) / 1000).max(1)}),
                    )
                } else if i % 45 == 0 {
                    ("FeeCharged", json!({"amount": 250, "reason": "monthly"}))
                } else if i % 301 == 0 {
                    frozen = true;
                    (
                        "AccountFrozen",
                        json!({"reason": "suspicious activity review"}),
                    )
                } else if balance > 5_000 && self.rng.chance(45) {
                    (
                        "Withdrawn",
                        json!({"amount": self.rng.range(500, balance.min(80_000))}),
                    )
                } else {
                    (
                        "Deposited",
                        json!({"amount": self.rng.range(1_000, 120_000)}),
                    )
                };
                balance += match kind {
                    "Deposited" | "InterestPaid" => data["amount"].as_i64().unwrap_or(0),
                    "Withdrawn" | "FeeCharged" => -data["amount"].as_i64().unwrap_or(0),
                    _ => 0,
                };
                self.push(&stream, kind, t, data);
            }
        }
    }

    /// Checkpoints of an agent graph: every node writes the whole state (replace reducer).
    fn agent_run(&mut self, run: &AgentRun, start: Micros) {
        let mut steps = Vec::new();
        expand(&run.turns, run, &mut steps, &mut 0);
        if let Some(limit) = run.crash_after {
            steps.truncate(limit);
        }
        let mut state = json!({
            "run_id": run.stream, "task": run.task, "model": run.model, "status": "running",
            "step": 0, "node": "start", "messages": [], "message_count": 0,
            "tool_calls": {}, "pending_tool_call": null,
            "progress": {"done": 0, "total": run.files.len()},
            "tokens": {"input": 0, "output": 0}
        });
        let mut t = start;
        for (i, step) in steps.iter().enumerate() {
            t += self.rng.range(2_000_000, 40_000_000);
            let Turn::Step {
                node,
                say,
                tool,
                args,
                status,
            } = step
            else {
                continue;
            };
            state["step"] = json!(i + 1);
            state["node"] = json!(node);
            let message = match (tool, say) {
                (Some(tool), _) => {
                    let id = format!("call_{:03}", i + 1);
                    state["pending_tool_call"] = json!({"id": id, "tool": tool, "args": args});
                    let count = state["tool_calls"][tool.as_str()].as_u64().unwrap_or(0) + 1;
                    state["tool_calls"][tool.as_str()] = json!(count);
                    json!({"role": "assistant", "tool_call": {"id": id, "tool": tool}})
                }
                (None, Some(text)) => {
                    if node == "observe" {
                        state["pending_tool_call"] = Value::Null;
                    }
                    if text.contains("Tests pass") {
                        let done = state["progress"]["done"].as_u64().unwrap_or(0) + 1;
                        state["progress"]["done"] = json!(done);
                    }
                    let role = if node == "observe" {
                        "tool"
                    } else {
                        "assistant"
                    };
                    json!({"role": role, "content": text})
                }
                (None, None) => json!({"role": "assistant"}),
            };
            if let Some(messages) = state["messages"].as_array_mut() {
                messages.push(message);
                if messages.len() > 8 {
                    messages.remove(0);
                }
            }
            let count = state["message_count"].as_u64().unwrap_or(0) + 1;
            state["message_count"] = json!(count);
            let input = state["tokens"]["input"].as_i64().unwrap_or(0) + self.rng.range(800, 4_000);
            let output = state["tokens"]["output"].as_i64().unwrap_or(0) + self.rng.range(40, 600);
            state["tokens"] = json!({"input": input, "output": output});
            if let Some(status) = status {
                state["status"] = json!(status);
            }
            self.push(&run.stream, "Checkpoint", t, state.clone());
        }
    }
}

/// Flattens repeats: `"repeat": "files"` runs once per file with `{item}`, a number runs
/// that many times with `{n}`; `{done}` counts completed repetitions.
fn expand(turns: &[Turn], run: &AgentRun, out: &mut Vec<Turn>, done: &mut usize) {
    for turn in turns {
        match turn {
            Turn::Repeat { repeat, turns } => {
                let items: Vec<String> = match repeat {
                    Value::String(s) if s == "files" => run.files.clone(),
                    Value::Number(n) => (1..=n.as_u64().unwrap_or(0))
                        .map(|n| n.to_string())
                        .collect(),
                    _ => Vec::new(),
                };
                for (n, item) in items.iter().enumerate() {
                    *done = n + 1;
                    let fill = |text: &str| {
                        text.replace("{item}", item)
                            .replace("{n}", &(n + 1).to_string())
                            .replace("{done}", &done.to_string())
                    };
                    for t in turns {
                        out.push(match t {
                            Turn::Step {
                                node,
                                say,
                                tool,
                                args,
                                status,
                            } => Turn::Step {
                                node: node.clone(),
                                say: say.as_deref().map(fill),
                                tool: tool.clone(),
                                args: args.as_ref().map(|a| {
                                    serde_json::from_str(&fill(&a.to_string()))
                                        .unwrap_or(Value::Null)
                                }),
                                status: status.clone(),
                            },
                            nested @ Turn::Repeat { .. } => nested.clone(),
                        });
                    }
                }
            }
            step @ Turn::Step { .. } => out.push(step.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_is_deterministic_and_large_enough() {
        let mut a = Engine::new(Store::open_in_memory().unwrap());
        populate(&mut a).unwrap();
        let mut b = Engine::new(Store::open_in_memory().unwrap());
        populate(&mut b).unwrap();
        let (events, _) = a.store().event_totals().unwrap();
        assert!(events >= 10_000, "{events} events");
        assert_eq!(b.store().event_totals().unwrap().0, events);
        for name in ["inventory", "agent-run-7", "account-ACC-1001", "order-1042"] {
            let sa = a.state_at(name, Target::Head).unwrap().state;
            let sb = b.state_at(name, Target::Head).unwrap().state;
            assert_eq!(sa, sb, "{name}");
        }
    }

    #[test]
    fn the_crashed_agent_run_stops_with_a_pending_tool_call() {
        let mut engine = Engine::new(Store::open_in_memory().unwrap());
        populate(&mut engine).unwrap();
        let head = engine.state_at("agent-run-7", Target::Head).unwrap().state;
        assert_eq!(head["status"], "running");
        assert!(head["pending_tool_call"].is_object(), "{head}");
        let done = engine.state_at("agent-run-6", Target::Head).unwrap().state;
        assert_eq!(done["status"], "completed");
        let bank = engine
            .state_at("account-ACC-1001", Target::Head)
            .unwrap()
            .state;
        assert!(
            bank["balance"].as_i64().unwrap() > 0 && bank["transactions"].as_i64().unwrap() > 100,
            "{bank}"
        );
        let inventory = engine.state_at("inventory", Target::Head).unwrap().state;
        for (sku, item) in inventory.as_object().unwrap() {
            let (on_hand, reserved) = (
                item["on_hand"].as_i64().unwrap(),
                item["reserved"].as_i64().unwrap(),
            );
            assert!(reserved >= 0 && on_hand >= reserved, "{sku}: {item}");
        }
    }
}
