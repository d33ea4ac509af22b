//! The Debian package built by `scripts/package-deb.sh` (from this run's debug binaries):
//! what it holds, and the operator's whole life cycle on this machine — `dpkg -i`, the daemon
//! started as its systemd unit starts it (by systemd when it is the init system, else by
//! running the unit's own `ExecStartPre=`/`ExecStart=` lines with the environment systemd
//! gives a `Type=notify` service), driven by Debian's `ctr` and the packaged `rctr`,
//! restarted, then `dpkg -r` (the conffile stays) and `dpkg --purge` (nothing stays but the
//! daemon's data).
//!
//! The installed daemon uses the package's standard paths (/var/lib/rcontainerd,
//! /run/rcontainerd), which nothing else on a test machine uses; the test refuses to run when
//! they or the package are already there, and removes everything it installed or created even
//! when it fails.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rcontainerd_pkg::prereq;
use rcontainerd_tests::binaries;
use rcontainerd_tests::ctr::{find_row, parse_plugins_table};
use rcontainerd_tests::{busybox, mounts, shims, uri};

const PACKAGE: &str = "rcontainerd";
const DAEMON: &str = "/usr/bin/rcontainerd";
/// Our ctr: Debian's containerd package owns /usr/bin/ctr.
const RCTR: &str = "/usr/bin/rctr";
/// Where the daemon finds it (`../lib/rcontainerd/` beside `/usr/bin/rcontainerd`).
const ISOLATED_HELPER: &str = "/usr/lib/rcontainerd/rcontainerd-isolated";
const PLUGIN_DIR: &str = "/usr/lib/rcontainerd/plugins";
const CONFFILE: &str = "/etc/rcontainerd/config.toml";
const UNIT: &str = "/lib/systemd/system/rcontainerd.service";
const SOCKET: &str = "/run/rcontainerd/rcontainerd.sock";
/// The daemon's data (root, state): what a purge leaves.
const DATA: [&str; 2] = ["/var/lib/rcontainerd", "/run/rcontainerd"];
/// The in-tree drivers' libraries; the example driver is not one.
const DRIVERS: [&str; 5] = [
    "librcontainerd_plugin_btrfs.so",
    "librcontainerd_plugin_content_local.so",
    "librcontainerd_plugin_native.so",
    "librcontainerd_plugin_overlayfs.so",
    "librcontainerd_plugin_shim_v2.so",
];
/// Where a package could leave files, searched before the install and after the purge.
const SEARCHED: [&str; 4] = ["/etc", "/lib", "/usr", "/var/lib"];
/// dpkg's and apt's own records change with every install; they are not the package's files.
const NOT_SEARCHED: [&str; 2] = ["/var/lib/dpkg", "/var/lib/apt"];
/// systemd's default PATH for system services on Debian.
const SERVICE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long the daemon may take from its start to READY=1.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a command of the test (dpkg, a ctr) may take; `timeout` kills it after.
const COMMAND_TIMEOUT: &str = "120";
/// The namespace the test's records live in.
const NAMESPACE: &str = "deb-test";
/// The test's image and container.
const IMAGE: &str = "docker.io/library/deb-test:latest";
const CONTAINER: &str = "deb-test";
const RUNTIME: &str = "io.containerd.runtime.v2.task";

/// Builds the package once per test binary, from the binaries `scripts/test.sh` built.
fn package() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        let out = binaries::target_dir().join("deb-test");
        let script = binaries::workspace_root().join("scripts/package-deb.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg("--binaries")
            .arg(binaries::profile_dir())
            .arg("--out")
            .arg(&out)
            // The test installs it at once: compressing would only cost time.
            .args(["--compression", "none"])
            .stdin(Stdio::null())
            .output()
            .expect("running scripts/package-deb.sh");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "package-deb.sh failed with {}:\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let deb = PathBuf::from(stdout.lines().last().expect("the script prints the .deb"));
        assert!(deb.is_file(), "{} is not a file", deb.display());
        deb
    })
}

