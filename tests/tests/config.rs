//! config.toml: bad files stop the daemon and `config check` with a message naming file, key and
//! line; unknown keys warn with a close match; `config default` loads as printed.

use std::path::Path;

use rcontainerd_tests::daemon::run_rcontainerd;
use rcontainerd_tests::{Daemon, DaemonError, DaemonOptions};

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Serving with `text` must fail; returns the daemon's stderr.
async fn daemon_refuses(text: &str) -> String {
    match Daemon::start(DaemonOptions::new().raw_config(text)).await {
        Ok(daemon) => panic!(
            "daemon started with a bad config:\n{text}\nstderr:\n{}",
            daemon.stderr()
        ),
        Err(DaemonError::Exited { status, stderr }) => {
            assert!(!status.success(), "{status}");
            stderr
        }
        Err(e) => panic!("{e}"),
    }
}

/// `config check` must exit non-zero; returns its stderr.
fn check_refuses(dir: &Path, text: &str) -> (String, String) {
    let path = write_config(dir, text);
    let out = run_rcontainerd(&["config", "check", "--config", &path]);
    assert!(
        !out.status.success(),
        "config check accepted:\n{text}\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    (path, stderr_of(&out))
}

/// Both the daemon and `config check` refuse `text`, and each message contains `needles` and the
/// file's path.
async fn both_refuse(text: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (path, check) = check_refuses(dir.path(), text);
    assert!(
        check.contains(&path),
        "config check should name {path}:\n{check}"
    );
    for n in needles {
        assert!(check.contains(n), "config check should say {n:?}:\n{check}");
    }
    let serve = daemon_refuses(text).await;
    assert!(
        serve.contains("config.toml"),
        "daemon should name the file:\n{serve}"
    );
    for n in needles {
        assert!(serve.contains(n), "daemon should say {n:?}:\n{serve}");
    }
}

#[tokio::test]
async fn version_1_is_refused() {
    both_refuse("version = 1\nroot = \"/tmp/x\"\n", &["version", "line 1"]).await;
}

#[tokio::test]
async fn version_3_is_refused() {
    both_refuse("# a comment\nversion = 3\n", &["version", "line 2"]).await;
}

#[tokio::test]
async fn a_wrong_type_names_the_key_and_line() {
    both_refuse("version = 2\n\nroot = 5\n", &["root", "line 3"]).await;
    both_refuse("version = 2\n[grpc]\nuid = \"zero\"\n", &["uid", "line 3"]).await;
    both_refuse(
        "version = 2\ndisabled_plugins = \"io.containerd.snapshotter.v1.native\"\n",
        &["disabled_plugins", "line 2"],
    )
    .await;
}

#[tokio::test]
async fn a_syntax_error_names_the_line() {
    both_refuse("version = 2\nroot = \"unterminated\n", &["line 2"]).await;
    both_refuse("version = 2\n[grpc\naddress = \"/x\"\n", &["line 2"]).await;
}

#[tokio::test]
async fn an_unreadable_config_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be: reading fails even for root.
    let path = dir.path().join("config.toml");
    std::fs::create_dir(&path).unwrap();
    let path = path.to_str().unwrap();
    let out = run_rcontainerd(&["config", "check", "--config", path]);
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains(path), "{}", stderr_of(&out));

    let out = run_rcontainerd(&[
        "--config",
        path,
        "--root",
        dir.path().join("root").to_str().unwrap(),
        "--state",
        dir.path().join("state").to_str().unwrap(),
        "--address",
        dir.path().join("s.sock").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains(path), "{}", stderr_of(&out));
}

#[test]
fn an_unknown_plugin_key_is_named_with_a_close_match() {
    let dir = tempfile::tempdir().unwrap();
    let (_, stderr) = check_refuses(
        dir.path(),
        "version = 2\n[plugins.\"io.containerd.gc.v1.scheduler\"]\npause_treshold = 0.5\n",
    );
    assert!(stderr.contains("pause_treshold"), "{stderr}");
    assert!(stderr.contains("pause_threshold"), "{stderr}");
}

