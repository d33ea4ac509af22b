//! Finds driver libraries (`*.so`) in the plugin directories and turns each
//! into registrations. A library that cannot be loaded is still registered,
//! as a refusal with a one-line reason, so operators see it in
//! `ctr plugins ls` instead of a daemon that silently lacks a driver.

use super::{Init, Registration};
use rcontainerd_plugin_api::host::load_library;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Type under which a library that names no plugin is listed.
pub const LIBRARY_TYPE: &str = "rcontainerd.plugin-library.v1";

/// Default plugin directories: next to the daemon binary (so a fresh
/// `cargo build` just works), then the system-wide one.
pub fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        dirs.push(dir);
    }
    dirs.push(PathBuf::from("/usr/local/lib/rcontainerd/plugins"));
    dirs
}

/// `*.so` files of `dirs`, in directory order then by name; each file once.
pub fn library_files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            tracing::debug!(dir = %dir.display(), "plugin directory not readable; skipped");
            continue;
        };
        let mut here: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "so"))
            .collect();
        here.sort();
        for path in here {
            let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if seen.insert(key) {
                files.push(path);
            }
        }
    }
    files
}

/// Loads every library; refusals become registrations too. A library whose
/// plugin URI is already taken is refused, naming the first library.
pub fn load(files: &[PathBuf]) -> Vec<Registration> {
    let mut registrations: Vec<Registration> = Vec::new();
    for path in files {
        match load_library(path) {
            Ok(plugins) => {
                for plugin in plugins {
                    let m = plugin.manifest().clone();
                    let mut default_config = parse_default_config(&m.default_config, path);
                    if let Some(keys) = super::isolated::default_keys(&m.plugin_type) {
                        default_config.extend(keys);
                    }
                    let uri = m.uri();
                    let duplicate = registrations
                        .iter()
                        .find(|r| r.uri() == uri && r.library.is_some())
                        .and_then(|r| r.library.clone());
                    let init = match duplicate {
                        Some(first) => Init::Refused(format!(
                            "plugin {uri} is already loaded from {}",
                            first.display()
                        )),
                        None => Init::Library(Box::new(plugin)),
                    };
                    registrations.push(Registration {
                        plugin_type: m.plugin_type,
                        id: m.id,
                        requires: m.requires,
                        optional: Vec::new(),
                        capabilities: m.capabilities,
                        default_config,
                        library: Some(path.clone()),
                        init,
                    });
                }
            }
            Err(e) => {
                let reason = e.to_string();
                let (plugin_type, id) = e.plugin().unwrap_or_else(|| {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    (LIBRARY_TYPE.to_string(), name)
                });
                registrations.push(Registration {
                    plugin_type,
                    id,
                    requires: Vec::new(),
                    optional: Vec::new(),
                    capabilities: Vec::new(),
                    default_config: toml::Table::new(),
                    library: Some(path.clone()),
                    init: Init::Refused(reason),
                });
            }
        }
    }
    registrations
}

fn parse_default_config(text: &str, path: &Path) -> toml::Table {
    match text.parse::<toml::Table>() {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(library = %path.display(), error = %e, "plugin's default config is not valid TOML; ignored");
            toml::Table::new()
        }
    }
}
