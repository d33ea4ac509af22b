//! The Diff service against the real daemon: layers (plain, gzip, zstd) applied into overlayfs
//! snapshots straight through their upper directory (overlay whiteouts) and into native ones
//! through a temporary mount (real deletions); hostile layers confined; errors as containerd
//! answers them; nothing left mounted, also when the client goes away mid-layer; and Diff
//! writing the changes between two snapshots as a layer, read back by both ctrs.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcontainerd_api::client::namespaced;
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::{InfoRequest, WriteAction, WriteContentRequest};
use rcontainerd_api::services::diff::diff_client::DiffClient;
use rcontainerd_api::services::diff::{ApplyRequest, DiffRequest};
use rcontainerd_api::services::leases::leases_client::LeasesClient;
use rcontainerd_api::services::leases::{CreateRequest, ListResourcesRequest};
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::{
    CommitSnapshotRequest, MountsRequest, PrepareSnapshotRequest, ViewSnapshotRequest,
};
use rcontainerd_api::types::{Descriptor, Mount};
use rcontainerd_tests::layers::{digest_of, gzip};
use rcontainerd_tests::{labels, Ctr, Daemon};
use tonic::transport::Channel;
use tonic::{Code, Request};

const NS: &str = "diff";
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

fn in_ns<T>(message: T) -> Request<T> {
    namespaced(message, NS)
}

/// Every object the tests make is held by this lease, so the collector leaves it alone.
const LEASE: &str = "diff-tests";

fn leased<T>(message: T) -> Request<T> {
    rcontainerd_api::client::leased(message, NS, LEASE)
}

/// One member of a test layer.
enum Member<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    /// `.wh.<name>` in the named directory.
    Whiteout(&'a str),
    /// A file with its mode and owner (uid = gid).
    Owned(&'a str, &'a [u8], u32, u64),
    /// A hard link to an earlier member.
    Hardlink(&'a str, &'a str),
    Fifo(&'a str),
}

/// A tar of `members`, names written as they are (also `../x`, which the tar crate's path
/// setters refuse).
fn layer_tar(members: &[Member<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for member in members {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        let (name, data): (&str, &[u8]) = match member {
            Member::Dir(name) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                (name, b"")
            }
            Member::File(name, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                (name, data)
            }
            Member::Symlink(name, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_link_name_literal(target).unwrap();
                (name, b"")
            }
            Member::Whiteout(name) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                (name, b"")
            }
            Member::Owned(name, data, mode, owner) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_uid(*owner);
                header.set_gid(*owner);
                (name, data)
            }
            Member::Hardlink(name, target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o644);
                header.set_link_name_literal(target).unwrap();
                (name, b"")
            }
            Member::Fifo(name) => {
                header.set_entry_type(tar::EntryType::Fifo);
                header.set_mode(0o600);
                (name, b"")
            }
        };
        let bytes = name.as_bytes();
        header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Names in a tar, in order.
