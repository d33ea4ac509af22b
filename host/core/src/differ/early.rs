//! Early unpack: a large layer is extracted while its blob is still being written, so that the
//! Diff.Apply that follows (`ctr images import`, `ctr images pull` with containerd's ctr, which
//! ingest every blob first and unpack after) only has to move the finished tree into the
//! snapshot.
//!
//! - **Which ingests.** Refs of the shapes containerd's clients give layers (`tar-<name>` for
//!   an import, `layer-<digest>` for a pull), of at least [`MIN_LAYER_BYTES`] (or unknown size),
//!   whose first bytes are gzip, zstd or tar. At most [`MAX_STAGED`] at once, being staged or
//!   staged and not yet taken by an apply; beyond that an ingest is just written.
//! - **How.** The content store's tap (see `content::tap`) hands every write of an unbroken run
//!   from offset 0 to a thread that applies the stream (overlay layout, no lowers) into its own
//!   directory below the diff service's root. A full queue holds the writer back: the work
//!   would be done at apply time anyway. A truncate, a failed write or a writer closed before
//!   its commit abandons the staging; a commit names it by the digest the store verified.
//! - **Use.** An apply of that digest in the namespace that wrote it, into an empty target on
//!   the same file system, waits for the staging to finish and moves it in when its footprint
//!   fits (see `rcontainerd_archive::apply::adopt`); the answer is the staging's diff ID.
//!   Anything else (a target that is not empty, a failed staging, a compression that differs
//!   from the media type's) drops the staging and applies as usual.
//! - **Expiry.** A staging nobody claims within [`KEEP_FOR`] of its end is deleted (so is one a
//!   second ingest of the same digest produced); the directory is emptied when the daemon
//!   starts.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rcontainerd_archive::apply::{self, Applied, Compression, Target};

use crate::content::tap::{IngestTap, TapSink};

/// Smaller layers apply quickly anyway.
pub const MIN_LAYER_BYTES: i64 = 8 << 20;
/// Stagings that may exist at once (each holds a thread and a layer's worth of disk).
pub const MAX_STAGED: usize = 16;
/// How long a finished staging waits for its apply.
pub const KEEP_FOR: Duration = Duration::from_secs(120);
/// Writes queued for the staging thread before the writer waits.
const QUEUE_DEPTH: usize = 8;
/// The ingest refs containerd's clients give layers.
const LAYER_REF_PREFIXES: [&str; 2] = ["tar-", "layer-"];

/// A staging is only ever used in the namespace that wrote it: another namespace does not learn
/// from an apply's speed that a blob was written elsewhere.
fn key(namespace: &str, digest: &str) -> String {
    format!("{namespace}/{digest}")
}

/// The stagings of one daemon.
pub struct EarlyUnpack {
    dir: PathBuf,
    /// Committed stagings by namespace and blob digest (see [`key`]).
    staged: Mutex<HashMap<String, Arc<Job>>>,
    /// Stagings alive (extracting, or waiting for their apply).
    alive: AtomicUsize,
    next: AtomicU64,
    me: Weak<EarlyUnpack>,
}

/// One staging.
struct Job {
    dir: PathBuf,
    compression: Compression,
    state: Mutex<State>,
    changed: Condvar,
    /// Raised when the ingest broke off: the extraction stops at its next member.
    abandoned: AtomicBool,
}

enum State {
    Extracting,
    /// Extracted (or failed to), not claimed yet.
    Done(Result<Applied, String>),
    /// An apply took it (and its directory).
    Claimed,
    /// Deleted unclaimed.
    Expired,
}

/// A finished staging an apply has taken: its directory is removed when dropped.
pub struct Staged {
    pub dir: PathBuf,
    pub applied: Applied,
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Once moved in, the staging is an empty directory: no thread for that.
        if std::fs::remove_dir(&self.dir).is_err() {
            remove_in_background(self.dir.clone());
        }
    }
}

