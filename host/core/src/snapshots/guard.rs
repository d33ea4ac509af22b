//! Calls into a snapshotter driver, with panics turned into errors.
//!
//! Loaded plugins catch their own panics at the ABI boundary; a driver linked
//! into the daemon (tests, built-ins) would unwind into the host instead.
//! Either way the caller gets an `Internal` error and can clean up.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rcontainerd_plugin_api::Result as PluginResult;

use rcontainerd_pkg::errdefs::{Error, Result};

/// Runs `call` (operation `operation` of snapshotter `snapshotter`).
pub fn call<T>(
    snapshotter: &str,
    operation: &str,
    call: impl FnOnce() -> PluginResult<T>,
) -> Result<T> {
    // The driver is only reached through `&self`; a panic leaves the host's
    // own state untouched, so unwinding past the closure is safe to observe.
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(result) => result.map_err(Error::from),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            tracing::error!(snapshotter, operation, panic = %message, "snapshotter panicked");
            Err(Error::internal(format!(
                "snapshotter {snapshotter} panicked in {operation}: {message}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcontainerd_pkg::errdefs::Kind;
    use rcontainerd_plugin_api::PluginError;

    #[test]
    fn errors_keep_their_class_and_panics_become_internal() {
        let err = call::<()>("native", "stat", || Err(PluginError::not_found("x"))).unwrap_err();
        assert_eq!(err.kind, Kind::NotFound);
        let err = call::<()>("native", "prepare", || panic!("boom")).unwrap_err();
        assert_eq!(err.kind, Kind::Internal);
        assert_eq!(err.message, "snapshotter native panicked in prepare: boom");
        assert_eq!(call("native", "usage", || Ok(3)).unwrap(), 3);
    }
}
