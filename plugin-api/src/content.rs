//! The content store interface: immutable blobs addressed by digest (`sha256:<hex>`), written
//! through resumable ingests named by a client-chosen reference.

use crate::{snapshot::Labels, Result};

/// A blob's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub digest: String,
    pub size: i64,
    /// Unix nanoseconds.
    pub created: i64,
    /// Unix nanoseconds.
    pub updated: i64,
    pub labels: Labels,
}

/// The state of an ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub reference: String,
    /// Bytes written so far.
    pub offset: i64,
    /// Expected total size; 0 when unknown.
    pub total: i64,
    /// Expected digest; empty when unknown.
    pub expected: String,
    /// Unix nanoseconds.
    pub started_at: i64,
    /// Unix nanoseconds.
    pub updated_at: i64,
}

/// What a writer is opened for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterOptions {
    pub reference: String,
    pub expected_size: Option<i64>,
    pub expected_digest: Option<String>,
}

/// Random-access reads of one blob.
pub trait Reader: Send + Sync {
    fn size(&self) -> Result<i64>;
    /// Reads into `buf` from `offset`; returns the bytes read, 0 at the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize>;
}

/// An open ingest. Dropping it without `commit` or `close` keeps the ingest for resumption.
pub trait Writer: Send {
    fn status(&self) -> Result<Status>;
    /// Writes `data` at `offset` (the current offset, or less after a truncate).
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<usize>;
    fn truncate(&mut self, size: u64) -> Result<()>;
    /// Verifies `size` (0: any) and `expected` digest (empty: any) and makes the blob visible.
    fn commit(&mut self, size: i64, expected: &str, labels: Labels) -> Result<()>;
    /// Releases the writer, keeping the ingest.
    fn close(&mut self) -> Result<()>;
    /// The digest of the data written so far (`sha256:<hex>`), if the driver keeps a running
    /// hash (it needs one to verify `commit` anyway). The daemon then reports it on the Write
    /// stream instead of hashing every byte a second time. `None` (the default) makes the
    /// daemon hash the data itself; a driver answers the same way for the writer's lifetime.
    fn digest(&mut self) -> Result<Option<String>> {
        Ok(None)
    }
}

/// A content store driver.
pub trait Store: Send + Sync {
    fn info(&self, digest: &str) -> Result<Info>;
    /// Updates the fields named by `fieldpaths` (`labels`, `labels.<key>`); returns the record.
    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info>;
    fn list(&self) -> Result<Vec<Info>>;
    fn delete(&self, digest: &str) -> Result<()>;
    fn reader(&self, digest: &str) -> Result<Box<dyn Reader>>;
    /// Opens (or resumes) the ingest `options.reference`; a locked one is `Unavailable`.
    fn writer(&self, options: WriterOptions) -> Result<Box<dyn Writer>>;
    fn status(&self, reference: &str) -> Result<Status>;
    fn list_statuses(&self) -> Result<Vec<Status>>;
    fn abort(&self, reference: &str) -> Result<()>;
}