fn tar_names(data: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(data);
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

struct Client {
    channel: Channel,
    snapshotter: &'static str,
}

impl Client {
    /// A client of `snapshotter` whose calls are held by the tests' lease.
    async fn new(daemon: &Daemon, snapshotter: &'static str) -> Client {
        Client::on(daemon.channel(), snapshotter).await
    }

    /// The same on any daemon's channel (rcontainerd's or a reference containerd's).
    async fn on(channel: Channel, snapshotter: &'static str) -> Client {
        let created = LeasesClient::new(channel.clone())
            .create(in_ns(CreateRequest {
                id: LEASE.into(),
                labels: labels(&[]),
            }))
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Code::AlreadyExists => {}
            Err(e) => panic!("creating the tests' lease: {e:?}"),
        }
        Client {
            channel,
            snapshotter,
        }
    }

    async fn blob(&self, data: &[u8]) -> String {
        let digest = digest_of(data);
        let write = WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: format!("ref-{digest}"),
            total: data.len() as i64,
            expected: digest.clone(),
            data: data.to_vec().into(),
            ..Default::default()
        };
        let written = ContentClient::new(self.channel.clone())
            .write(leased(tokio_stream::iter([write])))
            .await;
        match written {
            Ok(responses) => {
                let mut responses = responses.into_inner();
                loop {
                    match responses.message().await {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) if e.code() == Code::AlreadyExists => break,
                        Err(e) => panic!("writing {digest}: {e:?}"),
                    }
                }
            }
            Err(e) if e.code() == Code::AlreadyExists => {}
            Err(e) => panic!("writing {digest}: {e:?}"),
        }
        digest
    }

    async fn prepare(&self, key: &str, parent: &str) -> Vec<Mount> {
        SnapshotsClient::new(self.channel.clone())
            .prepare(leased(PrepareSnapshotRequest {
                snapshotter: self.snapshotter.into(),
                key: key.into(),
                parent: parent.into(),
                labels: HashMap::new(),
            }))
            .await
            .unwrap()
            .into_inner()
            .mounts
    }

    async fn view(&self, key: &str, parent: &str) -> Vec<Mount> {
        SnapshotsClient::new(self.channel.clone())
            .view(leased(ViewSnapshotRequest {
                snapshotter: self.snapshotter.into(),
                key: key.into(),
                parent: parent.into(),
                labels: HashMap::new(),
            }))
            .await
            .unwrap()
            .into_inner()
            .mounts
    }

    async fn mounts(&self, key: &str) -> Vec<Mount> {
        SnapshotsClient::new(self.channel.clone())
            .mounts(in_ns(MountsRequest {
                snapshotter: self.snapshotter.into(),
                key: key.into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .mounts
    }

    async fn commit(&self, name: &str, key: &str) {
        SnapshotsClient::new(self.channel.clone())
            .commit(leased(CommitSnapshotRequest {
                snapshotter: self.snapshotter.into(),
                name: name.into(),
                key: key.into(),
                labels: HashMap::new(),
            }))
            .await
            .unwrap();
    }

    async fn apply(
        &self,
        media_type: &str,
        digest: &str,
        size: usize,
        mounts: Vec<Mount>,
    ) -> Result<Descriptor, tonic::Status> {
        DiffClient::new(self.channel.clone())
            .apply(leased(ApplyRequest {
                diff: Some(Descriptor {
                    media_type: media_type.into(),
                    digest: digest.into(),
                    size: size as i64,
                    annotations: HashMap::new(),
                }),
                mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            }))
            .await
            .map(|r| r.into_inner().applied.unwrap())
    }

    /// Writes `layer` (compressed as `media_type` says) and applies it as snapshot `name` on
    /// `parent`; returns the applied descriptor.
    async fn layer(&self, name: &str, parent: &str, media_type: &str, tar: &[u8]) -> Descriptor {
        let blob = match media_type {
            TAR => tar.to_vec(),
            TAR_ZSTD => zstd::encode_all(tar, 3).unwrap(),
            _ => gzip(tar),
        };
        let digest = self.blob(&blob).await;
        let key = format!("{name}-extract");
        let mounts = self.prepare(&key, parent).await;
        let applied = self
            .apply(media_type, &digest, blob.len(), mounts)
            .await
            .unwrap();
        self.commit(name, &key).await;
        applied
    }
}

/// Mounts `mounts` on a new directory below `dir` for the life of the value.
struct Mounted {
    guard: Option<rcontainerd_mount::MountGuard>,
    path: PathBuf,
}

impl Mounted {
    fn new(mounts: &[Mount], dir: &Path, name: &str) -> Mounted {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).unwrap();
        let mounts: Vec<rcontainerd_mount::Mount> = mounts
            .iter()
            .map(|m| rcontainerd_mount::Mount {
                mount_type: m.r#type.clone(),
                source: m.source.clone(),
                target: m.target.clone(),
                options: m.options.clone(),
            })
            .collect();
        let guard = rcontainerd_mount::MountGuard::new(&mounts, &path).unwrap();
        Mounted {
            guard: Some(guard),
            path,
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            let _ = guard.unmount();
        }
    }
}

fn upperdir(mounts: &[Mount]) -> PathBuf {
    mounts[0]
        .options
        .iter()
        .find_map(|o| o.strip_prefix("upperdir="))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no upperdir in {mounts:?}"))
}

fn base_layer() -> Vec<u8> {
    layer_tar(&[
        Member::Dir("etc/"),
        Member::File("etc/a", b"one"),
        Member::File("etc/b", b"two"),
        Member::Dir("opq/"),
        Member::File("opq/old", b"old"),
        Member::File("keep", b"keep"),
    ])
}

fn top_layer() -> Vec<u8> {
    layer_tar(&[
        Member::Dir("etc/"),
        Member::Whiteout("etc/.wh.a"),
        Member::File("etc/c", b"three"),
        Member::Dir("opq/"),
        Member::Whiteout("opq/.wh..wh..opq"),
        Member::File("opq/new", b"new"),
        Member::Symlink("link", "etc/c"),
    ])
}

/// What a view of base + top shows, whatever the snapshotter.
fn assert_merged_tree(root: &Path) {
    let read = |p: &str| std::fs::read(root.join(p)).ok();
    assert_eq!(read("etc/a"), None, "etc/a was whited out");
    assert_eq!(read("etc/b").as_deref(), Some(&b"two"[..]));
    assert_eq!(read("etc/c").as_deref(), Some(&b"three"[..]));
    assert_eq!(read("opq/old"), None, "opq is opaque in the top layer");
    assert_eq!(read("opq/new").as_deref(), Some(&b"new"[..]));
    assert_eq!(read("keep").as_deref(), Some(&b"keep"[..]));
    assert_eq!(
        std::fs::read_link(root.join("link")).unwrap(),
        Path::new("etc/c")
    );
    assert!(!root.join("etc/.wh.a").exists());
    assert!(!root.join("opq/.wh..wh..opq").exists());
}

fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    rcontainerd_pkg::prereq::missing("root (mounting snapshots needs it)");
    false
}

