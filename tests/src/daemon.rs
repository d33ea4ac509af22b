//! One running `rcontainerd` with its own temporary root, state dir, socket and config.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rcontainerd_api::client::Dialer;
use rcontainerd_api::services::{introspection, namespaces, version};
use tonic::transport::Channel;

use crate::binaries;
use crate::ctr::{Ctr, CtrOutput, RunningCtr};
use crate::mounts;

/// How long a daemon may take to answer its first Version RPC.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// The daemon logs a line containing this once it accepts connections.
const SERVING_MARKER: &str = "serving on";
/// How long a daemon may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a daemon did not come up.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("rcontainerd exited with {status} before serving; stderr:\n{stderr}")]
    Exited { status: ExitStatus, stderr: String },
    #[error("rcontainerd did not answer Version within {0:?}; stderr:\n{1}")]
    NotReady(Duration, String),
    #[error("preparing daemon directory {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

impl DaemonError {
    /// The daemon's stderr, whichever way it failed.
    pub fn stderr(&self) -> &str {
        match self {
            DaemonError::Exited { stderr, .. } | DaemonError::NotReady(_, stderr) => stderr,
            DaemonError::Io(..) => "",
        }
    }
}

/// How to start a daemon. The default: the in-tree plugins next to the binary, nothing disabled or
/// required.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// `plugin_dirs`; `None`: the directory of the daemon binary only (where cargo puts the in-tree
    /// plugins), so that libraries installed on the machine never leak into a test.
    pub plugin_dirs: Option<Vec<PathBuf>>,
    /// `disabled_plugins` URIs.
    pub disabled_plugins: Vec<String>,
    /// `required_plugins` URIs.
    pub required_plugins: Vec<String>,
    /// TOML inserted after the harness's top-level keys: more top-level keys, then tables.
    pub extra_toml: String,
    /// A config file written verbatim instead of the generated one; root, state and socket are then
    /// passed as `--root`, `--state` and `--address`.
    pub raw_config: Option<String>,
    /// More command-line arguments.
    pub args: Vec<String>,
    /// `grpc.address`; default `<temp dir>/rcontainerd.sock`.
    pub address: Option<PathBuf>,
    /// A debug crash point (`RCONTAINERD_TEST_CRASH_AT`) the daemon aborts at.
    pub crash_at: Option<String>,
}

impl DaemonOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Load plugins from `dir` only.
    pub fn plugin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.plugin_dirs = Some(vec![dir.into()]);
        self
    }

    pub fn disable(mut self, uri: &str) -> Self {
        self.disabled_plugins.push(uri.to_owned());
        self
    }

    pub fn require(mut self, uri: &str) -> Self {
        self.required_plugins.push(uri.to_owned());
        self
    }

    pub fn extra_toml(mut self, toml: &str) -> Self {
        self.extra_toml.push_str(toml);
        self.extra_toml.push('\n');
        self
    }

    /// Serve on `socket` instead of the temp dir's default socket.
    /// Makes the daemon abort at debug crash point `point` (until
    /// [`Daemon::clear_crash_point`]).
    pub fn crash_at(mut self, point: &str) -> Self {
        self.crash_at = Some(point.to_string());
        self
    }

    pub fn address(mut self, socket: impl Into<PathBuf>) -> Self {
        self.address = Some(socket.into());
        self
    }

    pub fn raw_config(mut self, text: &str) -> Self {
        self.raw_config = Some(text.to_owned());
        self
    }
}

/// The environment variable naming a debug build's crash point.
const CRASH_AT_ENV: &str = "RCONTAINERD_TEST_CRASH_AT";

