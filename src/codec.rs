//! Snapshot bytes: canonical JSON, blake3 checksums and zstd frames whose decompression is
//! bounded by the size recorded beside them. Knows nothing of SQL or streams.

use std::cell::RefCell;

use serde_json::Value;

/// zstd level for full snapshots: level 1 keeps a 1 MB state under the 5 ms budget.
pub const LEVEL: i32 = 1;

/// What is wrong with a stored snapshot blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// zstd could not decode the frame.
    #[error("zstd: {0}")]
    Zstd(String),
    /// The frame says it holds more (or other) than the recorded raw size.
    #[error("frame holds {found} bytes but {expected} were recorded")]
    Size {
        /// Size recorded in the database.
        expected: u64,
        /// Size the frame declares or produced.
        found: u64,
    },
    /// The decompressed bytes do not hash to the recorded checksum.
    #[error("checksum mismatch")]
    Checksum,
    /// The bytes are not JSON.
    #[error("not JSON: {0}")]
    Json(String),
}

/// The canonical encoding: compact JSON with object keys in byte order, so that equal states
/// have equal bytes and therefore equal checksums.
pub fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out);
    out
}

/// Whether `serde_json::Map` iterates in key order, as it does unless some crate in the
/// build turns on serde_json's `preserve_order`.
fn maps_iterate_sorted() -> bool {
    static SORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SORTED.get_or_init(|| {
        let mut map = serde_json::Map::new();
        map.insert("b".into(), Value::Null);
        map.insert("a".into(), Value::Null);
        map.keys().next().is_some_and(|k| k == "a")
    })
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            // serde_json's map is sorted unless some crate turns on `preserve_order`;
            // sort only when it is not, so the common case costs one pass.
            let sorted = map.keys().zip(map.keys().skip(1)).all(|(a, b)| a <= b);
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if !sorted {
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            }
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_key(key, out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        scalar => write_scalar(scalar, out),
    }
}

/// An object key as a JSON string, without copying it into a `Value` first.
fn write_key(key: &str, out: &mut Vec<u8>) {
    // Serialising a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, key);
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Serialising a scalar into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// blake3 of the canonical bytes, after a snapshot's binding (empty for none).
pub fn checksum(binding: &[u8], canonical: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(binding);
    hasher.update(canonical);
    *hasher.finalize().as_bytes()
}

/// What a snapshot's checksum covers besides its content: where it belongs (the stream's
/// name, since ids are per file, and the version), the reducer it was built with, whether it
/// is full or a delta, and a delta's base (by the base's own checksum). A row moved to
/// another version or stream, given another reducer or another base, no longer checks out.
pub fn binding(
    stream: &str,
    version: u64,
    fingerprint: &str,
    kind: &str,
    base_checksum: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + stream.len() + fingerprint.len());
    out.extend_from_slice(b"rewind snapshot 1\0");
    for text in [stream, fingerprint, kind] {
        out.extend_from_slice(&(text.len() as u64).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(&version.to_le_bytes());
    match base_checksum {
        Some(base) => {
            out.push(1);
            out.extend_from_slice(&(base.len() as u64).to_le_bytes());
            out.extend_from_slice(base);
        }
        None => out.push(0),
    }
    out
}

/// A state encoded for storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Bytes of canonical JSON.
    pub raw_size: u64,
    /// blake3 of the canonical JSON.
    pub checksum: [u8; 32],
    /// One zstd frame, or for a large object one frame per worker, concatenated.
    pub blob: Vec<u8>,
}

/// States expected to be at least this large are encoded and decoded on several threads.
pub const PARALLEL_MIN_BYTES: u64 = 256 << 10;

/// The most bytes one byte of a zstd frame can expand to (with room to spare: a 128 KiB block
/// takes at least 4 bytes).
const MAX_RATIO: u64 = 1 << 16;

/// The largest state, in bytes of canonical JSON, that a snapshot may hold.
pub const MAX_RAW_BYTES: u64 = 1 << 32;

/// At most this many frames per snapshot: one per core, and a bound on threads at decode.
const MAX_FRAMES: usize = 8;

fn workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(MAX_FRAMES)
}

