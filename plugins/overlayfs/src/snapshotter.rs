//! The overlay snapshotter: each snapshot is a directory `<root>/snapshots/<id>` holding its
//! upper layer `fs` (and `work`, overlay's scratch directory, if it was created active); a
//! snapshot's mounts stack its parents' `fs` directories as lower layers.

use std::{
    fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use rcontainerd_plugin_api::{
    snapshot::{
        storage::{disk_usage, remove_tree, MetaStore, Snapshot},
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
        if let Err(err) = fs::create_dir(&dir) {
            if err.kind() != io::ErrorKind::AlreadyExists {
                return Err(err);
            }
            // Left by a crash before its record was written.
            fs::remove_dir_all(&dir)?;
            fs::create_dir(&dir)?;
        }
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
        match fs::rename(&dir, &trash) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => {
                return Err(PluginError::internal(format!(
                    "move {} to the trash: {err}",
                    dir.display()
                )))
            }
            Ok(()) => {}
        }
        std::thread::spawn(move || {
            let _ = fs::remove_dir_all(trash);
        });
        Ok(())
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
        // A view writes nothing: containerd's overlay reports it as empty,
        // whatever its (unused) directory takes.
        if snapshot.kind == Kind::View {
            return Ok(Usage::default());
        }
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
        // The layer keeps its `work` directory, as containerd's does: removing it
        // would cost every commit a directory deletion for a few bytes.
        self.store.commit(name, key, labels, |_| Ok(()))?;
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
        self.store.remove_unrecorded(&self.root.join("snapshots"))?;
        let trash = self.root.join("trash");
        if let Ok(entries) = fs::read_dir(&trash) {
            for entry in entries.flatten() {
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcontainerd_plugin_api::ErrorKind;

    fn open(root: &Path, config: Config) -> OverlaySnapshotter {
        let s = OverlaySnapshotter::open(root.to_path_buf(), config).unwrap();
        assert!(s.index_off, "this kernel's overlay has the index feature");
        s
    }

    fn committed(s: &OverlaySnapshotter, name: &str, parent: &str) {
        let key = format!("{name}-active");
        s.prepare(&key, parent, Labels::new()).unwrap();
        s.commit(name, &key, Labels::new()).unwrap();
    }

    fn fs_of(root: &Path, id: u64) -> String {
        root.join(format!("snapshots/{id}/fs"))
            .display()
            .to_string()
    }

    #[test]
    fn mounts_have_containerds_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let config = Config {
            mount_options: vec!["volatile".into()],
            ..Config::default()
        };
        let s = open(root, config);
        let alone = s.prepare("alone", "", Labels::new()).unwrap();
        assert_eq!(alone.len(), 1);
        assert_eq!(
            (alone[0].mount_type.as_str(), alone[0].source.clone()),
            ("bind", fs_of(root, 1))
        );
        assert_eq!(alone[0].options, ["rw", "rbind"]);
        s.commit("one", "alone", Labels::new()).unwrap();
        committed(&s, "two", "one");

        let view = s.view("view-one", "one", Labels::new()).unwrap();
        assert_eq!(
            (view[0].mount_type.as_str(), view[0].source.clone()),
            ("bind", fs_of(root, 1))
        );
        assert_eq!(view[0].options, ["ro", "rbind"]);

        let active = s.prepare("top", "two", Labels::new()).unwrap();
        let id = 4;
        assert_eq!(
            (active[0].mount_type.as_str(), active[0].source.as_str()),
            ("overlay", "overlay")
        );
        assert_eq!(
            active[0].options,
            [
                "index=off".to_string(),
                format!(
                    "workdir={}",
                    root.join(format!("snapshots/{id}/work")).display()
                ),
                format!("upperdir={}", fs_of(root, id)),
                format!("lowerdir={}:{}", fs_of(root, 2), fs_of(root, 1)),
                "volatile".to_string(),
            ]
        );
        let view = s.view("view-two", "two", Labels::new()).unwrap();
        assert_eq!(
            view[0].options,
            [
                "index=off".to_string(),
                format!("lowerdir={}:{}", fs_of(root, 2), fs_of(root, 1)),
                "volatile".to_string(),
            ]
        );
        // containerd's layout: a committed layer keeps the `work` it had while active.
        assert!(root.join("snapshots/1/work").is_dir());
        assert!(!root.join("snapshots/3/work").exists(), "views have none");
    }

    #[test]
    fn a_200_layer_chain_needs_more_than_a_page_of_options() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), Config::default());
        let mut parent = String::new();
        for layer in 0..200 {
            let name = format!("layer-{layer}");
            committed(&s, &name, &parent);
            parent = name;
        }
        let mounts = s.prepare("top", &parent, Labels::new()).unwrap();
        let lower = mounts[0]
            .options
            .iter()
            .find_map(|o| o.strip_prefix("lowerdir="))
            .unwrap();
        assert_eq!(lower.split(':').count(), 200);
        assert!(lower.starts_with(&fs_of(dir.path(), 200)), "newest first");
        assert!(mounts[0].options.join(",").len() > 4096);
    }

    #[test]
    fn the_upperdir_label_names_the_upper_directory() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            upperdir_label: true,
            ..Config::default()
        };
        let s = open(dir.path(), config);
        s.prepare("k", "", Labels::from([("a".into(), "1".into())]))
            .unwrap();
        let info = s.stat("k").unwrap();
        assert_eq!(info.labels[UPPERDIR_LABEL], fs_of(dir.path(), 1));
        assert_eq!(info.labels["a"], "1");
        assert_eq!(
            s.walk().unwrap()[0].labels[UPPERDIR_LABEL],
            fs_of(dir.path(), 1)
        );
        let plain = open(&dir.path().join("plain"), Config::default());
        plain.prepare("k", "", Labels::new()).unwrap();
        assert!(plain.stat("k").unwrap().labels.is_empty());
    }

    #[test]
    fn records_and_layers_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open(dir.path(), Config::default());
            committed(&s, "base", "");
            s.prepare("work", "base", Labels::new()).unwrap();
        }
        let s = open(dir.path(), Config::default());
        assert_eq!(s.stat("base").unwrap().kind, Kind::Committed);
        let mounts = s.mounts("work").unwrap();
        assert!(mounts[0]
            .options
            .contains(&format!("lowerdir={}", fs_of(dir.path(), 1))));
        assert_eq!(
            s.remove("base").unwrap_err().kind,
            ErrorKind::FailedPrecondition
        );
        let next = s.prepare("next", "", Labels::new()).unwrap();
        assert_eq!(next[0].source, fs_of(dir.path(), 3), "an id was reused");
    }

    #[test]
    fn usage_of_an_empty_committed_layer_is_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), Config::default());
        committed(&s, "empty", "");
        // On ext4 (as measured against containerd): 4096 bytes, 1 inode.
        assert_eq!(s.usage("empty").unwrap().inodes, 1);
        let expected = disk_usage(&PathBuf::from(fs_of(dir.path(), 1))).unwrap();
        assert_eq!(s.usage("empty").unwrap(), expected);
    }

    #[test]
    fn usage_of_a_view_is_zero_like_containerds() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), Config::default());
        committed(&s, "base", "");
        fs::write(PathBuf::from(fs_of(dir.path(), 1)).join("file"), b"data").unwrap();
        s.view("v", "base", Labels::new()).unwrap();
        s.view("lone", "", Labels::new()).unwrap();
        for view in ["v", "lone"] {
            assert_eq!(s.usage(view).unwrap(), Usage::default(), "{view}");
        }
        assert_eq!(s.usage("base").unwrap().inodes, 2);
    }

    #[test]
    fn lazy_removal_hides_the_layer_at_once_and_cleanup_takes_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), Config::default());
        s.prepare("gone", "", Labels::new()).unwrap();
        s.prepare("kept", "", Labels::new()).unwrap();
        s.remove("gone").unwrap();
        assert!(!dir.path().join("snapshots/1").exists());
        // As a crash between creating a layer and recording it leaves one.
        fs::create_dir_all(dir.path().join("snapshots/77/fs")).unwrap();
        s.cleanup().unwrap();
        assert!(!dir.path().join("snapshots/77").exists());
        assert!(dir.path().join("snapshots/2/fs").is_dir());
        assert_eq!(
            fs::read_dir(dir.path().join("trash")).unwrap().count(),
            0,
            "cleanup left the trash"
        );
    }
}
