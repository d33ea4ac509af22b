//! The Snapshots service against the real daemon: lifecycle, filters, labels, usage, the error
//! codes containerd answers, Debian's `ctr snapshots`, namespaces that hold snapshots, and what a
//! crash between the backend call and the record write leaves behind.
//!
//! `native` is the snapshotter that persists its snapshots and works on any filesystem. The
//! example plugin for authors is not installed next to the daemon: its lifecycle test loads it
//! from where `plugins/example/test.sh` builds it, as an operator would add a third-party driver.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use rcontainerd_api::client::namespaced;
use rcontainerd_api::services::namespaces::DeleteNamespaceRequest;
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::{
    CleanupRequest, CommitSnapshotRequest, Info, Kind, ListSnapshotsRequest, MountsRequest,
    PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest, UpdateSnapshotRequest,
    UsageRequest, ViewSnapshotRequest,
};
use rcontainerd_api::types::Mount;
use rcontainerd_tests::{labels, uri, within, Ctr, Daemon, DaemonOptions};
use tonic::transport::Channel;
use tonic::Code;

const NS: &str = "snaps";
/// The daemon's crash hook (debug builds): abort at the named point.
const CRASH_AT_ENV: &str = "RCONTAINERD_TEST_CRASH_AT";

/// Daemons inherit this process's environment. Starts take this lock shared; a test that sets the
/// crash variable takes it exclusively, so no other daemon is spawned while it is set.
fn env_lock() -> &'static tokio::sync::RwLock<()> {
    static LOCK: OnceLock<tokio::sync::RwLock<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::RwLock::new(()))
}

/// The daemons here serve snapshots no lease holds: without the collector,
/// which would remove them (as containerd's does).
async fn start() -> Daemon {
    let _env = env_lock().read().await;
    Daemon::start_without_gc().await
}

/// Starts a daemon that aborts at `crash_point`.
async fn start_crashing_at(crash_point: &str) -> Daemon {
    let _env = env_lock().write().await;
    std::env::set_var(CRASH_AT_ENV, crash_point);
    let daemon = Daemon::start(DaemonOptions::new().disable(uri::GC)).await;
    std::env::remove_var(CRASH_AT_ENV);
    daemon.unwrap_or_else(|e| panic!("{e}"))
}

async fn restart(daemon: &mut Daemon) {
    let _env = env_lock().read().await;
    daemon.restart().await.unwrap_or_else(|e| panic!("{e}"));
}

/// A Snapshots client bound to one snapshotter and namespace.
struct Snaps {
    client: SnapshotsClient<Channel>,
    snapshotter: String,
    ns: String,
}

impl Snaps {
    fn new(daemon: &Daemon, snapshotter: &str) -> Snaps {
        Snaps {
            client: SnapshotsClient::new(daemon.channel()),
            snapshotter: snapshotter.to_string(),
            ns: NS.to_string(),
        }
    }

    fn in_namespace(mut self, ns: &str) -> Snaps {
        self.ns = ns.to_string();
        self
    }

