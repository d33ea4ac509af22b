//! The producer side of the pipeline: reads the (compressed) layer, decompresses it and sends
//! the plain tar bytes as large chunks over a bounded channel to the thread writing the files.
//!
//! Buffers come back from the consumer through a second channel, so a whole layer is unpacked
//! with a handful of 1 MiB allocations whatever its size.

use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

use sha2::{Digest, Sha256};

use super::gunzip::Gunzip;
use super::{ApplyError, Compression};

/// Size of one chunk of decompressed bytes, and of the read buffer on the compressed input.
pub(super) const CHUNK_SIZE: usize = 1 << 20;
/// Chunks queued between the threads; with the one being filled and the one being read, at
/// most `CHANNEL_DEPTH + 2` chunks exist.
pub(super) const CHANNEL_DEPTH: usize = 4;

/// Decompressed bytes: `buf[..len]`.
pub(super) struct Chunk {
    pub(super) buf: Box<[u8]>,
    pub(super) len: usize,
}

/// What the producer sends.
pub(super) enum Msg {
    Data(Chunk),
    /// The whole layer was read and decompressed; nothing follows. Carries the sha256 of the
    /// decompressed bytes when the producer hashed them (see [`hashes_in_producer`]).
    End(Option<[u8; 32]>),
    /// Reading or decompressing failed; nothing follows.
    Failed(ApplyError),
}

/// Whether the producer hashes the decompressed bytes, rather than the consumer. The
/// slower side should not hash: inflating gzip is slower than writing the files, so then the
/// consumer hashes; reading a plain tar or decoding zstd is faster, so then the producer does.
pub(super) fn hashes_in_producer(compression: Compression) -> bool {
    compression != Compression::Gzip
}

/// Counts the compressed bytes and keeps the input's own error, so that a failing reader is
/// reported as such and not as the corrupt stream the decompressor then thinks it sees.
struct CountingReader<R> {
    inner: R,
    count: u64,
    error: Option<io::Error>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.count += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                self.error = Some(e);
                Err(io::Error::new(kind, "reading the layer failed"))
            }
        }
    }
}

/// The decoder for `compression` over the counted input.
enum Decoder<R: Read> {
    None(CountingReader<R>),
    // Go's gzip reader (containerd's) reads concatenated members as one stream; so does this.
    Gzip(Gunzip<BufReader<CountingReader<R>>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<CountingReader<R>>>),
}

impl<R: Read> Decoder<R> {
    fn new(input: R, compression: Compression) -> io::Result<Self> {
        let counting = CountingReader {
            inner: input,
            count: 0,
            error: None,
        };
        Ok(match compression {
            Compression::None => Decoder::None(counting),
            Compression::Gzip => {
                Decoder::Gzip(Gunzip::new(BufReader::with_capacity(CHUNK_SIZE, counting))?)
            }
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(
                BufReader::with_capacity(CHUNK_SIZE, counting),
            )?),
        })
    }

    fn counting(&mut self) -> &mut CountingReader<R> {
        match self {
            Decoder::None(c) => c,
            Decoder::Gzip(d) => d.get_mut().get_mut(),
            Decoder::Zstd(d) => d.get_mut().get_mut(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(c) => c.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }

    /// The error to report for a failed read: the input's own if it failed, else the
    /// decompressor's.
    fn failure(&mut self, e: io::Error) -> ApplyError {
        match self.counting().error.take() {
            Some(input) => ApplyError::Read(input),
            None => ApplyError::Decompress(e),
        }
    }
}

/// Body of the producer thread. Returns the number of compressed bytes read. Stops early,
/// without error, once `stop` is set or the consumer has gone away (it reports its own error).
pub(super) fn produce<R: Read>(
    input: R,
    compression: Compression,
    tx: SyncSender<Msg>,
    pool: Receiver<Box<[u8]>>,
    stop: &AtomicBool,
) -> u64 {
    let mut hasher = hashes_in_producer(compression).then(Sha256::new);
    let mut decoder = match Decoder::new(input, compression) {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.send(Msg::Failed(ApplyError::Decompress(e)));
            return 0;
        }
    };
    loop {
        let buf = pool
            .try_recv()
            .unwrap_or_else(|_| vec![0; CHUNK_SIZE].into_boxed_slice());
        let mut chunk = Chunk { buf, len: 0 };
        let mut eof = false;
        // Fill the chunk: decoders hand out small pieces, the consumer wants big ones.
        while chunk.len < chunk.buf.len() {
            if stop.load(Ordering::Relaxed) {
                return decoder.counting().count;
            }
            match decoder.read(&mut chunk.buf[chunk.len..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => chunk.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let failure = decoder.failure(e);
                    // The bytes before the failure still count for nothing: the apply fails.
                    let _ = tx.send(Msg::Failed(failure));
                    return decoder.counting().count;
                }
            }
        }
        if let Some(hasher) = &mut hasher {
            hasher.update(&chunk.buf[..chunk.len]);
        }
        if chunk.len > 0 && tx.send(Msg::Data(chunk)).is_err() {
            return decoder.counting().count;
        }
        if eof {
            let digest = hasher.take().map(|h| h.finalize().into());
            let _ = tx.send(Msg::End(digest));
            return decoder.counting().count;
        }
    }
}
