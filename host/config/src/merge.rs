//! Applies one parsed file onto the config with containerd 1.6's merge rules, checking types as it reads.
//!
//! The rules (containerd merges with mergo's "override" and "append slice" options): a scalar the file sets to a
//! non-zero value (not `0`, `false` or `""`) replaces the current one; lists are appended; a
//! `[plugins."<URI>"]`, `[proxy_plugins.<name>]` or `[stream_processors.<name>]` table, or a `[timeouts]` entry,
//! replaces the one of the same name as a whole.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::{ConfigError, ConfigWarning, WarningKind};
use super::keypath::KeyPath;
use super::source::SourceFile;
use super::{Config, ProxyPlugin, StreamProcessor, TableOrigin, CONFIG_VERSION, LOG_LEVELS};

/// Top-level keys this daemon reads; anything else gets a warning.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "version",
    "root",
    "state",
    "temp",
    "plugin_dir",
    "plugin_dirs",
    "grpc",
    "ttrpc",
    "debug",
    "metrics",
    "cgroup",
    "oom_score",
    "disabled_plugins",
    "required_plugins",
    "imports",
    "plugins",
    "proxy_plugins",
    "stream_processors",
    "timeouts",
];
const GRPC_KEYS: &[&str] = &[
    "address",
    "tcp_address",
    "tcp_tls_ca",
    "tcp_tls_cert",
    "tcp_tls_key",
    "uid",
    "gid",
    "max_recv_message_size",
    "max_send_message_size",
];
const TTRPC_KEYS: &[&str] = &["address", "uid", "gid"];
const DEBUG_KEYS: &[&str] = &["address", "uid", "gid", "level", "format"];
const METRICS_KEYS: &[&str] = &["address", "grpc_histogram"];
const CGROUP_KEYS: &[&str] = &["path"];
const PROXY_PLUGIN_KEYS: &[&str] = &["type", "address", "platform", "snapshotter"];
/// containerd 1.6's accepted `[proxy_plugins.<name>] type` values.
pub const PROXY_PLUGIN_TYPES: &[&str] = &[
    "snapshot",
    "io.containerd.snapshotter.v1",
    "content",
    "io.containerd.content.v1",
];
const STREAM_PROCESSOR_KEYS: &[&str] = &["accepts", "returns", "path", "args", "env"];

/// Whether the file is the one the daemon was pointed at, or one of its imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Main,
    Import,
}

/// An `imports` entry of a file, with its line for messages.
#[derive(Debug)]
pub struct ImportEntry {
    pub pattern: String,
    pub line: Option<usize>,
}

