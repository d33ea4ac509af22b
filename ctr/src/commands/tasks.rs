//! `ctr tasks …`, and the life of a process that `run`, `tasks start` and
//! `tasks exec` follow, in the calls and order of containerd 1.6's client:
//! Create (or Exec) with the stdio FIFOs, Wait before Start, Start, then
//! signals forwarded (or the pty kept at the terminal's size) until Wait
//! answers, then Delete.

use std::time::Duration;

use anyhow::{anyhow, bail};
use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::containerd::v1::types::{Process, Status};
use rcontainerd_api::services::containers::Container;
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::MountsRequest;
use rcontainerd_api::services::tasks::tasks_client::TasksClient;
use rcontainerd_api::services::tasks::{
    CloseIoRequest, CreateTaskRequest, DeleteProcessRequest, DeleteTaskRequest, ExecProcessRequest,
    GetRequest, KillRequest, ListPidsRequest, ListTasksRequest, MetricsRequest, PauseTaskRequest,
    ResizePtyRequest, ResumeTaskRequest, StartRequest, WaitRequest, WaitResponse,
};
use rcontainerd_api::types::Mount;
use tokio::task::JoinHandle;
use tonic::Code;

use crate::cio::IoConfig;
use crate::cio::{self, Streams, TaskIo};
use crate::cli::{TaskExec, TaskId, TaskKill, TaskMetrics, TaskStart, TasksDelete, TasksList};
use crate::commands::container_create::RuncOptions;
use crate::commands::containers;
use crate::console::Console;
use crate::errors::{ExitStatus, RpcError};
use crate::gojson::{self, Json};
use crate::log;
use crate::tabwriter::TabWriter;

type Tasks = TasksClient<NamespacedChannel>;

const MISSING_ID: &str = "container id must be provided";
/// The container label holding the image's stop signal.
const STOP_SIGNAL_LABEL: &str = "io.containerd.image.config.stop-signal";
const RUNC_OPTIONS_URL: &str = "containerd.runc.v1.Options";
const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
const PROCESS_DETAILS_URL: &str = "containerd.runc.v1.ProcessDetails";
/// How long ctr waits for a finished process's output to drain.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

fn rpc(status: tonic::Status) -> anyhow::Error {
    RpcError::from(status).into()
}

/// `container.Task(ctx, nil)`: the task's init process, or "no running task
/// found".
async fn load_task(channel: &NamespacedChannel, id: &str) -> anyhow::Result<Process> {
    get_process(channel, id, "", "no running task found").await
}

/// Tasks.Get, with a NotFound answer worded "<missing>: <error>".
async fn get_process(
    channel: &NamespacedChannel,
    id: &str,
    exec_id: &str,
    missing: &str,
) -> anyhow::Result<Process> {
    match get_raw(channel, id, exec_id).await {
        Ok(process) => Ok(process),
        Err(status) if status.code() == Code::NotFound => {
            Err(anyhow!("{missing}: {}", RpcError::from(status)))
        }
        Err(status) => Err(rpc(status)),
    }
}

async fn get_raw(
    channel: &NamespacedChannel,
    id: &str,
    exec_id: &str,
) -> Result<Process, tonic::Status> {
    Tasks::new(channel.clone())
        .get(GetRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        })
        .await
        .map(|answer| answer.into_inner().process.unwrap_or_default())
}

/// The status word containerd's client uses (`running`, `stopped`, …).
fn status_word(status: i32) -> String {
    Status::try_from(status)
        .map(|s| s.as_str_name().to_lowercase())
        .unwrap_or_else(|_| status.to_string())
}

/// `TASK PID STATUS`, or the ids alone.
pub async fn list(channel: NamespacedChannel, args: &TasksList) -> anyhow::Result<String> {
    let tasks = Tasks::new(channel)
        .list(ListTasksRequest::default())
        .await
        .map_err(rpc)?
        .into_inner()
        .tasks;
    if args.quiet {
        return Ok(tasks.iter().map(|t| format!("{}\n", t.id)).collect());
    }
    let mut writer = TabWriter::new(4, 8, 4, ' ');
    writer.write_str("TASK\tPID\tSTATUS\t\n");
    for task in &tasks {
        let status = Status::try_from(task.status)
            .map(|s| s.as_str_name().to_string())
            .unwrap_or_else(|_| task.status.to_string());
        writer.write_str(&format!("{}\t{}\t{status}\n", task.id, task.pid));
    }
    Ok(writer.finish())
}

