//! What the store keeps across restarts and crashes, and what the disk looks like: the parts of
//! the content model the conformance suite (one store per check) cannot see.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use rcontainerd_plugin_api::{
    content::{Store, WriterOptions},
    host::load_library,
    snapshot::Labels,
    testsuite::within,
    Driver, ErrorKind, InitContext,
};
use rcontainerd_plugin_content_local::LocalStore;
use sha2::{Digest, Sha256};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 % 241) as u8).collect()
}

fn digest_of(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn options(reference: &str) -> WriterOptions {
    WriterOptions {
        reference: reference.to_owned(),
        ..WriterOptions::default()
    }
}

fn read_blob(store: &dyn Store, digest: &str) -> Vec<u8> {
    let reader = store.reader(digest).unwrap();
    let mut out = vec![0u8; reader.size().unwrap() as usize];
    assert_eq!(reader.read_at(0, &mut out).unwrap(), out.len());
    out
}

/// Finishes the ingest `reference` of `data` on a store that has never seen it open.
fn resume_and_commit(store: &dyn Store, reference: &str, data: &[u8], written: usize) {
    let status = store.status(reference).unwrap();
    assert_eq!(status.offset, written as i64);
    assert_eq!(status.total, data.len() as i64);
    assert!(store
        .list_statuses()
        .unwrap()
        .iter()
        .any(|s| s.reference == reference && s.offset == written as i64));
    let mut writer = store.writer(options(reference)).unwrap();
    assert_eq!(writer.status().unwrap().offset, written as i64);
    writer.write(written as u64, &data[written..]).unwrap();
    // The expected size given when the ingest started still applies.
    writer.commit(0, &digest_of(data), Labels::new()).unwrap();
    assert_eq!(read_blob(store, &digest_of(data)), data);
    assert_eq!(
        store.status(reference).unwrap_err().kind,
        ErrorKind::NotFound
    );
}

fn start_ingest(store: &dyn Store, reference: &str, data: &[u8], written: usize) {
    let mut writer = store
        .writer(WriterOptions {
            reference: reference.to_owned(),
            expected_size: Some(data.len() as i64),
            expected_digest: None,
        })
        .unwrap();
    for (i, chunk) in data[..written].chunks(300_000).enumerate() {
        writer.write((i * 300_000) as u64, chunk).unwrap();
    }
}

#[test]
fn an_ingest_resumes_in_a_new_store_on_the_same_root() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(2_000_000);
    {
        let store = LocalStore::open(dir.path().to_path_buf()).unwrap();
        start_ingest(&store, "default/1/layer", &data, 1_200_000);
    }
    let store = LocalStore::open(dir.path().to_path_buf()).unwrap();
    resume_and_commit(&store, "default/1/layer", &data, 1_200_000);
}

#[test]
fn an_ingest_resumes_through_the_library_after_reinit() {
    let exe = std::env::current_exe().unwrap();
    let library = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("librcontainerd_plugin_content_local.so");
    let plugins = load_library(&library).unwrap_or_else(|err| panic!("{err}"));
    let dir = tempfile::tempdir().unwrap();
    let init = || match plugins[0]
        .init(InitContext {
            root: dir.path().to_path_buf(),
            ..InitContext::default()
        })
        .unwrap()
        .driver
    {
        Driver::Content(store) => store,
        other => panic!("content-local provides {other:?}"),
    };
    let data = pattern(700_000);
    start_ingest(init().as_ref(), "ref", &data, 650_000);
    resume_and_commit(init().as_ref(), "ref", &data, 650_000);
}

const CHILD_ROOT: &str = "CONTENT_LOCAL_TEST_CHILD_ROOT";

/// The child process of the test below: writes part of an ingest, then dies without
/// unwinding or closing anything.
#[test]
#[ignore = "run as a child process by a_killed_writer_resumes_after_restart"]
fn killed_writer_child() {
    let root = std::env::var(CHILD_ROOT).expect("the root to write in");
    let store = LocalStore::open(root.into()).unwrap();
    let data = pattern(3_000_000);
    start_ingest(&store, "default/7/killed", &data, 1_800_000);
    std::process::abort();
}

