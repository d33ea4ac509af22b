//! A library plugin configured with `isolation = "process"`: its driver is
//! served by a supervised child process (`rcontainerd-isolation`) and
//! reached through a proxy driver, so a crash or hang in it costs only the
//! calls in flight. The host's isolation keys never reach the driver.

use std::collections::BTreeMap;
use std::sync::Arc;

use rcontainerd_isolation::{DriverKind, Mode, Settings};
use rcontainerd_pkg::errdefs::Error;
use rcontainerd_plugin_api::{Driver, PluginError};
use rcontainerd_proxy::{ProxyContentStore, ProxySnapshotter};

use super::{InitContext, InitError, LiveExports};
use crate::ids::{CONTENT_TYPE, SNAPSHOTTER_TYPE};

/// The isolation keys with their defaults, for the plugin types that can
/// be isolated.
pub fn default_keys(plugin_type: &str) -> Option<toml::Table> {
    [SNAPSHOTTER_TYPE, CONTENT_TYPE]
        .contains(&plugin_type)
        .then(rcontainerd_isolation::settings::defaults)
}

/// Splits the plugin's effective config into the host's settings and the
/// driver's own table.
pub fn settings(uri: &str, config: &toml::Table) -> Result<(Settings, toml::Table), Error> {
    let mut driver_config = config.clone();
    let settings = Settings::take(uri, &mut driver_config)
        .map_err(|e| Error::invalid_argument(e.to_string()))?;
    Ok((settings, driver_config))
}

/// A driver, its exports and its live exports, served from a child.
pub struct Started {
    pub driver: Driver,
    pub exports: BTreeMap<String, String>,
    pub live: LiveExports,
}

/// Starts the child for plugin `ctx.uri` of `library` and waits until it
/// serves; its init's failure (a skip included) is the plugin's.
pub fn start(
    ctx: &InitContext<'_>,
    library: &std::path::Path,
    plugin_type: &str,
    settings: Settings,
    driver_config: &toml::Table,
) -> Result<Started, InitError> {
    debug_assert_eq!(settings.mode, Mode::Process);
    if default_keys(plugin_type).is_none() {
        return Err(Error::failed_precondition(format!(
            "isolation = \"process\": only snapshotter and content drivers can be isolated, not {plugin_type}"
        ))
        .into());
    }
    let helper = rcontainerd_isolation::helper_path().ok_or_else(|| {
        Error::failed_precondition(format!(
            "isolation = \"process\" needs {} next to the daemon or in /usr/lib/rcontainerd",
            rcontainerd_isolation::HELPER
        ))
    })?;
    let sockets = ctx.env.state.join("isolated");
    std::fs::create_dir_all(&sockets)
        .map_err(|e| Error::unavailable(format!("create {}: {e}", sockets.display())))?;
    let spec = rcontainerd_isolation::Spec {
        uri: ctx.uri.to_string(),
        library: library.to_path_buf(),
        helper,
        socket: sockets.join(format!("{}.sock", ctx.uri)),
        init: rcontainerd_plugin_api::InitContext {
            root: ctx.root.to_path_buf(),
            state: ctx.state.to_path_buf(),
            config: toml::to_string(driver_config).unwrap_or_default(),
            grpc_address: ctx.env.grpc_address.clone(),
            ttrpc_address: ctx.env.ttrpc_address.clone(),
        },
        settings,
    };
    let isolated = rcontainerd_isolation::start(spec).map_err(|e: PluginError| {
        if e.is_skip() {
            InitError::Skip(e.message)
        } else {
            InitError::Failed(Error::from(e))
        }
    })?;
    let kind_matches = match isolated.kind {
        DriverKind::Snapshotter => plugin_type == SNAPSHOTTER_TYPE,
        DriverKind::Content => plugin_type == CONTENT_TYPE,
    };
    if !kind_matches {
        return Err(Error::failed_precondition(format!(
            "{} registered as {plugin_type} but serves a {:?} driver",
            ctx.uri, isolated.kind
        ))
        .into());
    }
    let driver = match isolated.kind {
        DriverKind::Snapshotter => Driver::Snapshotter(Arc::new(ProxySnapshotter::new(
            isolated.remote,
            ctx.uri.rsplit('.').next().unwrap_or(ctx.uri),
        ))),
        DriverKind::Content => Driver::Content(Arc::new(ProxyContentStore::new(isolated.remote))),
    };
    let supervisor = isolated.supervisor;
    Ok(Started {
        driver,
        exports: isolated.exports,
        live: LiveExports::new(move || supervisor.exports()),
    })
}
