//! Every plugin of the daemon, loaded or built-in, with its init outcome.
//!
//! containerd's model: a registration is `{type, id, requires, config,
//! init}`; all are initialised in dependency order; each outcome is kept
//! (Introspection reports it); a plugin whose init says "skip plugin" is
//! skipped, not failed; disabled plugins are never registered.

use super::graph::{self, CycleError, Node};
use crate::errdefs::{Error, Kind};
use crate::metadata::MetadataStore;
use rcontainerd_plugin_api::host::LoadedPlugin;
use rcontainerd_plugin_api::{content, runtime, snapshot, Driver, InitContext};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Marker a plugin puts in its init error to be skipped rather than failed
/// (real `ctr plugins ls` prints `skip` only on this substring).
pub const SKIP_MARKER: &str = "skip plugin";

/// Types of plugins whose Introspection entry lists the host platform.
const PLATFORM_TYPES: &[&str] = &[
    "io.containerd.snapshotter.v1",
    "io.containerd.differ.v1",
    "io.containerd.runtime.v2",
];

/// How a registration comes to life.
pub enum Init {
    /// Compiled into the daemon.
    Builtin(super::builtin::BuiltinInit),
    /// A driver library that passed loading checks.
    Library(Box<LoadedPlugin>),
    /// A library that could not be loaded: listed with its reason.
    Refused(String),
}

pub struct Registration {
    pub plugin_type: String,
    pub id: String,
    pub requires: Vec<String>,
    pub capabilities: Vec<String>,
    /// The table of keys the plugin accepts, with default values.
    pub default_config: toml::Table,
    pub library: Option<PathBuf>,
    pub init: Init,
}

impl Registration {
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

#[derive(Debug, Clone)]
pub enum Outcome {
    Ok,
    Skipped(String),
    Failed(Error),
}

/// A plugin as Introspection reports it.
#[derive(Debug, Clone)]
pub struct PluginStatus {
    pub plugin_type: String,
    pub id: String,
    pub requires: Vec<String>,
    pub platforms: Vec<(String, String)>,
    pub exports: BTreeMap<String, String>,
    pub capabilities: Vec<String>,
    pub library: Option<PathBuf>,
    pub outcome: Outcome,
}

impl PluginStatus {
    pub fn uri(&self) -> String {
        format!("{}.{}", self.plugin_type, self.id)
    }
}

/// What initialised plugins provide to later ones and to the gRPC services.
#[derive(Default)]
pub struct Initialized {
    pub snapshotters: BTreeMap<String, Arc<dyn snapshot::Snapshotter>>,
    pub content: Option<Arc<dyn content::Store>>,
    pub runtimes: BTreeMap<String, Arc<dyn runtime::Runtime>>,
    pub metadata: Option<Arc<MetadataStore>>,
    /// URIs of plugins whose init succeeded.
    pub ok: Vec<String>,
    /// Values built-ins hand to the server (e.g. the server UUID).
    pub values: BTreeMap<String, String>,
}

impl Initialized {
    pub fn is_ok(&self, uri: &str) -> bool {
        self.ok.iter().any(|u| u == uri)
    }
}

/// Paths and addresses every plugin's init gets.
#[derive(Debug, Clone)]
pub struct Environment {
    pub root: PathBuf,
    pub state: PathBuf,
    pub grpc_address: String,
    pub ttrpc_address: String,
}

/// The registry after init: outcomes in init order, and the live plugins.
pub struct Registry {
    pub statuses: Vec<PluginStatus>,
    pub initialized: Initialized,
}

impl Registry {
    /// Orders `registrations` and initialises each, keeping every outcome.
    pub fn init_all(
        registrations: Vec<Registration>,
        configs: &BTreeMap<String, toml::Table>,
        env: &Environment,
    ) -> Result<Registry, CycleError> {
        let order = graph::order(&registrations)?;
        let present_types: Vec<String> = registrations
            .iter()
            .map(|r| r.plugin_type.clone())
            .collect();
        let mut slots: Vec<Option<Registration>> = registrations.into_iter().map(Some).collect();
        let mut initialized = Initialized::default();
        let mut statuses = Vec::with_capacity(slots.len());
        for i in order {
            let Some(reg) = slots[i].take() else { continue };
            let status = init_one(reg, &present_types, configs, env, &mut initialized);
            statuses.push(status);
        }
        Ok(Registry {
            statuses,
            initialized,
        })
    }

