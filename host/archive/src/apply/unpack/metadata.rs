//! Owner, xattrs, mode and times of a member, in that order (chown clears setuid/setgid and
//! file capabilities).

use std::os::fd::BorrowedFd;

use rustix::fs::{
    chmodat, chownat, fchmod, fchown, fsetxattr, futimens, lsetxattr, utimensat, AtFlags, Gid,
    Mode, Uid, XattrFlags,
};
use rustix::io::Errno;

use super::{fail, root, ApplyError, Unpacker};

impl Unpacker {
    /// Owner, xattrs, mode and times (deferred for directories) through an open descriptor.
    pub(super) fn fd_meta(
        &mut self,
        fd: BorrowedFd<'_>,
        path: &[u8],
        is_dir: bool,
    ) -> Result<(), ApplyError> {
        let meta = &self.meta;
        fchown(
            fd,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .map_err(fail("changing the owner of", path))?;
        for (name, value) in &meta.xattrs {
            match fsetxattr(fd, name.as_slice(), value, XattrFlags::empty()) {
                Ok(()) => {}
                Err(e) if ignorable_xattr_error(e, name) => {}
                Err(e) => return Err(fail("setting an extended attribute of", path)(e)),
            }
        }
        fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(fail("changing the mode of", path))?;
        if is_dir {
            self.dir_times.push((path.to_vec(), meta.times));
        } else {
            futimens(fd, &meta.times.timestamps()).map_err(fail("setting the times of", path))?;
        }
        Ok(())
    }

    /// Owner, xattrs, mode (`with_mode`; symlinks have none) and times of `name` in `parent`,
    /// for objects that cannot be opened without side effects (symlinks, devices, fifos).
    pub(super) fn at_meta(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        with_mode: bool,
    ) -> Result<(), ApplyError> {
        let meta = &self.meta;
        let no_follow = AtFlags::SYMLINK_NOFOLLOW;
        chownat(
            parent,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            no_follow,
        )
        .map_err(fail("changing the owner of", path))?;
        if !meta.xattrs.is_empty() {
            let target = root::proc_path(parent, name);
            for (xname, value) in &meta.xattrs {
                match lsetxattr(
                    target.as_slice(),
                    xname.as_slice(),
                    value,
                    XattrFlags::empty(),
                ) {
                    Ok(()) => {}
                    Err(e) if ignorable_xattr_error(e, xname) => {}
                    Err(e) => return Err(fail("setting an extended attribute of", path)(e)),
                }
            }
        }
        if with_mode {
            // fchmodat cannot refuse to follow a symlink, but `name` was created as a device or
            // fifo by this very member, just before.
            chmodat(
                parent,
                name,
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )
            .map_err(fail("changing the mode of", path))?;
        }
        utimensat(parent, name, &meta.times.timestamps(), no_follow)
            .map_err(fail("setting the times of", path))
    }
}

/// Attributes the file system cannot hold are dropped, as containerd does: any attribute on a
/// file system without xattr support, `security.*` ones the kernel refuses, and `user.*` ones
/// on symlinks and devices (which Linux does not allow).
fn ignorable_xattr_error(e: Errno, name: &[u8]) -> bool {
    e == Errno::NOTSUP
        || (e == Errno::PERM && (name.starts_with(b"security.") || name.starts_with(b"user.")))
}
