//! A task's standard streams as containerd's Go client (`cio`) hands them to
//! the shim: three FIFOs, `<dir>/<id>-stdin|stdout|stderr` in a directory of
//! a random name under `/run/containerd/fifo` (or `--fifo-dir`), whose paths
//! travel in the Create or Exec request; ctr copies its own stdin into the
//! first and the other two to its stdout and stderr. With a terminal there
//! is no stderr FIFO: the pty carries both outputs.
//!
//! The copies run on plain threads that open the FIFOs blocking, so each
//! starts once the shim has opened its end; a thread left blocked does not
//! keep ctr from exiting.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use tokio::sync::oneshot;

/// Where containerd's client makes its FIFO directories.
pub const DEFAULT_FIFO_DIR: &str = "/run/containerd/fifo";

/// The stdio fields of a Create or Exec request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoConfig {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Where a task's streams go.
pub enum Streams {
    /// ctr's own stdin, stdout and stderr.
    Stdio,
    /// A terminal (a copy of its descriptor): read from and written to; no stderr.
    Console(OwnedFd),
    /// No streams at all (`--null-io`).
    Null,
    /// The shim sends stdout and stderr to this URI (`--log-uri`).
    LogUri(String),
}

/// The streams of one process, being copied.
pub struct TaskIo {
    pub config: IoConfig,
    dir: Option<PathBuf>,
    outputs: Vec<JoinHandle<()>>,
    stdin_done: Option<oneshot::Receiver<()>>,
}

impl TaskIo {
    /// Makes the FIFOs for process `id` (unless `streams` needs none) and
    /// starts copying.
    pub fn create(fifo_root: Option<&str>, id: &str, streams: Streams) -> anyhow::Result<TaskIo> {
        let (stdin, stdout, stderr, terminal): (Box<dyn Read + Send>, File, Option<File>, bool) =
            match streams {
                Streams::Null => return Ok(TaskIo::without_fifos(IoConfig::default())),
                Streams::LogUri(uri) => {
                    let config = IoConfig {
                        stdout: uri.clone(),
                        stderr: uri,
                        ..Default::default()
                    };
                    return Ok(TaskIo::without_fifos(config));
                }
                Streams::Stdio => (
                    Box::new(File::from(duplicate(std::io::stdin().as_fd())?)),
                    File::from(duplicate(std::io::stdout().as_fd())?),
                    Some(File::from(duplicate(std::io::stderr().as_fd())?)),
                    false,
                ),
                Streams::Console(fd) => {
                    let output = File::from(fd.try_clone()?);
                    (Box::new(File::from(fd)), output, None, true)
                }
            };
        let root = fifo_root
            .filter(|r| !r.is_empty())
            .unwrap_or(DEFAULT_FIFO_DIR);
        let dir = make_random_dir(Path::new(root))?;
        let path = |stream: &str| dir.join(format!("{id}-{stream}"));
        let mut config = IoConfig {
            stdin: path("stdin").to_string_lossy().into_owned(),
            stdout: path("stdout").to_string_lossy().into_owned(),
            stderr: String::new(),
            terminal,
        };
        if stderr.is_some() {
            config.stderr = path("stderr").to_string_lossy().into_owned();
        }
        let made = [&config.stdin, &config.stdout, &config.stderr]
            .into_iter()
            .filter(|p| !p.is_empty())
            .try_for_each(|p| make_fifo(Path::new(p)));
        if let Err(err) = made {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(err);
        }

        let mut outputs = vec![copy_out(config.stdout.clone(), stdout)];
        if let Some(stderr) = stderr {
            outputs.push(copy_out(config.stderr.clone(), stderr));
        }
        let (done, stdin_done) = oneshot::channel();
        copy_in(config.stdin.clone(), stdin, done);
        Ok(TaskIo {
            config,
            dir: Some(dir),
            outputs,
            stdin_done: Some(stdin_done),
        })
    }

    /// Copies between ctr's streams (or its terminal) and a running
    /// process's existing FIFOs (`cio.NewAttach`); the FIFOs stay.
    pub fn attach(config: IoConfig, console: Option<OwnedFd>) -> anyhow::Result<TaskIo> {
        let (stdin, stdout, stderr): (Box<dyn Read + Send>, File, Option<File>) = match console {
            Some(fd) => {
                let output = File::from(fd.try_clone()?);
                (Box::new(File::from(fd)), output, None)
            }
            None => (
                Box::new(File::from(duplicate(std::io::stdin().as_fd())?)),
                File::from(duplicate(std::io::stdout().as_fd())?),
                Some(File::from(duplicate(std::io::stderr().as_fd())?)),
            ),
        };
        let mut outputs = Vec::new();
        if !config.stdout.is_empty() {
            outputs.push(copy_out(config.stdout.clone(), stdout));
        }
        if let (Some(stderr), false) = (stderr, config.stderr.is_empty() || config.terminal) {
            outputs.push(copy_out(config.stderr.clone(), stderr));
        }
        let mut stdin_done = None;
        if !config.stdin.is_empty() {
            let (done, receiver) = oneshot::channel();
            copy_in(config.stdin.clone(), stdin, done);
            stdin_done = Some(receiver);
        }
        Ok(TaskIo {
            config,
            dir: None,
            outputs,
            stdin_done,
        })
    }

