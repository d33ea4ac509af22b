//! Drivers isolated in supervised child processes (`isolation = "process"`): the same unmodified
//! `.so` passes the conformance suites served from `rcontainerd-isolated`; a segfault, an abort or
//! a hang in an isolated driver fails only the call in flight, the driver restarts and serves
//! again, and the other plugins never notice; both ctrs show its state and restart count; a
//! replaced library is picked up on SIGHUP without losing an acknowledged request; the children die
//! with the daemon.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcontainerd_api::client::namespaced;
use rcontainerd_api::services::snapshots::{
    snapshots_client::SnapshotsClient, CommitSnapshotRequest, PrepareSnapshotRequest,
    StatSnapshotRequest,
};
use rcontainerd_isolation::{settings, Mode, Settings, Spec, Supervisor};
use rcontainerd_plugin_api::testsuite::{self, Roots};
use rcontainerd_plugin_api::{Driver, InitContext};
use rcontainerd_tests::binaries;
use rcontainerd_tests::test_plugins::{test_plugin_dir, test_plugin_dir_without, TestPlugin};
use rcontainerd_tests::{uri, Ctr, Daemon, DaemonOptions};
use tonic::Code;

const FAULTY: &str = "io.containerd.snapshotter.v1.faulty";
const NATIVE: &str = "io.containerd.snapshotter.v1.native";
const NATIVE_SO: &str = "librcontainerd_plugin_native.so";

fn in_tree(file_name: &str) -> PathBuf {
    binaries::in_tree_plugins()
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == file_name))
        .unwrap_or_else(|| panic!("{file_name} is not built"))
}

/// Starts `uri` of `library` in a child of this test process, as the daemon would.
fn isolate(library: &Path, uri: &str, roots: &Roots) -> rcontainerd_isolation::Isolated {
    let dir = roots.next();
    std::fs::create_dir_all(&dir).unwrap();
    let spec = Spec {
        uri: uri.to_string(),
        library: library.to_path_buf(),
        helper: binaries::built_binary(rcontainerd_isolation::HELPER),
        socket: dir.join("driver.sock"),
        init: InitContext {
            root: dir.join("root"),
            state: dir.join("state"),
            ..InitContext::default()
        },
        settings: Settings {
            mode: Mode::Process,
            call_timeout: Duration::from_secs(30),
            capabilities: settings::DEFAULT_CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .collect(),
        },
    };
    rcontainerd_isolation::start(spec).unwrap_or_else(|e| panic!("isolating {uri}: {e}"))
}

/// A fresh isolated driver per check; the previous check's child is stopped.
fn fresh_isolated_drivers<'a>(
    library: &Path,
    uri: &str,
    roots: &'a Roots,
) -> impl FnMut() -> Driver + 'a {
    let library = library.to_path_buf();
    let uri = uri.to_string();
    let mut previous: Option<Arc<Supervisor>> = None;
    move || {
        if let Some(old) = previous.take() {
            old.stop();
        }
        let isolated = isolate(&library, &uri, roots);
        previous = Some(isolated.supervisor.clone());
        match isolated.kind {
            rcontainerd_isolation::DriverKind::Snapshotter => Driver::Snapshotter(Arc::new(
                rcontainerd_proxy::ProxySnapshotter::new(isolated.remote, "isolated"),
            )),
            rcontainerd_isolation::DriverKind::Content => Driver::Content(Arc::new(
                rcontainerd_proxy::ProxyContentStore::new(isolated.remote),
            )),
        }
    }
}

#[test]
fn the_snapshot_conformance_suite_passes_through_isolated_drivers() {
    let roots = Roots::new();
    for (file, uri) in [
        (NATIVE_SO, NATIVE),
        (
            "librcontainerd_plugin_overlayfs.so",
            "io.containerd.snapshotter.v1.overlayfs",
        ),
    ] {
        let mut make = fresh_isolated_drivers(&in_tree(file), uri, &roots);
        testsuite::snapshot::run_all(&mut || match make() {
            Driver::Snapshotter(s) => s,
            other => panic!("{uri} serves {other:?}"),
        });
    }
}

#[test]
fn the_content_conformance_suite_passes_through_an_isolated_driver() {
    let roots = Roots::new();
    let uri = "io.containerd.content.v1.content";
    let mut make = fresh_isolated_drivers(
        &in_tree("librcontainerd_plugin_content_local.so"),
        uri,
        &roots,
    );
    testsuite::content::run_all(&mut || match make() {
        Driver::Content(c) => c,
        other => panic!("{uri} serves {other:?}"),
    });
}

fn isolated_toml(uri: &str, call_timeout: &str) -> String {
    format!(
        "[plugins.\"{uri}\"]\nisolation = \"process\"\nisolation_call_timeout = \"{call_timeout}\"\n"
    )
}

async fn prepare(daemon: &Daemon, snapshotter: &str, key: &str) -> Result<(), tonic::Status> {
    let request = PrepareSnapshotRequest {
        snapshotter: snapshotter.into(),
        key: key.into(),
        ..Default::default()
    };
    SnapshotsClient::new(daemon.channel())
        .prepare(namespaced(request, "default"))
        .await
        .map(|_| ())
}

