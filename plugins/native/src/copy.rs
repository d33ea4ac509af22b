//! Copies a directory tree the way a layer must be copied: file types (regular files,
//! directories, symlinks, device nodes, fifos, sockets), modes including set-id bits, owners,
//! extended attributes, modification times, and hard links within the tree.

use std::{
    collections::HashMap,
    ffi::{CString, OsStr},
    fs, io,
    os::unix::{
        ffi::OsStrExt,
        fs::{lchown, symlink, FileTypeExt, MetadataExt, PermissionsExt},
    },
    path::{Path, PathBuf},
};

use nix::sys::{
    stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags},
    time::TimeSpec,
};

/// Copies the contents and attributes of directory `from` into the existing directory `to`.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let mut links = HashMap::new();
    copy_dir_contents(from, to, &mut links)?;
    copy_attributes(from, to, &fs::symlink_metadata(from)?)
}

/// (device, inode) of a multiply-linked file → its first copy.
type Links = HashMap<(u64, u64), PathBuf>;

fn copy_dir_contents(from: &Path, to: &Path, links: &mut Links) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let metadata = fs::symlink_metadata(&source)?;
        let kind = metadata.file_type();
        if kind.is_dir() {
            fs::create_dir(&target)?;
            copy_dir_contents(&source, &target, links)?;
        } else if kind.is_symlink() {
            symlink(fs::read_link(&source)?, &target)?;
        } else {
            if metadata.nlink() > 1 {
                let inode = (metadata.dev(), metadata.ino());
                if let Some(first) = links.get(&inode) {
                    fs::hard_link(first, &target)?;
                    continue;
                }
                links.insert(inode, target.clone());
            }
            if kind.is_file() {
                fs::copy(&source, &target)?;
            } else {
                make_node(&target, &metadata)?;
            }
        }
        copy_attributes(&source, &target, &metadata)?;
    }
    Ok(())
}

/// Creates a device node, fifo or socket like the one `metadata` describes.
fn make_node(target: &Path, metadata: &fs::Metadata) -> io::Result<()> {
    let kind = metadata.file_type();
    let flag = if kind.is_block_device() {
        SFlag::S_IFBLK
    } else if kind.is_char_device() {
        SFlag::S_IFCHR
    } else if kind.is_fifo() {
        SFlag::S_IFIFO
    } else if kind.is_socket() {
        SFlag::S_IFSOCK
    } else {
        return Err(io::Error::other(format!(
            "{}: unsupported file type",
            target.display()
        )));
    };
    let mode = Mode::from_bits_truncate(metadata.mode() & 0o7777);
    mknod(target, flag, mode, metadata.rdev()).map_err(io::Error::from)
}

/// Owner, mode, extended attributes and times, in an order that keeps each: the owner before
/// the mode (a chown clears set-id bits), the times last.
fn copy_attributes(source: &Path, target: &Path, metadata: &fs::Metadata) -> io::Result<()> {
    let is_symlink = metadata.file_type().is_symlink();
    lchown(target, Some(metadata.uid()), Some(metadata.gid()))?;
    if !is_symlink {
        fs::set_permissions(target, fs::Permissions::from_mode(metadata.mode() & 0o7777))?;
    }
    copy_xattrs(source, target)?;
    let atime = TimeSpec::new(metadata.atime(), metadata.atime_nsec());
    let mtime = TimeSpec::new(metadata.mtime(), metadata.mtime_nsec());
    utimensat(
        None,
        target,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::other("path holds a nul byte"))
}

