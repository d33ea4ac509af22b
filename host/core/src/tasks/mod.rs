//! Tasks: containers running through a runtime driver.
//!
//! The host's part is small on purpose: it finds the container (its spec, runtime and options),
//! picks the runtime driver, and keeps the [`exits::ExitTable`] that answers Wait. Everything
//! about processes — bundles, shims, stdio — is the driver's.

pub mod exits;
pub mod plugin;

use std::collections::BTreeMap;
use std::sync::Arc;

use rcontainerd_metadata::MetadataStore;
use rcontainerd_mount::Mount;
use rcontainerd_pkg::errdefs::{Error, Kind, Result};
use rcontainerd_plugin_api::runtime::{
    self as rt, AnyValue, CreatedTask, Exit, ProcessInfo, ProcessRef, ProcessState, Runtime, Stdio,
    TaskStatus,
};

use crate::events::{Envelope, Exchange};
use exits::ExitTable;

/// Reads the process and exit out of a `/tasks/exit` event (the edge knows the message types).
pub type ExitDecoder =
    fn(namespace: &str, topic: &str, event: &prost_types::Any) -> Option<(ProcessRef, Exit)>;

/// The runtime driver that serves every shim v2 runtime name (`io.containerd.runc.v2`, …).
pub const SHIM_V2_RUNTIME: &str = "io.containerd.runtime.v2.task";

/// A Tasks.Create as the edge decoded it.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub container_id: String,
    /// The root filesystem's mounts; the client resolves the container's snapshot.
    pub rootfs: Vec<Mount>,
    pub stdio: Stdio,
    /// Task options; the container's runtime options when absent.
    pub options: Option<AnyValue>,
    /// A runtime binary to use instead of the container's runtime name.
    pub runtime_path: String,
    /// Whether the client asked to restore a checkpoint (not supported).
    pub checkpoint: bool,
}

/// The tasks of every runtime driver, with the exits heard of.
pub struct Tasks {
    meta: Arc<MetadataStore>,
    runtimes: BTreeMap<String, Arc<dyn Runtime>>,
    exchange: Arc<Exchange>,
    exits: ExitTable,
}

fn driver<T>(result: rcontainerd_plugin_api::Result<T>) -> Result<T> {
    result.map_err(Error::from)
}

/// Whether `runtime` holds task `id` of `namespace`: from the driver's list, which it answers
/// from memory, not a round trip to the task's shim on every call.
fn holds(runtime: &Arc<dyn Runtime>, namespace: &str, id: &str) -> Result<bool> {
    Ok(driver(runtime.tasks())?
        .iter()
        .any(|t| t.namespace == namespace && t.id == id))
}

fn task_not_found(id: &str) -> Error {
    // containerd's words, without the class suffix.
    Error::not_found(format!("task {id} not found")).bare()
}

impl Tasks {
    pub fn new(
        meta: Arc<MetadataStore>,
        runtimes: BTreeMap<String, Arc<dyn Runtime>>,
        exchange: Arc<Exchange>,
    ) -> Self {
        Tasks {
            meta,
            runtimes,
            exchange,
            exits: ExitTable::default(),
        }
    }

    pub fn exits(&self) -> &ExitTable {
        &self.exits
    }

    /// The driver for a container's runtime name: a driver of that exact URI, else the shim v2
    /// driver, which runs any shim (containerd's "one runtime to rule them all").
    fn runtime_for(&self, name: &str) -> Result<&Arc<dyn Runtime>> {
        self.runtimes
            .get(name)
            .or_else(|| self.runtimes.get(SHIM_V2_RUNTIME))
            .or_else(|| self.runtimes.values().next())
            .ok_or_else(|| {
                Error::not_found(format!(
                    "runtime for task {name}: no runtime driver is loaded ({SHIM_V2_RUNTIME})"
                ))
            })
    }

