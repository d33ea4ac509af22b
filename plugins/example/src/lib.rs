//! `io.containerd.snapshotter.v1.example` — a small, complete snapshotter to copy when writing a
//! driver. It keeps each snapshot in a directory `<root>/snapshots/<id>/fs`, gives a child a
//! copy of its parent's files, and hands clients bind mounts. Its records live in memory only:
//! after a restart it starts empty and `cleanup` removes the directories left behind. A real
//! driver persists its records (and layers instead of copying); see `docs/plugin-authors.md`.

use std::{
    collections::BTreeMap,
    fs, io,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::{SystemTime, UNIX_EPOCH},
};

// Everything a driver needs comes from the plugin API crate; no abi_stable code is written here.
use rcontainerd_plugin_api::{
    export_plugin,
    snapshot::{Info, Kind, Labels, Mount, Snapshotter, Usage},
    Driver, InitContext, Manifest, Plugin, PluginError, PluginInstance, Result,
};
use serde::Deserialize;

// The registration: URI `io.containerd.snapshotter.v1.example`, under which operators
// configure it (`[plugins."io.containerd.snapshotter.v1.example"]`) and clients select it
// (`ctr --snapshotter example`).
pub const PLUGIN_TYPE: &str = "io.containerd.snapshotter.v1";
pub const PLUGIN_ID: &str = "example";

// The plugin's config table with every key it accepts and its default value; the daemon prints
// it in `config default` and warns about keys not listed here.
const DEFAULT_CONFIG: &str = r#"# Keep removed snapshots' directories until cleanup instead of deleting them at once.
lazy_remove = false
"#;

// The same keys as a Rust type. `#[serde(default)]` makes every key optional; unknown keys
// are ignored (the daemon warns about them), a wrong type fails init with a clear message.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Config {
    lazy_remove: bool,
}

/// The plugin: a registration plus an init. `export_plugin!` at the bottom turns it into a
/// library the daemon can load.
pub struct ExamplePlugin;

impl Plugin for ExamplePlugin {
    // Called more than once, also before init: keep it cheap and side-effect free.
    fn manifest() -> Manifest {
        Manifest::new(PLUGIN_TYPE, PLUGIN_ID).default_config(DEFAULT_CONFIG)
    }

    // Called once, on a thread that may block. `ctx.root` is this plugin's own directory
    // (`<daemon root>/<uri>`); it may not exist yet.
    fn init(ctx: InitContext) -> Result<PluginInstance> {
        let config: Config = ctx.parse_config()?;
        let snapshots = ctx.root.join("snapshots");
        fs::create_dir_all(&snapshots)
            .map_err(|err| PluginError::io(format!("create {}", snapshots.display()), err))?;
        // A driver that cannot work on this host returns `PluginError::skip(reason)` here; the
        // daemon then lists it as skipped instead of failed.
        let driver = ExampleSnapshotter::new(ctx.root.clone(), config.lazy_remove);
        // Exports are shown by `ctr plugins ls -d`; containerd's snapshotters export `root`.
        Ok(PluginInstance::new(Driver::Snapshotter(Arc::new(driver)))
            .export("root", ctx.root.to_string_lossy()))
    }
}

/// The driver. Methods take `&self` and may be called from several threads at once, so the
/// mutable state sits behind a mutex.
#[derive(Debug)]
pub struct ExampleSnapshotter {
    root: PathBuf,
    lazy_remove: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    // Keyed by the snapshot's key (active, view) or name (committed).
    snapshots: BTreeMap<String, Record>,
}

