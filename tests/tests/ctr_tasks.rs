//! `ctr run` and `ctr tasks`: our ctr and containerd 1.6.20's, against a real daemon with real
//! shims and runc, running Debian's static busybox (`rcontainerd_tests::busybox`). The checks take
//! only a daemon's socket ([`World`]), so they run against rcontainerd as soon as it serves
//! Tasks; for now they run against a containerd started in a temporary directory.
//!
//! What is checked: `run --rm` prints the container's output, exits with its status and leaves no
//! container, snapshot or task; a detached task through `tasks ls|ps|exec|pause|resume|metrics|
//! kill|rm` and `containers rm`, with the tables both ctrs print compared byte for byte; `tasks
//! start` of a created container; signals passed on to the container; a pty (`run -t`) sized as
//! ctr's terminal; the failures (missing container, missing task, bad flags) worded and exited as
//! containerd's ctr words and exits them.
//!
//! Every test works in a namespace of its own (runc keeps its state in
//! `/run/containerd/runc/<namespace>`, shared by every daemon on the machine) and deletes its
//! tasks and containers even when it fails ([`Cleanup`]); the harness kills any shim left.
//!
//! Needs root, `/usr/bin/containerd`, `/usr/bin/ctr`, `runc` and `/bin/busybox`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rcontainerd_tests::containerd::{Containerd, CONTAINERD};
use rcontainerd_tests::{busybox, Ctr, CtrOutput};

const IMAGE: &str = "docker.io/library/busybox-test:1";
const DEBIAN_CTR: &str = "/usr/bin/ctr";

fn prerequisites_met() -> bool {
    busybox::containers_can_run(&[
        (Path::new(CONTAINERD).is_file(), CONTAINERD),
        (Path::new(DEBIAN_CTR).is_file(), DEBIAN_CTR),
    ])
}

/// A daemon (any: only its socket is used) and a namespace of the test's own, holding the
/// busybox image.
struct World {
    socket: PathBuf,
    namespace: String,
}

impl World {
    /// Imports the busybox image into `namespace` with our ctr.
    fn new(socket: &Path, namespace: &str, scratch: &Path) -> World {
        let world = World {
            socket: socket.to_path_buf(),
            namespace: namespace.to_string(),
        };
        let tar = scratch.join("busybox.tar");
        busybox::write_oci_tar(&tar, IMAGE);
        world
            .ctr(Ctr::Ours, &["images", "import", tar.to_str().unwrap()])
            .ok();
        world
    }

    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut full = vec!["--namespace", self.namespace.as_str()];
        full.extend_from_slice(args);
        full
    }

    fn ctr(&self, which: Ctr, args: &[&str]) -> CtrOutput {
        which.run(&self.socket, &self.args(args))
    }

    fn spawn(&self, which: Ctr, args: &[&str]) -> rcontainerd_tests::RunningCtr {
        which.spawn(&self.socket, &self.args(args))
    }

    fn ids(&self, what: &[&str]) -> Vec<String> {
        let mut args = what.to_vec();
        args.push("-q");
        self.ctr(Ctr::Debian, &args)
            .ok()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The status column of `tasks ls` for `id`.
    fn task_status(&self, id: &str) -> Option<String> {
        self.ctr(Ctr::Ours, &["tasks", "ls"])
            .ok()
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cols| cols.first() == Some(&id))
            .map(|cols| cols[2].to_string())
    }

    fn wait_for_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.task_status(id).as_deref() != Some(status) {
            assert!(
                Instant::now() < deadline,
                "task {id} not {status}: {:?}",
                self.task_status(id)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Active snapshots (the containers' own; the image's layer is committed).
    fn active_snapshots(&self) -> Vec<String> {
        self.ctr(Ctr::Ours, &["snapshots", "ls"])
            .ok()
            .lines()
            .skip(1)
            .filter(|l| l.split_whitespace().last() == Some("Active"))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect()
    }
}

/// Deletes every task (killed first) and container of the world's namespace when dropped, and
/// runc's state directory for the namespace.
struct Cleanup<'a>(&'a World);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let world = self.0;
        for id in world.ids(&["tasks", "ls"]) {
            let _ = world.ctr(Ctr::Debian, &["tasks", "kill", "-a", "-s", "KILL", &id]);
            let _ = world.ctr(Ctr::Debian, &["tasks", "rm", "-f", &id]);
        }
        for id in world.ids(&["containers", "ls"]) {
            let _ = world.ctr(Ctr::Debian, &["containers", "rm", &id]);
        }
        let _ = std::fs::remove_dir(Path::new("/run/containerd/runc").join(&world.namespace));
    }
}

