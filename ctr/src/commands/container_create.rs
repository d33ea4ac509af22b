//! `ctr containers create`: a container record from an image (or a root
//! filesystem path, or a spec file), made the way containerd 1.6's client
//! makes it for its ctr — under a temporary lease: the image's snapshot
//! prepared for the container, the spec generated (`crate::spec`), the
//! record created.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{anyhow, bail, Context as _};
use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::containers::container::Runtime;
use rcontainerd_api::services::containers::containers_client::ContainersClient;
use rcontainerd_api::services::containers::{Container, CreateContainerRequest};
use rcontainerd_api::services::images::images_client::ImagesClient;
use rcontainerd_api::services::images::GetImageRequest;
use rcontainerd_api::services::namespaces::namespaces_client::NamespacesClient;
use rcontainerd_api::services::namespaces::GetNamespaceRequest;
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::{
    MountsRequest, PrepareSnapshotRequest, StatSnapshotRequest,
};
use tonic::Code;

use crate::cli::ContainerFlags;
use crate::commands::leases::TemporaryLease;
use crate::errors::RpcError;
use crate::image_content::{chain_id, host_platform, is_config, ContentReader, Target};
use crate::labels::parse_labels;
use crate::spec::{self, Device, ImageProcess, Namespace, Spec, UserDatabase};

/// The snapshotter containerd's client uses when neither the flag nor the
/// namespace names one.
const DEFAULT_SNAPSHOTTER: &str = "overlayfs";
/// The namespace label naming a namespace's default snapshotter.
const NAMESPACE_SNAPSHOTTER_LABEL: &str = "containerd.io/defaults/snapshotter";
/// The container label holding the image's stop signal.
const STOP_SIGNAL_LABEL: &str = "io.containerd.image.config.stop-signal";
/// The runtime whose options are runc's (`containerd.runc.v1.Options`).
const RUNC_V2: &str = "io.containerd.runc.v2";
const RUNC_OPTIONS_URL: &str = "containerd.runc.v1.Options";
const RUNTIME_OPTIONS_URL: &str = "runtimeoptions.v1.Options";
/// containerd's limit on a label's key and value together.
const MAX_LABEL_SIZE: usize = 4096;

/// The checks containerd's ctr makes before it dials: the image (unless
/// `--config`) and the container id must be given. `containers create`
/// words its failures as invalid arguments, `run` without the class.
pub fn check_arguments(
    flags: &ContainerFlags,
    positional: &[String],
    class: &str,
) -> anyhow::Result<()> {
    if flags.config.is_some() {
        if positional.len() > 1 {
            bail!("with spec config file, only container id should be provided{class}");
        }
    } else if positional.first().is_none_or(|r| r.is_empty()) {
        bail!("image ref must be provided{class}");
    }
    if container_id(flags, positional).is_empty() {
        bail!("container id must be provided{class}");
    }
    Ok(())
}

/// The container's id among the positional arguments.
pub fn container_id<'a>(flags: &ContainerFlags, positional: &'a [String]) -> &'a str {
    let at = if flags.config.is_some() { 0 } else { 1 };
    positional.get(at).map(String::as_str).unwrap_or("")
}

/// What `ctr run` adds to the container `containers create` makes: its
/// resource flags and runc's options.
#[derive(Debug, Default)]
pub struct RunExtras {
    /// `--cpus`: a CFS quota of this many CPUs (0: none).
    pub cpus: f64,
    /// `--cpu-shares` (0: none; `run` defaults to 1024).
    pub cpu_shares: i64,
    /// `--cgroup`: the cgroups path, when given (even empty).
    pub cgroup: Option<String>,
    pub runc_binary: String,
    pub runc_root: String,
    pub runc_systemd_cgroup: bool,
}

/// A new container as `containers create` and `run` describe it.
pub struct NewContainer<'a> {
    pub flags: &'a ContainerFlags,
    pub positional: &'a [String],
    pub extras: RunExtras,
}

/// What the image tells the container.
struct ImageFacts {
    name: String,
    labels: HashMap<String, String>,
    chain_id: String,
    config: oci_spec::image::Config,
    snapshotter: String,
}

