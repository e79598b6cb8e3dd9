//! Server URLs and password files as a user or a machine may hold them: read as libpq reads
//! them. Any error is fine; a panic is not, a parsed port is a port, and what is shown of a
//! source never holds its password.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rewind::source::postgres::{Spec, pgpass_lookup};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (url, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let (vars, pgpass) = rest.split_once('\n').unwrap_or((rest, ""));
    let var = |name: &str| {
        vars.split(';')
            .filter_map(|pair| pair.split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
    };
    let file = |_: &Path| Some(pgpass.to_owned());
    let url = if url.starts_with("postgres") {
        url.to_owned()
    } else {
        format!("postgres://{url}")
    };
    if let Ok(spec) = Spec::parse(&url, &var, &file) {
        assert!(spec.port > 0);
        let shown = spec.shown();
        if let Some(password) = spec.password.as_deref().filter(|p| p.len() >= 6) {
            let others = [&spec.user, &spec.host, &spec.dbname];
            if !others.iter().any(|o| o.contains(password)) && !spec.table.as_deref().unwrap_or("").contains(password) {
                assert!(!shown.contains(password), "{shown}");
            }
        }
    }
    let _ = pgpass_lookup(pgpass, "h", 5432, "d", "u");
});
