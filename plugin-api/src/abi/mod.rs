//! The stable boundary between the daemon and plugin libraries. All `unsafe` of the boundary
//! lives under this module.
//!
//! - [`tag`]: the plain, generation-independent symbols every plugin library exports (read
//!   before any ABI check, so that a refused library can still be named).
//! - [`shared`]: the adapters every generation shares, by driver kind — plain traits ⇄ FFI
//!   objects on the plugin side (`…Export`), FFI objects ⇄ plain traits on the host side
//!   (`Foreign…`) — and the macros that build a generation's root module from them.
//! - [`v1`], [`v2`], [`v3`]: one module per generation, holding only that generation's
//!   instantiations (its root module and checked module, and generation 1's content objects)
//!   and its `export_plugin_vN!`.

pub mod shared;
pub mod tag;
pub mod v1;
pub mod v2;
pub mod v3;
