//! Events of the user's own as JSON Lines or a JSON array, read by a mapping that is itself
//! fuzzed: reading never panics, the same bytes always read the same, positions count from 1
//! in order, and every event read has a stream and a type rewind can store and data within
//! the bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::source::json_events::{Mapping, read};

fuzz_target!(|data: &[u8]| {
    // The first line is the mapping (`stream=…,type=…`), the rest the file.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (spec, file) = data.split_at(split);
    let mapping = match Mapping::parse(&String::from_utf8_lossy(spec)) {
        Ok(mapping) => mapping,
        Err(_) => Mapping::default(),
    };
    let file = file.get(1..).unwrap_or_default();
    let first = read(file, &mapping, "file");
    assert_eq!(first, read(file, &mapping, "file"));
    let Ok((completed, events)) = first else {
        return;
    };
    assert!(completed.kind.is_some() || events.is_empty());
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.position, i as u64 + 1);
        rewind::store::check_name("stream name", &event.stream).expect("a stream rewind keeps");
        rewind::store::check_name("event type", &event.kind).expect("a type rewind keeps");
        assert!(rewind::reduce::depth(&event.data) <= rewind::reduce::MAX_DEPTH);
    }
});