pub async fn create(
    channel: NamespacedChannel,
    namespace: &str,
    new: &NewContainer<'_>,
) -> anyhow::Result<()> {
    let args = new.flags;
    let id = container_id(args, new.positional).to_string();
    let runtime = runtime(args, &new.extras)?;
    if let Some(path) = &args.config {
        let lease = TemporaryLease::create(channel.clone()).await?;
        let result = create_from_spec_file(&lease, args, &id, path, runtime).await;
        lease.release().await;
        return result;
    }
    let reference = new.positional[0].clone();
    let command: Vec<String> = new.positional.iter().skip(2).cloned().collect();

    let image = if args.rootfs {
        None
    } else {
        Some(image_facts(channel.clone(), namespace, args, &reference).await?)
    };
    let annotations = annotation_args(&args.annotation)?;
    check_flags(args, &new.extras)?;

    let lease = TemporaryLease::create(channel.clone()).await?;
    let result = create_under(
        &lease,
        args,
        &new.extras,
        &id,
        namespace,
        &reference,
        &command,
        image,
        annotations,
        runtime,
    )
    .await;
    lease.release().await;
    result
}

/// `--config`: the record with the spec file's spec, the labels also as
/// annotations; no image, no snapshot.
async fn create_from_spec_file(
    lease: &TemporaryLease,
    args: &ContainerFlags,
    id: &str,
    path: &str,
    runtime: Runtime,
) -> anyhow::Result<()> {
    let text = std::fs::read(path)
        .map_err(|err| anyhow!("cannot load spec config file: {}", go_io_error(path, &err)))?;
    let labels = parse_labels(&args.label);
    let spec_bytes = spec_file_with_annotations(&text, &labels)?;
    let container = Container {
        id: id.to_string(),
        labels: labels.into_iter().collect(),
        runtime: Some(runtime),
        spec: Some(spec_any(spec_bytes)),
        ..Default::default()
    };
    create_record(lease, container).await
}

