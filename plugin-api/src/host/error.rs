//! Why a library could not be loaded.

use std::path::{Path, PathBuf};

/// The class of a load failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LibraryErrorKind {
    /// Not a regular, readable, complete ELF shared object for this machine.
    InvalidFile,
    /// The dynamic loader refused it.
    Open,
    /// A shared object, but not an rcontainerd plugin.
    NotAPlugin,
    /// Built with `panic = "abort"`.
    PanicAbort,
    /// Built for an ABI generation this daemon does not serve.
    UnsupportedGeneration,
    /// Its layout or version does not match the generation it claims.
    Incompatible,
    /// It could not describe its plugins.
    Manifest,
}

/// A plugin library that was refused, with a one-line reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin library {}: {reason}", path.display())]
pub struct LibraryError {
    kind: LibraryErrorKind,
    path: PathBuf,
    plugin: Option<(String, String)>,
    reason: String,
}

impl LibraryError {
    pub(crate) fn new(
        kind: LibraryErrorKind,
        path: &Path,
        plugin: Option<(String, String)>,
        reason: String,
    ) -> Self {
        LibraryError {
            kind,
            path: path.to_path_buf(),
            plugin,
            reason,
        }
    }

    pub fn kind(&self) -> LibraryErrorKind {
        self.kind
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `(type, id)` of the (first) plugin in the library, when the library could name it, so
    /// the failure can be listed under the plugin's real URI.
    pub fn plugin(&self) -> Option<(String, String)> {
        self.plugin.clone()
    }

    /// The one-line reason, without the path.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}
