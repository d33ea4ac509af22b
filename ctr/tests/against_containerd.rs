//! Our ctr and containerd's own ctr run the same commands, each against its
//! own freshly started containerd, and must print the same bytes and exit
//! with the same codes.
//!
//! Needs root and Debian's `containerd` and `ctr` (1.6); without them the
//! tests say so on stderr and pass without checking anything, or fail where
//! `RCONTAINERD_REQUIRE_PREREQS` is set (`rcontainerd_pkg::prereq`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONTAINERD: &str = "/usr/bin/containerd";
const REFERENCE_CTR: &str = "/usr/bin/ctr";
const OUR_CTR: &str = env!("CARGO_BIN_EXE_ctr");
/// How long one ctr may run: a ctr that waits forever (on a locked ref, on a
/// daemon that does not answer) must fail its test instead of stalling the run.
const CTR_TIMEOUT: Duration = Duration::from_secs(60);

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

    /// Starts rcontainerd from `binary` with its root, state and socket laid
    /// out like the containerds above, so that paths compare equal.
    fn start_rcontainerd(binary: &Path) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = std::fs::File::create(dir.path().join("log")).expect("create log");
        let child = Command::new(binary)
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--state")
            .arg(dir.path().join("state"))
            .arg("--address")
            .arg(dir.path().join("containerd.sock"))
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start rcontainerd");
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
    run_with(ctr, daemon, args, &Input::Nothing)
}

/// What a command reads on stdin.
#[derive(Debug, Clone, Copy)]
enum Input<'a> {
    /// Nothing: stdin is closed.
    Nothing,
    /// A regular file, which ctr can seek in to resume an ingest.
    File(&'a Path),
    /// Bytes through a pipe, which cannot be seeked.
    Pipe(&'a [u8]),
}

fn run_with(ctr: &str, daemon: &Containerd, args: &[&str], input: &Input) -> Outcome {
    let mut command = Command::new(ctr);
    command
        .env_remove("CONTAINERD_ADDRESS")
        .env_remove("CONTAINERD_NAMESPACE")
        .env_remove("CONTAINERD_SNAPSHOTTER")
        .arg("--address")
        .arg(daemon.socket())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match input {
        Input::Nothing => command.stdin(Stdio::null()),
        Input::File(path) => command.stdin(std::fs::File::open(path).expect("open stdin file")),
        Input::Pipe(_) => command.stdin(Stdio::piped()),
    };
    let mut child = command.spawn().expect("run ctr");
    if let Input::Pipe(bytes) = input {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin pipe");
        // ctr may fail before reading everything; that is fine.
        let _ = stdin.write_all(bytes);
    }
    let output = output_within_deadline(child, &format!("{ctr} {args:?}"));
    let neutral = |bytes: &[u8]| {
        let text =
            String::from_utf8_lossy(bytes).replace(&*daemon.dir.path().to_string_lossy(), "<dir>");
        let text: String = text
            .split_inclusive('\n')
            .map(|line| match line.strip_prefix("time=\"") {
                Some(rest) => rest.split_once("\" ").map_or(line, |(_, tail)| tail),
                None => line,
            })
            .collect();
        without_timestamps(&text)
    };
    Outcome {
        stdout: neutral(&output.stdout),
        stderr: neutral(&output.stderr),
        code: output.status.code(),
    }
}

/// Waits for `child` to exit and collects its output; after [`CTR_TIMEOUT`]
/// kills it and panics naming `what`.
fn output_within_deadline(child: Child, what: &str) -> std::process::Output {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(CTR_TIMEOUT) {
        Ok(output) => output.unwrap_or_else(|err| panic!("waiting for {what}: {err}")),
        Err(_) => {
            // The waiter has not reaped the child, so the pid is still the child's.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("{what} did not finish within {CTR_TIMEOUT:?}");
        }
    }
}

/// `text` with every RFC 3339 UTC time (`2026-11-23T22:41:13Z`, with or
/// without a fraction) replaced by `<time>`: creation times and the
/// `containerd.io/gc.root` labels ctr sets differ between two daemons.
fn without_timestamps(text: &str) -> String {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    let bytes = text.as_bytes();
    let matches_shape = |at: usize| {
        bytes.len() >= at + SHAPE.len()
            && SHAPE
                .iter()
                .zip(&bytes[at..])
                .all(|(want, got)| match want {
                    b'd' => got.is_ascii_digit(),
                    other => other == got,
                })
    };
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut copied_to = 0;
    while at < bytes.len() {
        if matches_shape(at) {
            let mut end = at + SHAPE.len();
            if bytes.get(end) == Some(&b'.') {
                end += 1;
                while bytes.get(end).is_some_and(u8::is_ascii_digit) {
                    end += 1;
                }
            }
            if bytes.get(end) == Some(&b'Z') {
                out.push_str(&text[copied_to..at]);
                out.push_str("<time>");
                at = end + 1;
                copied_to = at;
                continue;
            }
        }
        at += 1;
    }
    out.push_str(&text[copied_to..]);
    out
}

/// `text` with the cells of content tables made neutral: runs of tabs
/// become one tab, ages (`Less than a second`, `2 seconds`) become `<age>`,
/// since two daemons' objects are created moments apart, and label lists
/// are sorted, since containerd's ctr prints them in random order.
fn neutral_table(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let cells: Vec<String> = line
            .split('\t')
            .filter(|cell| !cell.is_empty())
            .map(|cell| {
                let is_age = cell == "Less than a second"
                    || cell == "1 second"
                    || cell
                        .strip_suffix(" seconds")
                        .is_some_and(|n| n.parse::<u32>().is_ok());
                if is_age {
                    "<age>".to_owned()
                } else if cell.contains('=') {
                    let newline = if cell.ends_with('\n') { "\n" } else { "" };
                    label_set(cell).join(",") + newline
                } else {
                    cell.to_owned()
                }
            })
            .collect();
        out.push_str(&cells.join("\t"));
    }
    out
}

