//! `ctr images export [flags] <out> <image> ...`: images as an OCI layout tar, as containerd
//! 1.6's `archive.Export` writes it: `oci-layout`, `index.json` (each image's target with
//! `io.containerd.image.name` and `org.opencontainers.image.ref.name` annotations), a Docker
//! `manifest.json` (unless `--skip-manifest-json`) and `blobs/<alg>/<hex>` for every blob the
//! images reach (an index's manifests for this platform only, unless `--all-platforms`),
//! members sorted by name.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{anyhow, bail};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use rcontainerd_api::client::{os_error_text, NamespacedChannel};
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::ReadContentRequest;
use rcontainerd_api::services::images::images_client::ImagesClient;
use rcontainerd_api::services::images::GetImageRequest;
use sha2::Digest as _;

use crate::cli::ImagesExport;
use crate::errors::RpcError;
use crate::gojson::Json;
use crate::oci::{self, Platform};

/// One member of the archive.
enum Record {
    Dir,
    Bytes(Vec<u8>, u32),
    Blob(Box<Descriptor>),
}

/// An image target and the names given to it in `manifest.json`.
struct DockerManifest {
    manifest: Descriptor,
    names: Vec<String>,
}

/// Which platforms are exported.
struct Platforms(Vec<Platform>);

impl Platforms {
    fn matches(&self, descriptor: &Descriptor) -> Option<usize> {
        let p = descriptor.platform().as_ref()?;
        let p = Platform::normalized(
            &p.os().to_string(),
            &p.architecture().to_string(),
            p.variant().as_deref().unwrap_or_default(),
        );
        self.0.iter().position(|wanted| *wanted == p)
    }
}

fn is_non_distributable(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.oci.image.layer.nondistributable.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.foreign.diff.tar")
}

/// `blobs/<alg>/<hex>` for a digest, as Go's `path.Join` makes it of its parts.
fn digest_path(digest: &str) -> String {
    let (algorithm, hex) = digest.split_once(':').unwrap_or((digest, ""));
    ["blobs", algorithm, hex]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

/// go-digest's `Validate`, in its words.
fn validate_digest(digest: &str) -> Result<(), &'static str> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err("invalid checksum digest format");
    };
    if algorithm.is_empty() || hex.is_empty() {
        return Err("invalid checksum digest format");
    }
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err("unsupported digest algorithm"),
    };
    if hex.len() != length {
        return Err("invalid checksum digest length");
    }
    if !hex
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return Err("invalid checksum digest format");
    }
    Ok(())
}

fn algorithm(d: &Descriptor) -> String {
    let digest = d.digest().to_string();
    digest
        .split_once(':')
        .map_or("sha256", |(a, _)| a)
        .to_string()
}

fn blob_path(d: &Descriptor) -> String {
    let digest = d.digest().to_string();
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", &digest));
    format!("blobs/{algorithm}/{hex}")
}

