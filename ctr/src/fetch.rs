//! Fetching an image from a registry into the content store, as containerd 1.6's client does
//! for `ctr images pull` (`client.Fetch`): the reference is resolved to its top descriptor
//! (index or manifest), then every descriptor is walked from it — manifests of an index only
//! for the platforms asked for — and each blob is written through the Content service under the
//! caller's lease with its size and digest (content already there is left as it is), under the
//! ref containerd's `remotes.MakeRefKey` names (`index-`, `manifest-`, `config-`, `layer-` and
//! the digest). A ref an earlier pull left half-written resumes at the offset the daemon holds,
//! with an HTTP range request for the rest. Each parent gets its children's
//! `containerd.io/gc.ref.content.*` labels (for all of its children, as containerd labels them
//! before it filters them by platform); every blob fetched gets
//! `containerd.io/distribution.source.<host>=<repository>`.
//!
//! The registry protocol (token and basic authentication, HTTPS, blob and manifest requests) is
//! the `oci-client` crate's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail};
use futures_util::{StreamExt as _, TryStreamExt as _};
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use rcontainerd_api::client::NamespacedChannel;

use crate::cli::RegistryArgs;
use crate::errors::RpcError;
use crate::oci::{self, BlobWriter, LeaseHeader, Opened, PlatformMatcher};

/// What the registry is asked to answer a manifest request with (containerd's resolver's
/// `Accept`, less `*/*`).
const MANIFEST_TYPES: [&str; 4] = [
    oci::DOCKER_MANIFEST,
    oci::DOCKER_MANIFEST_LIST,
    oci::OCI_MANIFEST,
    oci::OCI_INDEX,
];

/// Bytes gathered from the registry before one Write request carries them to the daemon.
const BATCH: usize = 1 << 20;

/// containerd's `reference.Spec`: a reference parsed as containerd's resolver parses it
/// (a host is required, and a tag or digest).
#[derive(Debug, Clone)]
pub struct RefSpec {
    /// `host[:port]/path`.
    pub locator: String,
    /// The tag, or `@digest`.
    pub object: String,
}

impl RefSpec {
    /// Parses `text` as containerd's `reference.Parse` does the common cases, with its words.
    pub fn parse(text: &str) -> anyhow::Result<RefSpec> {
        if text.contains("://") {
            bail!("invalid reference");
        }
        let (host, path) = match text.find('/') {
            Some(i) => (&text[..i], &text[i..]),
            None => (text, ""),
        };
        if let Some((_, port)) = host.rsplit_once(':') {
            if !host.ends_with(']') && !port.chars().all(|c| c.is_ascii_digit()) {
                bail!("parse \"dummy://{text}\": invalid port \":{port}\" after host");
            }
        }
        if host.is_empty() {
            bail!("hostname required");
        }
        let (path, object) = match path.find([':', '@']) {
            Some(i) => {
                let object = &path[i..];
                (&path[..i], object.strip_prefix(':').unwrap_or(object))
            }
            None => (path, ""),
        };
        Ok(RefSpec {
            locator: format!("{host}{path}"),
            object: object.to_string(),
        })
    }

    /// The host (with port) the locator names.
    pub fn host(&self) -> &str {
        self.locator.split('/').next().unwrap_or_default()
    }

    /// The host without its port (Go's `url.Hostname`).
    pub fn hostname(&self) -> &str {
        let host = self.host();
        if let Some(rest) = host.strip_prefix('[') {
            return rest.split(']').next().unwrap_or_default();
        }
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    }

    /// The repository path (the locator without its host).
    pub fn repository(&self) -> &str {
        self.locator.split_once('/').map_or("", |(_, r)| r)
    }
}

/// A blob's place in the progress table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    Waiting,
    Downloading { offset: i64, total: i64 },
    Done { size: i64 },
    Exists,
}

#[derive(Debug, Clone)]
pub struct Job {
    /// The ingest ref (`layer-sha256:…`).
    pub key: String,
    pub status: JobStatus,
}

/// What the fetch has done so far, for the progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub resolved: bool,
    pub jobs: Vec<Job>,
    /// The resolved top descriptor.
    pub top: Option<Descriptor>,
    /// Digests of the blobs in the content store now (written, or there already).
    pub committed: std::collections::HashSet<String>,
    /// The fetch is over (whether it succeeded or not).
    pub finished: bool,
}

pub type SharedProgress = Arc<Mutex<Progress>>;

