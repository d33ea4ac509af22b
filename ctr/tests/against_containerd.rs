//! Our ctr and containerd's own ctr run the same commands, each against its
//! own freshly started containerd, and must print the same bytes and exit
//! with the same codes.
//!
//! Needs root and Debian's `containerd` and `ctr` (1.6); without them the
//! tests say so on stderr and pass without checking anything.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONTAINERD: &str = "/usr/bin/containerd";
const REFERENCE_CTR: &str = "/usr/bin/ctr";
const OUR_CTR: &str = env!("CARGO_BIN_EXE_ctr");

/// A containerd with its root, state and sockets in a temporary directory.
struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Containerd {
    fn start() -> Self {
        Self::start_without(&[])
    }

    /// Starts a containerd with the plugins `disabled` (URIs) turned off, as
    /// well as CRI, which these tests do not need.
    fn start_without(disabled: &[&str]) -> Self {
        let disabled: String = disabled
            .iter()
            .chain(&["io.containerd.grpc.v1.cri"])
            .map(|uri| format!("\"{uri}\", "))
            .collect();
        let dir = tempfile::tempdir().expect("temporary directory");
        let base = dir.path().display().to_string();
        let config = format!(
            "version = 2\n\
             root = \"{base}/root\"\n\
             state = \"{base}/state\"\n\
             disabled_plugins = [{disabled}]\n\
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
        let daemon = Self { dir, child };
        daemon.wait_until_serving();
        daemon
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ready = Command::new(REFERENCE_CTR)
                .arg("--address")
                .arg(self.socket())
                .args(["--connect-timeout", "1s", "namespaces", "ls"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "containerd in {} did not come up",
            self.dir.path().display()
        );
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SIGTERM lets containerd clean up its sockets; kill() would not.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one invocation printed and how it exited, with the daemon's
/// directory and log timestamps made neutral so two daemons compare equal.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

fn run(ctr: &str, daemon: &Containerd, args: &[&str]) -> Outcome {
    let output = Command::new(ctr)
        .env_remove("CONTAINERD_ADDRESS")
        .env_remove("CONTAINERD_NAMESPACE")
        .arg("--address")
        .arg(daemon.socket())
        .args(args)
        .output()
        .expect("run ctr");
    let neutral = |bytes: &[u8]| {
        let text =
            String::from_utf8_lossy(bytes).replace(&*daemon.dir.path().to_string_lossy(), "<dir>");
        text.split_inclusive('\n')
            .map(|line| match line.strip_prefix("time=\"") {
                Some(rest) => rest.split_once("\" ").map_or(line, |(_, tail)| tail),
                None => line,
            })
            .collect::<String>()
    };
    Outcome {
        stdout: neutral(&output.stdout),
        stderr: neutral(&output.stderr),
        code: output.status.code(),
    }
}

fn prerequisites_met() -> bool {
    let is_root = std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0);
    let present = Path::new(CONTAINERD).exists() && Path::new(REFERENCE_CTR).exists();
    if !(is_root && present) {
        eprintln!("skipping: needs root, {CONTAINERD} and {REFERENCE_CTR}");
    }
    is_root && present
}

/// Runs each command with both tools, each against its own daemon, in order,
/// and asserts identical outcomes.
fn assert_same(steps: &[&[&str]]) {
    let reference_daemon = Containerd::start();
    let our_daemon = Containerd::start();
    for args in steps {
        let expected = run(REFERENCE_CTR, &reference_daemon, args);
        let actual = run(OUR_CTR, &our_daemon, args);
        assert_eq!(actual, expected, "ctr {}", args.join(" "));
    }
}

#[test]
fn plugin_listings_match() {
    if !prerequisites_met() {
        return;
    }
    // Plugins with at most one export: containerd's ctr prints exports in
    // random order.
    let single_export = [
        "plugins",
        "ls",
        "-d",
        "id==content",
        "id==aufs",
        "id==btrfs",
        "id==devmapper",
        "id==native",
        "id==walking",
        "id==version",
        "id==tasks",
    ];
    assert_same(&[
        &["plugins", "ls"],
        &["plugin", "list", "-q"],
        &single_export,
        &[
            "plugins",
            "ls",
            "-q",
            "-d",
            "type==io.containerd.snapshotter.v1",
        ],
        &["plugins", "ls", "id==nothing-has-this-id"],
        &["plugins", "ls", "-d", "id==nothing-has-this-id"],
        &["plugins", "ls", "id=="],
    ]);
}

#[test]
fn namespace_commands_match() {
    if !prerequisites_met() {
        return;
    }
    assert_same(&[
        &["namespaces", "ls"],
        &[
            "ns", "create", "alpha", "b=2", "a=1", "bare", "eq=x=y", "dup=1", "dup=2",
        ],
        &["ns", "create", "alpha"],
        &["namespace", "c", "beta"],
        &["ns", "create"],
        &["ns", "create", "Bad Name!"],
        &["ns", "ls"],
        &["ns", "list", "-q"],
        &["ns", "label", "alpha", "a=", "c=3"],
        &["ns", "label", "alpha"],
        &["ns", "label"],
        &["ns", "ls"],
        &["-n", "beta", "ns", "ls"],
        &["ns", "rm"],
        &["ns", "remove", "missing", "beta"],
        &["ns", "ls", "-q"],
    ]);
}

#[test]
fn removing_a_namespace_in_use_fails_like_containerds_ctr() {
    if !prerequisites_met() {
        return;
    }
    let reference_daemon = Containerd::start();
    let our_daemon = Containerd::start();
    for daemon in [&reference_daemon, &our_daemon] {
        // A snapshot keeps the namespace from being removed.
        let setup = run(
            REFERENCE_CTR,
            daemon,
            &["-n", "busy", "snapshots", "prepare", "k"],
        );
        assert_eq!(setup.code, Some(0), "{setup:?}");
    }
    let args = ["ns", "rm", "busy", "gone", "busy"];
    let expected = run(REFERENCE_CTR, &reference_daemon, &args);
    let actual = run(OUR_CTR, &our_daemon, &args);
    assert_eq!(expected.code, Some(1));
    assert_eq!(actual, expected);
}

#[test]
fn version_reports_the_server() {
    if !prerequisites_met() {
        return;
    }
    let daemon = Containerd::start();
    let reference = run(REFERENCE_CTR, &daemon, &["version"]);
    let ours = run(OUR_CTR, &daemon, &["version"]);
    assert_eq!(ours.code, Some(0), "{ours:?}");
    let server_part = |outcome: &Outcome| {
        let start = outcome.stdout.find("Server:").expect("a Server section");
        outcome.stdout[start..].to_owned()
    };
    assert_eq!(server_part(&ours), server_part(&reference));
    assert!(ours.stdout.starts_with("Client:\n  Version:  "), "{ours:?}");
    // Our client is not containerd 1.6.20, so both warnings appear.
    assert_eq!(
        ours.stderr,
        "WARNING: version mismatch\nWARNING: revision mismatch\n"
    );
}

#[test]
fn unreachable_daemons_fail_like_containerds_ctr() {
    if !prerequisites_met() {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let not_a_socket = dir.path().join("plain-file");
    std::fs::write(&not_a_socket, b"").expect("write file");
    let outcome = |ctr: &str| {
        let output = Command::new(ctr)
            .arg("--address")
            .arg(&not_a_socket)
            .args(["ns", "ls"])
            .output()
            .expect("run ctr");
        (
            String::from_utf8_lossy(&output.stderr).into_owned(),
            output.status.code(),
        )
    };
    assert_eq!(outcome(OUR_CTR), outcome(REFERENCE_CTR));
}

#[test]
fn missing_services_fail_like_containerds_ctr() {
    if !prerequisites_met() {
        return;
    }
    for disabled in [
        &[
            "io.containerd.grpc.v1.version",
            "io.containerd.grpc.v1.introspection",
        ][..],
        &["io.containerd.grpc.v1.introspection"][..],
    ] {
        let daemon = Containerd::start_without(disabled);
        for args in [&["plugins", "ls"][..], &["version"][..]] {
            let expected = run(REFERENCE_CTR, &daemon, args);
            let actual = run(OUR_CTR, &daemon, args);
            let server_part =
                |stdout: &str| stdout.find("Server:").map(|at| stdout[at..].to_owned());
            assert_eq!(
                actual.code, expected.code,
                "ctr {args:?} without {disabled:?}"
            );
            assert_eq!(
                actual.stderr, expected.stderr,
                "ctr {args:?} without {disabled:?}"
            );
            assert_eq!(server_part(&actual.stdout), server_part(&expected.stdout));
        }
    }
}
