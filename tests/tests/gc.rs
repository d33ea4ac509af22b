//! Garbage collection against the real daemon: exactly what nothing references goes — from the
//! records (both ctrs list it) and from disk (content-local's blob files, native's snapshot
//! directories) — while what images, containers, leases and `gc.root` labels reach stays;
//! a removed child leaves its parent removable (containerd 1.6 leaves it stuck); expired leases
//! go; a `kill -9` inside a collection leaves nothing dangling and the next start finishes it.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rcontainerd_api::client::namespaced;
use rcontainerd_api::services::containers::containers_client::ContainersClient;
use rcontainerd_api::services::containers::{container, Container, CreateContainerRequest};
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::{WriteAction, WriteContentRequest};
use rcontainerd_api::services::images::images_client::ImagesClient;
use rcontainerd_api::services::images::{CreateImageRequest, DeleteImageRequest, Image};
use rcontainerd_api::services::leases::leases_client::LeasesClient;
use rcontainerd_api::services::leases::{CreateRequest, DeleteRequest};
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::{CommitSnapshotRequest, PrepareSnapshotRequest};
use rcontainerd_api::types::Descriptor;
use rcontainerd_tests::{labels, Ctr, Daemon, DaemonOptions};
use sha2::Digest as _;
use tonic::Request;

const NS: &str = "gc";
const SN: &str = "native";

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(data))
}

fn in_ns<T>(message: T) -> Request<T> {
    namespaced(message, NS)
}

fn leased<T>(message: T, lease: &str) -> Request<T> {
    rcontainerd_api::client::leased(message, NS, lease)
}

struct World<'d> {
    daemon: &'d Daemon,
}

