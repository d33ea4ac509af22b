//! The one xattr a layer carries: `security.capability` (file capabilities), as containerd
//! 1.6 both compares and writes it.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(super) const CAPABILITY: &str = "security.capability";

/// The `security.capability` of `path` itself (not a symlink's target); empty when unset or
/// when the filesystem has no xattrs.
pub(super) fn capability(path: &Path) -> io::Result<Vec<u8>> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let name = c"security.capability";
    // A v3 capability is 24 bytes; the loop below grows the buffer if one ever is not.
    let mut buf = vec![0u8; 64];
    loop {
        // SAFETY: both strings are NUL-terminated CStrings alive for the call, and `buf` is a
        // live allocation of exactly `buf.len()` writable bytes.
        let n = unsafe {
            libc::lgetxattr(
                c_path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(Vec::new()),
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            _ => return Err(err),
        }
    }
}
