//! Starting containerd's runc shim (`containerd-shim-runc-v2`) without its `start` step.
//!
//! `start` is a second run of the shim binary whose only work is to make the shim's socket,
//! write `<bundle>/address`, re-run the binary as the server with the listening socket as fd 3,
//! give it an OOM score one above the daemon's, print the address and exit. Each run of that Go
//! binary costs several milliseconds, on the path of every `ctr run`. For this shim the daemon
//! does those steps itself, exactly as its `start` does them (socket
//! `/run/containerd/s/<sha256 of "<daemon address>/<namespace>/<group>">`, mode 0600; the group
//! is the container id unless the spec's annotations name one; a socket that already answers is
//! the group's shim and is used as it is). Whatever this does not do — a shim cgroup in the
//! runtime options, `SCHED_CORE`, a spec `start` would refuse, a shim whose `-v` is not 1.6.x, any
//! other shim binary — goes through `start` as before.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use prost::Message;
use rcontainerd_api::ttrpc::runc::Options as RuncOptions;
use rcontainerd_plugin_api::{runtime::AnyValue, PluginError, Result};
use sha2::Digest;

use crate::binary::{ShimEnv, RUNC_OPTIONS};
use crate::bundle::Bundle;

/// The binary this module knows how to start.
const RUNC_SHIM: &str = "containerd-shim-runc-v2";
/// Where that shim puts its sockets (compiled into it).
const SOCKET_DIR: &str = "/run/containerd/s";
/// Spec annotations that put containers in one shim, in the shim's order.
const GROUP_LABELS: [&str; 2] = [
    "io.containerd.runc.v2.group",
    "io.kubernetes.cri.sandbox-id",
];

/// Starts the runc shim's server for `bundle`, whose `config.json` is `spec`, and returns its
/// address; `Ok(None)` when this binary or these options need the shim's own `start`.
pub fn start_runc_shim(
    binary: &Path,
    env: &ShimEnv,
    bundle: &Bundle,
    spec: &[u8],
    options: Option<&AnyValue>,
    io: &tokio::runtime::Handle,
) -> Result<Option<String>> {
    if binary.file_name().is_none_or(|n| n != RUNC_SHIM)
        || std::env::var_os("SCHED_CORE").is_some()
        || !is_known_version(binary)
    {
        return Ok(None);
    }
    if let Some(options) = options {
        let runc = options.type_url.trim_start_matches("type.googleapis.com/") == RUNC_OPTIONS;
        match RuncOptions::decode(options.value.as_slice()) {
            Ok(decoded) if runc && decoded.shim_cgroup.is_empty() => {}
            _ => return Ok(None),
        }
    }
    // A spec the shim's `start` would refuse goes to `start`, which gives its error.
    let Some(group) = group_of(spec) else {
        return Ok(None);
    };
    let group = group.unwrap_or_else(|| bundle.id.clone());
    let path = socket_path(&env.grpc_address, &bundle.namespace, &group);
    let address = format!("unix://{}", path.display());
    let failed = |what: &str, e: io::Error| PluginError::io(format!("start shim: {what}"), e);
    let listener = match bind(&path) {
        Ok(listener) => listener,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            if answers(&path) {
                // The group's shim is running: this container joins it.
                write_address(&bundle.path, &address).map_err(|e| failed("address", e))?;
                return Ok(Some(address));
            }
            std::fs::remove_file(&path).map_err(|e| failed("stale socket", e))?;
            bind(&path).map_err(|e| failed("socket", e))?
        }
        Err(e) => return Err(failed("socket", e)),
    };
    let started = (|| {
        write_address(&bundle.path, &address).map_err(|e| failed("address", e))?;
        // Spawned as a tokio child and dropped: tokio's SIGCHLD handling reaps it when it exits,
        // with no thread waiting per shim.
        let _runtime = io.enter();
        let child =
            spawn_server(binary, env, bundle, listener.into()).map_err(|e| failed("spawn", e))?;
        // (tokio may fail a spawn after the process exists, when it cannot watch it; that
        // server then runs unwatched, and the socket it serves is removed below.)
        if let Some(pid) = child.id() {
            // As in the shim's `start`, a server whose OOM score cannot be set is not used.
            if let Err(e) = adjust_oom_score(pid) {
                let mut child = child;
                let _ = child.start_kill();
                return Err(failed("OOM score", e));
            }
        }
        drop(child);
        Ok(())
    })();
    if let Err(e) = started {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(Some(address))
}

/// `<dir>/<sha256 of "<daemon address>/<namespace>/<group>">`, as the shim names it (Go's
/// `filepath.Join`, which cleans the path).
fn socket_path(daemon_address: &str, namespace: &str, group: &str) -> PathBuf {
    let joined = rcontainerd_pkg::gopath::clean(&format!("{daemon_address}/{namespace}/{group}"));
    Path::new(SOCKET_DIR).join(format!("{:x}", sha2::Sha256::digest(joined.as_bytes())))
}

