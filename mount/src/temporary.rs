//! Mounting snapshots for a moment: in a fresh directory of their own, read-only when only read.

use std::path::{Path, PathBuf};

use crate::{Mount, MountError, MountGuard};

/// Mounts in a new directory below a base; on drop, unmounts, then removes the directory with
/// `rmdir` only: if the unmount failed, a recursive removal would delete the snapshot's files.
#[derive(Debug)]
pub struct TempMount {
    guard: Option<MountGuard>,
    dir: PathBuf,
}

impl TempMount {
    /// Mounts `mounts` on a new directory below `base` (created if missing).
    pub fn new(base: &Path, mounts: &[Mount]) -> Result<TempMount, MountError> {
        std::fs::create_dir_all(base)
            .map_err(|e| MountError::new(format!("create {}: {e}", base.display())))?;
        let dir = tempdir_in(base)?;
        match MountGuard::new(mounts, &dir) {
            Ok(guard) => Ok(TempMount {
                guard: Some(guard),
                dir,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// Where the mounts are.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Unmounts and removes the directory now, reporting a failed unmount.
    pub fn release(mut self) -> Result<(), MountError> {
        if let Some(guard) = self.guard.take() {
            guard.unmount()?;
        }
        std::fs::remove_dir(&self.dir)
            .map_err(|e| MountError::new(format!("remove {}: {e}", self.dir.display())))
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            if guard.unmount().is_err() {
                return; // keep the directory: it may still show the snapshot
            }
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// A new, empty directory below `base` with a unique name.
fn tempdir_in(base: &Path) -> Result<PathBuf, MountError> {
    let pid = std::process::id();
    for attempt in 0u32..1000 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!("mount-{pid}-{nanos:x}-{attempt}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(MountError::new(format!("create {}: {e}", dir.display())));
            }
        }
    }
    Err(MountError::new(format!(
        "no free temporary mount directory in {}",
        base.display()
    )))
}

/// The same mounts, read-only. An overlay loses its upper and work directories: the upper
/// becomes the topmost lower directory, since an overlay with an upper cannot be read-only
/// on its own.
pub fn read_only(mounts: &[Mount]) -> Vec<Mount> {
    mounts
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if m.mount_type == "overlay" {
                let upper = m
                    .options
                    .iter()
                    .find_map(|o| o.strip_prefix("upperdir="))
                    .map(str::to_string);
                m.options
                    .retain(|o| !o.starts_with("upperdir=") && !o.starts_with("workdir="));
                if let Some(upper) = upper {
                    for o in &mut m.options {
                        if let Some(lower) = o.strip_prefix("lowerdir=") {
                            *o = format!("lowerdir={upper}:{lower}");
                        }
                    }
                }
            } else {
                m.options.retain(|o| o != "rw" && o != "ro");
                m.options.push("ro".to_string());
            }
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(mount_type: &str, options: &[&str]) -> Mount {
        Mount {
            mount_type: mount_type.to_string(),
            source: "src".to_string(),
            target: String::new(),
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn read_only_overlay_stacks_the_upper_on_the_lowers() {
        let ro = read_only(&[mount(
            "overlay",
            &["index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l1:/l2"],
        )]);
        assert_eq!(ro[0].options, ["index=off", "lowerdir=/u:/l1:/l2"]);
    }

    #[test]
    fn read_only_bind_gets_ro_once() {
        let ro = read_only(&[
            mount("bind", &["rbind", "rw"]),
            mount("bind", &["ro", "rbind"]),
        ]);
        assert_eq!(ro[0].options, ["rbind", "ro"]);
        assert_eq!(ro[1].options, ["rbind", "ro"]);
    }

    #[test]
    fn a_temporary_mount_goes_with_its_directory() {
        if !nix::unistd::geteuid().is_root() {
            rcontainerd_pkg::prereq::missing("root (bind mounts need it)");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let source = tempfile::tempdir().unwrap();
        std::fs::write(source.path().join("f"), b"x").unwrap();
        let bind = Mount {
            mount_type: "bind".to_string(),
            source: source.path().display().to_string(),
            target: String::new(),
            options: vec!["rbind".to_string(), "ro".to_string()],
        };
        let mounted = TempMount::new(&base.path().join("tmpmounts"), &[bind]).unwrap();
        assert_eq!(std::fs::read(mounted.path().join("f")).unwrap(), b"x");
        assert!(std::fs::write(mounted.path().join("g"), b"y").is_err());
        let dir = mounted.path().to_path_buf();
        drop(mounted);
        assert!(!dir.exists());
        assert!(source.path().join("f").exists());
    }
}
