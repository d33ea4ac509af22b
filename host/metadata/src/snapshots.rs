//! Snapshot records and the intents that keep them consistent with the
//! snapshotter drivers.
//!
//! # Records
//! Column family `snapshots`, key `namespace \0 snapshotter \0 name`
//! ([`keys::snapshot_key`]), value [`RecordV1`] (version byte 1): kind,
//! parent name (same namespace and snapshotter; empty for none), labels,
//! created/updated (Unix nanoseconds) and the driver key
//! `<namespace>/<counter>/<name>` the snapshotter knows the snapshot by.
//!
//! # Intents and the counter
//! In the `meta` family, per snapshotter:
//!
//! | key                                         | value                        |
//! |---------------------------------------------|------------------------------|
//! | `snapshot-counter \0 snapshotter`           | u64, big-endian: last number |
//! | `snapshot-intent \0 snapshotter \0 <u64 BE>`| [`IntentV1`] (version 1)     |
//!
//! Before a driver mutation the snapshot store writes an intent naming the
//! operation and the driver keys it touches, together with the bumped
//! counter. The record change and the intent's removal then land in one
//! batch. Intents found at startup belong to operations that never reached
//! that batch; `snapshots::recovery` resolves them against the driver. The
//! counter value may lag behind under concurrent writers; the store takes the
//! maximum with every number it sees at startup.
//!
//! # One WAL sync per mutation
//! Each mutation syncs the WAL once, at the point after which recovery can
//! only end in the result the client was told (the WAL is synced in order,
//! so a sync also covers every earlier unsynced write):
//!
//! | mutation       | intent   | finishing batch | a machine crash after the ack                    |
//! |----------------|----------|-----------------|--------------------------------------------------|
//! | prepare / view | unsynced | **synced**      | the record is on disk                            |
//! | commit         | **synced** | unsynced      | intent + committed driver key: rolled forward   |
//! | remove         | **synced** | unsynced      | intent + driver key gone: rolled forward        |
//!
//! (A lost prepare intent leaves a driver snapshot without a record; the
//! orphan pass at start removes it.) A process crash (`kill -9`) loses no
//! unsynced write: it is in the kernel once `write` returns.

use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::keys;
use super::record;
use super::store::{Cf, MetadataStore};
use rcontainerd_pkg::errdefs::{Error, Result};
use rcontainerd_pkg::labels;

const KIND: &str = "snapshot";
const VERSION: u8 = 1;
const INTENT_KIND: &str = "snapshot intent";
const INTENT_VERSION: u8 = 1;

const COUNTER_PREFIX: &[u8] = b"snapshot-counter\0";
const INTENT_PREFIX: &[u8] = b"snapshot-intent\0";

/// containerd's snapshot kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotKind {
    View,
    Active,
    Committed,
}

/// A snapshot as the metadata layer knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub name: String,
    pub kind: SnapshotKind,
    /// The parent's name in the same namespace; empty for none.
    pub parent: String,
    pub labels: BTreeMap<String, String>,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    /// What the driver calls it: `<namespace>/<counter>/<name>`.
    pub driver_key: String,
}

/// Stored value, version 1.
#[derive(Debug, Serialize, Deserialize)]
struct RecordV1 {
    kind: SnapshotKind,
    parent: String,
    labels: BTreeMap<String, String>,
    created_at: i64,
    updated_at: i64,
    driver_key: String,
}

/// A driver mutation that was started but whose record change may not have
/// been written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Intent {
    /// Prepare or View of `driver_key`: the client never got an answer.
    Create { driver_key: String },
    /// Commit of the active `active_key` (name `active_name`) into `record`
    /// (committed, named `record.name`) in `namespace`.
    Commit {
        namespace: String,
        active_name: String,
        active_key: String,
        record: IntentRecord,
    },
    /// Removal of `name` (driver key `driver_key`) in `namespace`.
    Remove {
        namespace: String,
        name: String,
        driver_key: String,
    },
}

