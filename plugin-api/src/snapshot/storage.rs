//! A crash-safe record store for snapshotter backends (feature `storage`): key → id, kind,
//! parent, labels and times, with containerd's snapshot model rules (one key space, only
//! committed snapshots are parents, commit moves an active key to a new name, a snapshot with
//! children cannot be removed).
//!
//! Records live in memory and in an append-only journal, `<dir>/metadata.journal`. Each
//! mutation appends one entry — `[length u32 LE][crc32 u32 LE][JSON operations]` — and is
//! flushed with `fdatasync` before the call returns. Opening replays the journal and drops a
//! torn or corrupt tail; when dead entries dominate, the journal is rewritten to a temporary
//! file, synced and renamed over the old one. A journal beats one file per snapshot here
//! because a Prepare+Commit pair costs two appends and two data syncs on one open file, with
//! no directory metadata to sync; and the sync runs after the lock is released, so
//! concurrent callers share the flushes (a later sync covers every earlier append).
//!
//! Backends create their on-disk layer inside [`MetaStore::create`] (before the record is
//! written) and delete it after [`MetaStore::remove`] (after the record is gone), so a crash
//! at any point leaves at most a layer directory without a record, which [`MetaStore::ids`]
//! lets the backend's cleanup find.

use std::{
    collections::{HashMap, HashSet},
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use super::{Info, Kind, Labels, Usage};
use crate::{PluginError, Result};

/// The journal's file name inside the store's directory.
pub const JOURNAL_FILE: &str = "metadata.journal";

/// Rewrite the journal once it holds this many entries more than one and a half per live record
/// (see [`needs_compaction`]).
#[cfg(not(test))]
const COMPACT_SLACK: usize = 4096;
#[cfg(test)]
const COMPACT_SLACK: usize = 64;

/// Whether a journal of `entries` entries holding `records` live records is worth rewriting. A
/// snapshot made by Prepare + Commit costs two entries, so a bound of four per record (the old
/// one) was never reached by a store that only grows, and every open parsed twice the entries it
/// kept. At 1.5 per record a growing store compacts each time it has grown by about its own size
/// (amortised: each entry is rewritten a bounded number of times), and the slack keeps small
/// stores from rewriting at all.
fn needs_compaction(entries: usize, records: usize) -> bool {
    entries > COMPACT_SLACK + records + records / 2
}

/// What a backend needs to lay out or mount a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The backend id, unique for the store's lifetime (never reused).
    pub id: u64,
    pub kind: Kind,
    /// Ids of the parent chain, nearest parent first.
    pub parent_ids: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredKind {
    View,
    Active,
    Committed,
}

impl From<Kind> for StoredKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::View => StoredKind::View,
            Kind::Active => StoredKind::Active,
            Kind::Committed => StoredKind::Committed,
        }
    }
}

impl From<StoredKind> for Kind {
    fn from(kind: StoredKind) -> Self {
        match kind {
            StoredKind::View => Kind::View,
            StoredKind::Active => Kind::Active,
            StoredKind::Committed => Kind::Committed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    key: String,
    id: u64,
    kind: StoredKind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    parent: String,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    labels: Labels,
    created: i64,
    updated: i64,
}

impl Record {
    fn info(&self) -> Info {
        Info {
            kind: self.kind.into(),
            name: self.key.clone(),
            parent: self.parent.clone(),
            labels: self.labels.clone(),
            created: self.created,
            updated: self.updated,
        }
    }
}

/// One journal operation; an entry is a list applied together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    Put(Record),
    Delete(String),
    /// The id counter, written by compaction (ids of deleted records are never reused).
    NextId(u64),
}

#[derive(Debug)]
struct State {
    journal: Arc<File>,
    records: HashMap<String, Record>,
    /// Number of children per parent key (pending creations included).
    children: HashMap<String, usize>,
    /// Keys being created: reserved while their layer is made outside the lock.
    pending: HashMap<String, (u64, Kind)>,
    next_id: u64,
    entries: usize,
    /// Sequence number of the last append.
    appended: u64,
}

impl State {
    fn apply(&mut self, op: Op) {
        match op {
            Op::Put(record) => {
                self.next_id = self.next_id.max(record.id + 1);
                // Counted before the insert, which takes the record without a copy.
                if !record.parent.is_empty() {
                    match self.children.get_mut(&record.parent) {
                        Some(count) => *count += 1,
                        None => {
                            self.children.insert(record.parent.clone(), 1);
                        }
                    }
                }
                if let Some(old) = self.records.insert(record.key.clone(), record) {
                    self.forget_child(&old.parent);
                }
            }
            Op::Delete(key) => {
                if let Some(old) = self.records.remove(&key) {
                    self.forget_child(&old.parent);
                }
            }
            Op::NextId(next) => self.next_id = self.next_id.max(next),
        }
    }

