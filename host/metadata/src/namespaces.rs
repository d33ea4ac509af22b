//! Namespace records: column family `namespaces`, key = the namespace name,
//! value = [`RecordV1`] (version byte 1).
//!
//! Deleting a namespace is refused while it still holds images, blobs,
//! containers or snapshots (containerd 1.6 lists those in that order); its
//! leases and ingests go with it, as they do in containerd.

use std::collections::BTreeMap;
use std::time::SystemTime;

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::keys;
use super::record;
use super::store::{Cf, MetadataStore, NamespaceGuard};
use rcontainerd_pkg::errdefs::{Error, Result};
use rcontainerd_pkg::{identifiers, labels};

const KIND: &str = "namespace";
const VERSION: u8 = 1;

/// A namespace as the API sees it (containerd's proto carries name and
/// labels; the times are ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

/// Stored value, version 1. Times are nanoseconds since the Unix epoch.
#[derive(Debug, Serialize, Deserialize)]
struct RecordV1 {
    labels: BTreeMap<String, String>,
    created_at: i64,
    updated_at: i64,
}

impl Namespace {
    fn new(name: &str, labels: BTreeMap<String, String>) -> Namespace {
        let now = SystemTime::now();
        Namespace {
            name: name.to_string(),
            labels,
            created_at: now,
            updated_at: now,
        }
    }

    fn decode(name: &str, value: &[u8]) -> Result<Namespace> {
        let v1: RecordV1 = record::decode(KIND, VERSION, value)?;
        Ok(Namespace {
            name: name.to_string(),
            labels: v1.labels,
            created_at: record::from_unix_nanos(v1.created_at),
            updated_at: record::from_unix_nanos(v1.updated_at),
        })
    }

    fn put_in(&self, store: &MetadataStore, batch: &mut WriteBatch) -> Result<()> {
        let v1 = RecordV1 {
            labels: self.labels.clone(),
            created_at: record::to_unix_nanos(self.created_at),
            updated_at: record::to_unix_nanos(self.updated_at),
        };
        store.put_record(
            batch,
            Cf::Namespaces,
            self.name.as_bytes(),
            KIND,
            VERSION,
            &v1,
        )
    }
}

fn not_found(name: &str) -> Error {
    Error::not_found(format!("namespace {name:?}: not found"))
}

fn labels_error(e: Error) -> Error {
    e.context("namespace.Labels")
}

/// The namespace records: [`MetadataStore::namespaces`].
#[derive(Clone, Copy)]
pub struct Namespaces<'a> {
    store: &'a MetadataStore,
}

impl MetadataStore {
    pub fn namespaces(&self) -> Namespaces<'_> {
        Namespaces { store: self }
    }
}

