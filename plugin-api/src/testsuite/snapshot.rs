//! The snapshotter conformance suite: containerd's snapshot model as seen through
//! [`Snapshotter`], plus checks that really mount what the driver returns (as root; otherwise
//! they are skipped with a note, or fail where `RCONTAINERD_REQUIRE_PREREQS` is set): files
//! written to an active snapshot survive commit, views are read-only, layers stack, usage
//! counts what was written, and a chain of [`CHAIN_DEPTH`] layers mounts with every layer's
//! file visible.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use rcontainerd_mount::MountGuard;

use super::{ensure, Check, CheckResult};
use crate::{
    snapshot::{Kind, Labels, Snapshotter},
    ErrorKind, PluginError, Result,
};

/// Every check, by name.
pub const CHECKS: &[Check<dyn Snapshotter>] = &[
    (
        "prepare creates an active snapshot",
        prepare_creates_an_active_snapshot,
    ),
    (
        "commit turns active into committed",
        commit_turns_active_into_committed,
    ),
    ("view of a committed parent", view_of_a_committed_parent),
    ("parent must be committed", parent_must_be_committed),
    ("existing names are refused", existing_names_are_refused),
    (
        "missing snapshots are not found",
        missing_snapshots_are_not_found,
    ),
    (
        "committed snapshots have no mounts",
        committed_snapshots_have_no_mounts,
    ),
    (
        "remove refuses a parent with children",
        remove_refuses_a_parent_with_children,
    ),
    ("walk lists every snapshot", walk_lists_every_snapshot),
    (
        "update changes only named labels",
        update_changes_only_named_labels,
    ),
    ("commit of a view is refused", commit_of_a_view_is_refused),
    ("kinds are reported", kinds_are_reported),
    ("removed snapshots are gone", removed_snapshots_are_gone),
    (
        "mounted files persist through commit",
        mounted_files_persist_through_commit,
    ),
    ("usage counts written data", usage_counts_written_data),
    ("a long chain mounts", a_long_chain_mounts),
];

/// Layers in the chain [`a_long_chain_mounts`] builds: enough that an overlay of all of them
/// needs far more than one page of mount options.
pub const CHAIN_DEPTH: usize = 200;

/// Runs every check, each on a fresh snapshotter from `make`; panics listing the failures.
pub fn run_all(make: &mut dyn FnMut() -> Arc<dyn Snapshotter>) {
    super::run("snapshotter", CHECKS, make);
}

/// Runs every check through the built library at `library`, loaded and initialised the way the
/// daemon does (one fresh root per check): the proof that the driver works across the ABI.
pub fn run_all_loaded(library: &std::path::Path) {
    let roots = super::Roots::new();
    let mut init = super::init_loaded(library, &roots);
    run_all(&mut || match init() {
        crate::Driver::Snapshotter(driver) => driver,
        other => panic!(
            "{} provides {other:?}, not a snapshotter",
            library.display()
        ),
    });
}

use rcontainerd_pkg::labels::from_pairs as labels;

fn step<T>(what: &str, result: Result<T>) -> std::result::Result<T, String> {
    result.map_err(|err| format!("{what}: {err} ({:?})", err.kind))
}

fn expect_kind<T>(what: &str, result: Result<T>, kind: ErrorKind) -> CheckResult {
    match result {
        Ok(_) => Err(format!("{what}: succeeded, expected {kind}")),
        Err(PluginError { kind: got, message }) if got != kind => {
            Err(format!("{what}: got {got} ({message}), expected {kind}"))
        }
        Err(_) => Ok(()),
    }
}

fn committed(s: &dyn Snapshotter, name: &str, parent: &str) -> CheckResult {
    let key = format!("{name}-active");
    step("prepare", s.prepare(&key, parent, Labels::new()))?;
    step("commit", s.commit(name, &key, Labels::new()))
}

