//! `rcontainerd`: a containerd-compatible daemon whose drivers are plugins.

use anyhow::Context;
use clap::{Parser, Subcommand};
mod builtins;
mod daemon;
mod lock;
mod logging;
mod notify;

use rcontainerd_config as config;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "rcontainerd",
    version,
    about = "containerd-compatible daemon with plugin drivers"
)]
struct Cli {
    /// Path to the configuration file (default: /etc/rcontainerd/config.toml if present).
    #[arg(short = 'c', long, global = true)]
    config: Option<PathBuf>,
    /// Persistent state directory (overrides `root`).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Runtime state directory (overrides `state`).
    #[arg(long, global = true)]
    state: Option<PathBuf>,
    /// gRPC socket path (overrides `grpc.address`).
    #[arg(short = 'a', long, global = true)]
    address: Option<PathBuf>,
    /// Log level: trace, debug, info, warn, error (overrides `debug.level`).
    #[arg(short = 'l', long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// Print the full default configuration, with every plugin's table.
    Default,
    /// Print the effective configuration (after imports and flags).
    Dump,
    /// Validate the configuration; exit 1 on any error or warning.
    Check,
}

fn main() -> std::process::ExitCode {
    // Before any thread starts: it changes the environment.
    let notifier = notify::Notifier::take_from_env();
    let cli = Cli::parse();
    match run(cli, notifier) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rcontainerd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `notifier`: systemd's, when it started the daemon as a `Type=notify` service.
fn run(cli: Cli, notifier: Option<notify::Notifier>) -> anyhow::Result<std::process::ExitCode> {
    match &cli.command {
        Some(Command::Config {
            action: ConfigAction::Default,
        }) => {
            logging::init("warn", "");
            let config = config::Config::default();
            let defaults = daemon::plugin_defaults(&daemon::registrations(&config));
            print!("{}", config::render(&config, &defaults));
            Ok(std::process::ExitCode::SUCCESS)
        }
        Some(Command::Config {
            action: ConfigAction::Dump,
        }) => {
            let config = load_config(&cli)?;
            logging::init("warn", "");
            let defaults = daemon::plugin_defaults(&daemon::registrations(&config));
            print!("{}", config::render(&config, &defaults));
            Ok(std::process::ExitCode::SUCCESS)
        }
        Some(Command::Config {
            action: ConfigAction::Check,
        }) => {
            let config = load_config(&cli)?;
            logging::init("error", "");
            let defaults = daemon::plugin_defaults(&daemon::registrations(&config));
            let warnings = config::check_plugin_tables(&config, &defaults);
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            if warnings.is_empty() {
                println!("config ok");
                Ok(std::process::ExitCode::SUCCESS)
            } else {
                Ok(std::process::ExitCode::FAILURE)
            }
        }
        None => {
            let config = load_config(&cli)?;
            logging::init(&config.debug.level, &config.debug.format);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                // Named so the daemon's threads stand out in `ps` and profiles.
                .thread_name("rcontainerd-rt")
                .build()
                .context("starting the async runtime")?;
            if let Some(notifier) = notifier {
                runtime.spawn(notifier.ready_when_serving(config.grpc.address.clone()));
            }
            runtime.block_on(daemon::run(config))?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// The config file (explicit, else the default path if it exists, else
/// built-in defaults) with command-line overrides applied.
fn load_config(cli: &Cli) -> anyhow::Result<config::Config> {
    let mut config = match &cli.config {
        Some(path) => config::load(path)?,
        None => {
            let default = std::path::Path::new(config::DEFAULT_CONFIG_PATH);
            if default.exists() {
                config::load(default)?
            } else {
                config::Config::default()
            }
        }
    };
    if let Some(root) = &cli.root {
        config.root = root.clone();
    }
    if let Some(state) = &cli.state {
        config.state = state.clone();
    }
    if let Some(address) = &cli.address {
        config.grpc.address = address.clone();
    }
    if let Some(level) = &cli.log_level {
        if !config::LOG_LEVELS.contains(&level.as_str()) {
            anyhow::bail!(
                "--log-level {level:?}: expected one of {}",
                config::LOG_LEVELS.join(", ")
            );
        }
        config.debug.level = level.clone();
    }
    Ok(config)
}
