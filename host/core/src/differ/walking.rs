//! `io.containerd.differ.v1.walking`: applies a layer by extracting its tar into the mounted
//! snapshot, and makes a layer by walking two mounted snapshots side by side (the work itself is
//! in `rcontainerd-archive`; this module mounts, reads and writes the content store, and leases).

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use rcontainerd_archive::apply::{self, Compression, Target};
use rcontainerd_archive::diff::{self as tree_diff, DiffCompression};
use rcontainerd_metadata::{Descriptor, Resource};
use rcontainerd_mount::{read_only, Mount, TempMount};
use rcontainerd_pkg::errdefs::{Error, Kind, Result};

use super::layer::LayerReader;
use super::sink::IngestSink;
use super::{DiffContext, DiffOptions, Differ};
use crate::leases::CallLease;

/// What a layer is once applied: always the uncompressed tar.
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The label containerd puts on a compressed layer it made: the digest of its tar.
const UNCOMPRESSED_LABEL: &str = "containerd.io/uncompressed";
/// Largest pieces the tar writer hands the content store.
const WRITE_BUFFER: usize = 1 << 20;

pub struct Walking {
    /// Where snapshots are mounted for a moment (below the plugin's state directory).
    tmpmounts: PathBuf,
}

impl Walking {
    /// A differ mounting below `state`; clears what a crashed daemon left mounted there.
    pub fn new(state: &Path) -> Result<Walking> {
        let tmpmounts = state.join("tmpmounts");
        let stuck = rcontainerd_mount::unmount_all_under(&tmpmounts);
        if let Some(point) = stuck.first() {
            return Err(Error::internal(format!(
                "a temporary mount of a previous run stays mounted at {}",
                point.display()
            )));
        }
        if let Ok(entries) = std::fs::read_dir(&tmpmounts) {
            for entry in entries.flatten() {
                // rmdir only: nothing is mounted any more, so these are empty mount points.
                let _ = std::fs::remove_dir(entry.path());
            }
        }
        Ok(Walking { tmpmounts })
    }

    fn mount(&self, mounts: &[Mount]) -> Result<TempMount> {
        TempMount::new(&self.tmpmounts, mounts)
            .map_err(|e| Error::unknown(format!("failed to mount: {e}")))
    }
}

/// The upper and lower directories of a single overlay mount with an upper directory: a layer
/// is then extracted straight into the upper directory, with overlay whiteouts.
fn overlay_dirs(mounts: &[Mount]) -> Option<(PathBuf, Vec<PathBuf>)> {
    let [m] = mounts else { return None };
    if m.mount_type != "overlay" {
        return None;
    }
    let upper = m.options.iter().find_map(|o| o.strip_prefix("upperdir="))?;
    let lowers = m
        .options
        .iter()
        .find_map(|o| o.strip_prefix("lowerdir="))
        .map(|l| l.split(':').map(PathBuf::from).collect())
        .unwrap_or_default();
    Some((PathBuf::from(upper), lowers))
}

/// The directory of a bind mount (how a snapshotter hands out a snapshot with no parent).
fn bind_dir(mounts: &[Mount]) -> Option<PathBuf> {
    let [m] = mounts else { return None };
    let bind = m.mount_type == "bind" && m.options.iter().any(|o| o == "bind" || o == "rbind");
    let read_only = m.options.iter().any(|o| o == "ro");
    (bind && !read_only).then(|| PathBuf::from(&m.source))
}

/// The layer applied by moving in what early unpack extracted while its blob was written, when
/// there is such a staging and it fits the target; `None`: apply as usual.
fn adopt_early(
    cx: &DiffContext<'_>,
    layer: &Descriptor,
    compression: Compression,
    size: u64,
    mounts: &[Mount],
) -> Option<Descriptor> {
    let early = cx.early?;
    let (plain, overlay) = (bind_dir(mounts), overlay_dirs(mounts));
    let target = match (&plain, &overlay) {
        (Some(dir), _) => Target::Plain(dir),
        (None, Some((upper, lowers))) => Target::Overlay {
            upper,
            lowers: lowers.clone(),
        },
        (None, None) => return None,
    };
    // The cheap refusals first: a claim waits for the staging to finish.
    if !apply::place_fits(early.dir(), target.dir()) {
        early.discard(cx.namespace, &layer.digest);
        return None;
    }
    let staged = early.claim(cx.namespace, &layer.digest, size, compression, cx.cancelled)?;
    match apply::adopt(&staged.dir, &target, staged.applied.footprint) {
        Ok(Ok(())) => {
            tracing::debug!(layer = %layer.digest, "early unpack: layer applied from its staging");
            Some(applied_layer(staged.applied.clone()))
        }
        Ok(Err(why)) => {
            tracing::debug!(layer = %layer.digest, ?why, "early unpack: staging not used");
            None
        }
        Err(e) => {
            tracing::warn!(layer = %layer.digest, error = %e,
                "early unpack: moving the staging in failed; applying as usual");
            None
        }
    }
}

/// The answer to an apply: the uncompressed layer (its digest is the diff ID).
fn applied_layer(applied: apply::Applied) -> Descriptor {
    Descriptor {
        media_type: LAYER_TAR.to_string(),
        digest: applied.diff_id,
        size: applied.uncompressed_size as i64,
        annotations: Default::default(),
    }
}

fn cancelled_or(cx: &DiffContext<'_>, e: impl std::fmt::Display) -> Error {
    if cx.is_cancelled() {
        Error::new(Kind::Canceled, "context canceled")
    } else {
        Error::unknown(e.to_string())
    }
}

