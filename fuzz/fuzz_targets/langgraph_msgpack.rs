//! LangGraph's stored values (a type and its bytes, as a checkpoint file holds them): decoding
//! never panics nor runs away, what decodes nests no deeper than the bound, its JSON text is
//! at most a bounded multiple of the bytes it came from (no small blob renders huge), and the
//! same bytes always give the same answer; rendering one member of a map (a checkpoint's
//! `channel_values`) gives what rendering the whole and taking the member gives, and the
//! DeltaChannel snapshots it marks are members of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::source::msgpack::{decode_member, decode_member_marking, decode_typed};

const KINDS: [&str; 6] = ["msgpack", "json", "bytes", "null", "pickle", "msgpack+aes"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    // Mostly msgpack: the other types are thin.
    let kind = KINDS.get(usize::from(selector >> 4)).unwrap_or(&"msgpack");
    let first = decode_typed(kind, bytes);
    assert_eq!(first, decode_typed(kind, bytes));
    if let Ok(whole) = &first {
        let member = decode_member(kind, bytes, "channel_values").expect("the whole decoded");
        assert_eq!(member.as_ref(), whole.get("channel_values"));
        // The DeltaChannel snapshots marked are channels of that member.
        let marking = decode_member_marking(kind, bytes, "channel_values").expect("decoded");
        assert_eq!(marking.as_ref().map(|(v, _)| v), member.as_ref());
        for key in marking.iter().flat_map(|(_, keys)| keys) {
            assert!(member.as_ref().and_then(|m| m.get(key)).is_some(), "{key}");
        }
    }
    if let Ok(value) = first {
        assert!(rewind::reduce::depth(&value) <= rewind::reduce::MAX_DEPTH);
        let shown = value.to_string().len();
        assert!(
            shown <= 16 * bytes.len() + 64,
            "{} bytes of {kind} rendered as {shown} bytes of JSON",
            bytes.len()
        );
    }
});
