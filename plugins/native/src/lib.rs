//! `io.containerd.snapshotter.v1.native`: a copy-based snapshotter that works on any
//! filesystem. This issue sets up its directory; the snapshot operations come next.

use std::{fs, path::PathBuf, sync::Arc};

use rcontainerd_plugin_api::{
    export_plugin,
    snapshot::{Info, Labels, Mount, Snapshotter, Usage},
    Driver, InitContext, Manifest, Plugin, PluginError, PluginInstance, Result,
};
use serde::Deserialize;

pub const PLUGIN_TYPE: &str = "io.containerd.snapshotter.v1";
pub const PLUGIN_ID: &str = "native";

/// Every key the plugin accepts, with its default.
const DEFAULT_CONFIG: &str = r#"# Directory for snapshots; empty means the plugin's root (<root>/io.containerd.snapshotter.v1.native).
root_path = ""
"#;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Config {
    root_path: String,
}

/// The plugin registration.
pub struct NativePlugin;

impl Plugin for NativePlugin {
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
        let snapshots = root.join("snapshots");
        fs::create_dir_all(&snapshots).map_err(|err| {
            PluginError::io(
                format!("create snapshots directory {}", snapshots.display()),
                err,
            )
        })?;
        let driver = NativeSnapshotter { root: root.clone() };
        Ok(PluginInstance::new(Driver::Snapshotter(Arc::new(driver)))
            .export("root", root.to_string_lossy()))
    }
}

/// The snapshotter; operations are not implemented yet.
#[derive(Debug)]
pub struct NativeSnapshotter {
    root: PathBuf,
}

impl NativeSnapshotter {
    fn not_implemented(&self, operation: &str) -> PluginError {
        PluginError::not_implemented(format_args!(
            "snapshotter native ({}): {operation}",
            self.root.display()
        ))
    }
}

impl Snapshotter for NativeSnapshotter {
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

export_plugin!(NativePlugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_the_snapshots_directory_and_exports_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("io.containerd.snapshotter.v1.native");
        let instance = NativePlugin::init(InitContext {
            root: root.clone(),
            ..InitContext::default()
        })
        .unwrap();
        assert!(root.join("snapshots").is_dir());
        assert_eq!(instance.exports["root"], root.to_string_lossy());
        assert!(matches!(instance.driver, Driver::Snapshotter(_)));
    }

    #[test]
    fn root_path_overrides_the_plugin_root() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("elsewhere");
        let instance = NativePlugin::init(InitContext {
            root: dir.path().join("unused"),
            config: format!("root_path = {:?}\n", other.to_string_lossy()),
            ..InitContext::default()
        })
        .unwrap();
        assert!(other.join("snapshots").is_dir());
        assert!(!dir.path().join("unused").exists());
        assert_eq!(instance.exports["root"], other.to_string_lossy());
    }

    #[test]
    fn a_wrong_type_fails_init() {
        let err = NativePlugin::init(InitContext {
            config: "root_path = 3\n".into(),
            ..InitContext::default()
        })
        .err()
        .unwrap();
        assert_eq!(err.kind, rcontainerd_plugin_api::ErrorKind::InvalidArgument);
    }
}
