//! A runtime driver across the ABI: the test plugin `runtime-fake` (an in-memory runtime, the
//! boundary being what is under test) loaded through `host::load_library`, every call's
//! arguments, results and errors compared on this side; its panicking twin; and the same driver
//! offered through generation 2's placeholder, which is refused.

mod support;

use std::{
    collections::BTreeMap,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use rcontainerd_plugin_api::{
    host::{load_library, LoadedPlugin},
    runtime::{
        AnyValue, CreateTask, ExecProcess, ProcessRef, Runtime, RuntimeEvent, Stdio, TaskStatus,
    },
    snapshot::Mount,
    Driver, ErrorKind, InitContext, CURRENT_ABI_GENERATION,
};

const FAKE: &str = "librcontainerd_test_plugin_runtime_fake.so";
const PLACEHOLDER: &str = "librcontainerd_test_plugin_runtime_placeholder.so";

fn load_one(path: &Path) -> LoadedPlugin {
    let mut plugins = load_library(path).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(plugins.len(), 1, "{}", path.display());
    plugins.remove(0)
}

fn runtime(plugin: &LoadedPlugin, config: &str) -> Arc<dyn Runtime> {
    let tmp = tempfile::tempdir().unwrap();
    let instance = plugin
        .init(InitContext {
            root: tmp.path().join("root"),
            state: tmp.path().join("state"),
            config: config.into(),
            ..InitContext::default()
        })
        .unwrap_or_else(|err| panic!("{err}"));
    match instance.driver {
        Driver::Runtime(runtime) => runtime,
        other => panic!("runtime-fake must provide a runtime, got {other:?}"),
    }
}

fn any(type_url: &str, value: &str) -> AnyValue {
    AnyValue {
        type_url: type_url.into(),
        value: value.as_bytes().to_vec(),
    }
}

fn text(event: &RuntimeEvent) -> (&str, &str, String) {
    assert_eq!(event.event.type_url, "fake.Call");
    (
        event.namespace.as_str(),
        event.topic.as_str(),
        String::from_utf8(event.event.value.clone()).unwrap(),
    )
}

#[test]
fn every_runtime_call_round_trips_through_generation_3() {
    let Some((dir, _)) = support::test_plugins() else {
        return;
    };
    let plugin = load_one(&dir.join(FAKE));
    assert_eq!(plugin.manifest().uri(), "io.containerd.runtime.v2.fake");
    assert_eq!(plugin.manifest().abi_generation, CURRENT_ABI_GENERATION);
    assert_eq!(CURRENT_ABI_GENERATION, 3);
    let rt = runtime(&plugin, "");

    let task = ProcessRef::task("ns-1", "task-1");
    let stdio = Stdio {
        stdin: "/run/fifo/stdin".into(),
        stdout: "file:///var/log/out".into(),
        stderr: "binary:///usr/bin/logger?tag=x".into(),
        terminal: true,
    };
    let request = CreateTask {
        namespace: "ns-1".into(),
        id: "task-1".into(),
        runtime: "io.containerd.runc.v2".into(),
        spec: br#"{"ociVersion":"1.0.2"}"#.to_vec(),
        rootfs: vec![Mount {
            mount_type: "overlay".into(),
            source: "overlay".into(),
            target: String::new(),
            options: vec!["lowerdir=/l1:/l2".into(), "upperdir=/u".into()],
        }],
        stdio: stdio.clone(),
        options: Some(any("containerd.runc.v1.Options", "systemd")),
        checkpoint: String::new(),
    };

    // create: every field of the request reaches the driver (it echoes them in the bundle path).
    let created = rt.create(request.clone()).unwrap();
    assert_eq!(created.pid, 1001);
    assert_eq!(
        created.bundle,
        "/run/fake/ns-1/task-1?spec={\"ociVersion\":\"1.0.2\"}\
         &rootfs=overlay:overlay:lowerdir=/l1:/l2,upperdir=/u\
         &options=containerd.runc.v1.Options=systemd"
    );
    // Errors keep their kind and message.
    let err = rt.create(request.clone()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists, "{err}");
    assert_eq!(err.message, "task task-1 already exists");
    let err = rt
        .create(CreateTask {
            id: "restored".into(),
            checkpoint: "/checkpoints/1".into(),
            ..request.clone()
        })
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotImplemented, "{err}");
    assert_eq!(err.message, "fake runtime: restore: not implemented");

    // state, start.
    let state = rt.state(&task).unwrap();
    assert_eq!(state.id, "task-1");
    assert_eq!(state.exec_id, "");
    assert_eq!(state.pid, 1001);
    assert_eq!(state.status, TaskStatus::Created);
    assert_eq!(state.bundle, created.bundle);
    assert_eq!(state.stdio, stdio);
    assert_eq!((state.exit_status, state.exited_at), (0, 0));
    assert_eq!(rt.start(&task).unwrap(), 1001);
    assert_eq!(rt.state(&task).unwrap().status, TaskStatus::Running);
    let err = rt.start(&task).unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition, "{err}");
    let err = rt.state(&ProcessRef::task("ns-1", "nope")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.message, "task nope not found");

    // exec: its process, stdio and spec cross (state, pids); then start it.
    let exec = ProcessRef::exec("ns-1", "task-1", "exec-1");
    let exec_stdio = Stdio {
        terminal: false,
        ..stdio.clone()
    };
    let spec = any(
        "types.containerd.io/opencontainers/runtime-spec/1/Process",
        r#"{"args":["sh"]}"#,
    );
    rt.exec(ExecProcess {
        process: exec.clone(),
        stdio: exec_stdio.clone(),
        spec: Some(spec.clone()),
    })
    .unwrap();
    let exec_state = rt.state(&exec).unwrap();
    assert_eq!(
        (exec_state.exec_id.as_str(), exec_state.status),
        ("exec-1", TaskStatus::Created)
    );
    assert_eq!(exec_state.stdio, exec_stdio);
    assert_eq!(rt.start(&exec).unwrap(), exec_state.pid);
    let pids = rt.pids("ns-1", "task-1").unwrap();
    assert_eq!(pids.len(), 2);
    assert_eq!((pids[0].pid, pids[0].info.as_ref()), (1001, None));
    assert_eq!(
        (pids[1].pid, pids[1].info.as_ref()),
        (exec_state.pid, Some(&spec))
    );

    // pause, resume.
    rt.pause("ns-1", "task-1").unwrap();
    assert_eq!(rt.state(&task).unwrap().status, TaskStatus::Paused);
    let err = rt.pause("ns-1", "task-1").unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition, "{err}");
    rt.resume("ns-1", "task-1").unwrap();
    assert_eq!(rt.state(&task).unwrap().status, TaskStatus::Running);

    // update (resources come back from stats, annotations as an event), stats.
    assert_eq!(rt.stats("ns-1", "task-1").unwrap(), None);
    let resources = any(
        "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
        "\u{0}binary\u{ff}",
    );
    let annotations = BTreeMap::from([
        ("a".to_string(), "1".to_string()),
        ("b".to_string(), String::new()),
    ]);
    rt.update("ns-1", "task-1", Some(resources.clone()), annotations)
        .unwrap();
    assert_eq!(rt.stats("ns-1", "task-1").unwrap(), Some(resources));
    rt.update("ns-1", "task-1", None, BTreeMap::new()).unwrap();
    assert_eq!(rt.stats("ns-1", "task-1").unwrap(), None);

    // close_io, resize_pty (the exec has no terminal: an error), connect, tasks.
    rt.close_io(&exec, true).unwrap();
    rt.resize_pty(&task, 80, 25).unwrap();
    let err = rt.resize_pty(&exec, 80, 25).unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition, "{err}");
    assert_eq!(err.message, "process \"exec-1\" has no terminal");
    let connection = rt.connect("ns-1", "task-1").unwrap();
    assert_eq!(connection.shim_pid, std::process::id());
    assert_eq!(connection.task_pid, 1001);
    let tasks = rt.tasks().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        (
            tasks[0].namespace.as_str(),
            tasks[0].id.as_str(),
            tasks[0].runtime.as_str(),
            tasks[0].bundle.as_str()
        ),
        (
            "ns-1",
            "task-1",
            "io.containerd.runc.v2",
            created.bundle.as_str()
        )
    );

    // The events so far, in order, with their arguments.
    let events = rt.next_events(Duration::from_secs(5)).unwrap();
    let events: Vec<_> = events.iter().map(text).collect();
    assert_eq!(
        events,
        [
            ("ns-1", "/fake/update", "a=1,b=".to_string()),
            ("ns-1", "/fake/update", String::new()),
            (
                "ns-1",
                "/fake/close-io",
                "task-1 \"exec-1\" stdin=true".into()
            ),
            ("ns-1", "/fake/resize-pty", "task-1 \"\" 80x25".into()),
        ]
    );

    // next_events' timeout crosses: nothing pending, it waits that long and returns empty.
    let started = Instant::now();
    assert!(rt
        .next_events(Duration::from_millis(200))
        .unwrap()
        .is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // A wait blocked in the driver returns once another thread kills the process.
    let waiter = {
        let rt = rt.clone();
        let exec = exec.clone();
        std::thread::spawn(move || rt.wait(&exec))
    };
    std::thread::sleep(Duration::from_millis(100));
    rt.kill(&exec, 9, false).unwrap();
    let exit = waiter.join().unwrap().unwrap();
    assert_eq!(
        (exit.pid, exit.exit_status),
        (exec_state.pid, 137),
        "{exit:?}"
    );
    assert!(exit.exited_at > 0);
    assert_eq!(rt.state(&exec).unwrap().exited_at, exit.exited_at);
    assert_eq!(rt.delete(&exec).unwrap(), exit);
    assert_eq!(
        rt.state(&exec).unwrap_err().message,
        "process exec-1 not found"
    );

    // kill with all, delete the task, shutdown.
    let err = rt.delete(&task).unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition, "{err}");
    let err = rt.shutdown("ns-1", "task-1").unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition, "{err}");
    rt.kill(&task, 15, true).unwrap();
    let exit = rt.wait(&task).unwrap();
    assert_eq!((exit.pid, exit.exit_status), (1001, 143));
    assert_eq!(rt.delete(&task).unwrap(), exit);
    rt.shutdown("ns-1", "task-1").unwrap();
    assert!(rt.tasks().unwrap().is_empty());
    let events = rt.next_events(Duration::from_secs(5)).unwrap();
    let events: Vec<_> = events.iter().map(text).collect();
    assert_eq!(
        events,
        [
            (
                "ns-1",
                "/tasks/exit",
                format!("task-1 \"exec-1\" {} 137", exec_state.pid)
            ),
            ("ns-1", "/tasks/exit", "task-1 \"\" 1001 143".into()),
            ("ns-1", "/fake/shutdown", "task-1".into()),
        ]
    );
}

