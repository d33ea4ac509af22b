//! The daemons under comparison: how each is configured inside a run's directory and started.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A containerd configuration to compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ContainerdConfig {
    /// Every built-in plugin, as packaged (only paths moved into the run's directory).
    Stock,
    /// The same, with `io.containerd.grpc.v1.cri` disabled: closer to what rcontainerd serves.
    NoCri,
}

/// One daemon as benchmarked: which binary, configured how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Rcontainerd {
        binary: PathBuf,
        /// Its snapshotters and content store run isolated (`isolation = "process"`).
        isolated: bool,
    },
    Containerd {
        binary: PathBuf,
        config: ContainerdConfig,
    },
}

/// A daemon process started inside a run's directory.
pub struct Launch {
    pub command: Command,
    /// The gRPC unix socket it will serve on.
    pub socket: PathBuf,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Rcontainerd {
                isolated: false, ..
            } => f.pad("rcontainerd"),
            Subject::Rcontainerd { isolated: true, .. } => f.pad("rcontainerd (isolated drivers)"),
            Subject::Containerd {
                config: ContainerdConfig::Stock,
                ..
            } => f.pad("containerd (stock config)"),
            Subject::Containerd {
                config: ContainerdConfig::NoCri,
                ..
            } => f.pad("containerd (CRI disabled)"),
        }
    }
}

impl Subject {
    /// Whether calls must carry a lease: both daemons' garbage collectors would otherwise collect what
    /// a benchmark creates (rcontainerd's since it has one), so every subject gets the same treatment.
    pub fn needs_lease(&self) -> bool {
        match self {
            Subject::Rcontainerd { .. } | Subject::Containerd { .. } => true,
        }
    }

    pub fn binary(&self) -> &Path {
        match self {
            Subject::Rcontainerd { binary, .. } | Subject::Containerd { binary, .. } => binary,
        }
    }

    /// Writes the daemon's config into `dir` and builds the command that starts it there.
    pub fn prepare(&self, dir: &Path) -> std::io::Result<Launch> {
        let log = dir.join("daemon.log");
        let (mut command, socket) = match self {
            Subject::Rcontainerd { binary, isolated } => {
                let socket = dir.join("rcontainerd.sock");
                let config = dir.join("rcontainerd.toml");
                std::fs::write(&config, rcontainerd_config(dir, &socket, *isolated))?;
                let mut command = Command::new(binary);
                // The flags repeat the file on purpose: the file only keeps /etc/rcontainerd out of the run.
                command
                    .arg("--config")
                    .arg(&config)
                    .arg("--root")
                    .arg(dir.join("root"))
                    .arg("--state")
                    .arg(dir.join("state"))
                    .arg("--address")
                    .arg(&socket);
                (command, socket)
            }
            Subject::Containerd { binary, config } => {
                let socket = dir.join("containerd.sock");
                let path = dir.join("containerd.toml");
                std::fs::write(&path, containerd_config(dir, &socket, *config))?;
                let mut command = Command::new(binary);
                command.arg("--config").arg(&path);
                (command, socket)
            }
        };
        let out = File::create(&log)?;
        let err = out.try_clone()?;
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Our logging filter reads RUST_LOG first; keep the caller's from changing what is measured.
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET");
        Ok(Launch {
            command,
            socket,
            log,
        })
    }
}

/// The drivers an isolated subject runs in child processes: every snapshotter and content store
/// the benchmarks call.
const ISOLATED_PLUGINS: [&str; 3] = [
    "io.containerd.snapshotter.v1.overlayfs",
    "io.containerd.snapshotter.v1.native",
    "io.containerd.content.v1.content",
];

fn rcontainerd_config(dir: &Path, socket: &Path, isolated: bool) -> String {
    let mut text = format!(
        "version = 2\nroot = {}\nstate = {}\n\n[grpc]\naddress = {}\n",
        toml_string(&dir.join("root")),
        toml_string(&dir.join("state")),
        toml_string(socket),
    );
    if isolated {
        for uri in ISOLATED_PLUGINS {
            text.push_str(&format!("\n[plugins.\"{uri}\"]\nisolation = \"process\"\n"));
        }
    }
    text
}

/// containerd's config for a run: every path it would otherwise create or serve on in a system location
/// (`/var/lib/containerd`, `/run/containerd`, `/opt/containerd`, `/etc/cni/net.d`) moved into `dir`.
fn containerd_config(dir: &Path, socket: &Path, config: ContainerdConfig) -> String {
    let mut text = String::from("version = 2\n");
    if config == ContainerdConfig::NoCri {
        text.push_str("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n");
    }
    let ttrpc = socket.with_extension("sock.ttrpc");
    text.push_str(&format!(
        "root = {}\nstate = {}\n\n[grpc]\naddress = {}\n\n[ttrpc]\naddress = {}\n\n[debug]\naddress = {}\n\n\
         [plugins.\"io.containerd.internal.v1.opt\"]\npath = {}\n\n\
         [plugins.\"io.containerd.grpc.v1.cri\".cni]\nbin_dir = {}\nconf_dir = {}\n",
        toml_string(&dir.join("root")),
        toml_string(&dir.join("state")),
        toml_string(socket),
        toml_string(&ttrpc),
        toml_string(&dir.join("debug.sock")),
        toml_string(&dir.join("opt")),
        toml_string(&dir.join("cni/bin")),
        toml_string(&dir.join("cni/net.d")),
    ));
    text
}

/// A TOML basic string holding `path`.
fn toml_string(path: &Path) -> String {
    let mut out = String::from("\"");
    for c in path.to_string_lossy().chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_config_moves_every_system_path_into_the_run_directory() {
        let dir = Path::new("/tmp/bench-run");
        let text = containerd_config(dir, &dir.join("containerd.sock"), ContainerdConfig::Stock);
        let paths: Vec<&str> = text.split('"').filter(|s| s.starts_with('/')).collect();
        // root, state, grpc, ttrpc, debug, opt, cni bin and conf dirs.
        assert_eq!(paths.len(), 8, "{text}");
        for path in paths {
            assert!(path.starts_with("/tmp/bench-run/"), "{path} in:\n{text}");
        }
        assert!(
            text.contains("address = \"/tmp/bench-run/containerd.sock.ttrpc\""),
            "{text}"
        );
        assert!(!text.contains("disabled_plugins"), "{text}");
    }

    #[test]
    fn no_cri_config_disables_only_the_cri_plugin() {
        let dir = Path::new("/tmp/run");
        let text = containerd_config(dir, &dir.join("containerd.sock"), ContainerdConfig::NoCri);
        assert!(
            text.contains("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"),
            "{text}"
        );
    }

    #[test]
    fn isolated_config_isolates_the_snapshotters_and_the_content_store() {
        let dir = Path::new("/tmp/run");
        let socket = dir.join("rcontainerd.sock");
        assert!(!rcontainerd_config(dir, &socket, false).contains("isolation"));
        let text = rcontainerd_config(dir, &socket, true);
        for uri in ISOLATED_PLUGINS {
            assert!(
                text.contains(&format!("[plugins.\"{uri}\"]\nisolation = \"process\"\n")),
                "{text}"
            );
        }
    }

    #[test]
    fn toml_strings_escape_quotes_and_backslashes() {
        assert_eq!(toml_string(Path::new("/a\"b\\c")), "\"/a\\\"b\\\\c\"");
    }
}
