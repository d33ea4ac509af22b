//! Tasks through the shim v2 runtime driver, driven by containerd 1.6.20's `ctr` against
//! rcontainerd: `ctr run` of a busybox image (Debian's `busybox-static`) with real runc and
//! Debian's `containerd-shim-runc-v2`; the shim's events on `ctr events`; exec, pause, metrics,
//! kill; tasks outliving a `kill -9` of the daemon; a shim that dies; Wait without a thread per
//! waiter; and containerd's errors for missing tasks.
//!
//! Needs root, runc, the shim, Debian's ctr and busybox-static; otherwise it reports the missing
//! prerequisite (`rcontainerd_pkg::prereq`). Whatever a test leaves running is killed when its
//! daemon is dropped (`rcontainerd_tests::shims`).

use std::path::Path;
use std::time::{Duration, Instant};

use rcontainerd_api::client::namespaced;
use rcontainerd_api::services::tasks::tasks_client::TasksClient;
use rcontainerd_api::services::tasks::{CreateTaskRequest, GetRequest, KillRequest, WaitRequest};
use rcontainerd_tests::busybox;
use rcontainerd_tests::{shims, Ctr, Daemon};

const NS: &str = "default";
const IMAGE: &str = "docker.io/library/bb:1";
const DEBIAN_CTR: &str = "/usr/bin/ctr";

fn prerequisites_met() -> bool {
    busybox::containers_can_run(&[(Path::new(DEBIAN_CTR).is_file(), DEBIAN_CTR)])
}

/// A daemon with the busybox image imported (by Debian's ctr, unpacked onto overlayfs).
async fn daemon_with_image() -> Daemon {
    let daemon = Daemon::start_without_gc().await;
    let tar = daemon.dir().join("bb.tar");
    busybox::write_oci_tar(&tar, IMAGE);
    daemon
        .ctr(Ctr::Debian, &["images", "import", tar.to_str().unwrap()])
        .ok();
    daemon
}

fn ctr(daemon: &Daemon, args: &[&str]) -> rcontainerd_tests::ctr::CtrOutput {
    daemon.ctr(Ctr::Debian, args)
}

