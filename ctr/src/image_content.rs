//! What an image's content says about it, read through the Content service
//! the way containerd's client walks it: the size of the image for this
//! machine's platform, and the platforms it offers (`ctr images ls`).

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::{InfoRequest, ReadContentRequest};

use crate::errors::RpcError;

/// Docker's media types, which containerd reads like their OCI twins.
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Blobs bigger than this are not manifests; reading one would be a mistake.
const MAX_MANIFEST_BYTES: i64 = 8 << 20;

/// The shape of a descriptor for the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    /// `os/arch[/variant]` when the descriptor names a platform.
    pub platform: Option<String>,
}

impl Target {
    pub fn from_oci(d: &Descriptor) -> Target {
        Target {
            media_type: d.media_type().to_string(),
            digest: d.digest().to_string(),
            size: d.size() as i64,
            platform: d.platform().as_ref().map(|p| {
                let mut name = format!("{}/{}", p.os(), p.architecture());
                if let Some(variant) = p.variant().as_ref().filter(|v| !v.is_empty()) {
                    name.push('/');
                    name.push_str(variant);
                }
                name
            }),
        }
    }
}

fn is_manifest(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST || media_type == MediaType::ImageManifest.to_string()
}

fn is_index(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST_LIST || media_type == MediaType::ImageIndex.to_string()
}

pub fn is_config(media_type: &str) -> bool {
    media_type == DOCKER_CONFIG || media_type == MediaType::ImageConfig.to_string()
}

/// This machine's platform as containerd names it (`linux/amd64`).
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

/// A blob the namespace does not have (containerd's "content digest …: not found").
#[derive(Debug)]
pub struct Missing(pub String);

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "content digest {}: not found", self.0)
    }
}

impl std::error::Error for Missing {}

/// Whether `err` says a blob (or a manifest for the platform) is not there.
pub fn is_missing(err: &anyhow::Error) -> bool {
    err.downcast_ref::<Missing>().is_some() || err.to_string().ends_with(": not found")
}

/// Reads blobs of one namespace through the Content service.
pub struct ContentReader {
    client: ContentClient<NamespacedChannel>,
}

impl ContentReader {
    pub fn new(channel: NamespacedChannel) -> Self {
        ContentReader {
            client: ContentClient::new(channel),
        }
    }

    /// The whole blob `target` names (small ones only: manifests, indexes,
    /// configs). A missing blob is containerd's "content digest …: not found".
    async fn read(&mut self, target: &Target) -> anyhow::Result<Vec<u8>> {
        let info = self
            .client
            .info(InfoRequest {
                digest: target.digest.clone(),
            })
            .await
            .map_err(|status| -> anyhow::Error {
                if status.code() == tonic::Code::NotFound {
                    Missing(target.digest.clone()).into()
                } else {
                    RpcError::from(status).into()
                }
            })?
            .into_inner();
        let size = info.info.map(|i| i.size).unwrap_or_default();
        if size > MAX_MANIFEST_BYTES {
            anyhow::bail!(
                "blob {} is too large to be a manifest ({size} bytes)",
                target.digest
            );
        }
        let mut stream = self
            .client
            .read(ReadContentRequest {
                digest: target.digest.clone(),
                offset: 0,
                size: 0,
            })
            .await
            .map_err(RpcError::from)?
            .into_inner();
        let mut data = Vec::with_capacity(size as usize);
        while let Some(chunk) = stream.message().await.map_err(RpcError::from)? {
            data.extend_from_slice(&chunk.data);
        }
        Ok(data)
    }

    /// The descriptors `target` points at: a manifest's config and layers,
    /// an index's manifests; nothing for anything else.
    async fn children(&mut self, target: &Target) -> anyhow::Result<Vec<Target>> {
        if is_manifest(&target.media_type) {
            let manifest = ImageManifest::from_reader(&self.read(target).await?[..])?;
            let mut children = vec![Target::from_oci(manifest.config())];
            children.extend(manifest.layers().iter().map(Target::from_oci));
            Ok(children)
        } else if is_index(&target.media_type) {
            let index = ImageIndex::from_reader(&self.read(target).await?[..])?;
            Ok(index.manifests().iter().map(Target::from_oci).collect())
        } else {
            Ok(Vec::new())
        }
    }

    /// The size of the image for `platform`: the target, the one manifest
    /// an index offers for the platform, its config and layers. Stops at
    /// the first blob it cannot read, returning what it added up so far with
    /// the error (as containerd's client does).
    pub async fn size(&mut self, target: &Target, platform: &str) -> (i64, Option<anyhow::Error>) {
        let mut size = 0;
        let mut pending = vec![target.clone()];
        while let Some(next) = pending.pop() {
            size += next.size;
            let mut children = match self.children(&next).await {
                Ok(children) => children,
                Err(err) => return (size, Some(err)),
            };
            if is_index(&next.media_type) {
                children.retain(|c| c.platform.as_deref().is_none_or(|p| p == platform));
                // Platform-specific manifests before those without one; one only.
                children.sort_by_key(|c| c.platform.is_none());
                if children.is_empty() {
                    return (
                        size,
                        Some(anyhow::anyhow!(
                            "no match for platform in manifest: not found"
                        )),
                    );
                }
                children.truncate(1);
            }
            // Depth first, in order.
            pending.extend(children.into_iter().rev());
        }
        (size, None)
    }

