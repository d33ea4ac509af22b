//! Whiteouts and opaque directories, deleting (Plain) or the overlayfs way (Overlay).

use std::collections::HashSet;
use std::os::fd::AsFd;

use rustix::fs::{
    chownat, fsetxattr, mknodat, statat, AtFlags, Dir, FileType, Gid, Mode, Uid, XattrFlags,
};
use rustix::io::Errno;

use super::{fail, root, ApplyError, Layout, Unpacker};

impl Unpacker {
    /// `.wh.<name>` in `parent` (the member's cleaned path is `path`).
    pub(super) fn whiteout(
        &mut self,
        path: &[u8],
        parent: &[u8],
        name: &[u8],
    ) -> Result<(), ApplyError> {
        self.footprint.whiteouts = true;
        match self.layout {
            Layout::Plain { .. } => {
                let parent_fd = match self.dir_fd(parent, false) {
                    Ok(fd) => fd,
                    // Nothing there, so nothing to delete.
                    Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(()),
                    Err(e) => return Err(fail("opening the parent of", path)(e)),
                };
                self.remove(parent_fd.as_fd(), name)
                    .map_err(fail("deleting the whiteout target of", path))
            }
            Layout::Overlay { .. } => {
                let parent_fd = self
                    .dir_fd(parent, true)
                    .map_err(fail("creating the parent directories of", path))?;
                let parent_fd = parent_fd.as_fd();
                // overlayfs' whiteout: a character device 0:0 under the deleted name.
                self.create(parent_fd, name, || {
                    mknodat(parent_fd, name, FileType::CharacterDevice, Mode::empty(), 0)
                })
                .map_err(fail("creating the whiteout for", path))?;
                let (uid, gid) = (Uid::from_raw(self.meta.uid), Gid::from_raw(self.meta.gid));
                chownat(
                    parent_fd,
                    name,
                    Some(uid),
                    Some(gid),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(fail("changing the owner of", path))
            }
        }
    }

    /// `.wh..wh..opq` in `dir`.
    pub(super) fn opaque(&mut self, dir: &[u8]) -> Result<(), ApplyError> {
        self.footprint.whiteouts = true;
        match &self.layout {
            Layout::Plain { .. } => self
                .clear_lower_children(dir)
                .map_err(fail("making opaque", dir)),
            Layout::Overlay { .. } => {
                let fd = self.dir_fd(dir, true).map_err(fail("creating", dir))?;
                let fd = root::open_dir_rdonly(fd.as_fd()).map_err(fail("opening", dir))?;
                fsetxattr(&fd, c"trusted.overlay.opaque", b"y", XattrFlags::empty())
                    .map_err(fail("making opaque", dir))
            }
        }
    }

    /// Plain opaque directory: deletes everything below `dir` that this layer did not write
    /// (so far, or as ancestors of what it wrote). A path with a symlink on the way is left
    /// alone: the layer's own names would not match what is really there.
    fn clear_lower_children(&mut self, dir: &[u8]) -> Result<(), Errno> {
        let Layout::Plain { written } = &self.layout else {
            return Ok(());
        };
        self.cache = None;
        let mut pending = vec![dir.to_vec()];
        let mut child = Vec::new();
        while let Some(rel) = pending.pop() {
            let fd = match self.root.dir_no_symlinks(&rel) {
                Ok(fd) => fd,
                Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) => continue,
                Err(e) => return Err(e),
            };
            let mut listing = Dir::new(fd)?;
            while let Some(entry) = listing.next() {
                let entry = entry?;
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                child.clear();
                child.extend_from_slice(&rel);
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend_from_slice(name);
                let fd = listing.fd()?;
                if !written.contains(&child) {
                    root::remove_all(fd, name)?;
                    continue;
                }
                let is_dir = match entry.file_type() {
                    FileType::Unknown => {
                        let st = statat(fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
                        FileType::from_raw_mode(st.st_mode) == FileType::Directory
                    }
                    t => t == FileType::Directory,
                };
                if is_dir {
                    pending.push(child.clone());
                }
            }
        }
        Ok(())
    }
}

/// Adds `path` and its ancestors to `written`.
pub(super) fn record(written: &mut HashSet<Vec<u8>>, path: &[u8]) {
    let mut end = path.len();
    loop {
        if !written.insert(path[..end].to_vec()) {
            return;
        }
        match path[..end].iter().rposition(|&b| b == b'/') {
            Some(i) => end = i,
            None => return,
        }
    }
}
