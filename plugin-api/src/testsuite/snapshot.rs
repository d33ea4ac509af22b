//! The snapshotter conformance suite: containerd's snapshot model as seen through
//! [`Snapshotter`]. File contents and mounting are left to driver-specific tests for now.

use std::sync::Arc;

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
];

/// Runs every check, each on a fresh snapshotter from `make`; panics listing the failures.
pub fn run_all(make: &mut dyn FnMut() -> Arc<dyn Snapshotter>) {
    super::run("snapshotter", CHECKS, make);
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

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
    let updated = step(
        "update labels.a",
        s.update(info.clone(), &["labels.a".into()]),
    )?;
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
