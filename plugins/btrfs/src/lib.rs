//! `io.containerd.snapshotter.v1.btrfs`: snapshots as btrfs subvolumes. Skips unless its root is
//! on btrfs; the snapshot operations come next.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use nix::sys::statfs::{statfs, BTRFS_SUPER_MAGIC};
use rcontainerd_plugin_api::{
    export_plugin,
    snapshot::{Info, Labels, Mount, Snapshotter, Usage},
    Driver, InitContext, Manifest, Plugin, PluginError, PluginInstance, Result,
};
use serde::Deserialize;

pub const PLUGIN_TYPE: &str = "io.containerd.snapshotter.v1";
pub const PLUGIN_ID: &str = "btrfs";

/// Every key the plugin accepts, with its default.
const DEFAULT_CONFIG: &str = r#"# Directory for snapshots (must be on btrfs); empty means the plugin's root.
root_path = ""
"#;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Config {
    root_path: String,
}

/// The plugin registration.
pub struct BtrfsPlugin;

impl Plugin for BtrfsPlugin {
    fn manifest() -> Manifest {
        Manifest::new(PLUGIN_TYPE, PLUGIN_ID).default_config(DEFAULT_CONFIG)
    }

    fn init(ctx: InitContext) -> Result<PluginInstance> {
        let config: Config = ctx.parse_config()?;
        let root = if config.root_path.is_empty() {
            ctx.root.clone()
        } else {
            PathBuf::from(&config.root_path)
        };
        if !is_on_btrfs(&root)? {
            return Err(PluginError::skip(format!(
                "{} is not a btrfs filesystem",
                root.display()
            )));
        }
        let snapshots = root.join("snapshots");
        fs::create_dir_all(&snapshots).map_err(|err| {
            PluginError::io(
                format!("create snapshots directory {}", snapshots.display()),
                err,
            )
        })?;
        let driver = BtrfsSnapshotter { root: root.clone() };
        Ok(PluginInstance::new(Driver::Snapshotter(Arc::new(driver)))
            .export("root", root.to_string_lossy()))
    }
}

/// Whether `path` — or, while it does not exist yet, its nearest existing ancestor — is on
/// btrfs. Nothing is created before the answer is known.
fn is_on_btrfs(path: &Path) -> Result<bool> {
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or_else(|| Path::new("/"));
    let stat = statfs(existing).map_err(|errno| {
        PluginError::internal(format!(
            "statfs {}: {}",
            existing.display(),
            errno.desc().to_lowercase()
        ))
    })?;
    Ok(stat.filesystem_type() == BTRFS_SUPER_MAGIC)
}

/// The snapshotter; operations are not implemented yet.
#[derive(Debug)]
pub struct BtrfsSnapshotter {
    root: PathBuf,
}

impl BtrfsSnapshotter {
    fn not_implemented(&self, operation: &str) -> PluginError {
        PluginError::not_implemented(format_args!(
            "snapshotter btrfs ({}): {operation}",
            self.root.display()
        ))
    }
}

impl Snapshotter for BtrfsSnapshotter {
    fn stat(&self, _key: &str) -> Result<Info> {
        Err(self.not_implemented("stat"))
    }

    fn update(&self, _info: Info, _fieldpaths: &[String]) -> Result<Info> {
        Err(self.not_implemented("update"))
    }

    fn usage(&self, _key: &str) -> Result<Usage> {
        Err(self.not_implemented("usage"))
    }

    fn mounts(&self, _key: &str) -> Result<Vec<Mount>> {
        Err(self.not_implemented("mounts"))
    }

    fn prepare(&self, _key: &str, _parent: &str, _labels: Labels) -> Result<Vec<Mount>> {
        Err(self.not_implemented("prepare"))
    }

    fn view(&self, _key: &str, _parent: &str, _labels: Labels) -> Result<Vec<Mount>> {
        Err(self.not_implemented("view"))
    }

    fn commit(&self, _name: &str, _key: &str, _labels: Labels) -> Result<()> {
        Err(self.not_implemented("commit"))
    }

    fn remove(&self, _key: &str) -> Result<()> {
        Err(self.not_implemented("remove"))
    }

    fn walk(&self) -> Result<Vec<Info>> {
        Err(self.not_implemented("walk"))
    }
}

export_plugin!(BtrfsPlugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_on_a_filesystem_that_is_not_btrfs() {
        let dir = tempfile::tempdir().unwrap();
        if is_on_btrfs(dir.path()).unwrap() {
            eprintln!("skipping: the temp directory is on btrfs");
            return;
        }
        let root = dir.path().join("io.containerd.snapshotter.v1.btrfs");
        let err = BtrfsPlugin::init(InitContext {
            root: root.clone(),
            ..InitContext::default()
        })
        .unwrap_err();
        assert!(err.is_skip(), "{err}");
        assert_eq!(
            err.message,
            format!("{} is not a btrfs filesystem: skip plugin", root.display())
        );
        assert!(!root.exists(), "a skipped plugin must not create its root");
    }
}