/// Encodes a state: canonical JSON, its checksum and zstd. A large object (judged by
/// `size_hint`, e.g. the stream's last snapshot size) is split at top-level keys into one
/// part per core, each serialised and compressed on its own thread; the frames are stored
/// back to back, which is itself a valid zstd stream of the whole canonical text.
pub fn encode(value: &Value, size_hint: u64, binding: &[u8]) -> Result<Encoded, CodecError> {
    let parts = match value {
        Value::Object(map)
            if size_hint >= PARALLEL_MIN_BYTES && map.len() >= 2 && workers() > 1 =>
        {
            encode_parts(map, workers())?
        }
        _ => {
            let text = canonical(value);
            let frame = compress(&text)?;
            vec![(text, frame)]
        }
    };
    let mut hasher = blake3::Hasher::new();
    hasher.update(binding);
    let mut raw_size = 0;
    let mut blob = Vec::with_capacity(parts.iter().map(|p| p.1.len()).sum());
    for (text, frame) in &parts {
        hasher.update(text);
        raw_size += text.len() as u64;
        blob.extend_from_slice(frame);
    }
    Ok(Encoded {
        raw_size,
        checksum: *hasher.finalize().as_bytes(),
        blob,
    })
}

/// One part of an encoded state: its canonical text and that text's zstd frame.
type Part = (Vec<u8>, Vec<u8>);

/// `{` + first entries, `,` + middle entries, …, `,` + last entries + `}`, compressed.
fn encode_parts(
    map: &serde_json::Map<String, Value>,
    workers: usize,
) -> Result<Vec<Part>, CodecError> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    if !maps_iterate_sorted() {
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    let chunk = entries.len().div_ceil(workers);
    let count = entries.len().div_ceil(chunk);
    std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .enumerate()
            .map(|(i, chunk)| {
                scope.spawn(move || {
                    let mut text = Vec::with_capacity(64 * chunk.len());
                    text.push(if i == 0 { b'{' } else { b',' });
                    for (j, (key, item)) in chunk.iter().enumerate() {
                        if j > 0 {
                            text.push(b',');
                        }
                        write_key(key, &mut text);
                        text.push(b':');
                        write_value(item, &mut text);
                    }
                    if i + 1 == count {
                        text.push(b'}');
                    }
                    let frame = compress(&text)?;
                    Ok((text, frame))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(CodecError::Zstd("an encoder thread panicked".into())))
            })
            .collect()
    })
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    if maps_iterate_sorted() {
        // serde_json's own writer is then canonical already, and three times faster.
        let _ = serde_json::to_writer(&mut *out, value);
    } else {
        write_canonical(value, out);
    }
}

/// Compresses bytes into one zstd frame that records its content size.
pub fn compress(bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
    // A compression context costs more to set up than a small state costs to compress.
    thread_local! {
        static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    }
    COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(c) => c,
            None => slot.insert(
                zstd::bulk::Compressor::new(LEVEL).map_err(|e| CodecError::Zstd(e.to_string()))?,
            ),
        };
        compressor
            .compress(bytes)
            .map_err(|e| CodecError::Zstd(e.to_string()))
    })
}

