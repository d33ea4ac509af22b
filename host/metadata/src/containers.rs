//! Container records: column family `containers`, key `namespace \0 id`,
//! value [`RecordV1`] (version byte 1).
//!
//! A container is metadata only: which image and snapshot it uses, which
//! runtime runs it, and its OCI spec. The spec, runtime options and
//! extensions are protobuf `Any`s kept byte for byte as the client sent
//! them (containerd's ctr stores the spec as JSON under
//! `types.containerd.io/opencontainers/runtime-spec/1/Spec`).

use std::collections::BTreeMap;
use std::time::SystemTime;

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::keys;
use super::record;
use super::store::{Cf, MetadataStore};
use rcontainerd_pkg::errdefs::{Error, Result};
use rcontainerd_pkg::{identifiers, labels};

const KIND: &str = "container";
const VERSION: u8 = 1;

/// A protobuf `Any`, stored verbatim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnyValue {
    pub type_url: String,
    pub value: Vec<u8>,
}

/// The runtime that runs a container, with its options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runtime {
    pub name: String,
    pub options: Option<AnyValue>,
}

/// A container as the API sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    pub runtime: Runtime,
    pub spec: Option<AnyValue>,
    pub snapshotter: String,
    pub snapshot_key: String,
    pub extensions: BTreeMap<String, AnyValue>,
    /// The sandbox the container belongs to (newer clients set it; kept as sent).
    pub sandbox: String,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

/// Stored value, version 1. Times are nanoseconds since the Unix epoch.
#[derive(Debug, Serialize, Deserialize)]
struct RecordV1 {
    labels: BTreeMap<String, String>,
    image: String,
    runtime: Runtime,
    spec: Option<AnyValue>,
    snapshotter: String,
    snapshot_key: String,
    extensions: BTreeMap<String, AnyValue>,
    sandbox: String,
    created_at: i64,
    updated_at: i64,
}

impl Container {
    /// An empty container record named `id`, stamped now.
    pub fn new(id: &str) -> Container {
        let now = SystemTime::now();
        Container {
            id: id.to_string(),
            labels: BTreeMap::new(),
            image: String::new(),
            runtime: Runtime::default(),
            spec: None,
            snapshotter: String::new(),
            snapshot_key: String::new(),
            extensions: BTreeMap::new(),
            sandbox: String::new(),
            created_at: now,
            updated_at: now,
        }
    }

    fn decode(id: &str, value: &[u8]) -> Result<Container> {
        let v1: RecordV1 = record::decode(KIND, VERSION, value)?;
        Ok(Container {
            id: id.to_string(),
            labels: v1.labels,
            image: v1.image,
            runtime: v1.runtime,
            spec: v1.spec,
            snapshotter: v1.snapshotter,
            snapshot_key: v1.snapshot_key,
            extensions: v1.extensions,
            sandbox: v1.sandbox,
            created_at: record::from_unix_nanos(v1.created_at),
            updated_at: record::from_unix_nanos(v1.updated_at),
        })
    }

    fn put_in(&self, store: &MetadataStore, batch: &mut WriteBatch, namespace: &str) -> Result<()> {
        let v1 = RecordV1 {
            labels: self.labels.clone(),
            image: self.image.clone(),
            runtime: self.runtime.clone(),
            spec: self.spec.clone(),
            snapshotter: self.snapshotter.clone(),
            snapshot_key: self.snapshot_key.clone(),
            extensions: self.extensions.clone(),
            sandbox: self.sandbox.clone(),
            created_at: record::to_unix_nanos(self.created_at),
            updated_at: record::to_unix_nanos(self.updated_at),
        };
        let key = keys::object_key(namespace, &self.id);
        store.put_record(batch, Cf::Containers, &key, KIND, VERSION, &v1)
    }

