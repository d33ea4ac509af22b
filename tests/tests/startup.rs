//! Start-up failures are loud: one daemon per root and state directory, a
//! metadata store that cannot open stops the daemon, and a service whose
//! plugin failed answers Unavailable with the reason.

use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::ListSnapshotsRequest;
use rcontainerd_tests::{Ctr, Daemon, DaemonError, DaemonOptions};

/// Options that point a second daemon at `flag <dir>` of the first.
fn sharing(flag: &str, dir: &std::path::Path) -> DaemonOptions {
    let mut options = DaemonOptions::new();
    options.args = vec![flag.to_string(), dir.display().to_string()];
    options
}

#[tokio::test]
async fn a_second_daemon_on_the_same_root_exits_naming_the_root_and_holder() {
    let first = Daemon::start_default().await;
    let pid = first.pid().expect("first daemon runs");
    let err = match Daemon::start(sharing("--root", &first.root())).await {
        Err(e) => e,
        Ok(_) => panic!("a second daemon started on a root already in use"),
    };
    let DaemonError::Exited { status, stderr } = &err else {
        panic!("expected the second daemon to exit: {err}");
    };
    assert!(!status.success(), "{status}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.contains(&first.root().display().to_string()) && last.contains(&format!("pid {pid}")),
        "the last line should name the root and the holder: {stderr}"
    );
    // Nothing of the first daemon's was touched: no plugin of the second
    // one was initialised.
    assert!(!stderr.contains("loaded plugin"), "{stderr}");
    assert!(first.answers_version().await);
    first
        .ctr(Ctr::Ours, &["namespaces", "create", "still-here"])
        .ok();
}

#[tokio::test]
async fn a_second_daemon_on_the_same_state_dir_exits_naming_it() {
    let first = Daemon::start_default().await;
    let err = match Daemon::start(sharing("--state", &first.state())).await {
        Err(e) => e,
        Ok(_) => panic!("a second daemon started on a state dir already in use"),
    };
    assert!(matches!(err, DaemonError::Exited { .. }), "{err}");
    assert!(
        err.stderr().contains(&first.state().display().to_string()),
        "{}",
        err.stderr()
    );
    assert!(first.answers_version().await);
}

#[tokio::test]
async fn a_metadata_store_that_cannot_open_stops_the_daemon_with_the_reason() {
    let mut daemon = Daemon::start_default().await;
    daemon
        .ctr(Ctr::Ours, &["namespaces", "create", "kept"])
        .ok();
    daemon.terminate();
    let current = daemon
        .root()
        .join("io.containerd.metadata.v1.bolt/meta.rocksdb/CURRENT");
    std::fs::write(&current, "garbage\n").unwrap();
    let err = daemon
        .restart()
        .await
        .expect_err("the daemon must not serve without its metadata store");
    let DaemonError::Exited { status, stderr } = &err else {
        panic!("expected the daemon to exit: {err}");
    };
    assert!(!status.success(), "{status}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.contains("io.containerd.metadata.v1.bolt") && last.contains("Corruption"),
        "the last line should give the reason: {stderr}"
    );
    assert!(!stderr.contains("successfully booted"), "{stderr}");
}

#[tokio::test]
async fn a_service_whose_plugin_failed_answers_unavailable_with_the_reason() {
    let daemon =
        Daemon::start(DaemonOptions::new().disable("io.containerd.service.v1.snapshots-service"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    let status = SnapshotsClient::new(daemon.channel())
        .list(rcontainerd_api::client::namespaced(
            ListSnapshotsRequest {
                snapshotter: "overlayfs".into(),
                filters: vec![],
            },
            "default",
        ))
        .await
        .map(|_| ())
        .expect_err("Snapshots has no store to serve");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("snapshots-service"),
        "the reason should name what failed: {status:?}"
    );
    for which in Ctr::BOTH {
        let stderr = daemon.ctr(which, &["snapshots", "ls"]).failed().to_string();
        assert!(stderr.contains("unavailable"), "{which:?}: {stderr}");
    }
    // Introspection still lists the failed plugin with its reason.
    let rows = daemon.plugins(&["id==snapshots"]).await;
    let grpc = rows
        .iter()
        .find(|p| p.r#type == "io.containerd.grpc.v1")
        .expect("the snapshots gRPC plugin is listed");
    assert!(grpc.init_err.is_some(), "{grpc:?}");
}