pub fn prepare_creates_an_active_snapshot(s: &dyn Snapshotter) -> CheckResult {
    let l = labels(&[("containerd.io/gc.root", "now")]);
    let mounts = step("prepare a", s.prepare("a", "", l.clone()))?;
    ensure!(!mounts.is_empty(), "prepare returned no mounts");
    let info = step("stat a", s.stat("a"))?;
    ensure!(
        info.kind == Kind::Active,
        "kind is {:?}, expected Active",
        info.kind
    );
    ensure!(info.name == "a", "name is {:?}", info.name);
    ensure!(info.parent.is_empty(), "parent is {:?}", info.parent);
    ensure!(info.labels == l, "labels are {:?}", info.labels);
    ensure!(
        info.created > 0 && info.updated >= info.created,
        "bad timestamps {info:?}"
    );
    let again = step("mounts a", s.mounts("a"))?;
    ensure!(
        again == mounts,
        "mounts {again:?} differ from prepare's {mounts:?}"
    );
    Ok(())
}

pub fn commit_turns_active_into_committed(s: &dyn Snapshotter) -> CheckResult {
    step("prepare", s.prepare("work", "", Labels::new()))?;
    let l = labels(&[("k", "v")]);
    step("commit", s.commit("layer", "work", l.clone()))?;
    let info = step("stat layer", s.stat("layer"))?;
    ensure!(info.kind == Kind::Committed, "kind is {:?}", info.kind);
    ensure!(info.labels == l, "labels are {:?}", info.labels);
    expect_kind(
        "stat of the committed key",
        s.stat("work"),
        ErrorKind::NotFound,
    )
}

pub fn view_of_a_committed_parent(s: &dyn Snapshotter) -> CheckResult {
    committed(s, "base", "")?;
    let mounts = step("view", s.view("v", "base", Labels::new()))?;
    ensure!(!mounts.is_empty(), "view returned no mounts");
    let info = step("stat v", s.stat("v"))?;
    ensure!(info.kind == Kind::View, "kind is {:?}", info.kind);
    ensure!(info.parent == "base", "parent is {:?}", info.parent);
    let child = step("prepare on base", s.prepare("c", "base", Labels::new()))?;
    ensure!(!child.is_empty(), "prepare on a parent returned no mounts");
    ensure!(
        s.commit("from-view", "v", Labels::new()).is_err(),
        "a view was committed"
    );
    Ok(())
}

pub fn parent_must_be_committed(s: &dyn Snapshotter) -> CheckResult {
    step("prepare", s.prepare("active", "", Labels::new()))?;
    expect_kind(
        "prepare on an active parent",
        s.prepare("child", "active", Labels::new()),
        ErrorKind::InvalidArgument,
    )?;
    expect_kind(
        "prepare on a missing parent",
        s.prepare("child", "missing", Labels::new()),
        ErrorKind::NotFound,
    )
}

pub fn existing_names_are_refused(s: &dyn Snapshotter) -> CheckResult {
    committed(s, "done", "")?;
    step("prepare", s.prepare("busy", "", Labels::new()))?;
    expect_kind(
        "prepare of an existing key",
        s.prepare("busy", "", Labels::new()),
        ErrorKind::AlreadyExists,
    )?;
    expect_kind(
        "view of an existing key",
        s.view("done", "", Labels::new()),
        ErrorKind::AlreadyExists,
    )?;
    expect_kind(
        "commit to an existing name",
        s.commit("done", "busy", Labels::new()),
        ErrorKind::AlreadyExists,
    )?;
    let info = step("stat busy", s.stat("busy"))?;
    ensure!(
        info.kind == Kind::Active,
        "a refused commit changed {info:?}"
    );
    Ok(())
}

pub fn missing_snapshots_are_not_found(s: &dyn Snapshotter) -> CheckResult {
    expect_kind("stat", s.stat("missing"), ErrorKind::NotFound)?;
    expect_kind("mounts", s.mounts("missing"), ErrorKind::NotFound)?;
    expect_kind("usage", s.usage("missing"), ErrorKind::NotFound)?;
    expect_kind("remove", s.remove("missing"), ErrorKind::NotFound)?;
    expect_kind(
        "commit",
        s.commit("x", "missing", Labels::new()),
        ErrorKind::NotFound,
    )
}

pub fn committed_snapshots_have_no_mounts(s: &dyn Snapshotter) -> CheckResult {
    committed(s, "layer", "")?;
    expect_kind(
        "mounts of a committed snapshot",
        s.mounts("layer"),
        ErrorKind::FailedPrecondition,
    )
}

