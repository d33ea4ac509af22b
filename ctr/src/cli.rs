//! Command line: the commands, flags and environment variables of containerd's
//! ctr 1.6 for the subset we implement.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use rcontainerd_pkg::duration;

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
    /// Manage snapshots
    #[command(visible_alias = "snapshot", arg_required_else_help = true)]
    Snapshots(SnapshotsArgs),
    /// Manage content
    #[command(subcommand, arg_required_else_help = true)]
    Content(ContentCommand),
    /// Manage images
    #[command(visible_aliases = ["image", "i"], subcommand, arg_required_else_help = true)]
    Images(ImagesCommand),
    /// Manage containers
    #[command(visible_aliases = ["c", "container"], subcommand, arg_required_else_help = true)]
    Containers(ContainersCommand),
    /// Manage leases
    #[command(subcommand, arg_required_else_help = true)]
    Leases(LeasesCommand),
    /// Display containerd events
    #[command(visible_alias = "event")]
    Events(EventsArgs),
    /// Run a container
    Run(Box<Run>),
    /// Manage tasks
    #[command(visible_aliases = ["t", "task"], subcommand, arg_required_else_help = true)]
    Tasks(TasksCommand),
}

/// `ctr run [flags] IMAGE|ROOTFS ID [COMMAND] [ARG...]`. Unlike `containers
/// create`, options must come before the image: everything after it belongs
/// to the container (urfave/cli's `SkipArgReorder`).
#[derive(Debug, Args)]
pub struct Run {
    /// Remove the container after running, cannot be used with --detach
    #[arg(long)]
    pub rm: bool,
    /// Send all IO to /dev/null
    #[arg(long = "null-io")]
    pub null_io: bool,
    /// Log uri
    #[arg(long = "log-uri")]
    pub log_uri: Option<String>,
    /// Detach from the task after it has started execution, cannot be used with --rm
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Directory used for storing IO FIFOs
    #[arg(long = "fifo-dir")]
    pub fifo_dir: Option<String>,
    /// Cgroup path (To disable use of cgroup, set to "" explicitly)
    #[arg(long)]
    pub cgroup: Option<String>,
    /// Run image for specific platform (not supported)
    #[arg(long)]
    pub platform: Option<String>,
    /// Enable cni networking for the container (not supported)
    #[arg(long)]
    pub cni: bool,
    /// Specify runc-compatible binary
    #[arg(long = "runc-binary")]
    pub runc_binary: Option<String>,
    /// Specify runc-compatible root
    #[arg(long = "runc-root")]
    pub runc_root: Option<String>,
    /// Start runc with systemd cgroup manager
    #[arg(long = "runc-systemd-cgroup")]
    pub runc_systemd_cgroup: bool,
    /// Run inside a user namespace with the specified UID mapping range (not supported)
    #[arg(long)]
    pub uidmap: Option<String>,
    /// Run inside a user namespace with the specified GID mapping range (not supported)
    #[arg(long)]
    pub gidmap: Option<String>,
    /// Provide the user namespace ID remapping to the snapshotter via label options (not supported)
    #[arg(long = "remap-labels")]
    pub remap_labels: bool,
    /// Set the CFS cpu quota
    #[arg(long, default_value_t = 0.0)]
    pub cpus: f64,
    /// Set the cpu shares
    #[arg(
        long = "cpu-shares",
        default_value_t = 1024,
        allow_negative_numbers = true
    )]
    pub cpu_shares: i64,
    #[command(flatten)]
    pub flags: ContainerFlags,
    /// IMAGE|ROOTFS ID [COMMAND] [ARG...] (ID alone with --config)
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Attach to the IO of a running container
    Attach(TaskId),
    /// Delete one or more tasks
    #[command(visible_aliases = ["del", "remove", "rm"])]
    Delete(TasksDelete),
    /// Execute additional processes in an existing container
    Exec(TaskExec),
    /// List tasks
    #[command(visible_alias = "ls")]
    List(TasksList),
    /// Signal a container (default: SIGTERM)
    Kill(TaskKill),
    /// Pause an existing container
    Pause(TaskId),
    /// List processes for container
    Ps(TaskId),
    /// Resume a paused container
    Resume(TaskId),
    /// Start a container that has been created
    Start(TaskStart),
    /// Get a single data point of metrics for a task with the built-in Linux runtime
    #[command(visible_alias = "metric")]
    Metrics(TaskMetrics),
}

