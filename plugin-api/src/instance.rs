//! What init receives and what it returns.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use crate::{content, error::PluginError, runtime, snapshot, Result};

/// Everything a plugin's init is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitContext {
    /// The plugin's own persistent directory, `<root>/<uri>`.
    pub root: PathBuf,
    /// The plugin's own volatile directory, `<state>/<uri>`.
    pub state: PathBuf,
    /// The plugin's `[plugins."<uri>"]` table as TOML text (may be empty).
    pub config: String,
    pub grpc_address: String,
    pub ttrpc_address: String,
}

impl InitContext {
    /// Parses the plugin's config table. Unknown keys are left to the host (which warns);
    /// a key of the wrong type is an `InvalidArgument` naming the key.
    pub fn parse_config<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        toml::from_str(&self.config).map_err(|err| {
            PluginError::invalid_argument(format!(
                "invalid plugin config: {}",
                err.message().trim_end()
            ))
        })
    }

    /// The directory a driver keeps its data in: `root_path` from its config when set
    /// (containerd's snapshotters accept that key), else the plugin's own root.
    pub fn root_or(&self, root_path: &str) -> PathBuf {
        if root_path.is_empty() {
            self.root.clone()
        } else {
            PathBuf::from(root_path)
        }
    }
}

/// The driver an initialised plugin provides.
#[derive(Clone, Default)]
pub enum Driver {
    /// The plugin only has side effects or exports.
    #[default]
    None,
    Snapshotter(Arc<dyn snapshot::Snapshotter>),
    Content(Arc<dyn content::Store>),
    Runtime(Arc<dyn runtime::Runtime>),
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Driver::None => "Driver::None",
            Driver::Snapshotter(_) => "Driver::Snapshotter",
            Driver::Content(_) => "Driver::Content",
            Driver::Runtime(_) => "Driver::Runtime",
        })
    }
}

/// An initialised plugin: its exports (shown by introspection, e.g. `root`) and its driver.
#[derive(Debug, Clone, Default)]
pub struct PluginInstance {
    pub exports: BTreeMap<String, String>,
    pub driver: Driver,
}

impl PluginInstance {
    pub fn new(driver: Driver) -> Self {
        PluginInstance {
            exports: BTreeMap::new(),
            driver,
        }
    }

    pub fn export(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.exports.insert(key.into(), value.into());
        self
    }
}

/// A plugin as its author writes it; exported with [`export_plugin!`](crate::export_plugin).
pub trait Plugin {
    /// The registration. Called more than once; keep it cheap and free of side effects.
    fn manifest() -> crate::Manifest;
    /// Sets the plugin up. Runs once, synchronously, on a thread the daemon may block.
    fn init(ctx: InitContext) -> Result<PluginInstance>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        sync_remove: bool,
    }

    #[test]
    fn parse_config_reads_keys_and_ignores_unknown_ones() {
        let ctx = InitContext {
            config: "sync_remove = true\nother = 1\n".into(),
            ..InitContext::default()
        };
        let config: Config = ctx.parse_config().unwrap();
        assert!(config.sync_remove);
    }

    #[test]
    fn parse_config_names_a_key_of_the_wrong_type() {
        let ctx = InitContext {
            config: "sync_remove = \"yes\"\n".into(),
            ..InitContext::default()
        };
        let err = ctx.parse_config::<Config>().err().unwrap();
        assert_eq!(err.kind, crate::ErrorKind::InvalidArgument);
        assert!(
            err.message.contains("sync_remove") || err.message.contains("bool"),
            "{err}"
        );
    }
}
