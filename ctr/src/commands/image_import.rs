//! `ctr images import [flags] <in>`: an OCI image layout or a `docker save` archive (a tar, or
//! `-` for stdin) into the content store and the image store, then unpacked, as containerd
//! 1.6's client does it (`client.Import`, `archive.ImportIndex`, `image.Unpack`).
//!
//! Every regular file of the archive except `oci-layout` and `manifest.json` is written as a
//! blob (ref `tar-<name>`). An OCI layout's `index.json` is the index; for a Docker archive an
//! index is made: one Docker schema 2 manifest per image, one entry per tag, named with the
//! normalized tag (`io.containerd.image.name`) and the tag alone (`org.opencontainers.image.ref.name`).
//! The walk from the index labels each parent with its children (`containerd.io/gc.ref.content.*`),
//! for the manifests of this platform (all with `--all-platforms`). Images are named from the
//! index's annotations (a tag alone gets `--base-name`, by default `import-<yyyy-MM-dd>`),
//! `--digests` adds `<base>@<digest>` names, `--index-name` names the index. The import runs
//! under one temporary lease; each unpack under one of its own.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write as _};
use std::rc::Rc;

use anyhow::{anyhow, bail};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::{ListContentRequest, ReadContentRequest};
use rcontainerd_api::services::images::images_client::ImagesClient;
use rcontainerd_api::services::images::{CreateImageRequest, Image, UpdateImageRequest};
use serde::Deserialize;
use sha2::Digest as _;
use tonic::Code;

use super::leases::TemporaryLease;
use crate::cli::{ImagesCommand, ImagesImport};
use crate::errors::RpcError;
use crate::gojson::Json;
use crate::image_content::Target;
use crate::oci::{self, BlobWriter, Opened, Platform, PlatformMatcher};
use crate::spec::clean_path;
use crate::unpack;

/// The OCI image layout version containerd 1.6 reads.
const LAYOUT_VERSION: &str = "1.0.0";

/// How much of a member is read and sent at a time.
const CHUNK: usize = 1 << 20;

#[derive(Deserialize)]
struct Layout {
    #[serde(rename = "imageLayoutVersion", default)]
    version: String,
}

/// One entry of a Docker archive's `manifest.json` (Go decodes the keys case-insensitively).
#[derive(Deserialize)]
struct DockerEntry {
    #[serde(alias = "config", default)]
    #[serde(rename = "Config")]
    config: String,
    #[serde(alias = "repoTags", alias = "repotags", default)]
    #[serde(rename = "RepoTags")]
    repo_tags: Option<Vec<String>>,
    #[serde(alias = "layers", default)]
    #[serde(rename = "Layers")]
    layers: Option<Vec<String>>,
}

/// A blob read from the archive.
#[derive(Clone)]
struct Blob {
    digest: String,
    size: i64,
    /// Its first bytes, to tell compressed layers from plain ones.
    head: Vec<u8>,
}

/// What containerd's ctr checks before it dials, for `images import|export|mount|unmount`.
pub fn check_before_dial(command: &ImagesCommand) -> anyhow::Result<()> {
    match command {
        ImagesCommand::Import(args) => {
            if args.skip_digest_for_named && !args.digests {
                bail!("--skip-digest-for-named must be specified with --digests option");
            }
            if let Some(text) = args.platform.as_deref().filter(|p| !p.is_empty()) {
                Platform::parse(text)?;
            }
        }
        ImagesCommand::Export(args) => {
            if args.output.as_deref().unwrap_or_default().is_empty() || args.images.is_empty() {
                bail!("please provide both an output filename and an image reference to export");
            }
            for text in &args.platforms {
                Platform::parse(text).map_err(|err| anyhow!("invalid platform {text:?}: {err}"))?;
            }
        }
        ImagesCommand::Mount(args) => {
            if args.reference.as_deref().unwrap_or_default().is_empty() {
                bail!("please provide an image reference to mount");
            }
            if args.target.as_deref().unwrap_or_default().is_empty() {
                bail!("please provide a target path to mount to");
            }
        }
        ImagesCommand::Unmount(args) if args.target.as_deref().unwrap_or_default().is_empty() => {
            bail!("please provide a target path to unmount from");
        }
        _ => {}
    }
    Ok(())
}