#[tokio::test]
async fn layers_apply_into_overlayfs_through_the_upper_directory() {
    if !require_root() {
        return;
    }
    let daemon = Daemon::start_default().await;
    let client = Client::new(&daemon, "overlayfs").await;
    let base = base_layer();
    let applied = client.layer("base", "", TAR_GZIP, &base).await;
    assert_eq!(applied.media_type, TAR);
    assert_eq!(applied.digest, digest_of(&base));
    assert_eq!(applied.size, base.len() as i64);

    let top = top_layer();
    let key = "top-extract";
    let mounts = client.prepare(key, "base").await;
    let upper = upperdir(&mounts);
    let blob = zstd::encode_all(&top[..], 3).unwrap();
    let digest = client.blob(&blob).await;
    let applied = client
        .apply(TAR_ZSTD, &digest, blob.len(), mounts)
        .await
        .unwrap();
    assert_eq!(applied.digest, digest_of(&top));
    // Straight into the upper directory: overlay's own whiteouts.
    let whiteout = std::fs::symlink_metadata(upper.join("etc/a")).unwrap();
    assert!(whiteout.file_type().is_char_device(), "{whiteout:?}");
    assert_eq!(whiteout.rdev(), 0);
    let opaque = xattr_of(&upper.join("opq"), "trusted.overlay.opaque");
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    assert!(
        !upper.join("etc/b").exists(),
        "only the layer's own files are in the upper"
    );
    client.commit("top", key).await;

    let view = client.view("top-view", "top").await;
    let mounted = Mounted::new(&view, daemon.dir(), "view");
    assert_merged_tree(&mounted.path);
    drop(mounted);
    assert_nothing_mounted_by_the_differ(&daemon);
}

#[tokio::test]
async fn layers_apply_into_native_snapshots_through_a_temporary_mount() {
    if !require_root() {
        return;
    }
    let daemon = Daemon::start_default().await;
    let client = Client::new(&daemon, "native").await;
    client.layer("base", "", TAR, &base_layer()).await;
    let applied = client.layer("top", "base", DOCKER_GZIP, &top_layer()).await;
    assert_eq!(applied.digest, digest_of(&top_layer()));
    let view = client.view("top-view", "top").await;
    let mounted = Mounted::new(&view, daemon.dir(), "view");
    assert_merged_tree(&mounted.path);
    drop(mounted);
    assert_nothing_mounted_by_the_differ(&daemon);
}

fn xattr_of(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut value = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut value).ok()?;
    value.truncate(n);
    Some(value)
}

/// No mount below the daemon's state directory (where the differ mounts for a moment), and no
/// directory left in its temporary mount directory.
fn assert_nothing_mounted_by_the_differ(daemon: &Daemon) {
    let state = daemon.state();
    let left = rcontainerd_mount::mounts_under(&state).unwrap();
    assert!(left.is_empty(), "still mounted: {left:?}");
    let tmpmounts = state.join("io.containerd.differ.v1.walking/tmpmounts");
    let entries: Vec<_> = std::fs::read_dir(&tmpmounts)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        entries.is_empty(),
        "left in {}: {entries:?}",
        tmpmounts.display()
    );
}

