//! One module per top-level command.

pub mod container_create;
pub mod containers;
pub mod content;
pub mod events;
pub mod image_export;
pub mod image_import;
pub mod image_mount;
pub mod image_pull;
pub mod images;
pub mod leases;
pub mod namespaces;
pub mod plugins;
pub mod run;
pub mod snapshot_diff;
pub mod snapshots;
pub mod tasks;
pub mod version;
