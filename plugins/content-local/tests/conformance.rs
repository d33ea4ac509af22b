//! The content store conformance suite, against the Rust type and through the built library.
//! The suite checks that a second writer on a locked ref is refused; a store that waits for the
//! lock instead would hang, so each run has a deadline.

use std::{sync::Arc, time::Duration};

use rcontainerd_plugin_api::{content::Store, testsuite};
use rcontainerd_plugin_content_local::LocalStore;

/// Far more than a run takes (seconds, also under valgrind).
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn the_rust_type_conforms() {
    testsuite::within(SUITE_TIMEOUT, "the content store suite", || {
        let roots = testsuite::Roots::new();
        testsuite::content::run_all(&mut || {
            Arc::new(LocalStore::open(roots.next()).unwrap()) as Arc<dyn Store>
        });
    });
}

#[test]
fn the_loaded_library_conforms() {
    let library = testsuite::built_library("librcontainerd_plugin_content_local.so");
    testsuite::within(SUITE_TIMEOUT, "the content store suite", move || {
        testsuite::content::run_all_loaded(&library);
    });
}
