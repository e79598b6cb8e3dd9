//! A LangGraph `SqliteSaver` file's rows written arbitrarily, mirrored as `rewind open` mirrors
//! it: the mirror never panics, and where it can be made it reproduces every checkpoint the
//! file holds exactly (`verify`'s check finds nothing, and counts every checkpoint as equal or
//! unreadable).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/langgraph_file.rs"]
mod langgraph_file;

fuzz_target!(|data: &[u8]| {
    let (conn, stored) = langgraph_file::file(data);
    let source = std::path::Path::new("fuzz.sqlite");
    // A mirror may refuse what it cannot hold (a name it cannot take); what it holds is exact.
    let Ok(mut mirror) = rewind::source::mirror::langgraph::mirror_in_memory(&conn, source) else {
        return;
    };
    let checked =
        rewind::source::mirror::langgraph::check(&mut mirror, &conn, source, &Default::default())
            .expect("check");
    assert!(checked.findings.is_empty(), "{:?}", checked.findings);
    assert_eq!(checked.equal + checked.unreadable, stored as u64);
    // The outline the mirror is cut from is the branches a whole read cuts.
    let whole = rewind::source::langgraph::read(&conn).expect("read once, read again");
    let outline = rewind::source::langgraph::outline(&conn).expect("outlined");
    let shape = |bs: &[rewind::source::langgraph::Branch]| -> Vec<(String, Option<(String, u64)>, Vec<String>)> {
        bs.iter()
            .map(|b| (b.stream.clone(), b.fork.clone(), b.checkpoints.iter().map(|c| c.id.clone()).collect()))
            .collect()
    };
    assert_eq!(shape(&outline), shape(&whole));
});
