//! What `images import|export|mount` share: descriptors as Go's `json.Marshal` writes them,
//! Docker reference names as containerd normalizes them, platform matching, and content
//! calls made under a lease (writing blobs, reading them, labelling them).

use std::collections::{BTreeMap, HashMap};

use anyhow::anyhow;
use oci_spec::image::{Descriptor, MediaType};
use rcontainerd_api::client::{Headers, NamespacedChannel};
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::{
    Info, ReadContentRequest, UpdateRequest, WriteAction, WriteContentRequest, WriteContentResponse,
};
use rcontainerd_api::types;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request};

use crate::commands::leases::TemporaryLease;
use crate::errors::RpcError;
use crate::gojson::Json;

pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const UNCOMPRESSED_LABEL: &str = "containerd.io/uncompressed";

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// How much of a blob goes into one Write message.
const WRITE_CHUNK: usize = 1 << 20;

pub fn is_manifest(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST || media_type == OCI_MANIFEST
}

pub fn is_index(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST_LIST || media_type == OCI_INDEX
}

/// containerd's `images.IsKnownConfig`.
pub fn is_known_config(media_type: &str) -> bool {
    matches!(
        media_type,
        DOCKER_CONFIG
            | OCI_CONFIG
            | "application/vnd.containerd.container.criu.checkpoint.criu.tar"
            | "application/vnd.containerd.container.checkpoint.config.v1+proto"
    )
}

/// containerd's `images.IsLayerType`.
pub fn is_layer(media_type: &str) -> bool {
    if media_type.starts_with("application/vnd.oci.image.layer.") {
        return true;
    }
    let base = media_type.split('+').next().unwrap_or_default();
    matches!(
        base,
        DOCKER_LAYER
            | DOCKER_LAYER_GZIP
            | "application/vnd.docker.image.rootfs.foreign.diff.tar"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )
}

/// The gc label prefix a parent gives a child of this media type
/// (containerd's `images.ChildGCLabels`); a prefix ending in `.` is numbered.
pub fn child_gc_label(media_type: &str) -> &'static str {
    if is_known_config(media_type) {
        "containerd.io/gc.ref.content.config"
    } else if is_manifest(media_type) {
        "containerd.io/gc.ref.content.m."
    } else if is_layer(media_type) {
        "containerd.io/gc.ref.content.l."
    } else {
        "containerd.io/gc.ref.content."
    }
}

/// The labels a parent gets for `children`, numbered as containerd numbers them.
pub fn children_labels(children: &[Descriptor]) -> BTreeMap<String, String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut labels = BTreeMap::new();
    for child in children {
        let media_type = child.media_type().to_string();
        let prefix = child_gc_label(&media_type);
        let index = seen.entry(prefix).or_insert(0);
        let key = if *index > 0 || prefix.ends_with('.') {
            format!("{prefix}{index}")
        } else {
            prefix.to_string()
        };
        *index += 1;
        labels.insert(key, child.digest().to_string());
    }
    labels
}

/// `os/arch[/variant]`, normalized as containerd's `platforms.Normalize` does the common cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

impl Platform {
    pub fn normalized(os: &str, architecture: &str, variant: &str) -> Platform {
        let os = os.to_lowercase();
        let (architecture, variant) = match (architecture.to_lowercase().as_str(), variant) {
            ("i386" | "i686" | "386", _) => ("386".to_string(), String::new()),
            ("x86_64" | "x86-64" | "amd64", "v1") => ("amd64".to_string(), String::new()),
            ("x86_64" | "x86-64" | "amd64", v) => ("amd64".to_string(), v.to_string()),
            ("aarch64" | "arm64", "8" | "v8") => ("arm64".to_string(), String::new()),
            ("aarch64" | "arm64", v) => ("arm64".to_string(), v.to_string()),
            ("armhf", _) => ("arm".to_string(), "v7".to_string()),
            ("armel", _) => ("arm".to_string(), "v6".to_string()),
            ("arm", "") => ("arm".to_string(), "v7".to_string()),
            ("arm", v) if !v.starts_with('v') => ("arm".to_string(), format!("v{v}")),
            (a, v) => (a.to_string(), v.to_string()),
        };
        Platform {
            os,
            architecture,
            variant,
        }
    }

