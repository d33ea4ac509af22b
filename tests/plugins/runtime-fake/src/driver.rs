//! The driver: an in-memory task runtime, as small as the ABI test needs: what is under test is the
//! boundary (every call's arguments, results and errors crossing it, panics caught), not a
//! runtime. Tasks and exec processes live in a map; nothing is run.
//!
//! - Every call that answers nothing the test could check (`update`'s annotations, `close_io`,
//!   `resize_pty`, `shutdown`) publishes an event `/fake/<call>` with its arguments as text;
//!   `kill` publishes `/tasks/exit` for each process it stops. [`Runtime::next_events`] drains
//!   them.
//! - With `panic = true` in its config, every call panics (and so does dropping the driver).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rcontainerd_plugin_api::{
    runtime::{
        AnyValue, Connection, CreateTask, CreatedTask, ExecProcess, Exit, ProcessInfo, ProcessRef,
        ProcessState, Runtime, RuntimeEvent, Stdio, TaskInfo, TaskStatus,
    },
    Driver, InitContext, Manifest, Plugin, PluginError, PluginInstance, Result,
};

/// The plugin: `io.containerd.runtime.v2.fake`.
pub struct FakeRuntimePlugin;

impl Plugin for FakeRuntimePlugin {
    fn manifest() -> Manifest {
        Manifest::new("io.containerd.runtime.v2", "fake").default_config("panic = false\n")
    }

    fn init(ctx: InitContext) -> Result<PluginInstance> {
        let panicking = ctx.config.lines().any(|line| line.trim() == "panic = true");
        let fake = Fake {
            panicking,
            state: Mutex::default(),
            changed: Condvar::new(),
        };
        Ok(PluginInstance::new(Driver::Runtime(Arc::new(fake))))
    }
}

struct Process {
    pid: u32,
    status: TaskStatus,
    stdio: Stdio,
    exit: Exit,
    /// The exec process's spec, reported back by `pids`.
    spec: Option<AnyValue>,
}

struct Task {
    runtime: String,
    bundle: String,
    /// By exec id; the init process under "".
    processes: BTreeMap<String, Process>,
    resources: Option<AnyValue>,
}

#[derive(Default)]
struct State {
    /// By (namespace, id).
    tasks: BTreeMap<(String, String), Task>,
    events: VecDeque<RuntimeEvent>,
    last_pid: u32,
}

struct Fake {
    panicking: bool,
    state: Mutex<State>,
    changed: Condvar,
}

impl Drop for Fake {
    fn drop(&mut self) {
        if self.panicking {
            panic!("deliberate panic in drop");
        }
    }
}

fn unix_nanos() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}

fn text_event(namespace: &str, topic: &str, text: String) -> RuntimeEvent {
    RuntimeEvent {
        namespace: namespace.to_string(),
        topic: topic.to_string(),
        event: AnyValue {
            type_url: "fake.Call".to_string(),
            value: text.into_bytes(),
        },
    }
}

impl State {
    fn task(&mut self, namespace: &str, id: &str) -> Result<&mut Task> {
        self.tasks
            .get_mut(&(namespace.to_string(), id.to_string()))
            .ok_or_else(|| PluginError::not_found(format!("task {id} not found")))
    }

    fn process(&mut self, p: &ProcessRef) -> Result<&mut Process> {
        self.task(&p.namespace, &p.id)?
            .processes
            .get_mut(&p.exec_id)
            .ok_or_else(|| PluginError::not_found(format!("process {} not found", p.exec_id)))
    }

    fn next_pid(&mut self) -> u32 {
        self.last_pid += 1;
        1000 + self.last_pid
    }
}

impl Fake {
    /// The state, after panicking if this instance was told to.
    fn enter(&self, call: &str) -> MutexGuard<'_, State> {
        if self.panicking {
            panic!("deliberate panic in {call}");
        }
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, state: &mut State, event: RuntimeEvent) {
        state.events.push_back(event);
        self.changed.notify_all();
    }
}

