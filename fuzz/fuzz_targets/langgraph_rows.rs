//! A LangGraph `SqliteSaver` file's rows written arbitrarily (ids, parents forming any tree,
//! cycle or forest, any blob under any type, writes under any checkpoint): reading never
//! panics, every checkpoint lands in exactly one branch, a branch forks from a version its
//! parent branch holds, and a branch's checkpoints continue each other.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;

#[path = "../common/langgraph_file.rs"]
mod langgraph_file;

fuzz_target!(|data: &[u8]| {
    let (conn, stored) = langgraph_file::file(data);
    let Ok(branches) = rewind::source::langgraph::read(&conn) else {
        return;
    };
    assert_eq!(
        branches.iter().map(|b| b.checkpoints.len()).sum::<usize>(),
        stored
    );
    let ranges: HashMap<&str, (u64, u64)> = branches
        .iter()
        .map(|b| {
            let first = b.fork.as_ref().map_or(1, |(_, v)| v + 1);
            (
                b.stream.as_str(),
                (first, first + b.checkpoints.len() as u64 - 1),
            )
        })
        .collect();
    for branch in &branches {
        assert!(!branch.checkpoints.is_empty());
        if let Some((parent, version)) = &branch.fork {
            let (first, last) = ranges[parent.as_str()];
            assert!(
                (first..=last).contains(version),
                "{} forks from {parent} v{version}",
                branch.stream
            );
        }
        for pair in branch.checkpoints.windows(2) {
            assert_eq!(pair[1].parent.as_deref(), Some(pair[0].id.as_str()));
        }
    }
});
