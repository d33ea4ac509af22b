//! Applying an OCI layer (a tar stream) to a directory: the engine of containerd's walking
//! differ's `Diff.Apply`.
//!
//! [`apply`] runs a two-thread pipeline: a producer thread reads the layer and decompresses it
//! into 1 MiB chunks sent over a bounded channel; the calling thread writes the tar members
//! into the target. One of them, the less busy one for the compression at hand, hashes every
//! chunk: the diff ID is the sha256 of the whole uncompressed stream, bytes after the tar's end
//! included. Whichever side fails first stops the other:
//! the consumer drops its end of the channel, the producer reports its error in the channel.
//!
//! # Confinement
//!
//! Nothing is ever created, changed or deleted outside the target directory, whatever the tar
//! says. Member names are cleaned against the root (`../x`, `a/../../x` and `/x` all mean
//! `<root>/x`; see `name`), parent directories are resolved by the kernel with
//! `RESOLVE_IN_ROOT` (a symlink `a -> /etc` followed as a parent leads to `<root>/etc`, a
//! symlink `a -> ../../..` to `<root>`; see `root`), and the last component is never followed.
//! Hard-link targets are cleaned and resolved the same way, so they can only name objects
//! inside the root. Whiteouts resolve like members: they can only delete inside the root.
//! Symlinks are created with their target as is, pointing anywhere: nothing is written
//! through them. What the kernel cannot resolve inside the root is refused with an error: a
//! parent that is a symlink leading nowhere inside the root, a hard link to a missing target.
//!
//! # Members
//!
//! Regular files (also GNU sparse ones, written dense), directories, symlinks, hard links,
//! character and block devices, fifos; other types (sockets...) are an error, PAX global
//! headers are skipped. An existing object of another type is replaced (a directory with its
//! tree); a directory over a directory is merged. Owner, xattrs (PAX `SCHILY.xattr.*`), mode
//! with setuid/setgid/sticky, and access and modification times to the nanosecond are kept,
//! in that order (chown drops setuid and file capabilities); directories get their times once
//! everything is written. A hard link shares its target's inode and so its metadata. Xattrs
//! the file system refuses as unsupported, or `security.*`/`user.*` ones refused as not
//! permitted, are dropped as containerd does. Xattrs on symlinks and devices are set through
//! `/proc/self/fd` (see `root::proc_path`), so they need /proc.
//!
//! # Whiteouts
//!
//! `.wh.<name>` deletes `<name>`; `.wh..wh..opq` makes its directory opaque (the lower layers'
//! entries in it are hidden); other `.wh..wh.*` names (aufs bookkeeping) are skipped. In a
//! [`Target::Plain`] directory that is done by deleting: an opaque directory loses every entry
//! the layer being applied did not write. In a [`Target::Overlay`] upper dir they become what
//! overlayfs reads: a 0:0 character device, the `trusted.overlay.opaque=y` xattr.
//!
//! Extended attributes named `trusted.overlay.*` in the tar are dropped: overlayfs interprets
//! them (redirects, metacopy), and no layer writer emits them.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

mod adopt;
mod decompress;
mod gunzip;
mod meta;
mod name;
mod overlay;
mod root;
mod stream;
mod unpack;

#[cfg(test)]
mod tests;

pub use adopt::{adopt, place_fits, NotAdopted};
use root::Root;
use stream::ChunkReader;
use unpack::Unpacker;

/// How a layer's tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression of a layer from its descriptor's media type: the OCI layer types
    /// (distributable or not) and Docker's schema 2 ones.
    pub fn from_media_type(media_type: &str) -> Result<Compression, ApplyError> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Ok(Compression::Zstd)
            }
            other => Err(ApplyError::UnsupportedMediaType(other.to_owned())),
        }
    }
}

/// Where a layer is applied.
#[derive(Debug, Clone)]
pub enum Target<'a> {
    /// A directory holding the merged content of the layers below (the native snapshotter, or
    /// the first layer of an overlay stack); whiteouts delete.
    Plain(&'a Path),
    /// An overlayfs upper dir over `lowers`, topmost first (the order of overlayfs'
    /// `lowerdir=`); whiteouts are written the overlayfs way and the lowers are read (never
    /// written) for the metadata of parent directories the layer does not list and for
    /// hard-link targets the upper dir lacks.
    Overlay {
        upper: &'a Path,
        lowers: Vec<PathBuf>,
    },
}

impl Target<'_> {
    /// The directory written into: the plain directory, or the upper dir.
    pub fn dir(&self) -> &Path {
        match self {
            Target::Plain(dir) => dir,
            Target::Overlay { upper, .. } => upper,
        }
    }
}

/// The outcome of a successful [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `sha256:<hex>` of the uncompressed stream: the layer's diff ID.
    pub diff_id: String,
    /// Bytes read from the layer.
    pub compressed_size: u64,
    /// Bytes of the uncompressed stream (the tar and anything after its end).
    pub uncompressed_size: u64,
    /// Tar members read, whiteouts and skipped ones included.
    pub entries: u64,
    pub footprint: Footprint,
}

/// What an apply did that depends on the directory it was applied to: a layer extracted into
/// an empty directory ahead of time can stand for an apply to another empty directory only when
/// these allow it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// A `./` member set the root directory's metadata.
    pub root_meta: bool,
    /// Whiteouts or opaque markers were met (they are written differently per [`Target`]).
    pub whiteouts: bool,
    /// A parent directory the layer does not list was created (an overlay target copies its
    /// metadata from the lowers).
    pub implicit_dirs: bool,
}