#[tokio::test]
async fn hostile_layers_never_write_outside_the_snapshot() {
    if !require_root() {
        return;
    }
    let daemon = Daemon::start_default().await;
    let outside = tempfile::tempdir().unwrap();
    let outside_path = outside.path().display().to_string();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    let through_link = format!("abs{outside_path}/written");
    let whiteout_through_link = format!("abs{outside_path}/.wh.victim");
    let hostile = layer_tar(&[
        Member::File("../../../../../../escape-parent", b"x"),
        Member::Symlink("abs", "/"),
        Member::File(&through_link, b"x"),
        Member::Whiteout(&whiteout_through_link),
        Member::Symlink("up", "../../../../../../../.."),
        Member::File("up/escape-up", b"x"),
    ]);
    for snapshotter in ["native", "overlayfs"] {
        let client = Client::new(&daemon, snapshotter).await;
        let key = format!("hostile-{snapshotter}");
        let mounts = client.prepare(&key, "").await;
        let blob = client.blob(&hostile).await;
        // Confined or refused; either way nothing outside changes.
        let _ = client.apply(TAR, &blob, hostile.len(), mounts).await;
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me", "{snapshotter}");
        assert!(!outside.path().join("written").exists(), "{snapshotter}");
        assert!(!Path::new("/escape-parent").exists(), "{snapshotter}");
        assert!(!Path::new("/escape-up").exists(), "{snapshotter}");
        assert!(
            !daemon.dir().join("escape-parent").exists(),
            "{snapshotter}"
        );
    }
    assert_nothing_mounted_by_the_differ(&daemon);
}