fn decompress(frame: &[u8], size: usize) -> Result<Vec<u8>, CodecError> {
    thread_local! {
        static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    }
    let bytes = DECOMPRESSOR.with_borrow_mut(|slot| {
        let decompressor = match slot {
            Some(d) => d,
            None => slot.insert(
                zstd::bulk::Decompressor::new().map_err(|e| CodecError::Zstd(e.to_string()))?,
            ),
        };
        decompressor
            .decompress(frame, size)
            .map_err(|e| CodecError::Zstd(e.to_string()))
    })?;
    if bytes.len() != size {
        return Err(CodecError::Size {
            expected: size as u64,
            found: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// The frames of a blob with the content size each declares; every frame must declare one,
/// and together they must declare exactly `raw_size`, before anything is decompressed.
fn frames(mut blob: &[u8], raw_size: u64) -> Result<Vec<(&[u8], usize)>, CodecError> {
    // No zstd frame expands a byte into more than MAX_RATIO (a block of 128 KiB of one repeated
    // byte, or of one long match into its base, takes a few bytes at best): a size beyond that
    // is a lie that would only buy an allocation, so it is refused before anything is
    // allocated. Whatever the ratio, no state larger than MAX_RAW_BYTES is read.
    let possible = (blob.len() as u64).saturating_mul(MAX_RATIO);
    if raw_size > possible || raw_size > MAX_RAW_BYTES {
        return Err(CodecError::Size {
            expected: raw_size,
            found: possible.min(MAX_RAW_BYTES),
        });
    }
    let mut frames = Vec::new();
    let mut total = 0u64;
    while !blob.is_empty() {
        if frames.len() == MAX_FRAMES {
            return Err(CodecError::Zstd(format!("more than {MAX_FRAMES} frames")));
        }
        let len = zstd::zstd_safe::find_frame_compressed_size(blob)
            .map_err(|_| CodecError::Zstd("not a whole zstd frame".into()))?;
        let declared = zstd::zstd_safe::get_frame_content_size(blob)
            .ok()
            .flatten()
            .ok_or_else(|| CodecError::Zstd("a frame does not declare its size".into()))?;
        total = total.saturating_add(declared);
        if total > raw_size {
            return Err(CodecError::Size {
                expected: raw_size,
                found: total,
            });
        }
        let size = usize::try_from(declared).map_err(|_| CodecError::Size {
            expected: raw_size,
            found: declared,
        })?;
        let (frame, rest) = blob.split_at(len.min(blob.len()));
        frames.push((frame, size));
        blob = rest;
    }
    if total != raw_size || frames.is_empty() {
        return Err(CodecError::Size {
            expected: raw_size,
            found: total,
        });
    }
    Ok(frames)
}

/// Decompresses a blob, refusing one whose frames declare or produce other than `raw_size`
/// bytes, checks the result against `expected`, and parses it (a multi-frame blob on one
/// thread per frame).
pub fn decode(
    blob: &[u8],
    raw_size: u64,
    expected: &[u8],
    binding: &[u8],
) -> Result<Value, CodecError> {
    parse(verified_parts(blob, raw_size, expected, binding, None)?)
}

/// As [`decode`] for a delta: every frame was compressed with `base` (its full snapshot's
/// canonical bytes) as reference prefix.
pub fn decode_delta(
    blob: &[u8],
    raw_size: u64,
    expected: &[u8],
    binding: &[u8],
    base: &[u8],
) -> Result<Value, CodecError> {
    parse(verified_parts(
        blob,
        raw_size,
        expected,
        binding,
        Some(base),
    )?)
}

/// The canonical bytes a full snapshot holds, checked but not parsed: a delta's base.
pub fn canonical_bytes(
    blob: &[u8],
    raw_size: u64,
    expected: &[u8],
    binding: &[u8],
) -> Result<Vec<u8>, CodecError> {
    Ok(verified_parts(blob, raw_size, expected, binding, None)?.concat())
}

fn verified_parts(
    blob: &[u8],
    raw_size: u64,
    expected: &[u8],
    binding: &[u8],
    prefix: Option<&[u8]>,
) -> Result<Vec<Vec<u8>>, CodecError> {
    let frames = frames(blob, raw_size)?;
    let one = |frame: &[u8], size: usize| match prefix {
        Some(base) => decompress_with_prefix(frame, size, base),
        None => decompress(frame, size),
    };
    let parts: Vec<Vec<u8>> = if frames.len() == 1 {
        vec![one(frames[0].0, frames[0].1)?]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = frames
                .iter()
                .map(|&(frame, size)| scope.spawn(move || one(frame, size)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(CodecError::Zstd("a decoder thread panicked".into()))
                    })
                })
                .collect::<Result<_, _>>()
        })?
    };
    let mut hasher = blake3::Hasher::new();
    hasher.update(binding);
    for part in &parts {
        hasher.update(part);
    }
    if hasher.finalize().as_bytes()[..] != *expected {
        return Err(CodecError::Checksum);
    }
    Ok(parts)
}

