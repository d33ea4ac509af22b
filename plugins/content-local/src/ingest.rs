//! An ingest on disk: `<ingest dir>/data` (the bytes so far) and `<ingest dir>/state` (the ref,
//! when it started, what the client expects). Its offset is the data file's length and its
//! update time the data file's mtime, so a write costs no metadata update and an ingest
//! interrupted by a crash resumes from exactly what reached the file.

use std::{
    fs,
    io::ErrorKind as IoKind,
    path::{Path, PathBuf},
};

use rcontainerd_plugin_api::{content::Status, PluginError, Result};
use serde::{Deserialize, Serialize};

use crate::layout::{modified_nanos, replace_file};

pub const DATA: &str = "data";
pub const STATE: &str = "state";

/// What an ingest remembers besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestState {
    pub reference: String,
    /// Unix nanoseconds.
    pub started_at: i64,
    /// Expected total size; 0 when unknown.
    pub total: i64,
    /// Expected digest; empty when unknown.
    pub expected: String,
}

impl IngestState {
    /// Reads the state of the ingest in `dir`; `None` if there is none (or it is unreadable,
    /// e.g. torn by a crash while the ingest was being created).
    pub fn load(dir: &Path) -> Result<Option<IngestState>> {
        let path = dir.join(STATE);
        match fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(err) if err.kind() == IoKind::NotFound => Ok(None),
            Err(err) => Err(PluginError::io(format!("read {}", path.display()), err)),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self)
            .map_err(|err| PluginError::internal(format!("encode ingest state: {err}")))?;
        replace_file(&dir.join(STATE), &bytes)
    }

    /// The ingest's status as the disk shows it.
    pub fn status_on_disk(&self, dir: &Path) -> Result<Status> {
        let path = data_path(dir);
        let (offset, updated_at) = match fs::metadata(&path) {
            Ok(meta) => (meta.len() as i64, modified_nanos(&meta)),
            Err(err) if err.kind() == IoKind::NotFound => (0, self.started_at),
            Err(err) => return Err(PluginError::io(format!("stat {}", path.display()), err)),
        };
        Ok(Status {
            reference: self.reference.clone(),
            offset,
            total: self.total,
            expected: self.expected.clone(),
            started_at: self.started_at,
            updated_at: updated_at.max(self.started_at),
        })
    }
}

pub fn data_path(dir: &Path) -> PathBuf {
    dir.join(DATA)
}

/// Removes an ingest directory; a missing one is fine.
pub fn remove(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == IoKind::NotFound => Ok(()),
        Err(err) => Err(PluginError::io(
            format!("remove ingest {}", dir.display()),
            err,
        )),
    }
}

/// `NotFound` naming the ref.
pub fn not_found(reference: &str) -> PluginError {
    PluginError::not_found(format!("ingest ref {reference:?}"))
}
