//! The daemon's plugin system: discovery of driver libraries, the registry
//! of every plugin (loaded and built-in), ordering by `requires`, and init.

pub mod builtin;
pub mod discovery;
pub mod graph;
pub mod registry;

pub use registry::{Initialized, Outcome, PluginStatus, Registry};

/// Host platform in OCI terms, reported for platform-specific plugins.
pub fn host_platform() -> (String, String) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    (std::env::consts::OS.to_string(), arch.to_string())
}
