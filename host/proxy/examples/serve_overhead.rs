//! What serving a driver on a socket costs: the same loaded library, called in-process and through
//! `serve` + the proxy client, on Prepare+Commit and on a 1 GiB content write (1 MiB writes).
//!
//! `cargo run --release -p rcontainerd-proxy --example serve_overhead -- <dir of the plugin .so files>`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcontainerd_plugin_api::content::{Store, WriterOptions};
use rcontainerd_plugin_api::host::load_library;
use rcontainerd_plugin_api::snapshot::{Labels, Snapshotter};
use rcontainerd_plugin_api::{Driver, InitContext};

const SNAPSHOTS: usize = 500;
const BLOB: usize = 1 << 30;
const WRITE: usize = 1 << 20;

fn init(library: &Path, root: PathBuf) -> Driver {
    let mut plugins = load_library(library).unwrap_or_else(|e| panic!("{e}"));
    plugins
        .remove(0)
        .init(InitContext {
            root,
            ..InitContext::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
        .driver
}

/// Serves `driver` on a socket in `dir` until the process ends; returns the socket.
fn serve(runtime: &tokio::runtime::Runtime, driver: Driver, dir: &Path, name: &str) -> String {
    let socket = dir.join(format!("{name}.sock"));
    let listener = {
        let _entered = runtime.enter();
        tokio::net::UnixListener::bind(&socket).unwrap()
    };
    runtime.spawn(rcontainerd_proxy::serve(
        driver,
        listener,
        std::future::pending(),
    ));
    socket.display().to_string()
}

fn prepare_commit(s: &dyn Snapshotter) -> Duration {
    let start = Instant::now();
    for i in 0..SNAPSHOTS {
        s.prepare(&format!("a{i}"), "", Labels::new()).unwrap();
        s.commit(&format!("c{i}"), &format!("a{i}"), Labels::new())
            .unwrap();
    }
    start.elapsed()
}

fn write_blob(store: &dyn Store, data: &[u8]) -> Duration {
    let start = Instant::now();
    let mut writer = store
        .writer(WriterOptions {
            reference: "blob".into(),
            ..WriterOptions::default()
        })
        .unwrap();
    let mut offset = 0;
    for chunk in data.chunks(WRITE) {
        writer.write(offset, chunk).unwrap();
        offset += chunk.len() as u64;
    }
    writer.commit(data.len() as i64, "", Labels::new()).unwrap();
    start.elapsed()
}

fn report(what: &str, local: Duration, served: Duration) {
    let ratio = served.as_secs_f64() / local.as_secs_f64();
    println!("{what}: in-process {local:.2?}, served {served:.2?} ({ratio:.3}x)");
}

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: serve_overhead <plugin dir>"),
    );
    let tmp = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut n = 0;
    let mut root = || {
        n += 1;
        tmp.path().join(n.to_string())
    };

    for name in ["native", "overlayfs"] {
        let library = dir.join(format!("librcontainerd_plugin_{name}.so"));
        let Driver::Snapshotter(local) = init(&library, root()) else {
            panic!("{name} is not a snapshotter")
        };
        let socket = serve(&runtime, init(&library, root()), tmp.path(), name);
        let served: Arc<dyn Snapshotter> =
            rcontainerd_proxy::snapshotter("bench", &socket, "bench", "default").unwrap();
        // Warm both (page cache, the proxy's connection).
        local.prepare("warm", "", Labels::new()).unwrap();
        served.prepare("warm", "", Labels::new()).unwrap();
        let stats = |s: &dyn Snapshotter| {
            let start = Instant::now();
            for _ in 0..2000 {
                s.stat("warm").unwrap();
            }
            start.elapsed()
        };
        report(
            &format!("{name}: 2000 x Stat"),
            stats(&*local),
            stats(&*served),
        );
        report(
            &format!("{name}: {SNAPSHOTS} x Prepare+Commit"),
            prepare_commit(&*local),
            prepare_commit(&*served),
        );
    }

    let library = dir.join("librcontainerd_plugin_content_local.so");
    let data: Vec<u8> = (0..BLOB).map(|i| (i % 251) as u8).collect();
    let Driver::Content(local) = init(&library, root()) else {
        panic!("content-local is not a content store")
    };
    let socket = serve(&runtime, init(&library, root()), tmp.path(), "content");
    let served = rcontainerd_proxy::content_store("bench", &socket, "default").unwrap();
    report(
        "content-local: 1 GiB write",
        write_blob(&*local, &data),
        write_blob(&*served, &data),
    );
}