impl Runtime for Fake {
    fn create(&self, request: CreateTask) -> Result<CreatedTask> {
        let mut state = self.enter("create");
        if !request.checkpoint.is_empty() {
            return Err(PluginError::not_implemented("fake runtime: restore"));
        }
        let key = (request.namespace.clone(), request.id.clone());
        if state.tasks.contains_key(&key) {
            return Err(PluginError::already_exists(format!(
                "task {} already exists",
                request.id
            )));
        }
        // What else crossed comes back in the bundle path, for the test to compare.
        let bundle = format!(
            "/run/fake/{}/{}?spec={}&rootfs={}&options={}",
            request.namespace,
            request.id,
            String::from_utf8_lossy(&request.spec),
            request
                .rootfs
                .iter()
                .map(|m| format!("{}:{}:{}", m.mount_type, m.source, m.options.join(",")))
                .collect::<Vec<_>>()
                .join(";"),
            request
                .options
                .as_ref()
                .map(|o| format!("{}={}", o.type_url, String::from_utf8_lossy(&o.value)))
                .unwrap_or_default()
        );
        let pid = state.next_pid();
        let init = Process {
            pid,
            status: TaskStatus::Created,
            stdio: request.stdio,
            exit: Exit::default(),
            spec: None,
        };
        state.tasks.insert(
            key,
            Task {
                runtime: request.runtime,
                bundle: bundle.clone(),
                processes: BTreeMap::from([(String::new(), init)]),
                resources: None,
            },
        );
        Ok(CreatedTask { pid, bundle })
    }

    fn start(&self, process: &ProcessRef) -> Result<u32> {
        let mut state = self.enter("start");
        let p = state.process(process)?;
        if p.status != TaskStatus::Created {
            return Err(PluginError::failed_precondition(format!(
                "process {} is not created",
                p.pid
            )));
        }
        p.status = TaskStatus::Running;
        Ok(p.pid)
    }

    fn delete(&self, process: &ProcessRef) -> Result<Exit> {
        let mut state = self.enter("delete");
        let exit = {
            let p = state.process(process)?;
            if !matches!(p.status, TaskStatus::Stopped | TaskStatus::Created) {
                return Err(PluginError::failed_precondition(format!(
                    "process {} is still running",
                    p.pid
                )));
            }
            Exit {
                pid: p.pid,
                ..p.exit
            }
        };
        let task = state.task(&process.namespace, &process.id)?;
        task.processes.remove(&process.exec_id);
        if process.exec_id.is_empty() {
            state
                .tasks
                .remove(&(process.namespace.clone(), process.id.clone()));
        }
        Ok(exit)
    }

    fn kill(&self, process: &ProcessRef, signal: u32, all: bool) -> Result<()> {
        let mut state = self.enter("kill");
        let exited_at = unix_nanos();
        let task = state.task(&process.namespace, &process.id)?;
        if !task.processes.contains_key(&process.exec_id) {
            return Err(PluginError::not_found(format!(
                "process {} not found",
                process.exec_id
            )));
        }
        let mut exits = Vec::new();
        for (exec_id, p) in task.processes.iter_mut() {
            if (all || *exec_id == process.exec_id) && p.status != TaskStatus::Stopped {
                p.status = TaskStatus::Stopped;
                p.exit = Exit {
                    pid: p.pid,
                    exit_status: 128 + signal,
                    exited_at,
                };
                exits.push(format!(
                    "{} {exec_id:?} {} {}",
                    process.id,
                    p.pid,
                    128 + signal
                ));
            }
        }
        for text in exits {
            self.publish(
                &mut state,
                text_event(&process.namespace, "/tasks/exit", text),
            );
        }
        self.changed.notify_all();
        Ok(())
    }

    fn exec(&self, request: ExecProcess) -> Result<()> {
        let mut state = self.enter("exec");
        let pid = state.next_pid();
        let task = state.task(&request.process.namespace, &request.process.id)?;
        if task.processes.contains_key(&request.process.exec_id) {
            return Err(PluginError::already_exists(format!(
                "exec {} already exists",
                request.process.exec_id
            )));
        }
        task.processes.insert(
            request.process.exec_id,
            Process {
                pid,
                status: TaskStatus::Created,
                stdio: request.stdio,
                exit: Exit::default(),
                spec: request.spec,
            },
        );
        Ok(())
    }

    fn pids(&self, namespace: &str, id: &str) -> Result<Vec<ProcessInfo>> {
        let mut state = self.enter("pids");
        Ok(state
            .task(namespace, id)?
            .processes
            .values()
            .map(|p| ProcessInfo {
                pid: p.pid,
                info: p.spec.clone(),
            })
            .collect())
    }

