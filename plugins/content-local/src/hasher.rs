//! The running sha256 of an ingest. Small ingests hash inline; once a write is large, hashing
//! moves to a thread of its own fed through a bounded channel, so the bytes of one write are
//! hashed while the caller stores them and receives the next (SHA-NI hashes about as fast as a
//! disk writes, so running both in turn would halve throughput).

use std::{
    sync::mpsc::{self, Receiver, SyncSender},
    thread::{self, JoinHandle},
};

use rcontainerd_plugin_api::{PluginError, Result};
use sha2::{Digest as _, Sha256};

/// Writes at least this large start the hashing thread.
const BACKGROUND_THRESHOLD: usize = 256 * 1024;
/// Chunks queued for the hashing thread before a write waits for it.
const QUEUE_DEPTH: usize = 4;

enum Job {
    Data(Vec<u8>),
    Reset,
    Digest(SyncSender<[u8; 32]>),
}

struct Background {
    jobs: SyncSender<Job>,
    /// Buffers the thread has finished with, for reuse.
    spare: Receiver<Vec<u8>>,
    thread: JoinHandle<()>,
}

enum State {
    Inline(Sha256),
    Background(Background),
}

/// An incremental sha256 that may hash on another thread.
pub struct RunningHash {
    state: State,
}

impl Default for RunningHash {
    fn default() -> Self {
        RunningHash {
            state: State::Inline(Sha256::new()),
        }
    }
}

impl RunningHash {
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        if let State::Inline(hasher) = &mut self.state {
            if data.len() < BACKGROUND_THRESHOLD {
                hasher.update(data);
                return Ok(());
            }
            let hasher = hasher.clone();
            self.state = State::Background(Background::start(hasher)?);
        }
        let State::Background(background) = &mut self.state else {
            unreachable!("inline hashing returned above");
        };
        let mut buffer = background.spare.try_recv().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(data);
        background.send(Job::Data(buffer))
    }

    /// Starts over from no data.
    pub fn reset(&mut self) -> Result<()> {
        match &mut self.state {
            State::Inline(hasher) => {
                *hasher = Sha256::new();
                Ok(())
            }
            State::Background(background) => background.send(Job::Reset),
        }
    }

    /// The digest of everything so far; hashing may continue afterwards.
    pub fn digest(&mut self) -> Result<[u8; 32]> {
        match &mut self.state {
            State::Inline(hasher) => Ok(hasher.clone().finalize().into()),
            State::Background(background) => {
                let (reply, answer) = mpsc::sync_channel(1);
                background.send(Job::Digest(reply))?;
                answer.recv().map_err(|_| stopped())
            }
        }
    }
}

impl Background {
    fn start(mut hasher: Sha256) -> Result<Self> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(QUEUE_DEPTH);
        let (give_back, spare) = mpsc::sync_channel::<Vec<u8>>(QUEUE_DEPTH + 2);
        let thread = thread::Builder::new()
            .name("content-hash".into())
            .spawn(move || {
                for job in queue {
                    match job {
                        Job::Data(buffer) => {
                            hasher.update(&buffer);
                            // A full spare queue just means the buffer is freed instead.
                            let _ = give_back.try_send(buffer);
                        }
                        Job::Reset => hasher = Sha256::new(),
                        Job::Digest(reply) => {
                            let _ = reply.send(hasher.clone().finalize().into());
                        }
                    }
                }
            })
            .map_err(|err| PluginError::internal(format!("start content hashing thread: {err}")))?;
        Ok(Background {
            jobs,
            spare,
            thread,
        })
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs.send(job).map_err(|_| stopped())
    }
}

impl Drop for RunningHash {
    fn drop(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Inline(Sha256::new()));
        if let State::Background(Background { jobs, thread, .. }) = state {
            // Closing the queue ends the thread once it has drained what is queued.
            drop(jobs);
            let _ = thread.join();
        }
    }
}

fn stopped() -> PluginError {
    PluginError::internal("content hashing thread stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[test]
    fn small_and_large_writes_hash_like_one_pass() {
        let data: Vec<u8> = (0..3 * BACKGROUND_THRESHOLD + 17)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut hash = RunningHash::default();
        // Inline first, then a large write moves hashing to the thread, then small ones follow it.
        hash.update(&data[..10]).unwrap();
        hash.update(&data[10..10 + BACKGROUND_THRESHOLD]).unwrap();
        assert!(matches!(hash.state, State::Background(_)));
        assert_eq!(
            hash.digest().unwrap(),
            reference(&data[..10 + BACKGROUND_THRESHOLD])
        );
        for chunk in data[10 + BACKGROUND_THRESHOLD..].chunks(100_000) {
            hash.update(chunk).unwrap();
        }
        assert_eq!(hash.digest().unwrap(), reference(&data));
    }

    #[test]
    fn reset_starts_over_in_both_modes() {
        let big = vec![5u8; BACKGROUND_THRESHOLD];
        let mut inline = RunningHash::default();
        inline.update(b"abc").unwrap();
        inline.reset().unwrap();
        inline.update(b"xy").unwrap();
        assert_eq!(inline.digest().unwrap(), reference(b"xy"));

        let mut background = RunningHash::default();
        background.update(&big).unwrap();
        background.reset().unwrap();
        background.update(b"xy").unwrap();
        assert_eq!(background.digest().unwrap(), reference(b"xy"));
    }
}
