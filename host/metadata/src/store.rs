//! The RocksDB database: opening it, its column families, the schema version,
//! synced batch writes, prefix scans and the per-namespace write locks.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use rocksdb::{
    ColumnFamily, Direction, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions, DB,
    DEFAULT_COLUMN_FAMILY_NAME,
};
use serde::Serialize;

use super::gate::{CollectorHold, Gate, WriterHold};
use super::keys;
use super::record;
use rcontainerd_pkg::errdefs::{Error, Result};

/// The database directory inside the metadata plugin's root.
pub const DB_DIR_NAME: &str = "meta.rocksdb";

/// The schema this build writes. Bump it when a key layout changes or a
/// record gains a version older builds cannot read.
pub const SCHEMA_VERSION: u32 = 1;

/// Key in [`Cf::Meta`] holding the schema version (u32, big-endian).
const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";

/// Namespace write locks are striped: a fixed set, chosen by hash of the name.
const LOCK_STRIPES: usize = 64;

/// A stored key and value.
pub type Entry = (Box<[u8]>, Box<[u8]>);

/// The column families, one per record type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cf {
    Namespaces,
    Images,
    Containers,
    Leases,
    LeaseResources,
    Snapshots,
    Content,
    Ingests,
    Meta,
}

impl Cf {
    pub const ALL: [Cf; 9] = [
        Cf::Namespaces,
        Cf::Images,
        Cf::Containers,
        Cf::Leases,
        Cf::LeaseResources,
        Cf::Snapshots,
        Cf::Content,
        Cf::Ingests,
        Cf::Meta,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Namespaces => "namespaces",
            Cf::Images => "images",
            Cf::Containers => "containers",
            Cf::Leases => "leases",
            Cf::LeaseResources => "lease_resources",
            Cf::Snapshots => "snapshots",
            Cf::Content => "content",
            Cf::Ingests => "ingests",
            Cf::Meta => "meta",
        }
    }
}

/// The daemon's metadata: one RocksDB shared by all services (`Send + Sync`;
/// every call is synchronous and may block on disk).
pub struct MetadataStore {
    db: DB,
    path: PathBuf,
    sync_write: WriteOptions,
    locks: Box<[RwLock<()>]>,
    gate: Gate,
    /// Synced writes and deletions so far: what the gc scheduler's
    /// thresholds count.
    mutations: AtomicU64,
    deletions: AtomicU64,
    /// The metadata plugin's `content_sharing_policy` is "shared".
    content_sharing: AtomicBool,
}

/// Holds the lock of one namespace, shared or exclusive. Every mutation that
/// must see a consistent namespace (create a record in it, delete it) runs
/// under it.
pub struct NamespaceGuard<'a> {
    namespace: &'a str,
    // One of the two is held, for its Drop.
    _shared: Option<RwLockReadGuard<'a, ()>>,
    _exclusive: Option<RwLockWriteGuard<'a, ()>>,
    // Released after the namespace lock (fields drop in order).
    _writer: WriterHold<'a>,
}

// The gRPC services share one store through an `Arc` across threads.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<MetadataStore>()
};

impl NamespaceGuard<'_> {
    pub fn namespace(&self) -> &str {
        self.namespace
    }
}

