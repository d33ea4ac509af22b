//! Where things live under the plugin root, and the filesystem helpers every module shares.
//!
//! ```text
//! <root>/blobs/sha256/<hex>          committed blobs, read-only
//! <root>/labels/sha256/<hex>         labels of a blob (JSON), only when it has any
//! <root>/ingest/<sha256(ref) hex>/   one ingest: `data` and `state` (JSON)
//! ```

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use rcontainerd_plugin_api::{PluginError, Result};

use crate::digest::{sha256_hex, BlobDigest};

/// The directory layout of one store.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: PathBuf) -> Self {
        Layout { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the store's directories.
    pub fn create(&self) -> Result<()> {
        for dir in [self.blobs_dir(), self.labels_dir(), self.ingests_dir()] {
            fs::create_dir_all(&dir).map_err(|err| {
                PluginError::io(format!("create content directory {}", dir.display()), err)
            })?;
        }
        Ok(())
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub fn blob(&self, digest: &BlobDigest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub fn labels_dir(&self) -> PathBuf {
        self.root.join("labels").join("sha256")
    }

    pub fn labels(&self, digest: &BlobDigest) -> PathBuf {
        self.labels_dir().join(digest.hex())
    }

    pub fn ingests_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// Refs are opaque client strings (they contain `/`), so an ingest's directory is named by
    /// the ref's hash; the ref itself is kept in the ingest's state file.
    pub fn ingest(&self, reference: &str) -> PathBuf {
        self.ingests_dir().join(sha256_hex(reference.as_bytes()))
    }
}

/// Makes a directory's entries (a rename, a new file) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|err| PluginError::io(format!("sync directory {}", dir.display()), err))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers see the old
/// content or the new one, never a torn write.
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    // Unique per call, so concurrent replacements of one file cannot mix their temporaries.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|err| {
            let _ = fs::remove_file(&tmp);
            PluginError::io(format!("write {}", path.display()), err)
        })
}

/// Unix nanoseconds of `time` (0 before the epoch).
pub fn unix_nanos(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub fn now_nanos() -> i64 {
    unix_nanos(SystemTime::now())
}

/// The modification time of `meta` in Unix nanoseconds.
pub fn modified_nanos(meta: &fs::Metadata) -> i64 {
    meta.modified().map(unix_nanos).unwrap_or(0)
}
