//! The one place an error becomes a gRPC status: containerd's errdefs
//! mapping (see `docs/wire-facts.md#errors`), which lives in `rcontainerd-api`
//! so that the driver servers of `rcontainerd-proxy` answer the same way.

pub use rcontainerd_api::status::{code, IntoStatus};