/// Checks `file` and merges it into `config`; returns the file's `imports`, to be read next.
pub fn apply_file(
    config: &mut Config,
    file: &SourceFile,
    role: Role,
) -> Result<Vec<ImportEntry>, ConfigError> {
    let top = Scope::new(file, KeyPath::root(), &file.table, TOP_LEVEL_KEYS);
    check_version(&top, role)?;

    set_path(&mut config.root, top.string("root")?);
    set_path(&mut config.state, top.string("state")?);
    set_optional_path(&mut config.temp, top.string("temp")?);
    set_optional_path(&mut config.plugin_dir, top.string("plugin_dir")?);
    if let Some(dirs) = top.strings("plugin_dirs")? {
        config
            .plugin_dirs
            .extend(dirs.into_iter().map(PathBuf::from));
    }
    set_integer(&mut config.oom_score, top.integer("oom_score")?);

    if let Some(grpc) = top.table("grpc", GRPC_KEYS)? {
        let to = &mut config.grpc;
        set_path(&mut to.address, grpc.string("address")?);
        set_string(&mut to.tcp_address, grpc.string("tcp_address")?);
        set_string(&mut to.tcp_tls_ca, grpc.string("tcp_tls_ca")?);
        set_string(&mut to.tcp_tls_cert, grpc.string("tcp_tls_cert")?);
        set_string(&mut to.tcp_tls_key, grpc.string("tcp_tls_key")?);
        set_integer(&mut to.uid, grpc.id("uid")?);
        set_integer(&mut to.gid, grpc.id("gid")?);
        set_integer(
            &mut to.max_recv_message_size,
            grpc.size("max_recv_message_size")?,
        );
        set_integer(
            &mut to.max_send_message_size,
            grpc.size("max_send_message_size")?,
        );
        grpc.finish(config);
    }
    if let Some(ttrpc) = top.table("ttrpc", TTRPC_KEYS)? {
        set_path(&mut config.ttrpc.address, ttrpc.string("address")?);
        set_integer(&mut config.ttrpc.uid, ttrpc.id("uid")?);
        set_integer(&mut config.ttrpc.gid, ttrpc.id("gid")?);
        ttrpc.finish(config);
    }
    if let Some(debug) = top.table("debug", DEBUG_KEYS)? {
        set_string(&mut config.debug.address, debug.string("address")?);
        set_integer(&mut config.debug.uid, debug.id("uid")?);
        set_integer(&mut config.debug.gid, debug.id("gid")?);
        let level = debug.string("level")?;
        if let Some(level) = level.as_deref().filter(|l| !l.is_empty()) {
            if !LOG_LEVELS.contains(&level) {
                return Err(debug.invalid(
                    "level",
                    format!("is {level:?}; expected one of {}", LOG_LEVELS.join(", ")),
                ));
            }
        }
        set_string(&mut config.debug.level, level);
        let format = debug.string("format")?;
        if let Some(format) = format.as_deref() {
            if !["", "text", "json"].contains(&format) {
                return Err(debug.invalid(
                    "format",
                    format!("is {format:?}; expected \"text\" or \"json\""),
                ));
            }
        }
        set_string(&mut config.debug.format, format);
        debug.finish(config);
    }
    if let Some(metrics) = top.table("metrics", METRICS_KEYS)? {
        set_string(&mut config.metrics.address, metrics.string("address")?);
        set_bool(
            &mut config.metrics.grpc_histogram,
            metrics.bool("grpc_histogram")?,
        );
        metrics.finish(config);
    }
    if let Some(cgroup) = top.table("cgroup", CGROUP_KEYS)? {
        set_string(&mut config.cgroup.path, cgroup.string("path")?);
        cgroup.finish(config);
    }

    for (key, list) in [
        ("disabled_plugins", &mut config.disabled_plugins),
        ("required_plugins", &mut config.required_plugins),
    ] {
        if let Some(uris) = top.strings(key)? {
            if let Some(bad) = uris.iter().find(|u| !is_plugin_uri(u)) {
                return Err(top.invalid(
                    key,
                    format!("lists {bad:?}, which is not a plugin URI; {URI_SHAPE}"),
                ));
            }
            for uri in uris {
                if !list.contains(&uri) {
                    list.push(uri);
                }
            }
        }
    }

    if let Some(plugins) = top.table("plugins", &[])? {
        for (uri, value) in plugins.table {
            let key = plugins.path.child(uri);
            let Some(table) = value.as_table() else {
                return Err(plugins.wrong_type(uri, "a table", value));
            };
            if !is_plugin_uri(uri) {
                return Err(ConfigError::InvalidValue {
                    path: file.path.clone(),
                    line: file.line_of(&key),
                    key: key.to_string(),
                    problem: format!("does not name a plugin by its URI; {URI_SHAPE}"),
                });
            }
            config.plugins.insert(uri.clone(), table.clone());
            config.origins.plugin_tables.insert(
                uri.clone(),
                TableOrigin {
                    file: file.path.clone(),
                    lines: file.lines.under(&key),
                },
            );
        }
    }

    if let Some(proxies) = top.table("proxy_plugins", &[])? {
        for name in proxies.table.keys() {
            let Some(proxy) = proxies.table(name, PROXY_PLUGIN_KEYS)? else {
                continue;
            };
            let entry = ProxyPlugin {
                plugin_type: proxy.string("type")?.unwrap_or_default(),
                address: proxy.string("address")?.unwrap_or_default(),
                platform: proxy.string("platform")?.unwrap_or_default(),
                snapshotter: proxy.string("snapshotter")?.unwrap_or_default(),
            };
            // containerd warns about an unknown type and registers a plugin of
            // no type; a plugin nobody can use is refused here instead.
            if !PROXY_PLUGIN_TYPES.contains(&entry.plugin_type.as_str()) {
                return Err(proxy.invalid(
                    "type",
                    format!(
                        "is {:?}; a proxy plugin's type is \"snapshot\" or \"content\" \
                         (or io.containerd.snapshotter.v1, io.containerd.content.v1)",
                        entry.plugin_type
                    ),
                ));
            }
            if entry.address.trim().is_empty() {
                return Err(proxy.invalid(
                    "address",
                    "is empty; it must be the unix socket the plugin's service listens on".into(),
                ));
            }
            let snapshot = ["snapshot", "io.containerd.snapshotter.v1"];
            if !entry.snapshotter.is_empty() && !snapshot.contains(&entry.plugin_type.as_str()) {
                return Err(proxy.invalid("snapshotter", "applies to snapshot proxies only".into()));
            }
            proxy.finish(config);
            config.proxy_plugins.insert(name.clone(), entry);
        }
    }
    if let Some(processors) = top.table("stream_processors", &[])? {
        for name in processors.table.keys() {
            let Some(processor) = processors.table(name, STREAM_PROCESSOR_KEYS)? else {
                continue;
            };
            let entry = StreamProcessor {
                accepts: processor.strings("accepts")?.unwrap_or_default(),
                returns: processor.string("returns")?.unwrap_or_default(),
                path: processor.string("path")?.unwrap_or_default(),
                args: processor.strings("args")?.unwrap_or_default(),
                env: processor.strings("env")?.unwrap_or_default(),
            };
            processor.finish(config);
            config.stream_processors.insert(name.clone(), entry);
        }
    }
    if let Some(timeouts) = top.table("timeouts", &[])? {
        let mut read = BTreeMap::new();
        for name in timeouts.table.keys() {
            read.insert(name.clone(), timeouts.string(name)?.unwrap_or_default());
        }
        config.timeouts.extend(read);
    }

    let mut imports = Vec::new();
    if let Some(patterns) = top.strings("imports")? {
        let line = top.line("imports");
        config.imports.extend(patterns.iter().cloned());
        imports.extend(
            patterns
                .into_iter()
                .map(|pattern| ImportEntry { pattern, line }),
        );
    }

    top.finish(config);
    config.sources.push(file.path.clone());
    Ok(imports)
}

