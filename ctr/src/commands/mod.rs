//! One module per top-level command.

pub mod namespaces;
pub mod plugins;
pub mod version;
