//! A run's private directory: created fresh, and on the way out stripped of anything the daemon mounted
//! below it before it is removed.

use anyhow::Context;
use rcontainerd_tests::mounts;
use std::path::{Path, PathBuf};

const MAX_UNMOUNT_ROUNDS: usize = 64;

/// Also cleaned up on drop (failures printed as warnings), so an early return leaves no mounts or files behind.
pub struct WorkDir {
    dir: Option<tempfile::TempDir>,
}

impl WorkDir {
    pub fn new(parent: Option<&Path>) -> anyhow::Result<Self> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("rcontainerd-bench-");
        // Absolute and free of symlinks, so it compares equal to the mount points the kernel reports.
        let parent = match parent {
            Some(parent) => parent.to_owned(),
            None => std::env::temp_dir(),
        };
        let parent = parent
            .canonicalize()
            .with_context(|| format!("resolving temp dir {}", parent.display()))?;
        let dir = builder
            .tempdir_in(&parent)
            .with_context(|| format!("creating a run directory in {}", parent.display()))?;
        Ok(Self { dir: Some(dir) })
    }

    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("run directory not yet removed")
            .path()
    }

    /// Leaves the directory (and whatever is mounted in it) in place; returns its path.
    pub fn keep(mut self) -> PathBuf {
        let dir = self.dir.take().expect("run directory not yet removed");
        dir.keep()
    }

    /// Detaches every mount left below the directory, then removes it. Returns the mount points it detached.
    pub fn remove(mut self) -> anyhow::Result<Vec<PathBuf>> {
        self.clean()
    }

    fn clean(&mut self) -> anyhow::Result<Vec<PathBuf>> {
        let Some(dir) = self.dir.take() else {
            return Ok(Vec::new());
        };
        let path = dir.path().to_owned();
        let detached = match detach_mounts_under(&path) {
            Ok(detached) => detached,
            Err(e) => {
                // Deleting through a mount could delete someone else's files: leave the directory be.
                let _ = dir.keep();
                return Err(e.context(format!("keeping run directory {}", path.display())));
            }
        };
        dir.close()
            .with_context(|| format!("removing run directory {}", path.display()))?;
        Ok(detached)
    }
}

/// Detaches every mount at or below `path`; returns the mount points detached.
fn detach_mounts_under(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut detached = Vec::new();
    // Mounts stacked on one point come off one per round.
    for _ in 0..MAX_UNMOUNT_ROUNDS {
        let left = mounts::mounts_under(path).context("reading /proc/self/mountinfo")?;
        if left.is_empty() {
            return Ok(detached);
        }
        for point in left {
            nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH)
                .with_context(|| format!("unmounting {}", point.display()))?;
            detached.push(point);
        }
    }
    anyhow::bail!(
        "mounts still left under {} after {MAX_UNMOUNT_ROUNDS} rounds",
        path.display()
    )
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = self.clean() {
            eprintln!("warning: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_detaches_stacked_mounts_then_deletes_the_directory() {
        if !nix::unistd::geteuid().is_root() {
            rcontainerd_pkg::prereq::missing("root (mounting a tmpfs needs it)");
            return;
        }
        let dir = WorkDir::new(None).unwrap();
        let point = dir.path().join("state/mnt");
        std::fs::create_dir_all(&point).unwrap();
        for _ in 0..2 {
            nix::mount::mount(
                Some("tmpfs"),
                &point,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )
            .unwrap();
        }
        let path = dir.path().to_owned();
        let detached = dir.remove().unwrap();
        assert_eq!(detached, vec![point.clone(), point]);
        assert!(!path.exists());
    }
}
