//! The namespaced content store: the content driver's blobs and ingests,
//! seen through each namespace's records in the metadata store.
//!
//! - Blobs are stored once by the driver. A namespace sees a blob only while
//!   it has a record of it (written when it commits the blob); labels and
//!   times are per namespace. Deleting the last record of a blob removes the
//!   blob from the driver, so direct deletes free disk before GC exists.
//! - Ingest refs are per namespace: the driver knows each ingest as
//!   `<namespace>/<n>/<ref>` (see `metadata::IngestRecord`).
//! - Hashing is the driver's: it verifies on commit, and (ABI generation 2
//!   on) reports the running digest that the Write protocol returns on every
//!   message and that names the committed blob. For a driver that reports
//!   none (generation-1 plugins), the host keeps its own running sha256 per
//!   ingest and saves it in the metadata store (when a stream ends, and at
//!   most every [`writer::SAVE_INTERVAL`] while it runs). Such an ingest
//!   resumes from the saved state; data the driver holds beyond it (written
//!   after the last save, before a `kill -9`) is truncated away, so the
//!   client's STAT shows where to go on.
//!
//! Every method is synchronous and may block on disk or on the driver: call
//! them through a blocking worker (the gRPC edge uses `spawn_blocking`).

mod digest;
mod locks;
pub mod plugin;
pub mod tap;
mod writer;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rcontainerd_plugin_api::content::{self as driver, Status};

use rcontainerd_metadata::{blob_not_found, BlobRecord, IngestRecord, MetadataStore};
use rcontainerd_pkg::errdefs::{Error, Kind, Result};

pub use digest::RunningDigest;

/// Checks a digest the store is handed (the gRPC edge has already answered
/// a malformed one; this guards every other caller).
pub fn validate_digest(digest: &str) -> Result<()> {
    rcontainerd_pkg::digest::validate(digest)
        .map_err(|_| Error::invalid_argument(format!("{digest:?} failed validation")))
}
use writer::DigestSource;
pub use writer::IngestWriter;

/// Blob locks are striped: a fixed set, chosen by hash of the digest.
const BLOB_LOCK_STRIPES: usize = 64;

pub struct ContentStore {
    meta: Arc<MetadataStore>,
    driver: Arc<dyn driver::Store>,
    locks: Arc<locks::IngestLocks>,
    /// Serialise "last record gone → remove the blob" against a commit of
    /// the same digest in another namespace.
    blob_locks: Box<[Mutex<()>]>,
    /// Watches new ingests (set once, by the diff service).
    tap: OnceLock<Arc<dyn tap::IngestTap>>,
}

fn ingest_not_found(reference: &str) -> Error {
    Error::not_found(format!("ingest ref {reference:?}: not found"))
}

