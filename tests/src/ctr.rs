//! Running a `ctr` (ours or Debian's) against a daemon, and reading its output.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::binaries;

/// A ctr that gets longer than this is killed: a hung daemon must fail the test, not stall it.
const CTR_TIMEOUT: Duration = Duration::from_secs(60);

/// Which `ctr` to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctr {
    /// This workspace's `ctr`.
    Ours,
    /// containerd 1.6.20's `ctr` from Debian's `containerd` package.
    Debian,
}

impl Ctr {
    /// Both, for tests that must hold for each.
    pub const BOTH: [Ctr; 2] = [Ctr::Ours, Ctr::Debian];

    pub fn path(self) -> PathBuf {
        match self {
            Ctr::Ours => binaries::our_ctr(),
            Ctr::Debian => {
                let path = PathBuf::from(binaries::DEBIAN_CTR);
                assert!(
                    path.is_file(),
                    "{} is missing: run scripts/setup.sh (installs Debian's containerd)",
                    path.display()
                );
                path
            }
        }
    }

    /// Runs `ctr --address <socket> <args>` with no `CONTAINERD_*` variables from the environment.
    pub fn run(self, socket: &Path, args: &[&str]) -> CtrOutput {
        let mut full = vec!["--address", socket.to_str().expect("socket path is UTF-8")];
        full.extend_from_slice(args);
        self.run_with_env(&full, &[])
    }

    /// Runs `ctr <args>` with exactly the `CONTAINERD_*` variables in `env`.
    pub fn run_with_env(self, args: &[&str], env: &[(&str, &str)]) -> CtrOutput {
        let mut child = Command::new(self.path())
            .args(args)
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {:?} ctr: {e}", self));
        let pid = child.id();
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let (done, finished) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            let status = child.wait().expect("waiting for ctr");
            let _ = done.send(());
            (status, s)
        });
        if finished.recv_timeout(CTR_TIMEOUT).is_err() {
            // The pid is still ours: the waiter has not reaped the child.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!(
                "{:?} ctr {args:?} did not finish within {CTR_TIMEOUT:?}",
                self
            );
        }
        let (status, stdout) = waiter.join().expect("ctr waiter thread");
        let stderr = err_reader.join().expect("ctr stderr thread");
        CtrOutput {
            which: self,
            args: args.iter().map(|s| s.to_string()).collect(),
            status,
            stdout,
            stderr,
        }
    }
}

impl Ctr {
    /// Starts `ctr --address <socket> <args>` and leaves it running (`ctr
    /// events`), collecting what it prints as it prints it.
    pub fn spawn(self, socket: &Path, args: &[&str]) -> RunningCtr {
        let mut full = vec!["--address", socket.to_str().expect("socket path is UTF-8")];
        full.extend_from_slice(args);
        let mut child = Command::new(self.path())
            .args(&full)
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {:?} ctr: {e}", self));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("piped stdout"), stdout.clone()),
            collect(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        RunningCtr {
            which: self,
            args: full.iter().map(|s| s.to_string()).collect(),
            child: Some(child),
            stdout,
            stderr,
            readers,
        }
    }
}

/// Appends what `source` yields to `into` until it closes.
fn collect(mut source: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = source.read(&mut buffer) {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
            into.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(&text);
        }
    })
}

/// A ctr left running; killed when dropped.
pub struct RunningCtr {
    which: Ctr,
    args: Vec<String>,
    child: Option<Child>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl RunningCtr {
    /// Its process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What it printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until its stdout satisfies `done`; panics with both streams
    /// after `limit`.
    pub fn wait_for_stdout(&self, limit: Duration, what: &str, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(&self.stdout()) {
            assert!(
                Instant::now() < deadline,
                "{:?} ctr {:?}: no {what} after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                self.which,
                self.args,
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it (SIGKILL) and returns everything it printed.
    pub fn kill(mut self) -> CtrOutput {
        let mut child = self.child.take().expect("ctr is running");
        let _ = child.kill();
        let status = child.wait().expect("reaping ctr");
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        CtrOutput {
            which: self.which,
            args: self.args.clone(),
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    /// Waits for it to exit on its own (within `limit`, else it is killed
    /// and the test fails) and returns everything it printed.
    pub fn wait(mut self, limit: Duration) -> CtrOutput {
        let deadline = Instant::now() + limit;
        let mut child = self.child.take().expect("ctr is running");
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for ctr") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{:?} ctr {:?} did not exit within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                    self.which,
                    self.args,
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        CtrOutput {
            which: self.which,
            args: self.args.clone(),
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for RunningCtr {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a ctr run printed and how it exited.
#[derive(Debug, Clone)]
pub struct CtrOutput {
    pub which: Ctr,
    pub args: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CtrOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics with both streams unless the command succeeded; returns stdout.
    pub fn ok(&self) -> &str {
        assert!(
            self.success(),
            "{:?} ctr {:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            self.which,
            self.args,
            self.status,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    /// Panics unless the command failed; returns stderr.
    pub fn failed(&self) -> &str {
        assert!(
            !self.success(),
            "{:?} ctr {:?} succeeded but should have failed\nstdout:\n{}\nstderr:\n{}",
            self.which,
            self.args,
            self.stdout,
            self.stderr
        );
        &self.stderr
    }
}

/// One row of `ctr plugins ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRow {
    pub r#type: String,
    pub id: String,
    pub platforms: String,
    pub status: String,
}

impl PluginRow {
    pub fn uri(&self) -> String {
        format!("{}.{}", self.r#type, self.id)
    }
}

/// Parses the table `ctr plugins ls` prints (header `TYPE ID PLATFORMS STATUS`).
pub fn parse_plugins_table(stdout: &str) -> Vec<PluginRow> {
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        ["TYPE", "ID", "PLATFORMS", "STATUS"],
        "unexpected plugins ls header in:\n{stdout}"
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols.len(), 4, "plugins ls row {line:?} has not 4 columns");
            PluginRow {
                r#type: cols[0].to_owned(),
                id: cols[1].to_owned(),
                platforms: cols[2].to_owned(),
                status: cols[3].to_owned(),
            }
        })
        .collect()
}

/// The row for `uri` (`<type>.<id>`), if listed.
pub fn find_row<'a>(rows: &'a [PluginRow], uri: &str) -> Option<&'a PluginRow> {
    rows.iter().find(|r| r.uri() == uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plugins_table() {
        let out = "TYPE                            ID           PLATFORMS      STATUS    \n\
                   io.containerd.content.v1        content      -              ok        \n\
                   io.containerd.snapshotter.v1    btrfs        linux/amd64    skip      \n";
        let rows = parse_plugins_table(out);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].uri(), "io.containerd.snapshotter.v1.btrfs");
        assert_eq!(rows[1].platforms, "linux/amd64");
        assert_eq!(rows[1].status, "skip");
        assert_eq!(
            find_row(&rows, "io.containerd.content.v1.content")
                .unwrap()
                .status,
            "ok"
        );
    }
}
