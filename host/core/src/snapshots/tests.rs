//! The snapshot store over a small in-memory driver.
//!
//! The driver here is a test double for the *driver* (it follows
//! containerd's snapshotter rules on its own keys); the metadata layer under
//! test is the real one, on a real RocksDB. A "restart" opens a new store
//! over the same driver and database, as the daemon does after a crash.

use super::*;
use rcontainerd_pkg::errdefs::Kind as ErrorKind;
use rcontainerd_plugin_api::snapshot::{Info, Kind as DriverKind, Labels};
use rcontainerd_plugin_api::{PluginError, Result as PluginResult};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

#[derive(Default)]
struct MemoryDriver {
    snapshots: Mutex<BTreeMap<String, Info>>,
    panic_in_prepare: AtomicBool,
}

impl MemoryDriver {
    fn keys(&self) -> Vec<String> {
        self.snapshots.lock().unwrap().keys().cloned().collect()
    }

    fn insert(&self, key: &str, kind: DriverKind, parent: &str, labels: Labels) {
        self.snapshots.lock().unwrap().insert(
            key.to_string(),
            Info {
                kind,
                name: key.to_string(),
                parent: parent.to_string(),
                labels,
                created: 1,
                updated: 2,
            },
        );
    }

    fn create(
        &self,
        key: &str,
        parent: &str,
        labels: Labels,
        kind: DriverKind,
    ) -> PluginResult<Vec<Mount>> {
        if self.panic_in_prepare.load(Ordering::SeqCst) {
            panic!("prepare exploded");
        }
        let mut snapshots = self.snapshots.lock().unwrap();
        if let Some(target) = labels.get(SNAPSHOT_REF_LABEL) {
            let exists = snapshots.values().any(|i| {
                i.kind == DriverKind::Committed
                    && i.parent == parent
                    && i.labels.get(SNAPSHOT_REF_LABEL) == Some(target)
            });
            if exists {
                return Err(PluginError::already_exists(format!("target {target}")));
            }
        }
        if snapshots.contains_key(key) {
            return Err(PluginError::already_exists(key.to_string()));
        }
        if !parent.is_empty() {
            match snapshots.get(parent) {
                Some(p) if p.kind == DriverKind::Committed => {}
                Some(_) => return Err(PluginError::invalid_argument("parent not committed")),
                None => return Err(PluginError::not_found("parent")),
            }
        }
        snapshots.insert(
            key.to_string(),
            Info {
                kind,
                name: key.to_string(),
                parent: parent.to_string(),
                labels,
                created: 1,
                updated: 1,
            },
        );
        Ok(vec![Mount {
            mount_type: "bind".into(),
            source: format!("/mem/{key}"),
            target: String::new(),
            options: vec!["rbind".into()],
        }])
    }
}

