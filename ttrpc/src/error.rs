//! What a call can fail with, and the status a handler answers with.

/// gRPC status codes, which ttrpc carries in its responses.
pub mod code {
    pub const OK: i32 = 0;
    pub const CANCELLED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const ALREADY_EXISTS: i32 = 6;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const ABORTED: i32 = 10;
    pub const OUT_OF_RANGE: i32 = 11;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
    pub const DATA_LOSS: i32 = 15;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// A call's failure as the server reports it: a gRPC code and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct Status {
    pub code: i32,
    pub message: String,
}

impl Status {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Status {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_ARGUMENT, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(code::NOT_FOUND, message)
    }

    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(code::UNIMPLEMENTED, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(code::INTERNAL, message)
    }
}

/// Why a call (or dialling) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Dialling, or an I/O error on the connection other than its closing.
    #[error("ttrpc i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The connection is closed (the peer went away, or the client was
    /// closed); calls in flight when it closed fail with this too.
    #[error("ttrpc connection closed")]
    Closed,
    /// The server answered with a status other than OK.
    #[error("ttrpc status {code}: {message}")]
    Status { code: i32, message: String },
    /// A message larger than ttrpc's limit ([`crate::MAX_MESSAGE_LEN`]).
    #[error("ttrpc message of {len} bytes exceeds the limit of {max} bytes", max = crate::MAX_MESSAGE_LEN)]
    FrameTooLarge { len: usize },
    /// The response (or its payload) is not the expected protobuf message.
    #[error("ttrpc decode: {0}")]
    Decode(#[from] prost::DecodeError),
    /// No response within the call's timeout.
    #[error("ttrpc call timed out")]
    Timeout,
}

impl Error {
    /// The gRPC code of a [`Error::Status`].
    pub fn code(&self) -> Option<i32> {
        match self {
            Error::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<Status> for Error {
    fn from(s: Status) -> Self {
        Error::Status {
            code: s.code,
            message: s.message,
        }
    }
}
