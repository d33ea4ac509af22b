//! The target directory as a file descriptor, and the only ways apply reaches into it.
//!
//! Every path below the root is resolved by the kernel with `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)`: `..` stops at the root and a symlink (absolute or relative) met on
//! the way is followed as if the root were `/`, so `a -> /etc` then `a/passwd` reaches
//! `<root>/etc/passwd`, never the host's. Only parent directories are resolved that way; the
//! last component is then handled with an `*at()` call on the parent's descriptor that does not
//! follow it (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `mkdirat`, `symlinkat`, `mknodat`,
//! `unlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`), so nothing is ever written through a
//! symlink, wherever it points.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{openat, openat2, unlinkat, AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How paths below a root are resolved.
const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// A directory every operation stays inside.
pub(super) struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens the target directory. Its own path is trusted (it comes from the snapshotter).
    pub(super) fn open(path: &Path) -> io::Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// An `O_PATH` descriptor of directory `rel` (empty: the root), following symlinks inside
    /// the root.
    pub(super) fn dir(&self, rel: &[u8]) -> Result<OwnedFd, Errno> {
        let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
        openat2(
            &self.fd,
            rel,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
    }

    /// Like [`Root::dir`], but refusing symlinks anywhere on the path.
    pub(super) fn dir_no_symlinks(&self, rel: &[u8]) -> Result<OwnedFd, Errno> {
        let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
        openat2(
            &self.fd,
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE | ResolveFlags::NO_SYMLINKS,
        )
    }

    /// An `O_PATH` descriptor of whatever is at `rel` (not followed if a symlink).
    pub(super) fn lookup(&self, rel: &[u8]) -> Result<OwnedFd, Errno> {
        let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
        openat2(
            &self.fd,
            rel,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
    }
}

impl Root {
    /// A regular file at `rel` opened for reading (not followed if a symlink).
    pub(super) fn open_file(&self, rel: &[u8]) -> Result<OwnedFd, Errno> {
        openat2(
            &self.fd,
            rel,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
    }
}

/// Reopens a directory's `O_PATH` descriptor for reading (listing, fsetxattr, fchmod).
pub(super) fn open_dir_rdonly(dir: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Removes `name` in `parent`, a whole tree if it is a directory, never following a symlink.
/// Missing is fine.
pub(super) fn remove_all(parent: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    match unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        // unlink(2) on a directory: EISDIR on Linux.
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(e),
    }
    let top = open_subdir(parent, name)?;
    // Depth-first with an explicit stack, so that a hostile deep tree cannot overflow ours:
    // (directory, its listing, its name in the directory below it on the stack).
    let mut stack: Vec<(Dir, Vec<u8>)> = vec![(Dir::new(top)?, name.to_vec())];
    while let Some((dir, _)) = stack.last_mut() {
        let Some(entry) = dir.next() else {
            // Listing done, so the directory is empty: remove it from the one below it.
            let (_, name) = stack.pop().unwrap_or_else(|| unreachable!());
            let above = match stack.last() {
                Some((dir, _)) => dir.fd()?,
                None => parent,
            };
            match unlinkat(above, name.as_slice(), AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e),
            }
            continue;
        };
        let entry = entry?;
        let child = entry.file_name();
        if child == c"." || child == c".." {
            continue;
        }
        let fd = dir.fd()?;
        let descend = entry.file_type() == FileType::Directory
            || match unlinkat(fd, child, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => false,
                // A file system without d_type: a directory after all.
                Err(Errno::ISDIR) => true,
                Err(e) => return Err(e),
            };
        if descend {
            let sub = Dir::new(open_subdir(fd, child.to_bytes())?)?;
            stack.push((sub, child.to_bytes().to_vec()));
        }
    }
    Ok(())
}

/// Opens subdirectory `name` of `parent` for listing; a symlink is not followed.
pub(super) fn open_subdir(parent: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// `/proc/self/fd/<parent>/<name>`: the path for the calls that have no `*at()` form
/// (`lsetxattr`, `llistxattr`, `lgetxattr`). Only the `/proc/self/fd/<parent>` magic link is
/// followed, to a directory already resolved inside the root; `name` is one component and the
/// `l*` calls do not follow it.
pub(super) fn proc_path(parent: BorrowedFd<'_>, name: &[u8]) -> Vec<u8> {
    use std::os::fd::AsRawFd;
    let mut path = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
    path.extend_from_slice(name);
    path
}

/// The name of an `O_PATH`-opened object for `*at()` calls that accept `AT_EMPTY_PATH`.
pub(super) const EMPTY: &CStr = c"";
