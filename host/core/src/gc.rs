//! The gc scheduler plugin: containerd 1.6's settings, read and checked now
//! so a config written for containerd is accepted; collecting arrives with
//! the garbage-collection issue.

use std::sync::Arc;

use rcontainerd_metadata::MetadataStore;
use rcontainerd_pkg::duration;
use rcontainerd_pkg::errdefs::Error;

use crate::ids::{GC_TYPE, METADATA, METADATA_TYPE};
use crate::registry::{InitContext, InitError, Instance, Registration};

pub fn registration() -> Registration {
    Registration::builtin(GC_TYPE, "scheduler", &[METADATA_TYPE], init).with_config(defaults())
}

fn defaults() -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("pause_threshold".into(), toml::Value::Float(0.02));
    t.insert("deletion_threshold".into(), toml::Value::Integer(0));
    t.insert("mutation_threshold".into(), toml::Value::Integer(100));
    t.insert("schedule_delay".into(), toml::Value::String("0s".into()));
    t.insert("startup_delay".into(), toml::Value::String("100ms".into()));
    t
}

fn init(ctx: &InitContext<'_>) -> Result<Instance, InitError> {
    ctx.get::<Arc<MetadataStore>>(METADATA)?;
    check(ctx.uri, ctx.config)?;
    Ok(Instance::none())
}

fn check(uri: &str, c: &toml::Table) -> Result<(), Error> {
    let bad = |key: &str, want: &str| {
        Error::invalid_argument(format!("plugins.\"{uri}\".{key}: expected {want}"))
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
            Some(toml::Value::String(s)) if duration::parse(s).is_ok() => {}
            _ => return Err(bad(key, "a duration such as \"100ms\"")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_defaults_pass_and_bad_values_name_the_key() {
        let uri = "io.containerd.gc.v1.scheduler";
        assert!(check(uri, &defaults()).is_ok());
        let mut c = defaults();
        c.insert("startup_delay".into(), toml::Value::String("soon".into()));
        let err = check(uri, &c).unwrap_err();
        assert!(
            err.message.contains(".startup_delay: expected a duration"),
            "{err}"
        );
        let mut c = defaults();
        c.insert("pause_threshold".into(), toml::Value::Float(1.5));
        assert!(check(uri, &c).is_err());
    }
}
