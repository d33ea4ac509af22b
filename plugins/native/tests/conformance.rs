//! The snapshotter conformance suite against native, as a Rust type and as the built
//! library the daemon loads. Mounting checks need root.

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
use rcontainerd_plugin_native::NativeSnapshotter;

/// A fresh root per snapshotter, all under one temp dir.
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
        Arc::new(NativeSnapshotter::open(roots.next()).unwrap()) as Arc<dyn Snapshotter>
    });
}

#[test]
fn the_loaded_library_conforms() {
    // Integration tests run from <target>/debug/deps, where the test build also writes the
    // library; <target>/debug holds a copy from the last `cargo build`, which may be older.
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let name = "librcontainerd_plugin_native.so";
    let library = [deps.join(name), deps.parent().unwrap().join(name)]
        .into_iter()
        .find(|path| path.exists())
        .expect("the plugin library is built");
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
            other => panic!("native provides {other:?}"),
        }
    });
}
