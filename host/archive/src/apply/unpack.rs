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
    fchmod, futimens, makedev, mkdirat, mknodat, openat, statat, symlinkat, utimensat, AtFlags,
    FileType, Mode, OFlags,
};
use rustix::io::Errno;
use tar::EntryType;

use super::meta::{self, Meta, Times};
use super::name::{self, Kind};
use super::overlay::{self, Lowers};
use super::root::{self, Root};
use super::ApplyError;
use super::Footprint;

mod link;
mod metadata;
mod whiteout;

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
    footprint: Footprint,
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
            footprint: Footprint::default(),
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
                    whiteout::record(written, path);
                }
                Ok(())
            }
        }
    }

    /// Sets the directory times deferred so far; returns what the layer did that depends on
    /// the target.
    pub(super) fn finish(mut self) -> Result<Footprint, ApplyError> {
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
        Ok(self.footprint)
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
        self.footprint.implicit_dirs = true;
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
        self.footprint.root_meta = true;
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
}