impl EarlyUnpack {
    /// Stagings below `dir`; whatever an earlier run left there is removed.
    pub fn new(dir: &Path) -> io::Result<Arc<EarlyUnpack>> {
        Self::clear(dir)?;
        // 0700: a staged layer's setuid files must not be reachable by other users meanwhile.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(Arc::new_cyclic(|me| EarlyUnpack {
            dir: dir.to_owned(),
            staged: Mutex::new(HashMap::new()),
            alive: AtomicUsize::new(0),
            next: AtomicU64::new(0),
            me: me.clone(),
        }))
    }

    /// Where the stagings are (an adopt needs its target on the same file system).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes whatever an earlier run left in `dir` (also when early unpack is now off).
    pub fn clear(dir: &Path) -> io::Result<()> {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Drops the staging of `digest` in `namespace`, if any (an apply that cannot use it).
    pub fn discard(&self, namespace: &str, digest: &str) {
        let Some(job) = self.staged().remove(&key(namespace, digest)) else {
            return;
        };
        // Its thread deletes it (at once when finished, else when the extraction stops).
        job.abandoned.store(true, Ordering::Relaxed);
        job.changed.notify_all();
    }

    fn staged(&self) -> MutexGuard<'_, HashMap<String, Arc<Job>>> {
        // The map stays consistent whatever panicked while it was held.
        self.staged.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The staging of blob `digest` (`size` bytes) for an apply of `compression`, once it is
    /// finished; `None` when there is none that fits. Gives up waiting when `cancelled` rises.
    pub fn claim(
        &self,
        namespace: &str,
        digest: &str,
        size: u64,
        compression: Compression,
        cancelled: &AtomicBool,
    ) -> Option<Staged> {
        let job = self.staged().remove(&key(namespace, digest))?;
        let waiting = Instant::now();
        let mut state = job.lock();
        let result = loop {
            match &*state {
                State::Extracting if cancelled.load(Ordering::Relaxed) => {
                    // Left for its thread to finish and delete.
                    job.abandoned.store(true, Ordering::Relaxed);
                    return None;
                }
                State::Extracting => {
                    state = job
                        .changed
                        .wait_timeout(state, Duration::from_millis(50))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                State::Done(_) => {
                    let State::Done(result) = std::mem::replace(&mut *state, State::Claimed) else {
                        unreachable!("matched just above")
                    };
                    break result;
                }
                State::Claimed | State::Expired => return None,
            }
        };
        drop(state);
        job.changed.notify_all();
        tracing::debug!(layer = %digest, waited = ?waiting.elapsed(), "early unpack: claimed");
        // The directory is the claim's now, whatever became of the staging.
        let Ok(applied) = result else {
            remove_in_background(job.dir.clone());
            return None;
        };
        let staged = Staged {
            dir: job.dir.clone(),
            applied,
        };
        (job.compression == compression && staged.applied.compressed_size == size).then_some(staged)
    }

    /// Starts a staging of an ingest of `namespace`, compressed as `compression`.
    fn start(&self, namespace: &str, compression: Compression) -> Option<Box<dyn TapSink>> {
        let me = self.me.upgrade()?;
        if self.alive.fetch_add(1, Ordering::SeqCst) >= MAX_STAGED {
            self.alive.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let dir = self
            .dir
            .join(self.next.fetch_add(1, Ordering::Relaxed).to_string());
        if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "early unpack: making a staging directory");
            self.alive.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let job = Arc::new(Job {
            dir,
            compression,
            state: Mutex::new(State::Extracting),
            changed: Condvar::new(),
            abandoned: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::sync_channel(QUEUE_DEPTH);
        let worker = job.clone();
        let spawned = std::thread::Builder::new()
            .name("early-unpack".into())
            .spawn(move || me.run(&worker, rx));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "early unpack: starting a thread");
            self.alive.fetch_sub(1, Ordering::SeqCst);
            let _ = std::fs::remove_dir(&job.dir);
            return None;
        }
        Some(Box::new(Sink {
            early: self.me.clone(),
            namespace: namespace.to_string(),
            job,
            queue: Some(tx),
            committed: false,
        }))
    }

    /// A staging thread: extracts, then waits for a claim or expires.
    fn run(&self, job: &Arc<Job>, queue: Receiver<Vec<u8>>) {
        let feed = Feed {
            queue,
            chunk: Vec::new(),
            at: 0,
        };
        let target = Target::Overlay {
            upper: &job.dir,
            lowers: Vec::new(),
        };
        let started = Instant::now();
        // A panic must still end the staging: a claim waits for its end.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            apply::apply_cancellable(feed, job.compression, target, &job.abandoned)
        }))
        .unwrap_or(Err(apply::ApplyError::ThreadPanicked))
        .map_err(|e| e.to_string());
        match &result {
            Ok(applied) => tracing::debug!(dir = %job.dir.display(), diff_id = %applied.diff_id,
                elapsed = ?started.elapsed(), "early unpack: staged"),
            Err(e) if !job.abandoned.load(Ordering::Relaxed) => {
                tracing::debug!(dir = %job.dir.display(), error = %e, "early unpack: staging failed")
            }
            Err(_) => {}
        }
        let mut state = job.lock();
        *state = State::Done(result);
        job.changed.notify_all();
        // Waits for a claim, or until abandoned or expired.
        let deadline = Instant::now() + KEEP_FOR;
        loop {
            if matches!(*state, State::Claimed) {
                break;
            }
            let now = Instant::now();
            if job.abandoned.load(Ordering::Relaxed) || now >= deadline {
                *state = State::Expired;
                drop(state);
                self.forget(job);
                remove_in_background(job.dir.clone());
                break;
            }
            let wait = (deadline - now).min(Duration::from_millis(500));
            state = job
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }

    /// Takes `job` out of the map if it is there.
    fn forget(&self, job: &Arc<Job>) {
        let mut staged = self.staged();
        let digest = staged
            .iter()
            .find(|(_, j)| Arc::ptr_eq(j, job))
            .map(|(d, _)| d.clone());
        if let Some(digest) = digest {
            staged.remove(&digest);
        }
    }
}

