//! The boot benchmark: start each daemon in a fresh directory, time exec → first answered `Version`,
//! let it idle, read its RSS, stop it. Daemons alternate run by run so that drift on the machine
//! (cache, frequency, other load) falls on all of them alike.

use crate::client;
use crate::daemon::{ContainerdConfig, Launch, Subject};
use crate::probe;
use crate::procfs;
use crate::workdir::WorkDir;
use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// How long a daemon gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often an exiting daemon is checked on.
const STOP_POLL: Duration = Duration::from_millis(2);
/// How much of a failed daemon's log an error shows.
const LOG_TAIL_BYTES: usize = 2000;

pub struct Plan {
    pub rcontainerd: PathBuf,
    pub containerd: PathBuf,
    pub containerd_configs: Vec<ContainerdConfig>,
    pub runs: u32,
    pub idle: Duration,
    pub boot_timeout: Duration,
    pub tmp_dir: Option<PathBuf>,
    /// Time a second boot on the root and state a first, untimed boot left behind.
    pub restart: bool,
    /// Flush the page cache's dirty data (sync(2)) before each timed boot.
    pub sync_first: bool,
}

impl Plan {
    /// rcontainerd first, then each containerd configuration; this is also the order within a round.
    pub fn subjects(&self) -> Vec<Subject> {
        let mut subjects = vec![Subject::Rcontainerd {
            binary: self.rcontainerd.clone(),
            isolated: false,
        }];
        subjects.extend(
            self.containerd_configs
                .iter()
                .map(|&config| Subject::Containerd {
                    binary: self.containerd.clone(),
                    config,
                }),
        );
        subjects
    }
}

/// One measured start of one daemon.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Exec to the first answered Version call.
    pub boot: Duration,
    /// `/proc/<pid>/status` after the idle period.
    pub status: procfs::Status,
    /// The daemon plus its descendants after the idle period.
    pub processes: usize,
    /// What Version answered.
    pub version: String,
    /// SIGTERM to exit.
    pub stop: Duration,
    /// Whether it had to be killed after [`STOP_GRACE`].
    pub killed: bool,
    /// Mounts left in the run directory after the daemon exited.
    pub leftover_mounts: usize,
}

pub struct Results {
    /// File names of the plugin libraries next to the rcontainerd binary, which it loads by default.
    pub plugin_libraries: Vec<String>,
    pub subjects: Vec<Subject>,
    /// `samples[s][i]`: subject `s`, measured round `i`.
    pub samples: Vec<Vec<Sample>>,
}

pub fn run(plan: &Plan) -> anyhow::Result<Results> {
    let subjects = plan.subjects();
    for subject in &subjects {
        check_binary(subject.binary())?;
    }
    let plugin_libraries = plugin_libraries_next_to(&plan.rcontainerd);
    if plugin_libraries.is_empty() {
        eprintln!(
            "warning: no plugin libraries next to {}; build them with `cargo build --release`",
            plan.rcontainerd.display()
        );
    }
    for subject in &subjects {
        let sample = measure(plan, subject).with_context(|| format!("warm-up run of {subject}"))?;
        eprintln!("warm-up  {subject:<27} {}", describe(&sample));
    }
    let mut samples = vec![Vec::new(); subjects.len()];
    for round in 1..=plan.runs {
        for (subject, samples) in subjects.iter().zip(&mut samples) {
            let sample =
                measure(plan, subject).with_context(|| format!("run {round} of {subject}"))?;
            eprintln!("run {round:>3}  {subject:<27} {}", describe(&sample));
            samples.push(sample);
        }
    }
    Ok(Results {
        plugin_libraries,
        subjects,
        samples,
    })
}

pub fn check_binary(binary: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(binary).with_context(|| {
        format!(
            "daemon binary {} not found (rcontainerd: `cargo build --release -p rcontainerd` and \
             `cargo build --release` for its plugins)",
            binary.display()
        )
    })?;
    if !meta.is_file() {
        bail!("daemon binary {} is not a file", binary.display());
    }
    Ok(())
}

fn plugin_libraries_next_to(binary: &Path) -> Vec<String> {
    let dir = binary.parent().unwrap_or(Path::new("."));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".so"))
        .collect();
    names.sort();
    names
}

