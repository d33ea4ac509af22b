//! The running sha256 of an ingest, whose state survives a restart.

use sha2::digest::generic_array::GenericArray;
use sha2::digest::typenum::U64;

use rcontainerd_metadata::DigestState;

/// sha256's initial hash value (FIPS 180-4, 5.3.3).
const INITIAL_STATE: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
const BLOCK: usize = 64;

/// The running sha256 of an ingest. Unlike `sha2::Sha256`, its state can
/// be saved and restored ([`DigestState`]), so an ingest resumed after a
/// restart still knows its digest. The block function is `sha2`'s (SHA-NI
/// when the CPU has it).
#[derive(Clone)]
pub struct RunningDigest {
    state: [u32; 8],
    pending: [u8; BLOCK],
    pending_len: usize,
    length: u64,
}

impl Default for RunningDigest {
    fn default() -> Self {
        RunningDigest {
            state: INITIAL_STATE,
            pending: [0; BLOCK],
            pending_len: 0,
            length: 0,
        }
    }
}

/// Runs the block function over `blocks` (a whole number of blocks) in one
/// call: per-call set-up of the SHA-NI path is too costly to pay per block.
fn compress(state: &mut [u32; 8], blocks: &[u8]) {
    debug_assert_eq!(blocks.len() % BLOCK, 0);
    // SAFETY: `GenericArray<u8, U64>` is `#[repr(transparent)]` over
    // `[u8; 64]` (size 64, alignment 1), so `blocks.len() / 64` of them
    // cover exactly the bytes of `blocks`, which the borrow keeps alive and
    // unaliased by writers for the call.
    let blocks = unsafe {
        std::slice::from_raw_parts(
            blocks.as_ptr().cast::<GenericArray<u8, U64>>(),
            blocks.len() / BLOCK,
        )
    };
    sha2::compress256(state, blocks);
}

impl RunningDigest {
    pub fn update(&mut self, mut data: &[u8]) {
        self.length += data.len() as u64;
        if self.pending_len > 0 {
            let take = (BLOCK - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < BLOCK {
                return;
            }
            let block = self.pending;
            compress(&mut self.state, &block);
            self.pending_len = 0;
        }
        let whole = data.len() - data.len() % BLOCK;
        let (blocks, rest) = data.split_at(whole);
        if !blocks.is_empty() {
            compress(&mut self.state, blocks);
        }
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// Bytes hashed so far.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The digest of everything so far (`sha256:<hex>`).
    pub fn current(&self) -> String {
        let mut state = self.state;
        let mut tail = [0u8; 2 * BLOCK];
        tail[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
        tail[self.pending_len] = 0x80;
        // The bit length goes in the last 8 bytes of one or two blocks.
        let used = if self.pending_len < BLOCK - 8 {
            BLOCK
        } else {
            2 * BLOCK
        };
        tail[used - 8..used].copy_from_slice(&(self.length * 8).to_be_bytes());
        compress(&mut state, &tail[..used]);
        let mut text = String::with_capacity(7 + 64);
        text.push_str("sha256:");
        for word in state {
            text.push_str(&format!("{word:08x}"));
        }
        text
    }

    /// The state to save.
    pub fn save(&self) -> DigestState {
        DigestState {
            state: self.state,
            pending: self.pending[..self.pending_len].to_vec(),
            length: self.length,
        }
    }

    /// Continues from a saved state; `None` if it is inconsistent.
    pub fn restore(saved: &DigestState) -> Option<RunningDigest> {
        let pending_len = saved.pending.len();
        if pending_len >= BLOCK || saved.length % BLOCK as u64 != pending_len as u64 {
            return None;
        }
        let mut pending = [0; BLOCK];
        pending[..pending_len].copy_from_slice(&saved.pending);
        Some(RunningDigest {
            state: saved.state,
            pending,
            pending_len,
            length: saved.length,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn running_digest_matches_sha2_at_every_block_edge() {
        use sha2::{Digest as _, Sha256};
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
        for len in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 5000] {
            let expected = format!("sha256:{:x}", Sha256::digest(&data[..len]));
            for split in [0, 1, 3, 64, len / 2, len] {
                let split = split.min(len);
                let mut running = RunningDigest::default();
                running.update(&data[..split]);
                // Save and restore in the middle: nothing is lost.
                let mut running = RunningDigest::restore(&running.save()).unwrap();
                running.update(&data[split..len]);
                assert_eq!(running.current(), expected, "len {len} split {split}");
                assert_eq!(running.length(), len as u64);
            }
        }
    }

    #[test]
    fn inconsistent_saved_states_are_refused() {
        let mut saved = RunningDigest::default().save();
        saved.length = 3;
        assert!(RunningDigest::restore(&saved).is_none());
        saved.pending = vec![0; 64];
        saved.length = 64;
        assert!(RunningDigest::restore(&saved).is_none());
    }

    #[test]
    fn running_digest_matches_one_shot_hashing() {
        let mut running = RunningDigest::default();
        assert_eq!(running.current(), EMPTY);
        running.update(b"hello ");
        // Reading the current value does not disturb the running state.
        let _ = running.current();
        running.update(b"world");
        assert_eq!(
            running.current(),
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }
}