/// Whether Debian's packaging tools are here (false on another distribution).
fn have_dpkg_tools() -> bool {
    ["dpkg-deb", "dpkg-shlibdeps", "strip"]
        .iter()
        .all(|tool| on_path(tool))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

#[test]
fn the_package_holds_the_daemon_rctr_the_in_tree_drivers_a_conffile_and_the_unit() {
    if !have_dpkg_tools() {
        prereq::missing("dpkg-deb, dpkg-shlibdeps and strip (packages dpkg, dpkg-dev, binutils)");
        return;
    }
    let deb = package();
    let dir = tempfile::tempdir().expect("temp dir");
    let tree = dir.path().join("tree");
    ok("dpkg-deb", &["-R", path_str(deb), path_str(&tree)]);

    let mut files = BTreeSet::new();
    walk(&tree, tree.metadata().expect("tree").dev(), &[], &mut files);
    let files: BTreeSet<String> = files
        .iter()
        .filter(|p| !p.is_dir())
        .map(|p| format!("/{}", p.strip_prefix(&tree).unwrap().display()))
        .collect();
    let mut expected: BTreeSet<String> = [DAEMON, RCTR, ISOLATED_HELPER, CONFFILE, UNIT]
        .iter()
        .map(|s| s.to_string())
        .collect();
    expected.extend(DRIVERS.iter().map(|d| format!("{PLUGIN_DIR}/{d}")));
    let outside_docs: BTreeSet<String> = files
        .iter()
        .filter(|f| !f.starts_with("/DEBIAN/") && !f.starts_with("/usr/share/doc/rcontainerd/"))
        .cloned()
        .collect();
    assert_eq!(outside_docs, expected, "the package's files");
    for doc in ["copyright", "operators.md", "changelog.gz"] {
        let path = format!("/usr/share/doc/rcontainerd/{doc}");
        assert!(files.contains(&path), "{path} is missing: {files:#?}");
    }
    assert!(
        !files.iter().any(|f| f.contains("example.so")),
        "the example driver is packaged: {files:#?}"
    );

    // Every file root's, as installed files must be.
    let listing = ok("dpkg-deb", &["-c", path_str(deb)]);
    for line in listing.lines() {
        assert_eq!(
            line.split_whitespace().nth(1),
            Some("root/root"),
            "not owned by root: {line}"
        );
    }

    let control = read(&tree.join("DEBIAN/control"));
    assert_eq!(field(&control, "Package"), PACKAGE);
    let depends = field(&control, "Depends");
    assert!(
        depends.contains("librocksdb"),
        "Depends lacks Debian's RocksDB: {depends}"
    );
    assert!(
        depends.contains("libisal"),
        "Depends lacks Debian's ISA-L (gzip layers): {depends}"
    );
    assert_eq!(
        read(&tree.join("DEBIAN/conffiles")),
        format!("{CONFFILE}\n")
    );
    for script in ["postinst", "prerm", "postrm"] {
        let mode = tree.join("DEBIAN").join(script).metadata().unwrap().mode();
        assert_eq!(mode & 0o777, 0o755, "DEBIAN/{script}");
    }
    // md5sums covers every file and matches.
    let sums = read(&tree.join("DEBIAN/md5sums"));
    assert_eq!(
        sums.lines().count(),
        files.iter().filter(|f| !f.starts_with("/DEBIAN/")).count(),
        "md5sums:\n{sums}"
    );
    let check = Command::new("md5sum")
        .args(["--check", "--quiet", "DEBIAN/md5sums"])
        .current_dir(&tree)
        .output()
        .expect("running md5sum");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // The packaged config: the shipped default, with the package's plugin directories.
    let config = read(&tree.join(CONFFILE.trim_start_matches('/')));
    assert!(
        config.contains(
            "\nplugin_dirs = [\"/usr/lib/rcontainerd/plugins\", \"/usr/local/lib/rcontainerd/plugins\"]\n"
        ),
        "{config}"
    );
    for line in [
        "root = \"/var/lib/rcontainerd\"",
        "state = \"/run/rcontainerd\"",
        "address = \"/run/rcontainerd/rcontainerd.sock\"",
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "no {line:?} in:\n{config}"
        );
    }

    // The unit's promises (docs/operators.md says why each).
    let unit = read(&tree.join(UNIT.trim_start_matches('/')));
    for (key, value) in [
        ("Type", "notify"),
        ("KillMode", "process"),
        ("Delegate", "yes"),
        ("Restart", "on-failure"),
    ] {
        assert_eq!(service_values(&unit, key), [value], "{key}= in:\n{unit}");
    }
    assert_eq!(service_values(&unit, "LimitNOFILE").len(), 1, "{unit}");
    assert_eq!(
        service_values(&unit, "ExecReload"),
        ["/bin/kill -HUP $MAINPID"],
        "{unit}"
    );
    assert_eq!(
        service_values(&unit, "ExecStartPre"),
        [format!("{DAEMON} config check")],
        "{unit}"
    );
}

