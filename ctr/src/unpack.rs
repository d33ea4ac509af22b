//! Unpacking an image into a snapshotter, as containerd 1.6's client does it (`image.Unpack`,
//! `rootfs.ApplyLayerWithOpts`): for each layer of the manifest for the platform, the snapshot
//! named by the chain ID so far is used if it exists; else an active snapshot
//! `extract-<unique> <chainID>` is prepared on the previous one, the Diff service applies the
//! layer into its mounts, the digest it reports must be the config's diff ID, and the snapshot
//! is committed as the chain ID. A layer applied gets `containerd.io/uncompressed=<diffID>`;
//! the config gets `containerd.io/gc.ref.snapshot.<snapshotter>=<top chainID>`.
//! Every creating call carries the lease: a temporary one of its own ([`unpack`]: `containers
//! create`, each image of `images import`) or the caller's ([`unpack_under`]: `images mount`).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};

use anyhow::anyhow;
use base64::Engine as _;
use oci_spec::image::ImageConfiguration;
use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::diff::diff_client::DiffClient;
use rcontainerd_api::services::diff::ApplyRequest;
use rcontainerd_api::services::namespaces::namespaces_client::NamespacesClient;
use rcontainerd_api::services::namespaces::GetNamespaceRequest;
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use tonic::Code;

use crate::commands::leases::TemporaryLease;
use crate::errors::RpcError;
use crate::image_content::{chain_id, ContentReader, Target};
use crate::log;
use crate::oci::{self, LeaseHeader};

/// containerd's default snapshotter.
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";

/// The namespace label naming a namespace's default snapshotter.
const DEFAULT_SNAPSHOTTER_LABEL: &str = "containerd.io/defaults/snapshotter";

/// The snapshotter to use: the one named, else the namespace's default, else overlayfs.
pub async fn resolve_snapshotter(
    channel: &NamespacedChannel,
    namespace: &str,
    named: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(name) = named.filter(|n| !n.is_empty()) {
        return Ok(name.to_string());
    }
    let got = NamespacesClient::new(channel.clone())
        .get(GetNamespaceRequest {
            name: namespace.to_string(),
        })
        .await;
    let label = match got {
        Ok(response) => response
            .into_inner()
            .namespace
            .and_then(|n| n.labels.get(DEFAULT_SNAPSHOTTER_LABEL).cloned())
            .unwrap_or_default(),
        Err(status) if status.code() == Code::NotFound => String::new(),
        Err(status) => return Err(RpcError::from(status).into()),
    };
    Ok(if label.is_empty() {
        DEFAULT_SNAPSHOTTER.to_string()
    } else {
        label
    })
}

/// Unpacks the image `top` for `platform` into `snapshotter` under a temporary lease of its
/// own, as containerd's client does when no lease is in the context (`containers create`,
/// each image of `images import`).
pub async fn unpack(
    channel: NamespacedChannel,
    top: &Target,
    platform: &str,
    snapshotter: &str,
) -> anyhow::Result<()> {
    let lease = TemporaryLease::create(channel.clone()).await?;
    let result = unpack_under(&channel, &lease, top, platform, snapshotter).await;
    lease.release().await;
    result.map(|_| ())
}

/// Unpacks the image whose top descriptor is `target` for `platform` (`os/arch`) into
/// `snapshotter` under `lease` (`images mount`'s lease named after its target); returns the
/// top chain ID.
pub async fn unpack_under(
    channel: &NamespacedChannel,
    lease: &impl LeaseHeader,
    target: &Target,
    platform: &str,
    snapshotter: &str,
) -> anyhow::Result<String> {
    let mut reader = ContentReader::new(channel.clone());
    let manifest = reader.manifest(target, platform).await?;
    let config_blob = oci::read_blob(channel, manifest.config().digest().as_ref())
        .await
        .map_err(|err| anyhow!("failed to resolve rootfs: {err}"))?;
    let config = ImageConfiguration::from_reader(&config_blob[..])
        .map_err(|err| anyhow!("failed to resolve rootfs: {err}"))?;
    let diff_ids = config.rootfs().diff_ids().to_vec();
    if diff_ids.len() != manifest.layers().len() {
        anyhow::bail!("mismatched image rootfs and manifest layers");
    }
    let mut chain: Vec<String> = Vec::new();
    for (layer, diff_id) in manifest.layers().iter().zip(&diff_ids) {
        unpack_layer(channel, lease, snapshotter, layer, diff_id, &chain).await?;
        chain.push(diff_id.clone());
    }
    let top = chain_id(&chain).unwrap_or_default();
    oci::set_content_labels(
        channel,
        lease,
        manifest.config().digest().as_ref(),
        BTreeMap::from([(
            format!("containerd.io/gc.ref.snapshot.{snapshotter}"),
            top.clone(),
        )]),
    )
    .await?;
    Ok(top)
}

