//! The content store interface: generation 1's, with a writer that reports its digest.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec},
};

pub use rcontainerd_plugin_abi_v1::content::{
    FfiContentInfo, FfiContentReader, FfiContentReaderBox, FfiContentReader_TO, FfiContentStatus,
    FfiWriterOptions,
};

use crate::error::{FfiError, FfiKeyValue};

/// An open ingest.
#[sabi_trait]
pub trait FfiContentWriter: Send {
    fn status(&self) -> RResult<FfiContentStatus, FfiError>;
    fn write(&mut self, offset: u64, data: RSlice<'_, u8>) -> RResult<usize, FfiError>;
    fn truncate(&mut self, size: u64) -> RResult<(), FfiError>;
    fn commit(
        &mut self,
        size: i64,
        expected: RStr<'_>,
        labels: RVec<FfiKeyValue>,
    ) -> RResult<(), FfiError>;
    fn close(&mut self) -> RResult<(), FfiError>;
    /// The digest of the data written so far (`sha256:<hex>`); none when the driver keeps no
    /// running digest (the daemon then hashes the data itself).
    #[sabi(last_prefix_field)]
    fn digest(&mut self) -> RResult<ROption<RString>, FfiError>;
}

/// An owned writer object as it crosses the boundary.
pub type FfiContentWriterBox = FfiContentWriter_TO<'static, RBox<()>>;

/// A content store driver.
#[sabi_trait]
pub trait FfiContentStore: Send + Sync {
    fn info(&self, digest: RStr<'_>) -> RResult<FfiContentInfo, FfiError>;
    fn update(
        &self,
        info: FfiContentInfo,
        fieldpaths: RVec<RString>,
    ) -> RResult<FfiContentInfo, FfiError>;
    fn list(&self) -> RResult<RVec<FfiContentInfo>, FfiError>;
    fn delete(&self, digest: RStr<'_>) -> RResult<(), FfiError>;
    fn reader(&self, digest: RStr<'_>) -> RResult<FfiContentReaderBox, FfiError>;
    fn writer(&self, options: FfiWriterOptions) -> RResult<FfiContentWriterBox, FfiError>;
    fn status(&self, reference: RStr<'_>) -> RResult<FfiContentStatus, FfiError>;
    fn list_statuses(&self) -> RResult<RVec<FfiContentStatus>, FfiError>;
    #[sabi(last_prefix_field)]
    fn abort(&self, reference: RStr<'_>) -> RResult<(), FfiError>;
}

/// An owned content store object as it crosses the boundary.
pub type FfiContentStoreBox = FfiContentStore_TO<'static, RBox<()>>;
