//! The content store interface.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RSlice, RSliceMut, RStr, RString, RVec},
    StableAbi,
};

use crate::error::{FfiError, FfiKeyValue};

/// A blob's record. Timestamps are unix nanoseconds.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiContentInfo {
    pub digest: RString,
    pub size: i64,
    pub created_unix_nanos: i64,
    pub updated_unix_nanos: i64,
    pub labels: RVec<FfiKeyValue>,
}

/// The state of an ingest. Timestamps are unix nanoseconds; an empty `expected` means unknown.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiContentStatus {
    pub reference: RString,
    pub offset: i64,
    pub total: i64,
    pub expected: RString,
    pub started_unix_nanos: i64,
    pub updated_unix_nanos: i64,
}

/// What a writer is opened for.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiWriterOptions {
    pub reference: RString,
    pub expected_size: ROption<i64>,
    pub expected_digest: ROption<RString>,
}

/// Random-access reads of one blob.
#[sabi_trait]
pub trait FfiContentReader: Send + Sync {
    fn size(&self) -> RResult<i64, FfiError>;
    #[sabi(last_prefix_field)]
    fn read_at(&self, offset: u64, buf: RSliceMut<'_, u8>) -> RResult<usize, FfiError>;
}

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
    #[sabi(last_prefix_field)]
    fn close(&mut self) -> RResult<(), FfiError>;
}

/// An owned reader object as it crosses the boundary.
pub type FfiContentReaderBox = FfiContentReader_TO<'static, RBox<()>>;
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
