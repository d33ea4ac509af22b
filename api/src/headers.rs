//! The gRPC metadata keys containerd reads from a call, for clients that send
//! them and the daemon that reads them.

/// The namespace a call works in (`containerd-namespace`). Namespaced
/// services fail a call without it with `FailedPrecondition`.
pub const NAMESPACE: &str = "containerd-namespace";

/// The lease that resources created by a call are attached to
/// (`containerd-lease`), keeping containerd's garbage collector off them.
pub const LEASE: &str = "containerd-lease";
