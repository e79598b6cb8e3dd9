//! Database files mutated on disk: a small rewind database (with snapshots and an archive),
//! bytes changed at arbitrary offsets, then opened and read as the read commands read it.
//! Any error is fine; a panic or an abort is not, and a state read is the one the events fold
//! to or an error.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rewind::{Engine, OpenMode, Store, Target};

/// The pristine files: the database and its archive.
fn pristine() -> &'static (Vec<u8>, Vec<u8>) {
    static FILES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rewind-fuzz-db-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("f.db");
        {
            let mut engine = Engine::new(Store::open(&path, OpenMode::Create).expect("create"));
            for i in 1..=40_i64 {
                let event = rewind::NewEvent {
                    stream: format!("s{}", i % 2),
                    kind: "E".into(),
                    data: serde_json::json!({ format!("k{}", i % 5): i }),
                    meta: None,
                    time: Some(1_735_689_600_000_000 + i * 86_400_000_000),
                    idempotency_key: None,
                };
                engine
                    .append(event, rewind::engine::AppendOptions::default())
                    .expect("append");
                if i % 8 == 0 {
                    engine
                        .take_snapshot(&format!("s{}", i % 2), Target::Head, "manual", None)
                        .expect("snapshot");
                }
            }
            let now = engine.store().now_us().expect("now");
            rewind::snapshot::archive::archive(&mut engine, 1, now).expect("archive");
        }
        let main = std::fs::read(&path).expect("read");
        let archive = std::fs::read(dir.join("f.db.archive")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        (main, archive)
    })
}

fuzz_target!(|data: &[u8]| {
    let (main, archive) = pristine();
    let (mut main, mut archive) = (main.clone(), archive.clone());
    for patch in data.chunks(4) {
        if patch.len() < 4 {
            break;
        }
        let offset = usize::from(u16::from_le_bytes([patch[0], patch[1]]));
        let file = if patch[2] & 0x80 == 0 {
            &mut main
        } else {
            &mut archive
        };
        if file.is_empty() {
            continue;
        }
        let at = offset * 7 % file.len();
        file[at] = patch[3];
    }
    // In memory where the system has a shared-memory folder: the files are rewritten for
    // every input.
    let base = std::path::Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("rewind-fuzz-file-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("f.db");
    for suffix in [
        "",
        "-wal",
        "-shm",
        ".archive",
        ".archive-wal",
        ".archive-shm",
    ] {
        let _ = std::fs::remove_file(rewind::store::sidecar(&path, suffix));
    }
    std::fs::write(&path, &main).expect("write");
    if !archive.is_empty() {
        std::fs::write(dir.join("f.db.archive"), &archive).expect("write");
    }
    let Ok(mut engine) = Engine::open(&path, OpenMode::ReadOnly) else {
        return;
    };
    let Ok(streams) = engine.store().streams() else {
        return;
    };
    for stream in streams.iter().take(4) {
        for version in [1, stream.head / 2, stream.head] {
            let _ = engine.state_of(stream, Target::Version(version.min(stream.head)));
        }
        let _ = engine.store().events(stream, 1, stream.head, 50);
    }
    drop(engine);
    let _ = rewind::snapshot::verify::verify(&path, None, &|_, _| {});
});
