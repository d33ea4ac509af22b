//! The proof that this crate speaks ttrpc: it drives Debian's
//! `containerd-shim-runc-v2` (containerd 1.6) through a container's whole life
//! and serves the events service the shim forwards its events to.
//!
//! Needs root, the shim, runc and a static busybox (the container's rootfs).
//! runc's state goes to a temporary directory (`containerd.runc.v1.Options`
//! `root`); the shim's socket under `/run/containerd/s` is removed afterwards
//! if the shim left it. Facts: `docs/wire-facts.md#ttrpc`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use rcontainerd_api::events::{TaskCreate, TaskDelete, TaskExit, TaskStart};
use rcontainerd_api::ttrpc::{events, runc, task};
use rcontainerd_ttrpc::{Client, Error, Request, Server, Status};
use tokio::io::AsyncReadExt;
use tokio::net::UnixListener;
use tokio::sync::{oneshot, Notify};

const SHIM: &str = "/usr/bin/containerd-shim-runc-v2";
const BUSYBOX: &str = "/bin/busybox";
const NAMESPACE: &str = "rcontainerd-ttrpc-test";
const NS_KEY: &str = "containerd-namespace-ttrpc";
const CALL: Option<Duration> = Some(Duration::from_secs(10));

/// An event the shim forwarded, and the metadata it came with.
#[derive(Debug, Clone)]
struct Forwarded {
    namespace: String,
    topic: String,
    type_url: String,
    value: Vec<u8>,
    metadata_ns: Option<String>,
}

#[derive(Default)]
struct Events {
    seen: Mutex<Vec<Forwarded>>,
    changed: Notify,
}

impl Events {
    fn topic(&self, topic: &str) -> Option<Forwarded> {
        let seen = self.seen.lock().unwrap();
        seen.iter().find(|e| e.topic == topic).cloned()
    }

    async fn wait_for(&self, topic: &str) -> Forwarded {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let changed = self.changed.notified();
            if let Some(e) = self.topic(topic) {
                return e;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, changed).await.is_err() {
                panic!(
                    "no {topic} event within 15 s; got {:?}",
                    self.seen.lock().unwrap()
                );
            }
        }
    }
}

/// Everything the test leaves behind, undone on drop (pass or fail).
struct Cleanup {
    runc_root: PathBuf,
    id: String,
    socket: Option<PathBuf>,
    log: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in shim_pids(&self.id) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        // A container the shim did not get to delete.
        let _ = std::process::Command::new("runc")
            .arg("--root")
            .arg(self.runc_root.join(NAMESPACE))
            .args(["delete", "-f", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
        // `/run/containerd/s` itself stays: another shim (a concurrent test's,
        // or containerd's) may be about to listen in it.
        if let Some(log) = self.log.take() {
            log.abort();
        }
    }
}

/// The shims serving container `id` (their command lines name it), found in
/// /proc: the shim writes no pid file of its own to the bundle.
fn shim_pids(id: &str) -> Vec<nix::unistd::Pid> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let is_shim = args.first()?.ends_with(b"containerd-shim-runc-v2");
            let names_id = args
                .windows(2)
                .any(|w| w[0] == b"-id" && w[1] == id.as_bytes());
            (is_shim && names_id).then(|| nix::unistd::Pid::from_raw(pid))
        })
        .collect()
}

/// Whether `pid` exists and has not exited (an exited shim may stay a zombie
/// for a while: it is reparented to whatever reaps orphans here).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the parenthesised command name.
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
    })
}

fn prerequisites() -> bool {
    if !nix::unistd::geteuid().is_root() {
        rcontainerd_pkg::prereq::missing("root (the shim runs a container)");
        return false;
    }
    if !Path::new(SHIM).is_file() {
        rcontainerd_pkg::prereq::missing(format!("{SHIM} (Debian's containerd)"));
        return false;
    }
    let runc_on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("runc").is_file()));
    if !runc_on_path {
        rcontainerd_pkg::prereq::missing("runc on PATH");
        return false;
    }
    if !Path::new(BUSYBOX).is_file() {
        rcontainerd_pkg::prereq::missing(format!("{BUSYBOX} (busybox-static)"));
        return false;
    }
    true
}

/// A runc bundle: busybox as the rootfs, a spec that prints and exits 3.
fn write_bundle(bundle: &Path) {
    let rootfs = bundle.join("rootfs");
    for dir in ["bin", "proc", "dev", "tmp"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/sh", "-c", "echo hi; exit 3"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs"},
        "hostname": "ttrpc-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
        }
    });
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();
}

