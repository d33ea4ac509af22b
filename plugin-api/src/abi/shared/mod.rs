//! The glue every ABI generation shares, written once and instantiated by each generation's
//! module (`abi::v1`, `abi::v2`, `abi::v3`, …), split by driver kind:
//!
//! - [`library`]: the plugin list, manifests and init of a library, and the macros that build a
//!   generation's root module (plugin side) and checked module (host side);
//! - [`snapshot`], [`content`], [`runtime`]: conversions between the plain types and the FFI
//!   types, the plugin-side `…Export` objects and the host-side `Foreign…` drivers.
//!
//! The FFI types the generations share are named from the generation that first froze them —
//! generation 1's ([`ffi`]) for most, generation 2's for the content store and writer that
//! report a digest, generation 3's for the runtime — and later generation crates re-export
//! them, so one adapter serves every generation that carries the object. Where generations'
//! objects differ (generation 1's content store and writer against generation 2's), the shared
//! part is a macro or a generic type each object instantiates; where a generation cannot carry
//! a driver (a runtime through generations 1 and 2), the generation passes a refusal to the
//! root-module macros instead of an adapter.
//!
//! Every entry point the host can reach — root module functions and every method of every
//! driver object — runs inside [`guard`], which turns a panic into an `Internal` error
//! ("plugin <uri> panicked: <msg>"). A panic must never reach `abi_stable`'s FFI shims: it
//! would end the whole daemon.

pub(crate) mod content;
pub(crate) mod library;
pub(crate) mod runtime;
pub(crate) mod snapshot;

use std::{
    any::Any,
    mem::ManuallyDrop,
    ops::{Deref, DerefMut},
    panic::{catch_unwind, AssertUnwindSafe},
};

use abi_stable::std_types::{RResult, RString, RVec};

/// The FFI types every generation shares: generation 1's, which is where they were first
/// frozen.
pub(crate) use rcontainerd_plugin_abi_v1 as ffi;

use ffi::error::{FfiError, FfiErrorKind, FfiKeyValue};

// What `export_plugin_vN!` names in the plugin crate.
pub use library::{manifest_json, LibHeader, PluginEntry, PluginList};

use crate::{snapshot::Labels, ErrorKind, PluginError, Result};

/// The text of a caught panic's payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Runs `f`, turning a panic into `Internal` "plugin <uri> panicked: <msg>".
pub(crate) fn guard<T>(uri: &str, f: impl FnOnce() -> Result<T>) -> RResult<T, FfiError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => RResult::ROk(value),
        Ok(Err(err)) => RResult::RErr(err.into()),
        Err(payload) => RResult::RErr(
            PluginError::internal(format!(
                "plugin {uri} panicked: {}",
                panic_message(payload.as_ref())
            ))
            .into(),
        ),
    }
}

/// What a call into a loaded library returned, as a plain result.
pub(crate) fn into_result<T>(result: RResult<T, FfiError>) -> Result<T> {
    result.into_result().map_err(PluginError::from)
}

/// Owns a driver object and drops it inside `catch_unwind`: the host drops driver objects
/// through the FFI vtable, where a panicking `Drop` would end the daemon.
pub(crate) struct CatchDrop<T>(ManuallyDrop<T>);

impl<T> CatchDrop<T> {
    pub(crate) fn new(value: T) -> Self {
        CatchDrop(ManuallyDrop::new(value))
    }
}

impl<T> Deref for CatchDrop<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for CatchDrop<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> Drop for CatchDrop<T> {
    fn drop(&mut self) {
        let inner = &mut self.0;
        // A panic while dropping is reported by the plugin's own panic hook and swallowed.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `inner` is dropped exactly once, here, and never used again: this is
            // the owner's `Drop`.
            unsafe { ManuallyDrop::drop(inner) }
        }));
    }
}

pub(crate) fn strings_to_ffi(values: &[String]) -> RVec<RString> {
    values.iter().map(|v| RString::from(v.as_str())).collect()
}

pub(crate) fn strings_from_ffi(values: RVec<RString>) -> Vec<String> {
    values.into_iter().map(String::from).collect()
}

pub(crate) fn labels_to_ffi(labels: Labels) -> RVec<FfiKeyValue> {
    labels
        .into_iter()
        .map(|(key, value)| FfiKeyValue {
            key: key.into(),
            value: value.into(),
        })
        .collect()
}

pub(crate) fn labels_from_ffi(labels: RVec<FfiKeyValue>) -> Labels {
    labels
        .into_iter()
        .map(|kv| (kv.key.into(), kv.value.into()))
        .collect()
}

impl From<PluginError> for FfiError {
    fn from(err: PluginError) -> Self {
        let kind = match err.kind {
            ErrorKind::InvalidArgument => FfiErrorKind::InvalidArgument,
            ErrorKind::NotFound => FfiErrorKind::NotFound,
            ErrorKind::AlreadyExists => FfiErrorKind::AlreadyExists,
            ErrorKind::FailedPrecondition => FfiErrorKind::FailedPrecondition,
            ErrorKind::Unavailable => FfiErrorKind::Unavailable,
            ErrorKind::NotImplemented => FfiErrorKind::NotImplemented,
            ErrorKind::Internal => FfiErrorKind::Internal,
            ErrorKind::Unknown => FfiErrorKind::Unknown,
            ErrorKind::Skip => FfiErrorKind::Skip,
        };
        FfiError {
            kind,
            message: err.message.into(),
        }
    }
}

impl From<FfiError> for PluginError {
    fn from(err: FfiError) -> Self {
        let kind = match err.kind {
            FfiErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
            FfiErrorKind::NotFound => ErrorKind::NotFound,
            FfiErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            FfiErrorKind::FailedPrecondition => ErrorKind::FailedPrecondition,
            FfiErrorKind::Unavailable => ErrorKind::Unavailable,
            FfiErrorKind::NotImplemented => ErrorKind::NotImplemented,
            FfiErrorKind::Internal => ErrorKind::Internal,
            FfiErrorKind::Unknown => ErrorKind::Unknown,
            FfiErrorKind::Skip => ErrorKind::Skip,
        };
        PluginError::new(kind, err.message)
    }
}
