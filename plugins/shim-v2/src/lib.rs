//! `io.containerd.runtime.v2.task`: containers run by shim v2 binaries — Debian's
//! `containerd-shim-runc-v2`, or any `containerd-shim-<name>-<version>` on PATH — with
//! containerd's start protocol, one shim per task, reconnected after a daemon restart.
//!
//! The shims forward their own events to the daemon's ttrpc socket; this driver reports only
//! what it learns itself (a shim that died: its task's exit and deletion).

mod binary;
mod bundle;
mod client;
mod launch;
mod log;
mod queue;
mod runtime;
mod time;

use std::sync::Arc;

pub use binary::ShimEnv;
use rcontainerd_plugin_api::{
    export_plugin, Driver, InitContext, Manifest, Plugin, PluginInstance, Result,
};
pub use runtime::ShimRuntime;
use serde::Deserialize;

pub const PLUGIN_TYPE: &str = "io.containerd.runtime.v2";
pub const PLUGIN_ID: &str = "task";

/// Every key the plugin accepts, with its default (containerd 1.6's keys).
const DEFAULT_CONFIG: &str = r#"# Platforms the runtime supports (informational, as containerd's).
platforms = ["linux/amd64"]
# containerd's core-scheduling switch; not supported here (must stay false).
sched_core = false
"#;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Config {
    #[allow(dead_code)]
    platforms: Vec<String>,
    sched_core: bool,
}

/// The plugin registration.
pub struct ShimV2Plugin;

impl Plugin for ShimV2Plugin {
    fn manifest() -> Manifest {
        Manifest::new(PLUGIN_TYPE, PLUGIN_ID).default_config(DEFAULT_CONFIG)
    }

    fn init(ctx: InitContext) -> Result<PluginInstance> {
        log_to_stderr();
        let config: Config = ctx.parse_config()?;
        if config.sched_core {
            return Err(rcontainerd_plugin_api::PluginError::invalid_argument(
                "sched_core is not supported",
            ));
        }
        let env = ShimEnv {
            grpc_address: ctx.grpc_address.clone(),
            ttrpc_address: ctx.ttrpc_address.clone(),
        };
        let driver = ShimRuntime::open(ctx.state.clone(), ctx.root.clone(), env)?;
        Ok(PluginInstance::new(Driver::Runtime(Arc::new(driver)))
            .export("state", ctx.state.to_string_lossy())
            .export("root", ctx.root.to_string_lossy()))
    }
}

/// Sends this library's log lines (the driver's and its shims') to the daemon's stderr, where
/// the daemon logs too, in the journal's format when that is where stderr goes. Linked into a
/// program that set its own subscriber, that one stays.
fn log_to_stderr() {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO);
    let _ = if rcontainerd_pkg::journal::stderr_is_journal() {
        builder
            .event_format(rcontainerd_pkg::journal::format())
            .try_init()
    } else {
        builder.try_init()
    };
}

export_plugin!(ShimV2Plugin);
