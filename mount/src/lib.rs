//! Performs the [`Mount`]s a snapshotter returns, the way a container runtime's mount helper
//! does (needs root): the differ mounts snapshots to apply layers into them, the conformance
//! suites prove a driver's mounts really mount, and ctr mounts images.
//!
//! Options that are mount flags (`ro`, `rbind`, `nosuid`, …) become flags; the rest is the
//! filesystem's data string. The kernel takes at most one page of data, and an overlay over a
//! long chain of layers exceeds it, so when an overlay's data is too long the `lowerdir` paths
//! are made relative to their common parent and the mount runs from a thread whose working
//! directory is that parent (the thread unshares its filesystem context first, so the rest of
//! the process keeps its working directory).

pub mod mountinfo;
mod temporary;

pub use mountinfo::{mounts_under, unmount_all_under};
pub use temporary::{read_only, TempMount};

use std::{
    ffi::OsStr,
    path::{Component, Path, PathBuf},
};

use nix::{
    mount::{mount, umount2, MntFlags, MsFlags},
    sched::{unshare, CloneFlags},
    unistd::{chdir, sysconf, SysconfVar},
};

/// One mount a client performs to use a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// e.g. `bind` or `overlay`.
    pub mount_type: String,
    pub source: String,
    /// Where to mount, relative to the client's target; usually empty.
    pub target: String,
    pub options: Vec<String>,
}

/// A mount or unmount that failed, with what was asked and the system's reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MountError(String);

impl MountError {
    pub(crate) fn new(message: String) -> Self {
        MountError(message)
    }
}

type Result<T> = std::result::Result<T, MountError>;

/// Mounts every mount of `mounts` on `target`, in order.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for m in mounts {
        mount_one(m, target).map_err(MountError)?;
    }
    Ok(())
}

/// Detaches whatever is mounted on `target`.
pub fn unmount(target: &Path) -> Result<()> {
    umount2(target, MntFlags::MNT_DETACH)
        .map_err(|errno| MountError(format!("unmount {}: {}", target.display(), errno.desc())))
}

/// Mounts on creation, unmounts when dropped (also while a failing check unwinds).
#[derive(Debug)]
pub struct MountGuard {
    target: PathBuf,
    layers: usize,
}

impl MountGuard {
    pub fn new(mounts: &[Mount], target: &Path) -> Result<MountGuard> {
        let mut guard = MountGuard {
            target: target.to_path_buf(),
            layers: 0,
        };
        for m in mounts {
            mount_one(m, target).map_err(MountError)?;
            guard.layers += 1;
        }
        Ok(guard)
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Unmounts now and reports a failure.
    pub fn unmount(mut self) -> Result<()> {
        while self.layers > 0 {
            self.layers -= 1;
            unmount(&self.target)?;
        }
        Ok(())
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        while self.layers > 0 {
            self.layers -= 1;
            let _ = unmount(&self.target);
        }
    }
}

/// The flag an option stands for, and whether it sets (true) or clears it.
fn flag(option: &str) -> Option<(MsFlags, bool)> {
    Some(match option {
        "ro" => (MsFlags::MS_RDONLY, true),
        "rw" => (MsFlags::MS_RDONLY, false),
        "bind" => (MsFlags::MS_BIND, true),
        "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, true),
        "nosuid" => (MsFlags::MS_NOSUID, true),
        "suid" => (MsFlags::MS_NOSUID, false),
        "nodev" => (MsFlags::MS_NODEV, true),
        "dev" => (MsFlags::MS_NODEV, false),
        "noexec" => (MsFlags::MS_NOEXEC, true),
        "exec" => (MsFlags::MS_NOEXEC, false),
        "noatime" => (MsFlags::MS_NOATIME, true),
        "relatime" => (MsFlags::MS_RELATIME, true),
        "sync" => (MsFlags::MS_SYNCHRONOUS, true),
        "async" => (MsFlags::MS_SYNCHRONOUS, false),
        "remount" => (MsFlags::MS_REMOUNT, true),
        _ => return None,
    })
}

/// Splits options into mount flags and the data string.
fn parse_options(options: &[String]) -> (MsFlags, Vec<String>) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in options {
        match flag(option) {
            Some((f, true)) => flags |= f,
            Some((f, false)) => flags &= !f,
            None => data.push(option.clone()),
        }
    }
    (flags, data)
}

fn page_size() -> usize {
    match sysconf(SysconfVar::PAGE_SIZE) {
        Ok(Some(size)) if size > 0 => size as usize,
        _ => 4096,
    }
}

