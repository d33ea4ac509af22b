//! The Diff.Apply benchmark: MB/s of uncompressed layer applied by each daemon's differ, for the
//! same layer of real files as plain tar, gzip and zstd, into a fresh overlayfs snapshot; daemons
//! alternating round by round, each started in a fresh directory.
//!
//! Per round and daemon: the three blobs are written through Content (leased), then for each
//! format a snapshot is prepared and one Apply is timed, from the call to its answer. The daemons
//! get the same blobs; the answer's digest must be the plain tar's.

use crate::client;
use crate::daemon::Subject;
use crate::session::Session;
use crate::throughput_report::{table, Row};
use anyhow::{bail, Context};
use rcontainerd_api::client::Headers;
use rcontainerd_api::services::content::{
    content_client::ContentClient, WriteAction, WriteContentRequest,
};
use rcontainerd_api::services::diff::{diff_client::DiffClient, ApplyRequest};
use rcontainerd_api::services::snapshots::{
    snapshots_client::SnapshotsClient, PrepareSnapshotRequest,
};
use rcontainerd_api::types::Descriptor;
use sha2::Digest as _;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const NAMESPACE: &str = "bench-apply";
const SNAPSHOTTER: &str = "overlayfs";
/// Content.Write message size.
const CHUNK: usize = 1 << 20;

/// One layer format: its media type, and the blob in it.
pub struct Format {
    pub name: &'static str,
    pub media_type: &'static str,
    pub blob: Vec<u8>,
    pub digest: String,
}

pub struct Plan {
    pub subjects: Vec<Subject>,
    pub rounds: u32,
    pub boot_timeout: Duration,
    pub tmp_dir: Option<PathBuf>,
    pub formats: Vec<Format>,
    /// sha256 of the plain tar and its size.
    pub diff_id: String,
    pub tar_bytes: u64,
    pub source: String,
}

pub struct Results {
    /// MB/s per subject, per round, per format.
    pub rates: Vec<Vec<Vec<f64>>>,
}

/// The plain tar of the import benchmark's layer (made from `source` when missing), compressed
/// both ways.
pub fn layers(tarball: &Path, source: &Path, layer_mib: u64) -> anyhow::Result<Layers> {
    let tar = crate::import::plain_layer(tarball, source, layer_mib)?;
    let diff_id = format!("sha256:{:x}", sha2::Sha256::digest(&tar));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar)?;
    let gzip = gz.finish()?;
    let zstd = zstd::encode_all(&tar[..], 3)?;
    let format = |name, media_type, blob: Vec<u8>| Format {
        name,
        media_type,
        digest: format!("sha256:{:x}", sha2::Sha256::digest(&blob)),
        blob,
    };
    let tar_bytes = tar.len() as u64;
    Ok(Layers {
        formats: vec![
            format("plain tar", "application/vnd.oci.image.layer.v1.tar", tar),
            format("gzip", "application/vnd.oci.image.layer.v1.tar+gzip", gzip),
            format("zstd", "application/vnd.oci.image.layer.v1.tar+zstd", zstd),
        ],
        diff_id,
        tar_bytes,
    })
}

/// The same layer in every format, and what applying it must answer.
pub struct Layers {
    pub formats: Vec<Format>,
    pub diff_id: String,
    pub tar_bytes: u64,
}

pub fn run(plan: &Plan) -> anyhow::Result<Results> {
    // Run directories go at once: each holds gigabytes (on a tmpfs, in memory), and removing a
    // few thousand files is no cost to the next measurement.
    let rates = crate::rounds::alternate(&plan.subjects, plan.rounds, 1, |_, s, _| {
        let session = Session::start(
            &plan.subjects[s],
            plan.tmp_dir.as_deref(),
            plan.boot_timeout,
        )?;
        let result = client::runtime()?.block_on(measure(plan, &session))?;
        session.stop()?.remove()?;
        Ok(result)
    })?;
    Ok(Results { rates })
}

async fn measure(plan: &Plan, session: &Session) -> anyhow::Result<Vec<f64>> {
    let channel = session.connect().await?;
    let headers = client::headers(channel.clone(), NAMESPACE, true).await?;
    let mut rates = Vec::new();
    for (i, format) in plan.formats.iter().enumerate() {
        write_blob(&channel, &headers, format).await?;
        let key = format!("apply-{i}");
        let mounts = SnapshotsClient::new(channel.clone())
            .prepare(headers.request(PrepareSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key,
                parent: String::new(),
                labels: HashMap::new(),
            }))
            .await
            .context("preparing a snapshot")?
            .into_inner()
            .mounts;
        // Let the disk and the page cache settle from the blob write.
        std::process::Command::new("sync").status()?;
        let start = Instant::now();
        let applied = DiffClient::new(channel.clone())
            .apply(headers.request(ApplyRequest {
                diff: Some(Descriptor {
                    media_type: format.media_type.into(),
                    digest: format.digest.clone(),
                    size: format.blob.len() as i64,
                    annotations: HashMap::new(),
                }),
                mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            }))
            .await
            .with_context(|| format!("applying the {} layer", format.name))?
            .into_inner()
            .applied
            .unwrap_or_default();
        let seconds = start.elapsed().as_secs_f64();
        if applied.digest != plan.diff_id {
            bail!(
                "the {} layer applied as {}, not {}",
                format.name,
                applied.digest,
                plan.diff_id
            );
        }
        rates.push(plan.tar_bytes as f64 / 1e6 / seconds);
    }
    Ok(rates)
}

async fn write_blob(channel: &Channel, headers: &Headers, format: &Format) -> anyhow::Result<()> {
    let total = format.blob.len();
    let mut messages = Vec::new();
    let mut offset = 0;
    for (i, chunk) in format.blob.chunks(CHUNK).enumerate() {
        let last = offset + chunk.len() == total;
        messages.push(WriteContentRequest {
            action: if last {
                WriteAction::Commit
            } else {
                WriteAction::Write
            } as i32,
            r#ref: format!("bench-{}", format.digest),
            total: if i == 0 { total as i64 } else { 0 },
            expected: if last {
                format.digest.clone()
            } else {
                String::new()
            },
            offset: offset as i64,
            data: chunk.to_vec().into(),
            ..Default::default()
        });
        offset += chunk.len();
    }
    let mut replies = ContentClient::new(channel.clone())
        .write(headers.request(tokio_stream::iter(messages)))
        .await
        .with_context(|| format!("writing the {} blob", format.name))?
        .into_inner();
    while replies.message().await?.is_some() {}
    Ok(())
}

pub fn render(plan: &Plan, results: &Results) -> String {
    let rows: Vec<Row> = plan
        .formats
        .iter()
        .enumerate()
        .map(|(f, format)| Row {
            label: format!(
                "Diff.Apply, {} ({:.0} MB blob)",
                format.name,
                format.blob.len() as f64 / 1e6
            ),
            unit: "MB/s",
            ours: results.rates[0].iter().map(|r| r[f]).collect(),
            theirs: results.rates[1].iter().map(|r| r[f]).collect(),
            aim: None,
        })
        .collect();
    format!(
        "Diff.Apply of one layer of {:.1} MB (uncompressed tar, from {}) into an empty overlayfs \
         snapshot, {} rounds; MB/s of uncompressed tar (higher is better).\n\n{}",
        plan.tar_bytes as f64 / 1e6,
        plan.source,
        plan.rounds,
        table(
            &plan.subjects[0].to_string(),
            &plan.subjects[1].to_string(),
            &rows
        )
    )
}