/// A running daemon. Dropping it stops the process (SIGTERM, then SIGKILL after 5 s), unmounts
/// everything under its temporary directory and removes the directory — also when the test panicked.
pub struct Daemon {
    child: Option<Child>,
    /// Runs the gRPC connections' background tasks, so they make progress (and close when dropped)
    /// while the test's own runtime is blocked, e.g. waiting for the daemon to exit.
    io: Option<tokio::runtime::Runtime>,
    options: DaemonOptions,
    channel: Option<Channel>,
    runs: u32,
    // Last field: removed after `Drop::drop` has stopped the process and unmounted.
    dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts a daemon and waits until it answers a Version RPC.
    pub async fn start(options: DaemonOptions) -> Result<Daemon, DaemonError> {
        let dir = tempfile::Builder::new()
            .prefix("rcd-test-")
            .tempdir()
            .map_err(|e| DaemonError::Io(std::env::temp_dir(), e))?;
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| DaemonError::Io(dir.path().to_path_buf(), e))?;
        let mut daemon = Daemon {
            child: None,
            io: Some(io),
            options,
            channel: None,
            runs: 0,
            dir,
        };
        let config = daemon.config_text();
        std::fs::write(daemon.config_path(), config)
            .map_err(|e| DaemonError::Io(daemon.config_path(), e))?;
        daemon.spawn_and_wait().await?;
        Ok(daemon)
    }

    /// Starts a daemon without garbage collection: for tests of objects no
    /// lease or image holds, which a collection would remove (as
    /// containerd's does); `tests/gc.rs` tests collection itself.
    pub async fn start_without_gc() -> Daemon {
        Self::start(DaemonOptions::new().disable(crate::uri::GC))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a daemon with default options.
    pub async fn start_default() -> Daemon {
        Self::start(DaemonOptions::new())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The temporary directory holding everything of this daemon.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn root(&self) -> PathBuf {
        self.dir().join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.dir().join("state")
    }

    pub fn socket(&self) -> PathBuf {
        self.options
            .address
            .clone()
            .unwrap_or_else(|| self.dir().join("rcontainerd.sock"))
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir().join("config.toml")
    }

    /// The gRPC channel to the running daemon.
    pub fn channel(&self) -> Channel {
        self.channel.clone().expect("daemon is running")
    }

    pub fn version(&self) -> version::version_client::VersionClient<Channel> {
        version::version_client::VersionClient::new(self.channel())
    }

    pub fn introspection(
        &self,
    ) -> introspection::introspection_client::IntrospectionClient<Channel> {
        introspection::introspection_client::IntrospectionClient::new(self.channel())
    }

    pub fn namespaces(&self) -> namespaces::namespaces_client::NamespacesClient<Channel> {
        namespaces::namespaces_client::NamespacesClient::new(self.channel())
    }

    /// Introspection.Plugins with `filters` (empty: all plugins).
    pub async fn plugins(&self, filters: &[&str]) -> Vec<introspection::Plugin> {
        let request = introspection::PluginsRequest {
            filters: filters.iter().map(|f| f.to_string()).collect(),
        };
        self.introspection()
            .plugins(request)
            .await
            .unwrap_or_else(|s| panic!("Introspection.Plugins {filters:?}: {s}"))
            .into_inner()
            .plugins
    }

    /// Introspection.Server's UUID.
    pub async fn server_uuid(&self) -> String {
        self.introspection()
            .server(())
            .await
            .unwrap_or_else(|s| panic!("Introspection.Server: {s}"))
            .into_inner()
            .uuid
    }

    /// Whether Version answers (the daemon still serves).
    pub async fn answers_version(&self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.version().version(())).await,
            Ok(Ok(_))
        )
    }

    /// Everything the current run of the daemon wrote to stderr (and stdout) so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.log_path(self.runs)).unwrap_or_default()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Runs a `ctr` against this daemon's socket.
    pub fn ctr(&self, which: Ctr, args: &[&str]) -> CtrOutput {
        which.run(&self.socket(), args)
    }

    /// Later starts run without the crash point.
    pub fn clear_crash_point(&mut self) {
        self.options.crash_at = None;
    }

    /// Waits up to `limit` for the process to exit by itself (a crash point);
    /// whether it did.
    pub fn wait_for_exit(&mut self, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if !self.is_running() {
                self.child = None;
                self.channel = None;
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }

    /// Starts a `ctr` against this daemon's socket and leaves it running.
    pub fn spawn_ctr(&self, which: Ctr, args: &[&str]) -> RunningCtr {
        which.spawn(&self.socket(), args)
    }

    /// Sends SIGKILL and reaps the process: no chance to flush or clean up.
    pub fn kill9(&mut self) -> ExitStatus {
        self.channel = None;
        let mut child = self.child.take().expect("daemon is running");
        let _ = child.kill();
        child.wait().expect("reaping killed daemon")
    }

    /// Sends SIGTERM and waits up to 5 s for the exit (then SIGKILL). Returns how it exited.
    pub fn terminate(&mut self) -> ExitStatus {
        self.channel = None;
        let mut child = self.child.take().expect("daemon is running");
        stop(&mut child)
    }

    /// Starts the daemon again with the same config, root, state and socket.
    pub async fn restart(&mut self) -> Result<(), DaemonError> {
        if self.child.is_some() {
            self.terminate();
        }
        self.spawn_and_wait().await
    }

    fn log_path(&self, run: u32) -> PathBuf {
        self.dir().join(format!("daemon-{run}.log"))
    }

    fn config_text(&self) -> String {
        if let Some(raw) = &self.options.raw_config {
            return raw.clone();
        }
        let o = &self.options;
        let mut text = String::from("version = 2\n");
        text += &format!("root = {}\n", toml_str(&self.root()));
        text += &format!("state = {}\n", toml_str(&self.state()));
        let dirs = o
            .plugin_dirs
            .clone()
            .unwrap_or_else(|| vec![binaries::profile_dir()]);
        let dirs: Vec<String> = dirs.iter().map(|d| toml_str(d)).collect();
        text += &format!("plugin_dirs = [{}]\n", dirs.join(", "));
        if !o.disabled_plugins.is_empty() {
            text += &format!("disabled_plugins = {}\n", toml_list(&o.disabled_plugins));
        }
        if !o.required_plugins.is_empty() {
            text += &format!("required_plugins = {}\n", toml_list(&o.required_plugins));
        }
        text += &o.extra_toml;
        text += &format!("\n[grpc]\naddress = {}\n", toml_str(&self.socket()));
        text
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(binaries::rcontainerd());
        cmd.arg("--config").arg(self.config_path());
        if self.options.raw_config.is_some() {
            cmd.arg("--root").arg(self.root());
            cmd.arg("--state").arg(self.state());
            cmd.arg("--address").arg(self.socket());
        }
        cmd.args(&self.options.args);
        cmd.env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE");
        // Tests that set the crash point in their own environment keep it.
        if let Some(point) = &self.options.crash_at {
            cmd.env(CRASH_AT_ENV, point);
        }
        cmd
    }

    async fn spawn_and_wait(&mut self) -> Result<(), DaemonError> {
        self.runs += 1;
        let log_path = self.log_path(self.runs);
        let log = File::create(&log_path).map_err(|e| DaemonError::Io(log_path.clone(), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| DaemonError::Io(log_path.clone(), e))?;
        let mut cmd = self.command();
        cmd.stdin(Stdio::null()).stdout(log2).stderr(log);
        // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
        // async-signal-safe; it makes the daemon die with the test process even if Drop never runs.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| DaemonError::Io(binaries::rcontainerd(), e))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<(), DaemonError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("just spawned");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(DaemonError::Exited {
                    status,
                    stderr: self.stderr(),
                });
            }
            // The log line first: Version alone could be answered by another daemon on the socket.
            if self.stderr().contains(SERVING_MARKER) {
                if let Some(channel) = self.try_version().await {
                    self.channel = Some(channel);
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                let stderr = self.stderr();
                if let Some(mut child) = self.child.take() {
                    stop(&mut child);
                }
                return Err(DaemonError::NotReady(READY_TIMEOUT, stderr));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A channel on which Version answered, if it does.
    async fn try_version(&self) -> Option<Channel> {
        let socket = self.socket();
        let io = self
            .io
            .as_ref()
            .expect("io runtime lives as long as the daemon");
        let attempt = async {
            let channel = io
                // A missing socket fails at once: `wait_ready` polls, checking on the process.
                .spawn(async move { Dialer::new().wait_for_socket(false).connect(&socket).await })
                .await
                .ok()?
                .ok()?;
            version::version_client::VersionClient::new(channel.clone())
                .version(())
                .await
                .ok()?;
            Some(channel)
        };
        tokio::time::timeout(Duration::from_secs(2), attempt)
            .await
            .ok()
            .flatten()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.channel = None;
        // Closes the harness's connections before the daemon is asked to stop.
        if let Some(io) = self.io.take() {
            io.shutdown_background();
        }
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
        // Tasks outlive the daemon by design: end them here, or a failed test leaves them running.
        crate::shims::kill_all(&self.state(), &self.socket());
        mounts::unmount_all_under(self.dir.path());
        if std::thread::panicking() {
            eprintln!(
                "--- rcontainerd stderr (run {}) ---\n{}",
                self.runs,
                self.stderr()
            );
        }
    }
}

/// SIGTERM, wait up to [`STOP_TIMEOUT`], then SIGKILL.
fn stop(child: &mut Child) -> ExitStatus {
    let pid = Pid::from_raw(child.id() as i32);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "test harness: rcontainerd (pid {pid}) ignored SIGTERM for {STOP_TIMEOUT:?}; killing it"
    );
    let _ = child.kill();
    child.wait().expect("reaping daemon")
}

/// Runs `rcontainerd <args>` to completion (for `config default|dump|check`).
pub fn run_rcontainerd(args: &[&str]) -> Output {
    let output = Command::new(binaries::rcontainerd())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running rcontainerd");
    output
}

fn toml_str(path: &Path) -> String {
    toml_quote(&path.to_string_lossy())
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| toml_quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A TOML basic string (JSON's string escaping is valid TOML).
fn toml_quote(s: &str) -> String {
    serde_json::to_string(s).expect("string serialises")
}