#[test]
fn a_killed_writer_resumes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "killed_writer_child", "--ignored"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env(CHILD_ROOT, dir.path())
        .spawn()
        .unwrap();
    // The child can only fail by never reaching its abort (a write that blocks): give it a deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the writer child did not die within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "the child was meant to die");
    let store = LocalStore::open(dir.path().to_path_buf()).unwrap();
    resume_and_commit(&store, "default/7/killed", &pattern(3_000_000), 1_800_000);
}

#[test]
fn blobs_appear_only_when_committed_and_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path().to_path_buf()).unwrap();
    let blobs = dir.path().join("blobs/sha256");
    let mut writer = store.writer(options("default/1/a")).unwrap();
    writer.write(0, b"some bytes").unwrap();
    assert_eq!(fs::read_dir(&blobs).unwrap().count(), 0);
    assert!(store.list().unwrap().is_empty());

    // The ingest lives in a directory named by the ref's hash, with its data and state.
    let ingest = dir
        .path()
        .join("ingest")
        .join(&digest_of(b"default/1/a")[7..]);
    assert_eq!(fs::read(ingest.join("data")).unwrap(), b"some bytes");
    assert!(ingest.join("state").is_file());

    writer
        .commit(10, &digest_of(b"some bytes"), Labels::new())
        .unwrap();
    let blob = blobs.join(&digest_of(b"some bytes")[7..]);
    assert_eq!(fs::read(&blob).unwrap(), b"some bytes");
    assert_eq!(
        fs::metadata(&blob).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert!(!ingest.exists());
}

