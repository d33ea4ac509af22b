//! The supervisor of one isolated driver: it starts the helper process,
//! restarts it with backoff when it dies, kills it when a call outlives its
//! deadline, and on request drains the calls in flight and restarts it on
//! the library file as it is now (an upgrade). Calls are admitted only
//! while the child serves; while it restarts they wait, up to the call
//! deadline.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rcontainerd_pkg::duration;
use rcontainerd_plugin_api::{InitContext, PluginError, Result};
use rcontainerd_proxy::{Remote, Watcher};

use crate::handshake::{error_of, DriverKind, Handshake};
use crate::settings::Settings;

/// How long the helper may take to load and initialise the driver.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The first restart comes this soon; each next one twice as late…
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// …up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a call waits at least for a (re)starting child to serve.
const MIN_ADMISSION_WAIT: Duration = Duration::from_secs(10);
/// A child that served this long before it died starts the backoff afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

/// Everything needed to start the helper for one driver.
#[derive(Debug, Clone)]
pub struct Spec {
    pub uri: String,
    pub library: PathBuf,
    /// The `rcontainerd-isolated` executable.
    pub helper: PathBuf,
    /// The private socket the helper serves on.
    pub socket: PathBuf,
    /// The driver's init context; its config no longer has the host's keys.
    pub init: InitContext,
    pub settings: Settings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Running,
    /// Died; a new child starts after the backoff.
    Restarting,
    /// Stopped on purpose to run the library file anew.
    Upgrading,
    Stopped,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Restarting => "restarting",
            Phase::Upgrading => "upgrading",
            Phase::Stopped => "stopped",
        }
    }
}

/// What `ctr plugins ls -d` shows of a supervised driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub phase: Phase,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub upgrades: u32,
    pub last_exit: Option<String>,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    pid: Option<u32>,
    /// Counts every child start after the first.
    generation: u64,
    restarts: u32,
    upgrades: u32,
    last_exit: Option<String>,
    in_flight: usize,
    /// An upgrade waits for the calls in flight; new ones wait for it.
    draining: bool,
    /// The child's next exit is the upgrade's doing, not a crash.
    upgrade_pending: bool,
    /// Why the supervisor killed the child (a call outlived its deadline).
    killed_for: Option<String>,
    /// The library file the running child loaded.
    library_id: Option<FileId>,
}

/// The calls' side of the supervisor: admission and the in-flight count.
struct Gate {
    state: Mutex<State>,
    changed: Condvar,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Held by a call while it runs.
struct Admitted(Arc<Gate>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.lock().in_flight -= 1;
        self.0.changed.notify_all();
    }
}

pub struct Supervisor {
    spec: Spec,
    gate: Arc<Gate>,
    /// The proxy's remote, to drop its channel when a new child serves.
    remote: OnceLock<Weak<Remote>>,
}

/// A driver served by a supervised child, and what its init exported.
pub struct Isolated {
    pub kind: DriverKind,
    pub remote: Arc<Remote>,
    pub exports: BTreeMap<String, String>,
    pub supervisor: Arc<Supervisor>,
}

/// Every supervisor of this process, for a reload signal (process-wide by
/// nature) and for shutdown.
fn supervisors() -> MutexGuard<'static, Vec<Weak<Supervisor>>> {
    static ALL: OnceLock<Mutex<Vec<Weak<Supervisor>>>> = OnceLock::new();
    ALL.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn live_supervisors() -> Vec<Arc<Supervisor>> {
    supervisors().iter().filter_map(Weak::upgrade).collect()
}

