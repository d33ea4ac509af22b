//! Loads real plugin libraries through `host::load_library` and drives them through the ABI.

mod support;

use std::{fs, path::Path};

use rcontainerd_plugin_api::{
    host::{load_library, LibraryErrorKind, LoadedPlugin},
    Driver, ErrorKind, InitContext, PanicStrategy,
};

fn load_one(path: &Path) -> LoadedPlugin {
    let mut plugins = load_library(path).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(plugins.len(), 1, "{}", path.display());
    plugins.remove(0)
}

fn context(dir: &Path) -> InitContext {
    InitContext {
        root: dir.join("root"),
        state: dir.join("state"),
        config: String::new(),
        grpc_address: "/run/test.sock".into(),
        ttrpc_address: "/run/test.sock.ttrpc".into(),
    }
}

#[test]
fn native_loads_with_its_manifest_and_initialises() {
    let Some(dir) = support::in_tree_plugins() else {
        return;
    };
    let plugin = load_one(&dir.join("librcontainerd_plugin_native.so"));
    let manifest = plugin.manifest();
    assert_eq!(manifest.uri(), "io.containerd.snapshotter.v1.native");
    assert_eq!(manifest.abi_generation, 1);
    assert_eq!(manifest.panic_strategy, PanicStrategy::Unwind);
    assert_eq!(manifest.plugin_version, env!("CARGO_PKG_VERSION"));
    assert!(manifest.default_config.contains("root_path"));

    let tmp = tempfile::tempdir().unwrap();
    let instance = plugin.init(context(tmp.path())).unwrap();
    assert!(tmp.path().join("root/snapshots").is_dir());
    assert_eq!(
        instance.exports.get("root").map(String::as_str),
        Some(tmp.path().join("root").to_str().unwrap())
    );
    let Driver::Snapshotter(snapshotter) = instance.driver else {
        panic!(
            "native must provide a snapshotter, got {:?}",
            instance.driver
        )
    };
    let err = snapshotter.stat("some-key").unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotImplemented, "{err}");
}

#[test]
fn native_init_reports_a_bad_config_value() {
    let Some(dir) = support::in_tree_plugins() else {
        return;
    };
    let plugin = load_one(&dir.join("librcontainerd_plugin_native.so"));
    let tmp = tempfile::tempdir().unwrap();
    let err = plugin
        .init(InitContext {
            config: "root_path = [1, 2]\n".into(),
            ..context(tmp.path())
        })
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument, "{err}");
}

#[test]
fn a_truncated_plugin_is_refused_without_crashing() {
    let Some(dir) = support::in_tree_plugins() else {
        return;
    };
    let data = fs::read(dir.join("librcontainerd_plugin_native.so")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for keep in [100, data.len() / 3, data.len() - 4096] {
        let cut = tmp.path().join(format!("libcut{keep}.so"));
        fs::write(&cut, &data[..keep]).unwrap();
        let err = load_library(&cut).unwrap_err();
        assert_eq!(err.kind(), LibraryErrorKind::InvalidFile, "{err}");
        assert!(!err.to_string().contains('\n'), "{err}");
    }
}

#[test]
fn a_shared_object_that_is_no_plugin_is_refused() {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib/x86_64-linux-gnu/libm.so.6",
    ];
    let Some(system) = candidates.iter().map(Path::new).find(|p| p.exists()) else {
        eprintln!("skipping: no system shared object at a known path");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("libnotaplugin.so");
    fs::copy(system, &copy).unwrap();
    let err = load_library(&copy).unwrap_err();
    assert_eq!(err.kind(), LibraryErrorKind::NotAPlugin, "{err}");
    assert!(
        err.to_string().contains("not an rcontainerd plugin"),
        "{err}"
    );
    assert_eq!(err.plugin(), None);
}
