//! `ctr images pull [flags] <ref>` (and `ctr content fetch`, the same without the unpack), as
//! containerd 1.6's ctr: under one temporary lease, the
//! image is fetched into the content store (see [`crate::fetch`]) while a table shows each
//! blob's progress, the image record is created (or updated) with the reference as its name and
//! the resolved descriptor as its target, then the image is unpacked for each platform asked
//! for: `unpacking linux/amd64 sha256:…...`, and at the end `done: <elapsed>`.
//!
//! On a terminal the table is drawn live with indicatif and replaced at the end by containerd's
//! last frame; otherwise only that last frame is printed. `--debug` shows no table, as
//! containerd's ctr.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::images::images_client::ImagesClient;
use rcontainerd_api::services::images::{CreateImageRequest, Image, UpdateImageRequest};
use tonic::Code;

use super::leases::TemporaryLease;
use crate::cli::{ContentFetch, ImagesPull};
use crate::errors::RpcError;
use crate::fetch::{self, FetchOptions, JobStatus, Progress, Remote, SharedProgress};
use crate::image_content::{self, ContentReader, Target};
use crate::oci::{self, Platform, PlatformMatcher};
use crate::tabwriter::TabWriter;
use crate::units::human_bytes;
use crate::unpack;

/// What containerd's ctr checks before it dials.
pub fn check_before_dial(args: &ImagesPull) -> anyhow::Result<()> {
    if args.reference.as_deref().unwrap_or_default().is_empty() {
        bail!("please provide an image reference to pull");
    }
    Ok(())
}

pub async fn run(
    channel: NamespacedChannel,
    namespace: &str,
    debug: bool,
    args: &ImagesPull,
) -> anyhow::Result<()> {
    let name = args.reference.clone().unwrap_or_default();
    let platforms = parse_platforms(&args.platforms)?;
    let matchers = matchers(args.all_platforms, &platforms);
    // containerd's ctr limits nothing unless asked.
    let max_concurrent = args
        .max_concurrent_downloads
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_CONCURRENCY);
    let remote = Remote::new(&name, &args.registry, max_concurrent)?;
    let options = FetchOptions {
        matchers,
        all_metadata: args.all_metadata,
        max_concurrent,
    };

    let lease = TemporaryLease::create(channel.clone()).await?;
    let pulled = pull_under(
        &channel, namespace, &lease, &remote, &options, debug, args, platforms,
    )
    .await;
    lease.release().await;
    pulled
}

/// Blobs fetched at a time unless `--max-concurrent-downloads` says otherwise (containerd's ctr
/// sets no limit).
const DEFAULT_CONCURRENCY: usize = 16;

fn parse_platforms(texts: &[String]) -> anyhow::Result<Vec<Platform>> {
    texts
        .iter()
        .map(|text| {
            Platform::parse(text).map_err(|err| anyhow!("unable to parse platform {text}: {err}"))
        })
        .collect()
}

/// The manifests of an index to fetch: all, those of the platforms named, else this one's
/// (exactly, as containerd's `platforms.Ordered`).
fn matchers(all_platforms: bool, platforms: &[Platform]) -> Vec<PlatformMatcher> {
    if all_platforms {
        vec![PlatformMatcher::All]
    } else if platforms.is_empty() {
        vec![PlatformMatcher::Strict(Platform::host())]
    } else {
        platforms
            .iter()
            .cloned()
            .map(PlatformMatcher::Strict)
            .collect()
    }
}

/// `ctr content fetch`: the image fetched and its record made, as by `images pull`, without
/// unpacking.
pub async fn fetch_content(
    channel: NamespacedChannel,
    debug: bool,
    args: &ContentFetch,
) -> anyhow::Result<()> {
    let name = args.reference.clone().unwrap_or_default();
    let platforms = parse_platforms(&args.platforms)?;
    let options = FetchOptions {
        // `--metadata-only`: no platform matches, so every manifest and config but no layer.
        matchers: if args.metadata_only {
            Vec::new()
        } else {
            matchers(args.all_platforms, &platforms)
        },
        all_metadata: args.all_metadata || args.metadata_only,
        max_concurrent: DEFAULT_CONCURRENCY,
    };
    let remote = Remote::new(&name, &args.registry, DEFAULT_CONCURRENCY)?;
    let lease = TemporaryLease::create(channel.clone()).await?;
    let fetched = fetch_image(
        &channel,
        &lease,
        &remote,
        &options,
        debug,
        &args.labels,
        None,
    )
    .await;
    lease.release().await;
    fetched.map(|_| ())
}

