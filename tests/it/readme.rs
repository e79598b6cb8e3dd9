//! The README's command-line examples are run, in order, exactly as written.

use std::process::Command;

fn words(line: &str) -> Vec<String> {
    // Enough of shell quoting for the README: single quotes, double quotes, plain words.
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, ' ') => {
                if started || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                started = false;
            }
            (None, c) => word.push(c),
        }
    }
    if started || !word.is_empty() {
        out.push(word);
    }
    out
}

#[test]
fn every_readme_example_runs() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for line in readme.lines().filter_map(|l| l.strip_prefix("$ rewind ")) {
        let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(words(line))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rewind {line}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 20, "only {ran} examples found");
}

#[test]
fn quoting_splits_like_a_shell() {
    assert_eq!(words(r#"a 'b c' "d" '' e"#), vec!["a", "b c", "d", "", "e"]);
}
