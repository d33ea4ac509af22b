//! Moving a layer extracted ahead of time into the directory it was meant for.
//!
//! A layer applied with [`Target::Overlay`] and no lowers into an empty staging directory is
//! the same tree an apply to another empty directory would write, as long as its [`Footprint`]
//! shows nothing that depends on the target: whiteouts (a plain target deletes instead of
//! marking) and, for an overlay target, parent directories the layer does not list (they copy
//! the lowers' metadata). Then the staged entries are renamed into the target one by one (the
//! target directory itself stays: the snapshotter made it) and the staged root's metadata is
//! carried over.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{
    fchmod, fchown, fstat, futimens, renameat_with, Dir, Gid, Mode, OFlags, RenameFlags, Uid,
};
use rustix::io::Errno;

use super::{overlay, ApplyError, Footprint, Target};

/// Why a staged layer was not moved; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAdopted {
    /// The layer's footprint differs by target kind (see the module's text).
    Footprint,
    /// The staging and target directories are on different file systems.
    OtherFileSystem,
    /// The target directory is not empty.
    TargetNotEmpty,
    /// The staging carries what it inherited from where it was made (an SELinux label, an ACL),
    /// or the target has a default ACL: files made in one place would not be the files made in
    /// the other.
    Inherited,
}

/// Moves the tree staged in `staged` (an apply into an empty directory with
/// `Target::Overlay` and no lowers, whose footprint is `footprint`) into `target`. `Ok(Err(_))`:
/// not possible, nothing changed. `Err(_)`: it failed part way; the target holds part of the
/// layer (a normal apply over it writes the rest and replaces what is there).
pub fn adopt(
    staged: &Path,
    target: &Target<'_>,
    footprint: Footprint,
) -> Result<Result<(), NotAdopted>, ApplyError> {
    let fits = match target {
        Target::Plain(_) => !footprint.whiteouts,
        Target::Overlay { .. } => !footprint.implicit_dirs,
    };
    if !fits {
        return Ok(Err(NotAdopted::Footprint));
    }
    let from = open_dir(staged)?;
    let to = open_dir(target.dir())?;
    let failed = |op: &'static str| {
        move |e: Errno| ApplyError::Entry {
            path: "/".to_string(),
            op,
            source: e.into(),
        }
    };
    let from_stat = fstat(&from).map_err(failed("inspecting the staged layer"))?;
    if let Err(why) = place(&from, &to).map_err(failed("inspecting the target"))? {
        return Ok(Err(why));
    }
    let inherited = [SELINUX_LABEL, ACL_PREFIX]
        .iter()
        .any(|p| has_xattr_prefix(&from, p))
        || has_xattr_prefix(&to, DEFAULT_ACL);
    if inherited {
        return Ok(Err(NotAdopted::Inherited));
    }
    for name in names_of(&from).map_err(failed("listing the staged layer"))? {
        // NOREPLACE: the target was empty a moment ago; anything there now is not ours to
        // replace.
        renameat_with(&from, &name[..], &to, &name[..], RenameFlags::NOREPLACE).map_err(|e| {
            ApplyError::Entry {
                path: format!("/{}", String::from_utf8_lossy(&name)),
                op: "moving the staged entry",
                source: e.into(),
            }
        })?;
    }
    // The root's own metadata, in apply's order: owner, xattrs, mode, times.
    if footprint.root_meta {
        fchown(
            &to,
            Some(Uid::from_raw(from_stat.st_uid)),
            Some(Gid::from_raw(from_stat.st_gid)),
        )
        .map_err(failed("setting the owner of"))?;
    }
    // Xattrs the layer set on the root (its `./` member's, an opaque marker): the staged root has
    // no others (nothing inherited, checked above).
    if footprint.root_meta || footprint.whiteouts {
        overlay::copy_xattrs_but(from.as_fd(), to.as_fd(), b"")
            .map_err(failed("setting the xattrs of"))?;
    }
    if footprint.root_meta {
        fchmod(&to, Mode::from_raw_mode(from_stat.st_mode & 0o7777))
            .map_err(failed("setting the mode of"))?;
        futimens(&to, &overlay::timestamps(&from_stat)).map_err(failed("setting the times of"))?;
    }
    Ok(Ok(()))
}

/// Whether a staging made in `beside` (or in a directory of its file system) could be moved into
/// `target` as far as the place goes: `target` is an empty directory on the same file system.
/// For a caller that wants to know before it waits for a staging; [`adopt`] checks it again.
pub fn place_fits(beside: &Path, target: &Path) -> bool {
    let (Ok(from), Ok(to)) = (open_dir(beside), open_dir(target)) else {
        return false;
    };
    matches!(place(&from, &to), Ok(Ok(())))
}

/// `to` empty and on the file system of `from`.
fn place(from: &OwnedFd, to: &OwnedFd) -> Result<Result<(), NotAdopted>, Errno> {
    if fstat(from)?.st_dev != fstat(to)?.st_dev {
        return Ok(Err(NotAdopted::OtherFileSystem));
    }
    if !names_of(to)?.is_empty() {
        return Ok(Err(NotAdopted::TargetNotEmpty));
    }
    Ok(Ok(()))
}

const SELINUX_LABEL: &[u8] = b"security.selinux";
const ACL_PREFIX: &[u8] = b"system.posix_acl_";
const DEFAULT_ACL: &[u8] = b"system.posix_acl_default";

/// Whether `dir` has an xattr whose name starts with `prefix`.
fn has_xattr_prefix(dir: &OwnedFd, prefix: &[u8]) -> bool {
    let mut names = vec![0u8; 64 << 10];
    let len = match rustix::fs::flistxattr(dir, &mut names[..]) {
        Ok(len) => len,
        Err(Errno::NOTSUP) => return false,
        // Unreadable, or more names than the buffer holds: assume the worst.
        Err(_) => return true,
    };
    names[..len]
        .split(|&b| b == 0)
        .any(|name| name.starts_with(prefix))
}

fn open_dir(path: &Path) -> Result<OwnedFd, ApplyError> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ApplyError::OpenTarget {
        path: path.to_owned(),
        source: e.into(),
    })
}

/// The entries of a directory, `.` and `..` left out.
fn names_of(dir: &OwnedFd) -> Result<Vec<Vec<u8>>, Errno> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}