/// Labels printed as `k=v,k=v`: containerd's ctr prints them in random
/// order, so they compare as sets.
fn label_set(stdout: &str) -> Vec<String> {
    let mut labels: Vec<String> = stdout
        .trim_end_matches('\n')
        .split(',')
        .map(str::to_owned)
        .collect();
    labels.sort();
    labels
}

/// Root, containerd and its ctr are there; otherwise reports what is missing
/// (`rcontainerd_pkg::prereq`: a skip, or a failure where prerequisites are required).
fn prerequisites_met() -> bool {
    let is_root = std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0);
    let missing: Vec<&str> = [
        (is_root, "root"),
        (Path::new(CONTAINERD).exists(), CONTAINERD),
        (Path::new(REFERENCE_CTR).exists(), REFERENCE_CTR),
    ]
    .into_iter()
    .filter_map(|(present, what)| (!present).then_some(what))
    .collect();
    if !missing.is_empty() {
        rcontainerd_pkg::prereq::missing(missing.join(", "));
    }
    missing.is_empty()
}

/// Runs each command with both tools, each against its own daemon, in order,
/// and asserts identical outcomes.
fn assert_same(steps: &[&[&str]]) {
    let pair = DaemonPair::start();
    for args in steps {
        pair.same(args);
    }
    pair.assert_no_differences();
}

/// Two fresh containerds: one driven by containerd's ctr, one by ours.
/// Differences are collected so that one run reports all of them.
struct DaemonPair {
    reference: Containerd,
    ours: Containerd,
    differences: std::cell::RefCell<Vec<String>>,
}

impl DaemonPair {
    fn start() -> Self {
        Self {
            reference: Containerd::start(),
            ours: Containerd::start(),
            differences: Default::default(),
        }
    }