fn set_status(progress: &SharedProgress, key: &str, status: JobStatus) {
    let mut progress = progress.lock().unwrap_or_else(|p| p.into_inner());
    progress.resolved = true;
    if matches!(status, JobStatus::Done { .. } | JobStatus::Exists) {
        // `<kind>-[<name>@]<digest>`
        if let Some((_, rest)) = key.split_once('-') {
            let digest = rest.rsplit('@').next().unwrap_or(rest);
            progress.committed.insert(digest.to_string());
        }
    }
    match progress.jobs.iter_mut().find(|j| j.key == key) {
        Some(job) => job.status = status,
        None => progress.jobs.push(Job {
            key: key.to_string(),
            status,
        }),
    }
}

/// containerd's `remotes.MakeRefKey`.
pub fn ref_key(desc: &Descriptor) -> String {
    let mut key = desc.digest().to_string();
    if let Some(name) = desc
        .annotations()
        .as_ref()
        .and_then(|a| a.get(oci::ANNOTATION_REF_NAME))
    {
        key = format!("{name}@{key}");
    }
    let media_type = desc.media_type().to_string();
    if oci::is_manifest(&media_type) {
        format!("manifest-{key}")
    } else if oci::is_index(&media_type) {
        format!("index-{key}")
    } else if oci::is_layer(&media_type) {
        format!("layer-{key}")
    } else if oci::is_known_config(&media_type) {
        format!("config-{key}")
    } else {
        format!("unknown-{key}")
    }
}

/// A registry to fetch one reference from.
pub struct Remote {
    client: Client,
    auth: RegistryAuth,
    /// The reference as given (the image's name).
    pub name: String,
    spec: RefSpec,
    reference: Reference,
}

impl Remote {
    pub fn new(name: &str, args: &RegistryArgs, max_concurrent: usize) -> anyhow::Result<Remote> {
        let resolve_error =
            |err: anyhow::Error| anyhow!("failed to resolve reference {name:?}: {err}");
        let spec = RefSpec::parse(name).map_err(resolve_error)?;
        if spec.object.is_empty() {
            return Err(resolve_error(anyhow!("object required")));
        }
        // The host is the reference's own (no docker.io for a name without a dot, as
        // containerd's resolver takes the first component as the host).
        let (registry, repository) = (spec.host().to_string(), spec.repository().to_string());
        let reference = match spec.object.split_once('@') {
            Some(("", digest)) => Reference::with_digest(registry, repository, digest.to_string()),
            Some((tag, digest)) => Reference::with_tag_and_digest(
                registry,
                repository,
                tag.to_string(),
                digest.to_string(),
            ),
            None => Reference::with_tag(registry, repository, spec.object.clone()),
        };
        // rustls needs its crypto provider named once per process. ring's is deprecated for
        // lacking post-quantum key exchange (aws-lc-rs has it, at a much longer build).
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = ClientConfig {
            // containerd's hosts: plain HTTP with --plain-http, and always for localhost and
            // loopback addresses; else HTTPS.
            protocol: if args.plain_http {
                ClientProtocol::Http
            } else if is_localhost(spec.hostname()) {
                ClientProtocol::HttpsExcept(vec![spec.host().to_string()])
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: args.skip_verify,
            max_concurrent_download: max_concurrent.max(1),
            ..Default::default()
        };
        if !args.tlscacert.is_empty() {
            let data = std::fs::read(&args.tlscacert)
                .map_err(|err| anyhow!("failed to read {}: {err}", args.tlscacert))?;
            config
                .extra_root_certificates
                .push(oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data,
                });
        }
        let auth = if args.user.is_empty() {
            RegistryAuth::Anonymous
        } else {
            let (user, password) = match args.user.split_once(':') {
                Some((user, password)) => (user.to_string(), password.to_string()),
                None => (args.user.clone(), read_password()?),
            };
            RegistryAuth::Basic(user, password)
        };
        Ok(Remote {
            client: Client::new(config),
            auth,
            name: name.to_string(),
            spec,
            reference,
        })
    }

    /// The reference's top descriptor and its bytes.
    pub async fn resolve(&self) -> anyhow::Result<(Descriptor, Vec<u8>)> {
        let pulled = self
            .client
            .pull_manifest_raw(&self.reference, &self.auth, &MANIFEST_TYPES)
            .await;
        let (body, digest) = match pulled {
            Ok(pulled) => pulled,
            Err(err) => {
                let why = if is_not_found(&err) {
                    format!("{}: not found", self.name)
                } else if let Some(refusal) = self.token_refusal(&err).await {
                    refusal
                } else {
                    self.describe(err, "manifests", &self.spec.object)
                };
                bail!("failed to resolve reference {:?}: {why}", self.name)
            }
        };
        let media_type = manifest_media_type(&body);
        let desc = oci::descriptor(&media_type, &digest, body.len() as i64)?;
        Ok((desc, body.to_vec()))
    }