/// The record a Commit intent would write (serialisable form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentRecord {
    name: String,
    parent: String,
    labels: BTreeMap<String, String>,
    created_at: i64,
    driver_key: String,
}

impl IntentRecord {
    pub fn from_record(record: &SnapshotRecord) -> IntentRecord {
        IntentRecord {
            name: record.name.clone(),
            parent: record.parent.clone(),
            labels: record.labels.clone(),
            created_at: record::to_unix_nanos(record.created_at),
            driver_key: record.driver_key.clone(),
        }
    }

    /// The committed record this intent describes.
    pub fn to_record(&self) -> SnapshotRecord {
        let created = record::from_unix_nanos(self.created_at);
        SnapshotRecord {
            name: self.name.clone(),
            kind: SnapshotKind::Committed,
            parent: self.parent.clone(),
            labels: self.labels.clone(),
            created_at: created,
            updated_at: created,
            driver_key: self.driver_key.clone(),
        }
    }
}

/// Stored intent, version 1.
#[derive(Debug, Serialize, Deserialize)]
struct IntentV1 {
    intent: Intent,
}

/// The driver key of snapshot `name` created as number `counter` in `namespace`.
pub fn driver_key(namespace: &str, counter: u64, name: &str) -> String {
    format!("{namespace}/{counter}/{name}")
}

/// The counter part of a driver key, if it has the `<ns>/<n>/<name>` shape.
pub fn driver_key_counter(driver_key: &str) -> Option<u64> {
    let mut parts = driver_key.splitn(3, '/');
    let _namespace = parts.next()?;
    let counter = parts.next()?.parse().ok()?;
    parts.next()?;
    Some(counter)
}

impl SnapshotRecord {
    fn decode(name: &str, value: &[u8]) -> Result<SnapshotRecord> {
        let v1: RecordV1 = record::decode(KIND, VERSION, value)?;
        Ok(SnapshotRecord {
            name: name.to_string(),
            kind: v1.kind,
            parent: v1.parent,
            labels: v1.labels,
            created_at: record::from_unix_nanos(v1.created_at),
            updated_at: record::from_unix_nanos(v1.updated_at),
            driver_key: v1.driver_key,
        })
    }

    fn put_in(
        &self,
        store: &MetadataStore,
        batch: &mut WriteBatch,
        namespace: &str,
        snapshotter: &str,
    ) -> Result<()> {
        let v1 = RecordV1 {
            kind: self.kind,
            parent: self.parent.clone(),
            labels: self.labels.clone(),
            created_at: record::to_unix_nanos(self.created_at),
            updated_at: record::to_unix_nanos(self.updated_at),
            driver_key: self.driver_key.clone(),
        };
        let key = keys::snapshot_key(namespace, snapshotter, &self.name);
        store.put_record(batch, Cf::Snapshots, &key, KIND, VERSION, &v1)
    }
}

fn counter_key(snapshotter: &str) -> Vec<u8> {
    let mut key = COUNTER_PREFIX.to_vec();
    key.extend_from_slice(snapshotter.as_bytes());
    key
}

fn intent_prefix(snapshotter: &str) -> Vec<u8> {
    let mut key = INTENT_PREFIX.to_vec();
    key.extend_from_slice(snapshotter.as_bytes());
    key.push(keys::SEPARATOR);
    key
}

fn intent_key(snapshotter: &str, id: u64) -> Vec<u8> {
    let mut key = intent_prefix(snapshotter);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn utf8<'a>(what: &str, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes)
        .map_err(|_| Error::internal(format!("metadata: {what} key {bytes:?} is not utf-8")))
}

/// One snapshotter's snapshot records and intents:
/// [`MetadataStore::snapshots`]. The snapshot store (in the core crate)
/// orders them; nothing here talks to a driver.
#[derive(Clone, Copy)]
pub struct Snapshots<'a> {
    store: &'a MetadataStore,
    snapshotter: &'a str,
}

