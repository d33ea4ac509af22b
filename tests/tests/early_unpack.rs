//! Early unpack: large layers are extracted while `ctr images import` writes their blobs, and
//! the apply that follows moves the staged tree into the snapshot. What it leaves must be what
//! an ordinary apply leaves: the same three-layer image (a `./` member with its own owner and
//! mode, hard and symbolic links, a whiteout, an opaque directory, directories the layer does
//! not list) is imported with both ctrs into a daemon with early unpack and one without, and
//! every snapshot directory is compared, entry by entry. The daemon's log shows which layers
//! came from a staging; a corrupt layer fails the same way; a restart clears the stagings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rcontainerd_tests::layers::{digest_of, gzip, noise, oci_layout_of, oci_layout_with};
use rcontainerd_tests::{Ctr, Daemon, DaemonOptions};

const IMAGE: &str = "example.com/early:1";
/// Each layer's big file: above the daemon's 8 MiB threshold once gzipped (it does not shrink).
const BIG: usize = 10 << 20;

fn prerequisites() -> bool {
    if !nix::unistd::geteuid().is_root() {
        rcontainerd_pkg::prereq::missing("root (unpacking snapshots needs it)");
        return false;
    }
    if !Path::new(rcontainerd_tests::binaries::DEBIAN_CTR).is_file() {
        rcontainerd_pkg::prereq::missing("containerd's ctr at /usr/bin/ctr");
        return false;
    }
    true
}

