//! Plugins compiled into the daemon. They register through the same
//! registry as loaded drivers, so Introspection lists the whole daemon the
//! way containerd does (metadata, gc, services, gRPC services).

use super::registry::{Environment, Init, Initialized, Registration};
use crate::errdefs::{Error, Result};
use crate::metadata::MetadataStore;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub const METADATA: &str = "io.containerd.metadata.v1.bolt";
pub const GC_SCHEDULER: &str = "io.containerd.gc.v1.scheduler";
pub const GRPC_INTROSPECTION: &str = "io.containerd.grpc.v1.introspection";
pub const GRPC_NAMESPACES: &str = "io.containerd.grpc.v1.namespaces";
pub const GRPC_VERSION: &str = "io.containerd.grpc.v1.version";
pub const GRPC_HEALTH: &str = "io.containerd.grpc.v1.healthcheck";
pub const GRPC_SNAPSHOTS: &str = "io.containerd.grpc.v1.snapshots";
pub const GRPC_CONTENT: &str = "io.containerd.grpc.v1.content";

/// Key of the server UUID in [`Initialized::values`].
pub const SERVER_UUID: &str = "server-uuid";

pub struct BuiltinContext<'a> {
    pub uri: &'a str,
    pub root: &'a Path,
    pub state: &'a Path,
    pub config: &'a toml::Table,
    pub env: &'a Environment,
}

/// A built-in's init: returns its exports.
pub type BuiltinInit =
    fn(&BuiltinContext<'_>, &mut Initialized) -> Result<BTreeMap<String, String>>;

fn builtin(
    plugin_type: &str,
    id: &str,
    requires: &[&str],
    default_config: toml::Table,
    init: BuiltinInit,
) -> Registration {
    Registration {
        plugin_type: plugin_type.to_string(),
        id: id.to_string(),
        requires: requires.iter().map(|s| s.to_string()).collect(),
        capabilities: Vec::new(),
        default_config,
        library: None,
        init: Init::Builtin(init),
    }
}

/// Every built-in plugin, in registration order.
pub fn registrations() -> Vec<Registration> {
    vec![
        builtin(
            "io.containerd.metadata.v1",
            "bolt",
            &["io.containerd.content.v1", "io.containerd.snapshotter.v1"],
            toml::Table::new(),
            init_metadata,
        ),
        builtin(
            "io.containerd.gc.v1",
            "scheduler",
            &["io.containerd.metadata.v1"],
            gc_defaults(),
            init_gc,
        ),
        builtin(
            "io.containerd.service.v1",
            "introspection-service",
            &[],
            toml::Table::new(),
            init_nothing,
        ),
        builtin(
            "io.containerd.service.v1",
            "namespaces-service",
            &["io.containerd.metadata.v1"],
            toml::Table::new(),
            init_needs_metadata,
        ),
        builtin(
            "io.containerd.service.v1",
            "snapshots-service",
            &["io.containerd.metadata.v1"],
            toml::Table::new(),
            init_needs_metadata,
        ),
        builtin(
            "io.containerd.service.v1",
            "content-service",
            &["io.containerd.metadata.v1"],
            toml::Table::new(),
            init_needs_metadata,
        ),
        builtin(
            "io.containerd.grpc.v1",
            "introspection",
            &["io.containerd.service.v1"],
            toml::Table::new(),
            init_introspection,
        ),
        builtin(
            "io.containerd.grpc.v1",
            "namespaces",
            &["io.containerd.service.v1"],
            toml::Table::new(),
            init_needs_metadata,
        ),
        builtin(
            "io.containerd.grpc.v1",
            "snapshots",
            &["io.containerd.service.v1"],
            toml::Table::new(),
            init_needs_metadata,
        ),
        builtin(
            "io.containerd.grpc.v1",
            "content",
            &["io.containerd.service.v1"],
            toml::Table::new(),
            init_needs_metadata,
        ),
        builtin(
            "io.containerd.grpc.v1",
            "version",
            &[],
            toml::Table::new(),
            init_nothing,
        ),
        builtin(
            "io.containerd.grpc.v1",
            "healthcheck",
            &[],
            toml::Table::new(),
            init_nothing,
        ),
    ]
}

fn init_nothing(_: &BuiltinContext<'_>, _: &mut Initialized) -> Result<BTreeMap<String, String>> {
    Ok(BTreeMap::new())
}

fn init_needs_metadata(
    _: &BuiltinContext<'_>,
    done: &mut Initialized,
) -> Result<BTreeMap<String, String>> {
    if done.metadata.is_none() {
        return Err(Error::not_found(
            "metadata store is not available (io.containerd.metadata.v1.bolt did not load)",
        ));
    }
    Ok(BTreeMap::new())
}

fn init_metadata(
    ctx: &BuiltinContext<'_>,
    done: &mut Initialized,
) -> Result<BTreeMap<String, String>> {
    if done.content.is_none() {
        return Err(Error::not_found(
            "no content store is loaded (io.containerd.content.v1)",
        ));
    }
    let store = MetadataStore::open(ctx.root)?;
    done.metadata = Some(Arc::new(store));
    Ok(BTreeMap::new())
}

/// containerd 1.6's gc scheduler settings; read and checked now, acted on
/// once garbage collection lands.
fn gc_defaults() -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("pause_threshold".into(), toml::Value::Float(0.02));
    t.insert("deletion_threshold".into(), toml::Value::Integer(0));
    t.insert("mutation_threshold".into(), toml::Value::Integer(100));
    t.insert("schedule_delay".into(), toml::Value::String("0s".into()));
    t.insert("startup_delay".into(), toml::Value::String("100ms".into()));
    t
}

fn init_gc(ctx: &BuiltinContext<'_>, done: &mut Initialized) -> Result<BTreeMap<String, String>> {
    if done.metadata.is_none() {
        return Err(Error::not_found("metadata store is not available"));
    }
    let c = ctx.config;
    let bad = |key: &str, want: &str| {
        Error::invalid_argument(format!("plugins.\"{}\".{key}: expected {want}", ctx.uri))
    };
    match c.get("pause_threshold") {
        Some(toml::Value::Float(f)) if (0.0..=1.0).contains(f) => {}
        Some(toml::Value::Integer(0 | 1)) => {}
        _ => return Err(bad("pause_threshold", "a number between 0 and 1")),
    }
    for key in ["deletion_threshold", "mutation_threshold"] {
        match c.get(key) {
            Some(toml::Value::Integer(n)) if *n >= 0 => {}
            _ => return Err(bad(key, "a non-negative integer")),
        }
    }
    for key in ["schedule_delay", "startup_delay"] {
        match c.get(key) {
            Some(toml::Value::String(s)) if parse_duration(s).is_some() => {}
            _ => return Err(bad(key, "a duration such as \"100ms\"")),
        }
    }
    Ok(BTreeMap::new())
}

/// Go-style durations as containerd's config uses them: "0s", "100ms", "1m30s".
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    Some(std::time::Duration::from_secs_f64(total))
}

/// The server UUID, created once and kept under the introspection root.
fn init_introspection(
    ctx: &BuiltinContext<'_>,
    done: &mut Initialized,
) -> Result<BTreeMap<String, String>> {
    let uuid = crate::services::introspection::load_or_create_uuid(ctx.root)?;
    done.values.insert(SERVER_UUID.into(), uuid);
    Ok(BTreeMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration(""), None);
    }
}
