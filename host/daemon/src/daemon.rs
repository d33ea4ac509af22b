//! Daemon start-up: plugins from config, init in order, required-plugin
//! checks, then the gRPC server until SIGTERM/SIGINT.

use crate::{builtins, lock};
use anyhow::{bail, Context};
use rcontainerd_config::{self as config, Config};
use rcontainerd_core::ids::METADATA;
use rcontainerd_core::registry::{discovery, proxy, Environment, Outcome, Registration, Registry};
use rcontainerd_services::server::{self, SocketOptions};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Plugin directories in effect: `plugin_dirs`, else the defaults;
/// containerd's single `plugin_dir` is searched too.
pub fn plugin_dirs(config: &Config) -> Vec<PathBuf> {
    let mut dirs = if config.plugin_dirs.is_empty() {
        discovery::default_dirs()
    } else {
        config.plugin_dirs.clone()
    };
    if let Some(dir) = &config.plugin_dir {
        if !dir.as_os_str().is_empty() {
            dirs.push(dir.clone());
        }
    }
    dirs
}

/// All registrations (loaded libraries first, then built-ins, then the
/// proxy plugins), disabled ones included (their config tables are still
/// known keys).
pub fn registrations(config: &Config) -> Vec<Registration> {
    let files = discovery::library_files(&plugin_dirs(config));
    let mut all = discovery::load(&files);
    all.extend(builtins::registrations());
    let proxies = proxy::registrations(&proxy_specs(config), &all);
    all.extend(proxies);
    all
}

/// `[proxy_plugins]` as the registry takes them. The config loader has
/// refused unknown types already; one that slipped through is skipped.
fn proxy_specs(config: &Config) -> Vec<proxy::Spec> {
    config
        .proxy_plugins
        .iter()
        .filter_map(|(name, p)| {
            let kind = proxy::Kind::parse(&p.plugin_type)?;
            let snapshotter = if p.snapshotter.is_empty() {
                name.clone()
            } else {
                p.snapshotter.clone()
            };
            Some(proxy::Spec {
                name: name.clone(),
                kind,
                address: p.address.clone(),
                snapshotter,
            })
        })
        .collect()
}

/// Drops the registrations `disabled_plugins` names: never initialised, not listed.
pub fn without_disabled(config: &Config, mut all: Vec<Registration>) -> Vec<Registration> {
    all.retain(|r| {
        let disabled = config.disabled_plugins.contains(&r.uri());
        if disabled {
            tracing::info!(plugin = %r.uri(), "plugin disabled by config");
        }
        !disabled
    });
    all
}