/// The group a spec's annotations name (`Some(None)`: none); `None` when the spec is not JSON
/// or its annotations are not strings, which the shim's `start` refuses.
fn group_of(spec: &[u8]) -> Option<Option<String>> {
    let spec: serde_json::Value = serde_json::from_slice(spec).ok()?;
    let annotations = match spec.get("annotations") {
        None | Some(serde_json::Value::Null) => return Some(None),
        Some(serde_json::Value::Object(map)) => map,
        Some(_) => return None,
    };
    if annotations.values().any(|v| !v.is_string()) {
        return None;
    }
    Some(
        GROUP_LABELS
            .iter()
            .find_map(|label| annotations.get(*label)?.as_str().map(str::to_string)),
    )
}

/// Whether a shim listens on `path`: a connection is taken, or the listener's queue is full (a
/// busy shim, not a dead one). Never waits.
fn answers(path: &Path) -> bool {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let Ok(fd) = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    ) else {
        return false;
    };
    let Ok(address) = UnixAddr::new(path) else {
        return false;
    };
    matches!(
        connect(fd.as_raw_fd(), &address),
        Ok(()) | Err(nix::errno::Errno::EAGAIN)
    )
}

/// Whether `binary -v` says it is a 1.6 shim, the `start` this module does the work of (later
/// ones do more: another socket, a JSON answer). Asked once per binary and modification time.
fn is_known_version(binary: &Path) -> bool {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    use std::time::SystemTime;
    type Known = HashMap<(PathBuf, SystemTime), bool>;
    static KNOWN: LazyLock<Mutex<Known>> = LazyLock::new(Mutex::default);
    let Ok(modified) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return false;
    };
    let key = (binary.to_path_buf(), modified);
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(answer) = known.get(&key) {
        return *answer;
    }
    let answer = std::process::Command::new(binary)
        .arg("-v")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.trim().strip_prefix("Version:"))
                .any(|v| v.trim().starts_with("1.6."))
        });
    known.insert(key, answer);
    answer
}

/// The shim's socket: its directory and the socket itself mode 0600, as the shim makes them.
fn bind(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o600)
            .create(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(listener)
}

/// `<bundle>/address`, written whole or not at all.
fn write_address(bundle: &Path, address: &str) -> io::Result<()> {
    let temp = bundle.join(".address");
    std::fs::write(&temp, address)?;
    std::fs::rename(&temp, bundle.join("address"))
}

/// The server: the binary without `start` or `-publish-binary`, in the bundle, its own process
/// group, the listening socket as fd 3, stdio on /dev/null, `GOMAXPROCS=4` as `start` sets it.
/// Must run inside the driver's tokio runtime.
fn spawn_server(
    binary: &Path,
    env: &ShimEnv,
    bundle: &Bundle,
    listener: OwnedFd,
) -> io::Result<tokio::process::Child> {
    let fd = listener.as_raw_fd();
    let mut cmd = tokio::process::Command::new(binary);
    cmd.arg("-namespace")
        .arg(&bundle.namespace)
        .arg("-id")
        .arg(&bundle.id)
        .arg("-address")
        .arg(&env.grpc_address)
        .current_dir(&bundle.path)
        .env("TTRPC_ADDRESS", &env.ttrpc_address)
        .env("GOMAXPROCS", "4")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    // SAFETY: between fork and exec the closure only calls dup2 and fcntl, which are
    // async-signal-safe, on a descriptor the parent keeps open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                // Already fd 3: only its close-on-exec flag must go.
                if libc_fcntl_clear_cloexec(3) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if nix::libc::dup2(fd, 3) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    // The server has its copy; ours must go, or a dead server's socket would still take
    // connections.
    drop(listener);
    child
}

/// Clears `FD_CLOEXEC` on `fd` (async-signal-safe).
fn libc_fcntl_clear_cloexec(fd: i32) -> i32 {
    // SAFETY: fcntl on an integer descriptor with F_GETFD/F_SETFD touches no memory.
    unsafe {
        let flags = nix::libc::fcntl(fd, nix::libc::F_GETFD);
        if flags < 0 {
            return flags;
        }
        nix::libc::fcntl(fd, nix::libc::F_SETFD, flags & !nix::libc::FD_CLOEXEC)
    }
}

/// The daemon's OOM score adjustment plus one, as the shim's `start` gives its server.
fn adjust_oom_score(pid: u32) -> io::Result<()> {
    let own = std::fs::read_to_string("/proc/self/oom_score_adj")?;
    let own: i32 = own.trim().parse().map_err(io::Error::other)?;
    let score = (own + 1).min(1000);
    std::fs::write(format!("/proc/{pid}/oom_score_adj"), score.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names_are_the_shims() {
        // The shim's name for daemon address /run/containerd/containerd.sock, namespace
        // default, id web: sha256("/run/containerd/containerd.sock/default/web").
        let path = socket_path("/run/containerd/containerd.sock", "default", "web");
        let expected = format!(
            "{:x}",
            sha2::Sha256::digest(b"/run/containerd/containerd.sock/default/web")
        );
        assert_eq!(path, Path::new(SOCKET_DIR).join(expected));
        // Go's filepath.Join cleans: a trailing slash or `..` in the address changes nothing.
        assert_eq!(
            socket_path("/run/x/../containerd/containerd.sock/", "default", "web"),
            path
        );
    }
}