#[allow(clippy::too_many_arguments)]
async fn create_under(
    lease: &TemporaryLease,
    args: &ContainerFlags,
    extras: &RunExtras,
    id: &str,
    namespace: &str,
    reference: &str,
    command: &[String],
    image: Option<ImageFacts>,
    annotations: BTreeMap<String, String>,
    runtime: Runtime,
) -> anyhow::Result<()> {
    let cmd_labels = parse_labels(&args.label);
    let mut container = Container {
        id: id.to_string(),
        runtime: Some(runtime),
        ..Default::default()
    };
    // The record's options first (labels, image, the snapshot), then the
    // spec's, in containerd's order: a failure in the spec's options comes
    // after the snapshot is prepared (and the lease then lets it go).
    match &image {
        None => container.labels = cmd_labels.clone().into_iter().collect(),
        Some(image) => {
            // Labels: the config's, the image record's (valid ones), the
            // command line's, the stop signal.
            let mut labels: HashMap<String, String> =
                image.config.labels().clone().unwrap_or_default();
            for (k, v) in &image.labels {
                if k.len() + v.len() <= MAX_LABEL_SIZE && !k.is_empty() {
                    labels.insert(k.clone(), v.clone());
                }
            }
            labels.extend(cmd_labels.clone());
            let stop_signal = image
                .config
                .stop_signal()
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "SIGTERM".to_string());
            labels.insert(STOP_SIGNAL_LABEL.to_string(), stop_signal);
            container.labels = labels;
            container.image = image.name.clone();
            container.snapshotter = image.snapshotter.clone();
            SnapshotsClient::new(lease.channel())
                .prepare(lease.request(PrepareSnapshotRequest {
                    snapshotter: image.snapshotter.clone(),
                    key: id.to_string(),
                    parent: image.chain_id.clone(),
                    labels: parse_labels(&args.snapshotter_label).into_iter().collect(),
                }))
                .await
                .map_err(RpcError::from)?;
            container.snapshot_key = id.to_string();
        }
    }

    let mut spec = Spec::default_unix(namespace, id);
    spec.with_default_unix_devices();
    if let Some(path) = &args.env_file {
        spec.with_env(&env_file(path)?);
    }
    spec.with_env(&args.env);
    let mounts = args
        .mount
        .iter()
        .map(|m| spec::parse_mount_flag(m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    spec.with_mounts(mounts);
    let mut users = UserDatabase::default();
    match &image {
        None => {
            let root = absolute(reference)?;
            spec.with_rootfs_path(&root);
            if args.user.as_deref().is_some_and(|u| !u.is_empty()) {
                let read = |name: &str| {
                    in_root(Path::new(&root), name).and_then(|p| std::fs::read_to_string(p).ok())
                };
                users = UserDatabase {
                    passwd: read("/etc/passwd"),
                    group: read("/etc/group"),
                };
            }
        }
        Some(image) => {
            let config = &image.config;
            spec.with_image_process(&ImageProcess {
                env: config.env().clone().unwrap_or_default(),
                entrypoint: config.entrypoint().clone().unwrap_or_default(),
                cmd: config.cmd().clone().unwrap_or_default(),
                working_dir: config.working_dir().clone().unwrap_or_default(),
                user: String::new(),
            });
            let user = config.user().clone().unwrap_or_default();
            users = user_database(lease, &image.snapshotter, id).await?;
            spec.with_image_user(&user, &users)?;
        }
    }

    if args.read_only {
        spec.with_rootfs_readonly();
    }
    if !command.is_empty() {
        spec.with_process_args(command);
    }
    if let Some(cwd) = args.cwd.as_deref().filter(|c| !c.is_empty()) {
        spec.with_process_cwd(cwd);
    }
    if let Some(user) = args.user.as_deref().filter(|u| !u.is_empty()) {
        spec.with_user(user, &users)?;
        spec.with_additional_gids(user, &users);
    }
    if args.tty {
        spec.with_tty();
    }
    if args.privileged {
        spec.with_privileged(&current_capabilities()?);
        spec.with_all_devices_allowed();
        spec.with_host_devices(devices_under(Path::new("/dev"), None)?);
    }
    if args.net_host {
        // Go's os.Hostname reads the kernel's name so on Linux.
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_err(|err| anyhow!("get hostname: {err}"))?
            .trim_end_matches('\n')
            .to_string();
        spec.with_host_namespace("network");
        spec.with_host_files();
        spec.with_env(&[format!("HOSTNAME={hostname}")]);
    }
    if !annotations.is_empty() {
        spec.with_annotations(&annotations);
    }
    if !args.cap_add.is_empty() {
        spec.with_added_capabilities(&args.cap_add);
    }
    if !args.cap_drop.is_empty() {
        spec.with_dropped_capabilities(&args.cap_drop);
    }
    if let Some(profile) = args.apparmor_profile.as_deref().filter(|p| !p.is_empty()) {
        spec.with_apparmor_profile(profile);
    }
    if extras.cpus > 0.0 {
        spec.with_cpu_cfs((extras.cpus * 100000.0) as i64, 100000);
    }
    if extras.cpu_shares > 0 {
        spec.with_cpu_shares(extras.cpu_shares as u64);
    }
    if args.cpu_quota != -1 || args.cpu_period != 0 {
        spec.with_cpu_cfs(args.cpu_quota, args.cpu_period);
    }
    for joined in &args.with_ns {
        let (kind, path) = joined.split_once(':').unwrap_or_default();
        spec.with_linux_namespace(Namespace {
            kind: kind.to_string(),
            path: path.to_string(),
        });
    }
    if args.allow_new_privs {
        spec.with_new_privileges();
    }
    if let Some(path) = &extras.cgroup {
        spec.with_cgroup(path);
    }
    if args.memory_limit != 0 {
        spec.with_memory_limit(args.memory_limit);
    }
    for device in &args.device {
        spec.with_devices(devices_under(Path::new(device), None)?, "rwm");
    }
    if let Some(propagation) = args.rootfs_propagation.as_deref().filter(|p| !p.is_empty()) {
        spec.with_rootfs_propagation(propagation);
    }
    if let Some(class) = args.rdt_class.as_deref().filter(|c| !c.is_empty()) {
        spec.with_rdt_class(class);
    }
    spec.with_annotations(&cmd_labels);
    container.spec = Some(spec_any(spec.to_bytes()));
    create_record(lease, container).await
}

async fn create_record(lease: &TemporaryLease, container: Container) -> anyhow::Result<()> {
    ContainersClient::new(lease.channel())
        .create(lease.request(CreateContainerRequest {
            container: Some(container),
        }))
        .await
        .map_err(RpcError::from)?;
    Ok(())
}

fn spec_any(value: Vec<u8>) -> prost_types::Any {
    prost_types::Any {
        type_url: spec::SPEC_TYPE_URL.to_string(),
        value,
    }
}

/// The runtime and its options as containerd's ctr sets them: runc's
/// options for runc v2 (empty unless `run`'s `--runc-*` flags fill them),
/// the config path for another runtime.
fn runtime(args: &ContainerFlags, extras: &RunExtras) -> anyhow::Result<Runtime> {
    if (!extras.runc_binary.is_empty() || extras.runc_systemd_cgroup) && args.runtime != RUNC_V2 {
        bail!(
            "specifying runc-binary and runc-systemd-cgroup is only supported for \"{RUNC_V2}\" runtime"
        );
    }
    let options = if args.runtime == RUNC_V2 {
        if extras.runc_systemd_cgroup && extras.cgroup.as_deref().unwrap_or("").is_empty() {
            bail!(
                "option --runc-systemd-cgroup requires --cgroup to be set, e.g. \"machine.slice:foo:deadbeef\""
            );
        }
        let options = RuncOptions {
            binary_name: extras.runc_binary.clone(),
            root: extras.runc_root.clone(),
            systemd_cgroup: extras.runc_systemd_cgroup,
            ..Default::default()
        };
        Some(prost_types::Any {
            type_url: RUNC_OPTIONS_URL.to_string(),
            value: prost::Message::encode_to_vec(&options),
        })
    } else {
        args.runtime_config_path
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|path| prost_types::Any {
                type_url: RUNTIME_OPTIONS_URL.to_string(),
                value: runtime_options_bytes(path),
            })
    };
    Ok(Runtime {
        name: args.runtime.clone(),
        options,
    })
}