    /// The driver of the container's existing task (NotFound "task <id> not found" otherwise).
    fn existing(&self, process: &ProcessRef) -> Result<&Arc<dyn Runtime>> {
        let container = self
            .meta
            .containers()
            .get(&process.namespace, &process.id)?;
        let runtime = self.runtime_for(&container.runtime.name)?;
        if holds(runtime, &process.namespace, &process.id)? {
            Ok(runtime)
        } else {
            Err(task_not_found(&process.id))
        }
    }

    pub fn create(&self, namespace: &str, request: CreateRequest) -> Result<CreatedTask> {
        let container = self
            .meta
            .containers()
            .get(namespace, &request.container_id)?;
        if request.checkpoint {
            return Err(Error::not_implemented(
                "restoring a task from a checkpoint is not supported",
            ));
        }
        let name = if request.runtime_path.is_empty() {
            container.runtime.name.clone()
        } else {
            request.runtime_path.clone()
        };
        let runtime = self.runtime_for(&container.runtime.name)?;
        if holds(runtime, namespace, &container.id)? {
            return Err(Error::already_exists(format!("task {}", container.id)));
        }
        let options = request.options.or_else(|| {
            container.runtime.options.map(|o| AnyValue {
                type_url: o.type_url,
                value: o.value,
            })
        });
        // A stale exit of an earlier task of the same id must not answer this one's Wait.
        self.exits.forget_task(namespace, &container.id);
        driver(runtime.create(rt::CreateTask {
            namespace: namespace.to_string(),
            id: container.id.clone(),
            runtime: name,
            spec: container.spec.map(|s| s.value).unwrap_or_default(),
            rootfs: request.rootfs,
            stdio: request.stdio,
            options,
            checkpoint: String::new(),
        }))
    }

    pub fn start(&self, process: &ProcessRef) -> Result<u32> {
        driver(self.existing(process)?.start(process))
    }

    /// Deletes the task (its processes must have ended) and forgets its exits.
    pub fn delete(&self, namespace: &str, id: &str) -> Result<Exit> {
        let task = ProcessRef::task(namespace, id);
        let exit = driver(self.existing(&task)?.delete(&task))?;
        self.exits.forget_task(namespace, id);
        Ok(exit)
    }

    pub fn delete_process(&self, process: &ProcessRef) -> Result<Exit> {
        let exit = driver(self.existing(process)?.delete(process))?;
        self.exits.forget(process);
        Ok(exit)
    }

    pub fn get(&self, process: &ProcessRef) -> Result<ProcessState> {
        driver(self.existing(process)?.state(process))
    }

