//! Harness for rcontainerd's integration tests.
//!
//! Every test starts the real `rcontainerd` binary with its own temporary root, state dir and socket
//! ([`Daemon`]), talks to it over gRPC (`rcontainerd_api::client`) and runs both our `ctr` and
//! Debian's (containerd 1.6.20) against it ([`Ctr`]). Nothing binds a fixed path, so tests run in
//! parallel.
//!
//! The binaries are found next to the test executable (`target/<profile>/`); the test command builds
//! them first (`scripts/test.sh`).

use std::collections::HashMap;

pub mod binaries;
pub mod busybox;
pub mod containerd;
pub mod ctr;
pub mod daemon;
pub mod layers;
pub mod mounts;
pub mod openssl;
pub mod registry_token;
pub mod shims;
pub mod slow_proxy;
pub mod test_plugins;

/// Plugin URIs the tests refer to.
pub mod uri {
    pub const OVERLAYFS: &str = "io.containerd.snapshotter.v1.overlayfs";
    pub const NATIVE: &str = "io.containerd.snapshotter.v1.native";
    pub const BTRFS: &str = "io.containerd.snapshotter.v1.btrfs";
    pub const CONTENT: &str = "io.containerd.content.v1.content";
    pub const EXAMPLE: &str = "io.containerd.snapshotter.v1.example";
    pub const GC: &str = "io.containerd.gc.v1.scheduler";
}

/// A label map from `(key, value)` pairs, as the API's messages carry labels.
pub fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Awaits `future`, or panics naming `what` once `limit` has passed: a step that can only fail by
/// hanging (a stream the daemon never answers, a lock it never releases) fails with a message
/// instead of stalling the run.
pub async fn within<F: std::future::Future>(
    limit: std::time::Duration,
    what: &str,
    future: F,
) -> F::Output {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not finished after {limit:?}; it hangs"))
}

/// `<type>.<id>` of an Introspection entry.
pub fn plugin_uri(p: &rcontainerd_api::services::introspection::Plugin) -> String {
    format!("{}.{}", p.r#type, p.id)
}

/// The Introspection entry for `uri`, if listed.
pub fn find_plugin<'a>(
    plugins: &'a [rcontainerd_api::services::introspection::Plugin],
    uri: &str,
) -> Option<&'a rcontainerd_api::services::introspection::Plugin> {
    plugins.iter().find(|p| plugin_uri(p) == uri)
}

pub use ctr::{Ctr, CtrOutput, PluginRow, RunningCtr};
pub use daemon::{Daemon, DaemonError, DaemonOptions};
pub use test_plugins::{
    test_plugin_dir, test_plugin_dir_without, write_non_plugin_so, write_truncated_so, TestPlugin,
};
