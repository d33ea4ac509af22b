//! The runtime conformance suite: any task runtime driver runs it against itself, as its Rust
//! type and through its loaded library. It drives real processes, so the caller provides a
//! [`RuntimeFixture`]: the runtime name to create tasks with and a root filesystem with a POSIX
//! `sh` (a static busybox is enough), as mounts.
//!
//! The checks hold for any driver: a task's life (created, running, stopped with its status,
//! deleted), kill, exec, pids, pause and resume, duplicate and unknown ids, and stdout reaching
//! a `file://` destination.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{ensure, CheckResult};
use crate::runtime::{AnyValue, CreateTask, ExecProcess, ProcessRef, Runtime, Stdio, TaskStatus};
use crate::snapshot::Mount;
use crate::{ErrorKind, PluginError, Result};

/// What the suite needs from its caller.
#[derive(Debug, Clone)]
pub struct RuntimeFixture {
    /// The runtime name tasks are created with (e.g. `io.containerd.runc.v2`).
    pub runtime: String,
    /// A root filesystem holding `/bin/sh` and empty `/proc` and `/dev`, as mounts.
    pub rootfs: Vec<Mount>,
    /// A directory for the tasks' output files.
    pub scratch: PathBuf,
    /// The events address given to loaded drivers (`InitContext::ttrpc_address`), which the
    /// caller serves: a shim whose events go nowhere lingers after its task is deleted.
    pub ttrpc_address: String,
}

/// A named check.
pub type RuntimeCheck = (&'static str, fn(&dyn Runtime, &Case) -> CheckResult);

/// One check's context: the fixture and ids no other check uses.
pub struct Case<'a> {
    pub fixture: &'a RuntimeFixture,
    pub namespace: String,
    prefix: String,
}

impl Case<'_> {
    /// A task id unique to this check.
    pub fn id(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }
}

pub const CHECKS: &[RuntimeCheck] = &[
    (
        "a task runs to its exit status",
        a_task_runs_to_its_exit_status,
    ),
    ("kill ends a task", kill_ends_a_task),
    ("exec runs a second process", exec_runs_a_second_process),
    ("pids list the task", pids_list_the_task),
    ("pause and resume", pause_and_resume),
    ("an existing id is refused", an_existing_id_is_refused),
    ("unknown tasks are not found", unknown_tasks_are_not_found),
];

const NAMESPACE: &str = "conformance";
/// No check may take longer; a hung driver fails the suite instead of stalling it.
const CHECK_LIMIT: Duration = Duration::from_secs(60);

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// Runs every check, each on a fresh driver from `make`; panics listing the failures. Every
/// task a check leaves is killed and deleted afterwards.
pub fn run_all(fixture: &RuntimeFixture, make: &mut dyn FnMut() -> Arc<dyn Runtime>) {
    let mut failures = Vec::new();
    for (name, check) in CHECKS {
        let driver = make();
        let case = Case {
            fixture,
            namespace: NAMESPACE.to_string(),
            prefix: format!(
                "c{}p{}",
                RUNS.fetch_add(1, Ordering::Relaxed),
                std::process::id()
            ),
        };
        let result = {
            let driver = driver.clone();
            let fixture = fixture.clone();
            let (namespace, prefix) = (case.namespace.clone(), case.prefix.clone());
            let check = *check;
            super::within(CHECK_LIMIT, name, move || {
                check(
                    &*driver,
                    &Case {
                        fixture: &fixture,
                        namespace,
                        prefix,
                    },
                )
            })
        };
        clean_up(&*driver);
        if let Err(why) = result {
            failures.push(format!("  {name}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "runtime conformance: {} of {} checks failed:\n{}",
        failures.len(),
        CHECKS.len(),
        failures.join("\n")
    );
}

/// Runs every check through the built library at `library`, initialised as the daemon does
/// (fresh root and state per check).
pub fn run_all_loaded(fixture: &RuntimeFixture, library: &Path) {
    let roots = super::Roots::new();
    let mut plugins = crate::host::load_library(library).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plugins.len(), 1, "{} exports one plugin", library.display());
    let plugin = plugins.remove(0);
    run_all(fixture, &mut || {
        let dir = roots.next();
        let ctx = crate::InitContext {
            root: dir.join("root"),
            state: dir.join("state"),
            grpc_address: dir.join("grpc.sock").to_string_lossy().into_owned(),
            ttrpc_address: fixture.ttrpc_address.clone(),
            ..crate::InitContext::default()
        };
        match plugin
            .init(ctx)
            .unwrap_or_else(|e| panic!("init: {e}"))
            .driver
        {
            crate::Driver::Runtime(r) => r,
            other => panic!("{} provides {other:?}, not a runtime", library.display()),
        }
    });
}

fn clean_up(r: &dyn Runtime) {
    for task in r.tasks().unwrap_or_default() {
        let p = ProcessRef::task(&task.namespace, &task.id);
        let _ = r.kill(&p, 9, true);
        let _ = r.wait(&p);
        let _ = r.delete(&p);
    }
}

fn step<T>(what: &str, result: Result<T>) -> std::result::Result<T, String> {
    result.map_err(|e| format!("{what}: {e} ({:?})", e.kind))
}

fn expect_kind<T: std::fmt::Debug>(what: &str, result: Result<T>, kind: ErrorKind) -> CheckResult {
    match result {
        Ok(v) => Err(format!("{what}: succeeded ({v:?}), expected {kind}")),
        Err(PluginError { kind: got, message }) if got != kind => {
            Err(format!("{what}: got {got} ({message}), expected {kind}"))
        }
        Err(_) => Ok(()),
    }
}

/// An OCI runtime spec for `args` in the fixture's rootfs: its own pid, ipc, uts and mount
/// namespaces, `/proc` and a `/dev` tmpfs, root user, `PATH=/bin`.
pub fn spec(id: &str, args: &[&str]) -> Vec<u8> {
    let process = process(args);
    serde_json::to_vec(&serde_json::json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs"},
        "hostname": id,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        ],
        "linux": {
            "cgroupsPath": format!("/rcontainerd-conformance/{id}"),
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
        },
    }))
    .expect("a spec serialises")
}

