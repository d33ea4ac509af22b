//! Command line: the commands, flags and environment variables of containerd's
//! ctr 1.6 for the subset we implement.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::duration;

/// Where our daemon listens unless told otherwise (containerd's ctr uses
/// `/run/containerd/containerd.sock`).
pub const DEFAULT_ADDRESS: &str = "/run/rcontainerd/rcontainerd.sock";

/// ctr: debug and administrative client for rcontainerd (and containerd).
#[derive(Debug, Parser)]
#[command(
    name = "ctr",
    version = concat!("rcontainerd ", "1.6.20+rcontainerd.", env!("CARGO_PKG_VERSION")),
    about,
    arg_required_else_help = true,
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    /// Print the version
    #[arg(short = 'v', long, action = clap::ArgAction::Version)]
    version: (),
    #[command(subcommand)]
    pub command: Command,
}

/// Options that come before the command, as with containerd's ctr.
#[derive(Debug, Args)]
pub struct GlobalOptions {
    /// Enable debug output in logs
    #[arg(long)]
    pub debug: bool,
    /// Address of the daemon's gRPC socket (rcontainerd's default; containerd's
    /// is /run/containerd/containerd.sock)
    #[arg(short, long, env = "CONTAINERD_ADDRESS", default_value = DEFAULT_ADDRESS)]
    pub address: String,
    /// Total timeout for ctr commands (Go duration: 10s, 1m30s; 0s = none)
    #[arg(long, default_value = "0s", value_parser = duration::parse)]
    pub timeout: Duration,
    /// Timeout for connecting to the daemon (0s = the default of 10s)
    #[arg(long, default_value = "0s", value_parser = duration::parse)]
    pub connect_timeout: Duration,
    /// Namespace to use with commands
    #[arg(short, long, env = "CONTAINERD_NAMESPACE", default_value = "default")]
    pub namespace: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Provides information about plugins
    #[command(visible_alias = "plugin", subcommand, arg_required_else_help = true)]
    Plugins(PluginsCommand),
    /// Print the client and server versions
    Version,
    /// Manage namespaces
    #[command(
        visible_aliases = ["namespace", "ns"],
        subcommand,
        arg_required_else_help = true
    )]
    Namespaces(NamespacesCommand),
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Lists plugins
    #[command(visible_alias = "ls")]
    List(PluginsList),
}

#[derive(Debug, Args)]
pub struct PluginsList {
    /// Print only the plugin ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Print detailed information about each plugin
    #[arg(short, long)]
    pub detailed: bool,
    /// Filters, e.g. type==io.containerd.snapshotter.v1 (any one may match)
    pub filters: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum NamespacesCommand {
    /// Create a new namespace; it must be unique
    #[command(visible_alias = "c")]
    Create(NamespaceWithLabels),
    /// List namespaces
    #[command(visible_alias = "ls")]
    List(NamespacesList),
    /// Remove one or more namespaces; for now, each must be empty
    #[command(visible_alias = "rm")]
    Remove(NamespacesRemove),
    /// Set and clear labels for a namespace; an empty value clears the label
    Label(NamespaceWithLabels),
}

#[derive(Debug, Args)]
pub struct NamespaceWithLabels {
    /// The namespace
    pub name: Option<String>,
    /// Labels as KEY=VALUE (a bare KEY means KEY=true)
    pub labels: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NamespacesList {
    /// Print only the namespace name
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct NamespacesRemove {
    /// Delete the namespace's cgroup
    #[arg(short, long)]
    pub cgroup: bool,
    /// The namespaces to remove
    pub names: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn reads_global_options_before_the_command() {
        let cli = parse(&[
            "ctr",
            "-a",
            "/tmp/x.sock",
            "-n",
            "foo",
            "--timeout",
            "1m",
            "namespaces",
            "ls",
        ]);
        assert_eq!(cli.global.address, "/tmp/x.sock");
        assert_eq!(cli.global.namespace, "foo");
        assert_eq!(cli.global.timeout, Duration::from_secs(60));
        assert!(matches!(
            cli.command,
            Command::Namespaces(NamespacesCommand::List(NamespacesList { quiet: false }))
        ));
    }

    #[test]
    fn accepts_the_aliases_and_flags_of_containerds_ctr() {
        let cli = parse(&["ctr", "plugin", "ls", "-q", "-d", "id==native"]);
        let Command::Plugins(PluginsCommand::List(list)) = cli.command else {
            panic!("not plugins ls");
        };
        assert!(list.quiet && list.detailed);
        assert_eq!(list.filters, ["id==native"]);

        let cli = parse(&["ctr", "ns", "rm", "a", "b", "--cgroup"]);
        let Command::Namespaces(NamespacesCommand::Remove(remove)) = cli.command else {
            panic!("not ns rm");
        };
        assert!(remove.cgroup);
        assert_eq!(remove.names, ["a", "b"]);

        let cli = parse(&["ctr", "namespace", "c", "x", "a=b", "c"]);
        let Command::Namespaces(NamespacesCommand::Create(create)) = cli.command else {
            panic!("not ns create");
        };
        assert_eq!(create.name.as_deref(), Some("x"));
        assert_eq!(create.labels, ["a=b", "c"]);
    }

    #[test]
    fn rejects_a_bad_timeout() {
        assert!(Cli::try_parse_from(["ctr", "--timeout", "10", "version"]).is_err());
    }
}
