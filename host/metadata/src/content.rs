//! Per-namespace content records and ingest references.
//!
//! Blobs live once in the content driver; what a namespace sees of them is
//! here:
//!
//! - column family `content`, key `namespace \0 digest`, value
//!   [`BlobRecordV1`] (version byte 1): size, labels, created, updated. A
//!   blob is visible in a namespace only while this record exists.
//! - column family `ingests`, key `namespace \0 ref`, value
//!   [`IngestRecordV1`] (version byte 1): the driver's ingest reference
//!   `<namespace>/<n>/<ref>` (so two namespaces can use the same ref), and
//!   the expected digest and total the client announced.
//! - column family `meta`, key `content.ingest_sequence`: the last `n`
//!   handed out (u64, big-endian).
//! - column family `meta`, key `content.ingest_digest \0 <driver ref>`:
//!   [`DigestState`] (version byte 1), the host's running sha256 of an
//!   unfinished ingest, so that a resumed ingest (also after a restart)
//!   still knows the digest of what it holds.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::keys;
use super::record;
use super::store::{Cf, MetadataStore, NamespaceGuard};
use rcontainerd_pkg::errdefs::{Error, Result};
use rcontainerd_pkg::labels;

const BLOB_KIND: &str = "content";
const BLOB_VERSION: u8 = 1;
const INGEST_KIND: &str = "ingest";
const INGEST_VERSION: u8 = 1;

/// A namespace label that shares its blobs even when content is isolated.
const SHAREABLE_LABEL: &str = "containerd.io/namespace.shareable";

/// Key in [`Cf::Meta`] of the last ingest number handed out.
const INGEST_SEQUENCE_KEY: &[u8] = b"content.ingest_sequence";

/// Prefix of the running-digest keys in [`Cf::Meta`].
const INGEST_DIGEST_PREFIX: &[u8] = b"content.ingest_digest\0";
const DIGEST_KIND: &str = "ingest digest";
const DIGEST_VERSION: u8 = 1;

/// A running sha256 at a block boundary plus the bytes of the partial block:
/// enough to continue hashing where an ingest stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestState {
    pub state: [u32; 8],
    pub pending: Vec<u8>,
    /// Bytes hashed so far (the ingest offset it belongs to).
    pub length: u64,
}

fn digest_key(driver_ref: &str) -> Vec<u8> {
    let mut key = INGEST_DIGEST_PREFIX.to_vec();
    key.extend_from_slice(driver_ref.as_bytes());
    key
}

/// Serialises the read-increment-write of the ingest sequence.
static INGEST_SEQUENCE: Mutex<()> = Mutex::new(());

/// What one namespace knows about a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    pub digest: String,
    pub size: i64,
    pub labels: BTreeMap<String, String>,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

/// Stored blob value, version 1. Times are nanoseconds since the Unix epoch.
#[derive(Debug, Serialize, Deserialize)]
struct BlobRecordV1 {
    size: i64,
    labels: BTreeMap<String, String>,
    created_at: i64,
    updated_at: i64,
}

/// A namespace's ingest: the client's ref and the driver's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRecord {
    /// The ref the client chose (unique within its namespace).
    pub reference: String,
    /// The ref the driver knows the ingest by: `<namespace>/<n>/<ref>`.
    pub driver_ref: String,
    /// The expected digest the client announced, or empty.
    pub expected: String,
    /// The total size the client announced, or 0.
    pub total: i64,
}

/// Stored ingest value, version 1.
#[derive(Debug, Serialize, Deserialize)]
struct IngestRecordV1 {
    driver_ref: String,
    expected: String,
    total: i64,
}

impl BlobRecord {
    /// A new record stamped now.
    pub fn new(digest: &str, size: i64, labels: BTreeMap<String, String>) -> BlobRecord {
        let now = SystemTime::now();
        BlobRecord {
            digest: digest.to_string(),
            size,
            labels,
            created_at: now,
            updated_at: now,
        }
    }

