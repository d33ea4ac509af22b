//! A blob's labels, in a JSON sidecar beside (not inside) `blobs/sha256`, written only when the
//! blob has labels. The host keeps the authoritative, per-namespace labels in its metadata
//! store; these serve direct users of the driver, so they are replaced atomically but not
//! fsynced.

use std::{fs, io::ErrorKind as IoKind};

use rcontainerd_plugin_api::{snapshot::Labels, PluginError, Result};

use crate::{
    digest::BlobDigest,
    layout::{modified_nanos, replace_file, Layout},
};

/// The labels of `digest` and when they last changed (`None` when it has none).
pub fn load(layout: &Layout, digest: &BlobDigest) -> Result<(Labels, Option<i64>)> {
    let path = layout.labels(digest);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == IoKind::NotFound => return Ok((Labels::new(), None)),
        Err(err) => return Err(PluginError::io(format!("read {}", path.display()), err)),
    };
    let labels = serde_json::from_slice(&bytes).map_err(|err| {
        PluginError::internal(format!("labels of content {digest} are corrupt: {err}"))
    })?;
    let changed = fs::metadata(&path).map(|meta| modified_nanos(&meta)).ok();
    Ok((labels, changed))
}

/// Replaces the labels of `digest`; empty labels remove the sidecar.
pub fn save(layout: &Layout, digest: &BlobDigest, labels: &Labels) -> Result<()> {
    if labels.is_empty() {
        return remove(layout, digest);
    }
    let bytes = serde_json::to_vec(labels).map_err(|err| {
        PluginError::internal(format!("encode labels of content {digest}: {err}"))
    })?;
    replace_file(&layout.labels(digest), &bytes)
}

pub fn remove(layout: &Layout, digest: &BlobDigest) -> Result<()> {
    let path = layout.labels(digest);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == IoKind::NotFound => Ok(()),
        Err(err) => Err(PluginError::io(format!("remove {}", path.display()), err)),
    }
}
