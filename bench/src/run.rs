//! The container run benchmark: Debian's `ctr` (1.6.20) runs the integration tests' busybox image
//! (overlayfs, runc through Debian's `containerd-shim-runc-v2`) on rcontainerd and on containerd
//! 1.6, each started in a fresh directory, daemons alternating round by round. Measured in each
//! round, after one untimed warm-up run:
//!
//! - the wall time of `ctr run --rm IMAGE ID true`, `runs` times one after the other;
//! - `parallel` containers started at once (`ctr run -d … sleep 1000`, one ctr process each) and
//!   the wall time until every ctr returned; the daemon's RSS and threads while they run;
//! - all of them stopped at once (one thread each: `ctr tasks kill -s KILL`, `ctr tasks rm`,
//!   `ctr containers rm`) and the wall time until the last is gone.
//!
//! Both daemons are given the same runc root inside the run directory (`--runc-root`), so no
//! container state lands in `/run/containerd/runc`. Whatever a round leaves running — on failure
//! too — is killed when it ends: containers with `runc delete --force`, shims found by the
//! daemon's socket on their command line.

use crate::boot;
use crate::daemon::Subject;
use crate::procfs;
use crate::stats::Spread;
use crate::throughput_report::spread;
use crate::workdir::WorkDir;
use anyhow::{bail, Context};
use rcontainerd_tests::{busybox, shims};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const NAMESPACE: &str = "bench-run";
pub const IMAGE: &str = "docker.io/library/bb:1";
const SHIM: &str = "containerd-shim-runc-v2";
/// containerd ÷ rcontainerd the issue asks for on `ctr run --rm`.
const AIM: f64 = 1.25;
/// How long a killed task may take to be seen as stopped before `tasks rm` gives up.
const RM_PATIENCE: Duration = Duration::from_secs(20);
/// How long the shims get to exit once their tasks are deleted.
const SHIM_EXIT: Duration = Duration::from_secs(10);
/// When the daemon's RSS and threads are read after the start of the containers: soon, and
/// once idle threads have had time to go (tokio's blocking pool keeps one 10 s).
const SOON: Duration = Duration::from_secs(1);
const LATER: Duration = Duration::from_secs(12);

pub struct Plan {
    /// rcontainerd first, then containerd.
    pub subjects: Vec<Subject>,
    pub rounds: u32,
    /// Timed `ctr run --rm` per daemon and round.
    pub runs: u32,
    /// Containers started (and stopped) at once.
    pub parallel: u32,
    pub ctr: PathBuf,
    pub boot_timeout: Duration,
    pub tmp_dir: Option<PathBuf>,
    /// What the run directories live on, for the report.
    pub filesystem: String,
}

/// One daemon's figures in one round.
#[derive(Debug, Clone)]
pub struct Round {
    /// Each `ctr run --rm`, in ms.
    pub run_ms: Vec<f64>,
    pub start_all_s: f64,
    pub stop_all_s: f64,
    /// The daemon's VmRSS and threads with every parallel container running, [`SOON`] and
    /// [`LATER`] after they started.
    pub rss_mib: f64,
    pub threads: u64,
    pub rss_later_mib: f64,
    pub threads_later: u64,
    /// `tasks rm` calls repeated because the killed task was not yet seen as stopped.
    pub rm_retries: u32,
}

pub struct Results {
    /// `rounds[s][r]`: subject `s`, round `r`.
    pub rounds: Vec<Vec<Round>>,
}

