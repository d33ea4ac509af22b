//! The image import benchmark: Debian's `ctr images import` of one OCI tarball holding a single gzip
//! layer of real files, into rcontainerd and into containerd 1.6 (with `unpigz` on its PATH when the
//! machine has it, and with Go's gzip), each started in a fresh directory, daemons alternating round
//! by round. The figure is the wall time of the ctr process: writing the blobs through Content, then
//! unpacking the layer through Diff.Apply into an overlayfs snapshot.
//!
//! The tarball is made once from files under a directory of this machine (default `/usr/lib`), in
//! path order until the layer holds `--layer-mib` of file data, and kept for later runs.

use crate::boot;
use crate::daemon::Subject;
use crate::throughput_report::spread;
use crate::workdir::WorkDir;
use anyhow::{bail, Context};
use sha2::Digest as _;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const NAMESPACE: &str = "bench-import";
const IMAGE: &str = "docker.io/bench/import:latest";

/// One daemon as this benchmark runs it: a subject, and the environment it is started with.
pub struct Contestant {
    pub subject: Subject,
    pub name: String,
    pub env: Vec<(String, String)>,
}

pub struct Plan {
    pub contestants: Vec<Contestant>,
    pub rounds: u32,
    pub ctr: PathBuf,
    pub tarball: PathBuf,
    pub source: PathBuf,
    pub layer_mib: u64,
    /// Layers the files are cut into when the tarball is made.
    pub layers: u32,
    pub boot_timeout: Duration,
    pub tmp_dir: Option<PathBuf>,
    /// What the run directories live on, for the report.
    pub filesystem: String,
}

pub struct Results {
    /// Seconds per round, per contestant.
    pub seconds: Vec<Vec<f64>>,
    pub layer_bytes: u64,
    pub compressed_bytes: u64,
    pub files: u64,
}