impl Snapshotter for MemoryDriver {
    fn stat(&self, key: &str) -> PluginResult<Info> {
        self.snapshots
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .ok_or_else(|| PluginError::not_found(key.to_string()))
    }
    fn update(&self, info: Info, _fieldpaths: &[String]) -> PluginResult<Info> {
        Ok(info)
    }
    fn usage(&self, key: &str) -> PluginResult<Usage> {
        self.stat(key).map(|_| Usage {
            size: 4096,
            inodes: 1,
        })
    }
    fn mounts(&self, key: &str) -> PluginResult<Vec<Mount>> {
        self.stat(key).map(|_| {
            vec![Mount {
                mount_type: "bind".into(),
                source: format!("/mem/{key}"),
                target: String::new(),
                options: vec![],
            }]
        })
    }
    fn prepare(&self, key: &str, parent: &str, labels: Labels) -> PluginResult<Vec<Mount>> {
        self.create(key, parent, labels, DriverKind::Active)
    }
    fn view(&self, key: &str, parent: &str, labels: Labels) -> PluginResult<Vec<Mount>> {
        self.create(key, parent, labels, DriverKind::View)
    }
    fn commit(&self, name: &str, key: &str, labels: Labels) -> PluginResult<()> {
        let mut snapshots = self.snapshots.lock().unwrap();
        let active = snapshots
            .remove(key)
            .ok_or_else(|| PluginError::not_found(key.to_string()))?;
        snapshots.insert(
            name.to_string(),
            Info {
                kind: DriverKind::Committed,
                name: name.to_string(),
                parent: active.parent,
                labels,
                created: 1,
                updated: 1,
            },
        );
        Ok(())
    }
    fn remove(&self, key: &str) -> PluginResult<()> {
        let mut snapshots = self.snapshots.lock().unwrap();
        if snapshots.values().any(|i| i.parent == key) {
            return Err(PluginError::failed_precondition("has children"));
        }
        snapshots
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| PluginError::not_found(key.to_string()))
    }
    fn walk(&self) -> PluginResult<Vec<Info>> {
        Ok(self.snapshots.lock().unwrap().values().cloned().collect())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    meta: Arc<MetadataStore>,
    driver: Arc<MemoryDriver>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(
            MetadataStore::open(&dir.path().join("io.containerd.metadata.v1.bolt")).unwrap(),
        );
        Fixture {
            _dir: dir,
            meta,
            driver: Arc::new(MemoryDriver::default()),
        }
    }

    /// A store as the daemon opens one at startup (replaying intents).
    fn open(&self) -> SnapshotStore {
        SnapshotStore::open("mem", self.driver.clone(), self.meta.clone()).unwrap()
    }
}

use rcontainerd_pkg::labels::from_pairs as labels;

fn none() -> BTreeMap<String, String> {
    BTreeMap::new()
}

#[test]
fn prepare_commit_view_stat_list_and_remove() {
    let f = Fixture::new();
    let s = f.open();
    let mounts = s.prepare("ns", "work", "", labels(&[("x", "1")])).unwrap();
    assert_eq!(mounts[0].source, "/mem/ns/1/work");
    let stat = s.stat("ns", "work").unwrap();
    assert_eq!(stat.kind, SnapshotKind::Active);
    assert_eq!(stat.labels, labels(&[("x", "1")]));

    s.commit("ns", "base", "work", labels(&[("c", "2")]))
        .unwrap();
    assert!(s.stat("ns", "work").unwrap_err().is(ErrorKind::NotFound));
    let base = s.stat("ns", "base").unwrap();
    assert_eq!(base.kind, SnapshotKind::Committed);
    assert_eq!(base.labels, labels(&[("c", "2")]));
    assert_eq!(base.driver_key, "ns/2/base");
    assert_eq!(f.driver.keys(), ["ns/2/base"]);

    s.view("ns", "look", "base", none()).unwrap();
    s.prepare("ns", "child", "base", none()).unwrap();
    let listed: Vec<(String, SnapshotKind, String)> = s
        .list("ns")
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.kind, r.parent))
        .collect();
    assert_eq!(
        listed,
        [
            ("base".into(), SnapshotKind::Committed, String::new()),
            ("child".into(), SnapshotKind::Active, "base".into()),
            ("look".into(), SnapshotKind::View, "base".into()),
        ]
    );
    assert_eq!(s.mounts("ns", "look").unwrap()[0].source, "/mem/ns/3/look");
    assert_eq!(
        s.usage("ns", "base").unwrap(),
        Usage {
            size: 4096,
            inodes: 1
        }
    );

    let err = s.remove("ns", "base").unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition);
    assert_eq!(err.message, "cannot remove snapshot with child");
    s.remove("ns", "child").unwrap();
    s.remove("ns", "look").unwrap();
    s.remove("ns", "base").unwrap();
    assert!(s.list("ns").unwrap().is_empty());
    assert!(f.driver.keys().is_empty());
    assert!(f.meta.snapshots("mem").intents().unwrap().is_empty());
}

