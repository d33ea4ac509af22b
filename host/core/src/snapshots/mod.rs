//! The metadata layer over each snapshotter driver.
//!
//! Clients name snapshots per namespace; a driver only sees driver keys
//! `<namespace>/<counter>/<name>`, so namespaces never collide in it. Kind,
//! parent, labels and times live in the metadata store
//! (`metadata/snapshots.rs`); the driver holds the files.
//!
//! Every mutation runs in three steps so that a crash at any point leaves
//! nothing half-done: (1) an intent naming the driver keys, (2) the driver
//! call, (3) the record change together with the intent's removal in one
//! batch; one of (1) and (3) is synced, as `metadata/snapshots.rs` explains.
//! [`SnapshotStore::open`] resolves intents left by a crash and removes
//! driver snapshots no record refers to (`recovery.rs`).

mod guard;
mod locks;
pub mod plugin;
mod recovery;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rcontainerd_plugin_api::snapshot::{self as driver, Mount, Snapshotter, Usage};

use crate::fault;
use locks::{Access, NameLocks};
use rcontainerd_metadata::snapshots::{
    driver_key, stored_labels, updated_labels, Intent, IntentRecord, SnapshotKind, SnapshotRecord,
};
use rcontainerd_metadata::MetadataStore;
use rcontainerd_pkg::errdefs::{Error, Kind, Result};

/// The label by which a client names the committed snapshot it wants
/// (remote-snapshot handshake).
pub const SNAPSHOT_REF_LABEL: &str = "containerd.io/snapshot.ref";
/// Labels with this prefix (and [`SNAPSHOT_REF_LABEL`]) are passed to the driver.
pub const INHERITED_LABEL_PREFIX: &str = "containerd.io/snapshot/";

/// One snapshotter's snapshots, namespaced (`Send + Sync`; every call is
/// synchronous and may block on disk or in the driver).
pub struct SnapshotStore {
    snapshotter: String,
    driver: Arc<dyn Snapshotter>,
    meta: Arc<MetadataStore>,
    locks: NameLocks,
    /// The last number handed out for driver keys and intents.
    counter: AtomicU64,
    /// The driver's walk at open, until the deferred orphan pass takes it
    /// ([`SnapshotStore::remove_startup_orphans`]).
    startup_walk: Mutex<Option<Vec<driver::Info>>>,
}

impl std::fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStore")
            .field("snapshotter", &self.snapshotter)
            .finish_non_exhaustive()
    }
}

/// The labels a driver gets: only the ones containerd lets through.
pub fn inherited_labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| *k == SNAPSHOT_REF_LABEL || k.starts_with(INHERITED_LABEL_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn does_not_exist(name: &str) -> Error {
    Error::not_found(format!("snapshot {name} does not exist"))
}

/// Keys and names: non-empty, and no NUL (it separates metadata key parts).
fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_argument(format!("{what} must not be empty")));
    }
    if name.contains('\0') {
        return Err(Error::invalid_argument(format!(
            "{what} {name:?} must not contain a nul character"
        )));
    }
    Ok(())
}

impl SnapshotStore {
    /// Wraps `driver` (registered as `snapshotter`): resolves intents left
    /// by a crash and moves the counter past every key in use before
    /// returning. Orphaned driver snapshots are removed later, by
    /// [`SnapshotStore::remove_startup_orphans`] (`SnapshotStores::open_all`
    /// runs it on a thread of its own): finding them reads every record.
    pub fn open(
        snapshotter: &str,
        driver: Arc<dyn Snapshotter>,
        meta: Arc<MetadataStore>,
    ) -> Result<SnapshotStore> {
        let counter = meta.snapshots(snapshotter).counter()?;
        let store = SnapshotStore {
            snapshotter: snapshotter.to_string(),
            driver,
            meta,
            locks: NameLocks::default(),
            counter: AtomicU64::new(counter),
            startup_walk: Mutex::new(None),
        };
        let walked = recovery::recover(&store)?;
        *store.lock_startup_walk() = walked;
        Ok(store)
    }

