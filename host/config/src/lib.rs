//! The daemon's configuration: containerd's version-2 `config.toml`, plus our `plugin_dirs`.
//!
//! [`load`] reads a file and its `imports` with containerd 1.6's merge rules, checking the version and every
//! value's type; [`render`] writes a config back as full TOML (`rcontainerd config default|dump`);
//! [`check_plugin_tables`] finds keys nobody reads (`rcontainerd config check`). The key reference for
//! operators is `docs/config.md`.

mod check;
mod error;
mod keypath;
mod load;
mod merge;
mod render;
mod source;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use check::check_plugin_tables;
pub use error::{ConfigError, ConfigWarning, WarningKind};
pub use load::load;
pub use render::render;

use source::KeyLines;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/rcontainerd/config.toml";
pub const DEFAULT_ROOT: &str = "/var/lib/rcontainerd";
pub const DEFAULT_STATE: &str = "/run/rcontainerd";
pub const DEFAULT_GRPC_ADDRESS: &str = "/run/rcontainerd/rcontainerd.sock";
/// containerd's default for both gRPC message size limits (16 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;
/// The only config version this daemon reads.
pub const CONFIG_VERSION: i64 = 2;
/// Log levels `[debug] level` accepts (containerd's, with `warning` = `warn`; `fatal` and `panic` log errors only).
pub const LOG_LEVELS: &[&str] = &[
    "trace", "debug", "info", "warn", "warning", "error", "fatal", "panic",
];

/// The effective configuration: defaults, then the main file, then its imports.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Always [`CONFIG_VERSION`] once loaded.
    pub version: i64,
    /// Persistent data; each plugin gets `<root>/<URI>`.
    pub root: PathBuf,
    /// Transient data; each plugin gets `<state>/<URI>`.
    pub state: PathBuf,
    /// containerd's `temp` (carried, unused).
    pub temp: Option<PathBuf>,
    /// containerd's single plugin directory; searched as one more plugin directory.
    pub plugin_dir: Option<PathBuf>,
    /// Ours: directories searched for plugin libraries; empty means the daemon executable's own directory and
    /// `/usr/local/lib/rcontainerd/plugins`.
    pub plugin_dirs: Vec<PathBuf>,
    pub grpc: GrpcConfig,
    pub ttrpc: TtrpcConfig,
    pub debug: DebugConfig,
    /// containerd's `[metrics]` (carried, unused).
    pub metrics: MetricsConfig,
    /// containerd's `[cgroup]` (carried, unused).
    pub cgroup: CgroupConfig,
    /// containerd's `oom_score` (carried, unused).
    pub oom_score: i64,
    /// Plugin URIs never initialised.
    pub disabled_plugins: Vec<String>,
    /// Plugin URIs whose failure, skip or absence stops startup.
    pub required_plugins: Vec<String>,
    /// Every `imports` entry of every file read, as written.
    pub imports: Vec<String>,
    /// `[plugins."<URI>"]` tables, each handed to its plugin.
    pub plugins: BTreeMap<String, toml::Table>,
    /// containerd's `[proxy_plugins.<name>]`: drivers served by another process over gRPC.
    pub proxy_plugins: BTreeMap<String, ProxyPlugin>,
    /// containerd's `[stream_processors.<name>]` (carried, unused).
    pub stream_processors: BTreeMap<String, StreamProcessor>,
    /// containerd's `[timeouts]` (carried, unused).
    pub timeouts: BTreeMap<String, String>,
    /// The files read, main file first, for messages.
    pub sources: Vec<PathBuf>,
    /// Where things came from, for warnings; empty for a config built in code.
    origins: Origins,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcConfig {
    /// The unix socket the API is served on.
    pub address: PathBuf,
    /// containerd's TCP listener settings (carried, unused).
    pub tcp_address: String,
    pub tcp_tls_ca: String,
    pub tcp_tls_cert: String,
    pub tcp_tls_key: String,
    /// Owner of the socket.
    pub uid: u32,
    pub gid: u32,
    pub max_recv_message_size: usize,
    pub max_send_message_size: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TtrpcConfig {
    /// Empty means `<grpc.address>.ttrpc`.
    pub address: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugConfig {
    /// containerd's debug socket (carried, unused).
    pub address: String,
    pub uid: u32,
    pub gid: u32,
    /// One of [`LOG_LEVELS`].
    pub level: String,
    /// `""` (the default, text), `"text"` or `"json"`.
    pub format: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    pub address: String,
    pub grpc_histogram: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupConfig {
    pub path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyPlugin {
    /// TOML key `type`.
    pub plugin_type: String,
    /// The service's unix socket.
    pub address: String,
    /// containerd 1.7's key (carried, unused).
    pub platform: String,
    /// Ours: the `snapshotter` name sent in snapshot requests; empty means the plugin's name (containerd's
    /// behaviour).
    pub snapshotter: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamProcessor {
    pub accepts: Vec<String>,
    pub returns: String,
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
}

/// Where a loaded config's pieces came from: the warnings found while reading, and each plugin table's file and
/// key lines (an import replaces a whole plugin table, so each table comes from exactly one file).
#[derive(Debug, Clone, Default, PartialEq)]
struct Origins {
    warnings: Vec<ConfigWarning>,
    plugin_tables: BTreeMap<String, TableOrigin>,
}

#[derive(Debug, Clone, PartialEq)]
struct TableOrigin {
    file: PathBuf,
    /// Lines of the keys inside the table, relative to it (the empty path is the table's header).
    lines: KeyLines,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: CONFIG_VERSION,
            root: DEFAULT_ROOT.into(),
            state: DEFAULT_STATE.into(),
            temp: None,
            plugin_dir: None,
            plugin_dirs: Vec::new(),
            grpc: GrpcConfig::default(),
            ttrpc: TtrpcConfig::default(),
            debug: DebugConfig::default(),
            metrics: MetricsConfig::default(),
            cgroup: CgroupConfig::default(),
            oom_score: 0,
            disabled_plugins: Vec::new(),
            required_plugins: Vec::new(),
            imports: Vec::new(),
            plugins: BTreeMap::new(),
            proxy_plugins: BTreeMap::new(),
            stream_processors: BTreeMap::new(),
            timeouts: BTreeMap::new(),
            sources: Vec::new(),
            origins: Origins::default(),
        }
    }
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            address: DEFAULT_GRPC_ADDRESS.into(),
            tcp_address: String::new(),
            tcp_tls_ca: String::new(),
            tcp_tls_cert: String::new(),
            tcp_tls_key: String::new(),
            uid: 0,
            gid: 0,
            max_recv_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_send_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

impl Default for DebugConfig {
    fn default() -> Self {
        Self {
            address: String::new(),
            uid: 0,
            gid: 0,
            level: "info".into(),
            format: String::new(),
        }
    }
}

#[cfg(test)]
mod tests;
