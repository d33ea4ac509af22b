//! `rcontainerd-bench`: side-by-side measurements of rcontainerd against containerd 1.6.
//!
//! A bench binary rather than a test: it reports numbers, it does not assert them.
//! Results and the commands that produced them live in `docs/benchmarks.md`.

mod apply;
mod boot;
mod client;
mod content;
mod daemon;
mod gc;
mod import;
mod isolated_report;
mod probe;
mod procfs;
mod pull;
mod records;
mod report;
mod restart;
mod rounds;
mod run;
mod session;
mod snapshots;
mod stats;
mod throughput_report;
mod workdir;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "rcontainerd-bench",
    about = "benchmarks rcontainerd against containerd 1.6"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Boot time (exec to first answered Version RPC) and idle RSS, daemons alternating run by run.
    Boot(BootArgs),
    /// Snapshots service: Prepare+Commit pairs/s (1 and N clients) and Mounts/s on a long chain.
    Snapshots(SnapshotsArgs),
    /// Content service: large blob write/read MB/s (vs dd conv=fdatasync) and small blobs/s.
    Content(ContentArgs),
    /// Garbage collection: time to collect many snapshots and blobs, and unrelated calls' p99 meanwhile.
    Gc(GcArgs),
    /// Images and Containers services: Create, Get, List and Delete calls/s (1 and N clients).
    Records(RecordsArgs),
    /// `ctr images import` (Debian's ctr) of one OCI tarball with a large gzip layer of real files.
    Import(ImportArgs),
    /// Diff.Apply MB/s of the import benchmark's layer as plain tar, gzip and zstd.
    Apply(ApplyArgs),
    /// `ctr images pull` of the import benchmark's image from a local registry: our ctr into
    /// rcontainerd, containerd's into containerd.
    Pull(PullArgs),
    /// Restart on a large store: exec → first answered Version and data calls (warm and cold cache).
    Restart(RestartArgs),
    /// `ctr run --rm … true` of a busybox image (Debian's ctr), and many containers started and
    /// stopped at once with the daemon's RSS and threads while they run.
    Run(RunArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    compare: CompareArgs,
    /// The ctr that runs the containers (containerd's, as the issue asks).
    #[arg(long, default_value = "/usr/bin/ctr")]
    ctr: PathBuf,
    /// Timed `ctr run --rm … true` per daemon and round (after one warm-up).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Containers started at once, then stopped at once.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    parallel: u32,
    /// Run the daemons on a tmpfs mounted for the run (else in --tmp-dir, or the temp dir).
    #[arg(long)]
    tmpfs: bool,
}

#[derive(clap::Args, Debug)]
struct PullArgs {
    #[command(flatten)]
    compare: CompareArgs,
    /// Our ctr [default: next to the rcontainerd binary].
    #[arg(long)]
    our_ctr: Option<PathBuf>,
    /// containerd's ctr.
    #[arg(long, default_value = "/usr/bin/ctr")]
    ctr: PathBuf,
    #[command(flatten)]
    layer: LayerArgs,
}

#[derive(clap::Args, Debug)]
struct ApplyArgs {
    #[command(flatten)]
    compare: CompareArgs,
    #[command(flatten)]
    layer: LayerArgs,
}

#[derive(clap::Args, Debug)]
struct ImportArgs {
    #[command(flatten)]
    compare: CompareArgs,
    /// The ctr that imports (containerd's, as the issue asks).
    #[arg(long, default_value = "/usr/bin/ctr")]
    ctr: PathBuf,
    #[command(flatten)]
    layer: LayerArgs,
}

const DEFAULT_TARBALL: &str = "/var/tmp/rcontainerd-bench-import.tar";

/// The import benchmark's one-layer image, which the import, apply and pull benchmarks share, and
/// where their daemons run.
#[derive(clap::Args, Debug)]
struct LayerArgs {
    /// The OCI tarball; made (and kept) when missing.
    #[arg(long, default_value = DEFAULT_TARBALL)]
    tarball: PathBuf,
    /// Where the layer's files come from when the tarball is made.
    #[arg(long, default_value = "/usr/lib")]
    source: PathBuf,
    /// File data in the image when the tarball is made.
    #[arg(long, default_value_t = 600)]
    layer_mib: u64,
    /// Layers the image's files are cut into when the tarball is made (import and pull); more
    /// than one changes the default tarball to `/var/tmp/rcontainerd-bench-import-<N>layers.tar`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    layers: u32,
    /// Run the daemons on a tmpfs mounted for the run (else in --tmp-dir, or the temp dir).
    #[arg(long)]
    tmpfs: bool,
}

