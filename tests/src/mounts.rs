//! Removing whatever a test left mounted under its temporary directory.

use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

/// Mount points at or below `dir`, deepest first, read from `/proc/self/mountinfo`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Detaches every mount at or below `dir`, deepest first. Stacked mounts on one point take several
/// rounds; the loop stops when nothing is left or a round makes no progress.
pub fn unmount_all_under(dir: &Path) {
    let mut previous = usize::MAX;
    loop {
        let mounts = mounts_under(dir);
        if mounts.is_empty() || mounts.len() >= previous {
            for m in &mounts {
                eprintln!("test harness: could not unmount {}", m.display());
            }
            return;
        }
        previous = mounts.len();
        for m in &mounts {
            let _ = umount2(m, MntFlags::MNT_DETACH);
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(digits, 8) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_octal_sequences() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mountinfo(r"/tmp/x\134y"), r"/tmp/x\y");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn finds_and_removes_a_real_mount() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("inner");
        std::fs::create_dir(&target).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &target,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        assert_eq!(mounts_under(dir.path()), vec![target.clone()]);
        unmount_all_under(dir.path());
        assert!(mounts_under(dir.path()).is_empty());
    }
}
