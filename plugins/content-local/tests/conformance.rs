//! The content store conformance suite, against the Rust type and through the built library.

use std::sync::Arc;

use rcontainerd_plugin_api::{content::Store, testsuite};
use rcontainerd_plugin_content_local::LocalStore;

#[test]
fn the_rust_type_conforms() {
    let roots = testsuite::Roots::new();
    testsuite::content::run_all(&mut || {
        Arc::new(LocalStore::open(roots.next()).unwrap()) as Arc<dyn Store>
    });
}

#[test]
fn the_loaded_library_conforms() {
    testsuite::content::run_all_loaded(&testsuite::built_library(
        "librcontainerd_plugin_content_local.so",
    ));
}