enum Member<'a> {
    Dir(u32, u32, u32),
    File(&'a [u8], u32),
    Symlink(&'a str),
    HardLink(&'a str),
}

fn layer(members: &[(&str, Member<'_>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, member) in members {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(0);
        match member {
            Member::Dir(mode, uid, gid) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_uid(u64::from(*uid));
                header.set_gid(u64::from(*gid));
                builder.append_data(&mut header, name, &[][..]).unwrap();
            }
            Member::File(data, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, name, *data).unwrap();
            }
            Member::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                builder.append_link(&mut header, name, target).unwrap();
            }
            Member::HardLink(target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o755);
                builder.append_link(&mut header, name, target).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

/// Layer 0 (applied to a plain directory): a `./` member (0750, 1000:1000), a big file with a
/// hard link and a symlink to it. Layer 1 (an overlay upper dir): a whiteout and an opaque
/// directory. Layer 2: a file in directories the layer does not list (not adoptable: their
/// metadata comes from the lowers).
fn image_layers() -> Vec<Vec<u8>> {
    let (big0, big1, big2) = (noise(BIG, 1), noise(BIG, 2), noise(BIG, 3));
    vec![
        layer(&[
            ("./", Member::Dir(0o750, 1000, 1000)),
            ("bin", Member::Dir(0o755, 0, 0)),
            ("bin/big0", Member::File(&big0, 0o755)),
            ("bin/link", Member::HardLink("bin/big0")),
            ("etc", Member::Dir(0o755, 0, 0)),
            ("etc/gone", Member::File(b"gone", 0o644)),
            ("etc/sym", Member::Symlink("../bin/big0")),
            ("opq", Member::Dir(0o700, 0, 0)),
            ("opq/old", Member::File(b"old", 0o600)),
        ]),
        layer(&[
            ("big1", Member::File(&big1, 0o644)),
            ("etc", Member::Dir(0o755, 0, 0)),
            ("etc/.wh.gone", Member::File(b"", 0o644)),
            ("opq", Member::Dir(0o700, 0, 0)),
            ("opq/.wh..wh..opq", Member::File(b"", 0o644)),
            ("opq/new", Member::File(b"new", 0o600)),
        ]),
        layer(&[("implicit/deep/big2", Member::File(&big2, 0o644))]),
    ]
}

async fn start(early: bool) -> Daemon {
    let options = DaemonOptions::new().extra_toml(&format!(
        "[debug]\nlevel = \"debug\"\n\
         [plugins.\"io.containerd.service.v1.diff-service\"]\nearly_unpack = {early}\n"
    ));
    Daemon::start(options).await.expect("daemon starts")
}

fn snapshots_dir(daemon: &Daemon) -> PathBuf {
    daemon
        .root()
        .join("io.containerd.snapshotter.v1.overlayfs/snapshots")
}

fn staging_dir(daemon: &Daemon) -> PathBuf {
    daemon
        .root()
        .join("io.containerd.service.v1.diff-service/early-unpack")
}

/// Every entry below `dir` (the root as ""): type, mode, owner, size, content digest, link
/// target, xattrs, and the modification time unless the apply set it to "now" (directories
/// the layer does not list).
fn listing(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = vec![PathBuf::new()];
    let recent = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 3600;
    while let Some(rel) = pending.pop() {
        let path = dir.join(&rel);
        let stat = rustix::fs::lstat(&path).unwrap();
        let kind = rustix::fs::FileType::from_raw_mode(stat.st_mode);
        let mut line = format!(
            "{kind:?} {:o} {}:{} rdev={}",
            stat.st_mode & 0o7777,
            stat.st_uid,
            stat.st_gid,
            stat.st_rdev
        );
        let mtime = stat.st_mtime as i64;
        if mtime < recent {
            line += &format!(" mtime={mtime}.{}", stat.st_mtime_nsec);
        }
        match kind {
            rustix::fs::FileType::RegularFile => {
                let data = std::fs::read(&path).unwrap();
                line += &format!(" nlink={} {}", stat.st_nlink, digest_of(&data));
            }
            rustix::fs::FileType::Symlink => {
                line += &format!(" -> {}", std::fs::read_link(&path).unwrap().display());
            }
            rustix::fs::FileType::Directory => {
                let mut names: Vec<_> = std::fs::read_dir(&path)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                names.sort();
                pending.extend(names.into_iter().map(|n| rel.join(n)));
                line += &format!(
                    " opaque={:?}",
                    xattr(&path, "trusted.overlay.opaque").unwrap_or_default()
                );
            }
            _ => {}
        }
        out.insert(rel.display().to_string(), line);
    }
    out
}

fn xattr(path: &Path, name: &str) -> Option<String> {
    let mut value = [0u8; 64];
    let n = rustix::fs::lgetxattr(path, name, &mut value[..]).ok()?;
    Some(String::from_utf8_lossy(&value[..n]).into_owned())
}

/// Every snapshot directory of the daemon's overlayfs snapshotter, by snapshot number.
fn all_snapshots(daemon: &Daemon) -> BTreeMap<u64, BTreeMap<String, String>> {
    std::fs::read_dir(snapshots_dir(daemon))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let id: u64 = e.file_name().to_str().unwrap().parse().unwrap();
            (id, listing(&e.path().join("fs")))
        })
        .collect()
}

fn adopted_count(daemon: &Daemon) -> usize {
    daemon
        .stderr()
        .matches("early unpack: layer applied from its staging")
        .count()
}

#[tokio::test]
async fn early_unpack_leaves_what_an_ordinary_apply_leaves_with_both_ctrs() {
    if !prerequisites() {
        return;
    }
    let (archive, chain) = oci_layout_of(IMAGE, &image_layers());
    let early = start(true).await;
    let plain = start(false).await;
    let mut trees = Vec::new();
    for daemon in [&early, &plain] {
        let path = daemon.dir().join("image.tar");
        std::fs::write(&path, &archive).unwrap();
        for ctr in [Ctr::Debian, Ctr::Ours] {
            let ns = format!("{ctr:?}").to_lowercase();
            daemon
                .ctr(
                    ctr,
                    &["-n", &ns, "images", "import", path.to_str().unwrap()],
                )
                .ok();
            // The top snapshot is the image's chain ID: the diff IDs the applies answered
            // were the layers' own.
            let out = daemon
                .ctr(ctr, &["-n", &ns, "snapshots", "ls"])
                .ok()
                .to_string();
            assert!(out.contains(&chain), "{ctr:?}: {out}");
        }
        trees.push(all_snapshots(daemon));
    }
    assert_eq!(trees[0].len(), 6, "three snapshots per namespace");
    assert_eq!(trees[0], trees[1], "early unpack against an ordinary apply");
    // The layer with a `./` member kept its root's owner and mode.
    let first = &trees[0][trees[0].keys().next().unwrap()];
    assert!(
        first[""].starts_with("Directory 750 1000:1000"),
        "{}",
        first[""]
    );
    // Layers 0 and 1 of each import came from stagings; layer 2 (implicit directories) did
    // not, nor did anything in the daemon without early unpack.
    assert_eq!(adopted_count(&early), 4, "{}", early.stderr());
    assert!(early.stderr().contains("early unpack: staging not used"));
    assert_eq!(adopted_count(&plain), 0);
    assert_eq!(
        std::fs::read_dir(staging_dir(&early)).unwrap().count(),
        0,
        "no staging left once applied"
    );
    assert!(!staging_dir(&plain).exists());
}

#[tokio::test]
async fn a_corrupt_large_layer_fails_as_without_early_unpack() {
    if !prerequisites() {
        return;
    }
    // Blobs whose digests are their own (the import accepts them) but whose content is no
    // layer: a gzip stream cut short and padded (the staging fails while the blob is written),
    // and one whose CRC is wrong (it fails only at the end, after the commit).
    let tar = layer(&[("big", Member::File(&noise(BIG, 4), 0o644))]);
    let mut cut = gzip(&tar);
    cut.truncate(cut.len() / 2);
    cut.extend_from_slice(&noise(1 << 20, 5));
    let mut bad_crc = gzip(&tar);
    let crc_at = bad_crc.len() - 8;
    bad_crc[crc_at] ^= 0xff;
    for gz in [cut, bad_crc] {
        let mut answers = Vec::new();
        for early in [true, false] {
            let daemon = start(early).await;
            let (archive, _) =
                oci_layout_with(IMAGE, std::slice::from_ref(&gz), &[digest_of(&tar)]);
            let path = daemon.dir().join("bad.tar");
            std::fs::write(&path, &archive).unwrap();
            let out = daemon.ctr(
                Ctr::Debian,
                &["-n", "bad", "images", "import", path.to_str().unwrap()],
            );
            answers.push(out.failed().to_string());
            assert_eq!(adopted_count(&daemon), 0);
            if early {
                // The failed staging is removed, whenever it failed.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while std::fs::read_dir(staging_dir(&daemon)).unwrap().count() > 0 {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "a failed staging stays"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
            let snapshots = daemon
                .ctr(Ctr::Ours, &["-n", "bad", "snapshots", "ls"])
                .ok()
                .to_string();
            assert_eq!(
                snapshots.lines().count(),
                1,
                "no snapshot stays: {snapshots}"
            );
        }
        // The messages name temporary snapshot keys; the reason is the same.
        let reason = |s: &str| s.rsplit(": ").next().unwrap_or_default().trim().to_string();
        assert_eq!(reason(&answers[0]), reason(&answers[1]), "{answers:?}");
    }
}

#[tokio::test]
async fn a_staging_nobody_applies_is_removed_by_a_restart() {
    if !prerequisites() {
        return;
    }
    let (archive, _) = oci_layout_of(IMAGE, &image_layers()[..1]);
    let mut daemon = start(true).await;
    let path = daemon.dir().join("image.tar");
    std::fs::write(&path, &archive).unwrap();
    daemon
        .ctr(
            Ctr::Debian,
            &[
                "-n",
                "x",
                "images",
                "import",
                "--no-unpack",
                path.to_str().unwrap(),
            ],
        )
        .ok();
    let staged: Vec<_> = std::fs::read_dir(staging_dir(&daemon))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(staged.len(), 1, "the layer was staged");
    // The staging finishes in the background: wait for its big file.
    let big = staged[0].join("bin/big0");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::metadata(&big).map(|m| m.len()).unwrap_or(0) < BIG as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "staging never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    daemon.restart().await.unwrap();
    assert_eq!(std::fs::read_dir(staging_dir(&daemon)).unwrap().count(), 0);
    // Importing again unpacks. containerd's ctr writes every blob of an archive again (it
    // learns digests only by reading them), so the layer is staged afresh and used.
    daemon
        .ctr(
            Ctr::Debian,
            &["-n", "x", "images", "import", path.to_str().unwrap()],
        )
        .ok();
    assert_eq!(
        std::fs::read_dir(snapshots_dir(&daemon)).unwrap().count(),
        1
    );
    assert_eq!(adopted_count(&daemon), 1, "{}", daemon.stderr());
}
