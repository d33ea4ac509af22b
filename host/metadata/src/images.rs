//! Image records: column family `images`, key `namespace \0 name`, value
//! [`RecordV1`] (version byte 1).
//!
//! An image is a name for a target descriptor (usually an index or a
//! manifest) plus labels. The target blob need not exist: clients create the
//! record before or after fetching what it names, and garbage collection
//! follows the target only when it is there.

use std::collections::BTreeMap;
use std::time::SystemTime;

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::keys;
use super::record;
use super::store::{Cf, MetadataStore};
use rcontainerd_pkg::errdefs::{Error, Result};
use rcontainerd_pkg::labels::set_or_remove;
use rcontainerd_pkg::{digest, labels};

const KIND: &str = "image";
const VERSION: u8 = 1;

/// What an image points at: an OCI descriptor without its URLs and platform,
/// which containerd does not keep either.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    pub annotations: BTreeMap<String, String>,
}

/// An image as the API sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub target: Descriptor,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

/// Stored value, version 1. Times are nanoseconds since the Unix epoch.
#[derive(Debug, Serialize, Deserialize)]
struct RecordV1 {
    labels: BTreeMap<String, String>,
    target: Descriptor,
    created_at: i64,
    updated_at: i64,
}

impl Image {
    /// A record named `name` for `target`, stamped now (the store stamps it
    /// again when it writes).
    pub fn new(name: &str, labels: BTreeMap<String, String>, target: Descriptor) -> Image {
        let now = SystemTime::now();
        Image {
            name: name.to_string(),
            labels,
            target,
            created_at: now,
            updated_at: now,
        }
    }

    fn decode(name: &str, value: &[u8]) -> Result<Image> {
        let v1: RecordV1 = record::decode(KIND, VERSION, value)?;
        Ok(Image {
            name: name.to_string(),
            labels: v1.labels,
            target: v1.target,
            created_at: record::from_unix_nanos(v1.created_at),
            updated_at: record::from_unix_nanos(v1.updated_at),
        })
    }

    fn put_in(&self, store: &MetadataStore, batch: &mut WriteBatch, namespace: &str) -> Result<()> {
        let v1 = RecordV1 {
            labels: self.labels.clone(),
            target: self.target.clone(),
            created_at: record::to_unix_nanos(self.created_at),
            updated_at: record::to_unix_nanos(self.updated_at),
        };
        let key = keys::object_key(namespace, &self.name);
        store.put_record(batch, Cf::Images, &key, KIND, VERSION, &v1)
    }

    /// containerd's checks of a record about to be written: a name, labels
    /// of a legal size, and a target with a well-formed digest, a positive
    /// size and a media type.
    fn validate(&self) -> Result<()> {
        if self.name.is_empty() {
            return Err(Error::invalid_argument("image name must not be empty"));
        }
        labels::validate_all(&self.labels).map_err(|e| e.context("image.Labels"))?;
        let target = &self.target;
        if let Err(e) = digest::validate(&target.digest) {
            return Err(Error::invalid_argument(format!(
                "Target.Digest {:?} invalid: {e}",
                target.digest
            )));
        }
        if target.size <= 0 {
            return Err(Error::invalid_argument(
                "Target.Size must be greater than zero",
            ));
        }
        if target.media_type.is_empty() {
            return Err(Error::invalid_argument("Target.MediaType must be set"));
        }
        Ok(())
    }
}

pub fn image_not_found(name: &str) -> Error {
    Error::not_found(format!("image {name:?}: not found"))
}

/// The image records: [`MetadataStore::images`].
#[derive(Clone, Copy)]
pub struct Images<'a> {
    store: &'a MetadataStore,
}

impl MetadataStore {
    pub fn images(&self) -> Images<'_> {
        Images { store: self }
    }
}

