//! ttrpc: the RPC protocol between containerd and its shims, over tokio.
//!
//! ttrpc is gRPC's request/response model without HTTP/2: length-prefixed
//! frames on a unix socket, each carrying a protobuf `Request` (service,
//! method, payload, timeout, metadata) or `Response` (a `google.rpc.Status`
//! and a payload). This crate speaks the unary protocol of Go ttrpc 1.1, which
//! containerd 1.6 and its shims use; message payloads are prost messages,
//! so the service (e.g. `containerd.task.v2.Task` or `…v3.Task`) is just a
//! string chosen at run time.
//!
//! - [`Client`] dials a shim (or any ttrpc server) and multiplexes concurrent
//!   calls on one connection.
//! - [`Server`] serves unary methods registered by (service, method), e.g. the
//!   events service a shim forwards its events to.
//! - [`blocking`] is both sides on blocking sockets, a call at a time per
//!   connection: for private sockets between our own processes.
//!
//! The protocol, and what containerd 1.6's runc shim does over it, are in
//! `docs/wire-facts.md#ttrpc`.

mod address;
pub mod blocking;
mod client;
mod error;
mod frame;
mod proto;
mod server;

pub use client::Client;
pub use error::{code, Error, Status};
pub use frame::MAX_MESSAGE_LEN;
pub use server::{Request, Server};
