//! A layer blob as a plain reader: reads the content driver in large pieces, checks the bytes
//! against the descriptor's digest and size as they pass, and stops when the call is cancelled.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use rcontainerd_plugin_api::content::Reader;
use sha2::{Digest, Sha256};

/// Reads one blob from start to end; the end is an error when the bytes do not match.
pub(super) struct LayerReader<'a> {
    inner: Box<dyn Reader>,
    offset: u64,
    size: u64,
    expected: String,
    hash: Sha256,
    cancelled: &'a AtomicBool,
}

impl<'a> LayerReader<'a> {
    pub fn new(
        inner: Box<dyn Reader>,
        size: u64,
        expected: &str,
        cancelled: &'a AtomicBool,
    ) -> Self {
        LayerReader {
            inner,
            offset: 0,
            size,
            expected: expected.to_string(),
            hash: Sha256::new(),
            cancelled,
        }
    }

    fn check_end(&self) -> io::Result<()> {
        let actual = format!("sha256:{:x}", self.hash.clone().finalize());
        if self.expected.starts_with("sha256:") && actual != self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "layer {} has digest {actual}: its bytes do not match its descriptor",
                    self.expected
                ),
            ));
        }
        Ok(())
    }
}

impl Read for LayerReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the client cancelled the call",
            ));
        }
        if self.offset >= self.size || buf.is_empty() {
            if self.offset == self.size {
                self.check_end()?;
                self.offset += 1; // checked once
            }
            return Ok(0);
        }
        let want = buf.len().min((self.size - self.offset) as usize);
        let n = self
            .inner
            .read_at(self.offset, &mut buf[..want])
            .map_err(|e| io::Error::other(e.to_string()))?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "layer {} ends at {} of {} bytes",
                    self.expected, self.offset, self.size
                ),
            ));
        }
        self.hash.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
}
