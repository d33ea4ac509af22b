//! `ctr containers ls|info|rm|label`.

use anyhow::anyhow;
use base64::Engine as _;
use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::containers::containers_client::ContainersClient;
use rcontainerd_api::services::containers::{
    Container, DeleteContainerRequest, GetContainerRequest, ListContainersRequest,
    UpdateContainerRequest,
};
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::RemoveSnapshotRequest;
use rcontainerd_api::services::tasks::tasks_client::TasksClient;
use rcontainerd_api::services::tasks::GetRequest;
use tonic::Code;

use crate::cli::{ContainerInfo, ContainersDelete, FilteredList, ObjectWithLabels};
use crate::errors::RpcError;
use crate::gojson::{rfc3339_nano, Json};
use crate::labels::{joined, label_update, parse_labels};
use crate::log;
use crate::tabwriter::TabWriter;

type Client = ContainersClient<NamespacedChannel>;

const MISSING_ID: &str = "container id must be provided: invalid argument";

pub async fn get(channel: NamespacedChannel, id: &str) -> anyhow::Result<Container> {
    Client::new(channel)
        .get(GetContainerRequest { id: id.to_string() })
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .container
        .ok_or_else(|| anyhow!("container {id:?}: not found"))
}

/// `CONTAINER IMAGE RUNTIME`.
pub async fn list(channel: NamespacedChannel, args: &FilteredList) -> anyhow::Result<String> {
    let containers = Client::new(channel)
        .list(ListContainersRequest {
            filters: args.filters.clone(),
        })
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .containers;
    if args.quiet {
        return Ok(containers.iter().map(|c| format!("{}\n", c.id)).collect());
    }
    let mut writer = TabWriter::new(4, 8, 4, ' ');
    writer.write_str("CONTAINER\tIMAGE\tRUNTIME\t\n");
    for c in &containers {
        let image = if c.image.is_empty() { "-" } else { &c.image };
        let runtime = c.runtime.as_ref().map(|r| r.name.as_str()).unwrap_or("");
        writer.write_str(&format!("{}\t{image}\t{runtime}\t\n", c.id));
    }
    Ok(writer.finish())
}

/// A protobuf `Any` as Go prints containerd's `types.Any`.
pub(crate) fn any_json(any: &prost_types::Any) -> Json {
    let mut members = Vec::new();
    if !any.type_url.is_empty() {
        members.push(("type_url".into(), Json::string(any.type_url.as_str())));
    }
    if !any.value.is_empty() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&any.value);
        members.push(("value".into(), Json::string(encoded)));
    }
    Json::Object(members)
}

/// The container as containerd's ctr prints it: its record's fields in Go's
/// order, the spec (JSON) in place of its `Any` and last.
fn info_json(c: &Container) -> Json {
    let labels = if c.labels.is_empty() {
        Json::Null
    } else {
        Json::sorted_map(&c.labels)
    };
    let runtime = c.runtime.clone().unwrap_or_default();
    let mut extensions: Vec<_> = c.extensions.iter().collect();
    extensions.sort_by(|a, b| a.0.cmp(b.0));
    let extensions = if extensions.is_empty() {
        Json::Null
    } else {
        Json::Object(
            extensions
                .into_iter()
                .map(|(k, v)| (k.clone(), any_json(v)))
                .collect(),
        )
    };
    let mut members = vec![
        ("ID".to_string(), Json::string(c.id.as_str())),
        ("Labels".into(), labels),
        ("Image".into(), Json::string(c.image.as_str())),
        (
            "Runtime".into(),
            Json::Object(vec![
                ("Name".into(), Json::string(runtime.name)),
                (
                    "Options".into(),
                    runtime.options.as_ref().map_or(Json::Null, any_json),
                ),
            ]),
        ),
    ];
    let spec = c.spec.as_ref().filter(|s| !s.value.is_empty());
    if spec.is_none() {
        members.push(("Spec".into(), c.spec.as_ref().map_or(Json::Null, any_json)));
    }
    members.extend([
        ("SnapshotKey".into(), Json::string(c.snapshot_key.as_str())),
        ("Snapshotter".into(), Json::string(c.snapshotter.as_str())),
        (
            "CreatedAt".into(),
            Json::string(rfc3339_nano(c.created_at.as_ref())),
        ),
        (
            "UpdatedAt".into(),
            Json::string(rfc3339_nano(c.updated_at.as_ref())),
        ),
        ("Extensions".into(), extensions),
    ]);
    if let Some(spec) = spec {
        members.push((
            "Spec".into(),
            Json::Raw(String::from_utf8_lossy(&spec.value).into_owned()),
        ));
    }
    Json::Object(members)
}

