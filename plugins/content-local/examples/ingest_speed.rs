//! Driver-level throughput: writes a blob of `--mib` MiB in 1 MiB chunks through the store,
//! commits it (fsync included), reads it back, then commits `--small` tiny blobs.
//!
//! `cargo run --release -p rcontainerd-plugin-content-local --example ingest_speed -- <dir> [mib] [small]`
//! Compare with `dd if=/dev/zero of=<dir>/dd bs=1M count=<mib> conv=fdatasync` on the same disk.

use std::time::Instant;

use rcontainerd_plugin_api::{
    content::{Store, WriterOptions},
    snapshot::Labels,
};
use rcontainerd_plugin_content_local::LocalStore;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: ingest_speed <dir> [mib] [small]");
    let mib: usize = args.next().map_or(1024, |a| a.parse().expect("mib"));
    let small: usize = args.next().map_or(2000, |a| a.parse().expect("small"));
    let root = std::path::Path::new(&dir).join(format!("content-{}", std::process::id()));
    let store = LocalStore::open(root.clone()).expect("open store");

    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i * 31 % 253) as u8).collect();
    let started = Instant::now();
    let mut writer = store
        .writer(WriterOptions {
            reference: "bench/large".into(),
            ..WriterOptions::default()
        })
        .expect("writer");
    for i in 0..mib {
        // Vary the data so the blob is not trivially compressible or repeated.
        let mut data = chunk.clone();
        data[..8].copy_from_slice(&(i as u64).to_le_bytes());
        writer.write((i << 20) as u64, &data).expect("write");
    }
    writer.commit(0, "", Labels::new()).expect("commit");
    let write_secs = started.elapsed().as_secs_f64();
    println!(
        "write+commit {mib} MiB: {:.0} MB/s",
        (mib << 20) as f64 / write_secs / 1e6
    );

    let info = store.list().expect("list").pop().expect("one blob");
    let reader = store.reader(&info.digest).expect("reader");
    let mut buf = vec![0u8; 1 << 20];
    let started = Instant::now();
    let mut offset = 0u64;
    loop {
        let n = reader.read_at(offset, &mut buf).expect("read");
        if n == 0 {
            break;
        }
        offset += n as u64;
    }
    println!(
        "read back: {:.0} MB/s",
        offset as f64 / started.elapsed().as_secs_f64() / 1e6
    );

    let started = Instant::now();
    for i in 0..small {
        let mut writer = store
            .writer(WriterOptions {
                reference: format!("bench/small/{i}"),
                ..WriterOptions::default()
            })
            .expect("writer");
        writer
            .write(0, format!("small blob {i}").as_bytes())
            .expect("write");
        writer.commit(0, "", Labels::new()).expect("commit");
    }
    println!(
        "{small} small blobs: {:.0} commits/s",
        small as f64 / started.elapsed().as_secs_f64()
    );
    std::fs::remove_dir_all(root).expect("clean up");
}
