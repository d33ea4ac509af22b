//! rcontainerd, the daemon: configuration, plugin registry and loader,
//! metadata store, gRPC services and server. The binary (`main.rs`) is a
//! thin command line over [`daemon::run`].

pub mod config;
pub mod content;
pub mod daemon;
pub mod errdefs;
pub mod filters;
pub mod identifiers;
pub mod metadata;
pub mod plugin;
pub mod server;
pub mod services;
pub mod snapshots;