/// The fields of runc's shim options (`containerd.runc.v1.Options`) that
/// ctr sets; an empty message encodes to no bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RuncOptions {
    #[prost(bool, tag = "1")]
    pub no_pivot_root: bool,
    #[prost(string, tag = "6")]
    pub binary_name: String,
    #[prost(string, tag = "7")]
    pub root: String,
    #[prost(bool, tag = "9")]
    pub systemd_cgroup: bool,
}

/// Linux's capabilities by number (containerd's list for kernel 5.9).
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The names of this process's effective capabilities, by number
/// (`CapEff` of `/proc/self/status`; numbers without a name are left out).
fn current_capabilities() -> anyhow::Result<Vec<String>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let bits = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16))
        .transpose()
        .map_err(|err| anyhow!("failed to parse CapEff: {err}"))?
        .unwrap_or(0);
    Ok(CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| bits >> bit & 1 == 1)
        .map(|(_, name)| name.to_string())
        .collect())
}

/// The device nodes at `path`, or under it when it is a directory (sorted
/// by name, recursively, leaving out pts, shm, fd, mqueue and the lxc/udev
/// directories, `console`, FIFOs and what is not a device), as containerd's
/// `oci.HostDevices` and `oci.WithDevices` list them.
fn devices_under(path: &Path, container_path: Option<&Path>) -> anyhow::Result<Vec<Device>> {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let stat = std::fs::metadata(path).map_err(|err| {
        anyhow!(
            "error stating device path: {}",
            go_io_error(&path.to_string_lossy(), &err).replacen("open", "stat", 1)
        )
    })?;
    let device_at = |path: &Path| -> anyhow::Result<Option<Device>> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let kind = if meta.file_type().is_block_device() {
            "b"
        } else if meta.file_type().is_char_device() {
            "c"
        } else {
            return Ok(None);
        };
        let rdev = meta.rdev();
        let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
        let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
        Ok(Some(Device {
            path: path.to_string_lossy().into_owned(),
            kind: kind.into(),
            major: major as i64,
            minor: minor as i64,
            file_mode: Some(meta.mode() & 0o7777),
            uid: Some(meta.uid()),
            gid: Some(meta.gid()),
        }))
    };
    if !stat.is_dir() {
        let mut device = device_at(path)?.ok_or_else(|| anyhow!("not a device node"))?;
        if let Some(container_path) = container_path {
            device.path = container_path.to_string_lossy().into_owned();
        }
        return Ok(vec![device]);
    }
    let mut entries: Vec<_> = std::fs::read_dir(path)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    let mut out = Vec::new();
    for entry in entries {
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        let child_container = container_path.map(|c| c.join(&name));
        if entry.file_type()?.is_dir() {
            if matches!(
                name_text.as_ref(),
                "pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev"
            ) {
                continue;
            }
            out.extend(devices_under(
                &path.join(&name),
                child_container.as_deref(),
            )?);
        } else if name_text == "console" {
            continue;
        } else if let Some(mut device) = device_at(&path.join(&name))? {
            if let Some(container_path) = child_container {
                device.path = container_path.to_string_lossy().into_owned();
            }
            out.push(device);
        }
    }
    Ok(out)
}