    /// Parses `os[/arch[/variant]]` (ctr's `--platform`).
    pub fn parse(text: &str) -> anyhow::Result<Platform> {
        const KNOWN_OS: &[&str] = &[
            "aix",
            "android",
            "darwin",
            "dragonfly",
            "freebsd",
            "hurd",
            "illumos",
            "ios",
            "js",
            "linux",
            "nacl",
            "netbsd",
            "openbsd",
            "plan9",
            "solaris",
            "windows",
            "zos",
        ];
        const KNOWN_ARCH: &[&str] = &[
            "386", "amd64", "x86_64", "x86-64", "i386", "i686", "arm", "armhf", "armel", "arm64",
            "aarch64", "ppc64", "ppc64le", "mips", "mipsle", "mips64", "mips64le", "riscv64",
            "s390x", "loong64", "wasm",
        ];
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [one] if KNOWN_OS.contains(&one.to_lowercase().as_str()) => {
                let host = Platform::host();
                Ok(Platform::normalized(one, &host.architecture, ""))
            }
            [one] if KNOWN_ARCH.contains(&one.to_lowercase().as_str()) => {
                Ok(Platform::normalized(&Platform::host().os, one, ""))
            }
            [os, arch] => Ok(Platform::normalized(os, arch, "")),
            [os, arch, variant] => Ok(Platform::normalized(os, arch, variant)),
            _ => Err(anyhow!(
                "\"{text}\": unknown operating system or architecture: invalid argument"
            )),
        }
    }

    pub fn host() -> Platform {
        let name = crate::image_content::host_platform();
        let (os, arch) = name.split_once('/').unwrap_or((&name, ""));
        Platform::normalized(os, arch, "")
    }

    /// `os/arch[/variant]`, as the existing walk names platforms.
    pub fn name(&self) -> String {
        if self.variant.is_empty() {
            format!("{}/{}", self.os, self.architecture)
        } else {
            format!("{}/{}/{}", self.os, self.architecture, self.variant)
        }
    }

    fn of(descriptor: &Descriptor) -> Option<Platform> {
        descriptor.platform().as_ref().map(|p| {
            Platform::normalized(
                &p.os().to_string(),
                &p.architecture().to_string(),
                p.variant().as_deref().unwrap_or_default(),
            )
        })
    }
}

/// Which platforms a command takes from an index.
#[derive(Debug, Clone)]
pub enum PlatformMatcher {
    All,
    /// The platform and those it runs too (`platforms.Only`: amd64 also runs 386).
    Only(Platform),
    /// Exactly the platform (`platforms.OnlyStrict`).
    Strict(Platform),
}

impl PlatformMatcher {
    pub fn matches(&self, platform: &Platform) -> bool {
        match self {
            PlatformMatcher::All => true,
            PlatformMatcher::Strict(wanted) => wanted == platform,
            PlatformMatcher::Only(wanted) => {
                if wanted == platform {
                    return true;
                }
                wanted.os == platform.os
                    && wanted.architecture == "amd64"
                    && platform.architecture == "386"
            }
        }
    }

    /// Whether a descriptor passes (one without a platform always does).
    pub fn admits(&self, descriptor: &Descriptor) -> bool {
        Platform::of(descriptor).is_none_or(|p| self.matches(&p))
    }
}

/// A descriptor as Go's `json.Marshal` writes ocispec's (fields in its order, empty ones left out).
pub fn descriptor_json(d: &Descriptor) -> Json {
    let mut members = vec![
        (
            "mediaType".to_string(),
            Json::string(d.media_type().to_string()),
        ),
        ("digest".to_string(), Json::string(d.digest().to_string())),
        ("size".to_string(), Json::Number(d.size() as i64)),
    ];
    if let Some(urls) = d.urls().as_ref().filter(|u| !u.is_empty()) {
        members.push(("urls".to_string(), Json::strings(urls)));
    }
    if let Some(annotations) = d.annotations().as_ref().filter(|a| !a.is_empty()) {
        members.push(("annotations".to_string(), Json::sorted_map(annotations)));
    }
    if let Some(p) = d.platform() {
        let mut platform = vec![
            (
                "architecture".to_string(),
                Json::string(p.architecture().to_string()),
            ),
            ("os".to_string(), Json::string(p.os().to_string())),
        ];
        if let Some(v) = p.os_version().as_ref().filter(|v| !v.is_empty()) {
            platform.push(("os.version".to_string(), Json::string(v.clone())));
        }
        if let Some(f) = p.os_features().as_ref().filter(|f| !f.is_empty()) {
            platform.push(("os.features".to_string(), Json::strings(f)));
        }
        if let Some(v) = p.variant().as_ref().filter(|v| !v.is_empty()) {
            platform.push(("variant".to_string(), Json::string(v.clone())));
        }
        members.push(("platform".to_string(), Json::Object(platform)));
    }
    Json::Object(members)
}