    /// The tasks of `namespace`, every runtime's, ordered by id.
    pub fn list(&self, namespace: &str) -> Result<Vec<ProcessState>> {
        let mut out = Vec::new();
        for runtime in self.runtimes.values() {
            for info in driver(runtime.tasks())? {
                if info.namespace != namespace {
                    continue;
                }
                // A task deleted meanwhile is simply not listed (containerd does the same).
                match runtime.state(&ProcessRef::task(namespace, &info.id)) {
                    Ok(state) => out.push(state),
                    Err(e) if Error::from(e.clone()).kind == Kind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub fn kill(&self, process: &ProcessRef, signal: u32, all: bool) -> Result<()> {
        driver(self.existing(process)?.kill(process, signal, all))
    }

    pub fn exec(&self, request: rt::ExecProcess) -> Result<()> {
        if request.process.exec_id.is_empty() {
            return Err(Error::invalid_argument("exec id cannot be empty").bare());
        }
        driver(self.existing(&request.process)?.exec(request))
    }

    pub fn pids(&self, namespace: &str, id: &str) -> Result<Vec<ProcessInfo>> {
        let task = ProcessRef::task(namespace, id);
        driver(self.existing(&task)?.pids(namespace, id))
    }

    pub fn pause(&self, namespace: &str, id: &str) -> Result<()> {
        let task = ProcessRef::task(namespace, id);
        driver(self.existing(&task)?.pause(namespace, id))
    }

    pub fn resume(&self, namespace: &str, id: &str) -> Result<()> {
        let task = ProcessRef::task(namespace, id);
        driver(self.existing(&task)?.resume(namespace, id))
    }

    pub fn update(
        &self,
        namespace: &str,
        id: &str,
        resources: Option<AnyValue>,
        annotations: BTreeMap<String, String>,
    ) -> Result<()> {
        let task = ProcessRef::task(namespace, id);
        driver(
            self.existing(&task)?
                .update(namespace, id, resources, annotations),
        )
    }

    pub fn close_io(&self, process: &ProcessRef, stdin: bool) -> Result<()> {
        driver(self.existing(process)?.close_io(process, stdin))
    }

    pub fn resize_pty(&self, process: &ProcessRef, width: u32, height: u32) -> Result<()> {
        driver(self.existing(process)?.resize_pty(process, width, height))
    }

    /// The stats of each task of `namespace` that `select` accepts (by id), skipping tasks
    /// that went away meanwhile.
    pub fn metrics(
        &self,
        namespace: &str,
        select: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, Option<AnyValue>)>> {
        let mut out = Vec::new();
        for runtime in self.runtimes.values() {
            for info in driver(runtime.tasks())? {
                if info.namespace != namespace || !select(&info.id) {
                    continue;
                }
                match runtime.stats(namespace, &info.id) {
                    Ok(stats) => out.push((info.id, stats)),
                    Err(e) => {
                        let e = Error::from(e);
                        if e.kind != Kind::NotFound {
                            tracing::warn!(id = %info.id, error = %e.message, "collecting metrics");
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The exit of a process whose state says it stopped.
    pub fn exit_of(state: &ProcessState) -> Option<Exit> {
        (state.status == TaskStatus::Stopped).then_some(Exit {
            pid: state.pid,
            exit_status: state.exit_status,
            exited_at: state.exited_at,
        })
    }

    /// An event from a runtime (forwarded by a shim, or the driver's own): onto the exchange,
    /// and into the exit table when it reports an exit (`exit`, decoded by the caller, who
    /// knows the message types).
    pub fn receive(&self, envelope: Envelope, exit: Option<(ProcessRef, Exit)>) -> Result<()> {
        if let Some((process, exit)) = exit {
            self.exits.record(&process, exit);
        }
        self.exchange.forward(envelope)
    }

    /// Starts one thread per runtime driver that takes the events the driver publishes itself
    /// ([`Runtime::next_events`]) into [`Self::receive`]. One thread per driver, not per task.
    pub fn pump_driver_events(self: &Arc<Self>, decode: ExitDecoder) {
        for (uri, runtime) in &self.runtimes {
            let tasks = Arc::downgrade(self);
            let runtime = runtime.clone();
            let plugin = uri.clone();
            let spawned = std::thread::Builder::new()
                .name("runtime-events".into())
                .spawn(move || loop {
                    let batch = runtime.next_events(std::time::Duration::from_secs(1));
                    let Some(tasks) = tasks.upgrade() else { return };
                    match batch {
                        Ok(events) => {
                            for e in events {
                                let any = prost_types::Any {
                                    type_url: e.event.type_url,
                                    value: e.event.value,
                                };
                                let exit = decode(&e.namespace, &e.topic, &any);
                                let envelope = Envelope {
                                    timestamp: std::time::SystemTime::now(),
                                    namespace: e.namespace,
                                    topic: e.topic,
                                    event: Some(any),
                                };
                                if let Err(err) = tasks.receive(envelope, exit) {
                                    tracing::warn!(%plugin, error = %err.message, "runtime event refused");
                                }
                            }
                        }
                        Err(err) => {
                            tracing::warn!(%plugin, error = %err.message, "runtime events");
                            std::thread::sleep(std::time::Duration::from_secs(1));
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(plugin = %uri, error = %e, "cannot start the runtime events thread");
            }
        }
    }
}
