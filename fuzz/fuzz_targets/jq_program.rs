//! jq programs as users write them for the `jq:` reducer: any program text, run on any JSON
//! input within one event's budget. Compiling and running never panic nor run away (the
//! fuzzer's own timeout catches a hang); a run that succeeds gives exactly one value, and the
//! same run twice gives the same answer (budgets count work, not time).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (program, input) = text.split_once('\u{0}').unwrap_or((&text, "{}"));
    let Ok(input) = serde_json::from_str::<Value>(input) else {
        return;
    };
    let Ok(compiled) = rewind::jq::Program::compile(program) else {
        return;
    };
    let first = compiled.run(&input, "s", 1);
    let second = compiled.run(&input, "s", 1);
    match (&first, &second) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("{first:?} then {second:?}"),
    }
});