impl MetadataStore {
    pub fn snapshots<'a>(&'a self, snapshotter: &'a str) -> Snapshots<'a> {
        Snapshots {
            store: self,
            snapshotter,
        }
    }
}

impl Snapshots<'_> {
    /// The record of `name`, if any.
    pub fn get(&self, namespace: &str, name: &str) -> Result<Option<SnapshotRecord>> {
        self.store
            .get(
                Cf::Snapshots,
                &keys::snapshot_key(namespace, self.snapshotter, name),
            )?
            .map(|value| SnapshotRecord::decode(name, &value))
            .transpose()
    }

    /// Every snapshot of one snapshotter in a namespace, ordered by name.
    pub fn list(&self, namespace: &str) -> Result<Vec<SnapshotRecord>> {
        let prefix = keys::snapshotter_prefix(namespace, self.snapshotter);
        self.store
            .scan_prefix(Cf::Snapshots, &prefix)
            .map(|item| {
                let (key, value) = item?;
                let name = utf8("snapshot", &key[prefix.len()..])?;
                SnapshotRecord::decode(name, &value)
            })
            .collect()
    }

    /// Whether any snapshot in the namespace names `parent` as its parent.
    pub fn has_children(&self, namespace: &str, parent: &str) -> Result<bool> {
        for record in self.list(namespace)? {
            if record.parent == parent {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The driver keys of every record of `snapshotter`, in all namespaces.
    /// Reads only this snapshotter's records: one seek per namespace that
    /// holds snapshots, then a prefix scan of `namespace \0 snapshotter \0`
    /// (other snapshotters' records are skipped over, not read).
    pub fn driver_keys(&self) -> Result<HashSet<String>> {
        let mut found = HashSet::new();
        for namespace in self.store.distinct_children(Cf::Snapshots, b"")? {
            let prefix = keys::snapshotter_prefix(&namespace, self.snapshotter);
            for item in self.store.scan_prefix(Cf::Snapshots, &prefix) {
                let (key, value) = item?;
                let name = utf8("snapshot", &key[prefix.len()..])?;
                found.insert(SnapshotRecord::decode(name, &value)?.driver_key);
            }
        }
        Ok(found)
    }

    /// The last number handed out for `snapshotter`'s driver keys.
    pub fn counter(&self) -> Result<u64> {
        let Some(value) = self.store.get(Cf::Meta, &counter_key(self.snapshotter))? else {
            return Ok(0);
        };
        <[u8; 8]>::try_from(value.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| {
                Error::internal(format!(
                    "metadata: malformed snapshot counter of {}",
                    self.snapshotter
                ))
            })
    }

    /// Records `intent` as number `id`, with the counter at `id`. Commit and
    /// Remove intents are synced, Create intents are not (see the module
    /// documentation).
    pub fn begin_intent(&self, id: u64, intent: &Intent) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.store.cf(Cf::Meta),
            counter_key(self.snapshotter),
            id.to_be_bytes(),
        );
        self.store.put_record(
            &mut batch,
            Cf::Meta,
            &intent_key(self.snapshotter, id),
            INTENT_KIND,
            INTENT_VERSION,
            &IntentV1 {
                intent: intent.clone(),
            },
        )?;
        match intent {
            Intent::Create { .. } => self.store.write_unsynced(batch),
            Intent::Commit { .. } | Intent::Remove { .. } => self.store.write(batch),
        }
    }

    /// Every pending intent of `snapshotter`, oldest first.
    pub fn intents(&self) -> Result<Vec<(u64, Intent)>> {
        let prefix = intent_prefix(self.snapshotter);
        self.store
            .scan_prefix(Cf::Meta, &prefix)
            .map(|item| {
                let (key, value) = item?;
                let id = <[u8; 8]>::try_from(&key[prefix.len()..])
                    .map(u64::from_be_bytes)
                    .map_err(|_| {
                        Error::internal(format!("metadata: malformed intent key {key:?}"))
                    })?;
                let v1: IntentV1 = record::decode(INTENT_KIND, INTENT_VERSION, &value)?;
                Ok((id, v1.intent))
            })
            .collect()
    }

    /// Drops an intent without changing any record.
    pub fn drop_intent(&self, id: u64) -> Result<()> {
        let mut batch = WriteBatch::default();
        self.store
            .delete_in(&mut batch, Cf::Meta, &intent_key(self.snapshotter, id));
        self.store.write(batch)
    }

    /// Writes the record of a created snapshot (creating the namespace on
    /// first use) and drops intent `id`: one synced batch, the durability
    /// point of a prepare or view.
    pub fn finish_create(&self, namespace: &str, id: u64, record: &SnapshotRecord) -> Result<()> {
        self.write_record(namespace, id, record, None, true)
    }

    /// Replaces the active record `active_name` by the committed `record`
    /// and drops intent `id`. Not synced: the synced intent and the driver's
    /// durable commit let recovery redo it after a machine crash.
    pub fn finish_commit(
        &self,
        namespace: &str,
        id: u64,
        record: &SnapshotRecord,
        active_name: &str,
    ) -> Result<()> {
        self.write_record(namespace, id, record, Some(active_name), false)
    }

    /// Writes `record`, deletes the record `replaces` if given and drops
    /// intent `id` in one batch. The namespace is locked shared while it
    /// is checked and the batch written: the snapshot store's name locks
    /// keep the records themselves consistent, and concurrent writers then
    /// share one WAL sync.
    fn write_record(
        &self,
        namespace: &str,
        id: u64,
        record: &SnapshotRecord,
        replaces: Option<&str>,
        synced: bool,
    ) -> Result<()> {
        let guard = self.store.share_namespace(namespace);
        let mut batch = WriteBatch::default();
        self.store.namespaces().ensure_in(&guard, &mut batch)?;
        if let Some(old) = replaces {
            self.store.delete_in(
                &mut batch,
                Cf::Snapshots,
                &keys::snapshot_key(namespace, self.snapshotter, old),
            );
        }
        record.put_in(self.store, &mut batch, namespace, self.snapshotter)?;
        self.store
            .delete_in(&mut batch, Cf::Meta, &intent_key(self.snapshotter, id));
        if synced {
            self.store.write(batch)
        } else {
            self.store.write_unsynced(batch)
        }
    }

    /// Deletes the record `name` and drops intent `id`. Not synced: the
    /// synced intent and the driver's durable removal let recovery redo it
    /// after a machine crash.
    pub fn finish_remove(&self, namespace: &str, id: u64, name: &str) -> Result<()> {
        let mut batch = WriteBatch::default();
        self.store.delete_in(
            &mut batch,
            Cf::Snapshots,
            &keys::snapshot_key(namespace, self.snapshotter, name),
        );
        self.store
            .delete_in(&mut batch, Cf::Meta, &intent_key(self.snapshotter, id));
        self.store.note_deletion();
        self.store.write_unsynced(batch)
    }

    /// Replaces a record that involves no driver change (label updates).
    pub fn put(&self, namespace: &str, record: &SnapshotRecord) -> Result<()> {
        let mut batch = WriteBatch::default();
        record.put_in(self.store, &mut batch, namespace, self.snapshotter)?;
        self.store.write(batch)
    }
}

