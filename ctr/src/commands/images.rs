//! `ctr images ls|rm|tag|label`.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::images::images_client::ImagesClient;
use rcontainerd_api::services::images::{
    CreateImageRequest, DeleteImageRequest, GetImageRequest, Image, ListImagesRequest,
    UpdateImageRequest,
};
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::StatSnapshotRequest;
use tonic::Code;

/// The snapshotter `images check` looks in when none is named (containerd's default).
const DEFAULT_SNAPSHOTTER: &str = "overlayfs";

use crate::cli::{FilteredList, ImagesCheck, ImagesLabel, ImagesRemove, ImagesTag};
use crate::commands::leases::TemporaryLease;
use crate::errors::RpcError;
use crate::image_content::{chain_id, host_platform, is_missing, ContentReader, Target};
use crate::labels::{joined, parse_labels};
use crate::log;
use crate::tabwriter::TabWriter;
use crate::units::human_bytes;

type Client = ImagesClient<NamespacedChannel>;

fn target(image: &Image) -> Target {
    let d = image.target.clone().unwrap_or_default();
    Target {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        platform: None,
    }
}

/// `REF TYPE DIGEST SIZE PLATFORMS LABELS`, with the size and platforms read
/// from the image's content (logged and left out when it is missing).
pub async fn list(channel: NamespacedChannel, args: &FilteredList) -> anyhow::Result<String> {
    let images = Client::new(channel.clone())
        .list(ListImagesRequest {
            filters: args.filters.clone(),
        })
        .await
        .map_err(|status| anyhow!("failed to list images: {}", RpcError::from(status)))?
        .into_inner()
        .images;
    if args.quiet {
        return Ok(images.iter().map(|i| format!("{}\n", i.name)).collect());
    }
    let mut content = ContentReader::new(channel);
    let platform = host_platform();
    let mut writer = TabWriter::new(1, 8, 1, ' ');
    writer.write_str("REF\tTYPE\tDIGEST\tSIZE\tPLATFORMS\tLABELS\t\n");
    for image in &images {
        let target = target(image);
        let (size, err) = content.size(&target, &platform).await;
        if let Some(err) = err {
            log::error(
                &format!("failed calculating size for image {}", image.name),
                &err,
            );
        }
        let platforms = match content.platforms(&target).await {
            Ok(platforms) if !platforms.is_empty() => platforms.join(","),
            Ok(_) => "-".to_string(),
            Err(err) => {
                log::error(
                    &format!("failed resolving platform for image {}", image.name),
                    &err,
                );
                "-".to_string()
            }
        };
        let labels = if image.labels.is_empty() {
            "-".to_string()
        } else {
            joined(&image.labels)
        };
        writer.write_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t\n",
            image.name,
            target.media_type,
            target.digest,
            human_bytes(size),
            platforms,
            labels
        ));
    }
    Ok(writer.finish())
}

/// `REF TYPE DIGEST STATUS SIZE UNPACKED` for each image: whether the
/// manifest for this platform, its config and layers are in the content
/// store, and whether its layers are unpacked in the snapshotter (a snapshot
/// named by their chain ID). With `-q`, the names of complete images only.
/// A failed check is logged; the first one decides the exit status.
pub async fn check(
    channel: NamespacedChannel,
    args: &ImagesCheck,
    out: &mut String,
) -> anyhow::Result<()> {
    let images = Client::new(channel.clone())
        .list(ListImagesRequest {
            filters: args.filters.clone(),
        })
        .await
        .map_err(|status| anyhow!("failed listing images: {}", RpcError::from(status)))?
        .into_inner()
        .images;
    if images.is_empty() {
        return Ok(());
    }
    let snapshotter = args
        .snapshotter
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SNAPSHOTTER.to_string());
    let mut content = ContentReader::new(channel.clone());
    let mut snapshots = SnapshotsClient::new(channel);
    let platform = host_platform();
    let mut first_failure: Option<anyhow::Error> = None;
    let mut writer = TabWriter::new(1, 8, 1, ' ');
    if !args.quiet {
        writer.write_str("REF\tTYPE\tDIGEST\tSTATUS\tSIZE\tUNPACKED\t\n");
    }
    for image in &images {
        let target = target(image);
        let (status, size, complete) = match content.manifest(&target, &platform).await {
            Ok(manifest) => {
                let mut required = vec![Target::from_oci(manifest.config())];
                required.extend(manifest.layers().iter().map(Target::from_oci));
                let (mut present, mut present_size, mut required_size) = (0, 0, 0);
                let mut failed = None;
                for blob in &required {
                    required_size += blob.size;
                    match content.has(blob).await {
                        Ok(true) => {
                            present += 1;
                            present_size += blob.size;
                        }
                        Ok(false) => {}
                        Err(err) => failed = Some(err),
                    }
                }
                match failed {
                    Some(err) => {
                        log::error(&format!("unable to check {}", image.name), &err);
                        first_failure.get_or_insert_with(|| {
                            anyhow!("unable to check {}: {err}", image.name)
                        });
                        ("error".to_string(), "-".to_string(), false)
                    }
                    None => {
                        let complete = present == required.len();
                        let word = if complete { "complete" } else { "incomplete" };
                        (
                            format!("{word} ({present}/{})", required.len()),
                            format!(
                                "{}/{}",
                                human_bytes(present_size),
                                human_bytes(required_size)
                            ),
                            complete,
                        )
                    }
                }
            }
            Err(err) if is_missing(&err) => (
                "unavailable (0/?)".to_string(),
                format!("{}/?", human_bytes(0)),
                false,
            ),
            Err(err) => {
                log::error(&format!("unable to check {}", image.name), &err);
                first_failure
                    .get_or_insert_with(|| anyhow!("unable to check {}: {err}", image.name));
                ("error".to_string(), "-".to_string(), false)
            }
        };
        let unpacked = match unpacked(
            &mut content,
            &mut snapshots,
            &target,
            &platform,
            &snapshotter,
        )
        .await
        {
            Ok(unpacked) => unpacked,
            Err(err) => {
                log::error(&format!("unable to check unpack for {}", image.name), &err);
                first_failure.get_or_insert_with(|| {
                    anyhow!("unable to check unpack for {}: {err}", image.name)
                });
                false
            }
        };
        if args.quiet {
            if complete {
                out.push_str(&format!("{}\n", image.name));
            }
        } else {
            writer.write_str(&format!(
                "{}\t{}\t{}\t{status}\t{size}\t{unpacked}\n",
                image.name, target.media_type, target.digest
            ));
        }
    }
    if !args.quiet {
        out.push_str(&writer.finish());
    }
    match first_failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Whether the image's layers for `platform` are unpacked in `snapshotter`.
