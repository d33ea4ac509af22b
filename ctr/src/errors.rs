//! Turns gRPC failures into the messages containerd's ctr prints.
//!
//! containerd's client classifies every failed call by its gRPC code into an
//! error class (`not found`, `already exists`, ...) and prints
//! `<server message without the class suffix>: <class>`, or just the class
//! when the server said nothing else. The code therefore decides the text.

use std::fmt;

use tonic::{Code, Status};

/// A failed call, printed the way containerd's client prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// The gRPC code the server answered with.
    pub code: Code,
    message: String,
}

impl RpcError {
    /// The error a call ending in `status` reports.
    pub fn from_status(status: &Status) -> Self {
        Self::new(status.code(), status.message())
    }

    /// The error for a call that ended with `code` and server message `message`.
    pub fn new(code: Code, message: &str) -> Self {
        let class = error_class(code);
        let message = if message == class {
            class.to_owned()
        } else {
            let base = message
                .strip_suffix(class)
                .and_then(|rest| rest.strip_suffix(": "))
                .unwrap_or(message);
            if base.is_empty() {
                class.to_owned()
            } else {
                format!("{base}: {class}")
            }
        };
        Self { code, message }
    }

    /// This error's code, and the error with `context: ` before it.
    pub fn code_and(self, context: String) -> (Code, anyhow::Error) {
        (self.code, anyhow::anyhow!("{context}: {self}"))
    }

    /// The error a call reports when it runs past `--timeout`.
    pub fn deadline_exceeded() -> Self {
        Self::new(Code::DeadlineExceeded, "")
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RpcError {}

/// The end of a command that ran a process: ctr exits with the process's
/// status and prints nothing (urfave/cli's `NewExitError("", code)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus(pub u32);

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for ExitStatus {}

impl From<Status> for RpcError {
    fn from(status: Status) -> Self {
        Self::from_status(&status)
    }
}

/// A failure passed on unclassified, in grpc-go's words
/// (`rpc error: code = NotFound desc = ...`); containerd's client reports a
/// failed Version call this way.
pub fn unclassified(status: &Status) -> String {
    format!(
        "rpc error: code = {} desc = {}",
        code_name(status.code() as i32),
        status.message()
    )
}

/// The error class text containerd's client uses for a gRPC code.
fn error_class(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument => "invalid argument",
        Code::AlreadyExists => "already exists",
        Code::NotFound => "not found",
        Code::Unavailable => "unavailable",
        Code::FailedPrecondition => "failed precondition",
        Code::Unimplemented => "not implemented",
        Code::Cancelled => "context canceled",
        Code::DeadlineExceeded => "context deadline exceeded",
        _ => "unknown",
    }
}

/// Go's name for a gRPC code (`codes.Code.String()`), as the detailed plugin
/// listing prints it.
pub fn code_name(code: i32) -> String {
    let name = match code {
        0 => "OK",
        1 => "Canceled",
        2 => "Unknown",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        6 => "AlreadyExists",
        7 => "PermissionDenied",
        8 => "ResourceExhausted",
        9 => "FailedPrecondition",
        10 => "Aborted",
        11 => "OutOfRange",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        15 => "DataLoss",
        16 => "Unauthenticated",
        other => return format!("Code({other})"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::{code_name, unclassified, RpcError};
    use tonic::Code;

    #[test]
    fn keeps_a_message_that_already_ends_in_its_class() {
        let err = RpcError::new(Code::NotFound, "namespace \"x\": not found");
        assert_eq!(err.to_string(), "namespace \"x\": not found");
    }

    #[test]
    fn appends_the_class_when_the_message_lacks_it() {
        let err = RpcError::new(Code::AlreadyExists, "namespace \"foo\"");
        assert_eq!(err.to_string(), "namespace \"foo\": already exists");
        let err = RpcError::new(Code::Internal, "boom");
        assert_eq!(err.to_string(), "boom: unknown");
    }

    #[test]
    fn strips_only_one_class_suffix() {
        // containerd's filter errors carry the class twice; ctr prints both.
        let message = "filters: parse error: [id==]: expected value or quoted: invalid argument: invalid argument";
        let err = RpcError::new(Code::InvalidArgument, message);
        assert_eq!(err.to_string(), message);
    }

    #[test]
    fn an_empty_or_bare_class_message_prints_the_class() {
        assert_eq!(
            RpcError::new(Code::Unimplemented, "").to_string(),
            "not implemented"
        );
        assert_eq!(
            RpcError::new(Code::NotFound, "not found").to_string(),
            "not found"
        );
        assert_eq!(
            RpcError::deadline_exceeded().to_string(),
            "context deadline exceeded"
        );
    }

    #[test]
    fn a_suffix_without_separator_is_not_stripped() {
        let err = RpcError::new(Code::NotFound, "file not found");
        assert_eq!(err.to_string(), "file not found: not found");
    }

    #[test]
    fn unclassified_failures_read_like_grpc_go() {
        let status = tonic::Status::unimplemented("unknown service x.Version");
        assert_eq!(
            unclassified(&status),
            "rpc error: code = Unimplemented desc = unknown service x.Version"
        );
    }

    #[test]
    fn names_codes_like_go() {
        assert_eq!(code_name(2), "Unknown");
        assert_eq!(code_name(9), "FailedPrecondition");
        assert_eq!(code_name(1), "Canceled");
        assert_eq!(code_name(42), "Code(42)");
    }
}
