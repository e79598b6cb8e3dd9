//! Printing for people and scripts: aligned tables, JSON lines, and escaping of anything
//! that came from event data so it cannot drive the terminal.

use std::io::{self, Write};

use serde::Serialize;

pub use crate::text::{clean, json_safe, safe_message};

/// Buffered stdout; every write is checked so a closed pipe ends the command quietly.
pub fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::new(io::stdout().lock())
}

/// The fields that hold a time, kept in µs since the epoch inside rewind.
const TIMES: &[&str] = &[
    "ts",
    "time",
    "created_at",
    "last_ts",
    "expires_at",
    "expired_at",
    "judged_at",
    "before_time",
    "until",
    "last_maintenance",
    "first_ts",
    "taken_at",
];

/// Times as scripts read them best: every time field that holds µs since the epoch becomes an
/// RFC 3339 string, with the µs kept beside it under `…_us` (`created_at`, `created_at_us`).
pub fn with_times(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(fields) => {
            let mut extra = Vec::new();
            for (key, field) in fields.iter_mut() {
                if let (true, Some(us)) = (TIMES.contains(&key.as_str()), field.as_i64()) {
                    extra.push((format!("{key}_us"), serde_json::Value::from(us)));
                    *field = serde_json::Value::String(crate::time::format(us));
                } else {
                    with_times(field);
                }
            }
            for (key, us) in extra {
                fields.entry(key).or_insert(us);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(with_times),
        _ => {}
    }
}

/// Writes a value as pretty JSON followed by a newline, times as RFC 3339 ([`with_times`]).
pub fn json(out: &mut impl Write, value: &impl Serialize) -> anyhow::Result<()> {
    let mut value = serde_json::to_value(value)?;
    with_times(&mut value);
    // Serialise first: an io::Error inside serde_json's error would hide a closed pipe.
    let text = serde_json::to_string_pretty(&value)?;
    writeln!(out, "{}", json_safe(&text))?;
    out.flush()?;
    Ok(())
}

/// A table with a header row; columns listed in `right` are right-aligned (numbers).
pub struct Table {
    header: Vec<String>,
    right: Vec<usize>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<S: Into<String>>(header: Vec<S>, right: Vec<usize>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            right,
            rows: Vec::new(),
        }
    }

    /// Adds a row (cells are escaped by the caller with [`clean`] where they hold data).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints the table; the last column is not padded.
    pub fn print(&self, out: &mut impl Write) -> anyhow::Result<()> {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| -> String {
            let mut text = String::new();
            for (idx, cell) in cells.iter().enumerate() {
                let pad = widths[idx].saturating_sub(cell.chars().count());
                if idx > 0 {
                    text.push_str("  ");
                }
                if self.right.contains(&idx) {
                    text.push_str(&" ".repeat(pad));
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    if idx + 1 < cols {
                        text.push_str(&" ".repeat(pad));
                    }
                }
            }
            text.trim_end().to_string()
        };
        writeln!(
            out,
            "{}",
            line(self.header.iter().map(String::as_str).collect())
        )?;
        for row in &self.rows {
            writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
        }
        out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_escapes_terminal_controls_and_cuts_long_text() {
        assert_eq!(clean("a\u{1b}[2Jb", 80), "a\\u{001b}[2Jb");
        assert_eq!(clean("x\u{202e}y", 80), "x\\u{202e}y");
        assert_eq!(clean("abcdef", 3), "abc…");
    }

    #[test]
    fn json_safe_keeps_the_value_and_hides_the_controls() {
        let value =
            serde_json::json!({"s": "csi\u{9b}31m del\u{7f} rlo\u{202e} ls\u{2028} tag\u{e0041}"});
        let text = json_safe(&serde_json::to_string_pretty(&value).unwrap());
        assert!(
            !text
                .chars()
                .any(|c| crate::text::needs_escape(c) && c != '\n'),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }

    #[test]
    fn safe_message_keeps_lines_and_escapes_the_rest() {
        assert_eq!(
            safe_message("a\u{1b}]0;x\u{7}\nb"),
            "a\\u{001b}]0;x\\u{0007}\nb"
        );
    }

    #[test]
    fn table_aligns_numbers_right() {
        let mut t = Table::new(vec!["name", "n"], vec![1]);
        t.row(vec!["a".into(), "5".into()]);
        t.row(vec!["bbb".into(), "1,000".into()]);
        let mut out = Vec::new();
        t.print(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "name      n\na         5\nbbb   1,000\n"
        );
    }
}