/// `ctr tasks pause|resume ID`.
pub async fn pause(channel: NamespacedChannel, args: &TaskId, resume: bool) -> anyhow::Result<()> {
    let id = args.id.as_deref().unwrap_or("");
    containers::get(channel.clone(), id).await?;
    load_task(&channel, id).await?;
    let mut tasks = Tasks::new(channel);
    if resume {
        tasks
            .resume(ResumeTaskRequest {
                container_id: id.to_string(),
            })
            .await
            .map_err(rpc)?;
    } else {
        tasks
            .pause(PauseTaskRequest {
                container_id: id.to_string(),
            })
            .await
            .map_err(rpc)?;
    }
    Ok(())
}

/// `PID INFO`: the task's processes, with runc's details of exec processes.
pub async fn ps(channel: NamespacedChannel, args: &TaskId) -> anyhow::Result<String> {
    let id = args
        .id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| anyhow!(MISSING_ID))?;
    containers::get(channel.clone(), id).await?;
    load_task(&channel, id).await?;
    let processes = Tasks::new(channel)
        .list_pids(ListPidsRequest {
            container_id: id.to_string(),
        })
        .await
        .map_err(rpc)?
        .into_inner()
        .processes;
    let mut writer = TabWriter::new(1, 8, 4, ' ');
    writer.write_str("PID\tINFO\n");
    for process in &processes {
        let info = match &process.info {
            None => "-".to_string(),
            Some(any) => process_info(any)?,
        };
        writer.write_str(&format!("{}\t{info}\n", process.pid));
    }
    Ok(writer.finish())
}

/// runc's `ProcessDetails` as Go's `%+v` prints the gogo message.
fn process_info(any: &prost_types::Any) -> anyhow::Result<String> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct ProcessDetails {
        #[prost(string, tag = "1")]
        exec_id: String,
    }
    if any.type_url != PROCESS_DETAILS_URL {
        bail!("type with url {}: not found", any.type_url);
    }
    let details: ProcessDetails = prost::Message::decode(any.value.as_slice())?;
    Ok(format!(
        "&ProcessDetails{{ExecID:{},XXX_unrecognized:[],}}",
        details.exec_id
    ))
}

/// moby's `signal.ParseSignal`: a number, or a name with or without `SIG`.
pub fn parse_signal(raw: &str) -> anyhow::Result<u32> {
    if let Ok(number) = raw.parse::<i64>() {
        if number == 0 {
            bail!("invalid signal: {raw}");
        }
        return Ok(number as u32);
    }
    let upper = raw.to_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let signal: nix::sys::signal::Signal = format!("SIG{name}")
        .parse()
        .map_err(|_| anyhow!("invalid signal: {raw}"))?;
    Ok(signal as i32 as u32)
}

/// `ctr tasks kill [-s SIG] [-a] [--exec-id X] ID`: the signal defaults to
/// the image's stop signal, else SIGTERM.
pub async fn kill(channel: NamespacedChannel, args: &TaskKill) -> anyhow::Result<()> {
    let id = args
        .id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| anyhow!(MISSING_ID))?;
    let exec_id = args.exec_id.clone().unwrap_or_default();
    if args.all && !exec_id.is_empty() {
        bail!("specify an exec-id or all; not both");
    }
    let container = containers::get(channel.clone(), id).await?;
    let signal = match args.signal.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => parse_signal(raw)?,
        None => match container.labels.get(STOP_SIGNAL_LABEL) {
            Some(raw) => parse_signal(raw)?,
            None => nix::sys::signal::Signal::SIGTERM as i32 as u32,
        },
    };
    load_task(&channel, id).await?;
    Tasks::new(channel)
        .kill(KillRequest {
            container_id: id.to_string(),
            exec_id,
            signal,
            all: args.all,
        })
        .await
        .map_err(rpc)?;
    Ok(())
}

