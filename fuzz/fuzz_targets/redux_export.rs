//! Redux DevTools exports (the actions, or the lifted state written by `jsan`): reading never
//! panics nor runs away (references that multiply stop at the budget), the same bytes always
//! read the same, and a session read starts with `@@INIT` where it is the actions, has a state
//! for every action where it is the lifted state, and nests within the bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::source::redux::parse;

fuzz_target!(|data: &[u8]| {
    let first = parse(data);
    assert_eq!(first, parse(data));
    let Ok(session) = first else {
        return;
    };
    if session.lifted {
        assert!(session.steps.iter().all(|s| s.state.is_some()));
    } else {
        assert_eq!(session.steps[0].action["type"], "@@INIT");
    }
    for step in &session.steps {
        assert!(step.action.get("type").is_some_and(|t| t.is_string()));
        for value in step.state.iter().chain(session.preloaded.iter()) {
            assert!(rewind::reduce::depth(value) <= rewind::reduce::MAX_DEPTH + 2);
        }
    }
});
