//! The snapshotter conformance suite, against the Rust type and through the built library.
//! Copy this file for your own driver: two tests prove it, one per way the daemon could meet it.

use std::sync::Arc;

use rcontainerd_plugin_api::{snapshot::Snapshotter, testsuite};
use rcontainerd_plugin_example::ExampleSnapshotter;

#[test]
fn the_rust_type_conforms() {
    let roots = testsuite::Roots::new();
    testsuite::snapshot::run_all(&mut || {
        Arc::new(ExampleSnapshotter::open(roots.next(), false).unwrap()) as Arc<dyn Snapshotter>
    });
}

#[test]
fn the_loaded_library_conforms() {
    testsuite::snapshot::run_all_loaded(&testsuite::built_library(
        "librcontainerd_plugin_example.so",
    ));
}