#[test]
fn the_installed_package_runs_as_its_unit_says_restarts_and_purges_clean() {
    if !have_dpkg_tools() {
        prereq::missing("dpkg-deb, dpkg-shlibdeps and strip (packages dpkg, dpkg-dev, binutils)");
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        prereq::missing("root (dpkg -i installs the package)");
        return;
    }
    if !Path::new(binaries::DEBIAN_CTR).is_file() {
        prereq::missing("Debian's ctr (package containerd)");
        return;
    }
    if !Path::new(busybox::BUSYBOX).is_file() {
        prereq::missing("/bin/busybox (busybox-static), the test image's content");
        return;
    }
    // Two test runs on one machine take turns.
    let _turn = MachineLock::take();
    if let Some(present) = already_there() {
        prereq::missing(format!(
            "a machine without rcontainerd installed ({present} is there; this test installs \
             and purges the package: `dpkg --purge rcontainerd` and remove {} first)",
            DATA.join(" and ")
        ));
        return;
    }
    let deb = package();

    let before = searched_tree();
    let mut guard = Installed::new();
    dpkg(&["-i", path_str(deb)]);
    assert_eq!(package_status(), "ii ", "after dpkg -i");

    let unit = read(Path::new(UNIT));
    if on_path("systemd-analyze") {
        let verify = run("systemd-analyze", &["verify", UNIT]);
        assert!(
            verify.status.success()
                && !String::from_utf8_lossy(&verify.stderr).contains("rcontainerd"),
            "systemd-analyze verify {UNIT}: {}\n{}",
            verify.status,
            String::from_utf8_lossy(&verify.stderr)
        );
    } else {
        prereq::missing("systemd-analyze (package systemd) to verify the unit");
    }

    // An operator's edit of the conffile, which dpkg -r must keep: the native snapshotter isolated
    // in a process of its own, which takes the packaged helper (/usr/lib/rcontainerd).
    let native_table = "[plugins.\"io.containerd.snapshotter.v1.native\"]\n";
    let packaged = read(Path::new(CONFFILE));
    assert!(packaged.contains(native_table), "{packaged}");
    let edited = packaged.replacen(
        native_table,
        &format!("{native_table}isolation = \"process\"\n"),
        1,
    ) + "# an operator's note\n";
    std::fs::write(CONFFILE, &edited).expect("editing the conffile");

    // A running container shows its shim outliving the daemon's restart; without runc and
    // the shim (a failure in CI) the test creates the container only.
    let with_task = busybox::containers_can_run(&[]);
    let systemd = Path::new("/run/systemd/system").is_dir();
    if systemd {
        // postinst enabled and started it; start returns once the daemon sent READY=1.
        ok("systemctl", &["is-active", "rcontainerd.service"]);
    } else {
        guard.start(&unit, 1);
    }
    let task_pid = drive_first_run(guard.dir.path(), with_task);

    if systemd {
        ok("systemctl", &["restart", "rcontainerd.service"]);
    } else {
        let status = guard.stop();
        assert!(
            status.success(),
            "the daemon exited with {status} after SIGTERM:\n{}",
            guard.log(1)
        );
        guard.start(&unit, 2);
    }
    drive_after_restart(task_pid.as_deref());
    remove_container(with_task);

    if !systemd {
        // What prerm's `systemctl stop` would do.
        let status = guard.stop();
        assert!(
            status.success(),
            "second run exited with {status}:\n{}",
            guard.log(2)
        );
    }
    dpkg(&["-r", PACKAGE]);
    assert_eq!(package_status(), "rc ", "after dpkg -r");
    for gone in [DAEMON, RCTR, UNIT, PLUGIN_DIR] {
        assert!(
            !Path::new(gone).exists(),
            "{gone} is still there after dpkg -r"
        );
    }
    assert_eq!(
        read(Path::new(CONFFILE)),
        edited,
        "dpkg -r must keep the edited conffile"
    );

    dpkg(&["--purge", PACKAGE]);
    assert_eq!(package_status(), "", "after dpkg --purge");
    assert!(
        !Path::new("/etc/rcontainerd").exists(),
        "/etc/rcontainerd survives the purge"
    );
    let left: Vec<PathBuf> = searched_tree()
        .difference(&before)
        .filter(|p| !DATA.iter().any(|d| p.starts_with(d)))
        .filter(|p| !owned_by_a_package(p))
        .cloned()
        .collect();
    assert!(
        left.is_empty(),
        "the purge left files that are not data: {left:#?}"
    );
    assert!(
        Path::new(DATA[0]).is_dir(),
        "the data stays after the purge"
    );
    guard.remove_data();
}