    fn pause(&self, namespace: &str, id: &str) -> Result<()> {
        let mut state = self.enter("pause");
        let init = state.process(&ProcessRef::task(namespace, id))?;
        if init.status != TaskStatus::Running {
            return Err(PluginError::failed_precondition(format!(
                "task {id} is not running"
            )));
        }
        init.status = TaskStatus::Paused;
        Ok(())
    }

    fn resume(&self, namespace: &str, id: &str) -> Result<()> {
        let mut state = self.enter("resume");
        let init = state.process(&ProcessRef::task(namespace, id))?;
        if init.status != TaskStatus::Paused {
            return Err(PluginError::failed_precondition(format!(
                "task {id} is not paused"
            )));
        }
        init.status = TaskStatus::Running;
        Ok(())
    }

    fn update(
        &self,
        namespace: &str,
        id: &str,
        resources: Option<AnyValue>,
        annotations: BTreeMap<String, String>,
    ) -> Result<()> {
        let mut state = self.enter("update");
        state.task(namespace, id)?.resources = resources;
        let text = annotations
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        self.publish(&mut state, text_event(namespace, "/fake/update", text));
        Ok(())
    }

    /// The resources of the last update: the fake has no metrics of its own.
    fn stats(&self, namespace: &str, id: &str) -> Result<Option<AnyValue>> {
        let mut state = self.enter("stats");
        Ok(state.task(namespace, id)?.resources.clone())
    }

    fn close_io(&self, process: &ProcessRef, stdin: bool) -> Result<()> {
        let mut state = self.enter("close_io");
        state.process(process)?;
        let text = format!("{} {:?} stdin={stdin}", process.id, process.exec_id);
        self.publish(
            &mut state,
            text_event(&process.namespace, "/fake/close-io", text),
        );
        Ok(())
    }

    fn resize_pty(&self, process: &ProcessRef, width: u32, height: u32) -> Result<()> {
        let mut state = self.enter("resize_pty");
        if !state.process(process)?.stdio.terminal {
            return Err(PluginError::failed_precondition(format!(
                "process {:?} has no terminal",
                process.exec_id
            )));
        }
        let text = format!("{} {:?} {width}x{height}", process.id, process.exec_id);
        self.publish(
            &mut state,
            text_event(&process.namespace, "/fake/resize-pty", text),
        );
        Ok(())
    }

    fn state(&self, process: &ProcessRef) -> Result<ProcessState> {
        let mut state = self.enter("state");
        let bundle = state.task(&process.namespace, &process.id)?.bundle.clone();
        let p = state.process(process)?;
        Ok(ProcessState {
            id: process.id.clone(),
            exec_id: process.exec_id.clone(),
            pid: p.pid,
            status: p.status,
            bundle,
            stdio: p.stdio.clone(),
            exit_status: p.exit.exit_status,
            exited_at: p.exit.exited_at,
        })
    }

    fn wait(&self, process: &ProcessRef) -> Result<Exit> {
        let mut state = self.enter("wait");
        loop {
            let p = state.process(process)?;
            if p.status == TaskStatus::Stopped {
                return Ok(p.exit);
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn connect(&self, namespace: &str, id: &str) -> Result<Connection> {
        let mut state = self.enter("connect");
        let init = state.process(&ProcessRef::task(namespace, id))?;
        Ok(Connection {
            shim_pid: std::process::id(),
            task_pid: init.pid,
        })
    }

    fn shutdown(&self, namespace: &str, id: &str) -> Result<()> {
        let mut state = self.enter("shutdown");
        if state.task(namespace, id).is_ok() {
            return Err(PluginError::failed_precondition(format!(
                "task {id} still has processes"
            )));
        }
        self.publish(
            &mut state,
            text_event(namespace, "/fake/shutdown", id.to_string()),
        );
        Ok(())
    }

    fn tasks(&self) -> Result<Vec<TaskInfo>> {
        let state = self.enter("tasks");
        Ok(state
            .tasks
            .iter()
            .map(|((namespace, id), task)| TaskInfo {
                namespace: namespace.clone(),
                id: id.clone(),
                runtime: task.runtime.clone(),
                bundle: task.bundle.clone(),
            })
            .collect())
    }

    fn next_events(&self, timeout: Duration) -> Result<Vec<RuntimeEvent>> {
        let state = self.enter("next_events");
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| s.events.is_empty())
            .unwrap_or_else(|e| e.into_inner());
        Ok(state.events.drain(..).collect())
    }
}