/// Why [`apply`] failed. A failed apply may have written part of the layer.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The media type names no layer format apply knows. (containerd answers with gRPC
    /// NotImplemented and this message.)
    #[error("unsupported diff media type: {0}")]
    UnsupportedMediaType(String),
    #[error("opening the target directory {path}: {source}")]
    OpenTarget {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading the layer itself failed.
    #[error("reading the layer: {0}")]
    Read(#[source] io::Error),
    /// The layer is not valid gzip or zstd.
    #[error("decompressing the layer: {0}")]
    Decompress(#[source] io::Error),
    /// The uncompressed stream is not a valid tar.
    #[error("reading the layer's tar stream: {0}")]
    Tar(#[source] io::Error),
    /// A tar member could not be written. `path` is the cleaned member name, from the root.
    #[error("{op} {path}: {source}")]
    Entry {
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {reason}")]
    InvalidEntry { path: String, reason: &'static str },
    /// A member type apply does not write (e.g. a socket); containerd refuses them as well.
    #[error("{path}: unsupported tar entry type {kind:#04x}")]
    UnsupportedEntry { path: String, kind: u8 },
    #[error("the layer's decompression thread panicked")]
    ThreadPanicked,
    /// The caller's cancel flag was raised (its client went away); the layer is half applied.
    #[error("cancelled")]
    Cancelled,
}

/// Applies the layer read from `layer`, compressed as `compression`, to `target`.
///
/// Returns once the whole stream is read; the digest covers everything the decompressor
/// yields. On error, returns the first failure (a decompression error before the tar error it
/// causes) after the decompression thread has stopped: when the writing side fails, the
/// producer stops before its next read of `layer` (a read already blocked in `layer` is waited
/// for).
pub fn apply<R: Read + Send>(
    layer: R,
    compression: Compression,
    target: Target<'_>,
) -> Result<Applied, ApplyError> {
    apply_cancellable(layer, compression, target, &AtomicBool::new(false))
}

/// [`apply`], stopping with [`ApplyError::Cancelled`] before the next member once `cancelled`
/// is raised: a small layer is read whole long before its files are written, so the reader
/// alone could not stop it.
pub fn apply_cancellable<R: Read + Send>(
    layer: R,
    compression: Compression,
    target: Target<'_>,
    cancelled: &AtomicBool,
) -> Result<Applied, ApplyError> {
    let unpacker = match &target {
        Target::Plain(dir) => Unpacker::plain(open_root(dir)?),
        Target::Overlay { upper, lowers } => {
            let lowers = lowers
                .iter()
                .map(|l| open_root(l))
                .collect::<Result<Vec<_>, _>>()?;
            Unpacker::overlay(open_root(upper)?, lowers)
        }
    };
    let (tx, rx) = mpsc::sync_channel(decompress::CHANNEL_DEPTH);
    let (pool_tx, pool_rx) = mpsc::channel();
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        let stop = &stop;
        let producer = thread::Builder::new()
            .name("layer-decompress".into())
            .spawn_scoped(scope, move || {
                decompress::produce(layer, compression, tx, pool_rx, stop)
            })
            .map_err(|e| ApplyError::Decompress(io::Error::other(e)))?;
        let hash = !decompress::hashes_in_producer(compression);
        let reader = ChunkReader::new(rx, pool_tx, hash);
        let result = unpack_all(reader, unpacker, cancelled);
        // On success the producer is done already. On failure it stops before its next read
        // of the layer (or its next send: `unpack_all` has dropped the receiving end).
        stop.store(true, Ordering::Relaxed);
        let compressed_size = producer.join().map_err(|_| ApplyError::ThreadPanicked);
        let (diff_id, uncompressed_size, entries, footprint) = result?;
        Ok(Applied {
            diff_id,
            compressed_size: compressed_size?,
            uncompressed_size,
            entries,
            footprint,
        })
    })
}

fn open_root(path: &Path) -> Result<Root, ApplyError> {
    Root::open(path).map_err(|source| ApplyError::OpenTarget {
        path: path.to_owned(),
        source,
    })
}

/// Reads the tar from `reader` into `unpacker`, then the rest of the stream. Returns the diff
/// ID, the uncompressed size, the member count and the footprint.
fn unpack_all(
    reader: ChunkReader,
    mut unpacker: Unpacker,
    cancelled: &AtomicBool,
) -> Result<(String, u64, u64, Footprint), ApplyError> {
    let mut archive = tar::Archive::new(reader);
    let mut entries = 0;
    let result = unpack_entries(&mut archive, &mut unpacker, &mut entries, cancelled);
    let mut reader = archive.into_inner();
    // The producer's error comes first: the tar error it caused is only a consequence.
    if let Some(e) = reader.take_failure() {
        return Err(e);
    }
    result?;
    reader.drain()?;
    let footprint = unpacker.finish()?;
    let (digest, size) = reader.digest();
    Ok((digest, size, entries, footprint))
}

fn unpack_entries(
    archive: &mut tar::Archive<ChunkReader>,
    unpacker: &mut Unpacker,
    count: &mut u64,
    cancelled: &AtomicBool,
) -> Result<(), ApplyError> {
    for entry in archive.entries().map_err(ApplyError::Tar)? {
        if cancelled.load(Ordering::Relaxed) {
            return Err(ApplyError::Cancelled);
        }
        let mut entry = entry.map_err(ApplyError::Tar)?;
        *count += 1;
        unpacker.entry(&mut entry)?;
    }
    Ok(())
}
