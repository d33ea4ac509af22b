//! The two-thread pipeline: compressions, the diff ID, sizes, errors on either side.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::*;

/// A layer of a few MiB (several chunks) with files of assorted sizes.
fn big_layer() -> Vec<u8> {
    let mut layer = Layer::new();
    let mut seed = 0x9e37_79b9_u32;
    for i in 0..40 {
        let len = (i * 97_331) % 400_000;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                (seed % 7) as u8 + b'a'
            })
            .collect();
        layer.file(&format!("dir{}/file{i}", i % 5), &data);
    }
    layer.bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

#[test]
fn every_compression_gives_the_plain_tars_digest() {
    let tar = big_layer();
    assert!(tar.len() > 3 * crate::apply::decompress::CHUNK_SIZE);
    let want = sha256_hex(&tar);
    let mut trees = Vec::new();
    for (compression, bytes) in [
        (Compression::None, tar.clone()),
        (Compression::Gzip, gzip(&tar)),
        (Compression::Zstd, zstd(&tar)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let applied = apply(&bytes[..], compression, Target::Plain(dir.path())).unwrap();
        assert_eq!(applied.diff_id, want, "{compression:?}");
        assert_eq!(applied.uncompressed_size, tar.len() as u64);
        assert_eq!(applied.compressed_size, bytes.len() as u64);
        assert_eq!(applied.entries, 40);
        let files: Vec<(String, Vec<u8>)> = tree(dir.path())
            .into_iter()
            .filter(|p| p.contains("/file"))
            .map(|p| {
                let data = fs::read(dir.path().join(&p)).unwrap();
                (p, data)
            })
            .collect();
        trees.push(files);
    }
    assert_eq!(trees[0].len(), 40);
    assert!(trees.iter().all(|t| *t == trees[0]));
}

#[test]
fn concatenated_gzip_members_are_one_stream() {
    let tar = Layer::new().file("a", b"a").bytes();
    let (head, tail) = tar.split_at(700);
    let mut two = gzip(head);
    two.extend(gzip(tail));
    let dir = tempfile::tempdir().unwrap();
    let applied = apply(&two[..], Compression::Gzip, Target::Plain(dir.path())).unwrap();
    assert_eq!(applied.diff_id, sha256_hex(&tar));
}

#[test]
fn bytes_after_the_tar_end_are_hashed_too() {
    let mut stream = Layer::new().file("a", b"x").bytes();
    stream.extend(std::iter::repeat_n(0u8, 10_000));
    stream.extend(
        b"trailing garbage, not a tar header"
            .iter()
            .cycle()
            .take(3 << 20),
    );
    let dir = tempfile::tempdir().unwrap();
    for (c, bytes) in [
        (Compression::None, stream.clone()),
        (Compression::Gzip, gzip(&stream)),
    ] {
        let applied = apply(&bytes[..], c, Target::Plain(dir.path())).unwrap();
        assert_eq!(applied.diff_id, sha256_hex(&stream));
        assert_eq!(applied.uncompressed_size, stream.len() as u64);
        assert_eq!(applied.entries, 1);
    }
}

/// Runs `apply` on another thread and fails the test if it does not return in time.
fn apply_with_deadline(
    layer: impl Read + Send + 'static,
    compression: Compression,
) -> Result<Applied, ApplyError> {
    let (tx, rx) = mpsc::channel();
    let dir = tempfile::tempdir().unwrap();
    std::thread::spawn(move || {
        let _ = tx.send(apply(layer, compression, Target::Plain(dir.path())));
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("apply did not return")
}

#[test]
fn corrupt_gzip_is_a_decompression_error() {
    let mut gz = gzip(&big_layer());
    let mid = gz.len() / 2;
    for b in &mut gz[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let err = apply_with_deadline(io::Cursor::new(gz), Compression::Gzip).unwrap_err();
    assert!(matches!(err, ApplyError::Decompress(_)), "{err}");
    let err = apply_with_deadline(
        io::Cursor::new(b"not gzip at all".to_vec()),
        Compression::Gzip,
    )
    .unwrap_err();
    assert!(matches!(err, ApplyError::Decompress(_)), "{err}");
    let err =
        apply_with_deadline(io::Cursor::new(b"not zstd".to_vec()), Compression::Zstd).unwrap_err();
    assert!(matches!(err, ApplyError::Decompress(_)), "{err}");
    // Truncated: the gzip trailer (CRC, size) is missing.
    let gz = gzip(&big_layer());
    let err = apply_with_deadline(
        io::Cursor::new(gz[..gz.len() - 6].to_vec()),
        Compression::Gzip,
    )
    .unwrap_err();
    assert!(matches!(err, ApplyError::Decompress(_)), "{err}");
}

/// Fails after handing out `ok` bytes of a layer.
struct FailingReader {
    data: io::Cursor<Vec<u8>>,
    ok: u64,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.position() >= self.ok {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the registry hung up",
            ));
        }
        let left = (self.ok - self.data.position()) as usize;
        let n = buf.len().min(left);
        self.data.read(&mut buf[..n])
    }
}

#[test]
fn a_failing_reader_is_reported_as_such() {
    for (c, bytes) in [
        (Compression::None, big_layer()),
        (Compression::Gzip, gzip(&big_layer())),
    ] {
        let reader = FailingReader {
            data: io::Cursor::new(bytes),
            ok: 100_000,
        };
        let err = apply_with_deadline(reader, c).unwrap_err();
        match err {
            ApplyError::Read(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
            other => panic!("{c:?}: {other}"),
        }
    }
}

/// An endless stream of garbage, which records when it is dropped (its thread is done).
struct Endless(Arc<AtomicBool>);

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        buf.fill(0xff);
        Ok(buf.len())
    }
}

impl Drop for Endless {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_tar_error_stops_the_producer() {
    let dropped = Arc::new(AtomicBool::new(false));
    let err = apply_with_deadline(Endless(dropped.clone()), Compression::None).unwrap_err();
    assert!(matches!(err, ApplyError::Tar(_)), "{err}");
    // apply joined the producer, which owned the reader.
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn a_write_error_stops_the_producer() {
    let dropped = Arc::new(AtomicBool::new(false));
    struct Chain(io::Cursor<Vec<u8>>, Endless);
    impl Read for Chain {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => self.1.read(buf),
                n => Ok(n),
            }
        }
    }
    // A hard link to nothing fails on the writing side while the stream goes on forever.
    let mut tar = Layer::new().hard_link("l", "missing").bytes();
    tar.truncate(1024);
    let err = apply_with_deadline(
        Chain(io::Cursor::new(tar), Endless(dropped.clone())),
        Compression::None,
    )
    .unwrap_err();
    assert!(matches!(err, ApplyError::Entry { .. }), "{err}");
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn empty_streams() {
    let dir = tempfile::tempdir().unwrap();
    let applied = apply(&[][..], Compression::None, Target::Plain(dir.path())).unwrap();
    assert_eq!(applied.diff_id, sha256_hex(b""));
    assert_eq!((applied.entries, applied.uncompressed_size), (0, 0));
    // As with Go's gzip reader, an empty compressed stream is no stream at all.
    for c in [Compression::Gzip, Compression::Zstd] {
        let err = apply(&[][..], c, Target::Plain(dir.path())).unwrap_err();
        assert!(matches!(err, ApplyError::Decompress(_)), "{c:?}: {err}");
    }
}
