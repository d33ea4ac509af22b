//! Apply's tests (they run as root: ownership, devices, trusted xattrs, overlay mounts), and a
//! layer builder that writes raw member names (`../x`, `/x`), which tar's own `set_path`
//! refuses.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tar::{EntryType, Header};

use super::{apply, Applied, ApplyError, Compression, Target};

mod adopt;
mod entries;
mod hostile;
mod overlay;
mod pipeline;

/// The modification time members get unless a test sets one.
const MTIME: u64 = 1_600_000_000;

/// Builds an uncompressed layer member by member.
struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

impl Layer {
    fn new() -> Self {
        Layer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// A GNU header with `name` and `link` stored as given, byte for byte.
    fn header(kind: EntryType, name: &str, link: &str, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        let old = h.as_old_mut();
        assert!(name.len() < old.name.len() && link.len() < old.linkname.len());
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname = [0; 100];
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(0);
        h
    }

    /// Appends a member, letting `edit` change the header first.
    fn push(&mut self, mut h: Header, data: &[u8], edit: impl FnOnce(&mut Header)) -> &mut Self {
        h.set_size(data.len() as u64);
        edit(&mut h);
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.push(
            Self::header(EntryType::Regular, name, "", 0o644),
            data,
            |_| {},
        )
    }

    fn dir(&mut self, name: &str) -> &mut Self {
        self.push(
            Self::header(EntryType::Directory, name, "", 0o755),
            b"",
            |_| {},
        )
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.push(
            Self::header(EntryType::Symlink, name, target, 0o777),
            b"",
            |_| {},
        )
    }

    fn hard_link(&mut self, name: &str, target: &str) -> &mut Self {
        self.push(
            Self::header(EntryType::Link, name, target, 0o644),
            b"",
            |_| {},
        )
    }

    /// PAX records for the next member.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.builder
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }

    fn bytes(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

fn apply_plain(tar: &[u8], root: &Path) -> Result<Applied, ApplyError> {
    apply(tar, Compression::None, Target::Plain(root))
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(data);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn owner(path: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid())
}

fn mtime(path: &Path) -> (i64, i64) {
    let m = fs::symlink_metadata(path).unwrap();
    (m.mtime(), m.mtime_nsec())
}

/// The extended attribute `name` of `path` (not following a symlink).
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(rustix::io::Errno::NODATA) => None,
        Err(e) => panic!("lgetxattr {} {name}: {e}", path.display()),
    }
}

/// Every path below `dir`, relative and sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                pending.push(p);
            }
        }
    }
    out.sort();
    out
}