/// The containerd contestants: with `unpigz` (when installed) and with Go's gzip.
pub fn contestants(rcontainerd: Subject, containerd: Subject) -> Vec<Contestant> {
    let mut all = vec![Contestant {
        subject: rcontainerd,
        name: "rcontainerd".into(),
        env: Vec::new(),
    }];
    if which("unpigz").is_some() {
        all.push(Contestant {
            subject: containerd.clone(),
            name: "containerd + unpigz".into(),
            env: Vec::new(),
        });
    }
    all.push(Contestant {
        subject: containerd,
        name: "containerd, Go gzip".into(),
        env: vec![("CONTAINERD_DISABLE_PIGZ".into(), "1".into())],
    });
    all
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

pub fn run(plan: &Plan) -> anyhow::Result<Results> {
    for c in &plan.contestants {
        boot::check_binary(c.subject.binary())?;
    }
    let made = ensure_tarball(&plan.tarball, &plan.source, plan.layer_mib, plan.layers)?;
    eprintln!(
        "tarball {}: layer {:.1} MiB of files ({} files), {:.1} MiB gzip",
        plan.tarball.display(),
        made.layer_bytes as f64 / 1048576.0,
        made.files,
        made.compressed_bytes as f64 / 1048576.0
    );
    let mut seconds: Vec<Vec<f64>> = plan.contestants.iter().map(|_| Vec::new()).collect();
    for round in 1..=plan.rounds {
        for c in crate::rounds::order(round, plan.contestants.len()) {
            let contestant = &plan.contestants[c];
            let s = import_once(plan, contestant)
                .with_context(|| format!("round {round} of {}", contestant.name))?;
            eprintln!("round {round:>2}  {:<27} {s:.2} s", contestant.name);
            seconds[c].push(s);
        }
    }
    Ok(Results {
        seconds,
        layer_bytes: made.layer_bytes,
        compressed_bytes: made.compressed_bytes,
        files: made.files,
    })
}

/// Starts the contestant in a fresh directory, times one import, stops it and removes the directory.
fn import_once(plan: &Plan, contestant: &Contestant) -> anyhow::Result<f64> {
    let tarball = plan.tarball.display().to_string();
    let args = [
        "images",
        "import",
        "--snapshotter",
        "overlayfs",
        tarball.as_str(),
    ];
    timed_ctr(
        contestant,
        plan.tmp_dir.as_deref(),
        plan.boot_timeout,
        &plan.ctr,
        &args,
    )
}

/// Starts the contestant in a fresh directory, times `ctr -n bench-import <args>` against it, checks
/// an overlayfs snapshot was made (the image was unpacked), stops it and removes the directory.
pub fn timed_ctr(
    contestant: &Contestant,
    tmp_dir: Option<&Path>,
    boot_timeout: Duration,
    ctr: &Path,
    args: &[&str],
) -> anyhow::Result<f64> {
    let dir = WorkDir::new(tmp_dir)?;
    let mut launch = contestant.subject.prepare(dir.path())?;
    for (k, v) in &contestant.env {
        launch.command.env(k, v);
    }
    let (daemon, _, _) = boot::boot(boot_timeout, &contestant.subject, &mut launch)?;
    let run = |args: &[&str]| {
        Command::new(ctr)
            .arg("--address")
            .arg(&launch.socket)
            .args(["-n", NAMESPACE])
            .args(args)
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .output()
            .with_context(|| format!("running {} {args:?}", ctr.display()))
    };
    // Settle: the page cache holds the input; the disk has caught up with the last round.
    Command::new("sync").status().context("sync")?;
    let start = Instant::now();
    let out = run(args)?;
    let elapsed = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "ctr {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let check = run(&["snapshots", "--snapshotter", "overlayfs", "ls"])?;
    let listed = String::from_utf8_lossy(&check.stdout);
    if listed.lines().count() < 2 {
        bail!("no snapshot after ctr {args:?}:\n{listed}");
    }
    daemon.stop()?;
    dir.remove()?;
    Ok(elapsed)
}

struct Made {
    layer_bytes: u64,
    compressed_bytes: u64,
    files: u64,
}

/// Makes the OCI tarball unless it exists (then reads its sizes back from a side file).
fn ensure_tarball(path: &Path, source: &Path, layer_mib: u64, layers: u32) -> anyhow::Result<Made> {
    let sizes = path.with_extension("sizes");
    if path.is_file() {
        if let Ok(text) = std::fs::read_to_string(&sizes) {
            let n: Vec<u64> = text
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            if let [layer_bytes, compressed_bytes, files] = n[..] {
                return Ok(Made {
                    layer_bytes,
                    compressed_bytes,
                    files,
                });
            }
        }
    }
    eprintln!(
        "making {} from {} ({layer_mib} MiB of files)...",
        path.display(),
        source.display()
    );
    let work = tempfile::tempdir_in(path.parent().unwrap_or(Path::new("/var/tmp")))?;
    let Written {
        layers: written,
        bytes: layer_bytes,
        files,
    } = write_layers(source, layer_mib << 20, layers, work.path())?;
    let mut blobs = Vec::new();
    for (layer_path, _) in &written {
        let (digest, size) = file_digest(layer_path)?;
        blobs.push((layer_path.clone(), digest, size));
    }
    let compressed_bytes = blobs.iter().map(|(_, _, size)| size).sum::<u64>();
    let diff_ids: Vec<&str> = written.iter().map(|(_, d)| d.as_str()).collect();
    let config = serde_json_config(&diff_ids);
    let config_digest = format!("sha256:{:x}", sha2::Sha256::digest(config.as_bytes()));
    let layer_list: Vec<String> = blobs
        .iter()
        .map(|(_, digest, size)| {
            format!(
                "{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"{digest}\",\"size\":{size}}}"
            )
        })
        .collect();
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
         \"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{config_digest}\",\"size\":{}}},\
         \"layers\":[{}]}}",
        config.len(),
        layer_list.join(",")
    );
    let manifest_digest = format!("sha256:{:x}", sha2::Sha256::digest(manifest.as_bytes()));
    let index = format!(
        "{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
         \"digest\":\"{manifest_digest}\",\"size\":{},\"annotations\":{{\"io.containerd.image.name\":\"{IMAGE}\",\
         \"org.opencontainers.image.ref.name\":\"latest\"}}}}]}}",
        manifest.len()
    );
    let partial = path.with_extension("partial");
    let mut out = tar::Builder::new(BufWriter::new(File::create(&partial)?));
    let mut add = |name: &str, data: &[u8]| -> anyhow::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        out.append_data(&mut header, name, data)?;
        Ok(())
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add("index.json", index.as_bytes())?;
    add(&blob_name(&manifest_digest), manifest.as_bytes())?;
    add(&blob_name(&config_digest), config.as_bytes())?;
    for (layer_path, digest, size) in &blobs {
        let mut header = tar::Header::new_ustar();
        header.set_size(*size);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        out.append_data(&mut header, blob_name(digest), File::open(layer_path)?)?;
    }
    out.into_inner()?.flush()?;
    std::fs::rename(&partial, path)?;
    std::fs::write(
        &sizes,
        format!("{layer_bytes} {compressed_bytes} {files}\n"),
    )?;
    Ok(Made {
        layer_bytes,
        compressed_bytes,
        files,
    })
}

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

