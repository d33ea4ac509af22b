//! One garbage collection: the metadata store removes unreachable records
//! (holding writers off meanwhile), then what those records named is removed
//! from disk through the snapshot stores and the content store, with no lock
//! held: anything no record refers to any more is no one's.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rcontainerd_metadata::MetadataStore;
use rcontainerd_pkg::errdefs::Result;

use crate::content::ContentStore;
use crate::fault;
use crate::snapshots::SnapshotStores;

/// What a collection did and how long its parts took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Snapshot records removed.
    pub snapshots: usize,
    /// Blob records removed.
    pub blob_records: usize,
    /// Blobs removed from the content driver.
    pub blobs_removed: usize,
    /// Expired leases removed.
    pub leases: usize,
    /// Time writers were held off (mark and record sweep).
    pub records_time: Duration,
    /// The whole collection, removals from disk included.
    pub elapsed: Duration,
}

/// Collects garbage over the metadata store and whatever stores were
/// attached (the snapshots and content services attach theirs at start-up).
pub struct Collector {
    meta: Arc<MetadataStore>,
    snapshots: RwLock<Option<Arc<SnapshotStores>>>,
    content: RwLock<Option<Arc<ContentStore>>>,
}

impl Collector {
    pub fn new(meta: Arc<MetadataStore>) -> Self {
        Collector {
            meta,
            snapshots: RwLock::new(None),
            content: RwLock::new(None),
        }
    }

    pub fn metadata(&self) -> &Arc<MetadataStore> {
        &self.meta
    }

    /// Snapshots whose records a collection removes are removed from these stores' drivers.
    pub fn attach_snapshots(&self, stores: Arc<SnapshotStores>) {
        *self.snapshots.write().unwrap_or_else(|p| p.into_inner()) = Some(stores);
    }

    /// Blobs no namespace holds any more are removed from this store's driver.
    pub fn attach_content(&self, store: Arc<ContentStore>) {
        *self.content.write().unwrap_or_else(|p| p.into_inner()) = Some(store);
    }

    /// Runs one collection. `full` also looks for leftovers on disk that no
    /// record names (after a crash in an earlier collection): every
    /// snapshotter and every blob is checked, not only those this
    /// collection touched.
    pub fn collect(&self, full: bool) -> Result<Stats> {
        let started = Instant::now();
        let collection = self.meta.collect_garbage(SystemTime::now())?;
        let records_time = started.elapsed();
        if !collection.is_empty() {
            fault::crash_point("gc-after-records");
        }
        let mut stats = Stats {
            snapshots: collection.snapshots.values().sum(),
            blob_records: collection.blob_records,
            leases: collection.leases,
            records_time,
            ..Stats::default()
        };

        let snapshots = self
            .snapshots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(stores) = snapshots {
            let names: BTreeSet<String> = if full {
                stores.names().map(str::to_string).collect()
            } else {
                collection.snapshots.keys().cloned().collect()
            };
            for name in names {
                let Ok(store) = stores.get(&name) else {
                    continue; // records of a snapshotter that is not loaded
                };
                if let Err(e) = store.cleanup() {
                    tracing::warn!(snapshotter = %name, error = %e,
                        "gc: removing collected snapshots; the next collection retries");
                }
                if collection.snapshots.contains_key(&name) {
                    fault::crash_point("gc-after-first-removal");
                }
            }
        }

        let content = self
            .content
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(store) = content {
            let digests: Vec<String> = if full {
                store.unreferenced_blobs()?
            } else {
                collection.blobs.into_iter().collect()
            };
            for digest in digests {
                match store.sweep_blob(&digest) {
                    Ok(true) => {
                        stats.blobs_removed += 1;
                        fault::crash_point("gc-after-first-removal");
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(%digest, error = %e,
                        "gc: removing a collected blob; the next collection retries"),
                }
            }
        }
        stats.elapsed = started.elapsed();
        Ok(stats)
    }
}