/// The exports `ctr plugins ls -d` prints for `id`, as name → value.
fn exports(daemon: &Daemon, which: Ctr, id: &str) -> Vec<(String, String)> {
    let out = daemon
        .ctr(which, &["plugins", "ls", "-d", &format!("id=={id}")])
        .ok()
        .to_owned();
    let mut lines = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Exports:"));
    lines.next();
    lines
        .take_while(|l| l.starts_with(char::is_whitespace) && !l.trim().is_empty())
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next()?.to_string();
            Some((name, parts.collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

fn export(exports: &[(String, String)], name: &str) -> String {
    exports
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no export {name} in {exports:?}"))
}

#[tokio::test]
async fn a_crash_or_hang_in_an_isolated_driver_fails_only_the_call_in_flight() {
    let plugins = test_plugin_dir(&[TestPlugin::Faulty]);
    let mut daemon = Daemon::start(
        DaemonOptions::new()
            .plugin_dir(plugins.path())
            .disable(uri::GC)
            .extra_toml(&isolated_toml(FAULTY, "2s")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    prepare(&daemon, "faulty", "before").await.unwrap();
    for which in Ctr::BOTH {
        let e = exports(&daemon, which, "faulty");
        assert_eq!(export(&e, "isolation"), "process", "{which:?}");
        assert_eq!(export(&e, "state"), "running", "{which:?}");
        assert_eq!(export(&e, "restarts"), "0", "{which:?}");
    }
    let first_pid = export(&exports(&daemon, Ctr::Ours, "faulty"), "pid");

    let faults = [
        ("segfault", "killed by SIGSEGV"),
        ("abort", "killed by SIGABRT"),
        ("hang", "a call got no answer within 2s"),
    ];
    for (n, (fault, exit)) in faults.into_iter().enumerate() {
        let started = Instant::now();
        let status = prepare(&daemon, "faulty", &format!("{fault}-1"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{fault}: {status:?}");
        assert!(
            status
                .message()
                .contains(&format!("isolated plugin {FAULTY}")),
            "{fault}: {}",
            status.message()
        );
        if fault == "hang" {
            let waited = started.elapsed();
            assert!(
                waited >= Duration::from_secs(2),
                "{fault}: failed after {waited:?}"
            );
        }
        // The other plugins never noticed.
        prepare(&daemon, "native", &format!("native-{fault}"))
            .await
            .unwrap();
        // The driver is back: the next call waits for the restart and is served.
        prepare(&daemon, "faulty", &format!("after-{fault}"))
            .await
            .unwrap_or_else(|s| panic!("after {fault}: {s:?}"));
        for which in Ctr::BOTH {
            let e = exports(&daemon, which, "faulty");
            assert_eq!(export(&e, "state"), "running", "{which:?} after {fault}");
            assert_eq!(
                export(&e, "restarts"),
                (n + 1).to_string(),
                "{which:?} after {fault}"
            );
            let last = export(&e, "last_exit");
            assert!(last.contains(exit), "{which:?} after {fault}: {last}");
        }
    }
    let last_pid = export(&exports(&daemon, Ctr::Ours, "faulty"), "pid");
    assert_ne!(first_pid, last_pid);
    assert!(daemon.is_running());
    assert!(daemon.answers_version().await);
    let listed = daemon
        .ctr(Ctr::Debian, &["snapshots", "--snapshotter", "native", "ls"])
        .ok()
        .to_owned();
    assert!(listed.contains("native-hang"), "{listed}");
}

/// The children of the daemon's isolated drivers.
fn helper_pids() -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // The kernel keeps the first 15 bytes of a command's name.
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim() == &rcontainerd_isolation::HELPER[..15] {
            pids.push(pid);
        }
    }
    pids
}

fn stat_name(
    daemon: &Daemon,
    key: &str,
) -> impl std::future::Future<Output = Result<(), tonic::Status>> {
    let mut client = SnapshotsClient::new(daemon.channel());
    let request = StatSnapshotRequest {
        snapshotter: "native".into(),
        key: key.into(),
    };
    async move {
        client
            .stat(namespaced(request, "default"))
            .await
            .map(|_| ())
    }
}

#[tokio::test]
async fn a_replaced_library_is_picked_up_on_sighup_without_losing_requests() {
    // The native snapshotter from a real copy (not a link) that the test replaces.
    let plugins = test_plugin_dir_without(&[NATIVE_SO], &[]);
    let library = plugins.path().join(NATIVE_SO);
    std::fs::copy(in_tree(NATIVE_SO), &library).unwrap();
    let daemon = Daemon::start(
        DaemonOptions::new()
            .plugin_dir(plugins.path())
            .disable(uri::GC)
            .extra_toml(&isolated_toml(NATIVE, "10s")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let old_pid = export(&exports(&daemon, Ctr::Ours, "native"), "pid");

    // Clients prepare and commit without pause while the library is replaced.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for c in 0..3 {
        let channel = daemon.channel();
        let stop = stop.clone();
        let acknowledged = acknowledged.clone();
        clients.push(tokio::spawn(async move {
            let mut client = SnapshotsClient::new(channel);
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let key = format!("c{c}-{n}");
                let name = format!("{key}-committed");
                let prepare = PrepareSnapshotRequest {
                    snapshotter: "native".into(),
                    key: key.clone(),
                    ..Default::default()
                };
                client.prepare(namespaced(prepare, "default")).await?;
                let commit = CommitSnapshotRequest {
                    snapshotter: "native".into(),
                    name: name.clone(),
                    key,
                    ..Default::default()
                };
                client.commit(namespaced(commit, "default")).await?;
                acknowledged.lock().unwrap().push(name);
                n += 1;
            }
            Ok::<_, tonic::Status>(n)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = acknowledged.lock().unwrap().len();

    // Replace the file the way an operator would (install/mv: a new inode), then SIGHUP.
    let staged = plugins.path().join("native.so.new");
    std::fs::copy(in_tree(NATIVE_SO), &staged).unwrap();
    std::fs::rename(&staged, &library).unwrap();
    let daemon_pid = nix::unistd::Pid::from_raw(daemon.pid().unwrap() as i32);
    nix::sys::signal::kill(daemon_pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_pid = loop {
        let e = exports(&daemon, Ctr::Debian, "native");
        if export(&e, "upgrades") == "1" && export(&e, "state") == "running" {
            assert_eq!(export(&e, "restarts"), "0", "an upgrade is not a crash");
            break export(&e, "pid");
        }
        assert!(Instant::now() < deadline, "no upgrade within 30 s: {e:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(old_pid, new_pid);
    // The new child maps the new file (the old one's mapping would read "(deleted)").
    let maps = std::fs::read_to_string(format!("/proc/{new_pid}/maps")).unwrap();
    assert!(
        maps.lines()
            .any(|l| l.ends_with(&library.display().to_string())),
        "{maps}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        let made = client
            .await
            .unwrap()
            .unwrap_or_else(|s| panic!("a client's request failed across the upgrade: {s:?}"));
        assert!(made > 0);
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > before,
        "no request was served after the upgrade ({before} before, {} in all)",
        acknowledged.len()
    );
    for name in &acknowledged {
        stat_name(&daemon, name)
            .await
            .unwrap_or_else(|s| panic!("{name} was acknowledged but is gone: {s:?}"));
    }
    // The driver itself still has them: a view of the last one mounts from its directory.
    let last = acknowledged.last().unwrap();
    let view = daemon
        .ctr(
            Ctr::Ours,
            &[
                "snapshots",
                "--snapshotter",
                "native",
                "view",
                "last-view",
                last,
            ],
        )
        .ok()
        .to_owned();
    assert!(view.contains("bind") || view.is_empty(), "{view}");
    daemon
        .ctr(
            Ctr::Debian,
            &[
                "snapshots",
                "--snapshotter",
                "native",
                "mounts",
                "/mnt",
                "last-view",
            ],
        )
        .ok();
}

#[tokio::test]
async fn isolated_drivers_die_with_the_daemon_and_come_back_with_it() {
    let mut daemon = Daemon::start(
        DaemonOptions::new()
            .disable(uri::GC)
            .extra_toml(&isolated_toml(NATIVE, "10s")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    prepare(&daemon, "native", "kept").await.unwrap();
    let pid: u32 = export(&exports(&daemon, Ctr::Ours, "native"), "pid")
        .parse()
        .unwrap();
    assert!(helper_pids().contains(&pid));
    daemon.kill9();
    let deadline = Instant::now() + Duration::from_secs(5);
    while helper_pids().contains(&pid) {
        assert!(
            Instant::now() < deadline,
            "helper {pid} outlived the daemon"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.restart().await.unwrap_or_else(|e| panic!("{e}"));
    stat_name(&daemon, "kept").await.unwrap();
    prepare(&daemon, "native", "again").await.unwrap();
}

#[tokio::test]
async fn isolation_settings_are_checked_and_runtimes_are_not_isolated() {
    let daemon = Daemon::start(DaemonOptions::new().disable(uri::GC).extra_toml(
        "[plugins.\"io.containerd.snapshotter.v1.native\"]\nisolation = \"thread\"\n\
                 [plugins.\"io.containerd.runtime.v2.task\"]\nisolation = \"process\"\n",
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for which in Ctr::BOTH {
        let out = daemon
            .ctr(which, &["plugins", "ls", "-d", "id==native"])
            .ok()
            .to_owned();
        assert!(
            out.contains("plugins.\"io.containerd.snapshotter.v1.native\".isolation: expected \"none\" or \"process\""),
            "{which:?}: {out}"
        );
        let out = daemon
            .ctr(which, &["plugins", "ls", "-d", "id==task"])
            .ok()
            .to_owned();
        assert!(out.contains("isolation"), "{which:?}: {out}");
    }
    // The rest serves.
    prepare(&daemon, "overlayfs", "fine").await.unwrap();
}
