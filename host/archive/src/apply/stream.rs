//! The consumer side of the pipeline: a `Read` over the chunks the producer sends, hashing every
//! byte as it arrives (unless the producer does) so the diff ID covers the whole decompressed
//! stream, tar or not.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, Sender};

use sha2::{Digest, Sha256};

use super::decompress::{Chunk, Msg};
use super::ApplyError;

pub(super) struct ChunkReader {
    rx: Receiver<Msg>,
    /// Empty buffers go back to the producer.
    pool: Sender<Box<[u8]>>,
    current: Option<Chunk>,
    pos: usize,
    /// `None` when the producer hashes.
    hasher: Option<Sha256>,
    /// The producer's digest, from its last message.
    producer_digest: Option<[u8; 32]>,
    total: u64,
    ended: bool,
    /// The producer's error, kept here while the tar reader sees only a stand-in.
    failed: Option<ApplyError>,
}

impl ChunkReader {
    pub(super) fn new(rx: Receiver<Msg>, pool: Sender<Box<[u8]>>, hash: bool) -> Self {
        ChunkReader {
            rx,
            pool,
            current: None,
            pos: 0,
            hasher: hash.then(Sha256::new),
            producer_digest: None,
            total: 0,
            ended: false,
            failed: None,
        }
    }

    /// Takes the producer's error, if it reported one.
    pub(super) fn take_failure(&mut self) -> Option<ApplyError> {
        self.failed.take()
    }

    /// Waits for the next chunk. `Ok(false)` at the end of the stream.
    fn next_chunk(&mut self) -> io::Result<bool> {
        if let Some(done) = self.current.take() {
            // The producer may be gone already; then the buffer is simply freed.
            let _ = self.pool.send(done.buf);
        }
        if self.ended {
            return Ok(false);
        }
        match self.rx.recv() {
            Ok(Msg::Data(chunk)) => {
                if let Some(hasher) = &mut self.hasher {
                    hasher.update(&chunk.buf[..chunk.len]);
                }
                self.total += chunk.len as u64;
                self.current = Some(chunk);
                self.pos = 0;
                Ok(true)
            }
            Ok(Msg::End(digest)) => {
                self.ended = true;
                self.producer_digest = digest;
                Ok(false)
            }
            Ok(Msg::Failed(e)) => {
                self.ended = true;
                let kind = match &e {
                    ApplyError::Read(e) | ApplyError::Decompress(e) => e.kind(),
                    _ => io::ErrorKind::Other,
                };
                self.failed = Some(e);
                Err(io::Error::new(kind, "the layer stream failed"))
            }
            // Only a panicking producer drops its sender without a last message.
            Err(_) => {
                self.ended = true;
                self.failed = Some(ApplyError::ThreadPanicked);
                Err(io::Error::other("the decompression thread stopped"))
            }
        }
    }

    /// Reads (and hashes) whatever follows the tar's end: containerd's diff ID covers every byte
    /// the decompressor yields, padding and trailing garbage included.
    pub(super) fn drain(&mut self) -> Result<(), ApplyError> {
        loop {
            match self.next_chunk() {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => return Err(self.failed.take().unwrap_or(ApplyError::Tar(e))),
            }
        }
    }

    /// `sha256:<hex>` of the whole stream, and its size. Only after [`ChunkReader::drain`].
    pub(super) fn digest(self) -> (String, u64) {
        let hash: [u8; 32] = match (self.hasher, self.producer_digest) {
            (Some(hasher), _) => hasher.finalize().into(),
            (None, Some(digest)) => digest,
            (None, None) => unreachable!("the producer hashes and sent its digest"),
        };
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for b in hash {
            out.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
            out.push(char::from_digit((b & 0xf) as u32, 16).unwrap_or('0'));
        }
        (out, self.total)
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(chunk) = &self.current {
                let rest = &chunk.buf[self.pos..chunk.len];
                if !rest.is_empty() {
                    let n = rest.len().min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    self.pos += n;
                    return Ok(n);
                }
            }
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
    }
}
