//! A real containerd 1.6 (Debian's `/usr/bin/containerd`) with its root, state and sockets in a
//! temporary directory and CRI disabled, for tests that compare rcontainerd with it.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::Ctr;

pub const CONTAINERD: &str = "/usr/bin/containerd";

/// Stopped (SIGTERM, then SIGKILL) and its mounts removed on drop, also when a test fails.
pub struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Containerd {
    /// Starts it and waits until Debian's ctr gets an answer from it.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rcd-test-containerd-")
            .tempdir()
            .expect("temporary directory");
        let base = dir.path().display().to_string();
        let config = format!(
            "version = 2\nroot = \"{base}/root\"\nstate = \"{base}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\naddress = \"{base}/containerd.sock\"\n\
             [ttrpc]\naddress = \"{base}/containerd.sock.ttrpc\"\n\
             [debug]\naddress = \"{base}/debug.sock\"\n"
        );
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).expect("write config.toml");
        let log = std::fs::File::create(dir.path().join("log")).expect("create log");
        let child = Command::new(CONTAINERD)
            .arg("--config")
            .arg(&config_path)
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let daemon = Containerd { dir, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = Ctr::Debian
                .run(&daemon.socket(), &["--connect-timeout", "1s", "version"])
                .success();
            if ready {
                return daemon;
            }
            assert!(Instant::now() < deadline, "containerd did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_shims_of(&self.socket());
        crate::mounts::unmount_all_under(self.dir.path());
    }
}

/// Kills (SIGKILL) the runtime shims a daemon listening on `socket` started, and the processes
/// they reaped into their care (the containers' processes): what a test could not delete. The
/// shims are recognised by the daemon's address on their command line, which is unique to the
/// test's temporary directory.
pub fn kill_shims_of(socket: &std::path::Path) {
    let address = socket.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let mut processes: Vec<(i32, i32, String)> = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let parent = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        processes.push((pid, parent, cmdline));
    }
    let shims: Vec<i32> = processes
        .iter()
        .filter(|(_, _, cmd)| cmd.contains("containerd-shim") && cmd.contains(&address))
        .map(|(pid, _, _)| *pid)
        .collect();
    let kill = |pid: i32| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    };
    for shim in shims {
        for (pid, _, _) in processes.iter().filter(|(_, parent, _)| *parent == shim) {
            kill(*pid);
        }
        kill(shim);
    }
}