/// Starts the driver's child and waits until it serves (or its init fails:
/// then the error is the driver's own, as in-process, and nothing is
/// supervised).
pub fn start(spec: Spec) -> Result<Isolated> {
    let supervisor = Arc::new(Supervisor {
        gate: Arc::new(Gate {
            state: Mutex::new(State {
                phase: Phase::Starting,
                pid: None,
                generation: 0,
                restarts: 0,
                upgrades: 0,
                last_exit: None,
                in_flight: 0,
                draining: false,
                upgrade_pending: false,
                killed_for: None,
                library_id: None,
            }),
            changed: Condvar::new(),
        }),
        spec,
        remote: OnceLock::new(),
    });
    let (first_tx, first_rx) = mpsc::channel();
    let watched = supervisor.clone();
    // The supervising thread lives as long as the driver: children get a
    // parent-death signal, which follows the thread that started them.
    std::thread::Builder::new()
        .name("isolated-driver".into())
        .spawn(move || watched.supervise(first_tx))
        .map_err(|e| PluginError::io("start the supervising thread", e))?;
    let (kind, exports) = first_rx
        .recv()
        .map_err(|_| PluginError::internal("the supervising thread ended"))??;
    // The child serves ttrpc on blocking sockets: one round trip per call.
    let remote = Remote::supervised(
        &supervisor.spec.uri,
        &supervisor.spec.socket,
        supervisor.spec.settings.call_timeout,
        supervisor.clone(),
    );
    let _ = supervisor.remote.set(Arc::downgrade(&remote));
    supervisors().push(Arc::downgrade(&supervisor));
    Ok(Isolated {
        kind,
        remote,
        exports,
        supervisor,
    })
}

/// Restarts every isolated driver whose library file changed since its
/// child loaded it (the operator replaced it), draining each first.
/// Returns what happened, per plugin URI.
pub fn reload() -> Vec<(String, Result<bool>)> {
    live_supervisors()
        .into_iter()
        .map(|s| {
            let changed = s.library_changed();
            let result = if changed {
                s.upgrade().map(|_| true)
            } else {
                Ok(false)
            };
            (s.spec.uri.clone(), result)
        })
        .collect()
}

/// Stops every isolated driver's child (the daemon is shutting down).
pub fn stop_all() {
    for s in live_supervisors() {
        s.stop();
    }
}

impl Supervisor {
    pub fn uri(&self) -> &str {
        &self.spec.uri
    }

    pub fn report(&self) -> Report {
        let s = self.gate.lock();
        Report {
            phase: s.phase,
            pid: s.pid,
            restarts: s.restarts,
            upgrades: s.upgrades,
            last_exit: s.last_exit.clone(),
        }
    }

    /// The exports Introspection lists, as of now.
    pub fn exports(&self) -> BTreeMap<String, String> {
        let r = self.report();
        let mut e = BTreeMap::from([
            ("isolation".to_string(), "process".to_string()),
            ("state".to_string(), r.phase.as_str().to_string()),
            ("restarts".to_string(), r.restarts.to_string()),
            ("upgrades".to_string(), r.upgrades.to_string()),
        ]);
        if let Some(pid) = r.pid {
            e.insert("pid".into(), pid.to_string());
        }
        if let Some(last) = r.last_exit {
            e.insert("last_exit".into(), last);
        }
        e
    }

    fn describe(&self) -> String {
        format!("isolated plugin {}", self.spec.uri)
    }

    /// Whether the file at the library's path is no longer the one the
    /// running child loaded.
    pub fn library_changed(&self) -> bool {
        let now = FileId::of(&self.spec.library);
        let s = self.gate.lock();
        s.phase == Phase::Running && now.is_some() && now != s.library_id
    }

