//! LangGraph `PostgresSaver` rows as a server may hold them (any JSON text for the
//! checkpoint, any blobs of any type for its channels): staged into the msgpack checkpoint
//! rewind's LangGraph reader takes. Any error is fine; a panic is not, and what is staged is
//! always read back by that reader as a map of channels holding every blob's channel that is
//! not `empty`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::source::mirror::pg_langgraph::{Blob, staged_checkpoint};
use rewind::source::msgpack::decode_member;

fuzz_target!(|data: &[u8]| {
    // The checkpoint's text, then (channel, type, bytes) triples, parts split by NUL.
    let mut parts = data.split(|b| *b == 0);
    let checkpoint = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let rest: Vec<&[u8]> = parts.collect();
    let names: Vec<(String, String)> = rest
        .chunks(3)
        .map(|c| {
            (
                String::from_utf8_lossy(c[0]).into_owned(),
                String::from_utf8_lossy(c.get(1).copied().unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    let blobs: Vec<Blob<'_>> = rest
        .chunks(3)
        .zip(&names)
        .map(|(c, (channel, kind))| Blob {
            channel,
            kind,
            bytes: c.get(2).copied(),
        })
        .collect();
    let Ok(packed) = staged_checkpoint(&checkpoint, &blobs) else {
        return;
    };
    let values = decode_member("msgpack", &packed, "channel_values")
        .expect("a staged checkpoint reads back")
        .expect("it has channel values");
    let channels = values.as_object().expect("its channel values are a map");
    let last = |name: &str| blobs.iter().rev().find(|b| b.channel == name).unwrap();
    for blob in &blobs {
        if last(blob.channel).kind != "empty" {
            assert!(channels.contains_key(blob.channel), "{}", blob.channel);
        }
    }
});