pub async fn run(
    channel: NamespacedChannel,
    namespace: &str,
    args: &ImagesImport,
) -> anyhow::Result<()> {
    if args.skip_digest_for_named && !args.digests {
        bail!("--skip-digest-for-named must be specified with --digests option");
    }
    let prefix = if args.base_name.is_empty() {
        format!("import-{}", chrono::Local::now().format("%Y-%m-%d"))
    } else {
        args.base_name.clone()
    };
    let strict = match args.platform.as_deref().filter(|p| !p.is_empty()) {
        Some(text) => Some(Platform::parse(text)?),
        None => None,
    };
    let matcher = if args.all_platforms {
        PlatformMatcher::All
    } else if let Some(platform) = &strict {
        PlatformMatcher::Strict(platform.clone())
    } else {
        PlatformMatcher::Only(Platform::host())
    };
    let input = args.input.clone().unwrap_or_default();
    let reader: Box<dyn Read> = if input == "-" {
        Box::new(std::io::stdin())
    } else {
        let file = std::fs::File::open(&input).map_err(|err| {
            anyhow!(
                "open {input}: {}",
                rcontainerd_api::client::os_error_text(&err)
            )
        })?;
        Box::new(std::io::BufReader::with_capacity(CHUNK, file))
    };

    let lease = TemporaryLease::create(channel.clone()).await?;
    let imported = import_under(&channel, &lease, reader, args, &prefix, &matcher).await;
    lease.release().await;
    let images = imported?;

    if !args.no_unpack {
        let snapshotter =
            unpack::resolve_snapshotter(&channel, namespace, args.snapshotter.as_deref()).await?;
        let platform = strict.unwrap_or_else(Platform::host).name();
        for image in &images {
            let target = image.target.clone().unwrap_or_default();
            print!("unpacking {} ({})...", image.name, target.digest);
            let _ = std::io::stdout().flush();
            let top = Target {
                media_type: target.media_type.clone(),
                digest: target.digest.clone(),
                size: target.size,
                platform: None,
            };
            unpack::unpack(channel.clone(), &top, &platform, &snapshotter).await?;
            println!("done");
        }
    }
    Ok(())
}

