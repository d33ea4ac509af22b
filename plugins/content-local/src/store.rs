//! The local content store: blob records, readers, writers and ingest bookkeeping.

use std::{
    collections::HashSet,
    ffi::OsString,
    fs::{self, File},
    io::ErrorKind as IoKind,
    path::PathBuf,
    sync::Mutex,
};

use rcontainerd_plugin_api::{
    content::{Info, Reader, Status, Store, Writer, WriterOptions},
    PluginError, Result,
};

use crate::{
    digest::BlobDigest,
    ingest::{self, IngestState},
    labels,
    layout::{modified_nanos, now_nanos, Layout},
    locks::RefLocks,
    reader::BlobReader,
    writer::{already_exists, LocalWriter},
};

/// Blobs and ingests under one root directory.
#[derive(Debug)]
pub struct LocalStore {
    layout: Layout,
    locks: RefLocks,
    /// Serialises label read-modify-writes, so concurrent updates of different keys all land.
    label_updates: Mutex<()>,
}

impl LocalStore {
    /// Opens the store at `root`, creating its directories.
    pub fn open(root: PathBuf) -> Result<Self> {
        let layout = Layout::new(root);
        layout.create()?;
        Ok(LocalStore {
            layout,
            locks: RefLocks::default(),
            label_updates: Mutex::new(()),
        })
    }

    pub fn root(&self) -> &std::path::Path {
        self.layout.root()
    }

    fn blob_info(&self, digest: &BlobDigest) -> Result<Info> {
        self.blob_info_with(digest, true)
    }

    /// The info of `digest`; its labels file is only read when `has_labels` (a caller that
    /// listed the labels directory knows which blobs have one).
    fn blob_info_with(&self, digest: &BlobDigest, has_labels: bool) -> Result<Info> {
        let path = self.layout.blob(digest);
        let meta = fs::metadata(&path).map_err(|err| blob_error(digest, err))?;
        let (labels, labels_changed) = if has_labels {
            labels::load(&self.layout, digest)?
        } else {
            Default::default()
        };
        let created = modified_nanos(&meta);
        Ok(Info {
            digest: digest.to_string(),
            size: meta.len() as i64,
            created,
            updated: labels_changed.unwrap_or(created).max(created),
            labels,
        })
    }
}