#[derive(Debug, Clone)]
struct Record {
    id: u64,
    info: Info,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

impl ExampleSnapshotter {
    pub fn new(root: PathBuf, lazy_remove: bool) -> Self {
        ExampleSnapshotter {
            root,
            lazy_remove,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is already reported as an error by the ABI layer;
        // the records themselves stay consistent, so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    fn fs_dir(&self, id: u64) -> PathBuf {
        self.dir(id).join("fs")
    }

    fn mounts_of(&self, record: &Record) -> Result<Vec<Mount>> {
        let mode = match record.info.kind {
            Kind::Active => "rw",
            Kind::View => "ro",
            Kind::Committed => {
                return Err(PluginError::failed_precondition(format!(
                    "snapshot {}: committed snapshots have no mounts",
                    record.info.name
                )))
            }
        };
        Ok(vec![Mount {
            mount_type: "bind".into(),
            source: self.fs_dir(record.id).to_string_lossy().into_owned(),
            target: String::new(),
            options: vec!["rbind".into(), mode.into()],
        }])
    }

    // Shared by prepare (writable) and view (read-only).
    fn create(&self, kind: Kind, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        let mut state = self.state();
        if state.snapshots.contains_key(key) {
            return Err(PluginError::already_exists(format!(
                "snapshot {key}: already exists"
            )));
        }
        let parent_dir = if parent.is_empty() {
            None
        } else {
            let record = state.snapshots.get(parent).ok_or_else(|| {
                PluginError::not_found(format!("parent snapshot {parent}: not found"))
            })?;
            if record.info.kind != Kind::Committed {
                return Err(PluginError::invalid_argument(format!(
                    "parent snapshot {parent}: not committed"
                )));
            }
            Some(self.fs_dir(record.id))
        };
        state.next_id += 1;
        let id = state.next_id;
        let fs_dir = self.fs_dir(id);
        let created = fs::create_dir_all(&fs_dir).and_then(|()| match &parent_dir {
            Some(from) => copy_tree(from, &fs_dir),
            None => Ok(()),
        });
        if let Err(err) = created {
            let _ = fs::remove_dir_all(self.dir(id));
            return Err(PluginError::io(
                format!("snapshot {key}: create {}", fs_dir.display()),
                err,
            ));
        }
        let time = now();
        let record = Record {
            id,
            info: Info {
                kind,
                name: key.to_string(),
                parent: parent.to_string(),
                labels,
                created: time,
                updated: time,
            },
        };
        let mounts = self.mounts_of(&record)?;
        state.snapshots.insert(key.to_string(), record);
        Ok(mounts)
    }
}

impl Snapshotter for ExampleSnapshotter {
    fn stat(&self, key: &str) -> Result<Info> {
        self.state()
            .snapshots
            .get(key)
            .map(|record| record.info.clone())
            .ok_or_else(|| PluginError::not_found(format!("snapshot {key}: not found")))
    }

    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        let mut state = self.state();
        let record = state
            .snapshots
            .get_mut(&info.name)
            .ok_or_else(|| PluginError::not_found(format!("snapshot {}: not found", info.name)))?;
        // Only labels are mutable. No field paths means "all mutable fields".
        if fieldpaths.is_empty() {
            record.info.labels = info.labels.clone();
        }
        for path in fieldpaths {
            if path == "labels" {
                record.info.labels = info.labels.clone();
            } else if let Some(label) = path.strip_prefix("labels.") {
                match info.labels.get(label) {
                    Some(value) => record.info.labels.insert(label.to_string(), value.clone()),
                    None => record.info.labels.remove(label),
                };
            } else {
                return Err(PluginError::invalid_argument(format!(
                    "snapshot {}: cannot update field {path}",
                    info.name
                )));
            }
        }
        record.info.updated = now();
        Ok(record.info.clone())
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        let id = self
            .state()
            .snapshots
            .get(key)
            .map(|record| record.id)
            .ok_or_else(|| PluginError::not_found(format!("snapshot {key}: not found")))?;
        let mut usage = Usage::default();
        disk_usage(&self.fs_dir(id), &mut usage)
            .map_err(|err| PluginError::io(format!("snapshot {key}: usage"), err))?;
        Ok(usage)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let state = self.state();
        let record = state
            .snapshots
            .get(key)
            .ok_or_else(|| PluginError::not_found(format!("snapshot {key}: not found")))?;
        self.mounts_of(record)
    }

    fn prepare(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::Active, key, parent, labels)
    }

    fn view(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::View, key, parent, labels)
    }

    fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        let mut state = self.state();
        if state.snapshots.contains_key(name) {
            return Err(PluginError::already_exists(format!(
                "snapshot {name}: already exists"
            )));
        }
        let Some(mut record) = state.snapshots.remove(key) else {
            return Err(PluginError::not_found(format!("snapshot {key}: not found")));
        };
        if record.info.kind != Kind::Active {
            state.snapshots.insert(key.to_string(), record);
            return Err(PluginError::failed_precondition(format!(
                "snapshot {key}: only active snapshots can be committed"
            )));
        }
        record.info.kind = Kind::Committed;
        record.info.name = name.to_string();
        record.info.labels = labels;
        record.info.updated = now();
        state.snapshots.insert(name.to_string(), record);
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<()> {
        let mut state = self.state();
        if !state.snapshots.contains_key(key) {
            return Err(PluginError::not_found(format!("snapshot {key}: not found")));
        }
        if state.snapshots.values().any(|r| r.info.parent == key) {
            return Err(PluginError::failed_precondition(format!(
                "snapshot {key}: has children"
            )));
        }
        let record = state.snapshots.remove(key).expect("checked above");
        if !self.lazy_remove {
            let dir = self.dir(record.id);
            fs::remove_dir_all(&dir).map_err(|err| {
                PluginError::io(format!("snapshot {key}: remove {}", dir.display()), err)
            })?;
        }
        Ok(())
    }

    fn walk(&self) -> Result<Vec<Info>> {
        Ok(self
            .state()
            .snapshots
            .values()
            .map(|r| r.info.clone())
            .collect())
    }

    // Removes directories no record refers to (lazy removes, leftovers of an earlier run).
    fn cleanup(&self) -> Result<()> {
        let state = self.state();
        let dir = self.root.join("snapshots");
        let entries = fs::read_dir(&dir)
            .map_err(|err| PluginError::io(format!("list {}", dir.display()), err))?;
        for entry in entries.flatten() {
            let id = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok());
            let used = id.is_some_and(|id| state.snapshots.values().any(|r| r.id == id));
            if !used {
                let path = entry.path();
                fs::remove_dir_all(&path)
                    .map_err(|err| PluginError::io(format!("remove {}", path.display()), err))?;
            }
        }
        Ok(())
    }
}

