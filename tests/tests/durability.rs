//! What an RPC acknowledged survives `kill -9`; identity survives restarts.

use rcontainerd_api::services::namespaces::{
    CreateNamespaceRequest, GetNamespaceRequest, Namespace,
};
use rcontainerd_tests::{labels, Ctr, Daemon};

#[tokio::test]
async fn a_namespace_and_the_server_uuid_survive_kill_9() {
    let mut daemon = Daemon::start_without_gc().await;
    let uuid = daemon.server_uuid().await;
    daemon
        .namespaces()
        .create(CreateNamespaceRequest {
            namespace: Some(Namespace {
                name: "durable".into(),
                labels: labels(&[("k", "v")]),
            }),
        })
        .await
        .unwrap();
    // Killed the moment the create is acknowledged: no flush, no shutdown path.
    daemon.kill9();
    daemon.restart().await.unwrap();

    let got = daemon
        .namespaces()
        .get(GetNamespaceRequest {
            name: "durable".into(),
        })
        .await
        .unwrap_or_else(|s| panic!("namespace lost after kill -9: {s:?}"))
        .into_inner()
        .namespace
        .unwrap();
    assert_eq!(got.labels.get("k").map(String::as_str), Some("v"));
    assert_eq!(daemon.server_uuid().await, uuid, "server UUID changed");
}

#[tokio::test]
async fn namespaces_created_by_ctr_survive_kill_9_in_a_burst() {
    let mut daemon = Daemon::start_without_gc().await;
    let names: Vec<String> = (0..20).map(|i| format!("burst-{i}")).collect();
    for name in &names {
        daemon
            .ctr(Ctr::Debian, &["namespaces", "create", name])
            .ok();
    }
    daemon.kill9();
    daemon.restart().await.unwrap();
    let listed = daemon.ctr(Ctr::Debian, &["namespaces", "ls", "-q"]);
    let listed: Vec<&str> = listed.ok().lines().collect();
    for name in &names {
        assert!(listed.contains(&name.as_str()), "{name} lost: {listed:?}");
    }
}

#[tokio::test]
async fn server_uuid_is_stable_across_clean_restarts() {
    let mut daemon = Daemon::start_without_gc().await;
    let uuid = daemon.server_uuid().await;
    let status = daemon.terminate();
    assert!(status.success(), "{status}");
    daemon.restart().await.unwrap();
    assert_eq!(daemon.server_uuid().await, uuid);

    // A different root is a different server.
    let other = Daemon::start_without_gc().await;
    assert_ne!(other.server_uuid().await, uuid);
}