fn serde_json_config(diff_ids: &[&str]) -> String {
    format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Cmd\":[\"/bin/sh\"]}},\
         \"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"{}\"]}}}}",
        diff_ids.join("\",\"")
    )
}

/// What [`write_layers`] wrote: each layer's file and diff ID, the file data size and file count.
struct Written {
    layers: Vec<(PathBuf, String)>,
    bytes: u64,
    files: u64,
}

/// Gzip layers of the regular files, directories and symlinks under `source`, in path order, until
/// `limit` bytes of file data, cut into `layers` layers of about equal file data (each with the
/// directories above its files, as image builders write them), as `layer-<i>.tar.gz` in `out_dir`.
fn write_layers(source: &Path, limit: u64, layers: u32, out_dir: &Path) -> anyhow::Result<Written> {
    struct Hashing<W> {
        inner: W,
        hash: sha2::Sha256,
    }
    impl<W: Write> Write for Hashing<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.hash.update(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    type Builder = tar::Builder<Hashing<flate2::write::GzEncoder<BufWriter<File>>>>;
    let open = |i: u32| -> anyhow::Result<(PathBuf, Builder)> {
        let path = out_dir.join(format!("layer-{i}.tar.gz"));
        let gz = flate2::write::GzEncoder::new(
            BufWriter::with_capacity(1 << 20, File::create(&path)?),
            flate2::Compression::default(),
        );
        let mut builder = tar::Builder::new(Hashing {
            inner: gz,
            hash: sha2::Sha256::new(),
        });
        builder.follow_symlinks(false);
        Ok((path, builder))
    };
    let close = |path: PathBuf, builder: Builder| -> anyhow::Result<(PathBuf, String)> {
        let hashing = builder.into_inner()?;
        let diff_id = format!("sha256:{:x}", hashing.hash.finalize());
        hashing.inner.finish()?.flush()?;
        Ok((path, diff_id))
    };
    let per_layer = limit.div_ceil(u64::from(layers.max(1)));
    let mut done = Vec::new();
    let (mut path, mut builder) = open(0)?;
    // Directories this layer holds already.
    let mut listed: std::collections::HashSet<PathBuf> = Default::default();
    let (mut bytes, mut files) = (0u64, 0u64);
    let mut stack = vec![source.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if bytes >= limit {
            break;
        }
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(d) => d.flatten().map(|e| e.path()).collect(),
            Err(_) => continue,
        };
        entries.sort();
        let relative = dir.strip_prefix("/").unwrap_or(&dir);
        if !relative.as_os_str().is_empty() && listed.insert(dir.clone()) {
            builder.append_path_with_name(&dir, relative)?;
        }
        for path in entries.iter().rev() {
            let meta = std::fs::symlink_metadata(path)?;
            if meta.is_dir() {
                stack.push(path.clone());
            }
        }
        for file in &entries {
            let meta = std::fs::symlink_metadata(file)?;
            if meta.is_dir() || !(meta.is_file() || meta.file_type().is_symlink()) {
                continue;
            }
            if bytes >= per_layer * (done.len() as u64 + 1) && (done.len() as u32) < layers - 1 {
                let next = open(done.len() as u32 + 1)?;
                let (old_path, old_builder) = (
                    std::mem::replace(&mut path, next.0),
                    std::mem::replace(&mut builder, next.1),
                );
                done.push(close(old_path, old_builder)?);
                listed.clear();
            }
            // The directories above the file, outermost first, unless this layer has them.
            let mut above: Vec<&Path> = file
                .ancestors()
                .skip(1)
                .filter(|a| a.strip_prefix("/").is_ok_and(|r| !r.as_os_str().is_empty()))
                .collect();
            above.reverse();
            for a in above {
                if listed.insert(a.to_path_buf()) {
                    builder.append_path_with_name(a, a.strip_prefix("/").unwrap_or(a))?;
                }
            }
            let name = file.strip_prefix("/").unwrap_or(file);
            builder.append_path_with_name(file, name)?;
            bytes += meta.len();
            files += 1;
        }
    }
    done.push(close(path, builder)?);
    Ok(Written {
        layers: done,
        bytes,
        files,
    })
}