    /// containerd's checks of a record about to be written.
    fn validate(&self) -> Result<()> {
        identifiers::validate(&self.id).map_err(|e| e.context("container.ID"))?;
        if self.extensions.keys().any(String::is_empty) {
            return Err(Error::invalid_argument(
                "container.Extension keys must not be zero-length",
            ));
        }
        labels::validate_all(&self.labels).map_err(|e| e.context("containers.Labels"))?;
        if self.runtime.name.is_empty() {
            return Err(Error::invalid_argument(
                "container.Runtime.Name must be set",
            ));
        }
        if self.spec.is_none() {
            return Err(Error::invalid_argument("container.Spec must be set"));
        }
        if !self.snapshot_key.is_empty() && self.snapshotter.is_empty() {
            return Err(Error::invalid_argument(
                "container.Snapshotter must be set if container.SnapshotKey is set",
            ));
        }
        Ok(())
    }
}

fn not_found(namespace: &str, id: &str) -> Error {
    Error::not_found(format!("container {id:?} in namespace {namespace:?}"))
}

/// The container records: [`MetadataStore::containers`].
#[derive(Clone, Copy)]
pub struct Containers<'a> {
    store: &'a MetadataStore,
}

impl MetadataStore {
    pub fn containers(&self) -> Containers<'_> {
        Containers { store: self }
    }
}

