//! `io.containerd.snapshotter.v1.overlayfs`: snapshots as overlay filesystem layers, laid out
//! as containerd lays them out (`<root>/snapshots/<id>/{fs,work}`), with records in a
//! crash-safe journal (`<root>/metadata.journal`).

mod snapshotter;

pub use snapshotter::OverlaySnapshotter;

use std::{fs, path::Path, sync::Arc};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use rcontainerd_plugin_api::{
    export_plugin, Driver, InitContext, Manifest, Plugin, PluginError, PluginInstance, Result,
};
use serde::Deserialize;

pub const PLUGIN_TYPE: &str = "io.containerd.snapshotter.v1";
pub const PLUGIN_ID: &str = "overlayfs";

/// Every key the plugin accepts, with its default.
const DEFAULT_CONFIG: &str = r#"# Directory for snapshots; empty means the plugin's root (<root>/io.containerd.snapshotter.v1.overlayfs).
root_path = ""
# Label each snapshot with its upper directory (containerd.io/snapshot/overlay.upperdir).
upperdir_label = false
# Remove snapshot directories synchronously instead of in cleanup.
sync_remove = false
# Extra options added to every overlay mount.
mount_options = []
"#;

/// The plugin's configuration table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    pub root_path: String,
    pub upperdir_label: bool,
    pub sync_remove: bool,
    pub mount_options: Vec<String>,
}

/// The plugin registration.
pub struct OverlayPlugin;

impl Plugin for OverlayPlugin {
    fn manifest() -> Manifest {
        Manifest::new(PLUGIN_TYPE, PLUGIN_ID).default_config(DEFAULT_CONFIG)
    }

    fn init(ctx: InitContext) -> Result<PluginInstance> {
        let config: Config = ctx.parse_config()?;
        let root = ctx.root_or(&config.root_path);
        let snapshots = root.join("snapshots");
        fs::create_dir_all(&snapshots).map_err(|err| {
            PluginError::io(
                format!("create snapshots directory {}", snapshots.display()),
                err,
            )
        })?;
        check_overlay(&root).map_err(|reason| {
            PluginError::skip(format!(
                "overlayfs is not supported under {}: {reason}",
                root.display()
            ))
        })?;
        let driver = OverlaySnapshotter::open(root.clone(), config)?;
        Ok(PluginInstance::new(Driver::Snapshotter(Arc::new(driver)))
            .export("root", root.to_string_lossy()))
    }
}

/// Mounts a one-layer overlay in a scratch directory under `root`, then removes it all.
fn check_overlay(root: &Path) -> std::result::Result<(), String> {
    let scratch = root.join(format!(".overlay-check-{}", std::process::id()));
    let result = try_overlay_mount(&scratch);
    let cleanup = fs::remove_dir_all(&scratch);
    result?;
    cleanup.map_err(|err| format!("remove {}: {err}", scratch.display()))
}

fn try_overlay_mount(scratch: &Path) -> std::result::Result<(), String> {
    let dirs = ["lower", "upper", "work", "merged"].map(|name| scratch.join(name));
    for dir in &dirs {
        fs::create_dir_all(dir).map_err(|err| format!("create {}: {err}", dir.display()))?;
    }
    let [lower, upper, work, merged] = &dirs;
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|errno| format!("mount overlay: {}", errno.desc().to_lowercase()))?;
    umount2(merged, MntFlags::MNT_DETACH).map_err(|errno| {
        format!(
            "unmount {}: {}",
            merged.display(),
            errno.desc().to_lowercase()
        )
    })
}

export_plugin!(OverlayPlugin);

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn init_mounts_overlay_under_root_and_leaves_no_scratch() {
        if !is_root() {
            rcontainerd_pkg::prereq::missing("root (overlay mounts need it)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("io.containerd.snapshotter.v1.overlayfs");
        let instance = OverlayPlugin::init(InitContext {
            root: root.clone(),
            config: "sync_remove = true\nmount_options = [\"volatile\"]\n".into(),
            ..InitContext::default()
        })
        .unwrap();
        assert_eq!(instance.exports["root"], root.to_string_lossy());
        let mut names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["metadata.journal", "snapshots", "trash"]);
    }

    #[test]
    fn an_uncreatable_root_is_an_error_not_a_skip() {
        let err = OverlayPlugin::init(InitContext {
            root: PathBuf::from("/proc/rcontainerd-overlay-test"),
            ..InitContext::default()
        })
        .unwrap_err();
        assert!(!err.is_skip(), "{err}");
        assert!(
            err.message
                .contains("/proc/rcontainerd-overlay-test/snapshots"),
            "{err}"
        );
    }

    #[test]
    fn skips_when_overlay_cannot_mount_under_root() {
        if !is_root() {
            rcontainerd_pkg::prereq::missing("root (overlay mounts need it)");
            return;
        }
        // An overlay filesystem cannot serve as another overlay's upper directory, so a root
        // inside an overlay mount makes the check fail for real.
        let dir = tempfile::tempdir().unwrap();
        let outer = dir.path().join("outer");
        try_overlay_mount_kept(&outer);
        let root = outer.join("merged/plugin-root");
        let result = OverlayPlugin::init(InitContext {
            root: root.clone(),
            ..InitContext::default()
        });
        umount2(&outer.join("merged"), MntFlags::MNT_DETACH).unwrap();
        let err = result.unwrap_err();
        assert!(err.is_skip(), "{err}");
        let prefix = format!("overlayfs is not supported under {}: ", root.display());
        assert!(err.message.starts_with(&prefix), "{err}");
        assert!(err.message.ends_with(": skip plugin"), "{err}");
    }

    /// Mounts an overlay at `<scratch>/merged` and leaves it mounted.
    fn try_overlay_mount_kept(scratch: &Path) {
        let dirs = ["lower", "upper", "work", "merged"].map(|name| scratch.join(name));
        for dir in &dirs {
            fs::create_dir_all(dir).unwrap();
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            dirs[0].display(),
            dirs[1].display(),
            dirs[2].display()
        );
        mount(
            Some("overlay"),
            &dirs[3],
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .unwrap();
    }

    #[test]
    fn wrong_config_types_fail_init() {
        let err = OverlayPlugin::init(InitContext {
            config: "upperdir_label = \"yes\"\n".into(),
            ..InitContext::default()
        })
        .unwrap_err();
        assert_eq!(err.kind, rcontainerd_plugin_api::ErrorKind::InvalidArgument);
    }
}
