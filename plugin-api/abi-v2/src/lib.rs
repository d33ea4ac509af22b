//! Generation 2 of rcontainerd's stable plugin ABI.
//!
//! What changed from generation 1: a content writer reports the digest of the data written so
//! far (`FfiContentWriter::digest`), so the daemon need not hash every byte a second time.
//! Everything generation 2 did not change is generation 1's own type, re-exported: the same
//! layout, package and version on both sides of the boundary.
//!
//! Like generation 1 this crate is **frozen** once released: only appends after a
//! `#[sabi(last_prefix_field)]` are allowed, and anything else needs a new generation (see
//! `docs/abi.md`).

#![allow(non_camel_case_types)]

pub mod content;
pub mod manifest;
pub mod module;

pub use abi_stable;
pub use rcontainerd_plugin_abi_v1::{error, runtime, snapshot};

/// The ABI generation this crate defines.
pub const GENERATION: u32 = 2;

/// The version string every generation-2 root module carries. Constant on purpose: a
/// crate-version bump must never reject already-built plugins.
pub const VERSION: &str = "1.0.0";
