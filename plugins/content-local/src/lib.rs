//! `io.containerd.content.v1.content`: blobs and ingests on the local filesystem
//! (`<root>/blobs/sha256/<hex>`, `<root>/ingest/<ref hash>`). This issue sets up the layout; the
//! store operations come next.

use std::{fs, path::PathBuf, sync::Arc};

use rcontainerd_plugin_api::{
    content::{Info, Reader, Status, Store, Writer, WriterOptions},
    export_plugin, Driver, InitContext, Manifest, Plugin, PluginError, PluginInstance, Result,
};

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
        for dir in [
            ctx.root.join("blobs").join("sha256"),
            ctx.root.join("ingest"),
        ] {
            fs::create_dir_all(&dir).map_err(|err| {
                PluginError::io(format!("create content directory {}", dir.display()), err)
            })?;
        }
        let store = LocalStore {
            root: ctx.root.clone(),
        };
        Ok(PluginInstance::new(Driver::Content(Arc::new(store)))
            .export("root", ctx.root.to_string_lossy()))
    }
}

/// The store; operations are not implemented yet.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    fn not_implemented(&self, operation: &str) -> PluginError {
        PluginError::not_implemented(format_args!(
            "content store ({}): {operation}",
            self.root.display()
        ))
    }
}

impl Store for LocalStore {
    fn info(&self, _digest: &str) -> Result<Info> {
        Err(self.not_implemented("info"))
    }

    fn update(&self, _info: Info, _fieldpaths: &[String]) -> Result<Info> {
        Err(self.not_implemented("update"))
    }

    fn list(&self) -> Result<Vec<Info>> {
        Err(self.not_implemented("list"))
    }

    fn delete(&self, _digest: &str) -> Result<()> {
        Err(self.not_implemented("delete"))
    }

    fn reader(&self, _digest: &str) -> Result<Box<dyn Reader>> {
        Err(self.not_implemented("reader"))
    }

    fn writer(&self, _options: WriterOptions) -> Result<Box<dyn Writer>> {
        Err(self.not_implemented("writer"))
    }

    fn status(&self, _reference: &str) -> Result<Status> {
        Err(self.not_implemented("status"))
    }

    fn list_statuses(&self) -> Result<Vec<Status>> {
        Err(self.not_implemented("list statuses"))
    }

    fn abort(&self, _reference: &str) -> Result<()> {
        Err(self.not_implemented("abort"))
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