/// An index as Go marshals ocispec's `Index` with only these manifests.
pub fn index_json(manifests: &[Descriptor]) -> String {
    let manifests = if manifests.is_empty() {
        Json::Null
    } else {
        Json::Array(manifests.iter().map(descriptor_json).collect())
    };
    Json::Object(vec![
        ("schemaVersion".to_string(), Json::Number(2)),
        ("manifests".to_string(), manifests),
    ])
    .to_compact()
}

/// A descriptor from its parts.
pub fn descriptor(media_type: &str, digest: &str, size: i64) -> anyhow::Result<Descriptor> {
    let digest: oci_spec::image::Digest = digest
        .parse()
        .map_err(|err| anyhow!("invalid digest {digest:?}: {err}"))?;
    Ok(Descriptor::new(
        MediaType::from(media_type),
        size.max(0) as u64,
        digest,
    ))
}

/// The API's descriptor for an OCI one (annotations kept, platform dropped as the API has none).
pub fn to_api(d: &Descriptor) -> types::Descriptor {
    types::Descriptor {
        media_type: d.media_type().to_string(),
        digest: d.digest().to_string(),
        size: d.size() as i64,
        annotations: d
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    }
}

/// An OCI descriptor for the API's.
pub fn from_api(d: &types::Descriptor) -> anyhow::Result<Descriptor> {
    let mut out = descriptor(&d.media_type, &d.digest, d.size)?;
    if !d.annotations.is_empty() {
        out.set_annotations(Some(d.annotations.clone().into_iter().collect()));
    }
    Ok(out)
}

pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{:x}", sha2::Sha256::digest(data))
}

/// A reference as containerd's `ParseDockerRef` normalizes it
/// (`alpine` → `docker.io/library/alpine:latest`).
pub fn normalize_docker_ref(reference: &str) -> anyhow::Result<String> {
    let invalid = |why: &str| anyhow!("normalize image ref {reference:?}: {why}");
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    let slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if slash.is_none_or(|s| colon > s) => {
            (&rest[..colon], Some(&rest[colon + 1..]))
        }
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err(invalid("invalid reference format"));
    }
    let (domain, path) = match name.split_once('/') {
        Some((d, p))
            if d.contains('.')
                || d.contains(':')
                || d == "localhost"
                || d.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (d.to_string(), p.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io".to_string()
    } else {
        domain
    };
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(invalid(
            "invalid reference format: repository name must be lowercase",
        ));
    }
    let path_ok = path.split('/').all(|part| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part.ends_with(|c: char| c.is_ascii_alphanumeric())
    });
    let tag_ok = tag.is_none_or(|t| {
        !t.is_empty()
            && t.len() <= 128
            && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    });
    if !path_ok || !tag_ok {
        return Err(invalid("invalid reference format"));
    }
    Ok(match digest {
        Some(digest) => format!("{domain}/{path}@{digest}"),
        None => format!("{domain}/{path}:{}", tag.unwrap_or("latest")),
    })
}

/// The short form Docker prints (`docker.io/library/alpine:latest` → `alpine:latest`), with
/// `:latest` added to a name without tag or digest (containerd's `familiarizeReference`).
pub fn familiarize_reference(name: &str) -> anyhow::Result<String> {
    let full = normalize_docker_ref(name)
        .map_err(|_| anyhow!("failed to parse {name:?}: invalid reference format"))?;
    let short = match full.strip_prefix("docker.io/") {
        Some(rest) => match rest.strip_prefix("library/") {
            Some(inner)
                if !inner
                    .split(['@', ':'])
                    .next()
                    .unwrap_or_default()
                    .contains('/') =>
            {
                inner.to_string()
            }
            _ => rest.to_string(),
        },
        None => full,
    };
    Ok(short)
}