/// `runtimeoptions.v1.Options{config_path}` in protobuf (field 2, a string).
fn runtime_options_bytes(config_path: &str) -> Vec<u8> {
    let mut out = vec![0x12];
    let mut len = config_path.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(config_path.as_bytes());
    out
}

/// The flag checks containerd's ctr makes once it has the image and
/// before it creates anything, and the flags not supported here yet.
fn check_flags(args: &ContainerFlags, extras: &RunExtras) -> anyhow::Result<()> {
    for caps in [&args.cap_add, &args.cap_drop] {
        if caps.iter().any(|cap| !cap.starts_with("CAP_")) {
            bail!("capabilities must be specified with 'CAP_' prefix");
        }
    }
    let profile = args.seccomp_profile.as_deref().unwrap_or("");
    if !args.seccomp && !profile.is_empty() {
        bail!("seccomp must be set to true, if using a custom seccomp-profile");
    }
    if args.seccomp {
        bail!("--seccomp is not supported by this ctr yet: not implemented");
    }
    let default_profile = args.apparmor_default_profile.as_deref().unwrap_or("");
    let profile = args.apparmor_profile.as_deref().unwrap_or("");
    if !profile.is_empty() && !default_profile.is_empty() {
        bail!("apparmor-profile conflicts with apparmor-default-profile");
    }
    if !default_profile.is_empty() {
        bail!("--apparmor-default-profile is not supported by this ctr yet: not implemented");
    }
    for joined in &args.with_ns {
        let parts: Vec<&str> = joined.split(':').collect();
        if parts.len() != 2 {
            bail!("joining a Linux namespace using --with-ns requires the format 'nstype:path'");
        }
        if !spec::NAMESPACE_TYPES.contains(&parts[0]) {
            bail!(
                "the Linux namespace type specified in --with-ns is not valid: {}",
                parts[0]
            );
        }
    }
    if extras.cpus > 0.0 && (args.cpu_quota != -1 || args.cpu_period != 0) {
        bail!("cpus and quota/period should be used separately");
    }
    if !args.gpus.is_empty() {
        bail!("--gpus is not supported by this ctr yet: not implemented");
    }
    Ok(())
}

/// `--annotation` values, which must be `key=value`.
fn annotation_args(values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(anyhow!("invalid key=value format annotation: {v}")),
        })
        .collect()
}

/// The lines of an `--env-file`, each a variable as written.
fn env_file(path: &str) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|err| anyhow!(go_io_error(path, &err)))?;
    // bufio.Scanner's lines: split at \n, a trailing \r dropped, no empty
    // last line.
    Ok(text.lines().map(str::to_string).collect())
}

