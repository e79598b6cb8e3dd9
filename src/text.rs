//! Text from events, made safe to show: control and format characters escaped, long lines
//! cut. Both faces (CLI and TUI) pass everything that came from a database through here.

/// Replaces control and format characters (escape sequences, bidi overrides …) with
/// visible `\u{…}` escapes, and cuts text longer than `max` characters with `…`.
pub fn clean(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max.saturating_add(8)));
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push('…');
            break;
        }
        if needs_escape(c) {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Like [`clean`], but text longer than `max` characters loses its middle: `account-…-1001`
/// keeps the start and the end (where names differ most) rather than only the start.
pub fn middle(text: &str, max: usize) -> String {
    let clean = clean(text, usize::MAX);
    let n = clean.chars().count();
    if n <= max {
        return clean;
    }
    if max == 0 {
        return String::new();
    }
    let keep = max - 1;
    let head = keep / 2;
    let tail = keep - head;
    let mut out: String = clean.chars().take(head).collect();
    out.push('…');
    out.extend(clean.chars().skip(n - tail));
    out
}

/// JSON text with every control character but the newline and every format character
/// written as a `\uXXXX` escape: the same JSON value, harmless on a terminal. (serde_json
/// escapes only U+0000–U+001F; C1 controls, DEL and bidi overrides pass through it.)
pub fn json_safe(text: &str) -> String {
    if !text.chars().any(|c| needs_escape(c) && c != '\n') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) && c != '\n' {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An error message with everything that could drive a terminal made visible; newlines
/// stay, since messages may span lines.
pub fn safe_message(text: &str) -> String {
    crate::source::postgres::redact(text)
        .lines()
        .map(|line| clean(line, usize::MAX))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Text to be copied as it is (a jq program): newlines and tabs stay, every other control
/// or format character is made visible.
pub fn verbatim(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            line.split('\t')
                .map(|part| clean(part, usize::MAX))
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a character must not reach a terminal as it is.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_format(c)
}

/// Unicode's format characters (category Cf) and the line and paragraph separators: they
/// reorder, hide or break text on a terminal.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{890}'..='\u{891}'
        | '\u{8e2}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
        | '\u{110bd}' | '\u{110cd}' | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}' | '\u{e0001}' | '\u{e0020}'..='\u{e007f}')
}

/// Whether `text` matches a glob: `*` any run of characters, `?` any one; everything else
/// itself. A pattern without either matches only the same text.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // The classic two-pointer walk, going back to the last `*` on a mismatch: linear in
    // practice, and never exponential.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(&c) if c == '?' || c == t[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::{glob, middle};

    #[test]
    fn long_names_lose_their_middle() {
        assert_eq!(middle("account-ACC-1001", 12), "accou…C-1001");
        assert_eq!(middle("account-ACC-1001", 16), "account-ACC-1001");
        assert_eq!(middle("abc", 1), "…");
        assert_eq!(middle("abc", 0), "");
        assert_eq!(middle("a\u{1b}[2Jbcdefgh", 8).chars().count(), 8);
        assert!(!middle("a\u{1b}[2Jbcdefgh", 8).contains('\u{1b}'));
    }

    #[test]
    fn globs_match_runs_and_single_characters_and_nothing_else() {
        for (pattern, text) in [
            ("*", ""),
            ("*", "anything"),
            ("order-*", "order-1042"),
            ("order-*", "order-"),
            ("*-7", "agent-run-7"),
            ("a?c", "abc"),
            ("a*b*c", "a-b-b-c"),
            ("exact", "exact"),
            ("ü*", "über"),
        ] {
            assert!(glob(pattern, text), "{pattern} {text}");
        }
        for (pattern, text) in [
            ("order-*", "orders-1"),
            ("exact", "exactly"),
            ("a?c", "ac"),
            ("*-7", "agent-run-70"),
            ("", "x"),
        ] {
            assert!(!glob(pattern, text), "{pattern} {text}");
        }
    }
}