/// The OCI reference name for an image name: what follows its repository (the tag, or
/// `@digest`), as containerd's `reference.Parse(name).Object`; the whole name when that
/// parser refuses it (a name without a host, like `import-2024-01-02:latest`).
pub fn oci_reference_name(name: &str) -> String {
    if name.contains("://") {
        return name.to_string();
    }
    let (authority, path) = match name.find(['/', '?', '#']) {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port_ok = match host.rsplit_once(':') {
        Some((_, port)) if !host.ends_with(']') => port.chars().all(|c| c.is_ascii_digit()),
        _ => true,
    };
    if host.is_empty() || !port_ok || path.contains(['?', '#']) {
        return name.to_string();
    }
    match path.find([':', '@']) {
        Some(i) => {
            let object = &path[i..];
            object.strip_prefix(':').unwrap_or(object).to_string()
        }
        None => String::new(),
    }
}

/// The lease a command's creating calls carry.
pub trait LeaseHeader {
    fn lease_id(&self) -> Option<&str>;

    fn request<T>(&self, message: T) -> Request<T> {
        match self.lease_id().map(|id| Headers::new().lease(id)) {
            Some(Ok(headers)) => headers.request(message),
            _ => Request::new(message),
        }
    }
}

/// A temporary lease keeps its id to itself and makes its own requests.
impl LeaseHeader for TemporaryLease {
    fn lease_id(&self) -> Option<&str> {
        None
    }

    fn request<T>(&self, message: T) -> Request<T> {
        TemporaryLease::request(self, message)
    }
}

/// A lease known by its id.
pub struct NamedLease(pub String);

impl LeaseHeader for NamedLease {
    fn lease_id(&self) -> Option<&str> {
        Some(&self.0)
    }
}

/// Sets `labels` on blob `digest` (one mask path per label, as containerd's client sends them).
pub async fn set_content_labels(
    channel: &NamespacedChannel,
    lease: &impl LeaseHeader,
    digest: &str,
    labels: BTreeMap<String, String>,
) -> Result<(), RpcError> {
    if labels.is_empty() {
        return Ok(());
    }
    let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
    ContentClient::new(channel.clone())
        .update(lease.request(UpdateRequest {
            info: Some(Info {
                digest: digest.to_string(),
                labels: labels.into_iter().collect(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths }),
        }))
        .await
        .map_err(RpcError::from)?;
    Ok(())
}

/// The whole blob `digest` (`size` bytes if known, else all there is).
pub async fn read_blob(channel: &NamespacedChannel, digest: &str) -> Result<Vec<u8>, RpcError> {
    let mut stream = ContentClient::new(channel.clone())
        .read(ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        })
        .await
        .map_err(RpcError::from)?
        .into_inner();
    let mut data = Vec::new();
    while let Some(chunk) = stream.message().await.map_err(RpcError::from)? {
        data.extend_from_slice(&chunk.data);
    }
    Ok(data)
}

/// One Write stream of the Content service, used in lock step.
pub struct BlobWriter {
    requests: mpsc::Sender<WriteContentRequest>,
    responses: tonic::Streaming<WriteContentResponse>,
    /// Bytes the daemon holds for the ref.
    pub offset: i64,
}

/// Opening a writer: content that exists already needs no writing.
pub enum Opened {
    Writer(Box<BlobWriter>),
    Exists,
}

impl BlobWriter {
    /// Opens `reference` with a first STAT naming the size and (if known) digest, waiting while
    /// another writer holds the ref (the daemon answers Unavailable), as containerd's
    /// `content.OpenWriter` does: a random pause of up to 16 ms, doubling up to 2 s.
    pub async fn open(
        channel: &NamespacedChannel,
        lease: &impl LeaseHeader,
        reference: &str,
        total: i64,
        expected: &str,
    ) -> Result<Opened, RpcError> {
        use std::hash::{BuildHasher, Hasher};
        let mut retry_ms: u64 = 16;
        loop {
            match Self::open_once(channel, lease, reference, total, expected).await {
                Err(err) if err.code == Code::Unavailable => {
                    let pause = std::collections::hash_map::RandomState::new()
                        .build_hasher()
                        .finish()
                        % retry_ms;
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    if retry_ms < 2048 {
                        retry_ms <<= 1;
                    }
                }
                other => return other,
            }
        }
    }

    async fn open_once(
        channel: &NamespacedChannel,
        lease: &impl LeaseHeader,
        reference: &str,
        total: i64,
        expected: &str,
    ) -> Result<Opened, RpcError> {
        let (requests, queue) = mpsc::channel(1);
        let first = WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: reference.to_string(),
            total,
            expected: expected.to_string(),
            ..Default::default()
        };
        let _ = requests.send(first).await;
        let opened = ContentClient::new(channel.clone())
            .write(lease.request(ReceiverStream::new(queue)))
            .await;
        let mut responses = match opened {
            Ok(responses) => responses.into_inner(),
            Err(status) if status.code() == Code::AlreadyExists => return Ok(Opened::Exists),
            Err(status) => return Err(status.into()),
        };
        match responses.message().await {
            Ok(Some(response)) => Ok(Opened::Writer(Box::new(BlobWriter {
                requests,
                responses,
                offset: response.offset,
            }))),
            Ok(None) => Err(RpcError::new(Code::Unknown, "EOF")),
            Err(status) if status.code() == Code::AlreadyExists => Ok(Opened::Exists),
            Err(status) => Err(status.into()),
        }
    }

    async fn exchange(
        &mut self,
        request: WriteContentRequest,
    ) -> Result<WriteContentResponse, tonic::Status> {
        let sent = self.requests.send(request).await.is_ok();
        match self.responses.message().await? {
            Some(response) if sent => Ok(response),
            _ => Err(tonic::Status::unknown("EOF")),
        }
    }

    /// Sends `data` (in chunks) at the current offset.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), tonic::Status> {
        for chunk in data.chunks(WRITE_CHUNK) {
            let response = self
                .exchange(WriteContentRequest {
                    action: WriteAction::Write as i32,
                    offset: self.offset,
                    data: chunk.to_vec().into(),
                    ..Default::default()
                })
                .await?;
            self.offset = response.offset;
        }
        Ok(())
    }

    /// Commits; content that exists already is success. Returns the digest the daemon names.
    pub async fn commit(mut self, total: i64, expected: &str) -> Result<String, tonic::Status> {
        let result = self
            .exchange(WriteContentRequest {
                action: WriteAction::Commit as i32,
                total,
                offset: self.offset,
                expected: expected.to_string(),
                ..Default::default()
            })
            .await;
        drop(self.requests);
        while let Ok(Some(_)) = self.responses.message().await {}
        match result {
            Ok(response) => Ok(response.digest),
            Err(status) if status.code() == Code::AlreadyExists => Ok(expected.to_string()),
            Err(status) => Err(status),
        }
    }
}