    fn lock_startup_walk(&self) -> std::sync::MutexGuard<'_, Option<Vec<driver::Info>>> {
        self.startup_walk.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The orphan pass of [`SnapshotStore::open`], against the walk taken
    /// there (safe while clients use the store; see `recovery.rs`). Runs
    /// once; later calls do nothing. Failures are logged: the next full
    /// collection's cleanup looks again.
    pub fn remove_startup_orphans(&self) {
        let Some(walked) = self.lock_startup_walk().take() else {
            return;
        };
        let started = std::time::Instant::now();
        match recovery::remove_orphans_walked(self, walked) {
            Ok(()) => tracing::debug!(snapshotter = %self.snapshotter,
                elapsed = ?started.elapsed(), "start-up orphan check done"),
            Err(e) => tracing::warn!(snapshotter = %self.snapshotter, error = %e,
                "start-up orphan check failed"),
        }
    }

    pub fn snapshotter(&self) -> &str {
        &self.snapshotter
    }

    /// The metadata store the records live in.
    pub fn metadata(&self) -> &MetadataStore {
        &self.meta
    }

    fn next_number(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn find(&self, namespace: &str, name: &str) -> Result<Option<SnapshotRecord>> {
        self.meta.snapshots(&self.snapshotter).get(namespace, name)
    }

    fn existing(&self, namespace: &str, name: &str) -> Result<SnapshotRecord> {
        self.find(namespace, name)?
            .ok_or_else(|| does_not_exist(name))
    }

    fn call<T>(
        &self,
        operation: &str,
        call: impl FnOnce(&dyn Snapshotter) -> rcontainerd_plugin_api::Result<T>,
    ) -> Result<T> {
        guard::call(&self.snapshotter, operation, || call(self.driver.as_ref()))
    }

    /// Drops an intent whose driver call failed; a failure here is left to
    /// the next startup's replay.
    fn abandon(&self, id: u64) {
        if let Err(e) = self.meta.snapshots(&self.snapshotter).drop_intent(id) {
            tracing::warn!(snapshotter = %self.snapshotter, intent = id, error = %e,
                "could not drop snapshot intent; it is resolved at the next start");
        }
    }

    /// The record of `name`.
    pub fn stat(&self, namespace: &str, name: &str) -> Result<SnapshotRecord> {
        self.existing(namespace, name)
    }

    /// Every snapshot in the namespace, ordered by name.
    pub fn list(&self, namespace: &str) -> Result<Vec<SnapshotRecord>> {
        self.meta.snapshots(&self.snapshotter).list(namespace)
    }

    /// Creates the active snapshot `key` on the committed `parent` (empty
    /// for none) and returns its mounts.
    pub fn prepare(
        &self,
        namespace: &str,
        key: &str,
        parent: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Vec<Mount>> {
        self.create(namespace, key, parent, labels, SnapshotKind::Active)
    }

    /// Creates the read-only view `key` of `parent` and returns its mounts.
    pub fn view(
        &self,
        namespace: &str,
        key: &str,
        parent: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Vec<Mount>> {
        self.create(namespace, key, parent, labels, SnapshotKind::View)
    }

    fn create(
        &self,
        namespace: &str,
        key: &str,
        parent: &str,
        labels: BTreeMap<String, String>,
        kind: SnapshotKind,
    ) -> Result<Vec<Mount>> {
        check_name("key", key)?;
        // A collection must not remove the parent while its child is made.
        let _gc = self.meta.hold_off_gc();
        let labels = stored_labels(labels)?;
        let target = labels
            .get(SNAPSHOT_REF_LABEL)
            .filter(|t| !t.is_empty())
            .cloned();
        let _locks = self.locks.lock(
            namespace,
            &[
                (key, Access::Exclusive),
                (parent, Access::Shared),
                (target.as_deref().unwrap_or(""), Access::Exclusive),
            ],
        );
        if let Some(target) = &target {
            if self.find(namespace, target)?.is_some() {
                return Err(Error::already_exists(format!("target snapshot {target:?}")));
            }
        }
        if self.find(namespace, key)?.is_some() {
            return Err(Error::already_exists(format!("snapshot {key:?}")));
        }
        let parent_key = if parent.is_empty() {
            String::new()
        } else {
            let record = self.find(namespace, parent)?.ok_or_else(|| {
                Error::not_found(format!("parent snapshot {parent} does not exist"))
            })?;
            if record.kind != SnapshotKind::Committed {
                return Err(Error::invalid_argument(format!(
                    "failed to create snapshot: parent {:?} is not committed snapshot",
                    record.driver_key
                )));
            }
            record.driver_key
        };

        let id = self.next_number();
        let bkey = driver_key(namespace, id, key);
        self.meta.snapshots(&self.snapshotter).begin_intent(
            id,
            &Intent::Create {
                driver_key: bkey.clone(),
            },
        )?;
        let driver_labels = inherited_labels(&labels);
        let result = match kind {
            SnapshotKind::View => {
                let result = self.call("view", |b| b.view(&bkey, &parent_key, driver_labels));
                fault::crash_point("snapshot-after-driver-view");
                result
            }
            _ => {
                let result = self.call("prepare", |b| b.prepare(&bkey, &parent_key, driver_labels));
                fault::crash_point("snapshot-after-driver-prepare");
                result
            }
        };
        let mounts = match result {
            Ok(mounts) => mounts,
            Err(e) if e.is(Kind::AlreadyExists) => {
                return match target {
                    Some(target) => {
                        self.adopt_target(namespace, id, &target, parent, &parent_key, labels)
                    }
                    None => {
                        self.abandon(id);
                        Err(Error::unknown(format!(
                            "unexpected error from snapshotter {}: {}",
                            self.snapshotter, e.message
                        )))
                    }
                };
            }
            Err(e) => {
                self.abandon(id);
                return Err(e);
            }
        };
        let now = SystemTime::now();
        let record = SnapshotRecord {
            name: key.to_string(),
            kind,
            parent: parent.to_string(),
            labels,
            created_at: now,
            updated_at: now,
            driver_key: bkey,
        };
        self.meta
            .snapshots(&self.snapshotter)
            .finish_create(namespace, id, &record)?;
        Ok(mounts)
    }

    /// Remote-snapshot handshake: the driver said the snapshot the client
    /// asked for (label [`SNAPSHOT_REF_LABEL`] = `target`) exists already.
    /// Record that committed snapshot under `target` and answer AlreadyExists.
    fn adopt_target(
        &self,
        namespace: &str,
        id: u64,
        target: &str,
        parent: &str,
        parent_key: &str,
        mut labels: BTreeMap<String, String>,
    ) -> Result<Vec<Mount>> {
        let walked = match self.call("walk", |b| b.walk()) {
            Ok(walked) => walked,
            Err(e) => {
                self.abandon(id);
                return Err(e.context("failed walking driver snapshots"));
            }
        };
        let found = walked.into_iter().find(|info| {
            info.kind == driver::Kind::Committed
                && info.parent == parent_key
                && info.labels.get(SNAPSHOT_REF_LABEL).map(String::as_str) == Some(target)
        });
        let Some(found) = found else {
            self.abandon(id);
            return Err(Error::not_found(format!(
                "target snapshot {target:?} in driver"
            )));
        };
        for (k, v) in found.labels {
            labels.entry(k).or_insert(v);
        }
        let record = SnapshotRecord {
            name: target.to_string(),
            kind: SnapshotKind::Committed,
            parent: parent.to_string(),
            labels,
            created_at: rcontainerd_pkg::time::from_unix_nanos(found.created),
            updated_at: rcontainerd_pkg::time::from_unix_nanos(found.updated),
            driver_key: found.name,
        };
        self.meta
            .snapshots(&self.snapshotter)
            .finish_create(namespace, id, &record)?;
        Err(Error::already_exists(format!(
            "target snapshot {target:?} from snapshotter"
        )))
    }

    /// The mounts of an active snapshot or view.
    pub fn mounts(&self, namespace: &str, key: &str) -> Result<Vec<Mount>> {
        let record = self.existing(namespace, key)?;
        if record.kind == SnapshotKind::Committed {
            return Err(Error::failed_precondition(format!(
                "failed to get active mount: requested snapshot {} not active or view",
                record.driver_key
            )));
        }
        self.call("mounts", |b| b.mounts(&record.driver_key))
    }

    /// Turns the active snapshot `key` into the committed snapshot `name`;
    /// `key` no longer exists afterwards.
    pub fn commit(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<()> {
        check_name("name", name)?;
        check_name("key", key)?;
        let labels = stored_labels(labels)?;
        // The gate before any other lock: see rcontainerd_metadata's gate.rs.
        let _gc = self.meta.hold_off_gc();
        let _locks = self.locks.lock(
            namespace,
            &[(key, Access::Exclusive), (name, Access::Exclusive)],
        );
        if self.find(namespace, name)?.is_some() {
            return Err(Error::already_exists(format!("snapshot {name:?}")));
        }
        let active = self.existing(namespace, key)?;
        if active.kind != SnapshotKind::Active {
            return Err(Error::failed_precondition(format!(
                "failed to commit snapshot: snapshot {:?} is not active",
                active.driver_key
            )));
        }
        let id = self.next_number();
        let now = SystemTime::now();
        let record = SnapshotRecord {
            name: name.to_string(),
            kind: SnapshotKind::Committed,
            parent: active.parent.clone(),
            labels,
            created_at: now,
            updated_at: now,
            driver_key: driver_key(namespace, id, name),
        };
        self.meta.snapshots(&self.snapshotter).begin_intent(
            id,
            &Intent::Commit {
                namespace: namespace.to_string(),
                active_name: key.to_string(),
                active_key: active.driver_key.clone(),
                record: IntentRecord::from_record(&record),
            },
        )?;
        let driver_labels = inherited_labels(&record.labels);
        let result = self.call("commit", |b| {
            b.commit(&record.driver_key, &active.driver_key, driver_labels)
        });
        fault::crash_point("snapshot-after-driver-commit");
        if let Err(e) = result {
            self.abandon(id);
            return Err(e);
        }
        // Should this write fail, the intent stays and the next start rolls
        // the commit forward (the driver has it).
        self.meta
            .snapshots(&self.snapshotter)
            .finish_commit(namespace, id, &record, key)
    }

    /// Removes a snapshot that no other snapshot has as its parent.
    pub fn remove(&self, namespace: &str, key: &str) -> Result<()> {
        check_name("key", key)?;
        // The gate before any other lock: see rcontainerd_metadata's gate.rs.
        let _gc = self.meta.hold_off_gc();
        let _locks = self.locks.lock(namespace, &[(key, Access::Exclusive)]);
        let record = self.existing(namespace, key)?;
        if self
            .meta
            .snapshots(&self.snapshotter)
            .has_children(namespace, key)?
        {
            return Err(Error::failed_precondition(
                "cannot remove snapshot with child",
            ));
        }
        // A snapshot adopted through the remote handshake may be shared with
        // other namespaces; the driver copy goes only with its last record.
        let shared = !record.driver_key.starts_with(&format!("{namespace}/"))
            && self.referenced_elsewhere(namespace, key, &record.driver_key)?;
        let id = self.next_number();
        self.meta.snapshots(&self.snapshotter).begin_intent(
            id,
            &Intent::Remove {
                namespace: namespace.to_string(),
                name: key.to_string(),
                driver_key: record.driver_key.clone(),
            },
        )?;
        let result = if shared {
            Ok(())
        } else {
            self.call("remove", |b| b.remove(&record.driver_key))
        };
        fault::crash_point("snapshot-after-driver-remove");
        match result {
            // Gone from the driver already: the record follows.
            Ok(()) => {}
            Err(e) if e.is(Kind::NotFound) => {}
            Err(e) => {
                self.abandon(id);
                return Err(e);
            }
        }
        self.meta
            .snapshots(&self.snapshotter)
            .finish_remove(namespace, id, key)
    }

    /// Whether a record other than `namespace`/`name` uses `driver_key`.
    fn referenced_elsewhere(&self, namespace: &str, name: &str, driver_key: &str) -> Result<bool> {
        for ns in self.meta.namespaces().list()? {
            for record in self.meta.snapshots(&self.snapshotter).list(&ns.name)? {
                if record.driver_key == driver_key && !(ns.name == namespace && record.name == name)
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Updates labels (field paths `labels`, `labels.<key>`; none = all).
    pub fn update(
        &self,
        namespace: &str,
        name: &str,
        labels: BTreeMap<String, String>,
        paths: &[String],
    ) -> Result<SnapshotRecord> {
        if name.is_empty() {
            return Err(Error::invalid_argument("must specify snapshot name"));
        }
        // The gate before any other lock: see rcontainerd_metadata's gate.rs.
        let _gc = self.meta.hold_off_gc();
        let _locks = self.locks.lock(namespace, &[(name, Access::Exclusive)]);
        let mut record = self.existing(namespace, name)?;
        record.labels = updated_labels(name, record.labels, labels, paths)?;
        record.updated_at = SystemTime::now();
        self.meta
            .snapshots(&self.snapshotter)
            .put(namespace, &record)?;
        Ok(record)
    }

    /// What the snapshot's own layer uses (parents excluded; the driver
    /// computes it).
    pub fn usage(&self, namespace: &str, key: &str) -> Result<Usage> {
        let record = self.existing(namespace, key)?;
        self.call("usage", |b| b.usage(&record.driver_key))
    }

    /// Removes driver snapshots no record refers to, then lets the driver
    /// release whatever else it holds.
    pub fn cleanup(&self) -> Result<()> {
        match recovery::remove_orphans(self) {
            // A driver that cannot list its snapshots has no orphans we could find.
            Err(e) if e.is(Kind::NotImplemented) => {}
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        match self.call("cleanup", |b| b.cleanup()) {
            Err(e) if e.is(Kind::NotImplemented) => Ok(()),
            other => other,
        }
    }
}

/// The snapshot stores of every loaded snapshotter, by snapshotter id.
#[derive(Debug, Default, Clone)]
pub struct SnapshotStores {
    stores: BTreeMap<String, Arc<SnapshotStore>>,
}

impl SnapshotStores {
    /// Opens a store over each driver (replaying its intents), then starts
    /// their orphan passes on a background thread. A driver whose store
    /// cannot open is logged and left out.
    pub fn open_all(
        meta: &Arc<MetadataStore>,
        drivers: &BTreeMap<String, Arc<dyn Snapshotter>>,
    ) -> SnapshotStores {
        let mut stores = BTreeMap::new();
        for (name, driver) in drivers {
            match SnapshotStore::open(name, driver.clone(), meta.clone()) {
                Ok(store) => {
                    stores.insert(name.clone(), Arc::new(store));
                }
                Err(e) => {
                    tracing::error!(snapshotter = %name, error = %e,
                        "snapshot metadata for this snapshotter could not be opened; not serving it");
                }
            }
        }
        let deferred: Vec<Arc<SnapshotStore>> = stores.values().cloned().collect();
        let spawned = std::thread::Builder::new()
            .name("snapshot-orphans".into())
            .spawn(move || {
                for store in deferred {
                    store.remove_startup_orphans();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e,
                "cannot start the orphan check thread; the first full collection does it");
        }
        SnapshotStores { stores }
    }

    /// The store of `snapshotter`, or containerd's answer for an unknown one.
    pub fn get(&self, snapshotter: &str) -> Result<Arc<SnapshotStore>> {
        self.stores.get(snapshotter).cloned().ok_or_else(|| {
            Error::invalid_argument(format!("snapshotter not loaded: {snapshotter}"))
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.stores.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests;