/// Labels as stored: checked for size, empty values dropped.
pub fn stored_labels(requested: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    labels::stored(requested)
}

/// The labels after an Update (containerd's field-mask rules, see
/// [`labels::apply_update`]).
pub fn updated_labels(
    name: &str,
    current: BTreeMap<String, String>,
    requested: BTreeMap<String, String>,
    paths: &[String],
) -> Result<BTreeMap<String, String>> {
    labels::apply_update(
        current,
        requested,
        paths,
        &format!("snapshot {name:?}"),
        |e| e,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_temp;
    use rcontainerd_pkg::errdefs::Kind;

    fn record(name: &str, kind: SnapshotKind, parent: &str, bkey: &str) -> SnapshotRecord {
        let now = SystemTime::now();
        SnapshotRecord {
            name: name.into(),
            kind,
            parent: parent.into(),
            labels: [("a".to_string(), "1".to_string())].into(),
            created_at: now,
            updated_at: now,
            driver_key: bkey.into(),
        }
    }

    use rcontainerd_pkg::labels::from_pairs as labels;

    #[test]
    fn driver_keys_are_one_snapshotters_in_every_namespace() {
        let (_dir, store) = open_temp();
        let mut id = 0;
        // "o" is a prefix of "overlay" and "a" sorts before and "z" after it in every namespace.
        for namespace in ["a", "default", "k8s.io", "z"] {
            for snapshotter in ["a", "o", "overlay", "z"] {
                for name in ["x", "y"] {
                    id += 1;
                    let key = driver_key(namespace, id, &format!("{snapshotter}-{name}"));
                    let rec = record(name, SnapshotKind::Active, "", &key);
                    store
                        .snapshots(snapshotter)
                        .finish_create(namespace, id, &rec)
                        .unwrap();
                }
            }
        }
        for snapshotter in ["a", "o", "overlay", "z"] {
            let keys = store.snapshots(snapshotter).driver_keys().unwrap();
            assert_eq!(keys.len(), 8, "{snapshotter}: {keys:?}");
            let own = format!("/{snapshotter}-");
            assert!(
                keys.iter().all(|k| k.contains(&own)),
                "{snapshotter}: {keys:?}"
            );
        }
        assert!(store.snapshots("ov").driver_keys().unwrap().is_empty());
    }

    #[test]
    fn driver_keys_carry_namespace_counter_and_name() {
        assert_eq!(driver_key("default", 7, "a/b"), "default/7/a/b");
        assert_eq!(driver_key_counter("default/7/a/b"), Some(7));
        assert_eq!(driver_key_counter("default/x/a"), None);
        assert_eq!(driver_key_counter("plain"), None);
    }

    #[test]
    fn a_record_and_its_namespace_land_together_and_drop_the_intent() {
        let (_dir, store) = open_temp();
        let intent = Intent::Create {
            driver_key: "ns/1/k".into(),
        };
        store.snapshots("native").begin_intent(1, &intent).unwrap();
        assert_eq!(store.snapshots("native").intents().unwrap(), [(1, intent)]);
        assert!(store.snapshots("overlayfs").intents().unwrap().is_empty());
        assert_eq!(store.snapshots("native").counter().unwrap(), 1);
        assert_eq!(store.snapshots("overlayfs").counter().unwrap(), 0);

        let rec = record("k", SnapshotKind::Active, "", "ns/1/k");
        store
            .snapshots("native")
            .finish_create("ns", 1, &rec)
            .unwrap();
        assert!(store.snapshots("native").intents().unwrap().is_empty());
        let read = store.snapshots("native").get("ns", "k").unwrap().unwrap();
        assert_eq!(read, rec);
        assert!(store
            .snapshots("overlayfs")
            .get("ns", "k")
            .unwrap()
            .is_none());
        // The namespace was created with the record and now cannot go.
        assert!(store.namespaces().get("ns").is_ok());
        let err = store.namespaces().delete("ns").unwrap_err();
        assert_eq!(err.kind, Kind::FailedPrecondition);
        assert!(
            err.message.contains("snapshots on \"native\" snapshotter"),
            "{err}"
        );
    }

    #[test]
    fn commit_replaces_the_active_record_and_remove_deletes() {
        let (_dir, store) = open_temp();
        let base = record("base", SnapshotKind::Committed, "", "ns/1/base");
        store
            .snapshots("n")
            .begin_intent(
                1,
                &Intent::Create {
                    driver_key: base.driver_key.clone(),
                },
            )
            .unwrap();
        store.snapshots("n").finish_create("ns", 1, &base).unwrap();
        let active = record("work", SnapshotKind::Active, "base", "ns/2/work");
        store
            .snapshots("n")
            .begin_intent(
                2,
                &Intent::Create {
                    driver_key: active.driver_key.clone(),
                },
            )
            .unwrap();
        store
            .snapshots("n")
            .finish_create("ns", 2, &active)
            .unwrap();
        assert!(store.snapshots("n").has_children("ns", "base").unwrap());
        assert!(!store.snapshots("n").has_children("ns", "work").unwrap());

        let committed = record("layer", SnapshotKind::Committed, "base", "ns/3/layer");
        store
            .snapshots("n")
            .begin_intent(
                3,
                &Intent::Commit {
                    namespace: "ns".into(),
                    active_name: "work".into(),
                    active_key: "ns/2/work".into(),
                    record: IntentRecord::from_record(&committed),
                },
            )
            .unwrap();
        store
            .snapshots("n")
            .finish_commit("ns", 3, &committed, "work")
            .unwrap();
        let names: Vec<String> = store
            .snapshots("n")
            .list("ns")
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["base", "layer"]);
        assert_eq!(
            store.snapshots("n").driver_keys().unwrap(),
            HashSet::from(["ns/1/base".to_string(), "ns/3/layer".to_string()])
        );
        assert!(store.snapshots("other").driver_keys().unwrap().is_empty());

        store
            .snapshots("n")
            .begin_intent(
                4,
                &Intent::Remove {
                    namespace: "ns".into(),
                    name: "layer".into(),
                    driver_key: "ns/3/layer".into(),
                },
            )
            .unwrap();
        store
            .snapshots("n")
            .finish_remove("ns", 4, "layer")
            .unwrap();
        assert!(store.snapshots("n").get("ns", "layer").unwrap().is_none());
        assert!(store.snapshots("n").intents().unwrap().is_empty());
        assert_eq!(store.snapshots("n").counter().unwrap(), 4);
    }

    #[test]
    fn intents_list_in_number_order_and_drop() {
        let (_dir, store) = open_temp();
        for id in [300u64, 2, 70_000] {
            store
                .snapshots("n")
                .begin_intent(
                    id,
                    &Intent::Create {
                        driver_key: format!("ns/{id}/k"),
                    },
                )
                .unwrap();
        }
        let ids: Vec<u64> = store
            .snapshots("n")
            .intents()
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, [2, 300, 70_000]);
        store.snapshots("n").drop_intent(300).unwrap();
        assert_eq!(store.snapshots("n").intents().unwrap().len(), 2);
    }

    #[test]
    fn commit_intent_round_trips_the_record() {
        let rec = record("c", SnapshotKind::Committed, "p", "ns/9/c");
        let back = IntentRecord::from_record(&rec).to_record();
        assert_eq!(back.name, "c");
        assert_eq!(back.parent, "p");
        assert_eq!(back.kind, SnapshotKind::Committed);
        assert_eq!(back.driver_key, "ns/9/c");
        assert_eq!(back.created_at, rec.created_at);
        assert_eq!(back.labels, rec.labels);
    }

    #[test]
    fn update_masks_follow_containerd() {
        let current = labels(&[("a", "1"), ("b", "2")]);
        let requested = labels(&[("a", "9"), ("c", "3"), ("e", "")]);
        assert_eq!(
            updated_labels("s", current.clone(), requested.clone(), &[]).unwrap(),
            labels(&[("a", "9"), ("c", "3")])
        );
        assert_eq!(
            updated_labels("s", current.clone(), requested.clone(), &["labels".into()]).unwrap(),
            labels(&[("a", "9"), ("c", "3")])
        );
        assert_eq!(
            updated_labels(
                "s",
                current.clone(),
                requested.clone(),
                &["labels.c".into(), "labels.b".into()]
            )
            .unwrap(),
            labels(&[("a", "1"), ("c", "3")])
        );
        let err = updated_labels("s", current, requested, &["parent".into()]).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument);
        assert_eq!(
            err.message,
            "cannot update \"parent\" field on snapshot \"s\""
        );
    }
}
