//! Mounts under a directory: finding them in `/proc/self/mountinfo`, and removing whatever was
//! left mounted there (a test's temporary directory, the differ's temporary mounts after a crash).

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

/// Mount points at or below `dir` in this process's mount namespace, deepest first, read from
/// `/proc/self/mountinfo`. A point with mounts stacked on it is listed once.
pub fn mounts_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(mount_points_under(&info, dir))
}

/// The mount points (fifth field) at or below `dir` in mountinfo text, deepest first, deduplicated.
fn mount_points_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|p| p.starts_with(dir))
        .collect();
    // Deepest first; by name within a depth, so that the points of stacked mounts end up side by side.
    found.sort_by(|a, b| {
        let depth = |p: &PathBuf| p.components().count();
        depth(b).cmp(&depth(a)).then_with(|| a.cmp(b))
    });
    found.dedup();
    found
}

/// Detaches every mount at or below `dir`, deepest first, and returns the points it could not
/// remove. Stacked mounts on one point take several rounds; the loop stops when nothing is left
/// or a round makes no progress.
pub fn unmount_all_under(dir: &Path) -> Vec<PathBuf> {
    let mut previous = usize::MAX;
    loop {
        let mounts = mounts_under(dir).unwrap_or_default();
        if mounts.is_empty() || mounts.len() >= previous {
            return mounts;
        }
        previous = mounts.len();
        for m in &mounts {
            let _ = umount2(m, MntFlags::MNT_DETACH);
        }
    }
}

/// mountinfo writes space, tab, newline and backslash in paths as three-digit octal escapes
/// (`\040`); anything else after a backslash is kept as it is.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .filter(|digits| digits.bytes().all(|d| (b'0'..=b'7').contains(&d)))
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
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
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b\134c"), r"/tmp/a b\c");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/tmp/plain\9"), r"/tmp/plain\9");
        // Not octal digits, or not a byte: kept as written.
        assert_eq!(unescape_mountinfo(r"/tmp/\+12"), r"/tmp/\+12");
        assert_eq!(unescape_mountinfo(r"/tmp/\777"), r"/tmp/\777");
    }

    #[test]
    fn lists_points_below_the_directory_deepest_first_and_once() {
        let info = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
30 22 0:40 / /run/x rw - tmpfs tmpfs rw
31 30 0:41 / /run/x/a\\040b/inner rw - tmpfs tmpfs rw
32 31 0:42 / /run/x/a\\040b/inner rw - tmpfs tmpfs rw
33 22 0:43 / /run/xy rw - tmpfs tmpfs rw
34 30 0:44 / /run/x/b rw - tmpfs tmpfs rw
35 30 0:45 / /run/x/a rw - tmpfs tmpfs rw
36 34 0:46 / /run/x/b rw - tmpfs tmpfs rw
";
        assert_eq!(
            mount_points_under(info, Path::new("/run/x")),
            [
                PathBuf::from("/run/x/a b/inner"),
                PathBuf::from("/run/x/a"),
                PathBuf::from("/run/x/b"),
                PathBuf::from("/run/x"),
            ]
        );
    }

    #[test]
    fn finds_and_removes_a_real_mount() {
        if !nix::unistd::geteuid().is_root() {
            rcontainerd_pkg::prereq::missing("root (mounting a tmpfs needs it)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a b/inner");
        std::fs::create_dir_all(&target).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &target,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        assert_eq!(mounts_under(dir.path()).unwrap(), vec![target.clone()]);
        assert!(unmount_all_under(dir.path()).is_empty());
        assert!(mounts_under(dir.path()).unwrap().is_empty());
    }
}