pub async fn run(channel: NamespacedChannel, args: &ImagesExport) -> anyhow::Result<()> {
    let out = args.output.clone().unwrap_or_default();
    if out.is_empty() || args.images.is_empty() {
        bail!("please provide both an output filename and an image reference to export");
    }
    let platforms = if args.platforms.is_empty() {
        Platforms(vec![Platform::host()])
    } else {
        let mut all = Vec::new();
        for text in &args.platforms {
            all.push(
                Platform::parse(text).map_err(|err| anyhow!("invalid platform {text:?}: {err}"))?,
            );
        }
        Platforms(all)
    };
    let mut writer: Box<dyn Write> = if out == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(&out)
                .map_err(|err| anyhow!("open {out}: {}", os_error_text(&err)))?,
        ))
    };

    let mut manifests = Vec::new();
    let mut images = ImagesClient::new(channel.clone());
    for name in &args.images {
        let image = images
            .get(GetImageRequest { name: name.clone() })
            .await
            .map_err(RpcError::from)?
            .into_inner()
            .image
            .unwrap_or_default();
        let mut target = oci::from_api(&image.target.unwrap_or_default())?;
        let mut annotations = target.annotations().clone().unwrap_or_default();
        annotations.insert(oci::ANNOTATION_IMAGE_NAME.to_string(), name.clone());
        annotations.insert(
            oci::ANNOTATION_REF_NAME.to_string(),
            oci::oci_reference_name(name),
        );
        target.set_annotations(Some(annotations));
        manifests.push(target);
    }

    let keep = |d: &Descriptor| -> bool {
        !(args.skip_non_distributable && is_non_distributable(d.media_type().as_ref()))
    };
    let mut records: BTreeMap<String, Record> = BTreeMap::new();
    let mut add = |name: String, record: Record| {
        records.entry(name).or_insert(record);
    };
    add(
        "oci-layout".to_string(),
        Record::Bytes(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(), 0o444),
    );
    add(
        "index.json".to_string(),
        Record::Bytes(oci::index_json(&manifests).into_bytes(), 0o644),
    );
    let mut docker: Vec<(String, DockerManifest)> = Vec::new();
    let mut resolved: BTreeMap<String, Option<String>> = BTreeMap::new();
    // The digest algorithms of the blobs the walks found (containerd makes their directories).
    let mut algorithms: std::collections::BTreeSet<String> = Default::default();
    for desc in &manifests {
        let media_type = desc.media_type().to_string();
        let digest = desc.digest().to_string();
        let name = desc
            .annotations()
            .as_ref()
            .and_then(|a| a.get(oci::ANNOTATION_IMAGE_NAME).cloned())
            .unwrap_or_default();
        if oci::is_manifest(&media_type) {
            if !docker.iter().any(|(d, _)| *d == digest) {
                for d in walk(&channel, desc).await? {
                    algorithms.insert(algorithm(&d));
                    if keep(&d) {
                        add(blob_path(&d), Record::Blob(Box::new(d)));
                    }
                }
                docker.push((
                    digest.clone(),
                    DockerManifest {
                        manifest: desc.clone(),
                        names: Vec::new(),
                    },
                ));
            }
            if !name.is_empty() && !args.skip_manifest_json {
                if let Some((_, m)) = docker.iter_mut().find(|(d, _)| *d == digest) {
                    m.names.push(name);
                }
            }
        } else if oci::is_index(&media_type) {
            let chosen = match resolved.get(&digest) {
                Some(chosen) => chosen.clone(),
                None => {
                    if keep(desc) {
                        add(blob_path(desc), Record::Blob(Box::new(desc.clone())));
                    }
                    let blob = oci::read_blob(&channel, &digest).await?;
                    let index = ImageIndex::from_reader(&blob[..])?;
                    let mut matching: Vec<(usize, Descriptor)> = Vec::new();
                    for m in index.manifests() {
                        let rank = if m.platform().is_none() {
                            Some(usize::MAX)
                        } else {
                            platforms.matches(m)
                        };
                        match rank {
                            Some(rank) => matching.push((rank, m.clone())),
                            None if !args.all_platforms => continue,
                            None => {}
                        }
                        for d in walk(&channel, m).await? {
                            algorithms.insert(algorithm(&d));
                            if keep(&d) {
                                add(blob_path(&d), Record::Blob(Box::new(d)));
                            }
                        }
                    }
                    let mut chosen = None;
                    if !args.skip_manifest_json {
                        matching.sort_by_key(|(rank, _)| *rank);
                        match matching.first() {
                            Some((_, first)) => {
                                let d = first.digest().to_string();
                                docker.retain(|(existing, _)| *existing != d);
                                docker.push((
                                    d.clone(),
                                    DockerManifest {
                                        manifest: first.clone(),
                                        names: Vec::new(),
                                    },
                                ));
                                chosen = Some(d);
                            }
                            None => bail!("no manifest found for platform: not found"),
                        }
                    }
                    resolved.insert(digest.clone(), chosen.clone());
                    chosen
                }
            };
            if let Some(d) = chosen {
                if !name.is_empty() {
                    if let Some((_, m)) = docker.iter_mut().find(|(x, _)| *x == d) {
                        m.names.push(name);
                    }
                }
            }
        } else {
            bail!("only manifests may be exported: invalid argument");
        }
    }
    if !docker.is_empty() {
        let mut entries = Vec::new();
        for (_, m) in &docker {
            let blob = oci::read_blob(&channel, m.manifest.digest().as_ref())
                .await
                .map_err(|err| anyhow!("unable to create manifests file: {err}"))?;
            // Read as Go reads any JSON into a manifest: what is not there is empty.
            let manifest: serde_json::Value = serde_json::from_slice(&blob)
                .map_err(|err| anyhow!("unable to create manifests file: {err}"))?;
            let digest_at = |value: &serde_json::Value| {
                value["digest"].as_str().unwrap_or_default().to_string()
            };
            let config = digest_at(&manifest["config"]);
            validate_digest(&config).map_err(|err| {
                anyhow!(
                    "unable to create manifests file: invalid manifest \"{}\": {err}",
                    m.manifest.digest()
                )
            })?;
            let layers: Vec<String> = manifest["layers"]
                .as_array()
                .map(|layers| layers.iter().map(|l| digest_path(&digest_at(l))).collect())
                .unwrap_or_default();
            let mut tags = Vec::new();
            for name in &m.names {
                tags.push(
                    oci::familiarize_reference(name)
                        .map_err(|err| anyhow!("unable to create manifests file: {err}"))?,
                );
            }
            entries.push(Json::Object(vec![
                ("Config".to_string(), Json::string(digest_path(&config))),
                ("RepoTags".to_string(), Json::strings(&tags)),
                ("Layers".to_string(), Json::strings(&layers)),
            ]));
        }
        add(
            "manifest.json".to_string(),
            Record::Bytes(Json::Array(entries).to_compact().into_bytes(), 0o644),
        );
    }
    if !algorithms.is_empty() {
        records.entry("blobs/".to_string()).or_insert(Record::Dir);
        for algorithm in algorithms {
            records
                .entry(format!("blobs/{algorithm}/"))
                .or_insert(Record::Dir);
        }
    }
    for (name, record) in &records {
        write_record(&channel, &mut writer, &out, name, record).await?;
    }
    // The end of the archive: two zero blocks.
    writer
        .write_all(&[0u8; 1024])
        .and_then(|_| writer.flush())
        .map_err(|err| write_failure(&out, &err))?;
    Ok(())
}