pub fn remove_refuses_a_parent_with_children(s: &dyn Snapshotter) -> CheckResult {
    committed(s, "parent", "")?;
    step("prepare child", s.prepare("child", "parent", Labels::new()))?;
    expect_kind(
        "remove of a parent",
        s.remove("parent"),
        ErrorKind::FailedPrecondition,
    )?;
    step("remove child", s.remove("child"))?;
    step("remove parent", s.remove("parent"))?;
    let left = step("walk", s.walk())?;
    ensure!(left.is_empty(), "walk after removing everything: {left:?}");
    step("cleanup", s.cleanup())
}

pub fn walk_lists_every_snapshot(s: &dyn Snapshotter) -> CheckResult {
    committed(s, "one", "")?;
    committed(s, "two", "one")?;
    step("view", s.view("three", "two", Labels::new()))?;
    let mut names: Vec<String> = step("walk", s.walk())?
        .into_iter()
        .map(|info| info.name)
        .collect();
    names.sort();
    ensure!(names == ["one", "three", "two"], "walk listed {names:?}");
    let two = step("stat two", s.stat("two"))?;
    ensure!(two.parent == "one", "parent of two is {:?}", two.parent);
    Ok(())
}

pub fn update_changes_only_named_labels(s: &dyn Snapshotter) -> CheckResult {
    step(
        "prepare",
        s.prepare("k", "", labels(&[("a", "1"), ("b", "2")])),
    )?;
    let mut info = step("stat", s.stat("k"))?;
    info.labels = labels(&[("a", "9"), ("c", "3")]);
    let first = s.update(info.clone(), &["labels.a".into()]);
    // `update` is optional: a driver that keeps the trait's default passes.
    if matches!(&first, Err(err) if err.kind == ErrorKind::NotImplemented) {
        return Ok(());
    }
    let updated = step("update labels.a", first)?;
    ensure!(
        updated.labels == labels(&[("a", "9"), ("b", "2")]),
        "after updating labels.a: {:?}",
        updated.labels
    );
    let replaced = step("update labels", s.update(info, &["labels".into()]))?;
    ensure!(
        replaced.labels == labels(&[("a", "9"), ("c", "3")]),
        "after replacing labels: {:?}",
        replaced.labels
    );
    let stored = step("stat", s.stat("k"))?;
    ensure!(
        stored.labels == replaced.labels,
        "stat shows {:?}",
        stored.labels
    );
    Ok(())
}

pub fn commit_of_a_view_is_refused(s: &dyn Snapshotter) -> CheckResult {
    committed(s, "base", "")?;
    step("view", s.view("v", "base", Labels::new()))?;
    expect_kind(
        "commit of a view",
        s.commit("from-view", "v", Labels::new()),
        ErrorKind::FailedPrecondition,
    )?;
    let info = step("stat v", s.stat("v"))?;
    ensure!(info.kind == Kind::View, "a refused commit changed {info:?}");
    expect_kind(
        "stat of the refused name",
        s.stat("from-view"),
        ErrorKind::NotFound,
    )
}

pub fn kinds_are_reported(s: &dyn Snapshotter) -> CheckResult {
    committed(s, "c", "")?;
    step("prepare", s.prepare("a", "c", Labels::new()))?;
    step("view", s.view("v", "", Labels::new()))?;
    let mut seen: Vec<(String, Kind, String)> = step("walk", s.walk())?
        .into_iter()
        .map(|info| (info.name, info.kind, info.parent))
        .collect();
    seen.sort_by(|x, y| x.0.cmp(&y.0));
    let expected = [
        ("a".to_string(), Kind::Active, "c".to_string()),
        ("c".to_string(), Kind::Committed, String::new()),
        ("v".to_string(), Kind::View, String::new()),
    ];
    ensure!(seen == expected, "walk shows {seen:?}");
    for (name, kind, _) in &expected {
        let info = step("stat", s.stat(name))?;
        ensure!(info.kind == *kind, "stat {name} shows {:?}", info.kind);
    }
    let view = step("mounts of a parentless view", s.mounts("v"))?;
    ensure!(!view.is_empty(), "a parentless view has no mounts");
    Ok(())
}

