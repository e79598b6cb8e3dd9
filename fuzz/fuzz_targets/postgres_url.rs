//! Server URLs and password files as a user or a machine may hold them: read as libpq reads
//! them. Any error is fine; a panic is not, a parsed port is a port, and what is shown of a
//! source never holds its password (read again, it is the same source and gives none).
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
        // What is shown carries no password: read again with nothing else to give one,
        // it is the same server, user and database, and has none.
        let shown = spec.shown();
        let none = |_: &str| None;
        let no_file = |_: &Path| None;
        let again = Spec::parse(&shown, &none, &no_file).expect(&shown);
        assert_eq!(again.password, None, "{shown}");
        assert_eq!(
            (&again.user, &again.host, again.port, &again.dbname, &again.table),
            (&spec.user, &spec.host, spec.port, &spec.dbname, &spec.table),
            "{shown}"
        );
    }
    let _ = pgpass_lookup(pgpass, "h", 5432, "d", "u");
});
