//! Random-access reads of a committed blob with `pread`, so one reader serves concurrent
//! readers at different offsets.

use std::{fs::File, io::ErrorKind as IoKind, os::unix::fs::FileExt};

use rcontainerd_plugin_api::{content::Reader, PluginError, Result};

use crate::digest::BlobDigest;

pub struct BlobReader {
    file: File,
    size: i64,
    digest: BlobDigest,
}

impl BlobReader {
    pub fn new(file: File, digest: BlobDigest) -> Result<Self> {
        let size = file
            .metadata()
            .map_err(|err| PluginError::io(format!("stat content {digest}"), err))?
            .len() as i64;
        Ok(BlobReader { file, size, digest })
    }
}

impl Reader for BlobReader {
    fn size(&self) -> Result<i64> {
        Ok(self.size)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        // Fill `buf` unless the blob ends first: a short read means "end" to callers.
        let mut filled = 0;
        while filled < buf.len() {
            match self
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == IoKind::Interrupted => {}
                Err(err) => {
                    return Err(PluginError::io(
                        format!("read content {} at {}", self.digest, offset + filled as u64),
                        err,
                    ))
                }
            }
        }
        Ok(filled)
    }
}
