//! The restart benchmark: how long a daemon takes to answer again when it restarts on a large
//! store, daemons alternating round by round.
//!
//! Each daemon gets its own run directory, filled once through gRPC (in its first round) with the
//! same data: `chains × chain_len` committed overlayfs snapshots (a small file in each layer),
//! `blobs` small distinct blobs and `images` images, each image targeting a blob whose
//! `containerd.io/gc.ref.snapshot.overlayfs` label names the top of a chain — all made under one
//! lease, so that neither daemon's collector may remove any of it. The daemon is then stopped
//! (SIGTERM), and every restart after that is timed from just before exec to the first answered
//! `Version` and to the first answered data calls: `Snapshots.Stat` of the last snapshot made,
//! then `Images.Get` of the last image. Each restart follows a `sync(2)`; a cold restart also
//! drops the page cache first (`/proc/sys/vm/drop_caches`), as after a reboot.

use crate::boot::{self, ms, Daemon};
use crate::client;
use crate::daemon::{Launch, Subject};
use crate::procfs;
use crate::stats::Spread;
use crate::throughput_report::{spread, table_paired, Aim, Row};
use crate::workdir::WorkDir;
use anyhow::{ensure, Context};
use rcontainerd_api::client::Headers;
use rcontainerd_api::services::content::{
    content_client::ContentClient, WriteAction, WriteContentRequest,
};
use rcontainerd_api::services::images::{
    images_client::ImagesClient, CreateImageRequest, GetImageRequest, Image, ListImagesRequest,
};
use rcontainerd_api::services::snapshots::{
    snapshots_client::SnapshotsClient, CommitSnapshotRequest, PrepareSnapshotRequest,
    StatSnapshotRequest,
};
use rcontainerd_api::types::{Descriptor, Mount};
use sha2::Digest as _;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const NAMESPACE: &str = "bench-restart";
const SNAPSHOTTER: &str = "overlayfs";
const IMAGE_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Pause between attempts at the data calls while the daemon is not ready for them.
const RETRY: Duration = Duration::from_millis(1);
/// The aim: ours / containerd, for the restart times.
const AIM: f64 = 0.3;

pub struct Plan {
    pub subjects: Vec<Subject>,
    pub rounds: u32,
    /// Timed warm restarts per daemon and round.
    pub restarts: u32,
    /// Timed cold restarts (page cache dropped first) per daemon and round.
    pub cold_restarts: u32,
    pub chains: usize,
    pub chain_len: usize,
    pub blobs: usize,
    pub images: usize,
    /// Concurrent clients (one connection each) filling the store.
    pub clients: usize,
    pub boot_timeout: Duration,
    pub tmp_dir: Option<PathBuf>,
    /// Leave the filled run directories in place (for profiling a restart by hand).
    pub keep: bool,
}

impl Plan {
    fn snapshots(&self) -> usize {
        self.chains * self.chain_len
    }

    /// The blob image `k` targets.
    fn image_blob(&self, k: usize) -> usize {
        k * self.blobs / self.images
    }

    /// The image that targets blob `j`, if one does.
    fn image_of_blob(&self, j: usize) -> Option<usize> {
        let k = (j * self.images).div_ceil(self.blobs);
        (k < self.images && self.image_blob(k) == j).then_some(k)
    }
}

/// One timed restart.
#[derive(Debug, Clone, Copy)]
pub struct Restart {
    /// Exec → first answered Version, ms.
    pub version_ms: f64,
    /// Exec → Snapshots.Stat answered, ms.
    pub stat_ms: f64,
    /// Exec → Snapshots.Stat and then Images.Get answered, ms.
    pub data_ms: f64,
    /// VmRSS right after the data calls were answered, MiB.
    pub rss_mib: f64,
    /// SIGTERM → exit, ms.
    pub stop_ms: f64,
}