// Errors are plain text here; the public functions wrap them.
fn mount_one(m: &Mount, target: &Path) -> std::result::Result<(), String> {
    let (flags, mut data) = parse_options(&m.options);
    let fail = |errno: nix::Error| {
        format!(
            "mount {} {} on {}: {}",
            m.mount_type,
            m.source,
            target.display(),
            errno.desc()
        )
    };
    if flags.contains(MsFlags::MS_BIND) {
        mount(
            Some(m.source.as_str()),
            target,
            None::<&str>,
            flags & !MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(fail)?;
        // A bind mount takes its read-only flag only on a remount.
        if flags.contains(MsFlags::MS_RDONLY) {
            let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
            if let Err(errno) = mount(None::<&str>, target, None::<&str>, remount, None::<&str>) {
                let _ = umount2(target, MntFlags::MNT_DETACH);
                return Err(fail(errno));
            }
        }
        return Ok(());
    }
    let joined = data.join(",");
    if m.mount_type != "overlay" || joined.len() < page_size() {
        return mount(
            Some(m.source.as_str()),
            target,
            Some(m.mount_type.as_str()),
            flags,
            Some(joined.as_str()),
        )
        .map_err(fail);
    }
    let Some(dir) = compact_lowerdir(&mut data) else {
        return Err(format!(
            "mount overlay on {}: {} bytes of options exceed a page and the lower directories \
             share no parent",
            target.display(),
            joined.len()
        ));
    };
    let joined = data.join(",");
    if joined.len() >= page_size() {
        return Err(format!(
            "mount overlay on {}: {} bytes of options exceed a page even with relative lower \
             directories",
            target.display(),
            joined.len()
        ));
    }
    let source = m.source.clone();
    let mount_type = m.mount_type.clone();
    let target = std::path::absolute(target)
        .map_err(|err| format!("resolve {}: {err}", target.display()))?;
    std::thread::spawn(move || -> std::result::Result<(), String> {
        // A private working directory for this thread only.
        unshare(CloneFlags::CLONE_FS).map_err(|errno| format!("unshare: {}", errno.desc()))?;
        chdir(&dir).map_err(|errno| format!("chdir {}: {}", dir.display(), errno.desc()))?;
        mount(
            Some(source.as_str()),
            &target,
            Some(mount_type.as_str()),
            flags,
            Some(joined.as_str()),
        )
        .map_err(|errno| {
            format!(
                "mount {mount_type} on {} from {}: {}",
                target.display(),
                dir.display(),
                errno.desc()
            )
        })
    })
    .join()
    .map_err(|_| "mount thread panicked".to_string())?
}

/// Rewrites the `lowerdir=` option with paths relative to the lower directories' common
/// parent and returns that parent; `None` when there is no such option or no common parent.
fn compact_lowerdir(data: &mut [String]) -> Option<PathBuf> {
    let option = data.iter_mut().find(|o| o.starts_with("lowerdir="))?;
    let dirs: Vec<&Path> = option["lowerdir=".len()..]
        .split(':')
        .map(Path::new)
        .collect();
    let common = common_parent(&dirs)?;
    let relative: Vec<String> = dirs
        .iter()
        .map(|d| {
            d.strip_prefix(&common)
                .map(|r| r.to_string_lossy().into_owned())
        })
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    if relative.iter().any(String::is_empty) {
        return None;
    }
    *option = format!("lowerdir={}", relative.join(":"));
    Some(common)
}

/// The longest directory that contains every path (as a strict ancestor).
fn common_parent(paths: &[&Path]) -> Option<PathBuf> {
    let first = paths.first()?.parent()?;
    let mut common: Vec<Component> = first.components().collect();
    for path in &paths[1..] {
        let parent: Vec<Component> = path.parent()?.components().collect();
        let same = common
            .iter()
            .zip(&parent)
            .take_while(|(a, b)| a == b)
            .count();
        common.truncate(same);
    }
    let dir: PathBuf = common.iter().map(|c| c.as_os_str()).collect();
    (dir.is_absolute() && dir != Path::new(OsStr::new("/"))).then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let options: Vec<String> = ["index=off", "ro", "rbind", "workdir=/w"]
            .map(String::from)
            .to_vec();
        let (flags, data) = parse_options(&options);
        assert_eq!(
            flags,
            MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC
        );
        assert_eq!(data, ["index=off", "workdir=/w"]);
    }

    #[test]
    fn lowerdirs_become_relative_to_their_common_parent() {
        let mut data = vec![
            "index=off".to_string(),
            "lowerdir=/var/lib/s/snapshots/12/fs:/var/lib/s/snapshots/3/fs".to_string(),
        ];
        let dir = compact_lowerdir(&mut data).unwrap();
        assert_eq!(dir, Path::new("/var/lib/s/snapshots"));
        assert_eq!(data[1], "lowerdir=12/fs:3/fs");
        let mut lone = vec!["lowerdir=/a/fs".to_string()];
        assert_eq!(compact_lowerdir(&mut lone).unwrap(), Path::new("/a"));
        assert_eq!(lone[0], "lowerdir=fs");
        let mut apart = vec!["lowerdir=/x/fs:/y/fs".to_string()];
        assert_eq!(compact_lowerdir(&mut apart), None);
    }
}