async fn import_under(
    channel: &NamespacedChannel,
    lease: &TemporaryLease,
    reader: Box<dyn Read>,
    args: &ImagesImport,
    prefix: &str,
    matcher: &PlatformMatcher,
) -> anyhow::Result<Vec<Image>> {
    let index = import_index(channel, lease, reader, args.compress_blobs).await?;
    let translate =
        |name: &str| -> String { ref_translator(prefix, !args.base_name.is_empty(), name) };

    let mut images: Vec<(String, Descriptor)> = Vec::new();
    if !args.index_name.is_empty() {
        images.push((args.index_name.clone(), index.clone()));
    }
    // The walk from the index, depth first, as containerd's images.Walk.
    let mut pending = vec![index.clone()];
    let mut any_children = false;
    while let Some(desc) = pending.pop() {
        let digest = desc.digest().to_string();
        let children: Vec<Descriptor> = if digest == index.digest().to_string() {
            let blob = oci::read_blob(channel, &digest).await?;
            let idx = ImageIndex::from_reader(&blob[..])?;
            for m in idx.manifests() {
                let annotations = m.annotations().clone().unwrap_or_default();
                let name = match annotations.get(oci::ANNOTATION_IMAGE_NAME) {
                    Some(name) if !name.is_empty() => name.clone(),
                    _ => match annotations.get(oci::ANNOTATION_REF_NAME) {
                        Some(r) if !r.is_empty() => translate(r),
                        _ => String::new(),
                    },
                };
                if !name.is_empty() {
                    images.push((name.clone(), m.clone()));
                }
                if args.skip_digest_for_named && !name.is_empty() {
                    continue;
                }
                if args.digests {
                    images.push((format!("{prefix}@{}", m.digest()), m.clone()));
                }
            }
            idx.manifests().clone()
        } else {
            children_of(channel, &desc).await?
        };
        let children: Vec<Descriptor> =
            children.into_iter().filter(|c| matcher.admits(c)).collect();
        if !children.is_empty() {
            any_children = true;
            oci::set_content_labels(channel, lease, &digest, oci::children_labels(&children))
                .await?;
        }
        pending.extend(children.into_iter().rev());
    }
    if !any_children {
        bail!("image might be filtered out");
    }

    let mut client = ImagesClient::new(channel.clone());
    let mut created = Vec::new();
    for (name, target) in images {
        let image = Image {
            name,
            target: Some(oci::to_api(&target)),
            ..Default::default()
        };
        let update = UpdateImageRequest {
            image: Some(image.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["target".to_string()],
            }),
            source_date_epoch: None,
        };
        let updated = client
            .update(lease.request(update.clone()))
            .await
            .map(|r| r.into_inner().image);
        let answer = match updated {
            Err(status) if status.code() == Code::NotFound => {
                let create = CreateImageRequest {
                    image: Some(image.clone()),
                    source_date_epoch: None,
                };
                match client.create(lease.request(create)).await {
                    // Another import created it since: update that record, as it would have been
                    // had it been there first (containerd's ctr fails here instead).
                    Err(status) if status.code() == Code::AlreadyExists => client
                        .update(lease.request(update))
                        .await
                        .map(|r| r.into_inner().image),
                    created => created.map(|r| r.into_inner().image),
                }
            }
            other => other,
        };
        let image = answer.map_err(RpcError::from)?.unwrap_or(image);
        created.push(image);
    }
    Ok(created)
}

/// containerd's `FilterRefPrefix` (`check`) and `AddRefPrefix`: a tag alone gets the prefix;
/// a full reference is kept, or with `check` dropped unless it has the prefix.
fn ref_translator(prefix: &str, check: bool, reference: &str) -> String {
    if reference.contains(['/', ':', '@']) {
        if check && !has_image_prefix(reference, prefix) {
            return String::new();
        }
        return reference.to_string();
    }
    format!("{prefix}:{reference}")
}

fn has_image_prefix(name: &str, prefix: &str) -> bool {
    match name.strip_prefix(prefix) {
        None => false,
        Some("") => true,
        Some(rest) => rest.starts_with(['/', ':', '@']),
    }
}

/// A manifest's config and layers, an index's manifests; nothing for anything else.
async fn children_of(
    channel: &NamespacedChannel,
    desc: &Descriptor,
) -> anyhow::Result<Vec<Descriptor>> {
    let media_type = desc.media_type().to_string();
    if oci::is_manifest(&media_type) {
        let blob = oci::read_blob(channel, desc.digest().as_ref()).await?;
        let manifest = ImageManifest::from_reader(&blob[..])?;
        let mut children = vec![manifest.config().clone()];
        children.extend(manifest.layers().iter().cloned());
        Ok(children)
    } else if oci::is_index(&media_type) {
        let blob = oci::read_blob(channel, desc.digest().as_ref()).await?;
        Ok(ImageIndex::from_reader(&blob[..])?.manifests().clone())
    } else {
        Ok(Vec::new())
    }
}

fn dir(name: &str) -> &str {
    match name.rfind('/') {
        Some(i) => &name[..i],
        None => ".",
    }
}

/// A failure to read the archive, in Go's `archive/tar` words where they differ.
fn tar_error(err: std::io::Error) -> anyhow::Error {
    let text = err.to_string();
    match err.kind() {
        std::io::ErrorKind::UnexpectedEof => anyhow!("unexpected EOF"),
        // A header cut short, or data skipped past the end.
        _ if text.contains("failed to read entire block") || text.contains("unexpected EOF") => {
            anyhow!("unexpected EOF")
        }
        std::io::ErrorKind::Other | std::io::ErrorKind::InvalidData
            if !err.to_string().contains("os error") =>
        {
            anyhow!("archive/tar: invalid tar header")
        }
        _ => anyhow!(rcontainerd_api::client::os_error_text(&err)),
    }
}