fn process(args: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ["PATH=/bin"],
        "cwd": "/",
        "noNewPrivileges": true,
    })
}

fn output_file(case: &Case, name: &str) -> (PathBuf, String) {
    let path = case
        .fixture
        .scratch
        .join(format!("{}-{name}.out", case.prefix));
    let uri = format!("file://{}", path.display());
    (path, uri)
}

/// Creates (not starts) task `name` running `args`, its stdout and stderr into one file.
fn create(
    r: &dyn Runtime,
    case: &Case,
    name: &str,
    args: &[&str],
) -> std::result::Result<(ProcessRef, PathBuf), String> {
    let id = case.id(name);
    let (path, uri) = output_file(case, name);
    let created = step(
        "create",
        r.create(CreateTask {
            namespace: case.namespace.clone(),
            id: id.clone(),
            runtime: case.fixture.runtime.clone(),
            spec: spec(&id, args),
            rootfs: case.fixture.rootfs.clone(),
            stdio: Stdio {
                stdout: uri.clone(),
                stderr: uri,
                ..Stdio::default()
            },
            options: None,
            checkpoint: String::new(),
        }),
    )?;
    ensure!(created.pid > 0, "create answered pid 0");
    Ok((ProcessRef::task(&case.namespace, &id), path))
}

fn started(
    r: &dyn Runtime,
    case: &Case,
    name: &str,
    args: &[&str],
) -> std::result::Result<ProcessRef, String> {
    let (task, _) = create(r, case, name, args)?;
    step("start", r.start(&task))?;
    Ok(task)
}

fn stop(r: &dyn Runtime, task: &ProcessRef) -> CheckResult {
    step("kill", r.kill(task, 9, false))?;
    step("wait", r.wait(task))?;
    step("delete", r.delete(task)).map(drop)
}

pub fn a_task_runs_to_its_exit_status(r: &dyn Runtime, case: &Case) -> CheckResult {
    let (task, out) = create(r, case, "life", &["sh", "-c", "echo out; exit 3"])?;
    let state = step("state", r.state(&task))?;
    ensure!(
        state.status == TaskStatus::Created,
        "after create: {:?}",
        state.status
    );
    let listed = step("tasks", r.tasks())?;
    ensure!(
        listed
            .iter()
            .any(|t| t.id == task.id && t.namespace == task.namespace),
        "tasks() does not list {}",
        task.id
    );
    let pid = step("start", r.start(&task))?;
    ensure!(pid > 0, "start answered pid 0");
    let exit = step("wait", r.wait(&task))?;
    ensure!(
        exit.exit_status == 3,
        "exit status {}, expected 3",
        exit.exit_status
    );
    let state = step("state", r.state(&task))?;
    ensure!(
        state.status == TaskStatus::Stopped && state.exit_status == 3,
        "after exit: {state:?}"
    );
    let deleted = step("delete", r.delete(&task))?;
    ensure!(
        deleted.exit_status == 3,
        "delete answered exit status {}",
        deleted.exit_status
    );
    let written = std::fs::read_to_string(&out).unwrap_or_default();
    ensure!(written == "out\n", "stdout file holds {written:?}");
    expect_kind("state after delete", r.state(&task), ErrorKind::NotFound)?;
    let listed = step("tasks", r.tasks())?;
    ensure!(
        !listed.iter().any(|t| t.id == task.id),
        "tasks() still lists {}",
        task.id
    );
    Ok(())
}

