//! Leases: named holds on content, ingests and snapshots that keep them from
//! garbage collection while a client works (a pull, an unpack, a mount).
//!
//! - column family `leases`, key `namespace \0 id`, value [`RecordV1`]
//!   (version byte 1): labels and the creation time;
//! - column family `lease_resources`, key `namespace \0 id \0 type \0 ref`,
//!   empty value: one key per resource the lease holds. `type` is `content`
//!   (ref = a digest), `ingests` (ref = the client's ingest ref) or
//!   `snapshots/<snapshotter>` (ref = the snapshot's name), so a prefix scan
//!   lists a lease's resources in containerd's order: content, ingests, then
//!   snapshots by snapshotter.
//!
//! Lease ids are not identifiers (containerd's own clients use a mount path
//! as a lease id); only NUL, the key separator, is refused.

use std::collections::BTreeMap;
use std::time::SystemTime;

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::keys;
use super::record;
use super::store::{Cf, MetadataStore, NamespaceGuard};
use rcontainerd_pkg::errdefs::{Error, Result};
use rcontainerd_pkg::{digest, labels};

const KIND: &str = "lease";
const VERSION: u8 = 1;

/// Resource type of a blob: ref = its digest.
pub const CONTENT: &str = "content";
/// Resource type of an ingest: ref = the client's ingest ref.
pub const INGESTS: &str = "ingests";
/// Resource type prefix of a snapshot: `snapshots/<snapshotter>`, ref = its name.
pub const SNAPSHOTS_PREFIX: &str = "snapshots/";

/// A lease as the API sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    pub created_at: SystemTime,
}

/// One thing a lease holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Resource {
    /// `content`, `ingests` or `snapshots/<snapshotter>`.
    pub kind: String,
    /// The digest, ingest ref or snapshot name.
    pub id: String,
}

impl Resource {
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Resource {
        Resource {
            kind: kind.into(),
            id: id.into(),
        }
    }

    /// The blob resource `digest`.
    pub fn content(digest: &str) -> Resource {
        Resource::new(CONTENT, digest)
    }

    /// The ingest resource `reference` (the client's ingest ref).
    pub fn ingest(reference: &str) -> Resource {
        Resource::new(INGESTS, reference)
    }

    /// The snapshot resource `name` of `snapshotter`.
    pub fn snapshot(snapshotter: &str, name: &str) -> Resource {
        Resource::new(format!("{SNAPSHOTS_PREFIX}{snapshotter}"), name)
    }

    /// containerd's checks of a resource named in a request: a known type,
    /// and for content a well-formed digest.
    fn validate(&self) -> Result<()> {
        if self.id.contains('\0') {
            return Err(Error::invalid_argument(format!(
                "invalid resource id {:?}: contains NUL",
                self.id
            )));
        }
        match self.kind.split_once('/') {
            None if self.kind == CONTENT => digest::validate(&self.id).map_err(|e| {
                Error::invalid_argument(format!("invalid content resource id {}: {e}", self.id))
            }),
            None if self.kind == INGESTS => Ok(()),
            Some((CONTENT | INGESTS, _)) => Err(Error::invalid_argument(format!(
                "invalid resource type {}",
                self.kind
            ))),
            Some(("snapshots", snapshotter)) => {
                if snapshotter.is_empty() || snapshotter.contains(['/', '\0']) {
                    Err(Error::invalid_argument(format!(
                        "invalid snapshot resource type {}",
                        self.kind
                    )))
                } else {
                    Ok(())
                }
            }
            None if self.kind == "snapshots" => Err(Error::invalid_argument(format!(
                "invalid snapshot resource type {}",
                self.kind
            ))),
            _ => Err(Error::not_implemented(format!(
                "resource type {} not supported yet",
                self.kind
            ))),
        }
    }
}

/// Stored value, version 1. Times are nanoseconds since the Unix epoch.
#[derive(Debug, Serialize, Deserialize)]
struct RecordV1 {
    labels: BTreeMap<String, String>,
    created_at: i64,
}

impl Lease {
    fn decode(id: &str, value: &[u8]) -> Result<Lease> {
        let v1: RecordV1 = record::decode(KIND, VERSION, value)?;
        Ok(Lease {
            id: id.to_string(),
            labels: v1.labels,
            created_at: record::from_unix_nanos(v1.created_at),
        })
    }
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("lease {id:?}"))
}

/// The answer when a call names (in the `containerd-lease` header) a lease
/// that does not exist, in containerd's words.
pub fn lease_does_not_exist() -> Error {
    Error::not_found("lease does not exist")
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid_argument("lease id must be provided"));
    }
    if id.contains('\0') {
        return Err(Error::invalid_argument(format!(
            "lease id {id:?} must not contain NUL"
        )));
    }
    Ok(())
}