pub fn run(plan: &Plan) -> anyhow::Result<Results> {
    prerequisites(plan)?;
    for subject in &plan.subjects {
        boot::check_binary(subject.binary())?;
    }
    let image = busybox::oci_tar(IMAGE);
    let mut rounds: Vec<Vec<Round>> = plan.subjects.iter().map(|_| Vec::new()).collect();
    // Removed after the last round, as rounds::alternate does: deleting a daemon's directories
    // must not slow the next one down.
    let mut spent = Vec::new();
    for round in 1..=plan.rounds {
        for s in crate::rounds::order(round, plan.subjects.len()) {
            let subject = &plan.subjects[s];
            let dir = WorkDir::new(plan.tmp_dir.as_deref())?;
            let figures = measure(plan, subject, &image, &format!("r{round}s{s}"), dir.path())
                .with_context(|| format!("round {round} of {subject}"))?;
            let runs = Spread::of(&figures.run_ms).context("no runs")?;
            eprintln!(
                "round {round:>2}  {subject:<27} run --rm {:.1} / {:.1} / {:.1} ms  start {} {:.2} s  \
                 stop {:.2} s  rss {:.1} → {:.1} MiB  threads {} → {}  rm retries {}",
                runs.min,
                runs.median,
                runs.max,
                plan.parallel,
                figures.start_all_s,
                figures.stop_all_s,
                figures.rss_mib,
                figures.rss_later_mib,
                figures.threads,
                figures.threads_later,
                figures.rm_retries,
            );
            rounds[s].push(figures);
            spent.push(dir);
        }
    }
    for dir in spent {
        dir.remove()?;
    }
    remove_namespace_cgroups();
    Ok(Results { rounds })
}

/// Removes the empty `/<namespace>` cgroups runc made the containers' cgroups in (runc deletes
/// only a container's own); one still in use stays.
fn remove_namespace_cgroups() {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(NAMESPACE));
    for hierarchy in hierarchies.flatten() {
        let _ = std::fs::remove_dir(hierarchy.path().join(NAMESPACE));
    }
}

fn prerequisites(plan: &Plan) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the run benchmark needs root (the daemons mount, runc makes cgroups)");
    }
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
    };
    for (present, what) in [
        (plan.ctr.is_file(), plan.ctr.display().to_string()),
        (on_path(SHIM), format!("{SHIM} on PATH (Debian containerd)")),
        (on_path("runc"), "runc on PATH (Debian runc)".into()),
        (
            Path::new(busybox::BUSYBOX).is_file(),
            format!("{} (Debian busybox-static)", busybox::BUSYBOX),
        ),
    ] {
        if !present {
            bail!("missing: {what}");
        }
    }
    Ok(())
}

/// Debian's ctr against one daemon, in the benchmark's namespace, with the run's runc root.
struct Ctr<'a> {
    binary: &'a Path,
    socket: &'a Path,
    runc_root: String,
}

