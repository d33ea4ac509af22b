//! The content benchmark: one large blob written in chunks over one Write stream and read back, many small
//! blobs written one stream each, and `dd … conv=fdatasync` into the same filesystem as the disk's limit.

use crate::client;
use crate::daemon::Subject;
use crate::isolated_report::{self, CONTAINERD, IN_PROCESS};
use crate::session::Session;
use crate::workdir::WorkDir;
use anyhow::{bail, ensure, Context};
use rcontainerd_api::client::Headers;
use rcontainerd_api::services::content::{
    content_client::ContentClient, ReadContentRequest, WriteAction, WriteContentRequest,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const MIB: usize = 1 << 20;
const NAMESPACE: &str = "bench";

pub struct Plan {
    pub subjects: Vec<Subject>,
    pub rounds: u32,
    pub large_mib: usize,
    pub chunk_mib: usize,
    pub small_count: usize,
    pub small_bytes: usize,
    pub boot_timeout: Duration,
    pub tmp_dir: Option<PathBuf>,
}

/// The blobs written, the same for every daemon and round.
pub struct Data {
    large: Vec<u8>,
    large_digest: String,
    small: Vec<(Vec<u8>, String)>,
}

impl Data {
    pub fn generate(plan: &Plan) -> Self {
        let large = pseudo_random(plan.large_mib * MIB, 1);
        let large_digest = digest(&large);
        let small = (0..plan.small_count)
            .map(|i| {
                let blob = pseudo_random(plan.small_bytes, 1000 + i as u64);
                let digest = digest(&blob);
                (blob, digest)
            })
            .collect::<Vec<_>>();
        let distinct: std::collections::HashSet<&String> = small.iter().map(|(_, d)| d).collect();
        assert_eq!(distinct.len(), small.len(), "small blobs must differ");
        Self {
            large,
            large_digest,
            small,
        }
    }
}

/// Rates of one daemon in one round, in MB/s (10^6 bytes) and blobs/s.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    pub write: f64,
    pub read: f64,
    pub small: f64,
}

pub struct Results {
    /// `dd[s][r]`: `dd` MB/s run right before subject `s` in round `r`.
    pub dd: Vec<Vec<f64>>,
    /// `rounds[s][r]`: subject `s`, round `r`.
    pub rounds: Vec<Vec<Round>>,
}

pub fn run(plan: &Plan) -> anyhow::Result<Results> {
    eprintln!("generating {} MiB of test data", plan.large_mib);
    let data = Data::generate(plan);
    let mut dd_rates = vec![Vec::new(); plan.subjects.len()];
    // Run directories are removed after the last round (about 11 GiB for 5 rounds).
    let rounds = crate::rounds::alternate(&plan.subjects, plan.rounds, 1, |round, s, spent| {
        // Each daemon is compared with dd run just before it, on the disk as it is then.
        let rate = dd(plan).with_context(|| format!("round {round} of dd"))?;
        eprintln!(
            "round {round:>2}  {:<27} write {rate:.1} MB/s",
            "dd conv=fdatasync"
        );
        dd_rates[s].push(rate);
        measure(plan, &data, &plan.subjects[s], spent)
    })?;
    Ok(Results {
        dd: dd_rates,
        rounds,
    })
}

