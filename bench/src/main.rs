//! `rcontainerd-bench`: side-by-side measurements of rcontainerd against containerd 1.6.
//!
//! A bench binary rather than a test: it reports numbers, it does not assert them.
//! Results and the commands that produced them live in `docs/benchmarks.md`.

mod boot;
mod daemon;
mod probe;
mod procfs;
mod report;
mod stats;
mod workdir;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "rcontainerd-bench",
    about = "benchmarks rcontainerd against containerd 1.6"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Boot time (exec to first answered Version RPC) and idle RSS, daemons alternating run by run.
    Boot(BootArgs),
}

#[derive(clap::Args, Debug)]
struct BootArgs {
    /// rcontainerd release binary; its plugins are loaded from its directory
    /// [default: $CARGO_TARGET_DIR/release/rcontainerd, else ./target/release/rcontainerd].
    #[arg(long)]
    rcontainerd: Option<PathBuf>,
    /// containerd binary to compare against.
    #[arg(long, default_value = "/usr/bin/containerd")]
    containerd: PathBuf,
    /// Measured runs per daemon (after one warm-up run each).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Which containerd configurations to compare with: `stock`, `no-cri` (CRI plugin disabled), or both.
    #[arg(long, value_delimiter = ',', default_value = "stock,no-cri")]
    containerd_configs: Vec<daemon::ContainerdConfig>,
    /// How long each daemon idles after its first answer before its RSS is read.
    #[arg(long, default_value_t = 1000)]
    idle_ms: u64,
    /// Give up on a daemon that has not answered Version within this many seconds.
    #[arg(long, default_value_t = 30)]
    boot_timeout_s: u64,
    /// Parent of the per-run temporary directories [default: the system temp dir].
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Time a restart instead of a first boot: each run boots the daemon once untimed, stops it, and
    /// times a second boot on the root and state the first left behind.
    #[arg(long)]
    restart: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Boot(args) => {
            let plan = boot::Plan {
                rcontainerd: args.rcontainerd.unwrap_or_else(default_rcontainerd),
                containerd: args.containerd,
                containerd_configs: dedup(args.containerd_configs),
                runs: args.runs,
                idle: std::time::Duration::from_millis(args.idle_ms),
                boot_timeout: std::time::Duration::from_secs(args.boot_timeout_s),
                tmp_dir: args.tmp_dir,
                restart: args.restart,
            };
            let results = boot::run(&plan)?;
            print!("{}", report::render(&plan, &results));
            Ok(())
        }
    }
}

/// Where `cargo build --release -p rcontainerd` puts the daemon.
fn default_rcontainerd() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("release").join("rcontainerd")
}

fn dedup(mut configs: Vec<daemon::ContainerdConfig>) -> Vec<daemon::ContainerdConfig> {
    let mut seen = Vec::new();
    configs.retain(|c| {
        let fresh = !seen.contains(c);
        seen.push(*c);
        fresh
    });
    configs
}
