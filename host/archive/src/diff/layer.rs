//! Turns the walk's changes into tar entries (what containerd 1.6's `ChangeWriter` does):
//! whiteouts for deletions, missing parent directories first, hard links to the first
//! written path of an inode, file contents.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{Builder, EntryType};

use super::changes::Change;
use super::header::EntryHeader;
use super::same::read_full;
use super::{xattr, DiffError, BUF_SIZE};

/// OCI whiteout prefix: `.wh.<name>` deletes `<name>` from the layers below.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Whiteouts' mtime: fixed (containerd uses the time of the diff) so output is reproducible.
const WHITEOUT_MTIME: i64 = 0;

/// An inode, for hard links.
type Inode = (u64, u64);

pub(super) struct LayerWriter<'a, W: Write> {
    tar: Builder<W>,
    upper: &'a Path,
    /// The layer name an inode's content was first written under.
    link_sources: HashMap<Inode, Vec<u8>>,
    /// Unchanged links of inodes not written yet: written as hard links if the inode is.
    link_refs: HashMap<Inode, Vec<Vec<u8>>>,
    /// Directories already in the layer (names without the trailing `/`).
    added_dirs: HashSet<Vec<u8>>,
    buf: Vec<u8>,
}

impl<'a, W: Write> LayerWriter<'a, W> {
    pub(super) fn new(out: W, upper: &'a Path) -> Self {
        LayerWriter {
            tar: Builder::new(out),
            upper,
            link_sources: HashMap::new(),
            link_refs: HashMap::new(),
            added_dirs: HashSet::new(),
            buf: vec![0; BUF_SIZE],
        }
    }

    /// Writes what `change` to `rel` (with the upper's lstat `meta`) puts in the layer.
    pub(super) fn handle(
        &mut self,
        change: Change,
        rel: &Path,
        meta: Option<&Metadata>,
    ) -> Result<(), DiffError> {
        match (change, meta) {
            (Change::Delete, _) | (_, None) => self.whiteout(rel),
            (_, Some(meta)) => self.entry(change, rel, meta),
        }
    }

    /// Ends the archive (two zero blocks) and returns the writer.
    pub(super) fn finish(self) -> Result<W, DiffError> {
        self.tar.into_inner().map_err(DiffError::Write)
    }

