//! Early writeback of an ingest's data.
//!
//! Left alone, the kernel keeps a large ingest's pages dirty until the commit's `fdatasync`, so
//! the disk sits idle while the stream arrives and then works alone while the client waits.
//! Asking for writeback of every few MiB as they are written lets the disk work during the
//! transfer; the commit's `fdatasync` then waits only for the tail. Nothing here is needed for
//! durability (the commit's sync is), so failures are ignored.

use std::{fs::File, os::fd::AsRawFd};

/// Bytes written before their writeback is started.
const CHUNK: u64 = 8 << 20;

/// Tracks how far writeback of one data file has been started.
#[derive(Debug, Default)]
pub struct Writeback {
    /// Writeback was started for every byte before this offset.
    started: u64,
}

impl Writeback {
    /// A file whose first `len` bytes need no early writeback (resumed ingests).
    pub fn from(len: u64) -> Self {
        Writeback { started: len }
    }

    /// The file now holds data up to `end`: start writing back whole chunks of what is new.
    pub fn written(&mut self, file: &File, end: u64) {
        if end < self.started + CHUNK {
            return;
        }
        start_writeback(file, self.started, end - self.started);
        self.started = end;
    }

    /// The file was cut to `len` bytes.
    pub fn truncated(&mut self, len: u64) {
        self.started = self.started.min(len);
    }
}

/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`: queue the range's dirty pages for writing without
/// waiting for them.
fn start_writeback(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for the life of `file`, which the call borrows; the
    // call reads no memory of ours.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writeback_starts_per_chunk_and_follows_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("data")).unwrap();
        let mut writeback = Writeback::default();
        writeback.written(&file, CHUNK - 1);
        assert_eq!(writeback.started, 0, "less than a chunk waits");
        writeback.written(&file, CHUNK + 5);
        assert_eq!(writeback.started, CHUNK + 5);
        writeback.truncated(0);
        assert_eq!(writeback.started, 0);
        let resumed = Writeback::from(3 * CHUNK);
        assert_eq!(resumed.started, 3 * CHUNK);
    }
}
