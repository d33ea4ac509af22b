//! The socket, Version, Introspection.Server and Health.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use rcontainerd_api::health::pb::health_check_response::ServingStatus;
use rcontainerd_api::health::pb::health_client::HealthClient;
use rcontainerd_api::health::pb::HealthCheckRequest;
use rcontainerd_tests::{Ctr, Daemon, DaemonOptions};

#[tokio::test]
async fn debian_ctr_version_shows_the_server_and_its_uuid() {
    let daemon = Daemon::start_default().await;
    let uuid = daemon.server_uuid().await;
    let out = daemon.ctr(Ctr::Debian, &["version"]);
    let stdout = out.ok();
    let server = stdout
        .split("Server:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Server section in:\n{stdout}"));
    assert!(server.contains("Version:"), "{stdout}");
    assert!(
        server.lines().any(|l| l.trim() == format!("UUID: {uuid}")),
        "server UUID {uuid} not shown:\n{stdout}"
    );
}

#[tokio::test]
async fn our_ctr_version_shows_the_same_server_section_as_debian_ctr() {
    let daemon = Daemon::start_default().await;
    let server_part = |s: &str| s.split("Server:").nth(1).map(str::to_owned);
    let ours = daemon.ctr(Ctr::Ours, &["version"]);
    let theirs = daemon.ctr(Ctr::Debian, &["version"]);
    assert!(ours.ok().contains("Client:"), "{}", ours.stdout);
    assert_eq!(server_part(ours.ok()), server_part(theirs.ok()));
}

#[tokio::test]
async fn server_uuid_is_a_uuid() {
    let daemon = Daemon::start_default().await;
    let uuid = daemon.server_uuid().await;
    let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{uuid:?}");
    assert!(
        uuid.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
        "{uuid:?}"
    );
}

#[tokio::test]
async fn health_reports_serving() {
    let daemon = Daemon::start_default().await;
    let response = HealthClient::new(daemon.channel())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("Health.Check")
        .into_inner();
    assert_eq!(response.status, ServingStatus::Serving as i32);
}

#[tokio::test]
async fn socket_is_a_socket_with_mode_0660() {
    let daemon = Daemon::start_default().await;
    let meta = std::fs::metadata(daemon.socket()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
}

#[tokio::test]
async fn the_socket_directory_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("not/yet/there/rcd.sock");
    let daemon = Daemon::start(DaemonOptions::new().address(&socket))
        .await
        .unwrap();
    assert!(daemon.answers_version().await);
    assert!(socket.exists());
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("stale.sock");
    // Bound, then closed: the file stays, nobody answers.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let daemon = Daemon::start(DaemonOptions::new().address(&socket))
        .await
        .unwrap();
    assert!(daemon.answers_version().await);
}

#[tokio::test]
async fn what_is_not_supported_answers_unimplemented() {
    use rcontainerd_api::services::tasks::tasks_client::TasksClient;
    use rcontainerd_api::services::tasks::CheckpointTaskRequest;
    let daemon = Daemon::start_default().await;
    let status = TasksClient::new(daemon.channel())
        .checkpoint(rcontainerd_api::client::namespaced(
            CheckpointTaskRequest {
                container_id: "c1".into(),
                ..Default::default()
            },
            "default",
        ))
        .await
        .expect_err("checkpointing is not supported");
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
    assert_eq!(
        status.message(),
        "checkpointing tasks is not supported: not implemented"
    );
}