/// Go's text for a failed open: `open PATH: no such file or directory`.
fn go_io_error(path: &str, err: &std::io::Error) -> String {
    let reason = match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => err.to_string(),
    };
    format!("open {path}: {reason}")
}

/// `filepath.Abs`.
fn absolute(path: &str) -> anyhow::Result<String> {
    let path = Path::new(path);
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    Ok(spec::clean_path(&joined.to_string_lossy()))
}

/// The image record, its config and whether it is unpacked in the
/// snapshotter, as containerd's ctr checks before it creates anything.
async fn image_facts(
    channel: NamespacedChannel,
    namespace: &str,
    args: &ContainerFlags,
    reference: &str,
) -> anyhow::Result<ImageFacts> {
    let image = ImagesClient::new(channel.clone())
        .get(GetImageRequest {
            name: reference.to_string(),
        })
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .image
        .ok_or_else(|| anyhow!("image {reference:?}: not found"))?;
    let snapshotter =
        resolve_snapshotter(channel.clone(), namespace, args.snapshotter.as_deref()).await?;
    let d = image.target.clone().unwrap_or_default();
    let target = Target {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        platform: None,
    };
    let platform = host_platform();
    let mut content = ContentReader::new(channel.clone());
    let (config_desc, bytes) = content.config(&target, &platform).await?;
    if !is_config(&config_desc.media_type) {
        bail!("unknown image config media type {}", config_desc.media_type);
    }
    let config = oci_spec::image::ImageConfiguration::from_reader(&bytes[..])
        .context("decoding the image config")?;
    let diff_ids = config.rootfs().diff_ids().to_vec();
    let chain = chain_id(&diff_ids).unwrap_or_default();
    let unpacked = SnapshotsClient::new(channel.clone())
        .stat(StatSnapshotRequest {
            snapshotter: snapshotter.clone(),
            key: chain.clone(),
        })
        .await;
    match unpacked {
        Ok(_) => {}
        Err(status) if status.code() == Code::NotFound => {
            crate::unpack::unpack(channel, &target, &platform, &snapshotter).await?;
        }
        Err(status) => return Err(RpcError::from(status).into()),
    }
    Ok(ImageFacts {
        name: image.name,
        labels: image.labels,
        chain_id: chain,
        config: config.config().clone().unwrap_or_default(),
        snapshotter,
    })
}

/// The snapshotter to use: the flag's, else the namespace's default
/// (label `containerd.io/defaults/snapshotter`), else overlayfs.
async fn resolve_snapshotter(
    channel: NamespacedChannel,
    namespace: &str,
    flag: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(name) = flag.filter(|n| !n.is_empty()) {
        return Ok(name.to_string());
    }
    let namespace = NamespacesClient::new(channel)
        .get(GetNamespaceRequest {
            name: namespace.to_string(),
        })
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .namespace
        .unwrap_or_default();
    Ok(namespace
        .labels
        .get(NAMESPACE_SNAPSHOTTER_LABEL)
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| DEFAULT_SNAPSHOTTER.to_string()))
}

/// `/etc/passwd` and `/etc/group` of the container's snapshot, read with the
/// snapshot mounted on a temporary directory (read-only where it is one
/// overlay, as containerd's client mounts it).
async fn user_database(
    lease: &TemporaryLease,
    snapshotter: &str,
    key: &str,
) -> anyhow::Result<UserDatabase> {
    let mounts = SnapshotsClient::new(lease.channel())
        .mounts(lease.request(MountsRequest {
            snapshotter: snapshotter.to_string(),
            key: key.to_string(),
        }))
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .mounts;
    let mut mounts: Vec<rcontainerd_mount::Mount> = mounts
        .into_iter()
        .map(|m| rcontainerd_mount::Mount {
            mount_type: m.r#type,
            source: m.source,
            target: m.target,
            options: m.options,
        })
        .collect();
    // containerd's client adds `ro` to a lone overlay for these reads.
    if mounts.len() == 1 && mounts[0].mount_type == "overlay" {
        mounts[0].options.push("ro".into());
    }
    let mounted = rcontainerd_mount::TempMount::new(&std::env::temp_dir(), &mounts)
        .map_err(|err| anyhow!("{err}"))?;
    let read = |name: &str| {
        in_root(mounted.path(), name).and_then(|path| std::fs::read_to_string(path).ok())
    };
    Ok(UserDatabase {
        passwd: read("/etc/passwd"),
        group: read("/etc/group"),
    })
}