    async fn prepare_with(
        &mut self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>, tonic::Status> {
        let request = PrepareSnapshotRequest {
            snapshotter: self.snapshotter.clone(),
            key: key.into(),
            parent: parent.into(),
            labels,
        };
        Ok(self
            .client
            .prepare(namespaced(request, &self.ns))
            .await?
            .into_inner()
            .mounts)
    }

    async fn prepare(&mut self, key: &str, parent: &str) -> Result<Vec<Mount>, tonic::Status> {
        self.prepare_with(key, parent, HashMap::new()).await
    }

    async fn view(&mut self, key: &str, parent: &str) -> Result<Vec<Mount>, tonic::Status> {
        let request = ViewSnapshotRequest {
            snapshotter: self.snapshotter.clone(),
            key: key.into(),
            parent: parent.into(),
            labels: HashMap::new(),
        };
        Ok(self
            .client
            .view(namespaced(request, &self.ns))
            .await?
            .into_inner()
            .mounts)
    }

    async fn mounts(&mut self, key: &str) -> Result<Vec<Mount>, tonic::Status> {
        let request = MountsRequest {
            snapshotter: self.snapshotter.clone(),
            key: key.into(),
        };
        Ok(self
            .client
            .mounts(namespaced(request, &self.ns))
            .await?
            .into_inner()
            .mounts)
    }

    async fn commit_with(
        &mut self,
        name: &str,
        key: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), tonic::Status> {
        let request = CommitSnapshotRequest {
            snapshotter: self.snapshotter.clone(),
            name: name.into(),
            key: key.into(),
            labels,
        };
        self.client
            .commit(namespaced(request, &self.ns))
            .await
            .map(|_| ())
    }

    async fn commit(&mut self, name: &str, key: &str) -> Result<(), tonic::Status> {
        self.commit_with(name, key, HashMap::new()).await
    }

    async fn remove(&mut self, key: &str) -> Result<(), tonic::Status> {
        let request = RemoveSnapshotRequest {
            snapshotter: self.snapshotter.clone(),
            key: key.into(),
        };
        self.client
            .remove(namespaced(request, &self.ns))
            .await
            .map(|_| ())
    }

    async fn stat(&mut self, key: &str) -> Result<Info, tonic::Status> {
        let request = StatSnapshotRequest {
            snapshotter: self.snapshotter.clone(),
            key: key.into(),
        };
        Ok(self
            .client
            .stat(namespaced(request, &self.ns))
            .await?
            .into_inner()
            .info
            .expect("stat answers an info"))
    }

    async fn update(
        &mut self,
        name: &str,
        labels: HashMap<String, String>,
        paths: &[&str],
    ) -> Result<Info, tonic::Status> {
        let request = UpdateSnapshotRequest {
            snapshotter: self.snapshotter.clone(),
            info: Some(Info {
                name: name.into(),
                labels,
                ..Info::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        };
        Ok(self
            .client
            .update(namespaced(request, &self.ns))
            .await?
            .into_inner()
            .info
            .expect("update answers an info"))
    }

    /// List with `filters`: every message's infos, in order, and how many messages came.
    async fn list(&mut self, filters: &[&str]) -> Result<(Vec<Info>, usize), tonic::Status> {
        let request = ListSnapshotsRequest {
            snapshotter: self.snapshotter.clone(),
            filters: filters.iter().map(|f| f.to_string()).collect(),
        };
        let mut stream = self
            .client
            .list(namespaced(request, &self.ns))
            .await?
            .into_inner();
        let mut infos = Vec::new();
        let mut messages = 0;
        while let Some(message) = stream.message().await? {
            messages += 1;
            infos.extend(message.info);
        }
        Ok((infos, messages))
    }

    async fn names(&mut self, filters: &[&str]) -> Vec<String> {
        let (infos, _) = self
            .list(filters)
            .await
            .unwrap_or_else(|s| panic!("list {filters:?}: {s:?}"));
        let mut names: Vec<String> = infos.into_iter().map(|i| i.name).collect();
        names.sort();
        names
    }

    async fn usage(&mut self, key: &str) -> Result<(i64, i64), tonic::Status> {
        let request = UsageRequest {
            snapshotter: self.snapshotter.clone(),
            key: key.into(),
        };
        let usage = self
            .client
            .usage(namespaced(request, &self.ns))
            .await?
            .into_inner();
        Ok((usage.size, usage.inodes))
    }

    async fn cleanup(&mut self) -> Result<(), tonic::Status> {
        let request = CleanupRequest {
            snapshotter: self.snapshotter.clone(),
        };
        self.client
            .cleanup(namespaced(request, &self.ns))
            .await
            .map(|_| ())
    }
}

#[track_caller]
fn assert_status(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, message: &str) {
    let status = match result {
        Ok(v) => panic!("expected {code:?} {message:?}, got Ok({v:?})"),
        Err(s) => s,
    };
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(status.message(), message, "{status:?}");
}

/// Mounts `mounts` (one mount: a bind, or an overlay with its data options) on `target`.
fn mount_all(mounts: &[Mount], target: &Path) {
    use nix::mount::{mount, MsFlags};
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    let m = &mounts[0];
    std::fs::create_dir_all(target).unwrap();
    let read_only = m.options.iter().any(|o| o == "ro");
    match m.r#type.as_str() {
        "bind" => {
            mount(
                Some(m.source.as_str()),
                target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .unwrap_or_else(|e| panic!("bind {} on {}: {e}", m.source, target.display()));
            if read_only {
                mount(
                    None::<&str>,
                    target,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                    None::<&str>,
                )
                .unwrap();
            }
        }
        "overlay" => {
            let data: Vec<&str> = m
                .options
                .iter()
                .map(String::as_str)
                .filter(|o| !matches!(*o, "ro" | "rw"))
                .collect();
            let flags = if read_only {
                MsFlags::MS_RDONLY
            } else {
                MsFlags::empty()
            };
            mount(
                Some(m.source.as_str()),
                target,
                Some("overlay"),
                flags,
                Some(data.join(",").as_str()),
            )
            .unwrap_or_else(|e| panic!("overlay {m:?} on {}: {e}", target.display()));
        }
        other => panic!("unexpected mount type {other}: {m:?}"),
    }
}

fn unmount(target: &Path) {
    nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).unwrap();
}

/// Prepare, commit, view, mounts, stat, list with filters, update, usage, remove — and the
/// refusals — through gRPC.
async fn lifecycle(snapshotter: &str) {
    lifecycle_on(start().await, snapshotter).await;
}

async fn lifecycle_on(daemon: Daemon, snapshotter: &str) {
    let mut s = Snaps::new(&daemon, snapshotter);

    let mounts = s
        .prepare_with("work", "", labels(&[("team", "a")]))
        .await
        .unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    let work = s.stat("work").await.unwrap();
    assert_eq!(work.kind, Kind::Active as i32);
    assert_eq!(work.labels, labels(&[("team", "a")]));
    assert!(work.created_at.is_some() && work.updated_at.is_some());
    assert_eq!(s.mounts("work").await.unwrap(), mounts);

    s.commit_with("base", "work", labels(&[("layer", "0")]))
        .await
        .unwrap();
    assert_status(
        s.stat("work").await,
        Code::NotFound,
        "snapshot work does not exist: not found",
    );
    let base = s.stat("base").await.unwrap();
    assert_eq!(base.kind, Kind::Committed as i32);
    assert_eq!(base.parent, "");
    assert_eq!(base.labels, labels(&[("layer", "0")]));

    s.prepare("child", "base").await.unwrap();
    s.view("look", "base").await.unwrap();
    assert_eq!(s.stat("look").await.unwrap().kind, Kind::View as i32);
    assert_eq!(s.stat("child").await.unwrap().parent, "base");

    assert_eq!(s.names(&[]).await, ["base", "child", "look"]);
    assert_eq!(s.names(&["kind==committed"]).await, ["base"]);
    assert_eq!(
        s.names(&["kind==view", "kind==active"]).await,
        ["child", "look"]
    );
    assert_eq!(s.names(&["parent==base"]).await, ["child", "look"]);
    assert_eq!(s.names(&["name==child"]).await, ["child"]);
    assert_eq!(s.names(&[r#"labels."layer"==0"#]).await, ["base"]);
    assert!(s.names(&["labels.layer==1"]).await.is_empty());

    // Update: one key by mask, then every label.
    let updated = s
        .update(
            "base",
            labels(&[("layer", "1"), ("extra", "x")]),
            &["labels.layer"],
        )
        .await
        .unwrap();
    assert_eq!(updated.labels, labels(&[("layer", "1")]));
    assert_eq!(updated.kind, Kind::Committed as i32);
    let updated = s
        .update("base", labels(&[("extra", "x")]), &[])
        .await
        .unwrap();
    assert_eq!(updated.labels, labels(&[("extra", "x")]));
    assert_eq!(
        s.stat("base").await.unwrap().labels,
        labels(&[("extra", "x")])
    );
    let refused = s.update("base", HashMap::new(), &["parent"]).await;
    assert_eq!(refused.unwrap_err().code(), Code::InvalidArgument);

    let (size, inodes) = s.usage("base").await.unwrap();
    assert!(size >= 0 && inodes >= 0, "{size} {inodes}");

    // Refusals, with containerd's codes.
    assert_status(
        s.remove("base").await,
        Code::FailedPrecondition,
        "cannot remove snapshot with child: failed precondition",
    );
    assert_status(
        s.prepare("child", "").await,
        Code::AlreadyExists,
        "snapshot \"child\": already exists",
    );
    assert_status(
        s.prepare("orphan", "missing").await,
        Code::NotFound,
        "parent snapshot missing does not exist: not found",
    );
    let on_active = s.prepare("grandchild", "child").await.unwrap_err();
    assert_eq!(on_active.code(), Code::InvalidArgument, "{on_active:?}");
    assert!(
        on_active
            .message()
            .starts_with(&format!("failed to create snapshot: parent \"{NS}/")),
        "{on_active:?}"
    );
    assert_eq!(
        s.view("v2", "look").await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_status(
        s.prepare("", "").await,
        Code::InvalidArgument,
        "key must not be empty: invalid argument",
    );
    for result in [
        s.commit("x", "nope").await.map(|_| ()),
        s.remove("nope").await,
        s.stat("nope").await.map(|_| ()),
        s.mounts("nope").await.map(|_| ()),
        s.usage("nope").await.map(|_| ()),
    ] {
        assert_status(
            result,
            Code::NotFound,
            "snapshot nope does not exist: not found",
        );
    }
    let commit_committed = s.commit("again", "base").await.unwrap_err();
    assert_eq!(commit_committed.code(), Code::FailedPrecondition);
    assert!(
        commit_committed
            .message()
            .starts_with("failed to commit snapshot: snapshot \""),
        "{commit_committed:?}"
    );
    s.prepare("work2", "base").await.unwrap();
    assert_status(
        s.commit("base", "work2").await,
        Code::AlreadyExists,
        "snapshot \"base\": already exists",
    );
    assert_eq!(
        s.mounts("base").await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    // None of the refusals changed anything.
    assert_eq!(s.names(&[]).await, ["base", "child", "look", "work2"]);

    // Children first, then the parent.
    for key in ["child", "look", "work2", "base"] {
        s.remove(key)
            .await
            .unwrap_or_else(|e| panic!("remove {key}: {e:?}"));
    }
    assert!(s.names(&[]).await.is_empty());
    s.cleanup().await.unwrap();
}

#[tokio::test]
async fn native_lifecycle_filters_labels_and_errors() {
    lifecycle("native").await;
}

#[tokio::test]
async fn overlayfs_lifecycle_filters_labels_and_errors() {
    lifecycle("overlayfs").await;
}

#[tokio::test]
async fn example_lifecycle_filters_labels_and_errors() {
    let _env = env_lock().read().await;
    let example = rcontainerd_tests::binaries::example_plugin_dir();
    let options = DaemonOptions {
        plugin_dirs: Some(vec![rcontainerd_tests::binaries::profile_dir(), example]),
        ..DaemonOptions::default()
    }
    .disable(uri::GC);
    let daemon = Daemon::start(options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    lifecycle_on(daemon, "example").await;
}

#[tokio::test]
async fn native_files_written_in_an_active_snapshot_are_in_a_view_of_its_commit() {
    files_survive_commit_and_show_in_children("native").await;
}

#[tokio::test]
async fn overlayfs_files_written_in_an_active_snapshot_are_in_a_view_of_its_commit() {
    files_survive_commit_and_show_in_children("overlayfs").await;
}

/// Files written through an active snapshot's mounts are there in a view of its commit and in an
/// active child, whose own writes do not leak into the parent.
async fn files_survive_commit_and_show_in_children(snapshotter: &str) {
    let daemon = start().await;
    let mut s = Snaps::new(&daemon, snapshotter);
    let mnt = daemon.dir().join("mnt");

    let mounts = s.prepare("rw", "").await.unwrap();
    mount_all(&mounts, &mnt);
    std::fs::write(mnt.join("hello"), "layer one").unwrap();
    unmount(&mnt);
    s.commit("one", "rw").await.unwrap();

    let mounts = s.view("ro", "one").await.unwrap();
    assert!(mounts[0].options.iter().any(|o| o == "ro"), "{mounts:?}");
    mount_all(&mounts, &mnt);
    assert_eq!(
        std::fs::read_to_string(mnt.join("hello")).unwrap(),
        "layer one"
    );
    unmount(&mnt);
    let (size, _) = s.usage("one").await.unwrap();
    assert!(size > 0, "usage of a layer holding a file: {size}");

    let mounts = s.prepare("upper", "one").await.unwrap();
    mount_all(&mounts, &mnt);
    assert_eq!(
        std::fs::read_to_string(mnt.join("hello")).unwrap(),
        "layer one"
    );
    std::fs::write(mnt.join("second"), "layer two").unwrap();
    unmount(&mnt);
    s.commit("two", "upper").await.unwrap();
    let mounts = s.view("check", "one").await.unwrap();
    mount_all(&mounts, &mnt);
    assert!(
        !mnt.join("second").exists(),
        "a child's file leaked into its parent"
    );
    unmount(&mnt);
}

/// Unknown snapshotter, missing and invalid namespace headers: containerd's codes and words.
#[tokio::test]
async fn unknown_snapshotter_and_namespace_headers_are_refused() {
    let daemon = start().await;
    let mut s = Snaps::new(&daemon, "zfs");
    assert_status(
        s.prepare("k", "").await,
        Code::InvalidArgument,
        "snapshotter not loaded: zfs: invalid argument",
    );
    assert_eq!(s.list(&[]).await.unwrap_err().code(), Code::InvalidArgument);

    let mut client = SnapshotsClient::new(daemon.channel());
    let status = client
        .stat(StatSnapshotRequest {
            snapshotter: "native".into(),
            key: "k".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.message(),
        "namespace is required: failed precondition"
    );
    let status = client
        .stat(namespaced(
            StatSnapshotRequest {
                snapshotter: "native".into(),
                key: "k".into(),
            },
            "Bad.-name",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

/// Names are per namespace: the same key in two namespaces is two snapshots.
#[tokio::test]
async fn the_same_key_in_two_namespaces_is_two_snapshots() {
    let daemon = start().await;
    let mut a = Snaps::new(&daemon, "native").in_namespace("ns-a");
    let mut b = Snaps::new(&daemon, "native").in_namespace("ns-b");
    let ma = a.prepare("same", "").await.unwrap();
    let mb = b.prepare("same", "").await.unwrap();
    assert_ne!(ma, mb);
    a.commit("done", "same").await.unwrap();
    assert_eq!(a.names(&[]).await, ["done"]);
    assert_eq!(b.names(&[]).await, ["same"]);
    assert_eq!(b.stat("same").await.unwrap().kind, Kind::Active as i32);
}

/// A namespace that holds snapshots cannot be deleted; once they are gone it can.
#[tokio::test]
async fn a_namespace_holding_snapshots_cannot_be_deleted() {
    let daemon = start().await;
    let mut s = Snaps::new(&daemon, "native").in_namespace("holder");
    s.prepare("k", "").await.unwrap();
    let delete = || DeleteNamespaceRequest {
        name: "holder".into(),
    };
    let status = daemon.namespaces().delete(delete()).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status
            .message()
            .contains("snapshots on \"native\" snapshotter"),
        "{status:?}"
    );
    s.remove("k").await.unwrap();
    daemon.namespaces().delete(delete()).await.unwrap();
}

/// More infos than fit one message come in several List messages.
#[tokio::test]
async fn list_streams_large_results_in_batches() {
    let daemon = start().await;
    let mut s = Snaps::new(&daemon, "native");
    for i in 0..150 {
        s.prepare(&format!("k{i:03}"), "").await.unwrap();
    }
    let (infos, messages) = s.list(&[]).await.unwrap();
    assert_eq!(infos.len(), 150);
    assert!(messages >= 2, "150 infos came in {messages} message(s)");
}

/// Debian's ctr drives the native snapshotter through our daemon.
#[tokio::test]
async fn debian_ctr_prepares_commits_lists_and_removes() {
    let daemon = start().await;
    let ctr = |args: &[&str]| {
        let mut full = vec!["--namespace", NS, "snapshots", "--snapshotter", "native"];
        full.extend_from_slice(args);
        daemon.ctr(Ctr::Debian, &full)
    };
    ctr(&["prepare", "active1"]).ok();
    ctr(&["commit", "layer1", "active1"]).ok();
    ctr(&["prepare", "active2", "layer1"]).ok();
    ctr(&["view", "view1", "layer1"]).ok();

    let ls = ctr(&["ls"]);
    let rows: Vec<Vec<&str>> = ls
        .ok()
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["KEY", "PARENT", "KIND"], "{}", ls.stdout);
    let mut body: Vec<Vec<&str>> = rows[1..].to_vec();
    body.sort();
    assert_eq!(
        body,
        [
            vec!["active2", "layer1", "Active"],
            vec!["layer1", "Committed"],
            vec!["view1", "layer1", "View"],
        ],
        "{}",
        ls.stdout
    );

    let mounts = ctr(&["mounts", "/mnt/x", "active2"]);
    assert!(
        mounts.ok().starts_with("mount -t bind "),
        "{}",
        mounts.stdout
    );
    let info = ctr(&["info", "layer1"]);
    assert!(
        info.ok().contains("\"Kind\": \"Committed\""),
        "{}",
        info.stdout
    );
    ctr(&["label", "layer1", "color=blue"]).ok();
    let info = ctr(&["info", "layer1"]);
    assert!(info.ok().contains("\"color\": \"blue\""), "{}", info.stdout);

    let refused = ctr(&["rm", "layer1"]);
    assert!(
        refused
            .failed()
            .contains("cannot remove snapshot with child: failed precondition"),
        "{}",
        refused.stderr
    );
    ctr(&["rm", "active2", "view1"]).ok();
    ctr(&["rm", "layer1"]).ok();
    let ls = ctr(&["ls"]);
    assert_eq!(ls.ok().lines().count(), 1, "{}", ls.stdout);
}

/// A backend that panics fails the call with Internal, leaves no record, and the daemon serves on.
#[tokio::test]
async fn a_panicking_snapshotter_fails_the_call_and_leaves_no_record() {
    let dir = rcontainerd_tests::test_plugin_dir(&[rcontainerd_tests::TestPlugin::PanicCall]);
    let daemon = {
        let _env = env_lock().read().await;
        Daemon::start(DaemonOptions::new().plugin_dir(dir.path()).disable(uri::GC))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let mut s = Snaps::new(&daemon, "panic-call");
    for _ in 0..2 {
        let status = s.prepare("k", "").await.unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{status:?}");
        assert!(status.message().contains("panic"), "{status:?}");
        // Nothing was recorded: the same key is not taken.
        assert_status(
            s.stat("k").await,
            Code::NotFound,
            "snapshot k does not exist: not found",
        );
    }
    assert!(s.names(&[]).await.is_empty());
    assert!(daemon.answers_version().await);
}

fn native_snapshots_dir(daemon: &Daemon) -> PathBuf {
    daemon
        .root()
        .join("io.containerd.snapshotter.v1.native")
        .join("snapshots")
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The daemon dies between the backend's Prepare and the record write: after a restart the key is
/// not listed, the backend holds no orphan, and the same key can be prepared again.
#[tokio::test]
async fn a_crash_after_the_backend_prepare_leaves_nothing_behind() {
    let mut daemon = start_crashing_at("snapshot-after-driver-prepare").await;
    let mut s = Snaps::new(&daemon, "native");
    let status = s.prepare("doomed", "").await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal
        ),
        "the connection should have dropped: {status:?}"
    );
    assert!(
        !dir_entries(&native_snapshots_dir(&daemon)).is_empty(),
        "the backend should have created the snapshot before the crash"
    );
    daemon.kill9();
    restart(&mut daemon).await;

    let mut s = Snaps::new(&daemon, "native");
    assert!(s.names(&[]).await.is_empty());
    assert_status(
        s.stat("doomed").await,
        Code::NotFound,
        "snapshot doomed does not exist: not found",
    );
    assert_eq!(
        dir_entries(&native_snapshots_dir(&daemon)),
        Vec::<String>::new(),
        "orphan left in the backend; daemon log:\n{}",
        daemon.stderr()
    );
    s.prepare("doomed", "").await.unwrap();
    assert_eq!(s.stat("doomed").await.unwrap().kind, Kind::Active as i32);
}

/// The daemon dies between the backend's Commit and the record write: the backend did commit, so
/// the restart completes it — the committed name exists and the active key is gone.
#[tokio::test]
async fn a_crash_after_the_backend_commit_is_completed_at_restart() {
    let mut daemon = start_crashing_at("snapshot-after-driver-commit").await;
    let mut s = Snaps::new(&daemon, "native");
    s.prepare_with("work", "", labels(&[("keep", "me")]))
        .await
        .unwrap();
    let status = s
        .commit_with("layer", "work", labels(&[("committed", "yes")]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal
        ),
        "{status:?}"
    );
    daemon.kill9();
    restart(&mut daemon).await;

    let mut s = Snaps::new(&daemon, "native");
    assert_eq!(s.names(&[]).await, ["layer"], "log:\n{}", daemon.stderr());
    let layer = s.stat("layer").await.unwrap();
    assert_eq!(layer.kind, Kind::Committed as i32);
    assert_eq!(layer.labels, labels(&[("committed", "yes")]));
    s.prepare("next", "layer").await.unwrap();
    assert_eq!(dir_entries(&native_snapshots_dir(&daemon)).len(), 2);
}

/// The daemon dies between the backend's Remove and the record delete: the backend no longer has
/// the snapshot, so the restart deletes the record too.
#[tokio::test]
async fn a_crash_after_the_backend_remove_is_completed_at_restart() {
    let mut daemon = start_crashing_at("snapshot-after-driver-remove").await;
    let mut s = Snaps::new(&daemon, "native");
    s.prepare("gone", "").await.unwrap();
    s.remove("gone").await.unwrap_err();
    daemon.kill9();
    restart(&mut daemon).await;

    let mut s = Snaps::new(&daemon, "native");
    assert!(s.names(&[]).await.is_empty(), "log:\n{}", daemon.stderr());
    assert_eq!(
        dir_entries(&native_snapshots_dir(&daemon)),
        Vec::<String>::new()
    );
    s.prepare("gone", "").await.unwrap();
}

/// Commits and removes sync only their intent; what they acknowledged must still be there after
/// `kill -9`, also when eight clients write into one namespace at once (they share WAL syncs).
#[tokio::test]
async fn acknowledged_concurrent_commits_and_removes_survive_kill_9() {
    let mut daemon = start().await;
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let mut s = Snaps::new(&daemon, "native");
            tokio::spawn(async move {
                for i in 0..5 {
                    s.prepare(&format!("k{c}-{i}"), "").await.unwrap();
                    s.commit(&format!("c{c}-{i}"), &format!("k{c}-{i}"))
                        .await
                        .unwrap();
                }
                s.remove(&format!("c{c}-0")).await.unwrap();
            })
        })
        .collect();
    // Eight clients committing into one namespace share WAL syncs: a lost wake-up hangs them.
    let all_acknowledged = async {
        for client in clients {
            client.await.unwrap();
        }
    };
    within(
        Duration::from_secs(120),
        "8 clients' commits and removes",
        all_acknowledged,
    )
    .await;
    daemon.kill9();
    restart(&mut daemon).await;

    let mut s = Snaps::new(&daemon, "native");
    let mut expected: Vec<String> = (0..8)
        .flat_map(|c| (1..5).map(move |i| format!("c{c}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(s.names(&[]).await, expected, "log:\n{}", daemon.stderr());
    // Nothing was orphaned or left half-done: one layer per record.
    assert_eq!(dir_entries(&native_snapshots_dir(&daemon)).len(), 32);
    s.prepare("on-top", "c7-4").await.unwrap();
}
