//! A plugin's registration: what it is, what it needs, how it was built.

/// The ABI generation `export_plugin!` exports today.
pub const CURRENT_ABI_GENERATION: u32 = 3;

/// The ABI generations this build of the host can load.
pub const SUPPORTED_ABI_GENERATIONS: &[u32] = &[1, 2, 3];

/// How a plugin library handles panics. Only `Unwind` libraries can be loaded: a panic in an
/// `Abort` library would end the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicStrategy {
    Unwind,
    Abort,
}

impl PanicStrategy {
    /// The strategy of the crate this is evaluated in; the export macro evaluates it in the
    /// plugin crate.
    pub const fn from_unwind(unwind: bool) -> Self {
        if unwind {
            PanicStrategy::Unwind
        } else {
            PanicStrategy::Abort
        }
    }
}

/// A plugin registration, containerd's model: `{type, id, requires, config}` plus build facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// e.g. `io.containerd.snapshotter.v1`.
    pub plugin_type: String,
    /// e.g. `overlayfs`.
    pub id: String,
    /// Plugin types initialised before this one; `"*"` means all.
    pub requires: Vec<String>,
    /// The plugin crate's version; the export macro fills it in when left empty.
    pub plugin_version: String,
    /// Filled in by the export macro.
    pub abi_generation: u32,
    /// Filled in by the export macro.
    pub panic_strategy: PanicStrategy,
    pub capabilities: Vec<String>,
    /// TOML body of the plugin's `[plugins."<uri>"]` table, listing every key it accepts with
    /// its default value.
    pub default_config: String,
}

impl Manifest {
    /// A manifest with no requirements, capabilities or config.
    pub fn new(plugin_type: impl Into<String>, id: impl Into<String>) -> Self {
        Manifest {
            plugin_type: plugin_type.into(),
            id: id.into(),
            requires: Vec::new(),
            plugin_version: String::new(),
            abi_generation: CURRENT_ABI_GENERATION,
            panic_strategy: PanicStrategy::from_unwind(cfg!(panic = "unwind")),
            capabilities: Vec::new(),
            default_config: String::new(),
        }
    }

    /// `<type>.<id>`, e.g. `io.containerd.snapshotter.v1.overlayfs`.
    pub fn uri(&self) -> String {
        format!("{}.{}", self.plugin_type, self.id)
    }

    pub fn requires<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.requires.extend(types.into_iter().map(Into::into));
        self
    }

    pub fn capabilities<I, S>(mut self, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.capabilities
            .extend(capabilities.into_iter().map(Into::into));
        self
    }

    pub fn default_config(mut self, toml: impl Into<String>) -> Self {
        self.default_config = toml.into();
        self
    }

    pub fn plugin_version(mut self, version: impl Into<String>) -> Self {
        self.plugin_version = version.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_uri() {
        let m = Manifest::new("io.containerd.snapshotter.v1", "native")
            .requires(["io.containerd.content.v1"])
            .default_config("root_path = \"\"\n");
        assert_eq!(m.uri(), "io.containerd.snapshotter.v1.native");
        assert_eq!(m.requires, vec!["io.containerd.content.v1".to_string()]);
        assert_eq!(m.abi_generation, CURRENT_ABI_GENERATION);
        assert_eq!(m.default_config, "root_path = \"\"\n");
    }
}
