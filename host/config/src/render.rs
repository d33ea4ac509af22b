//! Writing a config as full TOML (`rcontainerd config default` and `config dump`).
//!
//! The output is what [`super::load`] reads back unchanged: every key the daemon uses, then a
//! `[plugins."<URI>"]` table for every known plugin (its defaults under the config's own values) and for every
//! table the config has. containerd's carried keys appear only when set, so a default config shows what this
//! daemon uses. The output is already merged, so `imports` is always empty in it.

use std::collections::BTreeMap;
use std::path::Path;

use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

use super::Config;

/// Renders `config` with `plugin_defaults` (URI → the plugin's default table) filled in under its own tables.
pub fn render(config: &Config, plugin_defaults: &BTreeMap<String, toml::Table>) -> String {
    let mut doc = DocumentMut::new();
    let top = doc.as_table_mut();

    top.insert("version", Item::Value(config.version.into()));
    top.insert("root", path(&config.root));
    top.insert("state", path(&config.state));
    if let Some(temp) = &config.temp {
        top.insert("temp", path(temp));
    }
    if let Some(dir) = &config.plugin_dir {
        top.insert("plugin_dir", path(dir));
    }
    top.insert(
        "plugin_dirs",
        strings(config.plugin_dirs.iter().map(|d| d.to_string_lossy())),
    );
    if config.oom_score != 0 {
        top.insert("oom_score", Item::Value(config.oom_score.into()));
    }
    top.insert("imports", strings(std::iter::empty::<&str>()));
    top.insert("disabled_plugins", strings(&config.disabled_plugins));
    top.insert("required_plugins", strings(&config.required_plugins));

    let grpc = &config.grpc;
    let mut table = section();
    table.insert("address", path(&grpc.address));
    for (key, value) in [
        ("tcp_address", &grpc.tcp_address),
        ("tcp_tls_ca", &grpc.tcp_tls_ca),
        ("tcp_tls_cert", &grpc.tcp_tls_cert),
        ("tcp_tls_key", &grpc.tcp_tls_key),
    ] {
        if !value.is_empty() {
            table.insert(key, string(value));
        }
    }
    table.insert("uid", Item::Value(i64::from(grpc.uid).into()));
    table.insert("gid", Item::Value(i64::from(grpc.gid).into()));
    table.insert("max_recv_message_size", size(grpc.max_recv_message_size));
    table.insert("max_send_message_size", size(grpc.max_send_message_size));
    top.insert("grpc", Item::Table(table));

    let mut table = section();
    table.insert("address", path(&config.ttrpc.address));
    table.insert("uid", Item::Value(i64::from(config.ttrpc.uid).into()));
    table.insert("gid", Item::Value(i64::from(config.ttrpc.gid).into()));
    top.insert("ttrpc", Item::Table(table));

    let debug = &config.debug;
    let mut table = section();
    if !debug.address.is_empty() {
        table.insert("address", string(&debug.address));
    }
    if debug.uid != 0 {
        table.insert("uid", Item::Value(i64::from(debug.uid).into()));
    }
    if debug.gid != 0 {
        table.insert("gid", Item::Value(i64::from(debug.gid).into()));
    }
    table.insert("level", string(&debug.level));
    table.insert("format", string(&debug.format));
    top.insert("debug", Item::Table(table));

    if config.metrics != Default::default() {
        let mut table = section();
        table.insert("address", string(&config.metrics.address));
        table.insert(
            "grpc_histogram",
            Item::Value(config.metrics.grpc_histogram.into()),
        );
        top.insert("metrics", Item::Table(table));
    }
    if config.cgroup != Default::default() {
        let mut table = section();
        table.insert("path", string(&config.cgroup.path));
        top.insert("cgroup", Item::Table(table));
    }
    if !config.timeouts.is_empty() {
        let mut table = section();
        for (name, timeout) in &config.timeouts {
            table.insert(name, string(timeout));
        }
        top.insert("timeouts", Item::Table(table));
    }
    if !config.proxy_plugins.is_empty() {
        let mut parent = Table::new();
        parent.set_implicit(true);
        for (name, proxy) in &config.proxy_plugins {
            let mut table = section();
            table.insert("type", string(&proxy.plugin_type));
            table.insert("address", string(&proxy.address));
            if !proxy.platform.is_empty() {
                table.insert("platform", string(&proxy.platform));
            }
            if !proxy.snapshotter.is_empty() {
                table.insert("snapshotter", string(&proxy.snapshotter));
            }
            parent.insert(name, Item::Table(table));
        }
        top.insert("proxy_plugins", Item::Table(parent));
    }
    if !config.stream_processors.is_empty() {
        let mut parent = Table::new();
        parent.set_implicit(true);
        for (name, processor) in &config.stream_processors {
            let mut table = section();
            table.insert("accepts", strings(&processor.accepts));
            table.insert("returns", string(&processor.returns));
            table.insert("path", string(&processor.path));
            table.insert("args", strings(&processor.args));
            table.insert("env", strings(&processor.env));
            parent.insert(name, Item::Table(table));
        }
        top.insert("stream_processors", Item::Table(parent));
    }

    let uris: std::collections::BTreeSet<&String> = plugin_defaults
        .keys()
        .chain(config.plugins.keys())
        .collect();
    if !uris.is_empty() {
        let mut plugins = Table::new();
        plugins.set_implicit(true);
        for uri in uris {
            let empty = toml::Table::new();
            let defaults = plugin_defaults.get(uri).unwrap_or(&empty);
            let merged = match config.plugins.get(uri) {
                Some(own) => overlay(defaults, own),
                None => defaults.clone(),
            };
            let mut table = to_table(&merged);
            table.decor_mut().set_prefix("\n");
            plugins.insert(uri, Item::Table(table));
        }
        top.insert("plugins", Item::Table(plugins));
    }

    doc.to_string()
}

