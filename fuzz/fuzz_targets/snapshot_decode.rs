//! Snapshot decoding, full and delta, with and without a base: any blob, recorded size,
//! checksum and base. Decoding never panics nor allocates past its bound, and what it accepts
//! is exactly the canonical JSON the checksum covers. A JSON input is also encoded (full and
//! as a delta against another) and must decode to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::codec;

fuzz_target!(|data: &[u8]| {
    if data.len() < 42 {
        return;
    }
    let (head, rest) = data.split_at(42);
    let delta = head[0] & 1 == 1;
    let raw_size = u64::from_le_bytes(head[1..9].try_into().expect("8 bytes")) >> (head[9] % 64);
    let checksum = &head[10..42];
    let (base, blob) = rest.split_at(usize::from(head[0] >> 1).min(rest.len()));
    let binding = codec::binding("s", 1, "merge", if delta { "delta" } else { "full" }, None);
    let decoded = if delta {
        codec::decode_delta(blob, raw_size, checksum, &binding, base)
    } else {
        codec::decode(blob, raw_size, checksum, &binding)
    };
    if let Ok(value) = decoded {
        let bytes = codec::canonical(&value);
        assert!(raw_size <= (blob.len() as u64) << 16);
        assert_eq!(codec::checksum(&binding, &bytes)[..], *checksum);
    }
    // Valid states round-trip, full and delta.
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(rest) {
        let full = codec::encode(&value, 0, &binding).expect("encode");
        assert_eq!(
            codec::decode(&full.blob, full.raw_size, &full.checksum, &binding).expect("decode"),
            value
        );
        let base = codec::canonical(&serde_json::json!({"base": base.len()}));
        let d = codec::encode_delta(&value, &base, &binding).expect("encode delta");
        assert_eq!(
            codec::decode_delta(&d.blob, d.raw_size, &d.checksum, &binding, &base)
                .expect("decode delta"),
            value
        );
    }
});