/// The first run, right after the install: both ctrs see the daemon and its drivers; Debian's
/// imports an image (content written, a layer unpacked by the overlayfs driver), ours runs a
/// container of it when containers can run here (else only creates it). Returns the task's pid.
fn drive_first_run(scratch: &Path, with_task: bool) -> Option<String> {
    for ctr in [binaries::DEBIAN_CTR, RCTR] {
        let version = ctr_ok(ctr, &["version"]);
        assert!(
            version.contains("+rcontainerd."),
            "{ctr} version:\n{version}"
        );
        let listing = ctr_ok(ctr, &["plugins", "ls"]);
        let rows = parse_plugins_table(&listing);
        for driver in [uri::OVERLAYFS, uri::NATIVE, uri::CONTENT, RUNTIME] {
            let row = find_row(&rows, driver)
                .unwrap_or_else(|| panic!("{ctr}: {driver} is not listed:\n{listing}"));
            assert_eq!(row.status, "ok", "{ctr}: {driver}:\n{listing}");
        }
        // Loaded from the package's directory; skips unless /var/lib is on btrfs.
        let btrfs = find_row(&rows, uri::BTRFS).unwrap_or_else(|| panic!("no btrfs:\n{listing}"));
        assert!(["ok", "skip"].contains(&btrfs.status.as_str()), "{listing}");
        assert!(find_row(&rows, uri::EXAMPLE).is_none(), "{listing}");
    }
    // Records the collector keeps (an image, a container and its snapshot): the next start's
    // first collection removes whatever nothing references.
    let tar = scratch.join("image.tar");
    busybox::write_oci_tar(&tar, IMAGE);
    ctr_ok(binaries::DEBIAN_CTR, &["images", "import", path_str(&tar)]);
    if !with_task {
        ctr_ok(RCTR, &["containers", "create", IMAGE, CONTAINER]);
        return None;
    }
    // Not containerd's /run/containerd/fifo.
    let fifos = scratch.join("fifo");
    std::fs::create_dir_all(&fifos).expect("fifo dir");
    ctr_ok(
        RCTR,
        &[
            "run",
            "-d",
            "--fifo-dir",
            path_str(&fifos),
            IMAGE,
            CONTAINER,
            "sleep",
            "1000",
        ],
    );
    let (pid, status) = task(RCTR).expect("the task is listed after run -d");
    assert_eq!(status, "RUNNING");
    Some(pid)
}

