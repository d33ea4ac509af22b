//! Loads real plugin libraries through `host::load_library` and drives them through the ABI.

mod support;

use std::{fs, path::Path};

use rcontainerd_plugin_api::{
    host::{load_library, LibraryErrorKind, LoadedPlugin},
    Driver, ErrorKind, InitContext, PanicStrategy, CURRENT_ABI_GENERATION,
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
    assert_eq!(manifest.abi_generation, CURRENT_ABI_GENERATION);
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
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.message, "snapshot some-key does not exist");
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
        rcontainerd_pkg::prereq::missing(format_args!(
            "a system shared object (one of {candidates:?})"
        ));
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

#[test]
fn every_in_tree_plugin_loads_with_the_right_manifest() {
    let Some(dir) = support::in_tree_plugins() else {
        return;
    };
    let expected = [
        (
            "librcontainerd_plugin_native.so",
            "io.containerd.snapshotter.v1.native",
            "root_path",
        ),
        (
            "librcontainerd_plugin_overlayfs.so",
            "io.containerd.snapshotter.v1.overlayfs",
            "mount_options",
        ),
        (
            "librcontainerd_plugin_btrfs.so",
            "io.containerd.snapshotter.v1.btrfs",
            "root_path",
        ),
        (
            "librcontainerd_plugin_content_local.so",
            "io.containerd.content.v1.content",
            "",
        ),
    ];
    for (file, uri, config_key) in expected {
        let plugin = load_one(&dir.join(file));
        let manifest = plugin.manifest();
        assert_eq!(manifest.uri(), uri, "{file}");
        assert_eq!(manifest.abi_generation, CURRENT_ABI_GENERATION, "{file}");
        assert_eq!(manifest.panic_strategy, PanicStrategy::Unwind, "{file}");
        assert!(!manifest.plugin_version.is_empty(), "{file}");
        assert!(manifest.default_config.contains(config_key), "{file}");
        assert_eq!(plugin.path(), dir.join(file));
    }
}

#[test]
fn in_tree_plugins_initialise_or_skip_through_the_abi() {
    let Some(dir) = support::in_tree_plugins() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();

    let content = load_one(&dir.join("librcontainerd_plugin_content_local.so"));
    let instance = content.init(context(tmp.path())).unwrap();
    assert!(tmp.path().join("root/blobs/sha256").is_dir());
    assert!(tmp.path().join("root/ingest").is_dir());
    let Driver::Content(store) = instance.driver else {
        panic!("content-local must provide a content store")
    };
    assert!(
        store.list().unwrap().is_empty(),
        "a new store lists no blobs"
    );

    // The temp dir is not on btrfs here (checked by the plugin's own unit test), so: skip.
    let btrfs = load_one(&dir.join("librcontainerd_plugin_btrfs.so"));
    let btrfs_root = tmp.path().join("btrfs-root");
    match btrfs.init(InitContext {
        root: btrfs_root.clone(),
        ..context(tmp.path())
    }) {
        Err(err) => {
            assert!(err.is_skip(), "{err}");
            assert_eq!(err.kind, ErrorKind::Skip);
            assert_eq!(
                err.message,
                format!(
                    "{} is not a btrfs filesystem: skip plugin",
                    btrfs_root.display()
                )
            );
        }
        Ok(_) => eprintln!("the temp directory is on btrfs; btrfs initialised"),
    }
}

#[test]
fn a_panic_in_init_is_an_internal_error_and_the_process_lives() {
    let Some((dir, _)) = support::test_plugins() else {
        return;
    };
    let plugin = load_one(&dir.join("librcontainerd_test_plugin_panic_init.so"));
    assert_eq!(
        plugin.manifest().uri(),
        "io.containerd.internal.v1.panic-init"
    );
    let tmp = tempfile::tempdir().unwrap();
    let err = plugin.init(context(tmp.path())).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert_eq!(
        err.message,
        "plugin io.containerd.internal.v1.panic-init panicked: deliberate panic in init"
    );
    // Still here, and the plugin can be asked again.
    assert_eq!(
        plugin.init(context(tmp.path())).unwrap_err().kind,
        ErrorKind::Internal
    );
}

