//! A task's bundle: `<state>/<ns>/<id>` (0700) with the spec as `config.json`, the `rootfs`
//! directory the shim mounts onto, and `work` → `<root>/<ns>/<id>`, the shim's own directory
//! that outlives a reboot's tmpfs — the layout containerd's shims expect.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcontainerd_plugin_api::{PluginError, Result};

#[derive(Debug, Clone)]
pub struct Bundle {
    pub namespace: String,
    pub id: String,
    pub path: PathBuf,
    work: PathBuf,
}

fn io_error(what: &str, path: &Path, e: io::Error) -> PluginError {
    PluginError::io(format!("{what} {}", path.display()), e)
}

impl Bundle {
    pub fn locate(state: &Path, root: &Path, namespace: &str, id: &str) -> Bundle {
        Bundle {
            namespace: namespace.to_string(),
            id: id.to_string(),
            path: state.join(namespace).join(id),
            work: root.join(namespace).join(id),
        }
    }

    /// Makes the bundle. An existing one (a task of this id) is an error.
    pub fn create(&self, spec: &[u8]) -> Result<()> {
        let parent = self.path.parent().unwrap_or(&self.path);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(parent)
            .map_err(|e| io_error("create", parent, e))?;
        match fs::DirBuilder::new().mode(0o700).create(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(PluginError::already_exists(format!(
                    "bundle {}",
                    self.path.display()
                )))
            }
            other => other.map_err(|e| io_error("create", &self.path, e))?,
        }
        let made = (|| {
            let rootfs = self.rootfs();
            fs::create_dir(&rootfs).map_err(|e| io_error("create", &rootfs, e))?;
            fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o711))
                .map_err(|e| io_error("chmod", &rootfs, e))?;
            let config = self.path.join("config.json");
            fs::write(&config, spec).map_err(|e| io_error("write", &config, e))?;
            fs::create_dir_all(&self.work).map_err(|e| io_error("create", &self.work, e))?;
            let link = self.path.join("work");
            std::os::unix::fs::symlink(&self.work, &link).map_err(|e| io_error("link", &link, e))
        })();
        if made.is_err() {
            self.remove();
        }
        made
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }

    /// Removes everything of the bundle; the rootfs is unmounted first if the shim left it
    /// mounted (never removing through a mount).
    pub fn remove(&self) {
        let rootfs = self.rootfs();
        let left = rcontainerd_mount::unmount_all_under(&rootfs);
        if !left.is_empty() {
            tracing::warn!(rootfs = %rootfs.display(), ?left, "cannot unmount a bundle's rootfs; keeping the bundle");
            return;
        }
        for dir in [&self.path, &self.work] {
            if let Err(e) = fs::remove_dir_all(dir) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(dir = %dir.display(), error = %e, "removing a bundle");
                }
            }
        }
    }

    /// Every bundle under `state` (`<ns>/<id>` directories), for reconnecting after a restart.
    pub fn all(state: &Path, root: &Path) -> Vec<Bundle> {
        let mut out = Vec::new();
        let Ok(namespaces) = fs::read_dir(state) else {
            return out;
        };
        for ns in namespaces.flatten() {
            if !ns.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let namespace = ns.file_name().to_string_lossy().into_owned();
            let Ok(ids) = fs::read_dir(ns.path()) else {
                continue;
            };
            for id in ids.flatten() {
                if id.file_type().is_ok_and(|t| t.is_dir()) {
                    let id = id.file_name().to_string_lossy().into_owned();
                    out.push(Bundle::locate(state, root, &namespace, &id));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_is_made_once_and_removed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (state, root) = (dir.path().join("state"), dir.path().join("root"));
        let b = Bundle::locate(&state, &root, "ns", "c1");
        b.create(b"{}").unwrap();
        assert_eq!(fs::read(b.path.join("config.json")).unwrap(), b"{}");
        assert!(b.rootfs().is_dir());
        assert_eq!(
            fs::read_link(b.path.join("work")).unwrap(),
            root.join("ns/c1")
        );
        let err = b.create(b"{}").unwrap_err();
        assert_eq!(err.kind, rcontainerd_plugin_api::ErrorKind::AlreadyExists);
        assert_eq!(Bundle::all(&state, &root).len(), 1);
        b.remove();
        assert!(!b.path.exists() && !root.join("ns/c1").exists());
        assert!(Bundle::all(&state, &root).is_empty());
    }
}