/// A JSON member that does not decode: JSON cut short in Go's words; other mistakes in serde's.
fn json_error(err: &serde_json::Error) -> String {
    if err.is_eof() {
        "unexpected EOF".to_string()
    } else {
        err.to_string()
    }
}

/// The archive as Go's `archive/tar` sees its end: input that stops after a member's data,
/// inside the padding to the next block, ends the archive there (the `tar` crate would call it
/// truncated). The padding and the two zero blocks are made up for the `tar` crate.
struct GoEnd {
    inner: Box<dyn Read>,
    position: u64,
    /// Where the data of the member read last ends.
    data_end: Rc<Cell<u64>>,
    /// Zero bytes still to hand out after such an end.
    zeros: u64,
}

impl Read for GoEnd {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.zeros > 0 {
            let n = buf.len().min(self.zeros as usize);
            buf[..n].fill(0);
            self.zeros -= n as u64;
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let end = self.data_end.get();
            let padded = end.div_ceil(512) * 512;
            if self.position >= end && self.position < padded {
                self.zeros = padded - self.position + 1024;
                self.position = padded;
                return self.read(buf);
            }
        }
        self.position += n as u64;
        Ok(n)
    }
}

/// Reads the archive, writing its blobs; returns the index to import from
/// (containerd's `archive.ImportIndex`).
async fn import_index(
    channel: &NamespacedChannel,
    lease: &TemporaryLease,
    reader: Box<dyn Read>,
    compress: bool,
) -> anyhow::Result<Descriptor> {
    let data_end = Rc::new(Cell::new(0));
    let mut archive = tar::Archive::new(GoEnd {
        inner: reader,
        position: 0,
        data_end: data_end.clone(),
        zeros: 0,
    });
    let mut layout: Option<Layout> = None;
    let mut docker: Option<Vec<DockerEntry>> = None;
    let mut symlinks: BTreeMap<String, String> = BTreeMap::new();
    let mut blobs: HashMap<String, Blob> = HashMap::new();
    for entry in archive.entries().map_err(tar_error)? {
        let mut entry = entry.map_err(tar_error)?;
        data_end.set(entry.raw_file_position() + entry.size());
        let kind = entry.header().entry_type();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if kind.is_symlink() {
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            symlinks.insert(name.clone(), clean_path(&format!("{}/{link}", dir(&name))));
        }
        if kind != tar::EntryType::Regular {
            continue;
        }
        let member = clean_path(&name);
        let size = entry.header().size().map_err(tar_error)? as i64;
        if member == "oci-layout" {
            let mut text = Vec::new();
            entry.read_to_end(&mut text).map_err(tar_error)?;
            layout = Some(
                serde_json::from_slice(&text)
                    .map_err(|err| anyhow!("untar oci layout {name:?}: {}", json_error(&err)))?,
            );
        } else if member == "manifest.json" {
            let mut text = Vec::new();
            entry.read_to_end(&mut text).map_err(tar_error)?;
            docker = Some(
                serde_json::from_slice(&text)
                    .map_err(|err| anyhow!("untar manifest {name:?}: {}", json_error(&err)))?,
            );
        } else {
            let blob = ingest(channel, lease, &mut entry, size, &format!("tar-{member}"))
                .await
                .map_err(|err| anyhow!("failed to ingest {name:?}: {err}"))?;
            blobs.insert(member, blob);
        }
    }
    // The tar crate stops at the first zero block; Go's reader also reads the second.
    let mut rest = archive.into_inner();
    let mut block = [0u8; 512];
    let mut filled = 0;
    while filled < block.len() {
        match rest.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(tar_error(err)),
        }
    }
    if filled > 0 && filled < block.len() {
        bail!("unexpected EOF");
    }
    if block.iter().any(|b| *b != 0) {
        bail!("archive/tar: invalid tar header");
    }

    if let Some(layout) = layout.filter(|l| !l.version.is_empty()) {
        if layout.version != LAYOUT_VERSION {
            bail!("unsupported OCI version {}", layout.version);
        }
        let Some(index) = blobs.get("index.json") else {
            bail!("missing index.json in OCI layout {LAYOUT_VERSION}");
        };
        return oci::descriptor(oci::OCI_INDEX, &index.digest, index.size);
    }
    let Some(entries) = docker else {
        bail!("unrecognized image format");
    };
    for (name, target) in &symlinks {
        let Some(blob) = blobs.get(target).cloned() else {
            bail!("no target for symlink layer from {name:?} to {target:?}");
        };
        blobs.insert(name.clone(), blob);
    }
    let mut manifests = Vec::new();
    for entry in &entries {
        let Some(config) = blobs.get(&entry.config) else {
            bail!("image config {:?} not found", entry.config);
        };
        let config_desc = oci::descriptor(oci::DOCKER_CONFIG, &config.digest, config.size)?;
        let layers = resolve_layers(
            channel,
            lease,
            entry.layers.as_deref().unwrap_or_default(),
            &blobs,
            compress,
        )
        .await
        .map_err(|err| anyhow!("failed to resolve layers: {err}"))?;
        let manifest = Json::Object(vec![
            ("schemaVersion".to_string(), Json::Number(2)),
            ("mediaType".to_string(), Json::string(oci::DOCKER_MANIFEST)),
            ("config".to_string(), oci::descriptor_json(&config_desc)),
            (
                "layers".to_string(),
                if layers.is_empty() {
                    Json::Null
                } else {
                    Json::Array(layers.iter().map(oci::descriptor_json).collect())
                },
            ),
        ])
        .to_compact();
        let mut desc = write_manifest(channel, lease, &manifest, oci::DOCKER_MANIFEST)
            .await
            .map_err(|err| anyhow!("write docker manifest: {err}"))?;
        let config_json = oci::read_blob(channel, &config.digest)
            .await
            .map_err(|err| anyhow!("unable to resolve platform: {err}"))?;
        let image = ImageConfiguration::from_reader(&config_json[..])
            .map_err(|err| anyhow!("unable to resolve platform: {err}"))?;
        let platform = Platform::normalized(
            &image.os().to_string(),
            &image.architecture().to_string(),
            "",
        );
        let mut spec = oci_spec::image::Platform::default();
        spec.set_os(platform.os.as_str().into());
        spec.set_architecture(platform.architecture.as_str().into());
        if !platform.variant.is_empty() {
            spec.set_variant(Some(platform.variant.clone()));
        }
        desc.set_platform(Some(spec));
        match entry.repo_tags.as_deref().unwrap_or_default() {
            [] => manifests.push(desc),
            tags => {
                for tag in tags {
                    let normalized = oci::normalize_docker_ref(tag)?;
                    let mut tagged = desc.clone();
                    tagged.set_annotations(Some(HashMap::from([
                        (oci::ANNOTATION_IMAGE_NAME.to_string(), normalized.clone()),
                        (
                            oci::ANNOTATION_REF_NAME.to_string(),
                            oci::oci_reference_name(&normalized),
                        ),
                    ])));
                    manifests.push(tagged);
                }
            }
        }
    }
    write_manifest(channel, lease, &oci::index_json(&manifests), oci::OCI_INDEX).await
}