fn parse(parts: Vec<Vec<u8>>) -> Result<Value, CodecError> {
    if parts.len() > 1
        && let Some(value) = parse_object_parts(&parts)
    {
        return Ok(value);
    }
    let whole = parts.concat();
    serde_json::from_slice(&whole).map_err(|e| CodecError::Json(e.to_string()))
}

/// The zstd window that covers a reference prefix and the data after it.
fn window_log(base: usize, data: usize) -> u32 {
    let span = (base + data).max(1 << 10);
    (usize::BITS - (span - 1).leading_zeros()).clamp(10, 30)
}

/// Encodes a state as a delta against `base`, the canonical bytes of the stream's last full
/// snapshot: zstd with `base` as reference prefix, long-distance matching and a window that
/// covers both, so unchanged stretches cost a few bytes each.
pub fn encode_delta(value: &Value, base: &[u8], binding: &[u8]) -> Result<Encoded, CodecError> {
    use zstd::zstd_safe::{CCtx, CParameter};
    let text = canonical(value);
    let z = |e: usize| CodecError::Zstd(zstd::zstd_safe::get_error_name(e).to_string());
    let mut cctx = CCtx::try_create().ok_or_else(|| CodecError::Zstd("out of memory".into()))?;
    cctx.set_parameter(CParameter::CompressionLevel(LEVEL))
        .map_err(z)?;
    cctx.set_parameter(CParameter::EnableLongDistanceMatching(true))
        .map_err(z)?;
    cctx.set_parameter(CParameter::WindowLog(window_log(base.len(), text.len())))
        .map_err(z)?;
    cctx.set_parameter(CParameter::ContentSizeFlag(true))
        .map_err(z)?;
    cctx.ref_prefix(base).map_err(z)?;
    let mut blob = Vec::with_capacity(zstd::zstd_safe::compress_bound(text.len()));
    cctx.compress2(&mut blob, &text).map_err(z)?;
    Ok(Encoded {
        raw_size: text.len() as u64,
        checksum: checksum(binding, &text),
        blob,
    })
}

fn decompress_with_prefix(frame: &[u8], size: usize, base: &[u8]) -> Result<Vec<u8>, CodecError> {
    use zstd::zstd_safe::{DCtx, DParameter};
    let z = |e: usize| CodecError::Zstd(zstd::zstd_safe::get_error_name(e).to_string());
    let mut dctx = DCtx::try_create().ok_or_else(|| CodecError::Zstd("out of memory".into()))?;
    dctx.set_parameter(DParameter::WindowLogMax(window_log(base.len(), size)))
        .map_err(z)?;
    dctx.ref_prefix(base).map_err(z)?;
    // The size was checked against what the frame could produce; the memory may still not
    // be there, which is a fault of this snapshot, not of the process.
    let mut out = Vec::new();
    out.try_reserve_exact(size).map_err(|_| CodecError::Size {
        expected: size as u64,
        found: size as u64,
    })?;
    dctx.decompress(&mut out, frame).map_err(z)?;
    if out.len() != size {
        return Err(CodecError::Size {
            expected: size as u64,
            found: out.len() as u64,
        });
    }
    Ok(out)
}

