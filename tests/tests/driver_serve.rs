//! A driver served on a socket of its own (what an isolated driver's process does): the built
//! `native`, `overlayfs` and `content-local` libraries, loaded through the ABI and served with
//! `rcontainerd_proxy::serve` inside the test process, pass the conformance suites through the
//! proxy clients the daemon uses. Each check gets a fresh driver on a fresh socket.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcontainerd_plugin_api::content::{Store, WriterOptions};
use rcontainerd_plugin_api::snapshot::Snapshotter;
use rcontainerd_plugin_api::testsuite::{init_loaded, Roots};
use rcontainerd_plugin_api::{testsuite, Driver, ErrorKind};
use rcontainerd_proxy::ServeError;
use rcontainerd_tests::binaries::profile_dir;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

const SNAPSHOTTER_URI: &str = "io.containerd.snapshotter.v1.isolated";
const CONTENT_URI: &str = "io.containerd.content.v1.isolated";

/// A built in-tree plugin library; panics with a hint when it has not been built.
fn library(name: &str) -> PathBuf {
    let path = profile_dir().join(format!("librcontainerd_plugin_{name}.so"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build` (the workspace's default members) before the tests",
        path.display()
    );
    path
}

/// Drivers served on sockets: a runtime for the servers, a directory for the sockets. Serving a
/// new driver stops the one before (a conformance check is over when the next one starts).
struct Servers {
    runtime: tokio::runtime::Runtime,
    sockets: tempfile::TempDir,
    next: usize,
    running: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl Servers {
    fn new() -> Self {
        Servers {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            sockets: tempfile::tempdir().unwrap(),
            next: 0,
            running: None,
        }
    }

    /// Serves `driver` on a fresh socket and returns the socket's path.
    fn serve(&mut self, driver: Driver) -> String {
        self.stop();
        let socket = self.sockets.path().join(format!("{}.sock", self.next));
        self.next += 1;
        let (stop, stopped) = oneshot::channel::<()>();
        let listener = {
            let _entered = self.runtime.enter();
            tokio::net::UnixListener::bind(&socket).unwrap()
        };
        let task = self.runtime.spawn(async move {
            rcontainerd_proxy::serve(driver, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap_or_else(|e| panic!("serving: {e}"));
        });
        self.running = Some((stop, task));
        socket.display().to_string()
    }

    fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            self.runtime.block_on(task).unwrap();
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A proxy snapshotter in front of a fresh driver of `library`, served on a fresh socket.
fn snapshotters<'a>(
    library: &Path,
    roots: &'a Roots,
    servers: &'a mut Servers,
) -> impl FnMut() -> Arc<dyn Snapshotter> + 'a {
    let mut init = init_loaded(library, roots);
    move || {
        let socket = servers.serve(init());
        rcontainerd_proxy::snapshotter(SNAPSHOTTER_URI, &socket, "isolated", "default").unwrap()
    }
}

fn content_stores<'a>(
    roots: &'a Roots,
    servers: &'a mut Servers,
) -> impl FnMut() -> Arc<dyn Store> + 'a {
    let mut init = init_loaded(&library("content_local"), roots);
    move || {
        let socket = servers.serve(init());
        rcontainerd_proxy::content_store(CONTENT_URI, &socket, "default").unwrap()
    }
}

#[test]
fn served_native_passes_the_snapshot_suite() {
    let (roots, mut servers) = (Roots::new(), Servers::new());
    testsuite::snapshot::run_all(&mut snapshotters(&library("native"), &roots, &mut servers));
}

#[test]
fn served_overlayfs_passes_the_snapshot_suite() {
    if !nix::unistd::geteuid().is_root() {
        rcontainerd_pkg::prereq::missing("root (the overlayfs plugin's init mounts an overlay)");
        return;
    }
    let (roots, mut servers) = (Roots::new(), Servers::new());
    testsuite::snapshot::run_all(&mut snapshotters(
        &library("overlayfs"),
        &roots,
        &mut servers,
    ));
}

#[test]
fn served_content_local_passes_the_content_suite() {
    let (roots, mut servers) = (Roots::new(), Servers::new());
    testsuite::content::run_all(&mut content_stores(&roots, &mut servers));
}

#[test]
fn missing_objects_answer_not_found() {
    let (roots, mut servers) = (Roots::new(), Servers::new());
    let snapshotter = snapshotters(&library("native"), &roots, &mut servers)();
    let err = snapshotter.stat("no-such-key").unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    let err = snapshotter.mounts("no-such-key").unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");

    let (roots, mut servers) = (Roots::new(), Servers::new());
    let store = content_stores(&roots, &mut servers)();
    let missing = format!("sha256:{}", "0".repeat(64));
    let err = store.info(&missing).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    let err = store.status("no-such-ref").unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
}

/// The proxy writer reports the served driver's running digest (so the daemon need not hash what it
/// forwards), from the opening Stat on, across a truncate and on a resumed ingest.
#[test]
fn a_proxy_writer_reports_the_remote_running_digest() {
    let sha = |data: &[u8]| format!("sha256:{:x}", Sha256::digest(data));
    let (roots, mut servers) = (Roots::new(), Servers::new());
    let store = content_stores(&roots, &mut servers)();
    let options = || WriterOptions {
        reference: "running".into(),
        expected_size: None,
        expected_digest: None,
    };
    let mut writer = store.writer(options()).unwrap();
    assert_eq!(writer.status().unwrap().offset, 0);
    assert_eq!(writer.digest().unwrap(), Some(sha(b"")));
    writer.write(0, b"hello ").unwrap();
    assert_eq!(writer.digest().unwrap(), Some(sha(b"hello ")));
    writer.truncate(0).unwrap();
    assert_eq!(writer.digest().unwrap(), Some(sha(b"")));
    writer.write(0, b"hello ").unwrap();
    writer.close().unwrap();
    drop(writer);

    let mut writer = store.writer(options()).unwrap();
    assert_eq!(writer.status().unwrap().offset, 6);
    assert_eq!(writer.digest().unwrap(), Some(sha(b"hello ")));
    writer.write(6, b"world").unwrap();
    assert_eq!(writer.digest().unwrap(), Some(sha(b"hello world")));
    writer
        .commit(11, &sha(b"hello world"), Default::default())
        .unwrap();
    assert_eq!(store.info(&sha(b"hello world")).unwrap().size, 11);
}

/// Written in 4 MiB writes, read back in 3 MiB reads (not a multiple of the 1 MiB messages).
#[test]
fn a_64_mib_blob_round_trips() {
    const SIZE: usize = 64 << 20;
    let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let digest = format!("sha256:{:x}", Sha256::digest(&data));

    let (roots, mut servers) = (Roots::new(), Servers::new());
    let store = content_stores(&roots, &mut servers)();
    let mut writer = store
        .writer(WriterOptions {
            reference: "big".into(),
            expected_size: Some(SIZE as i64),
            expected_digest: Some(digest.clone()),
        })
        .unwrap();
    let mut offset = 0;
    for chunk in data.chunks(4 << 20) {
        assert_eq!(writer.write(offset, chunk).unwrap(), chunk.len());
        offset += chunk.len() as u64;
    }
    assert_eq!(writer.status().unwrap().offset, SIZE as i64);
    writer
        .commit(
            SIZE as i64,
            &digest,
            [("a".to_string(), "b".to_string())].into(),
        )
        .unwrap();
    drop(writer);

    let info = store.info(&digest).unwrap();
    assert_eq!(info.size, SIZE as i64);
    assert_eq!(info.labels.get("a").map(String::as_str), Some("b"));

    let reader = store.reader(&digest).unwrap();
    assert_eq!(reader.size().unwrap(), SIZE as i64);
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 3 << 20];
    let mut offset = 0u64;
    loop {
        let n = reader.read_at(offset, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    assert_eq!(offset, SIZE as u64);
    assert_eq!(format!("sha256:{:x}", hasher.finalize()), digest);
}

#[test]
fn only_snapshotters_and_content_stores_are_served() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let result = runtime.block_on(async {
        let listener = tokio::net::UnixListener::bind(dir.path().join("s.sock")).unwrap();
        rcontainerd_proxy::serve(Driver::None, listener, std::future::ready(())).await
    });
    assert!(
        matches!(result, Err(ServeError::Unsupported(_))),
        "{result:?}"
    );
}
