//! Content stores. Readers and the data types are the same in every generation; the store and
//! writer objects are not (generation 2's writer reports its digest), so their shared methods
//! are macros each generation expands in its own `impl` blocks, and the host-side drivers are
//! generic over the generation's object.

use std::sync::Arc;

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RSlice, RSliceMut, RStr, RString, RVec},
};

use super::{
    ffi::{
        content::{
            FfiContentInfo, FfiContentReader, FfiContentReaderBox, FfiContentReader_TO,
            FfiContentStatus, FfiWriterOptions,
        },
        error::{FfiError, FfiKeyValue},
    },
    guard, into_result, labels_from_ffi, labels_to_ffi, strings_from_ffi, CatchDrop,
};
use crate::{content, PluginError, Result};

/// A plugin's content store; the generation's `FfiContentStore` is implemented for it with
/// [`content_store_methods!`] plus its own `writer`.
pub(crate) struct ContentStoreExport {
    uri: Arc<str>,
    inner: CatchDrop<Arc<dyn content::Store>>,
}

impl ContentStoreExport {
    pub(crate) fn new(inner: Arc<dyn content::Store>, uri: Arc<str>) -> Self {
        ContentStoreExport {
            uri,
            inner: CatchDrop::new(inner),
        }
    }

    pub(crate) fn info_ffi(&self, digest: RStr<'_>) -> RResult<FfiContentInfo, FfiError> {
        guard(&self.uri, || {
            self.inner.info(digest.as_str()).map(Into::into)
        })
    }

    pub(crate) fn update_ffi(
        &self,
        info: FfiContentInfo,
        fieldpaths: RVec<RString>,
    ) -> RResult<FfiContentInfo, FfiError> {
        guard(&self.uri, || {
            self.inner
                .update(info.into(), &strings_from_ffi(fieldpaths))
                .map(Into::into)
        })
    }

    pub(crate) fn list_ffi(&self) -> RResult<RVec<FfiContentInfo>, FfiError> {
        guard(&self.uri, || {
            self.inner
                .list()
                .map(|infos| infos.into_iter().map(Into::into).collect())
        })
    }

    pub(crate) fn delete_ffi(&self, digest: RStr<'_>) -> RResult<(), FfiError> {
        guard(&self.uri, || self.inner.delete(digest.as_str()))
    }

    pub(crate) fn reader_ffi(&self, digest: RStr<'_>) -> RResult<FfiContentReaderBox, FfiError> {
        guard(&self.uri, || {
            let reader = self.inner.reader(digest.as_str())?;
            Ok(FfiContentReader_TO::from_value(
                ReaderExport {
                    uri: self.uri.clone(),
                    inner: CatchDrop::new(reader),
                },
                TD_Opaque,
            ))
        })
    }

    pub(crate) fn status_ffi(&self, reference: RStr<'_>) -> RResult<FfiContentStatus, FfiError> {
        guard(&self.uri, || {
            self.inner.status(reference.as_str()).map(Into::into)
        })
    }

    pub(crate) fn list_statuses_ffi(&self) -> RResult<RVec<FfiContentStatus>, FfiError> {
        guard(&self.uri, || {
            self.inner
                .list_statuses()
                .map(|all| all.into_iter().map(Into::into).collect())
        })
    }

    pub(crate) fn abort_ffi(&self, reference: RStr<'_>) -> RResult<(), FfiError> {
        guard(&self.uri, || self.inner.abort(reference.as_str()))
    }

    /// Opens a writer and wraps it with `wrap` into the generation's writer object.
    pub(crate) fn writer_with<T>(
        &self,
        options: FfiWriterOptions,
        wrap: impl FnOnce(WriterExport) -> T,
    ) -> RResult<T, FfiError> {
        guard(&self.uri, || {
            let writer = self.inner.writer(options.into())?;
            Ok(wrap(WriterExport {
                uri: self.uri.clone(),
                inner: CatchDrop::new(writer),
            }))
        })
    }
}

