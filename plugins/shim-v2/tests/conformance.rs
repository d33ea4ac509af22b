//! The runtime conformance suite against the shim v2 driver — as its Rust type and as the
//! library the daemon loads — with Debian's `containerd-shim-runc-v2` and runc, in a root
//! filesystem of Debian's static busybox bound read-only. Needs root, the shim, runc and
//! `busybox-static`; otherwise it reports the missing prerequisite.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rcontainerd_plugin_api::runtime::Runtime;
use rcontainerd_plugin_api::snapshot::Mount;
use rcontainerd_plugin_api::testsuite::{self, runtime::RuntimeFixture};
use rcontainerd_plugin_shim_v2::{ShimEnv, ShimRuntime};

const BUSYBOX: &str = "/bin/busybox";
const SHIM: &str = "/usr/bin/containerd-shim-runc-v2";

fn prerequisites_met() -> bool {
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
        .iter()
        .any(|p| Path::new(p).is_file());
    let missing: Vec<&str> = [
        (nix::unistd::geteuid().is_root(), "root"),
        (runc, "runc"),
        (Path::new(SHIM).is_file(), SHIM),
        (Path::new(BUSYBOX).is_file(), "busybox-static"),
    ]
    .into_iter()
    .filter_map(|(present, what)| (!present).then_some(what))
    .collect();
    if !missing.is_empty() {
        rcontainerd_pkg::prereq::missing(missing.join(", "));
    }
    missing.is_empty()
}

/// Accepts the shims' events on `<dir>/events.sock` (a shim whose events go nowhere retries for
/// seconds before it exits); returns how many arrived.
fn serve_events(dir: &Path, io: &tokio::runtime::Runtime) -> Arc<AtomicUsize> {
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let mut server = rcontainerd_ttrpc::Server::new();
    server.register(
        rcontainerd_api::ttrpc::events::SERVICE,
        "Forward",
        move |_request| {
            counter.fetch_add(1, Ordering::Relaxed);
            async { Ok(Vec::new()) }
        },
    );
    let _entered = io.enter();
    let listener = tokio::net::UnixListener::bind(dir.join("events.sock")).unwrap();
    io.spawn(server.serve(listener, std::future::pending()));
    received
}

/// A busybox root filesystem in `dir`, and the fixture binding it read-only.
fn fixture(dir: &Path) -> RuntimeFixture {
    let rootfs = dir.join("rootfs");
    for sub in ["bin", "proc", "dev", "tmp"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "sleep", "echo", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let scratch = dir.join("out");
    std::fs::create_dir_all(&scratch).unwrap();
    RuntimeFixture {
        runtime: "io.containerd.runc.v2".into(),
        rootfs: vec![Mount {
            mount_type: "bind".into(),
            source: rootfs.to_string_lossy().into_owned(),
            target: String::new(),
            options: vec!["rbind".into(), "ro".into()],
        }],
        scratch,
        ttrpc_address: dir.join("events.sock").to_string_lossy().into_owned(),
    }
}

#[test]
fn the_rust_type_conforms() {
    if !prerequisites_met() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let io = tokio::runtime::Runtime::new().unwrap();
    let events = serve_events(dir.path(), &io);
    let fixture = fixture(dir.path());
    let roots = testsuite::Roots::new();
    testsuite::runtime::run_all(&fixture, &mut || {
        let base = roots.next();
        let env = ShimEnv {
            grpc_address: base.join("grpc.sock").to_string_lossy().into_owned(),
            ttrpc_address: fixture.ttrpc_address.clone(),
        };
        Arc::new(ShimRuntime::open(base.join("state"), base.join("root"), env).unwrap())
            as Arc<dyn Runtime>
    });
    assert!(
        events.load(Ordering::Relaxed) > 0,
        "no shim forwarded an event"
    );
}

#[test]
fn the_loaded_library_conforms() {
    if !prerequisites_met() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let io = tokio::runtime::Runtime::new().unwrap();
    let events = serve_events(dir.path(), &io);
    let fixture = fixture(dir.path());
    testsuite::runtime::run_all_loaded(
        &fixture,
        &testsuite::built_library("librcontainerd_plugin_shim_v2.so"),
    );
    assert!(
        events.load(Ordering::Relaxed) > 0,
        "no shim forwarded an event"
    );
}