/// `ctr tasks delete [-f] [--exec-id X] ID…`.
pub async fn delete(channel: NamespacedChannel, args: &TasksDelete) -> anyhow::Result<()> {
    if let Some(exec_id) = args.exec_id.as_deref().filter(|e| !e.is_empty()) {
        let id = args.ids.first().map(String::as_str).unwrap_or("");
        containers::get(channel.clone(), id).await?;
        load_task(&channel, id).await?;
        let process = get_process(&channel, id, exec_id, "no running process found").await?;
        let code = delete_process(&channel, id, exec_id, args.force, Some(&process)).await?;
        if code != 0 {
            return Err(ExitStatus(code).into());
        }
        return Ok(());
    }
    let mut first_failure: Option<anyhow::Error> = None;
    for id in &args.ids {
        let loaded = async {
            containers::get(channel.clone(), id).await?;
            load_task(&channel, id).await
        }
        .await;
        let task = match loaded {
            Ok(task) => task,
            Err(err) => {
                log::error(&format!("failed to load task from {id}"), &err);
                first_failure.get_or_insert(err);
                continue;
            }
        };
        match delete_task(&channel, id, task.pid, args.force, Some(&task)).await {
            Ok(0) => {}
            Ok(code) => log::warning(&format!(
                "task {} exit with non-zero exit code {code}",
                task.id
            )),
            Err(err) => {
                log::error(&format!("unable to delete {}", task.id), &err);
                first_failure.get_or_insert(err);
            }
        }
    }
    match first_failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// `WithProcessKill`: SIGKILL to every process of `exec_id` (or the task),
/// then the wait for its end.
async fn kill_and_wait(channel: &NamespacedChannel, id: &str, exec_id: &str) -> anyhow::Result<()> {
    let waiting = spawn_wait(channel, id, exec_id);
    tokio::task::yield_now().await;
    let killed = Tasks::new(channel.clone())
        .kill(KillRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            signal: nix::sys::signal::Signal::SIGKILL as i32 as u32,
            all: true,
        })
        .await;
    match killed {
        Ok(_) => {}
        Err(status) if status.code() == Code::FailedPrecondition => {
            waiting.abort();
            return Ok(());
        }
        Err(status) if status.code() == Code::NotFound => {}
        Err(status) => {
            waiting.abort();
            return Err(rpc(status));
        }
    }
    let _ = waiting.await;
    Ok(())
}

/// `task.Delete`: refused unless the task has stopped (or was never
/// started and has no pid); with `force`, killed first. FIFOs of a task
/// loaded from the daemon (`loaded`) are removed before the Delete call, as
/// `cio.Load`'s closer does. Answers the exit status.
async fn delete_task(
    channel: &NamespacedChannel,
    id: &str,
    pid: u32,
    force: bool,
    loaded: Option<&Process>,
) -> anyhow::Result<u32> {
    if force {
        kill_and_wait(channel, id, "").await?;
    }
    // Only NotFound stops the deletion: another failure leaves the status
    // unknown, and the Delete call decides.
    let status = match get_raw(channel, id, "").await {
        Ok(process) => status_word(process.status),
        Err(status) if status.code() == Code::NotFound => return Err(rpc(status)),
        Err(_) => String::new(),
    };
    match status.as_str() {
        "stopped" | "unknown" | "" => {}
        "created" if pid == 0 => {}
        other => bail!("task must be stopped before deletion: {other}: failed precondition"),
    }
    if let Some(process) = loaded {
        cio::remove_fifos(&[&process.stdin, &process.stdout, &process.stderr]);
    }
    let deleted = Tasks::new(channel.clone())
        .delete(DeleteTaskRequest {
            container_id: id.to_string(),
        })
        .await
        .map_err(rpc)?
        .into_inner();
    Ok(deleted.exit_status)
}

/// The deferred `task.Delete` of a process ctr could not follow; its
/// failure (a task still running) is not reported.
pub async fn delete_after_failure(channel: &NamespacedChannel, id: &str, pid: u32) {
    let _ = delete_task(channel, id, pid, false, None).await;
}

/// `process.Delete`: refused while the process runs; with `force`, killed
/// first.
async fn delete_process(
    channel: &NamespacedChannel,
    id: &str,
    exec_id: &str,
    force: bool,
    loaded: Option<&Process>,
) -> anyhow::Result<u32> {
    if force {
        kill_and_wait(channel, id, exec_id).await?;
    }
    let process = get_raw(channel, id, exec_id).await.map_err(rpc)?;
    let status = status_word(process.status);
    if matches!(status.as_str(), "running" | "paused" | "pausing") {
        bail!(
            "current process state: {status}, process must be stopped before deletion: failed precondition"
        );
    }
    let deleted = Tasks::new(channel.clone())
        .delete_process(DeleteProcessRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        })
        .await
        .map_err(rpc)?
        .into_inner();
    if let Some(process) = loaded {
        cio::remove_fifos(&[&process.stdin, &process.stdout, &process.stderr]);
    }
    Ok(deleted.exit_status)
}

