#![allow(clippy::unwrap_used)]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use serde_json::{Value, json};
use std::time::Instant;
fn main() {
    let mut m = serde_json::Map::new();
    let mut x = 1u64;
    for k in 0..10_000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        m.insert(format!("key_{k:05}"), json!({"n": x % 1_000_000, "label": format!("item-{:016x}-{:016x}-{:08x}", x, x.rotate_left(17), x >> 40), "ok": true}));
    }
    let v = Value::Object(m);
    if std::env::args().nth(1).as_deref() == Some("parse") {
        let bytes = rewind::codec::canonical(&v);
        for _ in 0..300 {
            std::hint::black_box(serde_json::from_slice::<Value>(&bytes).unwrap());
        }
        return;
    }
    let t = |name: &str, f: &mut dyn FnMut()| {
        let s = Instant::now();
        for _ in 0..60 {
            f();
        }
        println!(
            "{name:<28} {:>8.2} ms",
            s.elapsed().as_secs_f64() * 1000.0 / 60.0
        );
    };
    let bytes = rewind::codec::canonical(&v);
    println!("raw {} bytes", bytes.len());
    t("canonical", &mut || {
        std::hint::black_box(rewind::codec::canonical(&v));
    });
    t("serde_json::to_vec", &mut || {
        std::hint::black_box(serde_json::to_vec(&v).unwrap());
    });
    t("blake3", &mut || {
        std::hint::black_box(rewind::codec::checksum(&[], &bytes));
    });
    for level in [-5, -1, 1, 3] {
        let c = zstd::bulk::compress(&bytes, level).unwrap();
        t(&format!("zstd level {level} ({} B)", c.len()), &mut || {
            std::hint::black_box(zstd::bulk::compress(&bytes, level).unwrap());
        });
    }
    let blob = rewind::codec::compress(&bytes).unwrap();
    let sum = rewind::codec::checksum(&[], &bytes);
    t("decode (all)", &mut || {
        std::hint::black_box(rewind::codec::decode(&blob, bytes.len() as u64, &sum, &[]).unwrap());
    });
    t("zstd decompress", &mut || {
        std::hint::black_box(zstd::bulk::decompress(&blob, bytes.len()).unwrap());
    });
    t("serde_json::from_slice", &mut || {
        std::hint::black_box(serde_json::from_slice::<Value>(&bytes).unwrap());
    });
    t("parse to IgnoredAny", &mut || {
        std::hint::black_box(serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).unwrap());
    });
    t("clone Value", &mut || {
        std::hint::black_box(v.clone());
    });
    t("drop Value", &mut || {
        let c = v.clone();
        drop(c);
    });
}
