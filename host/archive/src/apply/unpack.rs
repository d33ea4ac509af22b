//! Writing tar members into the target, one at a time, as files, directories, links and
//! device nodes, and carrying out whiteouts.
//!
//! Every member's parent directory is resolved inside the root (see `root`); the member itself
//! is then created with an `*at()` call that does not follow its name. An existing object of
//! another type is removed first (a directory with its whole tree); a directory over a
//! directory is kept and gets the member's metadata. Metadata goes on in this order: owner
//! (chown clears setuid/setgid and file capabilities), xattrs, mode, times. Directory times are
//! set at the very end, once nothing more is created inside them.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use rustix::fs::{
    chmodat, chownat, fchmod, fchown, fsetxattr, futimens, linkat, lsetxattr, makedev, mkdirat,
    mknodat, openat, statat, symlinkat, utimensat, AtFlags, Dir, FileType, Gid, Mode, OFlags, Uid,
    XattrFlags,
};
use rustix::io::Errno;
use tar::EntryType;

use super::meta::{self, Meta, Times};
use super::name::{self, Kind};
use super::overlay::{self, Lowers};
use super::root::{self, Root};
use super::ApplyError;

/// Size of the buffer file contents pass through.
const COPY_BUFFER: usize = 1 << 20;
/// Mode of parent directories the layer does not list (containerd's too).
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// How whiteouts are carried out.
enum Layout {
    /// Deleting: a whiteout removes the object, an opaque directory loses every child that this
    /// layer did not write. `written` holds each path the layer wrote, and its ancestors.
    Plain { written: HashSet<Vec<u8>> },
    /// Into an overlayfs upper dir: a whiteout is a 0:0 character device, an opaque directory
    /// gets `trusted.overlay.opaque=y`, and the lowers supply parent directories' metadata and
    /// hard-link targets.
    Overlay { lowers: Lowers },
}

pub(super) struct Unpacker {
    root: Root,
    layout: Layout,
    meta: Meta,
    path: Vec<u8>,
    link: Vec<u8>,
    buf: Vec<u8>,
    /// Directories whose times are set at the end.
    dir_times: Vec<(Vec<u8>, Times)>,
    /// The last parent directory resolved: members mostly come directory by directory.
    /// Cleared whenever anything is removed, the only way a resolved path can change.
    cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
}

/// Context for a failed system call on member `path`.
fn fail<'a>(op: &'static str, path: &'a [u8]) -> impl FnOnce(Errno) -> ApplyError + 'a {
    move |e| ApplyError::Entry {
        path: display(path),
        op,
        source: e.into(),
    }
}

fn invalid(path: &[u8], reason: &'static str) -> ApplyError {
    ApplyError::InvalidEntry {
        path: display(path),
        reason,
    }
}