pub fn removed_snapshots_are_gone(s: &dyn Snapshotter) -> CheckResult {
    committed(s, "c", "")?;
    step("prepare", s.prepare("a", "c", Labels::new()))?;
    step("view", s.view("v", "c", Labels::new()))?;
    step("remove active", s.remove("a"))?;
    step("remove view", s.remove("v"))?;
    expect_kind(
        "mounts of a removed key",
        s.mounts("a"),
        ErrorKind::NotFound,
    )?;
    expect_kind("stat of a removed view", s.stat("v"), ErrorKind::NotFound)?;
    step("remove committed", s.remove("c"))?;
    expect_kind("stat of a removed parent", s.stat("c"), ErrorKind::NotFound)?;
    // The key is free again.
    step("prepare a removed key", s.prepare("c", "", Labels::new()))?;
    Ok(())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips a mounting check (returning success) when not root, or fails it where prerequisites are
/// required (`rcontainerd_pkg::prereq`).
macro_rules! require_root {
    ($check:literal) => {
        if !is_root() {
            rcontainerd_pkg::prereq::missing(concat!(
                "root (snapshotter check \"",
                $check,
                "\" mounts)"
            ));
            return Ok(());
        }
    };
}

/// Empty mount points under the system temp directory, removed (only if empty) on drop.
struct Scratch {
    dir: PathBuf,
    points: Vec<PathBuf>,
}

impl Scratch {
    fn new() -> std::result::Result<Scratch, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rcontainerd-snapshot-suite-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).map_err(|err| format!("create {}: {err}", dir.display()))?;
        Ok(Scratch {
            dir,
            points: Vec::new(),
        })
    }

    fn point(&mut self, name: &str) -> std::result::Result<PathBuf, String> {
        let path = self.dir.join(name);
        fs::create_dir(&path).map_err(|err| format!("create {}: {err}", path.display()))?;
        self.points.push(path.clone());
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Never recursive: a mount still attached must not lose its files.
        for point in &self.points {
            let _ = fs::remove_dir(point);
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

fn mount_at(
    mounts: &[crate::snapshot::Mount],
    target: &Path,
) -> std::result::Result<MountGuard, String> {
    MountGuard::new(mounts, target).map_err(|why| format!("{why} (mounts {mounts:?})"))
}

fn write(path: &Path, data: &[u8]) -> CheckResult {
    fs::write(path, data).map_err(|err| format!("write {}: {err}", path.display()))
}

fn read(path: &Path) -> std::result::Result<Vec<u8>, String> {
    fs::read(path).map_err(|err| format!("read {}: {err}", path.display()))
}

pub fn mounted_files_persist_through_commit(s: &dyn Snapshotter) -> CheckResult {
    require_root!("mounted files persist through commit");
    let mut scratch = Scratch::new()?;

    let rw = scratch.point("rw")?;
    let mounts = step("prepare", s.prepare("base-active", "", Labels::new()))?;
    let guard = mount_at(&mounts, &rw)?;
    write(&rw.join("hello"), b"world")?;
    fs::create_dir(rw.join("dir")).map_err(|err| format!("mkdir: {err}"))?;
    write(&rw.join("dir/nested"), b"deep")?;
    symlink("hello", rw.join("link")).map_err(|err| format!("symlink: {err}"))?;
    guard.unmount().map_err(|e| e.to_string())?;
    step("commit", s.commit("base", "base-active", Labels::new()))?;

    let ro = scratch.point("ro")?;
    let mounts = step("view", s.view("base-view", "base", Labels::new()))?;
    let guard = mount_at(&mounts, &ro)?;
    ensure!(read(&ro.join("hello"))? == b"world", "the view lost hello");
    ensure!(
        read(&ro.join("dir/nested"))? == b"deep",
        "the view lost dir/nested"
    );
    ensure!(
        read(&ro.join("link"))? == b"world",
        "the view's symlink does not resolve"
    );
    ensure!(
        fs::write(ro.join("new"), b"x").is_err(),
        "a view accepted a write"
    );
    guard.unmount().map_err(|e| e.to_string())?;

    let child = scratch.point("child")?;
    let mounts = step(
        "prepare on base",
        s.prepare("top-active", "base", Labels::new()),
    )?;
    let guard = mount_at(&mounts, &child)?;
    ensure!(
        read(&child.join("hello"))? == b"world",
        "a child does not see its parent's file"
    );
    write(&child.join("hello"), b"changed")?;
    write(&child.join("second"), b"2")?;
    fs::remove_file(child.join("dir/nested")).map_err(|err| format!("remove nested: {err}"))?;
    guard.unmount().map_err(|e| e.to_string())?;
    step("commit top", s.commit("top", "top-active", Labels::new()))?;

    let top = scratch.point("top")?;
    let mounts = step("view top", s.view("top-view", "top", Labels::new()))?;
    let guard = mount_at(&mounts, &top)?;
    ensure!(
        read(&top.join("hello"))? == b"changed",
        "top lost the change"
    );
    ensure!(read(&top.join("second"))? == b"2", "top lost its new file");
    ensure!(
        !top.join("dir/nested").exists(),
        "a file removed in top is still visible"
    );
    guard.unmount().map_err(|e| e.to_string())?;

    let again = scratch.point("base-again")?;
    let mounts = step("mounts of the base view", s.mounts("base-view"))?;
    let guard = mount_at(&mounts, &again)?;
    ensure!(
        read(&again.join("hello"))? == b"world",
        "a child's change leaked into its parent"
    );
    ensure!(
        again.join("dir/nested").exists(),
        "a child's removal leaked into its parent"
    );
    guard.unmount().map_err(|e| e.to_string())
}

pub fn usage_counts_written_data(s: &dyn Snapshotter) -> CheckResult {
    require_root!("usage counts written data");
    const SIZE: usize = 256 * 1024;
    let mut scratch = Scratch::new()?;
    committed(s, "base", "")?;
    let mounts = step("prepare", s.prepare("u", "base", Labels::new()))?;
    let before = step("usage before writing", s.usage("u"))?;
    let rw = scratch.point("rw")?;
    let guard = mount_at(&mounts, &rw)?;
    // Data that does not compress or dedupe, so every filesystem stores all of it.
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 7919 % 251) as u8).collect();
    write(&rw.join("blob"), &data)?;
    write(&rw.join("small"), b"s")?;
    guard.unmount().map_err(|e| e.to_string())?;
    let after = step("usage after writing", s.usage("u"))?;
    ensure!(
        after.size >= before.size + SIZE as i64,
        "usage grew from {before:?} to {after:?} after writing {SIZE} bytes"
    );
    ensure!(
        after.inodes >= before.inodes + 2,
        "inodes grew from {before:?} to {after:?} after creating two files"
    );
    step("commit", s.commit("written", "u", Labels::new()))?;
    let committed = step("usage of the committed snapshot", s.usage("written"))?;
    ensure!(
        committed.size >= SIZE as i64,
        "committed usage {committed:?} lost the written data"
    );
    Ok(())
}

