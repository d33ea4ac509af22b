//! `containerd.services.tasks.v1.Tasks` over the core's [`Tasks`].
//!
//! Wait holds no thread: it watches the exit table, which the shims' forwarded `/tasks/exit`
//! events and the drivers' own events fill (see `rcontainerd_core::tasks::exits`).

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;
use rcontainerd_api::containerd::v1::types as task_types;
use rcontainerd_api::events::TaskExit;
use rcontainerd_api::services::tasks::{
    tasks_server, CheckpointTaskRequest, CheckpointTaskResponse, CloseIoRequest, CreateTaskRequest,
    CreateTaskResponse, DeleteProcessRequest, DeleteResponse, DeleteTaskRequest,
    ExecProcessRequest, GetRequest, GetResponse, KillRequest, ListPidsRequest, ListPidsResponse,
    ListTasksRequest, ListTasksResponse, MetricsRequest, MetricsResponse, PauseTaskRequest,
    ResizePtyRequest, ResumeTaskRequest, StartRequest, StartResponse, UpdateTaskRequest,
    WaitRequest, WaitResponse,
};
use rcontainerd_api::types;
use rcontainerd_core::ids::TASKS_SERVICE;
use rcontainerd_core::registry::Registration;
use rcontainerd_core::tasks::{CreateRequest, Tasks};
use rcontainerd_pkg::errdefs::Error;
use rcontainerd_pkg::filters::Fields;
use rcontainerd_plugin_api::runtime::{
    AnyValue, ExecProcess, Exit, ProcessRef, ProcessState, Stdio, TaskStatus,
};
use tonic::{Request, Response, Status};

use crate::convert::{mounts_from_wire, timestamp_from_nanos};
use crate::service::{self, GrpcService, Routes};
use crate::status::IntoStatus;
use crate::{blocking, namespace};

pub struct TasksService {
    tasks: Arc<Tasks>,
    /// Bounds the blocking threads Wait's first look at the task takes: many Waits at once
    /// (a client waiting on every task) must not mean a thread each, even briefly.
    wait_checks: Arc<tokio::sync::Semaphore>,
}

/// Concurrent state checks of Waits.
const WAIT_CHECKS: usize = 8;

fn any_from_wire(any: Option<prost_types::Any>) -> Option<AnyValue> {
    any.map(|a| AnyValue {
        type_url: a.type_url,
        value: a.value,
    })
}

fn any_to_wire(any: AnyValue) -> prost_types::Any {
    prost_types::Any {
        type_url: any.type_url,
        value: any.value,
    }
}

fn status_to_wire(status: TaskStatus) -> task_types::Status {
    match status {
        TaskStatus::Unknown => task_types::Status::Unknown,
        TaskStatus::Created => task_types::Status::Created,
        TaskStatus::Running => task_types::Status::Running,
        TaskStatus::Stopped => task_types::Status::Stopped,
        TaskStatus::Paused => task_types::Status::Paused,
        TaskStatus::Pausing => task_types::Status::Pausing,
    }
}

/// A process as the API shows it: `id` is the exec id, or the container id for the task.
fn process_to_wire(container_id: &str, state: ProcessState) -> task_types::Process {
    let id = if state.exec_id.is_empty() {
        container_id.to_string()
    } else {
        state.exec_id
    };
    task_types::Process {
        container_id: container_id.to_string(),
        id,
        pid: state.pid,
        status: status_to_wire(state.status) as i32,
        stdin: state.stdio.stdin,
        stdout: state.stdio.stdout,
        stderr: state.stdio.stderr,
        terminal: state.stdio.terminal,
        exit_status: state.exit_status,
        exited_at: (state.exited_at != 0).then(|| timestamp_from_nanos(state.exited_at)),
    }
}

fn delete_to_wire(id: String, exit: Exit) -> DeleteResponse {
    DeleteResponse {
        id,
        pid: exit.pid,
        exit_status: exit.exit_status,
        exited_at: Some(timestamp_from_nanos(exit.exited_at)),
    }
}

fn nanos(t: Option<prost_types::Timestamp>) -> i64 {
    t.map(|t| {
        t.seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(t.nanos))
    })
    .unwrap_or(0)
}