    /// Drops the reservation of a creation under way (the record's Put counts the child again).
    fn unreserve(&mut self, key: &str, parent: &str) {
        self.pending.remove(key);
        self.forget_child(parent);
    }

    fn forget_child(&mut self, parent: &str) {
        if let Some(count) = self.children.get_mut(parent) {
            *count -= 1;
            if *count == 0 {
                self.children.remove(parent);
            }
        }
    }

    fn get(&self, key: &str) -> Result<&Record> {
        self.records
            .get(key)
            .ok_or_else(|| PluginError::not_found(format!("snapshot {key} does not exist")))
    }

    fn snapshot(&self, record: &Record) -> Snapshot {
        let mut parent_ids = Vec::new();
        let mut parent = &record.parent;
        while let Some(p) = self.records.get(parent) {
            parent_ids.push(p.id);
            parent = &p.parent;
        }
        Snapshot {
            id: record.id,
            kind: record.kind.into(),
            parent_ids,
        }
    }
}

/// The record store. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct MetaStore {
    dir: PathBuf,
    state: Mutex<State>,
    /// Sequence number up to which the journal is known to be on disk. Taken before `state`,
    /// never while holding it.
    synced: Mutex<u64>,
}

/// A key reserved by [`MetaStore::create`] while its layer is made. Released by
/// [`Reservation::release`], or on drop, so that a `make` that panics does not hold the key and
/// its parent forever.
struct Reservation<'a> {
    store: &'a MetaStore,
    key: &'a str,
    parent: &'a str,
    released: bool,
}

impl<'a> Reservation<'a> {
    /// Ends the reservation and returns the store still locked, for the record to take its place.
    fn release(mut self) -> MutexGuard<'a, State> {
        let mut state = self.store.lock();
        state.unreserve(self.key, self.parent);
        self.released = true;
        state
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.released {
            self.store.lock().unreserve(self.key, self.parent);
        }
    }
}

/// Unix nanoseconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