    pub fn status(&self, uri: &str) -> Option<&PluginStatus> {
        self.statuses.iter().find(|s| s.uri() == uri)
    }
}

fn init_one(
    reg: Registration,
    present_types: &[String],
    configs: &BTreeMap<String, toml::Table>,
    env: &Environment,
    done: &mut Initialized,
) -> PluginStatus {
    let uri = reg.uri();
    let platforms = if PLATFORM_TYPES.contains(&reg.plugin_type.as_str()) {
        vec![super::host_platform()]
    } else {
        Vec::new()
    };
    let mut status = PluginStatus {
        plugin_type: reg.plugin_type.clone(),
        id: reg.id.clone(),
        requires: reg.requires.clone(),
        platforms,
        exports: BTreeMap::new(),
        capabilities: reg.capabilities.clone(),
        library: reg.library.clone(),
        outcome: Outcome::Ok,
    };
    let config = effective_config(&reg.default_config, configs.get(&uri));
    let root = env.root.join(&uri);
    let state = env.state.join(&uri);

    let result: Result<BTreeMap<String, String>, Error> = (|| {
        if let Some(missing) = reg
            .requires
            .iter()
            .find(|t| *t != "*" && !present_types.contains(t))
        {
            return Err(Error::not_found(format!(
                "no plugins registered for {missing}"
            )));
        }
        match reg.init {
            Init::Refused(reason) => Err(Error::unknown(reason)),
            Init::Builtin(init) => {
                let ctx = super::builtin::BuiltinContext {
                    uri: &uri,
                    root: &root,
                    state: &state,
                    config: &config,
                    env,
                };
                init(&ctx, done)
            }
            Init::Library(lib) => init_library(
                &lib,
                &reg.plugin_type,
                &reg.id,
                &root,
                &state,
                &config,
                env,
                done,
            ),
        }
    })();

    match result {
        Ok(exports) => {
            tracing::info!(plugin = %uri, library = ?status.library, "loaded plugin");
            status.exports = exports;
            done.ok.push(uri);
        }
        Err(e) if e.message.contains(SKIP_MARKER) => {
            tracing::info!(plugin = %uri, reason = %e.message, "skip loading plugin");
            status.outcome = Outcome::Skipped(e.message);
        }
        Err(e) => {
            tracing::warn!(plugin = %uri, error = %e.message, "failed to load plugin");
            status.outcome = Outcome::Failed(e);
        }
    }
    status
}

#[allow(clippy::too_many_arguments)]
fn init_library(
    lib: &LoadedPlugin,
    plugin_type: &str,
    id: &str,
    root: &Path,
    state: &Path,
    config: &toml::Table,
    env: &Environment,
    done: &mut Initialized,
) -> Result<BTreeMap<String, String>, Error> {
    let ctx = InitContext {
        root: root.to_path_buf(),
        state: state.to_path_buf(),
        config: toml::to_string(config).unwrap_or_default(),
        grpc_address: env.grpc_address.clone(),
        ttrpc_address: env.ttrpc_address.clone(),
    };
    let instance = lib.init(ctx).map_err(|e| {
        let skip = e.is_skip();
        let mut err = Error::from(e);
        if skip && !err.message.contains(SKIP_MARKER) {
            err.message = format!("{}: {SKIP_MARKER}", err.message);
        }
        err
    })?;
    match instance.driver {
        Driver::Snapshotter(s) => {
            done.snapshotters.insert(id.to_string(), s);
        }
        Driver::Content(c) => {
            if done.content.is_some() {
                return Err(Error::new(
                    Kind::AlreadyExists,
                    format!("a content store is already loaded; {plugin_type}.{id} not used"),
                ));
            }
            done.content = Some(c);
        }
        Driver::Runtime(r) => {
            done.runtimes.insert(id.to_string(), r);
        }
        _ => {}
    }
    Ok(instance.exports)
}

/// The plugin's defaults with the operator's table laid over them.
pub fn effective_config(defaults: &toml::Table, overrides: Option<&toml::Table>) -> toml::Table {
    let mut config = defaults.clone();
    if let Some(overrides) = overrides {
        for (k, v) in overrides {
            config.insert(k.clone(), v.clone());
        }
    }
    config
}