    /// Whether the namespace holds blob `target`.
    pub async fn has(&mut self, target: &Target) -> anyhow::Result<bool> {
        match self
            .client
            .info(InfoRequest {
                digest: target.digest.clone(),
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(false),
            Err(status) => Err(RpcError::from(status).into()),
        }
    }

    /// The manifest of the image for `platform`, as containerd's client
    /// finds it: through an index, the first platform-specific manifest that
    /// matches (else one without a platform), a manifest without a platform
    /// matched by its config. A missing blob or no match is [`is_missing`].
    pub async fn manifest(
        &mut self,
        top: &Target,
        platform: &str,
    ) -> anyhow::Result<ImageManifest> {
        let mut pending = vec![top.clone()];
        let mut was_index = false;
        while let Some(next) = pending.pop() {
            if is_manifest(&next.media_type) {
                let manifest = ImageManifest::from_reader(&self.read(&next).await?[..])?;
                if next.digest != top.digest {
                    match &next.platform {
                        Some(p) if p != platform => continue,
                        Some(_) => {}
                        None => {
                            let config = Target::from_oci(manifest.config());
                            let config =
                                ImageConfiguration::from_reader(&self.read(&config).await?[..])?;
                            if format!("{}/{}", config.os(), config.architecture()) != platform {
                                continue;
                            }
                        }
                    }
                }
                return Ok(manifest);
            } else if is_index(&next.media_type) {
                was_index = true;
                let mut children = self.children(&next).await?;
                children.retain(|c| c.platform.as_deref().is_none_or(|p| p == platform));
                children.sort_by_key(|c| c.platform.is_none());
                children.truncate(1);
                pending.extend(children.into_iter().rev());
            } else {
                anyhow::bail!(
                    "unexpected media type {} for {}: not found",
                    next.media_type,
                    next.digest
                );
            }
        }
        if was_index {
            anyhow::bail!(
                "no match for platform in manifest {}: not found",
                top.digest
            )
        }
        anyhow::bail!("manifest {}: not found", top.digest)
    }

    /// The diff IDs of the image's layers for `platform` (its config's rootfs).
    pub async fn diff_ids(&mut self, top: &Target, platform: &str) -> anyhow::Result<Vec<String>> {
        let manifest = self.manifest(top, platform).await?;
        let config = Target::from_oci(manifest.config());
        let config = ImageConfiguration::from_reader(&self.read(&config).await?[..])?;
        Ok(config.rootfs().diff_ids().to_vec())
    }

    /// The config blob of the image for `platform`: its descriptor and
    /// bytes (containerd's `images.Config`).
    pub async fn config(
        &mut self,
        top: &Target,
        platform: &str,
    ) -> anyhow::Result<(Target, Vec<u8>)> {
        let manifest = self.manifest(top, platform).await?;
        let config = Target::from_oci(manifest.config());
        let bytes = self.read(&config).await?;
        Ok((config, bytes))
    }

    /// The platforms the image offers: those its index names, or the one
    /// its config describes.
    pub async fn platforms(&mut self, target: &Target) -> anyhow::Result<Vec<String>> {
        let mut platforms = Vec::new();
        let mut pending = vec![target.clone()];
        while let Some(next) = pending.pop() {
            if let Some(platform) = &next.platform {
                if !platform.split('/').any(|part| part == "unknown") {
                    platforms.push(platform.clone());
                }
                continue;
            }
            if is_config(&next.media_type) {
                let config = ImageConfiguration::from_reader(&self.read(&next).await?[..])?;
                platforms.push(format!("{}/{}", config.os(), config.architecture()));
                continue;
            }
            pending.extend(self.children(&next).await?.into_iter().rev());
        }
        platforms.sort();
        platforms.dedup();
        Ok(platforms)
    }
}

/// The chain ID of layers with these diff IDs: the name an unpacked image's
/// top snapshot has (`sha256` of "<parent chain> <diff id>", layer by layer).
pub fn chain_id(diff_ids: &[String]) -> Option<String> {
    use sha2::Digest as _;
    let mut chain: Option<String> = None;
    for diff in diff_ids {
        chain = Some(match chain {
            None => diff.clone(),
            Some(parent) => format!(
                "sha256:{:x}",
                sha2::Sha256::digest(format!("{parent} {diff}").as_bytes())
            ),
        });
    }
    chain
}
