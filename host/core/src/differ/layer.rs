//! A layer blob as a plain reader: reads the content driver in large pieces, fails when the blob
//! ends short of its recorded size, and stops when the call is cancelled. The bytes are not
//! hashed again: the content store checked them against their digest when they were committed,
//! and hashing here would cost the decompression thread (the slower side of an apply) about a
//! sixth of its time.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use rcontainerd_plugin_api::content::Reader;

/// Reads one blob from start to end.
pub(super) struct LayerReader<'a> {
    inner: Box<dyn Reader>,
    offset: u64,
    size: u64,
    expected: String,
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
            cancelled,
        }
    }
}

impl Read for LayerReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancelled.load(Ordering::Relaxed) {
            // Not `Interrupted`: std's read and write loops retry that kind.
            return Err(io::Error::other("the client cancelled the call"));
        }
        if self.offset >= self.size || buf.is_empty() {
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
        self.offset += n as u64;
        Ok(n)
    }
}
