//! An ingest as a plain writer, for the layer a Diff writes.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::content::IngestWriter;

pub(super) struct IngestSink<'a> {
    pub writer: &'a mut IngestWriter,
    pub cancelled: &'a AtomicBool,
}

impl Write for IngestSink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.cancelled.load(Ordering::Relaxed) {
            // Not `Interrupted`: std's read and write loops retry that kind.
            return Err(io::Error::other("the client cancelled the call"));
        }
        self.writer
            .write(data)
            .map_err(|e| io::Error::other(e.to_string()))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
