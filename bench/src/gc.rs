//! The garbage-collection benchmark: how long a collection of many unreferenced snapshots and blobs
//! takes, and how slow unrelated calls get while it runs, daemons alternating round by round.
//!
//! Per round and daemon: N active snapshots and M small blobs are made under one lease (8 clients), and
//! an image, a snapshot and a blob that stay are made under a second lease. Then a client keeps calling
//! Version, Images.Get and Snapshots.Stat on what stays while another deletes the first lease with
//! `sync` — which returns once the collection (records and disk) is done. The figures are that call's
//! time and the 99th percentile of the unrelated calls that started while it ran.

use crate::client;
use crate::daemon::Subject;
use crate::session::Session;
use crate::stats::{ratios, Spread};
use crate::throughput_report::spread;
use anyhow::Context;
use rcontainerd_api::client::Headers;
use rcontainerd_api::services::content::{
    content_client::ContentClient, WriteAction, WriteContentRequest,
};
use rcontainerd_api::services::images::{
    images_client::ImagesClient, CreateImageRequest, GetImageRequest, Image,
};
use rcontainerd_api::services::leases::{
    leases_client::LeasesClient, CreateRequest, DeleteRequest,
};
use rcontainerd_api::services::snapshots::{
    snapshots_client::SnapshotsClient, PrepareSnapshotRequest, StatSnapshotRequest,
};
use rcontainerd_api::services::version::version_client::VersionClient;
use rcontainerd_api::types::Descriptor;
use sha2::Digest as _;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const NAMESPACE: &str = "bench-gc";
const SNAPSHOTTER: &str = "native";
const CLIENTS: usize = 8;

pub struct Plan {
    pub subjects: Vec<Subject>,
    pub rounds: u32,
    pub snapshots: usize,
    pub blobs: usize,
    pub boot_timeout: Duration,
    pub tmp_dir: Option<PathBuf>,
}

/// What one daemon did in one round.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// Seconds the sync lease deletion (the collection) took.
    pub collect_s: f64,
    /// p99 in milliseconds of Version, Images.Get and Snapshots.Stat started during it.
    pub p99_ms: [f64; 3],
    /// Unrelated calls made during it (all three kinds).
    pub calls: usize,
}

pub struct Results {
    pub rounds: Vec<Vec<Round>>,
}

pub fn run(plan: &Plan) -> anyhow::Result<Results> {
    let rounds = crate::rounds::alternate(&plan.subjects, plan.rounds, 3, |_, s, spent| {
        let session = Session::start(
            &plan.subjects[s],
            plan.tmp_dir.as_deref(),
            plan.boot_timeout,
        )?;
        let result = client::runtime()?.block_on(measure(plan, &session))?;
        spent.push(session.stop()?);
        Ok(result)
    })?;
    Ok(Results { rounds })
}

async fn lease(channel: &Channel, id: &str) -> anyhow::Result<Headers> {
    let headers = Headers::new().namespace(NAMESPACE)?;
    let expiry = rcontainerd_pkg::time::format_rfc3339(
        std::time::SystemTime::now() + Duration::from_secs(3600),
    );
    LeasesClient::new(channel.clone())
        .create(headers.request(CreateRequest {
            id: id.to_string(),
            labels: HashMap::from([("containerd.io/gc.expire".to_string(), expiry)]),
        }))
        .await
        .with_context(|| format!("creating lease {id}"))?;
    Ok(headers.lease(id)?)
}

async fn prepare(channel: Channel, headers: &Headers, key: String) -> anyhow::Result<()> {
    SnapshotsClient::new(channel)
        .prepare(headers.request(PrepareSnapshotRequest {
            snapshotter: SNAPSHOTTER.into(),
            key,
            ..Default::default()
        }))
        .await?;
    Ok(())
}

/// Writes `data` as a blob in one Write stream; returns its digest.
async fn blob(channel: Channel, headers: &Headers, data: Vec<u8>) -> anyhow::Result<String> {
    let digest = format!("sha256:{:x}", sha2::Sha256::digest(&data));
    let write = WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: format!("bench-{digest}"),
        total: data.len() as i64,
        expected: digest.clone(),
        data: data.into(),
        ..Default::default()
    };
    let mut replies = ContentClient::new(channel)
        .write(headers.request(tokio_stream::iter([write])))
        .await?
        .into_inner();
    while replies.message().await?.is_some() {}
    Ok(digest)
}