#[test]
fn a_panic_in_a_driver_call_fails_only_that_call() {
    let Some((dir, _)) = support::test_plugins() else {
        return;
    };
    let plugin = load_one(&dir.join("librcontainerd_test_plugin_panic_call.so"));
    let tmp = tempfile::tempdir().unwrap();
    let instance = plugin.init(context(tmp.path())).unwrap();
    assert_eq!(
        instance.exports.get("root").map(String::as_str),
        Some("/nowhere")
    );
    let Driver::Snapshotter(snapshotter) = instance.driver else {
        panic!("panic-call must provide a snapshotter")
    };
    let err = snapshotter.stat("k1").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert_eq!(
        err.message,
        "plugin io.containerd.snapshotter.v1.panic-call panicked: deliberate panic in stat k1"
    );
    let errors = [
        snapshotter
            .prepare("k", "", Default::default())
            .unwrap_err(),
        snapshotter.walk().unwrap_err(),
        snapshotter.cleanup().unwrap_err(),
        snapshotter.remove("k").unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind, ErrorKind::Internal, "{err}");
        assert!(
            err.message.contains("panicked: deliberate panic in"),
            "{err}"
        );
    }
    // Its Drop panics too; dropping the last reference must not take the process down.
    drop(snapshotter);
}

#[test]
fn an_incompatible_layout_is_refused_in_one_line_naming_the_plugin() {
    let Some((dir, _)) = support::test_plugins() else {
        return;
    };
    assert_refused_as_incompatible(
        &dir.join("librcontainerd_test_plugin_incompatible_abi.so"),
        1,
        ("io.containerd.snapshotter.v1", "incompatible-abi"),
    );
}

/// Loads `library`, which must be refused as `Incompatible` for `generation` in one short line
/// that names `plugin` (type, id).
fn assert_refused_as_incompatible(library: &Path, generation: u32, plugin: (&str, &str)) {
    let err = load_library(library).unwrap_err();
    assert_eq!(err.kind(), LibraryErrorKind::Incompatible, "{err}");
    let text = err.to_string();
    eprintln!("refusal: {text}");
    assert!(!text.contains('\n'), "{text}");
    assert!(text.len() < 600, "{text}");
    assert!(
        text.contains(&format!(
            "incompatible plugin ABI (generation {generation})"
        )),
        "{text}"
    );
    assert_eq!(
        err.plugin(),
        Some((plugin.0.to_string(), plugin.1.to_string()))
    );
}

#[test]
fn a_generation_the_daemon_does_not_serve_is_refused_by_name() {
    let Some((dir, _)) = support::test_plugins() else {
        return;
    };
    let err =
        load_library(&dir.join("librcontainerd_test_plugin_future_generation.so")).unwrap_err();
    assert_eq!(err.kind(), LibraryErrorKind::UnsupportedGeneration);
    assert_eq!(
        err.reason(),
        "plugin built for ABI generation 99; this daemon serves generations 1, 2, 3"
    );
    assert_eq!(
        err.plugin(),
        Some((
            "io.containerd.snapshotter.v1".to_string(),
            "future-generation".to_string()
        ))
    );
}

/// The tag says generation 2, the root module is generation 1's: the layout of the generation the tag
/// names is what gets checked, so the library is refused rather than misread.
#[test]
fn a_root_module_of_another_generation_than_its_tag_is_refused() {
    let Some((dir, _)) = support::test_plugins() else {
        return;
    };
    assert_refused_as_incompatible(
        &dir.join("librcontainerd_test_plugin_generation_mismatch.so"),
        2,
        ("io.containerd.internal.v1", "generation-mismatch"),
    );
}

#[test]
fn a_panic_abort_plugin_is_refused_before_it_runs() {
    let Some((unwind_dir, abort_dir)) = support::test_plugins() else {
        return;
    };
    let err =
        load_library(&abort_dir.join("librcontainerd_test_plugin_panic_abort.so")).unwrap_err();
    assert_eq!(err.kind(), LibraryErrorKind::PanicAbort);
    assert!(err.reason().contains("panic=\"abort\""), "{err}");
    assert!(!err.to_string().contains('\n'));
    // The same crate built with panic=unwind loads.
    let plugin = load_one(&unwind_dir.join("librcontainerd_test_plugin_panic_abort.so"));
    assert_eq!(plugin.manifest().panic_strategy, PanicStrategy::Unwind);
}

