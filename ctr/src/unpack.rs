//! Unpacking an image's layers into a snapshotter as containerd 1.6's client
//! does it (`image.Unpack`, `rootfs.ApplyLayerWithOpts`): under a temporary
//! lease, for each layer whose chain ID the snapshotter does not have, an
//! extraction snapshot on the parent chain, the layer applied to its mounts
//! by the daemon's Diff service, the snapshot committed as the chain ID; then
//! the layer blob labelled with its uncompressed digest and the config with
//! the snapshot it keeps alive.

use std::collections::HashMap;

use anyhow::{anyhow, bail};
use base64::Engine as _;
use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::{Info, UpdateRequest};
use rcontainerd_api::services::diff::diff_client::DiffClient;
use rcontainerd_api::services::diff::ApplyRequest;
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use rcontainerd_api::types::Descriptor;
use tonic::Code;

use crate::commands::leases::TemporaryLease;
use crate::errors::RpcError;
use crate::image_content::{chain_id, ContentReader, Target};
use crate::log;

/// The label a layer blob gets with its uncompressed digest.
const UNCOMPRESSED_LABEL: &str = "containerd.io/uncompressed";

/// Unpacks the image `top` for `platform` into `snapshotter`.
pub async fn unpack(
    channel: NamespacedChannel,
    top: &Target,
    platform: &str,
    snapshotter: &str,
) -> anyhow::Result<()> {
    let lease = TemporaryLease::create(channel.clone()).await?;
    let result = unpack_under(&lease, top, platform, snapshotter).await;
    lease.release().await;
    result
}

async fn unpack_under(
    lease: &TemporaryLease,
    top: &Target,
    platform: &str,
    snapshotter: &str,
) -> anyhow::Result<()> {
    let mut content = ContentReader::new(lease.channel());
    let manifest = content.manifest(top, platform).await?;
    let (config, _) = content.config(top, platform).await?;
    let diff_ids = content
        .diff_ids(top, platform)
        .await
        .map_err(|err| anyhow!("failed to resolve rootfs: {err}"))?;
    if diff_ids.len() != manifest.layers().len() {
        bail!("mismatched image rootfs and manifest layers");
    }
    let mut snapshots = SnapshotsClient::new(lease.channel());
    let mut store = ContentClient::new(lease.channel());
    for (i, blob) in manifest.layers().iter().enumerate() {
        let chain = chain_id(&diff_ids[..=i]).unwrap_or_default();
        let parent = chain_id(&diff_ids[..i]).unwrap_or_default();
        match snapshots
            .stat(lease.request(StatSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: chain.clone(),
            }))
            .await
        {
            Ok(_) => continue,
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => {
                bail!(
                    "failed to stat snapshot {chain}: {}",
                    RpcError::from(status)
                )
            }
        }
        let blob = Target::from_oci(blob);
        let applied = apply_layer(lease, snapshotter, &blob, &diff_ids[i], &parent, &chain).await?;
        if applied {
            store
                .update(lease.request(UpdateRequest {
                    info: Some(Info {
                        digest: blob.digest.clone(),
                        labels: [(UNCOMPRESSED_LABEL.to_string(), diff_ids[i].clone())].into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec![format!("labels.{UNCOMPRESSED_LABEL}")],
                    }),
                }))
                .await
                .map_err(RpcError::from)?;
        }
    }
    let label = format!("containerd.io/gc.ref.snapshot.{snapshotter}");
    store
        .update(lease.request(UpdateRequest {
            info: Some(Info {
                digest: config.digest.clone(),
                labels: [(label.clone(), chain_id(&diff_ids).unwrap_or_default())].into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec![format!("labels.{label}")],
            }),
        }))
        .await
        .map_err(RpcError::from)?;
    Ok(())
}

/// containerd's unique part of an extraction key: the clock's nanoseconds
/// and three random bytes in URL-safe base64.
fn unique_part() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let mut random = [0u8; 3];
    if let Ok(bytes) = std::fs::read("/proc/sys/kernel/random/uuid") {
        for (slot, byte) in random.iter_mut().zip(bytes.iter().rev()) {
            *slot = *byte;
        }
    }
    format!(
        "{nanos}-{}",
        base64::engine::general_purpose::URL_SAFE.encode(random)
    )
}

/// One layer: whether this call applied it (false when another unpack
/// committed the chain ID first).
async fn apply_layer(
    lease: &TemporaryLease,
    snapshotter: &str,
    blob: &Target,
    diff_id: &str,
    parent: &str,
    chain: &str,
) -> anyhow::Result<bool> {
    let mut snapshots = SnapshotsClient::new(lease.channel());
    let (key, mounts) = loop {
        let key = format!("extract-{} {chain}", unique_part());
        match snapshots
            .prepare(lease.request(PrepareSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: key.clone(),
                parent: parent.to_string(),
                labels: HashMap::new(),
            }))
            .await
        {
            Ok(response) => break (key, response.into_inner().mounts),
            Err(status) if status.code() == Code::AlreadyExists => continue,
            Err(status) => bail!(
                "failed to prepare extraction snapshot {key:?}: {}",
                RpcError::from(status)
            ),
        }
    };
    let outcome = async {
        let applied = DiffClient::new(lease.channel())
            .apply(lease.request(ApplyRequest {
                diff: Some(Descriptor {
                    media_type: blob.media_type.clone(),
                    digest: blob.digest.clone(),
                    size: blob.size,
                    annotations: HashMap::new(),
                }),
                mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            }))
            .await
            .map_err(|status| {
                RpcError::from(status).code_and(format!("failed to extract layer {diff_id}"))
            })?
            .into_inner()
            .applied
            .unwrap_or_default();
        if applied.digest != diff_id {
            return Err((
                Code::Unknown,
                anyhow!(
                    "wrong diff id calculated on extraction {:?}",
                    applied.digest
                ),
            ));
        }
        snapshots
            .commit(lease.request(CommitSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                name: chain.to_string(),
                key: key.clone(),
                labels: HashMap::new(),
            }))
            .await
            .map_err(|status| {
                RpcError::from(status).code_and(format!("failed to commit snapshot {key}"))
            })?;
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => Ok(true),
        Err((code, err)) => {
            if code != Code::AlreadyExists {
                log::info_with_fields(
                    "apply failure, attempting cleanup",
                    &[("error", &err.to_string()), ("key", &key)],
                );
            }
            let removed = SnapshotsClient::new(lease.channel())
                .remove(lease.request(RemoveSnapshotRequest {
                    snapshotter: snapshotter.to_string(),
                    key: key.clone(),
                }))
                .await;
            if let Err(status) = removed {
                log::warning_with_fields(
                    "extraction snapshot removal failed",
                    &[
                        ("error", &RpcError::from(status).to_string()),
                        ("key", &key),
                    ],
                );
            }
            if code == Code::AlreadyExists {
                Ok(false)
            } else {
                Err(err)
            }
        }
    }
}
