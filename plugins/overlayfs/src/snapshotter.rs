//! The overlay snapshotter: each snapshot is a directory `<root>/snapshots/<id>` holding its
//! upper layer `fs` (and `work`, overlay's scratch directory, for active snapshots); a
//! snapshot's mounts stack its parents' `fs` directories as lower layers.

use std::{
    fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use rcontainerd_plugin_api::{
    snapshot::{
        storage::{disk_usage, MetaStore, Snapshot},
        Info, Kind, Labels, Mount, Snapshotter, Usage,
    },
    PluginError, Result,
};

use crate::Config;

/// The label that names a snapshot's upper directory (with `upperdir_label = true`).
pub const UPPERDIR_LABEL: &str = "containerd.io/snapshot/overlay.upperdir";

/// The driver.
#[derive(Debug)]
pub struct OverlaySnapshotter {
    root: PathBuf,
    config: Config,
    store: MetaStore,
    /// Whether to mount with `index=off` (when the kernel has overlay's index feature).
    index_off: bool,
}

impl OverlaySnapshotter {
    /// Opens the snapshotter in `root` (creating `root/snapshots` and its journal).
    pub fn open(root: PathBuf, config: Config) -> Result<OverlaySnapshotter> {
        for dir in [root.join("snapshots"), root.join("trash")] {
            fs::create_dir_all(&dir)
                .map_err(|err| PluginError::io(format!("create {}", dir.display()), err))?;
        }
        let store = MetaStore::open(&root)?;
        Ok(OverlaySnapshotter {
            root,
            config,
            store,
            index_off: Path::new("/sys/module/overlay/parameters/index").exists(),
        })
    }

    /// The configuration init accepted.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    fn upper(&self, id: u64) -> PathBuf {
        self.dir(id).join("fs")
    }

    fn work(&self, id: u64) -> PathBuf {
        self.dir(id).join("work")
    }

    fn with_label(&self, mut info: Info, id: u64) -> Info {
        if self.config.upperdir_label {
            info.labels.insert(
                UPPERDIR_LABEL.to_string(),
                self.upper(id).to_string_lossy().into_owned(),
            );
        }
        info
    }

    fn mounts_of(&self, key: &str, snapshot: &Snapshot) -> Result<Vec<Mount>> {
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        let bind = |source: PathBuf, mode: &str| Mount {
            mount_type: "bind".into(),
            source: path(source),
            target: String::new(),
            options: vec![mode.into(), "rbind".into()],
        };
        let mut options = Vec::new();
        match (snapshot.kind, snapshot.parent_ids.as_slice()) {
            (Kind::Committed, _) => {
                return Err(PluginError::failed_precondition(format!(
                    "requested snapshot {key} not active or view"
                )))
            }
            // Overlay needs a lower layer; alone, a snapshot is its own directory.
            (Kind::Active, []) => return Ok(vec![bind(self.upper(snapshot.id), "rw")]),
            (Kind::View, []) => return Ok(vec![bind(self.upper(snapshot.id), "ro")]),
            (Kind::View, [only]) => return Ok(vec![bind(self.upper(*only), "ro")]),
            (Kind::Active, _) => {
                if self.index_off {
                    options.push("index=off".to_string());
                }
                options.push(format!("workdir={}", self.work(snapshot.id).display()));
                options.push(format!("upperdir={}", self.upper(snapshot.id).display()));
            }
            (Kind::View, _) => {
                if self.index_off {
                    options.push("index=off".to_string());
                }
            }
        }
        let lower: Vec<String> = snapshot
            .parent_ids
            .iter()
            .map(|id| path(self.upper(*id)))
            .collect();
        options.push(format!("lowerdir={}", lower.join(":")));
        options.extend(self.config.mount_options.iter().cloned());
        Ok(vec![Mount {
            mount_type: "overlay".into(),
            source: "overlay".into(),
            target: String::new(),
            options,
        }])
    }

    fn create(&self, kind: Kind, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        let snapshot = self.store.create(kind, key, parent, labels, |snapshot| {
            self.make_dirs(snapshot).map_err(|err| {
                let _ = fs::remove_dir_all(self.dir(snapshot.id));
                PluginError::internal(format!(
                    "failed to create snapshot {key}: directory {}: {err}",
                    self.dir(snapshot.id).display()
                ))
            })
        })?;
        self.mounts_of(key, &snapshot)
    }

    fn make_dirs(&self, snapshot: &Snapshot) -> io::Result<()> {
        let dir = self.dir(snapshot.id);
        if dir.exists() {
            // Left by a crash before its record was written.
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir(&dir)?;
        let upper = self.upper(snapshot.id);
        fs::create_dir(&upper)?;
        if snapshot.kind == Kind::Active {
            fs::create_dir(self.work(snapshot.id))?;
        }
        // The new layer's root takes the owner of the layer below (user-namespaced images).
        if let Some(parent) = snapshot.parent_ids.first() {
            let below = fs::metadata(self.upper(*parent))?;
            std::os::unix::fs::chown(&upper, Some(below.uid()), Some(below.gid()))?;
        }
        Ok(())
    }

    /// Deletes a removed snapshot's directory, now or in the background.
    fn discard(&self, id: u64) -> Result<()> {
        let dir = self.dir(id);
        if self.config.sync_remove {
            return remove_tree(&dir);
        }
        let trash = self.root.join("trash").join(id.to_string());
        fs::rename(&dir, &trash)
            .map_err(|err| PluginError::internal(format!("move {}: {err}", dir.display())))?;
        std::thread::spawn(move || {
            let _ = fs::remove_dir_all(trash);
        });
        Ok(())
    }
}

fn remove_tree(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(PluginError::internal(format!(
            "remove {}: {err}",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn stat(&self, key: &str) -> Result<Info> {
        let (info, snapshot) = self.store.snapshot(key)?;
        Ok(self.with_label(info, snapshot.id))
    }

    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        let name = info.name.clone();
        let updated = self.store.update(info, fieldpaths)?;
        let (_, snapshot) = self.store.snapshot(&name)?;
        Ok(self.with_label(updated, snapshot.id))
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        let (_, snapshot) = self.store.snapshot(key)?;
        disk_usage(&self.upper(snapshot.id))
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
        let snapshot = self.store.commit(name, key, labels, |_| Ok(()))?;
        // Overlay's scratch directory is of no use to a read-only layer.
        let _ = fs::remove_dir_all(self.work(snapshot.id));
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<()> {
        let snapshot = self.store.remove(key)?;
        self.discard(snapshot.id)
    }

    fn walk(&self) -> Result<Vec<Info>> {
        Ok(self
            .store
            .walk_with_ids()
            .into_iter()
            .map(|(info, id)| self.with_label(info, id))
            .collect())
    }

    /// Deletes directories no record refers to: removals still in the trash and layers a
    /// crash left before their record was written.
    fn cleanup(&self) -> Result<()> {
        let live = self.store.id_set();
        let snapshots = self.root.join("snapshots");
        let entries = fs::read_dir(&snapshots)
            .map_err(|err| PluginError::internal(format!("list {}: {err}", snapshots.display())))?;
        for entry in entries.flatten() {
            let id = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok());
            if !id.is_some_and(|id| live.contains(&id)) {
                remove_tree(&entry.path())?;
            }
        }
        let trash = self.root.join("trash");
        if let Ok(entries) = fs::read_dir(&trash) {
            for entry in entries.flatten() {
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }
}