/// `path` inside the root filesystem at `root`, its symbolic links resolved
/// as if `root` were `/` (containerd's `fs.RootPath`): an image's
/// `/etc/passwd` linking to `/x` means `<root>/x`, never the host's `/x`.
/// `None` past 255 links.
fn in_root(root: &Path, path: &str) -> Option<std::path::PathBuf> {
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = resolved
            .iter()
            .chain(std::iter::once(&part))
            .fold(root.to_path_buf(), |p, c| p.join(c));
        match std::fs::read_link(&candidate) {
            Ok(target) => {
                links += 1;
                if links > 255 {
                    return None;
                }
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(
                    target
                        .split('/')
                        .filter(|c| !c.is_empty())
                        .rev()
                        .map(str::to_string),
                );
            }
            Err(_) => resolved.push(part),
        }
    }
    Some(resolved.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
}

/// A spec file as containerd's client stores it: decoded and encoded
/// again (compact, members in the file's order), with the labels added
/// to its annotations.
fn spec_file_with_annotations(
    text: &[u8],
    labels: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<u8>> {
    let mut json = crate::gojson::parse(text).map_err(|err| {
        anyhow!(
            "decoding spec config file failed, current supported OCI runtime-spec : v{}: {err}",
            spec::VERSION
        )
    })?;
    let crate::gojson::Json::Object(members) = &mut json else {
        bail!(
            "decoding spec config file failed, current supported OCI runtime-spec : v{}: \
             json: cannot unmarshal non-object into Go value of type specs.Spec",
            spec::VERSION
        );
    };
    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    let mut at = None;
    for (i, (key, value)) in members.iter().enumerate() {
        if key == "annotations" {
            at = Some(i);
            if let crate::gojson::Json::Object(entries) = value {
                for (k, v) in entries {
                    if let crate::gojson::Json::String(v) = v {
                        annotations.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    annotations.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let value = crate::gojson::Json::sorted_map(&annotations);
    match (at, annotations.is_empty()) {
        (Some(i), true) => {
            members.remove(i);
        }
        (Some(i), false) => members[i].1 = value,
        (None, true) => {}
        (None, false) => {
            // Annotations follow hooks, mounts, hostname, root and process
            // in Go's struct; before linux and the other platforms.
            let before = members
                .iter()
                .position(|(k, _)| matches!(k.as_str(), "linux" | "solaris" | "windows" | "vm"))
                .unwrap_or(members.len());
            members.insert(before, ("annotations".into(), value));
        }
    }
    Ok(json.to_compact().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn create_args(args: &[&str]) -> crate::cli::ContainerCreate {
        let mut full = vec!["ctr", "containers", "create"];
        full.extend_from_slice(args);
        match crate::cli::Cli::try_parse_from(full).unwrap().command {
            crate::cli::Command::Containers(crate::cli::ContainersCommand::Create(args)) => *args,
            other => panic!("not containers create: {other:?}"),
        }
    }

    #[test]
    fn arguments_are_checked_as_containerds_ctr_checks_them() {
        let message = |args: &[&str]| {
            let parsed = create_args(args);
            check_arguments(&parsed.flags, &parsed.args, ": invalid argument")
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(
            message(&[]).as_deref(),
            Some("image ref must be provided: invalid argument")
        );
        assert_eq!(
            message(&["img"]).as_deref(),
            Some("container id must be provided: invalid argument")
        );
        assert_eq!(
            message(&["-c", "/s.json", "id", "more"]).as_deref(),
            Some("with spec config file, only container id should be provided: invalid argument")
        );
        assert_eq!(message(&["img", "id", "sh", "x"]), None);
        assert_eq!(message(&["--config", "/s.json", "id"]), None);
        // Options may follow the positional arguments, as urfave/cli reorders them.
        let args = create_args(&["img", "id", "--env", "A=1", "--cpu-quota", "-1", "-t"]);
        assert_eq!(args.flags.env, ["A=1"]);
        assert!(args.flags.tty);
        assert_eq!(container_id(&args.flags, &args.args), "id");
        assert_eq!(args.flags.runtime, "io.containerd.runc.v2");
        // After `--`, the command's own options are the command's.
        let args = create_args(&["img", "id", "--", "sh", "-c", "echo hi"]);
        assert_eq!(args.args, ["img", "id", "sh", "-c", "echo hi"]);
        assert_eq!(args.flags.config, None);
    }

    #[test]
    fn flag_checks_word_failures_like_containerds_ctr() {
        let failure = |args: &[&str]| {
            check_flags(&create_args(args).flags, &RunExtras::default())
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(
            failure(&["--cap-add", "SYS_ADMIN", "i", "c"]).as_deref(),
            Some("capabilities must be specified with 'CAP_' prefix")
        );
        assert_eq!(
            failure(&["--with-ns", "pid", "i", "c"]).as_deref(),
            Some("joining a Linux namespace using --with-ns requires the format 'nstype:path'")
        );
        assert_eq!(
            failure(&["--with-ns", "time:/x", "i", "c"]).as_deref(),
            Some("the Linux namespace type specified in --with-ns is not valid: time")
        );
        assert_eq!(
            failure(&[
                "--apparmor-profile",
                "a",
                "--apparmor-default-profile",
                "b",
                "i",
                "c"
            ])
            .as_deref(),
            Some("apparmor-profile conflicts with apparmor-default-profile")
        );
        assert_eq!(
            failure(&[
                "--with-ns",
                "network:/x",
                "--cap-drop",
                "CAP_KILL",
                "i",
                "c"
            ]),
            None
        );
        assert!(failure(&["--gpus", "0", "i", "c"])
            .unwrap()
            .ends_with("not implemented"));
    }

    #[test]
    fn paths_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc");
        std::fs::create_dir_all(etc.join("real")).unwrap();
        std::fs::write(etc.join("real/passwd"), "inside\n").unwrap();
        std::os::unix::fs::symlink("/etc/real/passwd", etc.join("passwd")).unwrap();
        std::os::unix::fs::symlink("../../../../real/group", etc.join("group")).unwrap();
        std::os::unix::fs::symlink("loop", etc.join("loop")).unwrap();
        assert_eq!(
            in_root(root.path(), "/etc/passwd").unwrap(),
            etc.join("real/passwd")
        );
        assert_eq!(
            in_root(root.path(), "/etc/group").unwrap(),
            root.path().join("real/group")
        );
        assert_eq!(in_root(root.path(), "/etc/loop"), None);
    }

    #[test]
    fn runtime_options_encode_the_config_path_as_field_two() {
        assert_eq!(runtime_options_bytes("/a"), b"\x12\x02/a");
        let long = "x".repeat(200);
        let bytes = runtime_options_bytes(&long);
        assert_eq!(&bytes[..3], &[0x12, 0xc8, 0x01]);
    }

    #[test]
    fn spec_files_get_the_labels_as_sorted_annotations() {
        let file = br#"{"ociVersion":"1.0.2-dev","root":{"path":"rootfs"},"linux":{}}"#;
        let labels: BTreeMap<String, String> =
            [("b".to_string(), "2".to_string()), ("a".into(), "1".into())].into();
        let out = spec_file_with_annotations(file, &labels).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"ociVersion":"1.0.2-dev","root":{"path":"rootfs"},"annotations":{"a":"1","b":"2"},"linux":{}}"#
        );
        let none =
            spec_file_with_annotations(br#"{"annotations":{},"x":1}"#, &BTreeMap::new()).unwrap();
        assert_eq!(none, br#"{"x":1}"#);
        assert!(spec_file_with_annotations(b"{", &BTreeMap::new()).is_err());
    }
}