/// `dd if=/dev/zero of=<run dir>/f bs=1M count=<large> conv=fdatasync`, timed around the process.
fn dd(plan: &Plan) -> anyhow::Result<f64> {
    let dir = WorkDir::new(plan.tmp_dir.as_deref())?;
    nix::unistd::sync();
    let start = Instant::now();
    let output = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", dir.path().join("f").display()))
        .arg("bs=1M")
        .arg(format!("count={}", plan.large_mib))
        .arg("conv=fdatasync")
        .output()
        .context("running dd")?;
    let elapsed = start.elapsed();
    if !output.status.success() {
        bail!(
            "dd failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    dir.remove()?;
    Ok(mb_per_s(plan.large_mib * MIB, elapsed))
}

fn measure(
    plan: &Plan,
    data: &Data,
    subject: &Subject,
    spent: &mut Vec<WorkDir>,
) -> anyhow::Result<Round> {
    let session = Session::start(subject, plan.tmp_dir.as_deref(), plan.boot_timeout)?;
    let runtime = client::runtime()?;
    let use_lease = subject.needs_lease();
    let round = runtime.block_on(async {
        let channel = session.connect().await?;
        let headers = client::headers(channel.clone(), NAMESPACE, use_lease).await?;
        let mut client = ContentClient::new(channel).max_decoding_message_size(64 * MIB);
        let write = write_large(&mut client, &headers, data, plan.chunk_mib * MIB)
            .await
            .context("writing the large blob")?;
        let read = read_large(&mut client, &headers, data)
            .await
            .context("reading the large blob back")?;
        let small = write_small(&mut client, &headers, data)
            .await
            .context("writing small blobs")?;
        anyhow::Ok(Round { write, read, small })
    })?;
    drop(runtime);
    check_blob_files(session.dir(), subject, data)?;
    spent.push(session.stop()?);
    Ok(round)
}

/// Writes the large blob as WRITE messages at running offsets, then a COMMIT with the total and digest,
/// all on one stream, reading replies as they come. Timed from the first message to the commit's reply.
async fn write_large(
    client: &mut ContentClient<Channel>,
    headers: &Headers,
    data: &Data,
    chunk: usize,
) -> anyhow::Result<f64> {
    let total = data.large.len() as i64;
    // Built before the clock starts: copying 1 GiB into messages is the client's cost, not the daemon's.
    let mut messages: Vec<WriteContentRequest> = data
        .large
        .chunks(chunk)
        .enumerate()
        .map(|(i, piece)| WriteContentRequest {
            action: WriteAction::Write as i32,
            r#ref: "large".to_string(),
            total,
            expected: data.large_digest.clone(),
            offset: (i * chunk) as i64,
            data: piece.to_vec().into(),
            ..Default::default()
        })
        .collect();
    messages.push(commit_message("large", total, &data.large_digest));
    nix::unistd::sync();
    let start = Instant::now();
    let committed = write_stream(client, headers, messages).await?;
    let elapsed = start.elapsed();
    ensure!(
        committed == data.large_digest,
        "large blob committed as {committed}, expected {}",
        data.large_digest
    );
    Ok(mb_per_s(data.large.len(), elapsed))
}

/// A data-less COMMIT. Its offset is the end of the data: offset 0 would mean "truncate and restart".
fn commit_message(reference: &str, total: i64, digest: &str) -> WriteContentRequest {
    WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: reference.to_string(),
        total,
        expected: digest.to_string(),
        offset: total,
        ..Default::default()
    }
}

/// Sends `messages` on one Write stream and returns the digest the COMMIT reply names.
async fn write_stream(
    client: &mut ContentClient<Channel>,
    headers: &Headers,
    messages: Vec<WriteContentRequest>,
) -> anyhow::Result<String> {
    let sent = messages.len();
    let mut replies = client
        .write(headers.request(tokio_stream::iter(messages)))
        .await
        .context("opening the write stream")?
        .into_inner();
    let mut received = 0;
    let mut committed = None;
    while let Some(reply) = replies.message().await.context("write stream")? {
        received += 1;
        if reply.action == WriteAction::Commit as i32 {
            committed = Some(reply.digest);
        }
    }
    // Both daemons answer every message, and the COMMIT once more as the stream ends (observed: n + 1
    // replies to n messages from containerd 1.6.20 and from rcontainerd alike).
    ensure!(
        received >= sent,
        "{received} replies to {sent} write messages"
    );
    committed.context("no reply to COMMIT")
}

async fn read_large(
    client: &mut ContentClient<Channel>,
    headers: &Headers,
    data: &Data,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut replies = client
        .read(headers.request(ReadContentRequest {
            digest: data.large_digest.clone(),
            offset: 0,
            size: 0,
        }))
        .await
        .context("opening the read stream")?
        .into_inner();
    let mut next = 0usize;
    while let Some(reply) = replies.message().await.context("read stream")? {
        ensure!(
            reply.offset as usize == next,
            "read reply at offset {}, expected {next}",
            reply.offset
        );
        let end = next + reply.data.len();
        ensure!(
            data.large.get(next..end) == Some(&reply.data[..]),
            "read bytes {next}..{end} differ from what was written"
        );
        next = end;
    }
    let elapsed = start.elapsed();
    ensure!(
        next == data.large.len(),
        "read {next} bytes of {}",
        data.large.len()
    );
    Ok(mb_per_s(next, elapsed))
}

/// One stream per blob (WRITE with all the data, then COMMIT), one after another; returns blobs per second.
async fn write_small(
    client: &mut ContentClient<Channel>,
    headers: &Headers,
    data: &Data,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    for (i, (blob, digest)) in data.small.iter().enumerate() {
        let reference = format!("small-{i}");
        let total = blob.len() as i64;
        let messages = vec![
            WriteContentRequest {
                action: WriteAction::Write as i32,
                r#ref: reference.clone(),
                total,
                expected: digest.clone(),
                offset: 0,
                data: blob.clone().into(),
                ..Default::default()
            },
            commit_message(&reference, total, digest),
        ];
        let committed = write_stream(client, headers, messages)
            .await
            .with_context(|| format!("blob {reference}"))?;
        ensure!(
            &committed == digest,
            "blob {reference} committed as {committed}"
        );
    }
    Ok(data.small.len() as f64 / start.elapsed().as_secs_f64())
}

/// Checks that the large blob really landed under the daemon's root (a size check, not a re-hash).
fn check_blob_files(dir: &Path, subject: &Subject, data: &Data) -> anyhow::Result<()> {
    let hex = data
        .large_digest
        .strip_prefix("sha256:")
        .context("digest without sha256: prefix")?;
    let found = find_file(&dir.join("root"), hex, 6)
        .with_context(|| format!("{subject}: no file named {hex} under its root"))?;
    let size = std::fs::metadata(&found)?.len();
    ensure!(
        size == data.large.len() as u64,
        "{subject}: {} has {size} bytes",
        found.display()
    );
    Ok(())
}

fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name() == name {
            return Some(path);
        }
        if depth > 0 && entry.file_type().is_ok_and(|t| t.is_dir()) {
            subdirs.push(path);
        }
    }
    subdirs
        .into_iter()
        .find_map(|sub| find_file(&sub, name, depth - 1))
}