impl Ctr<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(self.binary);
        command
            .arg("--address")
            .arg(self.socket)
            .args(["-n", NAMESPACE])
            .args(args)
            .stdin(Stdio::null())
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .env_remove("CONTAINERD_SNAPSHOTTER")
            .env_remove("CONTAINERD_RUNTIME");
        command
    }

    fn output(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.command(args)
            .output()
            .with_context(|| format!("running ctr {args:?}"))
    }

    /// Runs `ctr <args>` and fails unless it succeeds.
    fn ok(&self, args: &[&str]) -> anyhow::Result<Output> {
        let out = self.output(args)?;
        check(args, &out)?;
        Ok(out)
    }

    /// `ctr run <flags> --runc-root R IMAGE id <command>`.
    fn run_args<'s>(&'s self, flags: &[&'s str], id: &'s str, command: &[&'s str]) -> Vec<&'s str> {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--runc-root", self.runc_root.as_str(), IMAGE, id]);
        args.extend_from_slice(command);
        args
    }

    fn spawn(&self, args: &[&str]) -> anyhow::Result<Child> {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting ctr {args:?}"))
    }

    fn list(&self, args: &[&str]) -> anyhow::Result<Vec<String>> {
        let out = self.ok(args)?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }
}

fn check(args: &[&str], out: &Output) -> anyhow::Result<()> {
    if !out.status.success() {
        bail!(
            "ctr {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Kills whatever the round left running when dropped: every container under the run's runc
/// root, then every shim of the daemon's socket.
struct Cleanup<'a> {
    runc_root: &'a Path,
    socket: &'a Path,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        shims::delete_containers_in(self.runc_root);
        let left = shims::shims_of(self.socket);
        if !left.is_empty() {
            eprintln!(
                "warning: shims {left:?} still running at the end of the round; killing them"
            );
            shims::kill_shims_of(self.socket);
        }
    }
}

/// One round of one daemon in `dir`; `tag` makes its container IDs (and so their cgroups,
/// `/<namespace>/<id>`) unique across the run.
fn measure(
    plan: &Plan,
    subject: &Subject,
    image: &[u8],
    tag: &str,
    dir: &Path,
) -> anyhow::Result<Round> {
    let mut launch = subject.prepare(dir)?;
    let (mut daemon, _, _) = boot::boot(plan.boot_timeout, subject, &mut launch)?;
    let pid = daemon.child().id();
    let runc_root = dir.join("runc");
    let socket = launch.socket.clone();
    // Declared after the daemon: dropped (containers and shims killed) before it is.
    let _cleanup = Cleanup {
        runc_root: &runc_root,
        socket: &socket,
    };
    let ctr = Ctr {
        binary: &plan.ctr,
        socket: &socket,
        runc_root: runc_root.to_string_lossy().into_owned(),
    };
    let tar = dir.join("bb.tar");
    std::fs::write(&tar, image)?;
    ctr.ok(&["images", "import", &tar.to_string_lossy()])?;

    // The warm-up: the shim's and runc's pages in the cache, the daemon's first-call costs paid.
    let warm = format!("{tag}-warm");
    ctr.ok(&ctr.run_args(&["--rm"], &warm, &["true"]))?;
    let mut run_ms = Vec::new();
    for i in 0..plan.runs {
        let id = format!("{tag}-run{i}");
        let args = ctr.run_args(&["--rm"], &id, &["true"]);
        let start = Instant::now();
        let out = ctr.output(&args)?;
        let elapsed = start.elapsed();
        check(&args, &out)?;
        run_ms.push(elapsed.as_secs_f64() * 1e3);
    }
    wait_for_shims_to_exit(&socket)?;

    let ids: Vec<String> = (0..plan.parallel)
        .map(|i| format!("{tag}-par{i}"))
        .collect();
    let start_all_s = start_all(&ctr, &ids)?;
    let running = ctr.list(&["tasks", "ls"])?;
    let running = running.iter().filter(|l| l.contains("RUNNING")).count();
    if running != ids.len() {
        bail!("{running} of {} tasks running after the start", ids.len());
    }
    let started = Instant::now();
    std::thread::sleep(SOON);
    let status = procfs::status(pid)?;
    let shims_running = shims::shims_of(&socket).len();
    if shims_running != ids.len() {
        bail!("{shims_running} shims for {} tasks", ids.len());
    }
    std::thread::sleep(LATER.saturating_sub(started.elapsed()));
    let later = procfs::status(pid)?;
    let (stop_all_s, rm_retries) = stop_all(&ctr, &ids)?;
    let left = ctr.list(&["tasks", "ls", "-q"])?;
    let containers = ctr.list(&["containers", "ls", "-q"])?;
    if !left.is_empty() || !containers.is_empty() {
        bail!("left after the stop: tasks {left:?}, containers {containers:?}");
    }
    wait_for_shims_to_exit(&socket)?;
    daemon.stop()?;
    Ok(Round {
        run_ms,
        start_all_s,
        stop_all_s,
        rss_mib: boot::mib(status.vm_rss_kib),
        threads: status.threads,
        rss_later_mib: boot::mib(later.vm_rss_kib),
        threads_later: later.threads,
        rm_retries,
    })
}

/// Starts one `ctr run -d … sleep 1000` per ID at once; the wall time until every one returned.
fn start_all(ctr: &Ctr, ids: &[String]) -> anyhow::Result<f64> {
    let start = Instant::now();
    let children: Vec<(Vec<&str>, anyhow::Result<Child>)> = ids
        .iter()
        .map(|id| {
            let args = ctr.run_args(&["-d"], id, &["sleep", "1000"]);
            let child = ctr.spawn(&args);
            (args, child)
        })
        .collect();
    // Every started ctr is waited for before an error is returned.
    let mut first_error = None;
    for (args, child) in children {
        let result = child
            .and_then(|c| c.wait_with_output().context("waiting for ctr"))
            .and_then(|out| check(&args, &out));
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    match first_error {
        Some(e) => Err(e),
        None => Ok(elapsed),
    }
}

/// Stops every container at once, one thread each: kill, then `tasks rm` (repeated while the
/// task is still seen running), then `containers rm`. Returns the wall time and the repeats.
fn stop_all(ctr: &Ctr, ids: &[String]) -> anyhow::Result<(f64, u32)> {
    let start = Instant::now();
    let results: Vec<anyhow::Result<u32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| scope.spawn(move || stop_one(ctr, id)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| bail!("a stop thread panicked")))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut retries = 0;
    for result in results {
        retries += result?;
    }
    Ok((elapsed, retries))
}

fn stop_one(ctr: &Ctr, id: &str) -> anyhow::Result<u32> {
    ctr.ok(&["tasks", "kill", "-s", "KILL", id])?;
    let deadline = Instant::now() + RM_PATIENCE;
    let mut retries = 0;
    loop {
        let args = ["tasks", "rm", id];
        let out = ctr.output(&args)?;
        if out.status.success() {
            break;
        }
        // Both daemons answer FailedPrecondition until the shim has reported the exit.
        let stderr = String::from_utf8_lossy(&out.stderr);
        if Instant::now() >= deadline || !stderr.contains("precondition") {
            check(&args, &out)?;
        }
        retries += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    ctr.ok(&["containers", "rm", id])?;
    Ok(retries)
}

fn wait_for_shims_to_exit(socket: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + SHIM_EXIT;
    loop {
        let left = shims::shims_of(socket);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("shims {left:?} still running {SHIM_EXIT:?} after their tasks were deleted");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One figure of a round, for a row of the report.
type Figure = fn(&Round) -> f64;

pub fn render(plan: &Plan, results: &Results) -> String {
    let names: Vec<String> = plan.subjects.iter().map(|s| s.to_string()).collect();
    let mut out = format!(
        "`ctr run` of the busybox image with {} (overlayfs, runc {SHIM}) on daemons in {}, {} rounds \
         ({}); in each round, after one warm-up run, {} timed `ctr run --rm … true`, then {} \
         `ctr run -d … sleep 1000` at once and all of them stopped at once.\n\n",
        plan.ctr.display(),
        plan.filesystem,
        plan.rounds,
        crate::rounds::describe(&names),
        plan.runs,
        plan.parallel,
    );
    let Some((ours, theirs)) = results.rounds.split_first() else {
        return out;
    };
    let medians = |rounds: &[Round]| -> Vec<f64> {
        rounds
            .iter()
            .filter_map(|r| Spread::of(&r.run_ms).map(|s| s.median))
            .collect()
    };
    out.push_str(
        "| daemon | `ctr run --rm` ms, every run: min / median / max | round medians min / median / max \
         | containerd ÷ rcontainerd (round medians, round by round) |\n|---|---:|---:|---:|\n",
    );
    for (name, rounds) in names.iter().zip(&results.rounds) {
        let all: Vec<f64> = rounds
            .iter()
            .flat_map(|r| r.run_ms.iter().copied())
            .collect();
        let ratio = if std::ptr::eq(rounds, ours) {
            "–".to_string()
        } else {
            spread(&crate::stats::ratios(&medians(rounds), &medians(ours)), 2)
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {ratio} |",
            spread(&all, 1),
            spread(&medians(rounds), 1)
        );
    }
    if let Some(theirs) = theirs.first() {
        let ratios = crate::stats::ratios(&medians(theirs), &medians(ours));
        let met = Spread::of(&ratios).is_some_and(|r| r.median >= AIM);
        let _ = writeln!(
            out,
            "\nAim: containerd ÷ rcontainerd ≥ {AIM}× on `ctr run --rm`: {}.",
            if met {
                "met (median)"
            } else {
                "not met (median)"
            }
        );
    }
    let _ = writeln!(
        out,
        "\n| {} containers | rcontainerd min / median / max | {} min / median / max \
         | containerd ÷ rcontainerd (round by round) |\n|---|---:|---:|---:|",
        plan.parallel,
        names.get(1).map(String::as_str).unwrap_or("–"),
    );
    let soon = format!("{} s", SOON.as_secs());
    let later = format!("{} s", LATER.as_secs());
    let rows: [(&str, &str, usize, Figure); 6] = [
        ("start all (s)", "", 2, |r| r.start_all_s),
        ("stop all (s)", "", 2, |r| r.stop_all_s),
        ("daemon RSS (MiB), running, ", &soon, 1, |r| r.rss_mib),
        ("daemon threads, running, ", &soon, 0, |r| r.threads as f64),
        ("daemon RSS (MiB), running, ", &later, 1, |r| {
            r.rss_later_mib
        }),
        ("daemon threads, running, ", &later, 0, |r| {
            r.threads_later as f64
        }),
    ];
    for (label, after, decimals, figure) in rows {
        let label = if after.is_empty() {
            label.to_string()
        } else {
            format!("{label}{after} after the start")
        };
        let a: Vec<f64> = ours.iter().map(figure).collect();
        let b: Vec<f64> = theirs
            .first()
            .map(|t| t.iter().map(figure).collect())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} |",
            spread(&a, decimals),
            spread(&b, decimals),
            spread(&crate::stats::ratios(&b, &a), 2)
        );
    }
    let retries: Vec<String> = names
        .iter()
        .zip(&results.rounds)
        .map(|(name, rounds)| {
            let total: u32 = rounds.iter().map(|r| r.rm_retries).sum();
            format!("{name} {total}")
        })
        .collect();
    let _ = writeln!(
        out,
        "\n`tasks rm` repeated because the killed task was not yet seen stopped (all rounds): {}.",
        retries.join(", ")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::ContainerdConfig;

    fn round(run_ms: &[f64], start_all_s: f64, rss_mib: f64, threads: u64) -> Round {
        Round {
            run_ms: run_ms.to_vec(),
            start_all_s,
            stop_all_s: 1.0,
            rss_mib,
            threads,
            rss_later_mib: rss_mib,
            threads_later: threads,
            rm_retries: 1,
        }
    }

    #[test]
    fn report_pairs_round_medians_as_containerd_over_rcontainerd() {
        let plan = Plan {
            subjects: vec![
                Subject::Rcontainerd {
                    binary: "/r".into(),
                    isolated: false,
                },
                Subject::Containerd {
                    binary: "/c".into(),
                    config: ContainerdConfig::NoCri,
                },
            ],
            rounds: 2,
            runs: 3,
            parallel: 50,
            ctr: "/usr/bin/ctr".into(),
            boot_timeout: Duration::from_secs(1),
            tmp_dir: None,
            filesystem: "tmpfs".into(),
        };
        let results = Results {
            rounds: vec![
                vec![
                    round(&[80.0, 100.0, 300.0], 2.0, 35.0, 10),
                    round(&[90.0, 100.0, 110.0], 4.0, 36.0, 12),
                ],
                vec![
                    round(&[120.0, 130.0, 140.0], 3.0, 56.0, 20),
                    round(&[100.0, 150.0, 160.0], 3.0, 54.0, 18),
                ],
            ],
        };
        let text = render(&plan, &results);
        // Medians 100 and 100 against 130 and 150: ratios 1.30 and 1.50.
        assert!(
            text.contains("| containerd (CRI disabled) | 100.0 / 135.0 / 160.0 | 130.0 / 140.0 / 150.0 | 1.30 / 1.40 / 1.50 |"),
            "{text}"
        );
        assert!(text.contains("met (median)"), "{text}");
        assert!(
            text.contains(
                "| start all (s) | 2.00 / 3.00 / 4.00 | 3.00 / 3.00 / 3.00 | 0.75 / 1.12 / 1.50 |"
            ),
            "{text}"
        );
        assert!(
            text.contains("rcontainerd 2, containerd (CRI disabled) 2."),
            "{text}"
        );
    }
}