/// Prints the container as JSON, or with `--spec` its spec alone.
pub async fn info(channel: NamespacedChannel, args: &ContainerInfo) -> anyhow::Result<String> {
    let id = args
        .id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| anyhow!(MISSING_ID))?;
    let container = get(channel, id).await?;
    let json = if args.spec {
        let spec = container.spec.unwrap_or_default();
        Json::Raw(String::from_utf8_lossy(&spec.value).into_owned())
    } else {
        info_json(&container)
    };
    Ok(format!("{}\n", json.to_indented("    ")))
}

/// Deletes each container (refusing one with a task) and, unless
/// `--keep-snapshot`, its snapshot; failures are logged and the first one
/// decides the exit status.
pub async fn delete(channel: NamespacedChannel, args: &ContainersDelete) -> anyhow::Result<()> {
    if args.ids.is_empty() {
        anyhow::bail!("must specify at least one container to delete: invalid argument");
    }
    let mut first_failure = None;
    for id in &args.ids {
        if let Err(err) = delete_one(channel.clone(), id, !args.keep_snapshot).await {
            log::error(&format!("failed to delete container {id:?}"), &err);
            first_failure.get_or_insert(err);
        }
    }
    match first_failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

pub async fn delete_one(channel: NamespacedChannel, id: &str, cleanup: bool) -> anyhow::Result<()> {
    let container = get(channel.clone(), id).await?;
    // A container with a task must not go; any answer but "there is one"
    // (including a daemon without tasks) lets the deletion proceed.
    let task = TasksClient::new(channel.clone())
        .get(GetRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        })
        .await;
    if task.is_ok() {
        anyhow::bail!("cannot delete running task {id}: failed precondition");
    }
    if cleanup && !container.snapshot_key.is_empty() {
        if container.snapshotter.is_empty() {
            anyhow::bail!(
                "container.Snapshotter must be set to cleanup rootfs snapshot: invalid argument"
            );
        }
        let removed = SnapshotsClient::new(channel.clone())
            .remove(RemoveSnapshotRequest {
                snapshotter: container.snapshotter.clone(),
                key: container.snapshot_key.clone(),
            })
            .await;
        if let Err(status) = removed {
            if status.code() != Code::NotFound {
                return Err(RpcError::from(status).into());
            }
        }
    }
    Client::new(channel)
        .delete(DeleteContainerRequest { id: id.to_string() })
        .await
        .map_err(RpcError::from)?;
    Ok(())
}

/// Sets (or with an empty value clears) each label; prints the container's
/// labels afterwards.
pub async fn label(channel: NamespacedChannel, args: &ObjectWithLabels) -> anyhow::Result<()> {
    let id = args
        .object
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| anyhow!(MISSING_ID))?;
    get(channel.clone(), id).await?;
    let (labels, mask) = label_update(parse_labels(&args.labels));
    let updated = Client::new(channel)
        .update(UpdateContainerRequest {
            container: Some(Container {
                id: id.to_string(),
                labels,
                ..Default::default()
            }),
            update_mask: Some(mask),
        })
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .container
        .unwrap_or_default();
    println!("{}", joined(&updated.labels));
    Ok(())
}
