//! The snapshots benchmark: Prepare+Commit pairs per second (one client, then several at once) and
//! Mounts calls per second on top of a long chain, for each snapshotter, daemons alternating round by round.

use crate::client;
use crate::daemon::Subject;
use crate::isolated_report::{self, CONTAINERD, IN_PROCESS};
use crate::session::Session;
use crate::workdir::WorkDir;
use anyhow::Context;
use rcontainerd_api::client::Headers;
use rcontainerd_api::services::snapshots::{
    snapshots_client::SnapshotsClient, CommitSnapshotRequest, MountsRequest, PrepareSnapshotRequest,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub struct Plan {
    pub subjects: Vec<Subject>,
    pub snapshotters: Vec<String>,
    pub rounds: u32,
    /// Pairs for the single client.
    pub pairs_one: u32,
    /// Concurrent clients, and pairs for each.
    pub clients: u32,
    pub pairs_each: u32,
    /// Layers in the chain under the Mounts key, and Mounts calls timed on it.
    pub chain: u32,
    pub mounts_calls: u32,
    pub boot_timeout: Duration,
    pub tmp_dir: Option<PathBuf>,
}

/// What one daemon did in one round, per snapshotter (in plan order).
#[derive(Debug, Clone, Default)]
pub struct Round {
    pub pairs_one: Vec<f64>,
    pub pairs_many: Vec<f64>,
    /// Prepare+Commit pairs per second while building the chain (each on the previous).
    pub chain_pairs: Vec<f64>,
    pub mounts: Vec<f64>,
}

/// `rounds[s][r]`: subject `s`, round `r`.
pub struct Results {
    pub rounds: Vec<Vec<Round>>,
}

pub fn run(plan: &Plan) -> anyhow::Result<Results> {
    let rounds = crate::rounds::alternate(&plan.subjects, plan.rounds, 1, |_, s, spent| {
        measure(plan, &plan.subjects[s], spent)
    })?;
    Ok(Results { rounds })
}

fn measure(plan: &Plan, subject: &Subject, spent: &mut Vec<WorkDir>) -> anyhow::Result<Round> {
    let session = Session::start(subject, plan.tmp_dir.as_deref(), plan.boot_timeout)?;
    let runtime = client::runtime()?;
    let use_lease = subject.needs_lease();
    let round = runtime.block_on(async {
        let mut round = Round::default();
        for snapshotter in &plan.snapshotters {
            let rate = pairs(&session, snapshotter, use_lease, 1, plan.pairs_one).await;
            round
                .pairs_one
                .push(rate.with_context(|| format!("{snapshotter}, 1 client"))?);
            let rate = pairs(
                &session,
                snapshotter,
                use_lease,
                plan.clients,
                plan.pairs_each,
            )
            .await;
            round
                .pairs_many
                .push(rate.with_context(|| format!("{snapshotter}, {} clients", plan.clients))?);
            let (build, mounts) = chain(&session, snapshotter, use_lease, plan).await?;
            round.chain_pairs.push(build);
            round.mounts.push(mounts);
        }
        anyhow::Ok(round)
    })?;
    drop(runtime);
    spent.push(session.stop()?);
    Ok(round)
}

/// `clients` clients, each on its own connection, each preparing `k<i>` and committing it as `c<i>`
/// `count` times; returns pairs per second over all of them.
async fn pairs(
    session: &Session,
    snapshotter: &str,
    use_lease: bool,
    clients: u32,
    count: u32,
) -> anyhow::Result<f64> {
    // Distinct per measurement even when `clients` is 1, so the two runs never share keys.
    let namespace = if clients == 1 {
        format!("one-{snapshotter}")
    } else {
        format!("many-{snapshotter}")
    };
    let headers = client::headers(session.connect().await?, &namespace, use_lease).await?;
    let mut connections = Vec::new();
    for _ in 0..clients {
        connections.push(SnapshotsClient::new(session.connect().await?));
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (client_index, mut client) in connections.into_iter().enumerate() {
        let headers = headers.clone();
        let snapshotter = snapshotter.to_string();
        tasks.push(tokio::spawn(async move {
            for i in 0..count {
                let id = format!("{client_index}-{i}");
                prepare_commit(&mut client, &headers, &snapshotter, &id, "").await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("client task panicked")??;
    }
    Ok(f64::from(clients * count) / start.elapsed().as_secs_f64())
}

async fn prepare_commit(
    client: &mut SnapshotsClient<Channel>,
    headers: &Headers,
    snapshotter: &str,
    id: &str,
    parent: &str,
) -> anyhow::Result<()> {
    let key = format!("k{id}");
    client
        .prepare(headers.request(PrepareSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: key.clone(),
            parent: parent.to_string(),
            labels: Default::default(),
        }))
        .await
        .with_context(|| format!("preparing {key} on {snapshotter}"))?;
    client
        .commit(headers.request(CommitSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            name: format!("c{id}"),
            key: key.clone(),
            labels: Default::default(),
        }))
        .await
        .with_context(|| format!("committing {key} on {snapshotter}"))?;
    Ok(())
}

/// Builds a chain of `plan.chain` committed layers, prepares an active key on top, and times
/// `plan.mounts_calls` Mounts calls on it. Returns (chain pairs per second, Mounts calls per second).
async fn chain(
    session: &Session,
    snapshotter: &str,
    use_lease: bool,
    plan: &Plan,
) -> anyhow::Result<(f64, f64)> {
    let namespace = format!("chain-{snapshotter}");
    let headers = client::headers(session.connect().await?, &namespace, use_lease).await?;
    let mut client = SnapshotsClient::new(session.connect().await?);
    let start = Instant::now();
    let mut parent = String::new();
    for i in 0..plan.chain {
        let id = i.to_string();
        prepare_commit(&mut client, &headers, snapshotter, &id, &parent).await?;
        parent = format!("c{id}");
    }
    let build = f64::from(plan.chain) / start.elapsed().as_secs_f64();
    client
        .prepare(headers.request(PrepareSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: "top".to_string(),
            parent,
            labels: Default::default(),
        }))
        .await
        .with_context(|| format!("preparing top of the chain on {snapshotter}"))?;
    let start = Instant::now();
    for _ in 0..plan.mounts_calls {
        let reply = client
            .mounts(headers.request(MountsRequest {
                snapshotter: snapshotter.to_string(),
                key: "top".to_string(),
            }))
            .await
            .with_context(|| format!("mounts of top on {snapshotter}"))?;
        anyhow::ensure!(
            !reply.into_inner().mounts.is_empty(),
            "mounts of top on {snapshotter} returned no mounts"
        );
    }
    let mounts = f64::from(plan.mounts_calls) / start.elapsed().as_secs_f64();
    Ok((build, mounts))
}

/// Aims of issue 4: ours / containerd for one client and for many.
const AIM_ONE: f64 = 2.0;
const AIM_MANY: f64 = 3.0;

/// Picks one figure's values (one per snapshotter) out of a round.
type Pick = fn(&Round) -> &Vec<f64>;

pub fn render(plan: &Plan, results: &Results) -> String {
    let names: Vec<String> = plan.subjects.iter().map(|s| s.to_string()).collect();
    let mut out = format!(
        "{} rounds; each round starts each daemon once in a fresh directory ({}), and per snapshotter: \
         {} Prepare+Commit pairs from 1 client, {} × {} pairs from {} concurrent clients (one connection \
         each), then a chain of {} layers (each prepared on the previous commit, then committed) and {} \
         Mounts calls on an active key on top of it. Every call, to either daemon, carries a lease.\n\n",
        plan.rounds,
        crate::rounds::describe(&names),
        plan.pairs_one,
        plan.clients,
        plan.pairs_each,
        plan.clients,
        plan.chain,
        plan.mounts_calls,
    );
    let column = |s: usize, pick: Pick, k: usize| -> Vec<f64> {
        results.rounds[s].iter().map(|r| pick(r)[k]).collect()
    };
    let mut rows = Vec::new();
    let mut figures = Vec::new();
    for (k, snapshotter) in plan.snapshotters.iter().enumerate() {
        let picks: [(String, &'static str, Pick, Option<f64>); 4] = [
            (
                format!("{snapshotter}: Prepare+Commit, 1 client"),
                "pairs/s",
                |r| &r.pairs_one,
                Some(AIM_ONE),
            ),
            (
                format!("{snapshotter}: Prepare+Commit, {} clients", plan.clients),
                "pairs/s",
                |r| &r.pairs_many,
                Some(AIM_MANY),
            ),
            (
                format!("{snapshotter}: building a {}-layer chain", plan.chain),
                "pairs/s",
                |r| &r.chain_pairs,
                None,
            ),
            (
                format!("{snapshotter}: Mounts on top of {} layers", plan.chain),
                "calls/s",
                |r| &r.mounts,
                None,
            ),
        ];
        for (label, unit, pick, aim) in picks {
            rows.push(crate::throughput_report::Row {
                label: label.clone(),
                unit,
                ours: column(IN_PROCESS, pick, k),
                theirs: column(CONTAINERD, pick, k),
                aim: aim.map(crate::throughput_report::Aim::AtLeast),
            });
            figures.push(isolated_report::Figure {
                label,
                unit,
                values: (0..plan.subjects.len())
                    .map(|s| column(s, pick, k))
                    .collect(),
                aim: Some(isolated_report::SNAPSHOT_AIM),
            });
        }
    }
    out.push_str(&crate::throughput_report::table(
        &names[IN_PROCESS],
        &names[CONTAINERD],
        &rows,
    ));
    out.push_str(&isolated_report::render(&names, &figures));
    out
}