/// Tasks.Wait in the background (containerd's client waits before it
/// starts, so that no exit is missed).
fn spawn_wait(
    channel: &NamespacedChannel,
    id: &str,
    exec_id: &str,
) -> JoinHandle<Result<WaitResponse, tonic::Status>> {
    let mut tasks = Tasks::new(channel.clone());
    let request = WaitRequest {
        container_id: id.to_string(),
        exec_id: exec_id.to_string(),
    };
    tokio::spawn(async move { tasks.wait(request).await.map(|r| r.into_inner()) })
}

/// `container.NewTask`: the rootfs mounts of the container's snapshot and
/// the stdio paths in a Create call. Answers the pid.
pub async fn create_task(
    channel: &NamespacedChannel,
    container: &Container,
    io: &TaskIo,
    no_pivot: bool,
) -> anyhow::Result<u32> {
    let mut rootfs = Vec::new();
    if !container.snapshot_key.is_empty() {
        if container.snapshotter.is_empty() {
            bail!("unable to resolve rootfs mounts without snapshotter on container: invalid argument");
        }
        let mounts = SnapshotsClient::new(channel.clone())
            .mounts(MountsRequest {
                snapshotter: container.snapshotter.clone(),
                key: container.snapshot_key.clone(),
            })
            .await
            .map_err(rpc)?
            .into_inner()
            .mounts;
        rootfs = mounts
            .into_iter()
            .map(|m| Mount {
                r#type: m.r#type,
                source: m.source,
                options: m.options,
                ..Default::default()
            })
            .collect();
    }
    let runtime = container
        .runtime
        .as_ref()
        .map(|r| r.name.as_str())
        .unwrap_or("");
    let options =
        (no_pivot && runtime.starts_with("io.containerd.runc")).then(|| prost_types::Any {
            type_url: RUNC_OPTIONS_URL.to_string(),
            value: prost::Message::encode_to_vec(&RuncOptions {
                no_pivot_root: true,
                ..Default::default()
            }),
        });
    let created = Tasks::new(channel.clone())
        .create(CreateTaskRequest {
            container_id: container.id.clone(),
            rootfs,
            stdin: io.config.stdin.clone(),
            stdout: io.config.stdout.clone(),
            stderr: io.config.stderr.clone(),
            terminal: io.config.terminal,
            checkpoint: None,
            options,
            runtime_path: String::new(),
        })
        .await
        .map_err(rpc)?
        .into_inner();
    Ok(created.pid)
}

/// How the streams of a new process are chosen (`--null-io`, `--log-uri`,
/// `-t`), as containerd's ctr chooses them.
pub fn streams(
    console: Option<&Console>,
    null_io: bool,
    log_uri: Option<&str>,
) -> anyhow::Result<Streams> {
    if let Some(console) = console {
        if null_io {
            bail!("tty and null-io cannot be used together");
        }
        return Ok(Streams::Console(console.stream()?));
    }
    if null_io {
        return Ok(Streams::Null);
    }
    if let Some(uri) = log_uri.filter(|u| !u.is_empty()) {
        return Ok(Streams::LogUri(uri.to_string()));
    }
    Ok(Streams::Stdio)
}

/// The terminal ctr puts in raw mode for a process with a pty.
pub fn raw_console() -> anyhow::Result<Console> {
    let mut console = Console::current()?;
    console.set_raw()?;
    Ok(console)
}

/// A created process that ctr starts and, unless detached, follows.
pub struct Started<'a> {
    pub channel: &'a NamespacedChannel,
    pub id: &'a str,
    /// Empty for the task's init process.
    pub exec_id: &'a str,
    pub pid: u32,
    pub detach: bool,
    pub pid_file: Option<&'a str>,
    pub console: Option<&'a Console>,
}

