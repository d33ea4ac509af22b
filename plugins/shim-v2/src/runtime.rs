//! The driver: one shim per task, found again after a daemon restart.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use prost::Message;
use rcontainerd_api::ttrpc::runc::Options as RuncOptions;
use rcontainerd_api::ttrpc::task as shim;
use rcontainerd_api::types as wire;
use rcontainerd_plugin_api::runtime::{
    AnyValue, Connection, CreateTask, CreatedTask, ExecProcess, Exit, ProcessInfo, ProcessRef,
    ProcessState, Runtime, RuntimeEvent, Stdio, TaskInfo, TaskStatus,
};
use rcontainerd_plugin_api::{PluginError, Result};

use crate::binary::{self, ShimEnv, RUNC_OPTIONS};
use crate::bundle::Bundle;
use crate::client::ShimClient;
use crate::launch;
use crate::log::ShimLog;
use crate::queue::EventQueue;
use crate::time::{nanos, now_nanos};

/// runc's state directory under the driver's state; a dot name is never a namespace's.
const RUNC_ROOT: &str = ".runc";

/// A task's shim as the driver holds it.
struct Shim {
    bundle: Bundle,
    runtime: String,
    binary: PathBuf,
    client: ShimClient,
    /// Held while the shim lives: the shim writes its log into it.
    _log: ShimLog,
}

struct Inner {
    state: PathBuf,
    root: PathBuf,
    env: ShimEnv,
    shims: Mutex<HashMap<(String, String), Arc<Shim>>>,
    events: EventQueue,
}

pub struct ShimRuntime {
    inner: Arc<Inner>,
    io: tokio::runtime::Runtime,
}

fn key(namespace: &str, id: &str) -> (String, String) {
    (namespace.to_string(), id.to_string())
}

fn any_to_wire(a: AnyValue) -> prost_types::Any {
    prost_types::Any {
        type_url: a.type_url,
        value: a.value,
    }
}

fn any_from_wire(a: prost_types::Any) -> AnyValue {
    AnyValue {
        type_url: a.type_url,
        value: a.value,
    }
}

fn status_from_wire(status: i32) -> TaskStatus {
    match status {
        1 => TaskStatus::Created,
        2 => TaskStatus::Running,
        3 => TaskStatus::Stopped,
        4 => TaskStatus::Paused,
        5 => TaskStatus::Pausing,
        _ => TaskStatus::Unknown,
    }
}

impl Inner {
    fn shims(&self) -> MutexGuard<'_, HashMap<(String, String), Arc<Shim>>> {
        self.shims.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn shim(&self, namespace: &str, id: &str) -> Result<Arc<Shim>> {
        self.shims()
            .get(&key(namespace, id))
            .cloned()
            .ok_or_else(|| PluginError::not_found(format!("task {id}")))
    }

    /// runc's state goes under the driver's state directory (`Options.root`), so it never
    /// meets a system containerd's `/run/containerd/runc`.
    fn runc_options(&self, runtime: &str, options: Option<AnyValue>) -> Option<AnyValue> {
        let runc_root = self.state.join(RUNC_ROOT).to_string_lossy().into_owned();
        match options {
            Some(o) if o.type_url.trim_start_matches("type.googleapis.com/") == RUNC_OPTIONS => {
                let Ok(mut decoded) = RuncOptions::decode(o.value.as_slice()) else {
                    return Some(o);
                };
                if decoded.root.is_empty() {
                    decoded.root = runc_root;
                }
                Some(AnyValue {
                    type_url: o.type_url,
                    value: decoded.encode_to_vec(),
                })
            }
            None if runtime.starts_with("io.containerd.runc.") => Some(AnyValue {
                type_url: RUNC_OPTIONS.to_string(),
                value: RuncOptions {
                    root: runc_root,
                    ..Default::default()
                }
                .encode_to_vec(),
            }),
            other => other,
        }
    }

    /// Watches the shim's connection: if it closes while the shim is still ours (not deleted
    /// through us), the shim died — clean up after it and report its task's exit.
    fn watch(self: &Arc<Self>, handle: &tokio::runtime::Handle, shim: Arc<Shim>) {
        let inner = Arc::downgrade(self);
        handle.spawn(async move {
            shim.client.closed().await;
            let Some(inner) = inner.upgrade() else { return };
            let k = key(&shim.bundle.namespace, &shim.bundle.id);
            let still_ours = {
                let mut shims = inner.shims();
                match shims.get(&k) {
                    Some(current) if Arc::ptr_eq(current, &shim) => {
                        shims.remove(&k);
                        true
                    }
                    _ => false,
                }
            };
            if still_ours {
                tracing::warn!(id = %shim.bundle.id, ns = %shim.bundle.namespace, "shim disconnected");
                let inner = inner.clone();
                let _ = tokio::task::spawn_blocking(move || inner.cleanup_dead(&shim.bundle, &shim.binary)).await;
            }
        });
    }

