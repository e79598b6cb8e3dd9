//! JSONL import: any bytes, read as lines and imported into a fresh database. An import is
//! all or nothing: when it fails nothing is stored; when it succeeds every event line is
//! stored once, and each stream's state with its snapshots is the state without.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::{Engine, Store, Target};

thread_local! {
    /// A new database, made once and copied in memory per input.
    static EMPTY: Store = Store::open_in_memory().expect("memory");
}

fuzz_target!(|data: &[u8]| {
    let mut engine = Engine::new(EMPTY.with(|e| e.copy_in_memory().expect("copy")));
    let records = rewind::jsonl::read_lines(data, "fuzz");
    match engine.import(records, false) {
        Err(_) => assert_eq!(engine.store().event_totals().expect("totals").0, 0),
        Ok(report) => {
            let (events, _) = engine.store().event_totals().expect("totals");
            assert_eq!(events, report.appended);
            for stream in engine.store().streams().expect("streams") {
                let with = engine.state_of(&stream, Target::Head);
                engine.clear_cache();
                let plain = rewind_fuzz_fold(&mut engine, &stream);
                match (with, plain) {
                    (Ok(with), Ok(plain)) => assert_eq!(*with.state, plain, "{}", stream.name),
                    (Err(_), Err(_)) => {}
                    (with, plain) => panic!("{}: {with:?} against {plain:?}", stream.name),
                }
            }
        }
    }
});

/// The head state by a plain fold of every event, no snapshot or cache.
fn rewind_fuzz_fold(
    engine: &mut Engine,
    stream: &rewind::model::StreamInfo,
) -> rewind::Result<serde_json::Value> {
    let reducer = engine.reducer(&stream.reducer)?;
    let mut state = serde_json::json!({});
    engine.replay_onto(stream, &reducer, &mut state, 0, stream.head, |_, _| {})?;
    Ok(state)
}
