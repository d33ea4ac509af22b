//! `io.containerd.content.v1.content`: blobs and resumable ingests on the local filesystem.
//!
//! Blobs live once, by digest, at `<root>/blobs/sha256/<hex>` (containerd's layout); ingests in
//! `<root>/ingest/<sha256(ref)>/`. Per-namespace visibility and records are the host's: this
//! driver stores bytes. Its labels (see [`labels`]) serve direct users of the driver.

mod digest;
mod hasher;
mod ingest;
mod labels;
mod layout;
mod locks;
mod reader;
mod store;
mod writer;

use std::sync::Arc;

use rcontainerd_plugin_api::{
    export_plugin, Driver, InitContext, Manifest, Plugin, PluginInstance, Result,
};

pub use store::LocalStore;

pub const PLUGIN_TYPE: &str = "io.containerd.content.v1";
pub const PLUGIN_ID: &str = "content";

/// The plugin registration.
pub struct LocalContentPlugin;

impl Plugin for LocalContentPlugin {
    fn manifest() -> Manifest {
        // containerd's local content store takes no configuration.
        Manifest::new(PLUGIN_TYPE, PLUGIN_ID)
    }

    fn init(ctx: InitContext) -> Result<PluginInstance> {
        let store = LocalStore::open(ctx.root.clone())?;
        Ok(PluginInstance::new(Driver::Content(Arc::new(store)))
            .export("root", ctx.root.to_string_lossy()))
    }
}

export_plugin!(LocalContentPlugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_the_blob_and_ingest_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("io.containerd.content.v1.content");
        let instance = LocalContentPlugin::init(InitContext {
            root: root.clone(),
            ..InitContext::default()
        })
        .unwrap();
        assert!(root.join("blobs/sha256").is_dir());
        assert!(root.join("ingest").is_dir());
        assert_eq!(instance.exports["root"], root.to_string_lossy());
        assert!(matches!(instance.driver, Driver::Content(_)));
    }
}