/// Starts the process and, unless detached, follows it to its end and
/// deletes it; answers its exit status (0 when detached).
pub async fn start_and_follow(started: Started<'_>, mut io: TaskIo) -> anyhow::Result<u32> {
    let Started {
        channel,
        id,
        exec_id,
        pid,
        detach,
        pid_file,
        console,
    } = started;
    // ctr's stdin at its end: the process's stdin is closed (not on a pty).
    if let (Some(done), false) = (io.take_stdin_done(), io.config.terminal) {
        let mut tasks = Tasks::new(channel.clone());
        let request = CloseIoRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            stdin: true,
        };
        tokio::spawn(async move {
            if done.await.is_ok() {
                let _ = tasks.close_io(request).await;
            }
        });
    }
    let waiting = (!detach).then(|| spawn_wait(channel, id, exec_id));
    // Signals are caught from before Start and passed on once it answered: a signal that
    // arrives while Start is in flight (the process may already run) is not lost.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let forwarder =
        (!detach && console.is_none()).then(|| forward_signals(channel, id, exec_id, started_rx));
    tokio::task::yield_now().await;
    if let Some(path) = pid_file {
        write_pid_file(path, pid)?;
    }
    let started = Tasks::new(channel.clone())
        .start(StartRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        })
        .await;
    if let Err(status) = started {
        io.remove();
        return Err(rpc(status));
    }
    let _ = started_tx.send(());
    let Some(waiting) = waiting else {
        return Ok(0);
    };
    let follower = match (console, forwarder) {
        (Some(console), _) => keep_pty_sized(channel, id, exec_id, console).await,
        (None, Some(forwarder)) => forwarder,
        (None, None) => tokio::spawn(async {}),
    };
    let waited = waiting.await;
    follower.abort();
    let exit = match waited {
        Ok(Ok(answer)) => answer.exit_status,
        Ok(Err(status)) => return Err(rpc(status)),
        Err(err) => return Err(anyhow!("waiting for the process: {err}")),
    };
    if exec_id.is_empty() {
        delete_task(channel, id, pid, false, None).await?;
    } else {
        let _ = delete_process(channel, id, exec_id, false, None).await;
    }
    io.finish(OUTPUT_DRAIN).await;
    Ok(exit)
}

/// `commands.WritePidFile`: written beside the target and renamed onto it.
fn write_pid_file(path: &str, pid: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    let path = std::path::absolute(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}"));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&temp)?;
    write!(file, "{pid}")?;
    drop(file);
    std::fs::rename(&temp, &path)?;
    Ok(())
}

/// The signals ctr passes on to the process it follows: every one it can
/// catch, as Go's `signal.Notify` catches them, but SIGURG (Go's own).
const FORWARDED: &[i32] = &[
    nix::libc::SIGHUP,
    nix::libc::SIGINT,
    nix::libc::SIGQUIT,
    nix::libc::SIGTRAP,
    nix::libc::SIGABRT,
    nix::libc::SIGBUS,
    nix::libc::SIGUSR1,
    nix::libc::SIGUSR2,
    nix::libc::SIGPIPE,
    nix::libc::SIGALRM,
    nix::libc::SIGTERM,
    nix::libc::SIGSTKFLT,
    nix::libc::SIGCHLD,
    nix::libc::SIGCONT,
    nix::libc::SIGTSTP,
    nix::libc::SIGTTIN,
    nix::libc::SIGTTOU,
    nix::libc::SIGXCPU,
    nix::libc::SIGXFSZ,
    nix::libc::SIGVTALRM,
    nix::libc::SIGPROF,
    nix::libc::SIGWINCH,
    nix::libc::SIGIO,
    nix::libc::SIGPWR,
    nix::libc::SIGSYS,
];

/// `commands.ForwardAllSignals`: each signal ctr gets is sent to the
/// process (Kill); forwarding stops once the process is gone.
fn forward_signals(
    channel: &NamespacedChannel,
    id: &str,
    exec_id: &str,
    started: tokio::sync::oneshot::Receiver<()>,
) -> JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<i32>();
    let mut listeners = Vec::new();
    for &number in FORWARDED {
        let Ok(mut stream) = signal(SignalKind::from_raw(number)) else {
            continue;
        };
        let sender = sender.clone();
        listeners.push(tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if sender.send(number).is_err() {
                    return;
                }
            }
        }));
    }
    drop(sender);
    let mut tasks = Tasks::new(channel.clone());
    let id = id.to_string();
    let exec_id = exec_id.to_string();
    tokio::spawn(async move {
        // Until the process started, signals wait in the channel; if it never starts, none go.
        if started.await.is_err() {
            listeners.iter().for_each(JoinHandle::abort);
            return;
        }
        while let Some(number) = received.recv().await {
            let killed = tasks
                .kill(KillRequest {
                    container_id: id.clone(),
                    exec_id: exec_id.clone(),
                    signal: number as u32,
                    all: false,
                })
                .await;
            match killed {
                Ok(_) => {}
                Err(status) if status.code() == Code::NotFound => break,
                Err(status) => log::error(
                    &format!("forward signal {}", signal_name(number)),
                    &RpcError::from(status),
                ),
            }
        }
        for listener in listeners {
            listener.abort();
        }
    })
}

