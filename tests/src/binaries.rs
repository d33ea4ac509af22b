//! Where the binaries under test live.
//!
//! Cargo puts integration-test executables in `target/<profile>/deps/`, so the daemon, our `ctr`
//! and the in-tree plugin libraries sit one level up. `CARGO_TARGET_DIR` is the fallback for
//! executables run from elsewhere.

use std::path::{Path, PathBuf};

/// Debian's containerd `ctr` (package `containerd`, 1.6.20), installed by `scripts/setup.sh`.
pub const DEBIAN_CTR: &str = "/usr/bin/ctr";

/// The repository's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `target/<profile>`: the directory holding `rcontainerd`, `ctr` and the in-tree plugin `.so` files.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    if let Some(deps) = exe.parent() {
        if deps.file_name().is_some_and(|n| n == "deps") {
            if let Some(profile) = deps.parent() {
                return profile.to_path_buf();
            }
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug")
}

/// The cargo target directory (parent of the profile directory).
pub fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("profile dir has a parent")
        .to_path_buf()
}

/// Where `plugins/example/test.sh` builds the example plugin (a workspace of its own, kept away
/// from the daemon's default plugin directory); panics with a hint when it has not been built.
pub fn example_plugin_dir() -> PathBuf {
    let dir = target_dir().join("example").join("debug");
    let library = dir.join("librcontainerd_plugin_example.so");
    assert!(
        library.is_file(),
        "{} is missing: run `bash plugins/example/test.sh` (or scripts/test.sh) before the tests",
        library.display()
    );
    dir
}

/// Path of a binary built by this workspace; panics with a hint when it has not been built.
pub fn built_binary(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` (or scripts/test.sh) before the tests",
        path.display()
    );
    path
}

/// The daemon binary.
pub fn rcontainerd() -> PathBuf {
    built_binary("rcontainerd")
}

/// Our `ctr`.
pub fn our_ctr() -> PathBuf {
    built_binary("ctr")
}

/// The in-tree plugin libraries cargo placed next to the daemon (every `lib*.so` in the profile dir).
pub fn in_tree_plugins() -> Vec<PathBuf> {
    let dir = profile_dir();
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "so")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("lib"))
        })
        .collect();
    found.sort();
    assert!(
        !found.is_empty(),
        "no plugin libraries in {}: run `cargo build --workspace` before the tests",
        dir.display()
    );
    found
}
