//! One daemon started in a fresh run directory for a throughput benchmark, and the request headers each
//! daemon needs: a namespace always, and for containerd a lease that keeps its GC off the objects we create.

use crate::boot::{self, Daemon};
use crate::daemon::Subject;
use crate::probe;
use crate::workdir::WorkDir;
use anyhow::Context;
use rcontainerd_api::services::leases::{leases_client::LeasesClient, CreateRequest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

const NAMESPACE_HEADER: &str = "containerd-namespace";
const LEASE_HEADER: &str = "containerd-lease";
/// containerd's GC keeps a lease until this time; far enough out that no run outlives it.
const LEASE_EXPIRY: &str = "2099-01-01T00:00:00Z";

/// The clients' async runtime: single-threaded, so that a call's latency is the daemon's rather
/// than hand-offs between the client's own threads.
pub fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A running daemon in its own directory; stopped by [`Session::stop`] (or on drop, which also cleans up).
pub struct Session {
    // Field order matters on drop: the daemon dies before its directory is cleaned.
    daemon: Option<Daemon>,
    socket: PathBuf,
    dir: WorkDir,
}

impl Session {
    pub fn start(
        subject: &Subject,
        tmp_dir: Option<&Path>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let dir = WorkDir::new(tmp_dir)?;
        let mut launch = subject
            .prepare(dir.path())
            .context("preparing the run directory")?;
        let (daemon, _, _) = boot::boot(timeout, subject, &mut launch)?;
        Ok(Self {
            daemon: Some(daemon),
            socket: launch.socket,
            dir,
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub async fn connect(&self) -> anyhow::Result<Channel> {
        probe::connect(self.socket.clone()).await
    }

    /// Stops the daemon (SIGTERM, then SIGKILL) and hands back its run directory, for the caller to
    /// remove when deleting it cannot slow a measurement down.
    pub fn stop(mut self) -> anyhow::Result<WorkDir> {
        if let Some(daemon) = self.daemon.take() {
            daemon.stop()?;
        }
        Ok(self.dir)
    }
}

/// The headers sent on every call of one measurement.
#[derive(Debug, Clone)]
pub struct Headers {
    namespace: MetadataValue<tonic::metadata::Ascii>,
    lease: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl Headers {
    /// For `namespace`; with `use_lease`, creates a lease there first (containerd) and sends it on every call.
    pub async fn new(channel: Channel, namespace: &str, use_lease: bool) -> anyhow::Result<Self> {
        let namespace: MetadataValue<_> = namespace
            .parse()
            .with_context(|| format!("namespace {namespace} as a header"))?;
        let mut headers = Self {
            namespace,
            lease: None,
        };
        if use_lease {
            let id = create_lease(channel, &headers).await?;
            headers.lease = Some(id.parse().context("lease id as a header")?);
        }
        Ok(headers)
    }

    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        metadata.insert(NAMESPACE_HEADER, self.namespace.clone());
        if let Some(lease) = &self.lease {
            metadata.insert(LEASE_HEADER, lease.clone());
        }
        request
    }
}

async fn create_lease(channel: Channel, headers: &Headers) -> anyhow::Result<String> {
    let labels = HashMap::from([(
        "containerd.io/gc.expire".to_string(),
        LEASE_EXPIRY.to_string(),
    )]);
    let reply = LeasesClient::new(channel)
        .create(headers.request(CreateRequest {
            id: format!("rcontainerd-bench-{}", std::process::id()),
            labels,
        }))
        .await
        .context("creating a lease")?;
    let lease = reply
        .into_inner()
        .lease
        .context("lease missing from the reply")?;
    Ok(lease.id)
}
