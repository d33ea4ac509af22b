//! Reading the lower layers of an overlay target: finding what a path is in the merged view
//! below the upper dir, and copying it up (metadata for directories, the whole object for a
//! hard link's target).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{
    chownat, fchmod, fchown, fgetxattr, flistxattr, fsetxattr, fstat, futimens, mknodat, openat,
    readlinkat, symlinkat, utimensat, AtFlags, FileType, Gid, Mode, OFlags, Stat, Timespec,
    Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;

use super::meta::OVERLAY_XATTR_PREFIX;
use super::root::{self, Root};

/// The lower directories, topmost first (overlayfs' `lowerdir=` order).
pub(super) struct Lowers {
    roots: Vec<Root>,
}

/// Something found in a lower layer.
pub(super) struct Found {
    /// `O_PATH`, not following a final symlink.
    pub(super) fd: OwnedFd,
    pub(super) stat: Stat,
    /// Opened for reading, for a regular file (its contents are copied up).
    readable: Option<OwnedFd>,
}

impl Lowers {
    pub(super) fn new(roots: Vec<Root>) -> Self {
        Lowers { roots }
    }

    /// What the merged view below `upper` shows at `rel`: the topmost lower's object there,
    /// or `None` when no lower has one or something hides it, as overlayfs decides: a
    /// whiteout (a 0:0 character device) at `rel`, or above it (in `upper` or a higher lower)
    /// an ancestor that is not a directory or is an opaque one.
    pub(super) fn find(&self, upper: &Root, rel: &[u8]) -> Result<Option<Found>, Errno> {
        if hides_below(upper, rel)? {
            return Ok(None);
        }
        for lower in &self.roots {
            match lower.lookup(rel) {
                Ok(fd) => {
                    let stat = fstat(&fd)?;
                    if is_whiteout(&stat) {
                        return Ok(None);
                    }
                    let readable = match FileType::from_raw_mode(stat.st_mode) {
                        FileType::RegularFile => Some(lower.open_file(rel)?),
                        _ => None,
                    };
                    return Ok(Some(Found { fd, stat, readable }));
                }
                Err(Errno::NOENT) | Err(Errno::NOTDIR) => {}
                Err(e) => return Err(e),
            }
            if hides_below(lower, rel)? {
                return Ok(None);
            }
        }
        Ok(None)
    }
}