#[test]
fn concurrent_commits_of_the_same_content_store_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::open(dir.path().to_path_buf()).unwrap());
    let data = Arc::new(pattern(1_500_000));
    let barrier = Arc::new(Barrier::new(4));
    // A writer that panics before the barrier (or a commit that waits on a lock forever) would
    // leave the others waiting: the deadline turns that into a failure.
    let committing = (store.clone(), data.clone());
    let results: Vec<_> = within(Duration::from_secs(60), "4 concurrent commits", move || {
        let (store, data) = committing;
        (0..4)
            .map(|i| {
                let (store, data, barrier) = (store.clone(), data.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut writer = store.writer(options(&format!("ref-{i}"))).unwrap();
                    writer.write(0, &data).unwrap();
                    barrier.wait();
                    writer.commit(data.len() as i64, &digest_of(&data), Labels::new())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect()
    });
    let committed = results.iter().filter(|r| r.is_ok()).count();
    assert!(committed >= 1, "{results:?}");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(err.kind, ErrorKind::AlreadyExists, "{err}");
    }
    assert_eq!(read_blob(store.as_ref(), &digest_of(&data)), *data);
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(store.list_statuses().unwrap().is_empty());
}

#[test]
fn labels_survive_a_restart_and_leave_with_the_blob() {
    let dir = tempfile::tempdir().unwrap();
    let digest = digest_of(b"abc");
    let labels: Labels = [("containerd.io/gc.root".to_string(), "x".to_string())].into();
    {
        let store = LocalStore::open(dir.path().to_path_buf()).unwrap();
        let mut writer = store.writer(options("a")).unwrap();
        writer.write(0, b"abc").unwrap();
        writer.commit(3, &digest, labels.clone()).unwrap();
    }
    let store = LocalStore::open(dir.path().to_path_buf()).unwrap();
    assert_eq!(store.info(&digest).unwrap().labels, labels);
    store.delete(&digest).unwrap();
    assert_eq!(
        fs::read_dir(dir.path().join("labels/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn list_gives_labels_to_the_labelled_blobs_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path().to_path_buf()).unwrap();
    let labels: Labels = [("k".to_string(), "v".to_string())].into();
    let mut labelled = Vec::new();
    for i in 0..6u8 {
        let data = [i; 5];
        let digest = digest_of(&data);
        let mut writer = store.writer(options(&format!("r{i}"))).unwrap();
        writer.write(0, &data).unwrap();
        let with = if i % 2 == 0 {
            labels.clone()
        } else {
            Labels::new()
        };
        writer.commit(5, &digest, with).unwrap();
        if i % 2 == 0 {
            labelled.push(digest);
        }
    }
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 6);
    for info in listed {
        let want = if labelled.contains(&info.digest) {
            labels.clone()
        } else {
            Labels::new()
        };
        assert_eq!(info.labels, want, "{}", info.digest);
        assert_eq!(info, store.info(&info.digest).unwrap());
    }
}

#[test]
fn stray_files_are_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path().to_path_buf()).unwrap();
    fs::write(dir.path().join("blobs/sha256/not-a-digest"), b"x").unwrap();
    // An ingest torn while being created (no state file).
    fs::create_dir(dir.path().join("ingest/torn")).unwrap();
    fs::write(dir.path().join("ingest/stray-file"), b"x").unwrap();
    assert!(store.list().unwrap().is_empty());
    assert!(store.list_statuses().unwrap().is_empty());
    assert!(Path::new(&dir.path().join("ingest/torn")).exists());
}

#[test]
fn a_resumed_ingest_truncates_to_any_shorter_length() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(1_000_000);
    {
        let store = LocalStore::open(dir.path().to_path_buf()).unwrap();
        start_ingest(&store, "cut", &data, 900_000);
    }
    // What a host does when its saved digest state covers less than the driver holds.
    let store = LocalStore::open(dir.path().to_path_buf()).unwrap();
    let mut writer = store.writer(options("cut")).unwrap();
    assert_eq!(writer.status().unwrap().offset, 900_000);
    writer.truncate(400_000).unwrap();
    assert_eq!(writer.status().unwrap().offset, 400_000);
    assert_eq!(store.status("cut").unwrap().offset, 400_000);
    assert_eq!(
        writer.truncate(500_000).unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
    writer.write(400_000, &data[400_000..]).unwrap();
    writer.commit(0, &digest_of(&data), Labels::new()).unwrap();
    assert_eq!(read_blob(&store, &digest_of(&data)), data);
}

#[test]
fn a_resumed_ingest_commits_without_further_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(600_000);
    {
        let store = LocalStore::open(dir.path().to_path_buf()).unwrap();
        start_ingest(&store, "whole", &data, data.len());
    }
    let store = LocalStore::open(dir.path().to_path_buf()).unwrap();
    let mut writer = store.writer(options("whole")).unwrap();
    let wrong = digest_of(b"other");
    let err = writer.commit(0, &wrong, Labels::new()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition);
    assert_eq!(
        err.message,
        format!(
            "unexpected commit digest {}, expected {wrong}",
            digest_of(&data)
        )
    );
    writer.commit(0, &digest_of(&data), Labels::new()).unwrap();
}

#[test]
fn concurrent_label_updates_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::open(dir.path().to_path_buf()).unwrap());
    let digest = digest_of(b"abc");
    let mut writer = store.writer(options("a")).unwrap();
    writer.write(0, b"abc").unwrap();
    writer.commit(3, &digest, Labels::new()).unwrap();
    let updating = (store.clone(), digest.clone());
    within(
        Duration::from_secs(60),
        "4 threads updating labels",
        move || {
            let (store, digest) = updating;
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let (store, digest) = (store.clone(), digest.clone());
                    std::thread::spawn(move || {
                        for i in 0..50 {
                            let mut info = store.info(&digest).unwrap();
                            info.labels = [(format!("k{t}"), i.to_string())].into();
                            store.update(info, &[format!("labels.k{t}")]).unwrap();
                        }
                    })
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
        },
    );
    let labels = store.info(&digest).unwrap().labels;
    let want: Labels = (0..4)
        .map(|t| (format!("k{t}"), "49".to_string()))
        .collect();
    assert_eq!(labels, want);
    assert_eq!(
        fs::read_dir(dir.path().join("labels/sha256"))
            .unwrap()
            .count(),
        1
    );
}
