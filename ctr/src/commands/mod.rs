//! One module per top-level command.

pub mod content;
pub mod namespaces;
pub mod plugins;
pub mod snapshots;
pub mod version;