async fn unpacked(
    content: &mut ContentReader,
    snapshots: &mut SnapshotsClient<NamespacedChannel>,
    target: &Target,
    platform: &str,
    snapshotter: &str,
) -> anyhow::Result<bool> {
    let diff_ids = content.diff_ids(target, platform).await?;
    let Some(chain) = chain_id(&diff_ids) else {
        return Ok(false);
    };
    match snapshots
        .stat(StatSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: chain,
        })
        .await
    {
        Ok(_) => Ok(true),
        Err(status) if status.code() == Code::NotFound => Ok(false),
        Err(status) => Err(RpcError::from(status).into()),
    }
}

/// Deletes each image, printing its name; a missing one is a warning, other
/// failures are logged and the first one decides the exit status. `--sync`
/// applies to the last deletion, as with containerd's ctr.
pub async fn remove(channel: NamespacedChannel, args: &ImagesRemove) -> anyhow::Result<()> {
    let mut client = Client::new(channel);
    let mut first_failure = None;
    for (i, name) in args.refs.iter().enumerate() {
        let request = DeleteImageRequest {
            name: name.clone(),
            sync: args.sync && i == args.refs.len() - 1,
            target: None,
        };
        match client.delete(request).await {
            Ok(_) => println!("{name}"),
            Err(status) if status.code() == Code::NotFound => {
                log::warning(&format!("{name}: image not found"));
            }
            Err(status) => {
                let err = RpcError::from(status);
                log::error(&format!("unable to delete {name}"), &err);
                first_failure.get_or_insert_with(|| anyhow!("unable to delete {name}: {err}"));
            }
        }
    }
    match first_failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Creates each new name for the source image's target and labels; with
/// `--force`, an existing name is replaced. Runs under a temporary lease, as
/// containerd's ctr does.
pub async fn tag(channel: NamespacedChannel, args: &ImagesTag) -> anyhow::Result<()> {
    let source = args
        .source
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| anyhow!("please provide an image reference to tag from"))?;
    if args.targets.is_empty() {
        bail!("please provide an image reference to tag to");
    }
    let lease = TemporaryLease::create(channel.clone()).await?;
    let result = tag_under(&lease, source, args).await;
    lease.release().await;
    result
}

async fn tag_under(lease: &TemporaryLease, source: &str, args: &ImagesTag) -> anyhow::Result<()> {
    let mut client = Client::new(lease.channel());
    let image = client
        .get(lease.request(GetImageRequest {
            name: source.to_string(),
        }))
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .image
        .ok_or_else(|| anyhow!("image {source:?}: not found"))?;
    for name in &args.targets {
        let mut tagged = image.clone();
        tagged.name = name.clone();
        let create = CreateImageRequest {
            image: Some(tagged),
            source_date_epoch: None,
        };
        match client.create(lease.request(create.clone())).await {
            Ok(_) => {}
            Err(status) if status.code() == Code::AlreadyExists && args.force => {
                client
                    .delete(lease.request(DeleteImageRequest {
                        name: name.clone(),
                        ..Default::default()
                    }))
                    .await
                    .map_err(RpcError::from)?;
                client
                    .create(lease.request(create))
                    .await
                    .map_err(RpcError::from)?;
            }
            Err(status) => return Err(RpcError::from(status).into()),
        }
        println!("{name}");
    }
    Ok(())
}

/// Sets (or with an empty value clears) each label, or with `-r` replaces
/// them all; prints the labels the image has afterwards.
pub async fn label(channel: NamespacedChannel, args: &ImagesLabel) -> anyhow::Result<()> {
    let name = args
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| anyhow!("please specify an image"))?;
    let labels: BTreeMap<String, String> = parse_labels(&args.labels);
    let paths = labels
        .keys()
        .map(|key| {
            if args.replace_all {
                "labels".to_string()
            } else {
                format!("labels.{key}")
            }
        })
        .collect();
    let updated = Client::new(channel)
        .update(UpdateImageRequest {
            image: Some(Image {
                name: name.to_string(),
                labels: labels.into_iter().collect(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths }),
            source_date_epoch: None,
        })
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .image
        .unwrap_or_default();
    println!("{}", joined(&updated.labels));
    Ok(())
}
