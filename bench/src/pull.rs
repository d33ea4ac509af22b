//! The pull benchmark: each daemon pulls the import benchmark's image from a local registry
//! (Debian's `docker-registry` on 127.0.0.1, the image pushed with `skopeo`), rcontainerd with
//! our ctr and containerd with its own, each daemon started in a fresh directory, alternating
//! round by round. The figure is the wall time of `ctr images pull --plain-http`: fetching the
//! blobs and unpacking the layer.

use crate::import::{timed_ctr, Contestant};
use crate::throughput_report::spread;
use anyhow::{bail, Context};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Plan {
    /// rcontainerd first, then containerd.
    pub contestants: Vec<Contestant>,
    /// The ctr each contestant is driven with.
    pub ctrs: Vec<PathBuf>,
    pub rounds: u32,
    pub tarball: PathBuf,
    pub boot_timeout: Duration,
    pub tmp_dir: Option<PathBuf>,
    pub filesystem: String,
}

pub struct Results {
    pub seconds: Vec<Vec<f64>>,
}

/// A registry serving from a temporary directory; killed on drop.
struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Registry {
    fn start() -> anyhow::Result<Registry> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry (Debian package docker-registry)")?;
        let registry = Registry {
            child,
            _dir: dir,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("docker-registry did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn push(tarball: &Path, reference: &str) -> anyhow::Result<()> {
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}", tarball.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .context("running skopeo (Debian package skopeo)")?;
    if !out.status.success() {
        bail!("skopeo copy: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

pub fn run(plan: &Plan) -> anyhow::Result<Results> {
    let registry = Registry::start()?;
    let reference = format!("127.0.0.1:{}/bench/import:latest", registry.port);
    push(&plan.tarball, &reference)?;
    let args = [
        "images",
        "pull",
        "--plain-http",
        "--snapshotter",
        "overlayfs",
        reference.as_str(),
    ];
    let mut seconds: Vec<Vec<f64>> = plan.contestants.iter().map(|_| Vec::new()).collect();
    for round in 1..=plan.rounds {
        for c in crate::rounds::order(round, plan.contestants.len()) {
            let contestant = &plan.contestants[c];
            let s = timed_ctr(
                contestant,
                plan.tmp_dir.as_deref(),
                plan.boot_timeout,
                &plan.ctrs[c],
                &args,
            )
            .with_context(|| format!("round {round} of {}", contestant.name))?;
            eprintln!("round {round:>2}  {:<27} {s:.2} s", contestant.name);
            seconds[c].push(s);
        }
    }
    Ok(Results { seconds })
}

pub fn render(plan: &Plan, results: &Results) -> String {
    let mut out = format!(
        "Pull of {} from a local docker-registry (plain HTTP) into daemons on {}, {} rounds; wall \
         time of `ctr images pull` (lower is better).\n\n\
         | daemon (ctr) | s min / median / max | containerd ÷ rcontainerd (round by round) |\n|---|---:|---:|\n",
        plan.tarball.display(),
        plan.filesystem,
        plan.rounds
    );
    let ours = &results.seconds[0];
    for (c, contestant) in plan.contestants.iter().enumerate() {
        let times = &results.seconds[c];
        let speedup = if c == 0 {
            "–".to_string()
        } else {
            let r: Vec<f64> = times.iter().zip(ours).map(|(t, o)| t / o).collect();
            spread(&r, 2)
        };
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {speedup} |",
            contestant.name,
            plan.ctrs[c].display(),
            spread(times, 2)
        );
    }
    out
}
