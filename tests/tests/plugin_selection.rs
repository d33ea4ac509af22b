//! `disabled_plugins`, `required_plugins` and shutdown.

use rcontainerd_tests::ctr::{find_row, parse_plugins_table};
use rcontainerd_tests::{
    find_plugin, test_plugin_dir, uri, Ctr, Daemon, DaemonError, DaemonOptions, TestPlugin,
};

/// Starting must fail: returns the daemon's stderr after checking the exit status.
async fn start_fails(options: DaemonOptions) -> String {
    match Daemon::start(options).await {
        Ok(daemon) => panic!(
            "daemon started but should have refused; stderr:\n{}",
            daemon.stderr()
        ),
        Err(DaemonError::Exited { status, stderr }) => {
            assert!(!status.success(), "exit status {status}; stderr:\n{stderr}");
            stderr
        }
        Err(e) => panic!("daemon should have exited non-zero: {e}"),
    }
}

#[tokio::test]
async fn a_disabled_plugin_is_not_listed() {
    let daemon = Daemon::start(DaemonOptions::new().disable(uri::NATIVE))
        .await
        .unwrap();
    let plugins = daemon.plugins(&[]).await;
    assert!(find_plugin(&plugins, uri::NATIVE).is_none(), "{plugins:?}");
    assert!(find_plugin(&plugins, uri::OVERLAYFS).is_some());
    for which in Ctr::BOTH {
        let out = daemon.ctr(which, &["plugins", "ls"]);
        let rows = parse_plugins_table(out.ok());
        assert!(
            find_row(&rows, uri::NATIVE).is_none(),
            "{which:?}:\n{}",
            out.stdout
        );
        assert!(
            find_row(&rows, uri::OVERLAYFS).is_some(),
            "{which:?}:\n{}",
            out.stdout
        );
    }
}

#[tokio::test]
async fn a_required_plugin_that_loads_lets_the_daemon_start() {
    let daemon = Daemon::start(
        DaemonOptions::new()
            .require(uri::OVERLAYFS)
            .require(uri::CONTENT),
    )
    .await
    .unwrap();
    assert!(daemon.answers_version().await);
}

#[tokio::test]
async fn a_required_plugin_that_skips_aborts_startup_naming_it() {
    let stderr = start_fails(DaemonOptions::new().require(uri::BTRFS)).await;
    assert!(stderr.contains(uri::BTRFS), "stderr:\n{stderr}");
}

#[tokio::test]
async fn a_required_plugin_that_fails_aborts_startup_naming_it() {
    let dir = test_plugin_dir(&[TestPlugin::PanicInit]);
    let panic_init = "io.containerd.internal.v1.panic-init";
    let stderr = start_fails(
        DaemonOptions::new()
            .plugin_dir(dir.path())
            .require(panic_init),
    )
    .await;
    assert!(stderr.contains(panic_init), "stderr:\n{stderr}");
}

#[tokio::test]
async fn a_failing_plugin_that_is_not_required_does_not_stop_startup() {
    let dir = test_plugin_dir(&[TestPlugin::PanicInit]);
    let daemon = Daemon::start(
        DaemonOptions::new()
            .plugin_dir(dir.path())
            .require(uri::NATIVE),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(daemon.answers_version().await);
}

#[tokio::test]
async fn a_required_plugin_that_is_absent_aborts_startup_naming_it() {
    let missing = "io.containerd.snapshotter.v1.nosuchthing";
    let stderr = start_fails(DaemonOptions::new().require(missing)).await;
    assert!(stderr.contains(missing), "stderr:\n{stderr}");
}

#[tokio::test]
async fn a_required_plugin_that_is_disabled_aborts_startup_naming_it() {
    let stderr = start_fails(
        DaemonOptions::new()
            .disable(uri::NATIVE)
            .require(uri::NATIVE),
    )
    .await;
    assert!(stderr.contains(uri::NATIVE), "stderr:\n{stderr}");
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let mut daemon = Daemon::start_default().await;
    let status = daemon.terminate();
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        daemon.stderr()
    );
}

/// containerd stops serving at once on SIGTERM: a client that keeps its connection open (here: one
/// that sent the HTTP/2 preface and then ignores the server's GOAWAY) must not hold the daemon up.
#[tokio::test]
async fn sigterm_shuts_down_promptly_with_a_stuck_client_connected() {
    use std::io::Write;
    let mut daemon = Daemon::start_default().await;
    let mut stuck = std::os::unix::net::UnixStream::connect(daemon.socket()).unwrap();
    // Connection preface, then an empty SETTINGS frame.
    stuck
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    assert!(daemon.answers_version().await);
    let started = std::time::Instant::now();
    let status = daemon.terminate();
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        daemon.stderr()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    drop(stuck);
}

#[tokio::test]
async fn a_second_daemon_on_a_live_socket_refuses_to_start() {
    let first = Daemon::start_default().await;
    let socket = first.socket();
    let stderr = start_fails(DaemonOptions::new().address(&socket)).await;
    assert!(
        stderr.contains(socket.to_str().unwrap()),
        "message should name the socket; stderr:\n{stderr}"
    );
    // The first daemon is untouched.
    assert!(first.answers_version().await);
}

/// Two plugins requiring each other's type: startup fails and the message names the cycle.
#[tokio::test]
async fn a_dependency_cycle_aborts_startup_naming_it() {
    let dir = test_plugin_dir(&[TestPlugin::CycleA, TestPlugin::CycleB]);
    let stderr = start_fails(DaemonOptions::new().plugin_dir(dir.path())).await;
    assert!(stderr.contains("cycle"), "stderr:\n{stderr}");
    assert!(stderr.contains("test-cycle-a"), "stderr:\n{stderr}");
    assert!(stderr.contains("test-cycle-b"), "stderr:\n{stderr}");
}
