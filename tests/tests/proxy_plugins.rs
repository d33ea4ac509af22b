//! containerd's `[proxy_plugins]` with rcontainerd itself as the external service: a second daemon
//! serves the Snapshots and Content APIs, the first reaches it through a proxy plugin. The
//! conformance suites run through the proxy drivers as Rust types; both ctrs drive the first daemon
//! end to end; an absent socket fails calls Unavailable until the remote listens.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcontainerd_api::client::namespaced;
use rcontainerd_api::services::content::{
    content_client::ContentClient, InfoRequest, WriteAction, WriteContentRequest,
};
use rcontainerd_api::services::snapshots::{
    snapshots_client::SnapshotsClient, CommitSnapshotRequest, Kind, PrepareSnapshotRequest,
    StatSnapshotRequest,
};
use rcontainerd_plugin_api::testsuite;
use rcontainerd_tests::ctr::{find_row, parse_plugins_table};
use rcontainerd_tests::daemon::run_rcontainerd;
use rcontainerd_tests::{uri, Ctr, Daemon, DaemonOptions};
use tonic::Code;

const REMOTE_SNAPSHOTTER: &str = "io.containerd.snapshotter.v1.remote";
const REMOTE_CONTENT: &str = "io.containerd.content.v1.remote";

/// The remote: a daemon without gc, which would otherwise collect what the first daemon (or a
/// conformance check) made there, since nothing in the remote's own records holds it. The first
/// daemons run without gc too: what the tests make through ctr is held by nothing, and a collection
/// would remove it (through the proxy, from the remote as well, as containerd's would).
async fn remote(socket: Option<&Path>) -> Daemon {
    let mut options = DaemonOptions::new().disable(uri::GC);
    if let Some(socket) = socket {
        options = options.address(socket);
    }
    Daemon::start(options)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn snapshot_proxy_toml(socket: &Path, snapshotter: &str) -> String {
    format!(
        "[proxy_plugins.remote]\ntype = \"snapshot\"\naddress = \"{}\"\nsnapshotter = \"{snapshotter}\"\n",
        socket.display()
    )
}

/// Each check gets a fresh namespace of the remote: a fresh snapshotter or store as it sees it.
fn fresh_namespace() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("conformance-{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

#[tokio::test]
async fn the_snapshot_conformance_suite_passes_through_a_proxy() {
    let remote = remote(None).await;
    let socket = remote.socket().display().to_string();
    for snapshotter in ["native", "overlayfs"] {
        testsuite::snapshot::run_all(&mut || {
            rcontainerd_proxy::snapshotter(
                REMOTE_SNAPSHOTTER,
                &socket,
                snapshotter,
                &fresh_namespace(),
            )
            .unwrap()
        });
    }
}

/// A fresh remote per check: blobs are shared between a daemon's namespaces (containerd's
/// default policy), so a fresh namespace is not a fresh store.
#[test]
fn the_content_conformance_suite_passes_through_a_proxy() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut remotes = Vec::new();
    testsuite::content::run_all(&mut || {
        let remote = runtime.block_on(remote(None));
        let socket = remote.socket().display().to_string();
        remotes.push(remote);
        rcontainerd_proxy::content_store(REMOTE_CONTENT, &socket, "default").unwrap()
    });
}

fn status_of(stdout: &str, uri: &str) -> String {
    let rows = parse_plugins_table(stdout);
    find_row(&rows, uri)
        .unwrap_or_else(|| panic!("{uri} is not listed in:\n{stdout}"))
        .status
        .clone()
}

#[tokio::test]
async fn both_ctrs_use_a_remote_snapshotter_through_the_proxy() {
    let remote = remote(None).await;
    let daemon = Daemon::start(
        DaemonOptions::new()
            .disable(uri::GC)
            .extra_toml(&snapshot_proxy_toml(&remote.socket(), "native")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for which in Ctr::BOTH {
        let listed = daemon.ctr(which, &["plugins", "ls"]).ok().to_owned();
        assert_eq!(
            status_of(&listed, REMOTE_SNAPSHOTTER),
            "ok",
            "{which:?}\n{listed}"
        );

        let key = format!("{which:?}-active").to_lowercase();
        let name = format!("{which:?}-committed").to_lowercase();
        let ctr = |args: &[&str]| {
            let mut all = vec!["snapshots", "--snapshotter", "remote"];
            all.extend_from_slice(args);
            daemon.ctr(which, &all)
        };
        ctr(&["prepare", &key]).ok();
        ctr(&["commit", &name, &key]).ok();
        let listed = ctr(&["ls"]).ok().to_owned();
        assert!(listed.contains(&name), "{which:?}: {listed}");
        // The remote holds it, under the first daemon's driver key.
        let there = remote
            .ctr(which, &["snapshots", "--snapshotter", "native", "ls"])
            .ok()
            .to_owned();
        assert!(
            there
                .lines()
                .any(|l| l.contains(&name) && l.contains("Committed")),
            "{which:?}: the remote lists:\n{there}"
        );
        let view = format!("{name}-view");
        ctr(&["view", &view, &name]).ok();
        let mounts = ctr(&["mounts", "/mnt", &view]).ok().to_owned();
        assert!(mounts.contains("mount -t bind"), "{which:?}: {mounts}");
        ctr(&["rm", &format!("{name}-view")]).ok();
        ctr(&["rm", &name]).ok();
        let there = remote
            .ctr(which, &["snapshots", "--snapshotter", "native", "ls"])
            .ok()
            .to_owned();
        assert!(
            !there.contains(&name),
            "{which:?}: still on the remote:\n{there}"
        );
    }
}

async fn prepare(daemon: &Daemon, key: &str) -> Result<(), tonic::Status> {
    let mut client = SnapshotsClient::new(daemon.channel());
    let request = PrepareSnapshotRequest {
        snapshotter: "remote".into(),
        key: key.into(),
        ..Default::default()
    };
    client
        .prepare(namespaced(request, "default"))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn an_absent_remote_fails_calls_unavailable_until_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("remote.sock");
    let daemon = Daemon::start(
        DaemonOptions::new()
            .disable(uri::GC)
            .extra_toml(&snapshot_proxy_toml(&socket, "native")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for which in Ctr::BOTH {
        let listed = daemon.ctr(which, &["plugins", "ls"]).ok().to_owned();
        assert_eq!(
            status_of(&listed, REMOTE_SNAPSHOTTER),
            "ok",
            "{which:?}\n{listed}"
        );
    }
    let status = prepare(&daemon, "early").await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let expected = format!(
        "proxy plugin {REMOTE_SNAPSHOTTER}: dial {}: ",
        socket.display()
    );
    assert!(
        status.message().starts_with(&expected),
        "{}",
        status.message()
    );
    let stderr = daemon
        .ctr(
            Ctr::Debian,
            &["snapshots", "--snapshotter", "remote", "prepare", "early"],
        )
        .failed()
        .to_owned();
    assert!(stderr.contains(&expected), "{stderr}");

    // The remote comes up: the same call works, the first daemon untouched.
    let remote = remote(Some(&socket)).await;
    prepare(&daemon, "early").await.unwrap();
    daemon
        .ctr(Ctr::Debian, &["snapshots", "--snapshotter", "remote", "ls"])
        .ok();

    // And after the remote restarts, the next calls dial it again.
    drop(remote);
    let status = prepare(&daemon, "while-down").await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let _remote = self::remote(Some(&socket)).await;
    prepare(&daemon, "again").await.unwrap();
}

/// The remote-snapshot handshake (stargz's): the remote has the layer a Prepare names in
/// `containerd.io/snapshot.ref` and answers AlreadyExists; the first daemon passes that through and
/// records the layer as a committed snapshot of its own.
#[tokio::test]
async fn the_remote_snapshot_handshake_passes_through() {
    const REF: &str = "containerd.io/snapshot.ref";
    let remote = remote(None).await;
    let daemon = Daemon::start(
        DaemonOptions::new()
            .disable(uri::GC)
            .extra_toml(&snapshot_proxy_toml(&remote.socket(), "native")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // The layer, as a remote snapshotter would hold it.
    let mut there = SnapshotsClient::new(remote.channel());
    let layer = "sha256:layer-chain-id";
    there
        .prepare(namespaced(
            PrepareSnapshotRequest {
                snapshotter: "native".into(),
                key: "fetching".into(),
                ..Default::default()
            },
            "default",
        ))
        .await
        .unwrap();
    there
        .commit(namespaced(
            CommitSnapshotRequest {
                snapshotter: "native".into(),
                name: layer.into(),
                key: "fetching".into(),
                labels: [(REF.to_string(), layer.to_string())].into(),
            },
            "default",
        ))
        .await
        .unwrap();

    let mut client = SnapshotsClient::new(daemon.channel());
    let status = client
        .prepare(namespaced(
            PrepareSnapshotRequest {
                snapshotter: "remote".into(),
                key: "extract-1".into(),
                labels: [(REF.to_string(), layer.to_string())].into(),
                ..Default::default()
            },
            "default",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    let info = client
        .stat(namespaced(
            StatSnapshotRequest {
                snapshotter: "remote".into(),
                key: layer.into(),
            },
            "default",
        ))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(info.kind, Kind::Committed as i32);
}

#[tokio::test]
async fn a_remote_content_store_serves_the_daemon() {
    let remote = remote(None).await;
    let toml = format!(
        "[proxy_plugins.remote]\ntype = \"content\"\naddress = \"unix://{}\"\n",
        remote.socket().display()
    );
    // Without gc: a blob no image or lease holds would be collected (and deleted on the remote).
    let options = DaemonOptions::new()
        .disable(uri::CONTENT)
        .disable(uri::GC)
        .extra_toml(&toml);
    let daemon = Daemon::start(options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for which in Ctr::BOTH {
        let listed = daemon.ctr(which, &["plugins", "ls"]).ok().to_owned();
        assert_eq!(
            status_of(&listed, REMOTE_CONTENT),
            "ok",
            "{which:?}\n{listed}"
        );
    }
    let data = b"through the proxy".to_vec();
    let requests = vec![
        WriteContentRequest {
            action: WriteAction::Write as i32,
            r#ref: "proxied".into(),
            data: data.clone().into(),
            ..Default::default()
        },
        WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: "proxied".into(),
            offset: data.len() as i64,
            total: data.len() as i64,
            ..Default::default()
        },
    ];
    let mut client = ContentClient::new(daemon.channel());
    let mut responses = client
        .write(namespaced(tokio_stream::iter(requests), "default"))
        .await
        .unwrap()
        .into_inner();
    let mut digest = String::new();
    while let Some(response) = responses.message().await.unwrap() {
        digest = response.digest;
    }
    assert!(digest.starts_with("sha256:"), "{digest}");
    // The blob is the remote's, in the namespace proxies call in.
    let mut there = ContentClient::new(remote.channel());
    let info = there
        .info(namespaced(
            InfoRequest {
                digest: digest.clone(),
            },
            "default",
        ))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(info.size, data.len() as i64);
    for which in Ctr::BOTH {
        let listed = daemon.ctr(which, &["content", "ls"]).ok().to_owned();
        assert!(listed.contains(&digest), "{which:?}: {listed}");
    }
}

#[test]
fn config_check_refuses_bad_proxy_plugins() {
    let dir = tempfile::tempdir().unwrap();
    for (table, expected) in [
        (
            "type = \"snapshotter\"\naddress = \"/run/r.sock\"",
            "`proxy_plugins.remote.type` is \"snapshotter\"",
        ),
        (
            "type = \"content\"\naddress = \"\"",
            "`proxy_plugins.remote.address` is empty",
        ),
    ] {
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            format!("version = 2\n[proxy_plugins.remote]\n{table}\n"),
        )
        .unwrap();
        let out = run_rcontainerd(&["config", "check", "--config", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted:\n{table}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}