impl std::fmt::Debug for MetadataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl MetadataStore {
    /// Opens (creating if missing) the database at `dir/meta.rocksdb`, where
    /// `dir` is `<root>/io.containerd.metadata.v1.bolt`.
    pub fn open(dir: &Path) -> Result<MetadataStore> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::internal(format!("metadata: create directory {}: {e}", dir.display()))
        })?;
        let path = dir.join(DB_DIR_NAME);
        let options = db_options();
        let names = Cf::ALL.map(Cf::name);
        let db = DB::open_cf(&options, &path, names).map_err(|e| open_error(&path, e))?;

        let mut sync_write = WriteOptions::default();
        sync_write.set_sync(true);
        let store = MetadataStore {
            db,
            path,
            sync_write,
            locks: (0..LOCK_STRIPES).map(|_| RwLock::new(())).collect(),
            gate: Gate::default(),
            mutations: AtomicU64::new(0),
            deletions: AtomicU64::new(0),
            content_sharing: AtomicBool::new(true),
        };
        store.check_schema_version()?;
        Ok(store)
    }

    /// Writes every column family's memtable to SST files and syncs the WAL,
    /// for a clean shutdown: RocksDB does not flush at close while the WAL is
    /// on, so without this the next open replays every write since the last
    /// flush (seconds after a large fill) and keeps each WAL file it wrote.
    /// Once every family is flushed those WAL files are obsolete and RocksDB
    /// deletes them. Durability does not depend on it: the WAL stays on.
    pub fn flush(&self) -> Result<()> {
        let default = self
            .db
            .cf_handle(DEFAULT_COLUMN_FAMILY_NAME)
            .ok_or_else(|| Error::internal("metadata: default column family is missing"))?;
        // `meta` last: see below.
        let families: Vec<(&str, &ColumnFamily)> = std::iter::once(("default", default))
            .chain(Cf::ALL.into_iter().map(|cf| (cf.name(), self.cf(cf))))
            .filter(|(name, _)| *name != Cf::Meta.name())
            .chain(std::iter::once((Cf::Meta.name(), self.cf(Cf::Meta))))
            .collect();
        // RocksDB skips the flush of an empty memtable, so after a start that
        // wrote nothing no flush would run, and the manifest's oldest WAL to
        // keep (computed by a flush from every family's log number) would not
        // move: one more empty WAL file per start (21 after 22 starts). A
        // deletion of the empty key (never a record: keys start with a
        // non-empty identifier) gives `meta` something to flush; flushed after
        // the others, its flush sees every family past the old WAL files.
        // One family only, so a stop adds one tiny SST file, not one per family.
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(Cf::Meta), b"");
        self.db
            .write_opt(batch, &WriteOptions::default())
            .map_err(|e| storage_error("flush marker", e))?;
        self.db
            .flush_wal(true)
            .map_err(|e| storage_error("sync wal", e))?;
        for (name, cf) in families {
            self.db
                .flush_cf(cf)
                .map_err(|e| storage_error(&format!("flush {name}"), e))?;
        }
        Ok(())
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records the schema version on first open; refuses a database written
    /// by a newer schema.
    fn check_schema_version(&self) -> Result<()> {
        let Some(stored) = self.get(Cf::Meta, SCHEMA_VERSION_KEY)? else {
            let mut batch = WriteBatch::default();
            batch.put_cf(
                self.cf(Cf::Meta),
                SCHEMA_VERSION_KEY,
                SCHEMA_VERSION.to_be_bytes(),
            );
            return self.write(batch);
        };
        let version = <[u8; 4]>::try_from(stored.as_slice())
            .map(u32::from_be_bytes)
            .map_err(|_| {
                Error::internal(format!(
                    "metadata database {}: malformed schema version ({} bytes)",
                    self.path.display(),
                    stored.len()
                ))
            })?;
        match version {
            SCHEMA_VERSION => Ok(()),
            newer if newer > SCHEMA_VERSION => Err(Error::failed_precondition(format!(
                "metadata database {} has schema version {newer}, newer than the version \
                 {SCHEMA_VERSION} this rcontainerd understands; run a newer rcontainerd",
                self.path.display()
            ))),
            older => Err(Error::failed_precondition(format!(
                "metadata database {} has schema version {older}, which this rcontainerd \
                 cannot migrate to {SCHEMA_VERSION}",
                self.path.display()
            ))),
        }
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> Result<u32> {
        let stored = self
            .get(Cf::Meta, SCHEMA_VERSION_KEY)?
            .ok_or_else(|| Error::internal("metadata: schema version missing"))?;
        <[u8; 4]>::try_from(stored.as_slice())
            .map(u32::from_be_bytes)
            .map_err(|_| Error::internal("metadata: malformed schema version"))
    }

    pub(crate) fn cf(&self, cf: Cf) -> &ColumnFamily {
        // Every family is created by `open` (create_missing_column_families).
        self.db
            .cf_handle(cf.name())
            .expect("column family created at open")
    }

    /// Takes the lock of `namespace` exclusively: for creating, changing or
    /// deleting the namespace, and for read-modify-writes of its records.
    pub fn lock_namespace<'a>(&'a self, namespace: &'a str) -> NamespaceGuard<'a> {
        let writer = self.gate.hold();
        // The lock guards no data, so a panic elsewhere cannot leave it inconsistent.
        let lock = self
            .stripe(namespace)
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        NamespaceGuard {
            namespace,
            _shared: None,
            _exclusive: Some(lock),
            _writer: writer,
        }
    }

    /// Takes the lock of `namespace` shared: for writers whose records are
    /// kept consistent by a lock of their own (the snapshot stores' name
    /// locks) and only need the namespace to stay. Shared holders write
    /// concurrently, so their synced batches share one WAL sync.
    pub fn share_namespace<'a>(&'a self, namespace: &'a str) -> NamespaceGuard<'a> {
        let writer = self.gate.hold();
        let lock = self
            .stripe(namespace)
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        NamespaceGuard {
            namespace,
            _shared: Some(lock),
            _exclusive: None,
            _writer: writer,
        }
    }

    /// Holds garbage collection off until dropped: for an operation whose
    /// writes must be seen by a collection all or none (see `gate.rs`).
    /// Namespace locks take it too; holds nest.
    pub fn hold_off_gc(&self) -> WriterHold<'_> {
        self.gate.hold()
    }

    /// For a collection: waits for every writer to finish and keeps new
    /// ones out until dropped. Readers go on.
    pub(crate) fn exclude_writers(&self) -> CollectorHold<'_> {
        self.gate.exclude_writers()
    }

    fn stripe(&self, namespace: &str) -> &RwLock<()> {
        let mut hasher = DefaultHasher::new();
        namespace.hash(&mut hasher);
        &self.locks[(hasher.finish() % self.locks.len() as u64) as usize]
    }

    /// How many times the WAL was synced (statistics are on in test builds
    /// and with the `wal-stats` feature, which the core's tests use).
    #[cfg(any(test, feature = "wal-stats"))]
    pub fn wal_syncs(&self) -> u64 {
        let stats = self
            .property("rocksdb.options-statistics")
            .expect("statistics enabled");
        stats
            .lines()
            .find_map(|line| line.strip_prefix("rocksdb.wal.synced COUNT : "))
            .expect("wal.synced ticker")
            .trim()
            .parse()
            .unwrap()
    }

    /// Reads one value.
    pub(crate) fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db
            .get_cf(self.cf(cf), key)
            .map_err(|e| storage_error(&format!("read {}", cf.name()), e))
    }

    /// Whether a key exists (no copy of the value).
    pub(crate) fn contains(&self, cf: Cf, key: &[u8]) -> Result<bool> {
        self.db
            .get_pinned_cf(self.cf(cf), key)
            .map(|v| v.is_some())
            .map_err(|e| storage_error(&format!("read {}", cf.name()), e))
    }

    /// Writes a batch durably: once this returns, the batch survives a crash
    /// of the process or the machine.
    pub(crate) fn write(&self, batch: WriteBatch) -> Result<()> {
        self.write_uncounted(batch)?;
        self.mutations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// [`Self::write`] without counting it as a mutation (a collection's own sweep).
    pub(crate) fn write_uncounted(&self, batch: WriteBatch) -> Result<()> {
        self.db
            .write_opt(batch, &self.sync_write)
            .map_err(|e| storage_error("write batch", e))
    }

    /// Counts a removal of a record that may have held something: the gc
    /// scheduler collects after deletions.
    pub(crate) fn note_deletion(&self) {
        self.deletions.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets containerd's `content_sharing_policy`: shared (`true`, the
    /// default) or isolated.
    pub fn set_content_sharing(&self, shared: bool) {
        self.content_sharing.store(shared, Ordering::Relaxed);
    }

    /// Whether a namespace may take a blob another namespace holds without
    /// sending its bytes (see the content store's writer).
    pub fn shares_content(&self) -> bool {
        self.content_sharing.load(Ordering::Relaxed)
    }

    /// Synced writes and deletions since the store opened.
    pub fn activity(&self) -> (u64, u64) {
        (
            self.mutations.load(Ordering::Relaxed),
            self.deletions.load(Ordering::Relaxed),
        )
    }

    /// Writes `batch` to the WAL without waiting for the disk. Only for
    /// records whose loss in a machine crash is repaired at start (the next
    /// synced write makes it durable too: the WAL is synced in order).
    pub(crate) fn write_unsynced(&self, batch: WriteBatch) -> Result<()> {
        self.db
            .write_opt(batch, &WriteOptions::default())
            .map_err(|e| storage_error("write batch", e))?;
        self.mutations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Adds a versioned record to `batch`.
    pub(crate) fn put_record<T: Serialize>(
        &self,
        batch: &mut WriteBatch,
        cf: Cf,
        key: &[u8],
        kind: &str,
        version: u8,
        record: &T,
    ) -> Result<()> {
        let value = record::encode(kind, version, record)?;
        batch.put_cf(self.cf(cf), key, value);
        Ok(())
    }

    /// Adds the deletion of one key to `batch`.
    pub(crate) fn delete_in(&self, batch: &mut WriteBatch, cf: Cf, key: &[u8]) {
        batch.delete_cf(self.cf(cf), key);
    }

    /// Every key and value starting with `prefix`, in key order.
    pub(crate) fn scan_prefix<'a>(
        &'a self,
        cf: Cf,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = Result<Entry>> + 'a {
        let mut read = ReadOptions::default();
        if let Some(end) = keys::prefix_end(prefix) {
            read.set_iterate_upper_bound(end);
        }
        self.db
            .iterator_cf_opt(
                self.cf(cf),
                read,
                IteratorMode::From(prefix, Direction::Forward),
            )
            .map(move |item| item.map_err(|e| storage_error(&format!("scan {}", cf.name()), e)))
            .take_while(move |item| match item {
                Ok((key, _)) => key.starts_with(prefix),
                Err(_) => true,
            })
    }

    /// Every record of `namespace` in family `cf` whose key is `namespace \0
    /// name`, decoded by `decode(name, value)`, in name order.
    pub(crate) fn list_named<T>(
        &self,
        cf: Cf,
        namespace: &str,
        decode: impl Fn(&str, &[u8]) -> Result<T>,
    ) -> Result<Vec<T>> {
        let prefix = keys::namespace_prefix(namespace);
        self.scan_prefix(cf, &prefix)
            .map(|item| {
                let (key, value) = item?;
                let name = keys::strip_prefix(&key, &prefix)
                    .and_then(|name| std::str::from_utf8(name).ok())
                    .ok_or_else(|| {
                        Error::internal(format!("metadata: {} key {key:?} is not utf-8", cf.name()))
                    })?;
                decode(name, &value)
            })
            .collect()
    }

    /// Whether no key starts with `prefix`.
    pub(crate) fn is_prefix_empty(&self, cf: Cf, prefix: &[u8]) -> Result<bool> {
        match self.scan_prefix(cf, prefix).next() {
            None => Ok(true),
            Some(Ok(_)) => Ok(false),
            Some(Err(e)) => Err(e),
        }
    }

    /// Adds the deletion of every key starting with `prefix` to `batch`;
    /// returns how many.
    pub(crate) fn delete_prefix_in(
        &self,
        batch: &mut WriteBatch,
        cf: Cf,
        prefix: &[u8],
    ) -> Result<usize> {
        let mut deleted = 0;
        for item in self.scan_prefix(cf, prefix) {
            let (key, _) = item?;
            batch.delete_cf(self.cf(cf), key);
            deleted += 1;
        }
        Ok(deleted)
    }

    /// The distinct first key parts after `prefix` (e.g. the snapshotters
    /// that hold snapshots in a namespace), skipping over each group with
    /// one seek rather than reading every key.
    pub(crate) fn distinct_children(&self, cf: Cf, prefix: &[u8]) -> Result<Vec<String>> {
        let mut read = ReadOptions::default();
        if let Some(end) = keys::prefix_end(prefix) {
            read.set_iterate_upper_bound(end);
        }
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(cf), read);
        let mut children = Vec::new();
        iter.seek(prefix);
        while let Some(key) = iter.key() {
            let Some(rest) = keys::strip_prefix(key, prefix) else {
                break;
            };
            let (child, _) = keys::split_first(rest);
            let child = child.to_vec();
            // Next group: the first key past `prefix child \0 …`.
            let mut group = prefix.to_vec();
            group.extend_from_slice(&child);
            group.push(keys::SEPARATOR);
            children.push(String::from_utf8_lossy(&child).into_owned());
            match keys::prefix_end(&group) {
                Some(next) => iter.seek(next),
                None => break,
            }
        }
        iter.status()
            .map_err(|e| storage_error(&format!("scan {}", cf.name()), e))?;
        Ok(children)
    }

    /// A RocksDB property, for tests and diagnostics.
    #[cfg(any(test, feature = "wal-stats"))]
    pub(crate) fn property(&self, name: &str) -> Option<String> {
        self.db.property_value(name).ok().flatten()
    }
}