/// Unpacks one layer on the layers of `chain` (their diff IDs): the snapshot named by the chain
/// ID with this layer is used if it exists, else the layer is applied and its blob labelled
/// with its diff ID. `images pull` calls it for each layer as soon as the layer is in.
pub async fn unpack_layer(
    channel: &NamespacedChannel,
    lease: &impl LeaseHeader,
    snapshotter: &str,
    layer: &oci_spec::image::Descriptor,
    diff_id: &str,
    chain: &[String],
) -> anyhow::Result<()> {
    let mut next = chain.to_vec();
    next.push(diff_id.to_string());
    let chain_now = chain_id(&next).unwrap_or_default();
    let applied = match SnapshotsClient::new(channel.clone())
        .stat(StatSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: chain_now.clone(),
        })
        .await
    {
        Ok(_) => false,
        Err(status) if status.code() == Code::NotFound => {
            let parent = chain_id(chain).unwrap_or_default();
            apply_layer(
                channel,
                lease,
                snapshotter,
                layer,
                diff_id,
                &parent,
                &chain_now,
            )
            .await?
        }
        Err(status) => {
            return Err(anyhow!(
                "failed to stat snapshot {chain_now}: {}",
                RpcError::from(status)
            ))
        }
    };
    if applied {
        oci::set_content_labels(
            channel,
            lease,
            layer.digest().as_ref(),
            BTreeMap::from([(oci::UNCOMPRESSED_LABEL.to_string(), diff_id.to_string())]),
        )
        .await?;
    }
    Ok(())
}

/// Applies one layer as snapshot `chain_now` on `parent`; false if another unpack committed
/// the same snapshot first.
async fn apply_layer(
    channel: &NamespacedChannel,
    lease: &impl LeaseHeader,
    snapshotter: &str,
    layer: &oci_spec::image::Descriptor,
    diff_id: &str,
    parent: &str,
    chain_now: &str,
) -> anyhow::Result<bool> {
    let mut snapshots = SnapshotsClient::new(channel.clone());
    let (key, mounts) = loop {
        let key = format!("extract-{} {chain_now}", unique_part());
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
            Err(status) => {
                return Err(anyhow!(
                    "failed to prepare extraction snapshot {key:?}: {}",
                    RpcError::from(status)
                ))
            }
        }
    };
    // Each failure with its code: AlreadyExists anywhere means another unpack got there first.
    let outcome = async {
        let applied = DiffClient::new(channel.clone())
            .apply(lease.request(ApplyRequest {
                diff: Some(oci::to_api(layer)),
                mounts,
                ..Default::default()
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
                name: chain_now.to_string(),
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
            let exists = code == Code::AlreadyExists;
            if !exists {
                log::info_with_fields(
                    "apply failure, attempting cleanup",
                    &[("error", &err.to_string()), ("key", &key)],
                );
            }
            let removed = SnapshotsClient::new(channel.clone())
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
            if exists {
                Ok(false)
            } else {
                Err(err)
            }
        }
    }
}

/// `<nanoseconds>-<4 url-safe base64 characters>`, as containerd's client makes keys unique.
pub fn unique_part() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        .to_le_bytes();
    format!(
        "{nanos}-{}",
        base64::engine::general_purpose::URL_SAFE.encode(&random[..3])
    )
}
