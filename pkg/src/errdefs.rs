//! containerd's error classes ("errdefs"): every layer of the daemon returns an [`Error`] with a
//! [`Kind`] and a lower-case message saying what and which object.
//!
//! The kind decides the gRPC code, mapped in exactly one place at the daemon's edge
//! (`rcontainerd-services`); clients such as containerd's `ctr` print a suffix derived from the
//! code (`: not found`), and containerd's own messages end with the class's words, which
//! [`Error::wire_message`] reproduces.

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
    /// Data was lost or corrupted underway (a short write).
    DataLoss,
    /// Anything without a better class (containerd answers `Unknown`).
    Unknown,
    /// A fault on our side (a plugin panic, a storage failure).
    Internal,
}

impl Kind {
    /// The words containerd's Go errors of this class end with, if any.
    pub fn suffix(self) -> Option<&'static str> {
        match self {
            Kind::InvalidArgument => Some("invalid argument"),
            Kind::NotFound => Some("not found"),
            Kind::AlreadyExists => Some("already exists"),
            Kind::FailedPrecondition => Some("failed precondition"),
            Kind::Unavailable => Some("unavailable"),
            Kind::NotImplemented => Some("not implemented"),
            _ => None,
        }
    }
}

/// An error with its class and a lower-case message naming the object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    /// Whether the wire message ends with the class's words ([`Kind::suffix`]); containerd's
    /// services answer a few checks with a bare message (e.g. a digest that fails validation).
    pub suffixed: bool,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            suffixed: true,
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
    pub fn out_of_range(message: impl Into<String>) -> Self {
        Self::new(Kind::OutOfRange, message)
    }
    pub fn data_loss(message: impl Into<String>) -> Self {
        Error::new(Kind::DataLoss, message)
    }
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(Kind::Unknown, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }

    /// The same error, sent without the class's words at the end.
    pub fn bare(mut self) -> Self {
        self.suffixed = false;
        self
    }

    /// Prefixes the message with context, keeping the class.
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub fn is(&self, kind: Kind) -> bool {
        self.kind == kind
    }

    /// The message as containerd sends it: its Go errors append the class to the message
    /// (`…: not found`), once.
    pub fn wire_message(&self) -> String {
        match self.kind.suffix() {
            Some(s) if self.suffixed && !self.message.ends_with(s) => {
                format!("{}: {s}", self.message)
            }
            _ => self.message.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_message_carries_the_suffix_once() {
        let e = Error::not_found("namespace \"x\"");
        assert_eq!(e.wire_message(), "namespace \"x\": not found");
        let e = Error::not_found("lease does not exist: not found");
        assert_eq!(e.wire_message(), "lease does not exist: not found");
        let e = Error::unknown("key required");
        assert_eq!(e.wire_message(), "key required");
    }

    #[test]
    fn a_bare_error_keeps_its_message() {
        let e = Error::invalid_argument("\"x\" failed validation").bare();
        assert_eq!(e.wire_message(), "\"x\" failed validation");
        assert_eq!(e.kind, Kind::InvalidArgument);
    }
}