fn signal_name(number: i32) -> String {
    nix::sys::signal::Signal::try_from(number)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| number.to_string())
}

/// `HandleConsoleResize`: the pty takes the terminal's size now and on
/// every SIGWINCH.
async fn keep_pty_sized(
    channel: &NamespacedChannel,
    id: &str,
    exec_id: &str,
    console: &Console,
) -> JoinHandle<()> {
    let mut tasks = Tasks::new(channel.clone());
    let request = |(width, height): (u32, u32)| ResizePtyRequest {
        container_id: id.to_string(),
        exec_id: exec_id.to_string(),
        width,
        height,
    };
    match console.size() {
        Ok(size) => {
            if let Err(status) = tasks.resize_pty(request(size)).await {
                log::error("resize pty", &RpcError::from(status));
            }
        }
        Err(err) => {
            log::error("console resize", &err);
            return tokio::spawn(async {});
        }
    }
    let Ok(stream) = console.stream() else {
        return tokio::spawn(async {});
    };
    let (id, exec_id) = (id.to_string(), exec_id.to_string());
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut winch) = signal(SignalKind::window_change()) else {
            return;
        };
        let console = Console::from_fd(stream);
        while winch.recv().await.is_some() {
            let Ok((width, height)) = console.size() else {
                log::error("get pty size", &"cannot read the terminal's size");
                continue;
            };
            let resized = tasks
                .resize_pty(ResizePtyRequest {
                    container_id: id.clone(),
                    exec_id: exec_id.clone(),
                    width,
                    height,
                })
                .await;
            if let Err(status) = resized {
                log::error("resize pty", &RpcError::from(status));
            }
        }
    })
}

/// `ctr tasks start [-d] [--null-io] [--log-uri] [--fifo-dir] [--pid-file] ID`.
pub async fn start(channel: NamespacedChannel, args: &TaskStart) -> anyhow::Result<()> {
    let id = args
        .id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| anyhow!(MISSING_ID))?;
    let container = containers::get(channel.clone(), id).await?;
    let terminal = spec_json(&container)
        .map(|spec| process_terminal(&spec))
        .unwrap_or(false);
    let console = if terminal { Some(raw_console()?) } else { None };
    let streams = streams(console.as_ref(), args.null_io, args.log_uri.as_deref())?;
    let io = TaskIo::create(args.fifo_dir.as_deref(), id, streams)?;
    let pid = match create_task(&channel, &container, &io, args.no_pivot).await {
        Ok(pid) => pid,
        Err(err) => {
            let mut io = io;
            io.remove();
            return Err(err);
        }
    };
    let followed = start_and_follow(
        Started {
            channel: &channel,
            id,
            exec_id: "",
            pid,
            detach: args.detach,
            pid_file: args.pid_file.as_deref(),
            console: console.as_ref(),
        },
        io,
    )
    .await;
    if followed.is_err() && !args.detach {
        delete_after_failure(&channel, id, pid).await;
    }
    match followed? {
        0 => Ok(()),
        code => Err(ExitStatus(code).into()),
    }
}

/// The container's spec, parsed.
fn spec_json(container: &Container) -> Option<Json> {
    let spec = container.spec.as_ref()?;
    gojson::parse(&spec.value).ok()
}

fn process_terminal(spec: &Json) -> bool {
    matches!(
        member(spec, "process").and_then(|p| member(p, "terminal")),
        Some(Json::Bool(true))
    )
}

fn member<'a>(json: &'a Json, name: &str) -> Option<&'a Json> {
    match json {
        Json::Object(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
        _ => None,
    }
}