impl Images<'_> {
    pub fn get(&self, namespace: &str, name: &str) -> Result<Image> {
        self.find(namespace, name)?
            .ok_or_else(|| image_not_found(name))
    }

    fn find(&self, namespace: &str, name: &str) -> Result<Option<Image>> {
        self.store
            .get(Cf::Images, &keys::object_key(namespace, name))?
            .map(|value| Image::decode(name, &value))
            .transpose()
    }

    /// Every image of `namespace`, ordered by name.
    pub fn list(&self, namespace: &str) -> Result<Vec<Image>> {
        self.store.list_named(Cf::Images, namespace, Image::decode)
    }

    /// Creates `image` (its times are set here), creating the namespace on
    /// first use. Labels with an empty value are dropped.
    pub fn create(&self, namespace: &str, mut image: Image) -> Result<Image> {
        image.validate()?;
        labels::drop_empty(&mut image.labels);
        let guard = self.store.lock_namespace(namespace);
        if self
            .store
            .contains(Cf::Images, &keys::object_key(namespace, &image.name))?
        {
            return Err(Error::already_exists(format!(
                "image {:?}: already exists",
                image.name
            )));
        }
        let now = SystemTime::now();
        image.created_at = now;
        image.updated_at = now;
        let mut batch = WriteBatch::default();
        self.store.namespaces().ensure_in(&guard, &mut batch)?;
        image.put_in(self.store, &mut batch, namespace)?;
        self.store.write(batch)?;
        Ok(image)
    }

    /// Updates the image named `requested.name` with containerd's field-mask
    /// rules: no paths replace the whole record (but its creation time);
    /// `labels`, `labels.<key>`, `annotations`, `annotations.<key>` and
    /// `target` (replaced as a unit) take those parts from `requested`;
    /// `name` changes nothing; anything else is an invalid argument. The
    /// result must pass the checks of a new record; nothing is written
    /// otherwise.
    pub fn update(&self, namespace: &str, requested: Image, paths: &[String]) -> Result<Image> {
        if requested.name.is_empty() {
            return Err(Error::invalid_argument("image name is required for update"));
        }
        let _guard = self.store.lock_namespace(namespace);
        let current = self
            .find(namespace, &requested.name)?
            .ok_or_else(|| image_not_found(&requested.name))?;
        let mut updated = if paths.is_empty() {
            requested
        } else {
            apply_mask(current.clone(), requested, paths)?
        };
        updated.validate()?;
        labels::drop_empty(&mut updated.labels);
        updated.created_at = current.created_at;
        updated.updated_at = SystemTime::now();
        let mut batch = WriteBatch::default();
        updated.put_in(self.store, &mut batch, namespace)?;
        self.store.write(batch)?;
        Ok(updated)
    }

    /// Deletes the image `name`. With `target`, only while the image still
    /// points at that digest (a client deleting what it looked at, not what
    /// someone re-tagged meanwhile); otherwise NotFound, as containerd's
    /// newer releases answer (1.6 has no such field).
    pub fn delete(&self, namespace: &str, name: &str, target: Option<&str>) -> Result<Image> {
        let _guard = self.store.lock_namespace(namespace);
        let image = self
            .find(namespace, name)?
            .ok_or_else(|| image_not_found(name))?;
        if let Some(expected) = target {
            if image.target.digest != expected {
                return Err(Error::not_found(format!(
                    "image {name:?} has target {}, not {expected}",
                    image.target.digest
                )));
            }
        }
        let mut batch = WriteBatch::default();
        self.store
            .delete_in(&mut batch, Cf::Images, &keys::object_key(namespace, name));
        self.store.note_deletion();
        self.store.write(batch)?;
        Ok(image)
    }
}

