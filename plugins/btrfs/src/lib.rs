//! `io.containerd.snapshotter.v1.btrfs`: snapshots as btrfs subvolumes, made and destroyed
//! through the kernel's ioctls. Skips unless its root is on btrfs. Records live in a
//! crash-safe journal (`<root>/metadata.journal`). Mounts are bind mounts of the subvolume's
//! directory (containerd hands out `btrfs` mounts with `subvolid=`; a bind of the same
//! subvolume shows the same tree).

mod ioctl;

use std::{
    ffi::OsStr,
    fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use ioctl::{create_subvolume, destroy_subvolume, snapshot_subvolume};

use nix::sys::statfs::{statfs, BTRFS_SUPER_MAGIC};
use rcontainerd_plugin_api::{
    export_plugin,
    snapshot::{
        storage::{disk_usage, MetaStore, Snapshot},
        Info, Kind, Labels, Mount, Snapshotter, Usage,
    },
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
        let root = ctx.root_or(&config.root_path);
        if !is_on_btrfs(&root)? {
            return Err(PluginError::skip(format!(
                "{} is not a btrfs filesystem",
                root.display()
            )));
        }
        let driver = BtrfsSnapshotter::open(root.clone())?;
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

/// The driver: each snapshot is a subvolume under `<root>/active`, `<root>/view` or (read-only)
/// `<root>/snapshots`, named by its id; a child is a snapshot of its parent's subvolume.
#[derive(Debug)]
pub struct BtrfsSnapshotter {
    root: PathBuf,
    store: MetaStore,
}

/// The directory holding subvolumes of `kind`.
fn kind_dir(kind: Kind) -> &'static str {
    match kind {
        Kind::Active => "active",
        Kind::View => "view",
        Kind::Committed => "snapshots",
    }
}

fn io_failure(what: String, err: io::Error) -> PluginError {
    PluginError::internal(format!("{what}: {err}"))
}

impl BtrfsSnapshotter {
    /// Opens the snapshotter in `root`, which must be on btrfs.
    pub fn open(root: PathBuf) -> Result<BtrfsSnapshotter> {
        for kind in [Kind::Active, Kind::View, Kind::Committed] {
            let dir = root.join(kind_dir(kind));
            fs::create_dir_all(&dir)
                .map_err(|err| PluginError::io(format!("create {}", dir.display()), err))?;
        }
        let store = MetaStore::open(&root)?;
        Ok(BtrfsSnapshotter { root, store })
    }

    fn path(&self, kind: Kind, id: u64) -> PathBuf {
        self.root.join(kind_dir(kind)).join(id.to_string())
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
            source: self
                .path(snapshot.kind, snapshot.id)
                .to_string_lossy()
                .into_owned(),
            target: String::new(),
            options: vec![mode.into(), "rbind".into()],
        }])
    }

    /// Destroys the subvolume of `kind` and `id` if it exists.
    fn destroy(&self, kind: Kind, id: u64) -> Result<()> {
        destroy_if_present(&self.root.join(kind_dir(kind)), &id.to_string())
    }

    fn create(&self, kind: Kind, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        let snapshot = self.store.create(kind, key, parent, labels, |snapshot| {
            // Left by a crash before its record was written.
            self.destroy(kind, snapshot.id)?;
            let dir = self.root.join(kind_dir(kind));
            let name = snapshot.id.to_string();
            let made = match snapshot.parent_ids.first() {
                Some(parent) => snapshot_subvolume(
                    &self.path(Kind::Committed, *parent),
                    &dir,
                    OsStr::new(&name),
                    kind == Kind::View,
                ),
                None => create_subvolume(&dir, OsStr::new(&name)),
            };
            made.map_err(|err| {
                io_failure(
                    format!(
                        "failed to create snapshot {key}: subvolume {}/{name}",
                        dir.display()
                    ),
                    err,
                )
            })
        })?;
        self.mounts_of(key, &snapshot)
    }
}

fn destroy_if_present(dir: &Path, name: &str) -> Result<()> {
    let path = dir.join(name);
    if fs::symlink_metadata(&path).is_err() {
        return Ok(());
    }
    // A subvolume's root directory has inode 256; anything else is a plain leftover.
    if fs::symlink_metadata(&path).map(|m| m.ino()).ok() == Some(256) {
        destroy_subvolume(dir, OsStr::new(name))
            .map_err(|err| io_failure(format!("destroy subvolume {}", path.display()), err))
    } else {
        fs::remove_dir_all(&path)
            .map_err(|err| io_failure(format!("remove {}", path.display()), err))
    }
}

impl Snapshotter for BtrfsSnapshotter {
    fn stat(&self, key: &str) -> Result<Info> {
        self.store.stat(key)
    }

    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        self.store.update(info, fieldpaths)
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        let (_, snapshot) = self.store.snapshot(key)?;
        disk_usage(&self.path(snapshot.kind, snapshot.id))
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

    /// Snapshots the active subvolume read-only into `snapshots/`, records the commit, then
    /// destroys the active subvolume.
    fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        let snapshot = self.store.commit(name, key, labels, |snapshot| {
            self.destroy(Kind::Committed, snapshot.id)?;
            let id = snapshot.id.to_string();
            snapshot_subvolume(
                &self.path(Kind::Active, snapshot.id),
                &self.root.join(kind_dir(Kind::Committed)),
                OsStr::new(&id),
                true,
            )
            .map_err(|err| {
                io_failure(
                    format!("failed to commit snapshot {key}: read-only snapshot"),
                    err,
                )
            })
        })?;
        self.destroy(Kind::Active, snapshot.id)
    }

    fn remove(&self, key: &str) -> Result<()> {
        let snapshot = self.store.remove(key)?;
        self.destroy(snapshot.kind, snapshot.id)
    }

    fn walk(&self) -> Result<Vec<Info>> {
        Ok(self.store.walk())
    }

    /// Destroys subvolumes no record refers to (left by a crash mid-operation).
    fn cleanup(&self) -> Result<()> {
        let live = self.store.ids();
        for kind in [Kind::Active, Kind::View, Kind::Committed] {
            let dir = self.root.join(kind_dir(kind));
            let entries = fs::read_dir(&dir)
                .map_err(|err| io_failure(format!("list {}", dir.display()), err))?;
            for entry in entries.flatten() {
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let used = name
                    .parse::<u64>()
                    .is_ok_and(|id| live.get(&id) == Some(&kind));
                if !used {
                    destroy_if_present(&dir, &name)?;
                }
            }
        }
        Ok(())
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
            // Not a missing prerequisite (`rcontainerd_pkg::prereq`): on btrfs the plugin rightly
            // initialises, and the conformance tests cover that. Nothing to check here.
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
