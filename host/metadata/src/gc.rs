//! Garbage collection of records: mark everything reachable from the roots,
//! then delete, in one synced batch, every snapshot and blob record that was
//! not reached and every expired lease. What the records named on disk (the
//! drivers' snapshots and blobs) is removed afterwards by the core, which
//! finds it unreferenced; a crash in between leaves only unreferenced files,
//! which the next collection (the first one runs at start-up) removes.
//!
//! Roots, per namespace, as containerd's:
//! - leases whose `containerd.io/gc.expire` is absent or in the future: the
//!   blobs and snapshots they hold (with `containerd.io/gc.flat`, without
//!   following labels);
//! - images: their target blob and their reference labels;
//! - containers: their snapshot and their reference labels;
//! - blobs and snapshots labelled `containerd.io/gc.root`.
//!
//! References: a blob's or snapshot's labels `containerd.io/gc.ref.content`
//! (`.<x>` or `/<x>` suffixes allowed) name a blob of the namespace;
//! `containerd.io/gc.ref.snapshot.<snapshotter>[/<x>]` a snapshot of that
//! snapshotter; a snapshot references its parent.
//!
//! Unlike containerd 1.6, removing a child leaves its parent removable: a
//! parent's children are found by looking, never stored in the parent.
//!
//! Ingests are not collected: they go when committed or aborted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::SystemTime;

use rocksdb::WriteBatch;

use super::keys;
use super::store::{Cf, MetadataStore};
use rcontainerd_pkg::errdefs::Result;

/// Marks a blob or snapshot as a root.
pub const ROOT_LABEL: &str = "containerd.io/gc.root";
/// Prefix of labels that reference a blob.
pub const CONTENT_REF_LABEL: &str = "containerd.io/gc.ref.content";
/// Prefix of labels that reference a snapshot: `<prefix><snapshotter>[/<x>]`.
pub const SNAPSHOT_REF_PREFIX: &str = "containerd.io/gc.ref.snapshot.";
/// A lease's expiry time (RFC 3339); past it, the lease is collected.
pub const EXPIRE_LABEL: &str = "containerd.io/gc.expire";
/// A lease whose resources keep only themselves (and a snapshot's parents).
pub const FLAT_LABEL: &str = "containerd.io/gc.flat";

/// What one collection removed from the records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collection {
    /// Snapshot records removed, by snapshotter.
    pub snapshots: BTreeMap<String, usize>,
    /// Digests whose record some namespace lost.
    pub blobs: BTreeSet<String>,
    /// Blob records removed (one digest may go from several namespaces).
    pub blob_records: usize,
    /// Expired leases removed.
    pub leases: usize,
}

impl Collection {
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty() && self.blobs.is_empty() && self.leases == 0
    }
}

/// A node of the reference graph, in one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Node {
    Blob(String),
    /// `(snapshotter, name)`.
    Snapshot(String, String),
}

/// One namespace's blobs and snapshots with what marking needs of them.
#[derive(Default)]
struct Namespace {
    blobs: HashMap<String, BTreeMap<String, String>>,
    /// `(snapshotter, name)` → (parent, labels).
    snapshots: HashMap<(String, String), (String, BTreeMap<String, String>)>,
}

/// The nodes `labels` reference.
fn label_refs(labels: &BTreeMap<String, String>, out: &mut Vec<Node>) {
    for (key, value) in labels {
        if let Some(rest) = key.strip_prefix(CONTENT_REF_LABEL) {
            if rest.is_empty() || rest.starts_with('.') || rest.starts_with('/') {
                out.push(Node::Blob(value.clone()));
            }
        } else if let Some(rest) = key.strip_prefix(SNAPSHOT_REF_PREFIX) {
            let snapshotter = rest.split('/').next().unwrap_or_default();
            out.push(Node::Snapshot(snapshotter.to_string(), value.clone()));
        }
    }
}

/// Whether a lease with these labels is past its expiry. An expiry that
/// does not parse keeps the lease, as containerd does.
fn expired(labels: &BTreeMap<String, String>, now: SystemTime) -> bool {
    labels
        .get(EXPIRE_LABEL)
        .and_then(|text| rcontainerd_pkg::time::parse_rfc3339(text))
        .is_some_and(|at| at < now)
}

