//! The per-stream hash chain over events' stored bytes: each event's value covers the
//! stream's name, its version, type, time, data and meta and the value before it, so that
//! changing, inserting or removing any stored event changes every value after it. Every
//! field is length-prefixed, so bytes cannot move from one field to the next unnoticed.
//! Pure functions; knows nothing of the database.

/// The full chain value after one event (or a stream's start).
pub type Hash = [u8; 32];

/// The chain value of a stream before its first event.
pub fn genesis(stream: &str) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"rewind chain 1\0");
    field(&mut hasher, stream.as_bytes());
    *hasher.finalize().as_bytes()
}

/// The chain value after the event at `version`, from the value before it.
pub fn next(
    previous: &Hash,
    stream: &str,
    version: u64,
    kind: &str,
    ts: i64,
    data: &str,
    meta: Option<&str>,
) -> Hash {
    // One buffer hashed at once: a short input is one or two blake3 blocks, and the
    // hasher's per-update buffering cost as much as the hashing (import A/B, BENCHMARKS.md).
    // The buffer is kept per thread: an import hashes every event it stores.
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.clear();
        buf.extend_from_slice(previous);
        put(buf, stream.as_bytes());
        buf.extend_from_slice(&version.to_le_bytes());
        put(buf, kind.as_bytes());
        buf.extend_from_slice(&ts.to_le_bytes());
        put(buf, data.as_bytes());
        match meta {
            Some(meta) => {
                buf.push(1);
                put(buf, meta.as_bytes());
            }
            None => buf.push(0),
        }
        let hash = *blake3::hash(buf).as_bytes();
        // A huge event does not keep its buffer's memory.
        if buf.capacity() > 1 << 20 {
            *buf = Vec::new();
        }
        hash
    })
}

/// A field with its length before it, in 4 bytes (SQLite holds no text or blob of 4 GiB):
/// with 8, a typical event took three blake3 blocks instead of two.
fn put(buf: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(bytes);
}

fn field(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// What an event row stores of its chain value: the first 6 bytes (48 bits), as an SQLite
/// integer sign-extended so that SQLite stores it in 6 bytes (8 bytes took the standard
/// workload over its 100 bytes per event). Enough to find the first event where a
/// recomputed chain departs from the stored one (a change slips past one event's value with
/// a chance of 2⁻⁴⁸); the stream's full 32-byte head is what a tamperer cannot forge.
pub fn short(hash: &Hash) -> i64 {
    let mut first = [0; 8];
    first[..6].copy_from_slice(&hash[..6]);
    (i64::from_le_bytes(first) << 16) >> 16
}

/// A chain value as lowercase hex.
pub fn to_hex(hash: &Hash) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(64);
    for b in hash {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A chain value from 64 hex digits, or `None` if the text is not one.
pub fn from_hex(text: &str) -> Option<Hash> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A stored chain value (32 bytes) from a blob column, if it is one.
pub fn from_blob(blob: &[u8]) -> Option<Hash> {
    blob.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(stream: &str, kind: &str, data: &str, meta: Option<&str>) -> Hash {
        next(&genesis(stream), stream, 1, kind, 1_000, data, meta)
    }

    #[test]
    fn the_same_bytes_give_the_same_value() {
        assert_eq!(
            one("s", "E", r#"{"a":1}"#, None),
            one("s", "E", r#"{"a":1}"#, None)
        );
    }

    #[test]
    fn every_field_counts() {
        let base = one("s", "E", r#"{"a":1}"#, Some("{}"));
        let g = genesis("s");
        let others = [
            one("t", "E", r#"{"a":1}"#, Some("{}")),
            one("s", "F", r#"{"a":1}"#, Some("{}")),
            one("s", "E", r#"{"a":2}"#, Some("{}")),
            one("s", "E", r#"{"a":1}"#, None),
            one("s", "E", r#"{"a":1}"#, Some("{ }")),
            next(&g, "s", 2, "E", 1_000, r#"{"a":1}"#, Some("{}")),
            next(&g, "s", 1, "E", 1_001, r#"{"a":1}"#, Some("{}")),
            next(&[0; 32], "s", 1, "E", 1_000, r#"{"a":1}"#, Some("{}")),
        ];
        for other in others {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn bytes_cannot_move_between_fields() {
        // Without length prefixes these would hash the same concatenation.
        assert_ne!(one("s", "Ea", "1", None), one("s", "E", "a1", None));
        assert_ne!(genesis("ab"), genesis("a"));
        assert_ne!(one("s", "E", "1", Some("")), one("s", "E", "1", None));
    }

    #[test]
    fn hex_round_trips_and_refuses_other_text() {
        let h = genesis("s");
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"g".repeat(64)), None);
        assert_eq!(short(&h).to_le_bytes()[..6], h[..6]);
        assert!((-(1 << 47)..(1 << 47)).contains(&short(&h)));
    }
}