async fn measure(plan: &Plan, session: &Session) -> anyhow::Result<Round> {
    let channel = session.connect().await?;
    let doomed = lease(&channel, "doomed").await?;
    let kept = lease(&channel, "kept").await?;

    // What the collection must remove: N snapshots and M blobs, from 8 clients.
    let mut work = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let channel = session.connect().await?;
        let headers = doomed.clone();
        let (snapshots, blobs) = (plan.snapshots, plan.blobs);
        work.spawn(async move {
            for i in (c..snapshots).step_by(CLIENTS) {
                prepare(channel.clone(), &headers, format!("doomed-{i}")).await?;
            }
            for i in (c..blobs).step_by(CLIENTS) {
                blob(
                    channel.clone(),
                    &headers,
                    format!("doomed blob {i}").into_bytes(),
                )
                .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = work.join_next().await {
        result
            .context("a client task")?
            .context("making the objects to collect")?;
    }

    // What stays, and is called meanwhile.
    prepare(channel.clone(), &kept, "kept".into()).await?;
    let target = blob(channel.clone(), &kept, b"kept blob".to_vec()).await?;
    ImagesClient::new(channel.clone())
        .create(kept.request(CreateImageRequest {
            image: Some(Image {
                name: "kept".into(),
                target: Some(Descriptor {
                    media_type: "application/vnd.oci.image.index.v1+json".into(),
                    digest: target,
                    size: 9,
                    annotations: HashMap::new(),
                }),
                ..Default::default()
            }),
            source_date_epoch: None,
        }))
        .await?;

    let running = Arc::new(AtomicBool::new(true));
    let prober = {
        let channel = session.connect().await?;
        let headers = Headers::new().namespace(NAMESPACE)?;
        let running = running.clone();
        async move { probe(channel, headers, running).await }
    };
    let collect = {
        let channel = channel.clone();
        let headers = Headers::new().namespace(NAMESPACE)?;
        let running = running.clone();
        async move {
            // Let the prober warm up first.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let started = Instant::now();
            let result = LeasesClient::new(channel)
                .delete(headers.request(DeleteRequest {
                    id: "doomed".into(),
                    sync: true,
                }))
                .await;
            let window = (started, Instant::now());
            running.store(false, Ordering::Relaxed);
            result.map(|_| window)
        }
    };
    let (samples, window) = tokio::join!(prober, collect);
    let (start, end) = window.context("deleting the lease with sync")?;
    let samples = samples?;
    let mut p99 = [0.0; 3];
    let mut calls = 0;
    for (kind, slot) in p99.iter_mut().enumerate() {
        let mut during: Vec<f64> = samples
            .iter()
            .filter(|s| s.kind == kind && s.started >= start && s.started < end)
            .map(|s| s.latency.as_secs_f64() * 1000.0)
            .collect();
        calls += during.len();
        during.sort_by(f64::total_cmp);
        *slot = percentile(&during, 0.99);
    }
    Ok(Round {
        collect_s: (end - start).as_secs_f64(),
        p99_ms: p99,
        calls,
    })
}

struct Sample {
    kind: usize,
    started: Instant,
    latency: Duration,
}

/// Calls Version, Images.Get and Snapshots.Stat in turn until `running` is cleared.
async fn probe(
    channel: Channel,
    headers: Headers,
    running: Arc<AtomicBool>,
) -> anyhow::Result<Vec<Sample>> {
    let mut version = VersionClient::new(channel.clone());
    let mut images = ImagesClient::new(channel.clone());
    let mut snapshots = SnapshotsClient::new(channel);
    let mut samples = Vec::new();
    let mut kind = 0;
    while running.load(Ordering::Relaxed) {
        let started = Instant::now();
        match kind {
            0 => drop(version.version(()).await?),
            1 => drop(
                images
                    .get(headers.request(GetImageRequest {
                        name: "kept".into(),
                    }))
                    .await?,
            ),
            _ => drop(
                snapshots
                    .stat(headers.request(StatSnapshotRequest {
                        snapshotter: SNAPSHOTTER.into(),
                        key: "kept".into(),
                    }))
                    .await?,
            ),
        }
        samples.push(Sample {
            kind,
            started,
            latency: started.elapsed(),
        });
        kind = (kind + 1) % 3;
    }
    Ok(samples)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A markdown table where lower is better: each daemon's min / median / max and the round-by-round
/// ratio rcontainerd ÷ containerd against the aim.
pub fn render(plan: &Plan, results: &Results) -> String {
    let names: Vec<String> = plan.subjects.iter().map(|s| s.to_string()).collect();
    let mut out = format!(
        "{} rounds ({}); per daemon and round: {} active {SNAPSHOTTER} snapshots and {} small blobs \
         under one lease (8 clients), then Leases.Delete{{sync}} of that lease timed while one client \
         calls Version, Images.Get and Snapshots.Stat on objects another lease keeps.\n\n",
        plan.rounds,
        crate::rounds::describe(&names),
        plan.snapshots,
        plan.blobs
    );
    out.push_str(&format!(
        "| figure | unit | {} min / median / max | {} min / median / max | ratio min / median / max \
         (round by round) | aim | met (median) |\n|---|---|---:|---:|---:|---:|---|\n",
        names[0], names[1]
    ));
    let column = |s: usize, f: &dyn Fn(&Round) -> f64| -> Vec<f64> {
        results.rounds[s].iter().map(f).collect()
    };
    type Figure = fn(&Round) -> f64;
    let rows: [(&str, &str, Figure, f64); 4] = [
        ("collection (sync lease delete)", "s", |r| r.collect_s, 0.5),
        ("Version p99 during it", "ms", |r| r.p99_ms[0], 0.1),
        ("Images.Get p99 during it", "ms", |r| r.p99_ms[1], 0.1),
        ("Snapshots.Stat p99 during it", "ms", |r| r.p99_ms[2], 0.1),
    ];
    for (label, unit, f, aim) in rows {
        let (ours, theirs) = (column(0, &f), column(1, &f));
        let ratio = Spread::of(&ratios(&ours, &theirs));
        let (shown, met) = match ratio {
            Some(r) => (
                format!("{:.2} / {:.2} / {:.2}", r.min, r.median, r.max),
                if r.median <= aim { "yes" } else { "no" },
            ),
            None => ("–".into(), "–"),
        };
        let _ = writeln!(
            out,
            "| {label} | {unit} | {} | {} | {shown} | ≤ {aim}× | {met} |",
            spread(&ours, 3),
            spread(&theirs, 3)
        );
    }
    let calls: Vec<f64> = (0..2)
        .flat_map(|s| results.rounds[s].iter().map(|r| r.calls as f64))
        .collect();
    let _ = writeln!(
        out,
        "\nUnrelated calls sampled during the collections: {} (min / median / max per run).",
        spread(&calls, 0)
    );
    out
}
