//! `ctr plugins ls` (Debian's and ours) and Introspection.Plugins against a daemon with the in-tree
//! plugins: overlayfs, native and content load, btrfs skips on a non-btrfs root.

use rcontainerd_tests::ctr::{find_row, parse_plugins_table};
use rcontainerd_tests::{find_plugin, plugin_uri, uri, Ctr, Daemon};

fn status_of(stdout: &str, uri: &str) -> String {
    let rows = parse_plugins_table(stdout);
    find_row(&rows, uri)
        .unwrap_or_else(|| panic!("{uri} is not listed in:\n{stdout}"))
        .status
        .clone()
}

#[tokio::test]
async fn debian_ctr_lists_in_tree_plugins_with_their_status() {
    let daemon = Daemon::start_default().await;
    let out = daemon.ctr(Ctr::Debian, &["plugins", "ls"]);
    let stdout = out.ok();
    assert_eq!(status_of(stdout, uri::OVERLAYFS), "ok", "{stdout}");
    assert_eq!(status_of(stdout, uri::NATIVE), "ok", "{stdout}");
    assert_eq!(status_of(stdout, uri::CONTENT), "ok", "{stdout}");
    assert_eq!(status_of(stdout, uri::BTRFS), "skip", "{stdout}");
}

#[tokio::test]
async fn debian_ctr_lists_built_in_plugins_like_containerd() {
    let daemon = Daemon::start_default().await;
    let stdout = daemon.ctr(Ctr::Debian, &["plugins", "ls"]).ok().to_owned();
    for builtin in [
        "io.containerd.metadata.v1.bolt",
        "io.containerd.grpc.v1.introspection",
        "io.containerd.grpc.v1.namespaces",
        "io.containerd.grpc.v1.version",
    ] {
        assert_eq!(status_of(&stdout, builtin), "ok", "{stdout}");
    }
}

#[tokio::test]
async fn detailed_listing_shows_the_skip_code_and_message() {
    let daemon = Daemon::start_default().await;
    for which in Ctr::BOTH {
        let out = daemon.ctr(which, &["plugins", "ls", "-d", "id==btrfs"]);
        let stdout = out.ok();
        let code = stdout
            .lines()
            .find(|l| l.trim_start().starts_with("Code:"))
            .unwrap_or_else(|| panic!("{which:?}: no Code line in:\n{stdout}"));
        assert_eq!(
            code.split_whitespace().nth(1),
            Some("Unknown"),
            "{which:?}: {code}"
        );
        let message = stdout
            .lines()
            .find(|l| l.trim_start().starts_with("Message:"))
            .unwrap_or_else(|| panic!("{which:?}: no Message line in:\n{stdout}"));
        assert!(message.contains("skip plugin"), "{which:?}: {message}");
        assert!(message.contains("btrfs"), "{which:?}: {message}");
    }
}

#[tokio::test]
async fn detailed_listing_of_a_loaded_plugin_has_no_error_and_exports_its_root() {
    let daemon = Daemon::start_default().await;
    let out = daemon.ctr(Ctr::Debian, &["plugins", "ls", "-d", "id==overlayfs"]);
    let stdout = out.ok();
    assert!(!stdout.contains("Error:"), "{stdout}");
    let root = daemon.root().join(uri::OVERLAYFS);
    let root = root.to_str().unwrap();
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().eq(["root", root])),
        "overlayfs should export root {root}:\n{stdout}"
    );
}

/// Our ctr prints exactly what containerd's prints, for the same daemon.
#[tokio::test]
async fn our_ctr_prints_the_same_listing_as_debian_ctr() {
    let daemon = Daemon::start_default().await;
    for args in [
        &["plugins", "ls"][..],
        &["plugins", "ls", "-q"],
        &["plugins", "ls", "type==io.containerd.snapshotter.v1"],
        &["plugins", "ls", "id==btrfs", "id==native"],
    ] {
        let theirs = daemon.ctr(Ctr::Debian, args);
        let ours = daemon.ctr(Ctr::Ours, args);
        assert_eq!(ours.ok(), theirs.ok(), "ctr {args:?}: ours vs Debian's");
    }
}

