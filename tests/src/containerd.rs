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
        crate::shims::kill_shims_of(&self.socket());
        crate::mounts::unmount_all_under(self.dir.path());
    }
}