/// The record after a masked update (see [`Images::update`]).
fn apply_mask(mut updated: Image, requested: Image, paths: &[String]) -> Result<Image> {
    for path in paths {
        if let Some(key) = path.strip_prefix("labels.") {
            set_or_remove(&mut updated.labels, key, requested.labels.get(key));
            continue;
        }
        if let Some(key) = path.strip_prefix("annotations.") {
            set_or_remove(
                &mut updated.target.annotations,
                key,
                requested.target.annotations.get(key),
            );
            continue;
        }
        match path.as_str() {
            "name" => {}
            "target" => updated.target = requested.target.clone(),
            "labels" => updated.labels = requested.labels.clone(),
            "annotations" => updated.target.annotations = requested.target.annotations.clone(),
            _ => {
                return Err(Error::invalid_argument(format!(
                    "cannot update {path:?} field on image {:?}",
                    requested.name
                )))
            }
        }
    }
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_temp;
    use rcontainerd_pkg::errdefs::Kind;
    use rcontainerd_pkg::labels::from_pairs as labels;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const OTHER: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";

    fn target(digest: &str) -> Descriptor {
        Descriptor {
            media_type: INDEX.into(),
            digest: digest.into(),
            size: 10,
            annotations: BTreeMap::new(),
        }
    }

    fn image(name: &str) -> Image {
        Image::new(name, labels(&[("a", "1")]), target(DIGEST))
    }

    fn paths(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn create_get_list_delete_per_namespace() {
        let (_dir, store) = open_temp();
        let images = store.images();
        let created = images.create("ns", image("docker.io/library/b:1")).unwrap();
        images.create("ns", image("a")).unwrap();
        images.create("other", image("c")).unwrap();
        assert_eq!(images.get("ns", "docker.io/library/b:1").unwrap(), created);
        let names: Vec<_> = images
            .list("ns")
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(names, ["a", "docker.io/library/b:1"]);
        // The namespace was created with its first record.
        assert!(store.namespaces().get("ns").is_ok());
        images.delete("ns", "a", None).unwrap();
        assert_eq!(images.get("ns", "a").unwrap_err().kind, Kind::NotFound);
        assert_eq!(images.list("other").unwrap().len(), 1);
    }

    #[test]
    fn errors_carry_containerd_codes_and_words() {
        let (_dir, store) = open_temp();
        let images = store.images();
        images.create("ns", image("n")).unwrap();
        let err = images.create("ns", image("n")).unwrap_err();
        assert_eq!(err.kind, Kind::AlreadyExists);
        assert_eq!(err.wire_message(), "image \"n\": already exists");
        for err in [
            images.get("ns", "m").unwrap_err(),
            images.delete("ns", "m", None).unwrap_err(),
            images.update("ns", image("m"), &[]).unwrap_err(),
        ] {
            assert_eq!(err.wire_message(), "image \"m\": not found");
        }
        type Spoil = fn(&mut Image);
        let cases: [(Spoil, &str); 5] = [
            (|i| i.target.digest.clear(), "Target.Digest \"\" invalid: invalid checksum digest format: invalid argument"),
            (|i| i.target.digest = "sha256:abc".into(), "Target.Digest \"sha256:abc\" invalid: invalid checksum digest length: invalid argument"),
            (|i| i.target.size = 0, "Target.Size must be greater than zero: invalid argument"),
            (|i| i.target.media_type.clear(), "Target.MediaType must be set: invalid argument"),
            (|i| i.name.clear(), "image name must not be empty: invalid argument"),
        ];
        for (spoil, message) in cases {
            let mut bad = image("bad");
            spoil(&mut bad);
            let err = images.create("ns", bad).unwrap_err();
            assert_eq!(err.kind, Kind::InvalidArgument);
            assert_eq!(err.wire_message(), message);
        }
        assert_eq!(images.list("ns").unwrap().len(), 1, "nothing written");
    }

    #[test]
    fn update_follows_the_field_mask() {
        let (_dir, store) = open_temp();
        let images = store.images();
        let mut first = image("n");
        first.target.annotations = labels(&[("x", "1")]);
        let created = images.create("ns", first).unwrap();

        let mut requested = Image::new("n", labels(&[("b", "2")]), target(OTHER));
        requested.target.annotations = labels(&[("y", "2")]);
        // Labels only: the target stays.
        let updated = images
            .update("ns", requested.clone(), &paths(&["labels.b", "labels.a"]))
            .unwrap();
        assert_eq!(updated.labels, labels(&[("b", "2")]));
        assert_eq!(updated.target.digest, DIGEST);
        assert_eq!(updated.created_at, created.created_at);
        // Annotations by key, then the target as a unit.
        let updated = images
            .update("ns", requested.clone(), &paths(&["annotations.y", "name"]))
            .unwrap();
        assert_eq!(
            updated.target.annotations,
            labels(&[("x", "1"), ("y", "2")])
        );
        let updated = images
            .update("ns", requested.clone(), &paths(&["target"]))
            .unwrap();
        assert_eq!(updated.target, requested.target);
        // No mask: a full replace.
        let mut replace = Image::new("n", BTreeMap::new(), target(DIGEST));
        replace.labels = labels(&[("gone", "")]);
        let updated = images.update("ns", replace, &[]).unwrap();
        assert!(updated.labels.is_empty());
        assert_eq!(updated.target, target(DIGEST));
        assert_eq!(images.get("ns", "n").unwrap(), updated);

        let err = images
            .update("ns", requested.clone(), &paths(&["size"]))
            .unwrap_err();
        assert_eq!(
            err.wire_message(),
            "cannot update \"size\" field on image \"n\": invalid argument"
        );
        let mut broken = requested;
        broken.target.size = -1;
        let err = images
            .update("ns", broken, &paths(&["target"]))
            .unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument);
        assert_eq!(images.get("ns", "n").unwrap(), updated, "nothing written");
    }

    #[test]
    fn delete_with_a_target_refuses_a_moved_image() {
        let (_dir, store) = open_temp();
        let images = store.images();
        images.create("ns", image("n")).unwrap();
        let err = images.delete("ns", "n", Some(OTHER)).unwrap_err();
        assert_eq!(err.kind, Kind::NotFound);
        assert!(err.message.contains("has target"), "{err}");
        assert!(images.get("ns", "n").is_ok());
        images.delete("ns", "n", Some(DIGEST)).unwrap();
        assert!(images.get("ns", "n").is_err());
    }

    #[test]
    fn records_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let created = {
            let store = MetadataStore::open(dir.path()).unwrap();
            store.images().create("ns", image("n")).unwrap()
        };
        let store = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(store.images().get("ns", "n").unwrap(), created);
    }
}
