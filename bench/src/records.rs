//! The records benchmark: Images and Containers calls per second — Create, Get, List (with the records
//! just created present) and Delete — from one client and from several at once, daemons alternating
//! round by round. Every call, to either daemon, carries a lease created at the start of the round.

use crate::client;
use crate::daemon::Subject;
use crate::session::Session;
use crate::workdir::WorkDir;
use anyhow::Context;
use rcontainerd_api::client::Headers;
use rcontainerd_api::services::containers::{
    container, containers_client::ContainersClient, Container, CreateContainerRequest,
    DeleteContainerRequest, GetContainerRequest, ListContainersRequest,
};
use rcontainerd_api::services::images::{
    images_client::ImagesClient, CreateImageRequest, DeleteImageRequest, GetImageRequest, Image,
    ListImagesRequest,
};
use rcontainerd_api::types::Descriptor;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// The namespace every record of a round is made in.
const NAMESPACE: &str = "bench-records";
/// An image's target: an index that need not exist (records do not check their blobs).
const TARGET_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const TARGET_DIGEST: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const TARGET_SIZE: i64 = 1024;
const RUNTIME: &str = "io.containerd.runc.v2";
const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

pub struct Plan {
    pub subjects: Vec<Subject>,
    pub rounds: u32,
    /// Calls of each kind (except List) made by the single client.
    pub ops_one: u32,
    /// Concurrent clients, and calls of each kind (except List) made by each.
    pub clients: u32,
    pub ops_each: u32,
    /// List calls, in all, in each measurement (shared out between its clients).
    pub list_calls: u32,
    pub boot_timeout: Duration,
    pub tmp_dir: Option<PathBuf>,
}

/// Calls per second of each kind, in one measurement.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rates {
    pub image_create: f64,
    pub image_get: f64,
    pub image_list: f64,
    pub image_delete: f64,
    pub container_create: f64,
    pub container_get: f64,
    pub container_list: f64,
    pub container_delete: f64,
}

/// What one daemon did in one round.
#[derive(Debug, Clone, Copy, Default)]
pub struct Round {
    pub one: Rates,
    pub many: Rates,
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
        // One lease for the whole round, on every call of both measurements.
        let headers = client::headers(session.connect().await?, NAMESPACE, use_lease).await?;
        let one = rates(&session, &headers, "one", 1, plan.ops_one, plan.list_calls)
            .await
            .context("1 client")?;
        let many = rates(
            &session,
            &headers,
            "many",
            plan.clients,
            plan.ops_each,
            plan.list_calls,
        )
        .await
        .with_context(|| format!("{} clients", plan.clients))?;
        anyhow::Ok(Round { one, many })
    })?;
    drop(runtime);
    spent.push(session.stop()?);
    Ok(round)
}

/// The calls a phase makes, each client `count` times (List: its share of the List calls).
#[derive(Debug, Clone, Copy)]
enum Op {
    ImageCreate,
    ImageGet,
    ImageList,
    ImageDelete,
    ContainerCreate,
    ContainerGet,
    ContainerList,
    ContainerDelete,
}

/// One measurement: `clients` clients, each on its own connection, create `count` images, get each,
/// list them all (`list_calls` List calls shared out), delete them; then the same for containers.
/// Each phase is timed on its own, from the first call of any client to the last reply.
async fn rates(
    session: &Session,
    headers: &Headers,
    prefix: &str,
    clients: u32,
    count: u32,
    list_calls: u32,
) -> anyhow::Result<Rates> {
    let mut connections = Vec::new();
    for _ in 0..clients {
        connections.push(session.connect().await?);
    }
    let present = clients * count;
    let list_each = list_calls.div_ceil(clients).max(1);
    let phase = |op: Op| {
        let n = match op {
            Op::ImageList | Op::ContainerList => list_each,
            _ => count,
        };
        timed(&connections, headers, op, prefix, n, present)
    };
    Ok(Rates {
        image_create: phase(Op::ImageCreate).await?,
        image_get: phase(Op::ImageGet).await?,
        image_list: phase(Op::ImageList).await?,
        image_delete: phase(Op::ImageDelete).await?,
        container_create: phase(Op::ContainerCreate).await?,
        container_get: phase(Op::ContainerGet).await?,
        container_list: phase(Op::ContainerList).await?,
        container_delete: phase(Op::ContainerDelete).await?,
    })
}