impl ContentStore {
    pub fn new(meta: Arc<MetadataStore>, driver: Arc<dyn driver::Store>) -> ContentStore {
        ContentStore {
            meta,
            driver,
            locks: Arc::default(),
            blob_locks: (0..BLOB_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            tap: OnceLock::new(),
        }
    }

    /// Shows every new ingest to `tap`; only the first tap set is kept.
    pub fn set_tap(&self, tap: Arc<dyn tap::IngestTap>) {
        let _ = self.tap.set(tap);
    }

    fn tap(&self) -> Option<&Arc<dyn tap::IngestTap>> {
        self.tap.get()
    }

    pub fn metadata(&self) -> &Arc<MetadataStore> {
        &self.meta
    }

    fn blob_lock(&self, digest: &str) -> MutexGuard<'_, ()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        digest.hash(&mut hasher);
        let stripe = (hasher.finish() % self.blob_locks.len() as u64) as usize;
        // The lock guards no data, so a panic elsewhere cannot leave it inconsistent.
        self.blob_locks[stripe]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The namespace's record of a blob.
    pub fn info(&self, namespace: &str, digest: &str) -> Result<BlobRecord> {
        validate_digest(digest)?;
        self.meta
            .blobs()
            .get(namespace, digest)?
            .ok_or_else(|| blob_not_found(digest))
    }

    /// Updates a blob's labels (see `MetadataStore::update_blob`).
    pub fn update(
        &self,
        namespace: &str,
        digest: &str,
        labels: BTreeMap<String, String>,
        paths: &[String],
    ) -> Result<BlobRecord> {
        validate_digest(digest)?;
        self.meta.blobs().update(namespace, digest, labels, paths)
    }

    /// Every blob the namespace holds, ordered by digest.
    pub fn list(&self, namespace: &str) -> Result<Vec<BlobRecord>> {
        self.meta.blobs().list(namespace)
    }

    /// Removes the namespace's record of a blob, and the blob itself when no
    /// namespace holds it any more.
    pub fn delete(&self, namespace: &str, digest: &str) -> Result<()> {
        validate_digest(digest)?;
        let guard = self.meta.lock_namespace(namespace);
        let _blob = self.blob_lock(digest);
        self.meta.blobs().delete(&guard, digest)?;
        if self.meta.blobs().referenced(digest)? {
            return Ok(());
        }
        match self.driver.delete(digest).map_err(Error::from) {
            Ok(()) => Ok(()),
            Err(e) if e.is(Kind::NotFound) => Ok(()),
            // The record is gone, which is what the client asked for; the
            // blob stays on disk for garbage collection to find.
            Err(e) => {
                tracing::warn!(%digest, error = %e, "content: removing unreferenced blob");
                Ok(())
            }
        }
    }

    /// Content sharing: when another namespace holds `digest` and shares
    /// it (the metadata plugin's policy), the blob becomes this namespace's
    /// too without its bytes being sent again — if `total` (when given)
    /// matches. Whether it was taken.
    fn take_shared(&self, namespace: &str, digest: &str, total: i64) -> Result<bool> {
        if !self.meta.blobs().shareable(namespace, digest)? {
            return Ok(false);
        }
        let guard = self.meta.lock_namespace(namespace);
        let _blob = self.blob_lock(digest);
        let size = match self.driver.info(digest).map_err(Error::from) {
            Ok(info) => info.size,
            Err(e) if e.is(Kind::NotFound) => return Ok(false),
            Err(e) => return Err(e),
        };
        if total > 0 && total != size {
            return Ok(false);
        }
        let record = BlobRecord::new(digest, size, BTreeMap::new());
        match self.meta.blobs().commit(&guard, &record, None) {
            Ok(()) => Ok(true),
            Err(e) if e.is(Kind::AlreadyExists) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Removes blob `digest` from the driver if no namespace holds a record
    /// of it (garbage collection, after it removed records); whether it went.
    pub fn sweep_blob(&self, digest: &str) -> Result<bool> {
        let _blob = self.blob_lock(digest);
        if self.meta.blobs().referenced(digest)? {
            return Ok(false);
        }
        match self.driver.delete(digest).map_err(Error::from) {
            Ok(()) => Ok(true),
            Err(e) if e.is(Kind::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every blob the driver holds that no namespace has a record of: what a
    /// crash between a collection's record sweep and its removals left.
    pub fn unreferenced_blobs(&self) -> Result<Vec<String>> {
        let mut unreferenced = Vec::new();
        for info in self.driver.list().map_err(Error::from)? {
            if !self.meta.blobs().referenced(&info.digest)? {
                unreferenced.push(info.digest);
            }
        }
        Ok(unreferenced)
    }

    /// A reader of a blob the namespace holds, with its record.
    pub fn reader(
        &self,
        namespace: &str,
        digest: &str,
    ) -> Result<(BlobRecord, Box<dyn driver::Reader>)> {
        let record = self.info(namespace, digest)?;
        let reader = self.driver.reader(digest)?;
        Ok((record, reader))
    }

    /// The state of one of the namespace's ingests.
    pub fn status(&self, namespace: &str, reference: &str) -> Result<Status> {
        let ingest = self
            .meta
            .ingests()
            .get(namespace, reference)?
            .ok_or_else(|| ingest_not_found(reference))?;
        self.driver_status(&ingest)?
            .ok_or_else(|| ingest_not_found(reference))
    }

    /// The states of all the namespace's ingests, ordered by ref.
    pub fn list_statuses(&self, namespace: &str) -> Result<Vec<Status>> {
        let mut statuses = Vec::new();
        for ingest in self.meta.ingests().list(namespace)? {
            if let Some(status) = self.driver_status(&ingest)? {
                statuses.push(status);
            }
        }
        Ok(statuses)
    }

    /// The driver's status of an ingest under the client's ref; `None` when
    /// the driver has no such ingest (a crash before its first write).
    fn driver_status(&self, ingest: &IngestRecord) -> Result<Option<Status>> {
        let mut status = match self.driver.status(&ingest.driver_ref) {
            Ok(status) => status,
            Err(e) => {
                let e = Error::from(e);
                return if e.is(Kind::NotFound) {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        status.reference = ingest.reference.clone();
        if status.total <= 0 {
            status.total = ingest.total;
        }
        if status.expected.is_empty() {
            status.expected = ingest.expected.clone();
        }
        Ok(Some(status))
    }

    /// Abandons one of the namespace's ingests; refused while a writer has it open.
    pub fn abort(&self, namespace: &str, reference: &str) -> Result<()> {
        // The gate before the ingest lock: see rcontainerd_metadata's gate.rs.
        let _gc = self.meta.hold_off_gc();
        let ingest = self
            .meta
            .ingests()
            .get(namespace, reference)?
            .ok_or_else(|| ingest_not_found(reference))?;
        let _lock = self.locks.try_lock(&ingest.driver_ref)?;
        self.abort_locked(namespace, &ingest)
    }

    /// Aborts an ingest whose lock the caller holds.
    fn abort_locked(&self, namespace: &str, ingest: &IngestRecord) -> Result<()> {
        match self.driver.abort(&ingest.driver_ref).map_err(Error::from) {
            Ok(()) => {}
            Err(e) if e.is(Kind::NotFound) => {}
            Err(e) => return Err(e),
        }
        self.meta.ingests().delete(namespace, &ingest.reference)?;
        Ok(())
    }

    /// Opens (or resumes) the namespace's ingest `reference` for writing.
    /// A non-empty `expected` naming a blob the namespace holds is
    /// AlreadyExists; a ref with an open writer is Unavailable.
    pub fn writer(
        self: &Arc<Self>,
        namespace: &str,
        reference: &str,
        expected: &str,
        total: i64,
    ) -> Result<IngestWriter> {
        // The gate before the ingest lock: see rcontainerd_metadata's gate.rs.
        let _gc = self.meta.hold_off_gc();
        if !expected.is_empty() {
            validate_digest(expected)?;
            if self.meta.blobs().get(namespace, expected)?.is_some()
                || self.take_shared(namespace, expected, total)?
            {
                return Err(rcontainerd_metadata::blob_exists(expected));
            }
        }
        let ingest = self
            .meta
            .ingests()
            .open(namespace, reference, expected, total)?;
        let lock = self.locks.try_lock(&ingest.driver_ref)?;
        // The expected digest stays with the host: a blob another namespace
        // committed must still be written through here to become visible.
        let options = driver::WriterOptions {
            reference: ingest.driver_ref.clone(),
            expected_size: (ingest.total > 0).then_some(ingest.total),
            expected_digest: None,
        };
        let mut inner = self.driver.writer(options)?;
        let (source, offset) = if inner.digest()?.is_some() {
            self.meta.ingests().forget_digest(&ingest.driver_ref)?;
            let held = u64::try_from(inner.status()?.offset).unwrap_or(0);
            (DigestSource::Driver, held)
        } else {
            let (running, offset) = self.resume_digest(&ingest.driver_ref, &mut *inner)?;
            (DigestSource::Host(Some(running)), offset)
        };
        Ok(IngestWriter::new(
            self.clone(),
            namespace,
            ingest,
            inner,
            offset,
            source,
            lock,
        ))
    }

    /// The running digest of the data the driver holds for an ingest, and
    /// its length. The driver's data is cut back to the saved digest state
    /// when it holds more (or to nothing when there is no usable state).
    fn resume_digest(
        &self,
        driver_ref: &str,
        inner: &mut dyn driver::Writer,
    ) -> Result<(RunningDigest, u64)> {
        let held = u64::try_from(inner.status()?.offset).unwrap_or(0);
        if held == 0 {
            return Ok((RunningDigest::default(), 0));
        }
        let saved = self
            .meta
            .ingests()
            .digest(driver_ref)?
            .and_then(|state| RunningDigest::restore(&state))
            .filter(|running| running.length() <= held);
        match saved {
            Some(running) if running.length() == held => Ok((running, held)),
            Some(running) if inner.truncate(running.length()).is_ok() => {
                tracing::info!(reference = %driver_ref, from = held, to = running.length(),
                    "content: resuming ingest at its last saved digest");
                let length = running.length();
                Ok((running, length))
            }
            _ => {
                tracing::info!(reference = %driver_ref, from = held,
                    "content: no saved digest for ingest; starting it over");
                inner.truncate(0)?;
                Ok((RunningDigest::default(), 0))
            }
        }
    }
}

#[cfg(test)]
mod tests;