    fn decode(digest: &str, value: &[u8]) -> Result<BlobRecord> {
        let v1: BlobRecordV1 = record::decode(BLOB_KIND, BLOB_VERSION, value)?;
        Ok(BlobRecord {
            digest: digest.to_string(),
            size: v1.size,
            labels: v1.labels,
            created_at: record::from_unix_nanos(v1.created_at),
            updated_at: record::from_unix_nanos(v1.updated_at),
        })
    }

    fn put_in(&self, store: &MetadataStore, batch: &mut WriteBatch, namespace: &str) -> Result<()> {
        let v1 = BlobRecordV1 {
            size: self.size,
            labels: self.labels.clone(),
            created_at: record::to_unix_nanos(self.created_at),
            updated_at: record::to_unix_nanos(self.updated_at),
        };
        let key = keys::object_key(namespace, &self.digest);
        store.put_record(batch, Cf::Content, &key, BLOB_KIND, BLOB_VERSION, &v1)
    }
}

impl IngestRecord {
    fn decode(reference: &str, value: &[u8]) -> Result<IngestRecord> {
        let v1: IngestRecordV1 = record::decode(INGEST_KIND, INGEST_VERSION, value)?;
        Ok(IngestRecord {
            reference: reference.to_string(),
            driver_ref: v1.driver_ref,
            expected: v1.expected,
            total: v1.total,
        })
    }

    fn put_in(&self, store: &MetadataStore, batch: &mut WriteBatch, namespace: &str) -> Result<()> {
        let v1 = IngestRecordV1 {
            driver_ref: self.driver_ref.clone(),
            expected: self.expected.clone(),
            total: self.total,
        };
        let key = keys::object_key(namespace, &self.reference);
        store.put_record(batch, Cf::Ingests, &key, INGEST_KIND, INGEST_VERSION, &v1)
    }
}

/// containerd's words for a blob a namespace does not hold.
pub fn blob_not_found(digest: &str) -> Error {
    Error::not_found(format!("content digest {digest}: not found"))
}

/// containerd's words for committing a blob the namespace already holds.
pub fn blob_exists(digest: &str) -> Error {
    Error::already_exists(format!("content {digest}: already exists"))
}

/// Checks the labels a blob is committed with.
pub fn validate_blob_labels(blob_labels: &BTreeMap<String, String>) -> Result<()> {
    labels::validate_all(blob_labels).map_err(|e| e.context("info.Labels"))
}

fn key_text<'k>(kind: &str, key: &'k [u8], prefix: &[u8]) -> Result<&'k str> {
    keys::strip_prefix(key, prefix)
        .and_then(|rest| std::str::from_utf8(rest).ok())
        .ok_or_else(|| Error::internal(format!("metadata: malformed {kind} key {key:?}")))
}

/// The namespaces' blob records: [`MetadataStore::blobs`].
#[derive(Clone, Copy)]
pub struct Blobs<'a> {
    store: &'a MetadataStore,
}

/// The namespaces' ingest refs and saved running digests: [`MetadataStore::ingests`].
#[derive(Clone, Copy)]
pub struct Ingests<'a> {
    store: &'a MetadataStore,
}

impl MetadataStore {
    pub fn blobs(&self) -> Blobs<'_> {
        Blobs { store: self }
    }

    pub fn ingests(&self) -> Ingests<'_> {
        Ingests { store: self }
    }
}

