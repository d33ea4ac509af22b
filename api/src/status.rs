//! The one place an error becomes a gRPC status: containerd's errdefs
//! mapping (see `docs/wire-facts.md#errors`). Shared by the daemon's
//! services and the driver servers of `rcontainerd-proxy`.

use rcontainerd_pkg::errdefs::{Error, Kind};
use tonic::{Code, Status};

/// The gRPC code containerd uses for each error class.
pub fn code(kind: Kind) -> Code {
    match kind {
        Kind::InvalidArgument => Code::InvalidArgument,
        Kind::NotFound => Code::NotFound,
        Kind::AlreadyExists => Code::AlreadyExists,
        Kind::FailedPrecondition => Code::FailedPrecondition,
        Kind::Unavailable => Code::Unavailable,
        Kind::NotImplemented => Code::Unimplemented,
        Kind::Canceled => Code::Cancelled,
        Kind::DeadlineExceeded => Code::DeadlineExceeded,
        Kind::OutOfRange => Code::OutOfRange,
        Kind::DataLoss => Code::DataLoss,
        Kind::Unknown => Code::Unknown,
        Kind::Internal => Code::Internal,
    }
}

/// `error` as the status a client sees: the class's code, and the message
/// with containerd's class suffix unless the error is bare.
pub trait IntoStatus {
    fn into_status(self) -> Status;
}

impl IntoStatus for Error {
    fn into_status(self) -> Status {
        Status::new(code(self.kind), self.wire_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_carries_code_and_suffix_once() {
        let s = Error::not_found("content sha256:x").into_status();
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.message(), "content sha256:x: not found");
        let s = Error::not_found("already: not found").into_status();
        assert_eq!(s.message(), "already: not found");
        let s = Error::invalid_argument("\"x\" failed validation")
            .bare()
            .into_status();
        assert_eq!(s.message(), "\"x\" failed validation");
        assert_eq!(Error::internal("disk").into_status().code(), Code::Internal);
    }
}