    /// What containerd does for a dead shim: `shim delete`, remove the bundle, publish the exit.
    fn cleanup_dead(&self, bundle: &Bundle, binary: &Path) {
        let exit = match binary::delete(binary, &self.env, bundle) {
            Ok(exit) => exit,
            Err(e) => {
                tracing::warn!(id = %bundle.id, error = %e.message, "shim delete");
                Exit {
                    pid: 0,
                    exit_status: 255,
                    exited_at: now_nanos(),
                }
            }
        };
        remove_dead_socket(bundle);
        bundle.remove();
        self.events
            .push_dead_task(&bundle.namespace, &bundle.id, exit);
    }
}

/// A shim that was killed leaves its listening socket behind (a live one removes it as it
/// exits): unlinked here, from the address the bundle recorded.
fn remove_dead_socket(bundle: &Bundle) {
    let Ok(address) = std::fs::read_to_string(bundle.path.join("address")) else {
        return;
    };
    let path = address.trim().trim_start_matches("unix://");
    // Only a filesystem socket (not an abstract one) is a file to remove.
    if path.starts_with('/') {
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(socket = path, error = %e, "removing a dead shim's socket");
            }
        }
    }
}

impl ShimRuntime {
    /// Opens the driver on its directories and reconnects to the shims of tasks that outlived
    /// the previous daemon; a bundle whose shim is gone is cleaned up, its exit reported.
    pub fn open(state: PathBuf, root: PathBuf, env: ShimEnv) -> Result<ShimRuntime> {
        std::fs::create_dir_all(&state)
            .map_err(|e| PluginError::io(format!("create {}", state.display()), e))?;
        std::fs::create_dir_all(&root)
            .map_err(|e| PluginError::io(format!("create {}", root.display()), e))?;
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("shim-v2-io")
            .enable_all()
            .build()
            .map_err(|e| PluginError::io("start the shim driver's executor", e))?;
        let inner = Arc::new(Inner {
            state: state.clone(),
            root: root.clone(),
            env,
            shims: Mutex::new(HashMap::new()),
            events: EventQueue::default(),
        });
        let runtime = ShimRuntime { inner, io };
        for bundle in Bundle::all(&state, &root) {
            if bundle.namespace.starts_with('.') {
                continue;
            }
            runtime.reconnect(bundle);
        }
        Ok(runtime)
    }

    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.io.block_on(f)
    }

    fn reconnect(&self, bundle: Bundle) {
        let binary = std::fs::read_to_string(bundle.path.join("shim-binary-path"))
            .map(|s| PathBuf::from(s.trim()))
            .unwrap_or_default();
        let address = std::fs::read_to_string(bundle.path.join("address")).unwrap_or_default();
        let connected = (|| {
            if address.trim().is_empty() {
                return Err(PluginError::not_found("no shim address"));
            }
            let log = ShimLog::open(&bundle, self.io.handle())?;
            let client = self.block(ShimClient::connect(address.trim(), &bundle.namespace))?;
            self.block(client.connect_task(shim::ConnectRequest {
                id: bundle.id.clone(),
            }))?;
            Ok((client, log))
        })();
        match connected {
            Ok((client, log)) => {
                tracing::info!(id = %bundle.id, ns = %bundle.namespace, "reconnected to shim");
                let runtime =
                    std::fs::read_to_string(bundle.path.join("runtime")).unwrap_or_default();
                let shim = Arc::new(Shim {
                    bundle: bundle.clone(),
                    runtime,
                    binary,
                    client,
                    _log: log,
                });
                self.inner
                    .shims()
                    .insert(key(&bundle.namespace, &bundle.id), shim.clone());
                self.inner.watch(self.io.handle(), shim);
            }
            Err(e) => {
                tracing::warn!(id = %bundle.id, ns = %bundle.namespace, error = %e.message, "shim gone; cleaning up its task");
                if binary.as_os_str().is_empty() {
                    bundle.remove();
                    self.inner.events.push_dead_task(
                        &bundle.namespace,
                        &bundle.id,
                        Exit {
                            pid: 0,
                            exit_status: 255,
                            exited_at: now_nanos(),
                        },
                    );
                } else {
                    self.inner.cleanup_dead(&bundle, &binary);
                }
            }
        }
    }

    fn task_request(p: &ProcessRef) -> (String, String) {
        (p.id.clone(), p.exec_id.clone())
    }
}