impl Namespaces<'_> {
    /// Creates a namespace; labels with an empty value are dropped.
    pub fn create(&self, name: &str, labels: BTreeMap<String, String>) -> Result<Namespace> {
        identifiers::validate(name)?;
        let labels = labels::stored(labels).map_err(labels_error)?;

        let _guard = self.store.lock_namespace(name);
        if self.store.contains(Cf::Namespaces, name.as_bytes())? {
            return Err(Error::already_exists(format!(
                "namespace {name:?}: already exists"
            )));
        }
        let namespace = Namespace::new(name, labels);
        let mut batch = WriteBatch::default();
        namespace.put_in(self.store, &mut batch)?;
        self.store.write(batch)?;
        Ok(namespace)
    }

    pub fn get(&self, name: &str) -> Result<Namespace> {
        self.find(name)?.ok_or_else(|| not_found(name))
    }

    fn find(&self, name: &str) -> Result<Option<Namespace>> {
        self.store
            .get(Cf::Namespaces, name.as_bytes())?
            .map(|value| Namespace::decode(name, &value))
            .transpose()
    }

    /// Every namespace, ordered by name.
    pub fn list(&self) -> Result<Vec<Namespace>> {
        self.store
            .scan_prefix(Cf::Namespaces, b"")
            .map(|item| {
                let (key, value) = item?;
                let name = std::str::from_utf8(&key).map_err(|_| {
                    Error::internal(format!("metadata: namespace key {key:?} is not utf-8"))
                })?;
                Namespace::decode(name, &value)
            })
            .collect()
    }

    /// Updates labels with containerd's field-mask rules: no paths or the
    /// path `labels` replace every label; `labels.<key>` sets that key from
    /// `labels` (or deletes it when absent or empty there); any other path
    /// is an invalid argument. Nothing is written unless every path is valid.
    /// A namespace that does not exist is created, as containerd's Update
    /// does (`ctr namespaces label NEW k=v` relies on it).
    pub fn update(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        paths: &[String],
    ) -> Result<Namespace> {
        identifiers::validate(name)?;
        let _guard = self.store.lock_namespace(name);
        let mut namespace = match self.find(name)? {
            Some(namespace) => namespace,
            None => Namespace::new(name, BTreeMap::new()),
        };
        namespace.labels = updated_labels(name, namespace.labels, labels, paths)?;
        namespace.updated_at = SystemTime::now();
        let mut batch = WriteBatch::default();
        namespace.put_in(self.store, &mut batch)?;
        self.store.write(batch)?;
        Ok(namespace)
    }

    /// Deletes an empty namespace with its leases and ingests.
    pub fn delete(&self, name: &str) -> Result<()> {
        let _guard = self.store.lock_namespace(name);
        let remaining = self.remaining_kinds(name)?;
        if !remaining.is_empty() {
            return Err(Error::failed_precondition(format!(
                "namespace {name:?} must be empty, but it still has {}",
                remaining.join(", ")
            )));
        }
        if !self.store.contains(Cf::Namespaces, name.as_bytes())? {
            return Err(not_found(name));
        }
        let prefix = keys::namespace_prefix(name);
        let mut batch = WriteBatch::default();
        self.store
            .delete_in(&mut batch, Cf::Namespaces, name.as_bytes());
        self.store
            .delete_prefix_in(&mut batch, Cf::Leases, &prefix)?;
        self.store
            .delete_prefix_in(&mut batch, Cf::LeaseResources, &prefix)?;
        self.store
            .delete_prefix_in(&mut batch, Cf::Ingests, &prefix)?;
        self.store.note_deletion();
        self.store.write(batch)
    }

    /// What keeps a namespace from being deleted, in containerd's words and
    /// order: `images`, `blobs`, `containers`, then `snapshots on "<name>"
    /// snapshotter` for each snapshotter holding some.
    pub fn remaining_kinds(&self, name: &str) -> Result<Vec<String>> {
        let prefix = keys::namespace_prefix(name);
        let mut kinds = Vec::new();
        for (cf, kind) in [
            (Cf::Images, "images"),
            (Cf::Content, "blobs"),
            (Cf::Containers, "containers"),
        ] {
            if !self.store.is_prefix_empty(cf, &prefix)? {
                kinds.push(kind.to_string());
            }
        }
        for snapshotter in self.store.distinct_children(Cf::Snapshots, &prefix)? {
            kinds.push(format!("snapshots on {snapshotter:?} snapshotter"));
        }
        Ok(kinds)
    }

    /// Creates the namespace on first use (no labels); a no-op, one point
    /// read, when it exists.
    pub fn ensure(&self, name: &str) -> Result<()> {
        if self.store.contains(Cf::Namespaces, name.as_bytes())? {
            return Ok(());
        }
        identifiers::validate(name)?;
        let guard = self.store.lock_namespace(name);
        let mut batch = WriteBatch::default();
        self.ensure_in(&guard, &mut batch)?;
        if batch.is_empty() {
            return Ok(()); // created by another caller meanwhile
        }
        self.store.write(batch)
    }

    /// For record writers: adds the namespace to `batch` if it does not
    /// exist yet, so that a record and its namespace land together. The
    /// guard keeps a concurrent delete out until the batch is written.
    pub fn ensure_in(&self, guard: &NamespaceGuard<'_>, batch: &mut WriteBatch) -> Result<()> {
        let name = guard.namespace();
        if self.store.contains(Cf::Namespaces, name.as_bytes())? {
            return Ok(());
        }
        identifiers::validate(name)?;
        Namespace::new(name, BTreeMap::new()).put_in(self.store, batch)
    }
}

