//! Every plugin of the daemon, loaded or built-in, with its init outcome.
//!
//! containerd's model: a registration is `{type, id, requires, config,
//! init}`; all are initialised in dependency order; each outcome is kept
//! (Introspection reports it); a plugin whose init says "skip plugin" is
//! skipped, not failed; disabled plugins are never registered. What an init
//! provides is kept typed ([`Instance`]) and handed to the plugins that
//! come after it through their [`InitContext`].

mod context;
pub mod discovery;
mod graph;
pub mod isolated;
pub mod proxy;
mod registration;

use std::any::Any;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rcontainerd_pkg::errdefs::{Error, Kind};
use rcontainerd_plugin_api::host::LoadedPlugin;
use rcontainerd_plugin_api::{Driver, PluginError};

pub use context::{Environment, InitContext, StatusBoard};
use context::{Live, Slot};
pub use graph::CycleError;
pub use registration::{Builtin, BuiltinInit, Init, InitError, Instance, Registration, StandIn};

/// Types of plugins whose Introspection entry lists the host platform.
const PLATFORM_TYPES: &[&str] = &[
    "io.containerd.snapshotter.v1",
    "io.containerd.differ.v1",
    "io.containerd.runtime.v2",
];

#[derive(Debug, Clone)]
pub enum Outcome {
    Ok,
    /// The plugin does not apply here; the reason ends with "skip plugin".
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
    /// Exports that change while the daemon runs (an isolated driver's
    /// state and restart count), laid over `exports` when read.
    pub live: Option<LiveExports>,
}

impl PluginStatus {
    pub fn uri(&self) -> String {
        format!("{}.{}", self.plugin_type, self.id)
    }
}

/// A source of exports read at every Introspection call.
#[derive(Clone)]
pub struct LiveExports(Arc<dyn Fn() -> BTreeMap<String, String> + Send + Sync>);

impl LiveExports {
    pub fn new(f: impl Fn() -> BTreeMap<String, String> + Send + Sync + 'static) -> Self {
        LiveExports(Arc::new(f))
    }

    /// The exports as of now; they override the init's exports of the same name.
    pub fn read(&self) -> BTreeMap<String, String> {
        (self.0)()
    }
}

impl std::fmt::Debug for LiveExports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveExports")
    }
}

/// The registry after init: every outcome in init order, and the values
/// the plugins provide.
pub struct Registry {
    board: StatusBoard,
    live: Live,
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
        let board = StatusBoard::default();
        let mut live = Live::default();
        let mut statuses = Vec::with_capacity(slots.len());
        for i in order {
            let Some(reg) = slots[i].take() else { continue };
            let status = init_one(reg, &present_types, configs, env, &mut live, &board);
            statuses.push(status);
        }
        board.fill(statuses);
        Ok(Registry { board, live })
    }

    /// Every plugin in init order.
    pub fn statuses(&self) -> &[PluginStatus] {
        self.board.statuses()
    }

    pub fn status(&self, uri: &str) -> Option<&PluginStatus> {
        self.statuses().iter().find(|s| s.uri() == uri)
    }

    /// The value plugin `uri` provides (see [`InitContext::get`]).
    pub fn get<T: Any + Clone>(&self, uri: &str) -> Result<T, Error> {
        self.live.get(uri)
    }

    /// The value of every plugin of `plugin_type` that provides a `T`, by
    /// plugin ID — including the stand-ins of those that failed.
    pub fn all_with_stand_ins<T: Any + Clone>(&self, plugin_type: &str) -> BTreeMap<String, T> {
        let mut all = self.live.all::<T>(plugin_type);
        let prefix = format!("{plugin_type}.");
        for (uri, value) in &self.live.stand_ins {
            if let (Some(id), Some(value)) = (uri.strip_prefix(&prefix), value.downcast_ref::<T>())
            {
                all.insert(id.to_string(), value.clone());
            }
        }
        all
    }
}

