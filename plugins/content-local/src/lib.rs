//! `io.containerd.content.v1.content`: blobs and resumable ingests on the local filesystem.
//!
//! Blobs live once, by digest, at `<root>/blobs/sha256/<hex>` (containerd's layout); ingests in
//! `<root>/ingest/<sha256(ref)>/` (see the `layout` module). Per-namespace visibility and
//! records are the host's: this driver stores bytes. Its labels (the `labels` module) serve
//! direct users of the driver.
//!
//! Behaviour the host can rely on:
//! - An ingest survives restarts and crashes: its offset is the data file's length, and a
//!   resumed writer rebuilds the hash from the data when it is first needed (the daemon asks
//!   for the running digest as it opens a writer, which a client's STAT needs anyway).
//! - `write` must be at the current offset (else `InvalidArgument`); `truncate(n)` takes any
//!   `n` up to the offset.
//! - `commit` checks the size (given now, else at open; 0 means any), then the digest (same
//!   rule), both `FailedPrecondition` with containerd's wording, keeping the ingest; then fsyncs
//!   the data, links it into `blobs/sha256` (never replacing a blob) and fsyncs that directory.
//!   A blob that already exists is `AlreadyExists "content sha256:…"` and the ingest is removed.
//!   Opening a writer whose expected digest is already stored answers the same, as containerd's
//!   local store does.
//! - One open writer per ref in this process: a second is `Unavailable "ref … locked for …"`;
//!   `abort` of a ref with an open writer is refused the same way. Dropping, closing or
//!   committing a writer releases its ref.
//! - Only sha256 is computed: other well-formed digests are `NotImplemented`, malformed ones
//!   `InvalidArgument`.

mod digest;
mod hasher;
mod ingest;
mod labels;
mod layout;
mod locks;
mod reader;
mod store;
mod writeback;
mod writer;

use std::sync::Arc;

#[cfg(feature = "export")]
use rcontainerd_plugin_api::export_plugin;
use rcontainerd_plugin_api::{Driver, InitContext, Manifest, Plugin, PluginInstance, Result};

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

#[cfg(feature = "export")]
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