    /// Our ctr drives rcontainerd instead of a second containerd, when its
    /// binary is there (`$RCONTAINERD_BIN`, else beside our ctr).
    fn start_with_rcontainerd() -> Option<Self> {
        let binary = std::env::var_os("RCONTAINERD_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(OUR_CTR).with_file_name("rcontainerd"));
        if !binary.exists() {
            rcontainerd_pkg::prereq::missing(format_args!(
                "rcontainerd at {} (cargo build --workspace)",
                binary.display()
            ));
            return None;
        }
        Some(Self {
            reference: Containerd::start(),
            ours: Containerd::start_rcontainerd(&binary),
            differences: Default::default(),
        })
    }

    fn both(&self, args: &[&str], input: &Input) -> (Outcome, Outcome) {
        (
            run_with(REFERENCE_CTR, &self.reference, args, input),
            run_with(OUR_CTR, &self.ours, args, input),
        )
    }

    fn same(&self, args: &[&str]) {
        self.same_with(args, &Input::Nothing);
    }

    fn same_with(&self, args: &[&str], input: &Input) {
        let (expected, actual) = self.both(args, input);
        self.compare(args, &actual, &expected);
    }

    /// Same outcome once ages in the tables are made neutral.
    fn same_table(&self, args: &[&str]) {
        let (mut expected, mut actual) = self.both(args, &Input::Nothing);
        for outcome in [&mut expected, &mut actual] {
            outcome.stdout = neutral_table(&outcome.stdout);
        }
        self.compare(args, &actual, &expected);
    }

    /// Same outcome, the printed labels compared as a set.
    fn same_labels(&self, args: &[&str]) {
        let (mut expected, mut actual) = self.both(args, &Input::Nothing);
        for outcome in [&mut expected, &mut actual] {
            outcome.stdout = label_set(&outcome.stdout).join(",");
        }
        self.compare(args, &actual, &expected);
    }

    fn compare(&self, args: &[&str], actual: &Outcome, expected: &Outcome) {
        if actual != expected {
            self.differences.borrow_mut().push(format!(
                "ctr {}\n  ours:      {actual:?}\n  reference: {expected:?}",
                args.join(" ")
            ));
        }
    }

    fn assert_no_differences(&self) {
        let differences = self.differences.borrow();
        assert!(
            differences.is_empty(),
            "{} difference(s):\n{}",
            differences.len(),
            differences.join("\n")
        );
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
    let pair = DaemonPair::start();
    let (reference_daemon, our_daemon) = (&pair.reference, &pair.ours);
    for daemon in [reference_daemon, our_daemon] {
        // A snapshot keeps the namespace from being removed.
        let setup = run(
            REFERENCE_CTR,
            daemon,
            &["-n", "busy", "snapshots", "prepare", "k"],
        );
        assert_eq!(setup.code, Some(0), "{setup:?}");
    }
    let args = ["ns", "rm", "busy", "gone", "busy"];
    let expected = run(REFERENCE_CTR, reference_daemon, &args);
    let actual = run(OUR_CTR, our_daemon, &args);
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

#[test]
fn snapshot_commands_match() {
    if prerequisites_met() {
        snapshot_commands(&DaemonPair::start());
    }
}

/// The same, our ctr driving rcontainerd (needs the workspace and plugins built, as scripts/test.sh does).
#[test]
fn snapshot_commands_match_on_rcontainerd() {
    if let Some(pair) = prerequisites_met()
        .then(DaemonPair::start_with_rcontainerd)
        .flatten()
    {
        snapshot_commands(&pair);
    }
}

fn snapshot_commands(pair: &DaemonPair) {
    // Both daemons number their snapshots alike, so paths in mounts match.
    for args in [
        &["snapshots", "ls"][..],
        &["snapshots", "tree"],
        &["snapshots", "usage"],
        &["snapshots", "prepare", "a"],
        &["snapshots", "prepare", "a"],
        &["snapshot", "commit", "base", "a"],
        &["snapshots", "prepare", "--mounts", "b", "base"],
        &["snapshots", "prepare", "-t", "/mnt/x", "c", "base"],
        &["snapshots", "view", "--mounts", "-t", "/mnt/y", "v", "base"],
        &["snapshots", "view", "v2", "missing"],
        &["snapshots", "prepare", "p2", "b"],
        &["snapshots", "prepare", "top"],
        &["snapshots", "mounts", "/mnt/z", "c"],
        &["snapshots", "m", "/mnt/z", "top"],
        &["snapshots", "mount", "/mnt/z", "base"],
        &["snapshots", "mounts", "/mnt/z", "missing"],
        &["snapshots", "info", "base"],
        &["snapshots", "info", "b"],
        &["snapshots", "info", "v"],
        &["snapshots", "info", "missing"],
        &["snapshots", "ls"],
        &["snapshots", "list", "ignored-argument"],
        &["snapshots", "tree"],
        &["snapshots", "usage"],
        &["snapshots", "usage", "-b", "base", "b"],
        &["snapshots", "usage", "base", "missing"],
        &["snapshots", "label", "b"],
        &["snapshots", "label", "missing", "a=b"],
        &["snapshots", "label", "top", "containerd.io/gc.root="],
        &["snapshots", "label", "top", "containerd.io/gc.root=keep"],
        &["snapshots", "info", "top"],
        &["snapshots", "commit", "base", "b"],
        &["snapshots", "commit", "other", "missing"],
        &["snapshots", "commit", "again", "base"],
        &["snapshots", "--snapshotter", "nope", "ls"],
        &["snapshots", "--snapshotter", "native", "prepare", "n1"],
        &["snapshots", "--snapshotter", "native", "mounts", "/t", "n1"],
        &[
            "snapshots",
            "--snapshotter",
            "native",
            "prepare",
            "--mounts",
            "n2",
        ],
        &["snapshots", "--snapshotter", "native", "ls"],
        &["snapshots", "--snapshotter", "", "ls"],
        &["-n", "elsewhere", "snapshots", "ls"],
        // Wrong argument counts print help (texts differ) and succeed.
    ] {
        pair.same(args);
    }
    pair.same_labels(&["snapshots", "label", "b", "x=1", "y", "z="]);
    pair.same_labels(&["snapshots", "label", "b", "y="]);
    for args in [
        &["snapshots", "prepare"][..],
        &["snapshots", "view", "a", "b", "c"],
        &["snapshots", "commit", "x"],
        &["snapshots", "mounts", "/t"],
        &["snapshots", "info"],
        &["snapshots"],
        &["content"],
    ] {
        let (expected, actual) = pair.both(args, &Input::Nothing);
        assert_eq!((actual.code, expected.code), (Some(0), Some(0)), "{args:?}");
        assert!(!actual.stdout.is_empty(), "no help for {args:?}");
        assert_eq!(actual.stderr, expected.stderr, "{args:?}");
    }
    // Removals come last: they start containerd's garbage collector, which
    // takes unlabelled snapshots such as views.
    for args in [
        &["snapshots", "rm", "v"][..],
        &["snapshots", "rm", "base"],
        &["snapshots", "rm", "missing", "c"],
        &["snapshots", "delete", "c", "missing"],
        &["snapshots", "del", "c"],
        &["snapshots", "remove"],
    ] {
        pair.same(args);
    }
    pair.assert_no_differences();
}

#[test]
fn content_commands_match() {
    if prerequisites_met() {
        content_commands(&DaemonPair::start());
    }
}

/// The same, our ctr driving rcontainerd (needs the workspace and plugins built, as scripts/test.sh does).
#[test]
fn content_commands_match_on_rcontainerd() {
    if let Some(pair) = prerequisites_met()
        .then(DaemonPair::start_with_rcontainerd)
        .flatten()
    {
        content_commands(&pair);
    }
}

fn content_commands(pair: &DaemonPair) {
    let files = tempfile::tempdir().expect("temporary directory");
    let file = |name: &str, data: &[u8]| {
        let path = files.path().join(name);
        std::fs::write(&path, data).expect("write input");
        path
    };
    let hello = file("hello", b"hello");
    let part = file("part", b"hel");
    let full = file("full", b"hello world");
    let empty = file("empty", b"");
    let hello_digest = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let full_digest = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
    let missing = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let ingest = |args: &[&str], input: Input| {
        let mut all = vec!["content", "ingest"];
        all.extend_from_slice(args);
        pair.same_with(&all, &input);
    };
    pair.same_table(&["content", "ls"]);
    pair.same_table(&["content", "active"]);
    ingest(&["r1"], Input::File(&hello));
    // Content that exists already is a success.
    ingest(&["r2"], Input::Pipe(b"hello"));
    pair.same(&["content", "ls", "-q"]);
    pair.same(&["content", "get", hello_digest]);
    // Too little input leaves a resumable ingest...
    ingest(&["--expected-size", "11", "r3"], Input::File(&part));
    pair.same_table(&["content", "active"]);
    // ...which a pipe cannot resume (no seeking) but a file can.
    ingest(
        &["--expected-size", "11", "r3"],
        Input::Pipe(b"hello world"),
    );
    ingest(
        &[
            "--expected-size",
            "11",
            "--expected-digest",
            full_digest,
            "r3",
        ],
        Input::File(&full),
    );
    pair.same(&["content", "get", full_digest]);
    ingest(
        &["--expected-digest", hello_digest, "m1"],
        Input::File(&full),
    );
    ingest(&["--expected-size", "3", "m2"], Input::File(&full));
    pair.same_table(&["content", "active"]);
    pair.same_table(&["content", "active", "ref==m1"]);
    pair.same(&["content", "active", "r["]);
    ingest(&["e1"], Input::File(&empty));
    ingest(&["e2"], Input::Nothing);
    // Arguments checked before anything is sent.
    ingest(&[], Input::File(&hello));
    ingest(
        &["--expected-digest", "sha256:abc", "x"],
        Input::File(&hello),
    );
    ingest(&["--expected-digest", "md5:00", "x"], Input::File(&hello));
    ingest(&["--expected-digest", "foo", "x"], Input::File(&hello));
    pair.same(&["content", "get"]);
    pair.same(&["content", "get", "md5:00"]);
    pair.same(&["content", "get", missing]);
    pair.same(&["content", "label", hello_digest]);
    pair.same(&[
        "content",
        "label",
        hello_digest,
        "containerd.io/gc.root=keep",
    ]);
    pair.same_labels(&["content", "label", hello_digest, "a=1", "b", "x&y=<z>"]);
    pair.same_labels(&["content", "label", hello_digest, "a="]);
    pair.same(&["content", "label", "not-a-digest", "a=b"]);
    pair.same(&["content", "label", missing, "a=b"]);
    pair.same(&["content", "ls", "-q"]);
    pair.same_table(&["content", "ls"]);
    pair.same_table(&["content", "list", "labels.b==true"]);
    pair.same(&["content", "ls", "-q", "labels.a==1"]);
    pair.same_table(&["content", "ls", "bad["]);
    // Deleting comes last (it starts containerd's garbage collector).
    pair.same(&["content", "rm"]);
    pair.same(&["content", "rm", "bad", hello_digest, missing, "md5:00"]);
    pair.same(&["content", "delete", hello_digest]);
    pair.assert_no_differences();
}

#[test]
fn timestamps_and_ages_are_neutralised() {
    assert_eq!(
        without_timestamps(
            "\"2026-11-23T22:41:13.846192938Z\" and 2026-11-23T22:41:13Z, 2026-11-23T22:41:13"
        ),
        "\"<time>\" and <time>, 2026-11-23T22:41:13"
    );
    assert_eq!(
        neutral_table(
            "DIGEST\t\t\tSIZE\tAGE\t\tLABELS\nd\t6B\t12 seconds\t-\ne\t1B\t1 second\tb=1,a=2\n"
        ),
        "DIGEST\tSIZE\tAGE\tLABELS\nd\t6B\t<age>\t-\ne\t1B\t<age>\ta=2,b=1\n"
    );
    assert_eq!(label_set("b=1,a=2\n"), ["a=2", "b=1"]);
}

#[test]
fn get_into_a_closed_pipe_ends_by_sigpipe_like_containerds_ctr() {
    use std::os::unix::process::ExitStatusExt;
    if !prerequisites_met() {
        return;
    }
    let daemon = Containerd::start();
    // Larger than a pipe's buffer, so that ctr is still writing when the
    // reader goes away.
    let blob: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 253) as u8).collect();
    let stored = run_with(
        REFERENCE_CTR,
        &daemon,
        &["content", "ingest", "big"],
        &Input::Pipe(&blob),
    );
    assert_eq!(stored.code, Some(0), "{stored:?}");
    let digest = only_blob_digest(&daemon);
    for ctr in [REFERENCE_CTR, OUR_CTR] {
        let mut child = Command::new(ctr)
            .arg("--address")
            .arg(daemon.socket())
            .args(["content", "get", &digest])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ctr");
        drop(child.stdout.take());
        let output = output_within_deadline(child, &format!("{ctr} content get"));
        assert_eq!(output.status.signal(), Some(13), "{ctr}: {output:?}");
        assert!(output.stderr.is_empty(), "{ctr}: {output:?}");
    }
}

/// The digest of the only blob in the daemon's default namespace.
fn only_blob_digest(daemon: &Containerd) -> String {
    let listed = run(REFERENCE_CTR, daemon, &["content", "ls", "-q"]);
    let digest = listed.stdout.trim();
    assert_eq!(digest.lines().count(), 1, "{listed:?}");
    digest.to_owned()
}

#[test]
fn ingest_waits_for_a_locked_ref_like_containerds_ctr() {
    use std::io::Write as _;
    if !prerequisites_met() {
        return;
    }
    let daemon = Containerd::start();
    let ctr = |tool: &str| {
        let mut command = Command::new(tool);
        command
            .arg("--address")
            .arg(daemon.socket())
            .args(["content", "ingest", "shared-ref"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    // containerd's ctr takes the ref and holds it while its stdin stays open.
    let mut holder = ctr(REFERENCE_CTR).spawn().expect("run containerd's ctr");
    let mut holder_input = holder.stdin.take().expect("stdin pipe");
    holder_input.write_all(b"first ").expect("write");
    std::thread::sleep(Duration::from_millis(500));
    let mut waiter = ctr(OUR_CTR).spawn().expect("run our ctr");
    let mut waiter_input = waiter.stdin.take().expect("stdin pipe");
    waiter_input.write_all(b"second").expect("write");
    drop(waiter_input);
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        waiter.try_wait().expect("poll our ctr").is_none(),
        "our ctr did not wait for the locked ref"
    );
    holder_input.write_all(b"writer").expect("write");
    drop(holder_input);
    for (name, child) in [("containerd's", holder), ("our", waiter)] {
        // Our ctr can only fail here by waiting for the ref forever: a deadline.
        let output = output_within_deadline(child, &format!("{name} ctr content ingest"));
        assert_eq!(output.status.code(), Some(0), "{name} ctr: {output:?}");
    }
    // Each committed its own bytes under the ref, one after the other.
    let blobs = run(REFERENCE_CTR, &daemon, &["content", "ls", "-q"]);
    let mut contents: Vec<String> = blobs
        .stdout
        .lines()
        .map(|digest| run(REFERENCE_CTR, &daemon, &["content", "get", digest]).stdout)
        .collect();
    contents.sort();
    assert_eq!(contents, ["first writer", "second"], "{blobs:?}");
}

/// An OCI layout tarball holding one single-platform image named
/// `docker.io/library/tiny:1` (index → manifest → config and one layer), for
/// seeding both daemons through containerd's ctr (`images import`).
fn tiny_image_archive(dir: &Path) -> PathBuf {
    use sha2::Digest as _;
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("blob dir");
    let put = |data: &[u8]| -> (String, usize) {
        let hex = format!("{:x}", sha2::Sha256::digest(data));
        std::fs::write(blobs.join(&hex), data).expect("write blob");
        (format!("sha256:{hex}"), data.len())
    };
    let (layer, layer_size) = put(b"not unpacked: any bytes will do");
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
    );
    let (config, config_size) = put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{layer_size}}}]}}"#
    );
    let (manifest, manifest_size) = put(manifest.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest}","size":{manifest_size},"platform":{{"architecture":"amd64","os":"linux"}},"annotations":{{"org.opencontainers.image.ref.name":"docker.io/library/tiny:1"}}}}]}}"#
    );
    std::fs::write(layout.join("index.json"), index).expect("index");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let archive = dir.join("tiny.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    archive
}

