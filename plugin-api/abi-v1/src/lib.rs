//! Generation 1 of rcontainerd's stable plugin ABI.
//!
//! Everything here crosses the boundary between the daemon and a plugin library, so it is
//! **frozen**: once released, no type in this crate changes shape. `abi_stable` checks every
//! type's layout, and the package name and version of this crate, when a library is loaded.
//! A change that is not a pure append after a `#[sabi(last_prefix_field)]` belongs in a new
//! generation crate beside this one (see `docs/abi.md`).
//!
//! Driver authors never use this crate directly: `rcontainerd-plugin-api` converts between
//! these types and its plain Rust traits.

#![allow(non_camel_case_types)]

pub mod content;
pub mod error;
pub mod manifest;
pub mod module;
pub mod runtime;
pub mod snapshot;

pub use abi_stable;

/// The ABI generation this crate defines.
pub const GENERATION: u32 = 1;

/// The version string every generation-1 root module carries. Constant on purpose: a
/// crate-version bump must never reject already-built plugins.
pub const VERSION: &str = "1.0.0";
