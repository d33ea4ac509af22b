//! The namespaced layer over a small in-memory driver (the real driver,
//! content-local, is exercised through the daemon in `tests/tests/content.rs`).
//! The driver here keeps blobs and ingests in maps and verifies commits the
//! way the trait asks, so what is tested is the host's bookkeeping. By
//! default it reports no running digest (as generation-1 plugins), so the
//! host hashes; `reporting_fixture` makes it report one (as content-local).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use rcontainerd_plugin_api::content::{Info, Reader, Status, Store, Writer, WriterOptions};
use rcontainerd_plugin_api::{PluginError, Result as PluginResult};

use super::*;
use rcontainerd_pkg::errdefs::Kind;

#[derive(Default)]
struct MemoryState {
    blobs: BTreeMap<String, Vec<u8>>,
    ingests: HashMap<String, Vec<u8>>,
    /// Writers report their running digest (`Writer::digest`).
    reports_digest: bool,
    /// `Writer::digest` calls answered with a digest.
    digests_reported: usize,
}

#[derive(Default, Clone)]
struct MemoryDriver {
    state: Arc<Mutex<MemoryState>>,
}

struct MemoryWriter {
    state: Arc<Mutex<MemoryState>>,
    reference: String,
}

struct MemoryReader(Vec<u8>);

fn sha256(data: &[u8]) -> String {
    let mut running = RunningDigest::default();
    running.update(data);
    running.current()
}

fn status(reference: &str, data: &[u8]) -> Status {
    Status {
        reference: reference.to_string(),
        offset: data.len() as i64,
        total: 0,
        expected: String::new(),
        started_at: 1,
        updated_at: 2,
    }
}

impl Store for MemoryDriver {
    fn info(&self, digest: &str) -> PluginResult<Info> {
        let state = self.state.lock().unwrap();
        let blob = state
            .blobs
            .get(digest)
            .ok_or_else(|| PluginError::not_found(digest))?;
        Ok(Info {
            digest: digest.to_string(),
            size: blob.len() as i64,
            created: 0,
            updated: 0,
            labels: BTreeMap::new(),
        })
    }
    fn update(&self, info: Info, _: &[String]) -> PluginResult<Info> {
        Ok(info)
    }
    fn list(&self) -> PluginResult<Vec<Info>> {
        Ok(Vec::new())
    }
    fn delete(&self, digest: &str) -> PluginResult<()> {
        let mut state = self.state.lock().unwrap();
        state
            .blobs
            .remove(digest)
            .map(drop)
            .ok_or_else(|| PluginError::not_found(digest))
    }
    fn reader(&self, digest: &str) -> PluginResult<Box<dyn Reader>> {
        let state = self.state.lock().unwrap();
        let blob = state
            .blobs
            .get(digest)
            .ok_or_else(|| PluginError::not_found(digest))?;
        Ok(Box::new(MemoryReader(blob.clone())))
    }
    fn writer(&self, options: WriterOptions) -> PluginResult<Box<dyn Writer>> {
        let mut state = self.state.lock().unwrap();
        state.ingests.entry(options.reference.clone()).or_default();
        Ok(Box::new(MemoryWriter {
            state: self.state.clone(),
            reference: options.reference,
        }))
    }
    fn status(&self, reference: &str) -> PluginResult<Status> {
        let state = self.state.lock().unwrap();
        let data = state
            .ingests
            .get(reference)
            .ok_or_else(|| PluginError::not_found(reference))?;
        Ok(status(reference, data))
    }
    fn list_statuses(&self) -> PluginResult<Vec<Status>> {
        Ok(Vec::new())
    }
    fn abort(&self, reference: &str) -> PluginResult<()> {
        let mut state = self.state.lock().unwrap();
        state
            .ingests
            .remove(reference)
            .map(drop)
            .ok_or_else(|| PluginError::not_found(reference))
    }
}