/// A command on one container's task; further arguments are ignored.
#[derive(Debug, Args)]
pub struct TaskId {
    /// The container
    pub id: Option<String>,
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TasksList {
    /// Print only the task id
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TasksDelete {
    /// Force delete task process
    #[arg(short, long)]
    pub force: bool,
    /// Process ID to kill
    #[arg(long = "exec-id")]
    pub exec_id: Option<String>,
    /// The containers
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TaskKill {
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Process ID to kill
    #[arg(long = "exec-id")]
    pub exec_id: Option<String>,
    /// Send signal to all processes inside the container
    #[arg(short, long)]
    pub all: bool,
    /// The container
    pub id: Option<String>,
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TaskStart {
    /// Send all IO to /dev/null
    #[arg(long = "null-io")]
    pub null_io: bool,
    /// Log uri
    #[arg(long = "log-uri")]
    pub log_uri: Option<String>,
    /// Directory used for storing IO FIFOs
    #[arg(long = "fifo-dir")]
    pub fifo_dir: Option<String>,
    /// File path to write the task's pid
    #[arg(long = "pid-file")]
    pub pid_file: Option<String>,
    /// Detach from the task after it has started execution
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Disable use of pivot-root (linux only)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// The container
    pub id: Option<String>,
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

/// `ctr tasks exec [flags] CONTAINER CMD [ARG...]`: options before the
/// container, everything after it is the command.
#[derive(Debug, Args)]
pub struct TaskExec {
    /// Working directory of the new process
    #[arg(long)]
    pub cwd: Option<String>,
    /// Allocate a TTY for the container
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Detach from the task after it has started execution
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Exec specific id for the process (required)
    #[arg(long = "exec-id")]
    pub exec_id: Option<String>,
    /// Directory used for storing IO FIFOs
    #[arg(long = "fifo-dir")]
    pub fifo_dir: Option<String>,
    /// Log uri for custom shim logging
    #[arg(long = "log-uri")]
    pub log_uri: Option<String>,
    /// User id or name
    #[arg(long)]
    pub user: Option<String>,
    /// CONTAINER CMD [ARG...]
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TaskMetrics {
    /// "table" or "json"
    #[arg(long, default_value = "table")]
    pub format: String,
    /// The container
    pub id: Option<String>,
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Filters on the envelopes, e.g. topic=="/namespaces/create",
    /// namespace==default, event.name==foo (any one may match)
    pub filters: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// List images known to the daemon
    #[command(visible_alias = "ls")]
    List(FilteredList),
    /// Check existing images to ensure all content is available locally
    Check(ImagesCheck),
    /// Remove one or more images by reference
    #[command(visible_aliases = ["rm"])]
    Remove(ImagesRemove),
    /// Tag an image
    Tag(ImagesTag),
    /// Set and clear labels for an image; an empty value clears the label
    Label(ImagesLabel),
    /// Import images
    Import(ImagesImport),
    /// Export images
    Export(ImagesExport),
    /// Mount an image to a target path
    Mount(ImagesMount),
    /// Unmount the image from the target
    Unmount(ImagesUnmount),
    /// Pull an image from a remote
    Pull(ImagesPull),
}

/// containerd's ctr `RegistryFlags`: how to reach and authenticate to a registry.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Skip SSL certificate validation
    #[arg(short = 'k', long)]
    pub skip_verify: bool,
    /// Allow connections using plain HTTP
    #[arg(long)]
    pub plain_http: bool,
    /// User[:password] Registry user and password
    #[arg(short = 'u', long, default_value = "")]
    pub user: String,
    /// Refresh token for authorization server (not supported)
    #[arg(long, default_value = "")]
    pub refresh: String,
    /// Custom hosts configuration directory (not supported)
    #[arg(long, default_value = "")]
    pub hosts_dir: String,
    /// Path to TLS root CA
    #[arg(long, default_value = "")]
    pub tlscacert: String,
    /// Path to TLS client certificate (not supported)
    #[arg(long, default_value = "")]
    pub tlscert: String,
    /// Path to TLS client key (not supported)
    #[arg(long, default_value = "")]
    pub tlskey: String,
    /// Dump all HTTP request/responses when interacting with container registry (not supported)
    #[arg(long)]
    pub http_dump: bool,
    /// Enable HTTP tracing for registry interactions (not supported)
    #[arg(long)]
    pub http_trace: bool,
}

/// `ctr images pull [flags] <ref>`.
#[derive(Debug, Args)]
pub struct ImagesPull {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Snapshotter name. Empty value stands for the default value.
    #[arg(long, env = "CONTAINERD_SNAPSHOTTER")]
    pub snapshotter: Option<String>,
    /// Labels to attach to the image
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Pull content from a specific platform
    #[arg(long = "platform")]
    pub platforms: Vec<String>,
    /// Pull content and metadata from all platforms
    #[arg(long)]
    pub all_platforms: bool,
    /// Pull metadata for all platforms
    #[arg(long)]
    pub all_metadata: bool,
    /// Print the resulting image's chain ID
    #[arg(long)]
    pub print_chainid: bool,
    /// Set the max concurrent downloads for each pull
    #[arg(long)]
    pub max_concurrent_downloads: Option<usize>,
    /// The image reference
    pub reference: Option<String>,
    /// Further arguments are ignored, as containerd's ctr ignores them
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

/// `ctr images import [flags] <in>`: an OCI layout or Docker archive (`-` for stdin).
#[derive(Debug, Args)]
pub struct ImagesImport {
    /// Base image name for added images, when provided only images with this name prefix are imported
    #[arg(long, default_value = "")]
    pub base_name: String,
    /// Whether to create digest images (default: false)
    #[arg(long)]
    pub digests: bool,
    /// Skip applying --digests option to images named in the importing tar (use it in conjunction with --digests)
    #[arg(long)]
    pub skip_digest_for_named: bool,
    /// Image name to keep index as, by default index is discarded
    #[arg(long, default_value = "")]
    pub index_name: String,
    /// Imports content for all platforms, false by default
    #[arg(long)]
    pub all_platforms: bool,
    /// Imports content for specific platform
    #[arg(long)]
    pub platform: Option<String>,
    /// Skip unpacking the images, false by default
    #[arg(long)]
    pub no_unpack: bool,
    /// Compress uncompressed blobs when creating manifest (Docker format only)
    #[arg(long)]
    pub compress_blobs: bool,
    /// Snapshotter name. Empty value stands for the default value.
    #[arg(long, env = "CONTAINERD_SNAPSHOTTER")]
    pub snapshotter: Option<String>,
    /// The archive (`-` reads stdin)
    pub input: Option<String>,
    /// Further arguments are ignored, as containerd's ctr ignores them
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

/// `ctr images export [flags] <out> <image> ...`.
#[derive(Debug, Args)]
pub struct ImagesExport {
    /// Do not add Docker compatible manifest.json to archive
    #[arg(long)]
    pub skip_manifest_json: bool,
    /// Do not add non-distributable blobs such as Windows layers to archive
    #[arg(long)]
    pub skip_non_distributable: bool,
    /// Pull content from a specific platform
    #[arg(long = "platform")]
    pub platforms: Vec<String>,
    /// Exports content from all platforms
    #[arg(long)]
    pub all_platforms: bool,
    /// The archive to write (`-` for stdout)
    pub output: Option<String>,
    /// The images to export
    pub images: Vec<String>,
}

/// `ctr images mount [flags] <ref> <target>`.
#[derive(Debug, Args)]
pub struct ImagesMount {
    /// Snapshotter name. Empty value stands for the default value.
    #[arg(long, env = "CONTAINERD_SNAPSHOTTER")]
    pub snapshotter: Option<String>,
    /// Labels to attach to the image (accepted, unused, as by containerd's ctr)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    #[command(flatten)]
    pub registry: UnusedRegistryFlags,
    /// Enable write support on the mount
    #[arg(long)]
    pub rw: bool,
    /// Mount the image for the specified platform
    #[arg(long)]
    pub platform: Option<String>,
    /// The image
    pub reference: Option<String>,
    /// Where to mount it
    pub target: Option<String>,
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

/// containerd's registry flags, which `images mount|unmount` take and do not use.
#[derive(Debug, Args)]
pub struct UnusedRegistryFlags {
    /// Skip SSL certificate validation (unused here)
    #[arg(short = 'k', long)]
    pub skip_verify: bool,
    /// Allow connections using plain HTTP (unused here)
    #[arg(long)]
    pub plain_http: bool,
    /// user[:password] Registry user and password (unused here)
    #[arg(short, long)]
    pub user: Option<String>,
    /// Refresh token for authorization server (unused here)
    #[arg(long)]
    pub refresh: Option<String>,
    /// Custom hosts configuration directory (unused here)
    #[arg(long)]
    pub hosts_dir: Option<String>,
    /// Path to TLS root CA (unused here)
    #[arg(long)]
    pub tlscacert: Option<String>,
    /// Path to TLS client certificate (unused here)
    #[arg(long)]
    pub tlscert: Option<String>,
    /// Path to TLS client key (unused here)
    #[arg(long)]
    pub tlskey: Option<String>,
    /// Dump all HTTP request/responses when interacting with container registry (unused here)
    #[arg(long)]
    pub http_dump: bool,
    /// Enable HTTP tracing for registry interactions (unused here)
    #[arg(long)]
    pub http_trace: bool,
}

/// `ctr images unmount [flags] <target>`.
#[derive(Debug, Args)]
pub struct ImagesUnmount {
    /// Snapshotter name. Empty value stands for the default value.
    #[arg(long, env = "CONTAINERD_SNAPSHOTTER")]
    pub snapshotter: Option<String>,
    /// Labels (accepted, unused, as by containerd's ctr)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    #[command(flatten)]
    pub registry: UnusedRegistryFlags,
    /// Remove the snapshot after a successful unmount
    #[arg(long)]
    pub rm: bool,
    /// The mount target
    pub target: Option<String>,
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesLabel {
    /// Replace all labels
    #[arg(short, long)]
    pub replace_all: bool,
    /// The image
    pub name: Option<String>,
    /// Labels as KEY=VALUE (a bare KEY means KEY=true, an empty value removes)
    pub labels: Vec<String>,
}

/// A List that takes filters and `-q`.
#[derive(Debug, Args)]
pub struct FilteredList {
    /// Print only the names (ids)
    #[arg(short, long)]
    pub quiet: bool,
    /// Filters, e.g. name==docker.io/library/alpine:latest (any one may match)
    pub filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesCheck {
    /// Print only the ready image refs (fully downloaded and unpacked)
    #[arg(short, long)]
    pub quiet: bool,
    /// Snapshotter name; empty means the default (overlayfs)
    #[arg(long, env = "CONTAINERD_SNAPSHOTTER")]
    pub snapshotter: Option<String>,
    /// Filters, as for `images ls`
    pub filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesRemove {
    /// Synchronously remove the image and related resources
    #[arg(long)]
    pub sync: bool,
    /// The images' references
    pub refs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesTag {
    /// Force: replace an existing target image
    #[arg(long)]
    pub force: bool,
    /// The existing image
    pub source: Option<String>,
    /// The new names
    pub targets: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ContainersCommand {
    /// Create container
    Create(Box<ContainerCreate>),
    /// List containers
    #[command(visible_alias = "ls")]
    List(FilteredList),
    /// Get info about a container
    Info(ContainerInfo),
    /// Delete one or more existing containers
    #[command(visible_aliases = ["del", "remove", "rm"])]
    Delete(ContainersDelete),
    /// Set and clear labels for a container; an empty value clears the label
    Label(ObjectWithLabels),
}

/// `ctr containers create`: containerd 1.6's snapshotter and container
/// flags. Options may follow the positional arguments (urfave/cli reorders
/// them so); `--` ends the options.
#[derive(Debug, Args)]
pub struct ContainerCreate {
    #[command(flatten)]
    pub flags: ContainerFlags,
    /// IMAGE|ROOTFS CONTAINER [COMMAND] [ARG...] (CONTAINER alone with --config)
    #[arg(value_name = "ARGS")]
    pub args: Vec<String>,
}

/// The snapshotter and container flags `containers create` and `run` share
/// (containerd's `SnapshotterFlags`, `SnapshotterLabels` and `ContainerFlags`).
#[derive(Debug, Args)]
pub struct ContainerFlags {
    /// Snapshotter name; empty means the default
    #[arg(long, env = "CONTAINERD_SNAPSHOTTER")]
    pub snapshotter: Option<String>,
    /// Labels added to the new snapshot for this container
    #[arg(long = "snapshotter-label")]
    pub snapshotter_label: Vec<String>,
    /// Path to the runtime-specific spec config file
    #[arg(short = 'c', long)]
    pub config: Option<String>,
    /// Specify the working directory of the process
    #[arg(long)]
    pub cwd: Option<String>,
    /// Specify additional container environment variables (e.g. FOO=bar)
    #[arg(long)]
    pub env: Vec<String>,
    /// Username or user id, group optional (format: <name|uid>[:<group|gid>]); containerd 1.7's flag
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Specify additional container environment variables in a file (FOO=bar, one per line)
    #[arg(long = "env-file")]
    pub env_file: Option<String>,
    /// Specify additional labels (e.g. foo=bar)
    #[arg(long)]
    pub label: Vec<String>,
    /// Specify additional OCI annotations (e.g. foo=bar)
    #[arg(long)]
    pub annotation: Vec<String>,
    /// Specify additional container mount (e.g. type=bind,src=/tmp,dst=/host,options=rbind:ro)
    #[arg(long)]
    pub mount: Vec<String>,
    /// Enable host networking for the container
    #[arg(long = "net-host")]
    pub net_host: bool,
    /// Run privileged container
    #[arg(long)]
    pub privileged: bool,
    /// Set the container's filesystem as readonly
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Runtime name
    #[arg(long, default_value = "io.containerd.runc.v2")]
    pub runtime: String,
    /// Optional runtime config path
    #[arg(long = "runtime-config-path")]
    pub runtime_config_path: Option<String>,
    /// Allocate a TTY for the container
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Specify existing Linux namespaces to join at container runtime (format '<nstype>:<path>')
    #[arg(long = "with-ns")]
    pub with_ns: Vec<String>,
    /// File path to write the task's pid (used by `run`; accepted)
    #[arg(long = "pid-file")]
    pub pid_file: Option<String>,
    /// Add gpus to the container (not supported yet)
    #[arg(long)]
    pub gpus: Vec<i64>,
    /// Turn off OCI spec's NoNewPrivileges feature flag
    #[arg(long = "allow-new-privs")]
    pub allow_new_privs: bool,
    /// Memory limit (in bytes) for the container
    #[arg(long = "memory-limit", default_value_t = 0)]
    pub memory_limit: u64,
    /// File path to a device to add to the container; or a directory tree of devices
    #[arg(long)]
    pub device: Vec<String>,
    /// Add Linux capabilities (with the 'CAP_' prefix)
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities (with the 'CAP_' prefix)
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Enable the default seccomp profile (not supported yet)
    #[arg(long)]
    pub seccomp: bool,
    /// File path to custom seccomp profile (not supported yet)
    #[arg(long = "seccomp-profile")]
    pub seccomp_profile: Option<String>,
    /// Enable AppArmor with the default profile of this name (not supported yet)
    #[arg(long = "apparmor-default-profile")]
    pub apparmor_default_profile: Option<String>,
    /// Enable AppArmor with an existing custom profile
    #[arg(long = "apparmor-profile")]
    pub apparmor_profile: Option<String>,
    /// Name of the RDT class to associate the container with
    #[arg(long = "rdt-class")]
    pub rdt_class: Option<String>,
    /// Use custom rootfs that is not managed by the snapshotter
    #[arg(long)]
    pub rootfs: bool,
    /// Disable use of pivot-root (used by `run`; accepted)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Limit CPU CFS quota
    #[arg(long = "cpu-quota", default_value_t = -1, allow_negative_numbers = true)]
    pub cpu_quota: i64,
    /// Limit CPU CFS period
    #[arg(long = "cpu-period", default_value_t = 0)]
    pub cpu_period: u64,
    /// Set the propagation of the container rootfs
    #[arg(long = "rootfs-propagation")]
    pub rootfs_propagation: Option<String>,
}

#[derive(Debug, Args)]
pub struct ContainerInfo {
    /// Only display the spec
    #[arg(long)]
    pub spec: bool,
    /// The container
    pub id: Option<String>,
}

#[derive(Debug, Args)]
pub struct ContainersDelete {
    /// Do not clean up the container's snapshot
    #[arg(long)]
    pub keep_snapshot: bool,
    /// The containers
    pub ids: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum LeasesCommand {
    /// List all active leases
    #[command(visible_alias = "ls")]
    List(FilteredList),
    /// Create a lease
    Create(LeaseCreate),
    /// Delete leases
    #[command(visible_aliases = ["rm"])]
    Delete(LeasesDelete),
}

#[derive(Debug, Args)]
pub struct LeaseCreate {
    /// Set the id for the lease; generated when empty
    #[arg(short, long, default_value = "")]
    pub id: String,
    /// Expiration of the lease (Go duration; 0s = never)
    #[arg(short = 'x', long, default_value = "24h", value_parser = duration::parse)]
    pub expires: Duration,
    /// Labels as KEY=VALUE
    pub labels: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LeasesDelete {
    /// Synchronously remove leases and all unreferenced resources
    #[arg(long)]
    pub sync: bool,
    /// The leases
    pub ids: Vec<String>,
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

/// Snapshot commands work on one snapshotter, chosen before the command.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Snapshotter name; empty means the default (overlayfs)
    #[arg(long, env = "CONTAINERD_SNAPSHOTTER")]
    pub snapshotter: Option<String>,
    #[command(subcommand)]
    pub command: SnapshotsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotsCommand {
    /// Commit an active snapshot into the provided name
    Commit(SnapshotCommit),
    /// Get the diff of two snapshots. the default second snapshot is the first snapshot's parent.
    Diff(SnapshotDiff),
    /// Get info about a snapshot
    Info(SnapshotKey),
    /// List snapshots
    #[command(visible_alias = "ls")]
    List(IgnoredArgs),
    /// Print mount commands for a snapshot
    #[command(visible_aliases = ["m", "mount"])]
    Mounts(SnapshotMounts),
    /// Prepare a snapshot from a committed snapshot
    Prepare(SnapshotCreate),
    /// Remove snapshots
    #[command(visible_aliases = ["del", "remove", "rm"])]
    Delete(SnapshotKeys),
    /// Add labels to a snapshot; an empty value removes the label
    Label(ObjectWithLabels),
    /// Display a tree view of snapshot branches
    Tree(IgnoredArgs),
    /// Show the disk usage of snapshots
    Usage(SnapshotUsage),
    /// Create a read-only snapshot from a committed snapshot
    View(SnapshotCreate),
}

/// Arguments a command accepts and ignores, as containerd's ctr does.
#[derive(Debug, Args)]
pub struct IgnoredArgs {
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotDiff {
    /// Media type to use for creating diff
    #[arg(long, default_value = "application/vnd.oci.image.layer.v1.tar+gzip")]
    pub media_type: String,
    /// Content upload reference to use
    #[arg(long = "ref", default_value = "")]
    pub reference: String,
    /// Keep diff content. up to creator to delete it.
    #[arg(long)]
    pub keep: bool,
    /// Labels to attach to the image
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// The snapshot to diff (against its parent when no second one is given)
    pub id_a: Option<String>,
    /// The second snapshot
    pub id_b: Option<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotCommit {
    /// Name of the committed snapshot
    pub name: Option<String>,
    /// Key of the active snapshot to commit
    pub key: Option<String>,
    /// More arguments make the command print its help instead
    #[arg(hide = true)]
    pub extra: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotKey {
    /// The snapshot's key
    pub key: Option<String>,
    #[arg(hide = true)]
    pub extra: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotKeys {
    /// The snapshots' keys
    pub keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotMounts {
    /// Mount target printed in the commands
    pub target: Option<String>,
    /// The snapshot's key
    pub key: Option<String>,
    #[arg(hide = true)]
    pub extra: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotCreate {
    /// Mount target path; the mount commands are printed if given
    #[arg(short, long)]
    pub target: Option<String>,
    /// Print out the snapshot's mounts as JSON
    #[arg(long)]
    pub mounts: bool,
    /// Key of the new snapshot
    pub key: Option<String>,
    /// Committed snapshot to build on
    pub parent: Option<String>,
    #[arg(hide = true)]
    pub extra: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotUsage {
    /// Display sizes in bytes
    #[arg(short = 'b')]
    pub bytes: bool,
    /// Snapshots to report on (all when none is given)
    pub keys: Vec<String>,
}

/// An object name followed by `KEY=VALUE` labels.
#[derive(Debug, Args)]
pub struct ObjectWithLabels {
    /// The object
    pub object: Option<String>,
    /// Labels as KEY=VALUE (a bare KEY means KEY=true, an empty value removes)
    pub labels: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ContentCommand {
    /// Display active transfers
    Active(ContentActive),
    /// Permanently delete one or more blobs; deleted ones are printed
    #[command(visible_aliases = ["del", "remove", "rm"])]
    Delete(ContentDigests),
    /// Get the data for an object
    Get(ContentGet),
    /// Accept content from stdin into the store
    Ingest(ContentIngest),
    /// List all blobs in the store
    #[command(visible_alias = "ls")]
    List(ContentList),
    /// Add labels to content; an empty value removes the label
    Label(ObjectWithLabels),
    /// Fetch all content for an image into containerd
    Fetch(ContentFetch),
}

/// `ctr content fetch [flags] <remote> [<object>]`: `images pull` without the unpack.
#[derive(Debug, Args)]
pub struct ContentFetch {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Labels to attach to the image
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Pull content from a specific platform
    #[arg(long = "platform")]
    pub platforms: Vec<String>,
    /// Pull content from all platforms
    #[arg(long)]
    pub all_platforms: bool,
    /// Pull metadata for all platforms
    #[arg(long)]
    pub all_metadata: bool,
    /// Pull all metadata including manifests and configs
    #[arg(long)]
    pub metadata_only: bool,
    /// The image reference
    pub reference: Option<String>,
    /// Further arguments are ignored, as containerd's ctr ignores them
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContentActive {
    /// Total timeout for fetch (accepted for compatibility, unused)
    #[arg(
        short,
        long,
        env = "CONTAINERD_FETCH_TIMEOUT",
        default_value = "0s",
        value_parser = duration::parse
    )]
    pub timeout: Duration,
    /// Path to content store root (accepted for compatibility, unused)
    #[arg(long, default_value = "/tmp/content")]
    pub root: String,
    /// Filter on the transfers, e.g. ref~=layer
    pub regexp: Option<String>,
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContentDigests {
    /// Digests of the blobs
    pub digests: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContentGet {
    /// Digest of the blob
    pub digest: Option<String>,
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContentIngest {
    /// Validate against the provided size
    #[arg(long, default_value_t = 0)]
    pub expected_size: i64,
    /// Verify content against the expected digest
    #[arg(long, default_value = "")]
    pub expected_digest: String,
    /// Reference of the transaction
    #[arg(value_name = "KEY")]
    pub reference: Option<String>,
    #[arg(hide = true)]
    pub ignored: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContentList {
    /// Print only the blob digest
    #[arg(short, long)]
    pub quiet: bool,
    /// Filters, e.g. labels.a==b (any one may match)
    pub filters: Vec<String>,
}

/// The help text of the command at `path` (e.g. `["snapshots", "prepare"]`),
/// which containerd's ctr prints, successfully, when given the wrong number
/// of arguments.
pub fn help_of(path: &[&str]) -> String {
    let mut args = vec!["ctr"];
    args.extend_from_slice(path);
    args.push("--help");
    match Cli::try_parse_from(args) {
        Err(err) => err.render().to_string(),
        Ok(_) => String::new(),
    }
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

    #[test]
    fn reads_snapshot_commands_with_containerds_aliases() {
        let cli = parse(&[
            "ctr",
            "snapshot",
            "--snapshotter",
            "native",
            "prepare",
            "k",
            "--mounts",
            "-t",
            "/mnt",
        ]);
        let Command::Snapshots(args) = cli.command else {
            panic!("not snapshots");
        };
        assert_eq!(args.snapshotter.as_deref(), Some("native"));
        let SnapshotsCommand::Prepare(prepare) = args.command else {
            panic!("not prepare");
        };
        assert!(prepare.mounts);
        assert_eq!(prepare.target.as_deref(), Some("/mnt"));
        assert_eq!(prepare.key.as_deref(), Some("k"));
        assert_eq!(prepare.parent, None);
        for alias in ["rm", "del", "remove", "delete"] {
            let cli = parse(&["ctr", "snapshots", alias, "a", "b"]);
            let Command::Snapshots(SnapshotsArgs {
                command: SnapshotsCommand::Delete(keys),
                ..
            }) = cli.command
            else {
                panic!("{alias} is not delete");
            };
            assert_eq!(keys.keys, ["a", "b"]);
        }
        for alias in ["m", "mount", "mounts"] {
            let cli = parse(&["ctr", "snapshots", alias, "/t", "k"]);
            assert!(matches!(
                cli.command,
                Command::Snapshots(SnapshotsArgs {
                    command: SnapshotsCommand::Mounts(_),
                    ..
                })
            ));
        }
        // Extra arguments are kept so that the command can print its help.
        let cli = parse(&["ctr", "snapshots", "prepare", "a", "b", "c"]);
        let Command::Snapshots(SnapshotsArgs {
            command: SnapshotsCommand::Prepare(prepare),
            ..
        }) = cli.command
        else {
            panic!("not prepare");
        };
        assert_eq!(prepare.extra, ["c"]);
    }

    #[test]
    fn reads_content_commands_with_containerds_flags() {
        let cli = parse(&[
            "ctr",
            "content",
            "ingest",
            "--expected-size",
            "6",
            "--expected-digest",
            "sha256:x",
            "ref",
        ]);
        let Command::Content(ContentCommand::Ingest(ingest)) = cli.command else {
            panic!("not ingest");
        };
        assert_eq!(ingest.expected_size, 6);
        assert_eq!(ingest.expected_digest, "sha256:x");
        assert_eq!(ingest.reference.as_deref(), Some("ref"));
        let cli = parse(&["ctr", "content", "active", "-t", "5s", "--root", "/x", "r"]);
        let Command::Content(ContentCommand::Active(active)) = cli.command else {
            panic!("not active");
        };
        assert_eq!(active.timeout, Duration::from_secs(5));
        assert_eq!(active.regexp.as_deref(), Some("r"));
        let cli = parse(&["ctr", "content", "ls", "-q", "labels.a==b"]);
        let Command::Content(ContentCommand::List(list)) = cli.command else {
            panic!("not ls");
        };
        assert!(list.quiet);
        assert_eq!(list.filters, ["labels.a==b"]);
        assert!(Cli::try_parse_from(["ctr", "content", "active", "-t", "5x"]).is_err());
    }

    #[test]
    fn run_takes_options_before_the_image_only() {
        let cli = parse(&[
            "ctr",
            "run",
            "--rm",
            "-t",
            "-u",
            "app",
            "--env",
            "A=1",
            "img",
            "id",
            "sh",
            "-c",
            "echo --rm",
        ]);
        let Command::Run(run) = cli.command else {
            panic!("not run");
        };
        assert!(run.rm && run.flags.tty && !run.detach);
        assert_eq!(run.flags.user.as_deref(), Some("app"));
        assert_eq!(run.flags.env, ["A=1"]);
        assert_eq!(run.cpu_shares, 1024);
        assert_eq!(run.args, ["img", "id", "sh", "-c", "echo --rm"]);
        let cli = parse(&["ctr", "run", "img", "--rm", "id"]);
        let Command::Run(run) = cli.command else {
            panic!("not run");
        };
        assert!(!run.rm);
        assert_eq!(run.args, ["img", "--rm", "id"]);
    }

    #[test]
    fn reads_task_commands_with_containerds_aliases() {
        for alias in ["t", "task", "tasks"] {
            let cli = parse(&[
                "ctr",
                alias,
                "exec",
                "--exec-id",
                "e",
                "-t",
                "c1",
                "ls",
                "-l",
            ]);
            let Command::Tasks(TasksCommand::Exec(exec)) = cli.command else {
                panic!("{alias} exec");
            };
            assert_eq!(exec.exec_id.as_deref(), Some("e"));
            assert!(exec.tty);
            assert_eq!(exec.args, ["c1", "ls", "-l"]);
        }
        for alias in ["rm", "del", "remove", "delete"] {
            let cli = parse(&["ctr", "t", alias, "-f", "a", "b"]);
            let Command::Tasks(TasksCommand::Delete(delete)) = cli.command else {
                panic!("{alias}");
            };
            assert!(delete.force);
            assert_eq!(delete.ids, ["a", "b"]);
        }
        let cli = parse(&["ctr", "t", "kill", "-s", "9", "-a", "c"]);
        let Command::Tasks(TasksCommand::Kill(kill)) = cli.command else {
            panic!("kill");
        };
        assert_eq!((kill.signal.as_deref(), kill.all), (Some("9"), true));
        assert!(matches!(
            parse(&["ctr", "t", "metric", "--format", "json", "c"]).command,
            Command::Tasks(TasksCommand::Metrics(_))
        ));
    }

    #[test]
    fn renders_a_subcommands_help() {
        let help = help_of(&["snapshots", "prepare"]);
        assert!(help.contains("--mounts"), "{help}");
        assert!(help.contains("Usage: ctr snapshots prepare"), "{help}");
    }
}