impl MetaStore {
    /// Opens (or creates) the store in `dir`, replaying its journal.
    pub fn open(dir: &Path) -> Result<MetaStore> {
        fs::create_dir_all(dir)
            .map_err(|err| io_error(format_args!("create {}", dir.display()), err))?;
        let path = dir.join(JOURNAL_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|err| io_error(format_args!("open {}", path.display()), err))?;
        // One read of the whole file, sized up front.
        let size = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
        let mut bytes = Vec::with_capacity(size);
        file.read_to_end(&mut bytes)
            .map_err(|err| io_error(format_args!("read {}", path.display()), err))?;
        let mut state = State {
            journal: Arc::new(file),
            // A record entry is a few hundred bytes: room for most stores without rehashing.
            records: HashMap::with_capacity(bytes.len() / 256),
            children: HashMap::new(),
            pending: HashMap::new(),
            next_id: 1,
            entries: 0,
            appended: 0,
        };
        // Each entry is applied as it is decoded: no list of every entry is built.
        let mut entries = 0;
        let good = decode_entries(&bytes, |ops| {
            entries += 1;
            for op in ops {
                state.apply(op);
            }
        });
        state.entries = entries;
        if good < bytes.len() {
            // A torn or corrupt tail: the mutation it held never returned success.
            state
                .journal
                .set_len(good as u64)
                .and_then(|()| state.journal.sync_data())
                .map_err(|err| io_error(format_args!("truncate {}", path.display()), err))?;
        }
        drop(bytes);
        let store = MetaStore {
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
            synced: Mutex::new(0),
        };
        {
            // Superseded entries would otherwise be parsed again at every open.
            let mut state = store.lock();
            if needs_compaction(state.entries, state.records.len()) {
                store.compact(&mut state)?;
            }
        }
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // State is only changed after a successful append, so it is consistent after a panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends `ops` to the journal and applies them; returns the entry's sequence number, to
    /// [`MetaStore::sync`] once the lock is released.
    fn append(&self, state: &mut State, ops: Vec<Op>) -> Result<u64> {
        let entry = encode_entry(&ops);
        let mut file: &File = &state.journal;
        let before = file
            .metadata()
            .map_err(|err| io_error("stat snapshot journal", err))?
            .len();
        if let Err(err) = file.write_all(&entry) {
            // Leave no partial entry for the next append to follow.
            let _ = file.set_len(before);
            return Err(io_error("append to snapshot journal", err));
        }
        state.entries += 1;
        state.appended += 1;
        for op in ops {
            state.apply(op);
        }
        if needs_compaction(state.entries, state.records.len()) {
            self.compact(state)?;
        }
        Ok(state.appended)
    }

    /// Makes the journal durable up to entry `seq`. Callers arriving while another flush runs
    /// wait for it and then often find their entry already covered: one `fdatasync` serves
    /// every append made before it started (group commit).
    fn sync(&self, seq: u64) -> Result<()> {
        let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        if *synced >= seq {
            return Ok(());
        }
        let (journal, upto) = {
            let state = self.lock();
            (state.journal.clone(), state.appended)
        };
        journal
            .sync_data()
            .map_err(|err| PluginError::internal(format!("sync snapshot journal: {err}")))?;
        *synced = upto;
        Ok(())
    }

    /// Rewrites the journal with one entry per live record.
    fn compact(&self, state: &mut State) -> Result<()> {
        let path = self.dir.join(JOURNAL_FILE);
        let tmp = self.dir.join(format!("{JOURNAL_FILE}.tmp"));
        let mut bytes = encode_entry(&[Op::NextId(state.next_id)]);
        for record in state.records.values() {
            bytes.extend(encode_entry(&[Op::Put(record.clone())]));
        }
        let write = || -> io::Result<File> {
            let mut file = File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()?;
            OpenOptions::new().read(true).append(true).open(&path)
        };
        let file = write().map_err(|err| io_error("compact snapshot journal", err))?;
        state.journal = Arc::new(file);
        state.entries = state.records.len() + 1;
        Ok(())
    }

    /// The record of `key`.
    pub fn stat(&self, key: &str) -> Result<Info> {
        Ok(self.lock().get(key)?.info())
    }

    /// The record of `key` with what the backend needs to find its layers.
    pub fn snapshot(&self, key: &str) -> Result<(Info, Snapshot)> {
        let state = self.lock();
        let record = state.get(key)?;
        Ok((record.info(), state.snapshot(record)))
    }

    /// Creates the active snapshot or view `key` on `parent` (empty for none). `make` lays out
    /// the backend's layer; the record is written only if it succeeds (on failure `make` removes
    /// what it created). `make` runs without the store's lock, so creations proceed side by side:
    /// meanwhile `key` is reserved, `parent` counts it as a child and its id as in use.
    pub fn create(
        &self,
        kind: Kind,
        key: &str,
        parent: &str,
        labels: Labels,
        make: impl FnOnce(&Snapshot) -> Result<()>,
    ) -> Result<Snapshot> {
        if kind == Kind::Committed {
            return Err(PluginError::invalid_argument(format!(
                "snapshot {key}: cannot create a committed snapshot directly"
            )));
        }
        if key.is_empty() {
            return Err(PluginError::invalid_argument("snapshot key is required"));
        }
        let mut state = self.lock();
        if state.records.contains_key(key) || state.pending.contains_key(key) {
            return Err(PluginError::already_exists(format!("snapshot {key}")));
        }
        let mut parent_ids = Vec::new();
        if !parent.is_empty() {
            let record = state.records.get(parent).ok_or_else(|| {
                PluginError::not_found(format!("parent snapshot {parent} does not exist"))
            })?;
            if record.kind != StoredKind::Committed {
                return Err(PluginError::invalid_argument(format!(
                    "parent {parent:?} is not committed snapshot"
                )));
            }
            parent_ids.push(record.id);
            parent_ids.extend(state.snapshot(record).parent_ids);
        }
        let snapshot = Snapshot {
            id: state.next_id,
            kind,
            parent_ids,
        };
        // Reserve the id even if `make` fails, so a half-made layer is never reused.
        state.next_id += 1;
        state.pending.insert(key.to_string(), (snapshot.id, kind));
        if !parent.is_empty() {
            *state.children.entry(parent.to_string()).or_default() += 1;
        }
        drop(state);
        let reservation = Reservation {
            store: self,
            key,
            parent,
            released: false,
        };

        let made = make(&snapshot);

        // Released and replaced by the record under one lock, so no other creation of `key`
        // can slip in between.
        let mut state = reservation.release();
        made?;
        let time = now();
        let record = Record {
            key: key.to_string(),
            id: snapshot.id,
            kind: kind.into(),
            parent: parent.to_string(),
            labels,
            created: time,
            updated: time,
        };
        let seq = self.append(&mut state, vec![Op::Put(record)])?;
        drop(state);
        self.sync(seq)?;
        Ok(snapshot)
    }

    /// Updates labels as [`Snapshotter::update`](super::Snapshotter::update) describes.
    pub fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        let mut state = self.lock();
        let mut record = state.get(&info.name)?.clone();
        if fieldpaths.is_empty() {
            record.labels = info.labels.clone();
        }
        for path in fieldpaths {
            if path == "labels" {
                record.labels = info.labels.clone();
            } else if let Some(label) = path.strip_prefix("labels.") {
                match info.labels.get(label) {
                    Some(value) => record.labels.insert(label.to_string(), value.clone()),
                    None => record.labels.remove(label),
                };
            } else {
                return Err(PluginError::invalid_argument(format!(
                    "cannot update {path:?} field on snapshot {:?}",
                    info.name
                )));
            }
        }
        record.updated = now();
        let info = record.info();
        let seq = self.append(&mut state, vec![Op::Put(record)])?;
        drop(state);
        self.sync(seq)?;
        Ok(info)
    }