/// Copies every extended attribute the target's filesystem accepts.
fn copy_xattrs(source: &Path, target: &Path) -> io::Result<()> {
    let source_c = c_path(source)?;
    let target_c = c_path(target)?;
    let names = match read_buffer(|buf, len| {
        // SAFETY: `source_c` is a nul-terminated path; `buf` is valid for `len` bytes (or
        // null with `len` 0, which asks for the size only).
        unsafe { libc::llistxattr(source_c.as_ptr(), buf.cast(), len) }
    }) {
        Ok(names) => names,
        // No extended attributes on this filesystem.
        Err(err) if err.raw_os_error() == Some(libc::ENOTSUP) => return Ok(()),
        Err(err) => return Err(err),
    };
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name_c = CString::new(name).expect("split on nul bytes");
        let value = read_buffer(|buf, len| {
            // SAFETY: both strings are nul-terminated; `buf` is valid for `len` bytes (or null
            // with `len` 0).
            unsafe { libc::lgetxattr(source_c.as_ptr(), name_c.as_ptr(), buf.cast(), len) }
        })?;
        // SAFETY: both strings are nul-terminated and `value` is valid for its length.
        let set = unsafe {
            libc::lsetxattr(
                target_c.as_ptr(),
                name_c.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if set != 0 {
            let err = io::Error::last_os_error();
            // Some namespaces cannot be set on every file type (user.* on symlinks).
            if !matches!(err.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM)) {
                return Err(io::Error::other(format!(
                    "set xattr {} on {}: {err}",
                    OsStr::from_bytes(name).to_string_lossy(),
                    target.display()
                )));
            }
        }
    }
    Ok(())
}

/// Calls a size-then-fill libc function (`llistxattr`, `lgetxattr`) until the buffer fits.
fn read_buffer(mut call: impl FnMut(*mut u8, usize) -> isize) -> io::Result<Vec<u8>> {
    loop {
        let size = call(std::ptr::null_mut(), 0);
        if size < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; size as usize];
        let got = call(buf.as_mut_ptr(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        // The value grew between the two calls: ask again.
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_types_modes_links_times_and_xattrs() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        let to = dir.path().join("to");
        fs::create_dir_all(from.join("sub")).unwrap();
        fs::create_dir(&to).unwrap();
        fs::write(from.join("sub/file"), b"data").unwrap();
        fs::set_permissions(from.join("sub/file"), fs::Permissions::from_mode(0o4750)).unwrap();
        fs::hard_link(from.join("sub/file"), from.join("twin")).unwrap();
        symlink("sub/file", from.join("link")).unwrap();
        mknod(
            &from.join("fifo"),
            SFlag::S_IFIFO,
            Mode::from_bits_truncate(0o640),
            0,
        )
        .unwrap();
        fs::set_permissions(&from, fs::Permissions::from_mode(0o711)).unwrap();
        let from_c = c_path(&from.join("sub/file")).unwrap();
        // SAFETY: nul-terminated strings and a 3-byte value.
        let xattr = unsafe {
            libc::lsetxattr(
                from_c.as_ptr(),
                c"user.test".as_ptr(),
                b"yes".as_ptr().cast(),
                3,
                0,
            )
        };
        let xattrs_work = xattr == 0;
        let old = TimeSpec::new(1_000_000, 0);
        utimensat(
            None,
            &from.join("sub/file"),
            &old,
            &old,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();

        copy_tree(&from, &to).unwrap();

        let file = fs::metadata(to.join("sub/file")).unwrap();
        assert_eq!(fs::read(to.join("sub/file")).unwrap(), b"data");
        assert_eq!(file.mode() & 0o7777, 0o4750);
        assert_eq!(file.mtime(), 1_000_000);
        assert_eq!(file.nlink(), 2, "the hard link was not kept");
        assert_eq!(
            fs::metadata(to.join("twin")).unwrap().ino(),
            file.ino(),
            "twin is not the same inode"
        );
        assert_eq!(
            fs::read_link(to.join("link")).unwrap(),
            Path::new("sub/file")
        );
        assert!(fs::symlink_metadata(to.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(fs::metadata(&to).unwrap().mode() & 0o7777, 0o711);
        if xattrs_work {
            let to_c = c_path(&to.join("sub/file")).unwrap();
            let value = read_buffer(|buf, len| {
                // SAFETY: nul-terminated strings; `buf` is valid for `len` bytes.
                unsafe { libc::lgetxattr(to_c.as_ptr(), c"user.test".as_ptr(), buf.cast(), len) }
            })
            .unwrap();
            assert_eq!(value, b"yes");
        }
    }
}