    /// Drains the calls in flight (new ones wait), stops the child and
    /// starts a new one on the library file as it is now; returns once it
    /// serves, or with the reason it does not.
    pub fn upgrade(&self) -> Result<()> {
        let limit = self.spec.settings.call_timeout;
        let mut s = self.gate.lock();
        if s.phase != Phase::Running {
            return Err(PluginError::failed_precondition(format!(
                "{} is {}; it loads the library anew when it starts",
                self.describe(),
                s.phase.as_str()
            )));
        }
        s.draining = true;
        let drained_by = Instant::now() + limit;
        while s.in_flight > 0 && Instant::now() < drained_by {
            s = self
                .gate
                .changed
                .wait_timeout(s, limit)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let generation = s.generation;
        s.upgrade_pending = true;
        if let Some(pid) = s.pid {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        let started_by = Instant::now() + START_TIMEOUT + limit;
        loop {
            if s.generation != generation && s.phase == Phase::Running {
                return Ok(());
            }
            if s.generation != generation || s.phase == Phase::Restarting {
                return Err(PluginError::unavailable(format!(
                    "{}: the new library does not serve: {}",
                    self.describe(),
                    s.last_exit.clone().unwrap_or_default()
                )));
            }
            let now = Instant::now();
            if now >= started_by {
                return Err(PluginError::unavailable(format!(
                    "{}: the upgrade did not finish within {}",
                    self.describe(),
                    duration::format(START_TIMEOUT + limit)
                )));
            }
            s = self
                .gate
                .changed
                .wait_timeout(s, started_by - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Stops the child for good (the daemon is shutting down).
    pub fn stop(&self) {
        let mut s = self.gate.lock();
        s.phase = Phase::Stopped;
        if let Some(pid) = s.pid {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        drop(s);
        self.gate.changed.notify_all();
    }

    /// The supervising loop: start, wait, restart. The first start's
    /// outcome goes to `first`; if it fails there is nothing to supervise.
    fn supervise(
        self: Arc<Self>,
        first: mpsc::Sender<Result<(DriverKind, BTreeMap<String, String>)>>,
    ) {
        let mut first = Some(first);
        let mut attempt: u32 = 0;
        loop {
            let library_id = FileId::of(&self.spec.library);
            match self.spawn() {
                Ok((mut child, kind, exports)) => {
                    if let Some(tx) = first.take() {
                        let _ = tx.send(Ok((kind, exports)));
                    }
                    if let Some(remote) = self.remote.get().and_then(Weak::upgrade) {
                        remote.forget();
                    }
                    let pid = child.id();
                    {
                        let mut s = self.gate.lock();
                        if s.phase == Phase::Stopped {
                            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                        } else {
                            s.phase = Phase::Running;
                        }
                        s.pid = Some(pid);
                        s.generation += 1;
                        s.library_id = library_id;
                        s.draining = false;
                    }
                    self.gate.changed.notify_all();
                    tracing::info!(plugin = %self.spec.uri, pid, "isolated driver serving");
                    let started = Instant::now();
                    let status = child.wait();
                    let mut s = self.gate.lock();
                    s.pid = None;
                    if s.phase == Phase::Stopped {
                        return;
                    }
                    if s.upgrade_pending {
                        s.upgrade_pending = false;
                        s.upgrades += 1;
                        s.phase = Phase::Upgrading;
                        attempt = 0;
                        drop(s);
                        self.gate.changed.notify_all();
                        tracing::info!(plugin = %self.spec.uri, "isolated driver stopped for an upgrade");
                        continue;
                    }
                    let mut reason = exit_text(status);
                    if let Some(why) = s.killed_for.take() {
                        reason = format!("{why}; {reason}");
                    }
                    s.restarts += 1;
                    s.last_exit = Some(reason.clone());
                    s.phase = Phase::Restarting;
                    let restarts = s.restarts;
                    drop(s);
                    tracing::warn!(plugin = %self.spec.uri, %reason, restarts, "isolated driver ended; restarting it");
                    if started.elapsed() >= HEALTHY_RUN {
                        attempt = 0;
                    }
                }
                Err(e) => {
                    if let Some(tx) = first.take() {
                        self.gate.lock().phase = Phase::Stopped;
                        let _ = tx.send(Err(e));
                        return;
                    }
                    let mut s = self.gate.lock();
                    if s.phase == Phase::Stopped {
                        return;
                    }
                    s.restarts += 1;
                    s.upgrade_pending = false;
                    s.draining = false;
                    s.last_exit = Some(format!("start failed: {}", e.message));
                    s.phase = Phase::Restarting;
                    drop(s);
                    tracing::warn!(plugin = %self.spec.uri, error = %e.message, "isolated driver did not start; trying again");
                }
            }
            self.gate.changed.notify_all();
            let delay = FIRST_BACKOFF
                .saturating_mul(1u32 << attempt.min(16))
                .min(MAX_BACKOFF);
            attempt = attempt.saturating_add(1);
            std::thread::sleep(delay);
            if self.gate.lock().phase == Phase::Stopped {
                return;
            }
        }
    }

    /// Starts the helper and waits for its handshake.
    fn spawn(&self) -> Result<(Child, DriverKind, BTreeMap<String, String>)> {
        let spec = &self.spec;
        let _ = std::fs::remove_file(&spec.socket);
        let mut command = Command::new(&spec.helper);
        command
            .arg("--uri")
            .arg(&spec.uri)
            .arg("--library")
            .arg(&spec.library)
            .arg("--socket")
            .arg(&spec.socket)
            .arg("--root")
            .arg(&spec.init.root)
            .arg("--state")
            .arg(&spec.init.state)
            .arg("--grpc-address")
            .arg(&spec.init.grpc_address)
            .arg("--ttrpc-address")
            .arg(&spec.init.ttrpc_address)
            .arg("--capabilities")
            .arg(spec.settings.capabilities.join(","))
            .arg("--config")
            .arg(&spec.init.config)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Ok(filter) = std::env::var("RUST_LOG") {
            command.env("RUST_LOG", filter);
        }
        // SAFETY: between fork and exec only async-signal-safe calls run:
        // setsid(2) and prctl(2), plain system calls that allocate nothing.
        unsafe {
            command.pre_exec(|| {
                // Out of the daemon's process group (a terminal's ^C is the
                // daemon's to handle), and gone when the daemon is.
                let _ = nix::unistd::setsid();
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| {
            PluginError::unavailable(format!(
                "{}: cannot start {}: {e}",
                self.describe(),
                spec.helper.display()
            ))
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => line,
            Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => String::new(),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PluginError::unavailable(format!(
                    "{}: not serving within {}",
                    self.describe(),
                    duration::format(START_TIMEOUT)
                )));
            }
        };
        match Handshake::parse(&line) {
            Some(Handshake::Ready { kind, exports }) => Ok((child, kind, exports)),
            Some(Handshake::Failed { kind, message }) => {
                let _ = child.wait();
                Err(error_of(&kind, &message))
            }
            None => {
                let _ = child.kill();
                let status = child.wait();
                Err(PluginError::unavailable(format!(
                    "{}: the helper ended before serving: {}",
                    self.describe(),
                    exit_text(status)
                )))
            }
        }
    }
}

impl Watcher for Supervisor {
    fn admit(&self) -> Result<Box<dyn Send>> {
        // A short call deadline is about a hang; a restart may take longer.
        let limit = self.spec.settings.call_timeout.max(MIN_ADMISSION_WAIT);
        let by = Instant::now() + limit;
        let mut s = self.gate.lock();
        loop {
            if s.phase == Phase::Running && !s.draining {
                s.in_flight += 1;
                return Ok(Box::new(Admitted(self.gate.clone())));
            }
            let now = Instant::now();
            if s.phase == Phase::Stopped || now >= by {
                let last = s
                    .last_exit
                    .as_ref()
                    .map(|l| format!(" (last exit: {l})"))
                    .unwrap_or_default();
                return Err(PluginError::unavailable(format!(
                    "{} is not serving: {}, {} restarts{last}",
                    self.describe(),
                    s.phase.as_str(),
                    s.restarts
                )));
            }
            s = self
                .gate
                .changed
                .wait_timeout(s, by - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn deadline_passed(&self) {
        let mut s = self.gate.lock();
        let Some(pid) = s.pid else { return };
        if s.killed_for.is_none() && !s.upgrade_pending {
            s.killed_for = Some(format!(
                "a call got no answer within {}",
                duration::format(self.spec.settings.call_timeout)
            ));
            tracing::warn!(plugin = %self.spec.uri, pid, "isolated driver hangs; killing it");
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// How a child ended, as operators read it.
fn exit_text(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => match status.signal() {
            Some(sig) => {
                let name = Signal::try_from(sig)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|_| format!("signal {sig}"));
                let core = if status.core_dumped() {
                    " (core dumped)"
                } else {
                    ""
                };
                format!("killed by {name}{core}")
            }
            None => format!("exited with status {}", status.code().unwrap_or(-1)),
        },
        Err(e) => format!("cannot wait for it: {e}"),
    }
}

/// Which file a path names: replacing a library (a new inode, or new
/// contents in place) changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileId {
    fn of(path: &Path) -> Option<FileId> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileId {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_read_as_operators_expect() {
        assert_eq!(exit_text(Ok(ExitStatus::from_raw(11))), "killed by SIGSEGV");
        assert_eq!(
            exit_text(Ok(ExitStatus::from_raw(6 | 0x80))),
            "killed by SIGABRT (core dumped)"
        );
        assert_eq!(
            exit_text(Ok(ExitStatus::from_raw(2 << 8))),
            "exited with status 2"
        );
    }
}