/// Runs `op` `count` times on each connection at once; returns calls per second over all of them.
async fn timed(
    connections: &[Channel],
    headers: &Headers,
    op: Op,
    prefix: &str,
    count: u32,
    present: u32,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (client_index, channel) in connections.iter().enumerate() {
        let mut images = ImagesClient::new(channel.clone());
        let mut containers = ContainersClient::new(channel.clone());
        let headers = headers.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in 0..count {
                let id = format!("{prefix}-{client_index}-{i}");
                call(op, &mut images, &mut containers, &headers, &id, present)
                    .await
                    .with_context(|| format!("{op:?} {id}"))?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("client task panicked")??;
    }
    let calls = count * u32::try_from(connections.len()).context("too many clients")?;
    Ok(f64::from(calls) / start.elapsed().as_secs_f64())
}

fn image_name(id: &str) -> String {
    format!("docker.io/rcontainerd-bench/{id}:latest")
}

async fn call(
    op: Op,
    images: &mut ImagesClient<Channel>,
    containers: &mut ContainersClient<Channel>,
    headers: &Headers,
    id: &str,
    present: u32,
) -> anyhow::Result<()> {
    let present = usize::try_from(present)?;
    match op {
        Op::ImageCreate => {
            images
                .create(headers.request(CreateImageRequest {
                    image: Some(Image {
                        name: image_name(id),
                        target: Some(Descriptor {
                            media_type: TARGET_MEDIA_TYPE.to_string(),
                            digest: TARGET_DIGEST.to_string(),
                            size: TARGET_SIZE,
                            annotations: Default::default(),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }))
                .await?;
        }
        Op::ImageGet => {
            let reply = images
                .get(headers.request(GetImageRequest {
                    name: image_name(id),
                }))
                .await?;
            anyhow::ensure!(reply.into_inner().image.is_some(), "no image in the reply");
        }
        Op::ImageList => {
            let reply = images
                .list(headers.request(ListImagesRequest::default()))
                .await?;
            let listed = reply.into_inner().images.len();
            anyhow::ensure!(listed == present, "listed {listed} images, not {present}");
        }
        Op::ImageDelete => {
            images
                .delete(headers.request(DeleteImageRequest {
                    name: image_name(id),
                    ..Default::default()
                }))
                .await?;
        }
        Op::ContainerCreate => {
            containers
                .create(headers.request(CreateContainerRequest {
                    container: Some(Container {
                        id: id.to_string(),
                        runtime: Some(container::Runtime {
                            name: RUNTIME.to_string(),
                            options: None,
                        }),
                        spec: Some(prost_types::Any {
                            type_url: SPEC_TYPE_URL.to_string(),
                            value: b"{}".to_vec(),
                        }),
                        ..Default::default()
                    }),
                }))
                .await?;
        }
        Op::ContainerGet => {
            let reply = containers
                .get(headers.request(GetContainerRequest { id: id.to_string() }))
                .await?;
            anyhow::ensure!(
                reply.into_inner().container.is_some(),
                "no container in the reply"
            );
        }
        Op::ContainerList => {
            let reply = containers
                .list(headers.request(ListContainersRequest::default()))
                .await?;
            let listed = reply.into_inner().containers.len();
            anyhow::ensure!(
                listed == present,
                "listed {listed} containers, not {present}"
            );
        }
        Op::ContainerDelete => {
            containers
                .delete(headers.request(DeleteContainerRequest { id: id.to_string() }))
                .await?;
        }
    }
    Ok(())
}

/// Aim of issue 11: ours / containerd, for every figure.
const AIM: f64 = 2.0;

type Pick = fn(&Rates) -> f64;

pub fn render(plan: &Plan, results: &Results) -> String {
    let names: Vec<String> = plan.subjects.iter().map(|s| s.to_string()).collect();
    let many_present = plan.clients * plan.ops_each;
    let mut out = format!(
        "{} rounds; each round starts each daemon once in a fresh directory ({}) and creates one lease \
         (containerd.io/gc.expire an hour ahead) that every call of the round carries. Then, from 1 \
         client: {} image Creates, {} Gets, {} Lists (with the {} images present), {} Deletes, then the \
         same for containers; and again from {} concurrent clients (one connection each), {} × {} of \
         each but List ({} Lists in all, {} records present). Images point at an index descriptor whose \
         blob does not exist; containers have runtime {RUNTIME}, a spec of `{{}}` and no snapshot.\n\n",
        plan.rounds,
        crate::rounds::describe(&names),
        plan.ops_one,
        plan.ops_one,
        plan.list_calls,
        plan.ops_one,
        plan.ops_one,
        plan.clients,
        plan.clients,
        plan.ops_each,
        plan.list_calls.div_ceil(plan.clients).max(1) * plan.clients,
        many_present,
    );
    let figures: [(&str, Pick); 8] = [
        ("Images Create", |r| r.image_create),
        ("Images Get", |r| r.image_get),
        ("Images List", |r| r.image_list),
        ("Images Delete", |r| r.image_delete),
        ("Containers Create", |r| r.container_create),
        ("Containers Get", |r| r.container_get),
        ("Containers List", |r| r.container_list),
        ("Containers Delete", |r| r.container_delete),
    ];
    let column = |s: usize, many: bool, pick: Pick| -> Vec<f64> {
        results.rounds[s]
            .iter()
            .map(|r| pick(if many { &r.many } else { &r.one }))
            .collect()
    };
    let mut rows = Vec::new();
    for many in [false, true] {
        let (clients, present) = if many {
            (plan.clients, many_present)
        } else {
            (1, plan.ops_one)
        };
        for (name, pick) in figures {
            let list = if name.ends_with("List") {
                format!(" ({present} present)")
            } else {
                String::new()
            };
            let who = if clients == 1 {
                "1 client".to_string()
            } else {
                format!("{clients} clients")
            };
            rows.push(crate::throughput_report::Row {
                label: format!("{name}{list}, {who}"),
                unit: "calls/s",
                ours: column(0, many, pick),
                theirs: column(1, many, pick),
                aim: Some(crate::throughput_report::Aim::AtLeast(AIM)),
            });
        }
    }
    out.push_str(&crate::throughput_report::table(
        &names[0], &names[1], &rows,
    ));
    out
}
