//! The snapshotter conformance suite, against the Rust type and through the built library.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use rcontainerd_plugin_api::{
    host::load_library, snapshot::Snapshotter, testsuite, Driver, InitContext,
};
use rcontainerd_plugin_example::ExampleSnapshotter;

/// A fresh directory per snapshotter, all under one temp dir.
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
    testsuite::snapshot::run_all(&mut || {
        let root = roots.next();
        std::fs::create_dir_all(root.join("snapshots")).unwrap();
        Arc::new(ExampleSnapshotter::new(root, false)) as Arc<dyn Snapshotter>
    });
}

#[test]
fn the_loaded_library_conforms() {
    // Integration tests run from <target>/debug/deps, where the test build also puts a fresh
    // copy of the library; `cargo build` puts one into <target>/debug, possibly older.
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let name = "librcontainerd_plugin_example.so";
    let library = [deps.join(name), deps.parent().unwrap().join(name)]
        .into_iter()
        .find(|p| p.is_file())
        .expect("librcontainerd_plugin_example.so is built");
    let plugins = load_library(&library).unwrap_or_else(|err| panic!("{err}"));
    let roots = Roots::new();
    testsuite::snapshot::run_all(&mut || {
        let instance = plugins[0]
            .init(InitContext {
                root: roots.next(),
                ..InitContext::default()
            })
            .unwrap();
        match instance.driver {
            Driver::Snapshotter(s) => s,
            other => panic!("example provides {other:?}"),
        }
    });
}