    /// Turns the active snapshot `key` into the committed snapshot `name`, keeping its id.
    /// `seal` runs first, while the store is locked (e.g. to make the layer read-only); the
    /// record changes only if it succeeds.
    pub fn commit(
        &self,
        name: &str,
        key: &str,
        labels: Labels,
        seal: impl FnOnce(&Snapshot) -> Result<()>,
    ) -> Result<Snapshot> {
        let mut state = self.lock();
        let record = state.get(key)?.clone();
        if record.kind != StoredKind::Active {
            return Err(PluginError::failed_precondition(format!(
                "snapshot {key:?} is not active"
            )));
        }
        if name.is_empty() {
            return Err(PluginError::invalid_argument("snapshot name is required"));
        }
        if state.records.contains_key(name) || state.pending.contains_key(name) {
            return Err(PluginError::already_exists(format!("snapshot {name}")));
        }
        let mut snapshot = state.snapshot(&record);
        seal(&snapshot)?;
        let committed = Record {
            key: name.to_string(),
            kind: StoredKind::Committed,
            labels,
            updated: now(),
            ..record
        };
        let seq = self.append(
            &mut state,
            vec![Op::Delete(key.to_string()), Op::Put(committed)],
        )?;
        drop(state);
        self.sync(seq)?;
        snapshot.kind = Kind::Committed;
        Ok(snapshot)
    }

    /// Removes the record of `key` unless it has children; the backend then deletes the
    /// returned snapshot's layer.
    pub fn remove(&self, key: &str) -> Result<Snapshot> {
        let mut state = self.lock();
        let record = state.get(key)?;
        if state.children.contains_key(key) {
            return Err(PluginError::failed_precondition(
                "cannot remove snapshot with child",
            ));
        }
        let snapshot = state.snapshot(record);
        let seq = self.append(&mut state, vec![Op::Delete(key.to_string())])?;
        drop(state);
        self.sync(seq)?;
        Ok(snapshot)
    }