/// `ctr tasks ls` as (task, pid, status) rows.
fn tasks(daemon: &Daemon) -> Vec<(String, String, String)> {
    ctr(daemon, &["tasks", "ls"])
        .ok()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

/// The names in `<state>/io.containerd.runtime.v2.task/<sub>`.
fn runtime_state(daemon: &Daemon, sub: &str) -> Vec<String> {
    let dir = daemon
        .state()
        .join("io.containerd.runtime.v2.task")
        .join(sub);
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn bundles(daemon: &Daemon) -> Vec<String> {
    runtime_state(daemon, NS)
}

fn wait_until(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ctr_run_rm_prints_output_exits_with_the_status_and_leaves_nothing() {
    if !prerequisites_met() {
        return;
    }
    let daemon = daemon_with_image().await;
    let events = daemon.spawn_ctr(Ctr::Debian, &["events"]);
    std::thread::sleep(Duration::from_millis(300));
    let run = ctr(
        &daemon,
        &[
            "run",
            "--rm",
            IMAGE,
            "t1",
            "sh",
            "-c",
            "echo hello from a task; exit 3",
        ],
    );
    assert_eq!(run.status.code(), Some(3), "{run:?}");
    assert_eq!(run.stdout, "hello from a task\n");
    events.wait_for_stdout(Duration::from_secs(10), "/tasks/delete", |s| {
        s.contains("/containers/delete")
    });
    let topics: Vec<String> = events
        .stdout()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5).map(str::to_string))
        .filter(|t| t.starts_with("/tasks/"))
        .collect();
    assert_eq!(
        topics,
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exit",
            "/tasks/delete"
        ],
        "{}",
        events.stdout()
    );
    assert!(
        events.stdout().contains("\"exit_status\":3"),
        "{}",
        events.stdout()
    );
    assert!(tasks(&daemon).is_empty());
    assert!(ctr(&daemon, &["containers", "ls", "-q"]).ok().is_empty());
    assert!(
        bundles(&daemon).is_empty(),
        "bundles left: {:?}",
        bundles(&daemon)
    );
    // The same id at once: the deleted task's bundle is out of the way.
    let again = ctr(&daemon, &["run", "--rm", IMAGE, "t1", "true"]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    wait_until(Duration::from_secs(10), "the shims to exit", || {
        shims::shims_of(&daemon.socket()).is_empty()
    });
    assert!(bundles(&daemon).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_detached_task_execs_pauses_reports_metrics_and_is_killed() {
    if !prerequisites_met() {
        return;
    }
    let daemon = daemon_with_image().await;
    let events = daemon.spawn_ctr(Ctr::Debian, &["events"]);
    std::thread::sleep(Duration::from_millis(300));
    ctr(&daemon, &["run", "-d", IMAGE, "t2", "sleep", "1000"]).ok();
    let address = std::fs::read_to_string(
        daemon
            .state()
            .join("io.containerd.runtime.v2.task")
            .join(NS)
            .join("t2/address"),
    )
    .unwrap();
    let shim_socket = address.trim().trim_start_matches("unix://").to_string();
    assert!(Path::new(&shim_socket).exists(), "{shim_socket}");
    let listed = tasks(&daemon);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].0.as_str(), listed[0].2.as_str()),
        ("t2", "RUNNING")
    );
    let pid = listed[0].1.clone();
    assert!(ctr(&daemon, &["tasks", "ps", "t2"]).ok().contains(&pid));

    let exec = ctr(
        &daemon,
        &[
            "tasks",
            "exec",
            "--exec-id",
            "e1",
            "t2",
            "sh",
            "-c",
            "echo in; exit 5",
        ],
    );
    assert_eq!(
        (exec.status.code(), exec.stdout.as_str()),
        (Some(5), "in\n"),
        "{exec:?}"
    );

    ctr(&daemon, &["tasks", "pause", "t2"]).ok();
    assert_eq!(tasks(&daemon)[0].2, "PAUSED");
    ctr(&daemon, &["tasks", "resume", "t2"]).ok();
    assert_eq!(tasks(&daemon)[0].2, "RUNNING");
    let metrics = ctr(&daemon, &["tasks", "metrics", "t2"]);
    assert!(metrics.ok().contains("t2"), "{metrics:?}");

    // A task that is running cannot be deleted: the shim's answer, passed through.
    let refused = ctr(&daemon, &["tasks", "rm", "t2"]);
    assert!(
        refused.failed().contains("failed precondition"),
        "{refused:?}"
    );

    ctr(&daemon, &["tasks", "kill", "-s", "KILL", "t2"]).ok();
    wait_until(Duration::from_secs(10), "t2 stopped", || {
        tasks(&daemon)[0].2 == "STOPPED"
    });
    ctr(&daemon, &["tasks", "rm", "t2"]).ok();
    ctr(&daemon, &["containers", "rm", "t2"]).ok();
    assert!(tasks(&daemon).is_empty());
    assert!(bundles(&daemon).is_empty());
    let runc_left = std::fs::read_dir(shims::runc_root(&daemon.state()).join(NS))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(runc_left, 0, "runc state left behind");
    wait_until(Duration::from_secs(10), "the shim to exit", || {
        shims::shims_of(&daemon.socket()).is_empty()
    });
    assert!(
        !Path::new(&shim_socket).exists(),
        "the shim's socket is left: {shim_socket}"
    );
    let mounts = rcontainerd_mount::mounts_under(&daemon.state()).unwrap();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    // The shim's own events, passed through.
    for topic in [
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/paused",
        "/tasks/resumed",
        "/tasks/delete",
    ] {
        assert!(
            events.stdout().contains(topic),
            "no {topic} in\n{}",
            events.stdout()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ctr_run_with_a_terminal_gets_a_pty_and_the_exit_status() {
    if !prerequisites_met() {
        return;
    }
    let daemon = daemon_with_image().await;
    // `script` (util-linux) gives ctr a terminal of its own.
    let typescript = daemon.dir().join("typescript");
    let command = format!(
        "{DEBIAN_CTR} --address {} run -t --rm {IMAGE} tty1 sh -c 'tty; exit 4'",
        daemon.socket().display()
    );
    let status = std::process::Command::new("script")
        .args(["-qec", &command])
        .arg(&typescript)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("script (util-linux)");
    let recorded = std::fs::read_to_string(&typescript).unwrap();
    assert_eq!(status.code(), Some(4), "{recorded}");
    assert!(recorded.contains("/dev/pts/0"), "{recorded}");
    assert!(tasks(&daemon).is_empty());
    assert!(bundles(&daemon).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn running_tasks_survive_a_kill_9_of_the_daemon() {
    if !prerequisites_met() {
        return;
    }
    let mut daemon = daemon_with_image().await;
    ctr(&daemon, &["run", "-d", IMAGE, "t3", "sleep", "1000"]).ok();
    let before = tasks(&daemon);
    daemon.kill9();
    daemon.restart().await.unwrap();
    assert_eq!(tasks(&daemon), before, "the task after the restart");
    // The reconnected shim still reports to the restarted daemon.
    let events = daemon.spawn_ctr(Ctr::Debian, &["events"]);
    std::thread::sleep(Duration::from_millis(300));
    ctr(&daemon, &["tasks", "kill", "-s", "KILL", "t3"]).ok();
    events.wait_for_stdout(Duration::from_secs(10), "/tasks/exit", |s| {
        s.contains("/tasks/exit")
    });
    ctr(&daemon, &["tasks", "rm", "t3"]).ok();
    assert!(bundles(&daemon).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shim_that_dies_is_cleaned_up_and_its_task_reported_exited() {
    if !prerequisites_met() {
        return;
    }
    let daemon = daemon_with_image().await;
    ctr(&daemon, &["run", "-d", IMAGE, "t4", "sleep", "1000"]).ok();
    let container_pid: i32 = tasks(&daemon)[0].1.parse().unwrap();
    let mut client = TasksClient::new(daemon.channel());
    let wait = tokio::spawn({
        let mut client = client.clone();
        async move {
            client
                .wait(namespaced(
                    WaitRequest {
                        container_id: "t4".into(),
                        exec_id: String::new(),
                    },
                    NS,
                ))
                .await
        }
    });
    let events = daemon.spawn_ctr(Ctr::Debian, &["events"]);
    std::thread::sleep(Duration::from_millis(300));
    let shim = shims::shims_of(&daemon.socket());
    assert_eq!(shim.len(), 1);
    let address = std::fs::read_to_string(
        daemon
            .state()
            .join("io.containerd.runtime.v2.task")
            .join(NS)
            .join("t4/address"),
    )
    .unwrap();
    let shim_socket = address.trim().trim_start_matches("unix://").to_string();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    events.wait_for_stdout(Duration::from_secs(15), "/tasks/delete", |s| {
        s.contains("/tasks/delete")
    });
    assert!(events.stdout().contains("/tasks/exit"));
    let waited = tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap()
        .unwrap();
    assert!(waited.is_ok(), "{waited:?}");
    assert!(tasks(&daemon).is_empty());
    assert!(bundles(&daemon).is_empty());
    assert!(
        !Path::new(&shim_socket).exists(),
        "the dead shim's socket is left"
    );
    // `shim delete` killed what the dead shim left.
    wait_until(
        Duration::from_secs(10),
        "the container process to go",
        || shims::is_zombie(container_pid),
    );
    let gone = client
        .get(namespaced(
            GetRequest {
                container_id: "t4".into(),
                exec_id: String::new(),
            },
            NS,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (gone.code(), gone.message()),
        (tonic::Code::NotFound, "task t4 not found")
    );
}

fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_waits_hold_no_thread_each_and_all_get_the_exit() {
    if !prerequisites_met() {
        return;
    }
    let daemon = daemon_with_image().await;
    ctr(&daemon, &["run", "-d", IMAGE, "t5", "sleep", "1000"]).ok();
    let pid = daemon.pid().unwrap();
    let before = threads_of(pid);
    let client = TasksClient::new(daemon.channel());
    // Ten connections of twenty calls: many streams ending at once on one HTTP/2 connection
    // trip the Rust client's own flood guard (a GOAWAY from the client's h2).
    let mut clients = Vec::new();
    for _ in 0..10 {
        let channel = rcontainerd_api::client::connect(daemon.socket(), Duration::from_secs(5))
            .await
            .unwrap();
        clients.push(TasksClient::new(channel));
    }
    let waits: Vec<_> = (0..200)
        .map(|i| {
            let mut client = clients[i % clients.len()].clone();
            tokio::spawn(async move {
                client
                    .wait(namespaced(
                        WaitRequest {
                            container_id: "t5".into(),
                            exec_id: String::new(),
                        },
                        NS,
                    ))
                    .await
                    .map(|r| r.into_inner().exit_status)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = threads_of(pid);
    assert!(
        during < before + 20,
        "200 waits took threads: {before} before, {during} during"
    );
    let mut client2 = client.clone();
    client2
        .kill(namespaced(
            KillRequest {
                container_id: "t5".into(),
                exec_id: String::new(),
                signal: 9,
                all: false,
            },
            NS,
        ))
        .await
        .unwrap();
    for w in waits {
        let status = tokio::time::timeout(Duration::from_secs(10), w)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.unwrap(), 137);
    }
    ctr(&daemon, &["tasks", "rm", "t5"]).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_tasks_and_containers_answer_as_containerd() {
    if !prerequisites_met() {
        return;
    }
    let daemon = daemon_with_image().await;
    let mut client = TasksClient::new(daemon.channel());
    let err = client
        .create(namespaced(
            CreateTaskRequest {
                container_id: "nope".into(),
                ..Default::default()
            },
            NS,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            tonic::Code::NotFound,
            "container \"nope\" in namespace \"default\": not found"
        )
    );
    ctr(&daemon, &["containers", "create", IMAGE, "c1"]).ok();
    let err = client
        .get(namespaced(
            GetRequest {
                container_id: "c1".into(),
                exec_id: String::new(),
            },
            NS,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (tonic::Code::NotFound, "task c1 not found")
    );
    let out = ctr(&daemon, &["tasks", "kill", "c1"]);
    assert!(out.failed().contains("task c1 not found"), "{out:?}");
    // Create twice: the second is refused and the first task is untouched.
    ctr(&daemon, &["tasks", "start", "-d", "c1"]).ok();
    let again = ctr(&daemon, &["tasks", "start", "-d", "c1"]);
    assert!(
        again.failed().contains("task c1: already exists"),
        "{again:?}"
    );
    assert_eq!(tasks(&daemon)[0].2, "RUNNING");
    ctr(&daemon, &["tasks", "kill", "-s", "KILL", "c1"]).ok();
    wait_until(Duration::from_secs(10), "c1 stopped", || {
        tasks(&daemon)[0].2 == "STOPPED"
    });
    ctr(&daemon, &["tasks", "rm", "c1"]).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_restart_exited_tasks_are_stopped_with_their_status_and_running_ones_exec() {
    if !prerequisites_met() {
        return;
    }
    let mut daemon = daemon_with_image().await;
    ctr(
        &daemon,
        &["run", "-d", IMAGE, "short", "sh", "-c", "sleep 1; exit 7"],
    )
    .ok();
    ctr(&daemon, &["run", "-d", IMAGE, "long", "sleep", "1000"]).ok();
    daemon.kill9();
    // `short` exits while no daemon listens.
    std::thread::sleep(Duration::from_millis(2500));
    daemon.restart().await.unwrap();
    let listed = tasks(&daemon);
    let status = |id: &str| listed.iter().find(|t| t.0 == id).map(|t| t.2.clone());
    assert_eq!(status("short").as_deref(), Some("STOPPED"), "{listed:?}");
    assert_eq!(status("long").as_deref(), Some("RUNNING"), "{listed:?}");
    let mut client = TasksClient::new(daemon.channel());
    let waited = client
        .wait(namespaced(
            WaitRequest {
                container_id: "short".into(),
                exec_id: String::new(),
            },
            NS,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(waited.exit_status, 7);
    let exec = ctr(
        &daemon,
        &[
            "tasks",
            "exec",
            "--exec-id",
            "after",
            "long",
            "echo",
            "still here",
        ],
    );
    assert_eq!(exec.ok(), "still here\n");
    ctr(&daemon, &["tasks", "kill", "-s", "KILL", "long"]).ok();
    wait_until(Duration::from_secs(10), "long stopped", || {
        tasks(&daemon).iter().all(|t| t.2 == "STOPPED")
    });
    ctr(&daemon, &["tasks", "rm", "short"]).ok();
    ctr(&daemon, &["tasks", "rm", "long"]).ok();
    assert!(bundles(&daemon).is_empty());
}

/// The same faulty operations against rcontainerd and a real containerd, in a namespace of the
/// test's own (containerd's runc state is shared by every containerd on the machine).
#[tokio::test(flavor = "multi_thread")]
async fn faults_answer_as_containerd_does() {
    if !prerequisites_met() {
        return;
    }
    let ns = format!("faults-{}", std::process::id());
    let ours = daemon_with_image().await;
    let theirs = rcontainerd_tests::containerd::Containerd::start();
    let tar = ours.dir().join("bb.tar");
    let run = |socket: &Path, args: &[&str]| {
        let mut full = vec!["-n", ns.as_str()];
        full.extend_from_slice(args);
        Ctr::Debian.run(socket, &full)
    };
    let mut answers = Vec::new();
    for socket in [ours.socket(), theirs.socket()] {
        run(&socket, &["images", "import", tar.to_str().unwrap()]).ok();
        // An unknown runtime names the shim binary it looked for.
        let unknown = run(
            &socket,
            &[
                "run",
                "--rm",
                "--runtime",
                "io.containerd.nosuch.v1",
                IMAGE,
                "u1",
                "true",
            ],
        );
        let message = unknown.failed().to_string();
        assert!(
            message.contains("binary not installed \"containerd-shim-nosuch-v1\""),
            "{message}"
        );
        run(&socket, &["run", "-d", IMAGE, "x", "sleep", "1000"]).ok();
        run(
            &socket,
            &[
                "tasks",
                "exec",
                "-d",
                "--exec-id",
                "e1",
                "x",
                "sleep",
                "100",
            ],
        )
        .ok();
        let reused = run(
            &socket,
            &["tasks", "exec", "-d", "--exec-id", "e1", "x", "true"],
        );
        let twice = run(&socket, &["tasks", "start", "x"]);
        let missing_exec = run(&socket, &["tasks", "kill", "--exec-id", "nope", "x"]);
        answers.push((
            reused.failed().trim().to_string(),
            twice.failed().trim().to_string(),
            missing_exec.failed().trim().to_string(),
        ));
        run(&socket, &["tasks", "kill", "-a", "-s", "KILL", "x"]).ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !run(&socket, &["tasks", "ls"]).ok().contains("STOPPED") {
            assert!(Instant::now() < deadline, "x did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        run(&socket, &["tasks", "rm", "x"]).ok();
        run(&socket, &["containers", "rm", "x"]).ok();
        run(&socket, &["containers", "rm", "u1"]);
    }
    assert_eq!(
        answers[0], answers[1],
        "rcontainerd (left) and containerd (right) differ"
    );
    assert!(answers[0].0.contains("already exists"), "{:?}", answers[0]);
    assert!(bundles(&ours).is_empty());
}

/// The parent of the live process `pid`.
fn parent_of(pid: &str) -> String {
    let (_, parent) = shims::state_and_parent(pid.parse().unwrap()).unwrap();
    parent.to_string()
}

/// The pids of `parent`'s children that exited and were not reaped.
fn zombie_children(parent: &str) -> Vec<String> {
    let parent: i32 = parent.parse().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| shims::state_and_parent(pid) == Some(('Z', parent)))
        .map(|pid| pid.to_string())
        .collect()
}

fn oom_score_adj(pid: &str) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The daemon starts Debian's runc shim the way the shim's own `start` would, without running
/// `start` (the server is the daemon's child): the server's arguments, its socket's name and mode, the bundle's `address`, an OOM
/// score one above the daemon's; and containers of one group share one shim.
#[tokio::test(flavor = "multi_thread")]
async fn the_runc_shim_is_started_as_its_start_would_start_it() {
    use sha2::Digest as _;
    use std::os::unix::fs::PermissionsExt;
    if !prerequisites_met() {
        return;
    }
    let mut daemon = daemon_with_image().await;
    let address_of = |daemon: &Daemon, id: &str| {
        std::fs::read_to_string(
            daemon
                .state()
                .join("io.containerd.runtime.v2.task")
                .join(NS)
                .join(id)
                .join("address"),
        )
        .unwrap()
    };
    let socket = daemon.socket().display().to_string();
    let expected_socket = |group: &str| {
        let hash = sha2::Sha256::digest(format!("{socket}/{NS}/{group}").as_bytes());
        format!("/run/containerd/s/{hash:x}")
    };
    ctr(&daemon, &["run", "-d", IMAGE, "s1", "sleep", "1000"]).ok();
    assert_eq!(
        address_of(&daemon, "s1"),
        format!("unix://{}", expected_socket("s1"))
    );
    let mode = std::fs::metadata(expected_socket("s1"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let task_pid = tasks(&daemon)[0].1.clone();
    let shim = parent_of(&task_pid);
    let cmdline: Vec<String> = std::fs::read(format!("/proc/{shim}/cmdline"))
        .unwrap()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert!(
        cmdline[0].ends_with("containerd-shim-runc-v2"),
        "{cmdline:?}"
    );
    assert_eq!(
        cmdline[1..],
        ["-namespace", NS, "-id", "s1", "-address", &socket]
    );
    let daemon_pid = daemon.pid().unwrap().to_string();
    assert_eq!(oom_score_adj(&shim), oom_score_adj(&daemon_pid) + 1);
    // Started by the daemon itself, not by a `start` that exited (its server would be an orphan).
    assert_eq!(parent_of(&shim), daemon_pid);

    // Two containers of one group: one shim, named after the group.
    for id in ["g1", "g2"] {
        ctr(
            &daemon,
            &[
                "run",
                "-d",
                "--annotation",
                "io.containerd.runc.v2.group=grp",
                IMAGE,
                id,
                "sleep",
                "1000",
            ],
        )
        .ok();
        assert_eq!(
            address_of(&daemon, id),
            format!("unix://{}", expected_socket("grp"))
        );
    }
    let pids: std::collections::BTreeMap<String, String> = tasks(&daemon)
        .into_iter()
        .map(|(id, pid, _)| (id, pid))
        .collect();
    assert_eq!(
        parent_of(&pids["g1"]),
        parent_of(&pids["g2"]),
        "one shim for the group"
    );
    assert_ne!(parent_of(&pids["g1"]), shim);

    // A restart finds the shims through the addresses, and they serve.
    daemon.restart().await.unwrap();
    for id in ["s1", "g1", "g2"] {
        ctr(&daemon, &["tasks", "kill", "-s", "KILL", id]).ok();
    }
    wait_until(Duration::from_secs(10), "the tasks to stop", || {
        tasks(&daemon)
            .iter()
            .all(|(_, _, status)| status == "STOPPED")
    });
    for id in ["s1", "g1", "g2"] {
        ctr(&daemon, &["tasks", "rm", id]).ok();
        ctr(&daemon, &["containers", "rm", id]).ok();
    }
    // A shim this daemon run started, and that exited, is reaped: no zombie child stays.
    ctr(&daemon, &["run", "--rm", IMAGE, "r1", "true"]).ok();
    let daemon_pid = daemon.pid().unwrap().to_string();
    wait_until(
        Duration::from_secs(10),
        "the daemon's exited children to be reaped",
        || zombie_children(&daemon_pid).is_empty(),
    );
    wait_until(Duration::from_secs(10), "the shims' sockets to go", || {
        !Path::new(&expected_socket("s1")).exists() && !Path::new(&expected_socket("grp")).exists()
    });
}