    fn whiteout(&mut self, rel: &Path) -> Result<(), DiffError> {
        let mut name = Vec::new();
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            name.extend_from_slice(parent.as_os_str().as_bytes());
            name.push(b'/');
        }
        name.extend_from_slice(WHITEOUT_PREFIX);
        name.extend_from_slice(rel.file_name().unwrap_or_default().as_bytes());
        let mut header = EntryHeader::new(name, EntryType::Regular);
        header.mtime = WHITEOUT_MTIME;
        self.include_parents(&header.name, false)?;
        header.write(&mut self.tar).map_err(DiffError::Write)
    }

    fn entry(&mut self, change: Change, rel: &Path, meta: &Metadata) -> Result<(), DiffError> {
        let file_type = meta.file_type();
        if file_type.is_socket() {
            return Ok(());
        }
        let path = self.upper.join(rel);
        let is_dir = file_type.is_dir();
        let kind = if is_dir {
            EntryType::Directory
        } else if file_type.is_symlink() {
            EntryType::Symlink
        } else if file_type.is_char_device() {
            EntryType::Char
        } else if file_type.is_block_device() {
            EntryType::Block
        } else if file_type.is_fifo() {
            EntryType::Fifo
        } else {
            EntryType::Regular
        };

        let mut name = rel.as_os_str().as_bytes().to_vec();
        if is_dir {
            name.push(b'/');
        }
        let mut header = EntryHeader::new(name, kind);
        header.mode = meta.mode() & 0o7777;
        header.uid = meta.uid().into();
        header.gid = meta.gid().into();
        header.mtime = meta.mtime();
        match kind {
            EntryType::Regular => header.size = meta.size(),
            EntryType::Symlink => {
                let target = fs::read_link(&path).map_err(|e| DiffError::read(&path, e))?;
                header.link = target.into_os_string().into_vec();
            }
            EntryType::Char | EntryType::Block => {
                (header.dev_major, header.dev_minor) = dev_numbers(meta.rdev());
            }
            _ => {}
        }

        // Links of this inode that were unchanged but must follow it into the layer.
        let mut more_links = Vec::new();
        if !is_dir && meta.nlink() > 1 {
            let inode = (meta.dev(), meta.ino());
            if let Some(source) = self.link_sources.get(&inode) {
                header.kind = EntryType::Link;
                header.link = source.clone();
                header.size = 0;
            } else if change == Change::Unmodified {
                self.link_refs.entry(inode).or_default().push(header.name);
                return Ok(());
            } else {
                self.link_sources.insert(inode, header.name.clone());
                more_links = self.link_refs.remove(&inode).unwrap_or_default();
            }
        } else if change == Change::Unmodified {
            return Ok(());
        }

        let capability = xattr::capability(&path).map_err(|e| DiffError::read(&path, e))?;
        if !capability.is_empty() {
            let key = format!("SCHILY.xattr.{}", xattr::CAPABILITY);
            header.records.insert(key, capability);
        }

        self.include_parents(&header.name, is_dir)?;
        header.write(&mut self.tar).map_err(DiffError::Write)?;
        if header.kind == EntryType::Regular && header.size > 0 {
            self.copy_content(&path, header.size)?;
        }

        if !more_links.is_empty() {
            let source = std::mem::take(&mut header.name);
            header.kind = EntryType::Link;
            header.size = 0;
            for name in more_links {
                header.name = name;
                header.link.clone_from(&source);
                self.include_parents(&header.name, false)?;
                header.write(&mut self.tar).map_err(DiffError::Write)?;
            }
        }
        Ok(())
    }

    /// Writes the parent directory of `name` if the layer does not have it yet (and, through
    /// it, the parent's parents), so the layer can be extracted on its own.
    fn include_parents(&mut self, name: &[u8], is_dir: bool) -> Result<(), DiffError> {
        let name = name.strip_suffix(b"/").unwrap_or(name);
        // Top-level entries have no parent but the root, which a layer never holds.
        if let Some(slash) = name.iter().rposition(|&b| b == b'/') {
            let parent = &name[..slash];
            if self.added_dirs.insert(parent.to_vec()) {
                let rel = PathBuf::from(OsStr::from_bytes(parent));
                let path = self.upper.join(&rel);
                let meta = fs::metadata(&path).map_err(|e| DiffError::read(&path, e))?;
                self.entry(Change::Modify, &rel, &meta)?;
            }
        }
        if is_dir {
            self.added_dirs.insert(name.to_vec());
        }
        Ok(())
    }

    /// Appends the `size` bytes of `path` and the padding to the next block.
    fn copy_content(&mut self, path: &Path, size: u64) -> Result<(), DiffError> {
        let mut file = File::open(path).map_err(|e| DiffError::read(path, e))?;
        let mut copied = 0u64;
        loop {
            let n = read_full(&mut file, &mut self.buf).map_err(|e| DiffError::read(path, e))?;
            if n == 0 {
                break;
            }
            copied += n as u64;
            if copied > size {
                break;
            }
            self.tar
                .get_mut()
                .write_all(&self.buf[..n])
                .map_err(DiffError::Write)?;
        }
        if copied != size {
            return Err(DiffError::Changed {
                path: path.to_path_buf(),
            });
        }
        let padding = (512 - size % 512) % 512;
        self.tar
            .get_mut()
            .write_all(&[0; 512][..padding as usize])
            .map_err(DiffError::Write)
    }
}

/// Linux's major and minor numbers of a `dev_t` (glibc's encoding: 12+32 bits of major,
/// 20 bits of minor, interleaved).
fn dev_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}
