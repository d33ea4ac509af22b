//! OCI runtime specs as containerd 1.6's client generates them for a new
//! container (`oci.WithDefaultSpec` and the `oci.With…` options `ctr
//! containers create` and `ctr run` apply), and their JSON as Go's
//! `json.Marshal` writes the runtime-spec 1.0.2 structs: members in the
//! structs' order, `omitempty` members left out when empty, map keys sorted,
//! `<>&` escaped.
//!
//! The types model the members these options touch; the `oci-spec` crate's
//! types serialise in a different member order and with different
//! `omitempty` rules, so they cannot give Go's bytes.

use std::collections::BTreeMap;

use crate::gojson::Json;

/// The runtime-spec version containerd 1.6.20 writes.
pub const VERSION: &str = "1.0.2-dev";

/// The `Any` type URL a spec travels under in a container record.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// The default `PATH` of a process whose image sets no environment.
const DEFAULT_PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Device cgroup access for read, write and mknod.
const RWM: &str = "rwm";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    pub version: String,
    pub process: Option<Process>,
    pub root: Option<Root>,
    pub hostname: String,
    pub mounts: Vec<Mount>,
    pub annotations: BTreeMap<String, String>,
    pub linux: Option<Linux>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Process {
    pub terminal: bool,
    pub user: User,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub capabilities: Option<Capabilities>,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    pub apparmor_profile: String,
    pub selinux_label: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub inheritable: Vec<String>,
    pub permitted: Vec<String>,
    pub ambient: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rlimit {
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Root {
    pub path: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mount {
    pub destination: String,
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Linux {
    pub resources: Option<Resources>,
    pub cgroups_path: String,
    pub namespaces: Vec<Namespace>,
    pub devices: Vec<Device>,
    pub rootfs_propagation: String,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// `intelRdt.closID`; the section is written when this is set.
    pub intel_rdt_clos_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub devices: Vec<DeviceCgroup>,
    pub memory: Option<Memory>,
    pub cpu: Option<Cpu>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceCgroup {
    pub allow: bool,
    pub kind: String,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

/// A device node made in the container (`linux.devices`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub path: String,
    pub kind: String,
    pub major: i64,
    pub minor: i64,
    pub file_mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cpu {
    pub shares: Option<u64>,
    pub quota: Option<i64>,
    pub period: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    pub kind: String,
    pub path: String,
}

/// The Linux namespace types a spec may name (`--with-ns` accepts these).
pub const NAMESPACE_TYPES: [&str; 7] = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup"];

/// The image configuration fields a spec takes from an image
/// (`oci.WithImageConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageProcess {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub user: String,
}

/// The user and group databases of a container's root filesystem
/// (`/etc/passwd` and `/etc/group`; `None` when the file is missing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserDatabase {
    pub passwd: Option<String>,
    pub group: Option<String>,
}

/// One `/etc/passwd` entry, read as runc's user package reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: i64,
    gid: i64,
}

/// One `/etc/group` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: i64,
    members: Vec<String>,
}

/// Go's `strconv.Atoi`, with the zero value for what it refuses (runc's
/// user package ignores the error).
fn atoi(text: &str) -> i64 {
    text.parse().unwrap_or(0)
}

impl UserDatabase {
    fn users(&self) -> Option<Vec<PasswdEntry>> {
        let text = self.passwd.as_ref()?;
        Some(
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(|line| {
                    let mut fields = line.split(':');
                    let name = fields.next().unwrap_or("").to_string();
                    let _password = fields.next();
                    PasswdEntry {
                        name,
                        uid: atoi(fields.next().unwrap_or("")),
                        gid: atoi(fields.next().unwrap_or("")),
                    }
                })
                .collect(),
        )
    }

    fn groups(&self) -> Option<Vec<GroupEntry>> {
        let text = self.group.as_ref()?;
        Some(
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(|line| {
                    let mut fields = line.split(':');
                    let name = fields.next().unwrap_or("").to_string();
                    let _password = fields.next();
                    let gid = atoi(fields.next().unwrap_or(""));
                    let members = match fields.next() {
                        Some(list) if !list.is_empty() => {
                            list.split(',').map(str::to_string).collect()
                        }
                        _ => Vec::new(),
                    };
                    GroupEntry { name, gid, members }
                })
                .collect(),
        )
    }
}

/// containerd's default capabilities for a container process.
fn default_capabilities() -> Vec<String> {
    [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    .map(String::from)
    .to_vec()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn mount(destination: &str, kind: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: destination.into(),
        kind: kind.into(),
        source: source.into(),
        options: strings(options),
    }
}

/// `replaceOrAppendEnvValues`: each override replaces the variable of the
/// same name or is appended; a bare `NAME` removes the variable.
pub fn replace_or_append_env(defaults: &[String], overrides: &[String]) -> Vec<String> {
    let name = |entry: &str| entry.split('=').next().unwrap_or("").to_string();
    let mut results: Vec<String> = defaults.to_vec();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, entry) in defaults.iter().enumerate() {
        index.insert(name(entry), i);
    }
    for value in overrides {
        if !value.contains('=') {
            if let Some(&i) = index.get(value.as_str()) {
                results[i] = String::new();
            }
            continue;
        }
        match index.get(&name(value)) {
            Some(&i) => results[i] = value.clone(),
            None => results.push(value.clone()),
        }
    }
    results.retain(|entry| !entry.is_empty());
    results
}

impl Spec {
    /// `populateDefaultUnixSpec` for container `id` in `namespace`.
    pub fn default_unix(namespace: &str, id: &str) -> Spec {
        Spec {
            version: VERSION.into(),
            root: Some(Root {
                path: "rootfs".into(),
                readonly: false,
            }),
            process: Some(Process {
                cwd: "/".into(),
                no_new_privileges: true,
                capabilities: Some(Capabilities {
                    bounding: default_capabilities(),
                    permitted: default_capabilities(),
                    effective: default_capabilities(),
                    ..Default::default()
                }),
                rlimits: vec![Rlimit {
                    kind: "RLIMIT_NOFILE".into(),
                    hard: 1024,
                    soft: 1024,
                }],
                ..Default::default()
            }),
            linux: Some(Linux {
                masked_paths: strings(&[
                    "/proc/acpi",
                    "/proc/asound",
                    "/proc/kcore",
                    "/proc/keys",
                    "/proc/latency_stats",
                    "/proc/timer_list",
                    "/proc/timer_stats",
                    "/proc/sched_debug",
                    "/sys/firmware",
                    "/proc/scsi",
                ]),
                readonly_paths: strings(&[
                    "/proc/bus",
                    "/proc/fs",
                    "/proc/irq",
                    "/proc/sys",
                    "/proc/sysrq-trigger",
                ]),
                cgroups_path: clean_join(&["/", namespace, id]),
                resources: Some(Resources {
                    devices: vec![DeviceCgroup {
                        allow: false,
                        access: RWM.into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                namespaces: ["pid", "ipc", "uts", "mount", "network"]
                    .iter()
                    .map(|kind| Namespace {
                        kind: kind.to_string(),
                        path: String::new(),
                    })
                    .collect(),
                ..Default::default()
            }),
            mounts: vec![
                mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
                mount(
                    "/dev",
                    "tmpfs",
                    "tmpfs",
                    &["nosuid", "strictatime", "mode=755", "size=65536k"],
                ),
                mount(
                    "/dev/pts",
                    "devpts",
                    "devpts",
                    &[
                        "nosuid",
                        "noexec",
                        "newinstance",
                        "ptmxmode=0666",
                        "mode=0620",
                        "gid=5",
                    ],
                ),
                mount(
                    "/dev/shm",
                    "tmpfs",
                    "shm",
                    &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
                ),
                mount(
                    "/dev/mqueue",
                    "mqueue",
                    "mqueue",
                    &["nosuid", "noexec", "nodev"],
                ),
                mount(
                    "/sys",
                    "sysfs",
                    "sysfs",
                    &["nosuid", "noexec", "nodev", "ro"],
                ),
                mount(
                    "/run",
                    "tmpfs",
                    "tmpfs",
                    &["nosuid", "strictatime", "mode=755", "size=65536k"],
                ),
            ],
            ..Default::default()
        }
    }

    fn process(&mut self) -> &mut Process {
        self.process.get_or_insert_with(Default::default)
    }

    fn linux(&mut self) -> &mut Linux {
        self.linux.get_or_insert_with(Default::default)
    }

    fn resources(&mut self) -> &mut Resources {
        self.linux().resources.get_or_insert_with(Default::default)
    }

    fn capabilities(&mut self) -> &mut Capabilities {
        self.process()
            .capabilities
            .get_or_insert_with(Default::default)
    }

    /// `oci.WithDefaultUnixDevices`: null, random, full, tty, zero, urandom,
    /// console, the pts and ptmx.
    pub fn with_default_unix_devices(&mut self) {
        let allowed = |major: i64, minor: Option<i64>| DeviceCgroup {
            allow: true,
            kind: "c".into(),
            major: Some(major),
            minor,
            access: RWM.into(),
        };
        let devices = [
            allowed(1, Some(3)),
            allowed(1, Some(8)),
            allowed(1, Some(7)),
            allowed(5, Some(0)),
            allowed(1, Some(5)),
            allowed(1, Some(9)),
            allowed(5, Some(1)),
            allowed(136, None),
            allowed(5, Some(2)),
        ];
        self.resources().devices.extend(devices);
    }

    /// `oci.WithAllDevicesAllowed`: one rule allowing every device.
    pub fn with_all_devices_allowed(&mut self) {
        self.resources().devices = vec![DeviceCgroup {
            allow: true,
            access: RWM.into(),
            ..Default::default()
        }];
    }

    /// `oci.WithHostDevices` with the host's devices given: appended to
    /// the devices made in the container.
    pub fn with_host_devices(&mut self, devices: Vec<Device>) {
        self.linux().devices.extend(devices);
    }

    /// `oci.WithDevices`: each device made in the container and allowed
    /// with `permissions`.
    pub fn with_devices(&mut self, devices: Vec<Device>, permissions: &str) {
        for device in devices {
            self.resources().devices.push(DeviceCgroup {
                allow: true,
                kind: device.kind.clone(),
                major: Some(device.major),
                minor: Some(device.minor),
                access: permissions.into(),
            });
            self.linux().devices.push(device);
        }
    }

    /// `oci.WithPrivileged` with the caller's effective capabilities given:
    /// those capabilities, no masked or read-only paths, writable sysfs and
    /// cgroup mounts, no SELinux label or AppArmor profile (nor seccomp,
    /// which these specs never have).
    pub fn with_privileged(&mut self, current_capabilities: &[String]) {
        let caps = self.capabilities();
        caps.bounding = current_capabilities.to_vec();
        caps.effective = current_capabilities.to_vec();
        caps.permitted = current_capabilities.to_vec();
        let linux = self.linux();
        linux.masked_paths.clear();
        linux.readonly_paths.clear();
        for m in &mut self.mounts {
            if m.kind == "sysfs" || m.kind == "cgroup" {
                for option in &mut m.options {
                    if option == "ro" {
                        *option = "rw".into();
                    }
                }
            }
        }
        let process = self.process();
        process.selinux_label.clear();
        process.apparmor_profile.clear();
    }

    /// `oci.WithEnv`: sets or unsets variables (nothing for an empty list).
    pub fn with_env(&mut self, vars: &[String]) {
        if vars.is_empty() {
            return;
        }
        let process = self.process();
        process.env = replace_or_append_env(&process.env, vars);
    }

    /// `oci.WithMounts`: appends.
    pub fn with_mounts(&mut self, mounts: Vec<Mount>) {
        self.mounts.extend(mounts);
    }

    /// The environment, arguments and working directory of
    /// `oci.WithImageConfig` (Linux): the image's environment (or the
    /// default `PATH`) overridden by what the spec has, the entrypoint
    /// followed by the command, the working directory or `/`. The user is
    /// [`Spec::with_image_user`]'s part.
    pub fn with_image_process(&mut self, image: &ImageProcess) {
        let defaults = if image.env.is_empty() {
            vec![DEFAULT_PATH_ENV.to_string()]
        } else {
            image.env.clone()
        };
        let process = self.process();
        process.env = replace_or_append_env(&defaults, &process.env);
        process.args = image.entrypoint.iter().chain(&image.cmd).cloned().collect();
        process.cwd = if image.working_dir.is_empty() {
            "/".into()
        } else {
            image.working_dir.clone()
        };
    }

    /// The user part of `oci.WithImageConfig`: `oci.WithUser(user)` and the
    /// additional groups of the user's uid when the image names a user,
    /// else the additional groups of `root`, looked up in `db`.
    pub fn with_image_user(&mut self, user: &str, db: &UserDatabase) -> anyhow::Result<()> {
        if user.is_empty() {
            self.with_additional_gids("root", db);
            return Ok(());
        }
        self.with_user(user, db)?;
        let uid = self.process().user.uid.to_string();
        self.with_additional_gids(&uid, db);
        Ok(())
    }

    /// `oci.WithUser`: `user`, `uid`, `user:group`, `uid:gid`,
    /// `uid:group` or `user:gid`, names resolved in `db`.
    pub fn with_user(&mut self, userstr: &str, db: &UserDatabase) -> anyhow::Result<()> {
        self.process().user.additional_gids.clear();
        let result = self.set_user(userstr, db);
        self.ensure_additional_gids();
        result
    }

    fn set_user(&mut self, userstr: &str, db: &UserDatabase) -> anyhow::Result<()> {
        let parts: Vec<&str> = userstr.split(':').collect();
        match parts[..] {
            [single] => match go_atoi(single) {
                Some(uid) => {
                    // `WithUserID`: the user's primary group, else gid 0.
                    let uid = uid as u32;
                    let found = db
                        .users()
                        .and_then(|users| users.into_iter().find(|u| u.uid == i64::from(uid)));
                    let gid = found.map_or(0, |u| u.gid as u32);
                    let user = &mut self.process().user;
                    user.uid = uid;
                    user.gid = gid;
                    Ok(())
                }
                None => {
                    // `WithUsername`: the user must exist.
                    let users = db.users().ok_or_else(|| {
                        anyhow::anyhow!("open /etc/passwd: no such file or directory")
                    })?;
                    let found = users
                        .into_iter()
                        .find(|u| u.name == single)
                        .ok_or_else(|| anyhow::anyhow!("no users found"))?;
                    let user = &mut self.process().user;
                    user.uid = found.uid as u32;
                    user.gid = found.gid as u32;
                    Ok(())
                }
            },
            [user_part, group_part] => {
                let (mut uid, mut gid) = (0u32, 0u32);
                let username = match go_atoi(user_part) {
                    Some(v) => {
                        uid = v as u32;
                        None
                    }
                    None => Some(user_part),
                };
                let groupname = match go_atoi(group_part) {
                    Some(v) => {
                        gid = v as u32;
                        None
                    }
                    None => Some(group_part),
                };
                if let Some(name) = username {
                    let users = db.users().ok_or_else(|| {
                        anyhow::anyhow!("open /etc/passwd: no such file or directory")
                    })?;
                    let found = users
                        .into_iter()
                        .find(|u| u.name == name)
                        .ok_or_else(|| anyhow::anyhow!("no users found"))?;
                    uid = found.uid as u32;
                }
                if let Some(name) = groupname {
                    let groups = db.groups().ok_or_else(|| {
                        anyhow::anyhow!("open /etc/group: no such file or directory")
                    })?;
                    let found = groups
                        .into_iter()
                        .find(|g| g.name == name)
                        .ok_or_else(|| anyhow::anyhow!("no groups found"))?;
                    gid = found.gid as u32;
                }
                let user = &mut self.process().user;
                user.uid = uid;
                user.gid = gid;
                Ok(())
            }
            _ => anyhow::bail!("invalid USER value {userstr}"),
        }
    }

    /// `oci.WithAdditionalGIDs`: the groups in `/etc/group` that list the
    /// user (by name, or the name of the uid `userstr`) other than the one
    /// named like the user, the primary gid first.
    pub fn with_additional_gids(&mut self, userstr: &str, db: &UserDatabase) {
        self.process().user.additional_gids.clear();
        let username = match go_atoi(userstr) {
            Some(uid) => match db
                .users()
                .and_then(|users| users.into_iter().find(|u| u.uid == uid))
            {
                Some(user) => Some(user.name),
                None => None,
            },
            None => Some(userstr.to_string()),
        };
        if let (Some(username), Some(groups)) = (username, db.groups()) {
            self.process().user.additional_gids = groups
                .into_iter()
                .filter(|g| g.name != username && g.members.contains(&username))
                .map(|g| g.gid as u32)
                .collect();
        }
        self.ensure_additional_gids();
    }

    /// The primary gid leads the additional gids (`ensureAdditionalGids`).
    fn ensure_additional_gids(&mut self) {
        let user = &mut self.process().user;
        if !user.additional_gids.contains(&user.gid) {
            user.additional_gids.insert(0, user.gid);
        }
    }

    /// `oci.WithRootFSPath`.
    pub fn with_rootfs_path(&mut self, path: &str) {
        self.root.get_or_insert_with(Default::default).path = path.into();
    }

    /// `oci.WithRootFSReadonly`.
    pub fn with_rootfs_readonly(&mut self) {
        self.root.get_or_insert_with(Default::default).readonly = true;
    }

    /// `oci.WithProcessArgs`.
    pub fn with_process_args(&mut self, args: &[String]) {
        self.process().args = args.to_vec();
    }

    /// `oci.WithProcessCwd`.
    pub fn with_process_cwd(&mut self, cwd: &str) {
        self.process().cwd = cwd.into();
    }

    /// `oci.WithTTY`: a terminal, and `TERM=xterm` on Linux.
    pub fn with_tty(&mut self) {
        let linux = self.linux.is_some();
        let process = self.process();
        process.terminal = true;
        if linux {
            process.env.push("TERM=xterm".into());
        }
    }

    /// `oci.WithHostNamespace`: leaves the namespace of `kind` out.
    pub fn with_host_namespace(&mut self, kind: &str) {
        let namespaces = &mut self.linux().namespaces;
        if let Some(at) = namespaces.iter().position(|n| n.kind == kind) {
            namespaces.remove(at);
        }
    }

    /// `oci.WithLinuxNamespace`: replaces the namespace of the same type or appends.
    pub fn with_linux_namespace(&mut self, namespace: Namespace) {
        let namespaces = &mut self.linux().namespaces;
        match namespaces.iter_mut().find(|n| n.kind == namespace.kind) {
            Some(existing) => *existing = namespace,
            None => namespaces.push(namespace),
        }
    }

    /// `oci.WithHostHostsFile` and `oci.WithHostResolvconf`.
    pub fn with_host_files(&mut self) {
        for file in ["/etc/hosts", "/etc/resolv.conf"] {
            self.mounts
                .push(mount(file, "bind", file, &["rbind", "ro"]));
        }
    }

    /// `oci.WithAnnotations`: sets each.
    pub fn with_annotations(&mut self, annotations: &BTreeMap<String, String>) {
        self.annotations
            .extend(annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// `oci.WithAddedCapabilities`.
    pub fn with_added_capabilities(&mut self, caps: &[String]) {
        let set = self.capabilities();
        for cap in caps {
            for list in [&mut set.bounding, &mut set.effective, &mut set.permitted] {
                if !list.contains(cap) {
                    list.push(cap.clone());
                }
            }
        }
    }

    /// `oci.WithDroppedCapabilities`.
    pub fn with_dropped_capabilities(&mut self, caps: &[String]) {
        let set = self.capabilities();
        for cap in caps {
            for list in [&mut set.bounding, &mut set.effective, &mut set.permitted] {
                list.retain(|c| c != cap);
            }
        }
    }

    /// `oci.WithNewPrivileges`.
    pub fn with_new_privileges(&mut self) {
        self.process().no_new_privileges = false;
    }

    /// `oci.WithMemoryLimit` (Linux).
    pub fn with_memory_limit(&mut self, limit: u64) {
        if self.linux.is_some() {
            self.resources()
                .memory
                .get_or_insert_with(Default::default)
                .limit = Some(limit as i64);
        }
    }

    /// `oci.WithCPUCFS`.
    pub fn with_cpu_cfs(&mut self, quota: i64, period: u64) {
        let cpu = self.resources().cpu.get_or_insert_with(Default::default);
        cpu.quota = Some(quota);
        cpu.period = Some(period);
    }

    /// `oci.WithCPUShares`.
    pub fn with_cpu_shares(&mut self, shares: u64) {
        self.resources()
            .cpu
            .get_or_insert_with(Default::default)
            .shares = Some(shares);
    }

    /// `oci.WithCgroup`: the container's cgroups path (empty: runc's default).
    pub fn with_cgroup(&mut self, path: &str) {
        self.linux().cgroups_path = path.into();
    }

    /// `apparmor.WithProfile`: the process runs under AppArmor profile `profile`.
    pub fn with_apparmor_profile(&mut self, profile: &str) {
        self.process().apparmor_profile = profile.into();
    }

    /// `oci.WithRdt(class, "", "")`: the Intel RDT class of service.
    pub fn with_rdt_class(&mut self, class: &str) {
        self.linux().intel_rdt_clos_id = Some(class.into());
    }

    /// Sets `linux.rootfsPropagation`.
    pub fn with_rootfs_propagation(&mut self, propagation: &str) {
        self.linux().rootfs_propagation = propagation.into();
    }

    /// The spec as Go's `json.Marshal` writes it.
    pub fn to_json(&self) -> Json {
        let mut members = vec![(
            "ociVersion".to_string(),
            Json::string(self.version.as_str()),
        )];
        if let Some(process) = &self.process {
            members.push(("process".into(), process.to_json()));
        }
        if let Some(root) = &self.root {
            let mut root_members = vec![("path".to_string(), Json::string(root.path.as_str()))];
            if root.readonly {
                root_members.push(("readonly".into(), Json::Bool(true)));
            }
            members.push(("root".into(), Json::Object(root_members)));
        }
        if !self.hostname.is_empty() {
            members.push(("hostname".into(), Json::string(self.hostname.as_str())));
        }
        if !self.mounts.is_empty() {
            members.push((
                "mounts".into(),
                Json::Array(self.mounts.iter().map(Mount::to_json).collect()),
            ));
        }
        if !self.annotations.is_empty() {
            members.push(("annotations".into(), Json::sorted_map(&self.annotations)));
        }
        if let Some(linux) = &self.linux {
            members.push(("linux".into(), linux.to_json()));
        }
        Json::Object(members)
    }

    /// The bytes containerd's client stores in the container record.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_json().to_compact().into_bytes()
    }
}

/// Go's `strconv.Atoi` accepting what it accepts (an optional sign, decimal
/// digits, fitting 64 bits).
fn go_atoi(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Go's `filepath.Join`: the non-empty parts joined by `/` and cleaned.
fn clean_join(parts: &[&str]) -> String {
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    clean_path(&joined)
}

/// Go's `path.Clean`: for the paths a spec holds, and the member names of an archive.
pub fn clean_path(path: &str) -> String {
    rcontainerd_pkg::gopath::clean(path)
}

fn push_strings(members: &mut Vec<(String, Json)>, key: &str, items: &[String]) {
    if !items.is_empty() {
        members.push((key.into(), Json::strings(items)));
    }
}

fn unsigned(value: u64) -> Json {
    // Values beyond i64 do not occur in the specs ctr writes (limits,
    // periods and ids are small).
    Json::Number(value.min(i64::MAX as u64) as i64)
}

impl Process {
    fn to_json(&self) -> Json {
        let mut members = Vec::new();
        if self.terminal {
            members.push(("terminal".to_string(), Json::Bool(true)));
        }
        let mut user = vec![
            ("uid".to_string(), unsigned(self.user.uid.into())),
            ("gid".into(), unsigned(self.user.gid.into())),
        ];
        if !self.user.additional_gids.is_empty() {
            user.push((
                "additionalGids".into(),
                Json::Array(
                    self.user
                        .additional_gids
                        .iter()
                        .map(|g| unsigned((*g).into()))
                        .collect(),
                ),
            ));
        }
        members.push(("user".into(), Json::Object(user)));
        push_strings(&mut members, "args", &self.args);
        push_strings(&mut members, "env", &self.env);
        members.push(("cwd".into(), Json::string(self.cwd.as_str())));
        if let Some(caps) = &self.capabilities {
            let mut list = Vec::new();
            push_strings(&mut list, "bounding", &caps.bounding);
            push_strings(&mut list, "effective", &caps.effective);
            push_strings(&mut list, "inheritable", &caps.inheritable);
            push_strings(&mut list, "permitted", &caps.permitted);
            push_strings(&mut list, "ambient", &caps.ambient);
            members.push(("capabilities".into(), Json::Object(list)));
        }
        if !self.rlimits.is_empty() {
            members.push((
                "rlimits".into(),
                Json::Array(
                    self.rlimits
                        .iter()
                        .map(|r| {
                            Json::Object(vec![
                                ("type".into(), Json::string(r.kind.as_str())),
                                ("hard".into(), unsigned(r.hard)),
                                ("soft".into(), unsigned(r.soft)),
                            ])
                        })
                        .collect(),
                ),
            ));
        }
        if self.no_new_privileges {
            members.push(("noNewPrivileges".into(), Json::Bool(true)));
        }
        if !self.apparmor_profile.is_empty() {
            members.push((
                "apparmorProfile".into(),
                Json::string(self.apparmor_profile.as_str()),
            ));
        }
        if !self.selinux_label.is_empty() {
            members.push((
                "selinuxLabel".into(),
                Json::string(self.selinux_label.as_str()),
            ));
        }
        Json::Object(members)
    }
}

impl Mount {
    fn to_json(&self) -> Json {
        let mut members = vec![(
            "destination".to_string(),
            Json::string(self.destination.as_str()),
        )];
        if !self.kind.is_empty() {
            members.push(("type".into(), Json::string(self.kind.as_str())));
        }
        if !self.source.is_empty() {
            members.push(("source".into(), Json::string(self.source.as_str())));
        }
        push_strings(&mut members, "options", &self.options);
        Json::Object(members)
    }
}

impl Linux {
    fn to_json(&self) -> Json {
        let mut members = Vec::new();
        if let Some(resources) = &self.resources {
            members.push(("resources".to_string(), resources.to_json()));
        }
        if !self.cgroups_path.is_empty() {
            members.push((
                "cgroupsPath".into(),
                Json::string(self.cgroups_path.as_str()),
            ));
        }
        if !self.namespaces.is_empty() {
            members.push((
                "namespaces".into(),
                Json::Array(
                    self.namespaces
                        .iter()
                        .map(|n| {
                            let mut ns = vec![("type".to_string(), Json::string(n.kind.as_str()))];
                            if !n.path.is_empty() {
                                ns.push(("path".into(), Json::string(n.path.as_str())));
                            }
                            Json::Object(ns)
                        })
                        .collect(),
                ),
            ));
        }
        if !self.devices.is_empty() {
            members.push((
                "devices".into(),
                Json::Array(self.devices.iter().map(Device::to_json).collect()),
            ));
        }
        if !self.rootfs_propagation.is_empty() {
            members.push((
                "rootfsPropagation".into(),
                Json::string(self.rootfs_propagation.as_str()),
            ));
        }
        push_strings(&mut members, "maskedPaths", &self.masked_paths);
        push_strings(&mut members, "readonlyPaths", &self.readonly_paths);
        if let Some(class) = &self.intel_rdt_clos_id {
            let mut rdt = Vec::new();
            if !class.is_empty() {
                rdt.push(("closID".to_string(), Json::string(class.as_str())));
            }
            members.push(("intelRdt".into(), Json::Object(rdt)));
        }
        Json::Object(members)
    }
}

impl Resources {
    fn to_json(&self) -> Json {
        let mut members = Vec::new();
        if !self.devices.is_empty() {
            members.push((
                "devices".to_string(),
                Json::Array(self.devices.iter().map(DeviceCgroup::to_json).collect()),
            ));
        }
        if let Some(memory) = &self.memory {
            let mut m = Vec::new();
            if let Some(limit) = memory.limit {
                m.push(("limit".to_string(), Json::Number(limit)));
            }
            members.push(("memory".into(), Json::Object(m)));
        }
        if let Some(cpu) = &self.cpu {
            let mut c = Vec::new();
            if let Some(shares) = cpu.shares {
                c.push(("shares".to_string(), unsigned(shares)));
            }
            if let Some(quota) = cpu.quota {
                c.push(("quota".into(), Json::Number(quota)));
            }
            if let Some(period) = cpu.period {
                c.push(("period".into(), unsigned(period)));
            }
            members.push(("cpu".into(), Json::Object(c)));
        }
        Json::Object(members)
    }
}

impl Device {
    fn to_json(&self) -> Json {
        let mut members = vec![
            ("path".to_string(), Json::string(self.path.as_str())),
            ("type".into(), Json::string(self.kind.as_str())),
            ("major".into(), Json::Number(self.major)),
            ("minor".into(), Json::Number(self.minor)),
        ];
        for (key, value) in [
            ("fileMode", self.file_mode),
            ("uid", self.uid),
            ("gid", self.gid),
        ] {
            if let Some(value) = value {
                members.push((key.into(), unsigned(value.into())));
            }
        }
        Json::Object(members)
    }
}

impl DeviceCgroup {
    fn to_json(&self) -> Json {
        let mut members = vec![("allow".to_string(), Json::Bool(self.allow))];
        if !self.kind.is_empty() {
            members.push(("type".into(), Json::string(self.kind.as_str())));
        }
        if let Some(major) = self.major {
            members.push(("major".into(), Json::Number(major)));
        }
        if let Some(minor) = self.minor {
            members.push(("minor".into(), Json::Number(minor)));
        }
        if !self.access.is_empty() {
            members.push(("access".into(), Json::string(self.access.as_str())));
        }
        Json::Object(members)
    }
}

/// A `--mount` value (`type=bind,src=/a,dst=/b,options=rbind:ro`), a CSV
/// record of `key=value` fields, as containerd's ctr reads it.
pub fn parse_mount_flag(text: &str) -> anyhow::Result<Mount> {
    let mut mount = Mount::default();
    for field in csv_record(text)? {
        let Some((key, value)) = field.split_once('=') else {
            anyhow::bail!("invalid mount specification: expected key=val");
        };
        match key {
            "type" => mount.kind = value.into(),
            "source" | "src" => mount.source = value.into(),
            "destination" | "dst" => mount.destination = value.into(),
            "options" => mount.options = value.split(':').map(String::from).collect(),
            other => anyhow::bail!("mount option {other:?} not supported"),
        }
    }
    Ok(mount)
}

/// The fields of one CSV record (Go's `encoding/csv`, the common cases:
/// commas, double-quoted fields with `""` for a quote).
fn csv_record(text: &str) -> anyhow::Result<Vec<String>> {
    let line = text.lines().next().unwrap_or("");
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => anyhow::bail!("parse error on line 1, column {}: extraneous or missing \" in quoted-field", line.len() + 1),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => {
                    anyhow::bail!("parse error on line 1: extraneous or missing \" in quoted-field")
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => {
                        anyhow::bail!("parse error on line 1: bare \" in non-quoted-field")
                    }
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(items: &[&str]) -> Vec<String> {
        strings(items)
    }

    #[test]
    fn env_overrides_replace_append_and_unset() {
        let got = replace_or_append_env(
            &owned(&["PATH=/bin", "A=1", "B=2"]),
            &owned(&["A=3", "C=4", "B", "NOPE"]),
        );
        assert_eq!(got, owned(&["PATH=/bin", "A=3", "C=4"]));
    }

    #[test]
    fn the_default_spec_has_containerds_cgroup_path_and_leading_members() {
        let spec = Spec::default_unix("default", "c1");
        let json = spec.to_json().to_compact();
        assert!(
            json.starts_with("{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"user\":{\"uid\":0,\"gid\":0},\"cwd\":\"/\""),
            "{json}"
        );
        assert!(json.contains("\"cgroupsPath\":\"/default/c1\""), "{json}");
        assert!(
            json.contains("\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]"),
            "{json}"
        );
    }

    #[test]
    fn image_users_resolve_through_the_databases() {
        let db = UserDatabase {
            passwd: Some("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n".into()),
            group: Some("root:x:0:\napp:x:1001:\nextra:x:2000:app,other\nwheel:x:10:root\n".into()),
        };
        let mut spec = Spec::default_unix("ns", "id");
        spec.with_image_user("app", &db).unwrap();
        assert_eq!(
            spec.process.as_ref().unwrap().user,
            User {
                uid: 1000,
                gid: 1001,
                additional_gids: vec![1001, 2000]
            }
        );
        spec.with_image_user("", &db).unwrap();
        assert_eq!(
            spec.process.as_ref().unwrap().user.additional_gids,
            vec![1001, 10]
        );
        let mut spec = Spec::default_unix("ns", "id");
        spec.with_image_user("1000:extra", &db).unwrap();
        assert_eq!(
            spec.process.as_ref().unwrap().user,
            User {
                uid: 1000,
                gid: 2000,
                additional_gids: vec![2000]
            }
        );
        let mut spec = Spec::default_unix("ns", "id");
        spec.with_image_user("4242", &db).unwrap();
        assert_eq!(
            spec.process.as_ref().unwrap().user,
            User {
                uid: 4242,
                gid: 0,
                additional_gids: vec![0]
            }
        );
        assert!(spec.with_image_user("nobody", &db).is_err());
    }

    #[test]
    fn mount_flags_read_like_containerds_ctr() {
        let m = parse_mount_flag("type=bind,src=/tmp,dst=/host,options=rbind:ro").unwrap();
        assert_eq!(m, mount("/host", "bind", "/tmp", &["rbind", "ro"]));
        assert!(parse_mount_flag("type").is_err());
        assert!(parse_mount_flag("kind=x").is_err());
        let quoted = parse_mount_flag("\"type=bind\",dst=/a").unwrap();
        assert_eq!(quoted.kind, "bind");
    }

    #[test]
    fn paths_clean_like_go() {
        assert_eq!(clean_join(&["/", "default", "c1"]), "/default/c1");
        assert_eq!(clean_join(&["/", "a", "../b"]), "/b");
        assert_eq!(clean_path("a/./b/"), "a/b");
    }
}
