//! The metadata plugin: opens the daemon's record store. Every namespaced
//! service depends on it, so the daemon refuses to run without it.
//!
//! Its one setting is containerd's `content_sharing_policy`: `"shared"`
//! (the default) lets a namespace take a blob the store already holds for
//! another namespace without sending its bytes; `"isolated"` allows that
//! only from namespaces labelled `containerd.io/namespace.shareable=true`.

use std::sync::Arc;

use rcontainerd_metadata::MetadataStore;
use rcontainerd_pkg::errdefs::Error;
use rcontainerd_plugin_api::content;

use crate::ids::{CONTENT_TYPE, METADATA, METADATA_TYPE, SNAPSHOTTER_TYPE};
use crate::registry::{InitContext, InitError, Instance, Registration, Registry};

pub fn registration() -> Registration {
    Registration::builtin(
        METADATA_TYPE,
        "bolt",
        &[CONTENT_TYPE, SNAPSHOTTER_TYPE],
        init,
    )
    .with_config(defaults())
}

fn defaults() -> toml::Table {
    let mut t = toml::Table::new();
    t.insert(
        "content_sharing_policy".into(),
        toml::Value::String("shared".into()),
    );
    t
}

/// Whether `config` asks for shared content (containerd's policy names).
fn shares_content(uri: &str, config: &toml::Table) -> Result<bool, Error> {
    match config.get("content_sharing_policy") {
        Some(toml::Value::String(p)) if p == "shared" => Ok(true),
        Some(toml::Value::String(p)) if p == "isolated" => Ok(false),
        Some(other) => Err(Error::invalid_argument(format!(
            "plugins.\"{uri}\".content_sharing_policy: unknown policy: {other}"
        ))),
        None => Ok(true),
    }
}

fn init(ctx: &InitContext<'_>) -> Result<Instance, InitError> {
    if ctx.all::<Arc<dyn content::Store>>(CONTENT_TYPE).is_empty() {
        return Err(
            Error::not_found("no content store is loaded (io.containerd.content.v1)").into(),
        );
    }
    let shared = shares_content(ctx.uri, ctx.config)?;
    let store = MetadataStore::open(ctx.root)?;
    store.set_content_sharing(shared);
    Ok(Instance::of(Arc::new(store)))
}

/// Flushes the metadata store at a clean shutdown, so the next start has no
/// WAL to replay (see [`MetadataStore::flush`]). A failure only costs that
/// replay: it is logged.
pub fn flush_at_shutdown(registry: &Registry) {
    let Ok(store) = registry.get::<Arc<MetadataStore>>(METADATA) else {
        return;
    };
    let started = std::time::Instant::now();
    match store.flush() {
        Ok(()) => tracing::info!(elapsed = ?started.elapsed(), "metadata flushed"),
        Err(e) => {
            tracing::warn!(error = %e, "metadata flush at shutdown failed; the next start replays the WAL")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_containerds() {
        let uri = "io.containerd.metadata.v1.bolt";
        assert!(shares_content(uri, &defaults()).unwrap());
        let mut c = toml::Table::new();
        c.insert("content_sharing_policy".into(), "isolated".into());
        assert!(!shares_content(uri, &c).unwrap());
        c.insert("content_sharing_policy".into(), "open".into());
        let err = shares_content(uri, &c).unwrap_err();
        assert!(err.message.contains("unknown policy: \"open\""), "{err}");
    }
}
