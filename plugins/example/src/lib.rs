//! `io.containerd.snapshotter.v1.example` — a small, complete snapshotter to copy when writing a
//! driver. Each snapshot is a directory `<root>/snapshots/<id>`; a child starts as a copy of its
//! parent's files, and clients get bind mounts. The records (key, kind, parent, labels, times)
//! live in the plugin API's crash-safe record store, `snapshot::storage::MetaStore`, a journal
//! in `<root>/metadata.journal`: after a restart every snapshot is still there. A real driver
//! stacks layers instead of copying them; see `docs/plugin-authors.md`.

use std::{
    fs, io,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    sync::Arc,
};

// Everything a driver needs comes from the plugin API crate; no abi_stable code is written here.
use rcontainerd_plugin_api::{
    export_plugin,
    snapshot::{
        storage::{disk_usage, remove_tree, MetaStore, Snapshot},
        Info, Kind, Labels, Mount, Snapshotter, Usage,
    },
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

    // Called once per daemon start, on a thread that may block. `ctx.root` is this plugin's own
    // directory (`<daemon root>/<uri>`); it may not exist yet. A driver that cannot work on this
    // host returns `PluginError::skip(reason)`: the daemon then lists it as skipped, not failed.
    fn init(ctx: InitContext) -> Result<PluginInstance> {
        let config: Config = ctx.parse_config()?;
        let driver = ExampleSnapshotter::open(ctx.root.clone(), config.lazy_remove)?;
        // Exports are shown by `ctr plugins ls -d`; containerd's snapshotters export `root`.
        Ok(PluginInstance::new(Driver::Snapshotter(Arc::new(driver)))
            .export("root", ctx.root.to_string_lossy()))
    }
}

/// The driver. Methods take `&self` and may be called from several threads at once; the record
/// store is safe to share and has every change on disk before it returns.
#[derive(Debug)]
pub struct ExampleSnapshotter {
    root: PathBuf,
    lazy_remove: bool,
    store: MetaStore,
}

impl ExampleSnapshotter {
    /// Opens the snapshotter in `root`, with the records an earlier run left there.
    pub fn open(root: PathBuf, lazy_remove: bool) -> Result<Self> {
        let snapshots = root.join("snapshots");
        fs::create_dir_all(&snapshots)
            .map_err(|err| PluginError::io(format!("create {}", snapshots.display()), err))?;
        let store = MetaStore::open(&root)?;
        Ok(ExampleSnapshotter {
            root,
            lazy_remove,
            store,
        })
    }

    // A snapshot's directory is named by the id the store gave it, never by its key: keys are
    // the daemon's (arbitrary strings), and commit renames one without moving any files.
    fn dir(&self, id: u64) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    fn mounts_of(&self, key: &str, snapshot: &Snapshot) -> Result<Vec<Mount>> {
        let mode = match snapshot.kind {
            Kind::Active => "rw",
            Kind::View => "ro",
            Kind::Committed => {
                return Err(PluginError::failed_precondition(format!(
                    "snapshot {key}: committed snapshots have no mounts"
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

    // Shared by prepare (writable) and view (read-only). The store enforces the model (a free
    // key, a committed parent) and writes the record only once the closure made the directory.
    fn create(&self, kind: Kind, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        let snapshot = self.store.create(kind, key, parent, labels, |snapshot| {
            let dir = self.dir(snapshot.id);
            // A crash before the record was written can leave this id's directory behind.
            remove_tree(&dir)?;
            let made = fs::create_dir(&dir).and_then(|()| match snapshot.parent_ids.first() {
                Some(parent) => copy_tree(&self.dir(*parent), &dir),
                None => Ok(()),
            });
            made.map_err(|err| {
                let _ = fs::remove_dir_all(&dir);
                PluginError::io(format!("snapshot {key}: create {}", dir.display()), err)
            })
        })?;
        self.mounts_of(key, &snapshot)
    }
}

impl Snapshotter for ExampleSnapshotter {
    fn stat(&self, key: &str) -> Result<Info> {
        self.store.stat(key)
    }

    // Optional (the trait's default answers NotImplemented); the store does it in one call.
    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        self.store.update(info, fieldpaths)
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        let (_, snapshot) = self.store.snapshot(key)?;
        disk_usage(&self.dir(snapshot.id))
            .map_err(|err| PluginError::io(format!("snapshot {key}: usage"), err))
    }

    // Called on the daemon's async workers: answered from the store's memory, no disk I/O.
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

    // The directory keeps its id, so only the record changes. The closure could seal the
    // layer (make it read-only) before the record says committed; a copy needs nothing.
    fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        self.store.commit(name, key, labels, |_| Ok(())).map(drop)
    }

    // The record goes first: a crash in between leaves only a directory that cleanup removes.
    fn remove(&self, key: &str) -> Result<()> {
        let snapshot = self.store.remove(key)?;
        if self.lazy_remove {
            return Ok(());
        }
        remove_tree(&self.dir(snapshot.id))
    }

    fn walk(&self) -> Result<Vec<Info>> {
        Ok(self.store.walk())
    }

    // Removes directories no record names (lazy removes, leftovers of a crash).
    fn cleanup(&self) -> Result<()> {
        self.store.remove_unrecorded(&self.root.join("snapshots"))
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

// Generates the library's entry points: the stable-ABI root module, its panic guards and the
// plain manifest the daemon reads first. Exactly once per library.
export_plugin!(ExamplePlugin);