/// Fetches the image with its progress table and creates (or updates) its record.
async fn fetch_image(
    channel: &NamespacedChannel,
    lease: &TemporaryLease,
    remote: &Remote,
    options: &FetchOptions,
    debug: bool,
    labels: &[String],
    early: Option<(&str, &str)>,
) -> anyhow::Result<Image> {
    let progress = SharedProgress::default();
    let started = Instant::now();
    let mut display = (!debug).then(|| Display::new(&remote.name, started));
    let fetching = fetch::fetch(channel, lease, remote, options, &progress);
    tokio::pin!(fetching);
    // Layers are unpacked as they come in; a failure there is left to the unpack after the
    // fetch, which does what is left and reports.
    let unpacking = async {
        if let Some((platform, snapshotter)) = early {
            let _ = unpack_early(channel, lease, &progress, platform, snapshotter).await;
        }
    };
    tokio::pin!(unpacking);
    let mut unpacked = false;
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let fetched = loop {
        tokio::select! {
            result = &mut fetching => break result,
            _ = &mut unpacking, if !unpacked => unpacked = true,
            _ = ticker.tick() => {
                if let Some(display) = &mut display {
                    display.update(&progress);
                }
            }
        }
    };
    progress.lock().unwrap_or_else(|p| p.into_inner()).finished = true;
    if !unpacked {
        unpacking.await;
    }
    let top = match fetched {
        Ok(top) => top,
        Err(err) => {
            if let Some(display) = display {
                display.clear();
            }
            return Err(err);
        }
    };
    let image = create_image(channel, lease, remote, &top, labels).await?;
    if let Some(display) = display {
        display.finish(&progress);
    }
    Ok(image)
}

#[allow(clippy::too_many_arguments)]
async fn pull_under(
    channel: &NamespacedChannel,
    namespace: &str,
    lease: &TemporaryLease,
    remote: &Remote,
    options: &FetchOptions,
    debug: bool,
    args: &ImagesPull,
    platforms: Vec<Platform>,
) -> anyhow::Result<()> {
    let snapshotter =
        unpack::resolve_snapshotter(channel, namespace, args.snapshotter.as_deref()).await?;
    // One platform to unpack: its layers are unpacked while the others download.
    let early_platform = match (args.all_platforms, platforms.as_slice()) {
        (false, []) => Some(Platform::host().name()),
        (false, [one]) => Some(one.name()),
        _ => None,
    };
    let early = early_platform.as_deref().map(|p| (p, snapshotter.as_str()));
    let image = fetch_image(channel, lease, remote, options, debug, &args.labels, early).await?;
    let target = image.target.unwrap_or_default();
    let top = Target {
        media_type: target.media_type.clone(),
        digest: target.digest.clone(),
        size: target.size,
        platform: None,
    };
    let platforms: Vec<String> = if args.all_platforms {
        image_platforms(channel, &top)
            .await
            .map_err(|err| anyhow!("unable to resolve image platforms: {err}"))?
    } else if platforms.is_empty() {
        vec![Platform::host().name()]
    } else {
        platforms.iter().map(Platform::name).collect()
    };
    let start = Instant::now();
    for platform in &platforms {
        println!("unpacking {platform} {}...", top.digest);
        let _ = std::io::stdout().flush();
        let chain = unpack::unpack_under(channel, lease, &top, platform, &snapshotter).await?;
        if args.print_chainid {
            println!("image chain ID: {chain}");
        }
    }
    println!("done: {}\t", go_duration(start.elapsed()));
    Ok(())
}