pub fn kill_ends_a_task(r: &dyn Runtime, case: &Case) -> CheckResult {
    let task = started(r, case, "kill", &["sleep", "100"])?;
    let state = step("state", r.state(&task))?;
    ensure!(
        state.status == TaskStatus::Running,
        "after start: {:?}",
        state.status
    );
    step("kill", r.kill(&task, 9, false))?;
    let exit = step("wait", r.wait(&task))?;
    ensure!(
        exit.exit_status == 137,
        "killed task exit status {}",
        exit.exit_status
    );
    step("delete", r.delete(&task)).map(drop)
}

pub fn exec_runs_a_second_process(r: &dyn Runtime, case: &Case) -> CheckResult {
    let task = started(r, case, "exec", &["sleep", "100"])?;
    let (out, uri) = output_file(case, "exec-e1");
    let exec = ProcessRef::exec(&task.namespace, &task.id, "e1");
    step(
        "exec",
        r.exec(ExecProcess {
            process: exec.clone(),
            stdio: Stdio {
                stdout: uri.clone(),
                stderr: uri,
                ..Stdio::default()
            },
            spec: Some(AnyValue {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
                value: serde_json::to_vec(&process(&["sh", "-c", "echo exec; exit 4"])).unwrap(),
            }),
        }),
    )?;
    step("start exec", r.start(&exec))?;
    let exit = step("wait exec", r.wait(&exec))?;
    ensure!(
        exit.exit_status == 4,
        "exec exit status {}",
        exit.exit_status
    );
    step("delete exec", r.delete(&exec))?;
    let written = std::fs::read_to_string(&out).unwrap_or_default();
    ensure!(written == "exec\n", "exec stdout holds {written:?}");
    let state = step("task state", r.state(&task))?;
    ensure!(
        state.status == TaskStatus::Running,
        "the task after its exec: {:?}",
        state.status
    );
    stop(r, &task)
}

pub fn pids_list_the_task(r: &dyn Runtime, case: &Case) -> CheckResult {
    let task = started(r, case, "pids", &["sleep", "100"])?;
    let pid = step("state", r.state(&task))?.pid;
    let pids = step("pids", r.pids(&task.namespace, &task.id))?;
    ensure!(
        pids.iter().any(|p| p.pid == pid),
        "pids {pids:?} lack the task's {pid}"
    );
    stop(r, &task)
}

pub fn pause_and_resume(r: &dyn Runtime, case: &Case) -> CheckResult {
    let task = started(r, case, "pause", &["sleep", "100"])?;
    step("pause", r.pause(&task.namespace, &task.id))?;
    let state = step("state", r.state(&task))?;
    ensure!(
        state.status == TaskStatus::Paused,
        "after pause: {:?}",
        state.status
    );
    step("resume", r.resume(&task.namespace, &task.id))?;
    let state = step("state", r.state(&task))?;
    ensure!(
        state.status == TaskStatus::Running,
        "after resume: {:?}",
        state.status
    );
    stop(r, &task)
}

pub fn an_existing_id_is_refused(r: &dyn Runtime, case: &Case) -> CheckResult {
    let (task, _) = create(r, case, "twice", &["sleep", "100"])?;
    let again = create(r, case, "twice", &["true"]);
    match again {
        Ok(_) => return Err("a second create of the same id succeeded".into()),
        Err(why) if !why.contains("AlreadyExists") => return Err(why),
        Err(_) => {}
    }
    let state = step("state", r.state(&task))?;
    ensure!(
        state.status == TaskStatus::Created,
        "the first task after the refusal: {:?}",
        state.status
    );
    stop(r, &task)
}

pub fn unknown_tasks_are_not_found(r: &dyn Runtime, case: &Case) -> CheckResult {
    let nope = ProcessRef::task(&case.namespace, case.id("nope"));
    expect_kind("state", r.state(&nope), ErrorKind::NotFound)?;
    expect_kind("start", r.start(&nope), ErrorKind::NotFound)?;
    expect_kind("kill", r.kill(&nope, 9, false), ErrorKind::NotFound)?;
    expect_kind("delete", r.delete(&nope), ErrorKind::NotFound)?;
    expect_kind(
        "pids",
        r.pids(&nope.namespace, &nope.id),
        ErrorKind::NotFound,
    )
}