/// After the restart: what the first run made is there, for both ctrs; the task still runs,
/// as the same process (its shim outlived the daemon); the isolated native snapshotter serves
/// from its own process.
fn drive_after_restart(task_pid: Option<&str>) {
    for ctr in [binaries::DEBIAN_CTR, RCTR] {
        let native = ctr_ok(ctr, &["plugins", "ls", "-d", "id==native"]);
        for export in [["isolation", "process"], ["state", "running"]] {
            assert!(
                native
                    .lines()
                    .any(|l| l.split_whitespace().collect::<Vec<_>>() == export),
                "{ctr} plugins ls -d id==native lacks {export:?}:\n{native}"
            );
        }
        let key = format!("isolated-{}", if ctr == RCTR { "rctr" } else { "ctr" });
        // Held by nothing, so the gc may take it later; the prepare's answer is what counts.
        ctr_ok(
            ctr,
            &["snapshots", "--snapshotter", "native", "prepare", &key],
        );
        let images = ctr_ok(ctr, &["images", "ls", "-q"]);
        assert!(
            images.lines().any(|l| l == IMAGE),
            "{ctr} images ls:\n{images}"
        );
        let containers = ctr_ok(ctr, &["containers", "ls", "-q"]);
        assert!(
            containers.lines().any(|l| l == CONTAINER),
            "{ctr} containers ls:\n{containers}"
        );
        let snapshots = ctr_ok(ctr, &["snapshots", "--snapshotter", "overlayfs", "ls"]);
        assert!(
            snapshots
                .lines()
                .any(|l| l.split_whitespace().next() == Some(CONTAINER)),
            "{ctr} snapshots ls:\n{snapshots}"
        );
        if let Some(pid) = task_pid {
            assert_eq!(
                task(ctr),
                Some((pid.to_owned(), "RUNNING".to_owned())),
                "{ctr}"
            );
        }
    }
}

/// Removes the container (and its task), as an operator would before removing the package.
fn remove_container(with_task: bool) {
    if with_task {
        ctr_ok(
            binaries::DEBIAN_CTR,
            &["tasks", "delete", "--force", CONTAINER],
        );
    }
    ctr_ok(binaries::DEBIAN_CTR, &["containers", "delete", CONTAINER]);
}

/// The pid and status of [`CONTAINER`]'s task in `ctr tasks ls`, if listed.
fn task(ctr: &str) -> Option<(String, String)> {
    let table = ctr_ok(ctr, &["tasks", "ls"]);
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.first() == Some(&CONTAINER)).then(|| (cols[1].to_owned(), cols[2].to_owned()))
    })
}

/// Runs `ctr --address <socket> --namespace deb-test <args>`; panics unless it succeeds.
fn ctr_ok(ctr: &str, args: &[&str]) -> String {
    let mut full = vec!["--address", SOCKET, "--namespace", NAMESPACE];
    full.extend_from_slice(args);
    ok(ctr, &full)
}

/// The package installed by this test, and the daemon it runs: dropping it stops the daemon,
/// purges the package and removes the data the daemon created, also when the test failed.
struct Installed {
    daemon: Option<Child>,
    dir: tempfile::TempDir,
    /// The daemon's log, each run in its own file.
    run: u32,
}

impl Installed {
    fn new() -> Self {
        Installed {
            daemon: None,
            dir: tempfile::Builder::new()
                .prefix("rcd-deb-")
                .tempdir()
                .expect("temp dir"),
            run: 0,
        }
    }

    fn log_path(&self, run: u32) -> PathBuf {
        self.dir.path().join(format!("daemon-{run}.log"))
    }

    fn log(&self, run: u32) -> String {
        std::fs::read_to_string(self.log_path(run)).unwrap_or_default()
    }