#[test]
fn image_container_and_lease_commands_match() {
    if prerequisites_met() {
        image_container_and_lease_commands(&DaemonPair::start());
    }
}

/// The same, our ctr driving rcontainerd: the records live in our daemon.
#[test]
fn image_container_and_lease_commands_match_on_rcontainerd() {
    if let Some(pair) = prerequisites_met()
        .then(DaemonPair::start_with_rcontainerd)
        .flatten()
    {
        image_container_and_lease_commands(&pair);
    }
}

fn image_container_and_lease_commands(pair: &DaemonPair) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let archive = tiny_image_archive(dir.path());
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).expect("rootfs dir");
    // Seeded through containerd's ctr on both daemons (our ctr has no
    // import yet, nor a container create that needs no image).
    for daemon in [&pair.reference, &pair.ours] {
        for args in [
            &["images", "import", "--no-unpack", archive.to_str().unwrap()][..],
            &[
                "containers",
                "create",
                "--rootfs",
                rootfs.to_str().unwrap(),
                "c1",
                "sh",
            ],
            &[
                "containers",
                "create",
                "--label",
                "team=a",
                "--rootfs",
                rootfs.to_str().unwrap(),
                "c2",
                "true",
            ],
        ] {
            let seeded = run(REFERENCE_CTR, daemon, args);
            assert_eq!(seeded.code, Some(0), "{args:?}: {seeded:?}");
        }
    }
    for args in [
        &["images", "ls"][..],
        &["images", "ls", "-q"],
        &["image", "list", "name==docker.io/library/tiny:1"],
        &["images", "ls", "name==nothing"],
        &["images", "ls", "name=="],
        &["images", "tag", "docker.io/library/tiny:1", "t2", "t3"],
        &["images", "tag", "docker.io/library/tiny:1", "t2"],
        &["images", "tag", "--force", "docker.io/library/tiny:1", "t2"],
        &["images", "tag", "missing", "t9"],
        &["images", "tag", "t2"],
        &["images", "tag"],
        &["images", "label", "t2", "a=1"],
        &["images", "label", "t2", "a="],
        &["images", "label", "missing", "a=1"],
        &["images", "label"],
        &["images", "ls", "-q", "labels.a==1"],
        &["images", "check"],
        &["images", "check", "-q"],
        &["images", "check", "--snapshotter", "native", "name==t2"],
        &["images", "rm", "t3", "nonexistent"],
        &["images", "ls"],
        &["leases", "create", "--id", "l1", "--expires", "0s"],
        &["leases", "create", "--id", "l1"],
        &["leases", "create", "--id", "l2", "x=y"],
        &["leases", "ls"],
        &["leases", "ls", "-q", "id==l2"],
        &["leases", "rm", "l1"],
        &["leases", "rm", "l1"],
        &["leases", "ls", "-q"],
        &["containers", "ls"],
        &["containers", "ls", "-q"],
        &["c", "ls", "labels.team==a"],
        &["containers", "info", "c1"],
        &["containers", "info", "--spec", "c2"],
        &["containers", "info", "missing"],
        &["containers", "info"],
        &["containers", "label", "c1", "x=y"],
        &["containers", "label", "missing", "x=y"],
        &["containers", "rm", "c1"],
        &["containers", "rm", "c1"],
        &["containers", "rm"],
        &["containers", "ls"],
        &["ns", "rm", "default"],
    ] {
        pair.same(args);
    }
    pair.assert_no_differences();
}