    /// Every record.
    pub fn walk(&self) -> Vec<Info> {
        self.lock().records.values().map(Record::info).collect()
    }

    /// Every record with its backend id.
    pub fn walk_with_ids(&self) -> Vec<(Info, u64)> {
        self.lock()
            .records
            .values()
            .map(|r| (r.info(), r.id))
            .collect()
    }

    /// The id and kind of every record, for a backend's cleanup of layers without one.
    /// Creations under way count: their layers are being made.
    pub fn ids(&self) -> HashMap<u64, Kind> {
        let state = self.lock();
        state
            .records
            .values()
            .map(|r| (r.id, r.kind.into()))
            .chain(state.pending.values().copied())
            .collect()
    }

    /// Removes every entry of `dir` — a backend's directory of layers named by id — that neither
    /// a record nor a creation under way names: layers a crash left before their record was
    /// written or after it was removed.
    pub fn remove_unrecorded(&self, dir: &Path) -> Result<()> {
        let live = self.ids();
        let entries = fs::read_dir(dir)
            .map_err(|err| PluginError::internal(format!("list {}: {err}", dir.display())))?;
        for entry in entries.flatten() {
            let id = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok());
            if !id.is_some_and(|id| live.contains_key(&id)) {
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }
}

/// Removes the layer directory `dir` and everything under it; one already gone is fine.
pub fn remove_tree(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(PluginError::internal(format!(
            "remove {}: {err}",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Disk usage of the tree at `root`, counted like `du`: allocated blocks of every inode once
/// (hard links count once), the root directory included — so an empty directory on ext4 is
/// 4096 bytes and one inode.
pub fn disk_usage(root: &Path) -> io::Result<Usage> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut usage = Usage::default();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = fs::symlink_metadata(&path)?;
        if seen.insert((metadata.dev(), metadata.ino())) {
            usage.inodes += 1;
            usage.size += metadata.blocks() as i64 * 512;
        }
        if metadata.is_dir() {
            for entry in fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(usage)
}

fn io_error(what: impl std::fmt::Display, err: io::Error) -> PluginError {
    // A store failure is never the caller's "not found".
    PluginError::internal(format!("{what}: {err}"))
}

fn encode_entry(ops: &[Op]) -> Vec<u8> {
    let payload = serde_json::to_vec(ops).expect("journal operations always serialise");
    let mut entry = Vec::with_capacity(payload.len() + 8);
    entry.extend((payload.len() as u32).to_le_bytes());
    entry.extend(crc32(&payload).to_le_bytes());
    entry.extend(payload);
    entry
}

/// Passes each entry of a journal to `apply`, in order; returns the length of the intact prefix.
fn decode_entries(bytes: &[u8], mut apply: impl FnMut(Vec<Op>)) -> usize {
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let sum = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        if crc32(payload) != sum {
            break;
        }
        let Ok(ops) = serde_json::from_slice::<Vec<Op>>(payload) else {
            break;
        };
        apply(ops);
        at += 8 + len;
    }
    at
}

/// CRC-32 lookup tables for slicing-by-8: `CRC_TABLES[0]` is the byte-at-a-time table, and
/// `CRC_TABLES[k][i]` is the CRC of byte `i` followed by `k` zero bytes.
const CRC_TABLES: [[u32; 256]; 8] = {
    let mut tables = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        tables[0][i] = c;
        i += 1;
    }
    let mut t = 1;
    while t < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = tables[t - 1][i];
            tables[t][i] = (prev >> 8) ^ tables[0][(prev & 0xff) as usize];
            i += 1;
        }
        t += 1;
    }
    tables
};

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it). Eight bytes per step: the whole journal
/// is checked at every open, and a byte at a time took about as long as parsing it.
fn crc32(data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut crc = !0u32;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let lo = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ crc;
        let hi = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &byte in chunks.remainder() {
        crc = t[0][((crc ^ byte as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn ok(_: &Snapshot) -> Result<()> {
        Ok(())
    }

    use rcontainerd_pkg::labels::from_pairs as labels;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn crc32_by_eight_matches_a_byte_at_a_time_at_every_length() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 131 + 7) as u8).collect();
        for len in 0..data.len() {
            let mut crc = !0u32;
            for &byte in &data[..len] {
                crc = CRC_TABLES[0][((crc ^ byte as u32) & 0xff) as usize] ^ (crc >> 8);
            }
            assert_eq!(crc32(&data[..len]), !crc, "length {len}");
        }
    }

    /// Writes `ops` as journal entries after what `dir`'s journal holds.
    fn append_raw(dir: &Path, entries: &[Vec<Op>]) {
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join(JOURNAL_FILE))
            .unwrap();
        for ops in entries {
            file.write_all(&encode_entry(ops)).unwrap();
        }
    }

    fn record(key: &str, id: u64, parent: &str, label: &str) -> Record {
        Record {
            key: key.to_string(),
            id,
            kind: StoredKind::Committed,
            parent: parent.to_string(),
            labels: labels(&[("l", label)]),
            created: 1,
            updated: 2,
        }
    }

    #[test]
    fn a_journal_of_superseded_entries_is_rewritten_at_open() {
        let dir = tempfile::tempdir().unwrap();
        // What Prepare + Commit leave, and more: each key is written three times, the
        // way a store that never reached the running threshold would have it.
        let live = COMPACT_SLACK as u64;
        let mut entries = Vec::new();
        for id in 1..=live {
            let key = format!("k{id}");
            let parent = if id > 1 {
                format!("k{}", id - 1)
            } else {
                String::new()
            };
            entries.push(vec![Op::Put(Record {
                kind: StoredKind::Active,
                ..record(&format!("{key}-work"), id, &parent, "a")
            })]);
            entries.push(vec![
                Op::Delete(format!("{key}-work")),
                Op::Put(record(&key, id, &parent, "b")),
            ]);
            entries.push(vec![Op::Put(record(&key, id, &parent, "c"))]);
        }
        // A removed snapshot with the highest id: its id must stay taken after the rewrite.
        entries.push(vec![Op::Put(record("gone", live + 1, "", "x"))]);
        entries.push(vec![Op::Delete("gone".into())]);
        append_raw(dir.path(), &entries);
        let journal = dir.path().join(JOURNAL_FILE);
        let before = fs::metadata(&journal).unwrap().len();

        let mut expected: Vec<(Info, u64)> = (1..=live)
            .map(|id| {
                let parent = if id > 1 {
                    format!("k{}", id - 1)
                } else {
                    String::new()
                };
                (record(&format!("k{id}"), id, &parent, "c").info(), id)
            })
            .collect();
        expected.sort_by_key(|(_, id)| *id);
        let sorted = |store: &MetaStore| {
            let mut found = store.walk_with_ids();
            found.sort_by_key(|(_, id)| *id);
            found
        };

        let store = MetaStore::open(dir.path()).unwrap();
        assert_eq!(sorted(&store), expected);
        assert_eq!(
            store.lock().entries,
            live as usize + 1,
            "one entry per record and the counter"
        );
        let after = fs::metadata(&journal).unwrap().len();
        assert!(
            after < before / 2,
            "journal of {before} bytes is now {after}"
        );
        assert!(!dir.path().join(format!("{JOURNAL_FILE}.tmp")).exists());
        drop(store);

        // The rewritten journal loads the same records, with the same rules.
        let store = MetaStore::open(dir.path()).unwrap();
        assert_eq!(sorted(&store), expected);
        assert_eq!(
            fs::metadata(&journal).unwrap().len(),
            after,
            "no second rewrite"
        );
        assert_eq!(
            store.remove("k1").unwrap_err().kind,
            ErrorKind::FailedPrecondition,
            "k1 still has a child"
        );
        let next = store
            .create(Kind::Active, "n", "", Labels::new(), ok)
            .unwrap();
        assert_eq!(next.id, live + 2, "the removed snapshot's id is not reused");
    }

    #[test]
    fn a_journal_with_few_dead_entries_is_left_alone_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<Vec<Op>> = (1..=10)
            .flat_map(|id| {
                let key = format!("k{id}");
                [
                    vec![Op::Put(record(&format!("{key}-work"), id, "", "a"))],
                    vec![
                        Op::Delete(format!("{key}-work")),
                        Op::Put(record(&key, id, "", "b")),
                    ],
                ]
            })
            .collect();
        append_raw(dir.path(), &entries);
        let journal = dir.path().join(JOURNAL_FILE);
        let before = fs::read(&journal).unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        assert_eq!(store.walk().len(), 10);
        assert_eq!(fs::read(&journal).unwrap(), before);
    }

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = MetaStore::open(dir.path()).unwrap();
            store
                .create(Kind::Active, "ns/1/a", "", labels(&[("x", "1")]), ok)
                .unwrap();
            store
                .commit("ns/2/base", "ns/1/a", Labels::new(), ok)
                .unwrap();
            let child = store
                .create(Kind::View, "ns/3/v", "ns/2/base", Labels::new(), ok)
                .unwrap();
            assert_eq!(child.parent_ids, vec![1]);
            store
                .create(Kind::Active, "gone", "", Labels::new(), ok)
                .unwrap();
            store.remove("gone").unwrap();
        }
        let store = MetaStore::open(dir.path()).unwrap();
        let base = store.stat("ns/2/base").unwrap();
        assert_eq!(base.kind, Kind::Committed);
        assert!(base.labels.is_empty());
        assert_eq!(store.stat("ns/3/v").unwrap().parent, "ns/2/base");
        assert_eq!(store.stat("gone").unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(store.walk().len(), 2);
        // Ids are not reused after a restart, also not the removed one's.
        let next = store
            .create(Kind::Active, "n", "", Labels::new(), ok)
            .unwrap();
        assert_eq!(next.id, 4);
        assert_eq!(
            store.remove("ns/2/base").unwrap_err().kind,
            ErrorKind::FailedPrecondition
        );
    }

    #[test]
    fn concurrent_writers_all_land_with_distinct_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MetaStore::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..40 {
                        let key = format!("ns/{t}/{i}");
                        store
                            .create(Kind::Active, &key, "", Labels::new(), ok)
                            .unwrap();
                        store
                            .commit(&format!("{key}-c"), &key, Labels::new(), ok)
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(store);
        let store = MetaStore::open(dir.path()).unwrap();
        let records = store.walk_with_ids();
        assert_eq!(records.len(), 320);
        let ids: HashSet<u64> = records.iter().map(|(_, id)| *id).collect();
        assert_eq!(ids.len(), 320, "ids were shared");
        assert!(records.iter().all(|(info, _)| info.kind == Kind::Committed));
    }

    #[test]
    fn a_torn_tail_is_dropped_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = MetaStore::open(dir.path()).unwrap();
            store
                .create(Kind::Active, "kept", "", Labels::new(), ok)
                .unwrap();
            store
                .create(Kind::Active, "torn", "", Labels::new(), ok)
                .unwrap();
        }
        let path = dir.path().join(JOURNAL_FILE);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        {
            let store = MetaStore::open(dir.path()).unwrap();
            assert_eq!(store.stat("torn").unwrap_err().kind, ErrorKind::NotFound);
            store
                .create(Kind::Active, "after", "", Labels::new(), ok)
                .unwrap();
        }
        let store = MetaStore::open(dir.path()).unwrap();
        let mut keys: Vec<_> = store.walk().into_iter().map(|i| i.name).collect();
        keys.sort();
        assert_eq!(keys, ["after", "kept"]);
    }

    #[test]
    fn a_corrupt_entry_ends_the_replay() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = MetaStore::open(dir.path()).unwrap();
            store
                .create(Kind::Active, "first", "", Labels::new(), ok)
                .unwrap();
            store
                .create(Kind::Active, "second", "", Labels::new(), ok)
                .unwrap();
        }
        let path = dir.path().join(JOURNAL_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let keys: Vec<_> = store.walk().into_iter().map(|i| i.name).collect();
        assert_eq!(keys, ["first"]);
    }

    #[test]
    fn a_failed_make_leaves_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let err = store
            .create(Kind::Active, "k", "", Labels::new(), |_| {
                Err(PluginError::internal("disk on fire"))
            })
            .unwrap_err();
        assert_eq!(err.message, "disk on fire");
        assert_eq!(store.stat("k").unwrap_err().kind, ErrorKind::NotFound);
        let seal_err = {
            store
                .create(Kind::Active, "a", "", Labels::new(), ok)
                .unwrap();
            store
                .commit("c", "a", Labels::new(), |_| {
                    Err(PluginError::internal("no"))
                })
                .unwrap_err()
        };
        assert_eq!(seal_err.kind, ErrorKind::Internal);
        assert_eq!(store.stat("a").unwrap().kind, Kind::Active);
        assert_eq!(store.stat("c").unwrap_err().kind, ErrorKind::NotFound);
    }

    /// A store holding one committed snapshot, `base`.
    fn store_with_committed_base() -> (tempfile::TempDir, MetaStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        store
            .create(Kind::Active, "base-work", "", Labels::new(), ok)
            .unwrap();
        store
            .commit("base", "base-work", Labels::new(), ok)
            .unwrap();
        (dir, store)
    }

    #[test]
    fn a_creation_under_way_holds_its_key_parent_and_id() {
        let (_dir, store) = store_with_committed_base();
        // `make` runs unlocked: the store answers while it does.
        store
            .create(Kind::Active, "k", "base", Labels::new(), |snapshot| {
                let again = store.create(Kind::View, "k", "", Labels::new(), ok);
                assert_eq!(again.unwrap_err().kind, ErrorKind::AlreadyExists);
                let taken = store.commit("k", "k", Labels::new(), ok);
                assert!(taken.is_err(), "key under creation must not be usable");
                let parent = store.remove("base");
                assert_eq!(parent.unwrap_err().kind, ErrorKind::FailedPrecondition);
                assert!(store.ids().contains_key(&snapshot.id));
                assert_eq!(store.stat("k").unwrap_err().kind, ErrorKind::NotFound);
                Ok(())
            })
            .unwrap();
        assert_eq!(store.stat("k").unwrap().parent, "base");
        // Once the child goes, so can the parent: the reservation's count was returned.
        store.remove("k").unwrap();
        store.remove("base").unwrap();
        assert!(store.ids().is_empty());
    }

    #[test]
    fn a_make_that_panics_releases_its_reservation() {
        let (_dir, store) = store_with_committed_base();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.create(Kind::Active, "k", "base", Labels::new(), |_| {
                panic!("make exploded")
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(store.ids().len(), 1, "only the parent is live");
        store
            .create(Kind::Active, "k", "base", Labels::new(), ok)
            .unwrap();
        store.remove("k").unwrap();
        store.remove("base").unwrap();
    }

    #[test]
    fn compaction_keeps_records_and_the_counter() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        store
            .create(Kind::Active, "kept", "", Labels::new(), ok)
            .unwrap();
        let journal = dir.path().join(JOURNAL_FILE);
        let start = fs::metadata(&journal).unwrap().len();
        let rounds = COMPACT_SLACK as u64 + 10;
        let mut pair = 0;
        for round in 0..rounds {
            store
                .create(Kind::Active, "churn", "", Labels::new(), ok)
                .unwrap();
            store.remove("churn").unwrap();
            if round == 0 {
                pair = fs::metadata(&journal).unwrap().len() - start;
            }
        }
        // Without compaction the journal would hold every pair.
        let size = fs::metadata(&journal).unwrap().len();
        assert!(size < pair * rounds * 2 / 3, "journal is {size} bytes");
        drop(store);
        let store = MetaStore::open(dir.path()).unwrap();
        assert_eq!(store.walk().len(), 1);
        let next = store
            .create(Kind::Active, "n", "", Labels::new(), ok)
            .unwrap();
        assert_eq!(next.id, 2 + rounds);
        assert!(!dir.path().join(format!("{JOURNAL_FILE}.tmp")).exists());
    }
}