impl MetadataStore {
    /// Marks from the roots and removes unreachable snapshot and blob
    /// records and expired leases, with every writer held off for the
    /// duration (readers go on). `now` decides which leases expired.
    pub fn collect_garbage(&self, now: SystemTime) -> Result<Collection> {
        let _exclusive = self.exclude_writers();
        let mut batch = WriteBatch::default();
        let mut collection = Collection::default();
        for namespace in self.namespaces().list()? {
            self.collect_namespace(&namespace.name, now, &mut batch, &mut collection)?;
        }
        if !batch.is_empty() {
            self.write_uncounted(batch)?;
        }
        Ok(collection)
    }

    fn collect_namespace(
        &self,
        ns: &str,
        now: SystemTime,
        batch: &mut WriteBatch,
        collection: &mut Collection,
    ) -> Result<()> {
        let mut records = Namespace::default();
        for blob in self.blobs().list(ns)? {
            records.blobs.insert(blob.digest, blob.labels);
        }
        let prefix = keys::namespace_prefix(ns);
        let snapshotters = self.distinct_children(Cf::Snapshots, &prefix)?;
        for snapshotter in &snapshotters {
            for record in self.snapshots(snapshotter).list(ns)? {
                records.snapshots.insert(
                    (snapshotter.clone(), record.name),
                    (record.parent, record.labels),
                );
            }
        }

        // Roots: (node, flat).
        let mut roots: Vec<(Node, bool)> = Vec::new();
        for lease in self.leases().list(ns)? {
            if expired(&lease.labels, now) {
                self.delete_in(batch, Cf::Leases, &keys::object_key(ns, &lease.id));
                let mut resources = keys::object_key(ns, &lease.id);
                resources.push(keys::SEPARATOR);
                self.delete_prefix_in(batch, Cf::LeaseResources, &resources)?;
                collection.leases += 1;
                continue;
            }
            let flat = lease.labels.contains_key(FLAT_LABEL);
            for resource in self.leases().resources(ns, &lease.id)? {
                if resource.kind == super::leases::CONTENT {
                    roots.push((Node::Blob(resource.id), flat));
                } else if let Some(sn) = resource.kind.strip_prefix(super::leases::SNAPSHOTS_PREFIX)
                {
                    roots.push((Node::Snapshot(sn.to_string(), resource.id), flat));
                }
            }
        }
        let mut refs = Vec::new();
        for image in self.images().list(ns)? {
            refs.push(Node::Blob(image.target.digest));
            label_refs(&image.labels, &mut refs);
        }
        for container in self.containers().list(ns)? {
            if !container.snapshotter.is_empty() {
                refs.push(Node::Snapshot(
                    container.snapshotter,
                    container.snapshot_key,
                ));
            }
            label_refs(&container.labels, &mut refs);
        }
        for (digest, labels) in &records.blobs {
            if labels.contains_key(ROOT_LABEL) {
                refs.push(Node::Blob(digest.clone()));
            }
        }
        for ((snapshotter, name), (_, labels)) in &records.snapshots {
            if labels.contains_key(ROOT_LABEL) {
                refs.push(Node::Snapshot(snapshotter.clone(), name.clone()));
            }
        }
        roots.extend(refs.into_iter().map(|node| (node, false)));

        // Mark: a node seen flat may be seen again not flat (its labels then count).
        let mut marked: HashSet<Node> = HashSet::new();
        let mut visited: HashSet<(Node, bool)> = HashSet::new();
        let mut pending = roots;
        while let Some((node, flat)) = pending.pop() {
            if !visited.insert((node.clone(), flat)) {
                continue;
            }
            marked.insert(node.clone());
            let mut next = Vec::new();
            match &node {
                Node::Blob(digest) => {
                    if let (false, Some(labels)) = (flat, records.blobs.get(digest)) {
                        label_refs(labels, &mut next);
                    }
                }
                Node::Snapshot(snapshotter, name) => {
                    let key = (snapshotter.clone(), name.clone());
                    if let Some((parent, labels)) = records.snapshots.get(&key) {
                        if !parent.is_empty() {
                            pending
                                .push((Node::Snapshot(snapshotter.clone(), parent.clone()), flat));
                        }
                        if !flat {
                            label_refs(labels, &mut next);
                        }
                    }
                }
            }
            pending.extend(next.into_iter().map(|node| (node, false)));
        }

        // Sweep.
        for digest in records.blobs.keys() {
            if !marked.contains(&Node::Blob(digest.clone())) {
                self.delete_in(batch, Cf::Content, &keys::object_key(ns, digest));
                collection.blobs.insert(digest.clone());
                collection.blob_records += 1;
            }
        }
        for (snapshotter, name) in records.snapshots.keys() {
            if !marked.contains(&Node::Snapshot(snapshotter.clone(), name.clone())) {
                self.delete_in(
                    batch,
                    Cf::Snapshots,
                    &keys::snapshot_key(ns, snapshotter, name),
                );
                *collection.snapshots.entry(snapshotter.clone()).or_default() += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::{Descriptor, Image};
    use crate::leases::Resource;
    use crate::snapshots::{SnapshotKind, SnapshotRecord};
    use crate::store::open_temp;
    use crate::{BlobRecord, Container, Runtime};
    use rcontainerd_pkg::labels::from_pairs as labels;
    use std::time::Duration;

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn blob(store: &MetadataStore, ns: &str, d: &str, pairs: &[(&str, &str)]) {
        let guard = store.lock_namespace(ns);
        store
            .blobs()
            .commit(&guard, &BlobRecord::new(d, 1, labels(pairs)), None)
            .unwrap();
    }

    fn snapshot(store: &MetadataStore, ns: &str, name: &str, parent: &str, pairs: &[(&str, &str)]) {
        let now = SystemTime::now();
        let record = SnapshotRecord {
            name: name.into(),
            kind: SnapshotKind::Committed,
            parent: parent.into(),
            labels: labels(pairs),
            created_at: now,
            updated_at: now,
            driver_key: format!("{ns}/{name}"),
        };
        store.namespaces().ensure(ns).unwrap();
        store.snapshots("overlayfs").put(ns, &record).unwrap();
    }

    fn snapshots(store: &MetadataStore, ns: &str) -> Vec<String> {
        let mut names: Vec<_> = store
            .snapshots("overlayfs")
            .list(ns)
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        names.sort();
        names
    }

    fn blobs(store: &MetadataStore, ns: &str) -> Vec<String> {
        store
            .blobs()
            .list(ns)
            .unwrap()
            .into_iter()
            .map(|b| b.digest)
            .collect()
    }

    #[test]
    fn exactly_the_unreachable_records_go() {
        let (_dir, store) = open_temp();
        let ns = "ns";
        // An image: index → manifest (label ref) → config and layer; the
        // config references the unpacked snapshot chain.
        let (index, manifest, config, layer, orphan) =
            (digest(1), digest(2), digest(3), digest(4), digest(5));
        blob(
            &store,
            ns,
            &index,
            &[("containerd.io/gc.ref.content.m.0", &manifest)],
        );
        blob(
            &store,
            ns,
            &manifest,
            &[
                ("containerd.io/gc.ref.content.config", &config),
                ("containerd.io/gc.ref.content.l.0", &layer),
            ],
        );
        blob(
            &store,
            ns,
            &config,
            &[("containerd.io/gc.ref.snapshot.overlayfs", "chain-2")],
        );
        blob(&store, ns, &layer, &[]);
        blob(&store, ns, &orphan, &[]);
        snapshot(&store, ns, "chain-1", "", &[]);
        snapshot(&store, ns, "chain-2", "chain-1", &[]);
        snapshot(&store, ns, "unused", "chain-1", &[]);
        snapshot(&store, ns, "rootfs", "", &[]);
        snapshot(&store, ns, "kept", "", &[(ROOT_LABEL, "x")]);
        store
            .images()
            .create(
                ns,
                Image::new(
                    "img",
                    BTreeMap::new(),
                    Descriptor {
                        media_type: "application/vnd.oci.image.index.v1+json".into(),
                        digest: index.clone(),
                        size: 1,
                        annotations: BTreeMap::new(),
                    },
                ),
            )
            .unwrap();
        let mut container = Container::new("c");
        container.runtime = Runtime {
            name: "io.containerd.runc.v2".into(),
            options: None,
        };
        container.spec = Some(Default::default());
        container.snapshotter = "overlayfs".into();
        container.snapshot_key = "rootfs".into();
        store.containers().create(ns, container).unwrap();

        let collection = store.collect_garbage(SystemTime::now()).unwrap();
        assert_eq!(collection.blobs, BTreeSet::from([orphan.clone()]));
        assert_eq!(
            collection.snapshots,
            BTreeMap::from([("overlayfs".into(), 1)])
        );
        assert_eq!(
            snapshots(&store, ns),
            ["chain-1", "chain-2", "kept", "rootfs"]
        );
        let mut left = blobs(&store, ns);
        left.sort();
        let mut expected = vec![index.clone(), manifest, config, layer];
        expected.sort();
        assert_eq!(left, expected);

        // The image goes: its blobs and chain follow; the parent of a
        // removed child is not held by it.
        store.images().delete(ns, "img", None).unwrap();
        store.collect_garbage(SystemTime::now()).unwrap();
        assert_eq!(snapshots(&store, ns), ["kept", "rootfs"]);
        assert!(blobs(&store, ns).is_empty());
    }

    #[test]
    fn leases_hold_until_they_expire_and_flat_leases_do_not_follow_labels() {
        let (_dir, store) = open_temp();
        let ns = "ns";
        let (a, b) = (digest(1), digest(2));
        blob(&store, ns, &a, &[("containerd.io/gc.ref.content", &b)]);
        blob(&store, ns, &b, &[]);
        snapshot(&store, ns, "base", "", &[]);
        snapshot(&store, ns, "top", "base", &[]);
        let later = (SystemTime::now() + Duration::from_secs(3600)).into_rfc3339();
        store
            .leases()
            .create(
                ns,
                "flat",
                labels(&[(FLAT_LABEL, "1"), (EXPIRE_LABEL, &later)]),
            )
            .unwrap();
        store
            .leases()
            .add_resource(ns, "flat", &Resource::content(&a))
            .unwrap();
        store
            .leases()
            .add_resource(ns, "flat", &Resource::snapshot("overlayfs", "top"))
            .unwrap();
        store.collect_garbage(SystemTime::now()).unwrap();
        // Flat: the blob's label is not followed, the snapshot's parent is.
        assert_eq!(blobs(&store, ns), std::slice::from_ref(&a));
        assert_eq!(snapshots(&store, ns), ["base", "top"]);

        // Two hours on, the lease has expired: it goes, and so does what it held.
        let collection = store
            .collect_garbage(SystemTime::now() + Duration::from_secs(7200))
            .unwrap();
        assert_eq!(collection.leases, 1);
        assert!(store.leases().list(ns).unwrap().is_empty());
        assert!(blobs(&store, ns).is_empty());
        assert!(snapshots(&store, ns).is_empty());
    }

    #[test]
    fn namespaces_are_collected_apart() {
        let (_dir, store) = open_temp();
        let d = digest(7);
        blob(&store, "a", &d, &[(ROOT_LABEL, "1")]);
        blob(&store, "b", &d, &[]);
        let collection = store.collect_garbage(SystemTime::now()).unwrap();
        assert_eq!(collection.blob_records, 1);
        assert_eq!(blobs(&store, "a"), std::slice::from_ref(&d));
        assert!(blobs(&store, "b").is_empty());
    }

    trait Rfc3339 {
        fn into_rfc3339(self) -> String;
    }

    impl Rfc3339 for SystemTime {
        fn into_rfc3339(self) -> String {
            rcontainerd_pkg::time::format_rfc3339(self)
        }
    }
}
