//! Text from events on its way to a terminal: no control or format character gets out of
//! `clean`, and `json_safe` keeps a JSON text the same value while escaping them. A title
//! glob from the user's settings matches as a plain recursive matcher does. A stream name
//! shortened in the middle stays within its width; the stream filter's prompt text either
//! parses or is explained, and judges any stream without a panic; the debugger's memory file
//! reads or is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::filter::{Facts, StreamFilter};
use rewind::text::{clean, glob, json_safe, middle, needs_escape, safe_message};

/// `*` any run, `?` any one character: the obvious (exponential) definition, on short input.
fn reference(p: &[char], t: &[char]) -> bool {
    match p.split_first() {
        None => t.is_empty(),
        Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
        Some((c, rest)) => t
            .split_first()
            .is_some_and(|(d, more)| (*c == '?' || c == d) && reference(rest, more)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&max, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if let Some((pattern, subject)) = text.split_once('\u{0}') {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = subject.chars().collect();
        if p.len() <= 12 && t.len() <= 24 {
            assert_eq!(
                glob(pattern, subject),
                reference(&p, &t),
                "{pattern:?} {subject:?}"
            );
        } else {
            let _ = glob(pattern, subject);
        }
    }
    let short = middle(&text, usize::from(max));
    assert!(!short.chars().any(needs_escape), "{short:?}");
    assert!(short.chars().count() <= usize::from(max));
    match StreamFilter::parse(&text) {
        Ok(Some(filter)) => {
            let _ = filter.matches(Facts {
                name: &text,
                status: Some(&text),
                unfinished: max % 2 == 0,
            });
            assert!(!filter.text().is_empty());
        }
        Ok(None) => assert!(text.trim().is_empty()),
        Err(e) => assert!(e.contains("is:unfinished"), "{e}"),
    }
    // The debugger's memory file (prompt history, view choices) reads or is refused.
    if let Ok(memory) = rewind::tui::memory::Memory::parse(rest) {
        assert!(memory.history.values().all(|h| h.len() <= rewind::tui::app::HISTORY));
    }
    let cleaned = clean(&text, usize::from(max));
    assert!(!cleaned.chars().any(needs_escape), "{cleaned:?}");
    assert!(cleaned.chars().count() <= usize::from(max) * 10 + 1);
    let message = safe_message(&text);
    assert!(!message.chars().any(|c| needs_escape(c) && c != '\n'));
    let safe = json_safe(&text);
    assert!(!safe.chars().any(|c| needs_escape(c) && c != '\n'));
    // JSON as rewind writes it (serde_json's text) stays the same value once made safe.
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        for written in [
            serde_json::to_string(&value).expect("text"),
            serde_json::to_string_pretty(&value).expect("text"),
        ] {
            let safe = json_safe(&written);
            assert!(!safe.chars().any(|c| needs_escape(c) && c != '\n'));
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&safe).ok(),
                Some(value.clone())
            );
        }
    }
});