/// A member path for messages: `/` plus the cleaned name.
fn display(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

impl Unpacker {
    pub(super) fn plain(root: Root) -> Self {
        Self::new(
            root,
            Layout::Plain {
                written: HashSet::new(),
            },
        )
    }

    pub(super) fn overlay(upper: Root, lowers: Vec<Root>) -> Self {
        Self::new(
            upper,
            Layout::Overlay {
                lowers: Lowers::new(lowers),
            },
        )
    }

    fn new(root: Root, layout: Layout) -> Self {
        Unpacker {
            root,
            layout,
            meta: Meta::default(),
            path: Vec::new(),
            link: Vec::new(),
            buf: vec![0; COPY_BUFFER],
            dir_times: Vec::new(),
            cache: None,
        }
    }

    /// Writes one member.
    pub(super) fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ApplyError> {
        let kind = entry.header().entry_type();
        // PAX global headers carry defaults nobody relies on for layers; containerd skips them.
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let mut path = std::mem::take(&mut self.path);
        name::clean_into(&entry.path_bytes(), &mut path);
        let result = match self.meta.read_from(entry) {
            Ok(()) => self.dispatch(&path, kind, entry),
            Err(e) => Err(ApplyError::Tar(e)),
        };
        self.path = path;
        result
    }

    fn dispatch<R: Read>(
        &mut self,
        path: &[u8],
        kind: EntryType,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ApplyError> {
        match name::classify(path) {
            Kind::Root if kind.is_dir() => self.root_dir(),
            Kind::Root => Err(invalid(path, "only a directory can stand for the root")),
            Kind::AufsMeta => Ok(()),
            Kind::BadWhiteout => Err(invalid(path, "whiteout of an invalid name")),
            Kind::Whiteout { parent, name } => self.whiteout(path, parent, name),
            Kind::Opaque { dir } => self.opaque(dir),
            Kind::Entry { parent, name } => {
                let parent_fd = self
                    .dir_fd(parent, true)
                    .map_err(fail("creating the parent directories of", path))?;
                let parent_fd = parent_fd.as_fd();
                match kind {
                    EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                        self.file(parent_fd, name, path, entry)?
                    }
                    EntryType::Directory => self.directory(parent_fd, name, path)?,
                    EntryType::Symlink => self.symlink(parent_fd, name, path, entry)?,
                    EntryType::Link => self.hard_link(parent_fd, name, path, entry)?,
                    EntryType::Char | EntryType::Block | EntryType::Fifo => {
                        self.node(parent_fd, name, path, kind, entry)?
                    }
                    other => {
                        return Err(ApplyError::UnsupportedEntry {
                            path: display(path),
                            kind: other.as_byte(),
                        })
                    }
                }
                if let Layout::Plain { written } = &mut self.layout {
                    record(written, path);
                }
                Ok(())
            }
        }
    }

    /// Sets the directory times deferred so far.
    pub(super) fn finish(mut self) -> Result<(), ApplyError> {
        let dirs = std::mem::take(&mut self.dir_times);
        for (path, times) in &dirs {
            let ts = times.timestamps();
            if path.is_empty() {
                let fd = root::open_dir_rdonly(self.root.fd()).map_err(fail("opening", path))?;
                futimens(&fd, &ts).map_err(fail("setting the times of", path))?;
                continue;
            }
            let (parent, name) = name::split(path);
            let parent_fd = match self.dir_fd(parent, false) {
                Ok(fd) => fd,
                // Removed or replaced by a later member: nothing to date.
                Err(Errno::NOENT) | Err(Errno::NOTDIR) => continue,
                Err(e) => return Err(fail("opening the parent of", path)(e)),
            };
            match utimensat(&*parent_fd, name, &ts, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(fail("setting the times of", path)(e)),
            }
        }
        Ok(())
    }

    /// An `O_PATH` descriptor of directory `rel`, creating missing directories when `create`.
    fn dir_fd(&mut self, rel: &[u8], create: bool) -> Result<Rc<OwnedFd>, Errno> {
        if let Some((cached, fd)) = &self.cache {
            if cached == rel {
                return Ok(fd.clone());
            }
        }
        let fd = match self.root.dir(rel) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => self.make_dirs(rel)?,
            Err(e) => return Err(e),
        };
        let fd = Rc::new(fd);
        match &mut self.cache {
            Some((cached, cached_fd)) => {
                cached.clear();
                cached.extend_from_slice(rel);
                *cached_fd = fd.clone();
            }
            None => self.cache = Some((rel.to_vec(), fd.clone())),
        }
        Ok(fd)
    }

    /// Creates the missing directories of `rel`, component by component, each resolved from
    /// the root again so that symlinks on the way stay confined.
    fn make_dirs(&mut self, rel: &[u8]) -> Result<OwnedFd, Errno> {
        let mut current = self.root.dir(b"")?;
        let mut end = 0;
        while end < rel.len() {
            let start = if end == 0 { 0 } else { end + 1 };
            end = rel[start..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(rel.len(), |i| start + i);
            let prefix = &rel[..end];
            current = match self.root.dir(prefix) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    // EEXIST here means a dangling symlink: refused, not followed.
                    self.make_implicit_dir(current.as_fd(), prefix, &rel[start..end])?;
                    self.root.dir(prefix)?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(current)
    }

    /// A directory the layer writes into without listing it: in an overlay, a copy of the
    /// lower's directory's metadata if a lower has it; otherwise root-owned 0755.
    fn make_implicit_dir(
        &mut self,
        parent: BorrowedFd<'_>,
        rel: &[u8],
        name: &[u8],
    ) -> Result<(), Errno> {
        mkdirat(parent, name, Mode::from_raw_mode(0o700))?;
        let found = match &self.layout {
            Layout::Overlay { lowers } => lowers.find(&self.root, rel)?,
            Layout::Plain { .. } => None,
        };
        let dir = root::open_subdir(parent, name)?;
        match found {
            Some(found) if FileType::from_raw_mode(found.stat.st_mode) == FileType::Directory => {
                overlay::copy_dir_meta(&found, dir.as_fd())?;
                let (atime, mtime) = overlay::stat_times(&found.stat);
                self.dir_times.push((rel.to_vec(), Times { atime, mtime }));
            }
            // Explicit, so the process umask plays no part.
            _ => fchmod(&dir, Mode::from_raw_mode(IMPLICIT_DIR_MODE))?,
        }
        Ok(())
    }

    /// Runs `create`; if the name is taken, removes what is there and runs it again.
    fn create<T>(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        mut create: impl FnMut() -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        match create() {
            Err(Errno::EXIST) => {
                self.remove(parent, name)?;
                create()
            }
            other => other,
        }
    }

    fn remove(&mut self, parent: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
        self.cache = None;
        root::remove_all(parent, name)
    }

    fn file<R: Read>(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ApplyError> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = self
            .create(parent, name, || {
                openat(parent, name, flags, Mode::from_raw_mode(0o600))
            })
            .map_err(fail("creating", path))?;
        let mut file = File::from(fd);
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ApplyError::Tar(e)),
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| ApplyError::Entry {
                    path: display(path),
                    op: "writing",
                    source: e,
                })?;
        }
        self.fd_meta(file.as_fd(), path, false)
    }

    fn directory(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
    ) -> Result<(), ApplyError> {
        match mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let st = statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(fail("inspecting", path))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    self.remove(parent, name).map_err(fail("replacing", path))?;
                    mkdirat(parent, name, Mode::from_raw_mode(0o700))
                        .map_err(fail("creating", path))?;
                }
            }
            Err(e) => return Err(fail("creating", path)(e)),
        }
        let fd = root::open_subdir(parent, name).map_err(fail("opening", path))?;
        self.fd_meta(fd.as_fd(), path, true)
    }

    /// Metadata of the target's root directory (a `./` member).
    fn root_dir(&mut self) -> Result<(), ApplyError> {
        let fd = root::open_dir_rdonly(self.root.fd()).map_err(fail("opening", b""))?;
        self.fd_meta(fd.as_fd(), b"", true)
    }

    fn symlink<R: Read>(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ApplyError> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| invalid(path, "symlink without a target"))?;
        // The target is stored as is: pointing anywhere is legitimate, since nothing is ever
        // written through it.
        self.create(parent, name, || symlinkat(&*target, parent, name))
            .map_err(fail("creating", path))?;
        self.at_meta(parent, name, path, false)
    }

    fn node<R: Read>(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        kind: EntryType,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ApplyError> {
        let (file_type, dev) = match kind {
            EntryType::Fifo => (FileType::Fifo, 0),
            _ => {
                // devmajor and devminor sit at the same offsets in USTAR and GNU headers.
                let raw = entry.header().as_bytes();
                let major = meta::numeric(&raw[329..337]).map_err(ApplyError::Tar)?;
                let minor = meta::numeric(&raw[337..345]).map_err(ApplyError::Tar)?;
                let (major, minor) = match (u32::try_from(major), u32::try_from(minor)) {
                    (Ok(major), Ok(minor)) => (major, minor),
                    _ => return Err(invalid(path, "device number out of range")),
                };
                let t = if kind == EntryType::Char {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                (t, makedev(major, minor))
            }
        };
        self.create(parent, name, || {
            mknodat(parent, name, file_type, Mode::from_raw_mode(0o600), dev)
        })
        .map_err(fail("creating", path))?;
        self.at_meta(parent, name, path, true)
    }

    /// A hard link member: its metadata is the target's (one inode), so none is applied.
    fn hard_link<R: Read>(
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
        result
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

    fn whiteout(&mut self, path: &[u8], parent: &[u8], name: &[u8]) -> Result<(), ApplyError> {
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

    fn opaque(&mut self, dir: &[u8]) -> Result<(), ApplyError> {
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

    /// Owner, xattrs, mode and times (deferred for directories) through an open descriptor.
    fn fd_meta(&mut self, fd: BorrowedFd<'_>, path: &[u8], is_dir: bool) -> Result<(), ApplyError> {
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
    fn at_meta(
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

/// Adds `path` and its ancestors to `written`.
fn record(written: &mut HashSet<Vec<u8>>, path: &[u8]) {
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
