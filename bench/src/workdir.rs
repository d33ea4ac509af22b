//! A run's private directory: created fresh, and on the way out stripped of anything the daemon mounted
//! below it before it is removed.

use crate::procfs;
use anyhow::Context;
use std::path::{Path, PathBuf};

const MAX_UNMOUNT_ROUNDS: usize = 64;

pub struct WorkDir {
    dir: tempfile::TempDir,
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
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Detaches every mount left below the directory, then removes it. Returns the mount points it detached.
    pub fn remove(self) -> anyhow::Result<Vec<PathBuf>> {
        let mut detached = Vec::new();
        // Mounts stacked on one point come off one per round.
        for _ in 0..MAX_UNMOUNT_ROUNDS {
            let left = procfs::mounts_under(self.path()).context("reading /proc/self/mountinfo")?;
            if left.is_empty() {
                break;
            }
            for point in left {
                nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH)
                    .with_context(|| format!("unmounting {}", point.display()))?;
                detached.push(point);
            }
        }
        let path = self.path().to_owned();
        self.dir
            .close()
            .with_context(|| format!("removing run directory {}", path.display()))?;
        Ok(detached)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_detaches_stacked_mounts_then_deletes_the_directory() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting needs root");
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