const URI_SHAPE: &str = "expected <type>.<id> such as io.containerd.snapshotter.v1.overlayfs";

/// containerd 1.6's test for a plugin URI: at least four dot-separated parts (`io.containerd.<kind>.<vN>.<id>`
/// has five; `<type>` alone has four).
fn is_plugin_uri(uri: &str) -> bool {
    uri.split('.').count() >= 4
}

fn check_version(top: &Scope<'_>, role: Role) -> Result<(), ConfigError> {
    let found = top.integer("version")?;
    let error = |found| ConfigError::Version {
        path: top.file.path.clone(),
        line: top.line("version"),
        found,
    };
    match (found, role) {
        (Some(CONFIG_VERSION), _) => Ok(()),
        // An import without a version takes the importing file's, as containerd merges it.
        (None, Role::Import) => Ok(()),
        (found, _) => Err(error(found)),
    }
}

fn set_path(to: &mut PathBuf, value: Option<String>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        *to = value.into();
    }
}

fn set_optional_path(to: &mut Option<PathBuf>, value: Option<String>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        *to = Some(value.into());
    }
}

fn set_string(to: &mut String, value: Option<String>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        *to = value;
    }
}

fn set_integer<T: Default + PartialEq>(to: &mut T, value: Option<T>) {
    if let Some(value) = value.filter(|v| *v != T::default()) {
        *to = value;
    }
}

