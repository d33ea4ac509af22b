//! Broken plugin libraries in the plugin directory: each is listed as `error` with a one-line reason
//! (Introspection, Debian's ctr and ours) and the daemon keeps serving.

use std::path::Path;

use rcontainerd_api::services::introspection::Plugin;
use rcontainerd_tests::ctr::{find_row, parse_plugins_table};
use rcontainerd_tests::{
    find_plugin, plugin_uri, test_plugin_dir, uri, write_non_plugin_so, write_truncated_so, Ctr,
    Daemon, DaemonOptions, TestPlugin,
};

const PANIC_CALL: &str = "io.containerd.snapshotter.v1.panic-call";
const ABI_V1: &str = "io.containerd.internal.v1.abi-v1-pinned";

/// Entries that failed for a reason other than a skip.
fn errors(plugins: &[Plugin]) -> Vec<&Plugin> {
    plugins
        .iter()
        .filter(|p| {
            p.init_err
                .as_ref()
                .is_some_and(|e| !e.message.contains("skip plugin"))
        })
        .collect()
}

/// Starts a daemon on `dir` (in-tree plugins plus one broken library), checks that exactly one entry
/// failed, with a one-line reason, shown as `error` by both ctrs, while the in-tree plugins still
/// load and the daemon serves. Returns the failed entry.
async fn exactly_one_refusal(dir: &Path, what: &str) -> Plugin {
    let daemon = Daemon::start(DaemonOptions::new().plugin_dir(dir))
        .await
        .unwrap_or_else(|e| panic!("{what}: the daemon must survive it: {e}"));
    let plugins = daemon.plugins(&[]).await;
    let failed = errors(&plugins);
    assert_eq!(
        failed.len(),
        1,
        "{what}: expected exactly one failed entry, got {failed:#?}"
    );
    let failed = failed[0].clone();
    let err = failed.init_err.as_ref().unwrap();
    assert!(!err.message.trim().is_empty(), "{what}: empty reason");
    assert!(
        !err.message.contains('\n'),
        "{what}: reason is not one line: {:?}",
        err.message
    );
    assert!(
        err.message.len() < 500,
        "{what}: reason is too long ({} bytes): {:?}",
        err.message.len(),
        err.message
    );
    assert_ne!(err.code, tonic::Code::Ok as i32, "{what}: {err:?}");

    let failed_uri = plugin_uri(&failed);
    for which in Ctr::BOTH {
        let out = daemon.ctr(which, &["plugins", "ls"]);
        let rows = parse_plugins_table(out.ok());
        let row = find_row(&rows, &failed_uri)
            .unwrap_or_else(|| panic!("{what}: {which:?} ctr does not list {failed_uri}"));
        assert_eq!(row.status, "error", "{what}: {which:?}:\n{}", out.stdout);
        assert_eq!(
            find_row(&rows, uri::OVERLAYFS).map(|r| r.status.as_str()),
            Some("ok"),
            "{what}: {which:?}:\n{}",
            out.stdout
        );
    }
    let detail = daemon.ctr(Ctr::Debian, &["plugins", "ls", "-d"]);
    assert!(
        detail.ok().contains(err.message.as_str()),
        "{what}: Debian ctr -d should show the reason {:?}",
        err.message
    );

    for ok in [uri::OVERLAYFS, uri::NATIVE, uri::CONTENT] {
        let p = find_plugin(&plugins, ok).unwrap_or_else(|| panic!("{what}: {ok} missing"));
        assert!(p.init_err.is_none(), "{what}: {ok}: {:?}", p.init_err);
    }
    assert!(
        daemon.answers_version().await,
        "{what}: daemon stopped serving"
    );
    failed
}

async fn refused_test_plugin(plugin: TestPlugin) -> Plugin {
    let dir = test_plugin_dir(&[plugin]);
    exactly_one_refusal(dir.path(), &format!("{plugin:?}")).await
}

#[tokio::test]
async fn a_plugin_that_panics_in_init_is_an_error() {
    let failed = refused_test_plugin(TestPlugin::PanicInit).await;
    assert_eq!(plugin_uri(&failed), "io.containerd.internal.v1.panic-init");
    let message = &failed.init_err.unwrap().message;
    assert!(message.contains("panic"), "{message}");
}