impl Writer for MemoryWriter {
    fn status(&self) -> PluginResult<Status> {
        let state = self.state.lock().unwrap();
        Ok(status(&self.reference, &state.ingests[&self.reference]))
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> PluginResult<usize> {
        let mut state = self.state.lock().unwrap();
        let ingest = state.ingests.get_mut(&self.reference).unwrap();
        assert_eq!(offset, ingest.len() as u64, "writes append");
        ingest.extend_from_slice(data);
        Ok(data.len())
    }
    fn truncate(&mut self, size: u64) -> PluginResult<()> {
        let mut state = self.state.lock().unwrap();
        state
            .ingests
            .get_mut(&self.reference)
            .unwrap()
            .truncate(size as usize);
        Ok(())
    }
    fn commit(
        &mut self,
        size: i64,
        expected: &str,
        _: BTreeMap<String, String>,
    ) -> PluginResult<()> {
        let mut state = self.state.lock().unwrap();
        let data = state.ingests[&self.reference].clone();
        if size > 0 && size != data.len() as i64 {
            return Err(PluginError::failed_precondition("size"));
        }
        let actual = sha256(&data);
        if !expected.is_empty() && expected != actual {
            return Err(PluginError::failed_precondition("digest"));
        }
        state.ingests.remove(&self.reference);
        if state.blobs.contains_key(&actual) {
            return Err(PluginError::already_exists(actual));
        }
        state.blobs.insert(actual, data);
        Ok(())
    }
    fn close(&mut self) -> PluginResult<()> {
        Ok(())
    }
    fn digest(&mut self) -> PluginResult<Option<String>> {
        let mut state = self.state.lock().unwrap();
        if !state.reports_digest {
            return Ok(None);
        }
        state.digests_reported += 1;
        Ok(Some(sha256(&state.ingests[&self.reference])))
    }
}

impl Reader for MemoryReader {
    fn size(&self) -> PluginResult<i64> {
        Ok(self.0.len() as i64)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> PluginResult<usize> {
        let rest = self.0.get(offset as usize..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    meta: Arc<MetadataStore>,
    driver: MemoryDriver,
    store: Arc<ContentStore>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let meta =
        Arc::new(MetadataStore::open(&dir.path().join("io.containerd.metadata.v1.bolt")).unwrap());
    let driver = MemoryDriver::default();
    let store = Arc::new(ContentStore::new(meta.clone(), Arc::new(driver.clone())));
    Fixture {
        _dir: dir,
        meta,
        driver,
        store,
    }
}

/// A fixture whose driver reports its running digest.
fn reporting_fixture() -> Fixture {
    let f = fixture();
    f.driver.state.lock().unwrap().reports_digest = true;
    f
}

fn ingest(store: &Arc<ContentStore>, ns: &str, reference: &str, data: &[u8]) -> String {
    let mut writer = store.writer(ns, reference, "", 0).unwrap();
    writer.write(data).unwrap();
    writer
        .commit(data.len() as i64, "", BTreeMap::new())
        .unwrap()
}

#[test]
fn blobs_are_visible_only_in_namespaces_that_committed_them() {
    let f = fixture();
    let digest = ingest(&f.store, "a", "r", b"hello");
    assert_eq!(digest, sha256(b"hello"));
    assert_eq!(f.store.info("a", &digest).unwrap().size, 5);
    let err = f.store.info("b", &digest).unwrap_err();
    assert_eq!(err.kind, Kind::NotFound);
    assert_eq!(err.message, format!("content digest {digest}: not found"));
    assert!(f.store.reader("b", &digest).is_err());
    assert!(f.store.list("b").unwrap().is_empty());

    // Writing the same bytes in "b" makes it visible there; the driver's
    // AlreadyExists is not the client's business.
    assert_eq!(ingest(&f.store, "b", "r", b"hello"), digest);
    let (record, reader) = f.store.reader("b", &digest).unwrap();
    assert_eq!(record.size, 5);
    let mut buf = [0u8; 5];
    assert_eq!(reader.read_at(0, &mut buf).unwrap(), 5);
    assert_eq!(&buf, b"hello");
    assert_eq!(f.store.list_statuses("b").unwrap(), []);
}

#[test]
fn delete_frees_the_blob_when_the_last_namespace_lets_go() {
    let f = fixture();
    let digest = ingest(&f.store, "a", "r", b"shared");
    ingest(&f.store, "b", "r", b"shared");
    f.store.delete("a", &digest).unwrap();
    assert!(f.driver.state.lock().unwrap().blobs.contains_key(&digest));
    assert_eq!(
        f.store.delete("a", &digest).unwrap_err().kind,
        Kind::NotFound
    );
    f.store.delete("b", &digest).unwrap();
    assert!(!f.driver.state.lock().unwrap().blobs.contains_key(&digest));
    assert_eq!(
        f.store.delete("b", "sha256:nope").unwrap_err().kind,
        Kind::InvalidArgument
    );
}

#[test]
fn the_same_ref_in_two_namespaces_is_two_ingests() {
    let f = fixture();
    let mut a = f.store.writer("a", "layer", "", 0).unwrap();
    let mut b = f.store.writer("b", "layer", "", 0).unwrap();
    assert_ne!(a.driver_ref(), b.driver_ref());
    a.write(b"aaa").unwrap();
    b.write(b"b").unwrap();
    drop((a, b));
    assert_eq!(f.store.status("a", "layer").unwrap().offset, 3);
    let statuses = f.store.list_statuses("b").unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(
        (statuses[0].reference.as_str(), statuses[0].offset),
        ("layer", 1)
    );
    assert_eq!(
        f.store.status("c", "layer").unwrap_err().kind,
        Kind::NotFound
    );
}

#[test]
fn a_second_writer_on_an_open_ref_is_unavailable() {
    let f = fixture();
    let first = f.store.writer("a", "r", "", 0).unwrap();
    let err = f.store.writer("a", "r", "", 0).err().unwrap();
    assert_eq!(err.kind, Kind::Unavailable);
    assert!(
        err.message
            .starts_with(&format!("ref {} locked for ", first.driver_ref())),
        "{}",
        err.message
    );
    assert_eq!(f.store.abort("a", "r").unwrap_err().kind, Kind::Unavailable);
    drop(first);
    let _again = f.store.writer("a", "r", "", 0).unwrap();
}

#[test]
fn a_resumed_ingest_keeps_its_running_digest() {
    let f = fixture();
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    writer.write(b"hello ").unwrap();
    drop(writer);
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    assert_eq!(writer.offset(), 6);
    assert_eq!(writer.digest().unwrap(), sha256(b"hello "));
    writer.write(b"world").unwrap();
    let digest = writer.commit(0, "", BTreeMap::new()).unwrap();
    assert_eq!(digest, sha256(b"hello world"));
    assert_eq!(f.meta.ingests().get("a", "r").unwrap(), None);
}

#[test]
fn after_a_restart_an_ingest_resumes_with_its_saved_digest() {
    let f = fixture();
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    writer.write(b"hello ").unwrap();
    drop(writer);
    // A new store over the same records and driver: the daemon restarted.
    let restarted = Arc::new(ContentStore::new(
        f.meta.clone(),
        Arc::new(f.driver.clone()),
    ));
    let mut writer = restarted.writer("a", "r", "", 0).unwrap();
    assert_eq!(writer.offset(), 6);
    assert_eq!(writer.digest().unwrap(), sha256(b"hello "));
    writer.write(b"world").unwrap();
    let digest = writer.commit(11, "", BTreeMap::new()).unwrap();
    assert_eq!(digest, sha256(b"hello world"));
    assert_eq!(restarted.info("a", &digest).unwrap().size, 11);
}

#[test]
fn after_a_crash_data_beyond_the_saved_digest_is_cut_back() {
    let f = fixture();
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    writer.write(b"saved").unwrap(); // the first write saves at once
    writer.write(b" unsaved").unwrap(); // within the save interval
    let driver_ref = writer.driver_ref().to_string();
    // kill -9: no drop, no save.
    std::mem::forget(writer);
    assert_eq!(
        f.driver.state.lock().unwrap().ingests[&driver_ref].len(),
        13
    );

    let restarted = Arc::new(ContentStore::new(
        f.meta.clone(),
        Arc::new(f.driver.clone()),
    ));
    let mut writer = restarted.writer("a", "r", "", 0).unwrap();
    assert_eq!(writer.offset(), 5, "resumes at the saved digest");
    assert_eq!(writer.digest().unwrap(), sha256(b"saved"));
    assert_eq!(
        f.driver.state.lock().unwrap().ingests[&driver_ref],
        b"saved"
    );
    writer.write(b" again").unwrap();
    assert_eq!(
        writer.commit(0, "", BTreeMap::new()).unwrap(),
        sha256(b"saved again")
    );
}

#[test]
fn an_ingest_without_a_saved_digest_starts_over() {
    let f = fixture();
    let ingest = f.meta.ingests().open("a", "r", "", 0).unwrap();
    f.driver
        .state
        .lock()
        .unwrap()
        .ingests
        .insert(ingest.driver_ref.clone(), b"unknown".to_vec());
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    assert_eq!(writer.offset(), 0);
    assert_eq!(writer.digest().unwrap(), sha256(b""));
    assert!(f.driver.state.lock().unwrap().ingests[&ingest.driver_ref].is_empty());
}

#[test]
fn failed_commits_keep_the_ingest() {
    let f = fixture();
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    writer.write(b"abc").unwrap();
    let err = writer.commit(5, "", BTreeMap::new()).unwrap_err();
    assert_eq!(err.kind, Kind::FailedPrecondition);
    assert_eq!(err.message, "\"r\" failed size validation: 3 != 5");
    let wrong = sha256(b"xyz");
    let err = writer.commit(0, &wrong, BTreeMap::new()).unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "unexpected commit digest {}, expected {wrong}",
            sha256(b"abc")
        )
    );
    drop(writer);
    assert_eq!(f.store.status("a", "r").unwrap().offset, 3);
    f.store.abort("a", "r").unwrap();
    assert_eq!(f.store.status("a", "r").unwrap_err().kind, Kind::NotFound);
    assert!(f.driver.state.lock().unwrap().ingests.is_empty());
}

#[test]
fn expecting_a_blob_the_namespace_holds_is_already_exists() {
    let f = fixture();
    let digest = ingest(&f.store, "a", "r", b"x");
    let err = f.store.writer("a", "s", &digest, 0).err().unwrap();
    assert_eq!(err.kind, Kind::AlreadyExists);
    assert_eq!(err.message, format!("content {digest}: already exists"));
    // Content is shared by default: another namespace takes it without its bytes.
    let err = f.store.writer("b", "s", &digest, 0).err().unwrap();
    assert_eq!(err.kind, Kind::AlreadyExists);
    assert!(f.store.info("b", &digest).is_ok());
    // Isolated, a third namespace must write it itself.
    f.store.metadata().set_content_sharing(false);
    let writer = f.store.writer("c", "s", &digest, 0).unwrap();
    assert_eq!(writer.offset(), 0);
}

#[test]
fn commit_labels_go_into_the_namespace_record() {
    let f = fixture();
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    writer.write(b"labelled").unwrap();
    let labels: BTreeMap<String, String> = [("k".to_string(), "v".to_string())].into();
    let digest = writer.commit(0, "", labels.clone()).unwrap();
    assert_eq!(f.store.info("a", &digest).unwrap().labels, labels);
    ingest(&f.store, "b", "r", b"labelled");
    assert!(f.store.info("b", &digest).unwrap().labels.is_empty());
}

#[test]
fn truncate_restarts_the_digest() {
    let f = fixture();
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    writer.write(b"garbage").unwrap();
    writer.truncate().unwrap();
    writer.write(b"good").unwrap();
    assert_eq!(
        writer.commit(4, "", BTreeMap::new()).unwrap(),
        sha256(b"good")
    );
}

#[test]
fn large_chunks_hash_the_same_as_small_ones() {
    let f = fixture();
    let data: Vec<u8> = (0..(3 << 20) + 17).map(|i: u32| (i % 241) as u8).collect();
    let mut writer = f.store.writer("a", "big", "", 0).unwrap();
    for chunk in data.chunks(1 << 20) {
        writer.write(chunk).unwrap();
        assert_eq!(
            writer.offset() as usize % (1 << 20),
            chunk.len() % (1 << 20)
        );
    }
    assert_eq!(writer.digest().unwrap(), sha256(&data));
    let digest = writer
        .commit(data.len() as i64, &sha256(&data), BTreeMap::new())
        .unwrap();
    assert_eq!(f.store.info("a", &digest).unwrap().size, data.len() as i64);
}

#[test]
fn a_delete_racing_a_commit_elsewhere_never_loses_the_committed_blob() {
    let f = fixture();
    let data = b"contended";
    let digest = sha256(data);
    for round in 0..50 {
        ingest(&f.store, "a", "r", data);
        let store = f.store.clone();
        let deleting = std::thread::spawn(move || store.delete("a", &sha256(data)).unwrap());
        ingest(&f.store, "b", &format!("r{round}"), data);
        deleting.join().unwrap();
        // "b" holds a record, so the blob must still be there to read.
        let (_, reader) = f.store.reader("b", &digest).unwrap();
        assert_eq!(reader.size().unwrap(), data.len() as i64, "round {round}");
        f.store.delete("b", &digest).unwrap();
        assert!(!f.driver.state.lock().unwrap().blobs.contains_key(&digest));
    }
}

#[test]
fn a_driver_digest_is_reported_and_committed_without_saved_state() {
    let f = reporting_fixture();
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    let driver_ref = writer.driver_ref().to_string();
    let data = vec![7u8; 3 << 20];
    for chunk in data.chunks(1 << 20) {
        writer.write(chunk).unwrap();
    }
    assert_eq!(writer.digest().unwrap(), sha256(&data));
    // The host keeps no digest state of its own for such a driver.
    assert_eq!(f.meta.ingests().digest(&driver_ref).unwrap(), None);
    let reported = f.driver.state.lock().unwrap().digests_reported;
    let digest = writer.commit(0, "", BTreeMap::new()).unwrap();
    assert_eq!(digest, sha256(&data));
    assert!(f.driver.state.lock().unwrap().digests_reported > reported);
    assert_eq!(f.store.info("a", &digest).unwrap().size, data.len() as i64);
}

#[test]
fn a_driver_digest_resumes_with_everything_the_driver_holds() {
    let f = reporting_fixture();
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    writer.write(b"hello ").unwrap();
    let driver_ref = writer.driver_ref().to_string();
    drop(writer);
    // With no saved state the hashing host would start over; the driver's
    // own digest covers all it holds, so nothing is cut back.
    assert_eq!(f.meta.ingests().digest(&driver_ref).unwrap(), None);
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    assert_eq!(writer.offset(), 6);
    assert_eq!(writer.digest().unwrap(), sha256(b"hello "));
    writer.write(b"world").unwrap();
    let err = writer
        .commit(0, &sha256(b"hello there"), BTreeMap::new())
        .unwrap_err();
    assert_eq!(err.kind, Kind::FailedPrecondition);
    assert_eq!(
        err.message,
        format!(
            "unexpected commit digest {}, expected {}",
            sha256(b"hello world"),
            sha256(b"hello there")
        )
    );
    writer.truncate().unwrap();
    assert_eq!(writer.digest().unwrap(), sha256(b""));
    writer.write(b"again").unwrap();
    let digest = writer.commit(5, "", BTreeMap::new()).unwrap();
    assert_eq!(digest, sha256(b"again"));
}

#[test]
fn a_driver_that_reports_its_digest_drops_a_state_the_host_saved() {
    let f = fixture();
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    writer.write(b"old").unwrap();
    let driver_ref = writer.driver_ref().to_string();
    drop(writer);
    assert!(f.meta.ingests().digest(&driver_ref).unwrap().is_some());

    // The driver now reports its digest (a generation-2 build took over):
    // the host's state for the old bytes goes.
    f.driver.state.lock().unwrap().reports_digest = true;
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    assert_eq!(f.meta.ingests().digest(&driver_ref).unwrap(), None);
    assert_eq!(writer.offset(), 3);
    writer.truncate().unwrap();
    writer.write(b"new data").unwrap();
    drop(writer);

    // Back to a driver that reports none: no stale state is taken for the
    // new bytes, so the host starts the ingest over.
    f.driver.state.lock().unwrap().reports_digest = false;
    let mut writer = f.store.writer("a", "r", "", 0).unwrap();
    assert_eq!(writer.offset(), 0);
    assert_eq!(writer.digest().unwrap(), sha256(b""));
}