fn set_bool(to: &mut bool, value: Option<bool>) {
    if value == Some(true) {
        *to = true;
    }
}

/// One table of a file being read: typed getters that name the file, key and line when a value has the wrong
/// type, and a record of which keys were read so the rest can be reported.
struct Scope<'a> {
    file: &'a SourceFile,
    path: KeyPath,
    table: &'a toml::Table,
    /// Keys this table may have; empty means any (a map such as `plugins`).
    known: &'static [&'static str],
}

impl<'a> Scope<'a> {
    fn new(
        file: &'a SourceFile,
        path: KeyPath,
        table: &'a toml::Table,
        known: &'static [&'static str],
    ) -> Self {
        Self {
            file,
            path,
            table,
            known,
        }
    }

    fn line(&self, key: &str) -> Option<usize> {
        self.file.line_of(&self.path.child(key))
    }

    fn wrong_type(&self, key: &str, expected: &'static str, found: &toml::Value) -> ConfigError {
        ConfigError::WrongType {
            path: self.file.path.clone(),
            line: self.line(key),
            key: self.path.child(key).to_string(),
            expected,
            found: describe(found),
        }
    }

    fn invalid(&self, key: &str, problem: String) -> ConfigError {
        ConfigError::InvalidValue {
            path: self.file.path.clone(),
            line: self.line(key),
            key: self.path.child(key).to_string(),
            problem,
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    fn integer(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => Ok(Some(*i)),
            Some(other) => Err(self.wrong_type(key, "an integer", other)),
        }
    }

    /// A user or group id.
    fn id(&self, key: &str) -> Result<Option<u32>, ConfigError> {
        let Some(value) = self.integer(key)? else {
            return Ok(None);
        };
        u32::try_from(value).map(Some).map_err(|_| {
            self.invalid(
                key,
                format!("is {value}; expected an id from 0 to {}", u32::MAX),
            )
        })
    }

    /// A size in bytes.
    fn size(&self, key: &str) -> Result<Option<usize>, ConfigError> {
        let Some(value) = self.integer(key)? else {
            return Ok(None);
        };
        usize::try_from(value).map(Some).map_err(|_| {
            self.invalid(
                key,
                format!("is {value}; expected a size in bytes, 0 or more"),
            )
        })
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(key, "true or false", other)),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        const EXPECTED: &str = "an array of strings";
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(ConfigError::WrongType {
                        path: self.file.path.clone(),
                        line: self.line(key),
                        key: self.path.child(key).to_string(),
                        expected: EXPECTED,
                        found: format!("an array holding {}", describe(other)),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.wrong_type(key, EXPECTED, other)),
        }
    }

    fn table(
        &self,
        key: &str,
        known: &'static [&'static str],
    ) -> Result<Option<Scope<'a>>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => {
                Ok(Some(Scope::new(self.file, self.path.child(key), t, known)))
            }
            Some(other) => Err(self.wrong_type(key, "a table", other)),
        }
    }

    /// Records a warning for every key of this table that is not read.
    fn finish(&self, config: &mut Config) {
        if self.known.is_empty() {
            return;
        }
        for key in self.table.keys() {
            if self.known.contains(&key.as_str()) {
                continue;
            }
            let path = self.path.child(key);
            config.origins.warnings.push(ConfigWarning {
                file: Some(self.file.path.clone()),
                line: self.file.line_of(&path),
                key: path.to_string(),
                kind: WarningKind::UnknownKey {
                    suggestion: super::check::closest(key, self.known.iter().copied())
                        .map(str::to_owned),
                },
            });
        }
    }
}

/// "integer 5", "string \"x\"", "a table": what a reader sees, kept short.
fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("string {s:?}"),
        toml::Value::Integer(i) => format!("integer {i}"),
        toml::Value::Float(x) => format!("float {x}"),
        toml::Value::Boolean(b) => format!("boolean {b}"),
        toml::Value::Datetime(d) => format!("datetime {d}"),
        toml::Value::Array(_) => "an array".into(),
        toml::Value::Table(_) => "a table".into(),
    }
}