/// The spec's process with the exec's terminal, arguments and working
/// directory, as Go re-encodes `specs.Process` (`terminal` first and left
/// out when false).
fn exec_process(spec: &Json, tty: bool, args: &[String], cwd: Option<&str>) -> Json {
    let mut members = match member(spec, "process") {
        Some(Json::Object(members)) => members.clone(),
        _ => Vec::new(),
    };
    members.retain(|(k, _)| k != "terminal");
    if tty {
        members.insert(0, ("terminal".into(), Json::Bool(true)));
    }
    let set = |members: &mut Vec<(String, Json)>, name: &str, value: Json, after: &[&str]| {
        if let Some(slot) = members.iter_mut().find(|(k, _)| k == name) {
            slot.1 = value;
            return;
        }
        let at = members
            .iter()
            .rposition(|(k, _)| after.contains(&k.as_str()))
            .map_or(0, |i| i + 1);
        members.insert(at, (name.to_string(), value));
    };
    if args.is_empty() {
        members.retain(|(k, _)| k != "args");
    } else {
        set(
            &mut members,
            "args",
            Json::strings(args),
            &["terminal", "consoleSize", "user"],
        );
    }
    if let Some(cwd) = cwd.filter(|c| !c.is_empty()) {
        set(
            &mut members,
            "cwd",
            Json::string(cwd),
            &[
                "terminal",
                "consoleSize",
                "user",
                "args",
                "commandLine",
                "env",
            ],
        );
    }
    Json::Object(members)
}

/// `ctr tasks exec --exec-id X [-t] [-d] [--cwd] ID CMD [ARG…]`.
pub async fn exec(channel: NamespacedChannel, args: &TaskExec) -> anyhow::Result<()> {
    let id = args.args.first().map(String::as_str).unwrap_or("");
    if id.is_empty() {
        bail!(MISSING_ID);
    }
    let exec_id = args.exec_id.clone().unwrap_or_default();
    let container = containers::get(channel.clone(), id).await?;
    let spec = spec_json(&container).unwrap_or(Json::Object(Vec::new()));
    if args.user.as_deref().is_some_and(|u| !u.is_empty()) {
        bail!("--user is not supported by this ctr's tasks exec yet: not implemented");
    }
    let process = exec_process(&spec, args.tty, &args.args[1..], args.cwd.as_deref());
    load_task(&channel, id).await?;
    let fifo_dir = args.fifo_dir.as_deref().filter(|d| !d.is_empty());
    let log_uri = args.log_uri.as_deref().filter(|u| !u.is_empty());
    if args.tty && log_uri.is_some() {
        bail!("can't use log-uri with tty");
    }
    if log_uri.is_some() && fifo_dir.is_some() {
        bail!("can't use log-uri with fifo-dir");
    }
    let console = if args.tty { Some(raw_console()?) } else { None };
    if exec_id.is_empty() {
        bail!("exec id must not be empty: invalid argument");
    }
    let streams = streams(console.as_ref(), false, log_uri)?;
    let mut io = TaskIo::create(fifo_dir, &exec_id, streams)?;
    let executed = Tasks::new(channel.clone())
        .exec(ExecProcessRequest {
            container_id: id.to_string(),
            stdin: io.config.stdin.clone(),
            stdout: io.config.stdout.clone(),
            stderr: io.config.stderr.clone(),
            terminal: io.config.terminal,
            spec: Some(prost_types::Any {
                type_url: PROCESS_TYPE_URL.to_string(),
                value: process.to_compact().into_bytes(),
            }),
            exec_id: exec_id.clone(),
        })
        .await;
    if let Err(status) = executed {
        io.remove();
        return Err(rpc(status));
    }
    let code = start_and_follow(
        Started {
            channel: &channel,
            id,
            exec_id: &exec_id,
            pid: 0,
            detach: args.detach,
            pid_file: None,
            console: console.as_ref(),
        },
        io,
    )
    .await?;
    match code {
        0 => Ok(()),
        code => Err(ExitStatus(code).into()),
    }
}