/// Every descriptor reachable from `top`, itself first (containerd's `getRecords` walk).
async fn walk(channel: &NamespacedChannel, top: &Descriptor) -> anyhow::Result<Vec<Descriptor>> {
    let mut found = Vec::new();
    let mut pending = vec![top.clone()];
    while let Some(d) = pending.pop() {
        let media_type = d.media_type().to_string();
        let children: Vec<Descriptor> = if oci::is_manifest(&media_type) {
            let blob = oci::read_blob(channel, d.digest().as_ref()).await?;
            let m = ImageManifest::from_reader(&blob[..])?;
            let mut c = vec![m.config().clone()];
            c.extend(m.layers().iter().cloned());
            c
        } else if oci::is_index(&media_type) {
            let blob = oci::read_blob(channel, d.digest().as_ref()).await?;
            ImageIndex::from_reader(&blob[..])?.manifests().clone()
        } else {
            Vec::new()
        };
        found.push(d);
        pending.extend(children.into_iter().rev());
    }
    Ok(found)
}

fn header(name: &str, size: u64, mode: u32, dir: bool) -> anyhow::Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    header.set_path(name)?;
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    header.set_device_major(0)?;
    header.set_device_minor(0)?;
    // The checksum as Go's archive/tar writes it: six octal digits, NUL, space.
    let bytes = header.as_mut_bytes();
    bytes[148..156].fill(b' ');
    let sum: u32 = bytes.iter().map(|b| u32::from(*b)).sum();
    bytes[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(header)
}

fn pad(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// A failed write of the archive; on stdout whose reader went away, ctr ends by SIGPIPE, as
/// containerd's does.
fn write_failure(out: &str, err: &std::io::Error) -> anyhow::Error {
    if out == "-" {
        return super::content::stdout_failure(err);
    }
    anyhow!("write {out}: {}", os_error_text(err))
}

async fn write_record(
    channel: &NamespacedChannel,
    out: &mut Box<dyn Write>,
    out_name: &str,
    name: &str,
    record: &Record,
) -> anyhow::Result<()> {
    let io = |err: std::io::Error| write_failure(out_name, &err);
    match record {
        Record::Dir => out
            .write_all(header(name, 0, 0o755, true)?.as_bytes())
            .map_err(io),
        Record::Bytes(data, mode) => {
            out.write_all(header(name, data.len() as u64, *mode, false)?.as_bytes())
                .map_err(io)?;
            out.write_all(data).map_err(io)?;
            out.write_all(&vec![0u8; pad(data.len() as u64)])
                .map_err(io)
        }
        Record::Blob(d) => {
            let size = d.size();
            out.write_all(header(name, size, 0o444, false)?.as_bytes())
                .map_err(io)?;
            let digest = d.digest().to_string();
            let mut stream = ContentClient::new(channel.clone())
                .read(ReadContentRequest {
                    digest: digest.clone(),
                    offset: 0,
                    size: 0,
                })
                .await
                .map_err(|s| anyhow!("failed to get reader: {}", RpcError::from(s)))?
                .into_inner();
            let mut hasher = sha2::Sha256::new();
            let mut copied: u64 = 0;
            while let Some(chunk) = stream
                .message()
                .await
                .map_err(|s| anyhow!("failed to copy to tar: {}", RpcError::from(s)))?
            {
                hasher.update(&chunk.data);
                copied += chunk.data.len() as u64;
                if copied > size {
                    bail!("unexpected copy size for {name}");
                }
                out.write_all(&chunk.data).map_err(io)?;
            }
            let got = format!("sha256:{:x}", hasher.finalize());
            if digest.starts_with("sha256:") && got != digest {
                bail!("unexpected digest {got} copied");
            }
            if copied != size {
                bail!("unexpected copy size for {name}");
            }
            out.write_all(&vec![0u8; pad(size)]).map_err(io)
        }
    }
}
