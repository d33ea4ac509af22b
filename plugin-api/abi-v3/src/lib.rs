//! Generation 3 of rcontainerd's stable plugin ABI.
//!
//! What changed from generation 2: the task runtime. Generations 1 and 2 carried a runtime
//! placeholder no driver ever used; generation 3 carries the real runtime interface
//! (`runtime::FfiRuntime`: tasks and exec processes by `FfiProcessRef`, the driver making the
//! bundle from the spec, stdio, pids, pause/resume, update, stats, events, …). Everything
//! generation 3 did not change is generation 2's own type, re-exported: the same layout,
//! package and version on both sides of the boundary.
//!
//! Like generations 1 and 2 this crate is **frozen** once released: only appends after a
//! `#[sabi(last_prefix_field)]` are allowed, and anything else needs a new generation (see
//! `docs/abi.md`).

#![allow(non_camel_case_types)]

pub mod manifest;
pub mod module;
pub mod runtime;

pub use abi_stable;
pub use rcontainerd_plugin_abi_v2::{content, error, snapshot};

/// The ABI generation this crate defines.
pub const GENERATION: u32 = 3;

/// The version string every generation-3 root module carries. Constant on purpose: a
/// crate-version bump must never reject already-built plugins.
pub const VERSION: &str = "1.0.0";
