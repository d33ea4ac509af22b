//! Task runtimes across the boundary.
//!
//! Generations 1 and 2 carry a runtime *placeholder* (`FfiRuntime` of generation 1: create,
//! start, state, kill, delete, wait over a host-made bundle) that no driver ever used and that
//! cannot carry the runtime interface (the driver makes the bundle from the spec, processes are
//! named by exec id, events, …). A runtime offered through it is refused at init on both sides
//! of the boundary with [`PLACEHOLDER_REFUSED`], rather than half-served.

use std::sync::Arc;

use super::{ffi::runtime::FfiRuntimeBox, CatchDrop};
use crate::{runtime, Driver, PluginError, Result};

/// Why a runtime driver offered through generation 1 or 2 is refused.
pub const PLACEHOLDER_REFUSED: &str = "runtime drivers need ABI generation 3";

/// Plugin side, generations 1 and 2: a plugin whose init returned a runtime cannot export it.
/// Called inside the init guard, which also covers dropping the driver.
pub(crate) fn refuse_export<T>(inner: Arc<dyn runtime::Runtime>, uri: Arc<str>) -> Result<T> {
    drop(inner);
    Err(PluginError::failed_precondition(format!(
        "plugin {uri}: {PLACEHOLDER_REFUSED} (export it with export_plugin!)"
    )))
}

/// Host side, generations 1 and 2: a library that returned a placeholder runtime object.
pub(crate) fn refuse_foreign(inner: FfiRuntimeBox) -> Result<Driver> {
    // Dropped through its vtable, which runs plugin code: inside `catch_unwind`.
    drop(CatchDrop::new(inner));
    Err(PluginError::failed_precondition(PLACEHOLDER_REFUSED))
}