/// A namespace no other test (nor another run on the machine) uses.
fn namespace(test: &str) -> String {
    format!("ctr-tasks-{test}-{}", std::process::id())
}

/// stderr with logrus's timestamps masked, for comparing the two ctrs.
fn masked(stderr: &str) -> String {
    stderr
        .lines()
        .map(|line| match line.strip_prefix("time=\"") {
            Some(rest) => match rest.split_once('"') {
                Some((_, after)) => format!("time=T{after}"),
                None => line.to_string(),
            },
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn exit_code(output: &CtrOutput) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn started_containerd() -> Option<Containerd> {
    prerequisites_met().then(Containerd::start)
}

/// `run --rm`: the output, the status, and nothing left, for both ctrs alike.
fn check_run_rm(world: &World) {
    for (which, id) in [(Ctr::Ours, "rm-ours"), (Ctr::Debian, "rm-debian")] {
        let out = world.ctr(
            which,
            &[
                "run",
                "--rm",
                IMAGE,
                id,
                "sh",
                "-c",
                "echo hello; echo oops >&2; exit 3",
            ],
        );
        assert_eq!(out.stdout, "hello\n", "{which:?}: {out:?}");
        assert_eq!(out.stderr, "oops\n", "{which:?}: {out:?}");
        assert_eq!(exit_code(&out), 3, "{which:?}: {out:?}");
    }
    assert_eq!(world.ids(&["containers", "ls"]), Vec::<String>::new());
    assert_eq!(world.ids(&["tasks", "ls"]), Vec::<String>::new());
    assert_eq!(world.active_snapshots(), Vec::<String>::new());

    // Success is 0, with stdin passed through to the container.
    let out = world.ctr(Ctr::Ours, &["run", "--rm", IMAGE, "ok", "true"]);
    assert_eq!((exit_code(&out), out.stdout.as_str()), (0, ""), "{out:?}");
}

#[test]
fn run_rm_prints_the_output_exits_with_the_status_and_leaves_nothing() {
    let Some(daemon) = started_containerd() else {
        return;
    };
    let world = World::new(&daemon.socket(), &namespace("rm"), daemon.dir());
    let _cleanup = Cleanup(&world);
    check_run_rm(&world);
}

/// A detached task through the tasks commands; both ctrs' tables compared.
fn check_detached_lifecycle(world: &World, fifo_root: &Path) {
    let fifo_dir = fifo_root.to_str().unwrap();
    let out = world.ctr(
        Ctr::Ours,
        &[
            "run",
            "-d",
            "--fifo-dir",
            fifo_dir,
            IMAGE,
            "d1",
            "sleep",
            "1000",
        ],
    );
    assert_eq!((exit_code(&out), out.stdout.as_str()), (0, ""), "{out:?}");
    assert_eq!(world.task_status("d1").as_deref(), Some("RUNNING"));
    // The FIFOs of a detached task stay until the task is deleted.
    assert_eq!(std::fs::read_dir(fifo_root).unwrap().count(), 1);

    let same = |args: &[&str]| -> String {
        let ours = world.ctr(Ctr::Ours, args);
        let debian = world.ctr(Ctr::Debian, args);
        assert_eq!(ours.stdout, debian.stdout, "{args:?}");
        assert_eq!(masked(&ours.stderr), masked(&debian.stderr), "{args:?}");
        assert_eq!(exit_code(&ours), exit_code(&debian), "{args:?}");
        ours.stdout
    };
    let table = same(&["tasks", "ls"]);
    assert!(table.starts_with("TASK    PID "), "{table}");
    assert_eq!(same(&["tasks", "ls", "-q"]), "d1\n");
    let ps = same(&["tasks", "ps", "d1"]);
    assert_eq!(ps.lines().count(), 2, "{ps}");

    // Exec: output and status, for both ctrs.
    for (which, exec_id) in [(Ctr::Ours, "e-ours"), (Ctr::Debian, "e-debian")] {
        let out = world.ctr(
            which,
            &[
                "tasks",
                "exec",
                "--exec-id",
                exec_id,
                "d1",
                "sh",
                "-c",
                "echo in-exec $0; exit 4",
            ],
        );
        assert_eq!(out.stdout, "in-exec sh\n", "{which:?}: {out:?}");
        assert_eq!(exit_code(&out), 4, "{which:?}: {out:?}");
    }
    let out = world.ctr(
        Ctr::Ours,
        &[
            "tasks",
            "exec",
            "-d",
            "--fifo-dir",
            fifo_dir,
            "--exec-id",
            "e2",
            "d1",
            "sleep",
            "500",
        ],
    );
    assert_eq!(exit_code(&out), 0, "{out:?}");
    let ps = same(&["tasks", "ps", "d1"]);
    assert!(
        ps.contains("&ProcessDetails{ExecID:e2,XXX_unrecognized:[],}"),
        "{ps}"
    );
    world
        .ctr(
            Ctr::Ours,
            &["tasks", "kill", "-s", "KILL", "--exec-id", "e2", "d1"],
        )
        .ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    let deleted = loop {
        let out = world.ctr(Ctr::Ours, &["tasks", "rm", "--exec-id", "e2", "d1"]);
        if out.success() || exit_code(&out) == 137 || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit_code(&deleted), 137, "{deleted:?}");
    // Deleting the detached exec removed its FIFOs (containerd's ctr leaves them); the task's stay.
    assert_eq!(std::fs::read_dir(fifo_root).unwrap().count(), 1);

    // Pause and resume.
    world.ctr(Ctr::Ours, &["tasks", "pause", "d1"]).ok();
    assert_eq!(world.task_status("d1").as_deref(), Some("PAUSED"));
    world.ctr(Ctr::Ours, &["tasks", "resume", "d1"]).ok();
    assert_eq!(world.task_status("d1").as_deref(), Some("RUNNING"));

    // Metrics: the table's rows, and JSON of the same members as containerd's ctr.
    let table = world
        .ctr(Ctr::Ours, &["tasks", "metrics", "d1"])
        .ok()
        .to_string();
    assert!(table.starts_with("ID    TIMESTAMP"), "{table}");
    assert!(table.contains("\nd1    "), "{table}");
    for row in ["pids.current", "cpuacct.usage", "memory.usage_in_bytes"] {
        assert!(table.contains(row), "{table}");
    }
    let keys = |which: Ctr| -> Vec<String> {
        let out = world.ctr(which, &["tasks", "metrics", "--format", "json", "d1"]);
        let json: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
        json.as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(keys(Ctr::Ours), keys(Ctr::Debian));

    // A running task cannot be deleted, by either ctr, in the same words.
    same(&["tasks", "rm", "d1"]);
    // busybox's sleep as pid 1 ignores SIGTERM (the default); SIGKILL ends it.
    world
        .ctr(Ctr::Ours, &["tasks", "kill", "-s", "SIGKILL", "d1"])
        .ok();
    world.wait_for_status("d1", "STOPPED");
    let out = world.ctr(Ctr::Ours, &["tasks", "rm", "d1"]);
    assert!(out.success(), "{out:?}");
    assert!(
        out.stderr
            .contains("level=warning msg=\"task d1 exit with non-zero exit code 137\""),
        "{out:?}"
    );
    assert_eq!(std::fs::read_dir(fifo_root).unwrap().count(), 0);
    world.ctr(Ctr::Ours, &["containers", "rm", "d1"]).ok();
    assert_eq!(world.ids(&["containers", "ls"]), Vec::<String>::new());
    assert_eq!(world.active_snapshots(), Vec::<String>::new());
}

#[test]
fn a_detached_task_through_the_tasks_commands() {
    let Some(daemon) = started_containerd() else {
        return;
    };
    let world = World::new(&daemon.socket(), &namespace("detached"), daemon.dir());
    let _cleanup = Cleanup(&world);
    let fifo_root = daemon.dir().join("fifo");
    std::fs::create_dir(&fifo_root).unwrap();
    check_detached_lifecycle(&world, &fifo_root);
}

/// `tasks start` of a created container, attached: its output and status; `-d` and `tasks kill
/// -a` then `tasks rm -f`.
fn check_start(world: &World) {
    world
        .ctr(
            Ctr::Ours,
            &[
                "containers",
                "create",
                IMAGE,
                "s1",
                "--",
                "sh",
                "-c",
                "echo started; exit 7",
            ],
        )
        .ok();
    let out = world.ctr(Ctr::Ours, &["tasks", "start", "s1"]);
    assert_eq!(out.stdout, "started\n", "{out:?}");
    assert_eq!(exit_code(&out), 7, "{out:?}");
    assert_eq!(world.task_status("s1"), None);
    world.ctr(Ctr::Ours, &["containers", "rm", "s1"]).ok();

    world
        .ctr(
            Ctr::Ours,
            &["containers", "create", IMAGE, "s2", "sleep", "1000"],
        )
        .ok();
    let pid_file = std::env::temp_dir().join(format!("ctr-tasks-{}.pid", std::process::id()));
    let out = world.ctr(
        Ctr::Ours,
        &[
            "tasks",
            "start",
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "s2",
        ],
    );
    assert!(out.success(), "{out:?}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let _ = std::fs::remove_file(&pid_file);
    let listed = world.ctr(Ctr::Ours, &["tasks", "ls"]).ok().to_string();
    assert!(
        listed.contains(&format!("s2      {pid}    RUNNING")),
        "{listed} (pid {pid})"
    );
    let out = world.ctr(Ctr::Ours, &["tasks", "rm", "-f", "s2"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(world.task_status("s2"), None);
    world.ctr(Ctr::Ours, &["containers", "rm", "s2"]).ok();
}

#[test]
fn tasks_start_follows_a_created_container() {
    let Some(daemon) = started_containerd() else {
        return;
    };
    let world = World::new(&daemon.socket(), &namespace("start"), daemon.dir());
    let _cleanup = Cleanup(&world);
    check_start(&world);
}

/// A signal ctr gets goes to the container (`sh` traps it and exits 9).
fn check_signal_forwarding(world: &World) {
    let running = world.spawn(
        Ctr::Ours,
        &[
            "run",
            "--rm",
            IMAGE,
            "sig",
            "sh",
            "-c",
            "trap 'echo got-term; exit 9' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    running.wait_for_stdout(Duration::from_secs(20), "ready", |s| s.contains("ready"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(running.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = running.wait(Duration::from_secs(20));
    assert_eq!(out.stdout, "ready\ngot-term\n", "{out:?}");
    assert_eq!(exit_code(&out), 9, "{out:?}");
    assert_eq!(world.ids(&["containers", "ls"]), Vec::<String>::new());
}

#[test]
fn signals_to_ctr_reach_the_container() {
    let Some(daemon) = started_containerd() else {
        return;
    };
    let world = World::new(&daemon.socket(), &namespace("signal"), daemon.dir());
    let _cleanup = Cleanup(&world);
    check_signal_forwarding(&world);
}

/// Runs `ctr <args>` on a new pty of 33 rows and 99 columns; answers what it wrote there and its
/// exit code.
fn on_a_pty(world: &World, which: Ctr, args: &[&str]) -> (String, i32) {
    use std::io::Read as _;
    let size = nix::pty::Winsize {
        ws_row: 33,
        ws_col: 99,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    // Held until ctr's output is read: once the last slave descriptor closes, Linux may drop
    // what the master has not read yet (EIO).
    let held = slave.try_clone().unwrap();
    let mut child = std::process::Command::new(which.path())
        .arg("--address")
        .arg(&world.socket)
        .args(world.args(args))
        .env_remove("CONTAINERD_ADDRESS")
        .env_remove("CONTAINERD_NAMESPACE")
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let mut buffer = [0u8; 4096];
        // EIO once the last slave descriptor (ctr's) is closed.
        while let Ok(n) = master.read(&mut buffer) {
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buffer[..n]);
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{which:?} ctr {args:?} on a pty did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(300));
    drop(held);
    let text = reader.join().unwrap();
    (text, status.code().unwrap_or(-1))
}

/// `run -t`: the container's stdio is a pty, given ctr's terminal's size; output keeps `\r\n`
/// (the container's pty) turned into `\r\r\n` by ctr's terminal, whose output processing
/// containerd's raw mode keeps; and the terminal's mode is restored afterwards.
fn check_tty(world: &World) {
    let (ours, code) = on_a_pty(
        world,
        Ctr::Ours,
        &[
            "run",
            "--rm",
            "-t",
            IMAGE,
            "tty1",
            "sh",
            "-c",
            // The pty gets ctr's size just after the start (ResizePty): wait for it.
            "for i in $(busybox seq 200); do s=$(busybox stty size 2>/dev/null); \
             [ \"$s\" = '33 99' ] && break; sleep 0.05; done; echo \"size $s\"; tty; exit 5",
        ],
    );
    assert_eq!(code, 5, "{ours:?}");
    assert!(ours.contains("size 33 99\r\r\n"), "{ours:?}");
    assert!(ours.contains("/dev/pts/0\r\r\n"), "{ours:?}");
    let (debian, code) = on_a_pty(
        world,
        Ctr::Debian,
        &[
            "run",
            "--rm",
            "-t",
            IMAGE,
            "tty2",
            "sh",
            "-c",
            "tty; exit 5",
        ],
    );
    assert_eq!(code, 5, "{debian:?}");
    assert!(debian.contains("/dev/pts/0\r\r\n"), "{debian:?}");
    assert_eq!(world.ids(&["containers", "ls"]), Vec::<String>::new());

    // Without a terminal, containerd's ctr cannot run -t (it panics); ours says why.
    let out = world.ctr(Ctr::Ours, &["run", "--rm", "-t", IMAGE, "tty3", "true"]);
    assert_eq!(exit_code(&out), 1, "{out:?}");
    assert!(
        out.stderr.contains("provided file is not a console"),
        "{out:?}"
    );
}

#[test]
fn run_with_a_pty() {
    let Some(daemon) = started_containerd() else {
        return;
    };
    let world = World::new(&daemon.socket(), &namespace("tty"), daemon.dir());
    let _cleanup = Cleanup(&world);
    check_tty(&world);
}

/// Failures, as containerd's ctr words them and exits.
fn check_failures(world: &World) {
    world
        .ctr(Ctr::Ours, &["containers", "create", IMAGE, "idle", "true"])
        .ok();
    let cases: &[&[&str]] = &[
        &["tasks", "kill", "nope"],
        &["tasks", "kill"],
        &["tasks", "kill", "-s", "FOO", "idle"],
        &["tasks", "kill", "-a", "--exec-id", "x", "idle"],
        &["tasks", "kill", "idle"],
        &["tasks", "ps", "nope"],
        &["tasks", "ps", "idle"],
        &["tasks", "rm", "nope", "idle"],
        &["tasks", "pause", "idle"],
        &["tasks", "resume", "nope"],
        &["tasks", "metrics", "idle"],
        &["tasks", "start"],
        &["tasks", "start", "nope"],
        &["tasks", "exec", "--exec-id", "x", "nope", "true"],
        &["tasks", "exec", "--exec-id", "x", "idle", "true"],
        &["tasks", "ls"],
        &["run"],
        &["run", IMAGE],
        &["run", "--rm", "-d", IMAGE, "x"],
        &["run", "nope:1", "x", "true"],
        &["run", IMAGE, "idle", "true"],
        &["run", "--runc-systemd-cgroup", IMAGE, "x", "true"],
    ];
    for args in cases {
        let ours = world.ctr(Ctr::Ours, args);
        let debian = world.ctr(Ctr::Debian, args);
        assert_eq!(
            (exit_code(&ours), masked(&ours.stderr), &ours.stdout),
            (exit_code(&debian), masked(&debian.stderr), &debian.stdout),
            "{args:?}"
        );
    }
    // Nothing was left by the failed runs.
    assert_eq!(world.ids(&["containers", "ls"]), vec!["idle".to_string()]);
    assert_eq!(world.active_snapshots(), vec!["idle".to_string()]);
}

#[test]
fn failures_match_containerds_ctr() {
    let Some(daemon) = started_containerd() else {
        return;
    };
    let world = World::new(&daemon.socket(), &namespace("failures"), daemon.dir());
    let _cleanup = Cleanup(&world);
    check_failures(&world);
}

// The same checks against rcontainerd (its shim v2 runtime driver and Tasks service).

async fn started_rcontainerd() -> Option<rcontainerd_tests::Daemon> {
    if !prerequisites_met() {
        return None;
    }
    Some(rcontainerd_tests::Daemon::start_without_gc().await)
}

#[tokio::test(flavor = "multi_thread")]
async fn run_rm_on_rcontainerd() {
    let Some(daemon) = started_rcontainerd().await else {
        return;
    };
    let world = World::new(&daemon.socket(), &namespace("rm-rcd"), daemon.dir());
    let _cleanup = Cleanup(&world);
    check_run_rm(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_detached_task_through_the_tasks_commands_on_rcontainerd() {
    let Some(daemon) = started_rcontainerd().await else {
        return;
    };
    let world = World::new(&daemon.socket(), &namespace("detached-rcd"), daemon.dir());
    let _cleanup = Cleanup(&world);
    let fifo_root = daemon.dir().join("fifo");
    std::fs::create_dir(&fifo_root).unwrap();
    check_detached_lifecycle(&world, &fifo_root);
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_start_on_rcontainerd() {
    let Some(daemon) = started_rcontainerd().await else {
        return;
    };
    let world = World::new(&daemon.socket(), &namespace("start-rcd"), daemon.dir());
    let _cleanup = Cleanup(&world);
    check_start(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_to_ctr_reach_the_container_on_rcontainerd() {
    let Some(daemon) = started_rcontainerd().await else {
        return;
    };
    let world = World::new(&daemon.socket(), &namespace("signal-rcd"), daemon.dir());
    let _cleanup = Cleanup(&world);
    check_signal_forwarding(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_with_a_pty_on_rcontainerd() {
    let Some(daemon) = started_rcontainerd().await else {
        return;
    };
    let world = World::new(&daemon.socket(), &namespace("tty-rcd"), daemon.dir());
    let _cleanup = Cleanup(&world);
    check_tty(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_match_containerds_ctr_on_rcontainerd() {
    let Some(daemon) = started_rcontainerd().await else {
        return;
    };
    let world = World::new(&daemon.socket(), &namespace("failures-rcd"), daemon.dir());
    let _cleanup = Cleanup(&world);
    check_failures(&world);
}