/// Writes a whole blob held in memory (containerd's `content.WriteBlob`).
pub async fn write_blob(
    channel: &NamespacedChannel,
    lease: &impl LeaseHeader,
    reference: &str,
    data: &[u8],
    expected: &str,
) -> anyhow::Result<()> {
    let mut writer = match BlobWriter::open(channel, lease, reference, data.len() as i64, expected)
        .await
        .map_err(|err| anyhow!("failed to open writer: {err}"))?
    {
        Opened::Exists => return Ok(()),
        Opened::Writer(writer) => writer,
    };
    let from = (writer.offset.max(0) as usize).min(data.len());
    writer
        .write(&data[from..])
        .await
        .map_err(|status| anyhow!("failed to copy: {}", RpcError::from(status)))?;
    writer
        .commit(data.len() as i64, expected)
        .await
        .map_err(|status| {
            anyhow!(
                "failed commit on ref {reference:?}: {}",
                RpcError::from(status)
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_docker_references_like_containerd() {
        assert_eq!(
            normalize_docker_ref("alpine").unwrap(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            normalize_docker_ref("foo/bar:1.0").unwrap(),
            "docker.io/foo/bar:1.0"
        );
        assert_eq!(
            normalize_docker_ref("localhost:5000/x").unwrap(),
            "localhost:5000/x:latest"
        );
        assert!(normalize_docker_ref("Alpine").is_err());
        assert_eq!(
            familiarize_reference("docker.io/library/a:1").unwrap(),
            "a:1"
        );
        assert_eq!(
            familiarize_reference("docker.io/b/a").unwrap(),
            "b/a:latest"
        );
        assert_eq!(
            familiarize_reference("import-2024-01-02:latest").unwrap(),
            "import-2024-01-02:latest"
        );
    }

    #[test]
    fn parses_platforms_like_containerd() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().name(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().name(),
            "linux/amd64"
        );
        assert_eq!(Platform::parse("arm").unwrap().name(), "linux/arm/v7");
        assert_eq!(Platform::parse("linux").unwrap(), Platform::host());
        assert!(Platform::parse("nonsense").is_err());
    }

    #[test]
    fn names_oci_references_like_containerd() {
        assert_eq!(oci_reference_name("docker.io/library/a:1"), "1");
        assert_eq!(oci_reference_name("example.com/a@sha256:ab"), "@sha256:ab");
        assert_eq!(
            oci_reference_name("import-2024-01-02:latest"),
            "import-2024-01-02:latest"
        );
        assert_eq!(oci_reference_name("foo/bar:latest"), "latest");
    }

    #[test]
    fn numbers_children_labels_like_containerd() {
        let config = descriptor(OCI_CONFIG, &sha256_digest(b"c"), 1).unwrap();
        let l0 = descriptor(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &sha256_digest(b"a"),
            1,
        )
        .unwrap();
        let l1 = descriptor(DOCKER_LAYER, &sha256_digest(b"b"), 1).unwrap();
        let labels = children_labels(&[config, l0, l1]);
        let keys: Vec<&str> = labels.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "containerd.io/gc.ref.content.config",
                "containerd.io/gc.ref.content.l.0",
                "containerd.io/gc.ref.content.l.1"
            ]
        );
    }
}
