//! Both ctrs take the address and namespace from `CONTAINERD_ADDRESS` / `CONTAINERD_NAMESPACE`.

use rcontainerd_tests::{Ctr, Daemon};

#[tokio::test]
async fn the_address_comes_from_containerd_address() {
    let daemon = Daemon::start_default().await;
    let socket = daemon.socket();
    let env = [("CONTAINERD_ADDRESS", socket.to_str().unwrap())];
    let theirs = Ctr::Debian.run_with_env(&["plugins", "ls", "-q"], &env);
    let ours = Ctr::Ours.run_with_env(&["plugins", "ls", "-q"], &env);
    assert!(
        theirs.ok().lines().any(|l| l == "overlayfs"),
        "{}",
        theirs.stdout
    );
    assert_eq!(ours.ok(), theirs.ok());
}

#[tokio::test]
async fn the_address_flag_wins_over_the_environment() {
    let daemon = Daemon::start_default().await;
    let socket = daemon.socket();
    let env = [("CONTAINERD_ADDRESS", "/nonexistent/rcd.sock")];
    for which in Ctr::BOTH {
        let out = which.run_with_env(&["--address", socket.to_str().unwrap(), "version"], &env);
        out.ok();
    }
}

/// `namespaces ls` is not namespaced, but a wrong CONTAINERD_NAMESPACE must not break it, and the
/// listing is the same for both ctrs.
#[tokio::test]
async fn a_namespace_from_the_environment_does_not_change_namespaces_ls() {
    let daemon = Daemon::start_default().await;
    daemon
        .ctr(Ctr::Debian, &["namespaces", "create", "envtest"])
        .ok();
    let socket = daemon.socket();
    let env = [
        ("CONTAINERD_ADDRESS", socket.to_str().unwrap()),
        ("CONTAINERD_NAMESPACE", "other"),
    ];
    let theirs = Ctr::Debian.run_with_env(&["namespaces", "ls", "-q"], &env);
    let ours = Ctr::Ours.run_with_env(&["namespaces", "ls", "-q"], &env);
    assert!(
        theirs.ok().lines().any(|l| l == "envtest"),
        "{}",
        theirs.stdout
    );
    assert_eq!(ours.ok(), theirs.ok());
}