impl Runtime for ShimRuntime {
    fn create(&self, request: CreateTask) -> Result<CreatedTask> {
        let inner = &self.inner;
        let k = key(&request.namespace, &request.id);
        if inner.shims().contains_key(&k) {
            return Err(PluginError::already_exists(format!("task {}", request.id)));
        }
        let binary = binary::resolve(&request.runtime)?;
        let bundle = Bundle::locate(&inner.state, &inner.root, &request.namespace, &request.id);
        bundle.create(&request.spec)?;
        let options = inner.runc_options(&request.runtime, request.options.clone());
        let started = (|| {
            let _ = std::fs::write(bundle.path.join("runtime"), &request.runtime);
            let log = ShimLog::create(&bundle, self.io.handle())?;
            let launched = launch::start_runc_shim(
                &binary,
                &inner.env,
                &bundle,
                &request.spec,
                options.as_ref(),
                self.io.handle(),
            )?;
            let address = match launched {
                Some(address) => address,
                None => binary::start(&binary, &inner.env, &bundle, options.as_ref())?,
            };
            let _ = std::fs::write(
                bundle.path.join("shim-binary-path"),
                binary.as_os_str().as_encoded_bytes(),
            );
            let client = self.block(ShimClient::connect(&address, &request.namespace))?;
            let shim = Arc::new(Shim {
                bundle: bundle.clone(),
                runtime: request.runtime.clone(),
                binary: binary.clone(),
                client,
                _log: log,
            });
            let created = self.block(
                shim.client.create(shim::CreateTaskRequest {
                    id: request.id.clone(),
                    bundle: bundle.path.to_string_lossy().into_owned(),
                    rootfs: request
                        .rootfs
                        .iter()
                        .map(|m| wire::Mount {
                            r#type: m.mount_type.clone(),
                            source: m.source.clone(),
                            target: m.target.clone(),
                            options: m.options.clone(),
                        })
                        .collect(),
                    terminal: request.stdio.terminal,
                    stdin: request.stdio.stdin.clone(),
                    stdout: request.stdio.stdout.clone(),
                    stderr: request.stdio.stderr.clone(),
                    checkpoint: request.checkpoint.clone(),
                    options: options.clone().map(any_to_wire),
                    ..Default::default()
                }),
            );
            match created {
                Ok(created) => Ok((shim, created.pid)),
                Err(e) => {
                    // The shim is ours to end: it serves nothing without its task.
                    let _ = self.block(shim.client.shutdown(&request.id));
                    Err(e)
                }
            }
        })();
        match started {
            Ok((shim, pid)) => {
                inner.shims().insert(k, shim.clone());
                inner.watch(self.io.handle(), shim);
                Ok(CreatedTask {
                    pid,
                    bundle: bundle.path.to_string_lossy().into_owned(),
                })
            }
            Err(e) => {
                if let Ok(exit) = binary::delete(&binary, &inner.env, &bundle) {
                    tracing::debug!(?exit, "cleaned up after a failed create");
                }
                bundle.remove();
                Err(e)
            }
        }
    }

    fn start(&self, process: &ProcessRef) -> Result<u32> {
        let shim = self.inner.shim(&process.namespace, &process.id)?;
        let (id, exec_id) = Self::task_request(process);
        Ok(self
            .block(shim.client.start(shim::StartRequest { id, exec_id }))?
            .pid)
    }

    fn delete(&self, process: &ProcessRef) -> Result<Exit> {
        let shim = self.inner.shim(&process.namespace, &process.id)?;
        let (id, exec_id) = Self::task_request(process);
        let task = exec_id.is_empty();
        let resp = self.block(shim.client.delete(shim::DeleteRequest {
            id: id.clone(),
            exec_id,
        }))?;
        if task {
            // Ours now: the connection closing below is not a death.
            self.inner
                .shims()
                .remove(&key(&process.namespace, &process.id));
            if let Err(e) = self.block(shim.client.shutdown(&id)) {
                tracing::warn!(id, error = %e.message, "shim shutdown");
            }
            shim.bundle.remove();
        }
        Ok(Exit {
            pid: resp.pid,
            exit_status: resp.exit_status,
            exited_at: nanos(resp.exited_at),
        })
    }

    fn kill(&self, process: &ProcessRef, signal: u32, all: bool) -> Result<()> {
        let shim = self.inner.shim(&process.namespace, &process.id)?;
        let (id, exec_id) = Self::task_request(process);
        self.block(shim.client.kill(shim::KillRequest {
            id,
            exec_id,
            signal,
            all,
        }))
    }

    fn exec(&self, request: ExecProcess) -> Result<()> {
        let p = &request.process;
        let shim = self.inner.shim(&p.namespace, &p.id)?;
        self.block(shim.client.exec(shim::ExecProcessRequest {
            id: p.id.clone(),
            exec_id: p.exec_id.clone(),
            terminal: request.stdio.terminal,
            stdin: request.stdio.stdin,
            stdout: request.stdio.stdout,
            stderr: request.stdio.stderr,
            spec: request.spec.map(any_to_wire),
        }))
    }