/// Streams one archive member into the content store under `reference`, computing its digest.
async fn ingest(
    channel: &NamespacedChannel,
    lease: &TemporaryLease,
    member: &mut impl Read,
    size: i64,
    reference: &str,
) -> anyhow::Result<Blob> {
    let mut hasher = sha2::Sha256::new();
    let mut head = Vec::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut read_chunk =
        |hasher: &mut sha2::Sha256, head: &mut Vec<u8>| -> anyhow::Result<Vec<u8>> {
            let mut filled = 0;
            while filled < CHUNK {
                match member.read(&mut buffer[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(anyhow!("failed to copy: {}", tar_error(err))),
                }
            }
            hasher.update(&buffer[..filled]);
            if head.len() < 10 {
                let more = (10 - head.len()).min(filled);
                head.extend_from_slice(&buffer[..more]);
            }
            Ok(buffer[..filled].to_vec())
        };
    let opened = BlobWriter::open(channel, lease, reference, size, "")
        .await
        .map_err(|err| anyhow!("failed to open writer: {err}"))?;
    let mut writer = match opened {
        Opened::Writer(writer) => writer,
        Opened::Exists => {
            // Nothing to write; the digest is still the member's.
            loop {
                if read_chunk(&mut hasher, &mut head)?.is_empty() {
                    break;
                }
            }
            return Ok(Blob {
                digest: format!("sha256:{:x}", hasher.finalize()),
                size,
                head,
            });
        }
    };
    // A ref an earlier import left half-written resumes where it stopped.
    let mut skip = writer.offset.max(0) as usize;
    let mut read: i64 = 0;
    loop {
        let chunk = read_chunk(&mut hasher, &mut head)?;
        if chunk.is_empty() {
            break;
        }
        read += chunk.len() as i64;
        let from = skip.min(chunk.len());
        skip -= from;
        writer
            .write(&chunk[from..])
            .await
            .map_err(|status| anyhow!("failed to copy: {}", RpcError::from(status)))?;
    }
    if read < size {
        bail!("failed to read expected number of bytes: unexpected EOF");
    }
    let digest = format!("sha256:{:x}", hasher.finalize());
    writer.commit(size, "").await.map_err(|status| {
        anyhow!(
            "failed commit on ref {reference:?}: {}",
            RpcError::from(status)
        )
    })?;
    Ok(Blob { digest, size, head })
}

/// containerd's `writeManifest`: the JSON as a blob with its digest; its descriptor.
async fn write_manifest(
    channel: &NamespacedChannel,
    lease: &TemporaryLease,
    json: &str,
    media_type: &str,
) -> anyhow::Result<Descriptor> {
    let digest = oci::sha256_digest(json.as_bytes());
    oci::write_blob(
        channel,
        lease,
        &format!("manifest-{digest}"),
        json.as_bytes(),
        &digest,
    )
    .await?;
    oci::descriptor(media_type, &digest, json.len() as i64)
}

/// Whether bytes start like a compressed stream (gzip or zstd).
fn compressed(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b, 0x08]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

/// The layers of a Docker archive's image: a compressed blob the store already holds for a
/// plain layer (labelled `containerd.io/uncompressed`) replaces it; the media type says
/// whether the layer is compressed (containerd's `resolveLayers`).
async fn resolve_layers(
    channel: &NamespacedChannel,
    lease: &TemporaryLease,
    files: &[String],
    blobs: &HashMap<String, Blob>,
    compress: bool,
) -> anyhow::Result<Vec<Descriptor>> {
    let mut layers: Vec<(Blob, Option<String>)> = Vec::new();
    let mut filters = Vec::new();
    for file in files {
        let Some(blob) = blobs.get(&clean_path(file)).or_else(|| blobs.get(file)) else {
            bail!("layer {file:?} not found");
        };
        filters.push(format!(
            "labels.\"{}\"=={}",
            oci::UNCOMPRESSED_LABEL,
            blob.digest
        ));
        layers.push((blob.clone(), None));
    }
    if !filters.is_empty() {
        let mut content = ContentClient::new(channel.clone());
        let mut stream = content
            .list(ListContentRequest { filters })
            .await
            .map_err(|status| {
                anyhow!(
                    "failure checking for compressed blobs: {}",
                    RpcError::from(status)
                )
            })?
            .into_inner();
        let mut found = Vec::new();
        while let Some(response) = stream.message().await.map_err(RpcError::from)? {
            found.extend(response.info);
        }
        for info in found {
            let Some(uncompressed) = info.labels.get(oci::UNCOMPRESSED_LABEL) else {
                continue;
            };
            for (blob, media_type) in layers.iter_mut() {
                if &blob.digest == uncompressed && media_type.is_none() {
                    let head = read_head(channel, &info.digest)
                        .await
                        .map_err(|err| anyhow!("failed to detect media type of layer: {err}"))?;
                    *blob = Blob {
                        digest: info.digest.clone(),
                        size: info.size,
                        head: head.clone(),
                    };
                    *media_type = Some(
                        if head.len() >= 10 && compressed(&head) {
                            oci::DOCKER_LAYER_GZIP
                        } else {
                            oci::DOCKER_LAYER
                        }
                        .to_string(),
                    );
                }
            }
        }
    }
    let mut resolved = Vec::new();
    for (blob, media_type) in layers {
        let (blob, media_type) = match media_type {
            Some(media_type) => (blob, media_type),
            None if compressed(&blob.head) => (blob, oci::DOCKER_LAYER_GZIP.to_string()),
            None if compress => (
                compress_blob(channel, lease, &blob).await?,
                oci::DOCKER_LAYER_GZIP.to_string(),
            ),
            None => (blob, oci::DOCKER_LAYER.to_string()),
        };
        resolved.push(oci::descriptor(&media_type, &blob.digest, blob.size)?);
    }
    Ok(resolved)
}

/// `--compress-blobs`: a plain layer gzipped into a blob of its own (ref
/// `compress-blob-<alg>-<hex>`), labelled `containerd.io/uncompressed=<plain digest>`.
async fn compress_blob(
    channel: &NamespacedChannel,
    lease: &TemporaryLease,
    plain: &Blob,
) -> anyhow::Result<Blob> {
    let data = oci::read_blob(channel, &plain.digest)
        .await
        .map_err(|err| anyhow!("failed to open {:?}: {err}", plain.digest))?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&data)?;
    let gzipped = encoder.finish()?;
    let digest = oci::sha256_digest(&gzipped);
    let reference = format!("compress-blob-{}", plain.digest.replacen(':', "-", 1));
    oci::write_blob(channel, lease, &reference, &gzipped, &digest)
        .await
        .map_err(|err| anyhow!("failed to commit: {err}"))?;
    oci::set_content_labels(
        channel,
        lease,
        &digest,
        BTreeMap::from([(oci::UNCOMPRESSED_LABEL.to_string(), plain.digest.clone())]),
    )
    .await?;
    Ok(Blob {
        head: gzipped.iter().take(10).copied().collect(),
        digest,
        size: gzipped.len() as i64,
    })
}

