//! `ctr leases ls|create|rm`, and the temporary lease other commands work
//! under (as containerd's client does for `images tag`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::anyhow;
use rcontainerd_api::client::{Headers, NamespacedChannel};
use rcontainerd_api::services::leases::leases_client::LeasesClient;
use rcontainerd_api::services::leases::{CreateRequest, DeleteRequest, ListRequest};
use tonic::Request;

use crate::cli::{FilteredList, LeaseCreate, LeasesDelete};
use crate::errors::RpcError;
use crate::labels::joined;
use crate::tabwriter::TabWriter;

type Client = LeasesClient<NamespacedChannel>;

/// The label that makes garbage collection drop a lease after a time.
pub const EXPIRE_LABEL: &str = "containerd.io/gc.expire";

/// How long a temporary lease lives if its command dies before releasing it.
const TEMPORARY_LEASE_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The `containerd.io/gc.expire` value for `after` from now (RFC 3339).
fn expiry(after: Duration) -> String {
    let at = chrono::DateTime::<chrono::Utc>::from(SystemTime::now() + after);
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `ID CREATED AT LABELS`.
pub async fn list(channel: NamespacedChannel, args: &FilteredList) -> anyhow::Result<String> {
    let leases = Client::new(channel)
        .list(ListRequest {
            filters: args.filters.clone(),
        })
        .await
        .map_err(|status| anyhow!("failed to list leases: {}", RpcError::from(status)))?
        .into_inner()
        .leases;
    if args.quiet {
        return Ok(leases.iter().map(|l| format!("{}\n", l.id)).collect());
    }
    let mut writer = TabWriter::new(1, 8, 1, ' ');
    writer.write_str("ID\tCREATED AT\tLABELS\t\n");
    for lease in &leases {
        let created = lease
            .created_at
            .map(|t| {
                chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
                    .unwrap_or_default()
                    .with_timezone(&chrono::Local)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
            .unwrap_or_default();
        let labels = if lease.labels.is_empty() {
            "-".to_string()
        } else {
            joined(&lease.labels)
        };
        writer.write_str(&format!("{}\t{}\t{}\t\n", lease.id, created, labels));
    }
    Ok(writer.finish())
}

/// Creates a lease and prints its id. Labels without `=` get an empty value
/// here (containerd's ctr reads them so for leases); `--expires` adds the
/// expiry label.
pub async fn create(channel: NamespacedChannel, args: &LeaseCreate) -> anyhow::Result<()> {
    let mut labels: BTreeMap<String, String> = args
        .labels
        .iter()
        .map(|arg| match arg.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (arg.clone(), String::new()),
        })
        .collect();
    if !args.expires.is_zero() {
        labels.insert(EXPIRE_LABEL.to_string(), expiry(args.expires));
    }
    let lease = Client::new(channel)
        .create(CreateRequest {
            id: args.id.clone(),
            labels: labels.into_iter().collect(),
        })
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .lease
        .unwrap_or_default();
    println!("{}", lease.id);
    Ok(())
}

/// Deletes each lease and prints its id; stops at the first failure.
/// `--sync` applies to the last one.
pub async fn delete(channel: NamespacedChannel, args: &LeasesDelete) -> anyhow::Result<()> {
    let mut client = Client::new(channel);
    for (i, id) in args.ids.iter().enumerate() {
        client
            .delete(DeleteRequest {
                id: id.clone(),
                sync: args.sync && i == args.ids.len() - 1,
            })
            .await
            .map_err(RpcError::from)?;
        println!("{id}");
    }
    Ok(())
}

/// A lease made for one command and deleted when it is done, so that what
/// the command creates is not collected half-way.
pub struct TemporaryLease {
    client: Client,
    channel: NamespacedChannel,
    id: String,
}

impl TemporaryLease {
    pub async fn create(channel: NamespacedChannel) -> anyhow::Result<Self> {
        let mut client = Client::new(channel.clone());
        let lease = client
            .create(CreateRequest {
                id: String::new(),
                labels: [(EXPIRE_LABEL.to_string(), expiry(TEMPORARY_LEASE_LIFETIME))].into(),
            })
            .await
            .map_err(RpcError::from)?
            .into_inner()
            .lease
            .unwrap_or_default();
        Ok(TemporaryLease {
            client,
            channel,
            id: lease.id,
        })
    }

    /// The channel to make the command's calls on.
    pub fn channel(&self) -> NamespacedChannel {
        self.channel.clone()
    }

    /// A request that carries the lease header.
    pub fn request<T>(&self, message: T) -> Request<T> {
        match Headers::new().lease(&self.id) {
            Ok(headers) => headers.request(message),
            Err(_) => Request::new(message),
        }
    }

    /// Deletes the lease; a failure only leaves it to expire.
    pub async fn release(mut self) {
        let _ = self
            .client
            .delete(DeleteRequest {
                id: self.id.clone(),
                sync: false,
            })
            .await;
    }
}
