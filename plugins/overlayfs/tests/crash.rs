//! A `kill -9` in the middle of a stream of operations leaves records and layer directories
//! that agree once the snapshotter reopens and cleans up.

use std::{
    collections::HashSet,
    fs,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use rcontainerd_plugin_api::snapshot::{Kind, Labels, Snapshotter};
use rcontainerd_plugin_overlayfs::{Config, OverlaySnapshotter};

/// Set in the child process: the root it works in until killed.
const CHILD_ROOT: &str = "RCONTAINERD_OVERLAY_CRASH_ROOT";

fn config() -> Config {
    Config {
        sync_remove: true,
        ..Config::default()
    }
}

/// In the child: prepares, commits and removes snapshots forever. In the parent: nothing.
#[test]
fn crash_child() {
    let Ok(root) = std::env::var(CHILD_ROOT) else {
        return;
    };
    let s = OverlaySnapshotter::open(root.into(), config()).unwrap();
    let mut parent = String::new();
    for n in 0.. {
        let key = format!("default/{n}/active");
        s.prepare(&key, &parent, Labels::new()).unwrap();
        let name = format!("default/{n}/layer");
        s.commit(&name, &key, Labels::new()).unwrap();
        s.view(&format!("default/{n}/view"), &name, Labels::new())
            .unwrap();
        if n % 3 == 0 {
            s.remove(&format!("default/{n}/view")).unwrap();
        }
        parent = name;
    }
}

#[test]
fn records_and_directories_agree_after_a_kill() {
    if std::env::var(CHILD_ROOT).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture"])
            .env(CHILD_ROOT, &root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300 + 150 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        check_consistent(&root);
    }
}

fn check_consistent(root: &Path) {
    let s = OverlaySnapshotter::open(root.to_path_buf(), config()).unwrap();
    s.cleanup().unwrap();
    let infos = s.walk().unwrap();
    assert!(!infos.is_empty(), "the child made no progress");
    let mut sources = HashSet::new();
    for info in &infos {
        if info.kind == Kind::Committed {
            continue;
        }
        let mounts = s.mounts(&info.name).unwrap();
        for option in mounts[0].options.iter().chain([&mounts[0].source]) {
            for path in option
                .trim_start_matches(|c: char| c != '/')
                .split(':')
                .filter(|p| p.starts_with('/'))
            {
                assert!(
                    Path::new(path).is_dir(),
                    "{} refers to missing {path}",
                    info.name
                );
                sources.insert(path.to_string());
            }
        }
        if !info.parent.is_empty() {
            assert_eq!(s.stat(&info.parent).unwrap().kind, Kind::Committed);
        }
    }
    // Every directory left belongs to a record: one layer per snapshot.
    let dirs = fs::read_dir(root.join("snapshots")).unwrap().count();
    assert_eq!(
        dirs,
        infos.len(),
        "directories without records survived cleanup"
    );
}