/// Unpacks the image for `platform` layer by layer as the fetch brings the blobs in: the
/// manifest (through the index), the config, then each layer once it and those below it are
/// in. Ends when done, or when the fetch is over and something it needs is not there.
async fn unpack_early(
    channel: &NamespacedChannel,
    lease: &TemporaryLease,
    progress: &SharedProgress,
    platform: &str,
    snapshotter: &str,
) -> anyhow::Result<()> {
    let pause = || tokio::time::sleep(Duration::from_millis(20));
    let state = |digest: Option<&str>| {
        let p = progress.lock().unwrap_or_else(|p| p.into_inner());
        let present = digest.is_some_and(|d| p.committed.contains(d));
        (present, p.finished, p.top.clone())
    };
    let mut reader = ContentReader::new(channel.clone());
    let manifest = loop {
        let (_, finished, top) = state(None);
        if let Some(top) = top {
            if state(Some(top.digest().as_ref())).0 {
                let target = Target {
                    media_type: top.media_type().to_string(),
                    digest: top.digest().to_string(),
                    size: top.size() as i64,
                    platform: None,
                };
                match reader.manifest(&target, platform).await {
                    Ok(manifest) => break manifest,
                    Err(err) if finished || !image_content::is_missing(&err) => return Err(err),
                    Err(_) => {}
                }
            }
        }
        if finished {
            return Ok(());
        }
        pause().await;
    };
    let wait_for = |digest: String| async move {
        loop {
            let (present, finished, _) = state(Some(&digest));
            if present {
                return true;
            }
            if finished {
                return false;
            }
            pause().await;
        }
    };
    if !wait_for(manifest.config().digest().to_string()).await {
        return Ok(());
    }
    let config = oci::read_blob(channel, manifest.config().digest().as_ref()).await?;
    let config = oci_spec::image::ImageConfiguration::from_reader(&config[..])?;
    let diff_ids = config.rootfs().diff_ids().to_vec();
    if diff_ids.len() != manifest.layers().len() {
        return Ok(());
    }
    let mut chain = Vec::new();
    for (layer, diff_id) in manifest.layers().iter().zip(&diff_ids) {
        if !wait_for(layer.digest().to_string()).await {
            return Ok(());
        }
        unpack::unpack_layer(channel, lease, snapshotter, layer, diff_id, &chain).await?;
        chain.push(diff_id.clone());
    }
    Ok(())
}

/// containerd's `images.Platforms`: walking from the top, each platform an index names (in
/// its order, `unknown` ones left out), or the one a config describes; not sorted, not deduplicated.
async fn image_platforms(channel: &NamespacedChannel, top: &Target) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut pending = vec![oci::descriptor(&top.media_type, &top.digest, top.size)?];
    while let Some(desc) = pending.pop() {
        if let Some(p) = desc.platform() {
            let (os, arch) = (p.os().to_string(), p.architecture().to_string());
            if os != "unknown" && arch != "unknown" {
                let mut name = format!("{os}/{arch}");
                if let Some(variant) = p.variant().as_ref().filter(|v| !v.is_empty()) {
                    name = format!("{name}/{variant}");
                }
                found.push(name);
            }
            continue;
        }
        let media_type = desc.media_type().to_string();
        let digest = desc.digest().to_string();
        if oci::is_index(&media_type) {
            let bytes = oci::read_blob(channel, &digest).await?;
            let index = oci_spec::image::ImageIndex::from_reader(&bytes[..])?;
            pending.extend(index.manifests().iter().rev().cloned());
        } else if oci::is_manifest(&media_type) {
            let bytes = oci::read_blob(channel, &digest).await?;
            let manifest = oci_spec::image::ImageManifest::from_reader(&bytes[..])?;
            pending.push(manifest.config().clone());
        } else if oci::is_known_config(&media_type) {
            let bytes = oci::read_blob(channel, &digest).await?;
            let config = oci_spec::image::ImageConfiguration::from_reader(&bytes[..])?;
            found.push(
                Platform::normalized(
                    &config.os().to_string(),
                    &config.architecture().to_string(),
                    config.variant().as_deref().unwrap_or_default(),
                )
                .name(),
            );
        }
    }
    Ok(found)
}