/// `namespace \0 id \0`: the prefix of a lease's resources.
fn resources_prefix(namespace: &str, id: &str) -> Vec<u8> {
    let mut key = keys::object_key(namespace, id);
    key.push(keys::SEPARATOR);
    key
}

fn resource_key(namespace: &str, id: &str, resource: &Resource) -> Vec<u8> {
    let mut key = resources_prefix(namespace, id);
    key.extend_from_slice(resource.kind.as_bytes());
    key.push(keys::SEPARATOR);
    key.extend_from_slice(resource.id.as_bytes());
    key
}

/// The lease records: [`MetadataStore::leases`].
#[derive(Clone, Copy)]
pub struct Leases<'a> {
    store: &'a MetadataStore,
}

impl MetadataStore {
    pub fn leases(&self) -> Leases<'_> {
        Leases { store: self }
    }
}

impl Leases<'_> {
    /// Creates the lease `id` (the caller picks one when the client did
    /// not), creating the namespace on first use.
    pub fn create(
        &self,
        namespace: &str,
        id: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Lease> {
        check_id(id)?;
        let labels = labels::stored(labels).map_err(|e| e.context("lease.Labels"))?;
        let guard = self.store.lock_namespace(namespace);
        let key = keys::object_key(namespace, id);
        if self.store.contains(Cf::Leases, &key)? {
            return Err(Error::already_exists(format!("lease {id:?}")));
        }
        let lease = Lease {
            id: id.to_string(),
            labels,
            created_at: SystemTime::now(),
        };
        let v1 = RecordV1 {
            labels: lease.labels.clone(),
            created_at: record::to_unix_nanos(lease.created_at),
        };
        let mut batch = WriteBatch::default();
        self.store.namespaces().ensure_in(&guard, &mut batch)?;
        self.store
            .put_record(&mut batch, Cf::Leases, &key, KIND, VERSION, &v1)?;
        self.store.write(batch)?;
        Ok(lease)
    }

    pub fn get(&self, namespace: &str, id: &str) -> Result<Lease> {
        self.find(namespace, id)?.ok_or_else(|| not_found(id))
    }

    fn find(&self, namespace: &str, id: &str) -> Result<Option<Lease>> {
        if id.contains('\0') {
            return Ok(None);
        }
        self.store
            .get(Cf::Leases, &keys::object_key(namespace, id))?
            .map(|value| Lease::decode(id, &value))
            .transpose()
    }

    /// Whether the lease exists (one point read).
    pub fn exists(&self, namespace: &str, id: &str) -> Result<bool> {
        Ok(!id.contains('\0')
            && self
                .store
                .contains(Cf::Leases, &keys::object_key(namespace, id))?)
    }

    /// Every lease of `namespace`, ordered by id.
    pub fn list(&self, namespace: &str) -> Result<Vec<Lease>> {
        self.store.list_named(Cf::Leases, namespace, Lease::decode)
    }

    /// Deletes the lease and what it holds (the resources themselves stay,
    /// for garbage collection to judge).
    pub fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        let _guard = self.store.lock_namespace(namespace);
        if !self.exists(namespace, id)? {
            return Err(not_found(id));
        }
        let mut batch = WriteBatch::default();
        self.store
            .delete_in(&mut batch, Cf::Leases, &keys::object_key(namespace, id));
        self.store.delete_prefix_in(
            &mut batch,
            Cf::LeaseResources,
            &resources_prefix(namespace, id),
        )?;
        self.store.note_deletion();
        self.store.write(batch)
    }

    /// Adds `resource` to the lease `id` (a no-op when it holds it already).
    pub fn add_resource(&self, namespace: &str, id: &str, resource: &Resource) -> Result<()> {
        let _guard = self.store.share_namespace(namespace);
        if !self.exists(namespace, id)? {
            return Err(not_found(id));
        }
        resource.validate()?;
        let mut batch = WriteBatch::default();
        self.put_resource_in(&mut batch, namespace, id, resource);
        self.store.write(batch)
    }

    /// Removes `resource` from the lease `id` (a no-op when it does not hold it).
    pub fn delete_resource(&self, namespace: &str, id: &str, resource: &Resource) -> Result<()> {
        let _guard = self.store.share_namespace(namespace);
        if !self.exists(namespace, id)? {
            return Err(not_found(id));
        }
        resource.validate()?;
        let mut batch = WriteBatch::default();
        self.store.delete_in(
            &mut batch,
            Cf::LeaseResources,
            &resource_key(namespace, id, resource),
        );
        self.store.note_deletion();
        self.store.write(batch)
    }

    /// What the lease `id` holds, content first, then ingests, then
    /// snapshots by snapshotter.
    pub fn resources(&self, namespace: &str, id: &str) -> Result<Vec<Resource>> {
        if !self.exists(namespace, id)? {
            return Err(not_found(id));
        }
        let prefix = resources_prefix(namespace, id);
        self.store
            .scan_prefix(Cf::LeaseResources, &prefix)
            .map(|item| {
                let (key, _) = item?;
                let rest = keys::strip_prefix(&key, &prefix).unwrap_or_default();
                match keys::split_first(rest) {
                    (kind, Some(id)) => Ok(Resource::new(
                        String::from_utf8_lossy(kind),
                        String::from_utf8_lossy(id),
                    )),
                    _ => Err(Error::internal(format!(
                        "metadata: lease resource key {key:?}"
                    ))),
                }
            })
            .collect()
    }

    /// Fails with containerd's "lease does not exist" unless the lease `id`
    /// exists: what a call with a `containerd-lease` header checks first.
    pub fn check(&self, namespace: &str, id: &str) -> Result<()> {
        if self.exists(namespace, id)? {
            Ok(())
        } else {
            Err(lease_does_not_exist())
        }
    }

    /// Adds `resource` to the lease `id` for a call that named the lease in
    /// its `containerd-lease` header (one synced write), or fails with
    /// "lease does not exist".
    pub fn attach(&self, namespace: &str, id: &str, resource: &Resource) -> Result<()> {
        let guard = self.store.share_namespace(namespace);
        let mut batch = WriteBatch::default();
        self.attach_in(&guard, &mut batch, id, resource)?;
        self.store.write(batch)
    }

    /// Moves the lease `id` from `from` to `to` (a committed ingest or
    /// snapshot), in one write; nothing when the lease is gone.
    pub fn replace(&self, namespace: &str, id: &str, from: &Resource, to: &Resource) -> Result<()> {
        let _guard = self.store.share_namespace(namespace);
        if !self.exists(namespace, id)? {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        self.detach_in(&mut batch, namespace, id, from);
        self.put_resource_in(&mut batch, namespace, id, to);
        self.store.write(batch)
    }

    /// Drops `resource` from the lease `id` (a removed snapshot, a deleted
    /// blob, an aborted ingest); nothing when the lease is gone.
    pub fn detach(&self, namespace: &str, id: &str, resource: &Resource) -> Result<()> {
        let mut batch = WriteBatch::default();
        self.detach_in(&mut batch, namespace, id, resource);
        self.store.note_deletion();
        self.store.write(batch)
    }

    /// For writers of leased records (a `containerd-lease` header): adds
    /// `resource` to the lease `id` in `batch`, under the writer's guard of
    /// the namespace, or fails with containerd's "lease does not exist".
    pub fn attach_in(
        &self,
        guard: &NamespaceGuard<'_>,
        batch: &mut WriteBatch,
        id: &str,
        resource: &Resource,
    ) -> Result<()> {
        let namespace = guard.namespace();
        if !self.exists(namespace, id)? {
            return Err(lease_does_not_exist());
        }
        self.put_resource_in(batch, namespace, id, resource);
        Ok(())
    }

    /// For writers that remove or rename a leased record: drops `resource`
    /// from the lease `id` in `batch` (nothing when the lease is gone).
    pub fn detach_in(
        &self,
        batch: &mut WriteBatch,
        namespace: &str,
        id: &str,
        resource: &Resource,
    ) {
        if id.contains('\0') {
            return;
        }
        self.store.delete_in(
            batch,
            Cf::LeaseResources,
            &resource_key(namespace, id, resource),
        );
    }

    fn put_resource_in(
        &self,
        batch: &mut WriteBatch,
        namespace: &str,
        id: &str,
        resource: &Resource,
    ) {
        batch.put_cf(
            self.store.cf(Cf::LeaseResources),
            resource_key(namespace, id, resource),
            [],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_temp;
    use rcontainerd_pkg::errdefs::Kind;
    use rcontainerd_pkg::labels::from_pairs as labels;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn create_list_delete_and_ids_that_are_not_identifiers() {
        let (_dir, store) = open_temp();
        let leases = store.leases();
        let mount_path = "/tmp/mnt/some path";
        let lease = leases
            .create(
                "ns",
                mount_path,
                labels(&[("containerd.io/gc.expire", "2030-01-01T00:00:00Z")]),
            )
            .unwrap();
        assert_eq!(leases.get("ns", mount_path).unwrap(), lease);
        leases.create("ns", "a", BTreeMap::new()).unwrap();
        leases.create("ns1", "b", BTreeMap::new()).unwrap();
        let ids: Vec<_> = leases
            .list("ns")
            .unwrap()
            .into_iter()
            .map(|l| l.id)
            .collect();
        assert_eq!(ids, [mount_path, "a"]);
        assert_eq!(leases.list("ns1").unwrap().len(), 1);
        assert_eq!(
            leases
                .create("ns", "a", BTreeMap::new())
                .unwrap_err()
                .wire_message(),
            "lease \"a\": already exists"
        );
        leases.delete("ns", "a").unwrap();
        assert_eq!(
            leases.delete("ns", "a").unwrap_err().wire_message(),
            "lease \"a\": not found"
        );
        for bad in ["", "a\0b"] {
            assert_eq!(
                leases.create("ns", bad, BTreeMap::new()).unwrap_err().kind,
                Kind::InvalidArgument
            );
        }
    }

    #[test]
    fn resources_are_listed_in_containerds_order_and_go_with_the_lease() {
        let (_dir, store) = open_temp();
        let leases = store.leases();
        leases.create("ns", "l", BTreeMap::new()).unwrap();
        leases.create("ns", "l2", BTreeMap::new()).unwrap();
        let snapshot = Resource::snapshot("overlayfs", "sha256:abc");
        let content = Resource::new(CONTENT, DIGEST);
        let ingest = Resource::new(INGESTS, "ref-1");
        for r in [&snapshot, &ingest, &content, &content] {
            leases.add_resource("ns", "l", r).unwrap();
        }
        leases.add_resource("ns", "l2", &ingest).unwrap();
        assert_eq!(
            leases.resources("ns", "l").unwrap(),
            [content.clone(), ingest.clone(), snapshot.clone()]
        );
        leases.delete_resource("ns", "l", &ingest).unwrap();
        leases.delete_resource("ns", "l", &ingest).unwrap();
        assert_eq!(leases.resources("ns", "l").unwrap(), [content, snapshot]);
        leases.delete("ns", "l").unwrap();
        assert_eq!(leases.resources("ns", "l2").unwrap(), [ingest]);
        assert_eq!(
            leases.resources("ns", "l").unwrap_err().wire_message(),
            "lease \"l\": not found"
        );
        // Its resources went with it: a new lease of the same id holds nothing.
        leases.create("ns", "l", BTreeMap::new()).unwrap();
        assert!(leases.resources("ns", "l").unwrap().is_empty());
    }

    #[test]
    fn bad_resources_are_refused_in_containerds_words() {
        let (_dir, store) = open_temp();
        let leases = store.leases();
        leases.create("ns", "l", BTreeMap::new()).unwrap();
        let cases = [
            (Resource::new("content", "sha256:abc"), Kind::InvalidArgument, "invalid content resource id sha256:abc: invalid checksum digest length: invalid argument"),
            (Resource::new("content/x", DIGEST), Kind::InvalidArgument, "invalid resource type content/x: invalid argument"),
            (Resource::new("snapshots", "k"), Kind::InvalidArgument, "invalid snapshot resource type snapshots: invalid argument"),
            (Resource::new("snapshots/a/b", "k"), Kind::InvalidArgument, "invalid snapshot resource type snapshots/a/b: invalid argument"),
            (Resource::new("images", "k"), Kind::NotImplemented, "resource type images not supported yet: not implemented"),
        ];
        for (resource, kind, message) in cases {
            let err = leases.add_resource("ns", "l", &resource).unwrap_err();
            assert_eq!((err.kind, err.wire_message().as_str()), (kind, message));
        }
        assert!(leases.resources("ns", "l").unwrap().is_empty());
        assert_eq!(
            leases
                .add_resource("ns", "missing", &Resource::new(INGESTS, "r"))
                .unwrap_err()
                .wire_message(),
            "lease \"missing\": not found"
        );
    }

    #[test]
    fn attach_needs_an_existing_lease() {
        let (_dir, store) = open_temp();
        let leases = store.leases();
        let guard = store.share_namespace("ns");
        let mut batch = WriteBatch::default();
        let err = leases
            .attach_in(&guard, &mut batch, "nope", &Resource::new(INGESTS, "r"))
            .unwrap_err();
        assert_eq!(err.wire_message(), "lease does not exist: not found");
        drop(guard);
        leases.create("ns", "l", BTreeMap::new()).unwrap();
        let guard = store.share_namespace("ns");
        let mut batch = WriteBatch::default();
        leases
            .attach_in(&guard, &mut batch, "l", &Resource::new(INGESTS, "r"))
            .unwrap();
        store.write(batch).unwrap();
        drop(guard);
        assert_eq!(leases.resources("ns", "l").unwrap().len(), 1);
    }
}