/// The events service the shim calls (`TTRPC_ADDRESS`).
fn events_server(events: Arc<Events>) -> Server {
    let mut server = Server::new();
    server.register_message(
        events::SERVICE,
        "Forward",
        move |req: events::ForwardRequest, raw: Request| {
            let events = events.clone();
            async move {
                let envelope = req
                    .envelope
                    .ok_or_else(|| Status::invalid_argument("no envelope"))?;
                let event = envelope.event.unwrap_or_default();
                events.seen.lock().unwrap().push(Forwarded {
                    namespace: envelope.namespace,
                    topic: envelope.topic,
                    type_url: event.type_url,
                    value: event.value,
                    metadata_ns: raw.metadata_value(NS_KEY).map(str::to_string),
                });
                events.changed.notify_waiters();
                Ok::<_, Status>(())
            }
        },
    );
    server
}

/// The address `start` prints: a plain `unix://…` (1.6) or JSON (1.7+).
fn parse_address(stdout: &[u8]) -> String {
    let out = String::from_utf8_lossy(stdout).trim().to_string();
    if out.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        json["address"].as_str().unwrap().to_string()
    } else {
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_the_runc_shim_and_receives_its_events() {
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let id = format!(
        "ttrpc-{}-{}",
        std::process::id(),
        tmp.path().file_name().unwrap().to_string_lossy()
    );
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    write_bundle(&bundle);
    let runc_root = tmp.path().join("runc");
    let stdout_log = tmp.path().join("stdout.log");
    let mut cleanup = Cleanup {
        runc_root: runc_root.clone(),
        id: id.clone(),
        socket: None,
        log: None,
    };

    // Our events server.
    let events = Arc::new(Events::default());
    let events_sock = tmp.path().join("events.ttrpc");
    let listener = UnixListener::bind(&events_sock).unwrap();
    let (stop_events, stopped) = oneshot::channel::<()>();
    let events_task = tokio::spawn(events_server(events.clone()).serve(listener, async {
        let _ = stopped.await;
    }));

    // The shim's log FIFO, held open (read and write) before the shim starts:
    // without it the shim dies right after `start`.
    let log_path = bundle.join("log");
    nix::unistd::mkfifo(&log_path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut log_rx = tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&log_path)
        .unwrap();
    let shim_log = Arc::new(Mutex::new(Vec::new()));
    cleanup.log = Some(tokio::spawn({
        let shim_log = shim_log.clone();
        async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = log_rx.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                shim_log.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    }));

    // `start`: argv flags before the action, cwd the bundle, stdin empty.
    let started = Instant::now();
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(SHIM)
            .args(["-namespace", NAMESPACE, "-address"])
            .arg(tmp.path().join("containerd.sock"))
            .arg("-publish-binary")
            .arg(std::env::current_exe().unwrap())
            .args(["-id", &id, "start"])
            .current_dir(&bundle)
            .env("TTRPC_ADDRESS", &events_sock)
            .env("GOMAXPROCS", "2")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("shim start within 20 s")
    .unwrap();
    assert!(
        output.status.success(),
        "shim start: {:?}, stderr {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let address = parse_address(&output.stdout);
    eprintln!("shim start printed {address:?} in {:?}", started.elapsed());
    let socket = PathBuf::from(address.strip_prefix("unix://").unwrap_or(&address));
    assert!(socket.starts_with("/run/containerd/s"), "{address}");
    cleanup.socket = Some(socket);

    let result = lifecycle(&address, &id, &bundle, &runc_root, &stdout_log, &events).await;
    if let Err(e) = &result {
        eprintln!(
            "shim log:\n{}",
            String::from_utf8_lossy(&shim_log.lock().unwrap())
        );
        panic!("{e}");
    }
    let shim_pid = result.unwrap();

    // The shim is gone after Shutdown (its socket with it).
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(shim_pid) {
        assert!(
            Instant::now() < deadline,
            "shim {shim_pid} still alive 10 s after Shutdown"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_events.send(());
    events_task.await.unwrap().unwrap();
}

/// Connect, Create, Wait (before Start, as `ctr run` does), Start, Delete,
/// Shutdown; the events they cause. Returns the shim's pid.
async fn lifecycle(
    address: &str,
    id: &str,
    bundle: &Path,
    runc_root: &Path,
    stdout_log: &Path,
    events: &Events,
) -> Result<i32, String> {
    let client = Client::connect(address)
        .await
        .map_err(|e| format!("dial {address}: {e}"))?;
    let md = [(NS_KEY, NAMESPACE)];
    let call_err = |what: &'static str| move |e: Error| format!("{what}: {e}");

    let connected: task::ConnectResponse = client
        .call(
            task::SERVICE,
            "Connect",
            &task::ConnectRequest { id: id.into() },
            &md,
            CALL,
        )
        .await
        .map_err(call_err("Connect"))?;
    assert!(connected.shim_pid > 0, "{connected:?}");

    let options = runc::Options {
        root: runc_root.display().to_string(),
        ..Default::default()
    };
    let create = task::CreateTaskRequest {
        id: id.into(),
        bundle: bundle.display().to_string(),
        // Both streams to the file, as `ctr run --log-uri` does: with only
        // stdout set, the 1.6.20 shim copies from a stderr pipe it never made
        // and dies of a nil dereference (pkg/process/io.go createIO/copyPipes).
        stdout: format!("file://{}", stdout_log.display()),
        stderr: format!("file://{}", stdout_log.display()),
        options: Some(prost_types::Any {
            // Bare, as containerd's typeurl writes it.
            type_url: "containerd.runc.v1.Options".into(),
            value: options.encode_to_vec(),
        }),
        ..Default::default()
    };
    let created: task::CreateTaskResponse = client
        .call(task::SERVICE, "Create", &create, &md, CALL)
        .await
        .map_err(call_err("Create"))?;
    assert!(created.pid > 0);
    let create_event = events.wait_for("/tasks/create").await;

    // Wait stays in flight on the same connection while Start is called.
    let wait = {
        let client = client.clone();
        let request = task::WaitRequest {
            id: id.into(),
            ..Default::default()
        };
        tokio::spawn(async move {
            client
                .call::<_, task::WaitResponse>(task::SERVICE, "Wait", &request, &md, None)
                .await
        })
    };
    let start = task::StartRequest {
        id: id.into(),
        ..Default::default()
    };
    let started: task::StartResponse = client
        .call(task::SERVICE, "Start", &start, &md, CALL)
        .await
        .map_err(call_err("Start"))?;
    assert_eq!(started.pid, created.pid);
    let waited = tokio::time::timeout(Duration::from_secs(15), wait)
        .await
        .map_err(|_| "Wait: no answer within 15 s".to_string())?
        .unwrap()
        .map_err(call_err("Wait"))?;
    assert_eq!(waited.exit_status, 3);

    let deleted: task::DeleteResponse = client
        .call(
            task::SERVICE,
            "Delete",
            &task::DeleteRequest {
                id: id.into(),
                ..Default::default()
            },
            &md,
            CALL,
        )
        .await
        .map_err(call_err("Delete"))?;
    assert_eq!((deleted.exit_status, deleted.pid), (3, created.pid));

    // The shim exits on Shutdown; its answer may not make it out first.
    let shutdown = task::ShutdownRequest {
        id: id.into(),
        now: false,
    };
    match client
        .call::<_, ()>(task::SERVICE, "Shutdown", &shutdown, &md, CALL)
        .await
    {
        Ok(()) | Err(Error::Closed) => {}
        Err(e) => return Err(format!("Shutdown: {e}")),
    }
    tokio::time::timeout(Duration::from_secs(10), client.closed())
        .await
        .map_err(|_| "the connection stayed open 10 s after Shutdown".to_string())?;

    // What the container wrote through the shim's file:// stdio.
    assert_eq!(std::fs::read_to_string(stdout_log).unwrap(), "hi\n");

    // The events, with bare type URLs, in the shim's namespace.
    let start_event = events.wait_for("/tasks/start").await;
    let exit_event = events.wait_for("/tasks/exit").await;
    let delete_event = events.wait_for("/tasks/delete").await;
    for (event, type_url) in [
        (&create_event, "containerd.events.TaskCreate"),
        (&start_event, "containerd.events.TaskStart"),
        (&exit_event, "containerd.events.TaskExit"),
        (&delete_event, "containerd.events.TaskDelete"),
    ] {
        assert_eq!(event.type_url, type_url, "{event:?}");
        assert_eq!(event.namespace, NAMESPACE, "{event:?}");
        assert_eq!(event.metadata_ns.as_deref(), Some(NAMESPACE), "{event:?}");
    }
    let created_ev = TaskCreate::decode(create_event.value.as_slice()).unwrap();
    assert_eq!(
        (created_ev.container_id.as_str(), created_ev.pid),
        (id, created.pid)
    );
    assert_eq!(created_ev.bundle, bundle.display().to_string());
    let started_ev = TaskStart::decode(start_event.value.as_slice()).unwrap();
    assert_eq!(started_ev.pid, created.pid);
    let exit = TaskExit::decode(exit_event.value.as_slice()).unwrap();
    assert_eq!(
        (exit.container_id.as_str(), exit.exit_status, exit.pid),
        (id, 3, created.pid)
    );
    let delete = TaskDelete::decode(delete_event.value.as_slice()).unwrap();
    assert_eq!((delete.container_id.as_str(), delete.exit_status), (id, 3));
    Ok(connected.shim_pid as i32)
}
