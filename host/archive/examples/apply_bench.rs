//! Throughput of `apply` on a generated gzip layer of about 200 MB (uncompressed), into a
//! temporary directory:
//!
//! ```sh
//! cargo run --release -p rcontainerd-archive --example apply_bench [-- <uncompressed MB> [dir]]
//! ```
//!
//! The layer mixes many small files (like a distribution's /usr) with a few large ones; the
//! data compresses about 3:1. Prints the time and MB/s of the uncompressed and compressed
//! streams (`APPLY_BENCH_COMPRESSION=none|zstd` for the other formats). Run as root (it keeps ownership). `APPLY_BENCH_SAVE=<file>` also saves the layer,
//! to time other tools on it.

use std::io::Write;
use std::time::Instant;

use rcontainerd_archive::apply::{apply, Compression, Target};

fn main() {
    let mut args = std::env::args().skip(1);
    let megabytes: usize = args.next().map_or(200, |a| a.parse().expect("size in MB"));
    let base = args.next().map(std::path::PathBuf::from);

    let started = Instant::now();
    let tar = generate(megabytes << 20);
    let compression = match std::env::var("APPLY_BENCH_COMPRESSION").as_deref() {
        Ok("none") => Compression::None,
        Ok("zstd") => Compression::Zstd,
        _ => Compression::Gzip,
    };
    let gz = match compression {
        Compression::None => tar.clone(),
        Compression::Zstd => zstd::stream::encode_all(&tar[..], 3).unwrap(),
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            gz.write_all(&tar).unwrap();
            gz.finish().unwrap()
        }
    };
    eprintln!(
        "generated {:.1} MB tar, {:.1} MB {compression:?} in {:.1?}",
        mb(tar.len()),
        mb(gz.len()),
        started.elapsed()
    );
    // To compare with other tools on the very same layer.
    if let Some(path) = std::env::var_os("APPLY_BENCH_SAVE") {
        std::fs::write(path, &gz).unwrap();
    }

    for round in 0..3 {
        let dir = match &base {
            Some(b) => tempfile::tempdir_in(b).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let applied = apply(&gz[..], compression, Target::Plain(dir.path())).unwrap();
        let secs = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_before;
        println!(
            "round {round}: {} entries, {:.1} MB uncompressed in {secs:.2} s ({cpu:.2} s of CPU, both threads): {:.0} MB/s uncompressed, {:.0} MB/s compressed",
            applied.entries,
            mb(applied.uncompressed_size as usize),
            mb(applied.uncompressed_size as usize) / secs,
            mb(applied.compressed_size as usize) / secs,
        );
    }
}

/// User and system CPU time of this process so far (all threads), from /proc/self/stat: on a
/// busy machine, a better measure of the work done than the elapsed time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces), closed by the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

/// A tar of about `size` bytes: 85% of the bytes in files of 1-64 KiB, the rest in 8 MiB ones.
fn generate(size: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::with_capacity(size + (size >> 4)));
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // A vocabulary of 4096 random "words" of 2-12 bytes, picked with a skewed distribution:
    // the stream then compresses about 3:1, like binaries and text in real layers.
    let vocabulary: Vec<Vec<u8>> = (0..4096)
        .map(|_| {
            let n = 2 + (next() % 11) as usize;
            (0..n).map(|_| next() as u8).collect()
        })
        .collect();
    let mut written = 0;
    let mut index = 0;
    let mut data = Vec::new();
    while written < size {
        let len = if written < size * 85 / 100 {
            1024 + (next() % (63 * 1024)) as usize
        } else {
            8 << 20
        };
        data.clear();
        while data.len() < len {
            let r = next();
            // Squaring skews the picks towards the start of the vocabulary.
            let pick = ((r & 0xfff) * ((r >> 12) & 0xfff)) >> 12;
            data.extend_from_slice(&vocabulary[pick as usize]);
        }
        data.truncate(len);
        if index % 100 == 0 {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            builder
                .append_data(&mut h, format!("usr/d{}/", index / 100), &[][..])
                .unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        builder
            .append_data(&mut h, format!("usr/d{}/f{index}", index / 100), &data[..])
            .unwrap();
        written += data.len();
        index += 1;
    }
    builder.into_inner().unwrap()
}
