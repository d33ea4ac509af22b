//! A writer that hashes and counts what passes through it, so digests come out of the one
//! pass that writes the layer.

use std::fmt::Write as _;
use std::io::{self, Write};

use sha2::{Digest, Sha256};

pub(super) struct Digesting<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W> Digesting<W> {
    pub(super) fn new(inner: W) -> Self {
        Digesting {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// `sha256:<hex>` and the byte count of everything written, and the inner writer.
    pub(super) fn finish(self) -> (String, u64, W) {
        let mut digest = String::with_capacity(7 + 64);
        digest.push_str("sha256:");
        for byte in self.hasher.finalize() {
            // Writing to a String cannot fail.
            let _ = write!(digest, "{byte:02x}");
        }
        (digest, self.bytes, self.inner)
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // Only what the inner writer took: a short write is retried with the rest.
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
