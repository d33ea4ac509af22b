//! An open ingest of one namespace: the driver's writer, where its running
//! digest comes from, and the ingest lock, held until the writer is dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcontainerd_plugin_api::content::{self as driver, Status};

use super::locks::IngestLock;
use super::tap::TapSink;
use super::{ContentStore, RunningDigest};
use rcontainerd_metadata::{validate_blob_labels, BlobRecord, IngestRecord};
use rcontainerd_pkg::errdefs::{Error, Kind, Result};

/// How often a running ingest saves its digest state (data after the last
/// save is rewritten after a crash).
pub const SAVE_INTERVAL: Duration = Duration::from_millis(250);

/// Chunks at least this large are hashed in parallel with the driver's write.
const PARALLEL_HASH_BYTES: usize = 256 << 10;

/// Who knows the digest of the data written so far.
pub enum DigestSource {
    /// The driver keeps it (ABI generation 2 on): asked for, never recomputed.
    Driver,
    /// The daemon hashes what passes through (drivers that keep none, such as
    /// generation-1 plugins); `None` once a failed write left the driver's
    /// data unknown.
    Host(Option<RunningDigest>),
}

pub struct IngestWriter {
    store: Arc<ContentStore>,
    namespace: String,
    ingest: IngestRecord,
    /// `None` once committed or aborted.
    inner: Option<Box<dyn driver::Writer>>,
    offset: u64,
    source: DigestSource,
    /// When the running digest was last saved.
    saved_at: Option<Instant>,
    committed: Option<String>,
    /// The tap watching this run of writes from offset 0, if any.
    tap: Option<Box<dyn TapSink>>,
    // Released after `Drop::drop` has closed the driver's writer.
    _lock: IngestLock,
}

impl IngestWriter {
    pub(super) fn new(
        store: Arc<ContentStore>,
        namespace: &str,
        ingest: IngestRecord,
        inner: Box<dyn driver::Writer>,
        offset: u64,
        source: DigestSource,
        lock: IngestLock,
    ) -> IngestWriter {
        IngestWriter {
            store,
            namespace: namespace.to_string(),
            ingest,
            inner: Some(inner),
            offset,
            source,
            saved_at: None,
            committed: None,
            tap: None,
            _lock: lock,
        }
    }

    /// The client's ref.
    pub fn reference(&self) -> &str {
        &self.ingest.reference
    }