impl Containers<'_> {
    pub fn get(&self, namespace: &str, id: &str) -> Result<Container> {
        self.find(namespace, id)?
            .ok_or_else(|| not_found(namespace, id))
    }

    fn find(&self, namespace: &str, id: &str) -> Result<Option<Container>> {
        self.store
            .get(Cf::Containers, &keys::object_key(namespace, id))?
            .map(|value| Container::decode(id, &value))
            .transpose()
    }

    /// Every container of `namespace`, ordered by id.
    pub fn list(&self, namespace: &str) -> Result<Vec<Container>> {
        self.store
            .list_named(Cf::Containers, namespace, Container::decode)
    }

    /// Creates `container` (its times are set here), creating the namespace
    /// on first use. Labels with an empty value are dropped.
    pub fn create(&self, namespace: &str, mut container: Container) -> Result<Container> {
        container
            .validate()
            .map_err(|e| e.context("create container failed validation"))?;
        labels::drop_empty(&mut container.labels);
        let guard = self.store.lock_namespace(namespace);
        if self
            .store
            .contains(Cf::Containers, &keys::object_key(namespace, &container.id))?
        {
            return Err(Error::already_exists(format!(
                "container {:?}: already exists",
                container.id
            )));
        }
        let now = SystemTime::now();
        container.created_at = now;
        container.updated_at = now;
        let mut batch = WriteBatch::default();
        self.store.namespaces().ensure_in(&guard, &mut batch)?;
        container.put_in(self.store, &mut batch, namespace)?;
        self.store.write(batch)?;
        Ok(container)
    }

    /// Updates the container `requested.id` with containerd's rules. With no
    /// paths, `labels`, `spec`, `extensions`, `image` and `snapshotkey` are
    /// replaced and a different snapshotter or runtime is refused (they are
    /// immutable); otherwise each path (`labels`, `labels.<key>`, `spec`,
    /// `extensions`, `extensions.<key>`, `image`, `snapshotkey`) takes that
    /// part from `requested`, and any other path is an invalid argument.
    /// The result must pass the checks of a new record.
    pub fn update(
        &self,
        namespace: &str,
        requested: Container,
        paths: &[String],
    ) -> Result<Container> {
        if requested.id.is_empty() {
            return Err(Error::invalid_argument("must specify a container id"));
        }
        let _guard = self.store.lock_namespace(namespace);
        let current = self
            .find(namespace, &requested.id)?
            .ok_or_else(|| Error::not_found(format!("container {:?}", requested.id)))?;
        let full_replace = ["labels", "spec", "extensions", "image", "snapshotkey"];
        let paths: Vec<&str> = if paths.is_empty() {
            if requested.snapshotter != current.snapshotter {
                return Err(Error::invalid_argument(
                    "container.Snapshotter field is immutable",
                ));
            }
            if requested.runtime.name != current.runtime.name {
                return Err(Error::invalid_argument(
                    "container.Runtime.Name field is immutable",
                ));
            }
            full_replace.to_vec()
        } else {
            paths.iter().map(String::as_str).collect()
        };
        let mut updated = current.clone();
        for path in paths {
            if let Some(key) = path.strip_prefix("labels.") {
                labels::set_or_remove(&mut updated.labels, key, requested.labels.get(key));
                continue;
            }
            if let Some(key) = path.strip_prefix("extensions.") {
                match requested.extensions.get(key) {
                    Some(value) => {
                        updated.extensions.insert(key.to_string(), value.clone());
                    }
                    None => {
                        updated.extensions.remove(key);
                    }
                }
                continue;
            }
            match path {
                "labels" => updated.labels = requested.labels.clone(),
                "spec" => updated.spec = requested.spec.clone(),
                "extensions" => updated.extensions = requested.extensions.clone(),
                "image" => updated.image = requested.image.clone(),
                "snapshotkey" => updated.snapshot_key = requested.snapshot_key.clone(),
                _ => {
                    return Err(Error::invalid_argument(format!(
                        "cannot update {path:?} field on {:?}",
                        requested.id
                    )))
                }
            }
        }
        updated
            .validate()
            .map_err(|e| e.context("update failed validation"))?;
        labels::drop_empty(&mut updated.labels);
        updated.created_at = current.created_at;
        updated.updated_at = SystemTime::now();
        let mut batch = WriteBatch::default();
        updated.put_in(self.store, &mut batch, namespace)?;
        self.store.write(batch)?;
        Ok(updated)
    }

    /// Deletes the container `id`; returns what it was.
    pub fn delete(&self, namespace: &str, id: &str) -> Result<Container> {
        let _guard = self.store.lock_namespace(namespace);
        let container = self
            .find(namespace, id)?
            .ok_or_else(|| Error::not_found(format!("container {id}")))?;
        let mut batch = WriteBatch::default();
        self.store
            .delete_in(&mut batch, Cf::Containers, &keys::object_key(namespace, id));
        self.store.note_deletion();
        self.store.write(batch)?;
        Ok(container)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_temp;
    use rcontainerd_pkg::errdefs::Kind;
    use rcontainerd_pkg::labels::from_pairs as labels;

    const SPEC_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

    fn spec(json: &str) -> Option<AnyValue> {
        Some(AnyValue {
            type_url: SPEC_URL.into(),
            value: json.as_bytes().to_vec(),
        })
    }

    fn container(id: &str) -> Container {
        let mut c = Container::new(id);
        c.labels = labels(&[("a", "1")]);
        c.image = "docker.io/library/alpine:latest".into();
        c.runtime = Runtime {
            name: "io.containerd.runc.v2".into(),
            options: None,
        };
        c.spec = spec("{\"ociVersion\":\"1.0.2\"}");
        c.snapshotter = "overlayfs".into();
        c.snapshot_key = id.into();
        c
    }

    fn paths(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn create_get_list_delete_keep_every_field() {
        let (_dir, store) = open_temp();
        let containers = store.containers();
        let mut c = container("web");
        c.extensions.insert(
            "x".into(),
            AnyValue {
                type_url: "t/x".into(),
                value: vec![0, 1, 2],
            },
        );
        c.runtime.options = Some(AnyValue {
            type_url: "t/opts".into(),
            value: vec![9],
        });
        let created = containers.create("ns", c).unwrap();
        containers.create("ns", container("api")).unwrap();
        assert_eq!(containers.get("ns", "web").unwrap(), created);
        let ids: Vec<_> = containers
            .list("ns")
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, ["api", "web"]);
        assert!(containers.list("other").unwrap().is_empty());
        containers.delete("ns", "web").unwrap();
        let err = containers.get("ns", "web").unwrap_err();
        assert_eq!(
            err.wire_message(),
            "container \"web\" in namespace \"ns\": not found"
        );
        let err = containers.delete("ns", "web").unwrap_err();
        assert_eq!(err.wire_message(), "container web: not found");
    }

    #[test]
    fn validation_in_containerd_words_writes_nothing() {
        let (_dir, store) = open_temp();
        let containers = store.containers();
        containers.create("ns", container("c")).unwrap();
        assert_eq!(
            containers
                .create("ns", container("c"))
                .unwrap_err()
                .wire_message(),
            "container \"c\": already exists"
        );
        type Spoil = fn(&mut Container);
        let cases: [(Spoil, &str); 5] = [
            (|c| c.runtime.name.clear(), "create container failed validation: container.Runtime.Name must be set: invalid argument"),
            (|c| c.spec = None, "create container failed validation: container.Spec must be set: invalid argument"),
            (|c| c.snapshotter.clear(), "create container failed validation: container.Snapshotter must be set if container.SnapshotKey is set: invalid argument"),
            (|c| { c.extensions.insert(String::new(), AnyValue::default()); }, "create container failed validation: container.Extension keys must not be zero-length: invalid argument"),
            (|c| c.id = "Bad Id!".into(), "create container failed validation: container.ID: identifier \"Bad Id!\" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$: invalid argument"),
        ];
        for (spoil, message) in cases {
            let mut bad = container("d");
            spoil(&mut bad);
            let err = containers.create("ns", bad).unwrap_err();
            assert_eq!(err.kind, Kind::InvalidArgument);
            assert_eq!(err.wire_message(), message);
        }
        assert_eq!(containers.list("ns").unwrap().len(), 1);
    }

    #[test]
    fn update_with_and_without_a_mask() {
        let (_dir, store) = open_temp();
        let containers = store.containers();
        let created = containers.create("ns", container("c")).unwrap();

        let mut requested = container("c");
        requested.labels = labels(&[("b", "2")]);
        requested.spec = spec("{}");
        requested.image = "other".into();
        let updated = containers
            .update("ns", requested.clone(), &paths(&["labels.b"]))
            .unwrap();
        assert_eq!(updated.labels, labels(&[("a", "1"), ("b", "2")]));
        assert_eq!(updated.spec, created.spec);
        assert_eq!(updated.created_at, created.created_at);

        let updated = containers.update("ns", requested.clone(), &[]).unwrap();
        assert_eq!(updated.labels, labels(&[("b", "2")]));
        assert_eq!(updated.spec, spec("{}"));
        assert_eq!(updated.image, "other");
        assert_eq!(containers.get("ns", "c").unwrap(), updated);

        let mut moved = requested.clone();
        moved.snapshotter = "native".into();
        assert_eq!(
            containers
                .update("ns", moved, &[])
                .unwrap_err()
                .wire_message(),
            "container.Snapshotter field is immutable: invalid argument"
        );
        let mut moved = requested.clone();
        moved.runtime.name = "io.containerd.runsc.v1".into();
        assert_eq!(
            containers
                .update("ns", moved, &[])
                .unwrap_err()
                .wire_message(),
            "container.Runtime.Name field is immutable: invalid argument"
        );
        for path in ["snapshotter", "runtime", "id"] {
            assert_eq!(
                containers
                    .update("ns", requested.clone(), &paths(&[path]))
                    .unwrap_err()
                    .wire_message(),
                format!("cannot update {path:?} field on \"c\": invalid argument")
            );
        }
        let mut unspecced = requested.clone();
        unspecced.spec = None;
        assert_eq!(
            containers
                .update("ns", unspecced, &paths(&["spec"]))
                .unwrap_err()
                .wire_message(),
            "update failed validation: container.Spec must be set: invalid argument"
        );
        assert_eq!(
            containers.get("ns", "c").unwrap(),
            updated,
            "nothing written"
        );
        let mut missing = requested;
        missing.id = "gone".into();
        assert_eq!(
            containers
                .update("ns", missing, &[])
                .unwrap_err()
                .wire_message(),
            "container \"gone\": not found"
        );
    }
}