/// The process and exit a `/tasks/exit` event reports (for the exit table).
pub fn decode_exit(
    namespace: &str,
    topic: &str,
    event: &prost_types::Any,
) -> Option<(ProcessRef, Exit)> {
    if topic != "/tasks/exit" || !event.type_url.ends_with("containerd.events.TaskExit") {
        return None;
    }
    let exit = TaskExit::decode(event.value.as_slice()).ok()?;
    // The task's own exit names the container as its id; an exec's names the exec.
    let exec_id = if exit.id == exit.container_id {
        String::new()
    } else {
        exit.id
    };
    Some((
        ProcessRef::exec(namespace, exit.container_id, exec_id),
        Exit {
            pid: exit.pid,
            exit_status: exit.exit_status,
            exited_at: nanos(exit.exited_at),
        },
    ))
}

impl TasksService {
    async fn run<T, F>(&self, f: F) -> Result<T, Status>
    where
        F: FnOnce(&Tasks) -> rcontainerd_pkg::errdefs::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let tasks = self.tasks.clone();
        blocking(move || f(&tasks)).await
    }
}

#[tonic::async_trait]
impl tasks_server::Tasks for TasksService {
    async fn create(
        &self,
        request: Request<CreateTaskRequest>,
    ) -> Result<Response<CreateTaskResponse>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let container_id = r.container_id.clone();
        let create = CreateRequest {
            container_id: r.container_id,
            rootfs: mounts_from_wire(r.rootfs),
            stdio: Stdio {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                terminal: r.terminal,
            },
            options: any_from_wire(r.options),
            runtime_path: r.runtime_path,
            checkpoint: r.checkpoint.is_some(),
        };
        let created = self.run(move |t| t.create(&ns, create)).await?;
        Ok(Response::new(CreateTaskResponse {
            container_id,
            pid: created.pid,
        }))
    }

    async fn start(
        &self,
        request: Request<StartRequest>,
    ) -> Result<Response<StartResponse>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let process = ProcessRef::exec(ns, r.container_id, r.exec_id);
        let pid = self.run(move |t| t.start(&process)).await?;
        Ok(Response::new(StartResponse { pid }))
    }

    async fn delete(
        &self,
        request: Request<DeleteTaskRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let ns = namespace::of(&request)?;
        let id = request.into_inner().container_id;
        let task = id.clone();
        let exit = self.run(move |t| t.delete(&ns, &task)).await?;
        Ok(Response::new(delete_to_wire(id, exit)))
    }

    async fn delete_process(
        &self,
        request: Request<DeleteProcessRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let exec_id = r.exec_id.clone();
        let process = ProcessRef::exec(ns, r.container_id, r.exec_id);
        let exit = self.run(move |t| t.delete_process(&process)).await?;
        Ok(Response::new(delete_to_wire(exec_id, exit)))
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let id = r.container_id.clone();
        let process = ProcessRef::exec(ns, r.container_id, r.exec_id);
        let state = self.run(move |t| t.get(&process)).await?;
        Ok(Response::new(GetResponse {
            process: Some(process_to_wire(&id, state)),
        }))
    }

    async fn list(
        &self,
        request: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        // containerd's List ignores `filter` too.
        let ns = namespace::of(&request)?;
        let states = self.run(move |t| t.list(&ns)).await?;
        Ok(Response::new(ListTasksResponse {
            tasks: states
                .into_iter()
                .map(|s| {
                    let id = s.id.clone();
                    process_to_wire(&id, s)
                })
                .collect(),
        }))
    }

    async fn kill(&self, request: Request<KillRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let process = ProcessRef::exec(ns, r.container_id, r.exec_id);
        self.run(move |t| t.kill(&process, r.signal, r.all)).await?;
        Ok(Response::new(()))
    }

    async fn exec(&self, request: Request<ExecProcessRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let exec = ExecProcess {
            process: ProcessRef::exec(ns, r.container_id, r.exec_id),
            stdio: Stdio {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                terminal: r.terminal,
            },
            spec: any_from_wire(r.spec),
        };
        self.run(move |t| t.exec(exec)).await?;
        Ok(Response::new(()))
    }

    async fn resize_pty(&self, request: Request<ResizePtyRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let process = ProcessRef::exec(ns, r.container_id, r.exec_id);
        self.run(move |t| t.resize_pty(&process, r.width, r.height))
            .await?;
        Ok(Response::new(()))
    }

    async fn close_io(&self, request: Request<CloseIoRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let process = ProcessRef::exec(ns, r.container_id, r.exec_id);
        self.run(move |t| t.close_io(&process, r.stdin)).await?;
        Ok(Response::new(()))
    }

    async fn pause(&self, request: Request<PauseTaskRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let id = request.into_inner().container_id;
        self.run(move |t| t.pause(&ns, &id)).await?;
        Ok(Response::new(()))
    }

    async fn resume(&self, request: Request<ResumeTaskRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let id = request.into_inner().container_id;
        self.run(move |t| t.resume(&ns, &id)).await?;
        Ok(Response::new(()))
    }

    async fn list_pids(
        &self,
        request: Request<ListPidsRequest>,
    ) -> Result<Response<ListPidsResponse>, Status> {
        let ns = namespace::of(&request)?;
        let id = request.into_inner().container_id;
        let pids = self.run(move |t| t.pids(&ns, &id)).await?;
        Ok(Response::new(ListPidsResponse {
            processes: pids
                .into_iter()
                .map(|p| task_types::ProcessInfo {
                    pid: p.pid,
                    info: p.info.map(any_to_wire),
                })
                .collect(),
        }))
    }

    async fn checkpoint(
        &self,
        _request: Request<CheckpointTaskRequest>,
    ) -> Result<Response<CheckpointTaskResponse>, Status> {
        Err(Error::not_implemented("checkpointing tasks is not supported").into_status())
    }

    async fn update(&self, request: Request<UpdateTaskRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let annotations: BTreeMap<String, String> = r.annotations.into_iter().collect();
        let resources = any_from_wire(r.resources);
        let id = r.container_id;
        self.run(move |t| t.update(&ns, &id, resources, annotations))
            .await?;
        Ok(Response::new(()))
    }

    async fn metrics(
        &self,
        request: Request<MetricsRequest>,
    ) -> Result<Response<MetricsResponse>, Status> {
        let ns = namespace::of(&request)?;
        let filter = crate::record_filter(&request.get_ref().filters)?;
        let collected = std::time::SystemTime::now();
        let namespace = ns.clone();
        let stats = self
            .run(move |t| {
                t.metrics(&namespace, |id| {
                    filter.matches(&TaskFields {
                        id,
                        namespace: &namespace,
                    })
                })
            })
            .await?;
        Ok(Response::new(MetricsResponse {
            metrics: stats
                .into_iter()
                .map(|(id, data)| types::Metric {
                    timestamp: Some(crate::convert::timestamp(collected)),
                    id,
                    data: data.map(any_to_wire),
                })
                .collect(),
        }))
    }

    async fn wait(&self, request: Request<WaitRequest>) -> Result<Response<WaitResponse>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let process = ProcessRef::exec(ns, r.container_id, r.exec_id);
        // Watch first, then ask: an exit that lands in between is caught either way.
        let waiter = self.tasks.exits().waiter(&process);
        let asked = process.clone();
        let permit = self.wait_checks.acquire().await;
        let state = self.run(move |t| t.get(&asked)).await?;
        drop(permit);
        let exit = match Tasks::exit_of(&state).or_else(|| waiter.now()) {
            Some(exit) => exit,
            None => waiter.wait().await.ok_or_else(|| {
                Error::not_found(format!("task {} not found", process.id))
                    .bare()
                    .into_status()
            })?,
        };
        Ok(Response::new(WaitResponse {
            exit_status: exit.exit_status,
            exited_at: Some(timestamp_from_nanos(exit.exited_at)),
        }))
    }
}

/// The fields Metrics filters on.
struct TaskFields<'a> {
    id: &'a str,
    namespace: &'a str,
}

impl Fields for TaskFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str) {
            Some("id") => Some(self.id.to_string()),
            Some("namespace") => Some(self.namespace.to_string()),
            _ => None,
        }
    }
}

/// `io.containerd.grpc.v1.tasks`. Also starts taking the runtime drivers' own events.
pub fn registration() -> Registration {
    service::registration::<tasks_server::TasksServer<TasksService>>(
        "tasks",
        &[rcontainerd_core::ids::SERVICE_TYPE],
        |ctx| {
            let tasks = ctx.get::<Arc<Tasks>>(TASKS_SERVICE)?;
            tasks.pump_driver_events(decode_exit);
            Ok(service::provide(TasksGrpc(tasks)))
        },
    )
}

struct TasksGrpc(Arc<Tasks>);

impl GrpcService for TasksGrpc {
    fn add_routes(&self, routes: &mut Routes) {
        routes.add_namespaced(tasks_server::TasksServer::new(TasksService {
            tasks: self.0.clone(),
            wait_checks: Arc::new(tokio::sync::Semaphore::new(WAIT_CHECKS)),
        }));
    }
}