#[tokio::test]
async fn bad_applies_answer_as_containerd_does_and_change_nothing() {
    let daemon = Daemon::start_default().await;
    let client = Client::new(&daemon, "native").await;
    let tar = base_layer();
    let digest = client.blob(&tar).await;
    let mounts = client.prepare("target", "").await;

    let err = client
        .apply(
            "application/vnd.example.layer",
            &digest,
            tar.len(),
            mounts.clone(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unknown, "{err:?}");
    assert_eq!(
        err.message(),
        "failed to get stream processor for application/vnd.example.layer: no processor for \
         media-type"
    );

    let missing = digest_of(b"not written");
    let err = client
        .apply(TAR, &missing, 11, mounts.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains(&missing), "{err:?}");

    // A gzip type over bytes that are not gzip: fails, and the snapshot holds nothing of it.
    let err = client
        .apply(TAR_GZIP, &digest, tar.len(), mounts.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unknown, "{err:?}");

    let err = DiffClient::new(daemon.channel())
        .apply(in_ns(ApplyRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    let err = DiffClient::new(daemon.channel())
        .apply(Request::new(ApplyRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    let mounted = Mounted::new(&client.mounts("target").await, daemon.dir(), "target");
    let entries: Vec<_> = std::fs::read_dir(&mounted.path)
        .unwrap()
        .flatten()
        .collect();
    assert!(entries.is_empty(), "{entries:?}");
    drop(mounted);
    assert_nothing_mounted_by_the_differ(&daemon);
}

#[tokio::test]
async fn a_client_that_goes_away_mid_layer_leaves_nothing_mounted() {
    if !require_root() {
        return;
    }
    let daemon = Daemon::start_default().await;
    let client = Client::new(&daemon, "native").await;
    // Many files, so the apply is still running when the call is dropped.
    let names: Vec<String> = (0..20_000).map(|i| format!("f{i}")).collect();
    let members: Vec<Member<'_>> = names
        .iter()
        .map(|n| Member::File(n, &b"0123456789"[..]))
        .collect();
    let big = gzip(&layer_tar(&members));
    let digest = client.blob(&big).await;
    let mounts = client.prepare("big", "").await;
    let call = client.apply(TAR_GZIP, &digest, big.len(), mounts);
    let finished = tokio::time::timeout(Duration::from_millis(30), call).await;
    assert!(
        finished.is_err(),
        "the apply finished before the client went away"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = rcontainerd_mount::mounts_under(&daemon.state()).unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still mounted: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_nothing_mounted_by_the_differ(&daemon);
}

#[tokio::test]
async fn diff_writes_the_changes_as_a_leased_gzip_layer() {
    if !require_root() {
        return;
    }
    let daemon = Daemon::start_default().await;
    let client = Client::new(&daemon, "overlayfs").await;
    client.layer("base", "", TAR, &base_layer()).await;
    let lower = client.view("base-view", "base").await;
    let upper = client.prepare("work", "base").await;
    {
        let mounted = Mounted::new(&upper, daemon.dir(), "work");
        std::fs::write(mounted.path.join("etc/new"), b"new").unwrap();
        std::fs::remove_file(mounted.path.join("etc/b")).unwrap();
        std::fs::remove_dir_all(mounted.path.join("opq")).unwrap();
    }
    LeasesClient::new(daemon.channel())
        .create(in_ns(CreateRequest {
            id: "diff-lease".into(),
            labels: labels(&[]),
        }))
        .await
        .unwrap();
    // Diffs are not Client calls: the lease they name holds what they write.
    let made = DiffClient::new(daemon.channel())
        .diff(rcontainerd_api::client::leased(
            DiffRequest {
                left: lower.clone(),
                right: upper.clone(),
                media_type: String::new(),
                r#ref: String::new(),
                labels: labels(&[("made-by", "test")]),
                source_date_epoch: None,
            },
            NS,
            "diff-lease",
        ))
        .await
        .unwrap()
        .into_inner()
        .diff
        .unwrap();
    assert_eq!(made.media_type, TAR_GZIP);
    let info = ContentClient::new(daemon.channel())
        .info(in_ns(InfoRequest {
            digest: made.digest.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(info.size, made.size);
    assert_eq!(info.labels.get("made-by").map(String::as_str), Some("test"));
    let blob = read_blob(&daemon, &made.digest).await;
    let tar = gunzip(&blob);
    assert_eq!(
        info.labels.get("containerd.io/uncompressed"),
        Some(&digest_of(&tar))
    );
    assert_eq!(
        tar_names(&tar),
        ["etc/", "etc/.wh.b", "etc/new", ".wh.opq"],
        "changes from base to work"
    );
    let resources = LeasesClient::new(daemon.channel())
        .list_resources(in_ns(ListResourcesRequest {
            id: "diff-lease".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .resources;
    assert!(
        resources
            .iter()
            .any(|r| r.r#type == "content" && r.id == made.digest),
        "{resources:?}"
    );
    // A plain tar when asked; anything else is not implemented, as containerd answers.
    let plain = DiffClient::new(daemon.channel())
        .diff(in_ns(DiffRequest {
            left: lower.clone(),
            right: upper.clone(),
            media_type: TAR.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .diff
        .unwrap();
    assert_eq!(plain.digest, digest_of(&tar));
    let err = DiffClient::new(daemon.channel())
        .diff(in_ns(DiffRequest {
            left: lower,
            right: upper,
            media_type: TAR_ZSTD.into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    assert_eq!(
        err.message(),
        format!("unsupported diff media type: {TAR_ZSTD}: not implemented")
    );
    assert_nothing_mounted_by_the_differ(&daemon);
}

async fn read_blob(daemon: &Daemon, digest: &str) -> Vec<u8> {
    use rcontainerd_api::services::content::ReadContentRequest;
    let mut stream = ContentClient::new(daemon.channel())
        .read(in_ns(ReadContentRequest {
            digest: digest.into(),
            offset: 0,
            size: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        out.extend_from_slice(&chunk.data);
    }
    out
}

#[tokio::test]
async fn both_ctrs_print_the_diff_of_two_snapshots() {
    if !require_root() {
        return;
    }
    let daemon = Daemon::start_default().await;
    let client = Client::new(&daemon, "overlayfs").await;
    client.layer("base", "", TAR, &base_layer()).await;
    let upper = client.prepare("work", "base").await;
    {
        let mounted = Mounted::new(&upper, daemon.dir(), "work");
        std::fs::write(mounted.path.join("added"), b"added").unwrap();
        std::fs::remove_file(mounted.path.join("keep")).unwrap();
    }
    client.commit("changed", "work").await;
    for ctr in Ctr::BOTH {
        let diff = |args: &[&str]| {
            let mut all = vec!["-n", NS, "snapshots", "--snapshotter", "overlayfs", "diff"];
            all.extend_from_slice(args);
            daemon.ctr(ctr, &all)
        };
        // Two snapshots, plain tar.
        let out = diff(&["--media-type", TAR, "base", "changed"]);
        assert_eq!(
            tar_names(out.ok().as_bytes()),
            ["added", ".wh.keep"],
            "{ctr:?}"
        );
        // One snapshot against its parent, gzip by default.
        let out = std::process::Command::new(ctr.path())
            .args(["--address"])
            .arg(daemon.socket())
            .args([
                "-n",
                NS,
                "snapshots",
                "--snapshotter",
                "overlayfs",
                "diff",
                "changed",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{ctr:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            tar_names(&gunzip(&out.stdout)),
            ["added", ".wh.keep"],
            "{ctr:?}"
        );
        let failed = diff(&[]);
        assert!(
            failed.failed().contains("snapshot id must be provided"),
            "{ctr:?}"
        );
    }
    // The views the ctrs made are gone again; the layers went with their leases' deletion
    // (kept only with --keep).
    let out = daemon.ctr(
        Ctr::Ours,
        &["-n", NS, "snapshots", "--snapshotter", "overlayfs", "ls"],
    );
    let mut listed: Vec<&str> = out
        .ok()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    listed.sort();
    assert_eq!(listed, ["base", "changed"]);
    assert_nothing_mounted_by_the_differ(&daemon);
}

/// Every path below `root` with what a container would see of it: type and mode, owner, link
/// count, size, link target or content digest.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let detail = if meta.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(&path).unwrap().display())
        } else if meta.is_file() {
            digest_of(&std::fs::read(&path).unwrap())
        } else {
            String::new()
        };
        let name = path.strip_prefix(root).unwrap().display().to_string();
        let nlink = if meta.is_dir() { 0 } else { meta.nlink() };
        // The root's time is when its snapshot directory was made (no layer
        // here has a `./` member), not something a layer sets: compared, it
        // made the test depend on both applies falling within one second.
        let mtime = if name.is_empty() {
            "-".to_string()
        } else {
            meta.mtime().to_string()
        };
        out.push(format!(
            "{name} {:o} {}:{} {nlink} {} {mtime} {detail}",
            meta.mode(),
            meta.uid(),
            meta.gid(),
            if meta.is_dir() { 0 } else { meta.size() },
        ));
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn applied_trees_and_answers_match_containerds() {
    if !require_root() {
        return;
    }
    if !Path::new(rcontainerd_tests::containerd::CONTAINERD).is_file() {
        rcontainerd_pkg::prereq::missing(rcontainerd_tests::containerd::CONTAINERD);
        return;
    }
    let daemon = Daemon::start_default().await;
    let reference = rcontainerd_tests::containerd::Containerd::start();
    let reference_channel =
        rcontainerd_api::client::connect(reference.socket(), Duration::from_secs(10))
            .await
            .unwrap();
    let base = layer_tar(&[
        Member::Dir("etc/"),
        Member::File("etc/a", b"one"),
        Member::Owned("etc/suid", b"#!/bin/sh\n", 0o4755, 1000),
        Member::Hardlink("etc/suid-link", "etc/suid"),
        Member::Fifo("etc/pipe"),
        Member::Dir("opq/"),
        Member::File("opq/old", b"old"),
        Member::Symlink("abs", "/etc/a"),
        Member::File("keep", b"keep"),
    ]);
    let top = top_layer();
    let mut seen = Vec::new();
    for (name, channel) in [
        ("rcontainerd", daemon.channel()),
        ("containerd", reference_channel),
    ] {
        let client = Client::on(channel.clone(), "overlayfs").await;
        let applied = client.layer("base", "", TAR_GZIP, &base).await;
        assert_eq!(applied.digest, digest_of(&base), "{name}");
        let applied = client.layer("top", "base", TAR_ZSTD, &top).await;
        assert_eq!(applied.digest, digest_of(&top), "{name}");
        let view = client.view("top-view", "top").await;
        let mounted = Mounted::new(&view, daemon.dir(), &format!("view-{name}"));
        let listing = tree(&mounted.path);
        drop(mounted);
        // The same refusals, word for word.
        let digest = client.blob(&base).await;
        let mounts = client.prepare("refused", "").await;
        let unsupported = client
            .apply(
                "application/vnd.example.layer",
                &digest,
                base.len(),
                mounts.clone(),
            )
            .await
            .unwrap_err();
        let missing = client
            .apply(TAR, &digest_of(b"absent"), 6, mounts.clone())
            .await
            .unwrap_err();
        let not_gzip = client
            .apply(TAR_GZIP, &digest_of(&top), top.len(), mounts)
            .await
            .unwrap_err();
        seen.push((
            listing,
            (unsupported.code(), unsupported.message().to_string()),
            (missing.code(), missing.message().to_string()),
            not_gzip.code(),
        ));
    }
    let theirs = seen.pop().unwrap();
    let ours = seen.pop().unwrap();
    assert_eq!(ours.0, theirs.0, "the applied trees differ");
    assert_eq!(ours.1, theirs.1, "unsupported media type");
    assert_eq!(ours.2, theirs.2, "missing blob");
    assert_eq!(ours.3, theirs.3, "a plain tar said to be gzip");
}
