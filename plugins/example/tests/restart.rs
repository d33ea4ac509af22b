//! What a restart keeps: records and files, whether the driver is re-opened as a Rust type or
//! the daemon initialises the plugin again through its library over the same root.

use std::{fs, path::Path, sync::Arc};

use rcontainerd_plugin_api::{
    host::load_library,
    snapshot::{Kind, Labels, Snapshotter},
    testsuite, Driver, ErrorKind, InitContext,
};
use rcontainerd_plugin_example::ExampleSnapshotter;

const LIBRARY: &str = "librcontainerd_plugin_example.so";

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Loads the built library afresh and initialises its plugin on `root` with `config`.
fn init_loaded(root: &Path, config: &str) -> Arc<dyn Snapshotter> {
    let plugins = load_library(&testsuite::built_library(LIBRARY)).unwrap();
    let instance = plugins[0]
        .init(InitContext {
            root: root.to_path_buf(),
            config: config.to_string(),
            ..InitContext::default()
        })
        .unwrap();
    assert_eq!(instance.exports["root"], root.to_string_lossy());
    match instance.driver {
        Driver::Snapshotter(s) => s,
        other => panic!("the example must provide a snapshotter, got {other:?}"),
    }
}

/// A committed `base` holding `hello`, a view `v` of it and an active `child`, with labels.
fn populate(s: &dyn Snapshotter) {
    let mounts = s.prepare("base-active", "", Labels::new()).unwrap();
    fs::write(Path::new(&mounts[0].source).join("hello"), b"world").unwrap();
    s.commit("base", "base-active", labels(&[("a", "1")]))
        .unwrap();
    s.view("v", "base", Labels::new()).unwrap();
    s.prepare("child", "base", Labels::new()).unwrap();
    let mut info = s.stat("base").unwrap();
    info.labels = labels(&[("b", "2")]);
    s.update(info, &["labels.b".into()]).unwrap();
}

/// What [`populate`] made, seen by a driver that was started again.
fn check_survived(s: &dyn Snapshotter) {
    let base = s.stat("base").unwrap();
    assert_eq!(base.kind, Kind::Committed);
    assert_eq!(base.labels, labels(&[("a", "1"), ("b", "2")]));
    assert_eq!(s.stat("v").unwrap().parent, "base");
    assert_eq!(s.stat("base-active").unwrap_err().kind, ErrorKind::NotFound);
    let mut names: Vec<_> = s.walk().unwrap().into_iter().map(|i| i.name).collect();
    names.sort();
    assert_eq!(names, ["base", "child", "v"]);

    // Cleanup at start-up keeps every directory a record names.
    s.cleanup().unwrap();
    let view = s.mounts("v").unwrap();
    assert_eq!(view[0].options, ["rbind", "ro"]);
    assert_eq!(
        fs::read(Path::new(&view[0].source).join("hello")).unwrap(),
        b"world"
    );
    let child = s.mounts("child").unwrap();
    assert_eq!(child[0].options, ["rbind", "rw"]);
    assert!(Path::new(&child[0].source).join("hello").is_file());

    // The model still holds, and ids are not handed out twice: a new snapshot's directory is
    // its own, empty one.
    assert_eq!(
        s.remove("base").unwrap_err().kind,
        ErrorKind::FailedPrecondition
    );
    let fresh = s.prepare("fresh", "", Labels::new()).unwrap();
    assert!(fs::read_dir(&fresh[0].source).unwrap().next().is_none());
    for key in ["fresh", "child", "v", "base"] {
        s.remove(key).unwrap();
    }
    assert!(s.walk().unwrap().is_empty());
}

#[test]
fn records_survive_reopening_the_driver() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    populate(&ExampleSnapshotter::open(root.clone(), false).unwrap());
    check_survived(&ExampleSnapshotter::open(root.clone(), false).unwrap());
    let left: Vec<_> = fs::read_dir(root.join("snapshots")).unwrap().collect();
    assert!(left.is_empty(), "removed snapshots left {left:?}");
}

#[test]
fn records_survive_initialising_the_loaded_plugin_again() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    populate(init_loaded(&root, "").as_ref());
    check_survived(init_loaded(&root, "").as_ref());
}

#[test]
fn lazy_remove_keeps_the_directory_until_cleanup() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let s = init_loaded(&root, "lazy_remove = true\n");
    let mounts = s.prepare("k", "", Labels::new()).unwrap();
    s.remove("k").unwrap();
    assert!(Path::new(&mounts[0].source).is_dir());
    drop(s);
    // After a restart the directory has no record, so cleanup takes it.
    let s = init_loaded(&root, "lazy_remove = true\n");
    s.cleanup().unwrap();
    assert!(!Path::new(&mounts[0].source).exists());
}

#[test]
fn a_wrong_config_type_fails_init() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = load_library(&testsuite::built_library(LIBRARY)).unwrap();
    let err = plugins[0]
        .init(InitContext {
            root: tmp.path().join("root"),
            config: "lazy_remove = \"yes\"\n".into(),
            ..InitContext::default()
        })
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::InvalidArgument, "{err}");
}
