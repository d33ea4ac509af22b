//! The content store conformance suite, against the Rust type and through the built library.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use rcontainerd_plugin_api::{content::Store, host::load_library, testsuite, Driver, InitContext};
use rcontainerd_plugin_content_local::LocalStore;

/// A fresh directory per store, all under one temp dir.
struct Roots {
    dir: tempfile::TempDir,
    next: AtomicUsize,
}

impl Roots {
    fn new() -> Self {
        Roots {
            dir: tempfile::tempdir().unwrap(),
            next: AtomicUsize::new(0),
        }
    }

    fn next(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(n.to_string())
    }
}

#[test]
fn the_rust_type_conforms() {
    let roots = Roots::new();
    testsuite::content::run_all(&mut || {
        Arc::new(LocalStore::open(roots.next()).unwrap()) as Arc<dyn Store>
    });
}

#[test]
fn the_loaded_library_conforms() {
    // Integration tests run from <target>/debug/deps; the library is built into <target>/debug.
    let exe = std::env::current_exe().unwrap();
    let library = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("librcontainerd_plugin_content_local.so");
    let plugins = load_library(&library).unwrap_or_else(|err| panic!("{err}"));
    let roots = Roots::new();
    testsuite::content::run_all(&mut || {
        let instance = plugins[0]
            .init(InitContext {
                root: roots.next(),
                ..InitContext::default()
            })
            .unwrap();
        match instance.driver {
            Driver::Content(store) => store,
            other => panic!("content-local provides {other:?}"),
        }
    });
}