/// What one daemon did in one round.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// Seconds spent filling the store (first round only).
    pub populate_s: Option<f64>,
    /// The first restart after filling the store (first round only): the only one that may
    /// replay what the filling left in write-ahead logs.
    pub first: Option<Restart>,
    pub warm: Vec<Restart>,
    pub cold: Vec<Restart>,
}

pub struct Results {
    pub rounds: Vec<Vec<Round>>,
    /// Load averages (1, 5, 15 min) before and after the run.
    pub load_before: String,
    pub load_after: String,
}

/// A daemon's filled run directory, kept from round to round.
struct Store {
    dir: WorkDir,
    launch: Launch,
}

pub fn run(plan: &Plan) -> anyhow::Result<Results> {
    if plan.cold_restarts > 0 {
        ensure!(
            nix::unistd::geteuid().is_root(),
            "cold restarts drop the page cache, which needs root"
        );
    }
    let load_before = load_average();
    let mut stores: Vec<Option<Store>> = plan.subjects.iter().map(|_| None).collect();
    let rounds = crate::rounds::alternate(&plan.subjects, plan.rounds, 1, |round, s, spent| {
        let subject = &plan.subjects[s];
        let mut result = Round::default();
        if stores[s].is_none() {
            let started = Instant::now();
            let store = populate(plan, subject).context("filling the store")?;
            result.populate_s = Some(started.elapsed().as_secs_f64());
            eprintln!(
                "round {round:>2}  {subject:<27} filled in {:.1} s",
                result.populate_s.unwrap_or_default()
            );
            stores[s] = Some(store);
        }
        let store = stores[s].as_mut().context("store filled above")?;
        if result.populate_s.is_some() {
            result.first = Some(restart(plan, subject, &mut store.launch, false)?);
        }
        for _ in 0..plan.restarts {
            result
                .warm
                .push(restart(plan, subject, &mut store.launch, false)?);
        }
        for _ in 0..plan.cold_restarts {
            result
                .cold
                .push(restart(plan, subject, &mut store.launch, true)?);
        }
        if round == plan.rounds {
            if let Some(store) = stores[s].take() {
                if plan.keep {
                    eprintln!("kept {subject}'s store in {}", store.dir.keep().display());
                } else {
                    spent.push(store.dir);
                }
            }
        }
        Ok(result)
    })?;
    Ok(Results {
        rounds,
        load_before,
        load_after: load_average(),
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".into())
}

/// Starts the daemon in a fresh directory, fills it, and stops it.
fn populate(plan: &Plan, subject: &Subject) -> anyhow::Result<Store> {
    let dir = WorkDir::new(plan.tmp_dir.as_deref())?;
    let mut launch = subject
        .prepare(dir.path())
        .context("preparing the run directory")?;
    let (daemon, _, _) = boot::boot(plan.boot_timeout, subject, &mut launch)?;
    let runtime = client::runtime()?;
    runtime
        .block_on(fill(plan, &launch.socket))
        .map_err(|e| boot::with_log_tail(e, &launch))?;
    drop(runtime);
    let (_, killed) = daemon.stop()?;
    ensure!(!killed, "{subject} ignored SIGTERM after filling its store");
    Ok(Store { dir, launch })
}

fn chain_layer(chain: usize, index: usize) -> String {
    format!("layer-{chain}-{index}")
}

fn image_name(k: usize) -> String {
    format!("docker.io/rcontainerd-bench/restart-{k}:latest")
}

/// Blob `j`'s bytes: small and distinct.
fn blob_data(j: usize) -> Vec<u8> {
    format!("rcontainerd-bench restart blob {j:06}\n")
        .repeat(4)
        .into_bytes()
}

/// The last snapshot and image made: what each restart asks for.
fn probe_targets(plan: &Plan) -> (String, String) {
    (
        chain_layer(plan.chains - 1, plan.chain_len - 1),
        image_name(plan.images - 1),
    )
}

/// Makes every snapshot, blob and image from `plan.clients` clients, under one lease.
async fn fill(plan: &Plan, socket: &Path) -> anyhow::Result<()> {
    let headers = client::headers(client::connect(socket).await?, NAMESPACE, true).await?;
    let mut work = tokio::task::JoinSet::new();
    for c in 0..plan.clients {
        let channel = client::connect(socket).await?;
        let headers = headers.clone();
        let (chains, chain_len, blobs, images, clients) = (
            plan.chains,
            plan.chain_len,
            plan.blobs,
            plan.images,
            plan.clients,
        );
        let image_of_blob: HashMap<usize, usize> = (c..blobs)
            .step_by(clients)
            .filter_map(|j| plan.image_of_blob(j).map(|k| (j, k)))
            .collect();
        let image_blobs: Vec<(usize, usize)> = (c..images)
            .step_by(clients)
            .map(|k| (k, plan.image_blob(k)))
            .collect();
        work.spawn(async move {
            let mut snapshots = SnapshotsClient::new(channel.clone());
            for chain in (c..chains).step_by(clients) {
                for index in 0..chain_len {
                    let parent = match index {
                        0 => String::new(),
                        _ => chain_layer(chain, index - 1),
                    };
                    layer(&mut snapshots, &headers, chain, index, parent)
                        .await
                        .with_context(|| format!("snapshot {}", chain_layer(chain, index)))?;
                }
            }
            let mut content = ContentClient::new(channel.clone());
            for j in (c..blobs).step_by(clients) {
                let labels = match image_of_blob.get(&j) {
                    Some(k) => HashMap::from([(
                        format!("containerd.io/gc.ref.snapshot.{SNAPSHOTTER}"),
                        chain_layer(k % chains, chain_len - 1),
                    )]),
                    None => HashMap::new(),
                };
                write_blob(&mut content, &headers, blob_data(j), labels)
                    .await
                    .with_context(|| format!("blob {j}"))?;
            }
            let mut client = ImagesClient::new(channel);
            for (k, j) in image_blobs {
                let data = blob_data(j);
                client
                    .create(headers.request(CreateImageRequest {
                        image: Some(Image {
                            name: image_name(k),
                            target: Some(Descriptor {
                                media_type: IMAGE_MEDIA_TYPE.into(),
                                digest: digest_of(&data),
                                size: data.len() as i64,
                                annotations: HashMap::new(),
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }))
                    .await
                    .with_context(|| format!("image {k}"))?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = work.join_next().await {
        result.context("a client task")??;
    }
    // Everything is there: the images, and the last snapshot (each client's last layer came last).
    let channel = client::connect(socket).await?;
    let listed = ImagesClient::new(channel.clone())
        .list(headers.request(ListImagesRequest::default()))
        .await
        .context("listing images")?
        .into_inner()
        .images
        .len();
    ensure!(
        listed == plan.images,
        "listed {listed} images, not {}",
        plan.images
    );
    data_calls(&channel, &Headers::new().namespace(NAMESPACE)?, plan).await
}

/// Prepares layer `index` of `chain` on `parent`, puts a small file in it, and commits it.
async fn layer(
    client: &mut SnapshotsClient<Channel>,
    headers: &Headers,
    chain: usize,
    index: usize,
    parent: String,
) -> anyhow::Result<()> {
    let key = format!("active-{chain}-{index}");
    let mounts = client
        .prepare(headers.request(PrepareSnapshotRequest {
            snapshotter: SNAPSHOTTER.into(),
            key: key.clone(),
            parent,
            labels: HashMap::new(),
        }))
        .await?
        .into_inner()
        .mounts;
    let upper = upper_dir(&mounts).context("no upper directory in the prepared mounts")?;
    std::fs::write(
        upper.join(format!("layer-{index}")),
        format!("chain {chain} layer {index}\n"),
    )
    .with_context(|| format!("writing a file in {}", upper.display()))?;
    client
        .commit(headers.request(CommitSnapshotRequest {
            snapshotter: SNAPSHOTTER.into(),
            name: chain_layer(chain, index),
            key,
            labels: HashMap::new(),
        }))
        .await?;
    Ok(())
}

/// Where an active snapshot's writes go: a bind mount's source (a layer with no parent), or an
/// overlay's `upperdir`.
fn upper_dir(mounts: &[Mount]) -> Option<PathBuf> {
    let mount = mounts.first()?;
    if mount.r#type == "bind" {
        return Some(PathBuf::from(&mount.source));
    }
    mount
        .options
        .iter()
        .find_map(|o| o.strip_prefix("upperdir="))
        .map(PathBuf::from)
}

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(data))
}

/// Writes `data` as a blob with `labels` in one Write stream.
async fn write_blob(
    client: &mut ContentClient<Channel>,
    headers: &Headers,
    data: Vec<u8>,
    labels: HashMap<String, String>,
) -> anyhow::Result<()> {
    let digest = digest_of(&data);
    let write = WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: format!("bench-{digest}"),
        total: data.len() as i64,
        expected: digest,
        data: data.into(),
        labels,
        ..Default::default()
    };
    let mut replies = client
        .write(headers.request(tokio_stream::iter([write])))
        .await?
        .into_inner();
    while replies.message().await?.is_some() {}
    Ok(())
}

/// Stat of the last snapshot, then Get of the last image; fails if either does.
async fn data_calls(channel: &Channel, headers: &Headers, plan: &Plan) -> anyhow::Result<()> {
    stat(channel, headers, plan).await?;
    get_image(channel, headers, plan).await
}

async fn stat(channel: &Channel, headers: &Headers, plan: &Plan) -> anyhow::Result<()> {
    let (snapshot, _) = probe_targets(plan);
    let info = SnapshotsClient::new(channel.clone())
        .stat(headers.request(StatSnapshotRequest {
            snapshotter: SNAPSHOTTER.into(),
            key: snapshot.clone(),
        }))
        .await
        .with_context(|| format!("Snapshots.Stat of {snapshot}"))?
        .into_inner()
        .info
        .context("no info in the Stat reply")?;
    ensure!(info.name == snapshot, "Stat answered for {}", info.name);
    Ok(())
}

async fn get_image(channel: &Channel, headers: &Headers, plan: &Plan) -> anyhow::Result<()> {
    let (_, image) = probe_targets(plan);
    let reply = ImagesClient::new(channel.clone())
        .get(headers.request(GetImageRequest {
            name: image.clone(),
        }))
        .await
        .with_context(|| format!("Images.Get of {image}"))?;
    ensure!(
        reply.into_inner().image.is_some(),
        "no image in the Get reply"
    );
    Ok(())
}

/// Retries `call` on fresh connections every [`RETRY`] until it succeeds, the daemon exits, or
/// `deadline` passes.
async fn until_answered<F, Fut>(
    socket: &Path,
    daemon: &mut Daemon,
    deadline: Instant,
    what: &str,
    call: F,
) -> anyhow::Result<()>
where
    F: Fn(Channel) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    loop {
        let last = match client::connect(socket).await {
            Ok(channel) => match call(channel).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            },
            Err(e) => e,
        };
        if let Some(status) = daemon.child().try_wait()? {
            anyhow::bail!("daemon exited with {status} before answering {what} (last: {last:#})");
        }
        if Instant::now() >= deadline {
            anyhow::bail!("daemon did not answer {what} in time (last: {last:#})");
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One timed restart on the filled store: sync (and with `cold`, drop the page cache), exec,
/// wait for Version, then for the data calls, read the RSS, stop.
fn restart(
    plan: &Plan,
    subject: &Subject,
    launch: &mut Launch,
    cold: bool,
) -> anyhow::Result<Restart> {
    nix::unistd::sync();
    if cold {
        std::fs::write("/proc/sys/vm/drop_caches", "3\n").context("dropping the page cache")?;
    }
    let runtime = client::runtime()?;
    let start = Instant::now();
    let deadline = start + plan.boot_timeout;
    let mut daemon = Daemon::spawn(subject, launch)?;
    let socket = launch.socket.clone();
    let headers = Headers::new().namespace(NAMESPACE)?;
    let timed = runtime.block_on(async {
        crate::probe::wait_for_version(&socket, daemon.child(), deadline).await?;
        let version = start.elapsed();
        until_answered(&socket, &mut daemon, deadline, "Snapshots.Stat", |c| {
            let headers = headers.clone();
            async move { stat(&c, &headers, plan).await }
        })
        .await?;
        let stat_done = start.elapsed();
        until_answered(&socket, &mut daemon, deadline, "Images.Get", |c| {
            let headers = headers.clone();
            async move { get_image(&c, &headers, plan).await }
        })
        .await?;
        anyhow::Ok((version, stat_done, start.elapsed()))
    });
    drop(runtime);
    let (version, stat_done, data) = timed.map_err(|e| boot::with_log_tail(e, launch))?;
    let status = procfs::status(daemon.child().id())?;
    let (stop, killed) = daemon.stop()?;
    ensure!(!killed, "{subject} ignored SIGTERM");
    Ok(Restart {
        version_ms: ms(version),
        stat_ms: ms(stat_done),
        data_ms: ms(data),
        rss_mib: boot::mib(status.vm_rss_kib),
        stop_ms: ms(stop),
    })
}

/// The Markdown report: what was done, then one table (lower is better) with the warm restarts,
/// the cold ones and the first restart after filling, ratios restart by restart within a round.
pub fn render(plan: &Plan, results: &Results) -> String {
    let names: Vec<String> = plan.subjects.iter().map(|s| s.to_string()).collect();
    let mut out = format!(
        "{} rounds ({}). Each daemon's store, filled once through gRPC by {} clients under one lease: \
         {} committed {SNAPSHOTTER} snapshots ({} chains of {}, a small file in each layer), {} blobs \
         of {} B, {} images (each targets a blob labelled with a gc.ref to a chain's top). Per daemon \
         and round: {} warm and {} cold restarts (cold: page cache dropped first), each after a \
         sync(2), timed from exec; the first restart after filling is shown on its own. The ratio \
         column pairs restart i of one daemon with restart i of the other in the same round. Load \
         average before / after: {} / {}.\n\n",
        plan.rounds,
        crate::rounds::describe(&names),
        plan.clients,
        plan.snapshots(),
        plan.chains,
        plan.chain_len,
        plan.blobs,
        blob_data(0).len(),
        plan.images,
        plan.restarts,
        plan.cold_restarts,
        results.load_before,
        results.load_after,
    );
    type Pick = fn(&Restart) -> f64;
    let figures: [(&str, &'static str, Pick, Option<Aim>); 5] = [
        (
            "exec → Version answered",
            "ms",
            |r| r.version_ms,
            Some(Aim::AtMost(AIM)),
        ),
        (
            "exec → Snapshots.Stat answered",
            "ms",
            |r| r.stat_ms,
            Some(Aim::AtMost(AIM)),
        ),
        (
            "exec → first answered data request (Stat + Images.Get)",
            "ms",
            |r| r.data_ms,
            Some(Aim::AtMost(AIM)),
        ),
        ("VmRSS after the data calls", "MiB", |r| r.rss_mib, None),
        ("stop (SIGTERM → exit)", "ms", |r| r.stop_ms, None),
    ];
    type Kind = (&'static str, fn(&Round) -> Vec<Restart>);
    let kinds: [Kind; 3] = [
        ("warm", |r| r.warm.clone()),
        ("cold", |r| r.cold.clone()),
        ("first after filling", |r| r.first.into_iter().collect()),
    ];
    let mut rows = Vec::new();
    for (kind, restarts) in kinds {
        // Restart i of one daemon is paired with restart i of the other in the same round.
        let column = |s: usize, pick: Pick| -> Vec<f64> {
            results.rounds[s]
                .iter()
                .zip(&results.rounds[1 - s])
                .flat_map(|(mine, theirs)| {
                    let n = restarts(mine).len().min(restarts(theirs).len());
                    restarts(mine).into_iter().take(n).map(move |r| pick(&r))
                })
                .collect()
        };
        if column(0, |r| r.data_ms).is_empty() {
            continue;
        }
        for (label, unit, pick, aim) in figures {
            rows.push(Row {
                label: format!("{kind}: {label}"),
                unit,
                ours: column(0, pick),
                theirs: column(1, pick),
                aim,
            });
        }
    }
    out.push_str(&table_paired(
        &names[0],
        &names[1],
        &rows,
        "restart by restart",
    ));
    let populate: Vec<String> = names
        .iter()
        .zip(&results.rounds)
        .map(|(name, rounds)| {
            let seconds: Vec<f64> = rounds.iter().filter_map(|r| r.populate_s).collect();
            format!("{name} {} s", spread(&seconds, 1))
        })
        .collect();
    let _ = writeln!(out, "\nFilling the store took: {}.", populate.join(", "));
    let medians: Vec<String> = names
        .iter()
        .zip(&results.rounds)
        .map(|(name, rounds)| {
            let per_round: Vec<String> = rounds
                .iter()
                .map(|r| {
                    let data: Vec<f64> = r.warm.iter().map(|x| x.data_ms).collect();
                    Spread::of(&data).map_or("–".into(), |s| format!("{:.1}", s.median))
                })
                .collect();
            format!("{name} {}", per_round.join(", "))
        })
        .collect();
    let _ = writeln!(
        out,
        "Median warm exec → data answer per round, ms: {}.",
        medians.join("; ")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(blobs: usize, images: usize) -> Plan {
        Plan {
            subjects: Vec::new(),
            rounds: 1,
            restarts: 1,
            cold_restarts: 0,
            chains: 10,
            chain_len: 2,
            blobs,
            images,
            clients: 1,
            boot_timeout: Duration::from_secs(1),
            tmp_dir: None,
            keep: false,
        }
    }

    #[test]
    fn each_image_has_its_own_blob_and_finds_it_back() {
        for (blobs, images) in [(20_000, 1_000), (7, 3), (5, 5)] {
            let plan = plan(blobs, images);
            let targets: Vec<usize> = (0..images).map(|k| plan.image_blob(k)).collect();
            let mut distinct = targets.clone();
            distinct.dedup();
            assert_eq!(distinct.len(), images);
            for j in 0..blobs {
                assert_eq!(
                    plan.image_of_blob(j),
                    targets.iter().position(|&t| t == j),
                    "blob {j} of {blobs} with {images} images"
                );
            }
        }
    }

    #[test]
    fn upper_dir_of_a_bind_and_of_an_overlay() {
        let bind = Mount {
            r#type: "bind".into(),
            source: "/s/1/fs".into(),
            target: String::new(),
            options: vec!["rw".into(), "rbind".into()],
        };
        assert_eq!(upper_dir(&[bind]), Some(PathBuf::from("/s/1/fs")));
        let overlay = Mount {
            r#type: "overlay".into(),
            source: "overlay".into(),
            target: String::new(),
            options: vec![
                "index=off".into(),
                "workdir=/s/2/work".into(),
                "upperdir=/s/2/fs".into(),
                "lowerdir=/s/1/fs".into(),
            ],
        };
        assert_eq!(upper_dir(&[overlay]), Some(PathBuf::from("/s/2/fs")));
        assert_eq!(upper_dir(&[]), None);
    }
}
