//! The stable boundary between the daemon and plugin libraries. All `unsafe` of the boundary
//! lives under this module.
//!
//! - [`tag`]: the plain, generation-independent symbols every plugin library exports (read
//!   before any ABI check, so that a refused library can still be named).
//! - [`v1`]: generation 1 — the plugin-side adapters the export macro instantiates and the
//!   host-side `Foreign…` drivers that implement the plain traits over a loaded library.

pub mod tag;
pub mod v1;
pub mod v2;

use std::any::Any;

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