    fn without_fifos(config: IoConfig) -> TaskIo {
        TaskIo {
            config,
            dir: None,
            outputs: Vec::new(),
            stdin_done: None,
        }
    }

    /// Resolves once ctr's stdin has ended and its FIFO is closed: the
    /// moment ctr asks the daemon to close the process's stdin (CloseIO).
    pub fn take_stdin_done(&mut self) -> Option<oneshot::Receiver<()>> {
        self.stdin_done.take()
    }

    /// Waits (at most `limit`) for the outputs to be copied to their end,
    /// then removes the FIFOs.
    pub async fn finish(mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for output in self.outputs.drain(..) {
            while !output.is_finished() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        self.remove();
    }

    /// Removes the FIFOs (when the process could not be made).
    pub fn remove(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// An owned copy of `fd`.
fn duplicate(fd: std::os::fd::BorrowedFd<'_>) -> anyhow::Result<OwnedFd> {
    fd.try_clone_to_owned()
        .context("duplicating a standard stream")
}

/// `os.MkdirTemp(root, "")`: `root` (made 0700 if missing) and in it a new
/// directory named by a random number.
fn make_random_dir(root: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|err| anyhow!("mkdir {}: {}", root.display(), os_reason(&err)))?;
    for _ in 0..10_000 {
        let dir = root.join(random_u32()?.to_string());
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(anyhow!("mkdir {}: {}", dir.display(), os_reason(&err))),
        }
    }
    Err(anyhow!("mkdir {}: too many names taken", root.display()))
}

fn random_u32() -> anyhow::Result<u32> {
    let mut bytes = [0u8; 4];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(u32::from_ne_bytes(bytes))
}

fn make_fifo(path: &Path) -> anyhow::Result<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o700))
        .map_err(|err| anyhow!("mkfifo {}: {}", path.display(), err.desc().to_lowercase()))
}

fn os_reason(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => err.to_string(),
    }
}

/// Copies what the shim writes to the FIFO at `path` to `to`, until the
/// shim closes it or `to` fails.
fn copy_out(path: String, mut to: File) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(mut fifo) = File::open(&path) else {
            return;
        };
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            match fifo.read(&mut buffer) {
                Ok(0) => return,
                Ok(n) => {
                    if to.write_all(&buffer[..n]).is_err() {
                        return;
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    })
}

/// Copies `from` into the FIFO at `path` (once the shim reads it) until
/// `from` ends; then closes the FIFO and says so on `done`.
fn copy_in(path: String, mut from: Box<dyn Read + Send>, done: oneshot::Sender<()>) {
    std::thread::spawn(move || {
        let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&path) else {
            return;
        };
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    if fifo.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        drop(fifo);
        let _ = done.send(());
    });
}

/// The FIFOs of a process that ctr left running (`run -d`) are removed when
/// its task is deleted: the files at the paths the daemon reports, and their
/// directories once empty (`cio.Load`'s closer).
pub fn remove_fifos(paths: &[&str]) {
    use std::os::unix::fs::FileTypeExt as _;
    let mut dirs = Vec::new();
    for path in paths.iter().filter(|p| !p.is_empty()) {
        let path = Path::new(path);
        let is_fifo = std::fs::symlink_metadata(path)
            .map(|m| m.file_type().is_fifo())
            .unwrap_or(false);
        if is_fifo {
            let _ = std::fs::remove_file(path);
            if let Some(dir) = path.parent() {
                dirs.push(dir.to_path_buf());
            }
        }
    }
    for dir in dirs {
        let _ = std::fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_are_named_after_the_process_in_a_new_directory() {
        let root = tempfile::tempdir().unwrap();
        let root_text = root.path().join("fifo").to_string_lossy().into_owned();
        let io = TaskIo::create(Some(&root_text), "c1", Streams::Stdio).unwrap();
        let dir = Path::new(&io.config.stdout).parent().unwrap().to_path_buf();
        assert_eq!(dir.parent().unwrap(), Path::new(&root_text));
        assert!(dir
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .parse::<u32>()
            .is_ok());
        assert_eq!(io.config.stdin, dir.join("c1-stdin").to_string_lossy());
        assert_eq!(io.config.stderr, dir.join("c1-stderr").to_string_lossy());
        assert!(!io.config.terminal);
        remove_fifos(&[&io.config.stdin, &io.config.stdout, &io.config.stderr]);
        assert!(!dir.exists());
    }

    #[test]
    fn null_and_log_uri_need_no_fifos() {
        let io = TaskIo::create(None, "c", Streams::Null).unwrap();
        assert_eq!(io.config, IoConfig::default());
        let io = TaskIo::create(None, "c", Streams::LogUri("file:///x".into())).unwrap();
        assert_eq!(io.config.stdout, "file:///x");
        assert_eq!(io.config.stderr, "file:///x");
        assert_eq!(io.config.stdin, "");
    }
}