/// A `ctr events` left running against a daemon, its output collected as
/// it comes; killed when dropped.
struct Watcher {
    child: Child,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Watcher {
    fn start(ctr: &str, daemon: &Containerd) -> Self {
        let mut child = Command::new(ctr)
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .arg("--address")
            .arg(daemon.socket())
            .arg("events")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ctr events");
        let collect = |mut source: Box<dyn std::io::Read + Send>| {
            use std::io::Read as _;
            let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let into = text.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(n) = source.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    let chunk = String::from_utf8_lossy(&buffer[..n]).into_owned();
                    into.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_str(&chunk);
                }
            });
            text
        };
        let stdout = collect(Box::new(child.stdout.take().expect("piped stdout")));
        let stderr = collect(Box::new(child.stderr.take().expect("piped stderr")));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until a line contains `text`.
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + CTR_TIMEOUT;
        while !self.stdout().contains(text) {
            assert!(
                Instant::now() < deadline,
                "ctr events printed no {text:?}:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ctr events` of each of `ctrs` against `daemon`, changes things
/// there with containerd's ctr, and returns each one's lines (stdout and
/// stderr; the readiness markers left out).
fn watch_events(daemon: &Containerd, ctrs: &[&str]) -> Vec<(Vec<String>, String)> {
    let reference = |args: &[&str]| {
        let out = run(REFERENCE_CTR, daemon, args);
        assert_eq!(out.code, Some(0), "{args:?}: {out:?}");
        out
    };
    let watchers: Vec<Watcher> = ctrs.iter().map(|ctr| Watcher::start(ctr, daemon)).collect();
    // Subscribed once they print a change made after they started.
    reference(&["namespaces", "create", "ready"]);
    let mut marker = 0;
    while !watchers
        .iter()
        .all(|w| w.stdout().contains(r#"{"name":"ready""#))
    {
        marker += 1;
        assert!(marker < 500, "ctr events never subscribed");
        reference(&["namespaces", "label", "ready", &format!("n={marker}")]);
        std::thread::sleep(Duration::from_millis(20));
    }

    let dir = tempfile::tempdir().expect("temporary directory");
    let archive = tiny_image_archive(dir.path());
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).expect("rootfs dir");
    let ns = |args: &[&str]| {
        let mut full = vec!["-n", "evns"];
        full.extend_from_slice(args);
        reference(&full)
    };
    // One label per command: containerd's ctr sends one Update per label, in
    // Go's random map order.
    reference(&["namespaces", "create", "evns", "a=1", "b=<&>"]);
    reference(&["namespaces", "label", "evns", "a=3"]);
    reference(&["namespaces", "label", "evns", "b="]);
    ns(&["snapshots", "prepare", "k1"]);
    ns(&["snapshots", "commit", "n1", "k1"]);
    ns(&["snapshots", "prepare", "k2", "n1"]);
    ns(&["snapshots", "view", "v1", "n1"]);
    ns(&["snapshots", "rm", "k2", "v1", "n1"]);
    // Announces nothing; containerd's garbage collector then takes the blob
    // (rcontainerd has none yet), so it is not removed by hand below.
    let ingested = run_with(
        REFERENCE_CTR,
        daemon,
        &["-n", "evns", "content", "ingest", "r1"],
        &Input::Pipe(b"some bytes"),
    );
    assert_eq!(ingested.code, Some(0), "{ingested:?}");
    ns(&["images", "import", "--no-unpack", archive.to_str().unwrap()]);
    ns(&["images", "label", "docker.io/library/tiny:1", "a=1"]);
    ns(&["images", "tag", "docker.io/library/tiny:1", "t2"]);
    // A blob the image still holds, so that both daemons have it to remove.
    ns(&["content", "rm", &tiny_layer_digest()]);
    ns(&["images", "rm", "t2", "docker.io/library/tiny:1"]);
    ns(&[
        "containers",
        "create",
        "--rootfs",
        rootfs.to_str().unwrap(),
        "c1",
        "sh",
    ]);
    ns(&["containers", "label", "c1", "x=y"]);
    ns(&["containers", "rm", "c1"]);
    reference(&["namespaces", "create", "gone"]);
    reference(&["namespaces", "rm", "gone"]);
    reference(&["namespaces", "create", "done"]);

    watchers
        .iter()
        .map(|watcher| {
            watcher.wait_for(r#"{"name":"done"}"#);
            let lines = watcher
                .stdout()
                .lines()
                .filter(|line| !line.contains(r#"{"name":"ready""#))
                .map(str::to_owned)
                .collect();
            let stderr = watcher
                .stderr()
                .lines()
                .map(|line| match line.strip_prefix("time=\"") {
                    Some(rest) => rest.split_once("\" ").map_or(line, |(_, tail)| tail),
                    None => line,
                })
                .collect::<Vec<_>>()
                .join("\n");
            (lines, stderr)
        })
        .collect()
}

/// The digest of the layer in [`tiny_image_archive`].
fn tiny_layer_digest() -> String {
    use sha2::Digest as _;
    let hex = format!(
        "{:x}",
        sha2::Sha256::digest(b"not unpacked: any bytes will do")
    );
    format!("sha256:{hex}")
}

/// Each line with its timestamp (the first four words) replaced by `<time>`.
fn without_event_times(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|line| {
            let words: Vec<&str> = line.splitn(5, ' ').collect();
            assert_eq!(words.len(), 5, "not an event line: {line:?}");
            format!("<time> {}", words[4])
        })
        .collect()
}

/// Both ctrs watching one containerd print the same bytes for the same
/// changes.
#[test]
fn events_match() {
    if !prerequisites_met() {
        return;
    }
    let daemon = Containerd::start();
    let seen = watch_events(&daemon, &[REFERENCE_CTR, OUR_CTR]);
    let (reference, ours) = (&seen[0], &seen[1]);
    let lines = without_event_times(&reference.0);
    assert!(
        [
            " /containers/create ",
            " /snapshot/commit ",
            " /content/delete "
        ]
        .iter()
        .all(|topic| lines.iter().any(|l| l.contains(topic))),
        "containerd announced too little:\n{}",
        reference.0.join("\n")
    );
    assert_eq!(ours, reference);
}

/// containerd's ctr watching rcontainerd prints what it prints watching
/// containerd, for the same changes (times aside); ours prints the same bytes
/// as containerd's there too.
#[test]
fn events_match_on_rcontainerd() {
    let Some(pair) = prerequisites_met()
        .then(DaemonPair::start_with_rcontainerd)
        .flatten()
    else {
        return;
    };
    let expected = watch_events(&pair.reference, &[REFERENCE_CTR]);
    let seen = watch_events(&pair.ours, &[REFERENCE_CTR, OUR_CTR]);
    assert_eq!(seen[1], seen[0], "our ctr and containerd's on rcontainerd");
    assert_eq!(
        without_event_times(&seen[0].0),
        without_event_times(&expected[0].0),
        "containerd's ctr on rcontainerd (left) and on containerd (right)"
    );
    assert_eq!(seen[0].1, expected[0].1);
}