#[test]
fn requires_are_reported_and_init_still_succeeds() {
    let Some((dir, _)) = support::test_plugins() else {
        return;
    };
    let plugin = load_one(&dir.join("librcontainerd_test_plugin_missing_requires.so"));
    assert_eq!(
        plugin.manifest().requires,
        vec!["io.containerd.nothing.v1".to_string()]
    );
    let tmp = tempfile::tempdir().unwrap();
    let instance = plugin.init(context(tmp.path())).unwrap();
    assert!(matches!(instance.driver, Driver::None));
}

/// A content store exported through generation 1 (its writers report no digest) still passes the
/// whole content suite across the boundary; content-local's own suite covers the current generation
/// (whose content objects are generation 2's).
#[test]
fn a_content_store_pinned_to_generation_1_passes_the_content_suite() {
    let Some((dir, _)) = support::test_plugins() else {
        return;
    };
    let library = dir.join("librcontainerd_test_plugin_content_v1_pinned.so");
    let plugin = load_one(&library);
    assert_eq!(plugin.manifest().abi_generation, 1);
    assert_eq!(plugin.manifest().uri(), "io.containerd.content.v1.content");
    rcontainerd_plugin_api::testsuite::content::run_all_loaded(&library);
}

#[test]
fn a_plugin_pinned_to_generation_1_loads() {
    let Some((dir, _)) = support::test_plugins() else {
        return;
    };
    let plugin = load_one(&dir.join("librcontainerd_test_plugin_abi_v1_pinned.so"));
    let manifest = plugin.manifest();
    assert_eq!(manifest.uri(), "io.containerd.internal.v1.abi-v1-pinned");
    assert_eq!(manifest.abi_generation, 1);
    assert_eq!(manifest.capabilities, vec!["pinned".to_string()]);
    assert_eq!(manifest.default_config, "answer = 42\n");
    let tmp = tempfile::tempdir().unwrap();
    let instance = plugin
        .init(InitContext {
            config: "answer = 7\n".into(),
            ..context(tmp.path())
        })
        .unwrap();
    assert_eq!(
        instance.exports.get("config").map(String::as_str),
        Some("answer = 7\n")
    );
}

#[test]
fn plugins_loaded_in_one_process_stay_distinct() {
    let Some(dir) = support::in_tree_plugins() else {
        return;
    };
    let Some((test_dir, _)) = support::test_plugins() else {
        return;
    };
    let native = load_one(&dir.join("librcontainerd_plugin_native.so"));
    let pinned = load_one(&test_dir.join("librcontainerd_test_plugin_abi_v1_pinned.so"));
    let content = load_one(&dir.join("librcontainerd_plugin_content_local.so"));
    // Loading the same file again gives the same plugin, not whichever was loaded first.
    let native_again = load_one(&dir.join("librcontainerd_plugin_native.so"));
    assert_eq!(
        native.manifest().uri(),
        "io.containerd.snapshotter.v1.native"
    );
    assert_eq!(
        pinned.manifest().uri(),
        "io.containerd.internal.v1.abi-v1-pinned"
    );
    assert_eq!(content.manifest().uri(), "io.containerd.content.v1.content");
    assert_eq!(native_again.manifest(), native.manifest());

    let tmp = tempfile::tempdir().unwrap();
    let native_instance = native
        .init(InitContext {
            root: tmp.path().join("native"),
            ..context(tmp.path())
        })
        .unwrap();
    let pinned_instance = pinned.init(context(tmp.path())).unwrap();
    let content_instance = content
        .init(InitContext {
            root: tmp.path().join("content"),
            ..context(tmp.path())
        })
        .unwrap();
    assert!(matches!(native_instance.driver, Driver::Snapshotter(_)));
    assert!(matches!(pinned_instance.driver, Driver::None));
    assert!(matches!(content_instance.driver, Driver::Content(_)));
    assert!(tmp.path().join("native/snapshots").is_dir());
    assert!(tmp.path().join("content/ingest").is_dir());
}