/// Default tables of every known plugin, keyed by URI.
pub fn plugin_defaults(registrations: &[Registration]) -> BTreeMap<String, toml::Table> {
    registrations
        .iter()
        .filter(|r| r.plugin_type != discovery::LIBRARY_TYPE)
        .map(|r| (r.uri(), r.default_config.clone()))
        .collect()
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    for dir in [&config.root, &config.state] {
        if !dir.is_absolute() {
            bail!("{} must be an absolute path", dir.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Before anything else touches them: a second daemon on the same root
    // must not open the live one's driver journals or database.
    let _root_lock = lock::lock(&config.root)?;
    let _state_lock = lock::lock(&config.state)?;
    let socket = SocketOptions {
        path: config.grpc.address.clone(),
        uid: config.grpc.uid,
        gid: config.grpc.gid,
        max_recv_message_size: config.grpc.max_recv_message_size,
        max_send_message_size: config.grpc.max_send_message_size,
    };
    // Bind first: a second daemon on the same address must not touch plugins.
    let listener = server::bind(&socket).map_err(|e| anyhow::anyhow!(e.message))?;
    let ttrpc_path = ttrpc_address(&config);
    // The ttrpc socket too: shims reconnected at start-up forward their events to it.
    let ttrpc_listener = server::bind(&SocketOptions {
        path: ttrpc_path.clone(),
        uid: config.ttrpc.uid,
        gid: config.ttrpc.gid,
        max_recv_message_size: 0,
        max_send_message_size: 0,
    })
    .map_err(|e| anyhow::anyhow!(e.message))?;

    let cfg = config.clone();
    let registry = tokio::task::spawn_blocking(move || -> anyhow::Result<Registry> {
        let registrations = registrations(&cfg);
        for warning in config::check_plugin_tables(&cfg, &plugin_defaults(&registrations)) {
            tracing::warn!("config: {warning}");
        }
        let registrations = without_disabled(&cfg, registrations);
        let ttrpc = ttrpc_address(&cfg).display().to_string();
        let env = Environment {
            root: cfg.root.clone(),
            state: cfg.state.clone(),
            grpc_address: cfg.grpc.address.display().to_string(),
            ttrpc_address: ttrpc,
        };
        Ok(Registry::init_all(registrations, &cfg.plugins, &env)?)
    })
    .await??;

    check_metadata(&registry)?;
    check_required(&config, &registry)?;

    // SIGHUP: isolated drivers whose library file was replaced restart on
    // the new file, each after draining its calls in flight.
    let reloads = tokio::spawn(reload_on_sighup());

    // One signal stops both endpoints.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("received SIGTERM; shutting down"),
            _ = int.recv() => tracing::info!("received SIGINT; shutting down"),
        }
        let _ = stop.send(true);
    };
    let ttrpc_stop = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    };
    let grpc = server::serve(&registry, listener, &socket, started, shutdown);
    let ttrpc = async {
        let served =
            rcontainerd_services::ttrpc::serve(&registry, ttrpc_listener, ttrpc_stop).await;
        let _ = std::fs::remove_file(&ttrpc_path);
        served
    };
    let (grpc, ttrpc) = tokio::join!(grpc, ttrpc);
    if let Err(e) = ttrpc {
        tracing::error!("{}", e.message);
    }
    reloads.abort();
    grpc.map_err(|e| anyhow::anyhow!(e.message))?;
    // Isolated drivers stop before the records are flushed, as in-process
    // ones stop with the process.
    let _ = tokio::task::spawn_blocking(rcontainerd_isolation::stop_all).await;
    rcontainerd_core::metadata::flush_at_shutdown(&registry);
    tracing::info!("rcontainerd stopped");
    Ok(())
}

/// Upgrades isolated drivers on every SIGHUP (see docs/plugin-authors.md).
async fn reload_on_sighup() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("received SIGHUP; restarting isolated drivers whose library changed");
        let Ok(outcomes) = tokio::task::spawn_blocking(rcontainerd_isolation::reload).await else {
            continue;
        };
        for (uri, outcome) in outcomes {
            match outcome {
                Ok(true) => tracing::info!(plugin = %uri, "isolated driver upgraded"),
                Ok(false) => tracing::debug!(plugin = %uri, "library unchanged"),
                Err(e) => tracing::error!(plugin = %uri, error = %e.message, "upgrade failed"),
            }
        }
    }
}

/// `[ttrpc] address`, or `<grpc address>.ttrpc` as containerd's default.
fn ttrpc_address(config: &Config) -> PathBuf {
    if config.ttrpc.address.as_os_str().is_empty() {
        PathBuf::from(format!("{}.ttrpc", config.grpc.address.display()))
    } else {
        config.ttrpc.address.clone()
    }
}

/// Every namespaced service stands on the metadata store: without it the
/// daemon would serve a socket on which nothing works, so it stops instead.
fn check_metadata(registry: &Registry) -> anyhow::Result<()> {
    match registry.status(METADATA).map(|s| &s.outcome) {
        Some(Outcome::Ok) => Ok(()),
        None => {
            bail!("the metadata store {METADATA} is disabled; the daemon cannot run without it")
        }
        Some(Outcome::Skipped(reason)) => {
            bail!("the metadata store {METADATA} was skipped: {reason}")
        }
        Some(Outcome::Failed(e)) => bail!(
            "the metadata store {METADATA} failed to open: {}",
            e.message
        ),
    }
}

/// Every `required_plugins` entry must have initialised.
fn check_required(config: &Config, registry: &Registry) -> anyhow::Result<()> {
    for uri in &config.required_plugins {
        if config.disabled_plugins.contains(uri) {
            bail!("required plugin {uri} is disabled by disabled_plugins");
        }
        match registry.status(uri).map(|s| &s.outcome) {
            None => {
                bail!("required plugin {uri} is not present (no library or built-in provides it)")
            }
            Some(Outcome::Skipped(reason)) => bail!("required plugin {uri} skipped: {reason}"),
            Some(Outcome::Failed(e)) => {
                bail!("required plugin {uri} failed to load: {}", e.message)
            }
            Some(Outcome::Ok) => {}
        }
    }
    Ok(())
}