/// Whether a layer hides `rel` in the layers below it through one of `rel`'s ancestors: a
/// non-directory (whiteout or file) or an opaque directory.
fn hides_below(layer: &Root, rel: &[u8]) -> Result<bool, Errno> {
    let ancestors = rel
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'/')
        .map(|(i, _)| &rel[..i]);
    for ancestor in ancestors {
        let fd = match layer.lookup(ancestor) {
            Ok(fd) => fd,
            // Neither this ancestor nor the deeper ones are in this layer.
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(e),
        };
        let stat = fstat(&fd)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory || is_opaque(&fd)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether directory `dir` (`O_PATH`) carries overlayfs' opaque flag.
fn is_opaque(dir: &OwnedFd) -> Result<bool, Errno> {
    let dir = root::open_dir_rdonly(dir.as_fd())?;
    let mut value = [0u8; 1];
    match fgetxattr(&dir, c"trusted.overlay.opaque", &mut value[..]) {
        Ok(1) => Ok(value[0] == b'y'),
        Ok(_) | Err(Errno::NODATA) | Err(Errno::NOTSUP) | Err(Errno::RANGE) => Ok(false),
        Err(e) => Err(e),
    }
}

/// An overlayfs whiteout: a character device 0:0.
pub(super) fn is_whiteout(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice && stat.st_rdev == 0
}

// `c_long` is i64 only on 64-bit targets.
#[allow(clippy::useless_conversion)]
pub(super) fn stat_times(stat: &Stat) -> ((i64, i64), (i64, i64)) {
    (
        (i64::from(stat.st_atime), stat.st_atime_nsec as i64),
        (i64::from(stat.st_mtime), stat.st_mtime_nsec as i64),
    )
}

pub(super) fn timestamps(stat: &Stat) -> Timestamps {
    let (a, m) = stat_times(stat);
    Timestamps {
        last_access: Timespec {
            tv_sec: a.0,
            tv_nsec: a.1 as _,
        },
        last_modification: Timespec {
            tv_sec: m.0,
            tv_nsec: m.1 as _,
        },
    }
}

/// Copies the extended attributes of `src` to `dst` (both opened for reading at least),
/// except overlayfs' own (`trusted.overlay.*`: a lower directory's opaque flag must not make
/// the upper one opaque too). Attributes the destination refuses are skipped.
pub(super) fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> Result<(), Errno> {
    copy_xattrs_but(src, dst, OVERLAY_XATTR_PREFIX)
}

/// Copies the extended attributes of `src` to `dst` except those whose name starts with `skip`
/// (all of them when `skip` is empty). Attributes the destination refuses are skipped.
pub(super) fn copy_xattrs_but(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    skip: &[u8],
) -> Result<(), Errno> {
    let size = match rustix::fs::flistxattr_query(src) {
        Ok(0) | Err(Errno::NOTSUP) => return Ok(()),
        Ok(n) => n,
        Err(e) => return Err(e),
    };
    let mut names = vec![0u8; size];
    let len = flistxattr(src, &mut names[..])?;
    names.truncate(len);
    let mut value = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if !skip.is_empty() && name.starts_with(skip) {
            continue;
        }
        let size = match rustix::fs::fgetxattr_query(src, name) {
            Ok(n) => n,
            Err(Errno::NODATA) => continue,
            Err(e) => return Err(e),
        };
        value.resize(size, 0);
        let len = fgetxattr(src, name, &mut value[..])?;
        match fsetxattr(dst, name, &value[..len], XattrFlags::empty()) {
            Ok(()) | Err(Errno::NOTSUP) | Err(Errno::PERM) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Copies the directory's metadata found in a lower onto the (new, empty) upper directory
/// `dst`, except its times, which the caller sets once the directory's children are written.
pub(super) fn copy_dir_meta(found: &Found, dst: BorrowedFd<'_>) -> Result<(), Errno> {
    let src = root::open_dir_rdonly(found.fd.as_fd())?;
    fchown(dst, Some(uid(&found.stat)), Some(gid(&found.stat)))?;
    copy_xattrs(src.as_fd(), dst)?;
    fchmod(dst, Mode::from_raw_mode(found.stat.st_mode))?;
    Ok(())
}

fn uid(stat: &Stat) -> Uid {
    Uid::from_raw(stat.st_uid)
}

fn gid(stat: &Stat) -> Gid {
    Gid::from_raw(stat.st_gid)
}

/// Copies the non-directory `found` (the target of a hard link the layer makes) up into the
/// upper dir as `name` in `parent`: contents, ownership, mode, times; xattrs for regular files.
///
/// A hard link cannot span layers (each is its own directory tree and the lower must stay
/// untouched), so the upper gets its own copy of the target and the new link points at that
/// copy. The merged view is the same: the copy shadows an identical lower file.
pub(super) fn copy_up(found: Found, parent: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    let stat = &found.stat;
    let no_follow = AtFlags::SYMLINK_NOFOLLOW;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => {
            let src = found.readable.ok_or(Errno::BADF)?;
            let dst = openat(
                parent,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let (mut src, mut dst) = (File::from(src), File::from(dst));
            io::copy(&mut src, &mut dst)
                .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
            fchown(&dst, Some(uid(stat)), Some(gid(stat)))?;
            copy_xattrs(src.as_fd(), dst.as_fd())?;
            fchmod(&dst, Mode::from_raw_mode(stat.st_mode))?;
            futimens(&dst, &timestamps(stat))?;
            return Ok(());
        }
        FileType::Symlink => {
            let target = readlinkat(&found.fd, root::EMPTY, Vec::new())?;
            symlinkat(target.as_c_str(), parent, name)?;
        }
        kind @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
            mknodat(
                parent,
                name,
                kind,
                Mode::from_raw_mode(0o600),
                stat.st_rdev as _,
            )?;
        }
        // Directories cannot be hard linked; sockets are not layer content.
        _ => return Err(Errno::PERM),
    }
    chownat(parent, name, Some(uid(stat)), Some(gid(stat)), no_follow)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::Symlink {
        // Just created by mknodat above, so not a symlink: following is moot.
        rustix::fs::chmodat(
            parent,
            name,
            Mode::from_raw_mode(stat.st_mode),
            AtFlags::empty(),
        )?;
    }
    utimensat(parent, name, &timestamps(stat), no_follow)?;
    Ok(())
}