/// containerd's `createNewImage`: create, else update the one there.
async fn create_image(
    channel: &NamespacedChannel,
    lease: &TemporaryLease,
    remote: &Remote,
    top: &oci_spec::image::Descriptor,
    labels: &[String],
) -> anyhow::Result<Image> {
    let labels: HashMap<String, String> = labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), "true".to_string()),
        })
        .collect();
    let image = Image {
        name: remote.name.clone(),
        labels,
        target: Some(oci::to_api(top)),
        ..Default::default()
    };
    let mut client = ImagesClient::new(channel.clone());
    loop {
        let created = client
            .create(lease.request(CreateImageRequest {
                image: Some(image.clone()),
                source_date_epoch: None,
            }))
            .await;
        match created {
            Ok(response) => return Ok(response.into_inner().image.unwrap_or(image)),
            Err(status) if status.code() == Code::AlreadyExists => {}
            Err(status) => return Err(RpcError::from(status).into()),
        }
        let updated = client
            .update(lease.request(UpdateImageRequest {
                image: Some(image.clone()),
                update_mask: None,
                source_date_epoch: None,
            }))
            .await;
        match updated {
            Ok(response) => return Ok(response.into_inner().image.unwrap_or(image)),
            // Removed in between: create it again.
            Err(status) if status.code() == Code::NotFound => continue,
            Err(status) => return Err(RpcError::from(status).into()),
        }
    }
}

/// The progress table: live bars on a terminal, containerd's last frame at the end.
struct Display {
    name: String,
    started: Instant,
    terminal: bool,
    bars: Option<(MultiProgress, Vec<(String, ProgressBar)>)>,
}

impl Display {
    fn new(name: &str, started: Instant) -> Display {
        let terminal = std::io::stdout().is_terminal();
        let bars = terminal.then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                Vec::new(),
            )
        });
        Display {
            name: name.to_string(),
            started,
            terminal,
            bars,
        }
    }

    fn update(&mut self, progress: &SharedProgress) {
        let Some((multi, bars)) = &mut self.bars else {
            return;
        };
        let progress = progress.lock().unwrap_or_else(|p| p.into_inner());
        let style =
            ProgressStyle::with_template("{prefix}: {msg:11} [{bar:38}] {bytes:>10}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("+ ");
        if bars.is_empty() {
            let bar = multi.add(ProgressBar::new(1).with_style(style.clone()));
            bar.set_prefix(self.name.clone());
            bars.push((self.name.clone(), bar));
        }
        let (_, top) = &bars[0];
        top.set_message(if progress.resolved {
            "resolved"
        } else {
            "resolving"
        });
        if progress.resolved {
            top.set_position(1);
        }
        for job in &progress.jobs {
            let bar = match bars.iter().find(|(k, _)| *k == job.key) {
                Some((_, bar)) => bar.clone(),
                None => {
                    let bar = multi.add(ProgressBar::new(0).with_style(style.clone()));
                    bar.set_prefix(job.key.clone());
                    bars.push((job.key.clone(), bar.clone()));
                    bar
                }
            };
            match &job.status {
                JobStatus::Waiting => bar.set_message("waiting"),
                JobStatus::Downloading { offset, total } => {
                    bar.set_message("downloading");
                    bar.set_length(*total as u64);
                    bar.set_position(*offset as u64);
                }
                JobStatus::Done { size } => {
                    bar.set_message("done");
                    bar.set_length(*size as u64);
                    bar.set_position(*size as u64);
                }
                JobStatus::Exists => {
                    bar.set_message("exists");
                    bar.set_length(1);
                    bar.set_position(1);
                }
            }
        }
    }

    fn clear(self) {
        if let Some((multi, _)) = self.bars {
            let _ = multi.clear();
        }
    }

    /// containerd's last frame: every blob done (or there before), the elapsed time and the
    /// bytes fetched.
    fn finish(self, progress: &SharedProgress) {
        let color = self.terminal;
        let name = self.name.clone();
        let started = self.started;
        self.clear();
        let progress = progress.lock().unwrap_or_else(|p| p.into_inner());
        print!(
            "{}",
            final_frame(&name, &progress, started.elapsed(), color)
        );
        let _ = std::io::stdout().flush();
    }
}