fn mb_per_s(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in hash {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// Incompressible-looking bytes from xorshift64*, reproducible from `seed`.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    // A bijection of the seed, so distinct seeds give distinct streams; xorshift must not start at 0.
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    if state == 0 {
        state = 1;
    }
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Aims of issue 5: the large write against dd, and every figure against containerd.
const AIM_DISK: f64 = 0.9;
const AIM_CONTAINERD: f64 = 1.0;

/// Picks one figure's value out of a round.
type Pick = fn(&Round) -> f64;

pub fn render(plan: &Plan, results: &Results) -> String {
    use crate::throughput_report::{spread, table, Aim, Row};
    let names: Vec<String> = plan.subjects.iter().map(|s| s.to_string()).collect();
    let mut out = format!(
        "{} rounds; each round starts each daemon once in a fresh directory ({}), each right after \
         `dd if=/dev/zero of=<fresh dir>/f bs=1M count={} conv=fdatasync`, and: writes a {} MiB blob of pseudo-random bytes \
         in {} MiB WRITE messages on one stream (COMMIT with total and digest last, replies read as they \
         come; timed to the COMMIT reply, after a sync(2)), reads it back in one Read call (page cache warm), \
         then writes {} blobs of {} bytes, one stream each (WRITE, COMMIT). MB = 10^6 bytes. Every call, to \
         either daemon, carries a lease.\n\n",
        plan.rounds,
        crate::rounds::describe(&names),
        plan.large_mib,
        plan.large_mib,
        plan.chunk_mib,
        plan.small_count,
        plan.small_bytes,
    );
    let column =
        |s: usize, pick: Pick| -> Vec<f64> { results.rounds[s].iter().map(pick).collect() };
    // Each figure with the isolated subject's aim against in-process, if the issue names one.
    let picks: [(String, &'static str, Pick, Option<Aim>); 3] = [
        (
            format!("write {} MiB blob", plan.large_mib),
            "MB/s",
            |r| r.write,
            Some(isolated_report::LARGE_WRITE_AIM),
        ),
        (
            format!("read {} MiB blob", plan.large_mib),
            "MB/s",
            |r| r.read,
            None,
        ),
        (
            format!(
                "{} × {} B blobs, one stream each",
                plan.small_count, plan.small_bytes
            ),
            "blobs/s",
            |r| r.small,
            None,
        ),
    ];
    let rows: Vec<Row> = picks
        .iter()
        .map(|(label, unit, pick, _)| Row {
            label: label.clone(),
            unit,
            ours: column(IN_PROCESS, *pick),
            theirs: column(CONTAINERD, *pick),
            aim: Some(Aim::AtLeast(AIM_CONTAINERD)),
        })
        .collect();
    let figures: Vec<isolated_report::Figure> = picks
        .iter()
        .map(|(label, unit, pick, aim)| isolated_report::Figure {
            label: label.clone(),
            unit,
            values: (0..plan.subjects.len()).map(|s| column(s, *pick)).collect(),
            aim: *aim,
        })
        .collect();
    out.push_str(&table(&names[IN_PROCESS], &names[CONTAINERD], &rows));
    out.push_str(&isolated_report::render(&names, &figures));
    let _ = std::fmt::Write::write_fmt(
        &mut out,
        format_args!(
            "\n`dd … conv=fdatasync` in the same rounds: {} MB/s (min / median / max).\n\n",
            spread(&results.dd.concat(), 1)
        ),
    );
    let disk_rows: Vec<Row> = plan
        .subjects
        .iter()
        .enumerate()
        .map(|(s, subject)| Row {
            label: format!("{subject}: write {} MiB blob", plan.large_mib),
            unit: "MB/s",
            ours: column(s, |r| r.write),
            theirs: results.dd[s].clone(),
            aim: Some(Aim::AtLeast(AIM_DISK)),
        })
        .collect();
    out.push_str(&table("daemon", "dd", &disk_rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_random_data_is_reproducible_distinct_and_not_zero() {
        let a = pseudo_random(4096, 7);
        assert_eq!(a.len(), 4096);
        assert_eq!(a, pseudo_random(4096, 7));
        assert_ne!(a, pseudo_random(4096, 8));
        assert!(a.iter().filter(|&&b| b == 0).count() < 64);
    }

    #[test]
    fn digest_is_sha256_in_oci_form() {
        assert_eq!(
            digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