fn file_digest(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("sha256:{:x}", hash.finalize()), size))
}

pub fn render(plan: &Plan, results: &Results) -> String {
    let mut out = format!(
        "Import of {} ({:.1} MiB of files in {} files, {:.1} MiB gzip) with {} into daemons on {}, \
         {} rounds; wall time of `ctr images import` (lower is better).\n\n",
        plan.tarball.display(),
        results.layer_bytes as f64 / 1048576.0,
        results.files,
        results.compressed_bytes as f64 / 1048576.0,
        plan.ctr.display(),
        plan.filesystem,
        plan.rounds
    );
    out.push_str("| daemon | s min / median / max | MB/s of files (median) | containerd ÷ rcontainerd (round by round) |\n|---|---:|---:|---:|\n");
    let ours = &results.seconds[0];
    for (c, contestant) in plan.contestants.iter().enumerate() {
        let times = &results.seconds[c];
        let median = crate::stats::Spread::of(times)
            .map(|s| s.median)
            .unwrap_or(0.0);
        let speedup = if c == 0 {
            "–".to_string()
        } else {
            let r: Vec<f64> = times.iter().zip(ours).map(|(t, o)| t / o).collect();
            spread(&r, 2)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {speedup} |",
            contestant.name,
            spread(times, 2),
            results.layer_bytes as f64 / 1e6 / median.max(1e-9)
        );
    }
    out
}

/// A tmpfs mounted for the run's directories; unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(parent: Option<&Path>) -> anyhow::Result<Tmpfs> {
        let dir = match parent {
            Some(p) => tempfile::tempdir_in(p)?,
            None => tempfile::tempdir()?,
        };
        nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=12g"),
        )
        .context("mounting a tmpfs")?;
        Ok(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The filesystem type the run directories are on (from `stat -f`), for the report.
pub fn filesystem_of(dir: Option<&Path>) -> String {
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(&dir)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "an unknown filesystem".into())
}

/// Makes the import tarball unless it exists.
pub fn ensure(tarball: &Path, source: &Path, layer_mib: u64, layers: u32) -> anyhow::Result<()> {
    ensure_tarball(tarball, source, layer_mib, layers).map(drop)
}

/// The layer of the import tarball (made when missing) as its plain tar.
pub fn plain_layer(tarball: &Path, source: &Path, layer_mib: u64) -> anyhow::Result<Vec<u8>> {
    ensure_tarball(tarball, source, layer_mib, 1)?;
    let mut archive = tar::Archive::new(File::open(tarball)?);
    let mut largest: Option<Vec<u8>> = None;
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.path()?.starts_with("blobs") {
            continue;
        }
        if largest
            .as_ref()
            .is_some_and(|l| l.len() as u64 >= entry.size())
        {
            continue;
        }
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data)?;
        largest = Some(data);
    }
    let gzip = largest.context("no blob in the import tarball")?;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gzip[..]).read_to_end(&mut tar)?;
    Ok(tar)
}
