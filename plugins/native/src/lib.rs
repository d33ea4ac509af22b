//! `io.containerd.snapshotter.v1.native`: a copy-based snapshotter that works on any
//! filesystem: a child starts as a full copy of its parent, and every mount is a bind mount.
//! Records live in a crash-safe journal (`<root>/metadata.journal`).

mod copy;

use std::{fs, path::PathBuf, sync::Arc};

pub use copy::copy_tree;
use rcontainerd_plugin_api::{
    export_plugin,
    snapshot::{
        storage::{disk_usage, remove_tree, MetaStore, Snapshot},
        Info, Kind, Labels, Mount, Snapshotter, Usage,
    },
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
        let root = ctx.root_or(&config.root_path);
        let driver = NativeSnapshotter::open(root.clone())?;
        Ok(PluginInstance::new(Driver::Snapshotter(Arc::new(driver)))
            .export("root", root.to_string_lossy()))
    }
}

/// The driver: each snapshot is a full copy of its parent in `<root>/snapshots/<id>`.
#[derive(Debug)]
pub struct NativeSnapshotter {
    root: PathBuf,
    store: MetaStore,
}

impl NativeSnapshotter {
    /// Opens the snapshotter in `root` (creating `root/snapshots` and its journal).
    pub fn open(root: PathBuf) -> Result<NativeSnapshotter> {
        let snapshots = root.join("snapshots");
        fs::create_dir_all(&snapshots)
            .map_err(|err| PluginError::io(format!("create {}", snapshots.display()), err))?;
        let store = MetaStore::open(&root)?;
        Ok(NativeSnapshotter { root, store })
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    fn mounts_of(&self, key: &str, snapshot: &Snapshot) -> Result<Vec<Mount>> {
        let mode = match snapshot.kind {
            Kind::Active => "rw",
            Kind::View => "ro",
            Kind::Committed => {
                return Err(PluginError::failed_precondition(format!(
                    "requested snapshot {key} not active or view"
                )))
            }
        };
        Ok(vec![Mount {
            mount_type: "bind".into(),
            source: self.dir(snapshot.id).to_string_lossy().into_owned(),
            target: String::new(),
            options: vec!["rbind".into(), mode.into()],
        }])
    }

    fn create(&self, kind: Kind, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        let snapshot = self.store.create(kind, key, parent, labels, |snapshot| {
            let dir = self.dir(snapshot.id);
            let made = (|| {
                if dir.exists() {
                    // Left by a crash before its record was written.
                    fs::remove_dir_all(&dir)?;
                }
                fs::create_dir(&dir)?;
                match snapshot.parent_ids.first() {
                    Some(parent) => copy_tree(&self.dir(*parent), &dir),
                    None => Ok(()),
                }
            })();
            made.map_err(|err| {
                let _ = fs::remove_dir_all(&dir);
                PluginError::internal(format!(
                    "failed to create snapshot {key}: copy into {}: {err}",
                    dir.display()
                ))
            })
        })?;
        self.mounts_of(key, &snapshot)
    }
}

impl Snapshotter for NativeSnapshotter {
    fn stat(&self, key: &str) -> Result<Info> {
        self.store.stat(key)
    }

    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        self.store.update(info, fieldpaths)
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        let (_, snapshot) = self.store.snapshot(key)?;
        disk_usage(&self.dir(snapshot.id))
            .map_err(|err| PluginError::internal(format!("usage of snapshot {key}: {err}")))
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let (_, snapshot) = self.store.snapshot(key)?;
        self.mounts_of(key, &snapshot)
    }

    fn prepare(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::Active, key, parent, labels)
    }

    fn view(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::View, key, parent, labels)
    }

    fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        self.store.commit(name, key, labels, |_| Ok(())).map(drop)
    }

    fn remove(&self, key: &str) -> Result<()> {
        let snapshot = self.store.remove(key)?;
        remove_tree(&self.dir(snapshot.id))
    }

    fn walk(&self) -> Result<Vec<Info>> {
        Ok(self.store.walk())
    }

    /// Deletes directories no record refers to (left by a crash mid-prepare or mid-remove).
    fn cleanup(&self) -> Result<()> {
        self.store.remove_unrecorded(&self.root.join("snapshots"))
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
    fn mounts_bind_the_snapshot_directory_and_children_start_as_copies() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let s = NativeSnapshotter::open(root.clone()).unwrap();
        let mounts = s.prepare("a", "", Labels::new()).unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_type, "bind");
        assert_eq!(mounts[0].source, root.join("snapshots/1").to_string_lossy());
        assert_eq!(mounts[0].options, ["rbind", "rw"]);
        fs::write(root.join("snapshots/1/f"), b"x").unwrap();
        std::os::unix::fs::chown(root.join("snapshots/1/f"), Some(1234), Some(99)).unwrap();
        s.commit("c", "a", Labels::new()).unwrap();
        let view = s.view("v", "c", Labels::new()).unwrap();
        assert_eq!(view[0].source, root.join("snapshots/2").to_string_lossy());
        assert_eq!(view[0].options, ["rbind", "ro"]);
        let copied = fs::metadata(root.join("snapshots/2/f")).unwrap();
        assert_eq!((copied.uid(), copied.gid()), (1234, 99));
        assert_eq!(
            s.mounts("c").unwrap_err().kind,
            rcontainerd_plugin_api::ErrorKind::FailedPrecondition
        );
        drop(s);
        // After a restart the records are back and cleanup keeps their directories.
        let s = NativeSnapshotter::open(root.clone()).unwrap();
        fs::create_dir(root.join("snapshots/50")).unwrap();
        s.cleanup().unwrap();
        assert!(!root.join("snapshots/50").exists());
        assert_eq!(s.stat("v").unwrap().parent, "c");
        assert!(root.join("snapshots/2/f").exists());
        s.remove("v").unwrap();
        assert!(!root.join("snapshots/2").exists());
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
