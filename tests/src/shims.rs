//! Cleaning up what a daemon's tasks leave running: containers (through `runc --root`, the
//! runtime driver's relocated runc state) and shims (found by the daemon socket on their
//! command line). Runs when a [`Daemon`](crate::Daemon) or a reference containerd is dropped,
//! so a failed test leaves nothing running.

use std::path::Path;
use std::process::{Command, Stdio};

/// runc's state directory under the runtime driver's state (its `Options.root`).
pub fn runc_root(state: &Path) -> std::path::PathBuf {
    state.join("io.containerd.runtime.v2.task").join(".runc")
}

/// Force-deletes every container whose runc state lives under `state`.
pub fn delete_containers(state: &Path) {
    delete_containers_in(&runc_root(state));
}

/// Force-deletes every container under a runc root given to the shim (`Options.root`): the shim
/// keeps each namespace's containers in `<root>/<namespace>`.
pub fn delete_containers_in(runc_root: &Path) {
    let Ok(namespaces) = std::fs::read_dir(runc_root) else {
        return;
    };
    for ns in namespaces.flatten() {
        let root = ns.path();
        let Ok(ids) = std::fs::read_dir(&root) else {
            continue;
        };
        for id in ids.flatten() {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force"])
                .arg(id.file_name())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Pids of the shims a daemon on `socket` started (`-address <socket>` on their command line).
pub fn shims_of(socket: &Path) -> Vec<i32> {
    let want = socket.as_os_str().as_encoded_bytes();
    let mut pids = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_shim = args
            .first()
            .is_some_and(|a| a.ends_with(b"containerd-shim-runc-v2"));
        let ours = args.windows(2).any(|w| w[0] == b"-address" && w[1] == want);
        if is_shim && ours && !is_zombie(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// A zombie is dead (this machine's init reaps slowly).
pub fn is_zombie(pid: i32) -> bool {
    state_and_parent(pid).is_none_or(|(state, _)| state == 'Z')
}

/// A process's state letter and its parent's pid, from `/proc/<pid>/stat` (after the command's
/// closing parenthesis); `None` when it is gone.
pub fn state_and_parent(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// Kills the containers and shims of the daemon rooted in `state` on `socket`.
pub fn kill_all(state: &Path, socket: &Path) {
    delete_containers(state);
    kill_shims_of(socket);
}

/// Kills (SIGKILL) the shims a daemon on `socket` started and the processes they reaped into
/// their care (the containers' processes): what a test could not delete. Works for any daemon,
/// containerd included: the shims are recognised by the daemon's address on their command line,
/// which is unique to the test's temporary directory.
pub fn kill_shims_of(socket: &Path) {
    let shims = shims_of(socket);
    if shims.is_empty() {
        return;
    }
    let kill = |pid: i32| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    };
    for child in children_of(&shims) {
        kill(child);
    }
    for shim in shims {
        kill(shim);
    }
}

/// Every process whose parent is one of `parents` (`PPid` in `/proc/<pid>/status`).
fn children_of(parents: &[i32]) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let parent: i32 = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))?
                .trim()
                .parse()
                .ok()?;
            parents.contains(&parent).then_some(pid)
        })
        .collect()
}
