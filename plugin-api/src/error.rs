//! The one error type every driver operation returns.

use std::fmt;

/// The class of a failure. Mirrors containerd's error definitions (the host maps each class to
/// a gRPC code once, at its edge) plus [`ErrorKind::Skip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    Unavailable,
    NotImplemented,
    Internal,
    Unknown,
    /// The plugin declines to run on this host ("skip plugin"); reported, not a failure.
    Skip,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::FailedPrecondition => "failed precondition",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotImplemented => "not implemented",
            ErrorKind::Internal => "internal",
            ErrorKind::Unknown => "unknown",
            ErrorKind::Skip => "skip plugin",
        })
    }
}

/// The suffix containerd (and `ctr plugins ls`) recognises in a skipped plugin's init error.
pub const SKIP_SUFFIX: &str = "skip plugin";

/// A failed driver or plugin operation: its class and a lower-case message naming the object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PluginError {
    pub kind: ErrorKind,
    pub message: String,
}

/// The result of every plugin and driver operation.
pub type Result<T, E = PluginError> = std::result::Result<T, E>;

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            message: message.into(),
        }
    }

    /// The plugin declines to run here; the message gets the `: skip plugin` suffix that
    /// operators and `ctr plugins ls` look for.
    pub fn skip(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let message = if reason.ends_with(SKIP_SUFFIX) {
            reason
        } else {
            format!("{reason}: {SKIP_SUFFIX}")
        };
        PluginError::new(ErrorKind::Skip, message)
    }

    /// True for a skip, also one that arrived only as a message ending in "skip plugin".
    pub fn is_skip(&self) -> bool {
        self.kind == ErrorKind::Skip || self.message.ends_with(SKIP_SUFFIX)
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        PluginError::new(ErrorKind::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        PluginError::new(ErrorKind::NotFound, message)
    }

    pub fn already_exists(message: impl Into<String>) -> Self {
        PluginError::new(ErrorKind::AlreadyExists, message)
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        PluginError::new(ErrorKind::FailedPrecondition, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        PluginError::new(ErrorKind::Unavailable, message)
    }

    /// `what` names the operation, e.g. `"snapshotter native: prepare"`.
    pub fn not_implemented(what: impl fmt::Display) -> Self {
        PluginError::new(
            ErrorKind::NotImplemented,
            format!("{what}: not implemented"),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        PluginError::new(ErrorKind::Internal, message)
    }

    /// Wraps an I/O failure on `what` (a path or object), classifying common OS errors.
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            std::io::ErrorKind::InvalidInput => ErrorKind::InvalidArgument,
            _ => ErrorKind::Unknown,
        };
        PluginError::new(kind, format!("{what}: {err}"))
    }
}

/// The host's view of a driver failure: same class, same message. A skip is
/// judged before conversion (the registry reports it), so it maps to Unknown.
impl From<PluginError> for rcontainerd_pkg::errdefs::Error {
    fn from(e: PluginError) -> Self {
        use rcontainerd_pkg::errdefs::Kind;
        let kind = match e.kind {
            ErrorKind::InvalidArgument => Kind::InvalidArgument,
            ErrorKind::NotFound => Kind::NotFound,
            ErrorKind::AlreadyExists => Kind::AlreadyExists,
            ErrorKind::FailedPrecondition => Kind::FailedPrecondition,
            ErrorKind::Unavailable => Kind::Unavailable,
            ErrorKind::NotImplemented => Kind::NotImplemented,
            ErrorKind::Internal => Kind::Internal,
            ErrorKind::Unknown | ErrorKind::Skip => Kind::Unknown,
        };
        rcontainerd_pkg::errdefs::Error::new(kind, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_appends_the_suffix_once() {
        let err = PluginError::skip("/var/lib/x is not a btrfs filesystem");
        assert_eq!(
            err.message,
            "/var/lib/x is not a btrfs filesystem: skip plugin"
        );
        assert!(err.is_skip());
        let again = PluginError::skip(err.message.clone());
        assert_eq!(again.message, err.message);
    }

    #[test]
    fn a_message_ending_in_skip_plugin_is_a_skip() {
        let err = PluginError::new(ErrorKind::Unknown, "no overlay: skip plugin");
        assert!(err.is_skip());
        assert!(!PluginError::internal("boom").is_skip());
    }

    #[test]
    fn display_is_the_message() {
        let err = PluginError::not_implemented("snapshotter native: prepare");
        assert_eq!(
            err.to_string(),
            "snapshotter native: prepare: not implemented"
        );
        assert_eq!(err.kind, ErrorKind::NotImplemented);
    }
}