/// The labels after an update (see [`Namespaces::update`]).
fn updated_labels(
    name: &str,
    current: BTreeMap<String, String>,
    requested: BTreeMap<String, String>,
    paths: &[String],
) -> Result<BTreeMap<String, String>> {
    labels::apply_update(
        current,
        requested,
        paths,
        &format!("namespace {name:?}"),
        labels_error,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_temp;
    use rcontainerd_pkg::errdefs::Kind;
    use std::path::Path;

    use rcontainerd_pkg::labels::from_pairs as labels;

    fn meta_dir(root: &Path) -> std::path::PathBuf {
        root.join("io.containerd.metadata.v1.bolt")
    }

    fn paths(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    fn put_raw(store: &MetadataStore, cf: Cf, key: Vec<u8>) {
        let mut batch = WriteBatch::default();
        batch.put_cf(store.cf(cf), key, b"x");
        store.write(batch).unwrap();
    }

    #[test]
    fn create_get_list_delete() {
        let (_dir, store) = open_temp();
        let created = store
            .namespaces()
            .create("k8s.io", labels(&[("a", "1"), ("empty", "")]))
            .unwrap();
        assert_eq!(created.labels, labels(&[("a", "1")]));
        assert_eq!(store.namespaces().get("k8s.io").unwrap(), created);
        store
            .namespaces()
            .create("default", BTreeMap::new())
            .unwrap();
        let names: Vec<String> = store
            .namespaces()
            .list()
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["default", "k8s.io"]);
        store.namespaces().delete("k8s.io").unwrap();
        assert_eq!(
            store.namespaces().get("k8s.io").unwrap_err().kind,
            Kind::NotFound
        );
        assert_eq!(store.namespaces().list().unwrap().len(), 1);
    }

    #[test]
    fn errors_carry_containerd_codes_and_words() {
        let (_dir, store) = open_temp();
        store.namespaces().create("x", BTreeMap::new()).unwrap();

        let err = store.namespaces().create("x", BTreeMap::new()).unwrap_err();
        assert_eq!(err.kind, Kind::AlreadyExists);
        assert_eq!(err.wire_message(), "namespace \"x\": already exists");

        for err in [
            store.namespaces().get("y").unwrap_err(),
            store.namespaces().delete("y").unwrap_err(),
        ] {
            assert_eq!(err.kind, Kind::NotFound);
            assert_eq!(err.wire_message(), "namespace \"y\": not found");
        }

        let err = store
            .namespaces()
            .create("Bad Name!", BTreeMap::new())
            .unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument);
        assert!(store.namespaces().ensure("Bad Name!").is_err());
        assert!(store
            .namespaces()
            .list()
            .unwrap()
            .iter()
            .all(|n| n.name == "x"));
    }

    #[test]
    fn update_of_a_missing_namespace_creates_it() {
        let (_dir, store) = open_temp();
        let mask = paths(&["labels.k"]);
        let created = store
            .namespaces()
            .update("new", labels(&[("k", "v")]), &mask)
            .unwrap();
        assert_eq!(created.labels, labels(&[("k", "v")]));
        assert_eq!(store.namespaces().get("new").unwrap(), created);
        let err = store
            .namespaces()
            .update("Bad Name!", BTreeMap::new(), &[])
            .unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument);
        let err = store
            .namespaces()
            .update("other", BTreeMap::new(), &paths(&["name"]))
            .unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument);
        assert!(store.namespaces().get("other").is_err(), "nothing written");
    }

    #[test]
    fn oversized_label_is_refused_on_create_and_update() {
        let (_dir, store) = open_temp();
        let big = labels(&[("containerd.io/big", &"v".repeat(4096))]);
        let err = store.namespaces().create("x", big.clone()).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument);
        assert_eq!(
            err.wire_message(),
            "namespace.Labels: label key and value greater than maximum size (4096 bytes), \
             key: containerd: invalid argument"
        );
        assert_eq!(
            store.namespaces().get("x").unwrap_err().kind,
            Kind::NotFound
        );

        store
            .namespaces()
            .create("x", labels(&[("keep", "1")]))
            .unwrap();
        for mask in [
            paths(&[]),
            paths(&["labels"]),
            paths(&["labels.containerd.io/big"]),
        ] {
            let err = store
                .namespaces()
                .update("x", big.clone(), &mask)
                .unwrap_err();
            assert_eq!(err.kind, Kind::InvalidArgument, "{mask:?}");
        }
        assert_eq!(
            store.namespaces().get("x").unwrap().labels,
            labels(&[("keep", "1")])
        );
        // Exactly at the limit is fine.
        let at_limit = labels(&[("k", &"v".repeat(4095))]);
        assert_eq!(
            store
                .namespaces()
                .update("x", at_limit.clone(), &[])
                .unwrap()
                .labels,
            at_limit
        );
    }

    #[test]
    fn update_masks_follow_containerd() {
        let (_dir, store) = open_temp();
        let created = store
            .namespaces()
            .create("x", labels(&[("a", "1"), ("b", "2")]))
            .unwrap();

        // No mask: the request's labels replace all.
        let updated = store
            .namespaces()
            .update("x", labels(&[("c", "3"), ("d", "")]), &[])
            .unwrap();
        assert_eq!(updated.labels, labels(&[("c", "3")]));
        assert_eq!(updated.created_at, created.created_at);
        assert!(updated.updated_at >= created.updated_at);

        // `labels` replaces all too.
        let updated = store
            .namespaces()
            .update("x", labels(&[("e", "5")]), &paths(&["labels"]))
            .unwrap();
        assert_eq!(updated.labels, labels(&[("e", "5")]));

        // `labels.<key>` sets one key and leaves the rest; other request labels are ignored.
        let updated = store
            .namespaces()
            .update(
                "x",
                labels(&[("f", "6"), ("ignored", "1")]),
                &paths(&["labels.f"]),
            )
            .unwrap();
        assert_eq!(updated.labels, labels(&[("e", "5"), ("f", "6")]));

        // A key absent or empty in the request is deleted.
        let updated = store
            .namespaces()
            .update("x", labels(&[("f", "")]), &paths(&["labels.e", "labels.f"]))
            .unwrap();
        assert!(updated.labels.is_empty());
        assert_eq!(store.namespaces().get("x").unwrap(), updated);

        // Any other path is refused and nothing is written.
        store
            .namespaces()
            .update("x", labels(&[("g", "7")]), &[])
            .unwrap();
        for bad in ["name", "labels.", "labelsx"] {
            let err = store
                .namespaces()
                .update("x", labels(&[("h", "8")]), &paths(&["labels.h", bad]))
                .unwrap_err();
            assert_eq!(err.kind, Kind::InvalidArgument);
            assert_eq!(
                err.message,
                format!("cannot update {bad:?} field on namespace \"x\"")
            );
        }
        assert_eq!(
            store.namespaces().get("x").unwrap().labels,
            labels(&[("g", "7")])
        );
    }

    #[test]
    fn delete_refuses_a_namespace_that_still_holds_objects() {
        let (_dir, store) = open_temp();
        store.namespaces().create("x", BTreeMap::new()).unwrap();
        // A neighbour whose name extends "x" must not count.
        put_raw(&store, Cf::Images, keys::object_key("x1", "img"));

        put_raw(
            &store,
            Cf::Snapshots,
            keys::snapshot_key("x", "overlayfs", "k"),
        );
        put_raw(
            &store,
            Cf::Snapshots,
            keys::snapshot_key("x", "native", "k"),
        );
        put_raw(&store, Cf::Containers, keys::object_key("x", "c"));
        put_raw(&store, Cf::Content, keys::object_key("x", "sha256:00"));
        put_raw(
            &store,
            Cf::Images,
            keys::object_key("x", "docker.io/library/a:b"),
        );

        let err = store.namespaces().delete("x").unwrap_err();
        assert_eq!(err.kind, Kind::FailedPrecondition);
        assert_eq!(
            err.wire_message(),
            "namespace \"x\" must be empty, but it still has images, blobs, containers, \
             snapshots on \"native\" snapshotter, snapshots on \"overlayfs\" snapshotter: \
             failed precondition"
        );
        assert!(store.namespaces().get("x").is_ok());

        let mut batch = WriteBatch::default();
        for cf in [Cf::Images, Cf::Content, Cf::Containers, Cf::Snapshots] {
            store
                .delete_prefix_in(&mut batch, cf, &keys::namespace_prefix("x"))
                .unwrap();
        }
        store.write(batch).unwrap();
        put_raw(
            &store,
            Cf::Snapshots,
            keys::snapshot_key("x", "overlayfs", "k"),
        );
        assert_eq!(
            store.namespaces().delete("x").unwrap_err().message,
            "namespace \"x\" must be empty, but it still has snapshots on \"overlayfs\" snapshotter"
        );
    }

    #[test]
    fn delete_takes_leases_and_ingests_along() {
        let (_dir, store) = open_temp();
        store.namespaces().create("x", BTreeMap::new()).unwrap();
        put_raw(&store, Cf::Leases, keys::object_key("x", "lease-1"));
        put_raw(&store, Cf::Ingests, keys::object_key("x", "ref-1"));
        put_raw(&store, Cf::Leases, keys::object_key("x1", "lease-1"));
        store.namespaces().delete("x").unwrap();
        let prefix = keys::namespace_prefix("x");
        assert!(store.is_prefix_empty(Cf::Leases, &prefix).unwrap());
        assert!(store.is_prefix_empty(Cf::Ingests, &prefix).unwrap());
        assert!(!store
            .is_prefix_empty(Cf::Leases, &keys::namespace_prefix("x1"))
            .unwrap());
    }

    #[test]
    fn ensure_creates_once_and_keeps_labels() {
        let (_dir, store) = open_temp();
        store.namespaces().ensure("default").unwrap();
        let first = store.namespaces().get("default").unwrap();
        assert!(first.labels.is_empty());
        store
            .namespaces()
            .update("default", labels(&[("a", "1")]), &[])
            .unwrap();
        store.namespaces().ensure("default").unwrap();
        let again = store.namespaces().get("default").unwrap();
        assert_eq!(again.labels, labels(&[("a", "1")]));
        assert_eq!(again.created_at, first.created_at);
    }

    #[test]
    fn ensure_in_writes_namespace_with_the_record() {
        let (_dir, store) = open_temp();
        let guard = store.lock_namespace("fresh");
        let mut batch = WriteBatch::default();
        store.namespaces().ensure_in(&guard, &mut batch).unwrap();
        batch.put_cf(store.cf(Cf::Images), keys::object_key("fresh", "img"), b"x");
        assert_eq!(
            store.namespaces().get("fresh").unwrap_err().kind,
            Kind::NotFound
        );
        store.write(batch).unwrap();
        drop(guard);
        assert!(store.namespaces().get("fresh").is_ok());
        let mut batch = WriteBatch::default();
        store
            .namespaces()
            .ensure_in(&store.lock_namespace("fresh"), &mut batch)
            .unwrap();
        assert!(batch.is_empty());
    }

    #[test]
    fn concurrent_ensure_and_create_agree() {
        let (_dir, store) = open_temp();
        let store = std::sync::Arc::new(store);
        let outcomes: Vec<bool> = (0..8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    if i % 2 == 0 {
                        store.namespaces().ensure("race").unwrap();
                        false
                    } else {
                        store.namespaces().create("race", BTreeMap::new()).is_ok()
                    }
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        // At most one create can win; an ensure may have got there first.
        assert!(outcomes.iter().filter(|&&won| won).count() <= 1);
        assert_eq!(store.namespaces().list().unwrap().len(), 1);
    }

    #[test]
    fn data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let created = {
            let store = MetadataStore::open(&meta_dir(dir.path())).unwrap();
            store
                .namespaces()
                .create("kept", labels(&[("a", "1")]))
                .unwrap();
            store.namespaces().create("gone", BTreeMap::new()).unwrap();
            store.namespaces().delete("gone").unwrap();
            store.namespaces().get("kept").unwrap()
        };
        let store = MetadataStore::open(&meta_dir(dir.path())).unwrap();
        assert_eq!(store.namespaces().list().unwrap(), [created]);
    }

    #[test]
    fn unknown_record_version_is_an_error_not_garbage() {
        let (_dir, store) = open_temp();
        let mut batch = WriteBatch::default();
        batch.put_cf(store.cf(Cf::Namespaces), b"future", [9u8, 1, 2, 3]);
        store.write(batch).unwrap();
        let err = store.namespaces().get("future").unwrap_err();
        assert_eq!(err.kind, Kind::Internal);
        assert!(err.message.contains("unknown version 9"), "{err}");
    }

    /// Env var naming the metadata dir for [`crash_child`].
    const CRASH_DIR_ENV: &str = "RCONTAINERD_TEST_METADATA_CRASH_DIR";

    /// Not a test on its own: [`acknowledged_create_survives_sigkill`] runs
    /// it in a child process, which kills itself with SIGKILL the moment
    /// `create` returns.
    #[test]
    #[ignore = "helper process for acknowledged_create_survives_sigkill"]
    fn crash_child() {
        let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
            return;
        };
        let store = MetadataStore::open(Path::new(&dir)).unwrap();
        store
            .namespaces()
            .create("durable", labels(&[("a", "1")]))
            .unwrap();
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL).unwrap();
        unreachable!("SIGKILL returned");
    }

    #[test]
    fn acknowledged_create_survives_sigkill() {
        use nix::sys::signal::Signal;
        use std::os::unix::process::ExitStatusExt;

        let dir = tempfile::tempdir().unwrap();
        let meta = meta_dir(dir.path());
        // The test's own path, without the crate name the harness leaves out.
        let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &format!("{module}::crash_child")])
            .args(["--ignored", "--test-threads=1", "--nocapture"])
            .env(CRASH_DIR_ENV, &meta)
            .output()
            .unwrap();
        assert_eq!(
            output.status.signal(),
            Some(Signal::SIGKILL as i32),
            "child did not die by SIGKILL: {:?}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let store = MetadataStore::open(&meta).unwrap();
        assert_eq!(
            store.namespaces().get("durable").unwrap().labels,
            labels(&[("a", "1")])
        );
    }
}
