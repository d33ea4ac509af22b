//! Hard-link members: the target is cleaned and resolved inside the root like any name; in an
//! overlay, a target only in a lower is copied up first.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use rustix::fs::{linkat, statat, AtFlags};
use rustix::io::Errno;

use super::{fail, invalid, name, overlay, ApplyError, Layout, Unpacker};

impl Unpacker {
    /// A hard link member. Its own owner, xattrs, mode and times are then applied to the inode
    /// it shares with its target, as containerd does (a link member that says `0644 root` takes
    /// the setuid bit off its target too); layer writers give both members the same metadata.
    pub(super) fn hard_link<R: Read>(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ApplyError> {
        let mut target = std::mem::take(&mut self.link);
        match entry.link_name_bytes() {
            // The target is cleaned like any member name: `../../etc/passwd` and `/etc/passwd`
            // both mean `<root>/etc/passwd`.
            Some(link) => name::clean_into(&link, &mut target),
            None => {
                self.link = target;
                return Err(invalid(path, "hard link without a target"));
            }
        }
        let result = self.hard_link_to(parent, name, path, &target);
        self.link = target;
        result?;
        // A link to a symlink is a symlink: it has no mode of its own to set.
        let linked =
            statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).map_err(fail("inspecting", path))?;
        let is_symlink =
            rustix::fs::FileType::from_raw_mode(linked.st_mode) == rustix::fs::FileType::Symlink;
        self.at_meta(parent, name, path, !is_symlink)
    }

    fn hard_link_to(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        target: &[u8],
    ) -> Result<(), ApplyError> {
        if target.is_empty() {
            return Err(invalid(path, "hard link to the root directory"));
        }
        let (_, target_name) = name::split(target);
        let source = self
            .link_source(target)
            .map_err(fail("finding the hard link target of", path))?;
        // linkat without AT_SYMLINK_FOLLOW: a symlink target is linked as the symlink itself.
        let link = || linkat(&*source, target_name, parent, name, AtFlags::empty());
        match link() {
            Err(Errno::EXIST) => {
                let no_follow = AtFlags::SYMLINK_NOFOLLOW;
                let existing = statat(parent, name, no_follow).map_err(fail("inspecting", path))?;
                let wanted =
                    statat(&*source, target_name, no_follow).map_err(fail("inspecting", target))?;
                if (existing.st_dev, existing.st_ino) == (wanted.st_dev, wanted.st_ino) {
                    return Ok(());
                }
                self.remove(parent, name).map_err(fail("replacing", path))?;
                // Resolved again: the removal may have taken the target's directory along.
                let source = self
                    .link_source(target)
                    .map_err(fail("finding the hard link target of", path))?;
                linkat(&*source, target_name, parent, name, AtFlags::empty())
                    .map_err(fail("linking", path))?;
            }
            Err(e) => return Err(fail("linking", path)(e)),
            Ok(()) => {}
        }
        Ok(())
    }

    /// The directory holding the hard-link target `target`. In an overlay, a target only in a
    /// lower is first copied up into the upper dir (see `overlay::copy_up`).
    fn link_source(&mut self, target: &[u8]) -> Result<Rc<OwnedFd>, Errno> {
        let (target_parent, target_name) = name::split(target);
        if matches!(self.layout, Layout::Plain { .. }) {
            return self.dir_fd(target_parent, false);
        }
        match self.dir_fd(target_parent, false) {
            Ok(fd) => match statat(&*fd, target_name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if overlay::is_whiteout(&st) => return Err(Errno::NOENT),
                Ok(_) => return Ok(fd),
                Err(Errno::NOENT) => {}
                Err(e) => return Err(e),
            },
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        self.copy_up(target, target_parent, target_name)
    }

    fn copy_up(
        &mut self,
        target: &[u8],
        target_parent: &[u8],
        target_name: &[u8],
    ) -> Result<Rc<OwnedFd>, Errno> {
        let Layout::Overlay { lowers } = &self.layout else {
            return Err(Errno::NOENT);
        };
        // Found first, so that a missing target leaves no parent directories behind.
        let found = lowers.find(&self.root, target)?.ok_or(Errno::NOENT)?;
        let parent = self.dir_fd(target_parent, true)?;
        overlay::copy_up(found, parent.as_fd(), target_name)?;
        Ok(parent)
    }
}