impl Differ for Walking {
    fn apply(
        &self,
        cx: &DiffContext<'_>,
        layer: &Descriptor,
        mounts: &[Mount],
    ) -> Result<Descriptor> {
        let Ok(compression) = Compression::from_media_type(&layer.media_type) else {
            return Err(Error::unknown(format!(
                "failed to get stream processor for {}: no processor for media-type",
                layer.media_type
            )));
        };
        let (record, reader) = cx
            .content
            .reader(cx.namespace, &layer.digest)
            .map_err(|e| e.context("failed to get reader from content store"))?;
        if layer.size > 0 && layer.size != record.size {
            return Err(Error::failed_precondition(format!(
                "layer {}: the descriptor says {} bytes, the content store holds {}",
                layer.digest, layer.size, record.size
            )));
        }
        if let Some(applied) = adopt_early(cx, layer, compression, record.size as u64, mounts) {
            return Ok(applied);
        }
        let stream = LayerReader::new(reader, record.size as u64, &layer.digest, cx.cancelled);
        let applied = match overlay_dirs(mounts) {
            Some((upper, lowers)) => apply::apply_cancellable(
                stream,
                compression,
                Target::Overlay {
                    upper: &upper,
                    lowers,
                },
                cx.cancelled,
            ),
            None => {
                let mounted = self.mount(mounts)?;
                let applied = apply::apply_cancellable(
                    stream,
                    compression,
                    Target::Plain(mounted.path()),
                    cx.cancelled,
                );
                mounted
                    .release()
                    .map_err(|e| Error::unknown(format!("failed to unmount: {e}")))?;
                applied
            }
        }
        .map_err(|e| cancelled_or(cx, e))?;
        Ok(applied_layer(applied))
    }

    fn diff(
        &self,
        cx: &DiffContext<'_>,
        lower: &[Mount],
        upper: &[Mount],
        options: &DiffOptions,
    ) -> Result<Descriptor> {
        let media_type = if options.media_type.is_empty() {
            LAYER_TAR_GZIP
        } else {
            options.media_type.as_str()
        };
        let compression = match media_type {
            LAYER_TAR => DiffCompression::None,
            LAYER_TAR_GZIP => DiffCompression::Gzip,
            other => {
                return Err(Error::not_implemented(format!(
                    "unsupported diff media type: {other}"
                )))
            }
        };
        let lease = CallLease::new(cx.content.metadata(), cx.namespace, cx.lease);
        lease.check()?;
        let lower_root = self.mount(&read_only(lower))?;
        let upper_root = self.mount(&read_only(upper))?;
        let new_reference = options.reference.is_empty();
        let reference = if new_reference {
            format!("diff-{}", uuid::Uuid::new_v4().simple())
        } else {
            options.reference.clone()
        };
        let mut writer = {
            // The ingest and its lease reference land together for a collection.
            let _gc = cx.content.metadata().hold_off_gc();
            let writer = cx
                .content
                .writer(cx.namespace, &reference, "", 0)
                .map_err(|e| e.context("failed to open writer"))?;
            lease.hold(&Resource::ingest(&reference))?;
            writer
        };
        let written = (|| {
            if !new_reference {
                writer.truncate()?;
            }
            let mut sink = BufWriter::with_capacity(
                WRITE_BUFFER,
                IngestSink {
                    writer: &mut writer,
                    cancelled: cx.cancelled,
                },
            );
            let written =
                tree_diff::write_diff(lower_root.path(), upper_root.path(), &mut sink, compression)
                    .map_err(|e| cancelled_or(cx, format!("failed to write diff: {e}")))?;
            sink.into_inner()
                .map_err(|e| cancelled_or(cx, format!("failed to write diff: {}", e.error())))?;
            Ok::<_, Error>(written)
        })();
        let written = match written {
            Ok(written) => written,
            Err(e) => {
                if new_reference {
                    let _ = writer.abort();
                    let _ = lease.release(&Resource::ingest(&reference));
                }
                return Err(e);
            }
        };
        let mut labels = options.labels.clone();
        if compression == DiffCompression::Gzip {
            labels.insert(UNCOMPRESSED_LABEL.to_string(), written.diff_id.clone());
        }
        let digest = {
            let _gc = cx.content.metadata().hold_off_gc();
            let committed = writer.commit(0, "", labels.clone());
            let digest = match committed {
                Ok(digest) => digest,
                Err(e) if e.is(Kind::AlreadyExists) => writer.digest()?,
                Err(e) => return Err(e.context("failed to commit")),
            };
            lease.swap(&Resource::ingest(&reference), &Resource::content(&digest))?;
            digest
        };
        let mut info = cx.content.info(cx.namespace, &digest)?;
        // A blob that existed before without the label gets it now, as containerd does.
        if let Some(diff_id) = labels.get(UNCOMPRESSED_LABEL) {
            if !info.labels.contains_key(UNCOMPRESSED_LABEL) {
                let path = format!("labels.{UNCOMPRESSED_LABEL}");
                let mut update = info.labels.clone();
                update.insert(UNCOMPRESSED_LABEL.to_string(), diff_id.clone());
                info = cx.content.update(cx.namespace, &digest, update, &[path])?;
            }
        }
        drop(upper_root);
        drop(lower_root);
        Ok(Descriptor {
            media_type: media_type.to_string(),
            digest: info.digest.clone(),
            size: info.size,
            annotations: Default::default(),
        })
    }
}
