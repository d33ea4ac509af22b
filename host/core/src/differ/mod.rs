//! Differs: applying a layer to mounted snapshots, and writing the changes between two mounted
//! snapshots as a layer. The diff service tries its differs in the configured order until one
//! does not answer NotImplemented, as containerd's does; the built-in one is [`walking`].

pub mod early;
mod layer;
pub mod plugin;
mod sink;
pub mod walking;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rcontainerd_metadata::Descriptor;
use rcontainerd_mount::Mount;
use rcontainerd_pkg::errdefs::{Kind, Result};

use crate::content::ContentStore;

/// What a differ works with on one call.
pub struct DiffContext<'a> {
    pub content: &'a Arc<ContentStore>,
    pub namespace: &'a str,
    /// The call's `containerd-lease`: holds the layer a Diff writes.
    pub lease: Option<&'a str>,
    /// Set when the client has gone: long work stops at its next read or write.
    pub cancelled: &'a AtomicBool,
    /// Layers extracted while their blobs were written, when early unpack is on.
    pub early: Option<&'a early::EarlyUnpack>,
}

impl DiffContext<'_> {
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// How a Diff writes its layer.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Empty: tar+gzip, as containerd's default.
    pub media_type: String,
    /// The ingest reference to write under; empty: a new unique one.
    pub reference: String,
    /// Labels of the committed blob.
    pub labels: BTreeMap<String, String>,
}

/// A differ driver.
pub trait Differ: Send + Sync {
    /// Applies the layer `layer` (a blob of the namespace) to the mounted `mounts`; returns the
    /// uncompressed layer's descriptor (its digest is the diff ID).
    fn apply(
        &self,
        cx: &DiffContext<'_>,
        layer: &Descriptor,
        mounts: &[Mount],
    ) -> Result<Descriptor>;
    /// Writes the changes from `lower` to `upper` as a layer into the content store.
    fn diff(
        &self,
        cx: &DiffContext<'_>,
        lower: &[Mount],
        upper: &[Mount],
        options: &DiffOptions,
    ) -> Result<Descriptor>;
}

/// The differs in the order the diff service tries them.
pub struct Differs {
    content: Arc<ContentStore>,
    ordered: Vec<(String, Arc<dyn Differ>)>,
    early: Option<Arc<early::EarlyUnpack>>,
}

impl Differs {
    /// With `early`, the content store shows it every new ingest (see [`early`]).
    pub fn new(
        content: Arc<ContentStore>,
        ordered: Vec<(String, Arc<dyn Differ>)>,
        early: Option<Arc<early::EarlyUnpack>>,
    ) -> Self {
        if let Some(early) = &early {
            content.set_tap(early.clone());
        }
        Differs {
            content,
            ordered,
            early,
        }
    }

    pub fn apply(
        &self,
        namespace: &str,
        cancelled: &AtomicBool,
        layer: &Descriptor,
        mounts: &[Mount],
    ) -> Result<Descriptor> {
        let cx = self.context(namespace, None, cancelled);
        self.first_implemented(|d| d.apply(&cx, layer, mounts))
    }

    pub fn diff(
        &self,
        namespace: &str,
        lease: Option<&str>,
        cancelled: &AtomicBool,
        lower: &[Mount],
        upper: &[Mount],
        options: &DiffOptions,
    ) -> Result<Descriptor> {
        let cx = self.context(namespace, lease, cancelled);
        self.first_implemented(|d| d.diff(&cx, lower, upper, options))
    }

    fn context<'a>(
        &'a self,
        namespace: &'a str,
        lease: Option<&'a str>,
        cancelled: &'a AtomicBool,
    ) -> DiffContext<'a> {
        DiffContext {
            content: &self.content,
            namespace,
            lease,
            cancelled,
            early: self.early.as_deref(),
        }
    }

    /// The first answer that is not NotImplemented (the last one when all are).
    fn first_implemented(
        &self,
        call: impl Fn(&dyn Differ) -> Result<Descriptor>,
    ) -> Result<Descriptor> {
        let mut answer = Err(rcontainerd_pkg::errdefs::Error::not_implemented(
            "no differ is configured",
        ));
        for (_, differ) in &self.ordered {
            answer = call(differ.as_ref());
            match &answer {
                Err(e) if e.is(Kind::NotImplemented) => continue,
                _ => break,
            }
        }
        answer
    }
}