    /// Why a registry that wants bearer tokens refused: oci-client drops the token server's
    /// refusal and sends the request without a token, so the registry's 401 would hide that the
    /// credentials (or their absence) were what the token server refused. Asking the realm again
    /// gets its answer, worded as containerd's `failed to authorize`.
    async fn token_refusal(&self, err: &OciDistributionError) -> Option<String> {
        if !matches!(err, OciDistributionError::UnauthorizedError { .. }) {
            return None;
        }
        let asked = self
            .client
            .auth(&self.reference, &self.auth, RegistryOperation::Pull)
            .await;
        let reason = match asked {
            Err(OciDistributionError::AuthenticationFailure(reason))
                if !reason.trim().is_empty() =>
            {
                reason
            }
            _ => return None,
        };
        let which = match self.auth {
            RegistryAuth::Anonymous => "anonymous token",
            _ => "token",
        };
        Some(format!(
            "failed to authorize: failed to fetch {which}: {}",
            reason.trim()
        ))
    }

    /// The words for a failed request: containerd's for a refused status, else the client's.
    fn describe(&self, err: OciDistributionError, kind: &str, object: &str) -> String {
        let code = match &err {
            OciDistributionError::UnauthorizedError { .. } => Some(401),
            OciDistributionError::ServerError { code, .. } => Some(*code),
            OciDistributionError::RegistryError { envelope, .. } => {
                return format!(
                    "pulling from host {} failed: {}",
                    self.spec.host(),
                    envelope
                        .errors
                        .iter()
                        .map(|e| format!("{:?}: {}", e.code, e.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
            OciDistributionError::RequestError(err) => {
                // The causes too: reqwest's own words name only the URL.
                let mut text = format!("failed to do request: {err}");
                let mut source = std::error::Error::source(err);
                while let Some(cause) = source {
                    text.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                return text;
            }
            _ => None,
        };
        match code.and_then(|c| http::StatusCode::from_u16(c).ok()) {
            Some(status) => format!(
                "pulling from host {} failed with status code [{kind} {object}]: {} {}",
                self.spec.host(),
                status.as_u16(),
                status.canonical_reason().unwrap_or_default()
            ),
            None => err.to_string(),
        }
    }

    async fn manifest(&self, digest: &str) -> anyhow::Result<Vec<u8>> {
        let reference = self.reference.clone_with_digest(digest.to_string());
        let (body, _) = self
            .client
            .pull_manifest_raw(&reference, &self.auth, &MANIFEST_TYPES)
            .await
            .map_err(|err| anyhow!("{}", self.describe(err, "manifests", digest)))?;
        Ok(body.to_vec())
    }

    /// The `containerd.io/distribution.source.<host>` label and its value for this repository,
    /// merged into `existing` (a sorted, comma-separated list without duplicates).
    fn source_label(&self, existing: Option<&str>) -> (String, String) {
        let key = format!("containerd.io/distribution.source.{}", self.spec.hostname());
        let mut repos: Vec<&str> = existing
            .unwrap_or_default()
            .split(',')
            .filter(|r| !r.is_empty())
            .collect();
        repos.push(self.spec.repository());
        repos.sort_unstable();
        repos.dedup();
        (key, repos.join(","))
    }
}

/// containerd's `docker.IsLocalhost`: `localhost` or a loopback address.
fn is_localhost(hostname: &str) -> bool {
    hostname == "localhost"
        || hostname
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether the registry said it has no such manifest or repository.
fn is_not_found(err: &OciDistributionError) -> bool {
    match err {
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                oci_client::errors::OciErrorCode::ManifestUnknown
                    | oci_client::errors::OciErrorCode::NameUnknown
            )
        }),
        _ => false,
    }
}

/// `--user name` without a password: the password is read from stdin (one line).
fn read_password() -> anyhow::Result<String> {
    use std::io::Write as _;
    print!("Password: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    println!();
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// A manifest's media type: its `mediaType`, else what its shape says.
fn manifest_media_type(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    match value.get("mediaType").and_then(|m| m.as_str()) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ if value.get("manifests").is_some() => oci::OCI_INDEX.to_string(),
        _ => oci::OCI_MANIFEST.to_string(),
    }
}

/// What to fetch.
pub struct FetchOptions {
    /// Manifests of an index to take, by platform.
    pub matchers: Vec<PlatformMatcher>,
    /// Manifests and configs of the other platforms too (`--all-metadata`).
    pub all_metadata: bool,
    pub max_concurrent: usize,
}

/// Fetches the image `remote` names into the content store under `lease`; returns its top
/// descriptor.
pub async fn fetch(
    channel: &NamespacedChannel,
    lease: &impl LeaseHeader,
    remote: &Remote,
    options: &FetchOptions,
    progress: &SharedProgress,
) -> anyhow::Result<Descriptor> {
    let started = std::time::SystemTime::now();
    let (top, top_bytes) = remote.resolve().await?;
    progress.lock().unwrap_or_else(|p| p.into_inner()).top = Some(top.clone());
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut pending: Vec<(Descriptor, Option<Vec<u8>>, bool)> =
        vec![(top.clone(), Some(top_bytes), true)];
    while let Some((desc, bytes, wanted)) = pending.pop() {
        let key = ref_key(&desc);
        set_status(progress, &key, JobStatus::Waiting);
        let digest = desc.digest().to_string();
        let bytes = match bytes {
            Some(bytes) => bytes,
            None => remote.manifest(&digest).await?,
        };
        if oci::sha256_digest(&bytes) != digest || bytes.len() as u64 != desc.size() {
            bail!("manifest {digest} from the registry does not match its descriptor");
        }
        let existed = write_whole(channel, lease, &key, &bytes, &digest).await?;
        set_status(
            progress,
            &key,
            if existed {
                existing_status(channel, &digest, started).await
            } else {
                JobStatus::Done {
                    size: bytes.len() as i64,
                }
            },
        );
        let media_type = desc.media_type().to_string();
        let children: Vec<Descriptor> = if oci::is_index(&media_type) {
            ImageIndex::from_reader(&bytes[..])
                .map_err(|err| anyhow!("failed to parse index {digest}: {err}"))?
                .manifests()
                .clone()
        } else if oci::is_manifest(&media_type) {
            let manifest = ImageManifest::from_reader(&bytes[..])
                .map_err(|err| anyhow!("failed to parse manifest {digest}: {err}"))?;
            let mut children = vec![manifest.config().clone()];
            children.extend(manifest.layers().iter().cloned());
            children
        } else {
            Vec::new()
        };
        oci::set_content_labels(channel, lease, &digest, oci::children_labels(&children)).await?;
        add_source_label(channel, lease, remote, &digest).await?;
        if oci::is_index(&media_type) {
            for child in children.into_iter().rev() {
                let matches = options.matchers.iter().any(|m| m.admits(&child));
                if matches || options.all_metadata {
                    pending.push((child, None, matches));
                }
            }
        } else if oci::is_manifest(&media_type) {
            for (i, child) in children.into_iter().enumerate() {
                // Other platforms' metadata (`--all-metadata`): their configs, not their layers.
                if (wanted || i == 0) && !blobs.iter().any(|b| b.digest() == child.digest()) {
                    set_status(progress, &ref_key(&child), JobStatus::Waiting);
                    blobs.push(child);
                }
            }
        }
    }

    let max = options.max_concurrent.max(1);
    futures_util::stream::iter(blobs.iter().map(|desc| async move {
        fetch_blob(channel, lease, remote, desc, progress, started).await?;
        add_source_label(channel, lease, remote, desc.digest().as_ref()).await
    }))
    .buffer_unordered(max)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(top)
}

/// How the table shows a blob the daemon had when asked to write it: `exists` if the namespace
/// had it before the fetch began, else `done` (the daemon took it from another namespace), as
/// containerd's ctr tells them apart by the blob's creation time.
async fn existing_status(
    channel: &NamespacedChannel,
    digest: &str,
    started: std::time::SystemTime,
) -> JobStatus {
    let info =
        rcontainerd_api::services::content::content_client::ContentClient::new(channel.clone())
            .info(rcontainerd_api::services::content::InfoRequest {
                digest: digest.to_string(),
            })
            .await;
    let created = info
        .ok()
        .and_then(|r| r.into_inner().info)
        .and_then(|i| i.created_at)
        .and_then(|t| std::time::SystemTime::try_from(t).ok());
    match created {
        Some(created) if created > started => JobStatus::Done { size: 0 },
        _ => JobStatus::Exists,
    }
}

/// Adds this repository to the blob's distribution source label.
async fn add_source_label(
    channel: &NamespacedChannel,
    lease: &impl LeaseHeader,
    remote: &Remote,
    digest: &str,
) -> anyhow::Result<()> {
    let info =
        rcontainerd_api::services::content::content_client::ContentClient::new(channel.clone())
            .info(rcontainerd_api::services::content::InfoRequest {
                digest: digest.to_string(),
            })
            .await
            .map_err(RpcError::from)?
            .into_inner()
            .info
            .unwrap_or_default();
    let key = format!(
        "containerd.io/distribution.source.{}",
        remote.spec.hostname()
    );
    let (key, value) = remote.source_label(info.labels.get(&key).map(String::as_str));
    oci::set_content_labels(channel, lease, digest, BTreeMap::from([(key, value)])).await?;
    Ok(())
}

/// Writes bytes held in memory; whether the content was there already.
async fn write_whole(
    channel: &NamespacedChannel,
    lease: &impl LeaseHeader,
    key: &str,
    bytes: &[u8],
    digest: &str,
) -> anyhow::Result<bool> {
    let mut writer = match BlobWriter::open(channel, lease, key, bytes.len() as i64, digest)
        .await
        .map_err(|err| anyhow!("failed to open writer: {err}"))?
    {
        Opened::Exists => return Ok(true),
        Opened::Writer(writer) => writer,
    };
    let from = (writer.offset.max(0) as usize).min(bytes.len());
    writer
        .write(&bytes[from..])
        .await
        .map_err(|status| anyhow!("failed to copy: {}", RpcError::from(status)))?;
    writer
        .commit(bytes.len() as i64, digest)
        .await
        .map_err(|status| anyhow!("failed commit on ref {key:?}: {}", RpcError::from(status)))?;
    Ok(false)
}

/// Streams one blob from the registry into the content store, resuming a partial ingest.
async fn fetch_blob(
    channel: &NamespacedChannel,
    lease: &impl LeaseHeader,
    remote: &Remote,
    desc: &Descriptor,
    progress: &SharedProgress,
    started: std::time::SystemTime,
) -> anyhow::Result<()> {
    let key = ref_key(desc);
    let digest = desc.digest().to_string();
    let size = desc.size() as i64;
    if size == 0 {
        bail!(
            "unable to fetch descriptor ({digest}) which reports content size of zero: invalid argument"
        );
    }
    let mut writer = match BlobWriter::open(channel, lease, &key, size, &digest)
        .await
        .map_err(|err| anyhow!("failed to open writer: {err}"))?
    {
        Opened::Exists => {
            set_status(
                progress,
                &key,
                existing_status(channel, &digest, started).await,
            );
            return Ok(());
        }
        Opened::Writer(writer) => writer,
    };
    let offset = writer.offset.max(0);
    if offset < size {
        set_status(
            progress,
            &key,
            JobStatus::Downloading {
                offset,
                total: size,
            },
        );
        let layer = OciDescriptor {
            media_type: desc.media_type().to_string(),
            digest: digest.clone(),
            size,
            ..Default::default()
        };
        let response = remote
            .client
            .pull_blob_stream_partial(&remote.reference, &layer, offset as u64, None)
            .await
            .map_err(|err| anyhow!("{}", remote.describe(err, "blobs", &digest)))?;
        // A registry that ignores the range sends it all: the bytes the daemon has are skipped.
        let (mut stream, mut skip) = match response {
            BlobResponse::Partial(stream) => (stream, 0usize),
            BlobResponse::Full(stream) => (stream, offset as usize),
        };
        let mut batch: Vec<u8> = Vec::with_capacity(BATCH);
        let mut written = offset;
        loop {
            let chunk = stream
                .next()
                .await
                .transpose()
                .map_err(|err| anyhow!("failed to copy: {err}"))?;
            let end = chunk.is_none();
            if let Some(chunk) = chunk {
                let from = skip.min(chunk.len());
                skip -= from;
                batch.extend_from_slice(&chunk[from..]);
            }
            if batch.len() >= BATCH || (end && !batch.is_empty()) {
                writer
                    .write(&batch)
                    .await
                    .map_err(|status| anyhow!("failed to copy: {}", RpcError::from(status)))?;
                written += batch.len() as i64;
                batch.clear();
                set_status(
                    progress,
                    &key,
                    JobStatus::Downloading {
                        offset: written,
                        total: size,
                    },
                );
            }
            if end {
                break;
            }
        }
        if written < size {
            bail!("failed to copy: unexpected EOF");
        }
    }
    writer
        .commit(size, &digest)
        .await
        .map_err(|status| anyhow!("failed commit on ref {key:?}: {}", RpcError::from(status)))?;
    set_status(progress, &key, JobStatus::Done { size });
    Ok(())
}
