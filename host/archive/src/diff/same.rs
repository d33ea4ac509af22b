//! Whether a path present in both trees is unchanged, by containerd 1.6's rules
//! (continuity's `sameFile`): metadata first, content only when mtimes cannot tell.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{xattr, DiffError};

/// Compares `lower` and `upper` (lstat'ed as `l` and `u`). `bufs` are two scratch buffers
/// for content comparison, kept by the caller across calls.
pub(super) fn same_file(
    lower: &Path,
    l: &Metadata,
    upper: &Path,
    u: &Metadata,
    bufs: &mut [Vec<u8>; 2],
) -> Result<bool, DiffError> {
    // The same inode (a bind or an overlay showing the lower file): nothing can differ.
    if l.dev() == u.dev() && l.ino() == u.ino() {
        return Ok(true);
    }
    // Type and permission bits, owner and device number.
    if l.mode() != u.mode() || l.uid() != u.uid() || l.gid() != u.gid() || l.rdev() != u.rdev() {
        return Ok(false);
    }
    let cap_l = xattr::capability(lower).map_err(|e| DiffError::read(lower, e))?;
    let cap_u = xattr::capability(upper).map_err(|e| DiffError::read(upper, e))?;
    if cap_l != cap_u {
        return Ok(false);
    }
    // A directory's size and mtime say nothing about the directory itself.
    if u.is_dir() {
        return Ok(true);
    }
    if l.size() != u.size() || l.mtime() != u.mtime() {
        return Ok(false);
    }
    if l.mtime_nsec() != 0 || u.mtime_nsec() != 0 {
        return Ok(l.mtime_nsec() == u.mtime_nsec());
    }
    // Both mtimes may have been truncated to seconds: look at what they hold.
    if u.file_type().is_symlink() {
        let t_l = fs::read_link(lower).map_err(|e| DiffError::read(lower, e))?;
        let t_u = fs::read_link(upper).map_err(|e| DiffError::read(upper, e))?;
        return Ok(t_l == t_u);
    }
    if u.size() == 0 {
        return Ok(true);
    }
    same_content(lower, upper, bufs)
}

fn same_content(lower: &Path, upper: &Path, bufs: &mut [Vec<u8>; 2]) -> Result<bool, DiffError> {
    let mut f_l = File::open(lower).map_err(|e| DiffError::read(lower, e))?;
    let mut f_u = File::open(upper).map_err(|e| DiffError::read(upper, e))?;
    let [b_l, b_u] = bufs;
    loop {
        let n_l = read_full(&mut f_l, b_l).map_err(|e| DiffError::read(lower, e))?;
        let n_u = read_full(&mut f_u, b_u).map_err(|e| DiffError::read(upper, e))?;
        if n_l != n_u || b_l[..n_l] != b_u[..n_u] {
            return Ok(false);
        }
        if n_l == 0 {
            return Ok(true);
        }
    }
}

/// Fills `buf` unless the file ends first; returns how much was read.
pub(super) fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