impl World<'_> {
    async fn lease(&self, id: &str, pairs: &[(&str, &str)]) {
        LeasesClient::new(self.daemon.channel())
            .create(in_ns(CreateRequest {
                id: id.into(),
                labels: labels(pairs),
            }))
            .await
            .unwrap();
    }

    /// Deletes lease `id` with `sync`: returns after a collection.
    async fn drop_lease(&self, id: &str) {
        LeasesClient::new(self.daemon.channel())
            .delete(in_ns(DeleteRequest {
                id: id.into(),
                sync: true,
            }))
            .await
            .unwrap();
    }

    /// Writes `data` as a blob with `pairs` as labels, under `lease`.
    async fn blob(&self, data: &[u8], pairs: &[(&str, &str)], lease: &str) -> String {
        let digest = digest_of(data);
        let write = WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: format!("ref-{digest}"),
            total: data.len() as i64,
            expected: digest.clone(),
            data: data.to_vec().into(),
            labels: labels(pairs),
            ..Default::default()
        };
        let mut responses = ContentClient::new(self.daemon.channel())
            .write(leased(tokio_stream::iter([write]), lease))
            .await
            .unwrap()
            .into_inner();
        while responses.message().await.unwrap().is_some() {}
        digest
    }

    /// A committed snapshot `name` on `parent`, made under `lease`.
    async fn committed(&self, name: &str, parent: &str, pairs: &[(&str, &str)], lease: &str) {
        let mut client = SnapshotsClient::new(self.daemon.channel());
        let key = format!("{name}-active");
        client
            .prepare(leased(
                PrepareSnapshotRequest {
                    snapshotter: SN.into(),
                    key: key.clone(),
                    parent: parent.into(),
                    labels: HashMap::new(),
                },
                lease,
            ))
            .await
            .unwrap();
        client
            .commit(leased(
                CommitSnapshotRequest {
                    snapshotter: SN.into(),
                    name: name.into(),
                    key,
                    labels: labels(pairs),
                },
                lease,
            ))
            .await
            .unwrap();
    }

    async fn active(&self, key: &str, parent: &str, lease: &str) {
        SnapshotsClient::new(self.daemon.channel())
            .prepare(leased(
                PrepareSnapshotRequest {
                    snapshotter: SN.into(),
                    key: key.into(),
                    parent: parent.into(),
                    labels: HashMap::new(),
                },
                lease,
            ))
            .await
            .unwrap();
    }

    async fn image(&self, name: &str, target: &str) {
        ImagesClient::new(self.daemon.channel())
            .create(in_ns(CreateImageRequest {
                image: Some(Image {
                    name: name.into(),
                    target: Some(Descriptor {
                        media_type: "application/vnd.oci.image.index.v1+json".into(),
                        digest: target.into(),
                        size: 1,
                        annotations: HashMap::new(),
                    }),
                    ..Default::default()
                }),
                source_date_epoch: None,
            }))
            .await
            .unwrap();
    }

    async fn drop_image(&self, name: &str) {
        ImagesClient::new(self.daemon.channel())
            .delete(in_ns(DeleteImageRequest {
                name: name.into(),
                sync: true,
                target: None,
            }))
            .await
            .unwrap();
    }

    async fn container(&self, id: &str, snapshot_key: &str) {
        ContainersClient::new(self.daemon.channel())
            .create(in_ns(CreateContainerRequest {
                container: Some(Container {
                    id: id.into(),
                    runtime: Some(container::Runtime {
                        name: "io.containerd.runc.v2".into(),
                        options: None,
                    }),
                    spec: Some(prost_types::Any {
                        type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                        value: b"{}".to_vec(),
                    }),
                    snapshotter: SN.into(),
                    snapshot_key: snapshot_key.into(),
                    ..Default::default()
                }),
            }))
            .await
            .unwrap();
    }

    /// Blob digests, as each ctr lists them (both must agree).
    fn blobs(&self) -> Vec<String> {
        self.listed(&["content", "ls", "-q"])
    }

    /// Snapshot names, as each ctr lists them (both must agree).
    fn snapshots(&self) -> Vec<String> {
        let rows = self.listed(&["snapshots", "--snapshotter", SN, "ls"]);
        rows.iter()
            .skip(1)
            .filter_map(|row| row.split_whitespace().next().map(str::to_string))
            .collect()
    }

    fn listed(&self, args: &[&str]) -> Vec<String> {
        let mut full = vec!["-n", NS];
        full.extend_from_slice(args);
        let lists: Vec<Vec<String>> = Ctr::BOTH
            .iter()
            .map(|&which| {
                let out = self.daemon.ctr(which, &full);
                let mut lines: Vec<String> = out.ok().lines().map(str::to_string).collect();
                let header = if args[0] == "snapshots" { 1 } else { 0 };
                lines[header..].sort();
                lines
            })
            .collect();
        assert_eq!(lists[0], lists[1], "both ctrs list the same");
        lists[0].clone()
    }

    /// Blob files of the content driver.
    fn blob_files(&self) -> Vec<String> {
        let dir = self
            .daemon
            .root()
            .join("io.containerd.content.v1.content/blobs/sha256");
        let mut names: Vec<String> = entries(&dir)
            .into_iter()
            .map(|n| format!("sha256:{n}"))
            .collect();
        names.sort();
        names
    }

    /// Snapshot directories of the native driver.
    fn snapshot_dirs(&self) -> usize {
        entries(
            &self
                .daemon
                .root()
                .join("io.containerd.snapshotter.v1.native/snapshots"),
        )
        .len()
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

#[tokio::test]
async fn exactly_the_unreferenced_go_from_the_records_and_from_disk() {
    let daemon = Daemon::start_default().await;
    let w = World { daemon: &daemon };
    w.lease("build", &[]).await;
    // Two images sharing a layer; the first one's config names its unpacked chain.
    let layer = w.blob(b"shared layer", &[], "build").await;
    let config1 = w
        .blob(
            b"config 1",
            &[("containerd.io/gc.ref.snapshot.native", "top")],
            "build",
        )
        .await;
    let manifest1 = w
        .blob(
            b"manifest 1",
            &[
                ("containerd.io/gc.ref.content.config", &config1),
                ("containerd.io/gc.ref.content.l.0", &layer),
            ],
            "build",
        )
        .await;
    let manifest2 = w
        .blob(
            b"manifest 2",
            &[("containerd.io/gc.ref.content.l.0", &layer)],
            "build",
        )
        .await;
    let orphan = w.blob(b"nobody's", &[], "build").await;
    let rooted = w
        .blob(
            b"kept by its label",
            &[("containerd.io/gc.root", "1")],
            "build",
        )
        .await;
    w.image("one", &manifest1).await;
    w.image("two", &manifest2).await;
    w.committed("base", "", &[], "build").await;
    w.committed("top", "base", &[], "build").await;
    w.committed("unused", "base", &[], "build").await;
    w.active("rootfs", "top", "build").await;
    w.container("c", "rootfs").await;
    assert_eq!(w.snapshot_dirs(), 4);

    // The lease goes; a collection runs before the call returns.
    w.drop_lease("build").await;
    let kept = sorted(vec![
        layer.clone(),
        config1.clone(),
        manifest1.clone(),
        manifest2.clone(),
        rooted.clone(),
    ]);
    assert_eq!(w.blobs(), kept);
    assert_eq!(w.blob_files(), kept, "the orphan's file is gone, no other");
    assert!(!w.blob_files().contains(&orphan));
    assert_eq!(w.snapshots(), ["base", "rootfs", "top"]);
    assert_eq!(w.snapshot_dirs(), 3);

    // Image one goes: its manifest and config follow; the shared layer and
    // image two stay; the chain stays while the container's snapshot needs it.
    w.drop_image("one").await;
    let kept = sorted(vec![layer.clone(), manifest2.clone(), rooted.clone()]);
    assert_eq!(w.blobs(), kept);
    assert_eq!(w.blob_files(), kept);
    assert_eq!(w.snapshots(), ["base", "rootfs", "top"]);
}

/// containerd 1.6 keeps a collected child's name in its parent, so the parent can never be
/// removed afterwards ("cannot remove snapshot with child"). Here it can.
#[tokio::test]
async fn a_collected_child_leaves_its_parent_removable() {
    let daemon = Daemon::start_default().await;
    let w = World { daemon: &daemon };
    w.lease("l", &[]).await;
    w.committed("parent", "", &[("containerd.io/gc.root", "1")], "l")
        .await;
    w.committed("child", "parent", &[], "l").await;
    w.drop_lease("l").await;
    assert_eq!(w.snapshots(), ["parent"]);
    daemon
        .ctr(
            Ctr::Debian,
            &["-n", NS, "snapshots", "--snapshotter", SN, "rm", "parent"],
        )
        .ok();
    assert!(w.snapshots().is_empty());
    assert_eq!(w.snapshot_dirs(), 0);
}

#[tokio::test]
async fn an_expired_lease_is_collected_with_what_it_held() {
    let daemon = Daemon::start_default().await;
    let w = World { daemon: &daemon };
    let soon = rcontainerd_pkg::time::format_rfc3339(
        std::time::SystemTime::now() + Duration::from_secs(1),
    );
    w.lease("short", &[("containerd.io/gc.expire", &soon)])
        .await;
    w.committed("held", "", &[], "short").await;
    w.lease("other", &[]).await;
    w.drop_lease("other").await;
    assert_eq!(w.snapshots(), ["held"], "not expired yet");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    w.lease("trigger", &[]).await;
    w.drop_lease("trigger").await;
    assert!(w.snapshots().is_empty());
    let leases = daemon.ctr(Ctr::Ours, &["-n", NS, "leases", "ls", "-q"]);
    assert_eq!(leases.ok(), "");
}

#[tokio::test]
async fn a_deletion_without_sync_is_collected_soon() {
    let daemon = Daemon::start_default().await;
    let w = World { daemon: &daemon };
    w.lease("l", &[]).await;
    w.committed("gone-soon", "", &[], "l").await;
    LeasesClient::new(daemon.channel())
        .delete(in_ns(DeleteRequest {
            id: "l".into(),
            sync: false,
        }))
        .await
        .unwrap();
    // containerd 1.6 collected within 1.5 s in the same situation.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let listed = || {
        daemon
            .ctr(
                Ctr::Debian,
                &["-n", NS, "snapshots", "--snapshotter", SN, "ls"],
            )
            .ok()
            .contains("gone-soon")
    };
    while listed() {
        assert!(std::time::Instant::now() < deadline, "not collected in 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A collection aborted at `point` (records swept, nothing or one thing removed from disk): after
/// the restart everything referenced is there, nothing points at a missing snapshot or blob,
/// and the start-up collection removes what the aborted one left on disk.
async fn crash_inside_a_collection(point: &str) {
    let mut daemon = Daemon::start(DaemonOptions::new().crash_at(point))
        .await
        .unwrap();
    {
        let w = World { daemon: &daemon };
        w.lease("keep", &[]).await;
        w.lease("tmp", &[]).await;
        let kept = w.blob(b"kept", &[], "keep").await;
        w.image("img", &kept).await;
        w.committed("kept", "", &[], "keep").await;
        w.blob(b"dropped 1", &[], "tmp").await;
        w.blob(b"dropped 2", &[], "tmp").await;
        w.committed("dropped", "", &[], "tmp").await;
        w.committed("dropped-child", "dropped", &[], "tmp").await;
        // The collection that follows aborts the daemon; the call fails with it.
        let _ = LeasesClient::new(daemon.channel())
            .delete(in_ns(DeleteRequest {
                id: "tmp".into(),
                sync: true,
            }))
            .await;
    }
    assert!(
        daemon.wait_for_exit(Duration::from_secs(10)),
        "{point}: the daemon did not abort"
    );
    daemon.clear_crash_point();
    daemon.restart().await.unwrap();
    let w = World { daemon: &daemon };
    assert_eq!(w.snapshots(), ["kept"], "{point}");
    let blobs = w.blobs();
    assert_eq!(blobs, [digest_of(b"kept")], "{point}");
    // The start-up collection removes the files the aborted one left.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while w.blob_files() != blobs || w.snapshot_dirs() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "{point}: left on disk: {:?}, {} snapshot dirs",
            w.blob_files(),
            w.snapshot_dirs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_crash_after_the_record_sweep_leaves_nothing_dangling() {
    crash_inside_a_collection("gc-after-records").await;
}

#[tokio::test]
async fn a_crash_after_the_first_removal_leaves_nothing_dangling() {
    crash_inside_a_collection("gc-after-first-removal").await;
}