impl Blobs<'_> {
    /// The namespace's record of `digest`, if it holds the blob.
    pub fn get(&self, namespace: &str, digest: &str) -> Result<Option<BlobRecord>> {
        self.store
            .get(Cf::Content, &keys::object_key(namespace, digest))?
            .map(|value| BlobRecord::decode(digest, &value))
            .transpose()
    }

    /// Every blob record of a namespace, ordered by digest.
    pub fn list(&self, namespace: &str) -> Result<Vec<BlobRecord>> {
        let prefix = keys::namespace_prefix(namespace);
        self.store
            .scan_prefix(Cf::Content, &prefix)
            .map(|item| {
                let (key, value) = item?;
                BlobRecord::decode(key_text(BLOB_KIND, &key, &prefix)?, &value)
            })
            .collect()
    }

    /// Whether a namespace other than `namespace` holds `digest` and lets
    /// others take it: any holder when content is shared, else one labelled
    /// `containerd.io/namespace.shareable=true`.
    pub fn shareable(&self, namespace: &str, digest: &str) -> Result<bool> {
        let shared = self.store.shares_content();
        for holder in self.store.namespaces().list()? {
            if holder.name == namespace
                || !(shared
                    || holder.labels.get(SHAREABLE_LABEL).map(String::as_str) == Some("true"))
            {
                continue;
            }
            if self
                .store
                .contains(Cf::Content, &keys::object_key(&holder.name, digest))?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether any namespace still holds a record of `digest`.
    pub fn referenced(&self, digest: &str) -> Result<bool> {
        for namespace in self.store.namespaces().list()? {
            if self
                .store
                .contains(Cf::Content, &keys::object_key(&namespace.name, digest))?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Updates a blob's labels with containerd's field-mask rules (no paths
    /// or `labels`: replace all; `labels.<key>`: set or delete that key).
    pub fn update(
        &self,
        namespace: &str,
        digest: &str,
        requested: BTreeMap<String, String>,
        paths: &[String],
    ) -> Result<BlobRecord> {
        let guard = self.store.lock_namespace(namespace);
        let mut blob = self
            .get(namespace, digest)?
            .ok_or_else(|| blob_not_found(digest))?;
        blob.labels = updated_labels(digest, blob.labels, requested, paths)?;
        blob.updated_at = SystemTime::now();
        let mut batch = WriteBatch::default();
        blob.put_in(self.store, &mut batch, guard.namespace())?;
        self.store.write(batch)?;
        Ok(blob)
    }

    /// Records a committed blob in the guarded namespace and forgets the
    /// ingest it came from (if given), in one batch. When the namespace
    /// already holds the blob, only the ingest goes and the answer is
    /// AlreadyExists.
    pub fn commit(
        &self,
        guard: &NamespaceGuard<'_>,
        blob: &BlobRecord,
        ingest: Option<&IngestRecord>,
    ) -> Result<()> {
        let namespace = guard.namespace();
        let exists = self
            .store
            .contains(Cf::Content, &keys::object_key(namespace, &blob.digest))?;
        let mut batch = WriteBatch::default();
        if let Some(ingest) = ingest {
            self.store.delete_in(
                &mut batch,
                Cf::Ingests,
                &keys::object_key(namespace, &ingest.reference),
            );
            self.store
                .delete_in(&mut batch, Cf::Meta, &digest_key(&ingest.driver_ref));
        }
        if !exists {
            validate_blob_labels(&blob.labels)?;
            self.store.namespaces().ensure_in(guard, &mut batch)?;
            blob.put_in(self.store, &mut batch, namespace)?;
        }
        self.store.write(batch)?;
        if exists {
            return Err(blob_exists(&blob.digest));
        }
        Ok(())
    }

    /// Removes the guarded namespace's record of `digest`.
    pub fn delete(&self, guard: &NamespaceGuard<'_>, digest: &str) -> Result<()> {
        let key = keys::object_key(guard.namespace(), digest);
        if !self.store.contains(Cf::Content, &key)? {
            return Err(blob_not_found(digest));
        }
        let mut batch = WriteBatch::default();
        self.store.delete_in(&mut batch, Cf::Content, &key);
        self.store.note_deletion();
        self.store.write(batch)
    }
}

impl Ingests<'_> {
    /// The namespace's ingest `reference`, if it has one.
    pub fn get(&self, namespace: &str, reference: &str) -> Result<Option<IngestRecord>> {
        self.store
            .get(Cf::Ingests, &keys::object_key(namespace, reference))?
            .map(|value| IngestRecord::decode(reference, &value))
            .transpose()
    }

    /// Every ingest of a namespace, ordered by ref.
    pub fn list(&self, namespace: &str) -> Result<Vec<IngestRecord>> {
        let prefix = keys::namespace_prefix(namespace);
        self.store
            .scan_prefix(Cf::Ingests, &prefix)
            .map(|item| {
                let (key, value) = item?;
                IngestRecord::decode(key_text(INGEST_KIND, &key, &prefix)?, &value)
            })
            .collect()
    }

    /// The namespace's ingest `reference`, created with a fresh driver ref
    /// when it does not exist. A non-empty `expected` or non-zero `total`
    /// replaces the recorded one.
    pub fn open(
        &self,
        namespace: &str,
        reference: &str,
        expected: &str,
        total: i64,
    ) -> Result<IngestRecord> {
        let guard = self.store.lock_namespace(namespace);
        let existing = self.get(namespace, reference)?;
        let mut ingest = match existing {
            Some(ingest) if expected.is_empty() && total <= 0 => return Ok(ingest),
            Some(ingest) => ingest,
            None => IngestRecord {
                reference: reference.to_string(),
                driver_ref: format!("{namespace}/{}/{reference}", self.next_number()?),
                expected: String::new(),
                total: 0,
            },
        };
        if !expected.is_empty() {
            ingest.expected = expected.to_string();
        }
        if total > 0 {
            ingest.total = total;
        }
        let mut batch = WriteBatch::default();
        self.store.namespaces().ensure_in(&guard, &mut batch)?;
        ingest.put_in(self.store, &mut batch, namespace)?;
        self.store.write(batch)?;
        Ok(ingest)
    }

    /// Forgets the namespace's ingest `reference` and its running digest;
    /// whether it existed.
    pub fn delete(&self, namespace: &str, reference: &str) -> Result<bool> {
        let _guard = self.store.lock_namespace(namespace);
        let Some(ingest) = self.get(namespace, reference)? else {
            return Ok(false);
        };
        let mut batch = WriteBatch::default();
        self.store.delete_in(
            &mut batch,
            Cf::Ingests,
            &keys::object_key(namespace, reference),
        );
        self.store
            .delete_in(&mut batch, Cf::Meta, &digest_key(&ingest.driver_ref));
        self.store.write(batch)?;
        Ok(true)
    }

    /// Saves the running digest of the ingest the driver knows as `driver_ref`.
    ///
    /// Not synced: the ingest's data is not synced before its commit either.
    /// A `kill -9` loses neither (both are in the kernel); after a machine
    /// crash a resume accepts a state only up to the data's length, and the
    /// driver verifies the digest again at commit. A synced save would also
    /// queue behind the ingest's own writeback and stall the stream.
    pub fn save_digest(&self, driver_ref: &str, state: &DigestState) -> Result<()> {
        let mut batch = WriteBatch::default();
        self.store.put_record(
            &mut batch,
            Cf::Meta,
            &digest_key(driver_ref),
            DIGEST_KIND,
            DIGEST_VERSION,
            state,
        )?;
        self.store.write_unsynced(batch)
    }

    /// Drops a saved running digest of the ingest the driver knows as
    /// `driver_ref`, if there is one: once a driver that reports its own
    /// digest has written to the ingest, the state no longer describes its
    /// data (and would mislead a hashing driver that took the ingest over).
    pub fn forget_digest(&self, driver_ref: &str) -> Result<()> {
        let key = digest_key(driver_ref);
        if self.store.get(Cf::Meta, &key)?.is_none() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        self.store.delete_in(&mut batch, Cf::Meta, &key);
        self.store.write(batch)
    }

    /// The saved running digest of an ingest, if any.
    pub fn digest(&self, driver_ref: &str) -> Result<Option<DigestState>> {
        let Some(value) = self.store.get(Cf::Meta, &digest_key(driver_ref))? else {
            return Ok(None);
        };
        record::decode(DIGEST_KIND, DIGEST_VERSION, &value).map(Some)
    }

    /// Hands out the next ingest number (persisted, never reused).
    fn next_number(&self) -> Result<u64> {
        // The lock guards no data, so a panic elsewhere cannot leave it inconsistent.
        let _lock = INGEST_SEQUENCE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let last = match self.store.get(Cf::Meta, INGEST_SEQUENCE_KEY)? {
            None => 0,
            Some(value) => <[u8; 8]>::try_from(value.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| Error::internal("metadata: malformed ingest sequence"))?,
        };
        let next = last + 1;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.store.cf(Cf::Meta),
            INGEST_SEQUENCE_KEY,
            next.to_be_bytes(),
        );
        self.store.write(batch)?;
        Ok(next)
    }
}

/// The labels after an update (see [`Blobs::update`]).
fn updated_labels(
    digest: &str,
    current: BTreeMap<String, String>,
    requested: BTreeMap<String, String>,
    paths: &[String],
) -> Result<BTreeMap<String, String>> {
    labels::apply_update(
        current,
        requested,
        paths,
        &format!("content info {digest:?}"),
        |e: Error| e.context("info.Labels"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_temp;
    use rcontainerd_pkg::errdefs::Kind;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    use rcontainerd_pkg::labels::from_pairs as labels;

    fn commit(store: &MetadataStore, ns: &str, digest: &str, size: i64) -> Result<()> {
        let guard = store.lock_namespace(ns);
        store.blobs().commit(
            &guard,
            &BlobRecord::new(digest, size, BTreeMap::new()),
            None,
        )
    }

    #[test]
    fn blob_records_are_per_namespace() {
        let (_dir, store) = open_temp();
        commit(&store, "a", D1, 5).unwrap();
        assert_eq!(store.blobs().get("a", D1).unwrap().unwrap().size, 5);
        assert_eq!(store.blobs().get("b", D1).unwrap(), None);
        assert!(store.blobs().list("b").unwrap().is_empty());
        // Committing creates the namespace and makes it non-deletable.
        assert_eq!(store.namespaces().remaining_kinds("a").unwrap(), ["blobs"]);

        commit(&store, "a", D2, 7).unwrap();
        let digests: Vec<String> = store
            .blobs()
            .list("a")
            .unwrap()
            .into_iter()
            .map(|b| b.digest)
            .collect();
        assert_eq!(digests, [D1, D2]);

        let err = commit(&store, "a", D1, 5).unwrap_err();
        assert_eq!(err.kind, Kind::AlreadyExists);
        assert_eq!(err.wire_message(), format!("content {D1}: already exists"));
    }

    #[test]
    fn blob_referenced_looks_at_every_namespace() {
        let (_dir, store) = open_temp();
        commit(&store, "a", D1, 5).unwrap();
        commit(&store, "b", D1, 5).unwrap();
        assert!(store.blobs().referenced(D1).unwrap());
        store
            .blobs()
            .delete(&store.lock_namespace("a"), D1)
            .unwrap();
        assert!(store.blobs().referenced(D1).unwrap());
        store
            .blobs()
            .delete(&store.lock_namespace("b"), D1)
            .unwrap();
        assert!(!store.blobs().referenced(D1).unwrap());
        let err = store
            .blobs()
            .delete(&store.lock_namespace("b"), D1)
            .unwrap_err();
        assert_eq!(err.kind, Kind::NotFound);
        assert_eq!(err.message, format!("content digest {D1}: not found"));
        assert!(store.namespaces().remaining_kinds("a").unwrap().is_empty());
    }

    #[test]
    fn update_blob_follows_field_masks() {
        let (_dir, store) = open_temp();
        let guard = store.lock_namespace("a");
        store
            .blobs()
            .commit(
                &guard,
                &BlobRecord::new(D1, 1, labels(&[("x", "1"), ("y", "2")])),
                None,
            )
            .unwrap();
        drop(guard);
        let before = store.blobs().get("a", D1).unwrap().unwrap();

        let paths = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let updated = store
            .blobs()
            .update(
                "a",
                D1,
                labels(&[("y", ""), ("z", "3")]),
                &paths(&["labels.y", "labels.z"]),
            )
            .unwrap();
        assert_eq!(updated.labels, labels(&[("x", "1"), ("z", "3")]));
        assert_eq!(updated.created_at, before.created_at);
        assert_eq!(store.blobs().get("a", D1).unwrap().unwrap(), updated);

        let updated = store
            .blobs()
            .update("a", D1, labels(&[("w", "4")]), &[])
            .unwrap();
        assert_eq!(updated.labels, labels(&[("w", "4")]));

        let err = store
            .blobs()
            .update("a", D1, labels(&[]), &paths(&["size"]))
            .unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument);
        assert_eq!(
            err.message,
            format!("cannot update \"size\" field on content info {D1:?}")
        );
        assert_eq!(
            store
                .blobs()
                .update("b", D1, labels(&[]), &[])
                .unwrap_err()
                .kind,
            Kind::NotFound
        );
        let big = labels(&[("k", &"v".repeat(4096))]);
        assert_eq!(
            store.blobs().update("a", D1, big, &[]).unwrap_err().kind,
            Kind::InvalidArgument
        );
    }

    #[test]
    fn ingests_get_distinct_driver_refs_per_namespace() {
        let (_dir, store) = open_temp();
        let a = store.ingests().open("a", "layer", "", 0).unwrap();
        let b = store.ingests().open("b", "layer", "", 0).unwrap();
        assert!(a.driver_ref.starts_with("a/") && a.driver_ref.ends_with("/layer"));
        assert!(b.driver_ref.starts_with("b/") && b.driver_ref.ends_with("/layer"));
        assert_ne!(a.driver_ref, b.driver_ref);

        // Reopening keeps the driver ref; announced values are kept.
        let again = store.ingests().open("a", "layer", D1, 9).unwrap();
        assert_eq!(again.driver_ref, a.driver_ref);
        assert_eq!((again.expected.as_str(), again.total), (D1, 9));
        assert_eq!(store.ingests().open("a", "layer", "", 0).unwrap(), again);
        assert_eq!(store.ingests().list("a").unwrap(), vec![again.clone()]);

        // Ingests do not keep a namespace from being deleted.
        assert!(store.namespaces().remaining_kinds("a").unwrap().is_empty());

        assert!(store.ingests().delete("a", "layer").unwrap());
        assert!(!store.ingests().delete("a", "layer").unwrap());
        assert_eq!(store.ingests().get("a", "layer").unwrap(), None);
        // A new ingest under the same ref gets a new number.
        let fresh = store.ingests().open("a", "layer", "", 0).unwrap();
        assert_ne!(fresh.driver_ref, a.driver_ref);
        assert_eq!(store.ingests().get("b", "layer").unwrap(), Some(b));
    }

    #[test]
    fn commit_forgets_the_ingest_even_when_the_blob_exists() {
        let (_dir, store) = open_temp();
        commit(&store, "a", D1, 5).unwrap();
        let ingest = store.ingests().open("a", "r", "", 0).unwrap();
        let state = DigestState {
            state: [7; 8],
            pending: vec![1, 2, 3],
            length: 67,
        };
        store
            .ingests()
            .save_digest(&ingest.driver_ref, &state)
            .unwrap();
        assert_eq!(
            store.ingests().digest(&ingest.driver_ref).unwrap(),
            Some(state)
        );
        let guard = store.lock_namespace("a");
        let err = store
            .blobs()
            .commit(
                &guard,
                &BlobRecord::new(D1, 5, BTreeMap::new()),
                Some(&ingest),
            )
            .unwrap_err();
        assert_eq!(err.kind, Kind::AlreadyExists);
        drop(guard);
        assert_eq!(store.ingests().get("a", "r").unwrap(), None);
        assert_eq!(store.ingests().digest(&ingest.driver_ref).unwrap(), None);
    }

    #[test]
    fn ingest_numbers_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("io.containerd.metadata.v1.bolt");
        let first = {
            let store = MetadataStore::open(&meta).unwrap();
            store.ingests().open("a", "r", "", 0).unwrap()
        };
        let store = MetadataStore::open(&meta).unwrap();
        assert_eq!(store.ingests().get("a", "r").unwrap(), Some(first.clone()));
        let second = store.ingests().open("a", "s", "", 0).unwrap();
        let number =
            |r: &IngestRecord| -> u64 { r.driver_ref.split('/').nth(1).unwrap().parse().unwrap() };
        assert!(number(&second) > number(&first));
    }
}
