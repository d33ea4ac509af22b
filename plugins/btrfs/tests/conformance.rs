//! The snapshotter conformance suite against btrfs, on a real btrfs filesystem made in a
//! loop-mounted image file. Where that cannot be set up (not root, no `mkfs.btrfs`, no loop
//! devices), skipped with the reason printed, or failed where `RCONTAINERD_REQUIRE_PREREQS` is
//! set (`rcontainerd_pkg::prereq`).

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use rcontainerd_plugin_api::{
    host::load_library, snapshot::Snapshotter, testsuite, Driver, InitContext,
};
use rcontainerd_plugin_btrfs::BtrfsSnapshotter;

/// A btrfs filesystem mounted from an image file; unmounted (and the image deleted) on drop.
struct LoopBtrfs {
    dir: tempfile::TempDir,
    mounted: bool,
    next: AtomicUsize,
}

impl LoopBtrfs {
    /// Makes and mounts the filesystem, or says why it cannot.
    fn new() -> Result<LoopBtrfs, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("mounting a loop device needs root".into());
        }
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let mut fixture = LoopBtrfs {
            dir,
            mounted: false,
            next: AtomicUsize::new(0),
        };
        let image = fixture.dir.path().join("btrfs.img");
        let mnt = fixture.mnt();
        std::fs::create_dir(&mnt).map_err(|err| err.to_string())?;
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(1 << 30))
            .map_err(|err| format!("create {}: {err}", image.display()))?;
        run(Command::new("mkfs.btrfs").arg("-q").arg(&image))?;
        run(Command::new("mount")
            .arg("-o")
            .arg("loop")
            .arg(&image)
            .arg(&mnt))?;
        fixture.mounted = true;
        Ok(fixture)
    }

    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    fn next_root(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.mnt().join(n.to_string())
    }
}

impl Drop for LoopBtrfs {
    fn drop(&mut self) {
        if self.mounted {
            // Detaching also frees the loop device once the last user is gone.
            let _ = Command::new("umount").arg("-l").arg(self.mnt()).status();
        }
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|err| format!("run {command:?}: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn fixture() -> Option<LoopBtrfs> {
    match LoopBtrfs::new() {
        Ok(fixture) => Some(fixture),
        Err(reason) => {
            rcontainerd_pkg::prereq::missing(format_args!("a btrfs filesystem: {reason}"));
            None
        }
    }
}

#[test]
fn the_rust_type_conforms() {
    let Some(btrfs) = fixture() else { return };
    testsuite::snapshot::run_all(&mut || {
        Arc::new(BtrfsSnapshotter::open(btrfs.next_root()).unwrap()) as Arc<dyn Snapshotter>
    });
}

#[test]
fn the_loaded_library_conforms() {
    let Some(btrfs) = fixture() else { return };
    let plugins = load_library(&library()).unwrap_or_else(|err| panic!("{err}"));
    testsuite::snapshot::run_all(&mut || {
        let instance = plugins[0]
            .init(InitContext {
                root: btrfs.next_root(),
                ..InitContext::default()
            })
            .unwrap();
        match instance.driver {
            Driver::Snapshotter(s) => s,
            other => panic!("btrfs provides {other:?}"),
        }
    });
}

#[test]
fn snapshots_are_subvolumes_and_commit_is_read_only() {
    let Some(btrfs) = fixture() else { return };
    let root = btrfs.next_root();
    let s = BtrfsSnapshotter::open(root.clone()).unwrap();
    let mounts = s.prepare("a", "", Default::default()).unwrap();
    let active = Path::new(&mounts[0].source);
    assert_eq!(active, root.join("active/1"));
    assert_eq!(mounts[0].options, ["rw", "rbind"]);
    std::fs::write(active.join("f"), b"x").unwrap();
    s.commit("c", "a", Default::default()).unwrap();
    assert!(!active.exists(), "the active subvolume outlived its commit");
    let committed = root.join("snapshots/1");
    assert_eq!(std::fs::read(committed.join("f")).unwrap(), b"x");
    let err = std::fs::write(committed.join("g"), b"y").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::EROFS), "{err}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&committed).unwrap().ino(),
        256,
        "not a subvolume"
    );

    // A subvolume left by a crash (no record) goes in cleanup.
    let stray = root.join("active/99");
    run(Command::new("btrfs")
        .args(["subvolume", "create"])
        .arg(&stray))
    .unwrap();
    s.cleanup().unwrap();
    assert!(!stray.exists());
    assert!(committed.exists());
    s.remove("c").unwrap();
    assert!(!committed.exists());
}

/// The library next to this test (the test build writes it into `deps`).
fn library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let name = "librcontainerd_plugin_btrfs.so";
    [deps.join(name), deps.parent().unwrap().join(name)]
        .into_iter()
        .find(|path| path.exists())
        .expect("the plugin library is built")
}