    /// Starts the daemon as systemd starts the unit: its `ExecStartPre=` lines, then
    /// `ExecStart=` with a clean environment, the journal's `JOURNAL_STREAM` on its stdout and
    /// stderr, and `NOTIFY_SOCKET`; returns once it sent READY=1, checking that it serves then.
    fn start(&mut self, unit: &str, run: u32) {
        self.run = run;
        let log = File::create(self.log_path(run)).expect("creating the daemon's log");
        let stat = log.metadata().expect("log file metadata");
        let journal_stream = format!("{}:{}", stat.dev(), stat.ino());
        let service = |argv: &[String]| {
            let mut command = Command::new(&argv[0]);
            command
                .args(&argv[1..])
                .env_clear()
                .env("PATH", SERVICE_PATH)
                .env("JOURNAL_STREAM", &journal_stream)
                .stdin(Stdio::null());
            command
        };

        for line in service_values(unit, "ExecStartPre") {
            let (ignore_failure, argv) = exec_line(&line);
            let output = service(&argv).output().expect("running ExecStartPre");
            assert!(
                ignore_failure || output.status.success(),
                "ExecStartPre={line} failed with {}:\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }

        let notify_path = self.dir.path().join(format!("notify-{run}.sock"));
        let notify = UnixDatagram::bind(&notify_path).expect("binding the notify socket");
        notify
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("notify socket timeout");
        let start = service_values(unit, "ExecStart");
        assert_eq!(start.len(), 1, "one ExecStart= in:\n{unit}");
        let (_, argv) = exec_line(&start[0]);
        let mut command = service(&argv);
        command
            .env("NOTIFY_SOCKET", &notify_path)
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        // SAFETY: runs in the forked child before exec and only calls prctl(2), which is
        // async-signal-safe; the daemon dies with the test even if the guard never runs.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        self.daemon = Some(command.spawn().expect("starting the installed daemon"));

        let deadline = Instant::now() + READY_TIMEOUT;
        let mut messages = String::new();
        let mut buffer = [0u8; 4096];
        while !messages.lines().any(|l| l == "READY=1") {
            if let Ok(n) = notify.recv(&mut buffer) {
                messages.push_str(&String::from_utf8_lossy(&buffer[..n]));
                messages.push('\n');
                continue;
            }
            if let Ok(Some(status)) = self.daemon.as_mut().unwrap().try_wait() {
                self.daemon = None;
                panic!(
                    "the daemon exited with {status} before READY=1:\n{}",
                    self.log(run)
                );
            }
            assert!(
                Instant::now() < deadline,
                "no READY=1 within {READY_TIMEOUT:?} (got {messages:?}):\n{}",
                self.log(run)
            );
        }
        assert!(
            messages.contains(&format!("STATUS=serving on {SOCKET}")),
            "{messages:?}"
        );
        // READY=1 means serving: a client right after it is answered.
        ctr_ok(RCTR, &["version"]);

        // Under the journal: no timestamps of its own (the journal stamps lines), no colours,
        // each line led by its syslog priority.
        let log = self.log(run);
        assert!(log.contains("<6>INFO serving on"), "{log}");
        for line in log.lines() {
            assert!(
                line.starts_with('<') && !line.contains('\u{1b}'),
                "not a journal line: {line:?}"
            );
            assert!(
                !line.split_whitespace().any(looks_like_a_timestamp),
                "a timestamp in a journal line: {line:?}"
            );
        }
    }

    /// SIGTERM, as `systemctl stop` sends with KillMode=process; waits for the exit.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("the daemon runs");
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the daemon") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the daemon ignored SIGTERM for 20 s:\n{}",
                    self.log(self.run)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Removes the daemon's data: the test made it (`already_there` checked).
    fn remove_data(&self) {
        for dir in DATA {
            mounts::unmount_all_under(Path::new(dir));
            if let Err(e) = std::fs::remove_dir_all(dir) {
                assert_eq!(
                    e.kind(),
                    std::io::ErrorKind::NotFound,
                    "removing {dir}: {e}"
                );
            }
        }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if std::thread::panicking() && self.run > 0 {
            eprintln!(
                "--- installed daemon's log (run {}) ---\n{}",
                self.run,
                self.log(self.run)
            );
        }
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        shims::kill_all(Path::new(DATA[1]), Path::new(SOCKET));
        // Idempotent: nothing happens when the test purged already.
        let purge = run("dpkg", &["--purge", PACKAGE]);
        if !purge.status.success() {
            eprintln!(
                "cleaning up: dpkg --purge {PACKAGE}: {}",
                String::from_utf8_lossy(&purge.stderr)
            );
        }
        for dir in DATA {
            mounts::unmount_all_under(Path::new(dir));
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// An exclusive lock on a file in /run/lock, held until dropped.
struct MachineLock {
    _file: File,
}

impl MachineLock {
    fn take() -> Self {
        let file =
            File::create("/run/lock/rcontainerd-deb-test.lock").expect("creating the lock file");
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).expect("flock");
        MachineLock { _file: file }
    }
}

/// What of the package or its data is on the machine already, if anything.
fn already_there() -> Option<String> {
    if !package_status().is_empty() {
        return Some(format!("package {PACKAGE}"));
    }
    ["/etc/rcontainerd", DATA[0], DATA[1]]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .map(str::to_owned)
}

/// `dpkg-query`'s abbreviated status (`ii `, `rc `), empty when dpkg knows nothing of it.
fn package_status() -> String {
    let output = run("dpkg-query", &["-W", "-f=${db:Status-Abbrev}", PACKAGE]);
    if output.status.success() {
        String::from_utf8_lossy(&output.stdout).into_owned()
    } else {
        String::new()
    }
}

/// Runs dpkg, waiting while another dpkg or apt holds its lock (another engineer's setup).
fn dpkg(args: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let output = run("dpkg", args);
        if output.status.success() {
            return;
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("lock") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        panic!(
            "dpkg {args:?} failed with {}:\n{}\n{stderr}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

fn owned_by_a_package(path: &Path) -> bool {
    run("dpkg", &["-S", path_str(path)]).status.success()
}

/// Every path below [`SEARCHED`] on their own filesystems, [`NOT_SEARCHED`] left out.
fn searched_tree() -> BTreeSet<PathBuf> {
    let mut paths = BTreeSet::new();
    for root in SEARCHED {
        let root = Path::new(root);
        let Ok(meta) = root.symlink_metadata() else {
            continue;
        };
        paths.insert(root.to_path_buf());
        if meta.is_dir() {
            let skip: Vec<&Path> = NOT_SEARCHED.iter().map(Path::new).collect();
            walk(root, meta.dev(), &skip, &mut paths);
        }
    }
    paths
}

/// Adds every path below `dir` on device `dev` to `into`, not following symlinks.
fn walk(dir: &Path, dev: u64, skip: &[&Path], into: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if skip.contains(&path.as_path()) {
            continue;
        }
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        if meta.is_dir() && meta.dev() == dev {
            walk(&path, dev, skip, into);
        }
        into.insert(path);
    }
}

/// The values of `key=` in the unit's `[Service]` section, in order.
fn service_values(unit: &str, key: &str) -> Vec<String> {
    let mut section = "";
    let mut values = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = line;
        } else if section == "[Service]" {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    values.push(v.trim().to_owned());
                }
            }
        }
    }
    values
}

/// An `Exec*=` value as systemd runs it: whether a failure is ignored (`-`), and the argv.
/// The unit uses no quoting and no other prefix; the test refuses what it cannot run faithfully.
fn exec_line(value: &str) -> (bool, Vec<String>) {
    let (ignore_failure, rest) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    assert!(
        !rest.starts_with(['@', '+', '!', ':']) && !rest.contains(['"', '\'', '$', '%']),
        "the test cannot run {value:?} as systemd would"
    );
    let argv: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
    assert!(!argv.is_empty(), "empty Exec line");
    (ignore_failure, argv)
}

/// An RFC 3339 time (`2026-12-07T19:30:00.123Z`), as the daemon's plain format starts lines.
fn looks_like_a_timestamp(word: &str) -> bool {
    let bytes = word.as_bytes();
    bytes.len() >= 19
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[..4].iter().all(u8::is_ascii_digit)
}

/// `<field>: value` of a control file.
fn field(control: &str, name: &str) -> String {
    control
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in:\n{control}"))
        .to_owned()
}

/// Runs `program args` under `timeout`, stdin closed.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg(COMMAND_TIMEOUT)
        .arg(program)
        .args(args)
        .env_remove("CONTAINERD_ADDRESS")
        .env_remove("CONTAINERD_NAMESPACE")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// [`run`], panicking unless it succeeds; returns stdout.
fn ok(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?} failed with {}:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}