/// `own` over `defaults`, key by key; tables present in both merge the same way (a plugin decodes its TOML onto
/// its defaults, so a key the config leaves out keeps its default).
pub fn overlay(defaults: &toml::Table, own: &toml::Table) -> toml::Table {
    let mut merged = defaults.clone();
    for (key, value) in own {
        let value = match (merged.get(key), value) {
            (Some(toml::Value::Table(d)), toml::Value::Table(o)) => {
                toml::Value::Table(overlay(d, o))
            }
            _ => value.clone(),
        };
        merged.insert(key.clone(), value);
    }
    merged
}

/// A top-level `[section]` with a blank line before it.
fn section() -> Table {
    let mut table = Table::new();
    table.decor_mut().set_prefix("\n");
    table
}

fn string(s: &str) -> Item {
    Item::Value(s.into())
}

fn path(p: &Path) -> Item {
    string(&p.to_string_lossy())
}

fn size(n: usize) -> Item {
    Item::Value(i64::try_from(n).unwrap_or(i64::MAX).into())
}

fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Item {
    Item::Value(Value::Array(
        items.into_iter().map(|s| s.as_ref().to_owned()).collect(),
    ))
}

fn to_table(table: &toml::Table) -> Table {
    let mut out = Table::new();
    for (key, value) in table {
        out.insert(key, to_item(value));
    }
    out
}

fn to_item(value: &toml::Value) -> Item {
    match value {
        toml::Value::Table(t) => Item::Table(to_table(t)),
        toml::Value::Array(items) if !items.is_empty() && items.iter().all(|v| v.is_table()) => {
            let mut array = ArrayOfTables::new();
            for item in items.iter().filter_map(toml::Value::as_table) {
                array.push(to_table(item));
            }
            Item::ArrayOfTables(array)
        }
        other => Item::Value(to_value(other)),
    }
}

fn to_value(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => s.as_str().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(x) => (*x).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => (*d).into(),
        toml::Value::Array(items) => Value::Array(items.iter().map(to_value).collect::<Array>()),
        toml::Value::Table(t) => {
            let mut inline = InlineTable::new();
            for (key, value) in t {
                inline.insert(key, to_value(value));
            }
            Value::InlineTable(inline)
        }
    }
}
