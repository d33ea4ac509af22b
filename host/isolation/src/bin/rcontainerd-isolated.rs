//! `rcontainerd-isolated`: serves one driver of a plugin library in a
//! process of its own. The daemon starts it for a plugin configured with
//! `isolation = "process"`; it is not meant to be run by hand.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use rcontainerd_isolation::child::{self, Args};
use rcontainerd_plugin_api::InitContext;

#[derive(Parser)]
#[command(
    version,
    about = "Serves one rcontainerd driver library in its own process"
)]
struct Cli {
    /// The plugin's URI (`<type>.<id>`).
    #[arg(long)]
    uri: String,
    #[arg(long)]
    library: PathBuf,
    /// The private socket to serve on.
    #[arg(long)]
    socket: PathBuf,
    #[arg(long)]
    root: PathBuf,
    #[arg(long)]
    state: PathBuf,
    #[arg(long, default_value = "")]
    grpc_address: String,
    #[arg(long, default_value = "")]
    ttrpc_address: String,
    /// Capabilities to keep, comma-separated (`CAP_CHOWN,…`).
    #[arg(long, default_value = "")]
    capabilities: String,
    /// The driver's config table, as TOML.
    #[arg(long, default_value = "")]
    config: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let span = tracing::info_span!("isolated", plugin = %cli.uri);
    let _entered = span.enter();
    let args = Args {
        uri: cli.uri.clone(),
        library: cli.library,
        socket: cli.socket,
        init: InitContext {
            root: cli.root,
            state: cli.state,
            config: cli.config,
            grpc_address: cli.grpc_address,
            ttrpc_address: cli.ttrpc_address,
        },
        capabilities: cli
            .capabilities
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
    };
    child::run(args).with_context(|| format!("isolated plugin {}", cli.uri))
}