#[test]
fn each_mutation_syncs_the_wal_once() {
    let f = Fixture::new();
    let s = f.open();
    let mut syncs = f.meta.wal_syncs();
    let mut step = |what: &str, meta: &MetadataStore| {
        let now = meta.wal_syncs();
        assert_eq!(now - syncs, 1, "{what}: WAL syncs");
        syncs = now;
    };
    s.prepare("ns", "work", "", none()).unwrap();
    step("prepare", &f.meta);
    s.commit("ns", "base", "work", none()).unwrap();
    step("commit", &f.meta);
    // The commit's record is not synced itself; its intent is, and the
    // next sync carries the record along.
    s.view("ns", "look", "base", none()).unwrap();
    step("view", &f.meta);
    s.remove("ns", "look").unwrap();
    step("remove", &f.meta);
}

#[test]
fn errors_match_containerd_and_change_nothing() {
    let f = Fixture::new();
    let s = f.open();
    s.prepare("ns", "a", "", none()).unwrap();

    let err = s.prepare("ns", "a", "", none()).unwrap_err();
    assert_eq!(
        (err.kind, err.message.as_str()),
        (ErrorKind::AlreadyExists, "snapshot \"a\"")
    );
    let err = s.prepare("ns", "b", "missing", none()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.message, "parent snapshot missing does not exist");
    let err = s.prepare("ns", "b", "a", none()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    assert_eq!(
        err.message,
        "failed to create snapshot: parent \"ns/1/a\" is not committed snapshot"
    );
    let err = s.view("ns", "v", "a", none()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    let err = s.prepare("ns", "", "", none()).unwrap_err();
    assert_eq!(
        (err.kind, err.message.as_str()),
        (ErrorKind::InvalidArgument, "key must not be empty")
    );
    for err in [
        s.stat("ns", "nope").unwrap_err(),
        s.remove("ns", "nope").unwrap_err(),
        s.commit("ns", "c", "nope", none()).unwrap_err(),
        s.mounts("ns", "nope").unwrap_err(),
        s.usage("ns", "nope").unwrap_err(),
    ] {
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert_eq!(err.message, "snapshot nope does not exist");
    }

    s.commit("ns", "c", "a", none()).unwrap();
    s.prepare("ns", "a2", "", none()).unwrap();
    let err = s.commit("ns", "c", "a2", none()).unwrap_err();
    assert_eq!(
        (err.kind, err.message.as_str()),
        (ErrorKind::AlreadyExists, "snapshot \"c\"")
    );
    let err = s.commit("ns", "c2", "c", none()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition);
    assert_eq!(
        err.message,
        "failed to commit snapshot: snapshot \"ns/2/c\" is not active"
    );
    let err = s.mounts("ns", "c").unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition);
    // containerd names the driver key here without quotes.
    assert_eq!(
        err.message,
        "failed to get active mount: requested snapshot ns/2/c not active or view"
    );

    let names: Vec<String> = s.list("ns").unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["a2", "c"]);
    // Refused requests use no number: a=1, c=2, a2=3.
    assert_eq!(f.driver.keys(), ["ns/2/c", "ns/3/a2"]);
    assert!(f.meta.snapshots("mem").intents().unwrap().is_empty());
}

#[test]
fn namespaces_share_no_names_and_no_driver_keys() {
    let f = Fixture::new();
    let s = f.open();
    s.prepare("one", "k", "", none()).unwrap();
    s.prepare("two", "k", "", none()).unwrap();
    assert_eq!(f.driver.keys(), ["one/1/k", "two/2/k"]);
    s.remove("one", "k").unwrap();
    assert_eq!(s.stat("two", "k").unwrap().driver_key, "two/2/k");
    assert!(s.list("one").unwrap().is_empty());
}

