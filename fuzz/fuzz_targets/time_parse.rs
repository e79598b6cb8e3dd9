//! Times and durations as users type them: what parses formats back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(us) = rewind::time::parse(&text) {
        assert_eq!(rewind::time::parse(&rewind::time::format(us)), Ok(us));
    }
    if let Ok(d) = rewind::time::parse_duration(&text) {
        assert!(d > 0);
        assert_eq!(
            rewind::time::parse_duration(&rewind::time::format_duration(d)),
            Ok(d)
        );
    }
    let _ = rewind::time::parse_cron(&text);
});