impl Store for LocalStore {
    fn info(&self, digest: &str) -> Result<Info> {
        self.blob_info(&BlobDigest::parse(digest)?)
    }

    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        let digest = BlobDigest::parse(&info.digest)?;
        let _serialised = self
            .label_updates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut current = self.blob_info(&digest)?;
        if fieldpaths.is_empty() {
            current.labels = info.labels.clone();
        }
        for path in fieldpaths {
            if path == "labels" {
                current.labels = info.labels.clone();
            } else if let Some(key) = path.strip_prefix("labels.") {
                match info.labels.get(key) {
                    Some(value) => current.labels.insert(key.to_owned(), value.clone()),
                    None => current.labels.remove(key),
                };
            } else {
                return Err(PluginError::invalid_argument(format!(
                    "cannot update {path:?} field on content info {digest}"
                )));
            }
        }
        labels::save(&self.layout, &digest, &current.labels)?;
        current.updated = now_nanos();
        Ok(current)
    }

    fn list(&self) -> Result<Vec<Info>> {
        // One listing of the labels directory instead of a failing open per unlabelled blob
        // (most blobs have no labels file; the first full collection lists them all).
        let labels_dir = self.layout.labels_dir();
        let labelled: HashSet<OsString> = match fs::read_dir(&labels_dir) {
            Ok(entries) => entries.flatten().map(|e| e.file_name()).collect(),
            Err(err) if err.kind() == IoKind::NotFound => HashSet::new(),
            Err(err) => {
                return Err(PluginError::io(
                    format!("list {}", labels_dir.display()),
                    err,
                ))
            }
        };
        let dir = self.layout.blobs_dir();
        let entries = fs::read_dir(&dir)
            .map_err(|err| PluginError::io(format!("list {}", dir.display()), err))?;
        let mut infos = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|err| PluginError::io(format!("list {}", dir.display()), err))?;
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|n| BlobDigest::is_blob_name(n)) else {
                continue;
            };
            let digest = BlobDigest::parse(&format!("sha256:{name}"))?;
            match self.blob_info_with(&digest, labelled.contains(entry.file_name().as_os_str())) {
                Ok(info) => infos.push(info),
                // Deleted while listing.
                Err(err) if err.kind == rcontainerd_plugin_api::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        infos.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(infos)
    }

    fn delete(&self, digest: &str) -> Result<()> {
        let digest = BlobDigest::parse(digest)?;
        fs::remove_file(self.layout.blob(&digest)).map_err(|err| blob_error(&digest, err))?;
        labels::remove(&self.layout, &digest)
    }

    fn reader(&self, digest: &str) -> Result<Box<dyn Reader>> {
        let digest = BlobDigest::parse(digest)?;
        let file = File::open(self.layout.blob(&digest)).map_err(|err| blob_error(&digest, err))?;
        Ok(Box::new(BlobReader::new(file, digest)?))
    }

    fn writer(&self, options: WriterOptions) -> Result<Box<dyn Writer>> {
        if options.reference.is_empty() {
            return Err(PluginError::invalid_argument(
                "content writer: ref must not be empty",
            ));
        }
        if let Some(expected) = options.expected_digest.as_deref().filter(|e| !e.is_empty()) {
            let digest = BlobDigest::parse(expected)?;
            if self.layout.blob(&digest).exists() {
                return Err(already_exists(&digest));
            }
        }
        if let Some(size) = options.expected_size.filter(|s| *s < 0) {
            return Err(PluginError::invalid_argument(format!(
                "content writer for ref {}: negative expected size {size}",
                options.reference
            )));
        }
        let lock = self.locks.acquire(&options.reference)?;
        Ok(Box::new(LocalWriter::open(&self.layout, &options, lock)?))
    }

    fn status(&self, reference: &str) -> Result<Status> {
        let dir = self.layout.ingest(reference);
        match IngestState::load(&dir)? {
            Some(state) if state.reference == reference => state.status_on_disk(&dir),
            _ => Err(ingest::not_found(reference)),
        }
    }

    fn list_statuses(&self) -> Result<Vec<Status>> {
        let dir = self.layout.ingests_dir();
        let entries = fs::read_dir(&dir)
            .map_err(|err| PluginError::io(format!("list {}", dir.display()), err))?;
        let mut statuses = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|err| PluginError::io(format!("list {}", dir.display()), err))?;
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path();
            // Ingests torn while being created have no state; they are not listed.
            if let Some(state) = IngestState::load(&path)? {
                match state.status_on_disk(&path) {
                    Ok(status) => statuses.push(status),
                    Err(err) if err.kind == rcontainerd_plugin_api::ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
            }
        }
        statuses.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(statuses)
    }

    fn abort(&self, reference: &str) -> Result<()> {
        // Taking the lock refuses to pull an ingest from under an open writer.
        let _lock = self.locks.acquire(reference)?;
        let dir = self.layout.ingest(reference);
        match IngestState::load(&dir)? {
            Some(state) if state.reference == reference => ingest::remove(&dir),
            _ if dir.exists() => ingest::remove(&dir).and(Err(ingest::not_found(reference))),
            _ => Err(ingest::not_found(reference)),
        }
    }
}

/// `NotFound` (or another I/O failure) for the blob `digest`.
fn blob_error(digest: &BlobDigest, err: std::io::Error) -> PluginError {
    if err.kind() == IoKind::NotFound {
        PluginError::not_found(format!("content digest {digest}"))
    } else {
        PluginError::io(format!("content {digest}"), err)
    }
}
