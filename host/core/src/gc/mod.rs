//! Garbage collection: the `io.containerd.gc.v1.scheduler` plugin, with
//! containerd 1.6's settings and defaults, provides the [`Scheduler`]. The
//! snapshots and content service plugins attach their stores to its
//! [`Collector`]; services that delete with `sync` wait on it.

mod collector;
mod scheduler;

pub use collector::{Collector, Stats};
pub use scheduler::{Scheduler, Settings};

use std::sync::Arc;
use std::time::Duration;

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
    let meta = ctx.get::<Arc<MetadataStore>>(METADATA)?;
    check(ctx.uri, ctx.config)?;
    let collector = Arc::new(Collector::new(meta));
    let scheduler = Scheduler::start(collector, settings(ctx.config));
    Ok(Instance::of(Arc::new(scheduler)))
}

/// The settings of a config that passed [`check`].
fn settings(c: &toml::Table) -> Settings {
    let defaults = Settings::default();
    let number = |key: &str| match c.get(key) {
        Some(toml::Value::Integer(n)) => u64::try_from(*n).ok(),
        _ => None,
    };
    let delay = |key: &str, default: Duration| match c.get(key) {
        Some(toml::Value::String(s)) => duration::parse(s).unwrap_or(default),
        _ => default,
    };
    Settings {
        pause_threshold: match c.get("pause_threshold") {
            Some(toml::Value::Float(f)) => *f,
            Some(toml::Value::Integer(n)) => *n as f64,
            _ => defaults.pause_threshold,
        },
        deletion_threshold: number("deletion_threshold").unwrap_or(defaults.deletion_threshold),
        mutation_threshold: number("mutation_threshold").unwrap_or(defaults.mutation_threshold),
        schedule_delay: delay("schedule_delay", defaults.schedule_delay),
        startup_delay: delay("startup_delay", defaults.startup_delay),
    }
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
    fn settings_read_containerds_keys() {
        assert_eq!(settings(&defaults()), Settings::default());
        let mut c = defaults();
        c.insert("deletion_threshold".into(), toml::Value::Integer(5));
        c.insert("startup_delay".into(), toml::Value::String("2s".into()));
        let s = settings(&c);
        assert_eq!(s.deletion_threshold, 5);
        assert_eq!(s.startup_delay, Duration::from_secs(2));
    }

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