impl Job {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl IngestTap for EarlyUnpack {
    fn open(
        &self,
        namespace: &str,
        reference: &str,
        total: i64,
        first: &[u8],
    ) -> Option<Box<dyn TapSink>> {
        if !LAYER_REF_PREFIXES.iter().any(|p| reference.starts_with(p)) {
            return None;
        }
        if total != 0 && total < MIN_LAYER_BYTES {
            return None;
        }
        self.start(namespace, sniff(first)?)
    }
}

/// The compression of a layer from its first bytes; `None` when it looks like no layer.
fn sniff(first: &[u8]) -> Option<Compression> {
    const GZIP: &[u8] = &[0x1f, 0x8b];
    const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
    if first.starts_with(GZIP) {
        Some(Compression::Gzip)
    } else if first.starts_with(ZSTD) {
        Some(Compression::Zstd)
    } else if first.len() >= 263 && &first[257..262] == b"ustar" {
        Some(Compression::None)
    } else {
        None
    }
}

/// The writer's side of a staging.
struct Sink {
    early: Weak<EarlyUnpack>,
    namespace: String,
    job: Arc<Job>,
    queue: Option<SyncSender<Vec<u8>>>,
    committed: bool,
}

impl TapSink for Sink {
    fn data(&mut self, data: &[u8]) -> bool {
        match &self.queue {
            // Fails once the staging has stopped (a bad layer): no use feeding it.
            Some(queue) => queue.send(data.to_vec()).is_ok(),
            None => false,
        }
    }

    fn committed(mut self: Box<Self>, digest: &str) {
        // The end of the stream: the staging finishes what it has.
        self.queue = None;
        self.committed = true;
        let Some(early) = self.early.upgrade() else {
            return;
        };
        let mut staged = early.staged();
        let key = key(&self.namespace, digest);
        if staged.contains_key(&key) {
            // Another ingest of the same blob staged it already.
            self.job.abandoned.store(true, Ordering::Relaxed);
            return;
        }
        staged.insert(key, self.job.clone());
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if !self.committed {
            self.job.abandoned.store(true, Ordering::Relaxed);
            self.job.changed.notify_all();
        }
    }
}

/// The bytes of an ingest, as the staging's apply reads them.
struct Feed {
    queue: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for Feed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.queue.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                // The writer is gone: committed (the end) or abandoned (the apply is told).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Removes a staging directory off the caller's thread (a large tree takes a while).
fn remove_in_background(dir: PathBuf) {
    let removing = std::thread::Builder::new()
        .name("early-unpack-rm".into())
        .spawn({
            let dir = dir.clone();
            move || remove_dir(&dir)
        });
    if removing.is_err() {
        remove_dir(&dir);
    }
}

fn remove_dir(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "early unpack: removing a staging")
        }
    }
}
