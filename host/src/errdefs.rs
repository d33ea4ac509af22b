//! The daemon's error classes, mapped to gRPC codes in exactly one place.
//!
//! These mirror containerd's `errdefs` package: every layer (metadata, loader,
//! services) returns an [`Error`] with a kind and a lower-case message saying
//! what and which object; [`Error::into_status`] turns it into the status that
//! containerd would send for the same class (clients such as containerd's
//! `ctr` print a suffix derived from the code, e.g. `: not found`).

use rcontainerd_plugin_api::{ErrorKind as PluginErrorKind, PluginError};
use tonic::{Code, Status};

/// An error class, as in containerd's errdefs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    Unavailable,
    NotImplemented,
    Canceled,
    DeadlineExceeded,
    OutOfRange,
    /// Anything without a better class (containerd answers `Unknown`).
    Unknown,
    /// A fault on our side (a plugin panic, a storage failure).
    Internal,
}

/// An error with its class and a lower-case message naming the object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: Kind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(Kind::AlreadyExists, message)
    }
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(Kind::FailedPrecondition, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Kind::Unavailable, message)
    }
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(Kind::NotImplemented, message)
    }
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(Kind::Unknown, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }

    /// Prefixes the message with context, keeping the class.
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub fn is(&self, kind: Kind) -> bool {
        self.kind == kind
    }

    /// The gRPC code containerd uses for this class.
    pub fn code(&self) -> Code {
        match self.kind {
            Kind::InvalidArgument => Code::InvalidArgument,
            Kind::NotFound => Code::NotFound,
            Kind::AlreadyExists => Code::AlreadyExists,
            Kind::FailedPrecondition => Code::FailedPrecondition,
            Kind::Unavailable => Code::Unavailable,
            Kind::NotImplemented => Code::Unimplemented,
            Kind::Canceled => Code::Cancelled,
            Kind::DeadlineExceeded => Code::DeadlineExceeded,
            Kind::OutOfRange => Code::OutOfRange,
            Kind::Unknown => Code::Unknown,
            Kind::Internal => Code::Internal,
        }
    }

    /// containerd's Go errors append the class to the message
    /// (`…: not found`); its gRPC statuses carry that text. Clients such as
    /// `ctr` print the status message as is, so we append the same suffix.
    pub fn into_status(self) -> Status {
        let code = self.code();
        let suffix = match self.kind {
            Kind::InvalidArgument => Some("invalid argument"),
            Kind::NotFound => Some("not found"),
            Kind::AlreadyExists => Some("already exists"),
            Kind::FailedPrecondition => Some("failed precondition"),
            Kind::Unavailable => Some("unavailable"),
            Kind::NotImplemented => Some("not implemented"),
            _ => None,
        };
        let message = match suffix {
            Some(s) if !self.message.ends_with(s) => format!("{}: {s}", self.message),
            _ => self.message,
        };
        Status::new(code, message)
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        e.into_status()
    }
}

impl From<PluginError> for Error {
    fn from(e: PluginError) -> Error {
        let kind = match e.kind {
            PluginErrorKind::InvalidArgument => Kind::InvalidArgument,
            PluginErrorKind::NotFound => Kind::NotFound,
            PluginErrorKind::AlreadyExists => Kind::AlreadyExists,
            PluginErrorKind::FailedPrecondition => Kind::FailedPrecondition,
            PluginErrorKind::Unavailable => Kind::Unavailable,
            PluginErrorKind::NotImplemented => Kind::NotImplemented,
            PluginErrorKind::Internal => Kind::Internal,
            _ => Kind::Unknown,
        };
        Error::new(kind, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_carries_code_and_suffix_once() {
        let s = Error::not_found("namespace \"x\"").into_status();
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.message(), "namespace \"x\": not found");
        let s = Error::not_found("lease does not exist: not found").into_status();
        assert_eq!(s.message(), "lease does not exist: not found");
        let s = Error::unknown("key required").into_status();
        assert_eq!((s.code(), s.message()), (Code::Unknown, "key required"));
    }
}
