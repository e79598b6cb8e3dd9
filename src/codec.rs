//! Snapshot bytes: canonical JSON, blake3 checksums and zstd frames whose decompression is
//! bounded by the size recorded beside them. Knows nothing of SQL or streams.

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
    write_canonical(value, &mut out);
    out
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
                write_scalar(&Value::String(key.clone()), out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Serialising a scalar into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// blake3 of the canonical bytes.
pub fn checksum(canonical: &[u8]) -> [u8; 32] {
    *blake3::hash(canonical).as_bytes()
}

/// Compresses canonical bytes into one zstd frame that records its content size.
pub fn compress(canonical: &[u8]) -> Result<Vec<u8>, CodecError> {
    zstd::bulk::compress(canonical, LEVEL).map_err(|e| CodecError::Zstd(e.to_string()))
}

/// Decompresses a frame, refusing one that declares or produces more than `raw_size` bytes,
/// and checks the result against `expected` before parsing it.
pub fn decode(blob: &[u8], raw_size: u64, expected: &[u8]) -> Result<Value, CodecError> {
    let declared = zstd::zstd_safe::get_frame_content_size(blob)
        .map_err(|_| CodecError::Zstd("not a zstd frame".into()))?;
    if let Some(declared) = declared {
        if declared != raw_size {
            return Err(CodecError::Size {
                expected: raw_size,
                found: declared,
            });
        }
    }
    let capacity = usize::try_from(raw_size).map_err(|_| CodecError::Size {
        expected: raw_size,
        found: raw_size,
    })?;
    let bytes =
        zstd::bulk::decompress(blob, capacity).map_err(|e| CodecError::Zstd(e.to_string()))?;
    if bytes.len() as u64 != raw_size {
        return Err(CodecError::Size {
            expected: raw_size,
            found: bytes.len() as u64,
        });
    }
    if checksum(&bytes)[..] != *expected {
        return Err(CodecError::Checksum);
    }
    serde_json::from_slice(&bytes).map_err(|e| CodecError::Json(e.to_string()))
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
    fn roundtrip_through_a_frame() {
        let v = json!({"order": {"status": "paid", "items": [1, 2, 3]}});
        let bytes = canonical(&v);
        let blob = compress(&bytes).unwrap();
        assert_eq!(
            decode(&blob, bytes.len() as u64, &checksum(&bytes)).unwrap(),
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
        assert!(decode(&blob, bytes.len() as u64, &checksum(&bytes)).is_err());
    }

    #[test]
    fn recorded_size_bounds_decompression() {
        let bytes = canonical(&json!({"k": "v".repeat(1000)}));
        let blob = compress(&bytes).unwrap();
        let err = decode(&blob, 10, &checksum(&bytes)).unwrap_err();
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
                &checksum(&bytes)
            )
            .is_err()
        );
        assert!(decode(&[], bytes.len() as u64, &checksum(&bytes)).is_err());
    }

    #[test]
    fn wrong_checksum_is_detected() {
        let bytes = canonical(&json!({"a": 1}));
        let blob = compress(&bytes).unwrap();
        assert_eq!(
            decode(&blob, bytes.len() as u64, &[0; 32]).unwrap_err(),
            CodecError::Checksum
        );
    }
}