async fn read_head(channel: &NamespacedChannel, digest: &str) -> Result<Vec<u8>, RpcError> {
    let mut stream = ContentClient::new(channel.clone())
        .read(ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 10,
        })
        .await
        .map_err(RpcError::from)?
        .into_inner();
    let mut head = Vec::new();
    while let Some(chunk) = stream.message().await.map_err(RpcError::from)? {
        head.extend_from_slice(&chunk.data);
    }
    head.truncate(10);
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_references_like_containerd() {
        assert_eq!(ref_translator("foo/bar", false, "latest"), "foo/bar:latest");
        assert_eq!(
            ref_translator("foo/bar", false, "docker.io/x/y:1"),
            "docker.io/x/y:1"
        );
        assert_eq!(ref_translator("foo/bar", true, "docker.io/x/y:1"), "");
        assert_eq!(ref_translator("foo/bar", true, "foo/bar:2"), "foo/bar:2");
        assert_eq!(ref_translator("foo/bar", true, "foo/barx:2"), "");
    }

    #[test]
    fn cleans_paths_like_go() {
        assert_eq!(clean_path("./index.json"), "index.json");
        assert_eq!(clean_path("a/../b/./c"), "b/c");
        assert_eq!(clean_path("abc/layer.tar"), "abc/layer.tar");
        assert_eq!(
            clean_path(&format!("{}/{}", dir("x/layer.tar"), "../y/layer.tar")),
            "y/layer.tar"
        );
    }
}
