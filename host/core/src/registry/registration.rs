//! What the registry is handed: one [`Registration`] per plugin, built in or
//! loaded from a driver library, and what an init hands back.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::PathBuf;

use rcontainerd_pkg::errdefs::Error;
use rcontainerd_plugin_api::host::LoadedPlugin;

use super::context::InitContext;
use super::graph::Node;

/// A plugin as containerd models one: `{type, id, requires, config, init}`.
pub struct Registration {
    pub plugin_type: String,
    pub id: String,
    /// Plugin types (or `*`) that must be initialised first.
    pub requires: Vec<String>,
    /// The types in `requires` the plugin also works without: ordered after
    /// when present, but not an init error when nobody registers them (all
    /// their plugins disabled, say).
    pub optional: Vec<String>,
    pub capabilities: Vec<String>,
    /// The table of keys the plugin accepts, with default values.
    pub default_config: toml::Table,
    /// The driver library it came from; `None` for a built-in.
    pub library: Option<PathBuf>,
    pub init: Init,
}

impl Registration {
    /// A built-in plugin: compiled into the daemon, listed like any other.
    pub fn builtin(plugin_type: &str, id: &str, requires: &[&str], init: BuiltinInit) -> Self {
        Registration {
            plugin_type: plugin_type.to_string(),
            id: id.to_string(),
            requires: requires.iter().map(|s| s.to_string()).collect(),
            optional: Vec::new(),
            capabilities: Vec::new(),
            default_config: toml::Table::new(),
            library: None,
            init: Init::Builtin(Builtin {
                init,
                stand_in: None,
            }),
        }
    }

    /// Also requires `types`, but works without them: initialised after
    /// their plugins when there are any, and initialised anyway when there
    /// are none.
    pub fn with_optional(mut self, types: &[&str]) -> Self {
        for t in types {
            self.requires.push(t.to_string());
            self.optional.push(t.to_string());
        }
        self
    }

    /// The keys the operator may set in `[plugins."<uri>"]`, with defaults.
    pub fn with_config(mut self, default_config: toml::Table) -> Self {
        self.default_config = default_config;
        self
    }

    /// What to register in the plugin's place when its init fails (a gRPC
    /// service answering Unavailable with the reason, say).
    pub fn with_stand_in(mut self, stand_in: StandIn) -> Self {
        if let Init::Builtin(builtin) = &mut self.init {
            builtin.stand_in = Some(stand_in);
        }
        self
    }

    pub fn uri(&self) -> String {
        format!("{}.{}", self.plugin_type, self.id)
    }
}

impl Node for Registration {
    fn plugin_type(&self) -> &str {
        &self.plugin_type
    }
    fn requires(&self) -> &[String] {
        &self.requires
    }
    fn uri(&self) -> String {
        Registration::uri(self)
    }
}

/// How a registration comes to life.
pub enum Init {
    /// Compiled into the daemon.
    Builtin(Builtin),
    /// A driver library that passed loading checks.
    Library(Box<LoadedPlugin>),
    /// A library that could not be loaded: listed with its reason.
    Refused(String),
    /// A driver in another process, reached over gRPC: a `[proxy_plugins]`
    /// entry.
    Proxy(super::proxy::Spec),
}

pub struct Builtin {
    pub init: BuiltinInit,
    pub stand_in: Option<StandIn>,
}

/// A built-in's init: reads what earlier plugins provide from the context
/// and returns what it provides itself.
pub type BuiltinInit = fn(&InitContext<'_>) -> Result<Instance, InitError>;

/// Builds a stand-in from the failure of the plugin's init.
pub type StandIn = fn(&Error) -> Instance;

/// Why an init did not produce an instance.
#[derive(Debug)]
pub enum InitError {
    /// The plugin does not apply here (containerd's "skip plugin"); not a
    /// failure. The message ends with the skip marker.
    Skip(String),
    Failed(Error),
}

impl From<Error> for InitError {
    fn from(e: Error) -> Self {
        InitError::Failed(e)
    }
}

/// What an initialised plugin provides: a typed value later plugins look up
/// (a driver, a domain store, a gRPC service) and the string exports
/// Introspection lists.
pub struct Instance {
    pub(crate) value: Option<Box<dyn Any + Send + Sync>>,
    pub(crate) exports: BTreeMap<String, String>,
}

impl Instance {
    /// Provides `value`; plugins get it back as a `T` (a cheap clone, so
    /// usually an `Arc`).
    pub fn of<T: Any + Send + Sync>(value: T) -> Self {
        Instance {
            value: Some(Box::new(value)),
            exports: BTreeMap::new(),
        }
    }

    /// Provides nothing but its presence.
    pub fn none() -> Self {
        Instance {
            value: None,
            exports: BTreeMap::new(),
        }
    }

    pub fn with_exports(mut self, exports: BTreeMap<String, String>) -> Self {
        self.exports = exports;
        self
    }
}
