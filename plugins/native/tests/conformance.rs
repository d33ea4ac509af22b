//! The snapshotter conformance suite against native, as a Rust type and as the built
//! library the daemon loads. Mounting checks need root.

use std::sync::Arc;

use rcontainerd_plugin_api::{snapshot::Snapshotter, testsuite};
use rcontainerd_plugin_native::NativeSnapshotter;

#[test]
fn the_rust_type_conforms() {
    let roots = testsuite::Roots::new();
    testsuite::snapshot::run_all(&mut || {
        Arc::new(NativeSnapshotter::open(roots.next()).unwrap()) as Arc<dyn Snapshotter>
    });
}

#[test]
fn the_loaded_library_conforms() {
    testsuite::snapshot::run_all_loaded(&testsuite::built_library(
        "librcontainerd_plugin_native.so",
    ));
}
