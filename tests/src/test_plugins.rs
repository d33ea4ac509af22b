//! Plugin directories with deliberately broken libraries.
//!
//! The test-only plugins live in their own workspace (`tests/plugins/`) so they never land next to
//! the daemon; `tests/plugins/build.sh <target-dir>` builds them into `<target-dir>/test-plugins*/`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nix::fcntl::{Flock, FlockArg};

use crate::binaries;

/// A plain shared library that is not a plugin.
const NON_PLUGIN_SOURCE: &str = "/usr/lib/x86_64-linux-gnu/libz.so.1";

/// The test-only plugin libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestPlugin {
    /// Panics inside `init`.
    PanicInit,
    /// Initialises; its snapshotter panics in every later call and when dropped.
    PanicCall,
    /// Built against an ABI the daemon cannot serve.
    IncompatibleAbi,
    /// Claims an ABI generation newer than the daemon knows.
    FutureGeneration,
    /// Requires a plugin type nobody provides.
    MissingRequires,
    /// Built against the frozen v1 generation: must keep loading.
    AbiV1Pinned,
    /// content-local's driver exported through generation 1 (no running digest across the ABI):
    /// URI `io.containerd.content.v1.content`, so it replaces content-local.
    ContentV1Pinned,
    /// Built with `panic = "abort"`: must be refused before anything runs.
    PanicAbort,
    /// Type `io.containerd.test-cycle-a.v1`, requires `io.containerd.test-cycle-b.v1`.
    CycleA,
    /// Type `io.containerd.test-cycle-b.v1`, requires `io.containerd.test-cycle-a.v1`.
    CycleB,
    /// A runtime driver (`io.containerd.runtime.v2.fake`) offered through ABI generation 2, whose
    /// runtime object is a placeholder: loads, but its init is refused.
    RuntimePlaceholder,
    /// A working snapshotter (`io.containerd.snapshotter.v1.faulty`) that segfaults, aborts or
    /// hangs when a key starts with `segfault-`, `abort-` or `hang-`.
    Faulty,
}

impl TestPlugin {
    /// The crate's name with underscores, as in the library's file name.
    pub fn stem(self) -> &'static str {
        match self {
            TestPlugin::PanicInit => "panic_init",
            TestPlugin::PanicCall => "panic_call",
            TestPlugin::IncompatibleAbi => "incompatible_abi",
            TestPlugin::FutureGeneration => "future_generation",
            TestPlugin::MissingRequires => "missing_requires",
            TestPlugin::AbiV1Pinned => "abi_v1_pinned",
            TestPlugin::ContentV1Pinned => "content_v1_pinned",
            TestPlugin::PanicAbort => "panic_abort",
            TestPlugin::CycleA => "cycle_a",
            TestPlugin::CycleB => "cycle_b",
            TestPlugin::RuntimePlaceholder => "runtime_placeholder",
            TestPlugin::Faulty => "faulty",
        }
    }

    pub fn file_name(self) -> String {
        format!("librcontainerd_test_plugin_{}.so", self.stem())
    }

    /// The built library (builds the test plugins first if this process has not yet).
    pub fn path(self) -> PathBuf {
        ensure_built();
        // panic=abort needs its own cargo profile, hence its own target directory.
        let sub = match self {
            TestPlugin::PanicAbort => "test-plugins-abort",
            _ => "test-plugins",
        };
        let path = binaries::target_dir()
            .join(sub)
            .join("debug")
            .join(self.file_name());
        assert!(
            path.is_file(),
            "{} is missing after tests/plugins/build.sh",
            path.display()
        );
        path
    }
}

/// Runs `tests/plugins/build.sh` once per test process. A file lock keeps test binaries running in
/// parallel from building at the same time; after the first build the script is a cargo no-op.
fn ensure_built() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let target = binaries::target_dir();
        let lock_path = target.join("test-plugins.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
        let _lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| format!("locking {}: {e}", lock_path.display()))?;
        let script = binaries::workspace_root().join("tests/plugins/build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&target)
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {} failed with {}:\n{}{}",
                script.display(),
                target.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A fresh plugin directory: symlinks to every in-tree plugin next to the daemon, plus `extra`.
pub fn test_plugin_dir(extra: &[TestPlugin]) -> tempfile::TempDir {
    test_plugin_dir_without(&[], extra)
}

/// Like [`test_plugin_dir`], leaving out the in-tree libraries named in `left_out` (file names).
pub fn test_plugin_dir_without(left_out: &[&str], extra: &[TestPlugin]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rcd-plugins-")
        .tempdir()
        .expect("creating plugin dir");
    for lib in binaries::in_tree_plugins() {
        let name = lib.file_name().expect("library has a file name");
        if left_out.iter().any(|out| name == *out) {
            continue;
        }
        std::os::unix::fs::symlink(&lib, dir.path().join(name)).expect("linking in-tree plugin");
    }
    for plugin in extra {
        std::os::unix::fs::symlink(plugin.path(), dir.path().join(plugin.file_name()))
            .expect("linking test plugin");
    }
    dir
}

/// Copies a real plugin library into `dir` cut to 60% of its size: its program headers point past
/// the end of the file, which crashes a naive `dlopen` with SIGBUS.
pub fn write_truncated_so(dir: &Path) -> PathBuf {
    let source = binaries::in_tree_plugins()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("native"))
        .expect("the native snapshotter plugin is built");
    let bytes = std::fs::read(&source).expect("reading plugin library");
    let path = dir.join("librcontainerd_truncated.so");
    std::fs::write(&path, &bytes[..bytes.len() * 6 / 10]).expect("writing truncated library");
    path
}

/// Copies a plain shared library that is not a plugin into `dir` as `libnotaplugin.so`.
pub fn write_non_plugin_so(dir: &Path) -> PathBuf {
    let path = dir.join("libnotaplugin.so");
    std::fs::copy(NON_PLUGIN_SOURCE, &path)
        .unwrap_or_else(|e| panic!("copying {NON_PLUGIN_SOURCE}: {e}"));
    path
}