/// `-d` prints exports from a Go map, in random order: compare the lines as multisets.
#[tokio::test]
async fn our_ctr_prints_the_same_details_as_debian_ctr() {
    let daemon = Daemon::start_default().await;
    let args = ["plugins", "ls", "-d"];
    let sorted = |s: &str| {
        let mut lines: Vec<String> = s.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    let theirs = daemon.ctr(Ctr::Debian, &args);
    let ours = daemon.ctr(Ctr::Ours, &args);
    assert_eq!(sorted(ours.ok()), sorted(theirs.ok()));
}

#[tokio::test]
async fn introspection_reports_skip_as_unknown_with_skip_plugin_message() {
    let daemon = Daemon::start_default().await;
    let plugins = daemon.plugins(&[]).await;
    let btrfs = find_plugin(&plugins, uri::BTRFS).expect("btrfs is listed");
    let err = btrfs.init_err.as_ref().expect("btrfs has an init error");
    assert_eq!(err.code, tonic::Code::Unknown as i32, "{err:?}");
    assert!(err.message.contains("skip plugin"), "{err:?}");
    for ok in [uri::OVERLAYFS, uri::NATIVE, uri::CONTENT] {
        let p = find_plugin(&plugins, ok).unwrap_or_else(|| panic!("{ok} is listed"));
        assert!(p.init_err.is_none(), "{ok}: {:?}", p.init_err);
    }
    // Nothing else in a default daemon fails.
    let failed: Vec<String> = plugins
        .iter()
        .filter(|p| p.init_err.is_some() && plugin_uri(p) != uri::BTRFS)
        .map(|p| format!("{}: {:?}", plugin_uri(p), p.init_err))
        .collect();
    assert!(failed.is_empty(), "unexpected failures: {failed:#?}");
}

#[tokio::test]
async fn introspection_filters_by_type_and_id() {
    let daemon = Daemon::start_default().await;
    let snapshotters = daemon
        .plugins(&["type==io.containerd.snapshotter.v1"])
        .await;
    assert!(snapshotters.len() >= 3, "{snapshotters:?}");
    assert!(snapshotters
        .iter()
        .all(|p| p.r#type == "io.containerd.snapshotter.v1"));

    let native = daemon.plugins(&["id==native"]).await;
    let uris: Vec<String> = native.iter().map(plugin_uri).collect();
    assert_eq!(uris, [uri::NATIVE]);

    // Several filters: either may match.
    let two = daemon
        .plugins(&["id==native", "type==io.containerd.content.v1"])
        .await;
    let mut uris: Vec<String> = two.iter().map(plugin_uri).collect();
    uris.sort();
    assert_eq!(uris, [uri::CONTENT, uri::NATIVE]);

    // Within one filter, `,` means both must match.
    let both = daemon
        .plugins(&["type==io.containerd.grpc.v1,id==namespaces"])
        .await;
    let uris: Vec<String> = both.iter().map(plugin_uri).collect();
    assert_eq!(uris, ["io.containerd.grpc.v1.namespaces"]);

    let none = daemon.plugins(&["id==no-such-plugin"]).await;
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test]
async fn loaded_snapshotters_create_their_root_under_the_daemon_root() {
    let daemon = Daemon::start_default().await;
    for uri in [uri::OVERLAYFS, uri::NATIVE, uri::CONTENT] {
        let dir = daemon.root().join(uri);
        assert!(dir.is_dir(), "{} should exist", dir.display());
        let plugins = daemon.plugins(&[]).await;
        let p = find_plugin(&plugins, uri).unwrap();
        assert_eq!(
            p.exports.get("root").map(String::as_str),
            Some(dir.to_str().unwrap()),
            "{uri} exports"
        );
    }
}
