//! `ctr images mount [flags] <ref> <target>` and `ctr images unmount [--rm] <target>`, as
//! containerd 1.6's ctr does them: mount works under a lease whose id is the target path
//! (labelled `containerd.io/gc.ref.snapshot.<snapshotter>=<target>`, expiring in 24 h), unpacks
//! the image, prints the top chain ID, makes a view (or with `--rw` an active snapshot) keyed
//! by the target path, mounts it there and prints the target. Unmount detaches everything
//! mounted on the target; `--rm` then deletes the lease and the snapshot.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::anyhow;
use rcontainerd_api::client::{os_error_text, NamespacedChannel};
use rcontainerd_api::services::images::images_client::ImagesClient;
use rcontainerd_api::services::images::GetImageRequest;
use rcontainerd_api::services::leases::leases_client::LeasesClient;
use rcontainerd_api::services::leases::{CreateRequest, DeleteRequest};
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::{
    MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, ViewSnapshotRequest,
};
use tonic::Code;

use super::leases::EXPIRE_LABEL;
use crate::cli::{ImagesMount, ImagesUnmount};
use crate::errors::RpcError;
use crate::image_content::{chain_id, ContentReader, Target};
use crate::oci::{LeaseHeader, NamedLease, Platform};
use crate::unpack::{self, DEFAULT_SNAPSHOTTER};

/// How long the mount's lease lives.
const MOUNT_LEASE_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How often an unmount is retried while the target is busy, and the pause between.
const BUSY_RETRIES: usize = 50;
const BUSY_PAUSE: Duration = Duration::from_millis(50);

fn snapshotter_of(named: Option<&str>) -> String {
    named
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SNAPSHOTTER)
        .to_string()
}

pub async fn mount(
    channel: NamespacedChannel,
    _namespace: &str,
    args: &ImagesMount,
) -> anyhow::Result<()> {
    let reference = args.reference.clone().unwrap_or_default();
    if reference.is_empty() {
        anyhow::bail!("please provide an image reference to mount");
    }
    let target = args.target.clone().unwrap_or_default();
    if target.is_empty() {
        anyhow::bail!("please provide a target path to mount to");
    }
    let snapshotter = snapshotter_of(args.snapshotter.as_deref());
    let expires = chrono::DateTime::<chrono::Utc>::from(SystemTime::now() + MOUNT_LEASE_LIFETIME)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut leases = LeasesClient::new(channel.clone());
    let created = leases
        .create(CreateRequest {
            id: target.clone(),
            labels: HashMap::from([
                (EXPIRE_LABEL.to_string(), expires),
                (
                    format!("containerd.io/gc.ref.snapshot.{snapshotter}"),
                    target.clone(),
                ),
            ]),
        })
        .await;
    let created = match created {
        Ok(_) => true,
        Err(status) if status.code() == Code::AlreadyExists => false,
        Err(status) => return Err(RpcError::from(status).into()),
    };
    let lease = NamedLease(target.clone());
    let result = mount_under(&channel, &lease, args, &reference, &target, &snapshotter).await;
    if result.is_err() && created {
        let _ = leases
            .delete(DeleteRequest {
                id: target.clone(),
                sync: false,
            })
            .await;
    }
    result
}