impl LayerArgs {
    /// The tarball: as given, or the default one of this many layers.
    fn tarball(&self) -> PathBuf {
        if self.layers > 1 && self.tarball == Path::new(DEFAULT_TARBALL) {
            return PathBuf::from(format!(
                "/var/tmp/rcontainerd-bench-import-{}layers.tar",
                self.layers
            ));
        }
        self.tarball.clone()
    }

    /// The tmpfs mounted for the run (with `--tmpfs`; unmounted when dropped) and the directory the
    /// daemons' run directories go in.
    fn run_dirs(
        &self,
        compare: &CompareArgs,
    ) -> anyhow::Result<(Option<import::Tmpfs>, Option<PathBuf>)> {
        if !self.tmpfs {
            return Ok((None, compare.tmp_dir.clone()));
        }
        let tmpfs = import::Tmpfs::mount(compare.tmp_dir.as_deref())?;
        let dir = tmpfs.path().to_path_buf();
        Ok((Some(tmpfs), Some(dir)))
    }
}

/// What every throughput benchmark shares: the two daemons, rounds, where they run.
#[derive(clap::Args, Debug)]
struct CompareArgs {
    /// rcontainerd release binary; its plugins are loaded from its directory
    /// [default: $CARGO_TARGET_DIR/release/rcontainerd, else ./target/release/rcontainerd].
    #[arg(long)]
    rcontainerd: Option<PathBuf>,
    /// containerd binary to compare against.
    #[arg(long, default_value = "/usr/bin/containerd")]
    containerd: PathBuf,
    /// containerd configuration: `no-cri` (CRI plugin disabled) or `stock`.
    #[arg(long, value_enum, default_value = "no-cri")]
    containerd_config: daemon::ContainerdConfig,
    /// Rounds; each round starts each daemon once in a fresh directory, in an order that alternates
    /// round by round (rcontainerd first in odd rounds).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Give up on a daemon that has not answered Version within this many seconds.
    #[arg(long, default_value_t = 30)]
    boot_timeout_s: u64,
    /// Parent of the per-run temporary directories [default: the system temp dir].
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Also measure rcontainerd with its snapshotters and content store isolated
    /// (`isolation = "process"`), as a third daemon in every round (snapshots and content only).
    #[arg(long)]
    isolated: bool,
}

impl CompareArgs {
    /// rcontainerd and containerd, for the benchmarks that compare two daemons.
    fn subjects(&self) -> anyhow::Result<Vec<daemon::Subject>> {
        anyhow::ensure!(
            !self.isolated,
            "--isolated: only the snapshots and content benchmarks measure isolated drivers"
        );
        Ok(self.subjects_and_isolated())
    }

    /// rcontainerd, containerd and, with `--isolated`, rcontainerd with isolated drivers last (see
    /// [`isolated_report`]).
    fn subjects_and_isolated(&self) -> Vec<daemon::Subject> {
        let rcontainerd = self.rcontainerd.clone().unwrap_or_else(default_rcontainerd);
        let mut subjects = vec![
            daemon::Subject::Rcontainerd {
                binary: rcontainerd.clone(),
                isolated: false,
            },
            daemon::Subject::Containerd {
                binary: self.containerd.clone(),
                config: self.containerd_config,
            },
        ];
        if self.isolated {
            subjects.push(daemon::Subject::Rcontainerd {
                binary: rcontainerd,
                isolated: true,
            });
        }
        subjects
    }
}

