//! `ctr snapshots diff [flags] <idA> [<idB>]`: the daemon's differ writes the changes between two
//! snapshots (or one and its parent) as a layer into the content store; ctr prints the layer.
//! Everything is done under a temporary lease, as containerd's ctr does; `--keep` labels the
//! layer `containerd.io/gc.root` so it outlives the lease.

use std::collections::HashMap;

use anyhow::anyhow;
use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::diff::diff_client::DiffClient;
use rcontainerd_api::services::diff::DiffRequest;
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::{
    Kind, MountsRequest, RemoveSnapshotRequest, StatSnapshotRequest, ViewSnapshotRequest,
};
use rcontainerd_api::types::Mount;

use super::content::print_blob;
use super::leases::TemporaryLease;
use crate::cli::SnapshotDiff;
use crate::errors::RpcError;
use crate::labels::parse_labels;

const GC_ROOT_LABEL: &str = "containerd.io/gc.root";

/// The mounts of one side of the diff, and the view made for it (removed afterwards).
struct Side {
    mounts: Vec<Mount>,
    view: Option<String>,
}

pub async fn run(
    channel: NamespacedChannel,
    snapshotter: &str,
    args: &SnapshotDiff,
) -> anyhow::Result<()> {
    let id_a = args.id_a.clone().unwrap_or_default();
    if id_a.is_empty() {
        return Err(anyhow!("snapshot id must be provided"));
    }
    let lease = TemporaryLease::create(channel.clone()).await?;
    let result = diff_and_print(&lease, snapshotter, args, &id_a).await;
    lease.release().await;
    result
}

async fn diff_and_print(
    lease: &TemporaryLease,
    snapshotter: &str,
    args: &SnapshotDiff,
    id_a: &str,
) -> anyhow::Result<()> {
    let mut snapshots = SnapshotsClient::new(lease.channel());
    let mut labels: HashMap<String, String> = parse_labels(&args.labels).into_iter().collect();
    if args.keep {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        labels.insert(GC_ROOT_LABEL.to_string(), now);
    }
    let (lower, upper) = match args.id_b.as_deref().filter(|b| !b.is_empty()) {
        // One snapshot: against its parent.
        None => {
            let info = stat(&mut snapshots, snapshotter, id_a).await?;
            let unique = unique_part();
            let lower_key = format!("{}-parent-view-{unique}", info.parent);
            let lower = view(&mut snapshots, lease, snapshotter, &lower_key, &info.parent).await?;
            let upper = match side(&mut snapshots, lease, snapshotter, id_a, &unique).await {
                Ok(upper) => upper,
                Err(e) => {
                    remove_views(&mut snapshots, lease, snapshotter, &[&lower]).await;
                    return Err(e);
                }
            };
            (lower, upper)
        }
        Some(id_b) => {
            let a = side(&mut snapshots, lease, snapshotter, id_a, "key").await?;
            let b = match side(&mut snapshots, lease, snapshotter, id_b, "key").await {
                Ok(b) => b,
                Err(e) => {
                    remove_views(&mut snapshots, lease, snapshotter, &[&a]).await;
                    return Err(e);
                }
            };
            (a, b)
        }
    };
    let made = DiffClient::new(lease.channel())
        .diff(lease.request(DiffRequest {
            left: lower.mounts.clone(),
            right: upper.mounts.clone(),
            media_type: args.media_type.clone(),
            r#ref: args.reference.clone(),
            labels,
            source_date_epoch: None,
        }))
        .await
        .map_err(RpcError::from);
    remove_views(&mut snapshots, lease, snapshotter, &[&upper, &lower]).await;
    let layer = made?.into_inner().diff.unwrap_or_default();
    let mut content = ContentClient::new(lease.channel());
    print_blob(&mut content, &layer.digest, layer.size).await
}

async fn stat(
    client: &mut SnapshotsClient<NamespacedChannel>,
    snapshotter: &str,
    key: &str,
) -> anyhow::Result<rcontainerd_api::services::snapshots::Info> {
    Ok(client
        .stat(StatSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: key.to_string(),
        })
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .info
        .unwrap_or_default())
}

/// An active snapshot's own mounts, or a view of a committed one named `<id>-view-<suffix>`.
async fn side(
    client: &mut SnapshotsClient<NamespacedChannel>,
    lease: &TemporaryLease,
    snapshotter: &str,
    id: &str,
    suffix: &str,
) -> anyhow::Result<Side> {
    let info = stat(client, snapshotter, id).await?;
    if info.kind == Kind::Active as i32 {
        let mounts = client
            .mounts(MountsRequest {
                snapshotter: snapshotter.to_string(),
                key: id.to_string(),
            })
            .await
            .map_err(RpcError::from)?
            .into_inner()
            .mounts;
        return Ok(Side { mounts, view: None });
    }
    view(
        client,
        lease,
        snapshotter,
        &format!("{id}-view-{suffix}"),
        id,
    )
    .await
}

async fn view(
    client: &mut SnapshotsClient<NamespacedChannel>,
    lease: &TemporaryLease,
    snapshotter: &str,
    key: &str,
    parent: &str,
) -> anyhow::Result<Side> {
    let mounts = client
        .view(lease.request(ViewSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: key.to_string(),
            parent: parent.to_string(),
            labels: HashMap::new(),
        }))
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .mounts;
    Ok(Side {
        mounts,
        view: Some(key.to_string()),
    })
}

/// Removes the views made for the diff; a failure leaves them to the lease.
async fn remove_views(
    client: &mut SnapshotsClient<NamespacedChannel>,
    lease: &TemporaryLease,
    snapshotter: &str,
    sides: &[&Side],
) {
    for key in sides.iter().filter_map(|s| s.view.as_ref()) {
        let _ = client
            .remove(lease.request(RemoveSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: key.clone(),
            }))
            .await;
    }
}

/// Nine characters that make a view key unique, as containerd's client adds them.
fn unique_part() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{:09}", nanos % 1_000_000_000)
}