async fn mount_under(
    channel: &NamespacedChannel,
    lease: &NamedLease,
    args: &ImagesMount,
    reference: &str,
    target: &str,
    snapshotter: &str,
) -> anyhow::Result<()> {
    let platform = match args.platform.as_deref().filter(|p| !p.is_empty()) {
        Some(text) => Platform::parse(text)
            .map_err(|err| anyhow!("unable to parse platform {text}: {err}"))?,
        None => Platform::host(),
    }
    .name();
    let image = ImagesClient::new(channel.clone())
        .get(GetImageRequest {
            name: reference.to_string(),
        })
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .image
        .unwrap_or_default();
    let descriptor = image.target.unwrap_or_default();
    let top = Target {
        media_type: descriptor.media_type,
        digest: descriptor.digest,
        size: descriptor.size,
        platform: None,
    };
    unpack::unpack_under(channel, lease, &top, &platform, snapshotter)
        .await
        .map_err(|err| anyhow!("error unpacking image: {err:#}"))?;
    let diff_ids = ContentReader::new(channel.clone())
        .diff_ids(&top, &platform)
        .await?;
    let chain = chain_id(&diff_ids).unwrap_or_default();
    println!("{chain}");

    let mut snapshots = SnapshotsClient::new(channel.clone());
    let made = if args.rw {
        snapshots
            .prepare(lease.request(PrepareSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: target.to_string(),
                parent: chain.clone(),
                labels: HashMap::new(),
            }))
            .await
            .map(|r| r.into_inner().mounts)
    } else {
        snapshots
            .view(lease.request(ViewSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: target.to_string(),
                parent: chain.clone(),
                labels: HashMap::new(),
            }))
            .await
            .map(|r| r.into_inner().mounts)
    };
    let mounts = match made {
        Ok(mounts) => mounts,
        Err(status) if status.code() == Code::AlreadyExists => {
            snapshots
                .mounts(MountsRequest {
                    snapshotter: snapshotter.to_string(),
                    key: target.to_string(),
                })
                .await
                .map_err(RpcError::from)?
                .into_inner()
                .mounts
        }
        Err(status) => return Err(RpcError::from(status).into()),
    };
    let mounts: Vec<rcontainerd_mount::Mount> = mounts
        .into_iter()
        .map(|m| rcontainerd_mount::Mount {
            mount_type: m.r#type,
            source: m.source,
            target: m.target,
            options: m.options,
        })
        .collect();
    if let Err(err) = rcontainerd_mount::mount_all(&mounts, Path::new(target)) {
        let removed = snapshots
            .remove(lease.request(RemoveSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: target.to_string(),
            }))
            .await;
        if let Err(status) = removed {
            if status.code() != Code::NotFound {
                eprintln!(
                    "Error cleaning up snapshot after mount error: {}",
                    RpcError::from(status)
                );
            }
        }
        return Err(go_mount_error(&err));
    }
    println!("{target}");
    Ok(())
}

/// A failed mount as containerd's `mount.All` reports it: the system's reason alone, in Go's
/// words (`no such file or directory`), where ours also names the mount.
fn go_mount_error(err: &rcontainerd_mount::MountError) -> anyhow::Error {
    let text = err.to_string();
    match text.rsplit_once(": ") {
        Some((_, reason)) if text.starts_with("mount ") => {
            let mut chars = reason.chars();
            let first = chars.next().map(|c| c.to_ascii_lowercase());
            anyhow!(
                "{}{}",
                first.map(String::from).unwrap_or_default(),
                chars.as_str()
            )
        }
        _ => anyhow!(text),
    }
}

/// Unmounts `target` until nothing is mounted there (containerd's `mount.UnmountAll`): a
/// missing target is fine, EINVAL (not a mount point) ends it, EBUSY is retried.
fn unmount_all(target: &str) -> anyhow::Result<()> {
    use nix::errno::Errno;
    use nix::mount::{umount2, MntFlags};
    if !Path::new(target).exists() {
        return Ok(());
    }
    loop {
        let mut tries = 0;
        loop {
            match umount2(target, MntFlags::empty()) {
                Ok(()) => break,
                Err(Errno::EINVAL) => return Ok(()),
                Err(Errno::EBUSY) if tries + 1 < BUSY_RETRIES => {
                    tries += 1;
                    std::thread::sleep(BUSY_PAUSE);
                }
                Err(Errno::EBUSY) => {
                    return Err(anyhow!(
                        "failed to unmount target {target}: device or resource busy"
                    ))
                }
                Err(errno) => {
                    let err = std::io::Error::from_raw_os_error(errno as i32);
                    return Err(anyhow!("{}", os_error_text(&err)));
                }
            }
        }
    }
}

pub async fn unmount(
    channel: NamespacedChannel,
    namespace: &str,
    args: &ImagesUnmount,
) -> anyhow::Result<()> {
    let target = args.target.clone().unwrap_or_default();
    if target.is_empty() {
        anyhow::bail!("please provide a target path to unmount from");
    }
    unmount_all(&target)?;
    if args.rm {
        // An unnamed snapshotter is the namespace's default, as containerd's client resolves it.
        let snapshotter =
            unpack::resolve_snapshotter(&channel, namespace, args.snapshotter.as_deref())
                .await
                .unwrap_or_else(|_| DEFAULT_SNAPSHOTTER.to_string());
        match LeasesClient::new(channel.clone())
            .delete(DeleteRequest {
                id: target.clone(),
                sync: false,
            })
            .await
        {
            Ok(_) => {}
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => return Err(anyhow!("error deleting lease: {}", RpcError::from(status))),
        }
        match SnapshotsClient::new(channel)
            .remove(RemoveSnapshotRequest {
                snapshotter,
                key: target.clone(),
            })
            .await
        {
            Ok(_) => {}
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => {
                return Err(anyhow!(
                    "error removing snapshot: {}",
                    RpcError::from(status)
                ))
            }
        }
    }
    println!("{target}");
    Ok(())
}