/// panic-call initialises fine, so it is listed `ok`; its snapshotter panics in every call and in
/// `drop`. Shutdown drops it: the panic must stay inside the plugin and the exit stay clean.
#[tokio::test]
async fn a_plugin_that_panics_later_loads_and_shutdown_stays_clean() {
    let dir = test_plugin_dir(&[TestPlugin::PanicCall]);
    let mut daemon = Daemon::start(DaemonOptions::new().plugin_dir(dir.path()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plugins = daemon.plugins(&[]).await;
    let p = find_plugin(&plugins, PANIC_CALL).unwrap_or_else(|| panic!("{PANIC_CALL} missing"));
    assert!(p.init_err.is_none(), "{p:?}");
    assert!(daemon.answers_version().await);
    let status = daemon.terminate();
    assert!(
        status.success(),
        "exit {status}; stderr:\n{}",
        daemon.stderr()
    );
}

/// Each snapshot call into panic-call fails with an error naming the panic; the daemon serves on.
#[tokio::test]
async fn a_plugin_that_panics_in_a_call_fails_that_call_only() {
    use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
    use rcontainerd_api::services::snapshots::PrepareSnapshotRequest;
    let dir = test_plugin_dir(&[TestPlugin::PanicCall]);
    let daemon = Daemon::start(DaemonOptions::new().plugin_dir(dir.path()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for key in ["k1", "k2", "k3"] {
        let status = SnapshotsClient::new(daemon.channel())
            .prepare(rcontainerd_api::client::namespaced(
                PrepareSnapshotRequest {
                    snapshotter: "panic-call".into(),
                    key: key.into(),
                    ..Default::default()
                },
                "default",
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(status.code(), tonic::Code::Internal | tonic::Code::Unknown),
            "{status:?}"
        );
        assert!(status.message().contains("panic"), "{status:?}");
    }
    assert!(daemon.answers_version().await);
}

#[tokio::test]
async fn a_plugin_from_a_future_abi_generation_is_an_error() {
    let failed = refused_test_plugin(TestPlugin::FutureGeneration).await;
    assert_eq!(
        plugin_uri(&failed),
        "io.containerd.snapshotter.v1.future-generation"
    );
}

/// Generations 1 and 2 carry only a runtime placeholder: a runtime driver offered through them is
/// listed under its own URI as an error saying what it needs.
#[tokio::test]
async fn a_runtime_offered_through_abi_generation_2_is_an_error() {
    let failed = refused_test_plugin(TestPlugin::RuntimePlaceholder).await;
    assert_eq!(plugin_uri(&failed), "io.containerd.runtime.v2.fake");
    let err = failed.init_err.unwrap();
    assert!(
        err.message
            .contains("runtime drivers need ABI generation 3"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_plugin_requiring_a_type_nobody_provides_is_an_error() {
    let failed = refused_test_plugin(TestPlugin::MissingRequires).await;
    assert_eq!(
        plugin_uri(&failed),
        "io.containerd.internal.v1.missing-requires"
    );
    let err = failed.init_err.clone().unwrap();
    assert!(err.message.contains("not found"), "{err:?}");
    assert!(
        !failed.requires.is_empty(),
        "requires is reported: {failed:?}"
    );
}

#[tokio::test]
async fn a_plugin_built_with_panic_abort_is_refused() {
    let failed = refused_test_plugin(TestPlugin::PanicAbort).await;
    let message = &failed.init_err.clone().unwrap().message;
    // Refused before any of its code runs, so it may be listed by file rather than by its ID.
    assert!(
        plugin_uri(&failed) == "io.containerd.internal.v1.panic-abort"
            || message.contains(&TestPlugin::PanicAbort.file_name()),
        "neither the plugin's ID nor its file is named: {failed:?}"
    );
    assert!(message.contains("abort"), "{message}");
}

#[tokio::test]
async fn a_truncated_library_is_an_error_not_a_crash() {
    let dir = test_plugin_dir(&[]);
    let path = write_truncated_so(dir.path());
    let failed = exactly_one_refusal(dir.path(), "truncated .so").await;
    let message = failed.init_err.unwrap().message;
    assert!(
        message.contains(&file_name(&path)),
        "names the file: {message}"
    );
}

#[tokio::test]
async fn a_library_that_is_not_a_plugin_is_an_error() {
    let dir = test_plugin_dir(&[]);
    let path = write_non_plugin_so(dir.path());
    let failed = exactly_one_refusal(dir.path(), "non-plugin .so").await;
    let message = failed.init_err.unwrap().message;
    assert!(
        message.contains(&file_name(&path)),
        "names the file: {message}"
    );
}

/// A plugin built against the frozen v1 ABI generation keeps loading, and gets its config table.
#[tokio::test]
async fn a_plugin_built_against_abi_v1_loads_with_its_config() {
    let dir = test_plugin_dir(&[TestPlugin::AbiV1Pinned]);
    let daemon = Daemon::start(DaemonOptions::new().plugin_dir(dir.path()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plugins = daemon.plugins(&[]).await;
    let p = find_plugin(&plugins, ABI_V1).unwrap_or_else(|| panic!("{ABI_V1} missing"));
    assert!(p.init_err.is_none(), "{p:?}");
    assert_eq!(p.capabilities, ["pinned"]);
    let config = p.exports.get("config").map(String::as_str).unwrap_or("");
    assert!(
        config.contains("answer = 42"),
        "default config handed over: {config:?}"
    );
    for which in Ctr::BOTH {
        let out = daemon.ctr(which, &["plugins", "ls"]);
        let rows = parse_plugins_table(out.ok());
        assert_eq!(
            find_row(&rows, ABI_V1).map(|r| r.status.as_str()),
            Some("ok"),
            "{which:?}:\n{}",
            out.stdout
        );
    }
}

#[tokio::test]
async fn a_v1_plugin_gets_its_table_from_config_toml() {
    let dir = test_plugin_dir(&[TestPlugin::AbiV1Pinned]);
    let daemon = Daemon::start(
        DaemonOptions::new()
            .plugin_dir(dir.path())
            .extra_toml(&format!("[plugins.\"{ABI_V1}\"]\nanswer = 7\n")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let plugins = daemon.plugins(&[]).await;
    let p = find_plugin(&plugins, ABI_V1).unwrap_or_else(|| panic!("{ABI_V1} missing"));
    let config = p.exports.get("config").map(String::as_str).unwrap_or("");
    assert!(config.contains("answer = 7"), "{config:?}");
}

/// All of them at once.
#[tokio::test]
async fn every_broken_library_at_once_leaves_a_serving_daemon() {
    let broken = [
        TestPlugin::PanicInit,
        TestPlugin::IncompatibleAbi,
        TestPlugin::FutureGeneration,
        TestPlugin::MissingRequires,
        TestPlugin::PanicAbort,
    ];
    let mut libraries = broken.to_vec();
    libraries.extend([TestPlugin::PanicCall, TestPlugin::AbiV1Pinned]);
    let dir = test_plugin_dir(&libraries);
    write_truncated_so(dir.path());
    write_non_plugin_so(dir.path());
    let daemon = Daemon::start(DaemonOptions::new().plugin_dir(dir.path()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plugins = daemon.plugins(&[]).await;
    let failed = errors(&plugins);
    assert_eq!(failed.len(), broken.len() + 2, "{failed:#?}");
    for which in Ctr::BOTH {
        let out = daemon.ctr(which, &["plugins", "ls"]);
        let rows = parse_plugins_table(out.ok());
        let shown_as_error = rows.iter().filter(|r| r.status == "error").count();
        assert_eq!(shown_as_error, failed.len(), "{which:?}:\n{}", out.stdout);
    }
    for ok in [PANIC_CALL, ABI_V1, uri::OVERLAYFS, uri::NATIVE] {
        let p = find_plugin(&plugins, ok).unwrap_or_else(|| panic!("{ok} missing"));
        assert!(p.init_err.is_none(), "{ok}: {:?}", p.init_err);
    }
    assert!(daemon.answers_version().await);
    let ns = daemon.ctr(Ctr::Debian, &["namespaces", "create", "still-works"]);
    ns.ok();
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}