/// `ctr tasks metrics [--format table|json] ID`.
pub async fn metrics(channel: NamespacedChannel, args: &TaskMetrics) -> anyhow::Result<String> {
    let id = args.id.as_deref().unwrap_or("");
    containers::get(channel.clone(), id).await?;
    load_task(&channel, id).await?;
    let metrics = Tasks::new(channel.clone())
        .metrics(MetricsRequest {
            filters: vec![format!("id=={id}")],
        })
        .await
        .map_err(rpc)?
        .into_inner()
        .metrics;
    let Some(metric) = metrics.into_iter().next() else {
        load_task(&channel, id).await?;
        bail!("no metrics received");
    };
    let data = metric.data.clone().unwrap_or_default();
    let decoded = crate::metrics::decode(&data)?;
    match args.format.as_str() {
        "table" => {
            let mut writer = TabWriter::new(1, 8, 4, ' ');
            writer.write_str("ID\tTIMESTAMP\t\n");
            writer.write_str(&format!(
                "{}\t{}\t\n\n",
                metric.id,
                gojson::go_time_string(metric.timestamp.as_ref())
            ));
            writer.write_str(&decoded.table());
            Ok(writer.finish())
        }
        "json" => Ok(format!("{}\n", decoded.json().to_indented("  "))),
        _ => bail!("format must be table or json"),
    }
}

/// `ctr tasks attach ID`: ctr's streams joined to the running task's FIFOs
/// until it ends; then the task is deleted and ctr exits with its status.
pub async fn attach(channel: NamespacedChannel, args: &TaskId) -> anyhow::Result<()> {
    let id = args.id.as_deref().unwrap_or("");
    let container = containers::get(channel.clone(), id).await?;
    let terminal = spec_json(&container)
        .map(|spec| process_terminal(&spec))
        .unwrap_or(false);
    let console = if terminal { Some(raw_console()?) } else { None };
    let task = load_task(&channel, id).await?;
    let config = IoConfig {
        stdin: task.stdin.clone(),
        stdout: task.stdout.clone(),
        stderr: task.stderr.clone(),
        terminal: task.terminal,
    };
    let stream = console.as_ref().map(Console::stream).transpose()?;
    let io = TaskIo::attach(config, stream)?;
    let waiting = spawn_wait(&channel, id, "");
    let follower = match &console {
        Some(console) => keep_pty_sized(&channel, id, "", console).await,
        None => {
            // Attached to a process that runs already: forward from now on.
            let (started, ready) = tokio::sync::oneshot::channel();
            let _ = started.send(());
            forward_signals(&channel, id, "", ready)
        }
    };
    let waited = waiting.await;
    follower.abort();
    let result = match waited {
        Ok(Ok(answer)) => Ok(answer.exit_status),
        Ok(Err(status)) => Err(rpc(status)),
        Err(err) => Err(anyhow!("waiting for the task: {err}")),
    };
    io.finish(OUTPUT_DRAIN).await;
    let _ = delete_task(&channel, id, task.pid, false, Some(&task)).await;
    match result? {
        0 => Ok(()),
        code => Err(ExitStatus(code).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_as_mobys_parse_signal() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("SIGHUP").unwrap(), 1);
        assert_eq!(
            parse_signal("FOO").unwrap_err().to_string(),
            "invalid signal: FOO"
        );
        assert_eq!(
            parse_signal("0").unwrap_err().to_string(),
            "invalid signal: 0"
        );
    }

    #[test]
    fn exec_processes_keep_gos_member_order() {
        let spec = gojson::parse(
            br#"{"process":{"user":{"uid":0,"gid":0},"args":["sh"],"env":["A=1"],"cwd":"/"}}"#,
        )
        .unwrap();
        let process = exec_process(&spec, true, &["ls".into(), "-l".into()], Some("/tmp"));
        assert_eq!(
            process.to_compact(),
            r#"{"terminal":true,"user":{"uid":0,"gid":0},"args":["ls","-l"],"env":["A=1"],"cwd":"/tmp"}"#
        );
        let process = exec_process(&spec, false, &["true".into()], None);
        assert_eq!(
            process.to_compact(),
            r#"{"user":{"uid":0,"gid":0},"args":["true"],"env":["A=1"],"cwd":"/"}"#
        );
    }

    #[test]
    fn process_details_print_as_gos_percent_plus_v() {
        let any = prost_types::Any {
            type_url: PROCESS_DETAILS_URL.into(),
            value: b"\x0a\x02e2".to_vec(),
        };
        assert_eq!(
            process_info(&any).unwrap(),
            "&ProcessDetails{ExecID:e2,XXX_unrecognized:[],}"
        );
    }
}