fn describe(sample: &Sample) -> String {
    format!(
        "boot {:>8.2} ms  rss {:>6.1} MiB (anon {:>5.1}, file {:>5.1})  threads {:>3}  processes {}  stop {:>7.1} ms",
        ms(sample.boot),
        mib(sample.status.vm_rss_kib),
        mib(sample.status.rss_anon_kib),
        mib(sample.status.rss_file_kib),
        sample.status.threads,
        sample.processes,
        ms(sample.stop),
    ) + if sample.killed { " (killed)" } else { "" }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn measure(plan: &Plan, subject: &Subject) -> anyhow::Result<Sample> {
    let dir = WorkDir::new(plan.tmp_dir.as_deref())?;
    let mut launch = subject
        .prepare(dir.path())
        .context("preparing the run directory")?;
    if plan.restart {
        let (daemon, _, _) =
            boot(plan.boot_timeout, subject, &mut launch).context("untimed first boot")?;
        daemon.stop()?;
    }
    if plan.sync_first {
        // Otherwise the daemon's first fsync pays for the writes of the runs before it (removing their
        // directories, the previous daemon's database): on ext4 an fsync commits the whole journal.
        nix::unistd::sync();
    }
    let (mut daemon, boot, version) = boot(plan.boot_timeout, subject, &mut launch)?;
    std::thread::sleep(plan.idle);
    let pid = daemon.child().id();
    let status = procfs::status(pid)?;
    let descendants = procfs::descendants(pid);
    let (stop, killed) = daemon.stop()?;
    kill_survivors(&descendants);
    let leftover_mounts = dir.remove()?.len();
    Ok(Sample {
        boot,
        status,
        processes: 1 + descendants.len(),
        version,
        stop,
        killed,
        leftover_mounts,
    })
}

/// Starts the daemon and waits for its first answer to Version.
/// Returns it with the time from exec to that answer and the version it reported.
pub fn boot(
    boot_timeout: Duration,
    subject: &Subject,
    launch: &mut Launch,
) -> anyhow::Result<(Daemon, Duration, String)> {
    // One runtime per boot, dropped right after the probe: that closes the probe's connection, which would
    // otherwise stay open (its task never polled again) and hold up a daemon that drains clients on SIGTERM.
    let runtime = client::runtime()?;
    let start = Instant::now();
    let mut daemon = Daemon::spawn(subject, launch)?;
    let answered = runtime.block_on(probe::wait_for_version(
        &launch.socket,
        daemon.child(),
        start + boot_timeout,
    ));
    let elapsed = start.elapsed();
    drop(runtime);
    match answered {
        Ok(version) => Ok((daemon, elapsed, version)),
        Err(e) => {
            drop(daemon);
            Err(with_log_tail(e, launch))
        }
    }
}

/// `error` with the end of the daemon's log, for a daemon that failed to start or answer.
pub fn with_log_tail(error: anyhow::Error, launch: &Launch) -> anyhow::Error {
    error.context(format!("daemon log ends with:\n{}", log_tail(&launch.log)))
}

/// A started daemon; killed if dropped before it was stopped.
pub struct Daemon {
    child: Option<Child>,
}

impl Daemon {
    /// Execs the daemon `launch` prepared (a launch can be spawned again once the last one exited).
    pub fn spawn(subject: &Subject, launch: &mut Launch) -> anyhow::Result<Self> {
        let child = launch
            .command
            .spawn()
            .with_context(|| format!("starting {}", subject.binary().display()))?;
        Ok(Daemon { child: Some(child) })
    }

    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("daemon not yet stopped")
    }

    /// SIGTERM, then SIGKILL if it has not exited within [`STOP_GRACE`].
    /// Returns the time to exit and whether it had to be killed.
    pub fn stop(mut self) -> anyhow::Result<(Duration, bool)> {
        // On any error below, Drop kills and reaps the daemon.
        let child = self.child();
        let start = Instant::now();
        kill(pid_of(child), Signal::SIGTERM).context("sending SIGTERM to the daemon")?;
        let mut killed = false;
        while child
            .try_wait()
            .context("waiting for the daemon")?
            .is_none()
        {
            if start.elapsed() >= STOP_GRACE {
                child.kill().context("killing the daemon")?;
                child.wait().context("waiting for the killed daemon")?;
                killed = true;
                break;
            }
            std::thread::sleep(STOP_POLL);
        }
        let elapsed = start.elapsed();
        self.child = None;
        Ok((elapsed, killed))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

fn pid_of(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).expect("pids fit in i32"))
}

/// Kills processes the daemon started and left behind (none are expected: no containers run).
fn kill_survivors(pids: &[u32]) {
    for &pid in pids {
        if Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("warning: daemon left process {pid} running; killing it");
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let from = text.len().saturating_sub(LOG_TAIL_BYTES);
    String::from_utf8_lossy(&text[from..]).into_owned()
}