fn db_options() -> Options {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    // RocksDB's info log rotates on every open; keep a few, not a thousand.
    options.set_keep_log_file_num(4);
    #[cfg(any(test, feature = "wal-stats"))]
    options.enable_statistics();
    options
}

fn storage_error(what: &str, e: rocksdb::Error) -> Error {
    Error::internal(format!("metadata: {what}: {e}"))
}

fn open_error(path: &Path, e: rocksdb::Error) -> Error {
    let text = e.to_string();
    // RocksDB holds an flock on <db>/LOCK for as long as a handle is open.
    if text.contains("LOCK") || text.contains("lock") {
        Error::unavailable(format!(
            "metadata database {} is in use by another process or store: {text}",
            path.display()
        ))
    } else {
        Error::internal(format!(
            "metadata: open database {}: {text}",
            path.display()
        ))
    }
}

/// A store in a fresh temporary root, for the metadata modules' tests.
#[cfg(test)]
pub(crate) fn open_temp() -> (tempfile::TempDir, MetadataStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(&dir.path().join("io.containerd.metadata.v1.bolt")).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcontainerd_pkg::errdefs::Kind;

    #[test]
    fn open_creates_every_column_family_and_records_the_schema() {
        let (dir, store) = open_temp();
        let db_path = dir
            .path()
            .join("io.containerd.metadata.v1.bolt/meta.rocksdb");
        assert_eq!(store.path(), db_path);
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        drop(store);
        let mut families = DB::list_cf(&Options::default(), &db_path).unwrap();
        families.sort();
        let mut expected: Vec<String> = Cf::ALL.iter().map(|cf| cf.name().to_string()).collect();
        expected.push("default".to_string());
        expected.sort();
        assert_eq!(families, expected);
    }

    #[test]
    fn refuses_a_newer_schema_and_keeps_it() {
        let (dir, store) = open_temp();
        let mut batch = WriteBatch::default();
        batch.put_cf(store.cf(Cf::Meta), SCHEMA_VERSION_KEY, 7u32.to_be_bytes());
        store.write(batch).unwrap();
        drop(store);
        let meta_dir = dir.path().join("io.containerd.metadata.v1.bolt");
        let err = MetadataStore::open(&meta_dir).unwrap_err();
        assert_eq!(err.kind, Kind::FailedPrecondition);
        assert!(
            err.message.contains("schema version 7, newer than"),
            "{err}"
        );
        // The refused open must not have rewritten the version.
        let db = DB::open_cf(
            &Options::default(),
            meta_dir.join(DB_DIR_NAME),
            Cf::ALL.map(Cf::name),
        )
        .unwrap();
        let stored = db
            .get_cf(db.cf_handle("meta").unwrap(), SCHEMA_VERSION_KEY)
            .unwrap();
        assert_eq!(stored, Some(7u32.to_be_bytes().to_vec()));
    }

    #[test]
    fn second_open_of_the_same_database_is_unavailable() {
        let (dir, _store) = open_temp();
        let err =
            MetadataStore::open(&dir.path().join("io.containerd.metadata.v1.bolt")).unwrap_err();
        assert_eq!(err.kind, Kind::Unavailable, "{err}");
        assert!(err.message.contains("in use"), "{err}");
    }

    #[test]
    fn writes_are_synced_to_the_wal() {
        let (_dir, store) = open_temp();
        let synced_before = store.wal_syncs();
        let mut batch = WriteBatch::default();
        batch.put_cf(store.cf(Cf::Images), b"ns\0a", b"1");
        store.write(batch).unwrap();
        assert!(
            store.wal_syncs() > synced_before,
            "write did not sync the WAL"
        );
    }

    /// Bytes in the database's WAL files and how many there are.
    fn wal_files(db: &Path) -> (u64, usize) {
        let logs: Vec<u64> = std::fs::read_dir(db)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| e.metadata().unwrap().len())
            .collect();
        (logs.iter().sum(), logs.len())
    }

    #[test]
    fn a_flushed_store_leaves_no_wal_to_replay_and_no_stale_wal_files() {
        let (dir, store) = open_temp();
        let root = dir.path().join("io.containerd.metadata.v1.bolt");
        let db = store.path().to_path_buf();
        drop(store);
        for round in 0..20u8 {
            let store = MetadataStore::open(&root).unwrap();
            // Every other start writes nothing (a restart that serves only reads).
            if round % 2 == 0 {
                let mut batch = WriteBatch::default();
                batch.put_cf(store.cf(Cf::Images), [b'n', b's', 0, round], b"v");
                batch.put_cf(store.cf(Cf::Meta), [b'k', round], b"v");
                store.write(batch).unwrap();
                assert!(wal_files(&db).0 > 0, "the write went to the WAL");
            }
            store.flush().unwrap();
            drop(store);
            // Obsolete WAL files are deleted right after the flush job, on RocksDB's thread.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while wal_files(&db).0 > 0 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert_eq!(wal_files(&db).0, 0, "round {round}: WAL still holds writes");
        }
        // A few empty WAL files from the shutdown flush's memtable switches, not one per start.
        assert!(
            wal_files(&db).1 <= Cf::ALL.len() + 3,
            "WAL files pile up: {:?}",
            wal_files(&db)
        );
        let store = MetadataStore::open(&root).unwrap();
        for round in (0..20u8).step_by(2) {
            assert!(store
                .get(Cf::Images, &[b'n', b's', 0, round])
                .unwrap()
                .is_some());
        }
    }

    #[test]
    fn scan_prefix_stays_inside_the_namespace() {
        let (_dir, store) = open_temp();
        let mut batch = WriteBatch::default();
        for key in [&b"ns\0a"[..], b"ns\0b", b"ns1\0a", b"nr\0z", b"ns\x01x"] {
            batch.put_cf(store.cf(Cf::Images), key, b"v");
        }
        store.write(batch).unwrap();
        let found: Vec<Box<[u8]>> = store
            .scan_prefix(Cf::Images, b"ns\0")
            .map(|item| item.unwrap().0)
            .collect();
        assert_eq!(found, [Box::from(&b"ns\0a"[..]), Box::from(&b"ns\0b"[..])]);
        assert!(!store.is_prefix_empty(Cf::Images, b"ns1\0").unwrap());
        assert!(store.is_prefix_empty(Cf::Images, b"n\0").unwrap());
        assert!(store.is_prefix_empty(Cf::Containers, b"ns\0").unwrap());

        let mut batch = WriteBatch::default();
        assert_eq!(
            store
                .delete_prefix_in(&mut batch, Cf::Images, b"ns\0")
                .unwrap(),
            2
        );
        store.write(batch).unwrap();
        assert!(store.is_prefix_empty(Cf::Images, b"ns\0").unwrap());
        assert!(!store.is_prefix_empty(Cf::Images, b"ns1\0").unwrap());
    }

    #[test]
    fn distinct_children_lists_each_snapshotter_once() {
        let (_dir, store) = open_temp();
        let mut batch = WriteBatch::default();
        for (ns, sn, name) in [
            ("ns", "native", "a"),
            ("ns", "native", "b"),
            ("ns", "overlayfs", "a"),
            ("ns", "overlayfs", "z\0with-nul"),
            ("ns1", "btrfs", "a"),
        ] {
            batch.put_cf(
                store.cf(Cf::Snapshots),
                keys::snapshot_key(ns, sn, name),
                b"v",
            );
        }
        store.write(batch).unwrap();
        let prefix = keys::namespace_prefix("ns");
        assert_eq!(
            store.distinct_children(Cf::Snapshots, &prefix).unwrap(),
            ["native", "overlayfs"]
        );
        assert!(store
            .distinct_children(Cf::Snapshots, &keys::namespace_prefix("other"))
            .unwrap()
            .is_empty());
    }
}
