//! Builds the plugin libraries the loading tests need (once per test binary) and finds them.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("plugin-api lives in the repository root")
        .to_path_buf()
}

/// The cargo target directory the workspace builds into.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("target"),
    }
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(repo_root())
        .env("CARGO_TARGET_DIR", target_dir());
    command
}

/// The in-tree plugin crates and their library file names. (The example driver is a workspace
/// of its own, tested by `plugins/example/test.sh`.)
pub const IN_TREE: &[(&str, &str)] = &[
    (
        "rcontainerd-plugin-native",
        "librcontainerd_plugin_native.so",
    ),
    (
        "rcontainerd-plugin-overlayfs",
        "librcontainerd_plugin_overlayfs.so",
    ),
    ("rcontainerd-plugin-btrfs", "librcontainerd_plugin_btrfs.so"),
    (
        "rcontainerd-plugin-content-local",
        "librcontainerd_plugin_content_local.so",
    ),
];

/// Builds the in-tree plugins; `None` (with the reason printed) when that is impossible and
/// prerequisites are not required (`rcontainerd_pkg::prereq`).
pub fn in_tree_plugins() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let mut command = cargo();
        command.arg("build").arg("--quiet");
        for (package, _) in IN_TREE {
            command.arg("-p").arg(package);
        }
        run(command)?;
        Ok(target_dir().join("debug"))
    });
    report(built)
}

/// Builds the test-only plugins with `tests/plugins/build.sh`; returns `(unwind dir, abort dir)`.
pub fn test_plugins() -> Option<(PathBuf, PathBuf)> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let mut command = Command::new("sh");
        command
            .arg(repo_root().join("tests/plugins/build.sh"))
            .arg(target_dir())
            .env(
                "CARGO",
                std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            );
        run(command)?;
        Ok(target_dir())
    });
    report(built).map(|t| {
        (
            t.join("test-plugins/debug"),
            t.join("test-plugins-abort/debug"),
        )
    })
}

fn run(mut command: Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|err| format!("cannot run {command:?}: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

fn report(built: &Result<PathBuf, String>) -> Option<PathBuf> {
    match built {
        Ok(dir) => Some(dir.clone()),
        Err(reason) => {
            rcontainerd_pkg::prereq::missing(format_args!("built plugin libraries: {reason}"));
            None
        }
    }
}