fn init_one(
    reg: Registration,
    present_types: &[String],
    configs: &BTreeMap<String, toml::Table>,
    env: &Environment,
    live: &mut Live,
    board: &StatusBoard,
) -> PluginStatus {
    let uri = reg.uri();
    let is_proxy = matches!(reg.init, Init::Proxy(_));
    let platforms = if PLATFORM_TYPES.contains(&reg.plugin_type.as_str()) && !is_proxy {
        vec![rcontainerd_pkg::platform::host()]
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
        live: None,
    };
    let config = effective_config(&reg.default_config, configs.get(&uri));
    let root = env.root.join(&uri);
    let state = env.state.join(&uri);
    let ctx = InitContext {
        uri: &uri,
        root: &root,
        state: &state,
        config: &config,
        env,
        live,
        board,
    };

    // Also stands in when a required type is missing, before init runs.
    let stand_in = match &reg.init {
        Init::Builtin(builtin) => builtin.stand_in,
        _ => None,
    };
    let result: Result<Instance, InitError> = (|| {
        if let Some(missing) = reg
            .requires
            .iter()
            .find(|t| *t != "*" && !present_types.contains(t) && !reg.optional.contains(t))
        {
            return Err(Error::not_found(format!("no plugins registered for {missing}")).into());
        }
        match reg.init {
            Init::Refused(reason) => Err(Error::unknown(reason).into()),
            Init::Builtin(builtin) => (builtin.init)(&ctx),
            Init::Library(lib) => {
                let (settings, driver_config) = isolated::settings(&uri, ctx.config)?;
                if settings.mode == rcontainerd_isolation::Mode::Process {
                    let started = isolated::start(
                        &ctx,
                        lib.path(),
                        &reg.plugin_type,
                        settings,
                        &driver_config,
                    )?;
                    status.live = Some(started.live);
                    Ok(driver_instance(started.driver, &ctx, &reg.plugin_type)?
                        .with_exports(started.exports))
                } else {
                    init_library(&lib, &ctx, &driver_config, &reg.plugin_type)
                }
            }
            Init::Proxy(spec) => {
                let (driver, exports) = proxy::driver(&spec).map_err(Error::from)?;
                Ok(driver_instance(driver, &ctx, &reg.plugin_type)?.with_exports(exports))
            }
        }
    })();

    let value = match result {
        Ok(instance) => {
            tracing::info!(plugin = %uri, library = ?status.library, "loaded plugin");
            status.exports = instance.exports;
            instance.value
        }
        Err(InitError::Skip(reason)) => {
            tracing::info!(plugin = %uri, reason = %reason, "skip loading plugin");
            status.outcome = Outcome::Skipped(reason);
            None
        }
        Err(InitError::Failed(e)) => {
            tracing::warn!(plugin = %uri, error = %e.message, "failed to load plugin");
            if let Some(stand_in) = stand_in {
                if let Some(value) = stand_in(&e).value {
                    live.stand_ins.insert(uri.clone(), value);
                }
            }
            status.outcome = Outcome::Failed(e);
            None
        }
    };
    live.slots.insert(
        uri,
        Slot {
            plugin_type: reg.plugin_type,
            outcome: status.outcome.clone(),
            value,
        },
    );
    status
}

/// A library's plugin in the daemon's process; `driver_config` is its
/// table without the host's isolation keys.
fn init_library(
    lib: &LoadedPlugin,
    ctx: &InitContext<'_>,
    driver_config: &toml::Table,
    plugin_type: &str,
) -> Result<Instance, InitError> {
    let init = rcontainerd_plugin_api::InitContext {
        root: ctx.root.to_path_buf(),
        state: ctx.state.to_path_buf(),
        config: toml::to_string(driver_config).unwrap_or_default(),
        grpc_address: ctx.env.grpc_address.clone(),
        ttrpc_address: ctx.env.ttrpc_address.clone(),
    };
    let instance = lib.init(init).map_err(|e| {
        if e.is_skip() {
            InitError::Skip(PluginError::skip(e.message).message)
        } else {
            InitError::Failed(Error::from(e))
        }
    })?;
    Ok(driver_instance(instance.driver, ctx, plugin_type)?.with_exports(instance.exports))
}

/// What a driver provides to the plugins after it; a second content store is
/// refused.
fn driver_instance(
    driver: Driver,
    ctx: &InitContext<'_>,
    plugin_type: &str,
) -> Result<Instance, InitError> {
    let value = match driver {
        Driver::Snapshotter(s) => Instance::of(s),
        Driver::Content(c) => {
            if !ctx
                .all::<std::sync::Arc<dyn rcontainerd_plugin_api::content::Store>>(plugin_type)
                .is_empty()
            {
                return Err(Error::new(
                    Kind::AlreadyExists,
                    format!("a content store is already loaded; {} not used", ctx.uri),
                )
                .into());
            }
            Instance::of(c)
        }
        Driver::Runtime(r) => Instance::of(r),
        _ => Instance::none(),
    };
    Ok(value)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn provide(_: &InitContext<'_>) -> Result<Instance, InitError> {
        Ok(Instance::of(7u32))
    }

    fn env() -> Environment {
        Environment {
            root: PathBuf::from("/nonexistent/root"),
            state: PathBuf::from("/nonexistent/state"),
            grpc_address: String::new(),
            ttrpc_address: String::new(),
        }
    }

    #[test]
    fn an_optional_requirement_orders_but_may_be_absent() {
        let registrations = vec![
            Registration::builtin("t.user", "strict", &["t.absent"], provide)
                .with_stand_in(|_| Instance::of(0u32)),
            Registration::builtin("t.user", "lenient", &[], provide).with_optional(&["t.absent"]),
            Registration::builtin("t.user", "after", &[], provide).with_optional(&["t.dep"]),
            Registration::builtin("t.dep", "dep", &[], provide),
        ];
        let registry = Registry::init_all(registrations, &BTreeMap::new(), &env()).unwrap();
        let strict = registry.status("t.user.strict").unwrap();
        match &strict.outcome {
            Outcome::Failed(e) => assert_eq!(e.message, "no plugins registered for t.absent"),
            other => panic!("{other:?}"),
        }
        // Its stand-in serves in its place, as for any failed init.
        assert_eq!(
            registry.all_with_stand_ins::<u32>("t.user").get("strict"),
            Some(&0)
        );
        let lenient = registry.status("t.user.lenient").unwrap();
        assert!(matches!(lenient.outcome, Outcome::Ok));
        assert_eq!(lenient.requires, ["t.absent"]);
        // Present optional types still come first.
        let order: Vec<String> = registry.statuses().iter().map(|s| s.uri()).collect();
        let at = |uri: &str| order.iter().position(|u| u == uri).unwrap();
        assert!(at("t.dep.dep") < at("t.user.after"), "{order:?}");
        assert_eq!(registry.get::<u32>("t.user.after").unwrap(), 7);
    }
}
