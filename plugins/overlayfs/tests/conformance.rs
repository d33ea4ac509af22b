//! The snapshotter conformance suite against overlayfs, as a Rust type and as the built
//! library the daemon loads. Mounting checks need root (`rcontainerd_pkg::prereq`).

use std::sync::Arc;

use rcontainerd_plugin_api::{snapshot::Snapshotter, testsuite};
use rcontainerd_plugin_overlayfs::{Config, OverlaySnapshotter};

#[test]
fn the_rust_type_conforms() {
    let roots = testsuite::Roots::new();
    testsuite::snapshot::run_all(&mut || {
        let config = Config {
            sync_remove: true,
            ..Config::default()
        };
        Arc::new(OverlaySnapshotter::open(roots.next(), config).unwrap()) as Arc<dyn Snapshotter>
    });
}

#[test]
fn the_loaded_library_conforms() {
    if !nix::unistd::geteuid().is_root() {
        rcontainerd_pkg::prereq::missing("root (the overlayfs plugin's init mounts an overlay)");
        return;
    }
    testsuite::snapshot::run_all_loaded(&testsuite::built_library(
        "librcontainerd_plugin_overlayfs.so",
    ));
}