#[test]
fn a_panicking_driver_leaves_no_record_and_the_store_keeps_working() {
    let f = Fixture::new();
    let s = f.open();
    f.driver.panic_in_prepare.store(true, Ordering::SeqCst);
    let err = s.prepare("ns", "p", "", none()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert!(err.message.contains("panicked in prepare"), "{err}");
    assert!(s.list("ns").unwrap().is_empty());
    assert!(f.meta.snapshots("mem").intents().unwrap().is_empty());
    f.driver.panic_in_prepare.store(false, Ordering::SeqCst);
    s.prepare("ns", "p", "", none()).unwrap();
}

#[test]
fn update_changes_labels_by_mask() {
    let f = Fixture::new();
    let s = f.open();
    s.prepare("ns", "u", "", labels(&[("a", "1"), ("b", "2")]))
        .unwrap();
    let before = s.stat("ns", "u").unwrap();
    let after = s
        .update(
            "ns",
            "u",
            labels(&[("b", "3"), ("c", "4")]),
            &["labels.b".into()],
        )
        .unwrap();
    assert_eq!(after.labels, labels(&[("a", "1"), ("b", "3")]));
    assert!(after.updated_at >= before.updated_at);
    assert_eq!(after.created_at, before.created_at);
    assert_eq!(s.stat("ns", "u").unwrap().labels, after.labels);
    let err = s.update("ns", "u", none(), &["kind".into()]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    assert!(s
        .update("ns", "gone", none(), &[])
        .unwrap_err()
        .is(ErrorKind::NotFound));
}

#[test]
fn an_interrupted_prepare_is_undone_at_startup() {
    let f = Fixture::new();
    let s = f.open();
    s.prepare("ns", "keep", "", none()).unwrap();
    // What a crash right after the driver call leaves: intent + driver key, no record.
    let id = s.next_number();
    let bkey = driver_key("ns", id, "lost");
    f.meta
        .snapshots("mem")
        .begin_intent(
            id,
            &Intent::Create {
                driver_key: bkey.clone(),
            },
        )
        .unwrap();
    f.driver.prepare(&bkey, "", none()).unwrap();
    drop(s);

    let s = f.open();
    assert_eq!(f.driver.keys(), ["ns/1/keep"]);
    assert!(f.meta.snapshots("mem").intents().unwrap().is_empty());
    assert!(s.stat("ns", "lost").unwrap_err().is(ErrorKind::NotFound));
    // The number is never handed out again.
    s.prepare("ns", "lost", "", none()).unwrap();
    assert_eq!(s.stat("ns", "lost").unwrap().driver_key, "ns/3/lost");
}

#[test]
fn an_interrupted_commit_is_rolled_forward_when_the_driver_did_it() {
    let f = Fixture::new();
    let s = f.open();
    s.prepare("ns", "work", "", labels(&[("x", "1")])).unwrap();
    let active = s.stat("ns", "work").unwrap();
    let id = s.next_number();
    let now = SystemTime::now();
    let committed = SnapshotRecord {
        name: "done".into(),
        kind: SnapshotKind::Committed,
        parent: String::new(),
        labels: labels(&[("c", "1")]),
        created_at: now,
        updated_at: now,
        driver_key: driver_key("ns", id, "done"),
    };
    f.meta
        .snapshots("mem")
        .begin_intent(
            id,
            &Intent::Commit {
                namespace: "ns".into(),
                active_name: "work".into(),
                active_key: active.driver_key.clone(),
                record: IntentRecord::from_record(&committed),
            },
        )
        .unwrap();
    f.driver
        .commit(&committed.driver_key, &active.driver_key, none())
        .unwrap();
    drop(s);

    let s = f.open();
    assert!(s.stat("ns", "work").unwrap_err().is(ErrorKind::NotFound));
    let done = s.stat("ns", "done").unwrap();
    assert_eq!(done.kind, SnapshotKind::Committed);
    assert_eq!(done.labels, labels(&[("c", "1")]));
    assert_eq!(f.driver.keys(), [committed.driver_key]);
    assert!(f.meta.snapshots("mem").intents().unwrap().is_empty());
}

#[test]
fn an_unfinished_commit_is_dropped_when_the_driver_did_not_do_it() {
    let f = Fixture::new();
    let s = f.open();
    s.prepare("ns", "work", "", none()).unwrap();
    let active = s.stat("ns", "work").unwrap();
    let id = s.next_number();
    let now = SystemTime::now();
    let committed = SnapshotRecord {
        name: "done".into(),
        kind: SnapshotKind::Committed,
        parent: String::new(),
        labels: none(),
        created_at: now,
        updated_at: now,
        driver_key: driver_key("ns", id, "done"),
    };
    f.meta
        .snapshots("mem")
        .begin_intent(
            id,
            &Intent::Commit {
                namespace: "ns".into(),
                active_name: "work".into(),
                active_key: active.driver_key.clone(),
                record: IntentRecord::from_record(&committed),
            },
        )
        .unwrap();
    drop(s);
    let s = f.open();
    assert_eq!(s.stat("ns", "work").unwrap().kind, SnapshotKind::Active);
    assert!(s.stat("ns", "done").unwrap_err().is(ErrorKind::NotFound));
    assert!(f.meta.snapshots("mem").intents().unwrap().is_empty());
}

#[test]
fn an_interrupted_remove_finishes_or_is_dropped() {
    let f = Fixture::new();
    let s = f.open();
    s.prepare("ns", "gone", "", none()).unwrap();
    s.prepare("ns", "kept", "", none()).unwrap();
    for name in ["gone", "kept"] {
        let record = s.stat("ns", name).unwrap();
        let id = s.next_number();
        f.meta
            .snapshots("mem")
            .begin_intent(
                id,
                &Intent::Remove {
                    namespace: "ns".into(),
                    name: name.into(),
                    driver_key: record.driver_key.clone(),
                },
            )
            .unwrap();
        if name == "gone" {
            f.driver.remove(&record.driver_key).unwrap();
        }
    }
    drop(s);
    let s = f.open();
    assert!(s.stat("ns", "gone").unwrap_err().is(ErrorKind::NotFound));
    assert_eq!(s.stat("ns", "kept").unwrap().kind, SnapshotKind::Active);
    assert!(f.meta.snapshots("mem").intents().unwrap().is_empty());
}

#[test]
fn orphans_are_removed_children_first_and_records_kept() {
    let f = Fixture::new();
    let s = f.open();
    s.prepare("ns", "real", "", none()).unwrap();
    drop(s);
    // A chain the records know nothing about: parent, child, grandchild.
    f.driver
        .insert("ns/90/p", DriverKind::Committed, "", none());
    f.driver
        .insert("ns/91/c", DriverKind::Committed, "ns/90/p", none());
    f.driver
        .insert("ns/92/g", DriverKind::Active, "ns/91/c", none());
    let s = f.open();
    // Open only settles the counter: it moved past every number the driver had used.
    assert_eq!(f.driver.keys().len(), 4, "orphans are removed after open");
    s.prepare("ns", "next", "", none()).unwrap();
    assert_eq!(s.stat("ns", "next").unwrap().driver_key, "ns/93/next");
    // The deferred pass, against the walk taken at open, while the store is in use: the
    // snapshot made since is not touched.
    s.remove_startup_orphans();
    assert_eq!(f.driver.keys(), ["ns/1/real", "ns/93/next"]);
    s.remove_startup_orphans();
    assert_eq!(f.driver.keys(), ["ns/1/real", "ns/93/next"]);

    f.driver.insert("other/5/x", DriverKind::Active, "", none());
    s.cleanup().unwrap();
    assert_eq!(f.driver.keys(), ["ns/1/real", "ns/93/next"]);
}

#[test]
fn the_deferred_orphan_pass_spares_what_was_committed_or_removed_since_open() {
    let f = Fixture::new();
    let s = f.open();
    s.prepare("ns", "work", "", none()).unwrap();
    s.prepare("ns", "gone", "", none()).unwrap();
    s.prepare("ns", "kept", "", none()).unwrap();
    drop(s);
    f.driver
        .insert("ns/50/orphan", DriverKind::Active, "", none());
    let s = f.open();
    // Since the walk: "work" committed (its driver key replaced), "gone" removed.
    s.commit("ns", "done", "work", none()).unwrap();
    s.remove("ns", "gone").unwrap();
    s.remove_startup_orphans();
    let done = s.stat("ns", "done").unwrap().driver_key;
    let kept = s.stat("ns", "kept").unwrap().driver_key;
    let mut want = vec![done, kept];
    want.sort();
    assert_eq!(f.driver.keys(), want);
}

#[test]
fn remote_handshake_records_the_target_as_committed() {
    let f = Fixture::new();
    let s = f.open();
    // The driver already holds the layer a client asks for by reference.
    f.driver.insert(
        "remote/layer-1",
        DriverKind::Committed,
        "",
        labels(&[
            (SNAPSHOT_REF_LABEL, "sha256:l1"),
            ("containerd.io/snapshot/remote", "yes"),
        ]),
    );
    let err = s
        .prepare(
            "ns",
            "extract-1",
            "",
            labels(&[(SNAPSHOT_REF_LABEL, "sha256:l1"), ("mine", "a")]),
        )
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    assert_eq!(
        err.message,
        "target snapshot \"sha256:l1\" from snapshotter"
    );
    assert!(s
        .stat("ns", "extract-1")
        .unwrap_err()
        .is(ErrorKind::NotFound));
    let target = s.stat("ns", "sha256:l1").unwrap();
    assert_eq!(target.kind, SnapshotKind::Committed);
    assert_eq!(target.driver_key, "remote/layer-1");
    assert_eq!(target.labels.get("mine").map(String::as_str), Some("a"));
    assert_eq!(
        target
            .labels
            .get("containerd.io/snapshot/remote")
            .map(String::as_str),
        Some("yes")
    );
    // Asking again: the target is known to the metadata now.
    let err = s
        .prepare(
            "ns",
            "extract-2",
            "",
            labels(&[(SNAPSHOT_REF_LABEL, "sha256:l1")]),
        )
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    assert!(f.meta.snapshots("mem").intents().unwrap().is_empty());
    // It is usable as a parent.
    s.prepare("ns", "run", "sha256:l1", none()).unwrap();
    assert_eq!(f.driver.stat("ns/2/run").unwrap().parent, "remote/layer-1");
}

#[test]
fn unknown_snapshotters_are_invalid_arguments() {
    let stores = SnapshotStores::default();
    let err = stores.get("zfs").unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    assert_eq!(
        err.wire_message(),
        "snapshotter not loaded: zfs: invalid argument"
    );
}

#[test]
fn concurrent_children_of_one_parent_all_land() {
    let f = Fixture::new();
    let s = Arc::new(f.open());
    s.prepare("ns", "w", "", none()).unwrap();
    s.commit("ns", "base", "w", none()).unwrap();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let s = s.clone();
            scope.spawn(move || {
                for i in 0..10 {
                    let key = format!("c-{t}-{i}");
                    s.prepare("ns", &key, "base", none()).unwrap();
                    s.commit("ns", &format!("{key}-done"), &key, none())
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(s.list("ns").unwrap().len(), 81);
    assert_eq!(f.driver.keys().len(), 81);
    assert!(f.meta.snapshots("mem").intents().unwrap().is_empty());
}

#[test]
fn a_namespace_can_go_once_its_snapshots_are_removed() {
    let f = Fixture::new();
    let s = f.open();
    s.prepare("holder", "k", "", none()).unwrap();
    let err = f.meta.namespaces().delete("holder").unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition);
    s.remove("holder", "k").unwrap();
    f.meta.namespaces().delete("holder").unwrap();
}