#[derive(clap::Args, Debug)]
struct SnapshotsArgs {
    #[command(flatten)]
    compare: CompareArgs,
    /// Snapshotters to measure, in order.
    #[arg(long, value_delimiter = ',', default_value = "overlayfs,native")]
    snapshotters: Vec<String>,
    /// Prepare+Commit pairs made by the single client.
    #[arg(long, default_value_t = 300)]
    pairs: u32,
    /// Concurrent clients (one connection each) in the second measurement.
    #[arg(long, default_value_t = 8)]
    clients: u32,
    /// Pairs made by each of the concurrent clients.
    #[arg(long, default_value_t = 100)]
    pairs_each: u32,
    /// Committed layers in the chain under the Mounts key.
    #[arg(long, default_value_t = 200)]
    chain: u32,
    /// Mounts calls timed on the key on top of the chain.
    #[arg(long, default_value_t = 1000)]
    mounts_calls: u32,
}

#[derive(clap::Args, Debug)]
struct ContentArgs {
    #[command(flatten)]
    compare: CompareArgs,
    /// Size of the large blob (also dd's count of 1 MiB blocks).
    #[arg(long, default_value_t = 1024)]
    large_mib: usize,
    /// Chunk size of the large blob's WRITE messages.
    #[arg(long, default_value_t = 1)]
    chunk_mib: usize,
    /// Small blobs written, one Write stream each.
    #[arg(long, default_value_t = 2000)]
    small_count: usize,
    /// Size of each small blob.
    #[arg(long, default_value_t = 4096)]
    small_bytes: usize,
}

#[derive(clap::Args, Debug)]
struct GcArgs {
    #[command(flatten)]
    compare: CompareArgs,
    /// Active snapshots to collect.
    #[arg(long, default_value_t = 10_000)]
    snapshots: usize,
    /// Small blobs to collect.
    #[arg(long, default_value_t = 10_000)]
    blobs: usize,
}

#[derive(clap::Args, Debug)]
struct RecordsArgs {
    #[command(flatten)]
    compare: CompareArgs,
    /// Calls of each kind but List (image and container Create, Get, Delete) made by the single client.
    #[arg(long, default_value_t = 1000)]
    ops: u32,
    /// Concurrent clients (one connection each) in the second measurement.
    #[arg(long, default_value_t = 8)]
    clients: u32,
    /// Calls of each kind but List made by each of the concurrent clients.
    #[arg(long, default_value_t = 125)]
    ops_each: u32,
    /// List calls in each measurement (shared out between its clients), with every record it
    /// created present.
    #[arg(long, default_value_t = 200)]
    list_calls: u32,
}

#[derive(clap::Args, Debug)]
struct RestartArgs {
    #[command(flatten)]
    compare: CompareArgs,
    /// Timed restarts per daemon and round, page cache warm.
    #[arg(long, default_value_t = 5)]
    restarts: u32,
    /// Also time cold restarts: `sync; echo 3 > /proc/sys/vm/drop_caches` before each (root).
    #[arg(long)]
    cold: bool,
    /// Cold restarts per daemon and round, with --cold.
    #[arg(long, default_value_t = 2)]
    cold_restarts: u32,
    /// Snapshot chains in the store.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    chains: u64,
    /// Committed layers in each chain.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    chain_len: u64,
    /// Small blobs in the store (at least as many as images).
    #[arg(long, default_value_t = 20_000)]
    blobs: usize,
    /// Images in the store, each targeting its own blob.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    images: u64,
    /// Concurrent clients filling the store (one connection each).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    clients: u64,
    /// Leave each daemon's filled run directory in place and print where (to profile by hand).
    #[arg(long)]
    keep: bool,
}