/// Parses the parts `encode_parts` wrote, each as an object of its own on its own thread,
/// and joins them. `None` if they are not shaped that way (then the whole text is parsed).
fn parse_object_parts(parts: &[Vec<u8>]) -> Option<Value> {
    let last = parts.len() - 1;
    let shaped = parts[0].first() == Some(&b'{')
        && parts[1..].iter().all(|p| p.first() == Some(&b','))
        && parts[last].last() == Some(&b'}');
    if !shaped {
        return None;
    }
    let maps: Vec<Option<serde_json::Map<String, Value>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                scope.spawn(move || {
                    let mut text = Vec::with_capacity(part.len() + 2);
                    if i > 0 {
                        text.push(b'{');
                    }
                    text.extend_from_slice(if i > 0 { &part[1..] } else { part });
                    if i < last {
                        text.push(b'}');
                    }
                    serde_json::from_slice(&text).ok()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect()
    });
    let mut whole = serde_json::Map::new();
    for map in maps {
        let mut map = map?;
        whole.append(&mut map);
    }
    Some(Value::Object(whole))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_sorts_keys_and_is_compact() {
        let v = json!({"b": 1, "a": [true, null, "x\u{1}"], "c": {"z": 1.5, "y": {}}});
        assert_eq!(
            String::from_utf8(canonical(&v)).unwrap(),
            r#"{"a":[true,null,"x\u0001"],"b":1,"c":{"y":{},"z":1.5}}"#
        );
    }

    #[test]
    fn the_sorting_writer_agrees_with_the_fast_path() {
        let v = json!({"z": [1, {"y": "\u{7f}\"", "b": -0.5}], "a": {"é": 1e300, "e": u64::MAX}});
        let mut slow = Vec::new();
        write_canonical(&v, &mut slow);
        assert_eq!(canonical(&v), slow);
        assert!(
            maps_iterate_sorted(),
            "a dependency turned on serde_json/preserve_order"
        );
    }

    #[test]
    fn roundtrip_through_a_frame() {
        let v = json!({"order": {"status": "paid", "items": [1, 2, 3]}});
        let bytes = canonical(&v);
        let blob = compress(&bytes).unwrap();
        assert_eq!(
            decode(&blob, bytes.len() as u64, &checksum(&[], &bytes), &[]).unwrap(),
            v
        );
    }

    #[test]
    fn flipped_byte_is_detected() {
        let v = json!({"k": "v".repeat(100)});
        let bytes = canonical(&v);
        let mut blob = compress(&bytes).unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 0x55;
        assert!(decode(&blob, bytes.len() as u64, &checksum(&[], &bytes), &[]).is_err());
    }

    #[test]
    fn recorded_size_bounds_decompression() {
        let bytes = canonical(&json!({"k": "v".repeat(1000)}));
        let blob = compress(&bytes).unwrap();
        let err = decode(&blob, 10, &checksum(&[], &bytes), &[]).unwrap_err();
        assert!(
            matches!(err, CodecError::Size { expected: 10, .. }),
            "{err}"
        );
    }

    #[test]
    fn truncated_frame_is_an_error_not_a_panic() {
        let bytes = canonical(&json!({"k": "v".repeat(1000)}));
        let blob = compress(&bytes).unwrap();
        assert!(
            decode(
                &blob[..blob.len() / 2],
                bytes.len() as u64,
                &checksum(&[], &bytes),
                &[]
            )
            .is_err()
        );
        assert!(decode(&[], bytes.len() as u64, &checksum(&[], &bytes), &[]).is_err());
    }

    #[test]
    fn a_checksum_binds_the_stream_version_reducer_kind_and_base() {
        let v = json!({"a": 1});
        let place = binding("s", 4, "merge", "full", None);
        let e = encode(&v, 0, &place).unwrap();
        assert_eq!(decode(&e.blob, e.raw_size, &e.checksum, &place).unwrap(), v);
        for elsewhere in [
            binding("t", 4, "merge", "full", None),
            binding("s", 3, "merge", "full", None),
            binding("s", 4, "patch", "full", None),
            binding("s", 4, "merge", "delta", None),
            binding("s", 4, "merge", "full", Some(&[7; 32])),
            Vec::new(),
        ] {
            assert_eq!(
                decode(&e.blob, e.raw_size, &e.checksum, &elsewhere).unwrap_err(),
                CodecError::Checksum
            );
        }
        // Fields are length-prefixed: moving a byte from one to the next is another binding.
        assert_ne!(
            binding("ab", 1, "c", "full", None),
            binding("a", 1, "bc", "full", None)
        );
    }

    #[test]
    fn wrong_checksum_is_detected() {
        let bytes = canonical(&json!({"a": 1}));
        let blob = compress(&bytes).unwrap();
        assert_eq!(
            decode(&blob, bytes.len() as u64, &[0; 32], &[]).unwrap_err(),
            CodecError::Checksum
        );
    }

    fn big_object() -> Value {
        let mut map = serde_json::Map::new();
        for k in 0..3000 {
            map.insert(
                format!("key_{k:05}"),
                json!({"n": k, "label": format!("item {k}"), "tags": ["a", k % 7]}),
            );
        }
        Value::Object(map)
    }

    fn multi_frame(v: &Value) -> Encoded {
        let parts = encode_parts(v.as_object().unwrap(), 3).unwrap();
        let mut hasher = blake3::Hasher::new();
        let mut blob = Vec::new();
        let mut raw_size = 0;
        for (text, frame) in &parts {
            hasher.update(text);
            raw_size += text.len() as u64;
            blob.extend_from_slice(frame);
        }
        Encoded {
            raw_size,
            checksum: *hasher.finalize().as_bytes(),
            blob,
        }
    }

    #[test]
    fn a_multi_frame_blob_holds_the_same_canonical_text() {
        let v = big_object();
        let e = multi_frame(&v);
        assert_eq!(frames(&e.blob, e.raw_size).unwrap().len(), 3);
        assert_eq!(e.raw_size, canonical(&v).len() as u64);
        assert_eq!(e.checksum, checksum(&[], &canonical(&v)));
        assert_eq!(decode(&e.blob, e.raw_size, &e.checksum, &[]).unwrap(), v);
        // The single-frame decoder of any zstd tool reads it whole, too.
        assert_eq!(
            zstd::bulk::decompress(&e.blob, canonical(&v).len()).unwrap(),
            canonical(&v)
        );
    }

    #[test]
    fn encode_splits_only_large_objects() {
        let v = big_object();
        let small = encode(&v, 0, &[]).unwrap();
        assert_eq!(frames(&small.blob, small.raw_size).unwrap().len(), 1);
        let large = encode(&v, PARALLEL_MIN_BYTES, &[]).unwrap();
        assert_eq!(
            frames(&large.blob, large.raw_size).unwrap().len(),
            workers().min(3000)
        );
        assert_eq!(
            (large.raw_size, large.checksum),
            (small.raw_size, small.checksum)
        );
        assert_eq!(
            decode(&large.blob, large.raw_size, &large.checksum, &[]).unwrap(),
            v
        );
    }

    #[test]
    fn a_bad_frame_in_a_multi_frame_blob_is_detected() {
        let v = big_object();
        let e = multi_frame(&v);
        let mut flipped = e.blob.clone();
        let at = flipped.len() - 40;
        flipped[at] ^= 0x5A;
        assert!(decode(&flipped, e.raw_size, &e.checksum, &[]).is_err());
        // Dropping the last frame changes the declared total.
        let two = frames(&e.blob, e.raw_size).unwrap()[..2]
            .iter()
            .map(|f| f.0.len())
            .sum::<usize>();
        let err = decode(&e.blob[..two], e.raw_size, &e.checksum, &[]).unwrap_err();
        assert!(matches!(err, CodecError::Size { .. }), "{err}");
    }

    #[test]
    fn a_delta_is_small_and_needs_its_base() {
        let base_state = big_object();
        let base = canonical(&base_state);
        let mut next = base_state.clone();
        for k in (0..3000).step_by(100) {
            next[format!("key_{k:05}")]["n"] = json!(-1);
        }
        let full = encode(&next, 0, &[]).unwrap();
        let delta = encode_delta(&next, &base, &[]).unwrap();
        assert_eq!(
            (delta.raw_size, delta.checksum),
            (full.raw_size, full.checksum)
        );
        assert!(
            delta.blob.len() * 20 < full.blob.len(),
            "delta {} vs full {}",
            delta.blob.len(),
            full.blob.len()
        );
        assert_eq!(
            decode_delta(&delta.blob, delta.raw_size, &delta.checksum, &[], &base).unwrap(),
            next
        );
        // Without its base, or with another one, it does not decode to a state.
        assert!(decode(&delta.blob, delta.raw_size, &delta.checksum, &[]).is_err());
        let other = canonical(&json!({"other": "base"}));
        assert!(decode_delta(&delta.blob, delta.raw_size, &delta.checksum, &[], &other).is_err());
    }
}