/// The methods every generation's `FfiContentStore` has in common (all but `writer`), for an
/// `impl … for ContentStoreExport` block.
macro_rules! content_store_methods {
    () => {
        fn info(
            &self,
            digest: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<
            $crate::abi::shared::ffi::content::FfiContentInfo,
            $crate::abi::shared::ffi::error::FfiError,
        > {
            self.info_ffi(digest)
        }

        fn update(
            &self,
            info: $crate::abi::shared::ffi::content::FfiContentInfo,
            fieldpaths: ::abi_stable::std_types::RVec<::abi_stable::std_types::RString>,
        ) -> ::abi_stable::std_types::RResult<
            $crate::abi::shared::ffi::content::FfiContentInfo,
            $crate::abi::shared::ffi::error::FfiError,
        > {
            self.update_ffi(info, fieldpaths)
        }

        fn list(
            &self,
        ) -> ::abi_stable::std_types::RResult<
            ::abi_stable::std_types::RVec<$crate::abi::shared::ffi::content::FfiContentInfo>,
            $crate::abi::shared::ffi::error::FfiError,
        > {
            self.list_ffi()
        }

        fn delete(
            &self,
            digest: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<(), $crate::abi::shared::ffi::error::FfiError> {
            self.delete_ffi(digest)
        }

        fn reader(
            &self,
            digest: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<
            $crate::abi::shared::ffi::content::FfiContentReaderBox,
            $crate::abi::shared::ffi::error::FfiError,
        > {
            self.reader_ffi(digest)
        }

        fn status(
            &self,
            reference: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<
            $crate::abi::shared::ffi::content::FfiContentStatus,
            $crate::abi::shared::ffi::error::FfiError,
        > {
            self.status_ffi(reference)
        }

        fn list_statuses(
            &self,
        ) -> ::abi_stable::std_types::RResult<
            ::abi_stable::std_types::RVec<$crate::abi::shared::ffi::content::FfiContentStatus>,
            $crate::abi::shared::ffi::error::FfiError,
        > {
            self.list_statuses_ffi()
        }

        fn abort(
            &self,
            reference: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<(), $crate::abi::shared::ffi::error::FfiError> {
            self.abort_ffi(reference)
        }
    };
}
pub(crate) use content_store_methods;

struct ReaderExport {
    uri: Arc<str>,
    inner: CatchDrop<Box<dyn content::Reader>>,
}

impl FfiContentReader for ReaderExport {
    fn size(&self) -> RResult<i64, FfiError> {
        guard(&self.uri, || self.inner.size())
    }

    fn read_at(&self, offset: u64, mut buf: RSliceMut<'_, u8>) -> RResult<usize, FfiError> {
        guard(&self.uri, || {
            let len = buf.len();
            let read = self.inner.read_at(offset, buf.as_mut_slice())?;
            // A reader claiming more than the buffer would make the host read out of bounds.
            if read > len {
                return Err(PluginError::internal(format!(
                    "plugin {} reader returned {read} bytes for a {len}-byte buffer",
                    self.uri
                )));
            }
            Ok(read)
        })
    }
}

/// A plugin's content writer; the generation's `FfiContentWriter` is implemented for it with
/// [`content_writer_methods!`] plus what the generation adds.
pub(crate) struct WriterExport {
    uri: Arc<str>,
    inner: CatchDrop<Box<dyn content::Writer>>,
}

impl WriterExport {
    pub(crate) fn status_ffi(&self) -> RResult<FfiContentStatus, FfiError> {
        guard(&self.uri, || self.inner.status().map(Into::into))
    }

    pub(crate) fn write_ffi(
        &mut self,
        offset: u64,
        data: RSlice<'_, u8>,
    ) -> RResult<usize, FfiError> {
        let uri = self.uri.clone();
        guard(&uri, || self.inner.write(offset, data.as_slice()))
    }

    pub(crate) fn truncate_ffi(&mut self, size: u64) -> RResult<(), FfiError> {
        let uri = self.uri.clone();
        guard(&uri, || self.inner.truncate(size))
    }

    pub(crate) fn commit_ffi(
        &mut self,
        size: i64,
        expected: RStr<'_>,
        labels: RVec<FfiKeyValue>,
    ) -> RResult<(), FfiError> {
        let uri = self.uri.clone();
        guard(&uri, || {
            self.inner
                .commit(size, expected.as_str(), labels_from_ffi(labels))
        })
    }

    pub(crate) fn close_ffi(&mut self) -> RResult<(), FfiError> {
        let uri = self.uri.clone();
        guard(&uri, || self.inner.close())
    }

    /// The driver's running digest (generation 2 on).
    pub(crate) fn digest_ffi(&mut self) -> RResult<Option<String>, FfiError> {
        let uri = self.uri.clone();
        guard(&uri, || self.inner.digest())
    }
}

/// The methods every generation's `FfiContentWriter` has in common, for an
/// `impl … for WriterExport` block.
macro_rules! content_writer_methods {
    () => {
        fn status(
            &self,
        ) -> ::abi_stable::std_types::RResult<
            $crate::abi::shared::ffi::content::FfiContentStatus,
            $crate::abi::shared::ffi::error::FfiError,
        > {
            self.status_ffi()
        }

        fn write(
            &mut self,
            offset: u64,
            data: ::abi_stable::std_types::RSlice<'_, u8>,
        ) -> ::abi_stable::std_types::RResult<usize, $crate::abi::shared::ffi::error::FfiError> {
            self.write_ffi(offset, data)
        }

        fn truncate(
            &mut self,
            size: u64,
        ) -> ::abi_stable::std_types::RResult<(), $crate::abi::shared::ffi::error::FfiError> {
            self.truncate_ffi(size)
        }

        fn commit(
            &mut self,
            size: i64,
            expected: ::abi_stable::std_types::RStr<'_>,
            labels: ::abi_stable::std_types::RVec<$crate::abi::shared::ffi::error::FfiKeyValue>,
        ) -> ::abi_stable::std_types::RResult<(), $crate::abi::shared::ffi::error::FfiError> {
            self.commit_ffi(size, expected, labels)
        }

        fn close(
            &mut self,
        ) -> ::abi_stable::std_types::RResult<(), $crate::abi::shared::ffi::error::FfiError> {
            self.close_ffi()
        }
    };
}
pub(crate) use content_writer_methods;

/// A content store living in a loaded library; `S` is its generation's store object.
pub(crate) struct ForeignContentStore<S> {
    pub(crate) inner: S,
}

/// A writer living in a loaded library; `W` is its generation's writer object.
pub(crate) struct ForeignWriter<W> {
    pub(crate) inner: W,
}

/// Implements `content::Store` for `ForeignContentStore<$store>`: every generation's store
/// object has the same methods; its writer comes back as a `ForeignWriter` of the generation's
/// writer object.
macro_rules! foreign_content_store {
    ($store:ty) => {
        impl $crate::content::Store for $crate::abi::shared::content::ForeignContentStore<$store> {
            fn info(&self, digest: &str) -> $crate::Result<$crate::content::Info> {
                $crate::abi::shared::into_result(
                    self.inner
                        .info(::abi_stable::std_types::RStr::from_str(digest)),
                )
                .map(Into::into)
            }

            fn update(
                &self,
                info: $crate::content::Info,
                fieldpaths: &[String],
            ) -> $crate::Result<$crate::content::Info> {
                $crate::abi::shared::into_result(
                    self.inner
                        .update(info.into(), $crate::abi::shared::strings_to_ffi(fieldpaths)),
                )
                .map(Into::into)
            }

            fn list(&self) -> $crate::Result<Vec<$crate::content::Info>> {
                Ok($crate::abi::shared::into_result(self.inner.list())?
                    .into_iter()
                    .map(Into::into)
                    .collect())
            }

            fn delete(&self, digest: &str) -> $crate::Result<()> {
                $crate::abi::shared::into_result(
                    self.inner
                        .delete(::abi_stable::std_types::RStr::from_str(digest)),
                )
            }

            fn reader(&self, digest: &str) -> $crate::Result<Box<dyn $crate::content::Reader>> {
                let inner = $crate::abi::shared::into_result(
                    self.inner
                        .reader(::abi_stable::std_types::RStr::from_str(digest)),
                )?;
                Ok(Box::new($crate::abi::shared::content::ForeignReader {
                    inner,
                }))
            }

            fn writer(
                &self,
                options: $crate::content::WriterOptions,
            ) -> $crate::Result<Box<dyn $crate::content::Writer>> {
                let inner = $crate::abi::shared::into_result(self.inner.writer(options.into()))?;
                Ok(Box::new($crate::abi::shared::content::ForeignWriter {
                    inner,
                }))
            }

            fn status(&self, reference: &str) -> $crate::Result<$crate::content::Status> {
                $crate::abi::shared::into_result(
                    self.inner
                        .status(::abi_stable::std_types::RStr::from_str(reference)),
                )
                .map(Into::into)
            }

            fn list_statuses(&self) -> $crate::Result<Vec<$crate::content::Status>> {
                Ok(
                    $crate::abi::shared::into_result(self.inner.list_statuses())?
                        .into_iter()
                        .map(Into::into)
                        .collect(),
                )
            }

            fn abort(&self, reference: &str) -> $crate::Result<()> {
                $crate::abi::shared::into_result(
                    self.inner
                        .abort(::abi_stable::std_types::RStr::from_str(reference)),
                )
            }
        }
    };
}
pub(crate) use foreign_content_store;

/// Implements `content::Writer` for `ForeignWriter<$writer>` with the methods every
/// generation's writer object has, plus the generation's own `$extra` methods.
macro_rules! foreign_content_writer {
    ($writer:ty $(, $extra:item)*) => {
        impl $crate::content::Writer for $crate::abi::shared::content::ForeignWriter<$writer> {
            fn status(&self) -> $crate::Result<$crate::content::Status> {
                $crate::abi::shared::into_result(self.inner.status()).map(Into::into)
            }

            fn write(&mut self, offset: u64, data: &[u8]) -> $crate::Result<usize> {
                $crate::abi::shared::into_result(
                    self.inner
                        .write(offset, ::abi_stable::std_types::RSlice::from_slice(data)),
                )
            }

            fn truncate(&mut self, size: u64) -> $crate::Result<()> {
                $crate::abi::shared::into_result(self.inner.truncate(size))
            }

            fn commit(
                &mut self,
                size: i64,
                expected: &str,
                labels: $crate::snapshot::Labels,
            ) -> $crate::Result<()> {
                $crate::abi::shared::into_result(self.inner.commit(
                    size,
                    ::abi_stable::std_types::RStr::from_str(expected),
                    $crate::abi::shared::labels_to_ffi(labels),
                ))
            }

            fn close(&mut self) -> $crate::Result<()> {
                $crate::abi::shared::into_result(self.inner.close())
            }

            $($extra)*
        }
    };
}
pub(crate) use foreign_content_writer;

/// A reader living in a loaded library (the same object in every generation).
pub(crate) struct ForeignReader {
    pub(crate) inner: FfiContentReaderBox,
}

impl content::Reader for ForeignReader {
    fn size(&self) -> Result<i64> {
        into_result(self.inner.size())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        into_result(self.inner.read_at(offset, RSliceMut::from_mut_slice(buf)))
    }
}

impl From<content::Info> for FfiContentInfo {
    fn from(info: content::Info) -> Self {
        FfiContentInfo {
            digest: info.digest.into(),
            size: info.size,
            created_unix_nanos: info.created,
            updated_unix_nanos: info.updated,
            labels: labels_to_ffi(info.labels),
        }
    }
}

impl From<FfiContentInfo> for content::Info {
    fn from(info: FfiContentInfo) -> Self {
        content::Info {
            digest: info.digest.into(),
            size: info.size,
            created: info.created_unix_nanos,
            updated: info.updated_unix_nanos,
            labels: labels_from_ffi(info.labels),
        }
    }
}

impl From<content::Status> for FfiContentStatus {
    fn from(s: content::Status) -> Self {
        FfiContentStatus {
            reference: s.reference.into(),
            offset: s.offset,
            total: s.total,
            expected: s.expected.into(),
            started_unix_nanos: s.started_at,
            updated_unix_nanos: s.updated_at,
        }
    }
}

impl From<FfiContentStatus> for content::Status {
    fn from(s: FfiContentStatus) -> Self {
        content::Status {
            reference: s.reference.into(),
            offset: s.offset,
            total: s.total,
            expected: s.expected.into(),
            started_at: s.started_unix_nanos,
            updated_at: s.updated_unix_nanos,
        }
    }
}

impl From<content::WriterOptions> for FfiWriterOptions {
    fn from(o: content::WriterOptions) -> Self {
        FfiWriterOptions {
            reference: o.reference.into(),
            expected_size: o.expected_size.into(),
            expected_digest: match o.expected_digest {
                Some(digest) => ROption::RSome(digest.into()),
                None => ROption::RNone,
            },
        }
    }
}

impl From<FfiWriterOptions> for content::WriterOptions {
    fn from(o: FfiWriterOptions) -> Self {
        content::WriterOptions {
            reference: o.reference.into(),
            expected_size: o.expected_size.into_option(),
            expected_digest: o.expected_digest.into_option().map(String::from),
        }
    }
}

/// Generation 2's store and writer objects (the writer reports its running digest), which
/// generation 3 re-exports unchanged: implemented once, here, for every generation that carries
/// them. (Generation 1's own objects are instantiated in `abi::v1`.)
mod digest_writer {
    use abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{ROption, RResult, RString},
    };
    use rcontainerd_plugin_abi_v2::content::{
        FfiContentStore, FfiContentStoreBox, FfiContentWriter, FfiContentWriterBox,
        FfiContentWriter_TO, FfiWriterOptions,
    };

    use super::{ContentStoreExport, WriterExport};
    use crate::{
        abi::shared::{ffi::error::FfiError, into_result},
        Result,
    };

    impl FfiContentStore for ContentStoreExport {
        content_store_methods!();

        fn writer(&self, options: FfiWriterOptions) -> RResult<FfiContentWriterBox, FfiError> {
            self.writer_with(options, |writer| {
                FfiContentWriter_TO::from_value(writer, TD_Opaque)
            })
        }
    }

    impl FfiContentWriter for WriterExport {
        content_writer_methods!();

        fn digest(&mut self) -> RResult<ROption<RString>, FfiError> {
            self.digest_ffi()
                .map(|digest| digest.map(RString::from).into())
        }
    }

    foreign_content_store!(FfiContentStoreBox);
    foreign_content_writer!(
        FfiContentWriterBox,
        fn digest(&mut self) -> Result<Option<String>> {
            into_result(self.inner.digest()).map(|digest| digest.into_option().map(String::from))
        }
    );
}