    /// The driver's ref (`<namespace>/<n>/<ref>`).
    pub fn driver_ref(&self) -> &str {
        &self.ingest.driver_ref
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The digest of the data so far (of the blob once committed); empty
    /// when a failed write left the data unknown to a hashing host.
    pub fn digest(&mut self) -> Result<String> {
        if let Some(digest) = &self.committed {
            return Ok(digest.clone());
        }
        match &self.source {
            DigestSource::Host(Some(running)) => Ok(running.current()),
            DigestSource::Host(None) => Ok(String::new()),
            DigestSource::Driver => self.driver_digest(),
        }
    }

    /// The driver's running digest; a driver that stops reporting one breaks
    /// its contract.
    fn driver_digest(&mut self) -> Result<String> {
        let reference = self.ingest.reference.clone();
        self.inner()?.digest()?.ok_or_else(|| {
            Error::internal(format!(
                "content driver stopped reporting the digest of ingest ref {reference:?}"
            ))
        })
    }

    fn inner(&mut self) -> Result<&mut Box<dyn driver::Writer>> {
        self.inner.as_mut().ok_or_else(|| {
            Error::failed_precondition(format!(
                "ingest ref {:?} is already committed or aborted",
                self.ingest.reference
            ))
        })
    }

    /// The driver's view of the ingest, under the client's ref.
    pub fn status(&mut self) -> Result<Status> {
        let mut status = self.inner()?.status()?;
        status.reference = self.ingest.reference.clone();
        Ok(status)
    }

    /// Discards everything written: the ingest starts again at 0.
    pub fn truncate(&mut self) -> Result<()> {
        self.tap = None;
        self.inner()?.truncate(0)?;
        self.offset = 0;
        if let DigestSource::Host(running) = &mut self.source {
            *running = Some(RunningDigest::default());
            // A state saved for the old data must not be taken for the new.
            self.save_digest();
        }
        Ok(())
    }

    /// Appends `data` at the current offset; returns the bytes written.
    pub fn write(&mut self, data: &[u8]) -> Result<usize> {
        let offset = self.offset;
        let inner = self.inner.as_mut().ok_or_else(|| {
            Error::failed_precondition(format!(
                "ingest ref {:?} is already committed or aborted",
                self.ingest.reference
            ))
        })?;
        let written = match &mut self.source {
            DigestSource::Driver => inner.write(offset, data),
            DigestSource::Host(running) => write_hashing(&mut **inner, offset, data, running),
        };
        match written {
            Ok(n) if n == data.len() => {
                self.feed_tap(offset, data);
                self.offset += n as u64;
                let hashing = matches!(self.source, DigestSource::Host(_));
                if hashing && self.saved_at.is_none_or(|at| at.elapsed() >= SAVE_INTERVAL) {
                    self.save_digest();
                }
                Ok(n)
            }
            // What the driver kept of a short or failed write is its own
            // business: a running digest of the host's no longer matches it.
            other => {
                self.tap = None;
                if let DigestSource::Host(running) = &mut self.source {
                    *running = None;
                }
                if let Ok(status) = inner.status() {
                    self.offset = u64::try_from(status.offset).unwrap_or(0);
                }
                Ok(other?)
            }
        }
    }

    /// Verifies size (`total` > 0) and digest (`expected` non-empty), makes
    /// the blob visible in this namespace with `labels`, and forgets the
    /// ingest. Returns the blob's digest. A failed check keeps the ingest.
    pub fn commit(
        &mut self,
        total: i64,
        expected: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<String> {
        self.inner()?;
        let size = self.offset as i64;
        if total > 0 && total != size {
            return Err(Error::failed_precondition(format!(
                "{:?} failed size validation: {size} != {total}",
                self.ingest.reference
            )));
        }
        if !expected.is_empty() {
            super::validate_digest(expected)?;
        }
        let known = match &self.source {
            DigestSource::Driver => Some(self.driver_digest()?),
            DigestSource::Host(running) => running.as_ref().map(RunningDigest::current),
        };
        let verified = known.is_some();
        let digest = match known {
            Some(actual) => {
                if !expected.is_empty() && expected != actual {
                    return Err(Error::failed_precondition(format!(
                        "unexpected commit digest {actual}, expected {expected}"
                    )));
                }
                actual
            }
            None if !expected.is_empty() => expected.to_string(),
            None => {
                return Err(Error::failed_precondition(format!(
                    "ingest ref {:?}: digest unknown after a failed write; commit it with \
                     its expected digest",
                    self.ingest.reference
                )))
            }
        };
        validate_blob_labels(&labels)?;

        let store = self.store.clone();
        let namespace = self.namespace.clone();
        let guard = store.meta.lock_namespace(&namespace);
        let _blob = store.blob_lock(&digest);
        // The driver verifies again; a blob it already has is fine: this
        // namespace still needs its own record.
        match self
            .inner()?
            .commit(size, &digest, BTreeMap::new())
            .map_err(Error::from)
        {
            Ok(()) => {}
            Err(e) if e.is(Kind::AlreadyExists) => {}
            Err(e) => return Err(e),
        }
        self.inner = None;
        self.committed = Some(digest.clone());
        // Only a digest the host or the driver computed names what the tap saw.
        if let (Some(tap), true) = (self.tap.take(), verified) {
            tap.committed(&digest);
        }
        let record = BlobRecord::new(&digest, size, labels);
        store
            .meta
            .blobs()
            .commit(&guard, &record, Some(&self.ingest))?;
        Ok(digest)
    }

    /// Shows `data`, just written at `offset`, to the store's tap: a run from offset 0 opens a
    /// sink; a sink that declines more is dropped.
    fn feed_tap(&mut self, offset: u64, data: &[u8]) {
        if matches!(self.source, DigestSource::Host(None)) {
            // The digest is unknown from here on: a commit would not be verified.
            self.tap = None;
            return;
        }
        if offset == 0 {
            self.tap = self.store.tap().and_then(|tap| {
                tap.open(
                    &self.namespace,
                    &self.ingest.reference,
                    self.ingest.total,
                    data,
                )
            });
        }
        if let Some(sink) = self.tap.as_mut() {
            if !sink.data(data) {
                self.tap = None;
            }
        }
    }

    /// Saves the running digest so a later writer can resume; a failure
    /// only costs a rewrite of the data since the last save.
    fn save_digest(&mut self) {
        let DigestSource::Host(Some(running)) = &self.source else {
            return;
        };
        let state = running.save();
        match self
            .store
            .meta
            .ingests()
            .save_digest(&self.ingest.driver_ref, &state)
        {
            Ok(()) => self.saved_at = Some(Instant::now()),
            Err(e) => tracing::warn!(reference = %self.ingest.driver_ref, error = %e,
                "content: saving the running digest"),
        }
    }

    /// Closes the writer and abandons the ingest.
    pub fn abort(&mut self) -> Result<()> {
        if let Some(mut inner) = self.inner.take() {
            if let Err(e) = inner.close() {
                tracing::warn!(reference = %self.ingest.driver_ref, error = %e,
                    "content: closing writer before abort");
            }
        }
        self.store.abort_locked(&self.namespace, &self.ingest)
    }
}

impl Drop for IngestWriter {
    /// Leaves an uncommitted ingest for resumption.
    fn drop(&mut self) {
        let Some(mut inner) = self.inner.take() else {
            return;
        };
        if let Err(e) = inner.close() {
            tracing::warn!(reference = %self.ingest.driver_ref, error = %e,
                "content: closing writer");
        }
        drop(inner);
        self.save_digest();
    }
}

/// Writes through the driver while hashing the same bytes; large chunks are
/// hashed on a second thread meanwhile. A panic while hashing forgets the
/// running digest.
fn write_hashing(
    inner: &mut dyn driver::Writer,
    offset: u64,
    data: &[u8],
    running: &mut Option<RunningDigest>,
) -> rcontainerd_plugin_api::Result<usize> {
    if data.len() < PARALLEL_HASH_BYTES || running.is_none() {
        let written = inner.write(offset, data);
        if let Some(running) = running.as_mut() {
            running.update(data);
        }
        return written;
    }
    let (written, hashed) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| {
            if let Some(running) = running.as_mut() {
                running.update(data);
            }
        });
        let written = inner.write(offset, data);
        (written, hashing.join().is_ok())
    });
    if !hashed {
        *running = None;
    }
    written
}