/// Every method of a runtime whose calls all panic fails with `Internal`, naming the plugin and
/// the panic; the process lives on, and dropping the driver (whose `Drop` panics) is survived too.
#[test]
fn a_panicking_runtime_fails_each_call_and_the_process_lives() {
    let Some((dir, _)) = support::test_plugins() else {
        return;
    };
    let plugin = load_one(&dir.join(FAKE));
    let rt = runtime(&plugin, "panic = true\n");
    let p = ProcessRef::task("ns", "t");
    let calls: Vec<(&str, ErrorOf)> = vec![
        ("create", rt.create(CreateTask::default()).err()),
        ("start", rt.start(&p).err()),
        ("delete", rt.delete(&p).err()),
        ("kill", rt.kill(&p, 9, true).err()),
        ("exec", rt.exec(ExecProcess::default()).err()),
        ("pids", rt.pids("ns", "t").err()),
        ("pause", rt.pause("ns", "t").err()),
        ("resume", rt.resume("ns", "t").err()),
        ("update", rt.update("ns", "t", None, BTreeMap::new()).err()),
        ("stats", rt.stats("ns", "t").err()),
        ("close_io", rt.close_io(&p, true).err()),
        ("resize_pty", rt.resize_pty(&p, 1, 1).err()),
        ("state", rt.state(&p).err()),
        ("wait", rt.wait(&p).err()),
        ("connect", rt.connect("ns", "t").err()),
        ("shutdown", rt.shutdown("ns", "t").err()),
        ("tasks", rt.tasks().err()),
        ("next_events", rt.next_events(Duration::ZERO).err()),
    ];
    for (call, err) in calls {
        let err = err.unwrap_or_else(|| panic!("{call} succeeded"));
        assert_eq!(err.kind, ErrorKind::Internal, "{call}: {err}");
        assert_eq!(
            err.message,
            format!("plugin io.containerd.runtime.v2.fake panicked: deliberate panic in {call}")
        );
    }
    drop(rt);
    // Still here: a healthy instance of the same library works.
    let healthy = runtime(&plugin, "");
    assert!(healthy.tasks().unwrap().is_empty());
}

type ErrorOf = Option<rcontainerd_plugin_api::PluginError>;

/// Generations 1 and 2 carry only a runtime placeholder: a plugin that offers a runtime through
/// them loads (its manifest is readable) but its init is refused in one line.
#[test]
fn a_runtime_offered_through_generation_2_is_refused_at_init() {
    let Some((dir, _)) = support::test_plugins() else {
        return;
    };
    let plugin = load_one(&dir.join(PLACEHOLDER));
    assert_eq!(plugin.manifest().abi_generation, 2);
    assert_eq!(plugin.manifest().uri(), "io.containerd.runtime.v2.fake");
    let err = plugin.init(InitContext::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition, "{err}");
    assert_eq!(
        err.message,
        "plugin io.containerd.runtime.v2.fake: runtime drivers need ABI generation 3 \
         (export it with export_plugin!)"
    );
}