/// Copies a directory tree (files, directories, symlinks; modes of files and directories).
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            fs::create_dir(&target)?;
            copy_tree(&entry.path(), &target)?;
            fs::set_permissions(&target, entry.metadata()?.permissions())?;
        } else if file_type.is_symlink() {
            symlink(fs::read_link(entry.path())?, &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn disk_usage(dir: &Path, usage: &mut Usage) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        usage.inodes += 1;
        usage.size += metadata.len() as i64;
        if metadata.is_dir() {
            disk_usage(&entry.path(), usage)?;
        }
    }
    Ok(())
}

// Generates the library's entry points: the stable-ABI root module, its panic guards and the
// plain manifest the daemon reads first. Exactly once per library.
export_plugin!(ExamplePlugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn driver(dir: &Path) -> ExampleSnapshotter {
        let instance = ExamplePlugin::init(InitContext {
            root: dir.join("root"),
            ..InitContext::default()
        })
        .unwrap();
        assert_eq!(instance.exports["root"], dir.join("root").to_string_lossy());
        ExampleSnapshotter::new(dir.join("root"), false)
    }

    fn source(mounts: &[Mount]) -> PathBuf {
        PathBuf::from(&mounts[0].source)
    }

    #[test]
    fn prepare_commit_and_a_child_sees_its_parents_files() {
        let tmp = tempfile::tempdir().unwrap();
        let s = driver(tmp.path());
        let mounts = s.prepare("base-active", "", Labels::new()).unwrap();
        assert_eq!(mounts[0].mount_type, "bind");
        assert_eq!(mounts[0].options, vec!["rbind", "rw"]);
        fs::write(source(&mounts).join("hello"), b"world").unwrap();
        s.commit("base", "base-active", Labels::new()).unwrap();
        assert_eq!(s.stat("base").unwrap().kind, Kind::Committed);
        assert_eq!(
            s.stat("base-active").unwrap_err().kind,
            rcontainerd_plugin_api::ErrorKind::NotFound
        );

        let child = s.prepare("child", "base", Labels::new()).unwrap();
        assert_eq!(fs::read(source(&child).join("hello")).unwrap(), b"world");
        let view = s.view("v", "base", Labels::new()).unwrap();
        assert_eq!(view[0].options, vec!["rbind", "ro"]);
        assert_eq!(s.stat("child").unwrap().parent, "base");
        assert_eq!(s.walk().unwrap().len(), 3);
        assert_eq!(s.usage("child").unwrap(), Usage { size: 5, inodes: 1 });
    }

    #[test]
    fn the_model_rules_are_enforced() {
        use rcontainerd_plugin_api::ErrorKind;
        let tmp = tempfile::tempdir().unwrap();
        let s = driver(tmp.path());
        s.prepare("a", "", Labels::new()).unwrap();
        assert_eq!(
            s.prepare("a", "", Labels::new()).unwrap_err().kind,
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            s.prepare("b", "a", Labels::new()).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            s.prepare("b", "nope", Labels::new()).unwrap_err().kind,
            ErrorKind::NotFound
        );
        s.commit("c", "a", Labels::new()).unwrap();
        assert_eq!(
            s.mounts("c").unwrap_err().kind,
            ErrorKind::FailedPrecondition
        );
        s.prepare("d", "c", Labels::new()).unwrap();
        assert_eq!(
            s.remove("c").unwrap_err().kind,
            ErrorKind::FailedPrecondition
        );
        s.remove("d").unwrap();
        s.remove("c").unwrap();
        assert!(s.walk().unwrap().is_empty());
        let left: Vec<_> = fs::read_dir(tmp.path().join("root/snapshots"))
            .unwrap()
            .collect();
        assert!(left.is_empty());
    }

    #[test]
    fn update_changes_only_the_named_labels() {
        let tmp = tempfile::tempdir().unwrap();
        let s = driver(tmp.path());
        let labels = Labels::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ]);
        s.prepare("k", "", labels).unwrap();
        let mut info = s.stat("k").unwrap();
        info.labels = Labels::from([("a".to_string(), "9".to_string())]);
        let updated = s
            .update(info.clone(), &["labels.a".into(), "labels.b".into()])
            .unwrap();
        assert_eq!(
            updated.labels,
            Labels::from([("a".to_string(), "9".to_string())])
        );
        let err = s.update(info, &["parent".into()]).unwrap_err();
        assert_eq!(err.kind, rcontainerd_plugin_api::ErrorKind::InvalidArgument);
    }

    #[test]
    fn cleanup_removes_directories_without_records() {
        let tmp = tempfile::tempdir().unwrap();
        let s = driver(tmp.path());
        s.prepare("kept", "", Labels::new()).unwrap();
        let stray = tmp.path().join("root/snapshots/999/fs");
        fs::create_dir_all(&stray).unwrap();
        s.cleanup().unwrap();
        assert!(!tmp.path().join("root/snapshots/999").exists());
        assert!(s.mounts("kept").is_ok());
        assert!(source(&s.mounts("kept").unwrap()).is_dir());
    }
}
