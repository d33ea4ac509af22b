//! A snapshotter driver over `containerd.services.snapshots.v1.Snapshots`,
//! sending what containerd 1.6's proxy snapshotter sends: the key, parent
//! and labels as given, and a fixed snapshotter name in every request.

use std::future::Future;
use std::sync::Arc;

use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::snapshots::{self as wire, snapshots_client::SnapshotsClient};
use rcontainerd_plugin_api::snapshot::{Info, Labels, Mount, Snapshotter, Usage};
use rcontainerd_plugin_api::Result;

use crate::remote::{Remote, MAX_MESSAGE_SIZE};
use crate::serve::snapshot::SERVICE;
use crate::wire::snapshot::{info_from_wire, info_to_wire, mounts_from_wire};

pub struct ProxySnapshotter {
    remote: Arc<Remote>,
    /// The `snapshotter` field of every request.
    name: String,
}

impl ProxySnapshotter {
    /// A snapshotter served by `remote`, which knows it as `name`.
    pub fn new(remote: Arc<Remote>, name: &str) -> Self {
        ProxySnapshotter {
            remote,
            name: name.to_string(),
        }
    }

    pub fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }
}

fn client(channel: NamespacedChannel) -> SnapshotsClient<NamespacedChannel> {
    SnapshotsClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

impl ProxySnapshotter {
    /// One unary call: `grpc` with a client, or the same request over ttrpc.
    fn unary<Req, Resp, F, Fut>(&self, method: &str, request: Req, grpc: F) -> Result<Resp>
    where
        Req: prost::Message + Send + 'static,
        Resp: prost::Message + Default + Send + 'static,
        F: FnOnce(SnapshotsClient<NamespacedChannel>, Req) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<tonic::Response<Resp>, tonic::Status>>
            + Send
            + 'static,
    {
        self.remote.unary(
            SERVICE,
            method,
            request,
            move |channel, request| async move {
                Ok(grpc(client(channel), request).await?.into_inner())
            },
        )
    }
}

impl Snapshotter for ProxySnapshotter {
    fn stat(&self, key: &str) -> Result<Info> {
        let request = wire::StatSnapshotRequest {
            snapshotter: self.name.clone(),
            key: key.to_string(),
        };
        let info = self
            .unary("Stat", request, |mut c, r| async move { c.stat(r).await })?
            .info;
        Ok(info_from_wire(info.unwrap_or_default()))
    }

    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        let request = wire::UpdateSnapshotRequest {
            snapshotter: self.name.clone(),
            info: Some(info_to_wire(info)),
            update_mask: Some(prost_types::FieldMask {
                paths: fieldpaths.to_vec(),
            }),
        };
        let info = self
            .unary(
                "Update",
                request,
                |mut c, r| async move { c.update(r).await },
            )?
            .info;
        Ok(info_from_wire(info.unwrap_or_default()))
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        let request = wire::UsageRequest {
            snapshotter: self.name.clone(),
            key: key.to_string(),
        };
        let usage = self.unary("Usage", request, |mut c, r| async move { c.usage(r).await })?;
        Ok(Usage {
            size: usage.size,
            inodes: usage.inodes,
        })
    }

    /// A round trip, as containerd's proxy makes one: the remote owns the
    /// mounts. The caller's async worker waits on the proxies' runtime.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let request = wire::MountsRequest {
            snapshotter: self.name.clone(),
            key: key.to_string(),
        };
        let mounts = self
            .unary(
                "Mounts",
                request,
                |mut c, r| async move { c.mounts(r).await },
            )?
            .mounts;
        Ok(mounts_from_wire(mounts))
    }

    /// An AlreadyExists answer (a remote snapshotter that has the layer
    /// named by `containerd.io/snapshot.ref`) passes through as it is.
    fn prepare(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        let request = wire::PrepareSnapshotRequest {
            snapshotter: self.name.clone(),
            key: key.to_string(),
            parent: parent.to_string(),
            labels: labels.into_iter().collect(),
        };
        let mounts = self
            .unary(
                "Prepare",
                request,
                |mut c, r| async move { c.prepare(r).await },
            )?
            .mounts;
        Ok(mounts_from_wire(mounts))
    }

    fn view(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        let request = wire::ViewSnapshotRequest {
            snapshotter: self.name.clone(),
            key: key.to_string(),
            parent: parent.to_string(),
            labels: labels.into_iter().collect(),
        };
        let mounts = self
            .unary("View", request, |mut c, r| async move { c.view(r).await })?
            .mounts;
        Ok(mounts_from_wire(mounts))
    }

    fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        let request = wire::CommitSnapshotRequest {
            snapshotter: self.name.clone(),
            name: name.to_string(),
            key: key.to_string(),
            labels: labels.into_iter().collect(),
        };
        self.unary(
            "Commit",
            request,
            |mut c, r| async move { c.commit(r).await },
        )
    }

    fn remove(&self, key: &str) -> Result<()> {
        let request = wire::RemoveSnapshotRequest {
            snapshotter: self.name.clone(),
            key: key.to_string(),
        };
        self.unary(
            "Remove",
            request,
            |mut c, r| async move { c.remove(r).await },
        )
    }

    fn walk(&self) -> Result<Vec<Info>> {
        let request = wire::ListSnapshotsRequest {
            snapshotter: self.name.clone(),
            filters: Vec::new(),
        };
        // Over ttrpc, one message with every snapshot.
        let all: Option<Result<wire::ListSnapshotsResponse>> =
            self.remote.over_ttrpc(SERVICE, "List", &request);
        let infos = if let Some(all) = all {
            all?.info
        } else {
            self.remote.call(|ch| async move {
                let mut stream = client(ch).list(request).await?.into_inner();
                let mut infos = Vec::new();
                while let Some(batch) = stream.message().await? {
                    infos.extend(batch.info);
                }
                Ok(infos)
            })?
        };
        Ok(infos.into_iter().map(info_from_wire).collect())
    }

    fn cleanup(&self) -> Result<()> {
        let request = wire::CleanupRequest {
            snapshotter: self.name.clone(),
        };
        self.unary(
            "Cleanup",
            request,
            |mut c, r| async move { c.cleanup(r).await },
        )
    }
}