/// containerd's `progress.Bar` of width 40 (green on a terminal).
fn bar(fraction: f64, color: bool) -> String {
    let positive = (38.0 * fraction.clamp(0.0, 1.0)) as usize;
    let (green, reset) = if color {
        ("\x1b[32m", "\x1b[0m")
    } else {
        ("", "")
    };
    format!(
        "|{green}{}{reset}{}|",
        "+".repeat(positive),
        "-".repeat(38 - positive)
    )
}

/// The table containerd's ctr shows last, once the fetch is over.
fn final_frame(name: &str, progress: &Progress, elapsed: Duration, color: bool) -> String {
    let mut tw = TabWriter::new(1, 8, 1, ' ');
    tw.write_str(&format!("{name}:\tresolved\t{}\t\n", bar(1.0, color)));
    let mut total: i64 = 0;
    for job in &progress.jobs {
        let status = match job.status {
            JobStatus::Exists => "exists",
            JobStatus::Done { size } | JobStatus::Downloading { total: size, .. } => {
                total += size;
                "done"
            }
            JobStatus::Waiting => "done",
        };
        tw.write_str(&format!("{}:\t{status}\t{}\t\n", job.key, bar(1.0, color)));
    }
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        (total as f64 / seconds) as i64
    } else {
        0
    };
    let total_text: String = human_bytes(total).chars().take(6).collect();
    tw.write_str(&format!(
        "elapsed: {:<4}s\ttotal: {total_text:>7}\t({}/s)\t\n",
        format!("{seconds:.1}"),
        human_bytes(rate)
    ));
    tw.finish()
}

/// A duration as Go's `time.Duration.String` prints it (`1.503870021s`, `12.5ms`, `2m3s`).
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let fraction = |value: u128, digits: usize| -> String {
        let text = format!("{value:0digits$}");
        let text = text.trim_end_matches('0');
        if text.is_empty() {
            String::new()
        } else {
            format!(".{text}")
        }
    };
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}{}µs", nanos / 1_000, fraction(nanos % 1_000, 3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}{}ms", nanos / 1_000_000, fraction(nanos % 1_000_000, 6));
    }
    let seconds = nanos / 1_000_000_000;
    let (hours, minutes, secs) = (seconds / 3600, (seconds / 60) % 60, seconds % 60);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{secs}{}s", fraction(nanos % 1_000_000_000, 9)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_durations_like_go() {
        assert_eq!(
            go_duration(Duration::from_nanos(1_503_870_021)),
            "1.503870021s"
        );
        assert_eq!(go_duration(Duration::from_micros(12_500)), "12.5ms");
        assert_eq!(go_duration(Duration::from_secs(123)), "2m3s");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }

    #[test]
    fn draws_containerds_last_frame() {
        let progress = Progress {
            resolved: true,
            jobs: vec![
                fetch::Job {
                    key: "manifest-sha256:aa".to_string(),
                    status: JobStatus::Done { size: 2048 },
                },
                fetch::Job {
                    key: "layer-sha256:bb".to_string(),
                    status: JobStatus::Exists,
                },
            ],
            ..Default::default()
        };
        let text = final_frame(
            "example.com/a:1",
            &progress,
            Duration::from_millis(100),
            false,
        );
        let lines: Vec<&str> = text.lines().collect();
        let full = format!("|{}|", "+".repeat(38));
        // Columns as Go's tabwriter sets them: the elapsed line's cells widen the first two.
        assert_eq!(
            lines[0],
            format!("{:<20}{:<15}{full} ", "example.com/a:1:", "resolved")
        );
        assert_eq!(
            lines[1],
            format!("{:<20}{:<15}{full} ", "manifest-sha256:aa:", "done")
        );
        assert_eq!(
            lines[2],
            format!("{:<20}{:<15}{full} ", "layer-sha256:bb:", "exists")
        );
        assert_eq!(
            lines[3],
            format!(
                "{:<20}{:<15}{:<41}",
                "elapsed: 0.1 s", "total:  2.0 Ki", "(20.0 KiB/s)"
            )
        );
    }
}