pub fn a_long_chain_mounts(s: &dyn Snapshotter) -> CheckResult {
    require_root!("a long chain mounts");
    let mut scratch = Scratch::new()?;
    let rw = scratch.point("rw")?;
    let mut parent = String::new();
    for layer in 0..CHAIN_DEPTH {
        let key = format!("layer-{layer}-active");
        let mounts = step(
            &format!("prepare {key}"),
            s.prepare(&key, &parent, Labels::new()),
        )?;
        let guard = mount_at(&mounts, &rw).map_err(|why| format!("layer {layer}: {why}"))?;
        write(
            &rw.join(format!("file-{layer}")),
            layer.to_string().as_bytes(),
        )?;
        guard.unmount().map_err(|e| e.to_string())?;
        let name = format!("layer-{layer}");
        step(
            &format!("commit {name}"),
            s.commit(&name, &key, Labels::new()),
        )?;
        parent = name;
    }
    let top = scratch.point("top")?;
    let mounts = step(
        "view of the top layer",
        s.view("top", &parent, Labels::new()),
    )?;
    let guard = mount_at(&mounts, &top)?;
    for layer in 0..CHAIN_DEPTH {
        let content = read(&top.join(format!("file-{layer}")))?;
        ensure!(
            content == layer.to_string().as_bytes(),
            "file-{layer} reads {content:?}"
        );
    }
    let count = fs::read_dir(&top)
        .map_err(|err| format!("list the top view: {err}"))?
        .count();
    ensure!(count == CHAIN_DEPTH, "the top view holds {count} entries");
    guard.unmount().map_err(|e| e.to_string())
}
