//! What every driver's conformance test needs besides the checks: fresh roots, the library
//! `cargo test` just built, and drivers initialised through it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::host::{load_library, LoadedPlugin};
use crate::{Driver, InitContext};

/// A fresh root directory per driver, all under one temporary directory removed on drop.
#[derive(Debug)]
pub struct Roots {
    dir: tempfile::TempDir,
    next: AtomicUsize,
}

impl Roots {
    pub fn new() -> Self {
        Roots {
            dir: tempfile::tempdir().expect("creating a temporary directory"),
            next: AtomicUsize::new(0),
        }
    }

    /// A path that no earlier call returned (not created).
    pub fn next(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(n.to_string())
    }
}

impl Default for Roots {
    fn default() -> Self {
        Self::new()
    }
}

/// The library `lib<crate>.so` that `cargo test` built for the calling test.
///
/// Integration tests run from `<target>/<profile>/deps`, where the test build writes a fresh copy
/// of the crate's `cdylib`; `<target>/<profile>` holds the one of the last `cargo build`, which
/// may be older, so `deps` comes first.
pub fn built_library(file_name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable's directory");
    let found = [Some(deps), deps.parent()]
        .into_iter()
        .flatten()
        .map(|dir| dir.join(file_name))
        .find(|path| path.is_file());
    found.unwrap_or_else(|| panic!("{file_name} is not built next to {}", exe.display()))
}

/// Loads `library` (one plugin expected) and returns a factory of drivers, each initialised
/// through the ABI on a fresh root from `roots`.
pub fn init_loaded<'a>(library: &Path, roots: &'a Roots) -> impl FnMut() -> Driver + 'a {
    let mut plugins = load_library(library).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(plugins.len(), 1, "{} exports one plugin", library.display());
    let plugin: LoadedPlugin = plugins.remove(0);
    move || {
        plugin
            .init(InitContext {
                root: roots.next(),
                ..InitContext::default()
            })
            .unwrap_or_else(|err| panic!("init through the library: {err}"))
            .driver
    }
}