#[derive(clap::Args, Debug)]
struct BootArgs {
    /// rcontainerd release binary; its plugins are loaded from its directory
    /// [default: $CARGO_TARGET_DIR/release/rcontainerd, else ./target/release/rcontainerd].
    #[arg(long)]
    rcontainerd: Option<PathBuf>,
    /// containerd binary to compare against.
    #[arg(long, default_value = "/usr/bin/containerd")]
    containerd: PathBuf,
    /// Measured runs per daemon (after one warm-up run each).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Which containerd configurations to compare with: `stock`, `no-cri` (CRI plugin disabled), or both.
    #[arg(long, value_delimiter = ',', default_value = "stock,no-cri")]
    containerd_configs: Vec<daemon::ContainerdConfig>,
    /// How long each daemon idles after its first answer before its RSS is read.
    #[arg(long, default_value_t = 1000)]
    idle_ms: u64,
    /// Give up on a daemon that has not answered Version within this many seconds.
    #[arg(long, default_value_t = 30)]
    boot_timeout_s: u64,
    /// Parent of the per-run temporary directories [default: the system temp dir].
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Time a restart instead of a first boot: each run boots the daemon once untimed, stops it, and
    /// times a second boot on the root and state the first left behind.
    #[arg(long)]
    restart: bool,
    /// Skip the sync(2) before each timed boot, letting each daemon's syncs also flush what the runs
    /// before it wrote.
    #[arg(long)]
    no_sync: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Boot(args) => {
            let plan = boot::Plan {
                rcontainerd: args.rcontainerd.unwrap_or_else(default_rcontainerd),
                containerd: args.containerd,
                containerd_configs: dedup(args.containerd_configs),
                runs: args.runs,
                idle: std::time::Duration::from_millis(args.idle_ms),
                boot_timeout: std::time::Duration::from_secs(args.boot_timeout_s),
                tmp_dir: args.tmp_dir,
                restart: args.restart,
                sync_first: !args.no_sync,
            };
            let results = boot::run(&plan)?;
            print!("{}", report::render(&plan, &results));
            Ok(())
        }
        Command::Snapshots(args) => {
            let plan = snapshots::Plan {
                subjects: args.compare.subjects_and_isolated(),
                snapshotters: args.snapshotters,
                rounds: args.compare.rounds,
                pairs_one: args.pairs,
                clients: args.clients,
                pairs_each: args.pairs_each,
                chain: args.chain,
                mounts_calls: args.mounts_calls,
                boot_timeout: std::time::Duration::from_secs(args.compare.boot_timeout_s),
                tmp_dir: args.compare.tmp_dir,
            };
            let results = snapshots::run(&plan)?;
            print!("{}", snapshots::render(&plan, &results));
            Ok(())
        }
        Command::Content(args) => {
            let plan = content::Plan {
                subjects: args.compare.subjects_and_isolated(),
                rounds: args.compare.rounds,
                large_mib: args.large_mib,
                chunk_mib: args.chunk_mib,
                small_count: args.small_count,
                small_bytes: args.small_bytes,
                boot_timeout: std::time::Duration::from_secs(args.compare.boot_timeout_s),
                tmp_dir: args.compare.tmp_dir,
            };
            let results = content::run(&plan)?;
            print!("{}", content::render(&plan, &results));
            Ok(())
        }
        Command::Gc(args) => {
            let plan = gc::Plan {
                subjects: args.compare.subjects()?,
                rounds: args.compare.rounds,
                snapshots: args.snapshots,
                blobs: args.blobs,
                boot_timeout: std::time::Duration::from_secs(args.compare.boot_timeout_s),
                tmp_dir: args.compare.tmp_dir,
            };
            let results = gc::run(&plan)?;
            print!("{}", gc::render(&plan, &results));
            Ok(())
        }
        Command::Import(args) => {
            let subjects = args.compare.subjects()?;
            let (tmpfs, tmp_dir) = args.layer.run_dirs(&args.compare)?;
            let plan = import::Plan {
                contestants: import::contestants(subjects[0].clone(), subjects[1].clone()),
                rounds: args.compare.rounds,
                ctr: args.ctr,
                tarball: args.layer.tarball(),
                source: args.layer.source,
                layer_mib: args.layer.layer_mib,
                layers: args.layer.layers,
                boot_timeout: std::time::Duration::from_secs(args.compare.boot_timeout_s),
                filesystem: import::filesystem_of(tmp_dir.as_deref()),
                tmp_dir,
            };
            let results = import::run(&plan)?;
            print!("{}", import::render(&plan, &results));
            drop(tmpfs);
            Ok(())
        }
        Command::Pull(args) => {
            let subjects = args.compare.subjects()?;
            let rcontainerd = subjects[0].binary().to_path_buf();
            let our_ctr = args
                .our_ctr
                .clone()
                .unwrap_or_else(|| rcontainerd.with_file_name("ctr"));
            let (tmpfs, tmp_dir) = args.layer.run_dirs(&args.compare)?;
            // The tarball is made here when missing (the import benchmark's).
            let tarball = args.layer.tarball();
            import::ensure(
                &tarball,
                &args.layer.source,
                args.layer.layer_mib,
                args.layer.layers,
            )?;
            let mut contestants = import::contestants(subjects[0].clone(), subjects[1].clone());
            contestants.truncate(2);
            let plan = pull::Plan {
                contestants,
                ctrs: vec![our_ctr, args.ctr],
                rounds: args.compare.rounds,
                tarball,
                boot_timeout: std::time::Duration::from_secs(args.compare.boot_timeout_s),
                filesystem: import::filesystem_of(tmp_dir.as_deref()),
                tmp_dir,
            };
            let results = pull::run(&plan)?;
            print!("{}", pull::render(&plan, &results));
            drop(tmpfs);
            Ok(())
        }
        Command::Apply(args) => {
            let (tmpfs, tmp_dir) = args.layer.run_dirs(&args.compare)?;
            let layers = apply::layers(
                &args.layer.tarball,
                &args.layer.source,
                args.layer.layer_mib,
            )?;
            let plan = apply::Plan {
                subjects: args.compare.subjects()?,
                rounds: args.compare.rounds,
                boot_timeout: std::time::Duration::from_secs(args.compare.boot_timeout_s),
                source: format!(
                    "{} on {}",
                    args.layer.tarball.display(),
                    import::filesystem_of(tmp_dir.as_deref())
                ),
                tmp_dir,
                formats: layers.formats,
                diff_id: layers.diff_id,
                tar_bytes: layers.tar_bytes,
            };
            let results = apply::run(&plan)?;
            print!("{}", apply::render(&plan, &results));
            drop(tmpfs);
            Ok(())
        }
        Command::Records(args) => {
            let plan = records::Plan {
                subjects: args.compare.subjects()?,
                rounds: args.compare.rounds,
                ops_one: args.ops,
                clients: args.clients,
                ops_each: args.ops_each,
                list_calls: args.list_calls,
                boot_timeout: std::time::Duration::from_secs(args.compare.boot_timeout_s),
                tmp_dir: args.compare.tmp_dir,
            };
            let results = records::run(&plan)?;
            print!("{}", records::render(&plan, &results));
            Ok(())
        }
        Command::Restart(args) => {
            let images = usize::try_from(args.images)?;
            anyhow::ensure!(
                args.blobs >= images,
                "--blobs must be at least --images: each image targets its own blob"
            );
            let plan = restart::Plan {
                subjects: args.compare.subjects()?,
                rounds: args.compare.rounds,
                restarts: args.restarts,
                cold_restarts: if args.cold { args.cold_restarts } else { 0 },
                chains: usize::try_from(args.chains)?,
                chain_len: usize::try_from(args.chain_len)?,
                blobs: args.blobs,
                images,
                clients: usize::try_from(args.clients)?,
                boot_timeout: std::time::Duration::from_secs(args.compare.boot_timeout_s),
                tmp_dir: args.compare.tmp_dir,
                keep: args.keep,
            };
            let results = restart::run(&plan)?;
            print!("{}", restart::render(&plan, &results));
            Ok(())
        }
        Command::Run(args) => {
            let tmpfs = if args.tmpfs {
                Some(import::Tmpfs::mount(args.compare.tmp_dir.as_deref())?)
            } else {
                None
            };
            let tmp_dir = match &tmpfs {
                Some(t) => Some(t.path().to_path_buf()),
                None => args.compare.tmp_dir.clone(),
            };
            let plan = run::Plan {
                subjects: args.compare.subjects()?,
                rounds: args.compare.rounds,
                runs: args.runs,
                parallel: args.parallel,
                ctr: args.ctr,
                boot_timeout: std::time::Duration::from_secs(args.compare.boot_timeout_s),
                filesystem: import::filesystem_of(tmp_dir.as_deref()),
                tmp_dir,
            };
            let results = run::run(&plan)?;
            print!("{}", run::render(&plan, &results));
            drop(tmpfs);
            Ok(())
        }
    }
}

/// Where `cargo build --release -p rcontainerd` puts the daemon.
fn default_rcontainerd() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("release").join("rcontainerd")
}

fn dedup(mut configs: Vec<daemon::ContainerdConfig>) -> Vec<daemon::ContainerdConfig> {
    let mut seen = Vec::new();
    configs.retain(|c| {
        let fresh = !seen.contains(c);
        seen.push(*c);
        fresh
    });
    configs
}
