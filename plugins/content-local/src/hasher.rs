//! The running sha256 of an ingest. A large write is stored on a second thread while the
//! caller hashes the same bytes, straight from the caller's buffer (no copy), so a write takes
//! about as long as the slower of the two instead of both in turn (SHA-NI hashes about as fast
//! as a disk writes). A daemon of ABI generation 2 asks for the digest after every write, so a
//! write's hash must be finished when the write returns.

use std::thread;

use rcontainerd_plugin_api::{PluginError, Result};
use sha2::{Digest as _, Sha256};

/// Writes at least this large are stored beside the hashing; smaller ones in turn (a thread
/// costs more than hashing them).
const PARALLEL_THRESHOLD: usize = 256 * 1024;

/// An incremental sha256.
#[derive(Default)]
pub struct RunningHash {
    hasher: Sha256,
}

impl RunningHash {
    /// Hashes `data` while `store` runs, and returns what `store` returned. A storing thread that
    /// cannot start or panics is an error; the hash then no longer matches the data and must be
    /// rebuilt.
    pub fn update_while<T: Send>(
        &mut self,
        data: &[u8],
        store: impl FnOnce() -> T + Send,
    ) -> Result<T> {
        if data.len() < PARALLEL_THRESHOLD {
            self.hasher.update(data);
            return Ok(store());
        }
        // The caller hashes, the longer of the two, so the new thread's start-up is hidden
        // behind it and the join seldom has to sleep (each wake-up of a parked thread costs
        // tens of microseconds on a virtual machine, per write).
        let hasher = &mut self.hasher;
        thread::scope(|scope| {
            let storing = thread::Builder::new()
                .name("content-store".into())
                .spawn_scoped(scope, store);
            match storing {
                Ok(handle) => {
                    hasher.update(data);
                    handle.join().map_err(|_| {
                        PluginError::internal("content storing thread panicked".to_string())
                    })
                }
                // No thread: the store was not run; neither is the hash, so it stays whole.
                Err(err) => Err(PluginError::internal(format!(
                    "content storing thread could not start: {err}"
                ))),
            }
        })
    }

    /// Hashes `data` on this thread.
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    /// Starts over from no data.
    pub fn reset(&mut self) {
        self.hasher = Sha256::new();
    }

    /// The digest of everything so far; hashing may continue afterwards.
    pub fn digest(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[test]
    fn small_and_large_writes_hash_like_one_pass() {
        let data: Vec<u8> = (0..3 * PARALLEL_THRESHOLD + 17)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut hash = RunningHash::default();
        let mut stored = Vec::new();
        // Inline, then beside the store, then inline again.
        for part in [
            &data[..10],
            &data[10..10 + PARALLEL_THRESHOLD],
            &data[10 + PARALLEL_THRESHOLD..10 + PARALLEL_THRESHOLD + 5],
            &data[10 + PARALLEL_THRESHOLD + 5..],
        ] {
            let n = hash
                .update_while(part, || {
                    stored.extend_from_slice(part);
                    part.len()
                })
                .unwrap();
            assert_eq!(n, part.len());
            assert_eq!(hash.digest(), reference(&stored));
        }
        assert_eq!(stored, data);
    }

    #[test]
    fn reset_starts_over() {
        let big = vec![5u8; PARALLEL_THRESHOLD];
        let mut hash = RunningHash::default();
        hash.update_while(&big, || ()).unwrap();
        hash.reset();
        hash.update(b"xy");
        assert_eq!(hash.digest(), reference(b"xy"));
    }
}