#[test]
fn a_table_for_an_absent_plugin_is_named_with_a_close_match() {
    let dir = tempfile::tempdir().unwrap();
    let (_, stderr) = check_refuses(
        dir.path(),
        "version = 2\n[plugins.\"io.containerd.snapshotter.v1.overlayfz\"]\n",
    );
    assert!(
        stderr.contains("io.containerd.snapshotter.v1.overlayfz"),
        "{stderr}"
    );
    assert!(
        stderr.contains("io.containerd.snapshotter.v1.overlayfs"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unknown_plugin_key_only_warns_when_serving() {
    let daemon = Daemon::start(
        DaemonOptions::new()
            .extra_toml("[plugins.\"io.containerd.gc.v1.scheduler\"]\npause_treshold = 0.5\n"),
    )
    .await
    .unwrap();
    assert!(daemon.answers_version().await);
    assert!(
        daemon.stderr().contains("pause_treshold"),
        "{}",
        daemon.stderr()
    );
}

#[test]
fn a_valid_config_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "version = 2\nroot = \"/tmp/r\"\nstate = \"/tmp/s\"\n\
         disabled_plugins = [\"io.containerd.snapshotter.v1.btrfs\"]\n\
         [grpc]\naddress = \"/tmp/s/x.sock\"\n\
         [plugins.\"io.containerd.gc.v1.scheduler\"]\npause_threshold = 0.05\n",
    );
    let out = run_rcontainerd(&["config", "check", "--config", &path]);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn config_default_round_trips_through_dump() {
    let default = run_rcontainerd(&["config", "default"]);
    assert!(default.status.success(), "{}", stderr_of(&default));
    let text = String::from_utf8(default.stdout).unwrap();
    assert!(text.contains("version = 2"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &text);
    let check = run_rcontainerd(&["config", "check", "--config", &path]);
    assert!(check.status.success(), "{}", stderr_of(&check));
    let dump = run_rcontainerd(&["config", "dump", "--config", &path]);
    assert!(dump.status.success(), "{}", stderr_of(&dump));
    assert_eq!(String::from_utf8(dump.stdout).unwrap(), text);
}

#[tokio::test]
async fn config_default_output_starts_the_daemon_unchanged() {
    let default = run_rcontainerd(&["config", "default"]);
    assert!(default.status.success(), "{}", stderr_of(&default));
    let text = String::from_utf8(default.stdout).unwrap();
    // Root, state and socket go to the temp dir through flags; the file is used as printed.
    let daemon = Daemon::start(DaemonOptions::new().raw_config(&text))
        .await
        .unwrap();
    assert!(daemon.answers_version().await);
    let plugins = daemon.plugins(&[]).await;
    assert!(
        rcontainerd_tests::find_plugin(&plugins, rcontainerd_tests::uri::OVERLAYFS).is_some(),
        "in-tree plugins are found next to the binary"
    );
}

#[test]
fn config_dump_shows_the_effective_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "version = 2\nroot = \"/tmp/from-file\"\n[plugins.\"io.containerd.gc.v1.scheduler\"]\npause_threshold = 0.07\n",
    );
    let out = run_rcontainerd(&[
        "config",
        "dump",
        "--config",
        &path,
        "--state",
        "/tmp/from-flag",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let dump = String::from_utf8(out.stdout).unwrap();
    assert!(dump.contains("root = \"/tmp/from-file\""), "{dump}");
    assert!(dump.contains("state = \"/tmp/from-flag\""), "{dump}");
    assert!(dump.contains("pause_threshold = 0.07"), "{dump}");
}

/// `imports` (globs) merge containerd's way: lists are appended, plugin tables replaced per plugin.
#[tokio::test]
async fn imports_are_merged_into_the_main_config() {
    let extra = tempfile::tempdir().unwrap();
    std::fs::write(
        extra.path().join("10-disable.toml"),
        format!(
            "version = 2\ndisabled_plugins = [\"{}\"]\n",
            rcontainerd_tests::uri::EXAMPLE
        ),
    )
    .unwrap();
    std::fs::write(extra.path().join("ignored.txt"), "not toml at all [").unwrap();
    let glob = extra.path().join("*.toml");
    let daemon = Daemon::start(
        DaemonOptions::new()
            .disable(rcontainerd_tests::uri::NATIVE)
            .extra_toml(&format!("imports = [{:?}]", glob.to_str().unwrap())),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let plugins = daemon.plugins(&[]).await;
    let listed = |uri: &str| rcontainerd_tests::find_plugin(&plugins, uri).is_some();
    assert!(
        !listed(rcontainerd_tests::uri::NATIVE),
        "main file's list kept"
    );
    assert!(
        !listed(rcontainerd_tests::uri::EXAMPLE),
        "import's list appended"
    );
    assert!(listed(rcontainerd_tests::uri::OVERLAYFS));
}

#[test]
fn an_import_that_cannot_be_parsed_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "version = 2\nroot = [\n").unwrap();
    let (_, stderr) = check_refuses(
        dir.path(),
        &format!("version = 2\nimports = [{:?}]\n", broken.to_str().unwrap()),
    );
    assert!(stderr.contains("broken.toml"), "{stderr}");
}