    fn pids(&self, namespace: &str, id: &str) -> Result<Vec<ProcessInfo>> {
        let shim = self.inner.shim(namespace, id)?;
        let resp = self.block(shim.client.pids(shim::PidsRequest { id: id.to_string() }))?;
        Ok(resp
            .processes
            .into_iter()
            .map(|p| ProcessInfo {
                pid: p.pid,
                info: p.info.map(any_from_wire),
            })
            .collect())
    }

    fn pause(&self, namespace: &str, id: &str) -> Result<()> {
        let shim = self.inner.shim(namespace, id)?;
        self.block(shim.client.pause(shim::PauseRequest { id: id.to_string() }))
    }

    fn resume(&self, namespace: &str, id: &str) -> Result<()> {
        let shim = self.inner.shim(namespace, id)?;
        self.block(
            shim.client
                .resume(shim::ResumeRequest { id: id.to_string() }),
        )
    }

    fn update(
        &self,
        namespace: &str,
        id: &str,
        resources: Option<AnyValue>,
        annotations: BTreeMap<String, String>,
    ) -> Result<()> {
        let shim = self.inner.shim(namespace, id)?;
        self.block(shim.client.update(shim::UpdateTaskRequest {
            id: id.to_string(),
            resources: resources.map(any_to_wire),
            annotations: annotations.into_iter().collect(),
        }))
    }

    fn stats(&self, namespace: &str, id: &str) -> Result<Option<AnyValue>> {
        let shim = self.inner.shim(namespace, id)?;
        let resp = self.block(shim.client.stats(shim::StatsRequest { id: id.to_string() }))?;
        Ok(resp.stats.map(any_from_wire))
    }

    fn close_io(&self, process: &ProcessRef, stdin: bool) -> Result<()> {
        let shim = self.inner.shim(&process.namespace, &process.id)?;
        let (id, exec_id) = Self::task_request(process);
        self.block(
            shim.client
                .close_io(shim::CloseIoRequest { id, exec_id, stdin }),
        )
    }

    fn resize_pty(&self, process: &ProcessRef, width: u32, height: u32) -> Result<()> {
        let shim = self.inner.shim(&process.namespace, &process.id)?;
        let (id, exec_id) = Self::task_request(process);
        self.block(shim.client.resize_pty(shim::ResizePtyRequest {
            id,
            exec_id,
            width,
            height,
        }))
    }

    fn state(&self, process: &ProcessRef) -> Result<ProcessState> {
        let shim = self.inner.shim(&process.namespace, &process.id)?;
        let (id, exec_id) = Self::task_request(process);
        let s = self.block(shim.client.state(shim::StateRequest { id, exec_id }))?;
        Ok(ProcessState {
            id: process.id.clone(),
            exec_id: process.exec_id.clone(),
            pid: s.pid,
            status: status_from_wire(s.status),
            bundle: s.bundle,
            stdio: Stdio {
                stdin: s.stdin,
                stdout: s.stdout,
                stderr: s.stderr,
                terminal: s.terminal,
            },
            exit_status: s.exit_status,
            exited_at: nanos(s.exited_at),
        })
    }

    fn wait(&self, process: &ProcessRef) -> Result<Exit> {
        let shim = self.inner.shim(&process.namespace, &process.id)?;
        let (id, exec_id) = Self::task_request(process);
        let w = self.block(shim.client.wait(shim::WaitRequest { id, exec_id }))?;
        Ok(Exit {
            pid: 0,
            exit_status: w.exit_status,
            exited_at: nanos(w.exited_at),
        })
    }

    fn connect(&self, namespace: &str, id: &str) -> Result<Connection> {
        let shim = self.inner.shim(namespace, id)?;
        let c = self.block(
            shim.client
                .connect_task(shim::ConnectRequest { id: id.to_string() }),
        )?;
        Ok(Connection {
            shim_pid: c.shim_pid,
            task_pid: c.task_pid,
        })
    }

    fn shutdown(&self, namespace: &str, id: &str) -> Result<()> {
        let shim = self.inner.shim(namespace, id)?;
        self.block(shim.client.shutdown(id))
    }

    fn tasks(&self) -> Result<Vec<TaskInfo>> {
        let mut out: Vec<TaskInfo> = self
            .inner
            .shims()
            .values()
            .map(|s| TaskInfo {
                namespace: s.bundle.namespace.clone(),
                id: s.bundle.id.clone(),
                runtime: s.runtime.clone(),
                bundle: s.bundle.path.to_string_lossy().into_owned(),
            })
            .collect();
        out.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
        Ok(out)
    }

    fn next_events(&self, timeout: Duration) -> Result<Vec<RuntimeEvent>> {
        Ok(self.inner.events.take(timeout))
    }
}
